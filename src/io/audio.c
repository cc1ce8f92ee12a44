/* audio.c — audio files in and out: libsndfile decodes whatever it knows
 * (WAV, FLAC, OGG/Vorbis, AIFF, ...) from memory through its virtual I/O,
 * channels are averaged to mono, libsamplerate converts the rate; 16-bit PCM
 * WAV is written through the atomic writer. Every count read from a file is
 * checked before anything is allocated from it. */
#include "io.h"
#include <math.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>

/* Longest input and output accepted, in samples (frames x channels before
 * mixing): 2^27 samples is 2.3 hours of mono audio at 16 kHz, 512 MiB of
 * float32. Longer files are refused, not truncated. */
#define AUDIO_MAX_SAMPLES ((int64_t)1 << 27)
#define AUDIO_MAX_CHANNELS 64
#define AUDIO_FIRST_BLOCK ((int64_t)1 << 16) /* frames decoded before the buffer first grows */
#define AUDIO_MIN_RATE 1000
#define AUDIO_MAX_RATE 768000

/* ---- reading from memory through libsndfile's virtual I/O ---- */

typedef struct {
    const uint8_t *buf;
    sf_count_t len, pos;
} vmem;

static sf_count_t vm_len(void *u) { return ((vmem *)u)->len; }
static sf_count_t vm_seek(sf_count_t off, int whence, void *u) {
    vmem *m = u;
    sf_count_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->pos + off : m->len + off;
    if (p < 0) p = 0;
    if (p > m->len) p = m->len;
    m->pos = p;
    return p;
}
static sf_count_t vm_read(void *dst, sf_count_t n, void *u) {
    vmem *m = u;
    if (n < 0) return 0;
    sf_count_t left = m->len - m->pos;
    if (n > left) n = left;
    memcpy(dst, m->buf + m->pos, (size_t)n);
    m->pos += n;
    return n;
}
static sf_count_t vm_write(const void *src, sf_count_t n, void *u) { return 0; }
static sf_count_t vm_tell(void *u) { return ((vmem *)u)->pos; }

/* RIFF/WAVE files name the size of their data chunk; libsndfile quietly
 * shortens a chunk that runs past the end of the file, so a cut-off download
 * would read as a shorter clip. This walk finds the data chunk and compares.
 * Sizes 0 and 0xFFFFFFFF are what streaming writers leave: unknown, accepted. */
static int wav_check_truncated(const uint8_t *buf, size_t len, const char *what) {
    if (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0) return 0;
    size_t p = 12;
    while (p + 8 <= len) {
        uint32_t sz = nb__le32(buf + p + 4);
        if (memcmp(buf + p, "data", 4) == 0) {
            size_t have = len - (p + 8);
            if (sz != 0 && sz != 0xFFFFFFFFu && (uint64_t)sz > have)
                return nb_error("%s: truncated: the WAV data chunk at offset %zu declares %u bytes, the file holds %zu",
                                what, p, sz, have);
            return 0;
        }
        uint64_t next = (uint64_t)p + 8 + sz + (sz & 1);
        if (next > len) return 0; /* a header chunk cut off: libsndfile reports it */
        p = (size_t)next;
    }
    return 0;
}

/* Converts mono x[n] at rate `from` to rate `to` with libsamplerate. */
static int resample(const char *what, float *x, int64_t n, int from, int to, float **out, int64_t *nout) {
    double ratio = (double)to / from;
    if (ratio > 256 || ratio < 1.0 / 256)
        return nb_error("%s: cannot resample %d Hz to %d Hz: the ratio is outside [1/256, 256]", what, from, to);
    double want = ceil((double)n * ratio);
    if (want > (double)AUDIO_MAX_SAMPLES)
        return nb_error("%s: too long: %.0f samples at %d Hz, more than the %lld-sample limit", what, want, to,
                        (long long)AUDIO_MAX_SAMPLES);
    int64_t cap = (int64_t)want + 16;
    float *y = nb__malloc((size_t)cap * sizeof(float));
    if (!y) return nb_error("%s: out of memory for %lld resampled samples", what, (long long)cap);
    SRC_DATA d = {0};
    d.data_in = x;
    d.input_frames = (long)n;
    d.data_out = y;
    d.output_frames = (long)cap;
    d.src_ratio = ratio;
    int e = src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1);
    if (e != 0) {
        free(y);
        return nb_error("%s: resampling %d Hz to %d Hz failed: %s", what, from, to, src_strerror(e));
    }
    if (d.output_frames_gen < 1) {
        free(y);
        return nb_error("%s: too short: %lld samples at %d Hz leave none at %d Hz", what, (long long)n, from, to);
    }
    *out = y;
    *nout = d.output_frames_gen;
    return 0;
}

