#!/usr/bin/env bash
# cuda_check.sh — the CUDA backend's checks on a machine with an NVIDIA GPU, in
# one run of a few minutes (issue 20):
#   1. parity: the unit tests named cuda_ on the real GPU (every op with a GPU
#      path against the CPU on odd shapes with poisoned outputs, the
#      finite-difference and Hessian-vector checks on GPU tensors, the
#      optimizers step for step), then the whole unit suite on that build
#      (tests that read Debian's data files fail where those are absent);
#   2. training: `nabla train examples/M.cfg` (M in MODELS: mlp, cnn) for one
#      epoch on the CPU and with --device cuda from the same seed: test
#      accuracies side by side; and the GPU run again, which must give the
#      same figures (reproducibility);
#   3. speed: training images/s of each model at batch 128, 1024 and 4096 with
#      --device cuda, on the CPU (all cores), and PyTorch on the same GPU
#      (bench/train_torch.py --device cuda, TF32 off), with the achieved
#      TFLOP/s against the card's float32 cuBLAS rate measured by PyTorch
#      (8192^3 SGEMM, TF32 off). A run takes STEPS * 128 / batch steps (at
#      least 30), so each batch size sees about the same number of images.
#      Then the char-LSTM (hidden 256, 64 steps of BPTT, batch 32 and 256, on
#      the repository's own Markdown): characters/s the same three ways
#      (bench/charrnn_torch.py speed --device cuda); and WaveNet's reference
#      size (2 x 10 blocks, 32 channels, segments of 16,000, batch 1 and 8, on
#      `nabla wavenet synth` clips): training samples/s the same three ways
#      (bench/wavenet_torch.py speed --device cuda); and `nabla style`'s texture
#      (skimage's brick at 512 x 512, the random filters, 20 iterations of Adam
#      and of L-BFGS): iterations/s the same three ways (bench/style_torch.py
#      --device cuda), and the style loss on each; and the chatbot's dual
#      encoder for 30 steps from the same weights: validation loss and
#      pairs/s the same three ways (bench/chat_torch.py --device cuda).
#   4. compute-sanitizer over the cuda_ tests: memcheck, and racecheck of the
#      kernels with barriers (what an emulator running threads one after
#      another cannot show), each under a time limit.
#
#   bench/cuda_check.sh [DIR]   (DIR: what bench/cuda_bundle.sh made, .gpu)
#
# Output: a summary on stdout and in $OUT/cuda_check.txt (or DIR/out), and the
# raw logs and JSON lines in one archive beside it, raw.tar.gz (the device tool
# brings back 8 files at most). BUDGET (540 s) bounds the run: the sanitizer
# runs at the end take what is left. Exit 1 if no GPU answers or a check fails.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.gpu}
TOP=${OUT:-$DIR/out}
STEPS=${STEPS:-300}
MODELS=${MODELS:-mlp cnn}
BUDGET=${BUDGET:-540}
PY=${PYTHON:-python3}
mkdir -p "$TOP"
SUM=$TOP/cuda_check.txt
: >"$SUM"
say() { echo "$*" | tee -a "$SUM"; }
section() { say "== $* (at ${SECONDS} s)"; } # the times tell the next run where its minutes go

root=$(mktemp -d)
OUTDIR=$root/raw
mkdir -p "$OUTDIR"
trap 'tar -C "$OUTDIR" -czf "$TOP/raw.tar.gz" . 2>/dev/null; rm -rf "$root"' EXIT
trap 'exit 143' TERM INT # a timeout's SIGTERM still packs the logs
tar -C "$root" -xJf "$DIR/bundle.tar.xz"
# The CUDA libraries: the toolkit's, else wherever the machine has them (PyTorch ships its own).
libdir() { dirname "$(find / -name "$1" -not -path '/proc/*' 2>/dev/null | head -1)"; }
cudalib=/usr/local/cuda/lib64
[[ -e $cudalib/libcublas.so.13 && -e $cudalib/libcudart.so.13 ]] || cudalib=$(libdir libcublas.so.13):$(libdir libcudart.so.13)
export LD_LIBRARY_PATH=$root/lib:$cudalib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export FASHION_MNIST=$root/fashion-mnist
B=$root/bin
say "== $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null); $(nproc) cores"
missing=$(ldd "$B/nabla-tests" | grep 'not found')
[[ -z $missing ]] || { say "libraries not found: $missing"; exit 1; }

# failed F G T: which of the runs logged to F.cuda.err and F.torch.err gave no figure (G, T empty), and why.
failed() {
    [[ -n $2 ]] || say "      nabla cuda failed: $(tail -1 "$1.cuda.err")"
    [[ -n $3 ]] || say "      torch cuda failed: $(tail -1 "$1.torch.err")"
}

