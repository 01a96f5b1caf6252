#!/usr/bin/env python3
"""Differential tester: unionfs against the kernel's overlayfs.

For each seed: build two identical random lower trees (two layers, with
whiteouts and an opaque dir in the upper lower layer), mount the kernel's
overlayfs over one copy and unionfs over the other, replay the same random
operations on both in lockstep and compare every result (success or errno
name), then the merged trees, again after a remount of both, and finally the
kernel's view of the upper dir unionfs wrote. Lower trees must not change.

Every call into a mount runs in a worker process under a watchdog, so a hung
daemon fails one seed instead of hanging the run. Everything mounted is
unmounted by path on the way out.

usage: difftest.py --build DIR [--seeds 1-20|1,5,9] [--ops N] [--keep] [-v]
The last line is "N passed, N failed"; one ok/FAIL line per seed before it.
"""
import argparse
import atexit
import ctypes
import errno
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

OP_TIMEOUT = 20.0          # seconds for one operation in a mount
TREE_TIMEOUT = 60.0        # seconds for a whole-tree snapshot
NAMES = ["a", "b", "c", "d", "e", "f", "g", "dir1", "dir2", "sub", "x", "y", "h"]
UIDS = [0, 1000, 65534, 4242]
MODES = [0o644, 0o600, 0o755, 0o4755, 0o2755, 0o1777, 0o000, 0o444, 0o6711, 0o700]
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100
PAST_LIMIT_NS = 0          # set at start: mtimes newer than this are "now"
# Parts of the generator that --without can turn off (to skip a known bug
# while the rest still runs): see FEATURES.
FEATURES = {
    "lower-hardlinks": "hard links in the random lower trees",
    "lower-whiteout": "whiteouts in the upper lower layer",
    "lower-opaque": "an opaque dir in the upper lower layer",
    "link": "the link operation",
    "truncate-path": "truncate(2) by path (ftruncate stays)",
    "mkdir-sticky": "mkdir with the sticky bit in its mode",
    "setgid-dir": "setgid directories (in the lower trees, by chmod or mkdir)",
    "rename-dir": "renames of directories",
    "exchange": "RENAME_EXCHANGE",
    "xattr": "setxattr/removexattr",
    "chown": "chown",
    "fifo": "fifos",
    "symlink": "symlinks in the random trees and the symlink operation",
    "compat": "the kernel's view of the upper dir unionfs wrote",
    "remount": "the comparison after a remount",
}
OFF = set()

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]

MOUNTS = []                # mount points we made, newest last (for atexit)
PROCS = []                 # daemons we started (Popen), for atexit


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------
# Lower trees


def build_lowers(seed, l1, l2):
    """Builds the two lower layers (l1 is the upper one) from the seed."""
    rng = random.Random(seed * 7919 + 17)
    for d in (l1, l2):
        os.makedirs(d)
    for layer, top in ((l2, False), (l1, True)):
        populate(rng, layer, "", 0, top)
    # Names in both layers: shared dirs and files (l1 wins).
    for name in ("dir1", "sub", "a", "b"):
        for layer in (l2, l1):
            p = os.path.join(layer, name)
            if not os.path.lexists(p):
                if name.startswith(("dir", "sub")):
                    os.mkdir(p, 0o755)
                    populate(rng, layer, name, 1, layer == l1)
                else:
                    write_file(rng, p)
    # Whiteout and opaque dir in the upper lower layer.
    l2names = sorted(os.listdir(l2))
    hidden = [n for n in l2names if n not in ("dir1", "sub")]
    if hidden and "lower-whiteout" not in OFF:
        n = rng.choice(hidden)
        p = os.path.join(l1, n)
        if os.path.lexists(p):
            rm_any(p)
        os.mknod(p, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    dirs2 = [n for n in l2names if os.path.isdir(os.path.join(l2, n)) and not os.path.islink(os.path.join(l2, n))]
    if dirs2 and "lower-opaque" not in OFF:
        n = rng.choice(dirs2)
        p = os.path.join(l1, n)
        if os.path.lexists(p) and not os.path.isdir(p):
            rm_any(p)
        if not os.path.lexists(p):
            os.mkdir(p, 0o755)
            write_file(rng, os.path.join(p, rng.choice(NAMES)))
        os.setxattr(p, "trusted.overlay.opaque", b"y")
    # Whiteout inside a shared dir.
    for d in ("dir1", "sub"):
        sub2 = os.path.join(l2, d)
        sub1 = os.path.join(l1, d)
        if os.path.isdir(sub2) and not os.path.islink(sub2) and os.path.isdir(sub1) \
                and not os.path.islink(sub1) \
                and "trusted.overlay.opaque" not in os.listxattr(sub1):
            # (the kernel lists whiteouts in a dir that merges nothing, as an opaque dir
            # or one over a symlink to a dir: none there)
            cands = sorted(set(os.listdir(sub2)) - set(os.listdir(sub1)))
            if cands and "lower-whiteout" not in OFF:
                os.mknod(os.path.join(sub1, rng.choice(cands)), stat.S_IFCHR, os.makedev(0, 0))
    set_times(rng, l1)
    set_times(rng, l2)


def rm_any(p):
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p)
    else:
        os.unlink(p)


