/* test_activation.c — the ReLU family (eq. 20), sigmoid, tanh, softmax,
 * log-softmax and dropout: values against double-precision references,
 * gradients and Hessian-vector products against finite differences. */
#include "test.h"
#include <stdlib.h>

/* ReLU-type functions have a kink at 0: keep test inputs at least `margin`
 * away from it so finite differences never straddle it. */
static void away_from_zero(nb_tensor *t, float margin) {
    for (int64_t i = 0; i < t->size; i++) {
        float v = t->data[i];
        if (fabsf(v) < margin) t->data[i] = v < 0.f ? v - margin : v + margin;
    }
}

/* eq. 20 evaluated the way the notes write it, in double. */
static double eq20(double z, double a) { return fmax(0.0, z) + a * fmin(0.0, z); }

static nb_tensor *f_relu(nb_tensor **in, void *c) { return nb_relu(in[0]); }
/* relu(x) x: its Hessian 2 R step(x) is not zero, so the HVP check sees it. */
static nb_tensor *f_relu_x(nb_tensor **in, void *c) { return nb_mul(nb_relu(in[0]), in[0]); }
static nb_tensor *f_leaky(nb_tensor **in, void *c) { return nb_leaky_relu(in[0], *(const float *)c); }
static nb_tensor *f_leaky_sq(nb_tensor **in, void *c) { return nb_square(nb_leaky_relu(in[0], *(const float *)c)); }
static nb_tensor *f_abs_rect(nb_tensor **in, void *c) { return nb_abs_rect(in[0]); }
static nb_tensor *f_abs_rect_x(nb_tensor **in, void *c) { return nb_mul(nb_abs_rect(in[0]), in[0]); }
static nb_tensor *f_prelu(nb_tensor **in, void *c) { return nb_prelu(in[0], in[1]); }
static nb_tensor *f_prelu_sq(nb_tensor **in, void *c) { return nb_square(nb_prelu(in[0], in[1])); }

TEST(test_activation_relu_values_grad_and_hvp) {
    int64_t shapes[][3] = {{3, 7, 1}, {2, 5, 3}, {13, 1, 1}};
    int nds[] = {2, 3, 1};
    for (int s = 0; s < 3; s++) {
        nb_tensor *x = nb_test_param(nds[s], shapes[s], 1.f);
        away_from_zero(x, 0.05f);
        nb_tensor *y = nb_relu(x);
        for (int64_t i = 0; i < x->size; i++) CHECK(y->data[i] == (x->data[i] > 0 ? x->data[i] : 0.f));
        nb_gradcheck("relu", f_relu, &x, 1, NULL, 1e-3f, 1e-3f);
        nb_hvpcheck("relu(x) x", f_relu_x, &x, 1, NULL, 1e-3f, 2e-3f);
        nb_tensor_free(x);
    }
    /* NaN must reach the loss (so a NaN check can name its op), -inf is 0. */
    nb_tensor *z = nb_relu(nb_from_data(NB_SHAPE(3), (float[]){NAN, -INFINITY, INFINITY}));
    CHECK(isnan(z->data[0]) && z->data[1] == 0.f && z->data[2] == INFINITY);
    nb_tensor *l = nb_leaky_relu(nb_from_data(NB_SHAPE(1), (float[]){NAN}), 0.1f);
    CHECK(isnan(l->data[0]));
}

