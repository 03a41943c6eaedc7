#include <anyturn/app/app.hpp>

#include <anyturn/app/drain.hpp>
#include <anyturn/app/sd_notify.hpp>
#include <anyturn/app/reload.hpp>
#include <anyturn/app/secrets.hpp>
#include <anyturn/app/session_admin.hpp>
#include <anyturn/app/side.hpp>
#include <anyturn/app/tls_setup.hpp>
#include <anyturn/app/xdp_setup.hpp>
#include <anyturn/config/cli.hpp>
#include <anyturn/fleet/node.hpp>
#include <anyturn/http/server.hpp>
#include <anyturn/metrics/net_metrics.hpp>
#include <anyturn/metrics/process.hpp>
#include <anyturn/metrics/registry.hpp>
#include <anyturn/metrics/turn_metrics.hpp>
#include <anyturn/metrics/usage_log.hpp>
#include <anyturn/metrics/xdp_metrics.hpp>
#include <anyturn/net/worker.hpp>
#include <anyturn/relay/owner_directory.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <csignal>
#include <stdexcept>
#include <thread>

#include <pthread.h>
#include <unistd.h>

namespace anyturn::app {

namespace asio = boost::asio;

// ---- server_app ----

struct server_app::impl {
  explicit impl(config::server_config c)
      : cfg(std::move(c)), thread_count(resolve_threads(cfg.threads)) {}

  ~impl() {
    stop_and_join();
    stop_http();  // before `workers` (whose counters the collectors read) go
    stop_fleet();
  }

  void stop_fleet() {
    if (fleet_node) {
      fleet_node->stop();
      fleet_node.reset();
    }
  }

  bool start(std::string& error) {
    spdlog::info("{} starting", config::version());

    const fd_limit fds = raise_fd_limit(required_descriptors(cfg, thread_count));
    if (fds.after != fds.before) {
      spdlog::info("open-file limit raised from {} to {}", fds.before, fds.after);
    }
    if (!fds.sufficient()) {
      spdlog::warn(
          "open-file limit is {} (hard limit {}) but the listeners, the relay port range and "
          "streams.max_connections can need {} descriptors: beyond it allocations fail with 508 "
          "and TCP/TLS connections are not accepted; raise the hard limit (ulimit -Hn, systemd "
          "LimitNOFILE=) or lower streams.max_connections",
          fds.after, fds.hard, fds.needed);
    }

    // Before anything reads the credentials: with no REST secret or nonce
    // key configured, the generated ones in the state directory are used.
    state_dir = resolve_state_dir(cfg.state_dir);
    provisioned_secrets secrets;
    if (!provision_secrets(cfg, state_dir, secrets, error)) {
      error = "auth: " + error;
      return false;
    }
    log_provisioned(secrets);
    cfg.auth.probe_secret = new_probe_secret();  // GET /probe's own credentials; never logged

    std::shared_ptr<turn::shared_state> shared;
    try {
      shared = make_shared_state(cfg);
      // The fleet's view of this node: the drain flag and where a drain
      // sends new clients (a static --drain-alternate, until the fleet
      // directory names a node), and the revoked credentials.
      shared->fleet = fleet;
      tenant_usage = shared->tenant_usage;
      shared->revocations = revocations;
      // Config reloads: the workers switch to what is published here.
      shared->revoke_removed = cfg.reload.revoke_removed;
      config_board = std::make_shared<turn::config_board>(shared, thread_count);
      shared->config = config_board;
      current_state = shared;
      running = cfg;
      tenant_capacity = cfg.tenants.size() + reload_tenant_spare;
      if (cfg.fleet.drain_alternate) fleet->set_drain_target(static_drain_target(*cfg.fleet.drain_alternate));
      if (!cfg.usage_log.empty()) {
        // Opened before any worker exists and held by the shared state, so it
        // outlives every worker: the records of a clean shutdown are written.
        usage = std::make_shared<metrics::usage_log>(cfg.usage_log);
        shared->usage = usage;
      }
    } catch (const std::exception& e) {
      error = e.what();
      return false;
    }

    if (!cfg.tls.listen.empty() || !cfg.dtls.listen.empty()) {
      tls_material tls = load_tls_material(cfg, state_dir, error);
      if (!tls.context) {
        error = "TLS: " + error;
        return false;
      }
      log_tls_material(tls);
      tls_context = tls.context;
    }

    // The kernel fast path, before any worker (each gets its own port).
    xdp_offload = open_xdp(cfg.xdp, error);
    if (!error.empty()) return false;

    // Worker 0 binds what the config says (and checks nobody else holds the
    // ports); the others join the same addresses, ephemeral ports resolved.
    net::worker_options base = net::worker_options::from_config(cfg);
    base.tls = tls_context;
    if (cfg.streams.tcp || !cfg.tls.listen.empty() || !cfg.dtls.listen.empty()) {
      base.connections = std::make_shared<net::connection_limiter>(
          cfg.streams.max_connections, cfg.streams.max_connections_per_ip);
    }
    // Worker hand-off (several workers only): the ownership directory holds
    // every worker's allocations at a load factor of at most 1/2 (capped at
    // 2^23 entries, 64 MiB); each worker's inbox holds handoff_queue_slots
    // datagrams (memory touched only when used).
    if (thread_count > 1 && thread_count <= relay::owner_directory::max_owners) {
      constexpr std::size_t handoff_queue_slots = 1024;
      constexpr std::size_t max_directory = std::size_t{1} << 23;
      const std::size_t entries = relay::owner_directory::capacity_for(
          std::size_t{cfg.max_allocations_per_worker} * thread_count);
      base.handoff = std::make_shared<net::handoff_group>(
          thread_count, handoff_queue_slots, base.datagram_size, std::min(entries, max_directory));
    }
    std::vector<stun::endpoint> resolved;
    std::vector<stun::endpoint> resolved_tls;
    for (unsigned i = 0; i < thread_count; ++i) {
      net::worker_options options = base;
      if (i == 0) {
        options.probe_exclusive = true;
      } else {
        options.listen = resolved;
        options.tls_listen = resolved_tls;
      }
      if (xdp_offload) options.fast_path = xdp_offload->port();
      auto w = std::make_unique<net::worker>(i, shared, std::move(options));
      std::string what;
      if (const std::error_code ec = w->open(what)) {
        error = "cannot open " + what;
        workers.clear();
        return false;
      }
      if (i == 0) {
        resolved = w->listener_endpoints();
        resolved_tls = w->tls_listener_endpoints();
      }
      workers.push_back(std::move(w));
    }

    if (!start_fleet(resolved, resolved_tls, error)) {
      workers.clear();
      return false;
    }
    if (cfg.http.enabled && !start_http(resolved, resolved_tls, error)) {
      stop_fleet();
      workers.clear();
      return false;
    }

    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.add(SIGHUP);
    signals.add(SIGUSR1);
    start_threads();
    listening.store(true, std::memory_order_release);
    log_startup(resolved, resolved_tls);
    started = true;
    notify_ready();
    return true;
  }

