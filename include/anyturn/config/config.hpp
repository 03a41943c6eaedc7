// anyturn::config — the server's configuration.
//
// Config goes one way: YAML -> typed structs (defaults live only here) ->
// validate() (every error at once, each naming its key path) -> an immutable
// snapshot handed to the workers through their constructors. No globals.
#pragma once

#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::config {

inline constexpr std::size_t max_relay_ips = 64;

// relay.external_ips / --external-ip PUBLIC[/PRIVATE]: behind 1:1 NAT the
// relay socket binds PRIVATE (one of relay.ips) and XOR-RELAYED-ADDRESS
// carries PUBLIC. Without PRIVATE, the only relay address of PUBLIC's family.
struct external_ip {
  stun::endpoint public_ip;                // port 0
  std::optional<stun::endpoint> private_ip;  // port 0; nullopt: the only relay IP of the family
};

struct relay_config {
  // Relay addresses (port ignored). Several of one family add capacity: each
  // has the whole port range, and allocations spread over them.
  std::vector<stun::endpoint> ips;
  std::vector<external_ip> external_ips;  // relay.external_ips
  std::uint16_t port_min = 49152;
  std::uint16_t port_max = 65535;
  bool ips_auto = false;                  // "auto" was given: ips holds the detected IPv4
  // relay.tcp: TCP relay allocations (RFC 6062, REQUESTED-TRANSPORT TCP)
  // are offered; false (--no-tcp-relay): an Allocate asking for one gets 442.
  bool tcp = true;
};

struct lifetime_config {
  std::uint32_t allocation_default = 600;   // RFC 8656 §3.9
  std::uint32_t allocation_max = 3600;
  std::uint32_t permission = 300;           // RFC 8656 §9
  std::uint32_t channel = 600;              // RFC 8656 §12
  std::uint32_t nonce = 600;                // stale after this: 438
};

struct auth_config {
  std::string realm = "anyturn";
  std::vector<auth::static_user> users;
  // REST secrets of the default tenant; [0] signs what the API issues. Empty:
  // the server reads, or at first start generates, state_dir/rest-secret.
  std::vector<std::string> rest_secrets;
  // HMAC keys of the stateless nonces (auth.nonce_keys, or auth.nonce_key for
  // one). [0] mints; the rest are retired keys, still recognised (438).
  // Empty: state_dir/nonce-key, read or generated at first start (one node;
  // a fleet must configure a shared key).
  std::vector<std::string> nonce_keys;
  std::uint32_t nonce_max_skew = 60;        // seconds a nonce may be dated ahead (fleet clocks)
  bool offer_sha256 = true;                 // PASSWORD-ALGORITHMS in 401s
  // Credentials-API bearer keys of the default tenant (auth.api_keys / --api-key).
  std::vector<std::string> api_keys;
  // auth.enforce_expiry: an allocation made with a REST credential never
  // outlives the credential (Allocate/Refresh grant at most the time left;
  // at the expiry it ends, reason credential_expired).
  bool enforce_expiry = true;
  // Not a config key: the internal secret that signs this node's own probe
  // credentials ("<expiry>:anyturn-probe", GET /probe). Drawn at start-up
  // (app::new_probe_secret), kept across reloads, never loaded or logged.
  std::string probe_secret;
};

struct peer_config {
  std::vector<auth::cidr> allow;
  std::vector<auth::cidr> deny;
};

// PROXY protocol (v1 and v2) on one stream listener: a `listen` or
// `tls.listen` entry written as a map {address, proxy_protocol, trusted}
// (--proxy-protocol, --proxy-trusted). Streams only: the UDP socket of a
// `listen` address is unaffected. docs/configuration.md, "Behind a TCP load
// balancer (PROXY protocol)".
struct proxy_protocol_config {
  bool enabled = false;              // proxy_protocol: every connection starts with a header
  std::vector<auth::cidr> trusted;   // source ranges allowed to send one; required when enabled
  friend bool operator==(const proxy_protocol_config&, const proxy_protocol_config&) = default;
};

// TLS listeners and their certificate (RFC 8656 §3.1 TURN over TLS).
struct tls_config {
  std::vector<stun::endpoint> listen;  // "tls.listen" / --tls-listen
  // PROXY protocol per entry of `listen`, by index (shorter: the rest have none).
  std::vector<proxy_protocol_config> listen_proxy;
  std::string cert;                    // PEM chain file, leaf first; empty: self-signed (development)
  std::string key;                     // PEM private key file; set together with cert
};

