// OpenMP's thread count is a per-thread setting (the nthreads ICV): a library call that wants its own count
// sets it on the calling thread for the call's duration and gives the caller's setting back afterwards.
#pragma once
#include <omp.h>

namespace pg {

class ScopedThreadCount {
 public:
  // threads < 1: keep the caller's setting.
  explicit ScopedThreadCount(int threads) : previous_(omp_get_max_threads()) {
    if (threads > 0) omp_set_num_threads(threads);
  }
  ~ScopedThreadCount() { omp_set_num_threads(previous_); }
  ScopedThreadCount(const ScopedThreadCount&) = delete;
  ScopedThreadCount& operator=(const ScopedThreadCount&) = delete;

 private:
  int previous_;
};

}  // namespace pg
