#!/bin/bash
# loopimg on bad input: each case exits non-zero with one line naming the path
# and the cause, and a failed or killed pack never leaves a file at IMG.
. "$(dirname "$0")/lib.sh"
t_begin
export STEP_TIMEOUT=60

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: loopimg bad-input tests need root (tmpfs, loop devices)"
	t_summary
	exit
fi

SRC=$T_TMP/src
mkdir -p "$SRC/d"
echo data >"$SRC/d/file"
head -c 2000000 /dev/urandom >"$SRC/big"

# expect_error DESC PATTERN CMD...: non-zero exit, and one stderr line matching PATTERN.
expect_error() {
	local desc=$1 pattern=$2 err rc
	shift 2
	err=$(timeout -k 5 60 "$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -ge 124 ]; then
		fail "$desc (exit $rc)"
	elif [ "$(printf '%s\n' "$err" | grep -c .)" -gt 2 ] || ! grep -q -- "$pattern" <<<"$err"; then
		fail "$desc (stderr: $err)"
	else
		pass "$desc"
	fi
}

# No file at IMG, and no temp file left beside it.
no_image() {
	[ ! -e "$1" ] && [ -z "$(find "$(dirname "$1")" -maxdepth 1 -name ".$(basename "$1").*")" ]
}

expect_error "missing SRC" "/nonexistent/src: No such file" "$LOOPIMG" pack /nonexistent/src "$T_TMP/a.img"
if no_image "$T_TMP/a.img"; then pass "no image after a missing SRC"; else fail "no image after a missing SRC"; fi
expect_error "SRC is a file" "Not a directory" "$LOOPIMG" pack "$SRC/big" "$T_TMP/a.img"

# An entry the packer cannot read (as an unprivileged user).
chmod 755 "$T_TMP"
mkdir -p "$T_TMP/out" && chmod 777 "$T_TMP/out"
cp -a "$SRC" "$T_TMP/src-nobody"
echo secret >"$T_TMP/src-nobody/d/shadow"
chmod 600 "$T_TMP/src-nobody/d/shadow"
expect_error "unreadable entry names the path" "src-nobody/d/shadow: Permission denied" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$LOOPIMG" pack "$T_TMP/src-nobody" "$T_TMP/out/n.img"
if no_image "$T_TMP/out/n.img"; then pass "no image after an unreadable entry"; else fail "no image after an unreadable entry"; fi

check "pack once" "$LOOPIMG" pack "$SRC" "$T_TMP/exists.img"
expect_error "existing IMG without --force" "exists (use --force" "$LOOPIMG" pack "$SRC" "$T_TMP/exists.img"
check "--force replaces it" "$LOOPIMG" pack --force "$SRC" "$T_TMP/exists.img"
expect_error "size too small" "too small" "$LOOPIMG" pack -s 64K "$SRC" "$T_TMP/small.img"
if no_image "$T_TMP/small.img"; then pass "no image after size too small"; else fail "no image after size too small"; fi
expect_error "bad size" "invalid argument" "$LOOPIMG" pack -s 12Q "$SRC" "$T_TMP/x.img"
expect_error "bad block size" "block size" "$LOOPIMG" pack -b 3000 "$SRC" "$T_TMP/x.img"
expect_error "label too long" "longer than" "$LOOPIMG" pack -L 12345678901234567 "$SRC" "$T_TMP/x.img"
expect_error "unknown option" "Try 'loopimg pack --help'" "$LOOPIMG" pack --bogus "$SRC" "$T_TMP/x.img"
expect_error "unknown command" "unknown command" "$LOOPIMG" frobnicate

# A full disk: a 1 MiB tmpfs cannot hold the 2 MB file.
FULL=$T_TMP/full
mkdir -p "$FULL"
t_track_mount "$FULL"
mount -t tmpfs -o size=1m tmpfs "$FULL"
expect_error "IMG on a full disk" "No space left" "$LOOPIMG" pack "$SRC" "$FULL/f.img"
if no_image "$FULL/f.img"; then pass "no image after a full disk"; else fail "no image after a full disk"; fi
t_umount "$FULL"

# A killed pack: SIGTERM removes the temp file; nothing is ever at IMG.
mkdir -p "$T_TMP/many"
for i in $(seq 1 40); do head -c 5000000 /dev/urandom >"$T_TMP/many/f$i"; done
"$LOOPIMG" pack "$T_TMP/many" "$T_TMP/killed.img" &
pid=$!
for i in $(seq 1 500); do
	[ -n "$(find "$T_TMP" -maxdepth 1 -name '.killed.img.*')" ] && break
	sleep 0.01
done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
# Killed mid-way: nothing at IMG. Finished first: a complete, clean image. Never a temp file.
if [ "$rc" -ne 0 ] && no_image "$T_TMP/killed.img"; then
	pass "SIGTERM during pack leaves no image and no temp file"
elif [ "$rc" -eq 0 ] && no_image "$T_TMP/none" && e2fsck -fn "$T_TMP/killed.img" >/dev/null 2>&1 &&
	[ -z "$(find "$T_TMP" -maxdepth 1 -name '.killed.img.*')" ]; then
	pass "pack finished before SIGTERM: image complete and clean"
else
	fail "SIGTERM during pack (exit $rc): $(ls -a "$T_TMP" | grep killed)"
fi

# Images that are not what they claim.
head -c 100000 "$T_TMP/exists.img" >"$T_TMP/trunc.img"
expect_error "info on a truncated image" "truncated" "$LOOPIMG" info "$T_TMP/trunc.img"
mkdir -p "$T_TMP/mnt"
t_track_mount "$T_TMP/mnt"
expect_error "mount of a truncated image" "truncated" "$LOOPIMG" mount -r "$T_TMP/trunc.img" "$T_TMP/mnt"
head -c 4000000 /dev/urandom >"$T_TMP/random.img"
expect_error "mount of random bytes" "no file system" "$LOOPIMG" mount -r "$T_TMP/random.img" "$T_TMP/mnt"
cp "$T_TMP/exists.img" "$T_TMP/corrupt.img"
printf '\xff\xff\xff\xff' | dd of="$T_TMP/corrupt.img" bs=1 seek=1028 conv=notrunc status=none
expect_error "info on a corrupt superblock" "corrupt.img" "$LOOPIMG" info "$T_TMP/corrupt.img"
expect_error "verify with a bad digest" "not an xxh3-128 digest" "$LOOPIMG" verify "$T_TMP/exists.img" nothex
expect_error "digest of a missing file" "/nonexistent.img: No such file" "$LOOPIMG" digest /nonexistent.img
expect_error "detach a non-loop device" "/dev/null: not a loop device" "$LOOPIMG" detach /dev/null
expect_error "detach an image nobody attached" "not attached" "$LOOPIMG" detach "$T_TMP/exists.img"
expect_error "attach a missing image" "/nonexistent.img: No such file" "$LOOPIMG" attach /nonexistent.img
expect_error "umount of a non-mount" "not a mount point" "$LOOPIMG" umount "$T_TMP"
check_eq "nothing left attached to our images" "" "$("$LOOPIMG" list | grep "$T_TMP")"

t_summary
