// The side module against the real daemon: live /metrics (checked by
// promtool while traffic flows), tenant quotas (486), the credentials API
// with a tenant key, usage records with exact byte counts (also at clean
// shutdown), SIGHUP reopening the usage log, and `anyturn credentials`.
//
// Every test starts its own daemon on free loopback ports (the HTTP server
// too: daemon.cpp passes --http-listen) with its own relay port slot.
#include "daemon.hpp"
#include "turn_client.hpp"

#include <anyturn/http/json.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef ANYTURN_BINARY
#error "ANYTURN_BINARY must name the anyturn executable"
#endif

namespace anyturn::itest {
namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

const std::string realm = "anyturn.test";


std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Polls `pred` every 20 ms until it holds or `limit` passes.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds{3}) {
  const auto deadline = clock::now() + limit;
  while (clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return pred();
}

// A string member of a flat JSON object, by a plain search (the API's
// responses nest arrays, which json::parse_flat_object refuses on purpose).
std::optional<std::string> json_string_member(const std::string& body, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const auto at = body.find(needle);
  if (at == std::string::npos) return std::nullopt;
  const auto begin = at + needle.size();
  const auto end = body.find('"', begin);
  if (end == std::string::npos) return std::nullopt;
  return body.substr(begin, end - begin);
}

struct command_result {
  int exit_code = -1;
  std::string out;
};

// Runs the anyturn binary with `args` (no shell), stdout captured, stderr
// discarded, bounded by a 10 s alarm in the child.
command_result run_anyturn(const std::vector<std::string>& args) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::FILE* null = std::freopen("/dev/null", "w", stderr);
    (void)null;
    ::alarm(10);
    std::vector<char*> argv;
    std::string bin = ANYTURN_BINARY;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  command_result r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

class Side : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/anyturn-side-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }

  void TearDown() override {
    if (daemon_) {
      const int rc = daemon_->stop();
      EXPECT_EQ(rc, 0) << "anyturn did not exit cleanly on SIGTERM\n" << daemon_->log();
      if (HasFailure() && rc == 0) std::cerr << daemon_->log() << '\n';
    }
    std::error_code ignored;
    if (std::getenv("ANYTURN_KEEP_LOGS") == nullptr) fs::remove_all(dir_, ignored);
  }

  // Starts the daemon with a relay range from `slot`, `yaml` as its config
  // file (if not empty) and `extra` flags.
  [[nodiscard]] ::testing::AssertionResult start(unsigned slot, const std::string& yaml,
                                                 std::vector<std::string> extra = {}) {
    ports_ = relay_ports_for_slot(slot);
    std::vector<std::string> args = {"--relay-ip", "127.0.0.1", "--relay-ports", ports_.flag(),
                                     "--realm", realm, "--allow-peer", "127.0.0.1/32",
                                     "--threads", "2", "--log-level", "debug"};
    if (!yaml.empty()) {
      const fs::path cfg = dir_ / "anyturn.yaml";
      std::ofstream(cfg) << yaml;
      args.push_back("--config");
      args.push_back(cfg.string());
    }
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<daemon>(daemon::options{false, args});
    if (!daemon_->start()) {
      return ::testing::AssertionFailure() << "daemon did not become ready\n" << daemon_->log();
    }
    return ::testing::AssertionSuccess();
  }

  [[nodiscard]] std::string scrape() const {
    auto r = http_request(daemon_->http_port(), "GET", "/metrics");
    EXPECT_TRUE(r.has_value()) << "no answer from /metrics";
    if (!r) return {};
    EXPECT_EQ(r->status, 200);
    return r->body;
  }

  std::unique_ptr<turn_client> client(const std::string& user, const std::string& password) {
    auto c = std::make_unique<turn_client>(daemon_->address());
    c->set_credentials({user, password});
    return c;
  }

  // Allocates (expecting success) and returns the relayed address.
  stun::endpoint allocate_ok(turn_client& c) {
    auto r = c.allocate();
    EXPECT_TRUE(r && r->is_success()) << describe(r);
    if (!r || !r->is_success()) return {};
    auto relayed = r->address(stun::attr::xor_relayed_address);
    EXPECT_TRUE(relayed.has_value());
    return relayed.value_or(stun::endpoint{});
  }

  // `to_peer` Send indications of `size` bytes each from the client to the
  // peer, then `to_client` datagrams of `back_size` bytes back; every one
  // must arrive. Returns false (with a test failure) if one does not.
  bool exchange(turn_client& c, udp_socket& peer, const stun::endpoint& relayed, int to_peer,
                std::size_t size, int to_client, std::size_t back_size) {
    auto perm = c.create_permission({peer.local()});
    EXPECT_TRUE(perm && perm->is_success()) << describe(perm);
    if (!perm || !perm->is_success()) return false;
    for (int i = 0; i < to_peer; ++i) {
      c.send_indication(peer.local(), bytes(size, std::byte{static_cast<unsigned char>('a' + i % 26)}));
      auto got = peer.recv(response_timeout);
      EXPECT_TRUE(got.has_value()) << "packet " << i << " did not reach the peer";
      if (!got) return false;
      EXPECT_EQ(got->data.size(), size);
    }
    for (int i = 0; i < to_client; ++i) {
      peer.send_to(relayed, bytes(back_size, std::byte{'z'}));
      auto back = c.recv_data();
      EXPECT_TRUE(back.has_value()) << "packet " << i << " did not come back";
      if (!back) return false;
      EXPECT_EQ(back->payload.size(), back_size);
    }
    return true;
  }

  fs::path dir_;
  port_range ports_;
  std::unique_ptr<daemon> daemon_;
};

