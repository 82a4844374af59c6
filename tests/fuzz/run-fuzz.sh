#!/bin/sh
# Build the libFuzzer targets and run each for a while, seeded from the
# bad-file corpus and its valid files (tests/data/corpus/<loader>/ and
# .../good/).
#
#   tests/fuzz/run-fuzz.sh [seconds per target] [target ...]
#
# Targets: model checkpoint npy idx safetensors (default: all), 60 s each
# by default. The build goes to $DNG_FUZZ_BUILD (default build-fuzz in the
# source tree); new inputs go to <build>/fuzz-work/<target>/queue and
# crashes to <build>/fuzz-work/<target>/crash-*. A crash should become a
# regression file tests/data/corpus/<loader>/fuzz-<what>.<ext> once the
# loader is fixed. Exits 1 when any target crashed.
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-model checkpoint npy idx safetensors}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DNG_FUZZ_BUILD:-$root/build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_lundef=false
fi
names=""
for t in $targets; do
    names="$names tests/fuzz/fuzz-$t"
done
# One job: the targets are small, and the machine is shared.
ninja -C "$build" -j "${DNG_FUZZ_JOBS:-1}" $names

failed=""
for t in $targets; do
    work=$build/fuzz-work/$t
    mkdir -p "$work/queue"
    dict=""
    if [ -f "$root/tests/fuzz/$t.dict" ]; then
        dict="-dict=$root/tests/fuzz/$t.dict"
    fi
    echo "== fuzz-$t for $secs s"
    # Thread counts pinned to one: BLIS and OpenMP threads only slow a
    # fuzzer down. The inputs stay small (64 kB): every format here has
    # tiny valid files.
    if ! BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$build/tests/fuzz/fuzz-$t" -max_total_time="$secs" \
            -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$work/" $dict \
            "$work/queue" "$root/tests/data/corpus/$t" \
            "$root/tests/data/corpus/$t/good" 2>"$work/log"; then
        failed="$failed $t"
        echo "   CRASH: see $work/log and $work/crash-*"
    fi
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)" \
        "$work/log" | sed 's/^/   /' || true
done
if [ -n "$failed" ]; then
    echo "crashed:$failed"
    exit 1
fi
echo "no crash"
