/* test_shape.c — permute/transpose, slice, concat, gather/scatter rows and
 * embedding: values against hand-written references, gradients and
 * Hessian-vector products against finite differences, fatal index checks. */
#include "test.h"
#include <stdlib.h>

/* A persistent tensor of normal values that needs no gradient. */
static nb_tensor *const_tensor(int ndim, const int64_t *shape) {
    nb_tensor *t = nb_tensor_new(ndim, shape);
    nb_init_normal(t, 0.f, 1.f, nb_test_rng());
    return t;
}

/* Row-major multi-index <-> flat index. */
static void unravel(int64_t i, int nd, const int64_t *shape, int64_t *c) {
    for (int k = nd - 1; k >= 0; k--) {
        c[k] = i % shape[k];
        i /= shape[k];
    }
}
static int64_t ravel(int nd, const int64_t *shape, const int64_t *c) {
    int64_t i = 0;
    for (int k = 0; k < nd; k++) i = i * shape[k] + c[k];
    return i;
}

/* --- permute / transpose ------------------------------------------------- */

/* out[c] = x[c'] with c'[perm[k]] = c[k]. */
static void check_permute(nb_tensor *x, const int *perm, const char *what) {
    nb_tensor *y = nb_permute(x, perm);
    int nd = x->ndim, p[NB_MAXDIM];
    for (int k = 0; k < nd; k++) p[k] = perm[k] < 0 ? perm[k] + nd : perm[k];
    CHECK_MSG(y->ndim == nd, "%s: ndim", what);
    for (int k = 0; k < nd; k++) CHECK_MSG(y->shape[k] == x->shape[p[k]], "%s: shape[%d]", what, k);
    int64_t bad = 0, c[NB_MAXDIM], cx[NB_MAXDIM];
    for (int64_t i = 0; i < y->size; i++) {
        unravel(i, nd, y->shape, c);
        for (int k = 0; k < nd; k++) cx[p[k]] = c[k];
        bad += y->data[i] != x->data[ravel(nd, x->shape, cx)];
    }
    CHECK_MSG(bad == 0, "%s: %lld wrong entries", what, (long long)bad);
}

TEST(test_shape_permute_matches_reference) {
    struct { int nd; int64_t shape[NB_MAXDIM]; int perm[NB_MAXDIM]; } cases[] = {
        {3, {3, 5, 7}, {2, 0, 1}},          /* rotation: tiled transpose path */
        {4, {2, 1, 5, 3}, {3, 1, 0, 2}},    /* a size-1 axis */
        {2, {37, 41}, {1, 0}},              /* partial 32x32 tiles */
        {3, {3, 33, 35}, {0, 2, 1}},        /* batched transpose */
        {3, {3, 4, 5}, {1, 0, 2}},          /* innermost stays: row copies */
        {5, {4, 3, 2, 5, 3}, {4, 2, 0, 3, 1}},
        {3, {5, 4, 3}, {-1, 0, -2}},        /* negative entries */
        {2, {3, 4}, {0, 1}},                /* identity: a view */
        {3, {3, 1, 4}, {1, 0, 2}},          /* only a size-1 axis moves: a view */
        {3, {64, 129, 65}, {2, 0, 1}},      /* large enough for threads */
        {2, {0, 3}, {1, 0}},                /* empty */
        {6, {2, 3, 1, 2, 3, 2}, {5, 4, 3, 2, 1, 0}},
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        nb_tensor *x = const_tensor(cases[t].nd, cases[t].shape);
        char what[32];
        snprintf(what, sizeof what, "permute case %zu", t);
        check_permute(x, cases[t].perm, what);
        nb_tensor_free(x);
        nb_arena_reset();
    }
}

TEST(test_shape_transpose_negative_axes) {
    nb_tensor *x = const_tensor(NB_SHAPE(3, 4, 5));
    nb_tensor *a = nb_transpose(x, -1, 0), *b = nb_permute(x, (int[]){2, 1, 0});
    CHECK(nb_same_shape(a, b) && nb_test_maxrel(a->data, b->data, a->size) == 0);
    nb_tensor *c = nb_transpose(x, -2, -1), *d = nb_permute(x, (int[]){0, 2, 1});
    CHECK(nb_same_shape(c, d) && nb_test_maxrel(c->data, d->data, c->size) == 0);
    /* Hand-computed: [[1, 2, 3], [4, 5, 6]]^T = [[1, 4], [2, 5], [3, 6]]. */
    nb_tensor *m = nb_from_data(NB_SHAPE(2, 3), (float[]){1, 2, 3, 4, 5, 6});
    nb_tensor *mt = nb_transpose(m, 0, 1);
    float want[] = {1, 4, 2, 5, 3, 6};
    CHECK(mt->shape[0] == 3 && mt->shape[1] == 2);
    for (int i = 0; i < 6; i++) CHECK(mt->data[i] == want[i]);
    nb_tensor_free(x);
}

