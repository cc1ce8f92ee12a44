/* conv.c — 2-D and 1-D convolution (cross-correlation, eq. 9.6): direct
 * AVX-512 or AVX2 kernels where the channel counts suit them, im2col + OpenBLAS sgemm
 * elsewhere, and the two halves of the backward pass as ops of their own
 * (each with its own backward rule), so gradients of gradients exist. */
#include "../core/internal.h"
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* --- geometry ------------------------------------------------------------ */

/* One convolution's sizes. Input [N, C, H, W], kernel [OC, C, KH, KW],
 * output [N, OC, OH, OW]; K = C*KH*KW is the GEMM's inner size and P = OH*OW
 * the number of output positions of one image. */
typedef struct {
    int64_t N, C, H, W, OC, KH, KW, OH, OW, K, P;
    int64_t sh, sw, pt, pb, pl, pr, dh, dw;
} geom;

/* Options with the "0 means 1" defaults resolved, checked. */
static nb_conv2d_opts opts_resolve(const char *op, const nb_conv2d_opts *o) {
    nb_conv2d_opts r = o ? *o : (nb_conv2d_opts){0};
    if (!r.stride_h) r.stride_h = 1;
    if (!r.stride_w) r.stride_w = 1;
    if (!r.dil_h) r.dil_h = 1;
    if (!r.dil_w) r.dil_w = 1;
    if (r.stride_h < 0 || r.stride_w < 0 || r.dil_h < 0 || r.dil_w < 0)
        nb_fatal(op, "negative stride (%d, %d) or dilation (%d, %d)", r.stride_h, r.stride_w, r.dil_h, r.dil_w);
    if (r.pad_top < 0 || r.pad_bottom < 0 || r.pad_left < 0 || r.pad_right < 0)
        nb_fatal(op, "negative padding (%d, %d, %d, %d)", r.pad_top, r.pad_bottom, r.pad_left, r.pad_right);
    return r;
}

/* Output size along one axis: positions where the dilated kernel fits. */
static int64_t out_len(int64_t in, int64_t pad0, int64_t pad1, int64_t k, int64_t dil, int64_t stride) {
    int64_t span = dil * (k - 1) + 1, padded = in + pad0 + pad1;
    return padded < span ? 0 : (padded - span) / stride + 1;
}

static geom geom_make(const char *op, const int64_t *xs, const int64_t *ws, const nb_conv2d_opts *o) {
    geom g = {.N = xs[0], .C = xs[1], .H = xs[2], .W = xs[3], .OC = ws[0], .KH = ws[2], .KW = ws[3],
              .sh = o->stride_h, .sw = o->stride_w, .pt = o->pad_top, .pb = o->pad_bottom,
              .pl = o->pad_left, .pr = o->pad_right, .dh = o->dil_h, .dw = o->dil_w};
    g.OH = out_len(g.H, g.pt, g.pb, g.KH, g.dh, g.sh);
    g.OW = out_len(g.W, g.pl, g.pr, g.KW, g.dw, g.sw);
    if (g.OH <= 0 || g.OW <= 0)
        nb_fatal(op, "kernel %lldx%lld (dilation %lld, %lld) does not fit the padded input %lldx%lld",
                 (long long)g.KH, (long long)g.KW, (long long)g.dh, (long long)g.dw,
                 (long long)(g.H + g.pt + g.pb), (long long)(g.W + g.pl + g.pr));
    if (g.C <= 0 || g.KH <= 0 || g.KW <= 0)
        nb_fatal(op, "empty kernel: %lld channels, %lldx%lld", (long long)g.C, (long long)g.KH, (long long)g.KW);
    g.K = g.C * g.KH * g.KW;
    g.P = g.OH * g.OW;
    return g;
}

/* The options travel in a node's integer attributes i[0..7]. */
static void opts_store(nb_node *n, const nb_conv2d_opts *o) {
    int64_t *a = n->i;
    a[0] = o->stride_h, a[1] = o->stride_w, a[2] = o->pad_top, a[3] = o->pad_bottom;
    a[4] = o->pad_left, a[5] = o->pad_right, a[6] = o->dil_h, a[7] = o->dil_w;
}
static nb_conv2d_opts opts_load(const nb_node *n) {
    const int64_t *a = n->i;
    return (nb_conv2d_opts){.stride_h = (int)a[0], .stride_w = (int)a[1], .pad_top = (int)a[2],
                            .pad_bottom = (int)a[3], .pad_left = (int)a[4], .pad_right = (int)a[5],
                            .dil_h = (int)a[6], .dil_w = (int)a[7]};
}

/* A 1x1 kernel with unit stride and no padding reads the image as it is: the
 * column matrix is the image itself, so im2col is skipped. */
static bool pointwise(const geom *g) {
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pb && !g->pl && !g->pr;
}

/* --- im2col / col2im ------------------------------------------------------ */

static int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

/* Range [lo, hi) of output columns ow whose input column ow*sw + off lies in
 * [0, W); outside it the column matrix holds padding zeros. */
