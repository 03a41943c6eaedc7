// Routing, bearer-key authorisation and REST credential minting
// (draft-uberti-behave-turn-rest §2: username "<expiry>:<user>", password
// base64(HMAC-SHA1(secret, username))).
#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/revocations.hpp>
#include <anyturn/http/api.hpp>
#include <anyturn/http/json.hpp>
#include <anyturn/http/probe_route.hpp>

#include "replies.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <exception>
#include <future>
#include <stdexcept>

namespace anyturn::http {
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view route_metrics = "/metrics";
constexpr std::string_view route_healthz = "/healthz";
constexpr std::string_view route_readyz = "/readyz";
constexpr std::string_view route_ice_servers = "/api/v1/ice-servers";
constexpr std::string_view route_turn_credentials = "/api/v1/turn-credentials";
constexpr std::string_view route_revoke = "/api/v1/credentials/revoke";
constexpr std::string_view route_probe = "/probe";  // probe_route.cpp
constexpr std::string_view route_cf_generate = "/v1/turn/keys/{key_id}/credentials/generate-ice-servers";
constexpr std::string_view route_cf_revoke = "/v1/turn/keys/{key_id}/credentials/{username}/revoke";
constexpr std::string_view route_other = "other";

constexpr std::string_view cf_prefix = "/v1/turn/keys/";
constexpr std::string_view cf_credentials = "/credentials/";
constexpr std::string_view cf_generate = "generate-ice-servers";
constexpr std::string_view cf_revoke_suffix = "/revoke";
// The key id Cloudflare users write for the default tenant (empty id).
constexpr std::string_view default_key_id = "default";
// Longest username the revoke routes accept (the API mints far shorter).
constexpr std::size_t max_username_bytes = 513;

constexpr std::size_t max_user_id_bytes = 128;

std::array<std::uint8_t, 32> sha256(std::string_view s) {
  std::array<std::uint8_t, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), out.data());
  return out;
}

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

