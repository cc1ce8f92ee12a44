/* conv_avx512.c — the direct convolution kernels for AVX-512 CPUs (see
 * conv_direct.h): a 16-channel panel is one register. Row tiles (unit
 * horizontal stride and dilation, 3 or 5 taps per kernel row) for the
 * forward, the input gradient and the weight gradient; tiles of positions or
 * taps for the rest. */
#include "conv_direct.h"
#if defined(NB_CONV_DIRECT) && defined(__AVX512F__)

/* AVX-512: a panel's 16 channels fill one register, so a register tile is 12
 * accumulators as either 12 positions (taps) of one panel or 6 of two panels:
 * at least the 8 independent multiply-adds two FMA units with a 4-cycle
 * latency need in flight. Each tap costs one or two vector loads and 12 or 6
 * broadcasts for 12 FMAs. */
#define T512 12

/* The first two steps of a transpose, on four rows r[0..4): afterwards, in
 * each 128-bit lane l, q[j] holds element 4l+j of the four rows (pairs of
 * floats interleaved, then pairs of pairs). */
static inline void transpose_quads(const __m512 *r, __m512 *q) {
    __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(r[0], r[1])), t1 = _mm512_castps_pd(_mm512_unpackhi_ps(r[0], r[1]));
    __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(r[2], r[3])), t3 = _mm512_castps_pd(_mm512_unpackhi_ps(r[2], r[3]));
    q[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    q[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    q[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    q[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
}

/* r[0..16) as the rows of a 16x16 matrix, transposed in registers
 * (transpose_quads on each four rows, then 128-bit quarters, then halves). */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 4) transpose_quads(r + i, r + i);
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}

/* Stores a tile of at most 8 positions: r[0..8) are positions of 16
 * channels; channel ch < nc gets its first nv positions at y + ch*ld. An
 * 8x16 transpose in 24 shuffles (transpose_quads on each four positions,
 * then 128-bit lanes of two registers side by side), where transpose16
 * takes 64 for 16 rows. */
static inline void store_tile8(const __m512 r[8], int64_t nc, int nv, float *y, int64_t ld) {
    __m512 u[8]; /* u[i] (u[4+i]): in 128-bit lane l, channel 4l+i at positions 0-3 (4-7) */
    transpose_quads(r, u);
    transpose_quads(r + 4, u + 4);
    /* lanes (l of u[i], l of u[4+i]) side by side: channel 4l+i's 8 positions */
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    const __mmask8 keep = (__mmask8)((1u << nv) - 1);
    for (int i = 0; i < 4; i++) {
        __m512 v[2] = {_mm512_permutex2var_ps(u[i], lo, u[4 + i]), _mm512_permutex2var_ps(u[i], hi, u[4 + i])};
        for (int k = 0; k < 4; k++) { /* channels i, 4+i (v[0]), 8+i, 12+i (v[1]) */
            int64_t ch = 4 * k + i;
            if (ch >= nc) continue;
            __m256 row = k & 1 ? _mm512_extractf32x8_ps(v[k >> 1], 1) : _mm512_castps512_ps256(v[k >> 1]);
            _mm256_mask_storeu_ps(y + ch * ld, keep, row);
        }
    }
}

/* gyT [P, ncp] = gy [OC, P] transposed, channels OC..ncp zero: 16x16 blocks
 * in registers, the last P % 16 positions one by one. */
void nb__conv_channels_last(const float *gy, int64_t OC, int64_t P, int64_t ncp, float *gyT) {
    int64_t p0 = 0;
    for (; p0 + 16 <= P; p0 += 16)
        for (int64_t o0 = 0; o0 < ncp; o0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = o0 + i < OC ? _mm512_loadu_ps(gy + (o0 + i) * P + p0) : _mm512_setzero_ps();
            transpose16(r);
            for (int i = 0; i < 16; i++) _mm512_storeu_ps(gyT + (p0 + i) * ncp + o0, r[i]);
        }
    for (; p0 < P; p0++)
        for (int64_t o = 0; o < OC; o++) gyT[p0 * ncp + o] = gy[o * P + p0];
}

/* Row tiles, for unit horizontal stride and dilation: a tile is R
 * consecutive outputs of one row, in one or two panels. For each kernel row
 * (c, m) the R + KW - 1 inputs under the tile are each broadcast once and
 * multiplied, for every output they touch, by that row's KW weight vectors,
 * held in registers: R*KW FMAs per panel for R + KW - 1 broadcasts and KW
 * loads, where a position tile needs a broadcast for each FMA or two. */

/* One kernel row of a row tile: xr its first input, u0/u1 its KW weight
 * vectors in each panel. The first row sets the sums instead of adding to
 * zeros. With lo (hi), the first (last) (KW-1)/2 inputs are padding, at the
 * left (right) end of a "same" convolution's row, and their products are
 * skipped: 6 of 70 in a 14-wide row of a 5x5 kernel. Loops over the register
 * arrays have constant counts: one of R or KW iterations, unrolled only
 * after inlining, makes the compiler keep the array on the stack. */
static inline __attribute__((always_inline)) void row_tile_row(const float *xr, const float *u0, const float *u1,
                                                               __m512 *c, const int KW, const int R,
                                                               const bool two, const bool first, const bool lo,
                                                               const bool hi) {
    const int e0 = lo ? (KW - 1) / 2 : 0, e1 = R + KW - 1 - (hi ? (KW - 1) / 2 : 0); /* inputs with data */
    __m512 u[8], v[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        if (k < KW) {
            u[k] = _mm512_loadu_ps(u0 + k * VB);
            if (two) v[k] = _mm512_loadu_ps(u1 + k * VB);
        }
#pragma GCC unroll 32
    for (int e = 0; e < 32; e++) {
        if (e < e0 || e >= e1) continue;
        const __m512 b = _mm512_set1_ps(xr[e]);
#pragma GCC unroll 8
        for (int k = 0; k < KW; k++) {
            const int j = e - k; /* the output that input e meets at tap k */
            if (j < 0 || j >= R) continue;
            if (first && e == (j > e0 ? j : e0)) { /* output j's first input with data */
                c[j] = _mm512_mul_ps(b, u[k]);
                if (two) c[R + j] = _mm512_mul_ps(b, v[k]);
            } else {
                c[j] = _mm512_fmadd_ps(b, u[k], c[j]);
                if (two) c[R + j] = _mm512_fmadd_ps(b, v[k], c[R + j]);
            }
        }
    }
}

/* A row tile over the kernel rows (c, m), c < C, m0 <= m < m1 (at least
 * one; the rows outside read only padding, and are skipped): x is the tile's
 * first input of kernel row 0, and row r = c*KH + m starts koff[r*KW]
 * further. The sums leave through acc [panel][R][16]. */
static inline __attribute__((always_inline)) void row_tile(const float *x, const int64_t *koff, int64_t C,
                                                           int64_t KH, int64_t m0, int64_t m1, const float *w0,
                                                           const float *w1, float *acc, const int KW, const int R,
                                                           const bool two, const bool lo, const bool hi) {
    __m512 c[32];
    row_tile_row(x + koff[m0 * KW], w0 + m0 * KW * VB, w1 + m0 * KW * VB, c, KW, R, two, true, lo, hi);
    if (m0 == 0 && m1 == KH) { /* every row: one loop */
        for (int64_t r = 1; r < C * KH; r++)
            row_tile_row(x + koff[r * KW], w0 + r * KW * VB, w1 + r * KW * VB, c, KW, R, two, false, lo, hi);
    } else {
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t r = ch * KH + (ch ? m0 : m0 + 1); r < ch * KH + m1; r++)
                row_tile_row(x + koff[r * KW], w0 + r * KW * VB, w1 + r * KW * VB, c, KW, R, two, false, lo, hi);
    }
#pragma GCC unroll 32
    for (int j = 0; j < 32; j++)
        if (j < (two ? 2 * R : R)) _mm512_storeu_ps(acc + j * VB, c[j]);
}

typedef void (*row_tile_fn)(const float *, const int64_t *, int64_t, int64_t, int64_t, int64_t, const float *,
                            const float *, float *);
/* Each (KW, R, panels) comes in four: edges skipped at neither end, the
 * left, the right, both. */
#define ROW_TILE_EDGES(KW, R, TWO, LO, HI)                                                                     \
    static void row_tile_##KW##_##R##_##TWO##_##LO##HI(const float *x, const int64_t *koff, int64_t C,          \
                                                       int64_t KH, int64_t m0, int64_t m1, const float *w0,     \
                                                       const float *w1, float *acc) {                           \
        row_tile(x, koff, C, KH, m0, m1, w0, w1, acc, KW, R, TWO, LO, HI);                                      \
    }
