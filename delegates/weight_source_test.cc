// Unit tests of the shared-weight file parser (weight_source.h): a valid image resolves to the expected
// views; truncated, corrupted and inconsistent images are refused with a message naming the problem,
// never read out of bounds. Exits non-zero on failure.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/test_checks.h"
#include "delegates/options.h"
#include "delegates/weight_source.h"

namespace adaspring {
namespace {

using ::adaspring::testing::Expect;

using ::adaspring::testing::Contains;

// Little-endian image writer mirroring tflite_adaspring/runtime/weight_source.py.
class Image {
 public:
  template <typename T>
  void Put(std::vector<unsigned char>* out, T value) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(&value);
    out->insert(out->end(), bytes, bytes + sizeof(T));
  }
  void PutString(std::vector<unsigned char>* out, const std::string& text) {
    Put<uint32_t>(out, static_cast<uint32_t>(text.size()));
    out->insert(out->end(), text.begin(), text.end());
    while (out->size() % 4 != 0) out->push_back(0);
  }
  void BeginConfig(const std::string& key, uint32_t views) {
    PutString(&table, key);
    Put<uint32_t>(&table, views);
    ++configs;
  }
  void View(const std::string& name, uint32_t layout, uint32_t flags, std::vector<int32_t> dims, int64_t out_stride,
            int64_t tap_stride, uint64_t weight_offset, uint64_t scale_offset) {
    PutString(&table, name);
    Put<uint32_t>(&table, layout);
    Put<uint32_t>(&table, flags);
    for (int32_t d : dims) Put<int32_t>(&table, d);
    Put<int64_t>(&table, out_stride);
    Put<int64_t>(&table, tap_stride);
    Put<uint64_t>(&table, weight_offset);
    Put<uint64_t>(&table, scale_offset);
  }
  std::vector<unsigned char> Bytes(uint32_t version = kWeightSourceVersion) {
    std::vector<unsigned char> out(kWeightSourceMagic, kWeightSourceMagic + 8);
    const uint64_t table_offset = kWeightSourceHeaderBytes;
    const uint64_t data_offset = (table_offset + table.size() + 63) / 64 * 64;
    Put<uint32_t>(&out, version);
    Put<uint32_t>(&out, configs);
    Put<uint64_t>(&out, table_offset);
    Put<uint64_t>(&out, table.size());
    Put<uint64_t>(&out, data_offset);
    Put<uint64_t>(&out, data.size() * sizeof(float));
    out.insert(out.end(), table.begin(), table.end());
    out.resize(data_offset, 0);
    const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
    out.insert(out.end(), bytes, bytes + data.size() * sizeof(float));
    return out;
  }

