#include <anyturn/common/keyed_hash.hpp>

#include <sys/random.h>

#include <chrono>
#include <cstdio>
#include <cerrno>

namespace anyturn::common {

namespace {

hash_key draw_key() {
  hash_key k;
  std::uint64_t words[2] = {0, 0};
  std::size_t got = 0;
  while (got < sizeof words) {
    const ssize_t n = ::getrandom(reinterpret_cast<char*>(words) + got, sizeof words - got, 0);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      // No kernel randomness (pre-3.17 kernel or a seccomp filter): the hash
      // still works, only its collisions become predictable. Say so.
      std::fprintf(stderr, "anyturn: getrandom failed; hash tables use a time-derived key\n");
      const auto t = static_cast<std::uint64_t>(
          std::chrono::steady_clock::now().time_since_epoch().count());
      words[0] = t * 0x9E3779B97F4A7C15ULL;
      words[1] = ~t * 0xC2B2AE3D27D4EB4FULL;
      break;
    }
  }
  k.k0 = words[0];
  k.k1 = words[1];
  return k;
}

}  // namespace

const hash_key& process_hash_key() {
  static const hash_key key = draw_key();
  return key;
}

}  // namespace anyturn::common
