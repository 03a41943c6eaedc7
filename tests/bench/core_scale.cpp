// anyturn-core-scale — the TURN core (turn::worker_core) at 100,000 allocations,
// without a single socket.
//
// The daemon's end-to-end memory run is capped by the open-file limit (one
// relay socket per allocation). The core is sans-I/O: it acts only through
// `relay::io_port`, so this program drives it with a fake port that opens
// nothing and counts what it is asked to send. It measures what the core
// itself costs at scale:
//
//   - allocations/s for the full authenticated cycle (401 challenge, signed
//     Allocate, signed ChannelBind which also installs the permission);
//   - RSS and live heap bytes per allocation, after the Allocates alone (what
//     the daemon's memory run creates) and with the channel and permission;
//   - ChannelData client->peer and peer->client cost per packet with the
//     sending allocation drawn uniformly at random among all N (the table
//     lookups must stay O(1); cache misses grow with N), and heap
//     allocations per forwarded packet (a replacement operator new counts);
//   - RSS after Refresh(0) of every allocation, and a second fill/free round.
//
// Output: one human line per step on stderr, one JSON line on stdout.
// Single thread, no sockets, bounded in count and time.
#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/nonce.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/relay/port_pool.hpp>
#include <anyturn/stun/message.hpp>
#include <anyturn/relay/counters.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/turn/worker_core.hpp>

#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// ---- heap accounting -------------------------------------------------------
// Every operator new/delete of this program goes through here: the number of
// calls (to prove the forward path allocates nothing) and the live bytes
// (malloc_usable_size, plus glibc's 8-byte chunk header) so the core's heap
// per allocation is known exactly, independent of page granularity.
// GCC pairs the inlined malloc/free of these replacements with the new and
// delete expressions it sees and warns about a mismatch that is not one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<std::uint64_t> g_news{0};
std::atomic<std::int64_t> g_live_bytes{0};
std::atomic<std::int64_t> g_live_blocks{0};

void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) return nullptr;
  g_news.fetch_add(1, std::memory_order_relaxed);
  g_live_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  g_live_blocks.fetch_add(1, std::memory_order_relaxed);
  return p;
}
void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  g_live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  g_live_blocks.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

namespace anyturn::bench {
namespace {

namespace attr = stun::attr;
using stun::message_class;
using relay::client_ref;
using relay::relay_id;

constexpr const char* realm = "scale.example.org";
constexpr const char* user = "alice";
constexpr const char* password = "wonderland";
constexpr std::uint16_t channel_number = 0x4000;
constexpr std::size_t payload_size = 160;  // one 20 ms Opus frame, roughly
constexpr std::uint16_t relay_port_low = 1024, relay_port_high = 65535;

std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void fail(const char* fmt, const std::string& what) {
  std::fprintf(stderr, "anyturn-core-scale: ");
  std::fprintf(stderr, fmt, what.c_str());
  std::fprintf(stderr, "\n");
  std::exit(1);
}

// Resident set in KiB, after handing freed-but-cached heap back to the kernel.
std::int64_t rss_kib() {
  ::malloc_trim(0);
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) fail("cannot open %s", "/proc/self/statm");
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (n != 2) fail("cannot parse %s", "/proc/self/statm");
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

std::int64_t heap_bytes() {
  return g_live_bytes.load(std::memory_order_relaxed) + 8 * g_live_blocks.load(std::memory_order_relaxed);
}

// ---- the fake io_port --------------------------------------------------------
// Opens nothing, records nothing on the data path: counts sends and bytes.
// While `capture` is set (control requests only), the last message to a
// client is copied into a fixed buffer so the caller can parse the answer.
struct counting_io final : relay::io_port {
  std::uint64_t client_sends = 0, client_bytes = 0;
  std::uint64_t peer_sends = 0, peer_bytes = 0;
  std::uint64_t opened = 0, closed = 0;
  std::int64_t open_now = 0;
  relay_id last_opened = relay::no_relay;
  bool capture = false;
  std::array<std::byte, 1500> last{};
  std::size_t last_len = 0;

