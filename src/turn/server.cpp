// The TURN server logic of one worker. Each handler is commented with the
// RFC 8656 (TURN) or RFC 8489 (STUN) section whose steps it follows.
#include <anyturn/turn/server.hpp>

#include "allocation.hpp"
#include "client_table.hpp"
#include "timer_wheel.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

namespace anyturn::turn {

namespace {

using stun::bytes_view;
using stun::message_class;

namespace attr = stun::attr;

constexpr std::uint8_t proto_udp = 17;
constexpr std::int64_t channel_cooldown_ms = 300'000;   // RFC 8656 §12: 5 minutes
constexpr std::int64_t response_cache_ms = 40'000;      // RFC 8489 §6.3.1: 40 s
constexpr std::int64_t reservation_ms = 30'000;         // RFC 8656 §7.2: about 30 s
constexpr std::size_t max_username = 513;               // RFC 8489 §14.3
constexpr std::size_t max_realm = 763;                  // RFC 8489 §14.9
constexpr std::size_t max_nonce = 763;                  // RFC 8489 §14.10

const char* reason_for(int code) {
  switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 420: return "Unknown Attribute";
    case 437: return "Allocation Mismatch";
    case 438: return "Stale Nonce";
    case 440: return "Address Family not Supported";
    case 441: return "Wrong Credentials";
    case 442: return "Unsupported Transport Protocol";
    case 443: return "Peer Address Family Mismatch";
    case 486: return "Allocation Quota Reached";
    case 500: return "Server Error";
    case 508: return "Insufficient Capacity";
    default: return "Error";
  }
}

template <typename T, std::size_t N>
bytes_view as_bytes_view(const std::array<T, N>& a) {
  return std::as_bytes(std::span<const T, N>(a));
}

// Retransmitted requests get the first answer again (RFC 8489 §6.3.1). A
// direct-mapped cache keyed by transaction id: no allocation, no map, and
// an eviction is harmless (Allocate is rebuilt from its allocation).
class response_cache {
 public:
  static constexpr std::size_t entries = 1024;
  static constexpr std::size_t max_response = 548;

  const bytes_view* find(const client_ref& client, const stun::transaction_id& tid,
                         std::int64_t now_ms) {
    auto& e = slot(tid);
    if (e.len == 0 || e.expires_ms <= now_ms || !(e.tid == tid) || !(e.client == client))
      return nullptr;
    view_ = bytes_view(e.data.data(), e.len);
    return &view_;
  }

  void store(const client_ref& client, const stun::transaction_id& tid, bytes_view response,
             std::int64_t now_ms) {
    if (response.size() > max_response) return;
    auto& e = slot(tid);
    e.client = client;
    e.tid = tid;
    e.expires_ms = now_ms + response_cache_ms;
    e.len = static_cast<std::uint16_t>(response.size());
    std::memcpy(e.data.data(), response.data(), response.size());
  }

 private:
  struct entry {
    client_ref client;
    stun::transaction_id tid;
    std::int64_t expires_ms = 0;
    std::uint16_t len = 0;
    std::array<std::byte, max_response> data{};
  };
  entry& slot(const stun::transaction_id& tid) {
    std::uint32_t h = 0;
    std::memcpy(&h, tid.bytes.data() + 8, sizeof h);
    return table_[h % entries];
  }
  std::vector<entry> table_ = std::vector<entry>(entries);
  bytes_view view_;
};

// At most one warning a second per kind, so hostile traffic cannot flood the log.
class log_limiter {
 public:
  enum kind { malformed, bad_fingerprint, relay_send, client_send, ports, count_ };
  bool allow(kind k, std::int64_t now_ms) {
    if (now_ms - last_[k] < 1000) return false;
    last_[k] = now_ms;
    return true;
  }

 private:
  std::array<std::int64_t, count_> last_{-1000000, -1000000, -1000000, -1000000, -1000000};
};

}  // namespace

struct server::impl {
  impl(std::shared_ptr<const shared_state> s, io_port& io, worker_counters& c, unsigned worker)
      : shared(std::move(s)), io(io), counters(c), worker(worker),
        rng(0x9E3779B97F4A7C15ULL * (worker + 1) ^ reinterpret_cast<std::uintptr_t>(this)) {
    counters.tenants = std::vector<tenant_counters>(std::max<std::size_t>(1, shared->tenants.size()));
  }

  // ---- state (owned by this worker's thread) ----
  std::shared_ptr<const shared_state> shared;
  io_port& io;
  worker_counters& counters;
  unsigned worker;
  std::uint64_t rng;

  // The key accessor of by_client: the 5-tuple of an occupied slot.
  auto key_of() const {
    return [this](std::uint32_t s) -> const client_ref& { return slots[s]->client; };
  }
  std::optional<std::uint32_t> slot_of(const client_ref& c) const { return by_client.find(c, key_of()); }

  std::vector<std::unique_ptr<detail::allocation>> slots;  // allocation table
  std::vector<std::uint32_t> free_slots;
  detail::client_table by_client;  // 5-tuple -> slot; keys live in slots[slot]->client
  std::vector<std::uint32_t> relay_owner;  // relay_id -> slot
  std::vector<relay_id> free_relay_ids;
  std::uint32_t generation_counter = 0;
  std::size_t relay_cursor = 0;  // next relay address to try first
  detail::timer_wheel wheel;
  response_cache cache;
  struct reservation {
    std::uint64_t token;
    std::uint8_t pool;
    std::int64_t expires_ms;
  };
  std::vector<reservation> reservations;
  log_limiter limiter;
  std::array<std::byte, 1500> scratch{};  // responses are built here

  // Per-request context: what authentication established.
  struct request {
    const client_ref& from;
    const stun::message_view& msg;
    const now_t& now;
    const auth::key_candidate* key = nullptr;
    bool sha256 = false;
    std::string_view username;
    auth::tenant_index tenant = auth::default_tenant;
    auth::key_candidate key_storage;
  };

