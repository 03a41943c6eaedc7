// The test clients' view of net::to_sockaddr / net::from_sockaddr, for code
// that works on a plain sockaddr_storage.
#pragma once

#include <anyturn/net/address.hpp>

#include <sys/socket.h>

namespace anyturn::itest {

inline socklen_t to_sockaddr(const stun::endpoint& ep, sockaddr_storage& ss) {
  const net::socket_address sa = net::to_sockaddr(ep);
  ss = sa.storage;
  return sa.size;
}

inline stun::endpoint from_sockaddr(const sockaddr_storage& ss) {
  return net::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), sizeof ss)
      .value_or(stun::endpoint{});
}

}  // namespace anyturn::itest
