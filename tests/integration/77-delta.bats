#!/usr/bin/env bats
# 77-delta: an edit of a big file costs its new chunks on the wire, not
# the file.  Replicas A and B (and C) sync through a real wkfs-relay on
# 127.0.0.1 with wkfs-syncd --once, which ends by printing the message
# bytes it sent and received.  A records its edits through a mount; B is
# not mounted unless a test says so (mounts use --no-syncd: these tests
# drive wkfs-syncd by hand), so its object store shows what
# arrived.  The sender asks the relay only about chunks no cached recipe
# of the current relay epoch has; the receiver reads the chunks it already
# holds from its old version (an object, or its file in DIR).

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd
MIB=1048576

load relay

# remote DIR [FOLDER] [TOKEN]: points DIR's config at a relay folder.
remote() {
	printf 'url = ws://127.0.0.1:%s/%s\ntoken = %s\n' "$PORT" \
		"${2:-Notes}" "${3:-$TOK}" >>"$1/.wkfs/config.ini"
}

syncd_once() { timeout 300 "$SYNCD" "$1" --once </dev/null 3>&-; }

# sent / received: the counts syncd --once printed last (in $output).
sent() { sed -n 's/^sent \([0-9]*\) bytes, received [0-9]* bytes$/\1/p' <<<"$output"; }
received() { sed -n 's/^sent [0-9]* bytes, received \([0-9]*\) bytes$/\1/p' <<<"$output"; }

# sync DIR: syncd --once, which must succeed; sets SENT and RECEIVED.
sync_dir() {
	run syncd_once "$1"
	assert_success
	SENT=$(sent)
	RECEIVED=$(received)
	[ -n "$SENT" ] && [ -n "$RECEIVED" ]
}

# note TEXT: a line in the TAP output (and in $BATS_TEST_TMPDIR/notes).
note() {
	echo "# $*" >&3
	echo "$*" >>"$BATS_TEST_TMPDIR/notes"
}

