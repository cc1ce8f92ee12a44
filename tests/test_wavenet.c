/* test_wavenet.c — WaveNet (notes §4.5): μ-law (eq. 31), the gated unit
 * (eq. 32), the transposed convolution, the model's factorization (eq. 30),
 * local (eq. 33) and global (eq. 34) conditioning, the receptive field,
 * cached generation against the naive recomputation, model files. */
#include "test.h"
#include <stdlib.h>
#include <unistd.h>

/* --- eq. 31 ---------------------------------------------------------------- */

TEST(test_eq_31_mu_law_known_points_and_round_trip) {
    CHECK(nb_mulaw_encode(0.f) == 128);
    CHECK(nb_mulaw_encode(1.f) == 255);
    CHECK(nb_mulaw_encode(-1.f) == 0);
    CHECK(nb_mulaw_encode(5.f) == 255 && nb_mulaw_encode(-5.f) == 0); /* clipped */
    /* both directions clip to [-1, 1] themselves, not only after rounding */
    CHECK(nb_mulaw_compress(5.f) == 1.f && nb_mulaw_compress(-5.f) == -1.f);
    CHECK(nb_mulaw_expand(2.f) == 1.f && nb_mulaw_expand(-3.f) == -1.f);
    CHECK(nb_mulaw_encode(NAN) == 128); /* a NaN sample is silence, not (int)NaN */
    CHECK_NEAR(nb_mulaw_compress(1.f), 1.0, 1e-6);
    CHECK_NEAR(nb_mulaw_compress(-1.f), -1.0, 1e-6);
    CHECK_NEAR(nb_mulaw_compress(0.5f), log(1 + 127.5) / log(256.0), 1e-6); /* eq. 31 by hand */
    CHECK_NEAR(nb_mulaw_compress(-0.01f), -log(1 + 2.55) / log(256.0), 1e-6);
    /* levels are centres: encode(decode(q)) = q for every level */
    int bad = 0;
    for (int q = 0; q < 256; q++) bad += nb_mulaw_encode(nb_mulaw_decode(q)) != q;
    CHECK(bad == 0);
    CHECK_NEAR(nb_mulaw_decode(255), 1.0, 1e-6);
    CHECK_NEAR(nb_mulaw_decode(0), -1.0, 1e-6);
    /* x -> level -> x: the error is at most half a level's width in the
     * companded domain, i.e. small near 0 and larger near +-1 */
    double worst_small = 0, worst = 0;
    for (int i = -1000; i <= 1000; i++) {
        float x = (float)i / 1000.f;
        double e = fabs(nb_mulaw_decode(nb_mulaw_encode(x)) - x);
        double ey = fabs(nb_mulaw_compress(nb_mulaw_decode(nb_mulaw_encode(x))) - nb_mulaw_compress(x));
        CHECK(ey <= 1.0 / 255 + 1e-6);
        if (fabs(x) <= 0.01 && e > worst_small) worst_small = e;
        if (e > worst) worst = e;
        CHECK_NEAR(nb_mulaw_expand(nb_mulaw_compress(x)), x, 1e-5);
    }
    CHECK(worst_small < 5e-4);
    CHECK(worst < 0.05);
    /* symmetric: levels q and 255 - q are mirror images */
    for (int q = 0; q < 128; q++) CHECK_NEAR(nb_mulaw_decode(q), -nb_mulaw_decode(255 - q), 1e-6);
}

/* eq. 31 is differentiable at 0 (both one-sided slopes are mu / ln(1 + mu)),
 * so the op's gradient there is that slope, not the 0 that autograd of
 * sign(x) log1p(mu |x|) / ln(1 + mu) gives (PyTorch's); elsewhere it is
 * mu / ((1 + mu |x|) ln(1 + mu)). */
TEST(test_eq_31_mu_law_gradient_at_zero_is_the_true_slope) {
    nb_tensor *x = nb_tensor_from(NB_SHAPE(4), (float[]){0.f, -0.f, 0.01f, -0.5f});
    nb_requires_grad(x, true);
    nb_backward(nb_sum_all(nb_mulaw(x)));
    double mu = 255, ln = log1p(mu);
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(x->grad->data[i], mu / ((1 + mu * fabs(x->data[i])) * ln), 1e-4);
    CHECK_NEAR(x->grad->data[0], 45.985, 1e-3);
    nb_tensor_free(x);
    nb_arena_reset();
}

static nb_tensor *f_mulaw(nb_tensor **in, void *ctx) { return nb_mulaw(in[0]); }
static nb_tensor *f_mulaw_sq(nb_tensor **in, void *ctx) { return nb_square(nb_mulaw(in[0])); }

TEST(test_eq_31_mulaw_op_gradcheck_and_hvpcheck) {
    nb_tensor *x = nb_test_param(NB_SHAPE(3, 7), 0.3f);
    for (int64_t i = 0; i < x->size; i++) /* keep away from the kink at 0 */
        if (fabsf(x->data[i]) < 0.05f) x->data[i] = 0.1f;
    nb_tensor *y = nb_mulaw(x);
    for (int64_t i = 0; i < x->size; i++) CHECK_NEAR(y->data[i], nb_mulaw_compress(x->data[i]), 1e-5);
    nb_gradcheck("mulaw", f_mulaw, &x, 1, NULL, 1e-3f, 2e-2f);
    nb_hvpcheck("mulaw", f_mulaw_sq, &x, 1, NULL, 1e-3f, 5e-2f);
    nb_arena_reset();
    nb_tensor_free(x);
}

/* --- eq. 32 ---------------------------------------------------------------- */

static nb_tensor *f_gate(nb_tensor **in, void *ctx) { return nb_gated(in[0]); }
static nb_tensor *f_gate_prod(nb_tensor **in, void *ctx) {
    nb_tensor *z = nb_gated(in[0]);
    return nb_mul(z, nb_mul(z, in[1])); /* cross terms with a second input */
}

