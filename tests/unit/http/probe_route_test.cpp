// src/http/probe_route.cpp: GET /probe's query, target allowance,
// exposition, the runner's bound and the route through api::handle (with a
// fake probe).
#include <anyturn/http/api.hpp>
#include <anyturn/http/probe_route.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::http {
namespace {

namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

constexpr const char* admin_key = "admin-key-0123456789abcdef";

probe::target url(const std::string& u) {
  std::string error;
  auto t = probe::parse_url(u, error);
  EXPECT_TRUE(t) << u << ": " << error;
  return t.value_or(probe::target{});
}

probe_settings own_settings() {
  probe_settings s;
  s.own = {{"127.0.0.1", 3478, probe_listener::kind::udp},
           {"127.0.0.1", 3478, probe_listener::kind::tcp},
           {"0.0.0.0", 5349, probe_listener::kind::tls},
           {"::1", 3479, probe_listener::kind::udp}};
  s.targets = {"turn-2.example.com:3478", "[2001:db8::2]:3478", "stun.example.net:3478"};
  s.credentials = {{"turn-2.example.com:3478", "probe", "probe-pass", ""},
                   {"[2001:db8::2]:3478", "", "", "remote-secret"}};
  s.self_credentials = [] { return probe::credentials{"1700000060:anyturn-probe", "pw"}; };
  return s;
}

// ---- the query ----

TEST(probe_route, query_parsing) {
  std::string error;
  auto q = parse_probe_query("target=turn%3A127.0.0.1%3A3478%3Ftransport%3Dudp&module=turn", 50, error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->target, "turn:127.0.0.1:3478?transport=udp");
  EXPECT_FALSE(q->transport);
  EXPECT_EQ(q->count, 10u);

  q = parse_probe_query("target=turn:h:1&transport=tcp&count=50", 50, error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->transport, probe::transport::tcp);
  EXPECT_EQ(q->count, 50u);
  // A smaller limit than the default count caps the default.
  q = parse_probe_query("target=turn:h:1", 4, error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->count, 4u);

  const std::pair<const char*, const char*> bad[] = {
      {"", "target: missing"},
      {"target=", "target: missing"},
      {"count=3", "target: missing"},
      {"target=a&target=b", "target: given twice"},
      {"target=turn:h:1&transport=sctp", "transport: expected udp or tcp"},
      {"target=turn:h:1&count=51", "count: expected 1..50"},
      {"target=turn:h:1&count=0", "count: expected 1..50"},
      {"target=turn:h:1&count=5x", "count: expected 1..50"},
      {"target=%zz", "malformed query string"},
  };
  for (const auto& [query, message] : bad) {
    error.clear();
    EXPECT_FALSE(parse_probe_query(query, 50, error)) << query;
    EXPECT_EQ(error.rfind(message, 0), 0u) << query << " -> " << error;
  }
}

TEST(probe_route, transport_parameter_overrides_the_url) {
  std::string error;
  probe_query q;
  q.target = "turn:127.0.0.1:3478?transport=udp";
  q.transport = probe::transport::tcp;
  auto t = probe_target(q, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->proto, probe::transport::tcp);
  q.target = "turns:127.0.0.1:5349";
  q.transport = probe::transport::udp;
  EXPECT_FALSE(probe_target(q, error));
  EXPECT_EQ(error, "transport: turns: takes only tcp");
  q.target = "stun:127.0.0.1";
  q.transport = probe::transport::tcp;
  EXPECT_FALSE(probe_target(q, error));
  q.target = "http://example.com/";
  q.transport.reset();
  EXPECT_FALSE(probe_target(q, error));
  EXPECT_EQ(error.rfind("target: ", 0), 0u) << error;
}

// ---- which targets ----

TEST(probe_route, own_listeners_by_kind_and_port) {
  const probe_settings s = own_settings();
  const std::vector<std::string> loopback{"127.0.0.1"};
  const std::vector<std::string> interfaces{"127.0.0.1", "192.0.2.5", "::1"};
  auto d = decide_target(url("turn:127.0.0.1:3478?transport=udp"), s, loopback, interfaces, 0);
  EXPECT_TRUE(d.allowed) << d.error;
  EXPECT_TRUE(d.own);
  ASSERT_TRUE(d.credentials);
  EXPECT_EQ(d.credentials->username, "1700000060:anyturn-probe");
  EXPECT_TRUE(decide_target(url("turn:127.0.0.1:3478?transport=tcp"), s, loopback, interfaces, 0).allowed);
  // TLS listens on the wildcard: any interface address of its family.
  EXPECT_TRUE(decide_target(url("turns:node.example:5349"), s, std::vector<std::string>{"192.0.2.5"},
                            interfaces, 0)
                  .allowed);
  EXPECT_TRUE(decide_target(url("turns:localhost:5349"), s, loopback, interfaces, 0).allowed);
  EXPECT_FALSE(decide_target(url("turns:x:5349"), s, std::vector<std::string>{"192.0.2.99"}, interfaces, 0)
                   .allowed);
  EXPECT_FALSE(decide_target(url("turns:x:5349"), s, std::vector<std::string>{"::1"}, interfaces, 0)
                   .allowed);  // 0.0.0.0 is IPv4 only
  // Wrong port or wrong kind: no.
  d = decide_target(url("turn:127.0.0.1:3479?transport=udp"), s, loopback, interfaces, 0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.error, "target: 127.0.0.1:3479 is not one of this node's listeners for that transport, "
                     "nor in http.probe_targets");
  EXPECT_FALSE(decide_target(url("turn:127.0.0.1:5349?transport=tcp"), s, loopback, interfaces, 0).allowed);
  EXPECT_TRUE(decide_target(url("turn:[::1]:3479"), s, std::vector<std::string>{"::1"}, interfaces, 0).allowed);
  // Every address of the name must be ours; none resolved: no.
  EXPECT_FALSE(decide_target(url("turn:both.example:3478"), s,
                             std::vector<std::string>{"127.0.0.1", "198.51.100.7"}, interfaces, 0)
                   .allowed);
  EXPECT_FALSE(decide_target(url("turn:nowhere.example:3478"), s, std::vector<std::string>{}, interfaces, 0)
                   .allowed);
  // stun: needs no credentials.
  d = decide_target(url("stun:127.0.0.1:3478"), s, loopback, interfaces, 0);
  EXPECT_TRUE(d.allowed);
  EXPECT_FALSE(d.credentials);
  // Without a self credential, own TURN listeners cannot be probed.
  probe_settings none = s;
  none.self_credentials = nullptr;
  d = decide_target(url("turn:127.0.0.1:3478"), none, loopback, interfaces, 0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.error, "target: no credentials for this node's own listeners");
}

TEST(probe_route, listed_targets_use_configured_credentials) {
  const probe_settings s = own_settings();
  const std::vector<std::string> nothing;
  auto d = decide_target(url("turn:TURN-2.example.com:3478?transport=tcp"), s, nothing, nothing, 0);
  ASSERT_TRUE(d.allowed) << d.error;
  EXPECT_FALSE(d.own);
  EXPECT_EQ(d.credentials->username, "probe");
  EXPECT_EQ(d.credentials->password, "probe-pass");
  d = decide_target(url("turn:[2001:db8::2]:3478"), s, nothing, nothing, 1700000000);
  ASSERT_TRUE(d.allowed) << d.error;
  EXPECT_EQ(d.credentials->username, "1700000060:probe");
  EXPECT_EQ(d.credentials->password,
            probe::rest_credentials("remote-secret", "probe", 60, 1700000000).password);
  // Listed without credentials: 400 saying so (stun: needs none).
  d = decide_target(url("turn:stun.example.net:3478"), s, nothing, nothing, 0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.error, "target: stun.example.net:3478 has no credentials in http.probe_credentials");
  EXPECT_TRUE(decide_target(url("stun:stun.example.net:3478"), s, nothing, nothing, 0).allowed);
  // Not listed and not ours.
  EXPECT_FALSE(decide_target(url("turn:turn-3.example.com:3478"), s,
                             std::vector<std::string>{"203.0.113.3"}, nothing, 0)
                   .allowed);
}

// ---- the answer ----

probe::report good_report() {
  probe::report r;
  r.url = "turn:127.0.0.1:3478?transport=udp";
  r.success = true;
  r.duration = 123456789ns;
  r.phases = {{probe::phase::resolve, 1000ns, true, {}},
              {probe::phase::allocate, 2500000ns, true, {}},
              {probe::phase::relay, 200000000ns, true, {}}};
  r.sent = 20;
  r.received = 20;
  r.loss = 0;
  r.rtt = probe::rtt_summary{500000ns, 900000ns, 1000000ns};
  return r;
}

TEST(probe_route, exposition_has_every_family_with_help_and_type) {
  const std::string text = probe_exposition(good_report());
  EXPECT_EQ(text,
            "# HELP probe_success Whether the TURN probe succeeded (1) or failed (0).\n"
            "# TYPE probe_success gauge\n"
            "probe_success 1\n"
            "# HELP probe_duration_seconds How long the whole probe took, in seconds.\n"
            "# TYPE probe_duration_seconds gauge\n"
            "probe_duration_seconds 0.123456789\n"
            "# HELP anyturn_probe_phase_duration_seconds Duration of each probe phase that ran (the "
            "last one failed when probe_success is 0), in seconds.\n"
            "# TYPE anyturn_probe_phase_duration_seconds gauge\n"
            "anyturn_probe_phase_duration_seconds{phase=\"resolve\"} 1e-06\n"
            "anyturn_probe_phase_duration_seconds{phase=\"allocate\"} 0.0025\n"
            "anyturn_probe_phase_duration_seconds{phase=\"relay\"} 0.2\n"
            "# HELP anyturn_probe_rtt_seconds Round trips client -> relay -> relay -> client of the "
            "probe's packets: median, 99th percentile and maximum, in seconds.\n"
            "# TYPE anyturn_probe_rtt_seconds summary\n"
            "anyturn_probe_rtt_seconds{quantile=\"0.5\"} 0.0005\n"
            "anyturn_probe_rtt_seconds{quantile=\"0.99\"} 0.0009\n"
            "anyturn_probe_rtt_seconds{quantile=\"1\"} 0.001\n"
            "# HELP anyturn_probe_loss_ratio Share of the probe's relayed packets that were lost (0..1).\n"
            "# TYPE anyturn_probe_loss_ratio gauge\n"
            "anyturn_probe_loss_ratio 0\n");
}

TEST(probe_route, exposition_of_a_failure) {
  probe::report r;
  r.success = false;
  r.error = "allocate: 441 Wrong Credentials\nsecond line";
  r.duration = 5ms;
  r.phases = {{probe::phase::resolve, 1us, true, {}}, {probe::phase::allocate, 4ms, false, "441"}};
  const std::string text = probe_exposition(r);
  EXPECT_EQ(text.rfind("# allocate: 441 Wrong Credentials second line\n", 0), 0u) << text;
  EXPECT_NE(text.find("\nprobe_success 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("anyturn_probe_phase_duration_seconds{phase=\"allocate\"} 0.004\n"), std::string::npos);
  EXPECT_EQ(text.find("anyturn_probe_rtt_seconds"), std::string::npos);  // nothing relayed
  EXPECT_EQ(text.find("anyturn_probe_loss_ratio"), std::string::npos);
}

// ---- the runner ----

TEST(probe_route, runner_bounds_concurrent_jobs_and_waits_for_them) {
  probe_runner runner(2);
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  auto job = [&] {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return release; });
  };
  EXPECT_TRUE(runner.try_run(job));
  EXPECT_TRUE(runner.try_run(job));
  EXPECT_FALSE(runner.try_run(job));
  EXPECT_EQ(runner.running(), 2u);
  EXPECT_FALSE(runner.wait_idle(20ms));
  {
    const std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(runner.wait_idle(5s));
  EXPECT_EQ(runner.running(), 0u);
  EXPECT_TRUE(runner.try_run([] {}));
  EXPECT_TRUE(runner.wait_idle(5s));
}

// ---- the route, through api::handle ----

request get(const std::string& target, const std::string& bearer = admin_key) {
  request req{bhttp::verb::get, target, 11};
  if (!bearer.empty()) req.set(bhttp::field::authorization, "Bearer " + bearer);
  req.prepare_payload();
  return req;
}

server_config route_config(std::function<probe::report(const probe::target&, const probe::options&)> run) {
  server_config cfg;
  cfg.admin_keys = {admin_key};
  cfg.probe = own_settings();
  cfg.probe.resolve = [](const std::string& host) {
    return host == "127.0.0.1" || host == "localhost" ? std::vector<std::string>{"127.0.0.1"}
                                                     : std::vector<std::string>{"203.0.113.9"};
  };
  cfg.probe.interface_addresses = [] { return std::vector<std::string>{"127.0.0.1"}; };
  cfg.probe.run = std::move(run);
  return cfg;
}

std::string metric_line(api& a, const std::string& prefix) {
  metrics::registry reg;
  reg.add_collector([&a](metrics::sink& s) { a.collect(s); });
  const std::string text = reg.render();
  const auto pos = text.find("\n" + prefix);
  if (pos == std::string::npos) return {};
  return text.substr(pos + 1, text.find('\n', pos + 1) - pos - 1);
}

TEST(probe_route, route_runs_the_probe_with_the_self_credential_and_limits) {
  probe::options seen;
  probe::target seen_target;
  api a(route_config([&](const probe::target& t, const probe::options& o) {
    seen_target = t;
    seen = o;
    return good_report();
  }));
  response res = a.handle(get("/probe?target=turn:127.0.0.1:3478&transport=tcp&count=7"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(res[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res.body().find("probe_success 1\n"), std::string::npos);
  EXPECT_EQ(seen_target.proto, probe::transport::tcp);
  EXPECT_EQ(seen.count, 7u);
  EXPECT_EQ(seen.size, 100u);
  EXPECT_EQ(seen.timeout, 5000ms);
  ASSERT_TRUE(seen.auth);
  EXPECT_EQ(seen.auth->username, "1700000060:anyturn-probe");
  EXPECT_EQ(metric_line(a, "anyturn_http_probes_total{result=\"success\"}"),
            "anyturn_http_probes_total{result=\"success\"} 1");
  EXPECT_EQ(metric_line(a, "anyturn_http_requests_total{route=\"/probe\",code=\"200\"}"),
            "anyturn_http_requests_total{route=\"/probe\",code=\"200\"} 1");

  // A failed probe is still 200.
  api failing(route_config([](const probe::target&, const probe::options&) {
    probe::report r;
    r.error = "connect: connection refused";
    return r;
  }));
  res = failing.handle(get("/probe?target=turn:127.0.0.1:3478"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_NE(res.body().find("probe_success 0\n"), std::string::npos);
}

TEST(probe_route, route_refuses_without_the_key_bad_queries_and_foreign_targets) {
  std::atomic<int> runs{0};
  api a(route_config([&](const probe::target&, const probe::options&) {
    ++runs;
    return good_report();
  }));
  EXPECT_EQ(a.handle(get("/probe?target=turn:127.0.0.1:3478", "")).result_int(), 401u);
  EXPECT_EQ(a.handle(get("/probe?target=turn:127.0.0.1:3478", "wrong-key-0123456789")).result_int(), 401u);
  response res = a.handle(get("/probe"));
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(res.body(), "target: missing (GET /probe?target=turn:host:port?transport=udp)\n");
  EXPECT_EQ(a.handle(get("/probe?target=ftp://x")).result_int(), 400u);
  res = a.handle(get("/probe?target=turn:198.51.100.1:3478"));
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(res.body(), "target: 198.51.100.1:3478 is not one of this node's listeners for that "
                        "transport, nor in http.probe_targets\n");
  EXPECT_EQ(a.handle(get("/probe?target=turn:stun.example.net:3478")).result_int(), 400u);
  request post{bhttp::verb::post, "/probe?target=turn:127.0.0.1:3478", 11};
  post.set(bhttp::field::authorization, std::string("Bearer ") + admin_key);
  EXPECT_EQ(a.handle(post).result_int(), 405u);
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(metric_line(a, "anyturn_http_probes_total{result=\"refused\"}"),
            "anyturn_http_probes_total{result=\"refused\"} 2");
  // No probe function: 501.
  api off(route_config(nullptr));
  EXPECT_EQ(off.handle(get("/probe?target=turn:127.0.0.1:3478")).result_int(), 501u);
}

TEST(probe_route, route_answers_429_beyond_the_concurrent_limit) {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  auto cfg = route_config([&](const probe::target&, const probe::options&) {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return release; });
    return good_report();
  });
  cfg.probe.max_concurrent = 1;
  api a(cfg);
  std::atomic<int> delivered{0};
  auto first = a.handle_async(get("/probe?target=turn:127.0.0.1:3478"), {},
                              [&](response r) { delivered += r.result_int() == 200 ? 1 : 100; });
  EXPECT_FALSE(first);  // deferred
  auto second = a.handle_async(get("/probe?target=turn:127.0.0.1:3478"), {}, [](response) {});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->result_int(), 429u);
  EXPECT_EQ((*second)[bhttp::field::retry_after], "5");
  {
    const std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(a.wait_probes(5s));
  EXPECT_EQ(delivered.load(), 1);
  EXPECT_EQ(metric_line(a, "anyturn_http_probes_total{result=\"rejected\"}"),
            "anyturn_http_probes_total{result=\"rejected\"} 1");
}

}  // namespace
}  // namespace anyturn::http
