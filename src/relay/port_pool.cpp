#include <anyturn/relay/port_pool.hpp>

#include <algorithm>
#include <bit>
#include <random>

namespace anyturn::relay {

namespace {
constexpr std::uint64_t bit_of(std::uint32_t index) { return std::uint64_t{1} << (index % 64); }

// SplitMix64: turns a counter into well-spread reservation nonces.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Monotonic whole seconds (cool-downs are tens of seconds; 32 bits last
// 136 years of uptime).
std::uint32_t seconds_floor(std::int64_t ms) {
  return ms <= 0 ? 0u : static_cast<std::uint32_t>(ms / 1000);
}
std::uint32_t seconds_ceil(std::int64_t ms) {
  return ms <= 0 ? 0u : static_cast<std::uint32_t>((ms + 999) / 1000);
}
}  // namespace

port_pool::port_pool(std::uint16_t low, std::uint16_t high, std::int64_t cooldown_ms)
    : low_(low), high_(high < low ? low : high), cooldown_ms_(std::max<std::int64_t>(cooldown_ms, 0)),
      words_((capacity() + 63) / 64) {
  bits_ = std::make_unique<std::atomic<std::uint64_t>[]>(words_);
  reservation_ = std::make_unique<std::atomic<std::uint32_t>[]>(capacity());
  cooling_ = std::make_unique<std::atomic<std::uint64_t>[]>(words_);
  cooling_until_s_ = std::make_unique<std::atomic<std::uint32_t>[]>(capacity());
  for (std::size_t w = 0; w < words_; ++w) {
    bits_[w].store(0, std::memory_order_relaxed);
    cooling_[w].store(0, std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < capacity(); ++i) {
    reservation_[i].store(0, std::memory_order_relaxed);
    cooling_until_s_[i].store(0, std::memory_order_relaxed);
  }
  // Bits past the end of the range are permanently "in use".
  const std::size_t tail = capacity() % 64;
  if (tail != 0) bits_[words_ - 1].store(~std::uint64_t{0} << tail, std::memory_order_relaxed);
  std::random_device rd;
  nonce_counter_.store(rd(), std::memory_order_relaxed);
}

bool port_pool::held(std::uint16_t port) const noexcept {
  if (port < low_ || port > high_) return false;
  const std::uint32_t i = port - low_;
  return (bits_[i / 64].load(std::memory_order_relaxed) & bit_of(i)) != 0;
}

std::size_t port_pool::in_use() const {
  std::size_t n = 0;
  for (std::size_t w = 0; w < words_; ++w)
    n += static_cast<std::size_t>(std::popcount(bits_[w].load(std::memory_order_relaxed)));
  const std::size_t tail = capacity() % 64;
  if (tail != 0) n -= 64 - tail;
  return n;
}

bool port_pool::try_set(std::uint32_t index) {
  auto& word = bits_[index / 64];
  std::uint64_t cur = word.load(std::memory_order_relaxed);
  while ((cur & bit_of(index)) == 0) {
    if (word.compare_exchange_weak(cur, cur | bit_of(index), std::memory_order_acq_rel,
                                   std::memory_order_relaxed))
      return true;
  }
  return false;
}

std::size_t port_pool::cooling() const {
  std::size_t n = 0;
  for (std::size_t w = 0; w < words_; ++w)
    n += static_cast<std::size_t>(std::popcount(cooling_[w].load(std::memory_order_relaxed)));
  return n;
}

// A race with refuse() on the same port (claimed, refused again between the
// load of its expiry and the clearing of its bit) can end a fresh cool-down
// early; the cost is one more refused bind, never a port handed out twice.
std::uint64_t port_pool::cooling_mask(std::size_t w, std::uint64_t candidates, std::uint32_t now_s) {
  std::uint64_t still = 0;
  while (candidates != 0) {
    const int bit = std::countr_zero(candidates);
    const std::uint64_t b = std::uint64_t{1} << bit;
    candidates &= candidates - 1;
    const std::size_t i = w * 64 + static_cast<std::size_t>(bit);
    if (now_s >= cooling_until_s_[i].load(std::memory_order_acquire)) {
      cooling_[w].fetch_and(~b, std::memory_order_acq_rel);
    } else {
      still |= b;
    }
  }
  return still;
}

std::optional<std::uint16_t> port_pool::acquire(std::uint32_t hint, std::int64_t now_ms) {
  const std::uint32_t now_s = seconds_floor(now_ms);
  const std::size_t start = hint % words_;
  for (std::size_t n = 0; n < words_; ++n) {
    const std::size_t w = (start + n) % words_;
    // The claim bits first: refuse() sets the cooling bit before it clears
    // the claim, so a port seen free here is seen cooling below if it is.
    std::uint64_t cur = bits_[w].load(std::memory_order_acquire);
    while (cur != ~std::uint64_t{0}) {
      const std::uint64_t cool = cooling_[w].load(std::memory_order_acquire);
      std::uint64_t avail = ~(cur | cool);
      if (avail == 0) {
        // Only cooling ports are free here: let those whose time is up back in.
        const std::uint64_t waiting = cool & ~cur;
        avail = waiting & ~cooling_mask(w, waiting, now_s);
        if (avail == 0) break;
      }
      const int bit = std::countr_zero(avail);
      if (bits_[w].compare_exchange_weak(cur, cur | (std::uint64_t{1} << bit),
                                         std::memory_order_acq_rel, std::memory_order_acquire))
        return static_cast<std::uint16_t>(low_ + w * 64 + static_cast<std::size_t>(bit));
    }
  }
  return std::nullopt;
}

std::optional<std::uint16_t> port_pool::acquire_even(std::uint32_t hint, bool reserve_next,
                                                     std::uint64_t& token, std::int64_t now_ms) {
  token = 0;
  const std::uint32_t now_s = seconds_floor(now_ms);
  auto cooling_now = [&](std::uint32_t i) {
    if ((cooling_[i / 64].load(std::memory_order_acquire) & bit_of(i)) == 0) return false;
    return cooling_mask(i / 64, bit_of(i), now_s) != 0;
  };
  const std::uint32_t first_even = (low_ % 2 == 0) ? low_ : low_ + 1u;
  if (first_even + 1u > high_) return std::nullopt;
  const std::uint32_t pairs = (std::uint32_t{high_} - first_even + 1u) / 2u;
  const std::uint32_t start = hint % pairs;
  for (std::uint32_t n = 0; n < pairs; ++n) {
    const std::uint32_t port = first_even + 2u * ((start + n) % pairs);
    const std::uint32_t i = port - low_;
    // Cheap pre-check before any CAS.
    if ((bits_[i / 64].load(std::memory_order_relaxed) & bit_of(i)) != 0) continue;
    if ((bits_[(i + 1) / 64].load(std::memory_order_relaxed) & bit_of(i + 1)) != 0) continue;
    if (cooling_now(i) || cooling_now(i + 1)) continue;
    if (!try_set(i)) continue;
    if (!try_set(i + 1)) {
      release(static_cast<std::uint16_t>(port));
      continue;
    }
    if (reserve_next) {
      std::uint32_t nonce = 0;
      while (nonce == 0)
        nonce = static_cast<std::uint32_t>(mix(nonce_counter_.fetch_add(1, std::memory_order_relaxed)));
      reservation_[i + 1].store(nonce, std::memory_order_release);
      token = (std::uint64_t{nonce} << 16) | (port + 1u);
    } else {
      release(static_cast<std::uint16_t>(port + 1u));
    }
    return static_cast<std::uint16_t>(port);
  }
  return std::nullopt;
}

std::optional<std::uint16_t> port_pool::redeem(std::uint64_t token) {
  const auto port = static_cast<std::uint16_t>(token & 0xFFFF);
  auto nonce = static_cast<std::uint32_t>((token >> 16) & 0xFFFFFFFFu);
  if (nonce == 0 || port < low_ || port > high_) return std::nullopt;
  // Whoever swaps the nonce out owns the (already claimed) port.
  if (!reservation_[port - low_].compare_exchange_strong(nonce, 0, std::memory_order_acq_rel))
    return std::nullopt;
  return port;
}

void port_pool::cancel(std::uint64_t token) {
  if (auto port = redeem(token)) release(*port);
}

bool port_pool::acquire_exact(std::uint16_t port) {
  if (port < low_ || port > high_) return false;
  return try_set(port - low_);
}

void port_pool::release(std::uint16_t port) {
  if (port < low_ || port > high_) return;
  const std::uint32_t i = port - low_;
  bits_[i / 64].fetch_and(~bit_of(i), std::memory_order_acq_rel);
}

void port_pool::refuse(std::uint16_t port, std::int64_t now_ms) {
  if (port < low_ || port > high_) return;
  const std::uint32_t i = port - low_;
  if (cooldown_ms_ == 0) return release(port);
  // Cooling before free: acquire() never sees the port free and not cooling.
  cooling_until_s_[i].store(seconds_ceil(now_ms + cooldown_ms_), std::memory_order_release);
  cooling_[i / 64].fetch_or(bit_of(i), std::memory_order_acq_rel);
  bits_[i / 64].fetch_and(~bit_of(i), std::memory_order_acq_rel);
}

}  // namespace anyturn::relay
