// Reading memory that might not be mapped, without crashing.
//
// The ABI self-check reads runtime structs through layouts that may be wrong; a wrong layout turns
// integers into "pointers". SafeReader copies such memory with a system call that fails with EFAULT
// instead of faulting: process_vm_readv on our own process, or (where a seccomp policy forbids it) a
// write into a private pipe. Pages once read successfully are remembered and later reads inside them
// are plain copies (a reader lives for one check, during which the runtime does not unmap its structs).
#ifndef ADASPRING_DELEGATES_SAFE_MEMORY_H_
#define ADASPRING_DELEGATES_SAFE_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <unordered_set>

namespace adaspring {

class SafeReader {
 public:
  // `use_pipe` skips process_vm_readv (tests use it to cover the fallback).
  explicit SafeReader(bool use_pipe = false) : use_pipe_(use_pipe) {}
  ~SafeReader();
  SafeReader(const SafeReader&) = delete;
  SafeReader& operator=(const SafeReader&) = delete;

  // Copies `size` bytes from `source` into `destination`; false (destination unspecified) if any of
  // those bytes is unreadable or `source` is null.
  bool Copy(void* destination, const void* source, size_t size);

  template <typename T>
  bool Read(const void* source, T* value) {
    return Copy(value, source, sizeof(T));
  }

 private:
  bool CopyChecked(void* destination, const void* source, size_t size);
  bool CopyThroughPipe(void* destination, const void* source, size_t size);

  bool use_pipe_ = false;
  std::unordered_set<uintptr_t> readable_pages_;
  int pipe_fds_[2] = {-1, -1};
};

}  // namespace adaspring

#endif  // ADASPRING_DELEGATES_SAFE_MEMORY_H_
