#!/usr/bin/env python3
"""two_writers.py - the stress driver of tests/integration/94-two-writers.bats.

Writers change overlapping trees of two replicas for a bounded time; a
checker then says whether any content either side wrote was lost.  Python
standard library only.

  run --root DIR --name W --seed N --duration S --log FILE [--lock FILE]
      [--pace MS]
      One writer: seeded random ops on DIR (d0..d2 x 8 names) until S
      seconds have passed; one JSON line per op to FILE.  Writers of one
      replica share --lock (an flock held across each op), so that one
      writer never destroys what another of its side wrote unseen.
  schedule --seed N --duration S [--sides A,B]
      When to take a daemon down: "AT SIDE SIGNAL DOWN" lines (seconds
      from the start, the side, TERM or KILL, seconds it stays down).
  check --log FILE... --replica NAME=DIR...
      Reads every writer's events and every replica's files; exit 1 (with
      the evidence) if a token that should survive is missing from a
      replica or a line is not one a writer wrote.

Content.  Every write or append brings a fresh token "W:n" (W the writer,
n its counter).  A file is lines "W:n I FILLER\\n"; FILLER is derived from
the token and I, so the checker knows each line is intact.

The model is exact about what each writer destroys.  Before a writer
overwrites, truncates, unlinks or renames over a file, it opens the file
O_WRONLY (no O_TRUNC): while a file is open for writing through the
mount, wkfs holds remote puts and removes to it until the close, so its
content cannot change under us.  It reads that content through a second
fd (checking both fds are the same inode), records the tokens it is about
to destroy, does the op, then closes.  For unlink and rename-over it also
checks afterwards that the inode it read is the one that lost its name
(st_nlink 0): a remote move of the open file is not held, and can take it
away between the check and the op.  Then nothing read was destroyed; the
event says "raced" and the checker names it beside any loss.  A rename
onto a name that held nothing when looked at is a renameat2 with
RENAME_NOREPLACE: a file a remote op brings there meanwhile is not
replaced unseen (the writer's op fails with EEXIST instead).

A token is expected to survive iff some writer wrote it and no writer
recorded it destroyed.  A surviving token may be anywhere (a conflict
copy, a file the other side moved): the checker looks in every file.
"""
import argparse
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import random
import re
import stat
import sys
import time

DIRS = ["d0", "d1", "d2"]
NAMES = ["n0.txt", "n1.txt", "n2.md", "n3", "n4.c", "n5.txt", "n6", "n7.md"]

# op: weight
OPS = {
    "write": 24,
    "append": 16,
    "truncate": 8,
    "rename": 16,
    "unlink": 9,
    "mkdir": 7,
    "rmdir": 7,
    "chmod": 6,
    "symlink": 5,
}

TOKEN_RE = re.compile(rb"^([A-Za-z][A-Za-z0-9]*:[0-9]+) ([0-9]+) ([0-9a-f]*)\n$")


_LIBC = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1


def rename_noreplace(src, dst):
    """rename(2) that fails with EEXIST instead of replacing dst."""
    if _LIBC.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD,
                       os.fsencode(dst), RENAME_NOREPLACE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), dst)


