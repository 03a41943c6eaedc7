#include <anyturn/metrics/turn_metrics.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace anyturn::metrics {
namespace {

std::string line_of(const std::string& text, const std::string& series) {
  const auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return {};
  const auto end = text.find('\n', pos + 1);
  return text.substr(pos + 1, end - pos - 1);
}

TEST(turn_metrics, every_worker_counter_maps_to_exactly_one_distinct_series) {
  const auto maps = counter_mappings();
  ASSERT_EQ(maps.size(), worker_counter_count);
  std::set<std::pair<std::string_view, std::string_view>> series;
  for (std::size_t i = 0; i < maps.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(maps[i].counter), i);
    EXPECT_TRUE(maps[i].family.starts_with("anyturn_")) << maps[i].family;
    EXPECT_TRUE(maps[i].family.ends_with("_total")) << maps[i].family;
    EXPECT_TRUE(series.emplace(maps[i].family, maps[i].label_value).second)
        << "two counters share " << maps[i].family << " " << maps[i].label_value;
  }
}

// Issue 13's names: anyturn_allocations_closed_total{reason} (the
// credential_expired series is a contract), anyturn_redirects_total{reason},
// anyturn_drain_refused_total and the revoked auth failures.
TEST(turn_metrics, fleet_series_use_the_fixed_names) {
  relay::worker_counters a, b;
  relay::bump(a.closed_credential_expired, 2);
  relay::bump(b.closed_credential_expired, 1);
  relay::bump(a.closed_revoked, 4);
  relay::bump(b.closed_expired, 5);
  relay::bump(a.closed_deleted, 6);
  relay::bump(a.closed_connection, 7);
  relay::bump(b.closed_shutdown, 8);
  relay::bump(a.redirects_anycast, 9);
  relay::bump(b.redirects_drain, 10);
  relay::bump(a.drain_refused, 11);
  relay::bump(b.auth_revoked, 12);
  registry reg;
  reg.add_collector(turn_metrics({&a, &b}));
  const std::string text = reg.render();
  for (const char* line : {
           "anyturn_allocations_closed_total{reason=\"credential_expired\"} 3",
           "anyturn_allocations_closed_total{reason=\"revoked\"} 4",
           "anyturn_allocations_closed_total{reason=\"expired\"} 5",
           "anyturn_allocations_closed_total{reason=\"deleted\"} 6",
           "anyturn_allocations_closed_total{reason=\"closed\"} 7",
           "anyturn_allocations_closed_total{reason=\"shutdown\"} 8",
           "anyturn_redirects_total{reason=\"anycast\"} 9",
           "anyturn_redirects_total{reason=\"drain\"} 10",
           "anyturn_drain_refused_total 11",
           "anyturn_auth_failures_total{reason=\"revoked\"} 12",
       }) {
    EXPECT_NE(text.find(std::string("\n") + line + "\n"), std::string::npos) << line << text;
  }
  EXPECT_NE(text.find("# TYPE anyturn_allocations_closed_total counter\n"), std::string::npos);
}

TEST(turn_metrics, sums_two_workers) {
  relay::worker_counters a, b;
  relay::bump(a.allocate_requests, 3);
  relay::bump(b.allocate_requests, 4);
  relay::bump(a.auth_stale_nonce);
  relay::bump(b.bytes_to_peer, 1000);
  relay::bump(a.bytes_to_peer, 24);
  relay::bump(b.kernel_drops, 9);
  relay::bump(a.allocations_failed_quota, 2);
  a.active_allocations.store(5);
  b.active_allocations.store(7);

  registry reg;
  reg.add_collector(turn_metrics({&a, &b}));
  const std::string text = reg.render();

  EXPECT_EQ(line_of(text, "anyturn_workers"), "anyturn_workers 2");
  EXPECT_EQ(line_of(text, "anyturn_requests_total{method=\"allocate\"}"),
            "anyturn_requests_total{method=\"allocate\"} 7");
  EXPECT_EQ(line_of(text, "anyturn_requests_total{method=\"binding\"}"),
            "anyturn_requests_total{method=\"binding\"} 0");
  EXPECT_EQ(line_of(text, "anyturn_auth_failures_total{reason=\"stale_nonce\"}"),
            "anyturn_auth_failures_total{reason=\"stale_nonce\"} 1");
  EXPECT_EQ(line_of(text, "anyturn_relayed_bytes_total{direction=\"to_peer\"}"),
            "anyturn_relayed_bytes_total{direction=\"to_peer\"} 1024");
  EXPECT_EQ(line_of(text, "anyturn_dropped_packets_total{reason=\"kernel\"}"),
            "anyturn_dropped_packets_total{reason=\"kernel\"} 9");
  EXPECT_EQ(line_of(text, "anyturn_allocations_total{result=\"failed_quota\"}"),
            "anyturn_allocations_total{result=\"failed_quota\"} 2");
  EXPECT_EQ(line_of(text, "anyturn_allocations_active{transport=\"udp\"}"),
            "anyturn_allocations_active{transport=\"udp\"} 12");
  EXPECT_EQ(line_of(text, "anyturn_allocations_active{transport=\"tcp\"}"),
            "anyturn_allocations_active{transport=\"tcp\"} 0");
  // Each family's HELP and TYPE appear once.
  for (const char* fam : {"anyturn_requests_total", "anyturn_dropped_packets_total",
                          "anyturn_allocations_active", "anyturn_peer_denied_total"}) {
    const std::string type = std::string("# TYPE ") + fam + " ";
    const auto first = text.find(type);
    ASSERT_NE(first, std::string::npos) << fam;
    EXPECT_EQ(text.find(type, first + 1), std::string::npos) << fam;
  }
}

