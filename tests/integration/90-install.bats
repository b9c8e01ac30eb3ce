#!/usr/bin/env bats
# 90-install: `make install` and what it installs for systemd.  Installs into
# a PREFIX under the test's directory (so the units name programs that exist
# there) and checks the layout, then runs `systemd-analyze verify` on every
# unit: it needs no running systemd, and it checks that each ExecStart=
# program exists and is executable and that each Documentation= man page is
# found (MANPATH points into the install).  systemd does not run here, so
# wkfs@.service's commands are run the way it would run them.

load helpers

setup() {
	T=$(realpath "$BATS_TEST_TMPDIR")
	ROOT=$(realpath "$BATS_TEST_DIRNAME/../..")
	BUILD=${WKFS_BUILD:-$ROOT/build}
	P=$T/prefix
}

teardown() {
	wk_teardown
}

# make_install ARGS...: `make install` from the tree, using the build the
# tests run (no rebuild: tests/run runs after it).
make_install() {
	local san=0
	[[ $(basename "$BUILD") == build-san ]] && san=1
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -C "$ROOT" --no-print-directory -s B="$BUILD" SAN=$san "$@" \
		install </dev/null 3>&-
}

install_prefix() {
	make_install PREFIX="$P" SBINDIR="$P/sbin" >"$T/install.log" 2>&1 || {
		cat "$T/install.log" >&2
		return 1
	}
}

# verify [--user] UNIT...: systemd-analyze verify, which must exit 0 and say
# nothing about our units.
verify() {
	local out rc=0
	mkdir -p "$T/xdg" && chmod 700 "$T/xdg"
	out=$(cd "$T" && XDG_RUNTIME_DIR=$T/xdg MANPATH=$P/share/man \
		systemd-analyze verify "$@" 2>&1) || rc=$?
	printf '%s\n' "$out" >&2
	[ "$rc" = 0 ] || { echo "systemd-analyze verify exited $rc" >&2; return 1; }
	run ! grep -E 'wkfs|home-u-Notes' <<<"$out"
}

@test "make install puts everything under PREFIX" {
	install_prefix
	for f in bin/wkfs bin/wkfs-syncd bin/wkfs-relay; do
		[ -f "$P/$f" ] && [ -x "$P/$f" ] ||
			{ echo "missing $f" >&2; return 1; }
	done
	assert_equal "$(readlink "$P/sbin/mount.wkfs")" "$P/bin/wkfs"
	for f in lib/systemd/system/wkfs@.service \
		lib/systemd/system/wkfs-relay.service \
		lib/systemd/user/wkfs@.service \
		lib/sysusers.d/wkfs-relay.conf \
		share/bash-completion/completions/wkfs \
		share/man/man1/wkfs.1 share/man/man5/wkfs.conf.5 \
		share/man/man8/wkfs-syncd.8 share/man/man8/wkfs-relay.8 \
		share/doc/wkfs/home-u-Notes.mount \
		share/doc/wkfs/home-u-Notes.automount; do
		[ -f "$P/$f" ] || { echo "missing $f" >&2; return 1; }
		assert_equal "$(stat -c %a "$P/$f")" 644
	done
	# Every unit template's placeholder is filled in.
	run grep -rlIE '@[A-Z]+@' "$P"
	assert_failure
}

@test "the units run the programs installed under PREFIX" {
	install_prefix
	run grep -h '^Exec' "$P/lib/systemd/system/wkfs@.service"
	assert_output "ExecStart=$P/bin/wkfs mount %f -f
ExecStop=-$P/bin/wkfs umount %f"
	run grep -h '^ExecStart' "$P/lib/systemd/system/wkfs-relay.service"
	assert_output "ExecStart=$P/bin/wkfs-relay --data /var/lib/wkfs-relay"
	cmp "$P/lib/systemd/system/wkfs@.service" \
		"$P/lib/systemd/user/wkfs@.service"
}

@test "make install DESTDIR stages an install for PREFIX /usr" {
	make_install DESTDIR="$T/stage" PREFIX=/usr SBINDIR=/usr/sbin \
		>"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; false; }
	S=$T/stage
	[ -x "$S/usr/bin/wkfs" ]
	assert_equal "$(readlink "$S/usr/sbin/mount.wkfs")" /usr/bin/wkfs
	grep -qx 'ExecStart=/usr/bin/wkfs mount %f -f' \
		"$S/usr/lib/systemd/system/wkfs@.service"
	grep -q '^ExecStart=/usr/bin/wkfs-relay ' \
		"$S/usr/lib/systemd/system/wkfs-relay.service"
	[ -f "$S/usr/share/man/man1/wkfs.1" ]
	[ -f "$S/usr/share/bash-completion/completions/wkfs" ]
	# Nothing but usr/ under DESTDIR.
	assert_equal "$(ls "$S")" usr
}

