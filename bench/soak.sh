#!/usr/bin/env bash
# soak.sh — issue 14's soak run: STEPS (default 10^6) MLP training steps in
# one process with its resident memory sampled every few seconds (it must stay
# flat: the step arena settles on one block and no step mallocs), and the same
# STEPS as RUNS (default 10) runs, each resumed from the last one's checkpoint,
# which must end with the same weights (the same test loss to every printed
# digit, and the same tensors byte for byte).
# Prints the memory at 10% of the run and at its end, the growth between them,
# and whether the two routes agree; writes bench/out/soak_rss.csv (seconds,
# rss_mb) and draws it as bench/out/soak_rss.png with `nabla plot`.
# Usage: bench/soak.sh   Environment: STEPS, RUNS, THREADS (2), BUILD (build).
# 10^6 steps take about 20 minutes on this project's 2 cores, and the resumed
# route as long again; STEPS=100000 is a 4-minute check.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
STEPS=${STEPS:-1000000}
RUNS=${RUNS:-10}
BUILD=${BUILD:-build}
export NABLA_THREADS=${THREADS:-2}
nabla=$root/$BUILD/nabla
out=$root/bench/out
mkdir -p "$out"
[[ -x $nabla ]] || { echo "soak.sh: $nabla missing: make" >&2; exit 1; }
((STEPS % RUNS == 0)) || { echo "soak.sh: STEPS ($STEPS) must be a multiple of RUNS ($RUNS)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Enough epochs that --steps, not the epoch count, ends the run.
epochs=$(((STEPS * 128 + 59999) / 60000 + 1))
common=("$root/examples/mlp.cfg" --data fashion-mnist --batch 128 --seed 3 --epochs "$epochs")

echo "one process: $STEPS steps ($epochs epochs at most), resident memory every 5 s"
"$nabla" train "${common[@]}" --steps "$STEPS" --out "$tmp/a.safetensors" >/dev/null 2>"$tmp/a.err" &
pid=$!
echo "seconds,rss_mb" >"$out/soak_rss.csv"
t0=$SECONDS
while kill -0 $pid 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' /proc/$pid/status 2>/dev/null || true)
    [[ -n $rss ]] && echo "$((SECONDS - t0)),$rss" >>"$out/soak_rss.csv"
    sleep 5
done
wait $pid || { echo "soak.sh: the long run failed: $(tail -2 "$tmp/a.err")" >&2; exit 1; }
rows=$(($(wc -l <"$out/soak_rss.csv") - 1))
# The first samples fall before the data set is loaded: "early" is the first
# sample at 10% of the run or later, past loading.
early=$(awk -F, -v r="$rows" 'NR > 2 && NR - 1 >= r / 10 { print $2; exit }' "$out/soak_rss.csv")
last=$(tail -1 "$out/soak_rss.csv" | cut -d, -f2)
max=$(awk -F, 'NR > 1 && $2 > m { m = $2 } END { print m }' "$out/soak_rss.csv")
echo "resident memory: ${early} MB at 10% of the run, ${last} MB at its end, ${max} MB at most ($rows samples over $((SECONDS - t0)) s)"
"$nabla" plot "$out/soak_rss.csv" --out "$out/soak_rss.png" --title "nabla train, $STEPS MLP steps: resident memory (MB)" \
    >/dev/null 2>&1 && echo "plot: $out/soak_rss.png" || echo "(nabla plot could not draw $out/soak_rss.csv)"

echo "resumed route: $RUNS runs of $((STEPS / RUNS)) steps, each from the last checkpoint"
"$nabla" train "${common[@]}" --steps $((STEPS / RUNS)) --out "$tmp/b.safetensors" >/dev/null 2>"$tmp/b.err" ||
    { echo "soak.sh: run 1 failed: $(tail -2 "$tmp/b.err")" >&2; exit 1; }
for ((k = 2; k <= RUNS; k++)); do
    "$nabla" train --resume "$tmp/b.safetensors" --steps $((STEPS / RUNS * k)) >/dev/null 2>"$tmp/b.err" ||
        { echo "soak.sh: run $k failed: $(tail -2 "$tmp/b.err")" >&2; exit 1; }
done
la=$("$nabla" eval "$tmp/a.safetensors" --data fashion-mnist --json 2>/dev/null | sed -n 's/.*"test_loss": \([0-9.e+-]*\).*/\1/p')
lb=$("$nabla" eval "$tmp/b.safetensors" --data fashion-mnist --json 2>/dev/null | sed -n 's/.*"test_loss": \([0-9.e+-]*\).*/\1/p')
# The tensors themselves: everything after the JSON header (whose metadata
# holds counters that differ in no way that matters, but compare them too).
body() { python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; sys.stdout.buffer.write(b[8+n:])' "$1"; }
if body "$tmp/a.safetensors" | cmp -s - <(body "$tmp/b.safetensors"); then same=yes; else same=no; fi
echo "test loss: one process $la, resumed $RUNS times $lb; tensors identical: $same"
[[ $la == "$lb" && $same == yes ]]
