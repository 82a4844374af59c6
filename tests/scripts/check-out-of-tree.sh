#!/bin/sh
# Out-of-tree builds: install the library into a temporary DESTDIR, then
# build every C example, the C++ example and the Rust crate against that
# installation only (its dnngen.pc through pkg-config, its libdnngen.so at
# run time) and run each briefly, as a user of the installed library
# would. Nothing is taken from the source or build tree but the example
# sources.
#
#   check-out-of-tree.sh BUILD_DIR SOURCE_DIR
#
# Runs that need Fashion-MNIST are skipped, with a message, when its
# folder ($DNG_FASHION_MNIST, by default /usr/share/datasets/fashion-mnist)
# lacks the training images. The Rust part needs cargo
# and rustc (Debian: apt-get install cargo rustc) and fails without them.
set -eu

build=$(cd "${1:?usage: check-out-of-tree.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: check-out-of-tree.sh BUILD_DIR SOURCE_DIR}" && pwd)
data=${DNG_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnngen-oot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Small, repeatable runs on a shared machine.
export BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# ---- install ---------------------------------------------------------------
dest=$tmp/dest
meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"
    echo "FAIL: meson install --destdir failed"
    exit 1
}
pc=$(find "$dest" -name dnngen.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no dnngen.pc under the DESTDIR"; exit 1; }

# Only the DESTDIR's dnngen.pc is visible (PKG_CONFIG_LIBDIR replaces the
# default search path, so a copy installed on the system cannot answer),
# and the sysroot puts the DESTDIR in front of its -I and -L paths.
unset PKG_CONFIG_PATH
export PKG_CONFIG_LIBDIR="${pc%/*}"
export PKG_CONFIG_SYSROOT_DIR="$dest"
cflags=$(pkg-config --cflags dnngen)
libs=$(pkg-config --libs dnngen)
libdir=$(pkg-config --libs-only-L dnngen | sed 's/^ *-L//; s/ *$//')
incdir=$(pkg-config --cflags-only-I dnngen | sed 's/^ *-I//; s/ *$//')
echo "pkg-config: dnngen $(pkg-config --modversion dnngen): $cflags $libs"
case "$libdir" in
    "$dest"/*) ;;
    *) echo "FAIL: pkg-config's library dir '$libdir' is outside the DESTDIR"; exit 1 ;;
esac
for h in dnngen.h dnngen-version.h; do
    [ -f "$incdir/$h" ] || fail "$h is not installed in $incdir"
done
[ -e "$libdir/libdnngen.so" ] || fail "no libdnngen.so in $libdir"
export LD_LIBRARY_PATH="$libdir"

# A program must load the DESTDIR's library, not one from the system.
check_loads_destdir() {
    if ! ldd "$1" | grep 'libdnngen\.so' | grep -q "$dest"; then
        fail "$(basename "$1") does not load libdnngen from the DESTDIR:"
        ldd "$1" | grep libdnngen || true
    fi
}

have_data=1
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    have_data=0
    echo "SKIP: $data is missing: runs that need Fashion-MNIST are skipped" \
         "(apt-get install dataset-fashion-mnist)"
fi

# ---- C examples ------------------------------------------------------------
mkdir -p "$tmp/bin"
cc=${CC:-cc}
for f in "$src"/examples/*.c; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .c)
    exe=$tmp/bin/$name
    # shellcheck disable=SC2086 # the pkg-config flags are word lists
    if ! $cc -Wall -Wextra -Werror $cflags "$f" -o "$exe" $libs -lm; then
        fail "$name.c does not build against the installed library"
        continue
    fi
    check_loads_destdir "$exe"
    case $name in
        fashion-gan)
            if [ $have_data = 0 ]; then
                echo "skip run: $name (no data)"
            elif "$exe" --model mlp --steps 5 --limit 256 --batch 32 \
                    --threads 1 --quiet --data "$data" --out "$tmp/g.pgm" &&
                 head -c 2 "$tmp/g.pgm" | grep -q P5; then
                echo "ok: $name"
            else
                fail "$name run"
            fi
            ;;
        fashion-classifier)
            if [ $have_data = 0 ]; then
                echo "skip run: $name (no data)"
            elif "$exe" --limit 1000 --epochs 1 --threads 1 --data "$data" \
                    >"$tmp/cls.out" &&
                 grep -Eq '^test_accuracy=0\.[0-9]{4}$' "$tmp/cls.out"; then
                echo "ok: $name ($(tail -n 1 "$tmp/cls.out"))"
            else
                cat "$tmp/cls.out"
                fail "$name run"
            fi
            ;;
        hello-tensor)
            if "$exe" >"$tmp/hello.out"; then
                echo "ok: $name"
            else
                cat "$tmp/hello.out"
                fail "$name run"
            fi
            ;;
        *)
            echo "built only: $name (no short run known for it)"
            ;;
    esac
done

# ---- C++ example -----------------------------------------------------------
cxx=${CXX:-g++}
if ! command -v "$cxx" >/dev/null 2>&1; then
    fail "no C++ compiler ($cxx) for examples/cpp/train.cpp"
else
    exe=$tmp/bin/train-cpp
    # shellcheck disable=SC2086
    if $cxx -std=c++17 -Wall -Wextra -pedantic -Werror $cflags \
            "$src/examples/cpp/train.cpp" -o "$exe" $libs; then
        check_loads_destdir "$exe"
        if "$exe"; then
            echo "ok: train-cpp"
        else
            fail "train-cpp run"
        fi
    else
        fail "examples/cpp/train.cpp does not build against the installed library"
    fi
fi

# ---- Rust crate --------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
    fail "cargo/rustc not found: the Rust crate was not checked (Debian: apt-get install cargo rustc)"
else
    # A copy of the crate, so that neither Cargo.lock nor target/ lands in
    # the source tree.
    mkdir -p "$tmp/rust"
    (cd "$src/examples/rust" && tar cf - --exclude=./target --exclude=./Cargo.lock .) |
        (cd "$tmp/rust" && tar xf -)
    export CARGO_TARGET_DIR="$tmp/cargo-target"
    export DNNGEN_RPATH=0
    if (cd "$tmp/rust" && cargo build --offline --quiet --all-targets); then
        if (cd "$tmp/rust" && cargo test --offline --quiet -- --test-threads=1); then
            echo "ok: rust crate tests"
        else
            fail "cargo test"
        fi
        exe=$CARGO_TARGET_DIR/debug/examples/mlp_gan
        check_loads_destdir "$exe"
        if [ $have_data = 0 ]; then
            echo "skip run: mlp_gan (no data)"
        elif "$exe" --steps 5 --limit 256 --batch 32 --report 5 \
                --data "$data" --out "$tmp/rust-g.pgm" &&
             head -c 2 "$tmp/rust-g.pgm" | grep -q P5; then
            echo "ok: mlp_gan"
        else
            fail "mlp_gan run"
        fi
    else
        fail "the Rust crate does not build against the installed library"
    fi
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "ok: every example builds and runs against the installed library"
