#!/usr/bin/env bash
# wavenet_quality.sh — how good two WaveNets of the speech corpus are (issue 16's quality targets), all measured
# by nabla on the corpus's test clips (held-out sentences):
#   (a, b) bits per sample of the speaker-conditioned model (NONE: no local conditioning) and of the one that is
#          also conditioned on the log-mel (MEL), next to the entropy of the mu-law histogram of the same samples
#          (the best a model ignoring the past can do) and the 8 bits of a uniform guess;
#   (c)    speaker classifiers (examples/speaker.cfg on `nabla wavenet features`, trained by `nabla train` on the
#          real training clips: CLASSIFIERS seeds, with the clips also at the white-noise SNRs of NOISE, and on the
#          clean clips only) on the real test clips, on clips NONE generates for each speaker, and on MEL's
#          resyntheses; chance is 1 / speakers; and on MEL's resyntheses made with the next voice's speaker
#          term (generate --like CLIP --speaker OTHER): named as the asked voice if the speaker term makes the
#          voice, as the clip's own if the log-mel does;
#   (d)    the log-mel distance (`nabla wavenet distance`) from test clips to MEL's resynthesis (generate --like
#          CLIP), to NONE's unconditional generation of the same length and speaker, and to another real test
#          clip of the same speaker (a reference point: the same voice saying another sentence).
# With PHONES=MODEL (a --speakers --cond phones model of the same corpus), the same for it: its bits per
# sample, and speech it generates from a test clip's phone timings alone (the notes' TTS experiment: no
# acoustic feature of the clip enters), with the clip's speaker and with the next voice's, classified and
# measured like MEL's resyntheses.
# Usage: bench/wavenet_quality.sh CORPUS NONE.safetensors MEL.safetensors [OUT_DIR]
#        bench/wavenet_quality.sh CORPUS --minutes M [OUT_DIR]   (trains both first, side by side, 1 thread each)
# CORPUS: a folder of scripts/speech-corpus.sh (manifest.csv with the split column). OUT_DIR (default a temporary
# folder, removed) keeps the features, the classifier, the generated clips and the resyntheses.
# env: NABLA, GEN_CLIPS=4 (clips per speaker from NONE), GEN_SECONDS=2, RESYNTH=2 (test clips per speaker),
#      EVAL_SAMPLES=1000000 (samples scored per eval, spread over the clips), SEED=1, EPOCHS=100 (classifier),
#      COND_CHANNELS (with --minutes: MEL's --cond-channels, the upsampled width entering every gate; default nabla's, 16),
#      PHONES (a third model, conditioned on the corpus's phone features: see above), CLASSIFIERS=3 (seeds per
#      judge), NOISE=30,20,10 (the noise-trained judge's SNRs in dB), JUDGE_ONLY=1 (only (c), on the clips
#      already in OUT_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NABLA=${NABLA:-$ROOT/build/nabla}
GEN_CLIPS=${GEN_CLIPS:-4}
GEN_SECONDS=${GEN_SECONDS:-2}
RESYNTH=${RESYNTH:-2}
EVAL_SAMPLES=${EVAL_SAMPLES:-1000000}
SEED=${SEED:-1}
EPOCHS=${EPOCHS:-100}
CLASSIFIERS=${CLASSIFIERS:-3}
NOISE=${NOISE:-30,20,10}
export NABLA_THREADS=${NABLA_THREADS:-1}
usage() { sed -n 's/^# Usage: //p; s/^#        //p' "$0" | head -2 >&2; exit 2; }
(($# >= 3)) || usage
CORPUS=$1
[[ -x $NABLA ]] || { echo "build nabla first (make), or set NABLA" >&2; exit 1; }
[[ -f $CORPUS/manifest.csv ]] || { echo "$CORPUS: no manifest.csv (build it with scripts/speech-corpus.sh)" >&2; exit 1; }
OUT=${4:-}
if [[ -z $OUT ]]; then
    OUT=$(mktemp -d)
    trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"
field() { sed -n 's/.*"'"$1"'": \([-0-9.e]*\).*/\1/p' | tail -1; }

if [[ $2 == --minutes ]]; then
    NONE=$OUT/wn_none.safetensors MEL=$OUT/wn_mel.safetensors
    ARCH=(--speakers --layers 10 --stacks 2 --residual 32 --skip 32 --segment 16000 --batch 1 --eval-every 200
          --val-samples 64000 --seed "$SEED" --minutes "$3" --threads 1)
    echo "== training both models for $3 minutes each, side by side"
    "$NABLA" wavenet train "$CORPUS" "${ARCH[@]}" --out "$NONE" --log "$OUT/wn_none.csv" >"$OUT/train_none.out" 2>&1 &
    p1=$!
    "$NABLA" wavenet train "$CORPUS" "${ARCH[@]}" --cond mel ${COND_CHANNELS:+--cond-channels "$COND_CHANNELS"} \
        --out "$MEL" --log "$OUT/wn_mel.csv" >"$OUT/train_mel.out" 2>&1 &
    p2=$!
    wait "$p1" && wait "$p2" || { echo "training failed: see $OUT/train_*.out" >&2; exit 1; }
else
    NONE=$2 MEL=$3
fi

# The corpus's test clips, RESYNTH per speaker, and another test clip of the same speaker, and the clip's phone
# features ("-" if none): "speaker path other phones".
/usr/bin/python3 - "$CORPUS" "$RESYNTH" >"$OUT/clips.txt" <<'PY'
import csv, sys
root, per = sys.argv[1], int(sys.argv[2])
by = {}
with open(root + "/manifest.csv", newline="") as f:
    for r in csv.DictReader(f):
        if r.get("split") == "test":
            by.setdefault(r["speaker"], []).append((r["file"], r.get("phones") or ""))
for spk, files in by.items():
    for i in range(min(per, len(files) - 1)):
        ph = files[i][1]
        print(spk, root + "/" + files[i][0], root + "/" + files[-1 - i][0], root + "/" + ph if ph else "-")
PY
SPEAKERS=$(awk '{ print $1 }' "$OUT/clips.txt" | uniq)
NSPK=$(wc -w <<<"$SPEAKERS")
# next_speaker S: the voice after S in the list (the last one's is the first)
next_speaker() { awk -v s="$1" '{ a[NR] = $1 } $1 == s { k = NR } END { print a[k % NR + 1] }' <<<"$(tr ' ' '\n' <<<"$SPEAKERS")"; }

if [[ ${JUDGE_ONLY:-0} != 1 ]]; then
echo "== (a, b) bits per sample (at most $EVAL_SAMPLES samples per row, spread over the clips)"
printf '%-10s %-6s %12s %18s %8s\n' model split bits/sample "histogram entropy" uniform
MODELS="none mel${PHONES:+ phones}"
for m in $MODELS; do
    model=$NONE
    [[ $m == mel ]] && model=$MEL
    [[ $m == phones ]] && model=$PHONES
    for split in test valid; do
        "$NABLA" wavenet eval "$model" "$CORPUS" --split $split --max-samples "$EVAL_SAMPLES" --json >"$OUT/eval_$m.$split" 2>/dev/null
        printf '%-10s %-6s %12.4f %18.4f %8d\n' "wn_$m" $split "$(field bits_per_sample <"$OUT/eval_$m.$split")" \
            "$(field histogram_entropy_bits <"$OUT/eval_$m.$split")" 8
    done
done

echo "== generation: $GEN_CLIPS x $GEN_SECONDS s per speaker from wn_none; resynthesis of $RESYNTH test clips per speaker"
for s in $SPEAKERS; do
    mkdir -p "$OUT/gen_none/$s" "$OUT/resynth_mel/$s" "$OUT/same_none/$s"
    "$NABLA" wavenet generate "$NONE" --speaker "$s" --seconds "$GEN_SECONDS" --streams "$GEN_CLIPS" --temperature 1 \
        --seed "$SEED" --out "$OUT/gen_none/$s/g.wav" 2>/dev/null
done
i=0
while read -r s clip other ph; do
    i=$((i + 1))
    frames=$("$NABLA" wavenet distance "$clip" "$clip" --json 2>/dev/null | field ref_frames)
    "$NABLA" wavenet generate "$MEL" --like "$clip" --speaker "$s" --temperature 1 --seed "$SEED" \
        --out "$OUT/resynth_mel/$s/r$i.wav" 2>/dev/null
    o=$(next_speaker "$s")
    mkdir -p "$OUT/swap_asked/$o" "$OUT/swap_own/$s"
    "$NABLA" wavenet generate "$MEL" --like "$clip" --speaker "$o" --temperature 1 --seed "$SEED" \
        --out "$OUT/swap_asked/$o/w$i.wav" 2>/dev/null
    cp "$OUT/swap_asked/$o/w$i.wav" "$OUT/swap_own/$s/w$i.wav"
    "$NABLA" wavenet generate "$NONE" --speaker "$s" --seconds "$(awk -v f="$frames" 'BEGIN { print f * 256 / 16000 }')" \
        --temperature 1 --seed "$SEED" --out "$OUT/same_none/$s/u$i.wav" 2>/dev/null
    kinds="mel none real"
    if [[ -n ${PHONES:-} ]]; then
        [[ $ph != - ]] || { echo "$clip has no phone features: PHONES needs a corpus with them" >&2; exit 1; }
        mkdir -p "$OUT/resynth_phones/$s" "$OUT/swap_phones_asked/$o" "$OUT/swap_phones_own/$s"
        "$NABLA" wavenet generate "$PHONES" --cond "$ph" --speaker "$s" --seconds "$(awk -v f="$frames" 'BEGIN { print f * 256 / 16000 }')" \
            --temperature 1 --seed "$SEED" --out "$OUT/resynth_phones/$s/p$i.wav" 2>/dev/null
        "$NABLA" wavenet generate "$PHONES" --cond "$ph" --speaker "$o" --seconds "$(awk -v f="$frames" 'BEGIN { print f * 256 / 16000 }')" \
            --temperature 1 --seed "$SEED" --out "$OUT/swap_phones_asked/$o/q$i.wav" 2>/dev/null
        cp "$OUT/swap_phones_asked/$o/q$i.wav" "$OUT/swap_phones_own/$s/q$i.wav"
        kinds="$kinds phones"
    fi
    for kind in $kinds; do
        case $kind in
            mel) x=$OUT/resynth_mel/$s/r$i.wav ;;
            phones) x=$OUT/resynth_phones/$s/p$i.wav ;;
            none) x=$OUT/same_none/$s/u$i.wav ;;
            real) x=$other ;;
        esac
        "$NABLA" wavenet distance "$clip" "$x" --json 2>/dev/null | field logmel_distance >>"$OUT/dist_$kind"
    done
