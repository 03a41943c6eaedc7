// The browser self-test page (http.test_page; docs/probe.md "## /test"):
// the one-time link table, the routes GET /test, POST /test/credentials and
// POST /admin/test-link, and the page itself (HTML, CSS and JS inline, as
// raw strings).
//
// Flow: an operator POSTs /admin/test-link with the admin key and gets
// "<base>/test#token=<64 hex>". The browser loads /test (the fragment never
// reaches the server), the page POSTs /test/credentials with "Authorization:
// Bearer <token>", which spends the token and returns REST credentials for
// the default tenant (signed with its first secret) and the node's TURN
// URLs. Or the user pastes a tenant API key and the page calls the
// credentials API (POST /api/v1/ice-servers). Then it runs one relay-only
// loopback check per transport in the browser.
#include <anyturn/auth/credentials.hpp>
#include <anyturn/http/api.hpp>
#include <anyturn/http/json.hpp>
#include <anyturn/http/test_page.hpp>

#include "replies.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <exception>
#include <stdexcept>

namespace anyturn::http {
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view route_test = "/test";
constexpr std::string_view route_test_credentials = "/test/credentials";
constexpr std::string_view route_admin_test_link = "/admin/test-link";
// Lifetime of the credentials the page is given (it runs for under a minute).
constexpr std::int64_t page_credential_ttl = 600;

std::array<std::uint8_t, 32> digest_of(std::string_view s) {
  std::array<std::uint8_t, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), out.data());
  return out;
}

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xF];
  }
  return out;
}

}  // namespace

// ---- the link table ----

std::optional<std::string> test_links::issue(std::int64_t now) {
  std::array<unsigned char, token_bytes> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  std::string token = hex(raw.data(), raw.size());
  const std::lock_guard lock(mutex_);
  forget_old(now);
  if (live_locked(now) >= max_live) {
    ++totals_.refused;
    return std::nullopt;
  }
  if (entries_.size() >= max_live + max_remembered) {
    // Forget the remembered (spent or expired) token that expires first.
    const auto oldest = std::min_element(entries_.begin(), entries_.end(), [now](const entry& a, const entry& b) {
      const bool a_live = !a.spent && now < a.expires;
      const bool b_live = !b.spent && now < b.expires;
      if (a_live != b_live) return !a_live;
      return a.expires < b.expires;
    });
    entries_.erase(oldest);
  }
  entries_.push_back({digest_of(token), now + lifetime_s, false});
  ++totals_.issued;
  return token;
}

test_links::outcome test_links::redeem(std::string_view token, std::int64_t now) {
  const auto presented = digest_of(token);
  const std::lock_guard lock(mutex_);
  forget_old(now);
  entry* found = nullptr;
  for (entry& e : entries_) {  // no early exit
    if (CRYPTO_memcmp(presented.data(), e.digest.data(), presented.size()) == 0) found = &e;
  }
  outcome result = outcome::invalid;
  if (found == nullptr) {
    ++totals_.invalid;
  } else if (found->spent) {
    result = outcome::reused;
    ++totals_.reused;
  } else if (now >= found->expires) {
    result = outcome::expired;
    ++totals_.expired;
    found->spent = true;  // a later try is "reused"
  } else {
    result = outcome::redeemed;
    ++totals_.redeemed;
    found->spent = true;
  }
  return result;
}

void test_links::forget_old(std::int64_t now) {
  std::erase_if(entries_, [now](const entry& e) { return now >= e.expires + lifetime_s; });
}

std::size_t test_links::live_locked(std::int64_t now) const {
  return static_cast<std::size_t>(std::count_if(
      entries_.begin(), entries_.end(), [now](const entry& e) { return !e.spent && now < e.expires; }));
}

std::size_t test_links::live(std::int64_t now) const {
  const std::lock_guard lock(mutex_);
  return live_locked(now);
}

test_links::totals test_links::counts() const {
  const std::lock_guard lock(mutex_);
  return totals_;
}

// ---- the routes ----

bool api::is_test_route(std::string_view path) { return test_route_label(path).has_value(); }

std::optional<std::string_view> api::test_route_label(std::string_view path) {
  for (std::string_view r : {route_test, route_test_credentials, route_admin_test_link}) {
    if (path == r) return r;
  }
  return std::nullopt;
}

