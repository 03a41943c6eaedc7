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

#include <netinet/udp.h>
#include <poll.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace anyturn::net {
namespace {

stun::endpoint loopback(std::uint16_t port = 0) { return stun::endpoint::v4(0x7F000001, port); }

stun::bytes_view bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

// ---- a scripted sendmmsg: records what it was given, answers from a script ----

struct call {
  int fd;
  std::vector<std::string> messages;  // the gathered bytes of every message offered
  std::vector<const void*> first_fragment;
  std::vector<std::size_t> control_len;
  std::vector<std::size_t> iov_count;
  std::vector<std::uint16_t> port;     // destination port of every message
  std::vector<std::uint16_t> segment;  // its UDP_SEGMENT size, 0: none
  std::vector<std::optional<stun::endpoint>> source;  // its IP(V6)_PKTINFO address
  std::vector<std::vector<std::pair<int, int>>> cmsgs;  // (level, type) in buffer order

  // What the receiver would get: every message split at its segment size.
  [[nodiscard]] std::vector<std::string> datagrams() const {
    std::vector<std::string> out;
    for (std::size_t m = 0; m < messages.size(); ++m) {
      if (segment[m] == 0) {
        out.push_back(messages[m]);
        continue;
      }
      for (std::size_t at = 0; at < messages[m].size(); at += segment[m]) {
        out.push_back(messages[m].substr(at, segment[m]));
      }
    }
    return out;
  }
};
struct fake_kernel {
  std::vector<call> calls;
  // Per call: >= 0 accept that many (capped at the count), or -errno.
  // Calls beyond the script are answered by the model below.
  std::vector<int> script;
  // The model: a UDP_SEGMENT message is refused with `gso_error` (0: never),
  // or with EINVAL if segment + 28 bytes of headers exceed `mtu` (0: no limit).
  int gso_error = 0;
  std::size_t mtu = 0;
};
fake_kernel* kernel = nullptr;

int fake_sendmmsg(int fd, mmsghdr* msgs, unsigned count, int /*flags*/) {
  call c{fd, {}, {}, {}, {}, {}, {}, {}, {}};
  int refused_at = -1;
  int refused_with = 0;
  for (unsigned i = 0; i < count; ++i) {
    std::string d;
    msghdr& h = msgs[i].msg_hdr;
    for (std::size_t k = 0; k < h.msg_iovlen; ++k) {
      d.append(static_cast<const char*>(h.msg_iov[k].iov_base), h.msg_iov[k].iov_len);
    }
    c.messages.push_back(d);
    c.first_fragment.push_back(h.msg_iovlen > 0 ? h.msg_iov[0].iov_base : nullptr);
    c.control_len.push_back(h.msg_controllen);
    c.iov_count.push_back(h.msg_iovlen);
    c.port.push_back(from_sockaddr(static_cast<const sockaddr*>(h.msg_name), h.msg_namelen)->port);
    std::uint16_t segment = 0;
    std::optional<stun::endpoint> source;
    std::vector<std::pair<int, int>> seen;
    if (h.msg_controllen != 0) {
      for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm != nullptr; cm = CMSG_NXTHDR(&h, cm)) {
        seen.emplace_back(cm->cmsg_level, cm->cmsg_type);
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_SEGMENT) {
          EXPECT_EQ(cm->cmsg_len, CMSG_LEN(sizeof(std::uint16_t)));
          std::memcpy(&segment, CMSG_DATA(cm), sizeof segment);
        } else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
          in_pktinfo pi{};
          std::memcpy(&pi, CMSG_DATA(cm), sizeof pi);
          source = stun::endpoint::v4(ntohl(pi.ipi_spec_dst.s_addr), 0);
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
          in6_pktinfo pi{};
          std::memcpy(&pi, CMSG_DATA(cm), sizeof pi);
          std::array<std::uint8_t, 16> ip{};
          std::memcpy(ip.data(), &pi.ipi6_addr, 16);
          source = stun::endpoint::v6(ip, 0);
        }
      }
    }
    c.segment.push_back(segment);
    c.source.push_back(source);
    c.cmsgs.push_back(std::move(seen));
    if (refused_at < 0 && segment != 0) {
      if (kernel->gso_error != 0) {
        refused_at = static_cast<int>(i);
        refused_with = kernel->gso_error;
      } else if (kernel->mtu != 0 && segment + 28u > kernel->mtu) {
        refused_at = static_cast<int>(i);
        refused_with = EINVAL;
      }
    }
  }
  const std::size_t index = kernel->calls.size();
  kernel->calls.push_back(std::move(c));
  int answer = static_cast<int>(count);
  if (index < kernel->script.size()) {
    answer = kernel->script[index];
  } else if (refused_at == 0) {
    answer = -refused_with;
  } else if (refused_at > 0) {
    answer = refused_at;
  }
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
  EXPECT_EQ(k.calls[0].messages[0], "HDR:payload-in-the-arena");
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
    // A destination each: no GSO run, so the push order is the send order.
    const auto port = static_cast<std::uint16_t>(1000 + i);
    ASSERT_EQ(q.push(fds[i], dir::to_peer, loopback(port), parts), push_result::queued);
  }
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 7u);
  EXPECT_EQ(r.calls, 3u);  // one sendmmsg per descriptor
  ASSERT_EQ(k.calls.size(), 3u);
  EXPECT_EQ(k.calls[0].fd, 3);
  EXPECT_EQ(k.calls[0].messages, (std::vector<std::string>{"3#1", "3#4"}));
  EXPECT_EQ(k.calls[1].fd, 7);
  EXPECT_EQ(k.calls[1].messages, (std::vector<std::string>{"7#0", "7#2", "7#5"}));
  EXPECT_EQ(k.calls[2].fd, 9);
  EXPECT_EQ(k.calls[2].messages, (std::vector<std::string>{"9#3", "9#6"}));
}

