/* test_core.c — tensors, the arena, the tape, broadcasting arithmetic and
 * matmul: gradients and Hessian-vector products against finite differences. */
#include "test.h"
#include <stdlib.h>
#include <string.h>

TEST(test_shape_overflow_is_rejected) {
    CHECK(nb_shape_numel(2, (int64_t[]){INT64_MAX / 2, 3}) == -1);
    CHECK(nb_shape_numel(2, (int64_t[]){-1, 3}) == -1);
    CHECK(nb_shape_numel(7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}) == -1);
    CHECK(nb_shape_numel(3, (int64_t[]){2, 3, 4}) == 24);
    CHECK(nb_shape_numel(0, NULL) == 1);
    /* Elements that fit int64 but whose bytes (4 each) would not. */
    CHECK(nb_shape_numel(1, (int64_t[]){INT64_MAX / 4 + 1}) == -1);
    CHECK(nb_shape_numel(1, (int64_t[]){INT64_MAX / 4}) == INT64_MAX / 4);
    CHECK(nb_shape_numel(2, (int64_t[]){0, INT64_MAX}) == 0);
}

/* Empty operands whose product would have 2^80 elements: the result's shape
 * overflows, and the message shows it (it named no shape before). */
static void matmul_result_overflows(void *c) {
    int64_t big = (int64_t)1 << 40;
    nb_matmul(nb_zeros(NB_SHAPE(big, 0)), nb_zeros(NB_SHAPE(0, big)));
}
/* Batch dims of different counts ([2, 5] against [2]): the one compared
 * pair agreed, and b was read as 10 matrices where it holds 2. */
static void matmul_batch_ndim_differs(void *c) { nb_matmul(nb_zeros(NB_SHAPE(2, 5, 4, 5)), nb_zeros(NB_SHAPE(2, 5, 6))); }
static void matmul_inner_differs(void *c) { nb_matmul(nb_zeros(NB_SHAPE(2, 5)), nb_zeros(NB_SHAPE(4, 3))); }
static void matmul_batch_larger(void *c) { nb_matmul(nb_zeros(NB_SHAPE(3, 4, 5)), nb_zeros(NB_SHAPE(2, 5, 6))); }
static void linear_bias_of_in(void *c) { nb_linear(nb_zeros(NB_SHAPE(2, 4)), nb_zeros(NB_SHAPE(3, 4)), nb_zeros(NB_SHAPE(4))); }
static void matmul_batch_differs(void *c) { nb_matmul(nb_zeros(NB_SHAPE(2, 4, 5)), nb_zeros(NB_SHAPE(3, 5, 6))); }
static void zeros_overflow(void *c) { nb_zeros(NB_SHAPE(INT64_MAX / 2, 4)); }

TEST(test_shape_overflow_is_fatal_with_the_shape) {
    nb_test_expect_fatal("matmul overflow", matmul_result_overflows, NULL,
                         (const char *[]){"invalid shape [1099511627776, 1099511627776]", NULL});
    nb_test_expect_fatal("zeros overflow", zeros_overflow, NULL, (const char *[]){"[4611686018427387903, 4]", NULL});
}

static void linear_in_differs(void *c) { nb_linear(nb_zeros(NB_SHAPE(2, 5)), nb_zeros(NB_SHAPE(3, 4)), NULL); }

TEST(test_matmul_and_linear_over_an_empty_inner_dimension_are_zero) {
    /* An empty sum is 0: [2, 0] x [0, 3], and a linear layer with no inputs. */
    nb_tensor *c = nb_matmul(nb_zeros(NB_SHAPE(2, 0)), nb_zeros(NB_SHAPE(0, 3)));
    CHECK(c->shape[0] == 2 && c->shape[1] == 3);
    for (int k = 0; k < 6; k++) CHECK(c->data[k] == 0.f);
    nb_tensor *y = nb_linear(nb_zeros(NB_SHAPE(2, 0)), nb_zeros(NB_SHAPE(3, 0)), NULL);
    for (int k = 0; k < 6; k++) CHECK(y->data[k] == 0.f);
    nb_tensor *yb = nb_linear(nb_zeros(NB_SHAPE(2, 0)), nb_zeros(NB_SHAPE(3, 0)), nb_full(NB_SHAPE(3), 0.5f));
    for (int k = 0; k < 6; k++) CHECK(yb->data[k] == 0.5f);
    nb_test_expect_fatal("linear in", linear_in_differs, NULL, (const char *[]){"linear", "differ in 'in'", NULL});
    nb_arena_reset();
}

TEST(test_matmul_refuses_batch_dims_that_differ) {
    nb_test_expect_fatal("matmul batch ndim", matmul_batch_ndim_differs, NULL,
                         (const char *[]){"matmul", "batch dimensions differ", "[2, 5, 4, 5]", "[2, 5, 6]", NULL});
    nb_test_expect_fatal("matmul batch", matmul_batch_differs, NULL,
                         (const char *[]){"matmul", "batch dimensions differ", NULL});
    nb_test_expect_fatal("matmul batch larger", matmul_batch_larger, NULL,
                         (const char *[]){"matmul", "batch dimensions differ", NULL});
    nb_test_expect_fatal("matmul inner", matmul_inner_differs, NULL, (const char *[]){"matmul", "inner dimensions differ", NULL});
    /* a bias of 'in' entries is not the fused layer's: a broadcast error, not a read past it */
    nb_test_expect_fatal("linear bias", linear_bias_of_in, NULL, (const char *[]){"add", "cannot broadcast", NULL});
}

/* A message that prefixes the one already there, as loaders do to name
 * their file: the old message was formatted from the buffer into itself
 * (undefined; glibc repeated the prefix and lost the rest). */
TEST(test_error_may_prefix_the_current_message) {
    nb_error("gamma must be in [0, 1], got %g", 1.99);
    nb_error("%s: %s", "/tmp/g.st", nb_errmsg());
    CHECK_MSG(!strcmp(nb_errmsg(), "/tmp/g.st: gamma must be in [0, 1], got 1.99"), "%s", nb_errmsg());
    nb_clear_error();
}

