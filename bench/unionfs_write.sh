#!/bin/bash
# bench/unionfs_write.sh: the write side of unionfs (issue 4), against kernel
# overlayfs, fuse-overlayfs and unionfs-fuse. Run by bench/run (which sets
# BENCH_OUT and tabulates): `bench/run write`.
#
# Every sample gets a fresh, empty upper (and work) dir on the same file
# system as the two lower dirs, a fresh mount, one timed step, an untimed
# check of the result through the mount, an unmount. Samples are interleaved
# across the tools, BENCH_REPS times; every step runs under timeout.
#
# Durability: every timed step ends with `sync -f MNT; sync -f UPPER`, so at
# the end of the step the upper's data and metadata are on disk for every
# tool alike, whatever each one fsyncs on its own (a FUSE mount's syncfs does
# not reach the daemon, so `sync -f MNT` alone would let the FUSE tools skip
# the disk). The "volatile" rows mount overlay and unionfs with `-o volatile`
# and end with `sync -f MNT` only.
#
# Rows (N = BENCH_WRITE_FILES, 10000, quick 1000; M = BENCH_WRITE_MB, 1024,
# quick 128):
#   create     write N new 4 KiB files into a fresh dir (one process)
#   untar      tar -xf of an N-file tarball (4 KiB files) into the mount
#   rm         rm -rf of a lower subtree of N 4 KiB files (whiteouts only)
#   chmod      chmod -R g+w of that subtree (a copy-up of every file and dir)
#   copyup     printf x >> a lower M MiB file (copy-up of the whole file);
#              reference column cp-reflink: cp --reflink=auto of the same
#              file on the upper's file system, then sync -f
#   seqwrite   dd if=/dev/zero of=MNT/new bs=1M count=M conv=fsync
#   *_vol      create, chmod, copyup with overlay/unionfs -o volatile, and
#              the FUSE peers as they are (they never fsync a copy-up)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
	WFILES=${BENCH_WRITE_FILES:-1000}
	WMB=${BENCH_WRITE_MB:-128}
	WREPS=${BENCH_WRITE_REPS:-1}   # a smoke run: one sample per cell, under a minute
else
	WFILES=${BENCH_WRITE_FILES:-10000}
	WMB=${BENCH_WRITE_MB:-1024}
	WREPS=${BENCH_WRITE_REPS:-$BENCH_REPS}
fi
WRITE_DATA_VERSION=1

bench_init
bench_benchtool

