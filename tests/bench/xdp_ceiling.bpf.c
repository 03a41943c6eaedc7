// The kernel ceiling of the relay benchmark: the least an XDP relay must do
// per packet, without TURN. A hash map keyed by the packet's 4-tuple (as the
// server sees it: destination = the listener or relay address, source = the
// client or peer) names the rewrite: new source (relay or listener) and new
// destination (peer or client). The program rewrites the addresses and
// ports, fixes the IPv4 header checksum and the UDP checksum incrementally
// (0 stays 0), looks the egress up in the FIB and leaves with XDP_TX or a
// redirect. No ChannelData header is stripped or added: the same rewrite as
// anyturn's fast path minus that. Everything else (no entry, IP options,
// fragments, IPv6, no neighbour yet) goes up untouched (XDP_PASS).
//
// Built by tests/bench/CMakeLists.txt with clang -target bpf; loaded by
// anyturn-xdp-ceiling (xdp_ceiling.cpp).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef AF_INET
#define AF_INET 2
#endif

struct route_key {
  __be32 dst_ip;  // the server's address the packet reached
  __be32 src_ip;
  __be16 dst_port;
  __be16 src_port;
};

struct route {
  __be32 new_src_ip;
  __be32 new_dst_ip;
  __be16 new_src_port;
  __be16 new_dst_port;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct route_key);
  __type(value, struct route);
} routes SEC(".maps");

// Counters (per CPU): 0 tx, 1 redirect, 2 pass (no entry or not UDP/IPv4),
// 3 pass (no neighbour / FIB miss).
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 what) {
  __u64* v = bpf_map_lookup_elem(&stats, &what);
  if (v) *v += 1;
}

static __always_inline __u16 fold(__u64 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

SEC("xdp")
int xdp_ceiling(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) goto pass;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP) goto pass;
  if (ip->frag_off & bpf_htons(0x3fff)) goto pass;  // MF or an offset
  struct udphdr* udp = (void*)(ip + 1);
  if ((void*)(udp + 1) > end) goto pass;

  struct route_key key = {
      .dst_ip = ip->daddr, .src_ip = ip->saddr, .dst_port = udp->dest, .src_port = udp->source};
  struct route* r = bpf_map_lookup_elem(&routes, &key);
  if (!r) goto pass;

  // Egress first: nothing is changed when the packet must go up.
  struct bpf_fib_lookup fib = {};
  fib.family = AF_INET;
  fib.l4_protocol = IPPROTO_UDP;
  fib.tot_len = bpf_ntohs(ip->tot_len);
  fib.ipv4_src = r->new_src_ip;
  fib.ipv4_dst = r->new_dst_ip;
  fib.ifindex = ctx->ingress_ifindex;
  if (bpf_fib_lookup(ctx, &fib, sizeof fib, 0) != BPF_FIB_LKUP_RET_SUCCESS) {
    count(3);
    return XDP_PASS;
  }

  // The pseudo-header's addresses and the ports, old and new.
  __be32 old[3] = {ip->saddr, ip->daddr, ((__be32)udp->dest << 16) | udp->source};
  __be32 now[3] = {r->new_src_ip, r->new_dst_ip, ((__be32)r->new_dst_port << 16) | r->new_src_port};
  if (udp->check != 0) {
    __s64 d = bpf_csum_diff(old, sizeof old, now, sizeof now, (__u16)~udp->check);
    if (d >= 0) {
      __u16 c = fold((__u64)d);
      udp->check = c == 0 ? 0xffff : c;
    }
  }
  __s64 d = bpf_csum_diff(old, 8, now, 8, (__u16)~ip->check);
  if (d >= 0) ip->check = fold((__u64)d);
  ip->saddr = r->new_src_ip;
  ip->daddr = r->new_dst_ip;
  udp->source = r->new_src_port;
  udp->dest = r->new_dst_port;

  __builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
  if (fib.ifindex == ctx->ingress_ifindex) {
    count(0);
    return XDP_TX;
  }
  count(1);
  return bpf_redirect(fib.ifindex, 0);

pass:
  count(2);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