  // ------------------------------------------------------------- tenants
  const tenant_policy* policy_of(auth::tenant_index t) const {
    return t < shared->tenants.size() ? &shared->tenants[t] : nullptr;
  }
  tenant_counters& tenant_stats(auth::tenant_index t) {
    return counters.tenants[t < counters.tenants.size() ? t : 0];
  }
  std::uint32_t user_limit(auth::tenant_index t) const {
    const auto* p = policy_of(t);
    if (p != nullptr && p->max_allocations_per_user != 0) return p->max_allocations_per_user;
    return shared->user_quotas ? shared->user_quotas->limit() : 0;
  }
  // The tenant's per-allocation bandwidth limit: a token bucket holding at
  // most one second of traffic, refilled from the coarse loop clock.
  bool within_bandwidth(detail::allocation& a, std::size_t bytes, std::int64_t now_ms) {
    const auto* p = policy_of(a.tenant);
    if (p == nullptr || p->bandwidth_bytes_per_s == 0) return true;
    const auto rate = static_cast<std::int64_t>(p->bandwidth_bytes_per_s);
    if (now_ms > a.bandwidth_refilled_ms) {
      a.bandwidth_tokens =
          std::min(rate, a.bandwidth_tokens + (now_ms - a.bandwidth_refilled_ms) * rate / 1000);
      a.bandwidth_refilled_ms = now_ms;
    }
    if (a.bandwidth_tokens < static_cast<std::int64_t>(bytes)) {
      bump(counters.bandwidth_dropped);
      bump(tenant_stats(a.tenant).bandwidth_dropped);
      return false;
    }
    a.bandwidth_tokens -= static_cast<std::int64_t>(bytes);
    return true;
  }

