#!/usr/bin/env node
// The browser relay check against TURN servers that are already running
// (the fleet test runs it inside a client network namespace, with
// `ip netns exec`). It starts no server: it opens headless Chromium and,
// for each --url, runs the same relay_exchange as browser_turn_test.mjs
// (two relay-only RTCPeerConnections with that single URL in iceServers, a
// DataChannel, messages both ways) and checks getStats(): the selected pair
// is relay/relay, the local relayProtocol matches the URL (udp, tcp, tls),
// and, with --expect-relay-ip, both relay candidates are on that address.
//
//   node relay_check.mjs --url URL [--url URL ...] --username U --credential C
//        [--expect-relay-ip IP] [--ca PEM] [--map NAME=IP ...] [--exclude IP ...]
//        [--messages N] [--chromium PATH] [--keep]
//
// --ca trusts a test CA in a fresh NSS database (certutil), so Chromium
// really verifies TURN TLS certificates. --map NAME=IP makes Chromium's
// resolver answer NAME (and "NAME.", the form a turns: host is looked up in)
// with IP; --exclude IP lets an address literal through the resolver rules
// (TURN over TCP and TLS goes through the resolver even for a literal;
// list every address the client may be redirected to). Prints one line per
// URL and "relay_check: P of N runs passed"; exits 0 only when all passed,
// 1 on a failure, 2 on a usage error.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { relay_exchange } from './page_checks.mjs';
import { close_browser, install_exit_handlers, make_nss_db, own_children } from './servers.mjs';

const RUN_MS = 10_000;
const SLACK_MS = 2_000;
const DEADLINE_MS = 60_000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log(`[relay_check ${new Date().toISOString().slice(11, 23)}]`, ...args);

function protocol_of(url) {
  if (url.startsWith('turns:')) return 'tls';
  return /[?&]transport=tcp\b/.test(url) ? 'tcp' : 'udp';
}

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', multiple: true, default: [] },
      username: { type: 'string' },
      credential: { type: 'string' },
      'expect-relay-ip': { type: 'string' },
      ca: { type: 'string' },
      map: { type: 'string', multiple: true, default: [] },
      exclude: { type: 'string', multiple: true, default: [] },
      messages: { type: 'string', default: '20' },
      chromium: { type: 'string', default: process.env.CHROMIUM_BIN || '/usr/bin/chromium' },
      keep: { type: 'boolean', default: Boolean(process.env.ANYTURN_KEEP_LOGS) },
    },
  });
  const errors = [];
  if (values.url.length === 0) errors.push('at least one --url');
  if (!values.username || !values.credential) errors.push('--username and --credential');
  const maps = values.map.map((m) => m.split('='));
  if (maps.some((m) => m.length !== 2 || !m[0] || !m[1])) errors.push('--map NAME=IP');
  const messages = Number(values.messages);
  if (!Number.isInteger(messages) || messages < 1 || messages > 1000) errors.push('--messages 1..1000');
  if (!fs.existsSync(values.chromium)) errors.push(`Chromium not found: ${values.chromium}`);
  if (values.ca && !fs.existsSync(values.ca)) errors.push(`--ca: no file ${values.ca}`);
  if (errors.length) {
    console.error(`relay_check: usage error: ${errors.join('; ')}`);
    process.exit(2);
  }
  return { ...values, maps, messages };
}

function problems_of(url, r, opts) {
  const problems = [];
  if (r.failure) problems.push(r.failure);
  for (const [to, from] of [['a', 'b'], ['b', 'a']]) {
    const got = r.received?.[to] ?? [];
    if (got.length !== opts.messages) problems.push(`peer ${to} received ${got.length}/${opts.messages} messages`);
    else if (got.some((m, i) => m !== `${from}->${to} #${i} ${'x'.repeat(i * 40)}`)) problems.push(`peer ${to}: messages out of order or corrupted`);
  }
  if (r.failure) return problems;
  for (const name of ['a', 'b']) {
    const s = r.selected?.[name];
    if (!s) {
      problems.push(`peer ${name}: no selected candidate pair`);
      continue;
    }
    if (s.local.type !== 'relay' || s.remote.type !== 'relay') problems.push(`peer ${name}: selected pair ${s.local.type}/${s.remote.type}, expected relay/relay`);
    if (s.local.relay_protocol !== protocol_of(url)) problems.push(`peer ${name}: relayProtocol ${s.local.relay_protocol}, expected ${protocol_of(url)}`);
    if (opts['expect-relay-ip']) {
      for (const [side, c] of [['local', s.local], ['remote', s.remote]]) {
        if (c.address !== opts['expect-relay-ip']) problems.push(`peer ${name}: ${side} relay candidate ${c.address}:${c.port}, expected ${opts['expect-relay-ip']}`);
      }
    }
  }
  return problems;
}

