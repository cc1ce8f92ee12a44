/* test_conv_causal.c — the direct kernel behind nb_conv1d_causal (forward
 * and input gradient) against a plain loop on awkward shapes, the op and its
 * input gradient against nb_conv1d (another code path) with batches, thread
 * counts 1 and 2, and the fused residual sum nb__conv1d_causal_add with
 * gradient and Hessian-vector checks. */
#include "test.h"
#include "../src/core/internal.h"
#include "../src/ops/conv_causal_kernel.h"
#include <stdlib.h>

static float *randv(int64_t n, nb_rng *r) {
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) v[i] = (float)nb_rng_normal(r);
    return v;
}

/* The definition, in double; mag gets the sum of the terms' magnitudes (the
 * scale of float rounding errors). */
static void reference(double *y, double *mag, const float *r, const float *bias, const float *a, const int64_t *off, int K,
                      int64_t M, int64_t J, const float *x, int64_t ldx, int64_t T, int64_t ldy) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t t = 0; t < T; t++) {
            double s = (r ? r[m * ldy + t] : 0.0) + (bias ? bias[m] : 0.0), u = fabs(s);
            for (int k = 0; k < K; k++)
                for (int64_t j = 0; j < J; j++) {
                    int64_t p = t + off[k];
                    if (p >= 0 && p < T) {
                        double v = (double)a[(k * M + m) * J + j] * x[j * ldx + p];
                        s += v, u += fabs(v);
                    }
                }
            y[m * ldy + t] = s, mag[m * ldy + t] = u;
        }
}

TEST(test_conv1d_causal_kernel_matches_plain_loop_on_awkward_shapes) {
    /* {M, J, T, K, dilation, sign}: sign -1 the forward's offsets (the past),
     * +1 the input gradient's (the future); T not a multiple of 16 or 64,
     * shorter than the shift, dilations past T, 1 to 256 rows */
    int cs[][6] = {{1, 1, 1, 1, 1, -1},    {3, 17, 5, 2, 8, -1},   {17, 3, 37, 2, 3, 1},  {64, 32, 200, 2, 16, -1},
                   {64, 32, 200, 2, 16, 1}, {256, 32, 70, 1, 1, -1}, {32, 256, 70, 1, 1, 1}, {17, 64, 129, 3, 40, -1},
                   {3, 1, 16, 4, 5, 1},    {1, 17, 65, 2, 100, 1}, {5, 3, 1000, 2, 512, -1}, {2, 2, 3, 2, 1, 1}};
    int ncase = (int)(sizeof cs / sizeof cs[0]);
    nb_rng rng;
    nb_rng_seed(&rng, 11, 0);
    for (int c = 0; c < ncase; c++)
        for (int variant = 0; variant < 4; variant++) { /* bias and r: neither, bias, r, both in place */
            int64_t M = cs[c][0], J = cs[c][1], T = cs[c][2], K = cs[c][3], d = cs[c][4], sign = cs[c][5];
            int64_t ldx = T + 3, ldy = T + (variant & 1); /* rows that are not packed */
            int64_t off[8];
            for (int k = 0; k < K; k++) off[k] = sign * (K - 1 - k) * d;
            float *a = randv(K * M * J, &rng), *x = randv(J * ldx, &rng), *bias = randv(M, &rng);
            float *r = randv(M * ldy, &rng), *y = randv(M * ldy, &rng);
            double *want = malloc(sizeof(double) * (size_t)(M * ldy)), *mag = malloc(sizeof(double) * (size_t)(M * ldy));
            const float *bb = variant & 1 ? bias : NULL, *rr = variant >= 2 ? r : NULL;
            reference(want, mag, rr, bb, a, off, (int)K, M, J, x, ldx, T, ldy);
            float *out = variant == 3 ? r : y; /* variant 3 writes over r */
            float pad0 = out[ldy - 1]; /* past T in the first row when ldy > T */
            nb__causal_rows(out, rr, bb, a, off, (int)K, M, J, x, ldx, T, ldy);
            double worst = 0;
            for (int64_t m = 0; m < M; m++)
                for (int64_t t = 0; t < T; t++) {
                    double e = fabs(out[m * ldy + t] - want[m * ldy + t]) / (1.0 + mag[m * ldy + t]);
                    worst = e > worst ? e : worst;
                }
            CHECK_MSG(worst < 1e-6, "case %d variant %d: error %g of the terms' magnitude", c, variant, worst);
            /* a row's floats past T are left alone */
            if (ldy > T) CHECK_MSG(out[ldy - 1] == pad0, "case %d variant %d: wrote past T", c, variant);
            free(a), free(x), free(bias), free(r), free(y), free(want), free(mag);
        }
}

/* The weight gradient's products (where the build has a direct version;
 * elsewhere nb__causal_wgrad declines and OpenBLAS runs, which the test
 * after this one covers through the op). */
