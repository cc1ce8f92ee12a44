#!/usr/bin/env bash
# cuda_check.sh — the CUDA backend's checks on a machine with an NVIDIA GPU, in
# one run of a few minutes (issue 20):
#   1. parity: the unit tests named cuda_ on the real GPU (every op with a GPU
#      path against the CPU on odd shapes with poisoned outputs, the
#      finite-difference and Hessian-vector checks on GPU tensors, the
#      optimizers step for step), then the whole unit suite on that build;
#   2. training: `nabla train examples/mlp.cfg` for one epoch on the CPU and
#      with --device cuda from the same seed: test accuracies side by side;
#   3. speed: MLP training images/s at batch 128, 1024 and 4096 with
#      --device cuda, on the CPU (all cores), and PyTorch on the same GPU
#      (bench/train_torch.py --device cuda, TF32 off), with the achieved
#      TFLOP/s against the card's float32 cuBLAS rate measured by PyTorch
#      (8192^3 SGEMM, TF32 off).
#
#   bench/cuda_check.sh [DIR]   (DIR: what bench/cuda_bundle.sh made, .gpu)
#
# Output: one summary on stdout and in $OUT/cuda_check.txt (or DIR/out), the
# raw JSON lines beside it. Exit 1 if a parity check fails.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.gpu}
OUTDIR=${OUT:-$DIR/out}
STEPS=${STEPS:-300}
mkdir -p "$OUTDIR"
SUM=$OUTDIR/cuda_check.txt
: >"$SUM"
say() { echo "$*" | tee -a "$SUM"; }

root=$(mktemp -d)
tar -C "$root" -xJf "$DIR/bundle.tar.xz"
# The CUDA libraries: the toolkit's, else the ones PyTorch ships.
cudalib=/usr/local/cuda/lib64
if [[ ! -e $cudalib/libcublas.so.13 ]]; then
    cudalib=$(dirname "$(find / -name 'libcublas.so.13' -not -path '/proc/*' 2>/dev/null | head -1)")
fi
export LD_LIBRARY_PATH=$root/lib:$cudalib:$(dirname "$(find / -name 'libcudart.so.13' -not -path '/proc/*' 2>/dev/null | head -1)")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export FASHION_MNIST=$root/fashion-mnist
B=$DIR/build
PY=${PYTHON:-python3}
say "== $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null); $(nproc) cores"
missing=$(ldd "$B/nabla-tests" | grep 'not found')
[[ -z $missing ]] || { say "libraries not found: $missing"; exit 1; }

say "== 1. parity (build/nabla-tests cuda_)"
NABLA_THREADS=4 "$B/nabla-tests" cuda_ 2>&1 | tee "$OUTDIR/parity.log" | tail -12 | tee -a "$SUM"
parity=${PIPESTATUS[0]}
NABLA_THREADS=8 "$B/nabla-tests" >"$OUTDIR/unit.log" 2>&1
say "whole unit suite on the CUDA build: $(tail -1 "$OUTDIR/unit.log")"

say "== 2. training: examples/mlp.cfg, 1 epoch, seed 1"
for dev in cpu cuda; do
    "$B/nabla" train examples/mlp.cfg --data "$FASHION_MNIST" --epochs 1 --seed 1 --device $dev --json \
        >"$OUTDIR/train_$dev.json" 2>"$OUTDIR/train_$dev.err"
    say "$dev: $(cat "$OUTDIR/train_$dev.json") $(tail -1 "$OUTDIR/train_$dev.err")"
done

say "== 3. speed: MLP training, $STEPS steps per run (images/s)"
flop=$($PY bench/train_torch.py mlp --flops --batch 1)
rate=$($PY - <<'EOF'
import torch, time
torch.backends.cuda.matmul.allow_tf32 = False
a = torch.randn(8192, 8192, device="cuda"); b = torch.randn(8192, 8192, device="cuda")
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(10): a @ b
torch.cuda.synchronize()
print(f"{2 * 8192**3 * 10 / (time.perf_counter() - t) / 1e12:.1f}")
EOF
)
say "float32 cuBLAS SGEMM 8192^3 through PyTorch: $rate TFLOP/s"
printf '%-6s %14s %14s %14s %10s %12s\n' batch "nabla cuda" "nabla cpu" "torch cuda" "ratio" "TFLOP/s" | tee -a "$SUM"
for batch in 128 1024 4096; do
    json() { sed -n 's/.*"train_images_per_second": \([0-9.]*\).*/\1/p' "$1"; }
    "$B/nabla" train examples/mlp.cfg --data "$FASHION_MNIST" --steps "$STEPS" --batch $batch --device cuda --json \
        >"$OUTDIR/speed_cuda_$batch.json" 2>/dev/null
    "$B/nabla" train examples/mlp.cfg --data "$FASHION_MNIST" --steps "$STEPS" --batch $batch --json \
        >"$OUTDIR/speed_cpu_$batch.json" 2>/dev/null
    $PY bench/train_torch.py mlp --device cuda --steps "$STEPS" --batch $batch >"$OUTDIR/speed_torch_$batch.json"
    g=$(json "$OUTDIR/speed_cuda_$batch.json") c=$(json "$OUTDIR/speed_cpu_$batch.json") t=$(json "$OUTDIR/speed_torch_$batch.json")
    awk -v b=$batch -v g="$g" -v c="$c" -v t="$t" -v f="$flop" \
        'BEGIN { printf "%-6d %14.0f %14.0f %14.0f %9.2fx %12.3f\n", b, g, c, t, (t > 0 ? g / t : 0), g * f / 1e12 }' | tee -a "$SUM"
done
say "(ratio: nabla cuda / torch cuda; TFLOP/s: nabla cuda's, from the MLP's multiply-add FLOPs per image)"
rm -rf "$root"
exit "$parity"
