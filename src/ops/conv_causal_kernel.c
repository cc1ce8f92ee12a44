/* conv_causal_kernel.c — nb__causal_rows (see conv_causal_kernel.h): the
 * products of conv_causal.c's forward and input gradient, computed directly.
 *
 * A register tile is NR rows of y by NV vectors of t. For each tap k and
 * input row j, the tile's NV vectors of x (x[j, t0 + off[k] ...]) are loaded
 * once and each of the NR weights a[k, m, j] broadcast once, for NR*NV
 * multiply-adds: AVX-512 4 x 4 (16 accumulators of 16 floats, 4 loads and 4
 * broadcasts per 16 FMAs), AVX2 4 x 3 (12 of 8 floats). Loads outside [0, T)
 * are masked to zeros (masked loads never fault), so the causal zeros before
 * the start (forward, off <= 0) and after the end (input gradient, off >= 0),
 * a ragged last block of t and taps that miss the signal entirely all take
 * the same path (AVX2, whose masked loads and stores are slow on some CPUs,
 * masks only the blocks at the ends). Blocks of t are the unit of work: a
 * block's x rows (J rows of 64 floats per tap) stay in L1 while every row
 * tile of y runs over them. In isolation on the machine of the README's
 * figures: 150-200 GFLOP/s with AVX-512, 2.2-2.4x OpenBLAS's GEMMs for the
 * same products; with AVX2 about 1.2x.
 * Without either, OpenBLAS's GEMMs do the products (see below). */
#include "conv_causal_kernel.h"
#include "../core/internal.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define VW 16 /* floats per vector */
#define NV 4  /* vectors of t per tile */
#define NR 4  /* rows of y per tile */
#define TW (VW * NV)
#define PF 2  /* blocks of t prefetched ahead (rows of x, r and y: more streams than hardware tracks) */

/* Lanes i of a vector starting at position p (relative to the signal) with
 * 0 <= p + i < T. */
static inline __mmask16 lanes(int64_t p, int64_t T) {
    int64_t lo = -p, hi = T - p;
    if (lo < 0) lo = 0;
    if (hi > VW) hi = VW;
    if (hi <= lo) return 0;
    return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}