TEST(test_conv1d_causal_weight_kernel_matches_plain_loop) {
    /* {O, C, N, T, K, dilation}: tails of rows (O, C not multiples of 4), of t
     * (not a multiple of 16, one chunk of 1024 and a ragged one), shifts past T */
    int cs[][6] = {{1, 1, 1, 1, 1, 1},   {3, 17, 2, 37, 2, 5},  {64, 32, 1, 2100, 2, 512}, {32, 64, 3, 70, 3, 40},
                   {5, 6, 2, 16, 2, 16}, {256, 32, 1, 33, 1, 1}, {4, 4, 1, 1030, 2, 1}};
    nb_rng rng;
    nb_rng_seed(&rng, 12, 0);
    for (int c = 0; c < (int)(sizeof cs / sizeof cs[0]); c++) {
        int64_t O = cs[c][0], C = cs[c][1], N = cs[c][2], T = cs[c][3], K = cs[c][4], d = cs[c][5];
        int64_t sh[8];
        for (int k = 0; k < K; k++) sh[k] = (K - 1 - k) * d;
        float *g = randv(N * O * T, &rng), *x = randv(N * C * T, &rng), *out = randv(K * O * C, &rng);
        if (!nb__causal_wgrad(out, g, O, x, C, sh, (int)K, N, T)) {
            free(g), free(x), free(out);
            continue;
        }
        double worst = 0;
        for (int k = 0; k < K; k++)
            for (int64_t o = 0; o < O; o++)
                for (int64_t j = 0; j < C; j++) {
                    double sum = 0, mag = 0;
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t t = sh[k]; t < T; t++) {
                            double v = (double)g[(n * O + o) * T + t] * x[(n * C + j) * T + t - sh[k]];
                            sum += v, mag += fabs(v);
                        }
                    double e = fabs(out[(k * O + o) * C + j] - sum) / (1.0 + mag);
                    worst = e > worst ? e : worst;
                }
        CHECK_MSG(worst < 1e-6, "case %d: error %g of the terms' magnitude", c, worst);
        free(g), free(x), free(out);
    }
}

/* sum(conv1d_causal(x, w, b) * R)'s output and input gradient against
 * nb_conv1d (padded copy + image kernels), at one and two threads. */
TEST(test_conv1d_causal_batches_and_threads_match_conv1d) {
    /* {N, C, L, O, K, dilation} */
    int cs[][6] = {{3, 17, 37, 3, 2, 5}, {2, 32, 300, 64, 2, 64}, {2, 64, 83, 32, 1, 1}, {4, 1, 20, 17, 3, 7}};
    int prev = nb_get_threads();
    for (int th = 1; th <= 2; th++) {
        nb_set_threads(th);
        for (int c = 0; c < 4; c++) {
            int64_t N = cs[c][0], C = cs[c][1], L = cs[c][2], O = cs[c][3], K = cs[c][4];
            int d = cs[c][5];
            nb_tensor *x = nb_test_param(NB_SHAPE(N, C, L), 1.f), *w = nb_test_param(NB_SHAPE(O, C, K), 0.3f);
            nb_tensor *b = nb_test_param(NB_SHAPE(O), 0.5f), *R = nb_test_param(NB_SHAPE(N, O, L), 1.f);
            nb_tensor *gx[2], *gw[2], *gb[2], *y[2];
            for (int path = 0; path < 2; path++) {
                y[path] = path ? nb_conv1d(x, w, b, 1, 0, d, true) : nb_conv1d_causal(x, w, b, d);
                nb_tensor *wrt[3] = {x, w, b}, *g[3];
                nb_grad(nb_sum_all(nb_mul(y[path], R)), wrt, 3, g, false);
                gx[path] = g[0], gw[path] = g[1], gb[path] = g[2];
            }
            CHECK_MSG(nb_test_maxrel(y[0]->data, y[1]->data, y[0]->size) < 1e-5, "case %d threads %d: output", c, th);
            CHECK_MSG(nb_test_maxrel(gx[0]->data, gx[1]->data, gx[0]->size) < 1e-5, "case %d threads %d: dx", c, th);
            CHECK_MSG(nb_test_maxrel(gw[0]->data, gw[1]->data, gw[0]->size) < 1e-4, "case %d threads %d: dw", c, th);
            CHECK_MSG(nb_test_maxrel(gb[0]->data, gb[1]->data, gb[0]->size) < 1e-4, "case %d threads %d: db", c, th);
            nb_arena_reset();
            nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(b), nb_tensor_free(R);
        }
    }
    nb_set_threads(prev);
}

/* --- the fused residual sum r + conv1d_causal(x, w, b) ---------------------- */

static nb_tensor *f_add(nb_tensor **in, void *ctx) {
    return nb__conv1d_causal_add(in[3], in[0], in[1], in[2], *(int *)ctx);
}
/* WaveNet's pattern: x feeds two products (residual and skip) whose sums
 * are fused, squared so that the Hessian is not zero. */
static nb_tensor *f_add_twice(nb_tensor **in, void *ctx) {
    int d = *(int *)ctx;
    nb_tensor *h = nb__conv1d_causal_add(in[3], in[0], in[1], in[2], d);
    nb_tensor *s = nb__conv1d_causal_add(h, nb_tanh(in[0]), in[1], NULL, 1);
    return nb_mul(s, h);
}

