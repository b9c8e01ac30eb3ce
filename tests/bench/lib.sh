# shellcheck shell=bash
# tests/bench/lib.sh - helpers shared by the benchmark scripts (bash, sourced).
#
# Timing, medians and number formatting; dropping the page cache; a registry
# of what a script mounted and which processes it started, so that one trap
# undoes exactly that and nothing else; a runner that keeps each measured
# command reachable by that trap.  Nothing here runs a workload and nothing
# here touches the network.
#
# Calling sequence:
#   . lib.sh
#   BENCH_WORKDIR=$(mktemp -d ...)         removed by bench_cleanup
#   trap bench_cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
#   bench_track_mount MNT                  before mounting MNT
#   cmd & bench_track_pid $!               for a daemon started in foreground
#   bench_run CMD...                       for every measured command
#   t0=$(bench_now); ...; bench_since "$t0"

# Numbers are written with '.' whatever the caller's locale (EPOCHREALTIME
# follows LC_NUMERIC).
export LC_ALL=C

BENCH_WORKDIR=
BENCH_MOUNTS=()
BENCH_PIDS=()
BENCH_CHILD=
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}

# Wall-clock seconds, microsecond resolution.
bench_now()
{
	printf '%s\n' "$EPOCHREALTIME"
}

# bench_since T0: seconds since bench_now printed T0.
bench_since()
{
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f\n", b - a }'
}

