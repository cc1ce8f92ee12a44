/* parity.c — nabla's side of the PyTorch parity check (bench/parity.sh).
 *
 * For every case and seed it draws the inputs from the seed, runs nabla's op
 * and writes, under OUT/<case>.s<seed>/:
 *   meta.txt        "op NAME" and the op's parameters, one "key value" a line
 *   x<i>.npy        inputs that get a gradient
 *   c<i>.npy        constants (labels, targets, indices as floats, masks)
 *   out<k>.npy      outputs
 *   R<k>.npy        random weights: the loss is sum_k sum(out_k * R_k), so
 *                   every output element's gradient is checked, never zeros
 *   g<i>.npy        d loss / d x<i>
 *   v<i>.npy        a random direction, and hv<i>.npy: H v, the Hessian of
 *                   the loss times v, by double backward (nb_hvp)
 * bench/parity_torch.py recomputes each case in float64 PyTorch from the same
 * files and compares. Cases without x<i> (optimizer steps, schedules,
 * clipping, Hessian-vector products) write values only.
 *
 * Usage: parity OUTDIR [--seeds N] [--threads T] [NAME...]
 * (NAMEs: substrings of case names; threads default to nabla's default)
 * The parameters live here only; the Python side reads them from meta.txt. */
#include "nabla.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAXX 24

typedef struct pc {
    char dir[600];
    FILE *meta;
    nb_rng rng;
    int seed, nx, nc, nout;
    nb_tensor *x[MAXX];
    bool owned[MAXX]; /* freed after the case (not a model's parameter) */
} pc;

#define SH(...) (int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

static void path(const pc *c, char *buf, size_t n, const char *fmt, int i) {
    char name[32];
    snprintf(name, sizeof name, fmt, i);
    snprintf(buf, n, "%s/%s", c->dir, name);
}

static void save(const pc *c, const char *fmt, int i, const nb_tensor *t) {
    char p[700];
    path(c, p, sizeof p, fmt, i);
    if (nb_npy_write(p, t) != 0) {
        fprintf(stderr, "parity: %s\n", nb_errmsg());
        exit(2);
    }
}

static void param(pc *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->meta, fmt, ap);
    va_end(ap);
    fputc('\n', c->meta);
}

static int dim(pc *c, int lo, int hi) { return lo + (int)nb_rng_below(&c->rng, (uint32_t)(hi - lo + 1)); }

/* Values uniform in [lo, hi); with q > 0 rounded to multiples of q, so exact
 * zeros and ties occur (ReLU at 0, max-pool ties). */
static void fill(pc *c, nb_tensor *t, float lo, float hi, float q) {
    for (int64_t i = 0; i < t->size; i++) {
        float v = lo + (hi - lo) * (float)nb_rng_uniform(&c->rng);
        t->data[i] = q > 0 ? q * roundf(v / q) : v;
    }
}

static void room(const pc *c) {
    if (c->nx == MAXX) {
        fprintf(stderr, "parity: %s: more than %d inputs (raise MAXX)\n", c->dir, MAXX);
        exit(2);
    }
}

/* An input that gets a gradient (persistent, written as x<i>.npy at the end). */
static nb_tensor *Xq(pc *c, const int64_t *shape, int nd, float lo, float hi, float q) {
    room(c);
    nb_tensor *t = nb_tensor_new(nd, shape);
    fill(c, t, lo, hi, q);
    nb_requires_grad(t, true);
    c->owned[c->nx] = true;
    c->x[c->nx++] = t;
    return t;
}
static nb_tensor *X(pc *c, const int64_t *shape, int nd, float lo, float hi) { return Xq(c, shape, nd, lo, hi, 0); }
/* An existing persistent tensor (a model's parameter) as an input. */
static nb_tensor *Xadopt(pc *c, nb_tensor *t, float lo, float hi) {
    room(c);
    fill(c, t, lo, hi, 0);
    if (!t->requires_grad) nb_requires_grad(t, true);
    c->x[c->nx++] = t;
    return t;
}

/* A constant (arena tensor, written now). */
static nb_tensor *C(pc *c, const int64_t *shape, int nd, float lo, float hi) {
    nb_tensor *t = nb_empty(nd, shape);
    fill(c, t, lo, hi, 0);
    save(c, "c%d.npy", c->nc++, t);
    return t;
}
/* n integers in [0, k), written as a float constant. */
static int32_t *CI(pc *c, int64_t n, int k) {
    int32_t *v = nb_arena_alloc((size_t)n * sizeof *v);
    nb_tensor *t = nb_empty(1, (int64_t[]){n});
    for (int64_t i = 0; i < n; i++) t->data[i] = (float)(v[i] = (int32_t)nb_rng_below(&c->rng, (uint32_t)k));
    save(c, "c%d.npy", c->nc++, t);
    return v;
}
static void Csave(pc *c, const nb_tensor *t) { save(c, "c%d.npy", c->nc++, t); }

/* Outputs: written; with inputs, the loss sum_k sum(out_k R_k) is
 * differentiated and each input's gradient written. */
static void done(pc *c, int n, nb_tensor **out) {
    nb_tensor *loss = NULL;
    for (int k = 0; k < n; k++) {
        save(c, "out%d.npy", k, out[k]);
        if (!c->nx) continue;
        nb_tensor *R = nb_empty(out[k]->ndim, out[k]->shape);
        fill(c, R, -1, 1, 0);
        save(c, "R%d.npy", k, R);
        nb_tensor *term = nb_sum_all(nb_mul(out[k], R));
        loss = loss ? nb_add(loss, term) : term;
    }
    if (!c->nx) return;
    nb_backward(loss);
    for (int i = 0; i < c->nx; i++) {
        save(c, "x%d.npy", i, c->x[i]);
        save(c, "g%d.npy", i, c->x[i]->grad);
    }
    /* the second derivative too: H v for a random v over all inputs, by
     * double backward (nabla's ops differentiate to any order) */
    nb_tensor *v[MAXX], *hv[MAXX];
    for (int i = 0; i < c->nx; i++) {
        v[i] = nb_empty(c->x[i]->ndim, c->x[i]->shape);
        fill(c, v[i], -1, 1, 0);
        save(c, "v%d.npy", i, v[i]);
    }
    nb_hvp(loss, c->x, v, c->nx, hv);
    for (int i = 0; i < c->nx; i++) save(c, "hv%d.npy", i, hv[i]);
}
static void done1(pc *c, nb_tensor *out) { done(c, 1, &out); }

/* ---- elementwise, reductions, shapes ----------------------------------- */

static void c_binary(pc *c, const char *op, nb_tensor *(*f)(nb_tensor *, nb_tensor *)) {
    int a = dim(c, 2, 5), b = dim(c, 3, 7), d = dim(c, 2, 6);
    param(c, "op %s", op);
    nb_tensor *x = X(c, SH(a, b, d), -2, 2);
    /* broadcasting: y [b, 1] against x [a, b, d] */
    nb_tensor *y = strcmp(op, "div") ? X(c, SH(b, 1), -2, 2) : X(c, SH(b, 1), 0.5, 2);
    done1(c, f(x, y));
}
static void c_add(pc *c) { c_binary(c, "add", nb_add); }
static void c_sub(pc *c) { c_binary(c, "sub", nb_sub); }
static void c_mul(pc *c) { c_binary(c, "mul", nb_mul); }
static void c_div(pc *c) { c_binary(c, "div", nb_div); }

