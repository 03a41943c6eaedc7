// Starting and probing the TURN server under test (anyturn, or coturn for a
// side-by-side run), plus the throwaway TLS material and the loopback ports
// the browser test needs. Every process is started here with a known PID and
// stopped by that PID; every wait is bounded.

import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Ports

function bind_tcp(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(null));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}

function bind_udp(port) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(null);
    });
    socket.bind({ address: '127.0.0.1', port, exclusive: true }, () => resolve(socket));
  });
}

/// The kernel's ephemeral port range [lo, hi].
function ephemeral_range() {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    return [32768, 60999];  // not Linux, or no procfs: the usual defaults
  }
}

const close_handle = (h) => new Promise((resolve) => (h ? h.close(() => resolve()) : resolve()));

/// A loopback port that is free for TCP and for UDP at the same time, drawn
/// from 32200-32766: below the kernel's ephemeral range, so that no client
/// socket of a parallel test takes it before the server binds it, and above
/// 1024 (Chromium silently refuses TURN ports below 1024). The C++ tests and
/// tests/interop/lib.sh draw from 30000-32199. The kernel picks if the
/// ephemeral range covers the block.
export async function free_port(avoid = new Set()) {
  const [lo, hi] = ephemeral_range();
  const use_block = 32766 < lo || 32200 > hi;
  for (let attempt = 0; attempt < 200; ++attempt) {
    const tcp = await bind_tcp(use_block ? 32200 + crypto.randomInt(567) : 0);
    if (!tcp) continue;
    const port = tcp.address().port;
    const udp = avoid.has(port) || port < 1024 ? null : await bind_udp(port);
    await close_handle(tcp);
    if (udp) {
      await close_handle(udp);
      return port;
    }
  }
  throw new Error('no free loopback port for both TCP and UDP after 200 attempts');
}

async function udp_ports_free(low, high) {
  for (let port = low; port <= high; ++port) {
    const socket = await bind_udp(port);
    if (!socket) return false;
    await close_handle(socket);
  }
  return true;
}

/// A 100-port relay window outside the kernel's ephemeral range, so relay
/// sockets never collide with ports the kernel hands out. The six candidate
/// windows sit at the top of a 10000-port block (base+9400 .. base+9999;
/// tests/interop's uclient slots start at base+8000); they are tried in
/// random order and the first whose ports are all free right now wins, so
/// concurrent test runs rarely share relay ports.
export async function relay_port_window() {
  const [lo, hi] = ephemeral_range();
  const base = [20000, 10000, 1100].find((b) => b + 9999 < lo || b > hi);
  if (base === undefined) throw new Error(`no relay window outside the ephemeral range ${lo}-${hi}`);
  const windows = [0, 1, 2, 3, 4, 5].map((i) => ({ low: base + 9400 + 100 * i, high: base + 9499 + 100 * i }));
  for (let i = windows.length - 1; i > 0; --i) {
    const j = crypto.randomInt(i + 1);
    [windows[i], windows[j]] = [windows[j], windows[i]];
  }
  for (const w of windows) {
    if (await udp_ports_free(w.low, w.high)) return w;
  }
  return windows[0];  // all busy: the server skips ports it cannot bind
}

// ---------------------------------------------------------------------------
// TLS material

function run_tool(file, args, options = {}) {
  return execFileSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000, ...options });
}

