#!/usr/bin/env bash
# Installs everything nabla needs to build, test and train on a fresh Debian machine.
# Debian packages only; runs apt-get as root (through sudo when not root). Safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  build-essential pkg-config
  libopenblas-openmp-dev liblapacke-dev   # GEMM (OpenMP flavour) and LAPACK factorizations
  zlib1g-dev libpng-dev libcjson-dev      # gzip'd IDX files, PNG images, JSON metadata
  libcairo2-dev fonts-dejavu-core         # figures (nabla plot): PNG, SVG and PDF, DejaVu Sans
  libpixman-1-dev                         # image resampling (nabla style)
  libjpeg62-turbo-dev                     # JPEG images (nabla style, nabla filter)
  libsndfile1-dev libsamplerate0-dev libfftw3-dev  # audio in and out, resampling, spectra (nabla wavenet)
  libmp3lame-dev libmpg123-dev            # what libsndfile's pkg-config --static names (a static link of libnabla)
  dataset-fashion-mnist                   # the main job's data set
  fortunes                                # English fortune files: the default corpus of `nabla charrnn`
  libopenmpi-dev openmpi-bin iproute2     # data-parallel training under mpirun (tests/mpi.sh: veth pairs with ip)
  python3-skimage                         # its sample photos: the images of nabla style's tests and README commands
)
if [ "${NABLA_DEV:-0}" = "1" ]; then
  PKGS+=(clang libclang-rt-14-dev valgrind)   # fuzzing (libFuzzer) and leak checks
fi
if [ "${NABLA_SPEECH:-0}" = "1" ]; then
  # The default speech corpus (scripts/speech-corpus.sh): festival and three of its voices, espeak-ng
  # (libespeak-ng1 gives the phoneme events), python3 which drives them.
  PKGS+=(festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts espeak-ng libespeak-ng1 python3)
fi
if [ "${NABLA_BENCH:-0}" = "1" ]; then
  # The yardsticks of bench/: PyTorch, NumPy, scikit-learn, LIBSVM, /usr/bin/time.
  PKGS+=(python3-torch python3-numpy python3-sklearn libsvm-tools time)
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"