// DTLS 1.2 listeners (TURN over DTLS, RFC 8656 §3.1) on UDP. They use the
// TLS certificate (tls.cert / tls.key or the development one) and count
// their sessions against streams.max_connections(_per_ip).
struct dtls_config {
  std::vector<stun::endpoint> listen;  // "dtls.listen" / --dtls-listen
  std::uint32_t handshake_timeout = 10;  // seconds from a returned cookie to a finished handshake
  std::uint32_t idle_timeout = 900;      // seconds without a datagram from the client: closed
};

// Protections of the stream transports (TCP and TLS). Each violation is
// counted and logged (rate-limited).
struct stream_config {
  bool tcp = true;                             // TCP on every `listen` address (same port as UDP)
  std::uint32_t max_connections = 65536;       // TCP+TLS connections in total; 0 = no limit
  std::uint32_t max_connections_per_ip = 256;  // per IPv4 address / IPv6 /64; 0 = no limit
  std::uint32_t tls_handshake_timeout = 10;    // seconds from accept to a finished handshake
  std::uint32_t idle_timeout = 30;             // seconds a connection may hold no allocation
  std::uint32_t max_message_size = 65552;      // bytes of one framed message; longer: close
  std::uint32_t write_queue_size = 262144;     // bytes queued toward one client; more: dropped
  // Seconds from accept until a connection must have delivered one complete
  // STUN message; otherwise it is closed (TLS: the handshake counts in it).
  std::uint32_t first_message_timeout_s = 10;
  // Bytes all connections that have not authenticated yet may hold together
  // (buffers and fixed per-connection costs), across workers. Past it, new
  // connections are refused and a growing one is closed. 0 = no limit.
  std::uint64_t unauthenticated_memory = 64ull << 20;
};

// The side HTTP server: /metrics, /healthz, /readyz and the credentials API
// (docs/metrics.md, docs/credentials-api.md). It runs on its own thread,
// never on a relay worker.
// http.probe_credentials[]: what /probe authenticates with at a target of
// http.probe_targets: a long-term user (username, password) or a REST
// secret (secret: the probe mints "<expiry>:anyturn-probe" for 60 s).
struct probe_credential {
  std::string target;  // "host:port", one of http.probe_targets
  std::string username;
  std::string password;
  std::string secret;
  friend bool operator==(const probe_credential&, const probe_credential&) = default;
};

// http.probe_*: GET /probe?target=URL (docs/probe.md).
struct http_probe_config {
  std::uint32_t max_concurrent = 2;  // http.probe_max_concurrent: probes at once; more: 429
  std::uint32_t max_count = 50;      // http.probe_max_count: packets each way, at most
  std::uint32_t timeout = 5;         // http.probe_timeout: seconds per probe (1..30)
  std::string ca;                    // http.probe_ca: PEM bundle for turns: targets; empty: system store
  // http.probe_targets: "host:port" targets allowed besides this node's own
  // listeners.
  std::vector<std::string> targets;
  std::vector<probe_credential> credentials;  // http.probe_credentials
  friend bool operator==(const http_probe_config&, const http_probe_config&) = default;
};
inline constexpr std::uint32_t max_probe_timeout = 30;
inline constexpr std::uint32_t max_probe_concurrent = 64;
inline constexpr std::uint32_t max_probe_count = 1000;  // probe::max_count

struct http_config {
  bool enabled = true;
  stun::endpoint listen = stun::endpoint::v4(0x7F000001u, 9641);  // "http.listen" / --http-listen
  std::string tls_cert;                 // PEM chain; set with tls_key: HTTPS only
  std::string tls_key;
  std::uint32_t max_ttl = 86400;        // seconds; longer requested credentials are capped
  std::uint32_t default_ttl = 3600;     // seconds; when a request names none
  // The URLs handed to clients (RFC 7064/7065), verbatim: the public names
  // of this node or of the fleet. Both empty: derived from the listeners and
  // the relay address at start-up (and logged).
  std::vector<std::string> stun_urls;   // "stun:turn.example.com:3478"
  std::vector<std::string> turn_urls;   // "turn:...?transport=udp", "turns:...?transport=tcp"
  // http.admin_keys / --admin-key: bearer keys of /admin/* (drain, undrain,
  // ...). Separate from every tenant's API keys. Empty: /admin/* answers 401.
  std::vector<std::string> admin_keys;
  // http.test_page / --test-page: serve the browser self-test page /test,
  // POST /test/credentials and POST /admin/test-link (docs/probe.md). Off:
  // those routes answer 404.
  bool test_page = false;
  // GET /probe (docs/probe.md), behind the admin key.
  http_probe_config probe;
};

