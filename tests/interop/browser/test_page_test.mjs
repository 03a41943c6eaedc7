#!/usr/bin/env node
// The /test self-test page (http.test_page) in headless Chromium, against the
// real anyturn daemon with UDP, TCP and TLS listeners.
//
//   --mode link  The turns: URL the node hands out points at a loopback port
//                nothing listens on. The script POSTs /admin/test-link (admin
//                key), opens the link, waits for the page's data-done, and
//                checks that UDP and TCP pass (relay/relay, an RTT from
//                getStats()) and TLS fails with an error shown. Opening the
//                same link again must fail (single use). A screenshot is saved.
//   --mode key   All three URLs are right. The script opens /test, pastes a
//                tenant API key into the page and runs it: all three pass.
//
//   node test_page_test.mjs [ANYTURN_BINARY] --mode link|key [--artifacts DIR]
//        [--chromium PATH] [--keep]
//
// Exit 0 when every check passed, 1 on a failure, 2 on a usage error. See
// README.md in this folder.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  close_browser, free_port, install_exit_handlers, make_nss_db, make_tls_material, own_children, relay_port_window, server_process,
  wait_ready,
} from './servers.mjs';

const SCRIPT_DEADLINE_MS = 80_000;
const SERVER_START_MS = 5_000;
const BROWSER_LAUNCH_MS = 15_000;
const PAGE_DONE_MS = 45_000;  // three checks of at most 10 s each, and slack

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log(`[test-page ${new Date().toISOString().slice(11, 23)}]`, ...args);

function usage() {
  return `usage: node test_page_test.mjs [ANYTURN_BINARY] --mode link|key [options]

  ANYTURN_BINARY      anyturn executable (default: $ANYTURN_BIN, build/anyturn)
  --mode MODE         link: one-time link, TLS made to fail; key: pasted API key, all pass
  --artifacts DIR     where the screenshot goes (default: the temporary directory)
  --chromium PATH     Chromium executable (default: $CHROMIUM_BIN or /usr/bin/chromium)
  --keep              keep the temporary directory (also: ANYTURN_KEEP_LOGS=1)
  -h, --help          this text`;
}

function parse_options(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        mode: { type: 'string', default: 'link' },
        artifacts: { type: 'string' },
        chromium: { type: 'string', default: process.env.CHROMIUM_BIN || '/usr/bin/chromium' },
        keep: { type: 'boolean', default: Boolean(process.env.ANYTURN_KEEP_LOGS) },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    console.error(`error: ${e.message}`);
    console.error(usage());
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(usage());
    process.exit(0);
  }
  const errors = [];
  if (!['link', 'key'].includes(values.mode)) errors.push(`--mode: expected link or key, got '${values.mode}'`);
  if (positionals.length > 1) errors.push(`unexpected arguments: ${positionals.slice(1).join(' ')}`);
  const given = positionals[0] || process.env.ANYTURN_BIN || process.env.ANYTURN_BINARY || 'build/anyturn';
  const binary = path.resolve(given);
  if (!fs.existsSync(binary)) errors.push(`server binary not found: ${binary}`);
  if (!fs.existsSync(values.chromium)) errors.push(`Chromium not found: ${values.chromium}`);
  if (errors.length) {
    for (const e of errors) console.error(`error: ${e}`);
    console.error(usage());
    process.exit(2);
  }
  return { mode: values.mode, binary, chromium: values.chromium, artifacts: values.artifacts, keep: values.keep };
}

async function load_playwright() {
  try {
    return (await import('playwright-core')).chromium;
  } catch (e) {
    console.error(`error: cannot load playwright-core (${e.message}); run: npm ci --prefix tests/interop/browser`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------

const problems = [];
const expect = (ok, what) => {
  if (!ok) problems.push(what);
  return ok;
};

async function http_json(url, init) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body, text };
}

async function read_rows(page) {
  return page.evaluate(() => ['udp', 'tcp', 'tls'].map((kind) => {
    const row = document.getElementById(`result-${kind}`);
    const cell = (cls) => row.querySelector(`.${cls}`).textContent;
    return { kind, ...row.dataset, url: cell('url'), pair: cell('pair'), rtt: cell('rtt'), detail: cell('detail') };
  }));
}

function print_rows(rows) {
  console.log('transport  result  relay  rtt ms  selected pair / error');
  for (const r of rows) {
    const info = r.status === 'pass' ? r.pair : r.detail;
    console.log(`${r.kind.padEnd(9)}  ${(r.status ?? '?').padEnd(6)}  ${(r.relayProtocol ?? '-').padEnd(5)}  ${(r.rttMs ?? '-').padEnd(6)}  ${info}`);
  }
}

function check_pass(row, relay_protocol) {
  expect(row.status === 'pass', `${row.kind}: expected pass, got ${row.status} (${row.detail})`);
  if (row.status !== 'pass') return;
  expect(row.localType === 'relay' && row.remoteType === 'relay',
         `${row.kind}: selected pair is ${row.localType}/${row.remoteType}, not relay/relay`);
  expect(row.relayProtocol === relay_protocol, `${row.kind}: relayProtocol ${row.relayProtocol}, expected ${relay_protocol}`);
  const rtt = Number(row.rttMs);
  expect(row.rttMs !== undefined && Number.isFinite(rtt) && rtt >= 0 && rtt < 5000,
         `${row.kind}: no RTT from getStats() (data-rtt-ms=${row.rttMs})`);
  expect(/^relay 127\.0\.0\.1:\d+ udp via /.test(row.pair), `${row.kind}: pair text '${row.pair}'`);
}

async function open_page(context, url, console_errors) {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') console_errors.push(m.text());
  });
  page.on('pageerror', (e) => console_errors.push(String(e)));
  await page.goto(url, { timeout: 10_000 });
  return page;
}

