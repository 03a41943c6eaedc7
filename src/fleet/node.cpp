#include <anyturn/fleet/node.hpp>

#include <anyturn/common/log_limiter.hpp>
#include <anyturn/fleet/quota_lease.hpp>
#include <anyturn/fleet/records.hpp>
#include <anyturn/fleet/redis_link.hpp>
#include <anyturn/metrics/registry.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <stdexcept>
#include <thread>

#include <pthread.h>
#include <signal.h>

namespace anyturn::fleet {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

std::string_view to_string(fleet_op op) {
  switch (op) {
    case fleet_op::connect: return "connect";
    case fleet_op::connection_lost: return "connection_lost";
    case fleet_op::announce: return "announce";
    case fleet_op::directory: return "directory";
    case fleet_op::revocation_publish: return "revocation_publish";
    case fleet_op::revocation_read: return "revocation_read";
    case fleet_op::lease: return "lease";
    case fleet_op::bad_record: return "bad_record";
    case fleet_op::count_: break;
  }
  return "unknown";
}

namespace {

constexpr milliseconds initial_backoff{100};
constexpr std::size_t max_pending_revocations = 10000;
constexpr std::size_t max_directory_nodes = 1000;
constexpr std::size_t scan_batch = 500;

// Stores a revocation unless a longer one is stored, and publishes it.
// KEYS[1] the record; ARGV: the JSON, until (unix s), the channel.
constexpr std::string_view revoke_script = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, old = pcall(cjson.decode, cur)
  if ok and type(old) == 'table' and tonumber(old['until']) and tonumber(old['until']) >= tonumber(ARGV[2]) then
    redis.call('PUBLISH', ARGV[3], ARGV[1])
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
)lua";

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::int64_t mono_ms() {
  return std::chrono::duration_cast<milliseconds>(steady::now().time_since_epoch()).count();
}

}  // namespace

struct node::impl {
  struct lease_state {
    std::uint32_t max = 0;
    std::uint32_t units = 0;   // granted; meaningful while `held`
    bool held = false;         // false: the per-node limit applies
    bool in_flight = false;
    bool short_granted = false;  // the last request got less than it asked
    std::uint64_t seen_refused = 0;  // tenant_quota::fleet_refused at the last request
  };

  impl(options o, hooks h, std::shared_ptr<turn::fleet_signals> s, std::shared_ptr<auth::revocation_board> b,
       std::shared_ptr<turn::tenant_quota> q)
      : opts(std::move(o)),
        hk(std::move(h)),
        signals(std::move(s)),
        board(std::move(b)),
        quotas(std::move(q)),
        cmd(io),
        sub(io),
        heartbeat_timer(io),
        quota_timer(io),
        reconnect_timer(io),
        leases(opts.tenants.size()),
        leased_units(std::make_unique<std::atomic<std::int64_t>[]>(std::max<std::size_t>(opts.tenants.size(), 1))) {
    for (std::size_t t = 0; t < opts.tenants.size(); ++t) {
      leases[t].max = opts.tenants[t].max_allocations;
      leased_units[t].store(-1, std::memory_order_relaxed);
    }
    for (auto& e : errors) e.store(0, std::memory_order_relaxed);
  }

  // ---- immutable after construction
  options opts;
  hooks hk;
  redis_url url;
  std::shared_ptr<turn::fleet_signals> signals;
  std::shared_ptr<auth::revocation_board> board;
  std::shared_ptr<turn::tenant_quota> quotas;

