#!/usr/bin/env bash
# tests/bench/fs.sh - wkfs beside a native directory and bindfs, one run.
#
# Runs the same workloads on (1) a native directory, (2) a bindfs mount with
# default options (Debian's bindfs, libfuse2) and (3) a wkfs mount, all in
# one work directory on one filesystem.  The machines are shared and noisy,
# so the three are interleaved: for each workload, for each repetition,
# native, bindfs, wkfs in turn; the table shows medians and ratios, which
# survive noise better than absolute numbers.  What it is not: a stress or
# correctness test, or a network benchmark (everything is local).
#
#   tests/bench/fs.sh                      full run, 3 repetitions (10-15 min)
#   BENCH_QUICK=1 tests/bench/fs.sh        smoke test, tiny sizes, 1 rep
#   BENCH_ONLY=seqwrite,meta tests/bench/fs.sh
#
# Environment:
#   BENCH_REPS     repetitions (default 3; 1 with BENCH_QUICK=1)
#   BENCH_QUICK=1  64 MiB files, 1 s random I/O, 1,000 files, 1,000-entry tree
#   BENCH_ONLY     comma list of: seqwrite seqread randwrite randread meta
#                  untar (untar and rm -rf) git
#   BENCH_DIR      where the work directory is made (default $TMPDIR or /tmp
#                  unless that is tmpfs, then tests/bench/out)
#   BENCH_TIMEOUT  seconds allowed to one measured command (default 900)
#   BENCH_WKFS_INPLACE=0  mount wkfs as DIR at a separate MNT (caches for
#                  1 s, since DIR stays writable beside it) instead of over
#                  its own directory (`wkfs mount DIR`, how users mount it,
#                  the default; wkfs then caches entries and attributes for
#                  a day)
#   B              build directory (build, build-san); WKFS_BIN overrides
#   WKFS_BIN       the wkfs binary (default $B/wkfs in the repository)
#
# The table goes to stdout and, with raw values, to
# tests/bench/out/fs-<timestamp>.txt, and as a bar chart of the ratios to
# native (gnuplot) to fs-<timestamp>.svg beside it, its numbers in .tsv;
# progress goes to stderr.  A trap
# unmounts what the script mounted, stops only the processes it started (by
# pid) and removes the work directory.  Exits 1 when a measurement failed
# or timed out (a skipped column is not a failure).  Needs root for
# cold-cache reads (drop_caches); otherwise the seq read row says "warm".
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

