/* activation.c — the ReLU family of eq. 20, sigmoid, tanh, softmax and
 * log-softmax: vectorizable forward kernels, each next to a backward rule
 * written with nb_* ops so that it can be differentiated again. */
#include "../core/internal.h"
#include "../core/vmath.h"
#include <math.h>

/* Runs y = EXPR(v) over all elements of x into a new tensor, on OpenMP
 * threads above NB_PAR_MIN and as SIMD inside each thread; on the GPU, the
 * backend's map GPU_OP with parameter GPU_P. */
#define ACT_MAP(x, GPU_OP, GPU_P, EXPR)                                    \
    nb_tensor *out = nb_empty_like(x);                                     \
    if (nb__on_gpu(x)) nb__gpu_unary(GPU_OP, out->data, (x)->data, (x)->size, GPU_P); \
    else {                                                                 \
        const float *restrict px = (x)->data;                              \
        float *restrict po = out->data;                                    \
        int64_t n_ = (x)->size;                                            \
        NB_PARALLEL_FOR(n_, for (int64_t i = 0; i < n_; i++) {             \
            float v = px[i];                                               \
            po[i] = (EXPR);                                                \
        });                                                                \
    }

/* --- eq. 20: h = max(0, z) + a min(0, z) ---------------------------------
 * ReLU is a = 0, leaky ReLU a small fixed a, absolute value rectification
 * a = -1 and PReLU a learned a. The derivative is 1 for z > 0 and a for
 * z < 0; at z = 0 we take the left branch as PyTorch does (relu'(0) = 0,
 * leaky'(0) = a), except |z| whose subgradient at 0 is 0 like nb_abs. The
 * comparisons are written "v < 0 ? ... : v" so that NaN passes through. */

/* eq. 20 for one element (NaN passes through). */
static inline float nb__rect(float v, float a) { return nb__sel(v < 0.f, a * v, v); }

/* The gradient of the fixed-slope rectifiers as one op: out = g * (x > 0 ?
 * 1 : a), one pass and no mask tensor (the training hot path). It is linear
 * in g and piecewise constant in x, so its own backward is itself applied to
 * the incoming gradient, and x gets none. */
static nb_tensor *rect_grad(nb_tensor *g, bool gu, nb_tensor *x, float a);
static void rect_grad_bw(nb_node *n, nb_tensor *gg) {
    nb__accum(n->in[0], rect_grad(gg, nb__uniform(n, gg), n->in[1], n->f[0]));
}
static const nb_op op_rect_grad = {"rect_grad", rect_grad_bw, .uniform = true};
/* o = g (x > 0 ? 1 : a), added to o when add; gu: g is uniform, its one
 * value g[0] (a blend, so it vectorizes; GCC unswitches the invariant add
 * and gu). */
static void rect_grad_kernel(float *restrict o, const float *restrict pg, bool gu, const float *restrict px, int64_t n,
                             float a, bool add) {
    const float g0 = pg[0];
    NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) {
        float d = (gu ? g0 : pg[i]) * nb__sel(px[i] > 0.f, 1.f, a);
        o[i] = add ? o[i] + d : d;
    });
}

static nb_tensor *rect_grad(nb_tensor *g, bool gu, nb_tensor *x, float a) {
    if (!gu && !nb_same_shape(g, x)) nb__shape_fatal("rect_grad", g, x, "gradient and input differ");
    nb_tensor *out = nb_empty_like(x);
    if (NB_DEVICE("rect_grad", g, x) == NB_CUDA) nb__gpu_rect_grad(out->data, g->data, x->data, x->size, a);
    else rect_grad_kernel(out->data, g->data, gu, x->data, x->size, a, false);
    nb_node *nd = nb__record(&op_rect_grad, out, (nb_tensor *[]){g, x}, 2);
    if (nd) nd->f[0] = a;
    return out;
}

/* dx = rect_grad(g, x, a), added into x's .grad in the same pass when
 * nb_backward allows it (nb__direct_grad): no tensor written and read back. */
static void accum_rect_grad(nb_tensor *x, nb_tensor *g, bool gu, float a) {
    float *restrict dst = nb__direct_grad(x);
    if (dst) rect_grad_kernel(dst, g->data, gu, x->data, x->size, a, true);
    else nb__accum(x, rect_grad(g, gu, x, a));
}

