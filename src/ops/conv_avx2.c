/* conv_avx2.c — the direct convolution kernels for AVX2 CPUs without
 * AVX-512 (see conv_direct.h): a 16-channel panel is two 8-float registers,
 * and a register tile is 16 channels x 6 positions (forward) or 16 channels
 * x 6 kernel taps (weight gradient), so each step is 2 vector loads, 6
 * broadcasts and 12 FMAs, with no edge cases inside. */
#include "conv_direct.h"
#if defined(NB_CONV_DIRECT) && !defined(__AVX512F__)
#define TP 6 /* positions or taps per register tile */

/* gyT [P, ncp] = gy [OC, P] transposed (channels OC..ncp stay as they are:
 * zero, from pad_clear). */
void nb__conv_channels_last(const float *gy, int64_t OC, int64_t P, int64_t ncp, float *gyT) {
    for (int64_t o = 0; o < OC; o++)
        for (int64_t p = 0; p < P; p++) gyT[p * ncp + o] = gy[o * P + p];
}
/* One step of a register tile: the value at a (a tap of one position) times
 * the 16 channels in w0, w1, into the two accumulators of that row. */
#define TILE_FMA(a, c0, c1)                                   \
    do {                                                      \
        const __m256 a_ = _mm256_broadcast_ss(a);             \
        c0 = _mm256_fmadd_ps(a_, w0, c0);                     \
        c1 = _mm256_fmadd_ps(a_, w1, c1);                     \
    } while (0)
/* One step of the whole tile: the values at its six addresses (one per row). */
#define TILE_FMA6(a0, a1, a2, a3, a4, a5)                     \
    do {                                                      \
        TILE_FMA(a0, c00, c01);                               \
        TILE_FMA(a1, c10, c11);                               \
        TILE_FMA(a2, c20, c21);                               \
        TILE_FMA(a3, c30, c31);                               \
        TILE_FMA(a4, c40, c41);                               \
        TILE_FMA(a5, c50, c51);                               \
    } while (0)
#define TILE_DECL                                                                                  \
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,      \
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00
#define TILE_STORE(t)                                                                              \
    do {                                                                                           \
        _mm256_storeu_ps(t + 0, c00), _mm256_storeu_ps(t + 8, c01), _mm256_storeu_ps(t + 16, c10);   \
        _mm256_storeu_ps(t + 24, c11), _mm256_storeu_ps(t + 32, c20), _mm256_storeu_ps(t + 40, c21); \
        _mm256_storeu_ps(t + 48, c30), _mm256_storeu_ps(t + 56, c31), _mm256_storeu_ps(t + 64, c40); \
        _mm256_storeu_ps(t + 72, c41), _mm256_storeu_ps(t + 80, c50), _mm256_storeu_ps(t + 88, c51); \
    } while (0)

/* One image: y [n, OH*OW] = sum over taps k of xpad[koff[k] + at(p)] wp[k, :]
 * (+ bias), where at(p) is the top-left corner of output position p. */
void nb__conv_image(const float *xpad, int64_t Wp, const int64_t *koff, int64_t K, const conv_taps *t,
                    const float *wp, int64_t n, int64_t OH, int64_t OW, int64_t sh, int64_t sw, const float *bias,
                    float *y) {
    (void)t; /* (the AVX-512 row tiles' business) */
    int64_t P = OH * OW;
    float tile[TP * VB];
    for (int64_t pb = 0; pb < panels_of(n); pb++) {
        const float *wb = wp + pb * K * VB;
        int64_t oh = 0, ow = 0, nc = n - pb * VB < VB ? n - pb * VB : VB;
        for (int64_t p0 = 0; p0 < P; p0 += TP) {
            int np = P - p0 < TP ? (int)(P - p0) : TP;
            const float *at[TP];
            for (int j = 0; j < np; j++) {
                at[j] = xpad + oh * sh * Wp + ow * sw;
                if (++ow == OW) ow = 0, oh++;
            }
            for (int j = np; j < TP; j++) at[j] = at[0]; /* a short last tile repeats its first position */
            const float *a0 = at[0], *a1 = at[1], *a2 = at[2], *a3 = at[3], *a4 = at[4], *a5 = at[5];
            TILE_DECL;
            for (int64_t k = 0; k < K; k++) {
                const __m256 w0 = _mm256_loadu_ps(wb + k * VB), w1 = _mm256_loadu_ps(wb + k * VB + 8);
                const int64_t o = koff[k];
                TILE_FMA6(a0 + o, a1 + o, a2 + o, a3 + o, a4 + o, a5 + o);
            }
            TILE_STORE(tile);
            for (int64_t c = 0; c < nc; c++) { /* the tile is [position][channel]; y is [channel][position] */
                float bv = bias ? bias[pb * VB + c] : 0.f, *yr = y + (pb * VB + c) * P + p0;
                for (int j = 0; j < np; j++) yr[j] = tile[j * VB + c] + bv;
            }
        }
    }
}

/* One image's share of the weight gradient (see conv_direct.h). */
void nb__conv_wgrad_image(const float *xpad, int64_t Wp, const int64_t *koff, const int64_t *trows, int64_t K,
                          const conv_taps *t, const float *gyT, int64_t ncp, int64_t OW, int64_t sh, int64_t sw,
                          float *gwT) {
    (void)t;
    float tile[TP * VB];
    for (int64_t pb = 0; pb < ncp / VB; pb++)
        for (int64_t k0 = 0; k0 < K; k0 += TP) {
            int nk = K - k0 < TP ? (int)(K - k0) : TP;
            int64_t o[TP];
            for (int j = 0; j < TP; j++) o[j] = koff[k0 + (j < nk ? j : 0)]; /* a short tile repeats tap k0 */
            const int64_t o0 = o[0], o1 = o[1], o2 = o[2], o3 = o[3], o4 = o[4], o5 = o[5];
            TILE_DECL;
            int64_t oh0, oh1;
            tile_rows(trows, k0, nk, &oh0, &oh1);
            const float *g = gyT + oh0 * OW * ncp + pb * VB;
            for (int64_t oh = oh0; oh < oh1; oh++) {
                const float *xr = xpad + oh * sh * Wp;
                for (int64_t ow = 0; ow < OW; ow++, g += ncp) {
                    const float *a = xr + ow * sw;
                    const __m256 w0 = _mm256_loadu_ps(g), w1 = _mm256_loadu_ps(g + 8);
                    TILE_FMA6(a + o0, a + o1, a + o2, a + o3, a + o4, a + o5);
                }
            }
            TILE_STORE(tile);
            for (int j = 0; j < nk; j++) {
                float *dst = gwT + (k0 + j) * ncp + pb * VB;
                for (int c = 0; c < VB; c++) dst[c] += tile[j * VB + c];
            }
        }
}
#endif /* AVX2 without AVX-512 */
