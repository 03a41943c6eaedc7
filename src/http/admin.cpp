// The node's admin routes: GET /admin/status, POST /admin/drain,
// /admin/undrain and /admin/reload, and the admin key check every /admin/*
// route goes through first (a failure limit per client, then the bearer
// key; admin_sessions.cpp and test_page.cpp use it too).
#include <anyturn/http/api.hpp>
#include <anyturn/http/json.hpp>

#include "replies.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <string>

#ifndef ANYTURN_VERSION  // set by src/http/CMakeLists.txt
#define ANYTURN_VERSION "unknown"
#endif

namespace anyturn::http {
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view route_admin_drain = "/admin/drain";
constexpr std::string_view route_admin_undrain = "/admin/undrain";
constexpr std::string_view route_admin_status = "/admin/status";
constexpr std::string_view route_admin_reload = "/admin/reload";

}  // namespace

std::optional<std::string_view> api::admin_route_label(std::string_view path) {
  for (std::string_view r : {route_admin_drain, route_admin_undrain, route_admin_status, route_admin_reload}) {
    if (path == r) return r;
  }
  return std::nullopt;
}

bool api::admin_blocked(std::string_view client, std::int64_t t) {
  const std::lock_guard lock(admin_mutex_);
  auto refill = [t](failure_bucket& b) {
    if (t > b.last) {
      b.tokens = std::min(admin_failure_burst,
                          b.tokens + static_cast<double>(t - b.last) /
                                         static_cast<double>(admin_failure_refill_seconds));
      b.last = t;
    }
  };
  const auto it = admin_failures_.find(client);
  if (it != admin_failures_.end()) {
    refill(it->second);
    return it->second.tokens < 1;
  }
  if (admin_failures_.size() < max_admin_failure_clients) return false;
  refill(admin_overflow_);
  return admin_overflow_.tokens < 1;
}

void api::admin_failed(std::string_view client, std::int64_t t) {
  const std::lock_guard lock(admin_mutex_);
  auto it = admin_failures_.find(client);
  if (it == admin_failures_.end() && admin_failures_.size() >= max_admin_failure_clients) {
    // Forget the clients whose bucket has refilled completely.
    std::erase_if(admin_failures_, [t](const auto& kv) {
      const failure_bucket& fb = kv.second;
      return fb.tokens + static_cast<double>(t - fb.last) /
                             static_cast<double>(admin_failure_refill_seconds) >=
             admin_failure_burst;
    });
  }
  if (it == admin_failures_.end() && admin_failures_.size() < max_admin_failure_clients) {
    it = admin_failures_.emplace(std::string(client), failure_bucket{admin_failure_burst, t}).first;
  }
  failure_bucket& fb = it != admin_failures_.end() ? it->second : admin_overflow_;
  if (fb.last == 0) fb.last = t;
  fb.tokens = std::max(0.0, fb.tokens - 1);
}

std::optional<response> api::admin_refusal(const request& req, std::string_view client) {
  const std::int64_t t = now();
  if (admin_blocked(client, t)) {
    {
      const std::lock_guard lock(stats_mutex_);
      ++admin_limited_;
    }
    response res = json_error(req, bhttp::status::too_many_requests,
                              "too many failed admin authentications; retry later");
    res.set(bhttp::field::retry_after, std::to_string(admin_failure_refill_seconds));
    return res;
  }
  const auto header = req.find(bhttp::field::authorization);
  const bool missing = header == req.end();
  if (missing || !authorise_admin({header->value().data(), header->value().size()})) {
    admin_failed(client, t);
    {
      const std::lock_guard lock(stats_mutex_);
      ++(missing ? admin_missing_ : admin_invalid_);
    }
    response res = json_error(req, bhttp::status::unauthorized,
                              missing ? "missing admin key" : "invalid admin key");
    res.set(bhttp::field::www_authenticate, missing
                                                ? "Bearer realm=\"anyturn-admin\""
                                                : "Bearer realm=\"anyturn-admin\", error=\"invalid_token\"");
    return res;
  }
  return std::nullopt;
}

response api::admin(const request& req, std::string_view path, std::string_view client) {
  const bool drain = path == route_admin_drain;
  const bool undrain = path == route_admin_undrain;
  const bool status = path == route_admin_status;
  const bool reload = path == route_admin_reload;
  if (!drain && !undrain && !status && !reload) return json_error(req, bhttp::status::not_found, "not found");
  if (status && req.method() != bhttp::verb::get) return method_not_allowed(req, "GET");
  if (!status && req.method() != bhttp::verb::post) return method_not_allowed(req, "POST");

  if (auto refused = admin_refusal(req, client)) return std::move(*refused);

  try {
    if (status) {
      std::string out = "{\"version\":";
      json::append_string(out, ANYTURN_VERSION);
      out += ",\"draining\":";
      out += cfg_.draining && cfg_.draining() ? "true" : "false";
      out += ",\"allocations\":";
      out += cfg_.allocations ? std::to_string(cfg_.allocations()) : std::string("null");
      out += ",\"uptime_s\":";
      out += std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::steady_clock::now() - started_)
                                .count());
      out += ",\"config_generation\":";
      out += cfg_.config_generation ? std::to_string(cfg_.config_generation()) : std::string("null");
      out += '}';
      return json_response(req, bhttp::status::ok, std::move(out));
    }
    if (reload) return admin_reload(req);
    const auto& hook = drain ? cfg_.drain : cfg_.undrain;
    if (!hook) {
      return json_error(req, bhttp::status::not_implemented,
                        drain ? "drain is not available on this server"
                              : "undrain is not available on this server");
    }
    const bool changed = hook();
    std::string out = drain ? "{\"draining\":true,\"changed\":" : "{\"draining\":false,\"changed\":";
    out += changed ? "true" : "false";
    out += '}';
    return json_response(req, bhttp::status::ok, std::move(out));
  } catch (const std::exception&) {
    return json_error(req, bhttp::status::internal_server_error, "admin action failed");
  }
}

response api::admin_reload(const request& req) {
  if (!cfg_.reload) {
    return json_error(req, bhttp::status::not_implemented, "reload is not available on this server");
  }
  const reload_result r = cfg_.reload();
  const auto strings = [](std::string& out, const std::vector<std::string>& list) {
    out += '[';
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out += ',';
      json::append_string(out, list[i]);
    }
    out += ']';
  };
  std::string out = "{\"ok\":";
  out += r.ok ? "true" : "false";
  if (!r.ok) {
    out += ",\"error\":";
    json::append_string(out, r.messages.empty() ? std::string("reload failed") : r.messages.front());
  }
  out += ",\"generation\":" + std::to_string(r.generation) + ",\"ignored\":";
  strings(out, r.ignored);
  out += ",\"messages\":";
  strings(out, r.messages);
  out += '}';
  return json_response(req, r.ok ? bhttp::status::ok : bhttp::status::bad_request, std::move(out));
}

}  // namespace anyturn::http
