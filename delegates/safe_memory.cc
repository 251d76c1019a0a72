#include "delegates/safe_memory.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace adaspring {
namespace {

constexpr size_t kPipeChunk = 4096;

}  // namespace

SafeReader::~SafeReader() {
  if (pipe_fds_[0] >= 0) close(pipe_fds_[0]);
  if (pipe_fds_[1] >= 0) close(pipe_fds_[1]);
}

bool SafeReader::Copy(void* destination, const void* source, size_t size) {
  if (size == 0) return true;
  const uintptr_t start = reinterpret_cast<uintptr_t>(source);
  if (source == nullptr || start + size < start) return false;
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = start & ~(page - 1);
  const uintptr_t last = (start + size - 1) & ~(page - 1);
  bool known = true;
  for (uintptr_t p = first; known && p <= last; p += page) known = readable_pages_.count(p) != 0;
  if (known) {
    std::memcpy(destination, source, size);
    return true;
  }
  if (!CopyChecked(destination, source, size)) return false;
  for (uintptr_t p = first; p <= last; p += page) readable_pages_.insert(p);
  return true;
}

bool SafeReader::CopyChecked(void* destination, const void* source, size_t size) {
  if (!use_pipe_) {
    iovec local{destination, size};
    iovec remote{const_cast<void*>(source), size};
    const ssize_t copied = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (copied == static_cast<ssize_t>(size)) return true;
    if (copied >= 0 || errno == EFAULT) return false;
    // ENOSYS / EPERM (seccomp) and friends: fall back to the pipe for the rest of this reader's life.
    use_pipe_ = true;
  }
  return CopyThroughPipe(destination, source, size);
}

bool SafeReader::CopyThroughPipe(void* destination, const void* source, size_t size) {
  if (pipe_fds_[0] < 0 && pipe2(pipe_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    pipe_fds_[0] = pipe_fds_[1] = -1;
    return false;
  }
  const char* from = static_cast<const char*>(source);
  char* to = static_cast<char*>(destination);
  while (size > 0) {
    const size_t chunk = size < kPipeChunk ? size : kPipeChunk;
    const ssize_t written = write(pipe_fds_[1], from, chunk);
    if (written <= 0) return false;  // EFAULT: unreadable source
    ssize_t drained = 0;
    while (drained < written) {
      const ssize_t got = read(pipe_fds_[0], to + drained, static_cast<size_t>(written - drained));
      if (got <= 0) return false;
      drained += got;
    }
    if (static_cast<size_t>(written) != chunk) return false;  // partial: the rest is unreadable
    from += chunk;
    to += chunk;
    size -= chunk;
  }
  return true;
}

}  // namespace adaspring
