#!/usr/bin/env bash
# mpi.sh — data-parallel training under mpirun (cli/dist.c), `mpirun
# --oversubscribe -np N` (through OMPI_MCA_rmaps_base_oversubscribe): N ranks
# of `nabla train` and `nabla charrnn train` give the weights of one process
# with the same global batch, a resumed run the weights of an uninterrupted
# one, a killed rank ends the job with a message and an intact checkpoint,
# ranks that diverge or overflow are stopped, and two "hosts" (network
# namespaces joined by a veth pair) train over TCP until their link is cut.
# In a build without MPI only checks that the command says how to get it.
# Usage: tests/mpi.sh [NAME...]  (runs the tests whose names contain NAME)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NABLA=${NABLA:-$ROOT/build/nabla}
. "$ROOT/tests/lib.sh"
if ! ldd "$NABLA" 2>/dev/null | grep -q libmpi; then
    # Started by a launcher (its environment) a build without MPI says how to get one.
    mpi_without_mpi_says_how() {
        OMPI_COMM_WORLD_SIZE=2 "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --steps 1 2>"$TMPDIR_ERR" &&
            fail "ran as one of 2 processes without MPI"
        grep -q "built without MPI: install libopenmpi-dev" "$TMPDIR_ERR" || fail "message: $(cat "$TMPDIR_ERR")"
    }
    echo "  ($NABLA was built without MPI: the mpirun tests are skipped; scripts/install-deps.sh, then make)"
    TMPDIR_ERR=$(mktemp)
    run_selected mpi "$@"
    rc=$?
    rm -f "$TMPDIR_ERR"
    exit $rc
fi
command -v mpirun >/dev/null || { echo "  (mpirun missing: skipped; scripts/install-deps.sh)"; summary; exit 0; }
WORK=$(mktemp -d)
NS=nbmpi$$
cleanup() {
    local p
    for p in $(ip netns pids "${NS}b" 2>/dev/null) $(ip netns pids "${NS}a" 2>/dev/null); do kill -9 "$p"; done
    ip netns del "${NS}a" 2>/dev/null
    ip netns del "${NS}b" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
# One thread per rank; root may run mpirun; oversubscribe a 2-core machine.
export NABLA_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
# Shared-memory peers yield the core while they wait (tests share the machine).
export OMPI_MCA_mpi_yield_when_idle=1
# Containers often forbid cross-memory attach (process_vm_readv) between processes: shared-memory
# transfers then go through copies in the shared segment, which work everywhere.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(timeout 60 mpirun -np) # a hang fails the test instead of the suite

# A 3-class problem, 3,000 rows of 8 features (label last): 2,700 to train.
awk 'BEGIN { srand(5); for (i = 0; i < 3000; i++) { s = 0; for (j = 0; j < 8; j++) { x[j] = rand() * 2 - 1; printf "%.4f,", x[j] }
      t = x[0] + x[1] - x[2] * x[3]; print (t < -0.3 ? 0 : t < 0.3 ? 1 : 2) } }' >"$WORK/d.csv"
printf '[net]\ninput = 8\n[dense]\nout = 32\nactivation = tanh\n[dense]\nout = 3\n' >"$WORK/net.cfg"
printf '[net]\ninput = 8\n[dense]\nout = 32\nactivation = relu\n[dropout]\np = 0.3\n[dense]\nout = 3\n' >"$WORK/drop.cfg"
COMMON=(--data "$WORK/d.csv" --batch 100 --seed 4 --lr 0.1 --momentum 0.9)

