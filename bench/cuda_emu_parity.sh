#!/usr/bin/env bash
# cuda_emu_parity.sh — the README's figures for the emulated GPU: each
# training command run twice by the same build (CUDA=emu, build-cuda-emu), on
# one CPU thread and with --device cuda (the kernels run by src/cuda/emu.cc),
# and the figure each prints, side by side. A few minutes on 2 cores (the
# CNN's 20 steps take most of it under the emulator).
#
#   bench/cuda_emu_parity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make -s BUILD=build-cuda-emu CUDA=emu build-cuda-emu/nabla >/dev/null
N=build-cuda-emu/nabla
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export NABLA_THREADS=1
field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' | tail -1; }
# row LABEL FIELD CMD...: the field of the JSON CMD prints, on the CPU and on the emulated GPU
row() {
    local label=$1 f=$2
    shift 2
    local c g
    c=$("$@" --threads 1 --json 2>/dev/null | field "$f")
    g=$("$@" --threads 1 --json --device cuda 2>/dev/null | field "$f")
    printf '%-44s %-22s %12s %12s\n' "$label" "$f" "$c" "$g"
}
printf '%-44s %-22s %12s %12s\n' run figure cpu "emulated gpu"
row "MLP, 100 steps, seed 3" test_loss $N train examples/mlp.cfg --data fashion-mnist --steps 100 --seed 3
row "MLP, 20 steps of --adversarial 0.1, seed 5" adversarial_accuracy \
    $N train examples/mlp.cfg --data fashion-mnist --steps 20 --seed 5 --adversarial 0.1
row "CNN, 1 step, seed 3" test_loss $N train examples/cnn.cfg --data fashion-mnist --steps 1 --seed 3
row "CNN, 20 steps, seed 3" test_loss $N train examples/cnn.cfg --data fashion-mnist --steps 20 --seed 3
for cell in lstm gru rnn; do
    row "charrnn $cell, 12 steps on the chat test data" val_bpc $N charrnn train tests/data/chat/train.csv --cell $cell \
        --hidden 16 --seq 12 --batch 4 --steps 12 --eval-every 12
done
$N wavenet synth "$work/wn" --speakers 2 --clips 3 --seconds 0.5 >/dev/null 2>&1
wn=("$work/wn" --speakers --layers 3 --stacks 1 --residual 6 --skip 6 --segment 200 --batch 2 --steps 8 --eval-every 8
    --val-samples 600)
row "WaveNet with speakers, 8 steps" bits_per_sample $N wavenet train "${wn[@]}" --out "$work/a.st"
row "WaveNet with speakers and log-mel, 8 steps" bits_per_sample $N wavenet train "${wn[@]}" --cond mel --out "$work/b.st"
chat=(tests/data/chat/train.csv --valid tests/data/chat/valid.csv --embed 8 --vocab-min 1 --batch 16 --lr 0.01
      --hidden 16 --steps 6 --out "$work/c.st")
row "dual encoder (chat), 6 steps" valid_loss $N chat train "${chat[@]}"
row "dual encoder (chat), 6 steps" valid_recall_1 $N chat train "${chat[@]}"
