#include <anyturn/fleet/redis_link.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <poll.h>

namespace anyturn::fleet {

namespace asio = boost::asio;

// One hiredis context and the descriptor that watches its socket. Shared by
// the link, the hiredis hooks (ac->ev.data holds a shared_ptr until the
// cleanup hook) and the pending async_waits, so none of them outlives it.
struct redis_link::connection : std::enable_shared_from_this<redis_link::connection> {
  explicit connection(asio::io_context& io) : io(io), sd(io), timer(io) {}

  asio::io_context& io;
  asio::posix::stream_descriptor sd;
  asio::steady_timer timer;  // the connect timeout
  redisAsyncContext* ac = nullptr;  // null once hiredis freed it
  bool closed_by_user = false;      // no handler is called any more
  bool is_ready = false;
  bool want_read = false, want_write = false;
  bool read_armed = false, write_armed = false;
  std::size_t pending = 0;
  connect_handler on_connected;
  lost_handler on_lost;
  // Subscriber mode.
  std::size_t subscribe_expected = 0;
  std::function<void()> on_subscribed;
  message_handler on_message;

  void fail(const std::string& why) {
    // Called once per connection: either before it was ready (connect) or after (lost).
    if (closed_by_user) return;
    auto self = shared_from_this();
    if (!is_ready) {
      if (auto h = std::move(on_connected)) {
        on_connected = nullptr;
        asio::post(io, [self, h = std::move(h), why] {
          if (!self->closed_by_user) h(why);
        });
      }
    } else if (auto h = std::move(on_lost)) {
      on_lost = nullptr;
      asio::post(io, [self, h = std::move(h), why] {
        if (!self->closed_by_user) h(why);
      });
    }
    is_ready = false;
  }

  // Watches the socket for `events` (POLLIN/POLLOUT). Asio's reactor is
  // edge-triggered and an async_wait does not look at the socket's current
  // state, so the socket is polled first; the thread that polls also runs
  // the reactor, so no edge can slip in between.
  void arm(short events) {
    if (ac == nullptr) return;
    bool& armed = events == POLLIN ? read_armed : write_armed;
    if (armed) return;
    armed = true;
    pollfd p{ac->c.fd, events, 0};
    auto self = shared_from_this();
    if (::poll(&p, 1, 0) > 0) {
      asio::post(io, [self, events] { self->on_ready(events, {}); });
      return;
    }
    sd.async_wait(events == POLLIN ? asio::posix::descriptor_base::wait_read
                                   : asio::posix::descriptor_base::wait_write,
                  [self, events](const boost::system::error_code& ec) { self->on_ready(events, ec); });
  }

  void on_ready(short events, const boost::system::error_code& ec) {
    (events == POLLIN ? read_armed : write_armed) = false;
    if (ec == asio::error::operation_aborted || ac == nullptr) return;
    auto self = shared_from_this();  // hiredis may free the context in here
    if (events == POLLIN) {
      if (!want_read) return;
      redisAsyncHandleRead(ac);
      if (ac != nullptr && want_read) arm(POLLIN);
    } else {
      if (!want_write) return;
      redisAsyncHandleWrite(ac);
      if (ac != nullptr && want_write) arm(POLLOUT);
    }
  }
};

namespace {

using connection = redis_link::connection;

connection* conn_of(const redisAsyncContext* ac) { return static_cast<connection*>(ac->data); }

void add_read(void* p) {
  auto& c = **static_cast<std::shared_ptr<connection>*>(p);
  c.want_read = true;
  c.arm(POLLIN);
}
void del_read(void* p) { (*static_cast<std::shared_ptr<connection>*>(p))->want_read = false; }
void add_write(void* p) {
  auto& c = **static_cast<std::shared_ptr<connection>*>(p);
  c.want_write = true;
  c.arm(POLLOUT);
}
void del_write(void* p) { (*static_cast<std::shared_ptr<connection>*>(p))->want_write = false; }

// hiredis frees the context (error, EOF, redisAsyncFree): it calls this last.
void cleanup(void* p) {
  auto* holder = static_cast<std::shared_ptr<connection>*>(p);
  auto c = *holder;
  delete holder;
  const std::string why = c->ac != nullptr && c->ac->err != 0 ? c->ac->errstr : "connection closed";
  c->ac = nullptr;
  c->want_read = c->want_write = false;
  boost::system::error_code ignored;
  c->sd.cancel(ignored);
  (void)c->sd.release();  // hiredis closes the socket
  c->timer.cancel();
  c->fail(why);
}

reply copy_reply(const redisReply* r) {
  reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = reply::kind::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = reply::kind::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = reply::kind::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = reply::kind::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = reply::kind::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
      break;
    default:
      out.type = reply::kind::nil;
  }
  return out;
}

struct command_holder {
  std::shared_ptr<connection> conn;
  redis_link::reply_handler handler;
};

// Called exactly once per command: with its reply, or with null when the
// context is freed first.
void on_reply(redisAsyncContext*, void* r, void* privdata) {
  std::unique_ptr<command_holder> h(static_cast<command_holder*>(privdata));
  auto& c = *h->conn;
  if (c.pending > 0) --c.pending;
  if (c.closed_by_user || !h->handler) return;
  if (r == nullptr) {
    h->handler(nullptr);
    return;
  }
  const reply copy = copy_reply(static_cast<redisReply*>(r));
  h->handler(&copy);
}

// Subscriber mode: called for each confirmation and message, and with null
// when the context is freed. privdata is the connection (alive until cleanup).
void on_subscription(redisAsyncContext* ac, void* r, void*) {
  auto* c = conn_of(ac);
  if (c == nullptr || r == nullptr || c->closed_by_user) return;
  const auto* rr = static_cast<redisReply*>(r);
  if (rr->type != REDIS_REPLY_ARRAY || rr->elements < 3) return;
  const auto* kind = rr->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  const std::string_view k(kind->str, kind->len);
  if (k == "subscribe") {
    if (c->subscribe_expected > 0 && --c->subscribe_expected == 0 && c->on_subscribed) {
      auto h = std::move(c->on_subscribed);
      c->on_subscribed = nullptr;
      h();
    }
  } else if (k == "message" && c->on_message) {
    const auto* ch = rr->element[1];
    const auto* payload = rr->element[2];
    if (ch->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING) return;
    c->on_message(std::string_view(ch->str, ch->len), std::string_view(payload->str, payload->len));
  }
}

bool send(connection& c, const std::vector<std::string>& args, redisCallbackFn* fn, void* privdata) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return redisAsyncCommandArgv(c.ac, fn, privdata, static_cast<int>(args.size()), argv.data(), lens.data()) ==
         REDIS_OK;
}

