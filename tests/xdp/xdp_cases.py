#!/usr/bin/env python3
"""The crafted cases of the XDP offload tests, run by cases.sh against anyturn
in the topology of netns.sh (one Python process; each socket is opened in its
namespace with setns, so the client's sockets live in the client namespace,
the peers' in the peer namespace, and /metrics is read in the server's).

    xdp_cases.py CASE

CASE: send_indication, no_permission, expired_permission, stop_refresh,
stop_revoke, stop_reload, accounting, map_full, bandwidth, hairpin. The environment
(set by cases.sh) names the namespaces, addresses, ports, credentials and
files. Prints what it measured; exits 1 with the reason when a check fails.
"""
import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fleet"))
import turn_client as tc  # noqa: E402  (STUN/TURN messages and the long-term client)

CHANNEL_BIND = 0x009
A_CHANNEL_NUMBER = 0x000C
CLONE_NEWNET = 0x40000000
SO_TIMESTAMPNS = 35

ENV = os.environ
CLIENT_NS, SERVER_NS, PEER_NS = ENV["TOPO_CLIENT_NS"], ENV["TOPO_SERVER_NS"], ENV["TOPO_PEER_NS"]
SERVER = (ENV["TOPO_SERVER_CLIENT4"], int(ENV["SERVER_PORT"]))
CLIENT_IP, PEER_IP, PEER2_IP = ENV["TOPO_CLIENT4"], ENV["TOPO_PEER4"], ENV["PEER2_IP"]
HTTP = f"http://127.0.0.1:{ENV['HTTP_PORT']}"

_libc = ctypes.CDLL(None, use_errno=True)
_home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)


def fail(why):
    print(f"FAIL: {why}", flush=True)
    sys.exit(1)


def say(line):
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        fail(f"setns: {os.strerror(ctypes.get_errno())}")


