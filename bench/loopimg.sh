#!/bin/bash
# bench/loopimg.sh: loopimg against the usual tools, on this machine, in one run.
#   pack    a rootfs-like tree (a copy of /usr) and a few large files:
#           loopimg pack vs mke2fs -t ext4 -d, genext2fs, mksquashfs (wall, CPU, size)
#   digest  loopimg digest vs xxh128sum (warm cache), and cold vs the disk (dd iflag=direct)
# Every pack starts cold: the source tree's pages are dropped (POSIX_FADV_DONTNEED on its
# files only, never the whole machine's cache).
#   attach  loopimg attach+detach vs losetup -f --show + losetup -d
# Prints a table and writes bench/RESULTS-loopimg.md. Needs root. Standalone:
#   sudo bash bench/loopimg.sh
# Settings: LOOPIMG_BENCH_DIR (scratch, default bench/work/loopimg), LOOPIMG_BENCH_ROOTFS
# (a tree to use instead of the /usr copy), LOOPIMG_BENCH_BIG_MB (size of each of the 4
# large files, default 512), LOOPIMG_BENCH_CYCLES (attach cycles, default 200),
# LOOPIMG_BENCH_STEPS (a subset of "pack digest attach").
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LOOPIMG=${LOOPIMG:-${BUILD:-$REPO/build}/loopimg}
WORK=${LOOPIMG_BENCH_DIR:-$HERE/work/loopimg}
BIG_MB=${LOOPIMG_BENCH_BIG_MB:-512}
CYCLES=${LOOPIMG_BENCH_CYCLES:-200}
RESULTS=$HERE/RESULTS-loopimg.md
ROWS=()

