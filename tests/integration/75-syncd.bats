#!/usr/bin/env bats
# 75-syncd: wkfs-syncd between two replicas through a real wkfs-relay on
# 127.0.0.1.  A is written (mounted, or through init's scan), B is not
# mounted, so B's database and object store show what arrived without
# anyone applying it.  Mounts here use --no-syncd: these tests drive
# wkfs-syncd by hand (85-commands.bats covers the daemon the mount starts).

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

# remote DIR [TOKEN]: points DIR's config at the relay's folder Notes
# (init leaves [remote] as the last section).
remote() {
	printf 'url = ws://127.0.0.1:%s/Notes\ntoken = %s\n' "$PORT" \
		"${2:-$TOK}" >>"$1/.wkfs/config.ini"
}

# sq DIR SQL: a query on DIR's (unmounted) database.
sq() { sqlite3 "$1/.wkfs/wkfs.db" "$2"; }

# rundir_of DIR: the runtime directory whose "path" names DIR, if any.
rundir_of() {
	local base d
	if [ "$(id -u)" = 0 ]; then base=/run/wkfs
	elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then base=$XDG_RUNTIME_DIR/wkfs
	else base=/tmp/wkfs-$(id -u); fi
	for d in "$base"/*/; do
		[ "$(cat "$d/path" 2>/dev/null)" = "$1" ] && echo "$d"
	done
	return 0
}

syncd_once() { timeout 60 "$SYNCD" "$1" --once </dev/null 3>&-; }

setup() {
	DATA=$BATS_TEST_TMPDIR/data
	RLOG=$BATS_TEST_TMPDIR/relay.log
	umask 022
	mkdir -p "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	A=$(realpath "$BATS_TEST_TMPDIR/a")
	B=$(realpath "$BATS_TEST_TMPDIR/b")
	D=$A
	WK_DIRS+=("$A" "$B")
	start_relay
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
}

teardown() {
	local p
	for p in "${WK_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wk_teardown
	stop_relay
	if grep -E 'Sanitizer|runtime error' "$RLOG" >&2; then
		return 1
	fi
}

# B holds, for each PATH, A's newest put of PATH as an object with A's bytes.
assert_objects_match() {
	local p h
	for p in "$@"; do
		h=$(op_field put "$p" hash)
		[ -n "$h" ] || { echo "no put for $p" >&2; return 1; }
		cmp "$A/$p" "$B/.wkfs/objects/$h" || return 1
	done
}

@test "A's ops and contents reach B, once and only once" {
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	wk_mount "$A" --no-syncd
	echo hello >"$A/small"
	mkdir "$A/sub"
	echo deep >"$A/sub/y"
	head -c 1500000 /dev/urandom >"$A/big"
	ln -s small "$A/link"
	wait_until "$WK_TIMEOUT" [ "$(op_count put big)" -ge 1 ]
	wait_until "$WK_TIMEOUT" [ "$(op_count put sub/y)" -ge 1 ]

	run syncd_once "$A"
	assert_success
	run syncd_once "$B"
	assert_success

	n=$(wkfs_ops "$A" | wc -l)
	assert_equal "$(sq "$B" 'select count(*) from ops where origin = 1')" "$n"
	assert_equal "$(sq "$B" 'select count(*) from ops where origin = 0')" 0
	assert_objects_match small sub/y big
	# the big file went as several chunks and a recipe
	[ "$(find "$DATA/chunks/Notes" -type f | wc -l)" -ge 4 ]

	# again: nothing new anywhere
	run syncd_once "$A"
	assert_success
	run syncd_once "$B"
	assert_success
	assert_equal "$(sq "$B" 'select count(*) from ops')" "$n"
	assert_equal "$(sq "$B" "select value from meta where key = 'relay_cursor'")" "$n"
	# a clean exit leaves nothing in the runtime directory of unmounted B
	assert_equal "$(rundir_of "$B")" ""
}

@test "a wrong token fails in one line naming the relay's reason" {
	wk_init "$B"
	remote "$B" 0000000000000000000000000000000000000000000000000000000000000000
	run syncd_once "$B"
	assert_failure
	assert_equal "${#lines[@]}" 1
	assert_output --partial "auth"
}

@test "relay down: --once fails clearly, nothing is lost, later it ships" {
	echo one >"$A/one"
	head -c 400000 /dev/urandom >"$A/two"
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	stop_relay
	run syncd_once "$A"
	assert_failure
	assert_output --partial "cannot connect"
	assert_equal "$(sq "$A" 'select count(*) from ops where shipped = 0')" \
		"$(sq "$A" 'select count(*) from ops')"

	start_relay "127.0.0.1:$PORT"
	run syncd_once "$A"
	assert_success
	assert_equal "$(sq "$A" 'select count(*) from ops where shipped = 0')" 0
	run syncd_once "$B"
	assert_success
	assert_equal "$(sq "$B" 'select count(*) from ops where origin = 1')" \
		"$(sq "$A" 'select count(*) from ops')"
	assert_objects_match one two
}

@test "no [remote]: local only, exit 0" {
	wk_init "$B"
	run syncd_once "$B"
	assert_success
	assert_output --partial "local only"
}

@test "one daemon per folder; it takes live ops; a killed one leaves no lock" {
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	"$SYNCD" "$B" -f </dev/null >"$BATS_TEST_TMPDIR/b.log" 2>&1 3>&- &
	bpid=$!
	WK_PIDS+=("$bpid")
	wait_until 10 grep -q connected "$BATS_TEST_TMPDIR/b.log"
	run syncd_once "$B"
	assert_failure
	assert_output --partial "already running (pid $bpid)"

	# live: A's ops reach the running daemon without a restart
	wk_mount "$A" --no-syncd
	echo live >"$A/live"
	wait_until "$WK_TIMEOUT" [ "$(op_count put live)" -ge 1 ]
	run syncd_once "$A"
	assert_success
	n=$(wkfs_ops "$A" | wc -l)
	wait_until 10 [ "$(sq "$B" 'select count(*) from ops where origin = 1')" = "$n" ]
	assert_objects_match live

	kill -9 "$bpid"
	wait "$bpid" 2>/dev/null || true
	run syncd_once "$B"
	assert_success
}

@test "a file changed before its put shipped: no content, a later put has it" {
	echo first >"$A/f"
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	# changed behind wkfs's back: the recorded put no longer matches
	echo second >"$A/f"
	run syncd_once "$A"
	assert_success
	assert_output --partial "content not shipped"
	run syncd_once "$B"
	assert_success
	assert_output --partial "did not ship it"
	h1=$(sq "$B" "select lower(hex(hash)) from ops where kind = 3")
	[ ! -e "$B/.wkfs/objects/$h1" ]

	# the next mount's scan records the change as a put, which ships
	wk_mount "$A" --no-syncd
	wk_umount "$A"
	run syncd_once "$A"
	assert_success
	run syncd_once "$B"
	assert_success
	assert_objects_match f
}

@test "a chunk that does not match its name is refused, the op kept" {
	echo tampered >"$A/t"
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	run syncd_once "$A"
	assert_success
	h=$(op_field put t hash)
	stored=$DATA/chunks/Notes/${h:0:2}/${h:2}
	[ -f "$stored" ]
	chmod u+w "$stored" "$(dirname "$stored")"
	echo evil >"$stored"
	run syncd_once "$B"
	assert_success
	assert_output --partial "refusing the content"
	[ ! -e "$B/.wkfs/objects/$h" ]
	assert_equal "$(sq "$B" "select count(*) from ops where kind = 3 and lower(hex(hash)) = '$h'")" 1
}

@test "a mounted B gets the ops too and is asked to apply them" {
	echo hi >"$A/hi"
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	run syncd_once "$A"
	assert_success
	wk_mount "$B" --no-syncd
	# until the mount knows `apply`, it answers "unknown request": fine
	run syncd_once "$B"
	assert_success
	n=$(sq "$A" 'select count(*) from ops')
	assert_equal "$("$WKFS_BIN" log "$B" --json | grep -c '"origin":"remote"')" "$n"
	wk_umount "$B"
	# Applied: the content is in B's file; the store drops what it
	# applied (lib/mat_gc.h).
	cmp "$A/hi" "$B/hi"
	h=$(op_field put hi hash)
	[ ! -e "$B/.wkfs/objects/$h" ]
}

@test "a relay that lost its history: start over, push everything again" {
	echo keep >"$A/keep"
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	run syncd_once "$A"
	assert_success
	run syncd_once "$B"
	assert_success
	# A's cursor moves past its own ops only at its next session
	run syncd_once "$A"
	assert_success
	n=$(sq "$A" 'select count(*) from ops')
	assert_equal "$(sq "$A" "select value from meta where key = 'relay_cursor'")" "$n"

	# a new, empty relay on the same address
	stop_relay
	rm -rf "$DATA"
	start_relay "127.0.0.1:$PORT"
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
	sed -i "s/^token = .*/token = $TOK/" "$A/.wkfs/config.ini" \
		"$B/.wkfs/config.ini"
	run syncd_once "$A"
	assert_success
	assert_output --partial "starting over"
	run syncd_once "$B"
	assert_success
	assert_equal "$(sq "$B" 'select count(*) from ops')" "$n"

	# a newcomer gets everything from the new relay
	C=$(realpath "$BATS_TEST_TMPDIR")/c
	mkdir "$C"
	wk_init "$C"
	remote "$C"
	run syncd_once "$C"
	assert_success
	assert_equal "$(sq "$C" 'select count(*) from ops where origin = 1')" "$n"
	cmp "$A/keep" "$C/.wkfs/objects/$(op_field put keep hash)"
}