done <"$OUT/clips.txt"

echo "== (d) log-mel distance to $i test clips (mean absolute difference of ln band magnitudes; x 8.69 for dB)"
for kind in mel ${PHONES:+phones} none real; do
    case $kind in
        mel) what="wn_mel resynthesis (generate --like CLIP)" ;;
        phones) what="wn_phones from the clip's phones (TTS)" ;;
        none) what="wn_none generation, same speaker and length" ;;
        real) what="another real test clip of the same speaker" ;;
    esac
    awk -v w="$what" '{ s += $1; n++ } END { printf "%-46s %8.4f  (%.2f dB, %d clips)\n", w, s / n, 8.685889638 * s / n, n }' \
        "$OUT/dist_$kind"
done
fi

echo "== (c) speaker classifiers (examples/speaker.cfg, $EPOCHS epochs on the real training clips, $CLASSIFIERS seeds); chance 1/$NSPK"
# Two judges, each the mean over CLASSIFIERS training seeds (24 clips are few, and one classifier's accuracy on
# generated audio moves by 0.1-0.2 with its seed): one trained on the clean clips only, one also on the clips with
# white noise added at the SNRs of NOISE (wavenet features --noise). Generated audio has a noise floor that real
# clips lack, which the clean-trained judge takes for a voice; the noise-trained one names the real test clips as
# well and listens to the voice.
"$NABLA" wavenet features "$CORPUS" --split train --out "$OUT/train_clean.csv" 2>/dev/null
"$NABLA" wavenet features "$CORPUS" --split train --noise "$NOISE" --seed "$SEED" --out "$OUT/train_noise.csv" 2>/dev/null
for judge in clean noise; do
    for ((k = 0; k < CLASSIFIERS; k++)); do
        "$NABLA" train "$ROOT/examples/speaker.cfg" --data "$OUT/train_$judge.csv" --optim adam --epochs "$EPOCHS" \
            --batch 16 --seed $((SEED + k)) --out "$OUT/speaker_$judge$k.safetensors" >/dev/null 2>&1
    done