TEST(test_rng_is_deterministic_and_uniform) {
    nb_rng a, b;
    nb_rng_seed(&a, 7, 1);
    nb_rng_seed(&b, 7, 1);
    for (int i = 0; i < 100; i++) CHECK(nb_rng_u32(&a) == nb_rng_u32(&b));
    double s = 0, s2 = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = nb_rng_normal(&a);
        s += z;
        s2 += z * z;
    }
    CHECK_NEAR(s / n, 0.0, 0.01);
    CHECK_NEAR(s2 / n, 1.0, 0.02);
    int counts[5] = {0};
    for (int i = 0; i < 50000; i++) counts[nb_rng_below(&a, 5)]++;
    for (int k = 0; k < 5; k++) CHECK_NEAR(counts[k] / 50000.0, 0.2, 0.01);
}

static void rng_below_zero(void *c) { nb_rng_below(nb_global_rng(), 0); }

TEST(test_rng_below_zero_is_fatal) {
    /* It divided by zero (SIGFPE) in the rejection threshold. */
    nb_test_expect_fatal("rng_below(0)", rng_below_zero, NULL, (const char *[]){"rng_below", "got 0", NULL});
}

TEST(test_rng_state_as_text_round_trips_and_rejects_bad_text) {
    nb_rng a, b, keep;
    nb_rng_seed(&a, 0xdeadbeefcafeULL, 9);
    for (int i = 0; i < 3; i++) nb_rng_u32(&a);
    char t[NB_RNG_TEXT];
    nb_rng_to_text(&a, t);
    CHECK(strlen(t) == 33 && t[16] == ':');
    CHECK(nb_rng_from_text(t, &b) == 0 && b.state == a.state && b.inc == a.inc);
    for (int i = 0; i < 10; i++) CHECK(nb_rng_u32(&a) == nb_rng_u32(&b)); /* the same stream goes on */
    keep = b;
    const char *bad[] = {NULL, "", "12", "0000000000000001:0000000000000002" /* even */,
                         "0000000000000001:0000000000000003x", "00000000000000001:0000000000000003" /* 17 digits */,
                         "zz:01"};
    for (int i = 0; i < 7; i++) {
        CHECK_MSG(nb_rng_from_text(bad[i], &b) == -1, "accepted '%s'", bad[i] ? bad[i] : "(null)");
        CHECK(b.state == keep.state && b.inc == keep.inc); /* left as it was */
    }
}

static nb_tensor *f_add(nb_tensor **in, void *c) { return nb_add(in[0], in[1]); }
static nb_tensor *f_sub(nb_tensor **in, void *c) { return nb_sub(in[0], in[1]); }
static nb_tensor *f_mul(nb_tensor **in, void *c) { return nb_mul(in[0], in[1]); }
/* The divisor is kept away from 0 smoothly (no kink for finite differences to straddle). */
static nb_tensor *f_div(nb_tensor **in, void *c) { return nb_div(in[0], nb_add_scalar(nb_square(in[1]), 0.5f)); }

/* a op b by NumPy's rule, element by element, for shapes of up to 4 dims. */
static double naive_broadcast(const nb_tensor *a, const nb_tensor *b, const int64_t *o, int nd, int64_t flat, int op) {
    int64_t idx[4];
    for (int k = nd - 1; k >= 0; k--) idx[k] = flat % o[k], flat /= o[k];
    const nb_tensor *t[2] = {a, b};
    double v[2];
    for (int s = 0; s < 2; s++) {
        int64_t off = 0;
        for (int k = 0; k < t[s]->ndim; k++) {
            int ko = k + nd - t[s]->ndim;
            off = off * t[s]->shape[k] + (t[s]->shape[k] == 1 ? 0 : idx[ko]);
        }
        v[s] = t[s]->data[off];
    }
    return op == 0 ? v[0] + v[1] : op == 1 ? v[0] - v[1] : op == 2 ? v[0] * v[1] : v[0] / v[1];
}

TEST(test_broadcast_binary_values_merged_dims) {
    /* Dims that merge (the bias of a conv, a row vector over stacked
     * matrices), alternating broadcasts that cannot, size-1 dims in the
     * output, and a big one for the threaded path. */
    int64_t sh[][2][4] = {{{2, 3, 4, 5}, {3, 1, 1}},    {{2, 3, 4, 5}, {1, 3, 1, 5}}, {{4, 1, 6}, {1, 5, 1}},
                          {{6}, {2, 1, 6}},             {{1, 3, 1}, {2, 1, 1, 1}},   {{64, 16, 28, 28}, {16, 1, 1}}};
    int nds[][2] = {{4, 3}, {4, 4}, {3, 3}, {1, 3}, {3, 4}, {4, 3}};
    nb_tensor *(*f[4])(nb_tensor *, nb_tensor *) = {nb_add, nb_sub, nb_mul, nb_div};
    for (int c = 0; c < 6; c++) {
        nb_tensor *a = nb_test_param(nds[c][0], sh[c][0], 1.f), *b = nb_test_param(nds[c][1], sh[c][1], 1.f);
        for (int op = 0; op < 4; op++) {
            nb_tensor *y = f[op](a, b);
            int bad = 0;
            for (int64_t i = 0; i < y->size; i++) {
                double want = naive_broadcast(a, b, y->shape, y->ndim, i, op);
                if (!(fabs(y->data[i] - want) <= 1e-6 * (1 + fabs(want))) && bad++ < 3)
                    CHECK_MSG(0, "case %d op %d [%lld]: %g, want %g", c, op, (long long)i, y->data[i], want);
            }
        }
        nb_arena_reset();
        nb_tensor_free(a);
        nb_tensor_free(b);
    }
}

