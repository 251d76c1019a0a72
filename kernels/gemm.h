// The one place that uses Eigen: a single-threaded float GEMM on strided row-major operands.
// Callers split work across threads themselves (ThreadPool), so Eigen's own threading stays off.
#ifndef ADASPRING_KERNELS_GEMM_H_
#define ADASPRING_KERNELS_GEMM_H_

#include <cstdint>

namespace adaspring::kernels {

// C[rows x cols] (=|+=) A[rows x depth] * B[cols x depth]^T, all row-major with the given row strides
// (lda >= depth, ldb >= depth, ldc >= cols). B is the weight in [out, in] order, which is how TFLite
// stores FULLY_CONNECTED weights and (per tap) CONV_2D filters. `accumulate` selects += over =.
void GemmABt(int rows, int cols, int depth, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate);

}  // namespace adaspring::kernels

#endif  // ADASPRING_KERNELS_GEMM_H_
