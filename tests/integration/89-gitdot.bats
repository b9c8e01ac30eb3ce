#!/usr/bin/env bats
# 89-gitdot: git:. (the repository around the folder), its hooks, the
# branch kept through `git branch -D`, a remote branch that was deleted,
# the branch made by `wkfs init`, and the mirror kept packed.  W is a
# real git work tree with commits on main and on a side branch; the
# folders are mounted in place (each mount starts its own wkfs-syncd).

load helpers

W() { "$WKFS_BIN" "$@" </dev/null 3>&-; }
G() { git -C "$WT" -c user.name=u -c user.email=u@x "$@"; }
js() { W status "$1" --json | jq -r ".folders[0]$2"; }
field_is() { [ "$(js "$1" "$2")" = "$3" ]; }

setup() {
	umask 022
	export WKFS_STATE_DIR=$BATS_TEST_TMPDIR/state
	T=$(realpath "$BATS_TEST_TMPDIR")
	WT=$T/w
	B=$T/b
	C=$T/c
	mkdir -p "$WT" "$B" "$C"
	WK_DIRS+=("$WT" "$B" "$C")
	git init -q -b main "$WT"
	echo readme >"$WT/README"
	G add README
	G commit -q -m first
	G checkout -q -b side
	echo side >"$WT/side.txt"
	G add side.txt
	G commit -q -m side
	G checkout -q main
	echo two >>"$WT/README"
	G commit -q -am second
	A=$T/a
	mkdir -p "$A"
	WK_DIRS+=("$A")
}

teardown() {
	wk_teardown
}

# the user's repository as git shows it: HEAD, main, side, the index
# file, status (which must not refresh the index itself)
repo_state() {
	G rev-parse HEAD main side
	G symbolic-ref HEAD
	sha256sum "$WT/.git/index" | cut -d' ' -f1
	GIT_OPTIONAL_LOCKS=0 G status --porcelain --untracked-files=no
}

sync_all() {
	local d
	for d in "$@"; do W sync "$d" --timeout 60 >/dev/null || return 1; done
}

has_file() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
puts_ge() { [ "$(W log "$1" --json | jq -s '[.[] | select(.kind == "put")] | length')" -ge "$2" ]; }

# set_interval DIR S: [remote] interval of an unmounted folder
set_interval() { sed -i "s/^interval = .*/interval = $2/" "$1/.wkfs/config.ini"; }

@test "git:. : ops in wk/oplog; HEAD, branches, index and status untouched; .git not recorded" {
	run W init "$WT" --remote git:. --device w
	assert_success
	assert_output --partial 'created branch wk/oplog'
	assert_output --partial '.git is not synced'
	grep -qx 'ignore = .git' "$WT/.wkfs/config.ini"
	G rev-parse -q --verify refs/heads/wk/oplog
	wk_mount "$WT"
	echo hello >"$WT/notes.txt"
	wait_until 30 puts_ge "$WT" 2
	before=$(repo_state)
	W init "$B" --remote "git:$WT/.git" --device b >/dev/null
	wk_mount "$B"
	sync_all "$WT" "$B" "$WT"
	[ "$(cat "$B/notes.txt")" = hello ]
	[ "$(cat "$B/README")" = "$(printf 'readme\ntwo')" ]
	[ ! -e "$B/.git" ]
	echo from-b >"$B/b.txt"
	wait_until 30 puts_ge "$B" 1
	sync_all "$B" "$WT"
	[ "$(cat "$WT/b.txt")" = from-b ]
	[ "$(repo_state)" = "$before" ]
	[ "$(G status --porcelain | sort)" = "$(printf '?? b.txt\n?? notes.txt')" ]
	# the mount recorded nothing under .git, though git wrote there
	[ "$(W log "$WT" --json | jq -s '[.[] | select(.path // "" | startswith(".git"))] | length')" = 0 ]
	G ls-tree -r --name-only wk/oplog | grep -q '^ops/'
	field_is "$WT" .connection connected
	G fsck --no-progress
}

@test "git branch -D wk/oplog: the branch comes back, no op lost" {
	W init "$WT" --remote git:. --device w >/dev/null
	wk_mount "$WT"
	W init "$B" --remote "git:$WT/.git" --device b >/dev/null
	wk_mount "$B"
	echo one >"$WT/one.txt"
	echo bee >"$B/bee.txt"
	wait_until 30 puts_ge "$WT" 2
	wait_until 30 puts_ge "$B" 1
	sync_all "$WT" "$B" "$WT"
	keep=$(G rev-parse refs/wkfs/keep/wk/oplog)
	G branch -q -D wk/oplog
	run G rev-parse -q --verify refs/heads/wk/oplog
	assert_failure
	echo two >"$WT/two.txt"
	wait_until 30 puts_ge "$WT" 3
	sync_all "$WT" "$B" "$WT"
	# back from the copy: its history goes on, it does not start over
	G merge-base --is-ancestor "$keep" refs/heads/wk/oplog
	# a replica that starts now finds every op on the branch
	W init "$C" --remote "git:$WT/.git" --device c >/dev/null
	wk_mount "$C"
	sync_all "$C"
	has_file "$C/one.txt" one
	has_file "$C/two.txt" two
	has_file "$C/bee.txt" bee
	has_file "$B/two.txt" two
}

