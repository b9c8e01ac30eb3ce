#!/usr/bin/env bats
# 20-sidecar: DIR/.wkfs cannot be seen or touched through the mount, yet
# `wkfs log` still reads it while DIR is mounted over itself.

load helpers

setup() {
	wk_dirs
	mkdir "$D/sub"
	echo f >"$D/f"
	wk_init "$D"
	# what the sidecar holds before any attack (the db's -wal/-shm may come
	# and go while mounted)
	(cd "$D/.wkfs" && find . | grep -v -e '-wal$' -e '-shm$' -e '-journal$' |
		sort) >"$T/sidecar.before"
	sha256sum "$D/.wkfs/config.ini" >"$T/config.sum"
	wk_mount "$D"
}

teardown() {
	wk_teardown
}

# errno_of PYTHON-STATEMENT PATH...: runs the statement with a=sys.argv[1],
# b=sys.argv[2]; prints "ok" or the errno name.
errno_of() {
	local stmt=$1
	shift
	pyc "import errno, os, sys
a = sys.argv[1]; b = sys.argv[2] if len(sys.argv) > 2 else None
try:
    $stmt
    print('ok')
except OSError as e:
    print(errno.errorcode[e.errno])" "$@"
}

# the sidecar is intact once unmounted: same files, same config, a sound db,
# and no op ever named it.
assert_sidecar_intact() {
	assert_no_op '*' .wkfs
	[ "$(ops_summary | grep -c '\.wkfs')" = 0 ]
	wk_umount "$D"
	(cd "$D/.wkfs" && find . | grep -v -e '-wal$' -e '-shm$' -e '-journal$' |
		sort) >"$T/sidecar.after"
	diff -u "$T/sidecar.before" "$T/sidecar.after"
	sha256sum -c --quiet "$T/config.sum"
	run sqlite3 "$D/.wkfs/wkfs.db" 'PRAGMA integrity_check'
	assert_output ok
}

@test ".wkfs is not listed and cannot be stat'ed in any spelling" {
	run ls -a "$D"
	assert_success
	refute_line .wkfs
	assert_line f
	run pyc 'import os, sys; print(sorted(os.listdir(sys.argv[1])))' "$D"
	assert_output "['f', 'sub']"
	run find "$D" -name '.wkfs*'
	assert_output ''
	# stat and lstat of each spelling: one python for all 14
	run pyc 'import errno, os, sys
for p in sys.argv[1:]:
    for f in (os.stat, os.lstat):
        try:
            f(p)
            print(f.__name__, p, "ok")
        except OSError as e:
            print(f.__name__, p, errno.errorcode[e.errno])' \
		"$D/.wkfs" "$D/./.wkfs" "$D/sub/../.wkfs" "$D/.wkfs/" \
		"$D/.wkfs/wkfs.db" "$D/.wkfs/config.ini" "$D/.wkfs/tmp"
	assert_success
	[ "${#lines[@]}" = 14 ]
	for l in "${lines[@]}"; do
		[[ $l == *' ENOENT' ]] || fail "expected ENOENT: $l"
	done
	run errno_of 'os.access(a, os.F_OK) or os.stat(a)' "$D/.wkfs"
	assert_output ENOENT
	assert_sidecar_intact
}

@test ".wkfs and what it holds cannot be opened or read" {
	run cat "$D/.wkfs/wkfs.db"
	assert_failure
	run cat "$D/.wkfs/config.ini"
	assert_failure
	run errno_of 'os.open(a, os.O_RDONLY | os.O_DIRECTORY)' "$D/.wkfs"
	assert_output ENOENT
	run errno_of 'os.open(a, os.O_RDWR)' "$D/.wkfs/wkfs.db"
	assert_output ENOENT
	run errno_of 'os.listdir(a)' "$D/.wkfs"
	assert_output ENOENT
	run bash -c 'cd "$1"' _ "$D/.wkfs"
	assert_failure
	assert_sidecar_intact
}

