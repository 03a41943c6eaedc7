// src/http/test_page.cpp: the one-time link table, the /test routes through
// api::handle(), and the page's own promises (CSP, no external asset).
#include <anyturn/auth/credentials.hpp>
#include <anyturn/http/api.hpp>
#include <anyturn/http/test_page.hpp>

#include "json_member.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <atomic>
#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::http {
namespace {

namespace bhttp = boost::beast::http;

constexpr std::string_view admin_key = "admin-key-0123456789abcdef";
constexpr std::int64_t t0 = 1700000000;

struct clock_box {
  std::shared_ptr<std::atomic<std::int64_t>> now = std::make_shared<std::atomic<std::int64_t>>(t0);
};

server_config page_config(const clock_box& clock, bool enabled = true) {
  server_config cfg;
  cfg.port = 9641;
  cfg.admin_keys = {std::string(admin_key)};
  cfg.tenants.push_back({"", {"tenant-key-0123456789"}, {"tenant-secret"}, 86400, 3600});
  cfg.urls.stun = {"stun:turn.example.com:3478"};
  cfg.urls.turn = {"turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp",
                   "turns:turn.example.com:5349?transport=tcp"};
  cfg.test_page = enabled;
  cfg.test_page_secret = "page-secret";
  cfg.now = [n = clock.now] { return n->load(); };
  cfg.generate_user_id = [] { return std::string("abcd"); };
  return cfg;
}

request make(bhttp::verb verb, std::string target, std::string bearer = {}, std::string host = {}) {
  request req{verb, target, 11};
  if (!bearer.empty()) req.set(bhttp::field::authorization, "Bearer " + bearer);
  if (!host.empty()) req.set(bhttp::field::host, host);
  req.prepare_payload();
  return req;
}

using test::json_string_member;

// ---- the table ----

TEST(test_links, a_token_is_random_hex_and_redeems_once) {
  test_links links;
  const auto a = links.issue(t0);
  const auto b = links.issue(t0);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(std::regex_match(*a, std::regex("[0-9a-f]{64}"))) << *a;
  EXPECT_NE(*a, *b);
  EXPECT_EQ(links.live(t0), 2u);
  EXPECT_EQ(links.redeem(*a, t0 + 1), test_links::outcome::redeemed);
  EXPECT_EQ(links.live(t0 + 1), 1u);
  EXPECT_EQ(links.redeem(*a, t0 + 2), test_links::outcome::reused);
  EXPECT_EQ(links.redeem(*b, t0 + 3), test_links::outcome::redeemed);
  const auto c = links.counts();
  EXPECT_EQ(c.issued, 2u);
  EXPECT_EQ(c.redeemed, 2u);
  EXPECT_EQ(c.reused, 1u);
  EXPECT_EQ(c.invalid, 0u);
}

TEST(test_links, expires_after_ten_minutes) {
  test_links links;
  const auto a = links.issue(t0);
  const auto b = links.issue(t0);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(links.redeem(*a, t0 + test_links::lifetime_s - 1), test_links::outcome::redeemed);
  EXPECT_EQ(links.live(t0 + test_links::lifetime_s), 0u);
  EXPECT_EQ(links.redeem(*b, t0 + test_links::lifetime_s), test_links::outcome::expired);
  EXPECT_EQ(links.redeem(*b, t0 + test_links::lifetime_s + 1), test_links::outcome::reused);
  // Long after: forgotten, so merely invalid.
  const auto c = links.issue(t0);
  ASSERT_TRUE(c);
  EXPECT_EQ(links.redeem(*c, t0 + 3 * test_links::lifetime_s), test_links::outcome::invalid);
  EXPECT_EQ(links.counts().expired, 1u);
}

TEST(test_links, wrong_tokens_are_invalid) {
  test_links links;
  const auto a = links.issue(t0);
  ASSERT_TRUE(a);
  std::string wrong = *a;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(links.redeem(wrong, t0), test_links::outcome::invalid);
  EXPECT_EQ(links.redeem("", t0), test_links::outcome::invalid);
  EXPECT_EQ(links.redeem(a->substr(1), t0), test_links::outcome::invalid);
  EXPECT_EQ(links.redeem(*a + "0", t0), test_links::outcome::invalid);
  EXPECT_EQ(links.counts().invalid, 4u);
  EXPECT_EQ(links.redeem(*a, t0), test_links::outcome::redeemed);  // still good
}

TEST(test_links, at_most_64_live_then_room_again) {
  test_links links;
  std::vector<std::string> tokens;
  for (std::size_t i = 0; i < test_links::max_live; ++i) {
    auto t = links.issue(t0);
    ASSERT_TRUE(t) << i;
    tokens.push_back(*t);
  }
  EXPECT_FALSE(links.issue(t0));
  EXPECT_EQ(links.counts().refused, 1u);
  // Spending one makes room for one.
  EXPECT_EQ(links.redeem(tokens[0], t0), test_links::outcome::redeemed);
  EXPECT_TRUE(links.issue(t0));
  EXPECT_FALSE(links.issue(t0));
  // Expiry makes room for all.
  EXPECT_TRUE(links.issue(t0 + test_links::lifetime_s));
  EXPECT_EQ(links.live(t0 + test_links::lifetime_s), 1u);
}

TEST(test_links, memory_stays_bounded_under_churn) {
  test_links links;
  // Issue and spend many within one lifetime: spent ones are remembered up
  // to a bound, and issuing never fails for want of room.
  for (int i = 0; i < 2000; ++i) {
    const auto t = links.issue(t0 + i / 10);
    ASSERT_TRUE(t) << i;
    ASSERT_EQ(links.redeem(*t, t0 + i / 10), test_links::outcome::redeemed);
  }
  EXPECT_EQ(links.counts().issued, 2000u);
  EXPECT_EQ(links.live(t0 + 200), 0u);
}

TEST(test_links, concurrent_redeems_spend_a_token_once) {
  test_links links;
  const auto token = links.issue(t0);
  ASSERT_TRUE(token);
  std::atomic<int> redeemed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 50; ++j) {
        if (links.redeem(*token, t0) == test_links::outcome::redeemed) ++redeemed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(redeemed.load(), 1);
  EXPECT_EQ(links.counts().reused, 199u);
}

// ---- the routes ----

TEST(test_page, routes_answer_404_when_disabled) {
  clock_box clock;
  api a(page_config(clock, false));
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/test")).result_int(), 404u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/test/credentials", "x")).result_int(), 404u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/test-link", std::string(admin_key))).result_int(), 404u);
}

