#!/usr/bin/env bats
# 79-sync-faults: replication through trouble.  Folders mounted in place,
# each with its own wkfs-syncd, and one relay on 127.0.0.1 (as in
# 78-replicate), with the relay killed mid-stream, a daemon killed -9
# mid-upload and mid-download, and wrong or foreign tokens.  After every
# fault: nothing the relay acknowledged is lost, nothing is applied twice
# (op counts match exactly, no conflict copies without a conflict), and
# the replicas converge.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=120 # seconds a change may take to reach every replica

setup() { replicas_setup; }
teardown() { replicas_teardown; }

# stored_chunks: "COUNT BYTES" of the chunks in the relay's store for Notes.
stored_chunks() {
	find "$DATA/chunks/Notes" -type f ! -name '.*' -printf '%s\n' \
		2>/dev/null | awk '{ n++; b += $1 } END { print n + 0, b + 0 }'
}
_stored_chunks_ge() { [ "$(stored_chunks | cut -d' ' -f1)" -ge "$1" ]; }

# tcp_bytes PID FIELD: FIELD summed over the TCP connections PID has open
# to the relay, as the kernel counts them: bytes_acked (sent; bytes_sent
# would count loopback's retransmissions too), bytes_received, or "read":
# bytes_received less what still waits in the socket (Recv-Q).
tcp_bytes() {
	ss -tinpH "dport = :$PORT" 2>/dev/null | awk -v pid="pid=$1" -v f="$2" '
		/users:/ { mine = index($0, pid ",") > 0; if (mine) q += $2; next }
		mine { for (i = 1; i <= NF; i++) {
			split($i, kv, ":")
			if (kv[1] == (f == "read" ? "bytes_received" : f)) s += kv[2] } }
		END { print (f == "read" ? s - q : s) + 0 }'
}
_tcp_bytes_ge() { [ "$(tcp_bytes "$1" "$2")" -ge "$3" ]; }

# put_shipped DIR PATH: "true"/"false": DIR's newest put of PATH is acked.
put_shipped() {
	"$WKFS_BIN" log "$1" --json </dev/null 3>&- | grep '"kind":"put"' |
		grep "\"path\":\"$2\"" | tail -n 1 |
		sed -n 's/.*"shipped":\([a-z]*\).*/\1/p'
}

@test "relay killed -9 mid-stream of 2,000 files, restarted: nothing lost, nothing twice" {
	replica a
	replica b
	# The relay dies like a kill -9 on the third PUSH it gets, before
	# storing it: mid-stream however fast the stream is.
	stop_relay
	WKFS_FAULT=relay.push WKFS_FAULT_AT=3 start_relay "127.0.0.1:$PORT"
	mkdir "$A/many"
	for i in $(seq 2000); do
		echo "small file $i" >"$A/many/f$i"
	done
	wait_until 60 not_running "$RPID"
	wait "$RPID" 2>/dev/null || true
	RPID=
	held=$(relay_ops)
	acked=$(($(op_total "$A" local) - $(unshipped "$A")))
	echo "relay held $held ops when killed; A had $acked acknowledged" >&3
	[ "$held" -lt 4000 ] || {
		echo "the relay had all ops before it was killed" >&2
		return 1
	}
	# every acknowledged op is durable at the relay
	[ "$held" -ge "$acked" ]

	start_relay "127.0.0.1:$PORT"
	wait_same "$SYNC_WAIT" "$A" "$B"
	wait_until "$SYNC_WAIT" all_shipped "$A"
	assert_equal "$(find "$B/many" -type f | wc -l)" 2000
	run cat "$B/many/f1234"
	assert_output "small file 1234"
	exactly_once
	no_conflict_copies "$A" "$B"
}

