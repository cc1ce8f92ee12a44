/* test_audio.c — audio files (WAV round trip, FLAC/OGG/stereo through
 * libsndfile, resampling), defects named with the file, and log-mel
 * spectrograms (shape, silence, the band of a pure tone, one frame against a
 * direct DFT). */
#include "test.h"
#include "../src/core/fault.h"
#include <fftw3.h>
#include <ftw.h>
#include <sndfile.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char audio_dir[256];

static void put_le32(uint8_t *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> 8 * k);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) { return remove(p); }
static void rm_audio_dir(void) { nftw(audio_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static const char *adir(void) {
    if (!audio_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(audio_dir, sizeof audio_dir, "%s/nabla-audio-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(audio_dir)) nb_test_fail(__FILE__, __LINE__, "mkdtemp failed");
        else atexit(rm_audio_dir);
    }
    return audio_dir;
}

static void apath(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", adir(), name); }

/* Writes frames x channels interleaved samples with libsndfile in `format`. */
static int sf_write_file(const char *path, int format, int channels, int rate, const float *x, int64_t frames) {
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f) return -1;
    sf_count_t w = sf_writef_float(f, x, frames);
    sf_close(f);
    return w == frames ? 0 : -1;
}

/* The frequency (Hz) of the largest |FFT| bin of x (Hann window). */
static double peak_hz(const float *x, int64_t n, int rate) {
    float *in = fftwf_alloc_real((size_t)n);
    fftwf_complex *out = fftwf_alloc_complex((size_t)n / 2 + 1);
    for (int64_t i = 0; i < n; i++) in[i] = x[i] * (float)(0.5 - 0.5 * cos(2 * M_PI * i / n));
    fftwf_plan p = fftwf_plan_dft_r2c_1d((int)n, in, out, FFTW_ESTIMATE);
    fftwf_execute(p);
    int64_t best = 0;
    double bm = -1;
    for (int64_t k = 1; k <= n / 2; k++) {
        double m = hypot(out[k][0], out[k][1]);
        if (m > bm) bm = m, best = k;
    }
    fftwf_destroy_plan(p);
    fftwf_free(in);
    fftwf_free(out);
    return (double)best * rate / n;
}

static float *sine(int64_t n, double hz, int rate, double amp) {
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * M_PI * hz * i / rate));
    return x;
}

TEST(test_audio_wav_round_trip_16bit) {
    int64_t n = 12345;
    float *x = malloc((size_t)n * sizeof *x);
    nb_rng *r = nb_test_rng();
    for (int64_t i = 0; i < n; i++) x[i] = 2 * nb_rng_uniform(r) - 1;
    x[0] = 1, x[1] = -1, x[2] = 0;
    char p[512];
    apath(p, sizeof p, "rt.wav");
    CHECK(nb_audio_write(p, x, n, 22050) == 0);
    nb_audio a;
    CHECK(nb_audio_read(p, 0, &a) == 0);
    CHECK(a.n == n && a.rate == 22050);
    double worst = 0;
    for (int64_t i = 0; i < n && i < a.n; i++) worst = fmax(worst, fabs(a.x[i] - x[i]));
    /* 16-bit quantization: half a step of 1/32767, plus the reader's 1/32768 scale */
    CHECK_MSG(worst <= 1.5 / 32767, "round trip error %g", worst);
    nb_audio_free(&a);
    CHECK(a.x == NULL && a.n == 0);
    /* the exact header bytes: PCM, mono, 16 bits, data size */
    size_t len;
    uint8_t *b = nb_read_file(p, &len);
    CHECK(b && len == 44 + 2 * (size_t)n);
    if (b) {
        CHECK(memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WAVEfmt ", 8) == 0 && memcmp(b + 36, "data", 4) == 0);
        CHECK(b[20] == 1 && b[22] == 1 && b[34] == 16);
    }
    free(b);
    /* other extensions are refused, and nothing is written */
    char q[512];
    apath(q, sizeof q, "rt.flac");
    CHECK(nb_audio_write(q, x, n, 16000) == -1 && strstr(nb_errmsg(), "rt.flac") && strstr(nb_errmsg(), ".wav"));
    CHECK(access(q, F_OK) != 0);
    CHECK(nb_audio_write(p, x, n, 5) == -1);
    free(x);
}

TEST(test_audio_reads_flac_ogg_and_mixes_stereo) {
    int rate = 16000;
    int64_t n = 8000;
    float *st = malloc((size_t)n * 2 * sizeof *st);
    for (int64_t i = 0; i < n; i++) {
        st[2 * i] = (float)(0.5 * sin(2 * M_PI * 500 * i / rate));
        st[2 * i + 1] = (float)(0.3 * sin(2 * M_PI * 500 * i / rate));
    }
    char p[512];
    apath(p, sizeof p, "st.flac");
    CHECK(sf_write_file(p, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2, rate, st, n) == 0);
    nb_audio a;
    CHECK(nb_audio_read(p, 0, &a) == 0);
    CHECK(a.n == n && a.rate == rate);
    double worst = 0;
    for (int64_t i = 0; i < n && i < a.n; i++) worst = fmax(worst, fabs(a.x[i] - 0.4 * sin(2 * M_PI * 500 * i / rate)));
    CHECK_MSG(worst < 1e-3, "stereo FLAC mixed to mono: error %g", worst);
    nb_audio_free(&a);
    apath(p, sizeof p, "st.ogg");
    CHECK(sf_write_file(p, SF_FORMAT_OGG | SF_FORMAT_VORBIS, 2, rate, st, n) == 0);
    CHECK(nb_audio_read(p, 0, &a) == 0);
    CHECK(a.n == n && a.rate == rate);
    if (a.n == n) CHECK_NEAR(peak_hz(a.x, a.n, rate), 500, 0.01);
    nb_audio_free(&a);
    /* MP3 (libsndfile through mpg123 and LAME) and Opus in Ogg: lossy codecs
     * with an encoder delay, so the length is only near n; the tone stays. */
    const char *lossy[] = {"st.mp3", "st.opus"};
    int formats[] = {SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, SF_FORMAT_OGG | SF_FORMAT_OPUS};
    for (int k = 0; k < 2; k++) {
        apath(p, sizeof p, lossy[k]);
        CHECK(sf_write_file(p, formats[k], 2, rate, st, n) == 0);
        CHECK_MSG(nb_audio_read(p, 0, &a) == 0, "%s: %s", lossy[k], nb_errmsg());
        CHECK_MSG(a.rate == rate && llabs(a.n - n) < 2400, "%s: %lld samples at %d Hz", lossy[k], (long long)a.n, a.rate);
        if (a.n > 4096) CHECK_NEAR(peak_hz(a.x, a.n, rate), 500, 0.02);
        nb_audio_free(&a);
    }
    free(st);
}

/* Float WAV files hold any value; nabla's samples are in [-1, 1]. One that
 * peaks at 4 (a render that was never normalized) was clamped sample by
 * sample into a clipped wave, silently; it is refused with its peak now.
 * Integer PCM of every width reads as value / 2^(bits-1). */
TEST(test_audio_float_wav_beyond_full_scale_is_refused_pcm_widths_exact) {
    int64_t n = 64;
    float *x = sine(n, 500, 16000, 0.9);
    char p[512];
    apath(p, sizeof p, "loud.wav");
    x[10] = 4.f;
    CHECK(sf_write_file(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 16000, x, n) == 0);
    nb_audio a;
    CHECK(nb_audio_read(p, 0, &a) == -1);
    CHECK_MSG(strstr(nb_errmsg(), "loud.wav") && strstr(nb_errmsg(), "sample 10") && strstr(nb_errmsg(), "[-1, 1]"),
              "%s", nb_errmsg());
    nb_audio_free(&a);
    /* A NaN sample is refused too (as a damaged file), not clamped to -1. */
    x[10] = NAN;
    CHECK(sf_write_file(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 16000, x, n) == 0);
    CHECK(nb_audio_read(p, 0, &a) == -1);
    CHECK_MSG(strstr(nb_errmsg(), "sample 10 is not a finite number"), "%s", nb_errmsg());
    nb_audio_free(&a);
    x[10] = 0.25f;
    CHECK(sf_write_file(p, SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 1, 16000, x, n) == 0);
    CHECK_MSG(nb_audio_read(p, 0, &a) == 0, "%s", nb_errmsg());
    for (int64_t i = 0; i < n && a.n == n; i++) CHECK(a.x[i] == x[i]);
    nb_audio_free(&a);
    /* 8-bit (unsigned in WAV), 24-bit and 32-bit PCM built byte by byte
     * (libsndfile's own float writer scales by 2^(bits-1) - 1): exact steps. */
    const int bits[] = {8, 24, 32};
    for (int k = 0; k < 3; k++) {
        int bytes = bits[k] / 8;
        size_t len = 44 + (size_t)n * (size_t)bytes;
        uint8_t *w = calloc(1, len);
        memcpy(w, "RIFF", 4);
        put_le32(w + 4, (uint32_t)(len - 8));
        memcpy(w + 8, "WAVEfmt ", 8);
        put_le32(w + 16, 16);
        w[20] = 1, w[22] = 1; /* PCM, mono */
        put_le32(w + 24, 16000);
        put_le32(w + 28, 16000u * (uint32_t)bytes);
        w[32] = (uint8_t)bytes, w[34] = (uint8_t)bits[k];
        memcpy(w + 36, "data", 4);
        put_le32(w + 40, (uint32_t)n * (uint32_t)bytes);
        double full = ldexp(1, bits[k] - 1);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = (int64_t)round(0.9 * sin(0.3 * (double)i) * full) - (i == 5 ? (int64_t)(0.9 * full) : 0);
            x[i] = (float)((double)v / full);
            uint32_t u = bits[k] == 8 ? (uint32_t)(v + 128) : (uint32_t)v;
            for (int b = 0; b < bytes; b++) w[44 + (size_t)i * (size_t)bytes + (size_t)b] = (uint8_t)(u >> 8 * b);
        }
        CHECK(nb_audio_parse(w, len, "pcm.wav", 0, &a) == 0);
        double worst = 0;
        for (int64_t i = 0; i < n && a.n == n; i++) worst = fmax(worst, fabs(a.x[i] - x[i]));
        CHECK_MSG(a.n == n && worst == 0, "%d-bit PCM: %lld samples, error %g", bits[k], (long long)a.n, worst);
        nb_audio_free(&a);
        free(w);
    }
    free(x);
}

TEST(test_audio_resampling_keeps_a_sine_frequency) {
    int64_t n = 22050;
    float *x = sine(n, 441, 22050, 0.8);
    char p[512];
    apath(p, sizeof p, "s22.wav");
    CHECK(nb_audio_write(p, x, n, 22050) == 0);
    nb_audio a;
    CHECK(nb_audio_read(p, 16000, &a) == 0);
    CHECK(a.rate == 16000);
    CHECK_MSG(llabs(a.n - 16000) <= 2, "%lld samples after resampling", (long long)a.n);
    double f = peak_hz(a.x, a.n, 16000); /* bins of 1 Hz */
    CHECK_MSG(fabs(f - 441) <= 1, "peak at %g Hz after 22050 -> 16000", f);
    /* the amplitude survives too (away from the edges) */
    double mx = 0;
    for (int64_t i = 1000; i < a.n - 1000; i++) mx = fmax(mx, fabs(a.x[i]));
    CHECK_NEAR(mx, 0.8, 0.02);
    nb_audio_free(&a);
    /* and upwards */
    CHECK(nb_audio_read(p, 44100, &a) == 0);
    CHECK(llabs(a.n - 44100) <= 2);
    CHECK(fabs(peak_hz(a.x, a.n, 44100) - 441) <= 1);
    nb_audio_free(&a);
    CHECK(nb_audio_read(p, 50, &a) == -1 && strstr(nb_errmsg(), "s22.wav"));
    free(x);
}

TEST(test_audio_rejects_empty_truncated_and_corrupt_files) {
    nb_audio a;
    CHECK(nb_audio_parse((const uint8_t *)"", 0, "e.wav", 0, &a) == -1 && strstr(nb_errmsg(), "e.wav: empty"));
    const char *junk = "this is not audio at all, just some text that goes on";
    CHECK(nb_audio_parse((const uint8_t *)junk, strlen(junk), "j.wav", 0, &a) == -1 && strstr(nb_errmsg(), "j.wav"));
    /* a real WAV cut at every 7th byte: always an error naming it, never a shorter clip */
    int64_t n = 400;
    float *x = sine(n, 300, 16000, 0.5);
    char p[512];
    apath(p, sizeof p, "cut.wav");
    CHECK(nb_audio_write(p, x, n, 16000) == 0);
    size_t len;
    uint8_t *b = nb_read_file(p, &len);
    int bad = 0;
    for (size_t cut = 1; b && cut < len; cut += 7) {
        int rc = nb_audio_parse(b, cut, "cut.wav", 0, &a);
        if (rc != -1 || !strstr(nb_errmsg(), "cut.wav")) bad++;
        if (rc == 0) nb_audio_free(&a);
    }
    CHECK_MSG(bad == 0, "%d cuts of a WAV file were accepted or unnamed", bad);
    if (b) {
        CHECK(nb_audio_parse(b, len - 10, "cut.wav", 0, &a) == -1 && strstr(nb_errmsg(), "truncated"));
        /* a data chunk that declares one byte more than the file holds */
        uint8_t *d = malloc(len);
        memcpy(d, b, len);
        uint32_t sz = (uint32_t)(len - 44) + 1;
        for (int k = 0; k < 4; k++) d[40 + k] = (uint8_t)(sz >> 8 * k);
        CHECK_MSG(nb_audio_parse(d, len, "one.wav", 0, &a) == -1 &&
                      strstr(nb_errmsg(), "one.wav: truncated: the WAV data chunk at offset 36 declares 801 bytes, the file holds 800"),
                  "%s", nb_errmsg());
        free(d);
        /* a header that promises 0 channels */
        uint8_t *c = malloc(len);
        memcpy(c, b, len);
        c[22] = 0;
        CHECK(nb_audio_parse(c, len, "ch0.wav", 0, &a) == -1 && strstr(nb_errmsg(), "ch0.wav"));
        free(c);
    }
    free(b);
    /* a truncated FLAC file */
    apath(p, sizeof p, "cut.flac");
    float *y = sine(16000, 300, 16000, 0.5);
    CHECK(sf_write_file(p, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1, 16000, y, 16000) == 0);
    b = nb_read_file(p, &len);
    if (b) {
        CHECK(nb_audio_parse(b, len, "ok.flac", 0, &a) == 0 && a.n == 16000);
        nb_audio_free(&a);
        CHECK(nb_audio_parse(b, len / 2, "cut.flac", 0, &a) == -1 && strstr(nb_errmsg(), "cut.flac"));
        /* STREAMINFO (bytes 18..25 big-endian: rate 20 bits, channels 3, bits 5, total samples 36)
         * promising 2^35 samples: refused before anything that size is allocated */
        CHECK(len > 26 && memcmp(b, "fLaC", 4) == 0);
        if (len > 26) {
            b[21] = (uint8_t)((b[21] & 0xF0) | 0x08);
            b[22] = b[23] = b[24] = b[25] = 0;
            CHECK(nb_audio_parse(b, len, "huge.flac", 0, &a) == -1 && strstr(nb_errmsg(), "huge.flac") &&
                  strstr(nb_errmsg(), "too long"));
            /* promising 2^26 samples, within the limit, while it holds 16000: the
             * buffer grows with what is decoded, so a file of a few kB costs no
             * more than 2^16 floats before it is found truncated */
            b[21] = (uint8_t)(b[21] & 0xF0);
            b[22] = 0x04;
            nb__fault_set("");
            CHECK(nb_audio_parse(b, len, "claims.flac", 0, &a) == -1 && strstr(nb_errmsg(), "claims.flac: truncated") &&
                  strstr(nb_errmsg(), "67108864 frames, 16000"));
            CHECK_MSG(nb__fault_largest_alloc() <= ((size_t)1 << 16) * sizeof(float),
                      "largest allocation %zu bytes for a file of %zu", nb__fault_largest_alloc(), len);
            nb__fault_set(NULL);
            /* promising 16001 samples, one more than it holds: still truncated */
            b[21] = (uint8_t)(b[21] & 0xF0);
            b[22] = b[23] = 0, b[24] = 0x3E, b[25] = 0x81;
            CHECK_MSG(nb_audio_parse(b, len, "one.flac", 0, &a) == -1 && strstr(nb_errmsg(), "one.flac: truncated") &&
                          strstr(nb_errmsg(), "16001 frames, 16000"),
                      "%s", nb_errmsg());
        }
        /* a WAV data chunk that claims 4 GB */
        uint8_t w[64] = {0};
        float one = 0.5f;
        apath(p, sizeof p, "one.wav");
        CHECK(nb_audio_write(p, &one, 1, 16000) == 0);
        size_t wl;
        uint8_t *wb = nb_read_file(p, &wl);
        if (wb && wl <= sizeof w) {
            memcpy(w, wb, wl);
            put_le32(w + 40, 0xFFFFFFF0u);
            CHECK(nb_audio_parse(w, wl, "big.wav", 0, &a) == -1 && strstr(nb_errmsg(), "big.wav: truncated"));
        }
        free(wb);
    }
    free(b);
    /* a file that does not exist, and a directory */
    CHECK(nb_audio_read("/nonexistent/a.wav", 0, &a) == -1 && strstr(nb_errmsg(), "/nonexistent/a.wav"));
    CHECK(nb_audio_read(adir(), 0, &a) == -1 && strstr(nb_errmsg(), adir()));
    CHECK(a.x == NULL && a.n == 0);
    free(x);
    free(y);
}

/* The writer's header, field by field as the RIFF/WAVE format lays it out,
 * and its samples: v * 32767 rounded, clamped to the int16 range, NaN as 0. */
TEST(test_audio_write_header_and_samples_exact) {
    const float x[] = {1.f, -1.f, 0.5f, NAN, 2.f, -2.f, 0.25f};
    const int16_t want[] = {32767, -32767, 16384, 0, 32767, -32768, 8192};
    char p[512];
    apath(p, sizeof p, "exact.wav");
    CHECK(nb_audio_write(p, x, 7, 8000) == 0);
    size_t len;
    uint8_t *b = nb_read_file(p, &len);
    CHECK(b && len == 44 + 14);
    uint8_t h[44] = {0};
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, 36 + 14);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le32(h + 16, 16);
    h[20] = 1, h[22] = 1;        /* PCM, one channel */
    put_le32(h + 24, 8000);      /* sample rate */
    put_le32(h + 28, 8000 * 2);  /* bytes per second */
    h[32] = 2, h[34] = 16;       /* bytes per frame, bits per sample */
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, 14);
    CHECK(b && len == 58 && memcmp(b, h, 44) == 0);
    for (int i = 0; b && len == 58 && i < 7; i++) {
        int16_t v = (int16_t)(uint16_t)(b[44 + 2 * i] | b[45 + 2 * i] << 8);
        CHECK_MSG(v == want[i], "sample %d (%g) written as %d, expected %d", i, (double)x[i], v, want[i]);
    }
    free(b);
    /* rates outside 1000..768000 Hz, written or asked for */
    CHECK(nb_audio_write(p, x, 7, 768001) == -1 && strstr(nb_errmsg(), "768001 Hz"));
    CHECK(nb_audio_write(p, x, 7, 999) == -1 && strstr(nb_errmsg(), "999 Hz"));
    nb_audio a;
    CHECK(nb_audio_write(p, x, 7, 16000) == 0);
    CHECK(nb_audio_read(p, 999, &a) == -1 && strstr(nb_errmsg(), "asked for 999 Hz"));
    CHECK(nb_audio_read(p, 768001, &a) == -1 && strstr(nb_errmsg(), "asked for 768001 Hz"));
}

