#!/usr/bin/env python3
"""Medians and target ratios of a scripts/bench-xdp.sh run, as markdown.

usage: report_xdp.py RESULTS.jsonl

CPU per relayed packet (each echoed packet is relayed twice), from
/proc/stat and the processes' own CPU time:
  relay   = the server process + irq/softirq of every CPU (the kernel's
            packet work no process is charged for: NAPI, GRO, XDP programs;
            the generator's receive side is in it too, the same for every
            server) -- the figure the targets are judged on;
  ours    = relay + the load generator's process;
  machine = user + system + irq + softirq of every CPU (niced work, other
            people's builds here, left out; their other jobs are not).
"""
import json
import statistics
import sys

SERVERS = ["coturn", "anyturn", "anyturn-gro", "anyturn-xdp", "ceiling-gso", "ceiling-xdp"]
SCENARIOS = {
    "c1_200": "1 client, 200 B, max rate (closed loop, 32 in flight)",
    "c100_200": "100 clients, 200 B, max rate (16 in flight each)",
    "paced100": "100 clients paced at 50 pkt/s (5,000 pkt/s), 200 B",
}


def med(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and r[key] == r[key]]
    return statistics.median(vals) if vals else float("nan")


def fmt(v, digits=0):
    if v != v:
        return "–"
    return f"{v:,.{digits}f}"


def saturated(r):
    """Which side ran out of CPU: the generator's process, the server's, or
    a whole CPU (softirq included) while neither process did."""
    gen = med(r, "gen_cpu_pct")
    srv = med(r, "server_cpu_pct")
    cpus = [med(r, f"cpu{i}_pct") for i in range(2)]
    out = []
    if gen >= 90:
        out.append("generator")
    if srv == srv and srv >= 90:
        out.append("server")
    if not out:
        full = [f"cpu{i}" for i, c in enumerate(cpus) if c == c and c >= 90]
        out.append(("kernel on " + "+".join(full)) if full else "neither")
    return ", ".join(out)


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    by = {}
    for r in rows:
        by.setdefault((r["scenario"], r["server"]), []).append(r)
    m = {}
    print("| scenario | server | pkt/s | loss | relay CPU ns/pkt | ours ns/pkt | machine ns/pkt | server process ns/pkt "
          "| generator CPU % | server process CPU % | CPU0 / CPU1 % | saturated | machine busy before % | reps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for sc, title in SCENARIOS.items():
        first = True
        for sv in SERVERS:
            r = by.get((sc, sv))
            if not r:
                continue
            m[(sc, sv)] = {
                "pps": med(r, "pps"),
                "machine": med(r, "machine_cpu_ns_per_pkt"),
                "relay": med(r, "relay_cpu_ns_per_pkt"),
            }
            print(f"| {title if first else ''} | {sv} | {fmt(med(r, 'pps'))} | {fmt(100 * med(r, 'loss'), 3)}% "
                  f"| {fmt(med(r, 'relay_cpu_ns_per_pkt'))} | {fmt(med(r, 'ours_cpu_ns_per_pkt'))} | {fmt(med(r, 'machine_cpu_ns_per_pkt'))} "
                  f"| {fmt(med(r, 'server_cpu_ns_per_pkt'))} | {fmt(med(r, 'gen_cpu_pct'), 1)} "
                  f"| {fmt(med(r, 'server_cpu_pct'), 1)} | {fmt(med(r, 'cpu0_pct'))} / {fmt(med(r, 'cpu1_pct'))} | {saturated(r)} "
                  f"| {fmt(med(r, 'busy_before_pct'))} | {len(r)} |")
            first = False

    def ratio(a, b, key, invert=False):
        if a not in m or b not in m:
            return "not measured"
        x, y = m[a][key], m[b][key]
        if x != x or y != y or y == 0 or x == 0:
            return "–"
        return f"{(y / x if invert else x / y):.2f}×"

    print()
    print("| target | scenario | relay CPU | machine CPU |")
    print("|---|---|---|---|")
    for sc in ("c1_200", "c100_200"):
        # pkt/s per CPU-second = 1 / (CPU ns per packet): the ratio is inverted.
        print(f"| anyturn-xdp ≥ 3× anyturn's pkt/s per CPU-second | {sc} "
              f"| {ratio((sc, 'anyturn-xdp'), (sc, 'anyturn'), 'relay', True)} "
              f"| {ratio((sc, 'anyturn-xdp'), (sc, 'anyturn'), 'machine', True)} |")
    for sc in ("c1_200", "c100_200"):
        print(f"| anyturn-xdp ≥ 0.8× the XDP ceiling's pkt/s | {sc} "
              f"| {ratio((sc, 'anyturn-xdp'), (sc, 'ceiling-xdp'), 'pps')} | (pkt/s) |")
    print(f"| anyturn-xdp CPU per packet ≤ 0.3× coturn's at 5 k pkt/s | paced100 "
          f"| {ratio(('paced100', 'anyturn-xdp'), ('paced100', 'coturn'), 'relay')} "
          f"| {ratio(('paced100', 'anyturn-xdp'), ('paced100', 'coturn'), 'machine')} |")
    for sc in SCENARIOS:
        print(f"| anyturn with UDP_GRO: CPU per packet ≤ 0.5× coturn's | {sc} "
              f"| {ratio((sc, 'anyturn-gro'), (sc, 'coturn'), 'relay')} "
              f"| {ratio((sc, 'anyturn-gro'), (sc, 'coturn'), 'machine')} |")
    for sc in SCENARIOS:
        print(f"| (anyturn without UDP_GRO, for comparison) | {sc} "
              f"| {ratio((sc, 'anyturn'), (sc, 'coturn'), 'relay')} "
              f"| {ratio((sc, 'anyturn'), (sc, 'coturn'), 'machine')} |")
    for sc in ("c1_200", "c100_200"):
        print(f"| anyturn's pkt/s against the GSO/GRO ceiling (user space) | {sc} "
              f"| {ratio((sc, 'anyturn'), (sc, 'ceiling-gso'), 'pps')} (UDP_GRO: "
              f"{ratio((sc, 'anyturn-gro'), (sc, 'ceiling-gso'), 'pps')}) | (pkt/s) |")


if __name__ == "__main__":
    main()
