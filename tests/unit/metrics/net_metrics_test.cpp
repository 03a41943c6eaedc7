// The net layer's counters in the metric set: every ANYTURN_NET_COUNTERS
// entry is one distinct series, summed over the workers.
#include <anyturn/metrics/net_metrics.hpp>

#include <anyturn/metrics/registry.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace anyturn::metrics {
namespace {

TEST(net_metrics, every_net_counter_is_one_distinct_series) {
  net::net_counters a, b;
  std::uint64_t v = 1;
#define ANYTURN_TEST_SET(name, help) a.name = v; b.name = 100 * v; ++v;
  ANYTURN_NET_COUNTERS(ANYTURN_TEST_SET)
#undef ANYTURN_TEST_SET
  a.connections_open = 3;
  b.connections_open = 4;
  a.relay_sockets_open = 7;

  sink s;
  net_metrics({&a, &b})(s);
  EXPECT_EQ(s.rejected(), 0u);
  const std::string text = s.text();
  EXPECT_NE(text.find("anyturn_connections_open 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("anyturn_relay_sockets_open 7\n"), std::string::npos) << text;

  // Each mapping's series carries the sum of its counter: 101 * (position + 1).
  std::set<std::string> series;
  std::size_t i = 0;
  for (const auto& m : net_counter_mappings()) {
    std::string line(m.family);
    if (!m.label_name.empty()) {
      line += "{" + std::string(m.label_name) + "=\"" + std::string(m.label_value) + "\"}";
    }
    EXPECT_TRUE(series.insert(line).second) << "two counters map to " << line;
    line += " " + std::to_string(101 * (i + 1)) + "\n";
    EXPECT_NE(text.find(line), std::string::npos) << line << " not in\n" << text;
    ++i;
  }
#define ANYTURN_TEST_COUNT(name, help) +1
  EXPECT_EQ(i, 0u ANYTURN_NET_COUNTERS(ANYTURN_TEST_COUNT));
#undef ANYTURN_TEST_COUNT
}

TEST(net_metrics, rows_are_named_like_the_rest_of_the_set_and_missing_workers_are_skipped) {
  for (const auto& m : net_counter_mappings()) {
    EXPECT_TRUE(m.family.starts_with("anyturn_")) << m.family;
    EXPECT_TRUE(m.family.ends_with("_total")) << m.family;
    EXPECT_EQ(m.label_name.empty(), m.label_value.empty()) << m.family;
  }

  net::net_counters a;
  a.accept_errors = 5;
  a.connections_open = 2;
  sink s;
  net_metrics({nullptr, &a, nullptr})(s);
  const std::string text = s.text();
  EXPECT_NE(text.find("anyturn_accept_errors_total 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("anyturn_connections_open 2\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace anyturn::metrics