TEST_F(send_queue_fake, a_partial_send_is_continued_with_the_rest) {
  send_queue q(8, 256, &fake_sendmmsg);
  for (int i = 0; i < 5; ++i) {
    const std::string d = "d" + std::to_string(i);
    const std::array<stun::bytes_view, 1> parts{bytes(d)};
    q.push(4, dir::to_client, loopback(static_cast<std::uint16_t>(1 + i)), parts);
  }
  k.script = {2, 3};
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 5u);
  EXPECT_EQ(r.failed_to_client, 0u);
  ASSERT_EQ(k.calls.size(), 2u);
  EXPECT_EQ(k.calls[1].messages, (std::vector<std::string>{"d2", "d3", "d4"}));
}

TEST_F(send_queue_fake, congestion_drops_the_rest_of_the_group_and_counts_each_by_direction) {
  send_queue q(8, 256, &fake_sendmmsg);
  const std::string d = "x";
  const std::array<stun::bytes_view, 1> parts{bytes(d)};
  q.push(4, dir::to_client, loopback(1), parts);
  q.push(4, dir::to_client, loopback(2), parts);
  q.push(4, dir::to_client, loopback(3), parts);
  q.push(6, dir::to_peer, loopback(1), parts);
  q.push(6, dir::to_peer, loopback(2), parts);
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
    q.push(8, dir::to_peer, loopback(static_cast<std::uint16_t>(1 + i)), parts);
  }
  k.script = {1, -EMSGSIZE};  // p1 is too large for DF; p2 and p3 still go
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 3u);
  EXPECT_EQ(r.failed_to_peer, 1u);
  EXPECT_EQ(r.peer_error, EMSGSIZE);
  ASSERT_EQ(k.calls.size(), 3u);
  EXPECT_EQ(k.calls[2].messages, (std::vector<std::string>{"p2", "p3"}));
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

// ---- UDP GSO ----

void push_one(send_queue& q, int fd, dir d, std::uint16_t port, const std::string& data,
              const stun::endpoint* source = nullptr) {
  const std::array<stun::bytes_view, 1> parts{bytes(data)};
  ASSERT_EQ(q.push(fd, d, loopback(port), parts, source), push_result::queued);
}