section "1. parity (nabla-tests cuda_)"
NABLA_THREADS=4 "$B/nabla-tests" cuda_ 2>&1 | tee "$OUTDIR/parity.log" | tail -30 | tee -a "$SUM"
parity=${PIPESTATUS[0]}
if grep -q "(no GPU:" "$OUTDIR/parity.log"; then
    say "no GPU answered (above): nothing of the backend was checked"
    exit 1
fi
NABLA_THREADS=8 "$B/nabla-tests" >"$OUTDIR/unit.log" 2>&1
say "whole unit suite on the CUDA build: $(tail -1 "$OUTDIR/unit.log")"

section "2. training: 1 epoch, seed 1"
for m in $MODELS; do
    for dev in cpu cuda; do
        "$B/nabla" train "examples/$m.cfg" --data "$FASHION_MNIST" --epochs 1 --seed 1 --device $dev --json \
            >"$OUTDIR/train_${m}_$dev.json" 2>"$OUTDIR/train_${m}_$dev.err"
        say "$m $dev: $(cat "$OUTDIR/train_${m}_$dev.json") $(tail -1 "$OUTDIR/train_${m}_$dev.err")"
    done
    # the same seed twice on the GPU: the same run, to every printed digit (no atomics; cuBLAS on one stream)
    "$B/nabla" train "examples/$m.cfg" --data "$FASHION_MNIST" --epochs 1 --seed 1 --device cuda --json \
        >"$OUTDIR/train_${m}_cuda2.json" 2>/dev/null
    if cmp -s <(sed 's/"seconds.*//' "$OUTDIR/train_${m}_cuda.json") <(sed 's/"seconds.*//' "$OUTDIR/train_${m}_cuda2.json"); then
        say "$m cuda again: the same results (reproducible)"
    else
        say "$m cuda again: DIFFERENT: $(cat "$OUTDIR/train_${m}_cuda2.json")"
        parity=1
    fi
done

section "3. speed: training images/s"
rate=$($PY - <<'PYEOF'
import time
import torch
torch.backends.cuda.matmul.allow_tf32 = False
a = torch.randn(8192, 8192, device="cuda")
b = torch.randn(8192, 8192, device="cuda")
for _ in range(3):
    a @ b
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(10):
    a @ b
torch.cuda.synchronize()
print(f"{2 * 8192**3 * 10 / (time.perf_counter() - t) / 1e12:.1f}")
PYEOF
)
say "float32 cuBLAS SGEMM 8192^3 through PyTorch: $rate TFLOP/s"
images_per_s() { sed -n 's/.*"train_images_per_second": \([0-9.]*\).*/\1/p' "$1"; }
for m in $MODELS; do
    flop=$($PY bench/train_torch.py "$m" --flops --batch 1)
    printf '%-5s %-6s %12s %12s %12s %8s %9s\n' model batch "nabla cuda" "nabla cpu" "torch cuda" ratio "TFLOP/s" | tee -a "$SUM"
    for batch in 128 1024 4096; do
        steps=$((STEPS * 128 / batch))
        ((steps >= 30)) || steps=30
        f=$OUTDIR/speed_${m}_$batch
        "$B/nabla" train "examples/$m.cfg" --data "$FASHION_MNIST" --steps $steps --batch $batch --device cuda --json \
            >"$f.cuda.json" 2>"$f.cuda.err"
        "$B/nabla" train "examples/$m.cfg" --data "$FASHION_MNIST" --steps $steps --batch $batch --json \
            >"$f.cpu.json" 2>/dev/null
        $PY bench/train_torch.py "$m" --device cuda --steps $steps --batch $batch >"$f.torch.json" 2>"$f.torch.err"
        g=$(images_per_s "$f.cuda.json") c=$(images_per_s "$f.cpu.json") t=$(images_per_s "$f.torch.json")
        awk -v m="$m" -v b=$batch -v g="${g:-0}" -v c="${c:-0}" -v t="${t:-0}" -v f="$flop" 'BEGIN {
            printf "%-5s %-6d %12.0f %12.0f %12.0f %7.2fx %9.3f\n", m, b, g, c, t, (t > 0 ? g / t : 0), g * f / 1e12 }' |
            tee -a "$SUM"
        failed "$f" "$g" "$t"
    done
