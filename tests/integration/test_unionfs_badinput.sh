#!/bin/bash
# unionfs bad input: each case must print one line "unionfs: ..." naming the
# problem, then "Try 'unionfs --help' for more information.", exit 1 and
# leave nothing mounted. Then: symlinks inside branches never lead the daemon
# out of its branches (checked against a listing by hand and the kernel's).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
t_begin
cd "$T_TMP" || exit 1
STEP_TIMEOUT=${STEP_TIMEOUT:-60}
HINT="Try 'unionfs --help' for more information."

T() { timeout -k 5 "$STEP_TIMEOUT" "$@"; }

A=$T_TMP/A B=$T_TMP/B U=$T_TMP/U W=$T_TMP/W F=$T_TMP/file L=$T_TMP/linkA
mkdir -p "$A/sub" "$B/sub" "$U/sub" "$W" && echo a >"$A/a" && echo f >"$F" && ln -s A "$L"
if [ ! -x "$UNIONFS" ]; then fail "$UNIONFS exists (not built)"; fi

# bad DESC NAMES MNT ARGS...: runs unionfs ARGS... MNT; NAMES is a |-separated
# list of strings one of which the error line must contain (case-insensitive).
n=0
bad() {
	local desc=$1 names=$2 mnt=$3 rc first second lines alt ok=
	shift 3
	n=$((n + 1))
	[ -n "$mnt" ] && mkdir -p "$mnt" 2>/dev/null && t_track_mount "$mnt"
	timeout -k 5 30 "$UNIONFS" "$@" ${mnt:+"$mnt"} >"out.$n" 2>"err.$n"
	rc=$?
	first=$(sed -n 1p "err.$n") second=$(sed -n 2p "err.$n") lines=$(wc -l <"err.$n")
	check_eq "$desc: exit status 1" 1 "$rc"
	check_fn "$desc: error line starts with 'unionfs: ' (got '$first')" eval '[[ "$first" == "unionfs: "* ]]'
	IFS='|' read -ra alt <<<"$names"
	for name in "${alt[@]}"; do
		[[ "${first,,}" == *"${name,,}"* ]] && ok=1
	done
	check_fn "$desc: the error names the problem ('$names')" test -n "$ok"
	check_eq "$desc: usage hint on the second line" "$HINT" "$second"
	check_eq "$desc: two lines on stderr" 2 "$lines"
	check_eq "$desc: nothing on stdout" "" "$(cat "out.$n")"
	if [ -n "$mnt" ]; then
		check_fn "$desc: nothing mounted" eval '! is_mounted "$mnt"'
	fi
	check_eq "$desc: no daemon left" "" "$(daemons_of "$T_TMP")"
	[ "$lines" -le 2 ] || sed 's/^/    stderr: /' "err.$n" | head -n 5
	t_umount "$mnt" 2>/dev/null
}
M=$T_TMP/m

# a missing branch
bad "missing branch (aufs)" "$T_TMP/nope" "$M" -o "br=$T_TMP/nope=ro:$A=ro"
bad "missing branch (unionfs-fuse)" "$T_TMP/nope" "$M" "$A=RW:$T_TMP/nope=RO"
bad "missing branch (lowerdir)" "$T_TMP/nope" "$M" -o "lowerdir=$A:$T_TMP/nope"
bad "missing upperdir" "$T_TMP/nope" "$M" -o "lowerdir=$A,upperdir=$T_TMP/nope,workdir=$W"
# a branch that is a file
bad "branch is a file (aufs)" "$F" "$M" -o "br=$A=ro:$F=ro"
bad "branch is a file (unionfs-fuse)" "$F" "$M" "$F=RW:$A=RO"
bad "branch is a file (lowerdir)" "$F" "$M" -o "lowerdir=$F:$A"
# the same dir twice
bad "same dir twice (aufs)" "$A" "$M" -o "br=$A=ro:$A=ro"
bad "same dir twice (unionfs-fuse)" "$A" "$M" "$A=RW:$B=RO:$A=RO"
bad "same dir twice (lowerdir)" "$A" "$M" -o "lowerdir=$A:$B:$A"
bad "same dir twice (upperdir is a lowerdir)" "$A" "$M" -o "lowerdir=$A:$B,upperdir=$A,workdir=$W"
bad "same dir twice, spelled A and A/" "$A" "$M" -o "br=$A=ro:$A/=ro"
bad "same dir twice, through a symlink" "$A|$L" "$M" -o "br=$A=ro:$L=ro"
# the mount point inside a branch
bad "mount point inside the top branch" "$A/sub" "$A/sub" -o "br=$A=ro:$B=ro"
bad "mount point inside a lower branch" "$B/sub" "$B/sub" -o "lowerdir=$A:$B"
bad "mount point inside the upper branch" "$U/sub" "$U/sub" -o "lowerdir=$A,upperdir=$U,workdir=$W"
bad "mount point inside a branch (unionfs-fuse)" "$B/sub" "$B/sub" "$A=RW:$B=RO"
# an empty branch list
bad "empty branch list (br=)" "branch|br" "$M" -o br=
bad "empty branch list (br=:)" "branch|br" "$M" -o br=:
bad "empty branch list (lowerdir=)" "branch|lowerdir" "$M" -o lowerdir=
bad "no branches at all" "branch|lowerdir|br" "$M"
# unknown or bad options
bad "unknown -o option" "frobnicate" "$M" -o frobnicate -o "br=$A=ro"
bad "unknown -o option with a value" "frobnicate" "$M" -o "br=$A=ro,frobnicate=1"
bad "unknown long option" "frobnicate" "$M" --frobnicate -o "br=$A=ro"
bad "unknown branch mode" "$A|xx" "$M" -o "br=$A=xx"
bad "bad option value (max_files=abc)" "max_files" "$M" -o "max_files=abc,lowerdir=$A:$B"
bad "bad option value (udba=bogus)" "udba" "$M" -o "udba=bogus,lowerdir=$A:$B"
bad "bad option value (whiteout=bogus)" "whiteout" "$M" -o "whiteout=bogus,lowerdir=$A:$B"
bad "bad option value (redirect_dir=bogus)" "redirect_dir" "$M" -o "redirect_dir=bogus,lowerdir=$A:$B"
bad "bad option value (uring=bogus)" "uring" "$M" -o "uring=bogus,lowerdir=$A:$B"
bad "mount point missing" "mount" "" -o "br=$A=ro:$B=ro"
bad "mount point does not exist" "$T_TMP/nomnt" "" -o "br=$A=ro" "$T_TMP/nomnt"
rmdir "$T_TMP/nomnt" 2>/dev/null
bad "mount point is a file" "$F" "" -o "br=$A=ro" "$F"
check_eq "nothing of ours is mounted" "" "$(grep -F " $T_TMP" /proc/mounts)"