using strings = std::vector<std::string>;
using segments = std::vector<std::uint16_t>;

TEST_F(send_queue_fake, equal_datagrams_to_one_destination_leave_as_one_gso_message) {
  send_queue q(16, 1024, &fake_sendmmsg);
  EXPECT_TRUE(q.gso_enabled());
  EXPECT_EQ(q.gso_max_segment(), send_queue::max_gso_bytes);
  for (int i = 0; i < 5; ++i) {
    const std::string head = "H" + std::to_string(i);
    const std::string body = "b" + std::to_string(i);
    const std::array<stun::bytes_view, 2> parts{bytes(head), bytes(body)};
    ASSERT_EQ(q.push(4, dir::to_peer, loopback(7), parts), push_result::queued);
  }
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 5u);
  EXPECT_EQ(r.calls, 1u);
  EXPECT_EQ(r.gso_messages, 1u);
  EXPECT_EQ(r.gso_datagrams, 5u);
  ASSERT_EQ(k.calls.size(), 1u);
  const call& c = k.calls[0];
  EXPECT_EQ(c.messages, strings{"H0b0H1b1H2b2H3b3H4b4"});
  EXPECT_EQ(c.iov_count, std::vector<std::size_t>{10});  // every fragment, in order
  EXPECT_EQ(c.segment, segments{4});
  EXPECT_EQ(c.port, segments{7});
  EXPECT_EQ(c.control_len, std::vector<std::size_t>{CMSG_SPACE(sizeof(std::uint16_t))});
  EXPECT_EQ(c.datagrams(), (strings{"H0b0", "H1b1", "H2b2", "H3b3", "H4b4"}));
}

TEST_F(send_queue_fake, a_shorter_datagram_ends_a_run_and_a_longer_one_starts_the_next) {
  send_queue q(16, 1024, &fake_sendmmsg);
  for (const char* d : {"aaaa", "bbbb", "cc", "dddd", "eeee", "ffffff", "g"}) {
    push_one(q, 4, dir::to_client, 7, d);
  }
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 7u);
  EXPECT_EQ(r.gso_messages, 3u);
  EXPECT_EQ(r.gso_datagrams, 7u);
  ASSERT_EQ(k.calls.size(), 1u);
  const call& c = k.calls[0];
  // "ffffff" is longer than the run of 4 it follows; "g" then joins it as its short last one.
  EXPECT_EQ(c.messages, (strings{"aaaabbbbcc", "ddddeeee", "ffffffg"}));
  EXPECT_EQ(c.segment, (segments{4, 4, 6}));
  EXPECT_EQ(c.datagrams(), (strings{"aaaa", "bbbb", "cc", "dddd", "eeee", "ffffff", "g"}));
}

TEST_F(send_queue_fake, a_single_or_empty_datagram_is_never_merged) {
  send_queue q(16, 1024, &fake_sendmmsg);
  push_one(q, 4, dir::to_client, 7, "xy");
  push_one(q, 4, dir::to_client, 7, "");
  push_one(q, 4, dir::to_client, 7, "");
  push_one(q, 4, dir::to_client, 7, "zz");
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 4u);
  EXPECT_EQ(r.gso_messages, 0u);
  ASSERT_EQ(k.calls.size(), 1u);
  EXPECT_EQ(k.calls[0].messages, (strings{"xy", "", "", "zz"}));
  EXPECT_EQ(k.calls[0].segment, (segments{0, 0, 0, 0}));
}