// ---------------------------------------------------------------- /metrics

TEST_F(Side, MetricsAreLiveAndPassPromtool) {
  ASSERT_TRUE(start(30, "", {"--user", "alice:wonderland", "--auth-secret", "side-secret-0123456789",
                             "--api-key", "metrics-test-api-key-0001"}));
  auto health = http_request(daemon_->http_port(), "GET", "/healthz");
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->status, 200);
  auto ready = http_request(daemon_->http_port(), "GET", "/readyz");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200) << ready->body;

  udp_socket peer(v4_loopback());
  auto c = client("alice", "wonderland");
  const auto relayed = allocate_ok(*c);
  ASSERT_NE(relayed.port, 0);
  ASSERT_TRUE(exchange(*c, peer, relayed, 5, 100, 3, 200));

  // Live: the allocation is still open and the bytes already show.
  const std::string text = scrape();
  auto r = http_request(daemon_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->headers.find("content-type: text/plain; version=0.0.4"), std::string::npos) << r->headers;
  EXPECT_EQ(metric_value(text, "anyturn_allocations_active{transport=\"udp\"}"), 1.0) << text;
  EXPECT_EQ(metric_value(text, "anyturn_allocations_active{transport=\"tcp\"}"), 0.0);
  EXPECT_EQ(metric_value(text, "anyturn_tenant_allocations_active{tenant=\"default\",transport=\"udp\"}"), 1.0);
  EXPECT_EQ(metric_value(text, "anyturn_relayed_bytes_total{direction=\"to_peer\"}"), 500.0);
  EXPECT_EQ(metric_value(text, "anyturn_relayed_bytes_total{direction=\"to_client\"}"), 600.0);
  EXPECT_EQ(metric_value(text, "anyturn_relayed_packets_total{direction=\"to_peer\"}"), 5.0);
  EXPECT_EQ(metric_value(text, "anyturn_tenant_relayed_bytes_total{tenant=\"default\",direction=\"to_client\"}"), 600.0);
  EXPECT_EQ(metric_value(text, "anyturn_allocations_total{result=\"created\"}"), 1.0);
  EXPECT_EQ(metric_value(text, "anyturn_workers"), 2.0);
  EXPECT_EQ(metric_value(text, "anyturn_relay_sockets_open"), 1.0);
  EXPECT_EQ(metric_value(text, "anyturn_connections_open"), 0.0);
  EXPECT_GT(metric_value(text, "anyturn_worker_wakeups_total{cause=\"socket\"}").value_or(0), 0.0);
  EXPECT_EQ(metric_value(text, "anyturn_worker_wakeups_total{cause=\"coalesce_window\"}"), 0.0);  // off by default
  EXPECT_TRUE(metric_value(text, "anyturn_tls_handshakes_total{result=\"ok\"}").has_value());
  EXPECT_TRUE(metric_value(text, "anyturn_dropped_packets_total{reason=\"write_queue_full\"}").has_value());
  EXPECT_GT(metric_value(text, "process_open_fds").value_or(0), 0.0);
  EXPECT_GT(metric_value(text, "process_start_time_seconds").value_or(0), 1.6e9);
  EXPECT_NE(text.find("anyturn_build_info{"), std::string::npos);
  EXPECT_EQ(metric_value(text, "anyturn_http_requests_total{route=\"/healthz\",code=\"200\"}"), 1.0);
  EXPECT_GE(metric_sum(text, "anyturn_auth_challenges_total").value_or(0), 1.0);

  // promtool (Debian package prometheus) must accept the live output.
  const fs::path in = dir_ / "metrics.txt";
  const fs::path out = dir_ / "promtool.txt";
  std::ofstream(in, std::ios::binary) << text;
  const std::string cmd = "promtool check metrics < '" + in.string() + "' > '" + out.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(status != -1 && WIFEXITED(status)) << cmd;
  ASSERT_NE(WEXITSTATUS(status), 127) << "promtool not found (install Debian's prometheus)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(out) << "\n---- exposition\n" << text;
  EXPECT_EQ(read_file(out), "") << "promtool lint findings";

  // Ending the allocation moves the gauges back and fills the histogram.
  auto del = c->refresh(0);
  ASSERT_TRUE(del && del->is_success()) << describe(del);
  const std::string after = scrape();
  EXPECT_EQ(metric_value(after, "anyturn_allocations_active{transport=\"udp\"}"), 0.0);
  EXPECT_EQ(metric_value(after, "anyturn_allocation_duration_seconds_count"), 1.0);
  EXPECT_EQ(metric_value(after, "anyturn_allocations_total{result=\"deleted\"}"), 1.0);
}

