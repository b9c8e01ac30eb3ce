# relay.bash: a real wkfs-relay on 127.0.0.1 for one test.  The caller sets
# RELAY (the binary), DATA (its data directory) and RLOG (its log), and has a
# wait_until; start_relay sets RPID and PORT (the relay picks a free port).

running() { kill -0 "$1" 2>/dev/null; }
not_running() { ! kill -0 "$1" 2>/dev/null; }

# start_relay [BIND [OPTION...]]: OPTIONs go to the relay (--limit ...).
start_relay() {
	local bind=${1:-127.0.0.1:0}
	: >"$RLOG"
	"$RELAY" --data "$DATA" --bind "$bind" --verbose "${@:2}" >>"$RLOG" 2>&1 &
	RPID=$!
	if ! wait_until 10 grep -q '^listening on ' "$RLOG"; then
		cat "$RLOG" >&2
		return 1
	fi
	PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$RLOG")
}

# stop_relay: ends the relay by its pid, politely first.
stop_relay() {
	[ -n "${RPID:-}" ] || return 0
	kill "$RPID" 2>/dev/null || true
	wait_until 5 not_running "$RPID" || kill -9 "$RPID" 2>/dev/null || true
	wait "$RPID" 2>/dev/null || true
	RPID=
}

# clients_relay_teardown: ends the clients in BG_PIDS (started in the
# background, by pid) and the relay; a sanitizer report in the relay's log
# (under SAN=1 it reports memory errors and leaks as it exits) fails the
# test.
clients_relay_teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	stop_relay
	if grep -E 'Sanitizer|runtime error' "$RLOG" >&2; then
		return 1
	fi
}

# ---- replicas: mounted folders, each with its own wkfs-syncd ---------------
#
# replica NAME [FOLDER [TOKEN]] makes $T/NAME (T is $BATS_TEST_TMPDIR, real
# path), `wkfs init --device NAME`, points it at FOLDER (default Notes) of
# the relay on $PORT with TOKEN (default $TOK), mounts it in place and starts
# `wkfs-syncd DIR -f` with its output in $T/NAME.syncd.log.  The caller sets
# SYNCD (the binary).  SPID[NAME] is the daemon's pid; each pid started is
# also in WK_PIDS.  stop_syncds ends them (call it in teardown before
# wk_teardown, which unmounts).

declare -gA SPID=()

# replica_dir NAME: the folder of replica NAME.
replica_dir() { echo "$(realpath "$BATS_TEST_TMPDIR")/$1"; }

# replica_init NAME [FOLDER [TOKEN]]: the folder, init'ed and configured.
replica_init() {
	local dir
	dir=$(replica_dir "$1")
	mkdir -p "$dir"
	WK_DIRS+=("$dir")
	wk_init "$dir" --device "$1" || return 1
	# init leaves [remote] as the last section
	printf 'url = ws://127.0.0.1:%s/%s\ntoken = %s\n' "$PORT" \
		"${2:-Notes}" "${3:-$TOK}" >>"$dir/.wkfs/config.ini"
}

# replica_mount NAME: mounts NAME's folder in place.  The tests start and
# kill each daemon themselves (by pid), so a `wkfs mount` that would start
# one is told not to, once it knows how.
replica_mount() {
	local opt=
	"$WKFS_BIN" mount --help 2>&1 | grep -q -- --no-syncd && opt=--no-syncd
	# shellcheck disable=SC2086 # empty or one word
	wk_mount "$(replica_dir "$1")" $opt
}

replica() {
	replica_init "$@" || return 1
	replica_mount "$1" || return 1
	start_syncd "$1"
}

_connects() {
	if [ -e "$1" ]; then grep -c 'connected to ' "$1" || true; else echo 0; fi
}
_connects_gt() { [ "$(_connects "$1")" -gt "$2" ]; }

# start_syncd NAME [any]: starts NAME's daemon and waits (30 s) until it has
# connected to the relay, unless a second argument says not to wait.
start_syncd() {
	local log=$BATS_TEST_TMPDIR/$1.syncd.log n
	n=$(_connects "$log")
	echo "--- start $(date +%T.%N)" >>"$log"
	"$SYNCD" "$(replica_dir "$1")" -f </dev/null >>"$log" 2>&1 3>&- &
	SPID[$1]=$!
	WK_PIDS+=("$!")
	if [ -n "${2:-}" ]; then return 0; fi
	wait_until 30 _connects_gt "$log" "$n" || {
		cat "$log" >&2
		return 1
	}
}

# stop_syncd NAME [SIGNAL]: ends NAME's daemon (TERM, or SIGNAL) and waits
# for it.
stop_syncd() {
	local p=${SPID[$1]:-}
	[ -n "$p" ] || return 0
	kill -"${2:-TERM}" "$p" 2>/dev/null || true
	wait_until 30 not_running "$p" || kill -9 "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	SPID[$1]=
}

