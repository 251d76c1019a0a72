#include "kernels/conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/epilogue.h"
#include "kernels/gemm.h"

namespace adaspring::kernels {
namespace {

// Largest im2col block, in floats, gathered per GEMM call (bounds each thread's scratch).
constexpr int64_t kIm2colBlockFloats = 256 * 1024;
// Fewer output pixels than this per thread: split output channels instead of pixels.
constexpr int64_t kMinPixelsPerTask = 8;
constexpr int64_t kChannelQuantum = 16;
// Below this many multiply-adds a convolution is not worth waking another thread for.
constexpr int64_t kMinWorkForThreads = 32 * 1024;

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t CeilDiv(int64_t a, int64_t b) { return -FloorDiv(-a, b); }

// One unit of work: output pixels [pixel_begin, pixel_end) (linear over n, y, x) and output
// channels [channel_begin, channel_end).
struct Tile {
  int64_t pixel_begin;
  int64_t pixel_end;
  int channel_begin;
  int channel_end;
};

// The filter, epilogue and output restricted to the tile's channels (views only).
struct ChannelSlice {
  ConvFilterView filter;
  Epilogue epilogue;
  float* output;
};

ChannelSlice SliceChannels(const Conv2DArgs& args, const Tile& tile) {
  ChannelSlice slice;
  slice.filter = args.filter;
  slice.filter.data += tile.channel_begin * args.filter.out_stride;
  slice.filter.out_channels = tile.channel_end - tile.channel_begin;
  slice.epilogue = OffsetEpilogue(args.epilogue, tile.channel_begin);
  slice.output = args.output.data + tile.channel_begin;
  return slice;
}

bool IsIdentityWindow(const Conv2DArgs& args) {
  const ConvWindow& w = args.window;
  return args.filter.kernel_h == 1 && args.filter.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 &&
         w.pad_top == 0 && w.pad_left == 0 && args.input.height == args.output.height &&
         args.input.width == args.output.width;
}

void FinishPixels(const Conv2DArgs& args, const ChannelSlice& slice, const Tile& tile) {
  const int channels = slice.filter.out_channels;
  for (int64_t q = tile.pixel_begin; q < tile.pixel_end; ++q) {
    ApplyEpilogue(slice.epilogue, slice.output + q * args.output.pixel_stride, channels);
  }
}

// 1x1, stride 1, no padding: the input pixels already are the GEMM's left operand.
void RunIdentityTile(const Conv2DArgs& args, const Tile& tile) {
  const ChannelSlice slice = SliceChannels(args, tile);
  const int64_t rows = tile.pixel_end - tile.pixel_begin;
  GemmABt(static_cast<int>(rows), slice.filter.out_channels, slice.filter.in_channels,
          args.input.data + tile.pixel_begin * args.input.pixel_stride, args.input.pixel_stride, slice.filter.data,
          slice.filter.out_stride, slice.output + tile.pixel_begin * args.output.pixel_stride,
          args.output.pixel_stride, false);
  FinishPixels(args, slice, tile);
}

// Copies or zeroes `count` floats; an inline loop, since the pieces of narrow layers are too short for a
// library call to pay off.
inline void CopyFloats(float* dst, const float* src, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] = src[i];
}
inline void ZeroFloats(float* dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] = 0.0f;
}

