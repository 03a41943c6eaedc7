// The fleet's wire-visible behaviour on one real daemon (issue 13): the
// public address behind 1:1 NAT in XOR-RELAYED-ADDRESS (--external-ip), its
// start-up errors, and the anycast front door (--anycast-ip/--unicast-ip).
// Multi-node behaviour (drain, Redis, revocations) is tests/fleet's.
//
// Relay port slots 170-179 (tests/support/daemon.hpp).
#include "daemon.hpp"
#include "spawn.hpp"
#include "stream_client.hpp"
#include "turn_client.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::itest {
namespace {

const std::string realm = "fleet.test";
const std::string user = "alice";
const std::string password = "wonderland-fleet";

stun::endpoint ip4(const char* text, std::uint16_t port = 0) {
  auto e = stun::endpoint::parse(text, true);
  EXPECT_TRUE(e.has_value()) << text;
  stun::endpoint out = e.value_or(stun::endpoint{});
  out.port = port;
  return out;
}

class Fleet : public ::testing::Test {
 protected:
  // Starts the daemon with relay ports from `slot`, the test user and
  // `extra` (which names the relay address).
  [[nodiscard]] ::testing::AssertionResult start(unsigned slot, std::vector<std::string> extra) {
    ports_ = relay_ports_for_slot(slot);
    std::vector<std::string> args = {"--relay-ports", ports_.flag(), "--realm", realm, "--user",
                                     user + ":" + password, "--threads", "2", "--log-level", "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<daemon>(daemon::options{false, args});
    if (!daemon_->start()) {
      return ::testing::AssertionFailure() << "daemon did not become ready\n" << daemon_->log();
    }
    return ::testing::AssertionSuccess();
  }

  void TearDown() override {
    if (!daemon_) return;
    const int rc = daemon_->stop();
    EXPECT_EQ(rc, 0) << "anyturn did not exit cleanly on SIGTERM\n" << daemon_->log();
    if (HasFailure() && rc == 0) std::cerr << daemon_->log() << '\n';
  }

  std::unique_ptr<turn_client> authed_client(const stun::endpoint& server) {
    auto c = std::make_unique<turn_client>(server, v4_loopback());
    c->set_credentials({user, password});
    return c;
  }

  // The allocation announced at `announced` relays through 127.0.0.1 on the
  // same port: a loopback peer gets the client's ChannelData from
  // 127.0.0.1:PORT, and what it sends there reaches the client.
  void relays_through_loopback(turn_client& c, const stun::endpoint& announced) {
    udp_socket peer(v4_loopback());
    auto perm = c.create_permission({peer.local()});
    ASSERT_TRUE(perm && perm->is_success()) << describe(perm);
    auto bind = c.channel_bind(0x4001, peer.local());
    ASSERT_TRUE(bind && bind->is_success()) << describe(bind);

    c.send_channel_data(0x4001, to_bytes("to the peer"));
    auto got = peer.recv(response_timeout);
    ASSERT_TRUE(got.has_value()) << "the peer got nothing from the relay";
    EXPECT_EQ(to_string(got->data), "to the peer");
    // The relay socket is bound on the PRIVATE address, on the port that
    // XOR-RELAYED-ADDRESS announced with the PUBLIC one.
    EXPECT_EQ(got->from, v4_loopback(announced.port)) << got->from.to_string();

    peer.send_to(got->from, to_bytes("to the client"));
    auto back = c.recv_data();
    ASSERT_TRUE(back.has_value()) << "the client got nothing back through the relay";
    EXPECT_EQ(back->how, relayed_data::kind::channel_data);
    EXPECT_EQ(back->channel, 0x4001);
    EXPECT_EQ(to_string(back->payload), "to the client");
  }

  std::unique_ptr<daemon> daemon_;
  port_range ports_;
};

// ------------------------------------------------------- 1:1 NAT mapping

TEST_F(Fleet, ExternalIpIsAnnouncedWhileTheRelayBindsThePrivateAddress) {
  ASSERT_TRUE(start(170, {"--relay-ip", "127.0.0.1", "--external-ip", "203.0.113.7/127.0.0.1",
                          "--allow-peer", "127.0.0.1/32"}));
  auto c = authed_client(daemon_->address());
  auto r = c->allocate();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  const auto relayed = r->address(stun::attr::xor_relayed_address);
  ASSERT_TRUE(relayed.has_value()) << r->describe();
  EXPECT_EQ(relayed->ip_string(), "203.0.113.7") << relayed->to_string();
  EXPECT_TRUE(ports_.contains(relayed->port)) << relayed->to_string() << " not in " << ports_.flag();
  // What the server saw of the client is not translated.
  EXPECT_EQ(r->address(stun::attr::xor_mapped_address), std::optional(c->local()));
  relays_through_loopback(*c, *relayed);
}

// PUBLIC alone maps the only relay address of its family.
TEST_F(Fleet, ExternalIpWithoutPrivateMapsTheOnlyRelayAddress) {
  ASSERT_TRUE(start(171, {"--relay-ip", "127.0.0.1", "--external-ip", "198.51.100.44", "--allow-peer",
                          "127.0.0.1/32"}));
  auto c = authed_client(daemon_->address());
  auto r = c->allocate();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  const auto relayed = r->address(stun::attr::xor_relayed_address);
  ASSERT_TRUE(relayed.has_value()) << r->describe();
  EXPECT_EQ(relayed->ip_string(), "198.51.100.44") << relayed->to_string();
  EXPECT_TRUE(ports_.contains(relayed->port)) << relayed->to_string();
  relays_through_loopback(*c, *relayed);
}

// ------------------------------------------------------ start-up errors

struct exit_result {
  int code = -1;  // exit status; 128+N: signal N; -1: still running after the bound (killed)
  std::string output;
};

// Runs the daemon with `args` until it exits, at most `bound`; stdout and
// stderr together.
exit_result run_daemon(const std::vector<std::string>& args,
                       std::chrono::milliseconds bound = std::chrono::seconds{10}) {
  std::string path = "/tmp/anyturn-fleet-XXXXXX.log";
  const int fd = ::mkstemps(path.data(), 4);
  if (fd < 0) throw std::runtime_error("mkstemps failed");
  std::vector<std::string> argv = {ANYTURN_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = spawn(argv, fd);
  ::close(fd);
  exit_result r;
  const auto deadline = std::chrono::steady_clock::now() + bound;
  int status = 0;
  while (true) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (w < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);  // exactly the child we started
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  r.output = text.str();
  ::unlink(path.c_str());
  return r;
}

// Every invalid --external-ip form stops the daemon at start-up with a
// message naming the key (or the flag, when the value does not parse).
TEST(FleetStartUp, EachInvalidExternalIpIsAStartUpError) {
  const std::string listen = "127.0.0.1:" + std::to_string(free_port(false));
  const std::string http = "127.0.0.1:" + std::to_string(free_port(false));
  const struct {
    std::vector<std::string> flags;
    std::string message;
  } cases[] = {
      {{"--relay-ip", "127.0.0.1", "--external-ip", "203.0.113.7/10.0.0.9"},
       "relay.external_ips[0]: PRIVATE 10.0.0.9 is not one of relay.ips (127.0.0.1)"},
      {{"--relay-ip", "127.0.0.1", "--external-ip", "203.0.113.7/::1"},
       "relay.external_ips[0]: PUBLIC 203.0.113.7 is IPv4 but PRIVATE ::1 is IPv6"},
      {{"--relay-ip", "127.0.0.1", "--relay-ip", "127.0.0.2", "--external-ip", "203.0.113.7/127.0.0.1",
        "--external-ip", "203.0.113.7/127.0.0.2"},
       "relay.external_ips[1]: PUBLIC 203.0.113.7 already maps 127.0.0.1 (relay.external_ips[0])"},
      {{"--relay-ip", "127.0.0.1", "--relay-ip", "127.0.0.2", "--external-ip", "203.0.113.7"},
       "relay.external_ips[0]: PUBLIC 203.0.113.7 without /PRIVATE needs exactly one IPv4 address in "
       "relay.ips, found 2"},
      {{"--relay-ip", "127.0.0.1", "--external-ip", "2001:db8::7"},
       "relay.external_ips[0]: PUBLIC 2001:db8::7 without /PRIVATE needs exactly one IPv6 address in "
       "relay.ips, found 0"},
      {{"--relay-ip", "127.0.0.1", "--external-ip", "203.0.113.7/127.0.0.1", "--external-ip",
        "203.0.113.8/127.0.0.1"},
       "relay.external_ips[1]: relay address 127.0.0.1 is already announced as 203.0.113.7"},
      {{"--relay-ip", "127.0.0.1", "--external-ip", "203.0.113.7/"}, "--external-ip: expected PUBLIC or"},
      {{"--relay-ip", "127.0.0.1", "--external-ip", "203.0.113.7:3478"}, "--external-ip: expected PUBLIC or"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"--listen", listen, "--http-listen", http, "--realm", realm,
                                     "--user", user + ":" + password};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    const auto r = run_daemon(args);
    EXPECT_NE(r.code, 0) << c.message << "\n" << r.output;
    EXPECT_NE(r.code, -1) << "the daemon was still running: " << c.message;
    EXPECT_NE(r.output.find(c.message), std::string::npos)
        << "expected '" << c.message << "' in:\n" << r.output;
  }
}

// The same check for the key in a config file.
TEST(FleetStartUp, InvalidExternalIpInTheConfigFile) {
  char dir[] = "/tmp/anyturn-fleet-cfg-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/anyturn.yaml";
  std::ofstream(file) << "relay:\n  ips: [\"127.0.0.1\"]\n  external_ips: [\"203.0.113.7/127.0.0.9\"]\n";
  const auto r = run_daemon({"--config", file, "--listen", "127.0.0.1:" + std::to_string(free_port(false)),
                             "--http-listen", "127.0.0.1:" + std::to_string(free_port(false)), "--user",
                             user + ":" + password});
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("relay.external_ips[0]: PRIVATE 127.0.0.9 is not one of relay.ips (127.0.0.1)"),
            std::string::npos)
      << r.output;
}

// ------------------------------------------------------ anycast front door

// 127.0.0.1 plays the fleet's anycast address and 127.0.0.2 this node's
// unicast address (loopback holds all of 127/8); both listen on one port P.
class FleetAnycast : public Fleet {
 protected:
  void SetUp() override {
    port_ = free_port(false);
    const std::string p = std::to_string(port_);
    ASSERT_TRUE(start(172, {"--relay-ip", "127.0.0.2", "--listen", "127.0.0.1:" + p, "--listen",
                            "127.0.0.2:" + p, "--anycast-ip", "127.0.0.1", "--unicast-ip", "127.0.0.2"}));
  }
  [[nodiscard]] stun::endpoint vip() const { return ip4("127.0.0.1", port_); }
  [[nodiscard]] stun::endpoint unicast() const { return ip4("127.0.0.2", port_); }

