#!/usr/bin/env node
// Real-browser TURN check: headless Debian Chromium, driven by playwright-core,
// connects two relay-only RTCPeerConnections through the TURN server under
// test over UDP, TCP and TLS, with a static user and with TURN REST
// credentials, exchanges DataChannel messages, and checks in getStats() that
// the selected pair is relay/relay over the expected relay protocol. Wrong
// and expired credentials must give no relay candidate and an
// icecandidateerror 401.
//
//   node browser_turn_test.mjs [ANYTURN_BINARY] [--transports udp,tcp,tls]
//        [--server anyturn|coturn] [--tls-trust nss|ignore] [--messages N]
//
// See README.md in this folder.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { gather_only, relay_exchange } from './page_checks.mjs';
import {
  close_browser, free_port, haproxy_command, make_nss_db, make_tls_material, own_children, relay_port_window, server_command,
  install_exit_handlers, server_instances, server_process, wait_ready,
} from './servers.mjs';

const script_dir = path.dirname(fileURLToPath(import.meta.url));
const repo_root = path.resolve(script_dir, '..', '..', '..');

// Budgets. The whole script must finish well under a minute.
const SCRIPT_DEADLINE_MS = 55_000;
const SERVER_START_MS = 5_000;
const LISTENER_PROBE_MS = 2_000;
const BROWSER_LAUNCH_MS = 15_000;
const POSITIVE_RUN_MS = 8_000;
const NEGATIVE_RUN_MS = 5_000;
const EVALUATE_SLACK_MS = 2_000;

const REALM = 'anyturn';
const USER = 'browser';

const ALL_TRANSPORTS = ['udp', 'tcp', 'tls'];
const TURN_URL = {
  udp: (port) => `turn:127.0.0.1:${port}?transport=udp`,
  tcp: (port) => `turn:127.0.0.1:${port}?transport=tcp`,
  tls: (port) => `turns:127.0.0.1:${port}?transport=tcp`,
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log(`[browser ${new Date().toISOString().slice(11, 23)}]`, ...args);

function usage() {
  return `usage: node browser_turn_test.mjs [ANYTURN_BINARY] [options]

  ANYTURN_BINARY         anyturn executable (default: $ANYTURN_BIN, $ANYTURN_BINARY, build/anyturn)
  --transports LIST      comma-separated subset of udp,tcp,tls (default: udp,tcp,tls)
  --server KIND          anyturn (default) or coturn (side-by-side reference run)
  --coturn-bin PATH      coturn's turnserver (default: /usr/bin/turnserver)
  --chromium PATH        Chromium executable (default: $CHROMIUM_BIN or /usr/bin/chromium)
  --tls-trust MODE       nss: trust a throwaway CA in a fresh NSS DB (default, needs certutil)
                         ignore: start Chromium with --ignore-certificate-errors
  --messages N           DataChannel messages each way (default: 20)
  --via-haproxy          TCP and TLS go through haproxy (mode tcp, send-proxy-v2) to
                         anyturn listeners with --proxy-protocol (anyturn only)
  --haproxy PATH         haproxy executable (default: /usr/sbin/haproxy)
  --keep                 keep the temporary directory (also: ANYTURN_KEEP_LOGS=1)
  -h, --help             this text`;
}

function parse_options(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      transports: { type: 'string', default: ALL_TRANSPORTS.join(',') },
      server: { type: 'string', default: 'anyturn' },
      'coturn-bin': { type: 'string', default: '/usr/bin/turnserver' },
      chromium: { type: 'string', default: process.env.CHROMIUM_BIN || '/usr/bin/chromium' },
      'tls-trust': { type: 'string', default: 'nss' },
      messages: { type: 'string', default: '20' },
      'via-haproxy': { type: 'boolean', default: false },
      haproxy: { type: 'string', default: '/usr/sbin/haproxy' },
      keep: { type: 'boolean', default: Boolean(process.env.ANYTURN_KEEP_LOGS) },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(usage());
    process.exit(0);
  }
  const errors = [];
  const transports = values.transports.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
  for (const t of transports) if (!ALL_TRANSPORTS.includes(t)) errors.push(`--transports: unknown transport '${t}'`);
  if (transports.length === 0) errors.push('--transports: empty list');
  if (!['anyturn', 'coturn'].includes(values.server)) errors.push(`--server: expected anyturn or coturn, got '${values.server}'`);
  if (!['nss', 'ignore'].includes(values['tls-trust'])) errors.push(`--tls-trust: expected nss or ignore, got '${values['tls-trust']}'`);
  const messages = Number(values.messages);
  if (!Number.isInteger(messages) || messages < 1 || messages > 1000) errors.push('--messages: expected an integer in 1..1000');
  if (values['via-haproxy'] && values.server !== 'anyturn') errors.push('--via-haproxy: anyturn only');
  if (values['via-haproxy'] && !fs.existsSync(values.haproxy)) errors.push(`haproxy not found: ${values.haproxy} (apt-get install haproxy)`);
  if (positionals.length > 1) errors.push(`unexpected arguments: ${positionals.slice(1).join(' ')}`);

  let binary;
  if (values.server === 'coturn') {
    binary = values['coturn-bin'];
  } else {
    const given = positionals[0] || process.env.ANYTURN_BIN || process.env.ANYTURN_BINARY;
    binary = given
      ? path.resolve(given)
      : [path.resolve('build/anyturn'), path.join(repo_root, 'build', 'anyturn')].find((p) => fs.existsSync(p))
        || path.resolve('build/anyturn');
  }
  if (!fs.existsSync(binary)) errors.push(`server binary not found: ${binary}`);
  if (!fs.existsSync(values.chromium)) errors.push(`Chromium not found: ${values.chromium} (apt-get install chromium)`);
  if (errors.length) {
    for (const e of errors) console.error(`error: ${e}`);
    console.error(usage());
    process.exit(2);
  }
  return {
    transports: ALL_TRANSPORTS.filter((t) => transports.includes(t)),
    server: values.server,
    binary,
    chromium: values.chromium,
    tls_trust: values['tls-trust'],
    messages,
    keep: values.keep,
    via_haproxy: values['via-haproxy'],
    haproxy: values.haproxy,
  };
}

