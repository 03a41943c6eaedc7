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
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::auth {

// The target of a revocation is (tenant, username) when username is set (user
// is then informational only), else (tenant, user). A revocation with
// neither is no target: the board refuses it.
struct revocation {
  std::string tenant;    // tenant id; "" = the default tenant
  std::string username;  // one credential: the whole REST username; or
  std::string user;      // every credential of this REST user (the <user> part)
  std::int64_t until_unix = 0;  // refused up to and including this second

  friend bool operator==(const revocation&, const revocation&) = default;
};

// The REST user of a username: "<expiry>:<tenant>:<user>" gives <user> for
// tenant <tenant>; "<expiry>:<user>" and coturn's "<user>:<expiry>" give
// <user>. Empty for anything else. With a non-empty tenant_id the user part
// must start with "<tenant_id>:" (also in coturn's order,
// "<tenant>:<user>:<expiry>"); with an empty one the whole user part is the
// user. A "#<customIdentifier>" suffix stays part of the user.
std::string_view rest_user_of(std::string_view username, std::string_view tenant_id);

// The <expiry> (unix seconds) of a REST username in any accepted form
// ("<expiry>", "<expiry>:<user>", "<user>:<expiry>"), or nullopt when the
// username is not REST-shaped (or the number has more than 18 digits).
std::optional<std::int64_t> rest_expiry_of(std::string_view username);

// An immutable set of revocations, built by the board.
class revocation_set {
 public:
  revocation_set() = default;
  explicit revocation_set(std::vector<revocation> entries);

  // Whether `username` (of tenant `tenant_id`) is revoked at `now_unix`:
  // a revocation of that username, or of its REST user (rest_user_of), with
  // now_unix <= until_unix. O(log n), no allocation.
  [[nodiscard]] bool revoked(std::string_view tenant_id, std::string_view username,
                             std::int64_t now_unix) const;
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] const std::vector<revocation>& entries() const { return entries_; }

 private:
  // Sorted by target (tenant, username, user-if-no-username), one entry per
  // target (the longest until_unix wins).
  std::vector<revocation> entries_;
};

class revocation_board {
 public:
  // Adds `r`, or extends the one with the same target. Returns true when
  // the set changed (then the generation moved on).
  bool add(const revocation& r);
  // Adds many at once (one new set, one generation step): e.g. every record
  // read back from Redis. Returns true when the set changed.
  bool add(std::span<const revocation> batch);
  // Drops revocations whose until_unix has passed (until_unix < now_unix).
  // Returns how many it dropped (the generation moves on when > 0).
  std::size_t expire(std::int64_t now_unix);
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
