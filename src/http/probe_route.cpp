// GET /probe?target=URL[&transport=udp|tcp][&count=N] (docs/probe.md): the
// admin key, the query and the limits are checked on the HTTP thread; the
// probe itself (resolve, target allowance, probe::run) runs on a
// probe_runner thread and its answer is handed to `deliver`, which the
// server posts back to the connection's strand (server.cpp).
#include <anyturn/http/api.hpp>
#include <anyturn/http/probe_route.hpp>

#include "replies.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <exception>
#include <thread>
#include <utility>

#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace anyturn::http {
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view text_type = "text/plain; charset=utf-8";

response text_reply(const request& req, bhttp::status status, std::string_view line) {
  response res = make_response(req, status, text_type, std::string(line) + "\n");
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

// An IP literal, IPv4-mapped IPv6 as IPv4; nullopt when not an address.
std::optional<boost::asio::ip::address> ip_of(std::string_view text) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

probe_listener::kind kind_of(const probe::target& t) {
  if (t.kind == probe::scheme::turns) return probe_listener::kind::tls;
  if (t.kind == probe::scheme::stun) return probe_listener::kind::udp;
  return t.proto == probe::transport::tcp ? probe_listener::kind::tcp : probe_listener::kind::udp;
}

// Whether `a` is an address of listener `l` (a wildcard: of the interfaces).
bool listens_on(const probe_listener& l, const boost::asio::ip::address& a,
                std::span<const std::string> interfaces) {
  const auto la = ip_of(l.address);
  if (!la) return false;
  if (!la->is_unspecified()) return *la == a;
  if (la->is_v4() != a.is_v4()) return false;
  return std::any_of(interfaces.begin(), interfaces.end(), [&](const std::string& i) {
    const auto ia = ip_of(i);
    return ia && *ia == a;
  });
}

void append_number(std::string& out, double v) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.9g", v);
  out.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

void family(std::string& out, std::string_view name, std::string_view help,
            std::string_view type = "gauge") {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, std::string_view name, std::string_view label, std::string_view value,
            double v) {
  out += name;
  if (!label.empty()) {
    out += '{';
    out += label;
    out += "=\"";
    out += value;
    out += "\"}";
  }
  out += ' ';
  append_number(out, v);
  out += '\n';
}

// One line without control characters (for a comment in the exposition).
std::string one_line(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 300)) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7F ? ' ' : c;
  return out;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The probe thread's work: allowance (resolving the host), the probe, the answer.
response run_probe(const request& head, const probe_settings& s, const probe::target& t,
                   unsigned count, api::probe_counts& counts) {
  try {
    std::vector<std::string> resolved;
    if (!listed_target(t, s)) resolved = s.resolve ? s.resolve(t.host) : resolve_host(t.host);
    std::vector<std::string> interfaces;
    const bool wildcard = std::any_of(s.own.begin(), s.own.end(), [](const probe_listener& l) {
      const auto a = ip_of(l.address);
      return a && a->is_unspecified();
    });
    if (wildcard) interfaces = s.interface_addresses ? s.interface_addresses() : host_interface_addresses();
    const target_decision d = decide_target(t, s, resolved, interfaces, unix_now());
    if (!d.allowed) {
      counts.refused.fetch_add(1, std::memory_order_relaxed);
      return text_reply(head, bhttp::status::bad_request, d.error);
    }
    probe::options o;
    o.auth = d.credentials;
    o.count = count;
    o.interval = probe_interval;
    o.size = probe_packet_size;
    o.timeout = s.timeout;
    o.ca_file = s.ca_file;
    const probe::report r = s.run(t, o);
    (r.success ? counts.success : counts.failure).fetch_add(1, std::memory_order_relaxed);
    response res = make_response(head, bhttp::status::ok, probe_content_type, probe_exposition(r));
    res.set(bhttp::field::cache_control, "no-store");
    return res;
  } catch (const std::exception&) {
    counts.failure.fetch_add(1, std::memory_order_relaxed);
    return text_reply(head, bhttp::status::internal_server_error, "probe failed to run");
  }
}

}  // namespace

