// Start-up planning (src/app/startup.cpp): the shared state, threads, the
// descriptor budget and limit, risky peer allowances.
#include <anyturn/app/startup.hpp>

#include <anyturn/auth/peer_policy.hpp>

#include <gtest/gtest.h>

#include "app_config.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <fstream>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

namespace anyturn::app {
namespace {

using test::ep;
using test::test_config;

TEST(app, shared_state_mirrors_the_config) {
  config::server_config cfg = test_config();
  cfg.relay.ips = {ep("127.0.0.1"), ep("::1")};
  cfg.lifetimes.allocation_default = 300;
  cfg.lifetimes.allocation_max = 900;
  cfg.lifetimes.permission = 120;
  cfg.lifetimes.channel = 240;
  cfg.software = "x";
  cfg.max_allocations_per_worker = 17;
  cfg.auth.offer_sha256 = false;
  cfg.unauthenticated_per_source = {7, 9};
  cfg.auth_failures = {6, 4, 30, 12};
  const auto s = make_shared_state(cfg);
  ASSERT_EQ(s->relays.size(), 2u);
  EXPECT_EQ(s->relays[0].ip, ep("127.0.0.1"));
  EXPECT_EQ(s->relays[1].ip, ep("::1"));
  EXPECT_NE(s->relays[0].ports, s->relays[1].ports);  // one pool per address
  EXPECT_EQ(s->relays[0].ports->low(), 62000);
  EXPECT_EQ(s->relays[0].ports->capacity(), 100u);
  EXPECT_EQ(s->credentials->realm(), "test");
  EXPECT_EQ(s->allocation_lifetime_default, 300u);
  EXPECT_EQ(s->allocation_lifetime_max, 900u);
  EXPECT_EQ(s->permission_lifetime, 120u);
  EXPECT_EQ(s->channel_lifetime, 240u);
  EXPECT_EQ(s->software, "x");
  EXPECT_EQ(s->max_allocations, 17u);
  EXPECT_EQ(s->nonces->feature_bits(), 0u) << "auth.offer_sha256: false offers no PASSWORD-ALGORITHMS";
  EXPECT_EQ(s->unauthenticated_per_source.per_second, 7.0);
  EXPECT_EQ(s->unauthenticated_per_source.burst, 9u);
  EXPECT_DOUBLE_EQ(s->auth_failures_per_source.per_second, 0.1);  // 6 a minute
  EXPECT_EQ(s->auth_failures_per_source.burst, 4u);
  EXPECT_DOUBLE_EQ(s->auth_failures_per_user.per_second, 0.5);
  EXPECT_EQ(s->auth_failures_per_user.burst, 12u);
  EXPECT_TRUE(auth::is_allowed(s->peers->check(ep("127.0.0.1:9"))));
  EXPECT_FALSE(auth::is_allowed(s->peers->check(ep("10.0.0.1:9"))));
}

TEST(app, nonce_key_is_shared_when_configured_and_random_otherwise) {
  config::server_config cfg = test_config();
  const stun::endpoint client = ep("192.0.2.1:5000");
  std::array<char, auth::nonce_service::nonce_size> a{}, b{};
  const auto n1 = std::string(make_shared_state(cfg)->nonces->mint(client, 1000, a));
  const auto n2 = std::string(make_shared_state(cfg)->nonces->mint(client, 1000, b));
  EXPECT_EQ(n1, n2);  // two nodes of a fleet accept each other's nonces

  cfg.auth.nonce_keys.clear();
  const auto r1 = std::string(make_shared_state(cfg)->nonces->mint(client, 1000, a));
  const auto r2 = std::string(make_shared_state(cfg)->nonces->mint(client, 1000, b));
  EXPECT_NE(r1, r2);
}

TEST(app, thread_count_and_descriptor_budget) {
  EXPECT_EQ(resolve_threads(3), 3u);
  EXPECT_GE(resolve_threads(0), 1u);
  config::server_config cfg = test_config();
  cfg.relay.ips = {ep("127.0.0.1"), ep("::1")};
  cfg.listen = {ep("0.0.0.0:3478"), ep("[::]:3478")};
  // UDP only: 2 x 100 relay ports + 4 workers x (2 listeners + 4) + 64 slack
  cfg.streams.tcp = false;
  EXPECT_EQ(required_descriptors(cfg, 4), 200u + 24u + 64u);
  // UDP+TCP on both listen addresses and one TLS listener: 5 listeners per
  // worker, plus one descriptor per allowed connection.
  cfg.streams.tcp = true;
  cfg.tls.listen = {ep("0.0.0.0:5349")};
  cfg.streams.max_connections = 1000;
  EXPECT_EQ(required_descriptors(cfg, 4), 200u + 4u * (5u + 4u) + 1000u + 64u);
}

TEST(app, raises_the_soft_descriptor_limit_to_the_hard_one) {
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max == RLIM_INFINITY || original.rlim_max < 64) GTEST_SKIP();
  rlimit lowered = original;
  lowered.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  const fd_limit r = raise_fd_limit(100);
  EXPECT_EQ(r.before, 64u);
  EXPECT_EQ(r.after, original.rlim_max);
  EXPECT_EQ(r.hard, original.rlim_max);
  EXPECT_TRUE(r.sufficient());
  EXPECT_FALSE(raise_fd_limit(original.rlim_max + 1).sufficient());
  ::setrlimit(RLIMIT_NOFILE, &original);
}

TEST(app, warns_about_allow_entries_that_open_internal_ranges) {
  config::peer_config peers;
  peers.allow = {*auth::cidr::parse("127.0.0.0/8"), *auth::cidr::parse("8.8.8.0/24"),
                 *auth::cidr::parse("0.0.0.0/0"), *auth::cidr::parse("fd00::/8"),
                 *auth::cidr::parse("192.0.2.0/24")};
  const auto w = risky_peer_allowances(peers);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_NE(w[0].find("127.0.0.0/8"), std::string::npos);
  EXPECT_NE(w[0].find("loopback"), std::string::npos);
  EXPECT_NE(w[1].find("0.0.0.0/0"), std::string::npos);
  EXPECT_NE(w[1].find("169.254.169.254"), std::string::npos);  // the metadata service too
  EXPECT_NE(w[2].find("fd00::/8"), std::string::npos);
  EXPECT_NE(w[3].find("192.0.2.0/24"), std::string::npos);   // documentation range
}

class RelayRangeOverlap : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "anyturn_overlap_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(RelayRangeOverlap, DefaultRangeOverlapsTheDefaultEphemeralRange) {
  const auto eph = write("range", "32768\t60999\n");
  const auto res = write("reserved", "\n");
  const auto w = relay_range_overlap_warning(49152, 65535, eph, res);
  ASSERT_TRUE(w.has_value());
  EXPECT_NE(w->find("49152-65535"), std::string::npos) << *w;
  EXPECT_NE(w->find("32768-60999"), std::string::npos) << *w;
  EXPECT_NE(w->find("by 11848 ports"), std::string::npos) << *w;
  EXPECT_NE(w->find("net.ipv4.ip_local_reserved_ports=49152-60999"), std::string::npos) << *w;
}

