// The probe's phases, in order, under one deadline: resolve, connect, tls,
// then Binding (stun:) or allocate, permission, channel, relay, refresh
// and deallocate (turn:, turns:). Two control connections, A and B; A
// sends numbered ChannelData to B's relayed address, B echoes each back.
#include "client.hpp"
#include "session.hpp"

#include <anyturn/probe/probe.hpp>

#include <netdb.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <poll.h>
#include <sstream>

namespace anyturn::probe {
namespace {

using namespace detail;
using namespace std::chrono_literals;

constexpr std::uint16_t channel = stun::min_channel;
constexpr std::uint32_t magic = 0x50524F42;  // "PROB": our packets, not strays
constexpr auto grace = 500ms;                // for stragglers after the last send
constexpr std::uint32_t refresh_lifetime = 600;

std::string seconds_text(std::chrono::milliseconds d) {
  std::ostringstream s;
  if (d.count() % 1000 == 0) {
    s << d.count() / 1000;
  } else {
    s << static_cast<double>(d.count()) / 1000.0;
  }
  return s.str() + " s";
}

// Times the phases and writes the first failure into the report.
class phases {
 public:
  phases(report& r, const options& o, clock::time_point deadline)
      : r_(r), opts_(o), deadline_(deadline) {}
  void begin(phase p) {
    current_ = p;
    start_ = clock::now();
  }
  bool end(bool ok, const failure& f = {}) {
    phase_result pr;
    pr.which = current_;
    pr.duration = clock::now() - start_;
    pr.ok = ok;
    if (!ok) {
      const bool timed_out = f.timed_out || clock::now() >= deadline_;
      pr.error = timed_out ? "timeout after " + seconds_text(opts_.timeout) + " in " +
                                 std::string(phase_name(current_))
                           : std::string(phase_name(current_)) + ": " + f.cause;
      r_.error = pr.error;
    }
    r_.phases.push_back(std::move(pr));
    return ok;
  }
  [[nodiscard]] clock::time_point deadline() const { return deadline_; }

 private:
  report& r_;
  const options& opts_;
  clock::time_point deadline_;
  phase current_ = phase::resolve;
  clock::time_point start_;
};

bool resolve(const target& t, std::vector<socket_address>& out, report& r, failure& f) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = t.proto == transport::udp ? SOCK_DGRAM : SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(t.port);
  const int rc = ::getaddrinfo(t.host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    f.cause = (rc == EAI_NONAME || rc == EAI_NODATA) ? "no such host" : ::gai_strerror(rc);
    return false;
  }
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    socket_address sa;
    std::memcpy(&sa.storage, a->ai_addr, a->ai_addrlen);
    sa.length = a->ai_addrlen;
    const auto text = sa.endpoint().to_string();
    if (std::find(r.resolved.begin(), r.resolved.end(), text) != r.resolved.end()) continue;
    r.resolved.push_back(text);
    out.push_back(sa);
  }
  ::freeaddrinfo(list);
  if (out.empty()) {
    f.cause = "no IPv4 or IPv6 address";
    return false;
  }
  return true;
}

// Connects A (trying every address in order) and then B to the one that worked.
bool connect_both(const target& t, const std::vector<socket_address>& addrs, connection& a,
                  connection* b, report& r, clock::time_point deadline, failure& f) {
  const bool stream = t.proto == transport::tcp;
  for (const auto& addr : addrs) {
    if (!a.open(addr, stream, deadline, f)) {
      if (f.timed_out) return false;
      continue;
    }
    r.server = addr.endpoint().to_string();
    return b == nullptr || b->open(addr, stream, deadline, f);
  }
  return false;
}

std::chrono::nanoseconds percentile(const std::vector<std::chrono::nanoseconds>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// ChannelData on the control connection: header, payload, and padding to 4
// bytes on streams (RFC 8656 §12.5).
bool send_channel_data(connection& c, stun::bytes_view payload, clock::time_point deadline,
                       failure& f) {
  std::array<std::byte, stun::channel_data_header_size + max_size + 3> buf{};
  stun::write_channel_data_header(buf, channel, static_cast<std::uint16_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), buf.begin() + stun::channel_data_header_size);
  std::size_t len = stun::channel_data_header_size + payload.size();
  if (c.stream()) len += stun::padding_of(payload.size());
  return c.send(stun::bytes_view(buf.data(), len), deadline, f);
}

void put_u32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (24 - 8 * i));
}
std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}

