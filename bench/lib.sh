# shellcheck shell=bash disable=SC2034  # globals are read by the sourcing scripts
# bench/lib.sh: shared by bench/run and the suite scripts (bench/unionfs_*.sh).
# Sourced, never run. Provides: settings, the cached data set, the benchtool
# helper, mounting and unmounting each union file system under test, timing
# under `timeout`, and recording samples for bench/run to tabulate.
#
# A suite script records rows and samples into $BENCH_OUT (TSV files):
#   rows.tsv     suite  id  label  unit(s|MB/s)  better(lower|higher)  target
#   samples.tsv  id  tool  rep  value(number|fail|timeout|n/a)
#   suites.tsv   suite  title
#   notes-SUITE.md  free text appended under that suite's table
# target is "le:X" (unionfs/overlay ratio at most X), "ge:X" (at least X), or "-".

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_SRC/.." && pwd)

BENCH_QUICK=${BENCH_QUICK:-0}
BENCH_DIR=${BENCH_DIR:-$BENCH_SRC/work}
BUILD=${BUILD:-$REPO/build}
if [ "$BENCH_QUICK" = 1 ]; then
	BENCH_FILES=${BENCH_FILES:-5000}
	BENCH_BIG_MB=${BENCH_BIG_MB:-128}
else
	BENCH_FILES=${BENCH_FILES:-50000}
	BENCH_BIG_MB=${BENCH_BIG_MB:-1024}
fi
BENCH_BIG_COUNT=${BENCH_BIG_COUNT:-2}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-300}        # seconds, one measured step
BENCH_MOUNT_TIMEOUT=${BENCH_MOUNT_TIMEOUT:-30}
# Column order of every table; the first is the baseline, the second the subject.
BENCH_TOOLS=${BENCH_TOOLS:-"overlay unionfs fuse-overlayfs unionfs-fuse"}
BENCH_DATA_VERSION=5                       # bump when benchtool gen changes

UNIONFS_FUSE_BIN=/usr/bin/unionfs          # Debian's unionfs-fuse; never via PATH
FUSE_OVERLAYFS_BIN=$(command -v fuse-overlayfs || echo /usr/bin/fuse-overlayfs)

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------- benchtool and the data set ----------

BENCHTOOL=$BENCH_DIR/bin/benchtool

bench_benchtool() {
	mkdir -p "$BENCH_DIR/bin"
	if [ ! -x "$BENCHTOOL" ] || [ "$BENCH_SRC/benchtool.c" -nt "$BENCHTOOL" ]; then
		${CC:-cc} -O2 -Wall -Wno-format-truncation -o "$BENCHTOOL.tmp" "$BENCH_SRC/benchtool.c" &&
			mv "$BENCHTOOL.tmp" "$BENCHTOOL" || die "cannot compile bench/benchtool.c"
	fi
}

# Sets DATA (three branches $DATA/b0 top .. $DATA/b2 lowest) and builds it once.
bench_data() {
	bench_benchtool
	DATA=$BENCH_DIR/data/v$BENCH_DATA_VERSION-n$BENCH_FILES-big${BENCH_BIG_COUNT}x${BENCH_BIG_MB}M
	if [ ! -f "$DATA/.complete" ]; then
		log "building data set $DATA ($BENCH_FILES small files, $BENCH_BIG_COUNT x $BENCH_BIG_MB MiB)"
		rm -rf "$DATA" "$DATA.tmp"
		mkdir -p "$DATA.tmp"
		local t0=$EPOCHREALTIME
		"$BENCHTOOL" gen "$DATA.tmp" "$BENCH_FILES" "$BENCH_BIG_MB" "$BENCH_BIG_COUNT" 1 \
			>"$DATA.tmp/.summary" || die "data set generation failed"
		mv "$DATA.tmp" "$DATA"
		touch "$DATA/.complete"
		log "data set built in $(fmt_secs "$(elapsed "$t0")") s: $(cat "$DATA/.summary")"
	fi
	LOWERDIRS=$DATA/b0:$DATA/b1:$DATA/b2
	BIGFILE=big/big0.bin                    # lives in the lowest branch
}

# ---------- time ----------

elapsed() { # START -> seconds since START (EPOCHREALTIME values)
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", b - a }'
}
fmt_secs() { awk -v s="$1" 'BEGIN { printf "%.2f", s }'; }

