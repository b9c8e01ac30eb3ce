#!/usr/bin/env bats
# wkfs-relay: folders and tokens, push and pull, live fan-out, hostile
# clients, crash safety and chunks.  Each test runs its own relay on
# 127.0.0.1 (port chosen by the kernel, read from the relay's
# "listening on" line) with a fresh data directory, and stops it by pid.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

B=${WKFS_BUILD:-$BATS_TEST_DIRNAME/../../build}
RELAY=$B/wkfs-relay
RT=$B/wkfs-relay-test

# wait_until SECONDS CMD...: polls CMD until it succeeds or time runs out.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= deadline)) && return 1
		sleep 0.05
	done
}

load relay

url() { echo "ws://127.0.0.1:$PORT/$1"; }
rt() { "$RT" --timeout 5 "$@"; }
add_folder() { "$RELAY" --data "$DATA" folder add "$1"; }

setup() {
	DATA=$BATS_TEST_TMPDIR/data
	RLOG=$BATS_TEST_TMPDIR/relay.log
	BG_PIDS=()
	start_relay
}

# Background clients are started as "$RT" ... &, never through a shell
# function, so that $! is the client's own pid.
teardown() { clients_relay_teardown; }

# The seqs of a pull's "op" lines, one a line.
seqs() { awk '$1 == "op" { print $2 }'; }

@test "folder add prints a token, list shows it, revoke ends it" {
	run "$RELAY" --data "$DATA" folder add Notes
	assert_success
	assert_output --regexp '^[0-9a-f]{64}$'
	tok=$output

	run "$RELAY" --data "$DATA" folder add Notes
	assert_failure
	assert_output --partial 'exists'

	run "$RELAY" --data "$DATA" folder add ../x
	assert_failure 2

	add_folder Work >/dev/null
	run "$RELAY" --data "$DATA" folder list
	assert_success
	assert_line --index 0 --regexp '^Notes[[:space:]]+active[[:space:]]+0$'
	assert_line --index 1 --regexp '^Work[[:space:]]+active'

	run rt push "$(url Notes)" "$tok" 7 3
	assert_success
	assert_line 'pushed 3 high_seq 3'

	run "$RELAY" --data "$DATA" folder revoke Notes
	assert_success
	run "$RELAY" --data "$DATA" folder list
	assert_line --index 0 --regexp '^Notes[[:space:]]+revoked[[:space:]]+3$'
	run "$RELAY" --data "$DATA" folder revoke Nope
	assert_failure

	run rt pull "$(url Notes)" "$tok" 8 0
	assert_failure 3
	assert_line 'error 3 auth: bad folder or token'

	# A new token for a revoked folder keeps its history.
	tok2=$(add_folder Notes)
	[ "$tok2" != "$tok" ]
	run rt pull "$(url Notes)" "$tok2" 8 0
	assert_success
	assert_line 'caught_up 3'
}

@test "revoking a folder ends its live sessions" {
	tok=$(add_folder Notes)
	"$RT" --timeout 5 watch "$(url Notes)" "$tok" 9 0 >"$BATS_TEST_TMPDIR/w" 2>&1 &
	w=$!
	BG_PIDS+=("$w")
	wait_until 5 grep -q '^caught_up' "$BATS_TEST_TMPDIR/w"
	"$RELAY" --data "$DATA" folder revoke Notes
	wait_until 10 not_running "$w"
	run cat "$BATS_TEST_TMPDIR/w"
	assert_line 'error 10 revoked: the folder'"'"'s token was revoked'
}

@test "push then pull returns every op in order with gap-free seqs" {
	tok=$(add_folder Notes)
	run rt push "$(url Notes)" "$tok" 7 250
	assert_success
	assert_line 'pushed 250 high_seq 250'

	run rt pull "$(url Notes)" "$tok" 8 0
	assert_success
	assert_line --index 0 'welcome 250'
	assert_line 'caught_up 250'
	[ "$(echo "$output" | seqs)" = "$(seq 1 250)" ]
	assert_line 'op 1 0000000000000007 1 46 mkdir op-1'

	# From a cursor: only what comes after it.
	run rt pull "$(url Notes)" "$tok" 8 200
	assert_success
	[ "$(echo "$output" | seqs)" = "$(seq 201 250)" ]

	# A client's own ops are not sent back, but its cursor moves past.
	run rt pull "$(url Notes)" "$tok" 7 0
	assert_success
	refute_line --regexp '^op '
	assert_line 'caught_up 250'

	# A cursor beyond the head means another relay's history.
	run rt pull "$(url Notes)" "$tok" 8 251
	assert_failure 3
	assert_line --regexp '^error 7 cursor: '
	run rt cursor "$(url Notes)" "$tok" 8 250
	assert_success
}

