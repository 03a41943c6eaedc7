#include <anyturn/metrics/registry.hpp>

#include <anyturn/metrics/histogram.hpp>
#include <anyturn/metrics/process.hpp>
#include <anyturn/metrics/turn_metrics.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <limits>
#include <stdexcept>
#include <string>

namespace anyturn::metrics {
namespace {

TEST(registry, renders_counter_and_gauge_families_with_help_and_type) {
  registry reg;
  reg.add_collector([](sink& s) {
    s.counter("demo_requests", "Requests handled.", {{"method", "get"}}, 3);
    s.counter("demo_requests", "Requests handled.", {{"method", "post"}}, std::uint64_t{18446744073709551615ULL});
    s.gauge("demo_temperature_celsius", "Current temperature.", {}, -1.5);
  });
  EXPECT_EQ(reg.render(),
            "# HELP demo_requests_total Requests handled.\n"
            "# TYPE demo_requests_total counter\n"
            "demo_requests_total{method=\"get\"} 3\n"
            "demo_requests_total{method=\"post\"} 18446744073709551615\n"
            "# HELP demo_temperature_celsius Current temperature.\n"
            "# TYPE demo_temperature_celsius gauge\n"
            "demo_temperature_celsius -1.5\n");
}

TEST(registry, counter_name_already_ending_in_total_is_kept) {
  sink s;
  s.counter("x_total", "h", {}, 1);
  EXPECT_EQ(s.text(), "# HELP x_total h\n# TYPE x_total counter\nx_total 1\n");
}

TEST(registry, escapes_label_values_and_help) {
  sink s;
  s.gauge("g", "line1\nback\\slash \"quoted\"", {{"path", "C:\\dir\n\"x\""}}, 1);
  EXPECT_EQ(s.text(),
            "# HELP g line1\\nback\\\\slash \"quoted\"\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n");
}

TEST(registry, special_float_values) {
  sink s;
  s.gauge("a", "h", {{"k", "nan"}}, std::numeric_limits<double>::quiet_NaN());
  s.gauge("a", "h", {{"k", "pinf"}}, std::numeric_limits<double>::infinity());
  s.gauge("a", "h", {{"k", "ninf"}}, -std::numeric_limits<double>::infinity());
  s.gauge("a", "h", {{"k", "small"}}, 1e-9);
  EXPECT_EQ(s.text(),
            "# HELP a h\n# TYPE a gauge\n"
            "a{k=\"nan\"} NaN\n"
            "a{k=\"pinf\"} +Inf\n"
            "a{k=\"ninf\"} -Inf\n"
            "a{k=\"small\"} 1e-09\n");
}

TEST(registry, histogram_renders_cumulative_buckets_sum_and_count) {
  histogram_snapshot h({0.25, 1, 10});
  h.observe(0.125);
  h.observe(0.25);  // le is inclusive
  h.observe(0.5);
  h.observe(100);   // +Inf only
  sink s;
  s.histogram("demo_latency_seconds", "Latency.", {{"route", "/x"}}, h);
  EXPECT_EQ(s.text(),
            "# HELP demo_latency_seconds Latency.\n"
            "# TYPE demo_latency_seconds histogram\n"
            "demo_latency_seconds_bucket{route=\"/x\",le=\"0.25\"} 2\n"
            "demo_latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
            "demo_latency_seconds_bucket{route=\"/x\",le=\"10\"} 3\n"
            "demo_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
            "demo_latency_seconds_sum{route=\"/x\"} 100.875\n"
            "demo_latency_seconds_count{route=\"/x\"} 4\n");
}

TEST(registry, rejects_invalid_names_type_clashes_and_le_on_histograms) {
  sink s;
  s.gauge("9bad", "h", {}, 1);
  s.gauge("ok", "h", {{"__reserved", "x"}}, 1);
  s.gauge("ok", "h", {{"bad-label", "x"}}, 1);
  s.gauge("ok", "h", {{"a", "1"}, {"a", "2"}}, 1);
  s.gauge("ok", "h", {}, 1);
  s.counter("ok", "h", {}, 1);  // becomes ok_total: a different family, accepted
  s.counter("ok_total", "h", {}, 1);
  s.gauge("ok_total", "h", {}, 1);  // same name, other type
  histogram_snapshot h({1});
  s.histogram("hist", "h", {{"le", "1"}}, h);
  EXPECT_EQ(s.rejected(), 6u);
  EXPECT_EQ(s.text(),
            "# HELP ok h\n# TYPE ok gauge\nok 1\n"
            "# HELP ok_total h\n# TYPE ok_total counter\nok_total 1\nok_total 1\n");
}

TEST(registry, name_validation) {
  EXPECT_TRUE(is_valid_metric_name("a:b_c9"));
  EXPECT_TRUE(is_valid_metric_name(":colon_first"));
  EXPECT_FALSE(is_valid_metric_name(""));
  EXPECT_FALSE(is_valid_metric_name("a-b"));
  EXPECT_FALSE(is_valid_metric_name("a b"));
  EXPECT_TRUE(is_valid_label_name("_x1"));
  EXPECT_FALSE(is_valid_label_name("a:b"));
  EXPECT_FALSE(is_valid_label_name("__name__"));
  EXPECT_FALSE(is_valid_label_name("1a"));
}

TEST(registry, families_from_several_collectors_are_grouped) {
  registry reg;
  reg.add_collector([](sink& s) {
    s.counter("c", "h", {{"tenant", "a"}}, 1);
    s.gauge("g", "h", {}, 2);
  });
  reg.add_collector([](sink& s) { s.counter("c", "h", {{"tenant", "b"}}, 5); });
  EXPECT_EQ(reg.render(),
            "# HELP c_total h\n# TYPE c_total counter\n"
            "c_total{tenant=\"a\"} 1\nc_total{tenant=\"b\"} 5\n"
            "# HELP g h\n# TYPE g gauge\ng 2\n");
}

TEST(registry, throwing_collector_loses_only_its_own_samples) {
  registry reg;
  reg.add_collector([](sink& s) { s.gauge("before", "h", {}, 1); });
  reg.add_collector([](sink& s) {
    s.gauge("partial", "h", {}, 1);
    throw std::runtime_error("boom");
  });
  reg.add_collector([](sink& s) { s.gauge("after", "h", {}, 2); });
  sink s;
  reg.collect(s);
  EXPECT_EQ(s.rejected(), 1u);
  EXPECT_EQ(s.text(), "# HELP before h\n# TYPE before gauge\nbefore 1\n"
                      "# HELP after h\n# TYPE after gauge\nafter 2\n");
}

TEST(registry, remove_collector) {
  registry reg;
  const auto id = reg.add_collector([](sink& s) { s.gauge("x", "h", {}, 1); });
  EXPECT_FALSE(reg.render().empty());
  reg.remove_collector(id);
  EXPECT_EQ(reg.render(), "");
}

TEST(registry, owned_counter_and_gauge_families) {
  registry reg;
  auto& requests = reg.add_counter("demo_http_requests", "HTTP requests.", {"route", "code"});
  auto& conns = reg.add_gauge("demo_connections", "Open connections.");
  requests.inc({"/metrics", "200"});
  requests.inc({"/metrics", "200"}, 2);
  requests.inc({"/x", "404"});
  requests.inc({"only-one-value"});  // wrong arity: ignored
  conns.add({}, 3);
  conns.add({}, -1);
  EXPECT_EQ(requests.value({"/metrics", "200"}), 3u);
  EXPECT_EQ(conns.value({}), 2.0);
  EXPECT_EQ(reg.render(),
            "# HELP demo_http_requests_total HTTP requests.\n"
            "# TYPE demo_http_requests_total counter\n"
            "demo_http_requests_total{route=\"/metrics\",code=\"200\"} 3\n"
            "demo_http_requests_total{route=\"/x\",code=\"404\"} 1\n"
            "# HELP demo_connections Open connections.\n"
            "# TYPE demo_connections gauge\n"
            "demo_connections 2\n");
}

TEST(registry, empty_family_writes_nothing) {
  registry reg;
  reg.add_counter("unused", "never incremented", {"a"});
  EXPECT_EQ(reg.render(), "");
}

}  // namespace
}  // namespace anyturn::metrics