TEST(test_page, page_has_a_strict_csp_and_no_external_asset) {
  clock_box clock;
  api a(page_config(clock));
  const response res = a.handle(make(bhttp::verb::get, "/test"));
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[bhttp::field::content_type], "text/html; charset=utf-8");
  const std::string csp(res["Content-Security-Policy"]);
  EXPECT_EQ(csp, test_page_csp());
  EXPECT_TRUE(csp.starts_with("default-src 'none'; script-src 'sha256-")) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("style-src 'unsafe-inline'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("script-src 'unsafe-inline'"), std::string::npos) << csp;
  EXPECT_EQ(res["Referrer-Policy"], "no-referrer");
  EXPECT_EQ(res[bhttp::field::cache_control], "no-store");
  const std::string& html = res.body();
  EXPECT_EQ(html, test_page_html());
  EXPECT_NE(html.find("id=\"result-udp\""), std::string::npos);
  EXPECT_NE(html.find("id=\"result-tcp\""), std::string::npos);
  EXPECT_NE(html.find("id=\"result-tls\""), std::string::npos);
  EXPECT_NE(html.find("iceTransportPolicy: 'relay'"), std::string::npos);
  // No external asset: no absolute URL at all, and no src/href attribute.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  // Exactly one inline script, the one the CSP hash allows.
  const auto first = html.find("<script>");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(html.find("<script", first + 1), std::string::npos);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/test")).result_int(), 405u);
}

TEST(test_page, csp_hash_matches_the_inline_script) {
  const std::string html(test_page_html());
  const auto open = html.find("<script>") + 8;
  const auto close = html.find("</script>");
  const std::string script = html.substr(open, close - open);
  // The same base64(SHA-256) a browser computes over the script text.
  const std::string csp(test_page_csp());
  const auto h = csp.find("'sha256-") + 8;
  const std::string hash = csp.substr(h, csp.find('\'', h) - h);
  EXPECT_EQ(hash.size(), 44u) << hash;
  // The hash covers exactly the text between <script> and </script>, as a
  // browser hashes it (base64 of SHA-256).
  ASSERT_FALSE(script.empty());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(script.data()), script.size(), digest);
  unsigned char b64[45];
  ASSERT_EQ(EVP_EncodeBlock(b64, digest, SHA256_DIGEST_LENGTH), 44);
  EXPECT_EQ(hash, std::string(reinterpret_cast<const char*>(b64), 44));
  EXPECT_EQ(script.find("</script"), std::string::npos);
}