static void valid_cols(const geom *g, int64_t off, int64_t *lo, int64_t *hi) {
    int64_t l = ceil_div(-off, g->sw), h = ceil_div(g->W - off, g->sw);
    if (h > g->OW) h = g->OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* One image x [C, H, W] -> col [K, P] with
 * col[(c*KH + kh)*KW + kw][oh*OW + ow] = x[c][oh*sh - pt + kh*dh][ow*sw - pl + kw*dw]
 * (0 in the padding), so that out [OC, P] = w [OC, K] col. */
static void im2col(const geom *g, const float *x, float *col) {
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
                float *row = col + ((c * g->KH + kh) * g->KW + kw) * g->P;
                int64_t off = kw * g->dw - g->pl, lo, hi;
                valid_cols(g, off, &lo, &hi);
                for (int64_t oh = 0; oh < g->OH; oh++) {
                    float *restrict r = row + oh * g->OW;
                    int64_t ih = oh * g->sh - g->pt + kh * g->dh;
                    if (ih < 0 || ih >= g->H) {
                        for (int64_t ow = 0; ow < g->OW; ow++) r[ow] = 0.f;
                        continue;
                    }
                    /* Rows are short (an image row), so plain loops the
                     * compiler vectorizes beat memcpy/memset calls. */
                    const float *restrict xr = x + (c * g->H + ih) * g->W;
                    for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0.f;
                    if (g->sw == 1) {
                        for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[ow + off];
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[ow * g->sw + off];
                    }
                    for (int64_t ow = hi; ow < g->OW; ow++) r[ow] = 0.f;
                }
            }
}

/* The adjoint of im2col: x [C, H, W] += the entries of col [K, P] at the
 * positions im2col read them from (padding entries are dropped). */
static void col2im(const geom *g, const float *col, float *x) {
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
                const float *row = col + ((c * g->KH + kh) * g->KW + kw) * g->P;
                int64_t off = kw * g->dw - g->pl, lo, hi;
                valid_cols(g, off, &lo, &hi);
                for (int64_t oh = 0; oh < g->OH; oh++) {
                    int64_t ih = oh * g->sh - g->pt + kh * g->dh;
                    if (ih < 0 || ih >= g->H) continue;
                    const float *r = row + oh * g->OW;
                    float *xr = x + (c * g->H + ih) * g->W;
                    if (g->sw == 1) {
                        for (int64_t ow = lo; ow < hi; ow++) xr[ow + off] += r[ow];
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++) xr[ow * g->sw + off] += r[ow];
                    }
                }
            }
}

/* --- threads ------------------------------------------------------------- */

/* How many threads share a loop over the batch. With at least as many images
 * as threads, each thread takes whole images and its GEMMs run single-threaded
 * (the OpenMP build of OpenBLAS does so by itself inside a parallel region);
 * with fewer images, one thread loops and OpenBLAS threads each GEMM. */
static int batch_threads(const geom *g) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
    int nt = omp_get_max_threads();
    /* Below about a million multiply-adds (tens of microseconds) waking the
     * other threads costs more than it saves. */
    if (nt < 2 || g->N < nt || g->N * g->OC * g->K * g->P < ((int64_t)1 << 20)) return 1;
    return nt;
#else
    (void)g;
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Column scratch, one [K, P] buffer per thread, from the step arena (taken
 * before the parallel region: the arena is not thread-safe). */
static float *col_scratch(const geom *g, int nt) {
    return pointwise(g) ? NULL : nb_arena_alloc(sizeof(float) * (size_t)(nt * g->K * g->P));
}

/* --- direct kernels (AVX2 + FMA, or AVX-512) --------------------------------
 * With few channels (16-64) and small images, im2col copies each input value
 * K times into short rows and OpenBLAS runs these thin GEMMs at little more
 * than half the FMA peak. These kernels read a zero-padded copy of the image
 * in place and vectorize over channels instead, 16 at a time (a panel: two
 * 8-float registers, or one AVX-512 register), as oneDNN does. With AVX2 a
 * register tile is 16 channels x 6 positions (forward) or 16 channels x 6
 * kernel taps (weight gradient), so each step is 2 vector loads, 6
 * broadcasts and 12 FMAs, with no edge cases inside. The AVX-512 tiles are
 * below, with their kernels. */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define NB_CONV_DIRECT 1
#define VB 16 /* channels per panel */
#define TP 6  /* positions or taps per register tile */
#define ROW_SLACK 16 /* floats a tile may read past its padded image (AVX-512 row tiles) */

static int64_t panels_of(int64_t n) { return (n + VB - 1) / VB; }

/* Whether n channels fill their 16-wide panels well enough for the direct
 * kernels to pay: at most one idle lane for every four used (13-16, 26-32,
 * 39-48, 52-64, ... channels). */
static bool direct_fits(int64_t n) { return panels_of(n) * VB * 4 <= n * 5; }

/* Asks for n floats at p to be brought into L2. The kernels call it for the
 * next image while they work on this one: each image's input comes from
 * memory in a short burst between long stretches of arithmetic, too short
 * for the hardware prefetcher to ramp up (pad_image ran at ~9 GB/s where a
 * core reads ~27). */
static void prefetch_next(const float *p, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 2);
}

/* dst [C, Hp, Wp] = src [C, H, W] placed at (top, left); a negative
 * top/left crops src instead. Only the image's rectangle is written: the
 * zeros around it are set once per buffer (pad_clear), since every image of
 * a batch lands in the same place. */