// --------------------------------------------------------- wake-up coalescing

// limits.udp_coalesce_us (--udp-coalesce-us): while datagrams come faster
// than one per window, the worker sleeps a window and relays what arrived
// meanwhile as one batch. Every datagram must still arrive, in order, in
// both directions, and the wake-ups must be counted, and fewer than the
// datagrams relayed (each would wake the worker by itself without it).
TEST_F(Side, UdpCoalescingRelaysEverythingInOrderWithFewerWakeups) {
  ASSERT_TRUE(start(36, "", {"--user", "alice:wonderland", "--udp-coalesce-us", "1000"}));
  udp_socket peer(v4_loopback());
  auto c = client("alice", "wonderland");
  const auto relayed = allocate_ok(*c);
  ASSERT_NE(relayed.port, 0);
  constexpr std::uint16_t channel = 0x4000;
  auto bound = c->channel_bind(channel, peer.local());
  ASSERT_TRUE(bound && bound->is_success()) << describe(bound);

  auto payload = [](int i) {
    std::string text = "seq " + std::to_string(100000 + i);
    text.resize(100, '.');
    return to_bytes(text);
  };
  // Bursts small enough for the default socket receive buffers; inside a
  // burst the datagrams are 100 us apart, ten per 1 ms window.
  constexpr int bursts = 16;
  constexpr int per_burst = 25;
  constexpr int total = bursts * per_burst;
  for (int b = 0; b < bursts; ++b) {
    for (int i = b * per_burst; i < (b + 1) * per_burst; ++i) {
      c->send_channel_data(channel, payload(i));
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    for (int i = b * per_burst; i < (b + 1) * per_burst; ++i) {
      auto got = peer.recv(response_timeout);
      ASSERT_TRUE(got.has_value()) << "datagram " << i << " did not reach the peer";
      ASSERT_EQ(got->data, payload(i)) << "datagram " << i << " to the peer";
    }
  }
  for (int b = 0; b < bursts; ++b) {
    for (int i = b * per_burst; i < (b + 1) * per_burst; ++i) {
      peer.send_to(relayed, payload(i));
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    for (int i = b * per_burst; i < (b + 1) * per_burst; ++i) {
      auto back = c->recv_data();
      ASSERT_TRUE(back.has_value()) << "datagram " << i << " did not come back";
      EXPECT_EQ(back->channel, channel);
      ASSERT_EQ(back->payload, payload(i)) << "datagram " << i << " to the client";
    }
  }

  const std::string text = scrape();
  EXPECT_EQ(metric_value(text, "anyturn_relayed_packets_total{direction=\"to_peer\"}"), double{total});
  EXPECT_EQ(metric_value(text, "anyturn_relayed_packets_total{direction=\"to_client\"}"), double{total});
  const double windows = metric_value(text, "anyturn_worker_wakeups_total{cause=\"coalesce_window\"}").value_or(-1);
  const double socket = metric_value(text, "anyturn_worker_wakeups_total{cause=\"socket\"}").value_or(-1);
  EXPECT_GT(windows, 0.0) << text;
  EXPECT_GT(socket, 0.0) << text;
  EXPECT_LT(windows + socket, 2.0 * total) << "socket " << socket << ", windows " << windows;
}

// ------------------------------------------------------------------ quotas

TEST_F(Side, TenantQuotasAnswer486AndAreCounted) {
  const std::string yaml = R"(
auth:
  users: [{name: owner, password: owner-pass}]
tenants:
  - id: acme
    users:
      - {name: acme-a, password: pa}
      - {name: acme-c, password: pc}
    secrets: ["acme-tenant-secret-0123"]
    quotas: {max_allocations: 2}
  - id: solo
    users: [{name: solo-u, password: pu}]
    quotas: {max_allocations_per_user: 1}
  - id: slow
    users: [{name: slow-u, password: ps}]
    quotas: {bandwidth: 1000}
)";
  ASSERT_TRUE(start(31, yaml));

  // acme: a static user and a REST username "<expiry>:acme:bob" (resolved to
  // acme from the username) fill the tenant's two allocations.
  auto a = client("acme-a", "pa");
  allocate_ok(*a);
  const std::string rest_user = std::to_string(unix_now() + 600) + ":acme:bob";
  auto b = client(rest_user, rest_password("acme-tenant-secret-0123", rest_user));
  allocate_ok(*b);
  auto c = client("acme-c", "pc");
  auto refused = c->allocate();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->error_code(), 486) << refused->describe();
  // Another tenant is not affected by acme's quota.
  auto owner = client("owner", "owner-pass");
  allocate_ok(*owner);
  // Once acme frees one, acme-c gets it.
  auto freed = a->refresh(0);
  ASSERT_TRUE(freed && freed->is_success()) << describe(freed);
  allocate_ok(*c);

  // solo: one allocation per user, whatever the 5-tuple.
  auto s1 = client("solo-u", "pu");
  allocate_ok(*s1);
  auto s2 = client("solo-u", "pu");
  auto refused2 = s2->allocate();
  ASSERT_TRUE(refused2.has_value());
  EXPECT_EQ(refused2->error_code(), 486) << refused2->describe();

  // slow: 1000 bytes/s per allocation. A burst of 20 x 200 bytes exceeds it;
  // the excess is dropped and counted, the rest arrives.
  udp_socket peer(v4_loopback());
  auto slow = client("slow-u", "ps");
  allocate_ok(*slow);
  auto perm = slow->create_permission({peer.local()});
  ASSERT_TRUE(perm && perm->is_success()) << describe(perm);
  constexpr int burst = 20;
  for (int i = 0; i < burst; ++i) slow->send_indication(peer.local(), bytes(200, std::byte{'b'}));
  int arrived = 0;
  while (peer.recv(std::chrono::milliseconds{300})) ++arrived;
  EXPECT_GE(arrived, 1);
  // One second of tokens (1000 B = 5 packets) plus what refills meanwhile
  // (200 B per 200 ms: a generous bound for a loaded machine).
  EXPECT_LE(arrived, 10);

  const std::string text = scrape();
  EXPECT_EQ(metric_value(text, "anyturn_dropped_packets_total{reason=\"bandwidth\"}"), double(burst - arrived))
      << text;
  EXPECT_EQ(metric_value(text, "anyturn_tenant_dropped_packets_total{tenant=\"slow\",reason=\"bandwidth\"}"),
            double(burst - arrived));
  EXPECT_EQ(metric_value(text, "anyturn_tenant_relayed_packets_total{tenant=\"slow\",direction=\"to_peer\"}"),
            double(arrived));
  EXPECT_EQ(metric_value(text, "anyturn_allocations_total{result=\"failed_quota\"}"), 2.0) << text;
  EXPECT_EQ(metric_value(text, "anyturn_tenant_allocations_total{tenant=\"acme\",result=\"failed_quota\"}"), 1.0);
  EXPECT_EQ(metric_value(text, "anyturn_tenant_allocations_total{tenant=\"solo\",result=\"failed_quota\"}"), 1.0);
  EXPECT_EQ(metric_value(text, "anyturn_tenant_allocations_total{tenant=\"default\",result=\"failed_quota\"}"), 0.0);
  EXPECT_EQ(metric_sum(text, "anyturn_tenant_allocations_active", {"tenant=\"acme\""}), 2.0);
  EXPECT_EQ(metric_sum(text, "anyturn_tenant_allocations_active", {"tenant=\"solo\""}), 1.0);
  EXPECT_EQ(metric_sum(text, "anyturn_tenant_allocations_active", {"tenant=\"default\""}), 1.0);
  EXPECT_EQ(metric_sum(text, "anyturn_allocations_active"), 5.0);
}

