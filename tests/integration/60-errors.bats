#!/usr/bin/env bats
# 60-errors: every refused mount (and init) says why on one stderr line,
# exits 1, and changes nothing: no mount, no new files, the db untouched
# (never silently recreated).

load helpers

setup() {
	wk_dirs
}

teardown() {
	wk_teardown
}

# try_mount ARGS...: `wkfs mount ARGS` under run, registering the mount
# point so that teardown cleans up if it wrongly succeeds.
try_mount() {
	local a
	for a in "$@"; do [ "${a:0:1}" = - ] || WK_MOUNTS+=("$a"); done
	run --separate-stderr timeout 30 "$WKFS_BIN" mount "$@"
}

# snapshot DIR: every path below DIR with its type, size and content hash.
snapshot() {
	(cd "$1" && find . -printf '%P %y %s\n' | sort &&
		find . -type f -exec sha256sum {} + | sort)
}

@test "mount of a missing path" {
	try_mount "$T/nope"
	assert_one_line_error
	[[ $stderr == *"$T/nope"* ]]
	[ ! -e "$T/nope" ]
	not_mounted "$T/nope"
}

@test "mount of a regular file" {
	echo x >"$T/file"
	try_mount "$T/file"
	assert_one_line_error
	[[ $stderr == *"$T/file"* ]]
	assert_equal "$(cat "$T/file")" x
	not_mounted "$T/file"
	[ ! -e "$T/.wkfs" ]
}

@test "mount of a directory already mounted" {
	echo x >"$D/f"
	wk_init "$D"
	wk_mount "$D"
	try_mount "$D"
	assert_one_line_error
	[[ $stderr == *mounted* ]]
	assert_equal "$(mount_count "$D")" 1
	assert_equal "$(cat "$D/f")" x
	echo y >"$D/g"
	assert_op put g

	# the same directory mounted at M is refused as well
	try_mount "$D" "$M"
	assert_one_line_error
	[[ $stderr == *mounted* ]] # not "run wkfs init": D is initialised
	not_mounted "$M"
}

@test "mount of a directory that was never initialised" {
	mkdir "$T/plain"
	echo x >"$T/plain/f"
	snap=$(snapshot "$T/plain")
	try_mount "$T/plain"
	assert_one_line_error
	[[ $stderr == *init* ]]
	not_mounted "$T/plain"
	[ ! -e "$T/plain/.wkfs" ]
	assert_equal "$(snapshot "$T/plain")" "$snap"
}

@test "mount of a read-only location" {
	echo x >"$D/f"
	wk_init "$D"
	snap=$(snapshot "$D")
	mount --bind "$D" "$D"
	WK_MOUNTS+=("$D")
	mount -o remount,ro,bind "$D"
	run touch "$D/probe"
	assert_failure
	try_mount "$D"
	assert_one_line_error
	[[ ${stderr,,} == *read-only* ]]
	assert_equal "$(mount_count "$D")" 1
	not_fuse_mounted "$D"
	umount "$D"
	assert_equal "$(snapshot "$D")" "$snap"
}

@test "mount with a corrupt wkfs.db: refused, the db bytes unchanged" {
	echo x >"$D/f"
	wk_init "$D"
	rm -f "$D/.wkfs/wkfs.db-wal" "$D/.wkfs/wkfs.db-shm"
	yes 'this is not a database' | head -c 65536 >"$D/.wkfs/wkfs.db"
	snap=$(snapshot "$D")
	try_mount "$D"
	assert_one_line_error
	[[ $stderr == *wkfs.db* ]]
	not_fuse_mounted "$D"
	assert_equal "$(snapshot "$D")" "$snap"
	run --separate-stderr "$WKFS_BIN" log "$D"
	assert_failure
	assert_equal "$(snapshot "$D")" "$snap"
}

@test "mount with an empty (truncated) wkfs.db: refused, not recreated" {
	echo x >"$D/f"
	wk_init "$D"
	rm -f "$D/.wkfs/wkfs.db-wal" "$D/.wkfs/wkfs.db-shm"
	: >"$D/.wkfs/wkfs.db"
	snap=$(snapshot "$D")
	try_mount "$D"
	assert_equal "$(stat -c %s "$D/.wkfs/wkfs.db")" 0
	assert_equal "$(snapshot "$D")" "$snap"
	assert_one_line_error
	[[ $stderr == *wkfs.db* ]]
	not_fuse_mounted "$D"
}