#define ROW_TILE(KW, R, TWO)                                                                                   \
    ROW_TILE_EDGES(KW, R, TWO, 0, 0)                                                                           \
    ROW_TILE_EDGES(KW, R, TWO, 1, 0)                                                                           \
    ROW_TILE_EDGES(KW, R, TWO, 0, 1)                                                                           \
    ROW_TILE_EDGES(KW, R, TWO, 1, 1)
#define ROW_TILE_FNS(KW, R, TWO)                                                                               \
    { row_tile_##KW##_##R##_##TWO##_00, row_tile_##KW##_##R##_##TWO##_10, row_tile_##KW##_##R##_##TWO##_01,    \
      row_tile_##KW##_##R##_##TWO##_11 }
/* One panel: R accumulators + KW weights + a broadcast of the 32 registers;
 * two panels: 2R + 2KW + 1. */
ROW_TILE(3, 8, 0)
ROW_TILE(3, 14, 0)
ROW_TILE(3, 16, 0)
ROW_TILE(3, 4, 1)
ROW_TILE(3, 7, 1)
ROW_TILE(3, 8, 1)
ROW_TILE(5, 8, 0)
ROW_TILE(5, 14, 0)
ROW_TILE(5, 16, 0)
ROW_TILE(5, 4, 1)
ROW_TILE(5, 7, 1)
ROW_TILE(5, 8, 1)
static const struct {
    int kw, r;
    bool two;
    row_tile_fn fn[4]; /* by edges skipped: none, left, right, both */
} row_tiles[] = {
    {3, 8, 0, ROW_TILE_FNS(3, 8, 0)}, {3, 14, 0, ROW_TILE_FNS(3, 14, 0)}, {3, 16, 0, ROW_TILE_FNS(3, 16, 0)},
    {3, 4, 1, ROW_TILE_FNS(3, 4, 1)}, {3, 7, 1, ROW_TILE_FNS(3, 7, 1)},   {3, 8, 1, ROW_TILE_FNS(3, 8, 1)},
    {5, 8, 0, ROW_TILE_FNS(5, 8, 0)}, {5, 14, 0, ROW_TILE_FNS(5, 14, 0)}, {5, 16, 0, ROW_TILE_FNS(5, 16, 0)},
    {5, 4, 1, ROW_TILE_FNS(5, 4, 1)}, {5, 7, 1, ROW_TILE_FNS(5, 7, 1)},   {5, 8, 1, ROW_TILE_FNS(5, 8, 1)},
};

/* The row tile for KW taps per kernel row and one or two panels that covers
 * a row of OW outputs with the least work, counting the outputs a last
 * short tile computes in vain and a fixed cost per tile; NULL if none has
 * this KW. */
static const row_tile_fn *row_tile_pick(int64_t KW, bool two, int64_t OW, int *R) {
    const row_tile_fn *best = NULL;
    int64_t best_cost = 0;
    for (size_t i = 0; i < sizeof row_tiles / sizeof row_tiles[0]; i++) {
        if (row_tiles[i].kw != KW || row_tiles[i].two != two) continue;
        int64_t r = row_tiles[i].r, tiles = (OW + r - 1) / r, cost = tiles * (r * KW + 16);
        if (!best || cost < best_cost) best = row_tiles[i].fn, best_cost = cost, *R = (int)r;
    }
    return best;
}

/* One image by row tiles (see row_tile); y as nb__conv_image's. Kernel rows
 * that fall on padding rows only are skipped: 2 of 5 at the top and bottom
 * outputs of a 5x5 "same" convolution, 6 of the 70 kernel rows of a 14-row
 * output; the padding columns at a row's ends are skipped by the tile
 * variants (row_tile_row's lo and hi). */
static void direct_image_rows(const float *xpad, int64_t Wp, const int64_t *koff, int64_t K, const conv_taps *t,
                              const float *wp, int64_t n, int64_t OH, int64_t OW, int64_t sh, const float *bias,
                              float *y) {
    int64_t P = OH * OW, npan = panels_of(n), C = K / (t->KH * t->KW);
    _Alignas(64) float acc[2 * 16 * VB];
    for (int64_t pb = 0; pb < npan; pb += 2) {
        const bool two = pb + 1 < npan;
        int R = 0;
        const row_tile_fn *tile = row_tile_pick(t->KW, two, OW, &R);
        const int64_t P2 = (t->KW - 1) / 2;
        const float *w0p = wp + pb * K * VB, *w1p = w0p + K * VB;
        for (int64_t oh = 0; oh < OH; oh++) {
            /* kernel rows m whose input row oh*sh + m*dh holds data */
            int64_t m0 = ceil_div(t->v0 - oh * sh, t->dh), m1 = ceil_div(t->v1 - oh * sh, t->dh);
            if (m1 > t->KH) m1 = t->KH;
            for (int64_t ow0 = 0; ow0 < OW; ow0 += R) {
                /* whether the tile's first or last P2 inputs are padding columns */
                const bool lo = t->u0 - ow0 >= P2, hi = ow0 + R + t->KW - 1 - P2 >= t->u1;
                if (m0 < m1) tile[lo + 2 * hi](xpad + oh * sh * Wp + ow0, koff, C, t->KH, m0, m1, w0p, w1p, acc);
                else memset(acc, 0, sizeof acc); /* (only padding under this output row) */
                const int nv = OW - ow0 < R ? (int)(OW - ow0) : R;
                const __mmask16 keep = (__mmask16)((1u << nv) - 1);
                for (int q = 0; q < (two ? 2 : 1); q++) {
                    int64_t c0 = (pb + q) * VB, nc = n - c0 < VB ? n - c0 : VB;
                    float *yt = y + c0 * P + oh * OW + ow0;
                    /* the bias, one vector of channels, added to each position */
                    const __m512 bv = bias ? _mm512_maskz_loadu_ps((__mmask16)((1u << nc) - 1), bias + c0)
                                           : _mm512_setzero_ps();
                    __m512 r[16];
                    for (int j = 0; j < 16; j++)
                        r[j] = j < R ? _mm512_add_ps(_mm512_load_ps(acc + (q * R + j) * VB), bv) : _mm512_setzero_ps();
                    if (R <= 8) {
                        store_tile8(r, nc, nv, yt, P);
                        continue;
                    }
                    transpose16(r);
                    for (int64_t ch = 0; ch < nc; ch++) _mm512_mask_storeu_ps(yt + ch * P, keep, r[ch]);
                }
            }
        }
    }
}

/* One image: y [n, OH*OW] = sum over taps k of xpad[koff[k] + at(p)] wp[k, :]
 * (+ bias), where at(p) is the top-left corner of output position p; the
 * taps run over (c, kh, kw) as t describes. By row tiles where they apply,
 * else by position tiles. */
void nb__conv_image(const float *xpad, int64_t Wp, const int64_t *koff, int64_t K, const conv_taps *t,
                    const float *wp, int64_t n, int64_t OH, int64_t OW, int64_t sh, int64_t sw, const float *bias,
                    float *y) {
    int R;
    if (sw == 1 && t->dw == 1 && row_tile_pick(t->KW, false, OW, &R)) {
        direct_image_rows(xpad, Wp, koff, K, t, wp, n, OH, OW, sh, bias, y);
        return;
    }
    int64_t P = OH * OW, npan = panels_of(n);
    for (int64_t pb = 0; pb < npan; pb += 2) {
        const bool two = pb + 1 < npan;
        const int tp = two ? T512 / 2 : T512; /* positions per tile */
        const float *w0p = wp + pb * K * VB, *w1p = w0p + K * VB;
        int64_t oh = 0, ow = 0;
        for (int64_t p0 = 0; p0 < P; p0 += tp) {
            int np = P - p0 < tp ? (int)(P - p0) : tp;
            const float *at[T512] = {0};
            for (int j = 0; j < np; j++) {
                at[j] = xpad + oh * sh * Wp + ow * sw;
                if (++ow == OW) ow = 0, oh++;
            }
            for (int j = np; j < T512; j++) at[j] = at[0]; /* a short last tile repeats its first position */
            __m512 c[T512];
            for (int j = 0; j < T512; j++) c[j] = _mm512_setzero_ps();
            if (two) {
                for (int64_t k = 0; k < K; k++) {
                    const __m512 w0 = _mm512_loadu_ps(w0p + k * VB), w1 = _mm512_loadu_ps(w1p + k * VB);
                    const int64_t o = koff[k];
#pragma GCC unroll 6
                    for (int j = 0; j < T512 / 2; j++) {
                        const __m512 a = _mm512_set1_ps(at[j][o]);
                        c[j] = _mm512_fmadd_ps(a, w0, c[j]);
                        c[T512 / 2 + j] = _mm512_fmadd_ps(a, w1, c[T512 / 2 + j]);
                    }
                }
            } else {
                for (int64_t k = 0; k < K; k++) {
                    const __m512 w0 = _mm512_loadu_ps(w0p + k * VB);
                    const int64_t o = koff[k];
#pragma GCC unroll 12
                    for (int j = 0; j < T512; j++) c[j] = _mm512_fmadd_ps(_mm512_set1_ps(at[j][o]), w0, c[j]);
                }
            }
            /* c holds [panel][position] rows of channels; y is [channel][position]:
             * each panel's rows transposed in registers, np positions stored. */
            const __mmask16 keep = (__mmask16)((1u << np) - 1);
            for (int q = 0; q < (two ? 2 : 1); q++) {
                int64_t c0 = (pb + q) * VB, nc = n - c0 < VB ? n - c0 : VB;
                __m512 r[16];
                for (int j = 0; j < 16; j++) r[j] = j < tp ? c[q * tp + j] : _mm512_setzero_ps();
                transpose16(r);
                for (int64_t ch = 0; ch < nc; ch++) {
                    __m512 v = bias ? _mm512_add_ps(r[ch], _mm512_set1_ps(bias[c0 + ch])) : r[ch];
                    _mm512_mask_storeu_ps(y + (c0 + ch) * P + p0, keep, v);
                }
            }
        }
    }
}

/* Weight-gradient row tiles, for unit horizontal stride and dilation: a
 * tile is the KW taps of NR kernel rows in NP panels, summed over the
 * output positions of each output row. At position ow, tap k meets input
 * ow + k, so the inputs are broadcast once each into a window of KW
 * registers that slides along the row (slot e % KW holds input e), and each
 * position costs one broadcast per kernel row and NP loads of gy for
 * NR*KW*NP FMAs, where a tile of taps takes a broadcast per tap. */
static inline __attribute__((always_inline)) void wgrad_row_step(const float *const *xr, const float *gp, int s,
                                                                 int64_t ow, __m512 *acc, __m512 *win,
                                                                 const int KW, const int NP, const int NR) {
    __m512 gv[2];
    for (int q = 0; q < 2; q++)
        if (q < NP) gv[q] = _mm512_loadu_ps(gp + q * VB);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        if (i >= NR) continue;
        win[i * KW + (s + KW - 1) % KW] = _mm512_set1_ps(xr[i][ow + s + KW - 1]); /* the newest input */
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            if (k >= KW) continue;
            for (int q = 0; q < 2; q++)
                if (q < NP)
                    acc[(i * KW + k) * NP + q] =
                        _mm512_fmadd_ps(win[i * KW + (s + k) % KW], gv[q], acc[(i * KW + k) * NP + q]);
        }
    }
}