static void c_unary(pc *c, const char *op, nb_tensor *(*f)(nb_tensor *), float lo, float hi) {
    param(c, "op %s", op);
    done1(c, f(X(c, SH(dim(c, 2, 4), dim(c, 3, 7), dim(c, 3, 9)), lo, hi)));
}
static void c_exp(pc *c) { c_unary(c, "exp", nb_exp, -3, 3); }
static void c_log(pc *c) { c_unary(c, "log", nb_log, 0.05f, 3); }
static void c_sqrt(pc *c) { c_unary(c, "sqrt", nb_sqrt, 0.05f, 3); }
static void c_abs(pc *c) { /* on a grid of 0.5: |x| at exactly 0 (derivative 0, as PyTorch) */
    param(c, "op abs");
    done1(c, nb_abs(Xq(c, SH(dim(c, 2, 4), dim(c, 3, 7), dim(c, 3, 9)), -2, 2, 0.5f)));
}
static void c_square(pc *c) { c_unary(c, "square", nb_square, -2, 2); }
static void c_neg(pc *c) { c_unary(c, "neg", nb_neg, -2, 2); }
/* seed 3: saturated, where exp(-x) overflows float32 */
static void c_sigmoid(pc *c) { c_unary(c, "sigmoid", nb_sigmoid, c->seed == 3 ? -120 : -8, c->seed == 3 ? 120 : 8); }
static void c_tanh(pc *c) { c_unary(c, "tanh", nb_tanh, c->seed == 3 ? -60 : -4, c->seed == 3 ? 60 : 4); }
static void c_scalars(pc *c) {
    param(c, "op scalars");
    nb_tensor *x = X(c, SH(dim(c, 3, 7), dim(c, 3, 7)), -2, 2);
    done1(c, nb_add_scalar(nb_mul_scalar(x, -1.75f), 0.3f));
}
static void c_pow(pc *c) {
    /* a fractional power on positive values, an integer power on both signs */
    float p = (c->seed % 2) ? 2.5f : -1.5f;
    param(c, "op pow");
    param(c, "p %.9g", (double)p);
    nb_tensor *x = X(c, SH(dim(c, 3, 6), dim(c, 3, 7)), 0.2f, 3);
    nb_tensor *y = X(c, SH(dim(c, 3, 6)), -2, 2);
    nb_tensor *outs[2] = {nb_pow(x, p), nb_pow(y, 3)};
    done(c, 2, outs);
}

static void c_sum(pc *c) {
    param(c, "op sum");
    param(c, "axes 0 2");
    param(c, "keepdim %d", c->seed % 2);
    nb_tensor *x = X(c, SH(dim(c, 2, 5), dim(c, 3, 7), dim(c, 2, 6), dim(c, 2, 4)), -2, 2);
    done1(c, nb_sum(x, (int[]){0, 2}, 2, c->seed % 2));
}
static void c_mean(pc *c) {
    param(c, "op mean");
    param(c, "axes -1 1");
    param(c, "keepdim %d", c->seed % 2);
    nb_tensor *x = X(c, SH(dim(c, 2, 5), dim(c, 3, 7), dim(c, 2, 6)), -2, 2);
    done1(c, nb_mean(x, (int[]){-1, 1}, 2, c->seed % 2));
}
static void c_max(pc *c) {
    int axis = (int)(c->seed % 3) - 1; /* -1, 0, 1 */
    param(c, "op max");
    param(c, "axis %d", axis);
    param(c, "keepdim %d", c->seed % 2);
    /* seed 2: integers, so ties (the gradient goes to the first maximum) */
    nb_tensor *x = Xq(c, SH(dim(c, 2, 5), dim(c, 3, 7), dim(c, 2, 6)), -2, 2, c->seed == 2 ? 1.f : 0);
    done1(c, nb_max(x, axis, c->seed % 2));
}
static void c_sum_all(pc *c) {
    param(c, "op sum_all");
    done1(c, nb_sum_all(X(c, SH(dim(c, 2, 5), dim(c, 3, 7)), -2, 2)));
}
static void c_shapes(pc *c) {
    /* permute, transpose, reshape with -1, negative slice, concat in one chain */
    int a = dim(c, 2, 4), b = dim(c, 3, 5), d = dim(c, 4, 6);
    param(c, "op shapes");
    nb_tensor *x = X(c, SH(a, b, d), -2, 2), *y = X(c, SH(d, b, 2), -2, 2);
    nb_tensor *xp = nb_permute(x, (int[]){2, 1, 0});          /* [d, b, a] */
    nb_tensor *cat = nb_concat((nb_tensor *[]){xp, y}, 2, 2); /* [d, b, a+2] */
    nb_tensor *s = nb_slice(cat, 0, -3, -1);                  /* [2, b, a+2] */
    nb_tensor *t = nb_transpose(s, 0, 2);                     /* [a+2, b, 2] */
    done1(c, nb_reshape(t, 2, (int64_t[]){-1, 2 * b}));
}
static void c_gather(pc *c) {
    int V = dim(c, 4, 7), n = dim(c, 6, 11), D = dim(c, 2, 5);
    param(c, "op gather_scatter");
    nb_tensor *x = X(c, SH(V, D), -2, 2), *y = X(c, SH(n, D), -2, 2);
    int32_t *idx = CI(c, n, V); /* repeats: the gradients add */
    nb_tensor *outs[2] = {nb_gather_rows(x, idx, n), nb_scatter_rows(y, idx, V)};
    done(c, 2, outs);
}
static void c_broadcast(pc *c) {
    int a = dim(c, 2, 4), b = dim(c, 3, 5);
    param(c, "op broadcast_sum_to");
    nb_tensor *x = X(c, SH(b, 1), -2, 2), *y = X(c, SH(a, b, 3), -2, 2);
    nb_tensor *outs[2] = {nb_broadcast_to(x, 3, (int64_t[]){a, b, 3}), nb_sum_to(y, 2, (int64_t[]){b, 1})};
    done(c, 2, outs);
}

/* NaN in, NaN out (values only): PyTorch propagates a NaN through each of
 * these; a max that skipped it would hide a diverged run. */
static void c_nan(pc *c) {
    param(c, "op nan");
    int64_t H = dim(c, 4, 8), W = dim(c, 4, 8);
    nb_tensor *x = nb_empty(4, (int64_t[]){1, 2, H, W});
    fill(c, x, -2, 2, 0);
    for (int i = 0; i < 3; i++) x->data[nb_rng_below(&c->rng, (uint32_t)x->size)] = NAN;
    Csave(c, x);
    nb_tensor *outs[8] = {nb_relu(x), nb_leaky_relu(x, 0.1f), nb_sigmoid(x), nb_tanh(x), nb_maxpool2d(x, 2, 2, 0),
                          nb_max(x, -1, false), nb_softmax(x, -1), nb_abs_rect(x)};
    done(c, 8, outs);
}

/* ---- products ---------------------------------------------------------- */

