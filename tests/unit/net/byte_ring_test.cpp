#include <anyturn/net/byte_ring.hpp>

#include <gtest/gtest.h>

#include <array>
#include <numeric>
#include <random>
#include <vector>

namespace anyturn::net {
namespace {

std::vector<std::byte> bytes_of(std::size_t n, std::uint8_t first) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<std::uint8_t>(first + i));
  return v;
}

std::vector<std::byte> drain(byte_ring& r, std::size_t n) {
  std::vector<std::byte> out;
  const auto segs = r.readable();
  out.insert(out.end(), segs.first.begin(), segs.first.end());
  out.insert(out.end(), segs.second.begin(), segs.second.end());
  out.resize(std::min(n, out.size()));
  r.consume(out.size());
  return out;
}

TEST(byte_ring, appends_fragments_in_order_and_reads_them_back) {
  byte_ring r(1024, 64);
  std::unique_ptr<std::byte[]> retired;
  const auto a = bytes_of(3, 1);
  const auto b = bytes_of(5, 10);
  const std::array<stun::bytes_view, 2> parts{stun::bytes_view(a), stun::bytes_view(b)};
  ASSERT_TRUE(r.append(parts, retired));
  EXPECT_EQ(r.size(), 8u);
  EXPECT_FALSE(retired) << "the first allocation retires nothing";
  auto out = drain(r, 8);
  std::vector<std::byte> expected = a;
  expected.insert(expected.end(), b.begin(), b.end());
  EXPECT_EQ(out, expected);
  EXPECT_TRUE(r.empty());
}

TEST(byte_ring, refuses_whole_messages_past_the_limit) {
  byte_ring r(100, 100);
  std::unique_ptr<std::byte[]> retired;
  const auto m = bytes_of(40, 0);
  const std::array<stun::bytes_view, 1> one{stun::bytes_view(m)};
  EXPECT_TRUE(r.append(one, retired));
  EXPECT_TRUE(r.append(one, retired));
  EXPECT_FALSE(r.append(one, retired)) << "80 + 40 > 100";
  EXPECT_EQ(r.size(), 80u) << "nothing of the refused message was queued";
  r.consume(40);
  EXPECT_TRUE(r.append(one, retired));
}

TEST(byte_ring, wraps_around_in_two_segments) {
  byte_ring r(16, 16);
  std::unique_ptr<std::byte[]> retired;
  const auto a = bytes_of(12, 0);
  ASSERT_TRUE(r.append(std::array{stun::bytes_view(a)}, retired));
  r.consume(10);
  const auto b = bytes_of(10, 100);
  ASSERT_TRUE(r.append(std::array{stun::bytes_view(b)}, retired));
  const auto segs = r.readable();
  EXPECT_EQ(segs.first.size(), 6u);   // offsets 10..15
  EXPECT_EQ(segs.second.size(), 6u);  // offsets 0..5
  auto out = drain(r, 12);
  std::vector<std::byte> expected{a.begin() + 10, a.end()};
  expected.insert(expected.end(), b.begin(), b.end());
  EXPECT_EQ(out, expected);
}

TEST(byte_ring, grows_up_to_the_limit_and_retires_the_old_block) {
  byte_ring r(1000, 64);
  std::unique_ptr<std::byte[]> retired;
  const auto a = bytes_of(60, 0);
  ASSERT_TRUE(r.append(std::array{stun::bytes_view(a)}, retired));
  EXPECT_EQ(r.capacity(), 64u);
  const std::byte* old_block = r.readable().first.data();
  const auto b = bytes_of(100, 60);
  ASSERT_TRUE(r.append(std::array{stun::bytes_view(b)}, retired));
  EXPECT_EQ(r.capacity(), 256u);
  ASSERT_TRUE(retired);
  EXPECT_EQ(retired.get(), old_block) << "an unfinished write may still point into it";
  // A second growth while the first block is still retired frees the
  // middle one at once and keeps the retired one.
  const auto c = bytes_of(500, 0);
  ASSERT_TRUE(r.append(std::array{stun::bytes_view(c)}, retired));
  EXPECT_EQ(r.capacity(), 1000u) << "capped at the limit";
  EXPECT_EQ(retired.get(), old_block);
  auto out = drain(r, 660);
  std::vector<std::byte> expected = a;
  expected.insert(expected.end(), b.begin(), b.end());
  expected.insert(expected.end(), c.begin(), c.end());
  EXPECT_EQ(out, expected);
}

TEST(byte_ring, steady_state_never_reallocates) {
  byte_ring r(4096, 4096);
  std::unique_ptr<std::byte[]> retired;
  std::mt19937 rng(7);
  std::vector<std::byte> model;  // what the ring should hold
  for (int i = 0; i < 10000; ++i) {
    const auto m = bytes_of(1 + rng() % 300, static_cast<std::uint8_t>(i));
    if (r.append(std::array{stun::bytes_view(m)}, retired)) model.insert(model.end(), m.begin(), m.end());
    const std::size_t take = rng() % 400;
    auto out = drain(r, take);
    ASSERT_TRUE(std::equal(out.begin(), out.end(), model.begin()));
    model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(out.size()));
    ASSERT_EQ(r.size(), model.size());
  }
  EXPECT_EQ(r.capacity(), 4096u) << "allocated once, at its limit";
  EXPECT_FALSE(retired) << "never grown, so never reallocated";
}

// A stream's ring is small until its client authenticates, then its limit
// is raised; capacity_after() predicts each allocation before append makes it.
TEST(byte_ring, a_raised_limit_lets_it_grow_and_capacity_after_predicts_growth) {
  byte_ring r(4096, 16 * 1024);  // the initial size is clamped to the limit
  std::unique_ptr<std::byte[]> retired;
  EXPECT_EQ(r.capacity_after(100), 4096u);
  const auto chunk = bytes_of(1000, 3);
  const std::array<stun::bytes_view, 1> one{stun::bytes_view(chunk)};
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(r.append(one, retired));
  EXPECT_EQ(r.capacity(), 4096u);
  EXPECT_EQ(r.capacity_after(96), 4096u) << "fits: no growth";
  EXPECT_FALSE(r.append(one, retired)) << "past the small limit";
  r.set_limit(64 * 1024);
  EXPECT_EQ(r.limit(), 64u * 1024);
  EXPECT_EQ(r.capacity_after(1000), 8192u);
  ASSERT_TRUE(r.append(one, retired));
  EXPECT_EQ(r.capacity(), 8192u);
  EXPECT_EQ(r.capacity_after(40000), 65536u);
  EXPECT_EQ(r.capacity_after(100000), 65536u) << "never past the limit";
  // Never below what is queued.
  r.set_limit(10);
  EXPECT_EQ(r.limit(), 5000u);
  EXPECT_EQ(drain(r, 5000).size(), 5000u);
}

}  // namespace
}  // namespace anyturn::net
