#!/usr/bin/env python3
"""fsstress.py - seeded random file-system churn from several processes.

    fsstress.py DIR [--seed N] [--procs 4] [--ops 400] [--no-link]
                    [--kinds create,write,...]

Forks --procs workers that each do --ops random operations under DIR, all
on one small pool of names (so they collide: renames over files others
write, rmdirs of directories others fill): create, write, truncate,
rename, link, symlink, chmod, mkdir, rmdir, unlink.  Worker i draws from
random.Random(seed * 1000 + i); --seed defaults to one drawn from the
clock.  Errors the races make (ENOENT, EEXIST, ENOTEMPTY, EISDIR, ...) are
counted, not fatal.  --no-link leaves hard links out (wkfs replicates a
hard link as a separate file; without them a divergence is something
else).  --kinds keeps only the kinds named (to narrow a failure down).

Prints `seed N` first (on stdout, flushed, so a failing caller has it),
then one summary line per worker: ops done by kind, errors.  Exits 0
unless a worker died (an exception that is not an OSError).

The same seed gives each worker the same choices; with several workers
the interleaving, and so the result, still depends on scheduling.  Run
with --procs 1 to reproduce a tree exactly.
"""

import argparse
import errno
import os
import random
import sys
import time

DIRS = ["", "d0", "d1", "d0/e0", "d0/e1", "d1/e0"]
NAMES = ["f%d" % i for i in range(8)] + ["a b", "caf\u00e9", "x.tmp"]
MODES = [0o600, 0o640, 0o644, 0o664, 0o700, 0o755]


def rand_path(rng, dirs_ok=True):
    d = rng.choice(DIRS)
    if dirs_ok and rng.random() < 0.15 and d:
        return d
    n = rng.choice(NAMES)
    return os.path.join(d, n) if d else n


def rand_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def do_op(rng, root, kind, no_link):
    p = os.path.join(root, rand_path(rng, dirs_ok=False))
    if kind == "create":
        n = rng.choice([0, 1, 100, 4096, 70000, 300000])
        with open(p, "wb") as f:
            f.write(rand_bytes(rng, n))
    elif kind == "write":
        fd = os.open(p, os.O_WRONLY)
        try:
            off = rng.randrange(0, 200000)
            os.pwrite(fd, rand_bytes(rng, rng.randrange(1, 5000)), off)
        finally:
            os.close(fd)
    elif kind == "truncate":
        os.truncate(p, rng.choice([0, 10, 5000, 100000]))
    elif kind == "rename":
        q = os.path.join(root, rand_path(rng))
        src = os.path.join(root, rand_path(rng))
        os.rename(src, q)
    elif kind == "link":
        os.link(p, os.path.join(root, rand_path(rng, dirs_ok=False)))
    elif kind == "symlink":
        target = rng.choice(["f0", "../f1", "d0/f2", "nowhere", "/etc/hostname",
                             "a b"])
        os.symlink(target, p)
    elif kind == "chmod":
        q = os.path.join(root, rand_path(rng))
        if os.path.islink(q):
            raise OSError(errno.EPERM, "no chmod of a symlink")
        mode = rng.choice(MODES)
        if os.path.isdir(q):
            mode |= 0o700  # keep directories usable by the others
        os.chmod(q, mode)
    elif kind == "mkdir":
        os.mkdir(os.path.join(root, rng.choice(DIRS[1:])))
    elif kind == "rmdir":
        os.rmdir(os.path.join(root, rng.choice(DIRS[1:])))
    elif kind == "unlink":
        os.unlink(p)


KINDS = [("create", 20), ("write", 15), ("truncate", 6), ("rename", 12),
         ("link", 5), ("symlink", 5), ("chmod", 8), ("mkdir", 10),
         ("rmdir", 4), ("unlink", 10)]


def worker(root, seed, i, nops, no_link, only):
    rng = random.Random(seed * 1000 + i)
    kinds = [k for k, w in KINDS for _ in range(w)
             if not (no_link and k == "link") and (not only or k in only)]
    done, errs = {}, 0
    for _ in range(nops):
        kind = rng.choice(kinds)
        try:
            do_op(rng, root, kind, no_link)
            done[kind] = done.get(kind, 0) + 1
        except OSError as e:
            if e.errno in (errno.EIO, errno.ENOTCONN, errno.ESTALE):
                print("worker %d: %s: %s" % (i, kind, e), file=sys.stderr)
            errs += 1
    print("worker %d: %s; %d errors" % (
        i, " ".join("%s=%d" % kv for kv in sorted(done.items())), errs))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--ops", type=int, default=400)
    ap.add_argument("--no-link", action="store_true")
    ap.add_argument("--kinds", default="")
    a = ap.parse_args()
    only = set(k for k in a.kinds.split(",") if k)
    unknown = only - set(k for k, _ in KINDS)
    if unknown:
        ap.error("unknown kinds: %s" % ",".join(sorted(unknown)))
    seed = a.seed if a.seed is not None else int(time.time() * 1000) % 100000
    print("seed %d" % seed)
    sys.stdout.flush()
    for d in DIRS[1:]:
        os.makedirs(os.path.join(a.dir, d), exist_ok=True)
    pids = []
    for i in range(a.procs):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                worker(a.dir, seed, i, a.ops, a.no_link, only)
            except BaseException as e:  # report, never return into main
                print("worker %d died: %r" % (i, e), file=sys.stderr)
                code = 1
            sys.stdout.flush()
            os._exit(code)
        pids.append(pid)
    bad = 0
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        bad |= st != 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
