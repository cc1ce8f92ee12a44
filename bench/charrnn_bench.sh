#!/usr/bin/env bash
# charrnn_bench.sh — `nabla charrnn train` against PyTorch (Debian's python3-torch) on the same character-level
# LSTM (1 layer, hidden 256, seq 64, batch 32, the fortunes' vocabulary, Adam, clipping at 5):
#   speed:   training steps per second, each side at 1 and 2 threads (PyTorch also with OMP_WAIT_POLICY=PASSIVE;
#            nabla in the caller's environment, by default its short spins), best of ROUNDS runs interleaved so
#            both sides see the same machine; the ratio against PyTorch's fastest setting, and
#            the model's FLOP/s as a fraction of the machine's peak;
#   quality: validation bits/char after QUALITY_STEPS steps from the same initial weights (nabla's, loaded into
#            PyTorch by name), the same batches and optimizer.
# Usage: bench/charrnn_bench.sh          (env: NABLA, SPEED_STEPS=30, ROUNDS=3, QUALITY_STEPS=500, PEAK_LO, PEAK_HI, LANES)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NABLA=${NABLA:-$ROOT/build/nabla}
PY=/usr/bin/python3
. "$ROOT/bench/torch_env.sh" # TORCH_MALLOC: PyTorch without glibc's heap trimming
SPEED_STEPS=${SPEED_STEPS:-30}
ROUNDS=${ROUNDS:-3}
QUALITY_STEPS=${QUALITY_STEPS:-500}
# The peak (bench/peak.sh) as a range: the lower and the higher of the nominal figure (from the
# listed clock) and the one bench/peak_fma measures now.
. "$ROOT/bench/peak.sh"
P1=${PEAK_NOMINAL%.*} P2=${PEAK%.*}
[ "$P1" -le "$P2" ] || { t=$P1; P1=$P2; P2=$t; }
PEAK_LO=${PEAK_LO:-$P1} PEAK_HI=${PEAK_HI:-$P2}
MODEL=(--cell lstm --hidden 256 --layers 1 --seq 64 --batch 32 --lr 0.005 --grad-clip 5)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[[ -x $NABLA ]] || { echo "build nabla first (make), or set NABLA" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }

field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' | tail -1; }
max() { awk 'BEGIN { m = 0 } { if ($1 > m) m = $1 } END { printf "%.3f", m }'; }

echo "== speed: $SPEED_STEPS training steps per run, best of $ROUNDS rounds (machine load: $(cut -d' ' -f1-3 /proc/loadavg))"
for r in $(seq "$ROUNDS"); do
    for t in 1 2; do
        # The final validation pass is not counted in steps_per_second.
        NABLA_THREADS=$t "$NABLA" charrnn train "${MODEL[@]}" --steps "$SPEED_STEPS" --json 2>/dev/null |
            field steps_per_second >>"$WORK/nabla$t"
        env $TORCH_MALLOC $PY "$ROOT/bench/charrnn_torch.py" speed --threads $t --steps "$SPEED_STEPS" | field steps_per_second >>"$WORK/torch$t"
        env $TORCH_MALLOC OMP_WAIT_POLICY=PASSIVE $PY "$ROOT/bench/charrnn_torch.py" speed --threads $t --steps "$SPEED_STEPS" |
            field steps_per_second >>"$WORK/torch$t"
    done
done
n1=$(max <"$WORK/nabla1") n2=$(max <"$WORK/nabla2") p1=$(max <"$WORK/torch1") p2=$(max <"$WORK/torch2")
# Model FLOPs per step, counting the one-hot input as the dense GEMM PyTorch runs (nabla gathers columns
# instead): forward 2 T B (4H V + 4H H + H V), backward twice that.
flops=$(awk 'BEGIN { T = 64; B = 32; H = 256; V = 113; printf "%.4g", 3 * 2 * T * B * (4*H*V + 4*H*H + H*V) }')
awk -v n1="$n1" -v n2="$n2" -v p1="$p1" -v p2="$p2" -v f="$flops" -v lo="$PEAK_LO" -v hi="$PEAK_HI" 'BEGIN {
    nb = n1 > n2 ? n1 : n2; pt = p1 > p2 ? p1 : p2
    printf "%-28s %10s %10s\n", "steps/s", "1 thread", "2 threads"
    printf "%-28s %10.2f %10.2f\n", "nabla", n1, n2
    printf "%-28s %10.2f %10.2f\n", "pytorch", p1, p2
    printf "ratio nabla / fastest PyTorch: %.2fx (target 1.3x)\n", nb / pt
    printf "model FLOP/s (%.3g FLOP per step): nabla %.1f GFLOP/s = %.0f-%.0f%% of %d-%d GFLOP/s peak; PyTorch %.1f GFLOP/s\n",
        f, nb * f / 1e9, 100 * nb * f / 1e9 / hi, 100 * nb * f / 1e9 / lo, lo, hi, pt * f / 1e9
}'

echo "== quality: validation bits/char after $QUALITY_STEPS steps from the same initial weights"
"$NABLA" charrnn train "${MODEL[@]}" --seed 1 --steps 0 --out "$WORK/init.safetensors" --json >/dev/null 2>&1
nq=$(NABLA_THREADS=2 "$NABLA" charrnn train "${MODEL[@]}" --seed 1 --steps "$QUALITY_STEPS" --eval-every 1000000 --json \
     2>/dev/null | field val_bpc)
pq=$(env $TORCH_MALLOC $PY "$ROOT/bench/charrnn_torch.py" quality --init "$WORK/init.safetensors" --steps "$QUALITY_STEPS" --threads 2 \
     --lr 0.005 --clip 5 | field val_bpc)
awk -v n="$nq" -v p="$pq" 'BEGIN {
    printf "nabla %.4f bits/char, PyTorch %.4f bits/char: difference %+.4f (target <= +0.05) %s\n", n, p, n - p,
        n <= p + 0.05 ? "ok" : "WORSE"
}'