def rand_data(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n)) if n < 64 else rng.randbytes(n)


def write_file(rng, p):
    kind = rng.random()
    with open(p, "wb") as f:
        if kind < 0.15:
            # sparse: data, a hole, data
            f.write(rand_data(rng, rng.randint(1, 100)))
            f.seek(rng.choice([4096, 65536, 1 << 20]) + rng.randint(0, 5000))
            f.write(rand_data(rng, rng.randint(1, 100)))
        elif kind < 0.2:
            f.truncate(rng.choice([8192, 1 << 20]))
        elif kind < 0.25:
            pass
        else:
            f.write(rand_data(rng, rng.choice([1, 10, 100, 4096, 5000, 70000])))
    os.chmod(p, rng.choice([0o644, 0o644, 0o755, 0o600, 0o4755]))
    if rng.random() < 0.3:
        os.setxattr(p, "user." + rng.choice(["k1", "k2", "k3"]), rand_data(rng, rng.randint(0, 20)))
    if rng.random() < 0.2:
        os.chown(p, rng.choice(UIDS), rng.choice(UIDS))


def populate(rng, layer, rel, depth, top):
    base = os.path.join(layer, rel)
    files = []
    for _ in range(rng.randint(3, 7 if depth == 0 else 4)):
        name = rng.choice(NAMES)
        p = os.path.join(base, name)
        if os.path.lexists(p):
            continue
        r = rng.random()
        if r < 0.45:
            write_file(rng, p)
            files.append(p)
        elif r < 0.7 and depth < 2:
            os.mkdir(p, rng.choice([0o755, 0o755, 0o700, 0o2775]))
            if "setgid-dir" in OFF:
                os.chmod(p, os.stat(p).st_mode & 0o1777)
            if rng.random() < 0.3:
                os.setxattr(p, "user.d", rand_data(rng, 5))
            populate(rng, layer, os.path.join(rel, name), depth + 1, top)
        elif r < 0.8:
            if "symlink" not in OFF:
                os.symlink(rand_target(rng), p)
        elif r < 0.87:
            if "fifo" not in OFF:
                os.mkfifo(p, 0o644)
        elif files and "lower-hardlinks" not in OFF:
            os.link(rng.choice(files), p)
        else:
            write_file(rng, p)
    # a hard link across dirs, within this layer
    if depth == 1 and files and rng.random() < 0.5 and "lower-hardlinks" not in OFF:
        p = os.path.join(layer, "hl" + str(rng.randint(0, 9)))
        if not os.path.lexists(p):
            os.link(rng.choice(files), p)


def rand_target(rng):
    # Never absolute, never "..": a symlink must not lead outside the mount.
    parts = [rng.choice(NAMES) for _ in range(rng.randint(1, 2))]
    return "/".join(parts)