// Copies the receptive field of output pixel (n, y, x) into `row` (KH * KW * Cin floats, zero outside).
void GatherPatch(const Conv2DArgs& args, int64_t n, int64_t y, int64_t x, float* row) {
  const InputView& in = args.input;
  const ConvWindow& w = args.window;
  const int cin = in.channels;
  const int kw = args.filter.kernel_w;
  const int64_t ix0 = x * w.stride_w - w.pad_left;
  // The taps of one filter row are adjacent input pixels: one copy per row instead of one per tap.
  const bool row_contiguous = w.dilation_w == 1 && in.pixel_stride == cin && ix0 >= 0 && ix0 + kw <= in.width;
  for (int ky = 0; ky < args.filter.kernel_h; ++ky) {
    const int64_t iy = y * w.stride_h - w.pad_top + static_cast<int64_t>(ky) * w.dilation_h;
    if (row_contiguous) {
      if (iy < 0 || iy >= in.height) {
        ZeroFloats(row, static_cast<int64_t>(cin) * kw);
      } else {
        CopyFloats(row, in.data + ((n * in.height + iy) * in.width + ix0) * in.pixel_stride,
                   static_cast<int64_t>(cin) * kw);
      }
      row += static_cast<int64_t>(cin) * kw;
      continue;
    }
    for (int kx = 0; kx < kw; ++kx, row += cin) {
      const int64_t ix = ix0 + static_cast<int64_t>(kx) * w.dilation_w;
      if (iy < 0 || iy >= in.height || ix < 0 || ix >= in.width) {
        ZeroFloats(row, cin);
      } else {
        CopyFloats(row, in.data + ((n * in.height + iy) * in.width + ix) * in.pixel_stride, cin);
      }
    }
  }
}

// The tile's filter with contiguous taps: the filter itself, or (input-sliced filter) its used channels
// compacted into `packed` ([out, KH * KW * in], like the packing a GEMM does of its operands anyway).
ConvFilterView ContiguousFilter(const ConvFilterView& filter, std::vector<float>* packed) {
  if (filter.TapsContiguous()) return filter;
  const int taps = filter.kernel_h * filter.kernel_w;
  const int64_t row = static_cast<int64_t>(taps) * filter.in_channels;
  packed->resize(static_cast<size_t>(row) * filter.out_channels);
  for (int o = 0; o < filter.out_channels; ++o) {
    for (int t = 0; t < taps; ++t) {
      const float* src = filter.data + o * filter.out_stride + t * filter.tap_stride;
      CopyFloats(packed->data() + o * row + static_cast<int64_t>(t) * filter.in_channels, src, filter.in_channels);
    }
  }
  return ConvFilterView::Dense(packed->data(), filter.out_channels, filter.kernel_h, filter.kernel_w,
                               filter.in_channels);
}

void RunIm2colTile(const Conv2DArgs& args, const Tile& tile) {
  ChannelSlice slice = SliceChannels(args, tile);
  thread_local std::vector<float> packed_filter;
  slice.filter = ContiguousFilter(slice.filter, &packed_filter);
  const int64_t depth = static_cast<int64_t>(args.filter.kernel_h) * args.filter.kernel_w * args.filter.in_channels;
  const int64_t block_rows = std::max<int64_t>(1, kIm2colBlockFloats / std::max<int64_t>(depth, 1));
  thread_local std::vector<float> scratch;
  const int64_t want = std::min(block_rows, tile.pixel_end - tile.pixel_begin) * depth;
  if (static_cast<int64_t>(scratch.size()) < want) scratch.resize(want);
  for (int64_t q0 = tile.pixel_begin; q0 < tile.pixel_end; q0 += block_rows) {
    const int64_t q1 = std::min(q0 + block_rows, tile.pixel_end);
    const int out_w = args.output.width;
    const int out_h = args.output.height;
    int64_t x = q0 % out_w;  // pixel coordinates, advanced without divisions
    int64_t y = (q0 / out_w) % out_h;
    int64_t n = q0 / (static_cast<int64_t>(out_w) * out_h);
    for (int64_t q = q0; q < q1; ++q) {
      GatherPatch(args, n, y, x, scratch.data() + (q - q0) * depth);
      if (++x == out_w) {
        x = 0;
        if (++y == out_h) {
          y = 0;
          ++n;
        }
      }
    }
    GemmABt(static_cast<int>(q1 - q0), slice.filter.out_channels, static_cast<int>(depth), scratch.data(), depth,
            slice.filter.data, slice.filter.out_stride, slice.output + q0 * args.output.pixel_stride,
            args.output.pixel_stride, false);
  }
  FinishPixels(args, slice, tile);
}