/* out = max(0, x);  dx = g step(x) */
static void relu_bw(nb_node *n, nb_tensor *g) { accum_rect_grad(n->in[0], g, nb__uniform(n, g), 0.f); }
static const nb_op op_relu = {"relu", relu_bw, .uniform = true};
nb_tensor *nb_relu(nb_tensor *x) {
    ACT_MAP(x, NB_GPU_RECT, 0.f, v < 0.f ? 0.f : v);
    nb__record(&op_relu, out, &x, 1);
    return out;
}

/* out = max(0, x) + a min(0, x) (eq. 20, fixed a);  dx = g (x > 0 ? 1 : a) */
static void leaky_bw(nb_node *n, nb_tensor *g) { accum_rect_grad(n->in[0], g, nb__uniform(n, g), n->f[0]); }
static const nb_op op_leaky = {"leaky_relu", leaky_bw, .uniform = true};
nb_tensor *nb_leaky_relu(nb_tensor *x, float slope) {
    ACT_MAP(x, NB_GPU_RECT, slope, nb__rect(v, slope));
    nb_node *n = nb__record(&op_leaky, out, &x, 1);
    if (n) n->f[0] = slope;
    return out;
}

/* out = max(0, x) - min(0, x) = |x| (eq. 20 with a = -1);  dx = g sign(x) */
static void abs_rect_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], nb_mul(g, nb_sign(n->in[0]))); }
static const nb_op op_abs_rect = {"abs_rect", abs_rect_bw};
nb_tensor *nb_abs_rect(nb_tensor *x) {
    ACT_MAP(x, NB_GPU_ABS, 0.f, fabsf(v)); /* = max(0, v) - min(0, v), with |-0| = +0 like nb_abs */
    nb__record(&op_abs_rect, out, &x, 1);
    return out;
}

/* The slope of PReLU viewed so that it broadcasts against x: a scalar when it
 * has one entry, else [C, 1, ..., 1] with x's ndim - 1 dims (channel axis 1). */
static nb_tensor *prelu_view(nb_tensor *x, nb_tensor *slope) {
    if (slope->size == 1) return nb_reshape(slope, 0, NULL);
    int64_t s[NB_MAXDIM];
    s[0] = slope->size;
    for (int k = 1; k < x->ndim - 1; k++) s[k] = 1;
    return nb_reshape(slope, x->ndim - 1, s);
}

/* x: [N, C, ...], slope: [1] or [C].  out = max(0, x) + a_c min(0, x) (eq. 20
 * with a learned a).  dx = g (x > 0 ? 1 : a_c);
 * da_c = sum over all but axis 1 of g min(0, x). Both are products of
 * differentiable ops, so d^2/dx da (not zero) reaches the Hessian. */
static void prelu_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0], *slope = n->in[1];
    nb_tensor *neg = nb_step(x, 1.f, 0.f); /* 1 where the a-branch was taken */
    nb_tensor *a = prelu_view(x, slope);
    if (x->requires_grad) nb__accum(x, nb_mul(g, nb_add(nb_step(x, 0.f, 1.f), nb_mul(neg, a))));
    if (slope->requires_grad) {
        nb_tensor *ga = nb_sum_to(nb_mul(g, nb_mul(x, neg)), a->ndim, a->shape);
        nb__accum(slope, nb_reshape(ga, slope->ndim, slope->shape));
    }
}
static const nb_op op_prelu = {"prelu", prelu_bw};

nb_tensor *nb_prelu(nb_tensor *x, nb_tensor *slope) {
    int64_t C = x->ndim >= 2 ? x->shape[1] : 1;
    nb_device dev = NB_DEVICE("prelu", x, slope);
    if (slope->size != 1 && !(x->ndim >= 2 && slope->size == C))
        nb__shape_fatal("prelu", x, slope, "the slope needs 1 entry or one per channel (axis 1 of x)");
    nb_tensor *out = nb_empty_like(x);
    const float *restrict px = x->data, *sa = slope->data;
    float *restrict po = out->data;
    /* x as [outer, C, inner] rows that share one slope. */
    int64_t inner = 1, rows = x->ndim >= 2 ? x->shape[0] * C : 1;
    for (int k = 2; k < x->ndim; k++) inner *= x->shape[k];
    if (x->ndim < 2) inner = x->size;
    bool shared = slope->size == 1;
    if (dev == NB_CUDA) {
        if (inner) nb__gpu_prelu(po, px, sa, x->size, shared ? 1 : C, inner);
        nb__record(&op_prelu, out, (nb_tensor *[]){x, slope}, 2);
        return out;
    }
    NB_PARALLEL_FOR(x->size, for (int64_t r = 0; r < rows; r++) {
        float a = sa[shared ? 0 : r % C];
        const float *xr = px + r * inner;
        float *yr = po + r * inner;
        for (int64_t j = 0; j < inner; j++) yr[j] = nb__rect(xr[j], a);
    });
    nb__record(&op_prelu, out, (nb_tensor *[]){x, slope}, 2);
    return out;
}

