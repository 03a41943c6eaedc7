// anyturn::common — one keyed hash for every table whose keys the network chooses.
//
// Clients and peers pick their addresses, ports, usernames and transaction
// ids, so a table hashed with a fixed function can be flooded with keys that
// all collide. Every such table (the 5-tuple index, the owner directory, the
// retransmission cache, the connection and user quotas, the send queue's
// destination index) hashes with SipHash-1-3 under a 128-bit key drawn once
// per process from the kernel's random source. Without the key nobody can
// predict which keys collide. The key is the same in every worker, so a
// hash computed on one worker means the same on another (owner directory).
//
// Inputs are fed as 64-bit words (`add`) or bytes (`add_bytes`); the hasher
// lives on the stack and never allocates.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace anyturn::common {

struct hash_key {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
};

// The process's key: random, drawn at first use (thread-safe), never changed.
const hash_key& process_hash_key();

// SipHash-c-d (Aumasson and Bernstein) over the byte stream fed to it.
// `add` feeds one 64-bit word as 8 little-endian bytes (fast when the bytes
// so far are a multiple of 8). The result is exactly SipHash of the stream,
// which the unit test checks against the reference vectors of SipHash-2-4.
template <int C, int D>
class basic_sip_hasher {
 public:
  basic_sip_hasher() : basic_sip_hasher(process_hash_key()) {}
  explicit basic_sip_hasher(const hash_key& key)
      : v0_(key.k0 ^ 0x736f6d6570736575ULL),
        v1_(key.k1 ^ 0x646f72616e646f6dULL),
        v2_(key.k0 ^ 0x6c7967656e657261ULL),
        v3_(key.k1 ^ 0x7465646279746573ULL) {}

  basic_sip_hasher& add(std::uint64_t word) {
    if (tail_len_ == 0) {
      compress(word);
      bytes_ += 8;
      return *this;
    }
    return add_bytes(&word, sizeof word);
  }

  basic_sip_hasher& add_bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    bytes_ += n;
    while (n > 0 && tail_len_ != 0) {  // complete a pending word first
      tail_ |= std::uint64_t{*p++} << (8 * tail_len_);
      --n;
      if (++tail_len_ == 8) {
        compress(tail_);
        tail_ = 0;
        tail_len_ = 0;
      }
    }
    for (; n >= 8; n -= 8, p += 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, p, 8);
      if constexpr (std::endian::native == std::endian::big) w = byteswap(w);
      compress(w);
    }
    for (; n > 0; --n) tail_ |= std::uint64_t{*p++} << (8 * tail_len_++);
    return *this;
  }
  basic_sip_hasher& add_bytes(std::string_view s) { return add_bytes(s.data(), s.size()); }

  [[nodiscard]] std::uint64_t finish() const {
    std::uint64_t v0 = v0_, v1 = v1_, v2 = v2_, v3 = v3_;
    const std::uint64_t last = (bytes_ << 56) | tail_;
    v3 ^= last;
    for (int i = 0; i < C; ++i) sip_round(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xFF;
    for (int i = 0; i < D; ++i) sip_round(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
  }

 private:
  static constexpr std::uint64_t byteswap(std::uint64_t x) {
    std::uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r = (r << 8) | ((x >> (8 * i)) & 0xFF);
    return r;
  }
  static void sip_round(std::uint64_t& v0, std::uint64_t& v1, std::uint64_t& v2,
                        std::uint64_t& v3) {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }
  void compress(std::uint64_t m) {
    v3_ ^= m;
    for (int i = 0; i < C; ++i) sip_round(v0_, v1_, v2_, v3_);
    v0_ ^= m;
  }

  std::uint64_t v0_, v1_, v2_, v3_;
  std::uint64_t bytes_ = 0;  // fed so far
  std::uint64_t tail_ = 0;   // bytes past the last whole word, little-endian
  unsigned tail_len_ = 0;
};

// The hash every network-keyed table uses: SipHash-1-3, the variant Rust's
// standard HashMap uses, under the process key.
using keyed_hasher = basic_sip_hasher<1, 3>;
using siphash24 = basic_sip_hasher<2, 4>;  // the reference variant, for its test vectors

// One-shot forms.
inline std::uint64_t keyed_hash(const void* data, std::size_t n) {
  return keyed_hasher().add_bytes(data, n).finish();
}
inline std::uint64_t keyed_hash(std::string_view s) { return keyed_hash(s.data(), s.size()); }

}  // namespace anyturn::common