namespace {

std::string_view bearer_of(const request& req) {
  const auto header = req.find(bhttp::field::authorization);
  if (header == req.end()) return {};
  std::string_view v(header->value().data(), header->value().size());
  constexpr std::string_view scheme = "bearer ";
  if (v.size() <= scheme.size()) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    const char c = v[i] >= 'A' && v[i] <= 'Z' ? static_cast<char>(v[i] + 32) : v[i];
    if (c != scheme[i]) return {};
  }
  v.remove_prefix(scheme.size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

// A Host header we are willing to echo into a URL: a DNS name, an IPv4
// literal or a bracketed IPv6 literal, with an optional port.
bool plausible_host(std::string_view h) {
  if (h.empty() || h.size() > 262) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':' || c == '[' || c == ']';
  });
}

response refused_link(const request& req, std::string_view message) {
  response res = json_error(req, bhttp::status::unauthorized, message);
  res.set(bhttp::field::www_authenticate, "Bearer realm=\"anyturn-test\", error=\"invalid_token\"");
  return res;
}

}  // namespace

response api::test_route(const request& req, std::string_view path, std::string_view client) {
  if (!cfg_.test_page) return json_error(req, bhttp::status::not_found, "not found");
  if (path == route_admin_test_link) return admin_test_link(req, client);
  if (path == route_test_credentials) return test_credentials(req);
  if (req.method() != bhttp::verb::get) return method_not_allowed(req, "GET");
  response res = make_response(req, bhttp::status::ok, "text/html; charset=utf-8",
                               std::string(test_page_html()));
  res.set("Content-Security-Policy", test_page_csp());
  res.set("Referrer-Policy", "no-referrer");
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  return res;
}

response api::admin_test_link(const request& req, std::string_view client) {
  if (req.method() != bhttp::verb::post) return method_not_allowed(req, "POST");
  if (auto refused = admin_refusal(req, client)) return std::move(*refused);
  std::optional<std::string> token;
  try {
    token = test_links_.issue(now());
  } catch (const std::exception&) {
    return json_error(req, bhttp::status::internal_server_error, "cannot make a token");
  }
  if (!token) {
    response res = json_error(req, bhttp::status::too_many_requests,
                              "too many unused test links (at most 64 live); retry later");
    res.set(bhttp::field::retry_after, "60");
    return res;
  }
  std::string base = cfg_.tls ? "https://" : "http://";
  const auto host = req.find(bhttp::field::host);
  const std::string_view host_text =
      host == req.end() ? std::string_view{} : std::string_view(host->value().data(), host->value().size());
  if (plausible_host(host_text)) {
    base += host_text;
  } else {
    const bool v6 = cfg_.address.find(':') != std::string::npos;
    base += v6 ? "[" + cfg_.address + "]" : cfg_.address;
    base += ':' + std::to_string(cfg_.port);
  }
  std::string out = "{\"url\":";
  json::append_string(out, base + std::string(route_test) + "#token=" + *token);
  out += ",\"token\":";
  json::append_string(out, *token);
  out += ",\"expires_in\":" + std::to_string(test_links::lifetime_s) + '}';
  return json_response(req, bhttp::status::created, std::move(out));
}

response api::test_credentials(const request& req) {
  if (req.method() != bhttp::verb::post) return method_not_allowed(req, "POST");
  const std::string_view token = bearer_of(req);
  if (token.empty()) {
    response res = json_error(req, bhttp::status::unauthorized, "missing test link token");
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"anyturn-test\"");
    return res;
  }
  const std::int64_t t = now();
  switch (test_links_.redeem(token, t)) {
    case test_links::outcome::redeemed: break;
    case test_links::outcome::expired: return refused_link(req, "test link expired; ask for a new one");
    case test_links::outcome::reused: return refused_link(req, "test link already used; ask for a new one");
    case test_links::outcome::invalid: return refused_link(req, "invalid test link");
  }
  std::string user = "selftest-";
  try {
    user += new_user_id();
  } catch (const std::exception&) {
    return json_error(req, bhttp::status::internal_server_error, "cannot make a user id");
  }
  const std::string username = auth::rest_username(t, page_credential_ttl, user);
  std::string out = "{\"iceServers\":[{\"urls\":[";
  for (std::size_t i = 0; i < cfg_.urls.turn.size(); ++i) {
    if (i > 0) out += ',';
    json::append_string(out, cfg_.urls.turn[i]);
  }
  out += "],\"username\":";
  json::append_string(out, username);
  out += ",\"credential\":";
  json::append_string(out, auth::rest_password(cfg_.test_page_secret, username));
  out += "}],\"expiresAt\":";
  json::append_string(out, rfc3339_utc(t + page_credential_ttl));
  out += '}';
  return json_response(req, bhttp::status::ok, std::move(out));
}

// ---- the page ----

