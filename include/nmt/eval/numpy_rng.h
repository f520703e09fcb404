#pragma once
/// @file numpy_rng.h
/// A bit-exact re-implementation of the random numbers sacreBLEU's resampling draws:
/// `numpy.random.default_rng(seed)` (SeedSequence → PCG64) and its `integers(0, n)`, which
/// numpy computes with Lemire's bounded method on buffered 32-bit draws. With it `nmt eval`
/// resamples exactly the sentences sacreBLEU resamples for the same seed.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nmt::eval {

/// numpy.random.SeedSequence(entropy).generate_state(n_words) with 32-bit words, for a
/// non-negative integer entropy (pool size 4, no spawn key).
std::vector<uint32_t> seed_sequence_state(uint64_t entropy, size_t n_words);

/// numpy.random.PCG64 seeded through SeedSequence, together with the Generator methods nmt needs.
class NumpyPcg64 {
 public:
  /// Same stream as numpy.random.default_rng(seed).
  explicit NumpyPcg64(uint64_t seed);

  /// PCG64.random_raw(): one 64-bit XSL-RR output.
  uint64_t next_uint64();
  /// numpy's next_uint32: the low then the high half of one 64-bit output.
  uint32_t next_uint32();
  /// Generator.random(): a double in [0, 1) from the top 53 bits.
  double next_double();
  /// Generator.integers(0, high) for 1 <= high <= 2^32 (throws std::invalid_argument otherwise).
  uint32_t integers(uint64_t high);

 private:
  unsigned __int128 state_ = 0;
  unsigned __int128 inc_ = 0;
  bool has_uint32_ = false;
  uint32_t uinteger_ = 0;
};

}  // namespace nmt::eval
