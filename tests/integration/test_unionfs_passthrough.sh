#!/bin/bash
# unionfs FUSE passthrough: open files are read, written and mmapped by the
# kernel in their branch, with no request to the daemon. Proof: the I/O
# completes while the daemon is stopped (SIGSTOP), which only passthrough
# can do. Also: the copy-up of a file that a read-only open holds (the old
# open keeps the old data, new opens get the new, nothing fails with EIO),
# -o passthrough=off, overlayfs stacked on our mount, and a branch on
# overlayfs, whose files cannot be backing files (they go through the daemon).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
t_begin
PROBE=$here/helpers/pt_probe.py
T() { timeout -k 5 "${STEP_TIMEOUT:-60}" "$@"; }

# setup NAME: lower/upper/work/mnt dirs under $T_TMP/NAME, with sample files.
setup() {
	local d=$T_TMP/$1
	mkdir -p "$d/lower/sub" "$d/upper" "$d/work" "$d/mnt"
	head -c 3M /dev/urandom >"$d/lower/big"
	echo "lower text" >"$d/lower/small"
	echo "in sub" >"$d/lower/sub/f"
	head -c 100k /dev/urandom >"$d/upper/up"
	for i in $(seq 1 40); do echo "v$i" >"$d/lower/m$i"; done
}
sha1m() { head -c 1M "$1" | sha256sum | cut -d' ' -f1; }
daemon_pid() { daemons_of "$T_TMP/$1" | head -n 1 | cut -d' ' -f1; }
mount_rw() { # NAME [OPTIONS]
	local d=$T_TMP/$1
	mount_unionfs "$d/mnt" -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work${2:+,$2}"
}

if ! "$UNIONFS" --help | grep -q passthrough; then
	fail "unionfs --help documents -o passthrough"
fi

# 1. A read-write mount: lower and upper files, read, mmap and write.
setup a
check_fn "mount read-write" mount_rw a
A=$T_TMP/a PID=$(daemon_pid a)
check "daemon pid found" test -n "$PID"
check_eq "lower file read while the daemon is stopped" "$(sha1m "$A/lower/big")" \
	"$(T python3 "$PROBE" read "$PID" "$A/mnt/big")"
check_eq "lower file mmapped while the daemon is stopped" "$(sha1m "$A/lower/big")" \
	"$(T python3 "$PROBE" read "$PID" "$A/mnt/big" mmap)"
check_eq "upper file read while the daemon is stopped" "$(sha1m "$A/upper/up")" \
	"$(T python3 "$PROBE" read "$PID" "$A/mnt/up")"
check_eq "append to a copied-up file while the daemon is stopped" 19 \
	"$(T python3 "$PROBE" write "$PID" "$A/mnt/small" appended | tail -n 1)"
check_eq "the append landed in the upper file" "$(printf 'lower text\nappended')" \
	"$(cat "$A/upper/small")"
check_eq "the lower file is untouched" "lower text" "$(cat "$A/lower/small")"

# 2. Copy-up under a read-only open: overlayfs semantics, no EIO.
cat >"$T_TMP/hold.py" <<'EOF'
import os, sys
m, n = sys.argv[1], int(sys.argv[2])
ino = os.stat(m).st_ino
ro = os.open(m, os.O_RDONLY)
old = os.pread(ro, 100, 0)
w = os.open(m, os.O_WRONLY | os.O_APPEND)
os.write(w, b"new\n")
os.close(w)
print(os.pread(ro, 100, 0) == old, open(m, "rb").read() == old + b"new\n",
      os.stat(m).st_ino == ino)
os.close(ro)
EOF
check_eq "a read-only open keeps the old data across a copy-up; new opens see the new" \
	"True True True" "$(T python3 "$T_TMP/hold.py" "$A/mnt/sub/f" 0 2>&1)"
check_eq "the copy-up wrote the upper file" "$(printf 'in sub\nnew')" "$(cat "$A/upper/sub/f")"
# The same, many times over, with the kernel's caches warm.
cat >"$T_TMP/many.py" <<'EOF'
import os, sys
bad = 0
for i in range(1, 41):
    m = "%s/m%d" % (sys.argv[1], i)
    ro = os.open(m, os.O_RDONLY)
    os.pread(ro, 10, 0)
    try:
        with open(m, "ab") as f:
            f.write(b"w\n")
        ok = os.pread(ro, 10, 0) == b"v%d\n" % i and open(m, "rb").read() == b"v%d\nw\n" % i
    except OSError as e:
        print(m, e)
        ok = False
    bad += not ok
    os.close(ro)
