// libFuzzer target: the TURN state machine of one worker (turn::worker_core)
// driven through its sans-I/O seam (relay::io_port), the way the net layer
// drives it, with a fake clock.
//
// The input is a program of steps: requests from four clients (three UDP
// 5-tuples and one TCP connection), each choosing its method, attributes,
// user and how it is signed; Send indications and ChannelData; datagrams
// from peers to relay sockets; clock advances with a tick; stream closes;
// retransmissions. The harness signs: it knows every user's password and
// the REST secrets, mints the nonce the server would hand out, and adds
// MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT as the input asks, so the
// authenticated paths are reached.
//
// Fleet steps (issue 13) turn the drain on and off with or without an
// alternate node, put the listeners' addresses among the anycast ones, and
// revoke a user's credentials.
//
// After every step the invariants are checked (a failure traps):
//   - every allocation has an owner (a user) and belongs to one of the
//     clients; allocation_count() agrees with the table walk and with the
//     worker's limit;
//   - every relay socket of an allocation is open, on the address its side
//     names, and every open socket belongs to exactly one allocation (no
//     socket leaked or shared);
//   - each port pool has at least as many ports taken as sockets open on it;
//   - every live channel has a permission: a ChannelBind installs one for
//     the channel's peer (RFC 8656 §12), so while that permission's lifetime
//     since the last bind has not run out, the peer is permitted; channel
//     numbers and peers are unique within an allocation;
//   - limits.allocation are never exceeded: permissions (peer IPs) and
//     channels within max_peers and max_channels, and the packets and bytes
//     relayed each way within the token buckets' burst plus their rate over
//     the allocation's age;
//   - the server's own addresses: a channel is flagged own exactly when its
//     peer is an own address, and nothing is ever sent to an own address
//     on a port that is not a live relay port;
//   - quotas: no user holds more allocations than its limit, the per-user
//     count is never below the user's allocations nor above the limit (a
//     release too many would wrap it), and each tenant's count is exactly
//     its allocations and within its limit;
// and at the end, once the clock has passed every lifetime, there is no
// allocation, no open socket, no port taken in any pool and no quota held.
#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/nonce.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/auth/revocations.hpp>
#include <anyturn/relay/allocation.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/relay/own_addresses.hpp>
#include <anyturn/relay/port_pool.hpp>
#include <anyturn/stun/message.hpp>
#include <anyturn/turn/fleet_signals.hpp>
#include <anyturn/turn/quota.hpp>
#include <anyturn/turn/worker_core.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace anyturn;
namespace attr = stun::attr;
using relay::client_ref;
using relay::now_t;
using stun::message_class;

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text); }

constexpr const char* realm = "example.org";
constexpr const char* default_secret = "fuzz-rest-secret-0123456789";
constexpr const char* acme_secret = "acme-rest-secret-0123456789";
constexpr std::uint32_t user_limit = 3;       // shared_state::user_quotas
constexpr std::uint32_t acme_max = 2;         // tenant acme: allocations
constexpr std::uint32_t acme_per_user = 1;    // tenant acme: per user
constexpr std::uint32_t worker_max = 6;       // shared_state::max_allocations
constexpr std::size_t max_steps = 96;
// limits.allocation, small enough for a short input to reach every limit.
constexpr relay::allocation_limits limits{/*max_peers*/ 3, /*max_channels*/ 2, /*permissions_per_second*/ 2,
                                          /*permission_burst*/ 3, /*packets_per_second*/ 4,
                                          /*bytes_per_second*/ 3000};

// The io seam: records what the core opens and sends.
struct fake_io final : relay::io_port {
  const relay::own_addresses* own = nullptr;
  std::map<relay::relay_id, stun::endpoint> open;
  std::set<std::uint16_t> refused;  // the kernel says EADDRINUSE for these ports
  std::vector<std::vector<std::byte>> to_client;
  bool broken = false;  // the core misused the seam

