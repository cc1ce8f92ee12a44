/* test_pool.c — max and average pooling against direct loops, and their
 * gradients, Hessian-vector products and gradients of gradients against
 * finite differences. */
#include "test.h"
#include <stdlib.h>

/* Window k, stride s (0 means k), padding p; odd sizes, overlapping windows,
 * padding up to half a window. */
static const int pcases[][3] = {{2, 0, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 0}, {3, 0, 1}, {4, 3, 2}, {1, 2, 0}};
#define NPCASES (int)(sizeof pcases / sizeof pcases[0])

static int64_t pool_out(int64_t n, int k, int s, int p) { return (n + 2 * p - k) / (s ? s : k) + 1; }

/* Distinct values in [-4, 4) in random order, spaced 8/size apart (0.017
 * or more here), so no two elements of a window are within a
 * finite-difference step of a tie, and the range, which bounds the
 * curvature of the cubes below, does not grow with the size. */
static nb_tensor *distinct_param(int ndim, const int64_t *shape) {
    nb_tensor *t = nb_test_param(ndim, shape, 1.f);
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)t->size);
    for (int64_t i = 0; i < t->size; i++) perm[i] = i;
    nb_rng_shuffle(nb_test_rng(), perm, t->size);
    for (int64_t i = 0; i < t->size; i++) t->data[i] = 8.f / (float)t->size * (float)(perm[i] - t->size / 2);
    free(perm);
    return t;
}

/* Pooling by direct loops: max treats padding as -inf, average as zeros
 * divided by k*k (PyTorch's count_include_pad). */
static double naive_pool(const nb_tensor *x, int64_t plane, int64_t oh, int64_t ow, int k, int s, int p, bool max) {
    if (!s) s = k;
    int64_t H = x->shape[2], W = x->shape[3];
    double acc = max ? -INFINITY : 0.0;
    for (int m = 0; m < k; m++)
        for (int n = 0; n < k; n++) {
            int64_t h = oh * s - p + m, w = ow * s - p + n;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            double v = x->data[(plane * H + h) * W + w];
            acc = max ? fmax(acc, v) : acc + v;
        }
    return max ? acc : acc / (k * k);
}

TEST(test_pool_forward_matches_direct_loop) {
    for (int t = 0; t < NPCASES; t++) {
        int k = pcases[t][0], s = pcases[t][1], p = pcases[t][2];
        int64_t N = 2, C = 3, H = 7, W = 9;
        /* Negative values: padding must not win the max as a 0 would. */
        nb_tensor *x = nb_test_param(NB_SHAPE(N, C, H, W), 1.f);
        for (int64_t i = 0; i < x->size; i++) x->data[i] = -fabsf(x->data[i]) - 0.1f;
        for (int max = 0; max < 2; max++) {
            nb_tensor *y = max ? nb_maxpool2d(x, k, s, p) : nb_avgpool2d(x, k, s, p);
            int64_t OH = pool_out(H, k, s, p), OW = pool_out(W, k, s, p);
            CHECK_MSG(y->shape[0] == N && y->shape[1] == C && y->shape[2] == OH && y->shape[3] == OW,
                      "case %d: wrong output shape", t);
            for (int64_t pl = 0; pl < N * C; pl++)
                for (int64_t i = 0; i < OH; i++)
                    for (int64_t j = 0; j < OW; j++)
                        CHECK_NEAR(y->data[(pl * OH + i) * OW + j], naive_pool(x, pl, i, j, k, s, p, max), 1e-6);
        }
        nb_arena_reset();
        nb_tensor_free(x);
    }
    /* count_include_pad by hand: ones, 3x3 window, padding 1: a corner
     * window holds 4 ones of 9, an edge window 6, an inner one 9. */
    nb_tensor *ones = nb_ones(NB_SHAPE(1, 1, 4, 4));
    nb_tensor *a = nb_avgpool2d(ones, 3, 1, 1);
    CHECK_NEAR(a->data[0], 4.0 / 9, 1e-7);
    CHECK_NEAR(a->data[1], 6.0 / 9, 1e-7);
    CHECK_NEAR(a->data[5], 1.0, 1e-7);
}

