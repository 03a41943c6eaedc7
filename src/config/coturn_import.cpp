// coturn turnserver.conf -> anyturn YAML (docs/coming-from-coturn.md).
//
// Two passes: every line is read into the importer's state (mapped options
// into fields, the rest into comments), then the YAML is written from the
// state, so repeated options and options that depend on each other
// (listening-ip and listening-port, cert and tls-listening-port) come out
// as one key each.
#include <anyturn/config/coturn_import.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <sstream>

namespace anyturn::config {

namespace {

struct option_line {
  std::size_t line = 0;
  std::string name;
  std::string value;
  bool has_value = false;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// The Unicode line breaks YAML knows besides CR and LF (NEL, LS, PS): inside
// a comment they would end it, inside a double-quoted scalar they would be
// folded. Their escape letter, or 0 when `s` does not start with one.
char unicode_break(std::string_view s) {
  if (s.starts_with("\xc2\x85")) return 'N';
  if (s.starts_with("\xe2\x80\xa8")) return 'L';
  if (s.starts_with("\xe2\x80\xa9")) return 'P';
  return 0;
}

// Text from the file echoed in a YAML comment or a note: control characters
// and line breaks become '?', so a value can never start a new YAML line.
std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (const char b = unicode_break(s.substr(i))) {
      out += '?';
      i += b == 'N' ? 1 : 2;
    } else {
      out += (u < 0x20 || u == 0x7f) ? '?' : s[i];
    }
  }
  return out;
}

// YAML double-quoted scalar: every value goes out quoted, so passwords and
// paths with ':', '#', quotes or leading spaces stay what they were.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (const char b = unicode_break(s.substr(i))) {
      out += b == 'N' ? "\\u0085" : b == 'L' ? "\\u2028" : "\\u2029";
      i += b == 'N' ? 1 : 2;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quote(items[i]);
  return out + "]";
}

std::optional<std::uint64_t> parse_uint(std::string_view s, std::uint64_t max) {
  std::uint64_t v = 0;
  const auto* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, v);
  if (s.empty() || r.ec != std::errc{} || r.ptr != end || v > max) return std::nullopt;
  return v;
}

bool is_ipv6(std::string_view ip) { return ip.find(':') != std::string_view::npos; }

