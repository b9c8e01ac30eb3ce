#!/usr/bin/env bats
# 65-mount-helper: the forms mount(8) uses.  fstab type fuse.wkfs makes
# mount.fuse3 run `wkfs SRC MNT -o OPTS`; type wkfs runs `mount.wkfs SRC MNT
# -o OPTS` (a link to wkfs).  fstab's own options are accepted and dropped.
# The fstab tests at the end go through mount(8) itself.

load helpers

setup() {
	wk_dirs
	echo hello >"$D/a"
	wk_init "$D"
	BIN="$T/bin"
	mkdir -p "$BIN"
	ln -s "$WKFS_BIN" "$BIN/wkfs"
	ln -s "$WKFS_BIN" "$BIN/mount.wkfs"
}

teardown() {
	ns_teardown
	wk_teardown
}

@test "wkfs SRC SRC -o OPTS mounts in place, fstab options dropped" {
	WK_MOUNTS+=("$D")
	run --separate-stderr "$BIN/wkfs" "$D" "$D" -o defaults,_netdev,noatime
	assert_success
	is_fuse_mounted "$D"
	grep -q " $D fuse.wkfs [^ ]*noatime" /proc/self/mounts
	[ ! -e "$D/.wkfs" ]
	echo more >>"$D/a"
	assert_op put a
}

@test "mount.fuse3 runs wkfs for type fuse.wkfs (the fstab path)" {
	WK_MOUNTS+=("$D")
	PATH="$BIN:$PATH" run --separate-stderr /sbin/mount.fuse3 "$D" "$D" \
		-t fuse.wkfs -o rw,nodev,_netdev,x-systemd.automount
	assert_success
	is_fuse_mounted "$D"
	assert_equal "$(cat "$D/a")" hello
}

@test "mount.wkfs SRC MNT keeps the store apart from the mount point" {
	WK_MOUNTS+=("$M")
	run --separate-stderr "$BIN/mount.wkfs" "$D" "$M" -o nosuid
	assert_success
	is_fuse_mounted "$M"
	run ! is_fuse_mounted "$D"
	[ -f "$D/.wkfs/wkfs.db" ]
	echo new >"$M/b"
	assert_equal "$(cat "$D/b")" new
	assert_op put b
}

@test "the helper form refuses an unknown option on one line" {
	WK_MOUNTS+=("$D")
	run --separate-stderr "$BIN/wkfs" "$D" "$D" -o defaults,colour=blue
	assert_failure
	assert_one_line_error
	[[ $stderr == *"'colour=blue'"* ]]
	run ! is_fuse_mounted "$D"
	run --separate-stderr "$BIN/mount.wkfs" "$D"
	assert_failure 2
}

# ---- fstab, through mount(8) ----------------------------------------------
#
# mount(8) looks for mount.TYPE helpers in /sbin only and runs them with
# PATH reset to /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
# and mount.fuse3 runs `wkfs` by name from that PATH.  To test that real
# path without installing anything on the machine, each test gets a private
# mount namespace (a holder process started by unshare) in which read-only
# overlays add `wkfs` to /usr/local/bin and `mount.wkfs` to /usr/sbin (which
# /sbin links to, or /sbin itself).  Mounts made in the namespace are
# invisible outside and go away with it; commands run in it with nsenter,
# and libmount's utab is kept in the test's directory.

# ns_start: the namespace, holder pid in NS.
ns_start() {
	local sbin
	sbin=$(realpath /sbin)
	mkdir -p "$T/ns-bin" "$T/ns-sbin"
	ln -s "$WKFS_BIN" "$T/ns-bin/wkfs"
	ln -s "$WKFS_BIN" "$T/ns-sbin/mount.wkfs"
	unshare --mount --propagation private sleep infinity \
		</dev/null >/dev/null 2>&1 3>&- &
	NS=$!
	WK_PIDS+=("$NS")
	# Once sleep runs, unshare has made every mount private.
	wait_until 30 ns_ready
	# Copies of other tests' FUSE mounts would keep those filesystems
	# alive after their owners unmount them: drop them here.
	ns_fuse_mounts | while read -r m; do ns umount -l "$m" || true; done
	ns mount -t overlay wkfs-test -o "lowerdir=$T/ns-bin:/usr/local/bin" \
		/usr/local/bin
	ns mount -t overlay wkfs-test -o "lowerdir=$T/ns-sbin:$sbin" "$sbin"
	ns test -x /sbin/mount.wkfs
	ns env -i PATH=/usr/local/bin:/usr/bin:/bin sh -c 'command -v wkfs' |
		grep -qx /usr/local/bin/wkfs
}

