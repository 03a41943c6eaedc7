#!/usr/bin/env python3
"""A small STUN/TURN client for the fleet test (python3 standard library only).

It sees what turnutils_uclient does not print: the 300 Try Alternate answer
with its ALTERNATE-SERVER and ALTERNATE-DOMAIN, the LIFETIME granted, the
exact moment a relayed session stops, and the code a refused request gets.

  turn_client.py allocate --server H:P [--transport udp|tcp|tls] [--ca PEM]
                 [--sni NAME] --user U --password P [--follow] [--keep S]
      One Allocate (after the 401 challenge); prints one JSON object:
      {"code": 200|300|401|486|..., "alternate_server", "alternate_domain",
       "relay", "lifetime", "server", "followed": {...}}. With --follow a 300
      is followed once (over TLS, verifying the certificate against
      ALTERNATE-DOMAIN when the answer carries one). The allocation is
      released (Refresh LIFETIME 0) at once, or after --keep seconds.

  turn_client.py hold --server H:P --user U --password P --peer-ip IP
                 [--follow] [--duration S] [--interval-ms N] [--stop-on-end]
                 [--status FILE] [--refresh-every S]
      Allocates over UDP, permits a peer socket of its own (bound on IP),
      and relays a numbered datagram each way every interval. It notices
      when the relay stops (nothing arrives either way for --end-grace
      seconds after traffic flowed). It ends after --duration seconds,
      on SIGTERM, or (--stop-on-end) when the relay stopped; then it
      releases a live allocation and prints one JSON object with the counts,
      the largest gap, the time of the last relayed packet (unix seconds)
      and the code of a Refresh sent after the end. --status FILE gets one
      line as soon as the Allocate is answered: "allocated RELAY LIFETIME
      SERVER" or "error CODE".

Exit status: 0 when the exchange ran (the JSON says how it went), 2 on a
usage error, 3 when the server never answered.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import ssl
import struct
import sys
import time
import zlib

MAGIC = 0x2112A442

# Methods and classes (RFC 8489 section 5, RFC 8656 section 17).
ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION = 0x003, 0x004, 0x006, 0x007, 0x008
REQUEST, INDICATION, SUCCESS, ERROR = 0x000, 0x010, 0x100, 0x110

# Attributes.
A_USERNAME, A_MESSAGE_INTEGRITY, A_ERROR_CODE = 0x0006, 0x0008, 0x0009
A_LIFETIME, A_XOR_PEER_ADDRESS, A_DATA, A_REALM, A_NONCE = 0x000D, 0x0012, 0x0013, 0x0014, 0x0015
A_XOR_RELAYED_ADDRESS, A_REQUESTED_TRANSPORT = 0x0016, 0x0019
A_XOR_MAPPED_ADDRESS, A_ALTERNATE_DOMAIN = 0x0020, 0x8003
A_ALTERNATE_SERVER, A_FINGERPRINT, A_SOFTWARE = 0x8023, 0x8028, 0x8022


def msg_type(method, cls):
    return ((method & 0x0F80) << 2) | ((method & 0x0070) << 1) | (method & 0x000F) | \
        ((cls & 0x100) << 0) | ((cls & 0x010) >> 0)


def split_type(t):
    method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    cls = t & 0x0110
    return method, cls


def pad4(n):
    return (n + 3) & ~3


def encode_attr(atype, value):
    return struct.pack("!HH", atype, len(value)) + value + b"\0" * (pad4(len(value)) - len(value))


def xor_address(ip, port, tid):
    raw = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    family = 0x02 if len(raw) == 16 else 0x01
    key = struct.pack("!I", MAGIC) + tid
    xored = bytes(b ^ key[i] for i, b in enumerate(raw))
    return struct.pack("!BBH", 0, family, port ^ (MAGIC >> 16)) + xored


def decode_address(value, tid, xored):
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    raw = value[4:8] if family == 0x01 else value[4:20]
    if xored:
        port ^= MAGIC >> 16
        key = struct.pack("!I", MAGIC) + tid
        raw = bytes(b ^ key[i] for i, b in enumerate(raw))
    ip = socket.inet_ntop(socket.AF_INET if family == 0x01 else socket.AF_INET6, raw)
    return f"[{ip}]:{port}" if family == 0x02 else f"{ip}:{port}"


class Message:
    def __init__(self, method, cls, tid=None):
        self.method, self.cls = method, cls
        self.tid = tid or os.urandom(12)
        self.attrs = []  # (type, value)

    def add(self, atype, value):
        self.attrs.append((atype, value))
        return self

    def get(self, atype):
        for t, v in self.attrs:
            if t == atype:
                return v
        return None

    def encode(self, key=None, fingerprint=True):
        body = b"".join(encode_attr(t, v) for t, v in self.attrs)
        mtype = msg_type(self.method, self.cls)
        if key is not None:
            # RFC 8489 section 14.5: the length covers MESSAGE-INTEGRITY.
            head = struct.pack("!HHI", mtype, len(body) + 24, MAGIC) + self.tid
            mac = hmac.new(key, head + body, hashlib.sha1).digest()
            body += encode_attr(A_MESSAGE_INTEGRITY, mac)
        if fingerprint:
            head = struct.pack("!HHI", mtype, len(body) + 8, MAGIC) + self.tid
            crc = (zlib.crc32(head + body) & 0xFFFFFFFF) ^ 0x5354554E
            body += encode_attr(A_FINGERPRINT, struct.pack("!I", crc))
        return struct.pack("!HHI", mtype, len(body), MAGIC) + self.tid + body

    @staticmethod
    def decode(data):
        if len(data) < 20 or data[0] & 0xC0:
            return None
        mtype, length, magic = struct.unpack("!HHI", data[:8])
        if magic != MAGIC or len(data) < 20 + length:
            return None
        method, cls = split_type(mtype)
        m = Message(method, cls, data[8:20])
        pos, end = 20, 20 + length
        while pos + 4 <= end:
            atype, alen = struct.unpack("!HH", data[pos:pos + 4])
            m.attrs.append((atype, data[pos + 4:pos + 4 + alen]))
            pos += 4 + pad4(alen)
        return m

    def error_code(self):
        v = self.get(A_ERROR_CODE)
        if v is None or len(v) < 4:
            return None
        return (v[2] & 0x7) * 100 + v[3]

    def address(self, atype):
        v = self.get(atype)
        if v is None:
            return None
        return decode_address(v, self.tid, atype != A_ALTERNATE_SERVER)


def split_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Transport:
    """One connection (UDP socket, TCP or TLS stream) to one server address."""

    def __init__(self, kind, server, ca=None, sni=None, bind_ip=None, timeout=5.0):
        self.kind, self.server = kind, server
        host, port = split_hostport(server)
        self.addr = (host, port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if kind == "udp":
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            if bind_ip:
                self.sock.bind((bind_ip, 0))
        else:
            raw = socket.create_connection(self.addr, timeout=timeout)
            if kind == "tls":
                ctx = ssl.create_default_context(cafile=ca)
                ctx.check_hostname = True
                self.sock = ctx.wrap_socket(raw, server_hostname=sni or host)
            else:
                self.sock = raw
        self.buffer = b""

    def send(self, data):
        if self.kind == "udp":
            self.sock.sendto(data, self.addr)
        else:
            self.sock.sendall(data)

    def recv(self, timeout):
        """One STUN message, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.kind != "udp" and len(self.buffer) >= 4:
                # Stream framing (RFC 8656 section 12.5): STUN is 4-aligned,
                # ChannelData padded to 4.
                first = self.buffer[0]
                length = struct.unpack("!H", self.buffer[2:4])[0]
                total = 20 + length if first < 0x40 else 4 + pad4(length)
                if len(self.buffer) >= total and (first >= 0x40 or len(self.buffer) >= 20):
                    frame, self.buffer = self.buffer[:total], self.buffer[total:]
                    if first < 0x40:
                        return frame
                    continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not (self.kind == "tls" and self.sock.pending()):
                ready, _, _ = select.select([self.sock], [], [], left)
                if not ready:
                    return None
            try:
                if self.kind == "udp":
                    data, _ = self.sock.recvfrom(65536)
                    return data
                chunk = self.sock.recv(65536)
            except (ConnectionRefusedError, ConnectionResetError, ssl.SSLError, OSError):
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Client:
    """Long-term authenticated requests on one transport (RFC 8489 section 9.2)."""

    def __init__(self, transport, user, password):
        self.t, self.user, self.password = transport, user, password
        self.realm = self.nonce = None
        self.key = None

    def _set_realm(self, realm):
        self.realm = realm
        self.key = hashlib.md5(f"{self.user}:{realm.decode()}:{self.password}".encode()).digest()

    def transact(self, method, attrs, timeout=3.0, tries=None):
        """Sends a request (with credentials once known) and returns the
        response, retrying once after a 401 challenge or a 438."""
        for _ in range(3):
            m = Message(method, REQUEST)
            for a in attrs:
                m.add(*a)
            if self.nonce is not None:
                m.add(A_USERNAME, self.user.encode()).add(A_REALM, self.realm).add(A_NONCE, self.nonce)
                wire = m.encode(self.key)
            else:
                wire = m.encode()
            r = self._exchange(wire, m.tid, timeout, tries)
            if r is None:
                return None
            code = r.error_code()
            if r.cls == ERROR and code in (401, 438) and r.get(A_NONCE) is not None:
                had_nonce = self.nonce is not None
                if r.get(A_REALM) is not None:
                    self._set_realm(r.get(A_REALM))
                self.nonce = r.get(A_NONCE)
                if code == 401 and had_nonce:
                    return r  # the credentials themselves were refused
                continue
            return r
        return r

    def _exchange(self, wire, tid, timeout, tries):
        # UDP: retransmit (RFC 8489 section 6.2.1, shortened for a lab).
        attempts = tries or (5 if self.t.kind == "udp" else 1)
        per_try = timeout / attempts
        for _ in range(attempts):
            self.t.send(wire)
            deadline = time.monotonic() + per_try
            while time.monotonic() < deadline:
                data = self.t.recv(deadline - time.monotonic())
                if data is None:
                    break
                r = Message.decode(data)
                if r is not None and r.tid == tid and r.cls in (SUCCESS, ERROR):
                    return r
        return None


