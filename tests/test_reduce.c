/* test_reduce.c — sum, mean, max and argmax_rows: values against naive
 * double-precision references over every axis set, gradients and
 * Hessian-vector products against finite differences, ties and NaN. */
#include "test.h"
#include <stdlib.h>

static nb_tensor *const_tensor(int ndim, const int64_t *shape) {
    nb_tensor *t = nb_tensor_new(ndim, shape);
    nb_init_normal(t, 0.f, 1.f, nb_test_rng());
    return t;
}

/* Reference sum over the axes in mask, in double, into ref (size of the
 * kept dims, row-major). */
static void ref_sum(const nb_tensor *x, unsigned mask, double *ref, int64_t nref) {
    for (int64_t o = 0; o < nref; o++) ref[o] = 0;
    for (int64_t i = 0; i < x->size; i++) {
        int64_t rem = i, c[NB_MAXDIM];
        for (int k = x->ndim - 1; k >= 0; k--) {
            c[k] = rem % x->shape[k];
            rem /= x->shape[k];
        }
        int64_t o = 0;
        for (int k = 0; k < x->ndim; k++)
            if (!(mask >> k & 1u)) o = o * x->shape[k] + c[k];
        ref[o] += x->data[i];
    }
}

/* Checks nb_sum (and nb_mean) of x over mask, with axes written negative
 * where `neg` has the bit, against the reference. */
static void check_sum(nb_tensor *x, unsigned mask, unsigned neg, bool keepdim, bool mean, const char *what) {
    int axes[NB_MAXDIM], n = 0;
    int64_t count = 1, nref = 1;
    for (int k = 0; k < x->ndim; k++) {
        if (mask >> k & 1u) {
            axes[n++] = (neg >> k & 1u) ? k - x->ndim : k;
            count *= x->shape[k];
        } else {
            nref *= x->shape[k];
        }
    }
    /* The empty mask stands for n = 0: every axis. */
    if (mask == 0) {
        count = x->size;
        nref = 1;
        mask = (1u << x->ndim) - 1u;
    }
    nb_tensor *y = mean ? nb_mean(x, axes, n, keepdim) : nb_sum(x, axes, n, keepdim);
    int nd = 0;
    bool shape_ok = true;
    for (int k = 0; k < x->ndim; k++) {
        if (!(mask >> k & 1u)) shape_ok &= nd < y->ndim && y->shape[nd++] == x->shape[k];
        else if (keepdim) shape_ok &= nd < y->ndim && y->shape[nd++] == 1;
    }
    CHECK_MSG(shape_ok && y->ndim == nd, "%s: wrong shape", what);
    double *ref = malloc(sizeof(double) * (size_t)nref);
    ref_sum(x, mask, ref, nref);
    double worst = 0;
    for (int64_t o = 0; o < nref && o < y->size; o++) {
        double want = mean ? ref[o] / (double)count : ref[o];
        worst = fmax(worst, fabs(y->data[o] - want) / fmax(1.0, fabs(want)));
    }
    CHECK_MSG(worst < 1e-6, "%s: off by %g (relative)", what, worst);
    free(ref);
}

TEST(test_reduce_sum_mean_every_axis_set) {
    int64_t shapes[][4] = {{3, 5, 7, 0}, {2, 1, 5, 3}, {4, 3, 2, 5}, {7, 0, 0, 0}};
    int nds[] = {3, 4, 4, 1};
    for (int s = 0; s < 4; s++) {
        nb_tensor *x = const_tensor(nds[s], shapes[s]);
        for (unsigned mask = 0; mask < (1u << nds[s]); mask++)
            for (int kd = 0; kd < 2; kd++)
                for (int mean = 0; mean < 2; mean++) {
                    char what[64];
                    snprintf(what, sizeof what, "%s shape #%d mask %#x keepdim %d", mean ? "mean" : "sum", s, mask, kd);
                    check_sum(x, mask, mask * 5u, kd, mean, what); /* some axes negative */
                    nb_arena_reset();
                }
        nb_tensor_free(x);
    }
}

