/* pool.c — max and average pooling over k x k windows of NCHW images, each
 * with the small op pair its backward needs: scatter/gather by the argmax
 * indices for max pooling, the window-spreading adjoint for average pooling.
 * On the GPU (src/cuda/pool.cu) each op is one kernel with the same rules;
 * the argmax indices then live in device memory. */
#include "../core/internal.h"
#include <math.h>
#include <string.h>

/* x [N, C, H, W] -> y [N, C, OH, OW]; planes = N*C images pooled alike.
 * Window (oh, ow) covers rows oh*s - p .. oh*s - p + k - 1 (and likewise
 * columns) of x, the padding being outside [0, H) x [0, W). The backend's
 * struct, so that the GPU kernels take it as it is. */
typedef nb_gpu_pool pgeom;

static pgeom pool_geom(const char *op, const nb_tensor *x, int k, int s, int p) {
    char buf[96];
    if (x->ndim != 4) nb_fatal(op, "input must be [N, C, H, W], got %s", nb_shape_str(x, buf, sizeof buf));
    if (k <= 0 || s < 0) nb_fatal(op, "window %d and stride %d must be positive", k, s);
    if (!s) s = k;
    /* As in PyTorch: at most half a window of padding, so that every window
     * holds at least one element of x. (p > k / 2 is 2 p > k without
     * overflowing int for a huge p.) */
    if (p < 0 || p > k / 2) nb_fatal(op, "padding %d must be in [0, window/2 = %d]", p, k / 2);
    pgeom g = {.planes = x->shape[0] * x->shape[1], .H = x->shape[2], .W = x->shape[3], .k = k, .s = s, .p = p};
    if (g.H + 2 * p < k || g.W + 2 * p < k)
        nb_fatal(op, "window %d does not fit the padded input %s", k, nb_shape_str(x, buf, sizeof buf));
    g.OH = (g.H + 2 * p - k) / s + 1;
    g.OW = (g.W + 2 * p - k) / s + 1;
    return g;
}

/* The part of window (o) inside the input, along one axis: [*lo, *hi). */
static void window(const pgeom *g, int64_t o, int64_t n, int64_t *lo, int64_t *hi) {
    int64_t a = o * g->s - g->p, b = a + g->k;
    *lo = a < 0 ? 0 : a;
    *hi = b > n ? n : b;
}

static void store_geom(nb_node *n, const pgeom *g) {
    n->i[0] = g->k;
    n->i[1] = g->s;
    n->i[2] = g->p;
}

/* The geometry stored by store_geom, for x (or a tensor of x's shape). */
static pgeom node_geom(const char *op, const nb_node *n, const nb_tensor *x) {
    return pool_geom(op, x, (int)n->i[0], (int)n->i[1], (int)n->i[2]);
}

/* The windows are the 2 x 2 blocks of an input of even height and width. */
static bool is_tiled(const pgeom *g) { return g->k == 2 && g->s == 2 && g->p == 0 && g->H % 2 == 0 && g->W % 2 == 0; }

/* --- scatter / gather by argmax indices ------------------------------------ */

/* Both keep an index inside its own image plane, so a loop over planes runs
 * in parallel without two threads adding to one element. When the windows
 * tile the input (is_tiled), output row r's indices lie in input rows 2r and
 * 2r + 1, and the scatter writes those two rows whole, zeros included,
 * instead of zeroing all of out in a pass of its own. Their nodes keep the
 * pooling's geometry (the GPU's scatter walks the windows that cover each
 * element) and idx, which lives on the tensors' device. */

static nb_tensor *pool_gather(nb_tensor *u, const int64_t *idx, const pgeom *pg);

/* out [N, C, H, W] (zeros) [idx[i]] += g[i]: the adjoint of gather, g
 * [N, C, OH, OW]. With V = dL/dout: dg = gather(V, idx). */
