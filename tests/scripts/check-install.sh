#!/bin/sh
# check-install.sh BUILD_DIR SOURCE_DIR
#
# What an installation gives a user: `meson install` into a temporary
# DESTDIR, then
# - the shared library's links libdnngen.so -> .so.0 -> .so.X.Y.Z and its
#   SONAME libdnngen.so.0;
# - both headers, and dnngen.pc with the project's version and -lblis and
#   -lm in Libs.private;
# - examples/hello-tensor.c copied out of the tree and compiled with
#   nothing but `pkg-config --cflags --libs dnngen` pointed at the DESTDIR
#   (PKG_CONFIG_SYSROOT_DIR rewrites the installed prefix; --define-prefix
#   cannot, with Debian's multiarch lib/<triplet>/pkgconfig), run against
#   the installed library, and its output checked.
set -eu

build=$(cd "${1:?usage: check-install.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: check-install.sh BUILD_DIR SOURCE_DIR}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnngen-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
CC=${CC:-cc}
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Paths and version as this build directory configured them.
opts=$(meson introspect --buildoptions --projectinfo "$build" |
    /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
o = {x["name"]: x["value"] for x in d["buildoptions"]}
print(o["prefix"], o["libdir"], o["includedir"], d["projectinfo"]["version"])
')
# shellcheck disable=SC2086 # four words, split on purpose
set -- $opts
prefix=$1
libdir=$2
includedir=$3
version=$4
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
case $includedir in /*) ;; *) includedir=$prefix/$includedir ;; esac
major=${version%%.*}
echo "installing $version to DESTDIR $dest (prefix $prefix)"

meson install -C "$build" --no-rebuild --quiet --destdir "$dest" \
    >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"
    echo "FAIL: meson install --destdir failed"
    exit 1
}
lib=$dest$libdir
inc=$dest$includedir

# ---- library files, links and SONAME ---------------------------------------
if [ ! -f "$lib/libdnngen.so.$version" ] ||
    [ -L "$lib/libdnngen.so.$version" ]; then
    fail "no regular file $lib/libdnngen.so.$version"
fi
[ "$(readlink "$lib/libdnngen.so.$major" 2>/dev/null)" = \
    "libdnngen.so.$version" ] ||
    fail "libdnngen.so.$major does not link to libdnngen.so.$version"
[ "$(readlink "$lib/libdnngen.so" 2>/dev/null)" = "libdnngen.so.$major" ] ||
    fail "libdnngen.so does not link to libdnngen.so.$major"
soname=$(readelf -d "$lib/libdnngen.so.$version" 2>/dev/null |
    sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = "libdnngen.so.$major" ] ||
    fail "SONAME is '$soname', expected libdnngen.so.$major"
echo "library: libdnngen.so -> .so.$major -> .so.$version, SONAME $soname"

# ---- headers and pkg-config file --------------------------------------------
for h in dnngen.h dnngen-version.h; do
    [ -f "$inc/$h" ] || fail "header $h not installed in $includedir"
done
pc=$lib/pkgconfig/dnngen.pc
if [ -f "$pc" ]; then
    grep -q "^Version: $version\$" "$pc" || fail "dnngen.pc: no 'Version: $version'"
    private=$(sed -n 's/^Libs\.private: *//p' "$pc")
    for l in -lblis -lm; do
        case " $private " in
        *" $l "*) ;;
        *) fail "dnngen.pc: Libs.private '$private' lacks $l" ;;
        esac
    done
    echo "dnngen.pc: Libs.private: $private"
else
    fail "no $pc"
fi

# ---- an outside program ------------------------------------------------------
mkdir "$tmp/app"
cp "$src/examples/hello-tensor.c" "$tmp/app/"
flags=$(PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_LIBDIR=$lib/pkgconfig \
    PKG_CONFIG_SYSROOT_DIR=$dest pkg-config --cflags --libs dnngen) || {
    fail "pkg-config does not find dnngen"
    flags=
}
echo "pkg-config --cflags --libs dnngen: $flags"
case $flags in
*"-I$inc"*"-L$lib"*) ;;
*) fail "pkg-config flags do not point into the DESTDIR" ;;
esac
# The program uses libm itself (tanh); the library's own dependencies come
# through its DT_NEEDED entries.
# shellcheck disable=SC2086
if (cd "$tmp/app" && $CC -std=c11 -Wall -Wextra -Werror hello-tensor.c \
        $flags -lm -o hello-tensor) 2>"$tmp/cc.log"; then
    # An ASan build's library needs its runtime loaded first.
    asan=$(ldd "$lib/libdnngen.so" | awk '/libasan/ { print $3 }')
    where=$(LD_LIBRARY_PATH=$lib ldd "$tmp/app/hello-tensor" |
        awk '/libdnngen/ { print $3 }')
    case $where in
    "$lib"/*) ;;
    *) fail "hello-tensor would load libdnngen from '$where'" ;;
    esac
    if out=$(LD_LIBRARY_PATH=$lib LD_PRELOAD=$asan \
            "$tmp/app/hello-tensor" 2>&1); then
        printf '%s\n' "$out" | sed 's/^/  | /'
        first=$(printf '%s\n' "$out" | head -n 1)
        [ "$first" = "libdnngen $version (header $version)" ] ||
            fail "first line '$first'"
        printf '%s\n' "$out" | grep -q '^hand computation: match' ||
            fail "no 'hand computation: match'"
        printf '%s\n' "$out" |
            grep -q '^expected error: shape mismatch: dng_net_forward: ' ||
            fail "no clean 'expected error' line"
        [ "$(printf '%s\n' "$out" | tail -n 1)" = "done" ] ||
            fail "did not finish with 'done'"
    else
        printf '%s\n' "$out"
        fail "hello-tensor exited with an error"
    fi
else
    cat "$tmp/cc.log"
    fail "hello-tensor does not compile against the installed library"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "install OK"