TEST(test_reduce_sum_hand_computed) {
    nb_tensor *x = nb_from_data(NB_SHAPE(2, 3), (float[]){1, 2, 3, 4, 5, 6});
    nb_tensor *a = nb_sum(x, (int[]){0}, 1, false), *b = nb_sum(x, (int[]){-1}, 1, true);
    CHECK(a->ndim == 1 && a->shape[0] == 3 && a->data[0] == 5 && a->data[1] == 7 && a->data[2] == 9);
    CHECK(b->ndim == 2 && b->shape[0] == 2 && b->shape[1] == 1 && b->data[0] == 6 && b->data[1] == 15);
    nb_tensor *c = nb_sum(x, NULL, 0, false), *d = nb_sum(x, NULL, 0, true);
    CHECK(c->ndim == 0 && c->data[0] == 21);
    CHECK(d->ndim == 2 && d->shape[0] == 1 && d->shape[1] == 1 && d->data[0] == 21);
    nb_tensor *m = nb_mean(x, (int[]){1}, 1, false);
    CHECK(m->ndim == 1 && m->data[0] == 2 && m->data[1] == 5);
}

TEST(test_reduce_sum_edge_shapes) {
    nb_tensor *s = nb_scalar(2.5f);
    nb_tensor *a = nb_sum(s, NULL, 0, false);
    CHECK(a->ndim == 0 && a->data[0] == 2.5f);
    nb_tensor *e = nb_zeros(NB_SHAPE(3, 0));
    nb_tensor *r1 = nb_sum(e, (int[]){1}, 1, false), *r0 = nb_sum(e, (int[]){0}, 1, false);
    CHECK(r1->ndim == 1 && r1->shape[0] == 3 && r1->data[0] == 0 && r1->data[2] == 0);
    CHECK(r0->ndim == 1 && r0->shape[0] == 0);
    CHECK(isnan(nb_mean(e, (int[]){1}, 1, false)->data[1])); /* 0/0, as NumPy */
    nb_tensor *o = nb_from_data(NB_SHAPE(3, 1), (float[]){1, 2, 3});
    nb_tensor *r = nb_sum(o, (int[]){1}, 1, false); /* only a size-1 axis */
    CHECK(r->ndim == 1 && r->data[0] == 1 && r->data[1] == 2 && r->data[2] == 3);
}

TEST(test_reduce_sum_large_is_accurate) {
    /* A million 0.1f: a float accumulator would be off by ~1e-3 relative. */
    int64_t n = 1000003;
    nb_tensor *x = nb_full(NB_SHAPE(n), 0.1f);
    CHECK_NEAR(nb_item(nb_sum(x, NULL, 0, false)), (double)n * 0.1f, 1e-7);
    CHECK_NEAR(nb_item(nb_mean(x, (int[]){0}, 1, false)), 0.1f, 1e-7);
    /* Every kernel path on shapes big enough for threads. */
    struct { int nd; int64_t shape[3]; unsigned mask; } cases[] = {
        {2, {3001, 67}, 1},    /* column sums */
        {2, {67, 3001}, 2},    /* row sums */
        {3, {5, 2000, 7}, 5},  /* innermost reduced, plus an outer one */
        {3, {7, 300, 40}, 2},  /* middle axis */
        {2, {100, 700}, 1},    /* several column bands */
        {3, {40, 50, 60}, 7},  /* everything */
    };
    for (int t = 0; t < 6; t++) {
        nb_tensor *y = const_tensor(cases[t].nd, cases[t].shape);
        char what[32];
        snprintf(what, sizeof what, "large sum #%d", t);
        check_sum(y, cases[t].mask, 0, t & 1, false, what);
        nb_tensor_free(y);
    }
}

