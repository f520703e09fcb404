/// @file numpy_rng.cpp
/// Constants and algorithms follow numpy/random/bit_generator.pyx (SeedSequence),
/// numpy/random/src/pcg64 (PCG64 XSL-RR 128/64) and numpy/random/src/distributions
/// (buffered_bounded_lemire_uint32).
#include "nmt/eval/numpy_rng.h"

#include <stdexcept>

namespace nmt::eval {
namespace {

constexpr uint32_t kInitA = 0x43b0d7e5;
constexpr uint32_t kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd;
constexpr uint32_t kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd;
constexpr uint32_t kMixMultR = 0x4973f715;
constexpr int kXShift = 16;
constexpr size_t kPoolSize = 4;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

/// SeedSequence's entropy pool after mix_entropy().
std::vector<uint32_t> entropy_pool(uint64_t entropy) {
  std::vector<uint32_t> words{static_cast<uint32_t>(entropy)};  // little-endian 32-bit words
  if (entropy >> 32) words.push_back(static_cast<uint32_t>(entropy >> 32));
  std::vector<uint32_t> pool(kPoolSize, 0);
  uint32_t hash_const = kInitA;
  for (size_t i = 0; i < kPoolSize; ++i) pool[i] = hashmix(i < words.size() ? words[i] : 0, hash_const);
  for (size_t src = 0; src < kPoolSize; ++src) {
    for (size_t dst = 0; dst < kPoolSize; ++dst) {
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], hash_const));
    }
  }
  for (size_t src = kPoolSize; src < words.size(); ++src) {
    for (size_t dst = 0; dst < kPoolSize; ++dst) pool[dst] = mix(pool[dst], hashmix(words[src], hash_const));
  }
  return pool;
}

constexpr unsigned __int128 kPcgMultiplier =
    (static_cast<unsigned __int128>(2549297995355413924ULL) << 64) + 4865540595714422341ULL;

}  // namespace

std::vector<uint32_t> seed_sequence_state(uint64_t entropy, size_t n_words) {
  const std::vector<uint32_t> pool = entropy_pool(entropy);
  std::vector<uint32_t> state(n_words);
  uint32_t hash_const = kInitB;
  for (size_t i = 0; i < n_words; ++i) {
    uint32_t value = pool[i % kPoolSize];
    value ^= hash_const;
    hash_const *= kMultB;
    value *= hash_const;
    value ^= value >> kXShift;
    state[i] = value;
  }
  return state;
}

NumpyPcg64::NumpyPcg64(uint64_t seed) {
  const std::vector<uint32_t> w = seed_sequence_state(seed, 8);
  const auto word64 = [&](size_t k) { return static_cast<uint64_t>(w[2 * k]) | (static_cast<uint64_t>(w[2 * k + 1]) << 32); };
  const unsigned __int128 init_state = (static_cast<unsigned __int128>(word64(0)) << 64) | word64(1);
  const unsigned __int128 init_seq = (static_cast<unsigned __int128>(word64(2)) << 64) | word64(3);
  // pcg_setseq_128_srandom_r
  state_ = 0;
  inc_ = (init_seq << 1) | 1;
  state_ = state_ * kPcgMultiplier + inc_;
  state_ += init_state;
  state_ = state_ * kPcgMultiplier + inc_;
}

uint64_t NumpyPcg64::next_uint64() {
  state_ = state_ * kPcgMultiplier + inc_;
  const uint64_t value = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
  const unsigned rot = static_cast<unsigned>(state_ >> 122);
  return (value >> rot) | (value << ((64 - rot) & 63));
}

uint32_t NumpyPcg64::next_uint32() {
  if (has_uint32_) {
    has_uint32_ = false;
    return uinteger_;
  }
  const uint64_t next = next_uint64();
  has_uint32_ = true;
  uinteger_ = static_cast<uint32_t>(next >> 32);
  return static_cast<uint32_t>(next & 0xffffffffULL);
}

double NumpyPcg64::next_double() {
  return static_cast<double>(next_uint64() >> 11) * (1.0 / 9007199254740992.0);
}

uint32_t NumpyPcg64::integers(uint64_t high) {
  if (high == 0 || high > (1ULL << 32)) {
    throw std::invalid_argument("NumpyPcg64::integers: high must be in [1, 2^32]");
  }
  const uint64_t rng = high - 1;  // numpy's inclusive range
  if (rng == 0) return 0;
  if (rng == 0xffffffffULL) return next_uint32();
  const uint32_t rng_excl = static_cast<uint32_t>(rng) + 1;
  uint64_t m = static_cast<uint64_t>(next_uint32()) * rng_excl;
  uint32_t leftover = static_cast<uint32_t>(m);
  if (leftover < rng_excl) {
    const uint32_t threshold = static_cast<uint32_t>((0xffffffffULL - rng) % rng_excl);
    while (leftover < threshold) {
      m = static_cast<uint64_t>(next_uint32()) * rng_excl;
      leftover = static_cast<uint32_t>(m);
    }
  }
  return static_cast<uint32_t>(m >> 32);
}

}  // namespace nmt::eval