def filler(tok, i, length):
    seed = hashlib.sha256(f"{tok}/{i}".encode()).hexdigest()
    return (seed * (length // len(seed) + 1))[:length]


def make_line(tok, i, length):
    return f"{tok} {i} {filler(tok, i, length)}\n".encode()


def parse_line(line):
    """(token, ok): the line's token and whether it is intact."""
    m = TOKEN_RE.match(line)
    if not m:
        return None, False
    tok = m.group(1).decode()
    i = int(m.group(2))
    ok = make_line(tok, i, len(m.group(3))) == line
    return tok, ok


def tokens_of(data):
    toks = set()
    for line in data.splitlines(keepends=True):
        tok, _ = parse_line(line)
        if tok is not None:
            toks.add(tok)
    return toks


# ---- the writer -----------------------------------------------------------


class Writer:
    def __init__(self, root, name, seed, log, lock, pace):
        self.root = root
        self.name = name
        self.rng = random.Random(f"{seed}:{name}")
        self.log = log
        self.lock = lock
        self.pace = pace
        self.counter = 0
        self.seq = 0
        self.t0 = time.monotonic()

    def p(self, rel):
        return os.path.join(self.root, rel)

    def token(self):
        self.counter += 1
        return f"{self.name}:{self.counter}"

    def pick_file(self):
        return f"{self.rng.choice(DIRS)}/{self.rng.choice(NAMES)}"

    def pick_any(self):
        if self.rng.random() < 0.12:
            return self.rng.choice(DIRS)
        return self.pick_file()

    def content(self, tok):
        r = self.rng.random()
        if r < 0.05:
            nlines = self.rng.randint(200, 2000)  # 20 to 200 KB
        elif r < 0.3:
            nlines = self.rng.randint(2, 20)
        else:
            nlines = 1
        return b"".join(make_line(tok, i, self.rng.randint(0, 100))
                        for i in range(nlines))

    # held_content FD REL: FD's content, read through a second fd of the
    # same inode, or None when REL now names another inode.
    def held_content(self, fd, rel):
        fd2 = os.open(self.p(rel), os.O_RDONLY | os.O_NOFOLLOW)
        try:
            a, b = os.fstat(fd), os.fstat(fd2)
            if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
                return None
            chunks = []
            while True:
                c = os.read(fd2, 1 << 16)
                if not c:
                    break
                chunks.append(c)
            return b"".join(chunks)
        finally:
            os.close(fd2)

    def still_named(self, fd, rel):
        a = os.fstat(fd)
        b = os.lstat(self.p(rel))
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    @staticmethod
    def write_all(fd, data):
        while data:
            n = os.write(fd, data)
            data = data[n:]

    # Each op fills ev and raises OSError on failure; "destroyed" is set
    # only once the destructive syscall succeeded.

    def op_write(self, ev):
        rel = ev["path"] = self.pick_file()
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW,
                     0o644)
        try:
            old = self.held_content(fd, rel)
            if old is None:
                ev["skipped"] = "another inode at the path"
                return
            tok = self.token()
            data = self.content(tok)
            os.ftruncate(fd, 0)
            ev["destroyed"] = sorted(tokens_of(old))
            ev["tok"] = tok
            ev["size"] = len(data)
            self.write_all(fd, data)
        finally:
            os.close(fd)

    def op_append(self, ev):
        rel = ev["path"] = self.pick_file()
        tok = self.token()
        data = b"".join(make_line(tok, i, self.rng.randint(0, 100))
                        for i in range(self.rng.randint(1, 3)))
        fd = os.open(self.p(rel),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                     0o644)
        try:
            ev["tok"] = tok
            self.write_all(fd, data)
        finally:
            os.close(fd)

    def op_truncate(self, ev):
        rel = ev["path"] = self.pick_file()
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_NOFOLLOW)
        try:
            old = self.held_content(fd, rel)
            if old is None:
                ev["skipped"] = "another inode at the path"
                return
            lines = old.splitlines(keepends=True)
            keep = 0 if self.rng.random() < 0.4 else \
                self.rng.randint(0, len(lines))
            kept = b"".join(lines[:keep])
            os.ftruncate(fd, len(kept))
            ev["size"] = len(kept)
            ev["destroyed"] = sorted(tokens_of(old) - tokens_of(kept))
        finally:
            os.close(fd)

    # destroy_at REL ACTION: runs ACTION (an unlink or a rename onto REL)
    # with REL's file held open, recording what it destroys.
    def destroy_at(self, ev, rel, action):
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_NOFOLLOW)
        try:
            old = self.held_content(fd, rel)
            if old is None or not self.still_named(fd, rel):
                ev["skipped"] = "another inode at the path"
                return
            action()
            if os.fstat(fd).st_nlink == 0:
                ev["destroyed"] = sorted(tokens_of(old))
            else:
                # A remote batch moved it away between the check and
                # the op (moves of an open file are not held): what
                # was read survives elsewhere; what the op replaced
                # instead, if anything, is unknown.
                ev["raced"] = sorted(tokens_of(old))
        finally:
            os.close(fd)

    def op_unlink(self, ev):
        rel = ev["path"] = self.pick_file()
        st = os.lstat(self.p(rel))
        if stat.S_ISREG(st.st_mode):
            self.destroy_at(ev, rel, lambda: os.unlink(self.p(rel)))
        else:
            os.unlink(self.p(rel))

    def op_rename(self, ev):
        src = ev["path"] = self.pick_any()
        dst = ev["to"] = self.pick_any()
        if src == dst:
            ev["skipped"] = "same name"
            return
        try:
            st = os.lstat(self.p(dst))
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            self.destroy_at(ev, dst,
                            lambda: os.rename(self.p(src), self.p(dst)))
        elif st is None:
            # Nothing there when we looked: a file a remote op brings
            # meanwhile must not be replaced unseen.
            rename_noreplace(self.p(src), self.p(dst))
        else:
            os.rename(self.p(src), self.p(dst))

    def op_mkdir(self, ev):
        rel = ev["path"] = self.pick_any()
        os.mkdir(self.p(rel))

    def op_rmdir(self, ev):
        rel = ev["path"] = self.pick_any()
        os.rmdir(self.p(rel))

    def op_chmod(self, ev):
        rel = ev["path"] = self.pick_any()
        st = os.lstat(self.p(rel))
        if stat.S_ISLNK(st.st_mode):
            ev["skipped"] = "symlink"
            return
        modes = [0o755, 0o700, 0o750] if stat.S_ISDIR(st.st_mode) else \
            [0o644, 0o600, 0o640, 0o755]
        ev["mode"] = oct(self.rng.choice(modes))
        os.chmod(self.p(rel), int(ev["mode"], 8))

    def op_symlink(self, ev):
        rel = ev["path"] = self.pick_file()
        target = self.rng.choice([f"../{self.rng.choice(DIRS)}/"
                                  f"{self.rng.choice(NAMES)}",
                                  self.rng.choice(NAMES),
                                  f"nowhere-{self.name}-{self.seq}"])
        ev["target"] = target
        os.symlink(target, self.p(rel))

    def one(self):
        self.seq += 1
        kinds = list(OPS)
        kind = self.rng.choices(kinds, [OPS[k] for k in kinds])[0]
        ev = {"w": self.name, "i": self.seq,
              "t": round(time.time(), 3), "op": kind}
        if self.lock is not None:
            fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            getattr(self, "op_" + kind)(ev)
            ev["res"] = "ok"
        except OSError as e:
            ev["res"] = errno.errorcode.get(e.errno, str(e.errno))
        finally:
            if self.lock is not None:
                fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.log.write(json.dumps(ev, sort_keys=True) + "\n")
        self.log.flush()

    def run(self, duration):
        end = self.t0 + duration
        while time.monotonic() < end:
            self.one()
            if self.pace:
                time.sleep(self.rng.uniform(0, self.pace / 1000))