@contextlib.contextmanager
def netns(name):
    """Runs the block in namespace `name`; sockets opened there stay there."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(fd)
        yield
    finally:
        _setns(_home)
        os.close(fd)


def metrics():
    """/metrics as {'name{labels}': value}."""
    with netns(SERVER_NS):
        with urllib.request.urlopen(HTTP + "/metrics", timeout=5) as r:
            text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def xdp_forwarded(m, direction):
    return sum(m.get(f'anyturn_xdp_packets_total{{direction="{direction}",action="{a}"}}', 0) for a in ("tx", "redirect"))


def delta(after, before, key):
    return after.get(key, 0) - before.get(key, 0)


def admin_post(path, body):
    with netns(SERVER_NS):
        req = urllib.request.Request(HTTP + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {ENV['ADMIN_KEY']}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()


def peer_socket(ip=PEER_IP, ns=PEER_NS):
    with netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
    return s


class Turn:
    """One UDP allocation from the client namespace."""

    def __init__(self):
        with netns(CLIENT_NS):
            t = tc.Transport("udp", f"{SERVER[0]}:{SERVER[1]}", bind_ip=CLIENT_IP)
        self.c = tc.Client(t, ENV["TURN_USER"], ENV["TURN_PASSWORD"])
        self.sock = t.sock
        r = self.c.transact(tc.ALLOCATE, [tc.transport_attr()])
        s = tc.summarize(r)
        if s["code"] != 200:
            fail(f"Allocate: {s}")
        host, port = tc.split_hostport(s["relay"])
        self.relay = (host, port)

    def request(self, method, attrs_of_tid):
        """A request whose attributes depend on its transaction ID (XOR
        addresses), with the credentials; retried after a 438."""
        for _ in range(3):
            m = tc.Message(method, tc.REQUEST)
            for a in attrs_of_tid(m.tid):
                m.add(*a)
            c = self.c
            m.add(tc.A_USERNAME, c.user.encode()).add(tc.A_REALM, c.realm).add(tc.A_NONCE, c.nonce)
            r = c._exchange(m.encode(c.key), m.tid, 2.0, None)
            if r is not None and r.cls == tc.ERROR and r.error_code() == 438:
                c.nonce = r.get(tc.A_NONCE)
                continue
            return tc.summarize(r)["code"]
        return "stale"

    def permit(self, peer):
        code = self.request(tc.CREATE_PERMISSION, lambda tid: [(tc.A_XOR_PEER_ADDRESS, tc.xor_address(*peer, tid))])
        if code != 200:
            fail(f"CreatePermission {peer}: {code}")

    def bind(self, number, peer):
        code = self.request(CHANNEL_BIND, lambda tid: [(A_CHANNEL_NUMBER, struct.pack("!HH", number, 0)),
                                                       (tc.A_XOR_PEER_ADDRESS, tc.xor_address(*peer, tid))])
        if code != 200:
            fail(f"ChannelBind 0x{number:04x} -> {peer}: {code}")

    def refresh(self, lifetime):
        return self.request(tc.REFRESH, lambda tid: [(tc.A_LIFETIME, struct.pack("!I", lifetime))])

    def channel_data(self, number, payload):
        self.sock.sendto(struct.pack("!HH", number, len(payload)) + payload, SERVER)

    def send_indication(self, peer, payload):
        m = tc.Message(tc.SEND, tc.INDICATION)
        m.add(tc.A_XOR_PEER_ADDRESS, tc.xor_address(*peer, m.tid)).add(tc.A_DATA, payload)
        self.sock.sendto(m.encode(), SERVER)


def drain(sock, seconds):
    """Every datagram `sock` receives within `seconds` (until quiet for it)."""
    out = []
    while True:
        ready, _, _ = select.select([sock], [], [], seconds)
        if not ready:
            return out
        out.append(sock.recvfrom(65536))


def channel_payloads(datagrams, number):
    """The payloads of ChannelData messages for `number` among datagrams."""
    out = []
    for data, _ in datagrams:
        if len(data) >= 4 and struct.unpack("!H", data[:2])[0] == number:
            out.append(data[4:4 + struct.unpack("!H", data[2:4])[0]])
    return out


def established(peer_sock, number=0x4000):
    """An allocation with a permission and a channel to `peer_sock`, and one
    datagram each way, so the channel is live in both directions."""
    t = Turn()
    peer = peer_sock.getsockname()
    t.bind(number, peer)
    t.channel_data(number, b"hello")
    got = drain(peer_sock, 0.5)
    if not got or got[0][0] != b"hello":
        fail(f"the peer did not get the first ChannelData: {got}")
    peer_sock.sendto(b"hi", t.relay)
    if channel_payloads(drain(t.sock, 0.5), number) != [b"hi"]:
        fail("the client did not get the peer's first datagram on its channel")
    time.sleep(1.2)  # the workers fold the program's counters once a second
    return t


# ---- the cases ----------------------------------------------------------

def case_send_indication():
    """Send indications (and the Data indications back) go through user space
    and are relayed; the program forwards none of them."""
    peer_sock = peer_socket()
    t = Turn()
    peer = peer_sock.getsockname()
    t.permit(peer)
    time.sleep(1.2)
    before = metrics()
    n = 20
    for i in range(n):
        t.send_indication(peer, b"send-%02d" % i)
    got = [d for d, _ in drain(peer_sock, 0.5)]
    for i in range(n):
        peer_sock.sendto(b"back-%02d" % i, t.relay)
    back = drain(t.sock, 0.5)
    time.sleep(1.2)
    after = metrics()
    if sorted(got) != [b"send-%02d" % i for i in range(n)]:
        fail(f"the peer got {len(got)} of {n} Send indications' data")
    data_ind = [tc.Message.decode(d) for d, _ in back]
    data_ind = [m for m in data_ind if m is not None and m.method == tc.DATA]
    if len(data_ind) != n:
        fail(f"the client got {len(data_ind)} Data indications of {n}")
    fwd = {d: xdp_forwarded(after, d) - xdp_forwarded(before, d) for d in ("to_peer", "to_client")}
    sends = delta(after, before, 'anyturn_indications_total{method="send"}')
    relayed = delta(after, before, 'anyturn_relayed_packets_total{direction="to_peer"}')
    say(f"Send indications: peer got {len(got)}/{n}, client got {len(data_ind)} Data indications; "
        f"xdp forwarded to_peer={fwd['to_peer']:.0f} to_client={fwd['to_client']:.0f}; "
        f"indications_total +{sends:.0f}, relayed to_peer +{relayed:.0f}")
    if fwd["to_peer"] or fwd["to_client"]:
        fail("the program forwarded indications")
    if sends < n or relayed < n:
        fail("user space did not count the Send indications it relayed")


def case_no_permission():
    """A peer without a permission: its datagrams to the relay port go up to
    user space, which drops them (no_permission); the client gets nothing,
    while the permitted peer's channel still takes the fast path."""
    peer_sock = peer_socket()
    t = established(peer_sock)
    stranger = peer_socket(PEER2_IP)
    before = metrics()
    n = 20
    for i in range(n):
        stranger.sendto(b"stranger-%02d" % i, t.relay)
    for i in range(n):
        peer_sock.sendto(b"friend-%02d" % i, t.relay)
    got = channel_payloads(drain(t.sock, 0.5), 0x4000)
    time.sleep(1.2)
    after = metrics()
    dropped = delta(after, before, 'anyturn_dropped_packets_total{reason="no_permission"}')
    fwd = xdp_forwarded(after, "to_client") - xdp_forwarded(before, "to_client")
    say(f"stranger sent {n}: client got {sum(p.startswith(b'stranger') for p in got)}, no_permission +{dropped:.0f}; "
        f"permitted peer sent {n}: client got {sum(p.startswith(b'friend') for p in got)}, xdp to_client +{fwd:.0f}")
    if any(p.startswith(b"stranger") for p in got):
        fail("a datagram of a peer without permission reached the client")
    if dropped < n:
        fail(f"no_permission drops +{dropped:.0f}, expected >= {n}")
    if sorted(got) != [b"friend-%02d" % i for i in range(n)]:
        fail("the permitted peer's datagrams did not all arrive")
    if fwd < n:
        fail(f"the program forwarded {fwd:.0f} of the permitted peer's {n} datagrams")


