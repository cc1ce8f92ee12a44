#!/bin/sh
# train.sh — issue 3's training-speed benchmark: the MLP and the CNN of
# examples/ on Fashion-MNIST, batch 128, SGD lr 0.05 momentum 0.9, trained by
# `nabla train --json` (THREADS threads) and by bench/train_torch.py in
# PyTorch's four configurations (1 and 2 threads, with and without
# OMP_WAIT_POLICY=PASSIVE; the fastest is compared), one after the other.
# Prints per model: training images/s, the ratio nabla/PyTorch (> 1: nabla
# faster), GFLOP/s and the fraction of the machine's peak, and each process's
# peak resident memory (from /usr/bin/time -v).
# Every configuration runs ROUNDS times (default 3), rounds interleaved, and
# keeps its fastest run, so that a passing load spike decides nothing.
# Usage: bench/train.sh [mlp] [cnn]
# Environment: THREADS (default 2), ROUNDS (default 3), MLP_STEPS (default 0 = one epoch), LANES,
# CNN_STEPS (default 200), BUILD (default build), PYTHON (/usr/bin/python3),
# GHZ (clock for the peak; default: the "cpu MHz" of /proc/cpuinfo),
# REUSE_TORCH=1 (keep PyTorch's results from the last run in bench/out/).
# nabla runs in the caller's environment (by default the command's own short
# spins; try OMP_WAIT_POLICY=PASSIVE too).
# Raw outputs are kept in bench/out/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2}
MLP_STEPS=${MLP_STEPS:-0}
CNN_STEPS=${CNN_STEPS:-200}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. "$root/bench/torch_env.sh" # TORCH_MALLOC: PyTorch without glibc's heap trimming
out=$root/bench/out
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "train.sh: /usr/bin/time missing: apt-get install time" >&2; exit 1; }
[ -x "$root/$BUILD/nabla" ] || { echo "train.sh: $root/$BUILD/nabla missing: make" >&2; exit 1; }

# The machine's peak: CORES, LANES, GHZ, GHZ_FROM, PEAK.
. "$root/bench/peak.sh"

field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | tail -1; }
rss_mb() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }

# run TAG COMMAND...: runs it under /usr/bin/time -v; leaves out/TAG.json and
# out/TAG.time from the fastest of the runs so far with this TAG (rounds).
run() {
    tag=$1
    shift
    echo "# $tag ..." >&2
    /usr/bin/time -v -o "$out/$tag.new.time" "$@" > "$out/$tag.new.json" 2> "$out/$tag.err" || {
        echo "train.sh: $tag failed:" >&2
        cat "$out/$tag.err" >&2
        exit 1
    }
    if [ "$round" = 1 ] || awk -v a="$(field train_images_per_second "$out/$tag.new.json")" \
        -v b="$(field train_images_per_second "$out/$tag.json")" 'BEGIN { exit !(a > b) }'; then
        mv "$out/$tag.new.json" "$out/$tag.json"
        mv "$out/$tag.new.time" "$out/$tag.time"
    fi
    rm -f "$out/$tag.new.json" "$out/$tag.new.time"
}

models=${*:-mlp cnn}
echo "# $(date -u '+%F %T') $(uptime | sed 's/.*load/load/'), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset} for nabla, best of $ROUNDS rounds"
echo "# $PEAK_LINE"
for m in $models; do
    steps=$MLP_STEPS
    [ "$m" = cnn ] && steps=$CNN_STEPS
    flop=$("$PYTHON" "$root/bench/train_torch.py" "$m" --flops)
    # 0 steps: the whole epoch (nabla train has no --steps then; it refuses 0)
    step_flag=
    [ "$steps" -gt 0 ] && step_flag="--steps $steps"
    for round in $(seq "$ROUNDS"); do
        # shellcheck disable=SC2086 # step_flag is empty or two words
        run "train_${m}_nabla" "$root/$BUILD/nabla" train "$root/examples/$m.cfg" --data fashion-mnist --epochs 1 \
            --batch 128 --lr 0.05 --momentum 0.9 --threads "$THREADS" $step_flag --json
        for t in 1 2; do
            for policy in default PASSIVE; do
                tag=train_${m}_torch_${t}_$policy
                if [ "${REUSE_TORCH:-0}" = 1 ] && [ -s "$out/$tag.json" ]; then
                    :
                elif [ $policy = PASSIVE ]; then
                    run "$tag" env $TORCH_MALLOC OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$root/bench/train_torch.py" "$m" --threads $t --steps "$steps"
                else
                    run "$tag" env -u OMP_WAIT_POLICY $TORCH_MALLOC "$PYTHON" "$root/bench/train_torch.py" "$m" --threads $t --steps "$steps"
                fi
            done
        done
    done
    best=
    for t in 1 2; do
        for policy in default PASSIVE; do
            tag=train_${m}_torch_${t}_$policy
            ips=$(field train_images_per_second "$out/$tag.json")
            if [ -z "$best" ] || awk -v a="$ips" -v b="$(field train_images_per_second "$out/$best.json")" 'BEGIN { exit !(a > b) }'; then
                best=$tag
            fi
        done
    done
    nab=train_${m}_nabla
    awk -v m="$m" -v flop="$flop" -v peak="$PEAK" -v th="$THREADS" -v best="${best#train_"$m"_torch_}" \
        -v ni="$(field train_images_per_second "$out/$nab.json")" -v ti="$(field train_images_per_second "$out/$best.json")" \
        -v ns="$(field steps "$out/$nab.json")" -v ts="$(field steps "$out/$best.json")" \
        -v na="$(field test_accuracy "$out/$nab.json")" -v ta="$(field test_accuracy "$out/$best.json")" \
        -v nm="$(rss_mb "$out/$nab.time")" -v tm="$(rss_mb "$out/$best.time")" '
    BEGIN {
        fpi = flop / 128 # FLOPs per training image
        printf "%s: %.1f MFLOP per step of 128 (dense+conv GEMM work)\n", m, flop / 1e6
        printf "  %-26s | %6s | %9s | %8s | %7s | %8s | %7s\n", "", "steps", "images/s", "GFLOP/s", "of peak", "peak RSS", "test acc"
        printf "  %-26s | %6d | %9.0f | %8.1f | %6.1f%% | %5d MB | %7.4f\n", "nabla " th " threads", ns, ni, ni * fpi / 1e9,
               100 * ni * fpi / 1e9 / peak, nm, na
        printf "  %-26s | %6d | %9.0f | %8.1f | %6.1f%% | %5d MB | %7.4f\n", "torch " best, ts, ti, ti * fpi / 1e9,
               100 * ti * fpi / 1e9 / peak, tm, ta
        printf "  nabla/torch images/s: %.2f\n\n", ni / ti
    }'
done
echo "all PyTorch configurations (images/s):"
for f in "$out"/train_*_torch_*.json; do
    [ -e "$f" ] && printf '  %-32s %s\n' "$(basename "$f" .json)" "$(field train_images_per_second "$f")"
done
