#!/bin/sh
# Train on a dataset larger than it is wise to load: generate float32
# x [N, 784] and labels y [N] as .npy files of SIZE_GB gigabytes (written
# in chunks, so the generator's memory stays small), then train an MLP with
# dng_fit for one epoch over the memory-mapped files
# (tests/bench/bigdata-train.c) and report throughput and peak resident
# memory, which must stay below 20% of the file's size.
#
#   tests/bench/bigdata.sh BUILD_DIR [SIZE_GB [MAX_ROWS [BATCH [THREADS]]]]
#
# SIZE_GB defaults to 4 (may be fractional); MAX_ROWS (default 0: all)
# bounds the epoch to that many random rows. The files go to $BIGDATA_DIR
# (default: a fresh folder under /var/tmp) and are removed afterwards
# unless KEEP=1. The data: class c uniform in 0..9, features uniform in
# [0, 0.2) plus 1 at feature c.
set -eu
build=${1:?usage: bigdata.sh BUILD_DIR [SIZE_GB [MAX_ROWS [BATCH [THREADS]]]]}
gb=${2:-4}
max_rows=${3:-0}
batch=${4:-256}
threads=${5:-1}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$build" && pwd)
dir=${BIGDATA_DIR:-$(mktemp -d /var/tmp/dng-bigdata-XXXXXX)}
mkdir -p "$dir"

cleanup() {
    if [ "${KEEP:-0}" != 1 ]; then
        rm -f "$dir/x.npy" "$dir/y.npy" "$dir/bigdata-train"
        rmdir "$dir" 2>/dev/null || true
    fi
}
trap cleanup EXIT

echo "== generating ${gb} GB in $dir"
/usr/bin/python3 - "$dir" "$gb" <<'EOF'
import os, sys, time
import numpy as np
from numpy.lib import format as npf

folder, gb = sys.argv[1], float(sys.argv[2])
d = 784
n = int(gb * 1e9) // (4 * d)
t0 = time.time()
rng = np.random.default_rng(1)
chunk = 16384
with open(os.path.join(folder, "x.npy"), "wb") as fx, \
        open(os.path.join(folder, "y.npy"), "wb") as fy:
    npf.write_array_header_1_0(fx, {"descr": "<f4", "fortran_order": False,
                                    "shape": (n, d)})
    npf.write_array_header_1_0(fy, {"descr": "<f4", "fortran_order": False,
                                    "shape": (n,)})
    for at in range(0, n, chunk):
        m = min(chunk, n - at)
        c = rng.integers(0, 10, m)
        x = rng.random((m, d), dtype=np.float32) * np.float32(0.2)
        x[np.arange(m), c] += 1
        fx.write(x.tobytes())
        fy.write(c.astype("<f4").tobytes())
print("rows=%d generate_seconds=%.1f" % (n, time.time() - t0))
EOF
ls -l "$dir"

echo "== building bigdata-train"
cc -O2 -I"$root/include" -I"$build/include" \
    "$root/tests/bench/bigdata-train.c" -L"$build/lib" -ldnngen \
    -Wl,-rpath,"$build/lib" -o "$dir/bigdata-train"

echo "== training (max_rows=$max_rows batch=$batch threads=$threads)"
BLIS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads \
    /usr/bin/time -v "$dir/bigdata-train" "$dir/x.npy" "$dir/y.npy" \
    "$max_rows" "$batch" "$threads" 2>"$dir/time.log" || status=$?
grep -E "Maximum resident set size|Elapsed \(wall|Major|Minor" \
    "$dir/time.log" | sed 's/^\t*/time: /'
rm -f "$dir/time.log"
exit "${status:-0}"