@test "a duplicate push is stored once and still acknowledged" {
	tok=$(add_folder Notes)
	run rt push "$(url Notes)" "$tok" 7 10
	assert_line 'pushed 10 high_seq 10'
	run rt push "$(url Notes)" "$tok" 7 10
	assert_success
	assert_line 'pushed 10 high_seq 10'
	# Overlapping: hlc 6..15, five of them new.
	run rt push "$(url Notes)" "$tok" 7 10 6
	assert_line 'pushed 10 high_seq 15'
	# The same hlc from another actor is another op.
	run rt push "$(url Notes)" "$tok" 8 1
	assert_line 'pushed 1 high_seq 16'

	run rt pull "$(url Notes)" "$tok" 9 0
	[ "$(echo "$output" | seqs)" = "$(seq 1 16)" ]
	[ "$(echo "$output" | awk '$1 == "op" && $3 ~ /7$/ { print $4 }')" = \
		"$(seq 1 15)" ]
}

@test "new ops reach other connected clients at once, not the pusher" {
	tok=$(add_folder Notes)
	rt push "$(url Notes)" "$tok" 7 5 >/dev/null
	# Two watchers caught up on history, each waiting for live ops.
	"$RT" --timeout 5 watch "$(url Notes)" "$tok" 9 5 3 >"$BATS_TEST_TMPDIR/w9" 2>&1 &
	w9=$!
	"$RT" --timeout 5 watch "$(url Notes)" "$tok" 7 5 1 >"$BATS_TEST_TMPDIR/w7" 2>&1 &
	w7=$!
	BG_PIDS+=("$w9" "$w7")
	wait_until 5 grep -q '^caught_up 5' "$BATS_TEST_TMPDIR/w9"
	wait_until 5 grep -q '^caught_up 5' "$BATS_TEST_TMPDIR/w7"

	rt push "$(url Notes)" "$tok" 7 2 100 >/dev/null
	rt push "$(url Notes)" "$tok" 8 1 200 >/dev/null

	# The watchers exit once they have seen their count of live ops.
	wait_until 5 not_running "$w9"
	wait_until 5 not_running "$w7"
	run cat "$BATS_TEST_TMPDIR/w9"
	assert_line 'op 6 0000000000000007 100 48 mkdir op-100'
	assert_line 'op 7 0000000000000007 101 48 mkdir op-101'
	assert_line 'op 8 0000000000000008 200 48 mkdir op-200'
	run cat "$BATS_TEST_TMPDIR/w7"
	refute_line --regexp '^op 6 '
	assert_line 'op 8 0000000000000008 200 48 mkdir op-200'
	assert_line 'through 8'
}

@test "a wrong token is refused with a reason" {
	add_folder Notes >/dev/null
	run rt pull "$(url Notes)" \
		0000000000000000000000000000000000000000000000000000000000000000 \
		8 0
	assert_failure 3
	assert_line 'error 3 auth: bad folder or token'
	assert_line 'close 1008 bad folder or token'
	# An unknown folder gets the same answer.
	run rt pull "$(url Nope)" \
		0000000000000000000000000000000000000000000000000000000000000000 \
		8 0
	assert_line 'error 3 auth: bad folder or token'
}

@test "a token for one folder neither reads nor writes another" {
	ta=$(add_folder A)
	tb=$(add_folder B)
	rt push "$(url B)" "$tb" 7 4 >/dev/null
	head -c 3000 /dev/urandom >"$BATS_TEST_TMPDIR/c"
	name=$(rt chunk-put "$(url B)" "$tb" "$BATS_TEST_TMPDIR/c" |
		sed -n 's/^chunk_ack //p')
	[ -n "$name" ]

	run rt pull "$(url B)" "$ta" 8 0
	assert_failure 3
	assert_line 'error 3 auth: bad folder or token'
	run rt push "$(url B)" "$ta" 8 1
	assert_failure 3
	run rt chunk-get "$(url B)" "$ta" "$name"
	assert_failure 3

	# A's own store knows nothing of B's chunk.
	run rt have "$(url A)" "$ta" "$name"
	assert_line "missing $name"
	run rt chunk-get "$(url A)" "$ta" "$name"
	assert_failure 5
	run rt pull "$(url A)" "$ta" 8 0
	assert_line 'welcome 0'
	run rt pull "$(url B)" "$tb" 8 0
	assert_line 'caught_up 4'
}

