#!/usr/bin/env bash
# parity.sh — nabla against PyTorch, op by op: values and gradients on the same random inputs.
# bench/parity (parity.c) runs every case of its table for SEEDS seeds (odd shapes drawn from the seed) and
# writes inputs, outputs and the gradients of sum_k sum(out_k * R_k) (R random) as .npy; bench/parity_torch.py
# recomputes each case in float64 PyTorch and prints one line per case (case, shapes, max relative error,
# tolerance, pass/FAIL) and a summary. Exit status 1 on any FAIL.
# Usage: bench/parity.sh [NAME...]       (NAMEs: substrings of case names; env: BUILD, SEEDS (3), THREADS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
SEEDS=${SEEDS:-3}
THREADS=${THREADS:-$(nproc)}
PY=/usr/bin/python3
$PY -c 'import torch, numpy' 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch python3-numpy" >&2; exit 1; }
make -s -C "$ROOT" BUILD="$BUILD" lib >/dev/null
make -s -C "$ROOT/bench" NABLA_BUILD="../$BUILD" parity >/dev/null
# many small files, each written atomically with an fsync: keep them in memory when /dev/shm exists
WORK=$(mktemp -d "$( [[ -d /dev/shm && -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/nabla-parity.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$ROOT/bench/parity" "$WORK" --seeds "$SEEDS" --threads "$THREADS" "$@"
$PY "$ROOT/bench/parity_torch.py" "$WORK"
