/* elementwise.c — add/sub/mul/div with NumPy broadcasting, scalar forms, and
 * the unary math functions, each forward next to its backward. */
#include "../core/internal.h"
#include "../core/vmath.h"
#include <math.h>

/* --- broadcasting kernel ------------------------------------------------- */

typedef enum { ADD, SUB, MUL, DIV } binop;

/* Element strides of x in an output of nd dims (0 along broadcast dims). */
static void bstrides(const nb_tensor *x, int nd, const int64_t *oshape, int64_t *st) {
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        int kx = k - (nd - x->ndim);
        int64_t d = kx >= 0 ? x->shape[kx] : 1;
        st[k] = (d == 1 && oshape[k] != 1) ? 0 : s;
        s *= d;
    }
}

#define BINARY_LOOP(OP, EXPR) \
    NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) { float a = pa[ia(i)], b = pb[ib(i)]; po[i] = (EXPR); })

static void binary_kernel(binop op, const nb_tensor *A, const nb_tensor *B, nb_tensor *O) {
    const float *pa = A->data, *pb = B->data;
    float *po = O->data;
    int64_t n = O->size;
    /* An empty output ([0, 3] + [3]) has nothing to compute, and the general
     * case below would divide by its zero-length inner run. */
    if (n == 0) return;
    if (A->size == n && B->size == n) {
#define ia(i) (i)
#define ib(i) (i)
        switch (op) {
        case ADD: BINARY_LOOP(ADD, a + b); break;
        case SUB: BINARY_LOOP(SUB, a - b); break;
        case MUL: BINARY_LOOP(MUL, a * b); break;
        case DIV: BINARY_LOOP(DIV, a / b); break;
        }
#undef ib
        return;
    }
    if (A->size == n && B->size == 1) {
#define ib(i) 0
        switch (op) {
        case ADD: BINARY_LOOP(ADD, a + b); break;
        case SUB: BINARY_LOOP(SUB, a - b); break;
        case MUL: BINARY_LOOP(MUL, a * b); break;
        case DIV: BINARY_LOOP(DIV, a / b); break;
        }
#undef ib
#undef ia
        return;
    }
    /* General case. Neighbouring dims that both inputs walk alike (each
     * contiguous across the pair, or broadcast along both) merge into one,
     * so [128,16,28,28] + [16,1,1] is 2048 runs of 784 against one value.
     * The output is walked by an index over all but the last merged dim,
     * which runs as an inner loop specialised for unit and zero strides. */
    int nd = O->ndim;
    int64_t sa[NB_MAXDIM], sb[NB_MAXDIM], d[NB_MAXDIM], ma[NB_MAXDIM], mb[NB_MAXDIM];
    bstrides(A, nd, O->shape, sa);
    bstrides(B, nd, O->shape, sb);
    int m = 0; /* merged dims, innermost first */
    for (int k = nd - 1; k >= 0; k--) {
        if (O->shape[k] == 1) continue;
        if (m && sa[k] == ma[m - 1] * d[m - 1] && sb[k] == mb[m - 1] * d[m - 1]) {
            d[m - 1] *= O->shape[k];
        } else {
            d[m] = O->shape[k];
            ma[m] = sa[k];
            mb[m] = sb[k];
            m++;
        }
    }
    if (m == 0) d[m] = 1, ma[m] = mb[m] = 0, m = 1;
    int64_t inner = d[0], outer = n / inner, ai = ma[0], bi = mb[0];
#define INNER(EXPR)                                                                             \
    do {                                                                                        \
        if (ai == 1 && bi == 1)                                                                 \
            for (int64_t j = 0; j < inner; j++) { float a = x[j], b = y[j]; o[j] = (EXPR); }    \
        else if (ai == 1 && bi == 0) {                                                          \
            const float b = y[0];                                                               \
            for (int64_t j = 0; j < inner; j++) { float a = x[j]; o[j] = (EXPR); }              \
        } else if (ai == 0 && bi == 1) {                                                        \
            const float a = x[0];                                                               \
            for (int64_t j = 0; j < inner; j++) { float b = y[j]; o[j] = (EXPR); }              \
        } else                                                                                  \
            for (int64_t j = 0; j < inner; j++) { float a = x[j * ai], b = y[j * bi]; o[j] = (EXPR); } \
    } while (0)
    NB_PARALLEL_FOR(n, for (int64_t r = 0; r < outer; r++) {
        int64_t oa = 0, ob = 0, rem = r;
        for (int k = 1; k < m; k++) {
            int64_t idx = rem % d[k];
            rem /= d[k];
            oa += idx * ma[k];
            ob += idx * mb[k];
        }
        float *restrict o = po + r * inner;
        const float *x = pa + oa, *y = pb + ob;
        switch (op) {
        case ADD: INNER(a + b); break;
        case SUB: INNER(a - b); break;
        case MUL: INNER(a * b); break;
        case DIV: INNER(a / b); break;
        }
    });
#undef INNER
}

