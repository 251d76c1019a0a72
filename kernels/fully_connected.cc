#include "kernels/fully_connected.h"

#include "kernels/epilogue.h"
#include "kernels/gemm.h"

namespace adaspring::kernels {
namespace {

constexpr int64_t kMinRowsPerTask = 4;
constexpr int64_t kOutputQuantum = 16;
// Below this many multiply-adds a job is not worth waking another thread for.
constexpr int64_t kMinWorkForThreads = 16 * 1024;

void RunBlock(const FullyConnectedArgs& args, int64_t row_begin, int64_t row_end, int out_begin, int out_end) {
  const MatrixView& w = args.weights;
  float* out = args.output + row_begin * args.output_row_stride + out_begin;
  GemmABt(static_cast<int>(row_end - row_begin), out_end - out_begin, w.in_features,
          args.input + row_begin * args.input_row_stride, args.input_row_stride, w.data + out_begin * w.out_stride,
          w.out_stride, out, args.output_row_stride, false);
  const Epilogue epilogue = OffsetEpilogue(args.epilogue, out_begin);
  for (int64_t r = row_begin; r < row_end; ++r) {
    ApplyEpilogue(epilogue, out + (r - row_begin) * args.output_row_stride, out_end - out_begin);
  }
}

}  // namespace

const char* CheckFullyConnectedArgs(const FullyConnectedArgs& args) {
  const MatrixView& w = args.weights;
  if (args.input == nullptr || args.output == nullptr || w.data == nullptr) return "null data pointer";
  if (args.rows <= 0) return "no input rows";
  if (w.out_features <= 0 || w.in_features <= 0) return "empty weights";
  if (w.out_stride < w.in_features) return "weight row stride below its input features";
  if (args.input_row_stride < w.in_features) return "input row stride below the weights' input features";
  if (args.output_row_stride < w.out_features) return "output row stride below the weights' output features";
  return nullptr;
}

void FullyConnected(const FullyConnectedArgs& args, ThreadPool* pool) {
  const int outputs = args.weights.out_features;
  const int64_t work = static_cast<int64_t>(args.rows) * outputs * args.weights.in_features;
  const int threads = (pool != nullptr && work >= kMinWorkForThreads) ? pool->num_threads() : 1;
  if (threads <= 1) {
    RunBlock(args, 0, args.rows, 0, outputs);
    return;
  }
  const bool split_rows = args.rows >= kMinRowsPerTask * threads;
  const int tasks = split_rows ? ChunkCount(args.rows, threads, kMinRowsPerTask)
                               : ChunkCount(outputs, threads, kOutputQuantum);
  pool->ParallelFor(tasks, [&](int task) {
    if (split_rows) {
      const Range r = ChunkRange(args.rows, tasks, task, 1);
      if (r.begin < r.end) RunBlock(args, r.begin, r.end, 0, outputs);
    } else {
      const Range r = ChunkRange(outputs, tasks, task, kOutputQuantum);
      if (r.begin < r.end) RunBlock(args, 0, args.rows, static_cast<int>(r.begin), static_cast<int>(r.end));
    }
  });
}

}  // namespace adaspring::kernels
