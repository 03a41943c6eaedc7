#include <anyturn/common/keyed_hash.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <set>

namespace anyturn::common {
namespace {

// The reference key of the SipHash paper: bytes 00 01 .. 0f.
constexpr hash_key reference_key{0x0706050403020100ULL, 0x0F0E0D0C0B0A0908ULL};

std::array<unsigned char, 64> counting_bytes() {
  std::array<unsigned char, 64> m{};
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = static_cast<unsigned char>(i);
  return m;
}

// SipHash-2-4 vectors from Aumasson and Bernstein's paper (appendix A: the
// 15-byte message) and its reference implementation (the empty message):
// the same code with c=1, d=3 is what the tables use.
TEST(keyed_hash, siphash24_matches_the_reference_vectors) {
  const auto m = counting_bytes();
  EXPECT_EQ(siphash24(reference_key).add_bytes(m.data(), 15).finish(),
            0xA129CA6149BE45E5ULL);
  EXPECT_EQ(siphash24(reference_key).finish(), 0x726FDB47DD0E0E31ULL);
}

TEST(keyed_hash, feeding_in_pieces_or_as_words_gives_the_same_hash) {
  const auto m = counting_bytes();
  for (std::size_t n = 0; n <= m.size(); ++n) {
    const std::uint64_t whole = keyed_hasher(reference_key).add_bytes(m.data(), n).finish();
    for (std::size_t cut = 0; cut <= n; ++cut) {
      keyed_hasher h(reference_key);
      h.add_bytes(m.data(), cut).add_bytes(m.data() + cut, n - cut);
      EXPECT_EQ(h.finish(), whole) << "n=" << n << " cut=" << cut;
    }
  }
  // A word is its 8 little-endian bytes, also after an odd prefix.
  const std::uint64_t word = 0x0F0E0D0C0B0A0908ULL;
  EXPECT_EQ(keyed_hasher(reference_key).add_bytes(m.data(), 8).add(word).finish(),
            keyed_hasher(reference_key).add_bytes(m.data(), 16).finish());
  EXPECT_EQ(keyed_hasher(reference_key).add_bytes(m.data(), 3).add(0x0A09080706050403ULL).finish(),
            keyed_hasher(reference_key).add_bytes(m.data(), 11).finish());
}

TEST(keyed_hash, the_length_is_part_of_the_input) {
  const unsigned char zeros[2] = {0, 0};
  EXPECT_NE(keyed_hash(zeros, 1), keyed_hash(zeros, 2));
  EXPECT_NE(keyed_hash("ab"), keyed_hash(std::string_view("ab\0", 3)));
}

TEST(keyed_hash, the_process_key_is_random_and_stable) {
  const hash_key& k = process_hash_key();
  EXPECT_EQ(&k, &process_hash_key());
  EXPECT_FALSE(k.k0 == 0 && k.k1 == 0);
  // The process key, not the reference key, is the default.
  EXPECT_NE(keyed_hash("anyturn"), keyed_hasher(reference_key).add_bytes("anyturn").finish());
  EXPECT_EQ(keyed_hash("anyturn"), keyed_hash("anyturn"));
}

TEST(keyed_hash, sequential_keys_spread_over_buckets) {
  // 4096 sequential 32-bit keys into 4096 buckets: a uniform hash leaves
  // about 1/e of them empty; a weak one clusters.
  std::set<std::uint64_t> used;
  for (std::uint32_t i = 0; i < 4096; ++i) used.insert(keyed_hasher().add(i).finish() % 4096);
  EXPECT_GT(used.size(), 2400u);
  EXPECT_LT(used.size(), 2800u);
}

}  // namespace
}  // namespace anyturn::common
