#!/usr/bin/env bash
# targets.sh — the model-level results the README reports, re-run on three
# builds of the same source: native (-march=native: AVX-512 on this project's
# machine), AVX2 only (-march=haswell) and generic x86-64 (-march=x86-64, SSE2).
# Kernels differ between them (AVX-512 row tiles, AVX2 tiles, plain loops), so
# numbers differ in their last bits and training trajectories drift apart: a
# figure holds only if it holds on all three.
# Prints one table row per target and build, and each target's pass/fail
# against its threshold; exit status 1 if any fails. Outputs in bench/out/targets/.
# Usage: bench/targets.sh [mlp] [cnn] [svm] [logreg] [lstm] [dqn]   (default: mlp cnn svm logreg)
# Environment: BUILDS ("native avx2 generic"), THREADS (2), LSTM_STEPS (15000).
# Time on this project's 2 cores: mlp 10 s, cnn 1 min, svm 1 min, logreg 20 s
# per build; lstm 11 min per build; dqn: bench/dqn_targets.sh (10 seeds x 3 games).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILDS=${BUILDS:-native avx2 generic}
LSTM_STEPS=${LSTM_STEPS:-15000}
export NABLA_THREADS=${THREADS:-2}
out=$root/bench/out/targets
mkdir -p "$out"
targets=("$@")
((${#targets[@]})) || targets=(mlp cnn svm logreg)

arch_of() { case $1 in native) echo "-march=native" ;; avx2) echo "-march=haswell" ;; generic) echo "-march=x86-64" ;; esac; }
dir_of() { [[ $1 == native ]] && echo build || echo "build-$1"; }
field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | tail -1; }

for b in $BUILDS; do
    d=$(dir_of "$b")
    make -C "$root" -s -j"$(nproc)" BUILD="$d" ARCH="$(arch_of "$b")" "$d/nabla" >/dev/null ||
        { echo "targets.sh: building $b failed" >&2; exit 1; }
done

status=0
printf '%-8s %-8s %-12s %-10s %s\n' target build figure threshold result
# check TARGET BUILD VALUE OP THRESHOLD
check() {
    local ok
    ok=$(awk -v v="$3" -v t="$5" -v op="$4" 'BEGIN { print (v != "" && (op == ">=" ? v >= t : v <= t)) ? "pass" : "FAIL" }')
    [[ $ok == pass ]] || status=1
    printf '%-8s %-8s %-12s %-10s %s\n' "$1" "$2" "${3:-none}" "$4 $5" "$ok"
}

for t in "${targets[@]}"; do
    for b in $BUILDS; do
        n=$root/$(dir_of "$b")/nabla
        o=$out/$t-$b
        case $t in
        mlp)
            "$n" train "$root/examples/mlp.cfg" --data fashion-mnist --json >"$o.json" 2>"$o.err"
            check mlp "$b" "$(field test_accuracy "$o.json")" ">=" 0.885 ;;
        cnn)
            "$n" train "$root/examples/cnn.cfg" --data fashion-mnist --json >"$o.json" 2>"$o.err"
            check cnn "$b" "$(field test_accuracy "$o.json")" ">=" 0.91 ;;
        svm)
            "$n" convert fashion-mnist --to libsvm --pca 50 --train 10000 --out "$o.fm50" >"$o.err" 2>&1 &&
                "$n" fit svm "$o.fm50" -c 10 -g 0.02 --test "$o.fm50.t" --json >"$o.json" 2>>"$o.err"
            check svm "$b" "$(field test_accuracy "$o.json")" ">=" 0.864 ;;
        logreg)
            "$n" fit logreg fashion-mnist --json >"$o.json" 2>"$o.err"
            check logreg "$b" "$(field test_accuracy "$o.json")" ">=" 0.84 ;;
        lstm)
            "$n" charrnn train --cell lstm --hidden 256 --seq 64 --batch 32 --steps "$LSTM_STEPS" --json >"$o.json" 2>"$o.err"
            check lstm "$b" "$(field val_bpc "$o.json")" "<=" 2.25 ;;
        dqn)
            # bench/dqn_targets.sh's own verdict (CartPole >= 475 for 9 of 10 seeds, Catch, 2048); its table in $o.txt.
            BUILDS="$b" "$root/bench/dqn_targets.sh" >"$o.txt" 2>&1
            check dqn "$b" "$([[ $? == 0 ]] && echo 1 || echo 0)" ">=" 1 ;;
        *) echo "targets.sh: unknown target '$t' (mlp, cnn, svm, logreg, lstm, dqn)" >&2; exit 2 ;;
        esac
    done
done
exit $status