/* --- sigmoid and tanh ---------------------------------------------------- */

/* Their gradients as ops of one pass each, from the output y:
 *   sigmoid_grad(y, g) = g y (1 - y),   tanh_grad(y, g) = g (1 - y^2).
 * Their own backward, with U = dL/d(out), is made of nb_* ops:
 *   sigmoid_grad: dg = sigmoid_grad(y, U),  dy = U g (1 - 2y)
 *   tanh_grad:    dg = tanh_grad(y, U),     dy = -2 U g y */
static nb_tensor *sq_grad(nb_tensor *y, nb_tensor *g, bool gu, bool is_tanh);

/* o = g y (1 - y), or g (1 - y^2) for tanh; added to o when add; gu: g is
 * uniform, its one value g[0]. (GCC unswitches the invariant conditions, and
 * each loop vectorizes.) */
static void sq_grad_kernel(float *restrict o, const float *restrict py, const float *restrict pg, bool gu, int64_t n,
                           bool is_tanh, bool add) {
    const float g0 = pg[0];
    NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) {
        float d = (gu ? g0 : pg[i]) * (is_tanh ? 1.f - py[i] * py[i] : py[i] * (1.f - py[i]));
        o[i] = add ? o[i] + d : d;
    });
}

static void sq_grad_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *y = n->in[0], *g = n->in[1];
    bool is_tanh = n->i[0];
    if (g->requires_grad) nb__accum(g, sq_grad(y, u, false, is_tanh));
    if (y->requires_grad)
        nb__accum(y, is_tanh ? nb_mul_scalar(nb_mul(nb_mul(u, g), y), -2.f)
                             : nb_mul(nb_mul(u, g), nb_add_scalar(nb_mul_scalar(y, -2.f), 1.f)));
}
static const nb_op op_sigmoid_grad = {"sigmoid_grad", sq_grad_bw}, op_tanh_grad = {"tanh_grad", sq_grad_bw};

static nb_tensor *sq_grad(nb_tensor *y, nb_tensor *g, bool gu, bool is_tanh) {
    if (!gu && !nb_same_shape(y, g))
        nb__shape_fatal(is_tanh ? "tanh_grad" : "sigmoid_grad", y, g, "output and gradient differ");
    nb_tensor *out = nb_empty_like(y);
    if (NB_DEVICE(is_tanh ? "tanh_grad" : "sigmoid_grad", y, g) == NB_CUDA)
        nb__gpu_sq_grad(out->data, g->data, y->data, y->size, is_tanh);
    else sq_grad_kernel(out->data, y->data, g->data, gu, y->size, is_tanh, false);
    nb_node *nd = nb__record(is_tanh ? &op_tanh_grad : &op_sigmoid_grad, out, (nb_tensor *[]){y, g}, 2);
    if (nd) nd->i[0] = is_tanh;
    return out;
}

/* out = 1 / (1 + e^-x), from e = e^-|x| so that nothing overflows:
 * x >= 0: 1 / (1 + e);  x < 0: e / (1 + e).  dx = g out (1 - out) */
/* dx = sq_grad(y, g), added into x's .grad in the same pass when allowed. */
static void accum_sq_grad(nb_tensor *x, nb_tensor *y, nb_tensor *g, bool gu, bool is_tanh) {
    float *restrict dst = nb__direct_grad(x);
    if (dst) sq_grad_kernel(dst, y->data, g->data, gu, x->size, is_tanh, true);
    else nb__accum(x, sq_grad(y, g, gu, is_tanh));
}

static void sigmoid_bw(nb_node *n, nb_tensor *g) { accum_sq_grad(n->in[0], n->out, g, nb__uniform(n, g), false); }
static const nb_op op_sigmoid = {"sigmoid", sigmoid_bw, .uniform = true};
nb_tensor *nb_sigmoid(nb_tensor *x) {
    ACT_MAP(x, NB_GPU_SIGMOID, 0.f, nb__vsigmoidf(v));
    nb__record(&op_sigmoid, out, &x, 1);
    return out;
}

