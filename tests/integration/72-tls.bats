#!/usr/bin/env bats
# 72-tls: TLS as the normal way off this machine.  A relay serving wss://
# from a self-signed certificate made here with openssl, two replicas that
# verify it against [remote] ca and sync through it; ws:// to another
# machine refused before anything is sent, unless [remote] insecure = yes
# (shown for real inside a network namespace made for the test, whose
# address is not a loopback one); the token read from a file or standard
# input, never from argv.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

W() { "$WKFS_BIN" "$@" 3>&-; }

setup() {
	T=$(realpath "$BATS_TEST_TMPDIR")
	DATA=$T/data
	RLOG=$T/relay.log
	umask 022
	A=$T/a B=$T/b
	mkdir -p "$A" "$B"
	WK_DIRS+=("$A" "$B")
	NS=
}

teardown() {
	wk_teardown
	stop_relay
	if [ -n "$NS" ]; then
		ip netns del "$NS" 2>/dev/null || true
	fi
	if grep -E 'Sanitizer|runtime error' "$RLOG" >&2 2>/dev/null; then
		return 1
	fi
}

# cert: a self-signed certificate for 127.0.0.1 and localhost (its own CA).
cert() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
}

# start_wss: the relay on 127.0.0.1 with that certificate.
start_wss() {
	start_relay 127.0.0.1:0 --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
}

@test "wss: two replicas verify the relay's self-signed certificate and sync through it" {
	command -v openssl >/dev/null || skip "no openssl command"
	cert
	start_wss
	"$RELAY" --data "$DATA" folder add Notes >"$T/token"
	URL=wss://127.0.0.1:$PORT/Notes
	# the token from a file, and from standard input
	run W init "$A" --remote "$URL" --token-file "$T/token" \
		--ca "$T/cert.pem" --device a
	assert_success
	run W init "$B" --remote "$URL" --token - --ca "$T/cert.pem" \
		--device b <"$T/token"
	assert_success
	grep -qx "token = $(cat "$T/token")" "$B/.wkfs/config.ini"
	grep -qx "ca = $T/cert.pem" "$A/.wkfs/config.ini"
	wk_mount "$A"
	wk_mount "$B"
	echo "over TLS" >"$A/hello.txt"
	mkdir "$A/dir"
	echo deep >"$A/dir/f"
	run W sync "$A"
	assert_success
	run W sync "$B"
	assert_success
	wait_until 30 [ -f "$B/dir/f" ]
	assert_equal "$(cat "$B/hello.txt")" "over TLS"
	assert_equal "$(cat "$B/dir/f")" deep
	echo back >"$B/reply.txt"
	W sync "$B" >/dev/null
	W sync "$A" >/dev/null
	wait_until 30 [ -f "$A/reply.txt" ]
	assert_equal "$(cat "$A/reply.txt")" back
	run W status "$A" --json
	assert_output --partial '"url":"wss://127.0.0.1:'
}

@test "wss: a certificate the configured CA did not sign is refused" {
	command -v openssl >/dev/null || skip "no openssl command"
	cert
	start_wss
	# another CA: the relay's certificate does not check out
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other \
		-keyout "$T/other.key" -out "$T/other.pem" 2>/dev/null
	tok=$("$RELAY" --data "$DATA" folder add Notes)
	W init "$A" --remote "wss://127.0.0.1:$PORT/Notes" --token - \
		--ca "$T/other.pem" <<<"$tok" >/dev/null
	run timeout 60 "$SYNCD" "$A" --once </dev/null 3>&-
	assert_failure
	assert_output --partial "cannot connect to wss://127.0.0.1:$PORT/Notes"
	# the system's CAs do not know it either
	sed -i '/^ca = /d' "$A/.wkfs/config.ini"
	run timeout 60 "$SYNCD" "$A" --once </dev/null 3>&-
	assert_failure
	assert_output --partial "cannot connect"
	# the right CA
	echo "ca = $T/cert.pem" >>"$A/.wkfs/config.ini"
	run timeout 60 "$SYNCD" "$A" --once </dev/null 3>&-
	assert_success
}

