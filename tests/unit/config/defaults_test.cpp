// src/config/defaults.cpp: defaults(), is_known_log_level(), the relay
// address auto-detection ("auto" in relay.ips) and warnings().
#include <anyturn/config/config.hpp>

#include <gtest/gtest.h>

#include "config_files.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace anyturn::config {
namespace {

// ---------------------------------------------------------------- defaults

TEST(ConfigValidate, DefaultsValidateAsTheyAre) {
  server_config cfg = defaults();
  ASSERT_EQ(cfg.listen.size(), 1u);
  EXPECT_EQ(cfg.listen[0], ep("0.0.0.0:3478"));
  ASSERT_EQ(cfg.relay.ips.size(), 1u);
  EXPECT_TRUE(cfg.relay.ips[0].is_v4());
  EXPECT_TRUE(cfg.relay.ips_auto);
  EXPECT_EQ(cfg.auth.realm, "anyturn");
  EXPECT_TRUE(cfg.auth.rest_secrets.empty());  // generated at first start
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}

TEST(ConfigStreams, DefaultsServeTcpButNoTls) {
  const server_config cfg = defaults();
  EXPECT_TRUE(cfg.streams.tcp);
  EXPECT_TRUE(cfg.tls.listen.empty());
  EXPECT_EQ(cfg.streams.max_connections, 65536u);
  EXPECT_EQ(cfg.streams.max_connections_per_ip, 256u);
  EXPECT_EQ(cfg.streams.tls_handshake_timeout, 10u);
  EXPECT_EQ(cfg.streams.idle_timeout, 30u);
  EXPECT_EQ(cfg.streams.max_message_size, 65552u);
  EXPECT_EQ(cfg.streams.write_queue_size, 262144u);
  EXPECT_EQ(cfg.streams.first_message_timeout_s, 10u);
  EXPECT_EQ(cfg.streams.unauthenticated_memory, 64u << 20);
  EXPECT_TRUE(cfg.state_dir.empty());
}

TEST(SideConfig, DefaultsServeHttpOnLoopback9641WithoutTenants) {
  const server_config cfg = defaults();
  EXPECT_TRUE(cfg.http.enabled);
  EXPECT_EQ(cfg.http.listen, ep("127.0.0.1:9641"));
  EXPECT_EQ(cfg.http.max_ttl, 86400u);
  EXPECT_EQ(cfg.http.default_ttl, 3600u);
  EXPECT_TRUE(cfg.http.stun_urls.empty());
  EXPECT_TRUE(cfg.tenants.empty());
  EXPECT_TRUE(cfg.usage_log.empty());
  EXPECT_TRUE(cfg.auth.api_keys.empty());
}

TEST(ConfigValidate, KnownLogLevels) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_TRUE(is_known_log_level(level)) << level;
  }
  for (const char* level : {"", "INFO", "warning", "err", "fatal"}) {
    EXPECT_FALSE(is_known_log_level(level)) << level;
  }
}

// ---------------------------------------------------- relay auto-detection

interface_address iface(std::string name, bool up, bool loopback, std::string_view ip) {
  return {std::move(name), up, loopback, ep(ip)};
}

TEST(ConfigAutoRelay, PicksFirstUpNonLoopbackIpv4) {
  const std::vector<interface_address> addrs = {
      iface("lo", true, true, "127.0.0.1"),
      iface("eth0", true, false, "[2001:db8::5]"),
      iface("eth1", false, false, "192.0.2.9"),       // down
      iface("eth2", true, false, "169.254.10.1"),     // link-local
      iface("eth3", true, false, "0.0.0.0"),
      iface("eth4", true, false, "203.0.113.7"),
      iface("eth5", true, false, "198.51.100.1"),
  };
  auto ip = pick_relay_ipv4(addrs);
  ASSERT_TRUE(ip);
  EXPECT_TRUE(ip->same_ip(ep("203.0.113.7")));
  EXPECT_EQ(ip->port, 0);
}

TEST(ConfigAutoRelay, NoneFound) {
  EXPECT_FALSE(pick_relay_ipv4({}));
  EXPECT_FALSE(pick_relay_ipv4({iface("lo", true, true, "127.0.0.1"),
                                iface("eth0", true, false, "[2001:db8::5]")}));
}

TEST(ConfigAutoRelay, HostDetectionAgreesWithPick) {
  const auto addrs = host_interface_addresses();
  const auto picked = pick_relay_ipv4(addrs);
  const auto ip = auto_relay_ip();
  EXPECT_TRUE(ip.is_v4());
  if (picked) {
    EXPECT_EQ(ip, *picked);
  } else {
    EXPECT_EQ(ip, ep("127.0.0.1"));
  }
}

// ---------------------------------------------------------------- warnings

TEST(ConfigWarnings, LoopbackFallbackNonceKeyAndAllow) {
  server_config cfg = valid_config();
  cfg.relay.ips = {ep("127.0.0.1")};
  cfg.relay.ips_auto = true;
  cfg.peers.allow = {*auth::cidr::parse("10.0.0.0/8")};
  const auto w = warnings(cfg);
  EXPECT_TRUE(has_error(w, "relay.ips: 'auto' found no up, non-loopback IPv4 address")) << dump(w);
  EXPECT_TRUE(has_error(w, "auth.nonce_keys is empty")) << dump(w);
  EXPECT_TRUE(has_error(w, "peers.allow: clients may relay to 10.0.0.0/8")) << dump(w);
  EXPECT_TRUE(has_error(w, "auth.secrets is empty: the server uses a random REST secret")) << dump(w);
  EXPECT_EQ(w.size(), 4u) << dump(w);

  cfg.relay.ips_auto = false;
  cfg.peers.allow.clear();
  cfg.auth.nonce_keys = {"0123456789abcdef"};
  cfg.auth.rest_secrets = {"a-rest-secret-of-32-characters.."};
  EXPECT_TRUE(warnings(cfg).empty()) << dump(warnings(cfg));
}

