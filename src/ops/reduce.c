/* reduce.c — sum and mean over any set of axes, max over one axis, and the
 * argmax of rows; sums accumulate in double so that long reductions keep
 * float32's precision. */
#include "../core/internal.h"
#include <math.h>

/* Bit k set when axis k of x is reduced; n = 0 means every axis. */
static unsigned axes_mask(const char *op, const nb_tensor *x, const int *axes, int n) {
    if (n < 0 || n > NB_MAXDIM) nb_fatal(op, "%d axes given (0..%d allowed)", n, NB_MAXDIM);
    if (n == 0) return (1u << x->ndim) - 1u;
    unsigned m = 0;
    for (int k = 0; k < n; k++) {
        int a = nb__axis(op, x, axes[k]);
        if (m >> a & 1u) nb_fatal(op, "axis %d is given twice", axes[k]);
        m |= 1u << a;
    }
    return m;
}

/* The result's shape: reduced axes become 1 (keepdim) or disappear. */
static int reduced_shape(const nb_tensor *x, unsigned mask, bool keepdim, int64_t *shape) {
    int nd = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (!(mask >> k & 1u)) shape[nd++] = x->shape[k];
        else if (keepdim) shape[nd++] = 1;
    }
    return nd;
}

/* Sum of n contiguous floats in double, in a fixed order: sixteen
 * accumulators (four AVX vectors of four doubles) hide the latency of the
 * adds, which one or four scalar chains cannot; with AVX-512, sixty-four in
 * eight vectors of eight (twice the floats per instruction: a sum of 1.6M
 * floats otherwise ran at half the speed of PyTorch's float one); without
 * AVX, four chains. */
#if defined(__AVX512F__)
#include <immintrin.h>
static inline double row_sum(const float *p, int64_t n) {
    __m512d a[8];
    for (int k = 0; k < 8; k++) a[k] = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) a[k] = _mm512_add_pd(a[k], _mm512_cvtps_pd(_mm256_loadu_ps(p + i + 8 * k)));
    for (; i + 8 <= n; i += 8) a[0] = _mm512_add_pd(a[0], _mm512_cvtps_pd(_mm256_loadu_ps(p + i)));
    for (int k = 0; k < 4; k++) a[k] = _mm512_add_pd(a[k], a[k + 4]);
    double s = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a[0], a[1]), _mm512_add_pd(a[2], a[3])));
    for (; i < n; i++) s += p[i];
    return s;
}
#elif defined(__AVX2__)
#include <immintrin.h>
static inline double row_sum(const float *p, int64_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(p + i)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(p + i + 4)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(p + i + 8)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(p + i + 12)));
    }
    __m256d a = _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3));
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    double s = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) s += p[i];
    return s;
}
#else
static inline double row_sum(const float *p, int64_t n) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
    }
    for (; i < n; i++) a0 += p[i];
    return (a0 + a1) + (a2 + a3);
}
#endif

/* x's dims, simplified for reduction: size-1 dims dropped and neighbours of
 * the same kind (kept/reduced) merged, outermost first. */
typedef struct {
    int nk, nr;
    int64_t kd[NB_MAXDIM], ks[NB_MAXDIM]; /* kept groups: sizes, strides in x */
    int64_t rd[NB_MAXDIM], rs[NB_MAXDIM]; /* reduced groups */
    bool inner_reduced;                   /* the innermost group is reduced */
} red_plan;

static void red_plan_make(const nb_tensor *x, unsigned mask, red_plan *p) {
    int64_t d[NB_MAXDIM], s[NB_MAXDIM], st = 1;
    bool r[NB_MAXDIM];
    int m = 0; /* groups, innermost first */
    for (int k = x->ndim - 1; k >= 0; k--) {
        int64_t dk = x->shape[k];
        bool rk = mask >> k & 1u;
        if (dk != 1) {
            /* Dims between a group and this one all have size 1, so the two
             * are adjacent in memory: merge when of the same kind. */
            if (m && r[m - 1] == rk) {
                d[m - 1] *= dk;
            } else {
                d[m] = dk;
                s[m] = st;
                r[m] = rk;
                m++;
            }
        }
        st *= dk;
    }
    p->nk = p->nr = 0;
    p->inner_reduced = m && r[0];
    for (int g = m - 1; g >= 0; g--) {
        if (r[g]) {
            p->rd[p->nr] = d[g];
            p->rs[p->nr++] = s[g];
        } else {
            p->kd[p->nk] = d[g];
            p->ks[p->nk++] = s[g];
        }
    }
}