static inline __attribute__((always_inline)) void tile(const int nr, float *y, const float *r, const float *bias,
                                                       const float *a, const int64_t *off, int K, int64_t M,
                                                       int64_t J, const float *x, int64_t ldx, int64_t T,
                                                       int64_t ldy, int64_t m0, int64_t t0) {
    __m512 c[NR][NV];
    __mmask16 ym[NV];
#pragma GCC unroll 4
    for (int q = 0; q < NV; q++) ym[q] = lanes(t0 + q * VW, T);
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        if (i < nr) {
            const __m512 v = bias ? _mm512_set1_ps(bias[m0 + i]) : _mm512_setzero_ps();
#pragma GCC unroll 4
            for (int q = 0; q < NV; q++) {
                c[i][q] = r ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(ym[q], r + (m0 + i) * ldy + t0 + q * VW)) : v;
                /* this tile's rows of r and y, PF blocks ahead */
                if (r) _mm_prefetch((const char *)(r + (m0 + i) * ldy + t0 + q * VW + PF * TW), _MM_HINT_T0);
                if (r != y) __builtin_prefetch(y + (m0 + i) * ldy + t0 + q * VW + PF * TW, 1, 3);
            }
        }
    for (int k = 0; k < K; k++) {
        __mmask16 xm[NV];
        int nz = 0;
#pragma GCC unroll 4
        for (int q = 0; q < NV; q++) nz |= xm[q] = lanes(t0 + off[k] + q * VW, T);
        if (!nz) continue; /* the tap reads only zeros here */
        const float *xk = x + t0 + off[k];
        const float *ak = a + (k * M + m0) * J;
        for (int64_t j = 0; j < J; j++) {
            const float *xj = xk + j * ldx;
            __m512 xv[NV];
            if (m0 == 0) /* the first row tile fetches the x rows PF blocks ahead */
#pragma GCC unroll 4
                for (int q = 0; q < NV; q++) _mm_prefetch((const char *)(xj + q * VW + PF * TW), _MM_HINT_T0);
#pragma GCC unroll 4
            for (int q = 0; q < NV; q++) xv[q] = _mm512_maskz_loadu_ps(xm[q], xj + q * VW);
#pragma GCC unroll 4
            for (int i = 0; i < NR; i++)
                if (i < nr) {
                    const __m512 w = _mm512_set1_ps(ak[i * J + j]);
#pragma GCC unroll 4
                    for (int q = 0; q < NV; q++) c[i][q] = _mm512_fmadd_ps(w, xv[q], c[i][q]);
                }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        if (i < nr)
#pragma GCC unroll 4
            for (int q = 0; q < NV; q++) _mm512_mask_storeu_ps(y + (m0 + i) * ldy + t0 + q * VW, ym[q], c[i][q]);
}


/* The weight gradient's products (see conv_causal_kernel.h): for one
 * chunk of positions u in [u0, u1), out[(k*O + o)*C + c] = sum over u < T - s[k]
 * of g[o*ld + s[k] + u] * x[c*ld + u]. A tile of 4 rows of g by 4 of x keeps
 * 16 sums of 16 lanes in registers over the chunk (8 loads per 16 FMAs), then
 * adds each one's lanes. */
#define WG_R 4
static void wgrad_chunk(float *out, const float *g, int64_t O, const float *x, int64_t C, const int64_t *s, int K,
                        int64_t T, int64_t ld, int64_t u0, int64_t u1) {
    for (int k = 0; k < K; k++) {
        const int64_t e = u1 < T - s[k] ? u1 : T - s[k]; /* positions [u0, e) of this tap */
        float *ok = out + (int64_t)k * O * C;
        const float *gk = g + s[k];
        int64_t o0 = 0;
        for (; o0 + WG_R <= O; o0 += WG_R) {
            int64_t c0 = 0;
            for (; c0 + WG_R <= C; c0 += WG_R) {
                __m512 acc[WG_R][WG_R];
#pragma GCC unroll 4
                for (int i = 0; i < WG_R; i++)
#pragma GCC unroll 4
                    for (int j = 0; j < WG_R; j++) acc[i][j] = _mm512_setzero_ps();
                for (int64_t u = u0; u < e; u += VW) {
                    const __mmask16 mk = lanes(u - e + T, T); /* lanes with u + i < e */
                    __m512 xv[WG_R];
#pragma GCC unroll 4
                    for (int j = 0; j < WG_R; j++) xv[j] = _mm512_maskz_loadu_ps(mk, x + (c0 + j) * ld + u);
#pragma GCC unroll 4
                    for (int i = 0; i < WG_R; i++) {
                        const __m512 gv = _mm512_maskz_loadu_ps(mk, gk + (o0 + i) * ld + u);
#pragma GCC unroll 4
                        for (int j = 0; j < WG_R; j++) acc[i][j] = _mm512_fmadd_ps(gv, xv[j], acc[i][j]);
                    }
                }
#pragma GCC unroll 4
                for (int i = 0; i < WG_R; i++)
#pragma GCC unroll 4
                    for (int j = 0; j < WG_R; j++) ok[(o0 + i) * C + c0 + j] = _mm512_reduce_add_ps(acc[i][j]);
            }
            for (; c0 < C; c0++) /* the last C % 4 columns */
                for (int i = 0; i < WG_R; i++) {
                    float v = 0;
                    for (int64_t u = u0; u < e; u++) v += gk[(o0 + i) * ld + u] * x[c0 * ld + u];
                    ok[(o0 + i) * C + c0] = v;
                }
        }
        for (; o0 < O; o0++) /* the last O % 4 rows */
            for (int64_t c = 0; c < C; c++) {
                float v = 0;
                for (int64_t u = u0; u < e; u++) v += gk[o0 * ld + u] * x[c * ld + u];
                ok[o0 * C + c] = v;
            }
    }
}

#define WG_CHUNK 1024 /* positions per chunk: a chunk's rows of g and x stay in L2 */

int nb__causal_wgrad(float *out, const float *g, int64_t O, const float *x, int64_t C, const int64_t *s, int K,
                     int64_t N, int64_t T) {
    const int64_t nch = (T + WG_CHUNK - 1) / WG_CHUNK, KOC = (int64_t)K * O * C, nparts = N * nch;
    float *part = nb_arena_alloc(sizeof(float) * (size_t)(nparts * KOC));
    NB_PARALLEL(nparts > 1 && O * C * T * K >= 8 * NB_PAR_MIN, for schedule(static),
                for (int64_t p = 0; p < nparts; p++) {
                    const int64_t n = p / nch, u0 = (p % nch) * WG_CHUNK, u1 = u0 + WG_CHUNK < T ? u0 + WG_CHUNK : T;
                    wgrad_chunk(part + p * KOC, g + n * O * T, O, x + n * C * T, C, s, K, T, T, u0, u1);
                });
    /* the chunks' sums added in order: the same for any thread count */
    memset(out, 0, sizeof(float) * (size_t)KOC);
    for (int64_t p = 0; p < nparts; p++)
        for (int64_t i = 0; i < KOC; i++) out[i] += part[p * KOC + i];
    return 1;
}

#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VW 8
#define NV 3
#define NR 4
#define TW (VW * NV)

/* As above, as the sign bits of a vector of ints (maskload's form). */
static inline __m256i lanes(int64_t p, int64_t T) {
    int64_t lo = -p, hi = T - p;
    if (lo < 0) lo = 0;
    if (hi > VW) hi = VW;
    if (hi < lo) hi = lo;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), idx));
}