int nb_audio_parse(const uint8_t *buf, size_t len, const char *what, int rate, nb_audio *out) {
    memset(out, 0, sizeof *out);
    if (!what) what = "audio";
    if (rate != 0 && (rate < AUDIO_MIN_RATE || rate > AUDIO_MAX_RATE))
        return nb_error("%s: asked for %d Hz, expected 0 (keep) or %d..%d", what, rate, AUDIO_MIN_RATE,
                        AUDIO_MAX_RATE);
    if (len == 0) return nb_error("%s: empty file, expected audio (WAV, FLAC, OGG)", what);
    if (wav_check_truncated(buf, len, what) != 0) return -1;
    vmem m = {buf, (sf_count_t)len, 0};
    SF_VIRTUAL_IO vio = {vm_len, vm_seek, vm_read, vm_write, vm_tell};
    SF_INFO info = {0};
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, &m);
    if (!sf) return nb_error("%s: not audio that libsndfile reads (WAV, FLAC, OGG, ...): %s", what, sf_strerror(NULL));
    int rc = -1;
    float *inter = NULL, *mono = NULL;
    if (info.channels < 1 || info.channels > AUDIO_MAX_CHANNELS) {
        nb_error("%s: %d channels, expected 1..%d", what, info.channels, AUDIO_MAX_CHANNELS);
        goto done;
    }
    if (info.samplerate < AUDIO_MIN_RATE || info.samplerate > AUDIO_MAX_RATE) {
        nb_error("%s: sample rate %d Hz, expected %d..%d", what, info.samplerate, AUDIO_MIN_RATE, AUDIO_MAX_RATE);
        goto done;
    }
    if (info.frames <= 0) {
        nb_error("%s: no samples", what);
        goto done;
    }
    if (info.frames > AUDIO_MAX_SAMPLES / info.channels) {
        nb_error("%s: too long: %lld frames of %d channels, more than the %lld-sample limit", what,
                 (long long)info.frames, info.channels, (long long)AUDIO_MAX_SAMPLES);
        goto done;
    }
    int64_t frames = info.frames, ch = info.channels;
    /* Decode in blocks into a buffer that grows with what really arrives: the
     * frame count is the header's claim, and a 100-byte FLAC file can claim 10^8
     * frames; allocating that up front would cost hundreds of MB before the
     * file turns out truncated. */
    int64_t cap = frames < AUDIO_FIRST_BLOCK ? frames : AUDIO_FIRST_BLOCK, got = 0;
    inter = nb__malloc((size_t)(cap * ch) * sizeof(float));
    sf_command(sf, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
    for (;;) {
        if (!inter) {
            nb_error("%s: out of memory for %lld samples", what, (long long)(cap * ch));
            goto done;
        }
        sf_count_t n = sf_readf_float(sf, inter + got * ch, cap - got);
        if (sf_error(sf) != SF_ERR_NO_ERROR) {
            nb_error("%s: corrupt audio after %lld of %lld frames: %s", what, (long long)(got + (n > 0 ? n : 0)),
                     (long long)frames, sf_strerror(sf));
            goto done;
        }
        got += n > 0 ? n : 0;
        if (n <= 0 || got == frames) break;
        if (got == cap) {
            cap = cap * 2 < frames ? cap * 2 : frames;
            float *bigger = nb__realloc(inter, (size_t)(cap * ch) * sizeof(float));
            if (!bigger) free(inter);
            inter = bigger;
        }
    }
    if (got < frames) {
        nb_error("%s: truncated: the header promises %lld frames, %lld could be decoded", what, (long long)frames,
                 (long long)got);
        goto done;
    }
    /* Floating-point PCM can hold any value; nabla's samples are [-1, 1].
     * Clamped, a file that peaks at 4 (a render never normalized) would read
     * as a clipped wave: it is refused. One 16-bit step of slack passes
     * rounding. Lossy codecs (Vorbis, Opus, MP3) overshoot a little where
     * the source was at full scale; their samples are clamped below. */
    int sub = info.format & SF_FORMAT_SUBMASK;
    if (sub == SF_FORMAT_FLOAT || sub == SF_FORMAT_DOUBLE)
        for (int64_t i = 0; i < frames * ch; i++)
            if (fabsf(inter[i]) > 1.0f + 1.0f / 32768) {
                nb_error("%s: sample %lld%s is %g: floating-point audio must lie in [-1, 1] (normalize it: "
                         "divide by its peak)", what, (long long)(i / ch), ch > 1 ? " of a channel" : "",
                         (double)inter[i]);
                goto done;
            }
    mono = ch == 1 ? inter : nb__malloc((size_t)frames * sizeof(float));
    if (!mono) {
        nb_error("%s: out of memory for %lld samples", what, (long long)frames);
        goto done;
    }
    for (int64_t i = 0; i < frames; i++) {
        double s = 0;
        for (int64_t c = 0; c < ch; c++) s += inter[i * ch + c];
        s /= (double)ch;
        if (!isfinite(s)) {
            nb_error("%s: corrupt: sample %lld is not a finite number", what, (long long)i);
            goto done;
        }
        mono[i] = s > 1 ? 1.0f : s < -1 ? -1.0f : (float)s;
    }
    if (mono != inter) {
        free(inter);
        inter = NULL;
    } else
        inter = NULL;
    if (rate == 0 || rate == info.samplerate) {
        out->x = mono;
        out->n = frames;
        out->rate = info.samplerate;
        mono = NULL;
        rc = 0;
    } else {
        float *y = NULL;
        int64_t ny = 0;
        if (resample(what, mono, frames, info.samplerate, rate, &y, &ny) != 0) goto done;
        for (int64_t i = 0; i < ny; i++) y[i] = y[i] > 1 ? 1.0f : y[i] < -1 ? -1.0f : y[i];
        out->x = y;
        out->n = ny;
        out->rate = rate;
        rc = 0;
    }
done:
    if (mono != inter) free(mono);
    free(inter);
    sf_close(sf);
    return rc;
}