def set_times(rng, root):
    """Deterministic mtimes (in the past) on everything, dirs last."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in sorted(filenames) + sorted(dirnames):
            p = os.path.join(dirpath, n)
            t = rng.randint(10**18, 17 * 10**17)
            os.utime(p, ns=(t, t), follow_symlinks=False)
    t = rng.randint(10**18, 17 * 10**17)
    os.utime(root, ns=(t, t))


def lower_digest(root, full):
    """A digest of a lower tree; full adds ino and ctime (same-copy checks)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in [""] + sorted(filenames + dirnames):
            p = os.path.join(dirpath, n) if n else dirpath
            st = os.lstat(p)
            rec = [os.path.relpath(p, root), st.st_mode, st.st_uid, st.st_gid, st.st_nlink,
                   st.st_rdev, st.st_mtime_ns]
            if not stat.S_ISDIR(st.st_mode):
                rec.append(st.st_size)
            if full:
                rec += [st.st_ino, st.st_ctime_ns]
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    rec.append(hashlib.sha256(f.read()).hexdigest())
            if stat.S_ISLNK(st.st_mode):
                rec.append(os.readlink(p))
            for x in sorted(os.listxattr(p, follow_symlinks=False)):
                rec.append((x, os.getxattr(p, x, follow_symlinks=False).hex()))
            h.update(repr(rec).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Operations (run inside a worker; paths relative to the mount root)


def r_ok(v=None):
    return ("ok", v)


def ensure_data(seed, n):
    return random.Random(seed).randbytes(n)


def do_op(root, op):
    name, args = op[0], op[1:]
    P = lambda rel: os.path.join(root, rel)  # noqa: E731
    try:
        if name == "create":      # path, flags-name, mode, data-seed, len
            path, how, mode, ds, n = args
            flags = os.O_WRONLY | os.O_NONBLOCK | {
                "excl": os.O_CREAT | os.O_EXCL, "trunc": os.O_CREAT | os.O_TRUNC,
                "append": os.O_CREAT | os.O_APPEND, "appendnc": os.O_APPEND,
                "rdwr": 0}[how]
            if how == "rdwr":
                flags = os.O_RDWR | os.O_NONBLOCK
            fd = os.open(P(path), flags, mode)
            try:
                w = os.write(fd, ensure_data(ds, n)) if n else 0
            finally:
                os.close(fd)
            return r_ok(w)
        if name == "pwrite":      # path, offset, data-seed, len
            path, off, ds, n = args
            fd = os.open(P(path), os.O_WRONLY | os.O_NONBLOCK)
            try:
                return r_ok(os.pwrite(fd, ensure_data(ds, n), off))
            finally:
                os.close(fd)
        if name == "truncate":
            os.truncate(P(args[0]), args[1])
            return r_ok()
        if name == "ftruncate":
            fd = os.open(P(args[0]), os.O_RDWR | os.O_NONBLOCK)
            try:
                os.ftruncate(fd, args[1])
            finally:
                os.close(fd)
            return r_ok()
        if name == "mkdir":
            os.mkdir(P(args[0]), args[1])
            return r_ok()
        if name == "rmdir":
            os.rmdir(P(args[0]))
            return r_ok()
        if name == "unlink":
            os.unlink(P(args[0]))
            return r_ok()
        if name == "rename":      # src, dst, flags
            r = _libc.renameat2(AT_FDCWD, P(args[0]).encode(), AT_FDCWD, P(args[1]).encode(),
                                args[2])
            if r != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            return r_ok()
        if name == "link":
            os.link(P(args[0]), P(args[1]), follow_symlinks=False)
            return r_ok()
        if name == "symlink":
            os.symlink(args[1], P(args[0]))
            return r_ok()
        if name == "chmod":
            os.chmod(P(args[0]), args[1])
            return r_ok()
        if name == "chown":       # path, uid, gid, follow
            os.chown(P(args[0]), args[1], args[2], follow_symlinks=args[3])
            return r_ok()
        if name == "utimes":      # path, atime, mtime, follow
            os.utime(P(args[0]), ns=(args[1], args[2]), follow_symlinks=args[3])
            return r_ok()
        if name == "setxattr":    # path, name, value, flags, follow
            os.setxattr(P(args[0]), args[1], bytes.fromhex(args[2]), args[3],
                        follow_symlinks=args[4])
            return r_ok()
        if name == "removexattr":
            os.removexattr(P(args[0]), args[1], follow_symlinks=args[2])
            return r_ok()
        if name == "getxattr":
            return r_ok(os.getxattr(P(args[0]), args[1], follow_symlinks=args[2]).hex())
        if name == "mkfifo":
            os.mkfifo(P(args[0]), args[1])
            return r_ok()
        if name == "read":
            fd = os.open(P(args[0]), os.O_RDONLY | os.O_NONBLOCK)
            try:
                h = hashlib.sha256()
                while True:
                    b = os.read(fd, 1 << 20)
                    if not b:
                        break
                    h.update(b)
                return r_ok(h.hexdigest()[:16])
            finally:
                os.close(fd)
        if name == "stat":
            st = os.stat(P(args[0]), follow_symlinks=args[1])
            return r_ok(stat_key(st))
        if name == "listdir":
            return r_ok(sorted(os.listdir(P(args[0]))))
        if name == "readlink":
            return r_ok(os.readlink(P(args[0])))
        raise ValueError("unknown op " + name)
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, str(e.errno)))


def stat_key(st):
    k = [stat.filemode(st.st_mode), st.st_uid, st.st_gid]
    if not stat.S_ISDIR(st.st_mode):
        k += [st.st_size, st.st_nlink, mtime_key(st.st_mtime_ns)]
    return k


def mtime_key(ns):
    # "now" stands for any time set by the clock during the run: the two
    # mounts are written a moment apart, so only past times compare exactly.
    return "now" if ns >= PAST_LIMIT_NS else ns


class SnapError(Exception):
    def __repr__(self):
        return str(self)