static void scatter_bw(nb_node *n, nb_tensor *v) {
    pgeom pg = node_geom("maxpool2d", n, n->out);
    nb__accum(n->in[0], pool_gather(v, n->aux, &pg));
}
static const nb_op op_scatter = {"maxpool_scatter", scatter_bw};

static nb_tensor *pool_scatter(nb_tensor *g, const int64_t *idx, const pgeom *pgm) {
    const int64_t shape[4] = {g->shape[0], g->shape[1], pgm->H, pgm->W};
    nb_tensor *out;
    if (nb__on_gpu(g)) {
        /* Each input element gathers from the windows that cover it, so no
         * two threads add into one element; every element is written. */
        out = nb__new_on(NB_CUDA, 4, shape);
        nb__gpu_maxpool_scatter(out->data, g->data, idx, pgm);
    } else if (is_tiled(pgm)) {
        out = nb__new(4, shape);
        const float *pg = g->data;
        float *po = out->data;
        int64_t rows = g->shape[0] * g->shape[1] * g->shape[2], OW = g->shape[3], W = shape[3];
        NB_PARALLEL_FOR(g->size, for (int64_t r = 0; r < rows; r++) {
            memset(po + r * 2 * W, 0, sizeof(float) * (size_t)(2 * W));
            for (int64_t i = r * OW; i < (r + 1) * OW; i++) po[idx[i]] = pg[i];
        });
    } else {
        out = nb_zeros(4, shape);
        const float *pg = g->data;
        float *po = out->data;
        int64_t planes = shape[0] * shape[1], per = g->size / (planes ? planes : 1);
        NB_PARALLEL_FOR(g->size, for (int64_t pl = 0; pl < planes; pl++) {
            for (int64_t i = pl * per; i < (pl + 1) * per; i++) po[idx[i]] += pg[i];
        });
    }
    nb_node *n = nb__record(&op_scatter, out, &g, 1);
    if (n) {
        n->aux = (void *)idx;
        store_geom(n, pgm);
    }
    return out;
}

/* out[i] = u[idx[i]], u [N, C, H, W] -> out [N, C, OH, OW]. With
 * G = dL/dout: du = scatter(G, idx). */
static void gather_bw(nb_node *n, nb_tensor *g) {
    pgeom pg = node_geom("maxpool2d", n, n->in[0]);
    nb__accum(n->in[0], pool_scatter(g, n->aux, &pg));
}
static const nb_op op_gather = {"maxpool_gather", gather_bw};

static nb_tensor *pool_gather(nb_tensor *u, const int64_t *idx, const pgeom *pg) {
    nb_tensor *out = nb__new_on(u->device, 4, (int64_t[]){u->shape[0], u->shape[1], pg->OH, pg->OW});
    int64_t n = out->size;
    if (nb__on_gpu(u)) {
        nb__gpu_gather_at(out->data, u->data, idx, n);
    } else {
        const float *pu = u->data;
        float *po = out->data;
        NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) { po[i] = pu[idx[i]]; });
    }
    nb_node *nd = nb__record(&op_gather, out, &u, 1);
    if (nd) {
        nd->aux = (void *)idx;
        store_geom(nd, pg);
    }
    return out;
}

/* One output row of 2 x 2, stride-2 max pooling. r0 points at input row
 * 2 oh (r0 + W is row 2 oh + 1), base is its flat index in x. Each window is
 * scanned as the general loop scans it: r0[2j], r0[2j+1], r1[2j], r1[2j+1];
 * the first maximum wins, and a NaN, if any, wins first; so both paths pick
 * the same argmax and give the same gradient. */
static void max2x2(const float *r0, int64_t W, int64_t j, int64_t base, float *y, int64_t *idx) {
    const float c[4] = {r0[2 * j], r0[2 * j + 1], r0[W + 2 * j], r0[W + 2 * j + 1]};
    const int64_t off[4] = {0, 1, W, W + 1};
    int k = 0;
    for (int i = 1; i < 4; i++) k = c[i] > c[k] ? i : k;
    for (int i = 3; i >= 0; i--) k = isnan(c[i]) ? i : k;
    y[j] = c[k];
    if (idx) idx[j] = base + 2 * j + off[k];
}

