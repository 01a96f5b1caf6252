#!/bin/bash
# unionfs copy-up guarantees, one check each: metadata kept (mode with setuid,
# owner, ns mtime, user.* and security.capability xattrs, parent dirs), holes
# kept, st_ino stable across copy-up and remount, whiteouts instead of
# copies, opaque dirs, renames of lower dirs that the kernel's overlayfs
# (redirect_dir=on) reads back the same, no work-dir leftovers, lower trees
# untouched, and a kill -9 in the middle of a big copy-up that leaves the old
# or the complete new file, never a partial one.
#
# A check that fails because of a known unionfs bug prints "skip - NAME:
# known bug, see notes" (KNOWN_BUGS below); UT_STRICT=1 runs those as checks.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
t_begin
STEP_TIMEOUT=${STEP_TIMEOUT:-60}
T() { timeout -k 5 "$STEP_TIMEOUT" "$@"; }
# Known unionfs bugs (see the notes of issue 4); each name is one check.
KNOWN_BUGS=" " # none at present; e.g. " hardlink-nlink "
skip() { echo "skip - ${1%%:*}: known bug, see notes (${1#*: })"; }
# known NAME: true when NAME is a known bug to skip (not under UT_STRICT=1).
known() { [ -z "${UT_STRICT:-}" ] && [[ "$KNOWN_BUGS" == *" $1 "* ]]; }
# check_eq_known NAME DESC EXPECTED ACTUAL: check_eq, but a failure of a
# known bug prints a skip line instead.
check_eq_known() {
	local name=$1; shift
	if known "$name" && [ "$2" != "$3" ]; then
		skip "$name: $1 (expected '$2', got '$3')"
	else
		check_eq "$@"
	fi
}
# check_eq_set DESC EXPECTED ACTUAL: check_eq that fails on an empty value.
check_eq_set() {
	if [ -z "$2" ]; then fail "$1 (no value to compare: '$2' vs '$3')"; else check_eq "$@"; fi
}

L=$T_TMP/lower L2=$T_TMP/lower2 U=$T_TMP/upper W=$T_TMP/work M=$T_TMP/mnt
mkdir -p "$L" "$L2" "$U" "$W" "$M"
CAP=0x0100000200200000000000000000000000000000   # v2, cap_net_raw+ep
MTIME='2001-02-03 04:05:06.123456789'

# digest DIR: names, types, modes, owners, sizes, mtimes, contents, xattrs.
digest() {
	(
		cd "$1" || exit 1
		T find . -printf '%p %y %m %U %G %s %T@ %l\n' | LC_ALL=C sort
		T find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
		T getfattr -R -h -d -m - -e hex . 2>/dev/null
	) | sha256sum | cut -d' ' -f1
}

# view DIR: what a user sees: names, types, modes, owners, sizes, contents, user.* xattrs.
view() {
	(
		cd "$1" || exit 1
		T find . -printf '%p %y %m %U %G %l\n' | LC_ALL=C sort
		T find . -type f -printf '%p %s\n' | LC_ALL=C sort
		# (contents of files under 64 MiB: the 1 GiB sparse one is checked on its own)
		T find . -type f -size -64M -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
		T getfattr -R -h -d -m '^user\.' -e hex . 2>/dev/null
	)
}

ufs_mount() { mount_unionfs "$M" -o "lowerdir=$L:$L2,upperdir=$U,workdir=$W"; }
ufs_umount() { T umount "$M"; }
# The shared whiteout (whiteout.c) lives there while mounted: not a leftover.
leftovers() { find "$W/unionfs" -mindepth 1 ! -name whiteout 2>/dev/null | head -n 5; }

# --- the lower trees -------------------------------------------------------
make_lowers() {
	mkdir -p "$L/meta/p1/p2" "$L/holes" "$L/ino" "$L/gone" "$L/tree/a/b" "$L/mv/x/y" "$L2/mv/z"
	echo data >"$L/meta/f"
	chown 1234:2345 "$L/meta/f"
	chmod 4755 "$L/meta/f"
	setfattr -n user.k -v hello "$L/meta/f"
	setfattr -n security.capability -v "$CAP" "$L/meta/f"
	touch -m -d "$MTIME" "$L/meta/f"
	echo deep >"$L/meta/p1/p2/f"
	chown 42:43 "$L/meta/p1"
	chmod 2750 "$L/meta/p1"
	setfattr -n user.dir -v d1 "$L/meta/p1"
	touch -m -d "$MTIME" "$L/meta/p1" "$L/meta"
	printf head >"$L/holes/sparse"
	truncate -s 1G "$L/holes/sparse"
	echo one >"$L/ino/f"
	mkdir "$L/ino/d"
	echo doomed >"$L/gone/f"
	echo t1 >"$L/tree/a/f"
	echo t2 >"$L/tree/a/b/g"
	echo t3 >"$L/tree/top"
	echo m1 >"$L/mv/x/f"
	echo m2 >"$L/mv/x/y/g"
	echo m3 >"$L2/mv/z/h"
	setfattr -n user.moved -v yes "$L/mv/x"
	chmod 750 "$L/mv/x"
	touch -d "$MTIME" "$L/mv/x/f"
	mkdir -p "$L/hl/sub" "$L/wo" "$L2/wo" "$L/sg"
	echo linked >"$L/hl/f"
	ln "$L/hl/f" "$L/hl/g"
	ln "$L/hl/f" "$L/hl/sub/h"
	mkdir -p "$L/hl2/s"
	echo two >"$L/hl2/a"
	ln "$L/hl2/a" "$L/hl2/s/b"
	ln "$L/hl2/a" "$L/hl2/s/c"
	echo other >"$L/hl2/s/o"
	echo hidden >"$L2/wo/a"
	mknod "$L/wo/a" c 0 0
	echo sg >"$L/sg/a"
	echo um >"$L/um"
	chown 0:65534 "$L/sg"
	chmod 2775 "$L/sg"
	mkdir -p "$L/op/d" "$L2/op/d"
	echo shown >"$L/op/d/shown"
	echo hidden >"$L2/op/d/hidden"
	setfattr -n trusted.overlay.opaque -v y "$L/op"
}
make_lowers
LOWER_DIGEST="$(digest "$L") $(digest "$L2")"
check_fn "mount unionfs" ufs_mount || { t_summary; exit 1; }

