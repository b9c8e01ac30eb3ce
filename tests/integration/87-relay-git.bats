#!/usr/bin/env bats
# 87-relay-git: the relay keeps its history in git (wkfs-relay --git) and
# can be rebuilt from it (--rebuild-from-git).  Replicas are mounted in
# place with their own wkfs-syncd against a real relay on 127.0.0.1 that
# commits every second to a bare repository G; the folder Notes lives on
# branch wk/relay/Notes.  Every wait is a poll with a generous deadline.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=60
BR=wk/relay/Notes

setup() {
	T=$(realpath "$BATS_TEST_TMPDIR")
	G=$T/relay.git
	RELAY_GIT_ARGS=()
	replicas_setup start_git_relay
}

teardown() { replicas_teardown; }

# start_git_relay [ADDR:PORT]: the relay of relay.bash's start_relay, with
# --git G committing every second (plus RELAY_GIT_ARGS); each start logs to
# a new file (RLOG names the last).
start_git_relay() {
	local bind=${1:-127.0.0.1:0} n
	n=$(find "$T" -maxdepth 1 -name 'relay*.log' | wc -l)
	RLOG=$T/relay.$n.log
	"$RELAY" --data "$DATA" --bind "$bind" --verbose --git "$G" \
		--git-commit-interval 1 "${RELAY_GIT_ARGS[@]}" >"$RLOG" 2>&1 &
	RPID=$!
	if ! wait_until 30 grep -q '^listening on ' "$RLOG"; then
		cat "$RLOG" >&2
		return 1
	fi
	PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$RLOG")
}

g() { git --git-dir="$G" "$@"; }

# relay_ops: how many ops the relay holds for Notes.
relay_ops() {
	sqlite3 "$DATA/relay.db" "select count(*) from ops join folders f
		on f.id = ops.folder where f.name = 'Notes'"
}

# seg_ops GITDIR REF: "RECORDS DISTINCT" over every segment on REF: op
# records, and distinct (actor, hlc) among them (equal: no op twice).
seg_ops() {
	pyc '
import struct, subprocess, sys
gd, ref = sys.argv[1], sys.argv[2]
def git(*a):
    return subprocess.run(["git", "--git-dir=" + gd] + list(a),
                          capture_output=True, check=True).stdout
try:
    names = git("ls-tree", "-r", "--name-only", ref, "--", "ops").split()
except subprocess.CalledProcessError:
    print(0, 0); sys.exit(0)
n, ids = 0, set()
for p in names:
    b = git("cat-file", "blob", ref + ":" + p.decode())
    assert b[:8] == b"wkfsseg\x01", p
    actor = struct.unpack(">Q", b[8:16])[0]
    i = 16
    while i < len(b):
        hlc, ln = struct.unpack(">QI", b[i:i + 12])
        i += 12 + ln
        n += 1
        ids.add((actor, hlc))
    assert i == len(b), p
print(n, len(ids))
' "$1" "$2"
}

# committed_all [GITDIR]: the branch holds every op of the relay, once.
committed_all() {
	local want got
	want=$(relay_ops)
	got=$(seg_ops "${1:-$G}" "$BR") || return 1
	[ "$want" -gt 0 ] && [ "$got" = "$want $want" ]
}

# settled N: A's log has N puts, the relay every op of A's log, and the
# branch every op of the relay.
_settled() {
	local n
	_count_ge "$1" put '*' || return 1
	n=$(ops_in "$A")
	[ "$(relay_ops)" = "$n" ] && committed_all
}
settled() { D=$A wait_until 60 _settled "$1"; }

# tree_chunks GITDIR: the chunk names on the branch, sorted.
tree_chunks() {
	git --git-dir="$1" ls-tree -r --name-only "$BR" -- chunks |
		sed 's|^chunks/\(..\)/|\1|' | sort
}

# store_chunks: the chunk names in the relay's store for Notes, sorted.
store_chunks() {
	find "$DATA/chunks/Notes" -type f ! -name '.*' -printf '%h%f\n' |
		sed 's|.*/||' | sort
}

# ops_in DIR: how many ops DIR's oplog holds.
ops_in() { D=$1 op_count '*' '*' 0; }

# only_adds OLD NEW: each commit in OLD..NEW adds files and does nothing
# else (a segment written again would be an empty commit or a change).
only_adds() {
	local c changes
	for c in $(g rev-list "$1..$2"); do
		changes=$(g diff-tree --no-renames -r --name-status "$c^" "$c")
		[ -n "$changes" ] || { echo "empty commit $c" >&2; return 1; }
		if grep -v '^A' <<<"$changes" >&2; then
			echo "commit $c changes files" >&2
			return 1
		fi
	done
}

no_conflict_copies() {
	local found
	found=$(find "$@" -path '*/.wkfs' -prune -o -name '*.conflict-*' -print)
	[ -z "$found" ] || { echo "conflict copies: $found" >&2; return 1; }
}

