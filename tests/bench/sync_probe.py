#!/usr/bin/env python3
"""sync_probe.py - the timed parts of tests/bench/sync.sh.

Writes on one replica and polls the other, with sub-millisecond clocks
and cheap polls (stat, one byte), so that what is measured is the sync
tool, not the shell.  It knows nothing about wkfs or Syncthing: it sees
two directories.  Every wait has a deadline; a wait that runs out prints
"timeout" instead of a number.

  latency SRC DST ROUNDS TIMEOUT   one line per round: seconds from the
                                   start of a save of SRC (open, write,
                                   close) to DST holding the new content
  many DIR N SIZE                  writes N files of SIZE random bytes;
                                   prints the wall-clock time after the
                                   last close
  wait_many DIR N SIZE TIMEOUT     prints the wall-clock time at which DIR
                                   first held N files of SIZE bytes
  wait_size PATH SIZE TIMEOUT      the same for one file of SIZE bytes
  flip PATH OFFSET                 rewrites the byte at OFFSET in place;
                                   prints its new value
  wait_byte PATH OFFSET VALUE TIMEOUT
                                   the wall-clock time at which PATH's
                                   byte at OFFSET read VALUE
"""
import os
import sys
import time

POLL = 0.002  # seconds between polls: cheap checks, fine resolution


def deadline_loop(timeout, check):
    """Calls check() until it returns a true value or timeout passes."""
    end = time.monotonic() + timeout
    while True:
        r = check()
        if r:
            return r
        if time.monotonic() >= end:
            return None
        time.sleep(POLL)


def read_or_none(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def latency(src, dst, rounds, timeout):
    for i in range(rounds):
        want = ("save %d at %.6f\n" % (i, time.time())).encode()
        t0 = time.monotonic()
        with open(src, "wb") as f:
            f.write(want)
        ok = deadline_loop(timeout, lambda: read_or_none(dst) == want)
        print("%.6f" % (time.monotonic() - t0) if ok else "timeout",
              flush=True)
        if not ok:
            return


def many(d, n, size):
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            f.write(os.urandom(size))
    print("%.6f" % time.time())


def count_sized(d, size):
    n = 0
    try:
        with os.scandir(d) as it:
            for e in it:
                try:
                    if e.is_file(follow_symlinks=False) and \
                       e.stat(follow_symlinks=False).st_size == size:
                        n += 1
                except OSError:
                    pass
    except OSError:
        return 0
    return n


def wait_many(d, n, size, timeout):
    # Scanning 10,000 entries costs a few ms: poll every 50 ms.
    end = time.monotonic() + timeout
    while count_sized(d, size) < n:
        if time.monotonic() >= end:
            print("timeout")
            return
        time.sleep(0.05)
    print("%.6f" % time.time())


def size_is(path, size):
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


def wait_size(path, size, timeout):
    ok = deadline_loop(timeout, lambda: size_is(path, size))
    print("%.6f" % time.time() if ok else "timeout")


def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)[0] ^ 0xFF
        f.seek(off)
        f.write(bytes([b]))
    print(b)


def byte_at(path, off):
    try:
        with open(path, "rb") as f:
            f.seek(off)
            b = f.read(1)
            return b[0] if b else None
    except OSError:
        return None


def wait_byte(path, off, value, timeout):
    ok = deadline_loop(timeout, lambda: byte_at(path, off) == value)
    print("%.6f" % time.time() if ok else "timeout")


def main(a):
    cmds = {
        "latency": (4, lambda: latency(a[1], a[2], int(a[3]), float(a[4]))),
        "many": (3, lambda: many(a[1], int(a[2]), int(a[3]))),
        "wait_many": (4, lambda: wait_many(a[1], int(a[2]), int(a[3]),
                                           float(a[4]))),
        "wait_size": (3, lambda: wait_size(a[1], int(a[2]), float(a[3]))),
        "flip": (2, lambda: flip(a[1], int(a[2]))),
        "wait_byte": (4, lambda: wait_byte(a[1], int(a[2]), int(a[3]),
                                           float(a[4]))),
    }
    if not a or a[0] not in cmds or len(a) != cmds[a[0]][0] + 1:
        sys.exit(__doc__)
    cmds[a[0]][1]()


if __name__ == "__main__":
    main(sys.argv[1:])