TEST(test_maxpool_gradient_goes_to_the_argmax) {
    /* Overlapping windows: an element that is the max of two windows gets
     * both gradients. 1x1x3x3 with the 9 in the centre, 2x2 windows, stride 1:
     * all four windows pick the centre. */
    nb_tensor *x = nb_tensor_from(NB_SHAPE(1, 1, 3, 3), (float[]){1, 2, 3, 4, 9, 5, 6, 7, 8});
    nb_requires_grad(x, true);
    nb_tensor *y = nb_maxpool2d(x, 2, 1, 0);
    for (int i = 0; i < 4; i++) CHECK(y->data[i] == 9.f);
    nb_backward(nb_sum_all(y));
    for (int i = 0; i < 9; i++) CHECK(x->grad->data[i] == (i == 4 ? 4.f : 0.f));
    nb_tensor_free(x);
    /* A NaN wins its windows (as in PyTorch), and only those. */
    nb_tensor *z = nb_maxpool2d(nb_from_data(NB_SHAPE(1, 1, 2, 4), (float[]){1, NAN, 3, 4, 5, 6, 7, 8}), 2, 0, 0);
    CHECK(isnan(z->data[0]) && z->data[1] == 8.f);
}

TEST(test_maxpool_general_path_routes_nan_and_all_minus_inf_windows) {
    /* 3x3 windows, stride 3 (not the 2x2 fast path), on a 1x2x3x6 input:
     * channel 0's first window holds a NaN after its maximum (the NaN wins,
     * and takes the gradient), its second is all -inf (the window's first
     * element takes it, as in PyTorch); channel 1 is ordinary. */
    float v[36];
    for (int i = 0; i < 36; i++) v[i] = (float)(i % 7);
    for (int h = 0; h < 3; h++)
        for (int w = 3; w < 6; w++) v[h * 6 + w] = -INFINITY;
    v[0 * 6 + 1] = 50.f;
    v[2 * 6 + 2] = NAN;
    nb_tensor *x = nb_tensor_from(NB_SHAPE(1, 2, 3, 6), v);
    nb_requires_grad(x, true);
    nb_tensor *y = nb_maxpool2d(x, 3, 3, 0);
    CHECK(isnan(y->data[0]) && y->data[1] == -INFINITY);
    nb_backward(nb_sum_all(nb_mul(y, nb_from_data(NB_SHAPE(1, 2, 1, 2), (float[]){2, 3, 5, 7}))));
    float want[36] = {0};
    want[2 * 6 + 2] = 2.f; /* the NaN */
    want[0 * 6 + 3] = 3.f; /* the -inf window's first element */
    for (int j = 0; j < 2; j++) { /* channel 1: the first maximum of each window */
        int best = -1;
        for (int h = 0; h < 3; h++)
            for (int w = 3 * j; w < 3 * j + 3; w++)
                if (best < 0 || v[18 + h * 6 + w] > v[18 + best]) best = h * 6 + w;
        want[18 + best] = j ? 7.f : 5.f;
    }
    for (int i = 0; i < 36; i++) CHECK_MSG(x->grad->data[i] == want[i], "grad[%d] = %g, expected %g", i, x->grad->data[i], want[i]);
    nb_arena_reset();
    nb_tensor_free(x);
}

/* The 2 x 2, stride-2 average's backward on its fast path writes the tiled
 * part of the input gradient and leaves an odd last row or column, outside
 * every window, to zeros. Each parity of H and W separately, with the arena
 * poisoned with NaN first, so a gradient buffer that is not zeroed where no
 * window reaches shows. Reference: dx[h][w] = g[h/2][w/2] / 4 inside the
 * tiling, 0 outside. */