static void pad_clear(float *dst, int64_t n) { memset(dst, 0, sizeof(float) * (size_t)n); }
static void pad_image(const float *src, int64_t C, int64_t H, int64_t W, int64_t top, int64_t left, int64_t Hp,
                      int64_t Wp, float *dst) {
    int64_t i0 = top < 0 ? 0 : top, i1 = H + top < Hp ? H + top : Hp;
    int64_t j0 = left < 0 ? 0 : left, j1 = W + left < Wp ? W + left : Wp;
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = i0; i < i1; i++) {
            float *restrict d = dst + (c * Hp + i) * Wp + j0;
            const float *restrict sr = src + (c * H + i - top) * W + j0 - left;
            int64_t j = 0, n = j1 - j0;
#if defined(__AVX512F__)
            /* Rows are short (14 floats in the CNN): whole vectors and one
             * masked vector, where the compiler's loop goes a float at a time. */
            for (; j + 16 <= n; j += 16) _mm512_storeu_ps(d + j, _mm512_loadu_ps(sr + j));
            if (j < n) {
                const __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
                _mm512_mask_storeu_ps(d + j, m, _mm512_maskz_loadu_ps(m, sr + j));
            }
#else
            for (; j < n; j++) d[j] = sr[j];
#endif
        }
}

/* The taps of a direct kernel run over (c, kh, kw): KH kernel rows of KW
 * taps per channel, dh rows and dw columns apart; rows [v0, v1) and columns
 * [u0, u1) of the padded image hold data, the rest is padding. */
typedef struct {
    int64_t KH, KW, dh, dw, v0, v1, u0, u1;
} taps;

/* koff[(c*KH + kh)*KW + kw] = where tap (c, kh, kw) reads, relative to a
 * position's top-left corner in the padded [C, Hp, Wp] image. */
static int64_t *tap_offsets(int64_t C, int64_t KH, int64_t KW, int64_t dh, int64_t dw, int64_t Hp, int64_t Wp) {
    int64_t *koff = nb_arena_alloc(sizeof(int64_t) * (size_t)(C * KH * KW));
    for (int64_t c = 0; c < C; c++)
        for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) koff[(c * KH + kh) * KW + kw] = c * Hp * Wp + kh * dh * Wp + kw * dw;
    return koff;
}

/* trows[2k], trows[2k+1] = the output rows [lo, hi) where tap k reads a row
 * that holds data (t's v0, v1). */
static int64_t *tap_rows(const taps *t, int64_t K, int64_t OH, int64_t sh) {
    int64_t *r = nb_arena_alloc(sizeof(int64_t) * (size_t)(2 * K));
    for (int64_t k = 0; k < K; k++) {
        int64_t m = k / t->KW % t->KH, h = ceil_div(t->v1 - m * t->dh, sh);
        r[2 * k] = ceil_div(t->v0 - m * t->dh, sh);
        r[2 * k + 1] = h < OH ? h : OH;
    }
    return r;
}

/* The output rows [*lo, *hi) where any of taps k0 .. k0+nk-1 reads data:
 * outside them the weight gradient's products are with padding zeros, and
 * are skipped. */
static void tile_rows(const int64_t *trows, int64_t k0, int nk, int64_t *lo, int64_t *hi) {
    *lo = trows[2 * k0], *hi = trows[2 * k0 + 1];
    for (int j = 1; j < nk; j++) {
        if (trows[2 * (k0 + j)] < *lo) *lo = trows[2 * (k0 + j)];
        if (trows[2 * (k0 + j) + 1] > *hi) *hi = trows[2 * (k0 + j) + 1];
    }
}

/* w [n, K] -> panels [ceil(n/16)][K][16], zero-filled past n. */
static float *pack_panels(const float *w, int64_t n, int64_t K) {
    int64_t np = panels_of(n);
    float *wp = nb_arena_alloc(sizeof(float) * (size_t)(np * K * VB));
    for (int64_t pb = 0; pb < np; pb++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < VB; j++) {
                int64_t o = pb * VB + j;
                wp[(pb * K + k) * VB + j] = o < n ? w[o * K + k] : 0.f;
            }
    return wp;
}

#if defined(__AVX512F__)
/* AVX-512: a panel's 16 channels fill one register, so a register tile is 12
 * accumulators as either 12 positions (taps) of one panel or 6 of two panels:
 * at least the 8 independent multiply-adds two FMA units with a 4-cycle
 * latency need in flight. Each tap costs one or two vector loads and 12 or 6
 * broadcasts for 12 FMAs. */
#define T512 12

/* r[0..16) as the rows of a 16x16 matrix, transposed in registers
 * (pairs of floats, then of pairs, then of 128-bit quarters, then halves). */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
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
 * 8x16 transpose in 24 shuffles (pairs, quads, then 128-bit lanes of two
 * registers side by side), where transpose16 takes 64 for 16 rows. */