done
"$NABLA" wavenet features "$CORPUS" --split test --out "$OUT/test.csv" 2>/dev/null
rows=(test:"real test clips" gen_none:"wn_none generated, ${GEN_SECONDS} s each" resynth_mel:"wn_mel resyntheses of test clips"
      swap_asked:"  with another voice's term: as that voice" swap_own:"  with another voice's term: as the clip's")
[[ -n ${PHONES:-} ]] &&
    rows+=(resynth_phones:"wn_phones from test clips' phones (TTS)" swap_phones_asked:"  with another voice's term: as that voice"
           swap_phones_own:"  with another voice's term: as the clip's")
printf '%-44s %8s %14s %14s\n' clips examples "noise-trained" "clean-trained"
for f in "${rows[@]}"; do
    d=${f%%:*}
    [[ $d == test || -d $OUT/$d ]] || continue # JUDGE_ONLY on a folder of an earlier run that lacks these clips
    [[ $d == test ]] || "$NABLA" wavenet features "$OUT/$d" --speakers-of "$CORPUS" --out "$OUT/$d.csv" 2>/dev/null
    acc=()
    for judge in noise clean; do
        sum=0
        for ((k = 0; k < CLASSIFIERS; k++)); do
            "$NABLA" eval "$OUT/speaker_$judge$k.safetensors" --data "$OUT/$d.csv" --all --json >"$OUT/acc_${d}_$judge$k" 2>/dev/null
            sum=$(awk -v s="$sum" -v a="$(field test_accuracy <"$OUT/acc_${d}_$judge$k")" 'BEGIN { print s + a }')
        done
        acc+=("$(awk -v s="$sum" -v k="$CLASSIFIERS" 'BEGIN { printf "%.4f", s / k }')")
    done
    printf '%-44s %8d %14s %14s\n' "${f#*:}" "$(field examples <"$OUT/acc_${d}_noise0")" "${acc[0]}" "${acc[1]}"
done
awk -v n="$NSPK" 'BEGIN { printf "%-44s %8s %14.4f %14.4f\n", "chance", "", 1 / n, 1 / n }'
