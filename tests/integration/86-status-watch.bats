#!/usr/bin/env bats
# 86-status-watch: `wkfs status --watch` and `wkfs sync`'s progress, as a
# person sees them: on a terminal (tmux, read back with capture-pane; a
# pty from script(1)) and through a pipe.  One replica, mounted, with its
# own wkfs-syncd, syncing through a real wkfs-relay on 127.0.0.1.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

setup() {
	replicas_setup
	TMUX_SOCK=$T/tmux.sock
}

teardown() {
	# our own tmux server, by its socket
	tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
	replicas_teardown
}

# term CMD...: runs CMD in a 110x40 tmux pane (with this test's
# environment), the pane kept after CMD ends.
term() {
	local env=(env "PATH=$PATH" "TERM=xterm" "HOME=$HOME")
	[ -n "${XDG_RUNTIME_DIR:-}" ] && env+=("XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR")
	[ -n "${NO_COLOR:-}" ] && env+=("NO_COLOR=$NO_COLOR")
	tmux -S "$TMUX_SOCK" new-session -d -x 110 -y 40 "${env[@]}" "$@"
	tmux -S "$TMUX_SOCK" set-option -g remain-on-exit on >/dev/null
}

screen() { tmux -S "$TMUX_SOCK" capture-pane -p "$@"; }
screen_has() { screen | grep -qE -- "$1"; }

# big_set DIR N: N files of 64 KiB of random bytes under DIR/big.
big_set() {
	mkdir -p "$1/big"
	for i in $(seq "$2"); do
		head -c 65536 /dev/urandom >"$1/big/f$i"
	done
}

@test "status --watch redraws in place: files and bytes to go, then synced" {
	replica a
	stop_syncd a
	big_set "$A" 20
	term "$WKFS_BIN" status --watch --interval 1 "$A"
	wait_until 20 screen_has '^  pending +[0-9]+ ops, 1\.[0-9] MiB not yet sent \(20 files\)'
	screen_has 'wkfs status, every 1 s'
	screen_has "$A  .*Syncing|Needs attention"
	start_syncd a
	wait_until 60 screen_has '^  pending +0 ops, 0 B not yet sent$'
	wait_until 30 screen_has "$A  Synced"
	# redrawn in place: one header on the screen, whatever the refreshes
	[ "$(screen | grep -c 'wkfs status, every')" = 1 ]
	# colour on a terminal (green Synced) ...
	screen -e | grep -q $'\e\\[32mSynced'
}

@test "status --watch: NO_COLOR has no colour; through a pipe, a view per interval" {
	replica a
	NO_COLOR=1 term "$WKFS_BIN" status --watch --interval 1 "$A"
	wait_until 20 screen_has "$A  Synced"
	! screen -e | grep -q $'\e\\[3[0-9]m'

	# not a terminal: "--- TIME" and the view, every interval, no escapes
	timeout -s INT 4 "$WKFS_BIN" status --watch --interval 1 "$A" \
		>"$T/piped" </dev/null 3>&- || true
	[ "$(grep -c '^--- 20' "$T/piped")" -ge 2 ]
	[ "$(grep -c "^$A  Synced" "$T/piped")" -ge 2 ]
	! grep -q $'\e' "$T/piped"
	# --json: one document per line
	timeout -s INT 3 "$WKFS_BIN" status --watch --json --interval 1 "$A" \
		>"$T/json" </dev/null 3>&- || true
	[ "$(wc -l <"$T/json")" -ge 2 ]
	head -n 1 "$T/json" | jq -e '.folders[0].pending.files == 0 and .folders[0].to_receive == 0'

	run "$WKFS_BIN" status --watch --interval 0 "$A"
	assert_failure 2
	assert_output --partial '--interval takes whole seconds'
}

@test "wkfs sync on a terminal shows files and bytes to go" {
	local P=$T/pause spid
	replica a
	stop_syncd a
	big_set "$A" 20
	# The daemon that wkfs sync starts stops before its first PUSH until
	# the test has seen the progress line (lib/fault.h): no race with a
	# fast relay.  script(1) gives sync a pty for stderr; its typescript
	# keeps every rewrite of the progress line.
	mkdir -p "$P"
	touch "$P/syncd.push"
	WKFS_PAUSE_DIR=$P script -qfec "'$WKFS_BIN' sync --timeout 120 '$A'" \
		"$T/typescript" </dev/null >/dev/null 3>&- &
	spid=$!
	WK_PIDS+=("$spid")
	wait_until 60 test -e "$P/syncd.push.paused"
	wait_until 20 grep -aqE 'syncing: [0-9]+ files \([0-9.]+ [KM]iB\) in [0-9]+ ops to send, [0-9]+ ops to receive' \
		"$T/typescript"
	rm "$P/syncd.push.paused"
	wait "$spid"
	grep -aq 'synced (' "$T/typescript"
}