// Our probe packet's sequence number, if `frame` is one of ours on our channel.
std::optional<std::uint32_t> our_packet(const frame& in, std::size_t size, unsigned count) {
  if (stun::classify(in) != stun::frame_kind::channel_data) return std::nullopt;
  const auto cd = stun::parse_channel_data(in);
  if (!cd || cd->channel != channel || cd->payload.size() != size) return std::nullopt;
  if (get_u32(cd->payload.data()) != magic) return std::nullopt;
  const auto seq = get_u32(cd->payload.data() + 4);
  if (seq >= count) return std::nullopt;
  return seq;
}

// The relay phase: A sends `count` packets to B through both relays; B
// echoes each back. Returns false only on a transport failure or timeout.
bool relay(connection& a, connection& b, const options& o, report& r, clock::time_point deadline,
           failure& f) {
  std::vector<clock::time_point> sent_at(o.count);
  std::vector<bool> at_b(o.count, false);
  std::vector<bool> at_a(o.count, false);
  std::vector<std::chrono::nanoseconds> rtts;
  std::vector<std::byte> payload(o.size, std::byte{0});
  unsigned sent = 0;
  unsigned got_b = 0;
  unsigned got_a = 0;
  auto next_send = clock::now();
  clock::time_point stop_at = deadline;
  frame in;
  while (got_a < o.count) {
    const auto now = clock::now();
    if (sent < o.count && now >= deadline) {
      f.timed_out = true;
      return false;
    }
    if (sent == o.count && now >= stop_at) break;
    if (sent < o.count && now >= next_send) {
      put_u32(payload.data(), magic);
      put_u32(payload.data() + 4, sent);
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
      put_u32(payload.data() + 8, static_cast<std::uint32_t>(static_cast<std::uint64_t>(ns) >> 32));
      put_u32(payload.data() + 12, static_cast<std::uint32_t>(ns));
      sent_at[sent] = now;
      if (!send_channel_data(a, payload, deadline, f)) return false;
      ++sent;
      next_send = now + o.interval;
      if (sent == o.count) stop_at = std::min(deadline, clock::now() + grace);
    }
    const auto until = sent < o.count ? std::min(next_send, deadline) : stop_at;
    pollfd fds[2] = {{a.fd(), POLLIN, 0}, {b.fd(), POLLIN, 0}};
    ::poll(fds, 2, poll_timeout(until));
    // Drain both sides (TLS may hold decrypted frames the poll cannot see).
    failure rf;
    while (b.receive(in, clock::now(), rf)) {
      const auto seq = our_packet(in, o.size, o.count);
      if (!seq || at_b[*seq]) continue;
      at_b[*seq] = true;
      ++got_b;
      const auto cd = stun::parse_channel_data(in);
      if (!send_channel_data(b, cd->payload, deadline, f)) return false;
    }
    if (!rf.timed_out) return (f = rf, false);
    rf = {};
    while (a.receive(in, clock::now(), rf)) {
      const auto seq = our_packet(in, o.size, o.count);
      if (!seq || *seq >= sent || at_a[*seq]) continue;
      at_a[*seq] = true;
      ++got_a;
      rtts.push_back(clock::now() - sent_at[*seq]);
    }
    if (!rf.timed_out) return (f = rf, false);
  }
  r.sent = 2 * o.count;  // a packet B never got is also an echo never sent
  r.received = got_a + got_b;
  r.loss = 1.0 - static_cast<double>(r.received) / static_cast<double>(r.sent);
  if (!rtts.empty()) {
    std::sort(rtts.begin(), rtts.end());
    r.rtt = rtt_summary{percentile(rtts, 0.5), percentile(rtts, 0.99), rtts.back()};
  }
  if (got_a == 0) {
    f.cause = std::to_string(r.sent - r.received) + " of " + std::to_string(r.sent) +
              " packets lost (peer permission or firewall)";
    return false;
  }
  return true;
}

void probe_stun(const target& t, const options& o, report& r, phases& ph,
                const std::vector<socket_address>& addrs) {
  connection c;
  failure f;
  ph.begin(phase::connect);
  if (!ph.end(connect_both(t, addrs, c, nullptr, r, ph.deadline(), f), f)) return;
  std::optional<credentials> none;
  session s(c, none, r.software);
  ph.begin(phase::binding);
  if (!ph.end(s.binding(ph.deadline(), f), f)) return;
  if (s.mapped()) r.mapped = s.mapped()->to_string();
  (void)o;
  r.success = true;
}

