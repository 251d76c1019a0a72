// float32 FULLY_CONNECTED ([out, in] weights) with fused epilogue, multi-threaded.
#ifndef ADASPRING_KERNELS_FULLY_CONNECTED_H_
#define ADASPRING_KERNELS_FULLY_CONNECTED_H_

#include <cstdint>

#include "kernels/thread_pool.h"
#include "kernels/views.h"

namespace adaspring::kernels {

struct FullyConnectedArgs {
  const float* input = nullptr;  // rows x weights.in_features, row r at input + r * input_row_stride
  int rows = 0;
  int64_t input_row_stride = 0;
  MatrixView weights;  // may be a slice of a larger [out, in] matrix
  Epilogue epilogue;
  float* output = nullptr;  // rows x weights.out_features, row r at output + r * output_row_stride
  int64_t output_row_stride = 0;
};

// Null when `args` is consistent, else a static message naming the first problem.
const char* CheckFullyConnectedArgs(const FullyConnectedArgs& args);

// Computes output = act((input * weights^T + bias) * scale + shift). `pool` may be null.
void FullyConnected(const FullyConnectedArgs& args, ThreadPool* pool);

}  // namespace adaspring::kernels

#endif  // ADASPRING_KERNELS_FULLY_CONNECTED_H_
