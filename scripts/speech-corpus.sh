#!/usr/bin/env bash
# speech-corpus.sh — builds nabla's default speech corpus from Debian packages:
# short English sentences from the fortunes, each spoken by several voices of
# festival and espeak-ng (one voice = one speaker), 16 kHz mono 16-bit WAV, a
# manifest, and for every clip the synthesizer's own phoneme timings as a
# one-hot [frames, n_phones] float32 .npy (one frame per NB_FEATURE_HOP = 256
# samples, frame t centred on sample 256 t, as nb_logmel's frames are).
#
#   scripts/speech-corpus.sh [--out DIR] [--clips N] [--voices LIST] [--seed S]
#
#   --out DIR     where to build (default $NABLA_DATA/speech, else ~/.cache/nabla/speech);
#                 built in DIR.partial, then moved over DIR (an old DIR is replaced)
#   --clips N     sentences per voice (default 150)
#   --voices LIST comma-separated, from: kal ked slt (festival), en-us en-us+f3 en-gb-scotland
#                 (espeak-ng, any espeak-ng voice name works); default all six
#   --seed S      which sentences (default 1)
#
# Output (read by nb_speech_open):
#   manifest.csv  file,speaker,text,split,phones   (split: the same held-out sentences for every
#                 voice, none of them heard in training: 10% valid, 10% test, at least 1 each
#                 from 3 clips on)
#   wav/SPEAKER/SPEAKER_NNNN.wav, phones/SPEAKER/SPEAKER_NNNN.npy, phones.txt (one phone a line,
#   row k = column k of the .npy), stats.txt (clips and minutes per speaker, seconds to build).
# Phones: festival's segment names (radio phone set: hh ax l ow ...) with their end times from
# the utterance's Segment relation; espeak-ng's phoneme events (its own mnemonics: h @ l oU ...)
# with their sample positions, from libespeak-ng through Python's ctypes, mapped onto the radio
# set (ESPEAK_TO_RADIO below: @ -> ax, oU -> ow, D -> dh, tS -> ch, ...; the palatal mark ; adds
# no phone), so that one phone means one sound whichever synthesizer spoke it: 40 phones and
# "pau", every pause (festival pau, espeak-ng _ _: _!). A mnemonic the table lacks is kept as it
# is, with a warning.
# Needs: festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts espeak-ng fortunes
# python3 (standard library only) and libsamplerate0 (espeak-ng speaks at 22,050 Hz).
set -euo pipefail

out="${NABLA_DATA:-$HOME/.cache/nabla}/speech"
clips=150
voices="kal,ked,slt,en-us,en-us+f3,en-gb-scotland"
seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --clips) clips="$2"; shift 2 ;;
    --voices) voices="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "speech-corpus.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$clips" in ''|*[!0-9]*) echo "speech-corpus.sh: --clips '$clips': expected a positive integer" >&2; exit 2 ;; esac
[ "$clips" -ge 1 ] || { echo "speech-corpus.sh: --clips must be at least 1" >&2; exit 2; }

# What each requested voice needs, and a clear list of what is missing.
missing=()
need() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed" || missing+=("$1"); }
[ -x /usr/bin/python3 ] || missing+=(python3)
need fortunes
need libsamplerate0
IFS=, read -r -a vlist <<<"$voices"
for v in "${vlist[@]}"; do
  case "$v" in
    kal) need festival; need festvox-kallpc16k ;;
    ked) need festival; need festvox-kdlpc16k ;;
    slt) need festival; need festvox-us-slt-hts ;;
    *) need espeak-ng ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "speech-corpus.sh: missing Debian packages: ${missing[*]}" >&2
  echo "  install them with: sudo apt-get install ${missing[*]}" >&2
  echo "  (or NABLA_SPEECH=1 scripts/install-deps.sh)" >&2
  exit 1
fi

exec /usr/bin/python3 - "$out" "$clips" "$voices" "$seed" <<'PY'
import array, ctypes, ctypes.util, os, random, re, shutil, struct, subprocess, sys, tempfile, time, wave

out, nclips, voices, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4])
RATE, HOP = 16000, 256
FESTIVAL = {"kal": "voice_kal_diphone", "ked": "voice_ked_diphone", "slt": "voice_cmu_us_slt_arctic_hts"}
t0 = time.time()

def fail(msg):
    sys.stderr.write("speech-corpus.sh: " + msg + "\n")
    sys.exit(1)