static inline void store_tile8(const __m512 r[8], int64_t nc, int nv, float *y, int64_t ld) {
    __m512 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* u[i] (u[4+i]): in 128-bit lane l, channel 4l+i at positions 0-3 (4-7) */
    for (int h = 0; h < 8; h += 4) {
        __m512d a = _mm512_castps_pd(t[h]), b = _mm512_castps_pd(t[h + 1]);
        __m512d c = _mm512_castps_pd(t[h + 2]), d = _mm512_castps_pd(t[h + 3]);
        u[h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[h + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[h + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
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
static void to_channels_last(const float *gy, int64_t OC, int64_t P, int64_t ncp, float *gyT) {
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
 * zeros. With edge, the first and last P = (KW-1)/2 inputs are padding (a
 * tile at both ends of a "same" convolution's row; lo, hi: the left or right
 * end only), and their products are skipped: 6 of 70 in a 14-wide row of a
 * 5x5 kernel. Loops over the register arrays have constant counts: one of R
 * or KW iterations, unrolled only after inlining, makes the compiler keep the
 * array on the stack. */
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

/* One image by row tiles (see row_tile); y as direct_image's. Kernel rows
 * that fall on padding rows only are skipped: 2 of 5 at the top and bottom
 * outputs of a 5x5 "same" convolution: 6 of the 70 kernel rows of a 14-row
 * output (8.6% of the multiply-adds; the padding columns inside a row tile
 * are not skipped). */
static void direct_image_rows(const float *xpad, int64_t Wp, const int64_t *koff, int64_t K, const taps *t,
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
static void direct_image(const float *xpad, int64_t Wp, const int64_t *koff, int64_t K, const taps *t,
                         const float *wp, int64_t n, int64_t OH, int64_t OW, int64_t sh, int64_t sw,
                         const float *bias, float *y) {
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
                             int64_t KW, const float *gyT, int64_t ncp, int64_t OH, int64_t OW, int64_t sh,
                             float *gwT) {
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
    (void)OH;
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

/* One image's share of the weight gradient: gwT [K, ncp] += sum over
 * positions p of xpad[koff[k] + at(p)] gyT[p, :], gyT [OH*OW, ncp] being the
 * output gradient with channels last, padded to ncp (a multiple of 16). */
static void direct_wgrad_image(const float *xpad, int64_t Wp, const int64_t *koff, const int64_t *trows, int64_t K,
                               const float *gyT, int64_t ncp, int64_t OH, int64_t OW, int64_t sh, int64_t sw,
                               float *gwT) {
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

#else /* AVX2: a panel is two 8-float registers */

/* gyT [P, ncp] = gy [OC, P] transposed (channels OC..ncp stay as they are:
 * zero, from pad_clear). */
static void to_channels_last(const float *gy, int64_t OC, int64_t P, int64_t ncp, float *gyT) {
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
static void direct_image(const float *xpad, int64_t Wp, const int64_t *koff, int64_t K, const taps *t,
                         const float *wp, int64_t n, int64_t OH, int64_t OW, int64_t sh, int64_t sw,
                         const float *bias, float *y) {
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
                TILE_FMA(a0 + o, c00, c01);
                TILE_FMA(a1 + o, c10, c11);
                TILE_FMA(a2 + o, c20, c21);
                TILE_FMA(a3 + o, c30, c31);
                TILE_FMA(a4 + o, c40, c41);
                TILE_FMA(a5 + o, c50, c51);
            }
            TILE_STORE(tile);
            for (int64_t c = 0; c < nc; c++) { /* the tile is [position][channel]; y is [channel][position] */
                float bv = bias ? bias[pb * VB + c] : 0.f, *yr = y + (pb * VB + c) * P + p0;
                for (int j = 0; j < np; j++) yr[j] = tile[j * VB + c] + bv;
            }
        }
    }
}

/* One image's share of the weight gradient: gwT [K, ncp] += sum over
 * positions p of xpad[koff[k] + at(p)] gyT[p, :], gyT [OH*OW, ncp] being the
 * output gradient with channels last, padded to ncp (a multiple of 16). */
static void direct_wgrad_image(const float *xpad, int64_t Wp, const int64_t *koff, const int64_t *trows, int64_t K,
                               const float *gyT, int64_t ncp, int64_t OH, int64_t OW, int64_t sh, int64_t sw,
                               float *gwT) {
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
                    TILE_FMA(a + o0, c00, c01);
                    TILE_FMA(a + o1, c10, c11);
                    TILE_FMA(a + o2, c20, c21);
                    TILE_FMA(a + o3, c30, c31);
                    TILE_FMA(a + o4, c40, c41);
                    TILE_FMA(a + o5, c50, c51);
                }
            }
            TILE_STORE(tile);
            for (int j = 0; j < nk; j++) {
                float *dst = gwT + (k0 + j) * ncp + pb * VB;
                for (int c = 0; c < VB; c++) dst[c] += tile[j * VB + c];
            }
        }
}

#endif /* AVX-512 or AVX2 */

/* y = conv(x, w) + b with direct_image on each padded image. */
static void forward_direct(const geom *g, const float *x, const float *w, const float *b, float *y) {
    int64_t Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr, xsz = g->C * Hp * Wp;
    const int64_t *koff = tap_offsets(g->C, g->KH, g->KW, g->dh, g->dw, Hp, Wp);
    const float *wp = pack_panels(w, g->OC, g->K);
    const taps t = {g->KH, g->KW, g->dh, g->dw, g->pt, g->pt + g->H, g->pl, g->pl + g->W};
    int nt = batch_threads(g);
    float *scratch = nb_arena_alloc(sizeof(float) * (size_t)(nt * (xsz + ROW_SLACK)));
    NB_PRAGMA(omp parallel num_threads(nt) if (nt > 1))
    {
        float *xpad = scratch + thread_id() * (xsz + ROW_SLACK);
        pad_clear(xpad, xsz + ROW_SLACK);
        NB_PRAGMA(omp for schedule(static))
        for (int64_t n = 0; n < g->N; n++) {
            if (n + 1 < g->N) prefetch_next(x + (n + 1) * g->C * g->H * g->W, g->C * g->H * g->W);
            pad_image(x + n * g->C * g->H * g->W, g->C, g->H, g->W, g->pt, g->pl, Hp, Wp, xpad);
            direct_image(xpad, Wp, koff, g->K, &t, wp, g->OC, g->OH, g->OW, g->sh, g->sw, b, y + n * g->OC * g->P);
        }
    }
}

/* For unit stride the input gradient is itself a convolution: of gy padded
 * by (KH-1)*dh - pt on top (and so on; negative means cropped) with the
 * kernel flipped in both axes and its channel axes swapped,
 *   gx[c, i, j] = sum_{o,m,k} gypad[o, i + m*dh, j + k*dw] w[o, c, KH-1-m, KW-1-k].
 * gin holds what every image needs; gin_image runs one. */
typedef struct {
    int64_t top, left, Hq, Wq, gsz, Kt; /* gsz: floats of a padded gy image; Kt: taps (o, m, k) */
    const int64_t *koff;
    const float *wp;
} gin;

static gin gin_make(const geom *g, const float *w) {
    gin p = {.top = g->dh * (g->KH - 1) - g->pt, .left = g->dw * (g->KW - 1) - g->pl,
             .Hq = g->H + g->dh * (g->KH - 1), .Wq = g->W + g->dw * (g->KW - 1), .Kt = g->OC * g->KH * g->KW};
    p.gsz = g->OC * p.Hq * p.Wq;
    float *wf = nb_arena_alloc(sizeof(float) * (size_t)(g->C * p.Kt));
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t o = 0; o < g->OC; o++)
            for (int64_t m = 0; m < g->KH; m++)
                for (int64_t k = 0; k < g->KW; k++)
                    wf[c * p.Kt + (o * g->KH + m) * g->KW + k] =
                        w[((o * g->C + c) * g->KH + g->KH - 1 - m) * g->KW + g->KW - 1 - k];
    p.koff = tap_offsets(g->OC, g->KH, g->KW, g->dh, g->dw, p.Hq, p.Wq);
    p.wp = pack_panels(wf, g->C, p.Kt);
    return p;
}

/* gx_n from gy_n; gpad: gsz + ROW_SLACK floats, zero where padding goes. */
static void gin_image(const geom *g, const gin *p, const float *gyn, float *gpad, float *gxn) {
    pad_image(gyn, g->OC, g->OH, g->OW, p->top, p->left, p->Hq, p->Wq, gpad);
    /* gy lies at rows top .. top + OH and columns left .. left + OW of the
     * padded image (top, left < 0: cropped) */
    const taps t = {g->KH, g->KW, g->dh, g->dw, p->top > 0 ? p->top : 0, p->top + g->OH,
                    p->left > 0 ? p->left : 0, p->left + g->OW};
    direct_image(gpad, p->Wq, p->koff, p->Kt, &t, p->wp, g->C, g->H, g->W, 1, 1, NULL, gxn);
}

/* The weight gradient: gw = sum_n direct_wgrad_image(x_n, gy_n), and the
 * bias's, db = sum_n of gy_n's positions, summed from gy_n with channels
 * last (gyT) while it is at hand. Each thread sums its images into its own
 * [K, ncp] and [ncp] sums, added in thread order (deterministic). */
typedef struct {
    int64_t Hp, Wp, xsz, ncp, gsz, wsz; /* a thread's scratch: xpad [xsz], gyT [gsz], sums [wsz], [ncp] */
    const int64_t *koff, *trows; /* trows: tap_rows */
} gwt;

static gwt gwt_make(const geom *g) {
    gwt p = {.Hp = g->H + g->pt + g->pb, .Wp = g->W + g->pl + g->pr, .ncp = panels_of(g->OC) * VB};
    p.xsz = g->C * p.Hp * p.Wp;
    p.gsz = g->P * p.ncp;
    p.wsz = g->K * p.ncp;
    p.koff = tap_offsets(g->C, g->KH, g->KW, g->dh, g->dw, p.Hp, p.Wp);
    p.trows = tap_rows(&(taps){g->KH, g->KW, g->dh, g->dw, g->pt, g->pt + g->H, g->pl, g->pl + g->W}, g->K, g->OH,
                       g->sh);
    return p;
}
static int64_t gwt_scratch(const gwt *p) { return p->xsz + p->gsz + p->wsz + p->ncp; }

/* Adds image n's share; scr must start zeroed (the padding of xpad, the
 * channels of gyT past OC, the sums). */
static void gwt_image(const geom *g, const gwt *p, const float *gyn, const float *xn, float *scr, bool bias) {
    float *xpad = scr, *gyT = xpad + p->xsz, *acc = gyT + p->gsz, *bacc = acc + p->wsz;
    to_channels_last(gyn, g->OC, g->P, p->ncp, gyT);
    if (bias) /* four rows at a time into four sums: one chain of dependent adds would take 4 cycles a row */
        for (int64_t o0 = 0; o0 < p->ncp; o0 += VB) {
            float s[4][VB] = {{0}};
            int64_t q = 0;
            for (; q + 4 <= g->P; q += 4)
                for (int r = 0; r < 4; r++)
                    for (int j = 0; j < VB; j++) s[r][j] += gyT[(q + r) * p->ncp + o0 + j];
            for (; q < g->P; q++)
                for (int j = 0; j < VB; j++) s[0][j] += gyT[q * p->ncp + o0 + j];
            for (int j = 0; j < VB; j++) bacc[o0 + j] += (s[0][j] + s[1][j]) + (s[2][j] + s[3][j]);
        }
    pad_image(xn, g->C, g->H, g->W, g->pt, g->pl, p->Hp, p->Wp, xpad);
#if defined(__AVX512F__)
    if (g->sw == 1 && g->dw == 1 &&
        wgrad_image_rows(xpad, p->Wp, p->koff, p->trows, g->K, g->KW, gyT, p->ncp, g->OH, g->OW, g->sh, acc))
        return;
#endif
    direct_wgrad_image(xpad, p->Wp, p->koff, p->trows, g->K, gyT, p->ncp, g->OH, g->OW, g->sh, g->sw, acc);
}

/* gw [OC, K] (and gb [OC]) from the nt threads' sums, stride floats apart. */
static void gwt_finish(const geom *g, const gwt *p, const float *scratch, int64_t stride, int nt, float *gw,
                       float *gb) {
    int64_t acc = p->xsz + p->gsz;
    for (int64_t o = 0; o < g->OC; o++)
        for (int64_t k = 0; k < g->K; k++) {
            float s = 0.f;
            for (int t = 0; t < nt; t++) s += scratch[t * stride + acc + k * p->ncp + o];
            gw[o * g->K + k] = s;
        }
    if (gb)
        for (int64_t o = 0; o < g->OC; o++) {
            float s = 0.f;
            for (int t = 0; t < nt; t++) s += scratch[t * stride + acc + p->wsz + o];
            gb[o] = s;
        }
}

/* Any of gx, gw and gb (gb only with gw) by the direct kernels, image by
 * image, so that each image of gy comes from memory once for all three
 * (3.2 MB per pass for conv2 of examples/cnn.cfg at batch 128). gx needs
 * unit stride and C to suit the kernels, gw OC. */
static void backward_direct(const geom *g, const float *gy, const float *x, const float *w, float *gx, float *gw,
                            float *gb) {
    gin pi = gx ? gin_make(g, w) : (gin){0};
    gwt pw = gw ? gwt_make(g) : (gwt){0};
    int64_t si = gx ? pi.gsz + ROW_SLACK : 0, sw = gw ? gwt_scratch(&pw) : 0;
    int nt = batch_threads(g);
    float *scratch = nb_arena_alloc(sizeof(float) * (size_t)(nt * (sw + si)));
    NB_PRAGMA(omp parallel num_threads(nt) if (nt > 1))
    {
        float *mine = scratch + thread_id() * (sw + si);
        pad_clear(mine, sw + si);
        NB_PRAGMA(omp for schedule(static))
        for (int64_t n = 0; n < g->N; n++) {
            const float *gyn = gy + n * g->OC * g->P;
            if (n + 1 < g->N) {
                prefetch_next(gyn + g->OC * g->P, g->OC * g->P);
                if (gw) prefetch_next(x + (n + 1) * g->C * g->H * g->W, g->C * g->H * g->W);
            }
            if (gx) gin_image(g, &pi, gyn, mine + sw, gx + n * g->C * g->H * g->W);
            if (gw) gwt_image(g, &pw, gyn, x + n * g->C * g->H * g->W, mine, gb != NULL);
        }
    }
    if (gw) gwt_finish(g, &pw, scratch, sw + si, nt, gw, gb);
}

/* Whether backward_direct can give gx. */
static bool gin_direct(const geom *g) { return g->sh == 1 && g->sw == 1 && direct_fits(g->C); }
#endif /* AVX2 + FMA */

/* y [N, OC, OH, OW] = conv(x [N, C, H, W], w [OC, K]) + b: by the direct
 * kernel when OC suits it, else per image y_n [OC, P] = w [OC, K] im2col(x_n) [K, P]. */
static void conv_forward(const geom *g, const float *x, const float *w, const float *b, float *y) {
#ifdef NB_CONV_DIRECT
    if (direct_fits(g->OC)) {
        forward_direct(g, x, w, b, y);
        return;
    }
#endif
    int nt = batch_threads(g);
    float *scratch = col_scratch(g, nt);
    NB_PRAGMA(omp parallel num_threads(nt) if (nt > 1))
    {
        float *col = scratch ? scratch + thread_id() * g->K * g->P : NULL;
        NB_PRAGMA(omp for schedule(static))
        for (int64_t n = 0; n < g->N; n++) {
            const float *xn = x + n * g->C * g->H * g->W;
            float *yn = y + n * g->OC * g->P;
            if (col) im2col(g, xn, col);
            if (b) /* start from the bias and let the GEMM add onto it */
                for (int64_t oc = 0; oc < g->OC; oc++)
                    for (int64_t p = 0; p < g->P; p++) yn[oc * g->P + p] = b[oc];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->OC, (int)g->P, (int)g->K, 1.f, w,
                        (int)g->K, col ? col : xn, (int)g->P, b ? 1.f : 0.f, yn, (int)g->P);
        }
    }
}

/* gx [N, C, H, W] = Tin(gy [N, OC, OH, OW], w [OC, K]), the adjoint of
 * x -> conv(x, w): by the direct kernel when C suits it and the stride is 1,
 * else per image col = w^T gy_n [K, P], then col2im. */
static void conv_grad_input(const geom *g, const float *gy, const float *w, float *gx) {
#ifdef NB_CONV_DIRECT
    if (gin_direct(g)) {
        backward_direct(g, gy, NULL, w, gx, NULL, NULL);
        return;
    }
#endif
    int nt = batch_threads(g);
    float *scratch = col_scratch(g, nt);
    NB_PRAGMA(omp parallel num_threads(nt) if (nt > 1))
    {
        float *col = scratch ? scratch + thread_id() * g->K * g->P : NULL;
        NB_PRAGMA(omp for schedule(static))
        for (int64_t n = 0; n < g->N; n++) {
            const float *gn = gy + n * g->OC * g->P;
            float *xn = gx + n * g->C * g->H * g->W;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->K, (int)g->P, (int)g->OC, 1.f, w,
                        (int)g->K, gn, (int)g->P, 0.f, col ? col : xn, (int)g->P);
            if (col) {
                memset(xn, 0, sizeof(float) * (size_t)(g->C * g->H * g->W));
                col2im(g, col, xn);
            }
        }
    }
}

/* gw [OC, K] = Tw(gy, x) = sum_n gy_n [OC, P] im2col(x_n)^T [P, K], the
 * adjoint of w -> conv(x, w), by the direct kernel when OC suits it. Each
 * thread sums its images into its own buffer and the buffers are added in
 * thread order, so the result depends only on the thread count. */
static void conv_grad_weight(const geom *g, const float *gy, const float *x, float *gw) {
#ifdef NB_CONV_DIRECT
    if (direct_fits(g->OC)) {
        backward_direct(g, gy, x, NULL, NULL, gw, NULL);
        return;
    }
#endif
    int nt = batch_threads(g);
    float *scratch = col_scratch(g, nt);
    int64_t wsz = g->OC * g->K;
    float *acc = nt > 1 ? nb_arena_alloc(sizeof(float) * (size_t)((nt - 1) * wsz)) : NULL;
    NB_PRAGMA(omp parallel num_threads(nt) if (nt > 1))
    {
        int t = thread_id();
        float *col = scratch ? scratch + t * g->K * g->P : NULL;
        float *dst = t ? acc + (t - 1) * wsz : gw;
        memset(dst, 0, sizeof(float) * (size_t)wsz);
        NB_PRAGMA(omp for schedule(static))
        for (int64_t n = 0; n < g->N; n++) {
            const float *xn = x + n * g->C * g->H * g->W;
            if (col) im2col(g, xn, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->OC, (int)g->K, (int)g->P, 1.f,
                        gy + n * g->OC * g->P, (int)g->P, col ? col : xn, (int)g->P, 1.f, dst, (int)g->K);
        }
    }
    for (int t = 1; t < nt; t++)
        for (int64_t i = 0; i < wsz; i++) gw[i] += acc[(t - 1) * wsz + i];
}

/* --- the three ops ---------------------------------------------------------- */

static nb_tensor *grad_input(nb_tensor *gy, nb_tensor *w, const nb_conv2d_opts *o, int64_t H, int64_t W);
static nb_tensor *grad_weight(nb_tensor *gy, nb_tensor *x, const nb_conv2d_opts *o, int64_t KH, int64_t KW);

/* db[oc] = sum over n, oh, ow of g[n, oc, oh, ow]: the per-image sums are one
 * GEMV against ones ([N*OC, P] x [P, 1]), then sum_to adds the N rows. Built
 * from differentiable ops, so the bias gradient can be differentiated too. */
static nb_tensor *bias_grad(nb_tensor *g) {
    int64_t N = g->shape[0], OC = g->shape[1], P = g->shape[2] * g->shape[3];
    nb_tensor *rows = nb_matmul(nb_reshape(g, 2, (int64_t[]){N * OC, P}), nb_ones(2, (int64_t[]){P, 1}));
    return nb_sum_to(nb_reshape(rows, 2, (int64_t[]){N, OC}), 1, (int64_t[]){OC});
}

/* y = conv2d(x, w) + b (eq. 9.6: y[n,o,i,j] = sum_{c,m,k} x[n,c,i*sh+m*dh, j*sw+k*dw] w[o,c,m,k]
 * on the padded x). With G = dL/dy:
 *   dx = Tin(G, w)   dw = Tw(G, x)   db = sum of G over n, i, j */
static void conv2d_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    nb_conv2d_opts o = opts_load(n);
#ifdef NB_CONV_DIRECT
    /* Without create_graph, the direct kernels' gradients in one pass over
     * the images (backward_direct); with it, ops whose own backward exists. */
    if (!nb_grad_enabled() && w->requires_grad && g->size) {
        geom G = geom_make("conv2d", x->shape, w->shape, &o);
        if (direct_fits(G.OC)) {
            bool dx = x->requires_grad && gin_direct(&G), db = b && b->requires_grad;
            nb_tensor *gx = dx ? nb__new(4, x->shape) : NULL, *gw = nb__new(4, w->shape);
            nb_tensor *gb = db ? nb__new(1, b->shape) : NULL;
            backward_direct(&G, g->data, x->data, w->data, gx ? gx->data : NULL, gw->data, gb ? gb->data : NULL);
            if (dx) nb__accum(x, gx);
            else if (x->requires_grad) nb__accum(x, grad_input(g, w, &o, x->shape[2], x->shape[3]));
            nb__accum(w, gw);
            if (db) nb__accum(b, gb);
            return;
        }
    }
#endif
    if (x->requires_grad) nb__accum(x, grad_input(g, w, &o, x->shape[2], x->shape[3]));
    if (w->requires_grad) nb__accum(w, grad_weight(g, x, &o, w->shape[2], w->shape[3]));
    if (b && b->requires_grad) nb__accum(b, bias_grad(g));
}
static const nb_op op_conv2d = {"conv2d", conv2d_bw};

nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *b, const nb_conv2d_opts *opts) {
    if (x->ndim != 4 || w->ndim != 4) nb__shape_fatal("conv2d", x, w, "input must be [N, C, H, W] and weight [OC, C, KH, KW]");
    if (x->shape[1] != w->shape[1]) nb__shape_fatal("conv2d", x, w, "input channels differ from the weight's");
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) nb__shape_fatal("conv2d", b, w, "bias must be [OC]");
    nb_conv2d_opts o = opts_resolve("conv2d", opts);
    geom g = geom_make("conv2d", x->shape, w->shape, &o);
    nb_tensor *y = nb__new(4, (int64_t[]){g.N, g.OC, g.OH, g.OW});
    if (y->size) conv_forward(&g, x->data, w->data, b ? b->data : NULL, y->data);
    nb_node *n = nb__record(&op_conv2d, y, (nb_tensor *[]){x, w, b}, 3);
    if (n) opts_store(n, &o);
    return y;
}

/* gx = Tin(gy, w), gy [N, OC, OH, OW], w [OC, C, KH, KW] -> gx [N, C, H, W]
 * (a transposed convolution). It is bilinear, and <u, Tin(gy, w)> =
 * <conv(u, w), gy>, so with U = dL/dgx:
 *   dgy = conv2d(U, w)   dw = Tw(gy, U) */
