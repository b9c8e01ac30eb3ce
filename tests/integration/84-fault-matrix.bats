#!/usr/bin/env bats
# 84-fault-matrix: every process of a replication dies at every named fault
# point (lib/fault.h) and comes back.  Two replicas, A and B, each mounted
# in place with its own wkfs-syncd, on one relay on 127.0.0.1.  Both write;
# a fault point of A's mount, A's daemon or the relay is armed (a file in
# that process's WKFS_FAULT_DIR) and the writes that reach it follow; the
# process dies there as a kill -9 would (_exit, nothing flushed), both
# sides write on, the process is started again (the mount remounted), and
# then:
#   - A and B are identical byte for byte;
#   - every write that returned before the kill is there, on both;
#   - nothing is there twice: every op is at the relay and at the other
#     replica exactly once, and there are no conflict copies (no write
#     conflicted: each side writes its own names).
#
# The matrix is 16 points: 7 of the mount (its oplog commit, fsync, the
# materializer's rename of a backing file, the commit of an applied
# batch), 5 of wkfs-syncd (send, ack, applying a batch and its cursor) and
# 4 of the relay (its commit, its ACK), each at its first hit; then 6 of
# them again mid-stream, at the N-th hit while one side makes 60 files.
# `make check` runs one point of each process; WKFS_LONG=1 (make
# check-long) runs all 22 cases.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=120 # seconds a change may take to reach every replica

# The points `make check` runs; the rest need WKFS_LONG=1.
FAST_POINTS=" rec.after_commit syncd.after_ack relay.after_commit "

# relay_armable: the relay, with faults armed through $T/fault.relay.
relay_armable() {
	mkdir -p "$T/fault.relay"
	WKFS_FAULT_DIR=$T/fault.relay start_relay "$@"
}

setup() {
	replicas_setup relay_armable
	expect_reset
}
teardown() { replicas_teardown; }

# armable NAME: replica NAME, its mount's faults armed through
# $T/fault.NAME.mount, its daemon's through $T/fault.NAME.syncd.
armable() {
	mkdir -p "$T/fault.$1.mount" "$T/fault.$1.syncd"
	replica_init "$1" || return 1
	WKFS_FAULT_DIR=$T/fault.$1.mount replica_mount "$1" || return 1
	armable_syncd "$1"
}

armable_syncd() { WKFS_FAULT_DIR=$T/fault.$1.syncd start_syncd "$1"; }

# mount_pid DIR: the pid of the mount process of DIR (not its daemon).
mount_pid() {
	local p a0
	for p in $(wk_pids_for "$1"); do
		a0=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | head -n 1)
		if [[ $a0 == *wkfs ]]; then echo "$p"; fi
	done
}

# many DIR: 60 new files in DIR, one at a time.
many() {
	local i side=${1##*/}
	for i in $(seq 60); do
		w "$1" "$side-many-$i" "$side many $i" || return 1
	done
}

# fault_case PROC POINT WRITER [N]: PROC (mount, syncd: A's; relay) dies
# at POINT while WRITER (A or B's dir) writes; then it is restarted and
# the replicas must converge with nothing lost and nothing twice.  With
# N, WRITER makes 60 files and PROC dies at the N-th hit: mid-stream.
fault_case() {
	local proc=$1 point=$2 writer=$3 hits=${4:-} victim dir
	if [ "${WKFS_LONG:-}" != 1 ] &&
		{ [ -n "$hits" ] || [[ $FAST_POINTS != *" $point "* ]]; }; then
		skip "the whole matrix runs in make check-long"
	fi
	armable a
	armable b
	writes "$A" before
	writes "$B" before
	wait_same "$SYNC_WAIT" "$A" "$B"

	case $proc in
	mount) victim=$(mount_pid "$A") dir=$T/fault.a.mount ;;
	syncd) victim=${SPID[a]} dir=$T/fault.a.syncd ;;
	relay) victim=$RPID dir=$T/fault.relay ;;
	esac
	[ -n "$victim" ]
	echo "$hits" >"$dir/$point"
	if [ -n "$hits" ]; then
		many "$writer" 2>/dev/null || true
	elif [ "$point" = fs.after_fsync ]; then
		# fsync's reply never comes: the mount dies first.  The
		# content is durable in the backing file all the same.
		pyc 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"synced before the kill\n")