/* out = tanh x;  dx = g (1 - out^2) */
static void tanh_bw(nb_node *n, nb_tensor *g) { accum_sq_grad(n->in[0], n->out, g, nb__uniform(n, g), true); }
static const nb_op op_tanh = {"tanh", tanh_bw, .uniform = true};
nb_tensor *nb_tanh(nb_tensor *x) {
    ACT_MAP(x, NB_GPU_TANH, 0.f, nb__vtanhf(v));
    nb__record(&op_tanh, out, &x, 1);
    return out;
}

/* --- softmax and log-softmax over one axis ------------------------------- */

/* x viewed as [outer, C, inner] around the axis. */
typedef struct { int64_t outer, C, inner; } lines;
static lines split_axis(const nb_tensor *x, int a) {
    lines l = {1, x->shape[a], 1};
    for (int k = 0; k < a; k++) l.outer *= x->shape[k];
    for (int k = a + 1; k < x->ndim; k++) l.inner *= x->shape[k];
    return l;
}

/* Max-subtracted softmax (want_log false) or log-softmax (true) of every
 * line along the axis:  m = max x,  s = sum e^{x - m},
 *   softmax = e^{x - m} / s,   log_softmax = x - m - log s.
 * Subtracting m makes every exponent <= 0, so nothing overflows even for
 * logits of 1e4, and s >= 1, so the log never sees 0. */
static void softmax_kernel(const nb_tensor *x, nb_tensor *out, lines l, bool want_log) {
    if (nb__on_gpu(x)) {
        nb__gpu_softmax(out->data, x->data, l.outer, l.C, l.inner, want_log);
        return;
    }
    const float *px = x->data;
    float *po = out->data;
    int64_t C = l.C, inner = l.inner;
    if (C == 0) return;
    if (inner == 1) {
        /* The common case: the axis is the last one, lines are rows. */
        NB_PARALLEL_FOR(x->size, for (int64_t r = 0; r < l.outer; r++) {
            const float *xr = px + r * C;
            float *yr = po + r * C;
            float m = xr[0];
            /* A NaN anywhere makes the sum, hence the whole row, NaN, so
             * the max may ignore it (and be vectorized). */
            NB_PRAGMA(omp simd reduction(max : m))
            for (int64_t c = 1; c < C; c++) m = xr[c] > m ? xr[c] : m;
            /* The sum is kept in double: a float sum of thousands of terms
             * (a vocabulary) would lose digits when not vectorized. */
            double s = 0;
            if (want_log) {
                NB_PRAGMA(omp simd reduction(+ : s))
                for (int64_t c = 0; c < C; c++) s += nb__vexpf(xr[c] - m);
                /* (x - m) - log s, not x - (m + log s): m + log s would
                 * round at the scale of m and lose the small results. */
                float ls = (float)log(s);
                for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - m) - ls;
            } else {
                NB_PRAGMA(omp simd reduction(+ : s))
                for (int64_t c = 0; c < C; c++) {
                    float e = nb__vexpf(xr[c] - m);
                    yr[c] = e;
                    s += e;
                }
                float inv = (float)(1.0 / s);
                for (int64_t c = 0; c < C; c++) yr[c] *= inv;
            }
        });
        return;
    }
    /* A middle axis (channels of NCHW): lines are strided, so walk each
     * [C, inner] block row by row and keep per-position max and sum in
     * contiguous scratch, which reads memory in order. Scratch is taken
     * from the arena here, outside the threads (the arena is per thread). */
    float *mx = nb_arena_alloc(sizeof(float) * (size_t)(l.outer * inner));
    double *sm = nb_arena_alloc(sizeof(double) * (size_t)(l.outer * inner));
    NB_PARALLEL_FOR(x->size, for (int64_t o = 0; o < l.outer; o++) {
        const float *xb = px + o * C * inner;
        float *yb = po + o * C * inner, *m = mx + o * inner;
        double *s = sm + o * inner;
        for (int64_t j = 0; j < inner; j++) {
            m[j] = xb[j];
            s[j] = 0;
        }
        for (int64_t c = 1; c < C; c++)
            for (int64_t j = 0; j < inner; j++) m[j] = xb[c * inner + j] > m[j] ? xb[c * inner + j] : m[j];
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < inner; j++) {
                float e = nb__vexpf(xb[c * inner + j] - m[j]);
                if (!want_log) yb[c * inner + j] = e;
                s[j] += e;
            }
        if (want_log) {
            for (int64_t j = 0; j < inner; j++) s[j] = log(s[j]);
            for (int64_t c = 0; c < C; c++)
                for (int64_t j = 0; j < inner; j++) yb[c * inner + j] = (xb[c * inner + j] - m[j]) - (float)s[j];
        } else {
            for (int64_t j = 0; j < inner; j++) s[j] = 1.0 / s[j];
            for (int64_t c = 0; c < C; c++)
                for (int64_t j = 0; j < inner; j++) yb[c * inner + j] *= (float)s[j];
        }
    });
}

