// Routing, bearer-key authorisation and REST credential minting
// (draft-uberti-behave-turn-rest §2: username "<expiry>:<user>", password
// base64(HMAC-SHA1(secret, username))).
#include <anyturn/auth/credentials.hpp>
#include <anyturn/http/api.hpp>
#include <anyturn/http/json.hpp>

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
#include <stdexcept>

namespace anyturn::http {
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view route_metrics = "/metrics";
constexpr std::string_view route_healthz = "/healthz";
constexpr std::string_view route_readyz = "/readyz";
constexpr std::string_view route_ice_servers = "/api/v1/ice-servers";
constexpr std::string_view route_turn_credentials = "/api/v1/turn-credentials";
constexpr std::string_view route_other = "other";

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

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
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

void append_string_array(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    json::append_string(out, items[i]);
  }
  out += ']';
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

api::api(const server_config& cfg) : cfg_(cfg), issued_(cfg.tenants.size(), 0) {
  for (std::size_t t = 0; t < cfg_.tenants.size(); ++t) {
    for (const std::string& key : cfg_.tenants[t].api_keys) keys_.push_back({sha256(key), t});
  }
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

std::optional<std::size_t> api::authorise(std::string_view authorization) const {
  // RFC 6750 §2.1: "Bearer" 1*SP token (scheme case-insensitive).
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size() ||
      !iequals(authorization.substr(0, scheme.size()), scheme) ||
      authorization[scheme.size()] != ' ') {
    return std::nullopt;
  }
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
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
                             route_turn_credentials}) {
    if (path == r) return r;
  }
  return route_other;
}

void api::count_response(std::string_view route, unsigned code) {
  const std::string_view label = route_label(route);  // a static string
  const std::lock_guard lock(stats_mutex_);
  ++responses_[{label, code}];
}

response api::handle(const request& req) {
  const std::string_view target = sv(req.target());
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  response res = do_handle(req, path, query);
  count_response(path, res.result_int());
  return res;
}

response api::do_handle(const request& req, std::string_view path, std::string_view query) {
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
  const bool ice = path == route_ice_servers;
  const bool rest = path == route_turn_credentials;
  if (!ice && !rest) return json_error(req, bhttp::status::not_found, "not found");
  if (ice && req.method() != bhttp::verb::post) return method_not_allowed(req, "POST");
  if (rest && !get) return method_not_allowed(req, "GET");

  const auto header = req.find(bhttp::field::authorization);
  if (header == req.end()) return unauthorised(req, true);
  const auto tenant = authorise(sv(header->value()));
  if (!tenant) return unauthorised(req, false);
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

  std::string out = "{\"iceServers\":[";
  bool first = true;
  if (!cfg_.urls.stun.empty()) {
    out += "{\"urls\":";
    append_string_array(out, cfg_.urls.stun);
    out += '}';
    first = false;
  }
  if (!cfg_.urls.turn.empty()) {
    if (!first) out += ',';
    out += "{\"urls\":";
    append_string_array(out, cfg_.urls.turn);
    out += ",\"username\":";
    json::append_string(out, username);
    out += ",\"credential\":";
    json::append_string(out, credential);
    out += '}';
  }
  out += "],\"expiresAt\":";
  json::append_string(out, rfc3339_utc(t + ttl));
  out += '}';
  {
    const std::lock_guard lock(stats_mutex_);
    ++issued_[tenant_index];
  }
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
  {
    const std::lock_guard lock(stats_mutex_);
    ++issued_[tenant_index];
  }
  return json_response(req, bhttp::status::ok, std::move(out));
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
  for (std::size_t t = 0; t < issued_.size(); ++t) {
    s.counter("anyturn_http_credentials_issued_total",
              "TURN REST credentials issued by the API, by tenant.",
              {{"tenant", cfg_.tenants[t].id.empty() ? std::string_view("default")
                                                     : std::string_view(cfg_.tenants[t].id)}},
              issued_[t]);
  }
}

}  // namespace anyturn::http