  // The side HTTP server on its own thread, with every collector. The
  // collectors read the workers' counters (relaxed loads, at scrape time).
  bool start_http(const std::vector<stun::endpoint>& listeners,
                  const std::vector<stun::endpoint>& tls_listeners, std::string& error) {
    std::vector<const relay::worker_counters*> turn_counters;
    std::vector<const net::net_counters*> io_counters;
    for (const auto& w : workers) {
      turn_counters.push_back(&w->counters());
      io_counters.push_back(&w->io_counters());
    }
    metrics::turn_metrics_options options;
    options.tenant_ids = tenant_ids(cfg);
    // The core counts active allocations per tenant and client transport;
    // their sum over tenants is the per-transport total.
    options.active_by_transport = [](const relay::worker_counters& c) {
      metrics::transport_split split{};
      for (const auto& t : c.tenants) {
        for (std::size_t i = 0; i < split.size(); ++i) {
          split[i] += t.active[i].load(std::memory_order_relaxed);
        }
      }
      return split;
    };
    counter_collectors.push_back(
        registry.add_collector(metrics::turn_metrics(std::move(turn_counters), std::move(options))));
    counter_collectors.push_back(registry.add_collector(metrics::net_metrics(std::move(io_counters))));
    registry.add_collector(metrics::process_collector());
    if (fleet_node) {
      fleet::node* n = fleet_node.get();
      counter_collectors.push_back(registry.add_collector([n](metrics::sink& out) { n->collect(out); }));
    }
    registry.add_collector([this](metrics::sink& out) {
      out.gauge("anyturn_draining",
                "1 while this node drains (new Allocates sent elsewhere, /readyz 503), else 0", {},
                drain.draining() ? 1 : 0);
    });
    registry.add_collector([this](metrics::sink& out) {
      out.counter("anyturn_config_reloads_total",
                  "Config reloads (SIGHUP, POST /admin/reload), by result: ok (applied), error "
                  "(the file did not load or validate; nothing changed).",
                  {{"result", "ok"}}, reloads_ok.load(std::memory_order_relaxed));
      out.counter("anyturn_config_reloads_total",
                  "Config reloads (SIGHUP, POST /admin/reload), by result: ok (applied), error "
                  "(the file did not load or validate; nothing changed).",
                  {{"result", "error"}}, reloads_error.load(std::memory_order_relaxed));
      out.gauge("anyturn_config_generation",
                "The config snapshot in force: 1 at start, one more for each applied reload.", {},
                static_cast<double>(config_board->generation()));
      out.gauge("anyturn_config_generation_switched",
                "The oldest config generation a worker still runs on (equals "
                "anyturn_config_generation once every worker switched).",
                {}, static_cast<double>(config_board->switched()));
    });
    registry.add_collector(metrics::build_info_collector());
    registry.add_collector(metrics::xdp_metrics([this]() -> std::optional<xdp::stats> {
      if (!xdp_offload) return std::nullopt;
      return xdp_offload->read_stats();
    }));
    if (usage) usage_collector = registry.add_collector(usage->collector());

    ice_urls_result urls = ice_urls_for(cfg, listeners, tls_listeners);
    if (urls.derived) {
      std::vector<std::string> all = urls.urls.stun;
      all.insert(all.end(), urls.urls.turn.begin(), urls.urls.turn.end());
      spdlog::info(
          "credentials API: http.urls is not set; derived from the listeners and the relay "
          "address: {} (set http.urls to the public names of this node or fleet)",
          all.empty() ? std::string("none") : fmt::format("{}", fmt::join(all, " ")));
    }
    http::server_config h = http_server_config(cfg, std::move(urls.urls));
    h.probe = probe_settings_for(cfg, listeners, tls_listeners);
    h.registry = &registry;
    // /admin/* and the revoke routes (their keys: http.admin_keys, the
    // tenants' API keys). Each runs on the HTTP thread.
    h.drain = [this] { return start_drain("POST /admin/drain"); };
    h.undrain = [this] { return stop_drain("POST /admin/undrain"); };
    h.draining = [this] { return drain.draining(); };
    h.allocations = [this] { return live_allocations(); };
    h.revoke = [this](const auth::revocation& r) { revoke(r); };
    // The sessions API: bounded steps posted to the workers (session_admin).
    std::vector<net::worker*> session_workers;
    for (const auto& w : workers) session_workers.push_back(w.get());
    auto sessions = std::make_shared<const session_admin>(std::move(session_workers));
    h.list_sessions = [sessions](const turn::session_query& q) { return sessions->list(q); };
    h.end_session = [sessions](const turn::session_id& id) { return sessions->end(id); };
    h.end_sessions = [sessions](const turn::session_filter& f) { return sessions->end_matching(f); };
    h.reload = [this] {  // HTTP thread; notify.send is safe from any thread
      notify.reloading();
      auto result = reload("POST /admin/reload");
      notify.ready(notify_status());
      return result;
    };
    h.config_generation = [this] { return config_board->generation(); };
    h.ready = [this] {
      return listening.load(std::memory_order_acquire) && !stopping.load(std::memory_order_acquire) &&
             !drain.draining();
    };
    const std::size_t api_tenants = h.tenants.size();
    // The HTTP thread never takes SIGINT/SIGTERM/SIGHUP (the main thread's
    // signal_set does): it inherits this mask.
    sigset_t block, previous;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &previous);
    try {
      http_server = std::make_unique<http::server>(std::move(h));
      http_server->start();
    } catch (const std::exception& e) {
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      error = std::string("HTTP server (http.listen / --http-listen): ") + e.what();
      stop_http();
      return false;
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    stun::endpoint bound = cfg.http.listen;
    bound.port = http_server->port();
    spdlog::info("HTTP on {}://{}: /metrics, /healthz, /readyz{}",
                 cfg.http.tls_cert.empty() ? "http" : "https", bound.to_string(),
                 api_tenants == 0 ? std::string(" (credentials API off: no API keys configured)")
                                  : fmt::format(", credentials API for {} tenant{}", api_tenants,
                                                api_tenants == 1 ? "" : "s"));
    return true;
  }

