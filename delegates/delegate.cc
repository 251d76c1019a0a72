#include "delegates/delegate.h"

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "delegates/abi_check.h"
#include "delegates/node_support.h"
#include "delegates/partition_kernel.h"

namespace adaspring {
namespace {

// TfLiteDelegateFlags.
constexpr int64_t kAllowDynamicTensors = 1;
constexpr int64_t kRequirePropagatedShapes = 2;

std::set<const void*>& LiveDelegates() {
  static auto* live = new std::set<const void*>();
  return *live;
}

}  // namespace

std::mutex& LiveDelegateMutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}

void RegisterLiveDelegate(const void* delegate) { LiveDelegates().insert(delegate); }
void UnregisterLiveDelegate(const void* delegate) { LiveDelegates().erase(delegate); }
bool IsLiveDelegate(const void* delegate) { return delegate != nullptr && LiveDelegates().count(delegate) != 0; }

DelegateImpl* DelegateImpl::Create(const DelegateOptions& options, std::string* error) {
  std::shared_ptr<const WeightSource> source;
  const ConfigViews* views = nullptr;
  if (!options.weight_source.empty()) {
    std::string problem;
    source = WeightSource::Open(options.weight_source, &problem);
    if (source == nullptr) {
      *error = "adaspring delegate: option weight_source: " + problem;
      return nullptr;
    }
    std::string key = options.weight_config;
    if (key.empty() && source->config_count() == 1) key = source->configs().begin()->first;
    if (key.empty()) {
      *error = "adaspring delegate: the weight source holds " + std::to_string(source->config_count()) +
               " configurations; choose one with weight_config (one of " + source->KeyList() + ")";
      return nullptr;
    }
    views = source->Find(key);
    if (views == nullptr) {
      *error = "adaspring delegate: option weight_config='" + key + "' is not a configuration of the weight source " +
               "(it holds " + source->KeyList() + ")";
      return nullptr;
    }
  }
  auto* impl = new DelegateImpl(options);
  impl->weight_source_ = std::move(source);
  impl->views_ = views;
  return impl;
}

const WeightView* DelegateImpl::ViewFor(abi::Context* context, const NodeSpec& spec) const {
  if (views_ == nullptr || spec.weights < 0) return nullptr;
  const char* name = context->tensors[spec.weights].name;
  if (name == nullptr) return nullptr;
  const auto found = views_->find(name);
  return found == views_->end() ? nullptr : &found->second;
}

DelegateImpl::DelegateImpl(const DelegateOptions& options) : options_(options) {
  runtime_facing_.delegate.data_ = this;
  runtime_facing_.delegate.Prepare = &DelegateImpl::PrepareCallback;
  // Dynamic tensors allowed, so graphs with run-time reshapes accept the delegate at all; propagated
  // shapes, so our kernels' Prepare sees final input/output shapes (they recompute internal ones).
  runtime_facing_.delegate.flags = kAllowDynamicTensors | kRequirePropagatedShapes;
  if (options_.num_threads > 1) pool_ = std::make_unique<kernels::ThreadPool>(options_.num_threads);
  static const char* const kSimulated[] = {"", " debug_simulate_abi_mismatch=tensor",
                                           " debug_simulate_abi_mismatch=params"};
  Log(LogLevel::kInfo, "created: num_threads=%d log_level=%s weight_source=%s weight_config=%s%s",
      options_.num_threads, LogLevelName(options_.log_level),
      options_.weight_source.empty() ? "(none)" : options_.weight_source.c_str(),
      options_.weight_config.empty() ? "(default)" : options_.weight_config.c_str(),
      kSimulated[static_cast<int>(options_.simulate_abi_mismatch)]);
}

DelegateImpl::~DelegateImpl() = default;

