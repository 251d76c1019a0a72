#include "kernels/gemm.h"

#define EIGEN_DONT_PARALLELIZE
#define EIGEN_NO_DEBUG
#include <Eigen/Core>

namespace adaspring::kernels {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<Eigen::Dynamic>;
using ConstMap = Eigen::Map<const RowMajor, Eigen::Unaligned, Strided>;
using MutableMap = Eigen::Map<RowMajor, Eigen::Unaligned, Strided>;

}  // namespace

void GemmABt(int rows, int cols, int depth, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  MutableMap out(c, rows, cols, Strided(ldc));
  if (depth <= 0) {
    if (!accumulate) out.setZero();
    return;
  }
  const ConstMap lhs(a, rows, depth, Strided(lda));
  const ConstMap weights(b, cols, depth, Strided(ldb));
  if (rows == 1) {
    // Matrix-vector product: one output row, read the weight rows once.
    auto out_row = out.row(0).transpose();
    if (accumulate) {
      out_row.noalias() += weights * lhs.row(0).transpose();
    } else {
      out_row.noalias() = weights * lhs.row(0).transpose();
    }
    return;
  }
  if (accumulate) {
    out.noalias() += lhs * weights.transpose();
  } else {
    out.noalias() = lhs * weights.transpose();
  }
}

}  // namespace adaspring::kernels
