// Test helper: an endpoint from an address literal, built with inet_pton so
// the auth tests do not depend on stun::endpoint::parse.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <arpa/inet.h>

#include <stdexcept>
#include <string>

namespace anyturn::auth::test {

inline stun::endpoint ep(const std::string& address, std::uint16_t port = 3478) {
  stun::endpoint e;
  e.port = port;
  if (inet_pton(AF_INET, address.c_str(), e.ip.data()) == 1) {
    e.family = stun::address_family::ipv4;
  } else if (inet_pton(AF_INET6, address.c_str(), e.ip.data()) == 1) {
    e.family = stun::address_family::ipv6;
  } else {
    throw std::invalid_argument("bad test address: " + address);
  }
  return e;
}

}  // namespace anyturn::auth::test