TEST(test_broadcast_binary_with_an_empty_dim) {
    /* [0, 3] against [3] (a bias over an empty batch): an empty result and,
     * backward, a zero gradient for the bias, as in PyTorch. The general
     * broadcasting loop once divided by the empty output's zero-length run. */
    nb_tensor *(*f[4])(nb_tensor *, nb_tensor *) = {nb_add, nb_sub, nb_mul, nb_div};
    nb_tensor *a = nb_test_param(2, (int64_t[]){0, 3}, 1.f), *b = nb_test_param(1, (int64_t[]){3}, 1.f);
    for (int op = 0; op < 4; op++) {
        nb_tensor *y = f[op](a, b);
        CHECK(y->ndim == 2 && y->shape[0] == 0 && y->shape[1] == 3 && y->size == 0);
        nb_tensor *z = f[op](b, nb_reshape(a, 3, (int64_t[]){2, 0, 3})); /* [3] against [2, 0, 3] */
        CHECK(z->ndim == 3 && z->size == 0);
        nb_backward(nb_sum_all(nb_mul(y, y)));
        for (int k = 0; k < 3; k++) CHECK(b->grad->data[k] == 0.f);
    }
    nb_arena_reset();
    nb_tensor_free(a);
    nb_tensor_free(b);
}

TEST(test_tensor_from_null_data_when_empty) {
    /* No data to copy: NULL is fine (memcpy from NULL was undefined, which
     * make asan's UBSan reported). */
    nb_tensor *t = nb_tensor_from(2, (int64_t[]){0, 3}, NULL);
    CHECK(t->size == 0 && t->shape[1] == 3);
    nb_tensor_free(t);
    nb_tensor *a = nb_from_data(1, (int64_t[]){0}, NULL);
    CHECK(a->size == 0 && a->ndim == 1);
    nb_arena_reset();
}

TEST(test_backward_of_a_leaf_loss_adds_one) {
    /* d w / d w = 1, as nb_grad(w, &w) gives and PyTorch's w.backward()
     * does; nb_backward once left .grad untouched for a loss with no node. */
    nb_tensor *w = nb_test_param(0, NULL, 1.f);
    nb_backward(w);
    CHECK(w->grad->data[0] == 1.f);
    nb_backward(w);
    CHECK(w->grad->data[0] == 2.f);
    nb_tensor_free(w);
    nb_arena_reset();
}

static void backward_of_a_constant(void *c) { nb_backward(nb_tensor_new(1, (int64_t[]){1})); }
static void backward_with_recording_off(void *c) {
    nb_tensor *w = nb_test_param(1, (int64_t[]){3}, 1.f);
    nb_set_grad_enabled(false);
    nb_tensor *l = nb_sum_all(nb_mul(w, w));
    nb_set_grad_enabled(true);
    nb_backward(l);
}

TEST(test_backward_of_a_loss_that_needs_no_gradient_is_fatal) {
    /* It returned silently, leaving every .grad at zero with no hint why;
     * PyTorch raises ("does not require grad and does not have a grad_fn"). */
    const char *const needles[] = {"backward", "does not depend on any tensor that requires a gradient", NULL};
    nb_test_expect_fatal("constant loss", backward_of_a_constant, NULL, needles);
    nb_test_expect_fatal("loss under grad off", backward_with_recording_off, NULL, needles);
}

static void hvp_wrong_v(void *c) {
    nb_tensor *w = nb_test_param(1, (int64_t[]){2}, 1.f);
    nb_tensor *hv[1];
    nb_hvp(nb_sum_all(nb_mul(w, w)), &w, (nb_tensor *[]){nb_ones(NB_SHAPE(3))}, 1, hv);
}

TEST(test_hvp_with_a_wrong_size_direction_is_fatal_naming_hvp) {
    /* It was caught by a reshape inside nb_hvp, named "reshape". */
    nb_test_expect_fatal("hvp v", hvp_wrong_v, NULL, (const char *[]){"hvp", "[2] and [3]", NULL});
}

static void backward_of_two_elements(void *c) {
    nb_tensor *w = nb_test_param(1, (int64_t[]){2}, 1.f);
    nb_backward(nb_mul(w, w));
}

TEST(test_backward_of_a_loss_of_two_elements_is_fatal) {
    /* A [2] "loss" would be seeded with ones, i.e. the gradient of its sum,
     * with nothing to say the caller forgot a reduction. */
    const char *const needles[] = {"backward", "one-element loss", "[2]", NULL};
    nb_test_expect_fatal("[2] loss", backward_of_two_elements, NULL, needles);
}

TEST(test_grad_ignores_a_stale_scratch_gradient) {
    /* tgrad is public scratch: one left on a wrt tensor by user code must not
     * be added into what nb_grad returns. */
    nb_tensor *w = nb_test_param(1, (int64_t[]){3}, 1.f);
    nb_tensor *g[1];
    w->tgrad = nb_full(1, (int64_t[]){3}, 100.f);
    nb_grad(nb_sum_all(nb_mul(w, w)), &w, 1, g, false);
    for (int k = 0; k < 3; k++) CHECK_NEAR(g[0]->data[k], 2.0 * w->data[k], 1e-6);
    CHECK(w->tgrad == NULL);
    nb_arena_reset();
    nb_tensor_free(w);
}

TEST(test_grad_of_an_output_by_itself_is_one_and_of_an_unused_input_zero) {
    nb_tensor *w = nb_test_param(1, (int64_t[]){3}, 1.f), *u = nb_test_param(2, (int64_t[]){2, 2}, 1.f);
    nb_tensor *l = nb_sum_all(nb_mul(w, w)), *g[3];
    nb_grad(l, (nb_tensor *[]){l, u, w}, 3, g, false);
    CHECK(g[0]->size == 1 && g[0]->data[0] == 1.f);
    CHECK(nb_same_shape(g[1], u));
    for (int k = 0; k < 4; k++) CHECK(g[1]->data[k] == 0.f);
    for (int k = 0; k < 3; k++) CHECK_NEAR(g[2]->data[k], 2.0 * w->data[k], 1e-6);
    nb_arena_reset();
    nb_tensor_free(w);
    nb_tensor_free(u);
}

TEST(test_requires_grad_off_allocates_no_gradient) {
    /* A frozen parameter must have no .grad: the optimizers skip exactly
     * those, and one with a zero .grad would still be decayed. */
    nb_tensor *t = nb_tensor_new(1, (int64_t[]){4});
    nb_requires_grad(t, false);
    CHECK(t->grad == NULL && !t->requires_grad);
    nb_requires_grad(t, true);
    CHECK(t->grad != NULL && t->grad->size == 4 && t->requires_grad);
    nb_tensor_free(t);
}