@test "malformed, garbage and oversized frames close only their connection" {
	tok=$(add_folder Notes)
	"$RT" --timeout 5 watch "$(url Notes)" "$tok" 9 0 1 >"$BATS_TEST_TMPDIR/w" 2>&1 &
	w=$!
	BG_PIDS+=("$w")
	wait_until 5 grep -q '^caught_up' "$BATS_TEST_TMPDIR/w"

	# Before HELLO: garbage, a truncated message, a server's message.
	run rt raw "$(url Notes)" 00ff00ff
	assert_failure 3
	assert_line 'error 1 malformed: malformed unknown message'
	assert_line 'close 1008 malformed unknown message'
	run rt raw "$(url Notes)" 03010203
	assert_line 'error 1 malformed: malformed CURSOR message'
	run rt raw "$(url Notes)" 030102030405060708
	assert_line 'error 5 state: HELLO must come first'
	# After HELLO: trailing bytes, a lying count, a second HELLO, too big.
	run rt raw --token "$tok" "$(url Notes)" 03010203040506070809
	assert_line 'error 1 malformed: malformed CURSOR message'
	run rt raw --token "$tok" "$(url Notes)" 0200000000000000000a000000
	assert_line 'error 1 malformed: malformed PUSH message'
	run rt raw --token "$tok" "$(url Notes)" 8100000000
	assert_line 'error 1 malformed: malformed WELCOME message'
	run rt raw --token "$tok" "$(url Notes)" 0201000000000000000105000000
	assert_line 'error 4 too_big: PUSH over a protocol limit'
	run rt raw --token "$tok" --pad 9000000 "$(url Notes)" 05
	assert_line 'error 4 too_big: message over 8388608 bytes'
	assert_line 'close 1008 message over 8388608 bytes'

	# The relay and the watcher are fine.
	running "$RPID"
	running "$w"
	run rt push "$(url Notes)" "$tok" 7 1
	assert_success
	wait_until 5 not_running "$w"
	run cat "$BATS_TEST_TMPDIR/w"
	assert_line 'op 1 0000000000000007 1 46 mkdir op-1'
}

@test "an unknown protocol version is refused with the ones spoken" {
	tok=$(add_folder Notes)
	folder=$(printf Notes | od -An -tx1 | tr -d ' \n')
	hello=0103000000"05000000$folder"20000000"$tok"
	hello=$hello"0700000000000000""0000000000000000"
	run rt raw "$(url Notes)" "$hello"
	assert_failure 3
	assert_line --regexp '^error 2 version: protocol version 3 .* versions 1 to 2: upgrade wkfs-relay$'
	run rt raw "$(url Notes)" "0100000000${hello:10}"
	assert_line --regexp '^error 2 version: protocol version 0 '
	# Versions 1 and 2 are welcome, each with its own version.
	run "$RT" --timeout 1 raw "$(url Notes)" "0101000000${hello:10}"
	assert_line 'recv WELCOME version 1'
	assert_line 'recv CAUGHT_UP'
	assert_line 'timeout'
	run "$RT" --timeout 1 raw "$(url Notes)" "0102000000${hello:10}"
	assert_line 'recv WELCOME version 2'
}

