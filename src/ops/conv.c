/* conv.c — 2-D and 1-D convolution (cross-correlation, eq. 9.6): direct
 * AVX-512 or AVX2 kernels where the channel counts suit them (the kernels in
 * conv_avx512.c and conv_avx2.c, driven from here image by image), im2col +
 * OpenBLAS sgemm elsewhere, im2col + cuBLAS on the GPU, and the two halves of
 * the backward pass as ops of their own (each with its own backward rule), so
 * gradients of gradients exist, on either device. */
#include "conv_direct.h"
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
    /* Checked before multiplying (signed overflow is undefined): a 1x1 image
     * padded by INT_MAX on each side asks for a 2^32 x 2^32 output, and an
     * empty batch or weight can carry sides no tensor of data could. */
    if (g.OH > INT64_MAX / g.OW || g.KH > INT64_MAX / g.KW || g.C > INT64_MAX / (g.KH * g.KW))
        nb_fatal(op, "output %lld x %lld or kernel %lld x %lld x %lld too large", (long long)g.OH, (long long)g.OW,
                 (long long)g.C, (long long)g.KH, (long long)g.KW);
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

/* --- direct kernels: their drivers -----------------------------------------
 * (the kernels: conv_direct.h) */
#ifdef NB_CONV_DIRECT

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
static int64_t *tap_rows(const conv_taps *t, int64_t K, int64_t OH, int64_t sh) {
    int64_t *r = nb_arena_alloc(sizeof(int64_t) * (size_t)(2 * K));
    for (int64_t k = 0; k < K; k++) {
        int64_t m = k / t->KW % t->KH, h = ceil_div(t->v1 - m * t->dh, sh);
        r[2 * k] = ceil_div(t->v0 - m * t->dh, sh);
        r[2 * k + 1] = h < OH ? h : OH;
    }
    return r;
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

/* The taps over the input padded by (pt, pl): the forward's and the weight
 * gradient's. */
static conv_taps input_taps(const geom *g) {
    return (conv_taps){g->KH, g->KW, g->dh, g->dw, g->pt, g->pt + g->H, g->pl, g->pl + g->W};
}

/* y = conv(x, w) + b with nb__conv_image on each padded image. */
static void forward_direct(const geom *g, const float *x, const float *w, const float *b, float *y) {
    int64_t Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr, xsz = g->C * Hp * Wp;
    const int64_t *koff = tap_offsets(g->C, g->KH, g->KW, g->dh, g->dw, Hp, Wp);
    const float *wp = pack_panels(w, g->OC, g->K);
    const conv_taps t = input_taps(g);
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
            nb__conv_image(xpad, Wp, koff, g->K, &t, wp, g->OC, g->OH, g->OW, g->sh, g->sw, b, y + n * g->OC * g->P);
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
    conv_taps t;
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
    /* gy lies at rows top .. top + OH and columns left .. left + OW of the
     * padded image (top, left < 0: cropped) */
    p.t = (conv_taps){g->KH, g->KW, g->dh, g->dw, p.top > 0 ? p.top : 0, p.top + g->OH, p.left > 0 ? p.left : 0,
                      p.left + g->OW};
    p.koff = tap_offsets(g->OC, g->KH, g->KW, g->dh, g->dw, p.Hq, p.Wq);
    p.wp = pack_panels(wf, g->C, p.Kt);
    return p;
}

/* gx_n from gy_n; gpad: gsz + ROW_SLACK floats, zero where padding goes. */
static void gin_image(const geom *g, const gin *p, const float *gyn, float *gpad, float *gxn) {
    pad_image(gyn, g->OC, g->OH, g->OW, p->top, p->left, p->Hq, p->Wq, gpad);
    nb__conv_image(gpad, p->Wq, p->koff, p->Kt, &p->t, p->wp, g->C, g->H, g->W, 1, 1, NULL, gxn);
}

/* The weight gradient: gw = sum_n nb__conv_wgrad_image(x_n, gy_n), and the
 * bias's, db = sum_n of gy_n's positions, summed from gy_n with channels
 * last (gyT) while it is at hand. Each thread sums its images into its own
 * [K, ncp] and [ncp] sums, added in thread order (deterministic). */
typedef struct {
    int64_t Hp, Wp, xsz, ncp, gsz, wsz; /* a thread's scratch: xpad [xsz], gyT [gsz], sums [wsz], [ncp] */
    conv_taps t;
    const int64_t *koff, *trows; /* trows: tap_rows */
} gwt;

static gwt gwt_make(const geom *g) {
    gwt p = {.Hp = g->H + g->pt + g->pb, .Wp = g->W + g->pl + g->pr, .ncp = panels_of(g->OC) * VB};
    p.xsz = g->C * p.Hp * p.Wp;
    p.gsz = g->P * p.ncp;
    p.wsz = g->K * p.ncp;
    p.t = input_taps(g);
    p.koff = tap_offsets(g->C, g->KH, g->KW, g->dh, g->dw, p.Hp, p.Wp);
    p.trows = tap_rows(&p.t, g->K, g->OH, g->sh);
    return p;
}
static int64_t gwt_scratch(const gwt *p) { return p->xsz + p->gsz + p->wsz + p->ncp; }

/* Adds image n's share; scr must start zeroed (the padding of xpad, the
 * channels of gyT past OC, the sums). */
static void gwt_image(const geom *g, const gwt *p, const float *gyn, const float *xn, float *scr, bool bias) {
    float *xpad = scr, *gyT = xpad + p->xsz, *acc = gyT + p->gsz, *bacc = acc + p->wsz;
    nb__conv_channels_last(gyn, g->OC, g->P, p->ncp, gyT);
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
    nb__conv_wgrad_image(xpad, p->Wp, p->koff, p->trows, g->K, &p->t, gyT, p->ncp, g->OW, g->sh, g->sw, acc);
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
#endif /* NB_CONV_DIRECT */

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

/* --- the GPU ----------------------------------------------------------------
 * The im2col path above with the images batched: im2col (src/cuda/conv.cu)
 * lays a group of images out as columns in scratch from the GPU arena, and
 * one strided-batched cuBLAS product per group does what the CPU's loop of
 * sgemm calls does image by image, stride 0 for the weight every image
 * shares. A pointwise kernel reads the images as they lie, as on the CPU.
 * Nothing is added with atomics, so a result has the same bits on every run. */

/* Floats of scratch a group of images may take: big enough that a group is
 * a batch of tens of images in the layers of examples/ (78400 floats of
 * columns an image in the CNN's conv2), small enough that a large image
 * cannot ask the GPU for gigabytes at once. */
#define GPU_SCRATCH ((int64_t)1 << 24)

static nb_gpu_conv gpu_geom(const geom *g) {
    return (nb_gpu_conv){.C = g->C, .H = g->H, .W = g->W, .KH = g->KH, .KW = g->KW, .OH = g->OH, .OW = g->OW,
                         .sh = g->sh, .sw = g->sw, .pt = g->pt, .pl = g->pl, .dh = g->dh, .dw = g->dw};
}

/* Images per group when each takes per_image floats of scratch: at least
 * one, at most N. */
static int64_t gpu_group(const geom *g, int64_t per_image) {
    int64_t n = per_image ? GPU_SCRATCH / per_image : g->N;
    return n < 1 ? 1 : n > g->N ? g->N : n;
}

/* The GEMM operand of images [n0, n0 + nb) of x: their im2col columns in
 * col, or, for a pointwise convolution (col NULL), the images themselves. */
static const float *gpu_columns(const nb_gpu_conv *G, float *col, const float *x, int64_t xs, int64_t n0,
                                int64_t nb) {
    if (!col) return x + n0 * xs;
    nb__gpu_im2col(col, x + n0 * xs, nb, G);
    return col;
}

/* conv_forward's y = conv(x, w) + b (eq. 9.6), each image's
 * y_n [OC, P] = w [OC, K] col_n [K, P] added onto the bias (beta = 1). */
static void gpu_forward(const geom *g, const float *x, const float *w, const float *b, float *y) {
    nb_gpu_conv G = gpu_geom(g);
    int64_t xs = g->C * g->H * g->W, ys = g->OC * g->P, cs = g->K * g->P; /* per image */
    if (b) nb__gpu_strided_copy(y, b, 3, (int64_t[]){g->N, g->OC, g->P}, (int64_t[]){0, 1, 0});
    bool pw = pointwise(g); /* then cs = xs: the image is its own column matrix */
    int64_t step = pw ? g->N : gpu_group(g, cs);
    float *col = pw ? NULL : nb__arena_alloc_gpu(sizeof(float) * (size_t)(step * cs));
    for (int64_t n0 = 0; n0 < g->N; n0 += step) {
        int64_t nb = g->N - n0 < step ? g->N - n0 : step;
        const float *src = gpu_columns(&G, col, x, xs, n0, nb);
        nb__gpu_gemm(false, false, g->OC, g->P, g->K, 1.f, w, g->K, 0, src, g->P, cs, b ? 1.f : 0.f, y + n0 * ys,
                     g->P, ys, nb);
    }
}

/* conv_grad_input's gx = Tin(gy, w): col_n [K, P] = w^T gy_n, then col2im,
 * which gathers each element's entries rather than scattering them, and
 * writes every element (no zeroing first). */
static void gpu_grad_input(const geom *g, const float *gy, const float *w, float *gx) {
    nb_gpu_conv G = gpu_geom(g);
    int64_t xs = g->C * g->H * g->W, ys = g->OC * g->P, cs = g->K * g->P;
    bool pw = pointwise(g);
    int64_t step = pw ? g->N : gpu_group(g, cs);
    float *col = pw ? NULL : nb__arena_alloc_gpu(sizeof(float) * (size_t)(step * cs));
    for (int64_t n0 = 0; n0 < g->N; n0 += step) {
        int64_t nb = g->N - n0 < step ? g->N - n0 : step;
        nb__gpu_gemm(true, false, g->K, g->P, g->OC, 1.f, w, g->K, 0, gy + n0 * ys, g->P, ys, 0.f,
                     col ? col : gx + n0 * xs, g->P, cs, nb);
        if (col) nb__gpu_col2im(gx + n0 * xs, col, nb, &G);
    }
}

/* conv_grad_weight's gw = Tw(gy, x) = sum_n gy_n col_n^T: each group's
 * products [nb, OC, K] in one batched GEMM, then summed over the images by
 * nb__gpu_sum_mid (in double, in a fixed order); the groups' sums are added
 * in group order. */
static void gpu_grad_weight(const geom *g, const float *gy, const float *x, float *gw) {
    nb_gpu_conv G = gpu_geom(g);
    int64_t xs = g->C * g->H * g->W, ys = g->OC * g->P, cs = g->K * g->P, ws = g->OC * g->K;
    bool pw = pointwise(g);
    int64_t step = gpu_group(g, (pw ? 0 : cs) + ws);
    float *col = pw ? NULL : nb__arena_alloc_gpu(sizeof(float) * (size_t)(step * cs));
    float *prod = nb__arena_alloc_gpu(sizeof(float) * (size_t)(step * ws));
    float *part = step < g->N ? nb__arena_alloc_gpu(sizeof(float) * (size_t)ws) : NULL;
    for (int64_t n0 = 0; n0 < g->N; n0 += step) {
        int64_t nb = g->N - n0 < step ? g->N - n0 : step;
        const float *src = gpu_columns(&G, col, x, xs, n0, nb);
        nb__gpu_gemm(false, true, g->OC, g->K, g->P, 1.f, gy + n0 * ys, g->P, ys, src, g->P, cs, 0.f, prod, g->K,
                     ws, nb);
        nb__gpu_sum_mid(n0 ? part : gw, prod, 1, nb, ws);
        if (n0) nb__gpu_accum(gw, part, ws);
    }
}

/* --- the three ops ---------------------------------------------------------- */

static nb_tensor *grad_input(nb_tensor *gy, nb_tensor *w, const nb_conv2d_opts *o, int64_t H, int64_t W);
static nb_tensor *grad_weight(nb_tensor *gy, nb_tensor *x, const nb_conv2d_opts *o, int64_t KH, int64_t KW);

/* db[oc] = sum over n, oh, ow of g[n, oc, oh, ow]: the per-image sums are one
 * GEMV against ones ([N*OC, P] x [P, 1]), then sum_to adds the N rows. Built
 * from differentiable ops, so the bias gradient can be differentiated too. */
static nb_tensor *bias_grad(nb_tensor *g) {
    /* On the GPU: two sums, over each image's positions, then over the
     * images, each over axes that lie together, so that each is one
     * nb__gpu_sum_mid (a fixed order, no atomics) with no copy first. */
    if (nb__on_gpu(g)) return nb_sum(nb_sum(g, (int[]){2, 3}, 2, false), (int[]){0}, 1, false);
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
    if (!nb_grad_enabled() && w->requires_grad && g->size && !nb__on_gpu(g)) {
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
    nb_device dev = NB_DEVICE("conv2d", x, w, b);
    if (x->ndim != 4 || w->ndim != 4) nb__shape_fatal("conv2d", x, w, "input must be [N, C, H, W] and weight [OC, C, KH, KW]");
    if (x->shape[1] != w->shape[1]) nb__shape_fatal("conv2d", x, w, "input channels differ from the weight's");
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) nb__shape_fatal("conv2d", b, w, "bias must be [OC]");
    nb_conv2d_opts o = opts_resolve("conv2d", opts);
    geom g = geom_make("conv2d", x->shape, w->shape, &o);
    nb_tensor *y = nb__new_on(dev, 4, (int64_t[]){g.N, g.OC, g.OH, g.OW});
    if (y->size && dev == NB_CUDA) gpu_forward(&g, x->data, w->data, b ? b->data : NULL, y->data);
    else if (y->size) conv_forward(&g, x->data, w->data, b ? b->data : NULL, y->data);
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
    nb_device dev = NB_DEVICE("conv2d_grad_input", gy, w);
    nb_tensor *gx = nb__new_on(dev, 4, (int64_t[]){g.N, g.C, H, W});
    if (gx->size && g.OC && dev == NB_CUDA) gpu_grad_input(&g, gy->data, w->data, gx->data);
    else if (gx->size && g.OC) conv_grad_input(&g, gy->data, w->data, gx->data);
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
    nb_device dev = NB_DEVICE("conv2d_grad_weight", gy, x);
    nb_tensor *gw = nb__new_on(dev, 4, (int64_t[]){g.OC, g.C, KH, KW});
    if (gw->size && g.N && dev == NB_CUDA) gpu_grad_weight(&g, gy->data, x->data, gw->data);
    else if (gw->size && g.N) conv_grad_weight(&g, gy->data, x->data, gw->data);
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
    (void)NB_DEVICE("conv1d", x, w, b); /* the devices checked here, so a mismatch names conv1d */
    if (x->ndim != 3 || w->ndim != 3) nb__shape_fatal("conv1d", x, w, "input must be [N, C, L] and weight [OC, C, K]");
    /* Checked here, so that the messages name conv1d and its arguments
     * rather than the conv2d that does the work. */
    if (stride < 0 || pad < 0 || dilation < 0)
        nb_fatal("conv1d", "negative stride (%d), padding (%d) or dilation (%d)", stride, pad, dilation);
    if (x->shape[1] != w->shape[1]) nb__shape_fatal("conv1d", x, w, "input channels differ from the weight's");
    int dil = dilation ? dilation : 1;
    nb_conv2d_opts o = {.stride_w = stride, .dil_w = dil};
    if (causal) { /* out[t] sees x[t - (K-1)*dil .. t]: all padding on the left */
        o.pad_left = (int)((w->shape[2] - 1) * dil);
    } else {
        o.pad_left = o.pad_right = pad;
    }
    int64_t K = w->shape[2], span = (int64_t)dil * (K - 1) + 1, padded = x->shape[2] + o.pad_left + o.pad_right;
    if (K < 1) nb__shape_fatal("conv1d", x, w, "empty kernel");
    if (padded < span)
        nb_fatal("conv1d", "kernel of %lld (dilation %d) does not fit the input of length %lld padded to %lld",
                 (long long)K, dil, (long long)x->shape[2], (long long)padded);
    nb_tensor *x4 = nb_reshape(x, 4, (int64_t[]){x->shape[0], x->shape[1], 1, x->shape[2]});
    nb_tensor *w4 = nb_reshape(w, 4, (int64_t[]){w->shape[0], w->shape[1], 1, w->shape[2]});
    nb_tensor *y = nb_conv2d(x4, w4, b, &o);
    return nb_reshape(y, 3, (int64_t[]){y->shape[0], y->shape[1], y->shape[3]});
}