TEST(test_eq_32_gated_unit_matches_definition_and_gradchecks) {
    int64_t shapes[][3] = {{2, 6, 5}, {1, 2, 1}, {3, 8, 4}};
    for (int c = 0; c < 3; c++) {
        int64_t N = shapes[c][0], C2 = shapes[c][1], L = shapes[c][2];
        nb_tensor *x = nb_test_param(NB_SHAPE(N, C2, L), 1.5f);
        nb_tensor *z = nb_gated(x);
        CHECK(z->ndim == 3 && z->shape[0] == N && z->shape[1] == C2 / 2 && z->shape[2] == L);
        for (int64_t n = 0; n < N; n++)
            for (int64_t ch = 0; ch < C2 / 2; ch++)
                for (int64_t t = 0; t < L; t++) {
                    double a = x->data[(n * C2 + ch) * L + t], b = x->data[(n * C2 + C2 / 2 + ch) * L + t];
                    CHECK_NEAR(z->data[(n * C2 / 2 + ch) * L + t], tanh(a) / (1 + exp(-b)), 1e-5); /* eq. 32 */
                }
        nb_tensor *w = nb_test_param(NB_SHAPE(N, C2 / 2, L), 1.f);
        nb_tensor *in[2] = {x, w};
        nb_gradcheck("gated", f_gate, in, 1, NULL, 1e-3f, 1e-2f);
        nb_gradcheck("gated product", f_gate_prod, in, 2, NULL, 1e-3f, 1e-2f);
        nb_hvpcheck("gated product", f_gate_prod, in, 2, NULL, 1e-3f, 3e-2f);
        nb_arena_reset();
        nb_tensor_free(x);
        nb_tensor_free(w);
    }
}

/* --- transposed convolution ------------------------------------------------- */

typedef struct {
    int stride, pad;
} tc_opts;
static nb_tensor *f_tconv(nb_tensor **in, void *ctx) {
    const tc_opts *o = ctx;
    return nb_conv_transpose1d(in[0], in[1], in[2], o->stride, o->pad);
}
static nb_tensor *f_tconv_prod(nb_tensor **in, void *ctx) {
    nb_tensor *y = f_tconv(in, ctx);
    return nb_mul(y, y);
}

/* A negative stride was taken as 1 without a word. */
static void conv_transpose_negative_stride(void *c) {
    nb_conv_transpose1d(nb_zeros(NB_SHAPE(1, 2, 5)), nb_zeros(NB_SHAPE(2, 3, 2)), NULL, -2, 0);
}

TEST(test_conv_transpose1d_negative_stride_is_fatal) {
    nb_test_expect_fatal("conv_transpose1d stride", conv_transpose_negative_stride, NULL,
                         (const char *[]){"conv_transpose1d", "stride -2", NULL});
}

TEST(test_conv_transpose1d_matches_loop_and_gradchecks) {
    /* {C, O, K, stride, pad, T}: K = stride (the matmul path) and the general path */
    /* the last: K = stride with padding, which must take the general path
     * (the product path has no way to crop; it returned T K samples) */
    int cs[][6] = {{3, 2, 4, 4, 0, 5}, {2, 3, 3, 2, 1, 4}, {2, 2, 4, 1, 0, 6},
                   {3, 2, 5, 3, 2, 3}, {1, 1, 2, 2, 0, 1}, {2, 3, 3, 3, 1, 4}};
    for (int c = 0; c < 6; c++) {
        int64_t N = 2, C = cs[c][0], O = cs[c][1], K = cs[c][2], T = cs[c][5];
        tc_opts o = {cs[c][3], cs[c][4]};
        nb_tensor *in[3] = {nb_test_param(NB_SHAPE(N, C, T), 1.f), nb_test_param(NB_SHAPE(C, O, K), 0.7f),
                            nb_test_param(NB_SHAPE(O), 0.5f)};
        nb_tensor *y = f_tconv(in, &o);
        int64_t OL = (T - 1) * o.stride + K - 2 * o.pad;
        CHECK(y->ndim == 3 && y->shape[0] == N && y->shape[1] == O && y->shape[2] == OL);
        double *ref = calloc((size_t)(N * O * OL), sizeof(double));
        for (int64_t n = 0; n < N; n++)
            for (int64_t oc = 0; oc < O; oc++) {
                for (int64_t t = 0; t < OL; t++) ref[(n * O + oc) * OL + t] = in[2]->data[oc];
                for (int64_t ic = 0; ic < C; ic++)
                    for (int64_t t = 0; t < T; t++)
                        for (int64_t k = 0; k < K; k++) {
                            int64_t p = t * o.stride + k - o.pad;
                            if (p >= 0 && p < OL)
                                ref[(n * O + oc) * OL + p] +=
                                    (double)in[0]->data[(n * C + ic) * T + t] * in[1]->data[(ic * O + oc) * K + k];
                        }
            }
        for (int64_t i = 0; i < y->size; i++) CHECK_NEAR(y->data[i], ref[i], 1e-5);
        free(ref);
        char what[64];
        snprintf(what, sizeof what, "conv_transpose1d case %d", c);
        nb_gradcheck(what, f_tconv, in, 3, &o, 1e-2f, 3e-3f);
        nb_hvpcheck(what, f_tconv_prod, in, 3, &o, 1e-2f, 1e-2f);
        nb_arena_reset();
        for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
    }
}

/* Stride 0 means 1 (as conv2d's); it is not some other stride. */
TEST(test_conv_transpose1d_stride_zero_is_stride_one) {
    nb_tensor *x = nb_test_param(NB_SHAPE(2, 3, 5), 1.f), *w = nb_test_param(NB_SHAPE(3, 2, 3), 0.7f);
    for (int pad = 0; pad < 3; pad++) {
        nb_tensor *a = nb_conv_transpose1d(x, w, NULL, 0, pad), *b = nb_conv_transpose1d(x, w, NULL, 1, pad);
        CHECK(nb_same_shape(a, b) && a->shape[2] == 5 + 3 - 1 - 2 * pad);
        if (nb_same_shape(a, b)) CHECK(memcmp(a->data, b->data, sizeof(float) * (size_t)a->size) == 0);
    }
    nb_arena_reset();
    nb_tensor_free(x);
    nb_tensor_free(w);
}

/* Padding crops p samples from each end, so it must lie in [0, K - 1]. */
static void conv_transpose_pad(void *c) {
    nb_conv_transpose1d(nb_zeros(NB_SHAPE(1, 2, 5)), nb_zeros(NB_SHAPE(2, 3, 4)), NULL, 2, *(int *)c);
}

static void conv_transpose_empty(void *c) {
    nb_conv_transpose1d(nb_zeros(NB_SHAPE(1, 2, 0)), nb_zeros(NB_SHAPE(2, 3, 2)), NULL, 2, 0);
}

TEST(test_conv_transpose1d_empty_input_is_fatal) {
    nb_test_expect_fatal("conv_transpose1d T = 0", conv_transpose_empty, NULL,
                         (const char *[]){"conv_transpose1d", "empty input", NULL});
}