@test "commits of ops and chunks appear on the folder's branch, fast-forward only" {
	replica a
	replica b
	mkdir -p "$A/docs"
	echo hello >"$A/docs/note.txt"
	head -c 400000 /dev/urandom >"$A/big.bin"
	echo from-b >"$B/b.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	wait_until 30 committed_all
	first=$(g rev-parse "$BR")

	# the layout of a git remote's branch: ops/<actor>/<hlc>.seg, chunks/
	run g ls-tree -r --name-only "$BR"
	assert_success
	[ "$(grep -cE '^ops/[0-9a-f]{16}/[0-9a-f]{16}\.seg$' <<<"$output")" -ge 2 ]
	[ "$(grep -vcE '^(ops/[0-9a-f]{16}/[0-9a-f]{16}\.seg|chunks/[0-9a-f]{2}/[0-9a-f]{30})$' <<<"$output")" = 0 ]
	# one actor directory per replica
	[ "$(g ls-tree --name-only "$BR:ops" | wc -l)" = 2 ]
	# every chunk the store has (big.bin is several plus its recipe)
	[ "$(store_chunks | wc -l)" -ge 3 ]
	[ "$(tree_chunks "$G")" = "$(store_chunks)" ]

	# more work: new commits on top of the first, never beside it
	echo again >>"$B/docs/note.txt"
	rm "$A/b.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	wait_until 30 committed_all
	[ "$(g rev-parse "$BR")" != "$first" ]
	g merge-base --is-ancestor "$first" "$BR"
	only_adds "$first" "$BR"
	[ "$(g rev-list --count --min-parents=2 "$BR")" = 0 ]
	[ "$(g rev-list --count --max-parents=0 "$BR")" = 1 ]
	run g fsck --strict
	assert_success
	[ "$(tree_chunks "$G")" = "$(store_chunks)" ]
}

@test "a restarted relay does not write committed segments again" {
	replica a
	for i in 1 2 3; do echo "$i" >"$A/f$i"; done
	settled 3
	old=$(g rev-parse "$BR")
	commits=$(g rev-list --count "$BR")
	stop_relay
	# a clean stop commits what came last; nothing was left
	[ "$(g rev-list --count "$BR")" = "$commits" ]
	# as if it died between moving the branch and recording it
	sqlite3 "$DATA/relay.db" "delete from folder_meta where key = 'git_seq'"
	start_git_relay "127.0.0.1:$PORT"
	echo 4 >"$A/f4"
	settled 4
	# every commit since only added files: no segment was written again
	[ "$(g rev-list --count "$BR")" -gt "$commits" ]
	only_adds "$old" "$BR"
	run g fsck --strict
	assert_success
}

@test "--git-remote pushes the folder branches; a failed push is retried" {
	stop_relay
	# the remote does not exist yet: pushes fail, the relay goes on
	RELAY_GIT_ARGS=(--git-remote "$T/backup.git" --git-push-interval 1)
	start_git_relay "127.0.0.1:$PORT"
	replica a
	echo one >"$A/one"
	head -c 200000 /dev/urandom >"$A/two"
	settled 2
	wait_until 30 grep -q "git: push to $T/backup.git failed" "$RLOG"
	running "$RPID"
	git init -q --bare "$T/backup.git"
	_pushed() {
		[ "$(git --git-dir="$T/backup.git" rev-parse -q --verify "$BR")" = \
			"$(g rev-parse "$BR")" ]
	}
	wait_until 30 _pushed
	committed_all "$T/backup.git"
	[ "$(tree_chunks "$T/backup.git")" = "$(store_chunks)" ]
	git --git-dir="$T/backup.git" fsck --strict
	# and later commits follow
	echo three >"$A/three"
	settled 3
	wait_until 30 _pushed
	committed_all "$T/backup.git"
}

