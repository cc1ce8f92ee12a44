#!/usr/bin/env bash
# style_bench.sh — `nabla style` against PyTorch (Debian's python3-torch, bench/style_torch.py) on the same problem:
# a texture from skimage's brick image at SIZE x SIZE, the default random feature network (5 scales of 64 random 7x7
# filters, src/models/style.c), the notes' losses (eq. 3-5, 7) and Adam (lr 0.02, pixels clamped to [0, 1]).
# Prints iterations per second for both (the optimization loop only, best of ROUNDS runs, interleaved so both sides
# see the same machine), the ratio, the style loss after ITERS iterations on each side (they should be alike), and
# the peak resident memory of each process (/usr/bin/time -v; getrusage in Python where time is missing).
# Usage: bench/style_bench.sh      (env: NABLA, SIZE=256, ITERS=20, ROUNDS=2, THREADS=2)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NABLA=${NABLA:-$ROOT/build/nabla}
PY=/usr/bin/python3
. "$ROOT/bench/torch_env.sh" # TORCH_MALLOC: PyTorch without glibc's heap trimming
SIZE=${SIZE:-256} ITERS=${ITERS:-20} ROUNDS=${ROUNDS:-2} THREADS=${THREADS:-2}
STYLE=/usr/lib/python3/dist-packages/skimage/data/brick.png
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[[ -x $NABLA ]] || { echo "build nabla first (make), or set NABLA" >&2; exit 1; }
$PY -c 'import torch, skimage' 2>/dev/null || { echo "needs python3-torch and python3-skimage" >&2; exit 1; }
[[ -r $STYLE ]] || { echo "needs python3-skimage's data ($STYLE)" >&2; exit 1; }
field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' "$2" | tail -1; }
TIME=()
[[ -x /usr/bin/time ]] && TIME=(/usr/bin/time -v)
peak_kb() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1" | tail -1; }

echo "== texture ${SIZE}x$SIZE from brick.png, Adam, $ITERS iterations, $THREADS threads, best of $ROUNDS (load: $(cut -d' ' -f1-3 /proc/loadavg))"
nb=0 pt=0 nbmem= ptmem=
for r in $(seq "$ROUNDS"); do
    NABLA_THREADS=$THREADS "${TIME[@]}" "$NABLA" style "$STYLE" --out "$WORK/n.png" --size "$SIZE" --iters "$ITERS" \
        --optim adam --json >"$WORK/n.json" 2>"$WORK/n.err"
    env $TORCH_MALLOC "${TIME[@]}" $PY "$ROOT/bench/style_torch.py" "$STYLE" --size "$SIZE" --iters "$ITERS" \
        --threads "$THREADS" --optim adam >"$WORK/t.json" 2>"$WORK/t.err"
    n=$(field iterations_per_second "$WORK/n.json") t=$(field iterations_per_second "$WORK/t.json")
    nb=$(awk -v a="$nb" -v b="$n" 'BEGIN { print (b > a ? b : a) }')
    pt=$(awk -v a="$pt" -v b="$t" 'BEGIN { print (b > a ? b : a) }')
    nbmem=$(peak_kb "$WORK/n.err") ptmem=$(peak_kb "$WORK/t.err")
done
[[ -n $ptmem ]] || ptmem=$(awk -v m="$(field peak_rss_mb "$WORK/t.json")" 'BEGIN { printf "%d", m * 1024 }')
printf "%-10s %12s %14s %14s %12s\n" "" "iter/s" "style before" "style after" "peak MB"
printf "%-10s %12.3f %14.4g %14.4g %12s\n" nabla "$nb" "$(field initial_style_loss "$WORK/n.json")" \
    "$(field style_loss "$WORK/n.json")" "$(awk -v k="${nbmem:-0}" 'BEGIN { printf "%.0f", k / 1024 }')"
printf "%-10s %12.3f %14.4g %14.4g %12s\n" pytorch "$pt" "$(field initial_style_loss "$WORK/t.json")" \
    "$(field style_loss "$WORK/t.json")" "$(awk -v k="${ptmem:-0}" 'BEGIN { printf "%.0f", k / 1024 }')"
awk -v a="$nb" -v b="$pt" 'BEGIN { printf "ratio nabla / PyTorch: %.2fx (target 1.5x)\n", a / b }'
