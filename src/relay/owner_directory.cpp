#include <anyturn/relay/owner_directory.hpp>

#include <algorithm>
#include <bit>

namespace anyturn::relay {

owner_directory::owner_directory(std::size_t capacity)
    : mask_(std::bit_ceil(std::max(capacity, max_probe)) - 1),
      slots_(std::make_unique<std::atomic<std::uint64_t>[]>(mask_ + 1)) {
  for (std::size_t i = 0; i <= mask_; ++i) slots_[i].store(empty, std::memory_order_relaxed);
}

std::size_t owner_directory::capacity_for(std::size_t max_allocations) {
  return std::bit_ceil(std::max<std::size_t>(max_allocations * 2, max_probe));
}

// Live entries have a non-zero hash, so they never equal empty or tombstone.
// Keys are keyed hashes already (handoff_group::key_of): no mixing needed.
std::uint64_t owner_directory::hash56(std::uint64_t key) noexcept {
  const std::uint64_t h = key & ((std::uint64_t{1} << 56) - 1);
  return h == 0 ? 1 : h;
}

bool owner_directory::insert(std::uint64_t key, unsigned owner) noexcept {
  if (owner >= max_owners) return false;
  const std::uint64_t h = hash56(key);
  const std::uint64_t entry = h << 8 | owner;
  const std::size_t start = static_cast<std::size_t>(h) & mask_;
  for (;;) {
    // An existing entry for the key is updated in place, so a key has one
    // entry (barring two workers inserting it at the same moment).
    std::size_t free_slot = max_probe;
    bool retry = false;
    for (std::size_t i = 0; i < max_probe; ++i) {
      auto& slot = slots_[(start + i) & mask_];
      std::uint64_t v = slot.load(std::memory_order_acquire);
      if (v == empty) {
        if (free_slot == max_probe) free_slot = i;
        break;
      }
      if (v == tombstone) {
        if (free_slot == max_probe) free_slot = i;
        continue;
      }
      if (v >> 8 == h) {
        while (v >> 8 == h) {
          if (slot.compare_exchange_weak(v, entry, std::memory_order_acq_rel)) return true;
        }
        retry = true;  // erased meanwhile: start over
        break;
      }
    }
    if (retry) continue;
    if (free_slot == max_probe) return false;
    auto& slot = slots_[(start + free_slot) & mask_];
    std::uint64_t v = slot.load(std::memory_order_acquire);
    if ((v == empty || v == tombstone) &&
        slot.compare_exchange_strong(v, entry, std::memory_order_acq_rel)) {
      return true;
    }
    // Somebody took the slot: look again.
  }
}

bool owner_directory::erase(std::uint64_t key, unsigned owner) noexcept {
  if (owner >= max_owners) return false;
  const std::uint64_t h = hash56(key);
  const std::uint64_t entry = h << 8 | owner;
  const std::size_t start = static_cast<std::size_t>(h) & mask_;
  for (std::size_t i = 0; i < max_probe; ++i) {
    auto& slot = slots_[(start + i) & mask_];
    std::uint64_t v = slot.load(std::memory_order_acquire);
    if (v == empty) return false;
    if (v == entry) {
      return slot.compare_exchange_strong(v, tombstone, std::memory_order_acq_rel);
    }
  }
  return false;
}

std::optional<unsigned> owner_directory::lookup(std::uint64_t key) const noexcept {
  const std::uint64_t h = hash56(key);
  const std::size_t start = static_cast<std::size_t>(h) & mask_;
  for (std::size_t i = 0; i < max_probe; ++i) {
    const std::uint64_t v = slots_[(start + i) & mask_].load(std::memory_order_acquire);
    if (v == empty) return std::nullopt;
    if (v != tombstone && v >> 8 == h) return static_cast<unsigned>(v & 0xFF);
  }
  return std::nullopt;
}

}  // namespace anyturn::relay
