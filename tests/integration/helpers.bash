# helpers.bash - shared by every tests/integration/*.bats file.
#
# Each test gets its own directories under $BATS_TEST_TMPDIR:
#   $D  the synced directory (wkfs init'ed), $M  an explicit mount point.
# wk_setup_inplace / wk_setup_mnt create, init and mount them; wk_teardown
# unmounts everything the test mounted and ends only processes the test
# started (by pid).  Ops are read with `wkfs log DIR --json` and questioned
# through wkops.py (exact 64-bit integers; jq 1.6 would round hlc/mtime_ns).
#
# FUSE sends RELEASE asynchronously after close() returns, so a put may land
# a moment after the command that wrote the file: assertions on ops poll with
# a deadline (wait_until), never sleep.

load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load
bats_require_minimum_version 1.5.0

: "${WKFS_BIN:=$BATS_TEST_DIRNAME/../../build/wkfs}"
export WKFS_BIN
export TZ=UTC LC_ALL=C
WKOPS="$BATS_TEST_DIRNAME/wkops.py"
# the system python: a pyenv shim costs a second per start
PY=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
WK_TIMEOUT=${WK_TIMEOUT:-5}	# seconds an expected op may take to appear

WK_MOUNTS=()	# mount points to unmount in teardown, newest last
WK_PIDS=()	# processes this test started and must end
WK_DIRS=()	# synced dirs whose wkfs daemons teardown waits for

# wait_until SECONDS CMD...: runs CMD every 0.05 s until it succeeds; fails
# (with a message) once SECONDS have passed.
wait_until() {
	local secs=$1
	shift
	local deadline=$(($(date +%s%N) + secs * 1000000000))
	until "$@"; do
		if (($(date +%s%N) >= deadline)); then
			echo "wait_until: still failing after ${secs}s: $*" >&2
			return 1
		fi
		sleep 0.05
	done
}

