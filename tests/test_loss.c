/* test_loss.c — cross-entropy (eq. 10.12, 10.18), MSE and binary
 * cross-entropy from logits (eq. 29): values against naive double-precision
 * formulas, stability for huge logits, gradients and Hessian-vector
 * products, and the fatal errors of bad labels and arguments. */
#include "test.h"
#include <stdlib.h>

/* Naive -log softmax(o_i)[y_i] averaged over rows, in double. */
static double naive_ce(const float *o, const int32_t *y, int64_t N, int64_t C) {
    double total = 0;
    for (int64_t i = 0; i < N; i++) {
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += exp((double)o[i * C + c]);
        total += -log(exp((double)o[i * C + y[i]]) / s);
    }
    return total / (double)N;
}

static nb_tensor *f_ce(nb_tensor **in, void *c) { return nb_cross_entropy(in[0], c); }
/* CE squared: its Hessian also has the outer product of the gradient, so
 * the double-backward path through g is exercised too. */
static nb_tensor *f_ce_sq(nb_tensor **in, void *c) { return nb_square(nb_cross_entropy(in[0], c)); }

TEST(test_loss_cross_entropy_matches_naive_double) {
    int64_t sizes[][2] = {{7, 5}, {1, 3}, {13, 11}, {4, 1}};
    for (int s = 0; s < 4; s++) {
        int64_t N = sizes[s][0], C = sizes[s][1];
        nb_tensor *o = nb_test_param(NB_SHAPE(N, C), 3.f);
        int32_t y[16];
        for (int64_t i = 0; i < N; i++) y[i] = (int32_t)nb_rng_below(nb_test_rng(), (uint32_t)C);
        nb_tensor *L = nb_cross_entropy(o, y);
        CHECK(L->ndim == 0);
        CHECK_NEAR(nb_item(L), naive_ce(o->data, y, N, C), 1e-6);
        /* eq. 10.12: the same number as -log of the softmax op's output. */
        nb_tensor *ls = nb_log_softmax(o, 1);
        double via_op = 0;
        for (int64_t i = 0; i < N; i++) via_op -= ls->data[i * C + y[i]];
        CHECK_NEAR(nb_item(L), via_op / (double)N, 1e-6);
        nb_gradcheck("cross_entropy", f_ce, &o, 1, y, 1e-2f, 2e-3f);
        nb_hvpcheck("cross_entropy", f_ce, &o, 1, y, 1e-2f, 5e-3f);
        nb_hvpcheck("cross_entropy^2", f_ce_sq, &o, 1, y, 1e-2f, 5e-3f);
        nb_tensor_free(o);
    }
}

/* The gradient of 3 CE(o)^2 with respect to the logits, built with
 * create_graph: its gradient and Hessian run the backward of the fused
 * cross_entropy_grad op through both of its inputs (o, and the upstream
 * factor 6 CE, which depends on o). */
static nb_tensor *f_ce_grad(nb_tensor **in, void *c) {
    bool old = nb_set_grad_enabled(true);
    nb_tensor *L = nb_mul_scalar(nb_square(nb_cross_entropy(in[0], c)), 3.f), *g;
    nb_grad(L, in, 1, &g, true);
    nb_set_grad_enabled(old);
    return g;
}

TEST(test_loss_cross_entropy_grad_of_grad) {
    int64_t N = 4, C = 6;
    nb_tensor *o = nb_test_param(NB_SHAPE(N, C), 2.f);
    int32_t y[4] = {5, 0, 2, 2};
    nb_gradcheck("grad of cross_entropy", f_ce_grad, &o, 1, y, 1e-2f, 5e-3f);
    nb_hvpcheck("grad of cross_entropy", f_ce_grad, &o, 1, y, 1e-2f, 1e-2f);
    nb_tensor_free(o);
}

