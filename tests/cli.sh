#!/usr/bin/env bash
# cli.sh — end-to-end tests of the `nabla` command: what a user types, what
# they see, and what happens to their files when things go wrong.
# Usage: tests/cli.sh [NAME...]  (runs the tests whose names contain NAME)
set -u
NABLA=${NABLA:-$(cd "$(dirname "$0")/.." && pwd)/build/nabla}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_ROOT=$(mktemp -d)
WORK=$WORK_ROOT
trap 'rm -rf "$WORK_ROOT"' EXIT
export NABLA_THREADS=${NABLA_THREADS:-2}
FASHION=/usr/share/datasets/fashion-mnist
. "$ROOT/tests/lib.sh"

# expect_fail CMD...: must exit non-zero with a message on stderr, never a crash.
expect_fail() {
    "$@" >"$WORK/out" 2>"$WORK/err"
    local rc=$?
    if ((rc == 0)); then fail "expected failure: $*"; return 1; fi
    if ((rc >= 128)); then fail "crashed (status $rc): $*"; return 1; fi
    if [[ ! -s $WORK/err ]]; then fail "no error message: $*"; return 1; fi
    return 0
}
expect_err() { grep -q -- "$1" "$WORK/err" || fail "stderr lacks '$1': $(head -c 300 "$WORK/err")"; }
# expect_usage 'ARGS|MESSAGE'...: each command line (split at spaces) is a
# usage error: exit status 2, MESSAGE on stderr.
expect_usage() {
    local c args rc
    for c in "$@"; do
        read -ra args <<<"${c%%|*}"
        "$NABLA" "${args[@]}" >/dev/null 2>"$WORK/err"
        rc=$?
        ((rc == 2)) || fail "${c%%|*}: exit status $rc, expected 2"
        expect_err "${c#*|}"
    done
}
json_field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' "$2" | tail -1; }
# set_meta SRC DST KEY=VALUE...: DST is the safetensors file SRC with those
# __metadata__ entries set (a damaged model file), or removed for -KEY;
# needs python3.
set_meta() {
    python3 - "$@" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
for kv in sys.argv[3:]:
    if kv.startswith("-"):
        h.get("__metadata__", {}).pop(kv[1:], None)
        continue
    k, v = kv.split("=", 1)
    h.setdefault("__metadata__", {})[k] = v
j = json.dumps(h).encode()
j += b" " * (-len(j) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(j)) + j + b[8 + n:])
PY
}
# shrink_tensor SRC DST NAME: DST is the safetensors file SRC with the F32
# tensor NAME one value shorter (a checkpoint's tensor of another size);
# needs python3.
shrink_tensor() {
    python3 - "$@" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
data, out = b[8 + n:], b""
for k, t in sorted(((k, t) for k, t in h.items() if k != "__metadata__"), key=lambda kt: kt[1]["data_offsets"][0]):
    s, e = t["data_offsets"]
    if k == sys.argv[3]:
        e -= 4
        t["shape"] = [(e - s) // 4]
    t["data_offsets"] = [len(out), len(out) + e - s]
    out += data[s:e]
j = json.dumps(h).encode()
j += b" " * (-len(j) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(j)) + j + out)
PY
}
# gray_png W H EDGE INSIDE OUT: a W x H gray PNG, its ring 2 pixels wide of
# level EDGE, the rest INSIDE (0-255); needs python3.
gray_png() {
    python3 - "$@" <<'PY'
import struct, sys, zlib
w, h, edge, inside, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ring = lambda x, y: y < 2 or y >= h - 2 or x < 2 or x >= w - 2
raw = b"".join(b"\x00" + bytes(edge if ring(x, y) else inside for x in range(w)) for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
open(out, "wb").write(png + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
}
# stopped_by SIG CMD...: runs CMD (stdout dropped, stderr in $WORK/err), sends
# it SIG half a second after its first words on stderr (its handlers are set
# by then), and returns its exit status.
stopped_by() {
    local sig=$1 pid i
    shift
    "$@" >/dev/null 2>"$WORK/err" &
    pid=$!
    for ((i = 0; i < 100; i++)); do [[ -s $WORK/err ]] && break; sleep 0.1; done
    sleep 0.5
    kill -"$sig" $pid
    wait $pid
}


# --- tests -------------------------------------------------------------------

cli_usage() {
    "$NABLA" >/dev/null 2>"$WORK/err"
    (($? == 2)) || fail "no command should exit 2"
    grep -q train "$WORK/err" || fail "usage does not list train"
    expect_fail "$NABLA" frobnicate && expect_err "unknown command"
    expect_fail "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --epochs x && expect_err "expected an integer"
    expect_fail "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --bogus && expect_err "unknown option"
}

cli_cfg_errors() {
    printf '[net]\ninput = 1x28x28\n[dense]\nout = 10\n[densr]\nout = 3\n' >"$WORK/a.cfg"
    expect_fail "$NABLA" init "$WORK/a.cfg" --out "$WORK/a.st" && expect_err "a.cfg:5: unknown layer \[densr\]"
    printf '[net]\ninput = 1x28x28\n[conv2d]\nout = 8\nkernal = 3\n' >"$WORK/b.cfg"
    expect_fail "$NABLA" init "$WORK/b.cfg" --out "$WORK/b.st" && expect_err "b.cfg:5: \[conv2d\] has no option 'kernal'"
    printf '[net]\ninput = 1x28x28\n[dense]\nout = -4\n' >"$WORK/c.cfg"
    expect_fail "$NABLA" init "$WORK/c.cfg" --out "$WORK/c.st" && expect_err "c.cfg:4: out: expected an integer"
    printf '[net]\ninput = 1x28x28\n[conv2d]\nout = 4\n' >"$WORK/d.cfg"
    expect_fail "$NABLA" init "$WORK/d.cfg" --out "$WORK/d.st" && expect_err "d.cfg:3: \[conv2d\] needs 'kernel'"
    [[ ! -e $WORK/a.st ]] || fail "a failed init wrote a file"
    # A network with no parameters "trained" and wrote a model, every step a no-op.
    printf '[net]\ninput = 2\n[relu]\n' >"$WORK/e.cfg"
    awk 'BEGIN { srand(5); for (i = 0; i < 50; i++) printf "%.3f,%.3f,%d\n", rand(), rand(), i % 2 }' >"$WORK/e.csv"
    expect_fail "$NABLA" train "$WORK/e.cfg" --data "$WORK/e.csv" --out "$WORK/e.st" &&
        expect_err "e.cfg has no trainable layer (dense, conv2d or prelu): nothing to train"
    [[ ! -e $WORK/e.st ]] || fail "training a network without parameters wrote a model"
}

cli_init_and_eval() {
    "$NABLA" init "$ROOT/examples/cnn.cfg" --out "$WORK/cnn.st" --seed 3 >"$WORK/out" || { fail "init failed"; return; }
    grep -q "conv2" "$WORK/out" || fail "summary lacks conv2"
    "$NABLA" eval "$WORK/cnn.st" --data fashion-mnist --json >"$WORK/out" 2>/dev/null || { fail "eval failed"; return; }
    local acc
    acc=$(json_field test_accuracy "$WORK/out")
    awk -v a="$acc" 'BEGIN { exit !(a > 0.02 && a < 0.3) }' || fail "untrained accuracy $acc should be near 0.1"
}

cli_train_json_log_plot() {
    "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --steps 60 --out "$WORK/m.st" --log "$WORK/m.csv" \
        --json >"$WORK/out" 2>"$WORK/err" || { fail "train failed: $(tail -3 "$WORK/err")"; return; }
    local acc
    acc=$(json_field test_accuracy "$WORK/out")
    awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' || fail "accuracy after 60 steps is $acc"
    for f in test_loss epochs seconds train_seconds; do grep -q "\"$f\"" "$WORK/out" || fail "JSON lacks $f"; done
    head -1 "$WORK/m.csv" | grep -q "^epoch,train_loss" || fail "log header: $(head -1 "$WORK/m.csv")"
    [[ $(wc -l <"$WORK/m.csv") -eq 2 ]] || fail "log should have a header and one row"
    "$NABLA" plot "$WORK/m.csv" --out "$WORK/m.png" 2>"$WORK/err" || { fail "plot failed: $(cat "$WORK/err")"; return; }
    [[ $(head -c 4 "$WORK/m.png" | od -An -c | tr -d ' ') == "211PNG" ]] || fail "plot did not write a PNG"
}

# After a --device cuda command failed (stderr in $WORK/err): in a build
# without CUDA, or with no GPU, it must have said so and written no MODEL.
device_cuda_absent() {
    grep -q -- "--device cuda: .*\(built without CUDA\|no usable CUDA device\)" "$WORK/err" ||
        fail "--device cuda failed otherwise: $(head -c 300 "$WORK/err")"
    [[ ! -e $1 ]] || fail "a failed --device cuda wrote a model"
}

# --device: a build without CUDA says so (exit 1, no model written); a build
# with it (the emulator's, under make cuda-emu, or a GPU's) trains as the CPU
# does on one thread, writes a model file that evaluates the same on the CPU,
# and resumes on the GPU.
cli_train_device() {
    expect_fail "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --device tpu && expect_err "expected cpu or cuda"
    local common=("$ROOT/examples/mlp.cfg" --data fashion-mnist --steps 60 --seed 5 --threads 1)
    if ! "$NABLA" train "${common[@]}" --device cuda --out "$WORK/g.st" --json >"$WORK/g" 2>"$WORK/err"; then
        device_cuda_absent "$WORK/g.st"
        return
    fi
    "$NABLA" train "${common[@]}" --json >"$WORK/c" 2>/dev/null || { fail "the CPU run failed"; return; }
    local lg lc le
    lg=$(json_field test_loss "$WORK/g") lc=$(json_field test_loss "$WORK/c")
    awk -v g="$lg" -v c="$lc" 'BEGIN { exit !(g - c < 1e-3 && c - g < 1e-3) }' || fail "test loss on the GPU $lg, on the CPU $lc"
    "$NABLA" eval "$WORK/g.st" --data fashion-mnist --json >"$WORK/e" 2>/dev/null || { fail "eval of the GPU's model"; return; }
    le=$(json_field test_loss "$WORK/e")
    awk -v g="$lg" -v e="$le" 'BEGIN { exit !(g - e < 1e-4 && e - g < 1e-4) }' || fail "the GPU's model evaluates to $le, trained to $lg"
    "$NABLA" train --resume "$WORK/g.st" --steps 80 --device cuda --json >"$WORK/r" 2>"$WORK/err" ||
        fail "resume on the GPU: $(tail -2 "$WORK/err")"
    # adversarial training (eq. 21): FGSM on the GPU, the CPU's accuracies
    "$NABLA" train "${common[@]}" --steps 20 --adversarial 0.1 --device cuda --json >"$WORK/ga" 2>/dev/null ||
        { fail "--adversarial on the GPU"; return; }
    "$NABLA" train "${common[@]}" --steps 20 --adversarial 0.1 --json >"$WORK/ca" 2>/dev/null || { fail "--adversarial"; return; }
    lg=$(json_field adversarial_accuracy "$WORK/ga") lc=$(json_field adversarial_accuracy "$WORK/ca")
    awk -v g="$lg" -v c="$lc" 'BEGIN { exit !(g - c < 2e-3 && c - g < 2e-3) }' || fail "adversarial accuracy $lg on the GPU, $lc on the CPU"
}

# Training interrupted by --steps and resumed must end where an uninterrupted
# run ends: same weights, so the same test loss to every printed digit.
cli_resume_matches_uninterrupted() {
    local common=("$ROOT/examples/mlp.cfg" --data fashion-mnist --batch 100 --seed 7)
    "$NABLA" train "${common[@]}" --steps 700 --epochs 2 --out "$WORK/a.st" 2>/dev/null >/dev/null || { fail "run A"; return; }
    "$NABLA" train "${common[@]}" --steps 250 --epochs 2 --out "$WORK/b.st" 2>/dev/null >/dev/null || { fail "run B1"; return; }
    "$NABLA" train --resume "$WORK/b.st" --steps 650 2>/dev/null >/dev/null || { fail "run B2"; return; }
    "$NABLA" train --resume "$WORK/b.st" --steps 700 2>/dev/null >/dev/null || { fail "run B3"; return; }
    "$NABLA" eval "$WORK/a.st" --data fashion-mnist --json 2>/dev/null >"$WORK/ea" || { fail "eval A"; return; }
    "$NABLA" eval "$WORK/b.st" --data fashion-mnist --json 2>/dev/null >"$WORK/eb" || { fail "eval B"; return; }
    local la lb
    la=$(json_field test_loss "$WORK/ea")
    lb=$(json_field test_loss "$WORK/eb")
    [[ -n $la && $la == "$lb" ]] || fail "resumed run differs: loss $la vs $lb"
}

# SIGINT or SIGTERM mid-epoch: the step finishes, the checkpoint is written,
# the command says how to resume and exits 130 / 143; resumed, the run ends
# where an uninterrupted one ends.
cli_sigint_checkpoint_and_resume() {
    local common=("$ROOT/examples/mlp.cfg" --data fashion-mnist --batch 100 --seed 9 --epochs 3)
    "$NABLA" train "${common[@]}" --out "$WORK/a.st" >/dev/null 2>&1 || { fail "run A"; return; }
    local sig want
    for sig in INT TERM; do
        want=$([[ $sig == INT ]] && echo 130 || echo 143)
        rm -f "$WORK/b.st"
        "$NABLA" train "${common[@]}" --out "$WORK/b.st" >/dev/null 2>"$WORK/err" &
        local pid=$! rc i
        # Signal it once its first epoch has ended: in the second, or in the first's
        # checkpoint, with a whole epoch still to go however fast the machine is.
        # (A signal in an epoch's last step once made the resumed run skip the
        # later epochs: see the interrupt in cli/train.c.)
        for ((i = 0; i < 1000; i++)); do grep -qs "^epoch 1/3" "$WORK/err" && break; sleep 0.02; done
        kill -$sig $pid
        wait $pid
        rc=$?
        ((rc == want)) || { fail "SIG$sig: exit status $rc, expected $want: $(tail -2 "$WORK/err")"; continue; }
        grep -q "stopped by SIG$sig" "$WORK/err" && grep -q "nabla train --resume $WORK/b.st" "$WORK/err" ||
            fail "SIG$sig message: $(tail -3 "$WORK/err")"
        ls "$WORK"/b.st.tmp* >/dev/null 2>&1 && fail "SIG$sig left a temporary file"
        "$NABLA" train --resume "$WORK/b.st" >/dev/null 2>"$WORK/err" || { fail "resume: $(tail -2 "$WORK/err")"; continue; }
        "$NABLA" eval "$WORK/a.st" --data fashion-mnist --json 2>/dev/null >"$WORK/ea"
        "$NABLA" eval "$WORK/b.st" --data fashion-mnist --json 2>/dev/null >"$WORK/eb"
        local la lb
        la=$(json_field test_loss "$WORK/ea")
        lb=$(json_field test_loss "$WORK/eb")
        [[ -n $la && $la == "$lb" ]] || fail "SIG$sig: resumed run differs: loss $la vs $lb"
    done
}

# SIGKILL at any moment leaves the last checkpoint intact and resumable.
cli_sigkill_keeps_checkpoint() {
    local delays=(0.7 1.9 3.1)
    for d in "${delays[@]}"; do
        rm -f "$WORK/k.st"
        "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --epochs 50 --batch 256 --out "$WORK/k.st" \
            >/dev/null 2>&1 &
        local pid=$!
        sleep "$d"
        kill -9 $pid 2>/dev/null
        wait $pid 2>/dev/null
        ls "$WORK"/k.st.tmp* >/dev/null 2>&1 && rm -f "$WORK"/k.st.tmp*
        if [[ -e $WORK/k.st ]]; then
            "$NABLA" eval "$WORK/k.st" --data fashion-mnist >/dev/null 2>"$WORK/err" || fail "checkpoint after kill at ${d}s unreadable: $(cat "$WORK/err")"
            "$NABLA" train --resume "$WORK/k.st" --steps 3 >/dev/null 2>"$WORK/err" ||
                fail "resume after kill at ${d}s failed: $(tail -2 "$WORK/err")"
        fi
    done
}

# A run stopped mid-epoch (by --steps, twice) and resumed writes the log of
# the uninterrupted run: the resumed epoch's train loss and accuracy count the
# batches trained before the stop too (they once covered only the resumed
# part), with dropout on 2 shards; and the model byte for byte.
cli_train_resume_log_matches_uninterrupted() {
    awk 'BEGIN { srand(3); for (i = 0; i < 900; i++) { c = i % 3; printf "%.4f,%.4f,%.4f,%d\n", c + rand(), rand() - c, rand(), c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 3\n[dense]\nout = 16\nactivation = relu\n[dropout]\np = 0.2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    local common=("$WORK/d.cfg" --data "$WORK/d.csv" --epochs 2 --batch 32 --threads 2 --seed 4)
    "$NABLA" train "${common[@]}" --out "$WORK/a.st" --log "$WORK/a.csv" >/dev/null 2>&1 || { fail "run A"; return; }
    "$NABLA" train "${common[@]}" --steps 9 --out "$WORK/b.st" --log "$WORK/b.csv" >/dev/null 2>&1 || { fail "run B1"; return; }
    "$NABLA" train --resume "$WORK/b.st" --steps 20 --log "$WORK/b.csv" --threads 2 >/dev/null 2>&1 || { fail "run B2"; return; }
    "$NABLA" train --resume "$WORK/b.st" --log "$WORK/b.csv" --threads 2 >/dev/null 2>"$WORK/err" ||
        { fail "run B3: $(tail -2 "$WORK/err")"; return; }
    cmp -s "$WORK/a.st" "$WORK/b.st" || fail "the resumed run's model differs from the uninterrupted run's"
    cmp -s <(cut -d, -f1-7 "$WORK/a.csv") <(cut -d, -f1-7 "$WORK/b.csv") ||
        fail "logs differ: $(cut -d, -f1-7 "$WORK/a.csv" "$WORK/b.csv")"
}

# A resumed run with nothing left to train (its --steps or --epochs reached)
# reports the model's test figures and writes nothing: the checkpoint and
# the log (with its partial epoch's row) stay as they were.
cli_train_resume_nothing_left_writes_nothing() {
    awk 'BEGIN { srand(3); for (i = 0; i < 300; i++) { c = i % 3; printf "%.4f,%.4f,%.4f,%d\n", c + rand(), rand() - c, rand(), c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 3\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    "$NABLA" train "$WORK/d.cfg" --data "$WORK/d.csv" --epochs 2 --batch 32 --steps 5 --out "$WORK/b.st" \
        --log "$WORK/b.csv" >/dev/null 2>&1 || { fail "run B1"; return; }
    cp "$WORK/b.st" "$WORK/b0.st" && cp "$WORK/b.csv" "$WORK/b0.csv" || { fail "copies"; return; }
    "$NABLA" train --resume "$WORK/b.st" --steps 5 --log "$WORK/b.csv" --out "$WORK/c.st" >/dev/null 2>"$WORK/err" ||
        { fail "resumed at its --steps: $(tail -2 "$WORK/err")"; return; }
    expect_err "^test accuracy"
    [[ -e $WORK/c.st ]] && fail "a run that trained nothing wrote --out"
    cmp -s "$WORK/b.csv" "$WORK/b0.csv" || fail "a run that trained nothing rewrote the log"
    "$NABLA" train --resume "$WORK/b.st" --log "$WORK/b.csv" >/dev/null 2>&1 || { fail "run B2"; return; }
    cp "$WORK/b.st" "$WORK/b0.st" && cp "$WORK/b.csv" "$WORK/b0.csv" || { fail "copies"; return; }
    "$NABLA" train --resume "$WORK/b.st" --log "$WORK/b.csv" >/dev/null 2>"$WORK/err" || { fail "run B3"; return; }
    expect_err "already trained for 2 epochs"
    cmp -s "$WORK/b.st" "$WORK/b0.st" && cmp -s "$WORK/b.csv" "$WORK/b0.csv" ||
        fail "a run past its --epochs rewrote the checkpoint or the log"
}

# train_images_per_second is this run's: a resumed run divided the images of
# every run before it too by its own seconds (10 steps after 10 reported
# twice their rate).
cli_train_resume_rate_is_this_runs() {
    local common=("$ROOT/examples/mlp.cfg" --data fashion-mnist --batch 200 --seed 2 --threads 2)
    "$NABLA" train "${common[@]}" --steps 10 --out "$WORK/b.st" >/dev/null 2>&1 || { fail "run B1"; return; }
    "$NABLA" train --resume "$WORK/b.st" --steps 20 --threads 2 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "run B2: $(tail -2 "$WORK/err")"; return; }
    local rate secs
    rate=$(json_field train_images_per_second "$WORK/out") secs=$(json_field train_seconds "$WORK/out")
    # 10 steps of 200 images in train_seconds (printed to the millisecond)
    awk -v r="$rate" -v s="$secs" 'BEGIN { exit !(s > 0 && r * s > 1600 && r * s < 2400) }' ||
        fail "rate $rate images/s over $secs s is not 2000 images"
}

# --batch at --resume mid-epoch: the checkpoint's place counts batches of its
# own size, so another size is refused (it once started past the epoch's end
# and ended the run untrained, exit 0); at an epoch's end it is honoured.
cli_train_resume_batch_mid_epoch() {
    awk 'BEGIN { srand(3); for (i = 0; i < 900; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + rand(), rand() - c, c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    "$NABLA" train "$WORK/d.cfg" --data "$WORK/d.csv" --epochs 2 --batch 16 --steps 40 --out "$WORK/b.st" >/dev/null 2>&1 ||
        { fail "run B1"; return; }
    expect_fail "$NABLA" train --resume "$WORK/b.st" --batch 64 && expect_err "after 40 batches of 16: --batch can change only"
    "$NABLA" train --resume "$WORK/b.st" --batch 16 --steps 51 --json >"$WORK/out" 2>"$WORK/err" || fail "--batch 16: $(tail -2 "$WORK/err")"
    [[ $(json_field steps "$WORK/out") == 51 ]] || fail "the resumed run did not train: $(cat "$WORK/out")"
    "$NABLA" train --resume "$WORK/b.st" --batch 64 --json >"$WORK/out" 2>"$WORK/err" || fail "--batch 64 after the epoch: $(tail -2 "$WORK/err")"
    [[ $(json_field steps "$WORK/out") == 64 ]] || fail "51 steps of 16 and epoch 2 in 13 of 64: $(cat "$WORK/out")"
}

# SIGINT to a train run with --log: the command it prints repeats --log (it
# once did not, and the resumed run wrote no log) and the run's --threads (a
# batch is cut into one shard per thread: a resume under NABLA_THREADS=2 once
# took 2 where the run had 1), and run as printed it ends with the
# uninterrupted run's model and log.
cli_train_sigint_resume_keeps_log() {
    awk 'BEGIN { srand(3); for (i = 0; i < 3000; i++) { c = i % 3; printf "%.4f,%.4f,%.4f,%d\n", c + rand(), rand() - c, rand(), c } }' >"$WORK/g.csv"
    printf '[net]\ninput = 3\n[dense]\nout = 16\nactivation = relu\n[dropout]\np = 0.2\n[dense]\nout = 3\n' >"$WORK/g.cfg"
    # 300 short epochs (about a second): the signal lands after the first, with most to go
    local common=("$WORK/g.cfg" --data "$WORK/g.csv" --epochs 300 --batch 32 --seed 2 --threads 1)
    "$NABLA" train "${common[@]}" --out "$WORK/a.st" --log "$WORK/a.csv" >/dev/null 2>&1 || { fail "run A"; return; }
    "$NABLA" train "${common[@]}" --out "$WORK/b.st" --log "$WORK/b.csv" >/dev/null 2>"$WORK/err" &
    local pid=$! i resume
    for ((i = 0; i < 500; i++)); do [[ -s $WORK/b.csv ]] && break; sleep 0.01; done
    kill -INT $pid
    wait $pid
    (($? == 130)) || { fail "SIGINT: $(tail -2 "$WORK/err")"; return; }
    resume=$(grep -A1 "Resume with:" "$WORK/err" | tail -1 | sed 's/^ *nabla //')
    [[ $resume == "train --resume $WORK/b.st --log $WORK/b.csv --threads 1" ]] || fail "the printed command: $resume"
    NABLA_THREADS=2 eval "\"\$NABLA\" $resume" >/dev/null 2>"$WORK/err" || { fail "$resume: $(tail -2 "$WORK/err")"; return; }
    cmp -s "$WORK/a.st" "$WORK/b.st" || fail "the resumed run's model differs from the uninterrupted run's"
    cmp -s <(cut -d, -f1-7 "$WORK/a.csv") <(cut -d, -f1-7 "$WORK/b.csv") || fail "the resumed run's log differs"
}

# --data at --resume mid-epoch with fewer batches than the checkpoint's place
# in the epoch: refused, naming the data it was trained on (the run once
# stopped at once, untrained, with exit status 0).
cli_train_resume_data_shorter_than_epoch_pos() {
    awk 'BEGIN { srand(3); for (i = 0; i < 900; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + rand(), rand() - c, c } }' >"$WORK/d.csv"
    head -300 "$WORK/d.csv" >"$WORK/small.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    "$NABLA" train "$WORK/d.cfg" --data "$WORK/d.csv" --epochs 2 --batch 16 --steps 40 --out "$WORK/b.st" >/dev/null 2>&1 ||
        { fail "run B1"; return; }
    expect_fail "$NABLA" train --resume "$WORK/b.st" --data "$WORK/small.csv" &&
        expect_err "has only 270 training examples (17 batches of 16): resume it on the data it was trained on ($WORK/d.csv)"
}

# SIGINT to a train run with --steps: a checkpoint drops --steps (it limits
# one invocation), so the command printed repeats it, and run as printed it
# stops where the whole run stops (it once trained every epoch).
cli_train_sigint_resume_keeps_steps() {
    awk 'BEGIN { srand(3); for (i = 0; i < 3000; i++) { c = i % 3; printf "%.4f,%.4f,%.4f,%d\n", c + rand(), rand() - c, rand(), c } }' >"$WORK/g.csv"
    printf '[net]\ninput = 3\n[dense]\nout = 16\nactivation = relu\n[dense]\nout = 3\n' >"$WORK/g.cfg"
    local common=("$WORK/g.cfg" --data "$WORK/g.csv" --epochs 300 --batch 32 --steps 20000)
    "$NABLA" train "${common[@]}" --out "$WORK/a.st" >/dev/null 2>&1 || { fail "run A"; return; }
    "$NABLA" train "${common[@]}" --out "$WORK/b.st" >/dev/null 2>"$WORK/err" &
    local pid=$! i resume
    for ((i = 0; i < 500; i++)); do grep -qs "^epoch 1/300" "$WORK/err" && break; sleep 0.01; done
    kill -INT $pid
    wait $pid
    (($? == 130)) || { fail "SIGINT: $(tail -2 "$WORK/err")"; return; }
    resume=$(grep -A1 "Resume with:" "$WORK/err" | tail -1 | sed 's/^ *nabla //')
    [[ $resume == "train --resume $WORK/b.st --steps 20000 --threads "* ]] || fail "the printed command: $resume"
    eval "\"\$NABLA\" $resume --json" >"$WORK/out" 2>"$WORK/err" || { fail "$resume: $(tail -2 "$WORK/err")"; return; }
    [[ $(json_field steps "$WORK/out") == 20000 ]] || fail "the resumed run ended at step $(json_field steps "$WORK/out")"
    cmp -s "$WORK/a.st" "$WORK/b.st" || fail "the resumed run's model differs from the uninterrupted run's"
}

# A damaged checkpoint's settings meet the flags' ranges: --batch 2^63 - 1
# once overflowed the count of batches, and the run trained nothing and
# exited 0; a negative --lr reached the optimizer without naming the file.
# A schedule of steps multiplies the rate by 0.1 from half of the steps and by
# 0.01 from three quarters, boundaries included: four full-batch steps of
# plain gradient descent (one per epoch) end where two at --lr 0.5 and one
# each at 0.05 and 0.005, chained through --init, do.
cli_train_schedule_step() {
    awk 'BEGIN { srand(3); for (i = 0; i < 300; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + rand(), rand() - c, c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    local o=("$WORK/d.cfg" --data "$WORK/d.csv" --batch 270 --momentum 0 --no-shuffle) a b
    "$NABLA" train "${o[@]}" --schedule step --epochs 4 --lr 0.5 --out "$WORK/a.st" >/dev/null 2>&1 &&
        "$NABLA" train "${o[@]}" --schedule constant --epochs 2 --lr 0.5 --out "$WORK/b1.st" >/dev/null 2>&1 &&
        "$NABLA" train "${o[@]}" --init "$WORK/b1.st" --schedule constant --epochs 1 --lr 0.05 --out "$WORK/b2.st" >/dev/null 2>&1 &&
        "$NABLA" train "${o[@]}" --init "$WORK/b2.st" --schedule constant --epochs 1 --lr 0.005 --out "$WORK/b3.st" >/dev/null 2>&1 ||
        { fail "training"; return; }
    a=$("$NABLA" eval "$WORK/a.st" --data "$WORK/d.csv" --json 2>/dev/null) b=$("$NABLA" eval "$WORK/b3.st" --data "$WORK/d.csv" --json 2>/dev/null)
    [[ -n $a && ${a%%, \"seconds*} == "${b%%, \"seconds*}" ]] || fail "--schedule step: $a; chained: $b"
}

cli_train_resume_damaged_settings() {
    command -v python3 >/dev/null || return 0
    awk 'BEGIN { srand(3); for (i = 0; i < 300; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + rand(), rand() - c, c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    "$NABLA" train "$WORK/d.cfg" --data "$WORK/d.csv" --epochs 1 --out "$WORK/s.st" >/dev/null 2>&1 || { fail "train"; return; }
    set_meta "$WORK/s.st" "$WORK/b.st" nabla.batch=9223372036854775807 &&
        set_meta "$WORK/s.st" "$WORK/l.st" nabla.lr=-5 && set_meta "$WORK/s.st" "$WORK/o.st" nabla.optim=sgdx ||
        { fail "rewriting the checkpoint's metadata"; return; }
    expect_fail "$NABLA" train --resume "$WORK/b.st" --epochs 2 &&
        expect_err "b.st: the stored --batch 9223372036854775807 is not an integer in \[1, 4096\]"
    expect_fail "$NABLA" train --resume "$WORK/l.st" --epochs 2 && expect_err "l.st: the stored --lr -5 is not a number > 0"
    expect_fail "$NABLA" train --resume "$WORK/o.st" --epochs 2 && expect_err "o.st: the stored --optim 'sgdx' is not sgd, adam or adamw"
    # given on the command line, the flag replaces the damaged value
    "$NABLA" train --resume "$WORK/l.st" --epochs 2 --lr 0.01 >/dev/null 2>"$WORK/err" || fail "--lr over a damaged one: $(tail -1 "$WORK/err")"
    # a count past int64_t, a batch of 0, a rate past single precision, an
    # infinite running loss of the epoch (once taken, and logged as its
    # train_loss), an optimizer state of another size (a fatal abort had it
    # reached the copy): each refused naming the file, the files left as they were
    set_meta "$WORK/s.st" "$WORK/n.st" nabla.step=99999999999999999999 &&
        set_meta "$WORK/s.st" "$WORK/z.st" nabla.batch=0 && set_meta "$WORK/s.st" "$WORK/h.st" nabla.lr=1e300 &&
        set_meta "$WORK/s.st" "$WORK/i.st" nabla.epoch_loss=inf && shrink_tensor "$WORK/s.st" "$WORK/v.st" optim.sgd.v.1 ||
        { fail "rewriting the checkpoint"; return; }
    local c f
    for c in "n.st: __metadata__ 'nabla.step': expected an integer >= 0, got '99999999999999999999'" \
        "z.st: __metadata__ 'nabla.batch' must be positive" \
        "h.st: the stored --lr 1e+300 is not a number > 0, at most 3.40282e+38 in size (single precision)" \
        "i.st: __metadata__ 'nabla.epoch_loss': expected a number, got 'inf'" \
        "v.st: optimizer state 'optim.sgd.v.1' has 2 values, expected 3"; do
        f=${c%%:*}
        cp "$WORK/$f" "$WORK/keep.st"
        expect_fail "$NABLA" train --resume "$WORK/$f" --epochs 2 --log "$WORK/log.csv" && expect_err "$c"
        cmp -s "$WORK/$f" "$WORK/keep.st" || fail "$f was rewritten"
        [[ -e $WORK/log.csv ]] && fail "$f: a log was written" && rm -f "$WORK/log.csv"
    done
}

# --optim or --momentum at --resume that the checkpoint's optimizer state
# cannot serve: refused, naming what it was trained with (the message once
# asked "was it trained with" the new setting); Adam to AdamW and a lower
# momentum go on.
cli_train_resume_optimizer_change() {
    awk 'BEGIN { srand(3); for (i = 0; i < 300; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + rand(), rand() - c, c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    local t=("$WORK/d.cfg" --data "$WORK/d.csv" --epochs 2 --steps 5)
    "$NABLA" train "${t[@]}" --out "$WORK/s.st" >/dev/null 2>&1 || { fail "sgd"; return; }
    "$NABLA" train "${t[@]}" --momentum 0 --out "$WORK/s0.st" >/dev/null 2>&1 || { fail "sgd 0"; return; }
    "$NABLA" train "${t[@]}" --optim adam --out "$WORK/a.st" >/dev/null 2>&1 || { fail "adam"; return; }
    expect_fail "$NABLA" train --resume "$WORK/s.st" --optim adam && expect_err "s.st was trained with --optim sgd: --optim adam cannot"
    expect_fail "$NABLA" train --resume "$WORK/a.st" --optim sgd && expect_err "a.st was trained with --optim adam: --optim sgd cannot"
    expect_fail "$NABLA" train --resume "$WORK/s0.st" --momentum 0.9 && expect_err "trained with --momentum 0 and holds no velocity"
    "$NABLA" train --resume "$WORK/a.st" --optim adamw --steps 6 >/dev/null 2>"$WORK/err" || fail "adam to adamw: $(tail -1 "$WORK/err")"
    "$NABLA" train --resume "$WORK/s.st" --momentum 0.5 --steps 6 >/dev/null 2>"$WORK/err" || fail "momentum 0.5: $(tail -1 "$WORK/err")"
}

cli_nan_names_layer() {
    expect_fail "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --lr 1e9 --momentum 0 --steps 50 &&
        expect_err "layer '"
}

cli_bad_data() {
    expect_fail "$NABLA" train "$ROOT/examples/mlp.cfg" --data "$WORK/nowhere" && expect_err "nowhere"
    mkdir -p "$WORK/idx"
    if [[ -e $FASHION/t10k-labels-idx1-ubyte.gz ]]; then
        for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
            gzip -dc "$FASHION/$f.gz" | head -c 5000 >"$WORK/idx/$f"
        done
        expect_fail "$NABLA" train "$ROOT/examples/mlp.cfg" --data "$WORK/idx" --steps 1 && expect_err "idx"
    fi
    printf '1,2,3,0\n4,5,x,1\n' >"$WORK/bad.csv"
    expect_fail "$NABLA" train "$ROOT/examples/mlp.cfg" --data "$WORK/bad.csv" && expect_err "bad.csv:2"
    printf 'not a model' >"$WORK/junk.st"
    expect_fail "$NABLA" eval "$WORK/junk.st" --data fashion-mnist && expect_err "junk.st"
    "$NABLA" init "$ROOT/examples/mlp.cfg" --out "$WORK/mlp.st" >/dev/null || { fail "init"; return; }
    head -c 2000 "$WORK/mlp.st" >"$WORK/trunc.st"
    expect_fail "$NABLA" eval "$WORK/trunc.st" --data fashion-mnist && expect_err "trunc.st"
}

# --grad-clip bounds the norm of the whole batch's gradient (the shards'
# sum, with 2 threads): clipped to 1e-9, SGD leaves the initial network as it
# was; the setting survives a resume.
# --l1-activation (eq. 7.48) and --adversarial (eq. 21) on the CPU: neither
# ran in the suite without a GPU. Against the same run without them: the
# penalty on |h| drives more hidden units to exactly zero, and training on
# FGSM examples changes the model and reports an adversarial accuracy no
# better than the clean one.
cli_train_l1_activation_and_adversarial() {
    awk 'BEGIN { srand(3); for (i = 0; i < 400; i++) { x = rand(); y = rand(); printf "%.4f,%.4f,%d\n", x, y, (x + y > 1) } }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 32\nactivation = relu\n[dense]\nout = 2\n' >"$WORK/n.cfg"
    local common=("$WORK/n.cfg" --data "$WORK/d.csv" --steps 30 --seed 4 --json)
    "$NABLA" train "${common[@]}" --out "$WORK/a.st" >"$WORK/a" 2>"$WORK/err" || { fail "train: $(tail -2 "$WORK/err")"; return; }
    "$NABLA" train "${common[@]}" --out "$WORK/b.st" --l1-activation 0.5 >"$WORK/b" 2>"$WORK/err" ||
        { fail "--l1-activation: $(tail -2 "$WORK/err")"; return; }
    "$NABLA" train "${common[@]}" --out "$WORK/c.st" --adversarial 0.1 >"$WORK/c" 2>"$WORK/err" ||
        { fail "--adversarial: $(tail -2 "$WORK/err")"; return; }
    local za zb la lc acc adv
    za=$(json_field zero_activation_fraction "$WORK/a") zb=$(json_field zero_activation_fraction "$WORK/b")
    awk -v a="$za" -v b="$zb" 'BEGIN { exit !(b > a + 0.2) }' || fail "zero activations $za, with --l1-activation 0.5 $zb"
    grep -q adversarial_accuracy "$WORK/a" && fail "an adversarial accuracy without --adversarial"
    la=$(json_field test_loss "$WORK/a") lc=$(json_field test_loss "$WORK/c")
    [[ -n $la && -n $lc && $la != "$lc" ]] || fail "--adversarial left the test loss at $la ($lc)"
    acc=$(json_field test_accuracy "$WORK/c") adv=$(json_field adversarial_accuracy "$WORK/c")
    awk -v a="$acc" -v v="$adv" 'BEGIN { exit !(v != "" && v + 0 <= a + 0) }' || fail "adversarial accuracy '$adv', clean $acc"
    # both are kept in the model's settings, for a resumed run
    grep -aq '"nabla.l1_activation":"0.5"' "$WORK/b.st" || fail "the model does not record --l1-activation 0.5"
    grep -aq '"nabla.adversarial":"0.1[0-9]*"' "$WORK/c.st" || fail "the model does not record --adversarial 0.1"
}

# Under an address-space limit (ulimit -v) the command runs as many threads as
# fit, at 400 MiB each above 100 MiB (OpenBLAS reserves a buffer per thread),
# and below one thread's needs stops with a message instead of failing in an
# allocation (neither branch ran). OPENBLAS_NUM_THREADS=1: OpenBLAS's own
# pool, set up before main, then fits on any machine.
cli_address_space_limit() {
    if [[ -n ${NABLA_SANITIZED:-} ]]; then # ASan's shadow memory fits under no such limit
        echo "  skipped under a sanitizer (make asan-cli)"
        return
    fi
    printf 'x,y\n1,2\n3,4\n' >"$WORK/s.csv"
    (ulimit -v 700000 && OPENBLAS_NUM_THREADS=1 NABLA_THREADS=2 timeout 60 "$NABLA" stats "$WORK/s.csv" >"$WORK/out" 2>"$WORK/err")
    (($? == 0)) || fail "stats under 684 MiB: $(cat "$WORK/err")"
    grep -q "address-space limit (ulimit -v) of 684 MiB leaves room for 1 thread, not 2: running 1" "$WORK/err" ||
        fail "no warning under 684 MiB: $(cat "$WORK/err")"
    [[ $(grep -c "leaves room" "$WORK/err") == 1 ]] || fail "the warning came more than once"
    grep -q "^x " "$WORK/out" || fail "no statistics under 684 MiB"
    (ulimit -v 700000 && OPENBLAS_NUM_THREADS=1 NABLA_THREADS=1 timeout 60 "$NABLA" stats "$WORK/s.csv" >/dev/null 2>"$WORK/err")
    grep -q "leaves room" "$WORK/err" && fail "a warning for one thread, which fits: $(cat "$WORK/err")"
    (ulimit -v 460000 && OPENBLAS_NUM_THREADS=1 NABLA_THREADS=2 timeout 60 "$NABLA" stats "$WORK/s.csv" >/dev/null 2>"$WORK/err")
    local rc=$?
    ((rc == 1)) || fail "under 449 MiB: status $rc, expected 1"
    grep -q "the address-space limit (ulimit -v) is 449 MiB; nabla needs about 500 MiB for one thread" "$WORK/err" ||
        fail "under 449 MiB: $(cat "$WORK/err")"
}

cli_train_grad_clip() {
    awk 'BEGIN { srand(7); for (i = 0; i < 600; i++) { c = i % 2; printf "%.4f,%.4f,%d\n", c*2+rand(), rand(), c } }' >"$WORK/gc.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 8\nactivation = relu\n[dense]\nout = 2\n' >"$WORK/gc.cfg"
    "$NABLA" init "$WORK/gc.cfg" --out "$WORK/gc0.st" >/dev/null 2>&1 || { fail "init"; return; }
    "$NABLA" eval "$WORK/gc0.st" --data "$WORK/gc.csv" --json >"$WORK/out" 2>/dev/null || { fail "eval"; return; }
    local l0 l1 l2 l3
    l0=$(json_field test_loss "$WORK/out")
    NABLA_THREADS=2 "$NABLA" train "$WORK/gc.cfg" --data "$WORK/gc.csv" --epochs 2 --batch 64 --grad-clip 1e-9 \
        --out "$WORK/gc.st" --json >"$WORK/out" 2>"$WORK/err" || { fail "train --grad-clip: $(tail -1 "$WORK/err")"; return; }
    l1=$(json_field test_loss "$WORK/out")
    NABLA_THREADS=2 "$NABLA" train --resume "$WORK/gc.st" --epochs 3 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "resume: $(tail -1 "$WORK/err")"; return; }
    l2=$(json_field test_loss "$WORK/out")
    NABLA_THREADS=2 "$NABLA" train "$WORK/gc.cfg" --data "$WORK/gc.csv" --epochs 2 --batch 64 --json >"$WORK/out" 2>/dev/null
    l3=$(json_field test_loss "$WORK/out")
    awk -v a="$l0" -v b="$l1" -v c="$l2" -v d="$l3" 'BEGIN { exit !(a - b < 1e-5 && b - a < 1e-5 && a - c < 1e-5 && c - a < 1e-5 && a - d > 0.1) }' ||
        fail "test loss: initial $l0, clipped $l1, resumed $l2, unclipped $l3"
    # A bound never reached: the same run as without one.
    NABLA_THREADS=2 "$NABLA" train "$WORK/gc.cfg" --data "$WORK/gc.csv" --epochs 2 --batch 64 --grad-clip 1e9 --json >"$WORK/out" 2>/dev/null
    [[ $(json_field test_loss "$WORK/out") == "$l3" ]] || fail "--grad-clip 1e9: test loss $(json_field test_loss "$WORK/out"), unclipped $l3"
}

# trains_to CFG DATA EPOCHS ACC: training CFG on DATA (batch 32) must reach a
# test accuracy above ACC.
trains_to() {
    "$NABLA" train "$1" --data "$2" --epochs "$3" --batch 32 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "train $(basename "$1") on $(basename "$2"): $(tail -2 "$WORK/err")"; return; }
    local acc
    acc=$(json_field test_accuracy "$WORK/out")
    awk -v a="$acc" -v want="$4" 'BEGIN { exit !(a > want) }' || fail "$(basename "$2"): test accuracy $acc, want > $4"
}

# An MNIST-format folder that is not MNIST: 8x8 images of 12 classes (EMNIST
# and KMNIST-49 have more than 10 too), each class a bright row or column.
cli_idx_folder_other_set() {
    mkdir -p "$WORK/idx12"
    python3 - "$WORK/idx12" <<'PY' || { fail "making the IDX files"; return; }
import gzip, random, struct, sys
random.seed(3)
for split, n in (("train", 1200), ("t10k", 240)):
    labels = [i % 12 for i in range(n)]
    px = bytearray()
    for c in labels:
        img = [random.randrange(40) for _ in range(64)]
        for k in range(8):
            img[(c % 6) * 8 + k if c < 6 else k * 8 + c % 6] = 200 + random.randrange(56)
        px += bytes(img)
    with gzip.open(f"{sys.argv[1]}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 8, 8) + px)
    with open(f"{sys.argv[1]}/{split}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
PY
    printf '[net]\ninput = 1x8x8\n[flatten]\n[dense]\nout = 12\n' >"$WORK/idx12.cfg"
    trains_to "$WORK/idx12.cfg" "$WORK/idx12" 3 0.95
    printf '[net]\ninput = 1x8x8\n[flatten]\n[dense]\nout = 10\n' >"$WORK/idx10.cfg"
    expect_fail "$NABLA" train "$WORK/idx10.cfg" --data "$WORK/idx12" --steps 1 &&
        expect_err "idx10.cfg: the network has 10 outputs, but .*idx12 has labels up to 11; classes are numbered from 0, so it needs 12 outputs"
    # eval and hessian make the same checks, with a saved model.
    "$NABLA" init "$WORK/idx10.cfg" --out "$WORK/idx10.st" >/dev/null 2>&1 || { fail "init idx10"; return; }
    expect_fail "$NABLA" eval "$WORK/idx10.st" --data "$WORK/idx12" && expect_err "labels up to 11"
    expect_fail "$NABLA" hessian "$WORK/idx10.st" --data "$WORK/idx12" && expect_err "labels up to 11"
    printf '1,2,3\n4,5,1\n' >"$WORK/two.csv"
    expect_fail "$NABLA" eval "$WORK/idx10.st" --data "$WORK/two.csv" &&
        expect_err "idx10.st: the network takes 64 values per example, .*two.csv has 2"
}

cli_csv_data() {
    # Two separable blobs in 4 features: a dense net must learn them.
    awk 'BEGIN { srand(5); for (i = 0; i < 600; i++) { c = i % 2; printf "%.4f,%.4f,%.4f,%.4f,%d\n", c*2+rand(), rand(), c*2-rand(), rand(), c } }' >"$WORK/blobs.csv"
    printf '[net]\ninput = 4\n[dense]\nout = 8\nactivation = tanh\n[dense]\nout = 2\n' >"$WORK/small.cfg"
    trains_to "$WORK/small.cfg" "$WORK/blobs.csv" 20 0.95
}

# A value that float32 cannot hold (1e39 in a CSV, 1e300 in a float64 .npy)
# or a NaN in a .npy is refused with its file, row and column, not met as a
# layer's NaN at step 0; a NaN or huge label is refused (no undefined
# conversion to an integer class).
cli_data_values_outside_float32() {
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/two.cfg"
    printf 'a,b,label\n0.5,1,0\n1,2,1\n2,1e39,1\n3,4,0\n' >"$WORK/big.csv"
    expect_fail "$NABLA" train "$WORK/two.cfg" --data "$WORK/big.csv" --steps 2 &&
        expect_err "big.csv:4: column 2 (b): '1e39' is not a finite number in float32"
    printf 'a,b,label\n0.5,1,0\n1,2,3e9\n3,4,0\n' >"$WORK/lab.csv"
    expect_fail "$NABLA" train "$WORK/two.cfg" --data "$WORK/lab.csv" --steps 2 &&
        expect_err "lab.csv:3: column 3 (the label): expected an integer class"
    command -v python3 >/dev/null || return 0
    python3 - "$WORK" <<'PY'
import struct, sys
def npy(path, descr, rows):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }" % (descr, len(rows), len(rows[0]))
    h += " " * (117 - len(h)) + "\n"
    fmt = "<" + {"<f8": "d", "<f4": "f"}[descr] * sum(len(r) for r in rows)
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() +
                           struct.pack(fmt, *[v for r in rows for v in r]))
npy(sys.argv[1] + "/big.npy", "<f8", [[0.5, 1, 0], [1, 1e300, 1], [3, 4, 0]])
npy(sys.argv[1] + "/nan.npy", "<f4", [[0.5, 1, 0], [1, 2, 1], [float("nan"), 4, 0]])
npy(sys.argv[1] + "/nanlab.npy", "<f4", [[0.5, 1, 0], [1, 2, float("nan")], [3, 4, 0]])
PY
    expect_fail "$NABLA" train "$WORK/two.cfg" --data "$WORK/big.npy" --steps 2 &&
        expect_err "big.npy: example 2: column 2: the feature is inf in float32"
    expect_fail "$NABLA" train "$WORK/two.cfg" --data "$WORK/nan.npy" --steps 2 &&
        expect_err "nan.npy: example 3: column 1: the feature is nan in float32"
    expect_fail "$NABLA" train "$WORK/two.cfg" --data "$WORK/nanlab.npy" --steps 2 &&
        expect_err "nanlab.npy: example 2: column 3 (the label): expected an integer class in \[0, 100000\], got nan"
}

# A gradient that overflows while the loss stays finite (weights that make
# the backward pass of fc1 exceed float32 on inputs of 3e38) stops the run
# with the parameter named, and the model file keeps its last checkpoint.
# When the bad update was the last step before a checkpoint, the run ended
# with status 0 and its model file held fc1's -inf weights (test loss NaN);
# with steps left, it failed at the next step blaming layer fc1's output.
# With --grad-clip, whose norm is NaN or inf, no step is taken at all.
# Cases: the step before the checkpoint (one shard), steps left (the
# data-parallel replicas: batch 32 on 2 threads), and --grad-clip.
cli_train_nonfinite_gradient_keeps_checkpoint() {
    command -v python3 >/dev/null || return 0
    printf '[net]\ninput = 1\n[dense]\nout = 1\n[dense]\nout = 2\n' >"$WORK/g.cfg"
    awk 'BEGIN { print "x,label"; for (i = 0; i < 80; i++) printf "1,%d\n", i % 2 }' >"$WORK/one.csv"
    awk 'BEGIN { print "x,label"; for (i = 0; i < 80; i++) printf "3e38,%d\n", i % 2 }' >"$WORK/huge.csv"
    local batch clip more want step
    while IFS='|' read -r batch clip more want; do
        "$NABLA" train "$WORK/g.cfg" --data "$WORK/one.csv" --epochs 1 --batch "$batch" --grad-clip "$clip" \
            --out "$WORK/g.st" --threads 2 2>/dev/null >/dev/null || { fail "first run, batch $batch"; return; }
        step=$(python3 - "$WORK/g.st" <<'PY'
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
for k, v in {"fc1.weight": [1e-38], "fc1.bias": [0], "fc2.weight": [1e8, -1e8], "fc2.bias": [0, 0]}.items():
    a, b = h[k]["data_offsets"]
    raw[8 + n + a:8 + n + b] = struct.pack("<%df" % len(v), *v)
open(sys.argv[1], "wb").write(raw)
print(h["__metadata__"]["nabla.step"])
PY
        ) || { fail "patching the weights"; return; }
        cp "$WORK/g.st" "$WORK/g0.st"
        expect_fail "$NABLA" train --resume "$WORK/g.st" --data "$WORK/huge.csv" --epochs 2 \
            --steps $((step + more)) --threads 2 &&
            expect_err "nabla train: $want" && expect_err "the model file keeps its last checkpoint"
        (($(grep -c '^nabla train:' "$WORK/err") == 1)) || fail "batch $batch, clip $clip: not one message: $(cat "$WORK/err")"
        cmp -s "$WORK/g.st" "$WORK/g0.st" || fail "batch $batch, clip $clip: the model file was rewritten"
    done <<'CASES'
1|0|1|the weights of 'fc1.weight' became NaN or infinite in the update of step [0-9]* (a gradient that was not finite
32|0|3|the loss became .* at step [0-9]*: the weights of 'fc1.weight' became NaN or infinite in the previous update
1|1|1|the gradient became infinite at step [0-9]* while the loss was .*: first in 'fc1.weight'
CASES
}

# The settings a checkpoint keeps read as the user gave them: --adversarial
# 0.1 was stored as "0.10000000000000001" (%.17g); the shortest form that
# reads back as the same double is stored.
cli_train_settings_stored_as_given() {
    printf '[net]\ninput = 1\n[dense]\nout = 2\n' >"$WORK/s.cfg"
    awk 'BEGIN { print "x,label"; for (i = 0; i < 8; i++) printf "%d,%d\n", i, i % 2 }' >"$WORK/s.csv"
    # 9.95 is 9.949999999999999 in 16 digits, 0.30000000000000004 needs all 17
    "$NABLA" train "$WORK/s.cfg" --data "$WORK/s.csv" --epochs 1 --lr 0.1 --momentum 0.3 --weight-decay 1e-4 \
        --adversarial 0.1 --grad-clip 9.95 --l1-activation 0.30000000000000004 --out "$WORK/s.st" >/dev/null \
        2>"$WORK/err" || { fail "train: $(cat "$WORK/err")"; return; }
    local kv
    for kv in lr:0.1 momentum:0.3 weight_decay:0.0001 adversarial:0.1 grad_clip:9.95 l1_activation:0.30000000000000004; do
        head -c 4096 "$WORK/s.st" | grep -aq "\"nabla.${kv%%:*}\":\"${kv#*:}\"" ||
            fail "nabla.${kv%%:*} is not stored as ${kv#*:}: $(head -c 4096 "$WORK/s.st" | tr ',' '\n' | grep -a "nabla.${kv%%:*}")"
    done
    "$NABLA" train --resume "$WORK/s.st" --data "$WORK/s.csv" --epochs 2 >/dev/null 2>"$WORK/err" ||
        fail "resume: $(cat "$WORK/err")"
}

# A learning rate too large turns every weight into NaN or inf in one update;
# the loss shows it only at the next step. A run whose last update did it
# saved a model no loader accepts, printed "validation -nan" and exited 0
# (charrnn, chat, wavenet), and dqn trained on for thousands of steps with a
# NaN Q-network. Now each stops, naming the weights (dqn: the TD loss), and
# writes no checkpoint.
cli_nonfinite_weights_never_saved() {
    local chat=$ROOT/tests/data/chat/train.csv
    wavenet_data || { fail "synth failed"; return; }
    expect_fail "$NABLA" charrnn train "$chat" --hidden 16 --seq 8 --batch 4 --steps 1 --lr 1e38 --threads 1 \
        --out "$WORK/c.st" &&
        expect_err "nabla charrnn train: the weights of 'rnn.weight_ih_l0' became NaN or infinite by step 1" &&
        expect_err "no checkpoint was written"
    expect_fail "$NABLA" chat train "$chat" --vocab-min 1 --embed 8 --hidden 8 --batch 8 --steps 1 --lr 1e38 \
        --threads 1 --out "$WORK/ch.st" &&
        expect_err "nabla chat train: the weights of 'embedding.weight' became NaN or infinite by step 1"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 1 \
        --lr 1e38 --threads 1 --out "$WORK/w.st" &&
        expect_err "nabla wavenet train: the weights of '[a-z0-9.]*' became NaN or infinite by step 1"
    # an epoch of one step (the whole corpus a batch): the epoch's end finds
    # the weights NaN before its log row and its checkpoint
    expect_fail "$NABLA" chat train "$chat" --vocab-min 1 --embed 8 --hidden 8 --batch 264 --epochs 2 --lr 1e38 \
        --threads 1 --log "$WORK/ch1.csv" --out "$WORK/ch1.st" &&
        expect_err "nabla chat train: the weights of 'embedding.weight' became NaN or infinite by step 1"
    [[ -e $WORK/ch1.csv ]] && (($(grep -c . "$WORK/ch1.csv") > 1)) && fail "a log row of NaN weights: $(cat "$WORK/ch1.csv")"
    for f in c.st ch.st w.st ch1.st; do [[ -e $WORK/$f ]] && fail "$f was written"; done
    # dqn: the checkpoint of step 300 stays as it was; the run stops at the
    # first update whose TD loss is not finite
    expect_fail "$NABLA" dqn train catch --lr 1e38 --steps 3000 --threads 1 --out "$WORK/d.st" &&
        expect_err "nabla dqn train: the TD loss became nan at step [0-9]*, update [0-9]*" &&
        expect_err "no checkpoint was written"
    "$NABLA" dqn eval "$WORK/d.st" --episodes 2 >/dev/null 2>"$WORK/err" ||
        fail "the step-300 checkpoint does not load: $(head -c 300 "$WORK/err")"
}

# Writes Fashion-MNIST test image I as an 8-bit gray PNG (Python's standard
# library only: zlib and struct), so predict sees exactly what eval saw;
# fashion_png I OUT invert writes its negative (dark on light).
fashion_png() {
    python3 - "$FASHION/t10k-images-idx3-ubyte.gz" "$1" "$2" "${3:-}" <<'PY'
import gzip, struct, sys, zlib
src, index, out, invert = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "invert"
with gzip.open(src) as f:
    f.seek(16 + 784 * index)
    pix = f.read(784)
if invert:
    pix = bytes(255 - p for p in pix)
raw = b"".join(b"\x00" + pix[r * 28:(r + 1) * 28] for r in range(28))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(out, "wb").write(png)
PY
}

cli_predict() {
    command -v python3 >/dev/null || { echo "  (python3 missing: predict test skipped)"; return; }
    [[ -e $FASHION/t10k-images-idx3-ubyte.gz ]] || { fail "Fashion-MNIST missing"; return; }
    "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --steps 200 --out "$WORK/p.st" >/dev/null 2>&1 ||
        { fail "train"; return; }
    fashion_png 0 "$WORK/img0.png" && fashion_png 1 "$WORK/img1.png" || { fail "could not write PNGs"; return; }
    "$NABLA" predict "$WORK/p.st" "$WORK/img0.png" "$WORK/img1.png" >"$WORK/out" 2>"$WORK/err" ||
        { fail "predict failed: $(cat "$WORK/err")"; return; }
    # Test images 0 and 1 are an ankle boot (9) and a pullover (2).
    grep -q "img0.png: 9 (Ankle boot)" "$WORK/out" || fail "image 0: $(head -1 "$WORK/out")"
    grep -q "img1.png: 2 (Pullover)" "$WORK/out" || fail "image 1: $(sed -n 2p "$WORK/out")"
    "$NABLA" predict "$WORK/p.st" "$WORK/img0.png" --json >"$WORK/out" 2>/dev/null || fail "predict --json"
    grep -q '"class": 9' "$WORK/out" || fail "JSON: $(cat "$WORK/out")"
    # Images like the training data pass without a word; an inverted one is flagged.
    "$NABLA" predict "$WORK/p.st" "$WORK/img0.png" "$WORK/img1.png" >/dev/null 2>"$WORK/err"
    [[ ! -s $WORK/err ]] || fail "warning on ordinary images: $(cat "$WORK/err")"
    fashion_png 0 "$WORK/inv0.png" invert || { fail "could not write the inverted PNG"; return; }
    "$NABLA" predict "$WORK/p.st" "$WORK/inv0.png" >/dev/null 2>"$WORK/err" || fail "predict of an inverted image failed"
    grep -q "inv0.png: the edges' brightness .* above the training images'.*is it inverted" "$WORK/err" ||
        fail "no inversion warning: $(cat "$WORK/err")"
    # A JPEG of the same image (through filter's identity kernel), whatever its name.
    printf '0,0,0\n0,1,0\n0,0,0\n' >"$WORK/id.csv"
    "$NABLA" filter "$WORK/img0.png" --kernel "$WORK/id.csv" --out "$WORK/img0.jpg" >/dev/null 2>&1 || fail "filter to JPEG"
    cp "$WORK/img0.jpg" "$WORK/jpeg-named.png"
    "$NABLA" predict "$WORK/p.st" "$WORK/img0.jpg" "$WORK/jpeg-named.png" >"$WORK/out" 2>"$WORK/err" || fail "predict JPEG: $(cat "$WORK/err")"
    [[ $(grep -c ": 9 (Ankle boot)" "$WORK/out") == 2 && ! -s $WORK/err ]] || fail "JPEG: $(cat "$WORK/out" "$WORK/err")"
    # far brighter on the whole than the training images (their mean 0.29 +- 0.13), the edges less
    # so (0.5 against 0.09 +- 0.05): flagged by the mean; an image as high as the input but wider is refused
    gray_png 28 28 128 255 "$WORK/bright.png" && gray_png 30 28 0 0 "$WORK/wide.png" || { fail "could not write PNGs"; return; }
    "$NABLA" predict "$WORK/p.st" "$WORK/bright.png" >/dev/null 2>"$WORK/err" || fail "predict of a bright image failed"
    grep -q "bright.png: the mean brightness 0.87 is 5 standard deviations above the training images' (0.29 +- 0.13)" "$WORK/err" ||
        fail "no brightness warning: $(cat "$WORK/err")"
    expect_fail "$NABLA" predict "$WORK/p.st" "$WORK/wide.png" && expect_err "wide.png: the image is 30x28, the network expects 28x28"
    # the training images' brightness in a damaged model was read as 0 (no warning) or a prefix of it
    set_meta "$WORK/p.st" "$WORK/d.st" nabla.input_mean_sd=0.1x || { fail "rewriting the model's metadata"; return; }
    expect_fail "$NABLA" predict "$WORK/d.st" "$WORK/bright.png" &&
        expect_err "d.st: __metadata__ 'nabla.input_mean_sd': expected a number, got '0.1x'"
    printf '[net]\ninput = 1x28x28\n' >"$WORK/notpng.png"
    expect_fail "$NABLA" predict "$WORK/p.st" "$WORK/notpng.png" && expect_err "notpng.png"
    "$NABLA" plot "$ROOT/tests/data/log.csv" --out "$WORK/big.png" >/dev/null 2>&1 &&
        { expect_fail "$NABLA" predict "$WORK/p.st" "$WORK/big.png" && expect_err "expects 28x28"; }
}

# nabla predict with a network and something that is no image: named as the
# image readers of filter and style name it (it said "not a PNG file", for
# a command that reads JPEG too, and nothing of what the file is); and with
# --json a failure left "[" and the predictions so far as stdout's last
# line, which is no JSON.
cli_predict_names_what_is_no_image() {
    command -v python3 >/dev/null || return 0
    "$NABLA" init "$ROOT/examples/mlp.cfg" --out "$WORK/n.st" >/dev/null 2>&1 || { fail "init"; return; }
    printf '1,2,0\n2,3,1\n' >"$WORK/d.csv"
    expect_fail "$NABLA" predict "$WORK/n.st" "$WORK/d.csv" && expect_err "d.csv: not a PNG or JPEG image: it looks like CSV text"
    gray_png 28 28 0 200 "$WORK/a.png" || { fail "could not write a PNG"; return; }
    expect_fail "$NABLA" predict "$WORK/n.st" "$WORK/a.png" "$WORK/d.csv" --json && expect_err "d.csv: not a PNG or JPEG"
    [[ -s $WORK/out ]] && fail "a failed predict --json printed: $(cat "$WORK/out")"
    "$NABLA" predict "$WORK/n.st" "$WORK/a.png" "$WORK/a.png" --json >"$WORK/out" 2>"$WORK/err" || fail "predict --json"
    python3 -c 'import json, sys; assert len(json.loads(open(sys.argv[1]).read())) == 2' "$WORK/out" ||
        fail "predict --json of two images: $(cat "$WORK/out")"
}

# --- charrnn ---------------------------------------------------------------------

# A small corpus with structure to learn: numbered lines of a few sentences.
charrnn_corpus() {
    awk 'BEGIN { split("the quick brown fox jumps over the lazy dog|a stitch in time saves nine|all that glitters is not gold", s, "|");
                 for (i = 0; i < 400; i++) printf "%d: %s.\n", i % 50, s[i % 3 + 1] }' >"$1"
}

# SIGINT mid-run: the checkpoint holds every finished step, and the printed
# command resumes to the uninterrupted run's weights (same validation bits/char).
cli_charrnn_sigint_resume() {
    # a name with a space and a quote: the printed command quotes it for the shell
    charrnn_corpus "$WORK/it's a corpus.txt"
    # 2,500 steps: about 2.5 s, so that the signal lands mid-run on a fast machine too.
    signal_resume INT val_bpc charrnn train "$WORK/it's a corpus.txt" --hidden 64 --seq 32 --batch 16 --steps 2500 \
        --eval-every 100000
    grep -q "nabla charrnn train '$WORK/it'\\\\''s a corpus.txt' --resume $WORK/sb.st" "$WORK/sigerr" ||
        fail "the corpus's name is not quoted for the shell: $(tail -1 "$WORK/sigerr")"
}

# charrnn train --device: as cli_train_device, for the recurrent layers: each
# cell on the GPU gives the one-thread CPU run's bits per character, the
# model samples and resumes.
cli_charrnn_device() {
    charrnn_corpus "$WORK/c.txt"
    local small=("$WORK/c.txt" --hidden 16 --seq 12 --batch 4 --steps 12 --eval-every 12 --threads 1 --json)
    if ! "$NABLA" charrnn train "${small[@]}" --device cuda --out "$WORK/g.st" >"$WORK/g" 2>"$WORK/err"; then
        device_cuda_absent "$WORK/g.st"
        return
    fi
    local cell g c
    for cell in lstm gru rnn; do
        "$NABLA" charrnn train "${small[@]}" --cell $cell --device cuda >"$WORK/g" 2>"$WORK/err" ||
            { fail "$cell on the GPU: $(tail -2 "$WORK/err")"; continue; }
        "$NABLA" charrnn train "${small[@]}" --cell $cell >"$WORK/c" 2>/dev/null || { fail "$cell on the CPU"; continue; }
        g=$(json_field val_bpc "$WORK/g") c=$(json_field val_bpc "$WORK/c")
        awk -v g="$g" -v c="$c" 'BEGIN { exit !(g - c < 1e-3 && c - g < 1e-3) }' || fail "$cell: $g bits/char on the GPU, $c on the CPU"
    done
    "$NABLA" charrnn sample "$WORK/g.st" --length 20 >"$WORK/s" 2>"$WORK/err" || fail "sample of the GPU's model: $(tail -1 "$WORK/err")"
    "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/g.st" --steps 16 --device cuda --json >"$WORK/r" \
        2>"$WORK/err" ||
        fail "resume on the GPU: $(tail -2 "$WORK/err")"
}

# Counts read from a model's __metadata__ by atoll/strtol took "16abc" for 16
# (charrnn eval's nabla.seq, chat train --resume's nabla.chat.negatives), and
# charrnn eval replaced a damaged one by its default: now the key is named.
cli_damaged_meta_counts_named() {
    charrnn_corpus "$WORK/c.txt"
    "$NABLA" charrnn train "$WORK/c.txt" --hidden 4 --seq 8 --batch 2 --steps 0 --out "$WORK/c.st" >/dev/null 2>&1 ||
        { fail "charrnn train"; return; }
    set_meta "$WORK/c.st" "$WORK/s.st" nabla.seq=16abc && set_meta "$WORK/c.st" "$WORK/z.st" nabla.seq=0 ||
        { fail "set_meta"; return; }
    expect_fail "$NABLA" charrnn eval "$WORK/s.st" "$WORK/c.txt" && expect_err "s.st" && expect_err "nabla.seq"
    expect_fail "$NABLA" charrnn eval "$WORK/z.st" "$WORK/c.txt" && expect_err "z.st" && expect_err "nabla.seq"
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --steps 1 --out "$WORK/h.st" >/dev/null 2>&1 ||
        { fail "chat train"; return; }
    set_meta "$WORK/h.st" "$WORK/n.st" nabla.chat.negatives=1abc || { fail "set_meta"; return; }
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --steps 2 --resume "$WORK/n.st" &&
        expect_err "n.st" && expect_err "nabla.chat.negatives"
}

cli_charrnn_train_sample_eval() {
    charrnn_corpus "$WORK/c.txt"
    local small=(--hidden 32 --seq 16 --batch 8 --lr 0.01)
    "$NABLA" charrnn train "$WORK/c.txt" "${small[@]}" --steps 200 --eval-every 100 --out "$WORK/c.st" \
        --log "$WORK/c.csv" --json >"$WORK/out" 2>"$WORK/err" || { fail "train failed: $(tail -3 "$WORK/err")"; return; }
    local bpc
    bpc=$(json_field val_bpc "$WORK/out")
    # Untrained: about log2(37) = 5.2 bits; 200 steps of Adam learn the words (about 0.5 bits).
    awk -v b="$bpc" 'BEGIN { exit !(b > 0 && b < 1.5) }' || fail "validation bits/char after 200 steps: $bpc"
    for f in train_bpc steps_per_second vocab; do grep -q "\"$f\"" "$WORK/out" || fail "JSON lacks $f"; done
    head -1 "$WORK/c.csv" | grep -q "^step,train_loss_bpc,val_loss_bpc" || fail "log header: $(head -1 "$WORK/c.csv")"
    [[ $(wc -l <"$WORK/c.csv") -eq 3 ]] || fail "log should have a header and two rows"
    "$NABLA" plot "$WORK/c.csv" --out "$WORK/c.png" >/dev/null 2>&1 || fail "plot of the log failed"
    # Sampling: deterministic for a seed, only characters of the corpus.
    "$NABLA" charrnn sample "$WORK/c.st" --length 200 --seed 3 --prime "1" >"$WORK/s1" 2>"$WORK/err" ||
        { fail "sample failed: $(cat "$WORK/err")"; return; }
    "$NABLA" charrnn sample "$WORK/c.st" --length 200 --seed 3 --prime "1" >"$WORK/s2" 2>/dev/null
    cmp -s "$WORK/s1" "$WORK/s2" || fail "the same seed sampled different text"
    [[ $(wc -c <"$WORK/s1") -ge 200 ]] || fail "sample too short: $(wc -c <"$WORK/s1")"
    LC_ALL=C grep -q '[^0-9a-z :.]' <(tr -d '\n' <"$WORK/s1") && fail "sample has characters outside the corpus"
    expect_fail "$NABLA" charrnn sample "$WORK/c.st" --prime "Z" && expect_err "U+005A"
    # eval on the corpus itself agrees with training's number for the same split.
    "$NABLA" charrnn eval "$WORK/c.st" "$WORK/c.txt" --json >"$WORK/out" 2>/dev/null || { fail "eval failed"; return; }
    local e
    e=$(json_field bits_per_char "$WORK/out")
    awk -v b="$e" 'BEGIN { exit !(b > 0 && b < 1.5) }' || fail "eval bits/char $e"
    # Resume goes on from step 200 to 250 with the same settings.
    "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/c.st" --steps 250 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "resume failed: $(tail -2 "$WORK/err")"; return; }
    [[ $(json_field run_steps "$WORK/out") == 50 && $(json_field steps "$WORK/out") == 250 ]] ||
        fail "resume ran $(json_field run_steps "$WORK/out") steps to $(json_field steps "$WORK/out")"
}