# --- metadata kept by copy-up ---------------------------------------------
# A user.* xattr set through the mount copies the file up without writing
# data (a write would drop security.capability, as on any file system).
check "copy-up by setxattr" setfattr -n user.other -v 1 "$M/meta/f"
check "the file is in the upper dir" test -f "$U/meta/f"
for where in "$M" "$U"; do
	tag=merged
	[ "$where" = "$U" ] && tag=upper
	check_eq "copy-up keeps mode with setuid ($tag)" "4755" "$(stat -c %a "$where/meta/f")"
	check_eq "copy-up keeps owner ($tag)" "1234:2345" "$(stat -c %u:%g "$where/meta/f")"
	check_eq_set "copy-up keeps ns mtime ($tag)" "$(stat -c %y "$L/meta/f")" "$(stat -c %y "$where/meta/f")"
	check_eq "copy-up keeps user.* xattrs ($tag)" "hello" \
		"$(getfattr -n user.k --only-values "$where/meta/f" 2>/dev/null)"
	check_eq "copy-up keeps security.capability ($tag)" "$CAP" \
		"$(getfattr -n security.capability -e hex "$where/meta/f" 2>/dev/null | sed -n 's/^security.capability=//p')"
	check_eq "copy-up keeps the content ($tag)" "data" "$(cat "$where/meta/f")"
done
check "copy-up of a deep file" setfattr -n user.x -v 1 "$M/meta/p1/p2/f"
check_eq "parent copied up with mode (setgid)" "2750" "$(stat -c %a "$U/meta/p1")"
check_eq "parent copied up with owner" "42:43" "$(stat -c %u:%g "$U/meta/p1")"
check_eq "parent copied up with user.* xattr" "d1" "$(getfattr -n user.dir --only-values "$U/meta/p1" 2>/dev/null)"
check_eq_known parent-mtime "parent copied up with ns mtime (as the kernel does)" \
	"$(stat -c %y "$L/meta/p1")" "$(stat -c %y "$U/meta/p1")"
check_eq_known parent-mtime "parent's parent copied up with ns mtime (as the kernel does)" \
	"$(stat -c %y "$L/meta")" "$(stat -c %y "$U/meta")"

# --- holes --------------------------------------------------------------
check "append one byte to a sparse 1 GiB lower file" sh -c "printf x >>'$M/holes/sparse'"
check_eq "size after append" "1073741825" "$(stat -c %s "$M/holes/sparse")"
blocks=$(stat -c %b "$U/holes/sparse" 2>/dev/null || echo missing)
check "holes kept: upper file uses < 1 MiB (st_blocks=$blocks)" test "${blocks:-missing}" != missing -a "${blocks:-0}" -lt 2048 2>/dev/null
check_eq "sparse file starts with the lower data" "head" "$(head -c 4 "$M/holes/sparse")"
check_eq "sparse file ends with the appended byte" "x" "$(tail -c 1 "$M/holes/sparse")"
check_eq "a hole reads as zeros" "0000" "$(T dd if="$M/holes/sparse" bs=1 skip=500000000 count=4 2>/dev/null | od -An -c | tr -d ' \n' | sed 's/\\0/0/g')"

# --- st_ino ------------------------------------------------------------
ino_f=$(stat -c %i "$M/ino/f")
ino_d=$(stat -c %i "$M/ino/d")
check "copy-up of ino/f by a write" sh -c "echo two >>'$M/ino/f'"
check "copy-up of ino/d by chmod" chmod 700 "$M/ino/d"
check_eq_set "st_ino of a file same after copy-up" "$ino_f" "$(stat -c %i "$M/ino/f")"
check_eq_set "st_ino of a dir same after copy-up" "$ino_d" "$(stat -c %i "$M/ino/d")"

# --- hard links ---------------------------------------------------------
ino_hl=$(stat -c %i "$M/hl/f")
stat "$M/hl/sub/h" >/dev/null 2>&1   # looks up another name of the group first
check "write through one name of a lower hard-link group" sh -c "echo more >>'$M/hl/f'"
check_eq "the other names show the new content" "linked more linked more" \
	"$(cat "$M/hl/g" "$M/hl/sub/h" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq_set "all names keep one st_ino" "$ino_hl $ino_hl $ino_hl" \
	"$(stat -c %i "$M/hl/f" "$M/hl/g" "$M/hl/sub/h" | tr '\n' ' ' | sed 's/ $//')"
check_eq_known hardlink-nlink "all names show nlink 3 after the copy-up" "3 3 3" \
	"$(stat -c %h "$M/hl/f" "$M/hl/g" "$M/hl/sub/h" | tr '\n' ' ' | sed 's/ $//')"
if mv "$M/hl/sub/h" "$M/hl/h2" 2>"$T_TMP/mv.err"; then
	pass "rename of a lower hard link after another name of it was looked up"
elif known hardlink-rename; then
	skip "hardlink-rename: rename of a lower hard link after another name of it was looked up ($(cat "$T_TMP/mv.err"))"
else
	fail "rename of a lower hard link after another name of it was looked up ($(cat "$T_TMP/mv.err"))"