# lib.sh's kill_daemons forks twice per process on the machine (~0.7 s a
# call); this suite unmounts ~150 times: the same search, one grep.
kill_daemons() {
	local mp=$1 f p
	for f in $(grep -lzxF -- "$mp" /proc/[0-9]*/cmdline 2>/dev/null); do
		p=${f#/proc/}
		p=${p%/cmdline}
		[ "$p" = $$ ] || kill -9 "$p" 2>/dev/null || true
	done
}

# ---------- writetool: a small helper, no process per file ----------

WRITETOOL=$BENCH_DIR/bin/writetool
build_writetool() {
	local src=$BENCH_DIR/bin/writetool.c
	mkdir -p "$BENCH_DIR/bin"
	cat >"$src.new" <<'EOF'
/* writetool mkfiles DIR N SIZE [MOD REM]: creates the files i < N (with
 * i % MOD == REM) of SIZE bytes as DIR/dNN/eNN/fNNNNN, 32 files a dir, 32 dirs
 * a parent; DIR and the dirs are made as needed. Written by bench/unionfs_write.sh. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkd(const char *p)
{
	if (mkdir(p, 0755) < 0 && errno != EEXIST) {
		perror(p);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[1], "mkfiles")) {
		fprintf(stderr, "usage: writetool mkfiles DIR N SIZE [MOD REM]\n");
		return 2;
	}
	const char *dir = argv[2];
	long n = atol(argv[3]), size = atol(argv[4]);
	long mod = argc > 6 ? atol(argv[5]) : 1, rem = argc > 6 ? atol(argv[6]) : 0;
	char *buf = malloc(size ? size : 1), p[4096];
	long lastleaf = -1, lastd = -1;

	for (long i = 0; i < size; i++)
		buf[i] = 'a' + i % 26;
	if (mkd(dir) < 0)
		return 1;
	for (long i = 0; i < n; i++) {
		if (i % mod != rem)
			continue;
		long leaf = i / 32, d = leaf / 32, e = leaf % 32;
		if (d != lastd) {
			snprintf(p, sizeof(p), "%s/d%02ld", dir, d);
			if (mkd(p) < 0)
				return 1;
			lastd = d;
		}
		if (leaf != lastleaf) {
			snprintf(p, sizeof(p), "%s/d%02ld/e%02ld", dir, d, e);
			if (mkd(p) < 0)
				return 1;
			lastleaf = leaf;
		}
		snprintf(p, sizeof(p), "%s/d%02ld/e%02ld/f%05ld", dir, d, e, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, buf, size) != size || close(fd) < 0) {
			perror(p);
			return 1;
		}
	}
	return 0;
}
EOF
	if [ ! -x "$WRITETOOL" ] || ! cmp -s "$src.new" "$src"; then
		mv "$src.new" "$src"
		${CC:-cc} -O2 -Wall -Wno-format-truncation -o "$WRITETOOL.tmp" "$src" &&
			mv "$WRITETOOL.tmp" "$WRITETOOL" || die "cannot compile $src"
	else
		rm -f "$src.new"
	fi
}
build_writetool

# ---------- the write data set (built once) ----------
# l0 (top) and l1: sub/ holds WFILES 4 KiB files in 32-file dirs, a third of
# them in l0, the rest in l1, every dir in both (they merge); l1/big/big.bin:
# WMB MiB of random data; files.tar: WFILES 4 KiB files in the same layout.

WDATA=$BENCH_DIR/data/write-v$WRITE_DATA_VERSION-n$WFILES-big${WMB}M
if [ ! -f "$WDATA/.complete" ]; then
	log "building the write data set $WDATA ($WFILES files, $WMB MiB)"
	rm -rf "$WDATA" "$WDATA.tmp"
	mkdir -p "$WDATA.tmp/l0" "$WDATA.tmp/l1/big" "$WDATA.tmp/tarsrc"
	"$WRITETOOL" mkfiles "$WDATA.tmp/l1/sub" "$WFILES" 4096 3 1 &&
		"$WRITETOOL" mkfiles "$WDATA.tmp/l1/sub" "$WFILES" 4096 3 2 &&
		"$WRITETOOL" mkfiles "$WDATA.tmp/l0/sub" "$WFILES" 4096 3 0 &&
		head -c "$((WMB << 20))" /dev/urandom >"$WDATA.tmp/l1/big/big.bin" &&
		"$WRITETOOL" mkfiles "$WDATA.tmp/tarsrc/untar" "$WFILES" 4096 &&
		tar -C "$WDATA.tmp/tarsrc" -cf "$WDATA.tmp/files.tar" untar &&
		rm -rf "$WDATA.tmp/tarsrc" || die "building the write data set failed"
	mv "$WDATA.tmp" "$WDATA"
	touch "$WDATA/.complete"
fi
WLOWERS=$WDATA/l0:$WDATA/l1

# uppers live here: the lowers' file system, never in /tmp
SCRATCH=$(mktemp -d "$BENCH_DIR/write-scratch.XXXXXX")
[ "$(stat -c %d "$SCRATCH")" = "$(stat -c %d "$WDATA/l1")" ] ||
	die "$SCRATCH and $WDATA are on different file systems"

write_cleanup() {
	local rc=$? mp
	for mp in "$MNT_ROOT"/*; do
		[ "$mp" = "$MNT_ROOT/*" ] && continue
		tool_umount "$mp" || log "warning: could not unmount $mp"
	done
	rm -rf --one-file-system "$SCRATCH"
	(exit $rc)
	bench_cleanup
}
trap write_cleanup EXIT

# A sample's upper is not deleted right after it: ext4 without a journal (the root
# file system of the machines this ran on) passes over inodes freed in the last 5 to
# 10 s when it allocates new ones (find_inode_bit, recently_deleted), one inode-table
# read each. After a 10000-file rm -rf, the next sample's creates then crawled: perf
# showed recently_deleted on top, and chmod -R on overlay took 3 to 11 s. So uppers
# go to a trash dir, emptied after each row, and the next row starts 11 s later
# (not in a quick run: 1000 files hardly show it).
TRASH=$SCRATCH/trash
TRASH_WAIT=11
[ "$BENCH_QUICK" = 1 ] && TRASH_WAIT=0
trash() { mkdir -p "$TRASH" && mv "$1" "$TRASH/$(date +%s%N)"; }
empty_trash() {
	rm -rf --one-file-system "$TRASH"
	sync -f "$SCRATCH"
	sleep "$TRASH_WAIT"
}

# ---------- rows ----------

suite_begin write "Write side (issue 4)"
row_def create "create $WFILES 4 KiB files + sync" s lower le:3
row_def untar "untar $WFILES files (4 KiB) + sync" s lower le:3
row_def rm "rm -rf lower subtree of $WFILES files + sync" s lower le:3
row_def chmod "chmod -R lower subtree of $WFILES files + sync" s lower le:3
row_def copyup "copy-up: append 1 byte to a $WMB MiB lower file + sync" s lower le:1.2@cp-reflink
row_def seqwrite "seq write $WMB MiB, dd bs=1M conv=fsync" s lower le:3
row_def create_vol "volatile: create $WFILES 4 KiB files" s lower le:3
row_def chmod_vol "volatile: chmod -R lower subtree" s lower le:3
row_def copyup_vol "volatile: copy-up of the $WMB MiB file" s lower le:3

note "Each sample: a fresh empty upper and work dir on the lowers' file system ($(findmnt -n -o FSTYPE -T "$WDATA" 2>/dev/null)), a fresh mount, the timed step, an untimed check through the mount, unmount. Uppers are deleted after each row, not after each sample, and the next row starts ${TRASH_WAIT} s later: ext4 without a journal skips inodes freed in the last 5-10 s when it allocates, which slowed the sample after an rm -rf of 10000 files by up to 3x. Lowers: \`l0\` (top) and \`l1\`; \`sub/\`: $WFILES 4 KiB files in 32-file dirs, a third in l0, the rest in l1, every dir in both; \`l1/big/big.bin\`: $WMB MiB."
note ""
note "Mounts (read-write): \`mount -t overlay overlay -o lowerdir=l0:l1,upperdir=U,workdir=W\`, \`$BUILD/unionfs -o lowerdir=l0:l1,upperdir=U,workdir=W\`, \`fuse-overlayfs -o lowerdir=l0:l1,upperdir=U,workdir=W\`, \`/usr/bin/unionfs -o cow U=RW:l0=RO:l1=RO\` (unionfs-fuse). Volatile rows: overlay and unionfs with \`,volatile\` added; fuse-overlayfs and unionfs-fuse as they are, since they never fsync a copy-up (strace of fuse-overlayfs during chmod -R shows no fsync): the same durability."
note ""
note "Durability: every timed step (but the volatile rows) ends with \`sync -f MNT; sync -f UPPER\`: the upper is on disk at the end for every tool alike (a FUSE mount's syncfs does not reach its daemon). Volatile rows end with \`sync -f MNT\` only. Before each step the scratch file system is synced (untimed); the lowers are on the root file system, shared with other work on the machine, so the syncs also flush whatever else is dirty there: see the raw samples for the spread."
note ""
note "Steps: create: \`writetool mkfiles MNT/new $WFILES 4096\` (one process, open/write/close per file); untar: \`tar -C MNT/untar -xf files.tar\` (built once, in the page cache); rm: \`rm -rf MNT/sub\`; chmod: \`chmod -R g+w MNT/sub\`; copy-up: \`printf x >> MNT/big/big.bin\` with the lower file in the page cache, and cp-reflink: \`cp --reflink=auto l1/big/big.bin SCRATCH/cp/\` then \`sync -f\`; seq write: \`dd if=/dev/zero of=MNT/seq.bin bs=1M count=$WMB conv=fsync\`."
note ""

[ "$WREPS" = "$BENCH_REPS" ] || note "(This suite took $WREPS sample(s) per cell, not $BENCH_REPS: BENCH_WRITE_REPS, 1 in a quick run.)"
note ""

read -r -a TOOLS <<<"$BENCH_TOOLS"
declare -A AVAIL=()
for t in "${TOOLS[@]}"; do
	if tool_available "$t"; then
		AVAIL[$t]=1
	else
		log "$t: not available"
		note "- $t: not available: n/a"
	fi
done

# the command of each row: $1 = mount point, $2 = upper dir, $3 = 1 to sync the upper
SYNC='sync -f "$1" && { [ "$3" = 0 ] || sync -f "$2"; }'
declare -A CMD=(
	[create]="\"$WRITETOOL\" mkfiles \"\$1/new\" $WFILES 4096 && $SYNC"
	[untar]="mkdir \"\$1/untar\" && tar -C \"\$1\" -xf \"$WDATA/files.tar\" && $SYNC"
	[rm]="rm -rf \"\$1/sub\" && $SYNC"
	[chmod]="chmod -R g+w \"\$1/sub\" && $SYNC"
	[copyup]="printf x >>\"\$1/big/big.bin\" && $SYNC"
	[seqwrite]="dd if=/dev/zero of=\"\$1/seq.bin\" bs=1M count=$WMB conv=fsync status=none && $SYNC"
)

# check ROW MNT: the result, seen through the mount (untimed); prints what is wrong
check() {
	local row=${1%_vol} mp=$2 n
	case $row in
	create | untar)
		local d=$mp/new
		[ "$row" = untar ] && d=$mp/untar
		n=$(find "$d" -type f -size 4k | wc -l)
		[ "$n" = "$WFILES" ] || echo "$n of $WFILES files of 4 KiB under ${d#"$mp"/}" ;;
	rm)
		[ ! -e "$mp/sub" ] || echo "sub/ still there"
		[ -e "$mp/big/big.bin" ] || echo "big/big.bin gone" ;;
	chmod)
		n=$(find "$mp/sub" -type f | wc -l)
		[ "$n" = "$WFILES" ] || echo "$n of $WFILES files under sub/"
		n=$(find "$mp/sub" ! -perm -g+w | wc -l)
		[ "$n" = 0 ] || echo "$n entries without g+w" ;;
	copyup)
		n=$(stat -c %s "$mp/big/big.bin")
		[ "$n" = $(((WMB << 20) + 1)) ] || echo "big.bin is $n bytes"
		[ "$(tail -c 1 "$mp/big/big.bin")" = x ] || echo "big.bin does not end in x" ;;
	seqwrite)
		n=$(stat -c %s "$mp/seq.bin")
		[ "$n" = $((WMB << 20)) ] || echo "seq.bin is $n bytes" ;;
	esac
}

prep() { # ROW: untimed, the same for every tool
	find "$WDATA/l0" "$WDATA/l1" >/dev/null 2>&1
	case ${1%_vol} in
	copyup) "$BENCHTOOL" seqread "$WDATA/l1/big/big.bin" >/dev/null ;;
	untar) cat "$WDATA/files.tar" >/dev/null ;;
	esac
	sync -f "$SCRATCH"
}

declare -A UPPER_SEEN=()

# one ROW TOOL REP: one sample
one() {
	local row=$1 tool=$2 rep=$3 extra="" durable=1 rc=0 what bad
	# Volatile rows: overlay and unionfs with -o volatile; the FUSE peers as they
	# are, for they never fsync a copy-up (no fsync in strace of fuse-overlayfs
	# during chmod -R): the same durability.
	case $row in *_vol) durable=0 ;; esac
	case $row:$tool in *_vol:overlay | *_vol:unionfs) extra=volatile ;; esac
	if [ "$tool" = cp-reflink ]; then
		mkdir -p "$SCRATCH/cp"
		prep "$row"
		if timed "$BENCH_TIMEOUT" bash -c 'cp --reflink=auto "$1" "$2/" && sync -f "$2"' _ \
			"$WDATA/l1/big/big.bin" "$SCRATCH/cp"; then
			sample "$row" "$tool" "$rep" "$T"
		else
			sample "$row" "$tool" "$rep" fail
		fi
		trash "$SCRATCH/cp"
		return
	fi
	if [ -z "${AVAIL[$tool]:-}" ]; then
		sample "$row" "$tool" "$rep" n/a
		return
	fi
	local up=$SCRATCH/$tool mp
	mp=$(mnt_of "$tool")
	mkdir -p "$up/upper" "$up/work"
	prep "$row"
	if ! tool_mount_rw "$tool" "$WLOWERS" "$up/upper" "$up/work" "$extra"; then
		sample "$row" "$tool" "$rep" fail
		note "- $tool: $row rep $rep: mount failed: $(head -c 200 "$BENCH_OUT/mount-$tool.err" | tr '\n' ' ')"
		return
	fi
	timed "$BENCH_TIMEOUT" bash -c "${CMD[${row%_vol}]}" _ "$mp" "$up/upper" "$durable" || rc=$?
	if [ $rc = 0 ]; then
		bad=$(timeout -k 5 "$BENCH_TIMEOUT" bash -c "$(declare -f check); WFILES=$WFILES WMB=$WMB check \"\$1\" \"\$2\"" _ "$row" "$mp" 2>&1 | tr '\n' ';')
		if [ -z "$bad" ]; then
			sample "$row" "$tool" "$rep" "$T"
		else
			sample "$row" "$tool" "$rep" fail
			log "$tool: $row rep $rep: wrong result: $bad"
			note "- $tool: $row rep $rep: wrong result (took $(fmt_secs "$T") s): $bad"
		fi
		tool_umount "$mp" || log "warning: $mp did not unmount"
	else
		what=fail
		[ $rc = 124 ] || [ $rc = 137 ] && what=timeout
		sample "$row" "$tool" "$rep" "$what"
		log "$tool: $row rep $rep: $what (rc=$rc) $(head -c 300 "$BENCH_OUT/last.err" | tr '\n' ' ')"
		note "- $tool: $row rep $rep: $what after $(fmt_secs "$T") s (exit $rc) $(head -c 200 "$BENCH_OUT/last.err" | tr '\n' ' ')"
		tool_umount "$mp" force || log "warning: $mp did not unmount"
	fi
	# what the step left in the upper, once per row and tool (untimed)
	if [ -z "${UPPER_SEEN[$row,$tool]:-}" ] && ! is_mounted "$mp"; then
		UPPER_SEEN[$row,$tool]=1
		UPPER_NOTE[$row]+="$tool $(find "$up/upper" -mindepth 1 | wc -l) entries $(du -sm "$up/upper" | cut -f1) MiB; "
	fi
	trash "$up"
}
declare -A UPPER_NOTE=()

read -r -a ROWS <<<"${BENCH_WRITE_ROWS:-create untar rm chmod copyup seqwrite create_vol chmod_vol copyup_vol}"
for row in "${ROWS[@]}"; do
	empty_trash
	log "row $row"
	tools=("${TOOLS[@]}")
	case $row in copyup) tools+=(cp-reflink) ;; esac
	for ((REP = 1; REP <= WREPS; REP++)); do
		for t in $(rotated "${tools[@]}"); do
			one "$row" "$t" "$REP"
		done
	done
done

note ""
note "What each step left in the upper dir (first sample of each row; entries under it, size):"
note ""
for row in "${ROWS[@]}"; do
	[ -n "${UPPER_NOTE[$row]:-}" ] && note "- $row: ${UPPER_NOTE[$row]%; }"
done
log "write suite done"