# Validation is the last 5% of every file: 50 of a.txt's 1010 characters and 1 of b.txt's 39 (the last 5%
# of the concatenation would be 52).
cli_charrnn_holds_out_each_file() {
    awk 'BEGIN { for (i = 0; i < 101; i++) printf "abcdefghi\n" }' >"$WORK/a.txt"
    awk 'BEGIN { for (i = 0; i < 3; i++) printf "the cat\n"; printf "a dog is\n"; printf "zzzzz\n" }' >"$WORK/b.txt"
    [[ $(wc -c <"$WORK/a.txt") == 1010 && $(wc -c <"$WORK/b.txt") == 39 ]] || { fail "corpus sizes"; return; }
    "$NABLA" charrnn train "$WORK/a.txt" "$WORK/b.txt" --hidden 8 --seq 8 --batch 4 --steps 0 >/dev/null 2>"$WORK/err" ||
        { fail "train failed: $(tail -2 "$WORK/err")"; return; }
    grep -q "1049 characters (51 for validation)" "$WORK/err" || fail "split: $(grep characters "$WORK/err")"
}

# The default corpus: the fortunes of Debian's fortunes package (scripts/install-deps.sh).
cli_charrnn_default_corpus() {
    "$NABLA" charrnn train --hidden 8 --seq 8 --batch 4 --steps 2 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "train on the fortunes failed: $(tail -2 "$WORK/err")"; return; }
    local v
    v=$(json_field vocab "$WORK/out")
    awk -v v="$v" 'BEGIN { exit !(v >= 90 && v < 200) }' || fail "fortunes vocabulary of $v characters"
}

# The least text the refusal names is enough, one character less is not: the
# last 5% (rounded down) of the file is held out and must be 2 characters, the
# rest must fill --batch streams of --seq + 1 (the old figure, 13 for --batch 2
# --seq 4, was refused with a text of 28).
cli_charrnn_too_short_names_the_minimum() {
    local args bs need
    for bs in "2 4" "2 64" "3 100"; do
        set -- $bs
        args=(--batch "$1" --seq "$2" --hidden 2 --steps 1 --eval-every 1)
        printf 'too short\n' >"$WORK/t.txt"
        expect_fail "$NABLA" charrnn train "$WORK/t.txt" "${args[@]}" && expect_err "too few" || return
        need=$(grep -o 'need at least [0-9]*' "$WORK/err" | grep -o '[0-9]*$')
        [[ -n $need ]] || { fail "no minimum in: $(cat "$WORK/err")"; return; }
        head -c $((need - 1)) /dev/zero | tr '\0' x >"$WORK/t.txt"
        expect_fail "$NABLA" charrnn train "$WORK/t.txt" "${args[@]}" && expect_err "too few" || return
        printf x >>"$WORK/t.txt"
        "$NABLA" charrnn train "$WORK/t.txt" "${args[@]}" >/dev/null 2>"$WORK/err" ||
            fail "--batch $1 --seq $2: $need characters, the minimum named, refused: $(tail -1 "$WORK/err")"
    done
}

# A damaged checkpoint's settings are refused, naming the file: --seq 1e300
# was cast to a negative length (undefined behaviour), --lr 0 trained nothing,
# and a bad value was silently replaced by the default.
cli_charrnn_resume_damaged_settings() {
    command -v python3 >/dev/null || return 0
    yes 'the quick brown fox jumps over the lazy dog' | head -200 >"$WORK/t.txt"
    "$NABLA" charrnn train "$WORK/t.txt" --hidden 8 --steps 3 --eval-every 3 --batch 4 --seq 16 --out "$WORK/c.st" \
        >/dev/null 2>&1 || { fail "train"; return; }
    set_meta "$WORK/c.st" "$WORK/s.st" nabla.seq=1e300 && set_meta "$WORK/c.st" "$WORK/w.st" nabla.seq=abc &&
        set_meta "$WORK/c.st" "$WORK/l.st" nabla.lr=0 && set_meta "$WORK/c.st" "$WORK/b.st" nabla.batch=100000 ||
        { fail "rewriting the checkpoint's metadata"; return; }
    expect_fail "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/s.st" --steps 6 &&
        expect_err "s.st: __metadata__ 'nabla.seq': expected a number in \[0, 2^53\], got '1e300'"
    expect_fail "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/w.st" --steps 6 && expect_err "w.st: __metadata__ 'nabla.seq'"
    expect_fail "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/l.st" --steps 6 &&
        expect_err "l.st: the stored --lr 0 is not a number > 0"
    expect_fail "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/b.st" --steps 6 &&
        expect_err "b.st: the stored --batch 100000 is not an integer in \[1, 65536\]"
    # the running loss of the steps since the last row: an infinite one would make the next row's train figure inf
    set_meta "$WORK/c.st" "$WORK/i.st" nabla.loss_sum=inf || { fail "rewriting the checkpoint's metadata"; return; }
    expect_fail "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/i.st" --steps 6 &&
        expect_err "i.st: __metadata__ 'nabla.loss_sum': expected a number, got 'inf'"
    "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/c.st" --steps 6 >/dev/null 2>"$WORK/err" ||
        fail "resuming the undamaged checkpoint: $(tail -1 "$WORK/err")"
}