TEST(test_eq_10_18) {
    /* dL/do = softmax(o) - onehot(y), per row, divided by N for the mean;
     * with an upstream factor (L' = 2.5 L) the gradient scales with it. */
    int64_t N = 5, C = 7;
    nb_tensor *o = nb_test_param(NB_SHAPE(N, C), 2.f);
    int32_t y[5] = {0, 6, 3, 3, 1};
    for (int pass = 0; pass < 2; pass++) {
        double scale = pass ? 2.5 : 1.0;
        nb_tensor *L = nb_cross_entropy(o, y);
        if (pass) L = nb_mul_scalar(L, 2.5f);
        nb_tensor *g;
        nb_grad(L, &o, 1, &g, false);
        for (int64_t i = 0; i < N; i++) {
            double m = -INFINITY, s = 0;
            for (int64_t c = 0; c < C; c++) m = fmax(m, o->data[i * C + c]);
            for (int64_t c = 0; c < C; c++) s += exp(o->data[i * C + c] - m);
            for (int64_t c = 0; c < C; c++) {
                double hand = (exp(o->data[i * C + c] - m) / s - (c == y[i])) * scale / (double)N;
                CHECK_NEAR(g->data[i * C + c], hand, 1e-6);
            }
        }
    }
    /* Against autodiff through the composed ops -mean(log_softmax[y]). */
    nb_tensor *ls = nb_log_softmax(o, 1);
    nb_tensor *onehot = nb_zeros(NB_SHAPE(N, C));
    for (int64_t i = 0; i < N; i++) onehot->data[i * C + y[i]] = -1.f / (float)N;
    nb_tensor *gc, *gf;
    nb_grad(nb_sum_all(nb_mul(ls, onehot)), &o, 1, &gc, false);
    nb_grad(nb_cross_entropy(o, y), &o, 1, &gf, false);
    CHECK(nb_test_maxrel(gf->data, gc->data, N * C) < 1e-6);
    nb_tensor_free(o);
}

TEST(test_loss_cross_entropy_huge_logits_stay_finite) {
    /* Logits of 1e4: exp overflows a float (and a double) without the
     * log-sum-exp shift. */
    float o[] = {1e4f, -1e4f, 0.f, -1e4f, 1e4f, 1e4f, 5e3f, -5e3f, 1e4f};
    nb_tensor *x = nb_from_data(NB_SHAPE(3, 3), o);
    nb_requires_grad(x, true);
    int32_t y[3] = {0, 0, 1};
    /* the row's maximum in its second entry: the max must scan every entry */
    CHECK_NEAR(nb_item(nb_cross_entropy(nb_from_data(NB_SHAPE(1, 3), (float[]){0.f, 1e4f, 0.f}), (int32_t[]){1})), 0.0, 1e-6);
    nb_tensor *L = nb_cross_entropy(x, y);
    /* row 0: 0; row 1: 2e4 + log 2; row 2: 1.5e4 */
    CHECK(isfinite(nb_item(L)));
    CHECK_NEAR(nb_item(L), (0.0 + 2e4 + log(2.0) + 1.5e4) / 3.0, 1e-6);
    nb_tensor *g;
    nb_grad(L, &x, 1, &g, false);
    for (int i = 0; i < 9; i++) CHECK(isfinite(g->data[i]));
    CHECK_NEAR(g->data[0], 0.0, 1e-7);
    CHECK_NEAR(g->data[3], -1.0 / 3.0, 1e-6);
    CHECK_NEAR(g->data[4], 0.5 / 3.0, 1e-6);
}

/* --- MSE ------------------------------------------------------------------ */

static nb_tensor *f_mse(nb_tensor **in, void *c) { return nb_mse(in[0], in[1]); }
static nb_tensor *f_mse_sq(nb_tensor **in, void *c) { return nb_square(nb_mse(in[0], in[1])); }

TEST(test_loss_mse_value_grad_and_hvp) {
    int64_t shapes[][3] = {{3, 5, 1}, {2, 3, 7}, {11, 1, 1}};
    int nds[] = {2, 3, 1};
    for (int s = 0; s < 3; s++) {
        nb_tensor *in[2] = {nb_test_param(nds[s], shapes[s], 1.f), nb_test_param(nds[s], shapes[s], 1.f)};
        double want = 0;
        for (int64_t i = 0; i < in[0]->size; i++) want += pow((double)in[0]->data[i] - in[1]->data[i], 2.0);
        want /= (double)in[0]->size;
        CHECK_NEAR(nb_item(nb_mse(in[0], in[1])), want, 1e-6);
        nb_gradcheck("mse", f_mse, in, 2, NULL, 1e-2f, 2e-3f);
        nb_hvpcheck("mse", f_mse, in, 2, NULL, 1e-2f, 5e-3f);
        nb_hvpcheck("mse^2", f_mse_sq, in, 2, NULL, 1e-2f, 5e-3f);
        nb_tensor_free(in[0]);
        nb_tensor_free(in[1]);
    }
}

