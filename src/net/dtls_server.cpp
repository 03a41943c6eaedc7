#include "dtls_server.hpp"
#include "tls_common.hpp"

#include <anyturn/common/log_limiter.hpp>

#include <boost/asio/ssl/context.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <utility>

namespace anyturn::net::detail {

using relay::bump;

namespace {

// DTLS record header: type(1) version(2) epoch(2) sequence(6) length(2).
constexpr std::size_t record_header = 13;
constexpr std::uint8_t content_handshake = 22;
constexpr std::uint8_t client_hello = 1;

// A DTLS handshake record (any DTLS version: the high byte is 0xFE).
bool is_handshake_record(stun::bytes_view d) {
  return d.size() > record_header && static_cast<std::uint8_t>(d[0]) == content_handshake &&
         static_cast<std::uint8_t>(d[1]) == 0xFE;
}

// A ClientHello in epoch 0: a client (re)starting a handshake.
bool is_client_hello(stun::bytes_view d) {
  return is_handshake_record(d) && d[3] == std::byte{0} && d[4] == std::byte{0} &&
         static_cast<std::uint8_t>(d[record_header]) == client_hello;
}

}  // namespace

// The BIO's state: which datagram it reads and where its writes go.
struct dtls_link {
  dtls_server* server = nullptr;
  std::uint32_t listener = 0;
  stun::endpoint remote;
  stun::endpoint local;
  const std::byte* in = nullptr;  // the datagram being handled, read once
  std::size_t in_size = 0;
  bool wrote = false;  // something was sent since the flag was cleared
};

namespace {

int link_read(BIO* b, char* out, int size) {
  auto* l = static_cast<dtls_link*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (l == nullptr || l->in_size == 0 || size <= 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  // A datagram is read whole or not at all: a truncated one is dropped.
  if (l->in_size > static_cast<std::size_t>(size)) {
    l->in_size = 0;
    BIO_set_retry_read(b);
    return -1;
  }
  const std::size_t n = l->in_size;
  std::memcpy(out, l->in, n);
  l->in_size = 0;
  return static_cast<int>(n);
}

int link_write(BIO* b, const char* data, int size) {
  auto* l = static_cast<dtls_link*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (l == nullptr || size < 0) return -1;
  l->wrote = true;
  l->server->send_datagram(*l, stun::bytes_view(reinterpret_cast<const std::byte*>(data),
                                                static_cast<std::size_t>(size)));
  return size;
}

long link_ctrl(BIO*, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING: return 0;
    default: return 0;  // no MTU queries (SSL_OP_NO_QUERY_MTU), no peer addresses
  }
}

int link_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

int link_destroy(BIO*) { return 1; }  // the link belongs to its session or listener slot

BIO_METHOD* link_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "anyturn dtls link");
    if (m == nullptr) return m;
    BIO_meth_set_read(m, link_read);
    BIO_meth_set_write(m, link_write);
    BIO_meth_set_ctrl(m, link_ctrl);
    BIO_meth_set_create(m, link_create);
    BIO_meth_set_destroy(m, link_destroy);
    return m;
  }();
  return method;
}

}  // namespace

int dtls_generate_cookie(SSL* ssl, unsigned char* cookie, unsigned int* len) {
  auto* server = static_cast<dtls_server*>(SSL_get_app_data(ssl));
  auto* link = static_cast<dtls_link*>(BIO_get_data(SSL_get_rbio(ssl)));
  if (server == nullptr || link == nullptr) return 0;
  const std::size_t n = server->cookies_.make(link->remote, std::span(cookie, DTLS1_COOKIE_LENGTH));
  *len = static_cast<unsigned int>(n);
  return n != 0 ? 1 : 0;
}

int dtls_verify_cookie(SSL* ssl, const unsigned char* cookie, unsigned int len) {
  auto* server = static_cast<dtls_server*>(SSL_get_app_data(ssl));
  auto* link = static_cast<dtls_link*>(BIO_get_data(SSL_get_rbio(ssl)));
  if (server == nullptr || link == nullptr) return 0;
  if (server->cookies_.verify(link->remote, std::span(cookie, len))) return 1;
  server->bad_cookie_ = true;
  return 0;
}