# Keys a checkpoint writes together (a running loss and its count, an
# epoch's sums): one of them alone is a damaged or hand-edited file. It was
# taken for an older checkpoint and the other dropped in silence, so the
# resumed run's next log row averaged other steps than an uninterrupted
# run's (charrnn and wavenet's nabla.loss_sum/loss_n, chat's, train's
# epoch sums); it is refused, naming the key that is missing.
cli_resume_refuses_half_a_key_group() {
    command -v python3 >/dev/null || return 0
    yes 'the quick brown fox jumps over the lazy dog' | head -200 >"$WORK/t.txt"
    "$NABLA" charrnn train "$WORK/t.txt" --hidden 8 --steps 3 --eval-every 2 --batch 4 --seq 16 --out "$WORK/c.st" \
        >/dev/null 2>&1 || { fail "charrnn train"; return; }
    set_meta "$WORK/c.st" "$WORK/s.st" -nabla.loss_n && set_meta "$WORK/c.st" "$WORK/n.st" -nabla.loss_sum ||
        { fail "rewriting the checkpoint's metadata"; return; }
    expect_fail "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/s.st" --steps 6 &&
        expect_err "s.st: __metadata__ holds 'nabla.loss_sum' but not 'nabla.loss_n'"
    expect_fail "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/n.st" --steps 6 &&
        expect_err "n.st: __metadata__ holds 'nabla.loss_n' but not 'nabla.loss_sum'"
    # a checkpoint from before the two were kept (neither) still resumes
    set_meta "$WORK/c.st" "$WORK/old.st" -nabla.loss_sum -nabla.loss_n || { fail "rewriting the checkpoint"; return; }
    "$NABLA" charrnn train "$WORK/t.txt" --resume "$WORK/old.st" --steps 6 >/dev/null 2>"$WORK/err" ||
        fail "resuming a checkpoint without a running loss: $(tail -1 "$WORK/err")"
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 2 --steps 5 --out "$WORK/b.st" >/dev/null 2>&1 ||
        { fail "chat train"; return; }
    set_meta "$WORK/b.st" "$WORK/cs.st" -nabla.chat.loss_n && set_meta "$WORK/b.st" "$WORK/ce.st" -nabla.chat.max_steps ||
        { fail "rewriting the chat checkpoint"; return; }
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/cs.st" &&
        expect_err "cs.st: __metadata__ holds 'nabla.chat.loss_sum' but not 'nabla.chat.loss_n'"
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/ce.st" &&
        expect_err "ce.st: __metadata__ holds 'nabla.chat.epochs' but not 'nabla.chat.max_steps'"
    # the budget's two numbers are whole: "5abc" was read as 5
    set_meta "$WORK/b.st" "$WORK/cx.st" nabla.chat.epochs=5abc || { fail "rewriting the chat checkpoint"; return; }
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/cx.st" &&
        expect_err "cx.st: __metadata__ 'nabla.chat.epochs' '5abc' and 'nabla.chat.max_steps' '.*': expected an integer >= 1 and one >= -1"
    # each bound and each defect of the two: 0 epochs, -2 steps, "3x", an overflow, nothing
    local kv
    for kv in nabla.chat.epochs=0 nabla.chat.max_steps=-2 nabla.chat.max_steps=3x nabla.chat.epochs=99999999999999999999 \
        nabla.chat.max_steps=; do
        set_meta "$WORK/b.st" "$WORK/cb.st" "$kv" || { fail "rewriting the chat checkpoint"; return; }
        expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/cb.st" &&
            expect_err "cb.st: __metadata__ 'nabla.chat.epochs' '.*': expected an integer >= 1 and one >= -1"
    done
    # a chat checkpoint from before the running loss was kept (neither key) still resumes
    set_meta "$WORK/b.st" "$WORK/cold.st" -nabla.chat.loss_sum -nabla.chat.loss_n || { fail "rewriting"; return; }
    "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/cold.st" >/dev/null 2>"$WORK/err" ||
        fail "resuming a chat checkpoint without a running loss: $(tail -1 "$WORK/err")"
    awk 'BEGIN { srand(3); for (i = 0; i < 300; i++) printf "%.3f,%.3f,%d\n", rand(), rand(), i % 2 }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/l.cfg"
    "$NABLA" train "$WORK/l.cfg" --data "$WORK/d.csv" --epochs 2 --batch 10 --steps 5 --out "$WORK/m.st" >/dev/null 2>&1 ||
        { fail "train"; return; }
    set_meta "$WORK/m.st" "$WORK/ms.st" -nabla.epoch_seen && set_meta "$WORK/m.st" "$WORK/mi.st" -nabla.input_mean_sd ||
        { fail "rewriting the train checkpoint"; return; }
    expect_fail "$NABLA" train --resume "$WORK/ms.st" &&
        expect_err "ms.st: __metadata__ holds 'nabla.epoch_loss' but not 'nabla.epoch_seen'"
    expect_fail "$NABLA" train --resume "$WORK/mi.st" &&
        expect_err "mi.st: __metadata__ holds 'nabla.input_mean' but not 'nabla.input_mean_sd'"
    # the third key of a group of three, and the first that is lacking when two are
    set_meta "$WORK/m.st" "$WORK/mc.st" -nabla.epoch_correct && set_meta "$WORK/m.st" "$WORK/m2.st" -nabla.epoch_seen \
        -nabla.epoch_correct || { fail "rewriting the train checkpoint"; return; }
    expect_fail "$NABLA" train --resume "$WORK/mc.st" &&
        expect_err "mc.st: __metadata__ holds 'nabla.epoch_loss' but not 'nabla.epoch_correct'"
    expect_fail "$NABLA" train --resume "$WORK/m2.st" &&
        expect_err "m2.st: __metadata__ holds 'nabla.epoch_loss' but not 'nabla.epoch_seen'"
    # images keep their edge statistics, a pair too
    if [[ -e $FASHION/t10k-images-idx3-ubyte.gz ]]; then
        "$NABLA" train "$ROOT/examples/mlp.cfg" --data fashion-mnist --steps 2 --out "$WORK/f.st" >/dev/null 2>&1 ||
            { fail "train on fashion-mnist"; return; }
        set_meta "$WORK/f.st" "$WORK/fe.st" -nabla.input_edge_sd || { fail "rewriting the train checkpoint"; return; }
        expect_fail "$NABLA" train --resume "$WORK/fe.st" --steps 3 &&
            expect_err "fe.st: __metadata__ holds 'nabla.input_edge' but not 'nabla.input_edge_sd'"
    fi
    "$NABLA" train --resume "$WORK/m.st" >/dev/null 2>"$WORK/err" || fail "resuming the undamaged checkpoint: $(tail -1 "$WORK/err")"
}

cli_charrnn_bad_input() {
    : >"$WORK/empty.txt"
    expect_fail "$NABLA" charrnn train "$WORK/empty.txt" && expect_err "empty.txt: empty text"
    printf 'ELF\0\1\2\3' >"$WORK/bin.txt"
    expect_fail "$NABLA" charrnn train "$WORK/bin.txt" && expect_err "bin.txt: binary data"
    printf 'fine\ncaf\xe9 au lait\n' >"$WORK/latin1.txt"
    expect_fail "$NABLA" charrnn train "$WORK/latin1.txt" && expect_err "latin1.txt:2:4: invalid UTF-8 (byte 0xE9)"
    printf 'too short\n' >"$WORK/short.txt"
    expect_fail "$NABLA" charrnn train "$WORK/short.txt" && expect_err "too few"
    expect_fail "$NABLA" charrnn train "$WORK/nowhere.txt" && expect_err "nowhere.txt"
    expect_fail "$NABLA" charrnn train --cell lstn && expect_err "lstn"
    expect_fail "$NABLA" charrnn frobnicate && expect_err "unknown verb .frobnicate. (expected train, sample or eval)"
    # A model of another cell type, and a file that is no charrnn model at all.
    charrnn_corpus "$WORK/c.txt"
    "$NABLA" charrnn train "$WORK/c.txt" --cell gru --hidden 8 --seq 8 --batch 4 --steps 0 --out "$WORK/g.st" \
        >/dev/null 2>&1 || { fail "gru train"; return; }
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/g.st" --cell lstm && expect_err "g.st holds a model with gru cells"
    "$NABLA" init "$ROOT/examples/mlp.cfg" --out "$WORK/mlp.st" >/dev/null 2>&1 &&
        { expect_fail "$NABLA" charrnn eval "$WORK/mlp.st" "$WORK/c.txt" && expect_err "mlp.st: not a charrnn model: it holds a network (nabla train or nabla init)"; }
    printf 'the quick brown fox!\n' >"$WORK/other.txt"
    expect_fail "$NABLA" charrnn eval "$WORK/g.st" "$WORK/other.txt" && expect_err "other.txt:1:20: character U+0021"
}

# --- nabla linalg / stats / hessian ------------------------------------------

# npy FILE SHAPE V...: a float32 .npy (format 1.0, C order) as NumPy writes it;
# SHAPE as in Python ("2, 2" or "3,"); values may be nan or inf.
npy() {
    local f=$1 shape=$2
    shift 2
    local dict="{'descr': '<f4', 'fortran_order': False, 'shape': ($shape), }"
    local pad=$(((64 - (10 + ${#dict} + 1) % 64) % 64))
    {
        printf '\x93NUMPY\x01\x00'
        perl -e 'print pack("v", $ARGV[0])' $((${#dict} + pad + 1))
        printf '%s%*s\n' "$dict" $pad ''
        perl -e 'print pack("f<*", @ARGV)' -- "$@"
    } >"$f"
}
# npy_values FILE: the values of a float32 .npy, space-separated.
npy_values() { perl -e 'local $/; my $b = <>; my $h = unpack("v", substr($b, 8, 2)); print join(" ", unpack("f<*", substr($b, 10 + $h))), "\n"' "$1"; }
# json_array FIELD FILE: the numbers of a JSON array field, space-separated.
json_array() { sed -n 's/.*"'"$1"'": \[\([^]]*\)\].*/\1/p' "$2" | tail -1 | tr -d ','; }
# near GOT WANT...: each number of GOT (a space-separated list) within 1e-5
# relative (1e-6 absolute near zero) of the matching WANT.
near() {
    local got=$1
    shift
    awk -v g="$got" -v w="$*" 'BEGIN { n = split(g, a, " "); m = split(w, b, " "); if (n != m) exit 1;
        for (i = 1; i <= n; i++) { d = a[i] - b[i]; if (d < 0) d = -d; t = b[i] < 0 ? -b[i] : b[i];
            if (d > 1e-5 * t + 1e-6) exit 1 } }' || fail "got [$got], expected [$*]"
}

# eq. 2.40 on [[2,1],[1,2]]: eigenvalues 3, 1; Q's columns (1,1)/sqrt2, (1,-1)/sqrt2.
cli_linalg_eig_symmetric() {
    npy "$WORK/A.npy" "2, 2" 2 1 1 2
    "$NABLA" linalg eig "$WORK/A.npy" --json >"$WORK/out" 2>"$WORK/err" || { fail "eig: $(cat "$WORK/err")"; return; }
    near "$(json_array eigenvalues "$WORK/out")" 3 1
    near "$(npy_values "$WORK/A.eigenvalues.npy")" 3 1
    near "$(npy_values "$WORK/A.Q.npy")" 0.7071068 0.7071068 0.7071068 -0.7071068
    near "$(json_field cond "$WORK/out")" 3
    grep -q '"definiteness": "positive definite"' "$WORK/out" || fail "not positive definite: $(cat "$WORK/out")"
    awk -v e="$(json_field relative_reconstruction_error "$WORK/out")" 'BEGIN { exit !(e < 1e-6) }' ||
        fail "reconstruction error $(json_field relative_reconstruction_error "$WORK/out")"
    grep -q "eq. 2.40" "$WORK/err" || fail "summary does not cite eq. 2.40"
    # --out chooses the prefix; without --json the summary is on stdout.
    "$NABLA" linalg eig "$WORK/A.npy" --out "$WORK/r" >"$WORK/out" || fail "eig --out"
    [[ -s $WORK/r.Q.npy && -s $WORK/r.eigenvalues.npy ]] || fail "--out did not write r.Q.npy"
    grep -q "reconstruction error" "$WORK/out" || fail "summary lacks the reconstruction error"
}

# A rotation by 90 degrees: eigenvalues +-i, shown as a+bi; det 1.
cli_linalg_eig_general() {
    npy "$WORK/G.npy" "2, 2" 0 -1 1 0
    "$NABLA" linalg eig "$WORK/G.npy" >"$WORK/out" 2>"$WORK/err" || { fail "eig: $(cat "$WORK/err")"; return; }
    grep -q "0+1i 0-1i" "$WORK/out" || fail "complex eigenvalues not shown as a+bi: $(cat "$WORK/out")"
    "$NABLA" linalg eig "$WORK/G.npy" --json >"$WORK/out" 2>/dev/null || fail "eig --json"
    near "$(json_array eigenvalues_im "$WORK/out")" 1 -1
    near "$(npy_values "$WORK/G.eigenvalues.npy")" 0 1 0 -1
}

# det = -2 for [[1,2],[3,4]]; det = prod of the eigenvalues (3 * 1) for A.
cli_linalg_det() {
    npy "$WORK/D.npy" "2, 2" 1 2 3 4
    "$NABLA" linalg det "$WORK/D.npy" --json >"$WORK/out" 2>/dev/null || { fail "det"; return; }
    near "$(json_field det "$WORK/out")" -2
    near "$(json_field sign "$WORK/out")" -1
    npy "$WORK/A.npy" "2, 2" 2 1 1 2
    "$NABLA" linalg det "$WORK/A.npy" --json >"$WORK/out" 2>/dev/null || { fail "det A"; return; }
    near "$(json_field det "$WORK/out")" 3
    npy "$WORK/R.npy" "2, 3" 1 2 3 2 4 6
    expect_fail "$NABLA" linalg det "$WORK/R.npy" && expect_err "R.npy: det needs a square matrix, got 2 x 3"
}

# eq. 10 and eq. 11 on the rank-1 R = [1 2 3]^T-ish: s = (sqrt 70, 0) and
# R+ = R^T / ||R||_F^2 = R^T / 70; the four Penrose conditions hold.
cli_linalg_svd_pinv_rank1() {
    npy "$WORK/R.npy" "2, 3" 1 2 3 2 4 6
    "$NABLA" linalg svd "$WORK/R.npy" --json >"$WORK/out" 2>/dev/null || { fail "svd"; return; }
    near "$(json_array singular_values "$WORK/out")" 8.3666003 0
    [[ $(sed -n 's/.*"rank": \([0-9]*\).*/\1/p' "$WORK/out") == 1 ]] || fail "rank is not 1: $(cat "$WORK/out")"
    grep -q '"cond": null' "$WORK/out" || fail "a singular matrix's cond should be null in JSON"
    near "$(npy_values "$WORK/R.S.npy")" 8.3666003 0
    "$NABLA" linalg pinv "$WORK/R.npy" --json >"$WORK/out" 2>"$WORK/err" || { fail "pinv"; return; }
    near "$(npy_values "$WORK/R.pinv.npy")" 0.0142857 0.0285714 0.0285714 0.0571429 0.0428571 0.0857143
    for r in $(json_array penrose_relative_residuals "$WORK/out"); do
        awk -v r="$r" 'BEGIN { exit !(r < 1e-5) }' || fail "Penrose residual $r"
    done
    grep -q "A+ A A+ - A+" "$WORK/err" || fail "summary lacks the Penrose conditions"
}

# A x = b by LU; a singular A is refused with a hint; lstsq gives the least
# norm solution; a tall A falls back to least squares.
cli_linalg_solve_lstsq() {
    npy "$WORK/A.npy" "2, 2" 2 1 1 2
    npy "$WORK/b.npy" "2," 3 3
    "$NABLA" linalg solve "$WORK/A.npy" "$WORK/b.npy" --json >"$WORK/out" 2>/dev/null || { fail "solve"; return; }
    near "$(json_array x "$WORK/out")" 1 1
    near "$(npy_values "$WORK/A.x.npy")" 1 1
    grep -q '"method": "lu"' "$WORK/out" || fail "square solve should use LU"
    npy "$WORK/S.npy" "2, 2" 1 2 2 4
    expect_fail "$NABLA" linalg solve "$WORK/S.npy" "$WORK/b.npy" && expect_err "singular" && expect_err "lstsq"
    # b = (3, 3) projects onto the column space span(1, 2) as (1.8, 3.6) = S (0.36, 0.72).
    "$NABLA" linalg lstsq "$WORK/S.npy" "$WORK/b.npy" --json >"$WORK/out" 2>/dev/null || { fail "lstsq"; return; }
    near "$(json_array x "$WORK/out")" 0.36 0.72
    npy "$WORK/T.npy" "3, 2" 1 0 0 1 1 1
    npy "$WORK/t.npy" "3," 1 2 3
    "$NABLA" linalg solve "$WORK/T.npy" "$WORK/t.npy" --json >"$WORK/out" 2>/dev/null || { fail "tall solve"; return; }
    grep -q '"method": "lstsq"' "$WORK/out" || fail "a 3 x 2 A should fall back to least squares"
    near "$(json_array x "$WORK/out")" 1 2
    npy "$WORK/c.npy" "3," 1 1 1
    expect_fail "$NABLA" linalg solve "$WORK/A.npy" "$WORK/c.npy" && expect_err "c.npy has 3 rows but .*A.npy has 2"
    expect_fail "$NABLA" linalg solve "$WORK/A.npy" && expect_err "expected A.npy B.npy"
}

# Norms of (3, -4, 0); eq. 4.2 for diag(1, 4) and -diag(1, 4); definiteness.
cli_linalg_norms_cond_definite() {
    npy "$WORK/v.npy" "3," 3 -4 0
    "$NABLA" linalg norms "$WORK/v.npy" --json >"$WORK/out" 2>/dev/null || { fail "norms"; return; }
    near "$(json_field l1 "$WORK/out") $(json_field l2 "$WORK/out") $(json_field inf "$WORK/out")" 7 5 4
    npy "$WORK/P.npy" "2, 2" 1 0 0 4
    "$NABLA" linalg cond "$WORK/P.npy" --json >"$WORK/out" 2>"$WORK/err" || { fail "cond"; return; }
    near "$(json_field cond "$WORK/out")" 4
    grep -q "eq. 4.2" "$WORK/err" || fail "cond of a symmetric matrix should cite eq. 4.2"
    npy "$WORK/N.npy" "2, 2" -1 0 0 -4
    "$NABLA" linalg definite "$WORK/N.npy" --json >"$WORK/out" 2>/dev/null || { fail "definite"; return; }
    grep -q '"definiteness": "negative definite"' "$WORK/out" || fail "-diag(1,4): $(cat "$WORK/out")"
    npy "$WORK/I.npy" "2, 2" 1 3 -1 0
    "$NABLA" linalg definite "$WORK/I.npy" --json >"$WORK/out" 2>/dev/null || { fail "definite I"; return; }
    grep -q '"definiteness": "indefinite"' "$WORK/out" || fail "[[1,3],[-1,0]] (symmetric part [[1,1],[1,0]]): $(cat "$WORK/out")"
}

# Bad input: a clear message naming the file, a non-zero exit, no crash, no
# result file.
cli_linalg_bad_input() {
    npy "$WORK/nan.npy" "2, 2" 1 nan 0 1
    expect_fail "$NABLA" linalg eig "$WORK/nan.npy" && expect_err "nan.npy: entry \[0, 1\] is NaN"
    npy "$WORK/inf.npy" "2, 2" 1 0 inf 1
    expect_fail "$NABLA" linalg svd "$WORK/inf.npy" && expect_err "inf.npy: entry \[1, 0\] is inf"
    npy "$WORK/empty.npy" "0, 3"
    expect_fail "$NABLA" linalg pinv "$WORK/empty.npy" && expect_err "empty.npy: the matrix is empty"
    npy "$WORK/vec.npy" "3," 1 2 3
    expect_fail "$NABLA" linalg eig "$WORK/vec.npy" && expect_err "vec.npy: expected a 2-D matrix"
    npy "$WORK/cube.npy" "1, 2, 2" 1 2 3 4
    expect_fail "$NABLA" linalg det "$WORK/cube.npy" && expect_err "cube.npy: expected a 2-D matrix"
    npy "$WORK/wide.npy" "2, 3" 1 2 3 4 5 6
    expect_fail "$NABLA" linalg eig "$WORK/wide.npy" && expect_err "wide.npy: eig needs a square matrix, got 2 x 3"
    expect_fail "$NABLA" linalg eig "$WORK/nowhere.npy" && expect_err "nowhere.npy"
    printf 'junk' >"$WORK/junk.npy"
    expect_fail "$NABLA" linalg eig "$WORK/junk.npy" && expect_err "junk.npy"
    npy "$WORK/A.npy" "2, 2" 2 1 1 2
    head -c 100 "$WORK/A.npy" >"$WORK/trunc.npy"
    expect_fail "$NABLA" linalg eig "$WORK/trunc.npy" && expect_err "trunc.npy"
    expect_fail "$NABLA" linalg frobnicate "$WORK/A.npy" && expect_err "unknown verb"
    # a folder given as A is named as the input, as by det (eig blamed the --out it derives from A's path)
    mkdir -p "$WORK/adir"
    local v
    for v in eig det; do
        expect_fail "$NABLA" linalg $v "$WORK/adir" && expect_err "nabla linalg $v: $WORK/adir: is a folder, expected a file"
    done
    ls "$WORK"/{nan,inf,empty,vec,cube,wide,junk,trunc}.*.npy >/dev/null 2>&1 && fail "a failed command wrote a result"
    true
}

# Moments of a CSV with a header: x = 1..4, y = 2x, z = 5 - x.
cli_stats_csv() {
    printf 'x,y,z\n1,2,4\n2,4,3\n3,6,2\n4,8,1\n' >"$WORK/m.csv"
    "$NABLA" stats "$WORK/m.csv" --json >"$WORK/out" 2>"$WORK/err" || { fail "stats: $(cat "$WORK/err")"; return; }
    grep -q '"names": \["x", "y", "z"\]' "$WORK/out" || fail "names: $(head -c 200 "$WORK/out")"
    near "$(json_array mean "$WORK/out")" 2.5 5 2.5
    near "$(json_array var "$WORK/out")" 1.25 5 1.25
    near "$(json_array var_unbiased "$WORK/out")" 1.6666667 6.6666667 1.6666667
    # eq. 12 (1/m) and the unbiased 1/(m-1): cov(x, y) = 2.5 and 3.3333, cov(x, z) = -1.25 and -1.6667.
    local cov cov1 corr
    cov=$(sed -n 's/.*"cov": \[\[\([^]]*\)\].*/\1/p' "$WORK/out" | tr -d ',')
    near "$cov" 1.25 2.5 -1.25
    cov1=$(sed -n 's/.*"cov_unbiased": \[\[\([^]]*\)\].*/\1/p' "$WORK/out" | tr -d ',')
    near "$cov1" 1.6666667 3.3333333 -1.6666667
    corr=$(sed -n 's/.*"corr": \[\[\([^]]*\)\].*/\1/p' "$WORK/out" | tr -d ',')
    near "$corr" 1 1 -1
    grep -q "eq. 12" "$WORK/err" || fail "summary does not cite eq. 12"
    grep -q "^y " "$WORK/err" || fail "summary does not show the column names"
    # Another name is read by content: a CSV saved as .txt, quoted as spreadsheets write it.
    printf '"x","y","z"\r\n"1","2","4"\r\n2,4,3\r\n3,6,2\r\n4,8,1\r\n' >"$WORK/m.txt"
    "$NABLA" stats "$WORK/m.txt" --json >"$WORK/out" 2>"$WORK/err" || { fail "stats m.txt: $(cat "$WORK/err")"; return; }
    near "$(json_array mean "$WORK/out")" 2.5 5 2.5
}

cli_stats_npy_and_bad_input() {
    npy "$WORK/X.npy" "3, 2" 1 0 2 0 3 0
    "$NABLA" stats "$WORK/X.npy" --json >"$WORK/out" 2>/dev/null || { fail "stats npy"; return; }
    near "$(json_array mean "$WORK/out")" 2 0
    grep -q '"corr": \[\[1, null\], \[null, null\]\]' "$WORK/out" || fail "a constant column's correlation should be null"
    printf 'a,b\n1,2\n\n3,\n' >"$WORK/hole.csv" # the file's line, not the row's number
    expect_fail "$NABLA" stats "$WORK/hole.csv" && expect_err "hole.csv:4: column 2 (b): empty cell; expected a finite number"
    # finite in double but not in float32: named at its line, not as a flat index of the matrix
    printf 'a,b\n1,2\n1e39,3\n4,5\n' >"$WORK/big.csv"
    expect_fail "$NABLA" stats "$WORK/big.csv" && expect_err "big.csv:3: column 1 (a): '1e39' is not a finite number in float32"
    npy "$WORK/nan.npy" "2, 2" 1 nan 0 1
    expect_fail "$NABLA" stats "$WORK/nan.npy" && expect_err "nan.npy: entry \[0, 1\] is NaN"
    npy "$WORK/cube.npy" "1, 2, 2" 1 2 3 4
    expect_fail "$NABLA" stats "$WORK/cube.npy" && expect_err "cube.npy"
    expect_fail "$NABLA" stats "$WORK/nowhere.csv" && expect_err "nowhere.csv"
}

# --out PREFIX writes the statistics as .npy files (the option never ran):
# their values are those of --json; with one row the 1/(m-1) estimates are
# undefined, not written, and the message says so.
cli_stats_out_writes_npy() {
    printf 'x,y,z\n1,2,4\n2,4,3\n3,6,2\n4,8,1\n' >"$WORK/m.csv"
    "$NABLA" stats "$WORK/m.csv" --out "$WORK/s" >"$WORK/out" 2>"$WORK/err" || { fail "stats --out: $(cat "$WORK/err")"; return; }
    grep -q "wrote $WORK/s.{mean,var,var_unbiased,cov,cov_unbiased,corr}.npy" "$WORK/out" "$WORK/err" ||
        fail "no 'wrote' line: $(cat "$WORK/out" "$WORK/err" | tail -3)"
    near "$(npy_values "$WORK/s.mean.npy")" 2.5 5 2.5
    near "$(npy_values "$WORK/s.var.npy")" 1.25 5 1.25
    near "$(npy_values "$WORK/s.var_unbiased.npy")" 1.6666667 6.6666667 1.6666667
    near "$(npy_values "$WORK/s.cov.npy")" 1.25 2.5 -1.25 2.5 5 -2.5 -1.25 -2.5 1.25
    near "$(npy_values "$WORK/s.cov_unbiased.npy")" 1.6666667 3.3333333 -1.6666667 3.3333333 6.6666667 -3.3333333 \
        -1.6666667 -3.3333333 1.6666667
    near "$(npy_values "$WORK/s.corr.npy")" 1 1 -1 1 1 -1 -1 -1 1
    printf 'x,y\n1,2\n' >"$WORK/one.csv"
    "$NABLA" stats "$WORK/one.csv" --out "$WORK/o" >"$WORK/out" 2>"$WORK/err" || { fail "stats one row: $(cat "$WORK/err")"; return; }
    grep -q "one sample: the 1/(m-1) estimates are undefined" "$WORK/out" "$WORK/err" || fail "no one-sample note"
    grep -q "wrote $WORK/o.{mean,var,cov,corr}.npy" "$WORK/out" "$WORK/err" || fail "one row: $(cat "$WORK/out" | tail -2)"
    [[ -e $WORK/o.mean.npy && ! -e $WORK/o.var_unbiased.npy && ! -e $WORK/o.cov_unbiased.npy ]] ||
        fail "one row: files $(ls "$WORK")"
    near "$(npy_values "$WORK/o.mean.npy")" 1 2
    # a prefix in a folder that does not exist: refused before any work
    expect_fail "$NABLA" stats "$WORK/m.csv" --out "$WORK/no/such/s" && expect_err "no/such"
}

# Softmax regression on 64 images: a convex loss, so H is positive
# semidefinite; the top eigenvalue is positive, the trace above it, and a
# step of eps* (eq. 4.10) lowers the loss.
cli_hessian_tiny_model() {
    printf '[net]\ninput = 1x28x28\n[flatten]\n[dense]\nout = 10\n' >"$WORK/tiny.cfg"
    "$NABLA" init "$WORK/tiny.cfg" --out "$WORK/tiny.st" >/dev/null || { fail "init"; return; }
    "$NABLA" hessian "$WORK/tiny.st" --data fashion-mnist --batch 64 --top 3 --trace --samples 20 --json \
        >"$WORK/out" 2>"$WORK/err" || { fail "hessian: $(tail -3 "$WORK/err")"; return; }
    for f in loss grad_norm top_eigenvalues trace epsilon_star predicted_decrease actual_decrease lambda_min \
        condition_estimate; do
        grep -q "\"$f\"" "$WORK/out" || fail "JSON lacks $f"
    done
    local ev
    ev=$(json_array top_eigenvalues "$WORK/out")
    awk -v e="$ev" -v tr="$(json_field trace "$WORK/out")" 'BEGIN { n = split(e, a, " "); if (n != 3 || a[1] <= 0) exit 1;
        for (i = 2; i <= n; i++) if (a[i] > a[i-1]) exit 1; exit !(tr > a[1]) }' ||
        fail "top eigenvalues [$ev] not positive and descending, or trace $(json_field trace "$WORK/out") below them"
    awk -v p="$(json_field predicted_decrease "$WORK/out")" -v a="$(json_field actual_decrease "$WORK/out")" \
        -v e="$(json_field epsilon_star "$WORK/out")" 'BEGIN { exit !(e > 0 && p > 0 && a > 0) }' ||
        fail "eps* step did not decrease the loss: $(cat "$WORK/out")"
    grep -q "eq. 4.10" "$WORK/err" || fail "summary does not cite eq. 4.10"
    # The same seed gives the same numbers.
    "$NABLA" hessian "$WORK/tiny.st" --data fashion-mnist --batch 64 --top 3 --trace --samples 20 --json \
        >"$WORK/out2" 2>/dev/null || { fail "second run"; return; }
    [[ $(json_array top_eigenvalues "$WORK/out") == "$(json_array top_eigenvalues "$WORK/out2")" &&
        $(json_field trace "$WORK/out") == "$(json_field trace "$WORK/out2")" ]] || fail "not reproducible"
}

cli_hessian_bad_input() {
    printf '[net]\ninput = 4\n[dense]\nout = 2\n' >"$WORK/four.cfg"
    "$NABLA" init "$WORK/four.cfg" --out "$WORK/four.st" >/dev/null || { fail "init"; return; }
    expect_fail "$NABLA" hessian "$WORK/four.st" --data fashion-mnist --batch 8 && expect_err "four.st: the network takes 4 values"
    expect_fail "$NABLA" hessian "$WORK/nowhere.st" --data fashion-mnist && expect_err "nowhere.st"
    printf 'not a model' >"$WORK/junk.st"
    expect_fail "$NABLA" hessian "$WORK/junk.st" --data fashion-mnist && expect_err "junk.st"
    expect_fail "$NABLA" hessian "$WORK/four.st" && expect_err "--data is required"
    expect_fail "$NABLA" hessian "$WORK/four.st" --data fashion-mnist --top 0 && expect_err "--top"
}

# --- nabla fit / predict / convert (classical models) -------------------------

# Two Gaussian blobs in LIBSVM format: label +1 around (1, 1), -1 around (-1, -1).
make_blobs_libsvm() {
    awk -v seed="$2" -v n="$3" 'BEGIN { srand(seed); for (i = 0; i < n; i++) { c = i % 2 ? 1 : -1;
        u = sqrt(-2 * log(1 - rand())) * cos(6.2831853 * rand()); v = sqrt(-2 * log(1 - rand())) * cos(6.2831853 * rand());
        printf "%+d 1:%.4f 2:%.4f\n", c, c + 0.6 * u, c + 0.6 * v } }' >"$1"
}

cli_fit_svm_libsvm_letters() {
    make_blobs_libsvm "$WORK/tr" 1 300
    make_blobs_libsvm "$WORK/te" 2 200
    "$NABLA" fit svm "$WORK/tr" -c 10 -g 0.5 -t 2 --test "$WORK/te" --out "$WORK/svm.st" --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "fit svm: $(cat "$WORK/err")"; return; }
    local acc nsv
    acc=$(json_field test_accuracy "$WORK/out")
    nsv=$(json_field support_vectors "$WORK/out")
    awk -v a="$acc" 'BEGIN { exit !(a > 0.9) }' || fail "svm test accuracy $acc"
    awk -v s="$nsv" 'BEGIN { exit !(s > 0 && s < 300) }' || fail "support vectors: $nsv"
    "$NABLA" predict "$WORK/svm.st" "$WORK/te" --json >"$WORK/out" 2>"$WORK/err" || { fail "predict: $(cat "$WORK/err")"; return; }
    [[ $(json_field accuracy "$WORK/out") == "$acc" ]] || fail "predict accuracy $(json_field accuracy "$WORK/out") != fit's $acc"
    "$NABLA" predict "$WORK/svm.st" "$WORK/te" >"$WORK/pred" 2>"$WORK/err" || { fail "predict (text)"; return; }
    [[ $(wc -l <"$WORK/pred") -eq 200 ]] || fail "predict should print 200 labels"
    grep -q "^Accuracy = " "$WORK/err" || fail "predict does not report the accuracy: $(cat "$WORK/err")"
    "$NABLA" fit svm "$WORK/tr" -t 0 -c 1 -v 5 >"$WORK/out" 2>&1 || { fail "fit svm -v 5: $(cat "$WORK/out")"; return; }
    grep -q "Cross Validation Accuracy = " "$WORK/out" || fail "no CV accuracy: $(cat "$WORK/out")"
    "$NABLA" fit svm "$WORK/tr" -t 1 -d 2 -r 1 -g 0.5 --no-shrinking -m 1 -e 0.01 --json >"$WORK/out" 2>/dev/null ||
        fail "polynomial kernel"
    expect_fail "$NABLA" fit svm "$WORK/tr" -c -1 && expect_err "--C: expected a number > 0, got '-1'"
    expect_fail "$NABLA" fit svm "$WORK/tr" -t 7 && expect_err "--kernel: expected linear, polynomial, rbf, sigmoid, 0, 1, 2 or 3, got '7'"
    expect_fail "$NABLA" fit tree "$WORK/tr" && expect_err "unknown model 'tree'"
}

cli_fit_libsvm_errors() {
    printf '+1 1:0.5 2:1\n-1 3:1 2:0.5\n' >"$WORK/order"
    expect_fail "$NABLA" fit svm "$WORK/order" --out "$WORK/x.st" && expect_err "order:2:8: index 2 after 3"
    printf '+1 1:0.5 2:1\n-1 1:1 2\n' >"$WORK/colon"
    expect_fail "$NABLA" fit svm "$WORK/colon" && expect_err "colon:2:8: expected index:value, got '2' (missing ':')"
    printf '+1 1:0.5\n+1 1:nan\n' >"$WORK/nan"
    expect_fail "$NABLA" fit logreg "$WORK/nan" && expect_err "nan:2:6: value 'nan' is NaN"
    printf '1,2,0\n3,x,1\n' >"$WORK/bad.csv"
    expect_fail "$NABLA" fit logreg "$WORK/bad.csv" && expect_err "bad.csv:2: column 2"
    printf 'a,b,y\n1,2,0\n3,4\n' >"$WORK/short.csv"
    expect_fail "$NABLA" fit logreg "$WORK/short.csv" && expect_err "short.csv:3: column 3 (y): row has 2 columns, the header has 3"
    [[ ! -e $WORK/x.st ]] || fail "a failed fit wrote a model"
}

cli_fit_regression_and_logreg_csv() {
    awk 'BEGIN { srand(3); print "x1,x2,y"; for (i = 0; i < 400; i++) { a = rand() * 4 - 2; b = rand() * 4 - 2;
        printf "%.5f,%.5f,%.5f\n", a, b, 2 * a - b + 0.5 + 0.1 * (rand() - 0.5) } }' >"$WORK/reg.csv"
    "$NABLA" fit linreg "$WORK/reg.csv" --out "$WORK/lin.st" --json >"$WORK/out" 2>/dev/null || { fail "fit linreg"; return; }
    awk -v s="$(json_field sigma2 "$WORK/out")" 'BEGIN { exit !(s > 0.0005 && s < 0.0012) }' ||
        fail "sigma^2 $(json_field sigma2 "$WORK/out") should be near 0.1^2/12"
    for m in gd bayes; do
        "$NABLA" fit linreg "$WORK/reg.csv" --method $m --json >"$WORK/out" 2>/dev/null || fail "linreg --method $m"
        awk -v s="$(json_field train_mse "$WORK/out")" 'BEGIN { exit !(s < 0.002) }' || fail "linreg $m mse"
    done
    printf '1.0,1.0\n' >"$WORK/q.csv"
    "$NABLA" predict "$WORK/lin.st" "$WORK/q.csv" >"$WORK/out" 2>/dev/null || { fail "predict linreg"; return; }
    awk '{ exit !($1 > 1.4 && $1 < 1.6) }' "$WORK/out" || fail "linreg predicts $(cat "$WORK/out") for (1, 1)"
    awk 'BEGIN { srand(4); for (i = 0; i < 600; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + 0.3 * rand(), (c == 1) + 0.3 * rand(), c } }' >"$WORK/cls.csv"
    for s in lbfgs gd; do
        "$NABLA" fit logreg "$WORK/cls.csv" --solver $s --C 100 --max-iter 500 --json >"$WORK/out" 2>/dev/null || { fail "logreg $s"; continue; }
        awk -v a="$(json_field train_accuracy "$WORK/out")" 'BEGIN { exit !(a > 0.97) }' || fail "logreg $s accuracy"
    done
}

cli_fit_factor_and_gmm() {
    awk 'BEGIN { srand(6); for (i = 0; i < 500; i++) { c = i % 2; h = rand() - 0.5;
        printf "%.4f,%.4f,%.4f,%d\n", 4 * c + h, 4 * c + 2 * h + 0.1 * rand(), -h + 0.1 * rand(), c } }' >"$WORK/f.csv"
    "$NABLA" convert "$WORK/f.csv" --to npy --out "$WORK/f.npy" 2>/dev/null || { fail "convert csv to npy"; return; }
    for m in pca ppca fa; do
        "$NABLA" fit $m "$WORK/f.npy" --k 1 --out "$WORK/$m.st" --json >"$WORK/out" 2>"$WORK/err" || { fail "fit $m: $(cat "$WORK/err")"; continue; }
        grep -q '"train_loglik"' "$WORK/out" || fail "$m: no log-likelihood"
        "$NABLA" predict "$WORK/$m.st" "$WORK/f.csv" >"$WORK/pred" 2>/dev/null || fail "predict $m"
        [[ $(wc -l <"$WORK/pred") -eq 500 ]] || fail "$m: 500 latent rows expected"
    done
    awk -v r="$(json_field explained_variance_ratio "$WORK/out")" 'BEGIN { exit !(r > 0.9) }' || true
    "$NABLA" fit gmm "$WORK/f.csv" --k 2 --covariance diag --out "$WORK/g.st" --json >"$WORK/out" 2>/dev/null || { fail "fit gmm"; return; }
    grep -q '"bic"' "$WORK/out" || fail "gmm: no BIC"
    "$NABLA" predict "$WORK/g.st" "$WORK/f.csv" >"$WORK/pred" 2>/dev/null || { fail "predict gmm"; return; }
    # The two clusters are far apart: every row of a class gets the same component.
    paste -d, "$WORK/pred" <(cut -d, -f4 "$WORK/f.csv") | sort -u | wc -l | grep -qx 2 || fail "gmm mixes the clusters"
    "$NABLA" fit gmm "$WORK/f.csv" --unlabeled --k 2 --json >/dev/null 2>&1 || fail "gmm --unlabeled"
    expect_fail "$NABLA" fit gmm "$WORK/f.csv" --covariance tied && expect_err "expected full or diag"
    # --reg-covar 0 was taken and the default 1e-6 added in silence (the library's 0 is "the default")
    expect_fail "$NABLA" fit gmm "$WORK/f.csv" --k 2 --reg-covar 0 && expect_err "--reg-covar: expected a number > 0, got '0'"
}

# eval --all weights each split's means by its examples: a file's every row
# scores as the test split (its last tenth) of ten copies of it; without
# --adversarial no FGSM figure is printed.
cli_eval_all_weights_splits() {
    awk 'BEGIN { srand(3); for (i = 0; i < 300; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + rand(), rand() - c, c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    "$NABLA" train "$WORK/d.cfg" --data "$WORK/d.csv" --epochs 1 --out "$WORK/e.st" >/dev/null 2>&1 || { fail "train"; return; }
    head -20 "$WORK/d.csv" >"$WORK/f.csv"
    local i
    for ((i = 0; i < 10; i++)); do cat "$WORK/f.csv"; done >"$WORK/f10.csv"
    "$NABLA" eval "$WORK/e.st" --data "$WORK/f.csv" --all --json >"$WORK/a" 2>/dev/null &&
        "$NABLA" eval "$WORK/e.st" --data "$WORK/f10.csv" --json >"$WORK/b" 2>/dev/null || { fail "eval"; return; }
    local f
    for f in examples test_accuracy test_loss; do
        within "$(json_field $f "$WORK/a")" "$(json_field $f "$WORK/b")" 1e-5 ||
            fail "$f: --all $(json_field $f "$WORK/a"), the last tenth of ten copies $(json_field $f "$WORK/b")"
    done
    grep -q adversarial "$WORK/a" && fail "an FGSM figure without --adversarial: $(cat "$WORK/a")"
    "$NABLA" eval "$WORK/e.st" --data "$WORK/f.csv" >"$WORK/out" 2>/dev/null
    grep -q FGSM "$WORK/out" && fail "an FGSM figure without --adversarial: $(cat "$WORK/out")"
}

