#include <anyturn/net/send_queue.hpp>

#include <anyturn/net/address.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <poll.h>
#include <unistd.h>

namespace anyturn::net {
namespace {

stun::endpoint loopback(std::uint16_t port = 0) { return stun::endpoint::v4(0x7F000001, port); }

stun::bytes_view bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

// ---- a scripted sendmmsg: records what it was given, answers from a script ----

struct call {
  int fd;
  std::vector<std::string> datagrams;  // the gathered bytes of every message offered
  std::vector<const void*> first_fragment;
  std::vector<std::size_t> control_len;
};
struct fake_kernel {
  std::vector<call> calls;
  // Per call: >= 0 accept that many (capped at the count), or -errno.
  std::vector<int> script;
};
fake_kernel* kernel = nullptr;

int fake_sendmmsg(int fd, mmsghdr* msgs, unsigned count, int /*flags*/) {
  call c{fd, {}, {}, {}};
  for (unsigned i = 0; i < count; ++i) {
    std::string d;
    const msghdr& h = msgs[i].msg_hdr;
    for (std::size_t k = 0; k < h.msg_iovlen; ++k) {
      d.append(static_cast<const char*>(h.msg_iov[k].iov_base), h.msg_iov[k].iov_len);
    }
    c.datagrams.push_back(d);
    c.first_fragment.push_back(h.msg_iovlen > 0 ? h.msg_iov[0].iov_base : nullptr);
    c.control_len.push_back(h.msg_controllen);
  }
  const std::size_t index = kernel->calls.size();
  kernel->calls.push_back(std::move(c));
  const int answer = index < kernel->script.size() ? kernel->script[index] : static_cast<int>(count);
  if (answer < 0) {
    errno = -answer;
    return -1;
  }
  const int sent = std::min(answer, static_cast<int>(count));
  for (int i = 0; i < sent; ++i) msgs[i].msg_len = 1;
  return sent;
}

class send_queue_fake : public ::testing::Test {
 protected:
  void SetUp() override { kernel = &k; }
  void TearDown() override { kernel = nullptr; }
  fake_kernel k;
};

using dir = send_queue::direction;
using push_result = send_queue::push_result;

TEST_F(send_queue_fake, references_stable_fragments_and_copies_the_rest) {
  send_queue q(8, 64, &fake_sendmmsg);
  std::string arena = "payload-in-the-arena";
  q.set_stable_range(reinterpret_cast<const std::byte*>(arena.data()),
                     reinterpret_cast<const std::byte*>(arena.data() + arena.size()));
  {
    std::string header = "HDR:";  // dies before the flush, like a header on the core's stack
    const std::array<stun::bytes_view, 2> parts{bytes(header), bytes(arena)};
    ASSERT_EQ(q.push(5, dir::to_client, loopback(9), parts), push_result::queued);
    header.assign("XXXX");
  }
  EXPECT_EQ(q.copy_bytes_used(), 4u);
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 1u);
  EXPECT_EQ(r.calls, 1u);
  ASSERT_EQ(k.calls.size(), 1u);
  EXPECT_EQ(k.calls[0].fd, 5);
  EXPECT_EQ(k.calls[0].datagrams[0], "HDR:payload-in-the-arena");
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.copy_bytes_used(), 0u);

  // The payload itself was not copied: the second fragment still points into the arena.
  const std::array<stun::bytes_view, 1> only{bytes(arena)};
  ASSERT_EQ(q.push(5, dir::to_peer, loopback(9), only), push_result::queued);
  q.flush();
  EXPECT_EQ(k.calls[1].first_fragment[0], static_cast<const void*>(arena.data()));
}

TEST_F(send_queue_fake, groups_by_descriptor_and_keeps_each_descriptors_order) {
  send_queue q(16, 1024, &fake_sendmmsg);
  const std::array<int, 7> fds{7, 3, 7, 9, 3, 7, 9};
  for (std::size_t i = 0; i < fds.size(); ++i) {
    const std::string d = std::to_string(fds[i]) + "#" + std::to_string(i);
    const std::array<stun::bytes_view, 1> parts{bytes(d)};
    ASSERT_EQ(q.push(fds[i], dir::to_peer, loopback(1000), parts), push_result::queued);
  }
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 7u);
  EXPECT_EQ(r.calls, 3u);  // one sendmmsg per descriptor
  ASSERT_EQ(k.calls.size(), 3u);
  EXPECT_EQ(k.calls[0].fd, 3);
  EXPECT_EQ(k.calls[0].datagrams, (std::vector<std::string>{"3#1", "3#4"}));
  EXPECT_EQ(k.calls[1].fd, 7);
  EXPECT_EQ(k.calls[1].datagrams, (std::vector<std::string>{"7#0", "7#2", "7#5"}));
  EXPECT_EQ(k.calls[2].fd, 9);
  EXPECT_EQ(k.calls[2].datagrams, (std::vector<std::string>{"9#3", "9#6"}));
}

