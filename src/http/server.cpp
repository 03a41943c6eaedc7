// The HTTP/1.1 server: Boost.Beast sessions over TCP or TLS on the server's
// own io_context. Each connection runs on its own strand; the request logic
// is api::handle().
#include <anyturn/http/api.hpp>
#include <anyturn/http/server.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <anyturn/common/log_limiter.hpp>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t max_drain_bytes = 64 * 1024;  // read and dropped before closing on an error
// After accept() fails (EMFILE and friends) the listen queue stays readable:
// re-arming at once would spin. Wait this long, as the TURN acceptors do.
constexpr std::chrono::milliseconds accept_retry_delay{100};

// Sent to a connection shed while the process is out of descriptors.
constexpr std::string_view shed_response =
    "HTTP/1.1 503 Service Unavailable\r\nServer: anyturn\r\nContent-Type: application/json\r\n"
    "Content-Length: 36\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    "{\"error\":\"out of file descriptors\"}\n";

// Deferred answers (GET /probe) come from probe threads and are posted to
// their connection's strand while the gate is open; stop() closes it before
// the io_context goes away, so no thread posts to a destroyed context.
struct delivery_gate {
  std::mutex mutex;
  bool open = true;
};

// What every connection shares; kept alive by the sessions that use it.
struct shared_state {
  explicit shared_state(const server_config& cfg)
      : limits(cfg.limits), deferred_limit(cfg.probe.timeout + std::chrono::seconds(10)), handler(cfg) {}
  http_limits limits;
  // A deferred answer not there by then is given up (504): the probe's own
  // timeout bounds it well before.
  std::chrono::steady_clock::duration deferred_limit;
  std::shared_ptr<delivery_gate> gate = std::make_shared<delivery_gate>();
  api handler;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> accept_errors{0};  // accept() failures, any cause
  std::atomic<std::uint64_t> shed{0};           // answered 503 on EMFILE via the reserve fd
};

// The key of a client for per-address limits: its IPv4 address, or the /64
// of its IPv6 address (one host usually holds a whole /64).
std::string client_key(const tcp::socket& socket) {
  beast::error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return {};
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  if (a.is_v6()) {
    auto bytes = a.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return asio::ip::address_v6(bytes).to_string() + "/64";
  }
  return a.to_string();
}

// One connection. Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <typename Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
 public:
  static constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <typename... Args>
  session(std::shared_ptr<shared_state> state, Args&&... stream_args)
      : state_(std::move(state)),
        stream_(std::forward<Args>(stream_args)...),
        deferred_timer_(stream_.get_executor()) {}

  ~session() { state_->connections.fetch_sub(1, std::memory_order_relaxed); }

  void run() {
    // Start on the connection's strand.
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->start(); });
  }

 private:
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  void start() {
    client_ = client_key(tcp().socket());
    if constexpr (is_tls) {
      tcp().expires_after(state_->limits.read_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->do_read();
                              });
    } else {
      do_read();
    }
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(state_->limits.max_header_bytes));
    parser_->body_limit(state_->limits.max_body_bytes);
    tcp().expires_after(state_->limits.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream) return do_close();
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted) return;  // drop
    if (ec) {
      // Oversized or unparsable: answer, then close.
      bhttp::status status = bhttp::status::bad_request;
      std::string_view message = "malformed request";
      if (ec == bhttp::error::header_limit) {
        status = bhttp::status::request_header_fields_too_large;
        message = "request header too large";
      } else if (ec == bhttp::error::body_limit) {
        status = bhttp::status::payload_too_large;
        message = "request body too large";
      } else if (ec == asio::error::eof || ec == asio::error::connection_reset ||
                 ec == bhttp::error::partial_message) {
        return;  // the client went away
      }
      std::string_view target;
      if (parser_ && parser_->is_header_done()) target = std::string_view(parser_->get().target());
      state_->handler.count_response(target, static_cast<unsigned>(status));
      response res{status, 11};
      res.set(bhttp::field::server, "anyturn");
      res.set(bhttp::field::content_type, "application/json");
      res.set(bhttp::field::connection, "close");
      res.body() = "{\"error\":\"" + std::string(message) + "\"}\n";
      res.keep_alive(false);
      res.prepare_payload();
      return send(std::move(res));
    }
    auto res = state_->handler.handle_async(parser_->get(), client_, deferred_delivery());
    if (res) return send(std::move(*res));
    // Deferred (GET /probe): nothing is read or written until the answer
    // comes; the timer holds the session (and ends with the io_context).
    waiting_ = true;
    deferred_timer_.expires_after(state_->deferred_limit);
    deferred_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || !self->waiting_) return;
      self->waiting_ = false;
      response res{bhttp::status::gateway_timeout, 11};
      res.set(bhttp::field::server, "anyturn");
      res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
      res.body() = "the probe did not finish in time\n";
      res.keep_alive(false);
      res.prepare_payload();
      self->state_->handler.count_response("/probe", res.result_int());
      self->send(std::move(res));
    });
  }

  // The probe thread's way back: post the answer to this connection's
  // strand, while the server still runs (the gate), and only to a session
  // that still waits.
  api::deliver_fn deferred_delivery() {
    return [gate = state_->gate, ex = stream_.get_executor(),
            weak = std::weak_ptr<session>(this->shared_from_this())](response res) {
      const std::lock_guard lock(gate->mutex);
      if (!gate->open) return;
      asio::post(ex, [weak, res = std::move(res)]() mutable {
        const auto self = weak.lock();
        if (!self || !self->waiting_) return;
        self->waiting_ = false;
        self->deferred_timer_.cancel();
        self->state_->handler.count_response("/probe", res.result_int());
        self->send(std::move(res));
      });
    };
  }

  void send(response res) {
    response_ = std::make_shared<response>(std::move(res));
    tcp().expires_after(state_->limits.read_timeout);
    bhttp::async_write(stream_, *response_,
                       [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                         self->on_write(ec);
                       });
  }

  void on_write(beast::error_code ec) {
    if (ec) return;
    const bool keep_alive = response_->keep_alive();
    response_.reset();
    if (!keep_alive) return do_close();
    do_read();
  }

  // Graceful close: say goodbye, then read (and drop) what the client may
  // still be sending, so closing does not reset the connection before the
  // client has read our last response.
  void do_close() {
    tcp().expires_after(state_->limits.read_timeout);
    if constexpr (is_tls) {
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::error_code ignored;
        self->tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
      });
    } else {
      beast::error_code ignored;
      tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
      drain();
    }
  }

  void drain() {
    if constexpr (!is_tls) {
      tcp().async_read_some(asio::buffer(drain_buffer_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (!ec && self->drained_ < max_drain_bytes) self->drain();
                            });
    }
  }

  std::shared_ptr<shared_state> state_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<response> response_;
  asio::steady_timer deferred_timer_;  // a deferred answer's time limit
  bool waiting_ = false;               // for a deferred answer (on the strand)
  std::array<char, 4096> drain_buffer_{};
  std::size_t drained_ = 0;
  std::string client_;  // the peer's address (IPv6: its /64), for the admin failure limit
};

