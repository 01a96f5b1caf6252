# Shared by the integration tests: counters, checks, and cleanup that undoes
# exactly what a test set up (by path or pid), even when the test fails.
# Source it, then call t_begin; every test ends with t_summary.
set -u
: "${BUILD:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}"
UNIONFS=$BUILD/unionfs
LOOPIMG=$BUILD/loopimg
LAYERCTL=$BUILD/layerctl
T_PASS=0
T_FAIL=0
T_MOUNTS=()   # mount points to unmount, newest last
T_LOOPS=()    # loop devices to detach
T_PIDS=()     # processes to kill
T_DIRS=()     # scratch dirs to remove
T_FILES=()    # files a test installed outside its scratch dir

t_begin() {
	T_TMP=$(mktemp -d /tmp/ut.XXXXXX)
	T_DIRS+=("$T_TMP")
	trap t_cleanup EXIT
	trap 'exit 130' INT TERM
}

pass() { T_PASS=$((T_PASS + 1)); echo "ok   - $*"; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL - $*"; }

# check DESC CMD...: passes when CMD succeeds (bounded by STEP_TIMEOUT seconds).
check() {
	local desc=$1; shift
	if timeout -k 5 "${STEP_TIMEOUT:-60}" "$@"; then pass "$desc"; else fail "$desc"; fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [ "$2" == "$3" ]; then pass "$1"; else fail "$1 (expected '$2', got '$3')"; fi
}

# check_fails DESC CMD...: passes when CMD exits non-zero (and does not time out).
check_fails() {
	local desc=$1 rc; shift
	timeout -k 5 "${STEP_TIMEOUT:-60}" "$@"
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ]; then pass "$desc"; else fail "$desc (exit $rc)"; fi
}

# check_fn DESC FUNCTION ARGS...: check for shell functions (check runs
# programs only, under timeout; each function bounds its own steps).
check_fn() {
	local desc=$1; shift
	if "$@"; then pass "$desc"; else fail "$desc"; return 1; fi
}

# compare DESC EXPECTED_FILE ACTUAL_FILE: passes when the files are equal and
# the expectation is not empty; shows the start of the diff otherwise.
compare() {
	local desc=$1 exp=$2 got=$3
	if [ ! -s "$exp" ]; then
		fail "$desc (reference output is empty)"
	elif diff -u "$exp" "$got" >"$T_TMP/diff.out" 2>&1; then
		pass "$desc"
	else
		fail "$desc (diff expected→got below)"
		head -n 60 "$T_TMP/diff.out" | sed 's/^/    /'
	fi
}

# daemons_of DIR: "pid cmdline" of every unionfs process whose command line
# names a path under DIR (read from /proc: no procps needed).
daemons_of() {
	local p cmd
	for p in /proc/[0-9]*; do
		cmd=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		[[ "$cmd" == "$UNIONFS "*" $1/"* || "$cmd" == "$UNIONFS "*"=$1/"* ]] && echo "${p#/proc/} $cmd"
	done
	return 0
}

# Registers a mount point for unmounting at exit (lazy detach if busy).
t_track_mount() { T_MOUNTS+=("$1"); }
# Loop devices are recorded with their backing file and detached at exit only
# while they still have it: by then the number may be someone else's.
t_track_loop() {
	local back
	back=$(cat "/sys/block/${1#/dev/}/loop/backing_file" 2>/dev/null) || back=
	T_LOOPS+=("$1|$back")
}
t_track_pid() { T_PIDS+=("$1"); }
t_track_file() { T_FILES+=("$1"); }

is_mounted() { mountpoint -q "$1" 2>/dev/null; }

# Waits until PATH is a mount point (or TIMEOUT seconds pass).
wait_mounted() {
	local i
	for ((i = 0; i < ${2:-100}; i++)); do
		is_mounted "$1" && return 0
		sleep 0.1
	done
	return 1
}

# Unmounts one mount point we made: umount, then fusermount3, then lazy.
t_umount() {
	local m=$1
	is_mounted "$m" || return 0
	timeout 20 umount "$m" 2>/dev/null && return 0
	timeout 20 fusermount3 -u "$m" 2>/dev/null && return 0
	timeout 20 umount -l "$m" 2>/dev/null
}

# Mounts our unionfs at MNT with the given arguments; tracks it for cleanup.
# usage: mount_unionfs MNT ARGS...
mount_unionfs() {
	local mnt=$1; shift
	mkdir -p "$mnt"
	t_track_mount "$mnt"
	timeout -k 5 30 "$UNIONFS" "$@" "$mnt" || return 1
	wait_mounted "$mnt" 50
}

# Mounts the kernel's overlayfs at MNT; tracks it.  usage: mount_overlay MNT OPTIONS
mount_overlay() {
	mkdir -p "$1"
	t_track_mount "$1"
	timeout 30 mount -t overlay overlay -o "$2" "$1"
}

t_cleanup() {
	local i
	for ((i = ${#T_PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${T_PIDS[i]}" 2>/dev/null
	done
	for ((i = ${#T_MOUNTS[@]} - 1; i >= 0; i--)); do
		t_umount "${T_MOUNTS[i]}"
	done
	for ((i = ${#T_PIDS[@]} - 1; i >= 0; i--)); do
		kill -KILL "${T_PIDS[i]}" 2>/dev/null
	done
	for ((i = ${#T_LOOPS[@]} - 1; i >= 0; i--)); do
		local dev=${T_LOOPS[i]%%|*} back=${T_LOOPS[i]#*|} cur
		cur=$(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null) || continue
		cur=${cur% (deleted)} # a test may remove its image first
		[ -n "$back" ] && [ "$cur" = "$back" ] && losetup -d "$dev" 2>/dev/null
	done
	for ((i = ${#T_FILES[@]} - 1; i >= 0; i--)); do
		rm -f "${T_FILES[i]}"
	done
	for ((i = ${#T_DIRS[@]} - 1; i >= 0; i--)); do
		# Never remove through a mount that is still up.
		if ! grep -q " ${T_DIRS[i]}" /proc/mounts; then rm -rf "${T_DIRS[i]}"; fi
	done
}

t_summary() {
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
}