/* --- binary cross-entropy from logits (eq. 29) ---------------------------- */

static nb_tensor *f_bce(nb_tensor **in, void *c) { return nb_bce_logits(in[0], in[1]); }
static nb_tensor *f_bce_sq(nb_tensor **in, void *c) { return nb_square(nb_bce_logits(in[0], in[1])); }

/* eq. 29 as the notes write it, y' = sigmoid(z), in double. */
static double eq29(double z, double y) {
    double yp = 1.0 / (1.0 + exp(-z));
    return -y * log(yp) - (1.0 - y) * log(1.0 - yp);
}

TEST(test_eq_29) {
    /* Moderate logits: the stable form equals eq. 29 literally. */
    int64_t M = 3 * 7;
    nb_tensor *z = nb_test_param(NB_SHAPE(3, 7), 2.f);
    nb_tensor *y = nb_tensor_new(NB_SHAPE(3, 7));
    for (int64_t i = 0; i < M; i++) y->data[i] = i % 3 == 2 ? 0.3f : (float)(i % 2); /* hard and soft labels */
    nb_requires_grad(y, true);
    double want = 0;
    for (int64_t i = 0; i < M; i++) want += eq29(z->data[i], y->data[i]);
    nb_tensor *L = nb_bce_logits(z, y);
    CHECK_NEAR(nb_item(L), want / (double)M, 1e-6);
    /* dL/dz = (sigmoid(z) - y) / M, dL/dy = -z / M */
    nb_tensor *wrt[2] = {z, y}, *g[2];
    nb_grad(L, wrt, 2, g, false);
    for (int64_t i = 0; i < M; i++) {
        double zi = z->data[i];
        CHECK_NEAR(g[0]->data[i], (1.0 / (1.0 + exp(-zi)) - y->data[i]) / (double)M, 1e-7);
        CHECK_NEAR(g[1]->data[i], -zi / (double)M, 1e-7);
    }
    nb_gradcheck("bce_logits", f_bce, wrt, 2, NULL, 1e-2f, 2e-3f);
    nb_hvpcheck("bce_logits", f_bce, wrt, 2, NULL, 1e-2f, 5e-3f);
    nb_hvpcheck("bce_logits^2", f_bce_sq, wrt, 2, NULL, 1e-2f, 5e-3f);

    /* |z| = 100: sigmoid is 1 or 3.7e-44 and eq. 29 literally would take
     * log(0); the stable form gives the exact limits. */
    nb_tensor *zz = nb_from_data(NB_SHAPE(4), (float[]){100.f, -100.f, 100.f, -100.f});
    nb_tensor *yy = nb_from_data(NB_SHAPE(4), (float[]){0.f, 1.f, 1.f, 0.f});
    nb_requires_grad(zz, true);
    nb_tensor *L2 = nb_bce_logits(zz, yy);
    CHECK(isfinite(nb_item(L2)));
    CHECK_NEAR(nb_item(L2), (100.0 + 100.0 + 2.0 * log1p(exp(-100.0))) / 4.0, 1e-6);
    nb_tensor *g2;
    nb_grad(L2, &zz, 1, &g2, false);
    float want_g[4] = {0.25f, -0.25f, 0.f, 0.f};
    for (int i = 0; i < 4; i++) CHECK(isfinite(g2->data[i]) && fabsf(g2->data[i] - want_g[i]) < 1e-7f);
    nb_tensor_free(z);
    nb_tensor_free(y);
}

/* --- fatal errors ---------------------------------------------------------
 * Programmer errors abort (nb_fatal). Each case runs in a forked child whose
 * stderr goes to a pipe; the parent checks that it aborted and that the
 * message names the op and the culprit. */