TEST(test_normal_init_is_mean_plus_std_times_the_generators_draws) {
    /* The documented rule, draw for draw, so that a seed gives the same
     * weights from one version to the next. */
    nb_rng a, b;
    nb_rng_seed(&a, 7, 3);
    nb_rng_seed(&b, 7, 3);
    nb_tensor *t = nb_normal(1, (int64_t[]){5}, 2.f, 0.5f, &a);
    for (int k = 0; k < 5; k++) CHECK(t->data[k] == 2.f + 0.5f * (float)nb_rng_normal(&b));
    nb_arena_reset();
}

TEST(test_hvp_through_a_uniform_gradient_that_depends_on_the_params) {
    /* L = s^2 with s = sum(c w) (c = 2 through mul_scalar, c = 1 through
     * add): dL/d(c w) is the uniform 2 s, itself a function of w, so
     * H = 2 c^2 (ones) and H v = 2 c^2 sum(v) in every entry. Under
     * create_graph a uniform stand-in must reach the rules broadcast (their
     * uniform paths read its value and would cut it off the graph: H = 0). */
    for (int op = 0; op < 3; op++) {
        nb_tensor *w = nb_test_param(1, (int64_t[]){4}, 1.f), *b = nb_test_param(1, (int64_t[]){4}, 1.f);
        nb_tensor *v = nb_from_data(1, (int64_t[]){4}, (float[]){0.5f, -1.f, 2.f, 0.25f});
        nb_tensor *y = op == 0 ? nb_mul_scalar(w, 2.f) : op == 1 ? nb_add(w, b) : nb_sub(w, b);
        float c = op == 0 ? 2.f : 1.f;
        nb_tensor *s = nb_sum_all(y), *hv[1];
        nb_hvp(nb_mul(s, s), &w, &v, 1, hv);
        for (int k = 0; k < 4; k++) CHECK_NEAR(hv[0]->data[k], 2.0 * c * c * 1.75, 1e-5);
        nb_arena_reset();
        nb_tensor_free(w);
        nb_tensor_free(b);
    }
}

TEST(test_grad_broadcast_binary) {
    /* Shapes that exercise every broadcasting path: equal, scalar, trailing
     * (bias), middle and leading dims, odd sizes. */
    int64_t shapes[][2][4] = {
        {{3, 5, 0, 0}, {3, 5, 0, 0}}, {{4, 7, 0, 0}, {0, 0, 0, 0}}, {{5, 3, 0, 0}, {3, 0, 0, 0}},
        {{2, 3, 4, 0}, {3, 1, 0, 0}}, {{2, 1, 5, 0}, {3, 1, 0, 0}}, {{1, 3, 1, 0}, {2, 1, 1, 4}},
    };
    int nds[][2] = {{2, 2}, {2, 0}, {2, 1}, {3, 2}, {3, 2}, {3, 4}};
    nb_test_f fs[] = {f_add, f_sub, f_mul, f_div};
    const char *names[] = {"add", "sub", "mul", "div"};
    for (int s = 0; s < 6; s++) {
        for (int k = 0; k < 4; k++) {
            nb_tensor *in[2] = {nb_test_param(nds[s][0], shapes[s][0], 1.f), nb_test_param(nds[s][1], shapes[s][1], 1.f)};
            char what[64];
            snprintf(what, sizeof what, "%s shapes #%d", names[k], s);
            nb_gradcheck(what, fs[k], in, 2, NULL, 1e-2f, 2e-3f);
            nb_hvpcheck(what, fs[k], in, 2, NULL, 2e-3f, 1e-2f);
            nb_tensor_free(in[0]);
            nb_tensor_free(in[1]);
        }
    }
}

static nb_tensor *f_exp(nb_tensor **in, void *c) { return nb_exp(in[0]); }
static nb_tensor *f_log(nb_tensor **in, void *c) { return nb_log(nb_add_scalar(nb_abs(in[0]), 0.5f)); }
static nb_tensor *f_sqrt(nb_tensor **in, void *c) { return nb_sqrt(nb_add_scalar(nb_abs(in[0]), 0.5f)); }
static nb_tensor *f_pow(nb_tensor **in, void *c) { return nb_pow(nb_add_scalar(nb_abs(in[0]), 0.5f), 2.5f); }
static nb_tensor *f_square(nb_tensor **in, void *c) { return nb_mul_scalar(nb_square(in[0]), -1.5f); }
static nb_tensor *f_abs(nb_tensor **in, void *c) { return nb_abs(in[0]); }

TEST(test_grad_unary_math) {
    nb_test_f fs[] = {f_exp, f_log, f_sqrt, f_pow, f_square, f_abs};
    const char *names[] = {"exp", "log", "sqrt", "pow", "square", "abs"};
    for (int k = 0; k < 6; k++) {
        nb_tensor *x = nb_test_param(NB_SHAPE(3, 7), 1.f);
        nb_gradcheck(names[k], fs[k], &x, 1, NULL, 1e-3f, 3e-3f);
        nb_hvpcheck(names[k], fs[k], &x, 1, NULL, 1e-3f, 1e-2f);
        nb_tensor_free(x);
    }
}

/* x^0 = 1 is constant, so its gradient is 0 everywhere, also at x = 0 where
 * the general rule p x^(p-1) would be 0 * inf = NaN (PyTorch's pow_backward
 * gives zeros for exponent 0 too). */
TEST(test_pow_zero_exponent_has_zero_gradient_at_zero) {
    nb_tensor *x = nb_tensor_from(NB_SHAPE(4), (float[]){0.f, -0.f, 2.f, -3.f});
    nb_requires_grad(x, true);
    nb_tensor *y = nb_pow(x, 0.f);
    for (int i = 0; i < 4; i++) CHECK(y->data[i] == 1.f);
    nb_backward(nb_sum_all(y));
    for (int i = 0; i < 4; i++) CHECK_MSG(x->grad->data[i] == 0.f, "d/dx x^0 at %g = %g, want 0", (double)x->data[i], (double)x->grad->data[i]);
    nb_tensor_free(x);
    nb_arena_reset();
}

