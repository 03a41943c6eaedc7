// Permission spraying: one allocation asks for permissions to 10,000
// distinct peers (127.2.0.0/16, one CreatePermission each). At most
// limits.allocation.max_peers are granted; the rest get 508 and are counted
// in anyturn_allocation_limit_rejections_total{reason="peers"} (and per
// tenant); refreshing a granted permission still works; turnutils_uclient
// keeps zero loss.
#include "hostile.hpp"

#include <gtest/gtest.h>

namespace anyturn::itest::hostile {
namespace {

constexpr int peers = 10000;
constexpr int max_peers = 64;

stun::endpoint peer(int i) {
  return loopback(2, static_cast<std::uint8_t>(i / 250), static_cast<std::uint8_t>(1 + i % 250), 9);
}

TEST(hostile_limits, permission_spraying_stops_at_max_peers) {
  server_options so;
  so.allow_peers = {"127.0.0.1/32", "127.2.0.0/16"};
  // The permission rate is not what this test is about: a bucket of
  // max_peers tokens never runs dry, however fast the spray (with the default
  // burst of 32, a spray faster than 32 new peers per millisecond met the
  // rate limit before max_peers).
  so.config_yaml = "limits:\n  allocation:\n    max_peers: " + std::to_string(max_peers) +
                   "\n    permissions_per_second: 1000000\n    permission_burst: " + std::to_string(max_peers) +
                   "\n";
  server s(so);
  ASSERT_TRUE(s.start()) << s.d().log();

  const std::string before = s.scrape();
  const std::string rejections = R"(anyturn_allocation_limit_rejections_total{reason="peers"})";
  const std::string tenant_rejections = R"(anyturn_tenant_limit_rejections_total{tenant="default",reason="peers"})";
  const double rejected0 = server::metric(before, rejections);
  const double tenant_rejected0 = server::metric(before, tenant_rejections);

  uclient_options uo = well_behaved(s);
  uclient good(uo);
  ASSERT_TRUE(good.start()) << good.why();

  turn_client sprayer(s.udp());
  sprayer.set_credentials(user());
  auto a = sprayer.allocate();
  ASSERT_TRUE(a && a->is_success()) << describe(a);

  int granted = 0, refused_508 = 0, other = 0;
  std::string first_other;
  const auto begin = clock::now();
  const auto deadline = begin + std::chrono::seconds{60};
  int sent = 0;
  for (; sent < peers && clock::now() < deadline; ++sent) {
    auto r = sprayer.create_permission({peer(sent)});
    if (r && r->is_success()) {
      ++granted;
    } else if (r && r->error_code() == 508) {
      ++refused_508;
    } else {
      if (other++ == 0) first_other = describe(r);
    }
  }
  const auto spray_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - begin);
  // A granted permission can still be refreshed at the limit.
  auto refreshed = sprayer.create_permission({peer(0)});
  EXPECT_TRUE(refreshed && refreshed->is_success()) << describe(refreshed);

  const uclient_result r = good.finish();
  EXPECT_TRUE(r.zero_loss(good.expected_messages())) << r.summary() << "\n" << r.output;

  const std::string after = s.scrape();
  const double rejected = server::metric(after, rejections) - rejected0;
  const double tenant_rejected = server::metric(after, tenant_rejections) - tenant_rejected0;
  std::printf("[ hostile permission spray ] %d CreatePermissions in %lld ms: %d granted, %d x 508, %d other; "
              "rejections{peers} +%.0f (tenant +%.0f); daemon VmRSS %llu KiB; %s\n",
              sent, static_cast<long long>(spray_ms.count()), granted, refused_508, other, rejected,
              tenant_rejected, static_cast<unsigned long long>(rss_kib_of(s.pid())), r.summary().c_str());
  EXPECT_EQ(sent, peers) << "the spray did not finish within 60 s";
  EXPECT_EQ(granted, max_peers);
  EXPECT_EQ(refused_508, peers - max_peers);
  EXPECT_EQ(other, 0) << first_other;
  EXPECT_EQ(rejected, static_cast<double>(refused_508));
  EXPECT_EQ(tenant_rejected, rejected);
  s.stop();
}

}  // namespace
}  // namespace anyturn::itest::hostile