static void grad_input_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *gy = n->in[0], *w = n->in[1];
    nb_conv2d_opts o = opts_load(n);
    if (gy->requires_grad) nb__accum(gy, nb_conv2d(u, w, NULL, &o));
    if (w->requires_grad) nb__accum(w, grad_weight(gy, u, &o, w->shape[2], w->shape[3]));
}
static const nb_op op_grad_input = {"conv2d_grad_input", grad_input_bw};

static nb_tensor *grad_input(nb_tensor *gy, nb_tensor *w, const nb_conv2d_opts *o, int64_t H, int64_t W) {
    geom g = geom_make("conv2d_grad_input", (int64_t[]){gy->shape[0], w->shape[1], H, W}, w->shape, o);
    if (gy->shape[1] != g.OC || gy->shape[2] != g.OH || gy->shape[3] != g.OW)
        nb__shape_fatal("conv2d_grad_input", gy, w, "gradient does not match the convolution's output");
    nb_tensor *gx = nb__new(4, (int64_t[]){g.N, g.C, H, W});
    if (gx->size && g.OC) conv_grad_input(&g, gy->data, w->data, gx->data);
    else nb_fill(gx, 0.f);
    nb_node *n = nb__record(&op_grad_input, gx, (nb_tensor *[]){gy, w}, 2);
    if (n) opts_store(n, o);
    return gx;
}