TEST(test_avgpool_2x2_backward_zeroes_an_odd_last_row_or_column) {
    static const int64_t sizes[][2] = {{6, 7}, {7, 6}, {7, 9}, {6, 20}};
    for (int z = 0; z < 4; z++) {
        int64_t H = sizes[z][0], W = sizes[z][1], OH = H / 2, OW = W / 2;
        nb_tensor *x = nb_test_param(NB_SHAPE(2, 3, H, W), 1.f);
        nb_tensor *R = nb_test_param(NB_SHAPE(2, 3, OH, OW), 1.f);
        nb_full(NB_SHAPE(64, H * W), NAN); /* leaves NaN where the next tensors go */
        nb_arena_reset();
        nb_backward(nb_sum_all(nb_mul(nb_avgpool2d(x, 2, 2, 0), nb_detach(R))));
        int bad = 0;
        for (int64_t pl = 0; pl < 6; pl++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    float want = h / 2 < OH && w / 2 < OW ? R->data[(pl * OH + h / 2) * OW + w / 2] / 4.f : 0.f;
                    bad += !(fabsf(x->grad->data[(pl * H + h) * W + w] - want) <= 1e-6f);
                }
        CHECK_MSG(bad == 0, "%lldx%lld: %d input-gradient elements differ from g/4 or 0", (long long)H, (long long)W,
                  bad);
        nb_arena_reset();
        nb_tensor_free(x);
        nb_tensor_free(R);
    }
}

typedef struct { int k, s, p; bool max; } pool_ctx;

static nb_tensor *f_pool(nb_tensor **in, void *ctx) {
    const pool_ctx *c = ctx;
    return c->max ? nb_maxpool2d(in[0], c->k, c->s, c->p) : nb_avgpool2d(in[0], c->k, c->s, c->p);
}
/* Pooling is piecewise linear; square it for a non-zero Hessian. */
static nb_tensor *f_pool_sq(nb_tensor **in, void *ctx) { return nb_square(f_pool(in, ctx)); }

/* Input heights and widths: odd, and even with 2 x 2 windows tiling it
 * (the fast paths, vectorized from 8 output columns on). */
static const int64_t psizes[][2] = {{7, 6}, {6, 20}};

TEST(test_pool_gradcheck_and_hvpcheck) {
    for (int t = 0; t < NPCASES; t++)
        for (int max = 0; max < 2; max++)
            for (int z = 0; z < 2; z++) {
                pool_ctx c = {pcases[t][0], pcases[t][1], pcases[t][2], max};
                nb_tensor *x = distinct_param(NB_SHAPE(2, 2, psizes[z][0], psizes[z][1]));
                char what[64];
                snprintf(what, sizeof what, "%s case %d, %lldx%lld", max ? "maxpool" : "avgpool", t,
                         (long long)psizes[z][0], (long long)psizes[z][1]);
                nb_gradcheck(what, f_pool, &x, 1, &c, 1e-3f, 3e-3f);
                nb_hvpcheck(what, f_pool_sq, &x, 1, &c, 1e-3f, 1e-2f);
                nb_tensor_free(x);
            }
}

/* The gradient of sum R * pool(x)^2 as a function of x, built with
 * create_graph: its gradient runs the backward of the pooling's backward op
 * (gather for the max's scatter, avgpool for the average's adjoint), and its
 * Hessian the backward of those in turn (scatter, the adjoint again). */
typedef struct { pool_ctx pc; nb_tensor *R; } pgrad_ctx;

static nb_tensor *f_pool_grad(nb_tensor **in, void *ctx) {
    pgrad_ctx *c = ctx;
    bool old = nb_set_grad_enabled(true);
    nb_tensor *y = f_pool(in, &c->pc);
    /* Cubed, so that the gradient is still non-linear in x; by products, not
     * nb_square, whose third derivative at an exact 0 is 0 * pow(0, -1) = NaN. */
    nb_tensor *L = nb_sum_all(nb_mul(nb_mul(nb_mul(y, y), y), nb_detach(c->R)));
    nb_tensor *g;
    nb_grad(L, in, 1, &g, true);
    nb_set_grad_enabled(old);
    return g;
}