# near A.st B.st: the same tensors (weights and optimizer state) to float
# rounding: |a - b| <= 1e-3 (|a| + 1e-3) for every number. The ranks add
# the gradient up in another order than one process does (each rank scales
# its shard's mean by its share, then the shares are summed over the ranks),
# so the last bits differ: 3 ranks against one process measured 1.3e-5
# here after 20 momentum steps, the Fashion-MNIST MLP 1.2e-4 (as much as one
# process with 1 thread against 2). Training on the wrong batch (50 for 100,
# as a rank that took its shard's mean for the global one would) is 19 off.
# 2 ranks split 100 rows into 50 + 50, where the weights 1/2 are exact, and
# match bit for bit. exact A.st B.st: the same bytes of tensor data.
# The tensors of a safetensors file as text, one float a line (od): the data
# after the 8-byte header length and the header (nabla writes only F32).
floats() { od -An -v -tf4 -w4 -j $((8 + $(od -An -tu8 -N8 "$1"))) "$1"; }
compare() {
    local mode=$1
    if [[ $mode == exact ]]; then
        cmp -s <(tail -c +$((9 + $(od -An -tu8 -N8 "$2"))) "$2") <(tail -c +$((9 + $(od -An -tu8 -N8 "$3"))) "$3") &&
            return 0
        mode=report
    fi
    floats "$2" >"$WORK/fa" && floats "$3" >"$WORK/fb" || { echo "unreadable"; return 1; }
    [[ $(wc -l <"$WORK/fa") == $(wc -l <"$WORK/fb") ]] || { echo "different sizes"; return 1; }
    paste "$WORK/fa" "$WORK/fb" | awk -v mode="$mode" '
        { d = $1 - $2; if (d < 0) d = -d; a = $1 < 0 ? -$1 : $1; r = d / (a + 1e-3); if (r > w) w = r; if ($1 != $2) nd++ }
        END { printf "%d numbers, %d differ, largest difference %.3g (relative, floor 1e-3)\n", NR, nd, w
              exit (mode == "report" || !(w <= 1e-3)) }'
}
near() {
    compare near "$@" >"$WORK/cmp" 2>&1 || fail "$1 vs $2: $(cat "$WORK/cmp")"
    [[ -n ${VERBOSE:-} ]] && echo "  $(basename "$1") vs $(basename "$2"): $(cat "$WORK/cmp")"
}
exact() { compare exact "$@" >"$WORK/cmp" 2>&1 || fail "$1 vs $2 not bit for bit: $(cat "$WORK/cmp")"; }

train() { "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" "$@"; }

mpi_two_and_three_ranks_equal_one_process() {
    NABLA_THREADS=2 train --steps 20 --out "$WORK/one.st" 2>"$WORK/err" || { fail "one process: $(cat "$WORK/err")"; return; }
    "${MPIRUN[@]}" 2 "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" --steps 20 --out "$WORK/two.st" --json \
        >"$WORK/out" 2>"$WORK/err" || { fail "2 ranks: $(cat "$WORK/err")"; return; }
    near "$WORK/one.st" "$WORK/two.st"
    # Rank 0 alone prints: one summary line, one JSON object.
    [[ $(grep -c "^test accuracy" "$WORK/err") == 1 ]] || fail "2 ranks printed $(grep -c "^test accuracy" "$WORK/err") summaries"
    [[ $(grep -c '"ranks": 2' "$WORK/out") == 1 ]] || fail "JSON: $(cat "$WORK/out")"
    # 100 rows over 3 ranks: 33, 33, 34.
    "${MPIRUN[@]}" 3 "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" --steps 20 --out "$WORK/three.st" \
        2>"$WORK/err" || { fail "3 ranks: $(cat "$WORK/err")"; return; }
    near "$WORK/one.st" "$WORK/three.st"
    # The check can fail: half the global batch is another run.
    NABLA_THREADS=2 train --steps 20 --batch 50 --out "$WORK/half.st" 2>/dev/null
    compare near "$WORK/one.st" "$WORK/half.st" >"$WORK/cmp" && fail "batch 50 and 100 compared equal: $(cat "$WORK/cmp")"
    [[ -n ${VERBOSE:-} ]] && echo "  one.st vs half.st: $(cat "$WORK/cmp")"
}