#define NB_BAND 2048 /* most output columns one task of the kept-innermost kernel sums (16 KiB of double) */

double nb__ordered_sum(int64_t n, double (*part)(const void *ctx, int64_t lo, int64_t hi), const void *ctx) {
    enum { MAX_CHUNKS = 256, MIN_CHUNK = 4096 };
    int64_t chunk = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    if (chunk < MIN_CHUNK) chunk = MIN_CHUNK;
    int64_t nch = (n + chunk - 1) / chunk;
    double sums[MAX_CHUNKS];
    NB_PARALLEL_FOR(n, for (int64_t c = 0; c < nch; c++) {
        sums[c] = part(ctx, c * chunk, c * chunk + chunk < n ? c * chunk + chunk : n);
    });
    double s = 0;
    for (int64_t c = 0; c < nch; c++) s += sums[c];
    return s;
}

static double floats_part(const void *x, int64_t lo, int64_t hi) { return row_sum((const float *)x + lo, hi - lo); }

double nb__sum_floats(const float *px, int64_t n) { return nb__ordered_sum(n, floats_part, px); }

/* out[o] = sum of x over the reduced groups, for x->size > 0 and nr > 0. */
static void sum_kernel(const nb_tensor *x, const red_plan *p, float *po, int64_t nout) {
    const float *px = x->data;
    int64_t size = x->size;
    if (p->nk == 0) {
        po[0] = (float)nb__sum_floats(px, size);
    } else if (p->inner_reduced) {
        /* Each output is a sum of contiguous rows of length L (the innermost
         * reduced group), one row per index of the other reduced groups. */
        int nr = p->nr - 1;
        int64_t L = p->rd[nr], rows = size / nout / L;
        NB_PARALLEL_FOR(size, for (int64_t o = 0; o < nout; o++) {
            const float *base = px + nb__strided_offset(o, p->nk, p->kd, p->ks);
            double acc = 0;
            for (int64_t r = 0; r < rows; r++) acc += row_sum(base + nb__strided_offset(r, nr, p->rd, p->rs), L);
            po[o] = (float)acc;
        });
    } else {
        /* The innermost group C is kept: outputs come in contiguous runs of C
         * and every reduced index adds a contiguous run of x to one of them.
         * Bands of columns are independent tasks: wide ones stream better,
         * but with few runs (a plain column sum has one) they are narrowed
         * so that every thread gets work. */
        int nk = p->nk - 1;
        int64_t C = p->kd[nk], P = nout / C, rows = size / nout, W = C;
        int64_t th = size >= NB_PAR_MIN ? nb_get_threads() : 1;
        if (P < th) {
            int64_t split = (th + P - 1) / P; /* bands per run */
            W = (C + split - 1) / split;
        }
        W = (W + 15) / 16 * 16;
        if (W < 64) W = 64;
        if (W > NB_BAND) W = NB_BAND;
        int64_t bands = (C + W - 1) / W;
        NB_PARALLEL_FOR(size, for (int64_t t = 0; t < P * bands; t++) {
            int64_t pr = t / bands, c0 = (t % bands) * W, w = C - c0 < W ? C - c0 : W;
            const float *base = px + nb__strided_offset(pr, nk, p->kd, p->ks) + c0;
            double acc[NB_BAND];
            for (int64_t c = 0; c < w; c++) acc[c] = 0;
            for (int64_t r = 0; r < rows; r++) {
                const float *row = base + nb__strided_offset(r, p->nr, p->rd, p->rs);
                for (int64_t c = 0; c < w; c++) acc[c] += row[c];
            }
            float *dst = po + pr * C + c0;
            for (int64_t c = 0; c < w; c++) dst[c] = (float)acc[c];
        });
    }
}

