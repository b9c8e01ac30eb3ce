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

# chunks DIR HASH: "offset length" of each chunk of content HASH, from
# DIR's recipe cache (.wkfs/recipes/HASH: "WKRC", version, epoch, and in
# version 2 the relay's recipe chunk and depth, then the plain recipe).
chunks() {
	python3 - "$1/.wkfs/recipes/$2" <<'PY'
import sys
p = open(sys.argv[1], 'rb').read()
i = 13 if p[4] == 1 else 30
def varint():
    global i
    v = s = 0
    while True:
        b = p[i]; i += 1
        v |= (b & 0x7f) << s; s += 7
        if b < 0x80:
            return v
assert p[i] == 1
i += 1
off = 0
for _ in range(varint()):
    i += 16
    n = varint()
    print(off, n)
    off += n
PY
}

# rchunk DIR HASH: the relay's recipe chunk of content HASH, as DIR's
# recipe cache knows it (32 hex digits).
rchunk() { od -An -tx1 -j 13 -N 16 "$1/.wkfs/recipes/$2" | tr -d ' \n'; }

# recipe_bytes: the size of the recipe chunk the last syncd --once
# shipped ("" when none).
recipe_bytes() {
	sed -n 's/.*recipe chunk of \([0-9]*\) bytes.*/\1/p' <<<"$output" | tail -1
}

# one_edit POS [LIMIT [RLIMIT]]: flips the byte at POS of A's big
# through the mount, syncs A then B, checks B's copy and that each way
# stays under LIMIT bytes (192 KiB) and the recipe chunk under RLIMIT
# (200: a delta).
one_edit() {
	edit_through_mount flip "$A/big" "$1"
	sync_dir "$A"
	UP=$SENT A_OUT=$output
	local rec
	rec=$(recipe_bytes)
	sync_dir "$B"
	note "one-byte edit at $1: A sent $UP bytes (recipe chunk $rec bytes), B received $RECEIVED bytes"
	cmp "$A/big" "$B/.wkfs/objects/$(hash_of "$A" big)"
	[ "$UP" -lt "${2:-$((192 * 1024))}" ]
	[ "$RECEIVED" -lt "${2:-$((192 * 1024))}" ]
	[ -n "$rec" ] && [ "$rec" -lt "${3:-200}" ]
}

@test "one-byte edits of 256 MiB anywhere: under 192 KiB each way, a chain of deltas, a newcomer" {
	seed 256
	chunks "$A" "$H1" >"$T/chunks"
	[ "$(wc -l <"$T/chunks")" -gt 3000 ]
	# Under 192 KiB: the first and last bytes, one in the middle, and
	# inside a big chunk (the largest up to 180,000 bytes: with the plain
	# recipe, chunks over 117 KB went over).  Each in the middle of its
	# chunk (or where no cut point can be): an edit within 64 bytes
	# before a cut point moves it, below.
	read -r boff blen < <(awk '$2 <= 180000' "$T/chunks" | sort -k2,2n | tail -1)
	note "big chunk: $blen bytes at $boff"
	[ "$blen" -gt 117000 ]
	read -r moff mlen < <(awk -v m=$((128 * MIB)) '$1 <= m && m < $1 + $2' "$T/chunks")
	for pos in 0 $((256 * MIB - 1)) $((moff + mlen / 2)) \
		$((boff + blen / 2)); do
		one_edit "$pos"
	done
	# What whole chunks cannot bring under 192 KiB: an edit inside the
	# largest chunk (up to 256 KiB, however small the edit), and one on
	# the last byte of a chunk, which moves its cut point and so changes
	# two or three chunks.  Measured, and under the 1 MiB of issue 4.
	read -r loff llen < <(sort -k2,2n "$T/chunks" | tail -1)
	note "largest chunk: $llen bytes at $loff"
	read -r coff clen < <(sed -n 2000p "$T/chunks")
	one_edit $((loff + llen / 2)) "$MIB"
	one_edit $((coff + clen - 1)) "$MIB"
	# the last put's recipe chunk is a delta six deep
	grep -q "(delta, depth 6)" <<<"$A_OUT"

	# C never had any version: it gets them all, each whole and right,
	# the new ones mostly from the old ones.
	wk_init "$C"
	remote "$C"
	sync_dir "$C"
	note "newcomer C received $RECEIVED bytes"
	cmp "$A/big" "$C/.wkfs/objects/$(hash_of "$A" big)"
	[ "$RECEIVED" -lt $((257 * MIB)) ]
	run grep -c refusing <<<"$output"
	assert_output 0
}