TEST(test_conv_transpose1d_padding_outside_0_to_k_minus_1_is_fatal) {
    int bad[] = {-1, 4};
    for (int k = 0; k < 2; k++) {
        char needle[32];
        snprintf(needle, sizeof needle, "padding %d must be", bad[k]);
        nb_test_expect_fatal("conv_transpose1d padding", conv_transpose_pad, &bad[k],
                             (const char *[]){"conv_transpose1d", needle, "K - 1 = 3", NULL});
    }
}

/* --- dilated causal convolution --------------------------------------------- */

static nb_tensor *f_causal(nb_tensor **in, void *ctx) { return nb_conv1d_causal(in[0], in[1], in[2], *(int *)ctx); }
static nb_tensor *f_causal_prod(nb_tensor **in, void *ctx) {
    nb_tensor *y = f_causal(in, ctx);
    return nb_mul(y, nb_conv1d_causal(in[0], in[1], NULL, *(int *)ctx));
}

TEST(test_conv1d_causal_matches_conv1d_and_gradchecks) {
    /* {N, C, L, O, K, dilation}: taps reaching past the start, K = 1, 3 */
    int cs[][6] = {{2, 3, 9, 4, 2, 1}, {1, 2, 11, 3, 2, 4}, {2, 3, 7, 2, 3, 2}, {1, 4, 5, 3, 1, 1}, {2, 2, 6, 2, 2, 8}};
    for (int c = 0; c < 5; c++) {
        int64_t N = cs[c][0], C = cs[c][1], L = cs[c][2], O = cs[c][3], K = cs[c][4];
        int d = cs[c][5];
        nb_tensor *in[3] = {nb_test_param(NB_SHAPE(N, C, L), 1.f), nb_test_param(NB_SHAPE(O, C, K), 0.6f),
                            nb_test_param(NB_SHAPE(O), 0.5f)};
        nb_tensor *y = f_causal(in, &d), *ref = nb_conv1d(in[0], in[1], in[2], 1, 0, d, true);
        CHECK(nb_same_shape(y, ref));
        for (int64_t i = 0; i < y->size; i++) CHECK_NEAR(y->data[i], ref->data[i], 1e-5);
        char what[64];
        snprintf(what, sizeof what, "conv1d_causal case %d", c);
        nb_gradcheck(what, f_causal, in, 3, &d, 1e-2f, 3e-3f);
        nb_hvpcheck(what, f_causal_prod, in, 3, &d, 1e-2f, 1e-2f);
        nb_arena_reset();
        for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
    }
}

/* --- the model ------------------------------------------------------------- */

/* D features per frame upsampled to C channels (0: D) */
static nb_wavenet *tiny_c(int nspk, int D, int C, uint64_t seed) {
    nb_wavenet_config c = {.layers = 3, .stacks = 2, .residual = 4, .skip = 5, .nspeakers = nspk, .cond_dim = D,
                           .cond_hop = D ? 4 : 0, .cond_channels = C};
    nb_rng r;
    nb_rng_seed(&r, seed, 0);
    nb_wavenet *m = nb_wavenet_new(&c, &r);
    /* larger weights than the default init, so every path matters */
    nb_param *p;
    int np = nb_wavenet_params(m, &p, NULL);
    for (int i = 0; i < np; i++)
        for (int64_t j = 0; j < p[i].t->size; j++) p[i].t->data[j] *= 1.5f;
    return m;
}
static nb_wavenet *tiny(int nspk, int D, uint64_t seed) { return tiny_c(nspk, D, 0, seed); }

static void random_levels(int32_t *q, int64_t n, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed, 7);
    /* a slow walk around silence: a signal-like sequence, not white noise */
    int v = 128;
    for (int64_t i = 0; i < n; i++) {
        v += (int)nb_rng_below(&r, 21) - 10;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        q[i] = v;
    }
}

/* A model without features given features: the conditioning sum read its
 * NULL weights (a segfault). */
static void forward_with_unwanted_cond(void *c) {
    nb_wavenet *m = tiny(0, 0, 1);
    int32_t x[8] = {0};
    nb_wavenet_forward(m, x, 1, 8, NULL, nb_zeros(NB_SHAPE(1, 3, 8)));
}

TEST(test_wavenet_forward_refuses_cond_without_features) {
    nb_test_expect_fatal("unwanted cond", forward_with_unwanted_cond, NULL,
                         (const char *[]){"wavenet_forward", "no local conditioning", NULL});
}

/* A speaker id equal to the speaker count is one past the last. */
static void wavenet_speaker_past_end(void *c) {
    nb_wavenet_forward(c, (int32_t[]){128, 130}, 1, 2, (int32_t[]){3}, NULL);
}

TEST(test_wavenet_forward_refuses_the_speaker_one_past_the_last) {
    nb_wavenet *m = tiny_c(3, 0, 0, 2);
    nb_test_expect_fatal("speaker 3 of 3", wavenet_speaker_past_end, m,
                         (const char *[]){"wavenet_forward", "speaker 3 out of range [0, 3)", NULL});
    nb_wavenet_free(m);
}

/* Samples past the last feature frame are conditioned on the last frame:
 * the same as with that frame written out again. */
TEST(test_eq_33_wavenet_cond_past_the_end_repeats_the_last_frame) {
    nb_wavenet *m = tiny_c(0, 2, 3, 8); /* hop 4 */
    nb_tensor *feats = nb_test_param(NB_SHAPE(3, 2), 1.f), *longer = nb_tensor_new(NB_SHAPE(6, 2));
    for (int64_t f = 0; f < 6; f++)
        for (int j = 0; j < 2; j++) longer->data[f * 2 + j] = feats->data[(f < 3 ? f : 2) * 2 + j];
    bool was = nb_set_grad_enabled(false);
    int64_t spans[][2] = {{0, 24}, {9, 10}, {13, 7}};
    for (int k = 0; k < 3; k++) {
        nb_tensor *a = nb_wavenet_cond(m, feats, spans[k][0], spans[k][1]);
        nb_tensor *b = nb_wavenet_cond(m, longer, spans[k][0], spans[k][1]);
        CHECK(nb_same_shape(a, b) && a->shape[2] == spans[k][1]);
        if (nb_same_shape(a, b)) {
            CHECK_MSG(memcmp(a->data, b->data, sizeof(float) * (size_t)a->size) == 0, "span %d", k);
        }
    }
    nb_set_grad_enabled(was);
    nb_arena_reset();
    nb_tensor_free(feats);
    nb_tensor_free(longer);
    nb_wavenet_free(m);
}

