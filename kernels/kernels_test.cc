// Kernel tests: hand-computed cases plus randomized comparisons against the naive reference loops,
// covering strides, dilation, SAME/VALID padding, epilogues, strided (sliced) weight views, pixel
// strides, both GEMM lowerings and 1-3 threads. Exits non-zero on the first report of any failure.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/test_checks.h"
#include "kernels/conv2d.h"
#include "kernels/depthwise_conv2d.h"
#include "kernels/fully_connected.h"
#include "kernels/gemm.h"
#include "kernels/reference.h"
#include "kernels/thread_pool.h"
#include "kernels/views.h"

namespace adaspring::kernels {
namespace {

using ::adaspring::testing::Expect;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kSentinel = -12345.0f;

std::vector<float> Random(size_t n, std::mt19937* rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(*rng);
  return v;
}

Activation ToKernel(reference::Act act) {
  if (act == reference::Act::kRelu) return Activation::kRelu;
  if (act == reference::Act::kRelu6) return Activation::kRelu6;
  return Activation::kNone;
}

// Independent of ComputeAxisGeometry: the textbook formulas.
void Geometry(int in, int k, int stride, int dilation, bool same, int* out, int* pad) {
  const int eff = (k - 1) * dilation + 1;
  *out = same ? (in + stride - 1) / stride : (in - eff + stride) / stride;
  const int total = (*out - 1) * stride + eff - in;
  *pad = same && total > 0 ? total / 2 : 0;
}

// Compares `got` (pixel stride `got_stride`, `channels` used) with the dense reference; checks that
// the slack between channels and got_stride still holds the sentinel.
bool SameOutput(const std::vector<float>& want, const std::vector<float>& got, int pixels, int channels,
                int got_stride, std::string* detail) {
  for (int p = 0; p < pixels; ++p) {
    for (int c = 0; c < got_stride; ++c) {
      const float g = got[p * got_stride + c];
      if (c >= channels) {
        if (g != kSentinel) {
          *detail = "slack overwritten at pixel " + std::to_string(p);
          return false;
        }
        continue;
      }
      const float w = want[p * channels + c];
      if (!(std::fabs(g - w) <= 1e-4f * (1.0f + std::fabs(w)))) {
        *detail = "pixel " + std::to_string(p) + " ch " + std::to_string(c) + ": got " + std::to_string(g) +
                  " want " + std::to_string(w);
        return false;
      }
    }
  }
  return true;
}

struct ConvCase {
  const char* name;
  int batch, in_h, in_w, in_c, out_c, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
  bool same;
  reference::Act act;
  int extra_out = 0;  // the stored filter has this many more output channels (width slice)
  int extra_in = 0;   // ... and this many more input channels
  bool scale_shift = false;
};

// `input_slack`: extra channels per input pixel (NaN-filled); 0 makes the input pixels contiguous, so
// im2col copies whole filter rows at once.
void RunConvCase(const ConvCase& c, ConvMethod method, ThreadPool* pool, std::mt19937* rng, int input_slack) {
  reference::ConvShape s{};
  s.batch = c.batch;
  s.in_h = c.in_h;
  s.in_w = c.in_w;
  s.in_c = c.in_c;
  s.out_c = c.out_c;
  s.kernel_h = c.kernel_h;
  s.kernel_w = c.kernel_w;
  s.stride_h = c.stride_h;
  s.stride_w = c.stride_w;
  s.dilation_h = c.dilation_h;
  s.dilation_w = c.dilation_w;
  Geometry(c.in_h, c.kernel_h, c.stride_h, c.dilation_h, c.same, &s.out_h, &s.pad_top);
  Geometry(c.in_w, c.kernel_w, c.stride_w, c.dilation_w, c.same, &s.out_w, &s.pad_left);

  // Stored (larger) filter and per-channel arrays; the reference gets the dense prefix slice.
  const int full_out = c.out_c + c.extra_out;
  const int full_in = c.in_c + c.extra_in;
  const int taps = c.kernel_h * c.kernel_w;
  const std::vector<float> stored = Random(static_cast<size_t>(full_out) * taps * full_in, rng);
  std::vector<float> dense(static_cast<size_t>(c.out_c) * taps * c.in_c);
  for (int o = 0; o < c.out_c; ++o)
    for (int t = 0; t < taps; ++t)
      for (int i = 0; i < c.in_c; ++i) dense[(o * taps + t) * c.in_c + i] = stored[(o * taps + t) * full_in + i];
  const std::vector<float> bias = Random(full_out, rng);
  std::vector<float> scale, shift;
  if (c.scale_shift) {
    scale = Random(full_out, rng);
    shift = Random(full_out, rng);
  }

  // Input with slack channels per pixel that hold NaN: reading them would poison the result.
  const int in_stride = c.in_c + input_slack;
  const int in_pixels = c.batch * c.in_h * c.in_w;
  const std::vector<float> values = Random(static_cast<size_t>(in_pixels) * c.in_c, rng);
  std::vector<float> input(static_cast<size_t>(in_pixels) * in_stride, kNaN);
  for (int p = 0; p < in_pixels; ++p)
    for (int i = 0; i < c.in_c; ++i) input[p * in_stride + i] = values[p * c.in_c + i];

  const int out_stride = c.out_c + 3;
  const int out_pixels = c.batch * s.out_h * s.out_w;
  std::vector<float> output(static_cast<size_t>(out_pixels) * out_stride, kSentinel);

  Conv2DArgs args;
  args.input = {input.data(), c.batch, c.in_h, c.in_w, c.in_c, in_stride};
  args.filter = ConvFilterView::Dense(stored.data(), full_out, c.kernel_h, c.kernel_w, full_in).Slice(c.out_c, c.in_c);
  args.window = {c.stride_h, c.stride_w, c.dilation_h, c.dilation_w, s.pad_top, s.pad_left};
  args.epilogue.bias = bias.data();
  args.epilogue.scale = c.scale_shift ? scale.data() : nullptr;
  args.epilogue.shift = c.scale_shift ? shift.data() : nullptr;
  args.epilogue.activation = ToKernel(c.act);
  args.output = {output.data(), c.batch, s.out_h, s.out_w, c.out_c, out_stride};
  args.method = method;
  const char* problem = CheckConv2DArgs(args);
  const std::string label = std::string("conv ") + c.name + " method=" + std::to_string(static_cast<int>(method)) +
                            " threads=" + std::to_string(pool ? pool->num_threads() : 1) +
                            " input_slack=" + std::to_string(input_slack);
  Expect(problem == nullptr, label + ": args rejected: " + (problem ? problem : ""));
  if (problem != nullptr) return;
  Conv2D(args, pool);

  std::vector<float> prefix_bias(bias.begin(), bias.begin() + c.out_c);
  std::vector<float> prefix_scale, prefix_shift;
  if (c.scale_shift) {
    prefix_scale.assign(scale.begin(), scale.begin() + c.out_c);
    prefix_shift.assign(shift.begin(), shift.begin() + c.out_c);
  }
  const std::vector<float> want = reference::Conv2D(s, values, dense, prefix_bias, prefix_scale, prefix_shift, c.act);
  std::string detail;
  const bool same = SameOutput(want, output, out_pixels, c.out_c, out_stride, &detail);
  Expect(same, label + ": " + detail);
}

struct DepthwiseCase {
  const char* name;
  int batch, in_h, in_w, in_c, multiplier, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
  bool same;
  reference::Act act;
  int extra_channels = 0;  // stored filter has this many more output channels (a multiple of multiplier)
};

void RunDepthwiseCase(const DepthwiseCase& c, ThreadPool* pool, std::mt19937* rng) {
  reference::ConvShape s{};
  s.batch = c.batch;
  s.in_h = c.in_h;
  s.in_w = c.in_w;
  s.in_c = c.in_c;
  s.out_c = c.in_c * c.multiplier;
  s.kernel_h = c.kernel_h;
  s.kernel_w = c.kernel_w;
  s.stride_h = c.stride_h;
  s.stride_w = c.stride_w;
  s.dilation_h = c.dilation_h;
  s.dilation_w = c.dilation_w;
  Geometry(c.in_h, c.kernel_h, c.stride_h, c.dilation_h, c.same, &s.out_h, &s.pad_top);
  Geometry(c.in_w, c.kernel_w, c.stride_w, c.dilation_w, c.same, &s.out_w, &s.pad_left);
  const int full_c = s.out_c + c.extra_channels;
  const int taps = c.kernel_h * c.kernel_w;
  const std::vector<float> stored = Random(static_cast<size_t>(taps) * full_c, rng);
  std::vector<float> dense(static_cast<size_t>(taps) * s.out_c);
  for (int t = 0; t < taps; ++t)
    for (int o = 0; o < s.out_c; ++o) dense[t * s.out_c + o] = stored[t * full_c + o];
  const std::vector<float> bias = Random(full_c, rng);
  const int in_pixels = c.batch * c.in_h * c.in_w;
  const std::vector<float> input = Random(static_cast<size_t>(in_pixels) * c.in_c, rng);
  const int out_stride = s.out_c + 1;
  const int out_pixels = c.batch * s.out_h * s.out_w;
  std::vector<float> output(static_cast<size_t>(out_pixels) * out_stride, kSentinel);

  DepthwiseConv2DArgs args;
  args.input = {input.data(), c.batch, c.in_h, c.in_w, c.in_c, c.in_c};
  args.filter = DepthwiseFilterView::Dense(stored.data(), c.kernel_h, c.kernel_w, full_c).Slice(s.out_c);
  args.depth_multiplier = c.multiplier;
  args.window = {c.stride_h, c.stride_w, c.dilation_h, c.dilation_w, s.pad_top, s.pad_left};
  args.epilogue.bias = bias.data();
  args.epilogue.activation = ToKernel(c.act);
  args.output = {output.data(), c.batch, s.out_h, s.out_w, s.out_c, out_stride};
  const std::string label =
      std::string("depthwise ") + c.name + " threads=" + std::to_string(pool ? pool->num_threads() : 1);
  const char* problem = CheckDepthwiseConv2DArgs(args);
  Expect(problem == nullptr, label + ": args rejected: " + (problem ? problem : ""));
  if (problem != nullptr) return;
  DepthwiseConv2D(args, pool);
  const std::vector<float> prefix_bias(bias.begin(), bias.begin() + s.out_c);
  const std::vector<float> want = reference::DepthwiseConv2D(s, c.multiplier, input, dense, prefix_bias, c.act);
  std::string detail;
  const bool same = SameOutput(want, output, out_pixels, s.out_c, out_stride, &detail);
  Expect(same, label + ": " + detail);
}

void RunFullyConnectedCase(int rows, int in, int out, int extra_in, int extra_out, reference::Act act,
                           ThreadPool* pool, std::mt19937* rng) {
  const int full_in = in + extra_in;
  const int full_out = out + extra_out;
  const std::vector<float> stored = Random(static_cast<size_t>(full_out) * full_in, rng);
  std::vector<float> dense(static_cast<size_t>(out) * in);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) dense[o * in + i] = stored[o * full_in + i];
  const std::vector<float> bias = Random(full_out, rng);
  const std::vector<float> input = Random(static_cast<size_t>(rows) * in, rng);
  const int out_stride = out + 2;
  std::vector<float> output(static_cast<size_t>(rows) * out_stride, kSentinel);
  FullyConnectedArgs args;
  args.input = input.data();
  args.rows = rows;
  args.input_row_stride = in;
  args.weights = MatrixView::Dense(stored.data(), full_out, full_in).Slice(out, in);
  args.epilogue.bias = bias.data();
  args.epilogue.activation = ToKernel(act);
  args.output = output.data();
  args.output_row_stride = out_stride;
  const std::string label = "fully_connected rows=" + std::to_string(rows) + " in=" + std::to_string(in) +
                            " out=" + std::to_string(out) + " slice=+" + std::to_string(extra_out) + "/+" +
                            std::to_string(extra_in) + " threads=" + std::to_string(pool ? pool->num_threads() : 1);
  const char* problem = CheckFullyConnectedArgs(args);
  Expect(problem == nullptr, label + ": args rejected: " + (problem ? problem : ""));
  if (problem != nullptr) return;
  FullyConnected(args, pool);
  const std::vector<float> prefix_bias(bias.begin(), bias.begin() + out);
  const std::vector<float> want = reference::FullyConnected(rows, in, out, input, dense, prefix_bias, act);
  std::string detail;
  const bool same = SameOutput(want, output, rows, out, out_stride, &detail);
  Expect(same, label + ": " + detail);
}

// Hand-computed: input [1, 2, 3, 4], filter [1, 0, -1], SAME (pad 1 | 1), bias 0.5, then ReLU:
// raw = [0*1 + 1*0 + 2*-1, 1 - 3, 2 - 4, 3 - 0] = [-2, -2, -2, 3] -> +0.5 -> ReLU -> [0, 0, 0, 3.5].
void TestHandComputedConv(ThreadPool* pool) {
  const float input[] = {1, 2, 3, 4};
  const float filter[] = {1, 0, -1};
  const float bias[] = {0.5f};
  float output[4] = {9, 9, 9, 9};
  for (ConvMethod method : {ConvMethod::kIm2col, ConvMethod::kPerTap, ConvMethod::kTiled}) {
    Conv2DArgs args;
    args.input = {input, 1, 1, 4, 1, 1};
    args.filter = ConvFilterView::Dense(filter, 1, 1, 3, 1);
    args.window = {1, 1, 1, 1, 0, 1};
    args.epilogue.bias = bias;
    args.epilogue.activation = Activation::kRelu;
    args.output = {output, 1, 1, 4, 1, 1};
    args.method = method;
    Conv2D(args, pool);
    const float want[] = {0, 0, 0, 3.5f};
    for (int i = 0; i < 4; ++i) {
      Expect(output[i] == want[i], "hand conv method " + std::to_string(static_cast<int>(method)) + " x=" +
                                       std::to_string(i) + " got " + std::to_string(output[i]));
    }
  }
}

// Hand-computed TiledGemm: two rows of depth 3, three output channels whose weights are stored with a
// row stride of 4 (a slice), folded scale/shift, ReLU6.
//   row 0 = [1, 2, 3], row 1 = [-1, 0, 2]; w0 = [1, 0, 0], w1 = [0, 1, 1], w2 = [2, -1, 1]
//   acc = [[1, 5, 3], [-1, 2, 0]]; (acc + bias [1, 0, -1]) * scale [1, 2, 0.5] + shift [0, -1, 4]
//   = [[2, 9, 5], [0, 3, 3.5]] -> ReLU6 -> [[2, 6, 5], [0, 3, 3.5]]
// The rows are given once as one run of 3 floats each and once as three runs of 1 (the per-tap form);
// a channel range [0, 2) leaves channel 2 alone.
void TestHandComputedTiledGemm() {
  const float weights[] = {1, 0, 0, 99, 0, 1, 1, 99, 2, -1, 1, 99};
  const float bias[] = {1, 0, -1};
  const float scale[] = {1, 2, 0.5f};
  const float shift[] = {0, -1, 4};
  WeightRows rows;
  rows.data = weights;
  rows.out_channels = 3;
  rows.out_stride = 4;
  rows.segments = 1;
  rows.segment_length = 3;
  Epilogue epilogue;
  epilogue.bias = bias;
  epilogue.scale = scale;
  epilogue.shift = shift;
  epilogue.activation = Activation::kRelu6;
  std::vector<float> storage;
  PackedWeights packed;
  PackWeights(rows, epilogue, &storage, &packed);
  Expect(packed.depth == 3 && packed.out_channels == 3 && packed.tile_rows >= 2, "tiled: packed shape");
  const float row0[] = {1, 2, 3};
  const float row1[] = {-1, 0, 2};
  const float want[] = {2, 6, 5, kSentinel, 0, 3, 3.5f, kSentinel};
  const float* whole[] = {row0, row1};
  const float* taps[] = {row0, row1, row0 + 1, row1 + 1, row0 + 2, row1 + 2};  // run s of row m: [s * 2 + m]
  for (int segments : {1, 3}) {
    float out[8];
    for (float& v : out) v = kSentinel;
    const RowTile tile{segments == 1 ? whole : taps, 2, out};
    TiledGemm(packed, &tile, 1, segments, 3 / segments, 0, 3, 4);
    for (int i = 0; i < 8; ++i) {
      Expect(out[i] == want[i], "tiled hand-computed, " + std::to_string(segments) + " runs, value " +
                                    std::to_string(i) + ": got " + std::to_string(out[i]));
    }
  }
  float out[8];
  for (float& v : out) v = kSentinel;
  const RowTile tile{whole, 2, out};
  TiledGemm(packed, &tile, 1, 1, 3, 0, 2, 4);
  Expect(out[0] == 2 && out[1] == 6 && out[2] == kSentinel && out[4] == 0 && out[5] == 3 && out[6] == kSentinel,
         "tiled channel range [0, 2) writes channels 0 and 1 only");
}

// Hand-computed: input [[1, 2]], weights [[1, 1], [2, -3]], bias [0, 10], ReLU6 -> [3, 6] (10 - 4 = 6 exactly).
void TestHandComputedFullyConnected() {
  const float input[] = {1, 2};
  const float weights[] = {1, 1, 2, -3};
  const float bias[] = {0, 10};
  float output[2] = {};
  FullyConnectedArgs args;
  args.input = input;
  args.rows = 1;
  args.input_row_stride = 2;
  args.weights = MatrixView::Dense(weights, 2, 2);
  args.epilogue.bias = bias;
  args.epilogue.activation = Activation::kRelu6;
  args.output = output;
  args.output_row_stride = 2;
  FullyConnected(args, nullptr);
  Expect(output[0] == 3.0f && output[1] == 6.0f, "hand fully_connected");
}

// Hand-computed depthwise, multiplier 2: input channels [1, 2] at one pixel, 1x1 filter
// [1, -1, 0.5, 2] -> outputs [1, -1, 1, 4].
void TestHandComputedDepthwise() {
  const float input[] = {1, 2};
  const float filter[] = {1, -1, 0.5f, 2};
  float output[4] = {};
  DepthwiseConv2DArgs args;
  args.input = {input, 1, 1, 1, 2, 2};
  args.filter = DepthwiseFilterView::Dense(filter, 1, 1, 4);
  args.depth_multiplier = 2;
  args.output = {output, 1, 1, 1, 4, 4};
  DepthwiseConv2D(args, nullptr);
  Expect(output[0] == 1 && output[1] == -1 && output[2] == 1 && output[3] == 4, "hand depthwise multiplier 2");
}

// A rank-r prefix of factors V [R, 1, KW, I] (a conv to R channels) and U [O, R] (a 1x1 conv) taken
// from the stored, larger factors without copying, equals the dense conv with W = U[:k, :r] V[:r].
void TestLowRankPrefix(ThreadPool* pool, std::mt19937* rng) {
  const int full_rank = 12, rank = 5, in_c = 6, full_out = 10, out_c = 7, kernel_w = 3, width = 20;
  const std::vector<float> v = Random(static_cast<size_t>(full_rank) * kernel_w * in_c, rng);
  const std::vector<float> u = Random(static_cast<size_t>(full_out) * full_rank, rng);
  const std::vector<float> bias = Random(full_out, rng);
  const std::vector<float> input = Random(static_cast<size_t>(width) * in_c, rng);
  std::vector<float> hidden(static_cast<size_t>(width) * rank), output(static_cast<size_t>(width) * out_c);

  Conv2DArgs first;
  first.input = {input.data(), 1, 1, width, in_c, in_c};
  first.filter = ConvFilterView::Dense(v.data(), full_rank, 1, kernel_w, in_c).Slice(rank, in_c);
  first.window = {1, 1, 1, 1, 0, 1};
  first.output = {hidden.data(), 1, 1, width, rank, rank};
  Conv2D(first, pool);
  Conv2DArgs second;
  second.input = {hidden.data(), 1, 1, width, rank, rank};
  second.filter = ConvFilterView::Dense(u.data(), full_out, 1, 1, full_rank).Slice(out_c, rank);
  second.epilogue.bias = bias.data();
  second.output = {output.data(), 1, 1, width, out_c, out_c};
  Expect(CheckConv2DArgs(first) == nullptr && CheckConv2DArgs(second) == nullptr, "low-rank args");
  Conv2D(second, pool);

  std::vector<float> dense(static_cast<size_t>(out_c) * kernel_w * in_c, 0.0f);
  for (int o = 0; o < out_c; ++o)
    for (int j = 0; j < rank; ++j)
      for (int t = 0; t < kernel_w * in_c; ++t) {
        dense[o * kernel_w * in_c + t] += u[o * full_rank + j] * v[j * kernel_w * in_c + t];
      }
  reference::ConvShape s{1, 1, width, in_c, out_c, 1, kernel_w, 1, 1, 1, 1, 0, 1, 1, width};
  const std::vector<float> prefix_bias(bias.begin(), bias.begin() + out_c);
  const std::vector<float> want = reference::Conv2D(s, input, dense, prefix_bias, {}, {}, reference::Act::kNone);
  std::string detail;
  const bool same = SameOutput(want, output, width, out_c, out_c, &detail);
  Expect(same, "low-rank prefix threads=" + std::to_string(pool ? pool->num_threads() : 1) + ": " + detail);
}

void TestGeometry() {
  AxisGeometry g;
  Expect(ComputeAxisGeometry(128, 5, 1, 1, Padding::kSame, &g) && g.out == 128 && g.pad_before == 2, "same 128/5/1");
  Expect(ComputeAxisGeometry(128, 3, 2, 1, Padding::kValid, &g) && g.out == 63 && g.pad_before == 0, "valid 128/3/2");
  Expect(ComputeAxisGeometry(5, 3, 2, 1, Padding::kSame, &g) && g.out == 3 && g.pad_before == 1, "same 5/3/2");
  Expect(ComputeAxisGeometry(6, 3, 2, 1, Padding::kSame, &g) && g.out == 3 && g.pad_before == 0, "same 6/3/2");
  Expect(ComputeAxisGeometry(10, 3, 1, 2, Padding::kValid, &g) && g.out == 6, "valid dilated 10/3/1/2");
  Expect(ComputeAxisGeometry(10, 3, 1, 2, Padding::kSame, &g) && g.out == 10 && g.pad_before == 2, "same dilated");
  Expect(!ComputeAxisGeometry(2, 3, 1, 1, Padding::kValid, &g), "valid filter larger than input is rejected");
  Expect(!ComputeAxisGeometry(4, 3, 0, 1, Padding::kSame, &g), "zero stride is rejected");
}

void TestThreadPool() {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    Expect(pool.num_threads() == threads, "pool size");
    for (int round = 0; round < 200; ++round) {
      const int tasks = 1 + round % 7;
      std::vector<std::atomic<int>> hits(tasks);
      pool.ParallelFor(tasks, [&](int i) { hits[i].fetch_add(1); });
      bool once = true;
      for (auto& h : hits) once = once && h.load() == 1;
      Expect(once, "every task runs exactly once (threads=" + std::to_string(threads) + ")");
    }
  }
  // Two callers at once: the one that finds the pool busy runs its tasks itself.
  ThreadPool shared(2);
  std::atomic<int> total{0};
  std::thread other([&] {
    for (int r = 0; r < 500; ++r) shared.ParallelFor(4, [&](int) { total.fetch_add(1); });
  });
  for (int r = 0; r < 500; ++r) shared.ParallelFor(4, [&](int) { total.fetch_add(1); });
  other.join();
  Expect(total.load() == 4000, "concurrent ParallelFor callers");
  for (int chunks = 1; chunks <= 5; ++chunks) {
    int64_t covered = 0, last_end = 0;
    for (int i = 0; i < chunks; ++i) {
      const Range r = ChunkRange(37, chunks, i, 4);
      Expect(r.begin == last_end, "chunk ranges are contiguous");
      Expect(r.begin == r.end || r.end == 37 || r.end % 4 == 0, "inner chunk boundaries respect the quantum");
      covered += r.end - r.begin;
      last_end = r.end;
    }
    Expect(covered == 37, "chunk ranges cover everything");
  }
}

}  // namespace
}  // namespace adaspring::kernels

