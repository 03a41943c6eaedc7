#include <anyturn/net/byte_ring.hpp>

#include <algorithm>
#include <cstring>

namespace anyturn::net {

byte_ring::byte_ring(std::size_t limit, std::size_t initial)
    : limit_(std::max<std::size_t>(limit, 1)), initial_(std::clamp<std::size_t>(initial, 1, limit_)) {}

bool byte_ring::append(std::span<const stun::bytes_view> fragments,
                       std::unique_ptr<std::byte[]>& retired) {
  std::size_t total = 0;
  for (const auto& f : fragments) total += f.size();
  if (total > limit_ - size_) return false;
  if (total == 0) return true;

  if (size_ + total > capacity_) {
    const std::size_t grown = capacity_after(total);
    auto fresh = std::make_unique<std::byte[]>(grown);
    // Linearise: the oldest byte goes to offset 0.
    const segments old = readable();
    // (memcpy from the null data of an empty first block is undefined.)
    if (!old.first.empty()) std::memcpy(fresh.get(), old.first.data(), old.first.size());
    if (!old.second.empty()) {
      std::memcpy(fresh.get() + old.first.size(), old.second.data(), old.second.size());
    }
    // An already retired block is the one a write points into; the current
    // one is then unreferenced and simply freed.
    if (storage_ && !retired) retired = std::move(storage_);
    storage_ = std::move(fresh);
    capacity_ = grown;
    head_ = 0;
  }
  for (const auto& f : fragments) copy_in(f.data(), f.size());
  return true;
}

void byte_ring::set_limit(std::size_t limit) {
  limit_ = std::max<std::size_t>({limit, size_, 1});
}

std::size_t byte_ring::capacity_after(std::size_t bytes) const {
  if (size_ + bytes <= capacity_) return capacity_;
  std::size_t grown = std::max(capacity_, initial_);
  while (grown < size_ + bytes) grown *= 2;
  return std::min(grown, limit_);
}

void byte_ring::copy_in(const std::byte* data, std::size_t n) {
  if (n == 0) return;
  std::size_t tail = head_ + size_;
  if (tail >= capacity_) tail -= capacity_;
  const std::size_t first = std::min(n, capacity_ - tail);
  std::memcpy(storage_.get() + tail, data, first);
  if (first < n) std::memcpy(storage_.get(), data + first, n - first);
  size_ += n;
}

byte_ring::segments byte_ring::readable() const {
  segments s;
  if (size_ == 0) return s;
  const std::size_t first = std::min(size_, capacity_ - head_);
  s.first = {storage_.get() + head_, first};
  if (first < size_) s.second = {storage_.get(), size_ - first};
  return s;
}

void byte_ring::consume(std::size_t n) {
  n = std::min(n, size_);
  size_ -= n;
  head_ = size_ == 0 ? 0 : (head_ + n) % capacity_;
}

}  // namespace anyturn::net