stop_syncds() {
	local n
	for n in "${!SPID[@]}"; do
		stop_syncd "$n"
	done
}

# listing DIR: every entry under DIR but .wkfs, one line each, sorted:
# path, type and, by type, mode, size and content hash (files), mode
# (directories), target (symlinks).
listing() {
	"$PY" - "$1" <<'PYEOF'
import hashlib, os, stat, sys
root = sys.argv[1]
out = []
for d, dirs, files in os.walk(root):
    rel = os.path.relpath(d, root)
    if rel == '.':
        dirs[:] = [x for x in dirs if x != '.wkfs']
    for name in dirs + files:
        p = os.path.join(d, name)
        r = os.path.normpath(os.path.join(rel, name))
        st = os.lstat(p)
        m = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            out.append(f"{r} l -> {os.readlink(p)}")
        elif stat.S_ISDIR(st.st_mode):
            out.append(f"{r} d {m:04o}")
        elif stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(p, 'rb') as f:
                for b in iter(lambda: f.read(1 << 20), b''):
                    h.update(b)
            out.append(f"{r} f {m:04o} {st.st_size} {h.hexdigest()[:20]}")
        else:
            out.append(f"{r} ? {m:04o}")
out.sort()
print("\n".join(out))
PYEOF
}

# same_trees DIR...: every DIR has the listing of the first.
same_trees() {
	local first d
	first=$(listing "$1") || return 1
	for d in "${@:2}"; do
		[ "$(listing "$d")" = "$first" ] || return 1
	done
}

# wait_same SECONDS DIR...: waits until the DIRs agree; on failure shows
# how the first and each other one differ.
wait_same() {
	local secs=$1 d
	shift
	wait_until "$secs" same_trees "$@" 2>/dev/null && return 0
	echo "replicas still differ after ${secs}s:" >&2
	for d in "${@:2}"; do
		diff -u --label "$1" --label "$d" <(listing "$1") \
			<(listing "$d") >&2
	done
	return 1
}

# same_mtimes A B: regular files' mtimes agree within 50 ms (with the
# writeback cache the kernel shows its own write time, a few ms from the
# recorded one).
same_mtimes() {
	"$PY" - "$1" "$2" <<'PYEOF'
import os, sys
a, b = sys.argv[1], sys.argv[2]
bad = 0
for root, dirs, files in os.walk(a):
    if root == a:
        dirs[:] = [x for x in dirs if x != '.wkfs']
    for f in files:
        p = os.path.join(root, f)
        q = os.path.join(b, os.path.relpath(p, a))
        ta, tb = os.lstat(p).st_mtime_ns, os.lstat(q).st_mtime_ns
        if abs(ta - tb) > 50_000_000:
            print(f"mtime of {os.path.relpath(p, a)}: {ta} vs {tb}",
                  file=sys.stderr)
            bad = 1
sys.exit(bad)
PYEOF
}

# unshipped DIR: how many of DIR's local ops the relay has not acknowledged.
unshipped() {
	"$WKFS_BIN" log "$1" --json </dev/null 3>&- |
		grep '"origin":"local"' | grep -c '"shipped":false' || true
}

# all_shipped DIR: every local op of DIR is acknowledged by the relay.
all_shipped() { [ "$(unshipped "$1")" = 0 ]; }

# op_total DIR ORIGIN: how many ops of ORIGIN (local, remote) DIR holds.
op_total() {
	"$WKFS_BIN" log "$1" --json </dev/null 3>&- |
		grep -c "\"origin\":\"$2\"" || true
}

# ---- what the relay holds, and exactly-once checks (79, 84) ----

# rq SQL: a query on the relay's database (readable while it runs: WAL).
rq() { sqlite3 "$DATA/relay.db" "$1"; }

# relay_ops [FOLDER]: how many ops the relay holds for FOLDER (Notes).
relay_ops() {
	rq "select count(*) from ops join folders f on f.id = ops.folder
	    where f.name = '${1:-Notes}'"
}
_relay_ops_ge() { [ "$(relay_ops)" -ge "$1" ]; }

# no_conflict_copies DIR...: nothing named *.conflict-* anywhere.
no_conflict_copies() {
	local found
	found=$(find "$@" -path '*/.wkfs' -prune -o -name '*.conflict-*' -print)
	[ -z "$found" ] || { echo "unexpected conflict copies: $found" >&2; return 1; }
}

# exactly_once: every op of A and B is at the relay once and at the other
# replica once (UNIQUE constraints would hide a duplicate insert, so the
# totals must match exactly).
exactly_once() {
	local la lb
	la=$(op_total "$A" local)
	lb=$(op_total "$B" local)
	assert_equal "$(relay_ops)" $((la + lb))
	assert_equal "$(op_total "$B" remote)" "$la"
	assert_equal "$(op_total "$A" remote)" "$lb"
}

