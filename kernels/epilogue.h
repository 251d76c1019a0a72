// The per-output-channel epilogue shared by all kernels (bias, folded-BN scale/shift, activation).
#ifndef ADASPRING_KERNELS_EPILOGUE_H_
#define ADASPRING_KERNELS_EPILOGUE_H_

#include <algorithm>
#include <limits>

#include "kernels/views.h"

namespace adaspring::kernels {

// Applies `epilogue` to one output pixel/row of `count` channels, in place, in one pass (the
// activation is a clamp to [lo, hi], with infinite bounds for none).
inline void ApplyEpilogue(const Epilogue& epilogue, float* values, int count) {
  const float lo = epilogue.activation == Activation::kNone ? -std::numeric_limits<float>::infinity() : 0.0f;
  const float hi = epilogue.activation == Activation::kRelu6 ? 6.0f : std::numeric_limits<float>::infinity();
  const float* bias = epilogue.bias;
  const float* scale = epilogue.scale;
  const float* shift = epilogue.shift;
  if (scale == nullptr && shift == nullptr) {
    if (bias != nullptr) {
      for (int i = 0; i < count; ++i) values[i] = std::min(std::max(values[i] + bias[i], lo), hi);
    } else {
      for (int i = 0; i < count; ++i) values[i] = std::min(std::max(values[i], lo), hi);
    }
    return;
  }
  for (int i = 0; i < count; ++i) {
    float value = values[i];
    if (bias != nullptr) value += bias[i];
    if (scale != nullptr) value *= scale[i];
    if (shift != nullptr) value += shift[i];
    values[i] = std::min(std::max(value, lo), hi);
  }
}

// The epilogue of output channels [first, ...): every per-channel array advanced by `first`.
inline Epilogue OffsetEpilogue(const Epilogue& epilogue, int first) {
  Epilogue shifted = epilogue;
  if (shifted.bias != nullptr) shifted.bias += first;
  if (shifted.scale != nullptr) shifted.scale += first;
  if (shifted.shift != nullptr) shifted.shift += first;
  return shifted;
}

}  // namespace adaspring::kernels

#endif  // ADASPRING_KERNELS_EPILOGUE_H_
