#!/usr/bin/env bats
# 86-partition: a network partition.  The relay and each replica's
# wkfs-syncd run in network namespaces of their own made by the test, the
# relay's joined to A's and to B's by a veth pair each (10.231.1.0/24 and
# 10.231.2.0/24, which exist only inside those namespaces).  The mounts
# stay in the test's namespaces (ip netns exec gives a daemon a mount
# namespace that still sees them; the mount and its daemon talk through a
# unix socket, which no network namespace cuts).  A's link is cut for 30 s
# while both sides write, then healed: A and B converge, nothing lost,
# nothing twice.  Needs root (ip netns); runs in make check-long.

load helpers

RELAY_BIN=$WKFS_BUILD/wkfs-relay
SYNCD_BIN=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=120 # seconds a change may take to reach every replica
CUT_SECS=30

# in_ns NS PROGRAM NAME: $T/NAME, a script that runs PROGRAM in NS (exec
# all the way down: its pid is the program's).
in_ns() {
	printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$1" "$2" >"$T/$3"
	chmod +x "$T/$3"
}

# veth NAME: a veth pair between the relay's namespace and replica NAME's
# (a or b), 10.231.N.1 on the relay's side, 10.231.N.2 on the replica's.
veth() {
	local n=$2 ns=$NS-$1 rside=wk$ID$1r
	ip netns add "$ns"
	NETNS+=("$ns")
	ip link add "$rside" type veth peer name "wk$ID$1"
	ip link set "$rside" netns "$NS-r"
	ip link set "wk$ID$1" netns "$ns"
	ip -n "$NS-r" addr add "10.231.$n.1/24" dev "$rside"
	ip -n "$ns" addr add "10.231.$n.2/24" dev "wk$ID$1"
	ip -n "$NS-r" link set "$rside" up
	ip -n "$ns" link set lo up
	ip -n "$ns" link set "wk$ID$1" up
}

setup() {
	[ "$(id -u)" = 0 ] || skip "ip netns needs root"
	[ "${WKFS_LONG:-}" = 1 ] || skip "a ${CUT_SECS} s partition: make check-long"
	T=$(realpath "$BATS_TEST_TMPDIR")
	# names of this run only: several runs may share the machine
	ID=$(printf '%04x' $(($$ % 65536)))
	NS=wkfs$ID
	NETNS=()
	if ! ip netns add "$NS-r" 2>"$T/netns.err"; then
		skip "no network namespaces here: $(cat "$T/netns.err")"
	fi
	NETNS+=("$NS-r")
	ip -n "$NS-r" link set lo up
	veth a 1
	veth b 2
	in_ns "$NS-r" "$RELAY_BIN" relay
	in_ns "$NS-a" "$SYNCD_BIN" syncd-a
	in_ns "$NS-b" "$SYNCD_BIN" syncd-b
	RELAY=$T/relay
	replicas_setup _relay_anywhere
	expect_reset
}

_relay_anywhere() { start_relay 0.0.0.0:0; }

teardown() {
	local ns
	replicas_teardown
	for ns in "${NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
}

# partitioned NAME N: replica NAME reaching the relay at 10.231.N.1, its
# daemon in its own namespace.
partitioned() {
	local dir
	dir=$(replica_dir "$1")
	replica_init "$1" || return 1
	sed -i "s|^url = .*|url = ws://10.231.$2.1:$PORT/Notes|" \
		"$dir/.wkfs/config.ini"
	# a plain ws:// off loopback must be asked for (wkfs.conf(5))
	sed -i '/^\[remote\]/a insecure = yes' "$dir/.wkfs/config.ini"
	replica_mount "$1" || return 1
	SYNCD=$T/syncd-$1 start_syncd "$1"
}

# cut / heal: A's link to the relay, on the relay's side.
cut() { ip -n "$NS-r" link set "wk${ID}ar" down; }
heal() { ip -n "$NS-r" link set "wk${ID}ar" up; }

@test "A cut off from the relay for 30 s while both write; healed: converge" {
	partitioned a 1
	partitioned b 2
	writes "$A" before
	writes "$B" before
	wait_same "$SYNC_WAIT" "$A" "$B"
	wait_until "$SYNC_WAIT" all_shipped "$A"

	cut
	end=$((SECONDS + CUT_SECS))
	for round in 1 2 3; do
		writes "$A" "cut$round"
		writes "$B" "cut$round"
		sleep $((CUT_SECS / 4))
	done
	# B still reaches the relay, A does not: the cut is real
	wait_until "$SYNC_WAIT" all_shipped "$B"
	[ "$(unshipped "$A")" -gt 0 ]
	[ ! -e "$A/b-cut1-1" ]
	[ ! -e "$B/a-cut1-1" ]
	while ((SECONDS < end)); do sleep 1; done
	heal

	converge_after_writes
}
