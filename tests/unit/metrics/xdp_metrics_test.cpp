// src/metrics/xdp_metrics.cpp: the XDP families, present while an offload
// is attached, with every label value.
#include <anyturn/metrics/xdp_metrics.hpp>

#include <gtest/gtest.h>

#include <string>

namespace anyturn::metrics {
namespace {

TEST(xdp_metrics, without_an_offload_only_the_attached_gauge) {
  registry r;
  r.add_collector(xdp_metrics([] { return std::optional<xdp::stats>(); }));
  const std::string text = r.render();
  EXPECT_NE(text.find("anyturn_xdp_attached 0\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("anyturn_xdp_packets_total"), std::string::npos) << text;
}

TEST(xdp_metrics, every_direction_action_map_and_reason) {
  xdp::stats s;
  s.packets[static_cast<std::size_t>(xdp::direction::to_peer)][static_cast<std::size_t>(xdp::action::tx)] = 12;
  s.packets[static_cast<std::size_t>(xdp::direction::to_client)][static_cast<std::size_t>(xdp::action::redirect)] = 7;
  s.fallbacks[static_cast<std::size_t>(xdp::fallback::map_full)] = 3;
  s.channel_entries = 4;
  s.allocation_entries = 2;
  registry r;
  r.add_collector(xdp_metrics([s] { return std::optional<xdp::stats>(s); }));
  const std::string text = r.render();
  EXPECT_NE(text.find("anyturn_xdp_attached 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("anyturn_xdp_packets_total{direction=\"to_peer\",action=\"tx\"} 12\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("anyturn_xdp_packets_total{direction=\"to_client\",action=\"redirect\"} 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("anyturn_xdp_packets_total{direction=\"to_client\",action=\"drop\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("anyturn_xdp_map_entries{map=\"channels\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("anyturn_xdp_map_entries{map=\"allocations\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("anyturn_xdp_fallbacks_total{reason=\"map_full\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("anyturn_xdp_fallbacks_total{reason=\"zero_checksum\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE anyturn_xdp_packets_total counter"), std::string::npos);
}

}  // namespace
}  // namespace anyturn::metrics
