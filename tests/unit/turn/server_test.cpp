// The TURN state machine, driven with a fake io_port and a fake clock.
#include <anyturn/turn/worker_core.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <vector>

// Counts heap allocations so the forward path can be proven allocation-free.
// GCC pairs the inlined malloc/free of these replacements with the new and
// delete expressions it sees and warns about a mismatch that is not one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<std::size_t> g_allocations{0};
}
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace anyturn::turn {

using relay::allocation_duration_bounds_s;
using relay::bump;
using relay::client_ref;
using relay::client_ref_hash;
using relay::fragments;
using relay::io_port;
using relay::no_relay;
using relay::now_t;
using relay::relay_id;
using relay::tenant_counters;
using relay::transport;
using relay::worker_counters;
namespace {

namespace attr = stun::attr;
using stun::message_class;
using bytes = std::vector<std::byte>;

bytes concat(fragments parts) {
  bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct recording_usage final : usage_sink {
  struct row {
    std::string tenant, user, reason;
    stun::endpoint client, relay;
    std::int64_t start, end;
    std::uint64_t pp, bp, pc, bc;
  };
  std::vector<row> rows;
  void record(const usage_record& r) noexcept override {
    rows.push_back({std::string(r.tenant), std::string(r.user), std::string(r.reason), r.client,
                    r.relay, r.start_unix_ms, r.end_unix_ms, r.packets_to_peer, r.bytes_to_peer,
                    r.packets_to_client, r.bytes_to_client});
  }
};

struct fake_io final : io_port {
  struct to_client_msg {
    client_ref to;
    bytes data;
  };
  struct to_peer_msg {
    relay_id id;
    stun::endpoint peer;
    bytes data;
    bool dont_fragment;
  };
  bool record = true;  // off: count only, so forwarding can be checked for allocations
  std::size_t client_sends = 0, peer_sends = 0;
  std::vector<to_client_msg> to_client;
  std::vector<to_peer_msg> to_peer;
  std::map<relay_id, stun::endpoint> open;
  std::set<std::uint16_t> ports_in_use_elsewhere;  // the kernel refuses these

  void send_to_client(const client_ref& to, fragments data) override {
    ++client_sends;
    if (record) to_client.push_back({to, concat(data)});
  }
  std::error_code open_relay(relay_id id, const stun::endpoint& bind) override {
    if (ports_in_use_elsewhere.count(bind.port)) return std::make_error_code(std::errc::address_in_use);
    EXPECT_EQ(open.count(id), 0u) << "relay id reused while open";
    open[id] = bind;
    return {};
  }
  void close_relay(relay_id id) override {
    EXPECT_EQ(open.count(id), 1u);
    open.erase(id);
  }
  bool send_to_peer(relay_id id, const stun::endpoint& peer, fragments data, bool df) override {
    ++peer_sends;
    if (record) to_peer.push_back({id, peer, concat(data), df});
    return true;
  }
  std::optional<relay_id> relay_with_port(std::uint16_t port) const {
    for (const auto& [id, ep] : open)
      if (ep.port == port) return id;
    return std::nullopt;
  }
};

stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text); }

constexpr const char* realm = "example.org";
constexpr const char* rest_secret = "rest-secret";

struct options {
  std::uint16_t port_low = 50000, port_high = 50009;
  bool with_v6 = false;
  bool second_v4 = false;  // another IPv4 relay address, 198.51.100.8
  std::uint32_t max_allocations = 1000;
  std::uint32_t per_user = 0;
  bool tenants = false;  // adds tenant "acme" (secret "acme-secret", user "dave")
  tenant_policy acme;
  std::vector<std::string> allow;
};

class TurnServer : public ::testing::Test {
 protected:
  void start(const options& o = {}) {
    auto s = std::make_shared<shared_state>();
    std::vector<auth::static_user> users;
    users.push_back({"alice", std::string("wonderland"), std::nullopt});
    users.push_back({"bob", std::string("builder"), std::nullopt});
    if (o.tenants) {
      std::vector<auth::tenant_credentials> t(2);
      t[0].users = users;
      t[0].secrets = {rest_secret};
      t[1].id = "acme";
      t[1].secrets = {"acme-secret"};
      t[1].users.push_back({"dave", std::string("dave-pass"), std::nullopt});
      s->credentials = std::make_shared<auth::credential_store>(realm, t);
      s->tenants = {tenant_policy{}, o.acme};
      s->tenant_usage = std::make_shared<tenant_quota>(2);
    } else {
      s->credentials = std::make_shared<auth::credential_store>(
          realm, users, std::vector<std::string>{rest_secret});
    }
    s->nonces = std::make_shared<auth::nonce_service>(std::vector<std::uint8_t>(32, 7), 600, true);
    std::vector<auth::cidr> allow;
    for (const auto& a : o.allow) allow.push_back(*auth::cidr::parse(a));
    s->peers = std::make_shared<auth::peer_policy>(allow, std::vector<auth::cidr>{});
    s->relays.push_back({ep("198.51.100.7:0"), std::make_shared<relay::port_pool>(o.port_low, o.port_high)});
    if (o.second_v4)
      s->relays.push_back({ep("198.51.100.8:0"), std::make_shared<relay::port_pool>(o.port_low, o.port_high)});
    if (o.with_v6)
      s->relays.push_back({ep("[2001:db8::7]:0"), std::make_shared<relay::port_pool>(o.port_low, o.port_high)});
    s->max_allocations = o.max_allocations;
    if (o.per_user) s->user_quotas = std::make_shared<user_quota>(o.per_user);
    shared_ = s;
    core_ = std::make_unique<worker_core>(s, io_, counters_, 0);
  }

  client_ref client(const char* remote = "203.0.113.10:40000") {
    client_ref c;
    c.proto = transport::udp;
    c.remote = ep(remote);
    c.local = ep("192.0.2.1:3478");
    return c;
  }

  stun::transaction_id new_tid() {
    stun::transaction_id t;
    for (auto& b : t.bytes) b = static_cast<std::byte>(++tid_counter_ * 37);
    return t;
  }

  // Builds a request; `add` adds the method's attributes. With `user`, signs
  // it with the long-term key after a nonce was learned.
  bytes build(stun::method m, const stun::transaction_id& tid,
              const std::function<void(stun::message_builder&)>& add, const char* user = nullptr,
              const char* password = nullptr, bool sha256 = false, bool fingerprint = true) {
    std::array<std::byte, 1500> buf{};
    stun::message_builder b(buf, static_cast<std::uint16_t>(m), message_class::request, tid);
    if (add) add(b);
    if (user != nullptr) {
      b.add_string(attr::username, user);
      b.add_string(attr::realm, realm);
      b.add_string(attr::nonce, nonce_);
      if (sha256) {
        b.add_password_algorithm(stun::password_algorithm::sha256);
        const auto key = auth::derive_sha256_key(user, realm, password);
        b.add_message_integrity_sha256(std::as_bytes(std::span(key)));
      } else {
        const auto key = auth::derive_md5_key(user, realm, password);
        b.add_message_integrity(std::as_bytes(std::span(key)));
      }
    }
    if (fingerprint) b.add_fingerprint();
    auto out = b.finish();
    EXPECT_TRUE(out);
    return bytes(out->begin(), out->end());
  }

  // Sends and returns the single response (parsed view into `last_`).
  stun::message_view send(const client_ref& from, const bytes& msg) {
    io_.to_client.clear();
    core_->on_client_packet(from, msg, now_);
    EXPECT_EQ(io_.to_client.size(), 1u) << "expected exactly one response";
    if (io_.to_client.empty()) return {};
    last_ = io_.to_client.back().data;
    auto parsed = stun::parse_message(last_);
    EXPECT_TRUE(parsed) << parsed.error.message();
    return parsed ? *parsed : stun::message_view{};
  }

  int error_of(const stun::message_view& m) {
    if (m.cls() != message_class::error_response) return 0;
    auto e = m.find(attr::error_code);
    if (!e) return -1;
    return stun::decode_error_code(*e)->code;
  }

  void learn_nonce(const client_ref& c) {
    auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp));
    ASSERT_EQ(error_of(r), 401);
    nonce_ = std::string(*stun::decode_string(*r.find(attr::nonce), 763));
  }

  static void requested_udp(stun::message_builder& b) { b.add_requested_transport(17); }

  // A full Allocate (challenge + authenticated request); returns the relayed address.
  stun::endpoint allocate(const client_ref& c, const char* user = "alice",
                          const char* password = "wonderland",
                          const std::function<void(stun::message_builder&)>& extra = nullptr) {
    learn_nonce(c);
    const auto tid = new_tid();
    auto r = send(c, build(stun::method::allocate, tid,
                           [&](stun::message_builder& b) {
                             requested_udp(b);
                             if (extra) extra(b);
                           },
                           user, password));
    EXPECT_EQ(r.cls(), message_class::success_response) << "error " << error_of(r);
    auto relayed = r.find(attr::xor_relayed_address);
    if (!relayed) return {};
    return *stun::decode_address(*relayed, r.tid(), true);
  }

  stun::message_view permit(const client_ref& c, const stun::endpoint& peer,
                            const char* user = "alice", const char* password = "wonderland") {
    return send(c, build(stun::method::create_permission, new_tid(),
                         [&](auto& b) { b.add_address(attr::xor_peer_address, peer, true); }, user,
                         password));
  }

  stun::message_view bind_channel(const client_ref& c, std::uint16_t number,
                                  const stun::endpoint& peer) {
    return send(c, build(stun::method::channel_bind, new_tid(),
                         [&](auto& b) {
                           b.add_channel_number(number);
                           b.add_address(attr::xor_peer_address, peer, true);
                         },
                         "alice", "wonderland"));
  }

  bytes channel_data(std::uint16_t number, std::string_view payload) {
    bytes out(4 + payload.size());
    stun::write_channel_data_header(out, number, static_cast<std::uint16_t>(payload.size()));
    std::memcpy(out.data() + 4, payload.data(), payload.size());
    return out;
  }

  void advance(std::int64_t seconds) {
    now_.mono_ms += seconds * 1000;
    now_.unix_s += seconds;
    core_->on_tick(now_);
  }

  fake_io io_;
  worker_counters counters_;
  std::shared_ptr<shared_state> shared_;
  std::unique_ptr<worker_core> core_;
  now_t now_{1'000'000, 1'800'000'000};
  std::string nonce_;
  bytes last_;
  int tid_counter_ = 0;
  const stun::endpoint peer_ = ep("93.184.216.34:5000");
};