std::string endpoint(const std::string& ip, std::uint64_t port) {
  return (is_ipv6(ip) ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

bool is_unspecified(std::string_view ip) { return ip == "0.0.0.0" || ip == "::" || ip == "[::]"; }

// A single address (no range, no prefix length).
bool is_address(std::string_view ip) {
  const auto cidrs = coturn_range_to_cidrs(ip);
  return ip.find('/') == std::string_view::npos && ip.find('-') == std::string_view::npos &&
         cidrs.size() == 1;
}

// Options whose value may be a credential: never echoed.
bool is_secret_name(std::string_view name) {
  if (name == "user") return true;  // NAME:PASSWORD
  for (const std::string_view part : {"pass", "pwd", "secret", "key", "db", "oauth"}) {
    if (name.find(part) != std::string_view::npos) return true;
  }
  return false;
}

// coturn options anyturn has nothing to set for, and what to do instead.
struct comment_only {
  std::string_view name;
  std::string_view reason;
};

constexpr comment_only commented[] = {
    {"lt-cred-mech", "nothing to set: anyturn always uses long-term credentials (static users and REST secrets together)"},
    {"fingerprint", "nothing to set: anyturn answers with FINGERPRINT whenever the request carried one (every coturn, browser and pion client does)"},
    {"no-cli", "nothing to set: anyturn has no telnet CLI; use `anyturn ctl` and the admin HTTP API (docs/admin.md)"},
    {"cli-ip", "no counterpart: no telnet CLI; the admin HTTP API listens on http.listen (docs/admin.md)"},
    {"cli-port", "no counterpart: no telnet CLI; the admin HTTP API listens on http.listen (docs/admin.md)"},
    {"cli-password", "no counterpart: no telnet CLI; the admin API takes bearer keys (http.admin_keys)"},
    {"cli-max-output-sessions", "no counterpart: no telnet CLI; GET /admin/sessions lists sessions (docs/admin.md)"},
    {"web-admin", "no counterpart: use the admin HTTP API (http.admin_keys, docs/admin.md)"},
    {"web-admin-ip", "no counterpart: use the admin HTTP API on http.listen"},
    {"web-admin-port", "no counterpart: use the admin HTTP API on http.listen"},
    {"web-admin-listen-on-workers", "no counterpart: the admin HTTP API runs on its own thread"},
    {"pidfile", "no counterpart: anyturn writes no PID file; systemd tracks the process (the packaged unit is Type=notify)"},
    {"log-file", "no counterpart: anyturn logs to stderr (the journal under systemd); redirect it, or set log.format: json for a log pipeline"},
    {"syslog", "no counterpart: anyturn logs to stderr, which systemd passes to the journal and syslog"},
    {"syslog-facility", "no counterpart: anyturn logs to stderr (journal); set the facility in journald/rsyslog"},
    {"simple-log", "nothing to set: anyturn never rotates its log itself (stderr)"},
    {"new-log-timestamp", "nothing to set: anyturn's log lines carry an ISO 8601 time"},
    {"new-log-timestamp-format", "no counterpart: the time format is fixed (ISO 8601)"},
    {"no-stdout-log", "no counterpart: anyturn logs to stderr only"},
    {"log-binding", "no counterpart: Binding requests are counted in /metrics, not logged"},
    {"mobility", "no counterpart: anyturn does not implement MOBILITY-TICKET (RFC 8016); a client that changes network makes a new allocation (ICE restart)"},
    {"no-tlsv1", "nothing to set: anyturn never offers TLS 1.0 (TLS 1.2 and 1.3 only)"},
    {"no-tlsv1_1", "nothing to set: anyturn never offers TLS 1.1 (TLS 1.2 and 1.3 only)"},
    {"no-tlsv1_2", "no counterpart: anyturn serves TLS 1.2 (forward-secret AEAD suites only) and 1.3; TLS 1.2 cannot be turned off"},
    {"cipher-list", "no counterpart: the TLS suites are fixed (TLS 1.3, and forward-secret AEAD suites of TLS 1.2)"},
    {"ec-curve-name", "no counterpart: OpenSSL's default groups are used"},
    {"dh-file", "no counterpart: anyturn uses ECDHE only, no DH parameters"},
    {"dh566", "no counterpart: anyturn uses ECDHE only, no DH parameters"},
    {"dh2066", "no counterpart: anyturn uses ECDHE only, no DH parameters"},
    {"CA-file", "no counterpart: anyturn does not ask clients for certificates"},
    {"pkey-pwd", "no counterpart: anyturn reads unencrypted keys only (openssl pkey -in KEY -out PLAIN_KEY)"},
    {"userdb", "not imported: users in coturn's database are not read; list them (turnadmin -l) and add them to auth.users, or use REST secrets"},
    {"db", "not imported: users in coturn's database are not read; list them (turnadmin -l) and add them to auth.users, or use REST secrets"},
    {"psql-userdb", "not imported: users in coturn's database are not read; add them to auth.users, or use REST secrets"},
    {"mysql-userdb", "not imported: users in coturn's database are not read; add them to auth.users, or use REST secrets"},
    {"mongo-userdb", "not imported: users in coturn's database are not read; add them to auth.users, or use REST secrets"},
    {"redis-userdb", "not imported: users in coturn's database are not read; add them to auth.users, or use REST secrets (fleet.redis is anyturn's own fleet state, not a user store)"},
    {"redis-statsdb", "no counterpart: statistics are on /metrics and in usage records (usage_log)"},
    {"oauth", "no counterpart: third-party authorization (RFC 7635) is not supported; use REST credentials (auth.secrets)"},
    {"no-auth", "no counterpart: anyturn never relays without authentication; give auth.users or auth.secrets"},
    {"secure-stun", "no counterpart: anyturn answers Binding requests without authentication"},
    {"stun-only", "no counterpart: anyturn always serves TURN as well (it needs a credential to relay)"},
    {"no-stun", "no counterpart: anyturn always answers Binding requests"},
    {"server-name", "no counterpart: the server is named by realm (and software)"},
    {"no-stun-backward-compatibility", "nothing to set: anyturn implements STUN as RFC 5389/8489 define it"},
    {"response-origin-only-with-rfc5780", "nothing to set: anyturn sends RESPONSE-ORIGIN only with RFC 5780 (stun.other_ip)"},
    {"allocation-default-address-family", "no counterpart: the relay family follows REQUESTED-ADDRESS-FAMILY, IPv4 when absent (RFC 8656)"},
    {"keep-address-family", "nothing to set: anyturn follows RFC 8656 (REQUESTED-ADDRESS-FAMILY, IPv4 when absent)"},
    {"check-origin-consistency", "no counterpart: anyturn ignores ORIGIN"},
    {"listening-device", "no counterpart: bind by address (listen)"},
    {"relay-device", "no counterpart: relay by address (relay.ips)"},
    {"aux-server", "no counterpart: add the address to listen"},
    {"udp-self-balance", "no counterpart: anyturn spreads UDP over its workers with SO_REUSEPORT"},
    {"acme-redirect", "no counterpart: serve ACME challenges from a web server on port 80"},
    {"max-allocate-timeout", "no counterpart: an Allocate is answered at once"},
    {"server-relay", "no counterpart"},
    {"no-udp-relay", "no counterpart: anyturn always relays UDP"},
    {"tcp-proxy-port", "no counterpart as an option: write the listen entry as a map with proxy_protocol: true and trusted: [the balancer's CIDRs] (docs/configuration.md, PROXY protocol)"},
    {"bps-capacity", "no counterpart: no server-wide bandwidth cap; limits.allocation.bytes_per_second and tenants[].quotas.bandwidth limit each allocation"},
    {"prometheus-username-labels", "no counterpart: per-user metrics are not exported; usage records (usage_log) name the user"},
    {"proc-user", "no counterpart: run anyturn as that user (systemd User=; the packaged unit runs as anyturn)"},
    {"proc-group", "no counterpart: run anyturn with that group (systemd Group=)"},
    {"ne", "no counterpart: anyturn has one network engine (one io_context per worker, SO_REUSEPORT)"},
    {"prod", "nothing to set: anyturn's SOFTWARE carries no version"},
    {"verbose", "nothing to set: log_level info is the default"},
};

std::optional<std::string_view> comment_reason(std::string_view name) {
  for (const auto& c : commented) {
    if (c.name == name) return c.reason;
  }
  return std::nullopt;
}

struct static_user {
  std::string name;
  std::string password;  // or
  std::string key;       // 32 lower-case hex characters
};

class importer {
 public:
  void read(std::string_view text);
  coturn_import_result write() const;

 private:
  void take(const option_line& line);
  void note(const option_line& o, const std::string& text) {
    notes_.push_back("line " + std::to_string(o.line) + ": " + o.name + ": " + printable(text));
  }
  // A YAML comment on an option that maps to no key.
  void comment(const option_line& o, std::string_view reason) {
    std::string shown = o.name;
    if (o.has_value && !o.value.empty()) shown += is_secret_name(o.name) ? "=<not shown>" : "=" + o.value;
    comments_.push_back("# line " + std::to_string(o.line) + ": " + printable(shown) + "  -- " + printable(reason));
  }
  // A bad value: a note for stderr and a comment in the YAML, never dropped silently.
  void reject(const option_line& o, const std::string& why) {
    note(o, why + "; not imported");
    comment(o, "not imported: " + why);
  }
  std::optional<bool> flag(const option_line& o);
  std::optional<std::uint64_t> number(const option_line& o, std::uint64_t min, std::uint64_t max);
  std::optional<std::uint64_t> port(const option_line& o) { return number(o, 1, 65535); }
  void take_user(const option_line& o);
  void take_peer_range(const option_line& o, std::vector<std::string>& into);

  void write_listeners(std::ostringstream& y) const;
  void write_relay(std::ostringstream& y) const;
  void write_auth(std::ostringstream& y) const;
  void write_limits(std::ostringstream& y) const;

  std::vector<std::string> notes_;
  std::vector<std::string> comments_;  // unmapped options, in file order

  std::vector<std::string> listening_ips_;
  std::uint64_t listening_port_ = 3478;
  std::uint64_t tls_port_ = 5349;
  std::vector<std::string> relay_ips_;
  std::vector<std::string> external_ips_;
  std::optional<std::uint64_t> min_port_, max_port_;
  std::optional<std::string> realm_;
  std::vector<static_user> users_;
  std::size_t hex_users_ = 0;
  bool use_auth_secret_ = false;
  std::size_t use_auth_secret_line_ = 0;
  std::vector<std::string> secrets_;
  std::vector<std::string> allow_, deny_;
  std::optional<std::uint64_t> user_quota_, total_quota_, max_bps_;
  std::optional<std::string> cert_, pkey_;
  bool no_udp_ = false, no_tcp_ = false, no_tls_ = false, no_dtls_ = false, no_rfc5780_ = false;
  bool no_tcp_relay_ = false;
  std::optional<std::uint64_t> nonce_lifetime_;
  std::optional<std::uint64_t> allocation_max_, permission_, channel_;
  bool prometheus_ = false;
  std::uint64_t prometheus_port_ = 9641;
  std::optional<std::uint64_t> threads_;
  std::optional<std::string> log_level_;
  bool no_software_ = false;
};

void importer::read(std::string_view text) {
  std::size_t line_no = 0;
  while (!text.empty() || line_no == 0) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    raw = trim(raw);
    if (raw.empty() || raw.front() == '#') continue;
    if (raw.starts_with("--")) raw.remove_prefix(2);
    std::size_t n = 0;
    while (n < raw.size() && is_name_char(raw[n])) ++n;
    option_line o;
    o.line = line_no;
    o.name = std::string(raw.substr(0, n));
    std::string_view rest = trim(raw.substr(n));
    if (!rest.empty() && rest.front() == '=') {
      rest = trim(rest.substr(1));
      o.has_value = true;
    } else if (!rest.empty()) {
      o.has_value = true;
    }
    if (o.name.empty() ||
        (n < raw.size() && !std::isspace(static_cast<unsigned char>(raw[n])) && raw[n] != '=')) {
      notes_.push_back("line " + std::to_string(line_no) +
                       ": not an option line (expected name=value, name value or name); skipped");
      comments_.push_back("# line " + std::to_string(line_no) + ": unreadable line, not imported");
      continue;
    }
    // coturn strips one pair of double quotes around a value.
    if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') rest = rest.substr(1, rest.size() - 2);
    o.value = std::string(rest);
    take(o);
  }
}

std::optional<bool> importer::flag(const option_line& o) {
  if (!o.has_value || o.value.empty()) return true;
  std::string v = o.value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "1" || v == "yes" || v == "true" || v == "on") return true;
  if (v == "0" || v == "no" || v == "false" || v == "off") return false;
  reject(o, "expected no value or a boolean (yes/no, true/false, on/off, 1/0)");
  return std::nullopt;
}

