// The net layer's counters mapped to the anyturn metric set.
#include <anyturn/metrics/net_metrics.hpp>

#include "family_help.hpp"

#include <array>
#include <atomic>
#include <string_view>
#include <utility>

namespace anyturn::metrics {

namespace {

enum class nc : std::size_t {
#define ANYTURN_NET_COUNTER_ID(name, help) name,
  ANYTURN_NET_COUNTERS(ANYTURN_NET_COUNTER_ID)
#undef ANYTURN_NET_COUNTER_ID
  count_
};
constexpr std::size_t net_counter_count = static_cast<std::size_t>(nc::count_);

// One row per X-macro counter, in X-macro order (checked below).
constexpr std::array<net_counter_mapping, net_counter_count> net_mappings{{
    {"peer_truncated", "anyturn_dropped_packets_total", "reason", "peer_truncated"},
    {"receive_errors", "anyturn_receive_errors_total", {}, {}},
    {"connections_accepted", "anyturn_connections_total", "result", "accepted"},
    {"connections_refused_total", "anyturn_connections_total", "result", "refused_total_limit"},
    {"connections_refused_per_ip", "anyturn_connections_total", "result", "refused_per_ip_limit"},
    {"accept_errors", "anyturn_accept_errors_total", {}, {}},
    {"tls_handshakes", "anyturn_tls_handshakes_total", "result", "ok"},
    {"tls_handshake_failures", "anyturn_tls_handshakes_total", "result", "failed"},
    {"tls_handshake_timeouts", "anyturn_tls_handshakes_total", "result", "timeout"},
    {"idle_timeouts", "anyturn_connections_closed_total", "reason", "idle_timeout"},
    {"stream_framing_errors", "anyturn_connections_closed_total", "reason", "framing_error"},
    {"stream_too_large", "anyturn_connections_closed_total", "reason", "message_too_large"},
    {"stream_io_errors", "anyturn_connections_closed_total", "reason", "io_error"},
    {"first_message_timeouts", "anyturn_connections_closed_total", "reason", "first_message_timeout"},
    {"unauth_memory_closes", "anyturn_connections_closed_total", "reason", "unauth_memory"},
    {"stream_write_dropped", "anyturn_dropped_packets_total", "reason", "write_queue_full"},
    {"stream_write_dropped_bytes", "anyturn_stream_write_dropped_bytes_total", {}, {}},
    {"wakeups_socket", "anyturn_worker_wakeups_total", "cause", "socket"},
    {"wakeups_coalesced", "anyturn_worker_wakeups_total", "cause", "coalesce_window"},
    {"busy_poll_hits", "anyturn_worker_busy_polls_total", "result", "hit"},
    {"busy_poll_misses", "anyturn_worker_busy_polls_total", "result", "miss"},
    {"gso_messages", "anyturn_udp_gso_messages_total", {}, {}},
    {"gso_datagrams", "anyturn_udp_gso_datagrams_total", {}, {}},
    {"gro_messages", "anyturn_udp_gro_messages_total", {}, {}},
    {"gro_datagrams", "anyturn_udp_gro_datagrams_total", {}, {}},
    {"handed_off_out", "anyturn_worker_handoff_total", "direction", "out"},
    {"handed_off_in", "anyturn_worker_handoff_total", "direction", "in"},
    {"handoff_dropped", "anyturn_dropped_packets_total", "reason", "handoff_queue_full"},
    {"proxy_accepted", "anyturn_proxy_protocol_accepted_total", {}, {}},
    {"proxy_rejected_untrusted", "anyturn_proxy_protocol_rejected_total", "reason", "untrusted"},
    {"proxy_rejected_malformed", "anyturn_proxy_protocol_rejected_total", "reason", "malformed"},
    {"proxy_rejected_timeout", "anyturn_proxy_protocol_rejected_total", "reason", "timeout"},
    {"dtls_handshakes", "anyturn_dtls_handshakes_total", "result", "ok"},
    {"dtls_handshake_failures", "anyturn_dtls_handshakes_total", "result", "failed"},
    {"dtls_handshake_timeouts", "anyturn_dtls_handshakes_total", "result", "timeout"},
    {"dtls_cookies_sent", "anyturn_dtls_handshakes_total", "result", "cookie_sent"},
    {"dtls_bad_cookies", "anyturn_dtls_handshakes_total", "result", "bad_cookie"},
    {"dtls_refused_limit", "anyturn_dtls_handshakes_total", "result", "limit"},
    {"dtls_garbage", "anyturn_dropped_packets_total", "reason", "dtls_garbage"},
    {"dtls_idle_timeouts", "anyturn_dtls_sessions_closed_total", "reason", "idle_timeout"},
    {"dtls_session_errors", "anyturn_dtls_sessions_closed_total", "reason", "error"},
}};

constexpr std::array<std::string_view, net_counter_count> net_names{{
#define ANYTURN_NET_COUNTER_NAME(name, help) #name,
    ANYTURN_NET_COUNTERS(ANYTURN_NET_COUNTER_NAME)
#undef ANYTURN_NET_COUNTER_NAME
}};
constexpr bool net_mapping_names_match() {
  for (std::size_t i = 0; i < net_mappings.size(); ++i) {
    if (net_mappings[i].counter_name != net_names[i]) return false;
    if (net_mappings[i].family.empty()) return false;
  }
  return true;
}
static_assert(net_mapping_names_match(),
              "every ANYTURN_NET_COUNTERS entry needs one mapping row in net_mappings, in X-macro "
              "order, naming its Prometheus family (and docs/metrics.md a row)");

using net_member = std::atomic<std::uint64_t> net::net_counters::*;
constexpr std::array<net_member, net_counter_count> net_members{{
#define ANYTURN_NET_COUNTER_MEMBER(name, help) &net::net_counters::name,
    ANYTURN_NET_COUNTERS(ANYTURN_NET_COUNTER_MEMBER)
#undef ANYTURN_NET_COUNTER_MEMBER
}};

using detail::family_help;
constexpr family_help net_helps[] = {
    // Shared with turn_metrics; the first HELP seen wins, so keep them equal.
    {"anyturn_dropped_packets_total", "Packets dropped, by reason."},
    {"anyturn_receive_errors_total", "recvmmsg failures other than EAGAIN on UDP sockets."},
    {"anyturn_connections_total",
     "TCP and TLS connections accepted, or refused by streams.max_connections(_per_ip)."},
    {"anyturn_accept_errors_total", "accept() failures (descriptor limits, ...)."},
    {"anyturn_tls_handshakes_total", "TLS handshakes, by result."},
    {"anyturn_connections_closed_total",
     "TCP and TLS connections closed by the server, by reason (normal closes are not counted)."},
    {"anyturn_stream_write_dropped_bytes_total",
     "Bytes of messages to TCP/TLS clients dropped because the write queue was full."},
    {"anyturn_worker_wakeups_total",
     "Times a worker's UDP loop woke up: for a readable socket, or after a coalescing window."},
    {"anyturn_worker_busy_polls_total",
     "Busy polls after a busy round of a worker's UDP loop: hit = a datagram came, miss = it went to sleep."},
    {"anyturn_udp_gso_messages_total",
     "UDP GSO (UDP_SEGMENT) messages sent: runs of equal-size datagrams to one destination."},
    {"anyturn_udp_gso_datagrams_total", "Datagrams sent inside UDP GSO messages."},
    {"anyturn_udp_gro_messages_total",
     "Coalesced UDP GRO buffers received (limits.udp_gro): several datagrams of one flow at once."},
    {"anyturn_udp_gro_datagrams_total", "Datagrams received inside coalesced UDP GRO buffers."},
    {"anyturn_worker_handoff_total",
     "UDP datagrams passed between workers because another worker owns their allocation."},
    {"anyturn_proxy_protocol_accepted_total",
     "PROXY protocol headers accepted on proxy listeners (the client address taken from them)."},
    {"anyturn_proxy_protocol_rejected_total",
     "Connections to proxy listeners refused or closed: untrusted source, malformed header, timeout."},
    {"anyturn_dtls_handshakes_total",
     "DTLS handshakes by result: ok, failed, timeout, cookie_sent (HelloVerifyRequest), bad_cookie, limit."},
    {"anyturn_dtls_sessions_closed_total",
     "DTLS sessions closed by the server, by reason (normal closes are not counted)."},
};
constexpr std::string_view net_help_for(std::string_view family) { return detail::help_in(net_helps, family); }
constexpr bool every_net_family_has_help() {
  for (const auto& m : net_mappings) {
    if (net_help_for(m.family).empty()) return false;
  }
  return true;
}
static_assert(every_net_family_has_help(), "add a HELP text for each net family");

}  // namespace

std::span<const net_counter_mapping> net_counter_mappings() { return net_mappings; }

registry::collector net_metrics(std::vector<const net::net_counters*> workers) {
  return [workers = std::move(workers)](sink& s) {
    std::array<std::uint64_t, net_counter_count> totals{};
    std::uint64_t connections_open = 0;
    std::uint64_t relay_sockets_open = 0;
    std::uint64_t dtls_sessions_open = 0;
    std::uint64_t tcp_relay_peers_open = 0;
    for (const net::net_counters* w : workers) {
      if (w == nullptr) continue;
      for (std::size_t i = 0; i < net_members.size(); ++i) {
        totals[i] += (w->*net_members[i]).load(std::memory_order_relaxed);
      }
      connections_open += w->connections_open.load(std::memory_order_relaxed);
      relay_sockets_open += w->relay_sockets_open.load(std::memory_order_relaxed);
      dtls_sessions_open += w->dtls_sessions_open.load(std::memory_order_relaxed);
      tcp_relay_peers_open += w->tcp_relay_peers_open.load(std::memory_order_relaxed);
    }
    s.gauge("anyturn_connections_open", "TCP and TLS client connections open now.", {},
            connections_open);
    s.gauge("anyturn_dtls_sessions_open", "DTLS sessions open now (handshaking or established).", {},
            dtls_sessions_open);
    s.gauge("anyturn_relay_sockets_open", "Relay sockets open now (one per relayed address).", {},
            relay_sockets_open);
    s.gauge("anyturn_tcp_relay_peer_connections_open",
            "TCP relay (RFC 6062) peer connections open now, bound or waiting for ConnectionBind.", {},
            tcp_relay_peers_open);
    for (std::size_t i = 0; i < net_mappings.size(); ++i) {
      const auto& m = net_mappings[i];
      if (m.label_name.empty()) {
        s.counter(m.family, net_help_for(m.family), {}, totals[i]);
      } else {
        s.counter(m.family, net_help_for(m.family), {{m.label_name, m.label_value}}, totals[i]);
      }
    }
  };
}

}  // namespace anyturn::metrics
