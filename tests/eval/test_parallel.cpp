// parallel_chunks: the chunks cover the range once, and errors come back as a sequential loop
// would raise them.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "nmt/eval/parallel.h"

using nmt::eval::parallel_chunks;

TEST(EvalParallel, ChunksCoverTheRangeOnce) {
  for (const size_t n : {0, 1, 7, 1000, 4097}) {
    std::vector<std::atomic<int>> seen(n);
    parallel_chunks(n, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) ++seen[i];
    }, /*min_chunk=*/1);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i].load(), 1) << "n " << n << ", i " << i;
  }
}

TEST(EvalParallel, TheEarliestFailingItemsErrorIsRethrown) {
  // Items 10 and 900 fail; whichever thread gets there first, the error of item 10 comes back.
  for (int repeat = 0; repeat < 20; ++repeat) {
    try {
      parallel_chunks(1000, [](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
          if (i == 10 || i == 900) throw std::invalid_argument("item " + std::to_string(i));
        }
      }, /*min_chunk=*/1);
      FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_STREQ(e.what(), "item 10");
    }
  }
}
