# relay.bash: a real wkfs-relay on 127.0.0.1 for one test.  The caller sets
# RELAY (the binary), DATA (its data directory) and RLOG (its log), and has a
# wait_until; start_relay sets RPID and PORT (the relay picks a free port).

running() { kill -0 "$1" 2>/dev/null; }
not_running() { ! kill -0 "$1" 2>/dev/null; }

start_relay() {
	local bind=${1:-127.0.0.1:0}
	: >"$RLOG"
	"$RELAY" --data "$DATA" --bind "$bind" --verbose >>"$RLOG" 2>&1 &
	RPID=$!
	if ! wait_until 10 grep -q '^listening on ' "$RLOG"; then
		cat "$RLOG" >&2
		return 1
	fi
	PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$RLOG")
}

# stop_relay: ends the relay by its pid, politely first.
stop_relay() {
	[ -n "${RPID:-}" ] || return 0
	kill "$RPID" 2>/dev/null || true
	wait_until 5 not_running "$RPID" || kill -9 "$RPID" 2>/dev/null || true
	wait "$RPID" 2>/dev/null || true
	RPID=
}