async function wait_done(page) {
  await page.waitForSelector('html[data-done="true"]', { timeout: PAGE_DONE_MS, state: 'attached' });
}

async function main(opts, state) {
  const chromium = await load_playwright();
  state.workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyturn-test-page-'));
  const artifacts = path.resolve(opts.artifacts ?? path.join(state.workdir, 'artifacts'));
  fs.mkdirSync(artifacts, { recursive: true });
  const home = path.join(state.workdir, 'home');
  fs.mkdirSync(home);
  const tls_files = make_tls_material(state.workdir);
  make_nss_db(home, tls_files.ca_pem);

  const relay = await relay_port_window();
  const taken = new Set();
  const next_port = async () => {
    const p = await free_port(taken);
    taken.add(p);
    return p;
  };
  const port = await next_port();
  const tls_port = await next_port();
  const http_port = await next_port();
  // Link mode: the turns: URL names a port nothing listens on (picked free
  // now and never bound), so that the TLS check must fail.
  const turns_port = opts.mode === 'link' ? await next_port() : tls_port;
  const admin_key = crypto.randomBytes(24).toString('hex');
  const api_key = crypto.randomBytes(24).toString('hex');
  const urls = [
    `turn:127.0.0.1:${port}?transport=udp`,
    `turn:127.0.0.1:${port}?transport=tcp`,
    `turns:127.0.0.1:${turns_port}?transport=tcp`,
  ];
  const config = path.join(state.workdir, 'anyturn.yaml');
  fs.writeFileSync(config, [
    'http:',
    '  test_page: true',
    '  urls:',
    `    turn: [${urls.map((u) => JSON.stringify(u)).join(', ')}]`,
    '',
  ].join('\n'));
  const args = [
    '--config', config,
    '--listen', `127.0.0.1:${port}`,
    '--tls-listen', `127.0.0.1:${tls_port}`, '--tls-cert', tls_files.cert, '--tls-key', tls_files.key,
    '--relay-ip', '127.0.0.1', '--relay-ports', `${relay.low}-${relay.high}`,
    '--realm', 'anyturn',
    '--auth-secret', crypto.randomBytes(24).toString('base64url'),
    '--allow-peer', '127.0.0.0/8',
    '--threads', '2', '--log-level', 'info',
    '--http-listen', `127.0.0.1:${http_port}`,
    '--admin-key', admin_key,
    '--api-key', api_key,
  ];
  const env = { ...process.env, XDG_STATE_HOME: path.join(state.workdir, 'state') };
  log(`anyturn: listen ${port} (udp+tcp), tls ${tls_port}, http ${http_port}, turns URL port ${turns_port}`
      + `${opts.mode === 'link' ? ' (closed on purpose)' : ''}, relay ${relay.low}-${relay.high}`);
  const server = new server_process({ file: opts.binary, args, env }, path.join(state.workdir, 'anyturn.log'));
  state.servers.push(server);
  for (const t of ['udp', 'tls']) {
    const ready = await wait_ready(server, t, t === 'udp' ? port : tls_port, SERVER_START_MS);
    if (!ready.ok) throw new Error(`server not ready: ${ready.reason}`);
  }
  const base = `http://127.0.0.1:${http_port}`;
  let page_ready = false;
  for (let i = 0; i < 50 && !page_ready; ++i) {
    try {
      page_ready = (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
    } catch {
      await sleep(100);
    }
  }
  if (!page_ready) throw new Error('the side HTTP server did not answer /healthz');

  const launch_start = performance.now();
  state.browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    ignoreDefaultArgs: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-proxy-server',
      '--disable-dev-shm-usage', '--mute-audio', '--no-default-browser-check',
      `--user-data-dir=${path.join(state.workdir, 'profile')}`,
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
      '--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,OptimizationHints,Translate,NetworkTimeServiceQuerying',
      '--remote-debugging-pipe', '--no-startup-window',
    ],
    env: { ...process.env, HOME: home },
    timeout: BROWSER_LAUNCH_MS,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  state.browser_pid = own_children().find((pid) => pid !== server.pid) ?? null;
  log(`chromium ${state.browser.version()} up in ${Math.round(performance.now() - launch_start)} ms`);
  const context = await state.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const console_errors = [];
  const screenshot = path.join(artifacts, opts.mode === 'link' ? 'test-page.png' : 'test-page-api-key.png');

  if (opts.mode === 'link') {
    const link = await http_json(`${base}/admin/test-link`, { method: 'POST', headers: { Authorization: `Bearer ${admin_key}` } });
    if (!expect(link.status === 201 && link.body?.url, `POST /admin/test-link: ${link.status} ${link.text}`)) return;
    expect(link.body.expires_in === 600, `expires_in ${link.body.expires_in}`);
    expect(/^[0-9a-f]{64}$/.test(link.body.token), `token '${link.body.token}'`);
    expect(link.body.url === `${base}/test#token=${link.body.token}`, `url '${link.body.url}'`);
    log(`link: ${link.body.url.replace(/token=.*/, 'token=…')}`);

    const started = performance.now();
    const page = await open_page(context, link.body.url, console_errors);
    await wait_done(page);
    const rows = await read_rows(page);
    log(`page done in ${Math.round(performance.now() - started)} ms`);
    print_rows(rows);
    expect(!(await page.evaluate(() => location.hash)), 'the token stayed in the address bar');
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.close();
    const by = Object.fromEntries(rows.map((r) => [r.kind, r]));
    check_pass(by.udp, 'udp');
    check_pass(by.tcp, 'tcp');
    expect(by.tls.status === 'fail', `tls: expected fail (closed port), got ${by.tls.status}`);
    expect(by.tls.detail.length > 0 && by.tls.error, 'tls: no error shown');

    // The same link again: spent.
    const again = await open_page(context, link.body.url, console_errors);
    await wait_done(again);
    const error = await again.evaluate(() => document.body.dataset.error);
    const second = await read_rows(again);
    await again.close();
    log(`second use: ${error}`);
    expect(/already used/.test(error ?? ''), `second use of the link: error '${error}'`);
    expect(second.every((r) => r.status === 'fail'), 'second use: rows not failed');

    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const line of ['anyturn_http_test_links_total{result="issued"} 1', 'anyturn_http_test_links_total{result="redeemed"} 1',
                        'anyturn_http_test_links_total{result="reused"} 1']) {
      expect(metrics.includes(`${line}\n`), `metrics: no '${line}'`);
    }
  } else {
    const started = performance.now();
    const page = await open_page(context, `${base}/test`, console_errors);
    await page.fill('#api-key', api_key);
    await page.click('#run');
    await wait_done(page);
    const rows = await read_rows(page);
    log(`page done in ${Math.round(performance.now() - started)} ms`);
    print_rows(rows);
    expect(await page.evaluate(() => document.getElementById('api-key').value) === '', 'the key stayed in the input');
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.close();
    const by = Object.fromEntries(rows.map((r) => [r.kind, r]));
    check_pass(by.udp, 'udp');
    check_pass(by.tcp, 'tcp');
    check_pass(by.tls, 'tls');

    // A wrong key: the page says so.
    const wrong = await open_page(context, `${base}/test`, console_errors);
    await wrong.fill('#api-key', 'not-the-key-0123456789');
    await wrong.click('#run');
    await wait_done(wrong);
    const error = await wrong.evaluate(() => document.body.dataset.error);
    await wrong.close();
    expect(/API key refused: HTTP 401/.test(error ?? ''), `wrong key: error '${error}'`);
  }
  // The CSP must not have blocked anything (the inline script ran, since
  // data-done is set; nothing else may have been attempted).
  const csp = console_errors.filter((e) => /Content Security Policy/i.test(e));
  expect(csp.length === 0, `CSP violations: ${csp.join(' | ')}`);
  log(`screenshot: ${screenshot}`);
}