def snapshot(root, compat=False):
    """Every object under root: path -> record; plus hard-link groups."""
    out = {}
    inos = {}
    def walk(rel):
        p = os.path.join(root, rel) if rel else root
        names = sorted(os.listdir(p))
        for n in names:
            r = os.path.join(rel, n) if rel else n
            try:
                snap_one(r)
            except OSError as e:
                raise SnapError("%s: %s" % (r, errno.errorcode.get(e.errno, e.errno))) from None

    def snap_one(r):
            q = os.path.join(root, r)
            st = os.lstat(q)
            rec = {"type": stat.filemode(st.st_mode)[0], "mode": oct(st.st_mode & 0o7777),
                   "uid": st.st_uid, "gid": st.st_gid}
            isdir = stat.S_ISDIR(st.st_mode)
            if not isdir:
                rec["size"] = st.st_size
                rec["nlink"] = st.st_nlink
                if not compat:
                    rec["mtime"] = mtime_key(st.st_mtime_ns)
                    inos.setdefault(st.st_ino, []).append(r)
                rec["_ino"] = st.st_ino
            if stat.S_ISREG(st.st_mode):
                with open(q, "rb") as f:
                    rec["sha"] = hashlib.sha256(f.read()).hexdigest()[:16]
            if stat.S_ISLNK(st.st_mode):
                rec["target"] = os.readlink(q)
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                rec["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            xs = {}
            for x in sorted(os.listxattr(q, follow_symlinks=False)):
                if compat and x.startswith(("trusted.unionfs.", "user.unionfs.")):
                    continue    # ours: the kernel does not hide them
                try:
                    xs[x] = os.getxattr(q, x, follow_symlinks=False).hex()
                except OSError as e:
                    xs[x] = "errno:" + errno.errorcode.get(e.errno, "?")
            rec["xattrs"] = xs
            out[r] = rec
            if isdir:
                walk(r)
    walk("")
    if not compat:
        for rec in out.values():
            if "_ino" in rec:
                rec["links"] = sorted(inos[rec["_ino"]])
    for rec in out.values():
        rec.pop("_ino", None)
    return out


def paths_of(root):
    """(path, type letter) of every object in the merged tree, sorted."""
    res = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for n in sorted(dirnames + filenames):
            r = n if rel == "." else os.path.join(rel, n)
            res.append((r, stat.filemode(os.lstat(os.path.join(root, r)).st_mode)[0]))
    return sorted(res)


def worker_main(conn, root):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.umask(0o022)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        kind, arg = msg
        if kind == "exit":
            return
        try:
            if kind == "op":
                res = do_op(root, arg)
            elif kind == "snapshot":
                res = ("ok", snapshot(root, arg))
            elif kind == "paths":
                res = ("ok", paths_of(root))
            else:
                res = ("exc", "bad request")
        except OSError as e:
            res = ("exc", "%s: %s" % (errno.errorcode.get(e.errno, "?"), e))
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            res = ("exc", repr(e))
        conn.send(res)


class Hung(Exception):
    pass


class Worker:
    """A child process doing calls into one mount, under a watchdog."""

    def __init__(self, root):
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, root), daemon=True)
        self.proc.start()
        child.close()

    def send(self, kind, arg):
        self.conn.send((kind, arg))

    def recv(self, timeout):
        if not self.conn.poll(timeout):
            self.kill()
            raise Hung("no answer in %ds" % timeout)
        return self.conn.recv()

    def call(self, kind, arg, timeout=OP_TIMEOUT):
        self.send(kind, arg)
        return self.recv(timeout)

    def kill(self):
        if self.proc.is_alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join(5)

    def close(self):
        try:
            self.conn.send(("exit", None))
            self.conn.close()
        except OSError:
            pass
        self.proc.join(2)
        self.kill()


# ---------------------------------------------------------------------------
# Mounts


def is_mounted(mnt):
    mnt = os.path.realpath(mnt)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == mnt:
                return True
    return False


def fuse_conn_of(mnt):
    mnt = os.path.realpath(mnt)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == mnt:
                return fields[2].split(":")[1]
    return None


def run(cmd, timeout=30):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True)
        return p.returncode, p.stdout.strip()
    except subprocess.TimeoutExpired:
        return 124, "timed out: " + " ".join(cmd)


def umount(mnt, fuse=False, proc=None):
    """Unmounts one of our mounts by path. A FUSE mount whose daemon does not
    answer: abort its connection, kill the daemon we started (by pid), then
    unmount, lazily if need be."""
    if not is_mounted(mnt):
        return True
    rc, _ = run(["umount", mnt], 10)
    if rc == 0:
        return True
    if fuse:
        conn = fuse_conn_of(mnt)
        if conn:
            try:
                with open("/sys/fs/fuse/connections/%s/abort" % conn, "w") as f:
                    f.write("1")
            except OSError:
                pass
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        rc, _ = run(["umount", mnt], 10)
        if rc == 0:
            return True
    run(["umount", "-l", mnt], 10)
    return not is_mounted(mnt)


def cleanup_all():
    for mnt, fuse in reversed(MOUNTS):
        umount(mnt, fuse)
    for p in PROCS:
        if p.poll() is None:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


atexit.register(cleanup_all)