TEST_F(send_queue_fake, destinations_are_ordered_stably_to_form_runs) {
  send_queue q(16, 1024, &fake_sendmmsg);
  // A B A B A on fd 4, with fd 3 in between and an A on fd 3 (another socket: another destination).
  push_one(q, 4, dir::to_peer, 1, "a0");
  push_one(q, 4, dir::to_peer, 2, "b0");
  push_one(q, 3, dir::to_peer, 1, "x0");
  push_one(q, 4, dir::to_peer, 1, "a1");
  push_one(q, 4, dir::to_peer, 2, "b1");
  push_one(q, 4, dir::to_peer, 1, "a2");
  push_one(q, 4, dir::to_peer, 3, "c0");
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 7u);
  EXPECT_EQ(r.gso_messages, 2u);
  EXPECT_EQ(r.gso_datagrams, 5u);
  ASSERT_EQ(k.calls.size(), 2u);
  EXPECT_EQ(k.calls[0].fd, 3);
  EXPECT_EQ(k.calls[0].messages, strings{"x0"});
  EXPECT_EQ(k.calls[1].fd, 4);
  EXPECT_EQ(k.calls[1].messages, (strings{"a0a1a2", "b0b1", "c0"}));
  EXPECT_EQ(k.calls[1].port, (segments{1, 2, 3}));
  EXPECT_EQ(k.calls[1].segment, (segments{2, 2, 0}));
}

TEST_F(send_queue_fake, direction_and_source_address_are_part_of_the_destination) {
  send_queue q(16, 1024, &fake_sendmmsg);
  const stun::endpoint s1 = stun::endpoint::v4(0x7F000002, 0);
  const stun::endpoint s2 = stun::endpoint::v4(0x7F000003, 0);
  push_one(q, 4, dir::to_client, 1, "c0", &s1);
  push_one(q, 4, dir::to_client, 1, "c1", &s2);
  push_one(q, 4, dir::to_peer, 1, "p0", &s1);
  push_one(q, 4, dir::to_client, 1, "c2", &s1);
  push_one(q, 4, dir::to_client, 1, "n0");
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 5u);
  ASSERT_EQ(k.calls.size(), 1u);
  EXPECT_EQ(k.calls[0].messages, (strings{"c0c2", "c1", "p0", "n0"}));
  EXPECT_EQ(k.calls[0].segment, (segments{2, 0, 0, 0}));
}

TEST_F(send_queue_fake, a_merged_message_carries_pktinfo_and_udp_segment) {
  send_queue q(16, 1024, &fake_sendmmsg);
  const stun::endpoint v4_source = stun::endpoint::v4(0x7F000002, 0);
  std::array<std::uint8_t, 16> ip6{};
  ip6[0] = 0x20;
  ip6[1] = 0x01;
  ip6[15] = 0x09;
  const stun::endpoint v6_source = stun::endpoint::v6(ip6, 0);
  const stun::endpoint v6_to = stun::endpoint::v6(ip6, 5000);
  for (int i = 0; i < 3; ++i) push_one(q, 4, dir::to_client, 9, "four", &v4_source);
  for (int i = 0; i < 3; ++i) {
    const std::string d = "six-" + std::to_string(i) + "!";
    const std::array<stun::bytes_view, 1> parts{bytes(d)};
    ASSERT_EQ(q.push(4, dir::to_client, v6_to, parts, &v6_source), push_result::queued);
  }
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 6u);
  EXPECT_EQ(r.gso_messages, 2u);
  ASSERT_EQ(k.calls.size(), 1u);
  const call& c = k.calls[0];
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.segment, (segments{4, 6}));
  EXPECT_EQ(c.source[0], v4_source);
  EXPECT_EQ(c.source[1], v6_source);
  const std::vector<std::pair<int, int>> v4{{IPPROTO_IP, IP_PKTINFO}, {SOL_UDP, UDP_SEGMENT}};
  const std::vector<std::pair<int, int>> v6{{IPPROTO_IPV6, IPV6_PKTINFO}, {SOL_UDP, UDP_SEGMENT}};
  EXPECT_EQ(c.cmsgs[0], v4);
  EXPECT_EQ(c.cmsgs[1], v6);
  EXPECT_EQ(c.control_len[0], CMSG_SPACE(sizeof(in_pktinfo)) + CMSG_SPACE(sizeof(std::uint16_t)));
  EXPECT_EQ(c.control_len[1], CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(std::uint16_t)));
  EXPECT_EQ(c.datagrams(), (strings{"four", "four", "four", "six-0!", "six-1!", "six-2!"}));
}