/* The [-1, 1] check of float files, at its edges: full scale is accepted
 * as is, one 16-bit step beyond it (1 + 2^-15) is slack for rounding and
 * clamped to full scale, 1 + 3 * 2^-16 is refused; the check covers every
 * channel of every frame, in float and in double files. */
TEST(test_audio_float_full_scale_edges_every_channel_and_double) {
    char p[512];
    apath(p, sizeof p, "edge.wav");
    const float ok[] = {1.f, -1.f, 1.f + 0x1p-16f, -1.f - 0x1p-16f, 0.5f, 1.f + 0x1p-15f};
    const float got[] = {1.f, -1.f, 1.f, -1.f, 0.5f, 1.f};
    nb_audio a;
    CHECK(sf_write_file(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 16000, ok, 6) == 0);
    CHECK_MSG(nb_audio_read(p, 0, &a) == 0 && a.n == 6, "%s", nb_errmsg());
    for (int i = 0; i < 6 && a.n == 6; i++) CHECK_MSG(a.x[i] == got[i], "sample %d read as %.9g", i, (double)a.x[i]);
    nb_audio_free(&a);
    const float over[] = {0.5f, 1.f + 3 * 0x1p-16f};
    CHECK(sf_write_file(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 16000, over, 2) == 0);
    CHECK(nb_audio_read(p, 0, &a) == -1 && strstr(nb_errmsg(), "sample 1 is"));
    /* stereo: frame 3's second channel, interleaved sample 7 */
    float st[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, -3.f};
    CHECK(sf_write_file(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2, 16000, st, 4) == 0);
    CHECK(nb_audio_read(p, 0, &a) == -1 && strstr(nb_errmsg(), "sample 3 of a channel is -3"));
    st[7] = 0.8f;
    CHECK(sf_write_file(p, SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 2, 16000, st, 4) == 0);
    CHECK_MSG(nb_audio_read(p, 0, &a) == 0 && a.n == 4, "%s", nb_errmsg());
    nb_audio_free(&a);
    st[6] = 2.f;
    CHECK(sf_write_file(p, SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 2, 16000, st, 4) == 0);
    CHECK(nb_audio_read(p, 0, &a) == -1 && strstr(nb_errmsg(), "sample 3 of a channel is 2"));
}

