// The GEMM building blocks of the kernels, all single-threaded (callers split work across threads
// themselves with ThreadPool):
//
// * GemmABt: Eigen's float GEMM on strided row-major operands (Eigen's own threading stays off). Its
//   cache blocking pays off on large problems; on small ones its fixed cost (blocking, packing both
//   operands into scratch, a transposing copy for narrow outputs) dominates.
// * TiledGemm: a register-tiled kernel (rows x panels of 8 output channels held in registers, the
//   epilogue applied there) whose fixed cost per call is small. The weights are packed once per call
//   into channel panels together with the folded epilogue (PackWeights; the shared weights themselves
//   are never modified or cached); the left operand is read in place through a table of row pointers,
//   so a convolution addresses its input pixels directly (an "indirect" GEMM: no im2col copy).
#ifndef ADASPRING_KERNELS_GEMM_H_
#define ADASPRING_KERNELS_GEMM_H_

#include <cstdint>
#include <vector>

#include "kernels/views.h"

namespace adaspring::kernels {

// C[rows x cols] (=|+=) A[rows x depth] * B[cols x depth]^T, all row-major with the given row strides
// (lda >= depth, ldb >= depth, ldc >= cols). B is the weight in [out, in] order, which is how TFLite
// stores FULLY_CONNECTED weights and (per tap) CONV_2D filters. `accumulate` selects += over =.
void GemmABt(int rows, int cols, int depth, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate);

// Output channels one register of the tiled kernel holds.
constexpr int kPanelChannels = 8;
// Most output rows (pixels) one tile of TiledGemm computes at once.
constexpr int kMaxTileRows = 8;

// The weights to pack: `out_channels` rows; row o is `segments` runs of `segment_length` floats, run s
// at data + o * out_stride + s * segment_stride (a conv filter: one run per tap, segment_stride =
// tap_stride; contiguous taps or a dense matrix: one run).
struct WeightRows {
  const float* data = nullptr;
  int out_channels = 0;
  int64_t out_stride = 0;
  int segments = 1;
  int64_t segment_stride = 0;
  int segment_length = 0;
};

// Weights and epilogue packed for TiledGemm (views into the storage PackWeights filled).
struct PackedWeights {
  const float* panels = nullptr;  // per group of panels: [depth][group channels], zero-padded channels
  const float* scale = nullptr;   // per output channel, padded to whole panels: acc * scale + offset
  const float* offset = nullptr;  // (bias * scale + shift of the Epilogue)
  int out_channels = 0;
  int depth = 0;       // multiply-adds per output value (segments * segment_length of the weights)
  int tile_rows = 0;   // output rows per register tile (<= kMaxTileRows), chosen from out_channels
  int group_panels = 0;  // panels per group (the last group may hold fewer)
  float lo = 0.0f;     // activation clamp
  float hi = 0.0f;
};

// Packs `weights` and `epilogue` into `storage` (resized; reused across calls) and describes them in
// `packed`. The activation becomes the clamp [lo, hi]; the per-channel arrays fold into acc * scale +
// offset.
void PackWeights(const WeightRows& weights, const Epilogue& epilogue, std::vector<float>* storage,
                 PackedWeights* packed);

// One register tile of TiledGemm: `rows` (1..PackedWeights::tile_rows) output rows starting at `out`
// (row m at out + m * ldc), whose left-operand rows are given as runs in the packed depth order: run s of
// row m starts at runs[s * rows + m].
struct RowTile {
  const float* const* runs = nullptr;
  int rows = 0;
  float* out = nullptr;
};

// Computes output channels [channel_begin, channel_end) of every tile:
//   out[m * ldc + o] = clamp(sum_k a_m[k] * w[o][k] * scale[o] + offset[o])
// Every row has `segments` runs of `segment_length` floats (segments * segment_length == packed.depth).
// The loop runs over channel groups outside and tiles inside, so one group's panels stay in cache while
// the tiles stream past them. channel_begin must be a multiple of GroupChannels(packed).
void TiledGemm(const PackedWeights& packed, const RowTile* tiles, int count, int segments, int segment_length,
               int channel_begin, int channel_end, int64_t ldc);

// Output channels per panel group of `packed` (the granularity of a channel range of TiledGemm).
inline int GroupChannels(const PackedWeights& packed) { return packed.group_panels * kPanelChannels; }

}  // namespace adaspring::kernels

#endif  // ADASPRING_KERNELS_GEMM_H_