void add_error(std::vector<std::string>& errors, const std::string& path, const std::string& msg) {
  errors.push_back(path + ": " + msg);
}

}  // namespace

std::vector<std::string> validate(const server_config& cfg) {
  std::vector<std::string> errors;
  beast::error_code ec;
  asio::ip::make_address(cfg.address, ec);
  if (ec) add_error(errors, "address", "not an IP address: '" + cfg.address + "'");
  if (cfg.threads == 0) add_error(errors, "threads", "must be at least 1");
  if (cfg.limits.max_header_bytes < 1024) add_error(errors, "limits.max_header_bytes", "below 1024");
  if (cfg.limits.max_header_bytes > 0xFFFFFFFFu) {
    add_error(errors, "limits.max_header_bytes", "too large");
  }
  if (cfg.limits.read_timeout.count() <= 0) add_error(errors, "limits.read_timeout", "must be > 0");
  if (cfg.limits.max_connections == 0) add_error(errors, "limits.max_connections", "must be >= 1");
  if (cfg.tls && (cfg.tls->certificate_chain.empty() || cfg.tls->private_key.empty())) {
    add_error(errors, "tls", "needs both a certificate chain and a private key file");
  }
  if (cfg.test_page && cfg.test_page_secret.empty()) {
    add_error(errors, "test_page_secret", "required when test_page is on");
  }
  std::vector<std::string_view> ids;
  for (std::size_t i = 0; i < cfg.tenants.size(); ++i) {
    const api_tenant& t = cfg.tenants[i];
    const std::string path = "tenants[" + std::to_string(i) + "]";
    if (t.id.find(':') != std::string::npos) add_error(errors, path + ".id", "contains ':'");
    for (std::string_view other : ids) {
      if (other == t.id) add_error(errors, path + ".id", "repeats '" + t.id + "'");
    }
    ids.push_back(t.id);
    if (t.api_keys.empty()) add_error(errors, path + ".api_keys", "none given");
    for (const std::string& k : t.api_keys) {
      if (k.empty()) add_error(errors, path + ".api_keys", "empty key");
      if (k.find_first_of(" \t\r\n") != std::string::npos) {
        add_error(errors, path + ".api_keys", "a key contains whitespace");
      }
    }
    if (t.secrets.empty()) add_error(errors, path + ".secrets", "none given");
    for (const std::string& s : t.secrets) {
      if (s.empty()) add_error(errors, path + ".secrets", "empty secret");
    }
    if (t.max_ttl == 0) add_error(errors, path + ".max_ttl", "must be > 0");
    if (t.default_ttl == 0 || t.default_ttl > t.max_ttl) {
      add_error(errors, path + ".default_ttl", "must be in 1..max_ttl");
    }
  }
  // A key must identify one tenant.
  for (std::size_t i = 0; i < cfg.tenants.size(); ++i) {
    for (std::size_t j = i + 1; j < cfg.tenants.size(); ++j) {
      for (const std::string& a : cfg.tenants[i].api_keys) {
        for (const std::string& b : cfg.tenants[j].api_keys) {
          if (a == b && !a.empty()) {
            add_error(errors, "tenants[" + std::to_string(j) + "].api_keys",
                      "a key is also used by tenants[" + std::to_string(i) + "]");
          }
        }
      }
    }
  }
  for (std::size_t i = 0; i < cfg.admin_keys.size(); ++i) {
    const std::string& k = cfg.admin_keys[i];
    const std::string path = "admin_keys[" + std::to_string(i) + "]";
    if (k.empty()) add_error(errors, path, "empty key");
    if (k.find_first_of(" \t\r\n") != std::string::npos) add_error(errors, path, "contains whitespace");
    for (std::size_t t = 0; t < cfg.tenants.size(); ++t) {
      for (const std::string& tk : cfg.tenants[t].api_keys) {
        if (!k.empty() && k == tk) {
          add_error(errors, path, "is also an API key of tenants[" + std::to_string(t) +
                                      "]; admin keys must differ from every tenant's keys");
        }
      }
    }
  }
  if (!cfg.tenants.empty() && cfg.urls.turn.empty()) {
    add_error(errors, "urls.turn", "none given, but tenants are configured");
  }
  return errors;
}