# convert keeps every row without --train, and --pca may keep as many
# components as there are features.
cli_convert_all_rows_and_full_pca() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n' >"$WORK/d.csv"
    "$NABLA" convert "$WORK/d.csv" --to csv --out "$WORK/a.csv" 2>/dev/null || fail "convert"
    [[ $(wc -l <"$WORK/a.csv") == 5 ]] || fail "header and 4 rows expected: $(cat "$WORK/a.csv")"
    "$NABLA" convert "$WORK/d.csv" --to csv --pca 2 --out "$WORK/p.csv" 2>"$WORK/err" || fail "--pca 2 of 2 features: $(cat "$WORK/err")"
    grep -q "2 components keep 100.0% of the variance" "$WORK/err" || fail "--pca 2: $(cat "$WORK/err")"
    expect_fail "$NABLA" convert "$WORK/d.csv" --to csv --pca 3 --out "$WORK/q.csv" &&
        expect_err "--pca: expected at most the 2 features of $WORK/d.csv, got 3"
}

cli_fit_convert_fashion() {
    [[ -e $FASHION/t10k-labels-idx1-ubyte.gz ]] || return 0
    "$NABLA" convert fashion-mnist --to libsvm --pca 8 --train 400 --test 300 --out "$WORK/fm" 2>"$WORK/err" ||
        { fail "convert: $(cat "$WORK/err")"; return; }
    [[ $(wc -l <"$WORK/fm") -eq 400 && $(wc -l <"$WORK/fm.t") -eq 300 ]] || fail "convert wrote the wrong row counts"
    grep -q "8 components" "$WORK/err" || fail "convert does not report the PCA"
    "$NABLA" convert --help | grep -q "FILE.t" || fail "convert --help does not mention FILE.t"
    "$NABLA" fit svm "$WORK/fm" -c 10 --out "$WORK/fm.st" >/dev/null 2>&1 || { fail "fit svm on converted data"; return; }
    "$NABLA" predict "$WORK/fm.st" "$WORK/fm.t" --json >"$WORK/out" 2>/dev/null || { fail "predict on fm.t"; return; }
    awk -v a="$(json_field accuracy "$WORK/out")" 'BEGIN { exit !(a > 0.6) }' || fail "fashion svm accuracy $(json_field accuracy "$WORK/out")"
    "$NABLA" convert fashion-mnist --to csv --train 50 --test 20 --out "$WORK/fm.csv" 2>/dev/null || fail "convert csv"
    [[ $(wc -l <"$WORK/fm.csv") -eq 51 ]] || fail "csv: header + 50 rows expected"
    expect_fail "$NABLA" convert fashion-mnist --to arff --out "$WORK/x" && expect_err "expected libsvm, csv or npy"
}

# nabla fit's flags: -h is help (LIBSVM's shrinking is --[no-]shrinking), the
# defaults that depend on the model are shown, LIBSVM's letters still work,
# and a value out of range is named with its option.
cli_fit_flags_help_and_letters() {
    "$NABLA" fit -h >"$WORK/out" 2>"$WORK/err"
    (($? == 0)) || fail "fit -h should exit 0: $(cat "$WORK/err")"
    grep -q "^usage: nabla fit" "$WORK/out" || fail "fit -h prints no usage"
    grep -q -- "--\[no-\]shrinking" "$WORK/out" || fail "fit -h lacks --[no-]shrinking"
    grep -q -- "-c, --C" "$WORK/out" || fail "fit -h lacks the letter -c"
    for f in --lr --max-iter --tol --k; do
        grep -A1 -- "^  $f " "$WORK/out" | tr '\n' ' ' | grep -q "default" || fail "fit -h: $f shows no default"
    done
    "$NABLA" fit svm x.txt -h >/dev/null 2>&1 || fail "fit MODEL DATA -h should be help, not an error"
    make_blobs_libsvm "$WORK/tr" 3 200
    "$NABLA" fit svm "$WORK/tr" -c 10 -g 0.02 --out "$WORK/s.st" >"$WORK/out" 2>"$WORK/err" ||
        { fail "fit svm -c 10 -g 0.02: $(cat "$WORK/err")"; return; }
    grep -q "gamma 0.02" "$WORK/out" || fail "-g 0.02 not applied: $(cat "$WORK/out")"
    "$NABLA" fit svm "$WORK/tr" --C 10 --no-shrinking --json >/dev/null 2>&1 || fail "--no-shrinking"
    "$NABLA" fit svm "$WORK/tr" -g -1 >/dev/null 2>"$WORK/err"
    (($? == 2)) || fail "a range error should exit 2"
    grep -q -- "--gamma: expected a number >= 0, got '-1'" "$WORK/err" || fail "range error: $(cat "$WORK/err")"
    expect_fail "$NABLA" fit svm "$WORK/tr" -v 1 && expect_err "--folds: expected an integer in \[2, "
    expect_fail "$NABLA" fit gmm "$WORK/tr" --k 0 && expect_err "--k: expected an integer in \[1, 1000000\], got '0'"
    expect_fail "$NABLA" fit pca "$WORK/tr" --k 5 && expect_err "--k 5: expected at most the 2 features"
    expect_fail "$NABLA" fit logreg "$WORK/tr" -v 3 && expect_err "--folds (-v) 3: cross-validation is for svm"
    expect_fail "$NABLA" fit svm "$WORK/tr" --out "$WORK/s.txt" && expect_err "--out '$WORK/s.txt': expected a file name ending in .safetensors or .st"
    # predict --out: a text file of predictions, its folder checked first.
    "$NABLA" predict "$WORK/s.st" "$WORK/tr" --out "$WORK/pred.txt" 2>/dev/null || { fail "predict --out"; return; }
    [[ $(wc -l <"$WORK/pred.txt") -eq 200 ]] || fail "predict --out should write 200 lines"
    expect_fail "$NABLA" predict "$WORK/s.st" "$WORK/tr" --out "$WORK/no/such/p.txt" && expect_err "does not exist"
    "$NABLA" predict "$WORK/s.st" -h | grep -q "MODEL from .nabla fit." || fail "predict FITMODEL -h: fit's predict help"
}

# Data files are recognized by content: what convert writes (FILE and
# FILE.t, whatever their names) every command that takes data reads.
cli_data_recognized_by_content() {
    [[ -e $FASHION/t10k-labels-idx1-ubyte.gz ]] || return 0
    local to
    for to in csv libsvm npy; do
        "$NABLA" convert fashion-mnist --to $to --train 300 --test 100 --out "$WORK/fm.$to" 2>"$WORK/err" ||
            { fail "convert --to $to: $(cat "$WORK/err")"; continue; }
        "$NABLA" train "$ROOT/examples/mlp.cfg" --data "$WORK/fm.$to" --steps 2 --out "$WORK/m.st" >/dev/null 2>"$WORK/err" ||
            { fail "train on fm.$to: $(tail -2 "$WORK/err")"; continue; }
        "$NABLA" eval "$WORK/m.st" --data "$WORK/fm.$to.t" --json >"$WORK/out" 2>"$WORK/err" ||
            { fail "eval on fm.$to.t: $(cat "$WORK/err")"; continue; }
        grep -q '"examples": 10,' "$WORK/out" || fail "eval on fm.$to.t: the last 10% of 100 rows: $(cat "$WORK/out")"
        "$NABLA" fit logreg "$WORK/fm.$to" --test "$WORK/fm.$to.t" --max-iter 5 >/dev/null 2>"$WORK/err" ||
            fail "fit on fm.$to with --test fm.$to.t: $(cat "$WORK/err")"
    done
    # The name does not matter; a folder of IDX files works for fit too.
    cp "$WORK/fm.csv.t" "$WORK/renamed.dat"
    "$NABLA" eval "$WORK/m.st" --data "$WORK/renamed.dat" >/dev/null 2>"$WORK/err" || fail "eval on renamed CSV: $(cat "$WORK/err")"
    mkdir -p "$WORK/idxfolder"
    cp "$FASHION"/t10k-* "$WORK/idxfolder/"
    for f in images-idx3 labels-idx1; do cp "$FASHION/t10k-$f-ubyte.gz" "$WORK/idxfolder/train-$f-ubyte.gz"; done
    "$NABLA" fit pca "$WORK/idxfolder" --k 2 --json >"$WORK/out" 2>"$WORK/err" || fail "fit on an IDX folder: $(cat "$WORK/err")"
    grep -q '"test_loglik"' "$WORK/out" || fail "fit on a folder scores its test split: $(cat "$WORK/out")"
    expect_fail "$NABLA" eval "$WORK/m.st" --data "$FASHION/t10k-labels-idx1-ubyte.gz" && expect_err "an IDX file holds images or labels, not both"
}

# A file of the wrong kind is named as such, not reported as a broken file of
# the expected kind.
cli_wrong_kind_of_file() {
    printf 'notes about a run\nnothing more\n' >"$WORK/notes.st"
    expect_fail "$NABLA" eval "$WORK/notes.st" --data fashion-mnist && expect_err "notes.st: not a nabla model file: it looks like text"
    expect_fail "$NABLA" predict "$WORK/notes.st" "$WORK/x.png" && expect_err "notes.st: not a nabla model file: it looks like text"
    make_blobs_libsvm "$WORK/tr" 4 60
    "$NABLA" fit svm "$WORK/tr" --out "$WORK/svm.st" >/dev/null 2>&1 || { fail "fit svm"; return; }
    expect_fail "$NABLA" eval "$WORK/svm.st" --data fashion-mnist && expect_err "svm.st: not a network model: it holds a svm model (nabla fit)"
    printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' >"$WORK/pic.png"
    expect_fail "$NABLA" predict "$WORK/svm.st" "$WORK/pic.png" && expect_err "pic.png: not a data file: it looks like a PNG image"
    expect_fail "$NABLA" fit svm "$WORK/pic.png" && expect_err "pic.png: not a data file: it looks like a PNG image"
    expect_fail "$NABLA" train "$ROOT/examples/mlp.cfg" --data "$WORK/svm.st" && expect_err "svm.st: not a data file: it looks like a model from nabla fit"
    : >"$WORK/empty.csv"
    expect_fail "$NABLA" fit svm "$WORK/empty.csv" && expect_err "empty.csv"
    printf 'hello there\n' >"$WORK/hello.txt"
    expect_fail "$NABLA" fit logreg "$WORK/hello.txt" && expect_err "hello.txt: not a data file: it looks like text"
    # A truncated model is still a model, and its defect is reported as before.
    head -c 100 "$WORK/svm.st" >"$WORK/cut.st"
    expect_fail "$NABLA" eval "$WORK/cut.st" --data fashion-mnist && expect_err "cut.st: header length"
}

# nabla plot takes training logs: a model file or a data set's CSV is named.
cli_plot_names_what_is_not_a_log() {
    make_blobs_libsvm "$WORK/tr" 5 40
    "$NABLA" fit svm "$WORK/tr" --out "$WORK/svm.st" >/dev/null 2>&1 || { fail "fit svm"; return; }
    "$NABLA" init "$ROOT/examples/mlp.cfg" --out "$WORK/net.st" >/dev/null 2>&1 || { fail "init"; return; }
    expect_fail "$NABLA" plot "$WORK/net.st" --out "$WORK/p.png" && expect_err "net.st: not a training log: it looks like a nabla model file"
    expect_fail "$NABLA" plot "$WORK/tr" --out "$WORK/p.png" && expect_err "tr: not a training log: it looks like LIBSVM text"
    printf 'f1,f2,label\n0.5,1,3\n0.25,0,1\n' >"$WORK/data.csv"
    expect_fail "$NABLA" plot "$WORK/data.csv" --out "$WORK/p.png" && expect_err "data.csv: not a training log: its columns (f1, f2, label)"
    [[ ! -e $WORK/p.png ]] || fail "plot drew something that is not a log"
    # a diverged run's log is drawn, with a word about the values left out; a gap (NaN) is not one
    printf 'step,loss,val_loss\n1,0.5,\n2,inf,0.4\n3,nan,\n' >"$WORK/div.csv"
    "$NABLA" plot "$WORK/div.csv" --out "$WORK/div.png" >/dev/null 2>"$WORK/err" || fail "plot of a diverged log failed"
    grep -q "column 'loss' holds 1 infinite value (first at step = 2" "$WORK/err" || fail "no word on inf: $(cat "$WORK/err")"
    grep -q "val_loss" "$WORK/err" && fail "a column with gaps was warned about: $(cat "$WORK/err")"
}

# --- nabla dqn ------------------------------------------------------------------

# A short run on Catch learns from pixels; the model, the log, eval and play.
cli_dqn_train_eval_play() {
    "$NABLA" dqn train catch --steps 3000 --epsilon-steps 1500 --episodes 50 --out "$WORK/catch.st" \
        --log "$WORK/catch.csv" --json >"$WORK/out" 2>"$WORK/err" || { fail "dqn train failed: $(tail -3 "$WORK/err")"; return; }
    local caught
    caught=$(json_field caught_fraction "$WORK/out")
    awk -v c="$caught" 'BEGIN { exit !(c >= 0.7) }' || fail "caught fraction after 3000 steps is $caught"
    for f in steps train_episodes mean_return random_mean_return seconds steps_per_second; do
        grep -q "\"$f\"" "$WORK/out" || fail "JSON lacks $f"
    done
    [[ $(wc -l <"$WORK/out") -eq 1 ]] || fail "stdout should hold only the JSON line"
    grep -q "mean100" "$WORK/err" || fail "no progress line on stderr"
    head -1 "$WORK/catch.csv" | grep -q "^step,episode,return,mean100,epsilon" || fail "log header: $(head -1 "$WORK/catch.csv")"
    (($(wc -l <"$WORK/catch.csv") > 300)) || fail "log should have a row per episode (3000 steps / 9)"
    "$NABLA" plot "$WORK/catch.csv" --out "$WORK/catch.png" >/dev/null 2>"$WORK/err" || fail "plot failed: $(cat "$WORK/err")"
    "$NABLA" dqn eval "$WORK/catch.st" --episodes 50 --json >"$WORK/ev" 2>"$WORK/err" || { fail "dqn eval failed: $(cat "$WORK/err")"; return; }
    [[ $(json_field caught_fraction "$WORK/ev") == "$caught" ]] || fail "eval disagrees with train's evaluation"
    grep -q "random" "$WORK/err" || fail "eval does not report the random policy"
    "$NABLA" dqn play "$WORK/catch.st" --seed 3 >"$WORK/play" 2>"$WORK/err" || { fail "dqn play failed: $(cat "$WORK/err")"; return; }
    grep -q -E "caught|missed" "$WORK/play" || fail "play did not show the end of the episode"
    (($(grep -c "^|" "$WORK/play") >= 90)) || fail "play should draw 10 frames of 10 rows"
}

# CartPole and 2048 run end to end; 2048 reports the highest tiles.
cli_dqn_cartpole_2048_short() {
    "$NABLA" dqn train cartpole --steps 1500 --episodes 10 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "cartpole train failed: $(tail -3 "$WORK/err")"; return; }
    grep -q '"full_episodes_fraction"' "$WORK/out" || fail "cartpole JSON lacks full_episodes_fraction"
    "$NABLA" dqn train 2048 --steps 1500 --learn-start 500 --episodes 10 --out "$WORK/g.st" --json >"$WORK/out" \
        2>"$WORK/err" || { fail "2048 train failed: $(tail -3 "$WORK/err")"; return; }
    grep -q '"highest_tile": {' "$WORK/out" || fail "2048 JSON lacks the highest-tile distribution"
    grep -q "highest tile" "$WORK/err" || fail "2048 report lacks the highest-tile table"
    "$NABLA" dqn play "$WORK/g.st" >"$WORK/play" 2>/dev/null || fail "2048 play failed"
    grep -q "game over" "$WORK/play" || fail "2048 play did not reach the end of the game"
}

# The same seed gives the same run.
cli_dqn_deterministic() {
    "$NABLA" dqn train catch --steps 1200 --seed 5 --episodes 20 --json >"$WORK/a" 2>/dev/null || { fail "run a"; return; }
    "$NABLA" dqn train catch --steps 1200 --seed 5 --episodes 20 --json >"$WORK/b" 2>/dev/null || { fail "run b"; return; }
    local a b
    a=$(json_field train_mean100 "$WORK/a")
    b=$(json_field train_mean100 "$WORK/b")
    [[ -n $a && $a == "$b" && $(json_field mean_return "$WORK/a") == $(json_field mean_return "$WORK/b") ]] ||
        fail "same seed, different runs: $a vs $b"
}

# A checkpoint of dqn train holds the whole learner: a run stopped at its fifth
# checkpoint (the rename of the model file after it fails) and resumed writes
# the same model and log, byte for byte, as the run never stopped; CartPole
# with model selection (the best weights travel too) and 2048 (byte replay).
cli_dqn_resume_equals_uninterrupted() {
    local g
    for g in "catch --steps 1500" "cartpole --steps 1500 --select-every 500 --select-episodes 3 --learn-start 300" \
        "2048 --steps 1000 --learn-start 300"; do
        rm -f "$WORK"/ra.* "$WORK"/rb.*
        # shellcheck disable=SC2086
        "$NABLA" dqn train $g --seed 2 --episodes 0 --out "$WORK/ra.st" --log "$WORK/ra.csv" 2>/dev/null ||
            { fail "$g: uninterrupted run"; continue; }
        # shellcheck disable=SC2086
        NABLA_FAULT=rename:9 "$NABLA" dqn train $g --seed 2 --episodes 0 --out "$WORK/rb.st" --log "$WORK/rb.csv" \
            >/dev/null 2>&1 && { fail "$g: the injected fault did not stop the run"; continue; }
        "$NABLA" dqn train --resume "$WORK/rb.st" --log "$WORK/rb.csv" --episodes 0 2>"$WORK/err" ||
            { fail "$g: resume: $(tail -2 "$WORK/err")"; continue; }
        grep -q "resuming .* at step" "$WORK/err" || fail "$g: no 'resuming' line"
        cmp -s "$WORK/ra.st" "$WORK/rb.st" || fail "$g: the resumed run's model differs from the uninterrupted one's"
        cmp -s "$WORK/ra.csv" "$WORK/rb.csv" || fail "$g: the resumed run's log differs"
    done
    # SIGINT writes a checkpoint, and the command it prints resumes to the
    # uninterrupted run's model, byte for byte.
    signal_resume INT train_mean100 dqn train catch --steps 12000 --episodes 0 --seed 3
    cmp -s "$WORK/sa.st" "$WORK/sb.st" || fail "SIGINT: the resumed model differs from the uninterrupted one"
    "$NABLA" dqn eval "$WORK/sb.st" --episodes 5 >/dev/null 2>&1 || fail "a checkpoint must stay a model dqn eval reads"
}

# dqn train --resume keeps the log row of the checkpoint's own step: Catch's
# episodes last 9 steps, so one ends at each checkpoint (every 90 of 900 steps).
cli_dqn_resume_keeps_the_row_of_its_step() {
    local g=(catch --steps 900 --seed 2 --episodes 0)
    "$NABLA" dqn train "${g[@]}" --out "$WORK/a.st" --log "$WORK/a.csv" 2>/dev/null || { fail "uninterrupted run"; return; }
    grep -q "^90," "$WORK/a.csv" || { fail "no row at step 90: $(head -12 "$WORK/a.csv")"; return; }
    NABLA_FAULT=rename:4 "$NABLA" dqn train "${g[@]}" --out "$WORK/b.st" --log "$WORK/b.csv" >/dev/null 2>&1 &&
        { fail "the injected fault did not stop the run"; return; }
    "$NABLA" dqn train --resume "$WORK/b.st" --log "$WORK/b.csv" --episodes 0 2>"$WORK/err" ||
        { fail "resume: $(tail -2 "$WORK/err")"; return; }
    grep -q "resuming .* at step 90 " "$WORK/err" || fail "not resumed at step 90: $(grep resuming "$WORK/err")"
    cmp -s "$WORK/a.csv" "$WORK/b.csv" || fail "the resumed log differs: $(diff "$WORK/a.csv" "$WORK/b.csv" | head -4)"
}

cli_dqn_resume_errors() {
    "$NABLA" dqn train catch --steps 300 --episodes 0 --out "$WORK/done.st" 2>/dev/null || { fail "tiny run"; return; }
    expect_fail "$NABLA" dqn train --resume "$WORK/done.st" && expect_err "holds no training state"
    "$NABLA" dqn train --resume "$WORK/done.st" --lr 0.1 >/dev/null 2>&1
    (($? == 2)) || fail "--resume with --lr should be a usage error"
    expect_fail "$NABLA" dqn train --resume "$WORK/done.st" --gamma 0.5 && expect_err "keeps the settings it began with"
    NABLA_FAULT=rename:2 "$NABLA" dqn train catch --steps 1000 --episodes 0 --out "$WORK/mid.st" >/dev/null 2>&1
    expect_fail "$NABLA" dqn train cartpole --resume "$WORK/mid.st" && expect_err "trains catch, not cartpole"
    # --resume with a --log not this run's is refused naming the file, the
    # log and the checkpoint left as they were: dqn had its own copy of the
    # log code, which kept a damaged row (strtoll read 'abc' as step 0) and
    # the rows after a NUL byte, and wrote them back as this run's.
    local h="step,episode,return,mean100,epsilon,td_error" f
    printf 'epoch,train_loss\n1,0.5\n' >"$WORK/other.csv"
    printf '%s\n10,1,1,1,1,1\nabc,1,1,1,1,1\n' "$h" >"$WORK/bad.csv"
    printf '%s\n10,1,1,1,1,1\n\0002,1,1,1,1,1\n' "$h" >"$WORK/nul.csv"
    for f in other bad nul; do
        cp "$WORK/$f.csv" "$WORK/$f.keep"
        cp "$WORK/mid.st" "$WORK/lg.st"
        if expect_fail "$NABLA" dqn train --resume "$WORK/lg.st" --log "$WORK/$f.csv"; then
            case $f in
            other) expect_err "other.csv: not this run's log: its first line is 'epoch,train_loss', expected '$h'" ;;
            bad) expect_err "bad.csv: line 3: expected a row starting with the integer step, found 'abc,1,1,1,1,1'" ;;
            nul) expect_err "nul.csv: a NUL byte at offset 58" ;;
            esac
        fi
        cmp -s "$WORK/$f.csv" "$WORK/$f.keep" || fail "dqn --resume rewrote the refused log $f.csv"
        cmp -s "$WORK/lg.st" "$WORK/mid.st" || fail "dqn --resume with the log $f.csv rewrote the checkpoint"
    done
    # a stored count that no int64_t holds was cast all the same (undefined behaviour; -2^63 on x86)
    if command -v python3 >/dev/null; then
        set_meta "$WORK/mid.st" "$WORK/big.st" nabla.dqn.buffer=1e300 || { fail "rewriting the checkpoint"; return; }
        expect_fail "$NABLA" dqn train --resume "$WORK/big.st" &&
            expect_err "big.st: 'nabla.dqn.buffer' in __metadata__: 1e+300 is not a count"
        # a stored setting out of range was refused without naming the file
        set_meta "$WORK/mid.st" "$WORK/g.st" nabla.dqn.gamma=1.99 || { fail "rewriting the checkpoint"; return; }
        expect_fail "$NABLA" dqn train --resume "$WORK/g.st" && expect_err "g.st: dqn: gamma must be in \\[0, 1\\], got 1.99"
        # a damaged episode return (strtod reads nan and inf) was taken, and
        # mean100 was nan for the next 100 episodes
        local bad="1 2 nan$(printf ' 0%.0s' {1..97})"
        set_meta "$WORK/mid.st" "$WORK/nan.st" nabla.dqn.last100="$bad" || { fail "rewriting the checkpoint"; return; }
        expect_fail "$NABLA" dqn train --resume "$WORK/nan.st" &&
            expect_err "nan.st: 'nabla.dqn.last100' value 3 is 'nan', expected a finite episode return"
        set_meta "$WORK/mid.st" "$WORK/inf.st" nabla.dqn.last100="${bad/nan/-inf}" || { fail "rewriting the checkpoint"; return; }
        expect_fail "$NABLA" dqn train --resume "$WORK/inf.st" && expect_err "inf.st: 'nabla.dqn.last100' value 3 is '-inf'"
    fi
    expect_fail "$NABLA" dqn train --resume "$WORK/missing.st" && expect_err "missing.st"
    "$NABLA" dqn train >/dev/null 2>&1
    (($? == 2)) || fail "dqn train without a game should exit 2"
}

cli_dqn_errors() {
    expect_fail "$NABLA" dqn train pong && expect_err "unknown environment 'pong'"
    expect_fail "$NABLA" dqn train cartpole --gamma 2 && expect_err "gamma"
    expect_fail "$NABLA" dqn train cartpole --loss l1 && expect_err "expected squared or huber, got .l1."
    expect_fail "$NABLA" dqn train cartpole --steps x && expect_err "expected an integer"
    printf '[net]\ninput = 4\n[dense]\nout = 3\n' >"$WORK/three.cfg"
    expect_fail "$NABLA" dqn train cartpole --net "$WORK/three.cfg" && expect_err "2 actions"
    expect_fail "$NABLA" dqn frobnicate && expect_err "unknown verb .frobnicate."
    "$NABLA" dqn >/dev/null 2>&1
    (($? == 2)) || fail "dqn without a subcommand should exit 2"
    printf 'not a model' >"$WORK/junk.st"
    expect_fail "$NABLA" dqn eval "$WORK/junk.st" && expect_err "junk.st"
    expect_fail "$NABLA" dqn play "$WORK/junk.st" && expect_err "junk.st"
    expect_fail "$NABLA" dqn eval "$WORK/missing.st" && expect_err "missing.st"
    "$NABLA" init "$ROOT/examples/mlp.cfg" --out "$WORK/mlp.st" >/dev/null || { fail "init"; return; }
    expect_fail "$NABLA" dqn eval "$WORK/mlp.st" && expect_err "not a DQN model"
    "$NABLA" dqn train catch --steps 10 --episodes 0 --out "$WORK/c.st" 2>/dev/null || { fail "tiny train"; return; }
    head -c 300 "$WORK/c.st" >"$WORK/trunc.st"
    expect_fail "$NABLA" dqn eval "$WORK/trunc.st" && expect_err "trunc.st"
    expect_fail "$NABLA" dqn eval "$WORK/c.st" --episodes 0 && expect_err "episodes"
    expect_fail "$NABLA" dqn eval "$WORK/c.st" --seed 4611686018427387850 --episodes 100 && expect_err "below 2^62"
    # A run too short to learn says so instead of reporting an untrained network's scores.
    "$NABLA" dqn train 2048 --steps 300 --episodes 5 >/dev/null 2>"$WORK/err" || fail "short 2048 run failed"
    grep -q "warning: no learning update happened: the first comes after --learn-start" "$WORK/err" ||
        fail "no warning for a run without updates: $(tail -2 "$WORK/err")"
    expect_fail "$NABLA" dqn train cartpole --double on && expect_err "unexpected argument 'on'"
}

# A DQN's model file holds a network, and eval, hessian and predict loaded it
# as a classifier: on data of its input size (catch: 50 values) eval scored
# "accuracy" from Q-values; train --resume called it no training checkpoint
# without saying what it is.
cli_dqn_model_is_no_classifier() {
    "$NABLA" dqn train catch --steps 10 --episodes 0 --out "$WORK/c.st" >/dev/null 2>&1 || { fail "tiny train"; return; }
    awk 'BEGIN { srand(2); for (i = 0; i < 40; i++) { for (j = 0; j < 50; j++) printf "%d,", rand() < 0.1; print i % 3 } }' \
        >"$WORK/g.csv"
    local c
    for c in "eval $WORK/c.st --data $WORK/g.csv" "hessian $WORK/c.st --data $WORK/g.csv --batch 8 --top 1" \
        "predict $WORK/c.st $WORK/g.csv" "train --resume $WORK/c.st --data $WORK/g.csv"; do
        expect_fail "$NABLA" $c && expect_err "c.st: not a .*: it holds a DQN model (nabla dqn train)"
    done
    expect_err "nabla dqn train --resume"
}

# --- issue 15: charrnn, hessian, stats, linalg, convert on the one flag machinery ----

# -h, --help and `nabla help CMD [VERB]` print the help on stdout and exit 0; every --threads shows its default.
# nabla predict --help (a network's) shows the fitted models' form with its
# --out, which writes their predictions (it showed only --json).
cli_predict_help_names_fit_out() {
    "$NABLA" predict --help >"$WORK/h" 2>&1 || fail "predict --help exited $?"
    grep -q -- "nabla predict MODEL DATA \[--out FILE\] \[--json\]" "$WORK/h" || fail "predict --help: $(grep 'MODEL DATA' "$WORK/h")"
}

# Each option's help states its default once: a description that says
# "(default: ...)" itself, beside the "(default ...)" the flag table adds,
# said it twice (chat MODEL --responses did).
cli_help_says_each_default_once() {
    local cmds=(train eval predict init plot "dqn train" "dqn eval" "dqn play" "fit svm" convert stats hessian
        "chat train" "chat eval" "chat corpus" "chat MODEL.st" style filter convolve "charrnn train" "charrnn sample"
        "charrnn eval" "linalg eig")
    local v c
    for v in train generate eval spectrogram synth distance features; do cmds+=("wavenet $v"); done
    for c in "${cmds[@]}"; do
        "$NABLA" $c --help >"$WORK/h" 2>"$WORK/err" || { fail "nabla $c --help exited $?"; continue; }
        awk '/^  -/ { if (o != "") print o; o = $0; next } /^      / && o != "" { o = o " " $0; next }
             { if (o != "") print o; o = "" } END { if (o != "") print o }' "$WORK/h" |
            awk '{ n = gsub(/\(default/, "&") } n > 1' >"$WORK/dup"
        [[ -s $WORK/dup ]] && fail "nabla $c --help gives a default twice: $(head -1 "$WORK/dup" | tr -s ' ')"
    done
}

# Each verb of wavenet (and style) says what it does before its options
# (wavenet generate listed its options alone: what --cond, --like and
# --seconds do together was nowhere but in the README).
# Every command and every verb of one (read off `nabla --help` and the verb
# lists) says what it does before its options: eval, init and wavenet
# generate said nothing.
cli_help_every_verb_says_what_it_does() {
    local cmds=() v c
    for c in $("$NABLA" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }'); do
        if "$NABLA" $c --help 2>&1 | grep -q '^verbs:'; then
            for v in $("$NABLA" $c --help | awk '/^verbs:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do cmds+=("$c $v"); done
        else
            cmds+=("$c")
        fi
    done
    ((${#cmds[@]} > 30)) || fail "only ${#cmds[@]} commands and verbs found: ${cmds[*]}"
    for c in "${cmds[@]}"; do
        "$NABLA" $c --help >"$WORK/h" 2>&1 || { fail "nabla $c --help exited $?"; continue; }
        awk 'NR == 2 && $0 != "" { exit 1 } NR == 3 { exit ($0 == "" || /^options:/) }' "$WORK/h" ||
            fail "nabla $c --help: no paragraph on what it does before the options"
    done
    "$NABLA" wavenet generate --help | tr -s ' \n' ' ' | grep -q -- "--like WAV (the log-mel of a recording" ||
        fail "wavenet generate --help does not say what --like conditions on"
}

cli_help_charrnn_hessian_stats_linalg_convert() {
    local cmds=("charrnn train" "charrnn sample" "charrnn eval" hessian stats convert "chat train" "chat eval" "chat corpus")
    local v
    for v in eig svd pinv rank det cond norms definite solve lstsq; do cmds+=("linalg $v"); done
    local c
    for c in "${cmds[@]}"; do
        "$NABLA" $c -h >"$WORK/h1" 2>"$WORK/err" || fail "nabla $c -h exited $?"
        "$NABLA" help $c >"$WORK/h2" 2>"$WORK/err" || fail "nabla help $c exited $?"
        head -1 "$WORK/h1" | grep -q "^usage: nabla $c " || fail "nabla $c -h: $(head -1 "$WORK/h1")"
        head -1 "$WORK/h1" | grep -q "[^ ]\[options\]" && fail "nabla $c -h: no space before [options]"
        cmp -s "$WORK/h1" "$WORK/h2" || fail "nabla help $c differs from nabla $c -h"
        if grep -q -- "--threads" "$WORK/h1"; then
            tr -s ' \n' ' ' <"$WORK/h1" | grep -q -- "--threads N threads; 0: NABLA_THREADS if set, else [^;]*;.*(default" ||
                fail "nabla $c -h: --threads without its default"
        fi
    done
    "$NABLA" charrnn sample --help | tr -s ' \n' ' ' | grep -q "else 1: one character at a time is too small to share" ||
        fail "charrnn sample --help does not say it defaults to 1 thread"
    "$NABLA" charrnn train --help | grep -q -- "--grad-clip X .*(default 5)" || fail "charrnn train --help lacks --grad-clip"
    "$NABLA" convert --help | grep -q -- "--pca K " || fail "convert --help should name --pca's value K"
    # The verbs' lists: linalg lists rank, and every verb it lists exists.
    "$NABLA" linalg --help >"$WORK/h1" || fail "linalg --help exited $?"
    for v in $(awk '/^verbs:/ { on = 1; next } on && NF { print $1 }' "$WORK/h1"); do
        "$NABLA" linalg "$v" --help >/dev/null 2>&1 || fail "linalg --help lists '$v', which has no help"
    done
    grep -q "^  rank " "$WORK/h1" || fail "linalg --help does not list rank"
    "$NABLA" charrnn --help | grep -q "^  sample " || fail "charrnn --help does not list sample"
    "$NABLA" charrnn >/dev/null 2>&1
    (($? == 2)) || fail "charrnn without a verb should exit 2"
}

# The forms of an option: --flag=value reads as --flag value, and each form
# below is a usage error (exit 2) that names the option, nothing written:
# a value missing at the end of the line (a long or a one-letter option), a
# switch given a value, --no- before an option that is not a switch, a
# choice's prefix ('rb' of rbf), a count past a long, NaN and a negative
# number too large for single precision to an option of no range, a typo two
# edits away (a hint), `train`'s NET.cfg, --resume and --init, and the
# --out that init, convert and wavenet train require, wavenet generate's
# --cond or --like.
# A flag given twice: the last counts (scripts keep common flags in an
# array and override one), but not in silence: `--out a.st ... --out b.st`
# wrote b.st alone and said nothing of a.st.
cli_flag_given_twice_warns() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n' >"$WORK/d.csv"
    "$NABLA" convert "$WORK/d.csv" --to csv --out "$WORK/a.csv" --out "$WORK/b.csv" >/dev/null 2>"$WORK/err" ||
        { fail "convert with --out twice: $(cat "$WORK/err")"; return; }
    [[ -e $WORK/b.csv && ! -e $WORK/a.csv ]] || fail "the last --out should count"
    expect_err "nabla convert: warning: --out given more than once: the last, '$WORK/b.csv', counts"
    "$NABLA" fit pca "$WORK/d.csv" --unlabeled --no-unlabeled --k 1 >/dev/null 2>"$WORK/err" || fail "fit pca: $(cat "$WORK/err")"
    expect_err "warning: --unlabeled given more than once: the last, --no-unlabeled, counts"
    "$NABLA" fit svm "$WORK/d.csv" -c 2 --C=3 >/dev/null 2>"$WORK/err" || fail "fit svm: $(cat "$WORK/err")"
    expect_err "warning: --C given more than once: the last, '3', counts"
    "$NABLA" fit svm "$WORK/d.csv" -c 2 -c 4 >/dev/null 2>"$WORK/err" || fail "fit svm -c twice: $(cat "$WORK/err")"
    expect_err "warning: --C given more than once: the last, '4', counts"
    "$NABLA" convert "$WORK/d.csv" --to csv --out "$WORK/c.csv" >/dev/null 2>"$WORK/err" || fail "convert"
    grep -q warning "$WORK/err" && fail "a flag given once warned: $(cat "$WORK/err")"
}

# --steps 0 means zero steps in charrnn, chat, wavenet and dqn train (the
# initial model is written), but "no limit" in nabla train, which trained
# every epoch: refused there, its default (none) being the no-limit one.
cli_train_steps_0_is_refused() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/d.cfg"
    "$NABLA" train "$WORK/d.cfg" --data "$WORK/d.csv" --steps 0 --out "$WORK/m.st" >/dev/null 2>"$WORK/err"
    (($? == 2)) || fail "train --steps 0: exit status $?, expected 2"
    expect_err "--steps: expected an integer >= 1, got '0'"
    [[ -e $WORK/m.st ]] && fail "train --steps 0 trained and wrote a model"
    "$NABLA" train --help | tr -s ' \n' ' ' | grep -q -- "--steps N stop after this many optimizer steps; >= 1 (default none: --epochs decides)" ||
        fail "train --help: --steps' default"
    # and the commands where it is zero steps say what it does, as charrnn's help did alone
    local c
    for c in "charrnn train" "chat train" "wavenet train" "dqn train"; do
        "$NABLA" $c --help | tr -s ' \n' ' ' | grep -q -- "--steps N [a-z ]*steps[a-z ]* (0 writes the initial model)" ||
            fail "nabla $c --help: $("$NABLA" $c --help | grep -A1 -- '--steps N')"
    done
}

# The verb lists of the commands with verbs: every summary starts in one
# column, apart from its verb ("spectrogram a log-mel ..." ran into it).
cli_verb_lists_aligned() {
    local c
    for c in charrnn chat dqn linalg wavenet; do
        "$NABLA" $c --help | awk -v c="$c" '
            f && /^  [^ ]/ { name = $1; rest = substr($0, 3 + length(name)); match(rest, /^ */)
                             col = 2 + length(name) + RLENGTH
                             if (RLENGTH < 2) { print c ": verb " name " runs into its summary"; bad = 1 }
                             if (prev && col != prev) { print c ": summaries start in columns " prev " and " col; bad = 1 }
                             prev = col }
            /^verbs:/ { f = 1 }
            END { exit bad }' >"$WORK/bad" || fail "$(cat "$WORK/bad")"
    done
}

# convert --to npy --out d.csv wrote .npy bytes under a CSV name.
cli_convert_out_extension_matches_to() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n' >"$WORK/d.csv"
    local c to file
    for c in "npy x.csv:a .csv name for --to npy: expected another extension, or --to csv" \
        "csv x.npy:a .npy name for --to csv" "csv x.svm:a .svm name for --to csv: expected another extension, or --to libsvm"; do
        to=${c%% *} file=${c#* } file=${file%%:*}
        "$NABLA" convert "$WORK/d.csv" --to "$to" --out "$WORK/$file" >/dev/null 2>"$WORK/err"
        (($? == 2)) || fail "convert --to $to --out $file: expected exit status 2"
        expect_err "${c#*:}"
    done
    [[ -e $WORK/x.csv || -e $WORK/x.npy || -e $WORK/x.svm ]] && fail "a refused convert wrote a file"
    "$NABLA" convert "$WORK/d.csv" --to libsvm --out "$WORK/d.txt" >/dev/null 2>&1 || fail "--to libsvm --out d.txt"
    "$NABLA" convert "$WORK/d.csv" --to npy --out "$WORK/d.npy" >/dev/null 2>&1 || fail "--to npy --out d.npy"
}

# Usage errors found after parsing (one option against another, a missing
# one, an unknown model) print the usage line as the parser's do, with
# status 2; charrnn, wavenet, hessian and fit printed the message alone.
cli_usage_errors_print_usage() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/d.cfg"
    "$NABLA" init "$WORK/d.cfg" --out "$WORK/m.st" >/dev/null 2>&1 || { fail "init"; return; }
    expect_usage "charrnn train $WORK/d.csv --steps 5 --minutes 1|usage: nabla charrnn train" \
        "wavenet train $WORK --steps 5 --minutes 1 --out $WORK/w.st|usage: nabla wavenet train" \
        "hessian $WORK/m.st|usage: nabla hessian" "hessian $WORK/m.st --data $WORK/d.csv --top 5 --max-iter 3|usage: nabla hessian" \
        "fit lasso $WORK/d.csv|usage: nabla fit" "fit pca $WORK/d.csv -v 3|usage: nabla fit" \
        "chat train $WORK/d.csv --resume $WORK/no/such/m.st|usage: nabla chat train" \
        "chat eval $WORK/m.st $WORK/d.csv --tfidf-weight -1|usage: nabla chat eval" \
        "chat $WORK/m.st --tfidf-weight x|usage: nabla chat MODEL"
}

# --resume means the same in the five training commands (each writes the
# checkpoint back unless --out names another file), and its help says so in
# the same words; they had four wordings, two without the writing back.
cli_resume_help_alike() {
    local c
    for c in train "charrnn train" "chat train" "wavenet train" "dqn train"; do
        "$NABLA" $c --help | tr -s ' \n' ' ' |
            grep -q -- "--resume MODEL continue a checkpoint written by --out where it stopped (written back unless --out names another file)" ||
            fail "nabla $c --help: $("$NABLA" $c --help | grep -A1 -- '--resume')"
    done
}

cli_flag_forms() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/d.cfg"
    "$NABLA" convert "$WORK/d.csv" --to=csv --out="$WORK/a.csv" 2>/dev/null || fail "--to=csv --out=FILE"
    "$NABLA" convert "$WORK/d.csv" --to csv --out "$WORK/b.csv" 2>/dev/null || fail "--to csv --out FILE"
    cmp -s "$WORK/a.csv" "$WORK/b.csv" || fail "--flag=value wrote another file than --flag value"
    local c args rc
    for c in "convert $WORK/d.csv --to csv --out|--out needs a value" \
        "fit svm $WORK/d.csv -t|-t (--kernel) needs a value" \
        "eval $WORK/x.st --data $WORK/d.csv --json=1|--json is a switch and takes no value (use --json or --no-json)" \
        "convert $WORK/d.csv --to csv --out $WORK/c.csv --no-train 3|unknown option '--no-train'" \
        "fit svm $WORK/d.csv --kernel rb --out $WORK/c.st|--kernel: expected linear, polynomial, rbf, sigmoid, 0, 1, 2 or 3, got 'rb'" \
        "convert $WORK/d.csv --to csv --out $WORK/c.csv --train 99999999999999999999|--train: expected an integer >= 0, got '99999999999999999999'" \
        "fit svm $WORK/d.csv --coef0 nan --out $WORK/c.st|--coef0: expected a number, got 'nan'" \
        "fit svm $WORK/d.csv -r -1e300 --out $WORK/c.st|--coef0: expected a number, at most 3.40282e+38 in size (single precision), got '-1e300'" \
        "charrnn train $WORK/d.csv --hiddne 16|unknown option '--hiddne' (did you mean --hidden?)" \
        "train --data $WORK/d.csv --out $WORK/c.st|expected a NET.cfg that describes the network, or --resume MODEL" \
        "train $WORK/d.cfg --resume $WORK/x.st --data $WORK/d.csv|--resume takes the network from the model file; drop '$WORK/d.cfg'" \
        "train --resume $WORK/x.st --init $WORK/x.st|--resume and --init exclude each other" \
        "init $WORK/d.cfg|--out is required: the model file to write" \
        "convert $WORK/d.csv --to csv|--out is required" \
        "wavenet generate $WORK/x.st --out $WORK/o.wav --cond $WORK/a.wav --like $WORK/b.wav|--cond and --like exclude each other" \
        "wavenet train $WORK/wn --steps 3|--out MODEL is required (or --resume MODEL)"; do
        read -ra args <<<"${c%%|*}"
        "$NABLA" "${args[@]}" >/dev/null 2>"$WORK/err"
        rc=$?
        ((rc == 2)) || fail "${c%%|*}: exit status $rc, expected 2 (a usage error): $(head -2 "$WORK/err")"
        expect_err "${c#*|}"
    done
    [[ -e $WORK/c.csv || -e $WORK/c.st ]] && fail "a refused command wrote its output"
    # After "--" every word is an argument, --help too; "-3" is one, not an option.
    expect_fail "$NABLA" stats -- --help && expect_err "--help: cannot open"
    expect_fail "$NABLA" stats -3 && expect_err "stats: -3: cannot open"
}

