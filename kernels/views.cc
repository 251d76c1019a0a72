#include "kernels/views.h"

#include <algorithm>

namespace adaspring::kernels {

ConvFilterView ConvFilterView::Dense(const float* data, int out_channels, int kernel_h, int kernel_w,
                                     int in_channels) {
  ConvFilterView view;
  view.data = data;
  view.kernel_h = kernel_h;
  view.kernel_w = kernel_w;
  view.out_channels = out_channels;
  view.in_channels = in_channels;
  view.tap_stride = in_channels;
  view.out_stride = static_cast<int64_t>(kernel_h) * kernel_w * in_channels;
  return view;
}

ConvFilterView ConvFilterView::Slice(int out_used, int in_used) const {
  ConvFilterView view = *this;
  view.out_channels = std::min(out_used, out_channels);
  view.in_channels = std::min(in_used, in_channels);
  return view;
}

DepthwiseFilterView DepthwiseFilterView::Dense(const float* data, int kernel_h, int kernel_w, int out_channels) {
  DepthwiseFilterView view;
  view.data = data;
  view.kernel_h = kernel_h;
  view.kernel_w = kernel_w;
  view.out_channels = out_channels;
  view.tap_stride = out_channels;
  return view;
}

DepthwiseFilterView DepthwiseFilterView::Slice(int out_used) const {
  DepthwiseFilterView view = *this;
  view.out_channels = std::min(out_used, out_channels);
  return view;
}

MatrixView MatrixView::Dense(const float* data, int out_features, int in_features) {
  MatrixView view;
  view.data = data;
  view.out_features = out_features;
  view.in_features = in_features;
  view.out_stride = in_features;
  return view;
}

MatrixView MatrixView::Slice(int out_used, int in_used) const {
  MatrixView view = *this;
  view.out_features = std::min(out_used, out_features);
  view.in_features = std::min(in_used, in_features);
  return view;
}

bool ComputeAxisGeometry(int in, int kernel, int stride, int dilation, Padding padding, AxisGeometry* result) {
  if (in <= 0 || kernel <= 0 || stride <= 0 || dilation <= 0) return false;
  const int64_t effective = static_cast<int64_t>(kernel - 1) * dilation + 1;
  int64_t out = 0;
  int64_t pad_before = 0;
  if (padding == Padding::kSame) {
    out = (static_cast<int64_t>(in) + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((out - 1) * stride + effective - in, 0);
    pad_before = total / 2;
  } else {
    if (effective > in) return false;
    out = (static_cast<int64_t>(in) - effective + stride) / stride;
  }
  if (out <= 0) return false;
  result->out = static_cast<int>(out);
  result->pad_before = static_cast<int>(pad_before);
  return true;
}

}  // namespace adaspring::kernels
