// Long-term credential keys (RFC 8489 §9.2.2, §18.5) and TURN REST usernames
// (draft-uberti-behave-turn-rest §2.2).
#include <anyturn/auth/credentials.hpp>

#include "base64.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace anyturn::auth {
namespace {

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// digest(user ":" realm ":" password) without building the joined string.
// Returns false if OpenSSL fails (e.g. MD5 disabled by a FIPS provider).
bool try_digest(const EVP_MD* md, std::string_view user, std::string_view realm,
                std::string_view password, std::uint8_t* out, unsigned expected_size) noexcept {
  std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx{EVP_MD_CTX_new()};
  if (!ctx || md == nullptr) return false;
  unsigned len = 0;
  const bool ok = EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx.get(), user.data(), user.size()) == 1 &&
                  EVP_DigestUpdate(ctx.get(), ":", 1) == 1 &&
                  EVP_DigestUpdate(ctx.get(), realm.data(), realm.size()) == 1 &&
                  EVP_DigestUpdate(ctx.get(), ":", 1) == 1 &&
                  EVP_DigestUpdate(ctx.get(), password.data(), password.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx.get(), out, &len) == 1;
  return ok && len == expected_size;
}

bool try_md5_key(std::string_view user, std::string_view realm, std::string_view password,
                 md5_key& out) noexcept {
  return try_digest(EVP_md5(), user, realm, password, out.data(), out.size());
}

bool try_sha256_key(std::string_view user, std::string_view realm, std::string_view password,
                    sha256_key& out) noexcept {
  return try_digest(EVP_sha256(), user, realm, password, out.data(), out.size());
}

// base64(HMAC-SHA1(secret, username)) into a fixed buffer.
bool try_rest_password(std::string_view secret, std::string_view username,
                       std::array<char, rest_password_size>& out) noexcept {
  std::array<std::uint8_t, 20> mac{};
  unsigned mac_len = 0;
  if (HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac.data(),
           &mac_len) == nullptr ||
      mac_len != mac.size()) {
    return false;
  }
  detail::base64_encode(mac, out.data(), /*url=*/false, /*pad=*/true);
  return true;
}

// Longest <expiry> accepted: 18 digits always fits in int64.
constexpr std::size_t max_expiry_digits = 18;

enum class number_parse { not_a_number, ok, out_of_range };

number_parse parse_expiry(std::string_view text, std::int64_t& value) noexcept {
  if (text.empty()) return number_parse::not_a_number;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return number_parse::not_a_number;
  }
  if (text.size() > max_expiry_digits) return number_parse::out_of_range;
  std::int64_t v = 0;
  for (const char c : text) v = v * 10 + (c - '0');
  value = v;
  return number_parse::ok;
}

enum class rest_parse { ok, not_rest, malformed };

// See the credential_store comment in credentials.hpp for the accepted forms.
rest_parse parse_rest_username(std::string_view username, std::int64_t& expiry) noexcept {
  const auto first_colon = username.find(':');
  if (first_colon == std::string_view::npos) {
    switch (parse_expiry(username, expiry)) {
      case number_parse::ok: return rest_parse::ok;
      case number_parse::out_of_range: return rest_parse::malformed;
      case number_parse::not_a_number: return rest_parse::not_rest;
    }
    return rest_parse::not_rest;
  }

  // "<expiry>:<user>"
  const std::string_view head = username.substr(0, first_colon);
  switch (parse_expiry(head, expiry)) {
    case number_parse::ok:
      return first_colon + 1 < username.size() ? rest_parse::ok : rest_parse::malformed;
    case number_parse::out_of_range: return rest_parse::malformed;
    case number_parse::not_a_number: break;
  }

  // "<user>:<expiry>" (coturn's alternative order); head is not all digits.
  const auto last_colon = username.rfind(':');
  switch (parse_expiry(username.substr(last_colon + 1), expiry)) {
    case number_parse::ok: return head.empty() ? rest_parse::malformed : rest_parse::ok;
    case number_parse::out_of_range: return rest_parse::malformed;
    case number_parse::not_a_number: return rest_parse::not_rest;
  }
  return rest_parse::not_rest;
}

