#include "delegates/options.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace adaspring {
namespace {

constexpr const char* kKnownKeys = "num_threads, log_level, weight_source, weight_config, debug_simulate_abi_mismatch";

std::string Quote(const char* text) { return std::string("'") + text + "'"; }

bool ParseThreads(const char* value, int* threads) {
  if (*value == '\0' || std::strlen(value) > 4) return false;
  int parsed = 0;
  for (const char* c = value; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return false;
    parsed = parsed * 10 + (*c - '0');
  }
  if (parsed < 1 || parsed > kMaxThreads) return false;
  *threads = parsed;
  return true;
}

bool ParseLogLevel(const char* value, LogLevel* level) {
  for (LogLevel candidate : {LogLevel::kSilent, LogLevel::kInfo, LogLevel::kDebug}) {
    if (std::strcmp(value, LogLevelName(candidate)) == 0) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

bool ParseSimulatedMismatch(const char* value, SimulatedMismatch* mismatch) {
  if (std::strcmp(value, "false") == 0 || std::strcmp(value, "0") == 0) {
    *mismatch = SimulatedMismatch::kNone;
  } else if (std::strcmp(value, "true") == 0 || std::strcmp(value, "1") == 0 || std::strcmp(value, "tensor") == 0) {
    *mismatch = SimulatedMismatch::kTensorSize;
  } else if (std::strcmp(value, "params") == 0) {
    *mismatch = SimulatedMismatch::kParamsOffset;
  } else {
    return false;
  }
  return true;
}

// Empty when `path` names a readable regular file, else why not.
std::string CheckReadableFile(const char* path) {
  if (*path == '\0') return "is empty";
  struct stat info;
  if (stat(path, &info) != 0) return std::string("cannot be accessed (") + std::strerror(errno) + ")";
  if (!S_ISREG(info.st_mode)) return "is not a regular file";
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot be opened for reading (") + std::strerror(errno) + ")";
  close(fd);
  return "";
}

bool ParseOne(const char* key, const char* value, DelegateOptions* options, std::string* error) {
  const std::string prefix = "adaspring delegate: option " + std::string(key) + "=" + Quote(value) + " ";
  if (std::strcmp(key, "num_threads") == 0) {
    if (ParseThreads(value, &options->num_threads)) return true;
    *error = prefix + "is invalid: give an integer from 1 to " + std::to_string(kMaxThreads);
    return false;
  }
  if (std::strcmp(key, "log_level") == 0) {
    if (ParseLogLevel(value, &options->log_level)) return true;
    *error = prefix + "is invalid: give one of silent, info, debug";
    return false;
  }
  if (std::strcmp(key, "weight_source") == 0) {
    const std::string problem = CheckReadableFile(value);
    if (problem.empty()) {
      options->weight_source = value;
      return true;
    }
    *error = prefix + "is invalid: the file " + problem + "; pass the path of the exported shared-weight file";
    return false;
  }
  if (std::strcmp(key, "weight_config") == 0) {
    if (*value != '\0' && std::strlen(value) <= 4096) {
      options->weight_config = value;
      return true;
    }
    *error = prefix + "is invalid: give the key of a configuration in the weight source";
    return false;
  }
  if (std::strcmp(key, "debug_simulate_abi_mismatch") == 0) {
    if (ParseSimulatedMismatch(value, &options->simulate_abi_mismatch)) return true;
    *error = prefix + "is invalid: give false, tensor (or true) or params";
    return false;
  }
  *error = "adaspring delegate: unknown option " + Quote(key) + "; known options: " + kKnownKeys;
  return false;
}

}  // namespace

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kSilent:
      break;
  }
  return "silent";
}

bool ParseOptions(const char* const* keys, const char* const* values, size_t count, DelegateOptions* options,
                  std::string* error) {
  *options = DelegateOptions();
  if (count > 0 && (keys == nullptr || values == nullptr)) {
    *error = "adaspring delegate: " + std::to_string(count) + " options announced but the key/value arrays are null";
    return false;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < count; ++i) {
    if (keys[i] == nullptr || values[i] == nullptr) {
      *error = "adaspring delegate: option #" + std::to_string(i) + " has a null key or value";
      return false;
    }
    if (!seen.insert(keys[i]).second) {
      *error = "adaspring delegate: option " + Quote(keys[i]) + " is given twice";
      return false;
    }
    if (!ParseOne(keys[i], values[i], options, error)) return false;
  }
  if (!options->weight_config.empty() && options->weight_source.empty()) {
    *error = "adaspring delegate: option weight_config='" + options->weight_config +
             "' needs weight_source (the shared-weight file it names a configuration of)";
    return false;
  }
  return true;
}

}  // namespace adaspring