# Range errors name the option, the value and what is allowed (exit 2); --clip became --grad-clip.
cli_charrnn_flags() {
    expect_fail "$NABLA" charrnn train --hidden 0 && expect_err "--hidden: expected an integer in \[1, 65536\], got '0'"
    "$NABLA" charrnn train --hidden 0 >/dev/null 2>&1
    (($? == 2)) || fail "a range error should exit 2"
    expect_fail "$NABLA" charrnn train --grad-clip -1 && expect_err "--grad-clip: expected a number >= 0, got '-1'"
    expect_fail "$NABLA" charrnn sample x.st --temperature -0.5 && expect_err "--temperature: expected a number >= 0, got '-0.5'"
    expect_fail "$NABLA" charrnn eval x.st --seq 0 && expect_err "--seq: expected an integer in \[1, 100000\], got '0'"
    expect_fail "$NABLA" hessian x.st --data fashion-mnist --top 0 && expect_err "--top: expected an integer in \[1, 1000\], got '0'"
    expect_fail "$NABLA" hessian x.st --data fashion-mnist --top 5 --max-iter 3 &&
        expect_err "--max-iter: expected at least --top (5), got 3"
    expect_fail "$NABLA" convert x.csv --to npy --out "$WORK/x.npy" --pca -2 && expect_err "--pca: expected an integer >= 0, got '-2'"
    expect_fail "$NABLA" linalg pinv x.npy --rcond 0 && expect_err "--rcond: expected a number in (0, 1\], got '0'"
    expect_fail "$NABLA" charrnn train --clip 1 && expect_err "unknown option '--clip' (did you mean --grad-clip?)"
    expect_fail "$NABLA" charrnn train --cell lstn && expect_err "--cell: expected rnn, lstm or gru, got 'lstn'"
    expect_fail "$NABLA" charrnn train --steps 5 --minutes 1 && expect_err "--steps 5 and --minutes 1 exclude each other"
    # --grad-clip is applied: a bound no gradient reaches trains exactly as no clipping, a tiny one differently;
    # the checkpoint keeps it for --resume.
    charrnn_corpus "$WORK/c.txt"
    local small=(--hidden 16 --seq 8 --batch 4 --steps 30 --eval-every 30 --json) a b c
    "$NABLA" charrnn train "$WORK/c.txt" "${small[@]}" --grad-clip 0 >"$WORK/a" 2>/dev/null || { fail "train --grad-clip 0"; return; }
    "$NABLA" charrnn train "$WORK/c.txt" "${small[@]}" --grad-clip 1e9 >"$WORK/b" 2>/dev/null || { fail "train --grad-clip 1e9"; return; }
    "$NABLA" charrnn train "$WORK/c.txt" "${small[@]}" --grad-clip 1e-4 --out "$WORK/clip.st" >"$WORK/c" 2>/dev/null ||
        { fail "train --grad-clip 1e-4"; return; }
    a=$(json_field val_bpc "$WORK/a") b=$(json_field val_bpc "$WORK/b") c=$(json_field val_bpc "$WORK/c")
    [[ -n $a && $a == "$b" ]] || fail "--grad-clip 1e9 ($b) should train as --grad-clip 0 ($a)"
    [[ -n $c && $c != "$a" ]] || fail "--grad-clip 1e-4 ($c) trained as no clipping ($a)"
    head -c 2000 "$WORK/clip.st" | grep -a -q '"nabla.clip":"0.0001"' || fail "the checkpoint does not keep --grad-clip"
}

# Every output path is checked before any work: the error is about the output, not the missing input after it.
cli_outputs_checked_before_work() {
    local nodir=$WORK/no/such/folder
    expect_fail "$NABLA" linalg eig "$WORK/missing.npy" --out "$nodir/r" && expect_err "--out '$nodir/r': the folder"
    expect_fail "$NABLA" linalg svd "$WORK/missing.npy" --out "$WORK" && expect_err "is a folder"
    expect_fail "$NABLA" stats "$WORK/missing.csv" --out "$nodir/s" && expect_err "--out '$nodir/s': the folder"
    expect_fail "$NABLA" convert "$WORK/missing.csv" --to csv --out "$nodir/x.csv" && expect_err "--out '$nodir/x.csv': the folder"
    expect_fail "$NABLA" charrnn train "$WORK/missing.txt" --out "$nodir/m.st" && expect_err "--out '$nodir/m.st': the folder"
    expect_fail "$NABLA" charrnn train "$WORK/missing.txt" --log "$nodir/m.csv" && expect_err "--log '$nodir/m.csv': the folder"
    expect_fail "$NABLA" charrnn train "$WORK/missing.txt" --out "$WORK/m.bin" && expect_err "ending in .safetensors or .st"
    # A file where the folder should be is named as such (it was "the folder 'f' does not exist").
    : >"$WORK/f"
    expect_fail "$NABLA" train "$WORK/missing.cfg" --data x --out "$WORK/f/m.st" && expect_err "'$WORK/f' is a file, not a folder"
    expect_fail "$NABLA" stats "$WORK/missing.csv" --out "$WORK/f/sub/s" && expect_err "'$WORK/f/sub' cannot exist: a file stands in its path"
    # convert writes FILE and FILE.t: a FILE.t that cannot be written stops it before loading, and FILE is not written.
    mkdir -p "$WORK/tsplit.t"
    expect_fail "$NABLA" convert fashion-mnist --to libsvm --out "$WORK/tsplit" && expect_err "tsplit.t': is a folder"
    [[ ! -e $WORK/tsplit ]] || fail "convert wrote FILE although FILE.t cannot be written"
    grep -q "wrote\|PCA" "$WORK/err" && fail "convert worked before checking FILE.t"
    true
}

# A --log named like the training data (under any spelling) would be renamed
# over it: refused before any work, the data left as it was.
cli_log_is_not_an_input() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n5,2,0\n6,5,1\n' >"$WORK/d.csv"
    cp "$WORK/d.csv" "$WORK/keep.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/t.cfg"
    expect_fail "$NABLA" train "$WORK/t.cfg" --data "$WORK/d.csv" --epochs 1 --out "$WORK/t.st" --log "$WORK/./d.csv" &&
        expect_err "--log '$WORK/./d.csv': is the input"
    (($(grep -v "^usage: " "$WORK/err" | grep -c .) <= 1)) || fail "train did work before refusing the log: $(cat "$WORK/err")"
    printf 'some text to learn from, twice over; some text to learn from\n' >"$WORK/text.csv"
    cp "$WORK/text.csv" "$WORK/keep.txt"
    expect_fail "$NABLA" charrnn train "$WORK/text.csv" --steps 1 --out "$WORK/r.st" --log "$WORK/text.csv" &&
        expect_err "is the input"
    cp "$ROOT/tests/data/chat/train.csv" "$WORK/chat.csv"
    expect_fail "$NABLA" chat train "$WORK/chat.csv" --out "$WORK/c.st" --log "$WORK/chat.csv" && expect_err "is the input"
    cmp -s "$WORK/d.csv" "$WORK/keep.csv" || fail "train replaced its data with the log"
    cmp -s "$WORK/text.csv" "$WORK/keep.txt" || fail "charrnn train replaced its text with the log"
    cmp -s "$WORK/chat.csv" "$ROOT/tests/data/chat/train.csv" || fail "chat train replaced its data with the log"
    [[ ! -e $WORK/t.st && ! -e $WORK/r.st && ! -e $WORK/c.st ]] || fail "a refused run wrote a model"
}

# The predictions of a fitted model, and a converted data set, written over
# an input: `predict m.st d.csv --out m.st` replaced the model with the
# predictions, `convert d.csv --to csv --out d.csv` rewrote the data.
cli_out_is_not_an_input() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n5,2,0\n6,5,1\n' >"$WORK/d.csv"
    cp "$WORK/d.csv" "$WORK/keep.csv"
    "$NABLA" fit logreg "$WORK/d.csv" --out "$WORK/m.st" >/dev/null 2>&1 || { fail "fit logreg"; return; }
    cp "$WORK/m.st" "$WORK/keep.st"
    expect_fail "$NABLA" predict "$WORK/m.st" "$WORK/d.csv" --out "$WORK/m.st" && expect_err "--out '$WORK/m.st': is the input"
    expect_fail "$NABLA" predict "$WORK/m.st" "$WORK/d.csv" --out "$WORK/./d.csv" && expect_err "--out '$WORK/./d.csv': is the input"
    expect_fail "$NABLA" convert "$WORK/d.csv" --to csv --out "$WORK/d.csv" && expect_err "--out '$WORK/d.csv': is the input"
    "$NABLA" convert "$WORK/d.csv" --to csv --out "$WORK/d.csv" >/dev/null 2>&1
    local rc=$?
    ((rc == 2)) || fail "convert --out over its input: exit status $rc, expected 2 (a usage error)"
    cmp -s "$WORK/m.st" "$WORK/keep.st" || fail "predict replaced its model"
    cmp -s "$WORK/d.csv" "$WORK/keep.csv" || fail "predict or convert replaced its data"
    "$NABLA" predict "$WORK/m.st" "$WORK/d.csv" --out "$WORK/p.txt" >/dev/null 2>&1 || fail "predict --out p.txt"
    # wavenet generate --like REF.wav --out REF.wav replaced the reference recording with the resynthesis
    wavenet_data || { fail "synth failed"; return; }
    "$NABLA" wavenet train "$WORK/wn" --cond mel --layers 2 --stacks 1 --residual 4 --skip 4 --segment 512 --steps 1 \
        --eval-every 1 --val-samples 600 --out "$WORK/wm.st" >/dev/null 2>&1 || { fail "wavenet train --cond mel"; return; }
    cp "$WORK/wn/spk0/clip0.wav" "$WORK/ref.wav"
    "$NABLA" wavenet generate "$WORK/wm.st" --like "$WORK/ref.wav" --out "$WORK/ref.wav" --seconds 0.05 >/dev/null \
        2>"$WORK/err"
    rc=$?
    ((rc == 2)) || fail "generate --out over --like: exit status $rc, expected 2 (a usage error)"
    expect_err "--out '$WORK/ref.wav': is the input"
    cmp -s "$WORK/ref.wav" "$WORK/wn/spk0/clip0.wav" || fail "generate replaced its reference recording"
}

# What the data holds is said in the data's terms, with the file's name, not
# the library function's ("oneclass.csv: svm_fit: the labels hold one class
# only", "linalg_solve: A is singular", "factor_fit: needs at least 2
# examples", svm -v's "svm_cross_validate: fold 1" without the file).
cli_data_messages_name_no_function() {
    printf '1,2,0\n2,3,0\n3,1,0\n4,4,0\n' >"$WORK/oneclass.csv"
    printf '1,2,0\n2,3,0\n3,1,0\n4,4,0\n5,5,1\n' >"$WORK/fold.csv"
    printf '1,1,1\n1,1,1\n1,1,1\n' >"$WORK/same.csv"
    printf '1,2\n' >"$WORK/one.csv"
    # nofn: the message names the file and no function (word_word: )
    nofn() { expect_err "$1" && ! grep -qE "\b[a-z]+_[a-z_]+: " "$WORK/err" || fail "a function name, or no '$1': $(cat "$WORK/err")"; }
    local m
    for m in svm logreg; do
        expect_fail "$NABLA" fit $m "$WORK/oneclass.csv" && nofn "oneclass.csv: the labels hold one class only (0)"
    done
    expect_fail "$NABLA" fit svm "$WORK/fold.csv" -v 4 && nofn "fold.csv: cross-validation fold 1 of 4"
    expect_fail "$NABLA" fit fa "$WORK/same.csv" --unlabeled && nofn "same.csv: the 3 examples are all the same"
    expect_fail "$NABLA" fit pca "$WORK/one.csv" --unlabeled && nofn "one.csv: 1 example: pca, ppca and fa need at least 2"
    /usr/bin/python3 -c 'import numpy as np; np.save("'"$WORK"'/S.npy", np.array([[1, 2], [2, 4]], dtype=np.float32)); np.save("'"$WORK"'/b.npy", np.ones(2, dtype=np.float32))' ||
        { fail "numpy"; return; }
    expect_fail "$NABLA" linalg solve "$WORK/S.npy" "$WORK/b.npy" && nofn "S.npy: A is singular"
    # a recording longer than a picture is wide (16384 frames: 262 s) said "nb_figure_heatmap: expected 1..16384 rows and columns"
    /usr/bin/python3 -c 'import wave; w = wave.open("'"$WORK"'/long.wav", "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(bytes(2 * 16000 * 270)); w.close()' ||
        { fail "python3 wave"; return; }
    expect_fail "$NABLA" wavenet spectrogram "$WORK/long.wav" --out "$WORK/long.png" &&
        nofn "long.wav: 16875 frames (270.00 s) are more than a picture's 16384 columns"
    "$NABLA" wavenet spectrogram "$WORK/long.wav" --out "$WORK/long.npy" 2>/dev/null || fail "spectrogram --out .npy of a long recording"
}

# README's table of --json keys lists every key a command prints (checked
# on the quick commands: a renamed or added key must be documented).
cli_json_keys_are_documented() {
    local S=/usr/lib/python3/dist-packages/skimage/data
    # documented ROW_PREFIX CMD...: each top-level key of CMD's JSON is in README's row starting with ROW_PREFIX
    documented() {
        local row=$1
        shift
        "$NABLA" "$@" 2>/dev/null | tail -1 >"$WORK/json" || { fail "$*"; return; }
        in_row "$row" || fail "README's JSON keys of $*"
    }
    # in_row ROW_PREFIX: each top-level key of $WORK/json is in that README row
    in_row() {
        /usr/bin/python3 - "$ROOT/README.md" "$1" "$WORK/json" <<'PY'
import json, re, sys
readme, row, out = open(sys.argv[1]).read(), sys.argv[2], json.load(open(sys.argv[3]))
line = [l for l in readme.split("\n") if l.startswith(row)]
if not line: sys.exit("no README row " + row)
words = set(re.findall(r"[A-Za-z_0-9]+", line[0]))
keys = out.keys() if isinstance(out, dict) else out[0].keys()
missing = [k for k in keys if k not in words]
if missing: sys.exit("%s: %s not in README's row" % (row, missing))
PY
    }
    printf '1,0.5\n2,0.5\n' >"$WORK/p.csv"
    documented '| `convolve`' convolve "$WORK/p.csv" "$WORK/p.csv" --json
    printf 'a,b\n1,2\n3,5\n4,4\n' >"$WORK/t.csv"
    documented '| `stats`' stats "$WORK/t.csv" --json
    /usr/bin/python3 -c 'import numpy as np; np.save("'"$WORK"'/A.npy", np.array([[2, 1], [1, 3]], dtype=np.float32))'
    local v
    for v in eig svd pinv rank det cond norms definite; do documented '| `linalg VERB`' linalg $v "$WORK/A.npy" --json; done
    documented '| `filter`' filter "$S/camera.png" --kernel blur --out "$WORK/f.png" --json
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n5,2,0\n6,5,1\n' >"$WORK/d.csv"
    documented '| `fit`' fit logreg "$WORK/d.csv" --out "$WORK/lr.st" --json
    documented '| `fit`' fit svm "$WORK/d.csv" --json
    documented '| `fit`' fit linreg "$WORK/d.csv" --json
    documented '| `fit`' fit gmm "$WORK/d.csv" --unlabeled --json
    documented '| `predict` (fitted model)' predict "$WORK/lr.st" "$WORK/d.csv" --json
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/t.cfg"
    documented '| `train`' train "$WORK/t.cfg" --data "$WORK/d.csv" --epochs 1 --out "$WORK/m.st" --json
    documented '| `eval`' eval "$WORK/m.st" --data "$WORK/d.csv" --json
    documented '| `hessian`' hessian "$WORK/m.st" --data "$WORK/d.csv" --top 1 --trace --samples 2 --json
    # predict's --json is a list, and its help says so (it said "one JSON object")
    "$NABLA" predict --help | grep -q "JSON list" || fail "predict --help: $("$NABLA" predict --help | grep -- --json)"
    # chat MODEL prints an object per message, and its help says so (it said "the last line of stdout")
    "$NABLA" chat train "$ROOT/tests/data/chat/train.csv" --embed 8 --hidden 8 --vocab-min 1 --out "$WORK/ch.st" >/dev/null 2>&1 ||
        { fail "chat train"; return; }
    printf 'hello there\nhow are you\n' | "$NABLA" chat "$WORK/ch.st" --json >"$WORK/lines" 2>/dev/null || fail "chat MODEL --json"
    (($(wc -l <"$WORK/lines") == 2)) || fail "chat MODEL --json: not a line per message: $(cat "$WORK/lines")"
    tail -1 "$WORK/lines" >"$WORK/json"
    in_row '| `chat MODEL`' || fail "README's JSON keys of chat MODEL"
    "$NABLA" chat "$WORK/ch.st" --help | tr -s ' \n' ' ' | grep -q "one JSON object a line, one per message" ||
        fail "chat MODEL --help: $("$NABLA" chat "$WORK/ch.st" --help | grep -A1 -- --json)"
}

# A flag a command refuses to run without is marked (required) in its help
# (filter's --kernel and --out, style's and generate's --out said nothing).
cli_required_flags_say_so_in_help() {
    local c flag line
    for c in "filter x.png|--kernel" "filter x.png --kernel blur|--out" "style x.png|--out" "wavenet generate m.st|--out" \
        "wavenet spectrogram x.wav|--out" "wavenet features d|--out" "chat corpus|--out" "convert fashion-mnist --out f|--to" \
        "eval m.st|--data" "hessian m.st|--data" "train t.cfg|--data"; do
        flag=${c#*|}
        read -ra args <<<"${c%%|*}"
        expect_fail "$NABLA" "${args[@]}" && expect_err "$flag.* is required"
        read -ra args <<<"${c%%|*}"
        local cmd=("${args[@]:0:1}")
        [[ ${args[0]} == wavenet || ${args[0]} == chat ]] && cmd=("${args[@]:0:2}")
        # the flag's entry in the help, joined across its wrapped lines
        line=$("$NABLA" "${cmd[@]}" --help | sed -n "/^  $flag /,/^  -/p" | sed '$d' | tr -s ' \n' ' ')
        [[ $line == *"(required)"* ]] || fail "${cmd[*]} --help does not say $flag is required: $line"
    done
}

# Status 2 is a command line that cannot run, and says so with the usage
# line; output paths refused by their check printed the message alone.
cli_status_2_prints_usage() {
    local S=/usr/lib/python3/dist-packages/skimage/data c rc
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n' >"$WORK/d.csv"
    /usr/bin/python3 -c 'import numpy as np; np.save("'"$WORK"'/A.npy", np.eye(2, dtype=np.float32))' || { fail numpy; return; }
    : >"$WORK/file"
    mkdir -p "$WORK/ts.t"
    for c in "filter $S/camera.png --kernel blur --out $WORK/none/x.png" "filter $S/camera.png --kernel blur --out $WORK/x.gif" \
        "stats $WORK/d.csv --out $WORK/none/p" "linalg eig $WORK/A.npy --out $WORK/none/p" \
        "style $S/brick.png --out $WORK/s.png --style-layers nope" "style $S/brick.png --out $WORK/s.png --style-weights 1,2" \
        "style $S/brick.png --out $WORK/s.png --init content" "fit pca $WORK/d.csv --unlabeled --k 99" \
        "chat corpus --out $WORK/file" "convert fashion-mnist --to libsvm --out $WORK/ts" \
        "wavenet train $WORK --resume $WORK/none/m.st" "charrnn train $WORK/d.csv --resume $WORK/none/m.st"; do
        read -ra args <<<"$c"
        "$NABLA" "${args[@]}" >/dev/null 2>"$WORK/err"
        rc=$?
        ((rc == 2)) || { fail "$c: exit status $rc, expected 2: $(head -c 300 "$WORK/err")"; continue; }
        grep -q "^usage: nabla ${args[0]}" "$WORK/err" || fail "$c: no usage line: $(cat "$WORK/err")"
    done
}

# One word for a folder in every message ("is a directory" came from the file
# reader and charrnn, "is a folder" from the output checks).
cli_folder_is_one_word() {
    mkdir -p "$WORK/empty" "$WORK/d.st"
    expect_fail "$NABLA" charrnn train "$WORK/empty" --steps 1 --out "$WORK/r.st" && expect_err "no text files in this folder"
    expect_fail "$NABLA" plot "$WORK/empty" && expect_err "is a folder"
    expect_fail "$NABLA" init "$ROOT/examples/mlp.cfg" --out "$WORK/d.st" && expect_err "is a folder"
    grep -qi "director" "$WORK/err" && fail "'directory' in: $(cat "$WORK/err")"
    "$NABLA" charrnn train --help | grep -qi "director" && fail "charrnn train --help says directory"
    true
}

# Every command that writes a file refuses, before any work and as a usage
# error (status 2, the usage line), an output that is one of its inputs under
# any name: filter, style, convolve, plot, fit, init, stats, linalg, train
# --init, charrnn train, wavenet spectrogram and generate's other streams all
# wrote over theirs. --resume X --out X stays allowed (the checkpoint).
cli_every_output_is_not_an_input() {
    local S=/usr/lib/python3/dist-packages/skimage/data
    # refused CMD...: status 2, "is the input" and the usage line; the inputs kept
    refused() {
        "$NABLA" "$@" >"$WORK/out" 2>"$WORK/err"
        local rc=$?
        ((rc == 2)) || { fail "exit status $rc, expected 2 (an output that is an input): $*: $(head -c 300 "$WORK/err")"; return 1; }
        grep -q "is the input" "$WORK/err" && grep -q "^usage: nabla" "$WORK/err" ||
            fail "stderr lacks 'is the input' or the usage line: $*: $(cat "$WORK/err")"
    }
    cp "$S/brick.png" "$WORK/b.png" && cp "$S/chelsea.png" "$WORK/c.png"
    refused filter "$WORK/b.png" --kernel blur --out "$WORK/./b.png"
    refused style "$WORK/c.png" "$WORK/b.png" --size 32 --iters 1 --out "$WORK/c.png"
    refused style "$WORK/b.png" --size 16 --iters 1 --init "$WORK/c.png" --out "$WORK/c.png"
    cmp -s "$WORK/b.png" "$S/brick.png" && cmp -s "$WORK/c.png" "$S/chelsea.png" || fail "filter or style replaced an input image"
    # the same file through another path: a symbolic link, a hard link
    printf '1,1/2\n2,1/2\n' >"$WORK/p.csv"
    ln -s p.csv "$WORK/bars.svg"
    refused convolve "$WORK/p.csv" "$WORK/p.csv" --out "$WORK/bars.svg"
    cp "$ROOT/tests/data/log.csv" "$WORK/log.csv" && ln -s log.csv "$WORK/log.png"
    refused plot "$WORK/log.csv" --out "$WORK/log.png"
    refused plot "$WORK/log.png" # the default --out, LOG.png, is the log itself
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n5,2,0\n6,5,1\n' >"$WORK/d.csv"
    ln "$WORK/d.csv" "$WORK/d.st"
    refused fit logreg "$WORK/d.csv" --out "$WORK/d.st"
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/t.cfg"
    ln "$WORK/t.cfg" "$WORK/t.st"
    refused init "$WORK/t.cfg" --out "$WORK/t.st"
    [[ $(cat "$WORK/p.csv") == $'1,1/2\n2,1/2' && $(head -1 "$WORK/t.cfg") == "[net]" ]] || fail "an input was replaced"
    cmp -s "$WORK/log.csv" "$ROOT/tests/data/log.csv" && cmp -s "$WORK/d.csv" "$WORK/d.st" || fail "plot or fit replaced its input"
    # outputs derived from a prefix: stats' PREFIX.mean.npy, linalg's PREFIX.x.npy (by default A's stem)
    /usr/bin/python3 -c 'import numpy as np; np.save("'"$WORK"'/x.mean.npy", np.eye(3, dtype=np.float32)); np.save("'"$WORK"'/A.npy", np.eye(3, dtype=np.float32)); np.save("'"$WORK"'/A.x.npy", np.ones(3, dtype=np.float32))' ||
        { fail "numpy"; return; }
    cp "$WORK/x.mean.npy" "$WORK/keep.npy" && cp "$WORK/A.x.npy" "$WORK/keepx.npy"
    refused stats "$WORK/x.mean.npy" --out "$WORK/x"
    refused linalg solve "$WORK/A.npy" "$WORK/A.x.npy"
    cmp -s "$WORK/x.mean.npy" "$WORK/keep.npy" && cmp -s "$WORK/A.x.npy" "$WORK/keepx.npy" || fail "stats or linalg replaced an input"
    "$NABLA" linalg solve "$WORK/A.npy" "$WORK/A.x.npy" --out "$WORK/sol" >/dev/null 2>&1 || fail "linalg solve --out another prefix"
    "$NABLA" stats "$WORK/x.mean.npy" --out "$WORK/s" >/dev/null 2>&1 || fail "stats --out another prefix"
    # train --init MODEL --out MODEL would replace the model it starts from; --resume MODEL --out MODEL updates it
    "$NABLA" init "$WORK/t.cfg" --out "$WORK/m.st" >/dev/null 2>&1 || { fail "init"; return; }
    cp "$WORK/m.st" "$WORK/keep.st"
    refused train "$WORK/t.cfg" --data "$WORK/d.csv" --epochs 1 --init "$WORK/m.st" --out "$WORK/m.st"
    cmp -s "$WORK/m.st" "$WORK/keep.st" || fail "train --init replaced its model"
    "$NABLA" train "$WORK/t.cfg" --data "$WORK/d.csv" --epochs 1 --out "$WORK/r.st" >/dev/null 2>&1 &&
        "$NABLA" train --data "$WORK/d.csv" --epochs 2 --resume "$WORK/r.st" --out "$WORK/./r.st" >/dev/null 2>"$WORK/err" ||
        fail "train --resume r.st --out ./r.st was refused: $(cat "$WORK/err")"
    printf 'some text to learn from, twice over; some text to learn from\n' >"$WORK/text.txt"
    ln "$WORK/text.txt" "$WORK/text.st"
    refused charrnn train "$WORK/text.txt" --steps 1 --batch 1 --seq 8 --out "$WORK/text.st"
    grep -q "^some text" "$WORK/text.txt" || fail "charrnn train replaced its text with the model"
    # wavenet: the picture of spectrogram; the other streams' OUT-k.wav of generate
    wavenet_data || { fail "synth failed"; return; }
    cp "$WORK/wn/spk0/clip0.wav" "$WORK/w.wav" && ln -s w.wav "$WORK/w.png"
    refused wavenet spectrogram "$WORK/w.wav" --out "$WORK/w.png"
    "$NABLA" wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 256 --steps 1 \
        --eval-every 1 --val-samples 300 --out "$WORK/g-1.wav.st" >/dev/null 2>&1 || { fail "wavenet train"; return; }
    mv "$WORK/g-1.wav.st" "$WORK/g-1.wav" && cp "$WORK/g-1.wav" "$WORK/keepw.st"
    refused wavenet generate "$WORK/g-1.wav" --streams 2 --seconds 0.01 --out "$WORK/g.wav"
    cmp -s "$WORK/g-1.wav" "$WORK/keepw.st" || fail "wavenet generate wrote its second stream over the model"
    cmp -s "$WORK/w.wav" "$WORK/wn/spk0/clip0.wav" || fail "spectrogram replaced its recording"
}

# An output that is not a regular file is written into, not renamed over:
# /dev/null stays a device (as root the rename replaced it), a FIFO's reader
# gets the predictions, /dev/stdout reaches a pipe or a redirected file, and
# a symbolic link stays a link, its target replaced atomically.
cli_output_to_devices_fifos_and_links() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n5,2,0\n6,5,1\n' >"$WORK/d.csv"
    "$NABLA" fit linreg "$WORK/d.csv" --out "$WORK/lin.st" >/dev/null 2>&1 || { fail "fit linreg"; return; }
    "$NABLA" predict "$WORK/lin.st" "$WORK/d.csv" --out /dev/null >/dev/null 2>"$WORK/err" || fail "--out /dev/null: $(cat "$WORK/err")"
    [[ -c /dev/null ]] || fail "/dev/null is no longer a device"
    "$NABLA" predict "$WORK/lin.st" "$WORK/d.csv" --out /dev/stdout 2>/dev/null | grep -c . >"$WORK/n"
    [[ $(cat "$WORK/n") == 6 ]] || fail "--out /dev/stdout into a pipe gave $(cat "$WORK/n") lines"
    "$NABLA" predict "$WORK/lin.st" "$WORK/d.csv" --out /dev/stdout >"$WORK/p.txt" 2>/dev/null || fail "--out /dev/stdout > file"
    [[ $(grep -c . "$WORK/p.txt") == 6 ]] || fail "--out /dev/stdout into a file: $(head -c 200 "$WORK/p.txt")"
    [[ -L /dev/stdout || ! -f /dev/stdout ]] || fail "/dev/stdout was replaced by a file"
    mkfifo "$WORK/fifo"
    cat "$WORK/fifo" >"$WORK/from-fifo" &
    "$NABLA" predict "$WORK/lin.st" "$WORK/d.csv" --out "$WORK/fifo" >/dev/null 2>"$WORK/err" || fail "--out FIFO: $(cat "$WORK/err")"
    wait
    [[ -p $WORK/fifo ]] || fail "the FIFO was replaced"
    [[ $(grep -c . "$WORK/from-fifo") == 6 ]] || fail "the FIFO's reader got $(grep -c . "$WORK/from-fifo") lines"
    echo old >"$WORK/target.txt"
    ln -s target.txt "$WORK/link.txt"
    "$NABLA" predict "$WORK/lin.st" "$WORK/d.csv" --out "$WORK/link.txt" >/dev/null 2>&1 || fail "--out LINK"
    [[ -L $WORK/link.txt ]] || fail "the link was replaced by a file"
    [[ $(grep -c . "$WORK/target.txt") == 6 ]] || fail "the link's target was not written"
    ls -a "$WORK" | grep -q 'tmp\|nabla-probe' && fail "temporary files left: $(ls -a "$WORK")"
    true
}

# A number finite as a double but not as a float (1e300) is refused as a
# usage error: it reached nb_optim_new as inf, which returned NULL and train
# and wavenet train crashed on it (SIGSEGV, or an abort in nb_optim_set_lr).
cli_float_flags_beyond_single_precision() {
    printf '1,2,0\n2,3,1\n3,1,0\n4,4,1\n5,2,0\n6,5,1\n' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/t.cfg"
    local flag
    for flag in --lr --weight-decay --l1-activation; do
        "$NABLA" train "$WORK/t.cfg" --data "$WORK/d.csv" --epochs 1 "$flag" 1e300 --out "$WORK/t.st" >/dev/null 2>"$WORK/err"
        (($? == 2)) || fail "train $flag 1e300: status $?: $(cat "$WORK/err")"
        expect_err "$flag: expected a number .*single precision.*got '1e300'"
    done
    "$NABLA" wavenet train "$WORK/none" --lr 1e300 --out "$WORK/w.st" >/dev/null 2>"$WORK/err"
    (($? == 2)) || fail "wavenet train --lr 1e300 was not a usage error: $(cat "$WORK/err")"
    "$NABLA" charrnn sample "$WORK/none.st" --temperature -1e39 >/dev/null 2>"$WORK/err"
    (($? == 2)) || fail "charrnn sample --temperature -1e39 was not a usage error: $(cat "$WORK/err")"
    [[ ! -e $WORK/t.st && ! -e $WORK/w.st ]] || fail "a refused run wrote a model"
    # the largest float is still a number
    "$NABLA" train "$WORK/t.cfg" --data "$WORK/d.csv" --epochs 1 --weight-decay 3e38 --out "$WORK/t.st" >/dev/null 2>&1 ||
        fail "--weight-decay 3e38 was refused"
}

# chat train without --valid has no validation to report: no "nan" on
# stderr, empty validation cells in the log (a gap, as logs mark them).
cli_chat_train_without_valid_reports_no_nan() {
    "$NABLA" chat train "$ROOT/tests/data/chat/train.csv" --vocab-min 1 --embed 2 --hidden 2 --epochs 2 \
        --out "$WORK/c.st" --log "$WORK/c.csv" >/dev/null 2>"$WORK/err" || { fail "chat train: $(cat "$WORK/err")"; return; }
    grep -qiw nan "$WORK/err" "$WORK/c.csv" && fail "nan reported without --valid: $(cat "$WORK/err" "$WORK/c.csv")"
    grep -q "^epoch 2: train loss" "$WORK/err" || fail "no epoch line: $(cat "$WORK/err")"
    [[ $(sed -n 3p "$WORK/c.csv") == 2,*,,,,,* ]] || fail "validation cells of the log: $(cat "$WORK/c.csv")"
}

# A figure that was not measured is null in --json, as linalg, hessian and
# stats write it: chat train without --valid, charrnn and wavenet train
# before their first step wrote -1, a number a script would average.
cli_json_unmeasured_is_null() {
    "$NABLA" chat train "$ROOT/tests/data/chat/train.csv" --vocab-min 1 --embed 2 --hidden 2 --steps 2 \
        --out "$WORK/c.st" --json >"$WORK/out" 2>"$WORK/err" || { fail "chat train: $(cat "$WORK/err")"; return; }
    grep -q '"valid_loss": null, "valid_recall_1": null, "valid_recall_2": null, "valid_recall_5": null' "$WORK/out" ||
        fail "chat train without --valid: $(cat "$WORK/out")"
    printf 'the quick brown fox jumps over the lazy dog\n%.0s' {1..40} >"$WORK/t.txt"
    "$NABLA" charrnn train "$WORK/t.txt" --hidden 8 --steps 0 --batch 2 --seq 8 --out "$WORK/r.st" --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "charrnn train --steps 0: $(cat "$WORK/err")"; return; }
    grep -q '"train_bpc": null' "$WORK/out" || fail "charrnn train --steps 0: $(cat "$WORK/out")"
    wavenet_data || { fail "synth failed"; return; }
    "$NABLA" wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 0 --val-samples 400 \
        --out "$WORK/w.st" --json >"$WORK/out" 2>"$WORK/err" || { fail "wavenet train --steps 0: $(cat "$WORK/err")"; return; }
    grep -q '"train_bits_per_sample": null' "$WORK/out" || fail "wavenet train --steps 0: $(cat "$WORK/out")"
}

# chat train --negatives K on a corpus of one distinct response: no response
# differs from a pair's own, every draw was dropped and the run trained on
# the corpus's rows alone, silently. Two distinct responses suffice (the
# draws are with replacement), even for K above 2.
cli_chat_train_negatives_need_other_responses() {
    printf 'Context,Utterance,Label\nhi there,same answer,1\nhow are you,same answer,1\nbye now,same answer,0\n' >"$WORK/one.csv"
    expect_fail "$NABLA" chat train "$WORK/one.csv" --vocab-min 1 --embed 2 --hidden 2 --epochs 1 --negatives 3 --out "$WORK/c.st" &&
        expect_err "one.csv: every one of its 3 responses is the same ('same answer'), so --negatives 3 has no other response"
    [[ -e $WORK/c.st ]] && fail "a model was written"
    "$NABLA" chat train "$WORK/one.csv" --vocab-min 1 --embed 2 --hidden 2 --epochs 1 --out "$WORK/c.st" >/dev/null 2>&1 ||
        fail "--negatives 1 needs no other response"
    printf 'Context,Utterance,Label\nhi there,same answer,1\nhow are you,other answer,1\n' >"$WORK/two.csv"
    "$NABLA" chat train "$WORK/two.csv" --vocab-min 1 --embed 2 --hidden 2 --epochs 1 --negatives 5 --out "$WORK/c2.st" \
        >/dev/null 2>"$WORK/err" || fail "two distinct responses, --negatives 5: $(tail -2 "$WORK/err")"
}

