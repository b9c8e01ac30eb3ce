#!/usr/bin/env bats
# 72-relay-metrics: what wkfs-relay tells about itself over plain HTTP.
# A real relay on 127.0.0.1 with --metrics, --admin-token-file and
# --status-page; two replicas (mounted, each with its own wkfs-syncd) sync
# through it, and curl scrapes GET /metrics (parsed by Prometheus' own
# Python parser) and headless Chromium loads the status page.  The status
# page's screenshot is kept in $WKFS_BUILD/test-out/.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd
RTEST=$WKFS_BUILD/wkfs-relay-test

load relay

SYNC_WAIT=60

# start_watched [OPTION...]: the relay with an admin token in $ADMIN and a
# metrics listener on $MPORT, plus OPTIONs.
start_watched() {
	ADMIN=$(openssl rand -hex 32)
	echo "$ADMIN" >"$T/admin.tok"
	start_relay 127.0.0.1:0 --metrics 127.0.0.1:0 \
		--admin-token-file "$T/admin.tok" "$@" || return 1
	MPORT=$(sed -n 's/^metrics on .*:\([0-9]*\)$/\1/p' "$RLOG")
	[ -n "$MPORT" ]
}

start_paged() { start_watched --status-page; }

setup() { :; }
teardown() { replicas_teardown; }

scrape() { curl -sSf --max-time 20 "http://127.0.0.1:$MPORT/metrics"; }

# metric NAME [LABELS]: one sample's value from a scrape, through
# prometheus_client's parser (a malformed exposition fails the test).
metric() {
	scrape | "$PY" -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
name, labels = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            print(int(s.value)); sys.exit(0)
sys.exit("no sample " + name + " " + repr(labels))
' "$@"
}

metric_is() { [ "$(metric "${@:2}")" = "$1" ]; }
metric_gt() { [ "$(metric "${@:2}")" -gt "$1" ]; }

@test "GET /metrics: the counters move as two replicas sync" {
	replicas_setup start_watched
	run metric wkfs_relay_folders
	assert_output 1
	metric_is 0 wkfs_relay_replicas folder=Notes
	metric_is 0 wkfs_relay_ops_received_total folder=Notes
	metric_is 0 wkfs_relay_bytes_received_total

	replica a
	replica b
	wait_until 30 metric_is 2 wkfs_relay_replicas folder=Notes
	mkdir "$A/docs"
	head -c 200000 /dev/urandom >"$A/docs/big.bin"
	echo hello >"$A/note.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"

	metric_gt 2 wkfs_relay_ops_received_total folder=Notes
	metric_gt 2 wkfs_relay_ops_sent_total folder=Notes
	metric_gt 0 wkfs_relay_pushes_total folder=Notes
	metric_gt 2 wkfs_relay_head_seq folder=Notes
	metric_gt 200000 wkfs_relay_bytes_received_total
	metric_gt 200000 wkfs_relay_bytes_sent_total
	metric_gt 200000 wkfs_relay_chunk_store_bytes folder=Notes
	metric_gt 0 wkfs_relay_commit_seconds_count what=ops
	metric_gt 0 wkfs_relay_commit_seconds_bucket what=ops le=+Inf
	metric_is 2 wkfs_relay_replicas_known folder=Notes
	metric_is 0 wkfs_relay_pushes_refused_total reason=missing
	# B applies and reports its cursor: nobody is behind
	wait_until 30 metric_is 0 wkfs_relay_cursor_lag_max folder=Notes

	# a replica that goes is not connected any more, and falls behind
	stop_syncd b
	wait_until 30 metric_is 1 wkfs_relay_replicas folder=Notes
	echo more >"$A/more.txt"
	wait_until 30 metric_gt 0 wkfs_relay_cursor_lag_max folder=Notes
}

