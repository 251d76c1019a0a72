// Check counting for the project's plain cc_tests (no test framework is available offline).
#ifndef ADASPRING_KERNELS_TEST_CHECKS_H_
#define ADASPRING_KERNELS_TEST_CHECKS_H_

#include <cstdio>
#include <string>

namespace adaspring::testing {

struct CheckCounts {
  int checks = 0;
  int failures = 0;
};

// The process-wide counts.
inline CheckCounts& Counts() {
  static CheckCounts counts;
  return counts;
}

// Records one check; prints `what` when it failed.
inline void Expect(bool ok, const std::string& what) {
  ++Counts().checks;
  if (!ok) {
    ++Counts().failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

inline bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Prints the summary; returns the process exit code (0 when nothing failed).
inline int Finish() {
  std::printf("%d checks, %d failures\n", Counts().checks, Counts().failures);
  return Counts().failures == 0 ? 0 : 1;
}

}  // namespace adaspring::testing

#endif  // ADASPRING_KERNELS_TEST_CHECKS_H_
