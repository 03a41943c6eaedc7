// The sessions admin API (docs/admin.md): GET /admin/sessions (a page of
// allocations, filtered), DELETE /admin/sessions/{id}, DELETE
// /admin/sessions?user=..., and POST /admin/revoke (any tenant's username or
// REST user). Behind the admin key like every /admin/* route (api.cpp's
// admin_refusal: failure limit, 401, 429). The work is the hooks' (the app
// asks the workers, each for one bounded page at a time); here are only the
// parsing of the request and the JSON of the answer.
#include <anyturn/auth/revocations.hpp>
#include <anyturn/http/api.hpp>
#include <anyturn/http/json.hpp>

#include "replies.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <charconv>
#include <cmath>
#include <exception>
#include <limits>

namespace anyturn::http {
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view route_sessions = "/admin/sessions";
constexpr std::string_view route_session = "/admin/sessions/{id}";
constexpr std::string_view route_admin_revoke = "/admin/revoke";
constexpr std::string_view sessions_prefix = "/admin/sessions/";

constexpr std::size_t default_limit = 100;
constexpr std::size_t max_limit = 1000;
constexpr std::size_t max_text_bytes = 513;  // a user, username or tenant in a query or body
// A revocation of a static user or a REST user lasts this long unless the
// request says otherwise (a REST username: until its own expiry).
constexpr std::int64_t default_revocation_s = 86400;
constexpr std::int64_t max_revocation_s = 366 * 86400;

// Printable UTF-8, 0 to max_text_bytes bytes.
bool plausible_text(std::string_view s) {
  if (s.size() > max_text_bytes || !json::is_valid_utf8(s)) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return false;
  }
  return true;
}

std::optional<std::size_t> parse_limit(std::string_view s) {
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < 1 || v > max_limit) return std::nullopt;
  return v;
}

std::string_view transport_name(relay::transport t) {
  switch (t) {
    case relay::transport::udp: return "udp";
    case relay::transport::tcp: return "tcp";
    case relay::transport::tls: return "tls";
    case relay::transport::dtls: return "dtls";
  }
  return "udp";
}

void append_session(std::string& out, const turn::session_info& s) {
  out += "{\"id\":\"";
  out += s.id.str();
  out += "\",\"user\":";
  json::append_string(out, s.user);
  out += ",\"tenant\":";
  json::append_string(out, s.tenant);
  out += ",\"transport\":\"";
  out += transport_name(s.transport);
  out += "\",\"client\":\"";
  out += s.client.to_string();
  out += "\",\"server\":\"";
  out += s.server.to_string();
  out += "\",\"relayed\":[";
  for (std::size_t i = 0; i < s.relayed.size(); ++i) {
    if (i > 0) out += ',';
    out += '"' + s.relayed[i].to_string() + '"';
  }
  out += "],\"permissions\":[";
  for (std::size_t i = 0; i < s.permissions.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"ip\":\"" + s.permissions[i].ip.ip_string() +
           "\",\"expires_in_s\":" + std::to_string(s.permissions[i].expires_in_s) + '}';
  }
  out += "],\"channels\":[";
  for (std::size_t i = 0; i < s.channels.size(); ++i) {
    if (i > 0) out += ',';
    const auto& c = s.channels[i];
    out += "{\"number\":" + std::to_string(c.number) + ",\"peer\":\"" + c.peer.to_string() +
           "\",\"expires_in_s\":" + std::to_string(c.expires_in_s) + '}';
  }
  out += "],\"packets_to_peer\":" + std::to_string(s.packets_to_peer);
  out += ",\"bytes_to_peer\":" + std::to_string(s.bytes_to_peer);
  out += ",\"packets_to_client\":" + std::to_string(s.packets_to_client);
  out += ",\"bytes_to_client\":" + std::to_string(s.bytes_to_client);
  out += ",\"started\":";
  json::append_string(out, rfc3339_utc(s.started_unix_ms / 1000));
  out += ",\"age_s\":" + std::to_string(s.age_s);
  out += ",\"expires_in_s\":" + std::to_string(s.expires_in_s);
  out += '}';
}