done
say "(ratio: nabla cuda / torch cuda; TFLOP/s: nabla cuda's, from the model's multiply-add FLOPs per image)"
text=(README.md bench/README.md docs/equations.md)
chars_per_s() { sed -n 's/.*"steps_per_second": \([0-9.e+]*\).*/\1/p' "$1"; }
section "char-LSTM"
printf '%-5s %-6s %12s %12s %12s %8s\n' lstm batch "nabla cuda" "nabla cpu" "torch cuda" ratio | tee -a "$SUM"
for batch in 32 256; do
    f=$OUTDIR/speed_lstm_$batch
    lstm=(--cell lstm --hidden 256 --seq 64 --batch $batch --steps 60 --eval-every 1000000 --json)
    "$B/nabla" charrnn train "${text[@]}" "${lstm[@]}" --device cuda >"$f.cuda.json" 2>"$f.cuda.err"
    "$B/nabla" charrnn train "${text[@]}" "${lstm[@]}" >"$f.cpu.json" 2>/dev/null
    $PY bench/charrnn_torch.py speed "${text[@]}" --cell lstm --hidden 256 --seq 64 --batch $batch --steps 60 \
        --device cuda >"$f.torch.json" 2>"$f.torch.err"
    g=$(chars_per_s "$f.cuda.json") c=$(chars_per_s "$f.cpu.json") t=$(chars_per_s "$f.torch.json")
    awk -v b=$batch -v g="${g:-0}" -v c="${c:-0}" -v t="${t:-0}" -v n=$((64 * batch)) 'BEGIN {
        printf "%-5s %-6d %12.0f %12.0f %12.0f %7.2fx\n", "lstm", b, g * n, c * n, t * n, (t > 0 ? g / t : 0) }' |
        tee -a "$SUM"
    failed "$f" "$g" "$t"
done
say "(characters/s: steps/s x 64 x batch; nabla's steps/s leaves out the first two steps, PyTorch's three warm-up steps)"
section "WaveNet"
"$B/nabla" wavenet synth "$root/wn" --speakers 2 --clips 4 --seconds 4 >/dev/null 2>&1
printf '%-7s %-6s %12s %12s %12s %8s\n' wavenet batch "nabla cuda" "nabla cpu" "torch cuda" ratio | tee -a "$SUM"
for batch in 1 8; do
    f=$OUTDIR/speed_wavenet_$batch
    wn=(--layers 10 --stacks 2 --residual 32 --skip 32 --segment 16000 --batch $batch --steps 22 --eval-every 1000000
        --val-samples 16000 --json)
    "$B/nabla" wavenet train "$root/wn" "${wn[@]}" --device cuda --out "$root/g.st" >"$f.cuda.json" 2>"$f.cuda.err"
    "$B/nabla" wavenet train "$root/wn" "${wn[@]}" --out "$root/c.st" >"$f.cpu.json" 2>/dev/null
    $PY bench/wavenet_torch.py speed --device cuda --batch $batch --steps 20 --naive-samples 0 >"$f.torch.json" \
        2>"$f.torch.err"
    g=$(sed -n 's/.*"samples_per_second": \([0-9.e+]*\).*/\1/p' "$f.cuda.json")
    c=$(sed -n 's/.*"samples_per_second": \([0-9.e+]*\).*/\1/p' "$f.cpu.json")
    t=$(sed -n 's/.*"steps_per_second": \([0-9.e+]*\).*/\1/p' "$f.torch.json")
    awk -v b=$batch -v g="${g:-0}" -v c="${c:-0}" -v t="${t:-0}" 'BEGIN { t *= 16000 * b
        printf "%-7s %-6d %12.0f %12.0f %12.0f %7.2fx\n", "wavenet", b, g, c, t, (t > 0 ? g / t : 0) }' | tee -a "$SUM"
    failed "$f" "$g" "$t"
done
say "(WaveNet: training samples/s, 16,000 per segment)"
section "style"
printf '%-12s %12s %12s %12s %8s   %s\n' style "nabla cuda" "nabla cpu" "torch cuda" ratio "style loss (cuda, cpu, torch)" |
    tee -a "$SUM"
field() { sed -n 's/.*"'"$1"'": \([-0-9.e+]*\).*/\1/p' "$2" | tail -1; }
for optim in adam lbfgs; do
    f=$OUTDIR/speed_style_$optim
    st=("$root/style/brick.png" --size 512 --iters 20 --optim $optim --json)
    "$B/nabla" style "${st[@]}" --device cuda --out "$root/g.png" >"$f.cuda.json" 2>"$f.cuda.err"
    "$B/nabla" style "${st[@]}" --out "$root/c.png" >"$f.cpu.json" 2>/dev/null
    $PY bench/style_torch.py "$root/style/brick.png" --size 512 --iters 20 --optim $optim --device cuda \
        >"$f.torch.json" 2>"$f.torch.err"
    g=$(field iterations_per_second "$f.cuda.json") c=$(field iterations_per_second "$f.cpu.json")
    t=$(field iterations_per_second "$f.torch.json")
    awk -v o="texture-$optim" -v g="${g:-0}" -v c="${c:-0}" -v t="${t:-0}" -v sg="$(field style_loss "$f.cuda.json")" \
        -v sc="$(field style_loss "$f.cpu.json")" -v st="$(field style_loss "$f.torch.json")" 'BEGIN {
        printf "%-12s %12.2f %12.2f %12.2f %7.2fx   %s, %s, %s\n", o, g, c, t, (t > 0 ? g / t : 0), sg, sc, st }' |
        tee -a "$SUM"
    failed "$f" "$g" "$t"