fi
# The union's link count, as overlayfs (index=on) keeps it.
check "unlink one name of the group" rm "$M/hl/g"
check_eq "the other names show nlink 2" "2 2" "$(stat -c %h "$M/hl/f" "$M/hl/h2" | tr '\n' ' ' | sed 's/ $//')"
check "link a new name to the group" ln "$M/hl/h2" "$M/hl/new"
check_eq "all names show nlink 3" "3 3 3" \
	"$(stat -c %h "$M/hl/f" "$M/hl/h2" "$M/hl/new" | tr '\n' ' ' | sed 's/ $//')"

# Once its only upper name is gone, the copy still counts the lower names that are left
# (difftest seed 367 found the rename case). The node is first met as the name that goes; the
# kernel keeps it through the other names, in another dir, whose lookups do not start afresh.
stat "$M/hl2/a" "$M/hl2/s/b" "$M/hl2/s/c" >/dev/null 2>&1
check "unlink a name of a lower group nothing was copied up of" rm "$M/hl2/a"
check_eq "the other names show nlink 2" "2 2" "$(stat -c %h "$M/hl2/s/b" "$M/hl2/s/c" | tr '\n' ' ' | sed 's/ $//')"
check "rename another file over a lower name of the group" mv "$M/hl2/s/o" "$M/hl2/s/c"
check_eq "the last name shows nlink 1 (as the kernel counts, too)" "1" "$(stat -c %h "$M/hl2/s/b")"
check_eq "the last name keeps its content" "two" "$(cat "$M/hl2/s/b")"

# --- creating where a lower layer has a whiteout, in a setgid dir ------------
if err=$(sh -c "echo new >'$M/wo/a'" 2>&1); then
	pass "create a name hidden by a whiteout in a lower layer"
elif known lower-whiteout-create; then
	skip "lower-whiteout-create: create a name hidden by a whiteout in a lower layer ($err)"
else
	fail "create a name hidden by a whiteout in a lower layer ($err)"
fi
check "rm of a lower file in a setgid dir" rm "$M/sg/a"
check "mkdir of the same name" mkdir "$M/sg/a"
check_eq_known whiteout-setgid "a dir made over a whiteout in a setgid dir inherits gid and setgid" \
	"2755 65534" "$(stat -c '%a %g' "$M/sg/a")"

# --- the caller's umask, not the daemon's (which runs with 022 here) -----------
check "create with umask 002 and 000" sh -c "umask 002; mkdir '$M/ud'; touch '$M/ud/f'; \
	mkfifo '$M/ud/p'; mkdir '$M/ud/d'; umask 000; touch '$M/ud/g'; rm '$M/um'; touch '$M/um'"
check_eq "new objects' modes follow the caller's umask" "775 664 664 775 666 666" \
	"$(stat -c %a "$M/ud" "$M/ud/f" "$M/ud/p" "$M/ud/d" "$M/ud/g" "$M/um" | tr '\n' ' ' | sed 's/ $//')"

# --- security.capability: a new file has none until a setxattr gives it one ---
# (unionfs remembers that a file it made has none; a setxattr must undo that)
capv=0x0100000200200000000000000000000000000000
read_cap() { getfattr -e hex -n security.capability "$1" 2>/dev/null | sed -n 's/^security.capability=//p'; }
check "a new file, written, then given a capability" \
	sh -c "echo x >'$M/ud/cap' && setfattr -n security.capability -v $capv '$M/ud/cap'"
check_eq "its capability reads back through the mount" "$capv" "$(read_cap "$M/ud/cap")"
check "a write to it" sh -c "echo y >>'$M/ud/cap'"
check_eq "the write dropped the capability, as on any file system" "" \
	"$(read_cap "$M/ud/cap")$(read_cap "$U/ud/cap")"

# --- whiteouts and opaque dirs --------------------------------------------
check "rm of a lower file" rm "$M/gone/f"
check_eq "a whiteout (char 0/0) is left in the upper dir" "character special file 0,0" \
	"$(stat -c '%F %t,%T' "$U/gone/f" 2>&1)"
check_eq "the file is gone from the merged view" "" "$(ls -A "$M/gone")"
check "rm -rf of a lower dir" rm -rf "$M/tree"
check "mkdir of the same name" mkdir "$M/tree"
check_eq "the new dir shows nothing from below" "" "$(ls -A "$M/tree")"
check_eq "the new dir is opaque (trusted.overlay.opaque=y)" "y" \
	"$(getfattr -n trusted.overlay.opaque --only-values "$U/tree" 2>/dev/null)"
check "rm -rf left no copy of a lower file in the upper dir" \
	sh -c "! find '$U/gone' '$U/tree' -type f | grep -q ."

# --- rename of a lower dir ----------------------------------------------
view "$M/mv/x" >"$T_TMP/mv.before"
check "rename of a lower dir (no EXDEV)" mv -T "$M/mv/x" "$M/mv/renamed"
check "rename of a merged dir" mv -T "$M/mv" "$M/mv2"
view "$M/mv2/renamed" >"$T_TMP/mv.after"
check "the renamed dir shows the same tree" cmp -s "$T_TMP/mv.before" "$T_TMP/mv.after"
check_eq "the old name is gone" "no" "$(test -e "$M/mv2/x" && echo yes || echo no)"
check "a lower file in the renamed dir can be written" sh -c "echo more >>'$M/mv2/renamed/y/g'"
check "rename of a dir out of a lower opaque dir" mv -T "$M/op/d" "$M/opmoved"
check_eq "the moved dir shows what it showed before" "shown" "$(ls "$M/opmoved" | tr '\n' ' ' | sed 's/ $//')"
view "$M" >"$T_TMP/view.ufs"
check_eq "work dir has no leftovers after the operations" "" "$(leftovers)"