TEST_F(send_queue_fake, a_message_holds_at_most_64_segments) {
  send_queue q(256, 4096, &fake_sendmmsg);
  strings pushed;
  for (int i = 0; i < 130; ++i) {
    std::string d = "seg" + std::to_string(1000 + i);
    pushed.push_back(d);
    push_one(q, 4, dir::to_peer, 7, d);
  }
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 130u);
  EXPECT_EQ(r.gso_messages, 3u);
  EXPECT_EQ(r.gso_datagrams, 130u);
  ASSERT_EQ(k.calls.size(), 1u);
  ASSERT_EQ(k.calls[0].messages.size(), 3u);
  EXPECT_EQ(k.calls[0].messages[0].size(), 64u * 7u);
  EXPECT_EQ(k.calls[0].messages[1].size(), 64u * 7u);
  EXPECT_EQ(k.calls[0].messages[2].size(), 2u * 7u);
  EXPECT_EQ(k.calls[0].datagrams(), pushed);
}

TEST_F(send_queue_fake, a_message_holds_at_most_65000_bytes) {
  send_queue q(128, 64, &fake_sendmmsg);
  std::string arena(100 * 1400, '\0');
  for (std::size_t i = 0; i < arena.size(); ++i) arena[i] = static_cast<char>('a' + (i / 1400) % 26);
  q.set_stable_range(reinterpret_cast<const std::byte*>(arena.data()),
                     reinterpret_cast<const std::byte*>(arena.data() + arena.size()));
  for (std::size_t i = 0; i < 100; ++i) {
    const std::array<stun::bytes_view, 1> parts{bytes(arena).subspan(i * 1400, 1400)};
    ASSERT_EQ(q.push(4, dir::to_peer, loopback(7), parts), push_result::queued);
  }
  EXPECT_EQ(q.copy_bytes_used(), 0u);
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 100u);
  EXPECT_EQ(r.gso_messages, 3u);
  ASSERT_EQ(k.calls.size(), 1u);
  const call& c = k.calls[0];
  ASSERT_EQ(c.messages.size(), 3u);
  EXPECT_EQ(c.messages[0].size(), 46u * 1400u);  // 47 would be 65800 bytes
  EXPECT_EQ(c.messages[1].size(), 46u * 1400u);
  EXPECT_EQ(c.messages[2].size(), 8u * 1400u);
  EXPECT_EQ(c.segment, (segments{1400, 1400, 1400}));
  EXPECT_EQ(c.messages[0] + c.messages[1] + c.messages[2], arena);
}

TEST_F(send_queue_fake, gso_can_be_turned_off) {
  send_queue q(16, 1024, &fake_sendmmsg);
  q.set_gso(false);
  EXPECT_FALSE(q.gso_enabled());
  push_one(q, 4, dir::to_peer, 1, "a0");
  push_one(q, 4, dir::to_peer, 2, "b0");
  push_one(q, 4, dir::to_peer, 1, "a1");
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 3u);
  EXPECT_EQ(r.gso_messages, 0u);
  ASSERT_EQ(k.calls.size(), 1u);
  EXPECT_EQ(k.calls[0].messages, (strings{"a0", "b0", "a1"}));  // push order, no cmsg
  EXPECT_EQ(k.calls[0].control_len, (std::vector<std::size_t>{0, 0, 0}));
}