/* Resampling low-pass filters: a 10 kHz tone cannot exist at 16 kHz
 * (Nyquist 8 kHz) and must vanish, not fold to 6 kHz as point sampling or
 * linear interpolation would leave it. The overshoot of a full-scale square
 * wave (Gibbs, about 9%) is clamped to [-1, 1]. */
TEST(test_audio_resampling_removes_aliases_and_clamps) {
    char p[512];
    apath(p, sizeof p, "hi.wav");
    float *x = sine(4800, 10000, 48000, 0.5);
    CHECK(nb_audio_write(p, x, 4800, 48000) == 0);
    nb_audio a;
    CHECK(nb_audio_read(p, 16000, &a) == 0 && llabs(a.n - 1600) <= 2);
    double ss = 0;
    for (int64_t i = 200; i < a.n - 200; i++) ss += (double)a.x[i] * a.x[i];
    double rms = sqrt(ss / (double)(a.n - 400));
    CHECK_MSG(rms < 0.01, "a 10 kHz tone at amplitude 0.5 left rms %g at 16 kHz", rms);
    nb_audio_free(&a);
    for (int64_t i = 0; i < 4800; i++) x[i] = (i / 48) % 2 ? -1.f : 1.f; /* 500 Hz */
    CHECK(nb_audio_write(p, x, 4800, 48000) == 0);
    CHECK(nb_audio_read(p, 16000, &a) == 0);
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < a.n; i++) lo = fminf(lo, a.x[i]), hi = fmaxf(hi, a.x[i]);
    CHECK_MSG(hi == 1.f && lo == -1.f, "square wave resampled to [%.9g, %.9g]", (double)lo, (double)hi);
    nb_audio_free(&a);
    /* one sample at 48 kHz leaves none at 1 kHz: an error, not an empty clip */
    CHECK(nb_audio_write(p, x, 1, 48000) == 0);
    int rc = nb_audio_read(p, 1000, &a);
    CHECK_MSG(rc == -1 && strstr(nb_errmsg(), "too short"), "rc %d, %lld samples, '%s'", rc, (long long)a.n,
              nb_errmsg());
    if (rc == 0) nb_audio_free(&a);
    /* 1000 Hz to 768000 Hz is a ratio of 768 */
    CHECK(nb_audio_write(p, x, 100, 1000) == 0);
    CHECK(nb_audio_read(p, 768000, &a) == -1 && strstr(nb_errmsg(), "cannot resample 1000 Hz to 768000 Hz"));
    free(x);
}

