#include "kernels/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ADASPRING_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define ADASPRING_CPU_RELAX() asm volatile("yield" ::: "memory")
#else
#define ADASPRING_CPU_RELAX() std::this_thread::yield()
#endif

namespace adaspring::kernels {
namespace {

// How long an idle worker keeps polling before it sleeps. Back-to-back jobs (the nodes of one invoke,
// a benchmark loop) find the workers awake; an idle interpreter costs no CPU. While polling, the
// worker yields every few dozen pauses so that other runnable threads (the runtime's own thread pool
// between our nodes) are not starved.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);
constexpr int kPausesPerYield = 64;

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  const int workers = std::max(num_threads, 1) - 1;
  workers_.reserve(workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stop_.store(true, std::memory_order_release);
  }
  wake_cv_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

namespace {

constexpr int kMaxTasks = 0xffff;

uint32_t GenerationOf(uint64_t job) { return static_cast<uint32_t>(job >> 32); }

}  // namespace

void ThreadPool::Run(int num_tasks, TaskFn fn, void* ctx) {
  if (num_tasks <= 0) return;
  std::unique_lock<std::mutex> run_lock(run_mutex_, std::try_to_lock);
  if (num_tasks == 1 || num_tasks > kMaxTasks || workers_.empty() || !run_lock.owns_lock()) {
    for (int i = 0; i < num_tasks; ++i) fn(ctx, i);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = ++generation_;
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    job_.store((static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(num_tasks) << 16),
               std::memory_order_release);
  }
  wake_cv_.notify_all();
  RunTasksOf(generation);
  // Only tasks some worker has claimed can still be running; unclaimed ones were run above.
  while (done_.load(std::memory_order_acquire) < num_tasks) ADASPRING_CPU_RELAX();
}

bool ThreadPool::Claim(uint32_t generation, int* task) {
  uint64_t job = job_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t count = static_cast<uint32_t>(job >> 16) & 0xffff;
    const uint32_t next = static_cast<uint32_t>(job) & 0xffff;
    if (GenerationOf(job) != generation || next >= count) return false;
    if (job_.compare_exchange_weak(job, job + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      *task = static_cast<int>(next);
      return true;
    }
  }
}

void ThreadPool::RunTasksOf(uint32_t generation) {
  int task = 0;
  while (Claim(generation, &task)) {
    fn_(ctx_, task);
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::WorkerLoop() {
  uint32_t seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
    uint32_t current = GenerationOf(job_.load(std::memory_order_acquire));
    int spins = 0;
    while (current == seen && !stop_.load(std::memory_order_acquire)) {
      ADASPRING_CPU_RELAX();
      if (++spins % kPausesPerYield == 0) std::this_thread::yield();
      if (spins % (4 * kPausesPerYield) == 0 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(wake_mutex_);
        wake_cv_.wait(lock, [&] {
          return GenerationOf(job_.load(std::memory_order_acquire)) != seen || stop_.load(std::memory_order_acquire);
        });
      }
      current = GenerationOf(job_.load(std::memory_order_acquire));
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = current;
    RunTasksOf(current);
  }
}

int ChunkCount(int64_t total, int threads, int64_t min_chunk) {
  if (total <= 0) return 1;
  const int64_t by_size = std::max<int64_t>(total / std::max<int64_t>(min_chunk, 1), 1);
  return static_cast<int>(std::min<int64_t>(std::max(threads, 1), by_size));
}

Range ChunkRange(int64_t total, int chunks, int i, int64_t quantum) {
  quantum = std::max<int64_t>(quantum, 1);
  chunks = std::max(chunks, 1);
  const int64_t units = (total + quantum - 1) / quantum;
  const int64_t base = units / chunks;
  const int64_t extra = units % chunks;
  const int64_t first = i * base + std::min<int64_t>(i, extra);
  const int64_t count = base + (i < extra ? 1 : 0);
  Range range;
  range.begin = std::min(first * quantum, total);
  range.end = std::min((first + count) * quantum, total);
  return range;
}

}  // namespace adaspring::kernels
