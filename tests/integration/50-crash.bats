#!/usr/bin/env bats
# 50-crash: a kill -9 of the mount process loses nothing (the next mount
# cleans the dead mount and its scan records what the ops missed); changes
# made while unmounted are recorded at mount; the mass-delete guard.

load helpers

setup() {
	wk_dirs
}

teardown() {
	wk_teardown
}

@test "kill -9 of the mount mid-workload: remount cleans up, nothing lost" {
	wk_init "$D"
	wk_mount_fg "$D"
	# 200 files of distinct sizes; stops at the first failed write
	(
		for i in $(seq 200); do
			head -c $((i * 101)) /dev/urandom >"$D/f$i" || exit 0
		done
	) 3>&- &
	wl=$!
	WK_PIDS+=("$wl")
	wait_until 30 test -e "$D/f60"
	kill -9 "$WK_FG_PID"
	wait "$WK_FG_PID" || true
	wait "$wl" || true
	is_fuse_mounted "$D" # dead, not yet cleaned

	wk_mount "$D"
	assert_equal "$(mount_count "$D")" 1
	n=$(find "$D" -maxdepth 1 -name 'f*' | wc -l)
	[ "$n" -ge 60 ]
	assert_state_matches "$D"
	# and the db survived the kill: the log is readable and the mount records
	mark=$(ops_mark)
	echo after >"$D/after"
	assert_ops_since "$mark" "create after" "put after"
}

@test "kill -9 after fsync of a file still open: the content is recorded" {
	wk_init "$D"
	wk_mount_fg "$D"
	pyc 'import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"s" * 5000)
os.fsync(fd)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)' "$D/open.txt" "$T/written" "$T/release" 3>&- &
	writer=$!
	WK_PIDS+=("$writer")
	wait_until 10 test -e "$T/written"
	kill -9 "$WK_FG_PID"
	wait "$WK_FG_PID" || true
	touch "$T/release"
	wait "$writer" || true
	wk_mount "$D"
	assert_equal "$(stat -c %s "$D/open.txt")" 5000
	assert_state_matches "$D"
	assert_latest_put_size open.txt 5000
}

@test "changes made while unmounted are recorded at mount; renames as moves" {
	mkdir "$D/sub"
	echo one >"$D/a"
	echo b >"$D/b"
	echo c >"$D/sub/c"
	for i in $(seq 8); do echo "$i" >"$D/k$i"; done
	wk_init "$D"
	wk_mount "$D"
	wk_umount "$D"
	cnode=$(op_field create sub/c node)
	k1node=$(op_field create k1 node)
	k3node=$(op_field create k3 node)
	bnode=$(op_field create b node)
	mark=$(ops_mark)

	echo more >>"$D/a"
	echo new >"$D/n"
	rm "$D/b"
	mv "$D/sub/c" "$D/sub/d"
	mkdir "$D/newdir"
	mv "$D/k1" "$D/newdir/k1"
	mv "$D/k3" "$D/k3-renamed"
	echo edited >>"$D/k3-renamed"

	wk_mount "$D"
	assert_ops_set_since "$mark" \
		"put a" "create n" "put n" "remove b" "move sub/c sub/d" \
		"mkdir newdir" "move k1 newdir/k1" "move k3 k3-renamed" "put k3-renamed"
	assert_equal "$(op_field move sub/c node)" "$cnode"
	assert_equal "$(op_field move k1 node)" "$k1node"
	assert_equal "$(op_field move k3 node)" "$k3node"
	assert_equal "$(op_field put k3-renamed node)" "$k3node"
	assert_equal "$(op_field remove b node)" "$bnode"
	[ "$(op_field mkdir newdir seq)" -lt "$(op_field move k1 seq)" ]
	[ "$(op_field create n seq)" -lt "$(op_field put n seq)" ]
	assert_equal "$(op_field put a size)" 9
	assert_equal "$(op_field put k3-renamed size)" 9
	assert_state_matches "$D"

	# a second mount with nothing changed records nothing
	wk_umount "$D"
	mark=$(ops_mark)
	wk_mount "$D"
	assert_equal "$(ops_summary "$mark")" ""
}

@test "mass-delete guard: mount refuses until --accept-deletions" {
	for i in $(seq 20); do echo "$i" >"$D/f$i"; done
	wk_init "$D"
	for i in $(seq 20); do rm "$D/f$i"; done
	before=$(wkfs_ops)
	run --separate-stderr timeout 30 "$WKFS_BIN" mount "$D"
	WK_MOUNTS+=("$D")
	assert_one_line_error
	[[ $stderr == *--accept-deletions* ]]
	not_fuse_mounted "$D"
	assert_equal "$(wkfs_ops)" "$before"
	[ -z "$(ls -A "$D" | grep -v '^\.wkfs$')" ]

	mark=$(ops_mark)
	wk_mount --accept-deletions "$D"
	want=()
	for i in $(seq 20); do want+=("remove f$i"); done
	assert_ops_set_since "$mark" "${want[@]}"
	assert_state_matches "$D"
}