/* The walk to the data chunk: a chunk of odd size is followed by a pad byte
 * (RIFF), and a data chunk whose header ends the file holds nothing of what
 * it declares; both truncated files are refused as such. */
TEST(test_audio_wav_truncation_after_odd_chunk_and_at_data_header) {
    uint8_t w[128] = {0};
    memcpy(w, "RIFF", 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    put_le32(w + 16, 16);
    w[20] = 1, w[22] = 1;
    put_le32(w + 24, 16000);
    put_le32(w + 28, 32000);
    w[32] = 2, w[34] = 16;
    memcpy(w + 36, "LIST", 4); /* 3 bytes and a pad byte */
    put_le32(w + 40, 3);
    memcpy(w + 44, "abc", 3);
    memcpy(w + 48, "data", 4);
    put_le32(w + 52, 40); /* 20 samples declared */
    size_t len = 56 + 20; /* 10 present */
    put_le32(w + 4, (uint32_t)(len - 8));
    nb_audio a;
    CHECK(nb_audio_parse(w, len, "odd.wav", 0, &a) == -1 && strstr(nb_errmsg(), "odd.wav: truncated"));
    put_le32(w + 52, 20); /* whole, it reads */
    CHECK_MSG(nb_audio_parse(w, len, "odd.wav", 0, &a) == 0 && a.n == 10, "%s", nb_errmsg());
    nb_audio_free(&a);
    CHECK(nb_audio_parse(w, 56, "hdr.wav", 0, &a) == -1 && strstr(nb_errmsg(), "hdr.wav: truncated"));
}

/* The HTK-mel centre (Hz) of band m of n_mels at rate. */
static double band_centre(int m, int n_mels, int rate) {
    double top = 2595 * log10(1 + rate / 2.0 / 700);
    return 700 * (pow(10, top * (m + 1) / (n_mels + 1) / 2595) - 1);
}

TEST(test_logmel_shape_and_silence) {
    float z[600] = {0};
    int64_t ns[] = {1, 255, 256, 257, 600};
    for (int i = 0; i < 5; i++) {
        nb_tensor *t = nb_logmel(z, ns[i], 16000, 0);
        CHECK(t && t->ndim == 2 && t->shape[0] == (ns[i] + 255) / 256 && t->shape[1] == 80 && t->persistent);
        for (int64_t k = 0; t && k < t->size; k++) CHECK_NEAR(t->data[k], logf(1e-5f), 1e-6);
        nb_tensor_free(t);
    }
    nb_tensor *t = nb_logmel(z, 600, 16000, 40);
    CHECK(t && t->shape[1] == 40);
    nb_tensor_free(t);
    CHECK(nb_logmel(z, 0, 16000, 80) == NULL);
    CHECK(nb_logmel(z, 10, 100, 80) == NULL);
    CHECK(nb_logmel(z, 10, 16000, 100000) == NULL);
}

TEST(test_logmel_pure_tone_peaks_in_its_band) {
    int rate = 16000, n_mels = 80;
    int64_t n = 8000;
    double tones[] = {250, 1000, 3000, 6500};
    for (int i = 0; i < 4; i++) {
        /* the band whose centre is nearest the tone */
        int want = 0;
        for (int m = 1; m < n_mels; m++)
            if (fabs(band_centre(m, n_mels, rate) - tones[i]) < fabs(band_centre(want, n_mels, rate) - tones[i])) want = m;
        float *x = sine(n, tones[i], rate, 0.5);
        nb_tensor *t = nb_logmel(x, n, rate, n_mels);
        const float *row = t->data + 15 * n_mels; /* a frame well inside the signal */
        int best = 0;
        for (int m = 1; m < n_mels; m++)
            if (row[m] > row[best]) best = m;
        CHECK_MSG(best == want, "%g Hz: peak in band %d, expected %d", tones[i], best, want);
        /* far bands are much lower (a pure tone, not noise) */
        CHECK(row[best] - row[(best + n_mels / 2) % n_mels] > 5);
        nb_tensor_free(t);
        free(x);
    }
}

TEST(test_logmel_frame_matches_a_direct_dft) {
    int rate = 16000, n_mels = 20;
    int64_t n = 3000;
    float *x = malloc((size_t)n * sizeof *x);
    nb_rng *r = nb_test_rng();
    for (int64_t i = 0; i < n; i++) x[i] = 2 * nb_rng_uniform(r) - 1;
    nb_tensor *t = nb_logmel(x, n, rate, n_mels);
    /* frame 1: samples 256 - 512 .. 256 + 511, zeros before the start; the
     * last frame (11: samples 2304 .. 3327) holds the last sample, at i = 695,
     * and zeros after the end */
    int64_t last = (n + 255) / 256 - 1;
    CHECK(t && t->shape[0] == last + 1 && last == 11);
    for (int64_t f = 1; t && f <= last; f += last - 1) {
        int64_t start = f * 256 - 512;
        double mag[513];
        for (int k = 0; k < 513; k++) {
            double re = 0, im = 0;
            for (int i = 0; i < 1024; i++) {
                int64_t j = start + i;
                if (j < 0 || j >= n) continue;
                double v = x[j] * (0.5 - 0.5 * cos(2 * M_PI * i / 1024));
                re += v * cos(2 * M_PI * k * i / 1024);
                im -= v * sin(2 * M_PI * k * i / 1024);
            }
            mag[k] = hypot(re, im);
        }
        double top = 2595 * log10(1 + rate / 2.0 / 700);
        for (int m = 0; m < n_mels; m++) {
            double lo = 700 * (pow(10, top * m / (n_mels + 1) / 2595) - 1);
            double mid = band_centre(m, n_mels, rate);
            double hi = 700 * (pow(10, top * (m + 2) / (n_mels + 1) / 2595) - 1);
            double s = 0;
            for (int k = 0; k < 513; k++) {
                double hz = k * rate / 1024.0;
                if (hz > lo && hz < hi) s += mag[k] * (hz <= mid ? (hz - lo) / (mid - lo) : (hi - hz) / (hi - mid));
            }
            CHECK_NEAR(t->data[f * n_mels + m], log(fmax(s, 1e-5)), 1e-4);
        }
    }
    nb_tensor_free(t);
    free(x);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A manifest error names the manifest and the line, and leaves out empty. */
static void check_manifest_error(const char *dir, const char *csv, const char *needle) {
    write_text(dir, "manifest.csv", csv);
    nb_speech_set s;
    int rc = nb_speech_open(dir, &s);
    CHECK_MSG(rc == -1 && strstr(nb_errmsg(), "manifest.csv") && strstr(nb_errmsg(), needle),
              "manifest %s: rc %d, message '%s', expected '%s'", csv, rc, nb_errmsg(), needle);
    CHECK(s.n == 0 && s.clips == NULL);
}

TEST(test_speech_manifest_parsing_and_errors) {
    char d[512];
    apath(d, sizeof d, "corpus");
    mkdir(d, 0755);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/clips", d);
    mkdir(sub, 0755);
    float x[160] = {0};
    char p[700];
    const char *names[] = {"clips/a1.wav", "clips/a2.wav", "clips/b1.wav"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        CHECK(nb_audio_write(p, x, 160, 16000) == 0);
    }
    write_text(d, "clips/a1.phones.npy", "not read by nb_speech_open");
    write_text(d, "phones.txt", "pau\nh\nax\nl\n");
    write_text(d, "manifest.csv",
               "file,speaker,text,split,phones\r\n"
               "clips/a1.wav,kal,\"Hello, \"\"world\"\"\",train,clips/a1.phones.npy\r\n"
               "\n"
               "clips/b1.wav,slt,plain text,test,\n"
               "clips/a2.wav,kal,more,valid,\n");
    nb_speech_set s;
    CHECK(nb_speech_open(d, &s) == 0);
    CHECK(s.n == 3 && s.nspeakers == 2 && s.n_phones == 4);
    if (s.n == 3 && s.nspeakers == 2) {
        CHECK(!strcmp(s.speakers[0], "kal") && !strcmp(s.speakers[1], "slt"));
        CHECK(!strcmp(s.clips[0].text, "Hello, \"world\""));
        CHECK(s.clips[0].speaker == 0 && s.clips[1].speaker == 1 && s.clips[2].speaker == 0);
        CHECK(s.clips[0].split == 0 && s.clips[1].split == 2 && s.clips[2].split == 1);
        CHECK(s.clips[0].phones && strstr(s.clips[0].phones, "a1.phones.npy") && s.clips[1].phones == NULL);
        CHECK(strstr(s.clips[1].path, "clips/b1.wav") && strstr(s.clips[1].path, d) == s.clips[1].path);
        nb_audio a;
        CHECK(nb_audio_read(s.clips[1].path, 0, &a) == 0 && a.n == 160);
        nb_audio_free(&a);
    }
    nb_speech_free(&s);
    /* A byte-order mark before the header (Excel, PowerShell) is skipped. */
    write_text(d, "manifest.csv", "\xEF\xBB\xBF" "file,speaker\r\nclips/a1.wav,kal\r\n");
    CHECK_MSG(nb_speech_open(d, &s) == 0 && s.n == 1 && s.nspeakers == 1, "%s", nb_errmsg());
    nb_speech_free(&s);
    /* errors: manifest name and line */
    check_manifest_error(d, "file,speaker,text,split\nclips/a1.wav,kal,hi,train\nclips/a2.wav,kal,hi,dev\n",
                         ":3: split 'dev'");
    check_manifest_error(d, "file,speaker,text,split\nclips/a1.wav,kal,hi\n", ":2: 3 fields, expected 4");
    check_manifest_error(d, "file,voice,text\n", ":1: unknown column 'voice'");
    check_manifest_error(d, "text,split\n", ":1: the header needs");
    check_manifest_error(d, "file,speaker\nclips/a1.wav,kal\nclips/zz.wav,kal\n", ":3: ");
    check_manifest_error(d, "file,speaker\nclips/zz.wav,kal\n", "zz.wav: no such audio file");
    check_manifest_error(d, "file,speaker,text\nclips/a1.wav,kal,\"open\n", ":2: unterminated");
    check_manifest_error(d, "file,speaker,text\nclips/a1.wav,kal,\"a\"b\n", ":2: expected ','");
    check_manifest_error(d, "file,speaker,phones\nclips/a1.wav,kal,none.npy\n", ":2: ");
    check_manifest_error(d, "file,speaker\n", "no clips");
    check_manifest_error(d, "", "empty");
    check_manifest_error(d, "file,speaker,file\n", "twice");
    /* phones without an inventory */
    snprintf(p, sizeof p, "%s/phones.txt", d);
    unlink(p);
    check_manifest_error(d, "file,speaker,phones\nclips/a1.wav,kal,clips/a1.phones.npy\n", "phones.txt");
    CHECK(nb_speech_open("/nonexistent/speech", &s) == -1 && strstr(nb_errmsg(), "/nonexistent/speech"));
}

/* FNV-1a, 32 bits, written out here as the reference for the hash split. */
static uint32_t fnv1a(const char *s) {
    uint32_t h = 0x811c9dc5u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x01000193u;
    return h;
}

/* Manifest edges: the split hashed from the file's base name when the split
 * column is absent or empty (FNV-1a mod 10: 8 valid, 9 test, else train),
 * an absolute path, the text column first, the speaker column required, a
 * row with more fields than the header, and CRLF blank lines in the phone
 * inventory. */
TEST(test_speech_manifest_edges_and_hash_split) {
    CHECK(fnv1a("a") == 0xe40c292cu && fnv1a("") == 0x811c9dc5u); /* published FNV-1a test values */
    char d[512];
    apath(d, sizeof d, "edges");
    mkdir(d, 0755);
    char p[700];
    snprintf(p, sizeof p, "%s/sub", d);
    mkdir(p, 0755);
    float x[64] = {0};
    enum { N = 30 };
    char csv[N * 64 + 64] = "text,file,speaker,split\n";
    int at = (int)strlen(csv), classes[3] = {0};
    for (int k = 0; k < N; k++) {
        snprintf(p, sizeof p, "%s/sub/c%d.wav", d, k);
        CHECK(nb_audio_write(p, x, 64, 16000) == 0);
        at += snprintf(csv + at, sizeof csv - (size_t)at, "t%d,sub/c%d.wav,s%d,\n", k, k, k % 3);
    }
    write_text(d, "manifest.csv", csv);
    nb_speech_set s;
    CHECK_MSG(nb_speech_open(d, &s) == 0 && s.n == N && s.nspeakers == 3, "%s", nb_errmsg());
    for (int k = 0; k < s.n && s.n == N; k++) {
        char base[32], t[32];
        snprintf(base, sizeof base, "c%d.wav", k);
        snprintf(t, sizeof t, "t%d", k);
        uint32_t r = fnv1a(base) % 10;
        int want = r == 8 ? 1 : r == 9 ? 2 : 0;
        classes[want]++;
        CHECK_MSG(s.clips[k].split == want, "%s: split %d, expected %d", base, s.clips[k].split, want);
        CHECK(!strcmp(s.clips[k].text, t) && s.clips[k].speaker == k % 3);
    }
    CHECK_MSG(classes[0] && classes[1] && classes[2], "names cover %d/%d/%d", classes[0], classes[1], classes[2]);
    nb_speech_free(&s);
    /* an absolute path is taken as it is */
    snprintf(csv, sizeof csv, "file,speaker\n%s/sub/c0.wav,kal\n", d);
    write_text(d, "manifest.csv", csv);
    CHECK_MSG(nb_speech_open(d, &s) == 0 && s.n == 1, "%s", nb_errmsg());
    if (s.n == 1) {
        snprintf(p, sizeof p, "%s/sub/c0.wav", d);
        CHECK_MSG(!strcmp(s.clips[0].path, p), "%s", s.clips[0].path);
    }
    nb_speech_free(&s);
    check_manifest_error(d, "file,text\nsub/c0.wav,hi\n", ":1: the header needs the columns file and speaker");
    check_manifest_error(d, "file,speaker\nsub/c0.wav,kal,extra\n", ":2: 3 fields, expected 2");
    /* CRLF lines, a blank one among them, in phones.txt: two phones */
    write_text(d, "phones.txt", "pau\r\n\r\nh\r\n");
    write_text(d, "sub/c0.phones.npy", "not read by nb_speech_open");
    write_text(d, "manifest.csv", "file,speaker,phones\nsub/c0.wav,kal,sub/c0.phones.npy\n");
    CHECK_MSG(nb_speech_open(d, &s) == 0 && s.n_phones == 2, "%s: %d phones", nb_errmsg(), s.n_phones);
    nb_speech_free(&s);
}

TEST(test_speech_folder_per_speaker) {
    char d[512];
    apath(d, sizeof d, "folders");
    mkdir(d, 0755);
    char p[700];
    const char *spk[] = {"bob", "alice"};
    float x[100] = {0};
    int count = 0;
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/%s", d, spk[s]);
        mkdir(p, 0755);
        for (int k = 0; k < 20; k++) {
            snprintf(p, sizeof p, "%s/%s/clip%02d.wav", d, spk[s], k);
            CHECK(nb_audio_write(p, x, 100, 16000) == 0);
            count++;
        }
        if (s == 0) { /* an MP3 among the WAVs: libsndfile decodes it too */
            snprintf(p, sizeof p, "%s/%s/take.mp3", d, spk[s]);
            CHECK(sf_write_file(p, SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 1, 16000, x, 100) == 0);
            count++;
        }
        snprintf(p, sizeof p, "%s/%s/notes.txt", d, spk[s]);
        write_text(d, p + strlen(d) + 1, "ignored");
    }
    /* skipped: a macOS AppleDouble file "._x.wav" beside the clips, a hidden
     * folder holding audio, and a speaker folder with no audio at all */
    snprintf(p, sizeof p, "%s/bob/._clip00.wav", d);
    write_text(d, p + strlen(d) + 1, "Mac OS X resource fork, not audio");
    snprintf(p, sizeof p, "%s/.cache", d);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/.cache/x.wav", d);
    CHECK(nb_audio_write(p, x, 100, 16000) == 0);
    snprintf(p, sizeof p, "%s/nobody", d);
    mkdir(p, 0755);
    nb_speech_set s;
    CHECK(nb_speech_open(d, &s) == 0);
    CHECK_MSG(s.n == count && s.nspeakers == 2 && s.n_phones == 0, "%d clips, %d speakers", s.n, s.nspeakers);
    if (s.nspeakers == 2) CHECK(!strcmp(s.speakers[0], "alice") && !strcmp(s.speakers[1], "bob"));
    int held = 0;
    for (int i = 0; i < s.n; i++) {
        held += s.clips[i].split != 0;
        CHECK(s.clips[i].phones == NULL && s.clips[i].text && !s.clips[i].text[0]);
    }
    /* a hash of the name: the same names are held out for both speakers */
    CHECK(held > 0 && held < s.n && held % 2 == 0);
    for (int i = 0; i < s.n / 2 && s.n == count; i++) CHECK(s.clips[i].split == s.clips[i + s.n / 2].split);
    nb_speech_free(&s);
    char e[600];
    snprintf(e, sizeof e, "%s/alice", d); /* a folder with only files: no speakers */
    CHECK(nb_speech_open(e, &s) == -1 && strstr(nb_errmsg(), "alice"));
}
