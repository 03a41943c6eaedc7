#include <anyturn/net/handoff.hpp>

#include <gtest/gtest.h>

#include <poll.h>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

namespace anyturn::net {
namespace {

relay::client_ref client(std::uint16_t port) {
  relay::client_ref c;
  c.remote = stun::endpoint::v4(0x7F000001, port);
  c.local = stun::endpoint::v4(0x7F000001, 3478);
  return c;
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

stun::bytes_view bytes_of(const std::uint64_t& v) {
  return stun::bytes_view(reinterpret_cast<const std::byte*>(&v), sizeof v);
}

TEST(handoff_queue, single_producer_in_order_with_wraparound_and_wakeups) {
  handoff_queue q(4, 64);
  ASSERT_GE(q.wake_fd(), 0);
  EXPECT_EQ(q.capacity(), 4u);
  EXPECT_FALSE(readable(q.wake_fd(), 0));
  std::uint64_t expected = 0;
  std::uint64_t next = 0;
  for (int round = 0; round < 10; ++round) {  // 30 datagrams through 4 slots
    for (int i = 0; i < 3; ++i) {
      const std::uint64_t v = next++;
      ASSERT_EQ(q.push(client(static_cast<std::uint16_t>(1000 + v)), bytes_of(v), {static_cast<std::int64_t>(v), 0}),
                handoff_queue::push_result::queued);
    }
    ASSERT_TRUE(readable(q.wake_fd(), 0));  // woken once the queue went non-empty
    q.begin_drain();
    EXPECT_FALSE(readable(q.wake_fd(), 0));
    while (q.pop([&](const relay::client_ref& from, stun::bytes_view data, const relay::now_t& when) {
      std::uint64_t v = 0;
      ASSERT_EQ(data.size(), sizeof v);
      std::memcpy(&v, data.data(), sizeof v);
      EXPECT_EQ(v, expected);
      EXPECT_EQ(from.remote.port, 1000 + expected);
      EXPECT_EQ(when.mono_ms, static_cast<std::int64_t>(expected));
      ++expected;
    })) {
    }
  }
  EXPECT_EQ(expected, 30u);
  EXPECT_FALSE(q.pop([](auto&&...) { FAIL(); }));
}

TEST(handoff_queue, full_refuses_too_large_refuses_closed_refuses) {
  handoff_queue q(2, 16);
  const std::array<std::byte, 16> fits{};
  const std::array<std::byte, 17> too_big{};
  EXPECT_EQ(q.push(client(1), too_big, {}), handoff_queue::push_result::too_large);
  EXPECT_EQ(q.push(client(1), fits, {}), handoff_queue::push_result::queued);
  EXPECT_EQ(q.push(client(2), fits, {}), handoff_queue::push_result::queued);
  EXPECT_EQ(q.push(client(3), fits, {}), handoff_queue::push_result::full);
  q.begin_drain();
  EXPECT_TRUE(q.pop([](const relay::client_ref& c, stun::bytes_view, const relay::now_t&) {
    EXPECT_EQ(c.remote.port, 1);
  }));
  EXPECT_EQ(q.push(client(4), fits, {}), handoff_queue::push_result::queued);
  q.close();
  EXPECT_EQ(q.push(client(5), fits, {}), handoff_queue::push_result::closed);
  std::vector<std::uint16_t> ports;
  while (q.pop([&](const relay::client_ref& c, stun::bytes_view, const relay::now_t&) { ports.push_back(c.remote.port); })) {
  }
  EXPECT_EQ(ports, (std::vector<std::uint16_t>{2, 4}));
}

TEST(handoff_queue, empty_datagram) {
  handoff_queue q(2, 16);
  EXPECT_EQ(q.push(client(1), {}, {}), handoff_queue::push_result::queued);
  EXPECT_TRUE(q.pop([](const relay::client_ref&, stun::bytes_view d, const relay::now_t&) { EXPECT_TRUE(d.empty()); }));
}

// Several producers, one consumer woken by the eventfd: every queued
// datagram arrives exactly once, in order per producer; refusals are only
// "full", and queued + refused = pushed.
TEST(handoff_queue, multi_producer_single_consumer) {
  handoff_queue q(64, 32);
  constexpr unsigned producers = 3;
  constexpr std::uint64_t per_producer = 50000;
  std::array<std::atomic<std::uint64_t>, producers> queued{};
  std::array<std::atomic<std::uint64_t>, producers> refused{};
  std::atomic<unsigned> finished{0};
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        const std::uint64_t v = (std::uint64_t{p} << 48) | i;
        switch (q.push(client(static_cast<std::uint16_t>(p)), bytes_of(v), {})) {
          case handoff_queue::push_result::queued: queued[p].fetch_add(1); break;
          case handoff_queue::push_result::full: refused[p].fetch_add(1); std::this_thread::yield(); break;
          default: ADD_FAILURE();
        }
      }
      finished.fetch_add(1);
    });
  }
  std::array<std::uint64_t, producers> received{};
  std::array<std::int64_t, producers> last{};
  last.fill(-1);
  bool in_order = true;
  auto drain = [&] {
    q.begin_drain();
    while (q.pop([&](const relay::client_ref& c, stun::bytes_view data, const relay::now_t&) {
      std::uint64_t v = 0;
      std::memcpy(&v, data.data(), sizeof v);
      const unsigned p = static_cast<unsigned>(v >> 48);
      const auto i = static_cast<std::int64_t>(v & 0xFFFFFFFFFFFFULL);
      if (p >= producers || c.remote.port != p || i <= last[p]) in_order = false;
      if (p < producers) {
        last[p] = i;
        ++received[p];
      }
    })) {
    }
  };
  while (finished.load() < producers) {
    if (readable(q.wake_fd(), 100)) drain();
  }
  for (auto& t : threads) t.join();
  // Whatever was pushed after the last drain has signalled the eventfd.
  if (readable(q.wake_fd(), 0)) drain();
  EXPECT_TRUE(in_order);
  for (unsigned p = 0; p < producers; ++p) {
    EXPECT_EQ(received[p], queued[p].load()) << p;
    EXPECT_EQ(queued[p].load() + refused[p].load(), per_producer) << p;
    EXPECT_GT(queued[p].load(), 0u);
  }
  EXPECT_FALSE(q.pop([](auto&&...) {}));
}

TEST(handoff_group, key_depends_on_both_addresses_only) {
  relay::client_ref a = client(5000);
  relay::client_ref b = a;
  b.listener = 3;  // not part of the key: every worker numbers listeners alike
  EXPECT_EQ(handoff_group::key_of(a), handoff_group::key_of(b));
  b.remote.port = 5001;
  EXPECT_NE(handoff_group::key_of(a), handoff_group::key_of(b));
  b = a;
  b.local.port = 3479;
  EXPECT_NE(handoff_group::key_of(a), handoff_group::key_of(b));
  handoff_group g(3, 8, 128, 1024);
  EXPECT_EQ(g.queues.size(), 3u);
  EXPECT_EQ(g.directory.capacity(), 1024u);
}

}  // namespace
}  // namespace anyturn::net
