#!/usr/bin/env bats
# 68-rundir: the runtime directory where a folder's control sockets live
# (lib/rundir.h) is used only when it is safe, and the servers on those
# sockets answer only their own user (and root).
#
# Users are plain uids, as in 66-users: U (the one whose folder it is) and
# X (another user of the machine, trying to catch U's requests).  U has no
# XDG_RUNTIME_DIR, as under cron, su or an fstab mount; /dev/fuse is root's
# here, so U's processes are the commands and wkfs-syncd (with a git
# remote), and the mount of the last test is root's.

load helpers

U=4242
X=4243

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (to act as other users)"
	umask 022
	T=$(mktemp -d /tmp/wkfs-rundir.XXXXXX)
	chmod 755 "$T"
	F=$T/f
	mkdir "$F" "$T/home"
	echo hello >"$F/note"
	git init -q --bare "$T/bare.git"
	chown -R $U:$U "$F" "$T/home" "$T/bare.git"
	BASE=/tmp/wkfs-$U
	rm -rf "$BASE" "/run/user/$U"
	SERVER_PIDS=()
}

teardown() {
	stop_pids "${SERVER_PIDS[@]}"
	wk_teardown
	[ -z "${BASE:-}" ] || rm -rf "$BASE" "/run/user/$U"
	[ -z "${T:-}" ] || rm -rf "$T"
}

# as UID CMD...: CMD as UID (group UID), without XDG_RUNTIME_DIR.  For
# a background process, "${AS[@]}" UID CMD... & (no function between, so
# that $! is the process itself: env and setpriv exec it).
AS=(env -u XDG_RUNTIME_DIR setpriv --clear-groups)
as() {
	local u=$1
	shift
	HOME=$T/home "${AS[@]}" --reuid="$u" --regid="$u" -- "$@"
}

W() { as $U "$WKFS_BIN" "$@" </dev/null 3>&-; }

# key DIR: the 16 hex digits naming DIR's runtime directory (XXH64 of the
# path, seed 0, as lib/rundir.c computes it).
key() {
	"$PY" - "$1" <<'PYEOF'
import sys
M = (1 << 64) - 1
P1, P2, P3 = 11400714785074694791, 14029467366897019727, 1609587929392839161
P4, P5 = 9650029242287828579, 2870177450012600261
rotl = lambda x, r: ((x << r) | (x >> (64 - r))) & M
def rnd(acc, v):
    return (rotl((acc + v * P2) & M, 31) * P1) & M
def merge(h, v):
    return ((h ^ rnd(0, v)) * P1 + P4) & M
def u64(b, i): return int.from_bytes(b[i:i + 8], "little")
b = sys.argv[1].encode()
n, i = len(b), 0
if n >= 32:
    v = [(P1 + P2) & M, P2, 0, (-P1) & M]
    while i + 32 <= n:
        v = [rnd(v[k], u64(b, i + 8 * k)) for k in range(4)]
        i += 32
    h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
    for x in v:
        h = merge(h, x)
else:
    h = P5
h = (h + n) & M
while i + 8 <= n:
    h = (rotl(h ^ rnd(0, u64(b, i)), 27) * P1 + P4) & M
    i += 8
if i + 4 <= n:
    h = (rotl(h ^ ((int.from_bytes(b[i:i + 4], "little") * P1) & M), 23) * P2 + P3) & M
    i += 4
while i < n:
    h = (rotl(h ^ ((b[i] * P5) & M), 11) * P1) & M
    i += 1
h ^= h >> 33
h = (h * P2) & M
h ^= h >> 29
h = (h * P3) & M
h ^= h >> 32
print("%016x" % h)
PYEOF
}

# plant SOCKET LOG: as X, a control socket at SOCKET that writes each
# request it gets to LOG and answers "ok" (what a spoofer would do).
plant() {
	: >"$2"
	chown $X "$2"
	"${AS[@]}" --reuid=$X --regid=$X -- "$PY" -c '
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
open(log, "a").write("listening\n")
while True:
    c, _ = s.accept()
    req = c.recv(4096)
    with open(log, "a") as f:
        f.write("got %r\n" % req)
    c.sendall(b"ok 1 0 0 0\n")
    c.close()
' "$1" "$2" </dev/null >/dev/null 2>&1 3>&- &
	SERVER_PIDS+=($!)
	wait_until 5 grep -q listening "$2"
}

# ask SOCKET REQUEST: as the caller, one request line and its reply.
ask() {
	"$PY" - "$1" "$2" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
print(s.makefile().readline().rstrip("\n"))
PYEOF
}

@test "the key of a runtime directory is XXH64 of the path (the tests' own check)" {
	mkdir "$T/r"
	wk_init "$T/r"
	WK_DIRS+=("$T/r")
	wk_mount "$T/r"
	assert_equal "$(cat "/run/wkfs/$(key "$T/r")/path")" "$T/r"
}

