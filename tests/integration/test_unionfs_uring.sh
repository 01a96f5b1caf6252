#!/bin/bash
# unionfs -o uring=on: FUSE requests through io_uring, one queue per CPU
# (Linux 6.14+, allowed by /sys/module/fuse/parameters/enable_uring, which
# this test sets for its run and restores). Proof that the queues carry the
# requests: the daemon holds one io_uring fd per CPU, and its /dev/fuse
# reads stay few while thousands of requests are answered. Then the same
# operations as elsewhere: reads, creates from two processes at once, a
# copy-up answered from the slow lane, four processes racing on the same
# names, the differential tester, unmount and kill -9. Without the kernel's consent the option changes nothing.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
t_begin
T() { timeout -k 5 "${STEP_TIMEOUT:-60}" "$@"; }
PARAM=/sys/module/fuse/parameters/enable_uring

if [ ! -w "$PARAM" ]; then
	echo "skip - the kernel has no FUSE over io_uring ($PARAM)"
	t_summary
	exit
fi
OLD=$(cat "$PARAM")
trap 'echo "$OLD" >"$PARAM"; t_cleanup' EXIT

D=$T_TMP/u
mkdir -p "$D/lower/sub" "$D/upper" "$D/work"
head -c 24M /dev/urandom >"$D/lower/big"
for i in $(seq 1 50); do echo "v$i" >"$D/lower/sub/f$i"; done
LOWER_SUM=$(cd "$D/lower" && find . -type f -exec sha256sum {} + | sort | sha256sum)
ncpu=$(($(sed 's/.*[-,]//' /sys/devices/system/cpu/possible) + 1))
uring_fds() { ls -l "/proc/$1/fd" 2>/dev/null | grep -c 'io_uring'; }
# read(2) calls of the daemon's main thread, which reads /dev/fuse (and spins on it
# after each request it gets there); with the queues up it only sees FORGETs.
dev_reads() { awk '/^syscr/ {print $2}' "/proc/$1/task/$1/io"; }
mount_u() { mount_unionfs "$D/mnt" -o "lowerdir=$D/lower,upperdir=$D/upper,workdir=$D/work${1:+,$1}"; }

# 1. Without the kernel's consent: -o uring=on mounts and works through /dev/fuse.
echo N >"$PARAM"
check_fn "mount -o uring=on while enable_uring=N" mount_u uring=on
PID=$(daemons_of "$D" | head -n 1 | cut -d" " -f1)
check_eq "it reads" "v7" "$(T cat "$D/mnt/sub/f7")"
check_eq "no io_uring queue" 0 "$(uring_fds "$PID")"
# The same race as in 5 below, through /dev/fuse: the session thread and the slow lane.
stress() {
	for d in 0 1 2 3; do mkdir -p "$D/mnt/d$d"; done
	# wait PID, not wait -n: a non-interactive shell forgets a job that ended before the
	# wait -n (127, "no unwaited-for children"), which made this fail at times.
	check "4 processes x 5 s of random operations on shared names ($1)" bash -c \
		"p=(); for s in 1 2 3 4; do python3 '$here/helpers/stress.py' '$D/mnt' \$s 5 & p+=(\$!); done; \
		 r=0; for j in \"\${p[@]}\"; do wait \$j || r=1; done; exit \$r"
	check "the daemon is still there ($1)" kill -0 "$PID"
}
stress "/dev/fuse"
t_umount "$D/mnt"
rm -rf "$D/upper" "$D/work" && mkdir -p "$D/upper" "$D/work"

# 2. With it: one queue per CPU, and they carry the requests.
echo Y >"$PARAM"
check_fn "mount -o uring=on with enable_uring=Y" mount_u uring=on
PID=$(daemons_of "$D" | head -n 1 | cut -d" " -f1)
check_eq "one io_uring per CPU ($ncpu)" "$ncpu" "$(uring_fds "$PID")"
before=$(dev_reads "$PID")
check "2000 stats and reads" sh -c "for i in \$(seq 1 40); do for f in '$D/mnt'/sub/f*; do cat \"\$f\" >/dev/null; done; done"
after=$(dev_reads "$PID")
check "the daemon's main thread made fewer than 100 reads meanwhile ($((after - before)))" \
	test $((after - before)) -lt 100

# 3. Creates from two processes at once (each on its own CPU's queue).
mk() { for i in $(seq "$2" 2 1000); do echo "$i" >"$D/mnt/new/$1$i" || return 1; done; }
mkdir "$D/mnt/new"
check "two processes create 500 files each" bash -c "$(declare -f mk); D='$D'; mk a 1 & mk b 2 & wait"
check_eq "1000 files, in the upper dir too" "1000 1000" \
	"$(ls "$D/mnt/new" | wc -l) $(ls "$D/upper/new" | wc -l)"
check_eq "their contents" "999 1000" "$(cat "$D/mnt/new/a999") $(cat "$D/mnt/new/b1000")"

# 4. A copy-up of a big file is answered from the slow lane, through the queue it came from.
check "append to the 24 MiB lower file (copy-up)" sh -c "printf x >>'$D/mnt/big'"
check_eq "the copy has the data and the byte" "$(($(stat -c %s "$D/lower/big") + 1))" \
	"$(stat -c %s "$D/upper/big")"
check "rename, unlink, xattr" sh -c "mv '$D/mnt/sub/f1' '$D/mnt/sub/g1' && rm '$D/mnt/sub/f2' && \
	setfattr -n user.k -v v '$D/mnt/sub/f3' && getfattr -n user.k '$D/mnt/sub/f3' >/dev/null"
check_eq "ls of the merged dir" "49 g1" "$(ls "$D/mnt/sub" | wc -l) $(ls "$D/mnt/sub" | grep g)"

# 5. Four processes at once, on both queues, racing on the same names for 5 s.
stress "io_uring"
check_eq "and answers" "999" "$(T cat "$D/mnt/new/a999")"

# 6. Unmount: the daemon and its queue threads exit.
t_umount "$D/mnt"
for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
check "the daemon exited within 10 s of the unmount" sh -c "! kill -0 $PID 2>/dev/null"

# 7. kill -9 with the queues live: the mount goes away cleanly, a new one works.
check_fn "mount again" mount_u uring=on
PID=$(daemons_of "$D" | head -n 1 | cut -d" " -f1)
kill -9 "$PID"
t_umount "$D/mnt"
check "no mount left after kill -9" sh -c "! mountpoint -q '$D/mnt'"
check_fn "mount after the kill" mount_u uring=on
check_eq "the upper dir is intact" "999" "$(T cat "$D/mnt/new/a999")"
t_umount "$D/mnt"
check_eq "the lower tree is untouched" "$LOWER_SUM" \
	"$(cd "$D/lower" && find . -type f -exec sha256sum {} + | sort | sha256sum)"

# 8. The differential tester against overlayfs, every request through the queues.
out=$(DIFFTEST_UNIONFS_OPTS=uring=on timeout -k 10 200 python3 "$here/helpers/difftest.py" \
	--build "$BUILD" --seeds "${UT_URING_SEEDS:-1-10}" --ops 150 2>&1)
echo "$out" | grep -E '^(ok|FAIL)' | sed 's/^/    /'
line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
check_eq "difftest with -o uring=on: no failure ($line)" 0 "$(echo "${line:-x failed}" | sed -E 's/.*, ([0-9x]+) failed/\1/')"
t_summary
