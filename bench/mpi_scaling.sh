#!/usr/bin/env bash
# mpi_scaling.sh — issue 19's scaling figure: training images/s of the MLP
# and the CNN of examples/ on Fashion-MNIST (batch 128, SGD lr 0.05 momentum
# 0.9, as bench/train.sh) for 1 rank x 2 threads (no mpirun), 2 ranks x 1
# thread over shared memory (mpirun -np 2) and 2 ranks x 1 thread on two
# "hosts": network namespaces joined by a veth pair, mpirun over TCP
# (--mca btl tcp,self). Prints per model and configuration images/s, the
# bytes allreduced per step, the seconds spent in MPI_Allreduce and their
# share of the training time, the seconds the ranks waited for the slowest
# one before it (a barrier), and the step time.
# Every configuration runs ROUNDS times (default 2), rounds interleaved, and
# keeps its fastest run. The veth rows need root (ip netns); without it they
# are left out with a note.
# Usage: bench/mpi_scaling.sh [mlp] [cnn]
# Environment: BUILD (default build), MLP_STEPS (default 300), CNN_STEPS
# (default 60), ROUNDS (default 2). Raw outputs are kept in bench/out/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
MLP_STEPS=${MLP_STEPS:-300}
CNN_STEPS=${CNN_STEPS:-60}
ROUNDS=${ROUNDS:-2}
NABLA=$root/$BUILD/nabla
out=$root/bench/out
mkdir -p "$out"
[ -x "$NABLA" ] || { echo "mpi_scaling.sh: $NABLA missing: make" >&2; exit 1; }
ldd "$NABLA" | grep -q libmpi || { echo "mpi_scaling.sh: $NABLA was built without MPI (scripts/install-deps.sh, make)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
NS=nbbench$$
veth=0
cleanup() { ip netns del "${NS}a" 2>/dev/null || true; ip netns del "${NS}b" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
# The two hosts (as tests/mpi.sh): A 10.78.0.1 runs mpirun, rank 1's daemon
# is started in B by a launch agent that enters B instead of ssh.
if ip netns add "${NS}a" 2>/dev/null && ip netns add "${NS}b" && ip link add "${NS}x" type veth peer name "${NS}y" &&
    ip link set "${NS}x" netns "${NS}a" && ip link set "${NS}y" netns "${NS}b" &&
    ip -n "${NS}a" addr add 10.78.0.1/24 dev "${NS}x" && ip -n "${NS}b" addr add 10.78.0.2/24 dev "${NS}y" &&
    ip -n "${NS}a" link set "${NS}x" up && ip -n "${NS}b" link set "${NS}y" up &&
    ip -n "${NS}a" link set lo up && ip -n "${NS}b" link set lo up; then
    veth=1
    printf '#!/bin/sh\nhost=$1; shift\nexec ip netns exec %s sh -c "$*"\n' "${NS}b" >"$tmp/agent"
    chmod +x "$tmp/agent"
    printf '10.78.0.1 slots=1\n10.78.0.2 slots=1\n' >"$tmp/hosts"
else
    echo "# network namespaces not allowed here: no veth rows" >&2
fi

field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | tail -1; }

# run TAG COMMAND...: keeps out/mpi_TAG.json of the fastest run so far.
run() {
    local tag=mpi_$1
    shift
    echo "# $tag ..." >&2
    "$@" >"$out/$tag.new.json" 2>"$out/$tag.err" || { echo "mpi_scaling.sh: $tag failed:" >&2; cat "$out/$tag.err" >&2; exit 1; }
    if [ "$round" = 1 ] || awk -v a="$(field train_images_per_second "$out/$tag.new.json")" \
        -v b="$(field train_images_per_second "$out/$tag.json")" 'BEGIN { exit !(a > b) }'; then
        mv "$out/$tag.new.json" "$out/$tag.json"
    fi
    rm -f "$out/$tag.new.json"
}

models=${*:-mlp cnn}
echo "# $(date -u '+%F %T') $(uptime | sed 's/.*load/load/'), $(nproc) cores, best of $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    for m in $models; do
        steps=$MLP_STEPS
        [ "$m" = cnn ] && steps=$CNN_STEPS
        args=(train "$root/examples/$m.cfg" --data fashion-mnist --epochs 1 --steps "$steps" --batch 128 --lr 0.05
            --momentum 0.9 --seed 1 --json)
        run "${m}_1x2" env NABLA_THREADS=2 "$NABLA" "${args[@]}"
        run "${m}_2x1" mpirun -np 2 --bind-to none -x NABLA_THREADS=1 "$NABLA" "${args[@]}"
        if [ $veth = 1 ]; then
            run "${m}_2x1_veth" ip netns exec "${NS}a" mpirun -np 2 --hostfile "$tmp/hosts" --bind-to none \
                --mca plm_rsh_agent "$tmp/agent" --mca btl tcp,self --mca btl_tcp_if_include 10.78.0.0/24 \
                --mca oob_tcp_if_include 10.78.0.0/24 -x NABLA_THREADS=1 "$NABLA" "${args[@]}"
        fi
    done
done

printf '\n  %-5s | %-26s | %8s | %16s | %11s | %6s | %9s | %8s\n' model configuration images/s "allreduce B/step" "allreduce s" share "waiting s" ms/step
for m in $models; do
    for c in 1x2 2x1 2x1_veth; do
        f=$out/mpi_${m}_$c.json
        [ -s "$f" ] || continue
        case $c in 1x2) name="1 rank x 2 threads" ;; 2x1) name="2 ranks x 1 thread, shm" ;; *) name="2 ranks x 1 thread, veth" ;; esac
        awk -v m="$m" -v name="$name" -v ips="$(field train_images_per_second "$f")" -v ts="$(field train_seconds "$f")" \
            -v st="$(field steps "$f")" -v b="$(field allreduce_bytes_per_step "$f")" -v ar="$(field allreduce_seconds "$f")" \
            -v wt="$(field allreduce_wait_seconds "$f")" \
            'BEGIN { if (b == "") { b = w = a = sh = "-" } else { a = sprintf("%.3f", ar); w = sprintf("%.3f", wt); sh = sprintf("%.0f%%", 100 * ar / ts) }
                     printf "  %-5s | %-26s | %8.0f | %16s | %11s | %6s | %9s | %8.2f\n", m, name, ips, b, a, sh, w, 1000 * ts / st }'
    done
done
