// Checks of the sockets the workers open for clients: listen, tls.listen,
// dtls.listen, the PROXY protocol entries, streams.* and stun.other_ip's
// extra sockets (validate.cpp calls them from validate()).
#include "validate_common.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::config::detail {

void check_listen(const server_config& cfg, std::vector<std::string>& errors) {
  if (cfg.listen.empty()) {
    errors.push_back("listen: at least one listener (ADDR:PORT) is required");
  }
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    const auto& ep = cfg.listen[i];
    if (ep.port == 0) errors.push_back(idx("listen", i) + ": port must not be 0");
    for (std::size_t j = 0; j < i; ++j) {
      if (cfg.listen[j] == ep) {
        errors.push_back(idx("listen", i) + ": " + ep.to_string() + " is already listed as " +
                         idx("listen", j));
        break;
      }
    }
  }
}

void check_tls(const server_config& cfg, std::vector<std::string>& errors) {
  const auto& tls = cfg.tls;
  for (std::size_t i = 0; i < tls.listen.size(); ++i) {
    const auto& ep = tls.listen[i];
    const std::string path = idx("tls.listen", i);
    if (ep.port == 0) errors.push_back(path + ": port must not be 0");
    for (std::size_t j = 0; j < i; ++j) {
      if (tls.listen[j] == ep) {
        errors.push_back(path + ": " + ep.to_string() + " is already listed as " +
                         idx("tls.listen", j));
        break;
      }
    }
    if (!cfg.streams.tcp) continue;
    // TCP on `listen` and TLS on the same TCP port cannot both bind.
    for (std::size_t j = 0; j < cfg.listen.size(); ++j) {
      const auto& l = cfg.listen[j];
      if (l.port != ep.port || l.family != ep.family) continue;
      if (l == ep || is_unspecified(l) || is_unspecified(ep)) {
        errors.push_back(path + ": " + ep.to_string() + " overlaps " + idx("listen", j) + " (" +
                         l.to_string() + "), which also serves TCP; use another port");
        break;
      }
    }
  }
  if (tls.cert.empty() != tls.key.empty()) {
    errors.push_back(tls.cert.empty()
                         ? "tls.cert: must be set together with tls.key"
                         : "tls.key: must be set together with tls.cert");
  }
}

// DTLS listeners: UDP sockets of their own, so never the port of a `listen`
// address (with SO_REUSEPORT both would bind and split the datagrams).
void check_dtls(const server_config& cfg, std::vector<std::string>& errors) {
  const auto& dtls = cfg.dtls;
  for (std::size_t i = 0; i < dtls.listen.size(); ++i) {
    const auto& ep = dtls.listen[i];
    const std::string path = idx("dtls.listen", i);
    if (ep.port == 0) errors.push_back(path + ": port must not be 0");
    for (std::size_t j = 0; j < i; ++j) {
      if (dtls.listen[j] == ep) {
        errors.push_back(path + ": " + ep.to_string() + " is already listed as " + idx("dtls.listen", j));
        break;
      }
    }
    for (std::size_t j = 0; j < cfg.listen.size(); ++j) {
      const auto& l = cfg.listen[j];
      if (l.port != ep.port || l.family != ep.family) continue;
      if (l == ep || is_unspecified(l) || is_unspecified(ep)) {
        errors.push_back(path + ": " + ep.to_string() + " overlaps " + idx("listen", j) + " (" +
                         l.to_string() + "), which serves plain UDP on that port; use another port");
        break;
      }
    }
  }
  if (dtls.handshake_timeout == 0 || dtls.handshake_timeout > 300) {
    errors.push_back("dtls.handshake_timeout: expected 1..300 seconds, got " +
                     std::to_string(dtls.handshake_timeout));
  }
  if (dtls.idle_timeout == 0 || dtls.idle_timeout > 86400) {
    errors.push_back("dtls.idle_timeout: expected 1..86400 seconds, got " + std::to_string(dtls.idle_timeout));
  }
}

// PROXY protocol entries: streams only, and only from named source ranges
// (a header from anybody else would let any client claim any address).
void check_proxy_protocol(const std::vector<proxy_protocol_config>& proxy, std::size_t listeners,
                          std::string_view path, bool streams, std::vector<std::string>& errors) {
  if (proxy.size() > listeners) {
    errors.push_back(std::string(path) + ": more PROXY protocol settings than listeners");
  }
  for (std::size_t i = 0; i < proxy.size(); ++i) {
    const auto& pp = proxy[i];
    if (!pp.enabled) continue;
    if (pp.trusted.empty()) {
      errors.push_back(idx(path, i) +
                       ".trusted: proxy_protocol needs the load balancers' source ranges (a "
                       "non-empty list of CIDRs; --proxy-trusted)");
    }
    if (!streams) {
      errors.push_back(idx(path, i) +
                       ".proxy_protocol: needs streams.tcp (PROXY protocol is for TCP; UDP is "
                       "unaffected)");
    }
  }
}

