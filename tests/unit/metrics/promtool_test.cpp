// `promtool check metrics` (Prometheus' own parser and linter) must accept
// what we render. promtool is a required test dependency (Debian package
// "prometheus"); a missing promtool fails this test.
#include <anyturn/metrics/histogram.hpp>
#include <anyturn/metrics/process.hpp>
#include <anyturn/metrics/registry.hpp>
#include <anyturn/metrics/turn_metrics.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

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