// ------------------------------------------------- credentials API (tenant)

TEST_F(Side, TenantApiKeyMintsCredentialsThatAllocateUnderThatTenant) {
  const std::string yaml = R"(
auth:
  users: [{name: owner, password: owner-pass}]
http:
  max_ttl: 600
  default_ttl: 300
  urls:
    stun: ["stun:turn.example.net:3478"]
    turn: ["turn:turn.example.net:3478?transport=udp"]
tenants:
  - id: acme
    secrets: ["acme-secret-new-0123", "acme-secret-old-0123"]
    api_keys: ["acme-api-key-0123456789"]
)";
  ASSERT_TRUE(start(32, yaml));
  const auto port = daemon_->http_port();
  auto none = http_request(port, "POST", "/api/v1/ice-servers", {}, "{}");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->body, "{\"error\":\"missing API key\"}\n");
  EXPECT_NE(none->headers.find("www-authenticate: bearer"), std::string::npos) << none->headers;
  auto wrong = http_request(port, "POST", "/api/v1/ice-servers",
                            {"Authorization: Bearer acme-api-key-0123456788"}, "{}");
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(wrong->body, "{\"error\":\"invalid API key\"}\n");

  auto ok = http_request(port, "POST", "/api/v1/ice-servers",
                         {"Authorization: Bearer acme-api-key-0123456789"},
                         R"({"ttl": 86400, "user": "carol"})");
  ASSERT_TRUE(ok.has_value());
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_NE(ok->body.find("\"urls\":[\"stun:turn.example.net:3478\"]"), std::string::npos) << ok->body;
  const auto username = json_string_member(ok->body, "username");
  const auto credential = json_string_member(ok->body, "credential");
  ASSERT_TRUE(username && credential) << ok->body;
  // "<expiry>:acme:carol", the TTL capped at http.max_ttl, signed with the first secret.
  const auto colon = username->find(':');
  ASSERT_NE(colon, std::string::npos);
  EXPECT_EQ(username->substr(colon), ":acme:carol");
  const std::int64_t expiry = std::stoll(username->substr(0, colon));
  EXPECT_LE(std::llabs(expiry - (unix_now() + 600)), 5);
  EXPECT_EQ(*credential, rest_password("acme-secret-new-0123", *username));

  auto c = client(*username, *credential);
  allocate_ok(*c);
  const std::string text = scrape();
  EXPECT_EQ(metric_sum(text, "anyturn_tenant_allocations_active", {"tenant=\"acme\""}), 1.0) << text;
  EXPECT_EQ(metric_value(text, "anyturn_http_credentials_issued_total{tenant=\"acme\"}"), 1.0);
  EXPECT_EQ(metric_value(text, "anyturn_http_api_auth_failures_total{reason=\"missing\"}"), 1.0);
  EXPECT_EQ(metric_value(text, "anyturn_http_api_auth_failures_total{reason=\"invalid\"}"), 1.0);

  // The draft-uberti GET form, for the same tenant.
  auto rest = http_request(port, "GET", "/api/v1/turn-credentials?service=turn&username=dave&ttl=60",
                           {"Authorization: Bearer acme-api-key-0123456789"});
  ASSERT_TRUE(rest.has_value());
  ASSERT_EQ(rest->status, 200) << rest->body;
  const auto rest_user = json_string_member(rest->body, "username");
  const auto rest_pass = json_string_member(rest->body, "password");
  ASSERT_TRUE(rest_user && rest_pass) << rest->body;
  auto d = client(*rest_user, *rest_pass);
  allocate_ok(*d);
}