TEST(test_pool_grad_of_grad) {
    for (int t = 0; t < NPCASES; t += 2)
        for (int max = 0; max < 2; max++)
            for (int z = 0; z < 2; z++) {
                int k = pcases[t][0], s = pcases[t][1], p = pcases[t][2];
                int64_t H = psizes[z][0], W = psizes[z][1];
                pgrad_ctx c = {{k, s, p, max}, nb_tensor_new(NB_SHAPE(2, 2, pool_out(H, k, s, p), pool_out(W, k, s, p)))};
                nb_init_uniform(c.R, -1.f, 1.f, nb_test_rng());
                nb_tensor *x = distinct_param(NB_SHAPE(2, 2, H, W));
                char what[64];
                snprintf(what, sizeof what, "grad of %s case %d, %lldx%lld", max ? "maxpool" : "avgpool", t,
                         (long long)H, (long long)W);
                nb_gradcheck(what, f_pool_grad, &x, 1, &c, 1e-3f, 5e-3f);
                nb_hvpcheck(what, f_pool_grad, &x, 1, &c, 1e-3f, 1e-2f);
                nb_tensor_free(c.R);
                nb_tensor_free(x);
            }
}

/* The square of max pooling's gradient: its Hessian-vector product
 * differentiates the scatter of the backward with an upstream that depends
 * on x, so the gather of its double backward is differentiated in turn (that
 * backward, gather_bw, never ran). */
static nb_tensor *f_pool_grad_sq(nb_tensor **in, void *ctx) {
    nb_tensor *g = f_pool_grad(in, ctx);
    return nb_mul(g, g);
}

TEST(test_maxpool_third_derivative) {
    for (int t = 0; t < NPCASES; t += 3) {
        int k = pcases[t][0], s = pcases[t][1], p = pcases[t][2];
        int64_t H = psizes[0][0], W = psizes[0][1];
        pgrad_ctx c = {{k, s, p, 1}, nb_tensor_new(NB_SHAPE(2, 2, pool_out(H, k, s, p), pool_out(W, k, s, p)))};
        nb_init_uniform(c.R, -1.f, 1.f, nb_test_rng());
        nb_tensor *x = distinct_param(NB_SHAPE(2, 2, H, W));
        char what[64];
        snprintf(what, sizeof what, "maxpool grad squared, case %d", t);
        nb_gradcheck(what, f_pool_grad_sq, &x, 1, &c, 1e-3f, 5e-3f);
        nb_hvpcheck(what, f_pool_grad_sq, &x, 1, &c, 1e-3f, 1e-2f);
        nb_tensor_free(c.R);
        nb_tensor_free(x);
    }
}

TEST(test_pool_in_a_small_cnn_trains_down) {
    /* conv -> maxpool -> conv -> avgpool on a fixed batch: a few steps of
     * gradient descent on a squared-error loss lower the loss (the ops and
     * their backward rules compose). */
    nb_tensor *x = nb_tensor_new(NB_SHAPE(4, 2, 8, 8));
    nb_init_normal(x, 0, 1, nb_test_rng());
    nb_tensor *w1 = nb_test_param(NB_SHAPE(3, 2, 3, 3), 0.3f), *w2 = nb_test_param(NB_SHAPE(2, 3, 3, 3), 0.3f);
    nb_tensor *target = nb_tensor_new(NB_SHAPE(4, 2, 2, 2));
    nb_init_normal(target, 0, 1, nb_test_rng());
    nb_conv2d_opts same = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    float first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        nb_tensor *h = nb_maxpool2d(nb_conv2d(nb_detach(x), w1, NULL, &same), 2, 0, 0);
        nb_tensor *y = nb_avgpool2d(nb_conv2d(h, w2, NULL, &same), 2, 0, 0);
        nb_tensor *L = nb_sum_all(nb_square(nb_sub(y, nb_detach(target))));
        float l = nb_item(L);
        if (step == 0) first = l;
        last = l;
        nb_backward(L);
        for (int64_t i = 0; i < w1->size; i++) w1->data[i] -= 0.002f * w1->grad->data[i];
        for (int64_t i = 0; i < w2->size; i++) w2->data[i] -= 0.002f * w2->grad->data[i];
        nb_zero_grad(w1);
        nb_zero_grad(w2);
        nb_arena_reset();
    }
    CHECK_MSG(last < 0.7f * first, "loss %g -> %g", first, last);
    nb_tensor_free(x);
    nb_tensor_free(w1);
    nb_tensor_free(w2);
    nb_tensor_free(target);
}

