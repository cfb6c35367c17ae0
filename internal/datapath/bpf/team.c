// SPDX-License-Identifier: GPL-2.0
//
// nicteam datapath: one egress program on the team interface spreads frames
// over the members through a 256-entry bucket table, one ingress program on
// every member hands received frames to the team interface.
//
// The file is self-contained (no kernel or libbpf headers) so that the
// generated object depends only on the clang version, which keeps the
// committed team_bpfel.o reproducible. The few kernel structures it reads
// are declared below with only the fields it uses: their offsets are
// relocated against the running kernel's BTF at load (CO-RE).
//
// The hash is our own, not skb->hash: it must be identical for every frame of
// a flow whatever the kernel, NIC or socket did, and it must be predictable
// from user space (Hash in hash.go is its twin; keep the two in step).

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __ksym __attribute__((section(".ksyms")))
#define __always_inline inline __attribute__((always_inline))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

// Only the leading fields of struct __sk_buff that we read; the verifier
// checks context accesses by offset, so the prefix is enough.
struct __sk_buff {
	__u32 len;
	__u32 pkt_type;
	__u32 mark;
	__u32 queue_mapping;
	__u32 protocol;
	__u32 vlan_present;
	__u32 vlan_tci;
	__u32 vlan_proto;
	__u32 priority;
	__u32 ingress_ifindex;
	__u32 ifindex;
};

// struct net_device and struct sk_buff as far as team_egress_fo and
// team_learn_dev read them; the loader finds the fields by name in the
// kernel's BTF.
struct net_device {
	unsigned long state;
	int ifindex;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
} __attribute__((preserve_access_index));

// Bits of net_device.state (enum netdev_state_t); their values are
// relocated too.
enum netdev_state_t {
	__LINK_STATE_START,
	__LINK_STATE_PRESENT,
	__LINK_STATE_NOCARRIER,
};

#define BPF_TYPE_ID_TARGET 1
#define BPF_ENUMVAL_VALUE 1
#define link_state_bit(name) __builtin_preserve_enum_value(*(typeof(enum netdev_state_t) *)name, BPF_ENUMVAL_VALUE)

// Kfuncs: both are rewritten by the verifier into a register move, so they
// cost nothing per frame. Loads through bpf_rdonly_cast's pointer are
// fault-tolerant (a stale pointer reads garbage or zeroes, never crashes)
// and need CAP_PERFMON, as does storing a kernel pointer in a map.
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
};

#define BPF_F_INGRESS 1
#define BPF_ANY 0
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_skb_store_bytes)(struct __sk_buff *skb, __u32 offset, const void *from, __u32 len,
				   __u64 flags) = (void *)9;
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)23;
static long (*bpf_skb_load_bytes)(const struct __sk_buff *skb, __u32 offset, void *to, __u32 len) = (void *)26;

#define NUM_BUCKETS 256

// Hash policies; the values are HashPolicy in Go.
#define HASH_TRANSPORT_PORTS 0
#define HASH_IP_ADDRESSES 1
#define HASH_MAC_ADDRESSES 2
#define HASH_SOURCE_MAC 3

// conf.flags
#define CFG_BCAST_ALL 1 // every member delivers broadcast/multicast, not only the primary
// Source MACs pinned in affinity are ports behind the team (HyperVPort,
// Dynamic): switch independent, their broadcast, multicast, ARP and ND leave
// through their pinned member, and copies flooded back in are dropped.
#define CFG_PORT_AFFINITY 2

// member.flags
#define MEMBER_TX_OWN_MAC 1 // frames sent from the team MAC leave with the member's own MAC
#define MEMBER_RX_DISABLED 2 // drop everything received but slow protocols
// Set by the control plane exactly while some bucket names the member (Go
// keeps it in step with the bucket table): a flowlet may stay on a member,
// and a pinned source MAC leave through it, only while it has it, so a
// member taken out of the table loses its flows and MACs at once.
#define MEMBER_IN_TABLE 4

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_SLOW 0x8809
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define ND_ROUTER_SOLICIT 133 // first ICMPv6 neighbour discovery type
#define ND_REDIRECT 137 // last (RS, RA, NS, NA, redirect)