@test "ws:// to another machine is refused in one line, before any connection" {
	tok=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	for url in ws://192.0.2.10:7890/Notes ws://relay.example.org/Notes \
		"ws://[2001:db8::1]:7890/Notes"; do
		run W init "$A" --remote "$url" --token - <<<"$tok"
		assert_failure 2
		assert_equal "${#lines[@]}" 1
		assert_output --partial "$url: refusing ws:// to"
		assert_output --partial "unencrypted; use wss://"
		assert_output --partial "insecure = yes"
		[ ! -e "$A/.wkfs" ]
	done
	# loopback is this machine: allowed
	run W init "$A" --remote ws://127.0.0.1:7890/Notes --token - <<<"$tok"
	assert_success
	# a config edited by hand: wkfs-syncd refuses it the same way, at
	# once (a connection to 192.0.2.10, a documentation address, would
	# hang until its timeout)
	sed -i 's|^url = .*|url = ws://192.0.2.10:7890/Notes|' \
		"$A/.wkfs/config.ini"
	run timeout 10 "$SYNCD" "$A" --once </dev/null 3>&-
	assert_failure 1
	assert_equal "${#lines[@]}" 1
	assert_output --partial "refusing ws:// to 192.0.2.10"
	run W status "$A"
	assert_failure 3
	assert_output --partial "Needs attention"
	assert_output --partial "refusing ws:// to 192.0.2.10"
	# --insecure, and the key it writes
	run W init "$B" --remote ws://192.0.2.10:7890/Notes --token - \
		--insecure <<<"$tok"
	assert_success
	grep -qx "insecure = yes" "$B/.wkfs/config.ini"
	# the token in argv still works; a token nowhere is refused
	rm -rf "$B/.wkfs"
	run W init "$B" --remote ws://localhost:7890/Notes --token "$tok"
	assert_success
	rm -rf "$B/.wkfs"
	run W init "$B" --remote ws://localhost:7890/Notes --token - </dev/null
	assert_failure 2
	assert_output --partial "standard input: no token there"
	run W init "$B" --remote ws://localhost:7890/Notes \
		--token-file "$T/nothing"
	assert_failure 2
	assert_output --partial "--token-file $T/nothing: No such file"
	[ ! -e "$B/.wkfs" ]
}

@test "insecure = yes: ws:// to a non-loopback address syncs (inside a network namespace)" {
	command -v ip >/dev/null || skip "no ip command"
	NS=wkfs-tls-$$-$RANDOM
	ip netns add "$NS" || skip "cannot make a network namespace here"
	# the namespace's own loopback carries a non-loopback address: the
	# relay and the daemons meet there, and nothing leaves it
	ip -n "$NS" link set lo up
	ip -n "$NS" addr add 10.213.7.1/32 dev lo
	IN=(nsenter "--net=/run/netns/$NS")
	: >"$RLOG"
	"${IN[@]}" "$RELAY" --data "$DATA" --bind 10.213.7.1:0 --verbose \
		>>"$RLOG" 2>&1 &
	RPID=$!
	wait_until 10 grep -q '^listening on ' "$RLOG"
	PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$RLOG")
	"$RELAY" --data "$DATA" folder add Notes >"$T/token"
	URL=ws://10.213.7.1:$PORT/Notes

	run W init "$A" --remote "$URL" --token-file "$T/token" --device a
	assert_failure 2
	assert_output --partial "refusing ws:// to 10.213.7.1"
	W init "$A" --remote "$URL" --token-file "$T/token" --device a \
		--insecure >/dev/null
	W init "$B" --remote "$URL" --token-file "$T/token" --device b \
		--insecure >/dev/null
	echo "in clear, on purpose" >"$A/x.txt"
	wk_mount "$A" --no-syncd
	D=$A wait_until 10 _count_ge 1 put x.txt
	run timeout 60 "${IN[@]}" "$SYNCD" "$A" --once </dev/null 3>&-
	assert_success
	run timeout 60 "${IN[@]}" "$SYNCD" "$B" --once </dev/null 3>&-
	assert_success
	grep -q 'x.txt' <("$WKFS_BIN" log "$B")
	# and without the key, the same daemon refuses before connecting
	sed -i '/^insecure = /d' "$B/.wkfs/config.ini"
	run timeout 60 "${IN[@]}" "$SYNCD" "$B" --once </dev/null 3>&-
	assert_failure
	assert_output --partial "refusing ws:// to 10.213.7.1"
}