TEST_F(send_queue_fake, without_kernel_support_gso_turns_off_and_the_datagrams_go_one_by_one) {
  for (const int error : {EIO, ENOPROTOOPT, EOPNOTSUPP}) {
    SCOPED_TRACE(error);
    k = fake_kernel{};
    k.gso_error = error;
    send_queue q(16, 1024, &fake_sendmmsg);
    push_one(q, 4, dir::to_client, 1, "s0");
    push_one(q, 4, dir::to_peer, 2, "x");
    push_one(q, 4, dir::to_client, 1, "s1");
    push_one(q, 4, dir::to_client, 1, "s2");
    const auto r = q.flush();
    EXPECT_EQ(r.sent, 4u);
    EXPECT_EQ(r.failed_to_client, 0u);
    EXPECT_EQ(r.gso_messages, 0u);
    EXPECT_EQ(r.client_error, 0);
    EXPECT_FALSE(q.gso_enabled());
    ASSERT_EQ(k.calls.size(), 2u);
    EXPECT_EQ(k.calls[0].messages, (strings{"s0s1s2", "x"}));
    EXPECT_EQ(k.calls[1].messages, (strings{"s0", "s1", "s2", "x"}));
    EXPECT_EQ(k.calls[1].segment, (segments{0, 0, 0, 0}));

    // Off for good: the next flush does not merge.
    push_one(q, 4, dir::to_client, 1, "t0");
    push_one(q, 4, dir::to_client, 1, "t1");
    const auto next = q.flush();
    EXPECT_EQ(next.sent, 2u);
    ASSERT_EQ(k.calls.size(), 3u);
    EXPECT_EQ(k.calls[2].messages, (strings{"t0", "t1"}));
  }
}

TEST_F(send_queue_fake, a_segment_too_large_for_the_path_lowers_the_limit_and_goes_one_by_one) {
  k.mtu = 1500;  // segments above 1472 bytes are refused with EINVAL
  send_queue q(16, 16384, &fake_sendmmsg);
  const std::string big(1480, 'B');
  const std::string small(1000, 's');
  for (int i = 0; i < 3; ++i) push_one(q, 4, dir::to_peer, 1, big);
  for (int i = 0; i < 3; ++i) push_one(q, 4, dir::to_peer, 2, small);
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 6u);
  EXPECT_EQ(r.failed_to_peer, 0u);
  EXPECT_EQ(r.gso_messages, 1u);  // the small run still went merged
  EXPECT_EQ(r.gso_datagrams, 3u);
  EXPECT_TRUE(q.gso_enabled());
  EXPECT_EQ(q.gso_max_segment(), 1479u);
  ASSERT_EQ(k.calls.size(), 2u);
  EXPECT_EQ(k.calls[0].segment, (segments{1480, 1000}));
  EXPECT_EQ(k.calls[1].segment, (segments{0, 0, 0, 1000}));
  EXPECT_EQ(k.calls[1].datagrams(), (strings{big, big, big, small, small, small}));

  // The next flush no longer merges that size; smaller ones still are.
  for (int i = 0; i < 2; ++i) push_one(q, 4, dir::to_peer, 1, big);
  for (int i = 0; i < 2; ++i) push_one(q, 4, dir::to_peer, 2, small);
  const auto next = q.flush();
  EXPECT_EQ(next.sent, 4u);
  EXPECT_EQ(next.calls, 1u);
  ASSERT_EQ(k.calls.size(), 3u);
  EXPECT_EQ(k.calls[2].segment, (segments{0, 0, 1000}));
}

TEST_F(send_queue_fake, emsgsize_on_a_merged_message_is_a_size_refusal_too) {
  send_queue q(16, 1024, &fake_sendmmsg);
  push_one(q, 4, dir::to_peer, 1, "solo");
  push_one(q, 4, dir::to_peer, 2, "m0");
  push_one(q, 4, dir::to_peer, 2, "m1");
  k.script = {1, -EMSGSIZE};
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 3u);
  EXPECT_EQ(q.gso_max_segment(), 1u);
  ASSERT_EQ(k.calls.size(), 3u);
  EXPECT_EQ(k.calls[1].messages, strings{"m0m1"});
  EXPECT_EQ(k.calls[2].messages, (strings{"m0", "m1"}));
}

TEST_F(send_queue_fake, refused_again_one_by_one_each_datagram_fails_once) {
  send_queue q(16, 1024, &fake_sendmmsg);
  for (int i = 0; i < 3; ++i) push_one(q, 4, dir::to_client, 1, "r" + std::to_string(i));
  k.script = std::vector<int>(10, -EINVAL);
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 0u);
  EXPECT_EQ(r.failed_to_client, 3u);
  EXPECT_EQ(r.client_error, EINVAL);
  EXPECT_EQ(r.calls, 4u);  // the merged message, then each datagram once
  ASSERT_EQ(k.calls.size(), 4u);
  EXPECT_EQ(k.calls[3].messages, strings{"r2"});
}