# ---- sentences: short, plain English fortunes ----
FORTUNE_DIR = "/usr/share/games/fortunes"
FILES = ["fortunes", "wisdom", "people", "literature", "humorists", "work", "science", "computers",
         "education", "love", "politics", "platitudes", "pets", "food", "miscellaneous"]
OK = re.compile(r"^[A-Za-z][A-Za-z ,.;:'?!-]*[.?!]$")
sentences = set()
for name in FILES:
    p = os.path.join(FORTUNE_DIR, name)
    if not os.path.exists(p):
        continue
    with open(p, encoding="latin-1") as f:
        for chunk in f.read().split("\n%\n"):
            lines = [l.strip() for l in chunk.split("\n")]
            lines = [l for l in lines if l and not l.startswith("--") and not l.startswith("-- ")]
            s = re.sub(r"\s+", " ", " ".join(lines)).strip()
            words = s.split(" ")
            if 25 <= len(s) <= 90 and len(words) >= 5 and OK.match(s) and "--" not in s and s.upper() != s:
                sentences.add(s)
sentences = sorted(sentences)
random.Random(seed).shuffle(sentences)
if len(sentences) < nclips:
    fail("only %d usable sentences in %s, asked for --clips %d" % (len(sentences), FORTUNE_DIR, nclips))
sentences = sentences[:nclips]
n_test = nclips // 10 if nclips >= 20 else (1 if nclips >= 3 else 0)
n_valid = n_test
def split_of(i):
    return "test" if i >= nclips - n_test else "valid" if i >= nclips - n_test - n_valid else "train"

def speaker_name(v):
    return ("festival_" + v) if v in FESTIVAL else "espeak_" + re.sub(r"[^A-Za-z0-9]+", "_", v)

part = out.rstrip("/") + ".partial"
shutil.rmtree(part, ignore_errors=True)
os.makedirs(part)

def phone(name):
    return "pau" if name == "pau" or name.startswith("_") or name == "" else name