  // ---- the fleet thread's
  asio::io_context io{1};
  std::thread thread;
  redis_link cmd;  // commands
  redis_link sub;  // SUBSCRIBE
  asio::steady_timer heartbeat_timer;
  asio::steady_timer quota_timer;
  asio::steady_timer reconnect_timer;
  enum class state : std::uint8_t { down, connecting, up } st = state::down;
  milliseconds backoff = initial_backoff;
  std::deque<auth::revocation> unpublished;
  std::vector<lease_state> leases;
  std::int64_t last_progress_ms = 0;  // the command link's last reply (or idle)
  std::int64_t directory_read_ms = 0;
  bool target_set = false;
  bool stopping = false;
  common::log_limiter log_connect{1, 30'000};
  common::log_limiter log_bad{5, 10'000};

  // ---- read by any thread
  std::atomic<bool> up{false};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(fleet_op::count_)> errors{};
  std::atomic<std::uint64_t> revocations_local{0};
  std::atomic<std::uint64_t> revocations_redis{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::size_t> nodes{0};
  std::unique_ptr<std::atomic<std::int64_t>[]> leased_units;  // -1: per-node limit

  void count(fleet_op op) { errors[static_cast<std::size_t>(op)].fetch_add(1, std::memory_order_relaxed); }

  void bad_record(std::string_view what) {
    count(fleet_op::bad_record);
    std::uint64_t suppressed = 0;
    if (log_bad.allow(mono_ms(), suppressed))
      spdlog::warn("fleet: ignored {} from Redis that does not parse ({} similar suppressed)", what, suppressed);
  }

  // ---- connection

  void connect() {
    if (stopping) return;
    st = state::connecting;
    cmd.connect(url, opts.connect_timeout, [this](const std::string& e) { on_cmd_connected(e); },
                [this](const std::string& why) { lost(why); });
  }

  void on_cmd_connected(const std::string& error) {
    if (!error.empty()) return connect_failed(error);
    sub.connect(url, opts.connect_timeout, [this](const std::string& e) { on_sub_connected(e); },
                [this](const std::string& why) { lost(why); });
  }

  void on_sub_connected(const std::string& error) {
    if (!error.empty()) return connect_failed(error);
    const bool ok = sub.subscribe({std::string(revocation_channel), command_channel(opts.node_id),
                                   std::string(command_all_channel)},
                                  [this] { on_subscribed(); },
                                  [this](std::string_view ch, std::string_view payload) { on_message(ch, payload); });
    if (!ok) connect_failed("SUBSCRIBE could not be sent");
  }

  void on_subscribed() {
    st = state::up;
    up.store(true, std::memory_order_release);
    backoff = initial_backoff;
    last_progress_ms = mono_ms();
    spdlog::info("fleet: node {} connected to Redis at {}", opts.node_id, describe(url));
    // Subscribed first, then read: nothing published in between is missed.
    read_revocations("0");
    flush_unpublished();
    beat();
  }

  void connect_failed(const std::string& error) {
    count(fleet_op::connect);
    std::uint64_t suppressed = 0;
    if (log_connect.allow(mono_ms(), suppressed))
      spdlog::warn("fleet: cannot connect to Redis at {}: {} (retrying; {} similar suppressed)", describe(url),
                   error, suppressed);
    go_down();
  }

  void lost(const std::string& why) {
    if (st == state::down) return;
    if (st == state::up) {
      count(fleet_op::connection_lost);
      spdlog::warn("fleet: lost Redis at {}: {}; quotas fall back to per-node limits until it is back",
                   describe(url), why);
      go_down();
    } else {
      connect_failed(why);
    }
  }

  void go_down() {
    st = state::down;
    up.store(false, std::memory_order_release);
    cmd.close();
    sub.close();
    for (std::size_t t = 0; t < leases.size(); ++t) fall_back(t);
    if (stopping) return;
    reconnect_timer.expires_after(backoff);
    backoff = std::min(backoff * 2, opts.max_backoff);
    reconnect_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      reconnects.fetch_add(1, std::memory_order_relaxed);
      connect();
    });
  }

  // A command on the command link; `h` gets null when the link went away
  // (lost() handles that).
  bool send(std::vector<std::string> args, redis_link::reply_handler h) {
    return st == state::up && cmd.command(args, [this, h = std::move(h)](const reply* r) {
             last_progress_ms = mono_ms();
             if (h) h(r);
           });
  }

  // ---- heartbeat: announce, directory, leases

  void schedule_heartbeat() {
    heartbeat_timer.expires_after(opts.heartbeat);
    heartbeat_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      beat();
      schedule_heartbeat();
    });
  }

  void beat() {
    const auto now = mono_ms();
    if (st != state::up) {
      // The directory ages out like the records in Redis would.
      if (now - directory_read_ms > 3 * opts.heartbeat.count()) forget_directory();
      return;
    }
    // A Redis that stopped answering (but kept the socket) is lost too.
    if (cmd.pending() == 0) {
      last_progress_ms = now;
    } else if (now - last_progress_ms > std::max<std::int64_t>(3 * opts.heartbeat.count(), 3000)) {
      lost("no reply for " + std::to_string(now - last_progress_ms) + " ms");
      return;
    }
    announce();
    read_directory();
    for (std::size_t t = 0; t < leases.size(); ++t)
      if (!leases[t].in_flight) request_lease(t, has_demand(t));
  }

  void announce() {
    node_record me;
    me.id = opts.node_id;
    me.address = opts.self;
    me.allocations = hk.allocations ? hk.allocations() : 0;
    me.load = hk.load ? hk.load() : 0.0;
    me.draining = hk.draining ? hk.draining() : (signals && signals->draining());
    me.updated_ms = unix_now_ms();
    const auto ttl = std::to_string(3 * opts.heartbeat.count());
    auto check = [this](const reply* r) {
      if (r != nullptr && r->is_error()) count(fleet_op::announce);
    };
    send({"SET", node_key(opts.node_id), to_json(me), "PX", ttl}, check);
    send({"SADD", std::string(nodes_set_key), opts.node_id}, check);
  }

  void read_directory() {
    send({"SMEMBERS", std::string(nodes_set_key)}, [this](const reply* r) {
      if (r == nullptr) return;
      if (r->type != reply::kind::array) {
        count(fleet_op::directory);
        return;
      }
      auto ids = std::make_shared<std::vector<std::string>>();
      for (const auto& e : r->elements) {
        if (e.type == reply::kind::string && ids->size() < max_directory_nodes) ids->push_back(e.str);
      }
      if (ids->empty()) return on_directory({}, {});
      std::vector<std::string> mget{"MGET"};
      for (const auto& id : *ids) mget.push_back(node_key(id));
      send(std::move(mget), [this, ids](const reply* r) {
        if (r == nullptr) return;
        if (r->type != reply::kind::array || r->elements.size() != ids->size()) {
          count(fleet_op::directory);
          return;
        }
        std::vector<node_record> found;
        std::vector<std::string> gone;
        for (std::size_t i = 0; i < ids->size(); ++i) {
          const auto& e = r->elements[i];
          if (e.type != reply::kind::string) {
            gone.push_back((*ids)[i]);
            continue;
          }
          auto n = node_from_json(e.str);
          if (!n || n->id != (*ids)[i]) {
            bad_record("a directory record");
            continue;
          }
          found.push_back(std::move(*n));
        }
        on_directory(std::move(found), std::move(gone));
      });
    });
  }

  void on_directory(std::vector<node_record> found, std::vector<std::string> gone) {
    if (!gone.empty()) {
      std::vector<std::string> srem{"SREM", std::string(nodes_set_key)};
      srem.insert(srem.end(), gone.begin(), gone.end());
      send(std::move(srem), nullptr);
    }
    directory_read_ms = mono_ms();
    nodes.store(found.size(), std::memory_order_relaxed);
    if (signals) {
      auto chosen = choose_drain_target(found, opts.node_id);
      signals->set_drain_target(chosen ? chosen : opts.fallback_target);
      target_set = true;
    }
  }

  void forget_directory() {
    nodes.store(0, std::memory_order_relaxed);
    if (signals && target_set) {
      signals->set_drain_target(opts.fallback_target);
      target_set = false;
    }
  }

  // ---- revocations

  void read_revocations(const std::string& cursor) {
    const bool sent = send({"SCAN", cursor, "MATCH", std::string(revocation_prefix) + "*", "COUNT",
                            std::to_string(scan_batch)},
                           [this](const reply* r) {
                             if (r == nullptr) return;
                             if (r->type != reply::kind::array || r->elements.size() != 2 ||
                                 r->elements[0].type != reply::kind::string ||
                                 r->elements[1].type != reply::kind::array)
                               return revocation_read_failed(r);
                             const std::string next = r->elements[0].str;
                             std::vector<std::string> mget{"MGET"};
                             for (const auto& k : r->elements[1].elements)
                               if (k.type == reply::kind::string) mget.push_back(k.str);
                             if (mget.size() == 1) {
                               if (next != "0") read_revocations(next);
                               return;
                             }
                             send(std::move(mget), [this, next](const reply* r) {
                               if (r == nullptr) return;
                               if (r->type != reply::kind::array) return revocation_read_failed(r);
                               for (const auto& e : r->elements)
                                 if (e.type == reply::kind::string) apply_from_redis(e.str);
                               if (next != "0") read_revocations(next);
                             });
                           });
    (void)sent;
  }

  // Without the stored revocations this node could accept a revoked
  // credential: start over with a new connection.
  void revocation_read_failed(const reply* r) {
    count(fleet_op::revocation_read);
    lost(std::string("reading the revocations failed: ") + (r->is_error() ? r->str : "unexpected reply"));
  }

  void apply_from_redis(std::string_view json) {
    auto rev = revocation_from_json(json);
    if (!rev) return bad_record("a revocation");
    if (board && board->add(*rev)) revocations_redis.fetch_add(1, std::memory_order_relaxed);
  }

  void queue_publish(const auth::revocation& r) {
    if (st == state::up) return publish(r);
    if (unpublished.size() >= max_pending_revocations) {
      count(fleet_op::revocation_publish);
      unpublished.pop_front();
    }
    unpublished.push_back(r);
  }

  void flush_unpublished() {
    auto todo = std::move(unpublished);
    unpublished.clear();
    for (const auto& r : todo) publish(r);
  }

  void publish(const auth::revocation& r) {
    if (r.until_unix <= unix_now()) return;  // over already: nothing to keep
    const bool sent = send({"EVAL", std::string(revoke_script), "1", revocation_key(r), to_json(r),
                            std::to_string(r.until_unix), std::string(revocation_channel)},
                           [this, r](const reply* rep) {
                             if (rep == nullptr) return unpublished.push_back(r);  // sent again when back
                             if (rep->is_error()) {
                               count(fleet_op::revocation_publish);
                               spdlog::warn("fleet: publishing a revocation failed: {}", rep->str);
                             }
                           });
    if (!sent) unpublished.push_back(r);
  }

  void on_message(std::string_view channel, std::string_view payload) {
    if (channel == revocation_channel) return apply_from_redis(payload);
    // A command to this node or to all.
    bool drain;
    if (payload == "drain") {
      drain = true;
    } else if (payload == "undrain") {
      drain = false;
    } else {
      return bad_record("a command");
    }
    spdlog::info("fleet: Redis command on {}: {}", channel, payload);
    if (hk.command) {
      hk.command(drain);
    } else if (signals) {
      signals->set_draining(drain);
    }
  }

  // ---- quota leases

  void fall_back(std::size_t t) {
    auto& l = leases[t];
    l.held = false;
    l.in_flight = false;
    l.short_granted = false;
    if (quotas) quotas->set_fleet_limit(t, turn::tenant_quota::use_node_limit);
    leased_units[t].store(-1, std::memory_order_relaxed);
  }

  // Workers were refused since the last request, or the headroom runs low
  // while units are in use.
  bool has_demand(std::size_t t) const {
    const auto& l = leases[t];
    if (l.max == 0 || !quotas) return false;
    const std::uint32_t in_use = quotas->active(t);
    return quotas->fleet_refused(t) != l.seen_refused || (in_use > 0 && lease_runs_low(in_use, l.units, l.max));
  }

  void request_lease(std::size_t t, bool need) {
    auto& l = leases[t];
    if (l.max == 0 || !quotas) return;
    l.seen_refused = quotas->fleet_refused(t);
    const std::uint32_t in_use = quotas->active(t);
    const std::uint32_t want = lease_target(in_use, l.max);
    if (l.held && want < l.units) {
      // Returning units: stop using them before Redis hands them out.
      l.units = want;
      quotas->set_fleet_limit(t, want);
      leased_units[t].store(want, std::memory_order_relaxed);
    }
    l.in_flight = true;
    const bool sent = send({"EVAL", std::string(lease_script), "1", quota_key(opts.tenants[t].id), opts.node_id,
                            std::to_string(want), std::to_string(l.max), std::to_string(in_use),
                            std::to_string(3 * opts.heartbeat.count()), need ? "1" : "0"},
                           [this, t, want](const reply* r) {
                             if (r == nullptr) return;
                             auto& l = leases[t];
                             l.in_flight = false;
                             if (r->type != reply::kind::integer || r->integer < 0) {
                               count(fleet_op::lease);
                               std::uint64_t suppressed = 0;
                               if (log_bad.allow(mono_ms(), suppressed))
                                 spdlog::warn("fleet: quota lease for tenant '{}' failed: {}", opts.tenants[t].id,
                                              r->is_error() ? r->str : "unexpected reply");
                               return fall_back(t);
                             }
                             const auto grant = static_cast<std::uint32_t>(
                                 std::min<long long>(r->integer, static_cast<long long>(want)));
                             l.units = grant;
                             l.held = true;
                             l.short_granted = grant < want;
                             quotas->set_fleet_limit(t, grant);
                             leased_units[t].store(grant, std::memory_order_relaxed);
                           });
    if (!sent) l.in_flight = false;
  }

  void schedule_quota_check() {
    quota_timer.expires_after(opts.quota_check);
    quota_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      if (st == state::up) {
        for (std::size_t t = 0; t < leases.size(); ++t) {
          const auto& l = leases[t];
          if (l.max == 0 || l.in_flight || !quotas) continue;
          // A short grant is retried at the next heartbeat, not every check.
          if (!l.held) {
            request_lease(t, false);
          } else if (!l.short_granted && has_demand(t)) {
            request_lease(t, true);
          }
        }
      }
      schedule_quota_check();
    });
  }

  // ---- stop

  void shutdown() {
    stopping = true;
    heartbeat_timer.cancel();
    quota_timer.cancel();
    reconnect_timer.cancel();
    sub.close();
    if (st == state::up) {
      // Leave the directory now rather than after the TTL; the leases expire.
      cmd.command({"DEL", node_key(opts.node_id)}, [this](const reply*) { cmd.close(); });
      cmd.command({"SREM", std::string(nodes_set_key), opts.node_id}, nullptr);
    } else {
      cmd.close();
    }
    st = state::down;
    up.store(false, std::memory_order_release);
  }
};