TEST(test_pow_one_and_two_are_x_and_x_squared) {
    /* p = 1 and 2 have their own forms (no powf); both must be the power. */
    nb_tensor *x = nb_test_param(NB_SHAPE(5), 1.f);
    nb_tensor *y1 = nb_pow(x, 1.f), *y2 = nb_pow(x, 2.f), *y3 = nb_pow(nb_abs(x), 3.f);
    for (int i = 0; i < 5; i++) {
        double v = x->data[i];
        CHECK(y1->data[i] == x->data[i]);
        CHECK_NEAR(y2->data[i], v * v, 1e-6);
        CHECK_NEAR(y3->data[i], fabs(v * v * v), 1e-6);
    }
    nb_tensor *g[1];
    nb_grad(nb_sum_all(y1), &x, 1, g, false);
    for (int i = 0; i < 5; i++) CHECK(g[0]->data[i] == 1.f);
    nb_arena_reset();
    nb_tensor_free(x);
}

/* nb_log's vectorized log against double precision: relative error below
 * 4e-7 from the smallest subnormal to the largest float, around 1 (where
 * log is near 0), on a length that runs the threaded path, and the special
 * values exactly. */
TEST(test_log_accuracy_and_special_values) {
    int64_t n = 100000;
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n / 2; i++) v[i] = (float)exp(-103.0 + 191.0 * (double)i / (double)(n / 2)); /* 1e-45 .. 1e38 */
    for (int64_t i = n / 2; i < n; i++) v[i] = 1.f + (float)(i - 3 * n / 4) * 1.2e-7f;
    nb_tensor *y = nb_log(nb_from_data(NB_SHAPE(n), v));
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double want = log((double)v[i]);
        if (!(fabs(y->data[i] - want) <= 4e-7 * fabs(want) + 1e-45) && bad++ < 5)
            CHECK_MSG(0, "log(%.9g) = %.9g, want %.9g", (double)v[i], (double)y->data[i], want);
    }
    free(v);
    float sp[] = {0.f, -0.f, -1.f, INFINITY, -INFINITY, NAN, 1.f, 1.4e-45f, 3.4028235e38f};
    nb_tensor *z = nb_log(nb_from_data(NB_SHAPE(9), sp));
    CHECK(z->data[0] == -INFINITY && z->data[1] == -INFINITY && isnan(z->data[2]) && z->data[3] == INFINITY);
    CHECK(isnan(z->data[4]) && isnan(z->data[5]) && z->data[6] == 0.f);
    CHECK_NEAR(z->data[7], log(1.4e-45), 1e-5);
    CHECK_NEAR(z->data[8], log(3.4028235e38), 1e-4);
}

static nb_tensor *f_mm(nb_tensor **in, void *c) {
    const bool *t = c;
    return nb_matmul_t(in[0], in[1], t[0], t[1]);
}
/* A product whose second derivative is not zero: (A B) * (A B). */
static nb_tensor *f_mm_sq(nb_tensor **in, void *c) { return nb_square(f_mm(in, c)); }

TEST(test_grad_matmul_all_transposes_and_batches) {
    int64_t m = 3, k = 5, n = 4;
    for (int t = 0; t < 4; t++) {
        bool tr[2] = {t & 1, t >> 1};
        int64_t sa[3] = {2, tr[0] ? k : m, tr[0] ? m : k}, sb[3] = {2, tr[1] ? n : k, tr[1] ? k : n};
        /* 2-D x 2-D, batched x batched, batched x shared 2-D, shared 2-D x batched */
        int cfg[4][2] = {{2, 2}, {3, 3}, {3, 2}, {2, 3}};
        for (int c = 0; c < 4; c++) {
            nb_tensor *in[2] = {nb_test_param(cfg[c][0], sa + (3 - cfg[c][0]), 1.f),
                                nb_test_param(cfg[c][1], sb + (3 - cfg[c][1]), 1.f)};
            char what[64];
            snprintf(what, sizeof what, "matmul ta=%d tb=%d cfg=%d", tr[0], tr[1], c);
            nb_gradcheck(what, f_mm, in, 2, tr, 1e-2f, 2e-3f);
            nb_hvpcheck(what, f_mm_sq, in, 2, tr, 1e-2f, 1e-2f);
            nb_tensor_free(in[0]);
            nb_tensor_free(in[1]);
        }
    }
}

static nb_tensor *f_linear(nb_tensor **in, void *c) { return nb_linear(in[0], in[1], c ? in[2] : NULL); }
static nb_tensor *f_linear_sq(nb_tensor **in, void *c) { return nb_square(f_linear(in, c)); }

TEST(test_grad_linear_fused_and_batched) {
    /* 2-D x: the fused op (with and without bias); 3-D x: matmul + add. */
    int64_t xs[2][3] = {{5, 7, 0}, {2, 3, 7}};
    for (int nd = 2; nd <= 3; nd++)
        for (int bias = 0; bias < 2; bias++) {
            nb_tensor *in[3] = {nb_test_param(nd, xs[nd - 2], 1.f), nb_test_param(NB_SHAPE(4, 7), 1.f),
                                nb_test_param(NB_SHAPE(4), 1.f)};
            char what[64];
            snprintf(what, sizeof what, "linear %d-D x, bias %d", nd, bias);
            void *ctx = bias ? (void *)1 : NULL;
            nb_gradcheck(what, f_linear, in, bias ? 3 : 2, ctx, 1e-2f, 2e-3f);
            nb_hvpcheck(what, f_linear_sq, in, bias ? 3 : 2, ctx, 1e-2f, 1e-2f);
            for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
        }
}

/* After two nb_backward calls, each parameter's .grad must be twice the
 * gradient nb_grad gave for one. */
static void check_grad_twice(nb_tensor **p, nb_tensor **want, int n, double tol) {
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < p[k]->size; i++)
            CHECK_MSG(fabs(p[k]->grad->data[i] - 2.0 * want[k]->data[i]) <= tol * (1 + fabs(want[k]->data[i])),
                      "parameter %d [%lld]: .grad %g, 2 x nb_grad %g", k, (long long)i, p[k]->grad->data[i],
                      2.0 * want[k]->data[i]);
}