TEST(test_eq_relu_family) {
    /* eq. 20: h = max(0, z) + a min(0, z); dh/dz = 1 (z > 0) or a (z < 0). */
    nb_tensor *z = nb_test_param(NB_SHAPE(5, 3, 7), 1.5f); /* [N, C, L], C = 3 */
    away_from_zero(z, 0.05f);
    nb_tensor *R = nb_normal(NB_SHAPE(5, 3, 7), 0.f, 1.f, nb_test_rng());
    float alphas[3] = {0.01f, 0.3f, -0.7f};
    nb_tensor *slope = nb_tensor_from(NB_SHAPE(3), alphas);
    nb_requires_grad(slope, true);

    /* abs (a = -1), leaky (a = 0.01 and 0.2), ReLU (a = 0) */
    float fixed[] = {-1.f, 0.01f, 0.2f, 0.f};
    for (int k = 0; k < 4; k++) {
        float a = fixed[k];
        nb_tensor *h = a == -1.f ? nb_abs_rect(z) : nb_leaky_relu(z, a);
        nb_tensor *g;
        nb_grad(nb_sum_all(nb_mul(h, R)), &z, 1, &g, false);
        for (int64_t i = 0; i < z->size; i++) {
            double zi = z->data[i];
            CHECK_NEAR(h->data[i], eq20(zi, a), 1e-7);
            CHECK_NEAR(g->data[i], R->data[i] * (zi > 0 ? 1.0 : a), 1e-7);
        }
    }
    /* abs_rect is |z| and leaky with a = 0 is ReLU, exactly. */
    nb_tensor *ar = nb_abs_rect(z), *ab = nb_abs(z), *l0 = nb_leaky_relu(z, 0.f), *r0 = nb_relu(z);
    CHECK(memcmp(ar->data, ab->data, sizeof(float) * (size_t)z->size) == 0);
    for (int64_t i = 0; i < z->size; i++) CHECK(l0->data[i] == r0->data[i]); /* -0 == 0 */

    /* PReLU, one slope per channel: value, dh/dz, and dL/da_c = sum of
     * R min(0, z) over the positions of channel c. */
    nb_tensor *h = nb_prelu(z, slope);
    nb_tensor *wrt[2] = {z, slope}, *g[2];
    nb_grad(nb_sum_all(nb_mul(h, R)), wrt, 2, g, false);
    double ga[3] = {0, 0, 0};
    for (int64_t i = 0; i < z->size; i++) {
        int c = (int)(i / 7 % 3);
        double zi = z->data[i], a = alphas[c];
        CHECK_NEAR(h->data[i], eq20(zi, a), 1e-7);
        CHECK_NEAR(g[0]->data[i], R->data[i] * (zi > 0 ? 1.0 : a), 1e-7);
        ga[c] += R->data[i] * fmin(0.0, zi);
    }
    CHECK(g[1]->ndim == 1 && g[1]->shape[0] == 3);
    for (int c = 0; c < 3; c++) CHECK_NEAR(g[1]->data[c], ga[c], 1e-5);

    /* The same equations through finite differences, first and second order. */
    float fa = 0.2f;
    nb_gradcheck("leaky", f_leaky, &z, 1, &fa, 1e-3f, 1e-3f);
    nb_hvpcheck("leaky^2", f_leaky_sq, &z, 1, &fa, 1e-3f, 2e-3f);
    nb_gradcheck("abs_rect", f_abs_rect, &z, 1, NULL, 1e-3f, 1e-3f);
    nb_hvpcheck("abs_rect(z) z", f_abs_rect_x, &z, 1, NULL, 1e-3f, 2e-3f);
    nb_gradcheck("prelu per channel", f_prelu, wrt, 2, NULL, 1e-3f, 1e-3f);
    nb_hvpcheck("prelu per channel", f_prelu, wrt, 2, NULL, 1e-3f, 2e-3f);
    nb_hvpcheck("prelu^2 per channel", f_prelu_sq, wrt, 2, NULL, 1e-3f, 2e-3f);
    nb_tensor_free(z);
    nb_tensor_free(slope);
}

