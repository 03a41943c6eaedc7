// anyturn::relay — the worker's 5-tuple -> allocation-slot index: a compact open-addressing
// hash table that stores no keys.
//
// At 100,000 allocations the ChannelData path is bound by dependent cache
// misses, and a node-based map adds two of them (bucket array, then a node
// holding a ~56-byte client_ref) before the allocation is even reached. Here
// a lookup touches one 8-byte cell (usually the first of a short run in the
// same cache line) and then the allocation the caller needs anyway: the key
// lives only in the allocation, and the caller supplies `key_of(slot)` to
// confirm a candidate.
//
// Design:
//   - Cell = {32-bit hash, 32-bit slot}; all cells in one contiguous array of
//     power-of-two capacity. An empty cell has slot == empty_slot.
//   - The 32-bit hash is both the fingerprint and the home position
//     (hash & mask). Because the home is recomputable from the cell alone,
//     growth, shrinking and deletion never read a key: they touch only this
//     array, never the (cold) allocations. The fingerprint still filters
//     well: cells from other homes in a probe run differ in the low bits, and
//     entries sharing a home differ in the 32 - log2(capacity) high bits.
//   - The caller's hash must be well spread in all 64 bits: client_ref_hash
//     is the process's keyed SipHash, so clients cannot choose 5-tuples that
//     collide. Its two halves are folded into the 32-bit fingerprint.
//   - Linear probing: the best cache behaviour for 8-byte cells (8 per line).
//   - Maximum load 0.7 (grow by doubling beyond it). Expected probes at 0.7:
//     about 2.2 for a hit and 6 for a miss, i.e. one or two cache lines.
//   - Deletion by backward shift (Knuth 6.4 algorithm R), not tombstones:
//     no tombstone can lengthen probe runs after mass frees, so lookups never
//     degrade and no periodic cleanup pass is needed; the shift needs each
//     moved cell's home, which the stored hash gives without a key access.
//   - shrink_if_sparse() (called from the worker's tick) rehashes to a smaller
//     power of two once fewer than 1/8 of the cells are used, to a load of
//     1/8..1/4, so memory returns after mass frees without grow/shrink
//     thrashing. Never below min_capacity.
//   - Lookups never allocate; only insert (on growth), reserve and
//     shrink_if_sparse do, on the control path.
//
// Single-threaded: owned by one worker, like the rest of the core state.
#pragma once

#include <anyturn/relay/io.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

namespace anyturn::relay {

template <class Key, class Hash>
class basic_slot_table {
 public:
  static constexpr std::uint32_t empty_slot = 0xFFFFFFFFu;  // never a valid slot
  static constexpr std::size_t min_capacity = 64;
  // Above this, a 32-bit hash can no longer name every cell.
  static constexpr std::size_t max_capacity = std::size_t{1} << 31;

  basic_slot_table() = default;
  explicit basic_slot_table(Hash hash) : hash_(std::move(hash)) {}
  basic_slot_table(const basic_slot_table&) = delete;
  basic_slot_table& operator=(const basic_slot_table&) = delete;
  basic_slot_table(basic_slot_table&&) noexcept = default;
  basic_slot_table& operator=(basic_slot_table&&) noexcept = default;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  // Number of cells (0 before the first insert or reserve).
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  // Heap bytes held by the cell array.
  [[nodiscard]] std::size_t memory_bytes() const { return capacity_ * sizeof(cell); }

  // The slot stored for `key`, or nullopt. `key_of(slot)` must return the key
  // of a stored slot (e.g. slots[slot]->client); it is called only for cells
  // whose fingerprint matches. Never allocates.
  template <class KeyOf>
  [[nodiscard]] std::optional<std::uint32_t> find(const Key& key, KeyOf&& key_of) const {
    if (size_ == 0) return std::nullopt;
    const std::uint32_t h = fingerprint(key);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const cell& c = cells_[i];
      if (c.slot == empty_slot) return std::nullopt;
      if (c.hash == h && key_of(c.slot) == key) return c.slot;
    }
  }

  template <class KeyOf>
  [[nodiscard]] bool contains(const Key& key, KeyOf&& key_of) const {
    return find(key, std::forward<KeyOf>(key_of)).has_value();
  }