struct name_less {
  template <typename Entry>
  bool operator()(const Entry& a, std::string_view b) const {
    return std::string_view{a.first} < b;
  }
  template <typename Entry>
  bool operator()(const Entry& a, const Entry& b) const {
    return a.first < b.first;
  }
};

// The user part of a well-formed REST username: after "<expiry>:", or
// before ":<expiry>" in coturn's order.
std::string_view rest_user_part(std::string_view username) {
  const auto first = username.find(':');
  if (first == std::string_view::npos) return {};
  const auto head = username.substr(0, first);
  const bool head_digits =
      std::all_of(head.begin(), head.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (head_digits) return username.substr(first + 1);
  return username.substr(0, username.rfind(':'));
}

}  // namespace

std::string_view custom_identifier_of(std::string_view username) {
  const auto hash = username.rfind('~');
  if (hash == std::string_view::npos) return {};
  const std::string_view id = username.substr(hash + 1);
  if (id.empty() || id.size() > max_custom_identifier_bytes) return {};
  const bool valid = std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
  return valid ? id : std::string_view{};
}

md5_key derive_md5_key(std::string_view user, std::string_view realm, std::string_view password) {
  md5_key key{};
  if (!try_md5_key(user, realm, password, key)) {
    throw std::runtime_error("auth: MD5 key derivation failed (is MD5 available?)");
  }
  return key;
}

sha256_key derive_sha256_key(std::string_view user, std::string_view realm,
                             std::string_view password) {
  sha256_key key{};
  if (!try_sha256_key(user, realm, password, key)) {
    throw std::runtime_error("auth: SHA-256 key derivation failed");
  }
  return key;
}

std::string rest_password(std::string_view secret, std::string_view username) {
  std::array<char, rest_password_size> buf{};
  if (!try_rest_password(secret, username, buf)) {
    throw std::runtime_error("auth: HMAC-SHA1 failed");
  }
  return std::string(buf.data(), buf.size());
}

std::string rest_username(std::int64_t now, std::int64_t ttl, std::string_view user) {
  std::string out = std::to_string(now + ttl);
  if (!user.empty()) {
    out += ':';
    out += user;
  }
  return out;
}

credential_store::credential_store(std::string realm, std::vector<static_user> users,
                                   std::vector<std::string> rest_secrets)
    : credential_store(std::move(realm),
                       std::vector<tenant_credentials>{
                           tenant_credentials{"", std::move(users), std::move(rest_secrets)}}) {}

bool is_probe_username(std::string_view username) noexcept {
  std::int64_t expiry = 0;
  const auto colon = username.find(':');
  return colon != std::string_view::npos && username.substr(colon + 1) == probe_user &&
         parse_rest_username(username, expiry) == rest_parse::ok;
}

credential_store::credential_store(std::string realm, std::vector<tenant_credentials> tenants)
    : realm_(std::move(realm)) {
  if (tenants.empty()) tenants.emplace_back();
  if (tenants.size() > 0xFFFF) throw std::invalid_argument("auth: too many tenants");
  for (std::size_t t = 0; t < tenants.size(); ++t) {
    auto& tenant = tenants[t];
    const std::string label = tenant.id.empty() ? std::string("default tenant") : "tenant '" + tenant.id + "'";
    if (tenant.secrets.size() > max_candidates) {
      throw std::invalid_argument("auth: " + label + ": at most " + std::to_string(max_candidates) +
                                  " REST secrets are supported, got " +
                                  std::to_string(tenant.secrets.size()));
    }
    for (const auto& secret : tenant.secrets) {
      if (secret.empty()) throw std::invalid_argument("auth: " + label + ": empty REST secret");
    }
    if (t > 0) {
      if (tenant.id.empty()) throw std::invalid_argument("auth: a tenant needs an id");
      if (tenant.id.find(':') != std::string::npos)
        throw std::invalid_argument("auth: tenant id '" + tenant.id + "' contains ':'");
    }
    if (!tenant.id.empty() &&
        !tenant_by_id_.emplace(tenant.id, static_cast<tenant_index>(t)).second) {
      throw std::invalid_argument("auth: tenant '" + tenant.id + "' is defined twice");
    }
    for (auto& user : tenant.users) {
      if (user.password.has_value() == user.key.has_value()) {
        throw std::invalid_argument("auth: user '" + user.name +
                                    "' needs exactly one of password and key");
      }
      user_entry entry;
      entry.tenant = static_cast<tenant_index>(t);
      if (user.password) {
        entry.key.md5 = derive_md5_key(user.name, realm_, *user.password);
        entry.key.sha256 = derive_sha256_key(user.name, realm_, *user.password);
      } else {
        entry.key.md5 = *user.key;  // MD5-only: SHA-256 cannot be derived from it
      }
      users_.emplace_back(std::move(user.name), entry);
    }
    tenants_.push_back({std::move(tenant.id), std::move(tenant.secrets)});
  }
  std::sort(users_.begin(), users_.end(), name_less{});
  const auto dup = std::adjacent_find(users_.begin(), users_.end(),
                                      [](const auto& a, const auto& b) { return a.first == b.first; });
  if (dup != users_.end()) {
    throw std::invalid_argument("auth: user '" + dup->first + "' is defined twice");
  }
}

