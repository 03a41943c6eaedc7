// anyturn::http — GET /probe?target=URL[&transport=udp|tcp][&count=N], the
// blackbox_exporter-style probe endpoint (docs/probe.md).
//
// The route (api::probe_route in src/http/probe_route.cpp) checks the admin
// key and the query on the HTTP thread, then hands the probe to a
// probe_runner thread; the answer comes back to the connection's strand
// later (server.cpp's deferred response). These are its pure parts, for
// the unit tests.
#pragma once

#include <anyturn/http/server.hpp>
#include <anyturn/probe/probe.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::http {

struct probe_query {
  std::string target;                           // the URL, decoded
  std::optional<probe::transport> transport;    // overrides the URL's
  unsigned count = 10;                          // packets each way
};
inline constexpr unsigned default_probe_count = 10;
inline constexpr std::size_t probe_packet_size = 100;                    // bytes, fixed
inline constexpr std::chrono::milliseconds probe_interval{20};           // between packets
inline constexpr std::uint32_t probe_credential_ttl = 60;                // seconds
// The user part of the REST username minted for a target of
// http.probe_credentials given as {target, secret}: "<expiry>:probe". (Not
// "anyturn-probe": another anyturn node checks that form against its own
// internal secret only.)
inline constexpr std::string_view probe_rest_user = "probe";

// The query string: `target` once (required), `transport` udp|tcp, `count`
// 1..max_count (default 10, capped at max_count). Other parameters are
// ignored (Prometheus may add `module`). nullopt and a one-line reason in
// `error` when bad.
std::optional<probe_query> parse_probe_query(std::string_view query, unsigned max_count,
                                             std::string& error);
// The URL parsed (probe::parse_url) with the transport override applied;
// turns: takes only tcp, stun: only udp.
std::optional<probe::target> probe_target(const probe_query& q, std::string& error);

// "host:port" of a target as http.probe_targets writes it (IPv6 in brackets).
std::string target_authority(const probe::target& t);

// Whether `t`'s "host:port" is one of settings.targets (case-insensitive host).
bool listed_target(const probe::target& t, const probe_settings& settings);

// Whether `t` may be probed and with what: the credentials, or the one-line
// reason for a 400. A target is this node's own when every address its
// host resolved to (`resolved`) is an address of a listener of its kind
// (turn:?transport=udp and stun: a UDP listener, transport=tcp a TCP one,
// turns: a TLS one) with its port; a wildcard listener (0.0.0.0, ::) stands
// for the `interfaces` addresses of its family. Else it must be one of
// settings.targets, with settings.credentials for it.
struct target_decision {
  bool allowed = false;
  bool own = false;
  std::optional<probe::credentials> credentials;  // set when allowed (stun: none needed)
  std::string error;
};
target_decision decide_target(const probe::target& t, const probe_settings& settings,
                              std::span<const std::string> resolved,
                              std::span<const std::string> interfaces, std::int64_t now_unix);

// The Prometheus text exposition (version 0.0.4) of one report: probe_success,
// probe_duration_seconds, anyturn_probe_phase_duration_seconds{phase},
// anyturn_probe_rtt_seconds{quantile} and anyturn_probe_loss_ratio (when
// packets were sent), every family with HELP and TYPE: gauges, but the RTT
// quantiles a summary (promtool accepts a quantile label only there).
std::string probe_exposition(const probe::report& r);
inline constexpr std::string_view probe_content_type = "text/plain; version=0.0.4; charset=utf-8";

// The default resolver and interface list (getaddrinfo, getifaddrs).
std::vector<std::string> resolve_host(const std::string& host);
std::vector<std::string> host_interface_addresses();

// A bounded set of probe threads: each job gets a thread of its own (a
// probe blocks for seconds), at most `max` at once. Threads are detached
// and share only this object's state, so the owner may go away while one
// still runs; wait_idle() lets it wait for them first, with a limit.
class probe_runner {
 public:
  explicit probe_runner(unsigned max);
  // Starts `job` unless `max` jobs run already (false).
  bool try_run(std::function<void()> job);
  // Waits until no job runs, at most `limit`; whether none runs.
  bool wait_idle(std::chrono::steady_clock::duration limit);
  [[nodiscard]] unsigned running() const;

 private:
  struct state {
    mutable std::mutex mutex;
    std::condition_variable idle;
    unsigned running = 0;
  };
  std::shared_ptr<state> state_ = std::make_shared<state>();
  unsigned max_;
};

}  // namespace anyturn::http