#if defined(__AVX2__)
#include <immintrin.h>
/* Even- and odd-indexed floats of p[0..15], in order. */
static inline void deinterleave(const float *p, __m256 *even, __m256 *odd) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    /* shuffle_ps works per 128-bit lane: [a0 a2 b0 b2 | a4 a6 b4 b6]; the
     * 64-bit permute puts the lanes in order. */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8));
}

/* best = c > best ? c : best, and the same choice for the offsets. */
static inline void take_if_greater(__m256 c, __m256i off, __m256 *best, __m256i *bi) {
    __m256 gt = _mm256_cmp_ps(c, *best, _CMP_GT_OQ);
    *best = _mm256_blendv_ps(*best, c, gt);
    *bi = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*bi), _mm256_castsi256_ps(off), gt));
}
#endif

#if defined(__AVX2__)
/* The maxima of 8 adjacent 2x2 windows whose top rows are a[0..15] and
 * bottom rows b[0..15]: their values, and where each sits in its window as an
 * offset from the top-left (0, 1, W, W+1) plus 2 * the window's number.
 * False, and nothing computed, if any value is NaN (the scalar rule decides). */
static inline bool max8(const float *a, const float *b, int64_t W, __m256 *best, __m256i *pos) {
    __m256 e0, o0, e1, o1;
    deinterleave(a, &e0, &o0);
    deinterleave(b, &e1, &o1);
    __m256 nan = _mm256_or_ps(_mm256_cmp_ps(e0, o0, _CMP_UNORD_Q), _mm256_cmp_ps(e1, o1, _CMP_UNORD_Q));
    if (_mm256_movemask_ps(nan)) return false;
    __m256i bi = _mm256_setzero_si256();
    *best = e0;
    take_if_greater(o0, _mm256_set1_epi32(1), best, &bi);
    take_if_greater(e1, _mm256_set1_epi32((int)W), best, &bi);
    take_if_greater(o1, _mm256_set1_epi32((int)W + 1), best, &bi);
    *pos = _mm256_add_epi32(bi, _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)); /* < 2^31 */
    return true;
}

/* idx[0..8) = start + pos, widened to 64 bits. */
static inline void store_idx8(int64_t *idx, int64_t start, __m256i pos) {
    __m256i b = _mm256_set1_epi64x(start);
    _mm256_storeu_si256((__m256i *)idx, _mm256_add_epi64(b, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(pos))));
    _mm256_storeu_si256((__m256i *)(idx + 4),
                        _mm256_add_epi64(b, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(pos, 1))));
}
#endif