class Mount:
    def __init__(self, kind, base, lowers, build):
        self.kind, self.base, self.lowers, self.build = kind, base, lowers, build
        self.upper = os.path.join(base, "upper")
        self.work = os.path.join(base, "work")
        self.mnt = os.path.join(base, "mnt")
        for d in (self.upper, self.work, self.mnt):
            os.makedirs(d, exist_ok=True)
        self.proc = None
        self.index = "on"
        self.note = None

    def mount(self, upper=None, opts_extra=""):
        upper = upper or self.upper
        lower = ":".join(self.lowers)
        if self.kind == "ovl":
            o = "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=on,index=%s" % (
                lower, upper, self.work, self.index)
            rc, out = run(["mount", "-t", "overlay", "overlay", "-o", o + opts_extra, self.mnt])
            if rc != 0 and self.index == "on":
                self.index = "off"
                self.note = "index=on failed (%s); kernel overlay uses index=off" % out
                return self.mount(upper, opts_extra)
            if rc != 0:
                raise RuntimeError("mount overlay: " + out)
            MOUNTS.append((self.mnt, False))
            return
        o = "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, self.work)
        if os.environ.get("DIFFTEST_UNIONFS_OPTS"):
            o += "," + os.environ["DIFFTEST_UNIONFS_OPTS"]
        logf = open(os.path.join(self.base, "unionfs.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(self.build, "unionfs"), "-f", "-o", o,
                                      self.mnt], stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        PROCS.append(self.proc)
        MOUNTS.append((self.mnt, True))
        for _ in range(300):
            if is_mounted(self.mnt):
                return
            if self.proc.poll() is not None:
                raise RuntimeError("unionfs exited %d before mounting" % self.proc.returncode)
            time.sleep(0.01)
        raise RuntimeError("unionfs did not mount in 3s")

    def umount(self):
        ok = umount(self.mnt, self.kind == "ufs", self.proc)
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                ok = False
            self.proc = None
        return ok


# ---------------------------------------------------------------------------
# Random operations


def excluded(op, paths):
    name = op[0]
    if name == "link":
        return "link" in OFF
    if name == "rename":
        if op[3] == RENAME_EXCHANGE and "exchange" in OFF:
            return True
        return "rename-dir" in OFF and any(p in (op[1], op[2]) and t == "d" for p, t in paths)
    if name in ("setxattr", "removexattr"):
        return "xattr" in OFF
    if name == "chown":
        return "chown" in OFF
    if name == "truncate":
        return "truncate-path" in OFF
    if name == "mkdir":
        if "setgid-dir" in OFF and op[2] & stat.S_ISGID:
            return True
        return "mkdir-sticky" in OFF and bool(op[2] & stat.S_ISVTX)
    if name == "chmod" and "setgid-dir" in OFF and op[2] & stat.S_ISGID:
        return not any(p == op[1] and t == "-" for p, t in paths)
    if name == "mkfifo":
        return "fifo" in OFF
    if name == "symlink":
        return "symlink" in OFF
    return False


def gen_op(rng, paths):
    while True:
        op = gen_op1(rng, paths)
        if not excluded(op, paths):
            return op


def gen_op1(rng, paths):
    """One random operation over the current merged tree."""
    files = [p for p, t in paths if t == "-"]
    dirs = [p for p, t in paths if t == "d"]
    allp = [p for p, _ in paths]
    nondirs = [p for p, t in paths if t != "d"]

    def pick(lst, miss=0.1):
        if not lst or rng.random() < miss:
            return newpath()
        return rng.choice(lst)

    def newpath():
        r = rng.random()
        parent = rng.choice(dirs) if dirs and r < 0.6 else ""
        if r > 0.97 and files:
            parent = rng.choice(files)      # ENOTDIR
        elif r > 0.94:
            parent = "nodir"                # ENOENT
        n = rng.choice(NAMES + ["n1", "n2", "n3"])
        return os.path.join(parent, n) if parent else n

    w = rng.random() * 100
    ds = rng.randint(0, 1 << 30)
    if w < 10:
        how = rng.choice(["excl", "trunc", "append", "appendnc", "rdwr"])
        path = pick(files, 0.4) if how != "excl" else pick(files, 0.7)
        n = rng.choice([0, 1, 100, 4096, 10000])
        return ["create", path, how, rng.choice([0o644, 0o600, 0o755, 0o4755]), ds, n]
    if w < 20:
        off = rng.choice([0, 1, 100, 4095, 4096, 70000, 1 << 20, rng.randint(0, 200000)])
        return ["pwrite", pick(files), off, ds, rng.choice([1, 10, 4096, 9000])]
    if w < 25:
        return [rng.choice(["truncate", "ftruncate"]), pick(files),
                rng.choice([0, 1, 4096, 5000, 1 << 20, rng.randint(0, 100000)])]
    if w < 31:
        return ["mkdir", pick(allp, 0.8), rng.choice([0o755, 0o700, 0o2775, 0o1777])]
    if w < 36:
        return ["rmdir", pick(dirs + allp[:3], 0.1)]
    if w < 43:
        return ["unlink", pick(nondirs + dirs[:1], 0.1)]
    if w < 55:
        flags = rng.choice([0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE])
        src = pick(dirs if rng.random() < 0.4 else allp, 0.1)
        dst = pick(allp, 0.5)
        return ["rename", src, dst, flags]
    if w < 60:
        return ["link", pick(nondirs + dirs[:1], 0.1), pick(allp, 0.8)]
    if w < 64:
        tgt = rng.choice([rand_target(rng)] + [p for p in allp[:8] if ".." not in p])
        return ["symlink", pick(allp, 0.8), tgt]
    if w < 69:
        return ["chmod", pick(allp), rng.choice(MODES)]
    if w < 73:
        return ["chown", pick(allp), rng.choice(UIDS), rng.choice(UIDS), rng.random() < 0.5]
    if w < 77:
        t = rng.randint(10**18, 17 * 10**17)
        return ["utimes", pick(allp), t + 1, t, rng.random() < 0.5]
    if w < 82:
        return ["setxattr", pick(allp), "user." + rng.choice(["k1", "k2", "new"]),
                rand_data(rng, rng.randint(0, 30)).hex(),
                rng.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE]), rng.random() < 0.3]
    if w < 85:
        return ["removexattr", pick(allp), "user." + rng.choice(["k1", "k2", "k3", "new", "d"]),
                rng.random() < 0.3]
    if w < 87:
        return ["getxattr", pick(allp), "user." + rng.choice(["k1", "k2", "d", "new"]),
                rng.random() < 0.5]
    if w < 89:
        return ["mkfifo", pick(allp, 0.8), 0o644]
    if w < 94:
        return ["read", pick(files)]
    if w < 97:
        return ["stat", pick(allp), rng.random() < 0.5]
    if w < 99:
        return ["listdir", pick(dirs, 0.05) if rng.random() < 0.9 else ""]
    return ["readlink", pick(nondirs)]