# The numerical rank (numpy.linalg.matrix_rank): singular values above rcond * s_max.
cli_linalg_rank() {
    # Row 4 = row 1 + row 3 and row 2 = 2 row 1: rank 2.
    npy "$WORK/R2.npy" "4, 4" 1 2 3 4 2 4 6 8 0 1 0 1 1 3 3 5
    "$NABLA" linalg rank "$WORK/R2.npy" --json >"$WORK/out" 2>"$WORK/err" || { fail "rank: $(cat "$WORK/err")"; return; }
    [[ $(sed -n 's/.*"rank": \([0-9]*\).*/\1/p' "$WORK/out") == 2 ]] || fail "rank of R2 is not 2: $(cat "$WORK/out")"
    grep -q "of rank 2" "$WORK/err" || fail "summary lacks the rank: $(cat "$WORK/err")"
    # The default tol: rcond = max(m, n) * FLT_EPSILON = 4 * 1.1920929e-07.
    near "$(json_field rcond "$WORK/out")" 4.7683716e-07
    # A wide 2 x 3 matrix of rank 1, the identity and the zero matrix.
    npy "$WORK/W.npy" "2, 3" 1 2 3 2 4 6
    "$NABLA" linalg rank "$WORK/W.npy" --json >"$WORK/out" 2>/dev/null || { fail "rank W"; return; }
    [[ $(sed -n 's/.*"rank": \([0-9]*\).*/\1/p' "$WORK/out") == 1 ]] || fail "rank of W is not 1"
    npy "$WORK/Z.npy" "2, 2" 0 0 0 0
    "$NABLA" linalg rank "$WORK/Z.npy" --json >"$WORK/out" 2>/dev/null || { fail "rank Z"; return; }
    [[ $(sed -n 's/.*"rank": \([0-9]*\).*/\1/p' "$WORK/out") == 0 ]] || fail "rank of the zero matrix is not 0"
    # diag(1, 1e-3): rank 2 by default, 1 once --rcond exceeds 1e-3; the same cutoff as svd's rank.
    npy "$WORK/D.npy" "2, 2" 1 0 0 0.001
    "$NABLA" linalg rank "$WORK/D.npy" --json >"$WORK/out" 2>/dev/null || { fail "rank D"; return; }
    [[ $(sed -n 's/.*"rank": \([0-9]*\).*/\1/p' "$WORK/out") == 2 ]] || fail "rank of diag(1, 1e-3) is not 2"
    "$NABLA" linalg rank "$WORK/D.npy" --rcond 0.01 --json >"$WORK/out" 2>/dev/null || { fail "rank --rcond"; return; }
    [[ $(sed -n 's/.*"rank": \([0-9]*\).*/\1/p' "$WORK/out") == 1 ]] || fail "rank with --rcond 0.01 is not 1"
    "$NABLA" linalg svd "$WORK/D.npy" --rcond 0.01 --json >"$WORK/out" 2>/dev/null || { fail "svd --rcond"; return; }
    [[ $(sed -n 's/.*"rank": \([0-9]*\).*/\1/p' "$WORK/out") == 1 ]] || fail "svd --rcond 0.01 disagrees with rank"
    ls "$WORK"/D.*.npy 2>/dev/null | grep -q -v "D.[USV]t*.npy" && fail "rank wrote files"
    expect_fail "$NABLA" linalg rank "$WORK/D.npy" "$WORK/D.npy" && expect_err "unexpected argument"
    true
}

# The README's `nabla linalg eig` and `nabla stats` inputs: examples/data/make.sh writes them byte for byte.
cli_examples_data() {
    local d=$ROOT/examples/data
    mkdir -p "$WORK/data"
    sh "$d/make.sh" "$WORK/data" || { fail "make.sh failed"; return; }
    cmp -s "$d/A.npy" "$WORK/data/A.npy" || fail "make.sh does not reproduce examples/data/A.npy"
    cmp -s "$d/X.csv" "$WORK/data/X.csv" || fail "make.sh does not reproduce examples/data/X.csv"
    # The 1-D Laplacian: eigenvalues 2 - 2 cos(k pi / 5).
    "$NABLA" linalg eig "$d/A.npy" --out "$WORK/A" --json >"$WORK/out" 2>/dev/null || { fail "linalg eig A.npy"; return; }
    near "$(json_array eigenvalues "$WORK/out")" 3.618034 2.618034 1.381966 0.381966
    grep -q '"definiteness": "positive definite"' "$WORK/out" || fail "A.npy is not positive definite"
    "$NABLA" stats "$d/X.csv" --json >"$WORK/out" 2>/dev/null || { fail "stats X.csv"; return; }
    grep -q '"samples": 300, "variables": 4, "names": \["x", "y", "z", "w"\]' "$WORK/out" || fail "X.csv: $(head -c 200 "$WORK/out")"
    local corr
    corr=$(sed -n 's/.*"corr": \[\[\([^]]*\)\].*/\1/p' "$WORK/out" | tr -d ',')
    awk -v c="$corr" 'BEGIN { split(c, r, " "); exit !(r[2] > 0.95 && r[3] > -0.2 && r[3] < 0.2 && r[4] < -0.99) }' ||
        fail "X.csv correlations of x: $corr"
}

# --- nabla plot -------------------------------------------------------------------

# The picture's format follows --out's extension (PNG, SVG, PDF); any other is
# refused before any work, and a failed write leaves the earlier picture whole.
cli_plot_formats() {
    local log="$ROOT/tests/data/log.csv"
    "$NABLA" plot "$log" --out "$WORK/c.svg" >/dev/null 2>"$WORK/err" || { fail "plot to SVG failed: $(cat "$WORK/err")"; return; }
    [[ $(head -c 5 "$WORK/c.svg") == "<?xml" ]] && grep -q "<svg" "$WORK/c.svg" || fail "c.svg is not an SVG: $(head -c 40 "$WORK/c.svg")"
    "$NABLA" plot "$log" --out "$WORK/c.pdf" >/dev/null 2>"$WORK/err" || { fail "plot to PDF failed: $(cat "$WORK/err")"; return; }
    [[ $(head -c 5 "$WORK/c.pdf") == "%PDF-" ]] || fail "c.pdf is not a PDF"
    expect_fail "$NABLA" plot "$log" --out "$WORK/c.gif" && expect_err "c.gif" && expect_err ".png, .svg or .pdf"
    [[ ! -e $WORK/c.gif ]] || fail "a refused format wrote a file"
    expect_fail "$NABLA" plot "$log" --out "$WORK/no-such-folder/c.png" && expect_err "no-such-folder"
    # Without --out: the log's name with .png, checked like a given one.
    cp "$log" "$WORK/run.csv"
    "$NABLA" plot "$WORK/run.csv" >/dev/null 2>"$WORK/err" || { fail "default output: $(cat "$WORK/err")"; return; }
    [[ $(head -c 4 "$WORK/run.png" | od -An -c | tr -d ' ') == "211PNG" ]] || fail "run.png is not a PNG"
    "$NABLA" plot "$log" --width 50 >/dev/null 2>"$WORK/err"
    (($? == 2)) || fail "--width 50 should be a usage error (exit 2)"
    expect_err "--width" && expect_err "'50'" && expect_err "\[200, 16384\]"
    # A failed rename of the finished file leaves the earlier picture as it was.
    cp "$WORK/c.svg" "$WORK/before.svg"
    NABLA_FAULT=rename:1:EIO expect_fail "$NABLA" plot "$log" --out "$WORK/c.svg" --title other && expect_err "c.svg"
    cmp -s "$WORK/c.svg" "$WORK/before.svg" || fail "a failed plot changed the earlier picture"
}

# chat train's log: its recall@k columns are drawn beside the losses (they
# were left out: only 'loss' and 'acc' columns had a chart).
cli_plot_chat_log_draws_recall() {
    printf 'epoch,step,train_loss,valid_loss,valid_recall_1,valid_recall_2,valid_recall_5,seconds\n' >"$WORK/c.csv"
    printf '1,3,0.70,0.70,0.08,0.16,0.50,0.02\n2,6,0.69,0.66,0.10,0.25,0.58,0.04\n' >>"$WORK/c.csv"
    "$NABLA" plot "$WORK/c.csv" --out "$WORK/c.png" >"$WORK/out" 2>"$WORK/err" || { fail "plot: $(cat "$WORK/err")"; return; }
    grep -q "^$WORK/c.png: 2 charts of the 2 rows of $WORK/c.csv$" "$WORK/out" || fail "expected a loss and a recall chart: $(cat "$WORK/out")"
}

# --- nabla chat (the dual-encoder retrieval chatbot) ---------------------------
CHAT_DATA="$ROOT/tests/data/chat"
CHAT_SMALL=(--valid "$CHAT_DATA/valid.csv" --embed 8 --hidden 16 --vocab-min 1 --batch 16 --lr 0.01)

# Training learns the tiny corpus (recall@1 above the random baseline's
# expectation of 0.1), eval reports the model with both baselines, and the
# interactive mode ranks the stored bank for messages from a pipe.
# chat train --device: the dual encoder (lstm_packed) on the GPU gives the
# one-thread CPU run's validation loss and recall; the model chats on the CPU.
cli_chat_device() {
    local small=("$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --hidden 16 --steps 6 --threads 1 --json)
    if ! "$NABLA" chat train "${small[@]}" --device cuda --out "$WORK/g.st" >"$WORK/g" 2>"$WORK/err"; then
        device_cuda_absent "$WORK/g.st"
        return
    fi
    "$NABLA" chat train "${small[@]}" --out "$WORK/c.st" >"$WORK/c" 2>/dev/null || { fail "the CPU run"; return; }
    local f g c
    for f in valid_loss valid_recall_1; do
        g=$(json_field $f "$WORK/g") c=$(json_field $f "$WORK/c")
        [[ -n $g ]] && awk -v g="$g" -v c="$c" 'BEGIN { exit !(g - c < 1e-3 && c - g < 1e-3) }' ||
            fail "$f: $g on the GPU, $c on the CPU"
    done
    printf 'how do i mount a usb disk\n' | "$NABLA" chat "$WORK/g.st" --top 1 >/dev/null 2>&1 || fail "chat with the GPU's model"
}

cli_chat_train_eval_chat() {
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --hidden 32 --epochs 8 --out "$WORK/c.st" \
        --log "$WORK/c.csv" --json >"$WORK/out" 2>"$WORK/err" || { fail "train: $(tail -2 "$WORK/err")"; return; }
    [[ $(head -1 "$WORK/c.csv") == epoch,step,train_loss,valid_loss,valid_recall_1* ]] || fail "log header: $(head -1 "$WORK/c.csv")"
    (($(wc -l <"$WORK/c.csv") == 9)) || fail "expected 8 log rows, got $(($(wc -l <"$WORK/c.csv") - 1))"
    "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --json >"$WORK/out" 2>"$WORK/err" || { fail "eval: $(tail -2 "$WORK/err")"; return; }
    local r1
    r1=$(sed -n 's/.*"model": {"recall_1": \([0-9.]*\).*/\1/p' "$WORK/out")
    [[ -n $r1 ]] && awk -v r="$r1" 'BEGIN { exit !(r > 0.3) }' || fail "model recall@1 $r1 not above 0.3"
    grep -q '"tfidf": {"recall_1"' "$WORK/out" && grep -q '"random": {"recall_1"' "$WORK/out" || fail "baselines missing: $(cat "$WORK/out")"
    grep -q "TF-IDF" "$WORK/err" || fail "no table on stderr with --json"
    printf 'how do i mount a usb disk\nsound does not play\n' | "$NABLA" chat "$WORK/c.st" --top 2 >"$WORK/out" 2>"$WORK/err" ||
        { fail "chat: $(tail -2 "$WORK/err")"; return; }
    (($(grep -c $'^[01]\.[0-9]*\t' "$WORK/out") == 4)) || fail "expected 2 x 2 scored responses: $(cat "$WORK/out")"
    grep -q "embeddings stored in the model" "$WORK/err" && grep -q "responses ranked per second" "$WORK/err" ||
        fail "bank or speed report missing: $(cat "$WORK/err")"
    printf 'use apt\nreboot it\n' >"$WORK/bank.txt"
    echo "hello" | "$NABLA" chat "$WORK/c.st" --responses "$WORK/bank.txt" --top 5 >"$WORK/out" 2>"$WORK/err" ||
        { fail "chat --responses: $(tail -2 "$WORK/err")"; return; }
    (($(grep -c $'\t' "$WORK/out") == 2)) || fail "--responses: expected the 2 responses of the file: $(cat "$WORK/out")"
    # A byte-order mark is not part of the first response; after a NUL byte the rest was dropped silently.
    printf '\xEF\xBB\xBFuse apt\nreboot it\n' >"$WORK/bom.txt"
    echo "hello" | "$NABLA" chat "$WORK/c.st" --responses "$WORK/bom.txt" --top 5 >"$WORK/out" 2>"$WORK/err" ||
        { fail "chat --responses with a byte-order mark: $(tail -2 "$WORK/err")"; return; }
    grep -q $'\tuse apt$' "$WORK/out" || fail "--responses: the mark stayed in the first response: $(cat "$WORK/out")"
    printf 'use apt\n\0reboot it\n' >"$WORK/nul.txt"
    echo "hello" | expect_fail "$NABLA" chat "$WORK/c.st" --responses "$WORK/nul.txt" && expect_err "nul.txt: a NUL byte at offset 8"
    # The stored lengths size the token buffers: 2^56 tokens times a batch of 256 wrapped to 0 bytes (a heap
    # overflow); a damaged value is refused, naming the file and the key.
    command -v python3 >/dev/null || return 0
    set_meta "$WORK/c.st" "$WORK/cut.st" nabla.chat.max_response=$((1 << 56)) || { fail "rewriting the model's metadata"; return; }
    echo "hello" | expect_fail "$NABLA" chat "$WORK/cut.st" --responses "$WORK/bank.txt" &&
        expect_err "cut.st: __metadata__ 'nabla.chat.max_response': expected an integer in \[1, 100000\], got '72057594037927936'"
    expect_fail "$NABLA" chat eval "$WORK/cut.st" "$CHAT_DATA/valid.csv" && expect_err "cut.st: __metadata__ 'nabla.chat.max_response'"
}

# The interactive chat's --json lines, and the refusals of chat eval and
# chat that no test reached: a file of the wrong layout, --valid without
# --tfidf-weight, an empty bank, a model without one.
cli_chat_json_and_layout_errors() {
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 1 --out "$WORK/c.st" >/dev/null 2>"$WORK/err" ||
        { fail "train: $(tail -2 "$WORK/err")"; return; }
    printf 'how do i mount a usb disk\nsound does not play\n' | "$NABLA" chat "$WORK/c.st" --top 3 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "chat --json: $(tail -2 "$WORK/err")"; return; }
    (($(wc -l <"$WORK/out") == 2)) || fail "expected one JSON line per message: $(cat "$WORK/out")"
    local m
    for m in 1 2; do
        local line scores
        line=$(sed -n "${m}p" "$WORK/out")
        [[ $line == '{"message": '$m', "responses": [{"score": '* ]] || fail "line $m: $line"
        scores=$(grep -o '"score": [0-9.e-]*' <<<"$line" | sed 's/"score": //' | tr '\n' ' ')
        # three responses, sigma of the logits: in (0, 1), best first
        awk -v s="$scores" 'BEGIN { n = split(s, v, " "); ok = n == 3
            for (i = 1; i <= n; i++) ok = ok && v[i] > 0 && v[i] < 1 && (i == 1 || v[i] <= v[i - 1]); exit !ok }' ||
            fail "line $m: scores '$scores'"
        (($(grep -o '"text": "' <<<"$line" | wc -l) == 3)) || fail "line $m: texts: $line"
    done
    expect_fail "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/train.csv" &&
        expect_err "train.csv is in the train layout; eval needs Context,Ground Truth Utterance,Distractor_0"
    "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --valid "$CHAT_DATA/valid.csv" >/dev/null 2>"$WORK/err"
    (($? == 2)) || fail "--valid without --tfidf-weight should be a usage error"
    expect_err "\-\-valid and --idf go with --tfidf-weight"
    expect_fail "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --tfidf-weight auto --valid "$CHAT_DATA/train.csv" &&
        expect_err "train.csv: --valid needs the test layout"
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --valid "$CHAT_DATA/train.csv" --out "$WORK/v.st" &&
        expect_err "train.csv: --valid needs the test layout"
    [[ ! -e $WORK/v.st ]] || fail "a refused training wrote a model"
    : >"$WORK/empty.txt"
    echo hello | expect_fail "$NABLA" chat "$WORK/c.st" --responses "$WORK/empty.txt" && expect_err "empty.txt: no responses in the bank"
    command -v python3 >/dev/null || return 0
    set_meta "$WORK/c.st" "$WORK/nobank.st" nabla.chat.bank= || { fail "rewriting the model's metadata"; return; }
    echo hello | expect_fail "$NABLA" chat "$WORK/nobank.st" && expect_err "nobank.st holds no response bank"
}

# Stopped by --steps mid-epoch and resumed, training ends where an
# uninterrupted run ends; another training file (another vocabulary) is refused.
cli_chat_resume_matches_uninterrupted() {
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 3 --out "$WORK/a.st" --log "$WORK/a.csv" --json >"$WORK/a" 2>/dev/null ||
        { fail "run A"; return; }
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 3 --steps 20 --out "$WORK/b.st" --log "$WORK/b.csv" >/dev/null 2>&1 ||
        { fail "run B1"; return; }
    "$NABLA" chat train "$CHAT_DATA/train.csv" --valid "$CHAT_DATA/valid.csv" --resume "$WORK/b.st" --epochs 3 --log "$WORK/b.csv" --json \
        >"$WORK/b" 2>"$WORK/err" || { fail "run B2: $(tail -2 "$WORK/err")"; return; }
    local la lb
    la=$(json_field valid_loss "$WORK/a") lb=$(json_field valid_loss "$WORK/b")
    [[ -n $la && $la == "$lb" ]] || fail "resumed run differs: validation loss $la vs $lb"
    cmp -s <(cut -d, -f1-7 "$WORK/a.csv") <(cut -d, -f1-7 "$WORK/b.csv") || fail "logs differ: $(cat "$WORK/a.csv" "$WORK/b.csv")"
    head -40 "$CHAT_DATA/train.csv" >"$WORK/other.csv"
    expect_fail "$NABLA" chat train "$WORK/other.csv" --resume "$WORK/b.st" && expect_err "vocabulary"
}

# A damaged chat checkpoint's settings are refused, naming the file: a stored
# --max-response 2^62 wrapped the token buffer's size (P * (mc + mr)), and an
# --lr that is no number was read as 0.
cli_chat_resume_damaged_settings() {
    command -v python3 >/dev/null || return 0
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 2 --steps 5 --out "$WORK/b.st" >/dev/null 2>&1 ||
        { fail "train"; return; }
    set_meta "$WORK/b.st" "$WORK/r.st" nabla.chat.max_response=$((1 << 62)) &&
        set_meta "$WORK/b.st" "$WORK/l.st" nabla.chat.lr=fast && set_meta "$WORK/b.st" "$WORK/s.st" nabla.chat.loss_sum=1.5x &&
        set_meta "$WORK/b.st" "$WORK/n.st" nabla.chat.loss_n=-3 && set_meta "$WORK/b.st" "$WORK/p.st" nabla.chat.pos=70 ||
        { fail "rewriting the checkpoint's metadata"; return; }
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/r.st" --epochs 2 &&
        expect_err "r.st: the stored --max-response 4611686018427387904 is not an integer in \\[1, 100000\\]"
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/l.st" --epochs 2 &&
        expect_err "l.st: __metadata__ 'nabla.chat.lr': expected a number, got 'fast'"
    # The epoch's running loss was read with strtod and no check: a damaged value became 0 in the log row.
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/s.st" --epochs 2 &&
        expect_err "s.st: __metadata__ 'nabla.chat.loss_sum': expected a number, got '1.5x'"
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/n.st" --epochs 2 &&
        expect_err "n.st: __metadata__ 'nabla.chat.loss_n': expected an integer >= 0, got '-3'"
    # The place in the epoch is whole steps of the batch (16 here): 70 rows
    # would go on with batches an uninterrupted run never drew.
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/p.st" --epochs 2 &&
        expect_err "p.st: __metadata__ 'nabla.chat.pos' 70: expected a multiple of its batch 16"
    "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/b.st" --epochs 2 >/dev/null 2>"$WORK/err" ||
        fail "resuming the undamaged checkpoint: $(tail -1 "$WORK/err")"
}

# chat train --resume keeps the checkpoint's --bank (the command printed on
# a signal does not repeat it): the final model once stored up to the
# default 50,000 responses instead of the run's 5.
cli_chat_resume_keeps_bank() {
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 2 --bank 5 --steps 10 --out "$WORK/b.st" >/dev/null 2>&1 ||
        { fail "run B1"; return; }
    "$NABLA" chat train "$CHAT_DATA/train.csv" --valid "$CHAT_DATA/valid.csv" --resume "$WORK/b.st" --epochs 2 >/dev/null 2>"$WORK/err" ||
        { fail "resume: $(tail -2 "$WORK/err")"; return; }
    echo "how do i mount a usb disk" | "$NABLA" chat "$WORK/b.st" --top 1 >/dev/null 2>"$WORK/err" || { fail "chat: $(tail -2 "$WORK/err")"; return; }
    grep -q "over 5 responses" "$WORK/err" || fail "the resumed model's bank: $(tail -1 "$WORK/err")"
}

# Malformed dialogue files: the error names the file and the line.
cli_chat_malformed_csv() {
    local f
    for f in bad_quote:2:unterminated bad_columns:3:"expected 3 columns" bad_utf8:3:"invalid UTF-8" \
        bad_empty:3:"empty context" bad_label:2:"not 0 or 1"; do
        local name=${f%%:*} rest=${f#*:}
        expect_fail "$NABLA" chat train "$CHAT_DATA/$name.csv" --out "$WORK/x.st" &&
            expect_err "$name.csv:${rest%%:*}:" && expect_err "${rest#*:}"
    done
    expect_fail "$NABLA" chat eval "$WORK/none.st" "$CHAT_DATA/valid.csv"
    expect_fail "$NABLA" chat train "$CHAT_DATA/valid.csv" --out "$WORK/x.st" && expect_err "test layout"
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" && expect_err "--out"
    [[ ! -e $WORK/x.st ]] || fail "a refused run wrote a model"
}

# --tfidf-weight: W = 0 is the model alone, auto picks W on --valid and reports
# it, the interactive mode ranks with it; --idf TRAIN.csv gives the idf
# the model stores.
cli_chat_tfidf_weight() {
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --hidden 32 --epochs 4 --out "$WORK/c.st" >/dev/null 2>&1 ||
        { fail "train"; return; }
    "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --tfidf-weight 0 --json >"$WORK/w0" 2>"$WORK/err" ||
        { fail "eval W=0: $(tail -2 "$WORK/err")"; return; }
    local m c
    m=$(sed -n 's/.*"model": {\([^}]*\)}.*/\1/p' "$WORK/w0") c=$(sed -n 's/.*"combined": {\([^}]*\)}.*/\1/p' "$WORK/w0")
    [[ -n $m && $m == "$c" ]] || fail "W=0: combined ($c) is not the model ($m)"
    "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --tfidf-weight auto --valid "$CHAT_DATA/valid.csv" --json \
        >"$WORK/wa" 2>"$WORK/err" || { fail "eval auto: $(tail -2 "$WORK/err")"; return; }
    grep -q '"tfidf_weight_auto": true' "$WORK/wa" && grep -q 'chosen on' "$WORK/err" || fail "auto: $(cat "$WORK/wa")"
    local w v r
    w=$(json_field tfidf_weight "$WORK/wa") v=$(json_field valid_combined_recall_1 "$WORK/wa")
    r=$(sed -n 's/.*"combined": {"recall_1": \([0-9.]*\).*/\1/p' "$WORK/wa")
    [[ $v == "$r" ]] || fail "auto on the same file: validation recall@1 $v, combined $r"
    awk -v v="$v" -v m="$(sed -n 's/.*"model": {"recall_1": \([0-9.]*\).*/\1/p' "$WORK/wa")" 'BEGIN { exit !(v >= m) }' ||
        fail "the chosen W ($w) is worse than W = 0 on the file it was chosen on"
    expect_fail "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --tfidf-weight auto && expect_err "--valid"
    expect_fail "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --tfidf-weight -1 && expect_err "tfidf-weight"
    printf 'how do i mount a usb disk\n' | "$NABLA" chat "$WORK/c.st" --top 3 --tfidf-weight 1000 >"$WORK/out" 2>"$WORK/err" ||
        { fail "chat --tfidf-weight: $(tail -2 "$WORK/err")"; return; }
    grep -q $'\tuse mount /dev/sdb1 /mnt as root' "$WORK/out" || fail "W=1000 did not rank the matching words first: $(cat "$WORK/out")"
    "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --tfidf-weight 3 --idf "$CHAT_DATA/train.csv" --json >"$WORK/wi" 2>/dev/null ||
        { fail "--idf"; return; }
    "$NABLA" chat eval "$WORK/c.st" "$CHAT_DATA/valid.csv" --tfidf-weight 3 --json >"$WORK/ws" 2>/dev/null || { fail "W=3"; return; }
    cmp -s <(sed 's/"seconds".*//' "$WORK/wi") <(sed 's/"seconds".*//' "$WORK/ws") || fail "--idf train.csv differs from the stored idf"
}

# --negatives 3 trains (another result than 1) and a run stopped and resumed
# ends where an uninterrupted one does; a resumed run cannot change it.
cli_chat_negatives_resume() {
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 2 --negatives 3 --out "$WORK/a.st" --log "$WORK/a.csv" \
        --json >"$WORK/a" 2>/dev/null || { fail "run A"; return; }
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 2 --negatives 3 --steps 11 --out "$WORK/b.st" \
        --log "$WORK/b.csv" >/dev/null 2>&1 || { fail "run B1"; return; }
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --resume "$WORK/b.st" --negatives 2 && expect_err "negatives 3"
    "$NABLA" chat train "$CHAT_DATA/train.csv" --valid "$CHAT_DATA/valid.csv" --resume "$WORK/b.st" --epochs 2 --log "$WORK/b.csv" \
        --json >"$WORK/b" 2>"$WORK/err" || { fail "run B2: $(tail -2 "$WORK/err")"; return; }
    local la lb l1
    la=$(json_field valid_loss "$WORK/a") lb=$(json_field valid_loss "$WORK/b")
    [[ -n $la && $la == "$lb" ]] || fail "resumed run differs: validation loss $la vs $lb"
    cmp -s <(cut -d, -f1-7 "$WORK/a.csv") <(cut -d, -f1-7 "$WORK/b.csv") || fail "logs differ: $(cat "$WORK/a.csv" "$WORK/b.csv")"
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 2 --out "$WORK/one.st" --json >"$WORK/one" 2>/dev/null ||
        { fail "run K=1"; return; }
    l1=$(json_field valid_loss "$WORK/one")
    [[ $l1 != "$la" ]] || fail "--negatives 3 trained exactly as --negatives 1"
    expect_fail "$NABLA" chat train "$CHAT_DATA/train.csv" --negatives 0 --out "$WORK/x.st"
}

# --- nabla style -----------------------------------------------------------------

SKIMAGE=/usr/lib/python3/dist-packages/skimage/data

# --seed defaults to 1 in every command (style's was 0), dqn eval and play
# excepted (1000000: evaluation episodes apart from training's); the help says so.
cli_seed_default_is_one() {
    local c d
    for c in "charrnn train" "charrnn sample" "chat train" "chat eval" "chat corpus" "dqn train" "dqn eval" "dqn play" \
        fit hessian init style train "wavenet train" "wavenet generate" "wavenet synth" "wavenet features"; do
        # the --seed entry of the help, joined across its wrapped lines
        d=$("$NABLA" $c --help | sed -n '/^  --seed/,/^  -/p' | sed '$d' | tr -s ' \n' ' ')
        case $c in
        "dqn eval" | "dqn play") [[ $d == *"(default 1000000)"* ]] || fail "$c --help: $d" ;;
        *) [[ $d == *"(default 1) "* ]] || fail "$c: --seed's default is not 1: $d" ;;
        esac
    done
    # and the run is --seed 1's: the same noise and random filters, the same losses
    "$NABLA" style "$SKIMAGE/brick.png" --out "$WORK/a.png" --size 16 --iters 0 --json >"$WORK/a" 2>/dev/null &&
        "$NABLA" style "$SKIMAGE/brick.png" --out "$WORK/b.png" --size 16 --iters 0 --json --seed 1 >"$WORK/b" 2>/dev/null ||
        { fail "style --iters 0"; return; }
    [[ $(json_field initial_style_loss "$WORK/a") == $(json_field initial_style_loss "$WORK/b") ]] && cmp -s "$WORK/a.png" "$WORK/b.png" ||
        fail "style without --seed is not --seed 1: $(cat "$WORK/a") / $(cat "$WORK/b")"
}

# A small texture from noise: the style loss falls, the JSON has its fields.
cli_style_texture() {
    "$NABLA" style "$SKIMAGE/brick.png" --out "$WORK/t.png" --size 32 --iters 30 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "style texture failed: $(tail -3 "$WORK/err")"; return; }
    [[ $(wc -l <"$WORK/out") -eq 1 ]] || fail "stdout should hold only the JSON line"
    local f
    for f in content_loss style_loss total_loss iterations_per_second initial_style_loss; do
        grep -q "\"$f\"" "$WORK/out" || fail "JSON lacks $f"
    done
    local s0 s1
    s0=$(json_field initial_style_loss "$WORK/out") s1=$(json_field style_loss "$WORK/out")
    awk -v a="$s0" -v b="$s1" 'BEGIN { exit !(b * 100 <= a) }' || fail "style loss $s0 -> $s1: not 100x lower"
    [[ $(json_field content_loss "$WORK/out") == 0 ]] || fail "a texture has no content loss"
    [[ $(head -c 4 "$WORK/t.png" | od -An -c | tr -d ' ') == 211PNG ]] || fail "t.png is not a PNG"
}

# SIGTERM mid-run: the image so far is written (atomically, a PNG), the status is 143.
cli_style_signal_keeps_image() {
    local rc
    stopped_by TERM "$NABLA" style "$SKIMAGE/brick.png" --out "$WORK/s.png" --size 64 --iters 100000
    rc=$?
    ((rc == 143)) || { fail "exit status $rc, expected 143: $(tail -2 "$WORK/err")"; return; }
    grep -q "stopped by a signal after [0-9]* iterations; the image so far is in $WORK/s.png" "$WORK/err" ||
        fail "no word of the image kept: $(tail -2 "$WORK/err")"
    [[ $(head -c 4 "$WORK/s.png" | od -An -c | tr -d ' ') == 211PNG ]] || fail "s.png is not a PNG"
    ls "$WORK"/s.png.tmp* >/dev/null 2>&1 && fail "a temporary file was left"
}

# --iters 0 reports the initial image's losses: x = the content has no content loss.
cli_style_iters0() {
    "$NABLA" style "$SKIMAGE/chelsea.png" "$SKIMAGE/gravel.png" --out "$WORK/c.png" --size 40 --iters 0 \
        --init content --alpha 2 --beta 3 --json >"$WORK/out" 2>"$WORK/err" || { fail "iters 0 failed: $(cat "$WORK/err")"; return; }
    [[ $(json_field content_loss "$WORK/out") == 0 ]] || fail "content loss at x = content: $(cat "$WORK/out")"
    local s t
    s=$(json_field style_loss "$WORK/out") t=$(json_field total_loss "$WORK/out")
    awk -v s="$s" -v t="$t" 'BEGIN { d = t - 3 * s; exit !(s > 0 && d * d <= 1e-12 * t * t) }' || fail "total $t is not 3 x style $s"
    "$NABLA" style "$SKIMAGE/chelsea.png" "$SKIMAGE/gravel.png" --out "$WORK/c.png" --size 40 --iters 0 \
        --json >"$WORK/out2" 2>"$WORK/err" || { fail "noise init failed"; return; }
    awk -v c="$(json_field content_loss "$WORK/out2")" 'BEGIN { exit !(c > 0) }' || fail "noise has no content loss"
}

# Style transfer with Adam, saved every 2 iterations as JPEG; layers and weights by name.
cli_style_transfer_adam() {
    "$NABLA" style "$SKIMAGE/coffee.png" "$SKIMAGE/brick.png" --out "$WORK/s.jpg" --size 48 --iters 6 --optim adam \
        --every 2 --style-layers scale1,scale3 --style-weights 0.5,1.5 --content-layer scale3 --tv 0.1 --seed 3 \
        >"$WORK/out" 2>"$WORK/err" || { fail "adam transfer failed: $(tail -3 "$WORK/err")"; return; }
    [[ $(head -c 3 "$WORK/s.jpg" | od -An -tx1 | tr -d ' ') == ffd8ff ]] || fail "s.jpg is not a JPEG"
    grep -q "6 iterations" "$WORK/out" || fail "summary: $(cat "$WORK/out")"
    ls "$WORK" | grep -q "s.jpg.tmp" && fail "a temporary file was left"
    # the same seed gives the same image
    "$NABLA" style "$SKIMAGE/coffee.png" "$SKIMAGE/brick.png" --out "$WORK/s2.jpg" --size 48 --iters 6 --optim adam \
        --style-layers scale1,scale3 --style-weights 0.5,1.5 --content-layer scale3 --tv 0.1 --seed 3 >/dev/null 2>&1
    cmp -s "$WORK/s.jpg" "$WORK/s2.jpg" || fail "the same seed gave another image"
}

# A nabla CNN model as the feature network: its conv layers by name.
cli_style_model_features() {
    "$NABLA" init "$ROOT/examples/cnn.cfg" --out "$WORK/cnn.st" >/dev/null 2>&1 || { fail "init cnn"; return; }
    "$NABLA" style "$SKIMAGE/grass.png" --features "$WORK/cnn.st" --out "$WORK/m.png" --iters 5 --json \
        >"$WORK/out" 2>"$WORK/err" || { fail "model features failed: $(cat "$WORK/err")"; return; }
    grep -q '"width": 28, "height": 28' "$WORK/out" || fail "the model's input size is not used: $(cat "$WORK/out")"
    expect_fail "$NABLA" style "$SKIMAGE/grass.png" --features "$WORK/cnn.st" --out "$WORK/m.png" --style-layers fc1 &&
        expect_err "unknown layer 'fc1'" && expect_err "conv1, conv2"
}

# --device cuda: the network and the pixels on the GPU, L-BFGS's vectors on the
# host; the losses are the CPU's (to float rounding), for the random filters
# with a content image and total variation, and for a CNN model's features
# with Adam. A build without CUDA says so and writes no image. (L-BFGS's line
# search can turn float rounding into another step: at --size 40 with --tv
# the first step's cubic extrapolation lands 3% apart from a 2e-7 difference
# in one evaluation; the sizes here do not, and test_cuda_lbfgs checks the
# optimizer step for step.)
cli_style_device() {
    local a=("$SKIMAGE/coffee.png" "$SKIMAGE/brick.png" --size 48 --iters 10 --tv 0.1 --threads 1 --json)
    if ! "$NABLA" style "${a[@]}" --device cuda --out "$WORK/g.png" >"$WORK/g" 2>"$WORK/err"; then
        device_cuda_absent "$WORK/g.png"
        return
    fi
    "$NABLA" style "${a[@]}" --out "$WORK/c.png" >"$WORK/c" 2>/dev/null || { fail "the CPU run"; return; }
    "$NABLA" init "$ROOT/examples/cnn.cfg" --out "$WORK/cnn.st" >/dev/null 2>&1 || { fail "init cnn"; return; }
    local m=("$SKIMAGE/grass.png" --features "$WORK/cnn.st" --optim adam --iters 4 --threads 1 --json)
    "$NABLA" style "${m[@]}" --device cuda --out "$WORK/gm.png" >"$WORK/gm" 2>"$WORK/err" || { fail "model features on the GPU: $(tail -2 "$WORK/err")"; return; }
    "$NABLA" style "${m[@]}" --out "$WORK/cm.png" >"$WORK/cm" 2>/dev/null || { fail "model features on the CPU"; return; }
    local run f g c
    for run in "" m; do # c, g: the transfer; cm, gm: the model's features
        for f in content_loss style_loss iterations; do
            c=$(json_field $f "$WORK/c$run") g=$(json_field $f "$WORK/g$run")
            [[ -n $g && -n $c ]] && awk -v g="$g" -v c="$c" 'BEGIN { d = g - c; exit !(d * d <= 1e-6 * c * c) }' ||
                fail "$f${run:+ (model features)}: $g on the GPU, $c on the CPU"
        done
    done
    [[ $(head -c 4 "$WORK/g.png" | od -An -c | tr -d ' ') == 211PNG ]] || fail "g.png is not a PNG"
}

cli_style_errors() {
    local S="$SKIMAGE/brick.png"
    expect_fail "$NABLA" style "$S" --out "$WORK/e.png" --style-layers scale1,conv4_2 && expect_err "unknown layer 'conv4_2'" &&
        expect_err "scale1, scale2, scale3, scale4, scale5"
    expect_fail "$NABLA" style "$SKIMAGE/chelsea.png" "$S" --out "$WORK/e.png" --content-layer nope && expect_err "--content-layer: unknown layer 'nope'"
    expect_fail "$NABLA" style "$S" --out "$WORK/e.png" --style-weights 1,2 && expect_err "2 weights for 5 style layers"
    expect_fail "$NABLA" style "$S" --out "$WORK/e.png" --style-weights 1,x,1,1,1 && expect_err "'x' is not a weight"
    expect_fail "$NABLA" style "$WORK/none.png" --out "$WORK/e.png" && expect_err "none.png"
    head -c 3000 "$SKIMAGE/chelsea.png" >"$WORK/cut.png"
    expect_fail "$NABLA" style "$WORK/cut.png" "$S" --out "$WORK/e.png" && expect_err "cut.png"
    printf 'not an image\n' >"$WORK/text.jpg"
    expect_fail "$NABLA" style "$WORK/text.jpg" --out "$WORK/e.png" && expect_err "text.jpg"
    expect_fail "$NABLA" style "$S" --out "$WORK/e.gif" && expect_err "e.gif"
    expect_fail "$NABLA" style "$S" && expect_err "--out"
    expect_fail "$NABLA" style "$S" --out "$WORK/e.png" --init content && expect_err "needs a CONTENT"
    expect_fail "$NABLA" style "$S" --out "$WORK/e.png" --features vgg19 && expect_err "vgg19:FILE"
    expect_fail "$NABLA" style "$S" --out "$WORK/e.png" --features "vgg19:$WORK/none.st" && expect_err "none.st"
    # a safetensors file without VGG's tensors: the missing one is named
    "$NABLA" init "$ROOT/examples/mlp.cfg" --out "$WORK/mlp.st" >/dev/null 2>&1
    expect_fail "$NABLA" style "$S" --out "$WORK/e.png" --features "vgg19:$WORK/mlp.st" && expect_err "no tensor 'features.0.weight'"
    # a value no flag of this run can take is a usage error (status 2), as the flag parser's are; these said 1
    local a rc
    for a in "--style-layers scale1,conv4_2" "--style-weights 1,2" "--style-weights 1,x,1,1,1" "--init content"; do
        "$NABLA" style "$S" --out "$WORK/e.png" $a >/dev/null 2>&1
        rc=$?
        ((rc == 2)) || fail "style $a: exit status $rc, expected 2"
    done
    [[ ! -e $WORK/e.png ]] || fail "a refused run wrote an image"
}