@test "a bare remote whose branch is deleted or reset gets every op again" {
	R=$T/r.git
	git init -q --bare "$R"
	W init "$A" --remote "git:$R" --device a >/dev/null
	wk_mount "$A"
	W init "$B" --remote "git:$R" --device b >/dev/null
	wk_mount "$B"
	echo one >"$A/one.txt"
	echo bee >"$B/bee.txt"
	wait_until 30 puts_ge "$A" 1
	wait_until 30 puts_ge "$B" 1
	sync_all "$A" "$B" "$A"
	root=$(git -C "$R" rev-list --max-parents=0 wk/oplog)
	git -C "$R" branch -q -D wk/oplog
	sync_all "$A" "$B"
	W init "$C" --remote "git:$R" --device c >/dev/null
	wk_mount "$C"
	sync_all "$C"
	has_file "$C/one.txt" one
	has_file "$C/bee.txt" bee
	# reset to the empty root: pushed again too, and a later op arrives
	git -C "$R" update-ref refs/heads/wk/oplog "$root"
	echo three >"$B/three.txt"
	wait_until 30 puts_ge "$B" 2
	sync_all "$B" "$A" "$C"
	has_file "$A/three.txt" three
	has_file "$C/three.txt" three
	has_file "$C/one.txt" one
	[ "$(git -C "$R" ls-tree --name-only wk/oplog -- ops/ | wc -l)" = 2 ]
	git -C "$R" fsck --no-progress
}

@test "init: makes the branch; refuses no repository; warns for an unreachable URL" {
	R=$T/r.git
	git init -q --bare "$R"
	run W init "$B" --remote "git:$R"
	assert_success
	assert_output --partial "created branch wk/oplog"
	git -C "$R" rev-parse -q --verify refs/heads/wk/oplog

	# git:. outside any repository: refused, nothing written
	mkdir "$T/norepo"
	run W init "$T/norepo" --remote git:.
	assert_failure 1
	assert_output --partial 'not inside a git repository'
	[ ! -e "$T/norepo/.wkfs" ]
	# --hooks only goes with git:.
	run W init "$C" --remote "git:$R" --hooks
	assert_failure
	[ ! -e "$C/.wkfs" ]
	# a URL that does not answer now: set up anyway, with a warning
	run W init "$C" --remote "git:git://127.0.0.1:9/nowhere.git"
	assert_success
	assert_output --partial 'the branch is made at the first sync'
	[ -e "$C/.wkfs/config.ini" ]
}

@test "hooks chain with the user's post-merge hook (core.hooksPath); remove restores it" {
	mkdir "$T/hooks"
	G config core.hooksPath "$T/hooks"
	printf '#!/bin/sh\necho merged >>"%s/marker"\n' "$T" >"$T/hooks/post-merge"
	chmod 0755 "$T/hooks/post-merge"
	cp -p "$T/hooks/post-merge" "$T/user-hook"
	run W init "$WT" --remote git:. --device w --hooks
	assert_success
	[ -x "$T/hooks/post-merge" ] && [ -x "$T/hooks/pre-push" ]
	[ ! -e "$WT/.git/hooks/post-merge" ]
	cmp "$T/hooks/post-merge.wkfs-chained" "$T/user-hook"
	# no fetch on a timer: only the hook can bring B's op in
	set_interval "$WT" 3600
	wk_mount "$WT"
	W init "$B" --remote "git:$WT/.git" --device b >/dev/null
	wk_mount "$B"
	sync_all "$WT"
	echo from-b >"$B/from-b.txt"
	wait_until 30 puts_ge "$B" 1
	sync_all "$B"
	G merge -q side -m 'merge side'
	wait_until 60 has_file "$T/marker" merged
	wait_until 60 has_file "$WT/from-b.txt" from-b

	# twice is once; remove leaves the user's hook as it was
	W hooks install "$WT" >/dev/null
	[ "$(grep -c "' sync --timeout" "$T/hooks/post-merge")" = 1 ]
	W hooks remove "$WT"
	cmp "$T/hooks/post-merge" "$T/user-hook"
	[ "$(stat -c %a "$T/hooks/post-merge")" = 755 ]
	[ ! -e "$T/hooks/post-merge.wkfs-chained" ]
	[ ! -e "$T/hooks/pre-push" ]
}

@test "50 pushes leave the mirror packed" {
	R=$T/r.git
	git init -q --bare "$R"
	W init "$B" --remote "git:$R" --device b >/dev/null
	wk_mount "$B"
	for i in $(seq 1 50); do
		echo "$i" >"$B/f$i"
		wait_until 30 puts_ge "$B" "$i"
		W sync "$B" --timeout 60 >/dev/null
	done
	[ "$(git -C "$R" rev-list --count wk/oplog)" -ge 50 ]
	m=$(echo "$WKFS_STATE_DIR"/git/*.git)
	loose=$(git --git-dir="$m" count-objects -v | sed -n 's/^count: //p')
	packs=$(git --git-dir="$m" count-objects -v | sed -n 's/^packs: //p')
	echo "loose $loose packs $packs" >&2
	# unpacked, 50 pushes leave about 8 objects each
	[ "$loose" -lt 150 ]
	[ "$packs" -ge 1 ]
	git --git-dir="$m" fsck --no-progress
}
