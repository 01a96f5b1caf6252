#!/usr/bin/env python3
"""Probes for the unionfs integration tests. Each prints results that do not
depend on which mount they ran on, so that the output on kernel overlayfs and
on unionfs can be compared with diff.

  ufs_probe.py ops ROOT < OPS     one operation per line (see OPS below); prints
                                  "LINE => OK[ value]" or "LINE => ENAME"
  ufs_probe.py seekdata FILE      SEEK_DATA/SEEK_HOLE map of FILE
  ufs_probe.py mmap FILE          sha256 of FILE read through mmap
  ufs_probe.py locks FILE         flock, POSIX and OFD lock behaviour on FILE
"""
import errno
import fcntl
import hashlib
import mmap
import os
import struct
import sys


def _open(p, flags, mode=0o644):
    os.close(os.open(p, flags | os.O_CLOEXEC, mode))


def _read(p, flags=0):
    fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC | flags)
    try:
        h = hashlib.sha256()
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            h.update(b)
        return h.hexdigest()[:16]
    finally:
        os.close(fd)


def _stat(st):
    return "mode=%o uid=%d gid=%d size=%d" % (st.st_mode, st.st_uid, st.st_gid, st.st_size)


OPS = {
    "stat": lambda a: _stat(os.stat(a[0])),
    "lstat": lambda a: _stat(os.lstat(a[0])),
    "read": lambda a: _read(a[0]),
    "open_nofollow": lambda a: _read(a[0], os.O_NOFOLLOW),
    "open_directory": lambda a: _open(a[0], os.O_RDONLY | os.O_DIRECTORY),
    "open_path_nofollow": lambda a: _open(a[0], os.O_PATH | os.O_NOFOLLOW),
    "readlink": lambda a: os.readlink(a[0]),
    "listdir": lambda a: " ".join(sorted(os.listdir(a[0]))),
    "chdir": lambda a: os.chdir(a[0]) or os.chdir(ROOT),
    "access_r": lambda a: os.access(a[0], os.R_OK) or _raise_errno(),
    "access_w": lambda a: os.access(a[0], os.W_OK) or _raise_errno(),
    "access_x": lambda a: os.access(a[0], os.X_OK) or _raise_errno(),
    "getxattr": lambda a: os.getxattr(a[0], a[1], follow_symlinks=False).hex(),
    "listxattr": lambda a: " ".join(sorted(x for x in os.listxattr(a[0], follow_symlinks=False)
                                           if not x.startswith("security."))),
    "create": lambda a: _open(a[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY),
    "open_w": lambda a: _open(a[0], os.O_WRONLY),
    "open_rw": lambda a: _open(a[0], os.O_RDWR),
    "open_trunc": lambda a: _open(a[0], os.O_WRONLY | os.O_TRUNC),
    "open_append": lambda a: _open(a[0], os.O_WRONLY | os.O_APPEND),
    "mkdir": lambda a: os.mkdir(a[0]),
    "rmdir": lambda a: os.rmdir(a[0]),
    "unlink": lambda a: os.unlink(a[0]),
    "rename": lambda a: os.rename(a[0], a[1]),
    "link": lambda a: os.link(a[0], a[1], follow_symlinks=False),
    "symlink": lambda a: os.symlink(a[0], a[1]),
    "mknod_fifo": lambda a: os.mkfifo(a[0]),
    "chmod": lambda a: os.chmod(a[0], 0o600),
    "chown": lambda a: os.chown(a[0], 1, 1, follow_symlinks=False),
    "truncate": lambda a: os.truncate(a[0], 0),
    "utime": lambda a: os.utime(a[0], (1, 1), follow_symlinks=False),
    "setxattr": lambda a: os.setxattr(a[0], a[1], b"v", follow_symlinks=False),
    "removexattr": lambda a: os.removexattr(a[0], a[1], follow_symlinks=False),
}


def _raise_errno():
    raise OSError(errno.EACCES, "access denied")


def cmd_ops(root):
    global ROOT
    ROOT = root
    os.chdir(root)
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        op, *args = line.split(" ")
        try:
            r = OPS[op](args)
            print("%s => OK%s" % (line, "" if r in (None, True) else " " + str(r)))
        except OSError as e:
            print("%s => %s" % (line, errno.errorcode.get(e.errno, str(e.errno))))
        sys.stdout.flush()


def cmd_seekdata(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    size = os.fstat(fd).st_size
    out = ["size %d" % size]
    off = 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            out.append("SEEK_DATA %d => %s" % (off, errno.errorcode[e.errno]))
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append("data %d-%d" % (d, h))
        off = h
    for probe in (size, size + 1):  # at and past EOF
        for name, whence in (("SEEK_DATA", os.SEEK_DATA), ("SEEK_HOLE", os.SEEK_HOLE)):
            try:
                out.append("%s %d => %d" % (name, probe, os.lseek(fd, probe, whence)))
            except OSError as e:
                out.append("%s %d => %s" % (name, probe, errno.errorcode[e.errno]))
    os.close(fd)
    print("\n".join(out))


def cmd_mmap(path):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        with mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as m:
            h = hashlib.sha256(m[:]).hexdigest()
            # also touch pages out of order
            step = max(1, size // 7)
            sample = b"".join(m[i:i + 16] for i in range(size - 1, -1, -step))
    print(h, hashlib.sha256(sample).hexdigest()[:16])


FLOCK = "hhqqi4x"  # struct flock on 64-bit Linux


def _getlk(fd, cmd, ltype):
    r = fcntl.fcntl(fd, cmd, struct.pack(FLOCK, ltype, os.SEEK_SET, 0, 0, 0))
    t, _, start, length, pid = struct.unpack(FLOCK, r)
    names = {fcntl.F_RDLCK: "F_RDLCK", fcntl.F_WRLCK: "F_WRLCK", fcntl.F_UNLCK: "F_UNLCK"}
    return names[t], start, length, pid


def _try(fn):
    try:
        fn()
        return "OK"
    except OSError as e:
        return errno.errorcode[e.errno]


def cmd_locks(path):
    out = []
    fd1 = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    fd2 = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    # flock: per open file description
    out.append("flock fd1 EX: " + _try(lambda: fcntl.flock(fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)))
    out.append("flock fd2 EX: " + _try(lambda: fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)))
    out.append("flock fd2 SH: " + _try(lambda: fcntl.flock(fd2, fcntl.LOCK_SH | fcntl.LOCK_NB)))
    out.append("flock fd1 UN: " + _try(lambda: fcntl.flock(fd1, fcntl.LOCK_UN)))
    out.append("flock fd2 SH after unlock: " +
               _try(lambda: fcntl.flock(fd2, fcntl.LOCK_SH | fcntl.LOCK_NB)))
    out.append("flock fd1 SH shared: " +
               _try(lambda: fcntl.flock(fd1, fcntl.LOCK_SH | fcntl.LOCK_NB)))
    fcntl.flock(fd1, fcntl.LOCK_UN)
    fcntl.flock(fd2, fcntl.LOCK_UN)
    # POSIX read lock in this process, seen from a child
    out.append("posix RDLCK: " + _try(lambda: fcntl.lockf(fd1, fcntl.LOCK_SH | fcntl.LOCK_NB)))
    me = os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        res = []
        try:
            t, s, l, p = _getlk(fd2, fcntl.F_GETLK, fcntl.F_WRLCK)
            res.append("child GETLK WRLCK: %s start=%d len=%d pid=%s" %
                       (t, s, l, "parent" if p == me else str(p)))
            t, s, l, p = _getlk(fd2, fcntl.F_GETLK, fcntl.F_RDLCK)
            res.append("child GETLK RDLCK: %s" % t)
            res.append("child RDLCK: " +
                       _try(lambda: fcntl.lockf(fd2, fcntl.LOCK_SH | fcntl.LOCK_NB)))
        except OSError as e:
            res.append("child: " + errno.errorcode[e.errno])
        os.write(w, ("\n".join(res) + "\n").encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out.append(f.read().rstrip("\n"))
    os.waitpid(pid, 0)
    out.append("posix unlock: " + _try(lambda: fcntl.lockf(fd1, fcntl.LOCK_UN)))
    t, _, _, _ = _getlk(fd2, fcntl.F_GETLK, fcntl.F_WRLCK)
    out.append("GETLK after unlock (same process): %s" % t)
    # OFD locks: conflict between two open file descriptions of one process
    out.append("ofd RDLCK fd1: " + _try(lambda: fcntl.fcntl(
        fd1, fcntl.F_OFD_SETLK, struct.pack(FLOCK, fcntl.F_RDLCK, 0, 0, 0, 0))))
    t, s, l, p = _getlk(fd2, fcntl.F_OFD_GETLK, fcntl.F_WRLCK)
    out.append("ofd GETLK WRLCK fd2: %s start=%d len=%d pid=%d" % (t, s, l, p))
    os.close(fd1)
    t, _, _, _ = _getlk(fd2, fcntl.F_OFD_GETLK, fcntl.F_WRLCK)
    out.append("ofd GETLK after close: %s" % t)
    os.close(fd2)
    print("\n".join(out))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("ops", "seekdata", "mmap", "locks"):
        sys.exit(__doc__)
    globals()["cmd_" + sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
