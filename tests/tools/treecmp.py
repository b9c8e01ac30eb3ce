#!/usr/bin/env python3
"""treecmp.py - a tree's contents as comparable lines; two trees compared.

    treecmp.py list [OPTIONS] DIR
    treecmp.py diff [OPTIONS] A B

`list` prints one line per entry under DIR (DIR itself is not listed),
sorted by the path's bytes:

    PATH<TAB>type=f<TAB>mode=0644<TAB>size=12<TAB>sha256=...<TAB>mtime=...

PATH is relative to DIR, bytes as they are on disk, escaped so that a line
is one line: backslash, bytes below 0x21 (space, tab and newline among
them), 0x7f and every byte at or above 0x80 become \\xNN; everything else is
itself.  Which key=value fields follow depends on the entry's type (f file,
d directory, l symlink, o anything else) and on --fields:

    type     f, d, l or o (always listed when selected)
    mode     permission bits, st_mode & 07777, octal (not for symlinks:
             Linux has no lchmod, their mode is always 0777)
    size     st_size of files
    sha256   of a file's content
    target   a symlink's target, escaped as PATH
    mtime    st_mtime_ns of files and symlinks, exact
    dirmtime st_mtime_ns of directories, exact
    links    for a file with st_nlink > 1: its hard-link group, the
             smallest path (by bytes) of an entry of the tree with the same
             (st_dev, st_ino), escaped; a file whose other links are all
             outside the tree is its own group.  Files with st_nlink 1
             have no links field.

The default is every field but dirmtime: `--fields default` names that set,
`--fields all` adds dirmtime, and a comma list (`--fields links`,
`--fields default,-mtime`) picks some; `-NAME` takes one away.

Why no directory mtimes by default: wkfs replicates a directory's mtime only
with its mkdir (the creation time, taken from the op's clock) and with an
explicit setattr (`touch DIR`); the mtime the kernel sets when an entry is
created in or removed from a directory is never recorded, and on the other
replica applying the same entries changes it at that moment.  So directory
mtimes legitimately differ between replicas; `--fields all` (or
`dirmtime`) shows by how much.

Skipped: the top-level `.wkfs` (wkfs's sidecar, hidden by a mounted folder
anyway) and every entry matching a --skip PATTERN, with its subtree.  A
PATTERN without a slash is matched (fnmatch, on bytes) against the entry's
name, one with a slash against its whole relative path, as in .gitignore.
The tests pass wkfs's default ignore patterns, so that a vim backup `f~`
(kept on A, never synced) does not count as a difference.

`diff` lists both trees and compares them path by path.  It exits 0 when
they are equal, 1 when they differ, after printing at most --max (20)
differences, each as

    - A: LINE        (only in A, or A's side of a difference)
    + B: LINE
    ~ PATH: mtime, sha256 differ (mtime: B - A = -3000000 ns)

and a last line `N differences (fields: F,...)`.  Exit 2: usage, or a
directory that cannot be read.

An entry that changes or disappears while it is being read is listed as
`type=?` (it is not an error: a caller polling a tree that is still
syncing simply sees a difference and asks again).

Standard library only.
"""

import fnmatch
import hashlib
import os
import stat
import sys

FIELDS = ["type", "mode", "size", "sha256", "target", "mtime", "dirmtime",
          "links"]
DEFAULT = [f for f in FIELDS if f != "dirmtime"]


def escape(b):
    out = []
    for c in b:
        if c <= 0x20 or c == 0x5c or c >= 0x7f:
            out.append("\\x%02x" % c)
        else:
            out.append(chr(c))
    return "".join(out)


def parse_fields(spec):
    chosen = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if part in ("default", "all"):
            for f in (DEFAULT if part == "default" else FIELDS):
                if f not in chosen:
                    chosen.append(f)
        elif part.startswith("-") and part[1:] in FIELDS:
            if part[1:] in chosen:
                chosen.remove(part[1:])
        elif part in FIELDS:
            if part not in chosen:
                chosen.append(part)
        else:
            raise ValueError("unknown field '%s' (known: %s, default, all)"
                             % (part, ", ".join(FIELDS)))
    return [f for f in FIELDS if f in chosen]


