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

// Writers use sequentially consistent operations where they meet: an
// insert stores its entry, then reads the slots before it; a reclaim marks
// its slot, then reads the slot after it. Of two such writers at least one
// sees the other's store, and backs off.
bool owner_directory::insert(std::uint64_t key, unsigned owner) noexcept {
  if (owner >= max_owners) return false;
  const std::uint64_t h = hash56(key);
  const std::uint64_t entry = h << 8 | owner;
  const std::size_t start = static_cast<std::size_t>(h) & mask_;
  // Each new round means another writer reclaimed a slot in our window at
  // that very moment; the bound only guards against a pathological storm.
  for (int round = 0; round < 1000; ++round) {
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
      if (is_mark(v)) continue;  // about to be empty or a tombstone again
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
    const std::size_t index = (start + free_slot) & mask_;
    auto& slot = slots_[index];
    std::uint64_t v = slot.load(std::memory_order_acquire);
    if ((v == empty || v == tombstone) &&
        slot.compare_exchange_strong(v, entry, std::memory_order_seq_cst)) {
      if (secure_path(start, free_slot)) return true;
      // A slot before ours was emptied while we chose: a lookup would stop
      // there. Take the entry back and place it again.
      std::uint64_t mine = entry;
      if (slot.compare_exchange_strong(mine, tombstone, std::memory_order_seq_cst)) reclaim(start, index);
    }
    // Somebody took the slot, or emptied one before it: look again.
  }
  return false;
}

bool owner_directory::secure_path(std::size_t start, std::size_t distance) noexcept {
  for (std::size_t i = 0; i < distance; ++i) {
    auto& slot = slots_[(start + i) & mask_];
    std::uint64_t v = slot.load(std::memory_order_seq_cst);
    // Cancel a reclaim in progress: the slot stays a tombstone, which our
    // entry's path needs. A failed CAS reloads v (emptied, reused, ...).
    while (is_mark(v) && !slot.compare_exchange_strong(v, tombstone, std::memory_order_seq_cst)) {
    }
    if (v == empty) return false;
  }
  return true;
}

// True when a live entry after `index` has its home slot at or before it,
// so that a lookup for it passes through `index`. Entries sit within
// max_probe slots of their home, and a lookup stops at an empty slot, so the
// scan stops there too (an insert racing past that empty slot re-checks its
// own path and tries again).
bool owner_directory::crossed(std::size_t index) const noexcept {
  for (std::size_t d = 1; d < max_probe; ++d) {
    const std::size_t at = (index + d) & mask_;
    const std::uint64_t v = slots_[at].load(std::memory_order_seq_cst);
    if (v == empty) return false;
    if (v == tombstone || is_mark(v)) continue;
    const std::size_t home = static_cast<std::size_t>(v >> 8) & mask_;
    if (((at - home) & mask_) >= d) return true;
  }
  return false;
}

bool owner_directory::try_reclaim(std::size_t index) noexcept {
  auto& slot = slots_[index & mask_];
  const std::uint64_t mark =
      (mark_tokens_.fetch_add(1, std::memory_order_relaxed) << 8) | mark_owner;
  // A few rounds at most: each one means an entry after this slot was
  // erased while we looked.
  for (int round = 0; round < 8; ++round) {
    std::uint64_t v = tombstone;
    if (!slot.compare_exchange_strong(v, mark, std::memory_order_seq_cst)) return false;
    if (!crossed(index)) {
      v = mark;
      // Fails only if an insert cancelled the mark: its entry needs the
      // tombstone, and erasing that entry reclaims it later.
      return slot.compare_exchange_strong(v, empty, std::memory_order_seq_cst);
    }
    v = mark;
    if (!slot.compare_exchange_strong(v, tombstone, std::memory_order_seq_cst)) return false;
    // The entry that crossed may have been erased while the slot was
    // marked, and its eraser then skipped the slot: look once more now that
    // it is a tombstone again.
    if (crossed(index)) return false;
  }
  return false;
}

void owner_directory::reclaim(std::size_t home, std::size_t index) noexcept {
  // The tombstone at `index`, and those on the path from `home` that only
  // the entry just removed from `index` passed through. Backwards, so a
  // later tombstone is empty before an earlier one is checked.
  const std::size_t distance = (index - home) & mask_;
  for (std::size_t d = 0; d <= distance; ++d) {
    const std::size_t at = (index - d) & mask_;
    if (slots_[at].load(std::memory_order_seq_cst) == tombstone) try_reclaim(at);
  }
}

bool owner_directory::erase(std::uint64_t key, unsigned owner) noexcept {
  if (owner >= max_owners) return false;
  const std::uint64_t h = hash56(key);
  const std::uint64_t entry = h << 8 | owner;
  const std::size_t start = static_cast<std::size_t>(h) & mask_;
  for (std::size_t i = 0; i < max_probe; ++i) {
    const std::size_t index = (start + i) & mask_;
    auto& slot = slots_[index];
    std::uint64_t v = slot.load(std::memory_order_acquire);
    if (v == empty) return false;
    if (v == entry) {
      if (!slot.compare_exchange_strong(v, tombstone, std::memory_order_seq_cst)) return false;
      reclaim(start, index);
      return true;
    }
  }
  return false;
}

std::size_t owner_directory::occupied_slots() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i <= mask_; ++i) n += slots_[i].load(std::memory_order_relaxed) != empty ? 1 : 0;
  return n;
}

std::optional<unsigned> owner_directory::lookup(std::uint64_t key) const noexcept {
  const std::uint64_t h = hash56(key);
  const std::size_t start = static_cast<std::size_t>(h) & mask_;
  for (std::size_t i = 0; i < max_probe; ++i) {
    const std::uint64_t v = slots_[(start + i) & mask_].load(std::memory_order_acquire);
    if (v == empty) return std::nullopt;
    if (v != tombstone && v >> 8 == h && !is_mark(v)) return static_cast<unsigned>(v & 0xFF);
  }
  return std::nullopt;
}

}  // namespace anyturn::relay