static void c_matmul(pc *c) {
    int B = dim(c, 2, 3), m = dim(c, 3, 7), k = dim(c, 5, 33), n = dim(c, 3, 9);
    param(c, "op matmul");
    nb_tensor *a = X(c, SH(B, m, k), -1, 1), *b = X(c, SH(B, k, n), -1, 1), *w = X(c, SH(k, n), -1, 1);
    nb_tensor *a2 = X(c, SH(m, k), -1, 1), *b2 = X(c, SH(k, n), -1, 1);
    nb_tensor *a4 = X(c, SH(2, B, m, k), -1, 1), *b4 = X(c, SH(2, B, k, n), -1, 1);
    nb_tensor *outs[4] = {nb_matmul(a, b), nb_matmul(a, w), nb_matmul(a2, b2), nb_matmul(a4, b4)};
    done(c, 4, outs);
}
static void c_matmul_t(pc *c) {
    int m = dim(c, 3, 7), k = dim(c, 5, 33), n = dim(c, 3, 9);
    int ta = c->seed & 1, tb = (c->seed >> 1) & 1;
    param(c, "op matmul_t");
    param(c, "ta %d", ta);
    param(c, "tb %d", tb);
    nb_tensor *a = ta ? X(c, SH(2, k, m), -1, 1) : X(c, SH(2, m, k), -1, 1);
    nb_tensor *b = tb ? X(c, SH(2, n, k), -1, 1) : X(c, SH(2, k, n), -1, 1);
    done1(c, nb_matmul_t(a, b, ta, tb));
}
/* nb_linear with and without bias, on a [2, B1, in] and a [B2, in] input;
 * `wide`: the sizes of the example MLP, where GEMM is blocked and threaded. */
static void linear_case(pc *c, bool wide) {
    int in = wide ? dim(c, 200, 800) : dim(c, 5, 40), out = wide ? dim(c, 60, 260) : dim(c, 3, 9);
    param(c, "op linear");
    /* (each size drawn where the values it shapes are: the cases stay the ones the README reports) */
    int b1 = wide ? dim(c, 30, 70) : dim(c, 3, 5);
    nb_tensor *x = X(c, SH(2, b1, in), -1, 1), *w = X(c, SH(out, in), -1, 1), *b = X(c, SH(out), -1, 1);
    int b2 = wide ? dim(c, 60, 130) : dim(c, 2, 5);
    nb_tensor *x2 = X(c, SH(b2, in), -1, 1);
    nb_tensor *outs[2] = {nb_linear(x, w, b), nb_linear(x2, w, NULL)};
    done(c, 2, outs);
}
static void c_linear_wide(pc *c) { linear_case(c, true); }
static void c_linear(pc *c) { linear_case(c, false); }

/* ---- activations and losses -------------------------------------------- */

/* Inputs on a grid of 0.5 in [-2, 2]: exact zeros are frequent, so the
 * derivative at 0 is compared too. */
static void c_relu(pc *c) {
    param(c, "op relu");
    done1(c, nb_relu(Xq(c, SH(dim(c, 3, 5), dim(c, 3, 7), 5), -2, 2, 0.5f)));
}
static void c_leaky(pc *c) {
    param(c, "op leaky_relu");
    param(c, "slope 0.1");
    done1(c, nb_leaky_relu(Xq(c, SH(dim(c, 3, 5), dim(c, 3, 7), 5), -2, 2, 0.5f), 0.1f));
}
static void c_abs_rect(pc *c) {
    param(c, "op abs");
    done1(c, nb_abs_rect(Xq(c, SH(dim(c, 3, 5), dim(c, 3, 7)), -2, 2, 0.5f)));
}
static void c_prelu(pc *c) {
    int C_ = dim(c, 2, 5);
    param(c, "op prelu");
    nb_tensor *x = Xq(c, SH(dim(c, 2, 4), C_, dim(c, 3, 5), dim(c, 2, 4)), -2, 2, 0.5f);
    nb_tensor *s = X(c, SH(C_), 0.05f, 0.5f);
    nb_tensor *x1 = Xq(c, SH(dim(c, 2, 4), dim(c, 2, 5)), -2, 2, 0.5f);
    nb_tensor *s1 = X(c, SH(1), 0.05f, 0.5f);
    nb_tensor *outs[2] = {nb_prelu(x, s), nb_prelu(x1, s1)};
    done(c, 2, outs);
}
/* wide: rows of hundreds of classes along the last axis */
static void softmax_case(pc *c, const char *op, nb_tensor *(*f)(nb_tensor *, int), bool wide) {
    int axis = wide ? -1 : (int)(c->seed % 3) - 1;
    /* seed 3: logits of size 1e4, where a naive exp overflows */
    float scale = c->seed == 3 ? 1e4f : 4;
    param(c, "op %s", op);
    param(c, "axis %d", axis);
    nb_tensor *x = wide ? X(c, SH(dim(c, 20, 70), dim(c, 300, 1100)), -scale, scale)
                        : X(c, SH(dim(c, 2, 4), dim(c, 3, 7), dim(c, 3, 11)), -scale, scale);
    done1(c, f(x, axis));
}
static void c_softmax_(pc *c) { softmax_case(c, "softmax", nb_softmax, false); }
static void c_log_softmax(pc *c) { softmax_case(c, "log_softmax", nb_log_softmax, false); }
static void c_softmax_wide(pc *c) { softmax_case(c, "softmax", nb_softmax, true); }
static void c_log_softmax_wide(pc *c) { softmax_case(c, "log_softmax", nb_log_softmax, true); }
/* Masked logits: -inf in some entries (never a whole row, never a label's):
 * softmax gives exact zeros there with zero gradient, cross-entropy stays
 * finite, as in PyTorch (attention masks, illegal actions). */
static void c_softmax_masked(pc *c) {
    int N = dim(c, 3, 9), K = dim(c, 3, 9);
    param(c, "op softmax_masked");
    nb_tensor *z = X(c, SH(N, K), -4, 4), *z2 = X(c, SH(N, K), -4, 4);
    int32_t *y = CI(c, N, K);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < K; j++)
            if (j != y[i] && nb_rng_uniform(&c->rng) < 0.3) z->data[i * K + j] = z2->data[i * K + j] = -INFINITY;
    nb_tensor *outs[2] = {nb_softmax(z, -1), nb_cross_entropy(z2, y)};
    done(c, 2, outs);
}
static void xent_case(pc *c, bool wide) {
    int N = wide ? dim(c, 30, 130) : dim(c, 3, 9), K = wide ? dim(c, 200, 1000) : dim(c, 2, 13);
    float scale = c->seed == 3 ? 1e4f : 4;
    param(c, "op cross_entropy");
    nb_tensor *z = X(c, SH(N, K), -scale, scale);
    done1(c, nb_cross_entropy(z, CI(c, N, K)));
}
static void c_xent(pc *c) { xent_case(c, false); }
static void c_xent_wide(pc *c) { xent_case(c, true); }
static void c_mse(pc *c) {
    param(c, "op mse");
    int64_t s[3] = {dim(c, 2, 5), dim(c, 3, 7), dim(c, 2, 4)};
    nb_tensor *p = X(c, s, 3, -2, 2), *t = X(c, s, 3, -2, 2);
    done1(c, nb_mse(p, t));
}
static void c_bce(pc *c) {
    /* logits up to +-100 (and exactly 0 on the grid), targets soft in [0, 1] */
    param(c, "op bce_logits");
    int64_t s[2] = {dim(c, 3, 9), dim(c, 2, 7)};
    float span = c->seed == 3 ? 100 : 8;
    nb_tensor *z = Xq(c, s, 2, -span, span, c->seed == 2 ? 0.5f : 0);
    nb_tensor *y = X(c, s, 2, 0, 1);
    done1(c, nb_bce_logits(z, y));
}
static void c_dqn(pc *c) {
    int B = dim(c, 3, 9), A = dim(c, 2, 5);
    bool huber = c->seed % 2;
    param(c, "op dqn_loss");
    param(c, "huber %d", huber);
    nb_tensor *q = X(c, SH(B, A), -3, 3);
    int32_t *a = CI(c, B, A);
    nb_tensor *t = C(c, SH(B), -3, 3);
    done1(c, nb_dqn_loss(q, a, t->data, huber));
}