// ---------------------------------------------------------------------------

const opts = parse_options(process.argv.slice(2));
const state = { servers: [], browser: null, browser_pid: null, workdir: null };

install_exit_handlers(state, (signal, code) => {
  log(`${signal}: stopping`);
  close_browser(state).finally(() => Promise.all(state.servers.map((x) => x.stop())).finally(() => process.exit(code)));
});

let fatal = null;
const started = performance.now();
try {
  await Promise.race([
    main(opts, state),
    sleep(SCRIPT_DEADLINE_MS).then(() => {
      throw new Error(`whole test exceeded ${SCRIPT_DEADLINE_MS} ms`);
    }),
  ]);
} catch (e) {
  fatal = e;
}
const tails = state.servers.map((x) => x.log_tail());
await close_browser(state);
await Promise.all(state.servers.map((x) => x.stop()));
const failed = Boolean(fatal) || problems.length > 0;
if (failed) {
  console.log('---- anyturn.log (last 60 lines)');
  for (const t of tails) console.log(t);
}
for (const p of problems) console.log(`FAIL: ${p}`);
if (fatal) console.log(`FAIL: ${fatal.stack ?? fatal.message}`);
console.log(`test page (${opts.mode}): ${failed ? 'FAIL' : 'PASS'} in ${Math.round(performance.now() - started)} ms`);
if (state.workdir) {
  if (opts.keep || failed) console.log(`kept ${state.workdir}`);
  else fs.rmSync(state.workdir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
