/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
 * (the kernel loads it under GPL-2.0: bpf_fib_lookup is a GPL-only helper) */
/* anyturn XDP offload: forwards the UDP traffic of established TURN
 * channels without user space (docs/architecture.md, "Kernel fast path").
 *
 * Egress: bpf_fib_lookup (as the kernel would route the rewritten packet),
 * asked as if the packet came in on `lookup_ifindex` (loopback: the lookup
 * answers only for an interface with forwarding on, and turning it on for
 * loopback alone keeps the host from routing what arrives on the real
 * interfaces); XDP_TX when the egress is the ingress interface, else a
 * redirect through tx_ports when it is another attached interface, else
 * the packet passes up.
 *
 *  client -> peer: ChannelData on a listener port whose (client, listener,
 *    channel) is in chan_to_peer: strip the 4-byte header and any zero
 *    padding, rewrite to relay -> peer, transmit.
 *  peer -> client: a datagram whose (peer, relay) is in chan_to_client:
 *    prepend the ChannelData header, rewrite to listener -> client, transmit.
 *
 * Everything else (STUN, indications, unknown 5-tuples, fragments, IP
 * options, IPv6 extension headers, TCP, VLAN tags) is XDP_PASS, untouched.
 * Packets of a known entry that the program cannot forward (expired, no
 * neighbour yet, too big, odd padding, IPv6 checksum zero) also pass, and
 * are counted as fallbacks; the allocation's token buckets drop.
 *
 * User space is the only writer of the channel maps; the program reads them
 * and updates the allocation entry (counters, buckets) under its lock.
 * No loops: every access is at a fixed offset or bounded by a check.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "relay_maps.h"

#define AF_INET 2
#define AF_INET6 10
#define RELAY_TTL 64

/* Sizes are set by the loader (bpf_map__set_max_entries) before load. */
/* The interface the route lookups are asked from (set by the loader before
 * load: loopback's ifindex). */
const volatile __u32 lookup_ifindex = 1;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, struct at_c2p_key);
  __type(value, struct at_chan);
} chan_to_peer SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, struct at_p2c_key);
  __type(value, struct at_chan);
} chan_to_client SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, __u64);
  __type(value, struct at_alloc);
} allocations SEC(".maps");

/* The interfaces the program is attached to (the loader fills it): the only
 * egress a packet is redirected to. */
struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct bpf_devmap_val);
} tx_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct at_stats);
} stats SEC(".maps");

/* What the parser found: the outer headers of a plain UDP datagram. */
struct parsed {
  __u8 family;
  __u8 tos;        /* IPv4 TOS / IPv6 traffic class (kept) */
  __be16 ip_id;    /* IPv4 identification (kept) */
  __u32 l4;        /* offset of the UDP header */
  __u32 udp_len;   /* from the UDP header, checked against the IP length */
  __u16 csum;      /* the UDP checksum as received */
  __be16 sport, dport;
  __u8 src[16], dst[16];
};

/* The words of the UDP checksum that a rewrite changes: the pseudo-header
 * addresses, the ports, the length (pseudo-header and header) and the
 * ChannelData header. IPv4 addresses leave 12 zero bytes, which add nothing
 * to a ones' complement sum, so one layout serves both families. */
struct csum_words {
  __u8 src[16];
  __u8 dst[16];
  __be16 sport, dport;
  __be16 len1, len2;
  __be16 ch_number, ch_length;
};

static __always_inline void count(__u32 dir, __u32 action, int fallback) {
  __u32 zero = 0;
  struct at_stats *s = bpf_map_lookup_elem(&stats, &zero);
  if (!s) return;
  if (dir < 2 && action < 4) s->packets[dir][action] += 1;
  if (fallback >= 0 && fallback < AT_FB_COUNT) s->fallbacks[fallback] += 1;
}

static __always_inline __u16 fold(__u64 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)sum;
}

