/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
 * (the kernel loads it under GPL-2.0: bpf_fib_lookup is a GPL-only helper) */
/* A program that passes every frame: tests and benchmarks attach it to the
 * far end of a veth pair, where XDP_TX and redirected frames are only
 * received when that end runs an XDP program (or GRO). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx) {
  (void)ctx;
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
