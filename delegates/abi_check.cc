#include "delegates/abi_check.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <set>
#include <utility>
#include <vector>

#include "delegates/op_shapes.h"
#include "delegates/safe_memory.h"

namespace adaspring {
namespace {

constexpr size_t kMaxTensors = size_t{1} << 20;
constexpr int kMaxPlanNodes = 1 << 20;
constexpr int kMaxNodeIndex = 1 << 24;
constexpr int kMaxNodeArity = 4096;
constexpr int kMaxRank = 16;
constexpr int kMaxBuiltinCode = 1024;
constexpr int kMaxOpVersion = 1000;
constexpr int kMaxStrideOrDilation = 1 << 16;
constexpr int kMaxQuantizationType = 3;  // kTfLiteMultiAxisQuantization

// Bytes per element of the types whose `bytes` must equal count * size (0: not checked).
size_t ElementSize(int32_t type) {
  switch (type) {
    case abi::kFloat32:
    case abi::kInt32:
    case abi::kUInt32:
      return 4;
    case abi::kInt64:
    case abi::kUInt64:
    case abi::kFloat64:
    case abi::kComplex64:
      return 8;
    case abi::kComplex128:
      return 16;
    case abi::kInt16:
    case abi::kUInt16:
    case abi::kFloat16:
    case abi::kBFloat16:
      return 2;
    case abi::kUInt8:
    case abi::kInt8:
    case abi::kBool:
      return 1;
    default:
      return 0;
  }
}

const char* OpName(int32_t code) {
  switch (code) {
    case abi::kBuiltinConv2d:
      return "CONV_2D";
    case abi::kBuiltinDepthwiseConv2d:
      return "DEPTHWISE_CONV_2D";
    case abi::kBuiltinFullyConnected:
      return "FULLY_CONNECTED";
    default:
      return "op";
  }
}

// The runtime's view of one tensor, read (safely) at the assumed layout.
struct TensorFacts {
  int32_t type = 0;
  int32_t allocation_type = 0;
  const void* data = nullptr;
  size_t bytes = 0;
  Shape dims;
  std::vector<bool> known;  // per dim: false where dims_signature says -1 (a placeholder until run time)

  bool AllKnown(std::initializer_list<size_t> axes) const {
    for (size_t axis : axes) {
      if (axis >= known.size() || !known[axis]) return false;
    }
    return true;
  }
};

class Checker {
 public:
  Checker(abi::Context* context, const LayoutAssumptions& layout) : context_(context), layout_(layout) {}

  AbiCheckResult Run() {
    result_.ok = CheckContext() && CheckPlan() && CheckTensors() && CheckDelegableNodes();
    return result_;
  }

 private:
  struct NodeFacts {
    int index = 0;
    int32_t builtin_code = 0;
    const void* builtin_data = nullptr;
    std::vector<int> inputs;
    std::vector<int> outputs;
  };

  bool Fail(const std::string& reason) {
    result_.reason = reason;
    return false;
  }