int main() {
  using adaspring::kernels::ConvCase;
  using adaspring::kernels::ConvMethod;
  using adaspring::kernels::DepthwiseCase;
  using adaspring::kernels::ThreadPool;
  using Act = adaspring::kernels::reference::Act;
  namespace k = adaspring::kernels;
  std::mt19937 rng(1234);
  ThreadPool pool2(2), pool3(3);
  std::vector<ThreadPool*> pools = {nullptr, &pool2, &pool3};

  k::TestGeometry();
  k::TestThreadPool();
  k::TestHandComputedFullyConnected();
  k::TestHandComputedTiledGemm();
  k::TestHandComputedDepthwise();
  for (ThreadPool* pool : pools) k::TestHandComputedConv(pool);
  for (ThreadPool* pool : pools) k::TestLowRankPrefix(pool, &rng);

  const ConvCase conv_cases[] = {
      // name, N, H, W, Cin, Cout, KH, KW, sh, sw, dh, dw, same, act, extra_out, extra_in, scale_shift
      {"1d_same_k5", 1, 1, 40, 6, 16, 1, 5, 1, 1, 1, 1, true, Act::kRelu},
      {"1d_valid_s2_relu6", 2, 1, 33, 8, 12, 1, 3, 1, 2, 1, 1, false, Act::kRelu6},
      {"1d_dilated_same", 1, 1, 30, 5, 7, 1, 3, 1, 1, 1, 3, true, Act::kNone},
      {"2d_same_3x3", 2, 9, 7, 3, 5, 3, 3, 1, 1, 1, 1, true, Act::kRelu},
      {"2d_same_s2_even", 1, 8, 8, 4, 6, 3, 3, 2, 2, 1, 1, true, Act::kNone},
      {"2d_valid_s2x1_dil2x1", 1, 11, 9, 3, 4, 3, 2, 2, 1, 2, 1, false, Act::kRelu6},
      {"2d_pointwise", 2, 5, 6, 16, 24, 1, 1, 1, 1, 1, 1, true, Act::kNone},
      {"2d_pointwise_s2", 1, 6, 6, 8, 8, 1, 1, 2, 2, 1, 1, false, Act::kRelu},
      {"2d_5x5_s3", 1, 13, 12, 2, 3, 5, 5, 3, 3, 1, 1, true, Act::kNone},
      {"sliced_out_in", 1, 1, 50, 12, 20, 1, 5, 1, 1, 1, 1, true, Act::kRelu, 12, 20, true},
      {"sliced_2d", 1, 6, 5, 4, 6, 3, 3, 1, 1, 1, 1, true, Act::kRelu6, 10, 4, true},
      {"sliced_pointwise", 1, 4, 4, 8, 8, 1, 1, 1, 1, 1, 1, true, Act::kNone, 8, 8},
      {"few_pixels_many_channels", 1, 1, 3, 64, 96, 1, 3, 1, 1, 1, 1, true, Act::kRelu},
      {"wide_1d", 1, 1, 128, 64, 64, 1, 5, 1, 1, 1, 1, true, Act::kRelu, 0, 0, true},
      // Tiled kernel: three panels in one group (17..24 channels), an odd number of panels > 3 (40
      // channels: groups of 2 and a last single panel), one output channel, padding only at the bottom
      // and right (stride 2 over an even map), and few pixels with deep weights (auto picks Eigen).
      {"three_panels_2d", 2, 5, 6, 7, 21, 3, 3, 1, 1, 1, 1, true, Act::kRelu6, 3, 2, true},
      {"odd_panels_40", 1, 6, 5, 9, 40, 3, 3, 1, 1, 1, 1, true, Act::kNone, 8, 0, true},
      {"one_channel", 1, 1, 37, 5, 1, 1, 3, 1, 1, 1, 1, true, Act::kRelu},
      {"s2_pad_bottom_right", 1, 10, 10, 2, 9, 3, 3, 2, 2, 1, 1, true, Act::kNone},
      {"deep_few_pixels", 1, 4, 4, 64, 20, 3, 3, 1, 1, 1, 1, true, Act::kRelu, 4, 0, true},
  };
  for (const ConvCase& c : conv_cases)
    for (ConvMethod method : {ConvMethod::kAuto, ConvMethod::kIm2col, ConvMethod::kPerTap, ConvMethod::kTiled})
      for (ThreadPool* pool : pools)
        for (int input_slack : {2, 0}) k::RunConvCase(c, method, pool, &rng, input_slack);

  const DepthwiseCase dw_cases[] = {
      {"m1_same_3x3", 2, 7, 6, 5, 1, 3, 3, 1, 1, 1, 1, true, Act::kRelu},
      {"m2_valid_s2", 1, 9, 9, 3, 2, 3, 3, 2, 2, 1, 1, false, Act::kRelu6},
      {"m3_dilated", 1, 10, 8, 2, 3, 3, 3, 1, 1, 2, 2, true, Act::kNone},
      {"1d_m1", 1, 1, 64, 32, 1, 1, 5, 1, 1, 1, 1, true, Act::kRelu},
      {"sliced_m2", 1, 5, 5, 3, 2, 3, 3, 1, 1, 1, 1, true, Act::kNone, 4},
      {"big_1d", 2, 1, 128, 64, 1, 1, 7, 1, 1, 1, 1, true, Act::kRelu6},
  };
  for (const DepthwiseCase& c : dw_cases)
    for (ThreadPool* pool : pools) k::RunDepthwiseCase(c, pool, &rng);

  for (ThreadPool* pool : pools) {
    k::RunFullyConnectedCase(1, 7, 5, 0, 0, Act::kNone, pool, &rng);
    k::RunFullyConnectedCase(1, 300, 200, 0, 0, Act::kRelu, pool, &rng);
    k::RunFullyConnectedCase(6, 33, 17, 0, 0, Act::kRelu6, pool, &rng);
    k::RunFullyConnectedCase(64, 64, 64, 0, 0, Act::kRelu, pool, &rng);
    k::RunFullyConnectedCase(3, 40, 30, 24, 10, Act::kNone, pool, &rng);
    k::RunFullyConnectedCase(1, 128, 96, 128, 32, Act::kRelu, pool, &rng);
  }

  return ::adaspring::testing::Finish();
}