// ----------------------------------------------------------- usage records

TEST_F(Side, UsageRecordHasExactByteCountsAndShutdownLosesNone) {
  const fs::path usage = dir_ / "usage.jsonl";
  ASSERT_TRUE(start(33, "usage_log: \"" + usage.string() + "\"\n", {"--user", "alice:wonderland"}));
  udp_socket peer(v4_loopback());
  auto c = client("alice", "wonderland");
  const auto relayed = allocate_ok(*c);
  ASSERT_NE(relayed.port, 0);
  ASSERT_TRUE(exchange(*c, peer, relayed, 7, 111, 5, 222));
  auto del = c->refresh(0);
  ASSERT_TRUE(del && del->is_success()) << describe(del);

  ASSERT_TRUE(eventually([&] { return lines_of(read_file(usage)).size() == 1; }))
      << "no usage record in " << usage << ": '" << read_file(usage) << "'";
  const std::string line = lines_of(read_file(usage)).front();
  http::json::parse_error error;
  const auto rec = http::json::parse_flat_object(line, error);
  ASSERT_TRUE(rec.has_value()) << line << ": " << error.message;
  auto text = [&](const char* key) {
    const auto* v = rec->find(key);
    return v != nullptr && v->type == http::json::value::kind::string ? v->text : std::string("<missing>");
  };
  auto number = [&](const char* key) {
    const auto* v = rec->find(key);
    return v != nullptr && v->type == http::json::value::kind::number ? v->number : -1.0;
  };
  EXPECT_EQ(text("tenant"), "");
  EXPECT_EQ(text("user"), "alice");
  EXPECT_EQ(text("transport"), "udp");
  EXPECT_EQ(text("client"), c->local().to_string());
  EXPECT_EQ(text("relay"), relayed.to_string());
  EXPECT_EQ(text("reason"), "deleted");
  EXPECT_EQ(number("packets_to_peer"), 7.0) << line;
  EXPECT_EQ(number("bytes_to_peer"), 777.0) << line;
  EXPECT_EQ(number("packets_to_client"), 5.0) << line;
  EXPECT_EQ(number("bytes_to_client"), 1110.0) << line;
  EXPECT_GE(number("duration_ms"), 0.0);
  EXPECT_LE(text("start"), text("end"));
  EXPECT_EQ(metric_value(scrape(), "anyturn_usage_records_total{result=\"written\"}"), 1.0);

  // Allocations still open at a clean stop get their records too.
  auto open1 = client("alice", "wonderland");
  allocate_ok(*open1);
  auto open2 = client("alice", "wonderland");
  allocate_ok(*open2);
  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();
  const auto all = lines_of(read_file(usage));
  ASSERT_EQ(all.size(), 3u) << read_file(usage);
  for (std::size_t i = 1; i < all.size(); ++i) {
    EXPECT_NE(all[i].find("\"reason\":\"shutdown\""), std::string::npos) << all[i];
  }
  const std::string joined = all[1] + all[2];
  EXPECT_NE(joined.find("\"client\":\"" + open1->local().to_string() + "\""), std::string::npos) << joined;
  EXPECT_NE(joined.find("\"client\":\"" + open2->local().to_string() + "\""), std::string::npos) << joined;
}