def skipped(rel, name, patterns):
    for p in patterns:
        if b"/" in p:
            if fnmatch.fnmatchcase(rel, p.strip(b"/")):
                return True
        elif fnmatch.fnmatchcase(name, p):
            return True
    return False


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def walk(root, patterns):
    """Yields (rel, st, abspath) for every entry under root, not sorted."""
    stack = [b""]
    while stack:
        rel_dir = stack.pop()
        full_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            names = os.listdir(full_dir)
        except FileNotFoundError:
            continue  # removed while we walk: the caller will look again
        for name in names:
            rel = rel_dir + b"/" + name if rel_dir else name
            if rel == b".wkfs" or skipped(rel, name, patterns):
                continue
            p = os.path.join(full_dir, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                yield rel, None, p
                continue
            yield rel, st, p
            if stat.S_ISDIR(st.st_mode):
                stack.append(rel)


def listing(root, fields, patterns):
    """{rel: (line, {field: value})} for root."""
    entries = list(walk(root, patterns))
    groups = {}
    if "links" in fields:
        for rel, st, _ in entries:
            if st is not None and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key not in groups or rel < groups[key]:
                    groups[key] = rel
    out = {}
    for rel, st, p in entries:
        vals = {}
        if st is None:
            vals["type"] = "?"
        else:
            m = st.st_mode
            t = ("f" if stat.S_ISREG(m) else "d" if stat.S_ISDIR(m)
                 else "l" if stat.S_ISLNK(m) else "o")
            vals["type"] = t
            try:
                if t != "l":
                    vals["mode"] = "%04o" % stat.S_IMODE(m)
                if t == "f":
                    vals["size"] = str(st.st_size)
                    if "sha256" in fields:
                        vals["sha256"] = sha256_of(p)
                    vals["mtime"] = str(st.st_mtime_ns)
                    if st.st_nlink > 1:
                        vals["links"] = escape(
                            groups.get((st.st_dev, st.st_ino), rel))
                elif t == "l":
                    vals["target"] = escape(os.readlink(p))
                    vals["mtime"] = str(st.st_mtime_ns)
                elif t == "d":
                    vals["dirmtime"] = str(st.st_mtime_ns)
            except (FileNotFoundError, NotADirectoryError, OSError) as e:
                if isinstance(e, PermissionError):
                    raise
                vals = {"type": "?"}
        shown = {f: vals[f] for f in fields if f in vals}
        if "type" not in fields and vals.get("type") == "?":
            shown["type"] = "?"  # a vanished entry never compares equal
        line = escape(rel) + "".join(
            "\t%s=%s" % (f, shown[f]) for f in FIELDS if f in shown)
        out[rel] = (line, shown)
    return out


def cmd_list(root, fields, patterns):
    tree = listing(root, fields, patterns)
    w = sys.stdout.write
    for rel in sorted(tree):
        w(tree[rel][0] + "\n")
    return 0


def cmd_diff(a, b, fields, patterns, maxn):
    ta = listing(a, fields, patterns)
    tb = listing(b, fields, patterns)
    n = 0
    seen_fields = set()
    shown = 0

    def say(s):
        nonlocal shown
        if shown < maxn:
            print(s)

    for rel in sorted(set(ta) | set(tb)):
        ea, eb = ta.get(rel), tb.get(rel)
        if ea and eb and ea[0] == eb[0]:
            continue
        n += 1
        if ea:
            say("- A: " + ea[0])
        if eb:
            say("+ B: " + eb[0])
        if ea and eb:
            va, vb = ea[1], eb[1]
            diff = [f for f in FIELDS if va.get(f) != vb.get(f)]
            seen_fields.update(diff)
            note = ""
            if "mtime" in diff and "mtime" in va and "mtime" in vb:
                note = " (mtime: B - A = %d ns)" % (
                    int(vb["mtime"]) - int(va["mtime"]))
            say("~ %s: %s differ%s" % (escape(rel), ", ".join(diff), note))
        else:
            seen_fields.add("only in " + ("A" if ea else "B"))
        shown += 1
    if n:
        if n > maxn:
            print("... %d more" % (n - maxn))
        print("%d differences (%s)" % (n, ", ".join(sorted(seen_fields))))
        return 1
    return 0


def usage(msg=None):
    if msg:
        print("treecmp.py: " + msg, file=sys.stderr)
    print("usage: treecmp.py list [--fields F,...] [--skip PAT]... DIR\n"
          "       treecmp.py diff [--fields F,...] [--skip PAT]... [--max N]"
          " A B", file=sys.stderr)
    return 2


def main(argv):
    if not argv or argv[0] not in ("list", "diff"):
        return usage()
    cmd, args = argv[0], argv[1:]
    fields, patterns, maxn, pos = DEFAULT, [], 20, []
    i = 0
    try:
        while i < len(args):
            a = args[i]
            if a in ("--fields", "--skip", "--max") and i + 1 < len(args):
                v = args[i + 1]
                i += 2
                if a == "--fields":
                    fields = parse_fields(v)
                elif a == "--skip":
                    patterns.append(os.fsencode(v))
                else:
                    maxn = int(v)
            elif a.startswith("--fields="):
                fields = parse_fields(a.split("=", 1)[1])
                i += 1
            elif a == "--":
                pos += args[i + 1:]
                break
            elif a.startswith("--"):
                return usage("unknown option " + a)
            else:
                pos.append(a)
                i += 1
    except ValueError as e:
        return usage(str(e))
    want = 1 if cmd == "list" else 2
    if len(pos) != want:
        return usage()
    roots = [os.fsencode(p) for p in pos]
    for r in roots:
        if not os.path.isdir(r):
            print("treecmp.py: not a directory: %s" % os.fsdecode(r),
                  file=sys.stderr)
            return 2
    try:
        if cmd == "list":
            return cmd_list(roots[0], fields, patterns)
        return cmd_diff(roots[0], roots[1], fields, patterns, maxn)
    except PermissionError as e:
        print("treecmp.py: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