/* One tap's products over the J rows of x into the tile's sums. */
static inline __attribute__((always_inline)) void taps_j(__m256 c[NR][NV], const int nr, const float *xk,
                                                         const float *ak, int64_t J, int64_t ldx, const __m256i *xm,
                                                         const bool masked) {
    for (int64_t j = 0; j < J; j++) {
        const float *xj = xk + j * ldx;
        __m256 xv[NV];
#pragma GCC unroll 4
        for (int q = 0; q < NV; q++) xv[q] = masked ? _mm256_maskload_ps(xj + q * VW, xm[q]) : _mm256_loadu_ps(xj + q * VW);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++)
            if (i < nr) {
                const __m256 w = _mm256_broadcast_ss(ak + i * J + j);
#pragma GCC unroll 4
                for (int q = 0; q < NV; q++) c[i][q] = _mm256_fmadd_ps(w, xv[q], c[i][q]);
            }
    }
}

static inline __attribute__((always_inline)) void tile(const int nr, float *y, const float *r, const float *bias,
                                                       const float *a, const int64_t *off, int K, int64_t M,
                                                       int64_t J, const float *x, int64_t ldx, int64_t T,
                                                       int64_t ldy, int64_t m0, int64_t t0) {
    __m256 c[NR][NV];
    __m256i ym[NV];
#pragma GCC unroll 4
    for (int q = 0; q < NV; q++) ym[q] = lanes(t0 + q * VW, T);
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        if (i < nr) {
            const __m256 v = bias ? _mm256_set1_ps(bias[m0 + i]) : _mm256_setzero_ps();
#pragma GCC unroll 4
            for (int q = 0; q < NV; q++)
                c[i][q] = r ? _mm256_add_ps(v, _mm256_maskload_ps(r + (m0 + i) * ldy + t0 + q * VW, ym[q])) : v;
        }
    for (int k = 0; k < K; k++) {
        __m256i xm[NV];
        int nz = 0;
#pragma GCC unroll 4
        for (int q = 0; q < NV; q++) {
            xm[q] = lanes(t0 + off[k] + q * VW, T);
            nz |= !_mm256_testz_si256(xm[q], xm[q]);
        }
        if (!nz) continue;
        const float *xk = x + t0 + off[k];
        const float *ak = a + (k * M + m0) * J;
        /* masked loads (slow on some CPUs) only where the block meets an end */
        if (t0 + off[k] >= 0 && t0 + off[k] + TW <= T) taps_j(c, nr, xk, ak, J, ldx, xm, false);
        else taps_j(c, nr, xk, ak, J, ldx, xm, true);
    }
    const bool whole = t0 + TW <= T;
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        if (i < nr)
#pragma GCC unroll 4
            for (int q = 0; q < NV; q++) {
                float *p = y + (m0 + i) * ldy + t0 + q * VW;
                if (whole) _mm256_storeu_ps(p, c[i][q]);
                else _mm256_maskstore_ps(p, ym[q], c[i][q]);
            }
}