  void send_to_client(const client_ref& /*to*/, relay::fragments data) override {
    ++client_sends;
    std::size_t len = 0;
    for (const auto& part : data) {
      if (capture && len + part.size() <= last.size())
        std::memcpy(last.data() + len, part.data(), part.size());
      len += part.size();
    }
    client_bytes += len;
    if (capture) last_len = std::min(len, last.size());
  }
  std::error_code open_relay(relay_id id, const stun::endpoint& /*bind*/) override {
    ++opened;
    ++open_now;
    last_opened = id;
    return {};
  }
  void close_relay(relay_id /*id*/) override {
    ++closed;
    --open_now;
  }
  bool send_to_peer(relay_id /*id*/, const stun::endpoint& /*peer*/, relay::fragments data,
                    bool /*dont_fragment*/) override {
    ++peer_sends;
    for (const auto& part : data) peer_bytes += part.size();
    return true;
  }
};

// ---- options -----------------------------------------------------------------
struct options {
  std::vector<std::size_t> steps{1000, 10000, 100000};
  std::size_t packets = 1'000'000;
  double seconds = 10.0;
  std::size_t rounds = 2;  // fill/free rounds at the top step, the first included
};

[[noreturn]] void usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "anyturn-core-scale: %s\n\n", error);
  std::fprintf(error != nullptr ? stderr : stdout,
               "usage: anyturn-core-scale [--steps A,B,...] [--packets M] [--seconds S] [--rounds R]\n"
               "\n"
               "Drives the TURN core (turn::worker_core) with a fake io_port that opens no\n"
               "sockets: grows to each step's number of allocations (401 + Allocate +\n"
               "ChannelBind each), reports allocations/s, RSS and heap per allocation,\n"
               "and ChannelData forwarding cost in both directions with the sender drawn\n"
               "at random among all allocations; then frees everything (Refresh 0) and\n"
               "runs further fill/free rounds at the top step. Human lines on stderr, one\n"
               "JSON line on stdout. Opens no sockets.\n"
               "\n"
               "  --steps A,B,...  cumulative allocation counts (default 1000,10000,100000)\n"
               "  --packets M      packets per forwarding run and direction (default 1000000)\n"
               "  --seconds S      time bound of each forwarding run (default 10)\n"
               "  --rounds R       fill/free rounds at the top step, the first included\n"
               "                   (default 2, at most 20)\n"
               "  --help           this text\n");
  std::exit(error != nullptr ? 2 : 0);
}

std::size_t parse_count(std::string_view text, const char* what) {
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    usage(what);
  const std::size_t v = std::stoul(std::string(text));
  if (v == 0) usage(what);
  return v;
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(nullptr);
    } else if (a == "--steps") {
      o.steps.clear();
      std::string_view v = value();
      while (!v.empty()) {
        const auto comma = v.find(',');
        o.steps.push_back(parse_count(v.substr(0, comma), "--steps: positive integers, comma separated"));
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
      if (o.steps.empty()) usage("--steps: empty");
      for (std::size_t k = 1; k < o.steps.size(); ++k)
        if (o.steps[k] <= o.steps[k - 1]) usage("--steps must increase");
      if (o.steps.back() > 1'000'000) usage("--steps: at most 1000000");
    } else if (a == "--packets") {
      o.packets = parse_count(value(), "--packets: a positive integer");
      if (o.packets > 100'000'000) usage("--packets: at most 100000000");
    } else if (a == "--rounds") {
      o.rounds = parse_count(value(), "--rounds: a positive integer");
      if (o.rounds > 20) usage("--rounds: at most 20");
    } else if (a == "--seconds") {
      const std::string v(value());
      char* end = nullptr;
      o.seconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(o.seconds > 0) || o.seconds > 600)
        usage("--seconds: a number in (0, 600]");
    } else {
      usage(("unknown argument: " + std::string(a)).c_str());
    }
  }
  return o;
}

// ---- the bench ---------------------------------------------------------------
class bench {
 public:
  explicit bench(const options& o) : o_(o) {
    top_ = o.steps.back();
    // Enough relay addresses that the top step fills at most 80% of their
    // ports (each address has the whole range, as --relay-ip does).
    const std::size_t per_ip = std::size_t{relay_port_high} - relay_port_low + 1;
    relay_ips_ = std::max<std::size_t>(1, (top_ * 5 / 4 + per_ip - 1) / per_ip);

    auto s = std::make_shared<turn::shared_state>();
    std::vector<auth::static_user> users;
    users.push_back({user, std::string(password), std::nullopt});
    s->credentials = std::make_shared<auth::credential_store>(realm, users, std::vector<std::string>{});
    s->nonces = std::make_shared<auth::nonce_service>(std::vector<std::uint8_t>(32, 7), 600, true);
    s->peers = std::make_shared<auth::peer_policy>(std::vector<auth::cidr>{}, std::vector<auth::cidr>{});
    for (std::size_t i = 0; i < relay_ips_; ++i) {
      // 198.51.100.0/24 (TEST-NET-2): never bound, the fake port opens nothing.
      s->relays.push_back({stun::endpoint::v4(0xC6336400u + 1 + static_cast<std::uint32_t>(i), 0),
                           std::make_shared<relay::port_pool>(relay_port_low, relay_port_high)});
    }
    s->max_allocations = static_cast<std::uint32_t>(top_ + warmup_count);
    // The forwarding runs send up to --packets to one allocation on a clock
    // that barely moves: rates no run reaches, so the buckets are checked on
    // every packet (as in production) but never drop one.
    s->allocation_limits.packets_per_second = 1'000'000'000;
    s->allocation_limits.bytes_per_second = 1'000'000'000'000;
    shared_ = s;
    server_ = std::make_unique<turn::worker_core>(shared_, io_, counters_, 0);
    key_ = auth::derive_md5_key(user, realm, password);

    // The generator's own tables, allocated and touched before the baseline
    // so RSS growth is the core's alone.
    targets_.resize(top_);
    for (std::size_t k = 0; k < top_; ++k) {
      targets_[k].client = client_of(k);
      targets_[k].peer = peer_of(k);
    }
    order_.assign(o.packets, 0);
    channel_data_.resize(4 + payload_size);
    stun::write_channel_data_header(channel_data_, channel_number, payload_size);
    for (std::size_t i = 0; i < payload_size; ++i) channel_data_[4 + i] = static_cast<std::byte>(i);
    payload_.assign(channel_data_.begin() + 4, channel_data_.end());
  }