  std::uint16_t port_ = 0;
};

TEST_F(FleetAnycast, AuthenticatedAllocateOnTheAnycastAddressIsRedirected) {
  auto c = authed_client(vip());
  auto r = c->allocate();
  ASSERT_TRUE(r.has_value()) << "no response";
  ASSERT_TRUE(r->is_error()) << r->describe();
  EXPECT_EQ(r->error_code(), 300) << r->describe();
  EXPECT_EQ(r->address(stun::attr::alternate_server), std::optional(unicast())) << r->describe();
  // Signed: the redirect went to a client that proved its key (no reflection).
  const bool signed_ok = (c->md5_key() && r->integrity_ok(*c->md5_key())) ||
                         (c->sha256_key() && r->integrity_sha256_ok(*c->sha256_key()));
  EXPECT_TRUE(signed_ok) << "the 300 carries no valid MESSAGE-INTEGRITY (RFC 8489 §10): " << r->describe();
  // Over UDP no ALTERNATE-DOMAIN (none configured, and it is a TLS matter).
  EXPECT_FALSE(r->has(stun::attr::alternate_domain)) << r->describe();
}

TEST_F(FleetAnycast, UnauthenticatedAllocateOnTheAnycastAddressGetsA401NotARedirect) {
  turn_client c(vip(), v4_loopback());
  auto r = c.request_unauthenticated(stun::method::allocate, [](stun::message_builder& b) {
    b.add_requested_transport(17);
  });
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 401) << r->describe();
  EXPECT_FALSE(r->has(stun::attr::alternate_server)) << r->describe();
}

TEST_F(FleetAnycast, BindingOnTheAnycastAddressIsAnswered) {
  turn_client c(vip(), v4_loopback());
  auto r = c.binding();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_EQ(r->address(stun::attr::xor_mapped_address), std::optional(c.local()));
}

TEST_F(FleetAnycast, AllocateOnTheUnicastAddressIsServedAndNotRedirectedAgain) {
  // A client that followed the redirect.
  auto first = authed_client(vip());
  auto redirect = first->allocate();
  ASSERT_TRUE(redirect && redirect->error_code() == 300) << describe(redirect);
  const auto target = redirect->address(stun::attr::alternate_server);
  ASSERT_TRUE(target.has_value());

  auto c = authed_client(*target);
  auto r = c->allocate();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  const auto relayed = r->address(stun::attr::xor_relayed_address);
  ASSERT_TRUE(relayed.has_value()) << r->describe();
  EXPECT_EQ(relayed->ip_string(), "127.0.0.2");
  EXPECT_TRUE(ports_.contains(relayed->port)) << relayed->to_string();
  auto refresh = c->refresh(600);
  EXPECT_TRUE(refresh && refresh->is_success()) << describe(refresh);
}

// Over TCP and TLS the redirect keeps the port and transport, and over TLS
// it names the node's certificate in ALTERNATE-DOMAIN (RFC 8489 §14.16).
class FleetAnycastStreams : public Fleet, public ::testing::WithParamInterface<bool> {
 protected:
  [[nodiscard]] bool tls() const { return GetParam(); }
  void SetUp() override {
    tcp_port_ = free_port(false);
    do {
      tls_port_ = free_port(false);
    } while (tls_port_ == tcp_port_);
    const std::string p = std::to_string(tcp_port_);
    const std::string t = std::to_string(tls_port_);
    // No tls.cert: the development certificate (the client does not verify).
    ASSERT_TRUE(start(173 + (tls() ? 1 : 0),
                      {"--relay-ip", "127.0.0.2", "--listen", "127.0.0.1:" + p, "--listen", "127.0.0.2:" + p,
                       "--tls-listen", "127.0.0.1:" + t, "--tls-listen", "127.0.0.2:" + t, "--anycast-ip",
                       "127.0.0.1", "--unicast-ip", "127.0.0.2", "--alternate-domain", "node1.turn.example"}));
  }
  [[nodiscard]] std::uint16_t port() const { return tls() ? tls_port_ : tcp_port_; }

