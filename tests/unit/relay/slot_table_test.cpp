#include <anyturn/relay/slot_table.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace anyturn::relay {
namespace {

// The slot store: keys[slot] is the 5-tuple of slot `slot`, as
// slots[slot]->client is in the core.
struct store {
  std::vector<client_ref> keys;
  auto key_of() const {
    return [this](std::uint32_t s) -> const client_ref& { return keys.at(s); };
  }
};

client_ref udp_client(std::uint32_t ip, std::uint16_t port, std::uint32_t listener = 0) {
  client_ref c;
  c.proto = transport::udp;
  c.listener = listener;
  c.remote = stun::endpoint::v4(ip, port);
  c.local = stun::endpoint::v4(0x0A000001u, 3478);
  return c;
}

// The collision-heavy pattern of a load test: one address, sequential ports,
// then the next address.
client_ref sequential(std::size_t k) {
  return udp_client(0xC0A80000u + static_cast<std::uint32_t>(k / 50000),
                    static_cast<std::uint16_t>(1024 + k % 50000));
}

TEST(client_table, insert_find_erase) {
  client_table t;
  store s;
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.capacity(), 0u);
  EXPECT_FALSE(t.find(udp_client(1, 1), s.key_of()));
  EXPECT_FALSE(t.erase(udp_client(1, 1), s.key_of()));

  for (std::uint32_t i = 0; i < 3; ++i) s.keys.push_back(udp_client(0x01020304u, 5000 + i));
  for (std::uint32_t i = 0; i < 3; ++i) EXPECT_TRUE(t.insert(s.keys[i], i, s.key_of()));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.capacity(), client_table::min_capacity);
  for (std::uint32_t i = 0; i < 3; ++i) {
    const auto found = t.find(s.keys[i], s.key_of());
    ASSERT_TRUE(found);
    EXPECT_EQ(*found, i);
  }
  // A duplicate key is refused and changes nothing.
  EXPECT_FALSE(t.insert(s.keys[1], 7, s.key_of()));
  EXPECT_EQ(*t.find(s.keys[1], s.key_of()), 1u);
  EXPECT_EQ(t.size(), 3u);

  // Missing keys: other port, other transport, other listener, other local.
  EXPECT_FALSE(t.find(udp_client(0x01020304u, 4999), s.key_of()));
  client_ref tcp = s.keys[0];
  tcp.proto = transport::tcp;
  EXPECT_FALSE(t.find(tcp, s.key_of()));
  EXPECT_FALSE(t.find(udp_client(0x01020304u, 5000, 1), s.key_of()));
  client_ref other_local = s.keys[0];
  other_local.local.port = 3479;
  EXPECT_FALSE(t.contains(other_local, s.key_of()));

  const auto erased = t.erase(s.keys[1], s.key_of());
  ASSERT_TRUE(erased);
  EXPECT_EQ(*erased, 1u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_FALSE(t.find(s.keys[1], s.key_of()));
  EXPECT_FALSE(t.erase(s.keys[1], s.key_of()));
  EXPECT_EQ(*t.find(s.keys[0], s.key_of()), 0u);
  EXPECT_EQ(*t.find(s.keys[2], s.key_of()), 2u);
}

TEST(client_table, empty_slot_value_is_refused) {
  client_table t;
  store s;
  s.keys.push_back(udp_client(1, 1));
  EXPECT_FALSE(t.insert(s.keys[0], client_table::empty_slot, s.key_of()));
  EXPECT_EQ(t.size(), 0u);
}