TEST(test_activation_prelu_shapes_and_shared_slope) {
    /* NCHW with odd sizes and a per-channel slope; [N, C]; and one slope
     * shared by every element of a 3-D tensor. */
    int64_t xs[][4] = {{3, 5, 3, 7}, {7, 5, 1, 1}, {2, 3, 5, 1}};
    int nds[] = {4, 2, 3};
    int64_t ns[] = {5, 5, 1};
    for (int s = 0; s < 3; s++) {
        nb_tensor *in[2] = {nb_test_param(nds[s], xs[s], 1.f), nb_test_param(NB_SHAPE(ns[s]), 0.3f)};
        away_from_zero(in[0], 0.05f);
        char what[48];
        snprintf(what, sizeof what, "prelu shape #%d", s);
        nb_gradcheck(what, f_prelu, in, 2, NULL, 1e-3f, 1e-3f);
        nb_hvpcheck(what, f_prelu_sq, in, 2, NULL, 1e-3f, 2e-3f);
        nb_tensor_free(in[0]);
        nb_tensor_free(in[1]);
    }
}

TEST(test_activation_softmax_along_a_middle_axis_shifts_by_the_true_maximum) {
    /* Channels of [1, 3, 2]: the maximum 1000 sits in the second channel;
     * unshifted by it, e^1000 overflows and the result is NaN. */
    nb_tensor *x = nb_from_data(NB_SHAPE(1, 3, 2), (float[]){0.f, 1000.f, 1000.f, 0.f, 0.f, 0.f});
    nb_tensor *y = nb_softmax(x, 1), *l = nb_log_softmax(x, 1);
    float want[] = {0.f, 1.f, 1.f, 0.f, 0.f, 0.f};
    for (int i = 0; i < 6; i++) CHECK_NEAR(y->data[i], want[i], 1e-6);
    CHECK_NEAR(l->data[2], 0.0, 1e-6);
    CHECK_NEAR(l->data[0], -1000.0, 1e-3);
    nb_arena_reset();
}

TEST(test_activation_rectifier_gradients_at_zero_take_the_slope) {
    /* At x = 0 the rules take the slope branch, as PyTorch's do (x > 0 ? g
     * : a g): 0 for ReLU, the slope for leaky ReLU and PReLU. */
    nb_tensor *z = nb_tensor_from(NB_SHAPE(3), (float[]){0.f, 2.f, -2.f});
    nb_requires_grad(z, true);
    for (int k = 0; k < 2; k++) {
        nb_tensor *h = k ? nb_leaky_relu(z, 0.1f) : nb_relu(z);
        nb_backward(nb_sum_all(h));
        float a = k ? 0.1f : 0.f;
        CHECK(z->grad->data[0] == a && z->grad->data[1] == 1.f && z->grad->data[2] == a);
        nb_zero_grad(z);
        nb_arena_reset(); /* the tape refers to z: gone before z is */
    }
    nb_tensor_free(z);
    nb_tensor *x = nb_tensor_from(NB_SHAPE(1, 3), (float[]){0.f, 1.f, -1.f});
    nb_tensor *a = nb_tensor_from(NB_SHAPE(1), (float[]){0.3f});
    nb_requires_grad(x, true);
    nb_requires_grad(a, true);
    nb_backward(nb_sum_all(nb_mul(nb_prelu(x, a), nb_from_data(NB_SHAPE(1, 3), (float[]){2.f, 3.f, 5.f}))));
    CHECK_NEAR(x->grad->data[0], 0.6, 1e-7);
    CHECK_NEAR(x->grad->data[1], 3.0, 1e-7);
    CHECK_NEAR(x->grad->data[2], 1.5, 1e-7);
    CHECK_NEAR(a->grad->data[0], -5.0, 1e-7);
    nb_arena_reset();
    nb_tensor_free(x);
    nb_tensor_free(a);
}

/* --- sigmoid, tanh ------------------------------------------------------- */

static nb_tensor *f_sigmoid(nb_tensor **in, void *c) { return nb_sigmoid(in[0]); }
static nb_tensor *f_tanh(nb_tensor **in, void *c) { return nb_tanh(in[0]); }

/* |got - want| within a few float ulps of want (or of the smallest
 * subnormal, for results that underflow). */
