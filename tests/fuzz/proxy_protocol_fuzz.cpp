// libFuzzer target: the PROXY protocol header parser
// (net::parse_proxy_header, src/net/proxy_protocol.cpp), fed the way a
// stream session feeds it: the bytes that arrived so far, growing.
//
// Invariants, any broken one traps:
//   - a complete header's size is within the input, at least 15 bytes
//     (the shortest v1 line) and at most max_proxy_header;
//   - the verdict on a prefix agrees with the whole: every strict prefix of
//     a complete header needs more, a malformed prefix stays malformed, and
//     a header complete on a prefix is complete with the same size on every
//     longer input (what follows it is the client's, never the header's);
//   - "need more" only while the input is shorter than the longest header.
#include <anyturn/net/proxy_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace {

using namespace anyturn::net;

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> all(reinterpret_cast<const std::byte*>(data), size);
  const proxy_header whole = parse_proxy_header(all);
  if (whole.status == proxy_status::complete) {
    FUZZ_CHECK(whole.size >= 15 && whole.size <= size && whole.size <= max_proxy_header);
  }
  if (whole.status == proxy_status::need_more) FUZZ_CHECK(size < max_proxy_header);
  bool seen_malformed = false;
  std::size_t complete_at = 0;
  for (std::size_t n = 0; n <= size; ++n) {
    const proxy_header h = parse_proxy_header(all.first(n));
    if (seen_malformed) {
      FUZZ_CHECK(h.status == proxy_status::malformed);
      continue;
    }
    if (complete_at != 0) {
      FUZZ_CHECK(h.status == proxy_status::complete && h.size == complete_at);
      FUZZ_CHECK(h.has_address == whole.has_address && h.source == whole.source);
      continue;
    }
    if (h.status == proxy_status::malformed) seen_malformed = true;
    if (h.status == proxy_status::complete) {
      FUZZ_CHECK(h.size == n);  // every strict prefix needed more
      complete_at = h.size;
    }
  }
  FUZZ_CHECK(seen_malformed == (whole.status == proxy_status::malformed));
  return 0;
}