  // Maps `key` to `slot` (slot != empty_slot). Returns false, changing
  // nothing, when `key` is already present. May grow (allocates).
  template <class KeyOf>
  bool insert(const Key& key, std::uint32_t slot, KeyOf&& key_of) {
    if (slot == empty_slot) return false;
    const std::uint32_t h = fingerprint(key);
    if (size_ != 0) {
      for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
        const cell& c = cells_[i];
        if (c.slot == empty_slot) break;
        if (c.hash == h && key_of(c.slot) == key) return false;
      }
    }
    if (needs_growth(size_ + 1)) rehash(capacity_for(size_ + 1));
    place(cell{h, slot});
    ++size_;
    return true;
  }

  // Removes `key`; returns its slot, or nullopt if absent. `key_of` must
  // still resolve the removed slot (erase before freeing the allocation).
  template <class KeyOf>
  std::optional<std::uint32_t> erase(const Key& key, KeyOf&& key_of) {
    if (size_ == 0) return std::nullopt;
    const std::uint32_t h = fingerprint(key);
    std::size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const cell& c = cells_[i];
      if (c.slot == empty_slot) return std::nullopt;
      if (c.hash == h && key_of(c.slot) == key) break;
    }
    const std::uint32_t slot = cells_[i].slot;
    // Backward shift: pull later cells of the run into the hole unless that
    // would move one before its home (cyclically).
    std::size_t hole = i;
    for (std::size_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
      const cell& c = cells_[j];
      if (c.slot == empty_slot) break;
      const std::size_t home = c.hash & mask_;
      // c may move to `hole` iff home is not in the cyclic range (hole, j].
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        cells_[hole] = c;
        hole = j;
      }
    }
    cells_[hole] = cell{};
    --size_;
    return slot;
  }

  // Makes room for `n` entries without further growth.
  void reserve(std::size_t n) {
    if (needs_growth(n)) rehash(capacity_for(n));
  }

  // Rehashes to a smaller power of two when fewer than 1/8 of the cells are
  // used; returns whether it did. O(1) when it does nothing: call it often.
  bool shrink_if_sparse() {
    if (capacity_ <= min_capacity || size_ * 8 >= capacity_) return false;
    const std::size_t target = std::max(min_capacity, std::bit_ceil(std::max<std::size_t>(1, size_ * 4)));
    if (target >= capacity_) return false;
    rehash(target);
    return true;
  }

  // Drops every entry and the cell array.
  void clear() {
    cells_.reset();
    capacity_ = 0;
    mask_ = 0;
    size_ = 0;
  }

  // Longest distance of an entry from its home cell (diagnostics, tests).
  [[nodiscard]] std::size_t max_displacement() const {
    std::size_t worst = 0;
    for (std::size_t i = 0; i < capacity_; ++i) {
      if (cells_[i].slot == empty_slot) continue;
      worst = std::max(worst, (i - (cells_[i].hash & mask_)) & mask_);
    }
    return worst;
  }

 private:
  struct cell {
    std::uint32_t hash = 0;
    std::uint32_t slot = empty_slot;
  };
  static_assert(sizeof(cell) == 8);

  [[nodiscard]] std::uint32_t fingerprint(const Key& key) const {
    // The caller's hash is already well spread (keyed SipHash for 5-tuples):
    // fold all 64 bits into the 32-bit fingerprint.
    const auto x = static_cast<std::uint64_t>(hash_(key));
    return static_cast<std::uint32_t>(x ^ (x >> 32));
  }

  // Load stays at or below 7/10.
  [[nodiscard]] bool needs_growth(std::size_t n) const { return n * 10 > capacity_ * 7; }

  [[nodiscard]] std::size_t capacity_for(std::size_t n) const {
    std::size_t c = std::max(min_capacity, capacity_);
    while (n * 10 > c * 7 && c < max_capacity) c *= 2;
    return c;
  }

  void place(cell c) {
    std::size_t i = c.hash & mask_;
    while (cells_[i].slot != empty_slot) i = (i + 1) & mask_;
    cells_[i] = c;
  }

  void rehash(std::size_t new_capacity) {
    auto old = std::move(cells_);
    const std::size_t old_capacity = capacity_;
    cells_ = std::make_unique<cell[]>(new_capacity);
    capacity_ = new_capacity;
    mask_ = new_capacity - 1;
    for (std::size_t i = 0; i < old_capacity; ++i)
      if (old[i].slot != empty_slot) place(old[i]);
  }

  std::unique_ptr<cell[]> cells_;
  std::size_t capacity_ = 0;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  [[no_unique_address]] Hash hash_{};
};

// The core's table: client 5-tuple -> allocation slot.
using client_table = basic_slot_table<client_ref, client_ref_hash>;

}  // namespace anyturn::relay