#else
/* Without AVX2 the GEMM library's kernels (OpenBLAS picks them at run time,
 * whatever this file was compiled for) beat plain C by 4-6x on these shapes
 * (measured on the AVX-512 machine of the README's figures, a generic x86-64
 * build): y gets r + bias, then each tap is one GEMM with beta = 1 on the
 * columns where it reads inside [0, T). */
#include <cblas.h>
#include <string.h>

void nb__causal_rows(float *y, const float *r, const float *bias, const float *a, const int64_t *off, int K,
                     int64_t M, int64_t J, const float *x, int64_t ldx, int64_t T, int64_t ldy) {
    if (M <= 0 || T <= 0) return;
    for (int64_t m = 0; m < M; m++) {
        const float b = bias ? bias[m] : 0.f;
        float *ym = y + m * ldy;
        if (r) {
            const float *rm = r + m * ldy;
            for (int64_t t = 0; t < T; t++) ym[t] = rm[t] + b;
        } else {
            for (int64_t t = 0; t < T; t++) ym[t] = b;
        }
    }
    for (int k = 0; k < K; k++) {
        const int64_t lo = off[k] < 0 ? -off[k] : 0, hi = off[k] > 0 ? T - off[k] : T; /* columns reading data */
        if (hi <= lo || J == 0) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)(hi - lo), (int)J, 1.f,
                    a + (int64_t)k * M * J, (int)J, x + lo + off[k], (int)ldx, 1.f, y + lo, (int)ldy);
    }
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/* Every row of y over one block of t. */
static void block(float *y, const float *r, const float *bias, const float *a, const int64_t *off, int K, int64_t M,
                  int64_t J, const float *x, int64_t ldx, int64_t T, int64_t ldy, int64_t t0) {
    int64_t m0 = 0;
    for (; m0 + NR <= M; m0 += NR) tile(NR, y, r, bias, a, off, K, M, J, x, ldx, T, ldy, m0, t0);
    switch (M - m0) {
    case 3: tile(3, y, r, bias, a, off, K, M, J, x, ldx, T, ldy, m0, t0); break;
    case 2: tile(2, y, r, bias, a, off, K, M, J, x, ldx, T, ldy, m0, t0); break;
    case 1: tile(1, y, r, bias, a, off, K, M, J, x, ldx, T, ldy, m0, t0); break;
    default: break;
    }
}

void nb__causal_rows(float *y, const float *r, const float *bias, const float *a, const int64_t *off, int K,
                     int64_t M, int64_t J, const float *x, int64_t ldx, int64_t T, int64_t ldy) {
    if (M <= 0 || T <= 0) return;
    const int64_t nb = (T + TW - 1) / TW;
    /* forked when there are several blocks and enough multiply-adds */
    NB_PARALLEL(nb > 1 && M * T * (J * K + 1) >= 8 * NB_PAR_MIN, for schedule(static),
                for (int64_t b = 0; b < nb; b++) block(y, r, bias, a, off, K, M, J, x, ldx, T, ldy, b * TW););
}
#endif

#if !defined(__AVX512F__)
int nb__causal_wgrad(float *out, const float *g, int64_t O, const float *x, int64_t C, const int64_t *s, int K,
                     int64_t N, int64_t T) {
    (void)out, (void)g, (void)O, (void)x, (void)C, (void)s, (void)K, (void)N, (void)T;
    return 0; /* OpenBLAS does it (conv_causal.c) */
}
#endif