/* The GPU's broadcasting kernel takes the plain strides (0 along broadcast
 * dims); a scalar result is one dim of one element. */
static void gpu_binary(binop op, const nb_tensor *A, const nb_tensor *B, nb_tensor *O) {
    static const nb_gpu_binop ops[] = {[ADD] = NB_GPU_ADD, [SUB] = NB_GPU_SUB, [MUL] = NB_GPU_MUL, [DIV] = NB_GPU_DIV};
    int64_t sa[NB_MAXDIM] = {0}, sb[NB_MAXDIM] = {0}, one = 1;
    int nd = O->ndim;
    bstrides(A, nd, O->shape, sa);
    bstrides(B, nd, O->shape, sb);
    if (O->size) nb__gpu_binary(ops[op], O->data, A->data, B->data, nd ? nd : 1, nd ? O->shape : &one, sa, sb);
}

static nb_tensor *binary(const nb_op *opd, binop op, nb_tensor *a, nb_tensor *b) {
    int64_t shape[NB_MAXDIM];
    int nd = nb__broadcast_shape(opd->name, a, b, shape);
    nb_device dev = NB_DEVICE(opd->name, a, b);
    nb_tensor *out = nb__new_on(dev, nd, shape);
    if (dev == NB_CUDA) gpu_binary(op, a, b, out);
    else binary_kernel(op, a, b, out);
    nb__record(opd, out, (nb_tensor *[]){a, b}, 2);
    return out;
}

/* Gradients of broadcast inputs are summed back to the input's shape. */
static void accum_to(nb_tensor *x, nb_tensor *g) {
    if (!x->requires_grad) return;
    nb__accum(x, nb_same_shape(x, g) ? g : nb_sum_to(g, x->ndim, x->shape));
}

/* The gradient of node n's input x when dL/d(out) is uniform, g0 * sign in
 * every element: still uniform, g0 * sign times the number of outputs each
 * element of x fed (out->size / x->size under broadcasting). */
static void accum_to_uniform(nb_tensor *x, const nb_node *n, float g0, float sign) {
    if (!x->requires_grad) return;
    double fan = x->size ? (double)n->out->size / (double)x->size : 0.0;
    nb__accum_uniform(x, nb_scalar((float)((double)g0 * sign * fan)));
}

/* x's gradient g * b (or g / b), b of x's shape, g the incoming gradient,
 * whole or (gu) a uniform stand-in: computed and added into x's .grad in one
 * pass when nb_backward allows it (nb__direct_grad), which saves writing the
 * product and reading it back; otherwise by the ops, so the rule stays
 * differentiable (a stand-in never arrives while gradients are recorded). */
static void accum_product(nb_tensor *x, nb_tensor *g, bool gu, nb_tensor *b, bool divide) {
    if (!x->requires_grad) return;
    float *restrict dst = nb_same_shape(x, b) && (gu || nb_same_shape(x, g)) ? nb__direct_grad(x) : NULL;
    if (!dst) {
        accum_to(x, divide ? nb_div(g, b) : nb_mul(g, b));
        return;
    }
    const float *pg = g->data, *pb = b->data, g0 = pg[0];
    int64_t n = x->size;
    /* GCC unswitches gu and divide: four vector loops */
    NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) {
        float gi = gu ? g0 : pg[i];
        dst[i] += divide ? gi / pb[i] : gi * pb[i];
    });
}

/* out = a + b;  da = g, db = g */
static void add_bw(nb_node *n, nb_tensor *g) {
    if (nb__uniform(n, g)) {
        accum_to_uniform(n->in[0], n, g->data[0], 1.f);
        accum_to_uniform(n->in[1], n, g->data[0], 1.f);
        return;
    }
    accum_to(n->in[0], g);
    accum_to(n->in[1], g);
}
static const nb_op op_add = {"add", add_bw, .uniform = true};
nb_tensor *nb_add(nb_tensor *a, nb_tensor *b) { return binary(&op_add, ADD, a, b); }

