// 10,000 allocations started and stopped (two waves of 5,000 held at
// once), with turnutils_uclient relaying alongside at zero loss: afterwards
// the daemon's VmRSS and its open descriptors are back within 5% of the
// baseline taken after a warm-up round, and /metrics shows every allocation
// created and deleted and no relay socket left open.
#include "hostile.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

namespace anyturn::itest::hostile {
namespace {

constexpr int wave = 5000;
constexpr int waves = 2;

// The client of allocation i: its own source address, 127.0.8.1 up, 200 per /24.
stun::endpoint source(int i) {
  return loopback(0, static_cast<std::uint8_t>(8 + i / 200), static_cast<std::uint8_t>(1 + i % 200));
}

struct churn_result {
  int created = 0;
  int deleted = 0;
};

// Starts `count` allocations and stops them again, all within `budget`;
// `at_peak` runs while all of them are held. Each client does the whole
// long-term credential exchange (the nonce is bound to its address).
churn_result churn(server& s, int count, std::chrono::seconds budget,
                   const std::function<void()>& at_peak = {}) {
  churn_result result;
  const auto deadline = clock::now() + budget;
  std::vector<std::unique_ptr<turn_client>> clients;
  clients.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count && clock::now() < deadline; ++i) {
    auto c = std::make_unique<turn_client>(s.udp(), source(i));
    c->set_credentials(user());
    auto r = c->allocate();
    if (!r || !r->is_success()) {
      ADD_FAILURE() << "allocation " << i << ": " << describe(r);
      break;
    }
    ++result.created;
    clients.push_back(std::move(c));
  }
  if (at_peak) at_peak();
  for (auto& c : clients) {
    if (clock::now() >= deadline) break;
    auto r = c->refresh(0);
    if (!r || !r->is_success()) {
      ADD_FAILURE() << "deleting an allocation: " << describe(r);
      break;
    }
    ++result.deleted;
  }
  return result;
}

// Relay sockets open now, from /metrics.
double relay_sockets_open(server& s) { return server::metric(s.scrape(), "anyturn_relay_sockets_open"); }

// Waits (bounded) until /metrics shows at most `left` relay sockets open.
bool relay_sockets_down_to(server& s, double left, std::chrono::seconds limit) {
  const auto deadline = clock::now() + limit;
  do {
    if (relay_sockets_open(s) <= left) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  } while (clock::now() < deadline);
  return false;
}

TEST(hostile_churn, ten_thousand_allocations_leave_rss_and_descriptors_at_baseline) {
  const std::uint64_t fd_limit = raise_fd_limit();
  ASSERT_GE(fd_limit, static_cast<std::uint64_t>(wave + 500)) << "this test holds " << wave << " client sockets";
  server_options so;
  so.relay_width = wave + 500;
  so.config_yaml = "limits:\n  max_allocations_per_user: " + std::to_string(wave + 100) + "\n";
  server s(so);
  ASSERT_TRUE(s.start()) << s.d().log();
  const pid_t pid = s.pid();

  // Warm-up: one smaller round, then the baseline.
  const churn_result warm = churn(s, 1000, std::chrono::seconds{30});
  ASSERT_EQ(warm.deleted, 1000);
  ASSERT_TRUE(relay_sockets_down_to(s, 0, std::chrono::seconds{5}));
  std::this_thread::sleep_for(std::chrono::seconds{1});
  const std::string before = s.scrape();
  const std::uint64_t rss_base = rss_kib_of(pid);
  const std::size_t fds_base = open_fds(pid);
  const double created0 = server::metric(before, R"(anyturn_allocations_total{result="created"})");
  const double deleted0 = server::metric(before, R"(anyturn_allocations_total{result="deleted"})");

  uclient_options uo = well_behaved(s);
  uclient good(uo);
  ASSERT_TRUE(good.start()) << good.why();

  const auto begin = clock::now();
  std::uint64_t rss_peak = 0;
  std::size_t fds_peak = 0;
  int created = 0, deleted = 0;
  for (int w = 0; w < waves; ++w) {
    const churn_result c = churn(s, wave, std::chrono::seconds{40}, [&] {
      rss_peak = std::max(rss_peak, rss_kib_of(pid));
      fds_peak = std::max(fds_peak, open_fds(pid));
    });
    created += c.created;
    deleted += c.deleted;
    ASSERT_EQ(c.deleted, wave) << "wave " << w;
  }
  const auto churn_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - begin);
  const uclient_result r = good.finish();
  EXPECT_TRUE(r.zero_loss(good.expected_messages())) << r.summary() << "\n" << r.output;

  // turnutils_uclient deletes most of its allocations when it ends, but
  // leaves some to expire: at most its 2 per client stay, each with one
  // relay socket, which the descriptor count leaves out. Then the workers
  // trim (bounded wait).
  const double uclient_left = 2.0 * uo.clients;
  EXPECT_TRUE(relay_sockets_down_to(s, uclient_left, std::chrono::seconds{10})) << "relay sockets still open";
  const auto left = static_cast<std::size_t>(relay_sockets_open(s));
  std::uint64_t rss_after = 0;
  std::size_t fds_after = 0;
  const auto settle = clock::now() + std::chrono::seconds{10};
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
    rss_after = rss_kib_of(pid);
    fds_after = open_fds(pid) - left;
  } while ((rss_after * 100 > rss_base * 105 || fds_after * 100 > fds_base * 105) && clock::now() < settle);

  const std::string after = s.scrape();
  const double created_n = server::metric(after, R"(anyturn_allocations_total{result="created"})") - created0;
  const double deleted_n = server::metric(after, R"(anyturn_allocations_total{result="deleted"})") - deleted0;
  std::printf("[ hostile churn ] %d allocations started and stopped in %lld ms (%d waves of %d); VmRSS baseline %llu KiB, "
              "peak %llu KiB, after %llu KiB; descriptors baseline %zu, peak %zu, after %zu (+%zu of uclient's live allocations); created +%.0f, deleted +%.0f; %s\n",
              created, static_cast<long long>(churn_ms.count()), waves, wave,
              static_cast<unsigned long long>(rss_base), static_cast<unsigned long long>(rss_peak),
              static_cast<unsigned long long>(rss_after), fds_base, fds_peak, fds_after, left, created_n, deleted_n,
              r.summary().c_str());
  EXPECT_EQ(created, wave * waves);
  EXPECT_EQ(deleted, wave * waves);
  // uclient's own allocations are counted too.
  EXPECT_GE(created_n, static_cast<double>(wave * waves));
  EXPECT_GE(deleted_n, static_cast<double>(wave * waves));
  EXPECT_LE(rss_after * 100, rss_base * 105) << "VmRSS did not come back within 5% of the baseline";
  EXPECT_LE(fds_after * 100, fds_base * 105) << "open descriptors did not come back within 5% of the baseline";
  s.stop();
}

}  // namespace
}  // namespace anyturn::itest::hostile
