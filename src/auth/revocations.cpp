// Revoked credentials: an immutable sorted set, swapped whole by the board.
#include <anyturn/auth/revocations.hpp>

#include <algorithm>
#include <iterator>
#include <tuple>
#include <utility>

namespace anyturn::auth {
namespace {

// Longest <expiry> accepted, as in credentials.cpp: 18 digits fit in int64.
constexpr std::size_t max_expiry_digits = 18;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::int64_t> parse_expiry(std::string_view s) {
  if (!all_digits(s) || s.size() > max_expiry_digits) return std::nullopt;
  std::int64_t v = 0;
  for (const char c : s) v = v * 10 + (c - '0');
  return v;
}

// The user part and expiry of a REST username (see credentials.hpp for the
// accepted forms). The user part is empty for a bare "<expiry>".
struct rest_parts {
  std::string_view user_part;
  std::int64_t expiry = 0;
};

std::optional<rest_parts> split_rest(std::string_view username) {
  const auto first = username.find(':');
  if (first == std::string_view::npos) {
    const auto e = parse_expiry(username);
    if (!e) return std::nullopt;
    return rest_parts{{}, *e};
  }
  const std::string_view head = username.substr(0, first);
  if (all_digits(head)) {  // "<expiry>:<user>"
    const auto e = parse_expiry(head);
    const std::string_view user = username.substr(first + 1);
    if (!e || user.empty()) return std::nullopt;
    return rest_parts{user, *e};
  }
  const auto last = username.rfind(':');  // "<user>:<expiry>" (coturn)
  const auto e = parse_expiry(username.substr(last + 1));
  if (!e || head.empty()) return std::nullopt;
  return rest_parts{username.substr(0, last), *e};
}

// The key a revocation is indexed by: (tenant, username, user) with user
// blank for a username target, so that each target has one key.
using target_key = std::tuple<std::string_view, std::string_view, std::string_view>;

target_key key_of(const revocation& r) {
  return {r.tenant, r.username, r.username.empty() ? std::string_view(r.user) : std::string_view()};
}

bool key_less(const revocation& a, const revocation& b) { return key_of(a) < key_of(b); }

bool has_target(const revocation& r) { return !r.username.empty() || !r.user.empty(); }

// Sorts by target and merges entries with the same target (longest until).
void normalise(std::vector<revocation>& v) {
  std::erase_if(v, [](const revocation& r) { return !has_target(r); });
  if (!std::is_sorted(v.begin(), v.end(), key_less)) {
    std::stable_sort(v.begin(), v.end(), key_less);
  }
  std::size_t out = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (out > 0 && key_of(v[out - 1]) == key_of(v[i])) {
      v[out - 1].until_unix = std::max(v[out - 1].until_unix, v[i].until_unix);
      continue;
    }
    if (out != i) v[out] = std::move(v[i]);
    ++out;
  }
  v.resize(out);
}

// The entry with key `k`, or nullptr. O(log n), no allocation.
const revocation* find(const std::vector<revocation>& v, const target_key& k) {
  const auto it = std::lower_bound(v.begin(), v.end(), k,
                                   [](const revocation& r, const target_key& key) {
                                     return key_of(r) < key;
                                   });
  return it != v.end() && key_of(*it) == k ? &*it : nullptr;
}

}  // namespace

std::string_view rest_user_of(std::string_view username, std::string_view tenant_id) {
  const auto parts = split_rest(username);
  if (!parts || parts->user_part.empty()) return {};
  std::string_view user = parts->user_part;
  if (tenant_id.empty()) return user;
  if (user.size() <= tenant_id.size() + 1 || !user.starts_with(tenant_id) ||
      user[tenant_id.size()] != ':') {
    return {};
  }
  return user.substr(tenant_id.size() + 1);
}

std::optional<std::int64_t> rest_expiry_of(std::string_view username) {
  const auto parts = split_rest(username);
  if (!parts) return std::nullopt;
  return parts->expiry;
}

revocation_set::revocation_set(std::vector<revocation> entries) : entries_(std::move(entries)) {
  normalise(entries_);
}

bool revocation_set::revoked(std::string_view tenant_id, std::string_view username,
                             std::int64_t now_unix) const {
  if (entries_.empty() || username.empty()) return false;
  if (const revocation* r = find(entries_, target_key{tenant_id, username, {}});
      r != nullptr && now_unix <= r->until_unix) {
    return true;
  }
  const std::string_view user = rest_user_of(username, tenant_id);
  if (user.empty()) return false;
  const revocation* r = find(entries_, target_key{tenant_id, {}, user});
  return r != nullptr && now_unix <= r->until_unix;
}

bool revocation_board::add(const revocation& r) { return add(std::span<const revocation>(&r, 1)); }

bool revocation_board::add(std::span<const revocation> batch) {
  const std::lock_guard lock(mutex_);
  const std::vector<revocation>& cur = current_->entries();
  // Only what changes the set: a new target, or a later until.
  std::vector<revocation> fresh;
  for (const revocation& r : batch) {
    if (!has_target(r)) continue;
    const revocation* have = find(cur, key_of(r));
    if (have != nullptr && have->until_unix >= r.until_unix) continue;
    fresh.push_back(r);
  }
  if (fresh.empty()) return false;
  std::vector<revocation> next;
  next.reserve(cur.size() + fresh.size());
  next.insert(next.end(), cur.begin(), cur.end());
  normalise(fresh);
  // Merge two sorted, deduplicated runs; normalise() keeps the later until.
  const auto mid = static_cast<std::ptrdiff_t>(next.size());
  next.insert(next.end(), std::make_move_iterator(fresh.begin()),
              std::make_move_iterator(fresh.end()));
  std::inplace_merge(next.begin(), next.begin() + mid, next.end(), key_less);
  current_ = std::make_shared<const revocation_set>(std::move(next));
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

std::size_t revocation_board::expire(std::int64_t now_unix) {
  const std::lock_guard lock(mutex_);
  const std::vector<revocation>& cur = current_->entries();
  const auto live = static_cast<std::size_t>(std::count_if(
      cur.begin(), cur.end(), [now_unix](const revocation& r) { return r.until_unix >= now_unix; }));
  if (live == cur.size()) return 0;
  std::vector<revocation> next;
  next.reserve(live);
  std::copy_if(cur.begin(), cur.end(), std::back_inserter(next),
               [now_unix](const revocation& r) { return r.until_unix >= now_unix; });
  const std::size_t dropped = cur.size() - next.size();
  current_ = std::make_shared<const revocation_set>(std::move(next));
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return dropped;
}

std::shared_ptr<const revocation_set> revocation_board::snapshot() const {
  const std::lock_guard lock(mutex_);
  return current_;
}

}  // namespace anyturn::auth
