// api::handle() without sockets.
#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/revocations.hpp>
#include <anyturn/http/api.hpp>

#include "json_member.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace anyturn::http {
namespace {

namespace bhttp = boost::beast::http;

server_config test_config() {
  server_config cfg;
  cfg.tenants.push_back({"acme", {"acme-key-1", "acme-key-2"}, {"acme-secret", "old"}, 600, 300});
  cfg.tenants.push_back({"globex", {"globex-key"}, {"globex-secret"}, 86400, 3600});
  cfg.urls.stun = {"stun:turn.example.com:3478"};
  cfg.urls.turn = {"turn:turn.example.com:3478?transport=udp"};
  cfg.now = [] { return std::int64_t{1700000000}; };
  cfg.generate_user_id = [] { return std::string("gen-id"); };
  return cfg;
}

request make(bhttp::verb verb, std::string target, std::string body = {},
             std::string bearer = {}) {
  request req{verb, target, 11};
  if (!bearer.empty()) req.set(bhttp::field::authorization, "Bearer " + bearer);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

using test::json_string_member;

TEST(api, authorise_maps_keys_to_tenants) {
  const api a(test_config());
  EXPECT_EQ(a.authorise("Bearer acme-key-1"), 0u);
  EXPECT_EQ(a.authorise("Bearer acme-key-2"), 0u);
  EXPECT_EQ(a.authorise("bearer   globex-key  "), 1u);
  EXPECT_EQ(a.authorise("BEARER globex-key"), 1u);
  EXPECT_FALSE(a.authorise("Bearer acme-key-"));
  EXPECT_FALSE(a.authorise("Bearer acme-key-10"));
  EXPECT_FALSE(a.authorise("Bearer "));
  EXPECT_FALSE(a.authorise("Bearer"));
  EXPECT_FALSE(a.authorise("Bearerglobex-key"));
  EXPECT_FALSE(a.authorise("Basic Z2xvYmV4LWtleQ=="));
  EXPECT_FALSE(a.authorise(""));
}

TEST(api, ice_servers_defaults_and_signature) {
  api a(test_config());
  const response res = a.handle(make(bhttp::verb::post, "/api/v1/ice-servers", "", "acme-key-2"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  EXPECT_EQ(res[bhttp::field::cache_control], "no-store");
  const std::string username = json_string_member(res.body(), "username");
  EXPECT_EQ(username, "1700000300:acme:gen-id");  // default_ttl 300
  EXPECT_EQ(json_string_member(res.body(), "credential"), auth::rest_password("acme-secret", username));
  EXPECT_EQ(res.body(),
            "{\"iceServers\":[{\"urls\":[\"stun:turn.example.com:3478\"]},"
            "{\"urls\":[\"turn:turn.example.com:3478?transport=udp\"],\"username\":\"" +
                username + "\",\"credential\":\"" + auth::rest_password("acme-secret", username) +
                "\"}],\"expiresAt\":\"2023-11-14T22:18:20Z\"}\n");
}

TEST(api, ice_servers_body_validation) {
  api a(test_config());
  auto post = [&](std::string body) {
    return a.handle(make(bhttp::verb::post, "/api/v1/ice-servers", std::move(body), "globex-key"));
  };
  EXPECT_EQ(json_string_member(post("{\"ttl\": 60, \"user\": \"bob\"}").body(), "username"),
            "1700000060:globex:bob");
  EXPECT_EQ(json_string_member(post("{\"ttl\": 1e9}").body(), "username"), "1700086400:globex:gen-id");
  EXPECT_EQ(json_string_member(post("{\"user\": null, \"extra\": true}").body(), "username"),
            "1700003600:globex:gen-id");
  for (const char* bad : {"{\"ttl\": 0}", "{\"ttl\": -5}", "{\"ttl\": 1.5}", "{\"ttl\": \"60\"}",
                          "{\"user\": 5}", "{\"user\": \"\"}", "{\"user\": \"a\\nb\"}", "{\"user\": \"a:b\"}",
                          "not json", "{\"ttl\": 60,}"}) {
    const response res = post(bad);
    EXPECT_EQ(res.result_int(), 400u) << bad;
    EXPECT_EQ(res.body().rfind("{\"error\":\"", 0), 0u) << res.body();
  }
  EXPECT_EQ(post("{\"user\":\"" + std::string(129, 'x') + "\"}").result_int(), 400u);
  EXPECT_EQ(post("{\"user\":\"" + std::string(128, 'x') + "\"}").result_int(), 200u);
}

TEST(api, turn_credentials_query) {
  api a(test_config());
  const response ok = a.handle(make(
      bhttp::verb::get, "/api/v1/turn-credentials?service=turn&username=al%20ice+x&ttl=100",
      "", "acme-key-1"));
  ASSERT_EQ(ok.result_int(), 200u) << ok.body();
  const std::string username = "1700000100:acme:al ice x";
  EXPECT_EQ(ok.body(), "{\"username\":\"" + username + "\",\"password\":\"" +
                           auth::rest_password("acme-secret", username) +
                           "\",\"ttl\":100,\"uris\":[\"turn:turn.example.com:3478?transport=udp\"]}\n");
  const response capped = a.handle(make(
      bhttp::verb::get, "/api/v1/turn-credentials?service=turn&ttl=99999999999999999999999", "",
      "acme-key-1"));
  EXPECT_NE(capped.body().find("\"ttl\":600,"), std::string::npos) << capped.body();
  for (const char* bad : {"/api/v1/turn-credentials", "/api/v1/turn-credentials?service=stun",
                          "/api/v1/turn-credentials?service=turn&ttl=0",
                          "/api/v1/turn-credentials?service=turn&ttl=-1",
                          "/api/v1/turn-credentials?service=turn&ttl=1x",
                          "/api/v1/turn-credentials?service=turn&service=turn",
                          "/api/v1/turn-credentials?service=turn&username=%zz",
                          "/api/v1/turn-credentials?service=turn&username=%0a"}) {
    EXPECT_EQ(a.handle(make(bhttp::verb::get, bad, "", "acme-key-1")).result_int(), 400u) << bad;
  }
}

TEST(api, routing_errors_and_counters) {
  metrics::registry reg;
  server_config cfg = test_config();
  cfg.registry = &reg;
  api a(cfg);
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/nope")).result_int(), 404u);
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/api/v1/ice-servers")).result_int(), 405u);
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/api/v1/ice-servers"))[bhttp::field::allow], "POST");
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/metrics")).result_int(), 405u);
  const response missing = a.handle(make(bhttp::verb::post, "/api/v1/ice-servers"));
  EXPECT_EQ(missing.result_int(), 401u);
  EXPECT_EQ(missing[bhttp::field::www_authenticate], "Bearer realm=\"anyturn\"");
  EXPECT_EQ(missing.body(), "{\"error\":\"missing API key\"}\n");
  const response wrong = a.handle(make(bhttp::verb::post, "/api/v1/ice-servers", "", "nope"));
  EXPECT_EQ(wrong.result_int(), 401u);
  EXPECT_NE(std::string(wrong[bhttp::field::www_authenticate]).find("invalid_token"),
            std::string::npos);

  metrics::sink s;
  a.collect(s);
  const std::string text = s.text();
  EXPECT_NE(text.find("anyturn_http_requests_total{route=\"other\",code=\"404\"} 1\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("anyturn_http_requests_total{route=\"/api/v1/ice-servers\",code=\"405\"} 2\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("anyturn_http_api_auth_failures_total{reason=\"missing\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("anyturn_http_api_auth_failures_total{reason=\"invalid\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("anyturn_http_credentials_issued_total{tenant=\"acme\"} 0\n"),
            std::string::npos);
}

TEST(api, default_tenant_usernames_have_no_tenant_part) {
  server_config cfg = test_config();
  cfg.tenants.push_back({"", {"default-key"}, {"default-secret"}, 600, 60});
  api a(cfg);
  const response res = a.handle(
      make(bhttp::verb::post, "/api/v1/ice-servers", "{\"user\":\"u1\"}", "default-key"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(json_string_member(res.body(), "username"), "1700000060:u1");
  metrics::sink s;
  a.collect(s);
  EXPECT_NE(s.text().find("anyturn_http_credentials_issued_total{tenant=\"default\"} 1\n"),
            std::string::npos) << s.text();
}

TEST(api, metrics_absent_without_registry) {
  api a(test_config());
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/metrics")).result_int(), 404u);
}

TEST(api, helpers) {
  EXPECT_EQ(rfc3339_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339_utc(1700000000), "2023-11-14T22:13:20Z");
  const auto q = parse_query("a=1&&b=x%2By+z&c&d=");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[1], (std::pair<std::string, std::string>{"b", "x+y z"}));
  EXPECT_EQ((*q)[2].first, "c");
  EXPECT_FALSE(parse_query("a=%4"));
  EXPECT_FALSE(parse_query("a=%g0"));
  EXPECT_EQ(api::route_label("/metrics?x"), "/metrics");
  EXPECT_EQ(api::route_label("/secret/user/123"), "other");
}

TEST(api, validate_reports_every_problem) {
  server_config cfg = test_config();
  cfg.address = "localhost";
  cfg.tenants.push_back({"acme", {}, {""}, 10, 20});
  cfg.tenants[1].api_keys.push_back("acme-key-1");
  const auto errors = validate(cfg);
  const auto has = [&](std::string_view needle) {
    for (const auto& e : errors) {
      if (e.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("address")) ;
  EXPECT_TRUE(has("tenants[2].id: repeats"));
  EXPECT_TRUE(has("tenants[2].api_keys: none"));
  EXPECT_TRUE(has("tenants[2].secrets: empty"));
  EXPECT_TRUE(has("tenants[2].default_ttl"));
  EXPECT_TRUE(has("tenants[1].api_keys: a key is also used by tenants[0]"));
  EXPECT_TRUE(validate(test_config()).empty());
}


// ---- Issue 13: admin endpoints, revocation, Cloudflare-compatible routes ----

std::string metrics_text(const api& a) {
  metrics::sink s;
  a.collect(s);
  return s.text();
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

struct admin_hooks {
  int drains = 0;
  int undrains = 0;
  bool draining = false;
};

server_config admin_config(admin_hooks& h, std::int64_t* clock) {
  server_config cfg = test_config();
  cfg.admin_keys = {"admin-key-0123456789", "admin-key-rotated"};
  cfg.drain = [&h] {
    ++h.drains;
    const bool changed = !h.draining;
    h.draining = true;
    return changed;
  };
  cfg.undrain = [&h] {
    ++h.undrains;
    const bool changed = h.draining;
    h.draining = false;
    return changed;
  };
  cfg.draining = [&h] { return h.draining; };
  cfg.allocations = [] { return std::uint64_t{17}; };
  cfg.now = [clock] { return *clock; };
  return cfg;
}

TEST(api_admin, drain_and_undrain_call_the_hooks) {
  admin_hooks h;
  std::int64_t clock = 1700000000;
  api a(admin_config(h, &clock));
  const response first = a.handle(make(bhttp::verb::post, "/admin/drain", "", "admin-key-0123456789"));
  ASSERT_EQ(first.result_int(), 200u) << first.body();
  EXPECT_EQ(first.body(), "{\"draining\":true,\"changed\":true}\n");
  EXPECT_EQ(first[bhttp::field::content_type], "application/json");
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/drain", "", "admin-key-rotated")).body(),
            "{\"draining\":true,\"changed\":false}\n");
  EXPECT_EQ(h.drains, 2);
  const response status = a.handle(make(bhttp::verb::get, "/admin/status", "", "admin-key-rotated"));
  ASSERT_EQ(status.result_int(), 200u);
  EXPECT_NE(status.body().find("\"draining\":true,\"allocations\":17,\"uptime_s\":"), std::string::npos)
      << status.body();
  EXPECT_EQ(status.body().rfind("{\"version\":\"", 0), 0u) << status.body();
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/undrain", "", "admin-key-0123456789")).body(),
            "{\"draining\":false,\"changed\":true}\n");
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/undrain", "", "admin-key-0123456789")).body(),
            "{\"draining\":false,\"changed\":false}\n");
  EXPECT_EQ(h.undrains, 2);
  const std::string text = metrics_text(a);
  EXPECT_TRUE(has_line(text, "anyturn_http_requests_total{route=\"/admin/drain\",code=\"200\"} 2"))
      << text;
  EXPECT_TRUE(has_line(text, "anyturn_http_requests_total{route=\"/admin/undrain\",code=\"200\"} 2"));
  EXPECT_TRUE(has_line(text, "anyturn_http_requests_total{route=\"/admin/status\",code=\"200\"} 1"));
}

TEST(api_admin, methods_paths_and_missing_hooks) {
  admin_hooks h;
  std::int64_t clock = 1700000000;
  server_config cfg = admin_config(h, &clock);
  api a(cfg);
  const response get = a.handle(make(bhttp::verb::get, "/admin/drain", "", "admin-key-rotated"));
  EXPECT_EQ(get.result_int(), 405u);
  EXPECT_EQ(get[bhttp::field::allow], "POST");
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/status", "", "admin-key-rotated")).result_int(),
            405u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/shutdown", "", "admin-key-rotated")).result_int(),
            404u);
  EXPECT_EQ(h.drains, 0);
  EXPECT_EQ(api::route_label("/admin/shutdown"), "other");

  cfg.drain = nullptr;
  cfg.undrain = nullptr;
  cfg.draining = nullptr;
  cfg.allocations = nullptr;
  api bare(cfg);
  EXPECT_EQ(bare.handle(make(bhttp::verb::post, "/admin/drain", "", "admin-key-rotated")).result_int(),
            501u);
  EXPECT_EQ(bare.handle(make(bhttp::verb::post, "/admin/undrain", "", "admin-key-rotated")).result_int(),
            501u);
  const response status = bare.handle(make(bhttp::verb::get, "/admin/status", "", "admin-key-rotated"));
  EXPECT_NE(status.body().find("\"draining\":false,\"allocations\":null,\"uptime_s\":"), std::string::npos)
      << status.body();
}

TEST(api_admin, admin_and_tenant_keys_never_open_each_others_routes) {
  admin_hooks h;
  std::int64_t clock = 1700000000;
  api a(admin_config(h, &clock));
  // A tenant key on /admin/*.
  const response tenant_on_admin = a.handle(make(bhttp::verb::post, "/admin/drain", "", "acme-key-1"));
  EXPECT_EQ(tenant_on_admin.result_int(), 401u);
  EXPECT_EQ(tenant_on_admin.body(), "{\"error\":\"invalid admin key\"}\n");
  EXPECT_EQ(h.drains, 0);
  // An admin key on the tenant API and the Cloudflare routes.
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/api/v1/ice-servers", "", "admin-key-rotated"))
                .result_int(),
            401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/api/v1/credentials/revoke", "{\"user\":\"bob\"}",
                          "admin-key-rotated"))
                .result_int(),
            401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/v1/turn/keys/acme/credentials/generate-ice-servers",
                          "", "admin-key-rotated"))
                .result_int(),
            401u);
  EXPECT_FALSE(a.authorise("Bearer admin-key-rotated"));
  EXPECT_FALSE(a.authorise_admin("Bearer acme-key-1"));
  EXPECT_TRUE(a.authorise_admin("bearer  admin-key-rotated "));
  EXPECT_FALSE(a.authorise_admin("Bearer admin-key-rotate"));
  EXPECT_FALSE(a.authorise_admin("Basic admin-key-rotated"));
  // Missing key.
  const response missing = a.handle(make(bhttp::verb::post, "/admin/drain"), "198.51.100.1");
  EXPECT_EQ(missing.result_int(), 401u);
  EXPECT_EQ(missing[bhttp::field::www_authenticate], "Bearer realm=\"anyturn-admin\"");
  const std::string text = metrics_text(a);
  EXPECT_TRUE(has_line(text, "anyturn_http_admin_auth_failures_total{reason=\"invalid\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "anyturn_http_admin_auth_failures_total{reason=\"missing\"} 1"));
  EXPECT_TRUE(has_line(text, "anyturn_http_api_auth_failures_total{reason=\"invalid\"} 3"));
}

TEST(api_admin, no_admin_keys_means_every_admin_call_is_refused) {
  server_config cfg = test_config();
  bool called = false;
  cfg.drain = [&called] { return called = true; };
  api a(cfg);
  for (const char* key : {"", "acme-key-1", "anything"}) {
    EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/drain", "", key), key).result_int(), 401u);
  }
  EXPECT_FALSE(called);
}

TEST(api_admin, failed_authentications_are_limited_per_client) {
  admin_hooks h;
  std::int64_t clock = 1700000000;
  api a(admin_config(h, &clock));
  const auto drain = [&](const std::string& key, std::string_view client) {
    return a.handle(make(bhttp::verb::post, "/admin/drain", "", key), client).result_int();
  };
  for (int i = 0; i < static_cast<int>(api::admin_failure_burst); ++i) {
    EXPECT_EQ(drain("wrong", "203.0.113.9"), 401u) << i;
  }
  // Out of tokens: refused before the key is even compared, the right key too.
  const response limited = a.handle(make(bhttp::verb::post, "/admin/drain", "", "admin-key-rotated"),
                                    "203.0.113.9");
  EXPECT_EQ(limited.result_int(), 429u);
  EXPECT_EQ(limited[bhttp::field::retry_after], "12");
  EXPECT_EQ(h.drains, 0);
  // Another client is not affected.
  EXPECT_EQ(drain("admin-key-rotated", "203.0.113.10"), 200u);
  EXPECT_EQ(h.drains, 1);
  // One refill period later the client has one more try.
  clock += api::admin_failure_refill_seconds;
  EXPECT_EQ(drain("admin-key-rotated", "203.0.113.9"), 200u);
  EXPECT_EQ(drain("wrong", "203.0.113.9"), 401u);
  EXPECT_EQ(drain("admin-key-rotated", "203.0.113.9"), 429u);
  const std::string text = metrics_text(a);
  EXPECT_TRUE(has_line(text, "anyturn_http_admin_auth_failures_total{reason=\"rate_limited\"} 2"))
      << text;
  EXPECT_TRUE(has_line(text, "anyturn_http_admin_auth_failures_total{reason=\"invalid\"} 6"));
  EXPECT_TRUE(has_line(text, "anyturn_http_requests_total{route=\"/admin/drain\",code=\"429\"} 2"));
}

TEST(api_admin, failure_table_is_bounded) {
  admin_hooks h;
  std::int64_t clock = 1700000000;
  api a(admin_config(h, &clock));
  // More failing clients than the table holds: the ones past it share one
  // bucket, so they are limited together, and nothing grows without bound.
  const std::size_t n = api::max_admin_failure_clients + 50;
  unsigned limited = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned code =
        a.handle(make(bhttp::verb::post, "/admin/drain", "", "wrong"), "c" + std::to_string(i))
            .result_int();
    EXPECT_TRUE(code == 401u || code == 429u) << code;
    limited += code == 429u ? 1 : 0;
  }
  EXPECT_EQ(limited, 50u - static_cast<unsigned>(api::admin_failure_burst));
  // Once their buckets have refilled, old clients are forgotten to make room.
  clock += api::admin_failure_refill_seconds * 10;
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/drain", "", "wrong"), "new").result_int(), 401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/drain", "", "admin-key-rotated"), "new")
                .result_int(),
            200u);
}

struct revoke_capture {
  std::vector<auth::revocation> seen;
  server_config config() {
    server_config cfg = test_config();
    cfg.tenants.push_back({"", {"default-key"}, {"default-secret"}, 900, 60});
    cfg.revoke = [this](const auth::revocation& r) { seen.push_back(r); };
    return cfg;
  }
};

TEST(api_revoke, one_credential_by_username) {
  revoke_capture cap;
  api a(cap.config());
  const response res = a.handle(make(bhttp::verb::post, "/api/v1/credentials/revoke",
                                     "{\"username\":\"1700000300:acme:alice\"}", "acme-key-2"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(res.body(),
            "{\"tenant\":\"acme\",\"username\":\"1700000300:acme:alice\","
            "\"until\":\"2023-11-14T22:18:20Z\"}\n");
  EXPECT_EQ(res[bhttp::field::cache_control], "no-store");
  ASSERT_EQ(cap.seen.size(), 1u);
  EXPECT_EQ(cap.seen[0], (auth::revocation{"acme", "1700000300:acme:alice", "", 1700000300}));
  // The default tenant: the draft's "<expiry>:<user>" form.
  ASSERT_EQ(a.handle(make(bhttp::verb::post, "/api/v1/credentials/revoke",
                          "{\"username\":\"1700000900:bob\"}", "default-key"))
                .result_int(),
            200u);
  ASSERT_EQ(cap.seen.size(), 2u);
  EXPECT_EQ(cap.seen[1], (auth::revocation{"", "1700000900:bob", "", 1700000900}));
  const std::string text = metrics_text(a);
  EXPECT_TRUE(has_line(text, "anyturn_http_revocations_total{tenant=\"acme\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "anyturn_http_revocations_total{tenant=\"default\"} 1"));
  EXPECT_TRUE(has_line(text, "anyturn_http_revocations_total{tenant=\"globex\"} 0"));
  EXPECT_TRUE(
      has_line(text, "anyturn_http_requests_total{route=\"/api/v1/credentials/revoke\",code=\"200\"} 2"));
}

TEST(api_revoke, every_credential_of_a_user) {
  revoke_capture cap;
  api a(cap.config());
  const response res = a.handle(
      make(bhttp::verb::post, "/api/v1/credentials/revoke", "{\"user\":\"bob\"}", "globex-key"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  // until = now + globex's max_ttl (86400): the longest credential the API mints.
  EXPECT_EQ(res.body(), "{\"tenant\":\"globex\",\"user\":\"bob\",\"until\":\"2023-11-15T22:13:20Z\"}\n");
  ASSERT_EQ(cap.seen.size(), 1u);
  EXPECT_EQ(cap.seen[0], (auth::revocation{"globex", "", "bob", 1700086400}));
  // What the set built from it refuses.
  const auth::revocation_set set(cap.seen);
  EXPECT_TRUE(set.revoked("globex", "1700003600:globex:bob", 1700000000));
  EXPECT_FALSE(set.revoked("acme", "1700003600:acme:bob", 1700000000));
}

TEST(api_revoke, refuses_bad_bodies_and_other_tenants_credentials) {
  revoke_capture cap;
  api a(cap.config());
  const auto post = [&](std::string body, std::string key = "acme-key-1") {
    return a.handle(make(bhttp::verb::post, "/api/v1/credentials/revoke", std::move(body), key));
  };
  for (const char* bad :
       {"", "{}", "not json", "{\"username\":5}", "{\"user\":5}", "{\"user\":\"\"}",
        "{\"user\":\"a:b\"}", "{\"user\":\"a\\nb\"}", "{\"username\":\"alice\"}",
        "{\"username\":\"\"}", "{\"username\":\"1700000300:acme:a\\u0001\"}",
        "{\"username\":\"1700000300:acme:alice\",\"user\":\"alice\"}", "{\"username\":null}"}) {
    const response res = post(bad);
    EXPECT_EQ(res.result_int(), 400u) << bad;
    EXPECT_EQ(res.body().rfind("{\"error\":\"", 0), 0u) << res.body();
  }
  EXPECT_EQ(post("{\"user\":\"" + std::string(129, 'u') + "\"}").result_int(), 400u);
  EXPECT_EQ(post("{\"username\":\"1700000300:acme:" + std::string(600, 'u') + "\"}").result_int(), 400u);
  // Another tenant's credential, or a default-tenant key naming a tenant.
  const response other = post("{\"username\":\"1700000300:globex:alice\"}");
  EXPECT_EQ(other.result_int(), 403u);
  EXPECT_EQ(other.body(), "{\"error\":\"username: not a credential of this API key's tenant\"}\n");
  EXPECT_EQ(post("{\"username\":\"1700000300:alice\"}").result_int(), 403u);  // no tenant part
  EXPECT_EQ(post("{\"username\":\"1700000300:acme:alice\"}", "default-key").result_int(), 403u);
  EXPECT_TRUE(cap.seen.empty());
  // Wrong method, no key, wrong key.
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/api/v1/credentials/revoke", "", "acme-key-1")).result_int(),
            405u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/api/v1/credentials/revoke", "{\"user\":\"b\"}"))
                .result_int(),
            401u);
  EXPECT_EQ(post("{\"user\":\"b\"}", "nope").result_int(), 401u);
  EXPECT_TRUE(cap.seen.empty());
  EXPECT_TRUE(has_line(metrics_text(a), "anyturn_http_revocations_total{tenant=\"acme\"} 0"));
}

TEST(api_revoke, expired_credentials_publish_nothing_and_missing_hook_is_501) {
  revoke_capture cap;
  api a(cap.config());
  const response res = a.handle(make(bhttp::verb::post, "/api/v1/credentials/revoke",
                                     "{\"username\":\"1699999999:acme:alice\"}", "acme-key-1"));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_NE(res.body().find("\"until\":\"2023-11-14T22:13:19Z\""), std::string::npos) << res.body();
  EXPECT_TRUE(cap.seen.empty());

  server_config cfg = test_config();
  api no_hook(cfg);
  EXPECT_EQ(no_hook.handle(make(bhttp::verb::post, "/api/v1/credentials/revoke",
                                "{\"user\":\"bob\"}", "acme-key-1"))
                .result_int(),
            501u);
  cfg.revoke = [](const auth::revocation&) { throw std::runtime_error("redis down"); };
  api throwing(cfg);
  const response failed = throwing.handle(
      make(bhttp::verb::post, "/api/v1/credentials/revoke", "{\"user\":\"bob\"}", "acme-key-1"));
  EXPECT_EQ(failed.result_int(), 500u);
  EXPECT_EQ(failed.body(), "{\"error\":\"revocation failed\"}\n");
}

constexpr const char* cf_generate_acme = "/v1/turn/keys/acme/credentials/generate-ice-servers";

TEST(api_cloudflare, generate_ice_servers_shape) {
  revoke_capture cap;
  api a(cap.config());
  const response res = a.handle(make(bhttp::verb::post, cf_generate_acme,
                                     "{\"ttl\":120,\"customIdentifier\":\"room-42\"}", "acme-key-1"));
  ASSERT_EQ(res.result_int(), 201u) << res.body();
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  EXPECT_EQ(res[bhttp::field::cache_control], "no-store");
  const std::string username = "1700000120:acme:gen-id~room-42";
  EXPECT_EQ(res.body(),
            "{\"iceServers\":[{\"urls\":[\"stun:turn.example.com:3478\"]},"
            "{\"urls\":[\"turn:turn.example.com:3478?transport=udp\"],\"username\":\"" +
                username + "\",\"credential\":\"" + auth::rest_password("acme-secret", username) +
                "\"}]}\n");
  // What the TURN side reads back from it.
  EXPECT_EQ(auth::custom_identifier_of(username), "room-42");
  EXPECT_EQ(auth::rest_user_of(username, "acme"), "gen-id~room-42");

  // No body: default ttl, no identifier. Huge ttl: capped at max_ttl (600).
  EXPECT_EQ(json_string_member(a.handle(make(bhttp::verb::post, cf_generate_acme, "", "acme-key-1")).body(),
                          "username"),
            "1700000300:acme:gen-id");
  EXPECT_EQ(json_string_member(a.handle(make(bhttp::verb::post, cf_generate_acme, "{\"ttl\":86400}",
                                        "acme-key-1"))
                              .body(),
                          "username"),
            "1700000600:acme:gen-id");
  // "default" names the default tenant (empty id).
  const response def = a.handle(make(bhttp::verb::post,
                                     "/v1/turn/keys/default/credentials/generate-ice-servers",
                                     "{\"customIdentifier\":\"x\"}", "default-key"));
  ASSERT_EQ(def.result_int(), 201u) << def.body();
  EXPECT_EQ(json_string_member(def.body(), "username"), "1700000060:gen-id~x");
  const std::string text = metrics_text(a);
  EXPECT_TRUE(has_line(text, "anyturn_http_credentials_issued_total{tenant=\"acme\"} 3")) << text;
  EXPECT_TRUE(has_line(
      text, "anyturn_http_credentials_custom_identifier_total{tenant=\"acme\",custom_identifier=\"room-42\"} 1"));
  EXPECT_TRUE(has_line(
      text, "anyturn_http_credentials_custom_identifier_total{tenant=\"default\",custom_identifier=\"x\"} 1"));
  EXPECT_TRUE(has_line(text, "anyturn_http_requests_total{route=\"/v1/turn/keys/{key_id}/credentials/"
                             "generate-ice-servers\",code=\"201\"} 4"));
}

TEST(api_cloudflare, generate_refuses_bad_input_and_other_keys) {
  revoke_capture cap;
  api a(cap.config());
  const auto post = [&](std::string body, std::string key = "acme-key-1",
                        std::string target = cf_generate_acme) {
    return a.handle(make(bhttp::verb::post, std::move(target), std::move(body), key));
  };
  for (const char* bad : {"{\"ttl\":0}", "{\"ttl\":\"60\"}", "{\"ttl\":1.5}", "{\"customIdentifier\":5}",
                          "{\"customIdentifier\":\"\"}", "{\"customIdentifier\":\"a b\"}",
                          "{\"customIdentifier\":\"a~b\"}", "{\"customIdentifier\":\"a#b\"}", "{\"customIdentifier\":\"a:b\"}", "[1]"}) {
    const response res = post(bad);
    EXPECT_EQ(res.result_int(), 400u) << bad;
    EXPECT_EQ(res.body().rfind("{\"error\":\"", 0), 0u) << res.body();
  }
  EXPECT_EQ(post("{\"customIdentifier\":\"" + std::string(65, 'c') + "\"}").result_int(), 400u);
  EXPECT_EQ(post("{\"customIdentifier\":\"" + std::string(64, 'c') + "\"}").result_int(), 201u);
  // A key of another tenant, an unknown key id, no key: 401 all alike.
  const response other = post("", "globex-key");
  EXPECT_EQ(other.result_int(), 401u);
  EXPECT_EQ(other.body(), "{\"error\":\"invalid API key\"}\n");
  EXPECT_EQ(post("", "acme-key-1", "/v1/turn/keys/initech/credentials/generate-ice-servers").result_int(),
            401u);
  EXPECT_EQ(post("", "globex-key", "/v1/turn/keys/default/credentials/generate-ice-servers").result_int(),
            401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, cf_generate_acme)).result_int(), 401u);
  // Method, malformed escapes, unknown shapes.
  const response get = a.handle(make(bhttp::verb::get, cf_generate_acme, "", "acme-key-1"));
  EXPECT_EQ(get.result_int(), 405u);
  EXPECT_EQ(get[bhttp::field::allow], "POST");
  EXPECT_EQ(post("", "acme-key-1", "/v1/turn/keys/ac%zzme/credentials/generate-ice-servers").result_int(),
            400u);
  for (const char* target : {"/v1/turn/keys//credentials/generate-ice-servers", "/v1/turn/keys/acme",
                             "/v1/turn/keys/acme/credentials/generate", "/v1/turn/keys/acme/x/y/revoke",
                             "/v1/turn/keys/acme/credentials/a/b/revoke",
                             "/v1/turn/keys/acme/credentials//revoke"}) {
    EXPECT_EQ(post("", "acme-key-1", target).result_int(), 404u) << target;
    EXPECT_EQ(api::route_label(target), "other") << target;
  }
}

TEST(api_cloudflare, custom_identifier_labels_are_bounded) {
  revoke_capture cap;
  api a(cap.config());
  const std::size_t n = api::max_custom_identifier_labels + 20;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(a.handle(make(bhttp::verb::post, cf_generate_acme,
                            "{\"customIdentifier\":\"id" + std::to_string(i) + "\"}", "acme-key-1"))
                  .result_int(),
              201u);
  }
  // A known identifier keeps its label after the limit.
  (void)a.handle(make(bhttp::verb::post, cf_generate_acme, "{\"customIdentifier\":\"id0\"}", "acme-key-1"));
  const std::string text = metrics_text(a);
  std::size_t series = 0;
  for (std::size_t pos = 0;
       (pos = text.find("anyturn_http_credentials_custom_identifier_total{", pos)) != std::string::npos;
       ++pos) {
    ++series;
  }
  EXPECT_EQ(series, api::max_custom_identifier_labels + 1);  // + "other"
  EXPECT_TRUE(has_line(
      text, "anyturn_http_credentials_custom_identifier_total{tenant=\"acme\",custom_identifier=\"other\"} 20"))
      << text;
  EXPECT_TRUE(has_line(
      text, "anyturn_http_credentials_custom_identifier_total{tenant=\"acme\",custom_identifier=\"id0\"} 2"));
}

TEST(api_cloudflare, revoke_by_username) {
  revoke_capture cap;
  api a(cap.config());
  // ':' may be percent-encoded or not; '~' needs no escaping.
  const response res = a.handle(make(
      bhttp::verb::post, "/v1/turn/keys/acme/credentials/1700000300%3Aacme:gen-id~room-42/revoke", "",
      "acme-key-1"));
  ASSERT_EQ(res.result_int(), 204u) << res.body();
  EXPECT_TRUE(res.body().empty());
  ASSERT_EQ(cap.seen.size(), 1u);
  EXPECT_EQ(cap.seen[0], (auth::revocation{"acme", "1700000300:acme:gen-id~room-42", "", 1700000300}));
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/v1/turn/keys/default/credentials/1700000060:x/revoke", "",
                          "default-key"))
                .result_int(),
            204u);
  ASSERT_EQ(cap.seen.size(), 2u);
  EXPECT_EQ(cap.seen[1].tenant, "");
  const std::string text = metrics_text(a);
  EXPECT_TRUE(has_line(text, "anyturn_http_requests_total{route=\"/v1/turn/keys/{key_id}/credentials/"
                             "{username}/revoke\",code=\"204\"} 2"))
      << text;
  EXPECT_TRUE(has_line(text, "anyturn_http_revocations_total{tenant=\"acme\"} 1"));
}

