// anyturn::net (internal) — a worker's TCP relay allocations (RFC 6062):
// the listening relay sockets, the peer connections and their data
// connections.
//
// A TCP allocation's relay is a listening socket on the relay address
// (SO_REUSEADDR + SO_REUSEPORT, so the outgoing sockets of Connect can bind
// the same address and port). Each peer connection, accepted there or
// connected by Connect, gets a CONNECTION-ID whose top 8 bits are the
// worker's index, and waits unread (at most 30 s) for the client's
// ConnectionBind. Once bound, the peer connection and the data connection
// are joined by two pipes, one per direction, and splice(2) moves the bytes
// socket -> pipe -> socket without copying them through user space. A pipe
// (64 KiB) is the bounded buffer of its direction: while it is full the
// source socket is not read, so a slow reader holds back its sender
// through TCP flow control and the server holds at most the two pipes.
//
// Everything here belongs to the worker's thread. Asio handlers hold a
// shared_ptr to their connection or listener, which carries a closed flag.
#pragma once

#include <anyturn/relay/io.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace anyturn::net::detail {

// RFC 6062 §5.3: a peer connection not bound within 30 s is closed.
inline constexpr std::int64_t tcp_bind_timeout_ms = 30'000;
// How long a Connect's TCP connect may take before 447.
inline constexpr std::int64_t tcp_connect_timeout_ms = 10'000;
// Peer connections one TCP relay holds at most (connecting, unbound or
// bound); past it a peer is reset and a Connect gets 447.
inline constexpr std::size_t max_tcp_relay_connections = 256;

// One direction of a data connection: bytes in flight between two sockets.
struct splice_pipe {
  splice_pipe() = default;
  splice_pipe(const splice_pipe&) = delete;
  splice_pipe& operator=(const splice_pipe&) = delete;
  ~splice_pipe();
  bool open();  // the pipe pair; false when the kernel refuses

  int read_fd = -1;
  int write_fd = -1;
  std::size_t held = 0;      // bytes in the pipe
  std::size_t capacity = 0;  // the pipe's size (F_GETPIPE_SZ)
  bool eof = false;          // the source finished sending
  bool shut = false;         // ... and its FIN went on to the destination
  std::size_t not_relayed = 0;  // leading bytes that are ours (the ConnectionBind answer)
  bool read_wait = false;    // waiting for the source to be readable
  bool write_wait = false;   // waiting for the destination to be writable
};

struct tcp_relay_conn {
  enum class state { connecting, unbound, bound, closed };

  explicit tcp_relay_conn(boost::asio::io_context& ioc) : peer(ioc), client(ioc) {}

  std::uint32_t cid = 0;
  relay::relay_id relay = relay::no_relay;
  stun::endpoint peer_address;
  state st = state::connecting;
  std::int64_t deadline_ms = 0;          // connecting: connect timeout; unbound: bind timeout
  boost::asio::ip::tcp::socket peer;     // the peer's connection
  boost::asio::ip::tcp::socket client;   // the data connection, once bound
  splice_pipe up;                        // client -> peer
  splice_pipe down;                      // peer -> client
};

struct tcp_relay_listener {
  explicit tcp_relay_listener(boost::asio::io_context& ioc) : acceptor(ioc) {}

  relay::relay_id id = relay::no_relay;
  stun::endpoint bound;
  boost::asio::ip::tcp::acceptor acceptor;
  std::uint64_t connection = 0;      // the client's stream connection (its allocation's)
  std::vector<std::uint32_t> conns;  // its peer connections' ids
  bool closed = false;
};

// The worker's TCP relay state: listeners by relay id, connections by id.
struct tcp_relay_table {
  std::unordered_map<relay::relay_id, std::shared_ptr<tcp_relay_listener>> listeners;
  std::unordered_map<std::uint32_t, std::shared_ptr<tcp_relay_conn>> conns;
  std::uint32_t next = 0;  // low 24 bits of the next CONNECTION-ID

  // A CONNECTION-ID not in use: worker index in the top 8 bits, never 0.
  std::uint32_t new_id(unsigned worker);
};

}  // namespace anyturn::net::detail
