#!/bin/bash
# bench/loopimg.sh: loopimg against the usual tools, on this machine, in one run.
#   pack    a rootfs-like tree (a copy of /usr) and a few large files:
#           loopimg pack vs mke2fs -t ext4 -d, genext2fs, mksquashfs (wall, CPU, size)
#   digest  loopimg digest vs xxh128sum (warm cache), and cold vs the disk (dd iflag=direct)
# Every pack starts cold: the source tree's pages are dropped (POSIX_FADV_DONTNEED on its
# files only, never the whole machine's cache).
#   attach  attach+detach through loopimg's API in one process; loopimg's CLI (as built,
#           and linked statically) vs losetup, side by side under hyperfine, with floors
#           (the same shell line with no-op programs) and the start of each program alone
# Prints a table and writes bench/RESULTS-loopimg.md. Needs root. Standalone:
#   sudo bash bench/loopimg.sh
# Settings: LOOPIMG_BENCH_DIR (scratch, default bench/work/loopimg), LOOPIMG_BENCH_ROOTFS
# (a tree to use instead of the /usr copy), LOOPIMG_BENCH_BIG_MB (size of each of the 4
# large files, default 512), LOOPIMG_BENCH_CYCLES (attach runs per command, default 300),
# LOOPIMG_BENCH_ROUNDS (hyperfine rounds they are split into, default 3),
# LOOPIMG_BENCH_STEPS (a subset of "pack digest attach"; the other steps' rows are kept
# from the previous results).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LOOPIMG=${LOOPIMG:-${BUILD:-$REPO/build}/loopimg}
WORK=${LOOPIMG_BENCH_DIR:-$HERE/work/loopimg}
BIG_MB=${LOOPIMG_BENCH_BIG_MB:-512}
CYCLES=${LOOPIMG_BENCH_CYCLES:-300}
ROUNDS=${LOOPIMG_BENCH_ROUNDS:-3}
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

# stat_of WHAT NAME PREFIX: a figure of hyperfine's result NAME, pooled over the rounds
# PREFIX.*.json: "median" (microseconds), or "row" (median|mean ± sd, CPU, all in us).
stat_of() {
	python3 - "$1" "$2" "$3".*.json <<'PY'
import json, statistics, sys
what, name, files = sys.argv[1], sys.argv[2], sys.argv[3:]
times, cpu = [], []
for f in files:
    for r in json.load(open(f))["results"]:
        if r["command"] == name:
            times += r["times"]
            cpu.append((r["user"] + r["system"], len(r["times"])))
us = [t * 1e6 for t in times]
if what == "median":
    print("%.0f" % statistics.median(us))
else:
    c = sum(a * n for a, n in cpu) / sum(n for _, n in cpu) * 1e6
    print("%.0f us (%.0f ± %.0f)|%.0f us" % (statistics.median(us), statistics.mean(us), statistics.stdev(us), c))
PY
}

# hyperfine_row LABEL NAME PREFIX NOTE: a table row for hyperfine's result NAME.
hyperfine_row() {
	local fig
	fig=$(stat_of row "$2" "$3")
	row "$1" "${fig%|*}" "${fig#*|}" "per run" "$4"
}

# rounds PREFIX RUNS CMDS...: hyperfine over CMDS in ROUNDS rounds of RUNS/ROUNDS runs
# each, so that a burst of load from elsewhere falls on every command alike.
rounds() {
	local prefix=$1 runs=$2 i
	shift 2
	rm -f "$prefix".*.json
	for ((i = 1; i <= ROUNDS; i++)); do
		hyperfine -N -w 10 -r "$((runs / ROUNDS))" --export-json "$prefix.$i.json" "$@" >&2 || return 1
	done
}

# ratio_of A B: "A/B" with two decimals.
ratio_of() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }

# attach+detach through the API in one process (the path layerctl takes), then through
# the CLIs side by side in one hyperfine run, each as `sh -c 'd=$(attach) && detach $d'`,
# with floors: the same shell line with programs that do nothing. Last, one process start
# of each program without a shell: what it costs before its first ioctl.
bench_attach() {
	local img=$WORK/small.img api=- static=$WORK/loopimg-static noop=$WORK/noop-static
	local libs cli cmds=() theirs ours floor
	libs="$(pkg-config --libs ext2fs com_err blkid libxxhash) -lpthread"
	rm -f "$img"
	mkdir -p "$WORK/small"
	echo x >"$WORK/small/x"
	"$LOOPIMG" pack "$WORK/small" "$img" >/dev/null
	if cc -std=gnu17 -O2 -D_GNU_SOURCE -I"$REPO" "$HERE/loopimg_attach.c" \
		"$REPO/build/loopimg-core.a" "$REPO/build/libcommon.a" $libs -o "$WORK/loopimg_attach"; then
		api=$("$WORK/loopimg_attach" "$img" "$CYCLES")
	fi
	if ! command -v hyperfine >/dev/null; then
		log "hyperfine missing (apt-get install hyperfine): the CLI rows are left out"
		row "attach+detach: loopimg API, in one process" "$api us" "-" "per cycle" "the path layerctl takes"
		return
	fi
	# loopimg linked statically from the same objects, as make STATIC=1 links it.
	cc -static -o "$static" "$REPO/build/obj/loopimg/main.o" "$REPO/build/loopimg-core.a" \
		"$REPO/build/libcommon.a" $libs || static=
	printf 'int main(void) { return 0; }\n' | cc -O2 -static -x c - -o "$noop" || noop=
	cli="sh -c 'd=\$(%s) && %s \$d'"
	cmds+=(-n loopimg "$(printf "$cli" "$LOOPIMG attach -r $img" "$LOOPIMG detach")")
	[ -n "$static" ] && cmds+=(-n "loopimg static" "$(printf "$cli" "$static attach -r $img" "$static detach")")
	cmds+=(-n losetup "$(printf "$cli" "losetup -f --show -r $img" "losetup -d")")
	cmds+=(-n true "$(printf "$cli" "/bin/true $img" "/bin/true")")
	[ -n "$noop" ] && cmds+=(-n noop "$(printf "$cli" "$noop $img" "$noop")")
	rounds "$WORK/attach" "$CYCLES" "${cmds[@]}"
	theirs=$(stat_of median losetup "$WORK/attach")
	ours=$(stat_of median loopimg "$WORK/attach")
	floor=$(stat_of median "$([ -n "$noop" ] && echo noop || echo true)" "$WORK/attach")
	row "attach+detach: loopimg API, in one process" "$api us" "-" "per cycle" \
		"losetup CLI $(ratio_of "$theirs" "$api")x slower (the path layerctl takes)"
	hyperfine_row "attach+detach: loopimg CLI" loopimg "$WORK/attach" \
		"losetup CLI / this: $(ratio_of "$theirs" "$ours")"
	[ -n "$static" ] && hyperfine_row "attach+detach: loopimg CLI, static (make STATIC=1)" \
		"loopimg static" "$WORK/attach" \
		"losetup CLI / this: $(ratio_of "$theirs" "$(stat_of median "loopimg static" "$WORK/attach")")"
	hyperfine_row "attach+detach: losetup CLI" losetup "$WORK/attach" ""
	hyperfine_row "floor: the same sh -c line with /bin/true" true "$WORK/attach" \
		"a shell, a fork, two execs of a dynamic no-op"
	[ -n "$noop" ] && hyperfine_row "floor: the same sh -c line with a static no-op" noop \
		"$WORK/attach" "losetup CLI / this: $(ratio_of "$theirs" "$floor"), the most any CLI could reach"
	cmds=(-n loopimg "$LOOPIMG --version" -n losetup "losetup --version" -n true /bin/true)
	[ -n "$static" ] && cmds+=(-n "loopimg static" "$static --version")
	[ -n "$noop" ] && cmds+=(-n noop "$noop")
	rounds "$WORK/start" "$((CYCLES * 2))" "${cmds[@]}"
	hyperfine_row "process start: loopimg --version" loopimg "$WORK/start" \
		"dynamic: libext2fs, libcom_err, libblkid, libxxhash, libc"
	[ -n "$static" ] && hyperfine_row "process start: loopimg --version, static" \
		"loopimg static" "$WORK/start" ""
	hyperfine_row "process start: losetup --version" losetup "$WORK/start" "dynamic: libsmartcols, libc"
	hyperfine_row "process start: /bin/true" true "$WORK/start" "dynamic: libc"
	[ -n "$noop" ] && hyperfine_row "process start: a static no-op" noop "$WORK/start" ""
}