def case_expired_permission():
    """lifetimes.permission is short (cases.sh: 2 s): once it has passed, the
    channel's entries have expired; both directions go up to user space,
    which drops them; nothing is relayed."""
    peer_sock = peer_socket()
    t = established(peer_sock)
    lifetime = float(ENV.get("PERMISSION_LIFETIME", "2"))
    time.sleep(lifetime + 0.5)
    before = metrics()
    n = 20
    for i in range(n):
        t.channel_data(0x4000, b"late-%02d" % i)
        peer_sock.sendto(b"late-back-%02d" % i, t.relay)
    at_peer = drain(peer_sock, 0.5)
    at_client = channel_payloads(drain(t.sock, 0.5), 0x4000)
    time.sleep(1.2)
    after = metrics()
    fwd = xdp_forwarded(after, "to_peer") - xdp_forwarded(before, "to_peer") + \
        xdp_forwarded(after, "to_client") - xdp_forwarded(before, "to_client")
    dropped = sum(delta(after, before, f'anyturn_dropped_packets_total{{reason="{r}"}}')
                  for r in ("no_permission", "unbound_channel"))
    passed = sum(delta(after, before, f'anyturn_xdp_packets_total{{direction="{d}",action="pass"}}')
                 for d in ("to_peer", "to_client"))
    expired = delta(after, before, 'anyturn_xdp_fallbacks_total{reason="expired"}')
    say(f"after the permission expired: peer got {len(at_peer)}, client got {len(at_client)}, "
        f"xdp forwarded +{fwd:.0f}, passed up +{passed:.0f} (fallbacks expired +{expired:.0f}), "
        f"dropped by user space (no_permission/unbound_channel) +{dropped:.0f} of {2 * n}")
    if at_peer or at_client:
        fail("data was relayed over an expired permission")
    if fwd:
        fail("the program forwarded packets of an expired permission")
    if dropped < 2 * n:
        fail(f"user space dropped {dropped:.0f} of the {2 * n} packets")