void check_streams(const stream_config& s, std::vector<std::string>& errors) {
  if (s.tls_handshake_timeout == 0) {
    errors.push_back("streams.tls_handshake_timeout: must be greater than 0");
  }
  if (s.idle_timeout == 0) errors.push_back("streams.idle_timeout: must be greater than 0");
  if (s.max_message_size < min_stream_message_size || s.max_message_size > max_stream_message_size) {
    errors.push_back("streams.max_message_size: expected " + std::to_string(min_stream_message_size) +
                     ".." + std::to_string(max_stream_message_size) + ", got " +
                     std::to_string(s.max_message_size));
  }
  if (s.write_queue_size < min_write_queue_size) {
    errors.push_back("streams.write_queue_size: at least " + std::to_string(min_write_queue_size) +
                     " bytes, got " + std::to_string(s.write_queue_size));
  }
  if (s.first_message_timeout_s == 0 || s.first_message_timeout_s > max_first_message_timeout_s) {
    errors.push_back("streams.first_message_timeout_s: expected 1.." +
                     std::to_string(max_first_message_timeout_s) + " seconds, got " +
                     std::to_string(s.first_message_timeout_s));
  }
  if (s.unauthenticated_memory != 0 && s.unauthenticated_memory < min_unauthenticated_memory) {
    errors.push_back("streams.unauthenticated_memory: at least " +
                     std::to_string(min_unauthenticated_memory) + " bytes (or 0: no limit), got " +
                     std::to_string(s.unauthenticated_memory));
  }
}


// stun.other_ip (RFC 5780): a literal, specific address of a family that has
// listeners, none of them a wildcard or on that address; the three extra
// UDP sockets of each listener must not collide with another UDP socket.
void check_other_ip(const server_config& cfg, std::vector<std::string>& errors) {
  if (!cfg.stun.other_ip) return;
  const stun::endpoint& other = *cfg.stun.other_ip;
  const std::string key = "stun.other_ip";
  const std::string ip = other.ip_string();
  if (is_unspecified(other)) {
    errors.push_back(key + ": " + ip + " is a wildcard; name one address of this host");
    return;
  }
  bool family_listens = false;
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    const auto& l = cfg.listen[i];
    if (l.family != other.family) continue;
    family_listens = true;
    if (is_unspecified(l)) {
      errors.push_back(key + ": " + idx("listen", i) + " (" + l.to_string() +
                       ") is a wildcard; RFC 5780 needs listeners on named addresses of " + ip +
                       "'s family");
      return;
    }
    if (l.same_ip(other)) {
      errors.push_back(key + ": " + ip + " is the address of " + idx("listen", i) +
                       "; it must be a different address of this host");
      return;
    }
  }
  if (!family_listens) {
    errors.push_back(key + ": no listen address of " + ip + "'s family (IPv" +
                     (other.is_v4() ? "4" : "6") + ")");
    return;
  }
  // Every UDP socket the listeners open, to find collisions.
  const auto relay_holds = [&](const stun::endpoint& ep) {
    if (ep.port < cfg.relay.port_min || ep.port > cfg.relay.port_max) return false;
    return std::any_of(cfg.relay.ips.begin(), cfg.relay.ips.end(), [&](const stun::endpoint& r) {
      return r.family == ep.family && (r.same_ip(ep) || is_unspecified(r));
    });
  };
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    const auto& a = cfg.listen[i];
    if (a.family != other.family) continue;
    if (a.port == 65535) {
      errors.push_back(key + ": " + idx("listen", i) + " (" + a.to_string() +
                       ") has no port+1 for RFC 5780");
      continue;
    }
    for (int member = 1; member < 4; ++member) {
      stun::endpoint ep = (member & 2) != 0 ? other : a;
      ep.port = static_cast<std::uint16_t>(a.port + (member & 1));
      for (std::size_t j = 0; j < cfg.listen.size(); ++j) {
        if (cfg.listen[j] == ep) {
          errors.push_back(key + ": " + idx("listen", i) + " needs UDP " + ep.to_string() +
                           ", which " + idx("listen", j) + " uses");
        }
      }
      if (relay_holds(ep)) {
        errors.push_back(key + ": " + idx("listen", i) + " needs UDP " + ep.to_string() +
                         ", inside relay.ports on a relay address");
      }
      // Two UDP sockets of one process on one port (SO_REUSEPORT) would
      // split its datagrams between DTLS and Binding.
      for (std::size_t j = 0; j < cfg.dtls.listen.size(); ++j) {
        const auto& d = cfg.dtls.listen[j];
        if (d.family == ep.family && d.port == ep.port && (d.same_ip(ep) || is_unspecified(d))) {
          errors.push_back(key + ": " + idx("listen", i) + " needs UDP " + ep.to_string() + ", which " +
                           idx("dtls.listen", j) + " (" + d.to_string() + ") uses");
        }
      }
    }
  }
}

}  // namespace anyturn::config::detail
