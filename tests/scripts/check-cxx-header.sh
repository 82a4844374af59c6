#!/bin/sh
# check-cxx-header.sh SRC_INCLUDE_DIR BUILD_INCLUDE_DIR
#
# The public header must compile cleanly, warnings as errors, as C++11
# (inside extern "C", no C-only constructs) and as pedantic C11. When the
# built library sits beside the build's include directory, the C++
# program is also linked and run, which proves the names are not mangled.
set -eu

src_inc=${1:?usage: check-cxx-header.sh SRC_INCLUDE_DIR BUILD_INCLUDE_DIR}
build_inc=${2:?usage: check-cxx-header.sh SRC_INCLUDE_DIR BUILD_INCLUDE_DIR}
libdir=$(cd "$build_inc/.." && pwd)/lib
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CC=${CC:-gcc}
CXX=${CXX:-g++}

cat >"$tmp/tu.cpp" <<'EOF'
#include "dnngen.h"
#include "dnngen.h" /* include guards */

#include <cstdio>

static_assert(DNG_OK == 0, "success is 0");
static_assert(DNG_ERR_INVALID_ARGUMENT < 0, "errors are negative");
static_assert(DNG_VERSION == DNG_VERSION_MAJOR * 10000 +
                                 DNG_VERSION_MINOR * 100 + DNG_VERSION_PATCH,
              "version encoding");

static int on_epoch(const dng_fit_progress *p, void *user)
{
    return p->epoch > *static_cast<int *>(user);
}

int main()
{
    dng_fit_callback cb = on_epoch;
    dng_fit_options opts;
    const int64_t shape[2] = {2, 3};
    dng_tensor *t = dng_tensor_create(2, shape);
    dng_status s;
    if (!t || dng_version() != DNG_VERSION)
        return 1;
    dng_fit_options_default(&opts);
    s = dng_tensor_fill(t, 1.5f);
    std::printf("%s %s %lld %g %d\n", dng_version_string(),
                dng_status_string(s),
                static_cast<long long>(dng_tensor_numel(t)),
                static_cast<double>(dng_tensor_data(t)[5]),
                cb != nullptr && opts.size == sizeof opts);
    dng_tensor_destroy(t);
    return s == DNG_OK ? 0 : 1;
}
EOF

cat >"$tmp/tu.c" <<'EOF'
#include "dnngen.h"
#include "dnngen.h"

#include <stdio.h>

_Static_assert(DNG_OK == 0, "success is 0");
_Static_assert(DNG_MAX_DIMS == 8, "eight dimensions");

int main(void)
{
    dng_gan_stats st = {sizeof st, 0, 0, 0, 0, 0};
    dng_act a = DNG_ACT_GELU;
    dng_loss_kind l = DNG_LOSS_HINGE;
    printf("%d %d %d %zu\n", DNG_VERSION, (int)a, (int)l, st.size);
    return 0;
}
EOF

echo "C++11: $CXX -std=c++11 -Wall -Wextra -pedantic -Werror"
$CXX -std=c++11 -Wall -Wextra -pedantic -Werror -Wold-style-cast -Wundef \
    -I"$src_inc" -I"$build_inc" -c "$tmp/tu.cpp" -o "$tmp/tu-cxx.o"
echo "C11: $CC -std=c11 -Wall -Wextra -pedantic -Werror"
$CC -std=c11 -Wall -Wextra -pedantic -Werror -Wstrict-prototypes \
    -Wmissing-prototypes -Wshadow -Wundef \
    -I"$src_inc" -I"$build_inc" -c "$tmp/tu.c" -o "$tmp/tu-c.o"

if [ -e "$libdir/libdnngen.so" ]; then
    $CXX "$tmp/tu-cxx.o" -L"$libdir" -ldnngen -o "$tmp/tu-cxx"
    # An ASan build's library needs its runtime loaded first.
    asan=$(ldd "$libdir/libdnngen.so" | awk '/libasan/ { print $3 }')
    out=$(LD_LIBRARY_PATH="$libdir" LD_PRELOAD="$asan" "$tmp/tu-cxx")
    echo "C++ program printed: $out"
    case "$out" in
    *" success 6 1.5 1") ;;
    *) echo "unexpected output from the C++ program"; exit 1 ;;
    esac
fi
echo "header OK"
