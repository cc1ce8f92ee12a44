#!/bin/sh
# dqn_targets.sh — the targets for `nabla dqn` (issues 7 and 14), each run with
# the environment's default settings, for every seed on every build, the model
# then judged by `nabla dqn eval MODEL --episodes 100` (seeds 1000000..1000099;
# training episodes use seeds with bit 63 set and model selection 2^62 + i, so
# these are never seen in training):
#   cartpole  mean return >= 475 after <= 100,000 steps, each run under 3
#             minutes, for at least 9 of 10 seeds on each build;
#   catch     >= 95% of the balls caught after <= 50,000 steps, 9 of 10 seeds;
#   2048      mean score >= 3x a uniformly random legal policy on the same
#             seeds and the 512 tile in at least half of the games, 9 of 10
#             seeds (2,000,000 steps a run: hours on two cores).
# The builds: native (-march=native: AVX-512 where the machine has it),
# avx2 (-march=haswell) and generic (-march=x86-64), made if missing. Floating
# point differs between them (vector widths, FMA), so each is its own sample of
# runs, not a copy. Prints a table per game (one row per seed, one column per
# build, MISS after a value that misses) and a verdict per game and build;
# exits 1 if a target is missed.
# Usage: bench/dqn_targets.sh [cartpole] [catch] [2048]   (default: all three)
# Environment: SEEDS (default 1..10), BUILDS (default "native avx2 generic"),
# JOBS (runs at once, default 1: on two cores keep 1 for honest wall times),
# NEED (seeds that must pass, default 9 for 10 seeds: all but one in ten),
# KEEP=1 (keep the runs whose evaluation is already in bench/out, so a long
# sweep can be done in parts: BUILDS=native, then BUILDS=generic, ..., then
# KEEP=1 with all builds only prints the table).
# Models, logs, JSON and timings go to bench/out/.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
SEEDS=${SEEDS:-1 2 3 4 5 6 7 8 9 10}
BUILDS=${BUILDS:-native avx2 generic}
JOBS=${JOBS:-1}
KEEP=${KEEP:-0}
out=$root/bench/out
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "dqn_targets.sh: /usr/bin/time missing: apt-get install time" >&2; exit 1; }
envs=${*:-cartpole catch 2048}
nseeds=$(echo $SEEDS | wc -w)
NEED=${NEED:-$(( (nseeds * 9 + 9) / 10 ))}

# folder BUILD-NAME / arch BUILD-NAME
folder() { case $1 in native) echo build ;; *) echo "build-$1" ;; esac; }
arch() {
    case $1 in
    native) echo "-march=native" ;;
    avx2) echo "-march=haswell" ;;
    generic) echo "-march=x86-64" ;;
    *) echo "dqn_targets.sh: unknown build '$1' (expected native, avx2 or generic)" >&2; exit 2 ;;
    esac
}
for b in $BUILDS; do
    a=$(arch "$b") || exit 2
    f=$(folder "$b")
    if [ ! -x "$root/$f/nabla" ]; then
        echo "dqn_targets.sh: building $f/nabla ($a)" >&2
        make -C "$root" BUILD="$f" ARCH="$a" -j2 "$f/nabla" >/dev/null || exit 1
    fi
done

field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" 2>/dev/null | tail -1; }
# run TAG ENV BUILD ARGS...: training (timed), then the evaluation of its model
run() {
    tag=$1 env=$2 nabla=$root/$(folder "$3")/nabla
    shift 3
    if [ "$KEEP" = 1 ] && [ -s "$out/dqn_$tag.json" ] && [ -s "$out/dqn_$tag.time" ]; then
        return 0
    fi
    /usr/bin/time -f "%e %U %S" -o "$out/dqn_$tag.time" "$nabla" dqn train "$env" --out "$out/dqn_$tag.st" \
        --log "$out/dqn_$tag.csv" --episodes 0 --threads 1 "$@" >/dev/null 2>"$out/dqn_$tag.err" &&
        "$nabla" dqn eval "$out/dqn_$tag.st" --episodes 100 --json >"$out/dqn_$tag.json" 2>>"$out/dqn_$tag.err" ||
        echo "dqn_targets.sh: $tag failed: $(tail -2 "$out/dqn_$tag.err")" >&2
}
running=0
launch() {
    if [ "$JOBS" -le 1 ]; then
        "$@"
        return
    fi
    "$@" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait
        running=0
    fi
}
# judge ENV TAG: the cell of the table ("value" or "value MISS")
judge() {
    j=$out/dqn_$2.json
    w=$(awk '{ print $1 }' "$out/dqn_$2.time" 2>/dev/null)
    case $1 in
    cartpole)
        m=$(field mean_return "$j")
        [ -n "$m" ] || { echo "none MISS"; return; }
        awk -v m="$m" -v w="${w:-999}" 'BEGIN { printf "%.1f%s", m, (m >= 475 && w < 180) ? "" : " MISS" }' ;;
    catch)
        f=$(field caught_fraction "$j")
        [ -n "$f" ] || { echo "none MISS"; return; }
        awk -v f="$f" 'BEGIN { printf "%.2f%s", f, (f >= 0.95) ? "" : " MISS" }' ;;
    2048)
        q=$(field ratio_to_random "$j") f=$(field reached_512_fraction "$j")
        [ -n "$q" ] && [ -n "$f" ] || { echo "none MISS"; return; }
        awk -v q="${q:-0}" -v f="${f:-0}" 'BEGIN { printf "x%.1f 512:%.2f%s", q, f, (q >= 3 && f >= 0.5) ? "" : " MISS" }' ;;
    esac
}

status=0
for env in $envs; do
    case $env in
    cartpole) what="mean greedy return, 100 episodes (target >= 475, < 180 s a run)" ;;
    catch) what="caught fraction, 100 episodes (target >= 0.95)" ;;
    2048) what="score / random policy's, 512-tile fraction (targets x3, >= 0.5)" ;;
    *) echo "dqn_targets.sh: unknown target '$env' (expected cartpole, catch or 2048)" >&2; exit 2 ;;
    esac
    for b in $BUILDS; do
        for s in $SEEDS; do
            launch run "${env}_${b}_$s" "$env" "$b" --seed "$s"
        done
    done
    wait
    running=0
    echo "$env: $what"
    printf '%-6s' seed
    for b in $BUILDS; do printf ' %-20s' "$b"; done
    echo
    for s in $SEEDS; do
        printf '%-6s' "$s"
        for b in $BUILDS; do printf ' %-20s' "$(judge "$env" "${env}_${b}_$s")"; done
        echo
    done
    for b in $BUILDS; do
        pass=0
        for s in $SEEDS; do
            case $(judge "$env" "${env}_${b}_$s") in *MISS*) ;; *) pass=$((pass + 1)) ;; esac
        done
        verdict=MET
        [ "$pass" -ge "$NEED" ] || { verdict=MISSED; status=1; }
        awk -v b="$b" -v e="$env" -v p="$pass" -v n="$nseeds" -v k="$NEED" -v v="$verdict" \
            'BEGIN { printf "%s on %s: %d of %d seeds meet the target (need %d): %s\n", e, b, p, n, k, v }'
        awk '{ w += $1; c += $2 + $3; n++ } END { if (n) printf "  %d runs: %.0f s wall, %.0f s cpu in all\n", n, w, c }' \
            $(for s in $SEEDS; do echo "$out/dqn_${env}_${b}_$s.time"; done) 2>/dev/null
    done
done
exit $status