static bool close_ulps(float got, double want) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= 6e-7 * fabs(want) + 2e-45;
}

TEST(test_activation_sigmoid_tanh_accuracy_and_stability) {
    /* A dense grid, the tails where the naive formulas overflow, tiny inputs
     * where 1 - 2/(e^2x + 1) would cancel, and a length above NB_PAR_MIN so
     * the threaded path runs too. */
    int64_t n = 120001;
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < 6000; i++) v[i] = -30.f + 0.01f * (float)i;
    float special[] = {0.f, -0.f, 1e-30f, -1e-30f, 1e-6f, -3e-4f, 0.6249f, 0.6251f, -0.625f, 9.f, 20.f, 50.f,
                       -87.f, -88.5f, 88.7f, -100.f, 100.f, -1e4f, 1e4f, -104.5f, 200.f, INFINITY, -INFINITY, NAN};
    int ns = (int)(sizeof special / sizeof *special);
    for (int i = 0; i < ns; i++) v[6000 + i] = special[i];
    for (int64_t i = 6000 + ns; i < n; i++) v[i] = (float)(nb_rng_normal(nb_test_rng()) * 6.0);
    nb_tensor *x = nb_from_data(NB_SHAPE(n), v);
    nb_tensor *s = nb_sigmoid(x), *t = nb_tanh(x);
    int bad_s = 0, bad_t = 0;
    for (int64_t i = 0; i < n; i++) {
        double xi = v[i];
        double rs = isnan(xi) ? NAN : 1.0 / (1.0 + exp(-xi));
        if (!close_ulps(s->data[i], rs) && bad_s++ < 5) CHECK_MSG(0, "sigmoid(%g) = %.9g, want %.9g", xi, s->data[i], rs);
        if (!close_ulps(t->data[i], tanh(xi)) && bad_t++ < 5)
            CHECK_MSG(0, "tanh(%g) = %.9g, want %.9g", xi, t->data[i], tanh(xi));
    }
    /* Exact limits: no NaN from inf/inf, and the range stays in [0, 1]. */
    CHECK(nb_item(nb_sigmoid(nb_scalar(1e4f))) == 1.f && nb_item(nb_sigmoid(nb_scalar(-1e4f))) == 0.f);
    CHECK(nb_item(nb_tanh(nb_scalar(1e4f))) == 1.f && nb_item(nb_tanh(nb_scalar(-1e4f))) == -1.f);
    free(v);

    int64_t shapes[][3] = {{5, 7, 1}, {3, 4, 5}};
    int nds[] = {2, 3};
    for (int k = 0; k < 2; k++) {
        nb_tensor *p = nb_test_param(nds[k], shapes[k], 2.f);
        nb_gradcheck("sigmoid", f_sigmoid, &p, 1, NULL, 1e-2f, 2e-3f);
        nb_hvpcheck("sigmoid", f_sigmoid, &p, 1, NULL, 1e-2f, 5e-3f);
        nb_gradcheck("tanh", f_tanh, &p, 1, NULL, 1e-2f, 2e-3f);
        nb_hvpcheck("tanh", f_tanh, &p, 1, NULL, 1e-2f, 5e-3f);
        nb_tensor_free(p);
    }
}

TEST(test_activation_threaded_path_matches_scalar) {
    /* Above NB_PAR_MIN the kernels run on OpenMP threads; every element
     * must still be the scalar result. */
    nb_tensor *x = nb_normal(NB_SHAPE(3, 70001), 0.f, 3.f, nb_test_rng());
    nb_tensor *r = nb_relu(x), *l = nb_leaky_relu(x, 0.1f), *a = nb_abs_rect(x);
    nb_tensor *slope = nb_from_data(NB_SHAPE(1), (float[]){0.25f});
    nb_tensor *p = nb_prelu(x, slope);
    for (int64_t i = 0; i < x->size; i++) {
        float v = x->data[i];
        CHECK(r->data[i] == (v > 0 ? v : 0.f));
        CHECK(l->data[i] == (v > 0 ? v : 0.1f * v));
        CHECK(a->data[i] == fabsf(v));
        CHECK(p->data[i] == (v > 0 ? v : 0.25f * v));
    }
}

