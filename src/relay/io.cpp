#include <anyturn/relay/io.hpp>

#include <anyturn/common/keyed_hash.hpp>

namespace anyturn::relay {

const char* to_string(transport t) {
  switch (t) {
    case transport::udp: return "udp";
    case transport::tcp: return "tcp";
    case transport::tls: return "tls";
    case transport::dtls: return "dtls";
  }
  return "?";
}

std::size_t client_ref_hash::operator()(const client_ref& c) const noexcept {
  common::keyed_hasher h;
  h.add(std::uint64_t{c.listener} << 32 | std::uint64_t{static_cast<std::uint8_t>(c.proto)} << 16 |
        std::uint64_t{static_cast<std::uint8_t>(c.remote.family)} << 8 |
        static_cast<std::uint8_t>(c.local.family));
  h.add(std::uint64_t{c.remote.port} << 16 | c.local.port);
  h.add(c.connection);
  h.add_bytes(c.remote.ip.data(), c.remote.ip.size());
  h.add_bytes(c.local.ip.data(), c.local.ip.size());
  return static_cast<std::size_t>(h.finish());
}

}  // namespace anyturn::relay
