#!/usr/bin/env bats
# wkfs-relay's limits (--limit NAME=VALUE, docs/protocol.md "Relay
# limits"): what a stranger, one address, one session and one folder may
# cost it, each refused with ERROR `limit` naming the limit, and the
# descriptor budget (RLIMIT_NOFILE raised, accept failures counted in the
# log, not spinning).  Each test runs its own relay on 127.0.0.1; hostile
# clients come from 127.0.0.2 where an address matters.

load helpers

B=${WKFS_BUILD:-$BATS_TEST_DIRNAME/../../build}
RELAY=$B/wkfs-relay
RT=$B/wkfs-relay-test
SYNCD=$B/wkfs-syncd

load relay

url() { echo "ws://127.0.0.1:$PORT/$1"; }
rt() { "$RT" --timeout 5 "$@"; }

setup() {
	DATA=$BATS_TEST_TMPDIR/data
	RLOG=$BATS_TEST_TMPDIR/relay.log
	BG_PIDS=()
}

teardown() {
	stop_syncds
	wk_teardown
	clients_relay_teardown
}

# start_limited OPTION...: a relay with those options and folder Notes.
start_limited() {
	start_relay 127.0.0.1:0 "$@"
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# stalls N ACTOR0: N sessions that say HELLO and then wait, in the
# background; waits until each is welcomed.
stalls() {
	local i
	for ((i = 0; i < $1; i++)); do
		"$RT" --timeout 5 stall "$(url Notes)" "$TOK" $(($2 + i)) \
			>"$BATS_TEST_TMPDIR/stall$i" 2>&1 &
		BG_PIDS+=($!)
	done
	for ((i = 0; i < $1; i++)); do
		wait_until 10 grep -q '^stalling' "$BATS_TEST_TMPDIR/stall$i"
	done
}

# hold_from ADDR N SECS PORT: N TCP connections from ADDR that send half
# an HTTP request and hold it for SECS; prints "held K" once they are
# made (K: how many connected).  Run it in the background only: it execs
# python, so that $! is python's pid and killing it closes them.
hold_from() {
	exec "$PY" - "$@" <<'PYEOF'
import socket, sys, time
addr, n, secs, port = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
held = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.bind((addr, 0))
        s.connect(("127.0.0.1", port))
        s.send(b"GET /Notes HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    except OSError:
        s.close()
print("held", len(held), flush=True)
time.sleep(secs)
PYEOF
}

# upgrade_from ADDR PORT: a WebSocket handshake from ADDR; prints the
# status line of the answer.
upgrade_from() {
	"$PY" - "$@" <<'PYEOF'
import socket, sys
s = socket.socket()
s.settimeout(5)
s.bind((sys.argv[1], 0))
s.connect(("127.0.0.1", int(sys.argv[2])))
s.send(b"GET /Notes HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       b"Sec-WebSocket-Protocol: wkfs\r\nSec-WebSocket-Version: 13\r\n\r\n")
print(s.recv(4096).split(b"\r\n")[0].decode())
PYEOF
}

@test "bad --limit values are refused in one line" {
	run "$RELAY" --data "$DATA" --limit nosuch=1
	assert_failure 2
	assert_output --partial 'the limits are hello-bytes, connections'
	run "$RELAY" --data "$DATA" --limit hello-bytes=10
	assert_failure 2
	assert_output --partial 'from 256 to'
	run "$RELAY" --data "$DATA" --limit put-bytes=2X
	assert_failure 2
	run "$RELAY" --data "$DATA" --limit put-bytes=17G
	assert_failure 2
}

@test "bytes before HELLO: over hello-bytes is refused, and costs no memory" {
	start_limited
	# 600 bytes of an unknown message: refused for its size first
	run rt raw --pad 600 "$(url Notes)" 77
	assert_failure 3
	assert_output --partial 'error 13 limit: 601 bytes before HELLO'
	assert_output --partial 'hello-bytes=512'
	# under the limit, the message itself is judged
	run rt raw --pad 100 "$(url Notes)" 77
	assert_failure 3
	assert_output --partial 'error 1 malformed'
	# 8 strangers sending 2 MB each before HELLO: the relay keeps none
	# of it (it buffered up to 8 MiB each)
	base=$(awk '/^VmRSS/ { print $2 }' "/proc/$RPID/status")
	local pids=()
	for i in $(seq 8); do
		"$RT" --timeout 5 raw --pad 2000000 "$(url Notes)" 01 \
			>"$BATS_TEST_TMPDIR/big$i" 2>&1 &
		pids+=($!)
		BG_PIDS+=($!)
	done
	for p in "${pids[@]}"; do
		wait_until 30 not_running "$p"
	done
	grep -l 'hello-bytes=512' "$BATS_TEST_TMPDIR"/big* >/dev/null
	peak=$(awk '/^VmHWM/ { print $2 }' "/proc/$RPID/status")
	echo "relay RSS: $base kB before, peak $peak kB" >&3
	[ "$peak" -lt $((base + 8000)) ]
	run rt push "$(url Notes)" "$TOK" 7 1
	assert_line 'pushed 1 high_seq 1'
}

@test "connections-per-address: the next one is refused, other addresses get in" {
	start_limited --limit connections-per-address=3
	stalls 3 10
	run rt push "$(url Notes)" "$TOK" 7 1
	assert_failure 3
	assert_output --partial 'error 13 limit: too many connections from your address'
	assert_output --partial 'connections-per-address=3'
	run upgrade_from 127.0.0.2 "$PORT"
	assert_output --partial ' 101 '
	# one closes: room again
	kill "${BG_PIDS[0]}"
	wait_until 10 rt push "$(url Notes)" "$TOK" 7 1
	grep -q 'refused 1 connection since the last such line' "$RLOG"
}

@test "connections in total: the next one is refused with ERROR limit" {
	start_limited --limit connections=3
	stalls 3 10
	run rt push "$(url Notes)" "$TOK" 7 1
	assert_failure 3
	assert_output --partial 'error 13 limit: too many connections:'
	assert_output --partial 'connections=3'
}

@test "half-open requests from one address do not shut out others (ulimit -n 128)" {
	: >"$RLOG"
	(ulimit -n 128 && exec "$RELAY" --data "$DATA" --bind 127.0.0.1:0 \
		--verbose) >>"$RLOG" 2>&1 &
	RPID=$!
	wait_until 10 grep -q '^listening on ' "$RLOG"
	PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$RLOG")
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
	grep -q 'connections=96 connections-per-address=64' "$RLOG"

	hold_from 127.0.0.2 300 20 "$PORT" >"$BATS_TEST_TMPDIR/held" &
	BG_PIDS+=($!)
	wait_until 30 grep -q '^held' "$BATS_TEST_TMPDIR/held"
	t0=$(cpu_ticks "$RPID")
	run rt push "$(url Notes)" "$TOK" 7 3
	assert_line 'pushed 3 high_seq 3'
	sleep 2
	t1=$(cpu_ticks "$RPID")
	echo "relay: $((t1 - t0)) ticks of CPU in 2 s; log $(wc -l <"$RLOG") lines" >&3
	[ $((t1 - t0)) -lt 20 ]
	[ "$(wc -l <"$RLOG")" -lt 20 ]
}

@test "out of descriptors: accept failures are counted in the log, no spin" {
	: >"$RLOG"
	# a cap above what 64 descriptors allow, so that accept() fails
	(ulimit -n 64 && exec "$RELAY" --data "$DATA" --bind 127.0.0.1:0 \
		--limit connections=1000 --limit connections-per-address=1000) \
		>>"$RLOG" 2>&1 &
	RPID=$!
	wait_until 10 grep -q '^listening on ' "$RLOG"
	PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$RLOG")
	grep -q 'limit connections=1000 is more than' "$RLOG"
	TOK=$("$RELAY" --data "$DATA" folder add Notes)

	hold_from 127.0.0.2 90 6 "$PORT" >"$BATS_TEST_TMPDIR/held" &
	hpid=$!
	BG_PIDS+=("$hpid")
	wait_until 30 grep -q '^held' "$BATS_TEST_TMPDIR/held"
	t0=$(cpu_ticks "$RPID")
	sleep 2
	t1=$(cpu_ticks "$RPID")
	echo "relay: $((t1 - t0)) ticks of CPU in 2 s out of descriptors" >&3
	[ $((t1 - t0)) -lt 20 ]
	grep -q 'accept: errno 24' "$RLOG"
	[ "$(grep -c 'accept: errno' "$RLOG")" -le 3 ]
	# the holder gives up: real clients get in again
	kill "$hpid"
	wait_until 20 rt push "$(url Notes)" "$TOK" 7 1
}

@test "messages-per-second: past its burst a session gets ERROR limit and is closed" {
	start_limited --limit messages-per-second=50
	# ten seconds' worth at once is a burst it takes
	run rt pings "$(url Notes)" "$TOK" 400
	assert_success
	# a flood past it is refused, naming the limit, and closed
	run rt pings "$(url Notes)" "$TOK" 3000
	assert_failure 3
	assert_output --partial 'error 13 limit: messages faster than 50 a second for 10 s: over the limit messages-per-second=50'
	assert_line --partial 'close 1008'
	# the next session has its own budget
	run rt pings "$(url Notes)" "$TOK" 40
	assert_success
}

# fragments PORT N [END]: a WebSocket handshake, then a binary message of
# one byte continued by N one-byte fragments, its last frame sent only
# with END; prints the handshake's status line and then everything the
# relay sent back, as text.
fragments() {
	"$PY" - "$@" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.send(b"GET /Notes HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       b"Sec-WebSocket-Protocol: wkfs\r\nSec-WebSocket-Version: 13\r\n\r\n")
got = b""
while b"\r\n\r\n" not in got:
    got += s.recv(4096)
head, _, got = got.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
# masked frames (a zero key): binary without FIN, then continuations
out = b"\x02\x81\0\0\0\0\x01" + b"\x00\x81\0\0\0\0\x00" * int(sys.argv[2])
if len(sys.argv) > 3:
    out += b"\x80\x81\0\0\0\0\x00"
try:
    s.sendall(out)
    # until the relay closes, or sends a limit's ERROR (after which it
    # waits for the unfinished message to end before it closes)
    while b"over the limit" not in got:
        b = s.recv(4096)
        if not b:
            break
        got += b
except OSError:
    pass
print(got.decode("latin1"))
PYEOF
}

@test "frames-per-second: a message in too many fragments is refused, naming it" {
	start_limited --limit frames-per-second=10
	# 100 frames is the burst: a message of 51 is judged as a message
	run fragments "$PORT" 50 end
	assert_line --index 0 --partial ' 101 '
	assert_output --partial 'malformed HELLO'
	# 300 one-byte fragments, under hello-bytes, over the frames
	run fragments "$PORT" 300
	assert_line --index 0 --partial ' 101 '
	assert_output --partial 'frames faster than 10 a second for 10 s: over the limit frames-per-second=10'
}

# many DIR N: N small files under DIR/many.
many() {
	mkdir -p "$1/many"
	for ((i = 0; i < $2; i++)); do
		echo "file $i" >"$1/many/f$i"
	done
}

@test "wkfs-syncd refused over messages-per-second backs off, and status names the limit" {
	start_limited --limit messages-per-second=5
	T=$(realpath "$BATS_TEST_TMPDIR")
	replica a
	A=$(replica_dir a)
	many "$A" 150
	wait_until 30 grep -q 'over the limit messages-per-second=5' "$T/a.syncd.log"
	n0=$(_connects "$T/a.syncd.log")
	t0=$(date +%s%N)
	wait_until 10 eval '"$WKFS_BIN" status "$A" | grep -q "limit messages-per-second=5"'
	# after the refusal it waits 2.5 s or more before its next session
	# (it used to reconnect within 0.5 s, to be refused again at once)
	wait_until 15 _connects_gt "$T/a.syncd.log" "$n0"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "wkfs-syncd: next session $ms ms after the refusal" >&3
	[ "$ms" -ge 2000 ]
}

@test "a sync through a low but sane messages-per-second converges, unrefused" {
	start_limited --limit messages-per-second=100
	T=$(realpath "$BATS_TEST_TMPDIR")
	replica a
	replica b
	A=$(replica_dir a) Bd=$(replica_dir b)
	many "$A" 100
	echo more >"$Bd/from-b"
	wait_same 60 "$A" "$Bd"
	[ -e "$A/many/f99" ] && [ -e "$A/from-b" ]
	! grep -q 'limit' "$T/a.syncd.log" "$T/b.syncd.log"
}

@test "put-bytes: a put naming a bigger file is refused, a repeated chunk too" {
	start_limited --limit put-bytes=1M
	head -c 65536 /dev/urandom >"$BATS_TEST_TMPDIR/c"
	name=$(rt name "$BATS_TEST_TMPDIR/c" | cut -d' ' -f2)
	# one 64 KiB chunk, 40 times over: a 2.5 MiB file from one upload
	run rt recipe "$BATS_TEST_TMPDIR/r" $(for i in $(seq 40); do
		echo "$BATS_TEST_TMPDIR/c"; done)
	recipe=${output#recipe }
	run rt put --chunk "$BATS_TEST_TMPDIR/c" --chunk "$BATS_TEST_TMPDIR/r" \
		"$(url Notes)" "$TOK" 7 100 recipe $((40 * 65536)) "$name" "$recipe"
	assert_failure 3
	assert_output --partial 'error 13 limit: put 0000000000000064-0000000000000007 is a file of 2621440 bytes'
	assert_output --partial 'put-bytes=1048576'
	run rt pull "$(url Notes)" "$TOK" 8 0
	assert_line 'caught_up 0'
	# 16 times over is 1 MiB: taken
	run rt recipe "$BATS_TEST_TMPDIR/r16" $(for i in $(seq 16); do
		echo "$BATS_TEST_TMPDIR/c"; done)
	recipe=${output#recipe }
	run rt put --chunk "$BATS_TEST_TMPDIR/r16" "$(url Notes)" "$TOK" 7 101 \
		recipe $((16 * 65536)) "$name" "$recipe"
	assert_success
	assert_line --partial 'ack 1 1'
}

@test "folder-bytes: chunks and pushes past it are refused, counted again after a restart" {
	start_limited --limit folder-bytes=100K
	head -c 60000 /dev/urandom >"$BATS_TEST_TMPDIR/c1"
	head -c 60000 /dev/urandom >"$BATS_TEST_TMPDIR/c2"
	run rt chunk-put "$(url Notes)" "$TOK" "$BATS_TEST_TMPDIR/c1"
	assert_success
	run rt chunk-put "$(url Notes)" "$TOK" "$BATS_TEST_TMPDIR/c2"
	assert_failure 3
	assert_output --partial 'error 13 limit: folder Notes holds 60000 bytes: a chunk of 60000 more is over the limit folder-bytes=102400'
	# a chunk it has costs nothing
	run rt chunk-put "$(url Notes)" "$TOK" "$BATS_TEST_TMPDIR/c1"
	assert_success
	# ops count too: 40 KiB of payloads fit, 40 more do not
	run rt push "$(url Notes)" "$TOK" 7 10 1 4096
	assert_line 'pushed 10 high_seq 10'
	run rt push "$(url Notes)" "$TOK" 7 10 11 4096
	assert_failure 3
	assert_output --partial 'folder-bytes=102400'
	# a duplicate push adds nothing
	run rt push "$(url Notes)" "$TOK" 7 2 1 4096
	assert_line 'pushed 2 high_seq 10'

	stop_relay
	start_relay 127.0.0.1:0 --limit folder-bytes=100K
	run rt chunk-put "$(url Notes)" "$TOK" "$BATS_TEST_TMPDIR/c2"
	assert_failure 3
	assert_output --partial 'folder Notes holds 100960 bytes'
}

@test "the relay raises its soft descriptor limit to the hard one" {
	hard=$(ulimit -Hn)
	[ "$hard" = unlimited ] && hard=1048576
	[ "$hard" -gt 256 ] || skip "hard descriptor limit $hard"
	want=$((hard < 65536 ? hard : 65536))
	: >"$RLOG"
	(ulimit -Sn 256 && exec "$RELAY" --data "$DATA" --bind 127.0.0.1:0 \
		--verbose) >>"$RLOG" 2>&1 &
	RPID=$!
	wait_until 10 grep -q '^listening on ' "$RLOG"
	run awk '/^Max open files/ { print $4 }' "/proc/$RPID/limits"
	assert_output "$want"
	conns=$((want - 32 < 4096 ? want - 32 : 4096))
	grep -q " connections=$conns " "$RLOG"
}
