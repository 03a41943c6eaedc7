#include <anyturn/fleet/records.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <limits>
#include <tuple>

namespace anyturn::fleet {

namespace bj = boost::json;

namespace {

constexpr std::size_t max_id_bytes = 255;
constexpr std::size_t max_name_bytes = 1024;

std::string_view tenant_key_part(std::string_view tenant) { return tenant.empty() ? "default" : tenant; }

std::optional<bj::object> parse_object(std::string_view text) {
  if (text.empty() || text.size() > max_record_bytes) return std::nullopt;
  boost::system::error_code ec;
  bj::value v = bj::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// A string member of at most `max` bytes; "" when absent; nullopt when of
// another type or too long.
std::optional<std::string> string_of(const bj::object& o, std::string_view key, std::size_t max) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string() || v->as_string().size() > max) return std::nullopt;
  return std::string(v->as_string());
}

template <typename T>
std::optional<T> unsigned_of(const bj::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return T{0};
  std::uint64_t n = 0;
  if (v->is_uint64()) {
    n = v->as_uint64();
  } else if (v->is_int64() && v->as_int64() >= 0) {
    n = static_cast<std::uint64_t>(v->as_int64());
  } else {
    return std::nullopt;
  }
  if (n > std::numeric_limits<T>::max()) return std::nullopt;
  return static_cast<T>(n);
}

std::optional<std::int64_t> signed_of(const bj::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::int64_t{0};
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(v->as_uint64());
  return std::nullopt;
}

}  // namespace

std::string node_key(std::string_view node_id) { return "anyturn:node:" + std::string(node_id); }
std::string command_channel(std::string_view node_id) { return "anyturn:command:" + std::string(node_id); }
std::string quota_key(std::string_view tenant_id) {
  return "anyturn:quota:" + std::string(tenant_key_part(tenant_id));
}

std::string revocation_key(const auth::revocation& r) {
  std::string k(revocation_prefix);
  k += tenant_key_part(r.tenant);
  if (!r.username.empty()) {
    k += ":username:";
    k += r.username;
  } else {
    k += ":user:";
    k += r.user;
  }
  return k;
}

std::string to_json(const node_record& n) {
  bj::object o;
  o["id"] = n.id;
  if (n.address.v4) o["v4"] = n.address.v4->ip_string();
  if (n.address.v6) o["v6"] = n.address.v6->ip_string();
  o["udp"] = n.address.udp_port;
  o["tcp"] = n.address.tcp_port;
  o["tls"] = n.address.tls_port;
  o["allocations"] = n.allocations;
  o["load"] = std::isfinite(n.load) ? n.load : 0.0;
  o["draining"] = n.draining;
  o["updated_ms"] = n.updated_ms;
  return bj::serialize(o);
}

std::optional<node_record> node_from_json(std::string_view text) {
  auto o = parse_object(text);
  if (!o) return std::nullopt;
  node_record n;
  auto id = string_of(*o, "id", max_id_bytes);
  if (!id || id->empty()) return std::nullopt;
  n.id = std::move(*id);
  for (const char* fam : {"v4", "v6"}) {
    auto ip = string_of(*o, fam, 64);
    if (!ip) return std::nullopt;
    if (ip->empty()) continue;
    auto ep = stun::endpoint::parse(*ip, true);
    if (!ep || ep->is_v4() != (fam[1] == '4')) return std::nullopt;
    ep->port = 0;
    (fam[1] == '4' ? n.address.v4 : n.address.v6) = *ep;
  }
  auto udp = unsigned_of<std::uint16_t>(*o, "udp");
  auto tcp = unsigned_of<std::uint16_t>(*o, "tcp");
  auto tls = unsigned_of<std::uint16_t>(*o, "tls");
  auto allocations = unsigned_of<std::uint64_t>(*o, "allocations");
  auto updated = signed_of(*o, "updated_ms");
  if (!udp || !tcp || !tls || !allocations || !updated) return std::nullopt;
  n.address.udp_port = *udp;
  n.address.tcp_port = *tcp;
  n.address.tls_port = *tls;
  n.allocations = *allocations;
  n.updated_ms = *updated;
  if (const auto* load = o->if_contains("load")) {
    if (!load->is_number()) return std::nullopt;
    n.load = load->to_number<double>();
    if (!std::isfinite(n.load)) return std::nullopt;
  }
  if (const auto* d = o->if_contains("draining")) {
    if (!d->is_bool()) return std::nullopt;
    n.draining = d->as_bool();
  }
  return n;
}

std::string to_json(const auth::revocation& r) {
  bj::object o;
  o["tenant"] = r.tenant;
  if (!r.username.empty()) o["username"] = r.username;
  if (!r.user.empty()) o["user"] = r.user;
  o["until"] = r.until_unix;
  return bj::serialize(o);
}

std::optional<auth::revocation> revocation_from_json(std::string_view text) {
  auto o = parse_object(text);
  if (!o) return std::nullopt;
  auth::revocation r;
  auto tenant = string_of(*o, "tenant", 64);
  auto username = string_of(*o, "username", max_name_bytes);
  auto user = string_of(*o, "user", max_name_bytes);
  auto until = signed_of(*o, "until");
  if (!tenant || !username || !user || !until) return std::nullopt;
  // Exactly one target.
  if (username->empty() == user->empty()) return std::nullopt;
  r.tenant = std::move(*tenant);
  r.username = std::move(*username);
  r.user = std::move(*user);
  r.until_unix = *until;
  return r;
}

std::optional<turn::alternate_node> choose_drain_target(std::span<const node_record> nodes,
                                                        std::string_view self_id) {
  const node_record* best = nullptr;
  for (const auto& n : nodes) {
    if (n.id == self_id || n.draining) continue;
    if (!n.address.v4 && !n.address.v6) continue;
    if (n.address.udp_port == 0 && n.address.tcp_port == 0 && n.address.tls_port == 0) continue;
    if (best == nullptr ||
        std::tie(n.load, n.allocations, n.id) < std::tie(best->load, best->allocations, best->id))
      best = &n;
  }
  if (best == nullptr) return std::nullopt;
  return best->address;
}

}  // namespace anyturn::fleet