# bench_is_number V: true for a plain non-negative decimal.
bench_is_number()
{
	[[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]
}

# bench_median V...: the median; the first non-number (fail, timeout) if any
# value is not a number, "-" when there are no values.
bench_median()
{
	local v
	[ $# -gt 0 ] || { echo -; return; }
	for v in "$@"; do
		bench_is_number "$v" || { echo "$v"; return; }
	done
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_calc EXPR: evaluates an awk expression, prints the result.
bench_calc()
{
	awk "BEGIN { printf \"%.6f\n\", $1 }"
}

# bench_fs_of DIR: "SOURCE FSTYPE" of the filesystem holding DIR.
bench_fs_of()
{
	local r
	r=$(findmnt -no SOURCE,FSTYPE -T "$1" 2>/dev/null | head -n 1)
	[ -n "$r" ] || r=$(df -PT "$1" | awk 'NR == 2 { print $1, $2 }')
	echo "$r"
}

# bench_workdir OUT: prints the benchmark's work directory: $BENCH_DIR, else
# $TMPDIR or /tmp unless that is a RAM filesystem (then OUT), created and
# resolved; fails with a message on a path with spaces.
bench_workdir()
{
	local base
	if [ -n "${BENCH_DIR:-}" ]; then
		base=$BENCH_DIR
	else
		base=${TMPDIR:-/tmp}
		case $(bench_fs_of "$base" | awk '{ print $2 }') in
		tmpfs | ramfs) base=$1 ;;
		esac
	fi
	mkdir -p "$base" "$1" || { echo "cannot create $base" >&2; return 1; }
	base=$(cd -P "$base" && pwd)
	if [[ $base == *[[:space:]]* ]]; then
		echo "work directory path has spaces: $base" >&2
		return 1
	fi
	echo "$base"
}

# bench_drop_caches: writes back and drops page, dentry and inode caches.
# Fails (quietly) when not allowed, e.g. not root or in a container.
bench_drop_caches()
{
	sync
	{ echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null
}

# bench_in_mountinfo DIR: DIR (an absolute, canonical path without spaces)
# is a mount point in this namespace, alive or not.  Unlike mountpoint(1)
# this does not stat DIR, so a dead FUSE daemon (ENOTCONN) still counts.
bench_in_mountinfo()
{
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# bench_alive DIR: DIR is mounted and answers.
bench_alive()
{
	bench_in_mountinfo "$1" && timeout 10 stat -- "$1" >/dev/null 2>&1
}

# bench_wait_mounted DIR SECONDS [PID]: polls until DIR is mounted; gives up
# at the deadline or as soon as PID (the daemon) has exited.
bench_wait_mounted()
{
	local dir=$1 deadline=$((SECONDS + $2)) pid=${3:-}
	while ! bench_in_mountinfo "$dir"; do
		[ $SECONDS -ge $deadline ] && return 1
		[ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && return 1
		sleep 0.05
	done
}

bench_track_mount()
{
	BENCH_MOUNTS+=("$1")
}

bench_track_pid()
{
	BENCH_PIDS+=("$1")
}

# bench_unmount DIR: fusermount3 -u, then fusermount -u (libfuse2), then
# umount, then a lazy umount.  0 once DIR is no longer mounted.
bench_unmount()
{
	local m=$1 _
	bench_in_mountinfo "$m" || return 0
	fusermount3 -u "$m" 2>/dev/null || fusermount -u "$m" 2>/dev/null ||
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	for _ in $(seq 100); do
		bench_in_mountinfo "$m" || return 0
		sleep 0.05
	done
	umount -l "$m" 2>/dev/null
	! bench_in_mountinfo "$m"
}

# bench_stop_pid PID: TERM, up to 5 s, then KILL.  Only for pids this script
# started.
bench_stop_pid()
{
	local p=$1 _
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$p" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$p" 2>/dev/null
}

# bench_run CMD...: runs CMD as a background child under BENCH_TIMEOUT
# seconds and waits for it, so that a TERM to the script is handled at once
# and the trap can stop the child by its pid.  Returns CMD's status (124 on
# timeout).
bench_run()
{
	local rc
	timeout -k 10 "$BENCH_TIMEOUT" "$@" &
	BENCH_CHILD=$!
	wait "$BENCH_CHILD"
	rc=$?
	BENCH_CHILD=
	return $rc
}

# bench_cleanup: stops the measured child, unmounts every tracked mount,
# stops every tracked pid, removes BENCH_WORKDIR unless something is still
# mounted beneath it.  Safe to call more than once.
bench_cleanup()
{
	local m p busy=0
	[ -n "$BENCH_CHILD" ] && bench_stop_pid "$BENCH_CHILD"
	BENCH_CHILD=
	for m in "${BENCH_MOUNTS[@]}"; do
		bench_unmount "$m" || {
			echo "bench: could not unmount $m" >&2
			busy=1
		}
	done
	for p in "${BENCH_PIDS[@]}"; do
		bench_stop_pid "$p"
	done
	BENCH_MOUNTS=()
	BENCH_PIDS=()
	if [ -n "$BENCH_WORKDIR" ] && [ -d "$BENCH_WORKDIR" ]; then
		if [ $busy = 0 ]; then
			rm -rf --one-file-system -- "$BENCH_WORKDIR"
		else
			echo "bench: left $BENCH_WORKDIR in place" >&2
		fi
	fi
	BENCH_WORKDIR=
}

# bench_cost KIND V BASE: V's cost relative to BASE for a chart, or "-"
# (not numbers, or zero): KIND cost for times and bytes (V / BASE), rate
# for MB/s and IOPS (BASE / V).
bench_cost()
{
	if ! bench_is_number "$2" || ! bench_is_number "$3"; then
		echo -
		return
	fi
	awk -v k="$1" -v v="$2" -v b="$3" 'BEGIN {
		r = (k == "rate") ? (v > 0 ? b / v : 0) : (b > 0 ? v / b : 0)
		if (r > 0) printf "%.4f\n", r; else print "-" }'
}

# bench_chart DATA SVG TITLE BASE: draws DATA as an SVG bar chart with
# gnuplot.  DATA is tab-separated: a first line naming the columns (the
# workload, then one series each) and a line per workload with each
# series' cost relative to BASE (time or bytes over BASE's, or BASE's
# rate over the series'; "-" where there is none).  Bars on a log scale,
# a line at 1 for BASE: below it better than BASE, above it worse.
# Without gnuplot it says so and draws nothing (tools/install-deps
# --bench brings it).
bench_chart()
{
	local data=$1 svg=$2 title=$3 base=$4 n
	command -v gnuplot >/dev/null || {
		echo "no gnuplot: no chart (tools/install-deps --bench)" >&2
		return 0
	}
	n=$(head -n 1 "$data" | awk -F'\t' '{ print NF }')
	gnuplot <<GP
set terminal svg size 960,560 dynamic noenhanced font "sans,12" background "white"
set output "$svg"
set datafile separator "\t"
set datafile missing "-"
set title "$title"
set ylabel "cost relative to $base (log scale; lower is better)"
set logscale y
set yrange [0.05:*]
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set xtics rotate by -30 scale 0 nomirror
set arrow from graph 0, first 1 to graph 1, first 1 nohead lc rgb "#333333" dt 2 lw 1.5
set label "$base = 1" at graph 1, first 1 right offset -0.5, 0.7
plot for [i=2:$n] "$data" using i:xtic(1) title columnheader(i)
GP
}