TEST(SideConfig, WarnsAboutKeysOverCleartextAndOffApi) {
  server_config cfg = valid_config();
  cfg.auth.rest_secrets = {"a-rest-secret-0123456789"};
  cfg.auth.api_keys = {"0123456789abcdef"};
  cfg.http.listen = ep("0.0.0.0:9641");
  auto w = warnings(cfg);
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
    return s.find("is not a loopback address and http.tls is not set") != std::string::npos;
  }));
  cfg.http.enabled = false;
  w = warnings(cfg);
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
    return s.find("the credentials API is off") != std::string::npos;
  }));
}

// Hole 1.7 of issue 12: the default quotas were unlimited.
TEST(ConfigValidate, DefaultQuotasAndAllocationLimitsAreFinite) {
  const server_config cfg = defaults();
  EXPECT_EQ(cfg.max_allocations_per_user, 100u);
  EXPECT_EQ(cfg.max_allocations, 50000u);
  EXPECT_EQ(cfg.allocation_limits.max_peers, 64u);
  EXPECT_EQ(cfg.allocation_limits.max_channels, 64u);
  EXPECT_EQ(cfg.allocation_limits.permissions_per_second, 10u);
  EXPECT_EQ(cfg.allocation_limits.permission_burst, 32u);
  EXPECT_EQ(cfg.allocation_limits.packets_per_second, 20000u);
  EXPECT_EQ(cfg.allocation_limits.bytes_per_second, 12'500'000u);
}


TEST(FleetConfig, WarnsAboutAddressesNoListenerServesAndAnUnsentDomain) {
  const auto has = [](const std::vector<std::string>& w, const std::string& needle) {
    return std::any_of(w.begin(), w.end(),
                       [&](const std::string& s) { return s.find(needle) != std::string::npos; });
  };
  server_config cfg = valid_config();
  cfg.listen = {ep("192.0.2.10:3478")};
  cfg.fleet.anycast_ips = {ep("198.51.100.1")};
  cfg.fleet.unicast_ips = {ep("192.0.2.10")};
  auto w = warnings(cfg);
  EXPECT_TRUE(has(w, "fleet.anycast_ips: no listener (listen, tls.listen) receives on 198.51.100.1"));
  EXPECT_FALSE(has(w, "fleet.unicast_ips"));

  cfg.listen = {ep("0.0.0.0:3478")};  // the wildcard receives on both
  cfg.fleet.alternate_domain = "turn-1.example.com";
  w = warnings(cfg);
  EXPECT_FALSE(has(w, "no listener"));
  EXPECT_TRUE(has(w, "fleet.alternate_domain is set but never sent")) << "no TLS listener";
  EXPECT_TRUE(has(w, "and tls.listen is empty"));

  cfg.tls.listen = {ep("0.0.0.0:5349")};
  w = warnings(cfg);
  EXPECT_FALSE(has(w, "fleet.alternate_domain"));
  cfg.fleet.alternate_domain.clear();
  w = warnings(cfg);
  EXPECT_TRUE(has(w, "fleet.alternate_domain is not set: TLS clients redirected"));

  cfg.fleet.anycast_ips.clear();
  cfg.fleet.alternate_domain = "turn-1.example.com";
  w = warnings(cfg);
  EXPECT_TRUE(has(w, "and fleet.anycast_ips is empty"));

  cfg = valid_config();
  cfg.listen = {ep("[::]:3478")};  // an IPv6 wildcard takes IPv4 too (dual-stack)
  cfg.fleet.unicast_ips = {ep("192.0.2.10")};
  EXPECT_FALSE(has(warnings(cfg), "no listener"));
  cfg.listen = {ep("127.0.0.1:3478")};
  EXPECT_TRUE(has(warnings(cfg), "fleet.unicast_ips: no listener (listen, tls.listen) receives on 192.0.2.10"));
}

TEST(FleetConfig, WarnsAboutAdminKeysOverCleartextAndOffHttp) {
  server_config cfg = valid_config();
  cfg.http.admin_keys = {"admin-key-77e1c0d9b8a7f6e5"};
  cfg.http.listen = ep("0.0.0.0:9641");
  auto w = warnings(cfg);
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
    return s.find("is not a loopback address and http.tls is not set") != std::string::npos;
  }));
  cfg.http.enabled = false;
  w = warnings(cfg);
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
    return s.find("http.admin_keys are configured but http.enabled is false") != std::string::npos;
  }));
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

TEST(TestPage, WarnsWhenNobodyCanGetALink) {
  server_config cfg = valid_config();
  cfg.http.test_page = true;
  auto w = warnings(cfg);
  const auto warned = [&] {
    return std::any_of(w.begin(), w.end(), [](const std::string& s) {
      return s.find("http.test_page is on but neither http.admin_keys nor an API key is set") !=
             std::string::npos;
    });
  };
  EXPECT_TRUE(warned());
  cfg.http.admin_keys = {"admin-key-77e1c0d9b8a7f6e5"};
  w = warnings(cfg);
  EXPECT_FALSE(warned());
}

}  // namespace
}  // namespace anyturn::config
