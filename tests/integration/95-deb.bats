#!/usr/bin/env bats
# 95-deb: the Debian package, as an admin uses it.  `make deb` builds it
# (dpkg-buildpackage, then lintian with no error allowed), `apt-get install`
# puts it on this machine, a folder made with the installed `wkfs init` is
# mounted through an fstab line by mount(8) and the installed
# /sbin/mount.wkfs, written and unmounted, and `dpkg --purge` must leave
# none of the package's files behind and the folder's data as it was.
#
# The build takes minutes: make check-long (WKFS_LONG=1) only.  It needs
# root and a machine where wkfs is not installed already (it would not
# replace someone's install).

load helpers

setup() {
	[ "${WKFS_LONG:-}" = 1 ] || skip "builds the package (minutes): make check-long"
	[ "$(id -u)" = 0 ] || skip "installs a package: needs root"
	T=$(realpath "$BATS_TEST_TMPDIR")
	ROOT=$(realpath "$BATS_TEST_DIRNAME/../..")
	INSTALLED=
}

teardown() {
	wk_teardown
	if [ -n "${INSTALLED:-}" ] && dpkg -s wkfs >/dev/null 2>&1; then
		dpkg --purge wkfs >&2 || true
	fi
}

mounted() { findmnt -n "$1" >/dev/null; }
not_mounted() { ! mounted "$1"; }

@test "make deb, apt-get install, fstab mount, write, purge: nothing left but the data" {
	if dpkg -s wkfs >/dev/null 2>&1 || [ -e /usr/bin/wkfs ] ||
		[ -e /sbin/mount.wkfs ]; then
		skip "wkfs is installed on this machine already"
	fi
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -C "$ROOT" --no-print-directory B="$T/build" deb \
		</dev/null >"$T/deb.log" 2>&1 || {
		tail -n 40 "$T/deb.log" >&2
		return 1
	}
	local deb
	deb=$(ls "$T"/build/deb/wkfs_*_*.deb)
	[ -f "$deb" ]

	INSTALLED=1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" \
		</dev/null >"$T/apt.log" 2>&1 || {
		cat "$T/apt.log" >&2
		return 1
	}
	dpkg -L wkfs >"$T/files"
	for f in /usr/bin/wkfs /usr/bin/wkfs-syncd /usr/bin/wkfs-relay \
		/lib/systemd/system/wkfs@.service \
		/lib/systemd/system/wkfs-relay.service \
		/usr/lib/systemd/user/wkfs@.service \
		/usr/lib/sysusers.d/wkfs-relay.conf \
		/usr/share/man/man1/wkfs.1.gz \
		/usr/share/man/man5/wkfs.conf.5.gz \
		/usr/share/man/man8/wkfs-relay.8.gz \
		/usr/share/man/man8/wkfs-syncd.8.gz \
		/usr/share/man/man8/mount.wkfs.8.gz \
		/usr/share/bash-completion/completions/wkfs; do
		grep -qx "$f" "$T/files" || { echo "not in the package: $f" >&2; return 1; }
		[ -e "$f" ] || { echo "not installed: $f" >&2; return 1; }
	done
	assert_equal "$(readlink /sbin/mount.wkfs)" /usr/bin/wkfs
	grep -q '^ExecStart=/usr/bin/wkfs-relay ' /lib/systemd/system/wkfs-relay.service
	# the relay's system user, made by the postinst (systemd-sysusers)
	getent passwd wkfs-relay
	run /usr/bin/wkfs --version
	assert_success

	# a folder, mounted in place through fstab and mount.wkfs
	local d=$T/Notes
	mkdir -p "$d"
	WK_DIRS+=("$d")
	/usr/bin/wkfs init "$d" </dev/null 3>&-
	printf '%s\n' "# scratch fstab" "$d  $d  wkfs  defaults,_netdev  0 0" \
		>"$T/fstab"
	LIBMOUNT_UTAB=$T/utab mount -a -T "$T/fstab" </dev/null 3>&-
	WK_MOUNTS+=("$d")
	wait_until 30 mounted "$d"
	[ "$(findmnt -n -o FSTYPE "$d")" = fuse.wkfs ]
	echo "kept after the purge" >"$d/hello.txt"
	run /usr/bin/wkfs log "$d" --json
	assert_output --partial '"path":"hello.txt"'
	LIBMOUNT_UTAB=$T/utab umount "$d"
	wait_until 30 not_mounted "$d"
	wait_until 30 no_wkfs_for "$d"

	dpkg --purge wkfs >"$T/purge.log" 2>&1 || {
		cat "$T/purge.log" >&2
		return 1
	}
	INSTALLED=
	! dpkg -s wkfs >/dev/null 2>&1
	local left=0 f
	while read -r f; do
		# directories the package shares with others stay (/lib and
		# /sbin are links to them on a merged /usr)
		[ -d "$f" ] && continue
		if [ -e "$f" ] || [ -L "$f" ]; then
			echo "left behind: $f" >&2
			left=1
		fi
	done <"$T/files"
	[ "$left" = 0 ]
	for f in /usr/share/doc/wkfs /usr/lib/sysusers.d/wkfs-relay.conf; do
		[ ! -e "$f" ] || { echo "left behind: $f" >&2; return 1; }
	done
	# the user's data: untouched
	assert_equal "$(cat "$d/hello.txt")" "kept after the purge"
	[ -f "$d/.wkfs/wkfs.db" ]
}