// fleet.*: this node as a member of a fleet (docs/fleet.md). Everything off
// by default: a node without these keys behaves as a single node.
struct fleet_config {
  // fleet.anycast_ips / --anycast-ip: addresses shared with the rest of the
  // fleet (port 0). An authenticated Allocate that arrives on one gets 300
  // Try Alternate to this node's unicast address of the same family.
  std::vector<stun::endpoint> anycast_ips;
  // fleet.unicast_ips / --unicast-ip: this node's own addresses, at most one
  // per family (port 0). Required when anycast_ips is set.
  std::vector<stun::endpoint> unicast_ips;
  // fleet.alternate_domain / --alternate-domain: ALTERNATE-DOMAIN sent with
  // a 300 over TLS (RFC 8489 §14.16), the name on this node's certificate.
  std::string alternate_domain;
  // fleet.node_id / --node-id: this node's id in the fleet directory.
  // Empty: the hostname (resolved at start-up).
  std::string node_id;
  // fleet.redis / --redis: redis://[:password@]host:port/db or rediss://.
  // Empty: no fleet state (directory, fleet revocations, fleet quotas).
  std::string redis;
  // fleet.drain_alternate / --drain-alternate ADDR:PORT: where a draining
  // node sends new Allocates when the directory offers no node.
  std::optional<stun::endpoint> drain_alternate;
  // fleet.drain_timeout / --drain-timeout: seconds a drain waits for the
  // last allocation before the process exits anyway.
  std::uint32_t drain_timeout = 3600;
};

inline constexpr std::uint32_t max_drain_timeout = 7 * 86400;
inline constexpr std::size_t max_node_id_bytes = 64;  // fleet.node_id: [A-Za-z0-9._-]

// limits.allocation: what one allocation may hold and send. Copied into each
// allocation at Allocate (a change needs new allocations to apply).
struct allocation_limits_config {
  std::uint32_t max_peers = 64;                 // peer IPs with a permission; beyond: 508
  std::uint32_t max_channels = 64;              // channels (bound or cooling down); beyond: 508
  std::uint32_t permissions_per_second = 10;    // new permissions a second; beyond: 508. 0 = no limit
  std::uint32_t permission_burst = 32;          // new permissions at once (the bucket's size)
  std::uint32_t packets_per_second = 20000;     // each direction; beyond: dropped. 0 = no limit
  std::uint64_t bytes_per_second = 12'500'000;  // each direction (100 Mbit/s); beyond: dropped. 0 = no limit
};

// tenants[].limits.allocation: the keys a tenant sets replace the global
// ones; unset keys inherit limits.allocation.
struct allocation_limits_override {
  std::optional<std::uint32_t> max_peers;
  std::optional<std::uint32_t> max_channels;
  std::optional<std::uint32_t> permissions_per_second;
  std::optional<std::uint32_t> permission_burst;
  std::optional<std::uint32_t> packets_per_second;
  std::optional<std::uint64_t> bytes_per_second;

  // `base` with the keys set here replaced.
  [[nodiscard]] allocation_limits_config over(allocation_limits_config base) const {
    if (max_peers) base.max_peers = *max_peers;
    if (max_channels) base.max_channels = *max_channels;
    if (permissions_per_second) base.permissions_per_second = *permissions_per_second;
    if (permission_burst) base.permission_burst = *permission_burst;
    if (packets_per_second) base.packets_per_second = *packets_per_second;
    if (bytes_per_second) base.bytes_per_second = *bytes_per_second;
    return base;
  }
};

// Bounds the validator enforces on limits.allocation.
inline constexpr std::uint32_t max_peers_limit = 65536;
inline constexpr std::uint32_t max_channels_limit = 0x7FFF - 0x4000 + 1;  // every channel number
inline constexpr std::uint64_t min_allocation_bytes_per_second = 65536;  // the largest datagram passes
inline constexpr std::uint64_t max_allocation_bytes_per_second = 1'000'000'000'000;

// One customer of the service: its own credentials, API keys and quotas.
// Its allocations are found in O(1) from the username (a static user it
// lists, or a REST username "<expiry>:<id>:<user>").
struct tenant_config {
  std::string id;                          // [A-Za-z0-9._-], 1..64, unique, not "default"
  std::vector<auth::static_user> users;    // names unique across every tenant
  std::vector<std::string> secrets;        // REST secrets; [0] signs what the API issues
  std::vector<std::string> api_keys;       // bearer keys of the credentials API
  std::uint32_t max_allocations = 0;       // concurrent, whole node; beyond: 486. 0 = none
  std::uint32_t max_allocations_per_user = 0;  // 0: limits.max_allocations_per_user
  std::uint64_t bandwidth = 0;             // bytes per second per allocation, both directions
  allocation_limits_override allocation_limits;  // tenants[].limits.allocation
};