# ---------------------------------------------------------------------------
# One seed


class Mismatch(Exception):
    pass


def diff_trees(a, b, limit=6):
    lines = []
    for p in sorted(set(a) | set(b)):
        if p not in b:
            lines.append("  %s: only in overlay: %s" % (p, fmt(a[p])))
        elif p not in a:
            lines.append("  %s: only in unionfs: %s" % (p, fmt(b[p])))
        elif a[p] != b[p]:
            ks = [k for k in sorted(set(a[p]) | set(b[p])) if a[p].get(k) != b[p].get(k)]
            lines.append("  %s: %s" % (p, "; ".join(
                "%s overlay=%s unionfs=%s" % (k, a[p].get(k), b[p].get(k)) for k in ks)))
        if len(lines) >= limit:
            lines.append("  ...")
            break
    return lines


def fmt(rec):
    return ",".join("%s=%s" % (k, v) for k, v in rec.items() if k not in ("xattrs", "links"))


def compare_trees(ovl, ufs, what, compat=False):
    a = ovl.call("snapshot", compat, TREE_TIMEOUT)
    b = ufs.call("snapshot", compat, TREE_TIMEOUT)
    if a[0] != "ok" or b[0] != "ok":
        raise Mismatch("%s: listing the tree failed: overlay %s, unionfs %s" % (
            what, "ok" if a[0] == "ok" else a[1], "ok" if b[0] == "ok" else b[1]))
    d = diff_trees(a[1], b[1])
    if d:
        raise Mismatch("%s: trees differ:\n%s" % (what, "\n".join(d)))


