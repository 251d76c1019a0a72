// The shared-weight file (`weight_source` option): the backbone weights once, in the kernels' layouts,
// and per configuration a table of strided views into them.
//
// Format, version 1 (all integers little-endian; offsets in bytes):
//
//   header (48 bytes)
//     char[8] magic            "ADASWSRC"
//     u32     version          1
//     u32     config_count
//     u64     table_offset     from the start of the file
//     u64     table_bytes
//     u64     data_offset      from the start of the file, a multiple of 64
//     u64     data_bytes
//   table: config_count configuration records, each
//     u32 key_bytes, key (UTF-8, no NUL), zero padding to a multiple of 4
//     u32 view_count, then view_count view records, each
//       u32 name_bytes, name (the weight tensor's TfLiteTensor.name), zero padding to a multiple of 4
//       u32 layout             1 = CONV_2D filter (OHWI), 2 = DEPTHWISE_CONV_2D filter ([1, H, W, C]),
//                              3 = FULLY_CONNECTED weights ([out, in])
//       u32 flags              bit 0: a per-output-channel scale follows the accumulation
//       i32 out_channels, kernel_h, kernel_w, in_channels
//                              the tensor's dims: conv [O, KH, KW, I]; depthwise [1, KH, KW, O] (in_channels
//                              = 1); dense [O, I] (kernel_h = kernel_w = 1)
//       i64 out_stride         floats between output channels (conv, dense; depthwise: 1)
//       i64 tap_stride         floats between filter taps (conv, depthwise; dense: 0)
//       u64 weight_offset      into the data section, a multiple of 4
//       u64 scale_offset       into the data section, a multiple of 4 (flags bit 0; else 0)
//   data: float32 values
//
// Element (o, ky, kx, i) of a conv view is at weight + o * out_stride + (ky * KW + kx) * tap_stride + i;
// depthwise (ky, kx, o) at weight + (ky * KW + kx) * tap_stride + o; dense (o, i) at weight + o *
// out_stride + i. A width slice of a stored weight keeps its strides and lowers the channel counts; a
// low-rank factor is a prefix of rows (first factor) or columns (second factor). With a scale, the
// node computes act(accumulation * scale[o] + bias[o]): the runtime tensor's bias is the folded shift.
#ifndef ADASPRING_DELEGATES_WEIGHT_SOURCE_H_
#define ADASPRING_DELEGATES_WEIGHT_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace adaspring {

constexpr char kWeightSourceMagic[8] = {'A', 'D', 'A', 'S', 'W', 'S', 'R', 'C'};
constexpr uint32_t kWeightSourceVersion = 1;
constexpr size_t kWeightSourceHeaderBytes = 48;

enum class ViewLayout : uint32_t { kConv = 1, kDepthwise = 2, kDense = 3 };

// One weight tensor of one configuration, resolved to pointers into the mapped data.
struct WeightView {
  ViewLayout layout = ViewLayout::kConv;
  int out_channels = 0;
  int kernel_h = 1;
  int kernel_w = 1;
  int in_channels = 0;
  int64_t out_stride = 0;
  int64_t tap_stride = 0;
  const float* weights = nullptr;
  const float* scale = nullptr;  // null: no scale
};

// The views of one configuration, by weight tensor name.
using ConfigViews = std::map<std::string, WeightView>;

// A parsed weight-source image. Owns the memory the views point into (a read-only file mapping,
// or a copy for ParseWeightSource).
class WeightSource {
 public:
  ~WeightSource();
  WeightSource(const WeightSource&) = delete;
  WeightSource& operator=(const WeightSource&) = delete;

  // The configuration's views, or null when the file has no such configuration.
  const ConfigViews* Find(const std::string& key) const;
  // Configuration keys, comma-separated (for error messages).
  std::string KeyList() const;
  size_t config_count() const { return configs_.size(); }
  size_t data_bytes() const { return data_bytes_; }
  const std::map<std::string, ConfigViews>& configs() const { return configs_; }

  // Parses an in-memory image (copied). Returns null with `error` naming the first problem.
  static std::shared_ptr<const WeightSource> Parse(const void* image, size_t size, std::string* error);

  // Maps and parses a file. One mapping per file (same device, inode, size and modification time)
  // is shared by every delegate of the process. Returns null with `error` on failure.
  static std::shared_ptr<const WeightSource> Open(const std::string& path, std::string* error);

  // File mappings alive in this process.
  static int64_t LiveMappings();

 private:
  WeightSource() = default;
  bool ParseImage(std::string* error);

  const unsigned char* image_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;            // munmap on destruction (file images)
  std::vector<unsigned char> copy_;    // owned bytes (in-memory images)
  size_t data_bytes_ = 0;
  std::map<std::string, ConfigViews> configs_;
};

// Null when a view with `layout` and these tensor dims may stand for the tensor, else why not.
const char* CheckViewMatchesTensor(const WeightView& view, ViewLayout layout, const int* dims, int rank);

}  // namespace adaspring

#endif  // ADASPRING_DELEGATES_WEIGHT_SOURCE_H_