// Accumulates every tap of the filter into output pixels [x0, x1) of output row (n, y).
void AccumulateRowPiece(const Conv2DArgs& args, const ChannelSlice& slice, int64_t n, int64_t y, int64_t x0,
                        int64_t x1) {
  const InputView& in = args.input;
  const ConvWindow& w = args.window;
  const int64_t out_row = (n * args.output.height + y) * args.output.width;
  for (int ky = 0; ky < args.filter.kernel_h; ++ky) {
    const int64_t iy = y * w.stride_h - w.pad_top + static_cast<int64_t>(ky) * w.dilation_h;
    if (iy < 0 || iy >= in.height) continue;
    for (int kx = 0; kx < args.filter.kernel_w; ++kx) {
      const int64_t offset = static_cast<int64_t>(kx) * w.dilation_w - w.pad_left;  // ix = x * stride + offset
      const int64_t lo = std::max(x0, CeilDiv(-offset, w.stride_w));
      const int64_t hi = std::min(x1, FloorDiv(in.width - 1 - offset, w.stride_w) + 1);
      if (lo >= hi) continue;
      const float* a = in.data + ((n * in.height + iy) * in.width + lo * w.stride_w + offset) * in.pixel_stride;
      const int64_t tap = static_cast<int64_t>(ky) * args.filter.kernel_w + kx;
      const float* b = slice.filter.data + tap * slice.filter.tap_stride;
      GemmABt(static_cast<int>(hi - lo), slice.filter.out_channels, slice.filter.in_channels, a,
              w.stride_w * in.pixel_stride, b, slice.filter.out_stride,
              slice.output + (out_row + lo) * args.output.pixel_stride, args.output.pixel_stride, true);
    }
  }
}

void RunPerTapTile(const Conv2DArgs& args, const Tile& tile) {
  const ChannelSlice slice = SliceChannels(args, tile);
  const int channels = slice.filter.out_channels;
  for (int64_t q = tile.pixel_begin; q < tile.pixel_end; ++q) {
    std::memset(slice.output + q * args.output.pixel_stride, 0, sizeof(float) * channels);
  }
  const int64_t out_w = args.output.width;
  for (int64_t q = tile.pixel_begin; q < tile.pixel_end;) {
    const int64_t row = q / out_w;  // n * out_h + y
    const int64_t x0 = q % out_w;
    const int64_t x1 = std::min(out_w, x0 + (tile.pixel_end - q));
    AccumulateRowPiece(args, slice, row / args.output.height, row % args.output.height, x0, x1);
    q += x1 - x0;
  }
  FinishPixels(args, slice, tile);
}

// The filter as TiledGemm packs it: one run per tap, or a single run when the taps are contiguous.
WeightRows FilterRows(const ConvFilterView& f) {
  WeightRows rows;
  rows.data = f.data;
  rows.out_channels = f.out_channels;
  rows.out_stride = f.out_stride;
  const int taps = f.kernel_h * f.kernel_w;
  rows.segments = f.TapsContiguous() ? 1 : taps;
  rows.segment_stride = f.tap_stride;
  rows.segment_length = f.TapsContiguous() ? taps * f.in_channels : f.in_channels;
  return rows;
}