/* gwT [taps of rows r0 .. r0+NR-1, the NP panels from g's] += the tile,
 * over output rows [oh0, oh1). */
static inline __attribute__((always_inline)) void wgrad_rows(const float *xpad, int64_t Wp, const int64_t *koff,
                                                             int64_t r0, const float *g, int64_t ncp, int64_t oh0,
                                                             int64_t oh1, int64_t OW, int64_t sh, float *gwT,
                                                             const int KW, const int NP, const int NR) {
    __m512 acc[32], win[32];
#pragma GCC unroll 32
    for (int j = 0; j < 32; j++) /* (constant counts: see row_tile_row) */
        if (j < NR * KW * NP) acc[j] = _mm512_setzero_ps();
    for (int64_t oh = oh0; oh < oh1; oh++) {
        const float *xr[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            if (i < NR) xr[i] = xpad + koff[(r0 + i) * KW] + oh * sh * Wp;
        const float *gr = g + oh * OW * ncp;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
#pragma GCC unroll 8
            for (int e = 0; e < 8; e++)
                if (i < NR && e < KW) /* (the last slot is written before it is read) */
                    win[i * KW + e] = e < KW - 1 ? _mm512_set1_ps(xr[i][e]) : _mm512_setzero_ps();
        int64_t ow = 0;
        for (; ow + KW <= OW; ow += KW)
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++)
                if (s < KW) wgrad_row_step(xr, gr + (ow + s) * ncp, s, ow, acc, win, KW, NP, NR);
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++) /* the last OW % KW positions */
            if (s < KW - 1 && ow + s < OW) wgrad_row_step(xr, gr + (ow + s) * ncp, s, ow, acc, win, KW, NP, NR);
    }