/* ---- convolutions, pooling --------------------------------------------- */

/* wide: channel counts that fill the direct kernels' 16-wide panels
 * (conv.c's direct_fits), at sizes like the example CNN's; otherwise the
 * im2col + GEMM path with few channels. */
static void conv2d_case(pc *c, bool wide) {
    static const int widec[] = {13, 16, 17, 29, 32};
    int N = dim(c, 1, 3), Ci = wide ? (int[]){1, 3, 16, 19}[dim(c, 0, 3)] : dim(c, 1, 4);
    int Co = wide ? widec[dim(c, 0, 4)] : dim(c, 2, 5);
    int H = wide ? dim(c, 9, 20) : dim(c, 5, 11), W = wide ? dim(c, 9, 20) : dim(c, 5, 11);
    int KH = dim(c, 1, wide ? 5 : 4), KW = wide ? KH : dim(c, 1, 4);
    nb_conv2d_opts o = {.stride_h = dim(c, 1, 3), .stride_w = dim(c, 1, 2), .pad_top = dim(c, 0, 2),
                        .pad_bottom = dim(c, 0, 2), .pad_left = dim(c, 0, 2), .pad_right = dim(c, 0, 1),
                        .dil_h = dim(c, 1, 2), .dil_w = dim(c, 1, 2)};
    if (wide && c->seed == 1) /* the CNN's layer: 5x5, padding 2, stride 1 */
        o = (nb_conv2d_opts){.pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2}, KH = KW = 5;
    if (wide && c->seed == 2) /* 3x3, padding 1, stride 1 (the direct input gradient) */
        o = (nb_conv2d_opts){.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}, KH = KW = 3;
    int sh = o.stride_h ? o.stride_h : 1, sw = o.stride_w ? o.stride_w : 1;
    int dh = o.dil_h ? o.dil_h : 1, dw = o.dil_w ? o.dil_w : 1;
    while (H + o.pad_top + o.pad_bottom < dh * (KH - 1) + 1) H++;
    while (W + o.pad_left + o.pad_right < dw * (KW - 1) + 1) W++;
    param(c, "op conv2d");
    param(c, "stride %d %d", sh, sw);
    param(c, "pad %d %d %d %d", o.pad_left, o.pad_right, o.pad_top, o.pad_bottom); /* F.pad's order */
    param(c, "dilation %d %d", dh, dw);
    nb_tensor *x = X(c, SH(N, Ci, H, W), -1, 1), *w = X(c, SH(Co, Ci, KH, KW), -1, 1), *b = X(c, SH(Co), -1, 1);
    done1(c, nb_conv2d(x, w, b, &o));
}
static void c_conv2d(pc *c) { conv2d_case(c, false); }
static void c_conv2d_wide(pc *c) { conv2d_case(c, true); }
static void c_conv1d(pc *c) {
    int N = dim(c, 1, 3), Ci = dim(c, 1, 4), Co = dim(c, 2, 5), L = dim(c, 7, 15), K = dim(c, 1, 4);
    int stride = dim(c, 1, 3), pad = dim(c, 0, 2), dil = dim(c, 1, 3);
    bool causal = c->seed % 2;
    if (causal) stride = 1, pad = 0;
    param(c, "op conv1d");
    param(c, "stride %d", stride);
    param(c, "pad %d", pad);
    param(c, "dilation %d", dil);
    param(c, "causal %d", causal);
    nb_tensor *x = X(c, SH(N, Ci, L), -1, 1), *w = X(c, SH(Co, Ci, K), -1, 1), *b = X(c, SH(Co), -1, 1);
    done1(c, nb_conv1d(x, w, b, stride, pad, dil, causal));
}
/* wide: WaveNet's sizes (32 channels, long signals) */
static void conv1d_causal_case(pc *c, bool wide) {
    int N = dim(c, 1, 3), Ci = wide ? 32 : dim(c, 1, 4), Co = wide ? (int[]){16, 32, 64}[dim(c, 0, 2)] : dim(c, 2, 5);
    int L = wide ? dim(c, 200, 700) : dim(c, 7, 21), K = wide ? 2 : dim(c, 1, 3), dil = wide ? 1 << dim(c, 0, 7) : dim(c, 1, 4);
    param(c, "op conv1d");
    param(c, "stride 1");
    param(c, "pad 0");
    param(c, "dilation %d", dil);
    param(c, "causal 1");
    nb_tensor *x = X(c, SH(N, Ci, L), -1, 1), *w = X(c, SH(Co, Ci, K), -1, 1), *b = X(c, SH(Co), -1, 1);
    done1(c, nb_conv1d_causal(x, w, b, dil));
}
static void c_conv1d_causal(pc *c) { conv1d_causal_case(c, false); }
static void c_conv1d_causal_wide(pc *c) { conv1d_causal_case(c, true); }
static void c_conv_t1d(pc *c) {
    int N = dim(c, 1, 3), Ci = dim(c, 1, 4), Co = dim(c, 2, 5), T = dim(c, 3, 9), K = dim(c, 1, 6);
    int stride = dim(c, 1, 4), pad = dim(c, 0, K - 1);
    param(c, "op conv_transpose1d");
    param(c, "stride %d", stride);
    param(c, "pad %d", pad);
    nb_tensor *x = X(c, SH(N, Ci, T), -1, 1), *w = X(c, SH(Ci, Co, K), -1, 1), *b = X(c, SH(Co), -1, 1);
    done1(c, nb_conv_transpose1d(x, w, b, stride, pad));
}
/* fast: k = 2, s = 2, p = 0, pool.c's fast path (tiled when H, W are even) */
static void c_pool(pc *c, const char *op, nb_tensor *(*f)(nb_tensor *, int, int, int), bool fast) {
    int k = dim(c, 2, 4), s = dim(c, 1, 3), p = dim(c, 0, k / 2);
    if (c->seed == 3) p = k / 2; /* the most padding allowed: count_include_pad shows */
    if (fast) k = 2, s = 2, p = 0;
    int H = dim(c, k, fast ? 16 : 11), W = dim(c, k, fast ? 16 : 11);
    param(c, "op %s", op);
    param(c, "k %d", k);
    param(c, "s %d", s);
    param(c, "p %d", p);
    /* seed 2 and the fast cases: integers in [-2, 2], so windows hold ties
     * (and negative maxima next to the padding) */
    float q = (fast || c->seed == 2) ? 1.f : 0;
    nb_tensor *x = Xq(c, SH(dim(c, 1, 3), dim(c, 1, fast ? 17 : 3), H, W), -2, 2, q);
    done1(c, f(x, k, s, p));
}
static void c_maxpool(pc *c) { c_pool(c, "maxpool2d", nb_maxpool2d, false); }
static void c_avgpool(pc *c) { c_pool(c, "avgpool2d", nb_avgpool2d, false); }
static void c_maxpool2(pc *c) { c_pool(c, "maxpool2d", nb_maxpool2d, true); }
static void c_avgpool2(pc *c) { c_pool(c, "avgpool2d", nb_avgpool2d, true); }

/* ---- embedding, dropout, gated units ------------------------------------ */