node::node(options opts, hooks h, std::shared_ptr<turn::fleet_signals> signals,
           std::shared_ptr<auth::revocation_board> revocations, std::shared_ptr<turn::tenant_quota> quotas) {
  std::string error;
  auto url = config::parse_redis_url(opts.redis_url, &error);
  if (!url) throw std::invalid_argument("fleet.redis: " + error);
  if (url->tls && !tls_supported)
    throw std::invalid_argument(
        "fleet.redis: rediss:// (TLS to Redis) is not supported by this build (its hiredis has no TLS); "
        "use redis:// over a trusted network or a TLS tunnel");
  if (opts.node_id.empty()) throw std::invalid_argument("fleet.node_id: empty");
  if (opts.node_id.front() == '!' || opts.node_id.size() > 255)
    throw std::invalid_argument("fleet.node_id: at most 255 bytes, not starting with '!'");
  if (opts.heartbeat.count() <= 0) throw std::invalid_argument("fleet heartbeat must be positive");
  impl_ = std::make_unique<impl>(std::move(opts), std::move(h), std::move(signals), std::move(revocations),
                                 std::move(quotas));
  impl_->url = std::move(*url);
}

node::~node() { stop(); }

void node::start() {
  auto& m = *impl_;
  if (m.thread.joinable()) return;
  m.io.restart();
  asio::post(m.io, [&m] {
    m.stopping = false;
    m.connect();
    m.schedule_heartbeat();
    m.schedule_quota_check();
  });
  m.thread = std::thread([&m] {
    // Signals belong to the main thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    auto guard = asio::make_work_guard(m.io);
    asio::post(m.io, [] {});
    m.io.run();
  });
}

