#!/bin/sh
# ops.sh — op-by-op speed of nabla against PyTorch (issue 2's speed target).
# Runs bench/ops_bench (nabla, THREADS threads) and bench/ops_torch.py in four
# configurations (1 and 2 threads, with and without OMP_WAIT_POLICY=PASSIVE;
# 1 thread only with CLOCK=cpu), keeps PyTorch's fastest per op, and prints:
#   op | nabla ms | torch ms | torch config | ratio (torch/nabla, > 1: nabla faster)
# then nabla's matmul against OpenBLAS's cblas_sgemm at the same size.
# Usage: bench/ops.sh [NAME...]      (NAMEs select cases, as ops_bench)
# Everything runs ROUNDS times (default 3), interleaved; each side keeps its
# fastest time per op.
# Environment: THREADS (default 2), REPS (default 21), ROUNDS (default 3), BUILD (library folder
# relative to the repo root, default build), PYTHON (default /usr/bin/python3),
# REUSE_TORCH=1 (keep PyTorch's results from the last run in bench/out/),
# CLOCK=cpu (time by process CPU time, robust to other load on a shared
# machine: both sides then run 1 thread only, as CPU time is meaningless for
# more).
# nabla runs in the caller's environment (try OMP_WAIT_POLICY=PASSIVE too).
# Raw outputs are kept in bench/out/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
CLOCK=${CLOCK:-wall}
THREADS=${THREADS:-2}
torch_threads="1 2"
cpu=
if [ "$CLOCK" = cpu ]; then
    THREADS=1 torch_threads=1 cpu=--cpu
fi
REPS=${REPS:-21}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. "$root/bench/torch_env.sh" # TORCH_MALLOC: PyTorch without glibc's heap trimming
out=$root/bench/out
mkdir -p "$out"

make -s -B -C "$root/bench" NABLA_BUILD="$root/$BUILD" ops_bench >&2
"$PYTHON" -c 'import torch' 2>/dev/null || {
    echo "ops.sh: PyTorch missing: apt-get install python3-torch" >&2
    exit 1
}

echo "# $(date -u '+%F %T') $(uptime | sed 's/.*load/load/'), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} for nabla, $CLOCK clock"
# ROUNDS rounds, each nabla then PyTorch's configurations, keeping every
# op's fastest time on each side: the machine's speed drifts by tens of
# percent within minutes, and one pass would compare two different machines.
: > "$out/ops_nabla_all.txt"
for round in $(seq "$ROUNDS"); do
    echo "# round $round: nabla, $THREADS threads ..." >&2
    NABLA_THREADS=$THREADS "$root/bench/ops_bench" --reps "$REPS" $cpu "$@" >> "$out/ops_nabla_all.txt"
    for t in $torch_threads; do
        [ "${REUSE_TORCH:-0}" = 1 ] && [ -s "$out/ops_torch_${t}_default$cpu.txt" ] && continue
        for policy in default PASSIVE; do
            echo "# round $round: torch, $t threads, OMP_WAIT_POLICY=$policy ..." >&2
            [ "$round" = 1 ] && : > "$out/ops_torch_${t}_$policy$cpu.txt"
            if [ $policy = PASSIVE ]; then
                env $TORCH_MALLOC OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$root/bench/ops_torch.py" --threads "$t" --reps "$REPS" $cpu "$@"
            else
                env -u OMP_WAIT_POLICY $TORCH_MALLOC "$PYTHON" "$root/bench/ops_torch.py" --threads "$t" --reps "$REPS" $cpu "$@"
            fi | sed "/^#/d; s/\$/ ${t}t-$policy/" >> "$out/ops_torch_${t}_$policy$cpu.txt"
        done
    done
done
# nabla's fastest run of each op, in the order of the cases.
awk '/^#/ { if (!hdr++) print; next }
     !($1 in t) { order[++n] = $1; t[$1] = $2; line[$1] = $0; next }
     $2 < t[$1] { t[$1] = $2; line[$1] = $0 }
     END { for (i = 1; i <= n; i++) print line[order[i]] }' "$out/ops_nabla_all.txt" > "$out/ops_nabla.txt"
for t in $torch_threads; do cat "$out/ops_torch_${t}_default$cpu.txt" "$out/ops_torch_${t}_PASSIVE$cpu.txt"; done \
    > "$out/ops_torch_all.txt"
awk -v threads="$THREADS" -v tt="$(echo "$torch_threads" | tr ' ' ,)" -v clock="$CLOCK" '
    FNR == NR { # the PyTorch runs: keep the fastest time per op
        if (!($1 in best) || $2 < best[$1]) { best[$1] = $2; cfg[$1] = $5 }
        next
    }
    /^#/ { next }
    { nab[$1] = $2; order[++n] = $1 }
    END {
        printf "nabla %s threads vs PyTorch fastest of {%s} threads x {default, OMP_WAIT_POLICY=PASSIVE}; %s time\n", threads, tt, clock
        printf "%-32s | %9s | %9s | %-11s | %s\n", "op", "nabla ms", "torch ms", "torch cfg", "torch/nabla"
        slower = 0
        for (i = 1; i <= n; i++) {
            op = order[i]
            if (!(op in best)) continue
            r = best[op] / nab[op]
            if (r < 1) slower++
            printf "%-32s | %9.4f | %9.4f | %-11s | %6.2f%s\n", op, nab[op], best[op], cfg[op], r, r < 1 ? "  <- slower" : ""
        }
        printf "ops where nabla is slower than PyTorch: %d\n\n", slower
        printf "GEMM 128x784 @ 784x256, nabla vs OpenBLAS cblas_sgemm (target: within 10%%)\n"
        if ("sgemm_128x784x256" in nab && "matmul_fwd_128x784x256" in nab)
            printf "  forward:  nb_matmul %.4f ms, sgemm %.4f ms: sgemm/nabla %.2f\n", nab["matmul_fwd_128x784x256"],
                nab["sgemm_128x784x256"], nab["sgemm_128x784x256"] / nab["matmul_fwd_128x784x256"]
        if ("sgemm3_128x784x256" in nab && "matmul_128x784x256" in nab)
            printf "  fwd+bwd:  nb_matmul %.4f ms, 3 x sgemm %.4f ms: sgemm/nabla %.2f\n", nab["matmul_128x784x256"],
                nab["sgemm3_128x784x256"], nab["sgemm3_128x784x256"] / nab["matmul_128x784x256"]
    }' "$out/ops_torch_all.txt" "$out/ops_nabla.txt"
