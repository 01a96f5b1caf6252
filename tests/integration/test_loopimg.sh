#!/bin/bash
# loopimg against e2fsck and the kernel: pack a tree rich in every kind of
# object, check the image, mount it and compare it with the source field by
# field; reproducible packs; digest/verify; and the loop device commands.
# Every loop device and mount made here is undone by its own path.
. "$(dirname "$0")/lib.sh"
t_begin
export STEP_TIMEOUT=120

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: loopimg integration tests need root (loop devices, mknod, trusted xattrs)"
	t_summary
	exit
fi

SRC=$T_TMP/src
MNT=$T_TMP/mnt
mkdir -p "$SRC" "$MNT"

# e2fsck -fn, quiet unless it finds something.
fsck_clean() {
	local out
	out=$(timeout 120 e2fsck -fn "$1" 2>&1) && return 0
	echo "$out" | tail -n 20
	return 1
}

# Compares two trees field by field; prints each difference, exits 1 on any.
compare_trees() {
	python3 - "$@" <<'EOF'
import os, stat, sys, hashlib
a_root, b_root = sys.argv[1], sys.argv[2]
# An unpacked tree cannot have the source's ctimes: nothing can set them.
time_fields = ["st_mtime_ns", "st_atime_ns"] + ([] if len(sys.argv) > 3 else ["st_ctime_ns"])
bad = 0
def complain(p, what, x, y):
    global bad
    bad += 1
    print(f"  differs: {p}: {what}: {x!r} != {y!r}")
def xattrs(p):
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(p, n, follow_symlinks=False) for n in names if not n.startswith("security.selinux")}
def digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
links_a, links_b = {}, {}
for dirpath, dirnames, filenames in os.walk(a_root):
    rel_dir = os.path.relpath(dirpath, a_root)
    entries = sorted(dirnames + filenames)
    other = os.path.join(b_root, rel_dir)
    b_entries = sorted(e for e in os.listdir(other) if not (rel_dir == "." and e == "lost+found"))
    if entries != b_entries:
        complain(rel_dir, "entries", entries[:5], b_entries[:5])
        continue
    for name in [None] + entries:
        rel = rel_dir if name is None else os.path.normpath(os.path.join(rel_dir, name))
        if name is None and rel_dir != ".":
            continue
        pa, pb = os.path.join(a_root, rel), os.path.join(b_root, rel)
        sa, sb = os.lstat(pa), os.lstat(pb)
        for f in ["st_mode", "st_uid", "st_gid"] + time_fields:
            if getattr(sa, f) != getattr(sb, f):
                complain(rel, f, getattr(sa, f), getattr(sb, f))
        if stat.S_ISREG(sa.st_mode) or stat.S_ISLNK(sa.st_mode):
            if sa.st_size != sb.st_size:
                complain(rel, "size", sa.st_size, sb.st_size)
        if stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode):
            if sa.st_rdev != sb.st_rdev:
                complain(rel, "rdev", sa.st_rdev, sb.st_rdev)
        if stat.S_ISLNK(sa.st_mode) and os.readlink(pa) != os.readlink(pb):
            complain(rel, "target", os.readlink(pa), os.readlink(pb))
        if stat.S_ISREG(sa.st_mode):
            # Sparse files stay sparse: never more blocks than the source plus extent tree blocks.
            if sb.st_blocks > sa.st_blocks + 16:
                complain(rel, "blocks", sa.st_blocks, sb.st_blocks)
        if not stat.S_ISDIR(sa.st_mode) and sa.st_nlink > 1:
            links_a.setdefault(sa.st_ino, []).append(rel)
            links_b.setdefault(sb.st_ino, []).append(rel)
        if xattrs(pa) != xattrs(pb):
            complain(rel, "xattrs", xattrs(pa), xattrs(pb))
        if stat.S_ISREG(sa.st_mode) and digest(pa) != digest(pb):
            complain(rel, "content", "", "")
if sorted(map(sorted, links_a.values())) != sorted(map(sorted, links_b.values())):
    complain("*", "hard-link groups", sorted(links_a.values()), sorted(links_b.values()))
sys.exit(1 if bad else 0)
EOF
}

