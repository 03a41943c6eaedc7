// The drain target as a seqlock over atomic words (fleet_signals.hpp).
//
// Every word is a std::atomic, so a reader that races a writer reads torn
// values but never undefined ones; the sequence tells it to retry. A reader
// never waits on a lock, and a writer never waits on a reader.
#include <anyturn/turn/fleet_signals.hpp>

#include <cstring>
#include <thread>

namespace anyturn::turn {

namespace {

// words_ layout:
//   [0] bit 0: a target is set, bit 1: v4 set, bit 2: v6 set;
//       bits 16-31 udp_port, 32-47 tcp_port, 48-63 tls_port
//   [1] the IPv4 address (its 4 bytes, network order, in the low bytes)
//   [2] [3] the IPv6 address (16 bytes, network order)
//   [4] [5] unused
constexpr std::uint64_t has_target = 1;
constexpr std::uint64_t has_v4 = 2;
constexpr std::uint64_t has_v6 = 4;

std::uint64_t load_ip_word(const std::array<std::uint8_t, 16>& ip, std::size_t offset) {
  std::uint64_t w = 0;
  std::memcpy(&w, ip.data() + offset, sizeof w);
  return w;
}

void store_ip_word(std::array<std::uint8_t, 16>& ip, std::size_t offset, std::uint64_t w) {
  std::memcpy(ip.data() + offset, &w, sizeof w);
}

}  // namespace

void fleet_signals::set_drain_target(const std::optional<alternate_node>& target) noexcept {
  std::array<std::uint64_t, 6> packed{};
  if (target) {
    packed[0] = has_target | (std::uint64_t{target->udp_port} << 16) |
                (std::uint64_t{target->tcp_port} << 32) | (std::uint64_t{target->tls_port} << 48);
    if (target->v4 && target->v4->is_v4()) {
      packed[0] |= has_v4;
      packed[1] = load_ip_word(target->v4->ip, 0);
    }
    if (target->v6 && !target->v6->is_v4()) {
      packed[0] |= has_v6;
      packed[2] = load_ip_word(target->v6->ip, 0);
      packed[3] = load_ip_word(target->v6->ip, 8);
    }
  }
  // Writers take turns (rare, short: a drain, a directory update).
  while (writer_.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
  const std::uint32_t seq = sequence_.load(std::memory_order_relaxed);
  sequence_.store(seq + 1, std::memory_order_relaxed);  // odd: an update is under way
  // Release: a reader that loads one of these words (acquire) also sees the
  // odd sequence stored before it, so its second look tells it to retry.
  // (No fences: ThreadSanitizer models acquire/release, not fences.)
  for (std::size_t i = 0; i < packed.size(); ++i) words_[i].store(packed[i], std::memory_order_release);
  sequence_.store(seq + 2, std::memory_order_release);  // even again: the words before it
  writer_.clear(std::memory_order_release);
}

std::optional<alternate_node> fleet_signals::drain_target() const noexcept {
  std::array<std::uint64_t, 6> packed{};
  for (;;) {
    const std::uint32_t before = sequence_.load(std::memory_order_acquire);
    if ((before & 1U) != 0) {
      std::this_thread::yield();
      continue;
    }
    // Acquire: the second look at the sequence comes after the words.
    for (std::size_t i = 0; i < packed.size(); ++i) packed[i] = words_[i].load(std::memory_order_acquire);
    if (sequence_.load(std::memory_order_relaxed) == before) break;
  }
  if ((packed[0] & has_target) == 0) return std::nullopt;
  alternate_node out;
  out.udp_port = static_cast<std::uint16_t>(packed[0] >> 16);
  out.tcp_port = static_cast<std::uint16_t>(packed[0] >> 32);
  out.tls_port = static_cast<std::uint16_t>(packed[0] >> 48);
  if ((packed[0] & has_v4) != 0) {
    stun::endpoint v4;
    v4.family = stun::address_family::ipv4;
    std::array<std::uint8_t, 16> ip{};
    store_ip_word(ip, 0, packed[1]);
    std::memcpy(v4.ip.data(), ip.data(), 4);
    out.v4 = v4;
  }
  if ((packed[0] & has_v6) != 0) {
    stun::endpoint v6;
    v6.family = stun::address_family::ipv6;
    store_ip_word(v6.ip, 0, packed[2]);
    store_ip_word(v6.ip, 8, packed[3]);
    out.v6 = v6;
  }
  return out;
}

}  // namespace anyturn::turn