# espeak-ng's English mnemonics (en-us, en-us+f3, en-gb-scotland) -> festival's radio phone set
# (ARPAbet-like), by sound: the lexical set of each vowel, r-coloured ones to their vowel (the r
# is its own phone where the synthesizer makes one). None: not a sound of its own (; marks the
# consonant before it palatal), the phone before it goes on.
ESPEAK_TO_RADIO = {
    "@": "ax", "@-": "ax", "@2": "ax", "a#": "ax", "@L": "l", "3": "er", "3:": "er",
    "a": "ae", "aa": "aa", "A:": "aa", "A@": "aa", "0": "aa", "V": "ah", "VR": "ah",
    "E": "eh", "e@": "eh", "eI": "ey", "I": "ih", "I#": "ih", "I2": "ih", "IR": "ih",
    "i": "iy", "i:": "iy", "i@": "ih", "i@3": "ih", "O:": "ao", "O@": "ao", "O2": "ao", "o@": "ao",
    "OI": "oy", "oU": "ow", "U": "uh", "U@": "uh", "u:": "uw",
    "aI": "ay", "aI2": "ay", "aI3": "ay", "aI@": "ay", "aU": "aw",
    "D": "dh", "T": "th", "N": "ng", "S": "sh", "Z": "zh", "dZ": "jh", "tS": "ch", "h": "hh", "j": "y",
    "n-": "n", "r-": "r", "t#": "t", "t2": "t", "w#": "w", "?": "t", ";": None,
    **{c: c for c in ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z")},
}
unmapped = set()

def espeak_phone(name):
    """An espeak-ng mnemonic as a radio phone ("pau" for a pause), or None to add no phone."""
    if phone(name) == "pau":
        return "pau"
    if name not in ESPEAK_TO_RADIO:
        unmapped.add(name)
        return name
    return ESPEAK_TO_RADIO[name]

# clips[(speaker, i)] = (nsamples, [(start_sample, phone), ...]) at 16 kHz
clips = {}

def write_wav16(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(RATE)
        if sys.byteorder != "little":
            samples = array.array("h", samples)
            samples.byteswap()
        w.writeframes(samples.tobytes())

# ---- festival: one process per voice, one Scheme script for all sentences ----
def scheme_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

for v in voices:
    if v not in FESTIVAL:
        continue
    spk = speaker_name(v)
    os.makedirs(os.path.join(part, "wav", spk))
    tmp = tempfile.mkdtemp(prefix="nabla-festival-")
    lines = ["(%s)" % FESTIVAL[v]]
    for i, s in enumerate(sentences):
        wav = os.path.join(part, "wav", spk, "%s_%04d.wav" % (spk, i))
        seg = os.path.join(tmp, "%d.seg" % i)
        lines.append("(set! utt (utt.synth (Utterance Text %s)))" % scheme_str(s))
        lines.append("(utt.wave.resample utt %d)" % RATE)
        lines.append("(utt.save.wave utt %s 'riff)" % scheme_str(wav))
        lines.append("(set! fd (fopen %s \"w\"))" % scheme_str(seg))
        lines.append("(mapcar (lambda (x) (format fd \"%s %f\\n\" (item.name x) (item.feat x \"end\"))) "
                     "(utt.relation.items utt 'Segment))")
        lines.append("(fclose fd)")
    script = os.path.join(tmp, "run.scm")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["festival", "-b", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        fail("festival (%s) failed:\n%s" % (v, r.stdout[-2000:]))
    for i in range(nclips):
        wav = os.path.join(part, "wav", spk, "%s_%04d.wav" % (spk, i))
        seg = os.path.join(tmp, "%d.seg" % i)
        if not os.path.exists(wav) or not os.path.exists(seg):
            fail("festival (%s) wrote no audio or segments for sentence %d: %r" % (v, i, sentences[i]))
        with wave.open(wav) as w:
            if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                fail("%s: festival wrote %d Hz, %d channels" % (wav, w.getframerate(), w.getnchannels()))
            n = w.getnframes()
        segs, start = [], 0
        for line in open(seg):
            name, end = line.split()
            segs.append((start, phone(name)))
            start = int(round(float(end) * RATE))
        clips[(spk, i)] = (n, segs)
    shutil.rmtree(tmp)
    print("speech-corpus.sh: %-24s %d clips (%.0f s)" % (spk, nclips, time.time() - t0), flush=True)

# ---- espeak-ng: libespeak-ng's phoneme events, libsamplerate to 16 kHz ----
esp_voices = [v for v in voices if v not in FESTIVAL]
if esp_voices:
    lib = ctypes.CDLL("libespeak-ng.so.1")
    class EvId(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]
    class Event(ctypes.Structure):  # espeak_EVENT of speak_lib.h
        _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                    ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                    ("user_data", ctypes.c_void_p), ("id", EvId)]
    CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))
    AUDIO_OUTPUT_SYNCHRONOUS, INITIALIZE_PHONEME_EVENTS, EVENT_LIST_TERMINATED, EVENT_PHONEME = 2, 1, 0, 7
    erate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_PHONEME_EVENTS)
    if erate <= 0:
        fail("espeak-ng could not be initialized")
    cur = {"pcm": array.array("h"), "ev": []}
    def on_audio(wav, n, ev):
        if wav and n > 0:
            cur["pcm"].extend(wav[:n])
        k = 0
        while ev[k].type != EVENT_LIST_TERMINATED:
            if ev[k].type == EVENT_PHONEME:
                cur["ev"].append((ev[k].audio_position, ev[k].id.string.decode("latin-1")))
            k += 1
        return 0
    cb = CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(cb)

    src = ctypes.CDLL(ctypes.util.find_library("samplerate") or "libsamplerate.so.0")
    class SrcData(ctypes.Structure):  # SRC_DATA of samplerate.h
        _fields_ = [("data_in", ctypes.POINTER(ctypes.c_float)), ("data_out", ctypes.POINTER(ctypes.c_float)),
                    ("input_frames", ctypes.c_long), ("output_frames", ctypes.c_long),
                    ("input_frames_used", ctypes.c_long), ("output_frames_gen", ctypes.c_long),
                    ("end_of_input", ctypes.c_int), ("src_ratio", ctypes.c_double)]
    src.src_simple.argtypes = [ctypes.POINTER(SrcData), ctypes.c_int, ctypes.c_int]
    SRC_SINC_MEDIUM_QUALITY = 1
    def resample(pcm):  # 16-bit samples at erate -> 16-bit samples at RATE, all inside libsamplerate
        ratio = RATE / erate
        n = len(pcm)
        sin = (ctypes.c_short * n).from_buffer(pcm)
        xin = (ctypes.c_float * n)()
        src.src_short_to_float_array(sin, xin, n)
        cap = int(n * ratio) + 16
        xout = (ctypes.c_float * cap)()
        d = SrcData(xin, xout, n, cap, 0, 0, 1, ratio)
        e = src.src_simple(ctypes.byref(d), SRC_SINC_MEDIUM_QUALITY, 1)
        if e != 0:
            fail("libsamplerate error %d" % e)
        res = array.array("h", bytes(2 * d.output_frames_gen))
        src.src_float_to_short_array(xout, (ctypes.c_short * len(res)).from_buffer(res), d.output_frames_gen)
        return res

    for v in esp_voices:
        spk = speaker_name(v)
        if lib.espeak_SetVoiceByName(v.encode()) != 0:
            fail("espeak-ng has no voice '%s' (espeak-ng --voices=en lists them)" % v)
        os.makedirs(os.path.join(part, "wav", spk))
        for i, s in enumerate(sentences):
            cur["pcm"], cur["ev"] = array.array("h"), []
            b = s.encode()
            lib.espeak_Synth(b, len(b) + 1, 0, 1, 0, 0, None, None)  # POS_CHARACTER, espeakCHARS_AUTO
            lib.espeak_Synchronize()
            pcm = resample(cur["pcm"])
            write_wav16(os.path.join(part, "wav", spk, "%s_%04d.wav" % (spk, i)), pcm)
            segs = [(int(round(ms * RATE / 1000.0)), espeak_phone(name)) for ms, name in cur["ev"]]
            segs = [(t, p) for t, p in segs if p is not None]
            clips[(spk, i)] = (len(pcm), segs)
        print("speech-corpus.sh: %-24s %d clips (%.0f s)" % (spk, nclips, time.time() - t0), flush=True)

