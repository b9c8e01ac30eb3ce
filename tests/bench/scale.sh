#!/usr/bin/env bash
# tests/bench/scale.sh - wkfs on a folder of many files, against native.
#
# Makes a tree of 100,000 small files (1,000,000 with SCALE=1M) in nested
# directories (DIRS top directories of 10 subdirectories of 100 files),
# then times, with the peak RSS of the process doing the work:
#
#   native  find DIR -printf '%s %T@\n'    (what any scan must do at least)
#           find DIR | wc -l, ls -lR DIR  (the walks measured below)
#   wkfs    init; mount (first, after a clean unmount, after a kill -9 of
#           the mount process); find | wc -l and ls -lR through the mount;
#           status; the size of DIR/.wkfs
#
# and prints each against its native baseline from the same run.  Caches
# are dropped before each step when allowed (root), else every step runs
# warm; the header says which.  One repetition: the steps are long and the
# ratios are what matters.  What it is not: a sync benchmark (no relay, no
# second replica).
#
#   tests/bench/scale.sh                100,000 files
#   SCALE=1M tests/bench/scale.sh       1,000,000 files (needs ~5 GiB free)
#
# Environment: SCALE (100k or 1M), BENCH_DIR (where the work directory is
# made, as for fs.sh), BENCH_TIMEOUT (seconds allowed to one step, default
# 3600), B and WKFS_BIN (the binary, as for fs.sh).  The table goes to
# stdout and tests/bench/out/scale-<timestamp>.txt; progress to stderr.  A
# trap unmounts what the script mounted and removes the work directory.
# Exits 1 when a step failed.
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# Before lib.sh, which defaults it to 900: init of a million files is long.
BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

B=${B:-build}
WKFS_BIN=${WKFS_BIN:-$root/$B/wkfs}
case $WKFS_BIN in /*) ;; *) WKFS_BIN=$PWD/$WKFS_BIN ;; esac

die()
{
	echo "scale.sh: $*" >&2
	exit 1
}

say()
{
	printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

case ${SCALE:-100k} in
100k) DIRS=100 ;;
1M) DIRS=1000 ;;
*) die "SCALE must be 100k or 1M, not '${SCALE}'" ;;
esac
NFILES=$((DIRS * 10 * 100))
[ -x "$WKFS_BIN" ] || die "$WKFS_BIN is missing: run make first"
for t in python3 findmnt timeout du; do
	command -v "$t" >/dev/null ||
		die "$t is missing (tools/install-deps --bench installs what is needed)"
done
[ -x /usr/bin/time ] ||
	die "/usr/bin/time is missing (tools/install-deps --bench installs it)"

base=$(bench_workdir "$here/out") || exit 1
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
W=$(mktemp -d "$base/wkfs-scale.XXXXXX") || die "mktemp in $base failed"
# shellcheck disable=SC2034 # read by bench_cleanup in lib.sh
BENCH_WORKDIR=$W
D=$W/dir
mkdir -p "$D" "$W/log"

COLD=warm
bench_drop_caches && COLD=cold
failed=0

# ------------------------------------------------------------ measuring

declare -A SECS RSS

# drop: the caches, before a step, when allowed.
drop()
{
	[ $COLD = cold ] && bench_drop_caches
	return 0
}

# step NAME CMD...: runs CMD under /usr/bin/time -v; SECS[NAME] and
# RSS[NAME] (KiB) get its wall time and peak RSS, or "fail".
step()
{
	local name=$1 log=$W/log/$1.time
	shift
	drop
	say "$name"
	if ! bench_run /usr/bin/time -v -o "$log" "$@" >"$W/log/$name.out" \
		2>"$W/log/$name.err"; then
		say "$name failed: $(tail -n 3 "$W/log/$name.err")"
		SECS[$name]=fail RSS[$name]=fail
		failed=1
		return 1
	fi
	SECS[$name]=$(awk -F': ' '/Elapsed \(wall clock\)/ {
		n = split($2, p, ":"); s = 0
		for (i = 1; i <= n; i++) s = s * 60 + p[i]
		printf "%.3f\n", s }' "$log")
	RSS[$name]=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$log")
}

# The mount process (a daemon once ready): its pid and its peak RSS.
mount_pid()
{
	local f
	f=$(grep -lxF -- "$D" /run/wkfs/*/backing \
		"${XDG_RUNTIME_DIR:-/nonexistent}"/wkfs/*/backing \
		/tmp/wkfs-"$(id -u)"/*/backing 2>/dev/null | head -n 1)
	[ -n "$f" ] && cat "$(dirname "$f")/fs.pid"
}

mount_hwm()
{
	local p
	p=$(mount_pid) || return 0
	awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null
}

# mount_step NAME: `wkfs mount DIR` (it returns once the mount answers);
# RSS[NAME] is the mount process's peak so far.
mount_step()
{
	bench_track_mount "$D"
	step "$1" "$WKFS_BIN" mount "$D" || return 1
	# The daemon is ours to stop too, should the trap find it alive.
	bench_track_pid "$(mount_pid)"
	RSS[$1]=$(mount_hwm)
}

# walk NAME: find | wc -l and ls -lR of DIR as steps NAME-find, NAME-ls.
walk()
{
	step "$1-find" sh -c 'find "$1" | wc -l' sh "$D"
	step "$1-ls" ls -lR "$D"
}

