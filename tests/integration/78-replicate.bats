#!/usr/bin/env bats
# 78-replicate: real replication.  Two or three folders, each mounted in
# place with its own wkfs-syncd, meet at one wkfs-relay on 127.0.0.1; what
# is done to one through its mount must show on the others with the same
# names, types, modes, sizes, contents and symlink targets (listing in
# relay.bash), and file mtimes within 50 ms.  Everything converges by
# polling with generous deadlines: the machine is shared and slow.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=60 # seconds a change may take to reach every replica

setup() { replicas_setup; }
teardown() { replicas_teardown; }

# conflict_copies DIR STEM: the names of STEM's conflict siblings in DIR.
conflict_copies() { (cd "$1" && ls -d "$2".conflict-* 2>/dev/null) || true; }

@test "create, write, append, truncate, chmod, mkdir and symlink reach B" {
	replica a
	replica b
	mkdir -p "$A/docs/deep"
	echo hello >"$A/docs/note.txt"
	head -c 300000 /dev/urandom >"$A/docs/deep/big.bin"
	: >"$A/empty"
	echo run >"$A/script.sh"
	chmod 750 "$A/script.sh"
	chmod 700 "$A/docs/deep"
	ln -s docs/note.txt "$A/link"
	ln -s /nonexistent/target "$A/dangling"
	touch -m -d '2001-02-03 04:05:06.123456789' "$A/docs/note.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	same_mtimes "$A" "$B"
	run stat -c %y "$B/docs/note.txt"
	assert_output --partial '2001-02-03 04:05:06.123456789'

	# second round on the same files
	echo more >>"$A/docs/note.txt"
	truncate -s 1000 "$A/docs/deep/big.bin"
	truncate -s 70000 "$A/empty"
	chmod 600 "$A/docs/note.txt"
	chmod 755 "$A/docs/deep"
	wait_same "$SYNC_WAIT" "$A" "$B"
	same_mtimes "$A" "$B"
	run cat "$B/docs/note.txt"
	assert_output $'hello\nmore'
	run readlink "$B/link"
	assert_output docs/note.txt
}

@test "rename, move across directories, delete and rmdir reach B" {
	replica a
	replica b
	mkdir -p "$A/d1/sub" "$A/d2" "$A/gone/deeper"
	echo one >"$A/d1/f"
	echo r >"$A/r"
	echo x >"$A/gone/deeper/x"
	echo s >"$A/d1/sub/s"
	echo bye >"$A/bye"
	mkdir "$A/empty-dir"
	wait_same "$SYNC_WAIT" "$A" "$B"

	mv "$A/r" "$A/r-renamed"
	mv "$A/d1/f" "$A/d2/g"
	mv "$A/d1/sub" "$A/d2/sub-moved"
	rm "$A/bye"
	rm -r "$A/gone"
	rmdir "$A/empty-dir"
	wait_same "$SYNC_WAIT" "$A" "$B"
	[ ! -e "$B/bye" ]
	[ ! -e "$B/gone" ]
	[ ! -e "$B/empty-dir" ]
	run cat "$B/d2/sub-moved/s"
	assert_output s

	# a rename over an existing file replaces it on B too
	echo new >"$A/d2/tmp"
	mv "$A/d2/tmp" "$A/d2/g"
	wait_same "$SYNC_WAIT" "$A" "$B"
	run cat "$B/d2/g"
	assert_output new
}

@test "B's changes reach A, A's reach B, over the same session" {
	replica a
	replica b
	echo from-a >"$A/fa"
	mkdir "$A/shared"
	wait_same "$SYNC_WAIT" "$A" "$B"
	echo from-b >"$B/shared/fb"
	mv "$B/fa" "$B/shared/fa"
	wait_same "$SYNC_WAIT" "$A" "$B"
	[ -f "$A/shared/fa" ]
	echo more >>"$A/shared/fb"
	wait_same "$SYNC_WAIT" "$A" "$B"
	run cat "$B/shared/fb"
	assert_output $'from-b\nmore'
	same_mtimes "$A" "$B"
}

@test "three replicas: each one's changes reach the other two" {
	replica a
	replica b
	replica c
	mkdir -p "$A/p/q"
	echo pa >"$A/p/x"
	wait_same "$SYNC_WAIT" "$A" "$B" "$C"
	echo pb >"$B/p/y"
	chmod 640 "$B/p/x"
	wait_same "$SYNC_WAIT" "$A" "$B" "$C"
	ln -s ../p/y "$C/p/q/to-y"
	mv "$C/p/x" "$C/p/q/x"
	echo pc >>"$C/p/y"
	wait_same "$SYNC_WAIT" "$A" "$B" "$C"
	rm -r "$A/p/q"
	wait_same "$SYNC_WAIT" "$A" "$B" "$C"
	run ls -A "$C/p"
	assert_output y
	run cat "$B/p/y"
	assert_output $'pb\npc'
	same_mtimes "$A" "$C"
}