struct conf {
	__u32 team_ifindex;
	__u32 hash;
	__u32 primary;
	__u32 flags;
	__u8 team_mac[6];
	__u8 pad[2];
	// Flowlet gap in ns; 0 turns flowlet tracking off and every frame
	// follows its bucket.
	__u64 flowlet_ns;
};

struct member {
	__u8 mac[6];
	__u8 pad[2];
	__u32 flags;
	// The member team_egress_fo sends through instead while this one has
	// no carrier (or is down); 0: none. The control plane writes it with
	// the bucket table: the member that would take most of this one's
	// buckets if it failed.
	__u32 fallback;
	// The member's struct net_device, as team_learn_dev found it when the
	// member was attached; 0: unknown, and the member counts as up. It is
	// trusted only while the device's ifindex is still the key.
	__u64 dev;
};

struct member_counters {
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 rx_dropped;
	// Of tx_packets, frames this member sent in place of a member that had
	// no carrier (team_egress_fo).
	__u64 tx_fallback;
};

struct counters {
	__u64 packets;
	__u64 bytes;
};

// A source MAC behind the team, as a hash key.
struct mac_key {
	__u8 mac[6];
	__u8 pad[2];
};

// Where a flow last went and when, and the bucket it belongs to: its
// hash's, or the one a TCP connection was placed in when it opened.
struct flowlet {
	__u32 ifindex;
	__u32 bucket;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct conf);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_BUCKETS);
	__type(key, __u32);
	__type(value, __u32);
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct member);
} members SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct member_counters);
} member_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_BUCKETS);
	__type(key, __u32);
	__type(value, struct counters);
} bucket_stats SEC(".maps");

// Frames dropped on egress because their bucket had no member.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} egress_drops SEC(".maps");

// Source MAC → member for HASH_SOURCE_MAC (HyperVPort) and PORT_AFFINITY
// (Dynamic): each port behind the team leaves through the member the
// control plane pinned it to (under PORT_AFFINITY only its broadcast, ARP
// and ND; ingress drops copies of its broadcasts flooded back). A MAC
// without an entry, or whose member has left the bucket table (failover
// rewrites the table at once, the pins after), follows its bucket.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct mac_key);
	__type(value, __u32);
} affinity SEC(".maps");

// Flows by their full 32-bit hash. Flows whose hashes collide share an
// entry; they share a bucket too, so they are steered as one flow. LRU: a
// full map evicts the longest idle flow, which is the one whose move can
// no longer reorder anything.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct flowlet);
} flowlets SEC(".maps");

// The order in which TCP connections that open take buckets: a permutation
// of the buckets, written by the control plane with the table, that
// interleaves the members by their share of the table. The first frame of a
// connection (its SYN, or SYN-ACK) is the one point at which it can be
// placed anywhere without reordering it, whatever the queues hold, so
// connections that open together start on different members instead of
// wherever their hashes collide. Other flows keep their hash's bucket:
// their start is not visible.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_BUCKETS);
	__type(key, __u32);
	__type(value, __u32);
} placement SEC(".maps");

// How many connections were placed: the next one takes placement[placed % 256].
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} placed SEC(".maps");

// Flows that changed member: after an idle gap, or at once because their
// member left the bucket table.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} flowlet_moves SEC(".maps");

// The Ethernet header as read by bpf_skb_load_bytes. Words are what a native
// (little-endian) load of the wire bytes gives; hash.go reads them the same way.
union eth {
	__u8 b[16];
	__u16 h[8];
	__u32 w[4];
};

#define HASH_SEED 0x9747b28c

