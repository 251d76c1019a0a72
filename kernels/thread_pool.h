// A small fixed-size thread pool for the kernels: the calling thread plus (num_threads - 1) workers.
//
// Tasks are claimed one at a time from a single atomic word that also carries the job's generation,
// so a worker that wakes up late (e.g. descheduled under CPU contention) can never claim a task of a
// finished or newer job, and the caller waits only for tasks that were actually claimed, never for a
// worker that has not started. Workers poll briefly after each job (so back-to-back invokes do not pay
// a wake-up) and then sleep on a condition variable. ParallelFor may be called from several threads
// at once: a caller that finds the pool busy runs its tasks itself instead of waiting.
#ifndef ADASPRING_KERNELS_THREAD_POOL_H_
#define ADASPRING_KERNELS_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace adaspring::kernels {

class ThreadPool {
 public:
  // `num_threads` >= 1 counts the calling thread; values below 1 are treated as 1.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls task(i) for every i in [0, num_tasks) and returns when all calls have finished.
  template <typename Task>
  void ParallelFor(int num_tasks, Task&& task) {
    using Stored = std::remove_reference_t<Task>;
    Run(num_tasks, [](void* ctx, int i) { (*static_cast<Stored*>(ctx))(i); },
        const_cast<void*>(static_cast<const void*>(&task)));
  }

 private:
  using TaskFn = void (*)(void* ctx, int task);

  void Run(int num_tasks, TaskFn fn, void* ctx);
  // Claims the next task of job `generation`; false when that job has no unclaimed task left.
  bool Claim(uint32_t generation, int* task);
  void RunTasksOf(uint32_t generation);
  void WorkerLoop();

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;   // held by the caller that owns the workers for one job
  std::mutex wake_mutex_;  // guards sleeping on wake_cv_
  std::condition_variable wake_cv_;
  // generation (bits 32-63) | task count (bits 16-31) | next task index (bits 0-15)
  std::atomic<uint64_t> job_{0};
  std::atomic<int> done_{0};  // tasks of the current job that have finished
  std::atomic<bool> stop_{false};
  uint32_t generation_ = 0;  // last published generation (owner of run_mutex_ only)
  TaskFn fn_ = nullptr;      // written before job_ is published, read only after a successful Claim
  void* ctx_ = nullptr;
};

// A half-open range [begin, end).
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
};

// How many chunks to cut `total` items into for `threads` threads so that no chunk is shorter than
// `min_chunk` (at least 1).
int ChunkCount(int64_t total, int threads, int64_t min_chunk);

// The i-th of `chunks` near-equal ranges covering [0, total); inner boundaries are multiples of
// `quantum` (e.g. a SIMD width), so only the last range may have a ragged size.
Range ChunkRange(int64_t total, int chunks, int i, int64_t quantum);

}  // namespace adaspring::kernels

#endif  // ADASPRING_KERNELS_THREAD_POOL_H_