/* Requests outside the model's domain are refused by name: a conditioning
 * span before sample 0, a target level of 256, a negative temperature (it
 * was not taken as 0), features that end before the samples asked for. */
static void wavenet_cond_before_start(void *c) {
    nb_wavenet *m = c;
    nb_tensor *f = nb_zeros(NB_SHAPE(4, 2));
    nb_wavenet_cond(m, f, -3, 5);
}
static void wavenet_loss_level_256(void *c) {
    nb_wavenet_loss(c, (int32_t[]){128, 7, 256}, 1, 2, NULL, NULL);
}

TEST(test_wavenet_refuses_spans_levels_temperatures_outside_the_domain) {
    nb_wavenet *m = tiny_c(0, 2, 0, 4), *plain = tiny(0, 0, 4);
    nb_test_expect_fatal("cond before 0", wavenet_cond_before_start, m,
                         (const char *[]){"wavenet_cond", "span non-empty", NULL});
    nb_test_expect_fatal("level 256", wavenet_loss_level_256, plain,
                         (const char *[]){"wavenet_loss", "sample values must be in [0, 256)", NULL});
    int32_t out[8];
    nb_wavenet_gen_opts o = {.samples = 8, .temperature = -0.5f};
    CHECK(nb_wavenet_generate(plain, &o, out, NULL) == -1 && strstr(nb_errmsg(), "temperature must be >= 0"));
    nb_tensor *u = nb_zeros(NB_SHAPE(2, 7)); /* 7 samples of conditioning for 8 */
    o = (nb_wavenet_gen_opts){.samples = 8, .cond = u};
    CHECK(nb_wavenet_generate(m, &o, out, NULL) == -1 && strstr(nb_errmsg(), "upsampled features [2, >= 8]"));
    o.samples = 7;
    CHECK_MSG(nb_wavenet_generate(m, &o, out, NULL) == 0, "%s", nb_errmsg());
    nb_arena_reset();
    nb_wavenet_free(m);
    nb_wavenet_free(plain);
}

/* PyTorch's default init, U(+-1/sqrt(fan_in)) with fan_in = input channels x
 * kernel taps, for every convolution and the speaker projection. */
TEST(test_wavenet_init_bounds_follow_each_fan_in) {
    nb_wavenet_config c = {.layers = 2, .stacks = 1, .residual = 4, .skip = 16, .nspeakers = 3, .cond_dim = 2,
                           .cond_hop = 4, .cond_channels = 5};
    nb_rng r;
    nb_rng_seed(&r, 12, 0);
    nb_wavenet *m = nb_wavenet_new(&c, &r);
    nb_param *p;
    const char *const *names;
    int np = nb_wavenet_params(m, &p, &names);
    struct { const char *part; int fan_in; } fans[] = {{".dilated.", 2 * 4}, {".speaker.", 3}, {".cond.", 5},
                                                       {".res.", 4},      {".skip.", 4},    {"out1.", 16},
                                                       {"out2.", 16}};
    int checked = 0;
    for (int i = 0; i < np; i++)
        for (int k = 0; k < 7; k++) {
            if (!strstr(names[i], fans[k].part)) continue;
            double b = 1 / sqrt((double)fans[k].fan_in), hi = 0;
            for (int64_t j = 0; j < p[i].t->size; j++) hi = fmax(hi, fabs(p[i].t->data[j]));
            CHECK_MSG(hi <= b && hi > 0.5 * b, "%s: largest |w| %g, bound %g", names[i], hi, b);
            checked++;
        }
    CHECK(checked == 2 * 6 + 2 + 4);
    nb_wavenet_free(m);
}

TEST(test_wavenet_receptive_field_is_exact) {
    nb_wavenet *m = tiny(0, 0, 1);
    const nb_wavenet_config *c = nb_wavenet_get_config(m);
    int64_t RF = nb_wavenet_receptive_field(c);
    CHECK(RF == 2 * 7 + 1);
    nb_wavenet_config ref = {.layers = 10, .stacks = 2, .residual = 32, .skip = 32};
    CHECK(nb_wavenet_receptive_field(&ref) == 2047);
    int64_t L = 40, t = 30;
    int32_t x[40], x2[40];
    random_levels(x, L, 3);
    nb_tensor *a = nb_wavenet_forward(m, x, 1, L, NULL, NULL);
    /* the logits at t change with x[t - RF + 1] and not with x[t - RF] or x[t + 1] */
    int changes[3] = {0};
    int64_t pos[3] = {t - RF + 1, t - RF, t + 1};
    for (int k = 0; k < 3; k++) {
        memcpy(x2, x, sizeof x);
        x2[pos[k]] = (x2[pos[k]] + 77) % 256;
        nb_tensor *b = nb_wavenet_forward(m, x2, 1, L, NULL, NULL);
        for (int q = 0; q < 256; q++) changes[k] += a->data[q * L + t] != b->data[q * L + t];
    }
    CHECK(changes[0] > 0);
    CHECK(changes[1] == 0);
    CHECK(changes[2] == 0);
    nb_arena_reset();
    nb_wavenet_free(m);
}

/* The upsampled conditioning of a whole clip (for the generator): [C, n]. */
static nb_tensor *cond_of(nb_wavenet *m, nb_tensor *feats, int64_t n) {
    nb_tensor *u = nb_wavenet_cond(m, feats, 0, n);
    return nb_reshape(u, 2, (int64_t[]){u->shape[1], n});
}