// One MurmurHash3 (x86_32) block step per 32-bit word, finalised with fmix32:
// cheap, branch-free and good enough in the low 8 bits that select the bucket.
static __always_inline __u32 rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = rotl32(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 fmix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 hash_macs(const union eth *eth, __u32 policy)
{
	__u32 h = HASH_SEED;

	if (policy == HASH_SOURCE_MAC) {
		h = mix(h, eth->w[1] >> 16 | (__u32)eth->h[4] << 16);
		return fmix(mix(h, eth->h[5]));
	}
	h = mix(h, eth->w[0]);
	h = mix(h, eth->w[1]);
	return fmix(mix(h, eth->w[2]));
}

// frame_hash hashes one frame per policy. Anything that cannot be parsed as
// far as the policy wants falls back to the next coarser key: ports → IP
// addresses → MAC addresses, so a flow's frames always agree with each other.
// A TCP frame hashed by its ports leaves its TCP header's offset in *tcp.
static __always_inline __u32 frame_hash(struct __sk_buff *skb, const union eth *eth, __u32 policy, __u32 *tcp)
{
	__u32 l3 = 14, l4, h = HASH_SEED;
	__u16 proto = __builtin_bswap16(eth->h[6]);
	__u32 ip[10]; // an IPv6 header; an IPv4 header uses the first five words
	__u32 ports;
	__u8 l4proto;

	if (policy != HASH_TRANSPORT_PORTS && policy != HASH_IP_ADDRESSES)
		return hash_macs(eth, policy);

	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
		__u16 tag[2];

		if (bpf_skb_load_bytes(skb, 14, tag, sizeof(tag)))
			return hash_macs(eth, HASH_MAC_ADDRESSES);
		proto = __builtin_bswap16(tag[1]);
		l3 = 18;
	}

	if (proto == ETH_P_IP) {
		__u32 ihl;

		if (bpf_skb_load_bytes(skb, l3, ip, 20))
			return hash_macs(eth, HASH_MAC_ADDRESSES);
		ihl = ip[0] & 0x0f;
		if (ihl < 5)
			return hash_macs(eth, HASH_MAC_ADDRESSES);
		h = mix(h, ip[3]);
		h = mix(h, ip[4]);
		// MF set or a non-zero offset: later fragments carry no ports.
		if (policy == HASH_IP_ADDRESSES || (__builtin_bswap16(ip[1] >> 16) & 0x3fff))
			return fmix(h);
		l4proto = ip[2] >> 8;
		l4 = l3 + ihl * 4;
	} else if (proto == ETH_P_IPV6) {
		if (bpf_skb_load_bytes(skb, l3, ip, 40))
			return hash_macs(eth, HASH_MAC_ADDRESSES);
		h = mix(h, ip[2]);
		h = mix(h, ip[3]);
		h = mix(h, ip[4]);
		h = mix(h, ip[5]);
		h = mix(h, ip[6]);
		h = mix(h, ip[7]);
		h = mix(h, ip[8]);
		h = mix(h, ip[9]);
		if (policy == HASH_IP_ADDRESSES)
			return fmix(h);
		// A fragment header (44) or any other extension header ends up
		// here as "not TCP/UDP": IP addresses only.
		l4proto = ip[1] >> 16;
		l4 = l3 + 40;
	} else {
		return hash_macs(eth, HASH_MAC_ADDRESSES);
	}

	if (l4proto != IPPROTO_TCP && l4proto != IPPROTO_UDP)
		return fmix(h);
	if (bpf_skb_load_bytes(skb, l4, &ports, sizeof(ports)))
		return fmix(h);
	if (l4proto == IPPROTO_TCP)
		*tcp = l4;
	h = mix(h, ports);
	return fmix(mix(h, l4proto));
}

// pinned_member returns the member the MAC at mac is pinned to, and its
// entry in *entry, or 0 when it has none that is in the table.
static __always_inline __u32 pinned_member(const __u8 *mac, struct member **entry)
{
	struct mac_key k = {};
	struct member *m;
	__u32 *pinned;

	__builtin_memcpy(k.mac, mac, 6);
	pinned = bpf_map_lookup_elem(&affinity, &k);
	if (!pinned)
		return 0;
	m = bpf_map_lookup_elem(&members, pinned);
	if (!m || !(m->flags & MEMBER_IN_TABLE))
		return 0;
	*entry = m;
	return *pinned;
}

#define TCP_SYN 0x02

