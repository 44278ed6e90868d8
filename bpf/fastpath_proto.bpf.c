// SPDX-License-Identifier: GPL-2.0
/*
 * fastpath_proto: the measurement prototype for fast-path dispatch (issue 5), used by
 * bench/bench_bpf.c.  It is the data path a kernel fast path would have, and nothing
 * else: an sk_skb verdict program on a sockmap holding a broker's ends of two unix
 * socket pairs (driver side at key 0, worker side at key 1) that sends every kray frame
 * of type KRAY_MSG_FAST_EXEC out to the worker and every KRAY_MSG_FAST_RESULT back to
 * the driver, without waking the broker process.  Frames it does not know go to the
 * broker (SK_PASS), as a real fast path would hand krayd everything it cannot steer.
 *
 * AF_UNIX sockets get no stream parser (strparser is TCP-only); the verdict sees one skb
 * per write, so the prototype's peers write one frame per send.  The bench compares the
 * round trip through it with a raw socket ping-pong and with krayd's daemon path:
 * docs/observability.md records the figures and the decision taken from them.
 */
/* The UAPI headers, not vmlinux.h: without CO-RE relocations libbpf need not parse the
 * kernel's BTF (about 140 ms) to load this object.  An sk_skb program reads only its
 * context and the packet, whose layout is UAPI. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../include/uapi/kray_bpf.h"
#include "../include/uapi/kray_wire.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

__u64 steered = 0; /* frames redirected, read by the bench */
__u64 passed = 0;

SEC("sk_skb")
int verdict(struct __sk_buff *skb)
{
	struct kray_frame_hdr h;

	if (bpf_skb_load_bytes(skb, 0, &h, sizeof(h)) || h.magic != KRAY_WIRE_MAGIC)
		goto pass;
	if (h.type == KRAY_MSG_FAST_EXEC) {
		__sync_fetch_and_add(&steered, 1);
		return bpf_sk_redirect_map(skb, &socks, 1, 0);
	}
	if (h.type == KRAY_MSG_FAST_RESULT) {
		__sync_fetch_and_add(&steered, 1);
		return bpf_sk_redirect_map(skb, &socks, 0, 0);
	}
pass:
	__sync_fetch_and_add(&passed, 1);
	return SK_PASS;
}