# flip FILE OFFSET: changes the byte at OFFSET (to a different value).
flip() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\x$(printf %02x $(((b + 1) % 256)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# hash_of DIR PATH: the hash of PATH's newest put in DIR's oplog.
hash_of() { D=$1 op_field put "$2" hash; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

setup() {
	DATA=$BATS_TEST_TMPDIR/data
	RLOG=$BATS_TEST_TMPDIR/relay.log
	umask 022
	T=$(realpath "$BATS_TEST_TMPDIR")
	A=$T/a B=$T/b C=$T/c M=$T/m
	mkdir -p "$A" "$B" "$C" "$M"
	D=$A
	WK_DIRS+=("$A" "$B" "$C")
	start_relay
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
}

teardown() {
	wk_teardown
	stop_relay
	if grep -E 'Sanitizer|runtime error' "$RLOG" >&2; then
		return 1
	fi
}

# seed SIZE_MIB: A and B (not mounted) share $A/big of random bytes.
seed() {
	head -c "$(($1 * MIB))" /dev/urandom >"$A/big"
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	sync_dir "$A"
	sync_dir "$B"
	H1=$(hash_of "$A" big)
	cmp "$A/big" "$B/.wkfs/objects/$H1"
}

# edit_through_mount CMD...: runs CMD with A mounted, until A's oplog
# has one more put of big.
edit_through_mount() {
	local n
	n=$(op_count put big)
	wk_mount "$A" --no-syncd
	"$@"
	wait_until 60 _count_ge "$((n + 1))" put big
	wk_umount "$A"
}

@test "a one-byte edit in 256 MiB: under 1 MiB each way, and a newcomer gets it right" {
	seed 256

	edit_through_mount flip "$A/big" $((128 * MIB + 12345))
	H2=$(hash_of "$A" big)
	[ "$H2" != "$H1" ]
	t0=$(now_ms)
	sync_dir "$A"
	up=$SENT
	sync_dir "$B"
	down=$RECEIVED
	t1=$(now_ms)
	note "one-byte edit of 256 MiB: A sent $up bytes, B received $down bytes, round $((t1 - t0)) ms"
	cmp "$A/big" "$B/.wkfs/objects/$H2"
	[ "$up" -lt "$MIB" ]
	[ "$down" -lt "$MIB" ]

	# C never had the old version: it gets both, each whole and right,
	# the new one mostly from the old one.
	wk_init "$C"
	remote "$C"
	sync_dir "$C"
	note "newcomer C received $RECEIVED bytes"
	cmp "$A/big" "$C/.wkfs/objects/$H2"
	[ "$RECEIVED" -lt $((257 * MIB)) ]
	[ "$RECEIVED" -gt $((256 * MIB)) ]
	run cmp -s "$A/big" "$C/.wkfs/objects/$H1"
	assert_failure
}

@test "100 bytes inserted near the start: under 1 MiB each way" {
	seed 64
	cp "$A/big" "$T/old"

	# in place, through the mount: same node, so the put's base is the
	# old version
	insert() {
		{
			head -c 5000 "$T/old"
			head -c 100 /dev/urandom
			tail -c +5001 "$T/old"
		} >"$A/big"
	}
	edit_through_mount insert
	[ "$(stat -c %s "$A/big")" = $((64 * MIB + 100)) ]
	sync_dir "$A"
	up=$SENT
	sync_dir "$B"
	down=$RECEIVED
	note "100-byte insertion in 64 MiB: A sent $up bytes, B received $down bytes"
	cmp "$A/big" "$B/.wkfs/objects/$(hash_of "$A" big)"
	[ "$up" -lt "$MIB" ]
	[ "$down" -lt "$MIB" ]
}

@test "a relay that lost its chunks gets them all again, and B the right content" {
	seed 4
	# A's cursor moves past its own ops only at its next session
	sync_dir "$A"

	# a new, empty relay on the same address
	stop_relay
	rm -rf "$DATA"
	start_relay "127.0.0.1:$PORT"
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
	sed -i "s/^token = .*/token = $TOK/" "$A/.wkfs/config.ini" \
		"$B/.wkfs/config.ini"

	edit_through_mount flip "$A/big" $((2 * MIB))
	sync_dir "$A"
	assert_output --partial "starting over"
	# every chunk went again, not only the changed one
	[ "$SENT" -gt $((4 * MIB)) ]
	sync_dir "$B"
	cmp "$A/big" "$B/.wkfs/objects/$(hash_of "$A" big)"
	run grep -c refusing <<<"$output"
	assert_output 0
}

@test "another relay folder: what the old one had is not taken for granted" {
	seed 4
	TOK2=$("$RELAY" --data "$DATA" folder add Other)
	edit_through_mount flip "$A/big" 100
	sed -i "s|/Notes$|/Other|; s/^token = .*/token = $TOK2/" \
		"$A/.wkfs/config.ini"
	sync_dir "$A"
	[ "$SENT" -gt $((4 * MIB)) ]

	wk_init "$C"
	remote "$C" Other "$TOK2"
	sync_dir "$C"
	cmp "$A/big" "$C/.wkfs/objects/$(hash_of "$A" big)"
}

@test "a local copy that no longer matches is fetched, not used" {
	seed 4
	# B's old version is damaged behind its back, in two places
	chmod u+w "$B/.wkfs/objects/$H1"
	flip "$B/.wkfs/objects/$H1" 1000
	flip "$B/.wkfs/objects/$H1" $((3 * MIB))

	edit_through_mount flip "$A/big" $((2 * MIB))
	sync_dir "$A"
	sync_dir "$B"
	refute_output --partial refusing
	cmp "$A/big" "$B/.wkfs/objects/$(hash_of "$A" big)"
	# the damaged chunks and the edited one, not the whole file
	[ "$RECEIVED" -lt $((2 * MIB)) ]
}

@test "a mounted B finds the old chunks in its own file" {
	seed 4
	wk_mount "$B" "$M" --no-syncd
	sync_dir "$B" # asks the mount to apply
	wait_until 60 cmp -s "$A/big" "$M/big"
	# neither the old object nor any cached recipe: only the file is left
	rm -rf "$B/.wkfs/objects/$H1" "$B/.wkfs/recipes"

	edit_through_mount flip "$A/big" $((3 * MIB))
	sync_dir "$A"
	sync_dir "$B"
	note "mounted B, chunks from its file: received $RECEIVED bytes"
	[ "$RECEIVED" -lt "$MIB" ]
	wait_until 60 cmp -s "$A/big" "$M/big"
}