bytes payload_bytes(std::string_view s) {
  bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

TEST_F(TurnServer, BindingReturnsXorMappedAddress) {
  start();
  const auto c = client();
  auto r = send(c, build(stun::method::binding, new_tid(), nullptr));
  ASSERT_EQ(r.cls(), message_class::success_response);
  auto mapped = r.find(attr::xor_mapped_address);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(*stun::decode_address(*mapped, r.tid(), true), c.remote);
  EXPECT_TRUE(r.has_fingerprint());
}

TEST_F(TurnServer, UnauthenticatedAllocateGetsChallenge) {
  start();
  auto r = send(client(), build(stun::method::allocate, new_tid(), requested_udp));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(*stun::decode_string(*r.find(attr::realm), 763), realm);
  auto nonce = stun::decode_string(*r.find(attr::nonce), 763);
  ASSERT_TRUE(nonce);
  EXPECT_EQ(nonce->substr(0, 9), "obMatJos2");
  std::array<std::uint16_t, 4> algs{};
  auto n = stun::decode_password_algorithms(*r.find(attr::password_algorithms), algs);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(algs[0], 2);  // SHA-256 preferred
  EXPECT_EQ(algs[1], 1);
  EXPECT_FALSE(r.has(attr::message_integrity));
  EXPECT_EQ(counters_.auth_challenges.load(), 1u);
}

TEST_F(TurnServer, AllocateSucceedsAndIsSigned) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto key = auth::derive_md5_key("alice", realm, "wonderland");
  EXPECT_TRUE(stun::check_message_integrity(r, std::as_bytes(std::span(key))));
  auto relayed = *stun::decode_address(*r.find(attr::xor_relayed_address), r.tid(), true);
  EXPECT_EQ(relayed.ip_string(), "198.51.100.7");
  EXPECT_GE(relayed.port, 50000);
  EXPECT_LE(relayed.port, 50009);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
  EXPECT_EQ(*stun::decode_address(*r.find(attr::xor_mapped_address), r.tid(), true), c.remote);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(io_.open.size(), 1u);
  EXPECT_EQ(counters_.allocations_created.load(), 1u);
}

