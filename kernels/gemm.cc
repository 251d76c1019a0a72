#include "kernels/gemm.h"

#define EIGEN_DONT_PARALLELIZE
#define EIGEN_NO_DEBUG
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <limits>
#include <utility>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace adaspring::kernels {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<Eigen::Dynamic>;
using ConstMap = Eigen::Map<const RowMajor, Eigen::Unaligned, Strided>;
using MutableMap = Eigen::Map<RowMajor, Eigen::Unaligned, Strided>;

// Eigen's float register-panel height with AVX2 (3 x 8): fewer output channels than this take the
// column-major route of GemmABt.
constexpr int kNarrowCols = 24;

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
  if (cols < kNarrowCols && rows >= kNarrowCols) {
    // Few output channels (narrow configurations): for a row-major destination Eigen runs the
    // transposed product, whose register panel then spans the few weight rows and is mostly padding.
    // A column-major scratch puts the pixels in the panel; the copy back transposes (5-7 % faster
    // end to end on the small har_watch / fashion_mnist configurations).
    thread_local std::vector<float> scratch;
    if (scratch.size() < static_cast<size_t>(rows) * cols) scratch.resize(static_cast<size_t>(rows) * cols);
    Eigen::Map<Eigen::MatrixXf> product(scratch.data(), rows, cols);
    product.noalias() = lhs * weights.transpose();
    if (accumulate) {
      out += product;
    } else {
      out = product;
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

// ---------------------------------------------------------------------------------------------------
// TiledGemm
// ---------------------------------------------------------------------------------------------------

namespace adaspring::kernels {
namespace {

// One register of kPanelChannels floats: AVX2 + FMA, NEON (two quads) or plain loops.
#if defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
inline Vec Zero() { return _mm256_setzero_ps(); }
inline Vec Load(const float* p) { return _mm256_loadu_ps(p); }
inline Vec Broadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline Vec Splat(float x) { return _mm256_set1_ps(x); }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
// max/min return their second operand when either is NaN: NaN propagates, as in ApplyEpilogue.
inline Vec Clamp(Vec v, Vec lo, Vec hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }
inline void Store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
// Stores the first `count` (1..7) lanes, in pieces of 4, 2 and 1 (a masked store is slow on some CPUs).
inline void StorePartial(float* p, Vec v, int count) {
  __m128 part = _mm256_castps256_ps128(v);
  if (count & 4) {
    _mm_storeu_ps(p, part);
    part = _mm256_extractf128_ps(v, 1);
    p += 4;
  }
  if (count & 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), part);
    part = _mm_movehl_ps(part, part);
    p += 2;
  }
  if (count & 1) _mm_store_ss(p, part);
}
// Transposes 8 rows of 8 floats in registers: afterwards rows[j] holds the former column j.
inline void Transpose8x8(Vec* rows) {
  Vec t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(rows[i], rows[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(rows[i], rows[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    rows[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    rows[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
#elif defined(__ARM_NEON)
struct Vec {
  float32x4_t lo, hi;
};
inline Vec Zero() { return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
inline Vec Load(const float* p) { return {vld1q_f32(p), vld1q_f32(p + 4)}; }
inline Vec Broadcast(const float* p) { return {vld1q_dup_f32(p), vld1q_dup_f32(p)}; }
inline Vec Splat(float x) { return {vdupq_n_f32(x), vdupq_n_f32(x)}; }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return {vfmaq_f32(c.lo, a.lo, b.lo), vfmaq_f32(c.hi, a.hi, b.hi)}; }
// FMAX/FMIN return NaN when either operand is NaN: NaN propagates, as in ApplyEpilogue.
inline float32x4_t Clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) { return vminq_f32(vmaxq_f32(v, lo), hi); }
inline Vec Clamp(Vec v, Vec lo, Vec hi) { return {Clamp4(v.lo, lo.lo, hi.lo), Clamp4(v.hi, lo.hi, hi.hi)}; }
inline void Store(float* p, Vec v) {
  vst1q_f32(p, v.lo);
  vst1q_f32(p + 4, v.hi);
}
#else
struct Vec {
  float v[kPanelChannels];
};
inline Vec Zero() { return Vec{}; }
inline Vec Load(const float* p) {
  Vec r;
  for (int i = 0; i < kPanelChannels; ++i) r.v[i] = p[i];
  return r;
}
inline Vec Splat(float x) {
  Vec r;
  for (float& e : r.v) e = x;
  return r;
}
inline Vec Broadcast(const float* p) { return Splat(*p); }
inline Vec MulAdd(Vec a, Vec b, Vec c) {
  for (int i = 0; i < kPanelChannels; ++i) c.v[i] += a.v[i] * b.v[i];
  return c;
}
inline Vec Clamp(Vec v, Vec lo, Vec hi) {
  for (int i = 0; i < kPanelChannels; ++i) v.v[i] = std::min(std::max(v.v[i], lo.v[i]), hi.v[i]);
  return v;
}
inline void Store(float* p, Vec v) {
  for (int i = 0; i < kPanelChannels; ++i) p[i] = v.v[i];
}
#endif
#if !(defined(__AVX2__) && defined(__FMA__))
// Stores the first `count` (1..7) lanes.
inline void StorePartial(float* p, Vec v, int count) {
  alignas(32) float lanes[kPanelChannels];
  Store(lanes, v);
  for (int i = 0; i < count; ++i) p[i] = lanes[i];
}
#endif

// Register tile: ROWS output rows x PANELS panels. `w` walks the group's [depth][PANELS * 8] panels in
// step with the runs of the left operand; the epilogue is applied in registers.
template <int ROWS, int PANELS>
void Tile(const float* w, const float* const* a, int segments, int segment_length, const float* scale,
          const float* offset, float lo, float hi, float* c, int64_t ldc, int valid) {
  Vec acc[ROWS][PANELS];
#pragma GCC unroll 8
  for (int m = 0; m < ROWS; ++m)
#pragma GCC unroll 8
    for (int v = 0; v < PANELS; ++v) acc[m][v] = Zero();
  for (int s = 0; s < segments; ++s, a += ROWS) {
    const float* row[ROWS];
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) row[m] = a[m];
    for (int k = 0; k < segment_length; ++k, w += PANELS * kPanelChannels) {
      Vec weights[PANELS];
#pragma GCC unroll 8
      for (int v = 0; v < PANELS; ++v) weights[v] = Load(w + v * kPanelChannels);
#pragma GCC unroll 8
      for (int m = 0; m < ROWS; ++m) {
        const Vec x = Broadcast(row[m] + k);
#pragma GCC unroll 8
        for (int v = 0; v < PANELS; ++v) acc[m][v] = MulAdd(x, weights[v], acc[m][v]);
      }
    }
  }
  const Vec lo_v = Splat(lo);
  const Vec hi_v = Splat(hi);
#pragma GCC unroll 8
  for (int v = 0; v < PANELS; ++v) {
    const Vec s = Load(scale + v * kPanelChannels);
    const Vec o = Load(offset + v * kPanelChannels);
    const int count = std::min(valid - v * kPanelChannels, kPanelChannels);
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) {
      const Vec result = Clamp(MulAdd(acc[m][v], s, o), lo_v, hi_v);
      float* out = c + m * ldc + v * kPanelChannels;
      if (count == kPanelChannels) {
        Store(out, result);
      } else if (count > 0) {
        StorePartial(out, result, count);
      }
    }
  }
}

using TileFn = void (*)(const float*, const float* const*, int, int, const float*, const float*, float, float,
                        float*, int64_t, int);

// The register budget (16 vector registers on AVX2) bounds rows x panels: 8 x 1, 6 x 2, 4 x 3.
constexpr int kMaxGroupPanels = 3;
constexpr int MaxRows(int panels) { return panels == 1 ? 8 : panels == 2 ? 6 : 4; }

template <int PANELS, int... ROWS>
constexpr std::array<TileFn, kMaxTileRows> TileTable(std::integer_sequence<int, ROWS...>) {
  return {((ROWS + 1) <= MaxRows(PANELS) ? &Tile<(ROWS + 1 <= MaxRows(PANELS) ? ROWS + 1 : 1), PANELS> : nullptr)...};
}

const std::array<TileFn, kMaxTileRows> kTiles[kMaxGroupPanels] = {
    TileTable<1>(std::make_integer_sequence<int, kMaxTileRows>{}),
    TileTable<2>(std::make_integer_sequence<int, kMaxTileRows>{}),
    TileTable<3>(std::make_integer_sequence<int, kMaxTileRows>{}),
};

// Packs output channels [first, first + kPanelChannels) of `weights` (rows past the last channel as
// zeros) into dst[k * width + lane], k running over the depth in order.
void PackPanel(const WeightRows& weights, int first, float* dst, int width) {
  const int valid = std::min(kPanelChannels, weights.out_channels - first);
  const int length = weights.segment_length;
  for (int s = 0; s < weights.segments; ++s) {
    const float* src = weights.data + first * weights.out_stride + s * weights.segment_stride;
    float* out = dst + static_cast<int64_t>(s) * length * width;
    int i = 0;
#if defined(__AVX2__) && defined(__FMA__)
    if (valid == kPanelChannels) {
      for (; i + kPanelChannels <= length; i += kPanelChannels) {
        Vec block[kPanelChannels];
        for (int lane = 0; lane < kPanelChannels; ++lane) block[lane] = Load(src + lane * weights.out_stride + i);
        Transpose8x8(block);
        for (int j = 0; j < kPanelChannels; ++j) Store(out + static_cast<int64_t>(i + j) * width, block[j]);
      }
    }
#endif
    for (; i < length; ++i) {
      float* column = out + static_cast<int64_t>(i) * width;
      for (int lane = 0; lane < kPanelChannels; ++lane) {
        column[lane] = lane < valid ? src[lane * weights.out_stride + i] : 0.0f;
      }
    }
  }
}

}  // namespace

void PackWeights(const WeightRows& weights, const Epilogue& epilogue, std::vector<float>* storage,
                 PackedWeights* packed) {
  const int channels = weights.out_channels;
  const int panels = (channels + kPanelChannels - 1) / kPanelChannels;
  const int depth = weights.segments * weights.segment_length;
  const int group_panels = panels <= kMaxGroupPanels ? std::max(panels, 1) : 2;
  const int64_t padded = static_cast<int64_t>(panels) * kPanelChannels;
  storage->resize(static_cast<size_t>(padded * depth + 2 * padded));
  float* data = storage->data();
  for (int c0 = 0; c0 < channels; c0 += group_panels * kPanelChannels) {
    const int width = std::min(group_panels, (channels - c0 + kPanelChannels - 1) / kPanelChannels) * kPanelChannels;
    float* group = data + static_cast<int64_t>(c0) * depth;
    for (int v = 0; v * kPanelChannels < width; ++v) {
      PackPanel(weights, c0 + v * kPanelChannels, group + v * kPanelChannels, width);
    }
  }
  float* scale = data + padded * depth;
  float* offset = scale + padded;
  for (int o = 0; o < padded; ++o) {
    const bool used = o < channels;
    const float s = used && epilogue.scale != nullptr ? epilogue.scale[o] : 1.0f;
    const float b = used && epilogue.bias != nullptr ? epilogue.bias[o] : 0.0f;
    const float t = used && epilogue.shift != nullptr ? epilogue.shift[o] : 0.0f;
    scale[o] = s;
    offset[o] = b * s + t;
  }
  packed->panels = data;
  packed->scale = scale;
  packed->offset = offset;
  packed->out_channels = channels;
  packed->depth = depth;
  packed->group_panels = group_panels;
  packed->tile_rows = MaxRows(group_panels);
  packed->lo = epilogue.activation == Activation::kNone ? -std::numeric_limits<float>::infinity() : 0.0f;
  packed->hi = epilogue.activation == Activation::kRelu6 ? 6.0f : std::numeric_limits<float>::infinity();
}

void TiledGemm(const PackedWeights& packed, const RowTile* tiles, int count, int segments, int segment_length,
               int channel_begin, int channel_end, int64_t ldc) {
  const int group_channels = GroupChannels(packed);
  for (int c0 = channel_begin; c0 < channel_end; c0 += group_channels) {
    const int group_panels =
        std::min(packed.group_panels, (packed.out_channels - c0 + kPanelChannels - 1) / kPanelChannels);
    const float* panels = packed.panels + static_cast<int64_t>(c0) * packed.depth;
    const int valid = std::min(channel_end, c0 + group_channels) - c0;
    for (int t = 0; t < count; ++t) {
      const RowTile& tile = tiles[t];
      kTiles[group_panels - 1][tile.rows - 1](panels, tile.runs, segments, segment_length, packed.scale + c0,
                                              packed.offset + c0, packed.lo, packed.hi, tile.out + c0, ldc, valid);
    }
  }
}

}  // namespace adaspring::kernels