TEST(test_wavenet_cached_generation_equals_naive_recomputation) {
    nb_wavenet *m = tiny_c(3, 2, 5, 11); /* 2 features upsampled to 5 channels */
    int64_t n = 60;
    nb_tensor *feats = nb_test_param(NB_SHAPE(16, 2), 1.f);
    bool was = nb_set_grad_enabled(false);
    nb_tensor *u = cond_of(m, feats, n);
    int32_t spk[3] = {2, 0, 1};
    float temps[3] = {1.f, 0.7f, 0.f};
    for (int k = 0; k < 3; k++) {
        int32_t a[3 * 60], b[3 * 60];
        double la[3], lb[3];
        nb_wavenet_gen_opts o = {.streams = 3, .samples = n, .speakers = spk, .cond = u, .temperature = temps[k],
                                 .seed = 42 + (uint64_t)k};
        CHECK(nb_wavenet_generate(m, &o, a, la) == 0);
        o.naive = true;
        CHECK(nb_wavenet_generate(m, &o, b, lb) == 0);
        CHECK(memcmp(a, b, sizeof a) == 0);
        for (int s = 0; s < 3; s++) CHECK(la[s] == lb[s]); /* bitwise */
        /* switching from the cached path to the naive one half way */
        o.naive_from = 25;
        double secs = -1;
        o.naive_seconds = &secs;
        CHECK(nb_wavenet_generate(m, &o, b, lb) == 0);
        CHECK(memcmp(a, b, sizeof a) == 0);
        CHECK(secs >= 0);
        /* drawn streams differ (different speakers and random streams) and
         * cover many levels; at temperature 0 only the speaker differs,
         * which need not move any argmax of a random model (the speaker
         * term's effect is test_eq_34's) */
        if (temps[k] > 0)
            for (int s = 0; s < 3; s++)
                CHECK_MSG(memcmp(a + s * n, a + (s + 1) % 3 * n, sizeof(int32_t) * (size_t)n) != 0,
                          "temperature %g: streams %d and %d alike", temps[k], s, (s + 1) % 3);
        int distinct = 0, seen[256] = {0};
        for (int64_t i = 0; i < 3 * n; i++) distinct += !seen[a[i]]++;
        if (k == 0) CHECK(distinct > 20);
    }
    /* the same seed gives the same samples; another seed others */
    int32_t c1[60], c2[60];
    nb_wavenet_gen_opts o = {.streams = 1, .samples = n, .speakers = spk, .cond = u, .temperature = 1.f, .seed = 5};
    nb_wavenet_generate(m, &o, c1, NULL);
    nb_wavenet_generate(m, &o, c2, NULL);
    CHECK(memcmp(c1, c2, sizeof c1) == 0);
    o.seed = 6;
    nb_wavenet_generate(m, &o, c2, NULL);
    CHECK(memcmp(c1, c2, sizeof c1) != 0);
    /* bad requests are errors, not crashes */
    int32_t bad_spk = 3;
    o.speakers = &bad_spk;
    CHECK(nb_wavenet_generate(m, &o, c2, NULL) == -1 && strstr(nb_errmsg(), "speaker"));
    o.speakers = spk;
    o.cond = NULL;
    CHECK(nb_wavenet_generate(m, &o, c2, NULL) == -1);
    nb_set_grad_enabled(was);
    nb_arena_reset();
    nb_tensor_free(feats);
    nb_wavenet_free(m);
}

/* The level drawn is distributed as softmax(logits / T), and at T = 0 it is
 * the argmax of the logits: both against the logits of the training graph
 * (nb_wavenet_forward), an independent computation. The output bias is set
 * to a peaked profile, so the distribution is far from uniform and a wrong
 * temperature (or a wrong inverse-CDF walk) moves every count. */
TEST(test_wavenet_generation_samples_softmax_at_the_temperature) {
    nb_wavenet *m = tiny_c(0, 0, 0, 17);
    nb_param *p;
    const char *const *names;
    int np = nb_wavenet_params(m, &p, &names);
    for (int i = 0; i < np; i++)
        if (!strcmp(names[i], "out2.bias"))
            for (int q = 0; q < 256; q++) p[i].t->data[q] = -0.08f * fabsf((float)q - 180.f);
    bool was = nb_set_grad_enabled(false);
    /* T = 0: each sample is the argmax of the logits given the ones before */
    enum { n = 40 };
    int32_t out[n], x[n];
    nb_wavenet_gen_opts o = {.streams = 1, .samples = n, .temperature = 0.f, .seed = 3};
    CHECK(nb_wavenet_generate(m, &o, out, NULL) == 0);
    x[0] = 128;
    for (int t = 1; t < n; t++) x[t] = out[t - 1];
    nb_tensor *lg = nb_wavenet_forward(m, x, 1, n, NULL, NULL); /* [1, 256, n] */
    int checked = 0;
    for (int t = 0; t < n; t++) {
        int best = 0;
        for (int q = 1; q < 256; q++)
            if (lg->data[q * n + t] > lg->data[best * n + t]) best = q;
        double second = -INFINITY;
        for (int q = 0; q < 256; q++)
            if (q != best && lg->data[q * n + t] > second) second = lg->data[q * n + t];
        if (lg->data[best * n + t] - second < 1e-3) continue; /* a near tie: either is right */
        CHECK_MSG(out[t] == best, "sample %d: %d drawn at T = 0, the argmax is %d", t, out[t], best);
        checked++;
    }
    CHECK(checked > n / 2);
    /* T = 0.5: the first level of S streams (each its own random stream)
     * against S softmax(l / T), every count within 5 standard deviations */
    enum { S = 4000 };
    int32_t *first = malloc(sizeof(int32_t) * S);
    o = (nb_wavenet_gen_opts){.streams = S, .samples = 1, .temperature = 0.5f, .seed = 9};
    CHECK(nb_wavenet_generate(m, &o, first, NULL) == 0);
    nb_tensor *l0 = nb_wavenet_forward(m, (int32_t[]){128}, 1, 1, NULL, NULL);
    double mx = -INFINITY, tot = 0, pq[256];
    int count[256] = {0};
    for (int q = 0; q < 256; q++) mx = fmax(mx, l0->data[q]);
    for (int q = 0; q < 256; q++) tot += pq[q] = exp((l0->data[q] - mx) / 0.5);
    for (int s = 0; s < S; s++) count[first[s]]++;
    double worst = 0;
    for (int q = 0; q < 256; q++) {
        double e = S * pq[q] / tot, z = fabs(count[q] - e) / sqrt(e + 1);
        if (z > worst) worst = z;
    }
    CHECK_MSG(worst < 5, "a level's count is %.1f standard deviations from softmax(l / T)", worst);
    free(first);
    nb_set_grad_enabled(was);
    nb_arena_reset();
    nb_wavenet_free(m);
}

TEST(test_eq_30_wavenet_cached_log_probs_sum_to_teacher_forced_loss) {
    /* eq. 30: ln p(x) = sum_t ln p(x_t | x_<t). The generator, fed x, adds
     * the log-probabilities step by step; the training graph computes the
     * same sum at once (the teacher-forced cross-entropy). */
    nb_wavenet *m = tiny(2, 3, 21);
    int64_t n = 50;
    nb_tensor *feats = nb_test_param(NB_SHAPE(13, 3), 1.f);
    int32_t x[2 * 50], out[2 * 50], spk[2] = {1, 0};
    random_levels(x, 2 * n, 9);
    nb_tensor *u = cond_of(m, feats, n);
    double lp[2];
    nb_wavenet_gen_opts o = {.streams = 2, .samples = n, .speakers = spk, .cond = u, .temperature = 1.f,
                             .seed = 1, .force = x};
    CHECK(nb_wavenet_generate(m, &o, out, lp) == 0);
    CHECK(memcmp(out, x, sizeof x) == 0);
    for (int s = 0; s < 2; s++) {
        int32_t q[51];
        q[0] = 128; /* the generator starts from silence */
        memcpy(q + 1, x + s * n, sizeof(int32_t) * (size_t)n);
        nb_tensor *cond = nb_wavenet_cond(m, feats, 0, n); /* samples 1..n of q are x[0..n) */
        double loss = nb_item(nb_wavenet_loss(m, q, 1, n, &spk[s], cond));
        CHECK_NEAR(-lp[s], loss * (double)n, 1e-4);
        CHECK(lp[s] < 0);
    }
    nb_arena_reset();
    nb_tensor_free(feats);
    nb_wavenet_free(m);
}