# A tree with one of everything: kinds, modes, owners, ns and post-2038 times, xattrs, holes.
make_rich_tree() {
	local s=$1
	mkdir -p "$s/dir/sub" "$s/opaque" "$s/empty"
	echo hello >"$s/file"
	: >"$s/emptyfile"
	head -c 3000000 /dev/urandom >"$s/dir/random"
	head -c 40000000 /dev/urandom >"$s/bigfile"
	truncate -s 1G "$s/sparse"
	printf 'data' | dd of="$s/sparse" bs=1 seek=500000000 conv=notrunc status=none
	printf 'tail' | dd of="$s/sparse" bs=1 seek=1073741820 conv=notrunc status=none
	# Twelve data islands: more extents than the inode holds, so an extent tree block.
	truncate -s 200M "$s/islands"
	for i in $(seq 0 11); do printf 'island %d' "$i" | dd of="$s/islands" bs=1 seek=$((i * 16 << 20)) conv=notrunc status=none; done
	ln "$s/file" "$s/dir/hardlink"
	ln -s file "$s/fastlink"
	ln -s "$(printf 'long/%.0s' {1..40})target" "$s/longlink"
	ln "$s/fastlink" "$s/dir/linked-symlink"
	mkfifo "$s/fifo"
	python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$s/socket"
	mknod "$s/chardev" c 1 3
	mknod "$s/blockdev" b 259 70000
	mknod "$s/whiteout" c 0 0
	setfattr -n trusted.overlay.opaque -v y "$s/opaque"
	setfattr -n user.comment -v "a value" "$s/file"
	setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' x)" "$s/dir/random"
	setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$s/bigfile"
	setfattr -n trusted.root -v yes "$s"
	chmod 4755 "$s/bigfile"
	chmod 2750 "$s/dir"
	chmod 1777 "$s/empty"
	chown 1234:5678 "$s/file" "$s/dir"
	chown -h 70000:80000 "$s/fastlink"
	chown 4000000000:4000000001 "$s/emptyfile"
	chmod 0750 "$s"
	chown 42:43 "$s"
	touch -h -d '2100-03-04 05:06:07.123456789' "$s/fastlink"
	touch -d '2300-01-01 00:00:00.999999999' "$s/dir/sub"
	touch -d '1960-05-05 05:05:05.5' "$s/emptyfile"
	mkdir "$s/big20k"
	(cd "$s/big20k" && seq -f 'entry-with-a-name-%g' 1 20000 | xargs touch)
	touch -d '2001-02-03 04:05:06.7' "$s/big20k" "$s"
	# atime after every mtime and ctime: relatime leaves it alone when the tests read the tree.
	find "$s" -exec touch -h -a -d '2400-01-01 00:00:00.25' {} +
}

make_rich_tree "$SRC"
IMG=$T_TMP/rich.img

# ---- pack + e2fsck + kernel mount + field-by-field comparison ----
check "pack a rich tree" "$LOOPIMG" pack "$SRC" "$IMG"
if fsck_clean "$IMG"; then pass "e2fsck -fn reports the image clean"; else fail "e2fsck -fn reports the image clean"; fi
check_eq "the 20k-entry directory is indexed" "yes" \
	"$(debugfs -R 'stat /big20k' "$IMG" 2>/dev/null | grep -q 'Flags:.*0x81000' && echo yes || echo no)"
check_eq "the 12-island file has an extent tree block" "12" \
	"$(debugfs -R 'ex /islands' "$IMG" 2>/dev/null | grep -c '^ 1/ 1')"
t_track_mount "$MNT"
DEV=$(timeout 30 "$LOOPIMG" mount -r "$IMG" "$MNT")
check "mount -r the image" mountpoint -q "$MNT"
if compare_trees "$SRC" "$MNT"; then pass "mounted image equals the source field by field"; else fail "mounted image equals the source field by field"; fi
check_eq "lookup in the indexed directory" "entry-with-a-name-12345" \
	"$(basename "$(ls "$MNT/big20k/entry-with-a-name-12345")")"
check_eq "mount set autoclear on $DEV" "1" "$(cat /sys/block/${DEV#/dev/}/loop/autoclear 2>/dev/null)"
check "umount" "$LOOPIMG" umount "$MNT"
check_fails "umount freed the device" test -e "/sys/block/${DEV#/dev/}/loop/backing_file"

# ---- unpack ----
check "unpack the image" "$LOOPIMG" unpack "$IMG" "$T_TMP/unpacked"
if compare_trees "$SRC" "$T_TMP/unpacked" noctime; then pass "unpacked tree equals the source"; else fail "unpacked tree equals the source"; fi
check_fails "unpack into a non-empty directory" "$LOOPIMG" unpack "$IMG" "$T_TMP/unpacked"
rm -rf "$T_TMP/unpacked"