struct dtls_server::session {
  ~session() {
    if (ssl != nullptr) SSL_free(ssl);  // the BIO with it; the link after
  }
  SSL* ssl = nullptr;
  std::unique_ptr<dtls_link> link;
  relay::client_ref ref;
  std::int64_t started_ms = 0;
  std::int64_t last_rx_ms = 0;
  bool established = false;
  bool limiter_held = false;
  bool dead = false;  // closed; erased by whoever iterates
};

struct dtls_server::listen_slot {
  ~listen_slot() {
    if (ssl != nullptr) SSL_free(ssl);
  }
  SSL* ssl = nullptr;  // made on first use, and again after it became a session
  std::unique_ptr<dtls_link> link;
};

const char* to_string(dtls_close why) {
  switch (why) {
    case dtls_close::handshake_failed: return "handshake failed";
    case dtls_close::handshake_timeout: return "handshake timeout (dtls.handshake_timeout)";
    case dtls_close::idle_timeout: return "idle timeout (dtls.idle_timeout)";
    case dtls_close::error: return "fatal DTLS error";
    case dtls_close::peer_closed: return "closed by the client";
    case dtls_close::replaced: return "replaced by a new handshake from the same address";
    case dtls_close::shutdown: return "server shutdown";
  }
  return "?";
}

dtls_server::dtls_server(dtls_host& host, unsigned worker_index, dtls_settings settings,
                         net_counters& counters, std::shared_ptr<connection_limiter> limiter)
    : host_(host),
      index_(worker_index),
      settings_(settings),
      counters_(counters),
      limiter_(std::move(limiter)),
      cookies_(settings.cookie_rotation_ms),
      peer_scratch_(BIO_ADDR_new()),
      rx_(64 * 1024),
      tx_(64 * 1024) {}

dtls_server::~dtls_server() {
  // Sessions first (their SSL objects hold the context), without callbacks:
  // the host is going away too.
  for (auto& [key, s] : sessions_) {
    if (s->limiter_held && limiter_) limiter_->release(s->ref.remote);
  }
  const std::uint64_t open = counters_.dtls_sessions_open.load(std::memory_order_relaxed);
  counters_.dtls_sessions_open.store(open - std::min<std::uint64_t>(open, sessions_.size()),
                                     std::memory_order_relaxed);
  sessions_.clear();
  listeners_.clear();
  BIO_ADDR_free(peer_scratch_);
}

bool dtls_server::set_context(const tls_context_ptr& tls, std::string& error) {
  if (!tls) {
    error = "no TLS context (tls.cert / tls.key or the development certificate)";
    return false;
  }
  ERR_clear_error();
  SSL_CTX* from = tls->native_handle();
  X509* cert = SSL_CTX_get0_certificate(from);
  EVP_PKEY* key = SSL_CTX_get0_privatekey(from);
  if (cert == nullptr || key == nullptr) {
    error = "the TLS context has no certificate and key";
    return false;
  }
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(DTLS_server_method()), SSL_CTX_free);
  STACK_OF(X509)* chain = nullptr;
  const bool ok = ctx && SSL_CTX_set_min_proto_version(ctx.get(), DTLS1_2_VERSION) == 1 &&
                  SSL_CTX_set_max_proto_version(ctx.get(), DTLS1_2_VERSION) == 1 &&
                  SSL_CTX_set_cipher_list(ctx.get(), "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20") == 1 &&
                  SSL_CTX_use_certificate(ctx.get(), cert) == 1 && SSL_CTX_use_PrivateKey(ctx.get(), key) == 1 &&
                  SSL_CTX_get0_chain_certs(from, &chain) == 1 &&
                  (chain == nullptr || SSL_CTX_set1_chain(ctx.get(), chain) == 1) &&
                  SSL_CTX_check_private_key(ctx.get()) == 1;
  if (!ok) {
    error = "cannot build the DTLS context: " + openssl_error("no detail");
    return false;
  }
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_NO_COMPRESSION | SSL_OP_COOKIE_EXCHANGE | SSL_OP_NO_QUERY_MTU);
  SSL_CTX_set_cookie_generate_cb(ctx.get(), dtls_generate_cookie);
  SSL_CTX_set_cookie_verify_cb(ctx.get(), dtls_verify_cookie);
  SSL_CTX_set_alpn_select_cb(ctx.get(), on_alpn, nullptr);
  ctx_ = std::move(ctx);
  // Listening objects belong to the old context: made again on next use.
  for (auto& slot : listeners_) {
    if (slot && slot->ssl != nullptr) {
      SSL_free(slot->ssl);
      slot->ssl = nullptr;
    }
  }
  return true;
}