def run_seed(seed, args, ops_override=None):
    """Returns (ok, report lines, ops list). ops_override replays given ops."""
    base = tempfile.mkdtemp(prefix="difftest.%d." % seed, dir=args.tmp)
    sides = {}
    workers = {}
    report = []
    ops_done = []
    ok = False
    try:
        lowers = {}
        for side in ("ovl", "ufs"):
            l1 = os.path.join(base, side, "l1")
            l2 = os.path.join(base, side, "l2")
            build_lowers(seed, l1, l2)
            lowers[side] = [l1, l2]
        before = {s: [lower_digest(l, True) for l in lowers[s]] for s in lowers}
        same = [lower_digest(l, False) for l in lowers["ovl"]] == \
            [lower_digest(l, False) for l in lowers["ufs"]]
        if not same:
            raise Mismatch("setup: the two copies of the lower trees differ")
        for side in ("ovl", "ufs"):
            sides[side] = Mount(side, os.path.join(base, side), lowers[side], args.build)
            sides[side].mount()
        if sides["ovl"].note:
            report.append("note: " + sides["ovl"].note)
        for side in sides:
            workers[side] = Worker(sides[side].mnt)
        ovl, ufs = workers["ovl"], workers["ufs"]
        compare_trees(ovl, ufs, "initial tree")

        rng = random.Random(seed)
        nops = len(ops_override) if ops_override is not None else args.ops
        last_good = -1
        for i in range(nops):
            if ops_override is not None:
                op = ops_override[i]
            else:
                pr = ovl.call("paths", None, TREE_TIMEOUT)
                if pr[0] != "ok":
                    raise Mismatch("listing the overlay failed: %s" % (pr,))
                op = gen_op(rng, pr[1])
            ops_done.append(op)
            ovl.send("op", op)
            ufs.send("op", op)
            try:
                ra = ovl.recv(OP_TIMEOUT)
            except Hung as e:
                raise Mismatch("op %d %s: overlay hung (%s)" % (i, json.dumps(op), e))
            try:
                rb = ufs.recv(OP_TIMEOUT)
            except Hung as e:
                raise Mismatch("op %d %s: unionfs hung (%s); overlay: %s" % (
                    i, json.dumps(op), e, ra))
            if args.verbose:
                report.append("  %3d %s -> %s%s" % (i, json.dumps(op), ra,
                              "" if ra == rb else "  unionfs: %s" % (rb,)))
            if ra != rb:
                raise Mismatch("op %d %s: overlay %s, unionfs %s" % (
                    i, json.dumps(op), fmt_res(ra), fmt_res(rb)))
            if args.tree_every and (i + 1) % args.tree_every == 0:
                try:
                    compare_trees(ovl, ufs, "after op %d" % i)
                except Mismatch as e:
                    raise Mismatch("%s\n  (trees were equal after op %d; ops since: %s)" % (
                        e, last_good, json.dumps(ops_done[last_good + 1:])))
                last_good = i
        compare_trees(ovl, ufs, "after %d ops" % nops)
        for w in workers.values():
            w.close()
        workers.clear()
        for side in ("ovl", "ufs"):
            if not sides[side].umount():
                raise Mismatch("%s: unmount failed" % side)
        leftovers = sorted(n for n in os.listdir(os.path.join(sides["ufs"].work, "unionfs"))
                           if n != "index")
        if leftovers:
            raise Mismatch("unionfs work dir has leftovers after unmount: %s" % leftovers[:5])
        if "remount" not in OFF:
            for side in ("ovl", "ufs"):
                sides[side].mount()
            workers = {s: Worker(sides[s].mnt) for s in sides}
            compare_trees(workers["ovl"], workers["ufs"], "after remount")
            for w in workers.values():
                w.close()
            workers.clear()
            for side in ("ovl", "ufs"):
                sides[side].umount()
        if "compat" not in OFF:
            compat_check(sides, lowers, args, workers, report)
        after = {s: [lower_digest(l, True) for l in lowers[s]] for s in lowers}
        after = {s: [lower_digest(l, True) for l in lowers[s]] for s in lowers}
        for s in lowers:
            if after[s] != before[s]:
                raise Mismatch("%s: a lower tree was modified" % s)
        ok = True
    except Mismatch as e:
        report.append(str(e))
    except Exception as e:  # noqa: BLE001 - a broken harness fails the seed
        import traceback
        report.append("error: %r at %s" % (e, " <- ".join(
            "%s:%d" % (f.name, f.lineno) for f in reversed(traceback.extract_tb(e.__traceback__)))))
    finally:
        for w in workers.values():
            w.close()
        for m in sides.values():
            if not m.umount():
                report.append("warning: could not unmount %s" % m.mnt)
        if ok or not args.keep:
            if not any(is_mounted(m.mnt) for m in sides.values()):
                shutil.rmtree(base, ignore_errors=True)
        else:
            report.append("kept: " + base)
            with open(os.path.join(base, "ops.json"), "w") as f:
                json.dump(ops_done, f, indent=0)
    return ok, report, ops_done


def compat_check(sides, lowers, args, workers, report):
    """The kernel over the upper dir unionfs wrote shows the same tree (names,
    types, modes, owners, contents, xattrs). Inode numbers are not required,
    and neither are hard links: an object the kernel shows with nlink > 1 is
    reported in a note, not failed."""
    base = os.path.dirname(sides["ufs"].base)
    compat = Mount("ovl", os.path.join(base, "compat"), lowers["ufs"], args.build)
    compat.index = "off"
    compat.mount(upper=sides["ufs"].upper)
    sides["compat"] = compat
    sides["ovl"].mount()
    workers["ovl"] = Worker(sides["ovl"].mnt)
    workers["compat"] = Worker(compat.mnt)
    a = workers["ovl"].call("snapshot", True, TREE_TIMEOUT)
    b = workers["compat"].call("snapshot", True, TREE_TIMEOUT)
    if a[0] != "ok" or b[0] != "ok":
        raise Mismatch("compat: snapshot failed: overlay %s, kernel on ufs upper %s" % (a, b))
    a, b = a[1], b[1]
    linked = sorted(p for p in set(a) & set(b)
                    if b[p].get("nlink", 1) > 1 or a[p].get("nlink", 1) > 1)
    for p in linked:
        if a[p] != b[p]:
            report.append("note: compat: hard-linked %s differs in the kernel's view (allowed)" % p)
        a.pop(p)
        b.pop(p)
    for rec in list(a.values()) + list(b.values()):
        rec.pop("nlink", None)
    d = diff_trees(a, b)
    if d:
        raise Mismatch("kernel overlay over unionfs's upper (compat view): trees differ:\n%s" %
                       "\n".join(d).replace("unionfs=", "kernel-on-ufs-upper=")
                       .replace("only in unionfs", "only in kernel-on-ufs-upper"))
    for w in ("ovl", "compat"):
        workers.pop(w).close()
    for side in ("compat", "ovl"):
        sides[side].umount()