# Not run by default (about 15 s an edit): WKFS_DELTA_POSITIONS=40 runs
# that many one-byte edits at random positions of one 256 MiB file (seed
# WKFS_DELTA_SEED, printed) and notes the bytes each way, with their
# median and maximum; no limit is asserted beyond issue 4's 1 MiB.
@test "one-byte edits at many random positions: the distribution" {
	[ -n "${WKFS_DELTA_POSITIONS:-}" ] || skip "set WKFS_DELTA_POSITIONS=N"
	local seed=${WKFS_DELTA_SEED:-$RANDOM} ups=() downs=() pos
	note "positions: $WKFS_DELTA_POSITIONS, seed $seed"
	seed 256
	RANDOM=$seed
	for ((i = 0; i < WKFS_DELTA_POSITIONS; i++)); do
		pos=$(((RANDOM << 30 | RANDOM << 15 | RANDOM) % (256 * MIB)))
		# past 16 deltas, a plain recipe (about 78 KB)
		one_edit "$pos" "$MIB" "$MIB"
		ups+=("$UP")
		downs+=("$RECEIVED")
	done
	summary() {
		sort -n | awk '{v[NR] = $1} END {
			printf "median %d, max %d, over 192 KiB: %d of %d\n",
				(NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2),
				v[NR], over, NR } $1 >= 196608 {over++}'
	}
	note "sent: $(printf '%s\n' "${ups[@]}" | summary)"
	note "received: $(printf '%s\n' "${downs[@]}" | summary)"
	cmp "$A/big" "$B/.wkfs/objects/$(hash_of "$A" big)"
}