std::optional<probe_query> parse_probe_query(std::string_view query, unsigned max_count,
                                             std::string& error) {
  const auto params = parse_query(query);
  if (!params) {
    error = "malformed query string";
    return std::nullopt;
  }
  probe_query q;
  q.count = std::min(default_probe_count, max_count);
  bool has_target = false, has_transport = false, has_count = false;
  for (const auto& [key, value] : *params) {
    bool* seen = key == "target" ? &has_target : key == "transport" ? &has_transport
                                             : key == "count"       ? &has_count
                                                                    : nullptr;
    if (seen == nullptr) continue;  // module= and the like
    if (*seen) {
      error = key + ": given twice";
      return std::nullopt;
    }
    *seen = true;
    if (key == "target") {
      q.target = value;
    } else if (key == "transport") {
      if (value == "udp") {
        q.transport = probe::transport::udp;
      } else if (value == "tcp") {
        q.transport = probe::transport::tcp;
      } else {
        error = "transport: expected udp or tcp";
        return std::nullopt;
      }
    } else {
      unsigned v = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc{} || end != value.data() + value.size() || v < 1 || v > max_count) {
        error = "count: expected 1.." + std::to_string(max_count) + " (http.probe_max_count)";
        return std::nullopt;
      }
      q.count = v;
    }
  }
  if (!has_target || q.target.empty()) {
    error = "target: missing (GET /probe?target=turn:host:port?transport=udp)";
    return std::nullopt;
  }
  return q;
}

std::optional<probe::target> probe_target(const probe_query& q, std::string& error) {
  std::string why;
  auto t = probe::parse_url(q.target, why);
  if (!t) {
    error = "target: " + one_line(why);
    return std::nullopt;
  }
  if (q.transport) {
    if (t->kind == probe::scheme::turns && *q.transport != probe::transport::tcp) {
      error = "transport: turns: takes only tcp";
      return std::nullopt;
    }
    if (t->kind == probe::scheme::stun && *q.transport != probe::transport::udp) {
      error = "transport: stun: takes only udp";
      return std::nullopt;
    }
    t->proto = *q.transport;
  }
  return t;
}

std::string target_authority(const probe::target& t) {
  const std::string host = lowercase(t.host);
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(t.port);
}

bool listed_target(const probe::target& t, const probe_settings& s) {
  const std::string authority = target_authority(t);
  return std::any_of(s.targets.begin(), s.targets.end(),
                     [&](const std::string& a) { return lowercase(a) == authority; });
}

target_decision decide_target(const probe::target& t, const probe_settings& s,
                              std::span<const std::string> resolved,
                              std::span<const std::string> interfaces, std::int64_t now_unix) {
  target_decision d;
  const std::string authority = target_authority(t);
  const bool needs_auth = t.kind != probe::scheme::stun;
  if (listed_target(t, s)) {
    for (const probe_target_credentials& c : s.credentials) {
      if (lowercase(c.target) != authority) continue;
      d.credentials = c.secret.empty()
                          ? probe::credentials{c.username, c.password}
                          : probe::rest_credentials(c.secret, probe_rest_user, probe_credential_ttl,
                                                    now_unix);
    }
    if (needs_auth && !d.credentials) {
      d.error = "target: " + authority + " has no credentials in http.probe_credentials";
      return d;
    }
    d.allowed = true;
    return d;
  }
  const probe_listener::kind kind = kind_of(t);
  bool own = !resolved.empty();
  for (const std::string& r : resolved) {
    const auto a = ip_of(r);
    own = own && a && std::any_of(s.own.begin(), s.own.end(), [&](const probe_listener& l) {
            return l.type == kind && l.port == t.port && listens_on(l, *a, interfaces);
          });
  }
  if (!own) {
    d.error = "target: " + authority +
              " is not one of this node's listeners for that transport, nor in http.probe_targets";
    return d;
  }
  d.own = true;
  if (needs_auth) {
    if (!s.self_credentials) {
      d.error = "target: no credentials for this node's own listeners";
      return d;
    }
    d.credentials = s.self_credentials();
  }
  d.allowed = true;
  return d;
}

std::string probe_exposition(const probe::report& r) {
  std::string out;
  if (!r.success && !r.error.empty()) {
    out += "# ";
    out += one_line(r.error);
    out += '\n';
  }
  family(out, "probe_success", "Whether the TURN probe succeeded (1) or failed (0).");
  sample(out, "probe_success", {}, {}, r.success ? 1 : 0);
  family(out, "probe_duration_seconds", "How long the whole probe took, in seconds.");
  sample(out, "probe_duration_seconds", {}, {}, seconds(r.duration));
  family(out, "anyturn_probe_phase_duration_seconds",
         "Duration of each probe phase that ran (the last one failed when probe_success is 0), in "
         "seconds.");
  for (const probe::phase_result& p : r.phases) {
    sample(out, "anyturn_probe_phase_duration_seconds", "phase", probe::phase_name(p.which),
           seconds(p.duration));
  }
  if (r.rtt) {
    family(out, "anyturn_probe_rtt_seconds",
           "Round trips client -> relay -> relay -> client of the probe's packets: median, 99th "
           "percentile and maximum, in seconds.",
           "summary");  // a quantile label is a summary's (promtool check metrics)
    sample(out, "anyturn_probe_rtt_seconds", "quantile", "0.5", seconds(r.rtt->p50));
    sample(out, "anyturn_probe_rtt_seconds", "quantile", "0.99", seconds(r.rtt->p99));
    sample(out, "anyturn_probe_rtt_seconds", "quantile", "1", seconds(r.rtt->max));
  }
  if (r.sent > 0) {
    family(out, "anyturn_probe_loss_ratio", "Share of the probe's relayed packets that were lost (0..1).");
    sample(out, "anyturn_probe_loss_ratio", {}, {}, r.loss);
  }
  return out;
}

