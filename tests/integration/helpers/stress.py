#!/usr/bin/env python3
"""stress.py ROOT SEED SECONDS: random file operations on ROOT/d0..d3/f0..f29
for SECONDS (appends, unlinks, renames, chmods, listings, links, reads,
xattrs, stats), as fast as they go. Errors such as ENOENT and EEXIST are the
point (other processes race on the same names); prints the count of
operations and of each errno. Exits 1 if an operation failed with anything
but ENOENT, EEXIST or ENOTEMPTY, or none ran."""
import errno
import os
import random
import sys
import time

EXPECTED = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY}


def main():
    root, seed, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rnd = random.Random(seed)
    end = time.time() + seconds
    count, errs = 0, {}

    def name():
        return os.path.join(root, "d%d" % rnd.randrange(4), "f%d" % rnd.randrange(30))

    while time.time() < end:
        op = rnd.randrange(9)
        count += 1
        try:
            if op == 0:
                with open(name(), "a") as f:
                    f.write("x" * rnd.randrange(1, 5000))
            elif op == 1:
                os.unlink(name())
            elif op == 2:
                os.rename(name(), name())
            elif op == 3:
                os.chmod(name(), 0o600 | rnd.randrange(0o100))
            elif op == 4:
                os.listdir(os.path.join(root, "d%d" % rnd.randrange(4)))
            elif op == 5:
                os.link(name(), name())
            elif op == 6:
                with open(name()) as f:
                    f.read()
            elif op == 7:
                os.setxattr(name(), "user.k", b"v%d" % rnd.randrange(9))
            else:
                os.stat(name())
        except OSError as e:
            errs[e.errno] = errs.get(e.errno, 0) + 1
    print(seed, count, {errno.errorcode[k]: v for k, v in sorted(errs.items())})
    return 0 if count and set(errs) <= EXPECTED else 1


if __name__ == "__main__":
    sys.exit(main())
