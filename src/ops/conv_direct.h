/* conv_direct.h — the direct convolution kernels (conv_avx512.c, or
 * conv_avx2.c on CPUs without AVX-512) as conv.c calls them. Internal to
 * src/ops/conv*.c.
 *
 * With few channels (16-64) and small images, im2col copies each input value
 * K times into short rows and OpenBLAS runs these thin GEMMs at little more
 * than half the FMA peak. The direct kernels read a zero-padded copy of the
 * image in place and vectorize over output channels instead, 16 at a time
 * (a panel: one AVX-512 register, or two AVX2 ones), as oneDNN does. A
 * kernel's taps run over (c, kh, kw); koff[k] is where tap k reads, relative
 * to an output position's top-left corner in the padded image. */
#ifndef NB_CONV_DIRECT_H
#define NB_CONV_DIRECT_H
#include "../core/internal.h"

/* ceil(a / b) for b > 0, and 0 for a <= 0. */
static inline int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define NB_CONV_DIRECT 1
#define VB 16        /* channels per panel */
#define ROW_SLACK 16 /* floats a kernel may read past a padded image */

/* The taps of a direct kernel: KH kernel rows of KW taps per channel, dh
 * rows and dw columns apart; rows [v0, v1) and columns [u0, u1) of the padded
 * image hold data, the rest is padding. */
typedef struct {
    int64_t KH, KW, dh, dw, v0, v1, u0, u1;
} conv_taps;

static inline int64_t panels_of(int64_t n) { return (n + VB - 1) / VB; }

/* The output rows [*lo, *hi) where any of taps k0 .. k0+nk-1 reads data
 * (trows[2k], trows[2k+1]: tap k's, from conv.c's tap_rows): outside them the
 * weight gradient's products are with padding zeros, and are skipped. */
static inline void tile_rows(const int64_t *trows, int64_t k0, int nk, int64_t *lo, int64_t *hi) {
    *lo = trows[2 * k0], *hi = trows[2 * k0 + 1];
    for (int j = 1; j < nk; j++) {
        if (trows[2 * (k0 + j)] < *lo) *lo = trows[2 * (k0 + j)];
        if (trows[2 * (k0 + j) + 1] > *hi) *hi = trows[2 * (k0 + j) + 1];
    }
}

/* One image: y [n, OH*OW] = sum over taps k of xpad[koff[k] + at(p)] wp[k, :]
 * (+ bias), at(p) being the top-left corner of output position p, with the
 * weights in panels wp [ceil(n/16)][K][16]. xpad has ROW_SLACK floats after it. */
void nb__conv_image(const float *xpad, int64_t Wp, const int64_t *koff, int64_t K, const conv_taps *t,
                    const float *wp, int64_t n, int64_t OH, int64_t OW, int64_t sh, int64_t sw, const float *bias,
                    float *y);

/* One image's share of the weight gradient: gwT [K, ncp] += sum over
 * positions p of xpad[koff[k] + at(p)] gyT[p, :], gyT [OH*OW, ncp] being the
 * output gradient with channels last, padded to ncp (a multiple of 16). The
 * output rows each tap runs over come from trows (tile_rows), which also
 * bound them by OH. */
void nb__conv_wgrad_image(const float *xpad, int64_t Wp, const int64_t *koff, const int64_t *trows, int64_t K,
                          const conv_taps *t, const float *gyT, int64_t ncp, int64_t OW, int64_t sh, int64_t sw,
                          float *gwT);

/* gyT [P, ncp] = gy [OC, P] transposed; channels OC..ncp zero (the AVX2
 * version leaves them as they are: zero from the scratch's clearing). */
void nb__conv_channels_last(const float *gy, int64_t OC, int64_t P, int64_t ncp, float *gyT);
#endif /* AVX2 + FMA */
#endif