/* --- softmax, log-softmax ------------------------------------------------ */

typedef struct { int axis; } axis_ctx;
static nb_tensor *f_softmax(nb_tensor **in, void *c) { return nb_softmax(in[0], ((axis_ctx *)c)->axis); }
static nb_tensor *f_log_softmax(nb_tensor **in, void *c) { return nb_log_softmax(in[0], ((axis_ctx *)c)->axis); }

/* Naive softmax / log-softmax in double along axis a of x, as
 * [outer, C, inner]; out[...] compared with `got`. Returns the worst error. */
static double softmax_err(const nb_tensor *x, int a, const nb_tensor *got, bool want_log) {
    int64_t outer = 1, C = x->shape[a], inner = 1;
    for (int k = 0; k < a; k++) outer *= x->shape[k];
    for (int k = a + 1; k < x->ndim; k++) inner *= x->shape[k];
    double worst = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *xp = x->data + o * C * inner + j;
            double m = -INFINITY, s = 0;
            for (int64_t c = 0; c < C; c++) m = fmax(m, xp[c * inner]);
            for (int64_t c = 0; c < C; c++) s += exp(xp[c * inner] - m);
            for (int64_t c = 0; c < C; c++) {
                double want = want_log ? xp[c * inner] - m - log(s) : exp(xp[c * inner] - m) / s;
                double e = fabs(got->data[o * C * inner + c * inner + j] - want) / fmax(1.0, fabs(want));
                if (!(e <= worst)) worst = e;
            }
        }
    return worst;
}

TEST(test_activation_softmax_log_softmax_values_grad_and_hvp) {
    int64_t shapes[][3] = {{3, 5, 1}, {2, 7, 3}, {4, 3, 5}, {1, 1, 1}, {6, 9, 1}};
    int nds[] = {2, 3, 3, 1, 2};
    int axes[] = {-1, 1, 0, 0, 0};
    for (int s = 0; s < 5; s++) {
        nb_tensor *x = nb_test_param(nds[s], shapes[s], 2.f);
        axis_ctx c = {axes[s]};
        int a = axes[s] < 0 ? axes[s] + nds[s] : axes[s];
        nb_tensor *y = nb_softmax(x, c.axis), *ly = nb_log_softmax(x, c.axis);
        CHECK(softmax_err(x, a, y, false) < 5e-7);
        CHECK(softmax_err(x, a, ly, true) < 1e-6);
        char what[48];
        snprintf(what, sizeof what, "softmax shape #%d", s);
        nb_gradcheck(what, f_softmax, &x, 1, &c, 1e-2f, 2e-3f);
        nb_hvpcheck(what, f_softmax, &x, 1, &c, 1e-2f, 5e-3f);
        snprintf(what, sizeof what, "log_softmax shape #%d", s);
        nb_gradcheck(what, f_log_softmax, &x, 1, &c, 1e-2f, 2e-3f);
        nb_hvpcheck(what, f_log_softmax, &x, 1, &c, 1e-2f, 5e-3f);
        nb_tensor_free(x);
    }
}

/* The gradient of sum R * f(x)^3, built with create_graph, as a function of
 * x, for f softmax, log-softmax (along the last axis, the fused kernel, and
 * axis 0, the composite), sigmoid and tanh: checking its gradient and
 * Hessian runs the backward rules of the fused gradient ops (softmax_grad,
 * log_softmax_grad, sigmoid_grad, tanh_grad), and those of the ops the rules
 * are made of (third derivatives). */
enum { F_SOFTMAX, F_LOG_SOFTMAX, F_SIGMOID, F_TANH };
static const char *fname[] = {"softmax", "log_softmax", "sigmoid", "tanh"};
typedef struct { int kind, axis; nb_tensor *R; } fgrad_ctx;