# ---- writes each replica makes under names of its own (84, 86) ----
#
# EXPECT maps each path written (and not renamed since) to its text:
# expect_reset empties it, all_expected checks a replica against it.

expect_reset() { declare -gA EXPECT=(); }

# w DIR PATH TEXT: writes TEXT to DIR/PATH and expects it on both replicas
# once acknowledged: once close returned.  Through tee, which checks
# close: the shell ignores its errors, and with the kernel's writeback
# cache close is where a write into a mount that died fails.
w() {
	printf '%s\n' "$3" | tee "$1/$2" >/dev/null || return 1
	EXPECT[$2]=$3
}

# writes DIR TAG: a few changes in DIR, each under names of its own: new
# files, a directory with a file, one file appended to, one renamed.
# Stops at the first that fails.
writes() {
	local i side=${1##*/}
	mkdir -p "$1/$side-$2.d" || return 1
	for i in 1 2 3; do
		w "$1" "$side-$2-$i" "$side $2 $i" || return 1
	done
	w "$1" "$side-$2.d/in" "$side $2 in a directory" || return 1
	# a change that failed (its mount died) may or may not have
	# happened: its path is expected neither way
	printf 'more\n' | tee -a "$1/$side-$2-1" >/dev/null || {
		unset "EXPECT[$side-$2-1]"
		return 1
	}
	EXPECT[$side-$2-1]+=$'\nmore'
	mv "$1/$side-$2-3" "$1/$side-$2-moved" || {
		unset "EXPECT[$side-$2-3]"
		return 1
	}
	EXPECT[$side-$2-moved]=${EXPECT[$side-$2-3]}
	unset "EXPECT[$side-$2-3]"
}

# all_expected DIR: every acknowledged write is in DIR, as written.
all_expected() {
	local p bad=0
	for p in "${!EXPECT[@]}"; do
		if [ "$(cat "$1/$p" 2>/dev/null)" != "${EXPECT[$p]}" ]; then
			echo "$1/$p: lost or wrong (want '${EXPECT[$p]}')" >&2
			bad=1
		fi
	done
	return $bad
}

# converge_after_writes: A and B both write once more, then must converge
# (SYNC_WAIT seconds): identical, every local op acknowledged, every
# expected write on both, no conflict copies, every op exactly once.
converge_after_writes() {
	writes "$A" after
	writes "$B" after
	wait_same "$SYNC_WAIT" "$A" "$B"
	wait_until "$SYNC_WAIT" all_shipped "$A"
	wait_until "$SYNC_WAIT" all_shipped "$B"
	wait_same "$SYNC_WAIT" "$A" "$B"
	all_expected "$A"
	all_expected "$B"
	no_conflict_copies "$A" "$B"
	exactly_once
}

# relay_wire: bytes through the relay's connections (tcp_info bytes_acked,
# which leaves out loopback's retransmissions, plus bytes_received, over
# every socket on its port), then the sorted list of those connections
# (so a caller sees whether one was replaced meanwhile).
relay_wire() {
	ss -tinH "sport = :$PORT" 2>/dev/null | awk '
		/^[A-Z]/ { peers = peers " " $5; next }
		{ for (i = 1; i <= NF; i++) {
			split($i, kv, ":")
			if (kv[1] == "bytes_acked" || kv[1] == "bytes_received")
				n += kv[2] } }
		END { print n + 0; print peers }'
}

_relay_quiet_since() { [ "$(relay_wire | head -n 1)" = "$1" ]; }

# relay_quiet: waits (up to 60 s) until no byte has moved through the relay
# for 2 s.
relay_quiet() {
	local last now end=$((SECONDS + 60))
	last=$(relay_wire | head -n 1)
	while ((SECONDS < end)); do
		sleep 2
		now=$(relay_wire | head -n 1)
		[ "$now" = "$last" ] && return 0
		last=$now
	done
	echo "the relay's connections never went quiet" >&2
	return 1
}

# replicas_setup [START] / replicas_teardown: the setup and teardown of the
# files whose replicas run their own syncd (78-replicate, 79-sync-faults,
# 87-relay-git): a relay started by START (default start_relay) with the
# folder Notes (token in TOK), A B C under T; at the end
# every daemon, mount and the relay are stopped by pid, and a sanitizer
# report in any of their logs fails the test.
replicas_setup() {
	T=$(realpath "$BATS_TEST_TMPDIR")
	DATA=$T/data
	RLOG=$T/relay.log
	umask 022
	"${1:-start_relay}"
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
	A=$T/a B=$T/b C=$T/c
}

replicas_teardown() {
	stop_syncds
	wk_teardown
	stop_relay
	if grep -E 'Sanitizer|runtime error' "$T"/relay*.log "$T"/*.syncd.log >&2; then
		return 1
	fi
}
