// The numpy-compatible generator against values printed in numpy's documentation
// (numpy.random.default_rng docstring / "Random Generator" quick start).
#include <gtest/gtest.h>

#include "nmt/eval/numpy_rng.h"

using namespace nmt::eval;

TEST(EvalNumpyRng, DefaultRngRandomMatchesNumpyDocs) {
  NumpyPcg64 rng(12345);  // rng = np.random.default_rng(12345); rng.random()
  EXPECT_EQ(rng.next_double(), 0.22733602246716966);
}

TEST(EvalNumpyRng, DefaultRngIntegersMatchesNumpyDocs) {
  NumpyPcg64 rng(12345);  // rng.integers(low=0, high=10, size=3) -> array([6, 2, 7])
  EXPECT_EQ(rng.integers(10), 6u);
  EXPECT_EQ(rng.integers(10), 2u);
  EXPECT_EQ(rng.integers(10), 7u);
}

TEST(EvalNumpyRng, Uint32DrawsUseBothHalvesOfA64BitOutput) {
  NumpyPcg64 a(42), b(42);
  const uint64_t raw = a.next_uint64();
  EXPECT_EQ(b.next_uint32(), static_cast<uint32_t>(raw));
  EXPECT_EQ(b.next_uint32(), static_cast<uint32_t>(raw >> 32));
  EXPECT_EQ(b.next_uint64(), a.next_uint64());
}

TEST(EvalNumpyRng, IntegersStayInRange) {
  NumpyPcg64 rng(7);
  for (int i = 0; i < 10000; ++i) EXPECT_LT(rng.integers(3000), 3000u);
  EXPECT_EQ(rng.integers(1), 0u);
  EXPECT_THROW(rng.integers(0), std::invalid_argument);
}

TEST(EvalNumpyRng, SeedSequenceIsDeterministicAndSeedDependent) {
  EXPECT_EQ(seed_sequence_state(12345, 8), seed_sequence_state(12345, 8));
  EXPECT_NE(seed_sequence_state(12345, 8), seed_sequence_state(12346, 8));
  EXPECT_NE(NumpyPcg64(1).next_uint64(), NumpyPcg64(2).next_uint64());
}
