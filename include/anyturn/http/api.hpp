// anyturn::http — request handling, without sockets.
//
// `api::handle()` maps one parsed HTTP request to its response: routing,
// bearer-key authorisation, JSON parsing and REST credential minting
// (draft-uberti-behave-turn-rest). It depends only on the config, the
// injected clock and the registry, so unit tests call it directly; the
// server calls it from its own threads (it is thread-safe).
#pragma once

#include <anyturn/http/server.hpp>
#include <anyturn/http/test_page.hpp>
#include <anyturn/metrics/registry.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace anyturn::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

// "2024-05-01T12:00:00Z" for a unix time (UTC).
std::string rfc3339_utc(std::int64_t unix_seconds);

// Splits "a=1&b=x%20y" into decoded pairs ('+' is a space). nullopt on a bad
// percent escape.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view q);

class probe_runner;

class api {
 public:
  // Receives a response that handle_async() could not give at once.
  using deliver_fn = std::function<void(response)>;
  // GET /probe's counters (shared with the probe threads).
  struct probe_counts {
    std::atomic<std::uint64_t> success{0}, failure{0}, refused{0}, rejected{0};
  };

  // Precomputes key digests. `cfg` must be valid (see validate()).
  explicit api(const server_config& cfg);

  // `client` identifies the caller for the admin endpoints' failure limit
  // (the server passes the peer's IPv4 address, or its IPv6 /64); callers
  // that have none share one limit.
  // A deferred route (GET /probe) blocks here until its answer comes.
  [[nodiscard]] response handle(const request& req, std::string_view client = {});
  // Like handle(), but a slow route (GET /probe) returns nullopt and hands
  // its response to `deliver` later, once, from a probe thread (counted
  // then with count_response by whoever writes it).
  [[nodiscard]] std::optional<response> handle_async(const request& req, std::string_view client,
                                                     deliver_fn deliver);
  // Waits for running probes, at most `limit`; whether none runs.
  bool wait_probes(std::chrono::steady_clock::duration limit);

  // Index of the tenant owning the bearer token in an Authorization header
  // value, or nullopt. Compares SHA-256 digests with CRYPTO_memcmp against
  // every configured key, so the time taken does not depend on where or
  // whether the key matched, nor on its length.
  [[nodiscard]] std::optional<std::size_t> authorise(std::string_view authorization) const;

  // Metrics: anyturn_http_requests_total{route,code},
  // anyturn_http_api_auth_failures_total{reason},
  // anyturn_http_admin_auth_failures_total{reason},
  // anyturn_http_credentials_issued_total{tenant},
  // anyturn_http_credentials_custom_identifier_total{tenant,custom_identifier},
  // anyturn_http_revocations_total{tenant},
  // anyturn_http_test_links_total{result} (with http.test_page).
  void collect(metrics::sink& s) const;
  // Another response was produced outside handle() (e.g. 413 from the
  // server's parser limits); counts it like handle() does.
  void count_response(std::string_view route, unsigned code);

  // A config reload: tenants and admin keys to use from the next request
  // on (applied when no request is being handled). Any thread.
  void replace_keys(std::vector<api_tenant> tenants, std::vector<std::string> admin_keys);

  // Whether the Authorization header value carries one of the admin keys
  // (same constant-time comparison as authorise()).
  [[nodiscard]] bool authorise_admin(std::string_view authorization) const;

  // The bounded route label for a request target: a fixed string for every
  // route (the Cloudflare-compatible paths map to their templates, never to
  // the key id or username they carry), "other" for anything else.
  static std::string_view route_label(std::string_view target);

  // Distinct customIdentifier values that get their own metric label; the
  // rest are counted under "other".
  static constexpr std::size_t max_custom_identifier_labels = 100;
  // Failed admin authentications a client may make in a burst, and the
  // seconds it takes to earn one more (then 429 until it has).
  static constexpr double admin_failure_burst = 5;
  static constexpr std::int64_t admin_failure_refill_seconds = 12;
  static constexpr std::size_t max_admin_failure_clients = 4096;

