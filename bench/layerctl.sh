#!/bin/bash
# bench/layerctl.sh: layerctl against the usual tools, on this machine, in one run.
#   import  a ~100 MB rootfs-like tarball (python3.11, perl, linux headers from /usr, every
#           dir as an entry): layerctl import into an empty store vs tar -x + mke2fs -d
#           (and, to show where the time goes, tar -x onto a tmpfs + mke2fs -d)
#   mount   layerctl mount / umount of a 5-layer stack
#   run     layerctl run NAME -- /bin/true on a mounted stack vs bwrap, unshare -fmuipn
#           --mount-proc chroot and runc run of a bundle of the same stack, the same
#           namespaces (mount, PID, UTS, IPC, network), hyperfine side by side
# The machine is shared and noisy: every step runs in ROUNDS rounds, the tools alternating
# (their order rotating) within each round, and the table gives the median of all samples.
# Prints the table and writes bench/RESULTS-layerctl.md. Needs root. Standalone:
#   sudo bash bench/layerctl.sh
# Settings: LAYERCTL_BENCH_DIR (scratch, default bench/work/layerctl), LAYERCTL_BENCH_ROUNDS
# (default 5), LAYERCTL_BENCH_RUNS (hyperfine runs per tool and round, default 20),
# LAYERCTL_BENCH_STEPS (a subset of "import mount run"), LAYERCTL_BENCH_BASELINE (another
# layerctl binary, e.g. an older build, timed as one more tool in import and run).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAYERCTL=${LAYERCTL:-${BUILD:-$REPO/build}/layerctl}
WORK=${LAYERCTL_BENCH_DIR:-$HERE/work/layerctl}
ROUNDS=${LAYERCTL_BENCH_ROUNDS:-5}
RUNS=${LAYERCTL_BENCH_RUNS:-20}
STEPS=${LAYERCTL_BENCH_STEPS:-import mount run}
RESULTS=${LAYERCTL_BENCH_RESULTS:-$HERE/RESULTS-layerctl.md}
STORE=$WORK/store
BASELINE=${LAYERCTL_BENCH_BASELINE:-}
SAMPLES=$WORK/samples.tsv # step \t tool \t seconds
NOTES=()

