// anyturn::http — request handling, without sockets.
//
// `api::handle()` maps one parsed HTTP request to its response: routing,
// bearer-key authorisation, JSON parsing and REST credential minting
// (draft-uberti-behave-turn-rest). It depends only on the config, the
// injected clock and the registry, so unit tests call it directly; the
// server calls it from its own threads (it is thread-safe).
#pragma once

#include <anyturn/http/server.hpp>
#include <anyturn/metrics/registry.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
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

class api {
 public:
  // Precomputes key digests. `cfg` must be valid (see validate()).
  explicit api(const server_config& cfg);

  [[nodiscard]] response handle(const request& req);

  // Index of the tenant owning the bearer token in an Authorization header
  // value, or nullopt. Compares SHA-256 digests with CRYPTO_memcmp against
  // every configured key, so the time taken does not depend on where or
  // whether the key matched, nor on its length.
  [[nodiscard]] std::optional<std::size_t> authorise(std::string_view authorization) const;

  // Metrics: anyturn_http_requests_total{route,code},
  // anyturn_http_api_auth_failures_total{reason},
  // anyturn_http_credentials_issued_total{tenant}.
  void collect(metrics::sink& s) const;
  // Another response was produced outside handle() (e.g. 413 from the
  // server's parser limits); counts it like handle() does.
  void count_response(std::string_view route, unsigned code);

  // The bounded route label for a request target.
  static std::string_view route_label(std::string_view target);

 private:
  response do_handle(const request& req, std::string_view path, std::string_view query);
  response ice_servers(const request& req, std::size_t tenant);
  response turn_credentials(const request& req, std::string_view query, std::size_t tenant);
  response unauthorised(const request& req, bool missing);
  response metrics_page(const request& req);
  std::int64_t now() const;
  std::string new_user_id() const;

  struct tenant_keys {
    std::array<std::uint8_t, 32> digest;
    std::size_t tenant;
  };

  server_config cfg_;  // copy; never changes after construction
  std::vector<tenant_keys> keys_;

  mutable std::mutex stats_mutex_;
  std::map<std::pair<std::string_view, unsigned>, std::uint64_t> responses_;
  std::uint64_t auth_missing_ = 0;
  std::uint64_t auth_invalid_ = 0;
  std::vector<std::uint64_t> issued_;  // per tenant
};

}  // namespace anyturn::http
