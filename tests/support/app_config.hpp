// A small server config for the app module's tests: loopback listeners on
// ephemeral ports, one static user, a fixed nonce key, two workers, a
// temporary state directory.
#pragma once

#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/config/config.hpp>
#include <anyturn/stun/endpoint.hpp>

#include "temp_dir.hpp"

#include <string>

namespace anyturn::app::test {

inline stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text, true); }

// One state directory for the whole test process (the generated REST secret
// and nonce key land there, never in the home of whoever runs the tests);
// removed at exit.
inline const std::string& process_state_dir() {
  static const ::anyturn::test::temp_dir dir("anyturn-app-state");
  static const std::string path = dir.path().string();
  return path;
}

inline config::server_config test_config() {
  config::server_config cfg;
  cfg.state_dir = process_state_dir();
  cfg.listen = {ep("127.0.0.1:0")};
  cfg.relay.ips = {ep("127.0.0.1")};
  cfg.relay.port_min = 62000;
  cfg.relay.port_max = 62099;
  cfg.auth.realm = "test";
  auth::static_user u;
  u.name = "u";
  u.password = "p";
  cfg.auth.users = {u};
  cfg.auth.nonce_keys = {"0123456789abcdef0123"};
  cfg.peers.allow = {*auth::cidr::parse("127.0.0.0/8")};
  cfg.threads = 2;
  cfg.udp_socket_buffer = 256 * 1024;
  cfg.http.listen = ep("127.0.0.1:0");  // tests run in parallel: an ephemeral port
  return cfg;
}

}  // namespace anyturn::app::test
