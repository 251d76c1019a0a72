// The per-output-channel epilogue shared by all kernels (bias, folded-BN scale/shift, activation).
#ifndef ADASPRING_KERNELS_EPILOGUE_H_
#define ADASPRING_KERNELS_EPILOGUE_H_

#include <algorithm>

#include "kernels/views.h"

namespace adaspring::kernels {

// Applies `epilogue` to one output pixel/row of `count` channels, in place.
inline void ApplyEpilogue(const Epilogue& epilogue, float* values, int count) {
  if (epilogue.bias != nullptr) {
    for (int i = 0; i < count; ++i) values[i] += epilogue.bias[i];
  }
  if (epilogue.scale != nullptr) {
    for (int i = 0; i < count; ++i) values[i] *= epilogue.scale[i];
  }
  if (epilogue.shift != nullptr) {
    for (int i = 0; i < count; ++i) values[i] += epilogue.shift[i];
  }
  switch (epilogue.activation) {
    case Activation::kRelu:
      for (int i = 0; i < count; ++i) values[i] = std::max(values[i], 0.0f);
      break;
    case Activation::kRelu6:
      for (int i = 0; i < count; ++i) values[i] = std::min(std::max(values[i], 0.0f), 6.0f);
      break;
    case Activation::kNone:
      break;
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