static __always_inline int parse(struct xdp_md *ctx, struct parsed *p) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return -1;
  __u32 frame = (__u32)(end - data);
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) return -1;
    if (ip->ihl != 5 || ip->version != 4) return -1;                /* options */
    if (ip->frag_off & bpf_htons(0x3fff)) return -1;                 /* MF or offset */
    if (ip->protocol != IPPROTO_UDP) return -1;
    __u32 tot = bpf_ntohs(ip->tot_len);
    if (tot < sizeof(*ip) + sizeof(struct udphdr) || sizeof(*eth) + tot > frame) return -1;
    struct udphdr *udp = (void *)(ip + 1);
    if ((void *)(udp + 1) > end) return -1;
    p->family = AT_FAMILY_V4;
    p->tos = ip->tos;
    p->ip_id = ip->id;
    p->l4 = sizeof(*eth) + sizeof(*ip);
    p->udp_len = bpf_ntohs(udp->len);
    if (p->udp_len != tot - sizeof(*ip)) return -1;
    __builtin_memcpy(p->src, &ip->saddr, 4);
    __builtin_memcpy(p->dst, &ip->daddr, 4);
    p->csum = udp->check;
    p->sport = udp->source;
    p->dport = udp->dest;
    return 0;
  }
  if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    if ((void *)(ip6 + 1) > end) return -1;
    if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP) return -1;  /* extension headers */
    __u32 plen = bpf_ntohs(ip6->payload_len);
    if (plen < sizeof(struct udphdr) || sizeof(*eth) + sizeof(*ip6) + plen > frame) return -1;
    struct udphdr *udp = (void *)(ip6 + 1);
    if ((void *)(udp + 1) > end) return -1;
    p->family = AT_FAMILY_V6;
    p->tos = (__u8)((ip6->priority << 4) | (ip6->flow_lbl[0] >> 4));
    p->ip_id = 0;
    p->l4 = sizeof(*eth) + sizeof(*ip6);
    p->udp_len = bpf_ntohs(udp->len);
    if (p->udp_len != plen) return -1;
    __builtin_memcpy(p->src, &ip6->saddr, 16);
    __builtin_memcpy(p->dst, &ip6->daddr, 16);
    p->csum = udp->check;
    p->sport = udp->source;
    p->dport = udp->dest;
    return 0;
  }
  return -1;
}

/* relay::token_bucket's take(), on the nanosecond clock: refills `b` to
 * `now`, then takes `n` tokens, or returns 0 and takes none. */
static __always_inline int bucket_take(struct at_bucket *b, __u64 n, __u64 now) {
  if (b->rate == 0) return 1;
  if (now > b->last_ns) {
    __u64 elapsed = now - b->last_ns;
    if (elapsed >= b->burst_nano / b->rate) { /* a refill from empty takes no longer */
      b->nano = b->burst_nano;
    } else {
      __u64 filled = b->nano + elapsed * b->rate;
      b->nano = filled < b->burst_nano ? filled : b->burst_nano;
    }
    b->last_ns = now;
  }
  __u64 need = n * 1000000000ULL;
  if (b->nano < need) return 0;
  b->nano -= need;
  return 1;
}

/* Applies the allocation's limits to one packet of `bytes` payload bytes in
 * the order relay::forwarder::within_limits does (the packet bucket, the
 * byte bucket, then the shared bandwidth; a bucket passed keeps what it
 * gave) and counts it: 1 forwarded, 0 dropped (counted), -1 no allocation. */
static __always_inline int charge(__u64 handle, __u32 dir, __u64 bytes, __u64 now) {
  struct at_alloc *a = bpf_map_lookup_elem(&allocations, &handle);
  if (!a) return -1;
  int ok = 0;
  __u32 d = dir == AT_TO_PEER ? 0 : 1;
  bpf_spin_lock(&a->lock);
  if (!bucket_take(&a->pkt[d], 1, now)) {
    a->packet_rate_dropped += 1;
  } else if (!bucket_take(&a->byt[d], bytes, now)) {
    a->byte_rate_dropped += 1;
  } else if (!bucket_take(&a->bw, bytes, now)) {
    a->bandwidth_dropped += 1;
  } else {
    a->packets[d] += 1;
    a->bytes[d] += bytes;
    ok = 1;
  }
  bpf_spin_unlock(&a->lock);
  return ok;
}

/* Looks up the egress for the rewritten packet: 0 and the MACs and ifindex
 * in `fib`, or a fallback reason. */