@test "pushes refused are counted by reason" {
	replicas_setup start_watched
	run "$RTEST" push --as 1111 "ws://127.0.0.1:$PORT/Notes" "$TOK" 2222 1
	assert_failure 3
	assert_output --partial 'actor'
	wait_until 10 metric_is 1 wkfs_relay_pushes_refused_total reason=actor
	metric_is 1 wkfs_relay_errors_total reason=actor
	metric_is 0 wkfs_relay_pushes_refused_total reason=auth
	# a bad token is an error, not a push refused
	run "$RTEST" push "ws://127.0.0.1:$PORT/Notes" "$(openssl rand -hex 32)" 1 1
	assert_failure
	metric_is 1 wkfs_relay_errors_total reason=auth
	metric_is 0 wkfs_relay_pushes_refused_total reason=auth
}

@test "/metrics on the relay's port wants the admin token; / is off by default" {
	replicas_setup start_watched
	local u=http://127.0.0.1:$PORT
	run curl -s -o /dev/null -w '%{http_code}' "$u/metrics"
	assert_output 401
	run curl -s -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer ${ADMIN}x" "$u/metrics"
	assert_output 401
	run curl -sSf -H "Authorization: Bearer $ADMIN" "$u/metrics"
	assert_success
	assert_line 'wkfs_relay_folders 1'
	run curl -sSf -u "anyone:$ADMIN" "$u/metrics"
	assert_line 'wkfs_relay_folders 1'
	# no --status-page: no page, with the token or not
	run curl -s -o /dev/null -w '%{http_code}' -u "a:$ADMIN" "$u/"
	assert_output 404
	# the metrics listener speaks no WebSocket
	run "$RTEST" push "ws://127.0.0.1:$MPORT/Notes" "$TOK" 1 1
	assert_failure
	run "$RELAY" --data "$T/other" --status-page
	assert_failure 2
	assert_output --partial 'needs --admin-token-file'
	echo short >"$T/short.tok"
	run "$RELAY" --data "$T/other" --admin-token-file "$T/short.tok"
	assert_failure 2
	assert_output --partial 'at least 16 characters'
}

# chromium_dom URL OUT: the page's DOM after it loaded, and a screenshot in
# OUT.  Root needs --no-sandbox; its profile lives in the test's own dir.
chromium_dom() {
	local flags=(--headless --no-sandbox --disable-gpu --no-first-run
		--user-data-dir="$T/chromium" --window-size=1100,700)
	timeout 120 chromium "${flags[@]}" --screenshot="$2" "$1" \
		>"$T/chromium.log" 2>&1 || true
	timeout 120 chromium "${flags[@]}" --dump-dom "$1" 2>>"$T/chromium.log"
}

@test "the status page shows a connected replica in headless Chromium" {
	command -v chromium || skip "chromium is not installed (tools/install-deps)"
	replicas_setup start_paged
	local out=$WKFS_BUILD/test-out page actor
	mkdir -p "$out"
	replica a
	echo hi >"$A/hello.txt"
	wait_until 30 all_shipped "$A"
	# a client's own words in an error the page lists: escaped
	local s='<script>document.title="owned"</script><b id="bad">x</b>'
	local hex len
	hex=$(printf '%s' "$s" | od -An -tx1 | tr -d ' \n')
	len=$(printf '%08x' "${#s}" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
	run "$RTEST" raw --token "$TOK" "ws://127.0.0.1:$PORT/Notes" \
		"ff0100$len$hex"
	assert_output --partial 'the client gave up'

	actor=$(sqlite3 "$DATA/relay.db" \
		"SELECT printf('%016x', actor) FROM cursors WHERE actor != 0")
	[ -n "$actor" ]
	rm -f "$out/72-status-page.png"
	page=$(chromium_dom "http://admin:$ADMIN@127.0.0.1:$PORT/" \
		"$out/72-status-page.png")
	echo "$page" >"$out/72-status-page.html"
	echo "$page" | grep -q '<title>wkfs-relay</title>'
	# replica a: its device name (from its ops), actor, connected
	echo "$page" | grep 'class="replica"' |
		grep "class=\"device\">a <code>$actor</code>" |
		grep -q 'class="on">connected<'
	echo "$page" | grep -q 'class="folder">Notes<'
	echo "$page" | grep -q '&lt;script&gt;document.title'
	! echo "$page" | grep -q 'id="bad"'
	[ -s "$out/72-status-page.png" ]
	# without the token, no page
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/"
	assert_output 401
}