TEST_F(TurnServer, Sha256IntegrityIsAcceptedAndAnsweredInKind) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland", true));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_TRUE(r.has(attr::message_integrity_sha256));
  const auto key = auth::derive_sha256_key("alice", realm, "wonderland");
  EXPECT_TRUE(stun::check_message_integrity_sha256(r, std::as_bytes(std::span(key))));
}

TEST_F(TurnServer, WrongPasswordGets401AndIsCounted) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wrong"));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_bad_integrity.load(), 1u);
  EXPECT_EQ(core_->allocation_count(), 0u);
}

TEST_F(TurnServer, UnknownUserGets401) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "mallory", "x"));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_unknown_user.load(), 1u);
}

TEST_F(TurnServer, RestCredentialsWorkAndExpire) {
  start();
  const auto c = client();
  const std::string user = auth::rest_username(now_.unix_s, 3600, "carol");
  const std::string pass = auth::rest_password(rest_secret, user);
  allocate(c, user.c_str(), pass.c_str());
  EXPECT_EQ(core_->allocation_count(), 1u);

  const auto c2 = client("203.0.113.11:40000");
  const std::string old_user = auth::rest_username(now_.unix_s, -10, "carol");
  const std::string old_pass = auth::rest_password(rest_secret, old_user);
  learn_nonce(c2);
  auto r = send(c2, build(stun::method::allocate, new_tid(), requested_udp, old_user.c_str(),
                          old_pass.c_str()));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_expired_rest.load(), 1u);
}

TEST_F(TurnServer, StaleNonceGets438WithAFreshNonce) {
  start();
  const auto c = client();
  learn_nonce(c);
  now_.unix_s += 601;
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 438);
  auto fresh = stun::decode_string(*r.find(attr::nonce), 763);
  ASSERT_TRUE(fresh);
  EXPECT_NE(*fresh, nonce_);
  EXPECT_TRUE(r.has(attr::realm));
}

TEST_F(TurnServer, ForgedNonceGets401) {
  start();
  const auto c = client();
  learn_nonce(c);
  nonce_[nonce_.size() - 1] = nonce_.back() == 'A' ? 'B' : 'A';
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_bad_nonce.load(), 1u);
}

TEST_F(TurnServer, MissingUsernameWithIntegrityGets400) {
  start();
  const auto c = client();
  std::array<std::byte, 512> buf{};
  stun::message_builder b(buf, 0x003, message_class::request, new_tid());
  b.add_requested_transport(17);
  const auto key = auth::derive_md5_key("alice", realm, "wonderland");
  b.add_message_integrity(std::as_bytes(std::span(key)));
  auto out = b.finish();
  auto r = send(c, bytes(out->begin(), out->end()));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(TurnServer, RetransmittedAllocateGetsTheSameAnswer) {
  start();
  const auto c = client();
  learn_nonce(c);
  const auto tid = new_tid();
  const auto req = build(stun::method::allocate, tid, requested_udp, "alice", "wonderland");
  auto first = send(c, req);
  ASSERT_EQ(first.cls(), message_class::success_response);
  const bytes first_bytes = last_;
  send(c, req);
  EXPECT_EQ(last_, first_bytes);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(counters_.retransmits_answered.load(), 1u);
  // A new transaction on the same 5-tuple is a mismatch.
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 437);
}