static void c_embedding(pc *c) {
    int V = dim(c, 3, 9), D = dim(c, 2, 7), n = dim(c, 5, 17);
    param(c, "op embedding");
    nb_tensor *w = X(c, SH(V, D), -1, 1);
    done1(c, nb_embedding(w, CI(c, n, V), n));
}
static void c_dropout(pc *c) {
    /* PyTorch's mask comes from its own generator: the Python side reads
     * which units nabla kept from out0 and checks the scaling 1/(1-p) and
     * the gradient; a second output is the evaluation-mode identity. */
    float p = c->seed == 1 ? 0.5f : c->seed == 2 ? 0.2f : 0.9f;
    param(c, "op dropout");
    param(c, "p %.9g", (double)p);
    nb_tensor *x = X(c, SH(dim(c, 3, 9), dim(c, 5, 11)), 0.5f, 2); /* nonzero: a zero output means dropped */
    nb_tensor *outs[2] = {nb_dropout(x, p, true, &c->rng), nb_dropout(x, p, false, NULL)};
    done(c, 2, outs);
}
static void c_gated(pc *c) {
    int C_ = dim(c, 1, 5);
    param(c, "op gated");
    done1(c, nb_gated(X(c, SH(dim(c, 1, 3), 2 * C_, dim(c, 3, 9)), -3, 3)));
}
static void c_mulaw(pc *c) {
    /* seed 2: on a grid of 0.25, so x = 0 occurs, where nabla's derivative is
     * the true slope mu / ln(1 + mu) (documented; PyTorch's autograd of the
     * formula gives 0) */
    param(c, "op mulaw");
    done1(c, nb_mulaw(Xq(c, SH(dim(c, 3, 7), dim(c, 3, 7)), -1, 1, c->seed == 2 ? 0.25f : 0)));
}

/* ---- recurrent ---------------------------------------------------------- */

static void c_rnn(pc *c, nb_cell cell) {
    int T = dim(c, 2, 6), B = dim(c, 1, 4), I = dim(c, 2, 6), H = dim(c, 2, 7), layers = 1 + (c->seed % 2);
    if (c->seed == 3) T = dim(c, 10, 20), B = dim(c, 8, 32), I = dim(c, 20, 60), H = dim(c, 40, 130); /* wider */
    param(c, "op rnn");
    param(c, "cell %s", nb_cell_name(cell));
    param(c, "layers %d", layers);
    param(c, "hidden %d", H);
    nb_rnn *m = nb_rnn_new(cell, I, H, layers, &c->rng);
    nb_param *ps;
    int np = nb_rnn_params(m, &ps);
    float a = 1.f / sqrtf((float)H);
    for (int i = 0; i < np; i++) Xadopt(c, ps[i].t, -a, a); /* x0.. x(np-1): PyTorch's parameter order */
    nb_tensor *x = X(c, SH(T, B, I), -1, 1);
    nb_rnn_state init = {X(c, SH(layers, B, H), -1, 1), NULL}, fin = {0};
    if (cell == NB_CELL_LSTM) init.c = X(c, SH(layers, B, H), -1, 1);
    nb_tensor *y = nb_rnn_forward(m, x, &init, &fin);
    nb_tensor *outs[3] = {y, fin.h, fin.c};
    done(c, cell == NB_CELL_LSTM ? 3 : 2, outs);
    nb_rnn_free(m);
}
static void c_rnn_tanh(pc *c) { c_rnn(c, NB_CELL_RNN); }
static void c_lstm(pc *c) { c_rnn(c, NB_CELL_LSTM); }
static void c_gru(pc *c) { c_rnn(c, NB_CELL_GRU); }
static void c_lstm_packed(pc *c) {
    /* n sequences of falling lengths; the result is each one's last h */
    int n = dim(c, 2, 5), H = dim(c, 2, 6), T = dim(c, 3, 6);
    if (c->seed == 3) n = dim(c, 20, 40), H = dim(c, 30, 70), T = dim(c, 8, 16); /* wider */
    int64_t len[64], batch[64], rows = 0;
    for (int j = 0; j < n; j++) len[j] = j == 0 ? T : dim(c, 1, (int)len[j - 1]);
    for (int t = 0; t < T; t++) {
        batch[t] = 0;
        for (int j = 0; j < n; j++) batch[t] += len[j] > t;
        rows += batch[t];
    }
    param(c, "op lstm_packed");
    param(c, "hidden %d", H);
    nb_tensor *lt = nb_empty(1, (int64_t[]){n});
    for (int j = 0; j < n; j++) lt->data[j] = (float)len[j];
    Csave(c, lt);
    float a = 1.f / sqrtf((float)H);
    nb_tensor *xw = X(c, SH(rows, 4 * H), -1, 1), *whh = X(c, SH(4 * H, H), -a, a);
    nb_tensor *bih = X(c, SH(4 * H), -a, a), *bhh = X(c, SH(4 * H), -a, a);
    done1(c, nb_lstm_packed(xw, batch, T, whh, bih, bhh));
}

/* ---- style transfer ----------------------------------------------------- */

static void c_style(pc *c) {
    int N = dim(c, 2, 5), H = dim(c, 2, 5), W = dim(c, 2, 6);
    param(c, "op style");
    nb_tensor *F = X(c, SH(1, N, H, W), -1, 1), *F2 = X(c, SH(N + 1, H * W + 1), -1, 1), *x = X(c, SH(1, 3, H, W), -1, 1);
    nb_tensor *P = C(c, SH(1, N, H, W), -1, 1), *A = C(c, SH(N, N), -1, 1), *A2 = C(c, SH(N + 1, N + 1), -1, 1);
    float w[2] = {0.3f, 1.7f};
    nb_tensor *outs[6] = {nb_gram(F), nb_style_content_loss(F, P), nb_style_layer_loss(F, A),
                          nb_style_loss((nb_tensor *[]){F, F2}, (nb_tensor *[]){A, A2}, w, 2), nb_tv_loss(x),
                          nb_style_total_loss(nb_style_content_loss(F, P), nb_style_layer_loss(F2, A2), 0.25f, 3)};
    done(c, 6, outs);
}

/* ---- second order, FGSM -------------------------------------------------- */

/* H v of a small network's mean cross-entropy (tanh, ReLU and a conv). */
static void c_hvp(pc *c) {
    int N = dim(c, 2, 5), K = dim(c, 2, 4), Hh = dim(c, 3, 6);
    param(c, "op hvp");
    nb_tensor *p[6] = {nb_tensor_new(4, (int64_t[]){2, 1, 3, 3}), nb_tensor_new(1, (int64_t[]){2}),
                       nb_tensor_new(2, (int64_t[]){Hh, 2 * 25}), nb_tensor_new(1, (int64_t[]){Hh}),
                       nb_tensor_new(2, (int64_t[]){K, Hh}), nb_tensor_new(1, (int64_t[]){K})};
    nb_tensor *v[6], *hv[6];
    for (int i = 0; i < 6; i++) {
        fill(c, p[i], -0.7f, 0.7f, 0);
        nb_requires_grad(p[i], true);
        Csave(c, p[i]);
    }
    for (int i = 0; i < 6; i++) {
        v[i] = nb_empty(p[i]->ndim, p[i]->shape);
        fill(c, v[i], -1, 1, 0);
        Csave(c, v[i]);
    }
    nb_tensor *x = C(c, SH(N, 1, 7, 7), -1, 1);
    int32_t *y = CI(c, N, K);
    nb_conv2d_opts o = {.stride_h = 1, .stride_w = 1};
    nb_tensor *h = nb_tanh(nb_conv2d(x, p[0], p[1], &o));        /* [N, 2, 5, 5] */
    h = nb_sigmoid(nb_linear(nb_flatten(h, 1), p[2], p[3]));     /* [N, Hh] */
    nb_tensor *loss = nb_cross_entropy(nb_linear(h, p[4], p[5]), y);
    nb_hvp(loss, p, v, 6, hv);
    done(c, 6, hv);
    for (int i = 0; i < 6; i++) nb_tensor_free(p[i]);
}
static void c_fgsm(pc *c) {
    static const char *cfg = "[net]\ninput = 1x6x6\n[conv2d]\nout = 3\nkernel = 3\npadding = 1\nactivation = relu\n"
                             "[maxpool]\nsize = 2\n[flatten]\n[dense]\nout = 4\nactivation = tanh\n[dense]\nout = 3\n";
    int N = dim(c, 2, 6);
    param(c, "op fgsm");
    param(c, "eps 0.1");
    nb_net *net = nb_net_parse(cfg, "parity");
    if (!net || nb_net_build(net, 3, (int64_t[]){1, 6, 6}, &c->rng)) {
        fprintf(stderr, "parity: %s\n", nb_errmsg());
        exit(2);
    }
    nb_param *ps;
    int np = nb_net_params(net, &ps); /* conv1.weight, conv1.bias, fc1.weight, ... */
    for (int i = 0; i < np; i++) Csave(c, ps[i].t);
    nb_tensor *x = C(c, SH(N, 1, 6, 6), 0, 1);
    int32_t *y = CI(c, N, 3);
    nb_tensor *outs[2] = {nb_fgsm(net, x, y, 0.1f), nb_net_forward(net, x, false, NULL)};
    done(c, 2, outs);
    nb_net_free(net);
}