done
say "(style: iterations/s at 512 x 512; L-BFGS's iterations take several evaluations each; PyTorch's random filters"
say " come from its own generator, so its style loss differs in value, not in cost)"
section "chat: the dual encoder (embedding 100, LSTM 256, batch 128) on tests/data/chat, 30 steps from the same weights"
chat=(tests/data/chat/train.csv --valid tests/data/chat/valid.csv --embed 100 --hidden 256 --batch 128 --lr 0.001
    --bank 0)
"$B/nabla" chat train "${chat[@]}" --steps 0 --out "$root/init.st" >/dev/null 2>&1
f=$OUTDIR/chat
"$B/nabla" chat train "${chat[@]}" --steps 30 --device cuda --out "$root/g.st" --json >"$f.cuda.json" 2>"$f.cuda.err"
"$B/nabla" chat train "${chat[@]}" --steps 30 --out "$root/c.st" --json >"$f.cpu.json" 2>/dev/null
$PY bench/chat_torch.py --init "$root/init.st" --train tests/data/chat/train.csv --valid tests/data/chat/valid.csv \
    --steps 30 --device cuda >"$f.torch.json" 2>"$f.torch.err"
printf '%-12s %14s %14s %14s %8s\n' chat "nabla cuda" "nabla cpu" "torch cuda" ratio | tee -a "$SUM"
for k in valid_loss pairs_per_second; do
    g=$(field $k "$f.cuda.json") c=$(field $k "$f.cpu.json") t=$(field $k "$f.torch.json")
    awk -v k=$k -v g="${g:-0}" -v c="${c:-0}" -v t="${t:-0}" 'BEGIN {
        fmt = k == "valid_loss" ? "%-12s %14.9f %14.9f %14.9f %7.2fx\n" : "%-12s %14.1f %14.1f %14.1f %7.2fx\n"
        printf fmt, (k == "valid_loss" ? "valid loss" : "pairs/s"), g, c, t, (t > 0 ? g / t : 0) }' | tee -a "$SUM"
done
failed "$f" "$(cat "$f.cuda.json")" "$(cat "$f.torch.json")"
say "(the three validation losses should agree to about 1e-4: the same weights, tokens and batches)"
# What the emulator cannot see, last (the figures above come back even if this runs out of time): out-of-bounds
# and uninitialized device accesses across the cuda_ tests, and shared-memory races in the kernels that use
# barriers (block reductions: softmax, cross-entropy, sums, clipping). Under gVisor the tool refuses the device.
section "4. compute-sanitizer"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [[ -x $CS ]]; then
    for run in "memcheck cuda_ 150" "racecheck test_cuda_softmax 60" "racecheck test_cuda_layout_and_sums 60" \
        "racecheck test_cuda_optimizers 60"; do
        set -- $run
        limit=$(($3 < BUDGET - SECONDS - 10 ? $3 : BUDGET - SECONDS - 10))
        if ((limit < 15)); then
            say "$1 $2: skipped, the budget of $BUDGET s is spent"
            continue
        fi
        NABLA_THREADS=4 timeout "$limit" "$CS" --tool "$1" --error-exitcode 99 "$B/nabla-tests" "$2" \
            >"$OUTDIR/sanitizer_$1_$2.log" 2>&1
        rc=$?
        case $rc in
        0) verdict="clean" ;;
        99) verdict="ERRORS: $(grep -m1 -E '^=+ (Invalid|Race|Uninitialized|Error)' "$OUTDIR/sanitizer_$1_$2.log")"; parity=1 ;;
        124) verdict="not finished in $limit s" ;;
        *) verdict="did not run (status $rc): $(grep -v '^ok\|^skip' "$OUTDIR/sanitizer_$1_$2.log" | tail -1)" ;;
        esac
        say "$1 $2: $verdict; $(grep -E '^[0-9]+ passed' "$OUTDIR/sanitizer_$1_$2.log" | tail -1)"
    done
else
    say "compute-sanitizer not found"
fi
section "done"
exit "$parity"
