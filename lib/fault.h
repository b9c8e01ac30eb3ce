/*
 * fault.h - named fault points for deterministic crash tests.
 *
 * Code that must survive a crash at a precise moment calls
 * fault_point("area.moment") there.  With WKFS_FAULT=area.moment in the
 * environment the process dies on the spot with _exit(FAULT_EXIT) - no
 * atexit handlers, no stdio flush, no cleanup, like a kill -9 - on the
 * WKFS_FAULT_AT-th time that point is reached (1 when unset);
 * WKFS_FAULT=area.moment:N says the same as WKFS_FAULT_AT=N.  Without
 * them a fault point costs a few getenv()s.
 *
 * Only one point is armed at a time, so a single counter counts its hits
 * (atomically: points may be reached from several threads).  The counter
 * lives for the process; a test forks a fresh child per crash.
 *
 * A test that must let a long-running process (the mount, a daemon, the
 * relay) get ready first arms a point later instead: with WKFS_FAULT_DIR
 * set, a point is armed while a file named like it exists in that
 * directory.  The file holds how many hits are left (empty: 1), counted
 * down in it; at the last the process deletes the file and dies, so the
 * restarted process runs unarmed (tests/integration/84-fault-matrix).
 */
#ifndef WKFS_FAULT_H
#define WKFS_FAULT_H

#define FAULT_EXIT 99

void fault_point(const char *name);

/*
 * A pause point: for a test that must act at an exact moment of another
 * process (a race made deterministic).  With WKFS_PAUSE_DIR set and a
 * file named like the point in that directory, the process deletes that
 * file (so a point pauses once per arming), creates "<name>.paused" there
 * and waits until the test deletes it, polling every 10 ms (for at most
 * ten minutes, so a dead test cannot hang the process for ever).  Without
 * WKFS_PAUSE_DIR a pause point costs one getenv().
 */
void fault_pause(const char *name);

#endif
