/* anyturn XDP offload: the layout of the maps, shared by the BPF program
 * (relay.bpf.c) and the loader (offload.cpp). C, for both compilers.
 *
 * Byte order: addresses, ports and the channel number are kept in network
 * order (as they are in the packet), everything else in host order.
 * IPv4 addresses use the first 4 bytes of the 16-byte fields, the rest is
 * zero. Keys are compared bytewise: every padding byte is zero.
 */
#ifndef ANYTURN_XDP_RELAY_MAPS_H
#define ANYTURN_XDP_RELAY_MAPS_H

#include <linux/bpf.h>
#include <linux/types.h>

#define AT_FAMILY_V4 4
#define AT_FAMILY_V6 6

/* chan_to_peer: ChannelData from a client, keyed by what the program reads
 * from the datagram: client ip:port -> listener ip:port and channel. */
struct at_c2p_key {
  __u8 family;             /* AT_FAMILY_V4 | AT_FAMILY_V6 */
  __u8 pad;
  __be16 channel;          /* 0x4000..0x4FFF */
  __be16 client_port;
  __be16 listener_port;
  __u8 client_ip[16];
  __u8 listener_ip[16];
};

/* chan_to_client: a datagram from a peer to a relay address. */
struct at_p2c_key {
  __u8 family;
  __u8 pad;
  __be16 peer_port;
  __be16 relay_port;
  __u16 pad2;
  __u8 peer_ip[16];
  __u8 relay_ip[16];
};

#define AT_CHAN_DF 1 /* set DF on the IPv4 packet toward the peer */

/* The value of both channel maps: the rewrite (new source and destination)
 * and the allocation it belongs to. */
struct at_chan {
  __u64 alloc;        /* key of the allocations map */
  __u64 expires_ns;   /* CLOCK_MONOTONIC (bpf_ktime_get_ns); passed up from then on */
  __u8 src_ip[16];    /* to the peer: the relay address; to the client: the listener */
  __u8 dst_ip[16];    /* the peer, or the client */
  __be16 src_port;
  __be16 dst_port;
  __be16 channel;     /* to the client: the ChannelData number to prepend */
  __u8 flags;         /* AT_CHAN_DF */
  __u8 family;
};

/* A token bucket in billionths of a token, so that refilling from a
 * nanosecond clock needs no rounding: `rate` tokens a second add
 * rate nano-tokens a nanosecond. rate 0: no limit. */
struct at_bucket {
  __u64 rate;        /* tokens a second */
  __u64 burst_nano;  /* burst * 1e9 */
  __u64 nano;        /* tokens held * 1e9 */
  __u64 last_ns;     /* last refill, CLOCK_MONOTONIC */
};

#define AT_TO_PEER 0
#define AT_TO_CLIENT 1

/* allocations: keyed by a 64-bit handle (never 0). The program updates it
 * under the lock; user space reads it with BPF_F_LOCK. Counts are payload
 * bytes (the ChannelData payload), as user space counts them. */
struct at_alloc {
  struct bpf_spin_lock lock;
  __u32 pad;
  __u64 packets[2]; /* [AT_TO_PEER | AT_TO_CLIENT] */
  __u64 bytes[2];
  __u64 packet_rate_dropped;
  __u64 byte_rate_dropped;
  __u64 bandwidth_dropped;
  struct at_bucket pkt[2];  /* limits.allocation.packets_per_second, per direction */
  struct at_bucket byt[2];  /* limits.allocation.bytes_per_second, per direction */
  struct at_bucket bw;      /* quotas.bandwidth: both directions share it */
};

/* stats: a per-CPU array of one entry. Indices follow offload.hpp's
 * direction, action and fallback enums (the loader checks them). */
#define AT_ACTION_TX 0
#define AT_ACTION_REDIRECT 1
#define AT_ACTION_PASS 2
#define AT_ACTION_DROP 3
#define AT_FB_EXPIRED 3
#define AT_FB_NO_ROUTE 4
#define AT_FB_TOO_BIG 5
#define AT_FB_PADDING 6
#define AT_FB_ZERO_CHECKSUM 7
#define AT_FB_COUNT 8

struct at_stats {
  __u64 packets[2][4]; /* [direction][action] */
  __u64 fallbacks[AT_FB_COUNT];
};

#endif
