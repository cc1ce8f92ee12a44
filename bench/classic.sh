#!/usr/bin/env bash
# classic.sh — nabla's classical models (`nabla fit`) against Debian's LIBSVM
# (svm-train/svm-predict) and scikit-learn on Fashion-MNIST, side by side in
# one run: SVM on PCA-50 features, logistic regression, PCA/PPCA/FA and GMM
# log-likelihoods. Needs `make` done, `apt-get install libsvm-tools
# python3-sklearn`, and an idle machine (see bench/README.md).
# Usage: [THREADS=N] bench/classic.sh [--only svm,logreg,pca,fa,gmm] [--C 10 --gamma 0.02]
# THREADS (default: all cores) is given to nabla and to scikit-learn's BLAS
# alike; Debian's svm-train is single-threaded.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
command -v svm-train >/dev/null || { echo "classic.sh: svm-train missing: apt-get install libsvm-tools" >&2; exit 1; }
/usr/bin/python3 -c 'import sklearn' 2>/dev/null || { echo "classic.sh: apt-get install python3-sklearn" >&2; exit 1; }
THREADS=${THREADS:-$(nproc)}
export NABLA_THREADS=$THREADS OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
exec /usr/bin/python3 "$ROOT/bench/classic.py" --nabla "$ROOT/$BUILD/nabla" --out "$ROOT/bench/out/classic" "$@"
