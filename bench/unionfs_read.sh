#!/bin/bash
# bench/unionfs_read.sh: the read side of unionfs (issue 3), against kernel
# overlayfs, fuse-overlayfs and unionfs-fuse on the same three branches.
# Run by bench/run (which sets BENCH_OUT and tabulates); each measurement is
# interleaved across the tools, BENCH_REPS times, every step under timeout.
#
# Rows:
#   walk_warm   find MNT -ls, after one untimed walk on the same mount
#   walk_cold   find MNT -ls on a fresh mount after drop_caches
#   read_small  read every file under MNT/tree, one process, after a warm-up
#   seq_read    read a lower BIG file already in the page cache (the mount's
#               own cache of it dropped first), 1 MiB reads, MiB/s
#   seq_reread  right after, the same read again: what keep_cache gives
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init
bench_data

suite_begin read "Read side (issue 3)"
row_def walk_warm "warm walk: find -ls" s lower le:1.5
row_def walk_cold "cold walk: find -ls, fresh mount + drop_caches" s lower le:3
row_def read_small "read all $BENCH_FILES small files (warm)" s lower -
row_def seq_read "seq read of a $BENCH_BIG_MB MiB lower file in page cache" MiB/s higher ge:0.7
row_def seq_reread "seq re-read of it (the mount's own cache warm)" MiB/s higher -

read -r -a TOOLS <<<"$BENCH_TOOLS"
declare -A LIVE=() AVAIL=()

# revive TOOL: after a failed or timed-out step, start it afresh
revive() {
	tool_umount "$(mnt_of "$1")" force || true
	if tool_mount "$1"; then LIVE[$1]=1; else unset 'LIVE[$1]'; fi
}

# step ID TOOL REP CMD...: one measured step; records seconds or a failure
step() {
	local id=$1 tool=$2 rep=$3 rc=0
	shift 3
	if [ -z "${LIVE[$tool]:-}" ]; then
		if [ -n "${AVAIL[$tool]:-}" ]; then
			sample "$id" "$tool" "$rep" fail
		else
			sample "$id" "$tool" "$rep" n/a
		fi
		return 1
	fi
	timed "$BENCH_TIMEOUT" "$@" || rc=$?
	if [ $rc = 0 ]; then
		STEP_T=$T
		sample "$id" "$tool" "$rep" "$T"
		return 0
	fi
	local what=fail
	[ $rc = 124 ] || [ $rc = 137 ] && what=timeout
	sample "$id" "$tool" "$rep" "$what"
	log "$tool: $id rep $rep: $what (rc=$rc) $(head -c 300 "$BENCH_OUT/last.err" | tr '\n' ' ')"
	note "- $tool: $id rep $rep: $what (exit $rc) $(head -c 200 "$BENCH_OUT/last.err" | tr '\n' ' ')"
	revive "$tool"
	return 1
}

# ---- mount everything, check what each one shows ----
for t in "${TOOLS[@]}"; do
	if ! tool_available "$t"; then
		log "$t: not available"
		case $t in
		unionfs) note "- unionfs: $BUILD/unionfs not built: n/a" ;;
		*) note "- $t: not installed: n/a" ;;
		esac
		continue
	fi
	# a tool that does not mount at all shows n/a; one that fails later, "fail"
	if tool_mount "$t"; then
		AVAIL[$t]=1 LIVE[$t]=1
	else
		note "- $t: mount failed, n/a: $(head -c 200 "$BENCH_OUT/mount-$t.err" | tr '\n' ' ')"
	fi
done
[ -n "${LIVE[overlay]:-}" ] || log "warning: kernel overlayfs did not mount: no ratios"

