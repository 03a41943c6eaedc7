// anyturn::relay — the seam between the sans-I/O cores (relay, turn) and the sockets.
//
// Neither the relay core nor the TURN request handlers touch a socket or a
// clock. Each worker's net layer implements `io_port`; unit tests implement
// it with a recording fake. The types here name what crosses the seam: the
// client side of a 5-tuple, a relay socket, the loop's clock reading.
#pragma once

#include <anyturn/stun/message.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <system_error>

namespace anyturn::relay {

enum class transport : std::uint8_t { udp = 0, tcp = 1, tls = 2, dtls = 3 };
const char* to_string(transport t);

// The client side of a 5-tuple, as the net layer saw it.
struct client_ref {
  transport proto = transport::udp;
  std::uint32_t listener = 0;     // index of the listening socket (UDP) ...
  std::uint64_t connection = 0;   // ... or of the stream connection (TCP/TLS), else 0
  stun::endpoint remote;          // the client's address and port
  stun::endpoint local;           // the server address it reached

  friend bool operator==(const client_ref&, const client_ref&) = default;
};

// The process's keyed hash (common::keyed_hasher) of every field: clients
// choose their addresses, so the 5-tuple index must not be predictable.
struct client_ref_hash {
  std::size_t operator()(const client_ref& c) const noexcept;
};

// Index of a relay socket. The relay core hands ids out from its own free
// list (one per relayed address, so an allocation may hold two) and maps
// each back to its allocation; the net layer keys its socket table by it,
// so both lookups are O(1).
using relay_id = std::uint32_t;
inline constexpr relay_id no_relay = 0xFFFFFFFFu;

// Times the cores need, read once per round of the event loop by the net layer.
struct now_t {
  std::int64_t mono_ms = 0;  // monotonic milliseconds: lifetimes and timers
  std::int64_t unix_s = 0;   // wall clock seconds: REST expiry and nonces
  // The same wall clock reading in milliseconds (unix_s * 1000 + the part
  // of the second); 0 when the caller has only seconds: the core then
  // estimates the part of the second from its ticks.
  std::int64_t unix_ms = 0;
};

// A message to send, in up to four pieces (header, attributes, payload,
// padding), so payloads are never copied into a new buffer.
using fragments = std::span<const stun::bytes_view>;

class io_port {
 public:
  virtual ~io_port() = default;

  // Sends to a client. For UDP one datagram; for streams, appended in order.
  virtual void send_to_client(const client_ref& to, fragments data) = 0;

  // Binds a UDP relay socket on `bind` (relay IP and exact port). Returns an
  // error (address_in_use, ...) when the kernel refuses; the core then tries
  // another port.
  virtual std::error_code open_relay(relay_id id, const stun::endpoint& bind) = 0;
  virtual void close_relay(relay_id id) = 0;

  // Sends one datagram from relay socket `id` to `peer`. Returns false when
  // the kernel refused it (buffer full, unreachable); the core counts it.
  virtual bool send_to_peer(relay_id id, const stun::endpoint& peer, fragments data,
                            bool dont_fragment) = 0;

  // ---- worker hand-off (UDP only; streams are owned by their connection) ----
  // A UDP datagram whose 5-tuple has no allocation on this worker: if
  // another worker owns it, the net layer passes a copy to that worker and
  // returns true (the core then forgets the datagram). Called only on the
  // miss path, never for a datagram this worker owns.
  virtual bool hand_off(const client_ref& /*from*/, stun::bytes_view /*data*/,
                        const now_t& /*now*/) {
    return false;
  }
  // This worker now owns / no longer owns the allocation of UDP 5-tuple `c`.
  virtual void own(const client_ref& /*c*/) {}
  virtual void disown(const client_ref& /*c*/) {}

  // ---- RFC 5780 NAT behaviour discovery (stun.other_ip; UDP only) ----
  // With stun.other_ip each UDP listener A:P of that family heads a group of
  // four sockets of this worker: A:P, A:P+1, OTHER:P and OTHER:P+1. Returns
  // the client_ref that answers `c` from the group's socket whose IP
  // (change_ip) and/or port (change_port) differ from the one `c` reached:
  // its `listener` and `local` name that socket, so send_to_client(result)
  // sends from it. nullopt: `c`'s socket is in no group (no other_ip, a
  // family without it, a stream). Called for Binding requests only.
  virtual std::optional<client_ref> alternate(const client_ref& /*c*/, bool /*change_ip*/,
                                              bool /*change_port*/) {
    return std::nullopt;
  }
  // Whether `c` reached one of a group's three extra sockets (A:P+1,
  // OTHER:P, OTHER:P+1), which serve Binding only.
  virtual bool binding_only(const client_ref& /*c*/) { return false; }
  // ---- TCP relay allocations (RFC 6062) ----
  // The net layer owns the sockets and the table of peer connections; the
  // core decides (permissions, peer policy, credentials) and answers.
  // A CONNECTION-ID: the owning worker's index in the top 8 bits.
  // Binds and listens on `bind` (relay IP and exact port) as relay `id`.
  // close_relay(id) closes it and every peer and data connection of it.
  virtual std::error_code open_tcp_relay(relay_id /*id*/, const stun::endpoint& /*bind*/) {
    return std::make_error_code(std::errc::operation_not_supported);
  }
  // Whether relay `id` has a connection (pending or bound) to `peer` (446).
  virtual bool tcp_peer_exists(relay_id /*id*/, const stun::endpoint& /*peer*/) { return false; }
  // Connect (§5.2): starts a non-blocking connect from relay `id` to
  // `peer`; the outcome comes back through worker_core::on_tcp_connected
  // with the id returned here. 0: it could not even start (447 at once).
  virtual std::uint32_t tcp_connect(relay_id /*id*/, const stun::endpoint& /*peer*/) { return 0; }
  // The relay of connection `cid` when it waits for its ConnectionBind on
  // this worker; no_relay otherwise (unknown, expired or bound already).
  virtual relay_id tcp_unbound(std::uint32_t /*cid*/) { return no_relay; }
  // ConnectionBind succeeded (§5.4): after the answer already sent on it,
  // stream connection `data` carries connection `cid`'s bytes both ways.
  virtual bool tcp_bind(std::uint32_t /*cid*/, const client_ref& /*data*/) { return false; }
  // ConnectionBind reached a worker other than the owner of `cid`: moves
  // the stream connection `from` (with `message`, the ConnectionBind) to the
  // owning worker, which handles the message as if it had read it. False:
  // it cannot move (TLS, no hand-off queues, queue full); the core answers.
  virtual bool hand_off_stream(const client_ref& /*from*/, unsigned /*owner*/,
                               stun::bytes_view /*message*/) {
    return false;
  }
};

}  // namespace anyturn::relay