TEST(api_cloudflare, revoke_refuses_other_tenants_and_garbage) {
  revoke_capture cap;
  api a(cap.config());
  const auto post = [&](std::string target, std::string key = "acme-key-1") {
    return a.handle(make(bhttp::verb::post, std::move(target), "", key)).result_int();
  };
  EXPECT_EQ(post("/v1/turn/keys/acme/credentials/1700000300:globex:bob/revoke"), 403u);
  EXPECT_EQ(post("/v1/turn/keys/acme/credentials/alice/revoke"), 400u);
  EXPECT_EQ(post("/v1/turn/keys/acme/credentials/1700000300:acme:%0a/revoke"), 400u);
  EXPECT_EQ(post("/v1/turn/keys/acme/credentials/1700000300:acme:a%zz/revoke"), 400u);
  EXPECT_EQ(post("/v1/turn/keys/acme/credentials/1700000300:acme:bob/revoke", "globex-key"), 401u);
  EXPECT_EQ(post("/v1/turn/keys/globex/credentials/1700000300:acme:bob/revoke"), 401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/v1/turn/keys/acme/credentials/1700000300:acme:bob/revoke",
                          "", "acme-key-1"))
                .result_int(),
            405u);
  EXPECT_TRUE(cap.seen.empty());
}

TEST(api_cloudflare, route_labels_never_carry_ids) {
  EXPECT_EQ(api::route_label("/v1/turn/keys/acme/credentials/generate-ice-servers"),
            "/v1/turn/keys/{key_id}/credentials/generate-ice-servers");
  EXPECT_EQ(api::route_label("/v1/turn/keys/secret-tenant/credentials/1700000000:x%23y/revoke?a=b"),
            "/v1/turn/keys/{key_id}/credentials/{username}/revoke");
  EXPECT_EQ(api::route_label("/api/v1/credentials/revoke"), "/api/v1/credentials/revoke");
  EXPECT_EQ(api::route_label("/admin/drain"), "/admin/drain");
  EXPECT_EQ(api::route_label("/admin/undrain"), "/admin/undrain");
  EXPECT_EQ(api::route_label("/admin/status"), "/admin/status");
  EXPECT_EQ(api::route_label("/v1/turn/keys/a/credentials/b/c/revoke"), "other");
}

TEST(api_admin, validate_refuses_admin_keys_shared_with_a_tenant) {
  server_config cfg = test_config();
  cfg.admin_keys = {"globex-key", "", "has space"};
  const auto errors = validate(cfg);
  const auto has = [&](std::string_view needle) {
    for (const auto& e : errors) {
      if (e.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("admin_keys[0]: is also an API key of tenants[1]"));
  EXPECT_TRUE(has("admin_keys[1]: empty key"));
  EXPECT_TRUE(has("admin_keys[2]: contains whitespace"));
  cfg.admin_keys = {"admin-key-0123456789"};
  EXPECT_TRUE(validate(cfg).empty());
}

}  // namespace
}  // namespace anyturn::http