# is_mounted PATH: a mount (any type) sits on PATH.
is_mounted() {
	awk -v p="$1" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# not_mounted PATH: no mount sits on PATH.  (A bare `! cmd` never fails a
# bats test: errexit ignores negated commands.)
not_mounted() { ! is_mounted "$1"; }

# is_fuse_mounted PATH: a fuse mount sits on PATH.
is_fuse_mounted() {
	awk -v p="$1" '{ for (i = 7; i <= NF; i++) if ($i == "-") break }
		$5 == p && $(i + 1) ~ /^fuse/ { f = 1 } END { exit !f }' \
		/proc/self/mountinfo
}

not_fuse_mounted() { ! is_fuse_mounted "$1"; }

# mount_count PATH: how many mounts sit on PATH.
mount_count() {
	awk -v p="$1" '$5 == p { n++ } END { print n + 0 }' /proc/self/mountinfo
}

# wk_pids_for DIR: pids of wkfs processes (argv[0] ends in wkfs) that have
# DIR as one of their arguments.
wk_pids_for() {
	local f a0
	for f in $(grep -lzxF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null); do
		a0=$(head -z -n 1 "$f" 2>/dev/null | tr -d '\0') || continue
		[[ $a0 == *wkfs || $a0 == *wkfs-syncd ]] || continue
		f=${f#/proc/}
		echo "${f%/cmdline}"
	done
}

no_wkfs_for() { [ -z "$(wk_pids_for "$1")" ]; }

# stop_pids PID...: ends each process this test started (by its pid) and
# reaps it; gone already is fine.
stop_pids() {
	local p
	for p in "$@"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

wk_unmount_all() {
	local i m
	for ((i = ${#WK_MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${WK_MOUNTS[i]}
		while is_mounted "$m"; do
			fusermount3 -u "$m" 2>/dev/null ||
				fusermount3 -uz "$m" 2>/dev/null ||
				umount "$m" 2>/dev/null || umount -l "$m" ||
				break
		done
	done
}

wk_teardown() {
	local p d
	cd "$BATS_TEST_TMPDIR" 2>/dev/null || cd /
	wk_unmount_all
	for p in "${WK_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# the daemonized mount processes were started by this test too: give
	# them time to exit after their unmount, then end any that remain.
	for d in "${WK_DIRS[@]}"; do
		if ! wait_until 10 no_wkfs_for "$d" 2>/dev/null; then
			for p in $(wk_pids_for "$d"); do
				echo "teardown: wkfs pid $p for $d still alive; killing" >&2
				kill -9 "$p" 2>/dev/null
			done
		fi
	done
	wk_unmount_all
}

# wk_dirs: sets D (synced dir) and M (spare mount point), both real paths.
wk_dirs() {
	umask 022
	mkdir -p "$BATS_TEST_TMPDIR/d" "$BATS_TEST_TMPDIR/m"
	D=$(realpath "$BATS_TEST_TMPDIR/d")
	M=$(realpath "$BATS_TEST_TMPDIR/m")
	T=$(realpath "$BATS_TEST_TMPDIR")
	WK_DIRS+=("$D")
}

# wk_init DIR: `wkfs init DIR`, which must succeed.
wk_init() {
	local out
	if ! out=$("$WKFS_BIN" init "$@" 2>&1 </dev/null 3>&-); then
		echo "wkfs init $* failed: $out" >&2
		return 1
	fi
}

# wk_mount [OPTS] DIR [MNT] [OPTS]: `wkfs mount`, which must succeed and leave
# a fuse mount ready at once (the command returns only once the mount works).
wk_mount() {
	local a pos=() skip=0 mnt rc=0
	for a in "$@"; do
		if [ "$skip" = 1 ]; then skip=0; continue; fi
		case $a in
		-o) skip=1 ;;
		-*) ;;
		*) pos+=("$a") ;;
		esac
	done
	mnt=${pos[1]:-${pos[0]}}
	WK_MOUNTS+=("$mnt")
	timeout 30 "$WKFS_BIN" mount "$@" \
		>"$BATS_TEST_TMPDIR/mount.out" 2>"$BATS_TEST_TMPDIR/mount.err" \
		</dev/null 3>&- || rc=$?
	if [ "$rc" != 0 ]; then
		echo "wkfs mount $* exited $rc: $(cat "$BATS_TEST_TMPDIR/mount.err")" >&2
		return 1
	fi
	if ! is_fuse_mounted "$mnt"; then
		echo "wkfs mount $* exited 0 but no fuse mount is on $mnt yet" >&2
		return 1
	fi
}

# wk_mount_fg DIR [ARGS...]: `wkfs mount -f DIR &`; sets WK_FG_PID and waits
# for the mount with a deadline.
wk_mount_fg() {
	local dir=$1
	shift
	WK_MOUNTS+=("$dir")
	"$WKFS_BIN" mount -f "$dir" "$@" >"$BATS_TEST_TMPDIR/mount-fg.log" 2>&1 \
		</dev/null 3>&- &
	WK_FG_PID=$!
	WK_PIDS+=("$WK_FG_PID")
	wait_until 10 is_fuse_mounted "$dir" || {
		cat "$BATS_TEST_TMPDIR/mount-fg.log" >&2
		return 1
	}
}

# wk_umount DIR: `wkfs umount DIR`, which must return with DIR unmounted.
wk_umount() {
	local rc=0
	timeout 30 "$WKFS_BIN" umount "$1" </dev/null 3>&- || rc=$?
	[ "$rc" = 0 ] || { echo "wkfs umount $1 exited $rc" >&2; return 1; }
	if is_fuse_mounted "$1"; then
		echo "wkfs umount $1 returned but $1 is still mounted" >&2
		return 1
	fi
}

# wk_setup_inplace: fresh D, init, mounted over itself.
wk_setup_inplace() {
	wk_dirs
	wk_init "$D"
	wk_mount "$D"
}

# wk_setup_mnt: fresh D, init, mounted at M (D stays visible: the backing).
wk_setup_mnt() {
	wk_dirs
	wk_init "$D"
	wk_mount "$D" "$M"
}

# ---- the oplog ---------------------------------------------------------

# wkfs_ops [DIR]: the oplog of DIR (default $D) as JSON Lines.
wkfs_ops() {
	"$WKFS_BIN" log "${1:-$D}" --json </dev/null 3>&-
}

_wkops() { wkfs_ops | "$PY" "$WKOPS" "$@"; }

# op_count KIND PATH [SINCE]: number of ops of KIND ("*": any) at PATH
# ("*": any) with seq > SINCE.
op_count() { _wkops count "$@"; }

# op_field KIND PATH FIELD [SINCE]: FIELD of the newest such op ("" if none).
op_field() { _wkops field "$1" "$2" "$3" "${4:-0}"; }

# ops_mark: the newest seq now (pass it as SINCE later).
ops_mark() { _wkops mark; }

# ops_summary [SINCE]: "kind path" / "move old new" lines.
ops_summary() { _wkops summary "${1:-0}"; }

_count_ge() { [ "$(op_count "$2" "$3" "${4:-0}")" -ge "$1" ]; }
_total_ge() { [ "$(op_count '*' '*' "$2")" -ge "$1" ]; }

_dump_log() {
	echo "--- wkfs log $D --json:" >&2
	wkfs_ops >&2 || true
}

# wait_op KIND PATH [N] [SINCE]: waits until at least N (1) such ops exist.
wait_op() {
	wait_until "$WK_TIMEOUT" _count_ge "${3:-1}" "$1" "$2" "${4:-0}" || {
		echo "no $1 op for '$2' (wanted ${3:-1}, since seq ${4:-0})" >&2
		_dump_log
		return 1
	}
}

# assert_op KIND PATH [SINCE]: an op of KIND at PATH exists (waits for it).
assert_op() { wait_op "$1" "$2" 1 "${3:-0}"; }

# assert_no_op KIND PATH [SINCE]: no such op (KIND/PATH may be "*").
assert_no_op() {
	local n
	n=$(op_count "$1" "$2" "${3:-0}")
	if [ "$n" != 0 ]; then
		echo "expected no $1 op for '$2' since seq ${3:-0}, found $n" >&2
		_dump_log
		return 1
	fi
}

# assert_op_count N KIND PATH [SINCE]: exactly N such ops (waits for N, then
# checks there are no more).
assert_op_count() {
	local want=$1
	shift
	[ "$want" = 0 ] || wait_op "$1" "$2" "$want" "${3:-0}" || return 1
	local n
	n=$(op_count "$1" "$2" "${3:-0}")
	if [ "$n" != "$want" ]; then
		echo "expected $want $1 op(s) for '$2' since seq ${3:-0}, found $n" >&2
		_dump_log
		return 1
	fi
}

# assert_ops_since SINCE LINE...: the ops after SINCE are exactly these
# summary lines ("create f", "put f", "move a b"), in this order.
assert_ops_since() {
	local since=$1
	shift
	local want got
	want=$(printf '%s\n' "$@")
	wait_until "$WK_TIMEOUT" _total_ge $# "$since" 2>/dev/null || true
	got=$(ops_summary "$since")
	if [ "$got" != "$want" ]; then
		printf 'ops since seq %s:\n-- expected:\n%s\n-- got:\n%s\n' \
			"$since" "$want" "$got" >&2
		_dump_log
		return 1
	fi
}

# ops_state [PREFIX]: the tree the oplog describes (see wkops.py state).
ops_state() { _wkops state "${1:-}"; }

# disk_state DIR [PREFIX]: the real tree in the same format.
disk_state() { "$PY" "$WKOPS" disk "$1" "${2:-}"; }

_state_matches() { [ "$(ops_state "$2")" = "$(disk_state "$1" "$2")" ]; }

# assert_state_matches DIR [PREFIX]: replaying the oplog by node id gives
# exactly the files, dirs, symlinks and file sizes found under DIR.
assert_state_matches() {
	if ! wait_until "$WK_TIMEOUT" _state_matches "$1" "${2:-}" 2>/dev/null; then
		echo "oplog state != tree under $1 (prefix '${2:-}'):" >&2
		diff <(ops_state "${2:-}") <(disk_state "$1" "${2:-}") \
			--label ops --label disk -u >&2
		return 1
	fi
}

_view_matches() {
	"$WKFS_BIN" debug view "$1" </dev/null 3>&- | "$PY" "$WKOPS" viewdiff "$2"
}

# assert_view_matches DIR TREE: what the oplog of folder DIR shows (the
# merge engine's view: types, modes, mtimes, symlink targets) is what TREE
# (DIR's mount, or DIR) holds.
assert_view_matches() {
	if ! wait_until "$WK_TIMEOUT" _view_matches "$1" "$2" >/dev/null; then
		echo "the oplog's view of $1 != the tree under $2:" >&2
		_view_matches "$1" "$2" >&2
		return 1
	fi
}

# assert_latest_put_size PATH SIZE: the node the ops place at PATH had its
# latest content recorded with SIZE bytes (wherever that put happened: a
# file written as a temp and renamed over PATH was put under the temp name).
assert_latest_put_size() {
	local got
	got=$(_wkops size "$1")
	if [ "$got" != "$2" ]; then
		echo "latest put of the node at '$1': size '$got', file size $2" >&2
		_dump_log
		return 1
	fi
}

# assert_one_line_error: for `run --separate-stderr`: exit 1, exactly one
# non-empty line on stderr.
assert_one_line_error() {
	if [ "$status" != 1 ]; then
		echo "exit status $status, expected 1; stderr: $stderr" >&2
		return 1
	fi
	if [ "${#stderr_lines[@]}" != 1 ] || [ -z "${stderr_lines[0]}" ]; then
		printf 'expected one line on stderr, got %s:\n%s\n' \
			"${#stderr_lines[@]}" "$stderr" >&2
		return 1
	fi
}

# pyc CODE ARGS...: runs python3 -c with ARGS as sys.argv[1:].
pyc() { "$PY" -c "$@"; }

# renameat2 FROM TO FLAGS: prints "ok" or the errno name.
renameat2() {
	"$PY" - "$@" <<'EOF'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_uint]
AT_FDCWD = -100
r = libc.renameat2(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD,
                   sys.argv[2].encode(), int(sys.argv[3]))
print("ok" if r == 0 else errno.errorcode[ctypes.get_errno()])
EOF
}

# assert_ops_set_since SINCE LINE...: the ops after SINCE are exactly these
# summary lines, in any order (for ops whose order the kernel may vary).
assert_ops_set_since() {
	local since=$1
	shift
	local want got
	want=$(printf '%s\n' "$@" | sort)
	wait_until "$WK_TIMEOUT" _total_ge $# "$since" 2>/dev/null || true
	got=$(ops_summary "$since" | sort)
	if [ "$got" != "$want" ]; then
		printf 'ops since seq %s (sorted):\n-- expected:\n%s\n-- got:\n%s\n' \
			"$since" "$want" "$got" >&2
		diff <(echo "$want") <(echo "$got") >&2
		_dump_log
		return 1
	fi
}

# config_add_ignore DIR PATTERN...: adds `ignore = PATTERN` lines to the
# [sync] section of DIR/.wkfs/config.ini.
config_add_ignore() {
	local cfg=$1/.wkfs/config.ini p
	shift
	grep -qx '\[sync\]' "$cfg" || printf '\n[sync]\n' >>"$cfg"
	for p in "$@"; do
		sed -i "/^\[sync\]\$/a ignore = $p" "$cfg"
	done
}
