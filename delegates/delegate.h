// The delegate object behind the TfLiteDelegate we hand to the runtime.
#ifndef ADASPRING_DELEGATES_DELEGATE_H_
#define ADASPRING_DELEGATES_DELEGATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "delegates/adaspring_delegate.h"
#include "delegates/options.h"
#include "delegates/tflite_abi.h"
#include "delegates/weight_source.h"
#include "kernels/thread_pool.h"

namespace adaspring {

struct DelegateCounters {
  std::atomic<int64_t> prepare_calls{0};
  std::atomic<int64_t> abi_refusals{0};
  std::atomic<int64_t> partitions{0};
  std::atomic<int64_t> claimed[3] = {};  // indexed by OpKind
  std::atomic<int64_t> skipped_candidates{0};
  std::atomic<int64_t> partition_invokes{0};
  std::atomic<int64_t> node_invokes{0};
  std::atomic<int64_t> claimed_shared{0};
};

struct NodeSpec;

class DelegateImpl {
 public:
  // Opens the weight source (if any) and selects its configuration. Null with `error` when an
  // option names a file or configuration that cannot be used.
  static DelegateImpl* Create(const DelegateOptions& options, std::string* error);
  ~DelegateImpl();
  DelegateImpl(const DelegateImpl&) = delete;
  DelegateImpl& operator=(const DelegateImpl&) = delete;

  // The struct the runtime sees; its data_ points back at this object.
  abi::Delegate* tflite_delegate() { return &runtime_facing_.delegate; }
  static DelegateImpl* FromTfLite(abi::Delegate* delegate) { return static_cast<DelegateImpl*>(delegate->data_); }

  const DelegateOptions& options() const { return options_; }
  kernels::ThreadPool* pool() { return pool_.get(); }  // null when num_threads == 1
  DelegateCounters& counters() { return counters_; }

  // Prints "[adaspring-delegate] ..." to stderr when the configured log level is at least `level`.
  void Log(LogLevel level, const char* format, ...) const __attribute__((format(printf, 3, 4)));

  void SetLastMessage(const std::string& message);
  std::string LastMessage() const;
  void FillStats(AdaSpringDelegateStats* stats) const;

  // The shared-weight view of the node's weight tensor (by tensor name), or null.
  const WeightView* ViewFor(abi::Context* context, const NodeSpec& spec) const;

 private:
  explicit DelegateImpl(const DelegateOptions& options);
  static abi::Status PrepareCallback(abi::Context* context, abi::Delegate* delegate);
  abi::Status PrepareSubgraph(abi::Context* context);
  void Refuse(abi::Context* context, const std::string& reason, bool report_error_usable);

  // The runtime reads a TfLiteDelegate here. Newer runtimes may append fields: the zeroed tail makes
  // them read as null/0 instead of as our other members.
  struct RuntimeFacing {
    abi::Delegate delegate;
    unsigned char reserved_tail[64];
  } runtime_facing_{};

  DelegateOptions options_;
  std::shared_ptr<const WeightSource> weight_source_;
  const ConfigViews* views_ = nullptr;  // the selected configuration's views, or null
  std::unique_ptr<kernels::ThreadPool> pool_;
  DelegateCounters counters_;
  mutable std::mutex message_mutex_;
  std::string last_message_;
};

// Registry of live delegates, so that the C API can reject pointers it did not create. Hold
// LiveDelegateMutex() across IsLiveDelegate and the use of the delegate.
std::mutex& LiveDelegateMutex();
void RegisterLiveDelegate(const void* delegate);    // caller holds LiveDelegateMutex()
void UnregisterLiveDelegate(const void* delegate);  // caller holds LiveDelegateMutex()
bool IsLiveDelegate(const void* delegate);          // caller holds LiveDelegateMutex()

}  // namespace adaspring

#endif  // ADASPRING_DELEGATES_DELEGATE_H_
