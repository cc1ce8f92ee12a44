/* pool.c — max and average pooling over k x k windows of NCHW images, each
 * with the small op pair its backward needs: scatter/gather by the argmax
 * indices for max pooling, the window-spreading adjoint for average pooling. */
#include "../core/internal.h"
#include <math.h>

/* x [N, C, H, W] -> y [N, C, OH, OW]; planes = N*C images pooled alike.
 * Window (oh, ow) covers rows oh*s - p .. oh*s - p + k - 1 (and likewise
 * columns) of x, the padding being outside [0, H) x [0, W). */
typedef struct { int64_t planes, H, W, OH, OW, k, s, p; } pgeom;

static pgeom pool_geom(const char *op, const nb_tensor *x, int k, int s, int p) {
    char buf[96];
    if (x->ndim != 4) nb_fatal(op, "input must be [N, C, H, W], got %s", nb_shape_str(x, buf, sizeof buf));
    if (k <= 0 || s < 0) nb_fatal(op, "window %d and stride %d must be positive", k, s);
    if (!s) s = k;
    /* As in PyTorch: at most half a window of padding, so that every window
     * holds at least one element of x. */
    if (p < 0 || 2 * p > k) nb_fatal(op, "padding %d must be in [0, window/2 = %d]", p, k / 2);
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

/* --- scatter / gather by argmax indices ------------------------------------ */

/* Both keep an index inside its own image plane, so a loop over planes runs
 * in parallel without two threads adding to one element. */

static nb_tensor *pool_gather(nb_tensor *u, const int64_t *idx, const int64_t *shape);

/* out (shape, zeros) [idx[i]] += g[i]: the adjoint of gather. g [N, C, OH, OW]
 * -> out [N, C, H, W]. With V = dL/dout: dg = gather(V, idx). */
static void scatter_bw(nb_node *n, nb_tensor *v) { nb__accum(n->in[0], pool_gather(v, n->aux, n->in[0]->shape)); }
static const nb_op op_scatter = {"maxpool_scatter", scatter_bw};

static nb_tensor *pool_scatter(nb_tensor *g, const int64_t *idx, const int64_t *shape) {
    nb_tensor *out = nb_zeros(4, shape);
    int64_t planes = shape[0] * shape[1], per = g->size / (planes ? planes : 1);
    const float *pg = g->data;
    float *po = out->data;
    NB_OMP_FOR(g->size)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t i = pl * per; i < (pl + 1) * per; i++) po[idx[i]] += pg[i];
    nb_node *n = nb__record(&op_scatter, out, &g, 1);
    if (n) n->aux = (void *)idx;
    return out;
}

/* out[i] = u[idx[i]], u [N, C, H, W] -> out (shape) [N, C, OH, OW]. With
 * G = dL/dout: du = scatter(G, idx). */
static void gather_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], pool_scatter(g, n->aux, n->in[0]->shape)); }
static const nb_op op_gather = {"maxpool_gather", gather_bw};

static nb_tensor *pool_gather(nb_tensor *u, const int64_t *idx, const int64_t *shape) {
    nb_tensor *out = nb__new(4, shape);
    const float *pu = u->data;
    float *po = out->data;
    int64_t n = out->size;
    NB_OMP_FOR(n)
    for (int64_t i = 0; i < n; i++) po[i] = pu[idx[i]];
    nb_node *nd = nb__record(&op_gather, out, &u, 1);
    if (nd) nd->aux = (void *)idx;
    return out;
}

/* --- max pooling ------------------------------------------------------------ */

/* y = max over each window of x (padding counts as -inf; a NaN wins, as in
 * PyTorch). aux holds, for every y element, the flat index in x of the first
 * maximal element. dx = scatter(G, argmax). */
static void maxpool_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], pool_scatter(g, n->aux, n->in[0]->shape)); }
static const nb_op op_maxpool = {"maxpool2d", maxpool_bw};

nb_tensor *nb_maxpool2d(nb_tensor *x, int k, int s, int p) {
    pgeom g = pool_geom("maxpool2d", x, k, s, p);
    nb_tensor *y = nb__new(4, (int64_t[]){x->shape[0], x->shape[1], g.OH, g.OW});
    nb_node *n = nb__record(&op_maxpool, y, &x, 1);
    /* Indices are kept only when a backward pass can need them. */
    int64_t *idx = n ? nb_arena_alloc(sizeof(int64_t) * (size_t)(y->size ? y->size : 1)) : NULL;
    const float *px = x->data;
    float *py = y->data;
    NB_OMP_FOR(x->size)
    for (int64_t pl = 0; pl < g.planes; pl++) {
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
    }
    if (n) {
        store_geom(n, &g);
        n->aux = idx;
    }
    return y;
}

/* --- average pooling -------------------------------------------------------- */

static nb_tensor *avgpool_adjoint(nb_tensor *g, const pgeom *pg, const int64_t *xshape);

/* y = (1/k^2) * sum over each window of x, padding counted as zeros
 * (PyTorch's default count_include_pad; every window lies inside the padded
 * input, so the divisor is always k^2). y is linear in x:
 * dx = A^T G, the adjoint that spreads G/k^2 back over each window. */
static void avgpool_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0];
    pgeom pg = pool_geom("avgpool2d", x, (int)n->i[0], (int)n->i[1], (int)n->i[2]);
    nb__accum(x, avgpool_adjoint(g, &pg, x->shape));
}
static const nb_op op_avgpool = {"avgpool2d", avgpool_bw};

nb_tensor *nb_avgpool2d(nb_tensor *x, int k, int s, int p) {
    pgeom g = pool_geom("avgpool2d", x, k, s, p);
    nb_tensor *y = nb__new(4, (int64_t[]){x->shape[0], x->shape[1], g.OH, g.OW});
    const float *px = x->data;
    float *py = y->data;
    float scale = 1.f / (float)(g.k * g.k);
    NB_OMP_FOR(x->size)
    for (int64_t pl = 0; pl < g.planes; pl++) {
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
    nb_tensor *gx = nb_zeros(4, xshape);
    const float *pgd = g->data;
    float *px = gx->data;
    float scale = 1.f / (float)(pg->k * pg->k);
    NB_OMP_FOR(gx->size)
    for (int64_t pl = 0; pl < pg->planes; pl++) {
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
    }
    nb_node *n = nb__record(&op_avgpool_adjoint, gx, &g, 1);
    if (n) store_geom(n, pg);
    return gx;
}