// The answers shared with admin_sessions.cpp (replies.hpp).
response make_response(const request& req, bhttp::status status, std::string_view content_type,
                       std::string body) {
  response res{status, req.version()};
  res.set(bhttp::field::server, "anyturn");
  res.set(bhttp::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response json_response(const request& req, bhttp::status status, std::string body) {
  body += '\n';
  response res = make_response(req, status, "application/json", std::move(body));
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

response json_error(const request& req, bhttp::status status, std::string_view message) {
  std::string body = "{\"error\":";
  json::append_string(body, message);
  body += '}';
  return json_response(req, status, std::move(body));
}

response method_not_allowed(const request& req, std::string_view allow) {
  response res = json_error(req, bhttp::status::method_not_allowed, "method not allowed");
  res.set(bhttp::field::allow, allow);
  return res;
}

namespace {

// A user id given by an API client: it becomes part of a STUN USERNAME.
bool valid_user_id(std::string_view u) {
  if (u.empty() || u.size() > max_user_id_bytes || !json::is_valid_utf8(u)) return false;
  for (char c : u) {
    // ':' would make the tenant part of the username ambiguous.
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F || c == ':') return false;
  }
  return true;
}

// The user part of a REST username: "<tenant-id>:<user>", so the TURN side
// resolves the tenant from the username alone (auth::credential_store);
// just "<user>" for the default tenant (empty id).
std::string rest_user_part(const api_tenant& tenant, std::string_view user) {
  if (tenant.id.empty()) return std::string(user);
  std::string out = tenant.id;
  out += ':';
  out += user;
  return out;
}

// A strictly positive integer ttl, capped at max_ttl. Doubles: JSON numbers.
std::optional<std::int64_t> ttl_from_number(double v, std::uint32_t max_ttl) {
  if (!std::isfinite(v) || v < 1 || std::floor(v) != v) return std::nullopt;
  return v >= static_cast<double>(max_ttl) ? std::int64_t{max_ttl} : static_cast<std::int64_t>(v);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding (RFC 3986). In a query '+' is a space
// (application/x-www-form-urlencoded); in a path segment it stays '+'.
std::optional<std::string> decode_percent(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string> percent_decode(std::string_view s) { return decode_percent(s, true); }
std::optional<std::string> path_decode(std::string_view s) { return decode_percent(s, false); }

// A Cloudflare-compatible path, still percent-encoded:
// /v1/turn/keys/<key_id>/credentials/generate-ice-servers or
// /v1/turn/keys/<key_id>/credentials/<username>/revoke.
struct cf_path {
  std::string_view key_id;
  std::string_view username;  // empty for generate-ice-servers
  bool generate = false;
};

std::optional<cf_path> parse_cf_path(std::string_view path) {
  if (!path.starts_with(cf_prefix)) return std::nullopt;
  std::string_view rest = path.substr(cf_prefix.size());
  const auto slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  cf_path out;
  out.key_id = rest.substr(0, slash);
  rest = rest.substr(slash);
  if (!rest.starts_with(cf_credentials)) return std::nullopt;
  rest = rest.substr(cf_credentials.size());
  if (rest == cf_generate) {
    out.generate = true;
    return out;
  }
  if (!rest.ends_with(cf_revoke_suffix)) return std::nullopt;
  rest = rest.substr(0, rest.size() - cf_revoke_suffix.size());
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  out.username = rest;
  return out;
}

bool valid_custom_identifier(std::string_view id) {
  return !id.empty() && auth::custom_identifier_of("~" + std::string(id)) == id;
}

// A username given to a revoke route: printable, bounded.
bool plausible_username(std::string_view u) {
  if (u.empty() || u.size() > max_username_bytes || !json::is_valid_utf8(u)) return false;
  return std::none_of(u.begin(), u.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

std::string_view tenant_label(const api_tenant& t) {
  return t.id.empty() ? std::string_view("default") : std::string_view(t.id);
}

void append_string_array(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    json::append_string(out, items[i]);
  }
  out += ']';
}

}  // namespace

// The request body as a flat JSON object (an empty body is {}), or nullopt
// and the 400 that says why not in `error`.
std::optional<json::object> read_body(const request& req, std::optional<response>& error) {
  const std::string_view body = req.body();
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json::object{};
  json::parse_error e;
  auto obj = json::parse_flat_object(body, e);
  if (!obj) {
    error = json_error(req, bhttp::status::bad_request,
                       "invalid JSON at offset " + std::to_string(e.offset) + ": " + e.message);
  }
  return obj;
}

namespace {

bool given(const json::value* v) { return v != nullptr && v->type != json::value::kind::null; }

// {"iceServers":[{"urls":[stun]},{"urls":[turn],"username":..,"credential":..}]
// without the closing brace (the caller may add members). A kind with no
// URLs is left out.
std::string ice_servers_json(const ice_urls& urls, std::string_view username,
                             std::string_view credential) {
  std::string out = "{\"iceServers\":[";
  bool first = true;
  if (!urls.stun.empty()) {
    out += "{\"urls\":";
    append_string_array(out, urls.stun);
    out += '}';
    first = false;
  }
  if (!urls.turn.empty()) {
    if (!first) out += ',';
    out += "{\"urls\":";
    append_string_array(out, urls.turn);
    out += ",\"username\":";
    json::append_string(out, username);
    out += ",\"credential\":";
    json::append_string(out, credential);
    out += '}';
  }
  out += ']';
  return out;
}

}  // namespace

std::string rfc3339_utc(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return {};
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto key = percent_decode(part.substr(0, eq));
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{}
                                                             : part.substr(eq + 1));
    if (!key || !value) return std::nullopt;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

struct api::cloudflare_target {
  std::optional<std::size_t> tenant;  // nullopt: no tenant has that key id
  std::string username;               // decoded; revoke only
  bool generate = false;
};

api::api(const server_config& cfg)
    : cfg_(cfg),
      issued_(cfg.tenants.size(), 0),
      revocations_(cfg.tenants.size(), 0),
      probe_runner_(std::make_shared<probe_runner>(cfg.probe.max_concurrent)) {
  for (std::size_t t = 0; t < cfg_.tenants.size(); ++t) {
    for (const std::string& key : cfg_.tenants[t].api_keys) keys_.push_back({sha256(key), t});
  }
  for (const std::string& key : cfg_.admin_keys) admin_keys_.push_back(sha256(key));
  for (const api_tenant& t : cfg_.tenants) labels_.emplace_back(tenant_label(t));
}

void api::replace_keys(std::vector<api_tenant> tenants, std::vector<std::string> admin_keys) {
  const std::lock_guard lock(pending_mutex_);
  pending_keys_.emplace(std::move(tenants), std::move(admin_keys));
  keys_pending_.store(true, std::memory_order_release);
}

void api::apply_pending_keys() {
  const std::unique_lock keys_lock(keys_mutex_);
  std::optional<std::pair<std::vector<api_tenant>, std::vector<std::string>>> next;
  {
    const std::lock_guard lock(pending_mutex_);
    next.swap(pending_keys_);
    keys_pending_.store(false, std::memory_order_release);
  }
  if (!next) return;
  std::vector<api_tenant> old = std::move(cfg_.tenants);
  cfg_.tenants = std::move(next->first);
  cfg_.admin_keys = std::move(next->second);
  keys_.clear();
  for (std::size_t t = 0; t < cfg_.tenants.size(); ++t) {
    for (const std::string& key : cfg_.tenants[t].api_keys) keys_.push_back({sha256(key), t});
  }
  admin_keys_.clear();
  for (const std::string& key : cfg_.admin_keys) admin_keys_.push_back(sha256(key));
  // The per-tenant counts follow their tenant id to its new index; a
  // removed tenant's counts go away with it.
  const auto index_of = [&](std::size_t old_index) -> std::optional<std::size_t> {
    for (std::size_t t = 0; t < cfg_.tenants.size(); ++t) {
      if (cfg_.tenants[t].id == old[old_index].id) return t;
    }
    return std::nullopt;
  };
  const std::lock_guard lock(stats_mutex_);
  std::vector<std::uint64_t> issued(cfg_.tenants.size(), 0);
  std::vector<std::uint64_t> revocations(cfg_.tenants.size(), 0);
  std::map<std::pair<std::size_t, std::string>, std::uint64_t> custom;
  for (std::size_t t = 0; t < old.size(); ++t) {
    if (const auto to = index_of(t)) {
      issued[*to] = issued_[t];
      revocations[*to] = revocations_[t];
    }
  }
  for (auto& [key, n] : custom_issued_) {
    if (const auto to = index_of(key.first)) custom[{*to, key.second}] = n;
  }
  issued_ = std::move(issued);
  revocations_ = std::move(revocations);
  custom_issued_ = std::move(custom);
  labels_.clear();
  for (const api_tenant& t : cfg_.tenants) labels_.emplace_back(tenant_label(t));
}

std::int64_t api::now() const {
  if (cfg_.now) return cfg_.now();
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string api::new_user_id() const {
  if (cfg_.generate_user_id) return cfg_.generate_user_id();
  std::array<unsigned char, 8> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : raw) {
    out += hex[b >> 4];
    out += hex[b & 0xF];
  }
  return out;
}

namespace {

// RFC 6750 §2.1: "Bearer" 1*SP token (scheme case-insensitive). Empty when
// the header is not a bearer token.
std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size() ||
      !iequals(authorization.substr(0, scheme.size()), scheme) ||
      authorization[scheme.size()] != ' ') {
    return {};
  }
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace

bool api::authorise_admin(std::string_view authorization) const {
  const std::string_view token = bearer_token(authorization);
  if (token.empty()) return false;
  const auto presented = sha256(token);
  bool found = false;
  for (const auto& digest : admin_keys_) {  // no early exit
    found |= CRYPTO_memcmp(presented.data(), digest.data(), presented.size()) == 0;
  }
  return found;
}

std::optional<std::size_t> api::authorise(std::string_view authorization) const {
  const std::string_view token = bearer_token(authorization);
  if (token.empty()) return std::nullopt;

  const auto presented = sha256(token);
  std::optional<std::size_t> found;
  for (const tenant_keys& k : keys_) {  // no early exit
    const bool match = CRYPTO_memcmp(presented.data(), k.digest.data(), presented.size()) == 0;
    if (match && !found) found = k.tenant;
  }
  return found;
}

std::string_view api::route_label(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  for (std::string_view r : {route_metrics, route_healthz, route_readyz, route_ice_servers,
                             route_turn_credentials, route_revoke, route_probe}) {
    if (path == r) return r;
  }
  if (const auto r = admin_route_label(path)) return *r;
  if (const auto r = sessions_route_label(path)) return *r;
  if (const auto r = test_route_label(path)) return *r;
  if (const auto cf = parse_cf_path(path)) return cf->generate ? route_cf_generate : route_cf_revoke;
  return route_other;
}

void api::count_response(std::string_view route, unsigned code) {
  const std::string_view label = route_label(route);  // a static string
  const std::lock_guard lock(stats_mutex_);
  ++responses_[{label, code}];
}

response api::handle(const request& req, std::string_view client) {
  std::promise<response> later;
  auto answer = later.get_future();
  auto res = handle_async(req, client, [&later](response r) { later.set_value(std::move(r)); });
  if (res) return std::move(*res);
  response deferred = answer.get();
  count_response(sv(req.target()).substr(0, sv(req.target()).find('?')), deferred.result_int());
  return deferred;
}

std::optional<response> api::handle_async(const request& req, std::string_view client,
                                          deliver_fn deliver) {
  const std::string_view target = sv(req.target());
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  if (keys_pending_.load(std::memory_order_acquire)) apply_pending_keys();
  std::optional<response> res = [&]() -> std::optional<response> {
    const std::shared_lock keys_lock(keys_mutex_);
    if (path == route_probe) return probe_route(req, query, client, deliver);
    return do_handle(req, path, query, client);
  }();
  if (res) count_response(path, res->result_int());
  return res;
}

response api::do_handle(const request& req, std::string_view path, std::string_view query,
                        std::string_view client) {
  const bool get = req.method() == bhttp::verb::get;
  if (path == route_healthz) {
    if (!get) return method_not_allowed(req, "GET");
    return make_response(req, bhttp::status::ok, "text/plain; charset=utf-8", "ok\n");
  }
  if (path == route_readyz) {
    if (!get) return method_not_allowed(req, "GET");
    const bool ready = !cfg_.ready || cfg_.ready();
    return ready ? make_response(req, bhttp::status::ok, "text/plain; charset=utf-8", "ready\n")
                 : make_response(req, bhttp::status::service_unavailable,
                                 "text/plain; charset=utf-8", "not ready\n");
  }
  if (path == route_metrics && cfg_.registry != nullptr) {
    if (!get) return method_not_allowed(req, "GET");
    return metrics_page(req);
  }
  if (is_sessions_route(path)) return admin_sessions(req, path, query, client);
  if (is_test_route(path)) return test_route(req, path, client);
  if (path.starts_with("/admin/")) return admin(req, path, client);  // admin.cpp
  if (const auto cf = parse_cf_path(path)) {
    cloudflare_target target;
    target.generate = cf->generate;
    const auto key_id = path_decode(cf->key_id);
    if (!key_id) return json_error(req, bhttp::status::bad_request, "malformed key id in the path");
    if (!cf->generate) {
      auto username = path_decode(cf->username);
      if (!username) return json_error(req, bhttp::status::bad_request, "malformed username in the path");
      target.username = std::move(*username);
    }
    for (std::size_t t = 0; t < cfg_.tenants.size() && !target.tenant; ++t) {
      if (cfg_.tenants[t].id == *key_id) target.tenant = t;
    }
    for (std::size_t t = 0; t < cfg_.tenants.size() && !target.tenant; ++t) {
      if (cfg_.tenants[t].id.empty() && *key_id == default_key_id) target.tenant = t;
    }
    return cloudflare(req, target);
  }
  const bool ice = path == route_ice_servers;
  const bool rest = path == route_turn_credentials;
  const bool revoking = path == route_revoke;
  if (!ice && !rest && !revoking) return json_error(req, bhttp::status::not_found, "not found");
  if ((ice || revoking) && req.method() != bhttp::verb::post) return method_not_allowed(req, "POST");
  if (rest && !get) return method_not_allowed(req, "GET");

  const auto header = req.find(bhttp::field::authorization);
  if (header == req.end()) return unauthorised(req, true);
  const auto tenant = authorise(sv(header->value()));
  if (!tenant) return unauthorised(req, false);
  if (revoking) return revoke(req, *tenant);
  return ice ? ice_servers(req, *tenant) : turn_credentials(req, query, *tenant);
}

response api::metrics_page(const request& req) {
  return make_response(req, bhttp::status::ok, metrics::content_type, cfg_.registry->render());
}

response api::unauthorised(const request& req, bool missing) {
  {
    const std::lock_guard lock(stats_mutex_);
    ++(missing ? auth_missing_ : auth_invalid_);
  }
  // RFC 6750 §3: no error code when no credentials were presented.
  response res = json_error(req, bhttp::status::unauthorized,
                            missing ? "missing API key" : "invalid API key");
  res.set(bhttp::field::www_authenticate,
          missing ? "Bearer realm=\"anyturn\"" : "Bearer realm=\"anyturn\", error=\"invalid_token\"");
  return res;
}

response api::ice_servers(const request& req, std::size_t tenant_index) {
  const api_tenant& tenant = cfg_.tenants[tenant_index];
  std::int64_t ttl = tenant.default_ttl;
  std::string user;

  const std::string_view body = req.body();
  if (body.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    json::parse_error error;
    const auto obj = json::parse_flat_object(body, error);
    if (!obj) {
      return json_error(req, bhttp::status::bad_request,
                        "invalid JSON at offset " + std::to_string(error.offset) + ": " +
                            error.message);
    }
    if (const json::value* v = obj->find("ttl"); v != nullptr && v->type != json::value::kind::null) {
      const auto t = v->type == json::value::kind::number ? ttl_from_number(v->number, tenant.max_ttl)
                                                          : std::nullopt;
      if (!t) return json_error(req, bhttp::status::bad_request, "ttl: expected a positive integer");
      ttl = *t;
    }
    if (const json::value* v = obj->find("user");
        v != nullptr && v->type != json::value::kind::null) {
      if (v->type != json::value::kind::string || !valid_user_id(v->text)) {
        return json_error(req, bhttp::status::bad_request,
                          "user: expected a string of 1 to 128 bytes without control characters or ':'");
      }
      user = v->text;
    }
  }
  ttl = std::min<std::int64_t>(ttl, tenant.max_ttl);
  if (user.empty()) user = new_user_id();

  const std::int64_t t = now();
  const std::string username = auth::rest_username(t, ttl, rest_user_part(tenant, user));
  const std::string credential = auth::rest_password(tenant.secrets.front(), username);

  std::string out = ice_servers_json(cfg_.urls, username, credential);
  out += ",\"expiresAt\":";
  json::append_string(out, rfc3339_utc(t + ttl));
  out += '}';
  count_issued(tenant_index, {});
  return json_response(req, bhttp::status::ok, std::move(out));
}

response api::turn_credentials(const request& req, std::string_view query,
                               std::size_t tenant_index) {
  const api_tenant& tenant = cfg_.tenants[tenant_index];
  const auto params = parse_query(query);
  if (!params) return json_error(req, bhttp::status::bad_request, "malformed query string");
  std::optional<std::string_view> service, user, ttl_text;
  for (const auto& [key, value] : *params) {
    std::optional<std::string_view>* slot = key == "service"    ? &service
                                            : key == "username" ? &user
                                            : key == "ttl"      ? &ttl_text
                                                                : nullptr;
    if (slot == nullptr) continue;  // unknown parameters are ignored
    if (*slot) return json_error(req, bhttp::status::bad_request, key + ": given twice");
    *slot = value;
  }
  if (service != "turn") {
    return json_error(req, bhttp::status::bad_request, "service: must be \"turn\"");
  }
  std::int64_t ttl = tenant.default_ttl;
  if (ttl_text) {
    std::uint64_t v = 0;
    const auto r = std::from_chars(ttl_text->data(), ttl_text->data() + ttl_text->size(), v);
    if (r.ptr != ttl_text->data() + ttl_text->size() || ttl_text->empty() ||
        (r.ec != std::errc{} && r.ec != std::errc::result_out_of_range) ||
        (r.ec == std::errc{} && v == 0)) {
      return json_error(req, bhttp::status::bad_request, "ttl: expected a positive integer");
    }
    ttl = r.ec == std::errc::result_out_of_range || v > tenant.max_ttl
              ? std::int64_t{tenant.max_ttl}
              : static_cast<std::int64_t>(v);
  }
  ttl = std::min<std::int64_t>(ttl, tenant.max_ttl);
  std::string user_id;
  if (user) {
    if (!valid_user_id(*user)) {
      return json_error(req, bhttp::status::bad_request,
                        "username: expected 1 to 128 bytes of UTF-8 without control characters or ':'");
    }
    user_id = *user;
  } else {
    user_id = new_user_id();
  }

  const std::string username = auth::rest_username(now(), ttl, rest_user_part(tenant, user_id));
  std::string out = "{\"username\":";
  json::append_string(out, username);
  out += ",\"password\":";
  json::append_string(out, auth::rest_password(tenant.secrets.front(), username));
  out += ",\"ttl\":";
  out += std::to_string(ttl);
  out += ",\"uris\":";
  append_string_array(out, cfg_.urls.turn);
  out += '}';
  count_issued(tenant_index, {});
  return json_response(req, bhttp::status::ok, std::move(out));
}

void api::count_issued(std::size_t tenant, std::string_view custom_identifier) {
  const std::lock_guard lock(stats_mutex_);
  ++issued_[tenant];
  if (custom_identifier.empty()) return;
  // Bounded label: the first max_custom_identifier_labels distinct values.
  std::string label = "other";
  if (custom_labels_.contains(custom_identifier)) {
    label = custom_identifier;
  } else if (custom_labels_.size() < max_custom_identifier_labels) {
    custom_labels_.emplace(custom_identifier);
    label = custom_identifier;
  }
  ++custom_issued_[{tenant, std::move(label)}];
}

std::optional<response> api::check_username(const request& req, std::size_t tenant_index,
                                            std::string_view username) const {
  if (!plausible_username(username)) {
    return json_error(req, bhttp::status::bad_request,
                      "username: expected 1 to 513 bytes of UTF-8 without control characters");
  }
  if (!auth::rest_expiry_of(username)) {
    return json_error(req, bhttp::status::bad_request,
                      "username: not a TURN REST username (\"<expiry>:<user>\")");
  }
  const api_tenant& tenant = cfg_.tenants[tenant_index];
  bool ours = true;
  if (!tenant.id.empty()) {
    ours = !auth::rest_user_of(username, tenant.id).empty();
  } else {
    // The default tenant's usernames carry no tenant id: refuse those that
    // name another tenant of this API.
    for (const api_tenant& other : cfg_.tenants) {
      if (!other.id.empty() && !auth::rest_user_of(username, other.id).empty()) ours = false;
    }
  }
  if (!ours) {
    return json_error(req, bhttp::status::forbidden,
                      "username: not a credential of this API key's tenant");
  }
  return std::nullopt;
}

std::optional<response> api::publish(const request& req, std::size_t tenant,
                                     const auth::revocation& r) {
  if (!cfg_.revoke) {
    return json_error(req, bhttp::status::not_implemented, "revocation is not enabled on this server");
  }
  // A credential whose expiry has passed is refused already: nothing to publish.
  if (r.until_unix < now()) return std::nullopt;
  try {
    cfg_.revoke(r);
  } catch (const std::exception&) {
    return json_error(req, bhttp::status::internal_server_error, "revocation failed");
  }
  const std::lock_guard lock(stats_mutex_);
  ++revocations_[tenant];
  return std::nullopt;
}

response api::revoke(const request& req, std::size_t tenant_index) {
  const api_tenant& tenant = cfg_.tenants[tenant_index];
  std::optional<response> error;
  const auto obj = read_body(req, error);
  if (!obj) return std::move(*error);
  const json::value* username = obj->find("username");
  const json::value* user = obj->find("user");
  if (given(username) == given(user)) {
    return json_error(req, bhttp::status::bad_request,
                      "expected exactly one of \"username\" (one credential) or \"user\" "
                      "(every credential of a user)");
  }
  auth::revocation r;
  r.tenant = tenant.id;
  if (given(username)) {
    if (username->type != json::value::kind::string) {
      return json_error(req, bhttp::status::bad_request, "username: expected a string");
    }
    if (auto bad = check_username(req, tenant_index, username->text)) return std::move(*bad);
    r.username = username->text;
    r.until_unix = *auth::rest_expiry_of(r.username);
  } else {
    if (user->type != json::value::kind::string || !valid_user_id(user->text)) {
      return json_error(req, bhttp::status::bad_request,
                        "user: expected a string of 1 to 128 bytes without control characters or ':'");
    }
    r.user = user->text;
    // Every credential of the user the API can have minted ends by then.
    r.until_unix = now() + tenant.max_ttl;
  }
  if (auto failed = publish(req, tenant_index, r)) return std::move(*failed);

  std::string out = "{\"tenant\":";
  json::append_string(out, tenant.id);
  if (!r.username.empty()) {
    out += ",\"username\":";
    json::append_string(out, r.username);
  } else {
    out += ",\"user\":";
    json::append_string(out, r.user);
  }
  out += ",\"until\":";
  json::append_string(out, rfc3339_utc(r.until_unix));
  out += '}';
  return json_response(req, bhttp::status::ok, std::move(out));
}

response api::cloudflare(const request& req, const cloudflare_target& target) {
  if (req.method() != bhttp::verb::post) return method_not_allowed(req, "POST");
  const auto header = req.find(bhttp::field::authorization);
  if (header == req.end()) return unauthorised(req, true);
  // A key of another tenant (or any key, for an unknown key id) is refused
  // like an unknown key, so the answer says nothing about other tenants.
  const auto tenant = authorise(sv(header->value()));
  if (!tenant || !target.tenant || *tenant != *target.tenant) return unauthorised(req, false);
  return target.generate ? cloudflare_generate(req, *tenant)
                         : cloudflare_revoke(req, *tenant, target.username);
}

response api::cloudflare_generate(const request& req, std::size_t tenant_index) {
  const api_tenant& tenant = cfg_.tenants[tenant_index];
  std::optional<response> error;
  const auto obj = read_body(req, error);
  if (!obj) return std::move(*error);
  std::int64_t ttl = tenant.default_ttl;
  if (const json::value* v = obj->find("ttl"); given(v)) {
    const auto t = v->type == json::value::kind::number ? ttl_from_number(v->number, tenant.max_ttl)
                                                        : std::nullopt;
    if (!t) return json_error(req, bhttp::status::bad_request, "ttl: expected a positive integer");
    ttl = *t;
  }
  ttl = std::min<std::int64_t>(ttl, tenant.max_ttl);
  std::string custom;
  if (const json::value* v = obj->find("customIdentifier"); given(v)) {
    if (v->type != json::value::kind::string || !valid_custom_identifier(v->text)) {
      return json_error(req, bhttp::status::bad_request,
                        "customIdentifier: expected 1 to 64 characters of A-Z a-z 0-9 . _ -");
    }
    custom = v->text;
  }
  std::string user = new_user_id();
  if (!custom.empty()) {
    user += '~';
    user += custom;
  }
  const std::string username = auth::rest_username(now(), ttl, rest_user_part(tenant, user));
  std::string out =
      ice_servers_json(cfg_.urls, username, auth::rest_password(tenant.secrets.front(), username));
  out += '}';
  count_issued(tenant_index, custom);
  return json_response(req, bhttp::status::created, std::move(out));
}

response api::cloudflare_revoke(const request& req, std::size_t tenant_index,
                                std::string_view username) {
  if (auto bad = check_username(req, tenant_index, username)) return std::move(*bad);
  auth::revocation r;
  r.tenant = cfg_.tenants[tenant_index].id;
  r.username = std::string(username);
  r.until_unix = *auth::rest_expiry_of(username);
  if (auto failed = publish(req, tenant_index, r)) return std::move(*failed);
  response res{bhttp::status::no_content, req.version()};
  res.set(bhttp::field::server, "anyturn");
  res.set(bhttp::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  return res;
}

void api::collect(metrics::sink& s) const {
  const std::lock_guard lock(stats_mutex_);
  for (const auto& [key, n] : responses_) {
    const std::string code = std::to_string(key.second);
    s.counter("anyturn_http_requests_total", "HTTP requests answered, by route and status code.",
              {{"route", key.first}, {"code", code}}, n);
  }
  constexpr std::string_view auth_help =
      "Credentials API calls refused for a missing or invalid API key.";
  s.counter("anyturn_http_api_auth_failures_total", auth_help, {{"reason", "missing"}},
            auth_missing_);
  s.counter("anyturn_http_api_auth_failures_total", auth_help, {{"reason", "invalid"}},
            auth_invalid_);
  constexpr std::string_view admin_help =
      "Admin endpoint calls refused: no or an invalid admin key, or too many failures from the "
      "client's address (429).";
  s.counter("anyturn_http_admin_auth_failures_total", admin_help, {{"reason", "missing"}},
            admin_missing_);
  s.counter("anyturn_http_admin_auth_failures_total", admin_help, {{"reason", "invalid"}},
            admin_invalid_);
  s.counter("anyturn_http_admin_auth_failures_total", admin_help, {{"reason", "rate_limited"}},
            admin_limited_);
  for (std::size_t t = 0; t < issued_.size(); ++t) {
    s.counter("anyturn_http_credentials_issued_total",
              "TURN REST credentials issued by the API, by tenant.",
              {{"tenant", labels_[t]}}, issued_[t]);
  }
  for (const auto& [key, n] : custom_issued_) {
    s.counter("anyturn_http_credentials_custom_identifier_total",
              "Credentials issued with a customIdentifier, by tenant and identifier (the first "
              "100 distinct identifiers of the process; later ones count as \"other\").",
              {{"tenant", labels_[key.first]}, {"custom_identifier", key.second}},
              n);
  }
  collect_probes(s);
  for (std::size_t t = 0; t < revocations_.size(); ++t) {
    s.counter("anyturn_http_revocations_total",
              "Credential revocations accepted by the API (one credential or one user), by tenant.",
              {{"tenant", labels_[t]}}, revocations_[t]);
  }
  if (cfg_.test_page) {
    const test_links::totals links = test_links_.counts();
    constexpr std::string_view links_help =
        "One-time /test page links: issued by POST /admin/test-link, and what POST "
        "/test/credentials made of a token (redeemed, expired, reused, invalid).";
    const std::array<std::pair<std::string_view, std::uint64_t>, 5> by_result{{
        {"issued", links.issued},
        {"redeemed", links.redeemed},
        {"expired", links.expired},
        {"reused", links.reused},
        {"invalid", links.invalid},
    }};
    for (const auto& [result, n] : by_result) {
      s.counter("anyturn_http_test_links_total", links_help, {{"result", result}}, n);
    }
  }
}

}  // namespace anyturn::http