# The speech corpus builder on 2 voices x 3 clips, read back through the
# library (examples/speech_info: every clip, its log-mel and phone frames).
cli_speech_corpus_tiny() {
    if ! command -v festival >/dev/null || ! command -v espeak-ng >/dev/null; then
        echo "  (festival or espeak-ng missing: speech corpus test skipped)"
        return
    fi
    local info
    info=$(dirname "$NABLA")/examples/speech_info
    [[ -x $info ]] || { fail "$info is not built (make examples)"; return; }
    "$ROOT/scripts/speech-corpus.sh" --out "$WORK/speech" --clips 3 --voices kal,en-us >"$WORK/out" 2>"$WORK/corpus" ||
        { fail "speech-corpus.sh failed: $(tail -3 "$WORK/corpus")"; return; }
    [[ -e $WORK/speech/stats.txt && ! -e $WORK/speech.partial ]] || fail "no stats.txt, or a .partial folder left"
    "$info" "$WORK/speech" >"$WORK/out" 2>"$WORK/err" || { fail "speech_info: $(tail -2 "$WORK/err")"; return; }
    grep -q '"speakers": 2, "clips": 6, "train": 2, "valid": 2, "test": 2,' "$WORK/out" ||
        fail "unexpected corpus: $(tail -1 "$WORK/out")"
    grep -q '"clips_with_phones": 6' "$WORK/out" || fail "clips without phone features: $(tail -1 "$WORK/out")"
    local n
    n=$(grep -c . "$WORK/speech/phones.txt")
    grep -q "\"n_phones\": $n," "$WORK/out" && ((n > 20)) || fail "phone inventory of $n"
    # espeak-ng's mnemonics are mapped onto festival's radio phone set: one inventory of at most 41
    ((n <= 41)) && ! grep -qx -e '@' -e 'oU' -e 'D' -e 'tS' "$WORK/speech/phones.txt" ||
        fail "espeak-ng phones not mapped onto festival's: $(tr '\n' ' ' <"$WORK/speech/phones.txt")"
    grep -q "no radio equivalent" "$WORK/corpus" && fail "unmapped espeak-ng phones: $(grep radio "$WORK/corpus")"
    # a cut clip and a broken manifest line are named
    local clip=$WORK/speech/wav/espeak_en_us/espeak_en_us_0001.wav
    head -c 3000 "$clip" >"$WORK/cut" && mv "$WORK/cut" "$clip"
    expect_fail "$info" "$WORK/speech" && expect_err "espeak_en_us_0001.wav: truncated"
    echo "wav/none.wav,x,y,train," >>"$WORK/speech/manifest.csv"
    expect_fail "$info" "$WORK/speech" && expect_err "manifest.csv:8: .*none.wav"
    expect_fail "$ROOT/scripts/speech-corpus.sh" --out "$WORK/s2" --clips x && expect_err "positive integer"
}

# The default dialogue corpus from a tiny SRC_DIR (tests/data/dialogue: the
# packages' paths with small files written for the test): Ubuntu layout, a
# malformed file skipped with a warning naming it, splits by group,
# deterministic for a seed, counts.json.
cli_chat_corpus_tiny() {
    local src=$ROOT/tests/data/dialogue out=$WORK/dlg
    "$NABLA" chat corpus "$src" --out "$out" --seed 3 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "chat corpus failed: $(tail -3 "$WORK/err")"; return; }
    grep -q "02_Broken.cfg:9: unterminated string" "$WORK/err" || fail "no warning naming the malformed file: $(cat "$WORK/err")"
    grep -q "riddles.dat" "$WORK/err" && fail "the fortune index riddles.dat was read"
    tail -1 "$WORK/out" | grep -q '"total_pairs":206}' || fail "unexpected pair count: $(tail -1 "$WORK/out")"
    tail -1 "$WORK/out" | grep -q '"bible":{"found":true,"files":1,"skipped":0,"conversations":2,' || fail "bible counts: $(tail -1 "$WORK/out")"
    tail -1 "$WORK/out" | grep -q '"wesnoth":{"found":true,"files":2,"skipped":1,' || fail "wesnoth counts: $(tail -1 "$WORK/out")"
    for f in train valid test; do [[ -s $out/$f.csv ]] || fail "no $f.csv"; done
    [[ -s $out/counts.json ]] || fail "no counts.json"
    [[ $(head -1 "$out/train.csv") == $'Context,Utterance,Label\r' ]] || fail "train.csv header: $(head -1 "$out/train.csv")"
    [[ $(head -1 "$out/test.csv") == $'Context,Ground Truth Utterance,Distractor_0,Distractor_1,Distractor_2,Distractor_3,Distractor_4,Distractor_5,Distractor_6,Distractor_7,Distractor_8\r' ]] ||
        fail "test.csv header: $(head -1 "$out/test.csv")"
    local n1 n0
    n1=$(grep -c ',1.$' "$out/train.csv"); n0=$(grep -c ',0.$' "$out/train.csv")
    ((n1 == n0 && n1 > 100)) || fail "train.csv: $n1 rows labelled 1, $n0 labelled 0"
    grep -q '__eou__ __eot__ ' "$out/train.csv" || fail "no multi-turn context"
    # a riddle (one group) is in one split only: its question never in two files
    for f in train valid test; do grep -o 'What is [0-9]* plus [0-9]*?' "$out/$f.csv" | sort -u >"$WORK/q.$f"; done
    [[ -z $(comm -12 "$WORK/q.train" "$WORK/q.valid") && -z $(comm -12 "$WORK/q.train" "$WORK/q.test") &&
        -z $(comm -12 "$WORK/q.valid" "$WORK/q.test") ]] || fail "a group in two splits"
    [[ -s $WORK/q.valid && -s $WORK/q.test ]] || fail "empty valid or test split"
    # the same seed gives the same files, another seed another split
    "$NABLA" chat corpus "$src" --out "$WORK/dlg2" --seed 3 >/dev/null 2>&1 || fail "second run failed"
    cmp -s "$out/test.csv" "$WORK/dlg2/test.csv" && cmp -s "$out/train.csv" "$WORK/dlg2/train.csv" ||
        fail "not deterministic for a seed"
    "$NABLA" chat corpus "$src" --out "$WORK/dlg3" --seed 4 >/dev/null 2>&1 || fail "third run failed"
    cmp -s "$out/test.csv" "$WORK/dlg3/test.csv" && fail "another seed gave the same test split"
    ls "$out" | grep -q 'tmp' && fail "temporary files left in $out"
}

cli_chat_corpus_errors() {
    "$NABLA" chat corpus --help >"$WORK/out" 2>&1 || fail "--help failed"
    grep -q "Distractor_0..8" "$WORK/out" || fail "--help does not describe the layout"
    expect_fail "$NABLA" chat corpus "$ROOT/tests/data/dialogue" && expect_err "--out DIR is required"
    expect_fail "$NABLA" chat corpus "$WORK/none" --out "$WORK/o" && expect_err "none': not a folder"
    mkdir -p "$WORK/empty"
    expect_fail "$NABLA" chat corpus "$WORK/empty" --out "$WORK/o" && expect_err "no dialogue found under"
    : >"$WORK/file"
    expect_fail "$NABLA" chat corpus "$ROOT/tests/data/dialogue" --out "$WORK/file" && expect_err "not a folder"
    expect_fail "$NABLA" chat corpus "$ROOT/tests/data/dialogue" --out "$WORK/o" --seed -1 && expect_err "seed"
}

# An --out folder that cannot be made is a usage error (status 2) caught before
# any source is read, as every command's output check is; it exited 1.
cli_chat_corpus_out_status() {
    local rc
    "$NABLA" chat corpus "$ROOT/tests/data/dialogue" --out "$WORK/none/o" >/dev/null 2>"$WORK/err"
    rc=$?
    ((rc == 2)) || fail "--out under a missing folder: status $rc, expected 2"
    expect_err "its parent folder does not exist"
    : >"$WORK/file"
    "$NABLA" chat corpus "$ROOT/tests/data/dialogue" --out "$WORK/file" >/dev/null 2>"$WORK/err"
    rc=$?
    ((rc == 2)) || fail "--out naming a file: status $rc, expected 2"
}

wavenet_data() { [[ -d $WORK/wn ]] || "$NABLA" wavenet synth "$WORK/wn" --speakers 2 --clips 3 --seconds 0.5 >/dev/null 2>&1; }

cli_wavenet_train_generate_eval() {
    wavenet_data || { fail "synth failed"; return; }
    local small=(--speakers --layers 4 --stacks 1 --residual 8 --skip 8 --segment 400 --batch 2 --lr 0.02)
    "$NABLA" wavenet train "$WORK/wn" "${small[@]}" --steps 100 --eval-every 50 --out "$WORK/w.st" --log "$WORK/w.csv" \
        --json >"$WORK/out" 2>"$WORK/err" || { fail "train failed: $(tail -3 "$WORK/err")"; return; }
    # seconds and train_seconds as charrnn train and nabla train give them (they were missing)
    for f in bits_per_sample steps_per_second samples_per_second receptive_field seconds train_seconds; do
        grep -q "\"$f\"" "$WORK/out" || fail "train JSON lacks $f"
    done
    [[ $(json_field receptive_field "$WORK/out") == 16 ]] || fail "receptive field $(json_field receptive_field "$WORK/out")"
    local b
    b=$(json_field bits_per_sample "$WORK/out")
    # untrained: about 8 bits (256 levels); 100 steps learn the tones' shape (about 5.5 bits)
    awk -v b="$b" 'BEGIN { exit !(b > 0 && b < 6.8) }' || fail "validation bits/sample after 100 steps: $b"
    head -1 "$WORK/w.csv" | grep -q "^step,train_bits_per_sample,val_bits_per_sample" || fail "log header"
    [[ $(wc -l <"$WORK/w.csv") -eq 3 ]] || fail "log should have a header and two rows"
    # eval reproduces training's validation figure
    "$NABLA" wavenet eval "$WORK/w.st" "$WORK/wn" --json >"$WORK/out" 2>"$WORK/err" || { fail "eval: $(cat "$WORK/err")"; return; }
    [[ $(json_field bits_per_sample "$WORK/out") == "$b" ]] || fail "eval $(json_field bits_per_sample "$WORK/out") vs train $b"
    # generation: a WAV per stream, deterministic for a seed, cached = naive
    "$NABLA" wavenet generate "$WORK/w.st" --seconds 0.05 --speaker spk1 --streams 2 --seed 4 --out "$WORK/g.wav" \
        --json >"$WORK/out" 2>"$WORK/err" || { fail "generate: $(cat "$WORK/err")"; return; }
    grep -q '"samples_per_second"' "$WORK/out" || fail "generate JSON lacks samples_per_second"
    [[ -s $WORK/g.wav && -s $WORK/g-1.wav ]] || fail "no WAV per stream"
    [[ $(head -c 4 "$WORK/g.wav") == RIFF ]] || fail "not a WAV file"
    "$NABLA" wavenet generate "$WORK/w.st" --seconds 0.05 --speaker 1 --seed 4 --naive --out "$WORK/n.wav" \
        >/dev/null 2>&1 || fail "naive generate failed"
    cmp -s "$WORK/g.wav" "$WORK/n.wav" || fail "cached and naive generation differ"
    "$NABLA" wavenet generate "$WORK/w.st" --seconds 0.05 --speaker 1 --seed 5 --out "$WORK/h.wav" >/dev/null 2>&1
    cmp -s "$WORK/g.wav" "$WORK/h.wav" && fail "another seed generated the same audio"
    "$NABLA" wavenet spectrogram "$WORK/g.wav" --out "$WORK/s.png" >/dev/null 2>&1 || fail "spectrogram failed"
    [[ $(head -c 4 "$WORK/s.png" | tail -c 3) == PNG ]] || fail "spectrogram is not a PNG"
}

# wavenet train --device: as cli_train_device, for WaveNet with speakers and
# with log-mel conditioning: the GPU gives the one-thread CPU run's
# validation bits per sample, the model generates on the CPU.
cli_wavenet_device() {
    wavenet_data || { fail "synth failed"; return; }
    local small=("$WORK/wn" --speakers --layers 3 --stacks 1 --residual 6 --skip 6 --segment 200 --batch 2 --steps 8
                 --eval-every 8 --val-samples 600 --threads 1 --json)
    if ! "$NABLA" wavenet train "${small[@]}" --device cuda --out "$WORK/g.st" >"$WORK/g" 2>"$WORK/err"; then
        device_cuda_absent "$WORK/g.st"
        return
    fi
    "$NABLA" wavenet train "${small[@]}" --out "$WORK/c.st" >"$WORK/c" 2>/dev/null || { fail "the CPU run"; return; }
    local g c
    g=$(json_field bits_per_sample "$WORK/g") c=$(json_field bits_per_sample "$WORK/c")
    awk -v g="$g" -v c="$c" 'BEGIN { exit !(g - c < 1e-3 && c - g < 1e-3) }' || fail "$g bits/sample on the GPU, $c on the CPU"
    "$NABLA" wavenet generate "$WORK/g.st" --seconds 0.02 --speaker 1 --out "$WORK/g.wav" >/dev/null 2>&1 ||
        fail "generating from the GPU's model"
    "$NABLA" wavenet train "${small[@]}" --cond mel --device cuda --out "$WORK/gm.st" >"$WORK/g" 2>"$WORK/err" ||
        { fail "--cond mel on the GPU: $(tail -2 "$WORK/err")"; return; }
    "$NABLA" wavenet train "${small[@]}" --cond mel --out "$WORK/cm.st" >"$WORK/c" 2>/dev/null || { fail "--cond mel, CPU"; return; }
    g=$(json_field bits_per_sample "$WORK/g") c=$(json_field bits_per_sample "$WORK/c")
    awk -v g="$g" -v c="$c" 'BEGIN { exit !(g - c < 1e-3 && c - g < 1e-3) }' ||
        fail "--cond mel: $g bits/sample on the GPU, $c on the CPU"
}

cli_wavenet_resume_matches_uninterrupted() {
    wavenet_data || { fail "synth failed"; return; }
    local small=(--speakers --layers 3 --stacks 1 --residual 8 --skip 8 --segment 300 --batch 2 --lr 0.003 --eval-every 10)
    "$NABLA" wavenet train "$WORK/wn" "${small[@]}" --steps 30 --out "$WORK/a.st" >/dev/null 2>&1 || { fail "run A"; return; }
    "$NABLA" wavenet train "$WORK/wn" "${small[@]}" --steps 10 --out "$WORK/b.st" >/dev/null 2>&1 || { fail "run B"; return; }
    "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/b.st" --steps 30 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "resume: $(tail -2 "$WORK/err")"; return; }
    [[ $(json_field run_steps "$WORK/out") == 20 && $(json_field steps "$WORK/out") == 30 ]] || fail "resume ran the wrong steps"
    "$NABLA" wavenet eval "$WORK/a.st" "$WORK/wn" --json >"$WORK/a" 2>/dev/null
    "$NABLA" wavenet eval "$WORK/b.st" "$WORK/wn" --json >"$WORK/b" 2>/dev/null
    local a b
    a=$(json_field bits_per_sample "$WORK/a") b=$(json_field bits_per_sample "$WORK/b")
    [[ -n $a && $a == "$b" ]] || fail "resumed run differs: $a vs $b bits/sample"
}

# signal_resume SIG FIELD CMD...: CMD (a training command; --out and --json
# are added) run whole, then run again and stopped by SIG once it has begun:
# exit status 128 + the signal, the message names the checkpoint and the
# command to resume, no temporary file is left, and that command, run as
# printed, ends with the whole run's FIELD (the last JSON line).
signal_resume() {
    local sig=$1 field=$2 want rc
    shift 2
    want=$([[ $sig == INT ]] && echo 130 || echo 143)
    rm -f "$WORK"/sa.st "$WORK"/sb.st
    "$NABLA" "$@" --out "$WORK/sa.st" --json >"$WORK/sa" 2>/dev/null || { fail "$1 $2: the whole run failed"; return; }
    stopped_by "$sig" "$NABLA" "$@" --out "$WORK/sb.st"
    rc=$?
    ((rc == want)) || { fail "$1 $2 SIG$sig: exit status $rc, expected $want: $(tail -2 "$WORK/err")"; return; }
    grep -q "stopped by SIG$sig; the checkpoint $WORK/sb.st holds every finished step" "$WORK/err" ||
        fail "$1 $2 SIG$sig message: $(tail -3 "$WORK/err")"
    ls "$WORK"/sb.st.tmp* >/dev/null 2>&1 && fail "$1 $2 SIG$sig left a temporary file"
    cp "$WORK/err" "$WORK/sigerr"
    local resume
    resume=$(grep -A1 "Resume with:" "$WORK/err" | tail -1 | sed 's/^ *nabla //')
    [[ $resume == *"--resume $WORK/sb.st"* ]] || { fail "$1 $2: no resume command: $(tail -2 "$WORK/err")"; return; }
    eval "\"\$NABLA\" $resume --json" >"$WORK/sb" 2>"$WORK/err" || { fail "$1 $2: $resume: $(tail -2 "$WORK/err")"; return; }
    local a b
    a=$(json_field "$field" "$WORK/sa") b=$(json_field "$field" "$WORK/sb")
    [[ -n $a && $a == "$b" ]] || fail "$1 $2 SIG$sig: the resumed run ends at $field $b, the whole run at $a"
}

# SIGINT and SIGTERM stop wavenet train and chat train between steps with a
# checkpoint, and the printed command resumes to where a whole run ends.
cli_wavenet_chat_signals_checkpoint_and_resume() {
    wavenet_data || { fail "synth failed"; return; }
    signal_resume INT bits_per_sample wavenet train "$WORK/wn" --speakers --layers 3 --stacks 1 --residual 8 \
        --skip 8 --segment 300 --batch 2 --lr 0.003 --eval-every 1000 --steps 4000
    signal_resume TERM valid_loss chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 300
}

# wavenet_resume_matches STEPS STOP ARGS...: `wavenet train` on $WORK/wn with
# ARGS for STEPS steps in one run, and stopped at STOP then resumed to STEPS:
# the two logs' steps and figures (all but the seconds) must be the same.
wavenet_resume_matches() {
    local steps=$1 stop=$2
    shift 2
    "$NABLA" wavenet train "$WORK/wn" "$@" --steps "$steps" --out "$WORK/a.st" --log "$WORK/a.csv" >/dev/null 2>&1 ||
        { fail "the uninterrupted run"; return 1; }
    "$NABLA" wavenet train "$WORK/wn" "$@" --steps "$stop" --out "$WORK/b.st" --log "$WORK/b.csv" >/dev/null 2>&1 ||
        { fail "the run stopped at $stop"; return 1; }
    "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/b.st" --steps "$steps" --log "$WORK/b.csv" >/dev/null 2>"$WORK/err" ||
        { fail "resume: $(tail -2 "$WORK/err")"; return 1; }
    cmp -s <(cut -d, -f1-3 "$WORK/a.csv") <(cut -d, -f1-3 "$WORK/b.csv") ||
        { fail "wavenet logs differ: $(cut -d, -f1-3 "$WORK/a.csv" "$WORK/b.csv")"; return 1; }
}

# The step loop's log (charrnn and wavenet train): a run stopped by --steps
# off the --eval-every cadence, or by SIGINT, and resumed writes the
# uninterrupted run's rows: the row at the stop is dropped, and the next
# row's training figure averages the steps since the cadence's last row
# (it once counted only the resumed steps).
cli_loop_resume_log_matches_uninterrupted() {
    wavenet_data || { fail "synth failed"; return; }
    wavenet_resume_matches 30 15 --speakers --layers 3 --stacks 1 --residual 8 --skip 8 --segment 300 --batch 2 \
        --lr 0.003 --eval-every 10 || return
    charrnn_corpus "$WORK/c.txt"
    local run=("$WORK/c.txt" --hidden 32 --seq 32 --batch 16 --steps 1500 --eval-every 500)
    "$NABLA" charrnn train "${run[@]}" --out "$WORK/ca.st" --log "$WORK/ca.csv" >/dev/null 2>&1 || { fail "charrnn run A"; return; }
    "$NABLA" charrnn train "${run[@]}" --out "$WORK/cb.st" --log "$WORK/cb.csv" >/dev/null 2>"$WORK/err" &
    local pid=$! i
    # the signal after the first row (step 500), with about 1,000 steps to go
    for ((i = 0; i < 200; i++)); do [[ -s $WORK/cb.csv ]] && break; sleep 0.05; done
    kill -INT $pid
    wait $pid
    (($? == 130)) || { fail "charrnn SIGINT: $(tail -2 "$WORK/err")"; return; }
    "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/cb.st" --log "$WORK/cb.csv" >/dev/null 2>"$WORK/err" ||
        { fail "charrnn resume: $(tail -2 "$WORK/err")"; return; }
    cmp -s <(cut -d, -f1-3 "$WORK/ca.csv") <(cut -d, -f1-3 "$WORK/cb.csv") ||
        fail "charrnn logs differ: $(cut -d, -f1-3 "$WORK/ca.csv" "$WORK/cb.csv")"
}

# charrnn train --resume keeps the checkpoint's --eval-every (the command
# printed on a signal does not repeat it): it once fell back to the default
# 1,000, and the resumed log lost the rows between.
cli_charrnn_resume_keeps_eval_every() {
    charrnn_corpus "$WORK/c.txt"
    local run=("$WORK/c.txt" --hidden 16 --seq 16 --batch 8 --schedule constant --eval-every 20)
    "$NABLA" charrnn train "${run[@]}" --steps 60 --out "$WORK/a.st" --log "$WORK/a.csv" >/dev/null 2>&1 || { fail "run A"; return; }
    "$NABLA" charrnn train "${run[@]}" --steps 30 --out "$WORK/b.st" --log "$WORK/b.csv" >/dev/null 2>&1 || { fail "run B"; return; }
    "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/b.st" --steps 60 --log "$WORK/b.csv" >/dev/null 2>"$WORK/err" ||
        { fail "resume: $(tail -2 "$WORK/err")"; return; }
    [[ $(cut -d, -f1 "$WORK/b.csv" | tr '\n' ' ') == "step 20 40 60 " ]] || fail "resumed log rows: $(cut -d, -f1 "$WORK/b.csv")"
    cmp -s <(cut -d, -f1-3 "$WORK/a.csv") <(cut -d, -f1-3 "$WORK/b.csv") ||
        fail "logs differ: $(cut -d, -f1-3 "$WORK/a.csv" "$WORK/b.csv")"
}

# --resume with a --log that is not this run's (another command's CSV, a log
# of other columns, a damaged row) is refused naming the file and what
# differs, the file left as it was: its rows were once kept (any first field
# in range, garbage as step 0) and written back as this run's. `nabla train`
# had its own copy of the log code (unchecked mallocs) and the same fault.
cli_resume_refuses_foreign_log() {
    charrnn_corpus "$WORK/c.txt"
    "$NABLA" charrnn train "$WORK/c.txt" --hidden 16 --seq 16 --batch 8 --steps 20 --eval-every 10 --out "$WORK/b.st" \
        >/dev/null 2>&1 || { fail "charrnn run"; return; }
    printf 'epoch,train_loss\n1,0.5\n' >"$WORK/other.csv"
    cp "$WORK/other.csv" "$WORK/keep.csv"
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/b.st" --steps 30 --log "$WORK/other.csv" &&
        expect_err "other.csv: not this run's log: its first line is 'epoch,train_loss', expected 'step,"
    cmp -s "$WORK/other.csv" "$WORK/keep.csv" || fail "charrnn: the foreign log was rewritten"
    printf 'step,train_loss_bpc,val_loss_bpc,seconds\n10,1,2,3\nabc,1,2,3\n' >"$WORK/bad.csv"
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/b.st" --steps 30 --log "$WORK/bad.csv" &&
        expect_err "bad.csv: line 3: expected a row starting with the integer step, found 'abc,1,2,3'"
    # a first field that only starts with a number, or an empty one (read as step 0, a row charrnn would keep)
    printf 'step,train_loss_bpc,val_loss_bpc,seconds\n10,1,2,3\n12x,1,2,3\n' >"$WORK/bad.csv"
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/b.st" --steps 30 --log "$WORK/bad.csv" &&
        expect_err "bad.csv: line 3: expected a row starting with the integer step, found '12x,1,2,3'"
    printf 'step,train_loss_bpc,val_loss_bpc,seconds\n,1,2,3\n' >"$WORK/bad.csv"
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/b.st" --steps 30 --log "$WORK/bad.csv" &&
        expect_err "bad.csv: line 2: expected a row starting with the integer step, found ',1,2,3'"
    # a link that loops is refused, not replaced by a new log
    ln -s loop.csv "$WORK/loop.csv"
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/b.st" --steps 30 --log "$WORK/loop.csv" &&
        expect_err "loop.csv: cannot open"
    [[ -L $WORK/loop.csv ]] || fail "the looping link --log was replaced"
    printf 'step,train_loss_bpc,val_loss_bpc,seconds\n10,1,2,3\n\0002\n' >"$WORK/nul.csv"
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/b.st" --steps 30 --log "$WORK/nul.csv" &&
        expect_err "nul.csv: a NUL byte at offset 50"

    awk 'BEGIN { for (i = 0; i < 90; i++) printf "%d,%d,%d\n", i % 3, i % 2, i % 3 }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    "$NABLA" train "$WORK/d.cfg" --data "$WORK/d.csv" --epochs 2 --steps 2 --batch 16 --out "$WORK/t.st" >/dev/null 2>&1 ||
        { fail "train run"; return; }
    expect_fail "$NABLA" train --resume "$WORK/t.st" --log "$WORK/other.csv" &&
        expect_err "other.csv: not this run's log: its first line is 'epoch,train_loss', expected 'epoch,train_loss,train_accuracy,"
    cmp -s "$WORK/other.csv" "$WORK/keep.csv" || fail "train: the foreign log was rewritten"
}

# --resume with a log of no rows (an empty file) starts it afresh; a run of
# --steps 0 logs its one row (step 0, no training loss: nan) under the header.
cli_resume_log_empty_or_zero_steps() {
    charrnn_corpus "$WORK/c.txt"
    local run=("$WORK/c.txt" --hidden 16 --seq 16 --batch 8)
    "$NABLA" charrnn train "${run[@]}" --steps 0 --out "$WORK/z.st" --log "$WORK/z.csv" >/dev/null 2>&1 || { fail "--steps 0"; return; }
    [[ $(sed -n 1p "$WORK/z.csv") == step,train_loss_bpc,val_loss_bpc,seconds && $(sed -n 2p "$WORK/z.csv") == 0,nan,* &&
        $(wc -l <"$WORK/z.csv") == 2 ]] || fail "the log of --steps 0: $(cat "$WORK/z.csv")"
    "$NABLA" charrnn train "${run[@]}" --steps 20 --eval-every 10 --out "$WORK/b.st" >/dev/null 2>&1 || { fail "charrnn run"; return; }
    : >"$WORK/empty.csv"
    "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/b.st" --steps 30 --log "$WORK/empty.csv" >/dev/null 2>"$WORK/err" ||
        fail "resume with an empty log: $(tail -1 "$WORK/err")"
    [[ $(cut -d, -f1 "$WORK/empty.csv" | tr '\n' ' ') == "step 30 " ]] || fail "the restarted log: $(cat "$WORK/empty.csv")"
}

# A wavenet checkpoint with a bad setting is refused with its name, not a
# crash (the corpus, not read yet, was once freed as garbage: abort).
# wavenet train --resume with a network shape flag (--layers 5, --residual 8,
# --speakers) trained the checkpoint's network and dropped the flag without
# a word; charrnn and chat refuse theirs. Refused, naming flag and value.
cli_wavenet_resume_keeps_the_network() {
    wavenet_data || { fail "synth failed"; return; }
    "$NABLA" wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 2 --eval-every 1 \
        --val-samples 400 --out "$WORK/a.st" >/dev/null 2>&1 || { fail "train"; return; }
    local a
    for a in "--layers 5:--layers 2" "--layers 1:--layers 2" "--stacks 2:--stacks 1" "--residual 8:--residual 4" \
        "--skip 8:--skip 4" "--skip 2:--skip 4" "--speakers:--no-speakers"; do
        cp "$WORK/a.st" "$WORK/b.st"
        "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/b.st" --steps 3 ${a%%:*} >/dev/null 2>"$WORK/err"
        (($? == 2)) || fail "--resume with ${a%%:*}: expected exit status 2"
        expect_err "b.st was trained with ${a#*:}: ${a%%:*} cannot change on --resume"
        cmp -s "$WORK/a.st" "$WORK/b.st" || fail "--resume with ${a%%:*} rewrote the checkpoint"
    done
    # the same value is no change
    "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/b.st" --steps 3 --layers 2 --no-speakers >/dev/null 2>"$WORK/err" ||
        fail "--resume with the checkpoint's own --layers: $(tail -1 "$WORK/err")"
}

# A flag that a checkpoint cannot go on with is a command line that cannot
# run: status 2 (usage), as train's --batch mid-epoch, dqn's settings and
# wavenet's network shape; charrnn, chat and train's --optim said 1.
cli_resume_conflicts_are_usage_errors() {
    yes 'the quick brown fox jumps over the lazy dog' | head -100 >"$WORK/t.txt"
    "$NABLA" charrnn train "$WORK/t.txt" --hidden 8 --steps 2 --eval-every 2 --batch 4 --seq 16 --out "$WORK/c.st" \
        >/dev/null 2>&1 || { fail "charrnn train"; return; }
    "$NABLA" chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --steps 2 --out "$WORK/h.st" >/dev/null 2>&1 ||
        { fail "chat train"; return; }
    awk 'BEGIN { srand(3); for (i = 0; i < 100; i++) printf "%.3f,%.3f,%d\n", rand(), rand(), i % 2 }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 2\n' >"$WORK/l.cfg"
    "$NABLA" train "$WORK/l.cfg" --data "$WORK/d.csv" --epochs 2 --batch 10 --steps 3 --out "$WORK/m.st" >/dev/null 2>&1 ||
        { fail "train"; return; }
    expect_usage "charrnn train $WORK/t.txt --resume $WORK/c.st --hidden 16|--hidden and --layers cannot change" \
        "charrnn train $WORK/t.txt --resume $WORK/c.st --cell gru|asks for another cell type" \
        "charrnn train $WORK/t.txt --resume $WORK/c.st --seq 8|--seq cannot change on --resume" \
        "charrnn train $WORK/t.txt --resume $WORK/c.st --batch 2|--batch cannot change on --resume" \
        "chat train $CHAT_DATA/train.csv --resume $WORK/h.st --hidden 4|a resumed run cannot change them" \
        "chat train $CHAT_DATA/train.csv --resume $WORK/h.st --negatives 3|a resumed run cannot change it" \
        "train --resume $WORK/m.st --optim adam|cannot take over its state"
}

cli_wavenet_resume_bad_checkpoint() {
    wavenet_data || { fail "synth failed"; return; }
    "$NABLA" wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 30 --eval-every 30 \
        --out "$WORK/a.st" >/dev/null 2>&1 || { fail "train"; return; }
    LC_ALL=C sed 's/"nabla.step":"30"/"nabla.step":"-3"/' "$WORK/a.st" >"$WORK/bad.st"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/bad.st" && expect_err "'nabla.step': expected an integer >= 0, got '-3'"
    # The stored settings meet the flags' ranges: --batch 2^63 became negative and --segment 2^40 sized the
    # buffers of every step; an --lr that is no number was read as 0, and a --cond of no kind was taken.
    command -v python3 >/dev/null || return 0
    set_meta "$WORK/a.st" "$WORK/b.st" nabla.batch=9223372036854775808 &&
        set_meta "$WORK/a.st" "$WORK/s.st" nabla.segment=1099511627776 && set_meta "$WORK/a.st" "$WORK/l.st" nabla.lr=fast &&
        set_meta "$WORK/a.st" "$WORK/c.st" nabla.wavenet.cond=loud || { fail "rewriting the checkpoint's metadata"; return; }
    expect_fail "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/b.st" &&
        expect_err "b.st: the stored --batch .* is not an integer in \\[1, 1024\\]"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/s.st" &&
        expect_err "s.st: the stored --segment 1099511627776 is not an integer in \\[1, 1000000\\]"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/l.st" && expect_err "l.st: __metadata__ 'nabla.lr': expected a number, got 'fast'"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/c.st" && expect_err "c.st: the stored --cond 'loud' is not"
}

# --seed at --resume: train, charrnn and wavenet go on with the checkpoint's
# random streams, so another seed is refused, as chat and dqn refuse it (it
# was once ignored, and train wrote the new seed into the checkpoint); the
# same seed is accepted.
cli_resume_refuses_another_seed() {
    awk 'BEGIN { srand(3); for (i = 0; i < 300; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + rand(), rand() - c, c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    "$NABLA" train "$WORK/d.cfg" --data "$WORK/d.csv" --steps 5 --seed 3 --out "$WORK/t.st" >/dev/null 2>&1 || { fail "train"; return; }
    expect_fail "$NABLA" train --resume "$WORK/t.st" --seed 4 && expect_err "trained with --seed 3; a resumed run cannot change it"
    "$NABLA" train --resume "$WORK/t.st" --seed 3 --steps 6 >/dev/null 2>"$WORK/err" || fail "the same --seed: $(tail -1 "$WORK/err")"
    charrnn_corpus "$WORK/c.txt"
    "$NABLA" charrnn train "$WORK/c.txt" --hidden 8 --seq 8 --batch 4 --steps 5 --seed 3 --out "$WORK/c.st" >/dev/null 2>&1 ||
        { fail "charrnn"; return; }
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/c.st" --seed 4 && expect_err "trained with --seed 3; a resumed"
    wavenet_data || { fail "synth failed"; return; }
    "$NABLA" wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 5 --seed 3 \
        --out "$WORK/w.st" >/dev/null 2>&1 || { fail "wavenet"; return; }
    expect_fail "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/w.st" --seed 4 && expect_err "trained with --seed 3; a resumed"
}

# fault_resume_log NAME K LOG MODEL RESUME... -- CMD...: CMD stopped by a
# failed rename (NABLA_FAULT=rename:K: the K-th atomic write, model or log,
# as a kill between the two would leave them), then resumed by RESUME: the
# log must equal the uninterrupted run's ($WORK/fa.csv) in the first columns.
fault_resume_log() {
    local name=$1 k=$2 cols=$3
    shift 3
    local resume=() cmd
    while [[ $1 != -- ]]; do resume+=("$1"); shift; done
    shift
    rm -f "$WORK"/fb.*
    NABLA_FAULT=rename:$k "$NABLA" "$@" --out "$WORK/fb.st" --log "$WORK/fb.csv" >/dev/null 2>&1 &&
        { fail "$name rename:$k: the fault did not stop the run"; return; }
    "$NABLA" "${resume[@]}" --resume "$WORK/fb.st" --log "$WORK/fb.csv" >/dev/null 2>"$WORK/err" ||
        { fail "$name rename:$k: resume: $(tail -2 "$WORK/err")"; return; }
    cmp -s <(cut -d, -f"$cols" "$WORK/fa.csv") <(cut -d, -f"$cols" "$WORK/fb.csv") ||
        fail "$name rename:$k: the resumed log lost rows: $(cut -d, -f1 "$WORK/fb.csv" | tr '\n' ' ')"
}

# Every training command writes its log before its checkpoint: a run that
# dies between the two (here: the second's rename fails) resumes to the
# uninterrupted run's log, trimmed of rows past the checkpoint. Written the
# other way round (as they once were), the rows between were lost.
cli_log_written_before_checkpoint() {
    local k
    awk 'BEGIN { srand(3); for (i = 0; i < 300; i++) { c = i % 3; printf "%.4f,%.4f,%d\n", c + rand(), rand() - c, c } }' >"$WORK/d.csv"
    printf '[net]\ninput = 2\n[dense]\nout = 3\n' >"$WORK/d.cfg"
    local tr=(train "$WORK/d.cfg" --data "$WORK/d.csv" --epochs 3 --batch 32)
    "$NABLA" "${tr[@]}" --out "$WORK/fa.st" --log "$WORK/fa.csv" >/dev/null 2>&1 || { fail "train"; return; }
    for k in 3 4; do fault_resume_log train $k 1-7 train -- "${tr[@]}"; done
    wavenet_data || { fail "synth failed"; return; }
    local wn=(wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 30 --eval-every 10)
    "$NABLA" "${wn[@]}" --out "$WORK/fa.st" --log "$WORK/fa.csv" >/dev/null 2>&1 || { fail "wavenet"; return; }
    for k in 3 4; do fault_resume_log wavenet $k 1-3 wavenet train "$WORK/wn" -- "${wn[@]}"; done
    local ch=(chat train "$CHAT_DATA/train.csv" "${CHAT_SMALL[@]}" --epochs 3)
    "$NABLA" "${ch[@]}" --out "$WORK/fa.st" --log "$WORK/fa.csv" >/dev/null 2>&1 || { fail "chat"; return; }
    for k in 3 4; do fault_resume_log chat $k 1-7 chat train "$CHAT_DATA/train.csv" --valid "$CHAT_DATA/valid.csv" -- "${ch[@]}"; done
    local dq=(dqn train catch --steps 1500 --seed 2 --episodes 0)
    "$NABLA" "${dq[@]}" --out "$WORK/fa.st" --log "$WORK/fa.csv" >/dev/null 2>&1 || { fail "dqn"; return; }
    for k in 9 10; do fault_resume_log dqn $k 1-7 dqn train --episodes 0 -- "${dq[@]}"; done
}

# wavenet train --resume keeps the checkpoint's --val-samples (the command
# printed on a signal does not repeat it): it once fell back to the default
# 64,000, and the resumed run's validation figures were others.
cli_wavenet_resume_keeps_val_samples() {
    wavenet_data || { fail "synth failed"; return; }
    wavenet_resume_matches 20 10 --speakers --layers 3 --stacks 1 --residual 8 --skip 8 --segment 300 --batch 2 \
        --eval-every 10 --val-samples 500
}

# charrnn train --resume with another --batch: refused, saying why (the
# checkpoint carries each stream's state); it once said only that the
# carried state was "missing or of the wrong size".
# A --minutes run stopped by a signal: the command printed to resume it asks
# for the minutes left (the budget is the run's; without it the checkpoint's
# steps or epochs applied: charrnn's default 15,000 steps, chat's --epochs).
cli_minutes_run_resumes_for_the_minutes_left() {
    charrnn_corpus "$WORK/c.txt"
    local -a runs=("charrnn train $WORK/c.txt --hidden 8 --seq 8 --batch 4"
        "chat train $ROOT/tests/data/chat/train.csv --embed 8 --hidden 8 --vocab-min 1 --epochs 100000")
    local run rc left
    for run in "${runs[@]}"; do
        # shellcheck disable=SC2086 # the words of the run
        stopped_by INT "$NABLA" $run --minutes 2 --out "$WORK/m.st"
        rc=$?
        ((rc == 130)) || { fail "${run%% *}: exit status $rc: $(tail -2 "$WORK/err")"; continue; }
        left=$(sed -n 's/.*--resume .* --minutes \([0-9.]*\)$/\1/p' "$WORK/err")
        awk -v m="$left" 'BEGIN { exit !(m > 1.5 && m < 2) }' || fail "${run%% *}: minutes left '$left': $(tail -1 "$WORK/err")"
    done
}

