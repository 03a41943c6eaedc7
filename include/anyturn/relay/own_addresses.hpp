// anyturn::relay — the server's own addresses, as peers (issue 12, hole 1.3).
//
// A client must not use the relay to reach this host: TURN inside TURN (to
// hide its source), the HTTP side port, or any other service bound on the
// relay, listener, external or anycast addresses. But relaying between two
// allocations of this server is what two browsers on one TURN server do, so
// an own address is a valid peer exactly on the relay port of a live
// allocation, which the shared port pools know (a held port).
//
// Built once at start-up (app/startup.cpp) and read by every worker: the
// TURN handlers decide at CreatePermission and ChannelBind, and flag a
// channel bound to an own address; the forwarder checks the pool again only
// for flagged channels and for Send indications to an own address. Lookups
// are a binary search over a small sorted vector and a relaxed atomic load:
// no allocation, no lock.
#pragma once

#include <anyturn/relay/port_pool.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <memory>
#include <vector>

namespace anyturn::relay {

class own_addresses {
 public:
  struct relay_range {
    stun::endpoint ip;  // port unused
    std::shared_ptr<const port_pool> ports;
  };

  own_addresses() = default;
  // `ips`: every address of this server (ports ignored, duplicates fine;
  // listener wildcards already expanded to the host's interface addresses,
  // external and anycast addresses included). The relay addresses count as
  // own whether or not they are in `ips`. Addresses an operator opened
  // explicitly (peers.allow) are left out by the caller.
  own_addresses(std::vector<stun::endpoint> ips, std::vector<relay_range> relays);

  [[nodiscard]] bool empty() const { return ips_.empty(); }
  [[nodiscard]] const std::vector<stun::endpoint>& ips() const { return ips_; }

  // `peer`'s IP is one of ours (IPv4-mapped IPv6 forms included).
  [[nodiscard]] bool contains(const stun::endpoint& peer) const noexcept;
  // `peer` is a relayed transport address of a live allocation (or a port
  // reserved for one): its IP is a relay address whose pool holds its port.
  [[nodiscard]] bool is_relay_port(const stun::endpoint& peer) const noexcept;
  // `peer`'s IP is a relay address: a permission for it (RFC 8656 §9, per
  // IP) can reach other allocations.
  [[nodiscard]] bool is_relay_ip(const stun::endpoint& peer) const noexcept;

 private:
  std::vector<stun::endpoint> ips_;  // sorted, unique, port 0
  std::vector<relay_range> relays_;
};

}  // namespace anyturn::relay
