#include "kernels/depthwise_conv2d.h"

#include <algorithm>
#include <cstring>

#include "kernels/epilogue.h"

namespace adaspring::kernels {
namespace {

constexpr int64_t kMinPixelsPerTask = 16;
// Below this many multiply-adds a job is not worth waking another thread for.
constexpr int64_t kMinWorkForThreads = 32 * 1024;

// Adds one filter tap to one output pixel.
void AccumulateTap(const float* in, const float* weights, int multiplier, int out_channels, float* out) {
  if (multiplier == 1) {
    for (int c = 0; c < out_channels; ++c) out[c] += in[c] * weights[c];
    return;
  }
  const int in_channels = out_channels / multiplier;
  for (int c = 0; c < in_channels; ++c) {
    const float value = in[c];
    const float* w = weights + c * multiplier;
    float* o = out + c * multiplier;
    for (int j = 0; j < multiplier; ++j) o[j] += value * w[j];
  }
}

void RunPixels(const DepthwiseConv2DArgs& args, int64_t begin, int64_t end) {
  const InputView& in = args.input;
  const OutputView& out = args.output;
  const ConvWindow& w = args.window;
  const DepthwiseFilterView& f = args.filter;
  for (int64_t q = begin; q < end; ++q) {
    const int64_t x = q % out.width;
    const int64_t y = (q / out.width) % out.height;
    const int64_t n = q / (static_cast<int64_t>(out.width) * out.height);
    float* dst = out.data + q * out.pixel_stride;
    std::memset(dst, 0, sizeof(float) * f.out_channels);
    for (int ky = 0; ky < f.kernel_h; ++ky) {
      const int64_t iy = y * w.stride_h - w.pad_top + static_cast<int64_t>(ky) * w.dilation_h;
      if (iy < 0 || iy >= in.height) continue;
      for (int kx = 0; kx < f.kernel_w; ++kx) {
        const int64_t ix = x * w.stride_w - w.pad_left + static_cast<int64_t>(kx) * w.dilation_w;
        if (ix < 0 || ix >= in.width) continue;
        const float* src = in.data + ((n * in.height + iy) * in.width + ix) * in.pixel_stride;
        const float* taps = f.data + (static_cast<int64_t>(ky) * f.kernel_w + kx) * f.tap_stride;
        AccumulateTap(src, taps, args.depth_multiplier, f.out_channels, dst);
      }
    }
    ApplyEpilogue(args.epilogue, dst, f.out_channels);
  }
}

}  // namespace

const char* CheckDepthwiseConv2DArgs(const DepthwiseConv2DArgs& args) {
  const InputView& in = args.input;
  const OutputView& out = args.output;
  const DepthwiseFilterView& f = args.filter;
  const ConvWindow& w = args.window;
  if (in.data == nullptr || out.data == nullptr || f.data == nullptr) return "null data pointer";
  if (in.batch <= 0 || in.height <= 0 || in.width <= 0 || in.channels <= 0) return "empty input";
  if (args.depth_multiplier <= 0) return "depth multiplier must be positive";
  if (f.kernel_h <= 0 || f.kernel_w <= 0 || f.out_channels <= 0) return "empty filter";
  if (static_cast<int64_t>(in.channels) * args.depth_multiplier != f.out_channels) {
    return "input channels * depth multiplier differ from the filter's channels";
  }
  if (out.channels != f.out_channels) return "output channels differ from the filter's channels";
  if (out.batch != in.batch || out.height <= 0 || out.width <= 0) return "bad output shape";
  if (in.pixel_stride < in.channels || out.pixel_stride < out.channels) return "pixel stride below channel count";
  if (f.tap_stride < f.out_channels) return "filter tap stride below its channel count";
  if (w.stride_h <= 0 || w.stride_w <= 0 || w.dilation_h <= 0 || w.dilation_w <= 0) return "bad window";
  if (w.pad_top < 0 || w.pad_left < 0) return "negative padding";
  return nullptr;
}

void DepthwiseConv2D(const DepthwiseConv2DArgs& args, ThreadPool* pool) {
  const int64_t pixels = static_cast<int64_t>(args.output.batch) * args.output.height * args.output.width;
  const int64_t work = pixels * args.filter.out_channels * args.filter.kernel_h * args.filter.kernel_w;
  const int threads = (pool != nullptr && work >= kMinWorkForThreads) ? pool->num_threads() : 1;
  const int tasks = ChunkCount(pixels, threads, kMinPixelsPerTask);
  auto run = [&](int task) {
    const Range r = ChunkRange(pixels, tasks, task, 1);
    RunPixels(args, r.begin, r.end);
  };
  if (pool != nullptr && tasks > 1) {
    pool->ParallelFor(tasks, run);
  } else {
    run(0);
  }
}

}  // namespace adaspring::kernels
