#!/usr/bin/env python3
"""wkops.py - questions the integration tests ask about an oplog.

Reads `wkfs log DIR --json` (JSON Lines) on stdin and answers one question.
Python rather than jq because hlc and mtime_ns exceed 2^53 and jq 1.6
rounds them.  Used only through the wrappers in helpers.bash.

  count KIND PATH [SINCE]        ops of KIND at PATH with seq > SINCE ("*" = any)
  field KIND PATH FIELD [SINCE]  FIELD of the last such op ("" if none)
  mark                           the greatest seq (0 for an empty log)
  summary [SINCE]                one line per op: "kind path" or
                                 "move path new_path"
  state [PREFIX]                 the tree the ops describe, replayed by node id:
                                 "path<TAB>type<TAB>size" sorted (type create,
                                 mkdir or symlink; size of the last put, "-")
  disk DIR [PREFIX]              the same listing for the real tree under DIR,
                                 without the root .wkfs and default-ignored names
  size PATH                      size of the last put of the node now at PATH
  check                          validates every op's fields; prints problems
  viewdiff DIR                   reads `wkfs debug view` on stdin instead and
                                 prints each entry whose type, mode, mtime or
                                 symlink target differs from the disk under
                                 DIR (exit 1 if any)
"""
import fnmatch
import json
import os
import re
import stat
import sys

IGNORED = [".*.swp", ".*.swx", "4913", "*~", "#*#", ".#*", "~$*", ".~lock.*#",
           "*.part", "*.crdownload", ".DS_Store", "Thumbs.db"]


def read_ops():
    ops = []
    for n, line in enumerate(sys.stdin, 1):
        line = line.strip()
        if not line:
            continue
        try:
            ops.append(json.loads(line))
        except ValueError as e:
            sys.exit("wkops: log line %d is not JSON (%s): %r" % (n, e, line))
    return ops


def matches(op, kind, path, since):
    return (op.get("seq", 0) > since and (kind == "*" or op.get("kind") == kind)
            and (path == "*" or op.get("path") == path))


def summary_line(op):
    if op.get("kind") == "move":
        return "move %s %s" % (op.get("path"), op.get("new_path"))
    return "%s %s" % (op.get("kind"), op.get("path"))


def replay(ops):
    """Node id -> {path, type, size}.  A move onto an occupied name replaces
    the occupant (whether or not a remove was recorded for it) unless a later
    move names the occupant again (renameat2 RENAME_EXCHANGE recorded as two
    moves)."""
    nodes = {}
    for op in ops:
        k, node = op.get("kind"), op.get("node")
        if k in ("create", "mkdir", "symlink"):
            nodes[node] = {"path": op["path"], "type": k, "dead": False,
                           "size": 0 if k == "create" else None}
        elif k == "move" and node in nodes:
            old, new = nodes[node]["path"], op["new_path"]
            nodes[node]["dead"] = False
            for i, n in nodes.items():
                if i != node and not n["dead"] and n["path"] == new:
                    n["dead"] = True
            for i, n in nodes.items():
                if n["path"] == old and i == node:
                    n["path"] = new
                elif n["path"].startswith(old + "/") and not n["dead"]:
                    n["path"] = new + n["path"][len(old):]
        elif k == "remove":
            nodes.pop(node, None)
        elif k == "put" and node in nodes:
            nodes[node]["size"] = op.get("size")
    return {i: n for i, n in nodes.items() if not n["dead"]}


def fmt(rows, prefix):
    out = []
    for path, typ, size in rows:
        if prefix and path != prefix and not path.startswith(prefix + "/"):
            continue
        out.append("%s\t%s\t%s" % (path, typ, "-" if size is None else size))
    return "\n".join(sorted(out))


def ignored(name):
    return any(fnmatch.fnmatchcase(name, p) for p in IGNORED)


def disk_rows(root):
    rows = []

    def walk(d, rel):
        for e in sorted(os.scandir(d), key=lambda e: e.name):
            if rel == "" and e.name == ".wkfs":
                continue
            if ignored(e.name):
                continue
            p = rel + e.name
            st = os.lstat(e.path)
            if stat.S_ISLNK(st.st_mode):
                rows.append((p, "symlink", None))
            elif stat.S_ISDIR(st.st_mode):
                rows.append((p, "mkdir", None))
                walk(e.path, p + "/")
            else:
                rows.append((p, "create", st.st_size))
    walk(root, "")
    return rows


HEX16 = re.compile(r"^[0-9a-f]{16}$")
NODE = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{16}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MODE = re.compile(r"^[0-7]{4,5}$")
KINDS = {"mkdir", "create", "put", "move", "remove", "setattr", "symlink"}
# wk_device_valid(): 1-32 plain bytes, no '.' or '-' at either end
DEVICE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]{0,30}[A-Za-z0-9_])?$")


