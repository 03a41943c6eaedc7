// hiredis on Asio (src/fleet/redis_link.cpp) against a real redis-server:
// commands, pub/sub, and every way a connection fails.
#include <anyturn/fleet/redis_link.hpp>

#include "redis_server.hpp"

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>

namespace anyturn::fleet {
namespace {

using namespace std::chrono_literals;

redis_url url_of(std::uint16_t port, std::string password = {}) {
  redis_url u;
  u.host = "127.0.0.1";
  u.port = port;
  u.password = std::move(password);
  return u;
}

class RedisLink : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!itest::redis_server::available()) GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
    ASSERT_TRUE(redis_.start()) << redis_.log();
  }
  // Runs the loop until `done()` or `limit` passes.
  template <typename F>
  bool run_until(F done, std::chrono::milliseconds limit = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(10ms);
    }
    return done();
  }
  // Connects `link` to `u`; the connect error ("" on success).
  std::optional<std::string> connect(redis_link& link, const redis_url& u, std::chrono::milliseconds timeout = 2s) {
    std::optional<std::string> result;
    link.connect(u, timeout, [&](const std::string& e) { result = e; }, [&](const std::string& why) { lost_ = why; });
    run_until([&] { return result.has_value(); }, timeout + 2s);
    return result;
  }

  itest::redis_server redis_;
  boost::asio::io_context io_{1};
  std::optional<std::string> lost_;
};

TEST_F(RedisLink, CommandsGetTheirRepliesInOrder) {
  redis_link link(io_);
  ASSERT_EQ(connect(link, url_of(redis_.port())), "");
  EXPECT_TRUE(link.ready());
  std::vector<reply> got;
  const std::string binary("a\0b\r\nc", 6);
  ASSERT_TRUE(link.command({"SET", "k", binary}, [&](const reply* r) { got.push_back(r ? *r : reply{}); }));
  ASSERT_TRUE(link.command({"GET", "k"}, [&](const reply* r) { got.push_back(r ? *r : reply{}); }));
  ASSERT_TRUE(link.command({"INCRBY", "n", "41"}, [&](const reply* r) { got.push_back(r ? *r : reply{}); }));
  ASSERT_TRUE(link.command({"MGET", "k", "missing"}, [&](const reply* r) { got.push_back(r ? *r : reply{}); }));
  ASSERT_TRUE(link.command({"NOSUCHCOMMAND"}, [&](const reply* r) { got.push_back(r ? *r : reply{}); }));
  ASSERT_TRUE(run_until([&] { return got.size() == 5; }));
  EXPECT_EQ(got[0].type, reply::kind::status);
  EXPECT_EQ(got[1].str, binary);
  EXPECT_EQ(got[2].integer, 41);
  ASSERT_EQ(got[3].elements.size(), 2u);
  EXPECT_EQ(got[3].elements[0].str, binary);
  EXPECT_EQ(got[3].elements[1].type, reply::kind::nil);
  EXPECT_TRUE(got[4].is_error());
  EXPECT_EQ(link.pending(), 0u);
}

TEST_F(RedisLink, ALargeReplyIsReadWhole) {
  // More than hiredis reads at once (16 KiB), so the adapter must come back
  // for the rest although no new data arrives after it.
  redis_link link(io_);
  ASSERT_EQ(connect(link, url_of(redis_.port())), "");
  const std::string big(300'000, 'x');
  std::optional<reply> got;
  link.command({"SET", "big", big}, nullptr);
  link.command({"GET", "big"}, [&](const reply* r) { got = r ? *r : reply{}; });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->str.size(), big.size());
}