/* A whole network from a .cfg (every layer kind, conv and pool geometry from
 * its keys), forward in evaluation mode: the parameters (in nb_net_params
 * order, names in names.txt) and the input get gradients. The Python side
 * rebuilds it with bench/hessian_torch.py's reader of nabla's .cfg. */
static void c_net(pc *c) {
    static const char *cfgs[] = {
        "[net]\ninput = 2x11x10\n[conv2d]\nout = 4\nkernel = 3\nstride = 2\npadding = 1\nactivation = prelu\n"
        "[avgpool]\nsize = 3\nstride = 1\npadding = 1\n[conv2d]\nout = 16\nkernel = 2\ndilation = 2\n"
        "activation = leaky\n[maxpool]\nsize = 2\n[dropout]\np = 0.3\n[flatten]\n[dense]\nout = 7\n"
        "activation = abs\n[dense]\nout = 3\n",
        "[net]\ninput = 13\n[dense]\nout = 9\nactivation = tanh\n[dense]\nout = 6\nactivation = sigmoid\n"
        "[leaky]\nslope = 0.2\n[dense]\nout = 5\nactivation = prelu\n[dense]\nout = 4\n",
        "[net]\ninput = 1x9x9\n[conv2d]\nout = 13\nkernel = 5\npadding = 2\nactivation = relu\n"
        "[maxpool]\nsize = 3\nstride = 2\npadding = 1\n[conv2d]\nout = 3\nkernel = 3\n[prelu]\n[dense]\nout = 4\n",
    };
    const char *cfg = cfgs[(c->seed - 1) % 3];
    int N = dim(c, 2, 5);
    param(c, "op net");
    char p[700];
    snprintf(p, sizeof p, "%s/net.cfg", c->dir);
    FILE *f = fopen(p, "w");
    if (!f || fputs(cfg, f) < 0 || fclose(f) != 0) {
        perror(p);
        exit(2);
    }
    nb_net *net = nb_net_parse(cfg, "parity");
    if (!net || nb_net_build(net, 0, NULL, &c->rng)) {
        fprintf(stderr, "parity: %s\n", nb_errmsg());
        exit(2);
    }
    nb_param *ps;
    const char **names;
    int np = nb_net_params(net, &ps);
    nb_net_param_names(net, &names);
    snprintf(p, sizeof p, "%s/names.txt", c->dir);
    if (!(f = fopen(p, "w"))) {
        perror(p);
        exit(2);
    }
    for (int i = 0; i < np; i++) {
        fprintf(f, "%s\n", names[i]);
        /* PReLU slopes away from 0 and 1; weights of order 1/sqrt(fan in) */
        int64_t fi = ps[i].t->ndim > 1 ? ps[i].t->size / ps[i].t->shape[0] : 4;
        float a = strstr(names[i], "prelu") ? 0.5f : 1.5f / sqrtf((float)fi);
        Xadopt(c, ps[i].t, strstr(names[i], "prelu") ? 0.05f : -a, a);
    }
    fclose(f);
    int64_t shape[4] = {N};
    int nd = nb_net_input_shape(net, shape + 1);
    done1(c, nb_net_forward(net, X(c, shape, nd + 1, -1, 1), false, NULL));
    nb_net_free(net);
}

/* ---- optimizers, clipping, schedules -------------------------------------- */

/* K steps from the same start, the gradients of every step drawn here:
 * c0 = start of weight, c1 = start of bias, c2 = [K, ...] weight grads,
 * c3 = bias grads; out0/out1 the parameters after K steps. The bias has
 * decay off (nb_param.decay), as nb_net_params gives it. */
static void c_optim(pc *c, const char *name, nb_optim_opts o) {
    const int K = 5;
    int a = dim(c, 2, 5), b = dim(c, 3, 7);
    param(c, "op optim");
    param(c, "kind %s", name);
    param(c, "lr %.9g", (double)o.lr);
    param(c, "momentum %.9g", (double)o.momentum);
    param(c, "nesterov %d", o.nesterov);
    param(c, "beta1 %.9g", (double)(o.beta1 ? o.beta1 : 0.9f));
    param(c, "beta2 %.9g", (double)(o.beta2 ? o.beta2 : 0.999f));
    param(c, "eps %.9g", (double)(o.eps ? o.eps : 1e-8f));
    param(c, "weight_decay %.9g", (double)o.weight_decay);
    param(c, "steps %d", K);
    nb_tensor *w = nb_tensor_new(2, (int64_t[]){a, b}), *bias = nb_tensor_new(1, (int64_t[]){b});
    fill(c, w, -1, 1, 0);
    fill(c, bias, -1, 1, 0);
    Csave(c, w);
    Csave(c, bias);
    nb_requires_grad(w, true);
    nb_requires_grad(bias, true);
    nb_tensor *gw = C(c, SH(K, a, b), -1, 1), *gb = C(c, SH(K, b), -1, 1);
    nb_param ps[2] = {{w, true}, {bias, false}};
    nb_optim *opt = nb_optim_new(&o, ps, 2);
    if (!opt) {
        fprintf(stderr, "parity: %s\n", nb_errmsg());
        exit(2);
    }
    for (int k = 0; k < K; k++) {
        memcpy(w->grad->data, gw->data + (int64_t)k * a * b, sizeof(float) * (size_t)(a * b));
        memcpy(bias->grad->data, gb->data + (int64_t)k * b, sizeof(float) * (size_t)b);
        nb_optim_step(opt);
    }
    nb_tensor *outs[2] = {w, bias};
    done(c, 2, outs);
    nb_optim_free(opt);
    nb_tensor_free(w);
    nb_tensor_free(bias);
}
static void c_sgd(pc *c) { c_optim(c, "sgd", (nb_optim_opts){.kind = NB_SGD, .lr = 0.1f}); }
static void c_sgd_wd(pc *c) { c_optim(c, "sgd", (nb_optim_opts){.kind = NB_SGD, .lr = 0.1f, .weight_decay = 0.05f}); }
static void c_momentum(pc *c) {
    c_optim(c, "sgd", (nb_optim_opts){.kind = NB_SGD, .lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f});
}
static void c_nesterov(pc *c) {
    c_optim(c, "sgd", (nb_optim_opts){.kind = NB_SGD, .lr = 0.05f, .momentum = 0.8f, .nesterov = true, .weight_decay = 0.02f});
}
static void c_adam(pc *c) { c_optim(c, "adam", (nb_optim_opts){.kind = NB_ADAM, .lr = 0.01f}); }
static void c_adam_wd(pc *c) {
    c_optim(c, "adam",
            (nb_optim_opts){.kind = NB_ADAM, .lr = 0.02f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-3f, .weight_decay = 0.1f});
}
static void c_adamw(pc *c) {
    c_optim(c, "adamw", (nb_optim_opts){.kind = NB_ADAMW, .lr = 0.02f, .eps = 1e-4f, .weight_decay = 0.3f});
}