static void maxpool2_row(const float *r0, int64_t W, int64_t OW, int64_t base, float *y, int64_t *idx) {
    int64_t j = 0;
#if defined(__AVX2__)
    const float *r1 = r0 + W;
    __m256 best;
    __m256i pos;
    for (; j + 8 <= OW && W < INT32_MAX; j += 8) {
        if (!max8(r0 + 2 * j, r1 + 2 * j, W, &best, &pos)) { /* rare: the scalar rule for NaN */
            for (int64_t q = j; q < j + 8; q++) max2x2(r0, W, q, base, y, idx);
            continue;
        }
        _mm256_storeu_ps(y + j, best);
        if (idx) store_idx8(idx + j, base + 2 * j, pos);
    }
    /* The last n < 8 windows (all 7 of a 14-wide row) as one vector too, from
     * copies padded with -inf, of which only n lanes are kept. */
    int n = (int)(OW - j);
    if (n > 0 && W < INT32_MAX) {
        float a[16], b[16];
#if defined(__AVX512F__) && defined(__AVX512VL__)
        /* (masked moves: memcpy calls of a variable size cost more than the
         * maxima themselves) */
        const __m512 ninf = _mm512_set1_ps(-INFINITY);
        const __mmask16 m2 = (__mmask16)((1u << (2 * n)) - 1);
        const __mmask8 m = (__mmask8)((1u << n) - 1);
        _mm512_storeu_ps(a, _mm512_mask_loadu_ps(ninf, m2, r0 + 2 * j));
        _mm512_storeu_ps(b, _mm512_mask_loadu_ps(ninf, m2, r1 + 2 * j));
        if (max8(a, b, W, &best, &pos)) {
            _mm256_mask_storeu_ps(y + j, m, best);
            if (idx)
                _mm512_mask_storeu_epi64(idx + j, m,
                                         _mm512_add_epi64(_mm512_set1_epi64(base + 2 * j), _mm512_cvtepi32_epi64(pos)));
            j = OW;
        }
#else
        float out[8];
        int64_t at[8];
        for (int k = 0; k < 16; k++) a[k] = b[k] = -INFINITY;
        memcpy(a, r0 + 2 * j, sizeof(float) * (size_t)(2 * n));
        memcpy(b, r1 + 2 * j, sizeof(float) * (size_t)(2 * n));
        if (max8(a, b, W, &best, &pos)) {
            _mm256_storeu_ps(out, best);
            memcpy(y + j, out, sizeof(float) * (size_t)n);
            if (idx) {
                store_idx8(at, base + 2 * j, pos);
                memcpy(idx + j, at, sizeof(int64_t) * (size_t)n);
            }
            j = OW;
        }
#endif
    }
#endif
    for (; j < OW; j++) max2x2(r0, W, j, base, y, idx);
}

/* --- max pooling ------------------------------------------------------------ */

/* y = max over each window of x (padding counts as -inf; a NaN wins, as in
 * PyTorch). aux holds, for every y element, the flat index in x of the first
 * maximal element (in device memory for a GPU x). dx = scatter(G, argmax). */
static void maxpool_bw(nb_node *n, nb_tensor *g) {
    pgeom pg = node_geom("maxpool2d", n, n->in[0]);
    nb__accum(n->in[0], pool_scatter(g, n->aux, &pg));
}
static const nb_op op_maxpool = {"maxpool2d", maxpool_bw};

nb_tensor *nb_maxpool2d(nb_tensor *x, int k, int s, int p) {
    pgeom g = pool_geom("maxpool2d", x, k, s, p);
    nb_tensor *y = nb__new_on(x->device, 4, (int64_t[]){x->shape[0], x->shape[1], g.OH, g.OW});
    nb_node *n = nb__record(&op_maxpool, y, &x, 1);
    /* Indices are kept only when a backward pass can need them. */
    size_t idx_bytes = sizeof(int64_t) * (size_t)(y->size ? y->size : 1);
    if (nb__on_gpu(x)) {
        int64_t *idx = n ? nb__arena_alloc_gpu(idx_bytes) : NULL;
        nb__gpu_maxpool(y->data, idx, x->data, &g);
        if (n) {
            store_geom(n, &g);
            n->aux = idx;
        }
        return y;
    }
    int64_t *idx = n ? nb_arena_alloc(idx_bytes) : NULL;
    const float *px = x->data;
    float *py = y->data;
    if (g.k == 2 && g.s == 2 && g.p == 0) { /* the common case, a fast path */
        NB_PARALLEL_FOR(x->size, for (int64_t r = 0; r < g.planes * g.OH; r++) {
            int64_t pl = r / g.OH, oh = r % g.OH, base = pl * g.H * g.W + 2 * oh * g.W;
            maxpool2_row(px + base, g.W, g.OW, base, py + r * g.OW, idx ? idx + r * g.OW : NULL);
        });
        if (n) {
            store_geom(n, &g);
            n->aux = idx;
        }
        return y;
    }
    NB_PARALLEL_FOR(x->size, for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = px + pl * g.H * g.W;
        for (int64_t oh = 0; oh < g.OH; oh++) {
            int64_t h0, h1;
            window(&g, oh, g.H, &h0, &h1);
            for (int64_t ow = 0; ow < g.OW; ow++) {
                int64_t w0, w1;
                window(&g, ow, g.W, &w0, &w1);
                float best = -INFINITY;
                int64_t bi = h0 * g.W + w0;
                bool saw_nan = false;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) {
                        /* Selects (maxss, cmov), not branches: which element
                         * wins is a coin toss the branch predictor loses. */
                        float v = xp[h * g.W + w];
                        bool gt = v > best;
                        best = gt ? v : best;
                        bi = gt ? h * g.W + w : bi;
                        saw_nan |= v != v;
                    }
                if (saw_nan) /* rare: the first NaN of the window wins */
                    for (int64_t h = h1 - 1; h >= h0; h--)
                        for (int64_t w = w1 - 1; w >= w0; w--)
                            if (isnan(xp[h * g.W + w])) best = xp[h * g.W + w], bi = h * g.W + w;
                int64_t o = (pl * g.OH + oh) * g.OW + ow;
                py[o] = best;
                if (idx) idx[o] = pl * g.H * g.W + bi;
            }
        }
    });
    if (n) {
        store_geom(n, &g);
        n->aux = idx;
    }
    return y;
}