static nb_tensor *f_grad_of(nb_tensor **in, void *ctx) {
    fgrad_ctx *c = ctx;
    bool old = nb_set_grad_enabled(true);
    nb_tensor *x = in[0];
    nb_tensor *y = c->kind == F_SOFTMAX       ? nb_softmax(x, c->axis)
                   : c->kind == F_LOG_SOFTMAX ? nb_log_softmax(x, c->axis)
                   : c->kind == F_SIGMOID     ? nb_sigmoid(x)
                                              : nb_tanh(x);
    nb_tensor *L = nb_sum_all(nb_mul(nb_mul(nb_mul(y, y), y), nb_detach(c->R))), *g;
    nb_grad(L, in, 1, &g, true);
    nb_set_grad_enabled(old);
    return g;
}

TEST(test_activation_grad_of_grad) {
    for (int kind = 0; kind < 4; kind++)
        for (int axis = -1; axis < (kind <= F_LOG_SOFTMAX ? 1 : 0); axis++) {
            nb_tensor *x = nb_test_param(NB_SHAPE(3, 7), 1.5f);
            fgrad_ctx c = {kind, axis, nb_test_param(NB_SHAPE(3, 7), 1.f)};
            char what[64];
            snprintf(what, sizeof what, "grad of %s, axis %d", fname[kind], axis);
            nb_gradcheck(what, f_grad_of, &x, 1, &c, 1e-2f, 5e-3f);
            nb_hvpcheck(what, f_grad_of, &x, 1, &c, 1e-2f, 1e-2f);
            nb_tensor_free(c.R);
            nb_tensor_free(x);
        }
}

TEST(test_activation_softmax_huge_logits_and_threaded_paths) {
    /* Logits of 1e4: e^x overflows without the max subtraction. */
    float v[] = {1e4f, -1e4f, 0.f, 1e4f - 1.f, -1e4f, 1e4f, 3.f, 2.f};
    nb_tensor *x = nb_from_data(NB_SHAPE(2, 4), v);
    nb_requires_grad(x, true);
    nb_tensor *y = nb_softmax(x, 1), *ly = nb_log_softmax(x, 1);
    for (int i = 0; i < 8; i++) CHECK(isfinite(y->data[i]) && isfinite(ly->data[i]));
    CHECK(softmax_err(x, 1, y, false) < 5e-7);
    CHECK(softmax_err(x, 1, ly, true) < 1e-6);
    CHECK_NEAR(ly->data[1], -2e4 - log1p(exp(-1.0)), 1e-6);
    nb_tensor *g;
    nb_grad(nb_sum_all(nb_mul(ly, nb_from_data(NB_SHAPE(2, 4), (float[]){1, 2, 3, 4, 5, 6, 7, 8}))), &x, 1, &g, false);
    for (int i = 0; i < 8; i++) CHECK(isfinite(g->data[i]));
    /* A NaN logit poisons its own row only, in both kernels. */
    nb_tensor *nx = nb_from_data(NB_SHAPE(2, 3), (float[]){1.f, NAN, 2.f, 1.f, 2.f, 3.f});
    nb_tensor *ns = nb_softmax(nx, 1), *nl = nb_log_softmax(nx, 0);
    for (int i = 0; i < 3; i++) CHECK(isnan(ns->data[i]) && !isnan(ns->data[3 + i]));
    CHECK(isnan(nl->data[1]) && isnan(nl->data[4]) && !isnan(nl->data[0]) && !isnan(nl->data[5]));

    /* Rows and a middle axis big enough for the OpenMP paths. */
    nb_tensor *big = nb_normal(NB_SHAPE(37, 1001), 0.f, 5.f, nb_test_rng());
    CHECK(softmax_err(big, 1, nb_softmax(big, -1), false) < 5e-7);
    CHECK(softmax_err(big, 1, nb_log_softmax(big, -1), true) < 2e-6);
    nb_tensor *nchw = nb_normal(NB_SHAPE(3, 11, 37, 29), 0.f, 5.f, nb_test_rng());
    CHECK(softmax_err(nchw, 1, nb_softmax(nchw, 1), false) < 5e-7);
    CHECK(softmax_err(nchw, 1, nb_log_softmax(nchw, 1), true) < 2e-6);
}