#pragma GCC unroll 32
    for (int j = 0; j < 32; j++)
        if (j < NR * KW * NP) {
            int i = j / (KW * NP), k = j / NP % KW, q = j % NP;
            float *dst = gwT + ((r0 + i) * KW + k) * ncp + q * VB;
            _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), acc[j]));
        }
}

typedef void (*wgrad_rows_fn)(const float *, int64_t, const int64_t *, int64_t, const float *, int64_t, int64_t,
                              int64_t, int64_t, int64_t, float *);
#define WGRAD_ROWS(KW, NP, NR)                                                                                 \
    static void wgrad_rows_##KW##_##NP##_##NR(const float *xpad, int64_t Wp, const int64_t *koff, int64_t r0,  \
                                              const float *g, int64_t ncp, int64_t oh0, int64_t oh1,          \
                                              int64_t OW, int64_t sh, float *gwT) {                           \
        wgrad_rows(xpad, Wp, koff, r0, g, ncp, oh0, oh1, OW, sh, gwT, KW, NP, NR);                             \
    }
/* NR*KW*NP accumulators, at least 8 for two FMA units of latency 4, and
 * NR*KW window registers; NR = 1 for the rows left over. */
WGRAD_ROWS(3, 1, 3)
WGRAD_ROWS(3, 1, 1)
WGRAD_ROWS(3, 2, 2)
WGRAD_ROWS(3, 2, 1)
WGRAD_ROWS(5, 1, 2)
WGRAD_ROWS(5, 1, 1)
WGRAD_ROWS(5, 2, 1)