# With dropout (masks drawn per rank from the checkpointed stream): 10 steps,
# then a resume to 20, equal 20 steps bit for bit; a resume on 3 ranks of the
# same checkpoint runs on.
mpi_resume_equals_uninterrupted() {
    local d=(train "$WORK/drop.cfg" "${COMMON[@]}")
    "${MPIRUN[@]}" 2 "$NABLA" "${d[@]}" --steps 20 --out "$WORK/full.st" 2>"$WORK/err" || { fail "full: $(cat "$WORK/err")"; return; }
    "${MPIRUN[@]}" 2 "$NABLA" "${d[@]}" --steps 10 --out "$WORK/half.st" 2>"$WORK/err" || { fail "half: $(cat "$WORK/err")"; return; }
    cp "$WORK/half.st" "$WORK/half3.st"
    "${MPIRUN[@]}" 2 "$NABLA" train --resume "$WORK/half.st" --steps 20 2>"$WORK/err" || { fail "resume: $(cat "$WORK/err")"; return; }
    exact "$WORK/full.st" "$WORK/half.st"
    "${MPIRUN[@]}" 3 "$NABLA" train --resume "$WORK/half3.st" --steps 20 2>"$WORK/err" ||
        { fail "resume on 3 ranks: $(cat "$WORK/err")"; return; }
    grep -q "(20 steps" "$WORK/err" || fail "resume on 3 ranks: $(tail -1 "$WORK/err")"
}

# charrnn: 8 streams over 3 ranks (2, 3, 3), each rank carrying the state of
# its own; the checkpoint (weights, Adam's moments and the whole carried
# state, gathered from the ranks) against one process; a resumed 2-rank run
# against an uninterrupted one, bit for bit; a 2-rank checkpoint resumed on 3.
mpi_charrnn() {
    awk 'BEGIN { srand(3); split("the cat sat on a mat and the dog ran to the red barn while it rained", w, " ")
                 for (i = 0; i < 4000; i++) printf "%s%s", w[int(rand() * 15) + 1], (i % 12 == 11 ? ".\n" : " ") }' >"$WORK/t.txt"
    local a=(charrnn train "$WORK/t.txt" --cell lstm --hidden 32 --seq 16 --batch 8 --steps 20 --eval-every 10 --lr 0.01
        --schedule constant) # (cosine anneals over --steps: a 10-step run is another run)
    "$NABLA" "${a[@]}" --out "$WORK/c1.st" 2>"$WORK/err" || { fail "one process: $(cat "$WORK/err")"; return; }
    "${MPIRUN[@]}" 3 "$NABLA" "${a[@]}" --out "$WORK/c3.st" 2>"$WORK/err" || { fail "3 ranks: $(cat "$WORK/err")"; return; }
    near "$WORK/c1.st" "$WORK/c3.st"
    "${MPIRUN[@]}" 2 "$NABLA" "${a[@]}" --out "$WORK/c2.st" 2>"$WORK/err" || { fail "2 ranks: $(cat "$WORK/err")"; return; }
    "${MPIRUN[@]}" 2 "$NABLA" "${a[@]}" --steps 10 --out "$WORK/c2r.st" 2>"$WORK/err" || { fail "10 steps: $(cat "$WORK/err")"; return; }
    cp "$WORK/c2r.st" "$WORK/c23.st"
    "${MPIRUN[@]}" 2 "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/c2r.st" --steps 20 2>"$WORK/err" ||
        { fail "resume: $(cat "$WORK/err")"; return; }
    exact "$WORK/c2.st" "$WORK/c2r.st"
    # 10 steps on 2 ranks, 10 more on 3: one process's 20, to rounding.
    "${MPIRUN[@]}" 3 "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/c23.st" --steps 20 2>"$WORK/err" ||
        { fail "resume on 3 ranks: $(cat "$WORK/err")"; return; }
    near "$WORK/c1.st" "$WORK/c23.st"
}

# kill -9 of rank 1 mid-run: the job ends within seconds, mpirun names the
# rank and the host, and the checkpoint of the last epoch loads.
# A failed write of rank 0's log stops every rank with the file's message:
# charrnn summed the ranks' parts of its state for the checkpoint after the
# vote on the log and checkpoint writes, which rank 0 skipped when its log
# write failed, and met the others in another collective (an MPI error
# instead of the message). train's epoch totals are summed the same way.
mpi_failed_log_write_ends_job() {
    awk 'BEGIN { srand(3); for (i = 0; i < 3000; i++) printf "%s%s", (i % 7 ? "ab" : "cd"), (i % 12 == 11 ? ".\n" : " ") }' \
        >"$WORK/f.txt"
    NABLA_FAULT=rename:1 "${MPIRUN[@]}" 2 "$NABLA" charrnn train "$WORK/f.txt" --hidden 8 --seq 8 --batch 4 --steps 4 \
        --eval-every 2 --out "$WORK/f.st" --log "$WORK/f.csv" >/dev/null 2>"$WORK/err" && fail "charrnn: the job went on"
    grep -q "nabla charrnn train: $WORK/f.csv: cannot rename" "$WORK/err" ||
        fail "charrnn: no message naming the log: $(grep -v '^step' "$WORK/err" | head -5)"
    NABLA_FAULT=rename:1 "${MPIRUN[@]}" 2 "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" --epochs 2 --out "$WORK/g.st" \
        --log "$WORK/g.csv" >/dev/null 2>"$WORK/err" && fail "train: the job went on"
    grep -q "nabla train: $WORK/g.csv: cannot rename" "$WORK/err" ||
        fail "train: no message naming the log: $(grep -v '^epoch' "$WORK/err" | head -5)"
}