/* out = a - b;  da = g, db = -g */
static void sub_bw(nb_node *n, nb_tensor *g) {
    if (nb__uniform(n, g)) {
        accum_to_uniform(n->in[0], n, g->data[0], 1.f);
        accum_to_uniform(n->in[1], n, g->data[0], -1.f);
        return;
    }
    accum_to(n->in[0], g);
    if (n->in[1]->requires_grad) accum_to(n->in[1], nb_neg(g));
}
static const nb_op op_sub = {"sub", sub_bw, .uniform = true};
nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b) { return binary(&op_sub, SUB, a, b); }

/* out = a * b;  da = g b, db = g a */
static void mul_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *a = n->in[0], *b = n->in[1];
    bool gu = nb__uniform(n, g);
    if (gu && !(nb_same_shape(a, n->out) && nb_same_shape(b, n->out))) g = nb__whole(n->out, g), gu = false;
    accum_product(a, g, gu, b, false);
    accum_product(b, g, gu, a, false);
}
static const nb_op op_mul = {"mul", mul_bw, .uniform = true};
nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b) { return binary(&op_mul, MUL, a, b); }

/* out = a / b;  da = g / b, db = -g a / b^2 = -(g / b) * out */
static void div_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *a = n->in[0], *b = n->in[1];
    nb_tensor *gb = nb_div(g, b);
    if (a->requires_grad) accum_to(a, gb);
    if (b->requires_grad) accum_to(b, nb_neg(nb_mul(gb, nb_div(a, b))));
}
static const nb_op op_div = {"div", div_bw};
nb_tensor *nb_div(nb_tensor *a, nb_tensor *b) { return binary(&op_div, DIV, a, b); }

/* --- unary --------------------------------------------------------------- */

/* Runs y = EXPR(x) over all elements into a new tensor; on the GPU, the
 * backend's map GPU_OP with parameter GPU_P. */
#define UNARY_MAP(x, GPU_OP, GPU_P, EXPR)                   \
    nb_tensor *out = nb_empty_like(x);                      \
    if (nb__on_gpu(x)) {                                    \
        nb__gpu_unary(GPU_OP, out->data, (x)->data, (x)->size, GPU_P); \
    } else {                                                \
        const float *px = (x)->data;                        \
        float *po = out->data;                              \
        int64_t n = (x)->size;                              \
        NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) { float v = px[i]; po[i] = (EXPR); }); \
    }

/* out = x + c;  dx = g */
static void add_scalar_bw(nb_node *n, nb_tensor *g) {
    if (nb__uniform(n, g)) nb__accum_uniform(n->in[0], g);
    else nb__accum(n->in[0], g);
}
static const nb_op op_add_scalar = {"add_scalar", add_scalar_bw, .uniform = true};
nb_tensor *nb_add_scalar(nb_tensor *x, float c) {
    UNARY_MAP(x, NB_GPU_SHIFT, c, v + c);
    nb__record(&op_add_scalar, out, &x, 1);
    return out;
}

/* out = c x;  dx = c g */
static void mul_scalar_bw(nb_node *n, nb_tensor *g) {
    if (nb__uniform(n, g)) nb__accum_uniform(n->in[0], nb_scalar(g->data[0] * n->f[0]));
    else nb__accum(n->in[0], nb_mul_scalar(g, n->f[0]));
}
static const nb_op op_mul_scalar = {"mul_scalar", mul_scalar_bw, .uniform = true};
nb_tensor *nb_mul_scalar(nb_tensor *x, float c) {
    UNARY_MAP(x, NB_GPU_SCALE, c, v * c);
    nb_node *n = nb__record(&op_mul_scalar, out, &x, 1);
    if (n) n->f[0] = c;
    return out;
}

nb_tensor *nb_neg(nb_tensor *x) { return nb_mul_scalar(x, -1.f); }

