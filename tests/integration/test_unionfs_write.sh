#!/bin/bash
# unionfs write side against the kernel's overlayfs: the differential tester
# (helpers/difftest.py) over a fixed set of seeds. Each seed builds random
# lower trees, replays the same random operations on both mounts, compares
# every result and errno, the trees, the trees after a remount, the kernel's
# view of the upper dir unionfs wrote, and digests of the lower trees.
# A longer run: make fuzz-ops (SEEDS=1-500), or run difftest.py by hand:
#   python3 tests/integration/helpers/difftest.py --build build --seeds 7 --keep -v --minimize
#
# Parts of the generator that hit known unionfs bugs are left out with
# --without and each prints a skip line; UT_STRICT=1 keeps them all in.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SEEDS=${UT_SEEDS:-1-40}
OPS=${UT_OPS:-150}

# Known bugs (see the notes of issue 4): the generator part each one needs.
# None at present; an entry reads [generator-part]="what goes wrong".
declare -A KNOWN=()
without=""
if [ -z "${UT_STRICT:-}" ]; then
	for k in "${!KNOWN[@]}"; do
		echo "skip - difftest $k: known bug, see notes (${KNOWN[$k]})"
		without+="${without:+,}$k"
	done
fi
start=$(date +%s)
timeout -k 10 "${UT_WRITE_TIMEOUT:-170}" python3 "$here/helpers/difftest.py" --build "$BUILD" \
	--seeds "$SEEDS" --ops "$OPS" ${without:+--without "$without"}
rc=$?
echo "# difftest: seeds $SEEDS, $OPS ops each, $(($(date +%s) - start)) s"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "FAIL - difftest timed out"
	echo "0 passed, 1 failed"
	exit 1
fi
exit "$rc"