typedef struct { int axes[NB_MAXDIM]; int n; bool keepdim; } sum_args;
static nb_tensor *f_sum(nb_tensor **in, void *c) {
    sum_args *a = c;
    return nb_sum(in[0], a->axes, a->n, a->keepdim);
}
static nb_tensor *f_sum_sq(nb_tensor **in, void *c) { return nb_square(f_sum(in, c)); }
static nb_tensor *f_mean(nb_tensor **in, void *c) {
    sum_args *a = c;
    return nb_mean(in[0], a->axes, a->n, a->keepdim);
}
static nb_tensor *f_mean_sq(nb_tensor **in, void *c) { return nb_square(f_mean(in, c)); }

TEST(test_reduce_sum_mean_grad_and_hvp) {
    sum_args cases[] = {
        {{0}, 1, false}, {{-1}, 1, true}, {{0, 2}, 2, false}, {{-3, -2}, 2, true}, {{0}, 0, false}, {{0}, 0, true},
        {{1, -1, 0}, 3, false},
    };
    for (int t = 0; t < 7; t++) {
        nb_tensor *x = nb_test_param(NB_SHAPE(3, 5, 7), 1.f);
        char what[32];
        snprintf(what, sizeof what, "sum #%d", t);
        nb_gradcheck(what, f_sum, &x, 1, &cases[t], 1e-2f, 2e-3f);
        nb_hvpcheck(what, f_sum_sq, &x, 1, &cases[t], 1e-2f, 5e-3f);
        snprintf(what, sizeof what, "mean #%d", t);
        nb_gradcheck(what, f_mean, &x, 1, &cases[t], 1e-2f, 2e-3f);
        nb_hvpcheck(what, f_mean_sq, &x, 1, &cases[t], 1e-2f, 5e-3f);
        nb_tensor_free(x);
    }
}

/* --- max ----------------------------------------------------------------- */

TEST(test_reduce_max_values_and_ties) {
    /* [[1, 3, 3], [-1, -2, -5]]: ties go to the first maximal element. */
    nb_tensor *x = nb_tensor_from(NB_SHAPE(2, 3), (float[]){1, 3, 3, -1, -2, -5});
    nb_requires_grad(x, true);
    nb_tensor *m1 = nb_max(x, -1, false);
    CHECK(m1->ndim == 1 && m1->shape[0] == 2 && m1->data[0] == 3 && m1->data[1] == -1);
    nb_backward(nb_sum_all(nb_mul(m1, nb_from_data(NB_SHAPE(2), (float[]){2, 5}))));
    float w1[] = {0, 2, 0, 5, 0, 0};
    for (int i = 0; i < 6; i++) CHECK(x->grad->data[i] == w1[i]);
    nb_zero_grad(x);
    /* Along axis 0 with keepdim; columns 0 and 2 tie, so row 0 takes them. */
    nb_tensor *y = nb_tensor_from(NB_SHAPE(2, 3), (float[]){1, 0, 2, 1, 4, 2});
    nb_requires_grad(y, true);
    nb_tensor *m0 = nb_max(y, 0, true);
    CHECK(m0->ndim == 2 && m0->shape[0] == 1 && m0->shape[1] == 3);
    CHECK(m0->data[0] == 1 && m0->data[1] == 4 && m0->data[2] == 2);
    nb_backward(nb_sum_all(m0));
    float w0[] = {1, 0, 1, 0, 1, 0};
    for (int i = 0; i < 6; i++) CHECK(y->grad->data[i] == w0[i]);
    /* NaN propagates (and takes the gradient). */
    nb_tensor *z = nb_from_data(NB_SHAPE(4), (float[]){1, NAN, 3, NAN});
    CHECK(isnan(nb_max(z, 0, false)->data[0]));
    int32_t am;
    nb_argmax_rows(z, &am);
    CHECK(am == 1);
    /* All -inf: the first; and an empty non-reduced axis gives an empty result. */
    nb_argmax_rows(nb_full(NB_SHAPE(5), -INFINITY), &am);
    CHECK(am == 0);
    CHECK(nb_max(nb_zeros(NB_SHAPE(3, 0)), 0, false)->size == 0);
    CHECK(nb_max(nb_zeros(NB_SHAPE(0, 3)), 1, true)->size == 0);
    nb_tensor_free(x);
    nb_tensor_free(y);
}