namespace {

constexpr std::string_view page_head = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>anyturn: TURN self-test</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #1d232a; }
  h1 { font-size: 1.5em; margin-bottom: .2em; }
  p.lead { color: #4a5560; margin-top: 0; }
  #auth { border: 1px solid #d5dbe1; border-radius: 6px; padding: .8em 1em; margin: 1em 0; background: #f7f9fb; }
  #auth label { font-weight: 600; margin-right: .5em; }
  #auth input { width: 28em; max-width: 100%; font: inherit; padding: .25em .4em; }
  #auth button { font: inherit; padding: .25em .9em; }
  #error { color: #b3261e; font-weight: 600; }
  table { border-collapse: collapse; width: 100%; margin-top: 1em; }
  th, td { text-align: left; border-bottom: 1px solid #e3e7eb; padding: .45em .6em; vertical-align: top; }
  th { background: #eef1f4; font-weight: 600; }
  td.url, td.pair { font-family: ui-monospace, monospace; font-size: .9em; overflow-wrap: anywhere; }
  td.url { white-space: nowrap; }
  td.rtt { white-space: nowrap; }
  tr[data-status="pass"] td.status { color: #1a7f37; font-weight: 700; }
  tr[data-status="fail"] td.status { color: #b3261e; font-weight: 700; }
  tr[data-status="running"] td.status { color: #9a6700; }
  tr[data-status="skip"] td.status { color: #6e7781; }
  #summary { font-weight: 600; margin-top: 1em; }
</style>
</head>
<body>
<h1>TURN self-test</h1>
<p class="lead">This page connects two WebRTC peers inside this browser through this TURN server only
(<code>iceTransportPolicy: "relay"</code>), once per transport, and sends a DataChannel message
around. Nothing is loaded from anywhere else.</p>
<div id="auth">
  <p id="auth-status">Paste a tenant API key (kept in this page's memory only), or open a one-time test
  link from <code>POST /admin/test-link</code>.</p>
  <form id="key-form" autocomplete="off">
    <label for="api-key">Tenant API key</label>
    <input id="api-key" type="password" spellcheck="false">
    <button id="run" type="submit">Run the checks</button>
  </form>
  <p id="error" role="alert"></p>
</div>
<table id="results">
  <thead><tr><th>transport</th><th>TURN URL</th><th>result</th><th>selected candidate pair</th><th>RTT</th><th>detail</th></tr></thead>
  <tbody>
    <tr id="result-udp" data-status="pending"><td>UDP</td><td class="url">-</td><td class="status">pending</td><td class="pair"></td><td class="rtt"></td><td class="detail"></td></tr>
    <tr id="result-tcp" data-status="pending"><td>TCP</td><td class="url">-</td><td class="status">pending</td><td class="pair"></td><td class="rtt"></td><td class="detail"></td></tr>
    <tr id="result-tls" data-status="pending"><td>TLS</td><td class="url">-</td><td class="status">pending</td><td class="pair"></td><td class="rtt"></td><td class="detail"></td></tr>
  </tbody>
</table>
<p id="summary"></p>
)html";

constexpr std::string_view page_script = R"js(
'use strict';
(() => {
  const TIMEOUT_MS = 10000;
  const KINDS = ['udp', 'tcp', 'tls'];
  const WANTED = { udp: 'turn:...?transport=udp', tcp: 'turn:...?transport=tcp', tls: 'turns:...?transport=tcp' };
  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  let apiKey = null;  // only ever in this variable
  let running = false;

  function setRow(kind, f) {
    const row = $('result-' + kind);
    if (f.status !== undefined) {
      row.dataset.status = f.status;
      row.querySelector('.status').textContent = f.status;
    }
    for (const cls of ['url', 'pair', 'rtt', 'detail']) {
      if (f[cls] !== undefined) row.querySelector('.' + cls).textContent = f[cls];
    }
    for (const [k, v] of Object.entries(f.data || {})) {
      if (v !== undefined && v !== null) row.dataset[k] = String(v);
    }
  }

  function showError(message) {
    $('error').textContent = message;
    document.body.dataset.error = message;
  }

  function takeFragmentToken() {
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get('token');
    // Drop the token from the address bar and the history.
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    return token;
  }

  async function iceServers(token) {
    const request = token
      ? { url: '/test/credentials', init: { method: 'POST', headers: { Authorization: 'Bearer ' + token } } }
      : { url: '/api/v1/ice-servers', init: { method: 'POST', headers: { Authorization: 'Bearer ' + apiKey, 'Content-Type': 'application/json' }, body: '{"ttl":600}' } };
    const response = await fetch(request.url, { ...request.init, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
    let body = {};
    try {
      body = await response.json();
    } catch (e) {
      // not JSON: the status says enough
    }
    if (!response.ok) {
      const what = token ? 'test link refused' : 'API key refused';
      throw new Error(what + ': HTTP ' + response.status + (body.error ? ' (' + body.error + ')' : ''));
    }
    if (!Array.isArray(body.iceServers)) throw new Error('the server answered without iceServers');
    return body.iceServers;
  }

  function kindOf(url) {
    const m = /^(turns?):([^?]*)(?:\?(.*))?$/i.exec(url);
    if (!m) return null;
    const scheme = m[1].toLowerCase();
    const transport = (new URLSearchParams(m[3] || '').get('transport') || 'udp').toLowerCase();
    if (scheme === 'turn' && transport === 'udp') return 'udp';
    if (scheme === 'turn' && transport === 'tcp') return 'tcp';
    if (scheme === 'turns' && transport === 'tcp') return 'tls';
    return null;
  }

  // The first URL of each kind, with its server's credentials.
  function targets(servers) {
    const out = {};
    for (const s of servers) {
      const urls = Array.isArray(s.urls) ? s.urls : [s.urls];
      for (const url of urls) {
        const kind = typeof url === 'string' ? kindOf(url) : null;
        if (kind && !out[kind]) out[kind] = { url, username: s.username, credential: s.credential };
      }
    }
    return out;
  }

  function describe(c) {
    if (!c) return '?';
    const address = c.address || c.ip || '?';
    const relay = c.relayProtocol ? ' via ' + c.relayProtocol : '';
    return c.candidateType + ' ' + address + ':' + c.port + ' ' + c.protocol + relay;
  }

  // The selected pair of `pc` and its RTT, from getStats(); waits up to 2 s
  // for currentRoundTripTime.
  async function selectedPair(pc) {
    let last = null;
    for (let i = 0; i < 20; ++i) {
      const stats = await pc.getStats();
      let pair = null;
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      });
      if (!pair) {
        stats.forEach((s) => {
          if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
        });
      }
      if (pair) {
        last = { local: stats.get(pair.localCandidateId), remote: stats.get(pair.remoteCandidateId), rtt: pair.currentRoundTripTime };
        if (typeof last.rtt === 'number') return last;
      }
      await sleep(100);
    }
    return last;
  }

  async function check(target) {
    const config = { iceServers: [{ urls: [target.url], username: target.username, credential: target.credential }], iceTransportPolicy: 'relay' };
    const a = new RTCPeerConnection(config);
    const b = new RTCPeerConnection(config);
    const errors = [];
    const started = performance.now();
    let gathered = 0;
    let timer = null;
    const onError = (e) => {
      // The same error from both peers, or on every retry, is shown once.
      const seen = errors.some((x) => x.code === e.errorCode && x.text === e.errorText && x.url === e.url);
      if (!seen && errors.length < 8) errors.push({ code: e.errorCode, text: e.errorText, url: e.url });
    };
    a.onicecandidateerror = onError;
    b.onicecandidateerror = onError;
    const failed = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error('timeout after ' + TIMEOUT_MS / 1000 + ' s in ICE state ' + a.iceConnectionState +
        ' (connection ' + a.connectionState + ', gathering ' + a.iceGatheringState + ')')), TIMEOUT_MS);
      a.onicecandidate = (e) => {
        if (e.candidate) {
          ++gathered;
          b.addIceCandidate(e.candidate).catch(() => {});
        } else if (gathered === 0) {
          reject(new Error('no relay candidate: gathering ended without one'));
        }
      };
      a.onconnectionstatechange = () => {
        if (a.connectionState === 'failed') reject(new Error('ICE failed (connection state failed)'));
      };
    });
    b.onicecandidate = (e) => {
      if (e.candidate) a.addIceCandidate(e.candidate).catch(() => {});
    };
    const work = (async () => {
      const channel = a.createDataChannel('anyturn-self-test');
      b.ondatachannel = (e) => {
        e.channel.onmessage = (m) => e.channel.send(m.data);
      };
      const opened = new Promise((resolve) => { channel.onopen = resolve; });
      const echoed = new Promise((resolve) => { channel.onmessage = (m) => resolve(m.data); });
      await a.setLocalDescription(await a.createOffer());
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription(await b.createAnswer());
      await a.setRemoteDescription(b.localDescription);
      await opened;
      const openMs = performance.now() - started;
      const ping = 'anyturn self-test ' + Math.random().toString(36).slice(2);
      const sent = performance.now();
      channel.send(ping);
      const back = await echoed;
      if (back !== ping) throw new Error('the DataChannel echo differs from what was sent');
      const echoMs = performance.now() - sent;
      const selected = await selectedPair(a);
      return { openMs, echoMs, selected };
    })();
    try {
      const r = await Promise.race([work, failed]);
      return { ok: true, ...r, errors };
    } catch (e) {
      return { ok: false, error: e && e.message ? e.message : String(e), errors };
    } finally {
      clearTimeout(timer);
      a.close();
      b.close();
    }
  }

  function errorsText(errors) {
    return errors.map((e) => 'icecandidateerror ' + e.code + (e.text ? ' "' + e.text + '"' : '') + (e.url ? ' (' + e.url + ')' : '')).join('; ');
  }

  async function run(token) {
    if (running) return;
    running = true;
    $('run').disabled = true;
    delete document.documentElement.dataset.done;
    showError('');
    document.body.dataset.error = '';
    for (const kind of KINDS) setRow(kind, { status: 'pending', url: '-', pair: '', rtt: '', detail: '' });
    let passed = 0;
    let failed = 0;
    try {
      const servers = await iceServers(token);
      const found = targets(servers);
      for (const kind of KINDS) {
        const target = found[kind];
        if (!target) {
          setRow(kind, { status: 'skip', detail: 'no ' + WANTED[kind] + ' URL among the iceServers' });
          continue;
        }
        setRow(kind, { status: 'running', url: target.url });
        const r = await check(target);
        if (r.ok) {
          ++passed;
          const s = r.selected || {};
          const rttMs = typeof s.rtt === 'number' ? s.rtt * 1000 : null;
          setRow(kind, {
            status: 'pass',
            pair: s.local ? describe(s.local) + ' \u21c4 ' + describe(s.remote) : 'no selected pair in getStats()',
            rtt: rttMs === null ? 'n/a' : rttMs.toFixed(1) + ' ms',
            detail: 'DataChannel open after ' + r.openMs.toFixed(0) + ' ms; echo in ' + r.echoMs.toFixed(1) + ' ms',
            data: {
              localType: s.local && s.local.candidateType, remoteType: s.remote && s.remote.candidateType,
              localAddress: s.local && (s.local.address || s.local.ip), remoteAddress: s.remote && (s.remote.address || s.remote.ip),
              protocol: s.local && s.local.protocol, relayProtocol: s.local && s.local.relayProtocol,
              rttMs: rttMs === null ? null : rttMs.toFixed(3), echoMs: r.echoMs.toFixed(3),
            },
          });
        } else {
          ++failed;
          const extra = r.errors.length ? '; ' + errorsText(r.errors) : '';
          setRow(kind, { status: 'fail', detail: r.error + extra, data: { error: r.error + extra } });
        }
      }
      $('summary').textContent = passed + ' passed, ' + failed + ' failed';
    } catch (e) {
      showError(e && e.message ? e.message : String(e));
      for (const kind of KINDS) setRow(kind, { status: 'fail', detail: 'no credentials' });
      $('summary').textContent = 'not run: no credentials';
    } finally {
      document.body.dataset.passed = String(passed);
      document.body.dataset.failed = String(failed);
      document.documentElement.dataset.done = 'true';
      $('run').disabled = false;
      running = false;
    }
  }

  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('api-key');
    const key = input.value.trim();
    input.value = '';
    if (!key) {
      showError('paste a tenant API key first');
      return;
    }
    apiKey = key;
    run(null);
  });

  const token = takeFragmentToken();
  if (token) {
    $('auth-status').textContent = 'Using a one-time test link.';
    run(token);
  }
})();
)js";

constexpr std::string_view page_tail = "</body>\n</html>\n";

struct built_page {
  std::string html;
  std::string csp;
};

const built_page& page() {
  static const built_page p = [] {
    built_page out;
    out.html.reserve(page_head.size() + page_script.size() + page_tail.size() + 32);
    out.html += page_head;
    out.html += "<script>";
    out.html += page_script;
    out.html += "</script>\n";
    out.html += page_tail;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(page_script.data()), page_script.size(), digest);
    unsigned char b64[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(b64, digest, SHA256_DIGEST_LENGTH);
    out.csp = "default-src 'none'; script-src 'sha256-";
    out.csp.append(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
    out.csp +=
        "'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'";
    return out;
  }();
  return p;
}

}  // namespace

std::string_view test_page_html() { return page().html; }
std::string_view test_page_csp() { return page().csp; }

}  // namespace anyturn::http
