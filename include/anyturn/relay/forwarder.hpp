// anyturn::relay — the forwarding decision of one worker (RFC 8656 §11, §12).
//
// Sans-I/O: it decides, the net layer does the syscalls. For each relayed
// packet it finds the allocation (by 5-tuple, or by relay socket), checks
// the channel or permission and the bandwidth bucket, frames the payload
// (ChannelData or Data indication, in pieces so the payload is never copied)
// and hands the pieces to the io_port. Every drop is counted in
// worker_counters. Nothing on these paths allocates: the allocation-counting
// test in tests/unit/net proves it through the real worker.
//
// Owned by one worker's thread, like the allocation table it reads.
#pragma once

#include <anyturn/common/log_limiter.hpp>
#include <anyturn/common/xorshift.hpp>
#include <anyturn/relay/allocation_table.hpp>
#include <anyturn/relay/counters.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/relay/own_addresses.hpp>
#include <anyturn/stun/message.hpp>

#include <cstdint>

namespace anyturn::relay {

class forwarder {
 public:
  // `own`: the server's own addresses (may be null: none guarded).
  forwarder(allocation_table& table, io_port& io, worker_counters& counters, std::uint64_t seed,
            const own_addresses* own = nullptr);

  // ChannelData from a client -> its bound peer (§12.5).
  void on_channel_data(const client_ref& from, stun::bytes_view data, const now_t& now);
  // A Send indication from a client -> the peer it names (§11.4). `raw` is
  // the whole datagram, for the hand-off of a 5-tuple another worker owns.
  void on_send_indication(const client_ref& from, const stun::message_view& msg,
                          stun::bytes_view raw, const now_t& now);
  // A datagram from `peer` on relay socket `id` -> the client, as
  // ChannelData when a channel is bound to the peer, else as a Data
  // indication (§11.3, §12.6).
  void on_peer_packet(relay_id id, const stun::endpoint& peer, stun::bytes_view data,
                      const now_t& now);

 private:
  void forward_to_peer(allocation& a, const relay_side& side, const stun::endpoint& peer,
                       stun::bytes_view payload, bool dont_fragment, const now_t& now);
  // limits.allocation's packet and byte rates of direction `d`, then the
  // tenant's bandwidth; counts the drop.
  bool within_limits(allocation& a, direction_limit& d, std::size_t bytes, std::int64_t now_ms);

  allocation_table& table_;
  io_port& io_;
  worker_counters& counters_;
  const own_addresses* own_;
  common::xorshift64 rng_;  // transaction ids of Data indications
  common::log_limiter relay_send_log_{1, 1000};
};

}  // namespace anyturn::relay