relay::client_ref dtls_server::key_of(std::uint32_t listener, const stun::endpoint& remote) {
  relay::client_ref key;
  key.proto = relay::transport::dtls;
  key.listener = listener;
  key.remote = remote;
  return key;
}

SSL* dtls_server::new_ssl(dtls_link& link, std::string& error) {
  if (!ctx_ || link_method() == nullptr) {
    error = "no DTLS context";
    return nullptr;
  }
  SSL* ssl = SSL_new(ctx_.get());
  BIO* bio = ssl != nullptr ? BIO_new(link_method()) : nullptr;
  if (bio == nullptr) {
    if (ssl != nullptr) SSL_free(ssl);
    error = openssl_error("no detail");
    return nullptr;
  }
  BIO_set_data(bio, &link);
  SSL_set_bio(ssl, bio, bio);  // one reference, owned by the SSL object
  SSL_set_app_data(ssl, this);
  SSL_set_accept_state(ssl);
  SSL_set_mtu(ssl, static_cast<long>(settings_.mtu));
  return ssl;
}

dtls_server::listen_slot& dtls_server::listener_slot(std::uint32_t listener) {
  if (listener >= listeners_.size()) listeners_.resize(listener + 1);
  auto& slot = listeners_[listener];
  if (!slot) slot = std::make_unique<listen_slot>();
  if (!slot->link) {
    slot->link = std::make_unique<dtls_link>();
    slot->link->server = this;
    slot->link->listener = listener;
  }
  return *slot;
}

void dtls_server::send_datagram(const dtls_link& link, stun::bytes_view data) {
  host_.dtls_send(link.listener, link.remote, link.local, data);
}

void dtls_server::on_datagram(std::uint32_t listener, const stun::endpoint& remote,
                              const stun::endpoint& local, stun::bytes_view data, const relay::now_t& now) {
  const relay::client_ref key = key_of(listener, remote);
  const auto it = sessions_.find(key);
  if (it == sessions_.end() || (it->second->established && is_client_hello(data))) {
    // No session, or a client starting over (a restart, a new port mapping
    // reused): the stateless path, which replaces the session only once
    // the new handshake returns a valid cookie.
    if (!is_handshake_record(data)) {
      bump(counters_.dtls_garbage);
      return;
    }
    listen(listener, remote, local, data, now);
    return;
  }
  session& s = *it->second;
  s.link->local = local;
  s.link->in = data.data();
  s.link->in_size = data.size();
  if (s.established) read_records(s, now);
  else handshake(s, now);
  if (s.dead) {
    sessions_.erase(key);
    return;
  }
  s.link->in_size = 0;
}