/* The 2 x 2, stride-2 fast path (vectorized over 8 windows) against the rule
 * of the general loop: the first maximum of a window in row-major order
 * wins, a NaN wins over everything. Few distinct values make ties common;
 * W = 38 gives two full vectors and a scalar tail; even H and W make the
 * backward scatter the tiled one. */
TEST(test_maxpool_2x2_fast_path_keeps_first_argmax) {
    int64_t N = 2, C = 3, H = 6, W = 38, OH = 3, OW = 19;
    nb_tensor *x = nb_test_param(NB_SHAPE(N, C, H, W), 1.f);
    for (int64_t i = 0; i < x->size; i++) x->data[i] = roundf(1.5f * x->data[i]);
    for (int64_t i = 5; i < x->size; i += 97) x->data[i] = NAN;
    nb_tensor *y = nb_maxpool2d(x, 2, 0, 0);
    CHECK(y->shape[2] == OH && y->shape[3] == OW);
    nb_tensor *r = nb_test_param(NB_SHAPE(N, C, OH, OW), 1.f);
    nb_backward(nb_sum_all(nb_mul(y, r)));
    for (int64_t pl = 0; pl < N * C; pl++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                int64_t best = -1;
                for (int m = 0; m < 2 && !(best >= 0 && isnan(x->data[best])); m++)
                    for (int n = 0; n < 2; n++) {
                        int64_t at = (pl * H + 2 * i + m) * W + 2 * j + n;
                        if (isnan(x->data[at])) {
                            best = at;
                            break;
                        }
                        if (best < 0 || x->data[at] > x->data[best]) best = at;
                    }
                int64_t o = (pl * OH + i) * OW + j;
                float want = x->data[best], got = y->data[o];
                CHECK_MSG(isnan(want) ? isnan(got) : got == want, "window (%lld, %lld, %lld): %g, expected %g",
                          (long long)pl, (long long)i, (long long)j, got, want);
                CHECK_MSG(x->grad->data[best] == r->data[o], "window (%lld, %lld, %lld): gradient not at the argmax",
                          (long long)pl, (long long)i, (long long)j);
            }
    nb_tensor_free(x);
    nb_tensor_free(r);
}

/* A padding beyond half the window is refused, a huge one too: 2 * p once
 * overflowed int there, and the pooling went on with windows outside x. */
static void huge_padding(void *c) { nb_maxpool2d(nb_zeros(NB_SHAPE(1, 1, 8, 8)), 3, 1, 0x7fffffff); }
static void window_zero(void *c) { nb_maxpool2d(nb_zeros(NB_SHAPE(1, 1, 4, 4)), 0, 1, 0); }
static void window_too_large(void *c) { nb_avgpool2d(nb_zeros(NB_SHAPE(1, 1, 2, 2)), 3, 1, 0); }

TEST(test_pool_bad_padding_and_window_are_fatal) {
    nb_test_expect_fatal("huge padding", huge_padding, NULL,
                         (const char *[]){"maxpool2d", "padding 2147483647", "window/2 = 1", NULL});
    nb_test_expect_fatal("window larger than the input", window_too_large, NULL,
                         (const char *[]){"avgpool2d", "window 3 does not fit", NULL});
    nb_test_expect_fatal("window 0", window_zero, NULL,
                         (const char *[]){"maxpool2d", "window 0 and stride 1 must be positive", NULL});
}