async function main(opts, state) {
  let chromium;
  try {
    chromium = (await import('playwright-core')).chromium;
  } catch (e) {
    console.error(`relay_check: cannot load playwright-core (${e.message}); run npm ci in tests/interop/browser`);
    process.exit(2);
  }
  state.workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyturn-relay-check-'));
  const home = path.join(state.workdir, 'home');
  fs.mkdirSync(home);
  if (opts.ca) make_nss_db(home, opts.ca);
  // The first MAP rule that matches wins: the names first, then the rest to
  // NOTFOUND (no lookups leave the lab). EXCLUDE rules apply before any MAP.
  const rules = [];
  for (const [name, ip] of opts.maps) rules.push(`MAP ${name} ${ip}`, `MAP ${name}. ${ip}`);
  rules.push('MAP * ~NOTFOUND', 'EXCLUDE localhost', ...opts.exclude.map((ip) => `EXCLUDE ${ip}`));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-proxy-server',
    '--disable-dev-shm-usage', '--mute-audio', '--no-default-browser-check',
    `--user-data-dir=${path.join(state.workdir, 'profile')}`,
    `--host-resolver-rules=${rules.join(', ')}`,
    '--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,OptimizationHints,Translate,NetworkTimeServiceQuerying',
    '--remote-debugging-pipe', '--no-startup-window',
  ];
  state.browser = await chromium.launch({
    executablePath: opts.chromium, headless: true, ignoreDefaultArgs: true, args,
    env: { ...process.env, HOME: home }, timeout: 15_000,
    handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
  });
  state.browser_pid = own_children()[0] ?? null;
  log(`chromium ${state.browser.version()} (pid ${state.browser_pid})`);
  const context = await state.browser.newContext();
  for (const url of opts.url) {
    const page = await context.newPage();
    const run = { url, result: 'FAIL', detail: '' };
    state.results.push(run);
    try {
      const r = await Promise.race([
        page.evaluate(relay_exchange, { url, username: opts.username, credential: opts.credential, count: opts.messages, timeout_ms: RUN_MS }),
        sleep(RUN_MS + SLACK_MS).then(() => ({ failure: `page did not answer within ${RUN_MS + SLACK_MS} ms` })),
      ]);
      const problems = problems_of(url, r, opts);
      const s = r.selected?.a;
      run.result = problems.length ? 'FAIL' : 'PASS';
      run.detail = problems.length
        ? `${problems.join('; ')}${r.errors?.length ? ` [icecandidateerror: ${r.errors.map((e) => `${e.code} ${e.text} ${e.url ?? ''}`).join('; ')}]` : ''}`
        : `connect ${r.connected_ms} ms, ${opts.messages}x2 msgs, relay/relay ${s.local.relay_protocol}, ${s.local.address}:${s.local.port} <-> ${s.remote.address}:${s.remote.port}`;
    } finally {
      await Promise.race([page.close(), sleep(2000)]).catch(() => {});
    }
    console.log(`${run.result} ${url}: ${run.detail}`);
  }
}

async function cleanup(state) {
  await close_browser(state);
}

const opts = parse(process.argv.slice(2));
const state = { results: [], browser: null, browser_pid: null, workdir: null };
install_exit_handlers(state, (signal, code) => {
  cleanup(state).finally(() => process.exit(code));
});
let fatal = null;
try {
  await Promise.race([main(opts, state), sleep(DEADLINE_MS).then(() => { throw new Error(`exceeded ${DEADLINE_MS} ms`); })]);
} catch (e) {
  fatal = e;
}
await cleanup(state);
if (state.workdir) {
  if (opts.keep) console.log(`kept ${state.workdir}`);
  else fs.rmSync(state.workdir, { recursive: true, force: true });
}
const passed = state.results.filter((r) => r.result === 'PASS').length;
if (fatal) console.log(`relay_check: FAIL: ${fatal.message}`);
console.log(`relay_check: ${passed} of ${opts.url.length} runs passed`);
process.exit(!fatal && passed === opts.url.length ? 0 : 1);