# conflict_copies DIR: the conflict copies of notes.txt in DIR.
conflict_copies() { (cd "$1" && ls -d notes.conflict-* 2>/dev/null); }

# last_put_time DIR PATH DEVICE: time of the last put of PATH made by DEVICE.
last_put_time() {
	"$WKFS_BIN" log "$1" --json | "$PY" -c '
import json, sys
ops = [json.loads(l) for l in sys.stdin if l.strip()]
print([o["time"] for o in ops if o["kind"] == "put" and
       o["path"] == sys.argv[1] and o["device"] == sys.argv[2]][-1])
' "$2" "$3"
}

# stamp TIME: "2026-11-23T15:04:09.253Z" as a conflict name's time part.
stamp() { echo "$1" | sed -E 's/^(....)-(..)-(..)T(..):(..):(..).*/\1\2\3-\4\5\6/'; }

@test "devices laptop and desk: a concurrent edit gets one conflict name on both" {
	echo base >"$A/notes.txt"
	wk_init "$A" --device laptop
	wk_init "$B" --device desk
	remote "$A"
	remote "$B"
	wk_mount "$A" --no-syncd
	wk_mount "$B" --no-syncd
	run syncd_once "$A"
	assert_success
	run syncd_once "$B"
	assert_success
	wait_until 30 eval '[ "$(cat "$B/notes.txt" 2>/dev/null)" = base ]'

	# concurrent edits; B sees both and makes the conflict copy
	echo from-laptop >"$A/notes.txt"
	echo from-desk >"$B/notes.txt"
	D=$A wait_op put notes.txt 2
	D=$B wait_op put notes.txt 1
	run syncd_once "$A"
	assert_success
	run syncd_once "$B"
	assert_success
	wait_until 30 eval '[ -n "$(conflict_copies "$B")" ]'
	copy=$(conflict_copies "$B")
	[[ $copy =~ ^notes\.conflict-[0-9]{8}-[0-9]{6}-(laptop|desk)\.txt$ ]]
	loser=${BASH_REMATCH[1]}
	t=$(last_put_time "$B" notes.txt "$loser")
	assert_equal "$copy" "notes.conflict-$(stamp "$t")-$loser.txt"

	# The laptop is renamed before it hears of the conflict: its old
	# edit keeps the name it was made under, new ops carry the new one.
	# (A holds no conflict copy while it remounts.)
	wk_umount "$A"
	sed -i 's/^name = laptop$/name = laptop2/' "$A/.wkfs/config.ini"
	grep -q '^name = laptop2$' "$A/.wkfs/config.ini"
	wk_mount "$A" --no-syncd
	echo later >"$A/later.txt"
	D=$A wait_op put later.txt
	run syncd_once "$A"
	assert_success
	run syncd_once "$B"
	assert_success
	wait_until 30 eval '[ -n "$(conflict_copies "$A")" ]'
	wait_until 30 [ -f "$B/later.txt" ]

	# one copy, the same name on both, named by the losing op's device
	assert_equal "$(conflict_copies "$A")" "$copy"
	assert_equal "$(conflict_copies "$B")" "$copy"
	assert_equal "$(cat "$A/$copy")" "from-$loser"
	assert_equal "$(cat "$B/$copy")" "from-$loser"
	assert_equal "$(cat "$A/notes.txt")" "$(cat "$B/notes.txt")"
	assert_equal "$(D=$B op_field put later.txt device)" laptop2

	# devices travelled both ways: each log names every maker
	for d in "$A" "$B"; do
		log=$("$WKFS_BIN" log "$d" --json)
		echo "$log" | grep -q '"device":"laptop","kind":"put"'
		echo "$log" | grep -q '"device":"laptop2","kind":"put"'
		echo "$log" | grep -q '"device":"desk","kind":"put"'
	done
	"$WKFS_BIN" log "$A" | grep -qE '^[0-9]+ [^ ]+ desk put +notes\.txt '
}