def stop(action):
    """1 packet/ms client -> peer over a channel; at about 1 s, `action` (on a
    thread of its own: the sender keeps its pace); from 100 ms after the
    action began nothing arrives at the peer and the program's to_peer
    counters stop. Prints the stop gap: how long after the action began the
    last datagram that still reached the peer was sent."""
    peer_sock = peer_socket()
    t = established(peer_sock)
    peer_sock.setblocking(False)
    # Arrival times are the kernel's (SO_TIMESTAMPNS, CLOCK_REALTIME), so a
    # stall of this loop does not make an early packet look late.
    peer_sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    interval, total_s, act_at = 0.001, 2.0, 1.0
    sent_at = []  # send time (CLOCK_REALTIME) per sequence number
    arrivals = []  # (kernel arrival time, sequence number)
    acted = None
    took = []
    worker = None
    at_100ms = None

    def act():
        began = time.monotonic()
        try:
            action(t)
        except SystemExit:  # fail() on this thread: the main thread reports it
            took.append(None)
            return
        took.append(time.monotonic() - began)

    def receive():
        while True:
            try:
                data, anc, _, _ = peer_sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return
            at = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    at = sec + nsec / 1e9
            arrivals.append((at, struct.unpack("!I", data[:4])[0]))

    start = time.time()
    while len(sent_at) < 3000:
        now = time.time()
        if now - start >= total_s:
            break
        if acted is None and now - start >= act_at:
            acted = now
            worker = threading.Thread(target=act)
            worker.start()
        if acted is not None and at_100ms is None and now - acted >= 0.1:
            at_100ms = xdp_forwarded(metrics(), "to_peer")
        t.channel_data(0x4000, struct.pack("!I", len(sent_at)) + b"x" * 96)
        sent_at.append(time.time())
        receive()
        pause = start + len(sent_at) * interval - time.time()
        if pause > 0:
            time.sleep(pause)
    worker.join(10)
    if not took or took[0] is None:
        fail(f"{action.__name__} failed or did not finish")
    time.sleep(0.3)
    receive()
    end_count = xdp_forwarded(metrics(), "to_peer")
    delivered_after = [sent_at[n] - acted for _, n in arrivals if sent_at[n] >= acted]
    gap_ms = 1000 * max(delivered_after) if delivered_after else 0.0
    late = [a for a, _ in arrivals if a > acted + 0.1]
    last_arrival_ms = 1000 * max(0.0, max(a for a, _ in arrivals) - acted)
    sent_after = sum(1 for x in sent_at if x >= acted)
    say(f"{action.__name__} (took {1000 * took[0]:.1f} ms): {len(sent_at)} sent, {len(arrivals)} arrived; "
        f"of {sent_after} sent after the action began, {len(delivered_after)} arrived, the last one sent "
        f"{gap_ms:.1f} ms after it, the last arrival {last_arrival_ms:.1f} ms after it; {len(late)} arrived later than 100 ms; xdp to_peer at +100 ms {at_100ms:.0f}, "
        f"at the end {end_count:.0f}")
    print(f"STOP_GAP_MS {gap_ms:.1f}")
    if late:
        fail(f"{len(late)} packets reached the peer more than 100 ms after the action")
    if end_count != at_100ms:
        fail(f"the program forwarded {end_count - at_100ms:.0f} packets to the peer more than 100 ms after the action")
    sent_before = len(sent_at) - sent_after
    if len(arrivals) - len(delivered_after) < sent_before:
        fail(f"{len(arrivals) - len(delivered_after)} of the {sent_before} packets sent before the action arrived")


def refresh0(t):
    code = t.refresh(0)
    if code != 200:
        fail(f"Refresh(0): {code}")


def revoke(t):
    status, body = admin_post("/admin/revoke", {"username": ENV["TURN_USER"]})
    if status != 200:
        fail(f"/admin/revoke: {status} {body}")


def reload_deny(t):
    with open(ENV["CONFIG_DENY_FILE"]) as src, open(ENV["CONFIG"], "w") as dst:
        dst.write(src.read())
    os.kill(int(ENV["SERVER_PID"]), signal.SIGHUP)


def case_stop_refresh():
    stop(refresh0)


def case_stop_revoke():
    stop(revoke)


def case_stop_reload():
    stop(reload_deny)


