#!/bin/sh
# make.sh — writes the two small inputs the README's `nabla linalg` and
# `nabla stats` commands use, byte for byte the same on every machine:
#   A.npy  the 4x4 matrix of the 1-D Laplacian, tridiagonal (2 on the diagonal, -1 beside it):
#          symmetric positive definite, eigenvalues 2 - 2 cos(k pi / 5) for k = 1..4
#          (3.618034, 2.618034, 1.381966, 0.381966), condition number (eq. 4.2) 9.472136.
#   X.csv  300 samples of 4 variables with a header row: x uniform on [0, 1), y = 2x + noise,
#          z independent of both, w = 1 - x + small noise; so corr(x, y) is near +0.97,
#          corr(x, w) near -1 and corr(x, z) near 0.
# Usage: examples/data/make.sh [FOLDER]   (default: the folder of this script)
set -eu
dir=${1:-$(dirname "$0")}

# A float32 .npy (format 1.0, C order) as NumPy writes it: magic, header
# length, the header dict padded with spaces to a multiple of 64 bytes, then
# the values little-endian (perl's pack, as Debian's perl-base has it).
dict="{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }"
pad=$(((64 - (10 + ${#dict} + 1) % 64) % 64))
{
    printf '\223NUMPY\001\000'
    perl -e 'print pack("v", $ARGV[0])' $((${#dict} + pad + 1))
    printf '%s%*s\n' "$dict" $pad ''
    perl -e 'print pack("f<*", @ARGV)' -- 2 -1 0 0 -1 2 -1 0 0 -1 2 -1 0 0 -1 2
} >"$dir/A.npy"

# Park and Miller's minimal standard generator (x <- 16807 x mod 2^31 - 1):
# every product is below 2^53, so any awk computes it exactly and every
# machine writes the same file (awk's own rand() differs between mawk and gawk).
awk 'BEGIN {
    s = 20240601
    print "x,y,z,w"
    for (i = 0; i < 300; i++) {
        s = (16807 * s) % 2147483647; u1 = s / 2147483647
        s = (16807 * s) % 2147483647; u2 = s / 2147483647
        s = (16807 * s) % 2147483647; u3 = s / 2147483647
        s = (16807 * s) % 2147483647; u4 = s / 2147483647
        printf "%.4f,%.4f,%.4f,%.4f\n", u1, 2 * u1 + 0.5 * (u2 - 0.5), u3, 1 - u1 + 0.05 * (u4 - 0.5)
    }
}' >"$dir/X.csv"
