// A relay::fast_path that records what the relay core asked of it: the
// allocations and channels it holds, every call in order, and totals a
// test sets as if the kernel program had forwarded that much.
#pragma once

#include <anyturn/relay/fast_path.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace anyturn::test {

class fake_fast_path final : public relay::fast_path {
 public:
  struct call {
    std::string what;  // "add", "remove_allocation", "put", "remove_channel"
    handle h = no_handle;
    relay::fast_channel channel;
  };
  struct held {
    relay::fast_limits limits;
    std::map<std::uint16_t, relay::fast_channel> channels;  // by number
    relay::fast_counts totals;
  };

  // Refuse what does not fit (false / no_handle), like a full map.
  std::size_t max_allocations = 1000;
  std::size_t max_channels = 1000;

  handle add_allocation(const relay::fast_limits& limits) override {
    if (allocations.size() >= max_allocations) {
      calls.push_back({"add", no_handle, {}});
      return no_handle;
    }
    const handle h = ++last_handle_;
    allocations[h].limits = limits;
    calls.push_back({"add", h, {}});
    return h;
  }
  relay::fast_counts remove_allocation(handle h) override {
    calls.push_back({"remove_allocation", h, {}});
    if (on_remove_allocation) on_remove_allocation();
    const auto it = allocations.find(h);
    if (it == allocations.end()) return {};
    const relay::fast_counts last = it->second.totals;
    allocations.erase(it);
    return last;
  }
  bool put_channel(handle h, const relay::fast_channel& c) override {
    calls.push_back({"put", h, c});
    const auto it = allocations.find(h);
    if (it == allocations.end()) return false;
    if (!it->second.channels.contains(c.number) && channel_count() >= max_channels) return false;
    it->second.channels[c.number] = c;
    return true;
  }
  void remove_channel(handle h, const relay::fast_channel& c) override {
    calls.push_back({"remove_channel", h, c});
    const auto it = allocations.find(h);
    if (it != allocations.end()) it->second.channels.erase(c.number);
  }
  relay::fast_counts totals(handle h) override {
    ++totals_reads;
    const auto it = allocations.find(h);
    return it == allocations.end() ? relay::fast_counts{} : it->second.totals;
  }

  [[nodiscard]] std::size_t channel_count() const {
    std::size_t n = 0;
    for (const auto& [h, a] : allocations) n += a.channels.size();
    return n;
  }
  // The one allocation held (tests with one client); null when none.
  held* only() {
    return allocations.size() == 1 ? &allocations.begin()->second : nullptr;
  }
  // The entry for channel `number` of the one allocation, or null.
  const relay::fast_channel* channel(std::uint16_t number) {
    held* a = only();
    if (a == nullptr) return nullptr;
    const auto it = a->channels.find(number);
    return it == a->channels.end() ? nullptr : &it->second;
  }
  [[nodiscard]] std::size_t count(const std::string& what) const {
    std::size_t n = 0;
    for (const auto& c : calls) n += c.what == what ? 1 : 0;
    return n;
  }

  std::map<handle, held> allocations;
  std::vector<call> calls;
  std::size_t totals_reads = 0;
  // Called inside remove_allocation (a test checks what happened before it).
  std::function<void()> on_remove_allocation;

 private:
  handle last_handle_ = 0;
};

}  // namespace anyturn::test