cli_charrnn_resume_batch() {
    charrnn_corpus "$WORK/c.txt"
    "$NABLA" charrnn train "$WORK/c.txt" --hidden 8 --seq 8 --batch 8 --steps 5 --out "$WORK/c.st" >/dev/null 2>&1 || { fail "train"; return; }
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/c.st" --batch 4 &&
        expect_err "carries the state of 8 streams (--batch 8); --batch cannot change on --resume"
    # nor can --seq: step k reads window k of every stream, under its carried state
    expect_fail "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/c.st" --seq 16 &&
        expect_err "trained on windows of 8 characters (--seq 8).*--seq cannot change on --resume"
    "$NABLA" charrnn train "$WORK/c.txt" --resume "$WORK/c.st" --batch 8 --seq 8 --steps 6 >/dev/null 2>"$WORK/err" ||
        fail "the same --batch and --seq: $(tail -1 "$WORK/err")"
}

# --seconds shorter than one sample at 16 kHz: synth wrote empty WAV files
# (exit 0) that every other verb refuses, generate failed naming itself
# twice ("wavenet generate: wavenet generate: the number of samples ...").
cli_wavenet_seconds_below_one_sample() {
    wavenet_data || { fail "synth failed"; return; }
    "$NABLA" wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 1 --eval-every 1 \
        --val-samples 400 --out "$WORK/a.st" >/dev/null 2>&1 || { fail "train"; return; }
    local c rc
    for c in "synth $WORK/tiny" "generate $WORK/a.st --out $WORK/g.wav"; do
        "$NABLA" wavenet $c --seconds 0.00001 >/dev/null 2>"$WORK/err"
        rc=$?
        ((rc == 2)) || fail "wavenet ${c%% *} --seconds 0.00001: exit status $rc, expected 2"
        expect_err "nabla wavenet ${c%% *}: --seconds 1e-05 is less than one sample at 16 kHz (at least 3.125e-05)"
    done
    [[ -e $WORK/tiny || -e $WORK/g.wav ]] && fail "--seconds below one sample wrote something"
    "$NABLA" wavenet synth "$WORK/one" --seconds 0.0001 --speakers 1 --clips 1 >/dev/null 2>&1 || fail "synth of 2 samples"
}

cli_wavenet_errors() {
    wavenet_data || { fail "synth failed"; return; }
    "$NABLA" wavenet train "$WORK/wn" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 1 \
        --out "$WORK/u.st" >/dev/null 2>&1 || { fail "tiny train failed"; return; }
    expect_fail "$NABLA" wavenet generate "$WORK/u.st" --speaker 1 --out "$WORK/x.wav" && expect_err "without speakers"
    expect_fail "$NABLA" wavenet generate "$WORK/u.st" --out "$WORK/x.mp3" && expect_err "x.mp3"
    expect_fail "$NABLA" wavenet generate "$WORK/u.st" --like "$WORK/wn/spk0/clip0.wav" --out "$WORK/x.wav" &&
        expect_err "no local conditioning"
    expect_fail "$NABLA" wavenet generate "$WORK/wn/spk0/clip0.wav" --out "$WORK/x.wav" && expect_err "clip0.wav"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --segment 100000 --steps 1 --out "$WORK/v.st" && expect_err "shorter segment"
    expect_fail "$NABLA" wavenet train "$WORK/none" --steps 1 --out "$WORK/v.st" && expect_err "none"
    expect_fail "$NABLA" wavenet eval "$WORK/u.st" "$WORK/none" && expect_err "none"
    : >"$WORK/empty.wav"
    expect_fail "$NABLA" wavenet spectrogram "$WORK/empty.wav" --out "$WORK/e.png" && expect_err "empty.wav"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --out "$WORK/v.st" --steps 1 --minutes 1 && expect_err "exclude"
}

# --cond phones: the clips' phone features from the manifest's phones column
# (.npy [frames, n_phones], n_phones from phones.txt). Never run before: a
# model trains on them and records their size; a clip without features, a
# file with the wrong number of frames and one holding a NaN are refused,
# naming the file.
cli_wavenet_phone_conditioning() {
    wavenet_data || { fail "synth failed"; return; }
    mkdir -p "$WORK/ph" && cp -r "$WORK/wn/spk0" "$WORK/wn/spk1" "$WORK/ph/"
    printf 'a\nb\nc\n' >"$WORK/ph/phones.txt"
    # 0.5 s at 16 kHz: 8000 samples, 32 frames of 256; one-hot phones, a third each
    local vals=() t
    for ((t = 0; t < 32; t++)); do
        case $((t * 3 / 32)) in 0) vals+=(1 0 0) ;; 1) vals+=(0 1 0) ;; *) vals+=(0 0 1) ;; esac
    done
    npy "$WORK/ph/good.npy" "32, 3" "${vals[@]}"
    { echo "file,speaker,split,phones"
      for s in 0 1; do for c in 0 1 2; do echo "spk$s/clip$c.wav,spk$s,train,good.npy"; done; done
    } >"$WORK/ph/manifest.csv"
    local small=(--cond phones --layers 2 --stacks 1 --residual 4 --skip 4 --segment 256 --steps 2)
    "$NABLA" wavenet train "$WORK/ph" "${small[@]}" --out "$WORK/p.st" >/dev/null 2>"$WORK/err" ||
        { fail "train --cond phones: $(tail -2 "$WORK/err")"; return; }
    grep -aq '"nabla.wavenet.cond_dim":"3"' "$WORK/p.st" || fail "the model does not hold 3 phone features"
    # the wrong number of frames (10 for 32), a NaN, a clip without features
    npy "$WORK/ph/short.npy" "10, 3" "${vals[@]:0:30}"
    sed -i '2s/good.npy/short.npy/' "$WORK/ph/manifest.csv"
    expect_fail "$NABLA" wavenet train "$WORK/ph" "${small[@]}" --out "$WORK/x.st" &&
        expect_err "short.npy: phone features of shape \[10, 3\], expected \[32, n_phones\]"
    vals[4]=nan
    npy "$WORK/ph/nan.npy" "32, 3" "${vals[@]}"
    sed -i '2s/short.npy/nan.npy/' "$WORK/ph/manifest.csv"
    expect_fail "$NABLA" wavenet train "$WORK/ph" "${small[@]}" --out "$WORK/x.st" &&
        expect_err "nan.npy: feature \[1, 1\] is NaN; expected finite numbers"
    sed -i '2s/nan.npy//' "$WORK/ph/manifest.csv"
    expect_fail "$NABLA" wavenet train "$WORK/ph" "${small[@]}" --out "$WORK/x.st" &&
        expect_err "clip0.wav: no phone features for this clip in the manifest (--cond phones)"
    [[ ! -e $WORK/x.st ]] || fail "a refused training wrote a model"
}

# eval scores the held-out clips by default; a corpus that holds none out
# (every clip train) is scored on its training clips, and says so (never ran).
cli_wavenet_eval_without_held_out_clips() {
    wavenet_data || { fail "synth failed"; return; }
    mkdir -p "$WORK/tr" && cp -r "$WORK/wn/spk0" "$WORK/wn/spk1" "$WORK/tr/"
    { echo "file,speaker,split"; for s in 0 1; do for c in 0 1 2; do echo "spk$s/clip$c.wav,spk$s,train"; done; done; } \
        >"$WORK/tr/manifest.csv"
    "$NABLA" wavenet train "$WORK/tr" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 2 \
        --out "$WORK/t.st" >/dev/null 2>&1 || { fail "tiny train failed"; return; }
    "$NABLA" wavenet eval "$WORK/t.st" "$WORK/tr" --json >"$WORK/out" 2>"$WORK/err" || { fail "eval: $(cat "$WORK/err")"; return; }
    grep -q "of 6 clip(s) (split train: none is held out" "$WORK/out" || fail "no fallback note: $(head -1 "$WORK/out")"
    grep -q '"split": "train"' "$WORK/out" && [[ $(json_field clips "$WORK/out") == 6 ]] || fail "JSON: $(tail -1 "$WORK/out")"
    # asked for explicitly, an empty split is still an error
    "$NABLA" wavenet eval "$WORK/t.st" "$WORK/tr" --split test >/dev/null 2>"$WORK/err" && fail "--split test with no test clips passed"
}

cli_wavenet_mel_conditioning() {
    wavenet_data || { fail "synth failed"; return; }
    "$NABLA" wavenet train "$WORK/wn" --cond mel --layers 3 --stacks 1 --residual 8 --skip 8 --segment 512 --steps 4 \
        --out "$WORK/c.st" --json >"$WORK/out" 2>"$WORK/err" || { fail "train --cond mel: $(tail -2 "$WORK/err")"; return; }
    grep -q "80 features upsampled to 16 channels" "$WORK/err" || fail "the default width is not 16: $(head -3 "$WORK/err")"
    "$NABLA" wavenet generate "$WORK/c.st" --like "$WORK/wn/spk1/clip0.wav" --seconds 0.1 --out "$WORK/r.wav" \
        >/dev/null 2>"$WORK/err" || fail "generate --like: $(cat "$WORK/err")"
    [[ -s $WORK/r.wav ]] || fail "no resynthesis written"
    expect_fail "$NABLA" wavenet generate "$WORK/c.st" --out "$WORK/x.wav" && expect_err "--cond FILE.npy or --like WAV"
    # the features as a file: spectrogram --out .npy, then --cond FILE.npy resynthesizes what --like does
    "$NABLA" wavenet spectrogram "$WORK/wn/spk1/clip0.wav" --out "$WORK/f.npy" >/dev/null 2>"$WORK/err" ||
        fail "spectrogram --out .npy: $(cat "$WORK/err")"
    [[ $(head -c 6 "$WORK/f.npy" | tail -c 5) == NUMPY ]] || fail "spectrogram .npy is not NumPy's format"
    grep -q "'shape': (32, 80)" "$WORK/f.npy" || fail "features of 8000 samples are not [32, 80]: $(head -c 120 "$WORK/f.npy")"
    "$NABLA" wavenet generate "$WORK/c.st" --cond "$WORK/f.npy" --seconds 0.1 --out "$WORK/rf.wav" \
        >/dev/null 2>"$WORK/err" || fail "generate --cond FILE.npy: $(cat "$WORK/err")"
    cmp -s "$WORK/r.wav" "$WORK/rf.wav" || fail "--cond FILE.npy and --like WAV resynthesized different audio"
    # A NaN among the features (frame 1, band 2) is refused, not generated from.
    python3 -c 'import sys, struct; b = bytearray(open(sys.argv[1], "rb").read()); o = 10 + struct.unpack("<H", b[8:10])[0] + 4 * (80 + 2)
b[o:o + 4] = struct.pack("<f", float("nan")); open(sys.argv[2], "wb").write(b)' "$WORK/f.npy" "$WORK/nan.npy" &&
        expect_fail "$NABLA" wavenet generate "$WORK/c.st" --cond "$WORK/nan.npy" --seconds 0.1 --out "$WORK/x.wav" &&
        expect_err "nan.npy: feature \[1, 2\] is NaN"
    expect_fail "$NABLA" wavenet spectrogram "$WORK/wn/spk1/clip0.wav" --out "$WORK/f.txt" && expect_err ".npy"
    "$NABLA" wavenet eval "$WORK/c.st" "$WORK/wn" >/dev/null 2>&1 || fail "eval of a conditioned model failed"
    # 80 log-mel bands upsampled to 6 channels: the width is kept in the model and resume keeps it
    "$NABLA" wavenet train "$WORK/wn" --cond mel --cond-channels 6 --layers 3 --stacks 1 --residual 8 --skip 8 \
        --segment 512 --steps 4 --eval-every 2 --out "$WORK/c6.st" >/dev/null 2>"$WORK/err" ||
        { fail "train --cond-channels 6: $(tail -2 "$WORK/err")"; return; }
    grep -q "80 features upsampled to 6 channels" "$WORK/err" || fail "the width is not printed: $(cat "$WORK/err")"
    "$NABLA" wavenet generate "$WORK/c6.st" --like "$WORK/wn/spk1/clip0.wav" --seconds 0.05 --out "$WORK/r6.wav" \
        >/dev/null 2>"$WORK/err" || fail "generate from a 6-channel model: $(cat "$WORK/err")"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --resume "$WORK/c6.st" --cond-channels 7 --steps 6 &&
        expect_err "c6.st was trained with --cond-channels 6: --cond-channels 7 cannot change on --resume"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --cond-channels 6 --steps 1 --out "$WORK/x.st" &&
        expect_err "needs local conditioning"
    expect_fail "$NABLA" wavenet train "$WORK/wn" --cond mel --cond-channels 0 --steps 1 --out "$WORK/x.st" &&
        expect_err "[1, 4096]"
}

# --- wavenet quality measures (issue 16): eval splits and histogram entropy, distance, features ---------

# wav_write OUT.wav KIND N: N samples at 16 kHz, 16-bit: "alt" (+0.5, -0.5, ...) or "zero".
wav_write() {
    /usr/bin/python3 - "$@" <<'PY'
import struct, sys, wave
path, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
v = [(16384 if i % 2 == 0 else -16384) if kind == "alt" else 0 for i in range(n)]
with wave.open(path, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(struct.pack("<%dh" % n, *v))
PY
}

# Known points: the mu-law histogram of a clip alternating between two levels has 1 bit of entropy,
# silence 0; --split picks the manifest's clips; the usage line reads "MODEL DATA [options]".
cli_wavenet_eval_split_entropy() {
    wavenet_data || { fail "synth failed"; return; }
    mkdir -p "$WORK/alt/a" "$WORK/sil/a"
    wav_write "$WORK/alt/a/tone.wav" alt 8000 && wav_write "$WORK/sil/a/tone.wav" zero 8000 || { fail "wav_write"; return; }
    "$NABLA" wavenet train "$WORK/alt" --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 2 \
        --out "$WORK/e.st" >/dev/null 2>&1 || { fail "tiny train failed"; return; }
    "$NABLA" wavenet eval "$WORK/e.st" "$WORK/alt" --split all --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "eval: $(cat "$WORK/err")"; return; }
    within "$(json_field histogram_entropy_bits "$WORK/out")" 1 1e-5 || fail "two levels: $(cat "$WORK/out")"
    [[ $(json_field samples "$WORK/out") == 7999 ]] || fail "scored $(json_field samples "$WORK/out") samples, not 7999"
    grep -q '"split": "all"' "$WORK/out" || fail "JSON lacks the split"
    "$NABLA" wavenet eval "$WORK/e.st" "$WORK/sil" --split all --json >"$WORK/out" 2>/dev/null || fail "eval of silence"
    within "$(json_field histogram_entropy_bits "$WORK/out")" 0 1e-9 || fail "silence: $(cat "$WORK/out")"
    # a manifest with known splits: per speaker clip0 train, clip1 valid, clip2 test
    mkdir -p "$WORK/wnm" && cp -r "$WORK/wn/spk0" "$WORK/wn/spk1" "$WORK/wnm/"
    { echo "file,speaker,text,split"
      for s in 0 1; do echo "spk$s/clip0.wav,spk$s,,train"; echo "spk$s/clip1.wav,spk$s,,valid"; echo "spk$s/clip2.wav,spk$s,,test"; done
    } >"$WORK/wnm/manifest.csv"
    "$NABLA" wavenet train "$WORK/wnm" --speakers --layers 2 --stacks 1 --residual 4 --skip 4 --segment 100 --steps 2 \
        --out "$WORK/m.st" >/dev/null 2>&1 || { fail "train on the manifest failed"; return; }
    local split want
    for split in test:2 valid:2 held-out:4 train:2 all:6; do
        want=${split#*:} split=${split%%:*}
        "$NABLA" wavenet eval "$WORK/m.st" "$WORK/wnm" --split "$split" --json >"$WORK/out" 2>"$WORK/err" ||
            { fail "eval --split $split: $(cat "$WORK/err")"; continue; }
        [[ $(json_field clips "$WORK/out") == "$want" ]] || fail "--split $split scored $(json_field clips "$WORK/out") clips"
        awk -v h="$(json_field histogram_entropy_bits "$WORK/out")" -v b="$(json_field bits_per_sample "$WORK/out")" \
            'BEGIN { exit !(h > 3 && h <= 8 && b > 0) }' || fail "--split $split: $(cat "$WORK/out")"
    done
    # spread: a cap below the clips' samples scores that many, from every clip
    "$NABLA" wavenet eval "$WORK/m.st" "$WORK/wnm" --split all --max-samples 600 --json >"$WORK/out" 2>/dev/null
    awk -v n="$(json_field samples "$WORK/out")" 'BEGIN { exit !(n > 580 && n <= 600) }' || fail "capped: $(cat "$WORK/out")"
    rm "$WORK/wnm/spk1/clip1.wav"
    expect_fail "$NABLA" wavenet eval "$WORK/m.st" "$WORK/wnm" --split valid && expect_err "clip1.wav"
    sed -i '/valid/d' "$WORK/wnm/manifest.csv"
    expect_fail "$NABLA" wavenet eval "$WORK/m.st" "$WORK/wnm" --split valid && expect_err "no clip of the valid split"
    expect_fail "$NABLA" wavenet eval "$WORK/m.st" "$WORK/wnm" --split dev && expect_err "dev"
    "$NABLA" wavenet eval --help 2>&1 | grep -q "usage: nabla wavenet eval MODEL DATA \[options\]" || fail "eval usage line"
    "$NABLA" wavenet train --help 2>&1 | grep -q "usage: nabla wavenet train DATA \[options\]" || fail "train usage line"
}

cli_wavenet_distance() {
    mkdir -p "$WORK/d"
    wav_write "$WORK/d/alt.wav" alt 8000 && wav_write "$WORK/d/z1.wav" zero 8000 && wav_write "$WORK/d/z2.wav" zero 16000 ||
        { fail "wav_write"; return; }
    "$NABLA" wavenet distance "$WORK/d/alt.wav" "$WORK/d/alt.wav" --json >"$WORK/out" 2>/dev/null || fail "distance"
    [[ $(json_field logmel_distance "$WORK/out") == 0.000000 ]] || fail "a clip to itself: $(cat "$WORK/out")"
    # cut to the shorter: silence of 0.5 s against silence of 1 s is 0 over the 32 frames of the shorter
    "$NABLA" wavenet distance "$WORK/d/z1.wav" "$WORK/d/z2.wav" --json >"$WORK/out" 2>/dev/null || fail "distance z"
    [[ $(json_field logmel_distance "$WORK/out") == 0.000000 && $(json_field frames "$WORK/out") == 32 &&
       $(json_field other_frames "$WORK/out") == 63 ]] || fail "silences: $(cat "$WORK/out")"
    local ab ba db
    "$NABLA" wavenet distance "$WORK/d/alt.wav" "$WORK/d/z1.wav" --json >"$WORK/out" 2>/dev/null
    ab=$(json_field logmel_distance "$WORK/out") db=$(json_field logmel_distance_db "$WORK/out")
    ba=$("$NABLA" wavenet distance "$WORK/d/z1.wav" "$WORK/d/alt.wav" --json 2>/dev/null | json_field logmel_distance /dev/stdin)
    awk -v a="$ab" 'BEGIN { exit !(a > 0.1) }' || fail "a tone vs silence: $ab"
    [[ $ab == "$ba" ]] || fail "not symmetric: $ab vs $ba"
    within "$db" "$(awk -v a="$ab" 'BEGIN { print a * 20 / log(10) }')" 1e-4 || fail "dB $db for $ab"
    expect_fail "$NABLA" wavenet distance "$WORK/d/alt.wav" "$WORK/d/none.wav" && expect_err "none.wav"
    : >"$WORK/d/empty.wav"
    expect_fail "$NABLA" wavenet distance "$WORK/d/empty.wav" "$WORK/d/alt.wav" && expect_err "empty.wav"
    "$NABLA" wavenet distance "$WORK/d/alt.wav" >/dev/null 2>&1
    (($? == 2)) || fail "one recording should be a usage error"
    "$NABLA" wavenet distance --help 2>&1 | grep -q "absolute difference of their 80-band log-mel" || fail "--help does not say what it measures"
}

cli_wavenet_features_classifier() {
    "$NABLA" wavenet synth "$WORK/f" --speakers 2 --clips 10 --seconds 0.25 >/dev/null 2>&1 || { fail "synth"; return; }
    "$NABLA" wavenet features "$WORK/f" --out "$WORK/f.csv" --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "features: $(cat "$WORK/err")"; return; }
    grep -q '"clips_per_label": \[10, 10\]' "$WORK/out" || fail "labels: $(cat "$WORK/out")"
    [[ $(wc -l <"$WORK/f.csv") == 21 ]] || fail "$(wc -l <"$WORK/f.csv") lines, expected a header and 20 rows"
    head -1 "$WORK/f.csv" | grep -q '^mean0,mean1,.*,mean79,sd0,.*,sd79,speaker$' || fail "header: $(head -c 80 "$WORK/f.csv")"
    awk -F, 'NF != 161 { bad = 1 } END { exit bad }' "$WORK/f.csv" || fail "rows without 161 columns"
    # the rows are shuffled: both speakers among the last 10% that nabla train holds out is likely, not the order
    [[ $(tail -n +2 "$WORK/f.csv" | cut -d, -f161 | tr -d '\n') != 00000000001111111111 ]] || fail "rows not shuffled"
    # a silent clip: every band at ln(1e-5), no spread
    mkdir -p "$WORK/z/spk1"
    wav_write "$WORK/z/spk1/s.wav" zero 4000 || { fail "wav_write"; return; }
    "$NABLA" wavenet features "$WORK/z" --speakers-of "$WORK/f" --out "$WORK/z.csv" >/dev/null 2>&1 || fail "features z"
    tail -1 "$WORK/z.csv" | awk -F, '{ for (i = 1; i <= 80; i++) if ($i + 11.512925 > 1e-4 || $i + 11.512925 < -1e-4) bad = 1
        for (i = 81; i <= 160; i++) if ($i != 0) bad = 1; if ($161 != 1) bad = 1 } END { exit bad }' ||
        fail "silent clip of spk1: $(tail -1 "$WORK/z.csv" | cut -c1-60) ... $(tail -1 "$WORK/z.csv" | cut -d, -f158-)"
    mkdir -p "$WORK/z/nobody" && cp "$WORK/z/spk1/s.wav" "$WORK/z/nobody/"
    expect_fail "$NABLA" wavenet features "$WORK/z" --speakers-of "$WORK/f" --out "$WORK/z.csv" && expect_err "'nobody'"
    expect_fail "$NABLA" wavenet features "$WORK/f" --out "$WORK/f.txt" && expect_err "f.txt"
    expect_fail "$NABLA" wavenet features "$WORK/none" --out "$WORK/x.csv" && expect_err "none"
    # --noise: one more row per clip and SNR; at 0 dB white noise as strong as the clip fills the bands that an
    # 8 kHz tone leaves empty (band 0 rises far above the clean row's); the same seed draws the same noise
    "$NABLA" wavenet features "$WORK/f" --noise 20,0 --out "$WORK/fn.csv" --json >"$WORK/out" 2>/dev/null || fail "--noise"
    grep -q '"clips": 20, "rows": 60, .*"clips_per_label": \[10, 10\]' "$WORK/out" || fail "--noise rows: $(cat "$WORK/out")"
    [[ $(wc -l <"$WORK/fn.csv") == 61 ]] || fail "--noise 20,0: $(wc -l <"$WORK/fn.csv") lines, expected 61"
    mkdir -p "$WORK/t/spk1"
    wav_write "$WORK/t/spk1/alt.wav" alt 8000 || { fail "wav_write"; return; }
    "$NABLA" wavenet features "$WORK/t" --noise 0 --out "$WORK/t.csv" >/dev/null 2>&1 || fail "--noise 0"
    tail -n +2 "$WORK/t.csv" | sort -t, -k1,1g | awk -F, 'NR == 1 { lo = $1 } NR == 2 { hi = $1 }
        END { exit !(NR == 2 && hi - lo > 3) }' || fail "0 dB noise did not fill band 0: $(cut -d, -f1 "$WORK/t.csv" | tr '\n' ' ')"
    "$NABLA" wavenet features "$WORK/t" --noise 0 --out "$WORK/t2.csv" >/dev/null 2>&1
    cmp -s "$WORK/t.csv" "$WORK/t2.csv" || fail "--noise with the same seed differs"
    # (sorted, because --seed also shuffles the rows: only the noisy row may differ)
    "$NABLA" wavenet features "$WORK/t" --noise 0 --seed 2 --out "$WORK/t2.csv" >/dev/null 2>&1
    [[ $(sort "$WORK/t.csv") != "$(sort "$WORK/t2.csv")" ]] || fail "--noise with another seed draws the same noise"
    for bad in abc 30,,10 200 1e999; do
        "$NABLA" wavenet features "$WORK/t" --noise "$bad" --out "$WORK/t3.csv" >/dev/null 2>"$WORK/err"
        (($? == 2)) && grep -q -- "--noise $bad: expected" "$WORK/err" || fail "--noise $bad: $(cat "$WORK/err")"
    done
    [[ ! -e $WORK/t3.csv ]] || fail "a bad --noise wrote its output"
    # the classifier: examples/speaker.cfg trained by nabla train, scored on every row by nabla eval --all
    "$NABLA" train "$ROOT/examples/speaker.cfg" --data "$WORK/f.csv" --optim adam --epochs 100 --batch 4 \
        --out "$WORK/spk.st" >/dev/null 2>"$WORK/err" || { fail "train: $(tail -2 "$WORK/err")"; return; }
    "$NABLA" eval "$WORK/spk.st" --data "$WORK/f.csv" --all --json >"$WORK/out" 2>/dev/null || fail "eval --all"
    [[ $(json_field examples "$WORK/out") == 20 ]] || fail "eval --all scored $(json_field examples "$WORK/out") rows"
    awk -v a="$(json_field test_accuracy "$WORK/out")" 'BEGIN { exit !(a >= 0.9) }' || fail "speakers of tones: $(cat "$WORK/out")"
    "$NABLA" eval "$WORK/spk.st" --data "$WORK/f.csv" --json >"$WORK/out" 2>/dev/null
    [[ $(json_field examples "$WORK/out") == 2 ]] || fail "eval without --all scored $(json_field examples "$WORK/out") rows"
}

# --- nabla filter / convolve (issue 17: the convolution chapter's kernels) ------

# within A B [TOL]: |A - B| <= TOL (default 1e-6).
within() { awk -v a="$1" -v b="$2" -v t="${3:-1e-6}" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= t) }'; }

# The notes' kernels through the command: blur keeps a flat image flat, the edge kernel gives 0 on
# it and 1 at a 0 -> 1 step (I(i, j) - I(i, j - 1)); flipped (true convolution) it gives -1.
cli_filter_blur_edge() {
    local img="$ROOT/tests/data/images" f
    "$NABLA" filter "$img/flat.png" --kernel blur --out "$WORK/b.png" --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "filter blur: $(cat "$WORK/err")"; return; }
    within "$(json_field min "$WORK/out")" 0.4 1e-6 && within "$(json_field max "$WORK/out")" 0.4 1e-6 ||
        fail "blur of a flat 0.4 image: $(cat "$WORK/out")"
    [[ $(head -c 4 "$WORK/b.png" | od -An -c | tr -d ' ') == "211PNG" ]] || fail "b.png is not a PNG"
    # What was written reads back flat too (the identity kernel, from a CSV file).
    printf '0,0,0\n0,1,0\n0,0,0\n' >"$WORK/id.csv"
    "$NABLA" filter "$WORK/b.png" --kernel "$WORK/id.csv" --out "$WORK/b2.png" --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "filter id.csv: $(cat "$WORK/err")"; return; }
    [[ $(json_field min "$WORK/out") == "$(json_field max "$WORK/out")" ]] || fail "blurred image not flat: $(cat "$WORK/out")"
    "$NABLA" filter "$img/flat.png" --kernel edge --out "$WORK/e.png" --json >"$WORK/out" 2>/dev/null || { fail "edge flat"; return; }
    [[ $(json_field min "$WORK/out") == 0 && $(json_field max "$WORK/out") == 0 ]] || fail "edge of a flat image: $(cat "$WORK/out")"
    "$NABLA" filter "$img/step.png" --kernel edge --out "$WORK/e.png" --json >"$WORK/out" 2>/dev/null || { fail "edge step"; return; }
    # One column of 8 answers 1: the mean over the image is 1/8.
    [[ $(json_field min "$WORK/out") == 0 && $(json_field max "$WORK/out") == 1 ]] &&
        within "$(json_field mean "$WORK/out")" 0.125 || fail "edge of a step: $(cat "$WORK/out")"
    "$NABLA" filter "$img/step.png" --kernel edge --flip --abs --out "$WORK/e.jpg" --json >"$WORK/out" 2>/dev/null ||
        { fail "edge --flip"; return; }
    [[ $(json_field min "$WORK/out") == -1 && $(json_field max "$WORK/out") == 0 ]] || fail "flipped edge: $(cat "$WORK/out")"
    [[ $(head -c 2 "$WORK/e.jpg" | od -An -tx1 | tr -d ' ') == "ffd8" ]] || fail "e.jpg is not a JPEG"
    # The text form names the output and the kernel; --help explains cross-correlation and --flip.
    "$NABLA" filter "$img/step.png" --kernel sharpen --out "$WORK/s.png" >"$WORK/out" 2>&1 || fail "sharpen"
    grep -q "s.png: 8 x 6, kernel sharpen (3 x 3)" "$WORK/out" || fail "sharpen output: $(cat "$WORK/out")"
    "$NABLA" filter --help >"$WORK/out" 2>&1
    for f in cross-correlation "eq. 9.6" --flip "true convolution"; do
        grep -q -- "$f" "$WORK/out" || fail "filter --help lacks '$f'"
    done
}

# Kernel files and images that are wrong: the error names the file (and line and column).
cli_filter_errors() {
    local img="$ROOT/tests/data/images/step.png"
    printf '1,2\n3,4\n' >"$WORK/even.csv"
    expect_fail "$NABLA" filter "$img" --kernel "$WORK/even.csv" --out "$WORK/x.png" && expect_err "even.csv: the kernel is 2 x 2" &&
        expect_err "odd"
    printf '1,2,3\n4,5\n7,8,9\n' >"$WORK/ragged.csv"
    expect_fail "$NABLA" filter "$img" --kernel "$WORK/ragged.csv" --out "$WORK/x.png" &&
        expect_err "ragged.csv:2: 2 numbers, but line 1 has 3"
    printf '# a comment\n1,2,3\n4,x5,6\n7,8,9\n' >"$WORK/word.csv"
    expect_fail "$NABLA" filter "$img" --kernel "$WORK/word.csv" --out "$WORK/x.png" && expect_err "word.csv:3:3: 'x5' is not a finite number"
    printf '1,inf,1\n' >"$WORK/inf.csv"
    expect_fail "$NABLA" filter "$img" --kernel "$WORK/inf.csv" --out "$WORK/x.png" && expect_err "inf.csv:1:3:"
    # Finite as a double, infinite as the float32 kernel: was a white image and status 0.
    printf '0,0,0\n0,1e39,0\n0,0,0\n' >"$WORK/huge.csv"
    expect_fail "$NABLA" filter "$img" --kernel "$WORK/huge.csv" --out "$WORK/x.png" &&
        expect_err "huge.csv:2:3: '1e39' is not a finite number in float32"
    # A byte-order mark (Excel's "CSV UTF-8") before the first number is skipped.
    printf '\xEF\xBB\xBF0,0,0\n0,1,0\n0,0,0\n' >"$WORK/bom.csv"
    "$NABLA" filter "$img" --kernel "$WORK/bom.csv" --out "$WORK/bom.png" >/dev/null 2>"$WORK/err" ||
        fail "kernel with a byte-order mark: $(cat "$WORK/err")"
    : >"$WORK/empty.csv"
    expect_fail "$NABLA" filter "$img" --kernel "$WORK/empty.csv" --out "$WORK/x.png" && expect_err "empty.csv: no numbers"
    expect_fail "$NABLA" filter "$img" --kernel emboss --out "$WORK/x.png" && expect_err "blur, edge, sharpen"
    expect_fail "$NABLA" filter "$img" --kernel blur && expect_err "--out"
    expect_fail "$NABLA" filter "$img" --kernel blur --out "$WORK/x.gif" && expect_err "x.gif"
    # Images: truncated, not an image, missing.
    head -c 50 "$img" >"$WORK/cut.png"
    expect_fail "$NABLA" filter "$WORK/cut.png" --kernel blur --out "$WORK/x.png" && expect_err "cut.png: truncated PNG"
    "$NABLA" filter "$img" --kernel blur --out "$WORK/ok.jpg" >/dev/null 2>&1 || fail "write ok.jpg"
    head -c 200 "$WORK/ok.jpg" >"$WORK/cut.jpg"
    expect_fail "$NABLA" filter "$WORK/cut.jpg" --kernel blur --out "$WORK/x.png" && expect_err "cut.jpg: truncated JPEG"
    expect_fail "$NABLA" filter "$WORK/ragged.csv" --kernel blur --out "$WORK/x.png" && expect_err "ragged.csv: not a PNG or JPEG image"
    expect_fail "$NABLA" filter "$WORK/none.png" --kernel blur --out "$WORK/x.png" && expect_err "none.png"
    [[ ! -e $WORK/x.png ]] || fail "a failed filter wrote x.png"
}

# Two dice: (6 - |s - 7|) / 36 for s = 2..12, as value,probability rows; JSON and a bar chart.
cli_convolve_dice() {
    printf 'value,probability\n' >"$WORK/die.csv"
    for v in 1 2 3 4 5 6; do echo "$v,1/6" >>"$WORK/die.csv"; done
    "$NABLA" convolve "$WORK/die.csv" "$WORK/die.csv" --out "$WORK/bars.png" >"$WORK/out" 2>"$WORK/err" ||
        { fail "convolve: $(cat "$WORK/err")"; return; }
    [[ $(head -1 "$WORK/out") == "value,probability" ]] || fail "no header: $(head -1 "$WORK/out")"
    awk -F, 'NR > 1 && /^[0-9]/ { s = $1; want = (6 - (s > 7 ? s - 7 : 7 - s)) / 36; d = $2 - want; if (d < 0) d = -d;
        if (d > 1e-11) bad = 1; n++ } END { exit bad || n != 11 }' "$WORK/out" || fail "two dice: $(cat "$WORK/out")"
    grep -q "bars.png: 11 bars" "$WORK/out" || fail "no line about the chart"
    [[ $(head -c 4 "$WORK/bars.png" | od -An -c | tr -d ' ') == "211PNG" ]] || fail "bars.png is not a PNG"
    # The printed rows read back: convolving with a sure 0 gives them again.
    grep -v bars "$WORK/out" >"$WORK/sum.csv"
    printf '0,1\n' >"$WORK/zero.csv"
    "$NABLA" convolve "$WORK/sum.csv" "$WORK/zero.csv" >"$WORK/again" 2>"$WORK/err" || fail "re-read: $(cat "$WORK/err")"
    cmp -s "$WORK/sum.csv" "$WORK/again" || fail "X + 0 differs from X"
    "$NABLA" convolve "$WORK/die.csv" "$WORK/die.csv" --out "$WORK/bars.svg" --json >"$WORK/out" 2>/dev/null || fail "json"
    [[ $(wc -l <"$WORK/out") -eq 1 ]] || fail "with --json stdout should be one line"
    within "$(json_field mean "$WORK/out")" 7 1e-12 && within "$(json_field variance "$WORK/out")" 5.833333333333 1e-9 ||
        fail "mean/variance: $(cat "$WORK/out")"
    grep -q '"n": 11' "$WORK/out" || fail "JSON n"
    grep -q "<svg" "$WORK/bars.svg" || fail "bars.svg is not an SVG"
    # Non-integer values go by pairs; 0.1 + 0.2 and 0.3 + 0 are one sum.
    printf '0.1,0.5\n0.3,0.5\n' >"$WORK/a.csv"
    printf '0.2,0.5\n0,0.5\n' >"$WORK/b.csv"
    "$NABLA" convolve "$WORK/a.csv" "$WORK/b.csv" >"$WORK/out" 2>/dev/null || fail "a + b"
    [[ $(sed -n 3p "$WORK/out") == "0.3,0.5" && $(wc -l <"$WORK/out") -eq 4 ]] || fail "a + b: $(cat "$WORK/out")"
    # Without a header, after a byte-order mark (Excel's "CSV UTF-8"): the first value was refused.
    printf '\xEF\xBB\xBF1,1/2\n2,1/2\n' >"$WORK/coin.csv"
    "$NABLA" convolve "$WORK/coin.csv" "$WORK/coin.csv" >"$WORK/out" 2>"$WORK/err" ||
        fail "a byte-order mark: $(cat "$WORK/err")"
    grep -q "^3,0.5" "$WORK/out" || fail "two coins: $(cat "$WORK/out")"
}

cli_convolve_errors() {
    printf '1,0.5\n2,0.4\n' >"$WORK/short.csv"
    printf '1,1\n' >"$WORK/one.csv"
    expect_fail "$NABLA" convolve "$WORK/short.csv" "$WORK/one.csv" && expect_err "short.csv: the probabilities sum to 0.9"
    printf '1,0.5\n2,1.5\n' >"$WORK/big.csv"
    expect_fail "$NABLA" convolve "$WORK/one.csv" "$WORK/big.csv" && expect_err "big.csv:2:3: probability '1.5' is not a number in \[0, 1\]"
    printf 'value,probability\n3,0.5\n3,0.5\n' >"$WORK/dup.csv"
    expect_fail "$NABLA" convolve "$WORK/dup.csv" "$WORK/one.csv" && expect_err "dup.csv:3: value 3 again (first on line 2)"
    printf 'nan,1\n' >"$WORK/nan.csv"
    expect_fail "$NABLA" convolve "$WORK/nan.csv" "$WORK/one.csv" && expect_err "nan.csv:1:1: value 'nan' is not a finite number"
    printf '1,0.5,2\n' >"$WORK/three.csv"
    expect_fail "$NABLA" convolve "$WORK/three.csv" "$WORK/one.csv" && expect_err "three.csv:1: expected two cells"
    # the bytes after a NUL were dropped unsaid: "1\0junk" was read as 1
    printf '0,0.5\n1\0junk,0.5\n' >"$WORK/nul.csv"
    expect_fail "$NABLA" convolve "$WORK/nul.csv" "$WORK/one.csv" && expect_err "nul.csv:2: a NUL byte"
    : >"$WORK/empty.csv"
    expect_fail "$NABLA" convolve "$WORK/one.csv" "$WORK/empty.csv" && expect_err "empty.csv: no value,probability rows"
    expect_fail "$NABLA" convolve "$WORK/one.csv" "$WORK/none.csv" && expect_err "none.csv"
    expect_fail "$NABLA" convolve "$WORK/one.csv" && expect_err "Q.csv"
    expect_fail "$NABLA" convolve "$WORK/one.csv" "$WORK/one.csv" --out "$WORK/bars.gif" && expect_err "bars.gif"
}

run_selected cli "$@"