// ---- the rendering, checked by Prometheus itself ----
//
// `promtool check metrics` (Prometheus' own parser and linter) must accept
// what we render. promtool is a required test dependency (Debian package
// "prometheus"); a missing promtool fails this test.

namespace anyturn::metrics {
namespace {

struct check_result {
  int exit_code = -1;
  std::string output;
};

check_result promtool_check(const std::string& exposition) {
  const std::string dir = ::testing::TempDir();
  const std::string in = dir + "anyturn_promtool_in_" + std::to_string(::getpid()) + ".txt";
  const std::string out = dir + "anyturn_promtool_out_" + std::to_string(::getpid()) + ".txt";
  std::ofstream(in, std::ios::binary) << exposition;
  const std::string cmd = "promtool check metrics < '" + in + "' > '" + out + "' 2>&1";
  const int status = std::system(cmd.c_str());
  check_result r;
  r.exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  r.output = ss.str();
  std::remove(in.c_str());
  std::remove(out.c_str());
  return r;
}

TEST(promtool, is_installed) {
  const check_result r = promtool_check("");
  ASSERT_NE(r.exit_code, 127) << "promtool not found on PATH (install Debian's prometheus): "
                              << r.output;
}

TEST(promtool, accepts_a_representative_registry) {
  registry reg;
  auto& http = reg.add_counter("anyturn_http_requests", "HTTP requests by route and code.",
                               {"route", "code"});
  http.inc({"/metrics", "200"}, 4);
  http.inc({"/api/v1/ice-servers", "401"});
  reg.add_gauge("anyturn_http_connections_active", "Open HTTP connections.").set({}, 2);

  relay::worker_counters w1, w2;
  w1.tenants = std::vector<relay::tenant_counters>(2);
  relay::bump(w1.allocate_requests, 10);
  relay::bump(w2.bytes_to_client, 123456);
  relay::bump(w1.tenants[1].bytes_to_peer, 99);
  relay::bump(w2.allocation_duration_buckets[2]);
  relay::bump(w2.allocation_duration_sum_ms, 42000);
  w1.active_allocations.store(3);
  turn_metrics_options options;
  options.tenant_ids = {"", "acme"};
  reg.add_collector(turn_metrics({&w1, &w2}, options));

  histogram_cell latency(exponential_buckets(0.0005, 2, 12));
  for (double v : {0.0001, 0.003, 0.02, 0.3, 5.0}) latency.observe(v);
  reg.add_collector([&latency](sink& s) {
    histogram_snapshot snap({latency.upper_bounds().begin(), latency.upper_bounds().end()});
    snap.merge(latency);
    s.histogram("anyturn_demo_duration_seconds", "A demo latency histogram.",
                {{"route", "a \"quoted\"\\path\nwith newline"}}, snap);
  });
  reg.add_collector(process_collector());
  reg.add_collector(build_info_collector());

  const std::string text = reg.render();
  const check_result r = promtool_check(text);
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n--- input ---\n" << text;
  EXPECT_EQ(r.output, "") << "\n--- input ---\n" << text;
}

TEST(promtool, catches_a_lint_problem_so_the_check_is_real) {
  // A counter without _total and without HELP: promtool must complain.
  const check_result r = promtool_check("# TYPE bad_counter counter\nbad_counter 1\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no help text"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace anyturn::metrics
