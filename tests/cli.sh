#!/usr/bin/env bash
# cli.sh — end-to-end tests of the `nabla` command: what a user types, what
# they see, and what happens to their files when things go wrong.
# Usage: tests/cli.sh [NAME...]  (runs the tests whose names contain NAME)
set -u
NABLA=${NABLA:-$(cd "$(dirname "$0")/.." && pwd)/build/nabla}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export NABLA_THREADS=${NABLA_THREADS:-2}
FASHION=/usr/share/datasets/fashion-mnist
passed=0 failed=0

fail() { echo "  FAIL $T: $*"; ok=0; }
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
json_field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' "$2" | tail -1; }

run() {
    local name=$1
    T=$name ok=1
    local t0=$SECONDS
    "$name"
    if ((ok)); then echo "ok   $name ($((SECONDS - t0)) s)"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
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

cli_csv_data() {
    # Two separable blobs in 4 features: a dense net must learn them.
    awk 'BEGIN { srand(5); for (i = 0; i < 600; i++) { c = i % 2; printf "%.4f,%.4f,%.4f,%.4f,%d\n", c*2+rand(), rand(), c*2-rand(), rand(), c } }' >"$WORK/blobs.csv"
    printf '[net]\ninput = 4\n[dense]\nout = 8\nactivation = tanh\n[dense]\nout = 2\n' >"$WORK/small.cfg"
    "$NABLA" train "$WORK/small.cfg" --data "$WORK/blobs.csv" --epochs 20 --batch 32 --json >"$WORK/out" 2>"$WORK/err" ||
        { fail "csv train failed: $(tail -2 "$WORK/err")"; return; }
    local acc
    acc=$(json_field test_accuracy "$WORK/out")
    awk -v a="$acc" 'BEGIN { exit !(a > 0.95) }' || fail "blobs accuracy $acc"
}

# Writes Fashion-MNIST test image I as an 8-bit gray PNG (Python's standard
# library only: zlib and struct), so predict sees exactly what eval saw.
fashion_png() {
    python3 - "$FASHION/t10k-images-idx3-ubyte.gz" "$1" "$2" <<'PY'
import gzip, struct, sys, zlib
src, index, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with gzip.open(src) as f:
    f.seek(16 + 784 * index)
    pix = f.read(784)
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
    printf '[net]\ninput = 1x28x28\n' >"$WORK/notpng.png"
    expect_fail "$NABLA" predict "$WORK/p.st" "$WORK/notpng.png" && expect_err "notpng.png"
    "$NABLA" plot "$ROOT/tests/data/log.csv" --out "$WORK/big.png" >/dev/null 2>&1 &&
        { expect_fail "$NABLA" predict "$WORK/p.st" "$WORK/big.png" && expect_err "expects 28x28"; }
}

for t in $(declare -F | awk '{print $3}' | grep '^cli_'); do
    want=$(($# == 0))
    for f in "$@"; do [[ $t == *$f* ]] && want=1; done
    ((want)) && run "$t"
done
echo "$passed passed, $failed failed"
((failed == 0))