typedef struct {
    nb_wavenet *m;
    const int32_t *q, *spk;
    nb_tensor *feats;
    int64_t N, L, first;
} loss_ctx;
static nb_tensor *f_loss(nb_tensor **in, void *vctx) {
    loss_ctx *c = vctx;
    nb_tensor *cond = NULL;
    if (c->feats) {
        nb_tensor *parts[2];
        for (int64_t i = 0; i < c->N; i++) parts[i] = nb_wavenet_cond(c->m, c->feats, c->first + i * 3, c->L);
        cond = c->N == 1 ? parts[0] : nb_concat(parts, (int)c->N, 0);
    }
    return nb_wavenet_loss(c->m, c->q, c->N, c->L, c->spk, cond);
}

TEST(test_eq_33_wavenet_local_conditioning_upsampler_alignment_and_causality) {
    nb_wavenet *m = tiny_c(0, 3, 2, 31); /* 3 features upsampled to 2 channels */
    int64_t frames = 6, hop = 4, D = 3, C = 2;
    nb_tensor *feats = nb_test_param(NB_SHAPE(frames, D), 1.f);
    /* the upsampler: [1, frames, D] -> [1, C, frames * hop]; frame f moves
     * samples f hop .. f hop + hop - 1 only */
    nb_tensor *h = nb_from_data(NB_SHAPE(1, frames, D), feats->data);
    nb_tensor *y = nb_wavenet_upsample(m, h);
    CHECK(y->ndim == 3 && y->shape[0] == 1 && y->shape[1] == C && y->shape[2] == frames * hop);
    nb_tensor *h2 = nb_from_data(NB_SHAPE(1, frames, D), feats->data);
    h2->data[2 * D + 1] += 1.f; /* frame 2 */
    nb_tensor *y2 = nb_wavenet_upsample(m, h2);
    for (int64_t d = 0; d < C; d++)
        for (int64_t t = 0; t < frames * hop; t++) {
            bool inside = t >= 2 * hop && t < 3 * hop, moved = y->data[d * frames * hop + t] != y2->data[d * frames * hop + t];
            CHECK(inside || !moved);
        }
    /* nb_wavenet_cond slices the same values for any span */
    nb_tensor *span = nb_wavenet_cond(m, feats, 5, 9);
    for (int64_t d = 0; d < C; d++)
        for (int64_t t = 0; t < 9; t++) CHECK_NEAR(span->data[d * 9 + t], y->data[d * frames * hop + 5 + t], 1e-6);
    /* causality: the logits at t depend on the features of samples <= t
     * only (the sample being predicted included), and on inputs <= t */
    int64_t L = 20;
    int32_t x[20];
    random_levels(x, L, 4);
    nb_tensor *cond = nb_wavenet_cond(m, feats, 0, L);
    nb_tensor *a = nb_wavenet_forward(m, x, 1, L, NULL, cond);
    nb_tensor *c2 = nb_tensor_clone(cond);
    int64_t tc = 9;
    for (int64_t d = 0; d < C; d++) c2->data[d * L + tc] += 1.f;
    nb_tensor *b = nb_wavenet_forward(m, x, 1, L, NULL, nb_detach(c2));
    int before = 0, at = 0;
    for (int q = 0; q < 256; q++) {
        for (int64_t t = 0; t < tc; t++) before += a->data[q * L + t] != b->data[q * L + t];
        at += a->data[q * L + tc] != b->data[q * L + tc];
    }
    CHECK(before == 0);
    CHECK(at > 0);
    /* the gradient of the whole loss, upsampler and V_f, V_g included */
    int32_t q[2 * 9];
    random_levels(q, 18, 5);
    loss_ctx lc = {m, q, NULL, feats, 2, 8, 1};
    nb_param *p;
    const char *const *names;
    int np = nb_wavenet_params(m, &p, &names);
    nb_tensor *in[64];
    int n = 0;
    for (int i = 0; i < np && n < 64; i++)
        if (strstr(names[i], "upsample") || strstr(names[i], "layers.1.") || strstr(names[i], "cond") ||
            strstr(names[i], "out2") || strstr(names[i], "embed"))
            in[n++] = p[i].t;
    nb_gradcheck("wavenet loss", f_loss, in, n, &lc, 1e-2f, 2e-2f);
    nb_arena_reset();
    nb_tensor_free(c2);
    nb_tensor_free(feats);
    nb_wavenet_free(m);
}

TEST(test_eq_34_wavenet_speaker_changes_outputs_through_every_gate) {
    nb_wavenet *m = tiny(2, 0, 41);
    int64_t L = 16;
    int32_t x[16], s0 = 0, s1 = 1;
    random_levels(x, L, 6);
    nb_param *p;
    const char *const *names;
    int np = nb_wavenet_params(m, &p, &names);
    int nl = 6;
    nb_tensor *saved[6];
    int idx[6], k = 0;
    for (int i = 0; i < np; i++)
        if (strstr(names[i], ".speaker.weight")) idx[k] = i, saved[k] = nb_tensor_clone(p[i].t), k++;
    CHECK(k == nl);
    /* with only layer j's speaker term kept, the two speakers' logits differ:
     * each gate on its own carries the speaker (eq. 34) */
    for (int j = 0; j <= nl; j++) {
        for (int l = 0; l < nl; l++) {
            if (l == j) nb_copy_into(p[idx[l]].t, saved[l]);
            else nb_fill(p[idx[l]].t, 0.f);
        }
        nb_tensor *a = nb_wavenet_forward(m, x, 1, L, &s0, NULL);
        nb_tensor *b = nb_wavenet_forward(m, x, 1, L, &s1, NULL);
        double diff = 0;
        for (int64_t i = 0; i < a->size; i++) diff += fabs(a->data[i] - b->data[i]);
        if (j < nl) CHECK_MSG(diff > 1e-3, "layer %d: the speaker changes nothing (%g)", j, diff);
        else CHECK(diff == 0); /* no speaker term anywhere: the speakers are alike */
        nb_arena_reset();
    }
    /* V^T h with h one-hot: the gate input moves by the speaker's column */
    for (int l = 0; l < nl; l++) nb_copy_into(p[idx[l]].t, saved[l]);
    int32_t q[2 * 7], spk[2] = {0, 1};
    random_levels(q, 14, 8);
    loss_ctx lc = {m, q, spk, NULL, 2, 6, 0};
    nb_tensor *in[6];
    for (int l = 0; l < nl; l++) in[l] = p[idx[l]].t;
    nb_gradcheck("wavenet speaker", f_loss, in, nl, &lc, 1e-2f, 2e-2f);
    for (int l = 0; l < nl; l++) nb_tensor_free(saved[l]);
    nb_arena_reset();
    nb_wavenet_free(m);
}

