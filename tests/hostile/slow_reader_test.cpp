// A TCP client that allocates, binds a channel and then never reads its
// socket while its peer floods the relayed address: the server drops what
// does not fit the connection's write queue (anyturn_dropped_packets_total
// {reason="write_queue_full"}), its RSS stays bounded, and
// turnutils_uclient over TCP on the same listener keeps zero loss.
#include "hostile.hpp"
#include "stream_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace anyturn::itest::hostile {
namespace {

TEST(hostile_stream, a_client_that_never_reads_is_bounded_and_others_keep_zero_loss) {
  server_options so;
  so.config_yaml = "streams:\n  write_queue_size: 65536\n";
  server s(so);
  ASSERT_TRUE(s.start()) << s.d().log();
  const pid_t pid = s.pid();

  stream_client::options small;
  small.receive_buffer = 4096;
  stream_client slow(s.udp(), small);
  ASSERT_TRUE(slow.connect()) << slow.last_error();
  slow.set_credentials(user());
  auto allocated = slow.allocate();
  ASSERT_TRUE(allocated && allocated->is_success()) << describe(allocated);
  const auto relayed = allocated->address(stun::attr::xor_relayed_address);
  ASSERT_TRUE(relayed.has_value());
  udp_socket peer(v4_loopback());
  auto bound = slow.channel_bind(0x4000, peer.local());
  ASSERT_TRUE(bound && bound->is_success()) << describe(bound);
  // From here on `slow` never reads.

  const std::string before = s.scrape();
  const double dropped0 = server::metric(before, R"(anyturn_dropped_packets_total{reason="write_queue_full"})");
  const double dropped_bytes0 = server::metric(before, "anyturn_stream_write_dropped_bytes_total");
  const std::uint64_t rss_before = rss_kib_of(pid);

  uclient_options uo = well_behaved(s, via::tcp);
  uclient good(uo);
  ASSERT_TRUE(good.start()) << good.why();

  // 20,000 x 1,000 bytes (20 MB, far past every buffer on the way) in at
  // most 8 s, about 10,000 packets a second.
  constexpr std::size_t flood = 20000;
  const bytes payload(1000, std::byte{0x5a});
  std::atomic<bool> flooding{true};
  std::size_t flooded = 0;
  const auto flood_begin = clock::now();
  std::thread flooder([&] {
    const auto stop_at = flood_begin + std::chrono::seconds{8};
    for (; flooded < flood && clock::now() < stop_at; ++flooded) {
      peer.send_to(*relayed, payload);
      if (flooded % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
    flooding = false;
  });

  // Meanwhile a second TCP client gets prompt answers.
  stream_client other(s.udp(), {});
  ASSERT_TRUE(other.connect()) << other.last_error();
  std::chrono::milliseconds worst{0};
  int answered = 0;
  while (flooding) {
    const auto t0 = clock::now();
    auto r = other.binding();
    worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0));
    EXPECT_TRUE(r && r->is_success()) << "another TCP client was not served during the flood";
    if (!r) break;
    ++answered;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  flooder.join();
  const auto flood_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - flood_begin);

  const uclient_result r = good.finish();
  EXPECT_TRUE(r.zero_loss(good.expected_messages())) << r.summary() << "\n" << r.output;

  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  const std::uint64_t rss_after = rss_kib_of(pid);
  const std::string after = s.scrape();
  const double dropped = server::metric(after, R"(anyturn_dropped_packets_total{reason="write_queue_full"})") - dropped0;
  const double dropped_bytes = server::metric(after, "anyturn_stream_write_dropped_bytes_total") - dropped_bytes0;
  std::printf("[ hostile slow reader ] %zu x %zu B flooded in %lld ms; write_queue_full +%.0f (%.0f bytes); "
              "other client %d Bindings, worst %lld ms; VmRSS %llu -> %llu KiB; %s\n",
              flooded, payload.size(), static_cast<long long>(flood_ms.count()), dropped, dropped_bytes, answered,
              static_cast<long long>(worst.count()), static_cast<unsigned long long>(rss_before),
              static_cast<unsigned long long>(rss_after), r.summary().c_str());
  EXPECT_EQ(flooded, flood) << "the flood did not finish in time";
  EXPECT_GT(dropped, 0.0) << "nothing was dropped at the write queue";
  EXPECT_GE(dropped_bytes, dropped * payload.size());
  EXPECT_GT(answered, 0);
  EXPECT_LT(worst, std::chrono::milliseconds{1000});
  // A 64 KiB queue plus socket buffers: far below the 20 MB sent.
  EXPECT_LT(rss_after, rss_before + 16 * 1024) << "RSS grew by more than 16 MiB";

  // A new TCP client still gets an allocation.
  stream_client late(s.udp(), {});
  ASSERT_TRUE(late.connect());
  late.set_credentials(user());
  auto again = late.allocate();
  EXPECT_TRUE(again && again->is_success()) << describe(again);
  s.stop();
}

}  // namespace
}  // namespace anyturn::itest::hostile