TEST_F(send_queue_fake, a_partial_send_is_continued_with_the_rest) {
  send_queue q(8, 256, &fake_sendmmsg);
  for (int i = 0; i < 5; ++i) {
    const std::string d = "d" + std::to_string(i);
    const std::array<stun::bytes_view, 1> parts{bytes(d)};
    q.push(4, dir::to_client, loopback(1), parts);
  }
  k.script = {2, 3};
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 5u);
  EXPECT_EQ(r.failed_to_client, 0u);
  ASSERT_EQ(k.calls.size(), 2u);
  EXPECT_EQ(k.calls[1].datagrams, (std::vector<std::string>{"d2", "d3", "d4"}));
}

TEST_F(send_queue_fake, congestion_drops_the_rest_of_the_group_and_counts_each_by_direction) {
  send_queue q(8, 256, &fake_sendmmsg);
  const std::string d = "x";
  const std::array<stun::bytes_view, 1> parts{bytes(d)};
  q.push(4, dir::to_client, loopback(1), parts);
  q.push(4, dir::to_client, loopback(1), parts);
  q.push(4, dir::to_client, loopback(1), parts);
  q.push(6, dir::to_peer, loopback(1), parts);
  q.push(6, dir::to_peer, loopback(1), parts);
  k.script = {1, -EAGAIN, -ENOBUFS};
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 1u);
  EXPECT_EQ(r.failed_to_client, 2u);
  EXPECT_EQ(r.failed_to_peer, 2u);
  EXPECT_EQ(r.client_error, 0);  // congestion is counted, not logged as an error
  EXPECT_EQ(r.peer_error, 0);
  EXPECT_EQ(k.calls.size(), 3u);  // no busy retrying of a full socket
}

TEST_F(send_queue_fake, an_error_of_one_datagram_drops_only_that_one) {
  send_queue q(8, 256, &fake_sendmmsg);
  for (int i = 0; i < 4; ++i) {
    const std::string d = "p" + std::to_string(i);
    const std::array<stun::bytes_view, 1> parts{bytes(d)};
    q.push(8, dir::to_peer, loopback(1), parts);
  }
  k.script = {1, -EMSGSIZE};  // p1 is too large for DF; p2 and p3 still go
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 3u);
  EXPECT_EQ(r.failed_to_peer, 1u);
  EXPECT_EQ(r.peer_error, EMSGSIZE);
  ASSERT_EQ(k.calls.size(), 3u);
  EXPECT_EQ(k.calls[2].datagrams, (std::vector<std::string>{"p2", "p3"}));
}

TEST_F(send_queue_fake, interrupted_calls_are_repeated) {
  send_queue q(4, 64, &fake_sendmmsg);
  const std::string d = "i";
  const std::array<stun::bytes_view, 1> parts{bytes(d)};
  q.push(3, dir::to_client, loopback(1), parts);
  k.script = {-EINTR};
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 1u);
  EXPECT_EQ(k.calls.size(), 2u);
}

TEST_F(send_queue_fake, reports_full_and_too_large) {
  send_queue q(2, 8, &fake_sendmmsg);
  const std::string small = "abc";
  const std::string nine = "123456789";
  const std::array<stun::bytes_view, 1> s{bytes(small)};
  const std::array<stun::bytes_view, 1> big{bytes(nine)};
  EXPECT_EQ(q.push(1, dir::to_peer, loopback(1), big), push_result::too_large);  // > copy area
  std::array<stun::bytes_view, send_queue::max_fragments + 1> many{};
  EXPECT_EQ(q.push(1, dir::to_peer, loopback(1), many), push_result::too_large);
  EXPECT_EQ(q.push(1, dir::to_peer, loopback(1), s), push_result::queued);
  EXPECT_EQ(q.push(1, dir::to_peer, loopback(1), s), push_result::queued);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.push(1, dir::to_peer, loopback(1), s), push_result::full);  // no entry left
  q.flush();
  EXPECT_EQ(q.push(1, dir::to_peer, loopback(1), s), push_result::queued);
  const std::string six = "123456";
  const std::array<stun::bytes_view, 1> s6{bytes(six)};
  EXPECT_EQ(q.push(1, dir::to_peer, loopback(1), s6), push_result::full);  // 3 + 6 > 8 bytes to copy
  EXPECT_EQ(k.calls.size(), 1u);
}

