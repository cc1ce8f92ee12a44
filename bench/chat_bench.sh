#!/usr/bin/env bash
# chat_bench.sh — `nabla chat train` against PyTorch (Debian's python3-torch, bench/chat_torch.py) on the same
# dual-encoder LSTM (embedding 100, LSTM 256, M 256x256, Adam 0.001, clipping at 10, batch 128):
#   parity: the validation loss (mean eq. 29 loss over every candidate of valid.csv) after PARITY_STEPS steps
#           from the same initial weights (nabla's, loaded into PyTorch by name), the same tokens, the same
#           batches; they must agree within a relative TOL (default 1e-4);
#   speed:  training pairs per second, each side at 1 and 2 threads, best of ROUNDS runs interleaved so both
#           sides see the same machine (PyTorch's LSTM over packed sequences, as nabla's, computes no padding).
# Usage: bench/chat_bench.sh   (env: NABLA, CHAT_DATA=folder with train.csv and valid.csv (default
#        tests/data/chat), PARITY_STEPS=100, SPEED_STEPS=20, ROUNDS=2, TOL=1e-4, VOCAB_MIN=1)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NABLA=${NABLA:-$ROOT/build/nabla}
PY=/usr/bin/python3
. "$ROOT/bench/torch_env.sh" # TORCH_MALLOC
DATA=${CHAT_DATA:-$ROOT/tests/data/chat}
PARITY_STEPS=${PARITY_STEPS:-100}
SPEED_STEPS=${SPEED_STEPS:-20}
ROUNDS=${ROUNDS:-2}
TOL=${TOL:-1e-4}
VOCAB_MIN=${VOCAB_MIN:-1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[[ -x $NABLA ]] || { echo "build nabla first (make), or set NABLA" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }
field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' | tail -1; }
max() { awk 'BEGIN { m = 0 } { if ($1 > m) m = $1 } END { printf "%.1f", m }'; }
TRAIN=("$DATA/train.csv" --valid "$DATA/valid.csv" --vocab-min "$VOCAB_MIN" --embed 100 --hidden 256 --batch 128 --lr 0.001)

echo "== data: $DATA ($(($(wc -l <"$DATA/train.csv") - 1)) training rows; machine load: $(cut -d' ' -f1-3 /proc/loadavg))"
NABLA_THREADS=2 "$NABLA" chat train "${TRAIN[@]}" --steps 0 --bank 0 --out "$WORK/init.st" >/dev/null 2>&1

echo "== parity: validation loss after $PARITY_STEPS steps from the same weights and batches"
a=$(NABLA_THREADS=2 "$NABLA" chat train "${TRAIN[@]}" --steps "$PARITY_STEPS" --bank 0 --out "$WORK/n.st" --json 2>/dev/null | field valid_loss)
b=$(env $TORCH_MALLOC $PY "$ROOT/bench/chat_torch.py" --init "$WORK/init.st" --train "$DATA/train.csv" \
    --valid "$DATA/valid.csv" --steps "$PARITY_STEPS" --threads 2 | field valid_loss)
awk -v a="$a" -v b="$b" -v tol="$TOL" 'BEGIN {
    d = a - b; if (d < 0) d = -d; r = d / (b < 0 ? -b : b);
    printf "nabla %.9f  pytorch %.9f  relative difference %.2e (tolerance %g): %s\n", a, b, r, tol, r <= tol ? "PASS" : "FAIL";
    exit !(r <= tol) }'

echo "== speed: $SPEED_STEPS training steps per run (batch 128), best of $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
    for t in 1 2; do
        NABLA_THREADS=$t "$NABLA" chat train "${TRAIN[@]}" --steps "$SPEED_STEPS" --bank 0 --out "$WORK/s.st" --json \
            2>/dev/null | field pairs_per_second >>"$WORK/nabla$t"
        env $TORCH_MALLOC $PY "$ROOT/bench/chat_torch.py" --init "$WORK/init.st" --train "$DATA/train.csv" \
            --valid "$DATA/valid.csv" --steps "$SPEED_STEPS" --threads $t | field pairs_per_second >>"$WORK/torch$t"
    done
done
for t in 1 2; do
    n=$(max <"$WORK/nabla$t") p=$(max <"$WORK/torch$t")
    awk -v t=$t -v n="$n" -v p="$p" 'BEGIN { printf "%d thread(s): nabla %8.1f pairs/s  pytorch %8.1f pairs/s  ratio %.2fx\n", t, n, p, n / p }'
done