static nb_tensor *f_permute(nb_tensor **in, void *c) { return nb_permute(in[0], c); }
static nb_tensor *f_permute_sq(nb_tensor **in, void *c) { return nb_square(nb_permute(in[0], c)); }
static nb_tensor *f_transpose_sq(nb_tensor **in, void *c) { return nb_square(nb_transpose(in[0], -3, -1)); }

TEST(test_shape_permute_grad_and_hvp) {
    int perms[][4] = {{2, 0, 3, 1}, {3, 2, 1, 0}, {0, 1, 3, 2}, {-1, -3, 0, 2}};
    for (int t = 0; t < 4; t++) {
        nb_tensor *x = nb_test_param(NB_SHAPE(3, 1, 5, 7), 1.f);
        char what[32];
        snprintf(what, sizeof what, "permute #%d", t);
        nb_gradcheck(what, f_permute, &x, 1, perms[t], 1e-2f, 2e-3f);
        nb_hvpcheck(what, f_permute_sq, &x, 1, perms[t], 1e-2f, 5e-3f);
        nb_tensor_free(x);
    }
    nb_tensor *x = nb_test_param(NB_SHAPE(3, 5, 7), 1.f);
    nb_gradcheck("transpose", f_transpose_sq, &x, 1, NULL, 1e-2f, 2e-3f);
    nb_hvpcheck("transpose", f_transpose_sq, &x, 1, NULL, 1e-2f, 5e-3f);
    nb_tensor_free(x);
}

/* --- slice --------------------------------------------------------------- */

TEST(test_shape_slice_values) {
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)i;
    nb_tensor *x = nb_from_data(NB_SHAPE(2, 3, 4), v);
    /* Middle axis, copied: x[:, 1:3, :] */
    nb_tensor *a = nb_slice(x, 1, 1, 3);
    float wa[] = {4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23};
    CHECK(a->ndim == 3 && a->shape[0] == 2 && a->shape[1] == 2 && a->shape[2] == 4);
    for (int i = 0; i < 16; i++) CHECK(a->data[i] == wa[i]);
    /* Last axis with negative bounds: x[..., -3:-1] */
    nb_tensor *b = nb_slice(x, -1, -3, -1);
    CHECK(b->shape[0] == 2 && b->shape[1] == 3 && b->shape[2] == 2);
    for (int i = 0; i < 6; i++) {
        CHECK(b->data[2 * i] == (float)(4 * i + 1));
        CHECK(b->data[2 * i + 1] == (float)(4 * i + 2));
    }
    /* Leading axis: one contiguous block, x[1:2] */
    nb_tensor *c = nb_slice(x, 0, 1, 2);
    CHECK(c->shape[0] == 1 && c->size == 12);
    for (int i = 0; i < 12; i++) CHECK(c->data[i] == (float)(12 + i));
    /* Empty slice. */
    nb_tensor *e = nb_slice(x, 1, 2, 2);
    CHECK(e->shape[1] == 0 && e->size == 0);
}

typedef struct { int axis; int64_t start, stop; } slice_args;
static nb_tensor *f_slice(nb_tensor **in, void *c) {
    slice_args *s = c;
    return nb_slice(in[0], s->axis, s->start, s->stop);
}
static nb_tensor *f_slice_sq(nb_tensor **in, void *c) { return nb_square(f_slice(in, c)); }

TEST(test_shape_slice_grad_and_hvp) {
    slice_args cases[] = {{0, 1, 4}, {1, 2, 5}, {-1, -4, -1}, {2, 0, 6}, {-2, 0, 1}};
    for (int t = 0; t < 5; t++) {
        nb_tensor *x = nb_test_param(NB_SHAPE(5, 7, 6), 1.f);
        char what[32];
        snprintf(what, sizeof what, "slice #%d", t);
        nb_gradcheck(what, f_slice, &x, 1, &cases[t], 1e-2f, 2e-3f);
        nb_hvpcheck(what, f_slice_sq, &x, 1, &cases[t], 1e-2f, 5e-3f);
        nb_tensor_free(x);
    }
}