# --- remount: st_ino, leftovers, and the kernel over the same upper ---------
check_fn "unmount unionfs" ufs_umount
check_fn "remount unionfs" ufs_mount
check_eq_set "st_ino of a copied-up file same after remount" "$ino_f" "$(stat -c %i "$M/ino/f")"
check_eq_set "st_ino of a copied-up dir same after remount" "$ino_d" "$(stat -c %i "$M/ino/d")"
check_eq "a lower hard-link group keeps the union's nlink across remount" "3 3 3" \
	"$(stat -c %h "$M/hl/f" "$M/hl/h2" "$M/hl/new" | tr '\n' ' ' | sed 's/ $//')"
check_eq "a group with one name left shows nlink 1 after remount (the kernel's count hid it before)" \
	"1" "$(stat -c %h "$M/hl2/s/b")"
view "$M" >"$T_TMP/view.ufs2"
check_eq_known redirect-opaque "after remount, a dir moved out of a lower opaque dir does not show what the opaque dir hid" \
	"shown" "$(ls "$M/opmoved" | tr '\n' ' ' | sed 's/ $//')"
if known redirect-opaque; then
	grep -v '\./opmoved' "$T_TMP/view.ufs" >"$T_TMP/view.ufs.a"
	grep -v '\./opmoved' "$T_TMP/view.ufs2" >"$T_TMP/view.ufs2.a"
	check "same tree after remount (but opmoved/, see redirect-opaque)" cmp -s "$T_TMP/view.ufs.a" "$T_TMP/view.ufs2.a"
else
	check "same tree after remount" cmp -s "$T_TMP/view.ufs" "$T_TMP/view.ufs2"
fi
check_fn "unmount unionfs again" ufs_umount
KW=$T_TMP/kwork KM=$T_TMP/kmnt
mkdir -p "$KW"
check_fn "kernel overlayfs mounts the upper unionfs wrote (redirect_dir=on)" \
	mount_overlay "$KM" "lowerdir=$L:$L2,upperdir=$U,workdir=$KW,redirect_dir=on"
view "$KM" >"$T_TMP/view.kernel"
# Hard links as the kernel sees them in our upper are reported, not required.
grep -v '\./hl/' "$T_TMP/view.ufs" >"$T_TMP/view.ufs.nohl"
grep -v '\./hl/' "$T_TMP/view.kernel" >"$T_TMP/view.kernel.nohl"
cmp -s "$T_TMP/view.ufs" "$T_TMP/view.kernel" ||
	echo "# note: the kernel's view of the lower hard-link group hl/ differs (allowed)"
if cmp -s "$T_TMP/view.ufs.nohl" "$T_TMP/view.kernel.nohl"; then
	pass "the kernel shows the same tree as unionfs"
else
	fail "the kernel shows the same tree as unionfs (diff unionfs→kernel below)"
	diff "$T_TMP/view.ufs.nohl" "$T_TMP/view.kernel.nohl" | head -n 20 | sed 's/^/    /'
fi
T umount "$KM"
check_eq "lower trees untouched (digests)" "$LOWER_DIGEST" "$(digest "$L") $(digest "$L2")"

# --- kill -9 in the middle of a big copy-up ---------------------------------
# The daemon runs with -f under our own tracking, so we know its pid.
BL=$T_TMP/biglower BU=$T_TMP/bigupper BW=$T_TMP/bigwork BM=$T_TMP/bigmnt
mkdir -p "$BL" "$BU" "$BW" "$BM"
T sh -c "yes 0123456789abcdef | head -c 512M >'$BL/big'"
big_sum=$(sha256sum <"$BL/big" | cut -d' ' -f1)
BIG_SIZE=536870912

big_mount_fg() {
	"$UNIONFS" -f ${BIG_EXTRA:-} -o "lowerdir=$BL,upperdir=$BU,workdir=$BW" "$BM" </dev/null >>"$T_TMP/big.log" 2>&1 &
	BIG_PID=$!
	t_track_pid "$BIG_PID"
	t_track_mount "$BM"
	wait_mounted "$BM" 50
}

# big_state: "old", "new" or what else is seen (never a partial file).
big_state() {
	local size sum
	size=$(stat -c %s "$BM/big") || { echo "stat failed"; return; }
	if [ "$size" = "$BIG_SIZE" ]; then
		sum=$(T sha256sum <"$BM/big" | cut -d' ' -f1)
		[ "$sum" = "$big_sum" ] && echo old || echo "old size, other content"
	elif [ "$size" = $((BIG_SIZE + 1)) ]; then
		sum=$(T head -c "$BIG_SIZE" "$BM/big" | sha256sum | cut -d' ' -f1)
		[ "$sum" = "$big_sum" ] && [ "$(tail -c 1 "$BM/big")" = x ] && echo new ||
			echo "new size, other content"
	else
		echo "partial: size $size"
	fi
}

# How long a whole copy-up takes, to kill the daemon at 10%, 50% and 90% of it.
copy_ms=1000
if big_mount_fg; then
	t0=$(date +%s%N)
	timeout 120 sh -c "printf x >>'$BM/big'"
	copy_ms=$((($(date +%s%N) - t0) / 1000000))
	check_eq "an uninterrupted copy-up gives the new file" "new" "$(big_state)"
	echo "# copy-up of 512 MiB took ${copy_ms} ms"
	T umount "$BM"
	wait "$BIG_PID" 2>/dev/null
else
	fail "mount for the big copy-up"