TEST(test_page, link_then_credentials_once) {
  clock_box clock;
  api a(page_config(clock));
  const response link = a.handle(make(bhttp::verb::post, "/admin/test-link", std::string(admin_key),
                                      "turn.example.com:9641"));
  ASSERT_EQ(link.result_int(), 201u) << link.body();
  const std::string token = json_string_member(link.body(), "token");
  ASSERT_EQ(token.size(), 64u);
  EXPECT_EQ(json_string_member(link.body(), "url"), "http://turn.example.com:9641/test#token=" + token);
  EXPECT_NE(link.body().find("\"expires_in\":600"), std::string::npos) << link.body();

  const response creds = a.handle(make(bhttp::verb::post, "/test/credentials", token));
  ASSERT_EQ(creds.result_int(), 200u) << creds.body();
  const std::string username = json_string_member(creds.body(), "username");
  EXPECT_EQ(username, std::to_string(t0 + 600) + ":selftest-abcd");
  EXPECT_EQ(json_string_member(creds.body(), "credential"), auth::rest_password("page-secret", username));
  EXPECT_NE(creds.body().find("\"turns:turn.example.com:5349?transport=tcp\""), std::string::npos);
  EXPECT_EQ(creds.body().find("stun:"), std::string::npos);

  const response again = a.handle(make(bhttp::verb::post, "/test/credentials", token));
  EXPECT_EQ(again.result_int(), 401u);
  EXPECT_NE(again.body().find("already used"), std::string::npos) << again.body();
  const response bogus = a.handle(make(bhttp::verb::post, "/test/credentials", std::string(64, 'a')));
  EXPECT_EQ(bogus.result_int(), 401u);
  EXPECT_NE(bogus.body().find("invalid test link"), std::string::npos);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/test/credentials")).result_int(), 401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/test/credentials", token)).result_int(), 405u);

  // Expired.
  const response link2 = a.handle(make(bhttp::verb::post, "/admin/test-link", std::string(admin_key)));
  const std::string token2 = json_string_member(link2.body(), "token");
  clock.now->store(t0 + 601);
  const response late = a.handle(make(bhttp::verb::post, "/test/credentials", token2));
  EXPECT_EQ(late.result_int(), 401u);
  EXPECT_NE(late.body().find("expired"), std::string::npos) << late.body();

  metrics::sink s;
  a.collect(s);
  const std::string text = s.text();
  for (const char* line : {"anyturn_http_test_links_total{result=\"issued\"} 2\n",
                           "anyturn_http_test_links_total{result=\"redeemed\"} 1\n",
                           "anyturn_http_test_links_total{result=\"expired\"} 1\n",
                           "anyturn_http_test_links_total{result=\"reused\"} 1\n",
                           "anyturn_http_test_links_total{result=\"invalid\"} 1\n",
                           "anyturn_http_requests_total{route=\"/admin/test-link\",code=\"201\"} 2\n",
                           "anyturn_http_requests_total{route=\"/test/credentials\",code=\"200\"} 1\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << text;
  }
}

TEST(test_page, test_link_needs_the_admin_key) {
  clock_box clock;
  api a(page_config(clock));
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/test-link")).result_int(), 401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/test-link", "tenant-key-0123456789")).result_int(), 401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/admin/test-link", std::string(admin_key))).result_int(), 405u);
  // The admin key does not open the credentials route, nor a tenant key.
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/test/credentials", std::string(admin_key))).result_int(), 401u);
}

TEST(test_page, test_link_answers_429_past_64_live) {
  clock_box clock;
  api a(page_config(clock));
  for (std::size_t i = 0; i < test_links::max_live; ++i) {
    ASSERT_EQ(a.handle(make(bhttp::verb::post, "/admin/test-link", std::string(admin_key))).result_int(), 201u)
        << i;
  }
  const response full = a.handle(make(bhttp::verb::post, "/admin/test-link", std::string(admin_key)));
  EXPECT_EQ(full.result_int(), 429u);
  EXPECT_FALSE(full[bhttp::field::retry_after].empty());
}

TEST(test_page, odd_host_headers_fall_back_to_the_listen_address) {
  clock_box clock;
  api a(page_config(clock));
  const response link = a.handle(make(bhttp::verb::post, "/admin/test-link", std::string(admin_key),
                                      "evil.example/\"><script>"));
  ASSERT_EQ(link.result_int(), 201u);
  EXPECT_TRUE(json_string_member(link.body(), "url").starts_with("http://127.0.0.1:9641/test#token="))
      << link.body();
}

TEST(test_page, route_labels_are_fixed) {
  EXPECT_EQ(api::route_label("/test"), "/test");
  EXPECT_EQ(api::route_label("/test?x=1"), "/test");
  EXPECT_EQ(api::route_label("/test/credentials"), "/test/credentials");
  EXPECT_EQ(api::route_label("/admin/test-link"), "/admin/test-link");
  EXPECT_EQ(api::route_label("/test/other"), "other");
}

TEST(test_page, validate_needs_a_secret) {
  server_config cfg;
  cfg.test_page = true;
  const auto errors = validate(cfg);
  bool found = false;
  for (const auto& e : errors) found |= e.find("test_page_secret") != std::string::npos;
  EXPECT_TRUE(found);
  cfg.test_page_secret = "s";
  for (const auto& e : validate(cfg)) EXPECT_EQ(e.find("test_page_secret"), std::string::npos) << e;
}

}  // namespace
}  // namespace anyturn::http