// flow_bucket returns the bucket of the flow with hash h, and its entry in
// *fl (0 for a flow seen first): the bucket it was given when first seen. A
// TCP connection seen first at its SYN takes the next bucket in placement;
// any other flow seen first, one that was already running, its hash's.
static __always_inline __u32 flow_bucket(struct __sk_buff *skb, __u32 h, __u32 tcp, struct flowlet **fl)
{
	__u32 zero = 0, next, *n, *b;
	__u8 flags;

	*fl = bpf_map_lookup_elem(&flowlets, &h);
	if (*fl)
		return (*fl)->bucket;
	if (!tcp || bpf_skb_load_bytes(skb, tcp + 13, &flags, 1) || !(flags & TCP_SYN))
		return h % NUM_BUCKETS;
	n = bpf_map_lookup_elem(&placed, &zero);
	if (!n)
		return h % NUM_BUCKETS;
	// Atomic: connections opening on two CPUs at once take two slots.
	next = __sync_fetch_and_add(n, 1) % NUM_BUCKETS;
	b = bpf_map_lookup_elem(&placement, &next);
	return b ? *b : h % NUM_BUCKETS;
}

// flowlet_member returns the member a frame of the flow with hash h and
// entry fl (0: none yet) leaves through, given that its bucket names
// bucket_member (0: none). A flow stays where it went last until it has been
// idle for longer than the gap: then the frames in flight on the old path
// have arrived (the gap exceeds the difference in path delay), and a move
// cannot reorder the flow. Only flows whose bucket moved away need the
// member lookup.
static __always_inline __u32 flowlet_member(struct flowlet *fl, __u32 h, __u32 bucket, __u32 bucket_member,
					    __u64 gap)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0;

	if (!fl) {
		struct flowlet v = { .ifindex = bucket_member, .bucket = bucket, .last_ns = now };

		if (bucket_member)
			bpf_map_update_elem(&flowlets, &h, &v, BPF_ANY);
		return bucket_member;
	}
	if (fl->ifindex != bucket_member) {
		struct member *m = bpf_map_lookup_elem(&members, &fl->ifindex);
		__u64 *moves;

		if (now - fl->last_ns < gap && m && (m->flags & MEMBER_IN_TABLE)) {
			fl->last_ns = now;
			return fl->ifindex;
		}
		if (!bucket_member)
			return 0;
		moves = bpf_map_lookup_elem(&flowlet_moves, &zero);
		if (moves)
			(*moves)++;
		fl->ifindex = bucket_member;
	}
	fl->last_ns = now;
	return bucket_member;
}

static __always_inline int mac_eq(const __u16 *a, const __u16 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2];
}

// is_neigh reports ARP and IPv6 neighbour discovery (ICMPv6 133-137). An
// ARP frame costs one compare. ND is recognised only right behind a plain
// IPv6 header: RFC 4861 messages carry no extension headers, and walking
// them would cost every IPv6 frame. A VLAN tag the stack left in the frame
// hides either (tags normally travel in skb metadata up to here).
static __always_inline int is_neigh(struct __sk_buff *skb, const union eth *eth)
{
	__u8 nexthdr, type;

	if (eth->h[6] == __builtin_bswap16(ETH_P_ARP))
		return 1;
	if (eth->h[6] != __builtin_bswap16(ETH_P_IPV6))
		return 0;
	if (bpf_skb_load_bytes(skb, 14 + 6, &nexthdr, 1) || nexthdr != IPPROTO_ICMPV6)
		return 0;
	if (bpf_skb_load_bytes(skb, 14 + 40, &type, 1))
		return 0;
	return type >= ND_ROUTER_SOLICIT && type <= ND_REDIRECT;
}

// link_down reports whether the member m (ifindex) is known to be down or
// without carrier. Its device pointer was learned when it was attached; a
// member deleted since then (the daemon deletes its entry on RTM_DELLINK,
// but a frame may race that) reads another ifindex, or faults and reads 0,
// and counts as up: the frame goes where it would have gone anyway.
static __always_inline int link_down(const struct member *m, __u32 ifindex)
{
	struct net_device *dev;
	unsigned long up = 1UL << link_state_bit(__LINK_STATE_START);
	unsigned long mask = up | 1UL << link_state_bit(__LINK_STATE_NOCARRIER);

	if (!m->dev)
		return 0;
	dev = bpf_rdonly_cast((void *)m->dev, __builtin_btf_type_id(*(struct net_device *)0, BPF_TYPE_ID_TARGET));
	return dev->ifindex == (int)ifindex && (dev->state & mask) != up;
}

#define MAX_FALLBACK_HOPS 2

