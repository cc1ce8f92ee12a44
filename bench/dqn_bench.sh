#!/usr/bin/env bash
# dqn_bench.sh — deep Q-learning with experience replay (`nabla dqn train`, notes §4.3) against PyTorch (Debian's
# python3-torch, bench/dqn_torch.py) on CartPole (the MLP Q-network) and Catch (the CNN on pixels), every setting as
# the game's default of `nabla dqn train` (dqn_torch.py reads them, and the initial weights, from the model file of
# `nabla dqn train ENV --steps 0`):
#   parity:  from the same weights, Adam state and minibatches (nabla's checkpoints around its updates; dqn_torch.py
#            replays nabla's PCG32 sampler), PARITY_UPDATES updates on both sides; the weight changes must agree
#            within a normwise relative TOL (default 1e-4);
#   learner: updates per second of the learner alone (bench/dqn_bench.c times nb_dqn_update; dqn_torch.py the same
#            update: a minibatch drawn from the filled replay memory, targets from the target network, forward,
#            backward, clipping, Adam), each side at 1 and 2 threads (PyTorch also with OMP_WAIT_POLICY=PASSIVE;
#            nabla in the caller's environment, by default the command's short spins), best of ROUNDS interleaved
#            rounds; GFLOP/s from the FLOPs of an update. This is the comparison of the two libraries: the headline;
#   loop:    environment steps per second of the whole training loop (`nabla dqn train --steps N --json`) against
#            dqn_torch.py train, the same loop in Python with the games written in Python: its environment cost
#            is Python's, not PyTorch's. PyTorch runs in its fastest learner configuration. The mean return of the
#            last 100 training episodes of each side's last run shows that both learn alike.
# Usage: bench/dqn_bench.sh [cartpole] [catch]
#   (env: NABLA, BUILD (default build), UPDATES=2000, ROUNDS=3, STEPS_CARTPOLE=10000, STEPS_CATCH=5000,
#    PARITY_UPDATES="1 10", TOL=1e-4)
# The last lines give each ratio nabla/PyTorch (> 1: nabla faster).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
NABLA=${NABLA:-$ROOT/$BUILD/nabla}
PY=/usr/bin/python3
. "$ROOT/bench/torch_env.sh" # TORCH_MALLOC: PyTorch without glibc's heap trimming
UPDATES=${UPDATES:-2000}
ROUNDS=${ROUNDS:-3}
STEPS_CARTPOLE=${STEPS_CARTPOLE:-10000}
STEPS_CATCH=${STEPS_CATCH:-5000}
PARITY_UPDATES=${PARITY_UPDATES:-1 10}
TOL=${TOL:-1e-4}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[[ -x $NABLA ]] || { echo "dqn_bench.sh: build nabla first (make), or set NABLA" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "dqn_bench.sh: PyTorch missing: apt-get install python3-torch" >&2; exit 1; }
make -s -C "$ROOT/bench" NABLA_BUILD="$ROOT/$BUILD" dqn_bench >&2
DQN=$ROOT/bench/dqn_bench
# bench/dqn_bench runs as the nabla command does (cli/nabla.c): with libgomp's short spins, GOMP_SPINCOUNT=3000,
# unless the caller chose a wait policy or a spin count.
NABLA_ENV=(env)
[ -n "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ] || NABLA_ENV=(env GOMP_SPINCOUNT=3000)

field() { sed -n 's/.*"'"$1"'": \([-0-9.e+]*\).*/\1/p' | tail -1; }
max() { awk 'BEGIN { m = 0 } { if ($1 > m) m = $1 } END { printf "%.1f", m }'; }
faster() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# torch_env POLICY: PyTorch's environment for OpenMP's default wait policy or PASSIVE, into the array TENV
torch_env() {
    # shellcheck disable=SC2206 # TORCH_MALLOC is two words
    if [ "$1" = PASSIVE ]; then TENV=(env $TORCH_MALLOC OMP_WAIT_POLICY=PASSIVE); else TENV=(env -u OMP_WAIT_POLICY $TORCH_MALLOC); fi
}
envs=${*:-cartpole catch}
for env in $envs; do
    case $env in cartpole | catch) ;; *) echo "dqn_bench.sh: unknown game '$env' (expected cartpole or catch)" >&2; exit 2 ;; esac
