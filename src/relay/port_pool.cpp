#include <anyturn/relay/port_pool.hpp>

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
}  // namespace

port_pool::port_pool(std::uint16_t low, std::uint16_t high)
    : low_(low), high_(high < low ? low : high), words_((capacity() + 63) / 64) {
  bits_ = std::make_unique<std::atomic<std::uint64_t>[]>(words_);
  reservation_ = std::make_unique<std::atomic<std::uint32_t>[]>(capacity());
  for (std::size_t w = 0; w < words_; ++w) bits_[w].store(0, std::memory_order_relaxed);
  for (std::size_t i = 0; i < capacity(); ++i) reservation_[i].store(0, std::memory_order_relaxed);
  // Bits past the end of the range are permanently "in use".
  const std::size_t tail = capacity() % 64;
  if (tail != 0) bits_[words_ - 1].store(~std::uint64_t{0} << tail, std::memory_order_relaxed);
  std::random_device rd;
  nonce_counter_.store(rd(), std::memory_order_relaxed);
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

std::optional<std::uint16_t> port_pool::acquire(std::uint32_t hint) {
  const std::size_t start = hint % words_;
  for (std::size_t n = 0; n < words_; ++n) {
    const std::size_t w = (start + n) % words_;
    std::uint64_t cur = bits_[w].load(std::memory_order_relaxed);
    while (cur != ~std::uint64_t{0}) {
      const int bit = std::countr_one(cur);
      if (bits_[w].compare_exchange_weak(cur, cur | (std::uint64_t{1} << bit),
                                         std::memory_order_acq_rel, std::memory_order_relaxed))
        return static_cast<std::uint16_t>(low_ + w * 64 + static_cast<std::size_t>(bit));
    }
  }
  return std::nullopt;
}

std::optional<std::uint16_t> port_pool::acquire_even(std::uint32_t hint, bool reserve_next,
                                                     std::uint64_t& token) {
  token = 0;
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

}  // namespace anyturn::relay