/* nb_backward adds the weight gradients of matmul and linear straight into
 * .grad (GEMMs with beta = 1); they must equal what nb_grad computes, also
 * when a weight is used twice (a direct and a routed contribution) and when
 * two backward calls accumulate. */
TEST(test_backward_direct_gemm_grads_match_nb_grad) {
    nb_tensor *x = nb_test_param(NB_SHAPE(6, 5), 1.f), *x3 = nb_test_param(NB_SHAPE(2, 3, 4), 1.f);
    nb_tensor *w = nb_test_param(NB_SHAPE(4, 5), 1.f), *b = nb_test_param(NB_SHAPE(4), 1.f);
    nb_tensor *m = nb_test_param(NB_SHAPE(4, 5), 1.f), *mt = nb_test_param(NB_SHAPE(6, 4), 1.f);
    nb_tensor *p[4] = {w, b, m, mt}, *want[4];
    for (int k = 0; k < 4; k++) nb_zero_grad(p[k]);
    for (int round = 0; round < 2; round++) {
        /* w twice (linear, and a product with w as the second operand);
         * m as b of x3 m (a folded batch); mt transposed as b of x^T mt. */
        nb_tensor *h = nb_tanh(nb_linear(x, w, b));                 /* [6, 4] */
        nb_tensor *h2 = nb_matmul_t(h, w, false, false);            /* [6, 5] */
        nb_tensor *h3 = nb_matmul(x3, m);                           /* [2, 3, 5] */
        nb_tensor *h4 = nb_matmul_t(x, mt, true, false);            /* [5, 4] */
        nb_tensor *L = nb_add(nb_add(nb_sum_all(nb_square(h2)), nb_sum_all(nb_mul(h3, h3))),
                              nb_sum_all(nb_tanh(h4)));
        if (round == 0) nb_grad(L, p, 4, want, false);
        nb_backward(L);
    }
    check_grad_twice(p, want, 4, 1e-4);
    nb_tensor *all[6] = {x, x3, w, b, m, mt};
    for (int k = 0; k < 6; k++) nb_tensor_free(all[k]);
}

/* Under a ReLU most of a linear layer's output gradient is zero, and
 * nb_backward adds the weight gradient from its nonzeros alone (matmul.c's
 * sparse_tn_product, for linear and for matmul with a transposed weight): it
 * must equal nb_grad's dense product, when added to an earlier gradient too,
 * for widths that take each column path (blocks of 128, of 16, single
 * columns). */
TEST(test_backward_sparse_weight_grad_matches_nb_grad) {
    const int64_t widths[2] = {37, 150};
    for (int t = 0; t < 2; t++) {
        nb_tensor *x = nb_test_param(NB_SHAPE(40, widths[t]), 1.f), *w = nb_test_param(NB_SHAPE(32, widths[t]), 0.3f);
        nb_tensor *b = nb_test_param(NB_SHAPE(32), 1.f), *R = nb_test_param(NB_SHAPE(40, 32), 1.f);
        for (int64_t i = 0; i < b->size; i++) b->data[i] -= 2.5f; /* most units off */
        nb_tensor *p[2] = {w, b}, *want[2];
        for (int k = 0; k < 2; k++) nb_zero_grad(p[k]);
        int64_t on = 0;
        for (int round = 0; round < 2; round++) {
            nb_tensor *h = nb_relu(nb_linear(x, w, b));
            nb_tensor *h2 = nb_relu(nb_add(nb_matmul_t(x, w, false, true), b));
            nb_tensor *L = nb_add(nb_sum_all(nb_mul(h, nb_detach(R))), nb_sum_all(nb_mul(h2, nb_detach(R))));
            if (round == 0) {
                for (int64_t i = 0; i < h->size; i++) on += h->data[i] > 0.f;
                nb_grad(L, p, 2, want, false);
            }
            nb_backward(L);
        }
        CHECK(on > 0 && 2 * on < 40 * 32); /* the sparse path's condition */
        check_grad_twice(p, want, 2, 1e-5);
        nb_arena_reset(); /* the tape refers to the tensors freed below */
        nb_tensor *all[4] = {x, w, b, R};
        for (int k = 0; k < 4; k++) nb_tensor_free(all[k]);
    }
}

/* The backward of a full sum adds its one value straight into a leaf's
 * .grad: sum_all and nb_sum over every axis, twice, plus a routed term. */
TEST(test_backward_full_sum_adds_into_grad) {
    nb_tensor *w = nb_test_param(NB_SHAPE(3, 4, 5), 1.f);
    nb_zero_grad(w);
    for (int r = 0; r < 2; r++) {
        nb_tensor *L = nb_add(nb_add(nb_sum_all(w), nb_mul_scalar(nb_sum(w, NULL, 0, false), 2.f)),
                              nb_sum_all(nb_square(w)));
        nb_backward(L);
    }
    for (int64_t i = 0; i < w->size; i++) CHECK_NEAR(w->grad->data[i], 2.0 * (3.0 + 2.0 * w->data[i]), 1e-5);
    nb_tensor_free(w);
}

/* exp, log, mul, the rectifiers, sigmoid and tanh add their leaves'
 * gradients straight into .grad: equal to nb_grad's, with a broadcast
 * operand (routed) beside them. */