std::optional<std::uint64_t> importer::number(const option_line& o, std::uint64_t min,
                                              std::uint64_t max) {
  const auto v = parse_uint(o.value, max);
  if (!v || *v < min) {
    reject(o, "expected an integer in " + std::to_string(min) + ".." + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

void importer::take_user(const option_line& o) {
  const auto colon = o.value.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == o.value.size()) {
    reject(o, "expected user=NAME:PASSWORD or NAME:0xKEY");
    return;
  }
  static_user u;
  u.name = o.value.substr(0, colon);
  const std::string secret = o.value.substr(colon + 1);
  if (secret.starts_with("0x")) {
    // coturn's hex form is the long-term key MD5(name:realm:password).
    std::string key = secret.substr(2);
    const bool hex = key.size() == 32 && std::all_of(key.begin(), key.end(), [](unsigned char c) {
                       return std::isxdigit(c) != 0;
                     });
    if (!hex) {
      reject(o, "user '" + u.name + "': a 0x key must be 32 hex characters (MD5 of name:realm:password)");
      return;
    }
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    u.key = key;
    ++hex_users_;
  } else {
    u.password = secret;
  }
  for (auto& existing : users_) {
    if (existing.name == u.name) {  // coturn keeps the last one
      note(o, "user '" + u.name + "' given again; the later line wins");
      existing = u;
      return;
    }
  }
  users_.push_back(std::move(u));
}

void importer::take_peer_range(const option_line& o, std::vector<std::string>& into) {
  const auto cidrs = coturn_range_to_cidrs(o.value);
  if (cidrs.empty()) {
    reject(o, "expected an IP address, a range A-B of one family with A <= B, or a CIDR");
    return;
  }
  for (const auto& c : cidrs) {
    if (std::find(into.begin(), into.end(), c) == into.end()) into.push_back(c);
  }
}

void importer::take(const option_line& line) {
  option_line o = line;
  const std::string& n = o.name;
  // IPv6 addresses may come in brackets.
  if ((n == "listening-ip" || n == "relay-ip") && o.value.size() >= 2 && o.value.front() == '[' &&
      o.value.back() == ']')
    o.value = o.value.substr(1, o.value.size() - 2);
  if (n == "listening-ip") {
    if (!is_address(o.value)) return reject(o, "expected an IP address");
    if (std::find(listening_ips_.begin(), listening_ips_.end(), o.value) == listening_ips_.end())
      listening_ips_.push_back(o.value);
  } else if (n == "listening-port") {
    if (const auto p = port(o)) listening_port_ = *p;
  } else if (n == "tls-listening-port") {
    if (const auto p = port(o)) tls_port_ = *p;
  } else if (n == "alt-listening-port" || n == "alt-tls-listening-port") {
    comment(o, "no counterpart: coturn's second port for RFC 5780; anyturn with stun.other_ip answers on port+1 of both addresses itself");
  } else if (n == "relay-ip") {
    if (!is_address(o.value) || is_unspecified(o.value))
      return reject(o, "expected a specific IP address (not 0.0.0.0 or ::)");
    if (std::find(relay_ips_.begin(), relay_ips_.end(), o.value) == relay_ips_.end())
      relay_ips_.push_back(o.value);
  } else if (n == "external-ip") {
    const auto slash = o.value.find('/');
    const std::string pub = o.value.substr(0, slash);
    const std::string priv = slash == std::string::npos ? "" : o.value.substr(slash + 1);
    if (!is_address(pub) || (slash != std::string::npos && !is_address(priv)))
      return reject(o, "expected PUBLIC or PUBLIC/PRIVATE addresses");
    external_ips_.push_back(o.value);
  } else if (n == "min-port") {
    if (const auto p = port(o)) min_port_ = *p;
  } else if (n == "max-port") {
    if (const auto p = port(o)) max_port_ = *p;
  } else if (n == "realm") {
    if (o.value.empty()) return reject(o, "empty realm");
    if (realm_) note(o, "realm given again; the later line wins");
    realm_ = o.value;
  } else if (n == "user") {
    take_user(o);
  } else if (n == "use-auth-secret") {
    if (const auto f = flag(o)) {
      use_auth_secret_ = *f;
      use_auth_secret_line_ = o.line;
    }
  } else if (n == "static-auth-secret") {
    if (o.value.empty()) return reject(o, "empty secret");
    if (std::find(secrets_.begin(), secrets_.end(), o.value) == secrets_.end()) {
      if (secrets_.size() == 8) {
        note(o, "anyturn tries at most 8 REST secrets; this one is not imported");
        return comment(o, "not imported: anyturn tries at most 8 REST secrets (auth.secrets)");
      }
      if (o.value.size() < 16)
        note(o, "secret shorter than 16 bytes: anyturn refuses it (check-config names auth.secrets); "
                "rotate to a longer one (openssl rand -hex 32)");
      secrets_.push_back(o.value);
    }
  } else if (n == "rest-api-separator") {
    if (o.value != ":")
      comment(o, "no counterpart: anyturn's REST usernames are <expiry>:<user>, separated by ':'");
  } else if (n == "allowed-peer-ip") {
    take_peer_range(o, allow_);
  } else if (n == "denied-peer-ip") {
    take_peer_range(o, deny_);
  } else if (n == "allow-loopback-peers") {
    if (flag(o).value_or(false)) {
      for (const char* c : {"127.0.0.0/8", "::1/128"}) {
        if (std::find(allow_.begin(), allow_.end(), c) == allow_.end()) allow_.push_back(c);
      }
      note(o, "loopback peers allowed through peers.allow (a test setting: clients may reach this host's services)");
    }
  } else if (n == "no-loopback-peers") {
    comment(o, "nothing to set: anyturn always refuses loopback peers unless peers.allow lists them");
  } else if (n == "no-multicast-peers") {
    comment(o, "nothing to set: anyturn always refuses multicast (and broadcast) peers unless peers.allow lists them");
  } else if (n == "user-quota") {
    user_quota_ = number(o, 0, 4294967295u);
  } else if (n == "total-quota") {
    total_quota_ = number(o, 0, 4294967295u);
  } else if (n == "max-bps") {
    max_bps_ = number(o, 0, UINT64_MAX);
  } else if (n == "cert") {
    cert_ = o.value;
  } else if (n == "pkey") {
    pkey_ = o.value;
  } else if (n == "no-udp") {
    no_udp_ = flag(o).value_or(no_udp_);
  } else if (n == "no-tcp") {
    no_tcp_ = flag(o).value_or(no_tcp_);
  } else if (n == "no-tls") {
    no_tls_ = flag(o).value_or(no_tls_);
  } else if (n == "no-dtls") {
    no_dtls_ = flag(o).value_or(no_dtls_);
  } else if (n == "no-rfc5780") {
    no_rfc5780_ = flag(o).value_or(no_rfc5780_);
    comment(o, "nothing to set: anyturn answers RFC 5780 NAT discovery only with stun.other_ip");
  } else if (n == "no-tcp-relay") {
    no_tcp_relay_ = flag(o).value_or(no_tcp_relay_);
  } else if (n == "alternate-server" || n == "tls-alternate-server") {
    comment(o, "no counterpart for always redirecting: anyturn sends 300 Try Alternate from an anycast address to "
               "the node's own (fleet.anycast_ips, fleet.unicast_ips) and, while draining, to fleet.drain_alternate "
               "(docs/fleet.md)");
  } else if (n == "stale-nonce") {
    if (!o.has_value || o.value.empty()) nonce_lifetime_ = 600;
    else nonce_lifetime_ = number(o, 1, 4294967295u);
  } else if (n == "max-allocate-lifetime") {
    allocation_max_ = number(o, 1, 4294967295u);
  } else if (n == "permission-lifetime") {
    permission_ = number(o, 1, 4294967295u);
  } else if (n == "channel-lifetime") {
    channel_ = number(o, 1, 4294967295u);
  } else if (n == "prometheus") {
    prometheus_ = flag(o).value_or(prometheus_);
  } else if (n == "prometheus-port") {
    if (const auto p = port(o)) prometheus_port_ = *p;
  } else if (n == "relay-threads") {
    threads_ = number(o, 0, 256);
  } else if (n == "Verbose") {
    log_level_ = "debug";
  } else if (n == "no-software-attribute") {
    no_software_ = flag(o).value_or(no_software_);
  } else if (const auto reason = comment_reason(n)) {
    comment(o, *reason);
  } else {
    note(o, "unknown coturn option; written as a comment, not imported");
    comment(o, "unknown option: not imported (no anyturn counterpart known)");
  }
}

// The addresses coturn listens on, as anyturn listener addresses.
std::vector<std::string> listener_ips(const std::vector<std::string>& listening) {
  if (listening.empty()) return {"0.0.0.0", "::"};
  return listening;
}

std::vector<std::string> endpoints(const std::vector<std::string>& ips, std::uint64_t port) {
  std::vector<std::string> out;
  for (const auto& ip : ips) out.push_back(endpoint(ip, port));
  return out;
}

void importer::write_listeners(std::ostringstream& y) const {
  const auto ips = listener_ips(listening_ips_);
  if (no_udp_)
    y << "# coturn: no-udp. anyturn always serves UDP on `listen` (no switch): block it in the firewall.\n";
  y << "listen: " << quoted_list(endpoints(ips, listening_port_)) << '\n';
  if (no_tcp_) y << "streams:\n  tcp: false   # coturn: no-tcp\n";
  // anyturn serves one protocol per TCP port: TLS on the listen port clashes.
  const bool tls_port_clash = tls_port_ == listening_port_ && !no_tcp_;
  const bool tls = !no_tls_ && cert_.has_value() && !tls_port_clash;
  if (tls || cert_) {
    y << "tls:\n";
    if (!no_tls_ && tls_port_clash) {
      y << "  # coturn served TLS on its listening-port too; anyturn needs a TCP port of its own for TLS\n"
           "  # (or streams.tcp: false). Pick one and uncomment:\n"
           "  # listen: "
        << quoted_list(endpoints(ips, tls_port_ == 5349 ? 5350 : 5349)) << '\n';
    }
    if (tls) {
      y << "  # coturn recognised TLS and plain TURN on each of its ports; anyturn serves TLS on these only, and\n"
           "  # plain UDP/TCP on listen only: turns: URLs must name these ports, turn: URLs the listen ports.\n";
      y << "  listen: " << quoted_list(endpoints(ips, tls_port_)) << '\n';
    }
    else if (no_tls_) y << "  # coturn: no-tls. The certificate stays for DTLS.\n";
    y << "  cert: " << quote(*cert_) << '\n';
    y << "  key: " << quote(pkey_ ? *pkey_ : *cert_) << (pkey_ ? "" : "   # coturn: no pkey, so the key is in the cert file") << '\n';
  } else if (!no_tls_ || !no_dtls_) {
    y << "# coturn serves TLS" << (no_dtls_ ? "" : " and DTLS")
      << " only with a certificate, and this file names none (cert, pkey).\n"
         "# To serve TLS, uncomment and set the files:\n"
         "# tls: {listen: "
      << quoted_list(endpoints(ips, tls_port_)) << ", cert: \"/path/fullchain.pem\", key: \"/path/privkey.pem\"}\n";
  }
  if (cert_ && !no_dtls_) {
    if (tls_port_ == listening_port_ && !no_udp_) {
      // anyturn runs one transport per UDP port: the port serves plain UDP here.
      y << "# coturn also served DTLS on its TLS port, which is the listen port here; anyturn runs one protocol per\n"
           "# UDP port. To serve DTLS, give it a port of its own:\n"
           "# dtls: {listen: "
        << quoted_list(endpoints(ips, tls_port_ == 5349 ? 5350 : 5349)) << "}\n";
    } else {
      y << "dtls:\n  listen: " << quoted_list(endpoints(ips, tls_port_))
        << "   # coturn: DTLS on the TLS port (no-dtls is not set); tls.cert and tls.key serve it\n";
    }
  }
  // RFC 5780: coturn uses a second listening address as the OTHER-ADDRESS.
  if (!no_rfc5780_ && listening_ips_.size() >= 2) {
    const auto& first = listening_ips_[0];
    const auto other = std::find_if(listening_ips_.begin() + 1, listening_ips_.end(), [&](const std::string& ip) {
      return is_ipv6(ip) == is_ipv6(first) && !is_unspecified(ip);
    });
    if (other != listening_ips_.end() && !is_unspecified(first)) {
      y << "# coturn answered RFC 5780 NAT discovery with its second listening address. anyturn does with\n"
           "# stun.other_ip, which then serves only Binding (on port and port+1): remove that address from listen\n"
           "# (and tls.listen) and set it here, or leave it as it is to keep serving TURN on it:\n"
           "# stun: {other_ip: "
        << quote(*other) << "}\n";
    }
  }
}

void importer::write_relay(std::ostringstream& y) const {
  std::vector<std::string> ips = relay_ips_;
  if (ips.empty()) {
    // coturn relays on its listening addresses when relay-ip is not set.
    for (const auto& ip : listening_ips_) {
      if (!is_unspecified(ip)) ips.push_back(ip);
    }
    if (ips.size() != listening_ips_.size()) ips.clear();
  }
  const bool from_relay_ip = !relay_ips_.empty();
  for (const auto& e : external_ips_) {  // PUBLIC/PRIVATE: PRIVATE must be a relay address
    const auto slash = e.find('/');
    if (slash == std::string::npos) continue;
    const std::string priv = e.substr(slash + 1);
    if (std::find(ips.begin(), ips.end(), priv) == ips.end()) {
      if (from_relay_ip) {
        y << "# external-ip " << e << ": its private address is not a relay-ip; added to relay.ips\n";
      }
      ips.push_back(priv);
    }
  }
  const bool any = !ips.empty() || !external_ips_.empty() || min_port_ || max_port_ || no_tcp_relay_;
  if (ips.empty()) {
    y << "# relay.ips is left at anyturn's \"auto\": the first IPv4 interface address. coturn relayed on every\n"
         "# address of the host: list the addresses (IPv6 too) if clients need more than one.\n";
  }
  if (!any) return;
  y << "relay:\n";
  if (!ips.empty()) y << "  ips: " << quoted_list(ips) << '\n';
  if (!external_ips_.empty()) y << "  external_ips: " << quoted_list(external_ips_) << '\n';
  if (min_port_ || max_port_) {
    y << "  ports: \"" << min_port_.value_or(49152) << '-' << max_port_.value_or(65535) << "\"\n";
  }
  if (no_tcp_relay_) y << "  tcp: false   # coturn: no-tcp-relay (RFC 6062 TCP relay allocations get 442)\n";
}

void importer::write_auth(std::ostringstream& y) const {
  if (realm_) {
    y << "realm: " << quote(*realm_) << '\n';
  } else if (hex_users_ > 0) {
    y << "# coturn's file sets no realm, and its 0x keys were made with one: set realm to the realm the keys\n"
         "# were made with (turnadmin -k -r REALM), or those users cannot authenticate.\n";
  }
  const bool rest = !secrets_.empty();
  if (users_.empty() && !rest) {
    y << "# No static user and no static-auth-secret: anyturn generates a REST secret into its state directory\n"
         "# at first start (docs/configuration.md). Add auth.users or auth.secrets for coturn's clients.\n";
    if (!nonce_lifetime_) return;
  }
  y << "auth:\n";
  if (!users_.empty()) {
    y << "  users:\n";
    for (const auto& u : users_) {
      y << "    - name: " << quote(u.name) << '\n';
      if (!u.key.empty()) y << "      key: " << quote(u.key) << "   # coturn's 0x key: MD5(name:realm:password)\n";
      else y << "      password: " << quote(u.password) << '\n';
    }
  }
  if (rest) {
    if (!use_auth_secret_) {
      y << "  # coturn: static-auth-secret without use-auth-secret. anyturn accepts REST credentials signed with it.\n";
    }
    y << "  secrets: " << quoted_list(secrets_) << '\n';
  }
  if (nonce_lifetime_) y << "  nonce_lifetime: " << *nonce_lifetime_ << "   # coturn: stale-nonce\n";
}

void importer::write_limits(std::ostringstream& y) const {
  const bool allocation = max_bps_.has_value() && *max_bps_ != 0;
  if (user_quota_ || total_quota_ || allocation) {
    y << "limits:\n";
    if (user_quota_) y << "  max_allocations_per_user: " << *user_quota_ << "   # coturn: user-quota\n";
    if (total_quota_) y << "  max_allocations: " << *total_quota_ << "   # coturn: total-quota\n";
    if (allocation) {
      constexpr std::uint64_t floor = 65536, ceiling = 1000000000000ull;
      const auto bps = std::clamp<std::uint64_t>(*max_bps_, floor, ceiling);
      y << "  allocation:\n    bytes_per_second: " << bps << "   # coturn: max-bps=" << *max_bps_
        << (bps != *max_bps_ ? " (anyturn's range is 65536..10^12)" : "") << ", each direction\n";
    }
  }
  if (max_bps_ && *max_bps_ == 0) {
    y << "# coturn: max-bps=0 (no limit). anyturn keeps its per-allocation abuse limit (12.5 MB/s each way);\n"
         "# set limits.allocation.bytes_per_second: 0 for none.\n";
  }
  if (allocation_max_ || permission_ || channel_) {
    y << "lifetimes:\n";
    if (allocation_max_) {
      y << "  allocation_max: " << *allocation_max_ << "   # coturn: max-allocate-lifetime\n";
      if (*allocation_max_ < 600) y << "  allocation_default: " << *allocation_max_ << '\n';
    }
    if (permission_) y << "  permission: " << *permission_ << "   # coturn: permission-lifetime\n";
    if (channel_) y << "  channel: " << *channel_ << "   # coturn: channel-lifetime\n";
  }
}

coturn_import_result importer::write() const {
  std::ostringstream y;
  y << "# anyturn configuration imported from a coturn turnserver.conf (anyturn import-coturn).\n"
       "# Read every comment before use; docs/coming-from-coturn.md lists each coturn option.\n";
  write_listeners(y);
  write_relay(y);
  write_auth(y);

  y << "# Peers: coturn relays to private and loopback ranges unless denied-peer-ip says otherwise; anyturn\n"
       "# refuses loopback, RFC 1918, CGNAT, link-local, unique-local, multicast and the other special-purpose\n"
       "# ranges by default. peers.allow opens a range (it wins over every deny): list internal media servers there.\n";
  if (!allow_.empty() || !deny_.empty()) {
    y << "peers:\n";
    if (!allow_.empty()) y << "  allow: " << quoted_list(allow_) << "   # coturn: allowed-peer-ip\n";
    if (!deny_.empty()) y << "  deny: " << quoted_list(deny_) << "   # coturn: denied-peer-ip\n";
  }
  write_limits(y);
  if (prometheus_) {
    y << "http:\n  listen: " << quote(endpoint("0.0.0.0", prometheus_port_))
      << "   # coturn: prometheus (all addresses). Metric names differ: docs/metrics.md. Prefer a private address:\n"
         "  # /metrics needs no key, and the same server carries the credentials and admin APIs.\n";
  }
  if (threads_) y << "threads: " << *threads_ << "   # coturn: relay-threads\n";
  if (log_level_) y << "log_level: " << quote(*log_level_) << "   # coturn: Verbose\n";
  if (no_software_) y << "software: \"\"   # coturn: no-software-attribute\n";

  if (!comments_.empty()) {
    y << "\n# ---- coturn options with no anyturn key ----\n";
    for (const auto& c : comments_) y << c << '\n';
  }
  coturn_import_result r{y.str(), notes_};
  if (use_auth_secret_ && secrets_.empty()) {
    r.notes.push_back("line " + std::to_string(use_auth_secret_line_) +
                      ": use-auth-secret without static-auth-secret: coturn reads the secrets from its database; "
                      "add them to auth.secrets");
  }
  if (min_port_ && max_port_ && *max_port_ <= *min_port_) {
    r.notes.push_back("min-port/max-port: anyturn needs at least 2 relay ports (LOW < HIGH); check-config will refuse relay.ports");
  }
  return r;
}

}  // namespace

coturn_import_result import_coturn(std::string_view conf_text) {
  importer imp;
  imp.read(conf_text);
  return imp.write();
}

}  // namespace anyturn::config