TEST(client_table, hundred_thousand_sequential_keys_erase_half_shrink) {
  constexpr std::size_t n = 100'000;
  client_table t;
  store s;
  s.keys.reserve(n);
  for (std::size_t k = 0; k < n; ++k) s.keys.push_back(sequential(k));
  for (std::uint32_t k = 0; k < n; ++k) ASSERT_TRUE(t.insert(s.keys[k], k, s.key_of())) << k;
  EXPECT_EQ(t.size(), n);
  // Power of two, load at most 0.7.
  EXPECT_EQ(t.capacity() & (t.capacity() - 1), 0u);
  EXPECT_LE(t.size() * 10, t.capacity() * 7);
  EXPECT_EQ(t.capacity(), std::size_t{1} << 18);  // smallest power of two >= 100000 / 0.7
  EXPECT_EQ(t.memory_bytes(), t.capacity() * 8);
  // The mixed hash spreads sequential ports: no long runs.
  EXPECT_LT(t.max_displacement(), 64u);
  for (std::uint32_t k = 0; k < n; ++k) {
    const auto found = t.find(s.keys[k], s.key_of());
    ASSERT_TRUE(found) << k;
    ASSERT_EQ(*found, k);
  }
  // Keys never inserted (next ports, next address) are not found.
  for (std::size_t k = n; k < n + 1000; ++k) EXPECT_FALSE(t.find(sequential(k), s.key_of())) << k;

  // Erase every other key: lookups of the rest must cross the holes.
  for (std::uint32_t k = 0; k < n; k += 2) ASSERT_EQ(t.erase(s.keys[k], s.key_of()), k);
  EXPECT_EQ(t.size(), n / 2);
  for (std::uint32_t k = 0; k < n; ++k) {
    const auto found = t.find(s.keys[k], s.key_of());
    if (k % 2 == 0) {
      ASSERT_FALSE(found) << k;
    } else {
      ASSERT_TRUE(found) << k;
      ASSERT_EQ(*found, k);
    }
  }
  // Not sparse yet (50,000 of 262,144 cells is above 1/8).
  EXPECT_FALSE(t.shrink_if_sparse());

  // Keep 1 in 20: sparse now, shrinks, all still there.
  for (std::uint32_t k = 1; k < n; k += 2) {
    if (k % 20 == 1) continue;
    ASSERT_EQ(t.erase(s.keys[k], s.key_of()), k);
  }
  EXPECT_EQ(t.size(), n / 20);
  const std::size_t before = t.capacity();
  EXPECT_TRUE(t.shrink_if_sparse());
  EXPECT_LT(t.capacity(), before);
  EXPECT_EQ(t.capacity(), std::size_t{1} << 15);  // bit_ceil(5000 * 4)
  EXPECT_FALSE(t.shrink_if_sparse());              // hysteresis: load 5000/32768 > 1/8
  for (std::uint32_t k = 0; k < n; ++k) {
    const auto found = t.find(s.keys[k], s.key_of());
    if (k % 20 == 1) {
      ASSERT_TRUE(found) << k;
      ASSERT_EQ(*found, k);
    } else {
      ASSERT_FALSE(found) << k;
    }
  }

  // Free everything: the table returns to its minimum.
  for (std::uint32_t k = 1; k < n; k += 20) ASSERT_EQ(t.erase(s.keys[k], s.key_of()), k);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.shrink_if_sparse());
  EXPECT_EQ(t.capacity(), client_table::min_capacity);
  EXPECT_FALSE(t.shrink_if_sparse());

  // And refills (growth from the minimum) with every key findable.
  for (std::uint32_t k = 0; k < n; ++k) ASSERT_TRUE(t.insert(s.keys[k], k, s.key_of()));
  for (std::uint32_t k = 0; k < n; ++k) ASSERT_EQ(t.find(s.keys[k], s.key_of()), k);
}

TEST(client_table, reserve_avoids_growth) {
  client_table t;
  store s;
  t.reserve(1000);
  const std::size_t cap = t.capacity();
  EXPECT_GE(cap * 7, 1000u * 10);
  for (std::uint32_t k = 0; k < 1000; ++k) {
    s.keys.push_back(sequential(k));
    ASSERT_TRUE(t.insert(s.keys[k], k, s.key_of()));
  }
  EXPECT_EQ(t.capacity(), cap);
  t.reserve(10);  // never shrinks
  EXPECT_EQ(t.capacity(), cap);
}

// Churn: interleaved inserts and erases keep the table consistent with a
// reference (backward-shift deletion across wrapped runs).
TEST(client_table, churn_matches_reference) {
  client_table t;
  store s;
  constexpr std::size_t universe = 4000;
  for (std::size_t k = 0; k < universe; ++k) s.keys.push_back(sequential(k * 7));
  std::vector<bool> in(universe, false);
  std::uint64_t x = 0x243F6A8885A308D3ULL;
  std::size_t live = 0;
  for (int step = 0; step < 200'000; ++step) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const auto k = static_cast<std::uint32_t>(x % universe);
    if (in[k]) {
      ASSERT_EQ(t.erase(s.keys[k], s.key_of()), k);
      --live;
    } else {
      ASSERT_TRUE(t.insert(s.keys[k], k, s.key_of()));
      ++live;
    }
    in[k] = !in[k];
    if (step % 997 == 0) t.shrink_if_sparse();
  }
  EXPECT_EQ(t.size(), live);
  for (std::uint32_t k = 0; k < universe; ++k) EXPECT_EQ(t.find(s.keys[k], s.key_of()).has_value(), in[k]);
}