TEST_F(send_queue_fake, another_error_on_a_merged_message_drops_its_datagrams) {
  send_queue q(16, 1024, &fake_sendmmsg);
  for (int i = 0; i < 3; ++i) push_one(q, 4, dir::to_peer, 1, "u" + std::to_string(i));
  push_one(q, 4, dir::to_peer, 2, "other");
  k.script = {-ENETUNREACH};
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 1u);
  EXPECT_EQ(r.failed_to_peer, 3u);
  EXPECT_EQ(r.peer_error, ENETUNREACH);
  EXPECT_TRUE(q.gso_enabled());
  EXPECT_EQ(q.gso_max_segment(), send_queue::max_gso_bytes);
  ASSERT_EQ(k.calls.size(), 2u);
  EXPECT_EQ(k.calls[1].messages, strings{"other"});
}

TEST_F(send_queue_fake, congestion_counts_every_datagram_of_merged_messages_by_direction) {
  send_queue q(16, 1024, &fake_sendmmsg);
  for (int i = 0; i < 3; ++i) push_one(q, 4, dir::to_client, 1, "c" + std::to_string(i));
  for (int i = 0; i < 4; ++i) push_one(q, 4, dir::to_peer, 2, "p" + std::to_string(i));
  push_one(q, 4, dir::to_client, 3, "single");
  for (int i = 0; i < 2; ++i) push_one(q, 4, dir::to_client, 4, "z" + std::to_string(i));
  k.script = {1, -ENOBUFS};  // the first message goes, the socket is full at the second
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 3u);
  EXPECT_EQ(r.gso_messages, 1u);
  EXPECT_EQ(r.gso_datagrams, 3u);
  EXPECT_EQ(r.failed_to_peer, 4u);
  EXPECT_EQ(r.failed_to_client, 3u);
  EXPECT_EQ(r.client_error, 0);
  EXPECT_EQ(r.peer_error, 0);
  EXPECT_EQ(k.calls.size(), 2u);
}

TEST_F(send_queue_fake, a_partial_send_of_merged_messages_continues_with_the_rest) {
  send_queue q(16, 1024, &fake_sendmmsg);
  for (int i = 0; i < 2; ++i) push_one(q, 4, dir::to_peer, 1, "a" + std::to_string(i));
  for (int i = 0; i < 3; ++i) push_one(q, 4, dir::to_peer, 2, "b" + std::to_string(i));
  push_one(q, 4, dir::to_peer, 3, "c");
  k.script = {1, 1, 1};
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 6u);
  EXPECT_EQ(r.gso_messages, 2u);
  EXPECT_EQ(r.gso_datagrams, 5u);
  ASSERT_EQ(k.calls.size(), 3u);
  EXPECT_EQ(k.calls[1].messages, (strings{"b0b1b2", "c"}));
  EXPECT_EQ(k.calls[2].messages, strings{"c"});
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

std::string numbered(int i, std::size_t size) {
  std::string d = "#" + std::to_string(i) + ":";
  d.resize(size, static_cast<char>('a' + i % 26));
  return d;
}

