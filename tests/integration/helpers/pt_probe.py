#!/usr/bin/env python3
"""Probes for FUSE passthrough: I/O on a file opened while the daemon runs,
done while the daemon is stopped (SIGSTOP). Only passthrough can complete it:
without it the kernel waits for the daemon. The daemon is always continued.

usage: pt_probe.py read PID FILE [mmap]   prints the xxh-free sha256 of the first MiB
       pt_probe.py write PID FILE DATA    appends DATA, prints the new size
Exit 0 when the I/O completed while the daemon was stopped, 3 when it did
not within 3 s (it then completes after SIGCONT), 1 on an error.
"""
import hashlib
import mmap
import os
import signal
import sys
import threading


def io_read(fd, use_mmap):
    if use_mmap:
        size = min(os.fstat(fd).st_size, 1 << 20)
        with mmap.mmap(fd, size, prot=mmap.PROT_READ) as m:
            return hashlib.sha256(m[:size]).hexdigest()
    return hashlib.sha256(os.pread(fd, 1 << 20, 0)).hexdigest()


def main():
    op, pid, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if op == "read":
        fd = os.open(path, os.O_RDONLY)
        use_mmap = len(sys.argv) > 4 and sys.argv[4] == "mmap"
        work = lambda: io_read(fd, use_mmap)
    elif op == "write":
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        data = sys.argv[4].encode()
        work = lambda: os.write(fd, data) and os.fstat(fd).st_size
    else:
        print(__doc__, file=sys.stderr)
        return 1
    result, error = [], []

    def run():
        try:
            result.append(work())
        except OSError as e:
            error.append(e)

    os.kill(pid, signal.SIGSTOP)
    try:
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(3)
        done = not t.is_alive()
    finally:
        os.kill(pid, signal.SIGCONT)
    t.join(30)
    if error:
        print(error[0], file=sys.stderr)
        return 1
    print(result[0] if result else "")
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())
