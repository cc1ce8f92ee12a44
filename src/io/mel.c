/* mel.c — log-mel spectrograms: a short-time Fourier transform through FFTW
 * (real-to-complex, window 1024, Hann, hop NB_FEATURE_HOP, frames centred on
 * t * hop with zeros outside the signal), the magnitudes pooled by triangular
 * filters equally spaced on the HTK mel scale, then a floored natural log. */
#include "io.h"
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEL_WIN 1024
#define MEL_BINS (MEL_WIN / 2 + 1)
#define MEL_FLOOR 1e-5f
#define MEL_MAX_BANDS 512

/* HTK: mel(f) = 2595 log10(1 + f / 700), and its inverse. */
static double hz_to_mel(double f) { return 2595.0 * log10(1.0 + f / 700.0); }
static double mel_to_hz(double m) { return 700.0 * (pow(10.0, m / 2595.0) - 1.0); }

/* fb[m * MEL_BINS + k]: the weight of FFT bin k (frequency k * rate / MEL_WIN)
 * in band m, a triangle rising from edge m to a peak of 1 at edge m + 1 and
 * falling to 0 at edge m + 2; the n_mels + 2 edges are equally spaced in mel
 * from 0 Hz to rate / 2. */
static void mel_filters(int rate, int n_mels, float *fb) {
    double top = hz_to_mel(rate / 2.0);
    double *edge = malloc((size_t)(n_mels + 2) * sizeof *edge);
    if (!edge) nb_oom("mel filter edges", (size_t)(n_mels + 2) * sizeof *edge);
    for (int i = 0; i < n_mels + 2; i++) edge[i] = mel_to_hz(top * i / (n_mels + 1));
    for (int m = 0; m < n_mels; m++) {
        double lo = edge[m], mid = edge[m + 1], hi = edge[m + 2];
        for (int k = 0; k < MEL_BINS; k++) {
            double f = (double)k * rate / MEL_WIN, w = 0;
            if (f > lo && f < hi) w = f <= mid ? (f - lo) / (mid - lo) : (hi - f) / (hi - mid);
            fb[(size_t)m * MEL_BINS + k] = (float)w;
        }
    }
    free(edge);
}

static pthread_mutex_t planner = PTHREAD_MUTEX_INITIALIZER;

nb_tensor *nb_logmel(const float *x, int64_t n, int rate, int n_mels) {
    if (n_mels <= 0) n_mels = 80;
    if (n < 1) {
        nb_error("logmel: %lld samples, expected at least 1", (long long)n);
        return NULL;
    }
    if (rate < 1000) {
        nb_error("logmel: sample rate %d Hz, expected at least 1000", rate);
        return NULL;
    }
    if (n_mels > MEL_MAX_BANDS) {
        nb_error("logmel: %d mel bands, expected 1..%d", n_mels, MEL_MAX_BANDS);
        return NULL;
    }
    int64_t frames = (n + NB_FEATURE_HOP - 1) / NB_FEATURE_HOP;
    nb_tensor *out = nb_tensor_new(2, (int64_t[]){frames, n_mels});
    float *fb = malloc((size_t)n_mels * MEL_BINS * sizeof(float));
    float win[MEL_WIN];
    float *buf = fftwf_alloc_real(MEL_WIN);
    fftwf_complex *spec = fftwf_alloc_complex(MEL_BINS);
    if (!fb || !buf || !spec) nb_oom("a log-mel spectrogram", (size_t)n_mels * MEL_BINS * sizeof(float));
    mel_filters(rate, n_mels, fb);
    /* each triangle covers a few bins: sum only over [k0, k1) */
    int k0[MEL_MAX_BANDS], k1[MEL_MAX_BANDS];
    for (int m = 0; m < n_mels; m++) {
        const float *w = fb + (size_t)m * MEL_BINS;
        k0[m] = 0, k1[m] = 0;
        while (k0[m] < MEL_BINS && w[k0[m]] == 0) k0[m]++;
        for (int k = k0[m]; k < MEL_BINS; k++)
            if (w[k] != 0) k1[m] = k + 1;
    }
    for (int i = 0; i < MEL_WIN; i++) win[i] = (float)(0.5 - 0.5 * cos(2 * M_PI * i / MEL_WIN)); /* periodic Hann */
    /* FFTW's planner is not thread-safe (only fftwf_execute is): plans are
     * made and destroyed one thread at a time. */
    pthread_mutex_lock(&planner);
    fftwf_plan plan = fftwf_plan_dft_r2c_1d(MEL_WIN, buf, spec, FFTW_ESTIMATE);
    pthread_mutex_unlock(&planner);
    float mag[MEL_BINS];
    for (int64_t t = 0; t < frames; t++) {
        int64_t start = t * NB_FEATURE_HOP - MEL_WIN / 2;
        for (int i = 0; i < MEL_WIN; i++) {
            int64_t j = start + i;
            buf[i] = j >= 0 && j < n ? x[j] * win[i] : 0.0f;
        }
        fftwf_execute(plan);
        for (int k = 0; k < MEL_BINS; k++) mag[k] = hypotf(spec[k][0], spec[k][1]);
        float *row = out->data + t * n_mels;
        for (int m = 0; m < n_mels; m++) {
            const float *w = fb + (size_t)m * MEL_BINS;
            float s = 0;
            for (int k = k0[m]; k < k1[m]; k++) s += w[k] * mag[k];
            row[m] = logf(s > MEL_FLOOR ? s : MEL_FLOOR);
        }
    }
    pthread_mutex_lock(&planner);
    fftwf_destroy_plan(plan);
    pthread_mutex_unlock(&planner);
    fftwf_free(buf);
    fftwf_free(spec);
    free(fb);
    return out;
}