@test "a relay rebuilt from git serves every op; an old replica converges" {
	replica a
	replica b
	mkdir "$A/d"
	echo alpha >"$A/d/alpha"
	head -c 500000 /dev/urandom >"$A/big.bin"
	ln -s d/alpha "$A/link"
	echo beta >"$B/beta"
	# A has seen B's op: its cursor is one of the old relay's seqs
	wait_same "$SYNC_WAIT" "$A" "$B"
	settled 3
	# from now on the relay commits nothing: what comes next dies with it
	stop_relay
	RELAY_GIT_ARGS=(--git-commit-interval 86400)
	start_git_relay "127.0.0.1:$PORT"
	echo late >"$A/late"
	wait_same "$SYNC_WAIT" "$A" "$B"
	stop_syncd a
	stop_syncd b
	before=$(ops_in "$A")
	old_head=$(relay_ops)
	kill -9 "$RPID"
	wait "$RPID" 2>/dev/null || true
	RPID=

	run --separate-stderr "$RELAY" --data "$T/data2" --rebuild-from-git "$G"
	assert_success
	[ "${#lines[@]}" = 1 ]
	[[ ${lines[0]} =~ ^Notes$'\t'[0-9a-f]{64}$ ]]
	TOK=${lines[0]#*$'\t'}
	DATA=$T/data2
	[ "$(store_chunks)" = "$(tree_chunks "$G")" ]
	[ "$(relay_ops)" -lt "$old_head" ] # late's ops were never committed
	RELAY_GIT_ARGS=()
	start_git_relay "127.0.0.1:$PORT"

	# a newcomer gets everything the rebuilt relay has
	replica c
	wait_until "$SYNC_WAIT" cmp "$A/big.bin" "$C/big.bin"
	[ "$(cat "$C/beta")" = beta ]

	# A comes back with a cursor of the old relay (and the new token): it
	# is told to start over and pushes late again
	wk_umount "$A"
	sed -i "s/^token = .*/token = $TOK/" "$A/.wkfs/config.ini"
	replica_mount a
	start_syncd a
	wait_until 30 grep -q 'before this relay was rebuilt from git; starting over' "$T/a.syncd.log"
	echo from-a >"$A/new-a"
	echo from-c >"$C/new-c"
	wait_same "$SYNC_WAIT" "$A" "$C"
	[ "$(cat "$C/late")" = late ]
	no_conflict_copies "$A" "$C"
	# nothing applied twice: A holds its old ops and the new files' only
	_same_count() {
		[ "$(ops_in "$A")" = "$(ops_in "$C")" ] &&
			[ "$(ops_in "$A")" = "$(relay_ops)" ]
	}
	wait_until 30 _same_count
	[ "$(ops_in "$A")" -gt "$before" ]
	[ "$(ops_in "$A")" = "$((before + $(relay_ops) - old_head))" ]
}

@test "--rebuild-from-git refuses a non-repository, a used data directory, a bad chunk" {
	mkdir "$T/notgit"
	run --separate-stderr "$RELAY" --data "$T/new" --rebuild-from-git "$T/notgit"
	assert_one_line_error
	[[ $stderr == *"not a git repository"* ]]
	[ ! -e "$T/new" ]
	[ -z "$(find "$T" -maxdepth 1 -name 'new.rebuild-*')" ]

	# DATA has a relay.db (the running relay's)
	git init -q --bare "$T/empty.git"
	run --separate-stderr "$RELAY" --data "$DATA" --rebuild-from-git "$G"
	assert_one_line_error
	[[ $stderr == *"relay.db exists"* ]]
	run --separate-stderr "$RELAY" --data "$T/new" --rebuild-from-git "$T/empty.git"
	assert_one_line_error
	[[ $stderr == *"no branch wk/relay/FOLDER"* ]]
	[ ! -e "$T/new" ]
	# a chunk that does not hash to its name fails the whole rebuild
	e() { git --git-dir="$T/empty.git" "$@"; }
	oid=$(echo junk | e hash-object -w --stdin)
	GIT_INDEX_FILE=$T/idx e update-index --add --cacheinfo \
		"100644,$oid,chunks/ab/0123456789abcdef0123456789abcd"
	tree=$(GIT_INDEX_FILE=$T/idx e write-tree)
	e update-ref refs/heads/wk/relay/Bad \
		"$(e -c user.name=t -c user.email=t@t commit-tree "$tree" -m bad)"
	run --separate-stderr "$RELAY" --data "$T/new" --rebuild-from-git "$T/empty.git"
	assert_one_line_error
	[[ $stderr == *"does not hash to its name"* ]]
	[ ! -e "$T/new" ]
	[ -z "$(find "$T" -maxdepth 1 -name 'new.rebuild-*')" ]
	# a non-repository as --git is refused at start
	run --separate-stderr "$RELAY" --data "$T/d3" --bind 127.0.0.1:0 --git "$T/notgit"
	assert_one_line_error
	[[ $stderr == *"not a git repository"* ]]
}

@test "a git: replica reading a folder's branch has the relay replicas' files" {
	export WKFS_STATE_DIR=$T/state
	replica a
	mkdir -p "$A/d/e"
	echo x >"$A/d/e/x"
	head -c 300000 /dev/urandom >"$A/big.bin"
	ln -s d/e/x "$A/link"
	settled 2
	D=$T/d
	mkdir "$D"
	WK_DIRS+=("$D")
	"$WKFS_BIN" init "$D" --remote "git:$G" --device d >/dev/null 3>&-
	sed -i "s|^branch = .*|branch = $BR|" "$D/.wkfs/config.ini"
	grep -qxF "branch = $BR" "$D/.wkfs/config.ini"
	wk_mount "$D"
	"$WKFS_BIN" sync "$D" --timeout 60 </dev/null >/dev/null 3>&-
	wait_until 30 same_trees "$A" "$D"
	cmp "$A/big.bin" "$D/big.bin"
}