@test "vim and sed -i saves on A appear on B" {
	replica a
	replica b
	printf 'line one\nline two\n' >"$A/todo.txt"
	printf 'alpha\nbeta\n' >"$A/conf.ini"
	chmod 640 "$A/conf.ini"
	wait_same "$SYNC_WAIT" "$A" "$B"

	# vim writes a backup, the file and removes the backup; its swap
	# file and the 4913 probe are ignored by default
	HOME=$T vim -Nu NONE -es -c '$put =\"line three\"' -c wq \
		"$A/todo.txt" </dev/null
	run cat "$A/todo.txt"
	assert_output $'line one\nline two\nline three'
	wait_same "$SYNC_WAIT" "$A" "$B"
	run cat "$B/todo.txt"
	assert_output $'line one\nline two\nline three'

	# sed -i writes a temporary and renames it over, keeping the mode
	sed -i 's/beta/gamma/' "$A/conf.ini"
	wait_same "$SYNC_WAIT" "$A" "$B"
	run cat "$B/conf.ini"
	assert_output $'alpha\ngamma'
	run stat -c %a "$B/conf.ini"
	assert_output 640
	same_mtimes "$A" "$B"
	run ls -A "$B"
	assert_output $'conf.ini\ntodo.txt'
}

@test "offline: both sides change while B's daemon is down, then converge" {
	replica a
	replica b
	echo base >"$A/both.txt"
	echo base >"$A/gone-on-b"
	mkdir "$A/dir"
	wait_same "$SYNC_WAIT" "$A" "$B"
	stop_syncd b

	echo from-a >"$A/both.txt"
	echo only-a >"$A/dir/a-file"
	mkdir "$A/a-dir"
	echo from-b >"$B/both.txt"
	echo only-b >"$B/dir/b-file"
	rm "$B/gone-on-b"
	ln -s dir/b-file "$B/b-link"
	# A goes on without B: its ops reach the relay meanwhile
	wait_until "$SYNC_WAIT" all_shipped "$A"

	start_syncd b
	wait_same "$SYNC_WAIT" "$A" "$B"
	[ -f "$A/dir/b-file" ] && [ -f "$B/dir/a-file" ] && [ -d "$B/a-dir" ]
	[ ! -e "$A/gone-on-b" ]
	[ -L "$A/b-link" ]
	# the concurrent edit: one winner, one sibling, the same on both
	# (same_trees compared names and contents), both versions kept
	run conflict_copies "$A" both
	assert_equal "${#lines[@]}" 1
	assert_equal "$(conflict_copies "$B" both)" "$output"
	run cat "$A/both.txt" "$A/$output"
	assert_output --partial from-a
	assert_output --partial from-b
	same_mtimes "$A" "$B"
}

@test "a one-byte edit in a 256 MiB file moves under 1 MiB through the relay" {
	replica a
	replica b
	head -c $((256 << 20)) /dev/urandom >"$T/big.src"
	cp "$T/big.src" "$A/big"
	wait_until 600 cmp -s "$T/big.src" "$B/big"
	relay_quiet
	read -r -d '' before conns < <(relay_wire) || true

	printf 'X' | dd of="$A/big" bs=1 seek=$((100 << 20)) conv=notrunc \
		status=none
	printf 'X' | dd of="$T/big.src" bs=1 seek=$((100 << 20)) conv=notrunc \
		status=none
	wait_until 600 cmp -s "$T/big.src" "$B/big"
	relay_quiet
	read -r -d '' after conns2 < <(relay_wire) || true
	assert_equal "$conns2" "$conns"
	echo "one-byte edit: $((after - before)) bytes through the relay" >&3
	[ $((after - before)) -lt $((1 << 20)) ]
	run ls "$A" "$B"
	refute_output --partial conflict
}

# local_ids DIR: "ACTOR HLC" of each of DIR's local ops, ACTOR in hex.
local_ids() {
	"$WKFS_BIN" log "$1" --json </dev/null 3>&- |
		grep '"origin":"local"' |
		sed -n 's/.*"hlc":\([0-9]*\),.*"actor":"\([0-9a-f]*\)".*/\2 \1/p'
}

@test "ops forged under A's actor are refused; A's own ops still reach B" {
	replica a
	replica b
	stop_syncd a
	mkdir "$A/real-dir"
	echo real >"$A/real-dir/file"
	run local_ids "$A"
	assert_success
	[ "${#lines[@]}" -ge 3 ]
	actor=${lines[0]%% *}
	# Another client of the folder's token (its own actor 99) pushes ops
	# claiming A's actor and exactly the clocks A's unshipped ops hold,
	# plus 40 beyond the first: stored, they would make A's ops
	# duplicates, dropped by the relay while A shows Synced.
	run "$WKFS_BUILD/wkfs-relay-test" --timeout 5 push --as 99 \
		"ws://127.0.0.1:$PORT/Notes" "$TOK" "0x$actor" 40 \
		"${lines[0]##* }"
	assert_failure 3
	assert_output --partial 'error 12 actor:'
	assert_output --partial "claims actor $actor"
	for l in "${lines[@]:1}"; do
		[[ $l == "$actor "* ]] || continue
		run "$WKFS_BUILD/wkfs-relay-test" --timeout 5 push --as 99 \
			"ws://127.0.0.1:$PORT/Notes" "$TOK" "0x$actor" 1 "${l##* }"
		assert_failure 3
	done
	# the session's own actor is still welcome
	run "$WKFS_BUILD/wkfs-relay-test" --timeout 5 push \
		"ws://127.0.0.1:$PORT/Notes" "$TOK" 99 1 1
	assert_success

	start_syncd a
	wait_until "$SYNC_WAIT" test -f "$B/real-dir/file"
	run cat "$B/real-dir/file"
	assert_output real
	wait_same "$SYNC_WAIT" "$A" "$B"
}