/* The GPU's sum of x over the masked axes into out (device memory). When the
 * reduced axes (ignoring size-1 ones) are one contiguous block, x is [outer,
 * mid, inner] as it lies, which covers the training step's sums (bias
 * gradients, means over a batch, full sums); otherwise the kept axes are
 * first gathered in front of the reduced ones, at the cost of one copy. */
void nb__gpu_sum_mask(const nb_tensor *x, unsigned mask, float *out) {
    int nd = x->ndim, lo = -1, hi = -1;
    bool block = true;
    for (int k = 0; k < nd; k++) {
        if (x->shape[k] == 1 || !(mask >> k & 1u)) continue;
        if (lo < 0) lo = k;
        else if (hi != k - 1) {
            /* a gap: only size-1 axes may lie between reduced ones */
            for (int j = hi + 1; j < k; j++) block &= x->shape[j] == 1;
        }
        hi = k;
    }
    if (lo < 0) { /* nothing of size > 1 is reduced: a copy */
        nb__gpu_copy(out, x->data, sizeof(float) * (size_t)x->size);
        return;
    }
    if (block) {
        int64_t outer = 1, mid = 1, inner = 1;
        for (int k = 0; k < nd; k++) *(k < lo ? &outer : k <= hi ? &mid : &inner) *= x->shape[k];
        nb__gpu_sum_mid(out, x->data, outer, mid, inner);
        return;
    }
    int64_t st[NB_MAXDIM], d[NB_MAXDIM], s[NB_MAXDIM], keep = 1, red = 1, stride = 1;
    for (int k = nd - 1; k >= 0; k--) st[k] = stride, stride *= x->shape[k];
    int m = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < nd; k++)
            if ((int)(mask >> k & 1u) == pass) {
                d[m] = x->shape[k], s[m++] = st[k];
                *(pass ? &red : &keep) *= x->shape[k];
            }
    float *tmp = nb__arena_alloc_gpu(sizeof(float) * (size_t)x->size);
    nb__gpu_strided_copy(tmp, x->data, nd, d, s);
    nb__gpu_sum_mid(out, tmp, keep, red, 1);
}

/* out = sum of x over the masked axes;
 * dx = broadcast_to(reshape(g, x.shape with reduced axes as 1), x.shape),
 * uniform when g has one element (a full sum, or a uniform stand-in). */
static void sum_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0];
    if (g->size == 1) {
        nb__accum_uniform(x, g);
        return;
    }
    int64_t kshape[NB_MAXDIM];
    int nd = reduced_shape(x, (unsigned)n->i[0], true, kshape);
    nb__accum(x, nb_broadcast_to(nb_reshape(g, nd, kshape), x->ndim, x->shape));
}
static const nb_op op_sum = {"sum", sum_bw, .uniform = true};

nb_tensor *nb_sum(nb_tensor *x, const int *axes, int n, bool keepdim) {
    unsigned mask = axes_mask("sum", x, axes, n);
    int64_t shape[NB_MAXDIM];
    int nd = reduced_shape(x, mask, keepdim, shape);
    nb_tensor *out = nb__new_on(x->device, nd, shape);
    red_plan p;
    red_plan_make(x, mask, &p);
    if (x->size == 0) nb_fill(out, 0.f); /* an empty sum is 0 */
    else if (nb__on_gpu(x)) nb__gpu_sum_mask(x, mask, out->data);
    else if (p.nr == 0) memcpy(out->data, x->data, (size_t)x->size * sizeof(float)); /* only size-1 axes */
    else sum_kernel(x, &p, out->data, out->size);
    nb_node *node = nb__record(&op_sum, out, &x, 1);
    if (node) node->i[0] = mask;
    return out;
}