  std::unique_ptr<stream_client> connected(const char* ip) {
    stream_client::options o;
    o.tls = tls();
    auto c = std::make_unique<stream_client>(ip4(ip, port()), o);
    EXPECT_TRUE(c->connect()) << c->last_error();
    c->set_credentials({user, password});
    return c;
  }

  std::uint16_t tcp_port_ = 0;
  std::uint16_t tls_port_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Transports, FleetAnycastStreams, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "tls" : "tcp"; });

TEST_P(FleetAnycastStreams, RedirectKeepsPortAndTransportAndNamesTheCertificateOverTls) {
  auto c = connected("127.0.0.1");
  auto r = c->allocate();
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 300) << r->describe();
  EXPECT_EQ(r->address(stun::attr::alternate_server), std::optional(ip4("127.0.0.2", port()))) << r->describe();
  if (tls()) {
    EXPECT_EQ(r->string(stun::attr::alternate_domain), std::optional<std::string>("node1.turn.example"))
        << r->describe();
  } else {
    EXPECT_FALSE(r->has(stun::attr::alternate_domain)) << "ALTERNATE-DOMAIN over plain TCP: " << r->describe();
  }

  // The client follows it and is served there.
  auto u = connected("127.0.0.2");
  auto ok = u->allocate();
  ASSERT_TRUE(ok && ok->is_success()) << describe(ok);
  const auto relayed = ok->address(stun::attr::xor_relayed_address);
  ASSERT_TRUE(relayed.has_value()) << ok->describe();
  EXPECT_EQ(relayed->ip_string(), "127.0.0.2");
}

}  // namespace
}  // namespace anyturn::itest