# ---- reproducible ----
SDE=1700000000
check "reproducible pack" env SOURCE_DATE_EPOCH=$SDE "$LOOPIMG" pack --reproducible "$SRC" "$T_TMP/r1.img"
cp -a "$SRC" "$T_TMP/copy"
sleep 1.1
check "reproducible pack of a cp -a copy" env SOURCE_DATE_EPOCH=$SDE "$LOOPIMG" pack --reproducible "$T_TMP/copy" "$T_TMP/r2.img"
check "the two images are byte-identical" cmp "$T_TMP/r1.img" "$T_TMP/r2.img"
check "reproducible pack without SOURCE_DATE_EPOCH" "$LOOPIMG" pack --reproducible "$SRC" "$T_TMP/r3.img"
check "reproducible pack without SOURCE_DATE_EPOCH, copy" "$LOOPIMG" pack --reproducible "$T_TMP/copy" "$T_TMP/r4.img"
check "and those are byte-identical too" cmp "$T_TMP/r3.img" "$T_TMP/r4.img"
if fsck_clean "$T_TMP/r1.img"; then pass "reproducible image is e2fsck clean"; else fail "reproducible image is e2fsck clean"; fi
t_track_mount "$MNT"
check "kernel mounts the reproducible image" bash -c "'$LOOPIMG' mount -r '$T_TMP/r1.img' '$MNT' >/dev/null"
check_eq "times clamped to SOURCE_DATE_EPOCH" "$SDE" "$(stat -c %Y "$MNT/dir/sub")"
check "umount the reproducible image" "$LOOPIMG" umount "$MNT"

# ---- --no-lost-found, and layerctl's layers, which are packed that way ----
check "pack --no-lost-found" "$LOOPIMG" pack --no-lost-found "$SRC" "$T_TMP/nolf.img"
if fsck_clean "$T_TMP/nolf.img"; then pass "e2fsck -fn: clean without lost+found"; else fail "e2fsck -fn: clean without lost+found"; fi
check_eq "no lost+found in the image root" "no" \
	"$(debugfs -R 'ls /' "$T_TMP/nolf.img" 2>/dev/null | grep -q 'lost+found' && echo yes || echo no)"
t_track_mount "$MNT"
check "mount -r the image without lost+found" bash -c "'$LOOPIMG' mount -r '$T_TMP/nolf.img' '$MNT' >/dev/null"
check_fails "the kernel shows no lost+found" test -e "$MNT/lost+found"
if compare_trees "$SRC" "$MNT"; then pass "image without lost+found equals the source"; else fail "image without lost+found equals the source"; fi
check "umount the image without lost+found" "$LOOPIMG" umount "$MNT"
check "unpack the image without lost+found" "$LOOPIMG" unpack "$T_TMP/nolf.img" "$T_TMP/nolf"
if compare_trees "$SRC" "$T_TMP/nolf" noctime; then pass "its unpacked tree equals the source"; else fail "its unpacked tree equals the source"; fi
rm -rf "$T_TMP/nolf" "$T_TMP/nolf.img"
# A lost+found of the source's own is part of the tree: kept, contents and all.
mkdir -p "$T_TMP/lfsrc/lost+found" "$T_TMP/lfsrc/a"
echo kept >"$T_TMP/lfsrc/lost+found/file"
check "pack --no-lost-found of a tree with its own lost+found" "$LOOPIMG" pack --no-lost-found "$T_TMP/lfsrc" "$T_TMP/lf.img"
check_eq "the source's lost+found is kept" "kept" "$(debugfs -R 'cat /lost+found/file' "$T_TMP/lf.img" 2>/dev/null)"
if fsck_clean "$T_TMP/lf.img"; then pass "and e2fsck -fn reports it clean"; else fail "and e2fsck -fn reports it clean"; fi
if [ -x "$LAYERCTL" ]; then
	id=$(timeout 60 "$LAYERCTL" --store "$T_TMP/store" import "$T_TMP/copy/dir")
	check_eq "a layerctl layer image has no lost+found" "no" \
		"$(debugfs -R 'ls /' "$T_TMP/store/layers/$id.img" 2>/dev/null | grep -q 'lost+found' && echo yes || echo no)"
	if fsck_clean "$T_TMP/store/layers/$id.img"; then pass "the layer image is e2fsck -fn clean"; else fail "the layer image is e2fsck -fn clean"; fi