print(bad)
EOF
ls -l "$A/mnt" >/dev/null
check_eq "40 copy-ups under read-only opens, none fails" 0 \
	"$(T python3 "$T_TMP/many.py" "$A/mnt" 2>&1 | tail -n 1)"
# Two names of one inode (a hard link in the upper) opened together.
ln "$A/mnt/up" "$A/mnt/up2"
check "two names of one file opened together read the same" \
	python3 -c "import os,sys; a=os.open(sys.argv[1],os.O_RDONLY); b=os.open(sys.argv[2],os.O_RDWR); \
os.pwrite(b,b'XY',0); sys.exit(os.pread(a,2,0)!=b'XY')" "$A/mnt/up" "$A/mnt/up2"

# 3. overlayfs over our mount: passthrough leaves room for one more layer.
mkdir -p "$T_TMP/ov/upper" "$T_TMP/ov/work" "$T_TMP/ov/mnt"
check_fn "overlayfs mounts with our mount as its lower" \
	mount_overlay "$T_TMP/ov/mnt" "lowerdir=$A/mnt,upperdir=$T_TMP/ov/upper,workdir=$T_TMP/ov/work"
check_eq "and reads through it" "$(cat "$A/lower/big" | sha256sum)" \
	"$(T cat "$T_TMP/ov/mnt/big" | sha256sum)"
t_umount "$T_TMP/ov/mnt"
t_umount "$A/mnt"

# 4. A read-only mount (lower branches only).
setup b
B=$T_TMP/b
check_fn "mount read-only branches" mount_unionfs "$B/mnt" -o "br=$B/upper=ro:$B/lower=ro"
PID=$(daemon_pid b)
check_eq "read-only mount: read while the daemon is stopped" "$(sha1m "$B/lower/big")" \
	"$(T python3 "$PROBE" read "$PID" "$B/mnt/big")"
t_umount "$B/mnt"

# 5. -o passthrough=off: the daemon serves reads, so a stopped one blocks them.
setup c
C=$T_TMP/c
check_fn "mount with passthrough=off" mount_rw c passthrough=off
PID=$(daemon_pid c)
out=$(T python3 "$PROBE" read "$PID" "$C/mnt/big")
rc=$?
check_eq "passthrough=off: the read waits for the daemon" 3 "$rc"
check_eq "passthrough=off: and completes once it runs" "$(sha1m "$C/lower/big")" "$out"
check_eq "passthrough=off: writes still work" "lower text" "$(T cat "$C/mnt/small")"
t_umount "$C/mnt"
check_fails "passthrough=maybe is refused" "$UNIONFS" -o "lowerdir=$C/lower,passthrough=maybe" "$C/mnt"

# 6. A branch on overlayfs: its files cannot be backing files (stack depth),
# so they are served by the daemon, correctly.
D=$T_TMP/d
mkdir -p "$D/ol" "$D/ou" "$D/ow" "$D/om" "$D/upper" "$D/work" "$D/mnt"
head -c 2M /dev/urandom >"$D/ol/f"
check_fn "overlayfs for the branch" mount_overlay "$D/om" "lowerdir=$D/ol,upperdir=$D/ou,workdir=$D/ow"
check_fn "unionfs with a branch on overlayfs" \
	mount_unionfs "$D/mnt" -o "lowerdir=$D/om,upperdir=$D/upper,workdir=$D/work"
check_eq "a file on an overlayfs branch reads right" "$(sha256sum <"$D/ol/f")" \
	"$(T cat "$D/mnt/f" | sha256sum)"
check "and copies up on write" sh -c "echo x >>'$D/mnt/f'"
check_eq "to the upper branch" $((2 * 1024 * 1024 + 2)) "$(stat -c %s "$D/upper/f")"
t_umount "$D/mnt"
t_umount "$D/om"

t_summary