TEST(test_wavenet_save_load_round_trip_and_bad_files) {
    nb_wavenet *m = tiny_c(2, 3, 7, 51);
    char path[] = "/tmp/nabla_wavenet_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(nb_wavenet_save(m, path, (const char *[]){"k"}, (const char *[]){"v"}, 1, NULL, NULL, 0) == 0);
    nb_safetensors *st;
    nb_wavenet *m2 = nb_wavenet_load(path, &st);
    CHECK(m2 != NULL);
    if (m2) {
        CHECK(st && !strcmp(nb_st_meta(st, "k"), "v"));
        const nb_wavenet_config *a = nb_wavenet_get_config(m), *b = nb_wavenet_get_config(m2);
        CHECK(!memcmp(a, b, sizeof *a));
        nb_param *p1, *p2;
        int n1 = nb_wavenet_params(m, &p1, NULL), n2 = nb_wavenet_params(m2, &p2, NULL);
        CHECK(n1 == n2);
        for (int i = 0; i < n1 && i < n2; i++) CHECK(!memcmp(p1[i].t->data, p2[i].t->data, sizeof(float) * (size_t)p1[i].t->size));
        nb_st_free(st);
        nb_wavenet_free(m2);
    }
    /* a file written before the upsampled width was a setting has no
     * cond_channels key: it is read with C = D */
    nb_wavenet *old = tiny(2, 3, 52);
    CHECK(nb_wavenet_save(old, path, NULL, NULL, 0, NULL, NULL, 0) == 0);
    st = nb_st_read(path);
    CHECK(st != NULL);
    if (st) {
        const char *keys[16], *vals[16], *names[256];
        nb_tensor *ts[256];
        int nk = 0, nt = 0;
        for (int i = 0; i < st->n_meta && nk < 16; i++)
            if (strcmp(st->meta_keys[i], "nabla.wavenet.cond_channels")) keys[nk] = st->meta_keys[i], vals[nk++] = st->meta_vals[i];
        CHECK(nk == st->n_meta - 1);
        for (int i = 0; i < st->n && nt < 256; i++) names[nt] = st->entries[i].name, ts[nt++] = st->entries[i].t;
        CHECK(nb_st_write(path, names, ts, nt, keys, vals, nk) == 0);
        nb_st_free(st);
        nb_wavenet *m3 = nb_wavenet_load(path, NULL);
        CHECK(m3 && nb_wavenet_get_config(m3)->cond_channels == 3);
        nb_wavenet_free(m3);
    }
    nb_wavenet_free(old);
    /* a model of another kind, and a truncated file */
    nb_tensor *t = nb_tensor_new(NB_SHAPE(2));
    CHECK(nb_st_write(path, (const char *[]){"x"}, &t, 1, NULL, NULL, 0) == 0);
    CHECK(nb_wavenet_load(path, NULL) == NULL && strstr(nb_errmsg(), "not a wavenet model"));
    FILE *f = fopen(path, "wb");
    fputs("12345", f);
    fclose(f);
    CHECK(nb_wavenet_load(path, NULL) == NULL && strstr(nb_errmsg(), path));
    nb_tensor_free(t);
    unlink(path);
    nb_wavenet_config bad = {.layers = 0, .stacks = 1, .residual = 4, .skip = 4};
    CHECK(nb_wavenet_new(&bad, NULL) == NULL && strstr(nb_errmsg(), "layers"));
    nb_wavenet_free(m);
}

/* Settings in __metadata__ that ask for more parameters than the file holds
 * are refused before any is allocated: the check once counted only the
 * dilated convolutions, and 7 KB whose conditioning said D = C = 4096, hop
 * 65536 made the loader ask for a 4 TiB upsampling tensor (and exit). */
TEST(test_wavenet_load_refuses_settings_the_file_cannot_hold) {
    nb_wavenet *m = tiny_c(2, 3, 7, 53);
    char path[] = "/tmp/nabla_wavenet_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(nb_wavenet_save(m, path, NULL, NULL, 0, NULL, NULL, 0) == 0);
    nb_safetensors *st = nb_st_read(path);
    CHECK(st != NULL);
    if (st) {
        const char *keys[32], *vals[32], *names[256];
        nb_tensor *ts[256];
        int nk = 0, nt = 0;
        for (int i = 0; i < st->n_meta && nk < 32; i++) {
            const char *k = st->meta_keys[i], *v = st->meta_vals[i];
            if (!strcmp(k, "nabla.wavenet.cond_dim") || !strcmp(k, "nabla.wavenet.cond_channels")) v = "4096";
            if (!strcmp(k, "nabla.wavenet.cond_hop")) v = "65536";
            keys[nk] = k, vals[nk++] = v;
        }
        for (int i = 0; i < st->n && nt < 256; i++) names[nt] = st->entries[i].name, ts[nt++] = st->entries[i].t;
        CHECK(nb_st_write(path, names, ts, nt, keys, vals, nk) == 0);
        nb_st_free(st);
        nb_clear_error();
        CHECK(nb_wavenet_load(path, NULL) == NULL && strstr(nb_errmsg(), path) &&
              strstr(nb_errmsg(), "need more parameters than the file holds"));
    }
    unlink(path);
    nb_wavenet_free(m);
}

/* Copies the model file src to dst with one change: tensor `drop` left out,
 * or element idx of tensor `set` made v, or metadata `key` made val. */