def fmt_res(r):
    return r[0] if r[0] == "ok" and r[1] is None else ("%s %s" % r if r[0] == "ok" else r[1]
                                                        if r[0] == "err" else "%s %s" % r)


def failure_key(report):
    """What kind of failure, to keep while minimizing: the op name and both
    results, or which fields of which phase differ."""
    for line in report:
        if line.startswith("op "):
            parts = line.split(": overlay", 1)
            return "op " + json.loads(parts[0].split(" ", 2)[2])[0] + ": overlay" + parts[1]
        if "trees differ" in line:
            fields = set()
            for l in line.split("\n")[1:]:
                if l.startswith("  ") and ": " in l and not l.startswith("  ("):
                    body = l.split(": ", 1)[1]
                    if body.startswith("only in"):
                        fields.add(body.split(":")[0])
                    else:
                        fields.update(f.split(" ")[0] for f in body.split("; "))
            phase = line.split(":")[0]
            phase = "ops" if phase.startswith("after") and "remount" not in phase else phase
            return "trees differ in %s: %s" % (phase, sorted(fields))
        if "listing the tree failed" in line:
            return "listing failed: " + line.split("unionfs ")[-1].split("\n")[0].split(": ")[-1]
        if not line.startswith(("note:", "kept:", "  ")):
            return line.split(":")[0]
    return None


def minimize(seed, args, ops, report):
    """Greedy delta debugging over the concrete ops of a failing seed."""
    key = failure_key(report)
    saved = (args.keep, args.verbose, args.tree_every)
    args.keep, args.verbose, args.tree_every = False, False, 1
    cur = list(ops)
    chunk = max(1, len(cur) // 2)
    tries = 0
    while chunk >= 1 and tries < args.minimize_tries:
        i = 0
        changed = False
        while i < len(cur) and tries < args.minimize_tries:
            cand = cur[:i] + cur[i + chunk:]
            tries += 1
            ok, rep, _ = run_seed(seed, args, cand)
            if not ok and failure_key(rep) == key:
                cur = cand
                changed = True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    args.keep, args.verbose, args.tree_every = saved
    return cur


def parse_seeds(s):
    out = []
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def main():
    global PAST_LIMIT_NS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "../../../build"))
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--ops", type=int, default=150)
    ap.add_argument("--keep", action="store_true", help="keep the dirs of a failing seed")
    ap.add_argument("--tree-every", type=int, default=10,
                    help="compare whole trees every N ops (0: only at the end)")
    ap.add_argument("--minimize", action="store_true",
                    help="shrink the op sequence of a failing seed")
    ap.add_argument("--minimize-tries", type=int, default=200)
    ap.add_argument("--replay", help="a JSON file of ops (from --keep) to run instead")
    ap.add_argument("--tmp", default=None, help="where to make scratch dirs")
    ap.add_argument("--without", default=os.environ.get("DIFFTEST_WITHOUT", ""),
                    help="comma-separated parts to leave out (default: $DIFFTEST_WITHOUT): " +
                    ", ".join(FEATURES))
    ap.add_argument("-v", "--verbose", action="store_true", help="print every op and result")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    for f in filter(None, args.without.split(",")):
        if f not in FEATURES:
            print("difftest: --without %s: unknown (one of %s)" % (f, ", ".join(FEATURES)),
                  file=sys.stderr)
            return 2
        OFF.add(f)
    if not os.access(os.path.join(args.build, "unionfs"), os.X_OK):
        print("difftest: %s/unionfs: not found (run make)" % args.build, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("difftest: needs root (mounts, chown, trusted.* xattrs)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    PAST_LIMIT_NS = time.time_ns() - 10**9
    replay = None
    if args.replay:
        with open(args.replay) as f:
            replay = json.load(f)
    seeds = parse_seeds(args.seeds)
    # A private copy of the daemon: a rebuild during a long run must not
    # swap the binary under us (or leave it half-written when we start one).
    bindir = tempfile.mkdtemp(prefix="difftest.bin.", dir=args.tmp)
    atexit.register(shutil.rmtree, bindir, True)
    shutil.copy2(os.path.join(args.build, "unionfs"), os.path.join(bindir, "unionfs"))
    args.build = bindir
    npass = nfail = 0
    for seed in seeds:
        t0 = time.time()
        ok, report, ops = run_seed(seed, args, replay)
        dt = time.time() - t0
        if ok:
            npass += 1
            log("ok   - seed %d (%d ops, %.1fs)" % (seed, len(ops), dt))
            for line in report:
                log("    " + line)
        else:
            nfail += 1
            log("FAIL - seed %d (%.1fs)" % (seed, dt))
            for line in report:
                log("    " + line)
            if args.minimize and ops:
                small = minimize(seed, args, ops, report)
                log("    minimal op sequence for seed %d (%d ops), failing the same way (%s):" % (
                    seed, len(small), failure_key(report)))
                for op in small:
                    log("      " + json.dumps(op))
    log("%d passed, %d failed" % (npass, nfail))
    return 0 if nfail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