void DelegateImpl::Log(LogLevel level, const char* format, ...) const {
  if (static_cast<int>(options_.log_level) < static_cast<int>(level)) return;
  char line[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  std::fprintf(stderr, "[adaspring-delegate] %s\n", line);
}

void DelegateImpl::SetLastMessage(const std::string& message) {
  std::lock_guard<std::mutex> lock(message_mutex_);
  last_message_ = message;
}

std::string DelegateImpl::LastMessage() const {
  std::lock_guard<std::mutex> lock(message_mutex_);
  return last_message_;
}

void DelegateImpl::FillStats(AdaSpringDelegateStats* stats) const {
  const auto load = [](const std::atomic<int64_t>& value) { return value.load(std::memory_order_relaxed); };
  stats->struct_size = sizeof(AdaSpringDelegateStats);
  stats->num_threads = options_.num_threads;
  stats->prepare_calls = load(counters_.prepare_calls);
  stats->abi_refusals = load(counters_.abi_refusals);
  stats->partitions = load(counters_.partitions);
  stats->claimed_conv2d = load(counters_.claimed[static_cast<int>(OpKind::kConv2D)]);
  stats->claimed_depthwise_conv2d = load(counters_.claimed[static_cast<int>(OpKind::kDepthwiseConv2D)]);
  stats->claimed_fully_connected = load(counters_.claimed[static_cast<int>(OpKind::kFullyConnected)]);
  stats->skipped_candidates = load(counters_.skipped_candidates);
  stats->partition_invokes = load(counters_.partition_invokes);
  stats->node_invokes = load(counters_.node_invokes);
  stats->shared_views = views_ == nullptr ? 0 : static_cast<int64_t>(views_->size());
  stats->claimed_shared = load(counters_.claimed_shared);
  stats->shared_weight_bytes = weight_source_ == nullptr ? 0 : static_cast<int64_t>(weight_source_->data_bytes());
  stats->weight_source_mappings = WeightSource::LiveMappings();
}

abi::Status DelegateImpl::PrepareCallback(abi::Context* context, abi::Delegate* delegate) {
  DelegateImpl* self = FromTfLite(delegate);
  try {
    return self->PrepareSubgraph(context);
  } catch (...) {
    // Out of memory while planning: claim nothing, the runtime keeps its own kernels.
    self->SetLastMessage("prepare failed (out of memory); no node claimed");
    return abi::kOk;
  }
}

void DelegateImpl::Refuse(abi::Context* context, const std::string& reason, bool report_error_usable) {
  counters_.abi_refusals.fetch_add(1, std::memory_order_relaxed);
  const std::string message =
      "ABI self-check failed, no node claimed (the runtime's own kernels run instead): " + reason +
      ". This library was built for the TFLite 2.21 / LiteRT 2.3 C ABI.";
  SetLastMessage(message);
  Log(LogLevel::kInfo, "%s", message.c_str());
  if (report_error_usable) context->ReportError(context, "adaspring delegate: %s", message.c_str());
}

abi::Status DelegateImpl::PrepareSubgraph(abi::Context* context) {
  counters_.prepare_calls.fetch_add(1, std::memory_order_relaxed);
  LayoutAssumptions layout;
  if (options_.simulate_abi_mismatch == SimulatedMismatch::kTensorSize) layout.tensor_size = sizeof(abi::Tensor) - 8;
  if (options_.simulate_abi_mismatch == SimulatedMismatch::kParamsOffset) layout.params_offset = sizeof(int32_t);
  const auto started = std::chrono::steady_clock::now();
  const AbiCheckResult abi_check = CheckRuntimeAbi(context, layout);
  const double check_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (!abi_check.ok) {
    Refuse(context, abi_check.reason, abi_check.report_error_usable);
    // With shared weights the graph's own weight tensors are placeholders: running it on the runtime's
    // kernels would compute garbage, so the delegate application fails instead.
    return views_ == nullptr || views_->empty() ? abi::kOk : abi::kError;
  }
  Log(LogLevel::kDebug, "ABI self-check passed (%d nodes, %d tensors, %zu verified / %d unverified candidates, "
      "%.3f ms)", abi_check.nodes_checked, abi_check.tensors_checked, abi_check.verified_nodes.size(),
      abi_check.unverified_nodes, check_ms);

  abi::IntArray* plan = nullptr;
  if (context->GetExecutionPlan(context, &plan) != abi::kOk || plan == nullptr) return abi::kOk;
  const std::vector<int> node_indices(abi::IntArrayData(plan), abi::IntArrayData(plan) + plan->size);
  std::vector<int> claimed(1, 0);  // TfLiteIntArray storage: size first, then the node indices
  int64_t per_kind[3] = {0, 0, 0};
  int64_t skipped = 0;
  int64_t shared = 0;
  std::set<int> viewed_tensors;  // tensors of this subgraph with a shared-weight view
  if (views_ != nullptr) {
    for (size_t t = 0; t < context->tensors_size; ++t) {
      const char* name = context->tensors[t].name;
      if (name != nullptr && views_->count(name) != 0) viewed_tensors.insert(static_cast<int>(t));
    }
  }
  std::string view_problem;
  for (int node_index : node_indices) {
    NodeSpec spec;
    const char* why = nullptr;
    NodeVerdict verdict = DescribeNode(context, node_index, &spec, &why);
    if (verdict == NodeVerdict::kSupported && abi_check.verified_nodes.count(node_index) == 0) {
      verdict = NodeVerdict::kUnsupported;
      why = "params not verifiable against its shapes before shape propagation";
    }
    const WeightView* view = verdict == NodeVerdict::kSupported ? ViewFor(context, spec) : nullptr;
    if (view != nullptr) {
      const abi::Tensor& weights = context->tensors[spec.weights];
      static constexpr ViewLayout kLayouts[3] = {ViewLayout::kConv, ViewLayout::kDepthwise, ViewLayout::kDense};
      const char* mismatch = CheckViewMatchesTensor(*view, kLayouts[static_cast<int>(spec.kind)],
                                                    abi::IntArrayData(weights.dims), weights.dims->size);
      if (mismatch != nullptr && view_problem.empty()) {
        view_problem = std::string("weight tensor '") + weights.name + "' of node " + std::to_string(node_index) +
                       " (" + OpKindName(spec.kind) + "): " + mismatch;
      }
      viewed_tensors.erase(spec.weights);
      ++shared;
    }
    if (verdict == NodeVerdict::kSupported) {
      claimed.push_back(node_index);
      ++per_kind[static_cast<int>(spec.kind)];
      Log(LogLevel::kDebug, "node %d (%s): claimed%s", node_index, OpKindName(spec.kind),
          view != nullptr ? " (shared-weight view)" : "");
    } else if (verdict == NodeVerdict::kUnsupported) {
      ++skipped;
      Log(LogLevel::kDebug, "node %d (%s): left to the runtime: %s", node_index, OpKindName(spec.kind), why);
    }
  }
  counters_.skipped_candidates.fetch_add(skipped, std::memory_order_relaxed);
  if (view_problem.empty() && !viewed_tensors.empty()) {
    view_problem = std::string("tensor '") + context->tensors[*viewed_tensors.begin()].name + "' and " +
                   std::to_string(viewed_tensors.size() - 1) +
                   " other(s) have a shared-weight view but are not the weights of a node this delegate runs";
  }
  if (!view_problem.empty()) {
    // The graph holds placeholders for these weights: refuse the whole graph rather than run garbage.
    const std::string message = "weight_config '" + options_.weight_config + "' does not fit this graph: " +
                                view_problem + " (was the weight source written for this model?)";
    SetLastMessage(message);
    Log(LogLevel::kInfo, "%s", message.c_str());
    context->ReportError(context, "adaspring delegate: %s", message.c_str());
    return abi::kError;
  }
  claimed[0] = static_cast<int>(claimed.size() - 1);
  Log(LogLevel::kInfo,
      "subgraph with %zu nodes: claimed %d (conv2d %lld, depthwise_conv2d %lld, fully_connected %lld), "
      "left %lld candidate(s) to the runtime",
      node_indices.size(), claimed[0], static_cast<long long>(per_kind[0]), static_cast<long long>(per_kind[1]),
      static_cast<long long>(per_kind[2]), static_cast<long long>(skipped));
  if (claimed[0] == 0) return abi::kOk;
  const abi::Status status = context->ReplaceNodeSubsetsWithDelegateKernels(
      context, PartitionKernelRegistration(), reinterpret_cast<const abi::IntArray*>(claimed.data()),
      tflite_delegate());
  if (status == abi::kOk) {
    for (int kind = 0; kind < 3; ++kind) counters_.claimed[kind].fetch_add(per_kind[kind], std::memory_order_relaxed);
    counters_.claimed_shared.fetch_add(shared, std::memory_order_relaxed);
  } else {
    SetLastMessage("the runtime refused to replace the claimed nodes");
  }
  return status;
}

}  // namespace adaspring