/* mean = sum / count: the scaling is an ordinary op, so both derivatives come
 * from sum and mul_scalar. An empty reduction gives NaN, as in NumPy. */
nb_tensor *nb_mean(nb_tensor *x, const int *axes, int n, bool keepdim) {
    unsigned mask = axes_mask("mean", x, axes, n);
    int64_t count = 1;
    for (int k = 0; k < x->ndim; k++)
        if (mask >> k & 1u) count *= x->shape[k];
    return nb_mul_scalar(nb_sum(x, axes, n, keepdim), count ? (float)(1.0 / (double)count) : NAN);
}

/* --- max over one axis --------------------------------------------------- */

/* The maximum's gradient is routed through a pair of private ops on flat
 * positions (int64, so any tensor size works): put_at places one value per
 * position into zeros, pick_at reads them back. Each is the other's adjoint,
 * so the backward of max is itself differentiable (double backward), with a
 * Hessian contribution of zero as it should be for a piecewise-linear op.
 * Positions are distinct (one per output of max), so put_at may assign.
 * They live on the tensors' device (device memory for GPU tensors). */
static nb_tensor *put_at(nb_tensor *g, const int64_t *pos, int ndim, const int64_t *shape);
static nb_tensor *pick_at(nb_tensor *x, const int64_t *pos, int ndim, const int64_t *shape);