static void ce_label_too_big(void *unused) {
    nb_tensor *o = nb_zeros(NB_SHAPE(3, 4));
    nb_cross_entropy(o, (int32_t[]){0, 4, 1});
}
static void ce_label_negative(void *unused) {
    nb_tensor *o = nb_zeros(NB_SHAPE(2, 4));
    nb_cross_entropy(o, (int32_t[]){1, -1});
}
static void ce_not_2d(void *unused) { nb_cross_entropy(nb_zeros(NB_SHAPE(2, 3, 4)), (int32_t[]){0, 0}); }
static void mse_shapes(void *unused) { nb_mse(nb_zeros(NB_SHAPE(2, 3)), nb_zeros(NB_SHAPE(3, 2))); }
static void ce_no_rows(void *unused) { nb_cross_entropy(nb_zeros(NB_SHAPE(0, 3)), NULL); }
static void mse_empty(void *unused) { nb_mse(nb_zeros(NB_SHAPE(0, 3)), nb_zeros(NB_SHAPE(0, 3))); }
static void bce_empty(void *unused) { nb_bce_logits(nb_zeros(NB_SHAPE(0)), nb_zeros(NB_SHAPE(0))); }
static void bce_shapes(void *unused) { nb_bce_logits(nb_zeros(NB_SHAPE(4)), nb_zeros(NB_SHAPE(5))); }
static void dropout_p_one(void *unused) { nb_dropout(nb_zeros(NB_SHAPE(4)), 1.f, true, NULL); }
static void dropout_p_negative(void *unused) { nb_dropout(nb_zeros(NB_SHAPE(4)), -0.1f, false, NULL); }
static void dropout_p_nan(void *unused) { nb_dropout(nb_zeros(NB_SHAPE(4)), NAN, true, NULL); }
static void prelu_bad_slope(void *unused) { nb_prelu(nb_zeros(NB_SHAPE(2, 3, 4)), nb_zeros(NB_SHAPE(4))); }
static void softmax_bad_axis(void *unused) { nb_softmax(nb_zeros(NB_SHAPE(2, 3)), 2); }

TEST(test_loss_and_activation_fatal_errors_name_the_culprit) {
    nb_test_expect_fatal("label too big", ce_label_too_big, NULL, (const char *[]){"cross_entropy", "label 4 of row 1", NULL});
    nb_test_expect_fatal("negative label", ce_label_negative, NULL, (const char *[]){"cross_entropy", "label -1 of row 1", NULL});
    nb_test_expect_fatal("3-D logits", ce_not_2d, NULL, (const char *[]){"cross_entropy", "[2, 3, 4]", NULL});
    nb_test_expect_fatal("mse shapes", mse_shapes, NULL, (const char *[]){"mse", "[3, 2]", NULL});
    nb_test_expect_fatal("bce shapes", bce_shapes, NULL, (const char *[]){"bce_logits", "[5]", NULL});
    /* The mean of no elements: 0 / 0, a NaN loss with no word of why. */
    nb_test_expect_fatal("ce no rows", ce_no_rows, NULL, (const char *[]){"cross_entropy", "[0, 3]", "N, C > 0", NULL});
    nb_test_expect_fatal("mse empty", mse_empty, NULL, (const char *[]){"mse", "mean of no elements", NULL});
    nb_test_expect_fatal("bce empty", bce_empty, NULL, (const char *[]){"bce_logits", "mean of no elements", NULL});
    nb_test_expect_fatal("dropout p = 1", dropout_p_one, NULL, (const char *[]){"dropout", "p = 1", NULL});
    nb_test_expect_fatal("dropout p < 0", dropout_p_negative, NULL, (const char *[]){"dropout", "p = -0.1", NULL});
    nb_test_expect_fatal("dropout p NaN", dropout_p_nan, NULL, (const char *[]){"dropout", "nan", NULL});
    nb_test_expect_fatal("prelu slope", prelu_bad_slope, NULL, (const char *[]){"prelu", "one per channel", NULL});
    nb_test_expect_fatal("softmax axis", softmax_bad_axis, NULL, (const char *[]){"softmax", "axis 2", NULL});
}