TEST(test_reduce_max_along_a_leading_axis_propagates_nan) {
    /* The column-wise path (the axis is not the last): a NaN anywhere in a
     * column is that column's maximum and takes its gradient, as along the
     * last axis and in PyTorch. */
    nb_tensor *x = nb_tensor_from(NB_SHAPE(3, 2), (float[]){1, 5, NAN, 2, 7, NAN});
    nb_requires_grad(x, true);
    nb_tensor *m = nb_max(x, 0, false);
    CHECK(isnan(m->data[0]) && isnan(m->data[1]));
    nb_backward(nb_sum_all(m));
    float want[] = {0, 0, 1, 0, 0, 1};
    for (int i = 0; i < 6; i++) CHECK(x->grad->data[i] == want[i]);
    nb_arena_reset();
    nb_tensor_free(x);
}

static void sum_axis_twice(void *c) { nb_sum(nb_zeros(NB_SHAPE(2, 3)), (int[]){1, -1}, 2, false); }

TEST(test_reduce_sum_over_an_axis_given_twice_is_fatal) {
    nb_test_expect_fatal("sum {1, -1}", sum_axis_twice, NULL, (const char *[]){"sum", "axis -1 is given twice", NULL});
}

/* Reference max along axis a of x, as [outer, inner]. */
static void check_max(nb_tensor *x, int axis, bool keepdim, const char *what) {
    int a = axis < 0 ? axis + x->ndim : axis;
    nb_tensor *m = nb_max(x, axis, keepdim);
    CHECK_MSG(m->ndim == x->ndim - !keepdim, "%s: ndim", what);
    int64_t A = x->shape[a], inner = 1, outer = 1;
    for (int k = 0; k < a; k++) outer *= x->shape[k];
    for (int k = a + 1; k < x->ndim; k++) inner *= x->shape[k];
    int64_t bad = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            float best = -INFINITY;
            for (int64_t r = 0; r < A; r++) best = fmaxf(best, x->data[(o * A + r) * inner + j]);
            bad += m->data[o * inner + j] != best;
        }
    CHECK_MSG(bad == 0, "%s: %lld wrong maxima", what, (long long)bad);
}

TEST(test_reduce_max_matches_reference) {
    nb_tensor *x = const_tensor(NB_SHAPE(3, 5, 7));
    for (int a = -3; a < 3; a++) check_max(x, a, a & 1, "max 3x5x7");
    nb_tensor *big = const_tensor(NB_SHAPE(40, 1001));
    check_max(big, 0, false, "max 40x1001 axis 0");
    check_max(big, 1, true, "max 40x1001 axis 1");
    nb_tensor_free(x);
    nb_tensor_free(big);
}

/* A parameter whose entries are distinct multiples of 0.05, shuffled, so that
 * finite differences never change which element is the maximum. */
static nb_tensor *distinct_param(int ndim, const int64_t *shape) {
    nb_tensor *t = nb_test_param(ndim, shape, 1.f);
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)t->size);
    for (int64_t i = 0; i < t->size; i++) perm[i] = i;
    nb_rng_shuffle(nb_test_rng(), perm, t->size);
    for (int64_t i = 0; i < t->size; i++) t->data[i] = 0.05f * (float)(perm[i] - t->size / 2);
    free(perm);
    return t;
}

typedef struct { int axis; bool keepdim; } max_args;
static nb_tensor *f_max(nb_tensor **in, void *c) {
    max_args *a = c;
    return nb_max(in[0], a->axis, a->keepdim);
}
static nb_tensor *f_max_sq(nb_tensor **in, void *c) { return nb_square(f_max(in, c)); }

