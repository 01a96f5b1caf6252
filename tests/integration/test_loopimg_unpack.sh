#!/bin/bash
# loopimg unpack on hostile images: directory loops, duplicate names, "..",
# "/" and symlinks pointing out, fuzzed metadata. Each gives an error (or a
# clean unpack), never a crash, a hang, or a write outside DIR.
. "$(dirname "$0")/lib.sh"
t_begin
export STEP_TIMEOUT=30

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: loopimg unpack tests need root (mknod in the source tree)"
	t_summary
	exit
fi

OUTSIDE=$T_TMP/outside
mkdir -p "$OUTSIDE" "$T_TMP/src/a/b"
echo one >"$T_TMP/src/a/b/file"
echo two >"$T_TMP/src/aa"
echo three >"$T_TMP/src/xb"
ln -s "$OUTSIDE" "$T_TMP/src/esc"

# unpack_fails DESC IMG PATTERN: non-zero exit (not a timeout or signal), PATTERN on stderr.
unpack_fails() {
	local desc=$1 img=$2 pattern=$3 err rc dir
	dir=$(mktemp -d "$T_TMP/un.XXXXXX")
	rmdir "$dir"
	err=$(timeout -k 5 30 "$LOOPIMG" unpack "$img" "$dir" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -ge 124 ]; then
		fail "$desc (exit $rc)"
	elif ! grep -q -- "$pattern" <<<"$err"; then
		fail "$desc (stderr: $err)"
	else
		pass "$desc"
	fi
}

check "pack the source" "$LOOPIMG" pack "$T_TMP/src" "$T_TMP/base.img"
check "unpack it (the symlink stays a symlink)" "$LOOPIMG" unpack "$T_TMP/base.img" "$T_TMP/ok"
check_eq "link target kept" "$OUTSIDE" "$(readlink "$T_TMP/ok/esc")"
check_eq "nothing written outside" "" "$(ls -A "$OUTSIDE")"

# A directory linked under itself.
cp "$T_TMP/base.img" "$T_TMP/loop.img"
debugfs -w -R "ln /a /a/b/up" "$T_TMP/loop.img" >/dev/null 2>&1
unpack_fails "directory loop" "$T_TMP/loop.img" "directory loop"

# The same name twice: a symlink out, and a directory with a file that would go through it.
mkdir -p "$T_TMP/dupsrc/esd"
echo x >"$T_TMP/dupsrc/esd/file"
ln -s "$OUTSIDE" "$T_TMP/dupsrc/esc"
mke2fs -q -t ext4 -O ^metadata_csum,^has_journal -d "$T_TMP/dupsrc" "$T_TMP/dup.img" 4M
python3 - "$T_TMP/dup.img" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
i = data.find(b"\x03\x02esd")
assert i > 0
data[i:i + 5] = b"\x03\x02esc"
open(sys.argv[1], "wb").write(data)
EOF
unpack_fails "duplicate name over a symlink" "$T_TMP/dup.img" "esc: File exists"
check_eq "nothing written through the symlink" "" "$(ls -A "$OUTSIDE")"

# Names that are not one component, in an image without checksums so libext2fs takes them.
mke2fs -q -t ext4 -O ^metadata_csum,^has_journal -d "$T_TMP/src" "$T_TMP/names.img" 4M
python3 - "$T_TMP/names.img" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
for old, new in ((b"\x02\x01aa", b"\x02\x01.."), (b"\x02\x01xb", b"\x02\x01x/")):
    i = data.find(old)
    assert i > 0, old
    data[i:i + len(new)] = new
open(sys.argv[1], "wb").write(data)
EOF
unpack_fails "names '..' and 'x/' are refused" "$T_TMP/names.img" "bad name"
check_eq "nothing written outside after bad names" "" "$(ls -A "$OUTSIDE")"

# Fuzzed metadata: random bytes over superblock, descriptors, bitmaps, inode table, directories.
crashes=0 hangs=0
for seed in $(seq 1 40); do
	python3 - "$T_TMP/base.img" "$T_TMP/fuzz.img" "$seed" <<'EOF'
import random, sys
data = bytearray(open(sys.argv[1], "rb").read())
rnd = random.Random(int(sys.argv[3]))
limit = min(len(data), 400 * 1024)
for _ in range(rnd.randint(1, 60)):
    data[rnd.randrange(1024, limit)] = rnd.randrange(256)
open(sys.argv[2], "wb").write(data)
EOF
	rm -rf "$T_TMP/fz"
	timeout -k 5 20 "$LOOPIMG" unpack "$T_TMP/fuzz.img" "$T_TMP/fz" >/dev/null 2>&1
	rc=$?
	[ "$rc" -ge 124 ] && [ "$rc" -le 127 ] && hangs=$((hangs + 1))
	[ "$rc" -gt 128 ] && crashes=$((crashes + 1)) && echo "  seed $seed: exit $rc"
	timeout -k 5 20 "$LOOPIMG" info "$T_TMP/fuzz.img" >/dev/null 2>&1
	rc=$?
	[ "$rc" -gt 128 ] && crashes=$((crashes + 1)) && echo "  info seed $seed: exit $rc"
done
check_eq "40 fuzzed images: no crash" "0" "$crashes"
check_eq "40 fuzzed images: no hang" "0" "$hangs"
check_eq "nothing written outside after fuzzing" "" "$(ls -A "$OUTSIDE")"

unpack_fails "unpack of a non-ext4 file" /etc/passwd "passwd"
t_summary
