// Strided, non-owning views of activations and weights for the float32 kernels.
//
// Every weight view can describe a *prefix slice* of a larger shared weight without copying it:
// keep the data pointer and the strides of the full weight, and lower the channel counts. That is
// how a width-sliced configuration (first k output channels, first m input channels) and a
// low-rank factor prefix (first r rows of V, first r columns of U) are computed from one stored
// weight.
#ifndef ADASPRING_KERNELS_VIEWS_H_
#define ADASPRING_KERNELS_VIEWS_H_

#include <cstdint>

namespace adaspring::kernels {

// Activation fused into the epilogue.
enum class Activation : int { kNone = 0, kRelu = 1, kRelu6 = 2 };

// Per-output-channel epilogue: y = act((acc + bias[o]) * scale[o] + shift[o]).
// Any pointer may be null (bias and shift then count as 0, scale as 1). A folded batch norm is
// scale = gamma / sqrt(var + eps), shift = beta - mean * scale. Each array holds at least as many
// entries as the kernel computes output channels; a prefix of a longer array is fine.
struct Epilogue {
  const float* bias = nullptr;
  const float* scale = nullptr;
  const float* shift = nullptr;
  Activation activation = Activation::kNone;
};

// Read-only NHWC activations. Pixel (n, y, x) starts at data + ((n * height + y) * width + x) *
// pixel_stride; its first `channels` floats are used (pixel_stride >= channels).
struct InputView {
  const float* data = nullptr;
  int batch = 0;
  int height = 0;
  int width = 0;
  int channels = 0;
  int64_t pixel_stride = 0;
};

// Writable NHWC activations, same addressing as InputView.
struct OutputView {
  float* data = nullptr;
  int batch = 0;
  int height = 0;
  int width = 0;
  int channels = 0;
  int64_t pixel_stride = 0;
};

// CONV_2D filter, TFLite OHWI order. Element (o, ky, kx, i) is at
//   data[o * out_stride + (ky * kernel_w + kx) * tap_stride + i]
// with o < out_channels and i < in_channels. For a dense [O, KH, KW, I] filter tap_stride = I and
// out_stride = KH * KW * I; a width slice keeps both strides and lowers the channel counts.
struct ConvFilterView {
  const float* data = nullptr;
  int kernel_h = 0;
  int kernel_w = 0;
  int out_channels = 0;
  int in_channels = 0;
  int64_t out_stride = 0;
  int64_t tap_stride = 0;

  // A dense OHWI filter.
  static ConvFilterView Dense(const float* data, int out_channels, int kernel_h, int kernel_w, int in_channels);
  // The first `out_used` output and first `in_used` input channels of this view (no copy).
  ConvFilterView Slice(int out_used, int in_used) const;
  // True when each output channel's taps are contiguous (no input-channel slicing).
  bool TapsContiguous() const { return tap_stride == in_channels; }
};

// DEPTHWISE_CONV_2D filter, TFLite layout [1, KH, KW, C * M]. Output channel o (input channel o / M)
// of tap (ky, kx) is at data[(ky * kernel_w + kx) * tap_stride + o], o < out_channels.
struct DepthwiseFilterView {
  const float* data = nullptr;
  int kernel_h = 0;
  int kernel_w = 0;
  int out_channels = 0;
  int64_t tap_stride = 0;

  static DepthwiseFilterView Dense(const float* data, int kernel_h, int kernel_w, int out_channels);
  // The first `out_used` output channels (a multiple of the depth multiplier for a consistent slice).
  DepthwiseFilterView Slice(int out_used) const;
};

// Dense [out, in] weight (FULLY_CONNECTED, or a 1x1 factor). Element (o, i) is at
// data[o * out_stride + i], o < out_features, i < in_features.
struct MatrixView {
  const float* data = nullptr;
  int out_features = 0;
  int in_features = 0;
  int64_t out_stride = 0;

  static MatrixView Dense(const float* data, int out_features, int in_features);
  MatrixView Slice(int out_used, int in_used) const;
};

// Spatial window of a convolution: strides, dilations and the leading zero padding.
struct ConvWindow {
  int stride_h = 1;
  int stride_w = 1;
  int dilation_h = 1;
  int dilation_w = 1;
  int pad_top = 0;
  int pad_left = 0;
};

enum class Padding : int { kSame = 0, kValid = 1 };

// Output extent and leading padding of one spatial axis, TFLite/TensorFlow rules:
// SAME: out = ceil(in / stride), total pad = max((out - 1) * stride + eff - in, 0), leading = total / 2;
// VALID: out = ceil((in - eff + 1) / stride), no pad; eff = (kernel - 1) * dilation + 1.
struct AxisGeometry {
  int out = 0;
  int pad_before = 0;
};

// Returns false (and leaves `result` untouched) when the arguments are invalid or the output is empty.
bool ComputeAxisGeometry(int in, int kernel, int stride, int dilation, Padding padding, AxisGeometry* result);

}  // namespace adaspring::kernels

#endif  // ADASPRING_KERNELS_VIEWS_H_