/* The weight gradient of one image by row tiles; false (nothing done) if
 * none has this KW. trows: tap_rows. */
static bool wgrad_image_rows(const float *xpad, int64_t Wp, const int64_t *koff, const int64_t *trows, int64_t K,
                             int64_t KW, const float *gyT, int64_t ncp, int64_t OW, int64_t sh, float *gwT) {
    wgrad_rows_fn one[2], many[2];
    int nr[2];
    if (KW == 3) {
        many[0] = wgrad_rows_3_1_3, one[0] = wgrad_rows_3_1_1, nr[0] = 3;
        many[1] = wgrad_rows_3_2_2, one[1] = wgrad_rows_3_2_1, nr[1] = 2;
    } else if (KW == 5) {
        many[0] = wgrad_rows_5_1_2, one[0] = wgrad_rows_5_1_1, nr[0] = 2;
        many[1] = one[1] = wgrad_rows_5_2_1, nr[1] = 1;
    } else {
        return false;
    }
    int64_t rows = K / KW, npan = ncp / VB;
    for (int64_t pb = 0; pb < npan; pb += 2) {
        const int two = pb + 1 < npan;
        for (int64_t r0 = 0; r0 < rows;) {
            const int n = rows - r0 >= nr[two] ? nr[two] : 1;
            int64_t oh0, oh1; /* output rows where one of the tile's kernel rows reads data */
            tile_rows(trows, r0 * KW, n * (int)KW, &oh0, &oh1);
            if (oh0 < oh1)
                (n > 1 ? many : one)[two](xpad, Wp, koff, r0, gyT + pb * VB, ncp, oh0, oh1, OW, sh, gwT + pb * VB);
            r0 += n;
        }
    }
    return true;
}

