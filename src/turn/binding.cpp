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
  }
  auto b = ctx.begin(r, message_class::success_response);
  b.add_address(attr::xor_mapped_address, r.from.remote, true);
  if (other) {
    b.add_address(attr::response_origin, via.local, false);
    b.add_address(attr::other_address, other->local, false);
  }
  bump(ctx.counters.responses_success);
  ctx.finish(r, b, false, &via);
}

// RFC 5780 §7.2: a Binding CHANGE-REQUEST is understood where the socket
// has an alternate group; removes it from `unknown` then. Elsewhere, and
// in any other method, it stays an unknown attribute (420).
std::size_t honour_change_request(context& ctx, const request& r, std::span<std::uint16_t> unknown,
                                  std::size_t n) {
  const auto end = unknown.begin() + static_cast<std::ptrdiff_t>(n);
  const auto it = std::find(unknown.begin(), end, attr::change_request);
  if (it == end) return n;
  if (static_cast<stun::method>(r.msg.method()) != stun::method::binding ||
      !ctx.io.alternate(r.from, true, true)) {
    if (static_cast<stun::method>(r.msg.method()) == stun::method::binding)
      bump(ctx.counters.nat_refused);
    return n;
  }
  std::copy(it + 1, end, it);
  return n - 1;
}

}  // namespace anyturn::turn::detail