TEST_F(Side, SighupReopensTheUsageLog) {
  const fs::path usage = dir_ / "usage.jsonl";
  const fs::path rotated = dir_ / "usage.jsonl.1";
  ASSERT_TRUE(start(34, "usage_log: \"" + usage.string() + "\"\n", {"--user", "alice:wonderland"}));
  auto first = client("alice", "wonderland");
  allocate_ok(*first);
  auto r = first->refresh(0);
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  ASSERT_TRUE(eventually([&] { return lines_of(read_file(usage)).size() == 1; }));

  // logrotate: move the file away, then SIGHUP.
  fs::rename(usage, rotated);
  ASSERT_TRUE(daemon_->signal(SIGHUP));
  ASSERT_TRUE(eventually([&] { return fs::exists(usage); })) << "SIGHUP did not reopen\n" << daemon_->log();

  auto second = client("alice", "wonderland");
  allocate_ok(*second);
  r = second->refresh(0);
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  ASSERT_TRUE(eventually([&] { return lines_of(read_file(usage)).size() == 1; }))
      << "'" << read_file(usage) << "'";
  EXPECT_NE(read_file(usage).find("\"client\":\"" + second->local().to_string() + "\""), std::string::npos);
  const auto old_lines = lines_of(read_file(rotated));
  ASSERT_EQ(old_lines.size(), 1u);
  EXPECT_NE(old_lines[0].find("\"client\":\"" + first->local().to_string() + "\""), std::string::npos);
  // The daemon kept running through the SIGHUP.
  EXPECT_TRUE(daemon_->running());
}

