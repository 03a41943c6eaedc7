// api::handle() without sockets.
#include <anyturn/auth/credentials.hpp>
#include <anyturn/http/api.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <gtest/gtest.h>

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

// The value of a "key":"value" string member in the flat parts of a response.
std::string string_member(const std::string& body, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const auto pos = body.find(k);
  if (pos == std::string::npos) return {};
  const auto start = pos + k.size();
  return body.substr(start, body.find('"', start) - start);
}

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
  const std::string username = string_member(res.body(), "username");
  EXPECT_EQ(username, "1700000300:acme:gen-id");  // default_ttl 300
  EXPECT_EQ(string_member(res.body(), "credential"), auth::rest_password("acme-secret", username));
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
  EXPECT_EQ(string_member(post("{\"ttl\": 60, \"user\": \"bob\"}").body(), "username"),
            "1700000060:globex:bob");
  EXPECT_EQ(string_member(post("{\"ttl\": 1e9}").body(), "username"), "1700086400:globex:gen-id");
  EXPECT_EQ(string_member(post("{\"user\": null, \"extra\": true}").body(), "username"),
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
  EXPECT_EQ(string_member(res.body(), "username"), "1700000060:u1");
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

}  // namespace
}  // namespace anyturn::http