mpi_killed_rank_ends_job() {
    NB_MPI_TEST=$WORK "${MPIRUN[@]}" 2 "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" --epochs 100000 \
        --out "$WORK/k.st" >/dev/null 2>"$WORK/kerr" &
    local job=$! i r1=
    for ((i = 0; i < 100; i++)); do [[ -s $WORK/k.st ]] && break; sleep 0.1; done
    [[ -s $WORK/k.st ]] || { fail "no checkpoint after 10 s"; kill "$job"; wait "$job"; return; }
    # Rank 1 of this job: the nabla whose environment has this test's mark.
    for p in $(pgrep -f "^$NABLA train"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "NB_MPI_TEST=$WORK" &&
            tr '\0' '\n' <"/proc/$p/environ" | grep -qx OMPI_COMM_WORLD_RANK=1 && r1=$p
    done
    [[ -n $r1 ]] || { fail "rank 1 not found"; kill "$job"; wait "$job"; return; }
    local t0=$SECONDS
    kill -9 "$r1"
    for ((i = 0; i < 150; i++)); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$job" 2>/dev/null; then
        fail "the job still runs 15 s after rank 1 died"
        kill "$job"
    fi
    wait "$job" && fail "the job exited with status 0"
    ((SECONDS - t0 <= 10)) || fail "the job took $((SECONDS - t0)) s to end"
    grep -q "rank 1 .*on node $(hostname)" "$WORK/kerr" || fail "no message naming rank 1 and $(hostname): $(cat "$WORK/kerr")"
    "$NABLA" eval "$WORK/k.st" --data "$WORK/d.csv" >/dev/null 2>"$WORK/err" || fail "checkpoint unreadable: $(cat "$WORK/err")"
    ls "$WORK" | grep -q '\.tmp' && fail "temporary file left: $(ls "$WORK")"
}

# A rank whose weights drift (the test seam NABLA_DIST_FAULT changes one
# weight of rank 1 before step 3) is caught by the guard at step 5; a
# non-finite loss ends every rank.
mpi_divergence_guard() {
    NABLA_DIST_FAULT="diverge 1 3" "${MPIRUN[@]}" 2 -x NABLA_DIST_FAULT "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" \
        --steps 20 --check-every 5 --out "$WORK/g.st" >/dev/null 2>"$WORK/err" && fail "a diverged run succeeded"
    grep -q "weights differ after 5 steps" "$WORK/err" || fail "no divergence message: $(cat "$WORK/err")"
    [[ -e $WORK/g.st ]] && fail "a diverged run wrote its model"
    "${MPIRUN[@]}" 2 "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" --steps 20 --check-every 1 >/dev/null 2>"$WORK/err" ||
        fail "checking every step: $(cat "$WORK/err")"
    # A loss that overflows stops every rank at the same step, with rank 0's message.
    "${MPIRUN[@]}" 2 "$NABLA" train "$WORK/drop.cfg" "${COMMON[@]}" --lr 1e9 --momentum 0 --steps 50 >/dev/null \
        2>"$WORK/err" && fail "an overflowing run succeeded"
    grep -q "the loss became" "$WORK/err" || fail "no message about the loss: $(cat "$WORK/err")"
}

# Two hosts on one machine: namespaces A (10.77.0.1) and B (10.77.0.2) joined
# by a veth pair; mpirun in A starts rank 1's daemon in B through a launch
# agent that enters B (instead of ssh), and the ranks talk over TCP. Then the
# link breaks during a run.
mpi_two_hosts_over_veth() {
    if ! ip netns add "${NS}a" 2>/dev/null; then echo "  (network namespaces not allowed here: two-host test skipped)"; return; fi
    ip netns add "${NS}b" && ip link add "${NS}x" type veth peer name "${NS}y" &&
        ip link set "${NS}x" netns "${NS}a" && ip link set "${NS}y" netns "${NS}b" &&
        ip -n "${NS}a" addr add 10.77.0.1/24 dev "${NS}x" && ip -n "${NS}b" addr add 10.77.0.2/24 dev "${NS}y" &&
        ip -n "${NS}a" link set "${NS}x" up && ip -n "${NS}b" link set "${NS}y" up &&
        ip -n "${NS}a" link set lo up && ip -n "${NS}b" link set lo up ||
        { echo "  (could not make a veth pair between namespaces here: two-host test skipped)"; return; }
    printf '#!/bin/sh\n# launch agent: $1 is the host, the rest a shell command\nhost=$1; shift\n[ "$host" = 10.77.0.2 ] || exit 1\necho "$host" >>%s\nexec ip netns exec %s sh -c "$*"\n' \
        "$WORK/agent.log" "${NS}b" >"$WORK/agent"
    chmod +x "$WORK/agent"
    printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' >"$WORK/hosts"
    # (the keepalive settings let mpirun notice a lost host in seconds, not 8 minutes)
    local veth=(timeout 60 ip netns exec "${NS}a" mpirun -np 2 --hostfile "$WORK/hosts" --mca plm_rsh_agent "$WORK/agent"
        --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24
        --mca oob_tcp_keepalive_time 3 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3)
    "${veth[@]}" "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" --steps 20 --out "$WORK/veth.st" --json >"$WORK/out" \
        2>"$WORK/err" || { fail "mpirun over the veth pair: $(cat "$WORK/err")"; return; }
    [[ -s $WORK/one.st ]] || NABLA_THREADS=2 train --steps 20 --out "$WORK/one.st" 2>/dev/null
    near "$WORK/one.st" "$WORK/veth.st"
    grep -qx 10.77.0.2 "$WORK/agent.log" 2>/dev/null || fail "rank 1 was not started in namespace B"
    # The network breaks mid-run (B's end of the pair goes down): TCP reports
    # nothing, the ranks' 3-second limit on a step's collective ends them.
    # mpirun then tells B's daemon, which TCP gives up on after its
    # retransmissions: tcp_retries2 = 3 (about 3 s; Linux's default 15 is
    # about 15 minutes) in A, as a cluster would set it.
    ip netns exec "${NS}a" sysctl -qw net.ipv4.tcp_retries2=3 || echo "  (tcp_retries2 not settable: mpirun may linger)"
    NABLA_MPI_TIMEOUT=3 "${veth[@]}" -x NABLA_MPI_TIMEOUT "$NABLA" train "$WORK/net.cfg" "${COMMON[@]}" --epochs 100000 \
        --out "$WORK/cut.st" >/dev/null 2>"$WORK/cut.err" &
    local job=$! i
    for ((i = 0; i < 100; i++)); do [[ -s $WORK/cut.st ]] && break; sleep 0.1; done
    ip -n "${NS}b" link set "${NS}y" down
    local t0=$SECONDS
    for ((i = 0; i < 300; i++)); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$job" 2>/dev/null && fail "the job still runs 30 s after the network broke: $(grep -v ^epoch "$WORK/cut.err")"
    wait "$job" && fail "the job exited with status 0 after the network broke"
    ((SECONDS - t0 <= 20)) || fail "the job took $((SECONDS - t0)) s to end"
    grep -q "rank 0 of 2 on $(hostname): no answer from the other ranks for 3 s" "$WORK/cut.err" ||
        fail "no message naming the rank and host: $(grep -v ^epoch "$WORK/cut.err")"
    "$NABLA" eval "$WORK/cut.st" --data "$WORK/d.csv" >/dev/null 2>"$WORK/err" || fail "checkpoint unreadable: $(cat "$WORK/err")"
}

run_selected mpi "$@"