fi
for pct in 10 50 90; do
	delay=$(printf '%d.%03d' $((copy_ms * pct / 100 / 1000)) $((copy_ms * pct / 100 % 1000)))
	rm -rf "$BU" "$BW" && mkdir -p "$BU" "$BW"
	if ! big_mount_fg; then
		fail "kill -9 at ${delay}s: mount"
		continue
	fi
	(printf x >>"$BM/big") 2>/dev/null &
	writer=$!
	sleep "$delay"
	kill -KILL "$BIG_PID" 2>/dev/null
	wait "$BIG_PID" 2>/dev/null
	timeout 20 umount -l "$BM" 2>/dev/null || timeout 20 fusermount3 -u -z "$BM" 2>/dev/null
	timeout 20 sh -c "while kill -0 $writer 2>/dev/null; do sleep 0.1; done"
	# 0 where the copy is an unnamed O_TMPFILE file: the kernel freed it with the daemon.
	echo "# kill -9 at ${delay}s: work-dir entries before the remount: $(find "$BW/unionfs" -mindepth 1 2>/dev/null | wc -l)"
	if ! big_mount_fg; then
		fail "kill -9 at ${delay}s: remount"
		continue
	fi
	state=$(big_state)
	case $state in
	old | new) pass "kill -9 at ${delay}s during a 512 MiB copy-up: the $state file, not a partial one" ;;
	*) fail "kill -9 at ${delay}s during a 512 MiB copy-up: $state" ;;
	esac
	check_eq "kill -9 at ${delay}s: no work-dir leftovers after the remount" "" \
		"$(find "$BW/unionfs" -mindepth 1 2>/dev/null | head -n 5)"
	leftover_upper=$(find "$BU" -mindepth 1 ! -name big | head -n 5)
	check_eq "kill -9 at ${delay}s: nothing else in the upper dir" "" "$leftover_upper"
	T umount "$BM"
	wait "$BIG_PID" 2>/dev/null
done
check_eq "the big lower file is untouched" "$big_sum" "$(sha256sum <"$BL/big" | cut -d' ' -f1)"

# --- -o metacopy=on: a metadata change copies no data ------------------------
ML=$T_TMP/mclower MU=$T_TMP/mcupper MW=$T_TMP/mcwork MM=$T_TMP/mcmnt
mkdir -p "$ML/d" "$MU" "$MW" "$MM"
for i in 1 2 3; do head -c 8M /dev/urandom >"$ML/d/f$i"; done
mc_sum=$(cat "$ML"/d/f* | sha256sum)
mc_mount() { mount_unionfs "$MM" -o "metacopy=on,lowerdir=$ML,upperdir=$MU,workdir=$MW"; }
if check_fn "mount with metacopy=on" mc_mount; then
	check "chmod -R of 24 MiB of lower files" chmod -R g+w "$MM/d"
	check "setfattr on a lower file" setfattr -n user.mc -v 1 "$MM/d/f3"
	check_eq "modes changed" "664 664 664" "$(stat -c %a "$MM"/d/f* | tr '\n' ' ' | sed 's/ $//')"
	used=$(du -sk "$MU" | cut -f1)
	check "the upper holds no data: ${used} KiB for 24 MiB of files" test "$used" -lt 1024
	check_eq "the data reads the same" "$mc_sum" "$(cat "$MM"/d/f* | sha256sum)"
	check_eq "st_blocks as the data's" "$(stat -c %b "$ML/d/f1")" "$(stat -c %b "$MM/d/f1")"
	check_eq "marked as overlayfs marks metadata-only copies" "" \
		"$(getfattr --absolute-names --only-values -n trusted.overlay.metacopy "$MU/d/f1" 2>&1)"
	t_umount "$MM"
	check_fn "the kernel's overlayfs (metacopy=on) mounts that upper" \
		mount_overlay "$MM" "metacopy=on,redirect_dir=on,lowerdir=$ML,upperdir=$MU,workdir=$MW"
	check_eq "and reads the same data and modes" "$mc_sum 664 664 664" \
		"$(cat "$MM"/d/f* | sha256sum) $(stat -c %a "$MM"/d/f* | tr '\n' ' ' | sed 's/ $//')"
	t_umount "$MM"
	check_fn "remount unionfs with metacopy=on" mc_mount
	check_eq "after remount the data reads the same" "$mc_sum" "$(cat "$MM"/d/f* | sha256sum)"
	check "append to a metadata-only copy" sh -c "printf x >>'$MM/d/f1'"
	check_eq "it gets its data, then the byte" "$(cat "$ML/d/f1" | sha256sum)" \
		"$(head -c 8M "$MM/d/f1" | sha256sum)"
	check_eq "and ends with it" "x" "$(tail -c 1 "$MM/d/f1")"
	check_eq "its mode and xattr stay" "664 1" \
		"$(stat -c %a "$MM/d/f1") $(getfattr --absolute-names --only-values -n user.mc "$MM/d/f3" 2>&1)"
	check "the full copy is no longer marked" sh -c "! getfattr -n trusted.overlay.metacopy '$MU/d/f1' >/dev/null 2>&1"
	t_umount "$MM"
fi
check_eq "metacopy: the lower files are untouched" "$mc_sum" "$(cat "$ML"/d/f* | sha256sum)"