struct server::impl {
  explicit impl(server_config c) : cfg(std::move(c)) {}

  server_config cfg;
  std::shared_ptr<shared_state> state;
  std::optional<asio::ssl::context> tls;
  // Destroyed in stop(): acceptor first, then the context (which destroys
  // every session still waiting on it).
  std::unique_ptr<asio::io_context> ioc;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  tcp::endpoint bound;
  metrics::registry::collector_id collector = 0;
  bool started = false;
  bool stopped = false;
  // Touched only on the acceptor's strand (after start()).
  std::optional<asio::steady_timer> retry_timer;
  int reserve_fd = -1;  // spent to shed one connection when accept() hits EMFILE
  common::log_limiter accept_log{1, 10'000};

  void do_accept() {
    acceptor->async_accept(asio::make_strand(*ioc), [this](beast::error_code ec, tcp::socket sock) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      if (ec) return on_accept_error(ec);
      on_accept(std::move(sock));
      do_accept();
    });
  }

  // Runs on the acceptor's strand. Out of descriptors, the pending
  // connection would stay queued (and the listen socket readable) until an
  // fd frees up: spend the reserve fd to take it off the queue with a 503,
  // then wait before accepting again, whatever the error.
  void on_accept_error(const beast::error_code& ec) {
    state->accept_errors.fetch_add(1, std::memory_order_relaxed);
    const bool out_of_fds = ec == asio::error::no_descriptors ||
                            ec == beast::error_code(ENFILE, boost::system::system_category());
    bool shed = false;
    if (out_of_fds) shed = shed_one();
    std::uint64_t suppressed = 0;
    if (accept_log.allow(now_ms(), suppressed)) {
      spdlog::warn("http: accept on {} failed: {}{}; retrying in {} ms ({} similar suppressed)",
                   bound.address().to_string() + ":" + std::to_string(bound.port()), ec.message(),
                   shed ? " (one connection answered 503)" : "", accept_retry_delay.count(),
                   suppressed);
    }
    retry_timer->expires_after(accept_retry_delay);
    retry_timer->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor && acceptor->is_open()) do_accept();
    });
  }

  bool shed_one() {
    if (reserve_fd < 0) {
      reopen_reserve();
      return false;
    }
    ::close(reserve_fd);
    reserve_fd = -1;
    bool answered = false;
    pollfd p{acceptor->native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0) {
      const int fd = ::accept4(acceptor->native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        // Read what the client already sent, so closing sends FIN, not RST
        // (which could discard the answer before the client reads it).
        std::array<char, 4096> sink{};
        for (int i = 0; i < 16 && ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT) > 0; ++i) {
        }
        const ssize_t n = ::send(fd, shed_response.data(), shed_response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
        ::close(fd);
        answered = n > 0;
        state->shed.fetch_add(1, std::memory_order_relaxed);
      }
    }
    reopen_reserve();
    return answered;
  }

  void reopen_reserve() {
    if (reserve_fd < 0) reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void on_accept(tcp::socket sock) {
    state->accepted.fetch_add(1, std::memory_order_relaxed);
    if (state->connections.load(std::memory_order_relaxed) >= state->limits.max_connections) {
      state->rejected.fetch_add(1, std::memory_order_relaxed);
      beast::error_code ignored;
      sock.close(ignored);
      return;
    }
    state->connections.fetch_add(1, std::memory_order_relaxed);
    if (tls) {
      std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(state, std::move(sock), *tls)
          ->run();
    } else {
      std::make_shared<session<beast::tcp_stream>>(state, std::move(sock))->run();
    }
  }
};