  // Executable segments of every loaded object (collected once per check).
  static int CollectCode(dl_phdr_info* info, size_t /*size*/, void* data) {
    auto* ranges = static_cast<std::vector<std::pair<uintptr_t, uintptr_t>>*>(data);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const ElfW(Phdr)& segment = info->dlpi_phdr[i];
      if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) != 0) {
        const uintptr_t start = info->dlpi_addr + segment.p_vaddr;
        ranges->emplace_back(start, start + segment.p_memsz);
      }
    }
    return 0;
  }

  // True when `address` lies in an executable segment of a loaded object; with `same_object`, of the
  // runtime's library (the object holding GetExecutionPlan).
  bool InLoadedCode(const void* address, bool same_object) {
    if (code_ranges_.empty()) dl_iterate_phdr(&CollectCode, &code_ranges_);
    const uintptr_t at = reinterpret_cast<uintptr_t>(address);
    bool executable = false;
    for (const auto& range : code_ranges_) executable = executable || (at >= range.first && at < range.second);
    Dl_info info;
    if (!executable || dladdr(address, &info) == 0 || info.dli_fbase == nullptr) return false;
    return !same_object || info.dli_fbase == runtime_base_;
  }

  bool CheckContext() {
    if (!reader_.Read(context_, &ctx_)) return Fail("the TfLiteContext is not readable");
    const void* const functions[] = {
        reinterpret_cast<const void*>(ctx_.GetExecutionPlan),
        reinterpret_cast<const void*>(ctx_.ResizeTensor),
        reinterpret_cast<const void*>(ctx_.ReportError),
        reinterpret_cast<const void*>(ctx_.AddTensors),
        reinterpret_cast<const void*>(ctx_.GetNodeAndRegistration),
        reinterpret_cast<const void*>(ctx_.ReplaceNodeSubsetsWithDelegateKernels),
    };
    Dl_info info;
    if (!InLoadedCode(functions[0], false) || dladdr(functions[0], &info) == 0) {
      return Fail("TfLiteContext.GetExecutionPlan does not point into the code of a loaded library");
    }
    runtime_base_ = info.dli_fbase;
    result_.report_error_usable = InLoadedCode(functions[2], true);
    for (const void* function : functions) {
      if (!InLoadedCode(function, true)) {
        return Fail("the TfLiteContext function pointers do not all point into the runtime library");
      }
    }
    if (ctx_.tensors_size == 0 || ctx_.tensors_size > kMaxTensors || ctx_.tensors == nullptr) {
      return Fail("TfLiteContext.tensors_size/tensors are implausible (" + std::to_string(ctx_.tensors_size) + ")");
    }
    if (ctx_.recommended_num_threads < -1 || ctx_.recommended_num_threads > 4096) {
      return Fail("TfLiteContext.recommended_num_threads is implausible");
    }
    tensor_bytes_.resize(ctx_.tensors_size * layout_.tensor_size);
    if (!reader_.Copy(tensor_bytes_.data(), ctx_.tensors, tensor_bytes_.size())) {
      return Fail("the TfLiteContext.tensors array is not readable at the assumed TfLiteTensor size");
    }
    return true;
  }

  bool ReadIntArray(const abi::IntArray* array, int max_size, std::vector<int>* values) {
    int size = 0;
    if (!reader_.Read(array, &size) || size < 0 || size > max_size) return false;
    values->resize(size);
    return reader_.Copy(values->data(), abi::IntArrayData(array), sizeof(int) * static_cast<size_t>(size));
  }

  bool CheckPlan() {
    abi::IntArray* plan = nullptr;
    if (ctx_.GetExecutionPlan(context_, &plan) != abi::kOk || plan == nullptr) {
      return Fail("GetExecutionPlan failed");
    }
    std::vector<int> node_indices;
    if (!ReadIntArray(plan, kMaxPlanNodes, &node_indices)) return Fail("the execution plan is not a readable array");
    std::set<int> distinct;
    for (int index : node_indices) {
      if (index < 0 || index > kMaxNodeIndex || !distinct.insert(index).second) {
        return Fail("the execution plan holds an invalid or repeated node index");
      }
    }
    for (int index : node_indices) {
      if (!CheckNode(index)) return false;
    }
    return true;
  }

  bool CheckNode(int index) {
    abi::Node* node = nullptr;
    abi::Registration* registration = nullptr;
    const std::string where = "node " + std::to_string(index);
    if (ctx_.GetNodeAndRegistration(context_, index, &node, &registration) != abi::kOk || node == nullptr ||
        registration == nullptr) {
      return Fail(where + ": GetNodeAndRegistration failed");
    }
    abi::Node node_copy;
    if (!reader_.Read(node, &node_copy)) return Fail(where + ": TfLiteNode is not readable");
    // Read the registration only up to `version`: older runtimes' structs end after it.
    abi::Registration reg{};
    if (!reader_.Copy(&reg, registration, offsetof(abi::Registration, version) + sizeof(reg.version))) {
      return Fail(where + ": TfLiteRegistration is not readable");
    }
    if (reg.builtin_code < 0 || reg.builtin_code > kMaxBuiltinCode || reg.version < 0 ||
        reg.version > kMaxOpVersion) {
      return Fail(where + ": TfLiteRegistration builtin_code/version are implausible");
    }
    if (reg.builtin_code == abi::kBuiltinCustom && reg.custom_name == nullptr) {
      return Fail(where + ": custom op registration without a name");
    }
    const void* invoke = reinterpret_cast<const void*>(reg.invoke);
    if (checked_code_.count(invoke) == 0) {
      if (!InLoadedCode(invoke, false)) return Fail(where + ": TfLiteRegistration.invoke is not code");
      checked_code_.insert(invoke);
    }
    NodeFacts facts;
    facts.index = index;
    facts.builtin_code = reg.builtin_code;
    facts.builtin_data = node_copy.builtin_data;
    if (!ReadIntArray(node_copy.inputs, kMaxNodeArity, &facts.inputs) ||
        !ReadIntArray(node_copy.outputs, kMaxNodeArity, &facts.outputs)) {
      return Fail(where + ": TfLiteNode inputs/outputs are not readable arrays");
    }
    for (const std::vector<int>* list : {&facts.inputs, &facts.outputs}) {
      for (int tensor : *list) {
        if (tensor < -1 || static_cast<size_t>(tensor + 1) > ctx_.tensors_size) {
          return Fail(where + ": tensor index " + std::to_string(tensor) + " out of range");
        }
        if (tensor >= 0) used_tensors_.insert(tensor);
      }
    }
    ++result_.nodes_checked;
    if (reg.builtin_code == abi::kBuiltinConv2d || reg.builtin_code == abi::kBuiltinDepthwiseConv2d ||
        reg.builtin_code == abi::kBuiltinFullyConnected) {
      delegable_.push_back(std::move(facts));
    }
    return true;
  }

  const unsigned char* TensorRecord(int index) const {
    return tensor_bytes_.data() + static_cast<size_t>(index) * layout_.tensor_size;
  }

  // Reads the tensor's type, allocation, data, bytes, dims and dims_signature. False when dims (or a
  // present dims_signature) are unreadable, of implausible rank, or disagree with each other.
  bool ReadTensor(int index, TensorFacts* facts) {
    const unsigned char* record = TensorRecord(index);
    abi::Tensor tensor;
    std::memcpy(&tensor, record, sizeof(tensor) <= layout_.tensor_size ? sizeof(tensor) : layout_.tensor_size);
    facts->type = tensor.type;
    facts->allocation_type = tensor.allocation_type;
    facts->data = tensor.data;
    facts->bytes = tensor.bytes;
    std::vector<int> dims;
    if (tensor.dims == nullptr || !ReadIntArray(tensor.dims, kMaxRank, &dims)) return false;
    facts->dims.assign(dims.begin(), dims.end());
    facts->known.assign(dims.size(), true);
    if (layout_.tensor_size < sizeof(abi::Tensor) || tensor.dims_signature == nullptr) return true;
    // The last field of TfLiteTensor: reading it consistently also pins the struct's size.
    std::vector<int> signature;
    if (!ReadIntArray(tensor.dims_signature, kMaxRank, &signature)) return false;
    if (signature.empty()) return true;
    if (signature.size() != dims.size()) return false;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (signature[i] == -1) {
        facts->known[i] = false;
      } else if (signature[i] != dims[i]) {
        return false;
      }
    }
    return true;
  }

  bool CheckTensors() {
    for (int index : used_tensors_) {
      const std::string where = "tensor " + std::to_string(index);
      const unsigned char* record = TensorRecord(index);
      TensorFacts facts;
      if (!ReadTensor(index, &facts)) {
        return Fail(where + ": dims/dims_signature are not readable arrays of plausible rank that agree");
      }
      if (facts.type < 0 || facts.type > abi::kLastKnownType) return Fail(where + ": invalid TfLiteType");
      if (facts.allocation_type < 0 || facts.allocation_type > abi::kLastKnownAllocation) {
        return Fail(where + ": invalid allocation type");
      }
      const unsigned char stale = record[offsetof(abi::Tensor, data_is_stale)];
      const unsigned char variable = record[offsetof(abi::Tensor, is_variable)];
      int32_t quantization = 0;
      std::memcpy(&quantization, record + offsetof(abi::Tensor, quantization_type), sizeof(quantization));
      if (stale > 1 || variable > 1 || quantization < 0 || quantization > kMaxQuantizationType) {
        return Fail(where + ": flag or quantization fields hold invalid values");
      }
      const int64_t count = ElementCount(facts.dims);
      if (count < 0) return Fail(where + ": negative or huge dims");
      const size_t element = ElementSize(facts.type);
      const bool sized = facts.allocation_type == abi::kMmapRo || facts.allocation_type == abi::kArenaRw ||
                         facts.allocation_type == abi::kArenaRwPersistent ||
                         facts.allocation_type == abi::kPersistentRo;
      if (element != 0 && sized && facts.bytes != static_cast<size_t>(count) * element) {
        return Fail(where + ": bytes (" + std::to_string(facts.bytes) + ") differ from dims x element size (" +
                    std::to_string(count * static_cast<int64_t>(element)) + ")");
      }
      if (facts.allocation_type == abi::kMmapRo && facts.bytes > 0) {
        unsigned char probe = 0;
        const unsigned char* data = static_cast<const unsigned char*>(facts.data);
        if (data == nullptr || !reader_.Read(data, &probe) || !reader_.Read(data + facts.bytes - 1, &probe)) {
          return Fail(where + ": constant data is not readable");
        }
      }
      ++result_.tensors_checked;
    }
    return true;
  }

  // How a node's params compare with its tensors' shapes.
  enum class Agreement { kVerified, kUnverifiable, kFailed };

  // Params plausibility (hard failure) and params-implied output shape vs runtime output shape.
  bool CheckDelegableNodes() {
    int candidates = 0;
    for (const NodeFacts& node : delegable_) {
      if (node.inputs.empty() || node.outputs.empty() || node.inputs[0] < 0 || node.outputs[0] < 0) continue;
      TensorFacts input, output;
      if (!ReadTensor(node.inputs[0], &input) || !ReadTensor(node.outputs[0], &output)) {
        return Fail("node " + std::to_string(node.index) + ": tensors unreadable");
      }
      if (input.type != abi::kFloat32) continue;  // quantized variants are not ours
      ++candidates;
      const std::string where = "node " + std::to_string(node.index) + " (" + OpName(node.builtin_code) + ")";
      if (node.builtin_data == nullptr) return Fail(where + ": no builtin params");
      const Agreement agreement = node.builtin_code == abi::kBuiltinFullyConnected
                                      ? CheckFullyConnected(node, input, output, where)
                                      : CheckConvLike(node, input, output, where);
      if (agreement == Agreement::kFailed) return false;
      if (agreement == Agreement::kVerified) {
        result_.verified_nodes.insert(node.index);
      } else {
        ++result_.unverified_nodes;
      }
    }
    result_.candidates = candidates;
    return true;
  }

  Agreement CheckConvLike(const NodeFacts& node, const TensorFacts& input, const TensorFacts& output,
                          const std::string& where) {
    const bool depthwise = node.builtin_code == abi::kBuiltinDepthwiseConv2d;
    int32_t padding = 0, activation = 0;
    ConvAttributes attrs;
    int depth_multiplier = 1;
    if (depthwise) {
      abi::DepthwiseConvParams params;
      if (!reader_.Read(ParamsAddress(node), &params)) return FailWith(where + ": params unreadable");
      padding = params.padding;
      activation = params.activation;
      attrs.stride_h = params.stride_height;
      attrs.stride_w = params.stride_width;
      attrs.dilation_h = params.dilation_height_factor;
      attrs.dilation_w = params.dilation_width_factor;
      depth_multiplier = params.depth_multiplier;
    } else {
      abi::ConvParams params;
      if (!reader_.Read(ParamsAddress(node), &params)) return FailWith(where + ": params unreadable");
      padding = params.padding;
      activation = params.activation;
      attrs.stride_h = params.stride_height;
      attrs.stride_w = params.stride_width;
      attrs.dilation_h = params.dilation_height_factor;
      attrs.dilation_w = params.dilation_width_factor;
    }
    for (int value : {attrs.stride_h, attrs.stride_w, attrs.dilation_h, attrs.dilation_w}) {
      if (value < 1 || value > kMaxStrideOrDilation) return FailWith(where + ": implausible stride/dilation");
    }
    if (!ToPadding(padding, &attrs.padding) || activation < 0 || activation > abi::kLastKnownActivation ||
        depth_multiplier < 0 || depth_multiplier > kMaxStrideOrDilation) {
      return FailWith(where + ": invalid padding/activation/depth_multiplier in params");
    }
    if (node.inputs.size() < 2 || node.inputs[1] < 0) return FailWith(where + ": no filter input");
    TensorFacts filter;
    if (!ReadTensor(node.inputs[1], &filter) || filter.dims.size() != 4) return FailWith(where + ": filter not 4-D");
    const int out_channels = depthwise ? filter.dims[3] : filter.dims[0];
    // Spatial dims and channels follow from the params and weights alone (the batch is irrelevant);
    // dims that are placeholders until run time (dims_signature -1) prove nothing either way.
    if (input.dims.size() != 4 || output.dims.size() != 4 || !input.AllKnown({1, 2}) ||
        !output.AllKnown({1, 2, 3})) {
      return Agreement::kUnverifiable;
    }
    Shape expected;
    if (!ConvOutputShape(input.dims, filter.dims[1], filter.dims[2], out_channels, attrs, &expected) ||
        output.dims[1] != expected[1] || output.dims[2] != expected[2] || output.dims[3] != expected[3]) {
      return FailWith(where + ": output shape differs from the one its params imply (params layout mismatch?)");
    }
    return Agreement::kVerified;
  }

  Agreement CheckFullyConnected(const NodeFacts& node, const TensorFacts& input, const TensorFacts& output,
                                const std::string& where) {
    unsigned char raw[sizeof(abi::FullyConnectedParams)];
    if (!reader_.Copy(raw, ParamsAddress(node), sizeof(raw))) return FailWith(where + ": params unreadable");
    abi::FullyConnectedParams params;
    std::memcpy(&params, raw, sizeof(params));
    const unsigned char keep_num_dims = raw[offsetof(abi::FullyConnectedParams, keep_num_dims)];
    if (params.activation < 0 || params.activation > abi::kLastKnownActivation || params.weights_format < 0 ||
        params.weights_format > 1 || keep_num_dims > 1) {
      return FailWith(where + ": invalid activation/weights_format/keep_num_dims in params");
    }
    if (node.inputs.size() < 2 || node.inputs[1] < 0) return FailWith(where + ": no weights input");
    TensorFacts weights;
    if (!ReadTensor(node.inputs[1], &weights) || weights.dims.size() != 2) return FailWith(where + ": weights not 2-D");
    // Ranks are static: keep_num_dims fixes the output rank. Widths count only where known.
    const size_t expected_rank = keep_num_dims != 0 ? input.dims.size() : 2;
    if (output.dims.size() != expected_rank) {
      return FailWith(where + ": output rank differs from what keep_num_dims implies (params layout mismatch?)");
    }
    if (input.dims.empty() || !input.AllKnown({input.dims.size() - 1}) || !output.AllKnown({expected_rank - 1})) {
      return Agreement::kUnverifiable;
    }
    Shape expected;
    if (!FullyConnectedOutputShape(input.dims, weights.dims[1], weights.dims[0], keep_num_dims != 0, &expected)) {
      return Agreement::kUnverifiable;
    }
    if (output.dims.back() != weights.dims[0]) {
      return FailWith(where + ": output width differs from the weights' output features");
    }
    return Agreement::kVerified;
  }

  const void* ParamsAddress(const NodeFacts& node) const {
    return static_cast<const unsigned char*>(node.builtin_data) + layout_.params_offset;
  }

  Agreement FailWith(const std::string& reason) {
    Fail(reason);
    return Agreement::kFailed;
  }

  abi::Context* context_;
  LayoutAssumptions layout_;
  abi::Context ctx_{};
  SafeReader reader_;
  AbiCheckResult result_;
  const void* runtime_base_ = nullptr;
  std::set<const void*> checked_code_;  // invoke pointers already found in loaded code
  std::vector<std::pair<uintptr_t, uintptr_t>> code_ranges_;
  std::vector<unsigned char> tensor_bytes_;
  std::set<int> used_tensors_;
  std::vector<NodeFacts> delegable_;
};

}  // namespace

AbiCheckResult CheckRuntimeAbi(abi::Context* context, const LayoutAssumptions& layout) {
  if (context == nullptr) {
    AbiCheckResult result;
    result.reason = "null TfLiteContext";
    return result;
  }
  return Checker(context, layout).Run();
}

}  // namespace adaspring
