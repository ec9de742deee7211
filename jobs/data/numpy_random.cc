#include "jobs/data/numpy_random.h"

#include <numeric>

namespace tallrec {
namespace {

// numpy/random/bit_generator.pyx (SeedSequence) constants.
constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;
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

constexpr unsigned __int128 kPcgMultiplier =
    (static_cast<unsigned __int128>(0x2360ED051FC65DA4ULL) << 64) | 0x4385DF649FCCF645ULL;

}  // namespace

std::vector<uint32_t> seed_sequence_state(uint64_t seed, size_t n_words) {
  // The integer entropy as little-endian 32-bit words (0 -> one zero word).
  std::vector<uint32_t> entropy;
  do {
    entropy.push_back(uint32_t(seed));
    seed >>= 32;
  } while (seed != 0);

  uint32_t pool[kPoolSize];
  uint32_t hash_const = kInitA;
  for (size_t i = 0; i < kPoolSize; ++i) {
    pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0, hash_const);
  }
  for (size_t src = 0; src < kPoolSize; ++src)
    for (size_t dst = 0; dst < kPoolSize; ++dst)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], hash_const));
  for (size_t src = kPoolSize; src < entropy.size(); ++src)
    for (size_t dst = 0; dst < kPoolSize; ++dst)
      pool[dst] = mix(pool[dst], hashmix(entropy[src], hash_const));

  std::vector<uint32_t> state(n_words);
  uint32_t hash_b = kInitB;
  for (size_t i = 0; i < n_words; ++i) {
    uint32_t v = pool[i % kPoolSize];
    v ^= hash_b;
    hash_b *= kMultB;
    v *= hash_b;
    v ^= v >> kXShift;
    state[i] = v;
  }
  return state;
}

NumpyPcg64::NumpyPcg64(uint64_t seed) {
  // PCG64 takes generate_state(4, uint64): words 0..1 are the state seed, 2..3 the stream,
  // each 128-bit value formed as (high = word[0], low = word[1]).
  auto words = seed_sequence_state(seed, 8);
  auto u64 = [&](size_t k) { return uint64_t(words[2 * k]) | (uint64_t(words[2 * k + 1]) << 32); };
  unsigned __int128 init_state = (static_cast<unsigned __int128>(u64(0)) << 64) | u64(1);
  unsigned __int128 init_seq = (static_cast<unsigned __int128>(u64(2)) << 64) | u64(3);
  // pcg_setseq_128_srandom_r
  state_ = 0;
  increment_ = (init_seq << 1) | 1;
  state_ = state_ * kPcgMultiplier + increment_;
  state_ += init_state;
  state_ = state_ * kPcgMultiplier + increment_;
}

uint64_t NumpyPcg64::next_uint64() {
  state_ = state_ * kPcgMultiplier + increment_;
  uint64_t high = uint64_t(state_ >> 64), low = uint64_t(state_);
  unsigned rot = unsigned(state_ >> 122);
  uint64_t x = high ^ low;
  return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t NumpyPcg64::next_uint32() {
  if (has_uint32_) {
    has_uint32_ = false;
    return buffered_uint32_;
  }
  uint64_t next = next_uint64();
  has_uint32_ = true;
  buffered_uint32_ = uint32_t(next >> 32);
  return uint32_t(next & 0xffffffffULL);
}

uint64_t NumpyPcg64::random_interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t value;
  if (max <= 0xffffffffULL) {
    while ((value = (next_uint32() & mask)) > max) {
    }
  } else {
    while ((value = (next_uint64() & mask)) > max) {
    }
  }
  return value;
}

std::vector<uint64_t> numpy_permutation(uint64_t n, uint64_t seed) {
  std::vector<uint64_t> values(n);
  std::iota(values.begin(), values.end(), 0);
  NumpyPcg64 rng(seed);
  for (uint64_t i = n; i-- > 1;) std::swap(values[i], values[rng.random_interval(i)]);
  return values;
}

}  // namespace tallrec
