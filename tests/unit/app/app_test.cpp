#include <anyturn/app/app.hpp>

#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/net/address.hpp>
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include "app_config.hpp"

#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::app {
namespace {

using namespace std::chrono_literals;

using test::ep;
using test::test_config;
// A blocking client socket on loopback.
struct client_socket {
  client_socket() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const net::socket_address sa = net::to_sockaddr(ep("127.0.0.1:0"));
    ::bind(fd, sa.data(), sa.size);
  }
  ~client_socket() { ::close(fd); }
  bool binding(const stun::endpoint& server) const {
    stun::transaction_id tid;
    tid.bytes.fill(std::byte{0x42});
    std::array<std::byte, 64> buf{};
    stun::message_builder b(buf, static_cast<std::uint16_t>(stun::method::binding),
                            stun::message_class::request, tid);
    auto msg = b.finish();
    const net::socket_address sa = net::to_sockaddr(server);
    ::sendto(fd, msg->data(), msg->size(), 0, sa.data(), sa.size);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return false;
    std::array<std::byte, 1500> in{};
    const ssize_t n = ::recv(fd, in.data(), in.size(), 0);
    auto reply = stun::parse_message(stun::bytes_view(in.data(), static_cast<std::size_t>(n)));
    return reply.has_value() && reply->cls() == stun::message_class::success_response;
  }
  int fd;
};

TEST(app, serves_until_request_stop_and_sums_counters) {
  server_app app(test_config());
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  ASSERT_EQ(app.threads(), 2u);
  const auto listeners = app.listeners();
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_NE(listeners[0].port, 0);
  // Several source ports, so both workers likely see traffic.
  for (int i = 0; i < 8; ++i) {
    client_socket c;
    EXPECT_TRUE(c.binding(listeners[0]));
  }
  std::thread stopper([&] { app.request_stop(); });
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_EQ(app.wait(), 0);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s);
  EXPECT_EQ(app.totals().binding_requests, 8u);
}

TEST(app, sigterm_stops_it_cleanly) {
  server_app app(test_config());
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  std::raise(SIGTERM);  // caught by the app's signal_set, not fatal
  EXPECT_EQ(app.wait(), 0);
}

TEST(app, request_stop_with_a_code_is_the_exit_code) {
  server_app app(test_config());
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  app.request_stop(3);
  EXPECT_EQ(app.wait(), 3);
}

TEST(app, listener_in_use_fails_start_with_a_clear_error) {
  client_socket holder;  // holds a loopback port without SO_REUSEPORT
  net::socket_address sa;
  sa.size = sizeof sa.storage;
  ::getsockname(holder.fd, sa.data(), &sa.size);
  const stun::endpoint taken = *net::from_sockaddr(sa.data(), sa.size);

  config::server_config cfg = test_config();
  cfg.listen = {taken};
  server_app app(cfg);
  std::string error;
  EXPECT_FALSE(app.start(error));
  EXPECT_NE(error.find(taken.to_string()), std::string::npos) << error;
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  EXPECT_EQ(app.wait(), 1);  // nothing was started
}

}  // namespace
}  // namespace anyturn::app