// Bounds the validator enforces on tenants, secrets and API keys.
inline constexpr std::size_t min_api_key_bytes = 16;
inline constexpr std::size_t min_secret_bytes = 16;       // REST secrets and nonce keys
inline constexpr std::uint32_t max_nonce_skew = 3600;
inline constexpr std::size_t max_tenant_id_bytes = 64;

// Bounds the validator enforces on stream_config.
inline constexpr std::uint32_t min_stream_message_size = 548;
inline constexpr std::uint32_t max_stream_message_size = 20 + 65532;  // the largest STUN message
inline constexpr std::uint32_t min_write_queue_size = 8192;
inline constexpr std::uint64_t min_unauthenticated_memory = 1ull << 20;  // or 0: no limit
inline constexpr std::uint32_t max_first_message_timeout_s = 3600;
inline constexpr std::uint32_t max_udp_coalesce_us = 1000;
inline constexpr std::uint32_t max_udp_busy_poll_us = 1000;

// limits.unauthenticated_per_source: unsigned answers (401, 438, 400, 420:
// everything sent before a client proved its key) per UDP source address
// (IPv4 address, IPv6 /64), per worker. Past it the request is dropped
// unanswered (anyturn_dropped_packets_total{reason="unauth_rate"}).
struct unauthenticated_limit {
  std::uint32_t rate = 20;   // answers a second; 0 = no limit
  std::uint32_t burst = 50;  // answers at once
};

// limits.auth_failures: failed authentications (unknown user, wrong
// MESSAGE-INTEGRITY) per source address (IPv4, IPv6 /64) and per static
// user, each per worker. Past either, requests are dropped before any key
// is tried (anyturn_dropped_packets_total{reason="auth_fail_rate"}).
struct auth_failure_limit {
  std::uint32_t per_source_per_minute = 12;  // 0 = no per-source limit
  std::uint32_t per_source_burst = 10;
  std::uint32_t per_user_per_minute = 60;    // 0 = no per-user limit
  std::uint32_t per_user_burst = 30;
};

// Bounds the validator enforces on the abuse limits.
inline constexpr std::uint32_t max_limit_rate = 1'000'000;
inline constexpr std::uint32_t max_limit_burst = 1'000'000;

// reload.*: what a config reload (SIGHUP, POST /admin/reload) does to live
// allocations (docs/configuration.md, "Reloading the configuration").
struct reload_config {
  // A user, REST secret or tenant the reloaded file no longer has (or a
  // changed password) ends the allocations made with it (reason "reloaded").
  bool revoke_removed = true;
};

// stun.* / --other-ip: RFC 5780 NAT behaviour discovery. other_ip is a
// second address of this host (port 0): every UDP listener A:P of its
// family also listens on A:P+1, OTHER:P and OTHER:P+1 (Binding only), and
// Binding answers OTHER-ADDRESS, RESPONSE-ORIGIN and CHANGE-REQUEST.
struct stun_config {
  std::optional<stun::endpoint> other_ip;  // "stun.other_ip" / --other-ip
};

// xdp.* / --xdp, --xdp-mode: the kernel fast path (docs/xdp.md), off while
// `interfaces` is empty. Restart-only: a reload keeps the running values.
struct xdp_config {
  std::vector<std::string> interfaces;     // xdp.interfaces / --xdp IFACE (repeatable)
  std::string mode = "auto";               // xdp.mode / --xdp-mode: native | generic | auto
  std::uint32_t max_channels = 65'536;     // xdp.max_channels: entries of each channel map
  std::uint32_t max_allocations = 16'384;  // xdp.max_allocations: entries of the allocation map
  friend bool operator==(const xdp_config&, const xdp_config&) = default;
};
inline constexpr std::uint32_t max_xdp_map_entries = 4'194'304;  // xdp.max_channels/max_allocations
inline constexpr std::size_t max_interface_name = 15;              // IFNAMSIZ - 1