@test ".wkfs cannot be created as a file, dir, symlink, hard link or fifo" {
	run errno_of 'os.close(os.open(a, os.O_WRONLY | os.O_CREAT, 0o644))' "$D/.wkfs"
	refute_output ok
	run errno_of 'os.close(os.open(a, os.O_WRONLY | os.O_CREAT, 0o644))' "$D/.wkfs/config.ini"
	refute_output ok
	run errno_of 'os.mkdir(a)' "$D/.wkfs"
	refute_output ok
	run errno_of 'os.makedirs(a)' "$D/.wkfs/tmp/x"
	refute_output ok
	run errno_of 'os.symlink("sub", a)' "$D/.wkfs"
	refute_output ok
	run errno_of 'os.link(b, a)' "$D/.wkfs" "$D/f"
	refute_output ok
	run errno_of 'os.mkfifo(a)' "$D/.wkfs"
	refute_output ok
	run errno_of 'os.stat(a)' "$D/.wkfs"
	assert_output ENOENT
	assert_equal "$(cat "$D/f")" f
	assert_sidecar_intact
}

@test ".wkfs cannot be renamed onto, renamed away, exchanged or removed" {
	run errno_of 'os.rename(b, a)' "$D/.wkfs" "$D/f"
	refute_output ok
	run errno_of 'os.rename(b, a)' "$D/.wkfs" "$D/sub"
	refute_output ok
	run renameat2 "$D/f" "$D/.wkfs" 1
	refute_output ok
	run renameat2 "$D/f" "$D/.wkfs" 2
	refute_output ok
	run errno_of 'os.rename(a, b)' "$D/.wkfs" "$D/stolen"
	refute_output ok
	run errno_of 'os.rename(a, b)' "$D/.wkfs/wkfs.db" "$D/stolen.db"
	refute_output ok
	run errno_of 'os.unlink(a)' "$D/.wkfs"
	refute_output ok
	run errno_of 'os.rmdir(a)' "$D/.wkfs"
	refute_output ok
	run errno_of 'os.unlink(a)' "$D/.wkfs/wkfs.db"
	refute_output ok
	run rm -r "$D/.wkfs"
	assert_failure
	[ -f "$D/f" ] && [ -d "$D/sub" ] && [ ! -e "$D/stolen" ]
	assert_equal "$(cat "$D/f")" f
	assert_sidecar_intact
}

@test "wkfs log reads the oplog while DIR is mounted over itself" {
	echo new >"$D/new"
	wait_op put new
	run --separate-stderr "$WKFS_BIN" log "$D"
	assert_success
	[ -n "$output" ]
	assert_output --partial new

	run --separate-stderr "$WKFS_BIN" log "$D" --json
	assert_success
	total=${#lines[@]}
	[ "$total" -ge 5 ] # mkdir sub, create+put f, create+put new
	echo "$output" | jq -se 'all(.[]; type == "object")'
	assert_equal "$(echo "$output" | tail -n 1 | jq -r '.kind + " " + .path')" "put new"

	run --separate-stderr "$WKFS_BIN" log "$D" --json -n 2
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_equal "$output" "$(wkfs_ops | tail -n 2)"
	is_fuse_mounted "$D"
}

@test "mounted at an explicit MNT, DIR and its sidecar stay visible" {
	wk_umount "$D"
	wk_mount "$D" "$M"
	not_mounted "$D"
	[ -f "$D/.wkfs/wkfs.db" ]
	[ -f "$D/.wkfs/config.ini" ]
	run sqlite3 "$D/.wkfs/wkfs.db" 'PRAGMA quick_check'
	assert_output ok
	run ls -a "$M"
	refute_line .wkfs
	run errno_of 'os.stat(a)' "$M/.wkfs"
	assert_output ENOENT
	echo via-mnt >"$M/g"
	assert_equal "$(cat "$D/g")" via-mnt
	assert_op put g
	assert_equal "$(op_field put g size)" 8
}