try:
    os.fsync(fd)
except OSError:
    pass' "$A/fsynced" 3>&- || true
		EXPECT[fsynced]="synced before the kill"
	else
		# A dead mount fails the writes after it: those are not
		# acknowledged, so not expected.
		writes "$writer" armed 2>/dev/null || true
	fi
	wait_until 60 not_running "$victim" || {
		echo "$proc never reached $point" >&2
		return 1
	}
	[ ! -e "$dir/$point" ] # it died there, disarmed

	# both sides write while it is down (A only if its mount lives)
	writes "$B" down
	[ "$proc" = mount ] || writes "$A" down

	case $proc in
	mount)
		wk_mount "$A"
		assert_equal "$(mount_count "$A")" 1
		# the daemon may have ended with the mount it served
		running "${SPID[a]}" || armable_syncd a
		;;
	syncd)
		wait "$victim" 2>/dev/null || true
		armable_syncd a
		;;
	relay)
		wait "$victim" 2>/dev/null || true
		RPID=
		relay_armable "127.0.0.1:$PORT"
		;;
	esac
	converge_after_writes
}

# ---- the mount (A's) ----

@test "mount dies before its oplog commit" {
	fault_case mount rec.before_commit "$A"
}

@test "mount dies after its oplog commit" {
	fault_case mount rec.after_commit "$A"
}

@test "mount dies after an fsync, before recording it" {
	fault_case mount fs.after_fsync "$A"
}

@test "mount dies before renaming a remote file into place" {
	fault_case mount mat.before_rename "$B"
}

@test "mount dies after renaming a remote file into place" {
	fault_case mount mat.after_rename "$B"
}

@test "mount dies before committing an applied batch" {
	fault_case mount apply.before_commit "$B"
}

@test "mount dies after committing an applied batch" {
	fault_case mount apply.after_commit "$B"
}

# ---- wkfs-syncd (A's) ----

@test "syncd dies before sending a PUSH" {
	fault_case syncd syncd.before_send "$A"
}

@test "syncd dies after sending a PUSH, before its ACK" {
	fault_case syncd syncd.after_send "$A"
}

@test "syncd dies after an ACK, before marking the ops shipped" {
	fault_case syncd syncd.after_ack "$A"
}

@test "syncd dies before committing a received batch and cursor" {
	fault_case syncd syncd.before_apply "$B"
}

@test "syncd dies after committing a received batch and cursor" {
	fault_case syncd syncd.after_apply "$B"
}

# ---- the relay ----

@test "relay dies before committing a PUSH" {
	fault_case relay relay.push "$A"
}

@test "relay dies after committing a PUSH, before queueing its ACK" {
	fault_case relay relay.after_commit "$A"
}

@test "relay dies before sending an ACK" {
	fault_case relay relay.before_ack "$A"
}

@test "relay dies after sending an ACK" {
	fault_case relay relay.after_ack "$A"
}

# ---- mid-stream: the N-th hit while one side makes 60 files ----

@test "mount dies at its 5th oplog commit of 60 new files" {
	fault_case mount rec.before_commit "$A" 5
}

@test "mount dies mid-batch, before the 20th rename of 60 remote files" {
	fault_case mount mat.before_rename "$B" 20
}

@test "mount dies mid-batch, after the 20th rename of 60 remote files" {
	fault_case mount mat.after_rename "$B" 20
}

@test "syncd dies before its 2nd PUSH of 60 new files" {
	fault_case syncd syncd.before_send "$A" 2
}

@test "syncd dies after committing its 2nd received batch of 60 files" {
	fault_case syncd syncd.after_apply "$B" 2
}

@test "relay dies before committing the 2nd PUSH of 60 new files" {
	fault_case relay relay.push "$A" 2
}