bool credential_store::has_rest_secrets() const {
  return std::any_of(tenants_.begin(), tenants_.end(),
                     [](const tenant_entry& t) { return !t.secrets.empty(); });
}

bool credential_store::is_static_user(std::string_view username) const noexcept {
  const auto it = std::lower_bound(users_.begin(), users_.end(), username, name_less{});
  return it != users_.end() && it->first == username;
}

lookup_status credential_store::lookup(std::string_view username, std::int64_t now,
                                       std::span<key_candidate> out,
                                       std::size_t& count) const noexcept {
  tenant_index tenant = default_tenant;
  return lookup(username, now, out, count, tenant);
}

lookup_status credential_store::lookup(std::string_view username, std::int64_t now,
                                       std::span<key_candidate> out, std::size_t& count,
                                       tenant_index& tenant) const noexcept {
  count = 0;
  tenant = default_tenant;

  // Static users win over a REST username spelled the same way.
  const auto it = std::lower_bound(users_.begin(), users_.end(), username, name_less{});
  if (it != users_.end() && it->first == username) {
    tenant = it->second.tenant;
    if (!out.empty()) {
      out[0] = it->second.key;
      count = 1;
    }
    return lookup_status::ok;
  }

  std::int64_t expiry = 0;
  switch (parse_rest_username(username, expiry)) {
    case rest_parse::not_rest: return lookup_status::unknown_user;
    case rest_parse::malformed: return lookup_status::malformed;
    case rest_parse::ok: break;
  }
  // The tenant, in O(1): "<tenant-id>:" at the start of the user part.
  const std::string_view user_part = rest_user_part(username);
  if (const auto colon = user_part.find(':'); colon != std::string_view::npos) {
    const auto found = tenant_by_id_.find(user_part.substr(0, colon));
    if (found != tenant_by_id_.end()) tenant = found->second;
  }
  // The node's own probe credential: its internal secret only.
  const bool probe = !probe_secret_.empty() && is_probe_username(username);
  const std::span<const std::string> secrets =
      probe ? std::span<const std::string>(&probe_secret_, 1)
            : std::span<const std::string>(tenants_[tenant].secrets);
  if (probe) tenant = default_tenant;
  if (secrets.empty()) return lookup_status::unknown_user;
  if (expiry < now) return lookup_status::expired;

  // One candidate per secret: key = H(username:realm:base64(HMAC-SHA1(secret, username))).
  const std::size_t n = std::min({out.size(), secrets.size(), max_candidates});
  std::array<char, rest_password_size> password{};
  for (std::size_t i = 0; i < n; ++i) {
    if (!try_rest_password(secrets[i], username, password)) continue;
    const std::string_view pw{password.data(), password.size()};
    key_candidate& c = out[count];
    sha256_key sha{};
    if (!try_md5_key(username, realm_, pw, c.md5)) continue;
    if (try_sha256_key(username, realm_, pw, sha)) {
      c.sha256 = sha;
    } else {
      c.sha256.reset();
    }
    ++count;
  }
  if (n > 0 && count == 0) return lookup_status::unknown_user;  // crypto failure: no usable key
  return lookup_status::ok;
}

}  // namespace anyturn::auth
