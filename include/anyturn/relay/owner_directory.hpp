// anyturn::relay — which worker owns the allocation of a client 5-tuple.
//
// Shared by every worker, lock-free. A fixed-capacity open-addressing table
// of 64-bit atomic entries, each packing a 56-bit hash of the 5-tuple and
// an 8-bit owner (worker index). The owner inserts its entry by CAS when an
// allocation starts and turns it into a tombstone when the allocation ends;
// another worker looks an entry up only when a datagram's 5-tuple has no
// local allocation (the miss path), never for a packet it owns.
//
// Keys are the process's keyed hashes of 5-tuples (common::keyed_hasher, so
// clients cannot aim collisions), not 5-tuples: two whose 56-bit hashes collide
// share an entry, so a lookup may name a worker that does not own the
// packet's allocation. That worker then finds no allocation and drops the
// packet (counted); it never hands it on again. Probing is linear and
// bounded (max_probe slots): a full window refuses the insert (the
// allocation still works, only hand-off to it is lost) and a lookup never
// reads more than max_probe entries, tombstones included.
//
// Tombstones are reclaimed: when erase() removes an entry, its slot and the
// tombstones on its probe path become empty again unless another live
// entry's path crosses them (its home slot is at or before the tombstone;
// the home is the low bits of the stored hash). So a tombstone lives only
// while a live entry needs it. Without that, churn leaves every slot a
// tombstone and every miss reads max_probe slots.
//
// The writers agree without a lock and without waiting for each other. A
// tombstone being reclaimed is first marked (owner byte 0xFF, never a
// worker's, with a token unique to the attempt; read as a tombstone), then
// the entries after it are checked, then it becomes empty by CAS from that
// exact mark. An insert stores its entry, then re-reads its path: a mark
// there it cancels (back to a tombstone, which the new entry then needs),
// an empty slot makes it take the entry back and try again. Of an insert
// and a reclaim on one path at least one sees the other's store
// (sequentially consistent operations), so an insert never returns with its
// entry out of reach. lookup() stays one pass of loads: no lock, no retry.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace anyturn::relay {

class owner_directory {
 public:
  static constexpr unsigned max_owners = 255;     // owner indices 0..254
  static constexpr std::size_t max_probe = 64;    // slots read per operation
  static constexpr std::size_t default_capacity = std::size_t{1} << 20;  // 8 MiB

  // `capacity` is rounded up to a power of two (at least max_probe).
  explicit owner_directory(std::size_t capacity = default_capacity);
  owner_directory(const owner_directory&) = delete;
  owner_directory& operator=(const owner_directory&) = delete;

  // Capacity for `max_allocations` live entries at a load factor of 1/2.
  static std::size_t capacity_for(std::size_t max_allocations);

  // Records that `owner` owns the 5-tuple whose hash is `key` (an existing
  // entry for the key is overwritten). False when owner >= max_owners or the
  // probe window has no free slot.
  bool insert(std::uint64_t key, unsigned owner) noexcept;
  // Removes the entry for `key` if `owner` holds it (a stale erase never
  // removes another worker's entry). True when removed.
  bool erase(std::uint64_t key, unsigned owner) noexcept;
  // The owner of `key`, if any.
  [[nodiscard]] std::optional<unsigned> lookup(std::uint64_t key) const noexcept;

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }
  // Slots that are not empty (live entries and tombstones); O(capacity), for
  // tests and diagnostics.
  [[nodiscard]] std::size_t occupied_slots() const noexcept;

 private:
  static constexpr std::uint64_t empty = 0;
  static constexpr std::uint64_t tombstone = 1;  // hash 0, owner 1: never a live entry
  static constexpr std::uint64_t mark_owner = 0xFF;  // owner byte of a tombstone being emptied
  static constexpr bool is_mark(std::uint64_t v) noexcept { return (v & 0xFF) == mark_owner; }
  static std::uint64_t hash56(std::uint64_t key) noexcept;
  // After the entry whose home slot is `home` left `index`: empties the
  // tombstones on that path that no other entry's path crosses.
  void reclaim(std::size_t home, std::size_t index) noexcept;
  bool try_reclaim(std::size_t index) noexcept;
  [[nodiscard]] bool crossed(std::size_t index) const noexcept;
  // True when no slot in [start, start + distance) is empty, i.e. a lookup
  // from `start` reaches slot start + distance; cancels the reclaims in
  // progress on that path.
  bool secure_path(std::size_t start, std::size_t distance) noexcept;

  std::size_t mask_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> slots_;
  std::atomic<std::uint64_t> mark_tokens_{0};
};

}  // namespace anyturn::relay