log() { printf '[layerctl bench %s] %s\n' "$(date +%T)" "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "needs root (loop devices, mounts, namespaces)"; exit 1; }
[ -x "$LAYERCTL" ] || { log "$LAYERCTL missing: run make first"; exit 1; }
for t in hyperfine bwrap runc mke2fs busybox; do
	command -v "$t" >/dev/null || { log "$t missing (scripts/install-bench-deps, install-deps)"; exit 1; }
done
mkdir -p "$WORK"
: >"$SAMPLES"
LC() { timeout -k 5 300 "$LAYERCTL" --store "$STORE" "$@"; }

# Undo whatever a run left: the stack mounts (by layerctl, then by path), scratch dirs.
cleanup() {
	local s
	for s in $(ls "$STORE/run" 2>/dev/null | sed -n 's/\.json$//p'); do LC umount "$s" >/dev/null 2>&1; done
	grep -F " $WORK/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
}
trap cleanup EXIT

sample() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$SAMPLES"; }

# timed STEP TOOL CMD...: one wall-clock sample of CMD.
timed() {
	local step=$1 tool=$2 t0 t1
	shift 2
	t0=$(date +%s%N)
	if "$@" >/dev/null 2>"$WORK/err"; then
		t1=$(date +%s%N)
		sample "$step" "$tool" "$(echo "scale=6; ($t1 - $t0) / 1000000000" | bc)"
	else
		sample "$step" "$tool" fail
		log "failed: $tool: $(tail -n 1 "$WORK/err")"
	fi
}

# ---- data ----
make_tarball() {
	[ -s "$WORK/src.tar" ] && return
	log "building a ~100 MB rootfs-like tarball from /usr (once)"
	rm -rf "$WORK/src" && mkdir -p "$WORK/src"
	tar -C / -cf - usr/lib/python3.11 usr/share/perl usr/lib/x86_64-linux-gnu/perl \
		usr/include/linux 2>/dev/null | tar -C "$WORK/src" -xpf -
	tar -C "$WORK/src" -cf "$WORK/src.tar.tmp" . && mv "$WORK/src.tar.tmp" "$WORK/src.tar"
	rm -rf "$WORK/src"
}

# A busybox base and four layers of a few hundred files each: the 5-layer stack.
make_stack() {
	local d i ids=()
	LC stacks 2>/dev/null | grep -q '^five ' && return
	log "importing a 5-layer stack"
	d=$WORK/layers
	rm -rf "$d" && mkdir -p "$d/0"/{bin,etc,proc,dev,sys,tmp,root}
	cp /bin/busybox "$d/0/bin/"
	for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$d/0/bin/$a"; done
	echo "root:x:0:0:root:/root:/bin/sh" >"$d/0/etc/passwd"
	for i in 1 2 3 4; do
		mkdir -p "$d/$i/opt/l$i"
		seq 300 | while read -r n; do echo "$i $n" >"$d/$i/opt/l$i/f$n"; done
	done
	for i in 0 1 2 3 4; do ids+=("$(LC import "$d/$i")") || return 1; done
	LC create five "${ids[@]}"
}

# ---- import ----
bench_import() {
	local kib size i
	make_tarball
	kib=$(tar -tvf "$WORK/src.tar" | awk '{s += $3} END {print int(s / 1024)}')
	size=$((kib * 5 / 4 / 1024 + 64))M # mke2fs: the tree + 25% (journal, reserved blocks)
	mkdir -p "$WORK/tmpfs"
	NOTES+=("import: $(du -m "$WORK/src.tar" | cut -f1) MB tarball, $(tar -tf "$WORK/src.tar" | wc -l) entries, page-cached; mke2fs -t ext4 -d into a $size image; every sample starts after sync, from an empty store / scratch dir. Where the time goes: perf of an import that extracted to the store's disk showed ~70% of samples in ext4's inode allocator (find_inode_bit, recently_deleted, find_get_block_common) creating the temporary tree, which tar -x pays too; layerctl now extracts onto a tmpfs in a private mount namespace (the tmpfs-tar+mke2fs row is the same idea for the pair), and loopimg's pack of the tree is faster than mke2fs -d")
	for ((i = 0; i < ROUNDS; i++)); do
		log "import round $((i + 1))/$ROUNDS"
		for tool in $(rotate $i layerctl tar+mke2fs tmpfs-tar+mke2fs ${BASELINE:+baseline}); do
			rm -rf "$STORE.import" "$WORK/x" "$WORK/img"
			sync
			case $tool in
			layerctl) timed import "$tool" timeout 300 "$LAYERCTL" --store "$STORE.import" import "$WORK/src.tar" ;;
			baseline) timed import "layerctl (baseline)" timeout 300 "$BASELINE" --store "$STORE.import" import "$WORK/src.tar" ;;
			tar+mke2fs) timed import "$tool" sh -c "mkdir '$WORK/x' && tar -C '$WORK/x' -xf '$WORK/src.tar' && mke2fs -q -F -t ext4 -d '$WORK/x' '$WORK/img' $size" ;;
			tmpfs-tar+mke2fs)
				mount -t tmpfs -o size=2g tmpfs "$WORK/tmpfs"
				timed import "$tool" sh -c "tar -C '$WORK/tmpfs' -xf '$WORK/src.tar' && mke2fs -q -F -t ext4 -d '$WORK/tmpfs' '$WORK/img' $size"
				umount "$WORK/tmpfs" ;;
			esac
		done
	done
	rm -rf "$STORE.import" "$WORK/x" "$WORK/img"
}

# rotate I WORD...: the words, rotated left by I.
rotate() {
	local i=$1 n
	shift
	n=$#
	local a=("$@")
	for ((k = 0; k < n; k++)); do echo "${a[$(((k + i) % n))]}"; done
}

# hyperfine_round STEP JSON NAME=CMD...: one hyperfine run of the commands; samples recorded.
hyperfine_round() {
	local step=$1 json=$2 args=() names=()
	shift 2
	for nc in "$@"; do names+=("${nc%%=*}"); args+=(-n "${nc%%=*}" "${nc#*=}"); done
	hyperfine -N -w 3 -r "$RUNS" --export-json "$json" "${args[@]}" >/dev/null 2>"$WORK/err" ||
		{ log "hyperfine failed: $(tail -n 2 "$WORK/err")"; return; }
	python3 - "$json" "$step" >>"$SAMPLES" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    for t in r["times"]:
        print(f"{sys.argv[2]}\t{r['command']}\t{t:.6f}")
PY
}

# ---- mount ----
bench_mount() {
	local i
	make_stack || { log "could not build the stack"; return; }
	for ((i = 0; i < ROUNDS; i++)); do
		log "mount round $((i + 1))/$ROUNDS"
		hyperfine -N -w 2 -r "$RUNS" --export-json "$WORK/m.json" \
			-n "mount" --prepare "sh -c '$LAYERCTL --store $STORE umount five >/dev/null 2>&1; true'" \
			"$LAYERCTL --store $STORE mount five" \
			-n "umount" --prepare "sh -c '$LAYERCTL --store $STORE mount five >/dev/null 2>&1; true'" \
			"$LAYERCTL --store $STORE umount five" \
			>/dev/null 2>"$WORK/err" || log "hyperfine failed: $(tail -n 2 "$WORK/err")"
		LC umount five >/dev/null 2>&1
		python3 - "$WORK/m.json" >>"$SAMPLES" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    for t in r["times"]:
        print(f"mount\t{r['command']}\t{t:.6f}")
PY
	done
	NOTES+=("mount: 5 layers (busybox base, 4 x 300 files), each on a read-only loop device, unionfs over them with the stack's upper; umount undoes it all and waits for the loop devices to be released")
}