# ---- phone inventory, one-hot .npy per clip, manifest ----
if unmapped:
    print("speech-corpus.sh: warning: espeak-ng phones with no radio equivalent, kept as they are: " +
          " ".join(sorted(unmapped)), file=sys.stderr)
inventory = ["pau"] + sorted({p for _, segs in clips.values() for _, p in segs} - {"pau"})
index = {p: k for k, p in enumerate(inventory)}
with open(os.path.join(part, "phones.txt"), "w") as f:
    f.write("\n".join(inventory) + "\n")

def write_npy(path, rows, cols, onehot):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * (pad % 64) + "\n"
    data = array.array("f", [0.0]) * (rows * cols)
    for t, k in enumerate(onehot):
        data[t * cols + k] = 1.0
    if sys.byteorder != "little":
        data.byteswap()
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data.tobytes())

def csv_field(s):
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s

rows = ["file,speaker,text,split,phones"]
stats = {}
for v in voices:
    spk = speaker_name(v)
    os.makedirs(os.path.join(part, "phones", spk))
    for i, s in enumerate(sentences):
        n, segs = clips[(spk, i)]
        frames = (n + HOP - 1) // HOP
        onehot, j = [], -1
        for t in range(frames):
            c = t * HOP  # the frame's centre sample: the phone that started last at or before it
            while j + 1 < len(segs) and segs[j + 1][0] <= c:
                j += 1
            onehot.append(index[segs[j][1]] if j >= 0 else index["pau"])
        wav = "wav/%s/%s_%04d.wav" % (spk, spk, i)
        npy = "phones/%s/%s_%04d.npy" % (spk, spk, i)
        write_npy(os.path.join(part, npy), frames, len(inventory), onehot)
        rows.append(",".join([wav, spk, csv_field(s), split_of(i), npy]))
        st = stats.setdefault(spk, [0, 0])
        st[0] += 1
        st[1] += n
with open(os.path.join(part, "manifest.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")
elapsed = time.time() - t0
lines = ["%-24s %5d clips %7.2f minutes" % (spk, c, n / RATE / 60) for spk, (c, n) in stats.items()]
total = sum(n for _, n in stats.values())
lines.append("%-24s %5d clips %7.2f minutes, %d phones, built in %.0f s"
             % ("total", len(clips), total / RATE / 60, len(inventory), elapsed))
lines.append("split: %d train, %d valid, %d test sentences per speaker" % (nclips - n_valid - n_test, n_valid, n_test))
with open(os.path.join(part, "stats.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
shutil.rmtree(out, ignore_errors=True)
os.rename(part, out)
print("\n".join(lines))
print("speech-corpus.sh: wrote %s" % out)
PY
