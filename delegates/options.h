// Options of the external delegate, as passed to tflite_plugin_create_delegate (string pairs).
#ifndef ADASPRING_DELEGATES_OPTIONS_H_
#define ADASPRING_DELEGATES_OPTIONS_H_

#include <cstddef>
#include <string>

namespace adaspring {

enum class LogLevel : int { kSilent = 0, kInfo = 1, kDebug = 2 };

enum class SimulatedMismatch : int { kNone = 0, kTensorSize = 1, kParamsOffset = 2 };

constexpr int kMaxThreads = 64;

struct DelegateOptions {
  int num_threads = 1;                  // "num_threads": integer in [1, kMaxThreads]
  LogLevel log_level = LogLevel::kSilent;  // "log_level": silent | info | debug
  std::string weight_source;            // "weight_source": path of a readable shared-weight file, or empty
  // "weight_config": the configuration of the weight source whose views this delegate computes (needs
  // weight_source; may be omitted when the file holds one configuration).
  std::string weight_config;
  // "debug_simulate_abi_mismatch": false | tensor (or true) | params. Makes the ABI self-check assume a
  // wrong TfLiteTensor size, or read the builtin params 4 bytes off, so tests can exercise the refusal
  // path on a healthy runtime.
  SimulatedMismatch simulate_abi_mismatch = SimulatedMismatch::kNone;
};

// Parses `count` key/value pairs. Returns true and fills `options`, or false with `error` naming the
// offending option, its value and the accepted values. Never throws.
bool ParseOptions(const char* const* keys, const char* const* values, size_t count, DelegateOptions* options,
                  std::string* error);

// "silent", "info" or "debug".
const char* LogLevelName(LogLevel level);

}  // namespace adaspring

#endif  // ADASPRING_DELEGATES_OPTIONS_H_
