#include <anyturn/relay/allocation_table.hpp>

#include <utility>

namespace anyturn::relay {

allocation_table::slot_index allocation_table::reserve() {
  if (!free_slots_.empty()) {
    const slot_index s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  slots_.emplace_back();
  return static_cast<slot_index>(slots_.size() - 1);
}

void allocation_table::cancel(slot_index s) {
  slots_[s].reset();
  free_slots_.push_back(s);
}

void allocation_table::insert(slot_index s, std::unique_ptr<allocation> a) {
  const client_ref client = a->client;
  slots_[s] = std::move(a);
  by_client_.insert(client, s, key_of());
}

void allocation_table::erase(slot_index s) {
  by_client_.erase(slots_[s]->client, key_of());  // before the reset: key_of reads the slot
  slots_[s].reset();
  free_slots_.push_back(s);
}

relay_id allocation_table::take_relay_id(slot_index s) {
  if (!free_relay_ids_.empty()) {
    const relay_id id = free_relay_ids_.back();
    free_relay_ids_.pop_back();
    relay_owner_[id] = s;
    return id;
  }
  relay_owner_.push_back(s);
  return static_cast<relay_id>(relay_owner_.size() - 1);
}

void allocation_table::release_relay_id(relay_id id) {
  relay_owner_[id] = no_slot;
  free_relay_ids_.push_back(id);
}

}  // namespace anyturn::relay
