// anyturn::net (internal) — what a worker's stream host owns: its TCP/TLS
// listeners and the table of its connections.
//
// Worker thread only, like everything of a worker.
#pragma once

#include "stream_session.hpp"

#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace anyturn::net::detail {

// A listening TCP socket (plain or TLS), shared (SO_REUSEPORT) with the
// other workers.
struct stream_listener {
  explicit stream_listener(boost::asio::io_context& ioc) : acceptor(ioc), retry(ioc) {}
  boost::asio::ip::tcp::acceptor acceptor;
  boost::asio::steady_timer retry;  // back-off after an accept error
  stun::endpoint bound;
  bool tls = false;
  // PROXY protocol: every connection starts with a header, and only these
  // source ranges may send one (anybody else is refused at accept).
  bool proxy = false;
  std::vector<auth::cidr> trusted;
};

// The connections a worker accepted. The table holds the one owning pointer
// of each session (pending Asio operations hold others until they end). A
// connection id is (generation << 32 | slot), so the id of a closed
// connection whose slot was reused never resolves; ids are never 0 (0 means
// "not a stream" in a client_ref).
class connection_table {
 public:
  // Adds a connection: `make(id)` returns its session, made with the id it
  // gets here. Returns the session.
  template <class Make>
  stream_session& add(Make&& make) {
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    const std::uint64_t id = (std::uint64_t{slots_[slot].generation} << 32) | slot;
    slots_[slot].session = std::forward<Make>(make)(id);
    return *slots_[slot].session;
  }

  // The open connection `id`, or null.
  [[nodiscard]] stream_session* find(std::uint64_t id) const {
    const auto slot = static_cast<std::uint32_t>(id & 0xFFFFFFFFu);
    const auto generation = static_cast<std::uint32_t>(id >> 32);
    if (slot >= slots_.size() || slots_[slot].generation != generation) return nullptr;
    return slots_[slot].session.get();
  }

  // Takes session `s` out of the table if `id` still names it: the id stops
  // resolving and the slot is free again. Returns the owning pointer (null
  // when `s` was not there), for the caller to hold while it finishes.
  std::shared_ptr<stream_session> remove(std::uint64_t id, const stream_session& s);

  // Empties the table, then closes every session it held (each calls back
  // into remove(), which then finds nothing).
  void close_all();

 private:
  struct slot {
    std::shared_ptr<stream_session> session;
    std::uint32_t generation = 1;  // ids are never 0
  };
  std::vector<slot> slots_;
  std::vector<std::uint32_t> free_;
};

}  // namespace anyturn::net::detail