// The input the tiled kernel reads: every output pixel's window lies inside it, so a tile's row table
// needs no bounds checks. That is the input itself when no window reaches into the padding (and the taps
// of a filter row are adjacent whenever they can be), else a zero-padded, dense copy in `scratch` (its
// size is the input's: small next to the multiply-adds).
InputView TiledInput(const Conv2DArgs& args, std::vector<float>* scratch, ConvWindow* window) {
  const InputView& in = args.input;
  const ConvWindow& w = args.window;
  const ConvFilterView& f = args.filter;
  const int64_t rows = static_cast<int64_t>(args.output.height - 1) * w.stride_h + (f.kernel_h - 1) * w.dilation_h + 1;
  const int64_t cols = static_cast<int64_t>(args.output.width - 1) * w.stride_w + (f.kernel_w - 1) * w.dilation_w + 1;
  const bool padded = w.pad_top > 0 || w.pad_left > 0 || rows - w.pad_top > in.height || cols - w.pad_left > in.width;
  const bool sparse_rows = f.kernel_w > 1 && w.dilation_w == 1 && in.pixel_stride != in.channels;
  *window = w;
  if (!padded && !sparse_rows) return in;
  window->pad_top = 0;
  window->pad_left = 0;
  const int cin = in.channels;
  scratch->resize(static_cast<size_t>(in.batch * rows * cols * cin));
  // Columns [left, right) of a padded row come from the input, the rest are zeros.
  const int64_t left = std::min<int64_t>(w.pad_left, cols);
  const int64_t right = std::max(left, std::min<int64_t>(cols, w.pad_left + static_cast<int64_t>(in.width)));
  float* dst = scratch->data();
  for (int n = 0; n < in.batch; ++n) {
    for (int64_t py = 0; py < rows; ++py, dst += cols * cin) {
      const int64_t iy = py - w.pad_top;
      if (iy < 0 || iy >= in.height) {
        std::memset(dst, 0, sizeof(float) * cols * cin);
        continue;
      }
      std::memset(dst, 0, sizeof(float) * left * cin);
      std::memset(dst + right * cin, 0, sizeof(float) * (cols - right) * cin);
      const float* src = in.data + ((n * in.height + iy) * in.width + (left - w.pad_left)) * in.pixel_stride;
      if (in.pixel_stride == cin) {
        std::memcpy(dst + left * cin, src, sizeof(float) * (right - left) * cin);
      } else {
        for (int64_t px = left; px < right; ++px, src += in.pixel_stride) CopyFloats(dst + px * cin, src, cin);
      }
    }
  }
  return {scratch->data(), in.batch, static_cast<int>(rows), static_cast<int>(cols), cin, cin};
}

// Register tiles built per chunk before TiledGemm runs over them (bounds the row tables; one chunk's
// input rows stay in cache while every channel group passes over them).
constexpr int kTilesPerChunk = 8;

// The tile's pixels through TiledGemm. `in` holds every window (TiledInput, `window` its geometry); a
// register tile's row table points at the input runs of its pixels in the packed depth order: one run
// per filter row (KW * Cin floats) when the taps of a filter row are adjacent in memory, else one per tap.
void RunTiledTile(const Conv2DArgs& args, const InputView& in, const ConvWindow& window, const PackedWeights& packed,
                  const Tile& tile) {
  const int kh = args.filter.kernel_h;
  const int kw = args.filter.kernel_w;
  const int cin = args.filter.in_channels;
  const int max_rows = packed.tile_rows;
  const bool row_runs = kw == 1 || (window.dilation_w == 1 && in.pixel_stride == cin);
  const int segments = row_runs ? kh : kh * kw;
  const int length = row_runs ? kw * cin : cin;
  thread_local std::vector<int64_t> run_offset;
  thread_local std::vector<const float*> table;
  run_offset.resize(segments);
  table.resize(static_cast<size_t>(segments) * max_rows * kTilesPerChunk);
  for (int s = 0; s < segments; ++s) {
    const int ky = row_runs ? s : s / kw;
    const int kx = row_runs ? 0 : s % kw;
    const int64_t dy = static_cast<int64_t>(ky) * window.dilation_h;
    const int64_t dx = static_cast<int64_t>(kx) * window.dilation_w;
    run_offset[s] = (dy * in.width + dx) * in.pixel_stride;
  }
  const OutputView& out = args.output;
  int64_t x = tile.pixel_begin % out.width;  // pixel coordinates, advanced without divisions
  int64_t y = (tile.pixel_begin / out.width) % out.height;
  int64_t n = tile.pixel_begin / (static_cast<int64_t>(out.width) * out.height);
  // The input pixel at the top left of the window of output pixel (n, y, x).
  auto window_origin = [&] {
    return in.data + ((n * in.height + y * window.stride_h - window.pad_top) * in.width + x * window.stride_w -
                      window.pad_left) *
                         in.pixel_stride;
  };
  const int64_t step = window.stride_w * in.pixel_stride;
  const float* origin = window_origin();
  // Register tiles of near-equal height: a last tile of one or two rows would leave too few independent
  // accumulators to hide the multiply-add latency.
  int64_t tiles_left = (tile.pixel_end - tile.pixel_begin + max_rows - 1) / max_rows;
  RowTile chunk[kTilesPerChunk];
  for (int64_t q = tile.pixel_begin; q < tile.pixel_end;) {
    int count = 0;
    const float** runs = table.data();
    for (; count < kTilesPerChunk && q < tile.pixel_end; ++count, --tiles_left) {
      const int rows = static_cast<int>((tile.pixel_end - q + tiles_left - 1) / tiles_left);
      chunk[count] = {runs, rows, out.data + q * out.pixel_stride};
      for (int m = 0; m < rows; ++m) {
        for (int s = 0; s < segments; ++s) runs[s * rows + m] = origin + run_offset[s];
        if (++x < out.width) {  // the next pixel of the row exists, so does its window
          origin += step;
          continue;
        }
        x = 0;
        if (++y == out.height) {
          y = 0;
          ++n;
        }
        if (q + m + 1 < tile.pixel_end) origin = window_origin();
      }
      runs += static_cast<int64_t>(segments) * rows;
      q += rows;
    }
    TiledGemm(packed, chunk, count, segments, length, tile.channel_begin, tile.channel_end, out.pixel_stride);
  }
}