/* --- their backward, fused --------------------------------------------------
 * The vector-Jacobian products of softmax and log-softmax, one pass per line
 * instead of four ops with a temporary each:
 *   softmax_grad(y, g)     = y (g - sum(g y))      (y = softmax x)
 *   log_softmax_grad(y, g) = g - e^y sum(g)        (y = log_softmax x)
 * sums along the axis. Each is an op whose own backward is written with nb_*
 * ops, so gradients of gradients still work. With U = dL/d(out) and sums
 * along the axis:
 *   softmax_grad:     dg = softmax_grad(y, U),  dy = U (g - sum(g y)) - g sum(U y)
 *   log_softmax_grad: dg = U - sum(U e^y),      dy = -U e^y sum(g) */

static nb_tensor *sum_axis(nb_tensor *t, int axis) { return nb_sum(t, &axis, 1, true); }

static void softmax_grad_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *y = n->in[0], *g = n->in[1];
    int axis = (int)n->i[0];
    if (g->requires_grad) nb__accum(g, nb__softmax_grad(y, u, axis));
    if (y->requires_grad)
        nb__accum(y, nb_sub(nb_mul(u, nb_sub(g, sum_axis(nb_mul(g, y), axis))), nb_mul(g, sum_axis(nb_mul(u, y), axis))));
}
static const nb_op op_softmax_grad = {"softmax_grad", softmax_grad_bw};

static void log_softmax_grad_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *y = n->in[0], *g = n->in[1];
    int axis = (int)n->i[0];
    nb_tensor *e = nb_exp(y);
    if (g->requires_grad) nb__accum(g, nb_sub(u, sum_axis(nb_mul(u, e), axis)));
    if (y->requires_grad) nb__accum(y, nb_neg(nb_mul(nb_mul(u, e), sum_axis(g, axis))));
}
static const nb_op op_log_softmax_grad = {"log_softmax_grad", log_softmax_grad_bw};

/* One line of C: o = softmax_grad(y, g) (log: log_softmax_grad), added to o
 * when add; gu: g is uniform, its one value g[0]. Inlined with constant
 * flags, so that each loop is a plain one the compiler vectorizes (with the
 * flags tested inside, log-softmax's exp ran scalar: 5x slower). */
static inline __attribute__((always_inline)) void fused_grad_line(float *restrict o, const float *restrict y,
                                                                  const float *restrict g, int64_t C,
                                                                  const bool is_log, const bool gu, const bool add) {
    double s = 0; /* in double, as the forward's sum */
    const float g0 = g[0];
    if (is_log) {
        if (gu) s = (double)g0 * (double)C;
        else {
            NB_PRAGMA(omp simd reduction(+ : s))
            for (int64_t c = 0; c < C; c++) s += g[c];
        }
        const float sf = (float)s;
        for (int64_t c = 0; c < C; c++) {
            float d = (gu ? g0 : g[c]) - nb__vexpf(y[c]) * sf;
            o[c] = add ? o[c] + d : d;
        }
    } else {
        NB_PRAGMA(omp simd reduction(+ : s))
        for (int64_t c = 0; c < C; c++) s += (double)((gu ? g0 : g[c]) * y[c]);
        const float sf = (float)s;
        for (int64_t c = 0; c < C; c++) {
            float d = y[c] * ((gu ? g0 : g[c]) - sf);
            o[c] = add ? o[c] + d : d;
        }
    }
}

/* fused_grad_line over outer lines of C along the last axis. The flags are
 * tested per line, inside the parallel loop: OpenMP's outlined body would
 * otherwise get them as variables, and vectorize none of the variants. */
