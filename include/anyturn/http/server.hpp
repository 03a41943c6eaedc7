// anyturn::http — the side HTTP server: /metrics, health probes and the
// credentials API (docs/credentials-api.md).
//
// It runs on its own io_context and threads, never on a relay worker: a slow
// scrape or API client can never delay a relayed packet. The request logic
// is in `api` (api.hpp), a pure function of the request, the config and the
// injected clock; this class only moves bytes (Boost.Beast, optional TLS) and
// enforces the limits below.
#pragma once

#include <anyturn/auth/revocations.hpp>
#include <anyturn/metrics/registry.hpp>
#include <anyturn/probe/probe.hpp>
#include <anyturn/turn/sessions.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace anyturn::http {

// One API customer. Its keys authorise calls; its first secret signs the
// credentials it is issued (the TURN side must accept that secret too).
//
// Credentials minted for a tenant have the username
// "<expiry>:<tenant id>:<user>", which auth::credential_store maps back to
// that tenant; the default tenant (empty id, at most one) gets
// "<expiry>:<user>". `id` must therefore equal the TURN side's tenant id.
struct api_tenant {
  std::string id;                     // TURN tenant id ("" = default); metric label
  std::vector<std::string> api_keys;  // bearer tokens, at least one
  std::vector<std::string> secrets;   // REST shared secrets, at least one; [0] signs
  std::uint32_t max_ttl = 86400;      // seconds; a larger requested ttl is capped
  std::uint32_t default_ttl = 3600;   // seconds; when the request names none
};

// The URLs handed to clients, verbatim (RFC 7064/7065 syntax).
struct ice_urls {
  std::vector<std::string> stun;  // e.g. "stun:turn.example.com:3478"
  std::vector<std::string> turn;  // e.g. "turn:turn.example.com:3478?transport=udp",
                                  //      "turns:turn.example.com:5349?transport=tcp"
};

struct tls_files {
  std::string certificate_chain;  // PEM file: leaf first, then intermediates
  std::string private_key;        // PEM file
};

struct http_limits {
  std::size_t max_header_bytes = 16 * 1024;  // request line + headers; more: 431
  std::size_t max_body_bytes = 16 * 1024;    // more: 413
  std::chrono::milliseconds read_timeout{10'000};  // per read/write, incl. keep-alive idle
  std::size_t max_connections = 256;         // more are closed at accept
};

// What POST /admin/reload (and SIGHUP) did: the config generation in force
// afterwards, the keys whose change needs a restart (ignored), and the
// errors of a config that did not validate (ok false: nothing changed).
struct reload_result {
  bool ok = false;
  std::vector<std::string> messages;
  std::vector<std::string> ignored;
  std::uint64_t generation = 0;
};

// GET /probe?target=URL (docs/probe.md, probe_route.hpp).
struct probe_listener {
  enum class kind { udp, tcp, tls };
  std::string address;  // IP literal; 0.0.0.0 or :: matches the host's interface addresses
  std::uint16_t port = 0;
  kind type = kind::udp;
};
struct probe_target_credentials {
  std::string target;  // "host:port", as in probe_settings::targets
  std::string username, password;  // a long-term user, or
  std::string secret;              // a REST secret (the probe mints a 60 s username)
};
struct probe_settings {
  unsigned max_concurrent = 2;             // probes at once; more: 429
  unsigned max_count = 50;                 // packets each way, at most (the query's count)
  std::chrono::seconds timeout{5};         // one probe
  std::string ca_file;                     // turns: trust; empty: the system store
  std::vector<probe_listener> own;         // this node's TURN listeners
  std::vector<std::string> targets;        // other allowed "host:port" (http.probe_targets)
  std::vector<probe_target_credentials> credentials;  // for `targets` (http.probe_credentials)
  // A fresh credential for this node's own listeners (the internal probe
  // secret's "<expiry>:anyturn-probe"). Empty: own listeners answer 400.
  std::function<probe::credentials()> self_credentials;
  // Runs one probe, blocking (probe::run; tests inject a fake). Called on a
  // probe thread, never an HTTP io thread. Empty: /probe answers 501.
  std::function<probe::report(const probe::target&, const probe::options&)> run;
  // A host name's addresses (IP literals). Empty: getaddrinfo.
  std::function<std::vector<std::string>(const std::string&)> resolve;
  // The host's interface addresses, for wildcard listeners. Empty: getifaddrs.
  std::function<std::vector<std::string>()> interface_addresses;
};

struct server_config {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal to listen on
  std::uint16_t port = 9641;          // 0: an ephemeral port (see server::port())
  std::optional<tls_files> tls;       // set: HTTPS only
  http_limits limits;
  unsigned threads = 1;               // threads running the server's io_context