TEST_F(RelayRangeOverlap, NoWarningWhenApartOrReserved) {
  const auto eph = write("range", "32768 60999\n");
  const auto none = write("reserved", "");
  EXPECT_FALSE(relay_range_overlap_warning(61000, 65535, eph, none));
  EXPECT_FALSE(relay_range_overlap_warning(20000, 32767, eph, none));
  const auto reserved = write("reserved2", "8080,49152-55000,55001-60999\n");
  EXPECT_FALSE(relay_range_overlap_warning(49152, 65535, eph, reserved))
      << "every overlapping port is reserved";
  const auto partly = write("reserved3", "49152-60000\n");
  const auto w = relay_range_overlap_warning(49152, 65535, eph, partly);
  ASSERT_TRUE(w.has_value());
  EXPECT_NE(w->find("by 999 ports"), std::string::npos) << *w;
}

TEST_F(RelayRangeOverlap, UnreadableFilesGiveNoWarning) {
  EXPECT_FALSE(relay_range_overlap_warning(49152, 65535, dir_ + "/missing", dir_ + "/missing"));
  const auto junk = write("junk", "not numbers\n");
  EXPECT_FALSE(relay_range_overlap_warning(49152, 65535, junk, junk));
}

// ------------------------------------------------------------------ fleet

