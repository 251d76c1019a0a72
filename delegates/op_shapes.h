// Output shapes of the delegated ops and the translation of TFLite params into kernel enums.
// Shared by the ABI self-check (which compares these shapes with the runtime's) and the delegate
// kernels (which size their outputs with them).
#ifndef ADASPRING_DELEGATES_OP_SHAPES_H_
#define ADASPRING_DELEGATES_OP_SHAPES_H_

#include <cstdint>
#include <vector>

#include "kernels/views.h"

namespace adaspring {

using Shape = std::vector<int>;

struct ConvAttributes {
  kernels::Padding padding = kernels::Padding::kValid;
  int stride_h = 1;
  int stride_w = 1;
  int dilation_h = 1;
  int dilation_w = 1;
};

// TfLitePadding -> kernels::Padding; false for unknown values.
bool ToPadding(int32_t tflite_padding, kernels::Padding* padding);

// TfLiteFusedActivation -> kernels::Activation; false for activations the kernels do not fuse.
bool ToActivation(int32_t tflite_activation, kernels::Activation* activation);

// [N, H, W, C] input and a KH x KW window with `out_channels` outputs -> [N, OH, OW, out_channels].
// Returns false when the input is not 4-D or the window does not fit.
bool ConvOutputShape(const Shape& input, int kernel_h, int kernel_w, int out_channels, const ConvAttributes& attrs,
                     Shape* output, kernels::AxisGeometry* rows = nullptr, kernels::AxisGeometry* cols = nullptr);

// FULLY_CONNECTED: the input is flattened to [rows, in_features]; the output is [rows, out_features],
// or the input's leading dims + [out_features] with keep_num_dims. False when the element count is
// not a multiple of in_features (or keep_num_dims and the last dim differs from in_features).
bool FullyConnectedOutputShape(const Shape& input, int in_features, int out_features, bool keep_num_dims,
                               Shape* output, int64_t* rows = nullptr);

// Product of the dims (1 for a scalar); -1 when a dim is negative or the product exceeds 2^31 - 1.
int64_t ElementCount(const Shape& shape);

}  // namespace adaspring

#endif  // ADASPRING_DELEGATES_OP_SHAPES_H_