/* --- average pooling -------------------------------------------------------- */

/* One output row of 2 x 2, stride-2 average pooling; r0 is input row 2 oh.
 * The sum runs in the general loop's order, so both paths agree bit for bit. */
static void avgpool2_row(const float *r0, int64_t W, int64_t OW, float *y) {
    const float *r1 = r0 + W;
    int64_t j = 0;
#if defined(__AVX2__)
    const __m256 q = _mm256_set1_ps(0.25f);
    for (; j + 8 <= OW; j += 8) {
        __m256 e0, o0, e1, o1;
        deinterleave(r0 + 2 * j, &e0, &o0);
        deinterleave(r1 + 2 * j, &e1, &o1);
        __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(e0, o0), e1), o1);
        _mm256_storeu_ps(y + j, _mm256_mul_ps(sum, q));
    }
#endif
    for (; j < OW; j++) y[j] = (((0.f + r0[2 * j]) + r0[2 * j + 1]) + r1[2 * j] + r1[2 * j + 1]) * 0.25f;
}

static nb_tensor *avgpool_adjoint(nb_tensor *g, const pgeom *pg, const int64_t *xshape);

/* y = (1/k^2) * sum over each window of x, padding counted as zeros
 * (PyTorch's default count_include_pad; every window lies inside the padded
 * input, so the divisor is always k^2). y is linear in x:
 * dx = A^T G, the adjoint that spreads G/k^2 back over each window. */
static void avgpool_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0];
    pgeom pg = node_geom("avgpool2d", n, x);
    nb__accum(x, avgpool_adjoint(g, &pg, x->shape));
}
static const nb_op op_avgpool = {"avgpool2d", avgpool_bw};

nb_tensor *nb_avgpool2d(nb_tensor *x, int k, int s, int p) {
    pgeom g = pool_geom("avgpool2d", x, k, s, p);
    nb_tensor *y = nb__new_on(x->device, 4, (int64_t[]){x->shape[0], x->shape[1], g.OH, g.OW});
    const float *px = x->data;
    float *py = y->data;
    float scale = 1.f / (float)(g.k * g.k);
    if (nb__on_gpu(x)) {
        nb__gpu_avgpool(py, px, &g);
    } else if (g.k == 2 && g.s == 2 && g.p == 0) { /* the common case, a fast path */
        NB_PARALLEL_FOR(x->size, for (int64_t r = 0; r < g.planes * g.OH; r++) {
            int64_t pl = r / g.OH, oh = r % g.OH;
            avgpool2_row(px + pl * g.H * g.W + 2 * oh * g.W, g.W, g.OW, py + r * g.OW);
        });
    } else {
        NB_PARALLEL_FOR(x->size, for (int64_t pl = 0; pl < g.planes; pl++) {
            const float *xp = px + pl * g.H * g.W;
            for (int64_t oh = 0; oh < g.OH; oh++) {
                int64_t h0, h1;
                window(&g, oh, g.H, &h0, &h1);
                for (int64_t ow = 0; ow < g.OW; ow++) {
                    int64_t w0, w1;
                    window(&g, ow, g.W, &w0, &w1);
                    float sum = 0.f;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) sum += xp[h * g.W + w];
                    py[(pl * g.OH + oh) * g.OW + ow] = sum * scale;
                }
            }
        });
    }
    nb_node *n = nb__record(&op_avgpool, y, &x, 1);
    if (n) store_geom(n, &g);
    return y;
}

