// The sessions admin routes, src/http/admin_sessions.cpp, through
// api::handle() with fake hooks: GET /admin/sessions, DELETE
// /admin/sessions/{id} and ?user=, POST /admin/revoke.
#include <anyturn/auth/revocations.hpp>
#include <anyturn/http/api.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace anyturn::http {
namespace {

namespace bhttp = boost::beast::http;
constexpr const char* key = "admin-key-0123456789";

request make(bhttp::verb verb, std::string target, std::string body = {}, std::string bearer = key) {
  request req{verb, target, 11};
  if (!bearer.empty()) req.set(bhttp::field::authorization, "Bearer " + bearer);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

struct fake_workers {
  std::vector<turn::session_query> queries;
  std::vector<turn::session_id> ended_ids;
  std::vector<turn::session_filter> bulk;
  std::vector<auth::revocation> revoked;
  bool time_out = false;
};

turn::session_info sample() {
  turn::session_info s;
  s.id = turn::session_id{1, 42, 7};
  s.user = "1700003600:alice";
  s.tenant = "";
  s.transport = relay::transport::tcp;
  s.client = *stun::endpoint::parse("203.0.113.5:40000");
  s.server = *stun::endpoint::parse("192.0.2.1:3478");
  s.relayed = {*stun::endpoint::parse("198.51.100.7:50001")};
  s.permissions = {{*stun::endpoint::parse("93.184.216.34:0"), 250}};
  s.channels = {{0x4001, *stun::endpoint::parse("93.184.216.34:5000"), 550}};
  s.packets_to_peer = 3;
  s.bytes_to_peer = 300;
  s.packets_to_client = 4;
  s.bytes_to_client = 400;
  s.started_unix_ms = 1'699'999'990'000;
  s.age_s = 10;
  s.expires_in_s = 590;
  return s;
}

server_config config(fake_workers& w) {
  server_config cfg;
  cfg.admin_keys = {key};
  cfg.now = [] { return std::int64_t{1700000000}; };
  cfg.list_sessions = [&w](const turn::session_query& q) {
    if (w.time_out) throw std::runtime_error("worker 0 did not answer within 2000 ms");
    w.queries.push_back(q);
    turn::session_listing l;
    l.sessions.push_back(sample());
    l.next = turn::session_cursor{1, 4096};
    return l;
  };
  cfg.end_session = [&w](const turn::session_id& id) {
    w.ended_ids.push_back(id);
    return id == turn::session_id{1, 42, 7};
  };
  cfg.end_sessions = [&w](const turn::session_filter& f) {
    w.bulk.push_back(f);
    return std::size_t{3};
  };
  cfg.revoke = [&w](const auth::revocation& r) { w.revoked.push_back(r); };
  return cfg;
}

std::string metrics_text(const api& a) {
  metrics::sink s;
  a.collect(s);
  return s.text();
}

TEST(admin_sessions, lists_a_page_with_every_field_and_the_next_cursor) {
  fake_workers w;
  api a(config(w));
  const response res = a.handle(make(bhttp::verb::get, "/admin/sessions"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  EXPECT_EQ(res.body(),
            "{\"sessions\":[{\"id\":\"0100002a00000007\",\"user\":\"1700003600:alice\",\"tenant\":\"\","
            "\"transport\":\"tcp\",\"client\":\"203.0.113.5:40000\",\"server\":\"192.0.2.1:3478\","
            "\"relayed\":[\"198.51.100.7:50001\"],\"permissions\":[{\"ip\":\"93.184.216.34\","
            "\"expires_in_s\":250}],\"channels\":[{\"number\":16385,\"peer\":\"93.184.216.34:5000\","
            "\"expires_in_s\":550}],\"packets_to_peer\":3,\"bytes_to_peer\":300,\"packets_to_client\":4,"
            "\"bytes_to_client\":400,\"started\":\"2023-11-14T22:13:10Z\",\"age_s\":10,"
            "\"expires_in_s\":590}],\"next\":\"010000001000\"}\n");
  ASSERT_EQ(w.queries.size(), 1u);
  EXPECT_EQ(w.queries[0].limit, 100u);
  EXPECT_EQ(w.queries[0].from, (turn::session_cursor{0, 0}));
  EXPECT_FALSE(w.queries[0].filter.user);
}

TEST(admin_sessions, passes_filters_limit_and_cursor) {
  fake_workers w;
  api a(config(w));
  const response res = a.handle(make(
      bhttp::verb::get,
      "/admin/sessions?user=al%20ice&tenant=acme&client=203.0.113.5&transport=tls&limit=7&cursor=010000001000"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  ASSERT_EQ(w.queries.size(), 1u);
  const auto& q = w.queries[0];
  EXPECT_EQ(q.filter.user, "al ice");
  EXPECT_EQ(q.filter.tenant, "acme");
  EXPECT_EQ(q.filter.client, stun::endpoint::parse("203.0.113.5:0"));
  EXPECT_EQ(q.filter.transport, relay::transport::tls);
  EXPECT_EQ(q.limit, 7u);
  EXPECT_EQ(q.from, (turn::session_cursor{1, 4096}));
  const response v6 = a.handle(make(bhttp::verb::get, "/admin/sessions?client=%5B2001:db8::1%5D:5000"));
  ASSERT_EQ(v6.result_int(), 200u) << v6.body();
  EXPECT_EQ(w.queries.back().filter.client, stun::endpoint::parse("[2001:db8::1]:5000"));
}

TEST(admin_sessions, bad_queries_get_400_and_reach_no_worker) {
  fake_workers w;
  api a(config(w));
  for (const char* target :
       {"/admin/sessions?limit=0", "/admin/sessions?limit=1001", "/admin/sessions?limit=x",
        "/admin/sessions?cursor=zz", "/admin/sessions?transport=sctp", "/admin/sessions?client=nowhere",
        "/admin/sessions?colour=red", "/admin/sessions?user=", "/admin/sessions?user=%ZZ",
        "/admin/sessions?user=a%0Ab"}) {
    const response res = a.handle(make(bhttp::verb::get, target));
    EXPECT_EQ(res.result_int(), 400u) << target << ": " << res.body();
  }
  EXPECT_TRUE(w.queries.empty());
}

TEST(admin_sessions, delete_by_id_404s_unknown_and_400s_malformed) {
  fake_workers w;
  api a(config(w));
  const response ok = a.handle(make(bhttp::verb::delete_, "/admin/sessions/0100002a00000007"));
  ASSERT_EQ(ok.result_int(), 200u) << ok.body();
  EXPECT_EQ(ok.body(), "{\"id\":\"0100002a00000007\",\"ended\":1}\n");
  const response stale = a.handle(make(bhttp::verb::delete_, "/admin/sessions/0100002a00000008"));
  EXPECT_EQ(stale.result_int(), 404u);
  EXPECT_EQ(stale.body(), "{\"error\":\"no such session\"}\n");
  ASSERT_EQ(w.ended_ids.size(), 2u);
  EXPECT_EQ(w.ended_ids[1], (turn::session_id{1, 42, 8}));
  EXPECT_EQ(a.handle(make(bhttp::verb::delete_, "/admin/sessions/xyz")).result_int(), 400u);
  EXPECT_EQ(a.handle(make(bhttp::verb::delete_, "/admin/sessions/0100002a000000070")).result_int(), 400u);
  EXPECT_EQ(w.ended_ids.size(), 2u);
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/admin/sessions/0100002a00000007")).result_int(), 405u);
}

TEST(admin_sessions, delete_by_user_needs_a_user) {
  fake_workers w;
  api a(config(w));
  const response res = a.handle(make(bhttp::verb::delete_, "/admin/sessions?user=alice&tenant=acme"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(res.body(), "{\"user\":\"alice\",\"ended\":3}\n");
  ASSERT_EQ(w.bulk.size(), 1u);
  EXPECT_EQ(w.bulk[0].user, "alice");
  EXPECT_EQ(w.bulk[0].tenant, "acme");
  EXPECT_EQ(a.handle(make(bhttp::verb::delete_, "/admin/sessions")).result_int(), 400u);
  EXPECT_EQ(a.handle(make(bhttp::verb::delete_, "/admin/sessions?transport=udp")).result_int(), 400u);
  EXPECT_EQ(a.handle(make(bhttp::verb::delete_, "/admin/sessions?user=a&limit=5")).result_int(), 400u);
  EXPECT_EQ(w.bulk.size(), 1u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/sessions")).result_int(), 405u);
}

TEST(admin_sessions, missing_or_wrong_key_is_401_counted_and_limited) {
  fake_workers w;
  api a(config(w));
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/admin/sessions", "", ""), "198.51.100.1").result_int(), 401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::delete_, "/admin/sessions/0100002a00000007", "", "wrong"), "198.51.100.1")
                .result_int(),
            401u);
  EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/revoke", "{\"user\":\"a\"}", "wrong"), "198.51.100.1")
                .result_int(),
            401u);
  EXPECT_TRUE(w.queries.empty());
  EXPECT_TRUE(w.ended_ids.empty());
  EXPECT_TRUE(w.revoked.empty());
  // The failure limit is the other admin routes': 5 in a burst, then 429.
  for (int i = 0; i < 2; ++i) (void)a.handle(make(bhttp::verb::get, "/admin/sessions", "", "wrong"), "198.51.100.1");
  const response limited = a.handle(make(bhttp::verb::get, "/admin/sessions"), "198.51.100.1");
  EXPECT_EQ(limited.result_int(), 429u) << "even with the right key, until the bucket refills";
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/admin/sessions"), "198.51.100.2").result_int(), 200u);
  const std::string text = metrics_text(a);
  EXPECT_NE(text.find("anyturn_http_admin_auth_failures_total{reason=\"missing\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("anyturn_http_admin_auth_failures_total{reason=\"invalid\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("anyturn_http_admin_auth_failures_total{reason=\"rate_limited\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("anyturn_http_requests_total{route=\"/admin/sessions\",code=\"401\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("anyturn_http_requests_total{route=\"/admin/sessions/{id}\",code=\"401\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("anyturn_http_requests_total{route=\"/admin/revoke\",code=\"401\"} 1\n"), std::string::npos);
}

TEST(admin_sessions, route_labels_never_carry_the_id) {
  EXPECT_EQ(api::route_label("/admin/sessions?user=x"), "/admin/sessions");
  EXPECT_EQ(api::route_label("/admin/sessions/0100002a00000007"), "/admin/sessions/{id}");
  EXPECT_EQ(api::route_label("/admin/sessions/anything/else"), "/admin/sessions/{id}");
  EXPECT_EQ(api::route_label("/admin/revoke"), "/admin/revoke");
}

TEST(admin_sessions, a_worker_that_does_not_answer_gives_503_and_missing_hooks_501) {
  fake_workers w;
  w.time_out = true;
  api a(config(w));
  const response slow = a.handle(make(bhttp::verb::get, "/admin/sessions"));
  EXPECT_EQ(slow.result_int(), 503u);
  EXPECT_NE(slow.body().find("did not answer"), std::string::npos);
  server_config bare;
  bare.admin_keys = {key};
  api b(bare);
  EXPECT_EQ(b.handle(make(bhttp::verb::get, "/admin/sessions")).result_int(), 501u);
  EXPECT_EQ(b.handle(make(bhttp::verb::delete_, "/admin/sessions/0100002a00000007")).result_int(), 501u);
  EXPECT_EQ(b.handle(make(bhttp::verb::delete_, "/admin/sessions?user=a")).result_int(), 501u);
  EXPECT_EQ(b.handle(make(bhttp::verb::post, "/admin/revoke", "{\"user\":\"a\"}")).result_int(), 501u);
}

TEST(admin_sessions, revoke_takes_any_tenant_and_static_users) {
  fake_workers w;
  api a(config(w));
  const response user = a.handle(make(bhttp::verb::post, "/admin/revoke", "{\"tenant\":\"acme\",\"user\":\"carol\"}"));
  ASSERT_EQ(user.result_int(), 200u) << user.body();
  EXPECT_EQ(user.body(), "{\"tenant\":\"acme\",\"user\":\"carol\",\"until\":\"2023-11-15T22:13:20Z\"}\n");
  const response rest = a.handle(make(bhttp::verb::post, "/admin/revoke", "{\"username\":\"1700003600:bob\"}"));
  ASSERT_EQ(rest.result_int(), 200u) << rest.body();
  const response fixed = a.handle(make(bhttp::verb::post, "/admin/revoke", "{\"username\":\"alice\",\"ttl\":60}"));
  ASSERT_EQ(fixed.result_int(), 200u) << fixed.body();
  ASSERT_EQ(w.revoked.size(), 3u);
  EXPECT_EQ(w.revoked[0], (auth::revocation{"acme", "", "carol", 1700000000 + 86400}));
  EXPECT_EQ(w.revoked[1], (auth::revocation{"", "1700003600:bob", "", 1700003600}));
  EXPECT_EQ(w.revoked[2], (auth::revocation{"", "alice", "", 1700000060}));

  for (const char* body : {"{}", "{\"user\":\"a\",\"username\":\"b\"}", "{\"user\":3}", "{\"user\":\"a\",\"ttl\":0}",
                           "{\"user\":\"a\",\"ttl\":1.5}", "{\"user\":\"a\",\"colour\":1}", "{\"username\":\"1600000000:old\"}",
                           "not json"}) {
    EXPECT_EQ(a.handle(make(bhttp::verb::post, "/admin/revoke", body)).result_int(), 400u) << body;
  }
  EXPECT_EQ(w.revoked.size(), 3u);
  EXPECT_EQ(a.handle(make(bhttp::verb::get, "/admin/revoke")).result_int(), 405u);
}

}  // namespace
}  // namespace anyturn::http
