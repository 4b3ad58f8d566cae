// A small fixed pool of worker threads for data-parallel kernel loops. A training step is
// dozens of short kernels in a row, so idle workers spin briefly (when the pool does not
// oversubscribe the machine) before sleeping: waking a sleeping thread costs more than most of
// those kernels.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ampc::cpu {

class ThreadPool {
 public:
  // threads <= 0: one per hardware thread.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls fn(begin, end) over [0, n) split into contiguous chunks, at most one per thread, on
  // the pool and the calling thread; returns when all are done. Work below `grain` items per
  // chunk is not split. Not reentrant: fn must not call ParallelFor.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  // Published before generation_ is incremented (release), read after it is seen (acquire).
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, chunk_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0}, sleepers_{0};
  std::atomic<bool> stop_{false};
  int spin_ = 0;  // iterations to spin before sleeping (0 when threads exceed the cores)
};

// Runs fn over [0, n) on `pool` if it is non-null, else inline.
inline void ParallelFor(ThreadPool* pool, int64_t n, int64_t grain,
                        const std::function<void(int64_t, int64_t)>& fn) {
  if (pool) {
    pool->ParallelFor(n, grain, fn);
  } else if (n > 0) {
    fn(0, n);
  }
}

}  // namespace ampc::cpu
