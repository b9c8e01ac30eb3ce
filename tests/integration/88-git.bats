#!/usr/bin/env bats
# 88-git: replication through a git remote.  Replicas A, B and C are
# mounted in place (each mount starts its own wkfs-syncd) against one bare
# repository on disk, R, whose own main branch must never change; one test
# reaches R through `git daemon` on 127.0.0.1.  `wkfs sync` makes an
# exchange happen now and waits for it.

load helpers

W() { "$WKFS_BIN" "$@" </dev/null 3>&-; }
js() { W status "$1" --json | jq -r ".folders[0]$2"; }
field_is() { [ "$(js "$1" "$2")" = "$3" ]; }
not_running() { ! kill -0 "$1" 2>/dev/null; }

setup() {
	umask 022
	export WKFS_STATE_DIR=$BATS_TEST_TMPDIR/state
	for r in a b c; do mkdir -p "$BATS_TEST_TMPDIR/$r"; done
	A=$(realpath "$BATS_TEST_TMPDIR/a")
	B=$(realpath "$BATS_TEST_TMPDIR/b")
	C=$(realpath "$BATS_TEST_TMPDIR/c")
	WK_DIRS+=("$A" "$B" "$C")
	R=$BATS_TEST_TMPDIR/r.git
	git init -q --bare "$R"
	# the branch may only move forward: a non-fast-forward push would fail
	git -C "$R" config receive.denyNonFastForwards true
	# the user's own branch, which must stay as it is
	git -C "$R" -c user.name=u -c user.email=u@x commit-tree \
		"$(git -C "$R" mktree </dev/null)" -m mine >"$BATS_TEST_TMPDIR/main"
	git -C "$R" update-ref refs/heads/main "$(cat "$BATS_TEST_TMPDIR/main")"
	GD_PID=
}

teardown() {
	wk_teardown
	if [ -n "$GD_PID" ]; then
		kill "$GD_PID" 2>/dev/null
		wait "$GD_PID" 2>/dev/null
	fi
	true
}

# replicas URL DIR...: init each (device = its base name) and mount it.
replicas() {
	local url=$1 d
	shift
	for d in "$@"; do
		W init "$d" --remote "$url" --device "$(basename "$d")" >/dev/null
		wk_mount "$d"
	done
}

sync_all() {
	local d
	for d in "$@"; do W sync "$d" --timeout 60 >/dev/null || return 1; done
}

# puts_ge DIR N: DIR's log holds at least N puts (a put is recorded when
# the kernel sends RELEASE, a moment after the writer's close).
puts_ge() { [ "$(W log "$1" --json | jq -s '[.[] | select(.kind == "put")] | length')" -ge "$2" ]; }

main_untouched() {
	[ "$(git -C "$R" rev-parse refs/heads/main)" = "$(cat "$BATS_TEST_TMPDIR/main")" ]
}

@test "three replicas: create, edit, rename, delete, mkdir, rmdir, symlink" {
	replicas "git:$R" "$A" "$B" "$C"
	echo one >"$A/f.txt"
	mkdir -p "$A/dir/sub"
	head -c 1500000 /dev/urandom >"$A/dir/big.bin"
	ln -s f.txt "$A/link"
	sync_all "$A" "$B" "$C"
	for d in "$B" "$C"; do
		[ "$(cat "$d/f.txt")" = one ]
		cmp "$A/dir/big.bin" "$d/dir/big.bin"
		[ -d "$d/dir/sub" ]
		[ "$(readlink "$d/link")" = f.txt ]
	done
	echo two >"$B/f.txt"
	mv "$B/dir/big.bin" "$B/moved.bin"
	rmdir "$B/dir/sub"
	rm "$B/link"
	sync_all "$B" "$A" "$C"
	for d in "$A" "$C"; do
		[ "$(cat "$d/f.txt")" = two ]
		[ -e "$d/moved.bin" ] && [ ! -e "$d/dir/big.bin" ]
		[ ! -e "$d/dir/sub" ]
		[ ! -L "$d/link" ]
	done
	rm "$C/f.txt"
	sync_all "$C" "$A" "$B"
	[ ! -e "$A/f.txt" ] && [ ! -e "$B/f.txt" ]
	field_is "$A" .connection connected
	field_is "$A" .remote.type git
	# git traffic counts, as the relay's does (1.5 MB went each way).
	[ "$(js "$A" .traffic.sent)" -gt 1500000 ]
	[ "$(js "$B" .traffic.received)" -gt 1500000 ]
	main_untouched
	git -C "$R" ls-tree -r --name-only wk/oplog | grep -q '^ops/[0-9a-f]\{16\}/[0-9a-f]\{16\}\.seg$'
	git -C "$R" ls-tree -r --name-only wk/oplog | grep -q '^chunks/[0-9a-f]\{2\}/[0-9a-f]\{30\}$'
}

