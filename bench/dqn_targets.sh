#!/bin/sh
# dqn_targets.sh — issue 7's targets for `nabla dqn`, each trained with the
# environment's default settings and judged on 100 greedy evaluation episodes
# (seeds 1000000..1000099, never used in training):
#   cartpole  mean return >= 475 after <= 100,000 steps for at least 4 of 5
#             seeds, each run under 3 minutes;
#   catch     >= 95% of the balls caught after <= 50,000 steps;
#   2048      mean score >= 3x a uniformly random legal policy on the same
#             seeds, and the 512 tile in at least half of the games (the
#             highest-tile distribution is printed).
# Prints one line per run (wall and CPU seconds from /usr/bin/time) and a
# verdict per target; exits 1 if a target is missed.
# Usage: bench/dqn_targets.sh [cartpole] [catch] [2048]   (default: all three)
# Environment: BUILD (default build), JOBS (runs at once, default 1; on two
# cores keep 1 for honest wall times), SEEDS (CartPole's, default "1 2 3 4 5"),
# SEED (Catch's and 2048's, default 1). Models, logs and JSON go to bench/out/.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
JOBS=${JOBS:-1}
SEEDS=${SEEDS:-1 2 3 4 5}
SEED=${SEED:-1}
nabla=$root/$BUILD/nabla
out=$root/bench/out
mkdir -p "$out"
[ -x "$nabla" ] || { echo "dqn_targets.sh: $nabla missing: make" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "dqn_targets.sh: /usr/bin/time missing: apt-get install time" >&2; exit 1; }
envs=${*:-cartpole catch 2048}

field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | tail -1; }
# train TAG ENV ARGS...: one training run with its final evaluation, timed.
train() {
    tag=$1 env=$2
    shift 2
    /usr/bin/time -f "%e %U %S" -o "$out/dqn_$tag.time" "$nabla" dqn train "$env" --out "$out/dqn_$tag.st" \
        --log "$out/dqn_$tag.csv" --json "$@" >"$out/dqn_$tag.json" 2>"$out/dqn_$tag.err" ||
        echo "dqn_targets.sh: $tag failed: $(tail -2 "$out/dqn_$tag.err")" >&2
}
# timing TAG: "wall s, cpu s"
timing() { awk '{ printf "%6.1f s wall, %6.1f s cpu", $1, $2 + $3 }' "$out/dqn_$1.time" 2>/dev/null; }
# launch CMD...: in the foreground with JOBS=1, else in batches of JOBS
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

status=0
for env in $envs; do
    case $env in
    cartpole)
        for s in $SEEDS; do
            launch train "cartpole_$s" cartpole --seed "$s" --steps 100000
        done
        wait
        running=0
        pass=0 n=0
        for s in $SEEDS; do
            m=$(field mean_return "$out/dqn_cartpole_$s.json")
            w=$(awk '{ print $1 }' "$out/dqn_cartpole_$s.time" 2>/dev/null)
            ok=$(awk -v m="${m:-0}" -v w="${w:-999}" 'BEGIN { print (m >= 475 && w < 180) ? "ok" : "MISS" }')
            n=$((n + 1))
            [ "$ok" = ok ] && pass=$((pass + 1))
            printf 'cartpole seed %s: mean greedy return %7s over 100 episodes (100000 steps; %s) %s\n' "$s" "$m" \
                "$(timing "cartpole_$s")" "$ok"
        done
        verdict=MISSED
        [ "$pass" -ge 4 ] && verdict=MET
        [ "$n" -lt 5 ] && verdict="$verdict (only $n seeds run)"
        echo "cartpole: $pass of $n seeds >= 475 in under 3 minutes (target: 4 of 5): $verdict"
        [ "$pass" -ge 4 ] || status=1
        ;;
    catch)
        train "catch_$SEED" catch --seed "$SEED"
        f=$(field caught_fraction "$out/dqn_catch_$SEED.json")
        st=$(field steps "$out/dqn_catch_$SEED.json")
        verdict=$(awk -v f="${f:-0}" -v s="${st:-0}" 'BEGIN { print (f >= 0.95 && s <= 50000) ? "MET" : "MISSED" }')
        echo "catch seed $SEED: caught fraction $f over 100 episodes after $st steps ($(timing "catch_$SEED")): $verdict (target >= 0.95, <= 50000 steps)"
        [ "$verdict" = MET ] || status=1
        ;;
    2048)
        train "2048_$SEED" 2048 --seed "$SEED"
        j=$out/dqn_2048_$SEED.json
        m=$(field mean_return "$j") r=$(field random_mean_return "$j") q=$(field ratio_to_random "$j")
        f=$(field reached_512_fraction "$j") st=$(field steps "$j")
        verdict=$(awk -v q="${q:-0}" -v f="${f:-0}" 'BEGIN { print (q >= 3 && f >= 0.5) ? "MET" : "MISSED" }')
        echo "2048 seed $SEED: mean score $m vs random $r (x$q) over 100 games after $st steps ($(timing "2048_$SEED"))"
        echo "2048 highest tile in 100 games: $(sed -n 's/.*"highest_tile": {\([^}]*\)}.*/\1/p' "$j")"
        echo "2048: 512 or more in a fraction $f of the games: $verdict (targets: x3 random, 512 in >= 0.5)"
        [ "$verdict" = MET ] || status=1
        ;;
    *) echo "dqn_targets.sh: unknown target '$env' (expected cartpole, catch or 2048)" >&2; exit 2 ;;
    esac
done
exit $status