@test "a damaged cached base recipe: the chain on the relay is followed; without it the put waits" {
	seed 4
	edit_through_mount flip "$A/big" 1000
	sync_dir "$A"
	sync_dir "$B"
	H2=$(hash_of "$A" big)
	cmp "$A/big" "$B/.wkfs/objects/$H2"

	# B's cached recipe of H2 is replaced, behind its back, by a valid
	# one of another content: the next delta does not fit it (-ESTALE),
	# so B follows the chain on the relay instead.
	cp "$B/.wkfs/recipes/$H1" "$B/.wkfs/recipes/$H2"
	edit_through_mount flip "$A/big" $((2 * MIB))
	sync_dir "$A"
	[ "$(recipe_bytes)" -lt 200 ]
	sync_dir "$B"
	assert_output --partial "not the one a delta recipe was made against"
	refute_output --partial refusing
	H3=$(hash_of "$A" big)
	cmp "$A/big" "$B/.wkfs/objects/$H3"
	cp "$A/big" "$T/v3"

	# A replica that has the older versions but no cached recipe at all
	# (restored from a backup, say) resolves the whole chain on the
	# relay: H3's delta, H2's, down to H1's plain recipe.
	wk_init "$C"
	remote "$C"
	mkdir -p "$C/.wkfs/objects"
	cp "$B/.wkfs/objects/$H1" "$B/.wkfs/objects/$H2" "$C/.wkfs/objects/"
	[ ! -e "$C/.wkfs/recipes/$H2" ]
	sync_dir "$C"
	refute_output --partial refusing
	cmp "$A/big" "$C/.wkfs/objects/$H3"
	# its cache says so: H3's recipe chunk is two deltas from a plain one
	[ "$(od -An -tu1 -j 29 -N 1 "$C/.wkfs/recipes/$H3" | tr -d ' ')" = 2 ]

	# Again, and this time the relay loses the chunk the chain needs
	# after it stored the put (a relay that loses chunks breaks the
	# protocol's promise; before, it refuses the put): B cannot resolve
	# the recipe, says so, and keeps the put without content, so its
	# mount does not apply it.
	cp "$B/.wkfs/recipes/$H1" "$B/.wkfs/recipes/$H3"
	edit_through_mount flip "$A/big" $((3 * MIB))
	sync_dir "$A"
	H4=$(hash_of "$A" big)
	lost=$(rchunk "$A" "$H3")
	rm "$DATA/chunks/Notes/${lost:0:2}/${lost:2}"
	sync_dir "$B"
	assert_output --partial "refusing the content of put"
	assert_output --partial "relay lacks a chunk of it (or of its recipe's chain)"
	[ ! -e "$B/.wkfs/objects/$H4" ]
	run sqlite3 "$B/.wkfs/wkfs.db" "SELECT count(*) FROM ops WHERE hex(hash) = upper('$H4')"
	assert_output 1
	wk_mount "$B" "$M" --no-syncd
	wait_until 60 cmp -s "$T/v3" "$M/big"
	run cmp -s "$A/big" "$M/big"
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

# first_chunk DIR HASH: the name of content HASH's first chunk, from
# DIR's recipe cache (version 2: the plain recipe from byte 30).
first_chunk() { od -An -tx1 -j 32 -N 16 "$1/.wkfs/recipes/$2" | tr -d ' \n'; }

@test "a relay that lost chunks A took to be there refuses A's push; A uploads them again" {
	seed 4
	edit_through_mount flip "$A/big" 1000
	sync_dir "$A"
	sync_dir "$B"
	H2=$(hash_of "$A" big)
	# the relay loses H2's recipe chunk, which A's next delta names as
	# its base, and a chunk of the file that the edit keeps
	lost=$(rchunk "$A" "$H2")
	[ "$(od -An -tu1 -j 30 -N 2 "$A/.wkfs/recipes/$H2" |
		awk '{ print ($1 == 1 && $2 < 128) }')" = 1 ]
	data=$(first_chunk "$A" "$H2")
	rm "$DATA/chunks/Notes/${lost:0:2}/${lost:2}" \
		"$DATA/chunks/Notes/${data:0:2}/${data:2}"

	edit_through_mount flip "$A/big" $((2 * MIB))
	sync_dir "$A"
	H3=$(hash_of "$A" big)
	# one clear line, then the push goes again, with every chunk the
	# relay lacks and a plain recipe
	assert_output --regexp "relay refused a push \(put [0-9a-f]{16}-[0-9a-f]{16} names chunk $lost, which this relay does not hold\): uploading every chunk it lacks again; retrying"
	[ "$(grep -c 'relay refused' <<<"$output")" = 1 ]
	assert_output --partial "(plain, depth 0)"
	[ -f "$DATA/chunks/Notes/${data:0:2}/${data:2}" ]
	[ "$(sqlite3 "$A/.wkfs/wkfs.db" "SELECT count(*) FROM ops WHERE shipped = 0 AND origin = 0")" = 0 ]

	sync_dir "$B"
	refute_output --partial refusing
	cmp "$A/big" "$B/.wkfs/objects/$H3"
}

@test "a put the relay refuses twice goes without its content; the ops after it go on" {
	seed 4
	P=$T/pause
	mkdir "$P"
	# A's next put is a delta against H1's recipe chunk: lost
	lost=$(rchunk "$A" "$H1")
	data=$(first_chunk "$A" "$H1")
	rm "$DATA/chunks/Notes/${lost:0:2}/${lost:2}"
	edit_and_more() {
		flip "$A/big" $((2 * MIB))
		echo after >"$A/after"
	}
	edit_through_mount edit_and_more
	H2=$(hash_of "$A" big)

	touch "$P/syncd.push"
	WKFS_PAUSE_DIR=$P timeout 300 "$SYNCD" "$A" --once >"$T/once" 2>&1 </dev/null 3>&- &
	pid=$!
	# the first session's PUSH: refused (the delta's base chunk)
	wait_until 60 test -e "$P/syncd.push.paused"
	touch "$P/syncd.push"
	rm "$P/syncd.push.paused"
	# the second one uploaded what the relay lacked; it loses another
	wait_until 60 test -e "$P/syncd.push.paused"
	rm "$DATA/chunks/Notes/${data:0:2}/${data:2}"
	rm "$P/syncd.push.paused"
	wait "$pid"
	run cat "$T/once"
	assert_line --partial "names chunk $lost, which this relay does not hold): uploading every chunk it lacks again; retrying"
	assert_line --partial "names chunk $data, which this relay does not hold): pushing put "
	assert_line --partial "the relay refused its content twice; pushed without it"
	[ "$(sqlite3 "$A/.wkfs/wkfs.db" "SELECT count(*) FROM ops WHERE shipped = 0 AND origin = 0")" = 0 ]

	# B: the put without content (waits for a later one), and the file
	# made after it
	sync_dir "$B"
	assert_output --partial "refusing the content of put"
	[ ! -e "$B/.wkfs/objects/$H2" ]
	cmp "$A/after" "$B/.wkfs/objects/$(hash_of "$A" after)"
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