# ------------------------------------------------------------ the run

say "making $NFILES files in $D"
python3 - "$D" "$DIRS" <<'EOF' || die "could not make the tree"
import os, sys
root, ndirs = sys.argv[1], int(sys.argv[2])
n = 0
for a in range(ndirs):
    for b in range(10):
        d = os.path.join(root, "t%04d" % a, "s%d" % b)
        os.makedirs(d)
        for f in range(100):
            with open(os.path.join(d, "f%03d" % f), "w") as fp:
                fp.write("file %d\n" % n)
            n += 1
EOF

step native-scan find "$D" -printf '%s %T@\n'
walk native
step init "$WKFS_BIN" init "$D"
mount_step mount-first
walk wkfs
RSS[mount-walked]=$(mount_hwm)
step status "$WKFS_BIN" status "$D"
step umount "$WKFS_BIN" umount "$D"
mount_step mount-clean
pid=$(mount_pid)
if [ -n "$pid" ]; then
	say "kill -9 of the mount process $pid"
	kill -KILL "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
fi
mount_step mount-crash
walk_lines=$(cat "$W/log/wkfs-find.out" 2>/dev/null)
native_lines=$(cat "$W/log/native-find.out" 2>/dev/null)
[ "$walk_lines" = "$native_lines" ] || {
	say "find through the mount saw $walk_lines entries, native $native_lines"
	failed=1
}
bench_unmount "$D" || "$WKFS_BIN" umount "$D"
SIDECAR=$(du -sk "$D/.wkfs" | awk '{ print $1 }')

# ------------------------------------------------------------ the table

# ratio A B: A / B as xN.NN, "-" when either is not a number.
ratio()
{
	bench_is_number "$1" && bench_is_number "$2" || { echo -; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-";
		else printf (a / b < 10 ? "x%.2f" : "x%.1f"), a / b }'
}

mib()
{
	bench_is_number "$1" || { echo "${1:--}"; return; }
	awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'
}

# verdict VALUE LIMIT: "met" when VALUE (a number, or a ratio xN) is
# within LIMIT, "missed" when not, "-" when there is no value.
verdict()
{
	local v=${1#x}
	bench_is_number "$v" || { echo -; return; }
	awk -v v="$v" -v l="$2" 'BEGIN { print (v <= l ? "met" : "missed") }'
}

# row LABEL STEP [BASE NOTE [TARGET]]: STEP's time and peak RSS, and its
# time against step BASE's (NOTE names it); with TARGET (a ratio), whether
# the ratio is within it.
row()
{
	local r='' note=${4:-}
	[ -n "${3:-}" ] && r=$(ratio "${SECS[$2]:-}" "${SECS[$3]:-}")
	[ -n "${5:-}" ] &&
		note="$note (target x$5: $(verdict "$r" "$5"))"
	printf '%-34s %10s %10s %9s  %s\n' "$1" "${SECS[$2]:--}" \
		"$(mib "${RSS[$2]:-}")" "$r" "$note"
}

# peak_mount: the highest peak RSS of the mount process, in KiB.
peak_mount()
{
	local k max=
	for k in mount-first mount-walked mount-clean mount-crash; do
		bench_is_number "${RSS[$k]:-}" || continue
		if [ -z "$max" ] || [ "${RSS[$k]}" -gt "$max" ]; then
			max=${RSS[$k]}
		fi
	done
	echo "${max:--}"
}

out=$here/out/scale-$(date +%Y%m%d-%H%M%S).txt
{
	echo "wkfs scale: $NFILES files in $((DIRS * 10)) directories" \
		"($(bench_fs_of "$W"), $COLD cache, $(nproc) cpus)"
	printf '%-34s %10s %10s %9s  %s\n' step seconds "peak RSS" ratio \
		"against"
	row "native find -printf '%s %T@'" native-scan
	row "native find | wc -l" native-find
	row "native ls -lR" native-ls
	row "wkfs init" init native-scan "native scan"
	row "wkfs mount (first)" mount-first native-scan "native scan"
	row "find | wc -l through the mount" wkfs-find native-find \
		"native find" 3
	row "ls -lR through the mount" wkfs-ls native-ls "native ls"
	printf '%-34s %10s %10s\n' "  mount process after both walks" - \
		"$(mib "${RSS[mount-walked]:-}")"
	row "wkfs status" status
	row "wkfs umount" umount
	row "wkfs mount after a clean umount" mount-clean native-scan \
		"native scan" 2
	row "wkfs mount after kill -9" mount-crash native-scan \
		"native scan" 4
	printf '%-34s %10s\n' "size of .wkfs" "$(mib "$SIDECAR")"
	peak=$(peak_mount)
	printf '%-34s %10s %10s %9s  %s\n' "mount process, highest peak" - \
		"$(mib "$peak")" - "(target under 500 MiB: $(verdict \
		"$(awk -v k="$peak" 'BEGIN { if (k + 0 > 0) print k / 1024 }')" \
		500))"
	echo "(peak RSS of a mount: the mount process's VmHWM; the targets are"
	echo " for 1M files)"
} | tee "$out"
exit $failed
