#!/bin/bash
# unionfs options: the three syntaxes (aufs br=, unionfs-fuse DIR=RW:DIR=RO,
# overlayfs lowerdir=/upperdir=/workdir=) give the same merged view as the
# kernel's overlayfs; mount(8)/mount.fuse3/fstab; dev,suid by default as root;
# nodev, nosuid, ro; read-only without an rw branch; the FUSE options; the
# daemon is in the background only once the mount is live; SIGTERM/SIGINT
# unmount; --help and --version.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
t_begin
chmod 755 "$T_TMP"
cd "$T_TMP" || exit 1
PROBE=(python3 "$here/helpers/ufs_probe.py")
STEP_TIMEOUT=${STEP_TIMEOUT:-60}

T() { timeout -k 5 "$STEP_TIMEOUT" "$@"; }
# view DIR: the merged view, one line per entry, with a digest of each file.
view() {
	T find "$1" -printf '%P\t%y\t%m\t%U\t%G\t%l\t' -exec sh -c \
		'[ -f "$1" ] && [ ! -L "$1" ] && sha256sum <"$1" | cut -c1-16 || echo -' _ {} \; | sort
}
mount_opts() { awk -v m="$1" '$2 == m { print $4 }' /proc/mounts | tail -n 1; }
mount_source() { awk -v m="$1" '$2 == m { print $1 }' /proc/mounts | tail -n 1; }
has_opt() { [[ ",$(mount_opts "$1")," == *",$2,"* ]]; }
errno_of() { # errno_of ROOT OP ARGS...: OK or the errno name
	echo "${*:2}" | T "${PROBE[@]}" ops "$1" 2>&1 | sed 's/.* => //; s/^OK.*/OK/'
}
unmounted() { ! is_mounted "$1"; }
umount_check() { # DESC MNT
	t_umount "$2"
	check_fn "$1: unmounted" unmounted "$2"
}

# --- the stack: U (the rw branch), A, B --------------------------------------
U=$T_TMP/U A=$T_TMP/A B=$T_TMP/B W=$T_TMP/W M=$T_TMP/m
build() {
	mkdir -p "$U/d" "$A/d" "$B/d" "$A/opq" "$B/opq" "$W" "$M" || return 1
	echo u >"$U/top"; echo "A over B" >"$A/common"; echo B >"$B/common"
	echo a >"$A/d/a"; echo b >"$B/d/b"; echo u >"$U/d/u"; echo bb >"$B/onlyB"
	echo hidden >"$B/opq/hidden"; echo a >"$A/opq/a"
	setfattr -n trusted.overlay.opaque -v y "$A/opq"
	mknod "$A/gone" c 0 0; echo gone >"$B/gone"
	ln -s d/a "$A/link"
	mknod "$A/null" c 1 3
	cp /usr/bin/id "$A/suid_id" && chmod 4755 "$A/suid_id"
}
check_fn "build a stack (U, A, B)" build
if [ ! -x "$UNIONFS" ]; then fail "$UNIONFS exists (not built)"; fi

# The reference view, taken before any unionfs mount can touch U.
check_fn "kernel overlayfs mounts U:A:B" mount_overlay "$M" "lowerdir=$U:$A:$B"
view "$M" >ref.view
ref_null=$(errno_of "$M" read null)
ref_suid=$(T setpriv --reuid=65534 --regid=65534 --clear-groups -- "$M/suid_id" -u 2>&1)
t_umount "$M"
check_eq "kernel overlayfs: a device node can be opened (dev)" "OK" "$ref_null"
check_eq "kernel overlayfs: a setuid binary runs as its owner (suid)" "0" "$ref_suid"

