// anyturn::net — the counters only the net layer can see: connections, TLS,
// stream closes, UDP loop wake-ups, GSO, worker hand-off (the relay core's
// are relay::worker_counters).
//
// Each worker owns one `net_counters` and is its only writer; readers on
// other threads (the metrics scrape, the shutdown summary) load relaxed and
// sum across workers, as for relay::worker_counters. Plain atomics and an
// X-macro list, no Asio: metrics and app read them without linking the net
// layer's sockets.
#pragma once

#include <atomic>
#include <cstdint>

namespace anyturn::net {

// X(name, help)
#define ANYTURN_NET_COUNTERS(X)                                                                  \
  X(peer_truncated, "peer datagrams longer than datagram_size")                                  \
  X(receive_errors, "recvmmsg failures other than EAGAIN")                                       \
  X(connections_accepted, "TCP and TLS connections accepted")                                    \
  X(connections_refused_total, "connections refused: streams.max_connections reached")           \
  X(connections_refused_per_ip, "connections refused: streams.max_connections_per_ip reached")   \
  X(accept_errors, "accept() failures (descriptor limits, ...)")                                 \
  X(tls_handshakes, "TLS handshakes completed")                                                  \
  X(tls_handshake_failures, "TLS handshakes that failed (garbage, no common version, ...)")      \
  X(tls_handshake_timeouts, "TLS handshakes not done within streams.tls_handshake_timeout")      \
  X(idle_timeouts, "connections closed after streams.idle_timeout without an allocation")        \
  X(stream_framing_errors, "connections closed: bytes neither STUN nor ChannelData")             \
  X(stream_too_large, "connections closed: a message longer than streams.max_message_size")      \
  X(stream_io_errors, "connections closed by a socket error other than the client closing")      \
  X(first_message_timeouts, "connections closed: no complete STUN message within streams.first_message_timeout_s") \
  X(unauth_memory_closes, "connections refused or closed: streams.unauthenticated_memory spent")  \
  X(stream_write_dropped, "messages to stream clients dropped: write queue full")                \
  X(stream_write_dropped_bytes, "bytes of messages dropped for a full write queue")           \
  X(wakeups_socket, "UDP loop wake-ups by a readable socket or hand-off queue")                   \
  X(wakeups_coalesced, "UDP loop wake-ups after a coalescing window (limits.udp_coalesce_us)")    \
  X(busy_poll_hits, "busy polls after a busy round that found a datagram (limits.udp_busy_poll_us)") \
  X(busy_poll_misses, "busy polls that found nothing and went to sleep")                         \
  X(gso_messages, "UDP GSO messages sent (each carries several datagrams)")                       \
  X(gso_datagrams, "datagrams sent inside UDP GSO messages")                                      \
  X(gro_messages, "coalesced UDP GRO buffers received (each carries several datagrams)")          \
  X(gro_datagrams, "datagrams received inside coalesced UDP GRO buffers")                         \
  X(handed_off_out, "UDP datagrams passed to the worker that owns their allocation")            \
  X(handed_off_in, "UDP datagrams received from another worker for an allocation owned here")   \
  X(handoff_dropped, "UDP datagrams for another worker's allocation dropped: its queue was full or it stopped") \
  X(proxy_accepted, "PROXY protocol headers accepted on proxy listeners")                         \
  X(proxy_rejected_untrusted, "proxy listener connections refused: source not in trusted")        \
  X(proxy_rejected_malformed, "proxy listener connections closed: malformed PROXY header")        \
  X(proxy_rejected_timeout, "proxy listener connections closed: no PROXY header in time")       \
  X(dtls_handshakes, "DTLS handshakes completed")                                                 \
  X(dtls_handshake_failures, "DTLS handshakes that failed after the cookie was returned")         \
  X(dtls_handshake_timeouts, "DTLS handshakes not done within dtls.handshake_timeout")            \
  X(dtls_cookies_sent, "HelloVerifyRequests sent (ClientHellos without a valid cookie)")          \
  X(dtls_bad_cookies, "ClientHellos with a cookie that did not verify")                           \
  X(dtls_refused_limit, "DTLS sessions refused: streams.max_connections(_per_ip) reached")        \
  X(dtls_garbage, "datagrams to a DTLS listener dropped: not a DTLS handshake, no session")       \
  X(dtls_idle_timeouts, "DTLS sessions closed after dtls.idle_timeout without a record")          \
  X(dtls_session_errors, "DTLS sessions closed by a fatal DTLS error or alert")

struct net_counters {
#define ANYTURN_DECLARE_NET_COUNTER(name, help) std::atomic<std::uint64_t> name{0};
  ANYTURN_NET_COUNTERS(ANYTURN_DECLARE_NET_COUNTER)
#undef ANYTURN_DECLARE_NET_COUNTER
  std::atomic<std::uint64_t> relay_sockets_open{0};  // gauge
  std::atomic<std::uint64_t> connections_open{0};    // gauge: TCP and TLS
  std::atomic<std::uint64_t> dtls_sessions_open{0};  // gauge: DTLS sessions, handshaking or not
  std::atomic<std::uint64_t> tcp_relay_peers_open{0};  // gauge: RFC 6062 peer connections
};

}  // namespace anyturn::net