/// Writes a throwaway CA and a server certificate it signed (ECDSA P-256,
/// SAN IP:127.0.0.1, valid one day) into `dir`. Returns the paths.
export function make_tls_material(dir) {
  const ca_key = path.join(dir, 'ca.key');
  const ca_pem = path.join(dir, 'ca.pem');
  const key = path.join(dir, 'server.key');
  const csr = path.join(dir, 'server.csr');
  const cert = path.join(dir, 'server.pem');
  const ext = path.join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run_tool('openssl', [
    'req', '-x509', ...ec, '-days', '1', '-subj', '/CN=anyturn browser test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', ca_key, '-out', ca_pem,
  ]);
  run_tool('openssl', ['req', ...ec, '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', csr]);
  fs.writeFileSync(ext, [
    'subjectAltName=IP:127.0.0.1',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  run_tool('openssl', [
    'x509', '-req', '-in', csr, '-CA', ca_pem, '-CAkey', ca_key, '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`,
    '-days', '1', '-extfile', ext, '-out', cert,
  ]);
  return { ca_pem, cert, key };
}

/// Creates the NSS database Chromium reads on Linux ($HOME/.pki/nssdb) under
/// `home`, with `ca_pem` trusted for TLS servers. Needs certutil
/// (Debian package libnss3-tools).
export function make_nss_db(home, ca_pem) {
  const db = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(db, { recursive: true, mode: 0o700 });
  run_tool('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  run_tool('certutil', ['-A', '-d', `sql:${db}`, '-n', 'anyturn browser test CA', '-t', 'C,,', '-i', ca_pem]);
  return db;
}

// ---------------------------------------------------------------------------
// Server process

/// How many server processes a run against `kind` needs, and which
/// credential families each serves. anyturn takes a static user and a REST
/// secret at once; coturn lets a REST secret override static users, so the
/// coturn reference run starts one instance per family.
export function server_instances(kind) {
  return kind === 'coturn' ? [['static'], ['rest']] : [['static', 'rest']];
}

/// Command line for the server under test. `cfg` holds the ports, the relay
/// window, the credential families it serves, the credentials and (when TLS
/// runs) the certificate.
export function server_command(kind, binary, cfg, workdir) {
  const { port, tls_port, http_port, relay, realm, user, password, secret, tls_files, families, proxy } = cfg;
  if (kind === 'anyturn') {
    // Behind haproxy (proxy): TCP and TLS connections start with a PROXY
    // header, accepted from 127.0.0.1 (haproxy) only.
    const proxy_args = proxy ? ['--proxy-protocol', '--proxy-trusted', '127.0.0.1/32'] : [];
    const args = [
      '--listen', `127.0.0.1:${port}`, ...proxy_args,
      '--relay-ip', '127.0.0.1',
      '--relay-ports', `${relay.low}-${relay.high}`,
      '--realm', realm,
      '--user', `${user}:${password}`,
      '--auth-secret', secret,
      '--allow-peer', '127.0.0.0/8',
      '--threads', '2',
      '--log-level', 'info',
    ];
    if (http_port) args.push('--http-listen', `127.0.0.1:${http_port}`);
    if (tls_port) {
      args.push('--tls-listen', `127.0.0.1:${tls_port}`, ...proxy_args, '--tls-cert', tls_files.cert,
                '--tls-key', tls_files.key);
    }
    // Its state directory (the generated nonce key) stays in the workdir.
    const env = { ...process.env, XDG_STATE_HOME: `${workdir}/state` };
    return { file: binary, args, env };
  }
  if (kind === 'coturn') {
    const tag = families.join('-');
    const args = [
      '-n', '--no-cli', '--no-rfc5780', '--no-dtls', '--simple-log', '--log-file=stdout',
      `--pidfile=${path.join(workdir, `turnserver-${tag}.pid`)}`,
      `--db=${path.join(workdir, `turndb-${tag}`)}`,
      '--listening-ip=127.0.0.1', `--listening-port=${port}`,
      '--relay-ip=127.0.0.1', `--min-port=${relay.low}`, `--max-port=${relay.high}`,
      `--realm=${realm}`, '--allow-loopback-peers',
    ];
    if (families.includes('static')) args.push('--lt-cred-mech', `--user=${user}:${password}`);
    if (families.includes('rest')) args.push('--use-auth-secret', `--static-auth-secret=${secret}`);
    if (tls_port) args.push(`--tls-listening-port=${tls_port}`, `--cert=${tls_files.cert}`, `--pkey=${tls_files.key}`);
    else args.push('--no-tls');
    return { file: binary, args };
  }
  throw new Error(`unknown server kind '${kind}'`);
}

/// haproxy in TCP mode in front of anyturn: each of `routes` ({ listen,
/// backend }) forwards a loopback port to a loopback backend port with a
/// PROXY protocol v2 header (send-proxy-v2); TLS passes through untouched.
/// Returns the command for server_process (foreground, -db).
export function haproxy_command(binary, routes, workdir) {
  const lines = [
    'global',
    '  maxconn 512',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
  ];
  for (const [i, r] of routes.entries()) {
    lines.push(`frontend f${i}`, `  bind 127.0.0.1:${r.listen}`, `  default_backend b${i}`);
    lines.push(`backend b${i}`, `  server anyturn 127.0.0.1:${r.backend} send-proxy-v2`);
  }
  const config = path.join(workdir, 'haproxy.cfg');
  fs.writeFileSync(config, `${lines.join('\n')}\n`);
  return { file: binary, args: ['-f', config, '-db'] };
}

/// PIDs of this process's live children, from /proc (Linux). Used to learn
/// the PID of the browser Playwright started for us, so that it can be
/// stopped by PID if closing it politely fails.
export function own_children() {
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows "pid (comm) state"; comm may contain spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') pids.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

/// A started server: its PID, its log file and whether it is still running.
export class server_process {
  constructor(command, log_path) {
    this.command = command;
    this.log_path = log_path;
    this.exit = null;  // { code, signal } once it has exited
    const log = fs.openSync(log_path, 'a');
    this.child = spawn(command.file, command.args,
                       { stdio: ['ignore', log, log], env: command.env ?? process.env });
    fs.closeSync(log);
    this.pid = this.child.pid;
    this.spawn_error = null;
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.spawn_error = err;
        this.exit = { code: null, signal: null };
        resolve();
      });
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
  }

  running() {
    return this.exit === null && this.pid !== undefined;
  }

  describe_exit() {
    if (this.spawn_error) return `could not start ${this.command.file}: ${this.spawn_error.message}`;
    if (!this.exit) return 'running';
    return this.exit.signal ? `killed by ${this.exit.signal}` : `exited with code ${this.exit.code}`;
  }

  /// SIGTERM, then SIGKILL after `grace_ms`. Only this PID is signalled.
  async stop(grace_ms = 3000) {
    if (!this.running()) return;
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      return;
    }
    const stopped = await Promise.race([this.exited.then(() => true), sleep(grace_ms).then(() => false)]);
    if (!stopped) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await Promise.race([this.exited, sleep(1000)]);
    }
  }

  /// For process 'exit' handlers, where nothing asynchronous runs any more.
  kill_now() {
    if (!this.running()) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  log_tail(lines = 60) {
    try {
      const text = fs.readFileSync(this.log_path, 'utf8').trimEnd().split('\n');
      return text.slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

// ---------------------------------------------------------------------------
// Readiness probes

/// One STUN Binding request (RFC 8489) over UDP; resolves true when a Binding
/// success response with the same transaction ID comes back within `ms`.
function stun_binding_udp(port, ms) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const txid = crypto.randomBytes(12);
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0);   // Binding request
    request.writeUInt16BE(0, 2);        // no attributes
    request.writeUInt32BE(0x2112a442, 4);
    txid.copy(request, 8);
    const done = (ok) => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('error', () => done(false));
    socket.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(txid)) done(true);
    });
    socket.send(request, port, '127.0.0.1');
  });
}

