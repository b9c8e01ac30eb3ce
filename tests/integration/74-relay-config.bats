#!/usr/bin/env bats
# 74-relay-config: wkfs-relay's config file (--config FILE, or
# DATA/relay.ini when it exists; wkfs-relay(8) CONFIGURATION): wss://
# served from the certificate and key it names, a limit it sets refused
# with ERROR `limit` naming it, flags overriding it, and a bad file
# refused in one line before anything is served.  Each test runs its own
# relay on 127.0.0.1.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
RT=$WKFS_BUILD/wkfs-relay-test

load relay

rt() { "$RT" --timeout 5 "$@"; }

setup() {
	T=$(realpath "$BATS_TEST_TMPDIR")
	DATA=$T/data
	RLOG=$T/relay.log
	BG_PIDS=()
}

teardown() { clients_relay_teardown; }

# cert: a self-signed certificate for 127.0.0.1 (its own CA).
cert() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
}

@test "DATA/relay.ini's [tls] cert and key: the relay serves wss:// from them" {
	command -v openssl >/dev/null || skip "no openssl command"
	cert
	mkdir -m 700 "$DATA"
	printf '[tls]\ncert = %s\nkey = %s\n' "$T/cert.pem" "$T/key.pem" \
		>"$DATA/relay.ini"
	start_relay 127.0.0.1:0
	grep -q "config: $DATA/relay.ini" "$RLOG"
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
	WKFS_TLS_CA=$T/cert.pem run rt push "wss://127.0.0.1:$PORT/Notes" \
		"$TOK" 7 2
	assert_success
	assert_line 'pushed 2 high_seq 2'
	# plain ws:// is not what it serves
	run rt push "ws://127.0.0.1:$PORT/Notes" "$TOK" 7 1
	assert_failure
}

@test "a limit set in the config file is refused with ERROR limit naming it" {
	printf '[limits]\n# a low one\nmessages-per-second = 20\n' >"$T/relay.ini"
	start_relay 127.0.0.1:0 --config "$T/relay.ini"
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
	run rt pings "ws://127.0.0.1:$PORT/Notes" "$TOK" 1000
	assert_failure 3
	assert_output --partial 'error 13 limit: messages faster than 20 a second for 10 s: over the limit messages-per-second=20'
}

@test "flags override the config file" {
	printf '[relay]\nbind = 127.0.0.1:1\n[limits]\nmessages-per-second = 20\nput-bytes = 1M\n' \
		>"$T/relay.ini"
	# --bind and --limit over the file's; what the flags leave is the file's
	start_relay 127.0.0.1:0 --config "$T/relay.ini" \
		--limit messages-per-second=0
	grep -q 'messages-per-second=0 frames-per-second=40000 put-bytes=1048576 ' "$RLOG"
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
	run rt pings "ws://127.0.0.1:$PORT/Notes" "$TOK" 1000
	assert_success
}

@test "a bad config file is refused in one line naming the file and the line" {
	printf '[relay]\nbind = 127.0.0.1:0\n[limits]\nput-bytes = lots\n' \
		>"$T/bad.ini"
	run --separate-stderr "$RELAY" --data "$DATA" --config "$T/bad.ini"
	assert_failure 2
	[ "${#stderr_lines[@]}" = 1 ]
	[[ $stderr == *"$T/bad.ini:4: [limits] put-bytes takes a whole number"* ]]
	[ ! -e "$DATA/relay.db" ]

	# DATA/relay.ini is read when it exists, so it is checked as well
	mkdir -m 700 "$DATA"
	printf '[relay]\nbind = 127.0.0.1:0\nport = 80\n' >"$DATA/relay.ini"
	run --separate-stderr "$RELAY" --data "$DATA"
	assert_failure 2
	[ "${#stderr_lines[@]}" = 1 ]
	[[ $stderr == *"$DATA/relay.ini:3: no key 'port' in [relay]: the keys are bind,"* ]]
	[ ! -e "$DATA/relay.db" ]

	printf 'just words\n' >"$T/bad.ini"
	run --separate-stderr "$RELAY" --data "$DATA" --config "$T/bad.ini"
	assert_failure 2
	[[ $stderr == *"$T/bad.ini:1: not a [section] or a key = value line"* ]]

	printf '[tls]\ncert = %s\n' "$T/none.pem" >"$T/bad.ini"
	run --separate-stderr "$RELAY" --data "$DATA" --config "$T/bad.ini"
	assert_failure 2
	[[ $stderr == *"$T/bad.ini: [tls] needs both cert and key: add the key"* ]]

	run --separate-stderr "$RELAY" --data "$DATA" --config "$T/missing.ini"
	assert_failure 2
	[[ $stderr == *"cannot read the config file $T/missing.ini"* ]]
}