/* out = e^x;  dx = g out */
static void exp_bw(nb_node *n, nb_tensor *g) { accum_product(n->in[0], g, nb__uniform(n, g), n->out, false); }
static const nb_op op_exp = {"exp", exp_bw, .uniform = true};
nb_tensor *nb_exp(nb_tensor *x) {
    UNARY_MAP(x, NB_GPU_EXP, 0.f, nb__vexpf(v)); /* vectorizes; within 2e-7 of expf */
    nb__record(&op_exp, out, &x, 1);
    return out;
}

/* out = log x;  dx = g / x */
static void log_bw(nb_node *n, nb_tensor *g) { accum_product(n->in[0], g, nb__uniform(n, g), n->in[0], true); }
static const nb_op op_log = {"log", log_bw, .uniform = true};
nb_tensor *nb_log(nb_tensor *x) {
    UNARY_MAP(x, NB_GPU_LOG, 0.f, nb__vlogf(v)); /* vectorizes; within 1e-7 relative of logf */
    nb__record(&op_log, out, &x, 1);
    return out;
}

/* out = sqrt x;  dx = g / (2 out) */
static void sqrt_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], nb_div(nb_mul_scalar(g, 0.5f), n->out)); }
static const nb_op op_sqrt = {"sqrt", sqrt_bw};
nb_tensor *nb_sqrt(nb_tensor *x) {
    UNARY_MAP(x, NB_GPU_SQRT, 0.f, sqrtf(v));
    nb__record(&op_sqrt, out, &x, 1);
    return out;
}

/* out = x^p;  dx = g p x^(p-1) */
static void pow_bw(nb_node *n, nb_tensor *g) {
    float p = n->f[0];
    nb_tensor *x = n->in[0];
    /* x^0 = 1 is constant: its derivative is 0 everywhere, x = 0 included,
     * as PyTorch's pow_backward (0 * 0^-1 would give NaN at x = 0). */
    if (p == 0.f) return;
    /* p = 1 and 2 avoid x^(p-1) altogether, so higher derivatives at x = 0
     * stay finite (0 * 0^-1 would be NaN). */
    nb_tensor *d = p == 1.f ? NULL : p == 2.f ? nb_mul_scalar(x, 2.f) : nb_mul_scalar(nb_pow(x, p - 1.f), p);
    nb__accum(x, d ? nb_mul(g, d) : g);
}
static const nb_op op_pow = {"pow", pow_bw};
nb_tensor *nb_pow(nb_tensor *x, float p) {
    UNARY_MAP(x, p == 2.f ? NB_GPU_SQUARE : p == 1.f ? NB_GPU_SCALE : NB_GPU_POW, p == 1.f ? 1.f : p,
              p == 2.f ? v * v : p == 1.f ? v : powf(v, p));
    nb_node *n = nb__record(&op_pow, out, &x, 1);
    if (n) n->f[0] = p;
    return out;
}

nb_tensor *nb_square(nb_tensor *x) { return nb_pow(x, 2.f); }

/* out = |x|;  dx = g sign(x) (0 at 0, as PyTorch) */
static void abs_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], nb_mul(g, nb_sign(n->in[0]))); }
static const nb_op op_abs = {"abs", abs_bw};
nb_tensor *nb_abs(nb_tensor *x) {
    UNARY_MAP(x, NB_GPU_ABS, 0.f, fabsf(v));
    nb__record(&op_abs, out, &x, 1);
    return out;
}

/* Piecewise-constant functions: their derivative is zero almost everywhere,
 * so they record nothing. Backward rules use them as masks. The sign of a
 * NaN is NaN, as torch.sign and np.sign give it: |x|'s gradient at a NaN is
 * then NaN, as PyTorch's, rather than a 0 that hides where it came from. */
nb_tensor *nb_sign(nb_tensor *x) {
    UNARY_MAP(x, NB_GPU_SIGN, 0.f, isnan(v) ? v : (float)((v > 0.f) - (v < 0.f)));
    return out;
}

nb_tensor *nb_step(nb_tensor *x, float lo, float hi) {
    if (nb__on_gpu(x)) { /* two parameters: a kernel of its own, not a unary map */
        nb_tensor *out = nb_empty_like(x);
        nb__gpu_step(out->data, x->data, x->size, lo, hi);
        return out;
    }
    nb_tensor *out = nb_empty_like(x);
    const float *px = x->data;
    float *po = out->data;
    int64_t n = x->size;
    NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) { po[i] = px[i] > 0.f ? hi : lo; });
    return out;
}