/* --- concat -------------------------------------------------------------- */

TEST(test_shape_concat_values) {
    nb_tensor *a = nb_from_data(NB_SHAPE(2, 1), (float[]){1, 2});
    nb_tensor *b = nb_from_data(NB_SHAPE(2, 2), (float[]){3, 4, 5, 6});
    nb_tensor *c = nb_concat((nb_tensor *[]){a, b}, 2, -1);
    float w1[] = {1, 3, 4, 2, 5, 6};
    CHECK(c->shape[0] == 2 && c->shape[1] == 3);
    for (int i = 0; i < 6; i++) CHECK(c->data[i] == w1[i]);
    nb_tensor *d = nb_concat((nb_tensor *[]){nb_transpose(b, 0, 1), nb_transpose(a, 0, 1)}, 2, 0);
    float w2[] = {3, 5, 4, 6, 1, 2};
    CHECK(d->shape[0] == 3 && d->shape[1] == 2);
    for (int i = 0; i < 6; i++) CHECK(d->data[i] == w2[i]);
    /* Random 3-D pieces along the middle axis against a reference. */
    nb_tensor *p[3] = {const_tensor(NB_SHAPE(3, 2, 5)), const_tensor(NB_SHAPE(3, 1, 5)), const_tensor(NB_SHAPE(3, 4, 5))};
    nb_tensor *y = nb_concat(p, 3, 1);
    CHECK(y->shape[0] == 3 && y->shape[1] == 7 && y->shape[2] == 5);
    int64_t bad = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 5; k++) {
                int src = j < 2 ? 0 : j < 3 ? 1 : 2, jj = j < 2 ? j : j < 3 ? j - 2 : j - 3;
                bad += y->data[(i * 7 + j) * 5 + k] != p[src]->data[(i * p[src]->shape[1] + jj) * 5 + k];
            }
    CHECK(bad == 0);
    for (int k = 0; k < 3; k++) nb_tensor_free(p[k]);
}

static nb_tensor *f_concat(nb_tensor **in, void *c) { return nb_concat(in, 3, *(int *)c); }
static nb_tensor *f_concat_sq(nb_tensor **in, void *c) { return nb_square(f_concat(in, c)); }

TEST(test_shape_concat_grad_and_hvp) {
    /* Along each axis (positive and negative), the middle piece a constant. */
    int axes[] = {0, 1, -1, -3};
    for (int t = 0; t < 4; t++) {
        int a = axes[t] < 0 ? axes[t] + 3 : axes[t];
        int64_t s0[3] = {3, 5, 7}, s1[3] = {3, 5, 7}, s2[3] = {3, 5, 7};
        s0[a] = 2;
        s1[a] = 1;
        s2[a] = 3;
        nb_tensor *in[3] = {nb_test_param(3, s0, 1.f), const_tensor(3, s1), nb_test_param(3, s2, 1.f)};
        char what[32];
        snprintf(what, sizeof what, "concat axis %d", axes[t]);
        nb_gradcheck(what, f_concat, in, 3, &axes[t], 1e-2f, 2e-3f);
        nb_hvpcheck(what, f_concat_sq, in, 3, &axes[t], 1e-2f, 5e-3f);
        for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
    }
}

/* slice(concat) round trip, second order through both adjoints. */
static nb_tensor *f_split_mix(nb_tensor **in, void *c) {
    nb_tensor *x = nb_concat((nb_tensor *[]){in[0], nb_mul_scalar(in[0], 2.f)}, 2, 1);
    nb_tensor *l = nb_slice(x, 1, 1, 4), *r = nb_slice(x, 1, 3, 6);
    return nb_mul(l, nb_transpose(nb_transpose(r, 0, 1), 0, 1));
}

TEST(test_shape_slice_concat_chain_hvp) {
    nb_tensor *x = nb_test_param(NB_SHAPE(3, 5), 1.f);
    nb_gradcheck("split-mix", f_split_mix, &x, 1, NULL, 1e-2f, 2e-3f);
    nb_hvpcheck("split-mix", f_split_mix, &x, 1, NULL, 1e-2f, 5e-3f);
    nb_tensor_free(x);
}

/* --- gather_rows / scatter_rows ------------------------------------------ */

