#!/usr/bin/env bats
# 65-mount-helper: the forms mount(8) uses.  fstab type fuse.wkfs makes
# mount.fuse3 run `wkfs SRC MNT -o OPTS`; type wkfs runs `mount.wkfs SRC MNT
# -o OPTS` (a link to wkfs).  fstab's own options are accepted and dropped.

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
	! is_fuse_mounted "$D"
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
	! is_fuse_mounted "$D"
	run --separate-stderr "$BIN/mount.wkfs" "$D"
	assert_failure 2
}
