// The per-worker TURN core (turn::worker_core) driven with a fake io_port
// and a fake clock: the fixture the tests of every src/turn/ file share.
#pragma once

#include <anyturn/turn/worker_core.hpp>

#include "fake_io.hpp"
#include "stun_bytes.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace anyturn::test {

using relay::client_ref;
using relay::now_t;
using relay::relay_id;
using relay::transport;
using relay::worker_counters;
using turn::shared_state;
using turn::tenant_policy;
using turn::worker_core;
namespace attr = stun::attr;
using stun::message_class;

struct recording_usage final : turn::usage_sink {
  struct row {
    std::string tenant, user, reason;
    stun::endpoint client, relay;
    std::int64_t start, end;
    std::uint64_t pp, bp, pc, bc;
    std::string custom_identifier;
  };
  std::vector<row> rows;
  void record(const turn::usage_record& r) noexcept override {
    rows.push_back({std::string(r.tenant), std::string(r.user), std::string(r.reason), r.client,
                    r.relay, r.start_unix_ms, r.end_unix_ms, r.packets_to_peer, r.bytes_to_peer,
                    r.packets_to_client, r.bytes_to_client, std::string(r.custom_identifier)});
  }
};

inline stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text); }

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
  relay::allocation_limits limits;  // limits.allocation (the default tenant's)
  std::vector<std::string> allow;
  // Abuse limits; unset: shared_state's defaults.
  std::optional<turn::rate_limit> unauthenticated_per_source;
  std::optional<turn::rate_limit> auth_failures_per_source;
  std::optional<turn::rate_limit> auth_failures_per_user;
  bool offer_password_algorithms = true;  // the nonce feature bit and PASSWORD-ALGORITHMS in 401s
  std::vector<std::string> own;  // non-empty: the server's own addresses (plus the relays) are guarded
};

class WorkerCore : public ::testing::Test {
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
      s->tenants[0].allocation = o.limits;
      s->tenant_usage = std::make_shared<turn::tenant_quota>(2);
    } else {
      s->credentials = std::make_shared<auth::credential_store>(
          realm, users, std::vector<std::string>{rest_secret});
    }
    s->nonces = std::make_shared<auth::nonce_service>(std::vector<std::uint8_t>(32, 7), 600,
                                                      o.offer_password_algorithms);
    std::vector<auth::cidr> allow;
    for (const auto& a : o.allow) allow.push_back(*auth::cidr::parse(a));
    s->peers = std::make_shared<auth::peer_policy>(allow, std::vector<auth::cidr>{});
    s->relays.push_back({ep("198.51.100.7:0"), std::make_shared<relay::port_pool>(o.port_low, o.port_high)});
    if (o.second_v4)
      s->relays.push_back({ep("198.51.100.8:0"), std::make_shared<relay::port_pool>(o.port_low, o.port_high)});
    if (o.with_v6)
      s->relays.push_back({ep("[2001:db8::7]:0"), std::make_shared<relay::port_pool>(o.port_low, o.port_high)});
    if (!o.own.empty()) {
      std::vector<stun::endpoint> ips;
      for (const auto& a : o.own) ips.push_back(ep(a.c_str()));
      std::vector<relay::own_addresses::relay_range> ranges;
      for (const auto& r : s->relays) ranges.push_back({r.ip, r.ports});
      s->own = std::make_shared<relay::own_addresses>(std::move(ips), std::move(ranges));
    }
    s->max_allocations = o.max_allocations;
    s->allocation_limits = o.limits;
    if (o.per_user) s->user_quotas = std::make_shared<turn::user_quota>(o.per_user);
    if (o.unauthenticated_per_source) s->unauthenticated_per_source = *o.unauthenticated_per_source;
    if (o.auth_failures_per_source) s->auth_failures_per_source = *o.auth_failures_per_source;
    if (o.auth_failures_per_user) s->auth_failures_per_user = *o.auth_failures_per_user;
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
    // Unique over 2^32 requests (a repeated one would be answered from the
    // retransmission cache).
    const auto n = static_cast<std::uint32_t>(++tid_counter_);
    for (std::size_t i = 0; i < t.bytes.size(); ++i)
      t.bytes[i] = static_cast<std::byte>(i < 4 ? n >> (8 * i) : n * 37 + i);
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
        // RFC 8489 §9.2.4: echo the offer and name the algorithm.
        if (!offered_algorithms_.empty()) b.add_bytes(attr::password_algorithms, offered_algorithms_);
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

  // A request signed by alice (MESSAGE-INTEGRITY), then attributes appended
  // after the integrity attribute and a fresh FINGERPRINT: what an on-path
  // attacker can make of a signed request (RFC 8489 §14.5).
  bytes build_with_trailer(stun::method m, const stun::transaction_id& tid,
                           const std::function<void(stun::message_builder&)>& add,
                           const std::function<void(stun::message_builder&)>& trailer) {
    bytes out = build(m, tid, add, "alice", "wonderland", false, false);
    std::array<std::byte, 256> buf{};
    stun::message_builder b(buf, 0x001, message_class::request, tid);
    trailer(b);
    auto built = b.finish();
    EXPECT_TRUE(built);
    auto parsed = stun::parse_message(*built);
    EXPECT_TRUE(parsed);
    for (const auto& a : parsed->attributes())
      stun::test::append_attribute(out, a.type, bytes(a.value.begin(), a.value.end()));
    stun::test::append_fingerprint(out);
    return out;
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
    const auto offer = r.find(attr::password_algorithms);
    offered_algorithms_ = offer ? bytes(offer->value.begin(), offer->value.end()) : bytes{};
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
  bytes offered_algorithms_;  // PASSWORD-ALGORITHMS of the last 401, echoed by build()
  bytes last_;
  int tid_counter_ = 0;
  const stun::endpoint peer_ = ep("93.184.216.34:5000");
};

inline bytes payload_bytes(std::string_view s) {
  bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

}  // namespace anyturn::test