  std::vector<api_tenant> tenants;    // empty: the credentials API answers 401
  ice_urls urls;

  // Bearer keys of /admin/* (http.admin_keys / --admin-key). No tenant key
  // opens /admin/*, and no admin key opens the tenant API. Empty: /admin/*
  // answers 401.
  std::vector<std::string> admin_keys;
  // POST /admin/drain: starts a drain; returns true when the node was not
  // draining before (the state changed). Called on an HTTP thread; must be
  // thread-safe and quick. Empty: /admin/drain answers 501.
  std::function<bool()> drain;
  // POST /admin/undrain: ends a drain; returns true when the node was
  // draining. Empty: /admin/undrain answers 501.
  std::function<bool()> undrain;
  // GET /admin/status: whether the node drains, and its live allocations.
  // Either may be empty (then false, and null allocations).
  std::function<bool()> draining;
  std::function<std::uint64_t()> allocations;
  // POST /api/v1/credentials/revoke and the Cloudflare-compatible revoke:
  // called once per accepted revocation (tenant, the whole username or the
  // REST user, until_unix). The app adds it to the revocation board and
  // publishes it to the fleet. Called on an HTTP thread; must be
  // thread-safe. Empty: the revoke routes answer 501.
  std::function<void(const auth::revocation&)> revoke;
  // The sessions API (docs/admin.md; app::session_admin): GET
  // /admin/sessions lists one page; DELETE /admin/sessions/{id} ends one
  // allocation (false: the id names none, 404); DELETE /admin/sessions?user=
  // ends every match and returns how many. Called on an HTTP thread; they
  // wait for the workers and throw when one does not answer in time (503).
  // Empty: those routes answer 501.
  std::function<turn::session_listing(const turn::session_query&)> list_sessions;
  std::function<bool(const turn::session_id&)> end_session;
  std::function<std::size_t(const turn::session_filter&)> end_sessions;
  // POST /admin/reload: re-reads the config file and applies it (200), or
  // changes nothing and says why (400). Called on an HTTP thread; it may
  // replace this server's tenants and keys (replace_keys) before returning.
  // Empty: /admin/reload answers 501.
  std::function<reload_result()> reload;
  // GET /admin/status: the config generation in force. Empty: null.
  std::function<std::uint64_t()> config_generation;

  // http.test_page (docs/probe.md): GET /test (the browser self-test page),
  // POST /test/credentials (a one-time link token for credentials) and
  // POST /admin/test-link (admin key: a new link). Off: the three answer 404.
  bool test_page = false;
  // The REST secret that signs the page's credentials (the default tenant's
  // first auth.secrets entry, generated when none is set, so it works with
  // static users only too). Required when test_page is on.
  std::string test_page_secret;
  // GET /probe (admin key): limits, allowed targets and the probe itself.
  probe_settings probe;

  // /readyz: true when the TURN listeners are up and the server is not
  // draining. Called on an HTTP thread; must be thread-safe and quick.
  // Empty: always ready.
  std::function<bool()> ready;
  // /metrics renders this registry; nullptr: /metrics is 404. The server
  // also adds its own anyturn_http_* collector to it (removed on destruction).
  metrics::registry* registry = nullptr;
  // Wall clock in unix seconds (REST expiry). Empty: the system clock.
  std::function<std::int64_t()> now;
  // Credential user id when the request names none. Empty: 16 random hex
  // digits from OpenSSL's RAND_bytes.
  std::function<std::string()> generate_user_id;
};

// Every problem in `cfg` ("tenants[1].secrets: empty"), none if it is valid.
std::vector<std::string> validate(const server_config& cfg);

class server {
 public:
  // Throws std::invalid_argument listing validate()'s errors, and
  // std::runtime_error when the TLS files cannot be loaded.
  explicit server(server_config cfg);
  ~server();  // stop()
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds, listens and starts the threads. Throws std::system_error when the
  // address cannot be bound (its what() names the address). Once only.
  void start();
  // Any thread but the server's own; idempotent. Stops accepting, aborts
  // in-flight requests, closes every connection and joins the threads.
  void stop();

  // The bound port and address (after start()).
  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] std::string address() const;
  // Open connections right now.
  [[nodiscard]] std::size_t connections() const;
  // A config reload: the credentials API's tenants and the admin keys from
  // now on (requests already being handled finish with the old ones). Any
  // thread; `tenants` must pass validate() like the config's.
  void replace_keys(std::vector<api_tenant> tenants, std::vector<std::string> admin_keys);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace anyturn::http
