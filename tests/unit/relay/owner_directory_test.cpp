#include <anyturn/relay/owner_directory.hpp>

#include <anyturn/common/keyed_hash.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdint>
#include <thread>
#include <vector>

namespace anyturn::relay {
namespace {

// Keys are keyed hashes of 5-tuples in the server (handoff_group::key_of).
std::uint64_t key(std::uint64_t n) { return common::keyed_hasher().add(n).finish(); }

TEST(owner_directory, capacity_is_a_power_of_two) {
  EXPECT_EQ(owner_directory(1000).capacity(), 1024u);
  EXPECT_EQ(owner_directory(1).capacity(), owner_directory::max_probe);
  EXPECT_EQ(owner_directory::capacity_for(1000), 2048u);
  EXPECT_EQ(owner_directory::capacity_for(1024), 2048u);
}

TEST(owner_directory, insert_lookup_erase) {
  owner_directory d(1024);
  EXPECT_FALSE(d.lookup(42).has_value());
  EXPECT_TRUE(d.insert(42, 3));
  EXPECT_TRUE(d.insert(43, 0));
  EXPECT_EQ(d.lookup(42), 3u);
  EXPECT_EQ(d.lookup(43), 0u);
  // A stale erase by another worker leaves the entry alone.
  EXPECT_FALSE(d.erase(42, 1));
  EXPECT_EQ(d.lookup(42), 3u);
  EXPECT_TRUE(d.erase(42, 3));
  EXPECT_FALSE(d.lookup(42).has_value());
  EXPECT_FALSE(d.erase(42, 3));
  EXPECT_EQ(d.lookup(43), 0u);
}

TEST(owner_directory, reinsert_moves_ownership_without_a_duplicate) {
  owner_directory d(1024);
  EXPECT_TRUE(d.insert(7, 1));
  EXPECT_TRUE(d.insert(7, 2));
  EXPECT_EQ(d.lookup(7), 2u);
  EXPECT_TRUE(d.erase(7, 2));
  EXPECT_FALSE(d.lookup(7).has_value());  // no older entry behind it
}

TEST(owner_directory, refuses_owner_indices_it_cannot_pack) {
  owner_directory d(1024);
  EXPECT_FALSE(d.insert(1, owner_directory::max_owners));
  EXPECT_TRUE(d.insert(1, owner_directory::max_owners - 1));
  EXPECT_EQ(d.lookup(1), owner_directory::max_owners - 1);
}

TEST(owner_directory, tombstones_are_reused_and_a_full_window_refuses) {
  owner_directory d(64);  // one probe window: the whole table
  for (std::uint64_t k = 0; k < 64; ++k) ASSERT_TRUE(d.insert(key(k), k % 4)) << k;
  EXPECT_FALSE(d.insert(key(100000), 0));
  for (std::uint64_t k = 0; k < 64; ++k) EXPECT_EQ(d.lookup(key(k)), k % 4);
  // Churn: erase and insert new keys many times over; tombstones are reused.
  for (std::uint64_t round = 1; round < 50; ++round) {
    for (std::uint64_t k = 0; k < 32; ++k) ASSERT_TRUE(d.erase(key((round - 1) * 1000 + k), k % 4));
    for (std::uint64_t k = 0; k < 32; ++k) ASSERT_TRUE(d.insert(key(round * 1000 + k), k % 4));
    for (std::uint64_t k = 0; k < 32; ++k) ASSERT_EQ(d.lookup(key(round * 1000 + k)), k % 4);
  }
  for (std::uint64_t k = 32; k < 64; ++k) EXPECT_EQ(d.lookup(key(k)), k % 4);
}

TEST(owner_directory, many_keys_at_half_load) {
  owner_directory d(owner_directory::capacity_for(20000));
  std::size_t refused = 0;
  for (std::uint64_t k = 0; k < 20000; ++k) refused += d.insert(k * 0x9E3779B97F4A7C15ULL, k % 7) ? 0 : 1;
  EXPECT_EQ(refused, 0u);
  for (std::uint64_t k = 0; k < 20000; ++k) ASSERT_EQ(d.lookup(k * 0x9E3779B97F4A7C15ULL), k % 7);
}

// Several owners insert, look up and erase their own keys concurrently while
// readers look up keys that are never inserted.
TEST(owner_directory, concurrent_owners_and_readers) {
  owner_directory d(owner_directory::capacity_for(4 * 4096));
  constexpr unsigned owners = 4;
  constexpr std::uint64_t keys = 4096;
  std::atomic<std::uint64_t> wrong{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (unsigned o = 0; o < owners; ++o) {
    threads.emplace_back([&, o] {
      for (int round = 0; round < 20; ++round) {
        for (std::uint64_t k = 0; k < keys; ++k) {
          const std::uint64_t key = (k << 8 | o) * 0xD6E8FEB86659FD93ULL;
          if (!d.insert(key, o)) wrong.fetch_add(1);
        }
        for (std::uint64_t k = 0; k < keys; ++k) {
          const std::uint64_t key = (k << 8 | o) * 0xD6E8FEB86659FD93ULL;
          if (d.lookup(key) != o) wrong.fetch_add(1);
          if (!d.erase(key, o)) wrong.fetch_add(1);
        }
      }
    });
  }
  std::thread reader([&] {
    std::uint64_t k = 0;
    while (!done.load()) {
      // Keys with owner byte 0xEE are never inserted (barring a 56-bit
      // hash collision, which does not happen among these few keys).
      if (d.lookup((k++ << 8 | 0xEE) * 0xD6E8FEB86659FD93ULL).has_value()) wrong.fetch_add(1);
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(wrong.load(), 0u);
  for (std::uint64_t k = 0; k < keys; ++k)
    EXPECT_FALSE(d.lookup((k << 8) * 0xD6E8FEB86659FD93ULL).has_value());
}

// Churn at the table's design load (capacity_for: half full): a million
// inserts and erases, 2,048 keys live at any time. Erased slots become empty
// again, so the table stays near its live size (without reclamation every
// slot ends up a tombstone and every miss reads max_probe slots), and every
// live key is still found, every erased one not.
TEST(owner_directory, churn_reclaims_tombstones_and_keeps_lookups_right) {
  constexpr std::size_t live = 2048;
  owner_directory d(owner_directory::capacity_for(live));
  ASSERT_EQ(d.capacity(), 4096u);
  std::uint64_t next = 0;
  std::uint64_t oldest = 0;
  for (; next < live; ++next) ASSERT_TRUE(d.insert(key(next), next % 8));
  std::size_t worst = 0;
  constexpr std::uint64_t churn = 1'000'000;
  for (std::uint64_t n = 0; n < churn; ++n, ++next, ++oldest) {
    ASSERT_TRUE(d.erase(key(oldest), oldest % 8)) << oldest;
    ASSERT_TRUE(d.insert(key(next), next % 8)) << "insert " << next << " refused";
    if (n % 65536 == 0) worst = std::max(worst, d.occupied_slots());
  }
  worst = std::max(worst, d.occupied_slots());
  std::printf("[ info     ] most slots in use during the churn: %zu of %zu (%zu live)\n", worst,
              d.capacity(), live);
  // Live entries plus the tombstones that sit before a live entry.
  EXPECT_LT(worst, d.capacity() * 3 / 4) << "tombstones are not reclaimed";
  for (std::uint64_t k = oldest; k < next; ++k) ASSERT_EQ(d.lookup(key(k)), k % 8) << k;
  for (std::uint64_t k = oldest - 10000; k < oldest; ++k) ASSERT_FALSE(d.lookup(key(k))) << k;
  // Erasing everything leaves an empty table.
  for (std::uint64_t k = oldest; k < next; ++k) ASSERT_TRUE(d.erase(key(k), k % 8));
  EXPECT_EQ(d.occupied_slots(), 0u);
}

// Writers churn concurrently (each erases and inserts its own keys, as a
// worker does) while others look up: an insert that returned is always
// found by its owner, an erased key never, and the table still shrinks
// back when the churn ends.
TEST(owner_directory, concurrent_churn_never_loses_a_live_entry) {
  owner_directory d(owner_directory::capacity_for(4 * 256));
  constexpr unsigned owners = 4;
  constexpr std::uint64_t live = 256;
  std::atomic<std::uint64_t> lost{0};
  std::atomic<std::uint64_t> ghosts{0};
  std::vector<std::thread> threads;
  for (unsigned o = 0; o < owners; ++o) {
    threads.emplace_back([&, o] {
      auto k = [o](std::uint64_t n) { return key(n << 8 | o); };
      std::uint64_t oldest = 0;
      std::uint64_t next = 0;
      for (; next < live; ++next) {
        if (!d.insert(k(next), o)) lost.fetch_add(1);
      }
      for (std::uint64_t n = 0; n < 100'000; ++n, ++next, ++oldest) {
        if (!d.erase(k(oldest), o)) lost.fetch_add(1);
        if (d.lookup(k(oldest)).has_value()) ghosts.fetch_add(1);
        if (!d.insert(k(next), o)) lost.fetch_add(1);
        if (d.lookup(k(next)) != o) lost.fetch_add(1);
        // One of the live keys, chosen by n: still there.
        const std::uint64_t probe = oldest + 1 + n % (live - 1);
        if (d.lookup(k(probe)) != o) lost.fetch_add(1);
      }
      for (; oldest < next; ++oldest) {
        if (!d.erase(k(oldest), o)) lost.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(lost.load(), 0u);
  EXPECT_EQ(ghosts.load(), 0u);
  EXPECT_EQ(d.occupied_slots(), 0u) << "every slot is empty again once every key is erased";
}

}  // namespace
}  // namespace anyturn::relay