/* out[i] = x.flat[pos[i]], shaped like the max output;  dx = put_at(g) */
static void pick_at_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], put_at(g, n->aux, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_pick_at = {"max.pick", pick_at_bw};

/* out = zeros(shape) with out.flat[pos[i]] = g[i];  dg = pick_at(gg) */
static void put_at_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], pick_at(g, n->aux, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_put_at = {"max.put", put_at_bw};

static nb_tensor *pick_at(nb_tensor *x, const int64_t *pos, int ndim, const int64_t *shape) {
    nb_tensor *out = nb__new_on(x->device, ndim, shape);
    const float *px = x->data;
    float *po = out->data;
    int64_t m = out->size;
    if (nb__on_gpu(x)) nb__gpu_gather_at(po, px, pos, m);
    else NB_PARALLEL_FOR(m, for (int64_t i = 0; i < m; i++) { po[i] = px[pos[i]]; });
    nb_node *n = nb__record(&op_pick_at, out, &x, 1);
    if (n) n->aux = (void *)pos;
    return out;
}

static nb_tensor *put_at(nb_tensor *g, const int64_t *pos, int ndim, const int64_t *shape) {
    nb_tensor *out = nb__new_on(g->device, ndim, shape);
    nb_fill(out, 0.f);
    const float *pg = g->data;
    float *po = out->data;
    int64_t m = g->size;
    if (nb__on_gpu(g)) nb__gpu_put_at(po, pg, pos, m);
    else NB_PARALLEL_FOR(m, for (int64_t i = 0; i < m; i++) { po[pos[i]] = pg[i]; });
    nb_node *n = nb__record(&op_put_at, out, &g, 1);
    if (n) n->aux = (void *)pos;
    return out;
}

/* out = max of x along the axis;  dx = g at the first maximal element, 0 elsewhere */
static void max_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], put_at(g, n->aux, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_max = {"max", max_bw};

/* v beats the best so far: larger, or the first NaN (NaN
 * propagates, as in PyTorch); ties keep the earlier element. */
static inline bool beats(float v, float best) { return v > best || (v != v && best == best); }

/* Index of the first maximal entry of row[0..n), n >= 1, with the same rule.
 * Two passes: a max reduction that vectorizes (omp simd, so no fast-math is
 * needed) that also notes any NaN, then a scan for the first match, which
 * usually stops early. */
static inline int64_t row_argmax(const float *row, int64_t n) {
    float best = -INFINITY;
    int nan = 0;
    NB_PRAGMA(omp simd reduction(max : best) reduction(| : nan))
    for (int64_t j = 0; j < n; j++) {
        float v = row[j];
        best = v > best ? v : best;
        nan |= v != v;
    }
    /* Bounded scans: the match exists, but no loop should rely on a
     * compiler's choice of identity for the max reduction. */
    for (int64_t j = 0; j < n; j++)
        if (nan ? row[j] != row[j] : row[j] == best) return j;
    return 0;
}

nb_tensor *nb_max(nb_tensor *x, int axis, bool keepdim) {
    int a = nb__axis("max", x, axis);
    int64_t A = x->shape[a];
    if (A == 0) {
        char s[96];
        nb_fatal("max", "axis %d has size 0 in a tensor of shape %s", axis, nb_shape_str(x, s, sizeof s));
    }
    int64_t shape[NB_MAXDIM];
    int nd = reduced_shape(x, 1u << a, keepdim, shape);
    nb_tensor *out = nb__new_on(x->device, nd, shape);
    /* x as [outer, A, inner]; out as [outer, inner]. */
    int64_t inner = 1, nout = out->size;
    for (int k = a + 1; k < x->ndim; k++) inner *= x->shape[k];
    bool rec = nb_grad_enabled() && x->requires_grad;
    /* Flat positions of the maxima, kept for the backward pass only. */
    size_t pos_bytes = (size_t)nout * sizeof(int64_t);
    int64_t *pos = !rec ? NULL : nb__on_gpu(x) ? nb__arena_alloc_gpu(pos_bytes) : nb_arena_alloc(pos_bytes);
    const float *px = x->data;
    float *po = out->data;
    if (nb__on_gpu(x)) {
        if (nout) nb__gpu_max_mid(po, pos, px, nout / inner, A, inner);
    } else if (inner == 1) {
        NB_PARALLEL_FOR(x->size, for (int64_t o = 0; o < nout; o++) {
            int64_t arg = row_argmax(px + o * A, A);
            po[o] = px[o * A + arg];
            if (rec) pos[o] = o * A + arg;
        });
    } else {
        /* Walk the A rows of each [A, inner] block in memory order, keeping a
         * running best per column: contiguous and vectorizable. */
        int64_t outer = inner ? nout / inner : 0;
        NB_PARALLEL_FOR(x->size, for (int64_t o = 0; o < outer; o++) {
            const float *blk = px + o * A * inner;
            float *best = po + o * inner;
            int64_t *arg = rec ? pos + o * inner : NULL;
            for (int64_t j = 0; j < inner; j++) best[j] = blk[j];
            if (rec)
                for (int64_t j = 0; j < inner; j++) arg[j] = o * A * inner + j;
            for (int64_t r = 1; r < A; r++) {
                const float *row = blk + r * inner;
                for (int64_t j = 0; j < inner; j++)
                    if (beats(row[j], best[j])) {
                        best[j] = row[j];
                        if (rec) arg[j] = (o * A + r) * inner + j;
                    }
            }
        });
    }
    nb_node *n = rec ? nb__record(&op_max, out, &x, 1) : NULL;
    if (n) n->aux = pos;
    return out;
}

void nb_argmax_rows(const nb_tensor *x, int32_t *out) {
    int64_t cols = x->ndim ? x->shape[x->ndim - 1] : 1;
    if (cols == 0) {
        char s[96];
        nb_fatal("argmax_rows", "rows of a tensor of shape %s are empty", nb_shape_str(x, s, sizeof s));
    }
    if (cols > INT32_MAX) nb_fatal("argmax_rows", "rows of %lld entries do not fit int32 indices", (long long)cols);
    int64_t rows = x->size / cols;
    /* GPU rows (a batch's logits, to score predictions) come to the host,
     * into the step's arena as the rest of the step's scratch. */
    const float *px = x->data;
    if (nb__on_gpu(x)) {
        float *host = nb_arena_alloc(sizeof(float) * (size_t)x->size);
        nb_tensor_read(x, host);
        px = host;
    }
    NB_PARALLEL_FOR(x->size, for (int64_t r = 0; r < rows; r++) { out[r] = (int32_t)row_argmax(px + r * cols, cols); });
}