@test "syncd killed -9 mid-upload of 64 MiB: the upload resumes, nothing twice" {
	replica a
	replica b
	head -c $((64 << 20)) /dev/urandom >"$T/big.src"
	cp "$T/big.src" "$A/big"
	# mid-upload: some chunks are at the relay, the put is not acked
	wait_until 60 _stored_chunks_ge 20
	stop_syncd a KILL
	assert_equal "$(put_shipped "$A" big)" false
	read -r n before < <(stored_chunks)
	echo "relay had $n chunks, $before bytes, when A's daemon died" >&3
	[ "$before" -lt $((64 << 20)) ]

	start_syncd a
	wait_until "$SYNC_WAIT" all_shipped "$A"
	wait_same "$SYNC_WAIT" "$A" "$B"
	cmp "$T/big.src" "$B/big"
	# what was uploaded before the kill is not sent again: the new
	# daemon sent at most the rest plus 1 MiB of protocol
	sent=$(tcp_bytes "${SPID[a]}" bytes_acked)
	echo "A's new daemon sent $sent bytes" >&3
	[ "$sent" -le $(((64 << 20) - before + (1 << 20))) ]
	exactly_once
	no_conflict_copies "$A" "$B"
}

@test "syncd killed -9 mid-download of 128 MiB: it resumes, B gets it once" {
	replica a
	replica b
	head -c $((128 << 20)) /dev/urandom >"$T/big.src"
	cp "$T/big.src" "$A/big"
	wait_until "$SYNC_WAIT" all_shipped "$A"
	# B's daemon is fetching the chunks: it has read 16 MiB of them
	wait_until 60 _tcp_bytes_ge "${SPID[b]}" read $((16 << 20))
	got=$(tcp_bytes "${SPID[b]}" read)
	stop_syncd b KILL
	[ "$got" -lt $((128 << 20)) ] || {
		echo "B had read all of it before the kill ($got bytes)" >&2
		return 1
	}
	[ ! -e "$B/big" ] || ! cmp -s "$T/big.src" "$B/big"

	start_syncd b
	wait_same "$SYNC_WAIT" "$A" "$B"
	cmp "$T/big.src" "$B/big"
	# what B had read before the kill is not fetched again (4 MiB of
	# slack: chunks read but not yet stored, and the protocol)
	more=$(tcp_bytes "${SPID[b]}" bytes_received)
	echo "B's daemon read $got bytes, then $more after the restart" >&3
	[ "$more" -le $(((128 << 20) - got + (4 << 20))) ]
	exactly_once
	no_conflict_copies "$A" "$B"
}

@test "a wrong token: the daemon says the relay refused it, nothing moves" {
	replica a
	echo secret >"$A/secret"
	wait_until "$SYNC_WAIT" all_shipped "$A"
	before=$(relay_ops)
	replica_init b Notes \
		0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	replica_mount b
	start_syncd b no-wait
	echo mine >"$B/mine"
	wait_until 30 grep -q 'refused' "$T/b.syncd.log"
	run cat "$T/b.syncd.log"
	assert_output --partial 'relay refused the session: auth: bad folder or token'
	running "${SPID[b]}"
	run ls -A "$B"
	assert_output mine
	assert_equal "$(relay_ops)" "$before"
	assert_equal "$(unshipped "$B")" "$(op_total "$B" local)"
}

@test "a token for one folder neither reads nor writes another" {
	TOK_OTHER=$("$RELAY" --data "$DATA" folder add Other)
	replica a Notes "$TOK"
	replica y Other "$TOK_OTHER"
	Y=$T/y
	echo notes-only >"$A/n"
	echo other-only >"$Y/o"
	wait_until "$SYNC_WAIT" all_shipped "$A"
	wait_until "$SYNC_WAIT" all_shipped "$Y"
	other_before=$(relay_ops Other)

	# Notes' token on Other's url
	replica_init x Other "$TOK"
	X=$T/x
	replica_mount x
	start_syncd x no-wait
	echo intruder >"$X/planted"
	wait_until 30 grep -q 'refused' "$T/x.syncd.log"
	run cat "$T/x.syncd.log"
	assert_output --partial 'auth: bad folder or token'
	assert_equal "$(relay_ops Other)" "$other_before"
	run ls -A "$X"
	assert_output planted

	# the two folders stay apart; a change on Other still flows
	echo more >"$Y/o2"
	wait_until "$SYNC_WAIT" all_shipped "$Y"
	run ls -A "$A"
	assert_output n
	run ls -A "$Y"
	assert_output $'o\no2'
	# Other's content store holds its two files' chunks, no intruder's
	run find "$DATA/chunks/Other" -type f ! -name '.*'
	assert_equal "${#lines[@]}" 2
}