# --- symlinks in branches never lead the daemon outside ----------------------
# OUT is outside every branch; lower branches hold symlinks to it under names
# that a higher branch has as a directory, so a daemon that opened "p/q" in a
# lower branch (instead of one component at a time, beneath the branch) would
# list OUT's secrets.
S=$T_TMP/s OUT=$T_TMP/outside
build_escape() {
	mkdir -p "$S/A/p/q" "$S/A/m" "$S/B/m" "$S/A/r/s" "$S/B/r" "$S/C" "$S/A/t" "$OUT/q" || return 1
	echo secret >"$OUT/secret"; echo secret >"$OUT/q/secret"
	echo a >"$S/A/p/q/a"; ln -s "$OUT" "$S/B/p"                # absolute, as an intermediate
	echo a >"$S/A/m/a"; echo b >"$S/B/m/b"; ln -s ../../../outside "$S/C/m" # relative, below a merged dir
	echo a >"$S/A/r/s/a"; ln -s ../../../../outside/q "$S/B/r/s"     # in a merged dir
	echo a >"$S/A/t/a"; ln -s / "$S/C/t"                               # to /
	ln -s ../outside "$S/C/up" # a plain link: the caller resolves it, from the mount
}
check_fn "build a stack with symlinks pointing outside" build_escape
check_fn "kernel overlayfs mounts it" mount_overlay "$T_TMP/ovl" "lowerdir=$S/A:$S/B:$S/C"
check_fn "unionfs mounts it" mount_unionfs "$T_TMP/ufs" -o "lowerdir=$S/A:$S/B:$S/C"
cat >exp.escape <<'EOF'
d 
d m
d p
d p/q
d r
d r/s
d t
f m/a
f m/b
f p/q/a
f r/s/a
f t/a
l up
EOF
T find "$T_TMP/ovl" -printf '%y %P\n' | sort >ovl.escape
T find "$T_TMP/ufs" -printf '%y %P\n' | sort >ufs.escape
check_fn "symlink escape: the listing by hand is the kernel's" diff -u exp.escape ovl.escape
if diff -u exp.escape ufs.escape >diff.escape; then
	pass "symlink escape: nothing from outside the branches is listed"
else
	fail "symlink escape: nothing from outside the branches is listed"
	sed 's/^/    /' diff.escape | head -n 30
fi
for p in p/secret p/q/secret m/secret r/s/secret t/etc; do
	check_fn "symlink escape: $p does not exist" eval '! T stat "$T_TMP/ufs/$p" >/dev/null 2>&1'
done
check_eq "symlink escape: readlink of a plain link is its text" "../outside" \
	"$(T readlink "$T_TMP/ufs/up")"
check_eq "symlink escape: a plain link resolves in the merged view as the kernel's" \
	"$(T ls "$T_TMP/ovl/up/")" "$(T ls "$T_TMP/ufs/up/")"
t_umount "$T_TMP/ufs"; t_umount "$T_TMP/ovl"

cd / || exit 1
t_summary