log() { printf '[loopimg bench %s] %s\n' "$(date +%T)" "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "needs root (mke2fs -d of /usr, loop devices)"; exit 1; }
[ -x "$LOOPIMG" ] || { log "$LOOPIMG missing: run make first"; exit 1; }
mkdir -p "$WORK"

# A rootfs-like tree: /usr without the few multi-GB SDKs some machines carry.
make_rootfs() {
	local dst=$WORK/rootfs
	[ -e "$WORK/rootfs.done" ] && return
	log "copying /usr to $dst (once)"
	rm -rf "$dst" && mkdir -p "$dst"
	tar -C / --xattrs --exclude=usr/local --exclude=usr/lib/google-cloud-sdk \
		--exclude=usr/lib/jvm --exclude=usr/lib/llvm-14 -cf - usr | tar -C "$dst" --xattrs -xpf -
	touch "$WORK/rootfs.done"
}

make_bigtree() {
	local dst=$WORK/big
	[ -e "$WORK/big.done" ] && return
	log "writing 4 x $BIG_MB MiB to $dst (once)"
	rm -rf "$dst" && mkdir -p "$dst"
	for i in 1 2 3 4; do head -c "$((BIG_MB << 20))" /dev/urandom >"$dst/file$i"; done
	touch "$WORK/big.done"
}

# timed OUTVAR CMD...: runs CMD, sets OUTVAR to "wall cpu" (seconds), or "fail".
timed() {
	local var=$1 tf
	shift
	tf=$(mktemp)
	if /usr/bin/time -f '%e %U %S' -o "$tf" "$@" >/dev/null 2>"$tf.err"; then
		read -r w u s <"$tf"
		printf -v "$var" '%s %s' "$w" "$(echo "$u + $s" | bc)"
	else
		printf -v "$var" 'fail'
		log "failed: $* ($(tail -n 1 "$tf.err"))"
	fi
	rm -f "$tf" "$tf.err"
}

# Drops the page cache of the given trees/files only (not the whole machine's): a cold start.
evict() {
	python3 - "$@" <<'EOF'
import os, sys
for root in sys.argv[1:]:
    paths = [root] if os.path.isfile(root) else (os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
EOF
}

row() { ROWS+=("$(printf '| %s | %s | %s | %s | %s |' "$@")"); printf '%-44s %10s %10s %12s  %s\n' "$@"; }

size_of() { [ -e "$1" ] && printf '%s MB (%s MB on disk)' "$(($(stat -c %s "$1") >> 20))" "$(($(du -k "$1" | cut -f1) >> 10))" || echo "-"; }

bench_pack() {
	local name=$1 src=$2 t size
	local img=$WORK/$name
	rm -f "$img".*
	sync && evict "$src"
	timed t "$LOOPIMG" pack "$src" "$img.loopimg"
	row "pack $name: loopimg pack" "${t% *}" "${t#* }" "$(size_of "$img.loopimg")" "e2fsck -fn: $(e2fsck -fn "$img.loopimg" >/dev/null 2>&1 && echo clean || echo ERRORS)"
	local ours_wall=${t% *} ours_cpu=${t#* }
	# mke2fs -d needs room for its journal and 5% reserve: give it 25% more than our image.
	size=$(($(stat -c %s "$img.loopimg") / 1024 * 5 / 4))
	sync && evict "$src"
	timed t timeout 900 mke2fs -q -t ext4 -d "$src" "$img.mke2fs" "${size}k"
	row "pack $name: mke2fs -t ext4 -d" "${t% *}" "${t#* }" "$(size_of "$img.mke2fs")" "$(ratio "$t" "$ours_wall" "$ours_cpu")"
	rm -f "$img.mke2fs"
	if command -v genext2fs >/dev/null; then
		sync && evict "$src"
		timed t timeout 900 genext2fs -B 4096 -b "$((size / 4))" -N "$(($(find "$src" | wc -l) + 1000))" -d "$src" "$img.genext2fs"
		row "pack $name: genext2fs" "${t% *}" "${t#* }" "$(size_of "$img.genext2fs")" "$(ratio "$t" "$ours_wall" "$ours_cpu")"
		rm -f "$img.genext2fs"
	fi
	if command -v mksquashfs >/dev/null; then
		sync && evict "$src"
		timed t timeout 900 mksquashfs "$src" "$img.squashfs" -noappend -quiet -no-progress
		row "pack $name: mksquashfs (compressed)" "${t% *}" "${t#* }" "$(size_of "$img.squashfs")" "$(ratio "$t" "$ours_wall" "$ours_cpu")"
		rm -f "$img.squashfs"
	fi
}

# "loopimg Nx faster (wall), Mx (CPU)" for another tool's "wall cpu".
ratio() {
	[ "$1" = fail ] && { echo "failed"; return; }
	local w=${1% *} c=${1#* }
	printf 'loopimg %.1fx faster wall, %.1fx less CPU' "$(echo "$w / ($2 + 0.001)" | bc -l)" "$(echo "$c / ($3 + 0.001)" | bc -l)"
}

# best_of3 CMD...: "wall cpu" of the fastest of three runs (warm-cache figures are noisy).
best_of3() {
	local t best=""
	for _ in 1 2 3; do
		timed t "$@"
		[ "$t" = fail ] && { echo fail; return; }
		if [ -z "$best" ] || [ "$(echo "${t% *} < ${best% *}" | bc)" = 1 ]; then best=$t; fi
	done
	echo "$best"
}

bench_digest() {
	local img=$WORK/rootfs.loopimg t1 t2 mb
	[ -e "$img" ] || "$LOOPIMG" pack "$WORK/rootfs" "$img" >/dev/null
	mb=$(($(stat -c %s "$img") >> 20))
	cat "$img" >/dev/null
	t1=$(best_of3 "$LOOPIMG" digest "$img")
	t2=$(best_of3 xxh128sum "$img")
	row "digest ${mb} MB warm: loopimg digest" "${t1% *}" "${t1#* }" "$(echo "$mb / (${t1% *} + 0.001)" | bc) MB/s" "$(printf '%.0f%% of xxh128sum' "$(echo "100 * ${t2% *} / (${t1% *} + 0.001)" | bc -l)")"
	row "digest ${mb} MB warm: xxh128sum" "${t2% *}" "${t2#* }" "$(echo "$mb / (${t2% *} + 0.001)" | bc) MB/s" ""
	if true; then
		sync && evict "$img"
		timed t1 "$LOOPIMG" digest "$img"
		sync && evict "$img"
		timed t2 dd if="$img" of=/dev/null bs=4M iflag=direct
		row "digest ${mb} MB cold: loopimg digest" "${t1% *}" "${t1#* }" "$(echo "$mb / (${t1% *} + 0.001)" | bc) MB/s" "disk (dd iflag=direct): $(echo "$mb / (${t2% *} + 0.001)" | bc) MB/s"
	fi
}

bench_attach() {
	local img=$WORK/small.img start end dev i
	rm -f "$img"
	mkdir -p "$WORK/small"
	echo x >"$WORK/small/x"
	"$LOOPIMG" pack "$WORK/small" "$img" >/dev/null
	start=$(date +%s%N)
	for ((i = 0; i < CYCLES; i++)); do
		dev=$("$LOOPIMG" attach -r "$img") && "$LOOPIMG" detach "$dev"
	done
	end=$(date +%s%N)
	local ours=$(((end - start) / CYCLES / 1000))
	start=$(date +%s%N)
	for ((i = 0; i < CYCLES; i++)); do
		dev=$(losetup -f --show -r "$img") && losetup -d "$dev"
	done
	end=$(date +%s%N)
	local theirs=$(((end - start) / CYCLES / 1000))
	local api=-
	if cc -std=gnu17 -O2 -D_GNU_SOURCE -I"$REPO" "$HERE/loopimg_attach.c" \
		"$REPO/build/loopimg-core.a" "$REPO/build/libcommon.a" \
		$(pkg-config --libs ext2fs com_err blkid libxxhash) -lpthread -o "$WORK/loopimg_attach"; then
		api=$("$WORK/loopimg_attach" "$img" "$CYCLES")
	fi
	row "attach+detach: loopimg API, in one process" "$api us" "-" "per cycle" "$(printf 'losetup CLI %.1fx slower (the path layerctl takes)' "$(echo "$theirs / $api" | bc -l)")"
	row "attach+detach: loopimg CLI (2 execs)" "$ours us" "-" "per cycle" "$(printf 'losetup CLI %.1fx slower; process start dominates' "$(echo "$theirs / $ours" | bc -l)")"
	row "attach+detach: losetup CLI (2 execs)" "$theirs us" "-" "per cycle" ""
}

printf '%-44s %10s %10s %12s  %s\n' "step" "wall s" "CPU s" "size/rate" "notes"
if [ -n "${LOOPIMG_BENCH_ROOTFS:-}" ]; then
	ln -sfn "$LOOPIMG_BENCH_ROOTFS" "$WORK/rootfs" && touch "$WORK/rootfs.done"
else
	make_rootfs
fi
make_bigtree
ENTRIES=$(find "$WORK/rootfs/" | wc -l)
ROOTFS_MB=$(($(du -sk "$WORK/rootfs/" | cut -f1) >> 10))
STEPS=" ${LOOPIMG_BENCH_STEPS:-pack digest attach} "
[[ $STEPS == *" pack "* ]] && bench_pack rootfs "$WORK/rootfs/" && bench_pack big "$WORK/big"
[[ $STEPS == *" digest "* ]] && bench_digest
[[ $STEPS == *" attach "* ]] && bench_attach

{
	echo "# loopimg benchmark results"
	echo
	echo "Generated by \`bench/loopimg.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r),"
	echo "$(mke2fs -V 2>&1 | head -n 1). Rootfs-like tree: a copy of /usr, $ENTRIES entries, $ROOTFS_MB MB;"
	echo "large-file tree: 4 x $BIG_MB MiB of random data. CPU = user + system seconds of the tool"
	echo "(/usr/bin/time); every image is e2fsck -fn clean unless noted. One run each, same machine,"
	echo "same session; other jobs may have been running."
	echo
	echo "Every pack starts cold (the source tree's pages dropped with POSIX_FADV_DONTNEED)."
	echo "mke2fs and genext2fs get 25% more room than loopimg's auto-sized image (mke2fs"
	echo "adds a journal and 5% reserved blocks); \"on disk\" is du. The attach+detach"
	echo "figures of both CLIs are dominated by starting a process on this VM (about 3-5 ms);"
	echo "the API row is what layerctl pays. The cold digest reads a sparse image, so holes"
	echo "are read without I/O: compare it with dd iflag=direct of the same file."
	echo
	echo "| step | wall s | CPU s | size / rate | notes |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
} >"$RESULTS"
log "wrote $RESULTS"
rm -f "$WORK"/*.loopimg "$WORK/small.img"
