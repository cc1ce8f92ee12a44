#!/usr/bin/env bash
# install.sh — `make install` as a user of the library meets it: install into a
# temporary PREFIX, build the README's library example (examples/softmax.c) from
# a folder outside the source tree with `cc prog.c $(pkg-config --cflags --libs
# nabla)`, run it, link it again against libnabla.a with `pkg-config --static`,
# check a DESTDIR staging install, then uninstall and check nothing is left.
# Usage: tests/install.sh  (BUILD=build-x picks the build folder; default build)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/prefix
export NABLA_THREADS=${NABLA_THREADS:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# The program must find the library through what pkg-config gave it, not the caller's environment.
unset LD_LIBRARY_PATH LIBRARY_PATH CPATH C_INCLUDE_PATH PKG_CONFIG_PATH
. "$ROOT/tests/lib.sh"
# check NAME CMD...: one test, passed when CMD exits 0; its output is shown when it fails.
check() {
    local name=$1; shift
    if "$@" >"$TMP/out" 2>&1; then ok "$name"; else bad "$name" "command: $*" "$(tail -20 "$TMP/out")"; fi
}
pc() { PKG_CONFIG_PATH=$1/lib/pkgconfig pkg-config "${@:2}" nabla; }
# left DIR: the files and links an install left under DIR (folders do not count).
left() { find "$1" \( -type f -o -type l \) | sort; }
# accuracy_line FILE: the softmax example printed one epoch line with a plausible accuracy.
accuracy_line() {
    local acc
    acc=$(sed -n 's/^epoch 1: test accuracy \(0\.[0-9]\{4\}\)$/\1/p' "$1")
    [[ -n $acc ]] && awk -v a="$acc" 'BEGIN { exit !(a > 0.7) }'
}

# --- install into PREFIX ------------------------------------------------------

if ! make -C "$ROOT" --no-print-directory BUILD="$BUILD" install PREFIX="$PREFIX" >"$TMP/make.log" 2>&1; then
    bad "make install PREFIX=$PREFIX" "$(tail -20 "$TMP/make.log")"
    summary
    exit 1
fi
ok "make install PREFIX=$PREFIX"

expect_files="$PREFIX/bin/nabla
$PREFIX/include/nabla.h
$PREFIX/lib/libnabla.a
$PREFIX/lib/libnabla.so
$PREFIX/lib/libnabla.so.0
$PREFIX/lib/libnabla.so.0.1.0
$PREFIX/lib/pkgconfig/nabla.pc"
if [[ $(left "$PREFIX") == "$expect_files" ]]; then ok "installed files"; else
    bad "installed files" "expected:" "$expect_files" "got:" "$(left "$PREFIX")"; fi

if [[ $(readlink "$PREFIX/lib/libnabla.so") == libnabla.so.0 &&
      $(readlink "$PREFIX/lib/libnabla.so.0") == libnabla.so.0.1.0 && ! -L $PREFIX/lib/libnabla.so.0.1.0 ]]; then
    ok "libnabla.so -> libnabla.so.0 -> libnabla.so.0.1.0"
else
    bad "libnabla.so -> libnabla.so.0 -> libnabla.so.0.1.0" "$(ls -l "$PREFIX/lib")"
fi
soname=$(readelf -d "$PREFIX/lib/libnabla.so.0.1.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [[ $soname == libnabla.so.0 ]]; then ok "soname libnabla.so.0"; else bad "soname libnabla.so.0" "got '$soname'"; fi

# The .pc names the prefix installed into, even though `make` wrote it for /usr/local first.
if [[ $(pc "$PREFIX" --variable=prefix) == "$PREFIX" ]]; then ok "nabla.pc prefix"; else
    bad "nabla.pc prefix" "$(cat "$PREFIX/lib/pkgconfig/nabla.pc")"; fi
if pc "$PREFIX" --libs | grep -q -- "-Wl,-rpath,$PREFIX/lib"; then ok "nabla.pc rpath"; else
    bad "nabla.pc rpath" "pkg-config --libs: $(pc "$PREFIX" --libs)"; fi

check "installed nabla --help" "$PREFIX/bin/nabla" --help

# --- the README's example, built outside the tree against the installed copy ----

mkdir -p "$TMP/user"
cp "$ROOT/examples/softmax.c" "$TMP/user/prog.c"
cd "$TMP/user" || exit 1
if cc prog.c -o softmax $(pc "$PREFIX" --cflags --libs) >"$TMP/cc.log" 2>&1; then
    ok "cc prog.c \$(pkg-config --cflags --libs nabla)"
    lib=$(ldd ./softmax | sed -n 's/^[[:space:]]*libnabla\.so\.0 => \([^ ]*\).*/\1/p')
    if [[ $lib == "$PREFIX/lib/libnabla.so.0" ]]; then ok "shared: loads libnabla.so.0 from PREFIX/lib"; else
        bad "shared: loads libnabla.so.0 from PREFIX/lib" "$(ldd ./softmax)"; fi
    if ./softmax >run.out 2>&1 && accuracy_line run.out; then ok "shared: ./softmax trains one epoch"; else
        bad "shared: ./softmax trains one epoch" "$(tail -5 run.out)"; fi
else
    bad "cc prog.c \$(pkg-config --cflags --libs nabla)" "$(tail -20 "$TMP/cc.log")"
fi

# Static: libnabla.a by name (-l:libnabla.a, since -lnabla picks the .so when both
# exist), the rest from `pkg-config --static`, whose Libs.private and
# Requires.private must name everything libnabla.a needs. Without them the link
# must fail, or this test would prove nothing.
static_libs=$(pc "$PREFIX" --static --cflags --libs | sed 's/-lnabla\b/-l:libnabla.a/')
shared_libs=$(pc "$PREFIX" --cflags --libs | sed 's/-lnabla\b/-l:libnabla.a/')
if cc prog.c -o softmax-static $static_libs >"$TMP/cc.log" 2>&1; then
    ok "cc prog.c \$(pkg-config --static --cflags --libs nabla)"
    if readelf -d softmax-static | grep -q 'NEEDED.*libnabla'; then
        bad "static: no libnabla.so needed" "$(readelf -d softmax-static | grep NEEDED)"
    else ok "static: no libnabla.so needed"; fi
    if ./softmax-static >run.out 2>&1 && accuracy_line run.out; then ok "static: ./softmax-static trains one epoch"; else
        bad "static: ./softmax-static trains one epoch" "$(tail -5 run.out)"; fi
else
    bad "cc prog.c \$(pkg-config --static --cflags --libs nabla)" "$(tail -20 "$TMP/cc.log")"
fi
if cc prog.c -o softmax-bad $shared_libs >/dev/null 2>&1; then
    bad "libnabla.a alone does not link without Libs.private" "linked with: $shared_libs"
else ok "libnabla.a alone does not link without Libs.private"; fi
cd "$ROOT" || exit 1

# --- a staged install (DESTDIR) for another prefix -------------------------------

STAGE=$TMP/stage
check "make install DESTDIR=STAGE PREFIX=/opt/nabla" \
    make -C "$ROOT" --no-print-directory BUILD="$BUILD" install DESTDIR="$STAGE" PREFIX=/opt/nabla
if [[ -f $STAGE/opt/nabla/lib/pkgconfig/nabla.pc ]] &&
   grep -qx 'prefix=/opt/nabla' "$STAGE/opt/nabla/lib/pkgconfig/nabla.pc" &&
   grep -qF -- '-Wl,-rpath,${libdir}' "$STAGE/opt/nabla/lib/pkgconfig/nabla.pc"; then
    ok "DESTDIR: nabla.pc names /opt/nabla, not the staging folder"
else
    bad "DESTDIR: nabla.pc names /opt/nabla, not the staging folder" "$(cat "$STAGE/opt/nabla/lib/pkgconfig/nabla.pc" 2>&1)"
fi
check "make uninstall DESTDIR=STAGE PREFIX=/opt/nabla" \
    make -C "$ROOT" --no-print-directory BUILD="$BUILD" uninstall DESTDIR="$STAGE" PREFIX=/opt/nabla
if [[ -z $(left "$STAGE") ]]; then ok "DESTDIR: uninstall leaves no file"; else
    bad "DESTDIR: uninstall leaves no file" "$(left "$STAGE")"; fi

# --- uninstall -----------------------------------------------------------------

check "make uninstall PREFIX=$PREFIX" make -C "$ROOT" --no-print-directory BUILD="$BUILD" uninstall PREFIX="$PREFIX"
if [[ -z $(left "$PREFIX") ]]; then ok "uninstall leaves no file"; else bad "uninstall leaves no file" "$(left "$PREFIX")"; fi

summary