fi
rm -rf "$T_TMP/lfsrc" "$T_TMP/lf.img" "$T_TMP/store"

# ---- a directory big enough for a two-level htree ----
mkdir -p "$T_TMP/huge/d"
(cd "$T_TMP/huge/d" && seq -f 'a-rather-long-file-name-to-fill-leaves-%g' 1 120000 | xargs touch)
start=$(date +%s%N)
check "pack a 120k-entry directory" "$LOOPIMG" pack "$T_TMP/huge" "$T_TMP/huge.img"
echo "  (pack took $((($(date +%s%N) - start) / 1000000)) ms)"
check_eq "its index has two levels" "1" "$(debugfs -R 'htree /d' "$T_TMP/huge.img" 2>/dev/null | sed -n 's/.*Indirect levels: //p')"
if fsck_clean "$T_TMP/huge.img"; then pass "two-level htree is e2fsck clean"; else fail "two-level htree is e2fsck clean"; fi
rm -rf "$T_TMP/huge" "$T_TMP/huge.img"

# ---- info, digest, verify ----
check_eq "info names the type" "ext4" "$("$LOOPIMG" info --json "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')"
check "info --label" "$LOOPIMG" pack -L layer0 "$T_TMP/copy/dir" "$T_TMP/label.img"
check_eq "info shows the label" "layer0" "$("$LOOPIMG" info --json "$T_TMP/label.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["label"])')"
D=$("$LOOPIMG" digest "$IMG" | cut -d' ' -f1)
check_eq "digest is xxh128sum's" "xxh3-128:$(xxh128sum "$IMG" | cut -d' ' -f1)" "$D"
check "verify accepts the right digest" bash -c "'$LOOPIMG' verify '$IMG' $D >/dev/null"
"$LOOPIMG" verify "$IMG" 00000000000000000000000000000000 2>/dev/null
check_eq "verify exits 1 on a mismatch" "1" "$?"

# ---- attach / list / detach ----
L=$(timeout 30 "$LOOPIMG" attach -r "$IMG")
[ -n "$L" ] && t_track_loop "$L"
check "attach -r prints a loop device" test -b "$L"
check_eq "the device is read-only" "1" "$(cat /sys/block/${L#/dev/}/ro 2>/dev/null)"
check_eq "no autoclear unless asked" "0" "$(cat /sys/block/${L#/dev/}/loop/autoclear 2>/dev/null)"
check "list shows it" bash -c "'$LOOPIMG' list | grep -q '^$L .*$IMG'"
check "list --json shows it" bash -c "'$LOOPIMG' list --json | python3 -c 'import json,sys; sys.exit(0 if any(d[\"device\"]==\"$L\" and d[\"ro\"] for d in json.load(sys.stdin)) else 1)'"
check "the device carries the image" cmp -n 4096 "$L" "$IMG"
check "detach DEV" "$LOOPIMG" detach "$L"
check_fails "detached device has no backing file" test -e "/sys/block/${L#/dev/}/loop/backing_file"
L2=$(timeout 30 "$LOOPIMG" attach "$IMG")
[ -n "$L2" ] && t_track_loop "$L2"
check "detach IMG" "$LOOPIMG" detach "$IMG"
check_fails "detach IMG released it" test -e "/sys/block/${L2#/dev/}/loop/backing_file"
L3=$(timeout 30 "$LOOPIMG" attach --autoclear "$IMG")
check_fails "attach --autoclear: gone once the attacher closed it" test -e "/sys/block/${L3#/dev/}/loop/backing_file"

# Concurrent attachers never get the same device.
for i in 1 2 3 4 5 6; do timeout 30 "$LOOPIMG" attach -r "$IMG" >"$T_TMP/par.$i" & done
wait
for i in 1 2 3 4 5 6; do d=$(cat "$T_TMP/par.$i"); [ -n "$d" ] && t_track_loop "$d"; done
check_eq "six parallel attaches, six distinct devices" "6" "$(sort -u "$T_TMP"/par.* | grep -c loop)"
for i in 1 2 3 4 5 6; do "$LOOPIMG" detach "$(cat "$T_TMP/par.$i")"; done

t_summary