response hook_failed(const request& req, const std::exception& e) {
  return json_error(req, bhttp::status::service_unavailable, std::string("sessions: ") + e.what());
}

}  // namespace

bool api::is_sessions_route(std::string_view path) {
  return path == route_sessions || path.starts_with(sessions_prefix) || path == route_admin_revoke;
}

std::optional<std::string_view> api::sessions_route_label(std::string_view path) {
  if (path == route_sessions) return route_sessions;
  if (path.starts_with(sessions_prefix)) return route_session;
  if (path == route_admin_revoke) return route_admin_revoke;
  return std::nullopt;
}

response api::admin_sessions(const request& req, std::string_view path, std::string_view query,
                             std::string_view client) {
  const bool revoking = path == route_admin_revoke;
  const bool one = path.starts_with(sessions_prefix);
  const auto method = req.method();
  if (revoking && method != bhttp::verb::post) return method_not_allowed(req, "POST");
  if (one && method != bhttp::verb::delete_) return method_not_allowed(req, "DELETE");
  if (!revoking && !one && method != bhttp::verb::get && method != bhttp::verb::delete_)
    return method_not_allowed(req, "GET, DELETE");

  if (auto refused = admin_refusal(req, client)) return std::move(*refused);
  if (revoking) return admin_revoke(req);

  if (one) {
    const auto id = turn::session_id::parse(path.substr(sessions_prefix.size()));
    if (!id) return json_error(req, bhttp::status::bad_request, "malformed session id: expected 16 hex digits");
    if (!cfg_.end_session) return json_error(req, bhttp::status::not_implemented, "sessions are not available on this server");
    try {
      if (!cfg_.end_session(*id)) return json_error(req, bhttp::status::not_found, "no such session");
    } catch (const std::exception& e) {
      return hook_failed(req, e);
    }
    return json_response(req, bhttp::status::ok, "{\"id\":\"" + id->str() + "\",\"ended\":1}");
  }

  // GET or DELETE /admin/sessions: the filters (and, for GET, the page).
  const auto params = parse_query(query);
  if (!params) return json_error(req, bhttp::status::bad_request, "malformed query string");
  turn::session_query q;
  q.limit = default_limit;
  for (const auto& [key, value] : *params) {
    if (key == "user" || key == "tenant") {
      if (!plausible_text(value) || (key == "user" && value.empty()))
        return json_error(req, bhttp::status::bad_request, key + ": expected printable text");
      (key == "user" ? q.filter.user : q.filter.tenant) = value;
    } else if (key == "client") {
      auto ep = stun::endpoint::parse(value, true);
      if (!ep) return json_error(req, bhttp::status::bad_request, "client: expected an IP address, optionally with a port");
      q.filter.client = *ep;
    } else if (key == "transport") {
      q.filter.transport = turn::parse_transport(value);
      if (!q.filter.transport) return json_error(req, bhttp::status::bad_request, "transport: expected udp, tcp or tls");
    } else if (key == "limit" && method == bhttp::verb::get) {
      const auto l = parse_limit(value);
      if (!l) return json_error(req, bhttp::status::bad_request, "limit: expected 1 to 1000");
      q.limit = *l;
    } else if (key == "cursor" && method == bhttp::verb::get) {
      const auto c = turn::session_cursor::parse(value);
      if (!c) return json_error(req, bhttp::status::bad_request, "cursor: not a cursor this API returned");
      q.from = *c;
    } else {
      return json_error(req, bhttp::status::bad_request, "unknown query parameter: " + key);
    }
  }

  if (method == bhttp::verb::delete_) {
    // Ending every session needs a filter that names the user.
    if (!q.filter.user)
      return json_error(req, bhttp::status::bad_request, "DELETE /admin/sessions needs ?user=");
    if (!cfg_.end_sessions) return json_error(req, bhttp::status::not_implemented, "sessions are not available on this server");
    std::size_t ended = 0;
    try {
      ended = cfg_.end_sessions(q.filter);
    } catch (const std::exception& e) {
      return hook_failed(req, e);
    }
    std::string out = "{\"user\":";
    json::append_string(out, *q.filter.user);
    out += ",\"ended\":" + std::to_string(ended) + '}';
    return json_response(req, bhttp::status::ok, std::move(out));
  }

  if (!cfg_.list_sessions) return json_error(req, bhttp::status::not_implemented, "sessions are not available on this server");
  turn::session_listing listing;
  try {
    listing = cfg_.list_sessions(q);
  } catch (const std::exception& e) {
    return hook_failed(req, e);
  }
  std::string out = "{\"sessions\":[";
  for (std::size_t i = 0; i < listing.sessions.size(); ++i) {
    if (i > 0) out += ',';
    append_session(out, listing.sessions[i]);
  }
  out += "],\"next\":";
  out += listing.next ? '"' + listing.next->str() + '"' : std::string("null");
  out += '}';
  return json_response(req, bhttp::status::ok, std::move(out));
}