@test "a folder with ops of a version-2 client refuses version 1" {
	tok=$(add_folder Notes)
	tok2=$(add_folder Other)
	folder=$(printf Notes | od -An -tx1 | tr -d ' \n')
	hello1=0101000000"05000000$folder"20000000"$tok"
	hello1=$hello1"0800000000000000""0000000000000000"
	# A version-1 session is live when the first version-2 push comes.
	"$RT" --timeout 60 raw "$(url Notes)" "$hello1" >"$BATS_TEST_TMPDIR/v1" 2>&1 &
	v1=$!
	BG_PIDS+=("$v1")
	wait_until 30 grep -q '^recv CAUGHT_UP' "$BATS_TEST_TMPDIR/v1"

	run rt push "$(url Notes)" "$tok" 7 1
	assert_success
	# It is told to upgrade and closed, not sent ops it would skip.
	wait_until 30 not_running "$v1"
	run cat "$BATS_TEST_TMPDIR/v1"
	assert_line --regexp '^error 2 version: this folder now holds ops of protocol version 2: upgrade wkfs$'
	refute_line --partial 'recv OPS'

	# New version-1 sessions are refused, and say why; version 2 is fine.
	run rt raw "$(url Notes)" "$hello1"
	assert_failure 3
	assert_line 'error 2 version: this folder holds ops of protocol version 2, which a version 1 client would skip: upgrade wkfs'
	run rt pull "$(url Notes)" "$tok" 9 0
	assert_success
	assert_line 'caught_up 1'
	# Only that folder, and only after auth: a wrong token is `auth`.
	folder2=$(printf Other | od -An -tx1 | tr -d ' \n')
	run "$RT" --timeout 1 raw "$(url Other)" "0101000000""05000000$folder2""20000000$tok2""0800000000000000""0000000000000000"
	assert_line 'recv WELCOME version 1'
	run rt raw "$(url Notes)" "0101000000""05000000$folder""20000000$tok2""0800000000000000""0000000000000000"
	assert_line --partial 'error 3 auth'

	# The folder's version survives a relay restart.
	stop_relay
	start_relay
	run rt raw "$(url Notes)" "$hello1"
	assert_line --partial 'error 2 version: this folder holds ops of protocol version 2'
}

@test "a relay killed after an ack loses nothing acknowledged" {
	tok=$(add_folder Notes)
	run rt push "$(url Notes)" "$tok" 7 120
	assert_line 'pushed 120 high_seq 120'
	head -c 70000 /dev/urandom >"$BATS_TEST_TMPDIR/c"
	name=$(rt chunk-put "$(url Notes)" "$tok" "$BATS_TEST_TMPDIR/c" |
		sed -n 's/^chunk_ack //p')

	kill -9 "$RPID"
	wait "$RPID" 2>/dev/null || true
	RPID=
	start_relay

	run rt pull "$(url Notes)" "$tok" 8 0
	assert_success
	assert_line 'caught_up 120'
	[ "$(echo "$output" | seqs)" = "$(seq 1 120)" ]
	run rt chunk-get "$(url Notes)" "$tok" "$name" "$BATS_TEST_TMPDIR/out"
	assert_success
	cmp "$BATS_TEST_TMPDIR/c" "$BATS_TEST_TMPDIR/out"
	# Dedup survives the restart too.
	run rt push "$(url Notes)" "$tok" 7 120
	assert_line 'pushed 120 high_seq 120'
}

@test "a chunk whose bytes do not match its name is refused" {
	tok=$(add_folder Notes)
	head -c 5000 /dev/urandom >"$BATS_TEST_TMPDIR/c"
	run rt chunk-put "$(url Notes)" "$tok" "$BATS_TEST_TMPDIR/c" \
		00112233445566778899aabbccddeeff
	assert_failure 3
	assert_line 'error 6 hash: chunk data does not hash to its name'
	run rt chunk-get "$(url Notes)" "$tok" 00112233445566778899aabbccddeeff
	assert_failure 5
	assert_line 'not_found 00112233445566778899aabbccddeeff'
	[ -z "$(find "$DATA/chunks" -type f)" ]
}

