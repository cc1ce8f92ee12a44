#!/usr/bin/env bash
# cuda_bundle.sh — prepares, on a machine with nvcc and nabla's build
# dependencies (this project's development machine), what bench/cuda_check.sh
# needs on a GPU machine that has CUDA but none of nabla's Debian libraries and
# no network, in one archive: a CUDA=1 build of the command and the unit
# tests, the shared libraries they load that the GPU machine lacks,
# Fashion-MNIST and skimage's brick texture.
#
#   bench/cuda_bundle.sh [DIR]      (DIR: .gpu by default; ignored by git)
#
# The programs are built (in build-cuda-bundle) for x86-64-v3 (AVX2), which any
# GPU server runs, and without MPI. glibc, libstdc++ and the CUDA libraries are
# the GPU machine's own; everything else comes from the archive
# (DIR/bundle.tar.xz, about 45 MB), which cuda_check.sh unpacks and puts on
# LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.gpu}
BUILD=build-cuda-bundle
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
command -v "${NVCC:-/usr/local/cuda/bin/nvcc}" >/dev/null || { echo "cuda_bundle.sh: nvcc not found" >&2; exit 1; }
[[ -f $DATA/train-images-idx3-ubyte.gz ]] || { echo "cuda_bundle.sh: no Fashion-MNIST in $DATA" >&2; exit 1; }
STYLE=/usr/lib/python3/dist-packages/skimage/data/brick.png # nabla style's texture benchmark
[[ -f $STYLE ]] || { echo "cuda_bundle.sh: no $STYLE (python3-skimage)" >&2; exit 1; }
mkdir -p "$DIR"
make -j"$(nproc)" BUILD="$BUILD" CUDA=1 MPI=0 ARCH=-march=x86-64-v3 lib "$BUILD/nabla" "$BUILD/nabla-tests"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/fashion-mnist" "$stage/style"
cp "$BUILD/nabla" "$BUILD/nabla-tests" "$stage/bin/"
# Libraries resolved here that are neither glibc's, the compiler runtime's nor CUDA's.
ldd "$BUILD/nabla" "$BUILD/nabla-tests" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libgcc_s|libstdc\+\+|libcudart|libcublas|libcublasLt|libcuda)\.so' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
cp "$DATA"/*.gz "$stage/fashion-mnist/"
cp "$STYLE" "$stage/style/"
rm -f "$DIR/bundle.tar.xz"
tar -C "$stage" -cJf "$DIR/bundle.tar.xz" bin lib fashion-mnist style
echo "cuda_bundle.sh: $DIR/bundle.tar.xz ($(du -h "$DIR/bundle.tar.xz" | cut -f1)): nabla and nabla-tests (CUDA=1), $(ls "$stage/lib" | wc -l) libraries, Fashion-MNIST, $(basename "$STYLE")"
echo "on the GPU machine: bench/cuda_check.sh $DIR   (carry $DIR)"
