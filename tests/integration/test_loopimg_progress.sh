#!/bin/bash
# loopimg's progress bar: pack, unpack, digest and verify draw one on a TTY
# (script(1) gives them one) and print nothing on a stderr that is not a TTY.
# No loop devices or mounts: plain image files only.
. "$(dirname "$0")/lib.sh"
t_begin
export STEP_TIMEOUT=60

SRC=$T_TMP/src
mkdir -p "$SRC/d"
head -c 3000000 /dev/urandom >"$SRC/d/random"
echo small >"$SRC/file"
ln -s file "$SRC/link"

# quiet DESC CMD...: CMD succeeds and writes nothing to its stderr, which is a file here.
quiet() {
	local desc=$1 rc; shift
	timeout -k 5 "$STEP_TIMEOUT" "$@" >/dev/null 2>"$T_TMP/stderr"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$desc (exit $rc)"
	elif [ -s "$T_TMP/stderr" ]; then
		fail "$desc (stderr: $(head -c 200 "$T_TMP/stderr" | od -c | head -n 3))"
	else
		pass "$desc"
	fi
}

check "pack" "$LOOPIMG" pack "$SRC" "$T_TMP/a.img"
quiet "pack: no progress when stderr is not a TTY" "$LOOPIMG" pack -f "$SRC" "$T_TMP/a.img"
quiet "unpack: no progress when stderr is not a TTY" "$LOOPIMG" unpack "$T_TMP/a.img" "$T_TMP/un1"
quiet "digest: no progress when stderr is not a TTY" "$LOOPIMG" digest "$T_TMP/a.img"
D=$("$LOOPIMG" digest "$T_TMP/a.img" | cut -d' ' -f1)
quiet "verify: no progress when stderr is not a TTY" "$LOOPIMG" verify "$T_TMP/a.img" "$D"

if ! command -v script >/dev/null; then
	echo "skip - script(1) missing: the bar on a TTY is not checked"
	t_summary
	exit
fi

# on_tty OUT CMD: runs CMD (one shell string) with a pseudo-terminal for its
# stdin, stdout and stderr; OUT receives everything it wrote. Exit status is CMD's.
on_tty() {
	local out=$1; shift
	timeout -k 5 "$STEP_TIMEOUT" script -qec "$1" /dev/null </dev/null >"$out"
}

# bar DESC OUT LABEL: OUT holds a final bar for LABEL at 100%, drawn in place with '\r'.
bar() {
	if grep -aq $'\r'"$3 \[#\{20\}\] 100%" "$2"; then
		pass "$1"
	else
		fail "$1 (output: $(head -c 300 "$2" | od -c | head -n 4))"
	fi
}

check_fn "pack on a TTY" on_tty "$T_TMP/pack.out" "'$LOOPIMG' pack '$SRC' '$T_TMP/b.img'"
bar "pack draws a bar on a TTY" "$T_TMP/pack.out" pack
check_fn "unpack on a TTY" on_tty "$T_TMP/unpack.out" "'$LOOPIMG' unpack '$T_TMP/a.img' '$T_TMP/un2'"
bar "unpack draws a bar on a TTY" "$T_TMP/unpack.out" unpack
check "unpack on a TTY gives the same tree" diff -r "$T_TMP/un1" "$T_TMP/un2"
check_fn "digest on a TTY" on_tty "$T_TMP/digest.out" "'$LOOPIMG' digest '$T_TMP/a.img'"
bar "digest draws a bar on a TTY" "$T_TMP/digest.out" digest
check_fn "verify on a TTY" on_tty "$T_TMP/verify.out" "'$LOOPIMG' verify '$T_TMP/a.img' $D"
bar "verify draws a bar on a TTY" "$T_TMP/verify.out" verify
t_summary
