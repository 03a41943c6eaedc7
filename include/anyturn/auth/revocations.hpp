// anyturn::auth — revoked credentials.
//
// A revocation refuses one REST credential (its whole username), or every
// credential of one REST user of a tenant, until a time (the credential's
// own expiry; for a user, the longest credential the API mints). The board
// is shared: the HTTP thread (credentials API) and the fleet thread (Redis)
// add to it; each worker notices a new generation on its tick, takes the
// snapshot once (under the board's mutex, never on the forwarding path),
// ends the allocations it revokes and refuses the credentials from then on.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::auth {

struct revocation {
  std::string tenant;    // tenant id; "" = the default tenant
  std::string username;  // one credential: the whole REST username; or
  std::string user;      // every credential of this REST user (the <user> part)
  std::int64_t until_unix = 0;  // refused up to and including this second

  friend bool operator==(const revocation&, const revocation&) = default;
};

// The REST user of a username: "<expiry>:<tenant>:<user>" gives <user> for
// tenant <tenant>; "<expiry>:<user>" and coturn's "<user>:<expiry>" give
// <user>. Empty for anything else.
std::string_view rest_user_of(std::string_view username, std::string_view tenant_id);

// An immutable set of revocations, built by the board.
class revocation_set {
 public:
  revocation_set() = default;
  explicit revocation_set(std::vector<revocation> entries);

  // Whether `username` (of tenant `tenant_id`) is revoked at `now_unix`.
  [[nodiscard]] bool revoked(std::string_view tenant_id, std::string_view username,
                             std::int64_t now_unix) const;
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] const std::vector<revocation>& entries() const { return entries_; }

 private:
  std::vector<revocation> entries_;  // sorted (implementation's choice of index)
};

class revocation_board {
 public:
  // Adds `r`, or extends the one with the same target. Returns true when
  // the set changed (then the generation moved on).
  bool add(const revocation& r);
  // Drops revocations whose until_unix has passed.
  void expire(std::int64_t now_unix);
  // Cheap: workers poll it on their tick.
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  // The current set (takes the mutex; never call it per packet).
  [[nodiscard]] std::shared_ptr<const revocation_set> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const revocation_set> current_ = std::make_shared<const revocation_set>();
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace anyturn::auth