def transport_attr():
    return (A_REQUESTED_TRANSPORT, struct.pack("!BBBB", 17, 0, 0, 0))


def summarize(r):
    if r is None:
        return {"code": "timeout"}
    out = {"code": 200 if r.cls == SUCCESS else r.error_code()}
    if r.get(A_ALTERNATE_SERVER) is not None:
        out["alternate_server"] = r.address(A_ALTERNATE_SERVER)
    if r.get(A_ALTERNATE_DOMAIN) is not None:
        out["alternate_domain"] = r.get(A_ALTERNATE_DOMAIN).decode(errors="replace")
    if r.cls == SUCCESS:
        out["relay"] = r.address(A_XOR_RELAYED_ADDRESS)
        out["mapped"] = r.address(A_XOR_MAPPED_ADDRESS)
        lt = r.get(A_LIFETIME)
        out["lifetime"] = struct.unpack("!I", lt)[0] if lt else None
    return out


def release(client):
    r = client.transact(REFRESH, [(A_LIFETIME, struct.pack("!I", 0))], timeout=2.0)
    return summarize(r)["code"]


def allocate_once(args, server, sni=None):
    """Returns (summary, client) for one Allocate at `server`."""
    try:
        t = Transport(args.transport, server, ca=args.ca, sni=sni, bind_ip=args.bind_ip)
    except (OSError, ssl.SSLError) as e:
        return {"code": "connect_error", "server": server, "error": str(e)}, None
    c = Client(t, args.user, args.password)
    attrs = [transport_attr()]
    if args.lifetime is not None:
        attrs.append((A_LIFETIME, struct.pack("!I", args.lifetime)))
    r = c.transact(ALLOCATE, attrs, timeout=args.timeout)
    out = summarize(r)
    out["server"] = server
    if sni:
        out["verified_name"] = sni
    return out, c