# --- a full upper: ENOSPC and EDQUOT reach the caller, nothing half-made ------
# full_check NAME UPPERFS MNT ERRTEXT [RUNAS...]: appending to the 20 MiB lower
# file through MNT fails with ERRTEXT; the lower file is untouched, no copy
# and no work-dir leftover remain, and a small new file still works.
FL=$T_TMP/fulllower
mkdir -p "$FL"
T sh -c "head -c 20M /dev/urandom >'$FL/big'"
chmod 666 "$FL/big" && chown 65534:65534 "$FL/big" && chmod 777 "$FL"
full_sum=$(sha256sum <"$FL/big")
full_check() {
	local name=$1 ufs=$2 mnt=$3 err=$4
	shift 4
	if T "$@" sh -c "printf x >>'$mnt/big'" 2>"$T_TMP/full.err"; then
		fail "$name: the append succeeded on a full upper"
	else
		check "$name: the caller gets '$err' ($(tr '\n' ' ' <"$T_TMP/full.err"))" grep -q "$err" "$T_TMP/full.err"
	fi
	check_eq "$name: the lower file is untouched" "$full_sum" "$(sha256sum <"$FL/big")"
	check_eq "$name: no copy in the upper" "" "$(find "$ufs/u" -name big)"
	check_eq "$name: no leftover in the work dir" "" "$(find "$ufs/w/unionfs" -mindepth 1 2>/dev/null)"
	check_eq "$name: the file still reads the lower data" "$full_sum" "$(T cat "$mnt/big" | sha256sum)"
	check "$name: a small new file still works" "$@" sh -c "echo ok >'$mnt/small' && grep -q ok '$mnt/small'"
}
FT=$T_TMP/fulltmpfs
mkdir -p "$FT" && t_track_mount "$FT"
if T mount -t tmpfs -o size=8m tmpfs "$FT" && mkdir -p "$FT/u" "$FT/w" &&
	mount_unionfs "$FT/m" -o "lowerdir=$FL,upperdir=$FT/u,workdir=$FT/w"; then
	full_check "ENOSPC (8 MiB tmpfs upper)" "$FT" "$FT/m" "No space left"
	t_umount "$FT/m"
else
	fail "ENOSPC: mount an 8 MiB tmpfs upper"
fi
t_umount "$FT"
# EDQUOT: ext4 with quotas on a loop device; user 65534 may use 2 MiB.
# quota_setup: 0 when mounted, 2 when the kernel has no quota support.
QI=$T_TMP/quota.img QM=$T_TMP/quota
quota_setup() {
	local dev
	truncate -s 128M "$QI" && T mkfs.ext4 -q -O quota -E quotatype=usrquota "$QI" || return 1
	dev=$(T losetup -f --show "$QI") || return 1
	t_track_loop "$dev"
	mkdir -p "$QM" && t_track_mount "$QM" || return 1
	# The quota feature needs CONFIG_QUOTA: without it the kernel refuses the mount.
	T mount "$dev" "$QM" 2>/dev/null || return 2
	mkdir -p "$QM/u" "$QM/w" && chmod 777 "$QM/u" || return 1
	T setquota -u 65534 0 2048 0 0 "$QM" || return 1
	mount_unionfs "$QM/m" -o "allow_other,lowerdir=$FL,upperdir=$QM/u,workdir=$QM/w"
}
quota_setup
rc=$?
if ! command -v setquota >/dev/null; then
	fail "setquota missing (package quota): EDQUOT cannot be tested"
elif [ "$rc" = 2 ]; then
	echo "skip - EDQUOT: this kernel cannot mount ext4 with quotas (no CONFIG_QUOTA)"
elif check_eq "EDQUOT: an ext4 upper with a 2 MiB quota for user 65534" 0 "$rc"; then
	full_check "EDQUOT (user 65534 over quota)" "$QM" "$QM/m" "quota exceeded" \
		setpriv --reuid 65534 --regid 65534 --clear-groups
	t_umount "$QM/m"
fi
t_umount "$QM"
rm -f "$QI"

# --- reflink: a copy-up on xfs shares the lower file's blocks (FICLONE) -------
# ext4 and tmpfs have no reflink: a loop-mounted xfs holds lower and upper.
XI=$T_TMP/xfs.img XM=$T_TMP/xfs
xfs_copyup() {
	local dev before after
	truncate -s 1G "$XI" && T mkfs.xfs -q -m reflink=1 "$XI" || return 1
	dev=$(T losetup -f --show "$XI") || return 1
	t_track_loop "$dev"
	mkdir -p "$XM" && t_track_mount "$XM" && T mount "$dev" "$XM" || return 1
	mkdir -p "$XM/l" "$XM/u" "$XM/w" "$XM/m"
	T sh -c "head -c 256M /dev/urandom >'$XM/l/big'" && sync -f "$XM" || return 1
	mount_unionfs "$XM/m" -o "lowerdir=$XM/l,upperdir=$XM/u,workdir=$XM/w" || return 1
	before=$(df -k --output=used "$XM" | tail -n 1)
	T sh -c "printf x >>'$XM/m/big'" && sync -f "$XM" || return 1
	after=$(df -k --output=used "$XM" | tail -n 1)
	echo "# xfs: copy-up of 256 MiB took $((after - before)) KiB of new space"
	[ $((after - before)) -lt 16384 ] || return 1
	T filefrag -v "$XM/u/big" | grep -q shared || return 1
	[ "$(T head -c 268435456 "$XM/m/big" | sha256sum)" = "$(sha256sum <"$XM/l/big")" ] || return 1
	t_umount "$XM/m"
	t_umount "$XM" && T losetup -d "$dev"
}
if command -v mkfs.xfs >/dev/null; then
	check_fn "copy-up on xfs is a reflink: shared extents, no new space for the data" xfs_copyup
else
	fail "mkfs.xfs missing (xfsprogs): the reflink copy-up cannot be tested"
fi
rm -f "$XI"