void node::stop() {
  auto& m = *impl_;
  if (!m.thread.joinable()) return;
  asio::post(m.io, [&m] {
    m.shutdown();
    // Give the goodbye (DEL) a moment, then end the loop.
    auto t = std::make_shared<asio::steady_timer>(m.io, milliseconds(200));
    t->async_wait([&m, t](const boost::system::error_code&) {
      m.cmd.close();
      m.io.stop();
    });
  });
  m.thread.join();
  // Whatever hiredis still held is freed here, on this thread, with no
  // handler called; then the aborted waits run (and do nothing), so no
  // handler outlives the links' descriptors.
  m.cmd.close();
  m.sub.close();
  m.io.restart();
  m.io.poll();
  for (std::size_t t = 0; t < m.leases.size(); ++t) m.fall_back(t);
}

void node::publish_revocation(const auth::revocation& r) {
  auto& m = *impl_;
  if (m.board) m.board->add(r);
  m.revocations_local.fetch_add(1, std::memory_order_relaxed);
  asio::post(m.io, [&m, r] { m.queue_publish(r); });
}

void node::collect(metrics::sink& s) const {
  const auto& m = *impl_;
  s.gauge("anyturn_fleet_redis_up", "1 while this node is connected to the fleet's Redis", {},
          m.up.load(std::memory_order_relaxed) ? 1 : 0);
  for (std::size_t i = 0; i < m.errors.size(); ++i) {
    const auto op = to_string(static_cast<fleet_op>(i));
    s.counter("anyturn_fleet_redis_errors_total", "Failed Redis operations of the fleet, by operation",
              {{"op", op}}, m.errors[i].load(std::memory_order_relaxed));
  }
  s.counter("anyturn_fleet_revocations_total",
            "Revocations added to this node's board: published here (local) or received from Redis (redis)",
            {{"source", "local"}}, m.revocations_local.load(std::memory_order_relaxed));
  s.counter("anyturn_fleet_revocations_total",
            "Revocations added to this node's board: published here (local) or received from Redis (redis)",
            {{"source", "redis"}}, m.revocations_redis.load(std::memory_order_relaxed));
  s.gauge("anyturn_fleet_nodes", "Healthy nodes in the fleet directory, this one included", {},
          static_cast<std::uint64_t>(m.nodes.load(std::memory_order_relaxed)));
  s.counter("anyturn_fleet_reconnects_total", "Reconnection attempts to Redis", {},
            m.reconnects.load(std::memory_order_relaxed));
  for (std::size_t t = 0; t < m.opts.tenants.size(); ++t) {
    if (m.opts.tenants[t].max_allocations == 0) continue;
    const std::string_view tenant =
        m.opts.tenants[t].id.empty() ? std::string_view("default") : std::string_view(m.opts.tenants[t].id);
    const auto units = m.leased_units[t].load(std::memory_order_relaxed);
    s.gauge("anyturn_fleet_quota_leased",
            "Allocation units this node holds of the tenant's fleet-wide quota (0 on per-node fallback)",
            {{"tenant", tenant}}, units < 0 ? std::int64_t{0} : units);
    s.gauge("anyturn_fleet_quota_per_node",
            "1 while the tenant's quota falls back to the per-node limit (no lease from Redis)",
            {{"tenant", tenant}}, units < 0 ? 1 : 0);
  }
}

bool node::redis_up() const { return impl_->up.load(std::memory_order_acquire); }

std::uint64_t node::errors(fleet_op op) const {
  return op < fleet_op::count_ ? impl_->errors[static_cast<std::size_t>(op)].load(std::memory_order_relaxed) : 0;
}

std::uint64_t node::revocations_received() const {
  return impl_->revocations_redis.load(std::memory_order_relaxed);
}

std::size_t node::nodes_seen() const { return impl_->nodes.load(std::memory_order_relaxed); }

std::optional<std::uint32_t> node::leased(std::size_t t) const {
  if (t >= impl_->opts.tenants.size()) return std::nullopt;
  const auto u = impl_->leased_units[t].load(std::memory_order_relaxed);
  if (u < 0) return std::nullopt;
  return static_cast<std::uint32_t>(u);
}

}  // namespace anyturn::fleet
