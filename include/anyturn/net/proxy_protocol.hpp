// anyturn::net — the PROXY protocol header (HAProxy's PROXY protocol,
// versions 1 and 2) that a TCP load balancer puts in front of the client's
// stream to say who the client is.
//
// Sans-I/O: parse_proxy_header() looks at the first bytes of a stream and
// says "complete, the header is N bytes", "need more bytes" or "malformed".
// No socket, clock, log or heap. "need_more" is only ever answered while
// every byte seen so far belongs to the header (a prefix of a v1 line or of
// a v2 header within the length bound), so a caller may consume those bytes
// and keep reading without ever swallowing the client's own first bytes.
//
// Version 1 (text): "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or
// "PROXY UNKNOWN...\r\n", at most 107 bytes. Version 2 (binary): the 12-byte
// signature, version 2 with the PROXY or LOCAL command, AF_UNSPEC, AF_INET or
// AF_INET6 over STREAM (or UNSPEC), the address block, and TLVs, which are
// skipped; at most max_proxy_header bytes in all. LOCAL, UNKNOWN and
// AF_UNSPEC carry no client address: the connection's own addresses count
// (the balancer's health checks).
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace anyturn::net {

// The longest header accepted (v2: 16 bytes + the address block and TLVs;
// v1 is never longer than 107 bytes).
inline constexpr std::size_t max_proxy_header = 1024;
inline constexpr std::size_t max_proxy_v1_line = 107;

enum class proxy_status {
  complete,   // `size` bytes are the header
  need_more,  // every byte so far belongs to a header that is not complete yet
  malformed,  // not a PROXY header, or a broken one: close the connection
};

// Why a header is malformed (for tests and the log).
enum class proxy_problem {
  none,
  bad_signature,  // neither "PROXY " nor the v2 signature
  bad_v1,         // v1 line: wrong token, address, port, or no CRLF within 107 bytes
  bad_version,    // v2: version is not 2, or the command is neither LOCAL nor PROXY
  bad_family,     // v2: AF_UNIX, DGRAM or an unknown family/protocol
  bad_length,     // v2: address block shorter than its family needs, or beyond max_proxy_header
};
const char* to_string(proxy_problem p);

struct proxy_header {
  proxy_status status = proxy_status::need_more;
  proxy_problem problem = proxy_problem::none;
  std::size_t size = 0;   // complete: bytes the header takes
  int version = 0;        // 1 or 2, once known
  bool has_address = false;  // false: LOCAL, UNKNOWN or AF_UNSPEC
  stun::endpoint source;       // the client (has_address)
  stun::endpoint destination;  // the address the client connected to (has_address)
};

// Parses the start of a stream.
proxy_header parse_proxy_header(std::span<const std::byte> data) noexcept;

}  // namespace anyturn::net