void probe_turn(const target& t, const options& o, report& r, phases& ph,
                const std::vector<socket_address>& addrs) {
  connection ca;
  connection cb;
  failure f;
  ph.begin(phase::connect);
  if (!ph.end(connect_both(t, addrs, ca, &cb, r, ph.deadline(), f), f)) return;
  if (t.kind == scheme::turns) {
    const tls_settings tls{t.host, o.ca_file, o.insecure};
    ph.begin(phase::tls);
    if (!ph.end(ca.start_tls(tls, ph.deadline(), f) && cb.start_tls(tls, ph.deadline(), f), f)) return;
  }
  session a(ca, o.auth, r.software);
  session b(cb, o.auth, r.software);
  // Whatever fails after this point, the allocations made are deleted
  // (best effort, within the deadline).
  struct cleanup {
    session& a;
    session& b;
    clock::time_point deadline;
    ~cleanup() {
      failure ignored;
      for (session* s : {&a, &b}) {
        if (s->allocated() && clock::now() < deadline) s->refresh(0, deadline, ignored);
      }
    }
  } deleter{a, b, ph.deadline()};

  ph.begin(phase::allocate);
  const bool allocated = a.allocate(ph.deadline(), f) && b.allocate(ph.deadline(), f);
  if (a.mapped()) r.mapped = a.mapped()->to_string();
  if (a.allocated()) r.relayed.push_back(a.relayed().to_string());
  if (b.allocated()) r.relayed.push_back(b.relayed().to_string());
  if (!ph.end(allocated, f)) return;

  ph.begin(phase::permission);
  if (!ph.end(a.create_permission(b.relayed(), ph.deadline(), f) &&
                  b.create_permission(a.relayed(), ph.deadline(), f),
              f)) {
    return;
  }
  ph.begin(phase::channel);
  if (!ph.end(a.channel_bind(channel, b.relayed(), ph.deadline(), f) &&
                  b.channel_bind(channel, a.relayed(), ph.deadline(), f),
              f)) {
    return;
  }
  ph.begin(phase::relay);
  if (!ph.end(relay(ca, cb, o, r, ph.deadline(), f), f)) return;
  ph.begin(phase::refresh);
  if (!ph.end(a.refresh(refresh_lifetime, ph.deadline(), f) &&
                  b.refresh(refresh_lifetime, ph.deadline(), f),
              f)) {
    return;
  }
  ph.begin(phase::deallocate);
  if (!ph.end(a.refresh(0, ph.deadline(), f) && b.refresh(0, ph.deadline(), f), f)) return;
  r.success = true;
}

// OpenSSL writes to its socket with write(), which raises SIGPIPE when the
// server has closed the connection; the default action would end the whole
// process (the daemon, for /probe). The signal is blocked in this thread for
// the probe's duration, and one raised meanwhile is taken off the thread's
// pending set before the old mask comes back.
class sigpipe_blocker {
 public:
  sigpipe_blocker() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~sigpipe_blocker() {
    if (!was_pending_) {
      const timespec zero{};
      while (::sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_blocker(const sigpipe_blocker&) = delete;
  sigpipe_blocker& operator=(const sigpipe_blocker&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool was_pending_ = false;
};

report run_checked(const target& t, const options& given) {
  const sigpipe_blocker no_sigpipe;
  options o = given;  // the bounds hold whoever calls
  o.count = std::clamp(o.count, 1u, max_count);
  o.size = std::clamp(o.size, min_size, max_size);
  o.timeout = std::max(o.timeout, std::chrono::milliseconds{1});
  o.interval = std::max(o.interval, std::chrono::milliseconds{0});
  report r;
  r.url = t.url;
  const auto start = clock::now();
  phases ph(r, o, start + o.timeout);
  std::vector<socket_address> addrs;
  failure f;
  ph.begin(phase::resolve);
  if (ph.end(resolve(t, addrs, r, f), f)) {
    if (t.kind == scheme::stun) {
      probe_stun(t, o, r, ph, addrs);
    } else {
      probe_turn(t, o, r, ph, addrs);
    }
  }
  r.duration = clock::now() - start;
  return r;
}

}  // namespace

report run(const target& t, const options& opts) {
  try {
    return run_checked(t, opts);
  } catch (const std::exception& e) {
    report r;
    r.url = t.url;
    r.error = std::string("internal error: ") + e.what();
    return r;
  }
}

}  // namespace anyturn::probe