log "sanity: what each mount shows (untimed, also warms the mounts)"
note ""
note "What each mount shows (entries from \`find\`; files and bytes read under tree/):"
note ""
for t in "${TOOLS[@]}"; do
	[ -n "${LIVE[$t]:-}" ] || continue
	mp=$(mnt_of "$t")
	n=$(timeout -k 5 "$BENCH_TIMEOUT" find "$mp" 2>/dev/null | wc -l)
	fb=$(timeout -k 5 "$BENCH_TIMEOUT" "$BENCHTOOL" readall "$mp/tree" 2>"$BENCH_OUT/last.err") || fb="failed: $(head -c 200 "$BENCH_OUT/last.err")"
	timeout -k 5 "$BENCH_TIMEOUT" find "$mp" -ls >/dev/null 2>&1
	log "  $t: $n entries; files bytes: $fb"
	if [[ $fb =~ ^([0-9]+)\ ([0-9]+)$ ]]; then
		note "- $t: $n entries; ${BASH_REMATCH[1]} files, ${BASH_REMATCH[2]} bytes"
	else
		note "- $t: $n entries; reading the files $fb"
	fi
done
case " $BENCH_TOOLS " in *" unionfs-fuse "*)
	note "- (unionfs-fuse does not know overlay whiteouts and opaque dirs: it shows more; that is fine for timing)" ;;
esac

# ---- warm walk ----
log "warm walk: find -ls"
for ((REP = 1; REP <= BENCH_REPS; REP++)); do
	for t in $(rotated "${TOOLS[@]}"); do
		step walk_warm "$t" $REP find "$(mnt_of "$t")" -ls
	done
done

# ---- read all small files ----
log "read all small files"
for ((REP = 1; REP <= BENCH_REPS; REP++)); do
	for t in $(rotated "${TOOLS[@]}"); do
		step read_small "$t" $REP "$BENCHTOOL" readall "$(mnt_of "$t")/tree"
	done
done

# ---- sequential read of a big lower file in the page cache ----
log "sequential read of $BIGFILE ($BENCH_BIG_MB MiB)"
bigsize=$(stat -c %s "$DATA/b2/$BIGFILE")
"$BENCHTOOL" seqread "$DATA/b2/$BIGFILE" >/dev/null
for t in "${TOOLS[@]}"; do # one untimed pass: the first read of a mount is an outlier
	[ -n "${LIVE[$t]:-}" ] && timeout -k 5 "$BENCH_TIMEOUT" "$BENCHTOOL" seqread "$(mnt_of "$t")/$BIGFILE" >/dev/null 2>&1
done
for ((REP = 1; REP <= BENCH_REPS; REP++)); do
	for t in $(rotated "${TOOLS[@]}"); do
		# the lower file in the page cache (re-read: cheap once it is)
		"$BENCHTOOL" seqread "$DATA/b2/$BIGFILE" >/dev/null
		mp=$(mnt_of "$t")
		if [ -n "${LIVE[$t]:-}" ] && [ "$t" != overlay ]; then
			# a FUSE mount has a page cache of its own: empty it, so the
			# data comes through the daemon. (Not on overlay: there it
			# would drop the lower file's pages.)
			timeout -k 2 30 "$BENCHTOOL" dropcache "$mp/$BIGFILE" 2>/dev/null
		fi
		for row in seq_read seq_reread; do
			if [ -z "${AVAIL[$t]:-}" ]; then
				sample $row "$t" $REP n/a
			elif [ -z "${LIVE[$t]:-}" ]; then
				sample $row "$t" $REP fail
			elif step ${row}_t "$t" $REP "$BENCHTOOL" seqread "$mp/$BIGFILE"; then
				sample $row "$t" $REP "$(awk -v b="$bigsize" -v t="$STEP_T" 'BEGIN { printf "%.1f", b / 1048576 / t }')"
			else
				sample $row "$t" $REP fail
			fi
		done
	done
done

# ---- cold walk: fresh mount, caches dropped ----
log "cold walk: remount + drop_caches + find -ls"
for ((REP = 1; REP <= BENCH_REPS; REP++)); do
	for t in $(rotated "${TOOLS[@]}"); do
		if [ -z "${AVAIL[$t]:-}" ]; then
			sample walk_cold "$t" $REP n/a
			continue
		fi
		tool_umount "$(mnt_of "$t")" || true
		drop_caches
		if tool_mount "$t"; then
			LIVE[$t]=1
			step walk_cold "$t" $REP find "$(mnt_of "$t")" -ls
		else
			unset 'LIVE[$t]'
			sample walk_cold "$t" $REP fail
		fi
	done
done
log "read suite done"
