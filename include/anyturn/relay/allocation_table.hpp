// anyturn::relay — one worker's allocation table.
//
// Slots hold the forwarding records (allocation.hpp) by unique_ptr; freed
// slots are reused. Two indexes find a slot on the hot path: the client's
// 5-tuple (client_table: ChannelData and Send from the client) and the relay
// socket (relay_id -> slot: datagrams from peers). Both lookups are O(1) and
// never allocate. Relay ids come from their own free list: one allocation
// holds up to two (one per address family).
//
// Owned by one worker's thread; nothing here is shared.
#pragma once

#include <anyturn/relay/allocation.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/relay/slot_table.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace anyturn::relay {

class allocation_table {
  // The key accessor of by_client_: the 5-tuple of an occupied slot.
  struct key_accessor {
    const allocation_table* table;
    const client_ref& operator()(std::uint32_t s) const { return table->slots_[s]->client; }
  };
  [[nodiscard]] key_accessor key_of() const { return key_accessor{this}; }

 public:
  using slot_index = std::uint32_t;
  static constexpr slot_index no_slot = 0xFFFFFFFFu;

  // A free slot for a new allocation; not found by its 5-tuple until insert().
  slot_index reserve();
  // Gives back a reserved slot whose Allocate failed before insert().
  void cancel(slot_index s);
  // Makes `a` the allocation of slot `s`, found by its 5-tuple from now on.
  void insert(slot_index s, std::unique_ptr<allocation> a);
  // Removes the allocation of slot `s` (its relay ids already released).
  void erase(slot_index s);

  [[nodiscard]] std::optional<slot_index> find(const client_ref& c) const {
    return by_client_.find(c, key_of());
  }
  [[nodiscard]] allocation* find_allocation(const client_ref& c) const {
    const auto s = find(c);
    return s ? slots_[*s].get() : nullptr;
  }
  [[nodiscard]] bool contains(const client_ref& c) const { return by_client_.contains(c, key_of()); }
  // The allocation in slot `s`, or null (free, or reserved and not inserted).
  [[nodiscard]] allocation* at(slot_index s) const {
    return s < slots_.size() ? slots_[s].get() : nullptr;
  }
  [[nodiscard]] std::size_t size() const { return by_client_.size(); }
  // Slots in use or free: a bound for walking every allocation.
  [[nodiscard]] std::size_t slot_count() const { return slots_.size(); }

  // A relay id for a socket of slot `s`'s allocation.
  relay_id take_relay_id(slot_index s);
  void release_relay_id(relay_id id);
  // The allocation that relay socket `id` belongs to, or null.
  [[nodiscard]] allocation* by_relay(relay_id id) const {
    if (id >= relay_owner_.size()) return nullptr;
    return at(relay_owner_[id]);
  }

  // Returns the 5-tuple index's memory after mass frees (O(1) otherwise).
  void shrink_if_sparse() { by_client_.shrink_if_sparse(); }

 private:
  std::vector<std::unique_ptr<allocation>> slots_;
  std::vector<slot_index> free_slots_;
  client_table by_client_;  // 5-tuple -> slot; keys live in slots_[slot]->client
  std::vector<slot_index> relay_owner_;  // relay_id -> slot
  std::vector<relay_id> free_relay_ids_;
};

}  // namespace anyturn::relay