function tcp_accepts(port, ms) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function tls_handshakes(port, ms) {
  return new Promise((resolve) => {
    // Only "does it complete a handshake"; the browser does the real verification.
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const probes = { udp: stun_binding_udp, tcp: tcp_accepts, tls: tls_handshakes };

/// Polls `transport` on `port` until it answers, the server exits, or
/// `deadline_ms` passes. Returns { ok, ms, reason }.
export async function wait_ready(server, transport, port, deadline_ms) {
  const start = performance.now();
  while (performance.now() - start < deadline_ms) {
    if (!server.running()) return { ok: false, ms: performance.now() - start, reason: `server ${server.describe_exit()}` };
    const left = deadline_ms - (performance.now() - start);
    if (await probes[transport](port, Math.max(50, Math.min(200, left)))) {
      return { ok: true, ms: performance.now() - start };
    }
    await sleep(50);
  }
  const what = { udp: 'answer a STUN Binding on UDP', tcp: 'accept TCP', tls: 'complete a TLS handshake' }[transport];
  return { ok: false, ms: deadline_ms, reason: `server did not ${what} on 127.0.0.1:${port} within ${deadline_ms} ms` };
}

// Closes state.browser (at most 5 s), else kills it: Playwright starts
// Chromium as a process-group leader, so the group goes with it.
export async function close_browser(state) {
  if (!state.browser) return;
  const closed = await Promise.race([state.browser.close().then(() => true, () => false), sleep(5000).then(() => false)]);
  if (!closed && state.browser_pid) {
    for (const target of [-state.browser_pid, state.browser_pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  state.browser = null;
}

// The process-level cleanup every browser script needs, installed once at
// start. On 'exit' (nothing asynchronous runs any more) the servers in
// state.servers and the browser's process group are killed, whatever path
// led there. On the first SIGINT or SIGTERM, `on_signal(signal, code)` starts
// the script's own orderly stop; if that has not ended the process after
// `grace_ms`, it exits with `code` (128 + signal).
export function install_exit_handlers(state, on_signal, grace_ms = 8000) {
  process.on('exit', () => {
    for (const server of state.servers ?? []) server.kill_now();
    if (state.browser && state.browser_pid) {
      try {
        process.kill(-state.browser_pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
  let signalled = false;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
    process.on(signal, () => {
      if (signalled) return;
      signalled = true;
      setTimeout(() => process.exit(code), grace_ms).unref();
      on_signal(signal, code);
    });
  }
}