  // Removes the collectors that read the workers' counters (before the
  // workers are destroyed), then stops the HTTP server.
  void stop_http() {
    for (const auto id : counter_collectors) registry.remove_collector(id);
    counter_collectors.clear();
    if (http_server) {
      http_server->stop();
      http_server.reset();
    }
  }

  static void log_provisioned(const provisioned_secrets& p) {
    if (p.rest_secret.used) {
      spdlog::warn(
          "auth.secrets is empty: using the REST secret {} ({}). Mint TURN credentials with "
          "`anyturn credentials --secret-file {} --user NAME`, or through the credentials API "
          "(auth.api_keys), which signs with it; set auth.secrets to choose your own.",
          p.rest_secret.path.string(),
          p.rest_secret.generated ? "generated now" : "generated at an earlier start",
          p.rest_secret.path.string());
    }
    if (p.nonce_key.used) {
      spdlog::info(
          "auth.nonce_keys is empty: using the nonce key {} ({}); the nodes of an anycast fleet "
          "must share one key instead (auth.nonce_keys)",
          p.nonce_key.path.string(),
          p.nonce_key.generated ? "generated now" : "generated at an earlier start");
    }
  }

  void log_tls_material(const tls_material& tls) const {
    if (!tls.development) {
      spdlog::info("TLS certificate {} with key {}", tls.cert_path, tls.key_path);
      return;
    }
    if (tls.generated) {
      spdlog::warn(
          "TLS: generated a SELF-SIGNED certificate {} (key {}) because tls.cert is not set ({}). "
          "It is for DEVELOPMENT ONLY: clients do not trust it. Configure tls.cert and tls.key "
          "(--tls-cert, --tls-key) for production.",
          tls.cert_path, tls.key_path, tls.note);
    } else {
      spdlog::warn(
          "TLS: using the SELF-SIGNED development certificate {} because tls.cert is not set. It "
          "is for DEVELOPMENT ONLY: clients do not trust it. Configure tls.cert and tls.key "
          "(--tls-cert, --tls-key) for production.",
          tls.cert_path);
    }
  }