/* gw = Tw(gy, x), gy [N, OC, OH, OW], x [N, C, H, W] -> gw [OC, C, KH, KW].
 * Bilinear with <V, Tw(gy, x)> = <conv(x, V), gy>, so with V = dL/dgw:
 *   dgy = conv2d(x, V)   dx = Tin(gy, V) */
static void grad_weight_bw(nb_node *n, nb_tensor *v) {
    nb_tensor *gy = n->in[0], *x = n->in[1];
    nb_conv2d_opts o = opts_load(n);
    if (gy->requires_grad) nb__accum(gy, nb_conv2d(x, v, NULL, &o));
    if (x->requires_grad) nb__accum(x, grad_input(gy, v, &o, x->shape[2], x->shape[3]));
}
static const nb_op op_grad_weight = {"conv2d_grad_weight", grad_weight_bw};

static nb_tensor *grad_weight(nb_tensor *gy, nb_tensor *x, const nb_conv2d_opts *o, int64_t KH, int64_t KW) {
    geom g = geom_make("conv2d_grad_weight", x->shape, (int64_t[]){gy->shape[1], x->shape[1], KH, KW}, o);
    if (gy->shape[0] != g.N || gy->shape[2] != g.OH || gy->shape[3] != g.OW)
        nb__shape_fatal("conv2d_grad_weight", gy, x, "gradient does not match the convolution's output");
    nb_tensor *gw = nb__new(4, (int64_t[]){g.OC, g.C, KH, KW});
    if (gw->size && g.N) conv_grad_weight(&g, gy->data, x->data, gw->data);
    else nb_fill(gw, 0.f);
    nb_node *n = nb__record(&op_grad_weight, gw, (nb_tensor *[]){gy, x}, 2);
    if (n) opts_store(n, o);
    return gw;
}