// --------------------------------------------------- anyturn credentials

TEST_F(Side, CredentialsCommandMintsWhatTheServerAccepts) {
  const std::string secret = "offline-minting-secret";
  const auto before = unix_now();
  const auto plain = run_anyturn({"credentials", "--secret", secret, "--user", "bob", "--ttl", "600"});
  const auto after = unix_now();
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  std::string username, password;
  for (const auto& line : lines_of(plain.out)) {
    if (line.starts_with("username: ")) username = line.substr(10);
    if (line.starts_with("password: ")) password = line.substr(10);
  }
  ASSERT_FALSE(username.empty()) << plain.out;
  ASSERT_TRUE(username.ends_with(":bob")) << username;
  const std::int64_t expiry = std::stoll(username.substr(0, username.find(':')));
  EXPECT_GE(expiry, before + 600);
  EXPECT_LE(expiry, after + 600);
  EXPECT_EQ(password, rest_password(secret, username));

  const auto json = run_anyturn({"credentials", "--secret=" + secret, "--user", "carol",
                                 "--tenant", "acme", "--json"});
  ASSERT_EQ(json.exit_code, 0);
  http::json::parse_error error;
  const auto obj = http::json::parse_flat_object(json.out.substr(0, json.out.find('\n')), error);
  ASSERT_TRUE(obj.has_value()) << json.out << ": " << error.message;
  const auto* u = obj->find("username");
  const auto* p = obj->find("password");
  const auto* ttl = obj->find("ttl");
  ASSERT_TRUE(u && p && ttl && obj->find("expiresAt"));
  EXPECT_TRUE(u->text.ends_with(":acme:carol")) << u->text;
  EXPECT_EQ(p->text, rest_password(secret, u->text));
  EXPECT_EQ(ttl->number, 86400.0);  // the default

  EXPECT_EQ(run_anyturn({"credentials", "--user", "bob"}).exit_code, 1);  // no secret
  EXPECT_EQ(run_anyturn({"credentials", "--secret", secret, "--ttl", "-5"}).exit_code, 1);

  // The minted credentials work against a server with that secret.
  ASSERT_TRUE(start(35, "", {"--auth-secret", secret}));
  auto c = client(username, password);
  allocate_ok(*c);
}