  int run() {
    warm_up();
    baseline_kib_ = rss_kib();
    baseline_heap_ = heap_bytes();
    std::fprintf(stderr,
                 "core-scale: baseline RSS %lld KiB, heap %lld B (server built, %zu relay address%s x "
                 "%u ports, warm-up of %zu allocations done)\n",
                 static_cast<long long>(baseline_kib_), static_cast<long long>(baseline_heap_), relay_ips_,
                 relay_ips_ == 1 ? "" : "es", relay_port_high - relay_port_low + 1u, warmup_count);

    std::size_t have = 0;
    for (const std::size_t n : o_.steps) {
      step_result r;
      r.n = n;
      // Phase 1: 401 + Allocate for the new clients (what the daemon's memory run does).
      const std::int64_t wall0 = mono_ns();
      std::int64_t alloc_ns = 0, bind_ns = 0;
      for (std::size_t k = have; k < n; ++k) alloc_ns += allocate(k, targets_[k].client, &targets_[k].relay);
      const std::int64_t read0 = mono_ns();
      r.rss_bare_kib = rss_kib();
      r.heap_bare = heap_bytes();
      const std::int64_t read_ns = mono_ns() - read0;
      // Phase 2: ChannelBind (installs the permission too, RFC 8656 §11.2).
      for (std::size_t k = have; k < n; ++k) bind_ns += bind_channel(targets_[k].client, targets_[k].peer);
      const std::int64_t core_ns = alloc_ns + bind_ns;
      const std::int64_t wall_ns = mono_ns() - wall0 - read_ns;
      server_->on_tick(now_);
      r.rss_kib = rss_kib();
      r.heap = heap_bytes();
      if (server_->allocation_count() != n)
        fail("%s", "allocation count is " + std::to_string(server_->allocation_count()) + ", expected " +
                       std::to_string(n));
      const double added = static_cast<double>(n - have);
      r.alloc_rate = added / (static_cast<double>(core_ns) / 1e9);
      r.alloc_rate_wall = added / (static_cast<double>(wall_ns) / 1e9);
      r.core_us_per_alloc = static_cast<double>(core_ns) / 1e3 / added;
      r.alloc_us = static_cast<double>(alloc_ns) / 1e3 / added;
      r.channel_bind_us = static_cast<double>(bind_ns) / 1e3 / added;
      have = n;

      forward(n, r);
      const double nn = static_cast<double>(n);
      std::fprintf(stderr,
                   "core-scale: n=%zu: %.0f allocations/s in the core (%.1f us each: 401+Allocate %.1f, "
                   "ChannelBind %.1f), %.0f/s with the client side; RSS %lld KiB (+%.0f B/allocation; Allocate "
                   "only: +%.0f B), heap +%.0f B/allocation (Allocate only: +%.0f B); ChannelData to peer %.1f "
                   "ns/pkt over %zu, to client %.1f ns/pkt over %zu (hot set of %zu: %.1f / %.1f ns; generator "
                   "loop alone %.1f ns), heap allocations while forwarding: %llu\n",
                   n, r.alloc_rate, r.core_us_per_alloc, r.alloc_us, r.channel_bind_us, r.alloc_rate_wall,
                   static_cast<long long>(r.rss_kib),
                   static_cast<double>(r.rss_kib - baseline_kib_) * 1024.0 / nn,
                   static_cast<double>(r.rss_bare_kib - baseline_kib_) * 1024.0 / nn,
                   static_cast<double>(r.heap - baseline_heap_) / nn,
                   static_cast<double>(r.heap_bare - baseline_heap_) / nn, r.to_peer_ns, r.to_peer_packets,
                   r.to_client_ns, r.to_client_packets, std::min(n, hot_set), r.to_peer_hot_ns,
                   r.to_client_hot_ns, r.generator_ns, static_cast<unsigned long long>(r.news_forwarding));
      steps_.push_back(r);
    }

    // Free everything: Refresh(0) from every client.
    const std::int64_t free_core_ns = free_range(0, top_);
    const double free_rate = static_cast<double>(top_) / (static_cast<double>(free_core_ns) / 1e9);
    const std::int64_t after_free_kib = rss_kib();
    const std::int64_t after_free_heap = heap_bytes();
    check_empty("after freeing");
    // Let the clock pass every deadline the freed allocations had armed, so
    // the timer wheel drops their entries (with a fixed clock they sit in
    // two buckets until then).
    now_.mono_ms += 601'000;
    now_.unix_s += 601;
    server_->on_tick(now_);
    const std::int64_t after_tick_kib = rss_kib();
    const std::int64_t after_tick_heap = heap_bytes();
    std::fprintf(stderr,
                 "core-scale: freed %zu allocations (Refresh 0) at %.0f/s in the core: RSS %lld KiB "
                 "(baseline %lld KiB, %+lld KiB), heap %+lld B; after the clock passed their deadlines: "
                 "RSS %lld KiB (%+lld KiB), heap %+lld B\n",
                 top_, free_rate, static_cast<long long>(after_free_kib), static_cast<long long>(baseline_kib_),
                 static_cast<long long>(after_free_kib - baseline_kib_),
                 static_cast<long long>(after_free_heap - baseline_heap_), static_cast<long long>(after_tick_kib),
                 static_cast<long long>(after_tick_kib - baseline_kib_),
                 static_cast<long long>(after_tick_heap - baseline_heap_));

    // Further rounds: the top step again from fresh 5-tuples, then free it
    // again. Memory that keeps growing from round to round is retained per
    // round (or leaked); memory that stays flat is reused. Each round after
    // the second starts once the clock has passed the previous round's
    // deadlines, as in a daemon that keeps running.
    struct round_result {
      std::size_t round;
      double rate;
      std::int64_t peak_kib, peak_heap, after_kib, after_heap;
    };
    std::vector<round_result> rounds;
    for (std::size_t round = 2; round <= o_.rounds; ++round) {
      if (round > 2) {
        now_.mono_ms += 601'000;
        now_.unix_s += 601;
        server_->on_tick(now_);
      }
      const std::size_t first = top_ * (round - 1);  // fresh 5-tuples
      std::int64_t core_ns = 0;
      for (std::size_t k = 0; k < top_; ++k) {
        const client_ref c = client_of(first + k);
        core_ns += allocate(first + k, c, nullptr);
        core_ns += bind_channel(c, peer_of(k));
      }
      server_->on_tick(now_);
      if (server_->allocation_count() != top_)
        fail("%s", "round " + std::to_string(round) + " did not reach the top step");
      round_result rr{round, static_cast<double>(top_) / (static_cast<double>(core_ns) / 1e9), rss_kib(),
                      heap_bytes(), 0, 0};
      free_range(first, top_);
      rr.after_kib = rss_kib();
      rr.after_heap = heap_bytes();
      check_empty(("after round " + std::to_string(round)).c_str());
      std::fprintf(stderr,
                   "core-scale: round %zu: %zu allocations at %.0f/s in the core, RSS %lld KiB (heap %+lld B); "
                   "after freeing: RSS %lld KiB (baseline %+lld KiB, heap %+lld B)\n",
                   round, top_, rr.rate, static_cast<long long>(rr.peak_kib),
                   static_cast<long long>(rr.peak_heap - baseline_heap_), static_cast<long long>(rr.after_kib),
                   static_cast<long long>(rr.after_kib - baseline_kib_),
                   static_cast<long long>(rr.after_heap - baseline_heap_));
      rounds.push_back(rr);
    }

    // One JSON line.
    std::string j = "{\"tool\":\"core-scale\",\"relay_addresses\":" + std::to_string(relay_ips_) +
                    ",\"payload_bytes\":" + std::to_string(payload_size) +
                    ",\"alloc_cycle\":\"401+Allocate+ChannelBind\",\"steps\":[";
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      const auto& r = steps_[i];
      const double nn = static_cast<double>(r.n);
      char buf[1536];
      std::snprintf(buf, sizeof buf,
                    "%s{\"n\":%zu,\"rss_kib\":%lld,\"bytes_per_allocation\":%.1f,\"rss_kib_allocate_only\":%lld,"
                    "\"bytes_per_allocation_allocate_only\":%.1f,\"heap_bytes_per_allocation\":%.1f,"
                    "\"heap_bytes_per_allocation_allocate_only\":%.1f,\"alloc_rate\":%.0f,\"alloc_rate_wall\":%.0f,"
                    "\"alloc_us\":%.2f,\"channel_bind_us\":%.2f,"
                    "\"to_peer_ns\":%.2f,\"to_peer_packets\":%zu,\"to_client_ns\":%.2f,\"to_client_packets\":%zu,"
                    "\"to_peer_hot_ns\":%.2f,\"to_client_hot_ns\":%.2f,\"generator_ns\":%.2f,"
                    "\"allocs_per_forward\":%.6f,\"heap_allocations_forwarding\":%llu}",
                    i ? "," : "", r.n, static_cast<long long>(r.rss_kib),
                    static_cast<double>(r.rss_kib - baseline_kib_) * 1024.0 / nn,
                    static_cast<long long>(r.rss_bare_kib),
                    static_cast<double>(r.rss_bare_kib - baseline_kib_) * 1024.0 / nn,
                    static_cast<double>(r.heap - baseline_heap_) / nn,
                    static_cast<double>(r.heap_bare - baseline_heap_) / nn, r.alloc_rate, r.alloc_rate_wall,
                    r.alloc_us, r.channel_bind_us, r.to_peer_ns, r.to_peer_packets, r.to_client_ns,
                    r.to_client_packets, r.to_peer_hot_ns, r.to_client_hot_ns, r.generator_ns,
                    static_cast<double>(r.news_forwarding) /
                        static_cast<double>(std::max<std::size_t>(1, r.to_peer_packets + r.to_client_packets)),
                    static_cast<unsigned long long>(r.news_forwarding));
      j += buf;
    }
    char tail[512];
    std::snprintf(tail, sizeof tail,
                  "],\"baseline_kib\":%lld,\"free_rate\":%.0f,\"after_free_kib\":%lld,\"retained_kib\":%lld,"
                  "\"retained_heap_bytes\":%lld,\"after_tick_kib\":%lld,\"after_tick_heap_bytes\":%lld",
                  static_cast<long long>(baseline_kib_), free_rate, static_cast<long long>(after_free_kib),
                  static_cast<long long>(after_free_kib - baseline_kib_),
                  static_cast<long long>(after_free_heap - baseline_heap_), static_cast<long long>(after_tick_kib),
                  static_cast<long long>(after_tick_heap - baseline_heap_));
    j += tail;
    if (!rounds.empty()) {
      const auto& r2 = rounds.front();
      std::snprintf(tail, sizeof tail,
                    ",\"round2_alloc_rate\":%.0f,\"round2_peak_kib\":%lld,\"round2_after_kib\":%lld,"
                    "\"round2_retained_heap_bytes\":%lld",
                    r2.rate, static_cast<long long>(r2.peak_kib), static_cast<long long>(r2.after_kib),
                    static_cast<long long>(r2.after_heap - baseline_heap_));
      j += tail;
    }
    j += ",\"rounds\":[";
    for (std::size_t i = 0; i < rounds.size(); ++i) {
      const auto& rr = rounds[i];
      std::snprintf(tail, sizeof tail,
                    "%s{\"round\":%zu,\"alloc_rate\":%.0f,\"peak_kib\":%lld,\"after_kib\":%lld,"
                    "\"retained_heap_bytes\":%lld}",
                    i ? "," : "", rr.round, rr.rate, static_cast<long long>(rr.peak_kib),
                    static_cast<long long>(rr.after_kib), static_cast<long long>(rr.after_heap - baseline_heap_));
      j += tail;
    }
    j += "]}";
    std::printf("%s\n", j.c_str());
    std::fflush(stdout);
    return 0;
  }

 private:
  static constexpr std::size_t warmup_count = 64;
  static constexpr std::size_t hot_set = 1000;  // allocations of the cache-resident control

  struct target {
    client_ref client;
    stun::endpoint peer;
    relay_id relay = relay::no_relay;
  };
  struct step_result {
    std::size_t n = 0;
    std::int64_t rss_kib = 0, rss_bare_kib = 0;
    std::int64_t heap = 0, heap_bare = 0;
    double alloc_rate = 0, alloc_rate_wall = 0, core_us_per_alloc = 0;
    double to_peer_ns = 0, to_client_ns = 0;
    double to_peer_hot_ns = 0, to_client_hot_ns = 0, generator_ns = 0;
    double alloc_us = 0, channel_bind_us = 0;  // core time per 401+Allocate, per ChannelBind
    std::size_t to_peer_packets = 0, to_client_packets = 0;
    std::uint64_t news_forwarding = 0;
  };

  // Client k: 127.1.0.0 + k/16, ports 40000-40015 (16 clients per address,
  // 65,536 addresses: a million distinct 5-tuples).
  static client_ref client_of(std::size_t k) {
    client_ref c;
    c.proto = relay::transport::udp;
    c.listener = 0;
    c.remote = stun::endpoint::v4(0x7F010000u + static_cast<std::uint32_t>(k >> 4),
                                  static_cast<std::uint16_t>(40000 + (k & 15)));
    c.local = stun::endpoint::v4(0x7F000001u, 3478);
    return c;
  }
  // Peer of allocation k: a public address (the default peer policy denies
  // loopback and private ranges), ports spread.
  static stun::endpoint peer_of(std::size_t k) {
    return stun::endpoint::v4(0x5DB8D822u /* 93.184.216.34 */, static_cast<std::uint16_t>(10000 + k % 50000));
  }

  stun::transaction_id next_tid() {
    stun::transaction_id t;
    const std::uint64_t a = ++tid_counter_ * 0x9E3779B97F4A7C15ULL;
    const std::uint32_t b = static_cast<std::uint32_t>(tid_counter_);
    std::memcpy(t.bytes.data(), &a, 8);
    std::memcpy(t.bytes.data() + 8, &b, 4);
    return t;
  }

  // Builds a request into req_; with a nonce, signs it (long-term credentials, MD5 key).
  template <typename Add>
  stun::bytes_view build(stun::method m, Add&& add, std::string_view nonce) {
    stun::message_builder b(req_, static_cast<std::uint16_t>(m), message_class::request, next_tid());
    add(b);
    if (!nonce.empty()) {
      b.add_string(attr::username, user);
      b.add_string(attr::realm, realm);
      b.add_string(attr::nonce, nonce);
      b.add_message_integrity(std::as_bytes(std::span(key_)));
    }
    b.add_fingerprint();
    auto out = b.finish();
    if (!out) fail("cannot build a request: %s", out.error.message());
    return *out;
  }

  // Sends a control request and returns the core time it took; the answer is
  // parsed into resp_.
  std::int64_t exchange(const client_ref& from, stun::bytes_view msg, const char* what) {
    const std::uint64_t sends = io_.client_sends;
    io_.capture = true;
    const std::int64_t t0 = mono_ns();
    server_->on_client_packet(from, msg, now_);
    const std::int64_t dt = mono_ns() - t0;
    io_.capture = false;
    if (io_.client_sends != sends + 1) fail("%s: expected exactly one response", what);
    auto parsed = stun::parse_message(stun::bytes_view(io_.last.data(), io_.last_len));
    if (!parsed) fail("%s: unparsable response", what);
    resp_ = *parsed;
    return dt;
  }

  int error_of(const stun::message_view& m) const {
    if (m.cls() != message_class::error_response) return 0;
    const auto e = m.find(attr::error_code);
    if (!e) return -1;
    const auto v = stun::decode_error_code(*e);
    return v ? v->code : -1;
  }

  void expect_success(const char* what, const client_ref& c) {
    if (resp_.cls() != message_class::success_response)
      fail("%s", std::string(what) + " from " + c.remote.to_string() + " failed with error " +
                     std::to_string(error_of(resp_)));
  }

  // 401 challenge, then the signed Allocate. Returns core ns.
  std::int64_t allocate(std::size_t k, const client_ref& c, relay_id* relay_out) {
    std::int64_t ns = exchange(c, build(stun::method::allocate, requested_udp, {}), "Allocate (unsigned)");
    if (error_of(resp_) != 401) fail("%s", "the unsigned Allocate from " + c.remote.to_string() + " got " +
                                              std::to_string(error_of(resp_)) + ", expected 401");
    const auto nonce_attr = resp_.find(attr::nonce);
    if (!nonce_attr) fail("%s", "401 without NONCE");
    const auto nonce = stun::decode_string(*nonce_attr, 763);
    if (!nonce || nonce->size() > nonce_.size()) fail("%s", "bad NONCE in 401");
    std::memcpy(nonce_.data(), nonce->data(), nonce->size());
    const std::string_view n(nonce_.data(), nonce->size());
    const std::uint64_t opened = io_.opened;
    ns += exchange(c, build(stun::method::allocate, requested_udp, n), "Allocate");
    expect_success("Allocate", c);
    if (io_.opened != opened + 1) fail("%s", "Allocate " + std::to_string(k) + " opened no relay");
    if (!resp_.has(attr::xor_relayed_address)) fail("%s", "Allocate success without XOR-RELAYED-ADDRESS");
    if (relay_out != nullptr) *relay_out = io_.last_opened;
    return ns;
  }

  static void requested_udp(stun::message_builder& b) { b.add_requested_transport(17); }

  // The nonce the client learned from its 401: the service is deterministic
  // for (client IP, second), and the clock does not move while allocating.
  std::string_view nonce_for(const client_ref& c) {
    return shared_->nonces->mint(c.remote, now_.unix_s, minted_);
  }

  std::int64_t bind_channel(const client_ref& c, const stun::endpoint& peer) {
    const std::int64_t ns = exchange(c,
                                     build(
                                         stun::method::channel_bind,
                                         [&](stun::message_builder& b) {
                                           b.add_channel_number(channel_number);
                                           b.add_address(attr::xor_peer_address, peer, true);
                                         },
                                         nonce_for(c)),
                                     "ChannelBind");
    expect_success("ChannelBind", c);
    return ns;
  }

  std::int64_t refresh_zero(const client_ref& c) {
    const std::uint64_t closed = io_.closed;
    const std::int64_t ns =
        exchange(c,
                 build(
                     stun::method::refresh, [](stun::message_builder& b) { b.add_u32(attr::lifetime, 0); },
                     nonce_for(c)),
                 "Refresh(0)");
    expect_success("Refresh(0)", c);
    if (io_.closed != closed + 1) fail("%s", "Refresh(0) from " + c.remote.to_string() + " closed no relay");
    return ns;
  }

  // Refresh(0) for clients [first, first + count); returns core ns.
  std::int64_t free_range(std::size_t first, std::size_t count) {
    std::int64_t ns = 0;
    for (std::size_t k = first; k < first + count; ++k) ns += refresh_zero(client_of(k));
    server_->on_tick(now_);
    return ns;
  }

  void check_empty(const char* when) {
    if (server_->allocation_count() != 0) fail("%s: allocations left", when);
    if (io_.open_now != 0) fail("%s: relay sockets left open", when);
    for (const auto& r : shared_->relays)
      if (r.ports->in_use() != 0) fail("%s: relay ports still claimed", when);
  }

  // A few allocations through every path, so lazily built state (OpenSSL,
  // spdlog, the response cache, hash buckets of a small table) is in the
  // baseline. Their 5-tuples are outside the measured range.
  void warm_up() {
    const std::size_t first = 4'000'000;  // 127.4.208.144 and up
    for (std::size_t k = first; k < first + warmup_count; ++k) {
      const client_ref c = client_of(k);
      relay_id rid = relay::no_relay;
      allocate(k, c, &rid);
      bind_channel(c, peer_of(k));
      server_->on_client_packet(c, channel_data_, now_);
      server_->on_peer_packet(rid, peer_of(k), payload_, now_);
    }
    free_range(first, warmup_count);
    check_empty("after the warm-up");
  }

  // order_[i] = the allocation that sends packet i: uniform over [0, n), or,
  // with `hot`, uniform over a random subset of `hot` allocations (the same
  // full-size tables, but a working set that stays in cache).
  void shuffle_order(std::size_t n, std::uint64_t seed, std::size_t hot = 0) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(n - 1));
    if (hot == 0 || hot >= n) {
      for (auto& x : order_) x = pick(rng);
      return;
    }
    std::array<std::uint32_t, hot_set> subset{};
    for (std::size_t i = 0; i < hot; ++i) subset[i] = pick(rng);
    std::uniform_int_distribution<std::size_t> pick_hot(0, hot - 1);
    for (auto& x : order_) x = subset[pick_hot(rng)];
  }

  // Runs per_packet(target) for every entry of order_, or until --seconds
  // passed (checked every 4096 packets). Returns the packets done and the
  // nanoseconds they took; adds the heap allocations seen to `news`.
  template <typename F>
  std::pair<std::size_t, std::int64_t> timed_loop(F&& per_packet, std::uint64_t& news) {
    const std::uint64_t news0 = g_news.load(std::memory_order_relaxed);
    const std::int64_t limit_ns = static_cast<std::int64_t>(o_.seconds * 1e9);
    const std::size_t m = order_.size();
    const std::int64_t t0 = mono_ns();
    std::size_t done = 0;
    std::int64_t elapsed = 0;
    while (done < m) {
      const std::size_t end = std::min(m, done + 4096);
      for (; done < end; ++done) per_packet(targets_[order_[done]]);
      elapsed = mono_ns() - t0;
      if (elapsed >= limit_ns) break;
    }
    news += g_news.load(std::memory_order_relaxed) - news0;
    return {done, elapsed};
  }

  // ChannelData client->peer; checks every message reached the peer side.
  double to_peer(std::size_t& packets, std::uint64_t& news) {
    const std::uint64_t sends = io_.peer_sends, bytes = io_.peer_bytes;
    const stun::bytes_view cd(channel_data_);
    const auto [done, ns] =
        timed_loop([&](const target& t) { server_->on_client_packet(t.client, cd, now_); }, news);
    if (io_.peer_sends - sends != done || io_.peer_bytes - bytes != done * payload_size)
      fail("%s", "client->peer: " + std::to_string(io_.peer_sends - sends) + " datagrams reached the peer side for " +
                     std::to_string(done) + " ChannelData messages");
    packets = done;
    return static_cast<double>(ns) / static_cast<double>(done);
  }

  // Peer datagrams on the relay socket -> ChannelData to the client. Checks
  // every one went out as ChannelData (4-byte header + payload, no padding
  // over UDP), not as a Data indication: the channel must have matched.
  double to_client(std::size_t& packets, std::uint64_t& news) {
    const std::uint64_t sends = io_.client_sends, bytes = io_.client_bytes;
    const stun::bytes_view payload(payload_);
    const auto [done, ns] = timed_loop(
        [&](const target& t) { server_->on_peer_packet(t.relay, t.peer, payload, now_); }, news);
    if (io_.client_sends - sends != done || io_.client_bytes - bytes != done * (4 + payload_size))
      fail("%s", "peer->client: " + std::to_string(io_.client_sends - sends) + " ChannelData messages (" +
                     std::to_string(io_.client_bytes - bytes) + " B) reached clients for " + std::to_string(done) +
                     " peer datagrams");
    packets = done;
    return static_cast<double>(ns) / static_cast<double>(done);
  }

  void forward(std::size_t n, step_result& r) {
    // Uniform over all n allocations: the measurement.
    shuffle_order(n, 0xC0FFEEULL + n);
    r.to_peer_ns = to_peer(r.to_peer_packets, r.news_forwarding);
    shuffle_order(n, 0xBEEFULL + n);
    r.to_client_ns = to_client(r.to_client_packets, r.news_forwarding);
    // Controls. The generator's own share: the same loop reading the
    // target (client 5-tuple, peer, relay id) without calling the core.
    std::uint64_t sink = 0, unused_news = 0;
    const auto [done, ns] = timed_loop(
        [&](const target& t) {
          sink += t.client.remote.port + t.peer.port + t.relay;
          asm volatile("" : : "r"(sink) : "memory");
        },
        unused_news);
    r.generator_ns = static_cast<double>(ns) / static_cast<double>(done);
    // The core's tables at full size, but packets from only hot_set of the
    // allocations: if this matches the small steps, the lookups are O(1)
    // and what grows with n is cache and TLB misses.
    std::size_t hot_packets = 0;
    shuffle_order(n, 0xF00DULL + n, hot_set);
    r.to_peer_hot_ns = to_peer(hot_packets, r.news_forwarding);
    r.to_client_hot_ns = to_client(hot_packets, r.news_forwarding);
  }

  options o_;
  std::size_t top_ = 0;
  std::size_t relay_ips_ = 1;
  counting_io io_;
  relay::worker_counters counters_;
  std::shared_ptr<turn::shared_state> shared_;
  std::unique_ptr<turn::worker_core> server_;
  relay::now_t now_{1'000'000, 1'800'000'000};
  auth::md5_key key_{};
  std::uint64_t tid_counter_ = 0;
  std::array<std::byte, 1500> req_{};
  std::array<char, 763> nonce_{};
  std::array<char, auth::nonce_service::nonce_size> minted_{};
  stun::message_view resp_;
  std::vector<target> targets_;
  std::vector<std::uint32_t> order_;
  std::vector<std::byte> channel_data_;
  std::vector<std::byte> payload_;
  std::int64_t baseline_kib_ = 0, baseline_heap_ = 0;
  std::vector<step_result> steps_;
};

}  // namespace
}  // namespace anyturn::bench

int main(int argc, char** argv) {
  const auto o = anyturn::bench::parse_options(argc, argv);
  // The core logs every allocation start and end at info level; at 100,000
  // that is noise on stdout and time in the measurement.
  // Warnings, if any, go to stderr: stdout carries only the JSON line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("core-scale"));
  spdlog::set_level(spdlog::level::warn);
  // Sanity: the counting operator new sees allocations.
  const std::uint64_t before = g_news.load();
  ::operator delete(::operator new(8));
  if (g_news.load() != before + 1) {
    std::fprintf(stderr, "anyturn-core-scale: the allocation counter does not work\n");
    return 1;
  }
  anyturn::bench::bench b(o);
  return b.run();
}