int nb_audio_read(const char *path, int rate, nb_audio *out) {
    memset(out, 0, sizeof *out);
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return -1;
    int rc = nb_audio_parse(buf, len, path, rate, out);
    free(buf);
    return rc;
}

void nb_audio_free(nb_audio *a) {
    if (!a) return;
    free(a->x);
    memset(a, 0, sizeof *a);
}

/* ---- writing: 16-bit PCM WAV, built in memory, then the atomic writer ---- */

static bool ends_with_ci(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcasecmp(s + n - k, suf) == 0;
}

int nb_audio_write(const char *path, const float *x, int64_t n, int rate) {
    if (!ends_with_ci(path, ".wav"))
        return nb_error("%s: unknown audio extension, expected .wav (16-bit PCM)", path);
    if (rate < AUDIO_MIN_RATE || rate > AUDIO_MAX_RATE)
        return nb_error("%s: sample rate %d Hz, expected %d..%d", path, rate, AUDIO_MIN_RATE, AUDIO_MAX_RATE);
    if (n < 0 || n > AUDIO_MAX_SAMPLES)
        return nb_error("%s: %lld samples, expected 0..%lld", path, (long long)n, (long long)AUDIO_MAX_SAMPLES);
    size_t data = (size_t)n * 2, total = 44 + data;
    uint8_t *b = nb__malloc(total);
    if (!b) return nb_error("%s: out of memory for %zu bytes", path, total);
    memcpy(b, "RIFF", 4);
    nb__put_le32(b + 4, (uint32_t)(36 + data));
    memcpy(b + 8, "WAVEfmt ", 8);
    nb__put_le32(b + 16, 16);
    nb__put_le16(b + 20, 1); /* PCM */
    nb__put_le16(b + 22, 1); /* mono */
    nb__put_le32(b + 24, (uint32_t)rate);
    nb__put_le32(b + 28, (uint32_t)rate * 2);
    nb__put_le16(b + 32, 2);
    nb__put_le16(b + 34, 16);
    memcpy(b + 36, "data", 4);
    nb__put_le32(b + 40, (uint32_t)data);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!(v == v)) v = 0; /* NaN: silence */
        double s = (double)v * 32767.0;
        s = s > 32767 ? 32767 : s < -32768 ? -32768 : s;
        nb__put_le16(b + 44 + 2 * i, (uint16_t)(int16_t)lrint(s));
    }
    int rc = nb_write_file_atomic(path, b, total);
    free(b);
    return rc;
}