# ---- run ----
bench_run() {
	local root i cmds
	make_stack || { log "could not build the stack"; return; }
	LC umount five >/dev/null 2>&1
	root=$(LC bundle five "$WORK/bundle" -- /bin/true) || { log "bundle failed"; return; }
	cmds=(
		"layerctl run=$LAYERCTL --store $STORE run five -- /bin/true"
		"bwrap=bwrap --bind $root / --proc /proc --dev /dev --unshare-pid --unshare-uts --unshare-ipc --unshare-net --hostname five /bin/true"
		"unshare chroot=unshare -fmuipn --mount-proc chroot $root /bin/true"
		"runc run=runc run -b $WORK/bundle layerctl-bench-$$"
	)
	[ -n "$BASELINE" ] && cmds+=("layerctl run (baseline)=$BASELINE --store $STORE run five -- /bin/true")
	for ((i = 0; i < ROUNDS; i++)); do
		log "run round $((i + 1))/$ROUNDS"
		mapfile -t order < <(rotate "$i" $(seq 0 $((${#cmds[@]} - 1))))
		local ordered=()
		for k in "${order[@]}"; do ordered+=("${cmds[$k]}"); done
		hyperfine_round run "$WORK/r.json" "${ordered[@]}"
	done
	LC umount five >/dev/null
	NOTES+=("run: a layerctl process used to spend ~4.5 ms loading libarchive (with libxml2, ICU, libstdc++) and libcrypto before main(); they are now loaded on first use (import, export), which is most of the difference to the baseline row")
	NOTES+=("run: /bin/true on the mounted 5-layer stack; every tool gets new mount, PID, UTS, IPC and network namespaces; layerctl also builds /dev (tmpfs, devpts, shm), mounts sysfs ro, pivots, brings lo up and takes the store lock and the stack's in-use lock; bwrap gets --proc and --dev; runc uses layerctl bundle's config.json")
}

for step in $STEPS; do
	case $step in
	import) bench_import ;;
	mount) bench_mount ;;
	run) bench_run ;;
	*) log "unknown step $step" ;;
	esac
done

# ---- report ----
table=$(python3 - "$SAMPLES" <<'PY'
import statistics, sys
from collections import OrderedDict
rows = OrderedDict()
for line in open(sys.argv[1]):
    step, tool, v = line.rstrip("\n").split("\t")
    rows.setdefault(step, OrderedDict()).setdefault(tool, [])
    if v != "fail":
        rows[step][tool].append(float(v))
ref = {"import": "tar+mke2fs", "run": "bwrap"}
target = {("import", "layerctl"): ("<= 1x tar+mke2fs", 1.0), ("run", "layerctl run"): ("<= 2x bwrap", 2.0)}
def fmt(s):
    return f"{s:.2f} s" if s >= 1 else f"{s * 1000:.1f} ms"
print("| step | tool | median | min | samples | vs reference | target |")
print("|---|---|---|---|---|---|---|")
for step, tools in rows.items():
    base = statistics.median(tools[ref[step]]) if step in ref and tools.get(ref[step]) else None
    for tool, v in tools.items():
        if not v:
            print(f"| {step} | {tool} | fail | | 0 | | |")
            continue
        m = statistics.median(v)
        rel = f"{m / base:.2f}x {ref[step]}" if base else ""
        t = target.get((step, tool))
        tgt = ""
        if t and base:
            tgt = f"{t[0]}: {'met' if m / base <= t[1] else 'NOT met'}"
        print(f"| {step} | {tool} | {fmt(m)} | {fmt(min(v))} | {len(v)} | {rel} | {tgt} |")
PY
)
{
	echo "# layerctl benchmark results"
	echo
	echo "Generated by \`bench/layerctl.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null),"
	echo "$(nproc) CPUs, kernel $(uname -r), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "$ROUNDS rounds, tools alternating (order rotated each round); import: one sample per tool"
	echo "and round; mount and run: hyperfine -N, $RUNS runs per tool and round after warm-up."
	echo "Medians of all samples. The machine is shared with other jobs: expect noise."
	[ -n "$BASELINE" ] && echo "\"(baseline)\" rows: $BASELINE${LAYERCTL_BENCH_BASELINE_NOTE:+ ($LAYERCTL_BENCH_BASELINE_NOTE)}."
	echo "Versions: $(hyperfine --version), $(bwrap --version), $(runc --version | head -n 1),"
	echo "$(unshare --version), $(mke2fs -V 2>&1 | head -n 1)."
	echo
	echo "$table"
	echo
	for n in "${NOTES[@]}"; do echo "- $n"; done
} >"$RESULTS"
cat "$RESULTS"