TEST_F(RedisLink, SubscriberGetsPublishedMessages) {
  redis_link sub(io_), pub(io_);
  ASSERT_EQ(connect(sub, url_of(redis_.port())), "");
  ASSERT_EQ(connect(pub, url_of(redis_.port())), "");
  bool subscribed = false;
  std::vector<std::pair<std::string, std::string>> messages;
  ASSERT_TRUE(sub.subscribe({"c1", "c2"}, [&] { subscribed = true; },
                            [&](std::string_view ch, std::string_view p) { messages.emplace_back(ch, p); }));
  ASSERT_TRUE(run_until([&] { return subscribed; }));
  EXPECT_FALSE(sub.command({"PING"}, nullptr)) << "a subscriber takes no commands";
  pub.command({"PUBLISH", "c2", "hello"}, nullptr);
  pub.command({"PUBLISH", "other", "nobody"}, nullptr);
  pub.command({"PUBLISH", "c1", "world"}, nullptr);
  ASSERT_TRUE(run_until([&] { return messages.size() == 2; }));
  EXPECT_EQ(messages[0], std::make_pair(std::string("c2"), std::string("hello")));
  EXPECT_EQ(messages[1], std::make_pair(std::string("c1"), std::string("world")));
}

TEST_F(RedisLink, RefusedConnectionIsAConnectError) {
  redis_link link(io_);
  const auto port = redis_.port();
  redis_.kill();
  auto e = connect(link, url_of(port));
  ASSERT_TRUE(e);
  EXPECT_NE(*e, "");
  EXPECT_FALSE(link.ready());
  EXPECT_FALSE(lost_) << "never up, so never lost";
}

TEST_F(RedisLink, WrongPasswordIsAConnectError) {
  redis_link link(io_);
  auto e = connect(link, url_of(redis_.port(), "not-the-password"));
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("AUTH failed"), std::string::npos) << *e;
}

TEST_F(RedisLink, RedissFailsAtOnce) {
  redis_link link(io_);
  auto u = url_of(redis_.port());
  u.tls = true;
  auto e = connect(link, u);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("not supported"), std::string::npos) << *e;
}

TEST_F(RedisLink, SilentServerTimesOut) {
  // A listener that accepts (in its backlog) and never answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  redis_link link(io_);
  const auto start = std::chrono::steady_clock::now();
  auto e = connect(link, url_of(ntohs(a.sin_port)), 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, "timed out");
  EXPECT_LT(took, 2s);
}

TEST_F(RedisLink, KilledServerIsReportedLostAndPendingCommandsGetNull) {
  redis_link link(io_);
  ASSERT_EQ(connect(link, url_of(redis_.port())), "");
  bool got_null = false;
  // BLPOP waits in the server, so it is pending when the server dies.
  link.command({"BLPOP", "nothing", "10"}, [&](const reply* r) { got_null = r == nullptr; });
  io_.restart();
  io_.run_for(50ms);
  redis_.kill();
  ASSERT_TRUE(run_until([&] { return lost_.has_value(); }));
  EXPECT_TRUE(got_null);
  EXPECT_FALSE(link.ready());
  EXPECT_FALSE(link.command({"PING"}, nullptr));
}

TEST_F(RedisLink, NoHandlerRunsAfterClose) {
  redis_link link(io_);
  ASSERT_EQ(connect(link, url_of(redis_.port())), "");
  bool called = false;
  link.command({"BLPOP", "nothing", "10"}, [&](const reply*) { called = true; });
  link.close();
  redis_.kill();
  io_.restart();
  io_.run_for(200ms);
  EXPECT_FALSE(called);
  EXPECT_FALSE(lost_);
}

TEST_F(RedisLink, ReconnectsAfterTheServerComesBack) {
  redis_link link(io_);
  ASSERT_EQ(connect(link, url_of(redis_.port())), "");
  const auto port = redis_.port();
  redis_.kill();
  ASSERT_TRUE(run_until([&] { return lost_.has_value(); }));
  ASSERT_TRUE(redis_.start(port)) << redis_.log();
  lost_.reset();
  ASSERT_EQ(connect(link, url_of(port)), "");
  std::optional<reply> got;
  link.command({"PING"}, [&](const reply* r) { got = r ? *r : reply{}; });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->str, "PONG");
}

}  // namespace
}  // namespace anyturn::fleet