// Every key hashes the same: each fingerprint matches, so only the key
// accessor tells entries apart, and all share one probe run.
struct constant_hash {
  std::size_t operator()(const client_ref&) const noexcept { return 42; }
};

// Two keys per hash value: pairs of keys collide fully.
struct pair_hash {
  std::size_t operator()(const client_ref& c) const noexcept { return c.remote.port / 2; }
};

TEST(client_table, fingerprint_collisions_resolved_by_key) {
  basic_slot_table<client_ref, constant_hash> t;
  store s;
  for (std::uint32_t k = 0; k < 40; ++k) {
    s.keys.push_back(udp_client(0x7F000001u, static_cast<std::uint16_t>(1000 + k)));
    ASSERT_TRUE(t.insert(s.keys[k], k, s.key_of()));
  }
  EXPECT_FALSE(t.insert(s.keys[5], 99, s.key_of()));
  for (std::uint32_t k = 0; k < 40; ++k) ASSERT_EQ(t.find(s.keys[k], s.key_of()), k);
  EXPECT_FALSE(t.find(udp_client(0x7F000001u, 999), s.key_of()));
  // Erase from the front, middle and end of the single run.
  for (std::uint32_t k : {0u, 20u, 39u}) ASSERT_EQ(t.erase(s.keys[k], s.key_of()), k);
  for (std::uint32_t k = 0; k < 40; ++k) {
    if (k == 0 || k == 20 || k == 39) {
      EXPECT_FALSE(t.find(s.keys[k], s.key_of())) << k;
    } else {
      EXPECT_EQ(t.find(s.keys[k], s.key_of()), k) << k;
    }
  }
}

TEST(client_table, colliding_pairs_survive_growth_and_shrink) {
  basic_slot_table<client_ref, pair_hash> t;
  store s;
  constexpr std::uint32_t n = 20'000;
  for (std::uint32_t k = 0; k < n; ++k) {
    s.keys.push_back(udp_client(0x0A0A0A0Au, static_cast<std::uint16_t>(k)));
    ASSERT_TRUE(t.insert(s.keys[k], k, s.key_of()));
  }
  // Erase the even member of each colliding pair; the odd one stays.
  for (std::uint32_t k = 0; k < n; k += 2) ASSERT_EQ(t.erase(s.keys[k], s.key_of()), k);
  for (std::uint32_t k = 0; k < n; ++k) {
    if (k % 2 == 0) {
      ASSERT_FALSE(t.find(s.keys[k], s.key_of())) << k;
    } else {
      ASSERT_EQ(t.find(s.keys[k], s.key_of()), k) << k;
    }
  }
  for (std::uint32_t k = 201; k < n; k += 2) ASSERT_EQ(t.erase(s.keys[k], s.key_of()), k);
  const std::size_t before = t.capacity();
  EXPECT_TRUE(t.shrink_if_sparse());
  EXPECT_LT(t.capacity(), before);
  for (std::uint32_t k = 1; k < 200; k += 2) ASSERT_EQ(t.find(s.keys[k], s.key_of()), k);
  for (std::uint32_t k = 0; k < 200; k += 2) ASSERT_FALSE(t.find(s.keys[k], s.key_of()));
}

TEST(client_table, clear_releases_cells) {
  client_table t;
  store s;
  s.keys.push_back(udp_client(1, 2));
  ASSERT_TRUE(t.insert(s.keys[0], 0, s.key_of()));
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.capacity(), 0u);
  EXPECT_FALSE(t.find(s.keys[0], s.key_of()));
  ASSERT_TRUE(t.insert(s.keys[0], 0, s.key_of()));
  EXPECT_EQ(t.find(s.keys[0], s.key_of()), 0u);
}

}  // namespace
}  // namespace anyturn::relay