static __always_inline int route(struct xdp_md *ctx, const struct at_chan *c, __u32 ip_len,
                                 struct bpf_fib_lookup *fib) {
  __builtin_memset(fib, 0, sizeof(*fib));
  fib->l4_protocol = IPPROTO_UDP;
  fib->sport = c->src_port;
  fib->dport = c->dst_port;
  fib->tot_len = (__u16)ip_len;
  fib->ifindex = lookup_ifindex;
  if (c->family == AT_FAMILY_V4) {
    fib->family = AF_INET;
    __builtin_memcpy(&fib->ipv4_src, c->src_ip, 4);
    __builtin_memcpy(&fib->ipv4_dst, c->dst_ip, 4);
  } else {
    fib->family = AF_INET6;
    __builtin_memcpy(fib->ipv6_src, c->src_ip, 16);
    __builtin_memcpy(fib->ipv6_dst, c->dst_ip, 16);
  }
  long rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
  if (rc == BPF_FIB_LKUP_RET_SUCCESS) return 0;
  if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) return AT_FB_TOO_BIG;
  return AT_FB_NO_ROUTE;
}

/* Writes Ethernet, IP and UDP headers for the rewritten datagram at the
 * (new) start of the frame. `udp_len` includes the UDP header. */
static __always_inline int write_headers(struct xdp_md *ctx, const struct parsed *p,
                                         const struct at_chan *c,
                                         const struct bpf_fib_lookup *fib, __u32 udp_len,
                                         __u16 udp_csum) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return -1;
  __builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
  struct udphdr *udp;
  if (c->family == AT_FAMILY_V4) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) return -1;
    struct iphdr h = {};
    h.version = 4;
    h.ihl = 5;
    h.tos = p->tos;
    h.tot_len = bpf_htons((__u16)(sizeof(h) + udp_len));
    h.id = p->ip_id;
    h.frag_off = (c->flags & AT_CHAN_DF) ? bpf_htons(0x4000) : 0;
    h.ttl = RELAY_TTL;
    h.protocol = IPPROTO_UDP;
    __builtin_memcpy(&h.saddr, c->src_ip, 4);
    __builtin_memcpy(&h.daddr, c->dst_ip, 4);
    h.check = (__u16)~fold(bpf_csum_diff(0, 0, (__be32 *)&h, sizeof(h), 0));
    eth->h_proto = bpf_htons(ETH_P_IP);
    *ip = h;
    udp = (void *)(ip + 1);
  } else {
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    if ((void *)(ip6 + 1) > end) return -1;
    struct ipv6hdr h = {};
    h.version = 6;
    h.priority = p->tos >> 4;
    h.flow_lbl[0] = (__u8)(p->tos << 4);
    h.payload_len = bpf_htons((__u16)udp_len);
    h.nexthdr = IPPROTO_UDP;
    h.hop_limit = RELAY_TTL;
    __builtin_memcpy(&h.saddr, c->src_ip, 16);
    __builtin_memcpy(&h.daddr, c->dst_ip, 16);
    eth->h_proto = bpf_htons(ETH_P_IPV6);
    *ip6 = h;
    udp = (void *)(ip6 + 1);
  }
  if ((void *)(udp + 1) > end) return -1;
  udp->source = c->src_port;
  udp->dest = c->dst_port;
  udp->len = bpf_htons((__u16)udp_len);
  udp->check = udp_csum;
  return 0;
}

/* The UDP checksum after the rewrite, from the received one: `old` and
 * `new` hold the changed words. IPv4 checksum 0 (none) stays 0. */
static __always_inline __u16 udp_checksum(const struct parsed *p, struct csum_words *old,
                                          struct csum_words *new) {
  if (p->csum == 0) return 0;
  __u32 seed = (__u16)~p->csum;
  __s64 sum = bpf_csum_diff((__be32 *)old, sizeof(*old), (__be32 *)new, sizeof(*new), seed);
  __u16 c = (__u16)~fold((__u64)sum);
  return c == 0 ? 0xffff : c;
}

static __always_inline int finish(struct xdp_md *ctx, __u32 dir, const struct bpf_fib_lookup *fib) {
  if (fib->ifindex == ctx->ingress_ifindex) {
    count(dir, AT_ACTION_TX, -1);
    return XDP_TX;
  }
  count(dir, AT_ACTION_REDIRECT, -1);
  return bpf_redirect_map(&tx_ports, fib->ifindex, 0);
}

/* The checks every known entry passes through before its rewrite: expiry,
 * IPv6 checksum zero, the route, the buckets. XDP_* when done (pass or
 * drop, counted), or -1 to forward. */