TEST(test_conv1d_causal_add_matches_sum_and_gradchecks) {
    /* {N, C, L, K, dilation}; weights [C, C, K] so that r has x's shape */
    int cs[][5] = {{2, 3, 9, 2, 1}, {1, 2, 11, 2, 4}, {2, 3, 7, 1, 1}, {1, 4, 5, 3, 8}};
    for (int c = 0; c < 4; c++) {
        int64_t N = cs[c][0], C = cs[c][1], L = cs[c][2], K = cs[c][3];
        int d = cs[c][4];
        nb_tensor *in[4] = {nb_test_param(NB_SHAPE(N, C, L), 1.f), nb_test_param(NB_SHAPE(C, C, K), 0.6f),
                            nb_test_param(NB_SHAPE(C), 0.5f), nb_test_param(NB_SHAPE(N, C, L), 1.f)};
        nb_tensor *y = f_add(in, &d), *ref = nb_add(in[3], nb_conv1d_causal(in[0], in[1], in[2], d));
        CHECK(nb_same_shape(y, ref));
        CHECK(nb_test_maxrel(y->data, ref->data, y->size) < 1e-6);
        char what[64];
        snprintf(what, sizeof what, "conv1d_causal_add case %d", c);
        nb_gradcheck(what, f_add, in, 4, &d, 1e-2f, 3e-3f);
        nb_gradcheck(what, f_add_twice, in, 4, &d, 1e-2f, 3e-3f);
        nb_hvpcheck(what, f_add_twice, in, 4, &d, 1e-2f, 1e-2f);
        nb_arena_reset();
        for (int k = 0; k < 4; k++) nb_tensor_free(in[k]);
    }
}

/* --- eq. 30's loss with the classes on axis 1 ------------------------------- */

typedef struct {
    const int32_t *y;
} ce_ctx;
static nb_tensor *f_ce_ch(nb_tensor **in, void *ctx) {
    return nb__cross_entropy_channels(in[0], ((ce_ctx *)ctx)->y);
}
/* a scalar with a non-zero Hessian in the logits and through the scale */
static nb_tensor *f_ce_ch_sq(nb_tensor **in, void *ctx) {
    nb_tensor *l = f_ce_ch(in, ctx);
    return nb_mul(l, l);
}

TEST(test_eq_30_cross_entropy_on_channels_matches_permuted_rows_and_gradchecks) {
    /* {N, C, L}: L past one block of 256 positions and not a multiple of it */
    int cs[][3] = {{1, 3, 1}, {2, 5, 7}, {3, 256, 300}, {1, 17, 513}};
    nb_rng rng;
    nb_rng_seed(&rng, 5, 0);
    for (int c = 0; c < 4; c++) {
        int64_t N = cs[c][0], C = cs[c][1], L = cs[c][2];
        nb_tensor *o = nb_test_param(NB_SHAPE(N, C, L), 2.f);
        int32_t *y = malloc(sizeof(int32_t) * (size_t)(N * L));
        for (int64_t i = 0; i < N * L; i++) y[i] = (int32_t)nb_rng_below(&rng, (uint32_t)C);
        nb_tensor *a = nb__cross_entropy_channels(o, y);
        nb_tensor *rows = nb_reshape(nb_permute(o, (int[]){0, 2, 1}), 2, (int64_t[]){N * L, C});
        nb_tensor *b = nb_cross_entropy(rows, y);
        CHECK_NEAR(a->data[0], b->data[0], 1e-6);
        nb_tensor *ga, *gb;
        nb_grad(a, &o, 1, &ga, false);
        nb_grad(b, &o, 1, &gb, false);
        CHECK_MSG(nb_test_maxrel(ga->data, gb->data, o->size) < 1e-6, "case %d: gradients differ", c);
        /* the definition at one position */
        double mx = -INFINITY, se = 0;
        int64_t n = N - 1, t = L / 2;
        for (int64_t k = 0; k < C; k++) mx = fmax(mx, o->data[(n * C + k) * L + t]);
        for (int64_t k = 0; k < C; k++) se += exp(o->data[(n * C + k) * L + t] - mx);
        double p = exp(o->data[(n * C + y[n * L + t]) * L + t] - mx) / se;
        CHECK_NEAR(ga->data[(n * C + y[n * L + t]) * L + t], (p - 1) / (double)(N * L), 1e-6);
        if (o->size <= 600) {
            ce_ctx ctx = {y};
            char what[64];
            snprintf(what, sizeof what, "cross_entropy_channels case %d", c);
            nb_gradcheck(what, f_ce_ch, &o, 1, &ctx, 1e-2f, 3e-3f);
            nb_hvpcheck(what, f_ce_ch_sq, &o, 1, &ctx, 1e-2f, 1e-2f);
        }
        nb_arena_reset();
        nb_tensor_free(o);
        free(y);
    }
}