def case_accounting():
    """N datagrams of known sizes each way over a channel, then Refresh(0):
    the usage record and anyturn_relayed_bytes_total match the payload bytes
    sent, on the path cases.sh chose (PATH=xdp or user)."""
    path = ENV["PATH_KIND"]
    peer_sock = peer_socket()
    before = metrics()
    t = Turn()
    peer = peer_sock.getsockname()
    t.bind(0x4001, peer)
    sizes_up = [1 + (i * 37) % 1200 for i in range(60)]
    sizes_down = [3 + (i * 53) % 1300 for i in range(50)]
    for i, n in enumerate(sizes_up):
        t.channel_data(0x4001, bytes([i % 256]) * n)
        time.sleep(0.001)
    got_up = [d for d, _ in drain(peer_sock, 0.5)]
    for i, n in enumerate(sizes_down):
        peer_sock.sendto(bytes([i % 256]) * n, t.relay)
        time.sleep(0.001)
    got_down = channel_payloads(drain(t.sock, 0.5), 0x4001)
    if sorted(map(len, got_up)) != sorted(sizes_up) or sorted(map(len, got_down)) != sorted(sizes_down):
        fail(f"not everything arrived: peer {len(got_up)}/{len(sizes_up)}, client {len(got_down)}/{len(sizes_down)}")
    if t.refresh(0) != 200:
        fail("Refresh(0) failed")
    time.sleep(1.2)
    after = metrics()
    record = None
    for _ in range(20):
        with open(ENV["USAGE_LOG"]) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        mine = [r for r in lines if r.get("relay", "").endswith(f":{t.relay[1]}")]
        if mine:
            record = mine[-1]
            break
        time.sleep(0.1)
    if record is None:
        fail(f"no usage record for relay port {t.relay[1]}")
    up, down = sum(sizes_up), sum(sizes_down)
    fwd_up = xdp_forwarded(after, "to_peer") - xdp_forwarded(before, "to_peer")
    fwd_down = xdp_forwarded(after, "to_client") - xdp_forwarded(before, "to_client")
    bytes_up = delta(after, before, 'anyturn_relayed_bytes_total{direction="to_peer"}')
    bytes_down = delta(after, before, 'anyturn_relayed_bytes_total{direction="to_client"}')
    say(f"path {path}: sent {len(sizes_up)} datagrams / {up} B to the peer, {len(sizes_down)} / {down} B to the client; "
        f"usage record {record['packets_to_peer']} / {record['bytes_to_peer']} B and "
        f"{record['packets_to_client']} / {record['bytes_to_client']} B; relayed_bytes_total +{bytes_up:.0f} / "
        f"+{bytes_down:.0f}; xdp forwarded {fwd_up:.0f} / {fwd_down:.0f}")
    if (record["bytes_to_peer"], record["bytes_to_client"]) != (up, down):
        fail("the usage record's bytes differ from the bytes sent")
    if (record["packets_to_peer"], record["packets_to_client"]) != (len(sizes_up), len(sizes_down)):
        fail("the usage record's packets differ from the packets sent")
    if (bytes_up, bytes_down) != (up, down):
        fail("anyturn_relayed_bytes_total differs from the bytes sent")
    if path == "xdp" and (fwd_up < len(sizes_up) or fwd_down < len(sizes_down)):
        fail("the datagrams did not take the fast path")
    if path == "user" and (fwd_up or fwd_down):
        fail("the program forwarded packets with XDP off")