static __always_inline int admit(struct xdp_md *ctx, const struct parsed *p, const struct at_chan *c,
                                 __u32 dir, __u32 new_udp_len, __u64 payload,
                                 struct bpf_fib_lookup *fib) {
  __u64 now = bpf_ktime_get_ns();
  if (now >= c->expires_ns) {
    count(dir, AT_ACTION_PASS, AT_FB_EXPIRED);
    return XDP_PASS;
  }
  if (p->family == AT_FAMILY_V6 && p->csum == 0) {
    count(dir, AT_ACTION_PASS, AT_FB_ZERO_CHECKSUM);
    return XDP_PASS;
  }
  __u32 ip_len = new_udp_len + (c->family == AT_FAMILY_V4 ? sizeof(struct iphdr)
                                                          : sizeof(struct ipv6hdr));
  int reason = route(ctx, c, ip_len, fib);
  if (!reason && fib->ifindex != ctx->ingress_ifindex) {
    __u32 egress = fib->ifindex;
    if (!bpf_map_lookup_elem(&tx_ports, &egress)) reason = AT_FB_NO_ROUTE; /* not an XDP interface */
  }
  if (reason) {
    count(dir, AT_ACTION_PASS, reason);
    return XDP_PASS;
  }
  int ok = charge(c->alloc, dir, payload, now);
  if (ok < 0) { /* user space is between removing the allocation and its channels */
    count(dir, AT_ACTION_PASS, -1);
    return XDP_PASS;
  }
  if (ok == 0) {
    count(dir, AT_ACTION_DROP, -1);
    return XDP_DROP;
  }
  return -1;
}

static __always_inline int to_peer(struct xdp_md *ctx, const struct parsed *p) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  __u32 l4 = p->l4;
  if (l4 > 64) return XDP_PASS;
  __u8 *payload = data + l4 + sizeof(struct udphdr);
  /* Not ChannelData (too short, or not 0x4000..0x7FFF): maybe from a peer. */
  if ((void *)(payload + 4) > end) return -1;
  if ((payload[0] & 0xc0) != 0x40) return -1;
  struct at_c2p_key key = {};
  key.family = p->family;
  __builtin_memcpy(&key.channel, payload, 2);
  key.client_port = p->sport;
  key.listener_port = p->dport;
  __builtin_memcpy(key.client_ip, p->src, 16);
  __builtin_memcpy(key.listener_ip, p->dst, 16);
  struct at_chan *found = bpf_map_lookup_elem(&chan_to_peer, &key);
  if (!found) return -1;
  struct at_chan c = *found;
  if (c.family != p->family) return XDP_PASS; /* user space never installs one */
  __be16 ch_number, ch_length;
  __builtin_memcpy(&ch_number, payload, 2);
  __builtin_memcpy(&ch_length, payload + 2, 2);
  __u32 len = bpf_ntohs(ch_length);
  __u32 plen = p->udp_len - sizeof(struct udphdr);
  if (plen < 4 || len > plen - 4) { /* truncated ChannelData */
    count(AT_TO_PEER, AT_ACTION_PASS, AT_FB_PADDING);
    return XDP_PASS;
  }
  __u32 extra = plen - 4 - len;
  if (extra > 3) {
    count(AT_TO_PEER, AT_ACTION_PASS, AT_FB_PADDING);
    return XDP_PASS;
  }
  if (extra > 0) { /* the padding must be zero bytes */
    __u32 tail = 0;
    if (bpf_xdp_load_bytes(ctx, l4 + p->udp_len - 4, &tail, 4) < 0) return XDP_PASS;
    __u32 mask = extra == 1 ? 0xff : extra == 2 ? 0xffff : 0xffffff;
    if (bpf_ntohl(tail) & mask) {
      count(AT_TO_PEER, AT_ACTION_PASS, AT_FB_PADDING);
      return XDP_PASS;
    }
  }
  __u32 new_udp_len = sizeof(struct udphdr) + len;
  struct bpf_fib_lookup fib;
  int verdict = admit(ctx, p, &c, AT_TO_PEER, new_udp_len, len, &fib);
  if (verdict >= 0) return verdict;

  struct csum_words old = {}, new = {};
  __builtin_memcpy(old.src, p->src, 16);
  __builtin_memcpy(old.dst, p->dst, 16);
  old.sport = p->sport;
  old.dport = p->dport;
  old.len1 = old.len2 = bpf_htons((__u16)p->udp_len);
  old.ch_number = ch_number;
  old.ch_length = ch_length;
  __builtin_memcpy(new.src, c.src_ip, 16);
  __builtin_memcpy(new.dst, c.dst_ip, 16);
  new.sport = c.src_port;
  new.dport = c.dst_port;
  new.len1 = new.len2 = bpf_htons((__u16)new_udp_len);
  __u16 csum = udp_checksum(p, &old, &new);

  /* Cut the padding (and any Ethernet trailer), then the ChannelData header. */
  int delta = (int)(l4 + sizeof(struct udphdr) + 4 + len) - (int)(end - data);
  if (delta < 0 && bpf_xdp_adjust_tail(ctx, delta) < 0) return XDP_ABORTED;
  if (bpf_xdp_adjust_head(ctx, 4) < 0) return XDP_ABORTED;
  if (write_headers(ctx, p, &c, &fib, new_udp_len, csum) < 0) return XDP_ABORTED;
  return finish(ctx, AT_TO_PEER, &fib);
}

