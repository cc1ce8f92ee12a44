#!/usr/bin/env bash
# wavenet_parity.sh — `nabla wavenet` against PyTorch on the same weights (bench/wavenet_torch.py roundtrip):
# for an unconditioned model, a speaker model (eq. 34) and a speaker + log-mel model (eq. 33, 80 bands
# upsampled to 4 channels), each trained briefly by nabla on a synthetic folder, PyTorch loads the model
# strictly, scores the held-out clips, takes one Adam step and writes the weights back; `nabla wavenet eval`
# must give PyTorch's bits per sample before and after that step (relative difference <= RTOL, 1e-5).
# Usage: bench/wavenet_parity.sh     (env: NABLA, RTOL)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NABLA=${NABLA:-$ROOT/build/nabla}
RTOL=${RTOL:-1e-5}
PY=/usr/bin/python3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[[ -x $NABLA ]] || { echo "build nabla first (make), or set NABLA" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }
field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' | tail -1; }

"$NABLA" wavenet synth "$WORK/syn" --speakers 2 --clips 6 --seconds 0.5 2>/dev/null
SMALL=(--layers 4 --stacks 2 --residual 8 --skip 8 --segment 2000 --batch 2 --steps 300 --lr 0.01 --threads 1)
bad=0
printf '%-22s %14s %14s %14s %14s %10s\n' model "nabla before" "torch before" "nabla after" "torch after" "worst rel"
for kind in plain speakers mel; do
    case $kind in
    plain) extra=() ;;
    speakers) extra=(--speakers) ;;
    mel) extra=(--speakers --cond mel --cond-channels 4) ;;
    esac
    "$NABLA" wavenet train "$WORK/syn" "${SMALL[@]}" "${extra[@]}" --out "$WORK/$kind.st" >/dev/null 2>&1
    nb0=$("$NABLA" wavenet eval "$WORK/$kind.st" "$WORK/syn" --json 2>/dev/null | field bits_per_sample)
    pt=$($PY "$ROOT/bench/wavenet_torch.py" roundtrip "$WORK/$kind.st" "$WORK/syn" "$WORK/$kind-torch.st" --nabla "$NABLA")
    pt0=$(echo "$pt" | field bits_before)
    pt1=$(echo "$pt" | field bits_after)
    nb1=$("$NABLA" wavenet eval "$WORK/$kind-torch.st" "$WORK/syn" --json 2>/dev/null | field bits_per_sample)
    worst=$(awk -v a="$nb0" -v b="$pt0" -v c="$nb1" -v d="$pt1" 'function r(x, y) { return (x > y ? x - y : y - x) / y }
        BEGIN { w = r(a, b); if (r(c, d) > w) w = r(c, d); printf "%.2e", w }')
    flag=""
    if awk -v w="$worst" -v t="$RTOL" 'BEGIN { exit !(w > t) }'; then flag=" MISS"; bad=1; fi
    printf '%-22s %14s %14.6f %14s %14.6f %10s%s\n' "$kind" "$nb0" "$pt0" "$nb1" "$pt1" "$worst" "$flag"
done
[[ $bad == 0 ]] && echo "parity: every model within $RTOL" || { echo "parity: MISS (tolerance $RTOL)"; exit 1; }