TEST(app, shared_state_carries_the_fleet_config) {
  config::server_config cfg = test_config();
  cfg.relay.ips = {ep("127.0.0.1"), ep("127.0.0.2"), ep("::1")};
  config::external_ip a;
  a.public_ip = ep("203.0.113.7");
  a.private_ip = ep("127.0.0.2");
  config::external_ip b;
  b.public_ip = ep("2001:db8::7");  // no PRIVATE: the only IPv6 relay address
  cfg.relay.external_ips = {a, b};
  cfg.fleet.anycast_ips = {ep("198.51.100.1"), ep("2001:db8:a::1")};
  cfg.fleet.unicast_ips = {ep("192.0.2.10"), ep("2001:db8::10")};
  cfg.fleet.alternate_domain = "turn-1.example.com";
  cfg.auth.enforce_expiry = false;
  const auto s = make_shared_state(cfg);
  ASSERT_EQ(s->external_ips.size(), 2u);
  EXPECT_EQ(s->external_ips[0].private_ip, ep("127.0.0.2"));
  EXPECT_EQ(s->external_ips[0].public_ip, ep("203.0.113.7"));
  EXPECT_EQ(s->external_ips[1].private_ip, ep("::1"));
  EXPECT_EQ(s->external_ips[1].public_ip, ep("2001:db8::7"));
  for (const auto& m : s->external_ips) {
    // Each PRIVATE is one of the relay addresses, as the core looks it up.
    EXPECT_TRUE(std::any_of(s->relays.begin(), s->relays.end(),
                            [&](const auto& r) { return r.ip == m.private_ip; }))
        << m.private_ip.to_string();
    EXPECT_EQ(m.public_ip.port, 0);
  }
  EXPECT_EQ(s->anycast_ips, (std::vector<stun::endpoint>{ep("198.51.100.1"), ep("2001:db8:a::1")}));
  EXPECT_EQ(s->unicast_ips, (std::vector<stun::endpoint>{ep("192.0.2.10"), ep("2001:db8::10")}));
  EXPECT_EQ(s->alternate_domain, "turn-1.example.com");
  EXPECT_FALSE(s->enforce_expiry);
  // app.cpp wires these; make_shared_state leaves them off.
  EXPECT_EQ(s->fleet, nullptr);
  EXPECT_EQ(s->revocations, nullptr);

  // The relay's public address, the anycast and the unicast addresses are
  // the server's own: no client may relay to them except to a live relay port.
  ASSERT_NE(s->own, nullptr);
  for (const char* own : {"203.0.113.7:3478", "[2001:db8::7]:9641", "198.51.100.1:22", "[2001:db8:a::1]:53",
                          "192.0.2.10:3478", "[2001:db8::10]:80"}) {
    EXPECT_TRUE(s->own->contains(ep(own))) << own;
  }
  EXPECT_FALSE(s->own->contains(ep("203.0.113.8:3478")));
  EXPECT_EQ(fleet_addresses(cfg).size(), 6u);
}

TEST(app, single_node_has_no_fleet_state_and_enforces_expiry) {
  const auto s = make_shared_state(test_config());
  EXPECT_TRUE(s->external_ips.empty());
  EXPECT_TRUE(s->anycast_ips.empty());
  EXPECT_TRUE(s->unicast_ips.empty());
  EXPECT_TRUE(s->alternate_domain.empty());
  EXPECT_TRUE(s->enforce_expiry);  // auth.enforce_expiry defaults on
  EXPECT_TRUE(fleet_addresses(test_config()).empty());
}

// peers.allow opens an address explicitly: the operator's allow wins, for a
// fleet address as for a listener.
TEST(app, fleet_addresses_that_peers_allow_opens_are_not_guarded) {
  config::server_config cfg = test_config();
  cfg.fleet.anycast_ips = {ep("198.51.100.1")};
  cfg.fleet.unicast_ips = {ep("192.0.2.10")};
  cfg.peers.allow.push_back(*auth::cidr::parse("198.51.100.0/24"));
  const auto s = make_shared_state(cfg);
  EXPECT_FALSE(s->own->contains(ep("198.51.100.1:3478")));
  EXPECT_TRUE(s->own->contains(ep("192.0.2.10:3478")));
}

TEST(app, an_external_ip_that_maps_no_relay_address_fails_start_up) {
  config::server_config cfg = test_config();
  cfg.relay.ips = {ep("127.0.0.1"), ep("127.0.0.2")};
  config::external_ip e;
  e.public_ip = ep("203.0.113.7");  // two IPv4 relay addresses: which one?
  cfg.relay.external_ips = {e};
  EXPECT_THROW(make_shared_state(cfg), std::runtime_error);
}

TEST(app, node_id_is_configured_or_the_host_name) {
  config::fleet_config fleet;
  fleet.node_id = "eu-1";
  EXPECT_EQ(node_id_of(fleet), "eu-1");
  fleet.node_id.clear();
  const std::string id = node_id_of(fleet);
  ASSERT_FALSE(id.empty());
  EXPECT_LE(id.size(), config::max_node_id_bytes);
  for (char c : id) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') << id;
  }
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  if (std::string(host).size() <= config::max_node_id_bytes) {
    EXPECT_EQ(id, std::string(host));
  }
}

}  // namespace
}  // namespace anyturn::app