# timed SECONDS CMD... : runs CMD under timeout, output discarded.
# Sets T (elapsed seconds) and returns CMD's status (124/137 on timeout).
timed() {
	local lim=$1; shift
	local t0=$EPOCHREALTIME rc=0
	timeout --foreground -k 5 "$lim" "$@" >/dev/null 2>"$BENCH_OUT/last.err" || rc=$?
	T=$(elapsed "$t0")
	return $rc
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---------- mounts ----------
# Every mount point lives under MNT_ROOT, a fresh directory in /tmp (never in
# the repo, so a hung FUSE mount cannot hang git or find over the tree).

bench_init() {
	[ "$(id -u)" = 0 ] || die "the benchmarks mount file systems: run as root"
	: "${BENCH_OUT:?BENCH_OUT not set (run bench/run)}"
	mkdir -p "$BENCH_OUT"
	MNT_ROOT=$(mktemp -d /tmp/unionfs-bench.XXXXXX)
	trap bench_cleanup EXIT
	trap 'log interrupted; exit 130' INT
	trap 'log terminated; exit 143' TERM
}

mnt_of() { echo "$MNT_ROOT/$1"; }

# mountinfo field 5 is the mount point; never stat a possibly hung FUSE mount.
is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# Kill the FUSE daemon(s) we started for mount point $1: they are the
# processes with that (unique) path as one of their arguments.
kill_daemons() {
	local mp=$1 p
	for p in /proc/[0-9]*; do
		[ -r "$p/cmdline" ] || continue
		[ "${p#/proc/}" = $$ ] && continue
		if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$mp"; then
			kill -9 "${p#/proc/}" 2>/dev/null || true
		fi
	done
}

force_umount() {
	local mp=$1 dev
	dev=$(awk -v m="$mp" '$5 == m { print $3; exit }' /proc/self/mountinfo)
	if [ -n "$dev" ] && [ -e "/sys/fs/fuse/connections/${dev#*:}/abort" ]; then
		echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort" 2>/dev/null || true
	fi
	umount -l "$mp" 2>/dev/null || true
	kill_daemons "$mp"
}

tool_umount() { # MP [force]: force when the daemon is known to be stuck
	local mp=$1 i
	is_mounted "$mp" || return 0
	if [ "${2:-}" = force ]; then
		force_umount "$mp"
	else
		timeout -k 2 10 umount "$mp" 2>/dev/null || force_umount "$mp"
	fi
	for i in 1 2 3 4 5 6 7 8 9 10; do
		is_mounted "$mp" || break
		sleep 0.2
	done
	is_mounted "$mp" && force_umount "$mp"
	# a FUSE daemon exits by itself on unmount; make sure
	sleep 0.05
	kill_daemons "$mp"
	! is_mounted "$mp"
}

bench_cleanup() {
	local rc=$? mp
	trap - EXIT INT TERM
	if [ -n "${MNT_ROOT:-}" ] && [ -d "$MNT_ROOT" ]; then
		for mp in "$MNT_ROOT"/*; do
			# no [ -d ] first: it would stat a possibly stuck mount
			[ "$mp" = "$MNT_ROOT/*" ] && continue
			tool_umount "$mp" || log "warning: could not unmount $mp"
			rmdir "$mp" 2>/dev/null
		done
		rmdir "$MNT_ROOT" 2>/dev/null || log "warning: $MNT_ROOT left behind"
	fi
	exit $rc
}

# tool_available TOOL: is the tool there at all (else its column shows n/a)
tool_available() {
	case $1 in
	overlay) grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ;;
	unionfs) [ -x "$BUILD/unionfs" ] ;;
	fuse-overlayfs) [ -x "$FUSE_OVERLAYFS_BIN" ] ;;
	unionfs-fuse) [ -x "$UNIONFS_FUSE_BIN" ] ;;
	*) return 1 ;;
	esac
}

# tool_mount TOOL: mounts $LOWERDIRS read-only at $(mnt_of TOOL); 0 when live.
tool_mount() {
	local tool=$1 mp rc=1
	mp=$(mnt_of "$tool")
	# unmount first: stat (mkdir -p) of a stuck FUSE mount would hang
	is_mounted "$mp" && tool_umount "$mp" force
	mkdir -p "$mp"
	local to="timeout -k 5 $BENCH_MOUNT_TIMEOUT"
	case $tool in
	overlay)
		$to mount -t overlay overlay -o "lowerdir=$LOWERDIRS" "$mp" 2>"$BENCH_OUT/mount-$tool.err"; rc=$? ;;
	unionfs)
		# our own, always by path (Debian's unionfs-fuse owns /usr/bin/unionfs)
		$to "$BUILD/unionfs" -o "lowerdir=$LOWERDIRS" "$mp" 2>"$BENCH_OUT/mount-$tool.err"; rc=$?
		if [ $rc != 0 ] && ! is_mounted "$mp"; then
			$to "$BUILD/unionfs" -o "br=$DATA/b0=ro:$DATA/b1=ro:$DATA/b2=ro" "$mp" \
				2>>"$BENCH_OUT/mount-$tool.err"; rc=$?
		fi ;;
	fuse-overlayfs)
		$to "$FUSE_OVERLAYFS_BIN" -o "lowerdir=$LOWERDIRS" "$mp" 2>"$BENCH_OUT/mount-$tool.err"; rc=$? ;;
	unionfs-fuse)
		# unionfs-fuse needs cow for read-only branches; ro makes the mount read-only
		$to "$UNIONFS_FUSE_BIN" -o cow,ro "$DATA/b0=RO:$DATA/b1=RO:$DATA/b2=RO" "$mp" \
			2>"$BENCH_OUT/mount-$tool.err"; rc=$? ;;
	esac
	if [ $rc = 0 ]; then
		local i
		for i in $(seq 50); do is_mounted "$mp" && break; sleep 0.1; done
		if is_mounted "$mp" && timeout -k 2 10 stat "$mp/tree" >/dev/null 2>&1; then
			return 0
		fi
	fi
	log "$tool: mount failed (rc=$rc): $(head -c 300 "$BENCH_OUT/mount-$tool.err" 2>/dev/null | tr '\n' ' ')"
	tool_umount "$mp"
	return 1
}

# tool_mount_rw TOOL LOWERS UPPER WORK [EXTRA]: a writable stack at
# $(mnt_of TOOL): LOWERS (top first, colon separated) under the upper dir UPPER
# (WORK: overlay's work dir, on UPPER's file system; unionfs-fuse has none).
# EXTRA is appended to the -o options (e.g. "volatile"); not for unionfs-fuse.
# 0 when live.
tool_mount_rw() {
	local tool=$1 lowers=$2 upper=$3 work=$4 extra=${5:+,$5} mp rc=1
	mp=$(mnt_of "$tool")
	is_mounted "$mp" && tool_umount "$mp" force
	mkdir -p "$mp"
	local to="timeout -k 5 $BENCH_MOUNT_TIMEOUT" o="lowerdir=$lowers,upperdir=$upper,workdir=$work$extra"
	case $tool in
	overlay)
		$to mount -t overlay overlay -o "$o" "$mp" 2>"$BENCH_OUT/mount-$tool.err"; rc=$? ;;
	unionfs)
		# our own, always by path (Debian's unionfs-fuse owns /usr/bin/unionfs)
		$to "$BUILD/unionfs" -o "$o" "$mp" 2>"$BENCH_OUT/mount-$tool.err"; rc=$? ;;
	fuse-overlayfs)
		$to "$FUSE_OVERLAYFS_BIN" -o "$o" "$mp" 2>"$BENCH_OUT/mount-$tool.err"; rc=$? ;;
	unionfs-fuse)
		local br="$upper=RW" l
		local -a ls
		IFS=: read -r -a ls <<<"$lowers"
		for l in "${ls[@]}"; do br="$br:$l=RO"; done
		$to "$UNIONFS_FUSE_BIN" -o cow "$br" "$mp" 2>"$BENCH_OUT/mount-$tool.err"; rc=$? ;;
	esac
	if [ $rc = 0 ]; then
		local i
		for i in $(seq 50); do is_mounted "$mp" && break; sleep 0.1; done
		if is_mounted "$mp" && timeout -k 2 10 stat "$mp/" >/dev/null 2>&1; then
			return 0
		fi
	fi
	log "$tool: read-write mount failed (rc=$rc): $(head -c 300 "$BENCH_OUT/mount-$tool.err" 2>/dev/null | tr '\n' ' ')"
	tool_umount "$mp"
	return 1
}

# ---------- recording ----------

suite_begin() { # SUITE TITLE
	SUITE=$1
	printf '%s\t%s\n' "$1" "$2" >>"$BENCH_OUT/suites.tsv"
}
row_def() { # ID LABEL UNIT BETTER TARGET
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$SUITE" "$1" "$2" "$3" "$4" "$5" >>"$BENCH_OUT/rows.tsv"
}
sample() { # ID TOOL REP VALUE
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$BENCH_OUT/samples.tsv"
	log "  $1 $2 rep$3: $4"
}
note() { printf '%s\n' "$*" >>"$BENCH_OUT/notes-$SUITE.md"; }

# rotated TOOLS... for repetition $REP: a different tool goes first each time,
# so no tool always runs right after a cache-hungry neighbour.
rotated() {
	local -a t=("$@")
	local n=${#t[@]} i
	for ((i = 0; i < n; i++)); do echo "${t[((i + REP - 1) % n)]}"; done
}