void dtls_server::listen(std::uint32_t listener, const stun::endpoint& remote, const stun::endpoint& local,
                         stun::bytes_view data, const relay::now_t& now) {
  listen_slot& slot = listener_slot(listener);
  if (slot.ssl == nullptr) {
    std::string error;
    slot.ssl = new_ssl(*slot.link, error);
    if (slot.ssl == nullptr) {
      bump(counters_.dtls_handshake_failures);
      std::uint64_t suppressed = 0;
      if (failure_log_.allow(now.mono_ms, suppressed)) {
        spdlog::error("worker {}: DTLS: cannot make a listening SSL object: {} ({} similar suppressed)",
                      index_, error, suppressed);
      }
      return;
    }
  }
  dtls_link& link = *slot.link;
  link.remote = remote;
  link.local = local;
  link.in = data.data();
  link.in_size = data.size();
  link.wrote = false;
  bad_cookie_ = false;
  ERR_clear_error();
  const int rc = DTLSv1_listen(slot.ssl, peer_scratch_);
  link.in_size = 0;
  if (bad_cookie_) bump(counters_.dtls_bad_cookies);
  if (rc <= 0) {
    if (link.wrote) bump(counters_.dtls_cookies_sent);
    else if (!bad_cookie_) bump(counters_.dtls_garbage);
    if (rc < 0) {
      // A fatal error leaves the object in an unknown state: make another.
      SSL_free(slot.ssl);
      slot.ssl = nullptr;
    }
    ERR_clear_error();
    return;
  }
  promote(slot, key_of(listener, remote), now);
}

void dtls_server::promote(listen_slot& slot, const relay::client_ref& key, const relay::now_t& now) {
  // The client returned a valid cookie: it receives at its address.
  if (const auto old = sessions_.find(key); old != sessions_.end()) {
    close(*old->second, dtls_close::replaced, now);
    sessions_.erase(old);
  }
  if (limiter_) {
    const auto verdict = limiter_->try_acquire(key.remote);
    if (verdict != connection_limiter::verdict::accepted) {
      bump(counters_.dtls_refused_limit);
      const bool total = verdict == connection_limiter::verdict::over_total;
      std::uint64_t suppressed = 0;
      if (limit_log_.allow(now.mono_ms, suppressed)) {
        spdlog::warn("worker {}: refused a DTLS session from {}: {} ({} similar suppressed)", index_,
                     key.remote.to_string(),
                     total ? "streams.max_connections reached" : "streams.max_connections_per_ip reached",
                     suppressed);
      }
      SSL_free(slot.ssl);  // mid-handshake: not reusable for listening
      slot.ssl = nullptr;
      return;
    }
  }
  auto s = std::make_unique<session>();
  s->ssl = std::exchange(slot.ssl, nullptr);
  s->link = std::move(slot.link);  // the SSL object's BIO points to it
  s->limiter_held = limiter_ != nullptr;
  s->ref = key;
  s->ref.local = s->link->local;
  s->ref.connection = next_id_++;
  s->started_ms = now.mono_ms;
  s->last_rx_ms = now.mono_ms;
  session& ref = *s;
  sessions_.emplace(key, std::move(s));
  bump(counters_.dtls_sessions_open);
  // The ClientHello is inside the SSL object already: continue.
  handshake(ref, now);
  if (ref.dead) sessions_.erase(key);
}

void dtls_server::handshake(session& s, const relay::now_t& now) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(s.ssl);
  if (rc == 1) {
    s.established = true;
    s.last_rx_ms = now.mono_ms;
    bump(counters_.dtls_handshakes);
    spdlog::debug("worker {}: DTLS session {} from {} to {} established ({})", index_, s.ref.connection,
                  s.ref.remote.to_string(), s.ref.local.to_string(), SSL_get_cipher_name(s.ssl));
    read_records(s, now);  // records that came with the last flight
    return;
  }
  const int err = SSL_get_error(s.ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
  close(s, dtls_close::handshake_failed, now);
}

void dtls_server::read_records(session& s, const relay::now_t& now) {
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(s.ssl, rx_.data(), static_cast<int>(rx_.size()));
    if (n > 0) {
      s.last_rx_ms = now.mono_ms;
      host_.dtls_deliver(s.ref, stun::bytes_view(reinterpret_cast<const std::byte*>(rx_.data()),
                                                 static_cast<std::size_t>(n)),
                         now);
      if (s.dead) return;
      continue;
    }
    const int err = SSL_get_error(s.ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    close(s, err == SSL_ERROR_ZERO_RETURN ? dtls_close::peer_closed : dtls_close::error, now);
    return;
  }
}