def case_map_full():
    """xdp.max_channels 1 (cases.sh): the second channel finds the map full,
    stays in user space (fallbacks map_full) and is relayed all the same."""
    before = metrics()
    peers = [peer_socket(), peer_socket()]
    turns = [established(p, 0x4000 + i) for i, p in enumerate(peers)]
    n = 30
    for i in range(n):
        for k, t in enumerate(turns):
            t.channel_data(0x4000 + k, b"c%d-%02d" % (k, i))
    got = [[d for d, _ in drain(p, 0.5)] for p in peers]
    time.sleep(1.2)
    after = metrics()
    full = delta(after, before, 'anyturn_xdp_fallbacks_total{reason="map_full"}')
    fwd = xdp_forwarded(after, "to_peer") - xdp_forwarded(before, "to_peer")
    say(f"two channels, xdp.max_channels 1: peers got {len(got[0])} and {len(got[1])} of {n}; "
        f"fallbacks map_full +{full:.0f}; xdp forwarded to_peer +{fwd:.0f}")
    for k in range(2):
        if sorted(got[k]) != [b"c%d-%02d" % (k, i) for i in range(n)]:
            fail(f"channel {k} lost datagrams")
    if full < 1:
        fail("no map_full fallback counted")
    if fwd < n or fwd >= 2 * n + 2:
        fail(f"the program forwarded {fwd:.0f}: expected one channel's {n} (+ its first), not both")


def case_bandwidth():
    """limits.allocation.packets_per_second small (cases.sh: RATE): a burst of
    1000 datagrams within about 0.1 s; the peer gets about RATE (the bucket
    holds one second, plus what refills during the burst), the rest is
    dropped and counted as packet_rate."""
    rate = int(ENV["RATE"])
    peer_sock = peer_socket()
    peer_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    t = established(peer_sock)
    time.sleep(1.1)  # the bucket refills after the first datagram
    before = metrics()
    burst = 1000
    start = time.monotonic()
    for i in range(burst):
        t.channel_data(0x4000, b"b%04d" % i)
    took = time.monotonic() - start
    got = drain(peer_sock, 0.5)
    time.sleep(1.2)
    after = metrics()
    dropped = delta(after, before, 'anyturn_dropped_packets_total{reason="packet_rate"}')
    fwd = xdp_forwarded(after, "to_peer") - xdp_forwarded(before, "to_peer")
    in_program = delta(after, before, 'anyturn_xdp_packets_total{direction="to_peer",action="drop"}')
    limit = rate * (1 + took) + 2
    say(f"burst of {burst} in {1000 * took:.0f} ms at a limit of {rate}/s: peer got {len(got)}, "
        f"packet_rate drops +{dropped:.0f} (dropped by the program: {in_program:.0f}), xdp forwarded +{fwd:.0f}")
    if len(got) > limit or len(got) < rate * 0.9:
        fail(f"delivered {len(got)}, expected about {rate} (at most {limit:.0f})")
    if dropped < burst - len(got) - 2:
        fail(f"only {dropped:.0f} drops counted for {burst - len(got)} packets not delivered")
    if fwd < len(got) * 0.9:
        fail("the burst did not take the fast path")
    if in_program < (burst - len(got)) * 0.9:
        fail("the program did not apply the packet rate limit itself")


def case_hairpin():
    """A peer on the client's side (HAIRPIN_PEER_IP in the client namespace,
    reaching the relay address through the server): both directions leave by
    the interface they came in on, XDP_TX."""
    peer_sock = peer_socket(ENV["HAIRPIN_PEER_IP"], CLIENT_NS)
    t = established(peer_sock)
    before = metrics()
    n = 50
    for i in range(n):
        t.channel_data(0x4000, b"up-%02d" % i)
    up = [d for d, _ in drain(peer_sock, 0.5)]
    for i in range(n):
        peer_sock.sendto(b"down-%02d" % i, t.relay)
    down = channel_payloads(drain(t.sock, 0.5), 0x4000)
    after = metrics()
    tx = {d: delta(after, before, f'anyturn_xdp_packets_total{{direction="{d}",action="tx"}}')
          for d in ("to_peer", "to_client")}
    say(f"hairpin: peer got {len(up)}/{n}, client got {len(down)}/{n}; xdp tx to_peer +{tx['to_peer']:.0f}, "
        f"to_client +{tx['to_client']:.0f}")
    if sorted(up) != [b"up-%02d" % i for i in range(n)] or sorted(down) != [b"down-%02d" % i for i in range(n)]:
        fail("datagrams were lost")
    if tx["to_peer"] < n or tx["to_client"] < n:
        fail("the program did not send them back out of the interface they came in on (XDP_TX)")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        sys.exit(f"usage: xdp_cases.py {'|'.join(CASES)}")
    CASES[sys.argv[1]]()
    say("PASS")