/* --- dropout -------------------------------------------------------------- */

TEST(test_dropout_mean_zero_fraction_and_scale) {
    float p = 0.3f;
    nb_tensor *x = nb_ones(NB_SHAPE(1000, 1001));
    nb_rng r;
    nb_rng_seed(&r, 99, 3);
    nb_tensor *y = nb_dropout(x, p, true, &r);
    int64_t zeros = 0;
    double sum = 0;
    bool scaled = true;
    for (int64_t i = 0; i < y->size; i++) {
        zeros += y->data[i] == 0.f;
        sum += y->data[i];
        scaled &= y->data[i] == 0.f || y->data[i] == 1.f / (1.f - p);
    }
    CHECK(scaled);
    /* Bernoulli(0.3) over 1e6 elements: std of the fraction ~ 4.6e-4, of the
     * mean ~ 6.5e-4; the tolerances are > 6 sigma. */
    CHECK_NEAR((double)zeros / (double)y->size, p, 3e-3);
    CHECK_NEAR(sum / (double)y->size, 1.0, 4e-3);

    /* Same seed, same mask; evaluation and p = 0 are the identity. */
    nb_rng_seed(&r, 99, 3);
    nb_tensor *y2 = nb_dropout(x, p, true, &r);
    CHECK(memcmp(y->data, y2->data, sizeof(float) * (size_t)y->size) == 0);
    CHECK(nb_dropout(x, p, false, &r) == x);
    CHECK(nb_dropout(x, 0.f, true, &r) == x);
    /* NULL means the global generator. */
    nb_tensor *y3 = nb_dropout(nb_ones(NB_SHAPE(100)), 0.5f, true, NULL);
    int z3 = 0;
    for (int i = 0; i < 100; i++) z3 += y3->data[i] == 0.f;
    CHECK(z3 > 20 && z3 < 80);
}

/* Dropout with its generator reseeded on every call, so that finite
 * differences see the same mask as the autodiff pass. */
static nb_tensor *f_dropout_sq(nb_tensor **in, void *c) {
    nb_rng r;
    nb_rng_seed(&r, 5, 5);
    return nb_square(nb_dropout(in[0], 0.4f, true, &r));
}

TEST(test_dropout_backward_uses_the_forward_mask) {
    nb_tensor *x = nb_test_param(NB_SHAPE(7, 13), 1.f);
    away_from_zero(x, 0.01f);
    nb_rng r;
    nb_rng_seed(&r, 11, 0);
    nb_tensor *y = nb_dropout(x, 0.5f, true, &r);
    nb_tensor *R = nb_normal(NB_SHAPE(7, 13), 0.f, 1.f, nb_test_rng());
    nb_tensor *g;
    nb_grad(nb_sum_all(nb_mul(y, R)), &x, 1, &g, false);
    int dropped = 0;
    for (int64_t i = 0; i < x->size; i++) {
        bool kept = y->data[i] != 0.f;
        dropped += !kept;
        CHECK(g->data[i] == (kept ? 2.f * R->data[i] : 0.f));
        if (kept) CHECK(y->data[i] == 2.f * x->data[i]);
    }
    CHECK(dropped > 10 && dropped < 81);
    nb_gradcheck("dropout^2", f_dropout_sq, &x, 1, NULL, 1e-3f, 2e-3f);
    nb_hvpcheck("dropout^2", f_dropout_sq, &x, 1, NULL, 1e-3f, 2e-3f);
    nb_tensor_free(x);
}
