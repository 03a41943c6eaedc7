// anyturn::http — the browser self-test page (http.test_page, docs/probe.md).
//
// GET /test serves one self-contained HTML page (inline CSS and JS, no
// external asset, a strict Content-Security-Policy). The page gets TURN
// credentials either with a one-time link token (POST /admin/test-link
// makes one; POST /test/credentials spends it) or with a tenant API key the
// user pastes (the credentials API). It then runs one relay-only
// RTCPeerConnection loopback check per TURN transport and shows the result.
//
// `test_links` is the server-side table of link tokens: only their SHA-256
// digests are kept, each lives 10 minutes and can be spent once, and at most
// `max_live` are live at a time. It is a pure function of the time passed
// in (the api's injected clock) and thread-safe (one mutex; HTTP threads
// only, never a relay worker).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::http {

class test_links {
 public:
  static constexpr std::int64_t lifetime_s = 600;
  static constexpr std::size_t max_live = 64;
  // Spent or expired tokens remembered (for the "reused"/"expired" answers)
  // until they are a lifetime past their expiry, at most this many.
  static constexpr std::size_t max_remembered = 256;
  static constexpr std::size_t token_bytes = 32;  // the token is 64 hex digits

  enum class outcome { redeemed, expired, reused, invalid };

  struct totals {
    std::uint64_t issued = 0;
    std::uint64_t redeemed = 0;
    std::uint64_t expired = 0;
    std::uint64_t reused = 0;
    std::uint64_t invalid = 0;
    std::uint64_t refused = 0;  // issue() while max_live were live
  };

  // A new token (OpenSSL RAND_bytes, hex), valid from `now` for lifetime_s,
  // or nullopt when max_live tokens are live already. Throws
  // std::runtime_error if RAND_bytes fails.
  std::optional<std::string> issue(std::int64_t now);
  // Spends `token`: redeemed the first time within its lifetime; expired
  // after it; reused when already spent; invalid when it was never issued
  // (or has been forgotten). Compares digests in constant time.
  outcome redeem(std::string_view token, std::int64_t now);
  // Tokens issued and neither spent nor expired.
  [[nodiscard]] std::size_t live(std::int64_t now) const;
  [[nodiscard]] totals counts() const;

 private:
  struct entry {
    std::array<std::uint8_t, 32> digest;
    std::int64_t expires;
    bool spent;
  };
  void forget_old(std::int64_t now);  // under mutex_
  std::size_t live_locked(std::int64_t now) const;

  mutable std::mutex mutex_;
  std::vector<entry> entries_;
  totals totals_;
};

// The page, and the Content-Security-Policy sent with it (its script is
// allowed by its SHA-256 hash, nothing else is loaded).
std::string_view test_page_html();
std::string_view test_page_csp();

}  // namespace anyturn::http