  std::uint64_t next_random() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  }

  // ---------------------------------------------------------------- send
  void send_to_client(const client_ref& to, bytes_view data) {
    const std::array<bytes_view, 1> parts{data};
    io.send_to_client(to, parts);
  }

  stun::message_builder begin(const request& r, message_class cls) {
    return stun::message_builder(scratch, r.msg.method(), cls, r.msg.tid());
  }

  void send_error(const request& r, int code, bool cacheable = true) {
    auto b = begin(r, message_class::error_response);
    b.add_error_code(code, reason_for(code));
    bump(counters.responses_error);
    finish(r, b, cacheable);
  }

  // Signs (when authenticated), fingerprints (when the client did), sends and
  // remembers the response for retransmissions.
  void finish(const request& r, stun::message_builder& b, bool cacheable) {
    if (!shared->software.empty()) b.add_string(attr::software, shared->software);
    if (r.key != nullptr) {
      if (r.sha256 && r.key->sha256) {
        b.add_message_integrity_sha256(as_bytes_view(*r.key->sha256));
      } else {
        b.add_message_integrity(as_bytes_view(r.key->md5));
      }
    }
    if (r.msg.has_fingerprint()) b.add_fingerprint();
    auto out = b.finish();
    if (!out) {
      spdlog::error("turn: a response to method {:#x} did not fit: {}", r.msg.method(),
                    out.error.message());
      return;
    }
    send_to_client(r.from, *out);
    if (cacheable) cache.store(r.from, r.msg.tid(), *out, r.now.mono_ms);
  }

  void send_success(const request& r, stun::message_builder& b) {
    bump(counters.responses_success);
    finish(r, b, true);
  }

  // 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS
  // (RFC 8489 §9.2.4). Never signed: the client has not proved a key.
  void send_challenge(const request& r, int code) {
    auto b = begin(r, message_class::error_response);
    b.add_error_code(code, reason_for(code));
    b.add_string(attr::realm, shared->credentials->realm());
    std::array<char, auth::nonce_service::nonce_size> nonce{};
    b.add_string(attr::nonce, shared->nonces->mint(r.from.remote, r.now.unix_s, nonce));
    if (shared->offer_sha256) {
      constexpr std::array algs{stun::password_algorithm::sha256, stun::password_algorithm::md5};
      b.add_password_algorithms(algs);
    }
    bump(counters.responses_error);
    finish(r, b, false);  // r.key is still unset: never signed
  }

  // ------------------------------------------------------------ entry points
  void on_client_packet(const client_ref& from, bytes_view data, const now_t& now) {
    bump(counters.packets_received);
    switch (stun::classify(data)) {
      case stun::frame_kind::channel_data:
        on_channel_data(from, data, now);
        return;
      case stun::frame_kind::stun:
        break;
      case stun::frame_kind::other:
        bump(counters.unknown_dropped);
        return;
    }
    auto parsed = stun::parse_message(data);
    if (!parsed) {
      if (parsed.error == stun::codec_error::bad_fingerprint) {
        bump(counters.bad_fingerprint_dropped);
        if (limiter.allow(log_limiter::bad_fingerprint, now.mono_ms))
          spdlog::warn("turn: dropped STUN message with a bad FINGERPRINT from {}",
                       from.remote.to_string());
      } else {
        bump(counters.malformed_dropped);
        if (limiter.allow(log_limiter::malformed, now.mono_ms))
          spdlog::warn("turn: dropped malformed STUN message from {}: {}",
                       from.remote.to_string(), parsed.error.message());
      }
      return;
    }
    const stun::message_view& msg = *parsed;
    // Another worker's 5-tuple (every request but Binding, which needs no
    // allocation): its owner answers. ChannelData and Send check on their
    // own miss path, so an owned packet pays no extra lookup.
    if (msg.cls() == message_class::request &&
        msg.method() != static_cast<std::uint16_t>(stun::method::binding) &&
        from.proto == transport::udp && !by_client.contains(from, key_of()) &&
        io.hand_off(from, data, now)) {
      return;
    }
    switch (msg.cls()) {
      case message_class::request:
        on_request(from, msg, now);
        return;
      case message_class::indication:
        if (msg.method() == static_cast<std::uint16_t>(stun::method::send)) {
          on_send_indication(from, msg, data, now);
        }
        // Binding indications are keepalives (RFC 8489 §6.3.2); others are ignored.
        return;
      default:
        // A server never expects responses.
        bump(counters.unknown_dropped);
        return;
    }
  }

  void on_request(const client_ref& from, const stun::message_view& msg, const now_t& now) {
    request r{from, msg, now};
    // A retransmission gets the first answer again (RFC 8489 §6.3.1).
    if (msg.method() != static_cast<std::uint16_t>(stun::method::binding)) {
      if (const bytes_view* cached = cache.find(from, msg.tid(), now.mono_ms)) {
        bump(counters.retransmits_answered);
        send_to_client(from, *cached);
        return;
      }
    }
    // Unknown comprehension-required attributes: 420 (RFC 8489 §6.3.1.1).
    std::array<std::uint16_t, 16> unknown{};
    if (const std::size_t n = msg.unknown_required(unknown); n > 0) {
      auto b = begin(r, message_class::error_response);
      b.add_error_code(420, reason_for(420));
      b.add_unknown_attributes(std::span<const std::uint16_t>(unknown.data(), n));
      bump(counters.responses_error);
      finish(r, b, true);
      return;
    }
    switch (static_cast<stun::method>(msg.method())) {
      case stun::method::binding:
        bump(counters.binding_requests);
        on_binding(r);
        return;
      case stun::method::allocate:
        bump(counters.allocate_requests);
        if (authenticate(r)) on_allocate(r);
        return;
      case stun::method::refresh:
        bump(counters.refresh_requests);
        if (authenticate(r)) on_refresh(r);
        return;
      case stun::method::create_permission:
        bump(counters.create_permission_requests);
        if (authenticate(r)) on_create_permission(r);
        return;
      case stun::method::channel_bind:
        bump(counters.channel_bind_requests);
        if (authenticate(r)) on_channel_bind(r);
        return;
      default:
        send_error(r, 400);  // unknown method (RFC 8489 §6.3.1)
        return;
    }
  }

  // ----------------------------------------------------- RFC 8489 §9.2.4
  bool authenticate(request& r) {
    const auto& msg = r.msg;
    const auto mi = msg.find(attr::message_integrity);
    const auto mi256 = msg.find(attr::message_integrity_sha256);
    if (!mi && !mi256) {
      bump(counters.auth_challenges);
      send_challenge(r, 401);
      return false;
    }
    const auto user_attr = msg.find(attr::username);
    const auto realm_attr = msg.find(attr::realm);
    const auto nonce_attr = msg.find(attr::nonce);
    if (!user_attr && msg.has(attr::userhash)) {
      // We never set the username-anonymity feature bit, so no client should
      // send USERHASH; we cannot map it back to a REST user. Ask again.
      bump(counters.auth_unknown_user);
      send_challenge(r, 401);
      return false;
    }
    if (!user_attr || !realm_attr || !nonce_attr) {
      send_error(r, 400, false);
      return false;
    }
    const auto username = stun::decode_string(*user_attr, max_username);
    const auto realm = stun::decode_string(*realm_attr, max_realm);
    const auto nonce = stun::decode_string(*nonce_attr, max_nonce);
    if (!username || !realm || !nonce) {
      send_error(r, 400, false);
      return false;
    }
    switch (shared->nonces->verify(*nonce, r.from.remote, r.now.unix_s)) {
      case auth::nonce_status::valid:
        break;
      case auth::nonce_status::stale:
        bump(counters.auth_stale_nonce);
        send_challenge(r, 438);
        return false;
      case auth::nonce_status::invalid:
        bump(counters.auth_bad_nonce);
        send_challenge(r, 401);
        return false;
    }
    if (*realm != shared->credentials->realm()) {
      bump(counters.auth_unknown_user);
      send_challenge(r, 401);
      return false;
    }
    // PASSWORD-ALGORITHM, when present, must name one we offered (§9.2.4).
    bool want_sha256 = mi256.has_value();
    if (const auto alg_attr = msg.find(attr::password_algorithm)) {
      const auto alg = stun::decode_password_algorithm(*alg_attr);
      if (!alg || (*alg != stun::password_algorithm::md5 &&
                   *alg != stun::password_algorithm::sha256) ||
          (*alg == stun::password_algorithm::sha256 && !shared->offer_sha256)) {
        send_error(r, 400, false);
        return false;
      }
    }
    std::array<auth::key_candidate, auth::max_candidates> candidates{};
    std::size_t count = 0;
    switch (shared->credentials->lookup(*username, r.now.unix_s, candidates, count, r.tenant)) {
      case auth::lookup_status::ok:
        break;
      case auth::lookup_status::expired:
        bump(counters.auth_expired_rest);
        send_challenge(r, 401);
        return false;
      case auth::lookup_status::unknown_user:
      case auth::lookup_status::malformed:
        bump(counters.auth_unknown_user);
        send_challenge(r, 401);
        return false;
    }
    for (std::size_t i = 0; i < count; ++i) {
      const auto& c = candidates[i];
      const bool good = want_sha256
                            ? (c.sha256 && stun::check_message_integrity_sha256(
                                               msg, as_bytes_view(*c.sha256)))
                            : stun::check_message_integrity(msg, as_bytes_view(c.md5));
      if (good) {
        r.key_storage = c;
        r.key = &r.key_storage;
        r.sha256 = want_sha256;
        r.username = *username;
        return true;
      }
    }
    bump(counters.auth_bad_integrity);
    send_challenge(r, 401);
    return false;
  }

  // -------------------------------------------------- RFC 8489 §3, Binding
  void on_binding(const request& r) {
    auto b = begin(r, message_class::success_response);
    b.add_address(attr::xor_mapped_address, r.from.remote, true);
    bump(counters.responses_success);
    finish(r, b, false);
  }

  detail::allocation* allocation_of(const client_ref& c) {
    const auto slot = slot_of(c);
    return slot ? slots[*slot].get() : nullptr;
  }

  // Lifetime rule of RFC 8656 §7.2 step and §8.2: min(requested, max), but
  // never below the default.
  std::uint32_t granted_lifetime(const stun::message_view& msg) const {
    std::uint32_t lifetime = shared->allocation_lifetime_default;
    if (const auto a = msg.find(attr::lifetime)) {
      if (const auto v = stun::decode_u32(*a)) {
        const std::uint32_t capped = std::min(*v, shared->allocation_lifetime_max);
        lifetime = std::max(capped, shared->allocation_lifetime_default);
      }
    }
    return lifetime;
  }

  bool has_relay_family(stun::address_family f) const {
    return std::any_of(shared->relays.begin(), shared->relays.end(),
                       [f](const auto& r) { return r.ip.family == f; });
  }

  relay_id take_relay_id(std::uint32_t slot) {
    relay_id id;
    if (!free_relay_ids.empty()) {
      id = free_relay_ids.back();
      free_relay_ids.pop_back();
      relay_owner[id] = slot;
    } else {
      id = static_cast<relay_id>(relay_owner.size());
      relay_owner.push_back(slot);
    }
    return id;
  }

  // Claims a port and binds a relay socket; retries another port when the
  // kernel says the one the pool gave us is taken by someone else.
  enum class open_mode { any, even, even_reserve, exact };
  bool open_relay(detail::allocation& a, std::uint32_t slot, std::uint8_t pool_index,
                  open_mode mode, std::uint16_t exact_port, std::uint64_t& token_out) {
    const auto& addr = shared->relays[pool_index];
    auto& pool = *addr.ports;
    // Ports the kernel refused stay claimed until we are done, so the pool
    // does not hand them straight back.
    std::array<std::uint16_t, 8> refused{};
    std::size_t refused_count = 0;
    bool opened = false;
    for (std::size_t attempt = 0; attempt < refused.size() && !opened; ++attempt) {
      std::optional<std::uint16_t> port;
      std::uint64_t token = 0;
      switch (mode) {
        case open_mode::any:
          port = pool.acquire(static_cast<std::uint32_t>(next_random()));
          break;
        case open_mode::even:
        case open_mode::even_reserve:
          port = pool.acquire_even(static_cast<std::uint32_t>(next_random()),
                                   mode == open_mode::even_reserve, token);
          break;
        case open_mode::exact:
          if (attempt > 0) break;
          port = exact_port;  // already claimed through its reservation token
          break;
      }
      if (!port) break;
      stun::endpoint bind = addr.ip;
      bind.port = *port;
      const relay_id id = take_relay_id(slot);
      const std::error_code ec = io.open_relay(id, bind);
      if (!ec) {
        auto& side = a.relays[a.relay_count++];
        side.id = id;
        side.address = bind;
        side.pool = pool_index;
        if (token != 0) token_out = (std::uint64_t{pool_index} << 56) | token;
        opened = true;
        break;
      }
      free_relay_ids.push_back(id);
      relay_owner[id] = 0xFFFFFFFFu;
      if (limiter.allow(log_limiter::ports, 0))
        spdlog::warn("turn: cannot bind relay {}: {}", bind.to_string(), ec.message());
      if (token != 0) pool.cancel(token);
      refused[refused_count++] = *port;
    }
    for (std::size_t i = 0; i < refused_count; ++i) pool.release(refused[i]);
    return opened;
  }

  // Opens a relay socket on one of the family's relay addresses. New
  // allocations rotate over the addresses, and an address whose range is
  // full is skipped, so several addresses add capacity.
  bool open_in_family(detail::allocation& a, std::uint32_t slot, stun::address_family f,
                      open_mode mode, std::uint64_t& token_out) {
    const std::size_t n = shared->relays.size();
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (relay_cursor + k) % n;
      if (shared->relays[i].ip.family != f) continue;
      if (open_relay(a, slot, static_cast<std::uint8_t>(i), mode, 0, token_out)) {
        relay_cursor = i + 1;
        return true;
      }
    }
    return false;
  }

  void close_relays(detail::allocation& a) {
    for (std::uint8_t i = 0; i < a.relay_count; ++i) {
      auto& side = a.relays[i];
      io.close_relay(side.id);
      relay_owner[side.id] = 0xFFFFFFFFu;
      free_relay_ids.push_back(side.id);
      shared->relays[side.pool].ports->release(side.address.port);
    }
    a.relay_count = 0;
  }

  void add_allocate_success(stun::message_builder& b, const request& r,
                            const detail::allocation& a, bool v6_unavailable) {
    for (std::uint8_t i = 0; i < a.relay_count; ++i)
      b.add_address(attr::xor_relayed_address, a.relays[i].address, true);
    if (v6_unavailable)
      b.add_address_error_code(stun::address_family::ipv6, 440, reason_for(440));
    const std::int64_t remaining_ms = std::max<std::int64_t>(0, a.expires_ms - r.now.mono_ms);
    b.add_u32(attr::lifetime, static_cast<std::uint32_t>((remaining_ms + 999) / 1000));
    if (a.reservation_token != 0) b.add_reservation_token(a.reservation_token);
    b.add_address(attr::xor_mapped_address, r.from.remote, true);
  }

  // ------------------------------------------------------ RFC 8656 §7.2
  void on_allocate(request& r) {
    const auto& msg = r.msg;
    // Step 2: the 5-tuple already has an allocation.
    if (auto* existing = allocation_of(r.from)) {
      if (existing->tid == msg.tid()) {
        // A retransmission whose cached answer was evicted: same success again.
        auto b = begin(r, message_class::success_response);
        add_allocate_success(b, r, *existing, false);
        bump(counters.retransmits_answered);
        send_success(r, b);
        return;
      }
      send_error(r, 437);
      return;
    }
    // Step 3: REQUESTED-TRANSPORT.
    const auto rt_attr = msg.find(attr::requested_transport);
    if (!rt_attr) return send_error(r, 400);
    const auto rt = stun::decode_requested_transport(*rt_attr);
    if (!rt) return send_error(r, 400);
    if (*rt != proto_udp) return send_error(r, 442);  // TCP relaying (RFC 6062) is not offered
    // Step 4: DONT-FRAGMENT is supported, nothing to check.
    // Steps 5-7: address families, reservation tokens and EVEN-PORT.
    const auto token_attr = msg.find(attr::reservation_token);
    const auto even_attr = msg.find(attr::even_port);
    const auto raf_attr = msg.find(attr::requested_address_family);
    const auto aaf_attr = msg.find(attr::additional_address_family);
    if (token_attr && (even_attr || raf_attr || aaf_attr)) return send_error(r, 400);
    if (raf_attr && aaf_attr) return send_error(r, 400);
    stun::address_family family = stun::address_family::ipv4;
    if (raf_attr) {
      const auto f = stun::decode_address_family(*raf_attr);
      if (!f) return send_error(r, 440);
      family = *f;
    }
    bool want_v6_too = false;
    if (aaf_attr) {
      const auto f = stun::decode_address_family(*aaf_attr);
      if (!f || *f != stun::address_family::ipv6) return send_error(r, 400);
      want_v6_too = true;
    }
    bool reserve_next = false;
    if (even_attr) {
      const auto rbit = stun::decode_even_port(*even_attr);
      if (!rbit) return send_error(r, 400);
      reserve_next = *rbit;
    }
    std::uint64_t redeem_token = 0;
    if (token_attr) {
      const auto t = stun::decode_reservation_token(*token_attr);
      if (!t) return send_error(r, 400);
      redeem_token = *t;
    }
    // Capacity (508) and the user's quota (486), before any resource is taken.
    if (by_client.size() >= shared->max_allocations) {
      bump(counters.allocations_failed_ports);
      if (limiter.allow(log_limiter::ports, r.now.mono_ms))
        spdlog::warn("turn: worker {} holds its maximum of {} allocations; answering 508", worker,
                     shared->max_allocations);
      return send_error(r, 508);
    }
    const tenant_policy* policy = policy_of(r.tenant);
    if (shared->tenant_usage &&
        !shared->tenant_usage->try_acquire(r.tenant, policy ? policy->max_allocations : 0)) {
      bump(counters.allocations_failed_quota);
      bump(tenant_stats(r.tenant).quota_rejected);
      return send_error(r, 486);
    }
    const std::string_view quota_key = user_quota::key_of(r.username);
    const std::uint32_t per_user = user_limit(r.tenant);
    if (shared->user_quotas && !shared->user_quotas->try_acquire(quota_key, per_user)) {
      if (shared->tenant_usage) shared->tenant_usage->release(r.tenant);
      bump(counters.allocations_failed_quota);
      bump(tenant_stats(r.tenant).quota_rejected);
      return send_error(r, 486);
    }
    const auto release_quotas = [&] {
      if (shared->user_quotas) shared->user_quotas->release(quota_key, per_user);
      if (shared->tenant_usage) shared->tenant_usage->release(r.tenant);
    };

    auto alloc = std::make_unique<detail::allocation>();
    const std::uint32_t slot = take_slot();
    detail::allocation& a = *alloc;
    a.client = r.from;
    a.tid = msg.tid();
    a.username = std::string(r.username);
    a.tenant = r.tenant;
    a.key = *r.key;
    a.sha256 = r.sha256;
    a.generation = ++generation_counter;

    bool ok = false;
    if (redeem_token != 0) {
      // Step 6: the port that an earlier EVEN-PORT request reserved.
      const auto pool_index = static_cast<std::uint8_t>(redeem_token >> 56);
      if (pool_index < shared->relays.size()) {
        if (auto port = shared->relays[pool_index].ports->redeem(redeem_token &
                                                                  0x00FFFFFFFFFFFFFFULL)) {
          std::uint64_t unused = 0;
          ok = open_relay(a, slot, pool_index, open_mode::exact, *port, unused);
        }
      }
    } else {
      if (!has_relay_family(family)) {
        release_slot(slot);
        release_quotas();
        return send_error(r, 440);
      }
      const open_mode mode = even_attr ? (reserve_next ? open_mode::even_reserve : open_mode::even)
                                       : open_mode::any;
      ok = open_in_family(a, slot, family, mode, a.reservation_token);
    }
    if (!ok) {
      release_slot(slot);
      release_quotas();
      bump(counters.allocations_failed_ports);
      if (limiter.allow(log_limiter::ports, r.now.mono_ms))
        spdlog::warn("turn: relay ports exhausted or unavailable; answering 508 to {}",
                     r.from.remote.to_string());
      return send_error(r, 508);
    }
    // Dual allocation (RFC 8656 §7.2 with ADDITIONAL-ADDRESS-FAMILY): the
    // IPv6 half is best effort, reported by ADDRESS-ERROR-CODE.
    bool v6_unavailable = false;
    if (want_v6_too) {
      std::uint64_t unused = 0;
      v6_unavailable = !open_in_family(a, slot, stun::address_family::ipv6, open_mode::any, unused);
    }
    if (a.reservation_token != 0) {
      reservations.push_back({a.reservation_token & 0x00FFFFFFFFFFFFFFULL,
                              static_cast<std::uint8_t>(a.reservation_token >> 56),
                              r.now.mono_ms + reservation_ms});
    }
    a.lifetime_s = granted_lifetime(msg);
    a.started_ms = r.now.mono_ms;
    a.started_unix_ms = r.now.unix_s * 1000;
    a.expires_ms = r.now.mono_ms + std::int64_t{a.lifetime_s} * 1000;
    if (policy != nullptr) {
      a.bandwidth_tokens = static_cast<std::int64_t>(policy->bandwidth_bytes_per_s);
      a.bandwidth_refilled_ms = r.now.mono_ms;
    }
    auto& ts = tenant_stats(a.tenant);
    bump(ts.allocations_created);
    bump(ts.active[static_cast<std::size_t>(r.from.proto)]);
    slots[slot] = std::move(alloc);
    by_client.insert(r.from, slot, key_of());
    if (r.from.proto == transport::udp) io.own(r.from);
    schedule(slot, a.expires_ms);
    bump(counters.allocations_created);
    counters.active_allocations.store(by_client.size(), std::memory_order_relaxed);
    spdlog::info("allocation start: {} {} -> {} user={} relay={}{} lifetime={}s",
                 to_string(r.from.proto), r.from.remote.to_string(), r.from.local.to_string(),
                 a.username, a.relays[0].address.to_string(),
                 a.relay_count > 1 ? "," + a.relays[1].address.to_string() : std::string(),
                 a.lifetime_s);

    auto b = begin(r, message_class::success_response);
    add_allocate_success(b, r, a, v6_unavailable);
    send_success(r, b);
  }

  std::uint32_t take_slot() {
    if (!free_slots.empty()) {
      const std::uint32_t s = free_slots.back();
      free_slots.pop_back();
      return s;
    }
    slots.emplace_back();
    return static_cast<std::uint32_t>(slots.size() - 1);
  }
  void release_slot(std::uint32_t slot) {
    slots[slot].reset();
    free_slots.push_back(slot);
  }

  // Checks common to Refresh, CreatePermission and ChannelBind: the 5-tuple
  // has an allocation (437) made by the same user (441).
  detail::allocation* owned_allocation(const request& r) {
    auto* a = allocation_of(r.from);
    if (a == nullptr) {
      send_error(r, 437);
      return nullptr;
    }
    if (a->username != r.username) {
      send_error(r, 441);
      return nullptr;
    }
    return a;
  }

  // ------------------------------------------------------ RFC 8656 §8.2
  void on_refresh(request& r) {
    auto* a = allocation_of(r.from);
    if (a == nullptr) return send_error(r, 437);
    if (a->username != r.username) return send_error(r, 441);
    std::uint32_t requested = shared->allocation_lifetime_default;
    bool has_lifetime = false;
    if (const auto l = r.msg.find(attr::lifetime)) {
      const auto v = stun::decode_u32(*l);
      if (!v) return send_error(r, 400);
      requested = *v;
      has_lifetime = true;
    }
    if (const auto raf = r.msg.find(attr::requested_address_family)) {
      const auto f = stun::decode_address_family(*raf);
      if (!f || a->relay_for(*f) == nullptr) return send_error(r, 443);
      if (has_lifetime && requested == 0 && a->relay_count == 2) {
        // Dual allocation: delete only that family's relayed address.
        drop_family(*a, *f);
        auto b = begin(r, message_class::success_response);
        b.add_u32(attr::lifetime,
                  static_cast<std::uint32_t>((a->expires_ms - r.now.mono_ms + 999) / 1000));
        return send_success(r, b);
      }
    }
    auto b = begin(r, message_class::success_response);
    if (has_lifetime && requested == 0) {
      b.add_u32(attr::lifetime, 0);
      const std::uint32_t slot = *slot_of(r.from);
      free_allocation(slot, "deleted", r.now);
      bump(counters.allocations_deleted);
      return send_success(r, b);
    }
    a->lifetime_s = granted_lifetime(r.msg);
    a->expires_ms = r.now.mono_ms + std::int64_t{a->lifetime_s} * 1000;
    b.add_u32(attr::lifetime, a->lifetime_s);
    send_success(r, b);
  }

  void drop_family(detail::allocation& a, stun::address_family f) {
    for (std::uint8_t i = 0; i < a.relay_count; ++i) {
      if (a.relays[i].address.family != f) continue;
      auto& side = a.relays[i];
      io.close_relay(side.id);
      relay_owner[side.id] = 0xFFFFFFFFu;
      free_relay_ids.push_back(side.id);
      shared->relays[side.pool].ports->release(side.address.port);
      if (i == 0 && a.relay_count == 2) a.relays[0] = a.relays[1];
      --a.relay_count;
      break;
    }
    std::erase_if(a.permissions, [f](const auto& p) { return p.ip.family == f; });
    std::erase_if(a.channels, [f](const auto& c) { return c.peer.family == f; });
  }

  // Peer address checks shared by CreatePermission and ChannelBind:
  // family (443) and the operator's peer policy (403).
  int check_peer(const detail::allocation& a, const stun::endpoint& peer) {
    if (a.relay_for(peer.family) == nullptr) return 443;
    if (!auth::is_allowed(shared->peers->check(peer))) {
      bump(counters.peer_denied);
      return 403;
    }
    return 0;
  }

  void install_permission(detail::allocation& a, std::uint32_t slot, const stun::endpoint& peer,
                          std::int64_t now_ms) {
    stun::endpoint ip = peer;
    ip.port = 0;
    const std::int64_t expires = now_ms + std::int64_t{shared->permission_lifetime} * 1000;
    auto it = std::find_if(a.permissions.begin(), a.permissions.end(),
                           [&](const auto& p) { return p.ip == ip; });
    if (it != a.permissions.end()) {
      it->expires_ms = expires;
    } else {
      a.permissions.push_back({ip, expires});
    }
    schedule(slot, expires);
  }

  // ------------------------------------------------------ RFC 8656 §10.2
  void on_create_permission(request& r) {
    auto* a = owned_allocation(r);
    if (a == nullptr) return;
    std::array<stun::endpoint, 16> peers{};
    std::size_t n = 0;
    for (const auto& at : r.msg.attributes()) {
      if (at.type != attr::xor_peer_address) continue;
      const auto peer = stun::decode_address(at, r.msg.tid(), true);
      if (!peer) return send_error(r, 400);
      if (n == peers.size()) return send_error(r, 400);
      if (const int code = check_peer(*a, *peer); code != 0) return send_error(r, code);
      peers[n++] = *peer;
    }
    if (n == 0) return send_error(r, 400);
    // Every address passed: install them all, or none (§10.2).
    const std::uint32_t slot = *slot_of(r.from);
    for (std::size_t i = 0; i < n; ++i) install_permission(*a, slot, peers[i], r.now.mono_ms);
    auto b = begin(r, message_class::success_response);
    send_success(r, b);
  }

  // ------------------------------------------------------ RFC 8656 §11.2
  void on_channel_bind(request& r) {
    auto* a = owned_allocation(r);
    if (a == nullptr) return;
    const auto num_attr = r.msg.find(attr::channel_number);
    const auto peer_attr = r.msg.find(attr::xor_peer_address);
    if (!num_attr || !peer_attr) return send_error(r, 400);
    const auto number = stun::decode_channel_number(*num_attr);
    if (!number || !stun::valid_channel(*number)) return send_error(r, 400);
    const auto peer = stun::decode_address(*peer_attr, r.msg.tid(), true);
    if (!peer) return send_error(r, 400);
    // The number is bound (or cooling down) to another peer, or the peer to
    // another number: 400.
    for (const auto& c : a->channels) {
      if (c.number == *number && c.peer != *peer) return send_error(r, 400);
      if (c.peer == *peer && c.number != *number) return send_error(r, 400);
    }
    if (const int code = check_peer(*a, *peer); code != 0) return send_error(r, code);
    const std::uint32_t slot = *slot_of(r.from);
    const std::int64_t expires = r.now.mono_ms + std::int64_t{shared->channel_lifetime} * 1000;
    auto it = std::find_if(a->channels.begin(), a->channels.end(),
                           [&](const auto& c) { return c.number == *number; });
    if (it != a->channels.end()) {
      it->expires_ms = expires;
    } else {
      a->channels.push_back({*number, *peer, expires});
    }
    schedule(slot, expires);
    install_permission(*a, slot, *peer, r.now.mono_ms);  // §11.2: binding installs a permission
    auto b = begin(r, message_class::success_response);
    send_success(r, b);
  }

  // ------------------------------------------------------ RFC 8656 §11.4
  void on_send_indication(const client_ref& from, const stun::message_view& msg,
                          bytes_view raw, const now_t& now) {
    auto* a = allocation_of(from);
    if (a == nullptr) {
      // Worker hand-off: another worker may own the 5-tuple.
      if (from.proto == transport::udp && io.hand_off(from, raw, now)) return;
      bump(counters.send_indications);
      bump(counters.no_allocation_dropped);
      return;
    }
    bump(counters.send_indications);
    const auto peer_attr = msg.find(attr::xor_peer_address);
    const auto data_attr = msg.find(attr::data);
    if (!peer_attr || !data_attr) {
      bump(counters.malformed_dropped);
      return;
    }
    const auto peer = stun::decode_address(*peer_attr, msg.tid(), true);
    if (!peer) {
      bump(counters.malformed_dropped);
      return;
    }
    const auto* side = a->relay_for(peer->family);
    if (side == nullptr || !a->has_permission(*peer, now.mono_ms)) {
      bump(counters.no_permission_dropped);
      return;
    }
    forward_to_peer(*a, *side, *peer, data_attr->value, msg.has(attr::dont_fragment), now);
  }

  // ------------------------------------------------------ RFC 8656 §12.5
  void on_channel_data(const client_ref& from, bytes_view data, const now_t& now) {
    const auto cd = stun::parse_channel_data(data);
    if (!cd) {
      bump(counters.malformed_dropped);
      return;
    }
    auto* a = allocation_of(from);
    if (a == nullptr) {
      // Worker hand-off: another worker may own the 5-tuple.
      if (from.proto == transport::udp && io.hand_off(from, data, now)) return;
      bump(counters.no_allocation_dropped);
      return;
    }
    const auto* ch = a->channel_by_number(cd->channel);
    if (ch == nullptr || ch->expires_ms <= now.mono_ms) {
      bump(counters.unbound_channel_dropped);
      return;
    }
    const auto* side = a->relay_for(ch->peer.family);
    if (side == nullptr || !a->has_permission(ch->peer, now.mono_ms)) {
      bump(counters.no_permission_dropped);
      return;
    }
    forward_to_peer(*a, *side, ch->peer, cd->payload, false, now);
  }

  void forward_to_peer(detail::allocation& a, const detail::relay_side& side,
                       const stun::endpoint& peer, bytes_view payload, bool dont_fragment,
                       const now_t& now) {
    if (!within_bandwidth(a, payload.size(), now.mono_ms)) return;
    const std::array<bytes_view, 1> parts{payload};
    if (!io.send_to_peer(side.id, peer, parts, dont_fragment)) {
      bump(counters.relay_send_failed);
      if (limiter.allow(log_limiter::relay_send, now.mono_ms))
        spdlog::warn("turn: relay socket {} refused a datagram to {}", side.address.to_string(),
                     peer.to_string());
      return;
    }
    ++a.packets_to_peer;
    a.bytes_to_peer += payload.size();
    bump(counters.packets_to_peer);
    bump(counters.bytes_to_peer, payload.size());
    auto& ts = tenant_stats(a.tenant);
    bump(ts.packets_to_peer);
    bump(ts.bytes_to_peer, payload.size());
  }

  // ------------------------------------------- RFC 8656 §11.3, §12.6
  void on_peer_packet(relay_id id, const stun::endpoint& peer, bytes_view data,
                      const now_t& now) {
    if (id >= relay_owner.size() || relay_owner[id] >= slots.size()) return;
    auto* a = slots[relay_owner[id]].get();
    if (a == nullptr) return;
    if (!a->has_permission(peer, now.mono_ms)) {
      bump(counters.no_permission_dropped);
      return;
    }
    if (data.size() > 0xFFFF - 64) {  // cannot be framed back to the client
      bump(counters.malformed_dropped);
      return;
    }
    if (!within_bandwidth(*a, data.size(), now.mono_ms)) return;
    const auto* ch = a->channel_by_peer(peer);
    if (ch != nullptr && ch->expires_ms > now.mono_ms) {
      // ChannelData: a 4-byte header in front of the payload, padded to 4
      // bytes on streams (§12.5); over UDP the padding is not needed.
      std::array<std::byte, 4> header{};
      stun::write_channel_data_header(header, ch->number, static_cast<std::uint16_t>(data.size()));
      static constexpr std::array<std::byte, 3> zeros{};
      const std::size_t pad = a->client.proto == transport::udp ? 0 : (4 - data.size() % 4) % 4;
      const std::array<bytes_view, 3> parts{bytes_view(header), data, bytes_view(zeros.data(), pad)};
      io.send_to_client(a->client, std::span(parts.data(), pad ? 3 : 2));
    } else {
      // Data indication: STUN header, XOR-PEER-ADDRESS, DATA (§11.3).
      std::array<std::byte, 64> header{};
      stun::transaction_id tid;
      const std::uint64_t r1 = next_random();
      const std::uint32_t r2 = static_cast<std::uint32_t>(next_random());
      std::memcpy(tid.bytes.data(), &r1, 8);
      std::memcpy(tid.bytes.data() + 8, &r2, 4);
      stun::message_builder b(header, static_cast<std::uint16_t>(stun::method::data),
                              message_class::indication, tid);
      b.add_address(attr::xor_peer_address, peer, true);
      const std::size_t prefix = b.size();
      const std::size_t padded = (data.size() + 3) & ~std::size_t{3};
      const std::size_t body = prefix - stun::header_size + 4 + padded;
      header[2] = static_cast<std::byte>(body >> 8);
      header[3] = static_cast<std::byte>(body & 0xFF);
      header[prefix] = std::byte{0x00};
      header[prefix + 1] = std::byte{0x13};  // DATA
      header[prefix + 2] = static_cast<std::byte>(data.size() >> 8);
      header[prefix + 3] = static_cast<std::byte>(data.size() & 0xFF);
      static constexpr std::array<std::byte, 3> zeros{};
      const std::size_t pad = padded - data.size();
      const std::array<bytes_view, 3> parts{bytes_view(header.data(), prefix + 4), data,
                                            bytes_view(zeros.data(), pad)};
      io.send_to_client(a->client, std::span(parts.data(), pad ? 3 : 2));
    }
    ++a->packets_to_client;
    a->bytes_to_client += data.size();
    bump(counters.packets_to_client);
    bump(counters.bytes_to_client, data.size());
    auto& ts = tenant_stats(a->tenant);
    bump(ts.packets_to_client);
    bump(ts.bytes_to_client, data.size());
  }

  // ------------------------------------------------------------- timers
  void schedule(std::uint32_t slot, std::int64_t deadline_ms) {
    auto& a = *slots[slot];
    const std::int64_t at_s = (deadline_ms + 999) / 1000;
    if (a.scheduled_s >= 0 && a.scheduled_s <= at_s) return;  // an earlier check is armed
    a.scheduled_s = at_s;
    wheel.schedule(at_s, slot, a.generation);
  }

  void on_tick(const now_t& now) {
    wheel.advance(now.mono_ms / 1000, [&](const detail::timer_wheel::entry& e) {
      if (e.slot >= slots.size()) return;
      auto* a = slots[e.slot].get();
      if (a == nullptr || a->generation != e.generation || a->scheduled_s != e.at_s) return;
      a->scheduled_s = -1;
      housekeep(e.slot, now);
    });
    // Reservations nobody redeemed in time give their port back.
    std::erase_if(reservations, [&](const reservation& res) {
      if (res.expires_ms > now.mono_ms) return false;
      shared->relays[res.pool].ports->cancel(res.token);
      return true;
    });
    // Return the 5-tuple index's memory after mass frees (O(1) otherwise).
    by_client.shrink_if_sparse();
  }

  // Expires the allocation, or its expired permissions and channels, then
  // arms the next check (RFC 8656 §7, §9, §12).
  void housekeep(std::uint32_t slot, const now_t& now) {
    auto& a = *slots[slot];
    const std::int64_t t = now.mono_ms;
    if (a.expires_ms <= t) {
      free_allocation(slot, "expired", now);
      bump(counters.allocations_expired);
      return;
    }
    std::erase_if(a.permissions, [t](const auto& p) { return p.expires_ms <= t; });
    std::erase_if(a.channels,
                  [t](const auto& c) { return c.expires_ms + channel_cooldown_ms <= t; });
    std::int64_t next = a.expires_ms;
    for (const auto& p : a.permissions) next = std::min(next, p.expires_ms);
    for (const auto& c : a.channels)
      next = std::min(next, c.expires_ms > t ? c.expires_ms : c.expires_ms + channel_cooldown_ms);
    schedule(slot, next);
  }

  void free_allocation(std::uint32_t slot, const char* why, const now_t& now) {
    auto& a = *slots[slot];
    if (shared->usage) {
      usage_record rec;
      rec.tenant = a.tenant < shared->credentials->tenant_count()
                       ? std::string_view(shared->credentials->tenant_id(a.tenant))
                       : std::string_view();
      rec.user = a.username;
      rec.reason = why;
      rec.proto = a.client.proto;
      rec.client = a.client.remote;
      if (a.relay_count > 0) rec.relay = a.relays[0].address;
      if (a.relay_count > 1) rec.relay6 = &a.relays[1].address;
      rec.start_unix_ms = a.started_unix_ms;
      rec.end_unix_ms = a.started_unix_ms + (now.mono_ms - a.started_ms);
      rec.packets_to_peer = a.packets_to_peer;
      rec.bytes_to_peer = a.bytes_to_peer;
      rec.packets_to_client = a.packets_to_client;
      rec.bytes_to_client = a.bytes_to_client;
      shared->usage->record(rec);
    }
    close_relays(a);  // an unredeemed reservation lives on until its own timer
    spdlog::info(
        "allocation end ({}): {} {} -> {} user={} duration={:.1f}s client->peer {} pkts {} B, "
        "peer->client {} pkts {} B",
        why, to_string(a.client.proto), a.client.remote.to_string(), a.client.local.to_string(),
        a.username, static_cast<double>(now.mono_ms - a.started_ms) / 1000.0, a.packets_to_peer,
        a.bytes_to_peer, a.packets_to_client, a.bytes_to_client);
    if (shared->user_quotas)
      shared->user_quotas->release(user_quota::key_of(a.username), user_limit(a.tenant));
    if (shared->tenant_usage) shared->tenant_usage->release(a.tenant);
    const std::int64_t duration_ms = std::max<std::int64_t>(0, now.mono_ms - a.started_ms);
    std::size_t bucket = 0;
    while (bucket < allocation_duration_bounds_s.size() &&
           duration_ms > allocation_duration_bounds_s[bucket] * 1000)
      ++bucket;
    bump(counters.allocation_duration_buckets[bucket]);
    bump(counters.allocation_duration_sum_ms, static_cast<std::uint64_t>(duration_ms));
    auto& ts = tenant_stats(a.tenant);
    bump(ts.allocations_ended);
    auto& active = ts.active[static_cast<std::size_t>(a.client.proto)];
    active.store(active.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    if (a.client.proto == transport::udp) io.disown(a.client);
    by_client.erase(a.client, key_of());  // before the reset: key_of reads the slot
    slots[slot].reset();
    free_slots.push_back(slot);
    counters.active_allocations.store(by_client.size(), std::memory_order_relaxed);
  }

  void on_client_closed(const client_ref& client, const now_t& now) {
    const auto slot = slot_of(client);
    if (!slot) return;
    free_allocation(*slot, "closed", now);
    bump(counters.allocations_closed);
  }

  void shutdown(const now_t& now) {
    for (std::uint32_t s = 0; s < slots.size(); ++s) {
      if (slots[s]) {
        free_allocation(s, "shutdown", now);
        bump(counters.allocations_closed);
      }
    }
    for (const auto& res : reservations) shared->relays[res.pool].ports->cancel(res.token);
    reservations.clear();
  }
};