/* L-BFGS (strong Wolfe) on L2-regularized softmax regression (weights and
 * bias), a strictly convex loss: after 4 or 8 iterations from the same start nabla and
 * torch.optim.LBFGS(line_search_fn="strong_wolfe") should stand at the same
 * point; with 200 both at the one minimum. */
typedef struct lbctx {
    nb_tensor *X, *w, *b;
    int32_t *y;
    float lam;
} lbctx;
static float lb_loss(void *p) {
    lbctx *k = p;
    /* the bias in the penalty too: a class absent from y would otherwise
     * send its bias to -inf and leave no minimum to compare */
    nb_tensor *pen = nb_add(nb_sum_all(nb_square(k->w)), nb_sum_all(nb_square(k->b)));
    nb_tensor *loss = nb_add(nb_cross_entropy(nb_linear(k->X, k->w, k->b), k->y), nb_mul_scalar(pen, 0.5f * k->lam));
    nb_backward(loss);
    return nb_item(loss);
}
static void c_lbfgs(pc *c) {
    int N = dim(c, 20, 60), D = dim(c, 3, 8), K = dim(c, 2, 5), iters = (int[]){8, 4, 200}[c->seed % 3];
    /* at the minimum a float32 run can place parameters only to about
     * sqrt(float32 eps), ~3e-4 (the loss stops changing in float32 first;
     * PyTorch's own float32 run lands 8.5e-4 from the float64 minimum): its
     * own tolerance, lbfgs_min */
    param(c, "op %s", iters < 200 ? "lbfgs" : "lbfgs_min");
    param(c, "iters %d", iters);
    param(c, "lam 0.1");
    lbctx k = {C(c, SH(N, D), -2, 2), nb_tensor_new(2, (int64_t[]){K, D}), nb_tensor_new(1, (int64_t[]){K}), NULL, 0.1f};
    k.y = CI(c, N, K);
    fill(c, k.w, -0.5f, 0.5f, 0);
    Csave(c, k.w);
    nb_requires_grad(k.w, true);
    nb_requires_grad(k.b, true);
    nb_param ps[2] = {{k.w, true}, {k.b, false}};
    nb_lbfgs_opts o = {.max_iter = iters, .tol_grad = 1e-7f, .tol_change = 1e-12f};
    nb_lbfgs(ps, 2, lb_loss, &k, &o, NULL);
    /* one vector, so the error is relative to all the parameters (a bias
     * near 0 alone would magnify the float32 limit at the minimum) */
    done1(c, nb_concat((nb_tensor *[]){nb_reshape(k.w, 1, (int64_t[]){-1}), k.b}, 2, 0));
    nb_tensor_free(k.w);
    nb_tensor_free(k.b);
}

static void c_clip(pc *c) {
    /* the norm over both tensors together; max_norm below it (seeds 1, 2)
     * and above it (seed 3) */
    int a = dim(c, 2, 5), b = dim(c, 3, 7);
    float max_norm = c->seed == 3 ? 100.f : 0.5f;
    param(c, "op clip_grad_norm");
    param(c, "max_norm %.9g", (double)max_norm);
    nb_tensor *w = nb_tensor_new(2, (int64_t[]){a, b}), *bias = nb_tensor_new(1, (int64_t[]){b});
    nb_requires_grad(w, true);
    nb_requires_grad(bias, true);
    fill(c, w->grad, -1, 1, 0);
    fill(c, bias->grad, -1, 1, 0);
    Csave(c, w->grad);
    Csave(c, bias->grad);
    nb_param ps[2] = {{w, true}, {bias, false}};
    nb_tensor *norm = nb_scalar(nb_clip_grad_norm(ps, 2, max_norm));
    nb_tensor *outs[3] = {w->grad, bias->grad, norm};
    done(c, 3, outs);
    nb_tensor_free(w);
    nb_tensor_free(bias);
}
static void c_schedule(pc *c) {
    const int S = 40;
    int every = dim(c, 3, 9), total = dim(c, 10, 30);
    param(c, "op schedule");
    param(c, "every %d", every);
    param(c, "gamma 0.5");
    param(c, "total %d", total);
    param(c, "min_lr 0.001");
    nb_tensor *st = nb_empty(1, (int64_t[]){S}), *co = nb_empty(1, (int64_t[]){S});
    for (int i = 0; i < S; i++) {
        st->data[i] = nb_lr_step(0.1f, i, every, 0.5f);
        co->data[i] = nb_lr_cosine(0.1f, i, total, 0.001f);
    }
    nb_tensor *outs[2] = {st, co};
    done(c, 2, outs);
}

/* ---- statistics, initialization, dropout's rate ---------------------------- */

/* eq. 3.9-3.14 and 5.60 against torch.var/cov/corrcoef, Categorical and
 * (Multivariate)Normal entropies and KL divergences: values only. */
static void c_stats(pc *c) {
    int m = dim(c, 5, 40), n = dim(c, 2, 6), K = dim(c, 2, 9);
    param(c, "op stats");
    nb_tensor *Xd = C(c, SH(m, n), -2, 2);
    nb_tensor *p = nb_empty(1, (int64_t[]){K}), *q = nb_empty(1, (int64_t[]){K});
    fill(c, p, 0.05f, 1, 0);
    fill(c, q, 0.05f, 1, 0);
    float sp = 0, sq = 0;
    for (int i = 0; i < K; i++) sp += p->data[i], sq += q->data[i];
    for (int i = 0; i < K; i++) p->data[i] /= sp, q->data[i] /= sq;
    Csave(c, p);
    Csave(c, q);
    /* two SPD matrices A A^T + I and two means */
    nb_tensor *S[2], *mu[2];
    for (int k = 0; k < 2; k++) {
        nb_tensor *A = nb_empty(2, (int64_t[]){n, n});
        fill(c, A, -1, 1, 0);
        S[k] = nb_empty(2, (int64_t[]){n, n});
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double acc = i == j;
                for (int l = 0; l < n; l++) acc += (double)A->data[i * n + l] * A->data[j * n + l];
                S[k]->data[i * n + j] = (float)acc;
            }
        Csave(c, S[k]);
        mu[k] = C(c, SH(n), -1, 1);
    }
    double h, ce, kl, nh, nkl, mh, mkl;
    float s1 = 0.3f + (float)nb_rng_uniform(&c->rng), s2 = 0.3f + (float)nb_rng_uniform(&c->rng);
    float m1 = (float)nb_rng_uniform(&c->rng), m2 = -(float)nb_rng_uniform(&c->rng);
    nb_tensor *g = nb_empty(1, (int64_t[]){4});
    g->data[0] = m1, g->data[1] = s1, g->data[2] = m2, g->data[3] = s2;
    Csave(c, g);
    if (nb_stats_entropy(p, &h) || nb_stats_cross_entropy(p, q, &ce) || nb_stats_kl(p, q, &kl) ||
        nb_stats_normal_entropy(s1, &nh) || nb_stats_normal_kl(m1, s1, m2, s2, &nkl) ||
        nb_stats_mvn_entropy(S[0], &mh) || nb_stats_mvn_kl(mu[0], S[0], mu[1], S[1], &mkl)) {
        fprintf(stderr, "parity: %s\n", nb_errmsg());
        exit(2);
    }
    nb_tensor *sc = nb_empty(1, (int64_t[]){7});
    double v[7] = {h, ce, kl, nh, nkl, mh, mkl};
    for (int i = 0; i < 7; i++) sc->data[i] = (float)v[i];
    nb_tensor *outs[6] = {nb_stats_mean(Xd), nb_stats_var(Xd, 0), nb_stats_var(Xd, 1), nb_stats_cov(Xd, 1),
                          nb_stats_corr(Xd), sc};
    done(c, 6, outs);
}