/* The weight gradient of one image by tiles of T512/2 taps in two panels or
 * T512 in one, for any stride and dilation. */
static void wgrad_image_taps(const float *xpad, int64_t Wp, const int64_t *koff, const int64_t *trows, int64_t K,
                             const float *gyT, int64_t ncp, int64_t OW, int64_t sh, int64_t sw, float *gwT) {
    int64_t npan = ncp / VB;
    for (int64_t pb = 0; pb < npan; pb += 2) {
        const bool two = pb + 1 < npan;
        const int tk = two ? T512 / 2 : T512; /* taps per tile */
        for (int64_t k0 = 0; k0 < K; k0 += tk) {
            int nk = K - k0 < tk ? (int)(K - k0) : tk;
            int64_t o[T512];
            for (int j = 0; j < T512; j++) o[j] = koff[k0 + (j < nk ? j : 0)]; /* a short tile repeats tap k0 */
            __m512 c[T512];
            for (int j = 0; j < T512; j++) c[j] = _mm512_setzero_ps();
            int64_t oh0, oh1;
            tile_rows(trows, k0, nk, &oh0, &oh1);
            const float *g = gyT + oh0 * OW * ncp + pb * VB;
            for (int64_t oh = oh0; oh < oh1; oh++) {
                const float *xr = xpad + oh * sh * Wp;
                if (two) {
                    for (int64_t ow = 0; ow < OW; ow++, g += ncp) {
                        const float *a = xr + ow * sw;
                        const __m512 w0 = _mm512_loadu_ps(g), w1 = _mm512_loadu_ps(g + VB);
#pragma GCC unroll 6
                        for (int j = 0; j < T512 / 2; j++) {
                            const __m512 v = _mm512_set1_ps(a[o[j]]);
                            c[j] = _mm512_fmadd_ps(v, w0, c[j]);
                            c[T512 / 2 + j] = _mm512_fmadd_ps(v, w1, c[T512 / 2 + j]);
                        }
                    }
                } else {
                    for (int64_t ow = 0; ow < OW; ow++, g += ncp) {
                        const float *a = xr + ow * sw;
                        const __m512 w0 = _mm512_loadu_ps(g);
#pragma GCC unroll 12
                        for (int j = 0; j < T512; j++) c[j] = _mm512_fmadd_ps(_mm512_set1_ps(a[o[j]]), w0, c[j]);
                    }
                }
            }
            for (int q = 0; q < (two ? 2 : 1); q++)
                for (int j = 0; j < nk; j++) {
                    float *dst = gwT + (k0 + j) * ncp + (pb + q) * VB;
                    _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), c[q * tk + j]));
                }
        }
    }
}

/* By row tiles where they apply, else by tiles of taps. */
void nb__conv_wgrad_image(const float *xpad, int64_t Wp, const int64_t *koff, const int64_t *trows, int64_t K,
                          const conv_taps *t, const float *gyT, int64_t ncp, int64_t OW, int64_t sh, int64_t sw,
                          float *gwT) {
    if (sw == 1 && t->dw == 1 && wgrad_image_rows(xpad, Wp, koff, trows, K, t->KW, gyT, ncp, OW, sh, gwT)) return;
    wgrad_image_taps(xpad, Wp, koff, trows, K, gyT, ncp, OW, sh, sw, gwT);
}

#endif /* AVX-512 */