def cmd_run(a):
    lock = open(a.lock, "a") if a.lock else None
    with open(a.log, "a") as log:
        w = Writer(a.root, a.name, a.seed, log, lock, a.pace)
        w.run(a.duration)
    print(f"{a.name}: {w.seq} ops, {w.counter} tokens", file=sys.stderr)


# ---- the schedule ---------------------------------------------------------


def cmd_schedule(a):
    rng = random.Random(f"{a.seed}:schedule")
    sides = a.sides.split(",")
    longest = max(1.5, a.duration / 5)
    t = rng.uniform(1, 3)
    while t < a.duration - 2:
        down = rng.uniform(1, longest)
        sig = "KILL" if rng.random() < 0.25 else "TERM"
        print(f"{t:.2f} {rng.choice(sides)} {sig} {down:.2f}")
        t += down + rng.uniform(1.5, longest)


# ---- the checker ----------------------------------------------------------


def read_events(paths):
    events = []
    for p in paths:
        with open(p) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if line:
                    events.append(json.loads(line))
    return events


def scan_replica(root):
    """{token: {paths}} over every regular file, and the bad lines."""
    where = {}
    bad = []
    for d, dirs, files in os.walk(root):
        if d == root:
            dirs[:] = [x for x in dirs if x != ".wkfs"]
        for name in files:
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            if not stat.S_ISREG(os.lstat(p).st_mode):
                continue
            with open(p, "rb") as f:
                data = f.read()
            for n, line in enumerate(data.splitlines(keepends=True), 1):
                tok, ok = parse_line(line)
                if not ok:
                    bad.append((rel, n, line[:80]))
                if tok is not None:
                    where.setdefault(tok, set()).add(rel)
    return where, bad