@test "a runtime directory another user made is refused, and its socket is never asked" {
	W init "$F" >/dev/null
	k=$(key "$F")
	as $X mkdir -m 755 "$BASE" "$BASE/$k"
	plant "$BASE/$k/fs.sock" "$T/planted.log"

	for cmd in "log $F" "status $F" "conflicts $F" "sync $F"; do
		# shellcheck disable=SC2086 # cmd is words
		run W $cmd
		assert_failure
		assert_output --partial "$BASE: owned by uid $X, not by you (uid $U)"
		assert_output --partial "refusing it as wkfs's runtime directory"
	done
	assert_equal "$(grep -c '^got' "$T/planted.log")" 0
	# without it, the same command works (nothing is mounted)
	rm -rf "$BASE"
	run W log "$F"
	assert_success
	assert_output --partial note
}

@test "a runtime directory open to others or a symbolic link is refused, even U's own" {
	W init "$F" >/dev/null
	as $U mkdir -m 777 "$BASE"
	as $U chmod 777 "$BASE"
	run W log "$F"
	assert_failure
	assert_output --partial "$BASE: mode 0777 lets other users in"
	# a symbolic link to a directory of X's
	rm -rf "$BASE"
	mkdir -m 700 "$T/xdir"
	chown $X:$X "$T/xdir"
	ln -s "$T/xdir" "$BASE"
	chown -h $X:$X "$BASE"
	run W log "$F"
	assert_failure
	assert_output --partial "$BASE: not a directory (a symbolic link)"
	# U's own folder directory with group access is refused too
	rm -f "$BASE"
	k=$(key "$F")
	as $U mkdir -m 700 "$BASE"
	as $U mkdir -m 750 "$BASE/$k"
	as $U chmod 750 "$BASE/$k"
	run W log "$F"
	assert_failure
	assert_output --partial "$BASE/$k: mode 0750 lets other users in"
}

@test "made 0700 and U's own whatever the umask, under /run/user/UID without XDG_RUNTIME_DIR" {
	W init "$F" --remote "git:$T/bare.git" >/dev/null
	mkdir -p /run/user
	mkdir -m 700 "/run/user/$U"
	chown $U:$U "/run/user/$U"
	# another user's XDG_RUNTIME_DIR (su keeps it) is not used either
	run env XDG_RUNTIME_DIR=/run/user/0 HOME="$T/home" \
		setpriv --reuid=$U --regid=$U --clear-groups -- \
		sh -c "umask 000 && exec '$WKFS_BUILD/wkfs-syncd' '$F' --once" </dev/null
	assert_success
	[ ! -e "$BASE" ]
	[ ! -e "/run/user/0/wkfs/$(key "$F")" ]
	assert_equal "$(stat -c '%u %a %F' "/run/user/$U/wkfs")" "$U 700 directory"

	# while it runs: the folder's directory too, and U's commands find it
	HOME=$T/home "${AS[@]}" --reuid=$U --regid=$U -- \
		sh -c "umask 000 && exec '$WKFS_BUILD/wkfs-syncd' '$F' -f" \
		</dev/null >"$T/syncd.log" 2>&1 3>&- &
	SERVER_PIDS+=($!)
	d=/run/user/$U/wkfs/$(key "$F")
	wait_until 10 [ -S "$d/syncd.sock" ]
	assert_equal "$(stat -c '%u %a' "$d")" "$U 700"
	run W status "$F" --json
	assert_success
	assert_output --partial '"running":true'
}

@test "wkfs-syncd answers its own user and root, and refuses others (SO_PEERCRED)" {
	W init "$F" --remote "git:$T/bare.git" >/dev/null
	HOME=$T/home "${AS[@]}" --reuid=$U --regid=$U -- \
		"$WKFS_BUILD/wkfs-syncd" "$F" -f </dev/null >"$T/syncd.log" 2>&1 3>&- &
	SERVER_PIDS+=($!)
	d=$BASE/$(key "$F")
	wait_until 10 [ -S "$d/syncd.sock" ]
	run as $U "$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"hello\n"); print(s.makefile().readline().strip())' "$d/syncd.sock"
	assert_output --regexp '^ok wkfs-syncd '
	# root may
	run ask "$d/syncd.sock" hello
	assert_output --regexp '^ok wkfs-syncd '
	# X reaches the socket only if the directories let it: here they do
	chmod 711 "$BASE" "$d"
	chmod 777 "$d/syncd.sock"
	run as $X "$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"stop\n"); print(s.makefile().readline().strip())' "$d/syncd.sock"
	assert_output "error permission denied: uid $X may not use this socket"
	grep -q "refused a control connection from uid $X" "$T/syncd.log"
	# still running: the stop was not taken
	kill -0 "${SERVER_PIDS[0]}"
	chmod 700 "$BASE" "$d"
}

@test "the mount's control socket refuses a client of another uid (SO_PEERCRED)" {
	wk_dirs
	wk_init "$D"
	wk_mount "$D"
	d=/run/wkfs/$(key "$D")
	[ -S "$d/fs.sock" ]
	run ask "$d/fs.sock" pid
	assert_output --regexp '^ok [0-9]+$'
	chmod 711 /run/wkfs "$d"
	chmod 777 "$d/fs.sock"
	run as $X "$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"dirfd\n"); print(s.makefile().readline().strip())' "$d/fs.sock"
	chmod 700 /run/wkfs "$d"
	assert_output "error permission denied: uid $X may not use this socket"
}
