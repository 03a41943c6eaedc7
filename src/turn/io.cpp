#include <anyturn/turn/io.hpp>

namespace anyturn::turn {

const char* to_string(transport t) {
  switch (t) {
    case transport::udp: return "udp";
    case transport::tcp: return "tcp";
    case transport::tls: return "tls";
  }
  return "?";
}

std::size_t client_ref_hash::operator()(const client_ref& c) const noexcept {
  const stun::endpoint_hash h;
  std::size_t seed = h(c.remote);
  seed ^= h(c.local) + 0x9E3779B97F4A7C15ULL + (seed << 6) + (seed >> 2);
  seed ^= (std::size_t{c.listener} << 32 | static_cast<std::size_t>(c.proto)) + 0x9E3779B97F4A7C15ULL +
          (seed << 6) + (seed >> 2);
  seed ^= c.connection + 0x9E3779B97F4A7C15ULL + (seed << 6) + (seed >> 2);
  return seed;
}

}  // namespace anyturn::turn