def show_event(ev):
    t = time.strftime("%H:%M:%S", time.gmtime(ev["t"]))
    ms = int(ev["t"] * 1000) % 1000
    rest = {k: v for k, v in ev.items() if k != "t"}
    return f"{t}.{ms:03d} {json.dumps(rest, sort_keys=True)}"


def touches(ev, paths):
    for k in ("path", "to"):
        v = ev.get(k)
        if v is None:
            continue
        for p in paths:
            if v == p or p.startswith(v + "/") or v.startswith(p + "/"):
                return True
    return False


def cmd_check(a):
    events = read_events(a.log)
    written = {}
    destroyed = {}
    raced = []
    stats = {}
    for ev in events:
        key = (ev["w"], ev["op"], ev["res"])
        stats[key] = stats.get(key, 0) + 1
        if "tok" in ev and ev["res"] == "ok":
            written[ev["tok"]] = ev
        elif "tok" in ev:
            # a write that failed part way may have left some lines
            written.setdefault(ev["tok"], ev)
        for tok in ev.get("destroyed", []):
            destroyed.setdefault(tok, []).append(ev)
        if "raced" in ev:
            raced.append(ev)
    expected = {t for t, ev in written.items()
                if t not in destroyed and ev["res"] == "ok"}

    writers = sorted({ev["w"] for ev in events})
    for w in writers:
        mine = {k[1:]: n for k, n in stats.items() if k[0] == w}
        total = sum(mine.values())
        ok = sum(n for (op, res), n in mine.items() if res == "ok")
        print(f"writer {w}: {total} ops, {ok} ok; " +
              ", ".join(f"{op} {res} {n}" for (op, res), n in
                        sorted(mine.items())))
    print(f"tokens: {len(written)} written, {len(destroyed)} destroyed, "
          f"{len(expected)} expected to survive")

    failed = False
    if raced:
        print(f"note: {len(raced)} unlink or rename-over found its name "
              f"taken by another inode than the one it had read (a remote "
              f"move in between); what it replaced is not in the model, "
              f"so a token missing at its name may be its doing:")
        for ev in raced:
            print("  " + show_event(ev))

    scans = {}
    for spec in a.replica:
        name, root = spec.split("=", 1)
        scans[name] = scan_replica(root)
    for name, (where, bad) in scans.items():
        present = set(where)
        missing = sorted(expected - present,
                         key=lambda t: (t.split(":")[0], int(t.split(":")[1])))
        unknown = sorted(present - set(written))
        back = len(present & set(destroyed))
        print(f"replica {name}: {len(present)} tokens in its files, "
              f"{back} of them destroyed by some writer (kept by a merge), "
              f"{len(missing)} missing, {len(bad)} bad lines")
        if bad:
            failed = True
            for rel, n, line in bad[:20]:
                print(f"  bad line {rel}:{n}: {line!r}")
        if unknown:
            failed = True
            print(f"  tokens no writer wrote: {unknown[:20]}")
        for tok in missing[:a.max_missing]:
            failed = True
            ev = written[tok]
            elsewhere = "; ".join(f"on {other} in {', '.join(sorted(w[tok]))}"
                                  for other, (w, _) in scans.items()
                                  if tok in w) or "on no replica"
            print(f"  MISSING {tok} on {name} ({elsewhere}), written by")
            print("      " + show_event(ev))
            later = [e for e in events
                     if e is not ev and e["t"] >= ev["t"] and
                     touches(e, [ev["path"]])]
            later.sort(key=lambda e: e["t"])
            for e in later[:a.context]:
                print("      then " + show_event(e))
        if len(missing) > a.max_missing:
            failed = True
            print(f"  ... and {len(missing) - a.max_missing} more missing")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--root", required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--lock")
    r.add_argument("--pace", type=float, default=20,
                   help="at most this many ms between ops")
    s = sub.add_parser("schedule")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--sides", default="A,B")
    c = sub.add_parser("check")
    c.add_argument("--log", action="append", required=True)
    c.add_argument("--replica", action="append", required=True)
    c.add_argument("--max-missing", type=int, default=30)
    c.add_argument("--context", type=int, default=12)
    a = ap.parse_args()
    if a.cmd == "run":
        cmd_run(a)
        return 0
    if a.cmd == "schedule":
        cmd_schedule(a)
        return 0
    return cmd_check(a)


if __name__ == "__main__":
    sys.exit(main())