TEST(test_backward_direct_elementwise_grads_match_nb_grad) {
    nb_tensor *a = nb_test_param(NB_SHAPE(4, 6), 1.f), *b = nb_test_param(NB_SHAPE(4, 6), 1.f);
    nb_tensor *c = nb_test_param(NB_SHAPE(6), 1.f);
    for (int64_t i = 0; i < b->size; i++) b->data[i] = 0.5f + fabsf(b->data[i]); /* log's domain */
    nb_tensor *p[3] = {a, b, c}, *want[3];
    for (int k = 0; k < 3; k++) nb_zero_grad(p[k]);
    for (int round = 0; round < 2; round++) {
        nb_tensor *L = nb_add(nb_add(nb_sum_all(nb_mul(nb_exp(a), nb_tanh(a))), nb_sum_all(nb_mul(nb_log(b), a))),
                              nb_sum_all(nb_square(nb_mul(a, c))));
        L = nb_add(L, nb_sum_all(nb_mul(nb_relu(a), nb_leaky_relu(c, 0.1f))));
        L = nb_add(L, nb_sum_all(nb_mul(nb_sigmoid(a), nb_sigmoid(b))));
        L = nb_add(L, nb_sum_all(nb_mul(nb_softmax(a, -1), b)));
        L = nb_add(L, nb_sum_all(nb_mul(nb_log_softmax(b, 1), a)));
        L = nb_add(L, nb_sum_all(nb_mul(nb_softmax(b, 0), a))); /* a middle axis: composite ops */
        if (round == 0) nb_grad(L, p, 3, want, false);
        nb_backward(L);
    }
    check_grad_twice(p, want, 3, 1e-5);
    for (int k = 0; k < 3; k++) nb_tensor_free(p[k]);
}

/* Sums of elementwise ops pass their gradient back as one value standing for
 * a uniform tensor (nb__accum_uniform) through the ops marked uniform, as
 * PyTorch's expanded views do. The chains below cover every such op, a
 * broadcast operand (uniform with a fan-in, or made whole for mul), and a
 * stand-in meeting a whole gradient and another stand-in on one tensor. */
static nb_tensor *f_uniform_chains(nb_tensor **in, void *ctx) {
    nb_tensor *x = in[0], *y = in[1], *c = in[2], *pos = in[3];
    nb_tensor *h = nb_tanh(x);
    nb_tensor *t[] = {
        nb_sum_all(nb_relu(x)),
        nb_sum_all(nb_mean(nb_sigmoid(nb_reshape(x, NB_SHAPE(2, 3, 4))), (int[]){1}, 1, false)),
        nb_sum_all(nb_add(nb_mul_scalar(nb_exp(x), 0.5f), c)),               /* c: [4], fan 6 */
        nb_sum_all(nb_sub(nb_mul(nb_leaky_relu(x, 0.2f), y), nb_log(pos))),
        nb_sum_all(nb_mul(x, c)),                                             /* broadcast: made whole */
        nb_sum_all(nb_add_scalar(nb_sub(c, x), 1.f)),                         /* c first, broadcast */
        nb_sum_all(h), nb_sum_all(nb_relu(h)), nb_mul_scalar(nb_sum_all(h), 2.f), /* three meet on h */
        nb_sum(nb_sum(nb_tanh(y), (int[]){0}, 1, false), NULL, 0, false),    /* a stand-in into a partial sum */
        nb_mul_scalar(nb_sum_all(nb_log_softmax(y, -1)), 0.5f),
        nb_sum_all(nb_softmax(nb_mul(x, y), 1)), /* rows sum to 1: a gradient of (nearly) zero */
        nb_sum_all(nb_log_softmax(nb_reshape(x, NB_SHAPE(2, 3, 4)), 1)), /* a middle axis: made whole */
    };
    nb_tensor *L = t[0];
    for (size_t k = 1; k < sizeof t / sizeof t[0]; k++) L = nb_add(L, t[k]);
    return L;
}

TEST(test_uniform_gradients_match_whole_and_finite_differences) {
    nb_tensor *in[4] = {nb_test_param(NB_SHAPE(6, 4), 1.f), nb_test_param(NB_SHAPE(6, 4), 1.f),
                        nb_test_param(NB_SHAPE(4), 1.f), nb_test_param(NB_SHAPE(6, 4), 1.f)};
    for (int64_t i = 0; i < in[3]->size; i++) in[3]->data[i] = 0.5f + fabsf(in[3]->data[i]); /* log's domain */
    nb_gradcheck("uniform chains", f_uniform_chains, in, 4, NULL, 1e-2f, 2e-3f);
    /* With create_graph every stand-in is broadcast whole before its op:
     * the reference for nb_grad's and nb_backward's uniform paths. */
    nb_tensor *whole[4], *fast[4];
    nb_grad(f_uniform_chains(in, NULL), in, 4, whole, true);
    nb_grad(f_uniform_chains(in, NULL), in, 4, fast, false);
    for (int k = 0; k < 4; k++) {
        CHECK(nb_same_shape(fast[k], in[k]));
        CHECK_MSG(nb_test_maxrel(fast[k]->data, whole[k]->data, in[k]->size) < 1e-5, "input %d", k);
        nb_zero_grad(in[k]);
    }
    for (int r = 0; r < 2; r++) nb_backward(f_uniform_chains(in, NULL));
    check_grad_twice(in, whole, 4, 1e-5);
    for (int k = 0; k < 4; k++) nb_tensor_free(in[k]);
}

TEST(test_matmul_matches_naive) {
    nb_tensor *a = nb_test_param(NB_SHAPE(17, 33), 1.f), *b = nb_test_param(NB_SHAPE(33, 9), 1.f);
    nb_tensor *c = nb_matmul(a, b);
    for (int i = 0; i < 17; i++)
        for (int j = 0; j < 9; j++) {
            double s = 0;
            for (int p = 0; p < 33; p++) s += (double)a->data[i * 33 + p] * b->data[p * 9 + j];
            CHECK_NEAR(c->data[i * 9 + j], s, 1e-5);
        }
    nb_tensor_free(a);
    nb_tensor_free(b);
}

TEST(test_backward_accumulates_into_params_and_respects_no_grad) {
    nb_tensor *w = nb_test_param(NB_SHAPE(3), 1.f);
    nb_tensor *x = nb_from_data(NB_SHAPE(3), (float[]){1, 2, 3});
    /* L = sum(w * x) twice: dL/dw = 2x after two backward calls. */
    for (int r = 0; r < 2; r++) nb_backward(nb_sum_all(nb_mul(w, x)));
    for (int i = 0; i < 3; i++) CHECK_NEAR(w->grad->data[i], 2.0 * (i + 1), 1e-6);
    nb_zero_grad(w);
    bool old = nb_set_grad_enabled(false);
    nb_tensor *y = nb_sum_all(nb_mul(w, x));
    CHECK(!y->requires_grad && y->node == NULL);
    nb_set_grad_enabled(old);
    nb_tensor_free(w);
}