@test "offline: B stopped, both edit, the same conflict copy on both" {
	replicas "git:$R" "$A" "$B"
	echo base >"$A/n.txt"
	sync_all "$A" "$B"
	[ "$(cat "$B/n.txt")" = base ]
	W stop "$B"
	echo from-a >"$A/n.txt"
	wait_until 30 puts_ge "$A" 2
	W sync "$A"
	echo from-b >"$B/n.txt"
	wait_until 30 puts_ge "$B" 2
	sync_all "$B" "$A"
	COPY=$(cd "$A" && ls | grep '^n\.conflict-')
	[ -n "$COPY" ]
	[ -e "$B/$COPY" ]
	cmp "$A/n.txt" "$B/n.txt"
	cmp "$A/$COPY" "$B/$COPY"
	main_untouched
}

@test "concurrent pushes from three replicas lose no op; fsck clean" {
	replicas "git:$R" "$A" "$B" "$C"
	for i in 1 2 3 4 5 6; do
		for d in "$A" "$B" "$C"; do echo "$i" >"$d/$(basename "$d")-$i"; done
		W sync "$A" >/dev/null & p1=$!
		W sync "$B" >/dev/null & p2=$!
		W sync "$C" >/dev/null & p3=$!
		wait "$p1" && wait "$p2" && wait "$p3"
	done
	sync_all "$A" "$B" "$C" "$A" "$B"
	for d in "$A" "$B" "$C"; do
		[ "$(ls "$d" | wc -l)" = 18 ]
		for r in a b c; do [ "$(cat "$d/$r-6")" = 6 ]; done
	done
	# every op of every replica is on the branch, none twice
	n=0
	for d in "$A" "$B" "$C"; do
		n=$((n + $(W log "$d" --json | jq -s 'length')))
	done
	[ "$n" -eq $((3 * 36)) ]
	[ "$(git -C "$R" rev-list --count --merges wk/oplog)" = 0 ]
	git -C "$R" fsck --strict --no-progress
	main_untouched
}

@test "git:// through git daemon on 127.0.0.1" {
	mkdir -p "$BATS_TEST_TMPDIR/srv"
	mv "$R" "$BATS_TEST_TMPDIR/srv/r.git"
	R=$BATS_TEST_TMPDIR/srv/r.git
	port=$((20000 + RANDOM % 20000))
	git daemon --export-all --enable=receive-pack --reuseaddr \
		--base-path="$BATS_TEST_TMPDIR/srv" --listen=127.0.0.1 \
		--port="$port" "$BATS_TEST_TMPDIR/srv" 2>"$BATS_TEST_TMPDIR/gd.log" &
	GD_PID=$!
	wait_until 30 git ls-remote "git://127.0.0.1:$port/r.git" >/dev/null
	replicas "git:git://127.0.0.1:$port/r.git" "$A" "$B"
	echo over-the-network >"$A/net.txt"
	sync_all "$A" "$B"
	[ "$(cat "$B/net.txt")" = over-the-network ]
	main_untouched
}

@test "failures: not a repository, unreachable, a hook that refuses; nothing lost" {
	mkdir "$BATS_TEST_TMPDIR/plain"
	# init refuses a local path that is no repository, writing nothing
	run W init "$A" --remote "git:$BATS_TEST_TMPDIR/plain"
	assert_failure 1
	assert_output --partial 'a git repository'
	[ ! -e "$A/.wkfs" ]
	# a remote that is no repository any more: status says so
	replicas "git:$R" "$A"
	wk_umount "$A"
	sed -i "s|^url = .*|url = git:$BATS_TEST_TMPDIR/plain|" "$A/.wkfs/config.ini"
	wk_mount "$A"
	echo kept >"$A/k.txt"
	run W sync "$A" --timeout 60
	assert_failure 1
	assert_output --partial 'a git repository'
	wait_until 30 field_is "$A" .connection offline
	js "$A" .error | grep -q 'a git repository'

	replicas "git:git://127.0.0.1:9/nowhere.git" "$B"
	run W sync "$B" --timeout 60
	assert_failure 1
	assert_output --partial 'fetch'
	field_is "$B" .connection offline

	# a hook that refuses every push
	printf '#!/bin/sh\necho "pushes are closed today" >&2\nexit 1\n' \
		>"$R/hooks/pre-receive"
	chmod +x "$R/hooks/pre-receive"
	# point A at R: its config is hidden through the mount
	wk_umount "$A"
	sed -i "s|^url = .*|url = git:$R|" "$A/.wkfs/config.ini"
	wk_mount "$A"
	run W sync "$A" --timeout 60
	assert_failure 1
	assert_output --partial 'pushes are closed today'
	field_is "$A" .connection offline
	[ "$(js "$A" .pending.ops)" -ge 2 ]

	rm "$R/hooks/pre-receive"
	W sync "$A" --timeout 60
	field_is "$A" .connection connected
	field_is "$A" .pending.ops 0
	replicas "git:$R" "$C"
	W sync "$C" --timeout 60
	[ "$(cat "$C/k.txt")" = kept ]
	main_untouched
}