server::server(std::shared_ptr<const shared_state> shared, io_port& io, worker_counters& counters,
               unsigned worker_index)
    : impl_(std::make_unique<impl>(std::move(shared), io, counters, worker_index)) {}

server::~server() = default;

void server::on_client_packet(const client_ref& from, stun::bytes_view data, const now_t& now) {
  impl_->on_client_packet(from, data, now);
}

void server::on_peer_packet(relay_id id, const stun::endpoint& peer, stun::bytes_view data,
                            const now_t& now) {
  impl_->on_peer_packet(id, peer, data, now);
}

void server::on_client_closed(const client_ref& client, const now_t& now) {
  impl_->on_client_closed(client, now);
}

void server::on_tick(const now_t& now) { impl_->on_tick(now); }

void server::shutdown(const now_t& now) { impl_->shutdown(now); }

std::size_t server::allocation_count() const { return impl_->by_client.size(); }

std::vector<stun::endpoint> server::relays_of_for_test(const client_ref& client) const {
  std::vector<stun::endpoint> out;
  const auto slot = impl_->slot_of(client);
  if (!slot) return out;
  const auto& a = *impl_->slots[*slot];
  for (std::uint8_t i = 0; i < a.relay_count; ++i) out.push_back(a.relays[i].address);
  return out;
}

}  // namespace anyturn::turn
