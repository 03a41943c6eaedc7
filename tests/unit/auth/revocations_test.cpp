// auth::revocation_board, revocation_set, rest_user_of, rest_expiry_of.
#include <anyturn/auth/revocations.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::auth {
namespace {

revocation of_username(std::string tenant, std::string username, std::int64_t until) {
  return {std::move(tenant), std::move(username), {}, until};
}
revocation of_user(std::string tenant, std::string user, std::int64_t until) {
  return {std::move(tenant), {}, std::move(user), until};
}

TEST(revocations, rest_user_of_every_username_form) {
  EXPECT_EQ(rest_user_of("1700000600:acme:alice", "acme"), "alice");
  EXPECT_EQ(rest_user_of("1700000600:acme:al:ice", "acme"), "al:ice");
  EXPECT_EQ(rest_user_of("1700000600:acme:alice#room", "acme"), "alice#room");
  EXPECT_EQ(rest_user_of("1700000600:alice", ""), "alice");
  EXPECT_EQ(rest_user_of("1700000600:acme:alice", ""), "acme:alice");
  EXPECT_EQ(rest_user_of("alice:1700000600", ""), "alice");  // coturn's order
  EXPECT_EQ(rest_user_of("acme:alice:1700000600", "acme"), "alice");
  // Not that tenant's, or no user part.
  EXPECT_EQ(rest_user_of("1700000600:globex:alice", "acme"), "");
  EXPECT_EQ(rest_user_of("1700000600:acmex:alice", "acme"), "");
  EXPECT_EQ(rest_user_of("1700000600:acme:", "acme"), "");
  EXPECT_EQ(rest_user_of("1700000600:acme", "acme"), "");
  EXPECT_EQ(rest_user_of("1700000600", ""), "");
  EXPECT_EQ(rest_user_of("1700000600:", ""), "");
  EXPECT_EQ(rest_user_of("alice", ""), "");
  EXPECT_EQ(rest_user_of(":1700000600", ""), "");
  EXPECT_EQ(rest_user_of("1234567890123456789:alice", ""), "");  // 19 digits
  EXPECT_EQ(rest_user_of("", ""), "");
}

TEST(revocations, rest_expiry_of_every_username_form) {
  EXPECT_EQ(rest_expiry_of("1700000600:acme:alice"), 1700000600);
  EXPECT_EQ(rest_expiry_of("1700000600"), 1700000600);
  EXPECT_EQ(rest_expiry_of("alice:1700000600"), 1700000600);
  EXPECT_EQ(rest_expiry_of("123456789012345678:a"), 123456789012345678);
  EXPECT_FALSE(rest_expiry_of("1234567890123456789:a"));
  EXPECT_FALSE(rest_expiry_of("alice"));
  EXPECT_FALSE(rest_expiry_of("1700000600:"));
  EXPECT_FALSE(rest_expiry_of("alice:bob"));
  EXPECT_FALSE(rest_expiry_of(""));
}

TEST(revocations, set_matches_usernames_and_users_until_their_end) {
  const revocation_set set({of_username("acme", "1700000600:acme:alice", 1700000600),
                            of_user("acme", "bob", 1700003600),
                            of_user("", "carol", 1700000100)});
  EXPECT_EQ(set.size(), 3u);
  // The one credential, up to and including its until second.
  EXPECT_TRUE(set.revoked("acme", "1700000600:acme:alice", 1700000000));
  EXPECT_TRUE(set.revoked("acme", "1700000600:acme:alice", 1700000600));
  EXPECT_FALSE(set.revoked("acme", "1700000600:acme:alice", 1700000601));
  // Another credential of alice is not revoked; the same username of another tenant neither.
  EXPECT_FALSE(set.revoked("acme", "1700000700:acme:alice", 1700000000));
  EXPECT_FALSE(set.revoked("globex", "1700000600:acme:alice", 1700000000));
  // Every credential of bob in acme.
  EXPECT_TRUE(set.revoked("acme", "1700000100:acme:bob", 1700000000));
  EXPECT_TRUE(set.revoked("acme", "1700009999:acme:bob", 1700003600));
  EXPECT_TRUE(set.revoked("acme", "acme:bob:1700009999", 1700000000));
  EXPECT_FALSE(set.revoked("acme", "1700009999:acme:bob", 1700003601));
  EXPECT_FALSE(set.revoked("acme", "1700000100:acme:bobby", 1700000000));
  EXPECT_FALSE(set.revoked("acme", "1700000100:acme:bob#x", 1700000000));
  EXPECT_FALSE(set.revoked("globex", "1700000100:globex:bob", 1700000000));
  // The default tenant.
  EXPECT_TRUE(set.revoked("", "1700000100:carol", 1700000000));
  EXPECT_TRUE(set.revoked("", "carol:1700000100", 1700000000));
  EXPECT_FALSE(set.revoked("acme", "1700000100:acme:carol", 1700000000));
  // Static users and garbage are never revoked by a user entry.
  EXPECT_FALSE(set.revoked("", "bob", 1700000000));
  EXPECT_FALSE(set.revoked("", "", 1700000000));
  EXPECT_FALSE(revocation_set{}.revoked("acme", "1700000600:acme:alice", 0));
}

TEST(revocations, set_merges_repeated_targets_and_drops_empty_ones) {
  const revocation_set set({of_user("acme", "bob", 100), of_user("acme", "bob", 300),
                            of_user("acme", "bob", 200), revocation{"acme", "", "", 999},
                            // A username target: its user member is informational.
                            revocation{"acme", "50:acme:bob", "bob", 50},
                            revocation{"acme", "50:acme:bob", "other", 70}});
  ASSERT_EQ(set.size(), 2u);
  EXPECT_TRUE(set.revoked("acme", "1:acme:bob", 300));
  EXPECT_FALSE(set.revoked("acme", "1:acme:bob", 301));
  for (const revocation& r : set.entries()) {
    if (!r.username.empty()) {
      EXPECT_EQ(r.until_unix, 70);
    }
  }
}

TEST(revocations, set_lookup_scales_to_many_entries) {
  std::vector<revocation> many;
  constexpr int n = 100'000;
  for (int i = 0; i < n; ++i) {
    many.push_back(of_user("t" + std::to_string(i % 7), "user" + std::to_string(i), 2'000'000'000));
  }
  const revocation_set set(std::move(many));
  ASSERT_EQ(set.size(), static_cast<std::size_t>(n));
  const auto start = std::chrono::steady_clock::now();
  int hits = 0;
  for (int i = 0; i < n; ++i) {
    const std::string tenant = "t" + std::to_string(i % 7);
    const std::string name = "1900000000:" + tenant + ":user" + std::to_string(i);
    hits += set.revoked(tenant, name, 1'800'000'000) ? 1 : 0;
    hits += set.revoked(tenant, name + "x", 1'800'000'000) ? 1 : 0;  // miss
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(hits, n);
  // 200k lookups over 100k entries: O(log n) each, far below a second even
  // under sanitizers; a linear scan would take minutes.
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(revocations, board_add_extends_and_moves_the_generation) {
  revocation_board board;
  EXPECT_EQ(board.generation(), 0u);
  EXPECT_EQ(board.snapshot()->size(), 0u);
  EXPECT_TRUE(board.add(of_user("acme", "bob", 100)));
  EXPECT_EQ(board.generation(), 1u);
  EXPECT_FALSE(board.add(of_user("acme", "bob", 100)));  // nothing new
  EXPECT_FALSE(board.add(of_user("acme", "bob", 50)));   // shorter: kept as is
  EXPECT_EQ(board.generation(), 1u);
  EXPECT_TRUE(board.add(of_user("acme", "bob", 200)));  // extended
  EXPECT_EQ(board.generation(), 2u);
  EXPECT_FALSE(board.add(revocation{"acme", "", "", 500}));  // no target
  EXPECT_TRUE(board.add(of_username("acme", "90:acme:zed", 90)));
  const auto snap = board.snapshot();
  ASSERT_EQ(snap->size(), 2u);
  EXPECT_TRUE(snap->revoked("acme", "1:acme:bob", 200));
  EXPECT_FALSE(snap->revoked("acme", "1:acme:bob", 201));
  EXPECT_TRUE(snap->revoked("acme", "90:acme:zed", 90));
  // A snapshot is immutable: later changes make a new one.
  EXPECT_TRUE(board.add(of_user("acme", "eve", 300)));
  EXPECT_EQ(snap->size(), 2u);
  EXPECT_EQ(board.snapshot()->size(), 3u);
}

TEST(revocations, board_batch_add_is_one_generation) {
  revocation_board board;
  ASSERT_TRUE(board.add(of_user("acme", "bob", 100)));
  const std::vector<revocation> batch{of_user("acme", "bob", 50), of_user("acme", "amy", 10),
                                      of_user("acme", "amy", 20), of_user("", "zoe", 30)};
  EXPECT_TRUE(board.add(batch));
  EXPECT_EQ(board.generation(), 2u);
  const auto snap = board.snapshot();
  EXPECT_EQ(snap->size(), 3u);
  EXPECT_TRUE(snap->revoked("acme", "1:acme:bob", 100));  // not shortened
  EXPECT_TRUE(snap->revoked("acme", "1:acme:amy", 20));
  EXPECT_FALSE(snap->revoked("acme", "1:acme:amy", 21));
  EXPECT_TRUE(snap->revoked("", "1:zoe", 30));
  EXPECT_FALSE(board.add(batch));  // nothing new the second time
  EXPECT_EQ(board.generation(), 2u);
}

TEST(revocations, board_expire_drops_what_ended) {
  revocation_board board;
  board.add(std::vector<revocation>{of_user("a", "x", 100), of_user("a", "y", 200),
                                    of_username("a", "300:a:z", 300)});
  const auto before = board.generation();
  EXPECT_EQ(board.expire(100), 0u);  // until 100 still holds at 100
  EXPECT_EQ(board.generation(), before);
  EXPECT_EQ(board.expire(201), 2u);
  EXPECT_EQ(board.generation(), before + 1);
  const auto snap = board.snapshot();
  ASSERT_EQ(snap->size(), 1u);
  EXPECT_EQ(snap->entries().front().username, "300:a:z");
}

// The HTTP and fleet threads add while workers poll the generation and take
// snapshots: every snapshot is a consistent set, and none loses an entry.
TEST(revocations, board_concurrent_add_and_snapshot) {
  revocation_board board;
  constexpr int writers = 3;
  constexpr int per_writer = 400;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      std::uint64_t seen = 0;
      std::size_t last_size = 0;
      while (!done.load(std::memory_order_acquire)) {
        const std::uint64_t g = board.generation();
        if (g == seen) continue;
        const auto snap = board.snapshot();
        // Entries only grow here (nothing expires): a later generation never
        // shows fewer, and every entry a snapshot holds is found by lookup.
        if (snap->size() < last_size) bad.fetch_add(1);
        last_size = snap->size();
        for (const revocation& e : snap->entries()) {
          if (!snap->revoked(e.tenant, "1:" + e.tenant + ":" + e.user, 1)) bad.fetch_add(1);
        }
        seen = g;
      }
    });
  }
  std::vector<std::thread> adders;
  for (int w = 0; w < writers; ++w) {
    adders.emplace_back([&board, w] {
      for (int i = 0; i < per_writer; ++i) {
        board.add(of_user("t" + std::to_string(w), "u" + std::to_string(i), 1000 + i));
      }
    });
  }
  for (auto& t : adders) t.join();
  done.store(true, std::memory_order_release);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(board.generation(), static_cast<std::uint64_t>(writers * per_writer));
  const auto final_set = board.snapshot();
  ASSERT_EQ(final_set->size(), static_cast<std::size_t>(writers * per_writer));
  for (int w = 0; w < writers; ++w) {
    for (int i = 0; i < per_writer; ++i) {
      const std::string t = "t" + std::to_string(w);
      EXPECT_TRUE(final_set->revoked(t, "1:" + t + ":u" + std::to_string(i), 1000 + i));
    }
  }
}

}  // namespace
}  // namespace anyturn::auth