TEST(test_shape_gather_scatter_values) {
    nb_tensor *x = nb_from_data(NB_SHAPE(3, 2), (float[]){1, 2, 3, 4, 5, 6});
    int32_t idx[] = {2, 0, 2, 1};
    nb_tensor *g = nb_gather_rows(x, idx, 4);
    float wg[] = {5, 6, 1, 2, 5, 6, 3, 4};
    CHECK(g->shape[0] == 4 && g->shape[1] == 2);
    for (int i = 0; i < 8; i++) CHECK(g->data[i] == wg[i]);
    /* Repeated index 2 adds rows 0 and 2 of the input. */
    nb_tensor *y = nb_from_data(NB_SHAPE(4, 2), (float[]){1, 2, 10, 20, 100, 200, 1000, 2000});
    nb_tensor *s = nb_scatter_rows(y, idx, 5);
    float ws[] = {10, 20, 1000, 2000, 101, 202, 0, 0, 0, 0};
    CHECK(s->shape[0] == 5 && s->shape[1] == 2);
    for (int i = 0; i < 10; i++) CHECK(s->data[i] == ws[i]);
    /* n = 0 gives an empty tensor. */
    CHECK(nb_gather_rows(x, NULL, 0)->size == 0);
}

TEST(test_shape_gather_scatter_adjoint_large) {
    /* <gather(x), y> = <x, scatter(y)>, sizes large enough for threads;
     * also scatter against a naive loop (many repeated rows). */
    int64_t V = 97, n = 301, D = 130;
    nb_tensor *x = const_tensor(NB_SHAPE(V, D)), *y = const_tensor(NB_SHAPE(n, D));
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)nb_rng_below(nb_test_rng(), (uint32_t)V);
    nb_tensor *gx = nb_gather_rows(x, idx, n), *sy = nb_scatter_rows(y, idx, V);
    double l = 0, r = 0;
    for (int64_t i = 0; i < gx->size; i++) l += (double)gx->data[i] * y->data[i];
    for (int64_t i = 0; i < sy->size; i++) r += (double)x->data[i] * sy->data[i];
    CHECK_NEAR(l, r, 1e-4);
    double *ref = calloc((size_t)(V * D), sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < D; c++) ref[idx[i] * D + c] += y->data[i * D + c];
    double worst = 0;
    for (int64_t i = 0; i < V * D; i++) worst = fmax(worst, fabs(ref[i] - sy->data[i]));
    CHECK_MSG(worst < 1e-4, "scatter differs from the reference by %g", worst);
    free(ref);
    free(idx);
    nb_tensor_free(x);
    nb_tensor_free(y);
}

static const int32_t gidx[] = {4, 0, 4, 2, 4, 1, 0};
static nb_tensor *f_gather(nb_tensor **in, void *c) { return nb_gather_rows(in[0], gidx, 7); }
static nb_tensor *f_gather_sq(nb_tensor **in, void *c) { return nb_square(f_gather(in, c)); }
static nb_tensor *f_scatter(nb_tensor **in, void *c) { return nb_scatter_rows(in[0], gidx, 6); }
static nb_tensor *f_scatter_sq(nb_tensor **in, void *c) { return nb_square(f_scatter(in, c)); }

TEST(test_shape_gather_scatter_grad_and_hvp) {
    nb_tensor *x = nb_test_param(NB_SHAPE(5, 3, 2), 1.f);
    nb_gradcheck("gather_rows", f_gather, &x, 1, NULL, 1e-2f, 2e-3f);
    nb_hvpcheck("gather_rows", f_gather_sq, &x, 1, NULL, 1e-2f, 5e-3f);
    nb_tensor_free(x);
    nb_tensor *y = nb_test_param(NB_SHAPE(7, 3), 1.f);
    nb_gradcheck("scatter_rows", f_scatter, &y, 1, NULL, 1e-2f, 2e-3f);
    nb_hvpcheck("scatter_rows", f_scatter_sq, &y, 1, NULL, 1e-2f, 5e-3f);
    nb_tensor_free(y);
}

TEST(test_shape_gather_keeps_its_own_copy_of_idx) {
    /* The caller's index array is gone before backward runs. */
    nb_tensor *w = nb_test_param(NB_SHAPE(4, 3), 1.f);
    int32_t *idx = malloc(3 * sizeof(int32_t));
    idx[0] = 3, idx[1] = 1, idx[2] = 3;
    nb_tensor *L = nb_sum_all(nb_gather_rows(w, idx, 3));
    idx[0] = idx[1] = idx[2] = 0;
    free(idx);
    nb_backward(L);
    float want[] = {0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 2, 2};
    for (int i = 0; i < 12; i++) CHECK(w->grad->data[i] == want[i]);
    nb_tensor_free(w);
}

