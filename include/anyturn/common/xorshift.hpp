// anyturn::common — a xorshift64 generator for choices nobody gains by
// predicting: which free relay port to try first, the transaction id of a
// Data indication. Not for secrets (keys, nonces: those come from OpenSSL).
#pragma once

#include <cstdint>

namespace anyturn::common {

struct xorshift64 {
  std::uint64_t state;  // never 0

  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
};

}  // namespace anyturn::common