# try_mount DESC RW|RO ARGS...: mounts unionfs at $M with ARGS, compares the
# view with the reference, checks read-only or not, unmounts.
try_mount() {
	local desc=$1 mode=$2; shift 2
	rm -rf "$W"/* 2>/dev/null
	if ! mount_unionfs "$M" "$@"; then
		fail "$desc: mounts (unionfs $*)"
		t_umount "$M"
		return
	fi
	pass "$desc: mounts"
	view "$M" >got.view
	compare "$desc: merged view as the kernel's" ref.view got.view
	if [ "$mode" = RO ]; then
		check_eq "$desc: create gives EROFS" EROFS "$(errno_of "$M" create newfile)"
		check_eq "$desc: mkdir gives EROFS" EROFS "$(errno_of "$M" mkdir newdir)"
		check_eq "$desc: unlink gives EROFS" EROFS "$(errno_of "$M" unlink common)"
		check_eq "$desc: open for writing gives EROFS" EROFS "$(errno_of "$M" open_w top)"
		check_fn "$desc: /proc/mounts says ro" has_opt "$M" ro
	else
		check_fn "$desc: /proc/mounts says rw" has_opt "$M" rw
		check_eq "$desc: access(W_OK) on the top file is allowed" OK "$(errno_of "$M" access_w top)"
	fi
	umount_check "$desc" "$M"
}

try_mount "aufs br=U=rw:A=ro:B=ro" RW -o "br=$U=rw:$A=ro:$B=ro"
try_mount "aufs br=U:A:B (first rw)" RW -o "br=$U:$A:$B"
try_mount "aufs br=U=ro:A=ro:B=ro" RO -o "br=$U=ro:$A=ro:$B=ro"
try_mount "aufs br= with workdir=" RW -o "br=$U=rw:$A=ro:$B=ro,workdir=$W"
try_mount "unionfs-fuse U=RW:A=RO:B=RO" RW "$U=RW:$A=RO:$B=RO"
try_mount "unionfs-fuse U:A:B (no mode is RO)" RO "$U:$A:$B"
try_mount "unionfs-fuse with cow,hide_meta_files,max_files,statfs_omit_ro" RW \
	-o cow,hide_meta_files,max_files=32768,statfs_omit_ro "$U=RW:$A=RO:$B=RO"
try_mount "overlayfs lowerdir=A:B,upperdir=U,workdir=W" RW -o "lowerdir=$A:$B,upperdir=$U,workdir=$W"
try_mount "overlayfs lowerdir=U:A:B (read-only)" RO -o "lowerdir=$U:$A:$B"
try_mount "overlayfs with redirect_dir,index,xino,metacopy,volatile" RW \
	-o "lowerdir=$A:$B,upperdir=$U,workdir=$W,redirect_dir=on,index=off,xino=off,metacopy=off,volatile"
try_mount "-o ro with an rw branch" RO -o "ro,lowerdir=$A:$B,upperdir=$U,workdir=$W"
try_mount "-s (single thread)" RW -s -o "br=$U=rw:$A=ro:$B=ro"
try_mount "allow_other,default_permissions" RW -o "allow_other,default_permissions,br=$U=rw:$A=ro:$B=ro"
try_mount "udba=reval" RW -o "udba=reval,br=$U=rw:$A=ro:$B=ro"
try_mount "whiteout=aufs" RW -o "whiteout=aufs,br=$U=rw:$A=ro:$B=ro"
try_mount "options as separate -o" RO -o "lowerdir=$U:$A:$B" -o nodev -o nosuid
check_eq "no .wh. name ever shows" "" "$(grep -F '.wh.' got.view)"

# --- dev, suid ------------------------------------------------------------------
if mount_unionfs "$M" -o "allow_other,br=$U=rw:$A=ro:$B=ro"; then
	check_fn "default as root: not nodev" eval '! has_opt "$M" nodev'
	check_fn "default as root: not nosuid" eval '! has_opt "$M" nosuid'
	check_eq "default as root: a device node can be opened" OK "$(errno_of "$M" read null)"
	check_eq "default as root: a setuid binary runs as its owner" 0 \
		"$(T setpriv --reuid=65534 --regid=65534 --clear-groups -- "$M/suid_id" -u 2>&1)"
else
	fail "mount with allow_other"
fi
umount_check "dev,suid" "$M"
if mount_unionfs "$M" -o "allow_other,nodev,nosuid,br=$U=rw:$A=ro:$B=ro"; then
	check_fn "-o nodev: /proc/mounts says nodev" has_opt "$M" nodev
	check_fn "-o nosuid: /proc/mounts says nosuid" has_opt "$M" nosuid
	check_eq "-o nodev: opening a device node gives EACCES" EACCES "$(errno_of "$M" read null)"
	check_eq "-o nosuid: a setuid binary runs as the caller" 65534 \
		"$(T setpriv --reuid=65534 --regid=65534 --clear-groups -- "$M/suid_id" -u 2>&1)"
else
	fail "mount with nodev,nosuid"
fi
umount_check "nodev,nosuid" "$M"

# --- udba=reval: changes made in a branch under the mount show up -------------
reval_sees_changes() {
	local R=$T_TMP/reval i
	mkdir -p "$R/A/d" "$R/B/d" && echo a >"$R/A/d/a" && echo old >"$R/B/old" || return 1
	mount_unionfs "$M" -o "udba=reval,lowerdir=$R/A:$R/B" || { echo "mount failed"; return 1; }
	T ls -A "$M" "$M/d" >/dev/null && T cat "$M/old" >/dev/null # fill the caches
	echo new >"$R/B/new"; echo n >"$R/B/d/n"; rm "$R/B/old"; echo changed-size >"$R/A/d/a"
	for ((i = 0; i < 50; i++)); do
		[ "$(T ls -A "$M" | tr '\n' ' ')" = "d new " ] &&
			[ "$(T ls -A "$M/d" | tr '\n' ' ')" = "a n " ] &&
			[ "$(T cat "$M/new" 2>/dev/null)" = new ] &&
			[ "$(T cat "$M/d/a" 2>/dev/null)" = changed-size ] && return 0
		sleep 0.2
	done
	echo "    after 10 s: / = $(ls -A "$M" | tr '\n' ' '), d = $(ls -A "$M/d" | tr '\n' ' '), d/a = $(cat "$M/d/a" 2>&1)"
	return 1
}
check_fn "udba=reval: files added, removed and rewritten in a branch show within 10 s" reval_sees_changes
umount_check "udba=reval" "$M"

# --- the daemon is in the background only once the mount is live --------------
live_at_return() {
	local i
	for i in 1 2 3; do
		timeout -k 5 30 "$UNIONFS" -o "lowerdir=$U:$A:$B" "$M" || return 1
		t_track_mount "$M"
		is_mounted "$M" || { echo "not mounted right after exit 0 (try $i)"; return 1; }
		[ -n "$(ls "$M")" ] || { echo "empty listing right after exit 0"; return 1; }
		t_umount "$M"
	done
}
check_fn "the mount is live when the command returns 0 (3 times)" live_at_return
t_umount "$M"

# --- signals ----------------------------------------------------------------------
# signal_unmounts SIG: runs unionfs -f in the background (its own pid, with
# SIG's default disposition restored), sends SIG, expects a clean exit and
# no mount left.
signal_unmounts() {
	local sig=$1 pid i rc
	env --default-signal="$sig" "$UNIONFS" -f -o "lowerdir=$U:$A:$B" "$M" 2>"$T_TMP/fg.err" &
	pid=$!
	t_track_pid "$pid"
	t_track_mount "$M"
	wait_mounted "$M" 100 || { echo "-f: not mounted after 10 s"; return 1; }
	ls "$M" >/dev/null
	kill -s "$sig" "$pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "daemon still running 10 s after SIG$sig"
		return 1
	fi
	wait "$pid"
	rc=$?
	if is_mounted "$M"; then
		echo "still mounted after SIG$sig"
		return 1
	fi
	grep -q "$M" /proc/mounts && { echo "a mount under $M is left"; return 1; }
	[ "$rc" -eq 0 ] || { echo "daemon exit status $rc after SIG$sig"; return 1; }
}
check_fn "SIGTERM to the daemon (-f) unmounts cleanly, exit 0" signal_unmounts TERM
t_umount "$M"
check_fn "SIGINT to the daemon (-f) unmounts cleanly, exit 0" signal_unmounts INT
t_umount "$M"
debug_runs() {
	local pid
	"$UNIONFS" -d -o "lowerdir=$U:$A:$B" "$M" 2>"$T_TMP/debug.err" &
	pid=$!
	t_track_pid "$pid"
	t_track_mount "$M"
	wait_mounted "$M" 100 || return 1
	T ls "$M" >/dev/null
	kill -TERM "$pid"
	T tail --pid="$pid" -f /dev/null
	[ -s "$T_TMP/debug.err" ] || { echo "-d printed nothing"; return 1; }
}
check_fn "-d: foreground with debug output, SIGTERM ends it" debug_runs
t_umount "$M"

# --- mount(8): mount.fuse3, fstab ----------------------------------------------
mount_fuse_legacy() {
	t_track_mount "$M"
	T mount -t fuse "$UNIONFS#myunion" "$M" -o "lowerdir=$U:$A:$B"
}
if check_fn "mount -t fuse 'build/unionfs#myunion' MNT -o lowerdir=..." mount_fuse_legacy; then
	view "$M" >got.view
	compare "mount -t fuse: merged view" ref.view got.view
	check_eq "mount -t fuse: the source is the fsname" myunion "$(mount_source "$M")"
	check_fn "mount -t fuse: dev (mount.fuse3 passes dev,suid)" eval '! has_opt "$M" nodev'
	check_fn "mount -t fuse: suid" eval '! has_opt "$M" nosuid'
	check_fn "mount -t fuse: read-only (no rw branch)" has_opt "$M" ro
fi
umount_check "mount -t fuse" "$M"
printf '%s %s fuse lowerdir=%s,nodev 0 0\n' "$UNIONFS#fstabunion" "$M" "$U:$A:$B" >"$T_TMP/fstab"
mount_fstab() {
	t_track_mount "$M"
	T mount -T "$T_TMP/fstab" "$M"
}
if check_fn "fstab line (mount -T FSTAB MNT)" mount_fstab; then
	view "$M" >got.view
	compare "fstab: merged view" ref.view got.view
	check_fn "fstab: nodev from the fstab options" has_opt "$M" nodev
fi
umount_check "fstab" "$M"
# mount(8) runs mount.fuse3 with a fixed PATH, where /usr/local/bin comes
# first: without an installed unionfs there, this build is put there for the
# test and removed afterwards.
if [ ! -e /usr/local/bin/unionfs ] && install -m 755 "$UNIONFS" /usr/local/bin/unionfs; then
	t_track_file /usr/local/bin/unionfs
fi
if [ -x /usr/local/bin/unionfs ] &&
	/usr/local/bin/unionfs --version 2>/dev/null | grep -q 'unionfs (union-tools)'; then
	mount_fuse_unionfs() {
		t_track_mount "$M"
		T mount -t fuse.unionfs myunion2 "$M" -o "lowerdir=$U:$A:$B"
	}
	if check_fn "mount -t fuse.unionfs (installed binary)" mount_fuse_unionfs; then
		view "$M" >got.view
		compare "mount -t fuse.unionfs: merged view" ref.view got.view
		check_fn "mount -t fuse.unionfs: not nodev" eval '! has_opt "$M" nodev'
	fi
	umount_check "mount -t fuse.unionfs" "$M"
else
	echo "skip - mount -t fuse.unionfs: /usr/local/bin/unionfs is not ours (make install PREFIX=/usr/local)"
fi
check_fn "fusermount3 -u unmounts" bash -c '
	timeout -k 5 30 "$1" -o "lowerdir=$2" "$3" && timeout 20 fusermount3 -u "$3" && ! mountpoint -q "$3"' \
	_ "$UNIONFS" "$U:$A:$B" "$M"
t_track_mount "$M"; t_umount "$M"

# --- --help, --version --------------------------------------------------------
for opt in --help -h; do
	out=$(T "$UNIONFS" "$opt" 2>&1)
	check_eq "$opt exits 0" 0 "$?"
	check_fn "$opt prints a usage" eval '[[ "$out" == *[Uu]sage* ]]'
done
for opt in --version -V; do
	out=$(T "$UNIONFS" "$opt" 2>&1)
	check_eq "$opt exits 0" 0 "$?"
	check_fn "$opt names the program: 'unionfs (union-tools)'" eval '[[ "$out" == *"unionfs (union-tools)"* ]]'
done
check_eq "nothing of ours is left mounted" "" "$(grep -F " $T_TMP" /proc/mounts)"
no_daemon_left() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -z "$(daemons_of "$T_TMP")" ] && return 0
		sleep 0.1
	done
	daemons_of "$T_TMP" | sed 's/^/    left: /'
	return 1
}
check_fn "every daemon exited after its unmount" no_daemon_left

cd / || exit 1
t_summary
