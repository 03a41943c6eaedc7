// anyturn::probe — an end-to-end check of a STUN or TURN service, the way a
// WebRTC client uses it (docs/probe.md).
//
// One probe takes one iceServers URL. For turn: and turns: it resolves the
// host, connects (verifying the certificate for turns:), authenticates
// through the 401 challenge, makes two allocations, lets each reach the
// other's relayed address (permission and channel), sends packets both ways
// relay to relay, refreshes and deletes. For stun: it sends one Binding.
// Every phase is timed and the first one that fails ends the probe with a
// message that names it ("allocate: 441 Wrong Credentials").
//
// It speaks plain sockets (poll and OpenSSL), blocks the calling thread and
// never throws: `anyturn probe` calls it on the main thread, the side
// server's /probe on a probe thread of its own. It works against any TURN
// server, not only anyturn.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::probe {

// ---- targets: iceServers URLs (RFC 7064, RFC 7065) ----
enum class scheme { stun, turn, turns };
enum class transport { udp, tcp };

struct target {
  scheme kind = scheme::turn;
  std::string host;            // a name, or an IP literal (IPv6 without brackets)
  std::uint16_t port = 3478;   // default 3478, 5349 for turns:
  transport proto = transport::udp;  // turns: is always tcp; stun: udp
  std::string url;             // as given, for reports
};

// Parses "stun:host[:port]", "turn:host[:port][?transport=udp|tcp]" or
// "turns:host[:port][?transport=tcp]" (IPv6 literals in brackets). On
// failure returns nullopt and sets `error` ("turns: only transport=tcp").
std::optional<target> parse_url(std::string_view url, std::string& error);

// ---- what to probe with ----
struct credentials {
  std::string username;
  std::string password;
};

// REST credentials (draft-uberti-behave-turn-rest): the username
// "<now + ttl>:<user>" and the password base64(HMAC-SHA1(secret, username)).
credentials rest_credentials(std::string_view secret, std::string_view user,
                             std::uint32_t ttl_s, std::int64_t now_unix);

struct options {
  std::optional<credentials> auth;  // none: a turn(s): URL fails in allocate
  unsigned count = 10;                                 // packets each way
  std::chrono::milliseconds interval{20};              // between packets
  std::size_t size = 100;                              // payload bytes each
  std::chrono::milliseconds timeout{5000};             // the whole probe of one URL
  std::string ca_file;              // PEM bundle for turns:; empty: the system store
  bool insecure = false;            // turns: without certificate or name checks
};

// Bounds `anyturn probe` and /probe enforce on options.
inline constexpr unsigned max_count = 1000;
inline constexpr std::size_t min_size = 16;     // room for a sequence number and a timestamp
inline constexpr std::size_t max_size = 1200;

// ---- the report ----
enum class phase {
  resolve,     // A and AAAA
  connect,     // TCP connect (UDP: nothing to do, 0 s)
  tls,         // handshake, certificate and name
  binding,     // stun: only
  allocate,    // both allocations, 401 challenge included
  permission,  // CreatePermission on both
  channel,     // ChannelBind on both
  relay,       // count packets each way
  refresh,     // Refresh on both
  deallocate,  // Refresh with LIFETIME 0 on both
};
std::string_view phase_name(phase p);  // "resolve", ..., "deallocate"

struct phase_result {
  phase which = phase::resolve;
  std::chrono::nanoseconds duration{0};
  bool ok = false;
  std::string error;  // empty when ok
};

struct rtt_summary {
  std::chrono::nanoseconds p50{0}, p99{0}, max{0};
};

struct report {
  std::string url;
  bool success = false;
  std::string error;                 // "<phase>: <cause>" of the failed phase; empty on success
  std::vector<phase_result> phases;  // in order, up to and including a failed one
  std::chrono::nanoseconds duration{0};
  std::vector<std::string> resolved;  // every address the name gave
  std::string server;                 // the address:port probed
  std::string software;               // the server's SOFTWARE, if it sent one
  std::string mapped;                 // XOR-MAPPED-ADDRESS of the first allocation (or Binding)
  std::vector<std::string> relayed;   // the two XOR-RELAYED-ADDRESSes
  unsigned sent = 0;                  // packets sent, both ways together (2 x count)
  unsigned received = 0;              // packets that arrived, both ways together
  double loss = 0;                    // 1 - received / sent; 0 when nothing was sent
  std::optional<rtt_summary> rtt;     // round trips client -> relay -> relay -> client
};

// Runs one probe. Blocks for at most about options::timeout; never throws.
report run(const target& t, const options& opts);

// Human-readable, several lines per URL; and one JSON object per URL.
std::string format_text(const report& r);
std::string format_json(const report& r);

}  // namespace anyturn::probe