bool queue(const std::shared_ptr<connection>& c, const std::vector<std::string>& args,
           redis_link::reply_handler h) {
  auto* holder = new command_holder{c, std::move(h)};
  if (!send(*c, args, on_reply, holder)) {
    delete holder;
    return false;
  }
  ++c->pending;
  return true;
}

}  // namespace

std::string describe(const redis_url& url) {
  std::string s = url.tls ? "rediss://" : "redis://";
  if (!url.password.empty()) s += "***@";
  if (url.host.find(':') != std::string::npos)
    s += "[" + url.host + "]";
  else
    s += url.host;
  s += ":" + std::to_string(url.port) + "/" + std::to_string(url.db);
  return s;
}

redis_link::redis_link(asio::io_context& io) : io_(io) {}

redis_link::~redis_link() { close(); }

bool redis_link::ready() const { return conn_ && conn_->is_ready && conn_->ac != nullptr; }

std::size_t redis_link::pending() const { return conn_ ? conn_->pending : 0; }

void redis_link::close() {
  if (!conn_) return;
  auto c = std::move(conn_);
  c->closed_by_user = true;
  c->on_connected = nullptr;
  c->on_lost = nullptr;
  c->on_subscribed = nullptr;
  c->on_message = nullptr;
  c->timer.cancel();
  if (c->ac != nullptr) redisAsyncFree(c->ac);  // deferred by hiredis inside its callbacks
}

void redis_link::connect(const redis_url& url, std::chrono::milliseconds timeout, connect_handler done,
                         lost_handler lost) {
  close();
  auto c = std::make_shared<connection>(io_);
  conn_ = c;
  c->on_connected = std::move(done);
  c->on_lost = std::move(lost);
  if (url.tls) {
    c->fail("TLS to Redis (rediss://) is not supported by this build: its hiredis has no TLS");
    return;
  }
  // Name resolution and the non-blocking connect start here (a host name
  // is resolved synchronously, on the fleet thread).
  redisAsyncContext* ac = redisAsyncConnect(url.host.c_str(), url.port);
  if (ac == nullptr) {
    c->fail("out of memory");
    return;
  }
  if (ac->err != 0) {
    const std::string why = ac->errstr;
    redisAsyncFree(ac);
    c->fail(why);
    return;
  }
  c->ac = ac;
  ac->data = c.get();
  boost::system::error_code ec;
  c->sd.assign(ac->c.fd, ec);
  if (ec) {
    c->ac = nullptr;
    redisAsyncFree(ac);
    c->fail("cannot watch the socket: " + ec.message());
    return;
  }
  ac->ev.data = new std::shared_ptr<connection>(c);
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;

  c->timer.expires_after(timeout);
  c->timer.async_wait([w = std::weak_ptr<connection>(c)](const boost::system::error_code& e) {
    auto c = w.lock();
    if (e || !c || c->is_ready || c->closed_by_user || c->ac == nullptr) return;
    c->fail("timed out");
    auto* ac = c->ac;
    redisAsyncFree(ac);
  });

  // The handshake: AUTH, SELECT, PING, queued at once; the first error ends it.
  auto step = [w = std::weak_ptr<connection>(c)](std::string what, bool last) {
    return [w, what = std::move(what), last](const reply* r) {
      auto c = w.lock();
      if (!c || c->closed_by_user || c->is_ready) return;
      if (r == nullptr) return;  // the cleanup hook reports it
      if (r->is_error()) {
        c->fail(what + " failed: " + r->str);
        if (c->ac != nullptr) redisAsyncFree(c->ac);
        return;
      }
      if (!last) return;
      c->is_ready = true;
      c->timer.cancel();
      if (auto h = std::move(c->on_connected)) {
        c->on_connected = nullptr;
        h("");
      }
    };
  };
  if (!url.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!url.username.empty()) auth.push_back(url.username);
    auth.push_back(url.password);
    queue(c, auth, step("AUTH", false));
  }
  if (url.db != 0) queue(c, {"SELECT", std::to_string(url.db)}, step("SELECT", false));
  queue(c, {"PING"}, step("PING", true));
}

bool redis_link::command(const std::vector<std::string>& args, reply_handler h) {
  if (!ready() || conn_->subscribe_expected != 0 || conn_->on_message) return false;
  return queue(conn_, args, std::move(h));
}

bool redis_link::subscribe(const std::vector<std::string>& channels, std::function<void()> subscribed,
                           message_handler on_message) {
  if (!ready() || channels.empty()) return false;
  std::vector<std::string> args{"SUBSCRIBE"};
  args.insert(args.end(), channels.begin(), channels.end());
  conn_->subscribe_expected = channels.size();
  conn_->on_subscribed = std::move(subscribed);
  conn_->on_message = std::move(on_message);
  return send(*conn_, args, on_subscription, nullptr);
}

}  // namespace anyturn::fleet