ns_ready() { [ "$(tr '\0' ' ' <"/proc/$NS/cmdline")" = "sleep infinity " ]; }

# ns CMD...: runs CMD in the namespace.
ns() {
	LIBMOUNT_UTAB=$T/utab nsenter -t "$NS" -m -- "$@" </dev/null 3>&-
}

# ns_fuse_mounts: the mount points of FUSE mounts in the namespace.
ns_fuse_mounts() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break }
		$(i + 1) ~ /^fuse/ { print $5 }' "/proc/$NS/mountinfo"
}

# ns_wkfs_type PATH: the type of the mount on PATH in the namespace.
ns_wkfs_type() {
	awk -v p="$1" '{ for (i = 7; i <= NF; i++) if ($i == "-") break }
		$5 == p { t = $(i + 1) } END { print t }' "/proc/$NS/mountinfo"
}

ns_not_mounted() { [ -z "$(ns_wkfs_type "$1")" ]; }

ns_teardown() {
	[ -n "${NS:-}" ] && [ -e "/proc/$NS/mountinfo" ] || return 0
	ns_fuse_mounts | while read -r m; do ns umount -l "$m" || true; done
}

# fstab LINE...: writes the scratch fstab $T/fstab.
fstab() { printf '%s\n' "$@" >"$T/fstab"; }

# ns_umount MNT: umount(8) in the namespace, as at shutdown; returns once
# the mount and its process are gone.
ns_umount() {
	ns umount "$1"
	wait_until 30 ns_not_mounted "$1"
	wait_until 30 no_wkfs_for "$D"
}

@test "fstab fuse.wkfs in place: mount -T FILE -a, then umount" {
	WK_TIMEOUT=30
	ns_start
	fstab "# scratch fstab" "$D  $D  fuse.wkfs  defaults,_netdev  0 0"
	run --separate-stderr ns mount -T "$T/fstab" -a
	assert_success
	assert_equal "$(ns_wkfs_type "$D")" fuse.wkfs
	run ! is_mounted "$D"	# only in the namespace
	assert_equal "$(ns cat "$D/a")" hello
	ns sh -c "echo more >>'$D/a' && ! test -e '$D/.wkfs'"
	assert_op put a
	ns_umount "$D"
	assert_equal "$(cat "$D/a")" "hello
more"
}

@test "fstab fuse.wkfs with the store apart and x-systemd.automount" {
	WK_TIMEOUT=30
	ns_start
	fstab "$D $M fuse.wkfs defaults,_netdev,x-systemd.automount,noatime 0 0"
	run --separate-stderr ns mount -T "$T/fstab" -a
	assert_success
	assert_equal "$(ns_wkfs_type "$M")" fuse.wkfs
	grep -q " $M .*noatime" "/proc/$NS/mountinfo"
	ns_not_mounted "$D"
	ns sh -c "echo new >'$M/b'"
	assert_op put b
	ns_umount "$M"
	assert_equal "$(cat "$D/b")" new
}

@test "fstab type wkfs in place runs /sbin/mount.wkfs" {
	WK_TIMEOUT=30
	ns_start
	fstab "$D $D wkfs defaults,_netdev 0 0"
	run --separate-stderr ns mount -T "$T/fstab" -a
	assert_success
	assert_equal "$(ns_wkfs_type "$D")" fuse.wkfs
	# the mount process is the helper itself
	run pgrep -f "^/sbin/mount.wkfs $D $D"
	assert_success
	ns sh -c "mkdir '$D/sub' && echo x >'$D/sub/c'"
	assert_op put sub/c
	ns_umount "$D"
	[ -f "$D/sub/c" ]
}

@test "fstab type wkfs with the store apart: mount --fstab FILE MNT" {
	WK_TIMEOUT=30
	ns_start
	fstab "$D $M wkfs nosuid,x-systemd.automount 0 0"
	run --separate-stderr ns mount --fstab "$T/fstab" "$M"
	assert_success
	assert_equal "$(ns_wkfs_type "$M")" fuse.wkfs
	grep -q " $M .*nosuid" "/proc/$NS/mountinfo"
	assert_equal "$(ns cat "$M/a")" hello
	ns_umount "$M"
}

@test "fstab with an unknown option fails, naming it, for both types" {
	ns_start
	for type in fuse.wkfs wkfs; do
		fstab "$D $D $type defaults,colour=blue 0 0"
		run --separate-stderr ns mount -T "$T/fstab" -a
		assert_failure
		[[ $stderr == *"unknown mount option 'colour=blue'"* ]] ||
			{ echo "type $type: stderr: $stderr" >&2; return 1; }
		ns_not_mounted "$D"
	done
	no_wkfs_for "$D"
}
