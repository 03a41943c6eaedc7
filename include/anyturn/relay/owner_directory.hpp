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

 private:
  static constexpr std::uint64_t empty = 0;
  static constexpr std::uint64_t tombstone = 1;  // hash 0, owner 1: never a live entry
  static std::uint64_t hash56(std::uint64_t key) noexcept;

  std::size_t mask_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> slots_;
};

}  // namespace anyturn::relay
