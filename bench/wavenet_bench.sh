#!/usr/bin/env bash
# wavenet_bench.sh — `nabla wavenet` against PyTorch (Debian's python3-torch, bench/wavenet_torch.py: the same
# architecture and parameter names) in one run, on the reference configuration: 20 layers (2 stacks of 10,
# receptive field 2047 samples), 32 residual and 32 skip channels, segments of 16000 samples, batch 1, Adam.
#   training: steps/s at 1 and 2 threads, each side leaving out its first two steps (nabla's step arena
#             grows during them; PyTorch warms its allocator), best of ROUNDS interleaved runs;
#   generation on one thread: nabla's cached generator (samples/s), its naive loop (the same arithmetic over
#             the whole receptive field per sample) and PyTorch's naive loop (the network over the last 2047
#             samples per sample), and the ratios.
# Usage: bench/wavenet_bench.sh     (env: NABLA, STEPS=6, ROUNDS=2, GEN_SECONDS=2, NAIVE_SAMPLES=40)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NABLA=${NABLA:-$ROOT/build/nabla}
PY=/usr/bin/python3
. "$ROOT/bench/torch_env.sh"
STEPS=${STEPS:-6}
ROUNDS=${ROUNDS:-2}
GEN_SECONDS=${GEN_SECONDS:-2}
NAIVE_SAMPLES=${NAIVE_SAMPLES:-40}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[[ -x $NABLA ]] || { echo "build nabla first (make), or set NABLA" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }
field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' | tail -1; }
max() { awk 'BEGIN { m = 0 } { if ($1 > m) m = $1 } END { printf "%.3f", m }'; }
MODEL=(--layers 10 --stacks 2 --residual 32 --skip 32 --segment 16000 --batch 1)

"$NABLA" wavenet synth "$WORK/data" --speakers 1 --clips 2 --seconds 2 2>/dev/null
echo "== training, reference configuration, $STEPS steps per run, best of $ROUNDS (load: $(cut -d' ' -f1-3 /proc/loadavg))"
for r in $(seq "$ROUNDS"); do
    for t in 1 2; do
        NABLA_THREADS=$t "$NABLA" wavenet train "$WORK/data" "${MODEL[@]}" --steps "$STEPS" --val-samples 1 \
            --out "$WORK/m.st" --json 2>/dev/null | field steps_per_second >>"$WORK/nabla$t"
        env $TORCH_MALLOC $PY "$ROOT/bench/wavenet_torch.py" speed --threads $t --steps "$((STEPS - 2))" \
            --naive-samples 0 | field steps_per_second >>"$WORK/torch$t"
    done
done
n1=$(max <"$WORK/nabla1") n2=$(max <"$WORK/nabla2") p1=$(max <"$WORK/torch1") p2=$(max <"$WORK/torch2")
awk -v n1="$n1" -v n2="$n2" -v p1="$p1" -v p2="$p2" 'BEGIN {
    printf "%-24s %10s %10s\n", "steps/s", "1 thread", "2 threads"
    printf "%-24s %10.3f %10.3f\n", "nabla", n1, n2
    printf "%-24s %10.3f %10.3f\n", "pytorch", p1, p2
    printf "ratio nabla / PyTorch: %.2fx at 1 thread, %.2fx at 2 (target 1.5x)\n", n1 / p1, n2 / p2
}'

echo "== generation on one thread (load: $(cut -d' ' -f1-3 /proc/loadavg))"
cached=$("$NABLA" wavenet generate "$WORK/m.st" --seconds "$GEN_SECONDS" --threads 1 --out "$WORK/c.wav" --json 2>/dev/null |
    field samples_per_second)
# nabla's --naive times the samples after the first receptive field (2047 samples, which the cached path
# gives), each a pass over a full window, as PyTorch's loop makes every one
nseconds=$(awk -v n="$NAIVE_SAMPLES" 'BEGIN { printf "%.6f", (n + 2046) / 16000 }')
naive=$("$NABLA" wavenet generate "$WORK/m.st" --seconds "$nseconds" --naive --threads 1 --out "$WORK/n.wav" --json \
    2>/dev/null | field samples_per_second)
tnaive=$(env $TORCH_MALLOC $PY "$ROOT/bench/wavenet_torch.py" speed --threads 1 --steps 0 \
    --naive-samples "$NAIVE_SAMPLES" | field naive_samples_per_second)
awk -v c="$cached" -v n="$naive" -v t="$tnaive" 'BEGIN {
    printf "nabla cached:  %10.0f samples/s (%.2fx real time at 16 kHz; target 16000)\n", c, c / 16000
    printf "nabla naive:   %10.1f samples/s  -> cached is %.0fx faster\n", n, c / n
    printf "PyTorch naive: %10.1f samples/s  -> cached is %.0fx faster\n", t, c / t
}'