// fall_back returns the first member up along the fallback chain of
// *ifindex (its entry *m), after MAX_FALLBACK_HOPS at most, and updates
// *m; 0 when none is (the frame is then sent where it was chosen, and lost
// as it would be without this check). A fallback need not be in the table:
// a standby is the fallback of the active members it would replace.
static __always_inline __u32 fall_back(__u32 ifindex, struct member **m)
{
	struct member *cur = *m, *next;
	__u32 id = ifindex;

	for (int i = 0; i < MAX_FALLBACK_HOPS; i++) {
		id = cur->fallback;
		if (!id || id == ifindex)
			return 0;
		next = bpf_map_lookup_elem(&members, &id);
		if (!next)
			return 0;
		if (!link_down(next, id)) {
			*m = next;
			return id;
		}
		cur = next;
	}
	return 0;
}

// egress is team_egress, and with failover team_egress_fo: after every
// choice of member (bucket, flowlet, placement, pinned port, primary) it
// checks that member's carrier and sends through its fallback when it has
// none, so frames keep flowing in the time the control plane takes to hear
// of the loss and rewrite the table. Coming back to a member is the control
// plane's decision (up-delay): a member with carrier regained is chosen
// again only once the control plane puts it back.
static __always_inline int egress(struct __sk_buff *skb, const int failover)
{
	__u32 zero = 0, h, bucket, ifindex, port = 0, tcp = 0;
	struct member_counters *ms;
	struct flowlet *fl = 0;
	struct conf *cfg;
	struct counters *bs;
	struct member *m = 0;
	__u32 *target;
	union eth eth = {};
	int own, looked = 0, fallen = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return TC_ACT_SHOT;

	// A frame shorter than an Ethernet header (the stack sends none)
	// fails the load and hashes as an all-zero header, as Hash does.
	bpf_skb_load_bytes(skb, 0, &eth, 14);

	// Switch independent: broadcast and multicast leave through the
	// primary, the only member that takes them in: the switch floods a
	// frame to every port but the one it came from, so sent from any other
	// member it would come straight back in through the primary (and a
	// bridge above the team would learn its own endpoints on the team's
	// port). The team's own unicast ARP and ND leave there too, so peers
	// and learning switches tie its addresses to the port that owns the
	// team MAC; under HyperVPort all of the team's own frames do, the team
	// NIC being one more port. A port pinned to a member (PORT_AFFINITY)
	// sends its broadcast, multicast, ARP and ND there instead, so peers
	// reach it through that member (ingress drops the copies flooded back);
	// under HyperVPort all its frames. None of these is hashed or counted
	// in a bucket: they are not the bucket's load. Switch-dependent teams
	// (BCAST_ALL) have no such port.
	own = mac_eq(&eth.h[3], (const __u16 *)cfg->team_mac);
	if (cfg->primary && !(cfg->flags & CFG_BCAST_ALL)) {
		if (!own && (cfg->flags & CFG_PORT_AFFINITY)) {
			port = pinned_member(&eth.b[6], &m);
			looked = 1;
		}
		if (port && (cfg->hash == HASH_SOURCE_MAC || (eth.b[0] & 1) || is_neigh(skb, &eth))) {
			ifindex = port;
			goto send;
		}
		// A pinned port's frame gets here only as unicast, and never
		// with the team MAC: the test needs no !port.
		if ((eth.b[0] & 1) || (own && (cfg->hash == HASH_SOURCE_MAC || is_neigh(skb, &eth)))) {
			ifindex = cfg->primary;
			goto send;
		}
	}

	h = frame_hash(skb, &eth, cfg->hash, &tcp);
	bucket = cfg->flowlet_ns ? flow_bucket(skb, h, tcp, &fl) : h % NUM_BUCKETS;

	// Counted by bucket whichever member a flowlet keeps the frame on:
	// the rebalancer moves buckets by their load.
	bs = bpf_map_lookup_elem(&bucket_stats, &bucket);
	if (bs) {
		bs->packets++;
		bs->bytes += skb->len;
	}

	target = bpf_map_lookup_elem(&buckets, &bucket);
	ifindex = target ? *target : 0;
	if (cfg->hash == HASH_SOURCE_MAC && !looked) {
		__u32 pinned = pinned_member(&eth.b[6], &m);

		if (pinned)
			ifindex = pinned;
	}
	if (cfg->flowlet_ns)
		ifindex = flowlet_member(fl, h, bucket, ifindex, cfg->flowlet_ns);
	if (!ifindex) {
		__u64 *drops = bpf_map_lookup_elem(&egress_drops, &zero);

		if (drops)
			(*drops)++;
		return TC_ACT_SHOT;
	}

send:
	// m is already the pinned member's entry when the frame leaves there.
	if (!m || ifindex != port)
		m = bpf_map_lookup_elem(&members, &ifindex);
	if (failover && m && link_down(m, ifindex)) {
		__u32 fb = fall_back(ifindex, &m);

		if (fb) {
			ifindex = fb;
			fallen = 1;
		}
	}

	ms = bpf_map_lookup_elem(&member_stats, &ifindex);
	if (ms) {
		ms->tx_packets++;
		ms->tx_bytes += skb->len;
		ms->tx_fallback += fallen;
	}

	// Source MAC replacement: the team MAC leaves only through the member
	// that owns it, a pinned port's MAC only through its member, so a
	// learning switch never sees either on two ports. bpf_skb_store_bytes
	// only unclones the skb when it writes, whereas direct packet writes
	// would make the verifier unclone every cloned skb (every TCP segment)
	// on entry. A frame sent through a fallback is treated as one that
	// left there: its team MAC or port MAC is replaced by the fallback's
	// own where the rules say so.
	if (m && ((own && (m->flags & MEMBER_TX_OWN_MAC)) || (port && port != ifindex)))
		bpf_skb_store_bytes(skb, 6, m->mac, 6, 0);

	return bpf_redirect(ifindex, 0);
}