std::vector<std::string> resolve_host(const std::string& host) {
  std::vector<std::string> out;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* list = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &list) != 0) return out;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    char buf[NI_MAXHOST];
    if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) == 0) {
      std::string a = buf;
      if (const auto pct = a.find('%'); pct != std::string::npos) a.resize(pct);  // zone
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(std::move(a));
    }
  }
  ::freeaddrinfo(list);
  return out;
}

std::vector<std::string> host_interface_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    const int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    const socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    char buf[NI_MAXHOST];
    if (::getnameinfo(i->ifa_addr, len, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) == 0) {
      std::string a = buf;
      if (const auto pct = a.find('%'); pct != std::string::npos) a.resize(pct);
      out.push_back(std::move(a));
    }
  }
  ::freeifaddrs(list);
  return out;
}

probe_runner::probe_runner(unsigned max) : max_(max) {}

bool probe_runner::try_run(std::function<void()> job) {
  {
    const std::lock_guard lock(state_->mutex);
    if (state_->running >= max_) return false;
    ++state_->running;
  }
  try {
    std::thread([st = state_, job = std::move(job)]() mutable {
      try {
        job();
      } catch (...) {  // a job reports its own errors; never take the process down
      }
      job = nullptr;  // its captures go before the count says idle
      const std::lock_guard lock(st->mutex);
      --st->running;
      st->idle.notify_all();
    }).detach();
  } catch (const std::system_error&) {  // no thread: as if full
    const std::lock_guard lock(state_->mutex);
    --state_->running;
    state_->idle.notify_all();
    return false;
  }
  return true;
}

bool probe_runner::wait_idle(std::chrono::steady_clock::duration limit) {
  std::unique_lock lock(state_->mutex);
  return state_->idle.wait_for(lock, limit, [&] { return state_->running == 0; });
}

unsigned probe_runner::running() const {
  const std::lock_guard lock(state_->mutex);
  return state_->running;
}

// ---- the route (api.cpp dispatches here) ----

std::optional<response> api::probe_route(const request& req, std::string_view query,
                                         std::string_view client, deliver_fn& deliver) {
  if (req.method() != bhttp::verb::get) return method_not_allowed(req, "GET");
  if (auto refused = admin_refusal(req, client)) return std::move(*refused);
  const probe_settings& s = cfg_.probe;
  if (!s.run) return text_reply(req, bhttp::status::not_implemented, "probe is not available on this server");
  std::string error;
  const auto q = parse_probe_query(query, s.max_count, error);
  if (!q) return text_reply(req, bhttp::status::bad_request, error);
  const auto target = probe_target(*q, error);
  if (!target) return text_reply(req, bhttp::status::bad_request, error);

  request head{req.method(), req.target(), req.version()};
  head.keep_alive(req.keep_alive());
  auto job = [head = std::move(head), s, t = *target, count = q->count, counts = probe_counts_,
              deliver]() { deliver(run_probe(head, s, t, count, *counts)); };
  if (!probe_runner_->try_run(std::move(job))) {
    probe_counts_->rejected.fetch_add(1, std::memory_order_relaxed);
    response res = text_reply(req, bhttp::status::too_many_requests,
                              "too many probes running (http.probe_max_concurrent); retry later");
    res.set(bhttp::field::retry_after, std::to_string(s.timeout.count()));
    return res;
  }
  return std::nullopt;
}

bool api::wait_probes(std::chrono::steady_clock::duration limit) { return probe_runner_->wait_idle(limit); }

void api::collect_probes(metrics::sink& out) const {
  constexpr std::string_view help =
      "GET /probe requests by result: success and failure (probe_success 1 or 0), refused (the "
      "target is not allowed, 400), rejected (http.probe_max_concurrent reached, 429).";
  const probe_counts& c = *probe_counts_;
  out.counter("anyturn_http_probes_total", help, {{"result", "success"}},
              c.success.load(std::memory_order_relaxed));
  out.counter("anyturn_http_probes_total", help, {{"result", "failure"}},
              c.failure.load(std::memory_order_relaxed));
  out.counter("anyturn_http_probes_total", help, {{"result", "refused"}},
              c.refused.load(std::memory_order_relaxed));
  out.counter("anyturn_http_probes_total", help, {{"result", "rejected"}},
              c.rejected.load(std::memory_order_relaxed));
  out.gauge("anyturn_http_probes_running", "GET /probe probes running now.", {},
            probe_runner_->running());
}

}  // namespace anyturn::http
