#include "delegates/weight_source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <atomic>
#include <mutex>
#include <tuple>

namespace adaspring {
namespace {

constexpr int64_t kMaxDim = 1 << 24;

std::atomic<int64_t> g_live_mappings{0};
constexpr size_t kMaxName = 4096;

// Bounds-checked little-endian reader over the table.
class Cursor {
 public:
  Cursor(const unsigned char* data, size_t size) : data_(data), size_(size) {}

  template <typename T>
  bool Read(T* value) {
    if (size_ - pos_ < sizeof(T)) return false;
    std::memcpy(value, data_ + pos_, sizeof(T));  // the library targets little-endian CPUs only
    pos_ += sizeof(T);
    return true;
  }

  // A length-prefixed string padded to 4 bytes.
  bool ReadString(std::string* text) {
    uint32_t length = 0;
    if (!Read(&length) || length == 0 || length > kMaxName) return false;
    const size_t padded = (static_cast<size_t>(length) + 3) / 4 * 4;
    if (size_ - pos_ < padded) return false;
    text->assign(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += padded;
    return text->find('\0') == std::string::npos;
  }

  bool AtEnd() const { return pos_ == size_; }

 private:
  const unsigned char* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct RawView {
  uint32_t layout = 0;
  uint32_t flags = 0;
  int32_t dims[4] = {0, 0, 0, 0};
  int64_t out_stride = 0;
  int64_t tap_stride = 0;
  uint64_t weight_offset = 0;
  uint64_t scale_offset = 0;
};

bool ReadRawView(Cursor* cursor, RawView* raw) {
  return cursor->Read(&raw->layout) && cursor->Read(&raw->flags) && cursor->Read(&raw->dims[0]) &&
         cursor->Read(&raw->dims[1]) && cursor->Read(&raw->dims[2]) && cursor->Read(&raw->dims[3]) &&
         cursor->Read(&raw->out_stride) && cursor->Read(&raw->tap_stride) && cursor->Read(&raw->weight_offset) &&
         cursor->Read(&raw->scale_offset);
}

// Number of floats from the first to one past the last element the view reads, or -1 if invalid.
int64_t Extent(const WeightView& v) {
  const int64_t taps = static_cast<int64_t>(v.kernel_h) * v.kernel_w;
  switch (v.layout) {
    case ViewLayout::kConv:
      if (v.tap_stride < v.in_channels || v.out_stride < (taps - 1) * v.tap_stride + v.in_channels) return -1;
      return (v.out_channels - 1) * v.out_stride + (taps - 1) * v.tap_stride + v.in_channels;
    case ViewLayout::kDepthwise:
      if (v.in_channels != 1 || v.out_stride != 1 || v.tap_stride < v.out_channels) return -1;
      return (taps - 1) * v.tap_stride + v.out_channels;
    case ViewLayout::kDense:
      if (v.kernel_h != 1 || v.kernel_w != 1 || v.tap_stride != 0 || v.out_stride < v.in_channels) return -1;
      return (v.out_channels - 1) * v.out_stride + v.in_channels;
  }
  return -1;
}

// Null when `count` floats at byte `offset` of the data section are in bounds and aligned.
const char* CheckRange(uint64_t offset, int64_t count, size_t data_bytes) {
  if (offset % 4 != 0) return "is not 4-byte aligned";
  if (count <= 0 || offset > data_bytes || static_cast<uint64_t>(count) > (data_bytes - offset) / 4) {
    return "reaches past the data section";
  }
  return nullptr;
}

std::string Describe(const std::string& key, const std::string& name) {
  return "configuration '" + key + "', view '" + name + "': ";
}

}  // namespace

WeightSource::~WeightSource() {
  if (mapping_ != nullptr) {
    munmap(mapping_, size_);
    g_live_mappings.fetch_sub(1, std::memory_order_relaxed);
  }
}

int64_t WeightSource::LiveMappings() { return g_live_mappings.load(std::memory_order_relaxed); }

const ConfigViews* WeightSource::Find(const std::string& key) const {
  const auto found = configs_.find(key);
  return found == configs_.end() ? nullptr : &found->second;
}

std::string WeightSource::KeyList() const {
  std::string keys;
  for (const auto& entry : configs_) keys += (keys.empty() ? "" : ", ") + entry.first;
  return keys.empty() ? "(none)" : keys;
}

bool WeightSource::ParseImage(std::string* error) {
  const std::string bad = "the weight source is not a valid AdaSpring shared-weight file: ";
  if (size_ < kWeightSourceHeaderBytes || std::memcmp(image_, kWeightSourceMagic, 8) != 0) {
    *error = bad + "missing magic 'ADASWSRC' (write it with the tflite_adaspring shared runtime)";
    return false;
  }
  Cursor header(image_ + 8, kWeightSourceHeaderBytes - 8);
  uint32_t version = 0, config_count = 0;
  uint64_t table_offset = 0, table_bytes = 0, data_offset = 0, data_bytes = 0;
  header.Read(&version);
  header.Read(&config_count);
  header.Read(&table_offset);
  header.Read(&table_bytes);
  header.Read(&data_offset);
  header.Read(&data_bytes);
  if (version != kWeightSourceVersion) {
    *error = bad + "format version " + std::to_string(version) + ", this library reads version " +
             std::to_string(kWeightSourceVersion) + " (rebuild the library or rewrite the file)";
    return false;
  }
  if (table_offset > size_ || table_bytes > size_ - table_offset || data_offset % 64 != 0 || data_offset > size_ ||
      data_bytes > size_ - data_offset) {
    *error = bad + "table or data section lies outside the file (" + std::to_string(size_) + " bytes; truncated?)";
    return false;
  }
  data_bytes_ = static_cast<size_t>(data_bytes);
  const unsigned char* data = image_ + data_offset;
  Cursor table(image_ + table_offset, static_cast<size_t>(table_bytes));
  for (uint32_t c = 0; c < config_count; ++c) {
    std::string key;
    uint32_t view_count = 0;
    if (!table.ReadString(&key) || !table.Read(&view_count)) {
      *error = bad + "configuration record #" + std::to_string(c) + " is truncated or malformed";
      return false;
    }
    if (configs_.count(key) != 0) {
      *error = bad + "configuration '" + key + "' appears twice";
      return false;
    }
    ConfigViews& views = configs_[key];
    for (uint32_t v = 0; v < view_count; ++v) {
      std::string name;
      RawView raw;
      if (!table.ReadString(&name) || !ReadRawView(&table, &raw)) {
        *error = bad + "configuration '" + key + "': view record #" + std::to_string(v) + " is truncated";
        return false;
      }
      if (views.count(name) != 0) {
        *error = bad + Describe(key, name) + "named twice";
        return false;
      }
      if (raw.layout < 1 || raw.layout > 3 || (raw.flags & ~1u) != 0) {
        *error = bad + Describe(key, name) + "unknown layout " + std::to_string(raw.layout) + " or flags " +
                 std::to_string(raw.flags);
        return false;
      }
      for (int32_t dim : raw.dims) {
        if (dim <= 0 || dim > kMaxDim) {
          *error = bad + Describe(key, name) + "dimension " + std::to_string(dim) + " out of range";
          return false;
        }
      }
      if (raw.out_stride < 0 || raw.out_stride > (int64_t{1} << 40) || raw.tap_stride < 0 ||
          raw.tap_stride > (int64_t{1} << 40)) {
        *error = bad + Describe(key, name) + "stride out of range";
        return false;
      }
      WeightView view;
      view.layout = static_cast<ViewLayout>(raw.layout);
      view.out_channels = raw.dims[0];
      view.kernel_h = raw.dims[1];
      view.kernel_w = raw.dims[2];
      view.in_channels = raw.dims[3];
      view.out_stride = raw.out_stride;
      view.tap_stride = raw.tap_stride;
      const int64_t extent = Extent(view);
      if (extent <= 0) {
        *error = bad + Describe(key, name) + "strides do not fit its dims (overlapping or negative)";
        return false;
      }
      if (const char* problem = CheckRange(raw.weight_offset, extent, data_bytes_)) {
        *error = bad + Describe(key, name) + "weights " + problem;
        return false;
      }
      view.weights = reinterpret_cast<const float*>(data + raw.weight_offset);
      if ((raw.flags & 1u) != 0) {
        if (const char* problem = CheckRange(raw.scale_offset, view.out_channels, data_bytes_)) {
          *error = bad + Describe(key, name) + "scale " + problem;
          return false;
        }
        view.scale = reinterpret_cast<const float*>(data + raw.scale_offset);
      }
      views.emplace(name, view);
    }
  }
  if (!table.AtEnd()) {
    *error = bad + "bytes left after the last configuration record (config_count wrong?)";
    return false;
  }
  return true;
}

std::shared_ptr<const WeightSource> WeightSource::Parse(const void* image, size_t size, std::string* error) {
  std::shared_ptr<WeightSource> source(new WeightSource());
  // 64-byte aligned copy, so float data is aligned like in a file mapping.
  source->copy_.resize(size + 64);
  unsigned char* base = source->copy_.data();
  base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
  if (size > 0) std::memcpy(base, image, size);
  source->image_ = base;
  source->size_ = size;
  if (!source->ParseImage(error)) return nullptr;
  return source;
}

std::shared_ptr<const WeightSource> WeightSource::Open(const std::string& path, std::string* error) {
  static std::mutex mutex;
  static std::map<std::tuple<dev_t, ino_t, off_t, int64_t, int64_t>, std::weak_ptr<const WeightSource>> open_files;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "the weight source '" + path + "' cannot be opened (" + std::strerror(errno) + ")";
    return nullptr;
  }
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    close(fd);
    *error = "the weight source '" + path + "' is not a regular file";
    return nullptr;
  }
  const auto identity = std::make_tuple(info.st_dev, info.st_ino, info.st_size, static_cast<int64_t>(info.st_mtim.tv_sec),
                                        static_cast<int64_t>(info.st_mtim.tv_nsec));
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = open_files.begin(); it != open_files.end();) {  // forget files no delegate uses any more
    it = it->second.expired() ? open_files.erase(it) : std::next(it);
  }
  const auto cached = open_files.find(identity);
  if (cached != open_files.end()) {
    if (auto shared = cached->second.lock()) {  // may have expired since the sweep above
      close(fd);
      return shared;
    }
  }
  std::shared_ptr<WeightSource> source(new WeightSource());
  source->size_ = static_cast<size_t>(info.st_size);
  if (source->size_ > 0) {
    source->mapping_ = mmap(nullptr, source->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (source->mapping_ == MAP_FAILED) {
      source->mapping_ = nullptr;
      close(fd);
      *error = "the weight source '" + path + "' cannot be mapped (" + std::strerror(errno) + ")";
      return nullptr;
    }
    source->image_ = static_cast<const unsigned char*>(source->mapping_);
    g_live_mappings.fetch_add(1, std::memory_order_relaxed);
  }
  close(fd);
  std::string problem;
  if (!source->ParseImage(&problem)) {
    *error = "'" + path + "': " + problem;
    return nullptr;
  }
  open_files[identity] = source;
  return source;
}

const char* CheckViewMatchesTensor(const WeightView& view, ViewLayout layout, const int* dims, int rank) {
  if (view.layout != layout) return "the view's layout does not match the node's op type";
  switch (layout) {
    case ViewLayout::kConv:
      if (rank == 4 && dims[0] == view.out_channels && dims[1] == view.kernel_h && dims[2] == view.kernel_w &&
          dims[3] == view.in_channels) {
        return nullptr;
      }
      break;
    case ViewLayout::kDepthwise:
      if (rank == 4 && dims[0] == 1 && dims[1] == view.kernel_h && dims[2] == view.kernel_w &&
          dims[3] == view.out_channels) {
        return nullptr;
      }
      break;
    case ViewLayout::kDense:
      if (rank == 2 && dims[0] == view.out_channels && dims[1] == view.in_channels) return nullptr;
      break;
  }
  return "the view's dims differ from the weight tensor's";
}

}  // namespace adaspring