TEST_F(TurnServer, RetransmittedAllocateAfterCacheEvictionStillSucceeds) {
  start();
  const auto c = client();
  learn_nonce(c);
  const auto tid = new_tid();
  const auto req = build(stun::method::allocate, tid, requested_udp, "alice", "wonderland");
  auto first = send(c, req);
  ASSERT_EQ(first.cls(), message_class::success_response);
  const auto relayed = *stun::decode_address(*first.find(attr::xor_relayed_address), tid, true);
  now_.mono_ms += 41'000;  // the cache keeps answers for 40 s
  auto again = send(c, req);
  ASSERT_EQ(again.cls(), message_class::success_response) << error_of(again);
  EXPECT_EQ(*stun::decode_address(*again.find(attr::xor_relayed_address), tid, true), relayed);
}

TEST_F(TurnServer, AllocateNeedsUdpTransport) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), nullptr, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
  EXPECT_TRUE(r.has(attr::message_integrity)) << "errors after authentication are signed";
  r = send(c, build(stun::method::allocate, new_tid(), [](auto& b) { b.add_requested_transport(6); },
                    "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 442);
}

TEST_F(TurnServer, LifetimeIsClampedBetweenDefaultAndMaximum) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(),
                         [](auto& b) {
                           b.add_requested_transport(17);
                           b.add_u32(attr::lifetime, 100000);
                         },
                         "alice", "wonderland"));
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 3600u);
  r = send(c, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 5); },
                    "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
}

TEST_F(TurnServer, RefreshZeroFreesAndTheFiveTupleCanAllocateAgainAtOnce) {
  start();
  const auto c = client();
  allocate(c);
  auto r = send(c, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 0); },
                         "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 0u);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_TRUE(io_.open.empty());
  EXPECT_EQ(counters_.allocations_deleted.load(), 1u);
  allocate(c);
  EXPECT_EQ(core_->allocation_count(), 1u);
}

TEST_F(TurnServer, RefreshWithoutAllocationGets437) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 437);
}

TEST_F(TurnServer, AnotherUserOnTheFiveTupleGets441) {
  start();
  const auto c = client();
  allocate(c);
  auto r = send(c, build(stun::method::refresh, new_tid(), nullptr, "bob", "builder"));
  EXPECT_EQ(error_of(r), 441);
}

TEST_F(TurnServer, AllocationExpiresOnTheWheelAndRefreshExtendsIt) {
  start();
  const auto c = client();
  allocate(c);
  advance(500);
  auto r = send(c, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  advance(500);  // 1000 s after the start, 500 s after the refresh
  EXPECT_EQ(core_->allocation_count(), 1u);
  advance(101);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_EQ(counters_.allocations_expired.load(), 1u);
  EXPECT_TRUE(io_.open.empty());
}

TEST_F(TurnServer, PermissionsGateTrafficBothWays) {
  start();
  const auto c = client();
  allocate(c);
  const relay_id rid = io_.open.begin()->first;

  // No permission yet: both directions are dropped.
  core_->on_peer_packet(rid, peer_, payload_bytes("hi"), now_);
  EXPECT_EQ(counters_.no_permission_dropped.load(), 1u);

  auto r = permit(c, peer_);
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);

  // Send indication -> peer.
  std::array<std::byte, 256> buf{};
  stun::message_builder b(buf, 0x006, message_class::indication, new_tid());
  b.add_address(attr::xor_peer_address, peer_, true);
  const auto hello = payload_bytes("hello");
  b.add_bytes(attr::data, hello);
  b.add_flag(attr::dont_fragment);
  io_.to_peer.clear();
  core_->on_client_packet(c, *b.finish(), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].peer, peer_);
  EXPECT_EQ(io_.to_peer[0].data, hello);
  EXPECT_TRUE(io_.to_peer[0].dont_fragment);

  // Peer -> Data indication (any port of the permitted IP).
  io_.to_client.clear();
  auto other_port = peer_;
  other_port.port = 6000;
  core_->on_peer_packet(rid, other_port, payload_bytes("world"), now_);
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto ind = stun::parse_message(io_.to_client[0].data);
  ASSERT_TRUE(ind);
  EXPECT_EQ(ind->cls(), message_class::indication);
  EXPECT_EQ(ind->method(), 0x007);
  EXPECT_EQ(*stun::decode_address(*ind->find(attr::xor_peer_address), ind->tid(), true), other_port);
  auto data = ind->find(attr::data);
  ASSERT_TRUE(data);
  EXPECT_EQ(bytes(data->value.begin(), data->value.end()), payload_bytes("world"));

  // The permission lapses after 300 s.
  advance(301);
  io_.to_client.clear();
  core_->on_peer_packet(rid, peer_, payload_bytes("late"), now_);
  EXPECT_TRUE(io_.to_client.empty());
}

TEST_F(TurnServer, PeerPolicyRefusesPrivateAndLoopbackPeers) {
  start();
  const auto c = client();
  allocate(c);
  for (const char* denied : {"127.0.0.1:9", "10.1.2.3:9", "192.168.1.1:9", "0.0.0.0:9", "169.254.0.1:9"}) {
    auto r = permit(c, ep(denied));
    EXPECT_EQ(error_of(r), 403) << denied;
  }
  EXPECT_EQ(counters_.peer_denied.load(), 5u);
  auto r = bind_channel(c, 0x4000, ep("127.0.0.1:9"));
  EXPECT_EQ(error_of(r), 403);
}

TEST_F(TurnServer, AllowListOpensLoopbackPeers) {
  options o;
  o.allow = {"127.0.0.0/8"};
  start(o);
  const auto c = client();
  allocate(c);
  auto r = permit(c, ep("127.0.0.1:9"));
  EXPECT_EQ(r.cls(), message_class::success_response);
}

