// The retransmission cache (RFC 8489 §6.3.1), private to turn/. Its user,
// authenticate(), is declared in context.hpp.
#pragma once

#include <anyturn/common/keyed_hash.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/stun/message.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace anyturn::turn::detail {

// Retransmitted requests get the first answer again. A direct-mapped cache
// keyed by transaction id, which the client chooses: the slot is a keyed
// hash of it, so nobody can aim retransmissions at another client's entry.
// No allocation, no map; an eviction is harmless (Allocate is rebuilt from
// its allocation, the other methods are idempotent).
class response_cache {
 public:
  static constexpr std::size_t entries = 1024;
  static constexpr std::size_t max_response = 548;
  static constexpr std::int64_t lifetime_ms = 40'000;  // RFC 8489 §6.3.1: 40 s

  const stun::bytes_view* find(const relay::client_ref& client, const stun::transaction_id& tid,
                               std::int64_t now_ms) {
    auto& e = slot(tid);
    if (e.len == 0 || e.expires_ms <= now_ms || !(e.tid == tid) || !(e.client == client))
      return nullptr;
    view_ = stun::bytes_view(e.data.data(), e.len);
    return &view_;
  }

  void store(const relay::client_ref& client, const stun::transaction_id& tid,
             stun::bytes_view response, std::int64_t now_ms) {
    if (response.size() > max_response) return;
    auto& e = slot(tid);
    e.client = client;
    e.tid = tid;
    e.expires_ms = now_ms + lifetime_ms;
    e.len = static_cast<std::uint16_t>(response.size());
    std::memcpy(e.data.data(), response.data(), response.size());
  }

 private:
  struct entry {
    relay::client_ref client;
    stun::transaction_id tid;
    std::int64_t expires_ms = 0;
    std::uint16_t len = 0;
    std::array<std::byte, max_response> data{};
  };
  entry& slot(const stun::transaction_id& tid) {
    return table_[common::keyed_hash(tid.bytes.data(), tid.bytes.size()) % entries];
  }
  std::vector<entry> table_ = std::vector<entry>(entries);
  stun::bytes_view view_;
};

}  // namespace anyturn::turn::detail
