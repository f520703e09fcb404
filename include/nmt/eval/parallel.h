#pragma once
/// @file parallel.h
/// Splitting the segments of a corpus across threads for scoring (`nmt eval` runs in the front
/// end, without LibTorch's thread pool): plain std::threads, contiguous chunks, results that do
/// not depend on the number of threads.
#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace nmt::eval {

/// Calls body(begin, end) on contiguous chunks that cover [0, n), one chunk per thread, on
/// min(hardware threads, n / min_chunk) threads (the calling thread runs the first chunk; a
/// single chunk runs on the caller alone). `body` must be safe to run concurrently on disjoint
/// ranges. If chunks throw, the exception of the earliest chunk is rethrown on the caller after
/// all have finished, so the error names the same segment as a sequential run would.
template <typename Body>
void parallel_chunks(size_t n, Body body, size_t min_chunk = 512) {
  const size_t hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::max<size_t>(1, std::min(hardware, n / std::max<size_t>(min_chunk, 1)));
  if (threads == 1) {
    body(size_t{0}, n);
    return;
  }
  std::vector<std::exception_ptr> errors(threads);
  const auto run = [&](size_t t) {
    try {
      body(n * t / threads, n * (t + 1) / threads);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (size_t t = 1; t < threads; ++t) workers.emplace_back(run, t);
  run(0);
  for (auto& worker : workers) worker.join();
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace nmt::eval
