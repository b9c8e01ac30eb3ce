#!/usr/bin/env bash
# tests/bench/sync.sh - wkfs replication beside Syncthing, one run, loopback.
#
# Two wkfs replicas (each `wkfs mount DIR` in place with its wkfs-syncd)
# meeting at a wkfs-relay, and two Syncthing instances (Debian's package)
# sharing one folder, all inside one network namespace with only `lo` up
# (the script re-runs itself under `unshare -n`), so nothing can leave the
# machine and no discovery, relay or NAT traversal can happen.  Syncthing
# is measured twice: with its default file-watcher delay (10 s) and with
# fsWatcherDelayS=1.  Each workload runs on wkfs, then Syncthing with the
# default delay, then with 1 s (interleaved: the machines are shared and
# noisy, so the table gives ratios).  What it is not: a file-system
# benchmark (tests/bench/fs.sh) or a stress test.
#
# Workloads (each writes on A and waits for B):
#   latency  a small file saved on A (open, write, close) until B reads the
#            new content; median and p99 of 20 saves (p99 of 20 is the
#            slowest, nearest rank)
#   many     10,000 files of 4 KiB written on A: time from the last close
#            until B holds all of them at full size
#   edit     a 256 MiB file synced, then one byte changed in its middle:
#            bytes on the wire until B has it and the link is quiet
#   big      a 1 GiB file copied onto A: MB/s from the end of the copy
#            until B holds it at full size (then compared byte for byte)
#
# Bytes on the wire are the kernel's per-socket counts (tcp_info, via ss):
# bytes_acked (sent, without loopback's retransmissions) plus
# bytes_received, summed over the relay's sockets for wkfs (A to relay and
# relay to B) and over A's sync connection for Syncthing (A to B, TLS).
# A connection that closes during the window would lose its counts: the
# value is then marked "n/a".
#
#   tests/bench/sync.sh                 full run (about 20-30 minutes)
#   BENCH_QUICK=1 tests/bench/sync.sh   5 saves, 1,000 files, 32 MiB edit,
#                                       64 MiB big file
#   BENCH_ONLY=latency,edit tests/bench/sync.sh
#
# Environment: BENCH_QUICK, BENCH_ONLY (latency many edit big),
# BENCH_PEERS=none (wkfs alone, while working on it: no ratios), BENCH_DIR
# (where the work directory goes), BENCH_TIMEOUT (seconds one wait may take,
# default 900), B (build directory), WKFS_BIN.  Needs root (unshare, FUSE)
# and tools/install-deps --bench.  The table goes to stdout and to
# tests/bench/out/sync-<timestamp>.txt, with a bar chart of Syncthing's
# cost relative to wkfs per workload (gnuplot) in sync-<timestamp>.svg and
# its numbers in .tsv; progress to stderr.  A trap
# unmounts what the script mounted, stops the processes it started (by
# pid) and removes the work directory.  Exits 1 if a measurement failed.
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

die()
{
	echo "sync.sh: $*" >&2
	exit 1
}