// ------------------------------------------- the shipped config's credentials

// config/anyturn.yaml ships with no usable credential: the documented demo
// user is gone, and the server runs on a REST secret it generated into its
// state directory, which `anyturn credentials --secret-file` reads and which
// survives a restart.
TEST_F(Side, ShippedConfigRunsOnAGeneratedSecretOnly) {
  const std::string shipped = std::string(ANYTURN_SOURCE_DIR) + "/config/anyturn.yaml";
  const std::string tls = "127.0.0.1:" + std::to_string(free_port(false));
  ASSERT_TRUE(start(37, "", {"--config", shipped, "--tls-listen", tls}));
  const fs::path secret_file = fs::path(daemon_->state_home()) / "anyturn" / "rest-secret";
  ASSERT_TRUE(fs::exists(secret_file)) << daemon_->log();
  EXPECT_NE(daemon_->log().find(secret_file.string()), std::string::npos)
      << "the log must say where the generated secret is\n" << daemon_->log();

  // What the docs used to show does not authenticate.
  for (const auto& [name, pass] : {std::pair<std::string, std::string>{"demo", "demo-password"},
                                   {std::to_string(unix_now() + 600) + ":demo",
                                    rest_password("change-me-rest-secret",
                                                  std::to_string(unix_now() + 600) + ":demo")}}) {
    auto c = client(name, pass);
    auto r = c->allocate();
    ASSERT_TRUE(r.has_value()) << "no answer";
    EXPECT_EQ(r->error_code(), 401) << name << ": " << r->describe();
  }

  const auto minted = run_anyturn({"credentials", "--secret-file", secret_file.string(), "--user", "op"});
  ASSERT_EQ(minted.exit_code, 0) << minted.out;
  std::string username, password;
  for (const auto& line : lines_of(minted.out)) {
    if (line.starts_with("username: ")) username = line.substr(10);
    if (line.starts_with("password: ")) password = line.substr(10);
  }
  ASSERT_FALSE(password.empty()) << minted.out;
  auto c = client(username, password);
  allocate_ok(*c);

  // A restart reads the same secret: what was minted before still works.
  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();
  ASSERT_TRUE(daemon_->start()) << daemon_->log();
  auto again = client(username, password);
  allocate_ok(*again);
}

// Published credentials are refused at start-up with a clear error, even
// from the command line.
TEST_F(Side, PublishedCredentialsStopTheStart) {
  const auto r = run_anyturn({"check-config", std::string(ANYTURN_SOURCE_DIR) + "/config/anyturn.yaml",
                              "--user", "demo:demo-password"});
  EXPECT_EQ(r.exit_code, 1);
  const auto ok = run_anyturn({"check-config", std::string(ANYTURN_SOURCE_DIR) + "/config/anyturn.yaml"});
  EXPECT_EQ(ok.exit_code, 0);
}

}  // namespace
}  // namespace anyturn::itest