TEST_F(send_queue_fake, source_address_travels_as_pktinfo) {
  send_queue q(4, 64, &fake_sendmmsg);
  const std::string d = "r";
  const std::array<stun::bytes_view, 1> parts{bytes(d)};
  const stun::endpoint source = stun::endpoint::v4(0x7F000002, 0);
  q.push(3, dir::to_client, loopback(1), parts, &source);
  q.push(3, dir::to_client, loopback(1), parts);
  q.flush();
  ASSERT_EQ(k.calls.size(), 1u);
  EXPECT_EQ(k.calls[0].control_len[0], CMSG_SPACE(sizeof(in_pktinfo)));
  EXPECT_EQ(k.calls[0].control_len[1], 0u);
}

// ---- real sockets ----

class udp_fd {
 public:
  explicit udp_fd(const stun::endpoint& bind_to) {
    fd_ = ::socket(bind_to.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const socket_address sa = to_sockaddr(bind_to);
    EXPECT_EQ(::bind(fd_, sa.data(), sa.size), 0) << std::strerror(errno);
  }
  ~udp_fd() { ::close(fd_); }
  udp_fd(const udp_fd&) = delete;
  udp_fd& operator=(const udp_fd&) = delete;
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] stun::endpoint local() const {
    socket_address sa;
    sa.size = sizeof sa.storage;
    ::getsockname(fd_, sa.data(), &sa.size);
    return *from_sockaddr(sa.data(), sa.size);
  }
  std::optional<std::string> receive(stun::endpoint* from = nullptr) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return std::nullopt;
    std::array<char, 2048> buf{};
    socket_address sa;
    sa.size = sizeof sa.storage;
    const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, sa.data(), &sa.size);
    if (n < 0) return std::nullopt;
    if (from != nullptr) *from = *from_sockaddr(sa.data(), sa.size);
    return std::string(buf.data(), static_cast<std::size_t>(n));
  }

 private:
  int fd_ = -1;
};

TEST(send_queue, delivers_through_real_sockets_in_order_with_pktinfo_sources) {
  udp_fd a(loopback());
  udp_fd wildcard(stun::endpoint::v4(0, 0));
  udp_fd receiver(loopback());
  send_queue q(64, 4096);
  for (int i = 0; i < 40; ++i) {
    const std::string d = "a" + std::to_string(i);
    const std::array<stun::bytes_view, 1> parts{bytes(d)};
    ASSERT_EQ(q.push(a.fd(), send_queue::direction::to_peer, receiver.local(), parts),
              send_queue::push_result::queued);
  }
  // From a wildcard socket, with 127.0.0.2 as the chosen source address.
  const stun::endpoint source = stun::endpoint::v4(0x7F000002, 0);
  const std::string w = "from-127.0.0.2";
  const std::string w1 = w.substr(0, 5);
  const std::string w2 = w.substr(5);
  const std::array<stun::bytes_view, 2> parts{bytes(w1), bytes(w2)};
  ASSERT_EQ(q.push(wildcard.fd(), send_queue::direction::to_client, receiver.local(), parts, &source),
            send_queue::push_result::queued);
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 41u);
  EXPECT_LE(r.calls, 2u);

  std::vector<std::string> from_a;
  std::optional<std::string> from_wildcard;
  for (int i = 0; i < 41; ++i) {
    stun::endpoint from;
    auto d = receiver.receive(&from);
    ASSERT_TRUE(d.has_value());
    if (from == a.local()) {
      from_a.push_back(*d);
    } else {
      EXPECT_EQ(from.ip, source.ip);
      EXPECT_EQ(from.port, wildcard.local().port);
      from_wildcard = d;
    }
  }
  ASSERT_EQ(from_a.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(from_a[static_cast<std::size_t>(i)], "a" + std::to_string(i));
  EXPECT_EQ(from_wildcard, w);
}

}  // namespace
}  // namespace anyturn::net