static void fused_grad_kernel(float *o, const float *py, const float *pg, bool gu, int64_t outer, int64_t C,
                              bool is_log, bool add) {
    NB_PARALLEL_FOR(outer * C, for (int64_t r = 0; r < outer; r++) {
        float *orow = o + r * C;
        const float *y = py + r * C, *g = gu ? pg : pg + r * C;
        if (is_log) {
            if (gu && add) fused_grad_line(orow, y, g, C, true, true, true);
            else if (gu) fused_grad_line(orow, y, g, C, true, true, false);
            else if (add) fused_grad_line(orow, y, g, C, true, false, true);
            else fused_grad_line(orow, y, g, C, true, false, false);
        } else {
            if (gu && add) fused_grad_line(orow, y, g, C, false, true, true);
            else if (gu) fused_grad_line(orow, y, g, C, false, true, false);
            else if (add) fused_grad_line(orow, y, g, C, false, false, true);
            else fused_grad_line(orow, y, g, C, false, false, false);
        }
    });
}

static nb_tensor *fused_grad(nb_tensor *y, nb_tensor *g, int axis, bool is_log) {
    if (!nb_same_shape(y, g)) nb__shape_fatal(is_log ? "log_softmax_grad" : "softmax_grad", y, g, "shapes differ");
    lines l = split_axis(y, axis);
    if (l.inner != 1) { /* a middle axis: the composite ops, which stride well */
        if (is_log) return nb_sub(g, nb_mul(nb_exp(y), sum_axis(g, axis)));
        return nb_mul(y, nb_sub(g, sum_axis(nb_mul(g, y), axis)));
    }
    nb_tensor *out = nb_empty_like(y);
    if (NB_DEVICE(is_log ? "log_softmax_grad" : "softmax_grad", y, g) == NB_CUDA)
        nb__gpu_softmax_grad(out->data, y->data, g->data, l.outer, l.C, is_log);
    else fused_grad_kernel(out->data, y->data, g->data, false, l.outer, l.C, is_log, false);
    nb_tensor *in[2] = {y, g};
    nb_node *n = nb__record(is_log ? &op_log_softmax_grad : &op_softmax_grad, out, in, 2);
    if (n) n->i[0] = axis;
    return out;
}

/* The backward of softmax (log-softmax) at node n: dx added straight into
 * x's .grad when allowed, in the same pass that computes it, and from a
 * uniform g's one value (the gradient of a sum) without spelling it out. */
static void accum_fused_grad(nb_node *n, nb_tensor *g, bool is_log) {
    nb_tensor *x = n->in[0], *y = n->out;
    int axis = (int)n->i[0];
    bool gu = nb__uniform(n, g);
    lines l = split_axis(y, axis);
    float *dst = l.inner == 1 ? nb__direct_grad(x) : NULL;
    if (dst) {
        fused_grad_kernel(dst, y->data, g->data, gu, l.outer, l.C, is_log, true);
        return;
    }
    nb__accum(x, fused_grad(y, gu ? nb__whole(y, g) : g, axis, is_log));
}

nb_tensor *nb__softmax_grad(nb_tensor *y, nb_tensor *g, int axis) { return fused_grad(y, g, axis, false); }

/* y = softmax(x) along axis;  dx = softmax_grad(y, g) */
static void softmax_bw(nb_node *n, nb_tensor *g) { accum_fused_grad(n, g, false); }
static const nb_op op_softmax = {"softmax", softmax_bw, .uniform = true};

nb_tensor *nb_softmax(nb_tensor *x, int axis) {
    int a = nb__axis("softmax", x, axis);
    nb_tensor *out = nb_empty_like(x);
    softmax_kernel(x, out, split_axis(x, a), false);
    nb_node *n = nb__record(&op_softmax, out, &x, 1);
    if (n) n->i[0] = a;
    return out;
}

/* y = log_softmax(x) along axis;  dx = log_softmax_grad(y, g) */
static void log_softmax_bw(nb_node *n, nb_tensor *g) { accum_fused_grad(n, g, true); }
static const nb_op op_log_softmax = {"log_softmax", log_softmax_bw, .uniform = true};

nb_tensor *nb_log_softmax(nb_tensor *x, int axis) {
    int a = nb__axis("log_softmax", x, axis);
    nb_tensor *out = nb_empty_like(x);
    softmax_kernel(x, out, split_axis(x, a), true);
    nb_node *n = nb__record(&op_log_softmax, out, &x, 1);
    if (n) n->i[0] = a;
    return out;
}