/* --- fatal errors -------------------------------------------------------- */

TEST(test_shape_broadcast_and_sum_to_of_empty_tensors) {
    /* [0, 5] broadcast to [2, 0, 5] and its gradient summed back: an empty
     * sum_to target once divided the row count by its zero size. */
    nb_tensor *x = nb_test_param(2, (int64_t[]){0, 5}, 1.f);
    nb_tensor *y = nb_broadcast_to(x, 3, (int64_t[]){2, 0, 5});
    CHECK(y->ndim == 3 && y->size == 0);
    nb_tensor *s = nb_sum_to(y, 2, (int64_t[]){0, 5});
    CHECK(s->ndim == 2 && s->shape[0] == 0 && s->shape[1] == 5);
    nb_tensor *g[1];
    nb_grad(nb_sum_all(nb_mul(y, y)), &x, 1, g, false);
    CHECK(g[0]->size == 0 && g[0]->shape[1] == 5);
    /* [2, 0, 5] to [1, 0, 1] (the general path) and to [] (a sum of nothing) */
    CHECK(nb_sum_to(y, 3, (int64_t[]){1, 0, 1})->size == 0);
    CHECK(nb_item(nb_sum_to(y, 0, NULL)) == 0.f);
    /* a reduction to an empty result, differentiated with create_graph: its
     * gradient arrives broadcast to [0], empty, not as one uniform value */
    nb_grad(nb_sum_all(nb_sum(x, (int[]){1}, 1, false)), &x, 1, g, true);
    CHECK(g[0]->size == 0 && g[0]->ndim == 2 && g[0]->shape[1] == 5);
    nb_arena_reset();
    nb_tensor_free(x);
}

static void bad_gather(void *c) {
    nb_tensor *x = nb_zeros(NB_SHAPE(4, 2));
    nb_gather_rows(x, (int32_t[]){0, 5}, 2);
}
static void bad_scatter(void *c) {
    nb_tensor *x = nb_zeros(NB_SHAPE(2, 2));
    nb_scatter_rows(x, (int32_t[]){-1, 0}, 3);
}
static void bad_scatter_last(void *c) { nb_scatter_rows(nb_zeros(NB_SHAPE(2, 2)), (int32_t[]){0, 3}, 3); }
static void bad_embedding(void *c) {
    nb_tensor *w = nb_zeros(NB_SHAPE(10, 4));
    nb_embedding(w, (int32_t[]){3, 9, 10}, 3);
}
static void bad_slice(void *c) { nb_slice(nb_zeros(NB_SHAPE(3, 4)), 1, 2, 5); }
static void bad_permute(void *c) { nb_permute(nb_zeros(NB_SHAPE(3, 4)), (int[]){1, 1}); }
/* The product of the known dims overflows int64 (undefined behaviour before
 * it was checked). */
static void bad_reshape_overflow(void *c) {
    nb_reshape(nb_zeros(NB_SHAPE(4)), 3, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40, -1});
}
/* More than NB_MAXDIM target dims overflowed a stack array (ASan). */
static void bad_broadcast_ndim(void *c) {
    nb_broadcast_to(nb_ones(NB_SHAPE(2)), 7, (int64_t[]){1, 1, 1, 1, 1, 1, 2});
}
static void bad_broadcast_negative(void *c) { nb_broadcast_to(nb_ones(NB_SHAPE(1)), 2, (int64_t[]){-3, 1}); }
static void bad_concat(void *c) {
    nb_concat((nb_tensor *[]){nb_zeros(NB_SHAPE(3, 4)), nb_zeros(NB_SHAPE(2, 5))}, 2, 0);
}