def cmd_allocate(args):
    out, c = allocate_once(args, args.server, args.sni)
    clients = [c]
    if args.follow and out.get("code") == 300 and out.get("alternate_server"):
        # Over TLS the node's certificate is checked against ALTERNATE-DOMAIN
        # (RFC 8489 section 14.16), else against the address.
        sni = out.get("alternate_domain") if args.transport == "tls" else None
        followed, c2 = allocate_once(args, out["alternate_server"], sni)
        out["followed"] = followed
        clients.append(c2)
    live = [x for x in clients if x is not None]
    if args.keep:
        time.sleep(args.keep)
    final = out.get("followed", out)
    if final.get("code") == 200:
        final["release"] = release(live[-1])
    for x in live:
        x.t.close()
    print(json.dumps(out))
    return 0 if out.get("code") != "timeout" else 3


def cmd_hold(args):
    stopping = {"flag": False}

    def on_term(signum, frame):
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    status = open(args.status, "w") if args.status else None

    def say(line):
        if status:
            status.write(line + "\n")
            status.flush()

    args.transport = "udp"
    args.bind_ip = args.peer_ip
    first, c = allocate_once(args, args.server)
    result = {"allocate": first}
    if args.follow and first.get("code") == 300 and first.get("alternate_server"):
        c.t.close()
        second, c = allocate_once(args, first["alternate_server"])
        result["followed"] = second
        first = second
    if c is None or first.get("code") != 200:
        say(f"error {first.get('code')}")
        result["ok"] = False
        print(json.dumps(result))
        return 0 if first.get("code") != "timeout" else 3
    relay_ip, relay_port = split_hostport(first["relay"])
    say(f"allocated {first['relay']} {first.get('lifetime')} {first['server']}")
    result["relay"] = first["relay"]
    result["server"] = first["server"]
    result["allocated_at"] = time.time()

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((args.peer_ip, 0))
    peer_addr = peer.getsockname()
    # XOR-PEER-ADDRESS depends on the transaction ID (IPv6), so the
    # CreatePermission is built by hand.

    def permit():
        for _ in range(3):
            m = Message(CREATE_PERMISSION, REQUEST)
            m.add(A_XOR_PEER_ADDRESS, xor_address(peer_addr[0], peer_addr[1], m.tid))
            m.add(A_USERNAME, c.user.encode()).add(A_REALM, c.realm).add(A_NONCE, c.nonce)
            resp = c._exchange(m.encode(c.key), m.tid, 2.0, None)
            if resp is not None and resp.cls == ERROR and resp.error_code() == 438:
                c.nonce = resp.get(A_NONCE)
                continue
            return summarize(resp)["code"]
        return "stale"

    perm = permit()
    result["permission"] = perm
    if perm != 200:
        say(f"error permission-{perm}")
        result["ok"] = False
        result["release"] = release(c)
        print(json.dumps(result))
        return 0

    interval = args.interval_ms / 1000.0
    sent = {"to_peer": 0, "to_client": 0}
    got = {"to_peer": set(), "to_client": set()}
    last_rx = None
    first_rx = None
    max_gap = 0.0
    ended_at = None
    refreshes = []
    start = time.monotonic()
    next_send = start
    next_refresh = start + args.refresh_every if args.refresh_every else None
    seq = 0
    stop_sending_at = None
    send_times = []  # unix time of each numbered datagram (both directions)

    def note_rx(direction, n):
        nonlocal last_rx, first_rx, max_gap
        now = time.time()
        if last_rx is not None and ended_at is None:
            max_gap = max(max_gap, now - last_rx)
        if first_rx is None:
            first_rx = now
        last_rx = now
        got[direction].add(n)

    while True:
        now = time.monotonic()
        if stopping["flag"] and stop_sending_at is None:
            stop_sending_at = now
        if args.duration and now - start >= args.duration and stop_sending_at is None:
            stop_sending_at = now
        if stop_sending_at is not None and now - stop_sending_at >= 0.3:
            break
        if ended_at is None and last_rx is not None and time.time() - last_rx > args.end_grace:
            ended_at = last_rx
            if args.stop_on_end:
                break
        if stop_sending_at is None and now >= next_send:
            payload = struct.pack("!I", seq) + b"fleet" * 8
            m = Message(SEND, INDICATION)
            m.add(A_XOR_PEER_ADDRESS, xor_address(peer_addr[0], peer_addr[1], m.tid))
            m.add(A_DATA, payload)
            try:
                c.t.send(m.encode(fingerprint=False))
                peer.sendto(payload, (relay_ip, relay_port))
            except OSError:
                pass
            send_times.append(time.time())
            sent["to_peer"] += 1
            sent["to_client"] += 1
            seq += 1
            next_send += interval
        if next_refresh is not None and now >= next_refresh and ended_at is None and stop_sending_at is None:
            # A Refresh rides on the client socket: answers are read below.
            rm = Message(REFRESH, REQUEST)
            rm.add(A_LIFETIME, struct.pack("!I", args.refresh_lifetime))
            rm.add(A_USERNAME, c.user.encode()).add(A_REALM, c.realm).add(A_NONCE, c.nonce)
            c.t.send(rm.encode(c.key))
            refreshes.append({"tid": rm.tid.hex(), "at": time.time(), "code": None})
            next_refresh = now + args.refresh_every
        wait = max(0.0, min(next_send - time.monotonic(), 0.05))
        ready, _, _ = select.select([c.t.sock, peer], [], [], wait)
        for s in ready:
            try:
                data, _ = s.recvfrom(65536)
            except OSError:
                continue
            if s is peer:
                if len(data) >= 4:
                    note_rx("to_peer", struct.unpack("!I", data[:4])[0])
                continue
            m = Message.decode(data)
            if m is None:
                continue
            if m.method == DATA and m.cls == INDICATION:
                d = m.get(A_DATA)
                if d and len(d) >= 4:
                    note_rx("to_client", struct.unpack("!I", d[:4])[0])
            elif m.method == REFRESH and m.cls in (SUCCESS, ERROR):
                for rf in refreshes:
                    if rf["tid"] == m.tid.hex():
                        code = 200 if m.cls == SUCCESS else m.error_code()
                        rf["code"] = code
                        if code == 438 and m.get(A_NONCE) is not None:
                            c.nonce = m.get(A_NONCE)
                        lt = m.get(A_LIFETIME)
                        if lt:
                            rf["lifetime"] = struct.unpack("!I", lt)[0]

    result["sent"] = sent
    result["received"] = {k: len(v) for k, v in got.items()}
    result["lost"] = {k: sent[k] - len(got[k]) for k in sent}
    # Loss while the session was meant to live: datagrams sent more than
    # 0.2 s before the relay stopped (or before the client stopped sending)
    # that never arrived.
    cutoff = (ended_at if ended_at is not None else time.time() - 0.3) - 0.2
    result["lost_while_alive"] = {
        k: sum(1 for n, at in enumerate(send_times) if at < cutoff and n not in got[k]) for k in sent}
    result["first_rx"] = first_rx
    result["last_rx"] = last_rx
    result["max_gap_ms"] = round(max_gap * 1000, 1)
    result["ended"] = ended_at is not None
    result["ended_at"] = ended_at
    result["refreshes"] = [{k: v for k, v in rf.items() if k != "tid"} for rf in refreshes]
    if ended_at is not None:
        # What the server says about the allocation now: 437 (gone) or 401
        # (the credential is refused); 200 would mean it still lives.
        result["after_end_refresh"] = release(c)
    else:
        result["release"] = release(c)
    result["ok"] = True
    c.t.close()
    peer.close()
    print(json.dumps(result))
    return 0