@test "systemd-analyze verify passes on the system units" {
	install_prefix
	U=$P/lib/systemd/system
	D=$P/share/doc/wkfs
	verify "$U/wkfs@.service" "$U/wkfs-relay.service" \
		"$D/home-u-Notes.mount" "$D/home-u-Notes.automount"
	# An instance, as systemctl would start it for /home/u/Notes.
	assert_equal "$(systemd-escape --path /home/u/Notes)" home-u-Notes
	verify "$U/wkfs@home-u-Notes.service"
}

@test "systemd-analyze verify passes on the user unit" {
	install_prefix
	verify --user "$P/lib/systemd/user/wkfs@.service"
}

@test "the verify check fails when a unit's program is missing" {
	install_prefix
	rm "$P/bin/wkfs"
	run verify "$P/lib/systemd/system/wkfs@.service"
	assert_failure
	assert_output --partial "$P/bin/wkfs"
}

@test "wkfs-relay.service is sandboxed" {
	install_prefix
	U=$P/lib/systemd/system/wkfs-relay.service
	for d in User=wkfs-relay StateDirectory=wkfs-relay \
		ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes \
		PrivateTmp=yes CapabilityBoundingSet= PrivateDevices=yes; do
		grep -qx "$d" "$U" || { echo "no $d" >&2; return 1; }
	done
	# systemd's own rating: exposure 0.0 (locked down) to 10.0; fail
	# above 2.0 ("OK" starts below 5.0).
	run systemd-analyze security --offline=true --threshold=20 "$U"
	assert_success
	assert_output --partial "Overall exposure level for wkfs-relay.service"
}

@test "wkfs-relay.conf makes the wkfs-relay system user" {
	install_prefix
	mkdir -p "$T/root/etc"
	run systemd-sysusers --root="$T/root" "$P/lib/sysusers.d/wkfs-relay.conf"
	assert_success
	run grep '^wkfs-relay:' "$T/root/etc/passwd"
	assert_success
	assert_output --regexp '^wkfs-relay:x:[0-9]+:[0-9]+:wkfs relay:/var/lib/wkfs-relay:'
}

# unit_cmd UNIT KEY INSTANCE_PATH: the command line of KEY= in UNIT with %f
# expanded as systemd does for the instance of that path, and the "-" prefix
# (failure ignored) dropped.
unit_cmd() {
	local line
	line=$(sed -n "s/^$2=-\\{0,1\\}//p" "$1")
	printf '%s\n' "${line//%f/$3}"
}

gone() { ! kill -0 "$1" 2>/dev/null; }

@test "wkfs@.service's commands mount a folder and unmount it cleanly" {
	install_prefix
	wk_dirs
	echo hello >"$D/a"
	wk_init "$D"
	U=$P/lib/systemd/system/wkfs@.service
	inst=$(systemd-escape --path "$D")
	# what systemd makes %f of it
	assert_equal "$(systemd-escape --unescape --path "$inst")" "$D"
	start=$(unit_cmd "$U" ExecStart "$D")
	stop=$(unit_cmd "$U" ExecStop "$D")
	assert_equal "$start" "$P/bin/wkfs mount $D -f"
	WK_MOUNTS+=("$D")
	$start </dev/null >"$T/main.log" 2>&1 3>&- &
	main=$!
	WK_PIDS+=("$main")
	wait_until 30 is_fuse_mounted "$D"
	echo more >>"$D/a"
	WK_TIMEOUT=30 assert_op put a
	# ExecStop returns once the main process has finished; Type=exec's
	# main process must then exit 0, or Restart=on-failure restarts it.
	$stop </dev/null 3>&-
	run ! is_fuse_mounted "$D"
	wait_until 30 gone "$main"
	wait "$main" || { echo "main process exited $?" >&2; cat "$T/main.log" >&2; false; }
	assert_equal "$(cat "$D/a")" "hello
more"
}

@test "wkfs@.service's main process unmounts and exits 0 on SIGTERM" {
	install_prefix
	wk_dirs
	wk_init "$D"
	start=$(unit_cmd "$P/lib/systemd/system/wkfs@.service" ExecStart "$D")
	WK_MOUNTS+=("$D")
	$start </dev/null >"$T/main.log" 2>&1 3>&- &
	main=$!
	WK_PIDS+=("$main")
	wait_until 30 is_fuse_mounted "$D"
	# What systemd sends when ExecStop failed (a file still open) or
	# there is none.
	kill -TERM "$main"
	wait "$main" || { echo "main process exited $?" >&2; cat "$T/main.log" >&2; false; }
	wait_until 30 not_fuse_mounted "$D"
}