  std::vector<unsigned char> table;
  std::vector<float> data;
  uint32_t configs = 0;
};

// Two configurations over one stored conv [O=4, KH=1, KW=3, I=2] (24 floats) + a dense [3, 5] (15
// floats) + a 4-float scale: "wide" uses it whole, "narrow" the first 2 out / 1 in channels.
Image ValidImage() {
  Image image;
  for (int i = 0; i < 24 + 15 + 4; ++i) image.data.push_back(static_cast<float>(i));
  image.BeginConfig("wide", 2);
  image.View("t3", 1, 1, {4, 1, 3, 2}, 6, 2, 0, (24 + 15) * 4);
  image.View("t7", 3, 0, {3, 1, 1, 5}, 5, 0, 24 * 4, 0);
  image.BeginConfig("narrow", 2);
  image.View("t3", 1, 0, {2, 1, 3, 1}, 6, 2, 0, 0);
  image.View("t9", 3, 0, {2, 1, 1, 4}, 5, 0, 24 * 4, 0);
  return image;
}

std::string ParseError(const std::vector<unsigned char>& bytes) {
  std::string error;
  const auto source = WeightSource::Parse(bytes.data(), bytes.size(), &error);
  return source == nullptr ? error : "";
}

void TestValid() {
  Image image = ValidImage();
  const std::vector<unsigned char> bytes = image.Bytes();
  std::string error;
  const auto source = WeightSource::Parse(bytes.data(), bytes.size(), &error);
  Expect(source != nullptr, "valid image parses (" + error + ")");
  if (source == nullptr) return;
  Expect(source->config_count() == 2 && source->KeyList() == "narrow, wide", "two configurations");
  Expect(source->data_bytes() == (24 + 15 + 4) * 4, "data section size");
  const ConfigViews* wide = source->Find("wide");
  const ConfigViews* narrow = source->Find("narrow");
  Expect(wide != nullptr && narrow != nullptr && source->Find("other") == nullptr, "lookup by key");
  if (wide == nullptr || narrow == nullptr) return;
  const WeightView& conv = wide->at("t3");
  Expect(conv.layout == ViewLayout::kConv && conv.out_channels == 4 && conv.kernel_w == 3 && conv.in_channels == 2,
         "conv view dims");
  Expect(conv.weights != nullptr && conv.weights[0] == 0.0f && conv.scale != nullptr && conv.scale[0] == 39.0f,
         "conv view points at its weights and scale");
  const WeightView& slice = narrow->at("t3");
  Expect(slice.out_stride == 6 && slice.tap_stride == 2 && slice.scale == nullptr, "a slice keeps the stored strides");
  Expect(slice.weights != nullptr && slice.weights[slice.out_stride + 2 * slice.tap_stride] == 10.0f,
         "element (o=1, tap 2, i=0) of the slice");
  const WeightView& dense = narrow->at("t9");
  Expect(dense.weights[dense.out_stride + 3] == 24.0f + 8.0f, "dense slice element (1, 3)");
  const int conv_dims[] = {4, 1, 3, 2};
  const int dense_dims[] = {2, 4};
  Expect(CheckViewMatchesTensor(conv, ViewLayout::kConv, conv_dims, 4) == nullptr, "conv view matches its tensor");
  Expect(CheckViewMatchesTensor(conv, ViewLayout::kDense, conv_dims, 4) != nullptr, "layout mismatch detected");
  Expect(CheckViewMatchesTensor(dense, ViewLayout::kDense, dense_dims, 2) == nullptr, "dense view matches");
  Expect(CheckViewMatchesTensor(slice, ViewLayout::kConv, conv_dims, 4) != nullptr, "dims mismatch detected");
}

void TestCorrupted() {
  const std::vector<unsigned char> good = ValidImage().Bytes();
  Expect(Contains(ParseError({}), "missing magic"), "empty image");
  std::vector<unsigned char> bad_magic = good;
  bad_magic[0] = 'X';
  Expect(Contains(ParseError(bad_magic), "missing magic"), "wrong magic");
  Expect(Contains(ParseError(ValidImage().Bytes(7)), "format version 7"), "unknown version");
  for (size_t cut : {size_t{47}, size_t{60}, good.size() - 1}) {
    const std::vector<unsigned char> truncated(good.begin(), good.begin() + cut);
    const std::string error = ParseError(truncated);
    Expect(!error.empty(), "truncated at " + std::to_string(cut) + " refused");
  }
  // Every single-byte corruption of the header and table is refused or parses consistently; never crashes.
  const size_t table_end = 48 + ValidImage().table.size();
  for (size_t i = 8; i < table_end; ++i) {
    std::vector<unsigned char> flipped = good;
    flipped[i] ^= 0xA5;
    ParseError(flipped);
  }
  Expect(true, "single-byte corruptions do not crash");

  Image out_of_range = ValidImage();
  out_of_range.BeginConfig("far", 1);
  out_of_range.View("t1", 3, 0, {100, 1, 1, 5}, 5, 0, 0, 0);
  Expect(Contains(ParseError(out_of_range.Bytes()), "reaches past the data section"), "view past the data");
  Image misaligned = ValidImage();
  misaligned.BeginConfig("odd", 1);
  misaligned.View("t1", 3, 0, {1, 1, 1, 1}, 1, 0, 2, 0);
  Expect(Contains(ParseError(misaligned.Bytes()), "not 4-byte aligned"), "misaligned weights");
  Image overlapping = ValidImage();
  overlapping.BeginConfig("overlap", 1);
  overlapping.View("t1", 1, 0, {2, 1, 3, 2}, 6, 1, 0, 0);
  Expect(Contains(ParseError(overlapping.Bytes()), "strides do not fit"), "tap stride below channels");
  Image layout = ValidImage();
  layout.BeginConfig("layout", 1);
  layout.View("t1", 9, 0, {1, 1, 1, 1}, 1, 0, 0, 0);
  Expect(Contains(ParseError(layout.Bytes()), "unknown layout 9"), "unknown layout");
  Image twice = ValidImage();
  twice.BeginConfig("wide", 0);
  Expect(Contains(ParseError(twice.Bytes()), "'wide' appears twice"), "duplicate configuration");
  Image zero_dim = ValidImage();
  zero_dim.BeginConfig("zero", 1);
  zero_dim.View("t1", 3, 0, {0, 1, 1, 1}, 1, 0, 0, 0);
  Expect(Contains(ParseError(zero_dim.Bytes()), "dimension 0 out of range"), "zero dimension");
  Image scale = ValidImage();
  scale.BeginConfig("scale", 1);
  scale.View("t1", 3, 1, {2, 1, 1, 2}, 2, 0, 0, 172);
  Expect(Contains(ParseError(scale.Bytes()), "scale reaches past"), "scale past the data");
  Image extra = ValidImage();
  extra.table.push_back(0);
  extra.table.push_back(0);
  extra.table.push_back(0);
  extra.table.push_back(0);
  Expect(Contains(ParseError(extra.Bytes()), "bytes left after the last configuration"), "trailing table bytes");
}

void TestFile() {
  char path[] = "/tmp/adaspring_weight_source_test_XXXXXX";
  const int fd = mkstemp(path);
  Expect(fd >= 0, "temporary file");
  if (fd < 0) return;
  const std::vector<unsigned char> bytes = ValidImage().Bytes();
  Expect(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()), "write image");
  close(fd);
  std::string error;
  const int64_t before = WeightSource::LiveMappings();
  auto first = WeightSource::Open(path, &error);
  auto second = WeightSource::Open(path, &error);
  Expect(first != nullptr && first == second, "one mapping per file (" + error + ")");
  Expect(WeightSource::LiveMappings() == before + 1, "one live mapping");
  first.reset();
  second.reset();
  Expect(WeightSource::LiveMappings() == before, "unmapped when unused");
  Expect(WeightSource::Open("/nonexistent/weights", &error) == nullptr && Contains(error, "cannot be opened"),
         "missing file");
  std::FILE* file = std::fopen(path, "wb");
  std::fputs("not a weight source", file);
  std::fclose(file);
  Expect(WeightSource::Open(path, &error) == nullptr && Contains(error, path) && Contains(error, "missing magic"),
         "corrupted file names the path and the problem");
  unlink(path);
}

void TestOptions() {
  DelegateOptions options;
  std::string error;
  const char* keys[] = {"weight_config"};
  const char* values[] = {"cfg01"};
  Expect(!ParseOptions(keys, values, 1, &options, &error) && Contains(error, "needs weight_source"),
         "weight_config without weight_source");
  const char* both_keys[] = {"weight_source", "weight_config"};
  const char* both_values[] = {"/proc/self/exe", "cfg01"};
  Expect(ParseOptions(both_keys, both_values, 2, &options, &error) && options.weight_config == "cfg01",
         "weight_config with weight_source");
  const char* empty_values[] = {"/proc/self/exe", ""};
  Expect(!ParseOptions(both_keys, empty_values, 2, &options, &error) && Contains(error, "weight_config=''"),
         "empty weight_config");
}

}  // namespace
}  // namespace adaspring

int main() {
  adaspring::TestValid();
  adaspring::TestCorrupted();
  adaspring::TestFile();
  adaspring::TestOptions();
  return ::adaspring::testing::Finish();
}