 private:
  struct cloudflare_target;
  response do_handle(const request& req, std::string_view path, std::string_view query,
                     std::string_view client);
  response ice_servers(const request& req, std::size_t tenant);
  response turn_credentials(const request& req, std::string_view query, std::size_t tenant);
  response revoke(const request& req, std::size_t tenant);
  response cloudflare(const request& req, const cloudflare_target& target);
  response cloudflare_generate(const request& req, std::size_t tenant);
  response cloudflare_revoke(const request& req, std::size_t tenant, std::string_view username);
  // admin.cpp: /admin/status, /admin/drain, /admin/undrain, /admin/reload.
  static std::optional<std::string_view> admin_route_label(std::string_view path);
  response admin(const request& req, std::string_view path, std::string_view client);
  // The admin key check (failure limit first): the 429 or 401, or nothing.
  std::optional<response> admin_refusal(const request& req, std::string_view client);
  // admin_sessions.cpp: /admin/sessions[/{id}] and /admin/revoke.
  static bool is_sessions_route(std::string_view path);
  static std::optional<std::string_view> sessions_route_label(std::string_view path);
  response admin_sessions(const request& req, std::string_view path, std::string_view query,
                          std::string_view client);
  response admin_revoke(const request& req);
  response admin_reload(const request& req);
  // test_page.cpp: GET /test, POST /test/credentials, POST /admin/test-link.
  static bool is_test_route(std::string_view path);
  static std::optional<std::string_view> test_route_label(std::string_view path);
  response test_route(const request& req, std::string_view path, std::string_view client);
  response test_credentials(const request& req);
  response admin_test_link(const request& req, std::string_view client);
  // probe_route.cpp: GET /probe (nullopt: `deliver` gets the answer later).
  std::optional<response> probe_route(const request& req, std::string_view query,
                                      std::string_view client, deliver_fn& deliver);
  void collect_probes(metrics::sink& s) const;
  response unauthorised(const request& req, bool missing);
  response metrics_page(const request& req);
  // Checks `username` belongs to `tenant`; the error response when not.
  std::optional<response> check_username(const request& req, std::size_t tenant,
                                         std::string_view username) const;
  // Calls cfg_.revoke (when until has not passed) and counts it; an error
  // response when the hook is missing or throws.
  std::optional<response> publish(const request& req, std::size_t tenant, const auth::revocation& r);
  void count_issued(std::size_t tenant, std::string_view custom_identifier);
  std::int64_t now() const;
  std::string new_user_id() const;
  // Admin failure limit (per client key).
  bool admin_blocked(std::string_view client, std::int64_t now);
  void admin_failed(std::string_view client, std::int64_t now);

  struct tenant_keys {
    std::array<std::uint8_t, 32> digest;
    std::size_t tenant;
  };
  struct failure_bucket {
    double tokens = admin_failure_burst;
    std::int64_t last = 0;
  };

  // Applies replace_keys()'s pending tenants and keys (takes keys_mutex_
  // exclusively, so only outside a request).
  void apply_pending_keys();

  server_config cfg_;  // copy; only tenants and admin_keys change (replace_keys)
  // Held shared while a request is handled, exclusively while a reload's
  // tenants and keys replace cfg_.tenants, keys_ and admin_keys_.
  std::shared_mutex keys_mutex_;
  std::mutex pending_mutex_;
  std::optional<std::pair<std::vector<api_tenant>, std::vector<std::string>>> pending_keys_;
  std::atomic<bool> keys_pending_{false};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<std::string> labels_;  // tenant label by index (under stats_mutex_)
  std::vector<tenant_keys> keys_;
  std::vector<std::array<std::uint8_t, 32>> admin_keys_;

  mutable std::mutex stats_mutex_;
  std::map<std::pair<std::string_view, unsigned>, std::uint64_t> responses_;
  std::uint64_t auth_missing_ = 0;
  std::uint64_t auth_invalid_ = 0;
  std::uint64_t admin_missing_ = 0;
  std::uint64_t admin_invalid_ = 0;
  std::uint64_t admin_limited_ = 0;
  std::vector<std::uint64_t> issued_;       // per tenant
  std::vector<std::uint64_t> revocations_;  // per tenant
  // (tenant, customIdentifier or "other") -> credentials issued.
  std::map<std::pair<std::size_t, std::string>, std::uint64_t> custom_issued_;
  std::set<std::string, std::less<>> custom_labels_;  // at most max_custom_identifier_labels

  test_links test_links_;  // the /test page's one-time link tokens
  std::shared_ptr<probe_runner> probe_runner_;
  std::shared_ptr<probe_counts> probe_counts_ = std::make_shared<probe_counts>();

  std::mutex admin_mutex_;
  std::map<std::string, failure_bucket, std::less<>> admin_failures_;
  failure_bucket admin_overflow_;  // clients past max_admin_failure_clients share it
};

}  // namespace anyturn::http