  void send_to_client(const client_ref& to, relay::fragments data) override {
    if (to.proto == relay::transport::udp && to.listener > 3) broken = true;  // no such socket
    std::vector<std::byte> out;
    for (auto p : data) out.insert(out.end(), p.begin(), p.end());
    if (to_client.size() < 64) to_client.push_back(std::move(out));
  }
  std::error_code open_relay(relay::relay_id id, const stun::endpoint& bind) override {
    if (refused.count(bind.port)) return std::make_error_code(std::errc::address_in_use);
    if (open.count(id)) broken = true;  // an id reused while open
    for (const auto& [other, at] : open)
      if (at == bind) broken = true;  // two sockets on one address and port
    open[id] = bind;
    return {};
  }
  void close_relay(relay::relay_id id) override {
    if (open.erase(id) != 1) broken = true;  // closing what is not open
  }
  // RFC 5780: the IPv4 UDP listener 192.0.2.1:3478 heads a group with
  // 192.0.2.2 (listener index bit 0: port+1, bit 1: the other IP).
  std::optional<client_ref> alternate(const client_ref& c, bool change_ip, bool change_port) override {
    if (c.proto != relay::transport::udp || !c.local.is_v4() || c.listener > 3) return std::nullopt;
    client_ref out = c;
    out.listener = c.listener ^ (change_ip ? 2U : 0U) ^ (change_port ? 1U : 0U);
    out.local = stun::endpoint::v4((out.listener & 2U) != 0 ? 0xC0000202u : 0xC0000201u,
                                   static_cast<std::uint16_t>(3478 + (out.listener & 1U)));
    return out;
  }
  bool binding_only(const client_ref& c) override {
    return c.proto == relay::transport::udp && c.local.is_v4() && c.listener != 0;
  }
  bool send_to_peer(relay::relay_id id, const stun::endpoint& peer, relay::fragments, bool) override {
    if (!open.count(id)) broken = true;  // sending from a closed socket
    // Into the host itself: only to a live relay port.
    if (own != nullptr && own->contains(peer) && !own->is_relay_port(peer)) broken = true;
    return true;
  }
};

struct user {
  std::string name;      // as sent in USERNAME
  std::string password;  // the long-term password (REST: derived from the secret)
  std::string quota_key;
  auth::tenant_index tenant;
};