// Per-tap GEMMs run over one output row at a time: good for long rows (1-D convolutions over a
// window), while short rows (small 2-D maps) make too many small GEMM calls, where im2col wins.
constexpr int kMinRowForPerTap = 32;
// With few input channels each per-tap GEMM is tiny (depth = channels): one im2col GEMM of depth
// taps x channels costs less than the calls.
constexpr int kMinChannelsForPerTap = 16;

// Eigen's GEMM splits the depth into cache-sized blocks, so its packed weights stay in L1 across the
// pixels; the tiled kernel re-reads each channel group's whole depth per register tile. That only
// costs when a few pixels share deep, wide weights (there both run near the FMA peak and Eigen's blocking
// wins by a few per cent: 4x4 maps with 3x3 filters over >= 64 channels).
constexpr int64_t kMaxPixelsForEigen = 16;
constexpr int64_t kMinDepthForEigen = 512;

ConvMethod ResolveMethod(const Conv2DArgs& args) {
  if (args.method != ConvMethod::kAuto) return args.method;
  const ConvFilterView& f = args.filter;
  const int64_t pixels = static_cast<int64_t>(args.output.batch) * args.output.height * args.output.width;
  const int64_t depth = static_cast<int64_t>(f.kernel_h) * f.kernel_w * f.in_channels;
  if (pixels > kMaxPixelsForEigen || depth < kMinDepthForEigen) return ConvMethod::kTiled;
  if (args.filter.in_channels < kMinChannelsForPerTap) return ConvMethod::kIm2col;
  if (!args.filter.TapsContiguous()) return ConvMethod::kPerTap;  // no copy of the weights
  return args.output.width >= kMinRowForPerTap ? ConvMethod::kPerTap : ConvMethod::kIm2col;
}

}  // namespace