TEST(test_reduce_max_grad_and_hvp) {
    max_args cases[] = {{0, false}, {1, true}, {-1, false}, {-2, true}, {2, true}};
    for (int t = 0; t < 5; t++) {
        nb_tensor *x = distinct_param(NB_SHAPE(3, 5, 7));
        char what[32];
        snprintf(what, sizeof what, "max #%d", t);
        nb_gradcheck(what, f_max, &x, 1, &cases[t], 1e-3f, 2e-3f);
        nb_hvpcheck(what, f_max_sq, &x, 1, &cases[t], 1e-3f, 5e-3f);
        nb_tensor_free(x);
    }
}

/* The square of max's gradient, g = d sum(max^3) / dx: its Hessian-vector
 * product differentiates max's backward (put_at) twice with an upstream that
 * depends on x, the only way to reach the backward of put_at's own backward
 * (pick_at), which never ran. */
static nb_tensor *f_max_grad_sq(nb_tensor **in, void *c) {
    bool old = nb_set_grad_enabled(true);
    nb_tensor *y = f_max(in, c), *g;
    nb_grad(nb_sum_all(nb_mul(nb_mul(y, y), y)), in, 1, &g, true);
    nb_set_grad_enabled(old);
    return nb_mul(g, g);
}

TEST(test_reduce_max_third_derivative) {
    max_args cases[] = {{0, false}, {-1, true}};
    for (int t = 0; t < 2; t++) {
        nb_tensor *x = distinct_param(NB_SHAPE(3, 5, 7));
        char what[48];
        snprintf(what, sizeof what, "max grad squared #%d", t);
        nb_gradcheck(what, f_max_grad_sq, &x, 1, &cases[t], 1e-3f, 5e-3f);
        nb_hvpcheck(what, f_max_grad_sq, &x, 1, &cases[t], 1e-3f, 1e-2f);
        nb_tensor_free(x);
    }
}

/* max inside a smooth function: the log-sum-exp trick m + log(sum(exp(x - m))). */
static nb_tensor *f_lse(nb_tensor **in, void *c) {
    nb_tensor *m = nb_max(in[0], 1, true);
    nb_tensor *s = nb_sum(nb_exp(nb_sub(in[0], m)), (int[]){1}, 1, true);
    return nb_add(m, nb_log(s));
}

TEST(test_reduce_max_in_logsumexp_hvp) {
    nb_tensor *x = distinct_param(NB_SHAPE(4, 9));
    nb_gradcheck("logsumexp", f_lse, &x, 1, NULL, 1e-3f, 2e-3f);
    nb_hvpcheck("logsumexp", f_lse, &x, 1, NULL, 1e-3f, 1e-2f);
    nb_tensor_free(x);
}

/* --- argmax_rows ---------------------------------------------------------- */

TEST(test_reduce_argmax_rows) {
    nb_tensor *x = nb_from_data(NB_SHAPE(2, 4), (float[]){1, 5, 5, 2, 0, -1, -3, -0.5f});
    int32_t out[6];
    nb_argmax_rows(x, out);
    CHECK(out[0] == 1 && out[1] == 0);
    nb_tensor *y = nb_from_data(NB_SHAPE(3, 1, 2), (float[]){1, 2, 4, 3, -1, -1});
    nb_argmax_rows(y, out);
    CHECK(out[0] == 1 && out[1] == 0 && out[2] == 0);
    nb_argmax_rows(nb_scalar(7.f), out);
    CHECK(out[0] == 0);
    nb_tensor *big = const_tensor(NB_SHAPE(500, 101));
    int32_t *am = malloc(sizeof(int32_t) * 500);
    nb_argmax_rows(big, am);
    int bad = 0;
    for (int r = 0; r < 500; r++)
        for (int j = 0; j < 101; j++) bad += big->data[r * 101 + j] > big->data[r * 101 + am[r]];
    CHECK(bad == 0);
    free(am);
    nb_tensor_free(big);
}
