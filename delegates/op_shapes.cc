#include "delegates/op_shapes.h"

#include "delegates/tflite_abi.h"

namespace adaspring {

bool ToPadding(int32_t tflite_padding, kernels::Padding* padding) {
  if (tflite_padding == abi::kPaddingSame) {
    *padding = kernels::Padding::kSame;
    return true;
  }
  if (tflite_padding == abi::kPaddingValid) {
    *padding = kernels::Padding::kValid;
    return true;
  }
  return false;
}

bool ToActivation(int32_t tflite_activation, kernels::Activation* activation) {
  switch (tflite_activation) {
    case abi::kActNone:
      *activation = kernels::Activation::kNone;
      return true;
    case abi::kActRelu:
      *activation = kernels::Activation::kRelu;
      return true;
    case abi::kActRelu6:
      *activation = kernels::Activation::kRelu6;
      return true;
    default:
      return false;
  }
}

bool ConvOutputShape(const Shape& input, int kernel_h, int kernel_w, int out_channels, const ConvAttributes& attrs,
                     Shape* output, kernels::AxisGeometry* rows, kernels::AxisGeometry* cols) {
  if (input.size() != 4 || input[0] <= 0 || out_channels <= 0) return false;
  kernels::AxisGeometry along_h, along_w;
  if (!kernels::ComputeAxisGeometry(input[1], kernel_h, attrs.stride_h, attrs.dilation_h, attrs.padding, &along_h) ||
      !kernels::ComputeAxisGeometry(input[2], kernel_w, attrs.stride_w, attrs.dilation_w, attrs.padding, &along_w)) {
    return false;
  }
  *output = {input[0], along_h.out, along_w.out, out_channels};
  if (rows != nullptr) *rows = along_h;
  if (cols != nullptr) *cols = along_w;
  return true;
}

bool FullyConnectedOutputShape(const Shape& input, int in_features, int out_features, bool keep_num_dims,
                               Shape* output, int64_t* rows) {
  const int64_t elements = ElementCount(input);
  if (input.empty() || in_features <= 0 || out_features <= 0 || elements <= 0 || elements % in_features != 0) {
    return false;
  }
  const int64_t row_count = elements / in_features;
  if (keep_num_dims) {
    if (input.back() != in_features) return false;
    *output = input;
    output->back() = out_features;
  } else {
    *output = {static_cast<int>(row_count), out_features};
  }
  if (rows != nullptr) *rows = row_count;
  return true;
}

int64_t ElementCount(const Shape& shape) {
  int64_t count = 1;
  for (int dim : shape) {
    if (dim < 0) return -1;
    count *= dim;
    if (count > 0x7fffffff) return -1;
  }
  return count;
}

}  // namespace adaspring