const char* CheckConv2DArgs(const Conv2DArgs& args) {
  const InputView& in = args.input;
  const OutputView& out = args.output;
  const ConvFilterView& f = args.filter;
  const ConvWindow& w = args.window;
  if (in.data == nullptr || out.data == nullptr || f.data == nullptr) return "null data pointer";
  if (in.batch <= 0 || in.height <= 0 || in.width <= 0 || in.channels <= 0) return "empty input";
  if (f.kernel_h <= 0 || f.kernel_w <= 0 || f.out_channels <= 0 || f.in_channels <= 0) return "empty filter";
  if (in.channels != f.in_channels) return "input channels differ from the filter's input channels";
  if (out.channels != f.out_channels) return "output channels differ from the filter's output channels";
  if (out.batch != in.batch || out.height <= 0 || out.width <= 0) return "bad output shape";
  if (in.pixel_stride < in.channels || out.pixel_stride < out.channels) return "pixel stride below channel count";
  const int64_t last_tap = (static_cast<int64_t>(f.kernel_h) * f.kernel_w - 1) * f.tap_stride;
  if (f.tap_stride < f.in_channels || f.out_stride < last_tap + f.in_channels) return "filter strides too small";
  if (w.stride_h <= 0 || w.stride_w <= 0 || w.dilation_h <= 0 || w.dilation_w <= 0) return "bad window";
  if (w.pad_top < 0 || w.pad_left < 0) return "negative padding";
  return nullptr;
}

void Conv2D(const Conv2DArgs& args, ThreadPool* pool) {
  const int64_t pixels = static_cast<int64_t>(args.output.batch) * args.output.height * args.output.width;
  const int channels = args.output.channels;
  const int64_t work = pixels * channels * args.filter.kernel_h * args.filter.kernel_w * args.filter.in_channels;
  const int threads = (pool != nullptr && work >= kMinWorkForThreads) ? pool->num_threads() : 1;
  const ConvMethod method = ResolveMethod(args);
  thread_local std::vector<float> packed_storage;
  thread_local std::vector<float> padded_storage;
  PackedWeights packed;
  InputView tiled_input;
  ConvWindow tiled_window;
  bool split_channels = false;
  int64_t channel_quantum = kChannelQuantum;
  if (method == ConvMethod::kTiled) {
    // Packed once, shared by the tasks: split pixels unless there are too few for a register tile each.
    PackWeights(FilterRows(args.filter), args.epilogue, &packed_storage, &packed);
    tiled_input = TiledInput(args, &padded_storage, &tiled_window);
    channel_quantum = GroupChannels(packed);
    split_channels = channels >= 2 * channel_quantum && pixels < static_cast<int64_t>(packed.tile_rows) * threads;
  } else {
    // Each task packs its own copy of the GEMM operand it does not split: splitting pixels repeats the
    // weight packing (channels x depth) per task, splitting channels repeats the activation packing
    // (pixels x depth). Split the larger dimension so the smaller operand is the one repeated.
    split_channels = channels >= 2 * kChannelQuantum && (channels >= pixels || pixels < kMinPixelsPerTask * threads);
  }
  const int tasks = split_channels ? ChunkCount(channels, threads, channel_quantum)
                                   : ChunkCount(pixels, threads, kMinPixelsPerTask);
  const bool identity = IsIdentityWindow(args);
  auto run = [&](int task) {
    Tile tile{0, pixels, 0, channels};
    if (split_channels) {
      const Range r = ChunkRange(channels, tasks, task, channel_quantum);
      tile.channel_begin = static_cast<int>(r.begin);
      tile.channel_end = static_cast<int>(r.end);
    } else {
      const Range r = ChunkRange(pixels, tasks, task, 1);
      tile.pixel_begin = r.begin;
      tile.pixel_end = r.end;
    }
    if (tile.pixel_begin >= tile.pixel_end || tile.channel_begin >= tile.channel_end) return;
    if (method == ConvMethod::kTiled) {
      RunTiledTile(args, tiled_input, tiled_window, packed, tile);
    } else if (identity) {
      RunIdentityTile(args, tile);
    } else if (method == ConvMethod::kIm2col) {
      RunIm2colTile(args, tile);
    } else {
      RunPerTapTile(args, tile);
    }
  };
  if (pool != nullptr && tasks > 1) {
    pool->ParallelFor(tasks, run);
  } else {
    for (int t = 0; t < tasks; ++t) run(t);
  }
}

}  // namespace adaspring::kernels
