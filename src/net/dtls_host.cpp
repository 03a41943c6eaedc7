// The worker's side of TURN over DTLS: its DTLS listeners (UDP sockets in
// the worker's epoll set, read by the UDP loop like the others, whose
// datagrams drain_listener hands to the dtls_server) and the dtls_host
// callbacks that connect the server to the batch and the TURN core.
#include "worker_impl.hpp"

#include <spdlog/spdlog.h>

#include <array>

namespace anyturn::net {

using relay::bump;

std::error_code worker::impl::open_dtls_listeners(std::string& what) {
  if (options_.dtls_listen.empty()) return {};
  detail::dtls_settings settings;
  settings.handshake_timeout = options_.dtls_handshake_timeout;
  settings.idle_timeout = options_.dtls_idle_timeout;
  dtls_ = std::make_unique<detail::dtls_server>(static_cast<detail::dtls_host&>(*this), index_, settings,
                                                io_counters_, options_.connections);
  std::string error;
  if (!dtls_->set_context(tls_, error)) {
    what = "dtls: " + error;
    dtls_.reset();
    return std::make_error_code(std::errc::invalid_argument);
  }
  for (const auto& ep : options_.dtls_listen) {
    if (std::error_code ec = open_listener(ep, what)) {
      what = "dtls" + what.substr(what.find(' '));  // "udp listener ..." -> "dtls listener ..."
      dtls_.reset();
      return ec;
    }
    listeners_.back().dtls = true;
  }
  return {};
}

std::vector<stun::endpoint> worker::impl::dtls_listener_endpoints() const {
  std::vector<stun::endpoint> out;
  for (const auto& l : listeners_) {
    if (l.dtls) out.push_back(l.bound);
  }
  return out;
}

void worker::impl::update_dtls_context() {
  std::string error;
  if (!dtls_->set_context(tls_, error)) {
    spdlog::error("worker {}: DTLS keeps its old certificate: {}", index_, error);
  }
}

void worker::impl::dtls_send(std::uint32_t listener, const stun::endpoint& to, const stun::endpoint& local,
                             stun::bytes_view datagram) {
  if (listener >= listeners_.size() || !listeners_[listener].fd.is_open()) {
    bump(counters_.client_send_failed);
    return;
  }
  const detail::udp_listener& l = listeners_[listener];
  const bool with_source = l.wildcard && local.family == l.bound.family && !is_unspecified(local);
  const std::array<stun::bytes_view, 1> parts{datagram};
  if (!batch_.send(l.fd.get(), send_queue::direction::to_client, to, parts, with_source ? &local : nullptr)) {
    bump(counters_.client_send_failed);
  }
}

void worker::impl::dtls_deliver(const relay::client_ref& from, stun::bytes_view record,
                                const relay::now_t& now) {
  core_->on_client_packet(from, record, now);
}

void worker::impl::dtls_closed(const relay::client_ref& ref, const relay::now_t& now) {
  core_->on_client_closed(ref, now);
}

}  // namespace anyturn::net