# --- a big copy-up does not stall other requests -----------------------------
# The lower file is dropped from the page cache first, so the copy reads the
# disk and lasts; meanwhile stat and cat of other files must answer at once.
# probe_ms: the slowest of 10 rounds of stat + cat through the mount.
probe_ms() {
	local i t0 t worst=0
	for i in $(seq 10); do
		t0=$(date +%s%N)
		T stat "$BM/small" >/dev/null && T cat "$BM/small" >/dev/null || { echo 99999; return; }
		t=$((($(date +%s%N) - t0) / 1000000))
		[ "$t" -gt "$worst" ] && worst=$t
		sleep 0.02
	done
	echo "$worst"
}
echo small >"$BL/small"
rm -rf "$BU" "$BW" && mkdir -p "$BU" "$BW"
if big_mount_fg; then
	T cat "$BM/small" >/dev/null
	sync "$BL/big"
	python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$BL/big"
	(printf x >>"$BM/big") 2>/dev/null &
	writer=$!
	# The copy has begun once the daemon holds a file in the work dir (an unnamed
	# O_TMPFILE one shows only among its fds) or one is named there.
	for i in $(seq 100); do
		[ -n "$(find "/proc/$BIG_PID/fd" -lname "$BW/unionfs/*" 2>/dev/null | head -n 1)" ] && break
		[ -n "$(find "$BW/unionfs" -mindepth 1 2>/dev/null | head -n 1)" ] && break
		sleep 0.01
	done
	worst=$(probe_ms)
	if [ "$worst" -lt 300 ] && ! kill -0 "$writer" 2>/dev/null; then
		echo "skip - no-stall check inconclusive: the copy-up ended before the probes did (slowest probe ${worst} ms)"
	else
		check "stat and cat of another file answer within 300 ms during a big copy-up (slowest: ${worst} ms)" \
			test "$worst" -lt 300
	fi
	timeout 60 sh -c "while kill -0 $writer 2>/dev/null; do sleep 0.1; done"
	check_eq "and the copy-up completes" "new" "$(big_state)"
	T umount "$BM"
	wait "$BIG_PID" 2>/dev/null
else
	fail "mount for the no-stall check"
fi
rm -rf "$BL" "$BU"

# Deleting lower files copies none of them up, and a sync after it succeeds
# (the kernel's writeback cache flushes the deleted inodes' times: that once
# copied each file up and made syncfs fail with EEXIST).
DL=$T_TMP/del-lower DU=$T_TMP/del-upper DW=$T_TMP/del-work DM=$T_TMP/del-mnt
mkdir -p "$DL/sub/d" "$DU" "$DW" "$DM"
for i in $(seq 1 32); do head -c 4096 /dev/urandom >"$DL/sub/d/f$i"; done
if check_fn "mount for the delete test" mount_unionfs "$DM" -o "lowerdir=$DL,upperdir=$DU,workdir=$DW"; then
	check "rm -rf of a lower dir" rm -rf "$DM/sub/d"
	check "sync -f after deleting lower files" sync -f "$DM"
	check_eq "deleting copied no file up" "0" "$(find "$DU" -type f | wc -l)"
	check_eq "the deleted dir is a whiteout" "c" "$(stat -c %F "$DU/sub/d" 2>/dev/null | cut -c1)"
	T umount "$DM"
fi

# Files of the writable branch past -o file_fds (by default half the daemon's fd
# limit) are kept by file handle instead of an fd each. A walk over more such
# files than the fd limit then works (it failed with EMFILE), and every
# operation on a file kept by handle works as on one that keeps its fd.
FH=$T_TMP/fh
mkdir -p "$FH/l" "$FH/u" "$FH/w"
python3 - "$FH/u" <<'EOF'
import os, sys
for d in range(40):
    os.mkdir(f"{sys.argv[1]}/d{d}")
    for i in range(100):
        with open(f"{sys.argv[1]}/d{d}/f{i}", "w") as f:
            f.write(f"{d}/{i}\n")
EOF
echo lower >"$FH/l/lf"
# fds the daemon holds; a huge number when there is no such daemon.
fh_fds() { { [ -n "$1" ] && ls "/proc/$1/fd" 2>/dev/null; } | wc -l | sed 's/^0$/999999/'; }
fh_pid() { daemons_of "$FH" | awk -v m="$FH/$1" '$NF == m {print $1; exit}'; }
mkdir -p "$FH/m1"
t_track_mount "$FH/m1"
if check "mount with the daemon's fd limit at 512" \
	prlimit --nofile=512:512 -- timeout -k 5 30 "$UNIONFS" -o "lowerdir=$FH/l,upperdir=$FH/u,workdir=$FH/w" "$FH/m1"; then
	wait_mounted "$FH/m1" 50
	pid=$(fh_pid m1)
	limit=$(awk '/Max open files/ {print $4}' "/proc/${pid:-none}/limits" 2>/dev/null)
	if [ "${limit:-0}" -le 512 ]; then
		check_eq "find -ls over 4000 upper files with 512 fds: no error" "" \
			"$(find "$FH/m1" -ls 2>&1 >/dev/null | head -n 3)"
		check_eq "and it saw every file" "4001" "$(find "$FH/m1" -type f | wc -l)"
		check "the daemon stays under its fd limit ($(fh_fds "$pid") fds open)" test "$(fh_fds "$pid")" -lt 512
	else
		echo "skip - fd limit walk: the daemon raised its fd limit to $limit (CAP_SYS_RESOURCE)"
	fi
	T umount "$FH/m1"
fi
if check_fn "mount with -o file_fds=0" mount_unionfs "$FH/m" -o "lowerdir=$FH/l,upperdir=$FH/u,workdir=$FH/w,file_fds=0"; then
	pid=$(fh_pid m)
	ino=$(stat -c %i "$FH/m/d1/f1")
	check_eq "a file kept by handle reads" "1/1" "$(cat "$FH/m/d1/f1")"
	check "chmod, chown, truncate, touch -d on it" sh -c "chmod 640 '$FH/m/d1/f1' && chown 7:8 '$FH/m/d1/f1' && truncate -s 2 '$FH/m/d1/f1' && touch -d @1000000000 '$FH/m/d1/f1'"
	check_eq "its attributes through the mount" "640 7 8 2 1000000000" "$(stat -c '%a %u %g %s %Y' "$FH/m/d1/f1")"
	check_eq "and in the upper dir" "640 7 8 2 1000000000" "$(stat -c '%a %u %g %s %Y' "$FH/u/d1/f1")"
	check "setfattr on it" setfattr -n user.k -v v "$FH/m/d1/f1"
	check_eq "getfattr reads it back" "v" "$(getfattr --only-values -n user.k "$FH/m/d1/f1" 2>/dev/null)"
	check "a hard link to it" ln "$FH/m/d1/f1" "$FH/m/d2/hl"
	check_eq "both names: one inode, two links" "$ino 2 $ino 2" "$(stat -c '%i %h' "$FH/m/d1/f1" "$FH/m/d2/hl" | tr '\n' ' ' | sed 's/ $//')"
	check "rename it across dirs" mv "$FH/m/d1/f1" "$FH/m/d3/moved"
	check_eq "it keeps its inode after the rename" "$ino" "$(stat -c %i "$FH/m/d3/moved")"
	check "append to it after the rename" sh -c "echo more >>'$FH/m/d3/moved'"
	check_eq "the other name sees the write" "1/more" "$(cat "$FH/m/d2/hl" | tr '\n' ' ' | sed 's/ $//')"
	check "a lower file copied up on write" sh -c "echo x >>'$FH/m/lf'"
	check_eq "and kept by handle, it reads the copy" "lower x" "$(tr '\n' ' ' <"$FH/m/lf" | sed 's/ $//')"
	check_eq "an open file unlinked still answers fstat, write and fchmod" "0 4 0o100600" \
		"$(cd "$FH/m/d4" && python3 -c '
import os
fd = os.open("f9", os.O_RDWR | os.O_TRUNC); os.unlink("f9")
os.write(fd, b"abcd"); os.fchmod(fd, 0o600); st = os.fstat(fd)
print(st.st_nlink, st.st_size, oct(st.st_mode))')"
	check "find -ls over all of them" sh -c "find '$FH/m' -ls >/dev/null"
	check "the daemon kept few fds for 4000 files ($(fh_fds "$pid") open)" test "$(fh_fds "$pid")" -lt 200
	T umount "$FH/m"
	if check_fn "remount" mount_unionfs "$FH/m" -o "lowerdir=$FH/l,upperdir=$FH/u,workdir=$FH/w,file_fds=0"; then
		check_eq "the file keeps its inode across the remount" "$ino" "$(stat -c %i "$FH/m/d3/moved")"
		T umount "$FH/m"
	fi
fi
# A file system mounted inside the upper dir: its files keep their fds, since
# its handles mean nothing to the branch's file system.
mkdir -p "$FH/u/tm"
t_track_mount "$FH/u/tm"
if check "a tmpfs mounted inside the upper dir" mount -t tmpfs -o size=1m tmpfs "$FH/u/tm"; then
	echo t >"$FH/u/tm/f"
	if check_fn "mount with -o file_fds=0 over it" mount_unionfs "$FH/m" -o "lowerdir=$FH/l,upperdir=$FH/u,workdir=$FH/w,file_fds=0"; then
		check_eq "a file on the tmpfs reads" "t" "$(cat "$FH/m/tm/f")"
		check "and takes a chmod" chmod 600 "$FH/m/tm/f"
		check_eq "which shows in the tmpfs" "600" "$(stat -c %a "$FH/u/tm/f")"
		T umount "$FH/m"
	fi
	T umount "$FH/u/tm"
fi
rm -rf "$FH"
# Absent xattrs are remembered per node (ls -l asks every file for three names
# the kernel never caches), and a change through the mount shows at once.
XA=$T_TMP/xa
mkdir -p "$XA/l" "$XA/u/dacl" "$XA/w"
echo a >"$XA/l/f"
echo b >"$XA/l/g"
echo c >"$XA/l/h"
setfattr -n user.k -v v "$XA/l/g"
setfattr -n user.k -v w "$XA/l/h"
if check_fn "mount for the xattr cache" mount_unionfs "$XA/m" -o "lowerdir=$XA/l,upperdir=$XA/u,workdir=$XA/w"; then
	check_fails "a lower file without xattrs: getfattr user.a fails" getfattr -n user.a "$XA/m/f"
	check_fails "and fails again" getfattr -n user.a "$XA/m/f"
	check "setfattr user.a on it" setfattr -n user.a -v 1 "$XA/m/f"
	check_eq "getfattr then reads it" "1" "$(getfattr --only-values -n user.a "$XA/m/f" 2>/dev/null)"
	check "removexattr user.a" setfattr -x user.a "$XA/m/f"
	check_fails "getfattr then fails" getfattr -n user.a "$XA/m/f"
	check_fails "a lower file with user.k: user.z fails" getfattr -n user.z "$XA/m/g"
	check_eq "and user.k reads" "v" "$(getfattr --only-values -n user.k "$XA/m/g" 2>/dev/null)"
	check_fails "user.z of another lower file fails" getfattr -n user.z "$XA/m/h"
	check "chmod copies it up" chmod 600 "$XA/m/h"
	check_eq "the copy shows user.k" "w" "$(getfattr --only-values -n user.k "$XA/m/h" 2>/dev/null)"
	if setfacl -d -m u:65534:rwx "$XA/u/dacl" 2>/dev/null; then
		check "a file made in a dir with a default ACL" sh -c "echo n >'$XA/m/dacl/new'"
		check_fails "its security.selinux is absent" getfattr -n security.selinux "$XA/m/dacl/new"
		check_eq "its inherited ACL shows" "user:65534:rwx" \
			"$(getfacl -n --omit-header "$XA/m/dacl/new" 2>/dev/null | grep -o '^user:65534:rwx')"
	else
		echo "skip - default ACL: setfacl refused on the upper file system"
	fi
	T umount "$XA/m"
fi
rm -rf "$XA"
t_summary
