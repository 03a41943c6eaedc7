// anyturn::probe (private) — TURN requests over one control connection:
// the 401 challenge of the long-term credential mechanism (RFC 8489 §9.2),
// 438 Stale Nonce, retransmission over UDP (RFC 8489 §6.2.1: 250 ms,
// doubling, bounded by the deadline), and Allocate, CreatePermission,
// ChannelBind and Refresh (RFC 8656).
#pragma once

#include "client.hpp"

#include <anyturn/probe/probe.hpp>
#include <anyturn/auth/credentials.hpp>

#include <functional>
#include <optional>
#include <string>

namespace anyturn::probe::detail {

using attribute_writer = std::function<void(stun::message_builder&)>;

class session {
 public:
  // `software` receives the first SOFTWARE any response carries (shared by
  // the two sessions of a probe).
  session(connection& c, const std::optional<credentials>& auth, std::string& software)
      : conn_(c), auth_(auth), software_(software) {}

  // Sends one request and waits for its response; true for a success
  // response (in response()), false with the server's "<code> <reason>" or
  // the transport's cause. Authenticated once a 401 gave a realm and nonce;
  // a 438 is retried once with the new nonce.
  bool request(stun::method m, const attribute_writer& attrs, clock::time_point deadline, failure& f);

  // Allocate (UDP relay) with the 401 challenge. Fills relayed and mapped.
  bool allocate(clock::time_point deadline, failure& f);
  bool create_permission(const stun::endpoint& peer, clock::time_point deadline, failure& f);
  bool channel_bind(std::uint16_t channel, const stun::endpoint& peer, clock::time_point deadline,
                    failure& f);
  bool refresh(std::uint32_t lifetime, clock::time_point deadline, failure& f);
  // Binding (stun: URLs); fills mapped.
  bool binding(clock::time_point deadline, failure& f);

  [[nodiscard]] const stun::endpoint& relayed() const { return relayed_; }
  [[nodiscard]] const std::optional<stun::endpoint>& mapped() const { return mapped_; }
  [[nodiscard]] bool allocated() const { return allocated_; }
  connection& conn() { return conn_; }

 private:
  bool exchange(stun::method m, const attribute_writer& attrs, bool authenticate,
                clock::time_point deadline, failure& f);
  bool take_challenge(const stun::message_view& m);

  connection& conn_;
  const std::optional<credentials>& auth_;
  std::string& software_;
  // The long-term credential state, after the first 401.
  bool challenged_ = false;
  std::string realm_;
  std::string nonce_;
  auth::md5_key key_{};
  std::vector<std::byte> algorithms_;  // PASSWORD-ALGORITHMS of the 401, echoed back unchanged
  frame response_;                          // the last matching response
  stun::endpoint relayed_;
  std::optional<stun::endpoint> mapped_;
  bool allocated_ = false;
};

// "<code> <reason>" of an error response; the reason without trailing NULs
// or spaces (coturn pads it with a NUL).
std::string error_text(const stun::message_view& m);

}  // namespace anyturn::probe::detail