TEST(test_grad_wrt_input_tensor) {
    /* Differentiating w.r.t. an arena input (as FGSM and style transfer do). */
    nb_tensor *x = nb_from_data(NB_SHAPE(2), (float[]){0.5f, -2.f});
    nb_requires_grad(x, true);
    nb_tensor *L = nb_sum_all(nb_mul(nb_exp(x), x)); /* d/dx = e^x (1 + x) */
    nb_tensor *g;
    nb_grad(L, &x, 1, &g, false);
    CHECK_NEAR(g->data[0], expf(0.5f) * 1.5f, 1e-5);
    CHECK_NEAR(g->data[1], expf(-2.f) * -1.f, 1e-5);
}

TEST(test_arena_does_not_grow_over_10000_steps) {
    nb_tensor *w = nb_test_param(NB_SHAPE(16, 8), 0.3f), *b = nb_test_param(NB_SHAPE(16), 0.1f);
    nb_tensor *x = nb_tensor_new(NB_SHAPE(4, 8));
    nb_init_normal(x, 0, 1, nb_test_rng());
    size_t reserved_after_first = 0;
    for (int step = 0; step < 10000; step++) {
        nb_tensor *h = nb_exp(nb_mul_scalar(nb_linear(nb_detach(x), w, b), 0.1f));
        nb_backward(nb_sum_all(h));
        for (int64_t i = 0; i < w->size; i++) w->data[i] -= 1e-4f * w->grad->data[i];
        nb_zero_grad(w);
        nb_zero_grad(b);
        nb_arena_reset();
        if (step == 0) reserved_after_first = nb_arena_bytes_reserved();
    }
    CHECK(nb_arena_bytes_reserved() == reserved_after_first);
    CHECK(nb_arena_bytes_used() == 0);
    nb_tensor_free(w);
    nb_tensor_free(b);
    nb_tensor_free(x);
}

TEST(test_arena_reserves_at_most_a_quarter_more_and_settles_in_one_block) {
    /* arena.c's promises: blocks grow by a quarter, so a first step
     * reserves at most a quarter more than it uses, plus the first block and
     * a piece cut off at the end of each block (under 1 MiB here); a big
     * request gets a block of its size; after the reset one block of what
     * the step used plus an eighth holds the same step again. */
    const size_t piece = (size_t)1 << 16, mib = (size_t)1 << 20;
    for (size_t total = 2 * mib; total <= 40 * mib; total += mib) {
        nb_arena *a = nb_arena_new(), *old = nb_arena_use(a);
        for (size_t got = 0; got < total; got += piece) nb_arena_alloc(piece);
        size_t used = nb_arena_bytes_used(), res = nb_arena_bytes_reserved();
        CHECK(used == total);
        CHECK_MSG(res <= used + used / 4 + 2 * mib, "%zu bytes used, %zu reserved", used, res);
        nb_arena_reset();
        size_t settled = nb_arena_bytes_reserved();
        CHECK_MSG(settled == used + used / 8, "%zu bytes used, %zu reserved after the reset", used, settled);
        for (int again = 0; again < 2; again++) {
            for (size_t got = 0; got < total; got += piece) nb_arena_alloc(piece);
            CHECK(nb_arena_bytes_reserved() == settled && nb_arena_bytes_used() == used);
            nb_arena_reset();
        }
        nb_arena_use(old);
        nb_arena_free(a);
    }
    nb_arena *a = nb_arena_new(), *old = nb_arena_use(a);
    nb_arena_alloc(mib / 2);
    nb_arena_alloc(30 * mib);
    size_t used = nb_arena_bytes_used(), res = nb_arena_bytes_reserved();
    CHECK_MSG(res <= used + used / 4 + 2 * mib, "%zu bytes used, %zu reserved", used, res);
    nb_arena_use(old);
    nb_arena_free(a);
}

/* Out of memory where there is no way back goes to the handler, not to
 * abort(): here one that jumps back, as a program embedding the library may. */
#include <setjmp.h>
static jmp_buf oom_jump;
static char oom_op[64];
static size_t oom_bytes;
static void jump_back(const char *op, size_t bytes) {
    snprintf(oom_op, sizeof oom_op, "%s", op);
    oom_bytes = bytes;
    longjmp(oom_jump, 1);
}
TEST(test_out_of_memory_calls_the_handler) {
    nb_oom_handler old = nb_set_oom_handler(jump_back);
    int64_t shape[2] = {(int64_t)1 << 21, (int64_t)1 << 21}; /* 2^42 floats: 16 TiB */
    volatile int reached = 0;
    if (!setjmp(oom_jump)) {
        nb_tensor *t = nb_tensor_new(2, shape);
        reached = 1; /* not reached: no machine here has 16 TiB */
        nb_tensor_free(t);
    }
    CHECK(!reached);
    CHECK(strcmp(oom_op, "a tensor") == 0);
    CHECK(oom_bytes == ((size_t)1 << 44));
    CHECK(nb_set_oom_handler(old) == jump_back);
    CHECK(nb_set_oom_handler(NULL) != jump_back); /* NULL restores the default */
}

TEST(test_arena_alloc_of_nearly_size_max_is_out_of_memory) {
    /* Rounding SIZE_MAX - 10 up to the arena's alignment once wrapped to 0,
     * and nb_arena_alloc returned 64 bytes for it. */
    nb_oom_handler old = nb_set_oom_handler(jump_back);
    volatile int reached = 0;
    oom_op[0] = 0;
    if (!setjmp(oom_jump)) {
        (void)nb_arena_alloc(SIZE_MAX - 10);
        reached = 1;
    }
    CHECK(!reached);
    CHECK(strcmp(oom_op, "the step arena") == 0);
    CHECK(oom_bytes == SIZE_MAX - 10);
    nb_set_oom_handler(old);
    nb_arena_reset();
}