static __always_inline int to_client(struct xdp_md *ctx, const struct parsed *p) {
  struct at_p2c_key key = {};
  key.family = p->family;
  key.peer_port = p->sport;
  key.relay_port = p->dport;
  __builtin_memcpy(key.peer_ip, p->src, 16);
  __builtin_memcpy(key.relay_ip, p->dst, 16);
  struct at_chan *found = bpf_map_lookup_elem(&chan_to_client, &key);
  if (!found) return XDP_PASS;
  struct at_chan c = *found;
  if (c.family != p->family) return XDP_PASS;
  __u32 len = p->udp_len - sizeof(struct udphdr);
  __u32 new_udp_len = p->udp_len + 4;
  if (new_udp_len > 0xffff - sizeof(struct ipv6hdr)) {
    count(AT_TO_CLIENT, AT_ACTION_PASS, AT_FB_TOO_BIG);
    return XDP_PASS;
  }
  struct bpf_fib_lookup fib;
  int verdict = admit(ctx, p, &c, AT_TO_CLIENT, new_udp_len, len, &fib);
  if (verdict >= 0) return verdict;

  __be16 ch_length = bpf_htons((__u16)len);
  struct csum_words old = {}, new = {};
  __builtin_memcpy(old.src, p->src, 16);
  __builtin_memcpy(old.dst, p->dst, 16);
  old.sport = p->sport;
  old.dport = p->dport;
  old.len1 = old.len2 = bpf_htons((__u16)p->udp_len);
  __builtin_memcpy(new.src, c.src_ip, 16);
  __builtin_memcpy(new.dst, c.dst_ip, 16);
  new.sport = c.src_port;
  new.dport = c.dst_port;
  new.len1 = new.len2 = bpf_htons((__u16)new_udp_len);
  new.ch_number = c.channel;
  new.ch_length = ch_length;
  __u16 csum = udp_checksum(p, &old, &new);

  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  int delta = (int)(p->l4 + p->udp_len) - (int)(end - data); /* an Ethernet trailer */
  if (delta < 0 && bpf_xdp_adjust_tail(ctx, delta) < 0) return XDP_ABORTED;
  if (bpf_xdp_adjust_head(ctx, -4) < 0) return XDP_ABORTED;
  if (write_headers(ctx, p, &c, &fib, new_udp_len, csum) < 0) return XDP_ABORTED;
  data = (void *)(long)ctx->data;
  end = (void *)(long)ctx->data_end;
  __u32 l4 = c.family == AT_FAMILY_V4 ? sizeof(struct ethhdr) + sizeof(struct iphdr)
                                      : sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
  __u8 *ch = data + l4 + sizeof(struct udphdr);
  if ((void *)(ch + 4) > end) return XDP_ABORTED;
  __builtin_memcpy(ch, &c.channel, 2);
  __builtin_memcpy(ch + 2, &ch_length, 2);
  return finish(ctx, AT_TO_CLIENT, &fib);
}

SEC("xdp")
int anyturn_relay(struct xdp_md *ctx) {
  struct parsed p;
  __builtin_memset(&p, 0, sizeof(p));
  if (parse(ctx, &p) < 0) return XDP_PASS;
  int verdict = to_peer(ctx, &p);
  if (verdict >= 0) return verdict;
  return to_client(ctx, &p);
}

char LICENSE[] SEC("license") = "GPL";