/* --- 1-D ------------------------------------------------------------------ */

/* conv1d is conv2d on images of height 1: x [N, C, L] -> [N, C, 1, L],
 * w [OC, C, K] -> [OC, C, 1, K]. The reshapes are ops, so gradients (and
 * their gradients) flow back to the 3-D tensors. */
nb_tensor *nb_conv1d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad, int dilation, bool causal) {
    if (x->ndim != 3 || w->ndim != 3) nb__shape_fatal("conv1d", x, w, "input must be [N, C, L] and weight [OC, C, K]");
    int dil = dilation ? dilation : 1;
    nb_conv2d_opts o = {.stride_w = stride, .dil_w = dil};
    if (causal) { /* out[t] sees x[t - (K-1)*dil .. t]: all padding on the left */
        o.pad_left = (int)((w->shape[2] - 1) * dil);
    } else {
        o.pad_left = o.pad_right = pad;
    }
    nb_tensor *x4 = nb_reshape(x, 4, (int64_t[]){x->shape[0], x->shape[1], 1, x->shape[2]});
    nb_tensor *w4 = nb_reshape(w, 4, (int64_t[]){w->shape[0], w->shape[1], 1, w->shape[2]});
    nb_tensor *y = nb_conv2d(x4, w4, b, &o);
    return nb_reshape(y, 3, (int64_t[]){y->shape[0], y->shape[1], y->shape[3]});
}