TEST(send_queue, a_gso_run_arrives_as_separate_datagrams_in_order) {
  udp_fd sender(loopback());
  udp_fd receiver(loopback());
  send_queue q(64, 8192);
  strings pushed;
  for (int i = 0; i < 20; ++i) {
    pushed.push_back(numbered(i, 200));
    const std::string head = pushed.back().substr(0, 16);
    const std::string body = pushed.back().substr(16);
    const std::array<stun::bytes_view, 2> parts{bytes(head), bytes(body)};
    ASSERT_EQ(q.push(sender.fd(), send_queue::direction::to_peer, receiver.local(), parts),
              send_queue::push_result::queued);
  }
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 20u);
  EXPECT_EQ(r.failed_to_peer, 0u);
  for (int i = 0; i < 20; ++i) {
    stun::endpoint from;
    const auto d = receiver.receive(&from);
    ASSERT_TRUE(d.has_value()) << "datagram " << i;
    EXPECT_EQ(from, sender.local());
    EXPECT_EQ(*d, pushed[static_cast<std::size_t>(i)]);
  }
  if (!q.gso_enabled()) GTEST_SKIP() << "the kernel refused UDP_SEGMENT; sent without it";
  EXPECT_EQ(r.calls, 1u);
  EXPECT_EQ(r.gso_messages, 1u);
  EXPECT_EQ(r.gso_datagrams, 20u);
}

TEST(send_queue, mixed_sizes_destinations_and_sources_arrive_intact) {
  udp_fd sender(loopback());
  udp_fd wildcard(stun::endpoint::v4(0, 0));
  udp_fd first(loopback());
  udp_fd second(loopback());
  send_queue q(128, 65536);
  const stun::endpoint source = stun::endpoint::v4(0x7F000002, 0);
  const std::array<std::size_t, 12> sizes{300, 300, 300, 120, 300, 300, 1400, 1400, 1400, 7, 1, 1};
  strings to_first;
  strings to_second;
  strings from_wildcard;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    // Interleaved: each receiver's own datagrams form the runs.
    to_first.push_back(numbered(static_cast<int>(i), sizes[i]));
    to_second.push_back(numbered(static_cast<int>(100 + i), sizes[sizes.size() - 1 - i]));
    from_wildcard.push_back(numbered(static_cast<int>(200 + i), 500));
    const std::array<stun::bytes_view, 1> a{bytes(to_first.back())};
    const std::array<stun::bytes_view, 1> b{bytes(to_second.back())};
    const std::array<stun::bytes_view, 1> w{bytes(from_wildcard.back())};
    ASSERT_EQ(q.push(sender.fd(), send_queue::direction::to_peer, first.local(), a), push_result::queued);
    ASSERT_EQ(q.push(sender.fd(), send_queue::direction::to_peer, second.local(), b), push_result::queued);
    ASSERT_EQ(q.push(wildcard.fd(), send_queue::direction::to_client, second.local(), w, &source),
              push_result::queued);
  }
  const auto r = q.flush();
  EXPECT_EQ(r.sent, 3 * sizes.size());
  EXPECT_EQ(r.failed_to_peer + r.failed_to_client, 0u);

  strings got_first;
  strings got_second;
  strings got_wildcard;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const auto d = first.receive();
    ASSERT_TRUE(d.has_value());
    got_first.push_back(*d);
  }
  for (std::size_t i = 0; i < 2 * sizes.size(); ++i) {
    stun::endpoint from;
    const auto d = second.receive(&from);
    ASSERT_TRUE(d.has_value());
    if (from == sender.local()) {
      got_second.push_back(*d);
    } else {
      EXPECT_EQ(from.ip, source.ip);
      EXPECT_EQ(from.port, wildcard.local().port);
      got_wildcard.push_back(*d);
    }
  }
  EXPECT_EQ(got_first, to_first);
  EXPECT_EQ(got_second, to_second);
  EXPECT_EQ(got_wildcard, from_wildcard);
  if (!q.gso_enabled()) GTEST_SKIP() << "the kernel refused UDP_SEGMENT; sent without it";
  // first: 300x3+120 | 300x2 | 1400x3+7 | 1x2; second: 1x2 | 7 alone | 1400x3+300 | 300+120 |
  // 300x3; the wildcard's twelve, with PKTINFO: one message.
  EXPECT_EQ(r.gso_messages, 4u + 4u + 1u);
  EXPECT_EQ(r.gso_datagrams, (4u + 2 + 4 + 2) + (2 + 4 + 2 + 3) + 12);
  EXPECT_EQ(r.calls, 2u);
}

}  // namespace
}  // namespace anyturn::net
