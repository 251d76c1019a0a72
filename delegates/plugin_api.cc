// Exported entry points of libadaspring_delegate.so.
//
// This file is compiled for the baseline instruction set of the platform, while the kernels may be
// compiled for a newer one (x86-64-v3 by default). tflite_plugin_create_delegate therefore first
// checks that the CPU has what the kernels need and refuses cleanly otherwise, before any code built
// for the newer instruction set runs.
#include <cstring>
#include <new>
#include <string>

#include "delegates/adaspring_delegate.h"
#include "delegates/delegate.h"
#include "delegates/options.h"
#include "delegates/tflite_abi.h"

#define ADASPRING_EXPORT extern "C" __attribute__((visibility("default")))

#ifndef ADASPRING_VERSION
#define ADASPRING_VERSION "dev"
#endif
#ifndef ADASPRING_KERNEL_ISA
#define ADASPRING_KERNEL_ISA "default"
#endif

namespace {

using ReportError = void (*)(const char*);

// Null when this CPU runs the kernels' instruction set, else a static message.
const char* MissingCpuFeature() {
#if defined(ADASPRING_REQUIRE_X86_64_V3)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("bmi2")) {
    return "adaspring delegate: this library's kernels were compiled for x86-64-v3 (AVX2, FMA, BMI2), which this "
           "CPU lacks; rebuild it for this machine: python -m tflite_adaspring.delegates.build --march native";
  }
#endif
  return nullptr;
}

void Report(ReportError report_error, const char* message) {
  if (report_error != nullptr) report_error(message);
}

}  // namespace

ADASPRING_EXPORT adaspring::abi::Delegate* tflite_plugin_create_delegate(char** options_keys, char** options_values,
                                                                        size_t num_options,
                                                                        void (*report_error)(const char*)) {
  if (const char* missing = MissingCpuFeature()) {
    Report(report_error, missing);
    return nullptr;
  }
  // ctypes callers pass a C int here; only the low 32 bits are meaningful.
  const size_t count = static_cast<uint32_t>(num_options);
  try {
    adaspring::DelegateOptions options;
    std::string error;
    if (!adaspring::ParseOptions(options_keys, options_values, count, &options, &error)) {
      Report(report_error, error.c_str());
      return nullptr;
    }
    auto* impl = adaspring::DelegateImpl::Create(options, &error);
    if (impl == nullptr) {
      Report(report_error, error.c_str());
      return nullptr;
    }
    std::lock_guard<std::mutex> lock(adaspring::LiveDelegateMutex());
    adaspring::RegisterLiveDelegate(impl->tflite_delegate());
    return impl->tflite_delegate();
  } catch (const std::bad_alloc&) {
    Report(report_error, "adaspring delegate: out of memory while creating the delegate");
  } catch (...) {
    Report(report_error, "adaspring delegate: could not create the delegate (thread start failed?)");
  }
  return nullptr;
}

ADASPRING_EXPORT void tflite_plugin_destroy_delegate(adaspring::abi::Delegate* delegate) {
  {
    std::lock_guard<std::mutex> lock(adaspring::LiveDelegateMutex());
    if (!adaspring::IsLiveDelegate(delegate)) return;
    adaspring::UnregisterLiveDelegate(delegate);
  }
  delete adaspring::DelegateImpl::FromTfLite(delegate);
}

ADASPRING_EXPORT int adaspring_delegate_get_stats(const void* delegate, AdaSpringDelegateStats* out,
                                                  size_t out_size) {
  std::lock_guard<std::mutex> lock(adaspring::LiveDelegateMutex());
  if (out == nullptr || !adaspring::IsLiveDelegate(delegate)) return -1;
  AdaSpringDelegateStats stats{};
  auto* tflite_delegate = static_cast<adaspring::abi::Delegate*>(const_cast<void*>(delegate));
  adaspring::DelegateImpl::FromTfLite(tflite_delegate)->FillStats(&stats);
  std::memcpy(out, &stats, out_size < sizeof(stats) ? out_size : sizeof(stats));
  return 0;
}

ADASPRING_EXPORT int adaspring_delegate_last_message(const void* delegate, char* buffer, size_t size) {
  std::lock_guard<std::mutex> lock(adaspring::LiveDelegateMutex());
  if (!adaspring::IsLiveDelegate(delegate)) return -1;
  auto* tflite_delegate = static_cast<adaspring::abi::Delegate*>(const_cast<void*>(delegate));
  const std::string message = adaspring::DelegateImpl::FromTfLite(tflite_delegate)->LastMessage();
  if (buffer != nullptr && size > 0) {
    const size_t n = message.size() < size - 1 ? message.size() : size - 1;
    std::memcpy(buffer, message.data(), n);
    buffer[n] = '\0';
  }
  return static_cast<int>(message.size());
}

ADASPRING_EXPORT const char* adaspring_delegate_build_info(void) { return ADASPRING_VERSION " " ADASPRING_KERNEL_ISA; }