say()
{
	printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

B=${B:-build}
WKFS_BIN=${WKFS_BIN:-$root/$B/wkfs}
case $WKFS_BIN in /*) ;; *) WKFS_BIN=$PWD/$WKFS_BIN ;; esac
BIN_DIR=$(dirname "$WKFS_BIN")
RELAY_BIN=$BIN_DIR/wkfs-relay
SYNCD_BIN=$BIN_DIR/wkfs-syncd
PY=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
PROBE=$here/sync_probe.py

# Everything below runs in a network namespace of its own with only lo.
if [ "${BENCH_NETNS:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "needs root (unshare -n, FUSE mounts)"
	exec unshare -n -- env BENCH_NETNS=1 "$BASH" "$0" "$@"
fi
ip link set lo up || die "cannot bring lo up in the new network namespace"

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	LAT_N=5 MANY_N=1000 EDIT_MB=32 BIG_MB=64
else
	LAT_N=20 MANY_N=10000 EDIT_MB=256 BIG_MB=1024
fi
MANY_SIZE=4096
WAIT=${BENCH_TIMEOUT:-900}
ALL_WL="latency many edit big"
ONLY=${BENCH_ONLY:-}
for w in ${ONLY//,/ }; do
	[[ " $ALL_WL " == *" $w "* ]] || die "unknown workload '$w' (known: $ALL_WL)"
done
WLS=
for w in $ALL_WL; do
	[ -z "$ONLY" ] || [[ ",$ONLY," == *",$w,"* ]] && WLS="$WLS $w"
done
for t in syncthing ss curl cmp "$PY"; do
	command -v "$t" >/dev/null ||
		die "$t is missing (tools/install-deps --bench installs what is needed)"
done
for f in "$WKFS_BIN" "$RELAY_BIN" "$SYNCD_BIN"; do
	[ -x "$f" ] || die "$f is not built (make -j2)"
done

# ---------------------------------------------------------------- work dir

base=$(bench_workdir "$here/out") || exit 1

WK_A='' WK_B=''
cleanup()
{
	local d p
	# the daemons first (by pid), then wkfs's own unmount, then lib.sh
	for p in "${BENCH_PIDS[@]}"; do
		bench_stop_pid "$p"
	done
	for d in "$WK_A" "$WK_B"; do
		[ -n "$d" ] && bench_in_mountinfo "$d" &&
			timeout 30 "$WKFS_BIN" umount "$d" >/dev/null 2>&1
	done
	bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

W=$(mktemp -d "$base/sync-bench.XXXXXX") || die "mktemp in $base failed"
# shellcheck disable=SC2034 # read by bench_cleanup in lib.sh
BENCH_WORKDIR=$W
mkdir -p "$W/log" "$W/home" "$W/src"
export HOME=$W/home STNOUPGRADE=1

# ---------------------------------------------------------------- results

TARGETS=(wkfs st10 st1)
[ "${BENCH_PEERS:-}" = none ] && TARGETS=(wkfs)
declare -A VAL NOTE LABEL
LABEL[wkfs]="wkfs"
LABEL[st10]="Syncthing (10 s)"
LABEL[st1]="Syncthing (1 s)"
FAILED=0

record()
{
	VAL[$1,$2]=$3
	bench_is_number "$3" || FAILED=1
	say "  $1 ${LABEL[$2]}: $3"
}

# ---------------------------------------------------------------- wkfs

# wait_log FILE PATTERN SECONDS: FILE gets a line matching PATTERN.
wait_log()
{
	local end=$((SECONDS + $3))
	until grep -q -- "$2" "$1" 2>/dev/null; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
}

start_wkfs()
{
	local tok s d
	mkdir -p "$W/relay" "$W/wk/a" "$W/wk/b"
	WK_A=$W/wk/a WK_B=$W/wk/b
	tok=$("$RELAY_BIN" --data "$W/relay" folder add Bench) ||
		die "wkfs-relay folder add failed"
	"$RELAY_BIN" --data "$W/relay" --bind 127.0.0.1:0 \
		>"$W/log/relay.log" 2>&1 &
	RELAY_PID=$!
	bench_track_pid "$RELAY_PID"
	wait_log "$W/log/relay.log" '^listening on ' 30 ||
		die "wkfs-relay did not start: $(tail -n 3 "$W/log/relay.log")"
	RELAY_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' \
		"$W/log/relay.log")
	for s in a b; do
		d=$W/wk/$s
		"$WKFS_BIN" init "$d" --device "bench-$s" >>"$W/log/wkfs.log" 2>&1 ||
			die "wkfs init $d failed"
		printf 'url = ws://127.0.0.1:%s/Bench\ntoken = %s\n' \
			"$RELAY_PORT" "$tok" >>"$d/.wkfs/config.ini"
		bench_track_mount "$d"
		timeout 60 "$WKFS_BIN" mount "$d" >>"$W/log/wkfs.log" 2>&1 ||
			die "wkfs mount $d failed: $(tail -n 3 "$W/log/wkfs.log")"
		# A wkfs that starts its own daemon makes this one say
		# "already running": then that one is measured.
		"$SYNCD_BIN" "$d" -f >"$W/log/syncd-$s.log" 2>&1 </dev/null &
		bench_track_pid $!
	done
	for s in a b; do
		wait_log "$W/log/syncd-$s.log" 'connected to \|already running' 60 ||
			die "wkfs-syncd $s did not connect: $(tail -n 3 "$W/log/syncd-$s.log")"
	done
	say "wkfs: relay on 127.0.0.1:$RELAY_PORT, replicas $WK_A and $WK_B"
}

# ---------------------------------------------------------------- Syncthing

ST_PORT_A=22101 ST_PORT_B=22102 ST_GUI_A=18401 ST_GUI_B=18402

# st_config HOME DIR LISTEN GUI PEER_ID PEER_ADDR: edits the config.xml that
# `syncthing generate` made (a hand-written <folder> would miss defaults,
# maxConflicts among them): its default folder becomes "bench" at DIR,
# shared with the peer at PEER_ADDR; discovery, relays, NAT, usage
# reports, crash reports and upgrades off.
st_config()
{
	"$PY" - "$@" <<'EOF'
import copy, sys, xml.etree.ElementTree as ET
home, path, listen, gui, peer_id, peer_addr = sys.argv[1:7]
cfg = home + "/config.xml"
t = ET.parse(cfg)
r = t.getroot()
f = r.find("folder")
f.set("id", "bench")
f.set("label", "bench")
f.set("path", path)
f.set("fsWatcherEnabled", "true")
own = r.find("device")
peer = copy.deepcopy(own)
peer.set("id", peer_id)
peer.set("name", "peer")
peer.find("address").text = peer_addr
r.insert(list(r).index(own) + 1, peer)
fdev = f.find("device")
fpeer = copy.deepcopy(fdev)
fpeer.set("id", peer_id)
f.insert(list(f).index(fdev) + 1, fpeer)
r.find("gui").find("address").text = gui
o = r.find("options")
def opt(k, v):
    e = o.find(k)
    if e is None:
        e = ET.SubElement(o, k)
    e.text = v
opt("listenAddress", listen)
for k in ("globalAnnounceEnabled", "localAnnounceEnabled", "relaysEnabled",
          "natEnabled", "startBrowser", "crashReportingEnabled"):
    opt(k, "false")
opt("globalAnnounceServer", "")
opt("stunServer", "")
opt("urAccepted", "-1")
opt("autoUpgradeIntervalH", "0")
t.write(cfg)
EOF
}

# st_rest a|b METHOD PATH [JSON]: the REST API of instance a or b.
st_rest()
{
	local port=$ST_GUI_A key=$ST_KEY_A
	[ "$1" = b ] && port=$ST_GUI_B key=$ST_KEY_B
	curl -sf -m 30 -X "$2" -H "X-API-Key: $key" ${4:+-d "$4"} \
		"http://127.0.0.1:$port$3"
}

st_connected()
{
	st_rest a GET /rest/system/connections 2>/dev/null | "$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
sys.exit(0 if any(v["connected"] for v in d["connections"].values()) else 1)'
}

# st_idle: both folders idle, nothing needed, B fully in sync with A.
st_idle()
{
	local s
	for s in a b; do
		st_rest "$s" GET "/rest/db/status?folder=bench" 2>/dev/null |
			"$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
sys.exit(0 if d["state"] == "idle" and d["needTotalItems"] == 0 else 1)' ||
			return 1
	done
}

wait_cmd()
{
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}

start_syncthing()
{
	local s id_a id_b
	mkdir -p "$W/st/a" "$W/st/b"
	ST_A=$W/st/a ST_B=$W/st/b
	for s in a b; do
		syncthing generate --home="$W/st-home-$s" >>"$W/log/st-$s.log" 2>&1 ||
			die "syncthing generate failed"
	done
	id_a=$(syncthing serve --home="$W/st-home-a" --device-id) ||
		die "syncthing --device-id failed"
	id_b=$(syncthing serve --home="$W/st-home-b" --device-id) ||
		die "syncthing --device-id failed"
	st_config "$W/st-home-a" "$ST_A" "tcp://127.0.0.1:$ST_PORT_A" \
		"127.0.0.1:$ST_GUI_A" "$id_b" "tcp://127.0.0.1:$ST_PORT_B" ||
		die "editing Syncthing's config failed"
	st_config "$W/st-home-b" "$ST_B" "tcp://127.0.0.1:$ST_PORT_B" \
		"127.0.0.1:$ST_GUI_B" "$id_a" "tcp://127.0.0.1:$ST_PORT_A" ||
		die "editing Syncthing's config failed"
	ST_KEY_A=$(sed -n 's:.*<apikey>\(.*\)</apikey>.*:\1:p' "$W/st-home-a/config.xml")
	ST_KEY_B=$(sed -n 's:.*<apikey>\(.*\)</apikey>.*:\1:p' "$W/st-home-b/config.xml")
	for s in a b; do
		syncthing serve --home="$W/st-home-$s" --no-browser --no-restart \
			--no-upgrade --no-default-folder --skip-port-probing \
			>>"$W/log/st-$s.log" 2>&1 </dev/null &
		bench_track_pid $!
	done
	wait_cmd 120 st_connected ||
		die "the Syncthing instances did not connect: $(tail -n 3 "$W/log/st-a.log")"
	wait_cmd 120 st_idle || die "Syncthing's folders did not become idle"
	ST_VERSION=$(syncthing --version | awk '{ print $2 }')
	say "Syncthing $ST_VERSION: $ST_A and $ST_B, connected"
}

# st_delay SECONDS: the watcher delay of both instances' folder.
st_delay()
{
	local s
	for s in a b; do
		st_rest "$s" PATCH /rest/config/folders/bench \
			"{\"fsWatcherDelayS\": $1}" >/dev/null ||
			die "cannot set Syncthing's watcher delay"
	done
	wait_cmd 120 st_idle || die "Syncthing did not become idle"
}

# ---------------------------------------------------------------- targets

# use T: sets SRC and DST (T's replicas A and B) and SUF (a name suffix, so
# the two Syncthing settings never touch each other's files).
use()
{
	case $1 in
	wkfs) SRC=$WK_A DST=$WK_B ;;
	st10) SRC=$ST_A DST=$ST_B && st_delay 10 ;;
	st1) SRC=$ST_A DST=$ST_B && st_delay 1 ;;
	esac
	SUF=$1
}

# wire_sockets T: "local peer bytes" for each TCP connection that carries
# T's traffic (bytes = bytes_acked + bytes_received): the relay's sockets
# for wkfs, A's sync connection for Syncthing.
wire_sockets()
{
	local port=$RELAY_PORT
	[ "$1" = wkfs ] || port=$ST_PORT_A
	ss -tinH "sport = :$port" 2>/dev/null | awk '
		/^[A-Z]/ { if (key != "") print key, n; key = $4 " " $5; n = 0; next }
		{ for (i = 1; i <= NF; i++)
			if ($i ~ /^bytes_(acked|received):/) {
				split($i, kv, ":"); n += kv[2] } }
		END { if (key != "") print key, n }' | sort
}

# wire_split T: "IN OUT": bytes_received and bytes_acked of those sockets.
wire_split()
{
	local port=$RELAY_PORT
	[ "$1" = wkfs ] || port=$ST_PORT_A
	ss -tinH "sport = :$port" 2>/dev/null | awk '
		{ for (i = 1; i <= NF; i++) {
			split($i, kv, ":")
			if (kv[1] == "bytes_received") r += kv[2]
			if (kv[1] == "bytes_acked") a += kv[2] } }
		END { print r + 0, a + 0 }'
}

# lower_bound BEFORE AFTER: bytes moved on the connections of AFTER (two
# wire_sockets lists): the growth of those already in BEFORE, all of the
# new ones; what closed connections carried is not known.
lower_bound()
{
	awk 'NR == FNR { b[$1 " " $2] = $3; next }
		{ s += $3 - (($1 " " $2) in b ? b[$1 " " $2] : 0) }
		END { print s + 0 }' <(echo "$1") <(echo "$2")
}

wire_total()
{
	wire_sockets "$1" | awk '{ s += $3 } END { print s + 0 }'
}

# wire_quiet T: waits (up to 120 s) until T's byte count holds still for
# 2 s, so that a window starts and ends with the link idle.
wire_quiet()
{
	local last=-1 now same=0 end=$((SECONDS + 120))
	while [ "$SECONDS" -lt "$end" ]; do
		now=$(wire_total "$1")
		if [ "$now" = "$last" ]; then
			same=$((same + 1))
			[ "$same" -ge 4 ] && return 0
		else
			same=0
		fi
		last=$now
		sleep 0.5
	done
	return 1
}

# ---------------------------------------------------------------- workloads

run_latency()
{
	local t=$1 out v
	mkdir -p "$SRC/lat-$SUF"
	echo first >"$SRC/lat-$SUF/note.txt"
	"$PY" "$PROBE" wait_size "$DST/lat-$SUF/note.txt" 6 "$WAIT" >/dev/null
	out=$("$PY" "$PROBE" latency "$SRC/lat-$SUF/note.txt" \
		"$DST/lat-$SUF/note.txt" "$LAT_N" "$WAIT")
	echo "$out" | tr '\n' ' ' | sed "s/^/  latency $t: /" >&2
	echo >&2
	if echo "$out" | grep -q timeout || [ "$(echo "$out" | wc -l)" != "$LAT_N" ]; then
		record lat_med "$t" timeout
		record lat_p99 "$t" timeout
		return
	fi
	# shellcheck disable=SC2086 # one value per word
	record lat_med "$t" "$(bench_median $out)"
	v=$(echo "$out" | sort -g | awk -v n="$LAT_N" '
		{ v[NR] = $1 } END { r = int(0.99 * n); if (r < 0.99 * n) r++;
			print v[r] }')
	record lat_p99 "$t" "$v"
}

run_many()
{
	local t=$1 t_last t_b
	t_last=$("$PY" "$PROBE" many "$SRC/many-$SUF" "$MANY_N" "$MANY_SIZE")
	t_b=$("$PY" "$PROBE" wait_many "$DST/many-$SUF" "$MANY_N" "$MANY_SIZE" "$WAIT")
	if ! bench_is_number "$t_b"; then
		record many "$t" "$t_b"
		return
	fi
	record many "$t" "$(bench_calc "$t_b - $t_last")"
	# content check, untimed
	diff -rq "$SRC/many-$SUF" "$DST/many-$SUF" >/dev/null ||
		NOTE[many,$t]="B's files differ from A's"
}

run_edit()
{
	local t=$1 f=edit-$SUF.bin size=$((EDIT_MB << 20)) off before after v rc
	local s0 s1 dir0 in0 out0 in1 out1 who
	off=$((size / 2 + 12345))
	# fresh bytes for each target: B must not find the edited block in
	# another target's copy (Syncthing reuses local blocks of any file)
	head -c "$size" /dev/urandom >"$W/src/edit.bin"
	cp "$W/src/edit.bin" "$SRC/$f"
	v=$("$PY" "$PROBE" wait_size "$DST/$f" "$size" "$WAIT")
	bench_is_number "$v" || { record edit "$t" "$v"; return; }
	cmp -s "$SRC/$f" "$DST/$f" || { record edit "$t" fail; return; }
	wire_quiet "$t" || NOTE[edit,$t]="link not quiet before the edit"
	s0=$(wire_sockets "$t")
	before=$(wire_total "$t")
	dir0=$(wire_split "$t")
	v=$("$PY" "$PROBE" flip "$SRC/$f" "$off")
	rc=$("$PY" "$PROBE" wait_byte "$DST/$f" "$off" "$v" "$WAIT")
	bench_is_number "$rc" || { record edit "$t" "$rc"; return; }
	wire_quiet "$t" || NOTE[edit,$t]="link not quiet after the edit"
	after=$(wire_total "$t")
	s1=$(wire_sockets "$t")
	read -r in0 out0 <<<"$dir0"
	read -r in1 out1 < <(wire_split "$t")
	who=A
	[ "$t" = wkfs ] && who="the relay"
	NOTE[edit,$t]="${NOTE[edit,$t]:+${NOTE[edit,$t]}; }$who received $(fmt B $((in1 - in0))), sent $(fmt B $((out1 - out0)))"
	cmp -s "$SRC/$f" "$DST/$f" || NOTE[edit,$t]="B's file differs from A's"
	if [ "$(echo "$s0" | cut -d' ' -f1,2)" != "$(echo "$s1" | cut -d' ' -f1,2)" ]; then
		record edit "$t" n/a
		NOTE[edit,$t]="a connection closed during the window, its bytes are lost; the others moved $(fmt B "$(lower_bound "$s0" "$s1")")"
		return
	fi
	record edit "$t" $((after - before))
}

run_big()
{
	local t=$1 f=big-$SUF.bin size=$((BIG_MB << 20)) t0 t1
	# fresh bytes for each target: no tool may find them already there
	head -c "$size" /dev/urandom >"$W/src/big.bin"
	cp "$W/src/big.bin" "$SRC/$f"
	t0=$(date +%s.%N)
	t1=$("$PY" "$PROBE" wait_size "$DST/$f" "$size" "$WAIT")
	if ! bench_is_number "$t1"; then
		record big "$t" "$t1"
		return
	fi
	record big "$t" "$(bench_calc "$size / 1e6 / ($t1 - $t0)")"
	cmp -s "$W/src/big.bin" "$DST/$f" ||
		{ NOTE[big,$t]="B's file differs from A's"; record big "$t" fail; }
}

# ---------------------------------------------------------------- table

fmt()
{
	local unit=$1 v=$2
	bench_is_number "$v" || { echo "$v"; return; }
	case $unit in
	s) awk -v v="$v" 'BEGIN { if (v < 1) printf "%.0f ms", v * 1000;
		else printf "%.2f s", v }' ;;
	B) awk -v v="$v" 'BEGIN { if (v >= 1048576) printf "%.1f MiB", v / 1048576;
		else printf "%.0f KiB", v / 1024 }' ;;
	MB/s) awk -v v="$v" 'BEGIN { printf "%.1f MB/s", v }' ;;
	esac
}

# ratio UNIT WKFS PEER: how many times better wkfs is (above 1: wkfs wins).
ratio()
{
	local r
	r=$(bench_cost "$(kind "$1")" "$3" "$2")
	[ "$r" != - ] || { echo -; return; }
	awk -v r="$r" 'BEGIN { if (r < 0.1) printf "x%.2g", r
		else printf (r < 10 ? "x%.2f" : "x%.0f"), r }'
}

# kind UNIT: how bench_cost compares values of UNIT.
kind()
{
	if [ "$1" = MB/s ]; then echo rate; else echo cost; fi
}

# table_rows: id|unit|label|target of each row of the table.
table_rows()
{
	cat <<EOF
lat_med|s|save on A -> B, median of $LAT_N|< 50 ms
lat_p99|s|save on A -> B, p99 of $LAT_N|
many|s|$MANY_N x 4 KiB files, last write -> B|< 5 s
edit|B|1-byte edit in $EDIT_MB MiB, on the wire|< 192 KiB
big|MB/s|$BIG_MB MiB file, end of copy -> B|
EOF
}

# chart_data: Syncthing's cost relative to wkfs per workload, for
# bench_chart.
chart_data()
{
	local id unit label target k
	printf 'workload\tSyncthing 10 s\tSyncthing 1 s\n'
	while IFS='|' read -r id unit label target; do
		[ -n "${VAL[$id,wkfs]:-}" ] || continue
		k=$(kind "$unit")
		printf '%s\t%s\t%s\n' "$label" \
			"$(bench_cost "$k" "${VAL[$id,st10]:--}" "${VAL[$id,wkfs]}")" \
			"$(bench_cost "$k" "${VAL[$id,st1]:--}" "${VAL[$id,wkfs]}")"
	done < <(table_rows)
}

print_table()
{
	local id unit label target
	printf '%s\n' "wkfs vs Syncthing ${ST_VERSION:-(not run)}, loopback in a private network namespace"
	printf '%s\n' "$(date -u +%FT%TZ), $(nproc) CPUs, work dir on $(bench_fs_of "$W")$([ "$QUICK" = 1 ] && echo ", QUICK")"
	printf '\n%-40s %-10s %-9s %-16s %-7s %-16s %-7s\n' "" wkfs target \
		"Syncthing 10 s" ratio "Syncthing 1 s" ratio
	while IFS='|' read -r id unit label target; do
		[ -n "${VAL[$id,wkfs]:-}${VAL[$id,st10]:-}${VAL[$id,st1]:-}" ] || continue
		printf '%-40s %-10s %-9s %-16s %-7s %-16s %-7s\n' "$label" \
			"$(fmt "$unit" "${VAL[$id,wkfs]:--}")" "$target" \
			"$(fmt "$unit" "${VAL[$id,st10]:--}")" \
			"$(ratio "$unit" "${VAL[$id,wkfs]:--}" "${VAL[$id,st10]:--}")" \
			"$(fmt "$unit" "${VAL[$id,st1]:--}")" \
			"$(ratio "$unit" "${VAL[$id,wkfs]:--}" "${VAL[$id,st1]:--}")"
	done < <(table_rows)
	echo
	echo "ratio: Syncthing / wkfs for times and bytes, wkfs / Syncthing for MB/s;"
	echo "above 1 wkfs is better.  Bytes: tcp_info bytes_acked + bytes_received"
	echo "(wkfs: every relay socket, A->relay->B; Syncthing: A's TLS connection to B)."
	for k in "${!NOTE[@]}"; do
		echo "note: $k: ${NOTE[$k]}"
	done
}

# ---------------------------------------------------------------- main

say "work directory $W"
start_wkfs
[ "${#TARGETS[@]}" -gt 1 ] && start_syncthing

for wl in $WLS; do
	for t in "${TARGETS[@]}"; do
		say "$wl: ${LABEL[$t]}"
		use "$t"
		"run_$wl" "$t"
	done
done

# Traffic of the whole run, by process: how the wkfs byte counters compare.
say "wkfs-syncd logs: $(grep -c 'pushed' "$W/log/syncd-a.log") pushes from A"
out=$here/out/sync-$(date +%Y%m%d-%H%M%S).txt
print_table | tee "$out"
echo "(also in $out)" >&2
if [ "${#TARGETS[@]}" -gt 1 ]; then
	chart_data >"${out%.txt}.tsv"
	bench_chart "${out%.txt}.tsv" "${out%.txt}.svg" \
		"Syncthing against wkfs, loopback, $(date +%F)$([ "$QUICK" = 1 ] && echo ", quick run")" \
		wkfs && [ -s "${out%.txt}.svg" ] && echo "chart: ${out%.txt}.svg" >&2
fi
exit $FAILED