done
echo "# $(date -u '+%F %T') machine load $(load); best of $ROUNDS rounds; $("$NABLA" --version 2>/dev/null | head -1)"
status=0
summary=()
for env in $envs; do
    # The game's default settings and the initial weights of seed 1, for PyTorch.
    "$NABLA" dqn train "$env" --steps 0 --seed 1 --episodes 0 --out "$WORK/$env.init.st" >/dev/null 2>&1
    flop=$($PY "$ROOT/bench/dqn_torch.py" flops --model "$WORK/$env.init.st" | field flop_per_update)
    batch=$("$DQN" "$env" --updates 1 --warmup 0 --fill 1 | field batch)

    echo "== $env: parity, the same updates from the same weights, Adam state and minibatches (tolerance $TOL)"
    for k in $PARITY_UPDATES; do
        mkdir -p "$WORK/par"
        "$DQN" "$env" --parity "$WORK/par" --updates "$k" >/dev/null
        line=$($PY "$ROOT/bench/dqn_torch.py" parity "$WORK/par/before.safetensors" "$WORK/par/after.safetensors" \
            --tol "$TOL") || true
        e=$(field max_rel_err_weight_change <<<"$line") tn=$(field td_error_nabla <<<"$line") tt=$(field td_error_torch <<<"$line")
        ok=$(awk -v e="${e:-1}" -v t="$TOL" 'BEGIN { print (e != "" && e <= t) ? "PASS" : "FAIL" }')
        [ "$ok" = PASS ] || status=1
        printf '  %2d update(s): max |dW_nabla - dW_torch| / max |dW_torch| = %.2e; TD error nabla %.7f, PyTorch %.7f: %s\n' \
            "$k" "${e:-nan}" "${tn:-nan}" "${tt:-nan}" "$ok"
    done

    mflop=$(awk -v f="$flop" 'BEGIN { printf "%.2f", f / 1e6 }')
    echo "== $env: learner, $UPDATES updates of batch $batch from a filled replay memory ($mflop MFLOP each)"
    for _ in $(seq "$ROUNDS"); do
        for t in 1 2; do
            "${NABLA_ENV[@]}" "$DQN" "$env" --updates "$UPDATES" --threads $t | field updates_per_second >>"$WORK/$env.nabla$t"
            for policy in default PASSIVE; do
                torch_env $policy
                "${TENV[@]}" $PY "$ROOT/bench/dqn_torch.py" learner --model "$WORK/$env.init.st" --updates "$UPDATES" --threads $t |
                    field updates_per_second >>"$WORK/$env.torch${t}_$policy"
            done
        done
    done
    bn=1 bt=1_default
    for t in 1 2; do
        faster "$(max <"$WORK/$env.nabla$t")" "$(max <"$WORK/$env.nabla$bn")" && bn=$t
        for policy in default PASSIVE; do
            faster "$(max <"$WORK/$env.torch${t}_$policy")" "$(max <"$WORK/$env.torch$bt")" && bt=${t}_$policy
        done
    done
    printf '  %-32s %12s %12s\n' "updates/s (GFLOP/s)" "1 thread" "2 threads"
    for side in nabla torch; do
        for policy in "" _default _PASSIVE; do
            [ $side = nabla ] && [ -n "$policy" ] && continue
            [ $side = torch ] && [ -z "$policy" ] && continue
            label=$side${policy:+ ${policy#_}}
            [ $side = torch ] && label="pytorch ${policy#_}"
            a1=$(max <"$WORK/$env.$side"1$policy) a2=$(max <"$WORK/$env.$side"2$policy)
            awk -v l="$label" -v a="$a1" -v b="$a2" -v f="$flop" 'BEGIN {
                printf "  %-32s %12s %12s\n", l, sprintf("%.0f (%.1f)", a, a * f / 1e9), sprintf("%.0f (%.1f)", b, b * f / 1e9) }'
        done
    done
    ln=$(max <"$WORK/$env.nabla$bn") lt=$(max <"$WORK/$env.torch$bt")
    summary+=("$(awk -v e="$env" -v n="$ln" -v p="$lt" -v bn="$bn" -v bt="$bt" -v f="$flop" 'BEGIN {
        printf "%-8s %-14s nabla %.0f updates/s (%d thread%s, %.1f GFLOP/s), PyTorch %.0f (%s, %.1f GFLOP/s): ",
            e, "learner:", n, bn, (bn > 1 ? "s" : ""), n * f / 1e9, p, bt, p * f / 1e9
        printf "nabla/PyTorch %.2fx", n / p }')")

    steps=$STEPS_CARTPOLE
    [ "$env" = catch ] && steps=$STEPS_CATCH
    echo "== $env: the whole training loop, $steps steps from seed 1 (PyTorch as its fastest learner: $bt; its games in Python)"
    tt=${bt%%_*} policy=${bt#*_}
    torch_env "$policy"
    for _ in $(seq "$ROUNDS"); do
        for t in 1 2; do
            "$NABLA" dqn train "$env" --steps "$steps" --seed 1 --episodes 0 --threads $t --json 2>/dev/null \
                >>"$WORK/$env.loop_nabla$t"
        done
        "${TENV[@]}" $PY "$ROOT/bench/dqn_torch.py" train --model "$WORK/$env.init.st" --steps "$steps" --threads "$tt" \
            >>"$WORK/$env.loop_torch"
    done
    n1=$(field steps_per_second <"$WORK/$env.loop_nabla1" | max) n2=$(field steps_per_second <"$WORK/$env.loop_nabla2" | max)
    p=$(field steps_per_second <"$WORK/$env.loop_torch" | max)
    printf '  steps/s: nabla %s (1 thread), %s (2 threads); PyTorch + Python %s (%s)\n' "$n1" "$n2" "$p" "$bt"
    awk -v n="$(tail -1 "$WORK/$env.loop_nabla1" | field train_mean100)" -v p="$(tail -1 "$WORK/$env.loop_torch" | field train_mean100)" \
        'BEGIN { printf "  mean return of the last 100 training episodes: nabla %.2f, PyTorch %.2f\n", n, p }'
    summary+=("$(awk -v e="$env" -v a="$n1" -v b="$n2" -v p="$p" 'BEGIN { n = a > b ? a : b
        printf "%-8s training loop: nabla %.0f steps/s, PyTorch with games in Python %.0f: nabla/PyTorch %.2fx", e, n, p, n / p }')")
done
echo "== summary (machine load $(load)); > 1: nabla faster; the learner is the comparison of the libraries"
printf '%s\n' "${summary[@]}"
exit $status