  // SIGHUP (main thread): read the certificate and key again and hand the
  // new context to every worker. Existing connections keep their session;
  // on any error the old context stays.
  bool reload_tls(std::string& error) { return reload_tls(cfg, error); }
  bool reload_tls(const config::server_config& from, std::string& error) {
    if (from.tls.listen.empty() && from.dtls.listen.empty()) {
      error = "no TLS or DTLS listener is configured";
      return false;
    }
    tls_material tls = load_tls_material(from, state_dir, error);
    if (!tls.context) return false;
    if (tls.development) log_tls_material(tls);
    tls_context = tls.context;
    for (auto& w : workers) w->set_tls_context(tls_context);
    spdlog::info("TLS: reloaded the certificate {} and key {}; new handshakes use them",
                 tls.cert_path, tls.key_path);
    return true;
  }

  void arm_signals() {
    signals.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        notify.reloading();
        on_sighup();
        notify.ready(notify_status());
        arm_signals();
        return;
      }
      if (signal == SIGUSR1) {
        start_drain("SIGUSR1");
        arm_signals();
        return;
      }
      // Not ready from now on (/readyz answers 503) while the workers stop.
      stopping.store(true, std::memory_order_release);
      tick_timer.cancel();  // main_ioc.run() returns: nothing is left to wait for
      publish_watch.cancel();
      spdlog::info("received {}, stopping", signal == SIGINT ? "SIGINT" : "SIGTERM");
    });
  }

  // SIGHUP (main thread): reload the TLS certificate (when TLS is
  // configured) and reopen the usage log (after logrotate moved it).
  void on_sighup() {
    if (reload_source && reload_source->config_path) {
      reload("SIGHUP");
      return;
    }
    bool any = false;
    if (!cfg.tls.listen.empty() || !cfg.dtls.listen.empty()) {
      any = true;
      std::string error;
      if (!reload_tls(error)) {
        spdlog::error("SIGHUP: TLS certificate not reloaded, keeping the current one: {}", error);
      }
    }
    if (usage) {
      any = true;
      if (const std::error_code ec = usage->reopen()) {
        spdlog::error("SIGHUP: cannot reopen the usage log {}: {}; still writing to the old file",
                      usage->path(), ec.message());
      } else {
        spdlog::info("SIGHUP: reopened the usage log {}", usage->path());
      }
    }
    if (!any) spdlog::info("SIGHUP: nothing to reload (no TLS listener, no usage log)");
  }

  // SIGHUP (main thread) or POST /admin/reload (HTTP thread): re-read the
  // config file, apply the command line over it, validate it in full, and
  // publish one new snapshot; the workers switch on their next tick. A
  // config that does not load or validate changes nothing.
  http::reload_result reload(std::string_view cause) {
    const std::lock_guard lock(reload_mutex);
    http::reload_result result;
    const auto fail = [&](std::vector<std::string> messages) {
      reloads_error.fetch_add(1, std::memory_order_relaxed);
      for (const auto& m : messages) spdlog::error("{}: config not reloaded: {}", cause, m);
      spdlog::error("{}: config not reloaded ({} error{}); still running generation {}", cause,
                    messages.size(), messages.size() == 1 ? "" : "s", config_board->generation());
      result.ok = false;
      result.messages = std::move(messages);
      result.generation = config_board->generation();
      return result;
    };
    if (!reload_source || !reload_source->config_path) {
      return fail({"no config file to reload: the server was started without --config"});
    }
    std::vector<std::string> errors;
    std::optional<config::server_config> next = config::resolve(*reload_source, errors);
    if (!next) {
      for (auto& e : errors) e = *reload_source->config_path + ": " + e;
      return fail(std::move(errors));
    }
    provisioned_secrets secrets;
    std::string error;
    if (!provision_secrets(*next, state_dir, secrets, error)) return fail({"auth: " + error});
    std::vector<std::string> ignored = keep_restart_only(running, *next);
    if (!stabilise_tenants(running, *next, tenant_capacity, error)) return fail({error});
    // The credentials API's tenants and keys, checked before anything changes.
    std::vector<http::api_tenant> api_tenants;
    if (http_server) {
      http::server_config h = http_server_config(*next, {});
      if (auto problems = http::validate(h); !problems.empty()) return fail(std::move(problems));
      api_tenants = std::move(h.tenants);
    }
    net::tls_context_ptr new_tls;
    if (!next->tls.listen.empty() || !next->dtls.listen.empty()) {
      tls_material tls = load_tls_material(*next, state_dir, error);
      if (!tls.context) return fail({"TLS: " + error});
      new_tls = tls.context;
    }
    std::shared_ptr<metrics::usage_log> new_usage = usage;
    std::shared_ptr<turn::shared_state> state;
    try {
      if (next->usage_log != running.usage_log) {
        new_usage = next->usage_log.empty() ? nullptr : std::make_shared<metrics::usage_log>(next->usage_log);
      }
      state = reloaded_state(*current_state, *next);
      state->usage = new_usage;
    } catch (const std::exception& e) {
      return fail({e.what()});
    }

    // Commit: nothing below can fail.
    const std::uint64_t generation = config_board->publish(state);
    poke_workers();  // denied peers leave the fast path now, not on the next tick
    current_state = state;
    if (new_usage != usage) {
      if (usage_collector) registry.remove_collector(*usage_collector);
      usage_collector.reset();
      if (new_usage) usage_collector = registry.add_collector(new_usage->collector());
      usage = new_usage;  // the old file stays open while a worker's snapshot holds it
    } else if (usage) {
      if (const std::error_code ec = usage->reopen()) {
        spdlog::error("{}: cannot reopen the usage log {}: {}; still writing to the old file", cause,
                      usage->path(), ec.message());
      }
    }
    if (new_tls) {
      tls_context = new_tls;
      for (auto& w : workers) w->set_tls_context(tls_context);
    }
    if (auto logger = spdlog::default_logger()) logger->set_level(spdlog::level::from_str(next->log_level));
    if (http_server) http_server->replace_keys(std::move(api_tenants), next->http.admin_keys);
    running = std::move(*next);
    reloads_ok.fetch_add(1, std::memory_order_relaxed);
    for (const auto& key : ignored) {
      spdlog::warn("{}: '{}' changed but needs a restart; ignored (still using the old value)", cause, key);
    }
    spdlog::info("{}: config {} reloaded: generation {} ({} static user{}, {} REST secret{}, {} tenant{}){}",
                 cause, *reload_source->config_path, generation, running.auth.users.size(),
                 running.auth.users.size() == 1 ? "" : "s", running.auth.rest_secrets.size(),
                 running.auth.rest_secrets.size() == 1 ? "" : "s", running.tenants.size(),
                 running.tenants.size() == 1 ? "" : "s",
                 ignored.empty() ? std::string() : fmt::format("; ignored: {}", fmt::join(ignored, ", ")));
    result.ok = true;
    result.ignored = std::move(ignored);
    result.generation = generation;
    return result;
  }

  // A revocation from the credentials API (HTTP thread): on this node at
  // once (the workers act on their next tick), and through Redis on every
  // node of the fleet.
  void revoke(const auth::revocation& r) {
    const std::string_view what = r.username.empty() ? std::string_view("user") : std::string_view("credential");
    spdlog::info("revoked {} '{}' of tenant '{}' until {}", what, r.username.empty() ? r.user : r.username,
                 r.tenant, r.until_unix);
    if (fleet_node) {
      fleet_node->publish_revocation(r);
    } else {
      revocations->add(r);
      poke_workers();
    }
  }

  // Any thread: every worker applies a published reload or revocation now
  // (worker_core::on_published) instead of on its next 250 ms tick, so the
  // XDP program forwards nothing of what it ended within 100 ms.
  void poke_workers() {
    for (const auto& w : workers)
      w->post_to_core([](turn::worker_core& core, const relay::now_t& now) { core.on_published(now); });
  }

  // Main thread, every 25 ms while the fast path is attached: revocations
  // that reach the board from elsewhere (the fleet thread) are poked too.
  void arm_publish_watch() {
    publish_watch.expires_after(std::chrono::milliseconds(25));
    publish_watch.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      const std::uint64_t seen = revocations->generation();
      if (seen != watched_revocations) {
        watched_revocations = seen;
        poke_workers();
      }
      arm_publish_watch();
    });
  }

  // The fleet thread (fleet.redis): directory, fleet revocations, quota
  // leases, drain commands.
  bool start_fleet(const std::vector<stun::endpoint>& listeners,
                   const std::vector<stun::endpoint>& tls_listeners, std::string& error) {
    if (cfg.fleet.redis.empty()) return true;
    fleet::options o;
    o.redis_url = cfg.fleet.redis;
    o.node_id = node_id_of(cfg.fleet);
    for (const auto& ip : cfg.fleet.unicast_ips) {
      (ip.is_v4() ? o.self.v4 : o.self.v6) = ip;
    }
    if (!listeners.empty()) {
      o.self.udp_port = listeners.front().port;
      if (cfg.streams.tcp) o.self.tcp_port = listeners.front().port;
    }
    if (!tls_listeners.empty()) o.self.tls_port = tls_listeners.front().port;
    if (cfg.fleet.drain_alternate) o.fallback_target = static_drain_target(*cfg.fleet.drain_alternate);
    o.tenants.push_back({"", cfg.max_allocations});
    for (const auto& t : cfg.tenants) o.tenants.push_back({t.id, t.max_allocations});
    fleet::hooks hk;
    hk.allocations = [this] { return live_allocations(); };
    hk.load = [this] { return static_cast<double>(live_allocations()); };
    hk.draining = [this] { return drain.draining(); };
    hk.command = [this](bool on) {
      if (on) {
        start_drain("a Redis command");
      } else {
        stop_drain("a Redis command");
      }
    };
    try {
      fleet_node = std::make_unique<fleet::node>(std::move(o), std::move(hk), fleet, revocations,
                                                 tenant_usage);
    } catch (const std::exception& e) {
      error = std::string("fleet.redis: ") + e.what();
      return false;
    }
    // The fleet thread never takes the process's signals.
    sigset_t block, previous;
    sigemptyset(&block);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&block, sig);
    pthread_sigmask(SIG_BLOCK, &block, &previous);
    fleet_node->start();
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    spdlog::info("fleet: node '{}' with Redis {} (directory, revocations, quota leases)", node_id_of(cfg.fleet),
                 redacted_redis_url(cfg.fleet.redis));
    return true;
  }

  // The URL without its password, for the log.
  static std::string redacted_redis_url(const std::string& url) {
    const auto scheme = url.find("://");
    const auto at = url.rfind('@');
    if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
    return url.substr(0, scheme + 3) + "***@" + url.substr(at + 1);
  }

  static turn::alternate_node static_drain_target(const stun::endpoint& to) {
    turn::alternate_node n;
    stun::endpoint ip = to;
    ip.port = 0;
    if (to.is_v4()) {
      n.v4 = ip;
    } else {
      n.v6 = ip;
    }
    n.udp_port = n.tcp_port = n.tls_port = to.port;
    return n;
  }

  [[nodiscard]] static std::int64_t monotonic_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  [[nodiscard]] std::uint64_t live_allocations() const {
    std::uint64_t n = 0;
    for (const auto& w : workers) n += w->counters().active_allocations.load(std::memory_order_relaxed);
    return n;
  }

  // Any thread (SIGUSR1 on the main thread, /admin/drain on the HTTP
  // thread, a Redis command on the fleet thread).
  bool start_drain(std::string_view cause) {
    if (!drain.start(monotonic_ms())) {
      spdlog::info("{}: already draining", cause);
      return false;
    }
    const auto target = fleet->drain_target();
    spdlog::warn(
        "drain started by {}: /readyz answers 503, new Allocates go to {}, {} allocation{} keep "
        "relaying; the process exits when the last one ends or after {} s (fleet.drain_timeout)",
        cause, target ? describe(*target) : std::string("nowhere (508: no fleet directory, no --drain-alternate)"),
        live_allocations(), live_allocations() == 1 ? "" : "s", cfg.fleet.drain_timeout);
    notify.stopping();
    return true;
  }

  bool stop_drain(std::string_view cause) {
    if (!drain.stop()) {
      spdlog::info("{}: not draining", cause);
      return false;
    }
    spdlog::warn("drain ended by {}: serving new Allocates again, /readyz answers 200", cause);
    return true;
  }

  static std::string describe(const turn::alternate_node& n) {
    std::string out;
    if (n.v4) out += n.v4->ip_string();
    if (n.v6) out += (out.empty() ? "" : " / ") + n.v6->ip_string();
    return out + fmt::format(" (udp {}, tcp {}, tls {})", n.udp_port, n.tcp_port, n.tls_port);
  }

  // Main thread, every 250 ms: the drain's end, and old revocations.
  void arm_tick() {
    tick_timer.expires_after(std::chrono::milliseconds(250));
    tick_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      on_tick();
      arm_tick();
    });
  }

  void on_tick() {
    notify_tick();
    const std::int64_t now = monotonic_ms();
    const std::uint64_t live = live_allocations();
    switch (drain.on_tick(now, live)) {
      case drain_controller::verdict::keep_running:
        break;
      case drain_controller::verdict::done:
        spdlog::info("drain finished after {} ms: the last allocation ended; exiting",
                     drain.elapsed_ms(now));
        request_stop(0);
        return;
      case drain_controller::verdict::timed_out:
        spdlog::warn("drain timed out after {} s (fleet.drain_timeout): ending the {} allocation{} left; exiting",
                     cfg.fleet.drain_timeout, live, live == 1 ? "" : "s");
        request_stop(0);
        return;
    }
    if (now - last_revocation_expiry_ms >= 1000) {
      last_revocation_expiry_ms = now;
      revocations->expire(unix_seconds());
    }
  }

  [[nodiscard]] static std::int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void start_threads() {
    // Workers never take SIGINT/SIGTERM (no EINTR on their hot path): the
    // mask is inherited, and only the main thread's signal_set handles them.
    sigset_t block, previous;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &previous);
    threads.reserve(workers.size());
    for (auto& w : workers) {
      net::worker* worker = w.get();
      threads.emplace_back([this, worker] {
        char name[16];
        std::snprintf(name, sizeof name, "anyturn-w%u", worker->index());
        pthread_setname_np(pthread_self(), name);
        try {
          worker->run();
        } catch (const std::exception& e) {
          spdlog::critical("worker {} failed: {}", worker->index(), e.what());
          request_stop(1);
        }
      });
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }

  void log_startup(const std::vector<stun::endpoint>& listeners,
                   const std::vector<stun::endpoint>& tls_listeners) const {
    std::vector<std::string> names;
    for (const auto& l : listeners) names.push_back((cfg.streams.tcp ? "udp+tcp " : "udp ") + l.to_string());
    for (const auto& l : tls_listeners) names.push_back("tls " + l.to_string());
    for (const auto& l : cfg.dtls.listen) names.push_back("dtls " + l.to_string());
    spdlog::info("listening on {} ({} worker thread{}, SO_REUSEPORT)", fmt::join(names, ", "),
                 thread_count, thread_count == 1 ? "" : "s");
    std::vector<std::string> relays;
    for (const auto& ip : cfg.relay.ips) relays.push_back(ip.ip_string());
    spdlog::info("relaying on {}, ports {}-{} ({} per address)", fmt::join(relays, ", "),
                 cfg.relay.port_min, cfg.relay.port_max,
                 std::uint32_t{cfg.relay.port_max} - cfg.relay.port_min + 1);
    spdlog::info("realm '{}': {} static user{}, {} REST secret{}", cfg.auth.realm,
                 cfg.auth.users.size(), cfg.auth.users.size() == 1 ? "" : "s",
                 cfg.auth.rest_secrets.size(), cfg.auth.rest_secrets.size() == 1 ? "" : "s");
    if (!cfg.tenants.empty()) {
      std::vector<std::string> ids;
      for (const auto& t : cfg.tenants) ids.push_back(t.id);
      spdlog::info("{} tenant{} besides the default one: {}", ids.size(), ids.size() == 1 ? "" : "s",
                   fmt::join(ids, ", "));
    }
    if (usage) spdlog::info("usage records: one JSON line per ended allocation to {}", usage->path());
    if (cfg.streams.tcp || !cfg.tls.listen.empty()) {
      spdlog::info(
          "streams: at most {} connections ({} per address), TLS handshake timeout {} s, idle "
          "timeout {} s, first message within {} s, messages up to {} bytes, write queue {} bytes "
          "per connection, {} bytes for connections that have not authenticated",
          cfg.streams.max_connections, cfg.streams.max_connections_per_ip,
          cfg.streams.tls_handshake_timeout, cfg.streams.idle_timeout,
          cfg.streams.first_message_timeout_s, cfg.streams.max_message_size,
          cfg.streams.write_queue_size, cfg.streams.unauthenticated_memory);
    }
    for (const auto& w : config::warnings(cfg)) spdlog::warn("{}", w);
    for (const auto& w : risky_peer_allowances(cfg.peers)) spdlog::warn("{}", w);
    if (!cfg.relay.ips.empty()) {
      if (auto w = relay_range_overlap_warning(cfg.relay.port_min, cfg.relay.port_max)) {
        spdlog::warn("{}", *w);
      }
    }
  }

  void request_stop(int code) {
    stopping.store(true, std::memory_order_release);
    asio::post(main_ioc, [this, code] {
      if (code != 0 && exit_code == 0) exit_code = code;
      boost::system::error_code ignored;
      signals.cancel(ignored);
      tick_timer.cancel();
      publish_watch.cancel();
    });
  }

  int wait() {
    if (!started) return 1;
    arm_signals();
    arm_tick();
    if (xdp_offload) arm_publish_watch();
    main_ioc.run();
    notify.stopping();
    // A second Ctrl-C now kills the process the default way.
    boost::system::error_code ignored;
    signals.clear(ignored);
    tick_timer.cancel();
    publish_watch.cancel();
    stopping.store(true, std::memory_order_release);
    // Each worker frees its allocations (writing their usage records) before
    // its thread ends; the usage log outlives them all.
    stop_and_join();
    stop_http();
    stop_fleet();
    spdlog::info("stopped: {}", summary_line(totals()));
    if (cfg.streams.tcp || !cfg.tls.listen.empty()) {
      spdlog::info("streams: {}", stream_summary_line(stream_totals()));
    }
    if (usage) {
      spdlog::info("usage log {}: {} records written, {} failed", usage->path(),
                   usage->records_written(), usage->write_errors());
    }
    return exit_code;
  }

  void stop_and_join() {
    for (auto& w : workers) w->stop();
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
    threads.clear();
  }

  [[nodiscard]] counter_totals totals() const {
    counter_totals t;
    for (const auto& w : workers) accumulate(t, w->counters());
    return t;
  }

  [[nodiscard]] net_totals stream_totals() const {
    net_totals t;
    for (const auto& w : workers) accumulate(t, w->io_counters());
    return t;
  }

  // ---- systemd (sd_notify.hpp): main thread, except notify.send ----
  void notify_ready() {
    if (!notify.problem().empty()) spdlog::warn("systemd: {}; not notifying", notify.problem());
    if (!notify.enabled()) return;
    notify.ready(notify_status());
    if (watchdog.enabled()) {
      spdlog::info("systemd: READY=1 sent; watchdog pings every {} ms while the workers tick",
                   notify.watchdog().count() / 2000);
    } else {
      spdlog::info("systemd: READY=1 sent");
    }
  }

  [[nodiscard]] std::string notify_status() const { return status_text(live_allocations(), drain.draining()); }

  // On the main tick: WATCHDOG=1 while every worker's heartbeat advances,
  // STATUS= when it changed.
  void notify_tick() {
    if (!notify.enabled()) return;
    heartbeats.clear();
    for (const auto& w : workers) heartbeats.push_back(w->heartbeat());
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now().time_since_epoch());
    if (watchdog.on_tick(now, heartbeats)) notify.watchdog_ping();
    if (watchdog.stalled_ticks() == 4) spdlog::error("systemd: a worker has not ticked for 1 s: no watchdog ping");
    std::string status = notify_status();
    if (status != last_status) {
      notify.status(status);
      last_status = std::move(status);
    }
  }

  sd_notifier notify = sd_notifier::from_environment();
  watchdog_check watchdog{notify.watchdog()};
  std::vector<std::uint64_t> heartbeats;
  std::string last_status;

  config::server_config cfg;
  unsigned thread_count;
  // The main thread's loop: signals and stop requests only.
  asio::io_context main_ioc{1};
  asio::signal_set signals{main_ioc};
  asio::steady_timer tick_timer{main_ioc};
  asio::steady_timer publish_watch{main_ioc};  // with XDP: revocations poked within 25 ms
  std::uint64_t watched_revocations = 0;       // main thread
  std::int64_t last_revocation_expiry_ms = 0;  // main thread
  // Config reloads (one at a time, under reload_mutex): the command line to
  // resolve again, the config and snapshot in force, and the board the
  // workers switch by.
  std::optional<config::cli_options> reload_source;
  std::mutex reload_mutex;
  config::server_config running;
  std::shared_ptr<const turn::shared_state> current_state;
  std::shared_ptr<turn::config_board> config_board;
  std::size_t tenant_capacity = 0;
  std::atomic<std::uint64_t> reloads_ok{0};
  std::atomic<std::uint64_t> reloads_error{0};
  std::optional<metrics::registry::collector_id> usage_collector;
  // Shared with the workers (turn::shared_state), the HTTP thread and the
  // fleet thread.
  std::shared_ptr<turn::fleet_signals> fleet = std::make_shared<turn::fleet_signals>();
  std::shared_ptr<auth::revocation_board> revocations = std::make_shared<auth::revocation_board>();
  drain_controller drain{fleet, cfg.fleet.drain_timeout};
  std::shared_ptr<turn::tenant_quota> tenant_usage;  // leased by the fleet node
  std::unique_ptr<fleet::node> fleet_node;           // fleet.redis set
  int exit_code = 0;  // main thread (set inside main_ioc)
  bool started = false;
  // TLS (main thread): where the development certificate lives, and the
  // context the workers were last given.
  std::filesystem::path state_dir;
  net::tls_context_ptr tls_context;
  // The XDP offload (xdp.interfaces; null: off). Declared before `workers`:
  // their fast-path ports use it, so it is destroyed, and the program
  // detached, only after every worker stopped and was destroyed.
  std::unique_ptr<xdp::offload> xdp_offload;
  // Each worker is run by exactly one of `threads`; the main thread only
  // calls their thread-safe stop() and reads their counters.
  std::vector<std::unique_ptr<net::worker>> workers;
  std::vector<std::thread> threads;

  // Side module. The registry outlives the HTTP server that renders it;
  // `counter_collectors` read the workers' counters and are removed (in
  // stop_http) before the workers are destroyed.
  std::shared_ptr<metrics::usage_log> usage;  // also held by the shared state
  std::atomic<bool> listening{false};  // every listener bound, workers running
  std::atomic<bool> stopping{false};   // stop requested: /readyz answers 503
  metrics::registry registry;
  std::vector<metrics::registry::collector_id> counter_collectors;
  std::unique_ptr<http::server> http_server;
};

server_app::server_app(config::server_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

server_app::~server_app() = default;

bool server_app::start(std::string& error) { return impl_->start(error); }

int server_app::wait() { return impl_->wait(); }

void server_app::request_stop(int exit_code) { impl_->request_stop(exit_code); }

void server_app::set_reload_source(config::cli_options source) {
  impl_->reload_source = std::move(source);
}

http::reload_result server_app::reload(std::string_view cause) { return impl_->reload(cause); }

std::vector<stun::endpoint> server_app::listeners() const {
  if (impl_->workers.empty()) return {};
  return impl_->workers.front()->listener_endpoints();
}

std::vector<stun::endpoint> server_app::tls_listeners() const {
  if (impl_->workers.empty()) return {};
  return impl_->workers.front()->tls_listener_endpoints();
}

net_totals server_app::stream_totals() const { return impl_->stream_totals(); }

unsigned server_app::threads() const { return impl_->thread_count; }

std::uint16_t server_app::http_port() const {
  return impl_->http_server ? impl_->http_server->port() : 0;
}

std::string server_app::render_metrics() const { return impl_->registry.render(); }

counter_totals server_app::totals() const { return impl_->totals(); }

}  // namespace anyturn::app