SEC("tcx/egress")
int team_egress(struct __sk_buff *skb)
{
	return egress(skb, 0);
}

SEC("tcx/egress")
int team_egress_fo(struct __sk_buff *skb)
{
	return egress(skb, 1);
}

// team_learn_dev records the net_device of the member a test run names (the
// context's ifindex) in its entry, for team_egress_fo's carrier checks.
// The datapath runs it once when it attaches a member.
SEC("tc")
int team_learn_dev(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	__u32 ifindex = skb->ifindex;
	struct member *m = bpf_map_lookup_elem(&members, &ifindex);

	if (!m)
		return TC_ACT_SHOT;
	m->dev = (__u64)kskb->dev;
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int team_ingress(struct __sk_buff *skb)
{
	__u32 zero = 0, ifindex = skb->ifindex;
	struct member_counters *ms;
	struct conf *cfg;
	struct member *m, *pinned;
	union eth eth = {};

	// No frame shorter than an Ethernet header reaches tc ingress.
	bpf_skb_load_bytes(skb, 0, &eth, 14);
	// LACPDUs and markers belong to the daemon listening on the member.
	if (eth.h[6] == __builtin_bswap16(ETH_P_SLOW))
		return TC_ACT_OK;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return TC_ACT_SHOT;
	m = bpf_map_lookup_elem(&members, &ifindex);
	ms = bpf_map_lookup_elem(&member_stats, &ifindex);

	// The switch floods broadcast and multicast to every member; only one
	// copy may reach the team, and none that a port behind the team sent
	// out of another member. A member that is not collecting (LACP) or a
	// team with nowhere to deliver drops everything.
	if ((m && (m->flags & MEMBER_RX_DISABLED)) || !cfg->team_ifindex ||
	    ((eth.b[0] & 1) && !(cfg->flags & CFG_BCAST_ALL) &&
	     (ifindex != cfg->primary || ((cfg->flags & CFG_PORT_AFFINITY) && pinned_member(&eth.b[6], &pinned))))) {
		if (ms)
			ms->rx_dropped++;
		return TC_ACT_SHOT;
	}

	// Replies to frames sent with the member's own MAC: the team's stack
	// only accepts its own MAC as PACKET_HOST.
	if (m && mac_eq(&eth.h[0], (const __u16 *)m->mac) && !mac_eq(&eth.h[0], (const __u16 *)cfg->team_mac))
		bpf_skb_store_bytes(skb, 0, cfg->team_mac, 6, 0);

	if (ms) {
		ms->rx_packets++;
		ms->rx_bytes += skb->len;
	}
	return bpf_redirect(cfg->team_ifindex, BPF_F_INGRESS);
}

char _license[] SEC("license") = "GPL";