B=${B:-build}
WKFS_BIN=${WKFS_BIN:-$root/$B/wkfs}
case $WKFS_BIN in /*) ;; *) WKFS_BIN=$PWD/$WKFS_BIN ;; esac

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	REPS=${BENCH_REPS:-1}
	SEQ_MB=64 RAND_MB=64 RAND_SECS=1 NFILES=1000 TREE_MAX=1000
else
	REPS=${BENCH_REPS:-3}
	SEQ_MB=1024 RAND_MB=256 RAND_SECS=5 NFILES=10000 TREE_MAX=0
fi
ALL_WL="seqwrite seqread randwrite randread meta untar git"
ONLY=${BENCH_ONLY:-}

die()
{
	echo "fs.sh: $*" >&2
	exit 1
}

say()
{
	printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive integer"
WLS=
for w in ${ONLY//,/ }; do
	[[ " $ALL_WL " == *" $w "* ]] || die "unknown workload '$w' (known: $ALL_WL)"
done
for w in $ALL_WL; do
	[ -z "$ONLY" ] || [[ ",$ONLY," == *",$w,"* ]] && WLS="$WLS $w"
done
for t in fio jq tar git cc findmnt timeout; do
	command -v "$t" >/dev/null ||
		die "$t is missing (tools/install-deps --bench installs what is needed)"
done

# ---------------------------------------------------------------- work dir

base=$(bench_workdir "$here/out") || exit 1

cleanup()
{
	# wkfs first through its own command, then the generic fallbacks.
	if [ -n "${WKFS_MNT:-}" ] && bench_in_mountinfo "$WKFS_MNT"; then
		timeout 30 "$WKFS_BIN" umount "$WKFS_MNT" >/dev/null 2>&1
	fi
	bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

W=$(mktemp -d "$base/wkfs-bench.XXXXXX") || die "mktemp in $base failed"
# shellcheck disable=SC2034 # read by bench_cleanup in lib.sh
BENCH_WORKDIR=$W
mkdir -p "$W/tmp" "$W/log" "$W/home"
WORK_FS=$(bench_fs_of "$W")
case $WORK_FS in
*" tmpfs" | *" ramfs") FS_WARN=" (memory-backed: numbers are not disk numbers)" ;;
*) FS_WARN= ;;
esac

# Git reads no user or system configuration.
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$W/home/.gitconfig
git config --global user.name bench
git config --global user.email bench@localhost
git config --global init.defaultBranch main
git config --global gc.auto 0
git config --global advice.detachedHead false

COLD=warm
bench_drop_caches && COLD=cold

# ---------------------------------------------------------------- results
#
# Rows are registered by the workloads in run order.  RAW[row,target] holds
# one value per repetition; a value is a number or a word (fail, timeout).
# UNIT[row] is s (lower is better) or MB/s or IOPS (higher is better).

TARGETS=(native bindfs wkfs)
declare -A DIR NOTE OK RAW WALL UNIT LABEL WL_ROWS
ROWS=()

add_row()
{
	local wl=$1 id=$2 unit=$3 label=$4
	ROWS+=("$id")
	UNIT[$id]=$unit
	LABEL[$id]=$label
	WL_ROWS[$wl]="${WL_ROWS[$wl]:-} $id"
}

record()
{
	local id=$1 t=$2 v=$3 shown=$3
	RAW[$id,$t]="${RAW[$id,$t]:-} $v"
	bench_is_number "$v" && shown=$(fmt_val "${UNIT[$id]}" "$v")
	say "  $id $t: $shown"
}

# fail_rows WL T WHY: one failed value in every row of WL for target T.
fail_rows()
{
	local id
	for id in ${WL_ROWS[$1]}; do
		record "$id" "$2" "$3"
	done
}

fmt_val()
{
	awk -v u="$1" -v v="$2" 'BEGIN {
		if (u == "s") {
			if (v < 1) printf "%.3f s", v
			else if (v < 100) printf "%.2f s", v
			else printf "%.1f s", v
		} else if (u == "IOPS") {
			if (v >= 1000) printf "%.1fk IOPS", v / 1000
			else printf "%.0f IOPS", v
		} else {
			if (v < 10) printf "%.1f %s", v, u
			else printf "%.0f %s", v, u
		}
	}'
}

# fmt_ratio UNIT A B: how many times slower A is than B ("x2.31").
fmt_ratio()
{
	awk -v u="$1" -v a="$2" -v b="$3" 'BEGIN {
		r = (u == "s") ? (b > 0 ? a / b : 0) : (a > 0 ? b / a : 0)
		if (r == 0) { printf "-"; exit }
		printf (r < 10 ? "x%.2f" : "x%.1f"), r
	}'
}

# log_tail FILE: the last line of a log, for notes and failures.
log_tail()
{
	tail -n 3 "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-200
}

# ---------------------------------------------------------------- targets

WKFS_SRC=$W/wkfs.src
WKFS_MNT=$W/wkfs.mnt
WKFS_INPLACE=${BENCH_WKFS_INPLACE:-1}
if [ "$WKFS_INPLACE" = 1 ]; then
	WKFS_SRC=$W/wkfs
	WKFS_MNT=$WKFS_SRC
	WKFS_MODE="mounted in place (wkfs mount DIR)"
else
	WKFS_MODE="mounted at a separate mount point (wkfs mount DIR MNT)"
fi
BINDFS_SRC=$W/bindfs.src
BINDFS_MNT=$W/bindfs.mnt
BINDFS_PID=
WKFS_INITED=0

wkfs_cmd()
{
	timeout -k 5 60 "$WKFS_BIN" "$@" >>"$W/log/wkfs.log" 2>&1
}

# probe DIR: a create, write, read, rename, stat and unlink answer correctly.
probe()
{
	local d=$1
	echo probe >"$d/.bench-probe" &&
		[ "$(cat "$d/.bench-probe")" = probe ] &&
		mv "$d/.bench-probe" "$d/.bench-probe2" &&
		[ -f "$d/.bench-probe2" ] &&
		rm "$d/.bench-probe2" &&
		[ ! -e "$d/.bench-probe2" ]
}

mount_bindfs()
{
	if ! command -v bindfs >/dev/null; then
		NOTE[bindfs]="not installed"
		return 1
	fi
	mkdir -p "$BINDFS_SRC" "$BINDFS_MNT"
	bench_track_mount "$BINDFS_MNT"
	# -f keeps bindfs in the foreground so that the script owns its pid;
	# the options are otherwise bindfs's defaults.
	bindfs -f "$BINDFS_SRC" "$BINDFS_MNT" >>"$W/log/bindfs.log" 2>&1 &
	BINDFS_PID=$!
	bench_track_pid "$BINDFS_PID"
	if ! bench_wait_mounted "$BINDFS_MNT" 10 "$BINDFS_PID"; then
		NOTE[bindfs]="mount failed: $(log_tail "$W/log/bindfs.log")"
		return 1
	fi
}

mount_wkfs()
{
	if [ ! -x "$WKFS_BIN" ]; then
		NOTE[wkfs]="not built ($WKFS_BIN missing)"
		return 1
	fi
	mkdir -p "$WKFS_SRC" "$WKFS_MNT"
	if [ $WKFS_INITED = 0 ]; then
		if ! wkfs_cmd init "$WKFS_SRC"; then
			NOTE[wkfs]="init failed: $(log_tail "$W/log/wkfs.log")"
			return 1
		fi
		WKFS_INITED=1
	fi
	bench_track_mount "$WKFS_MNT"
	local args=("$WKFS_SRC" "$WKFS_MNT")
	[ "$WKFS_INPLACE" = 1 ] && args=("$WKFS_SRC")
	if ! wkfs_cmd mount "${args[@]}"; then
		NOTE[wkfs]="mount failed: $(log_tail "$W/log/wkfs.log")"
		return 1
	fi
	if ! bench_wait_mounted "$WKFS_MNT" 10; then
		NOTE[wkfs]="'wkfs mount' returned but $WKFS_MNT is not mounted"
		return 1
	fi
}

unmount_target()
{
	case $1 in
	bindfs)
		bench_unmount "$BINDFS_MNT"
		[ -n "$BINDFS_PID" ] && bench_stop_pid "$BINDFS_PID"
		;;
	wkfs)
		bench_in_mountinfo "$WKFS_MNT" &&
			timeout 30 "$WKFS_BIN" umount "$WKFS_MNT" >/dev/null 2>&1
		bench_unmount "$WKFS_MNT"
		;;
	esac
}

# ready T WL: T can be measured now; a FUSE target found dead is mounted
# again once, and a note says so.
ready()
{
	local t=$1
	[ "${OK[$t]}" = 1 ] || return 1
	[ "$t" = native ] && return 0
	bench_alive "${DIR[$t]}" && return 0
	NOTE[$t]="${NOTE[$t]:+${NOTE[$t]}; }mount died during $2, remounted"
	say "$t: mount died during $2; mounting again"
	unmount_target "$t"
	if ! "mount_$t"; then
		OK[$t]=0
		NOTE[$t]="${NOTE[$t]}; remount failed, rest skipped"
		return 1
	fi
}

setup_targets()
{
	DIR[native]=$W/native
	mkdir -p "${DIR[native]}"
	OK[native]=1
	NOTE[native]=
	DIR[bindfs]=$BINDFS_MNT
	DIR[wkfs]=$WKFS_MNT
	for t in bindfs wkfs; do
		OK[$t]=0
		NOTE[$t]=
		"mount_$t" || continue
		if ! probe "${DIR[$t]}"; then
			NOTE[$t]="mounted, but a create/read/rename/unlink probe failed"
			continue
		fi
		OK[$t]=1
	done
	for t in "${TARGETS[@]}"; do
		say "$t: ${DIR[$t]}${NOTE[$t]:+ (${NOTE[$t]})}"
	done
}

# ---------------------------------------------------------------- helpers

# run_fio T NAME OPTIONS...: one fio job on the file NAME.dat in T's
# directory; the JSON result is left in $W/tmp/fio.json, the wall time in
# FIO_WALL.  psync and no fallocate, so that every target gets the same
# system calls (bindfs and wkfs may not implement fallocate).
run_fio()
{
	local t=$1 name=$2 t0
	shift 2
	rm -f "$W/tmp/fio.json"
	t0=$(bench_now)
	bench_run fio --name="$name" --directory="${DIR[$t]}" \
		--filename="$name.dat" --ioengine=psync --fallocate=none \
		--output-format=json --output="$W/tmp/fio.json" "$@" \
		>>"$W/log/fio.log" 2>&1
	FIO_RC=$?
	FIO_WALL=$(bench_since "$t0")
	return $FIO_RC
}

# fio_value JQ: a number from the last fio result, or fail/timeout.
fio_value()
{
	local v
	if [ "$FIO_RC" = 124 ]; then
		echo timeout
		return
	fi
	v=$(jq -r "$1" "$W/tmp/fio.json" 2>/dev/null)
	if [ "$FIO_RC" != 0 ] || ! bench_is_number "${v%.*}"; then
		echo fail
		return
	fi
	awk -v v="$v" 'BEGIN { printf "%.3f\n", v }'
}

# make_file T NAME MB: an NAME.dat of MB MiB written through T (untimed).
make_file()
{
	run_fio "$1" "$2" --rw=write --bs=1M --size="$3M" --end_fsync=1
}

# timed T ROW CMD...: runs CMD (in the work dir), records its wall time.
timed()
{
	local t=$1 id=$2 t0 rc el
	shift 2
	t0=$(bench_now)
	bench_run "$@" >>"$W/log/cmd.log" 2>&1
	rc=$?
	el=$(bench_since "$t0")
	case $rc in
	0) record "$id" "$t" "$el" ;;
	124) record "$id" "$t" timeout ;;
	*)
		record "$id" "$t" fail
		say "  $* failed ($rc): $(log_tail "$W/log/cmd.log")"
		;;
	esac
	return $rc
}

# ---------------------------------------------------------------- workloads
#
# Each workload has rows_WL (registers its rows), optionally setup_WL T and
# teardown_WL T (untimed, once per target), and run_WL T (one repetition).

SEQ_LABEL="$SEQ_MB MiB"
[ "$SEQ_MB" = 1024 ] && SEQ_LABEL="1 GiB"

rows_seqwrite()
{
	add_row seqwrite seqwrite MB/s "seq write $SEQ_LABEL (bs=1M, end_fsync)"
}

run_seqwrite()
{
	local t=$1
	rm -f "${DIR[$t]}/seqwrite.dat"
	sync
	run_fio "$t" seqwrite --rw=write --bs=1M --size="${SEQ_MB}M" \
		--end_fsync=1
	record seqwrite "$t" "$(fio_value '.jobs[0].write.bw_bytes / 1e6')"
	WALL[seqwrite,$t]="${WALL[seqwrite,$t]:-} $FIO_WALL"
	rm -f "${DIR[$t]}/seqwrite.dat"
}

rows_seqread()
{
	add_row seqread seqread MB/s "seq read $SEQ_LABEL ($COLD cache)"
}

setup_seqread()
{
	make_file "$1" seqread "$SEQ_MB"
}

run_seqread()
{
	local t=$1 inval=1
	if [ $COLD = cold ]; then
		bench_drop_caches
	else
		# fio's default invalidate would make native cold and the FUSE
		# targets half warm (the lower filesystem keeps its pages).
		sync
		inval=0
	fi
	run_fio "$t" seqread --rw=read --bs=1M --size="${SEQ_MB}M" \
		--invalidate=$inval
	record seqread "$t" "$(fio_value '.jobs[0].read.bw_bytes / 1e6')"
	WALL[seqread,$t]="${WALL[seqread,$t]:-} $FIO_WALL"
}

teardown_seqread()
{
	rm -f "${DIR[$1]}/seqread.dat"
}

rows_randwrite()
{
	add_row randwrite randwrite IOPS \
		"rand write 4k, $RAND_MB MiB file, ${RAND_SECS} s, no fsync"
}

setup_randwrite()
{
	make_file "$1" randwrite "$RAND_MB"
}

run_randwrite()
{
	local t=$1
	sync
	run_fio "$t" randwrite --rw=randwrite --bs=4k --size="${RAND_MB}M" \
		--time_based --runtime="$RAND_SECS" --invalidate=0
	record randwrite "$t" "$(fio_value '.jobs[0].write.iops')"
}

teardown_randwrite()
{
	rm -f "${DIR[$1]}/randwrite.dat"
}

rows_randread()
{
	add_row randread randread IOPS \
		"rand read 4k, $RAND_MB MiB file, ${RAND_SECS} s (warm)"
}

setup_randread()
{
	make_file "$1" randread "$RAND_MB" &&
		cat "${DIR[$1]}/randread.dat" >/dev/null
}

run_randread()
{
	local t=$1
	sync
	run_fio "$t" randread --rw=randread --bs=4k --size="${RAND_MB}M" \
		--time_based --runtime="$RAND_SECS" --invalidate=0
	record randread "$t" "$(fio_value '.jobs[0].read.iops')"
}

teardown_randread()
{
	rm -f "${DIR[$1]}/randread.dat"
}

# The metadata loop is a small C program so that no interpreter start-up or
# per-file process sits in the measurement; it is built once per run.
META_BIN=$W/tmp/bench-meta

build_meta()
{
	cat >"$W/tmp/bench-meta.c" <<'EOF'
/*
 * bench-meta DIR N: creates N files of 1 KiB in DIR, stats each, renames
 * each, unlinks each, and prints the seconds each phase took.  Written and
 * built by tests/bench/fs.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, const char *name)
{
	fprintf(stderr, "bench-meta: %s %s: %s\n", what, name, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	char a[64], b[64], data[1024];
	double t[5];
	struct stat st;
	long i, n;
	int dfd, fd;

	if (argc != 3 || (n = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: bench-meta DIR N\n");
		return 2;
	}
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		fail("open", argv[1]);
	memset(data, 'x', sizeof(data));

	t[0] = now();
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "f%07ld", i);
		fd = openat(dfd, a, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			fail("create", a);
		if (write(fd, data, sizeof(data)) != (ssize_t)sizeof(data))
			fail("write", a);
		if (close(fd) < 0)
			fail("close", a);
	}
	t[1] = now();
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "f%07ld", i);
		if (fstatat(dfd, a, &st, 0) < 0)
			fail("stat", a);
		if (st.st_size != (off_t)sizeof(data)) {
			errno = EIO;
			fail("size of", a);
		}
	}
	t[2] = now();
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "f%07ld", i);
		snprintf(b, sizeof(b), "g%07ld", i);
		if (renameat(dfd, a, dfd, b) < 0)
			fail("rename", a);
	}
	t[3] = now();
	for (i = 0; i < n; i++) {
		snprintf(b, sizeof(b), "g%07ld", i);
		if (unlinkat(dfd, b, 0) < 0)
			fail("unlink", b);
	}
	t[4] = now();
	printf("create %.6f\nstat %.6f\nrename %.6f\nunlink %.6f\n",
	       t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3]);
	return 0;
}
EOF
	cc -O2 -Wall -o "$META_BIN" "$W/tmp/bench-meta.c" >>"$W/log/cc.log" 2>&1
}

rows_meta()
{
	add_row meta meta s "$NFILES files create+stat+rename+unlink"
	add_row meta meta.create s "  create (1 KiB each)"
	add_row meta meta.stat s "  stat"
	add_row meta meta.rename s "  rename"
	add_row meta meta.unlink s "  unlink"
}

setup_meta()
{
	[ -x "$META_BIN" ] || build_meta
}

run_meta()
{
	local t=$1 d=${DIR[$1]}/meta rc phase v total=0
	rm -rf "$d"
	mkdir "$d"
	sync
	bench_run "$META_BIN" "$d" "$NFILES" >"$W/tmp/meta.out" 2>>"$W/log/cmd.log"
	rc=$?
	if [ $rc != 0 ]; then
		if [ $rc = 124 ]; then
			fail_rows meta "$t" timeout
		else
			fail_rows meta "$t" fail
		fi
		say "  bench-meta failed ($rc): $(log_tail "$W/log/cmd.log")"
		rm -rf "$d"
		return
	fi
	for phase in create stat rename unlink; do
		v=$(awk -v p="$phase" '$1 == p { print $2 }' "$W/tmp/meta.out")
		record "meta.$phase" "$t" "$v"
		total=$(bench_calc "$total + $v")
	done
	record meta "$t" "$total"
	rmdir "$d"
}

# The tree: /usr/include (or its first TREE_MAX entries), tarred once into
# the work directory, uncompressed so that gzip does not dominate.
TREE_TAR=$W/tmp/tree.tar
TREE_LABEL=

make_tree()
{
	local files mb
	[ -s "$TREE_TAR" ] && return 0
	[ -d /usr/include ] || die "/usr/include is missing (the tree to untar)"
	if [ "$TREE_MAX" -gt 0 ]; then
		(cd /usr && find include \( -type f -o -type l \) | sort |
			head -n "$TREE_MAX") >"$W/tmp/tree.list"
		tar -cf "$TREE_TAR" -C /usr -T "$W/tmp/tree.list" ||
			die "tar of /usr/include failed"
	else
		tar -cf "$TREE_TAR" -C /usr include || die "tar of /usr/include failed"
	fi
	files=$(tar -tf "$TREE_TAR" | grep -vc '/$')
	mb=$(du -sm --apparent-size "$TREE_TAR" | awk '{ print $1 }')
	TREE_LABEL="/usr/include, $files files, $mb MB"
}

rows_untar()
{
	make_tree
	add_row untar untar s "untar ($TREE_LABEL)"
	add_row untar rmrf s "rm -rf of it"
}

run_untar()
{
	local t=$1 d=${DIR[$1]}/untar
	rm -rf "$d"
	mkdir "$d"
	sync
	# --no-same-owner: what a user's tar does; root's would chown each file.
	if timed "$t" untar tar -xf "$TREE_TAR" -C "$d" --no-same-owner; then
		sync
		timed "$t" rmrf rm -rf "$d"
	else
		record rmrf "$t" fail
	fi
	rm -rf "$d"
}

rows_git()
{
	make_tree
	add_row git git s "git init+add -A+commit+status"
	add_row git git.add s "  init + add -A"
	add_row git git.commit s "  commit"
	add_row git git.status s "  status"
}

run_git()
{
	local t=$1 d=${DIR[$1]}/git id v total=0 vals
	rm -rf "$d"
	mkdir "$d"
	if ! tar -xf "$TREE_TAR" -C "$d" --no-same-owner 2>>"$W/log/cmd.log"; then
		fail_rows git "$t" fail
		rm -rf "$d"
		return
	fi
	sync
	# shellcheck disable=SC2016 # $1 is expanded by that sh
	timed "$t" git.add sh -c 'git init -q "$1" && git -C "$1" add -A' sh "$d" &&
		timed "$t" git.commit git -C "$d" commit -q -m bench &&
		timed "$t" git.status git -C "$d" status --porcelain
	# A failed step leaves the later ones unmeasured: fill them in.
	for id in git.add git.commit git.status; do
		read -ra vals <<<"${RAW[$id,$t]:-}"
		[ ${#vals[@]} -lt "$CUR_REP" ] && record "$id" "$t" fail
	done
	for id in git.add git.commit git.status; do
		v=${RAW[$id,$t]##* }
		if ! bench_is_number "$v"; then
			total=$v
			break
		fi
		total=$(bench_calc "$total + $v")
	done
	record git "$t" "$total"
	rm -rf "$d"
}

# ---------------------------------------------------------------- driver

run_workload()
{
	local wl=$1 t rep
	say "== $wl"
	"rows_$wl"
	declare -A skip=()
	for t in "${TARGETS[@]}"; do
		ready "$t" "$wl" || continue
		if declare -F "setup_$wl" >/dev/null && ! "setup_$wl" "$t"; then
			say "  $wl setup failed on $t: $(log_tail "$W/log/fio.log")"
			skip[$t]=1
		fi
	done
	for ((rep = 1; rep <= REPS; rep++)); do
		CUR_REP=$rep
		say "-- $wl rep $rep/$REPS"
		for t in "${TARGETS[@]}"; do
			[ "${OK[$t]}" = 1 ] || continue
			if [ -n "${skip[$t]:-}" ] || ! ready "$t" "$wl"; then
				fail_rows "$wl" "$t" fail
				continue
			fi
			"run_$wl" "$t"
		done
	done
	if declare -F "teardown_$wl" >/dev/null; then
		for t in "${TARGETS[@]}"; do
			ready "$t" "$wl" && "teardown_$wl" "$t"
		done
	fi
}

# describe_wkfs: the binary as it is when the run starts (the lead may
# rebuild it while the benchmark runs; the mount keeps the old one).
describe_wkfs()
{
	local wk rev
	rev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')
	if [ -x "$WKFS_BIN" ]; then
		wk=$(timeout 5 "$WKFS_BIN" --version 2>/dev/null | head -n 1)
		echo "${wk:-wkfs} ($WKFS_BIN, built $(date -r "$WKFS_BIN" \
			'+%Y-%m-%d %H:%M'), repo $rev), $WKFS_MODE"
	else
		echo "not built ($WKFS_BIN missing, repo $rev)"
	fi
}

header()
{
	local bl
	bl=$(ldd "$(command -v bindfs 2>/dev/null)" 2>/dev/null |
		awk '/libfuse/ { print $1; exit }')
	echo "# wkfs fs benchmark: native vs bindfs vs wkfs, interleaved"
	echo
	echo "date:    $START_DATE (measured for $((SECONDS - t_start)) s)"
	echo "host:    $(uname -sr) $(uname -m), $(nproc) cores," \
		"$(free -g | awk '/^Mem:/ { print $2 }') GiB RAM"
	echo "workdir: $W on $WORK_FS$FS_WARN"
	echo "bindfs:  $(bindfs --version 2>/dev/null | head -n 1)" \
		"(${bl:-libfuse?}), default options (-f only, to own its pid)"
	echo "fio:     $(fio --version)"
	echo "wkfs:    $WKFS_DESC"
	echo "reps:    $REPS, medians; BENCH_QUICK=$QUICK; seq read cache: $COLD"
	echo "sizes:   seq $SEQ_MB MiB, rand $RAND_MB MiB for $RAND_SECS s," \
		"meta $NFILES files${TREE_LABEL:+, tree $TREE_LABEL}"
}

table()
{
	local id u n b w cn cb cw r
	{
		printf 'workload\tnative\tbindfs (xN)\twkfs (xN)\twkfs/bindfs\n'
		for id in "${ROWS[@]}"; do
			u=${UNIT[$id]}
			# shellcheck disable=SC2086
			n=$(bench_median ${RAW[$id,native]:-})
			# shellcheck disable=SC2086
			b=$(bench_median ${RAW[$id,bindfs]:-})
			# shellcheck disable=SC2086
			w=$(bench_median ${RAW[$id,wkfs]:-})
			cn=$n cb=$b cw=$w r=-
			bench_is_number "$n" && cn=$(fmt_val "$u" "$n")
			if bench_is_number "$b"; then
				cb=$(fmt_val "$u" "$b")
				bench_is_number "$n" &&
					cb="$cb ($(fmt_ratio "$u" "$b" "$n"))"
			fi
			if bench_is_number "$w"; then
				cw=$(fmt_val "$u" "$w")
				bench_is_number "$n" &&
					cw="$cw ($(fmt_ratio "$u" "$w" "$n"))"
				bench_is_number "$b" && r=$(fmt_ratio "$u" "$w" "$b")
			fi
			printf '%s\t%s\t%s\t%s\t%s\n' "${LABEL[$id]}" "$cn" "$cb" \
				"$cw" "$r"
		done
	} | awk -F'\t' '
		{ for (i = 1; i <= NF; i++) { c[NR, i] = $i
			if (length($i) > w[i]) w[i] = length($i) } }
		END {
			for (r = 1; r <= NR; r++) {
				line = "|"
				for (i = 1; i <= 5; i++)
					line = line sprintf(" %-*s |", w[i], c[r, i])
				print line
				if (r == 1) {
					line = "|"
					for (i = 1; i <= 5; i++) {
						d = ""
						for (k = 0; k < w[i] + 2; k++) d = d "-"
						line = line d "|"
					}
					print line
				}
			}
		}'
}

notes()
{
	local t
	echo
	echo "xN: times slower than native (time ratio; for MB/s and IOPS," \
		"native/value)."
	echo "wkfs/bindfs: the same ratio of wkfs to bindfs; above 1, wkfs is slower."
	echo "MB = 10^6 bytes; fio psync, fallocate=none; meta is a C loop" \
		"(openat/fstatat/renameat/unlinkat) built with cc -O2."
	for t in bindfs wkfs; do
		if [ "${OK[$t]}" != 1 ]; then
			echo "$t: ${NOTE[$t]}: column skipped"
		elif [ -n "${NOTE[$t]}" ]; then
			echo "$t: ${NOTE[$t]}"
		fi
	done
	return 0
}

# chart_data: the table's ratios to native, for bench_chart.
chart_data()
{
	local id u n k
	printf 'workload\tbindfs\twkfs\n'
	for id in "${ROWS[@]}"; do
		u=${UNIT[$id]}
		k=cost
		[ "$u" = s ] || k=rate
		# shellcheck disable=SC2086
		n=$(bench_median ${RAW[$id,native]:-})
		# shellcheck disable=SC2086
		printf '%s\t%s\t%s\n' "${LABEL[$id]}" \
			"$(bench_cost "$k" "$(bench_median ${RAW[$id,bindfs]:-})" "$n")" \
			"$(bench_cost "$k" "$(bench_median ${RAW[$id,wkfs]:-})" "$n")"
	done
}

raw()
{
	local id t
	echo
	echo "raw values, in repetition order:"
	for id in "${ROWS[@]}"; do
		printf '  %-12s' "$id"
		for t in "${TARGETS[@]}"; do
			printf ' %s:%s' "$t" "$(echo "${RAW[$id,$t]:--}" | sed 's/^ //' | tr ' ' ,)"
		done
		echo
	done
	for id in seqwrite seqread; do
		[ -n "${UNIT[$id]:-}" ] || continue
		printf '  %-12s' "$id wall s"
		for t in "${TARGETS[@]}"; do
			printf ' %s:%s' "$t" "$(echo "${WALL[$id,$t]:--}" | sed 's/^ //' | tr ' ' ,)"
		done
		echo
	done
}

# ---------------------------------------------------------------- main

START_DATE=$(date '+%Y-%m-%d %H:%M:%S %z')
WKFS_DESC=$(describe_wkfs)
t_start=$SECONDS
say "work dir $W on $WORK_FS; reps $REPS; workloads:$WLS"
setup_targets
for wl in $WLS; do
	run_workload "$wl"
done
say "done in $((SECONDS - t_start)) s"

out=$here/out/fs-$(date +%Y%m%d-%H%M%S).txt
{
	header
	echo
	table
	notes
} | tee "$out"
raw >>"$out"
echo "written to $out" >&2
chart_data >"${out%.txt}.tsv"
bench_chart "${out%.txt}.tsv" "${out%.txt}.svg" \
	"wkfs and bindfs against native, $(date +%F)$([ "$QUICK" = 1 ] && echo ", quick run")" \
	native && [ -s "${out%.txt}.svg" ] && echo "chart: ${out%.txt}.svg" >&2

# A failed or timed-out measurement is a finding: say so in the status.
for key in "${!RAW[@]}"; do
	if [[ ${RAW[$key]} == *fail* || ${RAW[$key]} == *timeout* ]]; then
		echo "fs.sh: some measurements failed (fail or timeout above)" >&2
		exit 1
	fi
done
