#!/usr/bin/env bash
# cuda_bundle.sh — prepares, on a machine with nvcc and nabla's build
# dependencies (this project's development machine), what bench/cuda_check.sh
# needs on a GPU machine that has CUDA but none of nabla's Debian libraries and
# no network: a CUDA=1 build (library, command and unit tests) and, in one
# archive, the shared libraries those programs load that the GPU machine lacks
# plus Fashion-MNIST.
#
#   bench/cuda_bundle.sh [DIR]      (DIR: .gpu by default; ignored by git)
#
# The programs are built for x86-64-v3 (AVX2), which any GPU server runs, and
# without MPI. glibc, libstdc++ and the CUDA libraries are the GPU machine's
# own; everything else comes from the archive (DIR/bundle.tar.xz), which
# cuda_check.sh unpacks and puts on LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.gpu}
BUILD=$DIR/build
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
command -v "${NVCC:-/usr/local/cuda/bin/nvcc}" >/dev/null || { echo "cuda_bundle.sh: nvcc not found" >&2; exit 1; }
[[ -f $DATA/train-images-idx3-ubyte.gz ]] || { echo "cuda_bundle.sh: no Fashion-MNIST in $DATA" >&2; exit 1; }
mkdir -p "$DIR"
make -j"$(nproc)" BUILD="$BUILD" CUDA=1 MPI=0 ARCH=-march=x86-64-v3 lib "$BUILD/nabla" "$BUILD/nabla-tests"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$stage/fashion-mnist"
# Libraries resolved here that are neither glibc's, the compiler runtime's nor CUDA's.
ldd "$BUILD/nabla" "$BUILD/nabla-tests" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libgcc_s|libstdc\+\+|libcudart|libcublas|libcublasLt|libcuda)\.so' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
cp "$DATA"/*.gz "$stage/fashion-mnist/"
tar -C "$stage" -cJf "$DIR/bundle.tar.xz" lib fashion-mnist
echo "cuda_bundle.sh: $BUILD (CUDA=1) and $DIR/bundle.tar.xz ($(du -h "$DIR/bundle.tar.xz" | cut -f1)): $(ls "$stage/lib" | wc -l) libraries, Fashion-MNIST"
echo "on the GPU machine: bench/cuda_check.sh $DIR   (carry $DIR)"