static void rewrite_model(const char *src, const char *dst, const char *drop, const char *set, int64_t idx, float v,
                          const char *key, const char *val) {
    nb_safetensors *st = nb_st_read(src);
    CHECK_MSG(st, "%s", nb_errmsg());
    if (!st) return;
    const char *keys[32], *vals[32], *names[256];
    nb_tensor *ts[256];
    int nk = 0, nt = 0;
    for (int i = 0; i < st->n_meta && nk < 32; i++, nk++) {
        keys[nk] = st->meta_keys[i], vals[nk] = st->meta_vals[i];
        if (key && !strcmp(keys[nk], key)) vals[nk] = val;
    }
    for (int i = 0; i < st->n && nt < 256; i++) {
        if (drop && !strcmp(st->entries[i].name, drop)) continue;
        if (set && !strcmp(st->entries[i].name, set)) st->entries[i].t->data[idx] = v;
        names[nt] = st->entries[i].name, ts[nt++] = st->entries[i].t;
    }
    CHECK(nb_st_write(dst, names, ts, nt, keys, vals, nk) == 0);
    nb_st_free(st);
}

/* A file whose feature statistics are half there or not positive, or whose
 * settings need even a few more parameters than it holds, is refused with
 * what is wrong (half the statistics was read as none: identity scaling). */
TEST(test_wavenet_load_refuses_damaged_statistics_and_settings) {
    nb_wavenet *m = tiny_c(0, 3, 0, 61);
    char a[] = "/tmp/nabla_wavenet_XXXXXX", b[] = "/tmp/nabla_wavenet_XXXXXX";
    close(mkstemp(a));
    close(mkstemp(b));
    CHECK(nb_wavenet_save(m, a, NULL, NULL, 0, NULL, NULL, 0) == 0);
    struct {
        const char *drop, *set;
        float v;
        const char *key, *val, *want;
    } cases[] = {
        {"cond_norm.mean", NULL, 0, NULL, NULL, "'cond_norm.mean' and 'cond_norm.scale' must both be there"},
        {"cond_norm.scale", NULL, 0, NULL, NULL, "'cond_norm.mean' and 'cond_norm.scale' must both be there"},
        {NULL, "cond_norm.scale", 0.f, NULL, NULL, "feature 1 has mean 0 and scale 0"},
        {NULL, "cond_norm.scale", -2.f, NULL, NULL, "feature 1 has mean 0 and scale -2"},
        {NULL, NULL, 0, "nabla.wavenet.skip", "6", "need more parameters than the file holds"},
    };
    for (int k = 0; k < 5; k++) {
        rewrite_model(a, b, cases[k].drop, cases[k].set, 1, cases[k].v, cases[k].key, cases[k].val);
        nb_clear_error();
        nb_wavenet *r = nb_wavenet_load(b, NULL);
        CHECK_MSG(!r && strstr(nb_errmsg(), b) && strstr(nb_errmsg(), cases[k].want), "case %d: %s", k,
                  r ? "loaded" : nb_errmsg());
        nb_wavenet_free(r);
    }
    rewrite_model(a, b, NULL, NULL, 0, 0, NULL, NULL); /* unchanged: loads */
    nb_wavenet *r = nb_wavenet_load(b, NULL);
    CHECK_MSG(r, "%s", nb_errmsg());
    nb_wavenet_free(r);
    unlink(a);
    unlink(b);
    nb_wavenet_free(m);
}

TEST(test_wavenet_feature_standardization_is_fitted_applied_and_saved) {
    nb_wavenet *m = tiny(0, 3, 61);
    int64_t D = 3;
    /* two clips whose bands have known means and standard deviations: band
     * j alternates mu_j +- sd_j over an even number of frames */
    const float mu[3] = {-7.f, 0.5f, 3.f}, sd[3] = {2.f, 0.25f, 0.f};
    nb_tensor *f[2] = {nb_tensor_new(NB_SHAPE(4, D)), nb_tensor_new(NB_SHAPE(6, D))};
    for (int c = 0; c < 2; c++)
        for (int64_t t = 0; t < f[c]->shape[0]; t++)
            for (int64_t j = 0; j < D; j++) f[c]->data[t * D + j] = mu[j] + (t % 2 ? sd[j] : -sd[j]);
    /* before fitting, features enter as they are */
    nb_tensor *raw = nb_tensor_clone(nb_wavenet_cond(m, f[0], 0, 16));
    CHECK(nb_wavenet_fit_features(m, (const nb_tensor *const *)f, 2) == 0);
    /* after: the same as an unfitted model given (f - mu) / sd (a constant
     * band only centred) */
    nb_wavenet *u = tiny(0, 3, 61);
    nb_tensor *g = nb_tensor_new(NB_SHAPE(4, D));
    for (int64_t t = 0; t < 4; t++)
        for (int64_t j = 0; j < D; j++) g->data[t * D + j] = (f[0]->data[t * D + j] - mu[j]) / (sd[j] > 0 ? sd[j] : 1.f);
    nb_tensor *a = nb_wavenet_cond(m, f[0], 0, 16), *b = nb_wavenet_cond(u, g, 0, 16);
    double diff = 0, moved = 0;
    for (int64_t i = 0; i < a->size; i++) {
        diff = fmax(diff, fabs(a->data[i] - b->data[i]));
        moved = fmax(moved, fabs(a->data[i] - raw->data[i]));
    }
    CHECK(diff < 1e-5);
    CHECK(moved > 0.1);
    /* kept in the model file */
    char path[] = "/tmp/nabla_wavenet_norm_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(nb_wavenet_save(m, path, NULL, NULL, 0, NULL, NULL, 0) == 0);
    nb_wavenet *m2 = nb_wavenet_load(path, NULL);
    CHECK(m2 != NULL);
    if (m2) {
        nb_tensor *c = nb_wavenet_cond(m2, f[0], 0, 16);
        CHECK(!memcmp(a->data, c->data, sizeof(float) * (size_t)a->size));
        nb_wavenet_free(m2);
    }
    /* wrong sizes are refused, naming what was expected */
    nb_tensor *w = nb_tensor_new(NB_SHAPE(4, 2));
    CHECK(nb_wavenet_fit_features(m, (const nb_tensor *const *)&w, 1) != 0 && strstr(nb_errmsg(), "[frames, 3]"));
    CHECK(nb_wavenet_fit_features(m, NULL, 0) != 0 && strstr(nb_errmsg(), "no feature frames"));
    nb_arena_reset();
    unlink(path);
    nb_tensor_free(w), nb_tensor_free(g), nb_tensor_free(raw), nb_tensor_free(f[0]), nb_tensor_free(f[1]);
    nb_wavenet_free(u);
    nb_wavenet_free(m);
}
