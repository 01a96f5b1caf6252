#!/bin/bash
# layerctl against a real store, real loop devices and real mounts: import of a
# directory and of tarballs with whiteouts (the merged tree compared with the
# kernel's overlayfs over the same layer images), mount/umount without leaks,
# run (status, PID 1, hostname, 126/127), commit, and hostile tarballs.
. "$(dirname "$0")/lib.sh"
t_begin
STORE=$T_TMP/store
# LC ARGS...: layerctl on the test's store (a script, so that check's timeout can run it).
printf '#!/bin/sh\nexec timeout -k 5 60 "%s" --store "%s" "$@"\n' "$LAYERCTL" "$STORE" >"$T_TMP/lc"
chmod +x "$T_TMP/lc"
LCX=$T_TMP/lc
LC() { "$LCX" "$@"; }

# Undo a stack mount left by a failing step: layerctl first, then by path.
lc_cleanup() {
	local s
	for s in $(ls "$STORE/run" 2>/dev/null | sed -n 's/\.json$//p'); do
		LC umount "$s" >/dev/null 2>&1
	done
	for s in "$STORE"/run/*/root "$STORE"/run/*/l* "$STORE"/run/*/tmp; do
		[ -d "$s" ] && t_umount "$s"
	done
	t_cleanup
}
trap lc_cleanup EXIT

if [ ! -x /bin/busybox ]; then
	echo "skip - test_layerctl: /bin/busybox missing (scripts/install-deps installs busybox-static)"
	t_summary
	exit
fi

# The kernel's view of things, for leak checks: loop devices backed by our store, mounts in it.
leaks() { { losetup -a | grep -F "$STORE"; grep -F "$STORE" /proc/mounts; } | sort; }

mkbase() {
	local d=$1 a
	mkdir -p "$d"/{bin,etc,proc,dev,sys,tmp,root}
	cp /bin/busybox "$d/bin/busybox"
	for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$d/bin/$a"; done
	echo "root:x:0:0:root:/root:/bin/sh" >"$d/etc/passwd"
	echo "base" >"$d/etc/release"
}

# A listing that says what the merged tree holds: path, type, mode, size, link, content hash.
tree_of() {
	[ -d "$1" ] || { echo "no dir $1"; return; }
	(cd "$1" && find . -mindepth 1 -not -path './lost+found*' -printf '%p %y %m %s %l\n' | sort &&
		find . -type f -not -path './lost+found*' -exec md5sum {} + | sort -k2)
}

# libarchive and libcrypto (with libxml2, ICU, libstdc++) load on first use, not at start-up:
# they doubled the start-up time of every command, run included.
check "layerctl does not load libarchive or libcrypto at start-up" \
	sh -c "! ldd '$LAYERCTL' | grep -E 'libarchive|libcrypto'"

# ---- import ----
mkbase "$T_TMP/base"
base=$(LC import --name base "$T_TMP/base")
check "import dir prints an id" test "${#base}" -eq 32
check_eq "the id is the image's digest" "$base" \
	"$(xxh128sum "$STORE/layers/$base.img" 2>/dev/null | cut -c1-32 || echo "$base")"
again=$(LC import "$T_TMP/base")
check_eq "importing the same tree gives the same id" "$base" "$again"
check "layers lists it" sh -c "'$LAYERCTL' --store '$STORE' layers | grep -q '^$base  base'"
check "layers --json is JSON" sh -c "'$LAYERCTL' --store '$STORE' layers --json | python3 -m json.tool >/dev/null"
check "inspect by name" sh -c "'$LAYERCTL' --store '$STORE' inspect base | grep -q '\"parent\":null'"
check "fsck" "$LCX" fsck

# Tarballs with OCI/aufs whiteouts: .wh.NAME and .wh..wh..opq.
L=$T_TMP/tl
mkdir -p "$L"/1/{a,b/c,d,e} "$L"/2/{a,d,e}
echo one >"$L/1/a/f"; echo two >"$L/1/a/g"; echo three >"$L/1/b/c/h"; echo old >"$L/1/d/old"
ln "$L/1/a/f" "$L/1/a/hard"; ln -s ../a/f "$L/1/e/sym"; mkfifo "$L/1/e/fifo"
touch "$L/2/a/.wh.g" "$L/2/.wh.b" "$L/2/d/.wh..wh..opq"
echo new >"$L/2/d/new"; echo over >"$L/2/e/sym2"
tar -C "$L/1" -czf "$L/1.tgz" .
tar -C "$L/2" --zstd -cf "$L/2.tar.zst" .
tar -C "$L/2" -cJf "$L/2.txz" .
l1=$(LC import "$L/1.tgz")
l2=$(LC import --name top "$L/2.tar.zst")
check "import gzip tar" test "${#l1}" -eq 32
check "import zstd tar" test "${#l2}" -eq 32
check_eq "xz tar of the same tree gives the same layer" "$l2" "$(LC import "$L/2.txz")"
# A tarball with entries for its files only: the dirs it implies get the epoch, not now.
python3 - "$L/nodirs.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    for name in ("d1/d2/f", "d1/g", "h"):
        i = tarfile.TarInfo(name); i.size = 2; i.mtime = 1700000000
        t.addfile(i, io.BytesIO(b"x\n"))
PY
nd1=$(LC import "$L/nodirs.tar")
sleep 1.1
check_eq "a tarball without dir entries gives the same layer a second later" "$nd1" \
	"$(LC import "$L/nodirs.tar")"
# Tarballs are extracted on a tmpfs in a private mount namespace; without CAP_SYS_ADMIN, on disk.
out=$(timeout 60 setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin \
	"$LAYERCTL" -v -v --store "$T_TMP/store-disk" import "$L/1.tgz" 2>"$T_TMP/disk.err")
check "import without CAP_SYS_ADMIN extracts to disk" grep -q "extracting to disk" "$T_TMP/disk.err"
check_eq "the tmpfs scratch and the disk give the same layer" "$l1" "$out"

# The same two tarballs as an OCI image layout: the same layers, digests checked.
mkoci() { # mkoci DIR TARBALL:MEDIATYPE...
	python3 - "$@" <<'PY'
import hashlib, json, os, shutil, sys
out = sys.argv[1]
os.makedirs(out + "/blobs/sha256")
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{h}", "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
layers = []
for arg in sys.argv[2:]:
    path, media = arg.split(":")
    layers.append(dict(mediaType=media, **blob(open(path, "rb").read())))
config = blob(json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": []}}).encode())
manifest = blob(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **config),
    "layers": layers}).encode())
json.dump({"schemaVersion": 2, "manifests": [dict(
    mediaType="application/vnd.oci.image.manifest.v1+json",
    annotations={"org.opencontainers.image.ref.name": "t"}, **manifest)]},
    open(out + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(out + "/oci-layout", "w"))
PY
}
mkoci "$T_TMP/oci" "$L/1.tgz:application/vnd.oci.image.layer.v1.tar+gzip" \
	"$L/2.tar.zst:application/vnd.oci.image.layer.v1.tar+zstd"
out=$(LC import "$T_TMP/oci")
check_eq "OCI layout: one layer per OCI layer, the same as from the tarballs" "$l1 $l2" "$(echo $out)"
if command -v skopeo >/dev/null; then
	check "skopeo copies our layout" skopeo copy --quiet "oci:$T_TMP/oci:t" "oci:$T_TMP/oci2:t"
	out=$(LC import "$T_TMP/oci2")
	check_eq "OCI layout written by skopeo: the same layers" "$l1 $l2" "$(echo $out)"
else
	echo "skip - skopeo: not installed"
fi
cp -r "$T_TMP/oci" "$T_TMP/oci-bad"
blob=$(ls -S "$T_TMP/oci-bad/blobs/sha256" | head -1)
chmod u+w "$T_TMP/oci-bad/blobs/sha256/$blob"
printf 'X' | dd of="$T_TMP/oci-bad/blobs/sha256/$blob" bs=1 seek=100 conv=notrunc 2>/dev/null
check_fails "OCI layout: a blob whose sha256 does not match is refused" "$LCX" import "$T_TMP/oci-bad"

before=$(leaks)
check "create" "$LCX" create tw "$l1" "$l2"
check_fails "create refuses an existing name" "$LCX" create tw "$l1"
check_fails "create refuses an unknown layer" "$LCX" create tw2 nosuchlayer
root=$(LC mount tw)
check "mount prints the rootfs path only" test -d "$root"
t_track_mount "$root"
check "a whiteout hides a.g" test ! -e "$root/a/g"
check "a whiteout hides dir b" test ! -e "$root/b"
check "an opaque dir hides d/old" test ! -e "$root/d/old"
check_eq "hard link content" "one" "$(cat "$root/a/hard" 2>/dev/null)"
# The kernel's overlayfs over the very layer images layerctl mounted.
mount_overlay "$T_TMP/k" "lowerdir=$STORE/run/tw/l1:$STORE/run/tw/l0"
check_eq "merged tree equals the kernel's overlayfs" "$(tree_of "$T_TMP/k")" "$(tree_of "$root")"
t_umount "$T_TMP/k"
check_fails "mount refuses a mounted stack" "$LCX" mount tw
check "stacks shows it mounted" sh -c "'$LAYERCTL' --store '$STORE' stacks | grep -q '^tw .*$root'"
check "umount" "$LCX" umount tw
check_eq "no loop device or mount left" "$before" "$(leaks)"
check_fails "umount of an unmounted stack fails" "$LCX" umount tw

# ---- export ----
check "export a layer as an OCI layer tar" "$LCX" export "$l2" --tar "$T_TMP/l2.tar"
check_eq "the layer tar has OCI whiteouts and no lost+found" \
	"./ .wh.b a/ a/.wh.g d/ d/.wh..wh..opq d/new e/ e/sym2" \
	"$(tar tf "$T_TMP/l2.tar" | sort | tr '\n' ' ' | sed 's/ $//')"
check "export a stack as an OCI image layout" "$LCX" export tw --oci "$T_TMP/oci-out"
if command -v skopeo >/dev/null; then
	check "skopeo reads the exported layout" sh -c "skopeo inspect 'oci:$T_TMP/oci-out:tw' >/dev/null"
fi
out=$(timeout 60 "$LAYERCTL" --store "$T_TMP/store2" import "$T_TMP/oci-out")
check_eq "export --oci, then import: the same layers" "$l1 $l2" "$(echo $out)"
root=$(LC mount tw)
check "export the merged tree as a directory" "$LCX" export tw --dir "$T_TMP/tree"
check_eq "the exported directory equals the merged tree" "$(tree_of "$root")" "$(tree_of "$T_TMP/tree")"
check "export the merged tree as a tar" "$LCX" export tw --tar "$T_TMP/tree.tar"
check_eq "the merged tar lists the merged tree" \
	"$(cd "$root" && find . -mindepth 1 -not -path './lost+found*' | sed 's|^\./||' | sort)" \
	"$(tar tf "$T_TMP/tree.tar" | sed 's|/$||' | grep -v '^\.$' | sort)"
check "umount" "$LCX" umount tw
check_eq "no leak after export" "$before" "$(leaks)"

# A mount killed before it recorded its state: umount finds the leftovers, mount clears them.
root=$(LC mount tw) && rm "$STORE/run/tw.json"
check "mount after a killed mount clears the leftovers" sh -c "'$LCX' mount tw >/dev/null"
rm "$STORE/run/tw.json"
check "umount without a state file" "$LCX" umount tw
check_eq "no leak after a killed mount" "$before" "$(leaks)"
check_fails "a stack name cannot leave the store" "$LCX" mount ../tw

# A failing mount (the top layer's image is gone) leaks nothing.
check "rm refuses a layer in use" sh -c "! '$LAYERCTL' --store '$STORE' rm top 2>/dev/null"
check "rm --force" "$LCX" rm --force top
check_fails "mount with a missing layer fails" "$LCX" mount tw
check_eq "no leak after a failed mount" "$before" "$(leaks)"
check "rm-stack" "$LCX" rm-stack tw

# ---- run ----
check "create a busybox stack" "$LCX" create demo "$base"
out=$(LC run --hostname box demo -- /bin/sh -c 'echo $$ $(hostname) $(cat /etc/release)')
check_eq "run: PID 1, hostname, merged view" "1 box base" "$out"
LC run demo -- /bin/sh -c 'exit 42'
check_eq "run: the command's exit status" 42 $?
LC run demo -- /no/such/cmd 2>/dev/null
check_eq "run: 127 for a missing command" 127 $?
LC run demo -- /etc/passwd 2>/dev/null
check_eq "run: 126 for a non-executable" 126 $?
LC run nostack -- true 2>/dev/null
check_eq "run: 125 for a missing stack" 125 $?
out=$(LC run --env A=1 --env A=2 --workdir /etc demo -- /bin/sh -c 'echo $A $(pwd)')
check_eq "run: --env (last wins), --workdir" "2 /etc" "$out"
mkdir -p "$T_TMP/share" && echo shared >"$T_TMP/share/f"
out=$(LC run --bind "$T_TMP/share:/tmp:ro" demo -- /bin/sh -c 'cat /tmp/f; touch /tmp/x 2>&1 || echo ro')
check_eq "run: --bind SRC:DST:ro" "shared ro" "$(echo $out | sed 's/touch.*ro/ro/')"
out=$(LC run demo -- /bin/sh -c 'ls /proc/1 >/dev/null && ls /dev/null /dev/pts/ptmx && grep -q "^sysfs /sys sysfs ro," /proc/mounts && echo sys-ro')
check_eq "run: /proc, /dev, read-only /sys" "/dev/null /dev/pts/ptmx sys-ro" "$(echo $out)"
out=$(LC run demo -- /bin/sh -c 'ip -o link | cut -d" " -f2')
check_eq "run: a private network namespace by default" "lo:" "$out"
out=$(LC run demo -- /bin/sh -c 'ip -o link show lo | grep -q "<LOOPBACK,UP" && ping -c1 -W5 127.0.0.1 >/dev/null && echo up')
check_eq "run: lo is up in the new network namespace, 127.0.0.1 answers" "up" "$out"
check_eq "run: no mount points left in the upper dir" "" "$(find "$STORE/stacks/demo/upper" -mindepth 1 2>&1)"
check_eq "run: no leak" "$before" "$(leaks)"
check "run on a mounted stack keeps it mounted" sh -c "
	r=\$('$LAYERCTL' --store '$STORE' mount demo) &&
	'$LAYERCTL' --store '$STORE' run demo -- true && mountpoint -q \"\$r\" &&
	'$LAYERCTL' --store '$STORE' umount demo"
# ---- a running stack is in use ----
# lc_bg NAP ARGS...: layerctl run ARGS -- /bin/sleep NAP in the background; prints layerctl's pid.
lc_bg() {
	local nap=$1 i p; shift
	"$LCX" run "$@" -- /bin/sleep "$nap" >/dev/null 2>&1 &
	for i in $(seq 100); do pgrep -x -f "/bin/sleep $nap" >/dev/null && break; sleep 0.1; done
	p=$(pgrep -P $! -x layerctl)
	echo "${p:-none}"
}
# lc_wake NAP: kills that sleep; its layerctl then ends.
lc_wake() { pkill -KILL -x -f "/bin/sleep $1"; }
lc_wait() { local i; for i in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
napa=$((5000 + RANDOM % 1000)); napb=$((6000 + RANDOM % 1000)); napc=$((7000 + RANDOM % 1000))
pa=$(lc_bg $napa demo)
check_eq "in use: rm-stack refuses, naming the run's pid" \
	"layerctl: rm-stack: stack demo is in use by pid $pa (layerctl run) 125" \
	"$("$LCX" rm-stack demo 2>&1 | tr -d '\n'; echo " ${PIPESTATUS[0]}")"
errs=$("$LCX" commit demo 2>&1; "$LCX" umount demo 2>&1; "$LCX" rm --force "$base" 2>&1)
check_eq "in use: commit, umount and rm --force of its layer refuse too" \
	"commit: stack demo is in use by pid $pa|umount: stack demo is in use by pid $pa|rm: stack demo is in use by pid $pa|" \
	"$(echo "$errs" | sed -n 's/^layerctl: \(.*\) (layerctl run)$/\1/p' | tr '\n' '|')"
check "in use: the stack and its layer are still there" sh -c "'$LCX' inspect '$base' >/dev/null && test -f '$STORE/stacks/demo.json'"
pb=$(lc_bg $napb demo)
check "a second run of the same stack runs alongside the first" test "$pb" != none
pc=$(lc_bg $napc --tmp demo)
out=$(LC run --tmp demo -- /bin/sh -c 'echo t >/root/t; cat /root/t /etc/release')
check_eq "runs --tmp of the same stack run alongside each other and the others" "t base" "$(echo $out)"
check_eq "run --tmp: a private mount; the stack's own upper untouched" "" "$(find "$STORE/stacks/demo/upper" -mindepth 1 2>&1)"
lc_wake $napa; lc_wait "$pa"
check "the first run out leaves the mount to the second" mountpoint -q "$STORE/run/demo/root"
check_fails "in use by the second run: rm-stack still refuses" "$LCX" rm-stack demo
lc_wake $napb; lc_wait "$pb"
check "the last run out unmounts the stack it mounted" test ! -e "$STORE/run/demo.json"
check_fails "in use by a run --tmp: rm-stack refuses" "$LCX" rm-stack demo
kill -KILL "$pc"; lc_wait "$pc"
check "a killed run --tmp leaves its private mount" test -e "$STORE/run/demo@$pc.json"
check "gc undoes a killed run --tmp's private mount" "$LCX" gc
check_eq "no leak after concurrent runs and gc" "$before" "$(leaks)"
check_eq "run/ holds nothing but lock files" "demo.lock" "$(ls "$STORE/run")"

# A sleep with an argument no other process has, found by that argument alone.
nap=$((3000 + RANDOM % 1000))
LC run demo -- /bin/sleep "$nap" &
lpid=$!
cpid=
for i in $(seq 50); do cpid=$(pgrep -x -f "/bin/sleep $nap") && break; sleep 0.1; done
[ -n "$cpid" ] && [ "$cpid" -gt 1 ] && kill -KILL "$cpid"
wait $lpid
check_eq "run: 128+signal when the command is killed" 137 $?
check_eq "run: no leak after a killed command" "$before" "$(leaks)"

out=$(LC run --init demo -- /bin/sh -c 'echo $$; exit 3')
check_eq "run --init: CMD is not PID 1" 2 "$out"
LC run --init demo -- /bin/sh -c 'exit 3'
check_eq "run --init: CMD's status" 3 $?
"$LCX" run --init demo -- /bin/sleep "$nap" &
lpid=$!
for i in $(seq 50); do pgrep -x -f "/bin/sleep $nap" >/dev/null && break; sleep 0.1; done
lcpid=$(pgrep -P "$lpid" -x layerctl)
[ -n "$lcpid" ] && kill -TERM "$lcpid"
wait $lpid
check_eq "run --init: SIGTERM to layerctl reaches CMD (128+15)" 143 $?
check_eq "run: no leak after --init" "$before" "$(leaks)"

# ---- bundle: the mounted stack as the rootfs of runc ----
if command -v runc >/dev/null; then
	root=$(LC bundle demo "$T_TMP/bundle" -- /bin/sh -c 'echo $$ $(hostname) >/root/runc; exit 7')
	check "bundle writes config.json" test -s "$T_TMP/bundle/config.json"
	check "bundle mounts the stack" mountpoint -q "$root"
	timeout -k 5 60 runc run -b "$T_TMP/bundle" "layerctl-test-$$" >/dev/null 2>&1
	check_eq "runc runs the bundle; its exit status comes back" 7 $?
	check_eq "runc's command saw PID 1 and the stack's name" "1 demo" "$(cat "$root/root/runc" 2>&1)"
	rm -f "$root/root/runc"
	check "umount after bundle" "$LCX" umount demo
	check_eq "no leak after bundle" "$before" "$(leaks)"
else
	echo "skip - bundle with runc: runc not installed"
fi

# ---- crun and podman: where they can start a container on this host at all ----
# A trivial known-good bundle (busybox, /bin/true) in a plain directory, nothing of layerctl.
mkdir -p "$T_TMP/trivial/rootfs/bin"
cp /bin/busybox "$T_TMP/trivial/rootfs/bin/true"
if command -v crun >/dev/null; then
	(cd "$T_TMP/trivial" && crun spec >/dev/null 2>&1)
	python3 - "$T_TMP/trivial/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
json.dump(c, open(sys.argv[1], "w"))
PY
	why=$(timeout -k 5 30 crun run -b "$T_TMP/trivial" "layerctl-trivial-$$" 2>&1 </dev/null)
	rc=$?
	timeout 10 crun delete -f "layerctl-trivial-$$" >/dev/null 2>&1
	if [ "$rc" -ne 0 ]; then
		echo "skip - crun runs the bundle: crun $(crun --version | sed -n 's/^crun version //p') cannot start even a trivial container on this host (${why:-exit $rc})"
	else
		root=$(LC bundle demo "$T_TMP/cbundle" -- /bin/sh -c 'echo $$ $(hostname) >/root/crun; exit 9')
		timeout -k 5 60 crun run -b "$T_TMP/cbundle" "layerctl-crun-$$" >/dev/null 2>&1 </dev/null
		check_eq "crun runs the bundle; its exit status comes back" 9 $?
		timeout 10 crun delete -f "layerctl-crun-$$" >/dev/null 2>&1
		check_eq "crun's command saw PID 1 and the stack's name" "1 demo" "$(cat "$root/root/crun" 2>&1)"
		rm -f "$root/root/crun"
		check "umount after the crun bundle" "$LCX" umount demo
		check_eq "no leak after crun" "$before" "$(leaks)"
	fi
else
	echo "skip - crun runs the bundle: crun not installed"
fi
if command -v podman >/dev/null; then
	podman_run() { timeout -k 5 120 podman run --rm --runtime runc --cgroup-manager cgroupfs --network none "$@" </dev/null; }
	why=$(podman_run --rootfs "$T_TMP/trivial/rootfs" /bin/true 2>&1)
	if [ $? -ne 0 ]; then
		echo "skip - podman --rootfs: podman cannot start even a trivial container on this host ($(echo "$why" | tail -n 1))"
	else
		root=$(LC mount demo)
		podman_run --rootfs "$root" /bin/sh -c 'exit 6' >/dev/null 2>&1
		check_eq "podman --rootfs on the mounted stack; its exit status comes back" 6 $?
		check "umount after podman" "$LCX" umount demo
		check_eq "no leak after podman" "$before" "$(leaks)"
	fi
else
	echo "skip - podman --rootfs: podman not installed"
fi

# ---- commit ----
LC run demo -- /bin/sh -c 'echo data >/root/file; rm /etc/release; echo more >>/etc/passwd'
check "the write went to the upper dir" test -f "$STORE/stacks/demo/upper/root/file"
# unionfs's own xattrs (copy-up origins): in the upper, never in a committed layer.
internal_xattrs() { getfattr -R -h -d -m '^(trusted|user)\.unionfs\.' --absolute-names "$1" 2>/dev/null; }
check "copy-up left unionfs's internal xattrs in the upper" sh -c \
	"getfattr -R -h -d -m '^trusted\.unionfs\.' '$STORE/stacks/demo/upper' 2>/dev/null | grep -q unionfs"
c1=$(LC commit --name c1 demo)
root=$(LC mount demo)
check_eq "the committed layer carries no trusted/user.unionfs.* xattrs" "" \
	"$(internal_xattrs "$STORE/run/demo/l1")"
check_eq "the copied-up file is in the committed layer" "more" "$(tail -n 1 "$STORE/run/demo/l1/etc/passwd" 2>&1)"
check "umount" "$LCX" umount demo
check "commit prints a new id" test "${#c1}" -eq 32
check_eq "commit empties the upper" "" "$(find "$STORE/stacks/demo/upper" -mindepth 1 2>&1)"
check "commit records the parent" sh -c "'$LAYERCTL' --store '$STORE' inspect c1 | grep -q '\"parent\":\"$base\"'"
out=$(LC run demo -- /bin/sh -c 'cat /root/file; test -e /etc/release || echo gone')
check_eq "the committed layer is in the stack" "data gone" "$(echo $out)"
# A renamed lower dir is a redirect in the upper: commit keeps it, and the kernel follows it.
# The dir's contents come from two layers (with a whiteout in the second) before the rename.
LC run demo -- /bin/sh -c 'mkdir -p /tmp/x/sub && echo hi >/tmp/x/f && echo deep >/tmp/x/sub/d'
LC commit demo >/dev/null
LC run demo -- /bin/sh -c 'echo two >/tmp/x/f2 && rm /tmp/x/sub/d && echo e >/tmp/x/sub/e'
LC commit demo >/dev/null
LC run demo -- /bin/sh -c 'mv /tmp/x /tmp/y && echo added >/tmp/y/g'
root=$(LC mount demo)
tree_of "$root" >"$T_TMP/merged-before-commit"
check "umount" "$LCX" umount demo
check "commit of a renamed dir" sh -c "'$LCX' commit demo >/dev/null"
root=$(LC mount demo)
n=$(ls -d "$STORE"/run/demo/l* | wc -l)
lowers=$(for ((i = n - 1; i >= 0; i--)); do printf '%s:' "$STORE/run/demo/l$i"; done | sed 's/:$//')
mount_overlay "$T_TMP/kr" "lowerdir=$lowers,redirect_dir=follow"
check_eq "the kernel follows the committed redirect" "hi" "$(cat "$T_TMP/kr/tmp/y/f" 2>&1)"
check "the kernel hides the old name" test ! -e "$T_TMP/kr/tmp/x"
check_eq "the committed layer keeps the redirect xattr" "/tmp/x" \
	"$(getfattr -h --absolute-names --only-values -n trusted.overlay.redirect "$STORE/run/demo/l$((n - 1))/tmp/y" 2>&1)"
if [ "$(cat "$root/tmp/y/f" 2>/dev/null)" = hi ]; then
	pass "unionfs follows the committed redirect"
else
	echo "skip - unionfs follows the committed redirect: unionfs does not follow redirects in lower layers yet"
fi
t_umount "$T_TMP/kr"
tree_of "$root" >"$T_TMP/merged-after-commit"
compare "the merged view is the same after the commit" "$T_TMP/merged-before-commit" "$T_TMP/merged-after-commit"
check "umount" "$LCX" umount demo

# OCI has no redirects: the export materialises the renamed dir in the layer that renamed it.
# Unpacked layer by layer with OCI whiteout handling, the image is the merged view.
oci_unpack() { # oci_unpack LAYOUT DIR
	python3 - "$1" "$2" <<'PY'
import json, os, shutil, sys, tarfile
oci, out = sys.argv[1:3]
blob = lambda d: os.path.join(oci, "blobs", *d.split(":"))
manifest = json.load(open(blob(json.load(open(oci + "/index.json"))["manifests"][0]["digest"])))
def remove(p):
    if os.path.isdir(p) and not os.path.islink(p): shutil.rmtree(p)
    elif os.path.lexists(p): os.unlink(p)
os.makedirs(out)
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"])) as t:
        keep = []
        for m in t.getmembers():
            d, base = os.path.split(os.path.normpath(m.name))
            if base == ".wh..wh..opq":
                if os.path.isdir(os.path.join(out, d)):
                    for c in os.listdir(os.path.join(out, d)): remove(os.path.join(out, d, c))
            elif base.startswith(".wh."):
                remove(os.path.join(out, d, base[4:]))
            else:
                keep.append(m)
        for m in keep:
            p = os.path.join(out, os.path.normpath(m.name))
            if os.path.lexists(p) and not (m.isdir() and os.path.isdir(p)): remove(p)
        t.extractall(out, members=keep, numeric_owner=True)
PY
}
check "export --oci of a stack with a committed redirect" "$LCX" export demo --oci "$T_TMP/oci-redirect"
top_tar=$(python3 -c "import json,sys; d='$T_TMP/oci-redirect'; i=json.load(open(d+'/index.json'));
m=json.load(open(d+'/blobs/'+i['manifests'][0]['digest'].replace(':','/'))); print(d+'/blobs/'+m['layers'][-1]['digest'].replace(':','/'))")
check_eq "the renaming layer: the old name's whiteout, the new dir opaque with all it holds" \
	"./ tmp/ tmp/.wh.x tmp/y/ tmp/y/.wh..wh..opq tmp/y/f tmp/y/f2 tmp/y/g tmp/y/sub/ tmp/y/sub/e" \
	"$(tar tf "$top_tar" 2>&1 | sort | tr '\n' ' ' | sed 's/ $//')"
check_fn "unpack the OCI layers in order, with whiteouts" oci_unpack "$T_TMP/oci-redirect" "$T_TMP/unpacked"
tree_of "$T_TMP/unpacked" >"$T_TMP/unpacked-tree"
compare "the unpacked OCI image equals the merged view" "$T_TMP/merged-before-commit" "$T_TMP/unpacked-tree"
if command -v umoci >/dev/null; then
	check "umoci unpacks the exported image" sh -c \
		"umoci unpack --image '$T_TMP/oci-redirect:demo' '$T_TMP/umoci' >/dev/null 2>&1"
	tree_of "$T_TMP/umoci/rootfs" >"$T_TMP/umoci-tree"
	compare "umoci's rootfs equals the merged view" "$T_TMP/merged-before-commit" "$T_TMP/umoci-tree"
else
	echo "skip - umoci unpack of the exported image: umoci not installed"
fi
check_eq "no leak after export --oci with redirects" "$before" "$(leaks)"
check_eq "export leaves no temp dir" "" "$(ls -A "$STORE/tmp")"
check_fails "commit with nothing to commit" "$LCX" commit demo
out=$(LC run --tmp demo -- /bin/sh -c 'echo x >/root/tmpfile; cat /root/tmpfile')
check_eq "run --tmp writes" "x" "$out"
check_eq "run --tmp leaves the upper untouched" "" "$(find "$STORE/stacks/demo/upper" -mindepth 1 2>&1)"
check_eq "no leak after commit and --tmp" "$before" "$(leaks)"

# ---- kill -9 during import and commit leaves a consistent store ----
mkdir -p "$T_TMP/big"
for i in $(seq 40); do head -c 2M /dev/urandom >"$T_TMP/big/f$i"; done
tar -C "$T_TMP/big" -cf "$T_TMP/big.tar" .
for delay in 0.05 0.2 0.5; do
	"$LCX" import "$T_TMP/big.tar" >/dev/null 2>&1 &
	sleep $delay
	pkill -KILL -P $! 2>/dev/null; kill -KILL $! 2>/dev/null; wait $! 2>/dev/null
done
check "fsck after killed imports" "$LCX" fsck
check "gc after killed imports" "$LCX" gc
check_eq "gc leaves tmp empty" "" "$(ls -A "$STORE/tmp")"
check "every record has its image" sh -c "for j in '$STORE'/layers/*.json; do test -f \"\${j%.json}.img\" || exit 1; done"

# A commit killed at any point leaves the stack usable: every layer it names has its image.
for delay in 0.05 0.3; do
	LC run demo -- /bin/sh -c 'i=0; while [ $i -lt 30 ]; do head -c 1048576 /dev/urandom >/root/big$i; i=$((i+1)); done'
	"$LCX" commit demo >/dev/null 2>&1 &
	sleep $delay
	pkill -KILL -P $! 2>/dev/null; kill -KILL $! 2>/dev/null; wait $! 2>/dev/null
	"$LCX" umount demo >/dev/null 2>&1
done
check "stack usable after killed commits" "$LCX" run demo -- /bin/true
check "fsck after killed commits" "$LCX" fsck
check "the stack's layers all exist" sh -c "'$LAYERCTL' --store '$STORE' stacks --json |
	python3 -c 'import json,sys,os; [os.stat(\"$STORE/layers/\"+l+\".img\") for s in json.load(sys.stdin) for l in s[\"layers\"]]'"
check_eq "no leak after killed commits" "$before" "$(leaks)"
# A commit killed while packing leaves its temp image for gc (by design): clear
# it, so that the check below sees only what the imports leave.
check "gc after killed commits" "$LCX" gc

# ---- hostile tarballs ----
python3 - "$T_TMP/evil" "$T_TMP" <<'PY'
import io, os, sys, tarfile
d, tmp = sys.argv[1], sys.argv[2]
os.makedirs(d)
def add(t, name, type=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name); ti.type = type; ti.linkname = link
    ti.size = 1 if type == tarfile.REGTYPE else 0
    t.addfile(ti, io.BytesIO(b"x") if type == tarfile.REGTYPE else None)
def tar(name, *entries):
    with tarfile.open(os.path.join(d, name), "w") as t:
        for e in entries: add(t, *e)
tar("dotdot.tar", ("../../escape-dotdot",))
tar("abs.tar", (tmp + "/escape-abs",))
tar("link.tar", ("l", tarfile.SYMTYPE, tmp), ("l/escape-link",))
tar("rel.tar", ("l", tarfile.SYMTYPE, "../../../../../.."), ("l" + tmp + "/escape-rel",))
tar("hard.tar", ("h", tarfile.LNKTYPE, "../../../../etc/passwd"))
PY
for f in dotdot link rel hard; do
	check_fails "hostile tarball refused: $f" "$LCX" import "$T_TMP/evil/$f.tar"
done
abs=$(LC import "$T_TMP/evil/abs.tar")
check "absolute names are made relative" test "${#abs}" -eq 32
check_eq "nothing written outside" "" "$(find "$T_TMP" / -maxdepth 1 -name 'escape-*' 2>/dev/null)"
check_eq "no temp dir left behind" "" "$(ls "$STORE/tmp")"
check "gc" "$LCX" gc
check "rm-stack demo" "$LCX" rm-stack demo
t_summary
