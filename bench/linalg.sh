#!/bin/sh
# linalg.sh — nabla's LAPACK-backed linear algebra against NumPy on the same
# .npy files: builds bench/linalg_bench against $BUILD/libnabla.a, then runs
# bench/linalg_numpy.py, which writes the inputs, runs both, and prints the
# agreement (to 1e-5 relative) and the time ratio per operation.
# Usage: bench/linalg.sh [linalg_numpy.py options: --n 300 --m 500 --reps 5 ...]
# Environment: THREADS (default 2), BUILD (library folder relative to the
# repo root, default build), PYTHON (default /usr/bin/python3).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
DEPS="openblas lapacke libcjson zlib libpng"
[ -f "$root/$BUILD/libnabla.a" ] || { echo "linalg.sh: $BUILD/libnabla.a missing: make BUILD=$BUILD lib" >&2; exit 1; }
"$PYTHON" -c 'import numpy' 2>/dev/null || { echo "linalg.sh: NumPy missing: apt-get install python3-numpy" >&2; exit 1; }
# shellcheck disable=SC2086
${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -fopenmp -Wall -Wextra -I"$root/include" $(pkg-config --cflags $DEPS) \
    -o "$root/bench/linalg_bench" "$root/bench/linalg_bench.c" "$root/$BUILD/libnabla.a" $(pkg-config --libs $DEPS) -fopenmp -lm
exec "$PYTHON" "$root/bench/linalg_numpy.py" --bin "$root/bench/linalg_bench" "$@"