bool dtls_server::send(const relay::client_ref& to, relay::fragments data) {
  const auto it = sessions_.find(key_of(to.listener, to.remote));
  if (it == sessions_.end()) return false;
  session& s = *it->second;
  if (s.dead || !s.established || s.ref.connection != to.connection) return false;
  std::size_t size = 0;
  for (const auto& f : data) {
    if (size + f.size() > tx_.size()) return false;
    if (!f.empty()) std::memcpy(tx_.data() + size, f.data(), f.size());
    size += f.size();
  }
  if (size == 0) return true;
  ERR_clear_error();
  const int rc = SSL_write(s.ssl, tx_.data(), static_cast<int>(size));
  if (rc == static_cast<int>(size)) return true;
  ERR_clear_error();
  return false;
}

void dtls_server::close(session& s, dtls_close why, const relay::now_t& now) {
  if (s.dead) return;
  s.dead = true;
  s.link->in_size = 0;
  // close_notify, through the link: when we end the session, and as the
  // answer to the client's. Not to a client that restarted (it holds no
  // keys of the old session any more), nor after a fatal error.
  const bool notify = why == dtls_close::idle_timeout || why == dtls_close::shutdown ||
                      why == dtls_close::peer_closed;
  if (s.established && notify) SSL_shutdown(s.ssl);
  ERR_clear_error();
  switch (why) {
    case dtls_close::handshake_failed: bump(counters_.dtls_handshake_failures); break;
    case dtls_close::handshake_timeout: bump(counters_.dtls_handshake_timeouts); break;
    case dtls_close::idle_timeout: bump(counters_.dtls_idle_timeouts); break;
    case dtls_close::error: bump(counters_.dtls_session_errors); break;
    case dtls_close::peer_closed:
    case dtls_close::replaced:
    case dtls_close::shutdown: break;
  }
  log_failure(s, why, now);
  if (s.limiter_held && limiter_) limiter_->release(s.ref.remote);
  s.limiter_held = false;
  const std::uint64_t open = counters_.dtls_sessions_open.load(std::memory_order_relaxed);
  if (open > 0) counters_.dtls_sessions_open.store(open - 1, std::memory_order_relaxed);
  // RFC 8656 §3.1 as for streams: the allocation lives as long as its session.
  if (s.established) host_.dtls_closed(s.ref, now);
}

void dtls_server::log_failure(const session& s, dtls_close why, const relay::now_t& now) {
  const bool warn = why == dtls_close::handshake_failed || why == dtls_close::handshake_timeout ||
                    why == dtls_close::error;
  std::uint64_t suppressed = 0;
  if (warn && failure_log_.allow(now.mono_ms, suppressed)) {
    spdlog::warn("worker {}: closed DTLS session from {}: {} ({} similar suppressed)", index_,
                 s.ref.remote.to_string(), to_string(why), suppressed);
  } else {
    spdlog::debug("worker {}: DTLS session {} from {} closed: {}", index_, s.ref.connection,
                  s.ref.remote.to_string(), to_string(why));
  }
}

void dtls_server::on_tick(const relay::now_t& now) {
  cookies_.maybe_rotate(now.mono_ms);
  const std::int64_t handshake_ms = settings_.handshake_timeout.count();
  const std::int64_t idle_ms = settings_.idle_timeout.count();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    session& s = *it->second;
    if (!s.established) {
      if (now.mono_ms - s.started_ms >= handshake_ms) {
        close(s, dtls_close::handshake_timeout, now);
      } else {
        ERR_clear_error();
        // Resends our last flight when its timer ran out (RFC 6347 §4.2.4).
        if (DTLSv1_handle_timeout(s.ssl) < 0) close(s, dtls_close::handshake_failed, now);
        ERR_clear_error();
      }
    } else if (now.mono_ms - s.last_rx_ms >= idle_ms) {
      close(s, dtls_close::idle_timeout, now);
    }
    if (s.dead) it = sessions_.erase(it);
    else ++it;
  }
}

void dtls_server::close_all(const relay::now_t& now) {
  for (auto& [key, s] : sessions_) close(*s, dtls_close::shutdown, now);
  sessions_.clear();
  listeners_.clear();
}

}  // namespace anyturn::net::detail