struct server_config {
  std::vector<stun::endpoint> listen;       // UDP listeners, and TCP unless streams.tcp is off
  // PROXY protocol on the TCP listener of each `listen` entry, by index
  // (shorter: the rest have none).
  std::vector<proxy_protocol_config> listen_proxy;
  relay_config relay;
  lifetime_config lifetimes;
  auth_config auth;
  peer_config peers;
  unsigned threads = 0;                     // 0: one per core
  std::string log_level = "info";
  // log.format / --log-format: "text" (one line for a terminal) or "json"
  // (one JSON object per line, docs/logging.md).
  std::string log_format = "text";
  std::string software = "anyturn";         // SOFTWARE attribute; empty: none
  std::uint32_t max_allocations_per_worker = 200000;  // beyond: 508 Insufficient Capacity
  std::uint32_t max_allocations_per_user = 100;       // 0 = no limit; beyond: 486
  // limits.max_allocations: concurrent allocations of the default tenant
  // (auth.*) on this node, all workers; beyond: 486. 0 = no limit.
  std::uint32_t max_allocations = 50000;
  allocation_limits_config allocation_limits;         // limits.allocation
  std::uint32_t udp_socket_buffer = 4 * 1024 * 1024;  // SO_RCVBUF/SO_SNDBUF for listeners
  // Wake-up coalescing window of the UDP loop, microseconds; 0 = off.
  std::uint32_t udp_coalesce_us = 0;
  bool udp_gso = true;  // UDP GSO for runs of equal-size datagrams to one destination
  bool udp_gro = false;  // UDP GRO (coalesced receive) on listeners and relay sockets
  std::uint32_t udp_busy_poll_us = 20;  // busy polling after a busy round; 0 = off
  unauthenticated_limit unauthenticated_per_source;  // limits.unauthenticated_per_source
  auth_failure_limit auth_failures;                  // limits.auth_failures
  tls_config tls;
  dtls_config dtls;
  stream_config streams;
  // Where the server keeps state it creates itself (the development TLS
  // certificate). Empty: $XDG_STATE_HOME/anyturn, else ~/.local/state/anyturn,
  // else ./var/anyturn (resolved by app at start-up).
  std::string state_dir;
  http_config http;
  fleet_config fleet;
  // Tenants besides the default one (auth.users, auth.secrets,
  // auth.api_keys and the flags). auth::tenant_index k+1 is tenants[k].
  std::vector<tenant_config> tenants;
  // One JSON line per ended allocation, appended; reopened on SIGHUP.
  // Empty: no usage records.
  std::string usage_log;
  reload_config reload;  // reload.*
  xdp_config xdp;        // xdp.*
  // Last: the member's name hides namespace anyturn::stun inside this struct.
  stun_config stun;  // stun.*
};

// Parses a YAML document. On failure returns nullopt and appends one message
// per problem ("relay.ports: expected LOW-HIGH, got '5-1'") to `errors`.
std::optional<server_config> load_yaml(const std::string& yaml_text, std::vector<std::string>& errors);
std::optional<server_config> load_file(const std::string& path, std::vector<std::string>& errors);

// Cross-field checks on a complete config (after flags are applied).
// Appends every problem to `errors`; returns true when there are none.
bool validate(const server_config& cfg, std::vector<std::string>& errors);

// relay.external_ips with every PRIVATE filled in: an entry without one maps
// the only relay address of its family. Entries validate() refuses (no such
// relay address, families differ, none or several of the family) are left out.
std::vector<external_ip> resolve_external_ips(const relay_config& relay);

// Built-in defaults used when no --config is given: UDP/TCP on 0.0.0.0:3478,
// no TLS listener, relay on the first non-loopback IPv4 address, realm
// "anyturn".
server_config defaults();

// Non-fatal remarks on a valid config, for the operator's log (e.g. the relay
// address fell back to loopback, or the nonce key is random per process).
std::vector<std::string> warnings(const server_config& cfg);

// Log levels accepted by `log_level` / --log-level (spdlog's names).
bool is_known_log_level(std::string_view level);

// ---- relay address auto-detection ("auto" in relay.ips) ----

struct interface_address {
  std::string name;        // e.g. "eth0"
  bool up = false;         // IFF_UP
  bool loopback = false;   // IFF_LOOPBACK
  stun::endpoint address;  // port 0
};

// The host's interface addresses (getifaddrs), in the kernel's order.
std::vector<interface_address> host_interface_addresses();
// The first interface address that is up, not loopback, IPv4, and neither
// unspecified, loopback nor link-local (169.254/16). nullopt if none.
std::optional<stun::endpoint> pick_relay_ipv4(const std::vector<interface_address>& addrs);
// pick_relay_ipv4(host_interface_addresses()), else 127.0.0.1 (local runs
// only: remote clients cannot reach a loopback relay; warnings() says so).
stun::endpoint auto_relay_ip();

}  // namespace anyturn::config