// POST /admin/revoke {"tenant": "...", "username": "..." | "user": "...",
// "ttl": seconds}: like the tenant API's revoke, for any tenant, and for
// static users too.
response api::admin_revoke(const request& req) {
  std::optional<response> error;
  const auto obj = read_body(req, error);
  if (!obj) return std::move(*error);
  for (const auto& m : obj->members) {
    if (m.key != "tenant" && m.key != "username" && m.key != "user" && m.key != "ttl")
      return json_error(req, bhttp::status::bad_request, "unknown member: " + m.key);
  }
  const auto text = [&](std::string_view key, std::string& out) -> std::optional<response> {
    const json::value* v = obj->find(key);
    if (v == nullptr || v->type == json::value::kind::null) return std::nullopt;
    if (v->type != json::value::kind::string || !plausible_text(v->text))
      return json_error(req, bhttp::status::bad_request, std::string(key) + ": expected printable text");
    out = v->text;
    return std::nullopt;
  };
  auth::revocation r;
  if (auto bad = text("tenant", r.tenant)) return std::move(*bad);
  if (auto bad = text("username", r.username)) return std::move(*bad);
  if (auto bad = text("user", r.user)) return std::move(*bad);
  if (r.username.empty() == r.user.empty())
    return json_error(req, bhttp::status::bad_request, "give exactly one of username and user");

  const std::int64_t t = now();
  std::optional<std::int64_t> ttl;
  if (const json::value* v = obj->find("ttl"); v != nullptr && v->type != json::value::kind::null) {
    if (v->type != json::value::kind::number || !std::isfinite(v->number) || v->number < 1 ||
        v->number > static_cast<double>(max_revocation_s) || std::floor(v->number) != v->number)
      return json_error(req, bhttp::status::bad_request, "ttl: expected 1 to 31622400 seconds");
    ttl = static_cast<std::int64_t>(v->number);
  }
  if (ttl) {
    r.until_unix = t + *ttl;
  } else if (const auto expiry = r.username.empty() ? std::nullopt : auth::rest_expiry_of(r.username)) {
    r.until_unix = *expiry;  // a REST credential is refused until it expires anyway
  } else {
    r.until_unix = t + default_revocation_s;
  }
  if (r.until_unix < t)
    return json_error(req, bhttp::status::bad_request, "username: that credential has already expired");
  if (!cfg_.revoke) return json_error(req, bhttp::status::not_implemented, "revocation is not available on this server");
  try {
    cfg_.revoke(r);
  } catch (const std::exception&) {
    return json_error(req, bhttp::status::internal_server_error, "revocation failed");
  }
  std::string out = "{\"tenant\":";
  json::append_string(out, r.tenant);
  out += r.username.empty() ? ",\"user\":" : ",\"username\":";
  json::append_string(out, r.username.empty() ? r.user : r.username);
  out += ",\"until\":";
  json::append_string(out, rfc3339_utc(r.until_unix));
  out += '}';
  return json_response(req, bhttp::status::ok, std::move(out));
}

}  // namespace anyturn::http