printf '%-44s %10s %10s %12s  %s\n' "step" "wall s" "CPU s" "size/rate" "notes"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STEPS=" ${LOOPIMG_BENCH_STEPS:-pack digest attach} "
ran() { [[ $STEPS == *" $1 "* ]]; }
if ran pack || ran digest; then
	if [ -n "${LOOPIMG_BENCH_ROOTFS:-}" ]; then
		ln -sfn "$LOOPIMG_BENCH_ROOTFS" "$WORK/rootfs" && touch "$WORK/rootfs.done"
	else
		make_rootfs
	fi
	make_bigtree
	TREES="Rootfs-like tree: a copy of /usr, $(find "$WORK/rootfs/" | wc -l) entries,"
	TREES+=" $(($(du -sk "$WORK/rootfs/" | cut -f1) >> 10)) MB; large-file tree: 4 x $BIG_MB MiB of random data."
fi
ran pack && bench_pack rootfs "$WORK/rootfs/" && bench_pack big "$WORK/big"
ran digest && bench_digest
ran attach && bench_attach

# A run of some steps keeps the other steps' rows (and their trees' description) from
# the previous results, so that one table holds every figure.
OLD=$(cat "$RESULTS" 2>/dev/null)
declare -A PREFIX=([pack]='pack ' [digest]='digest ' [attach]='(attach\+detach|floor|process start)')
TABLE=() CARRIED=()
for step in pack digest attach; do
	if ran "$step"; then
		for r in "${ROWS[@]}"; do [[ $r =~ ^\|\ ${PREFIX[$step]} ]] && TABLE+=("$r"); done
	elif grep -qE "^\| ${PREFIX[$step]}" <<<"$OLD"; then
		mapfile -t -O "${#TABLE[@]}" TABLE < <(grep -E "^\| ${PREFIX[$step]}" <<<"$OLD")
		CARRIED+=("$step")
	fi
done
if [ -z "${TREES:-}" ]; then
	TREES=$(sed -n '/^Rootfs-like tree\|Rootfs-like tree:/,/random data\./p' <<<"$OLD" | tr '\n' ' ' |
		sed 's/.*\(Rootfs-like tree:.*random data\.\).*/\1/')
fi

{
	echo "# loopimg benchmark results"
	echo
	echo "Generated by \`bench/loopimg.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r),"
	echo "$(mke2fs -V 2>&1 | head -n 1); load average at the start: $LOAD_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	[ -n "${TREES:-}" ] && echo "$TREES"
	if [ "${#CARRIED[@]}" -gt 0 ]; then
		# Where the old rows were themselves kept from an earlier run, that run's date.
		prev=$(sed -n 's/.* rows are kept from the run of \(.* UTC\).*/\1/p' <<<"$OLD" | head -n 1)
		[ -n "$prev" ] || prev=$(sed -n 's/^Generated by `bench\/loopimg.sh` on \([^,]*\),.*/\1/p' <<<"$OLD" | head -n 1)
		echo "This run measured only:${STEPS% }. The $(echo "${CARRIED[*]}" | sed 's/ / and /g') rows are kept from the run of $prev"
		echo "(LOOPIMG_BENCH_STEPS runs a subset of the steps and keeps the other rows)."
	fi
	echo
	echo "CPU = user + system of the tool (/usr/bin/time); every image is e2fsck -fn clean unless"
	echo "noted. Wall and CPU are seconds unless marked us. One run each, same machine, same session;"
	echo "other jobs may have been running."
	echo "Every pack starts cold (the source tree's pages dropped with POSIX_FADV_DONTNEED)."
	echo "mke2fs and genext2fs get 25% more room than loopimg's auto-sized image (mke2fs"
	echo "adds a journal and 5% reserved blocks); \"on disk\" is du. The cold digest reads a"
	echo "sparse image, so holes are read without I/O: compare it with dd iflag=direct of the"
	echo "same file."
	echo
	echo "attach+detach: the API row is what layerctl pays (bench/loopimg_attach.c, one process)."
	echo "The CLI rows run \`sh -c 'd=\$(TOOL attach IMG) && TOOL detach \$d'\` side by side in one"
	echo "hyperfine run ($ROUNDS rounds, pooled): median (mean ± standard deviation); ratios are of"
	echo "medians. The floor rows run the same line with programs that do nothing: no CLI can be"
	echo "faster than the static no-op floor. The process start rows are one exec each, no shell."
	echo
	echo "| step | wall | CPU | size / rate | notes |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${TABLE[@]}"
} >"$RESULTS"
log "wrote $RESULTS"
rm -f "$WORK"/*.loopimg "$WORK/small.img"