async function load_playwright() {
  try {
    return (await import('playwright-core')).chromium;
  } catch (e) {
    console.error(`error: cannot load playwright-core (${e.message}).`);
    console.error(`       run: npm ci --prefix ${path.relative(process.cwd(), script_dir) || '.'}`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------
// Credentials

/// draft-uberti-behave-turn-rest: username "<expiry>:<user>", password
/// base64(HMAC-SHA1(secret, username)).
function rest_credentials(secret, expiry_unix) {
  const username = `${expiry_unix}:${USER}`;
  return { username, credential: crypto.createHmac('sha1', secret).update(username).digest('base64') };
}

/// Every run for one transport: two that must connect, two that must be refused.
function runs_for(transport, secrets) {
  const now = Math.floor(Date.now() / 1000);
  return [
    { transport, credentials: 'static', expect: 'connect', username: USER, credential: secrets.password },
    { transport, credentials: 'rest', expect: 'connect', ...rest_credentials(secrets.secret, now + 3600) },
    { transport, credentials: 'static-wrong-password', expect: 'reject-401', username: USER, credential: `${secrets.password}-wrong` },
    { transport, credentials: 'rest-expired', expect: 'reject-401', ...rest_credentials(secrets.secret, now - 600) },
  ];
}

// ---------------------------------------------------------------------------
// Checks on what the page returned

function check_exchange(run, r, relay, count) {
  const problems = [];
  if (r.failure) problems.push(r.failure);
  for (const [to, from] of [['a', 'b'], ['b', 'a']]) {
    const got = r.received[to];
    if (got.length !== count) {
      problems.push(`peer ${to} received ${got.length}/${count} messages`);
      continue;
    }
    const bad = got.findIndex((m, i) => m !== `${from}->${to} #${i} ${'x'.repeat(i * 40)}`);
    if (bad >= 0) problems.push(`peer ${to}: message ${bad} out of order or corrupted`);
  }
  if (!r.failure) {
    for (const name of ['a', 'b']) {
      const s = r.selected[name];
      if (!s) {
        problems.push(`peer ${name}: getStats() shows no selected candidate pair`);
        continue;
      }
      if (s.local.type !== 'relay' || s.remote.type !== 'relay') {
        problems.push(`peer ${name}: selected pair is ${s.local.type}/${s.remote.type}, expected relay/relay`);
      }
      const expected_protocol = run.transport;  // udp, tcp or tls
      if (s.local.relay_protocol !== expected_protocol) {
        problems.push(`peer ${name}: local relayProtocol is ${s.local.relay_protocol}, expected ${expected_protocol}`);
      }
      for (const [side, c] of [['local', s.local], ['remote', s.remote]]) {
        if (c.address !== '127.0.0.1' || !(c.port >= relay.low && c.port <= relay.high)) {
          problems.push(`peer ${name}: ${side} relay address ${c.address}:${c.port} is not 127.0.0.1:${relay.low}-${relay.high}`);
        }
      }
    }
  }
  return problems;
}

function check_rejection(r) {
  const problems = [];
  if (r.failure) problems.push(r.failure);
  const relays = r.candidates.filter((c) => c.type === 'relay');
  if (relays.length) problems.push(`got ${relays.length} relay candidate(s) with bad credentials: ${relays.map((c) => `${c.address}:${c.port}`).join(', ')}`);
  if (!r.errors.some((e) => e.code === 401)) {
    const seen = r.errors.map((e) => `${e.code} ${e.text}`).join('; ') || 'none';
    const when = r.gathering_complete ? 'gathering completed' : `gathering still running after ${NEGATIVE_RUN_MS} ms`;
    problems.push(`no icecandidateerror 401: ${when} (errors: ${seen})`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Summary

function print_summary(results, header) {
  const rows = [['transport', 'credentials', 'expect', 'result', 'connect ms', 'total ms', 'detail']];
  for (const r of results) {
    rows.push([
      r.transport, r.credentials, r.expect, r.result,
      r.connect_ms === null || r.connect_ms === undefined ? '-' : String(r.connect_ms),
      r.total_ms === null || r.total_ms === undefined ? '-' : String(r.total_ms),
      r.detail,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.slice().map((row) => (i === 6 ? 0 : row[i].length))));
  const line = (row) => row.map((cell, i) => (i === 6 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd();
  console.log('');
  console.log(header);
  console.log(line(rows[0]));
  console.log(line(widths.map((w, i) => (i === 6 ? '------' : '-'.repeat(w)))));
  for (const row of rows.slice(1)) console.log(line(row));
  const passed = results.filter((r) => r.result === 'PASS').length;
  console.log('');
  console.log(`browser: ${passed} passed, ${results.length - passed} failed`);
}

// ---------------------------------------------------------------------------
// Main

async function main(opts, state) {
  const chromium = await load_playwright();
  state.workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyturn-browser-'));
  const secrets = {
    password: crypto.randomBytes(12).toString('base64url'),
    secret: crypto.randomBytes(24).toString('base64url'),
  };
  const relay = await relay_port_window();
  const need_tls = opts.transports.includes('tls');

  let tls_files = null;
  const home = path.join(state.workdir, 'home');
  fs.mkdirSync(home);
  if (need_tls) {
    tls_files = make_tls_material(state.workdir);
    if (opts.tls_trust === 'nss') make_nss_db(home, tls_files.ca_pem);
  }

  // Every run is listed up front so that a failure anywhere still reports all of them.
  for (const t of opts.transports) state.results.push(...runs_for(t, secrets).map((r) => ({ ...r, result: 'NOT RUN', detail: '' })));

  // One server process (two for coturn: see server_instances), each with its
  // own ports and its own slice of the relay window.
  const families = server_instances(opts.server);
  const slice = Math.floor((relay.high - relay.low + 1) / families.length);
  const taken = new Set();
  const instance_of = {};  // credential family -> instance
  for (const [i, served] of families.entries()) {
    const port = await free_port(taken);
    taken.add(port);
    const tls_port = need_tls ? await free_port(taken) : null;
    if (tls_port) taken.add(tls_port);
    // anyturn's side HTTP server (metrics, credentials API): its own port, so
    // parallel runs never fight over the default 127.0.0.1:9641.
    const http_port = await free_port(taken);
    taken.add(http_port);
    const window = { low: relay.low + i * slice, high: relay.low + (i + 1) * slice - 1 };
    const command = server_command(opts.server, opts.binary, {
      port, tls_port, http_port, relay: window, realm: REALM, user: USER, password: secrets.password, secret: secrets.secret,
      tls_files, families: served, proxy: opts.via_haproxy,
    }, state.workdir);
    log(`server: ${opts.server} [${served.join('+')}] ${command.file} (listen 127.0.0.1:${port}`
      + `${tls_port ? `, tls 127.0.0.1:${tls_port}` : ''}, relay ${window.low}-${window.high})`);
    const server = new server_process(command, path.join(state.workdir, `server-${served.join('-')}.log`));
    state.servers.push(server);
    const instance = { server, port_of: { udp: port, tcp: port, tls: tls_port }, listener_problem: {} };
    if (opts.via_haproxy) {
      // TCP and TLS through haproxy; UDP straight to anyturn.
      const routes = [];
      for (const t of opts.transports.filter((x) => x !== 'udp')) {
        const front = await free_port(taken);
        taken.add(front);
        routes.push({ listen: front, backend: instance.port_of[t] });
        instance.port_of[t] = front;
      }
      const proxy = new server_process(haproxy_command(opts.haproxy, routes, state.workdir),
                                       path.join(state.workdir, 'haproxy.log'));
      state.servers.push(proxy);
      log(`haproxy (pid ${proxy.pid}): ${routes.map((r) => `127.0.0.1:${r.listen} -> ${r.backend}`).join(', ')} with send-proxy-v2`);
    }
    for (const f of served) instance_of[f] = instance;

    const ready = await wait_ready(server, 'udp', port, SERVER_START_MS);
    if (!ready.ok) throw new Error(`server not ready: ${ready.reason}`);
    log(`server: answering STUN on UDP after ${Math.round(ready.ms)} ms (pid ${server.pid})`);
    // A transport whose listener is missing fails its runs at once with a
    // clear reason instead of waiting for the browser to give up.
    for (const t of opts.transports.filter((x) => x !== 'udp')) {
      const probe = await wait_ready(server, t, instance.port_of[t], LISTENER_PROBE_MS);
      if (!probe.ok) instance.listener_problem[t] = probe.reason;
    }
  }

  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-proxy-server',
    '--disable-dev-shm-usage', '--mute-audio', '--no-default-browser-check',
    `--user-data-dir=${path.join(state.workdir, 'profile')}`,
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
    // Chromium honours only the last --disable-features switch: keep this the only one.
    '--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,OptimizationHints,Translate,NetworkTimeServiceQuerying',
    // Playwright's own defaults are off (ignoreDefaultArgs: true) so that the
    // line above stays the only --disable-features; these two it needs.
    '--remote-debugging-pipe', '--no-startup-window',
  ];
  if (need_tls && opts.tls_trust === 'ignore') args.push('--ignore-certificate-errors');
  const launch_start = performance.now();
  state.browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    ignoreDefaultArgs: true,
    args,
    env: { ...process.env, HOME: home },  // NSS DB at $HOME/.pki/nssdb
    timeout: BROWSER_LAUNCH_MS,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  // Playwright 1.65 no longer exposes the browser's process: find it among
  // our own children (the only other ones are the servers).
  const server_pids = new Set(state.servers.map((x) => x.pid));
  state.browser_pid = own_children().find((pid) => !server_pids.has(pid)) ?? null;
  log(`chromium ${state.browser.version()} up in ${Math.round(performance.now() - launch_start)} ms (pid ${state.browser_pid}, tls trust: ${opts.tls_trust})`);
  const context = await state.browser.newContext();

  for (const run of state.results) {
    const instance = instance_of[run.credentials.startsWith('rest') ? 'rest' : 'static'];
    if (!instance.server.running()) {
      run.result = 'FAIL';
      run.detail = `server ${instance.server.describe_exit()}`;
      continue;
    }
    if (instance.listener_problem[run.transport]) {
      run.result = 'FAIL';
      run.detail = instance.listener_problem[run.transport];
      continue;
    }
    const url = TURN_URL[run.transport](instance.port_of[run.transport]);
    const params = { url, username: run.username, credential: run.credential };
    const page = await context.newPage();
    try {
      const positive = run.expect === 'connect';
      const budget = positive ? POSITIVE_RUN_MS : NEGATIVE_RUN_MS;
      const evaluation = positive
        ? page.evaluate(relay_exchange, { ...params, count: opts.messages, timeout_ms: budget })
        : page.evaluate(gather_only, { ...params, timeout_ms: budget });
      const r = await Promise.race([
        evaluation,
        sleep(budget + EVALUATE_SLACK_MS).then(() => ({ failure: `page did not answer within ${budget + EVALUATE_SLACK_MS} ms`, received: { a: [], b: [] }, candidates: [], errors: [], selected: {} })),
      ]);
      const problems = positive ? check_exchange(run, r, relay, opts.messages) : check_rejection(r);
      run.result = problems.length ? 'FAIL' : 'PASS';
      run.total_ms = r.total_ms ?? null;
      if (positive) {
        run.connect_ms = r.connected_ms;
        const s = r.selected?.a;
        run.detail = problems.length
          ? `${problems.join('; ')}${r.errors?.length ? ` [icecandidateerror: ${r.errors.map((e) => e.code === undefined ? e.add_ice_candidate : `${e.code} ${e.text}`).join('; ')}]` : ''}`
          : `${opts.messages}x2 msgs, ${s.local.type}/${s.remote.type} ${s.local.relay_protocol}, ${s.local.address}:${s.local.port} <-> ${s.remote.address}:${s.remote.port}`;
      } else {
        const e401 = r.errors.find((e) => e.code === 401);
        run.detail = problems.length ? problems.join('; ') : `no relay candidate, icecandidateerror ${e401.code} "${e401.text}"`;
      }
    } finally {
      await Promise.race([page.close(), sleep(2000)]).catch(() => {});
    }
    log(`${run.transport}/${run.credentials}: ${run.result} ${run.total_ms ?? '-'} ms ${run.result === 'PASS' ? '' : run.detail}`);
  }
}

async function cleanup(state) {
  await close_browser(state);
  await Promise.all(state.servers.map((x) => x.stop()));
}

function remove_workdir(state, opts) {
  if (!state.workdir) return;
  if (opts.keep) console.log(`kept ${state.workdir}`);
  else fs.rmSync(state.workdir, { recursive: true, force: true });
  state.workdir = null;
}

const opts = parse_options(process.argv.slice(2));
const state = { results: [], servers: [], browser: null, browser_pid: null, workdir: null, interrupted: null };

// On SIGINT/SIGTERM: close the browser and stop the servers, which makes the
// run in progress fail at once; the normal path below then prints the
// summary and exits with 128+signal. A timer guards against a stuck path.
install_exit_handlers(state, (signal, code) => {
  state.interrupted = { signal, code };
  log(`${signal}: stopping`);
  cleanup(state);
  setTimeout(() => {
    remove_workdir(state, opts);
    process.exit(code);
  }, 7000).unref();
});

let fatal = null;
const started = performance.now();
try {
  await Promise.race([
    main(opts, state).then(() => {
      if (state.interrupted) throw new Error(`interrupted by ${state.interrupted.signal}`);
    }),
    sleep(SCRIPT_DEADLINE_MS).then(() => {
      throw new Error(`whole test exceeded ${SCRIPT_DEADLINE_MS} ms`);
    }),
  ]);
} catch (e) {
  fatal = state.interrupted ? new Error(`interrupted by ${state.interrupted.signal}`) : e;
}
const server_tails = state.servers.map((x) => [x.log_path, x.log_tail()]);
await cleanup(state);

for (const run of state.results) if (run.result === 'NOT RUN' && fatal) run.detail = 'not reached';
const failed = Boolean(fatal) || state.results.length === 0 || state.results.some((r) => r.result !== 'PASS');
if (failed) {
  for (const [file, tail] of server_tails) {
    console.log(`---- ${path.basename(file)} (last 60 lines)`);
    console.log(tail);
  }
}
print_summary(state.results, `TURN in Chromium against ${opts.server}${opts.via_haproxy ? ' behind haproxy (PROXY v2)' : ''} (${opts.transports.join(', ')}), ${Math.round(performance.now() - started)} ms`);
if (fatal) console.log(`FAIL: ${fatal.message}`);
remove_workdir(state, opts);
process.exit(state.interrupted ? state.interrupted.code : failed ? 1 : 0);