/* Initializers against PyTorch's nn.init formulas, by their statistics over
 * 2*10^5 draws: the bound (uniform) and the standard deviation. out0 holds
 * [max |w|, std] for xavier_uniform, xavier_normal, he_uniform, he_normal
 * of a conv weight [O, C, k, k] (fan_in C k k, fan_out O k k). */
static void c_init(pc *c) {
    int O = dim(c, 20, 64), Ci = dim(c, 3, 32), k = 2 * dim(c, 0, 2) + 1;
    param(c, "op init");
    param(c, "shape %d %d %d %d", O, Ci, k, k);
    nb_tensor *w = nb_tensor_new(4, (int64_t[]){O, Ci, k, k});
    nb_tensor *st = nb_empty(1, (int64_t[]){8}); /* [bound, std] x 4 */
    void (*init[4])(nb_tensor *, nb_rng *) = {nb_init_xavier_uniform, nb_init_xavier_normal, nb_init_he_uniform,
                                              nb_init_he_normal};
    for (int i = 0; i < 4; i++) {
        double mx = 0, s = 0, s2 = 0;
        int64_t n = 0;
        while (n < 200000) {
            init[i](w, &c->rng);
            for (int64_t j = 0; j < w->size; j++) {
                double x = w->data[j];
                mx = fmax(mx, fabs(x));
                s += x, s2 += x * x;
            }
            n += w->size;
        }
        st->data[2 * i] = (float)mx;
        st->data[2 * i + 1] = (float)sqrt(s2 / n - (s / n) * (s / n));
    }
    done1(c, st);
    nb_tensor_free(w);
}
/* The share of units dropout zeroes over 10^6 draws. */
static void c_dropout_rate(pc *c) {
    float p = (float)(0.1 * dim(c, 1, 9));
    param(c, "op dropout_rate");
    param(c, "p %.9g", (double)p);
    nb_tensor *x = nb_full(1, (int64_t[]){1000000}, 1);
    nb_tensor *y = nb_dropout(x, p, true, &c->rng);
    int64_t z = 0;
    for (int64_t i = 0; i < y->size; i++) z += y->data[i] == 0;
    done1(c, nb_scalar((float)z / (float)y->size));
}

/* ---- the table ------------------------------------------------------------ */

typedef struct pcase {
    const char *name;
    void (*fn)(pc *);
} pcase;

static const pcase cases[] = {
    {"add", c_add}, {"sub", c_sub}, {"mul", c_mul}, {"div", c_div}, {"scalars", c_scalars},
    {"exp", c_exp}, {"log", c_log}, {"sqrt", c_sqrt}, {"pow", c_pow}, {"abs", c_abs}, {"square", c_square},
    {"neg", c_neg}, {"sigmoid", c_sigmoid}, {"tanh", c_tanh},
    {"nan", c_nan}, {"sum", c_sum}, {"mean", c_mean}, {"max", c_max}, {"sum_all", c_sum_all},
    {"shapes", c_shapes}, {"gather_scatter", c_gather}, {"broadcast_sum_to", c_broadcast},
    {"matmul", c_matmul}, {"matmul_t", c_matmul_t}, {"linear", c_linear}, {"linear_wide", c_linear_wide},
    {"relu", c_relu}, {"leaky_relu", c_leaky}, {"abs_rect", c_abs_rect}, {"prelu", c_prelu},
    {"softmax", c_softmax_}, {"log_softmax", c_log_softmax},
    {"softmax_wide", c_softmax_wide}, {"log_softmax_wide", c_log_softmax_wide},
    {"softmax_masked", c_softmax_masked}, {"cross_entropy", c_xent}, {"cross_entropy_wide", c_xent_wide}, {"mse", c_mse}, {"bce_logits", c_bce}, {"dqn_loss", c_dqn},
    {"conv2d", c_conv2d}, {"conv2d_wide", c_conv2d_wide}, {"conv1d", c_conv1d},
    {"conv1d_causal", c_conv1d_causal}, {"conv1d_causal_wide", c_conv1d_causal_wide},
    {"conv_transpose1d", c_conv_t1d}, {"maxpool2d", c_maxpool}, {"avgpool2d", c_avgpool},
    {"maxpool2d_2x2", c_maxpool2}, {"avgpool2d_2x2", c_avgpool2},
    {"embedding", c_embedding}, {"dropout", c_dropout}, {"gated", c_gated}, {"mulaw", c_mulaw},
    {"rnn_tanh", c_rnn_tanh}, {"lstm", c_lstm}, {"gru", c_gru}, {"lstm_packed", c_lstm_packed},
    {"style", c_style}, {"hvp", c_hvp}, {"fgsm", c_fgsm}, {"net", c_net},
    {"sgd", c_sgd}, {"sgd_weight_decay", c_sgd_wd}, {"sgd_momentum", c_momentum}, {"sgd_nesterov", c_nesterov},
    {"adam", c_adam}, {"adam_l2", c_adam_wd}, {"adamw", c_adamw},
    {"lbfgs", c_lbfgs}, {"clip_grad_norm", c_clip}, {"lr_schedule", c_schedule},
    {"stats", c_stats}, {"init", c_init}, {"dropout_rate", c_dropout_rate},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: parity OUTDIR [--seeds N] [--threads T] [NAME...]\n");
        return 2;
    }
    const char *out = argv[1];
    int seeds = 3, nnames = 0;
    const char *names[64];
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) nb_set_threads(atoi(argv[++i]));
        else if (nnames < 64) names[nnames++] = argv[i];
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        perror(out);
        return 2;
    }
    int ran = 0;
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        bool want = nnames == 0;
        for (int j = 0; j < nnames; j++) want |= strstr(cases[k].name, names[j]) != NULL;
        if (!want) continue;
        for (int s = 1; s <= seeds; s++) {
            pc c = {.seed = s};
            snprintf(c.dir, sizeof c.dir, "%s/%s.s%d", out, cases[k].name, s);
            mkdir(c.dir, 0777);
            char mp[700];
            snprintf(mp, sizeof mp, "%s/meta.txt", c.dir);
            if (!(c.meta = fopen(mp, "w"))) {
                perror(mp);
                return 2;
            }
            nb_rng_seed(&c.rng, 1000u * (uint64_t)s + k, 7);
            cases[k].fn(&c);
            fclose(c.meta);
            for (int i = 0; i < c.nx; i++)
                if (c.owned[i]) nb_tensor_free(c.x[i]);
            nb_arena_reset();
            ran++;
        }
    }
    fprintf(stderr, "parity: %d cases written to %s\n", ran, out);
    return 0;
}