@test "chunks round-trip up to 1 MiB, bigger ones are refused" {
	tok=$(add_folder Notes)
	head -c 1048576 /dev/urandom >"$BATS_TEST_TMPDIR/c"
	run rt chunk-put "$(url Notes)" "$tok" "$BATS_TEST_TMPDIR/c"
	assert_success
	name=$(echo "$output" | sed -n 's/^chunk_ack //p')
	[ ${#name} = 32 ]
	[ -f "$DATA/chunks/Notes/${name:0:2}/${name:2}" ]

	run rt have "$(url Notes)" "$tok" "$name" 0123456789abcdef0123456789abcdef
	assert_line 'missing 0123456789abcdef0123456789abcdef'
	refute_line "missing $name"

	run rt chunk-get "$(url Notes)" "$tok" "$name" "$BATS_TEST_TMPDIR/out"
	assert_success
	assert_line "chunk $name 1048576"
	cmp "$BATS_TEST_TMPDIR/c" "$BATS_TEST_TMPDIR/out"

	# Putting it again is fine; one byte more is not.
	run rt chunk-put "$(url Notes)" "$tok" "$BATS_TEST_TMPDIR/c"
	assert_success
	head -c 1048577 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	run rt chunk-put "$(url Notes)" "$tok" "$BATS_TEST_TMPDIR/big"
	assert_failure 3
	assert_line 'error 4 too_big: CHUNK_PUT over a protocol limit'
}

# The id of put HLC by actor 7, as the relay names it.
put7() { printf '%016x-0000000000000007' "$1"; }

@test "a put naming a chunk the relay lacks is refused, nothing stored" {
	tok=$(add_folder Notes)
	T=$BATS_TEST_TMPDIR
	head -c 5000 /dev/urandom >"$T/c1"
	c1=$(rt name "$T/c1" | sed -n 's/^name //p')

	# whole: the one chunk, named by the put's hash, never uploaded
	run rt put "$(url Notes)" "$tok" 7 5 whole 5000 "$c1"
	assert_failure 3
	assert_line "error 11 missing: put $(put7 5) names chunk $c1, which this relay does not hold"
	run rt pull "$(url Notes)" "$tok" 8 0
	assert_success
	assert_line 'caught_up 0'
	refute_line --regexp '^op '

	# uploaded on the same connection just before (still staged when
	# the PUSH comes): stored
	run rt put --chunk "$T/c1" "$(url Notes)" "$tok" 7 5 whole 5000 "$c1"
	assert_success
	assert_line 'ack 1 1'
	# an empty file names no chunk, and "none" names nothing
	run rt put "$(url Notes)" "$tok" 7 6 whole 0 0123456789abcdef0123456789abcdef
	assert_line 'ack 1 2'
	run rt put "$(url Notes)" "$tok" 7 7 none 5000 0123456789abcdef0123456789abcdef
	assert_line 'ack 1 3'
	run rt pull "$(url Notes)" "$tok" 8 0
	assert_line 'caught_up 3'
	[ "$(echo "$output" | awk '$1 == "op" { print $2, $4, $6 }')" = \
		"$(printf '1 5 put\n2 6 put\n3 7 put')" ]
}

@test "a put whose recipe names a chunk the relay lacks is refused" {
	tok=$(add_folder Notes)
	T=$BATS_TEST_TMPDIR
	head -c 5000 /dev/urandom >"$T/c1"
	head -c 3000 /dev/urandom >"$T/c2"
	head -c 2000 /dev/urandom >"$T/c3"
	c2=$(rt name "$T/c2" | sed -n 's/^name //p')
	c3=$(rt name "$T/c3" | sed -n 's/^name //p')
	rec=$(rt recipe "$T/r" "$T/c1" "$T/c2" | sed -n 's/^recipe //p')
	h=00112233445566778899aabbccddeeff

	# the recipe chunk is there, one of the chunks it lists is not
	run rt put --chunk "$T/r" --chunk "$T/c1" "$(url Notes)" "$tok" 7 5 recipe 8000 $h "$rec"
	assert_failure 3
	assert_line "error 11 missing: put $(put7 5) names chunk $c2, which this relay does not hold"
	# the recipe chunk itself is not there
	run rt put "$(url Notes)" "$tok" 7 6 recipe 8000 $h 0123456789abcdef0123456789abcdef
	assert_failure 3
	assert_line "error 11 missing: put $(put7 6) names chunk 0123456789abcdef0123456789abcdef, which this relay does not hold"
	# a chunk that is not a recipe named as one
	c1=$(rt name "$T/c1" | sed -n 's/^name //p')
	run rt put "$(url Notes)" "$tok" 7 6 recipe 8000 $h "$c1"
	assert_failure 3
	assert_line "error 11 missing: put $(put7 6) names chunk $c1 as its recipe, but it is not one"
	run rt pull "$(url Notes)" "$tok" 8 0
	assert_line 'caught_up 0'
	refute_line --regexp '^op '

	# everything there: stored
	run rt put --chunk "$T/c2" "$(url Notes)" "$tok" 7 5 recipe 8000 $h "$rec"
	assert_success
	assert_line 'ack 1 1'

	# a delta recipe chunk: its base recipe chunk and what it ADDs
	d=$(rt recipe --delta $h "$rec" "$T/d" "$T/c3" | sed -n 's/^recipe //p')
	run rt put --chunk "$T/d" "$(url Notes)" "$tok" 7 6 recipe 2000 $h "$d"
	assert_failure 3
	assert_line "error 11 missing: put $(put7 6) names chunk $c3, which this relay does not hold"
	d2=$(rt recipe --delta $h 0123456789abcdef0123456789abcdef "$T/d2" "$T/c3" |
		sed -n 's/^recipe //p')
	run rt put --chunk "$T/d2" --chunk "$T/c3" "$(url Notes)" "$tok" 7 6 recipe 2000 $h "$d2"
	assert_failure 3
	assert_line "error 11 missing: put $(put7 6) names chunk 0123456789abcdef0123456789abcdef, which this relay does not hold"
	run rt put --chunk "$T/c3" "$(url Notes)" "$tok" 7 6 recipe 2000 $h "$d"
	assert_success
	assert_line 'ack 1 2'
	run rt pull "$(url Notes)" "$tok" 8 0
	assert_line 'caught_up 2'
}

@test "the relay listens on IPv6 loopback when asked" {
	python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null ||
		skip "no IPv6 loopback here"
	tok=$(add_folder Notes)
	stop_relay
	start_relay '[::1]:0'
	run rt push "ws://[::1]:$PORT/Notes" "$tok" 7 2
	assert_success
	assert_line 'pushed 2 high_seq 2'
}

@test "wss: the relay serves TLS, and a client checks the certificate" {
	command -v openssl >/dev/null || skip "no openssl command"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
		-keyout "$BATS_TEST_TMPDIR/key.pem" \
		-out "$BATS_TEST_TMPDIR/cert.pem" 2>/dev/null
	tok=$(add_folder Notes)
	stop_relay
	: >"$RLOG"
	"$RELAY" --data "$DATA" --bind 127.0.0.1:0 \
		--tls-cert "$BATS_TEST_TMPDIR/cert.pem" \
		--tls-key "$BATS_TEST_TMPDIR/key.pem" >>"$RLOG" 2>&1 &
	RPID=$!
	wait_until 10 grep -q '^listening on ' "$RLOG"
	PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$RLOG")

	# Self-signed: refused unless the client is told to accept it.
	run rt pull "wss://127.0.0.1:$PORT/Notes" "$tok" 8 0
	assert_failure 1
	WKFS_TLS_INSECURE=1 run rt push "wss://127.0.0.1:$PORT/Notes" "$tok" 7 2
	assert_success
	assert_line 'pushed 2 high_seq 2'
	# Plain ws to a TLS port gets nowhere.
	run rt pull "$(url Notes)" "$tok" 8 0
	assert_failure
}

@test "clients that never read cost the relay no memory for their backlog" {
	tok=$(add_folder Notes)
	# 3000 ops of 16 KiB: 48 MiB of history.
	run "$RT" --timeout 30 push "$(url Notes)" "$tok" 7 3000 1 16384
	assert_line 'pushed 3000 high_seq 3000'
	base=$(awk '/^VmRSS/ { print $2 }' "/proc/$RPID/status")

	for a in 11 12 13; do
		"$RT" --timeout 5 stall "$(url Notes)" "$tok" "$a" >"$BATS_TEST_TMPDIR/s$a" &
		BG_PIDS+=($!)
	done
	for a in 11 12 13; do
		wait_until 5 grep -q '^stalling' "$BATS_TEST_TMPDIR/s$a"
	done

	# Other clients are served meanwhile, the whole history too.
	run "$RT" --timeout 30 pull "$(url Notes)" "$tok" 9 0
	assert_success
	assert_line 'caught_up 3000'
	run rt push "$(url Notes)" "$tok" 8 1 5000
	assert_line 'pushed 1 high_seq 3001'

	# Queued copies would be 3 x 48 MiB; a send cursor is a few bytes.
	# (Sanitizer builds keep freed memory in quarantine: not measured.)
	if ! grep -q __asan_init "$RELAY"; then
		rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$RPID/status")
		echo "relay RSS: ${base} kB before, ${rss} kB with 3 stalled" >&3
		((rss - base < 32768))
	fi
	for p in "${BG_PIDS[@]}"; do running "$p"; done
}

@test "serve and folder add started at once on a new data directory both work" {
	local i d spid tok
	for i in 1 2 3 4 5 6; do
		d=$BATS_TEST_TMPDIR/race$i
		"$RELAY" --data "$d" --bind 127.0.0.1:0 >"$d.log" 2>&1 &
		spid=$!
		BG_PIDS+=("$spid")
		run "$RELAY" --data "$d" folder add X
		assert_success
		assert_output --regexp '^[0-9a-f]{64}$'
		tok=$output
		if ! wait_until 10 grep -q '^listening on ' "$d.log"; then
			cat "$d.log" >&2
			false
		fi
		port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$d.log")
		run rt push "ws://127.0.0.1:$port/X" "$tok" 7 1
		assert_line 'pushed 1 high_seq 1'
		kill "$spid"
		wait "$spid" || true
	done
}