server::server(server_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {
  const auto errors = validate(impl_->cfg);
  if (!errors.empty()) {
    std::string what = "invalid HTTP server config:";
    for (const auto& e : errors) what += "\n  " + e;
    throw std::invalid_argument(what);
  }
  if (impl_->cfg.tls) {
    auto& ctx = impl_->tls.emplace(asio::ssl::context::tls_server);
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                    asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    beast::error_code ec;
    ctx.use_certificate_chain_file(impl_->cfg.tls->certificate_chain, ec);
    if (ec) {
      throw std::runtime_error("TLS certificate chain '" + impl_->cfg.tls->certificate_chain +
                               "': " + ec.message());
    }
    ctx.use_private_key_file(impl_->cfg.tls->private_key, asio::ssl::context::pem, ec);
    if (ec) {
      throw std::runtime_error("TLS private key '" + impl_->cfg.tls->private_key +
                               "': " + ec.message());
    }
  }
  impl_->state = std::make_shared<shared_state>(impl_->cfg);
  if (impl_->cfg.registry != nullptr) {
    std::weak_ptr<shared_state> weak = impl_->state;
    impl_->collector = impl_->cfg.registry->add_collector([weak](metrics::sink& s) {
      const auto st = weak.lock();
      if (!st) return;
      st->handler.collect(s);
      s.gauge("anyturn_http_connections_active", "Open HTTP connections.", {},
              st->connections.load(std::memory_order_relaxed));
      s.counter("anyturn_http_connections_total", "HTTP connections accepted, by outcome.",
                {{"result", "served"}},
                st->accepted.load(std::memory_order_relaxed) -
                    st->rejected.load(std::memory_order_relaxed));
      s.counter("anyturn_http_connections_total", "HTTP connections accepted, by outcome.",
                {{"result", "rejected_limit"}}, st->rejected.load(std::memory_order_relaxed));
      s.counter("anyturn_http_connections_total", "HTTP connections accepted, by outcome.",
                {{"result", "rejected_fd_limit"}}, st->shed.load(std::memory_order_relaxed));
      s.counter("anyturn_http_accept_errors_total",
                "accept() failures on the HTTP listener (EMFILE, ENFILE, ...), each followed by "
                "a 100 ms pause.",
                {}, st->accept_errors.load(std::memory_order_relaxed));
    });
  }
}

server::~server() {
  stop();
  if (impl_->cfg.registry != nullptr) impl_->cfg.registry->remove_collector(impl_->collector);
}

void server::start() {
  auto& d = *impl_;
  if (d.started) throw std::logic_error("http::server::start() called twice");
  d.started = true;
  d.ioc = std::make_unique<asio::io_context>(static_cast<int>(d.cfg.threads));
  const tcp::endpoint ep(asio::ip::make_address(d.cfg.address), d.cfg.port);
  auto where = [&] { return "HTTP listen " + d.cfg.address + ":" + std::to_string(d.cfg.port); };
  d.acceptor = std::make_unique<tcp::acceptor>(asio::make_strand(*d.ioc));
  beast::error_code ec;
  if (d.acceptor->open(ep.protocol(), ec); ec) throw std::system_error(ec, where());
  if (d.acceptor->set_option(asio::socket_base::reuse_address(true), ec); ec) {
    throw std::system_error(ec, where());
  }
  if (d.acceptor->bind(ep, ec); ec) throw std::system_error(ec, where());
  if (d.acceptor->listen(asio::socket_base::max_listen_connections, ec); ec) {
    throw std::system_error(ec, where());
  }
  d.bound = d.acceptor->local_endpoint();
  d.retry_timer.emplace(d.acceptor->get_executor());
  d.reopen_reserve();
  d.do_accept();
  d.threads.reserve(d.cfg.threads);
  for (unsigned i = 0; i < d.cfg.threads; ++i) d.threads.emplace_back([&d] { d.ioc->run(); });
}

void server::stop() {
  auto& d = *impl_;
  if (!d.started || d.stopped) return;
  d.stopped = true;
  {
    // No probe thread posts an answer from now on.
    const std::lock_guard lock(d.state->gate->mutex);
    d.state->gate->open = false;
  }
  d.ioc->stop();
  for (auto& t : d.threads) t.join();
  // A running probe ends by its own timeout; wait that long, no longer (its
  // thread shares nothing with this server but counters it keeps alive).
  d.state->handler.wait_probes(d.cfg.probe.timeout + std::chrono::seconds(1));
  d.threads.clear();
  d.retry_timer.reset();
  d.acceptor.reset();
  d.ioc.reset();  // destroys the pending handlers, hence the sessions and their sockets
  if (d.reserve_fd >= 0) ::close(d.reserve_fd);
  d.reserve_fd = -1;
}

void server::replace_keys(std::vector<api_tenant> tenants, std::vector<std::string> admin_keys) {
  impl_->state->handler.replace_keys(std::move(tenants), std::move(admin_keys));
}

std::uint16_t server::port() const { return impl_->bound.port(); }
std::string server::address() const { return impl_->bound.address().to_string(); }
std::size_t server::connections() const {
  return impl_->state->connections.load(std::memory_order_relaxed);
}

}  // namespace anyturn::http
