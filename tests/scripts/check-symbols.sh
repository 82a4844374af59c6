#!/bin/sh
# check-symbols.sh LIBRARY MAPFILE
#
# The ABI check (libinput's symbols-leak-test, in spirit): the dynamic
# symbols the shared library defines must be exactly the names listed in
# the linker version script, and every one must carry the dng_ prefix.
# A symbol declared in the map but not defined (a module not written yet)
# fails as surely as a leaked internal one.
#
# It also checks that the README and .ci/run agree: .ci/run must run the
# README's test command verbatim, and install every package the README
# tells a newcomer to install (the README's command and CI cannot drift).
set -eu

lib=${1:?usage: check-symbols.sh LIBRARY MAPFILE}
map=${2:?usage: check-symbols.sh LIBRARY MAPFILE}
srcroot=$(cd "$(dirname "$map")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

command -v nm >/dev/null || { echo "nm not found (binutils)"; exit 1; }
[ -f "$lib" ] || { echo "no library at $lib"; exit 1; }

# Version nodes of the script (DNGEN_0.1 ...) show up as absolute symbols.
nodes=$(sed -n 's/^[[:space:]]*\(DNGEN_[0-9A-Za-z_.]*\)[[:space:]]*{.*/\1/p' \
    "$map")
[ -n "$nodes" ] || { echo "no version node found in $map"; exit 1; }

# Names between "global:" and "local:" in the map, one per line.
awk '
    /\/\*/ { incomment = 1 }
    incomment { if ($0 ~ /\*\//) incomment = 0; next }
    /global:/ { g = 1; next }
    /local:/ { g = 0; next }
    g { gsub(/[;[:space:]]/, ""); if ($0 != "") print }
' "$map" | sort -u >"$tmp/map"

# Defined dynamic symbols, without their @@VERSION suffix, without the
# version node names.
nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' |
    sort -u >"$tmp/all"
printf '%s\n' "$nodes" | sort -u >"$tmp/nodes"
comm -23 "$tmp/all" "$tmp/nodes" >"$tmp/so"

comm -13 "$tmp/so" "$tmp/map" >"$tmp/missing"
comm -23 "$tmp/so" "$tmp/map" >"$tmp/extra"
grep -v '^dng_' "$tmp/so" >"$tmp/unprefixed" || true
grep -v '^dng_' "$tmp/map" >"$tmp/badmap" || true
# Every exported name is also declared in the public header.
: >"$tmp/undeclared"
hdr="$srcroot/include/dnngen.h"
if [ -f "$hdr" ]; then
    while read -r s; do
        grep -q "[^A-Za-z0-9_]$s(" "$hdr" || echo "$s" >>"$tmp/undeclared"
    done <"$tmp/so"
fi

report() { # file, headline
    if [ -s "$1" ]; then
        echo "$2"
        sed 's/^/  /' "$1"
        status=1
    fi
}
report "$tmp/missing" "In $(basename "$map") but not defined by the library:"
report "$tmp/extra" "Exported by the library but not in $(basename "$map"):"
report "$tmp/unprefixed" "Exported without the dng_ prefix:"
report "$tmp/badmap" "Listed in $(basename "$map") without the dng_ prefix:"
report "$tmp/undeclared" "Exported but not declared in include/dnngen.h:"
n=$(wc -l <"$tmp/so")
echo "symbols: $n exported, $(wc -l <"$tmp/map") in the version script"

# ---- README and .ci/run agree ---------------------------------------------
readme="$srcroot/README.md"
ci="$srcroot/.ci/run"
if [ -f "$readme" ] && [ -f "$ci" ]; then
    # .ci/run holds the test command in one line: TEST_CMD='...'
    cmd=$(sed -n "s/^TEST_CMD='\(.*\)'\$/\1/p" "$ci")
    if [ -z "$cmd" ]; then
        echo ".ci/run has no TEST_CMD='...' line"
        status=1
    elif ! grep -qxF "$cmd" "$readme"; then
        echo "README.md does not show .ci/run's test command on a line" \
             "of its own: $cmd"
        status=1
    else
        echo "README test command matches .ci/run: $cmd"
    fi
    # The packages of the README's first command (apt-get install -y ...
    # && meson setup ...) must all be installed by .ci/run.
    pkgs=$(grep -m1 '^apt-get install -y ' "$readme" |
        sed 's/^apt-get install -y //; s/ &&.*//')
    if [ -z "$pkgs" ]; then
        echo "README.md has no 'apt-get install -y ... &&' command"
        status=1
    fi
    # .ci/run lists its packages one per line inside packages=( ... ).
    sed -n '/^packages=(/,/^)/p' "$ci" | sed '1d;$d' | tr -d ' \t' \
        >"$tmp/ci-packages"
    for p in $pkgs; do
        grep -qxF -- "$p" "$tmp/ci-packages" ||
            { echo ".ci/run does not install README's package $p"; status=1; }
    done
fi
# The README's C program is doc/snippets/readme.c, which the docs suite
# compiles and runs: the text must show that file exactly.
snippet="$srcroot/doc/snippets/readme.c"
if [ -f "$readme" ] && [ -f "$snippet" ]; then
    awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on' "$readme" \
        >"$tmp/readme.c"
    if cmp -s "$tmp/readme.c" "$snippet"; then
        echo "README's C program is doc/snippets/readme.c"
    else
        echo "README's C program differs from doc/snippets/readme.c:"
        diff "$snippet" "$tmp/readme.c" | head -n 20
        status=1
    fi
fi

exit $status