TEST(turn_metrics, sum_counters_reads_every_counter) {
  relay::worker_counters a, b;
  std::uint64_t k = 1;
#define BUMP_EACH(name, help) relay::bump(a.name, k); relay::bump(b.name, 100 * k); ++k;
  ANYTURN_WORKER_COUNTERS(BUMP_EACH)
#undef BUMP_EACH
  const std::array<const relay::worker_counters*, 2> workers{&a, &b};
  const counter_totals t = sum_counters(workers);
  registry reg;
  reg.add_collector(turn_metrics(std::span<const relay::worker_counters* const>(workers)));
  EXPECT_NE(reg.render().find("\nanyturn_relayed_bytes_total{direction=\"to_client\"} "),
            std::string::npos);
  ASSERT_EQ(t.workers, 2u);
  for (std::size_t i = 0; i < worker_counter_count; ++i) {
    EXPECT_EQ(t.values[i], 101 * (i + 1)) << counter_mappings()[i].counter_name;
  }
}

TEST(turn_metrics, const_labels_and_transport_split) {
  relay::worker_counters a;
  a.active_allocations.store(10);
  relay::bump(a.peer_denied, 4);
  turn_metrics_options options;
  options.const_labels = {{"tenant", "acme"}};
  options.active_by_transport = [](const relay::worker_counters& w) {
    const auto total = w.active_allocations.load();
    return transport_split{total - 3, 2, 1};
  };
  registry reg;
  reg.add_collector(turn_metrics({&a}, options));
  options.const_labels = {{"tenant", "other"}};
  reg.add_collector(turn_metrics(std::vector<const relay::worker_counters*>{}, options));
  const std::string text = reg.render();
  EXPECT_NE(text.find("\nanyturn_allocations_active{tenant=\"acme\",transport=\"udp\"} 7\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("\nanyturn_allocations_active{tenant=\"acme\",transport=\"tls\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nanyturn_peer_denied_total{tenant=\"acme\",reason=\"policy\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nanyturn_peer_denied_total{tenant=\"other\",reason=\"policy\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("\nanyturn_workers{tenant=\"other\"} 0\n"), std::string::npos);
}

TEST(turn_metrics, allocation_duration_histogram_merges_workers) {
  relay::worker_counters a, b;
  relay::bump(a.allocation_duration_buckets[0], 2);   // <= 1 s
  relay::bump(b.allocation_duration_buckets[3], 1);   // <= 300 s
  relay::bump(b.allocation_duration_buckets.back());  // > 10800 s
  relay::bump(a.allocation_duration_sum_ms, 1500);
  relay::bump(b.allocation_duration_sum_ms, 20000000);
  registry reg;
  reg.add_collector(turn_metrics({&a, &b}));
  const std::string text = reg.render();
  EXPECT_NE(text.find("# TYPE anyturn_allocation_duration_seconds histogram\n"
                      "anyturn_allocation_duration_seconds_bucket{le=\"1\"} 2\n"
                      "anyturn_allocation_duration_seconds_bucket{le=\"10\"} 2\n"
                      "anyturn_allocation_duration_seconds_bucket{le=\"60\"} 2\n"
                      "anyturn_allocation_duration_seconds_bucket{le=\"300\"} 3\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("anyturn_allocation_duration_seconds_bucket{le=\"+Inf\"} 4\n"
                      "anyturn_allocation_duration_seconds_sum 20001.5\n"
                      "anyturn_allocation_duration_seconds_count 4\n"),
            std::string::npos) << text;
}

TEST(turn_metrics, per_tenant_series_for_configured_tenants) {
  relay::worker_counters a, b;
  a.tenants = std::vector<relay::tenant_counters>(2);
  b.tenants = std::vector<relay::tenant_counters>(2);
  relay::bump(a.tenants[1].allocations_created, 3);
  relay::bump(b.tenants[1].allocations_created, 4);
  relay::bump(b.tenants[1].bandwidth_dropped, 7);
  relay::bump(a.tenants[0].bytes_to_client, 100);
  a.tenants[1].active[2].store(5);
  b.tenants[1].active[2].store(1);
  relay::bump(a.bandwidth_dropped, 7);

  turn_metrics_options options;
  registry none;
  none.add_collector(turn_metrics({&a, &b}, options));
  EXPECT_EQ(none.render().find("anyturn_tenant_"), std::string::npos);  // no ids: no series

  options.tenant_ids = {"", "acme"};
  registry reg;
  reg.add_collector(turn_metrics({&a, &b}, options));
  const std::string text = reg.render();
  for (const char* line : {
           "anyturn_tenant_allocations_total{tenant=\"acme\",result=\"created\"} 7\n",
           "anyturn_tenant_dropped_packets_total{tenant=\"acme\",reason=\"bandwidth\"} 7\n",
           "anyturn_tenant_relayed_bytes_total{tenant=\"default\",direction=\"to_client\"} 100\n",
           "anyturn_tenant_allocations_active{tenant=\"acme\",transport=\"tls\"} 6\n",
           "anyturn_dropped_packets_total{reason=\"bandwidth\"} 7\n",
       }) {
    EXPECT_NE(text.find(std::string("\n") + line), std::string::npos) << line << text;
  }
}

TEST(turn_metrics, allocation_limit_series_use_the_fixed_names) {
  relay::worker_counters a;
  a.tenants = std::vector<relay::tenant_counters>(2);
  relay::bump(a.packet_rate_dropped, 2);
  relay::bump(a.byte_rate_dropped, 3);
  relay::bump(a.limit_rejected_peers, 4);
  relay::bump(a.limit_rejected_channels, 5);
  relay::bump(a.limit_rejected_permission_rate, 6);
  relay::bump(a.tenants[1].packet_rate_dropped, 2);
  relay::bump(a.tenants[1].byte_rate_dropped, 3);
  relay::bump(a.tenants[1].limit_rejected_peers, 4);
  relay::bump(a.tenants[1].limit_rejected_channels, 5);
  relay::bump(a.tenants[1].limit_rejected_permission_rate, 6);
  turn_metrics_options options;
  options.tenant_ids = {"", "acme"};
  registry reg;
  reg.add_collector(turn_metrics({&a}, options));
  const std::string text = reg.render();
  for (const char* line : {
           "anyturn_dropped_packets_total{reason=\"packet_rate\"} 2\n",
           "anyturn_dropped_packets_total{reason=\"byte_rate\"} 3\n",
           "anyturn_allocation_limit_rejections_total{reason=\"peers\"} 4\n",
           "anyturn_allocation_limit_rejections_total{reason=\"channels\"} 5\n",
           "anyturn_allocation_limit_rejections_total{reason=\"permission_rate\"} 6\n",
           "anyturn_tenant_dropped_packets_total{tenant=\"acme\",reason=\"packet_rate\"} 2\n",
           "anyturn_tenant_dropped_packets_total{tenant=\"acme\",reason=\"byte_rate\"} 3\n",
           "anyturn_tenant_limit_rejections_total{tenant=\"acme\",reason=\"peers\"} 4\n",
           "anyturn_tenant_limit_rejections_total{tenant=\"acme\",reason=\"channels\"} 5\n",
           "anyturn_tenant_limit_rejections_total{tenant=\"acme\",reason=\"permission_rate\"} 6\n",
       }) {
    EXPECT_NE(text.find(std::string("\n") + line), std::string::npos) << line << text;
  }
}

}  // namespace
}  // namespace anyturn::metrics