TEST_F(TurnServer, CreatePermissionChecksAddresses) {
  start();
  const auto c = client();
  allocate(c);
  auto r = send(c, build(stun::method::create_permission, new_tid(), nullptr, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
  r = permit(c, ep("[2606:4700::1111]:5"));
  EXPECT_EQ(error_of(r), 443);
  // One bad address refuses the whole request, and installs nothing.
  r = send(c, build(stun::method::create_permission, new_tid(),
                    [&](auto& b) {
                      b.add_address(attr::xor_peer_address, peer_, true);
                      b.add_address(attr::xor_peer_address, ep("10.0.0.1:1"), true);
                    },
                    "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 403);
  const relay_id rid = io_.open.begin()->first;
  io_.to_client.clear();
  core_->on_peer_packet(rid, peer_, payload_bytes("x"), now_);
  EXPECT_TRUE(io_.to_client.empty());
}

TEST_F(TurnServer, PermissionRequestWithoutAllocationGets437) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = permit(c, peer_);
  EXPECT_EQ(error_of(r), 437);
}

TEST_F(TurnServer, ChannelsRelayBothWays) {
  start();
  const auto c = client();
  allocate(c);
  const relay_id rid = io_.open.begin()->first;
  for (std::uint16_t number : {std::uint16_t{0x4000}, std::uint16_t{0x7FFF}}) {
    auto peer = peer_;
    peer.port = number == 0x4000 ? 5000 : 5001;
    auto r = bind_channel(c, number, peer);
    ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);

    io_.to_peer.clear();
    core_->on_client_packet(c, channel_data(number, "abcde"), now_);
    ASSERT_EQ(io_.to_peer.size(), 1u);
    EXPECT_EQ(io_.to_peer[0].peer, peer);
    EXPECT_EQ(io_.to_peer[0].data, payload_bytes("abcde"));

    io_.to_client.clear();
    core_->on_peer_packet(rid, peer, payload_bytes("reply"), now_);
    ASSERT_EQ(io_.to_client.size(), 1u);
    auto cd = stun::parse_channel_data(io_.to_client[0].data);
    ASSERT_TRUE(cd);
    EXPECT_EQ(cd->channel, number);
    EXPECT_EQ(bytes(cd->payload.begin(), cd->payload.end()), payload_bytes("reply"));
  }
  EXPECT_EQ(counters_.packets_to_peer.load(), 2u);
  EXPECT_EQ(counters_.bytes_to_client.load(), 10u);
}

TEST_F(TurnServer, ChannelBindRules) {
  start();
  const auto c = client();
  allocate(c);
  EXPECT_EQ(error_of(bind_channel(c, 0x3FFF, peer_)), 400);
  EXPECT_EQ(error_of(bind_channel(c, 0x8000, peer_)), 400);
  ASSERT_EQ(bind_channel(c, 0x4001, peer_).cls(), message_class::success_response);
  auto other = peer_;
  other.port = 7000;
  EXPECT_EQ(error_of(bind_channel(c, 0x4001, other)), 400) << "number bound to another peer";
  EXPECT_EQ(error_of(bind_channel(c, 0x4002, peer_)), 400) << "peer bound to another number";
  EXPECT_EQ(bind_channel(c, 0x4001, peer_).cls(), message_class::success_response) << "refresh";
  EXPECT_EQ(error_of(bind_channel(c, 0x4003, ep("[2606:4700::1111]:5"))), 443);
  auto r = send(c, build(stun::method::channel_bind, new_tid(),
                         [](auto& b) { b.add_channel_number(0x4005); }, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(TurnServer, ExpiredChannelStopsAndItsNumberCoolsDown) {
  start();
  const auto c = client();
  allocate(c);
  ASSERT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  // Keep the allocation and permission alive, but not the channel.
  for (int i = 0; i < 3; ++i) {
    advance(250);
    learn_nonce(c);  // nonces go stale after 600 s
    ASSERT_EQ(send(c, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland")).cls(),
              message_class::success_response);
    ASSERT_EQ(permit(c, peer_).cls(), message_class::success_response);
  }
  // 750 s: the channel (600 s) has expired.
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "x"), now_);
  EXPECT_TRUE(io_.to_peer.empty());
  EXPECT_EQ(counters_.unbound_channel_dropped.load(), 1u);
  auto other = peer_;
  other.port = 9999;
  learn_nonce(c);
  EXPECT_EQ(error_of(bind_channel(c, 0x4000, other)), 400) << "cooling down for 5 minutes";
  EXPECT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response)
      << "the same peer may rebind";
}

TEST_F(TurnServer, ChannelDataOnUnboundChannelIsDropped) {
  start();
  const auto c = client();
  allocate(c);
  core_->on_client_packet(c, channel_data(0x4444, "x"), now_);
  EXPECT_EQ(counters_.unbound_channel_dropped.load(), 1u);
  core_->on_client_packet(client("203.0.113.99:1"), channel_data(0x4444, "x"), now_);
  EXPECT_EQ(counters_.no_allocation_dropped.load(), 1u);
}

TEST_F(TurnServer, PortRangeExhaustionGives508AndFreedPortsComeBack) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  start(o);
  allocate(client("203.0.113.1:1"));
  allocate(client("203.0.113.2:1"));
  const auto c3 = client("203.0.113.3:1");
  learn_nonce(c3);
  auto r = send(c3, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508);
  EXPECT_EQ(counters_.allocations_failed_ports.load(), 1u);
  learn_nonce(client("203.0.113.1:1"));
  send(client("203.0.113.1:1"),
       build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 0); }, "alice",
             "wonderland"));
  allocate(c3);
  EXPECT_EQ(core_->allocation_count(), 2u);
}