def check(ops):
    bad = []
    last_seq = last_hlc = None
    for op in ops:
        w = lambda msg: bad.append("seq %s: %s: %s" % (op.get("seq"), msg,
                                                      json.dumps(op)))
        k = op.get("kind")
        if k not in KINDS:
            w("unknown kind")
        if not isinstance(op.get("seq"), int):
            w("seq not an int")
        elif last_seq is not None and op["seq"] <= last_seq:
            w("seq not increasing")
        if not isinstance(op.get("hlc"), int):
            w("hlc not an int")
        else:
            if last_hlc is not None and op["hlc"] <= last_hlc:
                w("hlc not increasing (same actor)")
            last_hlc = op["hlc"]
        last_seq = op.get("seq")
        if not TIME.match(str(op.get("time"))):
            w("time not ISO-8601 UTC")
        elif isinstance(op.get("hlc"), int):
            import datetime
            ms = op["hlc"] >> 16
            t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
            if t.strftime("%Y-%m-%dT%H:%M:%S") != op["time"][:19]:
                w("time does not match hlc's milliseconds (%s)" % t.isoformat())
        if not HEX16.match(str(op.get("actor"))):
            w("actor not 16 hex")
        if "device" not in op or not (op["device"] is None or
                                      DEVICE.match(str(op["device"]))):
            w("device missing or not a device name")
        if not NODE.match(str(op.get("node"))):
            w("node not 16hex-16hex")
        if not isinstance(op.get("path"), str) or op["path"].startswith("/") \
                or op["path"] == "":
            w("path missing or not relative")
        if op.get("origin") != "local":
            w("origin not local")
        if not isinstance(op.get("shipped"), bool):
            w("shipped not a bool")
        if k in ("create", "mkdir", "symlink", "move"):
            if not NODE.match(str(op.get("parent"))):
                w("parent not an id")
            if not op.get("name") or "/" in op["name"]:
                w("bad name")
            elif op["path"].split("/")[-1] != op["name"]:
                w("name is not the last part of path")
        if k in ("create", "mkdir") and not MODE.match(str(op.get("mode"))):
            w("mode not an octal string")
        if k == "put":
            if not isinstance(op.get("size"), int):
                w("size not an int")
            if not re.match(r"^[0-9a-f]{32}$", str(op.get("hash"))):
                w("hash not 32 hex")
            if not isinstance(op.get("mtime_ns"), int):
                w("mtime_ns not an int")
            if "base" not in op:
                w("no base")
        if k == "move":
            if not NODE.match(str(op.get("new_parent"))):
                w("new_parent not an id")
            if not op.get("new_name") or not op.get("new_path"):
                w("new_name/new_path missing")
        if k == "symlink" and not isinstance(op.get("target"), str):
            w("target missing")
        if k == "setattr" and "mode" not in op and "mtime_ns" not in op:
            w("setattr with neither mode nor mtime_ns")
    return bad


VIEW_LINE = re.compile(r"^(.*?) ([fdl]) ([0-7]{4}) (-?\d+) (\S+) (.*)$")


def view_diff(root):
    """Entries of the engine's view (path type mode mtime hash target)
    that the disk under root does not show so: mode and mtime of files,
    targets of symlinks, types of all."""
    view = {}
    for line in sys.stdin.read().splitlines():
        m = VIEW_LINE.match(line)
        if not m:
            sys.exit("wkops: not a view line: " + line)
        path, t, mode, mtime, _, target = m.groups()
        view[path] = (t, int(mode, 8), int(mtime), target)
    disk = {}
    for d, dirs, files in os.walk(root):
        if d == root and ".wkfs" in dirs:
            dirs.remove(".wkfs")
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                disk[os.path.relpath(p, root)] = ("l", 0, 0, os.readlink(p))
            else:
                t = "d" if stat.S_ISDIR(st.st_mode) else "f"
                disk[os.path.relpath(p, root)] = (
                    t, stat.S_IMODE(st.st_mode), st.st_mtime_ns, "-")
    bad = 0
    for p in sorted(set(view) | set(disk)):
        v, k = view.get(p), disk.get(p)
        if v and k and v[0] == k[0] and (
                (v[0] == "f" and v[1:3] == k[1:3]) or
                (v[0] == "l" and v[3] == k[3]) or v[0] == "d"):
            continue
        print("%s: view %s, disk %s" % (p, v, k))
        bad += 1
    return bad


def main():
    a = sys.argv[1:]
    cmd = a[0]
    if cmd == "disk":
        print(fmt(disk_rows(a[1]), a[2] if len(a) > 2 else ""))
        return
    if cmd == "viewdiff":
        sys.exit(1 if view_diff(a[1]) else 0)
    ops = read_ops()
    if cmd == "count":
        since = int(a[3]) if len(a) > 3 else 0
        print(sum(1 for o in ops if matches(o, a[1], a[2], since)))
    elif cmd == "field":
        since = int(a[4]) if len(a) > 4 else 0
        hits = [o for o in ops if matches(o, a[1], a[2], since)]
        v = hits[-1].get(a[3]) if hits else None
        if v is None:
            print("")
        elif isinstance(v, bool):
            print("true" if v else "false")
        else:
            print(v)
    elif cmd == "mark":
        print(max([o.get("seq", 0) for o in ops] or [0]))
    elif cmd == "summary":
        since = int(a[1]) if len(a) > 1 else 0
        for o in ops:
            if o.get("seq", 0) > since:
                print(summary_line(o))
    elif cmd == "state":
        rows = [(n["path"], n["type"], n["size"]) for n in replay(ops).values()]
        print(fmt(rows, a[1] if len(a) > 1 else ""))
    elif cmd == "size":
        hits = [n for n in replay(ops).values() if n["path"] == a[1]]
        print(hits[0]["size"] if hits and hits[0]["size"] is not None else "")
    elif cmd == "check":
        for b in check(ops):
            print(b)
    else:
        sys.exit("wkops: unknown command " + cmd)


main()