class input {
 public:
  input(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  std::uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
  std::uint16_t u16() {
    const unsigned hi = byte();  // two statements: the order is defined
    return static_cast<std::uint16_t>(hi << 8 | byte());
  }
  std::uint32_t u32() {
    const std::uint32_t hi = u16();
    return hi << 16 | u16();
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_, i_ = 0;
};

class harness {
 public:
  harness() {
    auto s = std::make_shared<turn::shared_state>();
    std::vector<auth::tenant_credentials> t(2);
    t[0].users.push_back({"alice", std::string("wonderland"), std::nullopt});
    t[0].users.push_back({"bob", std::string("builder"), std::nullopt});
    t[0].secrets = {default_secret};
    t[1].id = "acme";
    t[1].users.push_back({"dave", std::string("dave-pass"), std::nullopt});
    t[1].secrets = {acme_secret};
    s->credentials = std::make_shared<auth::credential_store>(realm, t);
    s->nonces = std::make_shared<auth::nonce_service>(std::vector<std::uint8_t>(32, 7), 600, true);
    s->peers = std::make_shared<auth::peer_policy>(std::vector<auth::cidr>{},
                                                   std::vector<auth::cidr>{});
    s->relays.push_back({ep("198.51.100.7:0"), std::make_shared<relay::port_pool>(50000, 50007)});
    s->relays.push_back({ep("[2001:db8::7]:0"), std::make_shared<relay::port_pool>(50000, 50003)});
    // The listeners the clients talk to are own addresses, with the relays.
    std::vector<relay::own_addresses::relay_range> own_relays;
    for (const auto& r : s->relays) own_relays.push_back({r.ip, r.ports});
    s->own = std::make_shared<relay::own_addresses>(
        std::vector<stun::endpoint>{ep("192.0.2.1:3478"), ep("[2001:db8::1]:3478")}, std::move(own_relays));
    io_.own = s->own.get();
    s->allocation_limits = limits;
    s->max_allocations = worker_max;
    // A small sketch: a fresh one per input must be cheap to build.
    s->user_quotas = std::make_shared<turn::user_quota>(user_limit, 256);
    turn::tenant_policy acme;
    acme.id = "acme";
    acme.max_allocations = acme_max;
    acme.max_allocations_per_user = acme_per_user;
    acme.bandwidth_bytes_per_s = 2000;
    acme.allocation = limits;
    turn::tenant_policy default_tenant;
    default_tenant.allocation = limits;
    s->tenants = {default_tenant, acme};
    s->tenant_usage = std::make_shared<turn::tenant_quota>(2);
    fleet_ = std::make_shared<turn::fleet_signals>();
    s->fleet = fleet_;
    board_ = std::make_shared<auth::revocation_board>();
    s->revocations = board_;
    s->unicast_ips = {ep("198.51.100.50:0"), ep("[2001:db8::50]:0")};
    shared_ = s;
    core_ = std::make_unique<turn::worker_core>(s, io_, counters_, 0);

    for (int i = 0; i < 3; ++i) {
      client_ref c;
      c.proto = relay::transport::udp;
      c.remote = ep(i == 2 ? "[2001:db8:1::10]:40000" : "203.0.113.10:40000");
      c.remote.port = static_cast<std::uint16_t>(40000 + i);
      c.local = ep(i == 2 ? "[2001:db8::1]:3478" : "192.0.2.1:3478");
      clients_.push_back(c);
    }
    client_ref tcp;
    tcp.proto = relay::transport::tcp;
    tcp.connection = 7;
    tcp.remote = ep("203.0.113.11:50123");
    tcp.local = ep("192.0.2.1:3478");
    clients_.push_back(tcp);

    peers_ = {ep("93.184.216.34:5000"),  ep("93.184.216.34:5001"), ep("93.184.216.35:6000"),
              ep("[2606:2800:220:1::1]:7000"), ep("10.0.0.1:5000"),  ep("127.0.0.1:3478"),
              ep("198.51.100.7:50000"), ep("198.51.100.7:50001"), ep("[2001:db8::7]:50000"),
              ep("0.0.0.0:1"), ep("192.0.2.1:3478"), ep("198.51.100.7:9641")};
  }

  void run(input& in) {
    for (std::size_t step = 0; step < max_steps && !in.empty(); ++step) {
      const std::uint8_t op = in.byte();
      const bool was_draining = fleet_->draining();
      const std::size_t had = core_->allocation_count();
      switch (op % 8) {
        case 0:
        case 1:
        case 2: request(in, op); break;
        case 3: send_indication(in); break;
        case 4: channel_data(in); break;
        case 5: peer_datagram(in); break;
        case 6: advance(in.byte() % 4 == 0 ? std::int64_t{in.byte()} * 30 : in.byte() % 16); break;
        case 7: other(in, op); break;
      }
      // A draining node makes no new allocation.
      if (was_draining && fleet_->draining()) FUZZ_CHECK(core_->allocation_count() <= had);
      check();
    }
    // Past every lifetime (allocations, reservations, channel cool-down):
    // everything is gone and every resource is back.
    advance(3700);
    advance(400);
    check();
    FUZZ_CHECK(core_->allocation_count() == 0);
    FUZZ_CHECK(io_.open.empty());
    for (const auto& r : shared_->relays) FUZZ_CHECK(r.ports->in_use() == 0);
    for (const auto& u : users()) FUZZ_CHECK(shared_->user_quotas->count(u.quota_key) == 0);
    for (std::size_t t = 0; t < 2; ++t) FUZZ_CHECK(shared_->tenant_usage->active(t) == 0);
  }

 private:
  std::vector<user> users() const {
    std::vector<user> u;
    u.push_back({"alice", "wonderland", "alice", 0});
    u.push_back({"bob", "builder", "bob", 0});
    u.push_back({"dave", "dave-pass", "dave", 1});
    const std::string carol = auth::rest_username(now_.unix_s, 3600, "carol");
    u.push_back({carol, auth::rest_password(default_secret, carol), "carol", 0});
    const std::string erin = auth::rest_username(now_.unix_s, 3600, "acme:erin");
    u.push_back({erin, auth::rest_password(acme_secret, erin), std::string(turn::user_quota::key_of(erin)), 1});
    const std::string old = auth::rest_username(now_.unix_s, -10, "carol");  // expired
    u.push_back({old, auth::rest_password(default_secret, old), "carol", 0});
    return u;
  }

  stun::transaction_id next_tid() {
    stun::transaction_id t;
    ++tid_counter_;
    for (std::size_t i = 0; i < t.bytes.size(); ++i)
      t.bytes[i] = static_cast<std::byte>((tid_counter_ >> (8 * (i % 4))) ^ (i * 29));
    return t;
  }

  void deliver(const client_ref& from, stun::bytes_view msg) {
    io_.to_client.clear();
    core_->on_client_packet(from, msg, now_);
    FUZZ_CHECK(!io_.broken);
    // Learn what the answers hand out: reservation tokens, relayed ports.
    for (const auto& out : io_.to_client) {
      const auto parsed = stun::parse_message(out);
      if (!parsed) continue;  // ChannelData or Data towards the client
      if (const auto tok = parsed->find(attr::reservation_token)) {
        if (const auto v = stun::decode_reservation_token(*tok)) tokens_[v_index_++ % tokens_.size()] = *v;
      }
    }
  }

  // A request from a client: the input picks every part.
  void request(input& in, std::uint8_t op) {
    const client_ref& from = clients_[in.byte() % clients_.size()];
    static constexpr std::array<std::uint16_t, 7> methods{
        0x003 /*allocate*/, 0x004 /*refresh*/, 0x008 /*create_permission*/,
        0x009 /*channel_bind*/, 0x003, 0x001 /*binding*/, 0x00A /*unknown*/};
    const std::uint16_t method = methods[in.byte() % methods.size()];
    const std::uint16_t mask = in.u16();
    const std::uint8_t signing = in.byte();
    const stun::transaction_id tid = next_tid();

    std::array<std::byte, 1500> buf{};
    stun::message_builder b(buf, method, message_class::request, tid);
    if (mask & 0x0001) b.add_requested_transport(in.byte() % 8 == 0 ? 6 : 17);
    if (mask & 0x0002) {
      static constexpr std::array<std::uint32_t, 6> lifetimes{0, 1, 60, 600, 3600, 0xFFFFFFFF};
      b.add_u32(attr::lifetime, lifetimes[in.byte() % lifetimes.size()]);
    }
    if (mask & 0x0004) {
      const std::uint8_t n = 1 + in.byte() % 3;
      for (std::uint8_t i = 0; i < n; ++i)
        b.add_address(attr::xor_peer_address, peers_[in.byte() % peers_.size()], true);
    }
    if (mask & 0x0008) {
      const std::uint8_t c = in.byte();
      b.add_channel_number(c < 16 ? static_cast<std::uint16_t>(0x4000 + c)
                                  : static_cast<std::uint16_t>(c << 8 | in.byte()));
    }
    if (mask & 0x0010) b.add_even_port((in.byte() & 1) != 0);
    if (mask & 0x0020) {
      const std::uint8_t t = in.byte();
      b.add_reservation_token(t < 128 ? tokens_[t % tokens_.size()] : std::uint64_t{in.u32()});
    }
    if (mask & 0x0040)
      b.add_address_family(attr::requested_address_family,
                           in.byte() & 1 ? stun::address_family::ipv6 : stun::address_family::ipv4);
    if (mask & 0x0080)
      b.add_address_family(attr::additional_address_family,
                           in.byte() & 1 ? stun::address_family::ipv6 : stun::address_family::ipv4);
    if (mask & 0x0100) b.add_flag(attr::dont_fragment);
    if (mask & 0x0200) b.add_u32(static_cast<std::uint16_t>(0x0030 + in.byte() % 8), 0);  // unknown, comprehension-required
    if (mask & 0x0400) b.add_string(attr::software, "fuzz");
    if (mask & 0x4000) {  // RFC 5780 (the fake io's listener group)
      const std::uint8_t x = in.byte();
      b.add_change_request((x & 1) != 0, (x & 2) != 0);
      if ((x & 4) != 0) b.add_response_port(static_cast<std::uint16_t>(x < 128 ? 0 : 40000 + x));
    }

    // Authentication: which user, which nonce, which key.
    const auto all = users();
    const user& u = all[signing % all.size()];
    const unsigned how = signing / 8 % 8;  // 0-4 good, 5 wrong password, 6 stale nonce, 7 none
    if (how != 7) {
      std::array<char, auth::nonce_service::nonce_size> nonce_buf{};
      const std::int64_t nonce_time = how == 6 ? now_.unix_s - 4000 : now_.unix_s;
      const auto nonce = shared_->nonces->mint(from.remote, nonce_time, nonce_buf);
      const bool sha256 = (mask & 0x0800) != 0;
      const std::string password = how == 5 ? "not-the-password" : u.password;
      b.add_string(attr::username, u.name);
      b.add_string(attr::realm, realm);
      b.add_string(attr::nonce, nonce);
      if (sha256) {
        if ((mask & 0x1000) == 0) {
          constexpr std::array algs{stun::password_algorithm::sha256, stun::password_algorithm::md5};
          b.add_password_algorithms(algs);
        }
        b.add_password_algorithm(stun::password_algorithm::sha256);
        const auto key = auth::derive_sha256_key(u.name, realm, password);
        b.add_message_integrity_sha256(std::as_bytes(std::span(key)));
      } else {
        const auto key = auth::derive_md5_key(u.name, realm, password);
        b.add_message_integrity(std::as_bytes(std::span(key)));
      }
    }
    if ((mask & 0x2000) == 0) b.add_fingerprint();
    const auto msg = b.finish();
    if (!msg) return;
    last_request_.assign(msg->begin(), msg->end());
    last_from_ = static_cast<std::size_t>(&from - clients_.data());
    deliver(from, *msg);
    (void)op;
  }

  void send_indication(input& in) {
    const client_ref& from = clients_[in.byte() % clients_.size()];
    std::array<std::byte, 600> buf{};
    stun::message_builder b(buf, 0x006, message_class::indication, next_tid());
    b.add_address(attr::xor_peer_address, peers_[in.byte() % peers_.size()], true);
    const std::size_t len = in.byte() % 64;
    const auto slot = b.add_data_slot(len);
    for (auto& x : slot) x = static_cast<std::byte>(in.byte());
    if (in.byte() & 1) b.add_flag(attr::dont_fragment);
    const auto msg = b.finish();
    if (msg) deliver(from, *msg);
  }

  void channel_data(input& in) {
    const client_ref& from = clients_[in.byte() % clients_.size()];
    const std::uint16_t channel = static_cast<std::uint16_t>(0x4000 + in.byte() % 16);
    const std::size_t len = in.byte() % 64;
    std::vector<std::byte> msg(4 + len);
    stun::write_channel_data_header(msg, channel, static_cast<std::uint16_t>(len));
    for (std::size_t i = 0; i < len; ++i) msg[4 + i] = static_cast<std::byte>(in.byte());
    deliver(from, msg);
  }

  void peer_datagram(input& in) {
    const std::uint8_t pick = in.byte();
    relay::relay_id id = pick;  // mostly an open socket, sometimes any id
    if (pick < 200 && !io_.open.empty()) {
      auto it = io_.open.begin();
      std::advance(it, pick % io_.open.size());
      id = it->first;
    }
    const stun::endpoint& peer = peers_[in.byte() % peers_.size()];
    std::vector<std::byte> data(in.byte() % 48);
    for (auto& x : data) x = static_cast<std::byte>(in.byte());
    core_->on_peer_packet(id, peer, data, now_);
    FUZZ_CHECK(!io_.broken);
  }

  void advance(std::int64_t seconds) {
    now_.mono_ms += seconds * 1000;
    now_.unix_s += seconds;
    core_->on_tick(now_);
    FUZZ_CHECK(!io_.broken);
  }

  void other(input& in, std::uint8_t op) {
    if (op >= 224) return fleet_step(in);
    switch (op / 8 % 4) {
      case 0:  // the TCP connection closes (its allocation ends now)
        core_->on_client_closed(clients_[3], now_);
        FUZZ_CHECK(!io_.broken);
        clients_[3].connection += 1;  // the next one is a new connection
        break;
      case 1:  // a retransmission of the last request, maybe from elsewhere
        if (!last_request_.empty())
          deliver(clients_[in.byte() & 1 ? last_from_ : in.byte() % clients_.size()], last_request_);
        break;
      case 2: {  // the kernel refuses (or gives back) a relay port
        const std::uint16_t port = static_cast<std::uint16_t>(50000 + in.byte() % 8);
        if (!io_.refused.erase(port)) io_.refused.insert(port);
        break;
      }
      case 3:  // a sub-millisecond to seconds step without a tick
        now_.mono_ms += in.byte() * 10;
        break;
    }
  }

  // The fleet: drain, anycast, revocations.
  void fleet_step(input& in) {
    const std::uint8_t what = in.byte();
    switch (what % 4) {
      case 0:
        fleet_->set_draining(!fleet_->draining());
        break;
      case 1: {
        turn::alternate_node n;
        n.v4 = ep("198.51.100.60:0");
        if (what & 0x10) n.v6 = ep("[2001:db8::60]:0");
        n.udp_port = 3478;
        n.tcp_port = (what & 0x20) ? 0 : 3478;
        if (what & 0x40) {
          fleet_->set_drain_target(std::nullopt);
        } else {
          fleet_->set_drain_target(n);
        }
        break;
      }
      case 2:
        if (shared_->anycast_ips.empty()) {
          shared_->anycast_ips = {ep("192.0.2.1:0"), ep("[2001:db8::1]:0")};
        } else {
          shared_->anycast_ips.clear();
        }
        break;
      case 3: {
        const auto all = users();
        const user& u = all[in.byte() % all.size()];
        auth::revocation r;
        r.tenant = u.tenant == 0 ? "" : "acme";
        if (what & 0x10) {
          r.username = u.name;
        } else {
          r.user = std::string(auth::rest_user_of(u.name, r.tenant));
          if (r.user.empty()) r.username = u.name;  // a static user
        }
        r.until_unix = now_.unix_s + 100000;
        board_->add(r);
        core_->on_tick(now_);  // the worker notices on its tick
        FUZZ_CHECK(!io_.broken);
        break;
      }
    }
  }

  // ---- the invariants ----
  void check() {
    const std::int64_t now = now_.mono_ms;
    std::size_t count = 0;
    std::map<std::string, std::uint32_t> per_key;
    std::map<std::string, std::uint32_t> key_tenant;
    std::array<std::uint32_t, 2> per_tenant{};
    std::map<relay::relay_id, int> sockets;
    std::set<std::size_t> owners;
    std::set<const relay::allocation*> live;
    const auto revoked = board_->snapshot();
    core_->for_each_allocation([&](const relay::allocation& a, std::string_view username) {
      ++count;
      // A revoked credential holds no allocation (past the tick that saw it).
      FUZZ_CHECK(!revoked->revoked(a.tenant == 0 ? "" : "acme", username, now_.unix_s));
      FUZZ_CHECK(!username.empty());  // an owner
      const auto who = std::find(clients_.begin(), clients_.end(), a.client);
      FUZZ_CHECK(who != clients_.end() || a.client.proto == relay::transport::tcp);
      if (who != clients_.end()) FUZZ_CHECK(owners.insert(static_cast<std::size_t>(who - clients_.begin())).second);
      const std::string key(turn::user_quota::key_of(username));
      ++per_key[key];
      key_tenant[key] = a.tenant;
      FUZZ_CHECK(a.tenant < per_tenant.size());
      ++per_tenant[a.tenant];
      FUZZ_CHECK(a.relay_count >= 1 && a.relay_count <= 2);
      for (std::uint8_t i = 0; i < a.relay_count; ++i) {
        const auto& side = a.relays[i];
        const auto it = io_.open.find(side.id);
        FUZZ_CHECK(it != io_.open.end() && it->second == side.address);
        FUZZ_CHECK(side.pool < shared_->relays.size());
        FUZZ_CHECK(++sockets[side.id] == 1);
      }
      std::set<std::uint16_t> numbers;
      std::vector<stun::endpoint> bound;
      for (const auto& c : a.channels) {
        FUZZ_CHECK(stun::valid_channel(c.number));
        FUZZ_CHECK(numbers.insert(c.number).second);
        FUZZ_CHECK(std::find(bound.begin(), bound.end(), c.peer) == bound.end());
        bound.push_back(c.peer);
        FUZZ_CHECK(a.relay_for(c.peer.family) != nullptr);
        // Bound (or refreshed) at c.expires_ms - channel lifetime, when the
        // bind installed a permission for the peer's IP.
        const std::int64_t permitted_until = c.expires_ms -
                                             std::int64_t{shared_->channel_lifetime} * 1000 +
                                             std::int64_t{shared_->permission_lifetime} * 1000;
        if (c.expires_ms > now && permitted_until > now) FUZZ_CHECK(a.has_permission(c.peer, now));
        FUZZ_CHECK(c.own_peer == shared_->own->contains(c.peer));
      }
      // limits.allocation.
      FUZZ_CHECK(a.permission_count() <= limits.max_peers);
      FUZZ_CHECK(a.channel_count() <= limits.max_channels);
      const auto born = born_.try_emplace(&a, now).first->second;
      const std::uint64_t age_ms = static_cast<std::uint64_t>(now - born);
      const auto within = [&](std::uint64_t sent, std::uint64_t rate) {
        return sent <= rate + rate * age_ms / 1000 + 1;
      };
      FUZZ_CHECK(within(a.packets_to_peer, limits.packets_per_second));
      FUZZ_CHECK(within(a.packets_to_client, limits.packets_per_second));
      FUZZ_CHECK(within(a.bytes_to_peer, limits.bytes_per_second));
      FUZZ_CHECK(within(a.bytes_to_client, limits.bytes_per_second));
      live.insert(&a);
    });
    std::erase_if(born_, [&](const auto& e) { return live.count(e.first) == 0; });
    FUZZ_CHECK(count == core_->allocation_count());
    FUZZ_CHECK(count <= worker_max);
    // Every open socket belongs to an allocation; each pool covers its sockets.
    FUZZ_CHECK(sockets.size() == io_.open.size());
    for (const auto& r : shared_->relays) {
      std::size_t on_pool = 0;
      for (const auto& [id, at] : io_.open)
        if (at.family == r.ip.family && at.ip == r.ip.ip) ++on_pool;
      FUZZ_CHECK(r.ports->in_use() >= on_pool && r.ports->in_use() <= r.ports->capacity());
    }
    // Quotas.
    for (const auto& [key, n] : per_key) {
      const std::uint32_t limit = key_tenant[key] == 1 ? acme_per_user : user_limit;
      FUZZ_CHECK(n <= limit);
      const std::uint32_t counted = shared_->user_quotas->count(key);
      FUZZ_CHECK(counted >= n && counted <= user_limit);
    }
    for (const auto& u : users()) FUZZ_CHECK(shared_->user_quotas->count(u.quota_key) <= user_limit);
    for (std::size_t t = 0; t < per_tenant.size(); ++t)
      FUZZ_CHECK(shared_->tenant_usage->active(t) == per_tenant[t]);
    FUZZ_CHECK(per_tenant[1] <= acme_max);
  }

  fake_io io_;
  relay::worker_counters counters_;
  std::shared_ptr<turn::fleet_signals> fleet_;
  std::shared_ptr<auth::revocation_board> board_;
  std::shared_ptr<turn::shared_state> shared_;
  std::unique_ptr<turn::worker_core> core_;
  now_t now_{1'000'000, 1'800'000'000};
  std::vector<client_ref> clients_;
  std::vector<stun::endpoint> peers_;
  // When each live allocation was first seen (the step that created it:
  // steps that move the clock create none).
  std::map<const relay::allocation*, std::int64_t> born_;
  std::array<std::uint64_t, 4> tokens_{};
  std::size_t v_index_ = 0;
  std::vector<std::byte> last_request_;
  std::size_t last_from_ = 0;
  std::uint64_t tid_counter_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // the core logs every allocation
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in(data, size);
  harness h;  // a fresh worker and fresh shared state for every input
  h.run(in);
  return 0;
}
