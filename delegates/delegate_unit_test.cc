// Unit tests of the delegate's pieces that do not need a TFLite runtime: option parsing, op shapes,
// SafeReader, and the ABI self-check against a fake runtime (healthy, then corrupted in the ways a
// layout mismatch would corrupt it: it must refuse, never crash). Exits non-zero on failure.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/test_checks.h"
#include "delegates/abi_check.h"
#include "delegates/op_shapes.h"
#include "delegates/options.h"
#include "delegates/safe_memory.h"
#include "delegates/tflite_abi.h"

namespace adaspring {
namespace {

using ::adaspring::testing::Expect;

using ::adaspring::testing::Contains;

bool Parse(std::vector<const char*> keys, std::vector<const char*> values, DelegateOptions* options,
           std::string* error) {
  return ParseOptions(keys.data(), values.data(), keys.size(), options, error);
}

void TestOptions() {
  DelegateOptions options;
  std::string error;
  Expect(Parse({}, {}, &options, &error) && options.num_threads == 1 && options.log_level == LogLevel::kSilent,
         "defaults");
  Expect(Parse({"num_threads", "log_level"}, {"8", "debug"}, &options, &error) && options.num_threads == 8 &&
             options.log_level == LogLevel::kDebug,
         "valid options");
  Expect(Parse({"debug_simulate_abi_mismatch"}, {"params"}, &options, &error) &&
             options.simulate_abi_mismatch == SimulatedMismatch::kParamsOffset,
         "simulated params mismatch");
  Expect(Parse({"weight_source"}, {"/proc/self/exe"}, &options, &error) && options.weight_source == "/proc/self/exe",
         "readable weight source");
  const struct {
    const char* key;
    const char* value;
    const char* expected;
  } bad[] = {
      {"num_threads", "0", "num_threads='0' is invalid"},   {"num_threads", "65", "from 1 to 64"},
      {"num_threads", "3x", "num_threads='3x'"},            {"num_threads", "", "num_threads=''"},
      {"log_level", "INFO", "silent, info, debug"},          {"weight_source", "/nonexistent", "cannot be accessed"},
      {"weight_source", "/tmp", "not a regular file"},       {"threads", "2", "unknown option 'threads'"},
      {"debug_simulate_abi_mismatch", "yes", "false, tensor (or true) or params"},
  };
  for (const auto& c : bad) {
    error.clear();
    Expect(!Parse({c.key}, {c.value}, &options, &error) && Contains(error, c.expected),
           std::string("rejects ") + c.key + "=" + c.value + " (got: " + error + ")");
  }
  Expect(!Parse({"num_threads", "num_threads"}, {"1", "2"}, &options, &error) && Contains(error, "given twice"),
         "duplicate key");
  Expect(!ParseOptions(nullptr, nullptr, 2, &options, &error) && Contains(error, "arrays are null"), "null arrays");
  Expect(!Parse({nullptr}, {"1"}, &options, &error) && Contains(error, "null key"), "null key");
}

void TestShapes() {
  ConvAttributes same;
  same.padding = kernels::Padding::kSame;
  same.stride_w = 2;
  Shape out;
  kernels::AxisGeometry rows, cols;
  Expect(ConvOutputShape({2, 1, 9, 4}, 1, 3, 7, same, &out, &rows, &cols) && out == Shape({2, 1, 5, 7}) &&
             cols.pad_before == 1 && rows.pad_before == 0,
         "conv SAME stride 2");
  ConvAttributes valid;
  Expect(!ConvOutputShape({1, 1, 2, 4}, 1, 3, 7, valid, &out), "conv VALID window larger than input");
  Expect(!ConvOutputShape({1, 9, 4}, 1, 3, 7, valid, &out), "conv needs 4-D input");
  int64_t fc_rows = 0;
  Expect(FullyConnectedOutputShape({2, 3, 8}, 8, 5, false, &out, &fc_rows) && out == Shape({6, 5}) && fc_rows == 6,
         "fc flattens");
  Expect(FullyConnectedOutputShape({2, 3, 8}, 8, 5, true, &out) && out == Shape({2, 3, 5}), "fc keep_num_dims");
  Expect(FullyConnectedOutputShape({1, 2, 16}, 32, 5, false, &out) && out == Shape({1, 5}), "fc flattening rows");
  Expect(!FullyConnectedOutputShape({1, 7}, 8, 5, false, &out), "fc input not a multiple");
  Expect(ElementCount({}) == 1 && ElementCount({2, -1}) == -1 && ElementCount({65536, 65536}) == -1, "element count");
}

void TestSafeReader() {
  for (bool use_pipe : {false, true}) {
    SafeReader reader(use_pipe);
    const std::string label = use_pipe ? " (pipe)" : " (process_vm_readv)";
    std::vector<char> source(10000, 'x'), destination(10000, 0);
    Expect(reader.Copy(destination.data(), source.data(), source.size()) && destination == source, "copy" + label);
    int value = 0;
    Expect(!reader.Read(nullptr, &value), "null source" + label);
    const long page = sysconf(_SC_PAGESIZE);
    void* guard = mmap(nullptr, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    Expect(guard != MAP_FAILED && !reader.Read(guard, &value), "unreadable page" + label);
    if (guard != MAP_FAILED) munmap(guard, page);
    Expect(!reader.Read(reinterpret_cast<const void*>(16), &value), "low address" + label);
  }
}

// ---- A fake runtime: one FULLY_CONNECTED node, input [1, 4] -> output [1, 3], weights [3, 4]. ----

struct FakeRuntime {
  abi::Context context{};
  abi::Tensor tensors[3]{};
  std::vector<int> dims[3];
  std::vector<int> plan{1, 0};      // IntArray: size 1, node 0
  std::vector<int> inputs{2, 0, 1};  // IntArray: input, weights (no bias)
  std::vector<int> outputs{1, 2};
  float weights[12] = {};
  abi::Node node{};
  abi::Registration registration{};
  unsigned char params[sizeof(abi::FullyConnectedParams)] = {};

  FakeRuntime() {
    dims[0] = {2, 1, 4};
    dims[1] = {2, 3, 4};
    dims[2] = {2, 1, 3};
    const size_t bytes[3] = {16, 48, 12};
    const int allocation[3] = {abi::kArenaRw, abi::kMmapRo, abi::kArenaRw};
    for (int i = 0; i < 3; ++i) {
      tensors[i].type = abi::kFloat32;
      tensors[i].dims = reinterpret_cast<abi::IntArray*>(dims[i].data());
      tensors[i].bytes = bytes[i];
      tensors[i].allocation_type = allocation[i];
    }
    tensors[1].data = weights;
    node.inputs = reinterpret_cast<abi::IntArray*>(inputs.data());
    node.outputs = reinterpret_cast<abi::IntArray*>(outputs.data());
    node.builtin_data = params;
    registration.builtin_code = abi::kBuiltinFullyConnected;
    registration.version = 1;
    registration.invoke = &FakeInvoke;
    context.tensors_size = 3;
    context.tensors = tensors;
    context.impl_ = this;
    context.GetExecutionPlan = &GetExecutionPlan;
    context.ResizeTensor = &ResizeTensor;
    context.ReportError = &ReportError;
    context.AddTensors = &AddTensors;
    context.GetNodeAndRegistration = &GetNodeAndRegistration;
    context.ReplaceNodeSubsetsWithDelegateKernels = &Replace;
    context.recommended_num_threads = -1;
  }

  static FakeRuntime* Self(abi::Context* c) { return static_cast<FakeRuntime*>(c->impl_); }
  static abi::Status GetExecutionPlan(abi::Context* c, abi::IntArray** plan) {
    *plan = reinterpret_cast<abi::IntArray*>(Self(c)->plan.data());
    return abi::kOk;
  }
  static abi::Status GetNodeAndRegistration(abi::Context* c, int index, abi::Node** node, abi::Registration** reg) {
    if (index != 0) return abi::kError;
    *node = &Self(c)->node;
    *reg = &Self(c)->registration;
    return abi::kOk;
  }
  static abi::Status ResizeTensor(abi::Context*, abi::Tensor*, abi::IntArray*) { return abi::kError; }
  static void ReportError(abi::Context*, const char*, ...) {}
  static abi::Status AddTensors(abi::Context*, int, int*) { return abi::kError; }
  static abi::Status Replace(abi::Context*, abi::Registration, const abi::IntArray*, abi::Delegate*) {
    return abi::kError;
  }
  static abi::Status FakeInvoke(abi::Context*, abi::Node*) { return abi::kOk; }
};

void ExpectRefused(FakeRuntime& runtime, const std::string& fragment, const std::string& what,
                   LayoutAssumptions layout = LayoutAssumptions()) {
  const AbiCheckResult result = CheckRuntimeAbi(&runtime.context, layout);
  Expect(!result.ok && Contains(result.reason, fragment), what + " is refused (reason: " + result.reason + ")");
}

void TestAbiCheck() {
  {
    FakeRuntime runtime;
    const AbiCheckResult result = CheckRuntimeAbi(&runtime.context, LayoutAssumptions());
    Expect(result.ok && result.verified_nodes.count(0) == 1 && result.tensors_checked == 3,
           "healthy fake runtime passes (" + result.reason + ")");
  }
  {
    FakeRuntime runtime;
    runtime.dims[2] = {2, 1, 5};
    runtime.tensors[2].dims = reinterpret_cast<abi::IntArray*>(runtime.dims[2].data());
    runtime.tensors[2].bytes = 20;
    ExpectRefused(runtime, "output width differs", "FC output width contradicting the weights");
  }
  {
    FakeRuntime runtime;
    runtime.tensors[0].bytes = 17;
    ExpectRefused(runtime, "bytes (17) differ", "bytes inconsistent with dims");
  }
  {
    FakeRuntime runtime;
    runtime.context.tensors = reinterpret_cast<abi::Tensor*>(0x10);
    ExpectRefused(runtime, "tensors array is not readable", "unreadable tensors array");
  }
  {
    FakeRuntime runtime;
    runtime.tensors[2].dims = reinterpret_cast<abi::IntArray*>(0x1000);
    ExpectRefused(runtime, "tensor 2: dims", "garbage dims pointer");
  }
  {
    FakeRuntime runtime;
    runtime.params[offsetof(abi::FullyConnectedParams, keep_num_dims)] = 7;
    ExpectRefused(runtime, "keep_num_dims", "non-boolean keep_num_dims");
  }
  {
    FakeRuntime runtime;
    runtime.dims[0] = {3, 1, 1, 4};  // a 3-D input: keep_num_dims would make the output 3-D too
    runtime.tensors[0].dims = reinterpret_cast<abi::IntArray*>(runtime.dims[0].data());
    const AbiCheckResult before = CheckRuntimeAbi(&runtime.context, LayoutAssumptions());
    Expect(before.ok, "3-D input flattened by FULLY_CONNECTED passes (" + before.reason + ")");
    runtime.params[offsetof(abi::FullyConnectedParams, keep_num_dims)] = 1;
    ExpectRefused(runtime, "output rank differs", "keep_num_dims contradicting the output rank");
  }
  {
    FakeRuntime runtime;
    static int not_code = 0;
    runtime.context.ReportError = reinterpret_cast<void (*)(abi::Context*, const char*, ...)>(&not_code);
    const AbiCheckResult result = CheckRuntimeAbi(&runtime.context, LayoutAssumptions());
    Expect(!result.ok && !result.report_error_usable && Contains(result.reason, "function pointers"),
           "data pointer in a function slot is refused and ReportError not trusted (" + result.reason + ")");
  }
  {
    FakeRuntime runtime;
    runtime.inputs[1] = 99;
    ExpectRefused(runtime, "out of range", "tensor index out of range");
  }
  {
    FakeRuntime runtime;
    runtime.tensors[1].data = reinterpret_cast<void*>(0x2000);
    ExpectRefused(runtime, "constant data is not readable", "unreadable constant data");
  }
  {
    FakeRuntime runtime;
    runtime.registration.builtin_code = 5000;
    ExpectRefused(runtime, "builtin_code/version", "implausible builtin code");
  }
  {
    FakeRuntime runtime;
    LayoutAssumptions wrong;
    wrong.tensor_size = sizeof(abi::Tensor) - 8;
    ExpectRefused(runtime, "tensor", "wrong TfLiteTensor size", wrong);
  }
  {
    // A placeholder input shape (dims_signature -1) leaves the node unverified, not refused.
    FakeRuntime runtime;
    std::vector<int> signature{2, -1, -1};
    runtime.dims[0] = {2, 1, 1};
    runtime.tensors[0].dims = reinterpret_cast<abi::IntArray*>(runtime.dims[0].data());
    runtime.tensors[0].bytes = 4;
    runtime.tensors[0].dims_signature = reinterpret_cast<abi::IntArray*>(signature.data());
    const AbiCheckResult result = CheckRuntimeAbi(&runtime.context, LayoutAssumptions());
    Expect(result.ok && result.verified_nodes.empty() && result.unverified_nodes == 1,
           "placeholder shapes stay unverified (" + result.reason + ")");
  }
  Expect(!CheckRuntimeAbi(nullptr, LayoutAssumptions()).ok, "null context");
}

}  // namespace
}  // namespace adaspring

int main() {
  adaspring::TestOptions();
  adaspring::TestShapes();
  adaspring::TestSafeReader();
  adaspring::TestAbiCheck();
  return ::adaspring::testing::Finish();
}