/* gx = A^T g: g [N, C, OH, OW] -> gx [N, C, H, W], each g element adding
 * g/k^2 to the x elements of its window. Linear in g with adjoint A, so
 * with U = dL/dgx: dg = avgpool2d(U). */
static void avgpool_adjoint_bw(nb_node *n, nb_tensor *u) {
    nb__accum(n->in[0], nb_avgpool2d(u, (int)n->i[0], (int)n->i[1], (int)n->i[2]));
}
static const nb_op op_avgpool_adjoint = {"avgpool2d_adjoint", avgpool_adjoint_bw};

static nb_tensor *avgpool_adjoint(nb_tensor *g, const pgeom *pg, const int64_t *xshape) {
    if (nb__on_gpu(g)) {
        /* Each input element gathers from the windows that cover it: the
         * sums in a fixed order without atomics, every element written. */
        nb_tensor *gx = nb__new_on(NB_CUDA, 4, xshape);
        nb__gpu_avgpool_adjoint(gx->data, g->data, pg);
        nb_node *n = nb__record(&op_avgpool_adjoint, gx, &g, 1);
        if (n) store_geom(n, pg);
        return gx;
    }
    bool fast = pg->k == 2 && pg->s == 2 && pg->p == 0;
    /* The fast path writes every element of a tiled input; only an odd last
     * row or column, outside every window, needs the zeros. */
    nb_tensor *gx = fast && pg->H % 2 == 0 && pg->W % 2 == 0 ? nb__new(4, xshape) : nb_zeros(4, xshape);
    const float *pgd = g->data;
    float *px = gx->data;
    float scale = 1.f / (float)(pg->k * pg->k);
    if (fast) {
        NB_PARALLEL_FOR(gx->size, for (int64_t r = 0; r < pg->planes * pg->OH; r++) {
            int64_t pl = r / pg->OH, oh = r % pg->OH;
            float *x0 = px + pl * pg->H * pg->W + 2 * oh * pg->W, *x1 = x0 + pg->W;
            const float *gr = pgd + r * pg->OW;
            for (int64_t j = 0; j < pg->OW; j++) x0[2 * j] = x0[2 * j + 1] = x1[2 * j] = x1[2 * j + 1] = gr[j] * scale;
        });
        nb_node *n = nb__record(&op_avgpool_adjoint, gx, &g, 1);
        if (n) store_geom(n, pg);
        return gx;
    }
    NB_PARALLEL_FOR(gx->size, for (int64_t pl = 0; pl < pg->planes; pl++) {
        float *xp = px + pl * pg->H * pg->W;
        for (int64_t oh = 0; oh < pg->OH; oh++) {
            int64_t h0, h1;
            window(pg, oh, pg->H, &h0, &h1);
            for (int64_t ow = 0; ow < pg->OW; ow++) {
                int64_t w0, w1;
                window(pg, ow, pg->W, &w0, &w1);
                float v = pgd[(pl * pg->OH + oh) * pg->OW + ow] * scale;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) xp[h * pg->W + w] += v;
            }
        }
    });
    nb_node *n = nb__record(&op_avgpool_adjoint, gx, &g, 1);
    if (n) store_geom(n, pg);
    return gx;
}
