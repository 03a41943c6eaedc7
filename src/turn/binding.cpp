// Binding (RFC 8489 §3) and RFC 5780 NAT behaviour discovery: with
// stun.other_ip, OTHER-ADDRESS, RESPONSE-ORIGIN and CHANGE-REQUEST.
//
// The core decides which socket answers; the net layer owns the sockets
// (relay::io_port::alternate names the one of the other IP and/or port).
#include "context.hpp"

#include <algorithm>
#include <optional>

namespace anyturn::turn::detail {

namespace attr = stun::attr;
using stun::message_class;

// ------------------------------------------------ RFC 8489 §3, Binding
// With stun.other_ip (RFC 5780 §6, §7): OTHER-ADDRESS and RESPONSE-ORIGIN,
// and CHANGE-REQUEST answered from the socket of the other IP and/or port.
void on_binding(context& ctx, const request& r) {
  const std::optional<client_ref> other = ctx.io.alternate(r.from, true, true);
  client_ref via = r.from;
  if (other) {
    if (const auto change = r.msg.find(attr::change_request)) {
      const auto flags = stun::decode_change_request(*change);
      if (!flags) {
        bump(ctx.counters.nat_refused);
        return ctx.send_error(r, 400);
      }
      if (flags->change_ip || flags->change_port) {
        const auto moved = ctx.io.alternate(r.from, flags->change_ip, flags->change_port);
        if (!moved) {  // the group lost a socket: nothing to answer from (§7.2)
          bump(ctx.counters.nat_refused);
          return ctx.send_error(r, 400);
        }
        via = *moved;
        bump(ctx.counters.nat_changed);
      }
    }
    // RESPONSE-PORT (§7.5): the answer goes to that port of the client's IP.
    if (const auto port_attr = r.msg.find(attr::response_port)) {
      const auto port = stun::decode_response_port(*port_attr);
      if (!port || *port == 0) {
        bump(ctx.counters.nat_refused);
        return ctx.send_error(r, 400);
      }
      via.remote.port = *port;
    }
    // PADDING (§7.6) only makes the request large; the answer stays small
    // (it is never padded, so it is never larger than the request).
  }
  auto b = ctx.begin(r, message_class::success_response);
  b.add_address(attr::xor_mapped_address, r.from.remote, true);
  if (other) {
    // MAPPED-ADDRESS beside XOR-MAPPED-ADDRESS lets the client detect an
    // ALG that rewrites addresses in payloads (RFC 5780 §4.6).
    b.add_address(attr::mapped_address, r.from.remote, false);
    b.add_address(attr::response_origin, via.local, false);
    b.add_address(attr::other_address, other->local, false);
  }
  bump(ctx.counters.responses_success);
  ctx.finish(r, b, false, &via);
}

// RFC 5780 §7.2, §7.5, §7.6: a Binding's CHANGE-REQUEST, RESPONSE-PORT and
// PADDING are understood where the socket has an alternate group; they are
// removed from `unknown` then. Elsewhere, and in any other method, they stay
// unknown attributes (420).
std::size_t honour_rfc5780_attributes(context& ctx, const request& r,
                                      std::span<std::uint16_t> unknown, std::size_t n) {
  const auto is_rfc5780 = [](std::uint16_t t) {
    return t == attr::change_request || t == attr::response_port || t == attr::padding;
  };
  const auto end = unknown.begin() + static_cast<std::ptrdiff_t>(n);
  if (std::none_of(unknown.begin(), end, is_rfc5780)) return n;
  if (static_cast<stun::method>(r.msg.method()) != stun::method::binding) return n;
  if (!ctx.io.alternate(r.from, true, true)) {
    bump(ctx.counters.nat_refused);
    return n;
  }
  return static_cast<std::size_t>(std::remove_if(unknown.begin(), end, is_rfc5780) - unknown.begin());
}

}  // namespace anyturn::turn::detail