TEST_F(TurnServer, SeveralRelayAddressesAddCapacity) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  o.second_v4 = true;
  start(o);
  std::set<std::string> ips;
  for (int i = 1; i <= 4; ++i) {
    const std::string remote = "203.0.113." + std::to_string(i) + ":1";
    ips.insert(allocate(client(remote.c_str())).ip_string());
  }
  EXPECT_EQ(ips, (std::set<std::string>{"198.51.100.7", "198.51.100.8"}));
  EXPECT_EQ(core_->allocation_count(), 4u);
  const auto c5 = client("203.0.113.5:1");
  learn_nonce(c5);
  auto r = send(c5, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508) << "2 addresses x 2 ports";
}

TEST_F(TurnServer, BusyPortIsSkipped) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  start(o);
  io_.ports_in_use_elsewhere = {50000};
  const auto relayed = allocate(client());
  EXPECT_EQ(relayed.port, 50001);
}

TEST_F(TurnServer, EvenPortReservesTheNextPortForItsToken) {
  start();
  const auto c1 = client("203.0.113.1:1");
  learn_nonce(c1);
  auto r = send(c1, build(stun::method::allocate, new_tid(),
                          [](auto& b) {
                            b.add_requested_transport(17);
                            b.add_even_port(true);
                          },
                          "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto relayed = *stun::decode_address(*r.find(attr::xor_relayed_address), r.tid(), true);
  EXPECT_EQ(relayed.port % 2, 0);
  auto token_attr = r.find(attr::reservation_token);
  ASSERT_TRUE(token_attr);
  const std::uint64_t token = *stun::decode_reservation_token(*token_attr);

  const auto c2 = client("203.0.113.2:1");
  const auto second = allocate(c2, "alice", "wonderland",
                               [&](auto& b) { b.add_reservation_token(token); });
  EXPECT_EQ(second.port, relayed.port + 1);

  // A token redeems once.
  const auto c3 = client("203.0.113.3:1");
  learn_nonce(c3);
  r = send(c3, build(stun::method::allocate, new_tid(),
                     [&](auto& b) {
                       b.add_requested_transport(17);
                       b.add_reservation_token(token);
                     },
                     "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508);
  // RESERVATION-TOKEN together with EVEN-PORT is a bad request.
  r = send(c3, build(stun::method::allocate, new_tid(),
                     [&](auto& b) {
                       b.add_requested_transport(17);
                       b.add_even_port(false);
                       b.add_reservation_token(token);
                     },
                     "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(TurnServer, UnredeemedReservationIsReleased) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  start(o);
  const auto c1 = client("203.0.113.1:1");
  learn_nonce(c1);
  auto r = send(c1, build(stun::method::allocate, new_tid(),
                          [](auto& b) {
                            b.add_requested_transport(17);
                            b.add_even_port(true);
                          },
                          "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(shared_->relays[0].ports->in_use(), 2u);
  advance(31);
  EXPECT_EQ(shared_->relays[0].ports->in_use(), 1u);
}

TEST_F(TurnServer, AddressFamilies) {
  start();  // IPv4 relay only
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(),
                         [](auto& b) {
                           b.add_requested_transport(17);
                           b.add_address_family(attr::requested_address_family, stun::address_family::ipv6);
                         },
                         "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 440);
  // Dual allocation without an IPv6 relay: IPv4 only, plus ADDRESS-ERROR-CODE.
  r = send(c, build(stun::method::allocate, new_tid(),
                    [](auto& b) {
                      b.add_requested_transport(17);
                      b.add_address_family(attr::additional_address_family, stun::address_family::ipv6);
                    },
                    "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  auto aec = r.find(attr::address_error_code);
  ASSERT_TRUE(aec);
  EXPECT_EQ(stun::decode_address_error_code(*aec)->code, 440);
}

TEST_F(TurnServer, DualAllocationAndIpv6Relaying) {
  options o;
  o.with_v6 = true;
  start(o);
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(),
                         [](auto& b) {
                           b.add_requested_transport(17);
                           b.add_address_family(attr::additional_address_family, stun::address_family::ipv6);
                         },
                         "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  int relayed = 0;
  for (const auto& a : r.attributes()) relayed += a.type == attr::xor_relayed_address;
  EXPECT_EQ(relayed, 2);
  EXPECT_EQ(io_.open.size(), 2u);
  const auto v6peer = ep("[2606:4700::1111]:5000");
  ASSERT_EQ(bind_channel(c, 0x4000, v6peer).cls(), message_class::success_response);
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "six"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_FALSE(io_.open.at(io_.to_peer[0].id).is_v4()) << "sent from the IPv6 relay";
  // ADDITIONAL-ADDRESS-FAMILY of IPv4 is a bad request.
  const auto c2 = client("203.0.113.2:2");
  learn_nonce(c2);
  r = send(c2, build(stun::method::allocate, new_tid(),
                     [](auto& b) {
                       b.add_requested_transport(17);
                       b.add_address_family(attr::additional_address_family, stun::address_family::ipv4);
                     },
                     "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(TurnServer, WorkerCapacityGives508) {
  options o;
  o.max_allocations = 1;
  start(o);
  allocate(client("203.0.113.1:1"));
  const auto c2 = client("203.0.113.2:1");
  learn_nonce(c2);
  auto r = send(c2, build(stun::method::allocate, new_tid(), requested_udp, "bob", "builder"));
  EXPECT_EQ(error_of(r), 508);
}

TEST_F(TurnServer, UserQuotaGives486AndFreesWithTheAllocation) {
  options o;
  o.per_user = 2;
  start(o);
  const std::string u1 = auth::rest_username(now_.unix_s, 3600, "carol");
  const std::string p1 = auth::rest_password(rest_secret, u1);
  const std::string u2 = auth::rest_username(now_.unix_s, 7200, "carol");  // fresh credentials
  const std::string p2 = auth::rest_password(rest_secret, u2);
  const auto c1 = client("203.0.113.1:1");
  allocate(c1, u1.c_str(), p1.c_str());
  allocate(client("203.0.113.2:1"), u2.c_str(), p2.c_str());
  const auto c3 = client("203.0.113.3:1");
  learn_nonce(c3);
  auto r = send(c3, build(stun::method::allocate, new_tid(), requested_udp, u2.c_str(), p2.c_str()));
  EXPECT_EQ(error_of(r), 486);
  EXPECT_EQ(counters_.allocations_failed_quota.load(), 1u);
  // Another user is not affected.
  allocate(client("203.0.113.4:1"), "bob", "builder");
  // Freeing one of carol's allocations gives the quota back.
  learn_nonce(c1);
  send(c1, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 0); },
                 u1.c_str(), p1.c_str()));
  allocate(c3, u2.c_str(), p2.c_str());
  EXPECT_EQ(shared_->user_quotas->count("carol"), 2u);
}

TEST_F(TurnServer, TenantQuotaGives486AndCountsPerTenant) {
  options o;
  o.tenants = true;
  o.acme.id = "acme";
  o.acme.max_allocations = 2;
  start(o);
  const std::string u1 = auth::rest_username(now_.unix_s, 3600, "acme:u1");
  const std::string p1 = auth::rest_password("acme-secret", u1);
  allocate(client("203.0.113.1:1"), u1.c_str(), p1.c_str());
  allocate(client("203.0.113.2:1"), "dave", "dave-pass");  // a static user of acme
  const auto c3 = client("203.0.113.3:1");
  learn_nonce(c3);
  auto r = send(c3, build(stun::method::allocate, new_tid(), requested_udp, u1.c_str(), p1.c_str()));
  EXPECT_EQ(error_of(r), 486);
  // The default tenant is not limited by acme's quota.
  allocate(c3, "alice", "wonderland");
  EXPECT_EQ(shared_->tenant_usage->active(1), 2u);
  EXPECT_EQ(shared_->tenant_usage->active(0), 1u);
  EXPECT_EQ(counters_.tenants[1].allocations_created.load(), 2u);
  EXPECT_EQ(counters_.tenants[1].quota_rejected.load(), 1u);
  EXPECT_EQ(counters_.tenants[1].active[0].load(), 2u);
  EXPECT_EQ(counters_.tenants[0].allocations_created.load(), 1u);
  core_->shutdown(now_);
  EXPECT_EQ(shared_->tenant_usage->active(1), 0u);
  EXPECT_EQ(counters_.tenants[1].active[0].load(), 0u);
}

TEST_F(TurnServer, TenantBandwidthLimitDropsExcessAndCountsIt) {
  options o;
  o.tenants = true;
  o.acme.id = "acme";
  o.acme.bandwidth_bytes_per_s = 1000;
  start(o);
  const auto c = client();
  allocate(c, "dave", "dave-pass");
  ASSERT_EQ(send(c, build(stun::method::channel_bind, new_tid(),
                          [&](auto& b) {
                            b.add_channel_number(0x4000);
                            b.add_address(attr::xor_peer_address, peer_, true);
                          },
                          "dave", "dave-pass"))
                .cls(),
            message_class::success_response);
  io_.to_peer.clear();
  const auto cd = channel_data(0x4000, std::string(300, 'x'));
  for (int i = 0; i < 5; ++i) core_->on_client_packet(c, cd, now_);
  EXPECT_EQ(io_.to_peer.size(), 3u) << "1000 bytes of burst: three 300-byte packets";
  EXPECT_EQ(counters_.bandwidth_dropped.load(), 2u);
  EXPECT_EQ(counters_.tenants[1].bandwidth_dropped.load(), 2u);
  EXPECT_EQ(counters_.tenants[1].bytes_to_peer.load(), 900u);
  now_.mono_ms += 600;  // refills 600 bytes
  for (int i = 0; i < 3; ++i) core_->on_client_packet(c, cd, now_);
  EXPECT_EQ(io_.to_peer.size(), 5u);
}

TEST_F(TurnServer, EndedAllocationsWriteUsageRecords) {
  options o;
  o.tenants = true;
  o.acme.id = "acme";
  start(o);
  auto usage = std::make_shared<recording_usage>();
  shared_->usage = usage;
  const auto c = client();
  const auto relayed = allocate(c, "dave", "dave-pass");
  const relay_id rid = io_.open.begin()->first;
  ASSERT_EQ(send(c, build(stun::method::create_permission, new_tid(),
                          [&](auto& b) { b.add_address(attr::xor_peer_address, peer_, true); },
                          "dave", "dave-pass"))
                .cls(),
            message_class::success_response);
  std::array<std::byte, 256> buf{};
  stun::message_builder b(buf, 0x006, message_class::indication, new_tid());
  b.add_address(attr::xor_peer_address, peer_, true);
  b.add_bytes(attr::data, payload_bytes("0123456789"));
  core_->on_client_packet(c, *b.finish(), now_);
  core_->on_peer_packet(rid, peer_, payload_bytes("abc"), now_);
  core_->on_peer_packet(rid, peer_, payload_bytes("defg"), now_);
  advance(700);  // expires
  ASSERT_EQ(usage->rows.size(), 1u);
  const auto& row = usage->rows[0];
  EXPECT_EQ(row.tenant, "acme");
  EXPECT_EQ(row.user, "dave");
  EXPECT_EQ(row.reason, "expired");
  EXPECT_EQ(row.client, c.remote);
  EXPECT_EQ(row.relay, relayed);
  EXPECT_EQ(row.pp, 1u);
  EXPECT_EQ(row.bp, 10u);
  EXPECT_EQ(row.pc, 2u);
  EXPECT_EQ(row.bc, 7u);
  EXPECT_GE(row.end - row.start, 600'000);
  // 700 s lands in the (600, 1800] bucket of the duration histogram.
  EXPECT_EQ(counters_.allocation_duration_buckets[5].load(), 1u);
  EXPECT_GE(counters_.allocation_duration_sum_ms.load(), 600'000u);
}

TEST_F(TurnServer, UnknownComprehensionRequiredAttributeGets420) {
  start();
  const auto c = client();
  auto r = send(c, build(stun::method::allocate, new_tid(), [](auto& b) {
    b.add_requested_transport(17);
    b.add_u32(0x0077, 1);  // unknown, comprehension-required
  }));
  EXPECT_EQ(error_of(r), 420);
  std::array<std::uint16_t, 4> types{};
  auto n = stun::decode_unknown_attributes(*r.find(attr::unknown_attributes), types);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(types[0], 0x0077);
}

TEST_F(TurnServer, UnknownMethodGets400) {
  start();
  std::array<std::byte, 64> buf{};
  stun::message_builder b(buf, 0x00F, message_class::request, new_tid());
  auto r = send(client(), bytes(b.finish()->begin(), b.finish()->end()));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(TurnServer, BadFingerprintAndGarbageAreDroppedAndCounted) {
  start();
  const auto c = client();
  auto req = build(stun::method::binding, new_tid(), nullptr);
  req.back() ^= std::byte{0x01};
  io_.to_client.clear();
  core_->on_client_packet(c, req, now_);
  EXPECT_TRUE(io_.to_client.empty());
  EXPECT_EQ(counters_.bad_fingerprint_dropped.load(), 1u);

  const bytes garbage{std::byte{0xFF}, std::byte{0x00}, std::byte{0x12}};
  core_->on_client_packet(c, garbage, now_);
  EXPECT_EQ(counters_.unknown_dropped.load(), 1u);
  const bytes truncated{std::byte{0x00}, std::byte{0x01}, std::byte{0x00}, std::byte{0x08}};
  core_->on_client_packet(c, truncated, now_);
  EXPECT_EQ(counters_.malformed_dropped.load(), 1u);
  // The server is still fine.
  auto r = send(c, build(stun::method::binding, new_tid(), nullptr));
  EXPECT_EQ(r.cls(), message_class::success_response);
}

TEST_F(TurnServer, ShutdownFreesEverything) {
  start();
  allocate(client("203.0.113.1:1"));
  allocate(client("203.0.113.2:1"));
  core_->shutdown(now_);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_TRUE(io_.open.empty());
  EXPECT_EQ(shared_->relays[0].ports->in_use(), 0u);
  EXPECT_EQ(counters_.allocations_closed.load(), 2u);
}

TEST_F(TurnServer, ForwardingAllocatesNothing) {
  start();
  const auto c = client();
  allocate(c);
  const relay_id rid = io_.open.begin()->first;
  ASSERT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  auto other = peer_;
  other.port = 5002;  // no channel: Data indications
  const auto cd = channel_data(0x4000, std::string(200, 'x'));
  const auto payload = payload_bytes(std::string(200, 'y'));
  std::array<std::byte, 512> ind_buf{};
  stun::message_builder b(ind_buf, 0x006, message_class::indication, new_tid());
  b.add_address(attr::xor_peer_address, peer_, true);
  b.add_bytes(attr::data, payload);
  const auto send_ind = *b.finish();

  io_.record = false;
  const std::size_t sanity = g_allocations.load();
  ::operator delete(::operator new(8));  // the counter sees allocations
  ASSERT_EQ(g_allocations.load(), sanity + 1);
  const std::size_t before = g_allocations.load();
  const std::size_t sends_before = io_.client_sends, peer_sends_before = io_.peer_sends;
  for (int i = 0; i < 1000; ++i) {
    core_->on_client_packet(c, cd, now_);
    core_->on_client_packet(c, send_ind, now_);
    core_->on_peer_packet(rid, peer_, payload, now_);
    core_->on_peer_packet(rid, other, payload, now_);
  }
  const std::size_t after = g_allocations.load();
  io_.record = true;
  EXPECT_EQ(after - before, 0u);
  EXPECT_EQ(io_.peer_sends - peer_sends_before, 2000u);
  EXPECT_EQ(io_.client_sends - sends_before, 2000u);
}

}  // namespace
}  // namespace anyturn::turn
