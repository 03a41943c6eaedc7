// The admin API's view of a worker: src/turn/sessions.cpp (listing pages
// with filters, ending by id and by filter, the cursor).
#include "turn_core_fixture.hpp"

#include <anyturn/turn/sessions.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>

namespace anyturn::test {
namespace {

using turn::session_cursor;
using turn::session_filter;
using turn::session_id;
using turn::session_info;

class Sessions : public WorkerCore {
 protected:
  std::vector<session_info> list_all(const session_filter& f = {}) {
    return core_->list_sessions(f, 0, 1'000'000, 1'000'000, now_).sessions;
  }
  client_ref tcp_client(const char* remote) {
    client_ref c = client(remote);
    c.proto = transport::tcp;
    c.connection = 7;
    return c;
  }
};

TEST_F(Sessions, ListsEverySessionWithItsPeersAndCounts) {
  start();
  const client_ref a = client("203.0.113.10:40000");
  const stun::endpoint relayed = allocate(a);
  ASSERT_EQ(error_of(permit(a, peer_)), 0);
  ASSERT_EQ(error_of(bind_channel(a, 0x4001, ep("93.184.216.35:6000"))), 0);
  io_.to_peer.clear();
  core_->on_client_packet(a, channel_data(0x4001, "hello"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  allocate(client("203.0.113.11:40001"), "bob", "builder");
  now_.mono_ms += 5000;

  const auto all = list_all();
  ASSERT_EQ(all.size(), 2u);
  const session_info& s = all[0];
  EXPECT_EQ(s.user, "alice");
  EXPECT_EQ(s.tenant, "");
  EXPECT_EQ(s.transport, transport::udp);
  EXPECT_EQ(s.client, a.remote);
  EXPECT_EQ(s.server, a.local);
  ASSERT_EQ(s.relayed.size(), 1u);
  EXPECT_EQ(s.relayed[0], relayed);
  ASSERT_EQ(s.permissions.size(), 2u);  // the CreatePermission and the channel's
  ASSERT_EQ(s.channels.size(), 1u);
  EXPECT_EQ(s.channels[0].number, 0x4001);
  EXPECT_EQ(s.channels[0].peer, ep("93.184.216.35:6000"));
  EXPECT_GT(s.channels[0].expires_in_s, 500);
  EXPECT_EQ(s.packets_to_peer, 1u);
  EXPECT_EQ(s.bytes_to_peer, 5u);
  EXPECT_EQ(s.packets_to_client, 0u);
  EXPECT_EQ(s.age_s, 5);
  EXPECT_EQ(s.expires_in_s, 600 - 5);
  EXPECT_EQ(s.id.worker, 0);
  EXPECT_EQ(s.id.str().size(), 16u);
  EXPECT_NE(all[0].id, all[1].id);
  EXPECT_EQ(all[1].user, "bob");
}

TEST_F(Sessions, FiltersByUserClientTransportAndTenant) {
  options o;
  o.tenants = true;
  start(o);
  allocate(client("203.0.113.10:40000"));
  allocate(client("203.0.113.10:40001"), "bob", "builder");
  allocate(tcp_client("203.0.113.12:5000"));
  allocate(client("203.0.113.13:40000"), "dave", "dave-pass");
  const std::string rest = auth::rest_username(now_.unix_s, 3600, "acme:carol");
  const std::string rest_pw = auth::rest_password("acme-secret", rest);
  allocate(client("203.0.113.14:40000"), rest.c_str(), rest_pw.c_str());
  ASSERT_EQ(core_->allocation_count(), 5u);

  session_filter f;
  f.user = "alice";
  EXPECT_EQ(list_all(f).size(), 2u);
  f.user = "carol";  // the REST user of "<expiry>:acme:carol"
  ASSERT_EQ(list_all(f).size(), 1u);
  EXPECT_EQ(list_all(f)[0].user, rest);
  f.user = rest;  // or the whole username
  EXPECT_EQ(list_all(f).size(), 1u);
  f.user = "nobody";
  EXPECT_EQ(list_all(f).size(), 0u);

  session_filter t;
  t.tenant = "acme";
  EXPECT_EQ(list_all(t).size(), 2u);
  t.tenant = "";
  EXPECT_EQ(list_all(t).size(), 3u);

  session_filter c;
  c.client = ep("203.0.113.10:0");  // the IP, any port
  EXPECT_EQ(list_all(c).size(), 2u);
  c.client = ep("203.0.113.10:40001");
  ASSERT_EQ(list_all(c).size(), 1u);
  EXPECT_EQ(list_all(c)[0].user, "bob");

  session_filter p;
  p.transport = transport::tcp;
  ASSERT_EQ(list_all(p).size(), 1u);
  EXPECT_EQ(list_all(p)[0].client, ep("203.0.113.12:5000"));
  p.user = "bob";  // all fields must match
  EXPECT_EQ(list_all(p).size(), 0u);
}

TEST_F(Sessions, PagesWalkBoundedSlotsAndMeetEverySessionOnce) {
  start();
  for (int i = 0; i < 9; ++i) {
    const std::string remote = "203.0.113.10:" + std::to_string(41000 + i);
    allocate(client(remote.c_str()));
  }
  // Free two slots in the middle: pages skip them.
  const auto all = list_all();
  ASSERT_EQ(all.size(), 9u);
  ASSERT_TRUE(core_->end_session(all[3].id, now_));
  ASSERT_TRUE(core_->end_session(all[4].id, now_));

  std::set<std::string> seen;
  std::uint32_t from = 0;
  int steps = 0;
  for (;;) {
    const auto page = core_->list_sessions({}, from, 2, 3, now_);  // <= 2 sessions, <= 3 slots
    EXPECT_LE(page.sessions.size(), 2u);
    EXPECT_LE(page.next_slot - from, 3u);
    for (const auto& s : page.sessions) EXPECT_TRUE(seen.insert(s.id.str()).second) << "twice: " << s.id.str();
    ++steps;
    if (page.end) break;
    ASSERT_GT(page.next_slot, from) << "no progress";
    from = page.next_slot;
    ASSERT_LT(steps, 20);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_GE(steps, 4);  // 9 slots, 3 a step
}

TEST_F(Sessions, EndsOneByIdWithReasonAdminAndRefusesStaleIds) {
  start();
  auto usage = std::make_shared<recording_usage>();
  shared_->usage = usage;
  const client_ref a = client("203.0.113.10:40000");
  allocate(a);
  const session_id id = list_all().at(0).id;

  session_id other_worker = id;
  other_worker.worker = 1;
  EXPECT_FALSE(core_->end_session(other_worker, now_));
  session_id stale = id;
  stale.generation += 1;
  EXPECT_FALSE(core_->end_session(stale, now_));
  session_id free_slot = id;
  free_slot.slot = 5000;
  EXPECT_FALSE(core_->end_session(free_slot, now_));
  EXPECT_EQ(core_->allocation_count(), 1u);

  EXPECT_TRUE(core_->end_session(id, now_));
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_EQ(counters_.closed_admin.load(), 1u);
  ASSERT_EQ(usage->rows.size(), 1u);
  EXPECT_EQ(usage->rows[0].reason, "admin");
  EXPECT_TRUE(io_.open.empty()) << "the relay socket stays open";
  EXPECT_FALSE(core_->end_session(id, now_)) << "ended twice";

  // A new allocation may reuse the slot: the old id does not name it.
  allocate(client("203.0.113.10:40002"));
  const session_id reused = list_all().at(0).id;
  EXPECT_EQ(reused.slot, id.slot);
  EXPECT_FALSE(core_->end_session(id, now_));
  EXPECT_EQ(core_->allocation_count(), 1u);
}

TEST_F(Sessions, EndsEveryAllocationOfAUser) {
  start();
  allocate(client("203.0.113.10:40000"));
  allocate(client("203.0.113.10:40001"), "bob", "builder");
  allocate(client("203.0.113.10:40002"));
  session_filter f;
  f.user = "alice";
  std::size_t ended = 0;
  std::uint32_t from = 0;
  for (;;) {
    const auto page = core_->end_sessions(f, from, 1, now_);  // one slot a step
    ended += page.ended;
    if (page.end) break;
    from = page.next_slot;
  }
  EXPECT_EQ(ended, 2u);
  ASSERT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(list_all().at(0).user, "bob");
  EXPECT_EQ(counters_.closed_admin.load(), 2u);
}

TEST(SessionCursor, RoundTripsAndRefusesJunk) {
  const session_cursor c{3, 123456};
  EXPECT_EQ(c.str(), "03000001e240");
  EXPECT_EQ(session_cursor::parse(c.str()), c);
  EXPECT_EQ(session_cursor::parse("000000000000"), (session_cursor{0, 0}));
  EXPECT_FALSE(session_cursor::parse(""));
  EXPECT_FALSE(session_cursor::parse("03000001e24"));
  EXPECT_FALSE(session_cursor::parse("03000001e2400"));
  EXPECT_FALSE(session_cursor::parse("0300x001e240"));
  EXPECT_FALSE(session_cursor::parse("-30000001e24"));
  EXPECT_FALSE(session_cursor::parse("0301ffffffff"));  // slot past 32 bits
  EXPECT_EQ(turn::parse_transport("tls"), transport::tls);
  EXPECT_FALSE(turn::parse_transport("sctp"));
}

// 100,000 allocations in one worker: one page of a listing (the default
// HTTP step: up to 100 sessions within 4096 slots) costs the worker well
// under a millisecond, so a full listing never stalls it.
TEST_F(Sessions, OnePageOf100000AllocationsIsCheap) {
#if defined(ANYTURN_SANITIZE_ADDRESS) || defined(ANYTURN_SANITIZE_THREAD)
  constexpr int total = 20'000;  // the same shape, smaller under sanitizers
#else
  constexpr int total = 100'000;
#endif
  options o;
  o.port_low = 1024;
  o.port_high = 65535;
  o.second_v4 = true;
  o.max_allocations = 200'000;
  start(o);
  // One nonce per client IP; 25,000 ports per IP. (Without 100,000 log lines.)
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);
  int made = 0;
  for (int ip = 0; made < total; ++ip) {
    const std::string base = "203.0.113." + std::to_string(20 + ip) + ":";
    learn_nonce(client((base + "1").c_str()));
    for (int port = 1; port <= 25'000 && made < total; ++port, ++made) {
      const client_ref c = client((base + std::to_string(port)).c_str());
      io_.to_client.clear();
      core_->on_client_packet(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"),
                              now_);
    }
  }
  spdlog::set_level(level);
  ASSERT_EQ(core_->allocation_count(), static_cast<std::size_t>(total));

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto page = core_->list_sessions({}, 50'000 % total, 100, 4096, now_);
  const auto one_page = clock::now() - t0;
  EXPECT_EQ(page.sessions.size(), 100u);

  session_filter none;
  none.user = "nobody";  // a filter that matches nothing walks the whole step
  const auto t1 = clock::now();
  const auto empty = core_->list_sessions(none, 0, 100, 4096, now_);
  const auto empty_page = clock::now() - t1;
  EXPECT_TRUE(empty.sessions.empty());
  EXPECT_EQ(empty.next_slot, 4096u);

  // The whole listing, step by step, as the HTTP side walks it.
  std::size_t listed = 0, steps = 0;
  const auto t2 = clock::now();
  for (std::uint32_t from = 0;;) {
    const auto p = core_->list_sessions({}, from, 100, 4096, now_);
    listed += p.sessions.size();
    ++steps;
    if (p.end) break;
    from = p.next_slot;
  }
  const auto whole = clock::now() - t2;
  EXPECT_EQ(listed, static_cast<std::size_t>(total));
  const auto us = [](auto d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  std::printf("[ sessions ] %d allocations: one page of 100 = %lld us, a 4096-slot step matching "
              "nothing = %lld us, whole listing = %zu steps in %lld us (%.1f us/step)\n",
              total, static_cast<long long>(us(one_page)), static_cast<long long>(us(empty_page)),
              steps, static_cast<long long>(us(whole)),
              static_cast<double>(us(whole)) / static_cast<double>(steps));
#if !defined(ANYTURN_SANITIZE_ADDRESS) && !defined(ANYTURN_SANITIZE_THREAD)
  // Generous bound (shared CI cores): a step must stay far below a tick.
  EXPECT_LT(us(one_page), 20'000);
  EXPECT_LT(us(empty_page), 20'000);
#endif
}

}  // namespace
}  // namespace anyturn::test