def cmd_ping(args):
    """Binding requests over UDP until one is answered (exit 0) or the time is up (exit 3)."""
    t = Transport("udp", args.server)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        m = Message(0x001, REQUEST)
        t.send(m.encode())
        data = t.recv(min(0.2, max(0.0, deadline - time.monotonic())))
        r = Message.decode(data) if data else None
        if r is not None and r.tid == m.tid and r.cls == SUCCESS:
            print(f"binding answered by {args.server}: {r.address(A_XOR_MAPPED_ADDRESS)}")
            return 0
    return 3


def rest_credentials(secret, user, ttl, expiry=None):
    exp = expiry if expiry is not None else int(time.time()) + ttl
    username = f"{exp}:{user}"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return username, password


def cmd_rest(args):
    """Prints 'USERNAME PASSWORD' for a REST secret (draft-uberti-behave-turn-rest)."""
    u, p = rest_credentials(args.secret, args.user, args.ttl, args.expiry)
    print(u, p)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--server", required=True, help="HOST:PORT")
        p.add_argument("--user", required=True)
        p.add_argument("--password", required=True)
        p.add_argument("--follow", action="store_true", help="follow a 300 Try Alternate once")
        p.add_argument("--lifetime", type=int, default=None, help="LIFETIME to ask for")
        p.add_argument("--timeout", type=float, default=3.0)

    a = sub.add_parser("allocate")
    common(a)
    a.add_argument("--transport", choices=["udp", "tcp", "tls"], default="udp")
    a.add_argument("--ca", default=None, help="CA file for TLS")
    a.add_argument("--sni", default=None, help="name to verify on the first TLS hop")
    a.add_argument("--bind-ip", default=None)
    a.add_argument("--keep", type=float, default=0.0, help="seconds to hold before releasing")

    h = sub.add_parser("hold")
    common(h)
    h.add_argument("--peer-ip", required=True, help="local address for the client and the peer socket")
    h.add_argument("--duration", type=float, default=30.0)
    h.add_argument("--interval-ms", type=float, default=20.0)
    h.add_argument("--end-grace", type=float, default=0.4)
    h.add_argument("--stop-on-end", action="store_true")
    h.add_argument("--status", default=None)
    h.add_argument("--refresh-every", type=float, default=0.0)
    h.add_argument("--refresh-lifetime", type=int, default=600)
    h.add_argument("--ca", default=None)

    p = sub.add_parser("ping")
    p.add_argument("--server", required=True)
    p.add_argument("--timeout", type=float, default=5.0)

    r = sub.add_parser("rest")
    r.add_argument("--secret", required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--ttl", type=int, default=3600)
    r.add_argument("--expiry", type=int, default=None)

    args = ap.parse_args()
    if args.cmd == "allocate":
        return cmd_allocate(args)
    if args.cmd == "hold":
        return cmd_hold(args)
    if args.cmd == "ping":
        return cmd_ping(args)
    return cmd_rest(args)


if __name__ == "__main__":
    sys.exit(main())