@test "without a [device] name, ops carry the short host name, made plain" {
	echo x >"$A/x"
	wk_init "$A"
	want=$(hostname | cut -d. -f1 | sed -E 's/[^A-Za-z0-9._-]+/-/g' |
		cut -c1-32 | sed -E 's/^[.-]+//; s/[.-]+$//')
	[ -n "$want" ]
	assert_equal "$(D=$A op_field put x device)" "$want"
}

@test "a put over the relay's put-bytes goes without its content; the rest ships" {
	stop_relay
	start_relay 127.0.0.1:0 --limit put-bytes=100K
	head -c 300000 /dev/urandom >"$A/big"
	echo small >"$A/small"
	wk_init "$A"
	wk_init "$B"
	remote "$A"
	remote "$B"
	run syncd_once "$A"
	assert_success
	assert_output --partial 'over the limit put-bytes=102400'
	assert_output --partial 'without its content'
	run syncd_once "$B"
	assert_success
	assert_output --partial "its sender did not ship it"
	h=$(op_field put small hash)
	[ -e "$B/.wkfs/objects/$h" ]
}

@test "a put naming a file over 16 GiB is refused before anything is fetched" {
	stop_relay
	start_relay 127.0.0.1:0 --limit put-bytes=0
	RT=$WKFS_BUILD/wkfs-relay-test
	head -c 65536 /dev/urandom >"$BATS_TEST_TMPDIR/c"
	name=$("$RT" name "$BATS_TEST_TMPDIR/c" | cut -d' ' -f2)
	recipe=$("$RT" recipe "$BATS_TEST_TMPDIR/r" "$BATS_TEST_TMPDIR/c" \
		"$BATS_TEST_TMPDIR/c" | cut -d' ' -f2)
	run "$RT" --timeout 5 put --chunk "$BATS_TEST_TMPDIR/c" \
		--chunk "$BATS_TEST_TMPDIR/r" "ws://127.0.0.1:$PORT/Notes" "$TOK" \
		7 100 recipe $((17 << 30)) "$name" "$recipe"
	assert_success
	wk_init "$B"
	remote "$B"
	run syncd_once "$B"
	assert_success
	assert_output --partial 'a file over the 16 GiB a put may name'
	[ ! -e "$B/.wkfs/chunks" ] || [ -z "$(ls -A "$B/.wkfs/chunks")" ]
}