@test "mount with wkfs.db missing from .wkfs: refused, not recreated" {
	echo x >"$D/f"
	wk_init "$D"
	rm -f "$D/.wkfs/wkfs.db" "$D/.wkfs/wkfs.db-wal" "$D/.wkfs/wkfs.db-shm"
	snap=$(snapshot "$D")
	try_mount "$D"
	assert_one_line_error
	[[ $stderr == *wkfs.db* ]]
	not_fuse_mounted "$D"
	[ ! -e "$D/.wkfs/wkfs.db" ]
	assert_equal "$(snapshot "$D")" "$snap"
}

@test "mount with an unreadable wkfs.db (a directory in its place)" {
	echo x >"$D/f"
	wk_init "$D"
	rm -f "$D/.wkfs/wkfs.db" "$D/.wkfs/wkfs.db-wal" "$D/.wkfs/wkfs.db-shm"
	mkdir "$D/.wkfs/wkfs.db"
	snap=$(snapshot "$D")
	try_mount "$D"
	assert_one_line_error
	[[ $stderr == *wkfs.db* ]]
	not_fuse_mounted "$D"
	assert_equal "$(snapshot "$D")" "$snap"
}

@test "mount with an unknown key in config.ini names file, line and key" {
	echo x >"$D/f"
	wk_init "$D"
	sed -i '/^\[sync\]$/a colour = blue' "$D/.wkfs/config.ini"
	line=$(grep -n '^colour = blue$' "$D/.wkfs/config.ini" | cut -d: -f1)
	[ -n "$line" ]
	snap=$(snapshot "$D")
	try_mount "$D"
	assert_one_line_error
	[[ $stderr == *config.ini* ]]
	[[ $stderr =~ (^|[^0-9])$line([^0-9]|$) ]]
	[[ $stderr == *colour* ]]
	not_fuse_mounted "$D"
	assert_equal "$(snapshot "$D")" "$snap"
}

@test "mount with an unknown section in config.ini names file, line and section" {
	echo x >"$D/f"
	wk_init "$D"
	printf '\n[colours]\nred = 1\n' >>"$D/.wkfs/config.ini"
	line=$(grep -n '^\[colours\]$' "$D/.wkfs/config.ini" | cut -d: -f1)
	snap=$(snapshot "$D")
	try_mount "$D"
	assert_one_line_error
	[[ $stderr == *config.ini* ]]
	[[ $stderr =~ (^|[^0-9])$line([^0-9]|$) ]]
	[[ $stderr == *colours* ]]
	not_fuse_mounted "$D"
	assert_equal "$(snapshot "$D")" "$snap"
}

@test "init of a regular file fails on one line" {
	echo x >"$T/file"
	run --separate-stderr "$WKFS_BIN" init "$T/file"
	assert_one_line_error
	assert_equal "$(cat "$T/file")" x
	[ ! -e "$T/.wkfs" ]
}

@test "init of an already initialised directory refuses, the db unchanged" {
	echo x >"$D/f"
	wk_init "$D"
	snap=$(snapshot "$D")
	run --separate-stderr "$WKFS_BIN" init "$D"
	assert_one_line_error
	assert_equal "$(snapshot "$D")" "$snap"
}

@test "mount with an unknown -o option names it; fstab's own options pass" {
	echo x >"$D/f"
	wk_init "$D"
	# a change made while unmounted: a refused mount must not record it
	echo y >"$D/g"
	snap=$(snapshot "$D")
	try_mount -o noatime,bogus_opt "$D"
	assert_one_line_error
	[[ $stderr == *"'bogus_opt'"* ]]
	not_fuse_mounted "$D"
	assert_equal "$(snapshot "$D")" "$snap"
	try_mount -o defaults,_netdev,nofail,x-systemd.automount,noatime "$D"
	assert_success
	is_fuse_mounted "$D"
	grep -q " $D fuse.wkfs [^ ]*noatime" /proc/self/mounts
	assert_op put g
}