TEST(test_shape_out_of_range_is_fatal) {
    nb_test_expect_fatal("gather", bad_gather, NULL, (const char *[]){"gather_rows", "index 5", "[0, 4)", NULL});
    nb_test_expect_fatal("scatter", bad_scatter, NULL, (const char *[]){"scatter_rows", "index -1", "[0, 3)", NULL});
    nb_test_expect_fatal("scatter, last index", bad_scatter_last, NULL,
                         (const char *[]){"scatter_rows", "index 3 (entry 1)", "[0, 3)", NULL});
    nb_test_expect_fatal("embedding", bad_embedding, NULL, (const char *[]){"embedding", "index 10", "10 rows", NULL});
    nb_test_expect_fatal("slice", bad_slice, NULL, (const char *[]){"slice", "[2, 5)", "size 4", NULL});
    nb_test_expect_fatal("permute", bad_permute, NULL, (const char *[]){"permute", NULL});
    nb_test_expect_fatal("concat", bad_concat, NULL, (const char *[]){"concat", "[3, 4]", "[2, 5]", NULL});
    nb_test_expect_fatal("reshape overflow", bad_reshape_overflow, NULL, (const char *[]){"reshape", "overflows", NULL});
    nb_test_expect_fatal("broadcast 7-D", bad_broadcast_ndim, NULL, (const char *[]){"broadcast_to", "7 dimensions", NULL});
    nb_test_expect_fatal("broadcast negative", bad_broadcast_negative, NULL,
                         (const char *[]){"broadcast_to", "negative dimension -3", NULL});
}

static void broadcast_2_to_3(void *c) { nb_broadcast_to(nb_ones(NB_SHAPE(2)), 1, (int64_t[]){3}); }
static void broadcast_to_fewer_dims(void *c) { nb_broadcast_to(nb_ones(NB_SHAPE(2, 3)), 1, (int64_t[]){3}); }
static void sum_to_3_from_2(void *c) { nb_sum_to(nb_ones(NB_SHAPE(2)), 1, (int64_t[]){3}); }

TEST(test_shape_broadcast_and_sum_to_refuse_what_does_not_broadcast) {
    /* A dimension that is neither 1 nor the target's, smaller as well as
     * larger, and a target with fewer dims: each would read past x or drop
     * part of it. */
    nb_test_expect_fatal("[2] to [3]", broadcast_2_to_3, NULL,
                         (const char *[]){"broadcast_to", "dimension 0: 2 does not broadcast to 3", NULL});
    nb_test_expect_fatal("[2, 3] to [3]", broadcast_to_fewer_dims, NULL,
                         (const char *[]){"broadcast_to", "fewer dimensions (1) than the input (2)", NULL});
    nb_test_expect_fatal("sum_to [2] -> [3]", sum_to_3_from_2, NULL,
                         (const char *[]){"sum_to", "dimension 0: 3 does not broadcast to 2", NULL});
}

/* --- embedding ----------------------------------------------------------- */

TEST(test_embed_lookup_and_repeated_indices_accumulate) {
    nb_tensor *w = nb_test_param(NB_SHAPE(5, 3), 1.f);
    int32_t idx[] = {1, 3, 1, 1};
    nb_tensor *e = nb_embedding(w, idx, 4);
    CHECK(e->ndim == 2 && e->shape[0] == 4 && e->shape[1] == 3);
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 3; d++) CHECK(e->data[i * 3 + d] == w->data[idx[i] * 3 + d]);
    /* L = sum(e * R): dL/dw[v] = sum of R's rows i with idx[i] = v. */
    float R[12];
    for (int i = 0; i < 12; i++) R[i] = (float)(i + 1);
    nb_backward(nb_sum_all(nb_mul(e, nb_from_data(NB_SHAPE(4, 3), R))));
    for (int d = 0; d < 3; d++) {
        CHECK_NEAR(w->grad->data[1 * 3 + d], R[0 * 3 + d] + R[2 * 3 + d] + R[3 * 3 + d], 1e-6);
        CHECK_NEAR(w->grad->data[3 * 3 + d], R[1 * 3 + d], 1e-6);
        CHECK(w->grad->data[0 * 3 + d] == 0 && w->grad->data[2 * 3 + d] == 0 && w->grad->data[4 * 3 + d] == 0);
    }
    nb_tensor_free(w);
}

static const int32_t eidx[] = {2, 0, 2, 6, 2};
static nb_tensor *f_embed(nb_tensor **in, void *c) { return nb_embedding(in[0], eidx, 5); }
static nb_tensor *f_embed_sq(nb_tensor **in, void *c) { return nb_square(f_embed(in, c)); }

TEST(test_embed_grad_and_hvp) {
    nb_tensor *w = nb_test_param(NB_SHAPE(7, 5), 1.f);
    nb_gradcheck("embedding", f_embed, &w, 1, NULL, 1e-2f, 2e-3f);
    nb_hvpcheck("embedding", f_embed_sq, &w, 1, NULL, 1e-2f, 5e-3f);
    nb_tensor_free(w);
}
