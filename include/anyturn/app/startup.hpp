// anyturn::app — what start-up works out before any worker exists: the
// shared state, the thread count, the descriptor budget and limit, and the
// peer allowances worth a warning.
#pragma once

#include <anyturn/config/config.hpp>
#include <anyturn/turn/worker_core.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace anyturn::app {

// The immutable state every worker shares: credentials, nonce service (a
// per-process random key when auth.nonce_keys is empty, which only happens
// when provision_secrets did not run first), peer policy, one port pool per
// relay address, lifetimes and limits, and the fleet's part: the external
// (1:1 NAT) mappings, the anycast and unicast addresses, ALTERNATE-DOMAIN and
// auth.enforce_expiry (fleet_signals and the revocation board are app.cpp's).
// Throws std::runtime_error if no random key can be drawn, or if a
// relay.external_ips entry maps no relay address (validate() refuses that
// config; start-up only).
std::shared_ptr<turn::shared_state> make_shared_state(const config::server_config& cfg);

// The server's own addresses, refused as peers except on a live relay port
// (issue 12, hole 1.3): the relay addresses, every UDP/TCP and TLS listener
// and the HTTP listener (a wildcard listener stands for every address in
// `host`; an IPv6 wildcard for the IPv4 ones too), and `external` (the
// external and anycast addresses a fleet adds). Addresses that peers.allow
// opens explicitly are left out: the operator's allow wins (tests rely on it).
std::shared_ptr<const relay::own_addresses> own_addresses_of(
    const config::server_config& cfg, const std::vector<config::interface_address>& host,
    const auth::peer_policy& peers, const std::vector<turn::shared_state::relay_address>& relays,
    const std::vector<stun::endpoint>& external = {});

// The addresses a fleet adds to the server's own (for own_addresses_of's
// `external`): every relay.external_ips PUBLIC, fleet.anycast_ips and
// fleet.unicast_ips, port 0.
std::vector<stun::endpoint> fleet_addresses(const config::server_config& cfg);

// fleet.node_id, or else the host name (cut to 64 bytes, characters outside
// [A-Za-z0-9._-] replaced by '_'), or else "anyturn".
std::string node_id_of(const config::fleet_config& fleet);

// Worker threads for `configured` (0: one per core, at least one).
unsigned resolve_threads(unsigned configured);

// File descriptors the configuration can need at once: every relay port,
// every worker's listeners and event-loop descriptors, every stream
// connection (streams.max_connections), and some slack.
std::uint64_t required_descriptors(const config::server_config& cfg, unsigned threads);

struct fd_limit {
  std::uint64_t before = 0;  // soft limit found
  std::uint64_t after = 0;   // soft limit now
  std::uint64_t hard = 0;
  std::uint64_t needed = 0;
  [[nodiscard]] bool sufficient() const { return after >= needed; }
};
// Raises RLIMIT_NOFILE's soft limit to the hard limit (capped by
// fs.nr_open) and reports what it got.
fd_limit raise_fd_limit(std::uint64_t needed);

// peers.allow entries that open ranges the built-in policy refuses
// (loopback, private, link-local/metadata, ...), one remark each.
std::vector<std::string> risky_peer_allowances(const config::peer_config& peers);

// The kernel picks outgoing connections' local ports from
// net.ipv4.ip_local_port_range; a relay port it gave to another socket
// cannot be bound (EADDRINUSE) until that socket closes. Returns a warning
// when the relay range [low, high] overlaps the ephemeral range by ports
// that net.ipv4.ip_local_reserved_ports does not exclude; nullopt when it
// does not, or when the files cannot be read. The paths are parameters for
// tests.
std::optional<std::string> relay_range_overlap_warning(
    std::uint16_t low, std::uint16_t high,
    const std::string& ephemeral_path = "/proc/sys/net/ipv4/ip_local_port_range",
    const std::string& reserved_path = "/proc/sys/net/ipv4/ip_local_reserved_ports");

}  // namespace anyturn::app
