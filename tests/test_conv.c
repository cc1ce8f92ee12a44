/* test_conv.c — conv2d/conv1d against a direct loop, their gradients and
 * Hessian-vector products against finite differences, causality, and the
 * notes' convolution equations (9.4-9.6, 25-27, blur/edge, equivariance). */
#include "test.h"
#include <stdlib.h>

/* One convolution: input [N, C, H, W], kernel [OC, C, KH, KW], options. */
typedef struct {
    int64_t N, C, H, W, OC, KH, KW;
    nb_conv2d_opts o;
} conv_case;

/* Odd shapes with every option combination the kernels distinguish. Cases
 * 0-6 have few channels and take the im2col + GEMM path: plain "same",
 * strides, asymmetric padding, dilation, 1x1 with and without the pointwise
 * shortcut, a kernel as large as the padded input. Cases 7-10 have 13-16
 * channels and take the direct kernels: forward and weight gradient when
 * OC fits (13 leaves part of a panel empty), input gradient when C fits and
 * the stride is 1, including padding beyond the kernel's reach (case 10,
 * where the input gradient crops instead of padding). Cases 11-12 fill two
 * and three panels (29 and 45 channels; 32 input channels), which the
 * AVX-512 kernels tile in pairs. Cases 7 and 13-20 have unit horizontal
 * stride and dilation and 3 or 5 taps per kernel row, which the AVX-512
 * kernels take by row tiles: one and two panels, rows that end in a short
 * tile, vertical stride and dilation (14), and the input gradient by row
 * tiles of one panel (13) and of two (15). Row tiles skip the kernel rows
 * that see only padding; in case 16 whole output rows do, at the top and
 * bottom, and the input gradient crops. They also skip the padding columns
 * at a row's ends when there are (KW-1)/2 of them: both ends (13, 15), one
 * (17: the right, too little on the left). Case 18 stores tiles of
 * at most 8 positions (a transpose of their own) into a panel of 13. The
 * weight gradient takes the same cases by row tiles of NR kernel rows, with
 * rows left over in 14 (two panels), 19 (one, KW 5: the CNN's first layer)
 * and 20 (one, KW 3). */
static const conv_case cases[] = {
    {2, 3, 7, 6, 4, 3, 3, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}},
    {1, 2, 9, 8, 3, 3, 2, {.stride_h = 2, .stride_w = 3, .pad_bottom = 2, .pad_left = 1, .dil_w = 2}},
    {3, 1, 5, 7, 2, 2, 3, {.stride_w = 2, .pad_top = 2, .pad_bottom = 1, .pad_right = 1, .dil_h = 2}},
    {2, 4, 5, 5, 3, 1, 1, {0}},
    {2, 3, 6, 5, 2, 1, 1, {.stride_h = 2, .pad_top = 1, .pad_right = 1}},
    {1, 2, 4, 3, 2, 5, 4, {.pad_top = 1, .pad_left = 1}},
    {6, 3, 11, 10, 5, 3, 3, {.stride_h = 2, .pad_top = 1, .pad_bottom = 0, .pad_left = 2, .pad_right = 1, .dil_w = 2}},
    {2, 3, 7, 6, 16, 3, 3, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}},
    {2, 16, 6, 5, 13, 3, 2, {.pad_top = 2, .pad_left = 1, .pad_right = 1, .dil_h = 2}},
    {2, 16, 7, 7, 16, 3, 3, {.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_right = 1}},
    {1, 16, 5, 6, 16, 2, 3, {.pad_top = 3, .pad_bottom = 2, .pad_left = 3, .pad_right = 5, .dil_w = 2}},
    {1, 32, 4, 3, 29, 2, 2, {.pad_top = 1, .pad_right = 1}},
    {1, 3, 5, 6, 45, 2, 2, {.pad_left = 1, .dil_h = 2}},
    {2, 16, 9, 11, 32, 5, 5, {.pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2}},
    {1, 13, 8, 17, 45, 3, 3, {.stride_h = 2, .pad_top = 1, .pad_left = 1, .pad_right = 1, .dil_h = 2}},
    {1, 32, 6, 19, 16, 3, 3, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}},
    {2, 16, 4, 9, 16, 3, 3, {.pad_top = 3, .pad_bottom = 4, .pad_left = 1, .pad_right = 1}},
    {1, 16, 5, 12, 16, 5, 5, {.pad_top = 2, .pad_bottom = 2, .pad_left = 1, .pad_right = 3}},
    {2, 4, 5, 10, 29, 3, 3, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}},
    {1, 1, 6, 12, 16, 5, 5, {.pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2}},
    {1, 5, 6, 7, 13, 2, 3, {.pad_top = 1, .pad_left = 1, .pad_right = 1}},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static int opt1(int v) { return v ? v : 1; }

static int64_t out_len(int64_t in, int p0, int p1, int64_t k, int d, int s) {
    return (in + p0 + p1 - (int64_t)d * (k - 1) - 1) / s + 1;
}

/* Eq. 9.6 as a direct loop in double: out[n,o,i,j] = b[o] + sum_{c,m,k}
 * x[n, c, i*sh - pt + m*dh, j*sw - pl + k*dw] w[o, c, m, k], x = 0 outside. */
static double *naive_conv2d(const conv_case *cc, const float *x, const float *w, const float *b, int64_t *OH, int64_t *OW) {
    const nb_conv2d_opts *o = &cc->o;
    int sh = opt1(o->stride_h), sw = opt1(o->stride_w), dh = opt1(o->dil_h), dw = opt1(o->dil_w);
    *OH = out_len(cc->H, o->pad_top, o->pad_bottom, cc->KH, dh, sh);
    *OW = out_len(cc->W, o->pad_left, o->pad_right, cc->KW, dw, sw);
    double *out = calloc((size_t)(cc->N * cc->OC * *OH * *OW), sizeof(double));
    for (int64_t n = 0; n < cc->N; n++)
        for (int64_t oc = 0; oc < cc->OC; oc++)
            for (int64_t i = 0; i < *OH; i++)
                for (int64_t j = 0; j < *OW; j++) {
                    double s = b ? b[oc] : 0;
                    for (int64_t c = 0; c < cc->C; c++)
                        for (int64_t m = 0; m < cc->KH; m++)
                            for (int64_t k = 0; k < cc->KW; k++) {
                                int64_t r = i * sh - o->pad_top + m * dh, q = j * sw - o->pad_left + k * dw;
                                if (r < 0 || r >= cc->H || q < 0 || q >= cc->W) continue;
                                s += (double)x[((n * cc->C + c) * cc->H + r) * cc->W + q] *
                                     w[((oc * cc->C + c) * cc->KH + m) * cc->KW + k];
                            }
                    out[((n * cc->OC + oc) * *OH + i) * *OW + j] = s;
                }
    return out;
}

TEST(test_conv2d_forward_matches_direct_loop) {
    for (int t = 0; t < NCASES; t++) {
        const conv_case *cc = &cases[t];
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            nb_tensor *x = nb_test_param(NB_SHAPE(cc->N, cc->C, cc->H, cc->W), 1.f);
            nb_tensor *w = nb_test_param(NB_SHAPE(cc->OC, cc->C, cc->KH, cc->KW), 1.f);
            nb_tensor *b = with_bias ? nb_test_param(NB_SHAPE(cc->OC), 1.f) : NULL;
            nb_tensor *y = nb_conv2d(x, w, b, &cc->o);
            int64_t OH, OW;
            double *ref = naive_conv2d(cc, x->data, w->data, b ? b->data : NULL, &OH, &OW);
            CHECK_MSG(y->ndim == 4 && y->shape[0] == cc->N && y->shape[1] == cc->OC && y->shape[2] == OH && y->shape[3] == OW,
                      "case %d: wrong output shape", t);
            double worst = 0;
            for (int64_t i = 0; i < y->size; i++) worst = fmax(worst, fabs(y->data[i] - ref[i]));
            CHECK_MSG(worst < 1e-4, "case %d bias %d: max error %g", t, with_bias, worst);
            free(ref);
            nb_arena_reset(); /* before freeing what the tape refers to */
            nb_tensor_free(x);
            nb_tensor_free(w);
            nb_tensor_free(b);
        }
    }
}

static nb_tensor *f_conv(nb_tensor **in, void *ctx) {
    const conv_case *cc = ctx;
    return nb_conv2d(in[0], in[1], in[2], &cc->o);
}
/* The backward pass against direct loops in double: for L = sum R * conv(x, w, b),
 * dL/dx [n,c,r,q] and dL/dw [o,c,m,k] sum R[n,o,i,j] w[o,c,m,k] and
 * R[n,o,i,j] x[n,c,r,q] over every (i, j, m, k) where input (r, q) meets
 * output (i, j) at tap (m, k), and dL/db [o] sums R[n,o,i,j]. Exact to
 * rounding, where finite differences in float32 are not for the large cases.
 * nb_backward's pass without create_graph computes all three image by image
 * when the direct kernels apply (backward_direct). */
TEST(test_conv2d_backward_matches_direct_loop) {
    for (int tx = 0; tx < 2 * NCASES; tx++) {
        const int t = tx / 2, with_x = tx % 2; /* without dL/dx too: the first layer of a network */
        const conv_case *cc = &cases[t];
        const nb_conv2d_opts *o = &cc->o;
        int sh = opt1(o->stride_h), sw = opt1(o->stride_w), dh = opt1(o->dil_h), dw = opt1(o->dil_w);
        int64_t OH = out_len(cc->H, o->pad_top, o->pad_bottom, cc->KH, dh, sh);
        int64_t OW = out_len(cc->W, o->pad_left, o->pad_right, cc->KW, dw, sw);
        nb_tensor *in[3] = {nb_test_param(NB_SHAPE(cc->N, cc->C, cc->H, cc->W), 1.f),
                            nb_test_param(NB_SHAPE(cc->OC, cc->C, cc->KH, cc->KW), 1.f),
                            nb_test_param(NB_SHAPE(cc->OC), 1.f)};
        nb_tensor *R = nb_test_param(NB_SHAPE(cc->N, cc->OC, OH, OW), 1.f), *g[3] = {0};
        nb_requires_grad(in[0], with_x);
        nb_grad(nb_sum_all(nb_mul(nb_conv2d(in[0], in[1], in[2], o), nb_detach(R))), in + !with_x, 2 + with_x,
                g + !with_x, false);
        const float *x = in[0]->data, *w = in[1]->data;
        double *ref[3] = {calloc((size_t)in[0]->size, sizeof(double)), calloc((size_t)in[1]->size, sizeof(double)),
                          calloc((size_t)in[2]->size, sizeof(double))};
        for (int64_t n = 0; n < cc->N; n++)
            for (int64_t oc = 0; oc < cc->OC; oc++)
                for (int64_t i = 0; i < OH; i++)
                    for (int64_t j = 0; j < OW; j++) {
                        double rv = R->data[((n * cc->OC + oc) * OH + i) * OW + j];
                        ref[2][oc] += rv;
                        for (int64_t c = 0; c < cc->C; c++)
                            for (int64_t m = 0; m < cc->KH; m++)
                                for (int64_t k = 0; k < cc->KW; k++) {
                                    int64_t r = i * sh - o->pad_top + m * dh, q = j * sw - o->pad_left + k * dw;
                                    if (r < 0 || r >= cc->H || q < 0 || q >= cc->W) continue;
                                    int64_t xi = ((n * cc->C + c) * cc->H + r) * cc->W + q;
                                    int64_t wi = ((oc * cc->C + c) * cc->KH + m) * cc->KW + k;
                                    ref[0][xi] += rv * w[wi];
                                    ref[1][wi] += rv * x[xi];
                                }
                    }
        for (int k = !with_x; k < 3; k++) {
            double worst = 0;
            for (int64_t i = 0; i < in[k]->size; i++)
                worst = fmax(worst, fabs(g[k]->data[i] - ref[k][i]) / fmax(1.0, fabs(ref[k][i])));
            CHECK_MSG(worst < 1e-4, "case %d: d/d%s max relative error %g", t, (const char *[]){"x", "w", "b"}[k], worst);
        }
        for (int k = 0; k < 3; k++) free(ref[k]);
        nb_arena_reset();
        for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
        nb_tensor_free(R);
    }
}

/* A non-zero Hessian: L = sum R * conv(x, w, b)^2. */
static nb_tensor *f_conv_sq(nb_tensor **in, void *ctx) { return nb_square(f_conv(in, ctx)); }

TEST(test_conv2d_gradcheck_and_hvpcheck) {
    for (int t = 0; t < NCASES; t++) {
        const conv_case *cc = &cases[t];
        nb_tensor *in[3] = {nb_test_param(NB_SHAPE(cc->N, cc->C, cc->H, cc->W), 1.f),
                            nb_test_param(NB_SHAPE(cc->OC, cc->C, cc->KH, cc->KW), 0.5f),
                            nb_test_param(NB_SHAPE(cc->OC), 0.5f)};
        char what[64];
        snprintf(what, sizeof what, "conv2d case %d", t);
        nb_gradcheck(what, f_conv, in, 3, (void *)cc, 1e-2f, 3e-3f);
        /* With hundreds of taps per output (cases 13-15), differences of
         * float32 gradients carry errors of a few percent at any step;
         * test_conv2d_backward_matches_direct_loop checks those cases exactly. */
        nb_hvpcheck(what, f_conv_sq, in, 3, (void *)cc, 3e-3f, cc->C * cc->KH * cc->KW > 100 ? 1e-1f : 1e-2f);
        for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
    }
}

/* The gradient itself as a function of (x, w): g(x, w) = d/dx and d/dw of
 * sum R * conv(x, w)^2, built with create_graph. Checking the gradient and
 * the Hessian of g tests the backward rules of conv2d_grad_input and
 * conv2d_grad_weight (third order through the convolution). */
typedef struct { const conv_case *cc; nb_tensor *R; int which; } gg_ctx;

static nb_tensor *f_conv_grad(nb_tensor **in, void *ctx) {
    gg_ctx *c = ctx;
    bool old = nb_set_grad_enabled(true);
    nb_tensor *y = nb_conv2d(in[0], in[1], NULL, &c->cc->o);
    /* y * y, not nb_square: a third derivative of nb_pow at an exact zero
     * (outputs that see only padding) is 0 * pow(0, -1) = NaN. */
    nb_tensor *L = nb_sum_all(nb_mul(nb_mul(y, y), nb_detach(c->R)));
    nb_tensor *g[2];
    nb_grad(L, in, 2, g, true);
    nb_set_grad_enabled(old);
    return g[c->which];
}

TEST(test_conv2d_grad_of_grad) {
    int picks[] = {0, 1, 2, 6, 8, 10};
    for (int p = 0; p < 6; p++) {
        const conv_case *cc = &cases[picks[p]];
        nb_tensor *in[2] = {nb_test_param(NB_SHAPE(cc->N, cc->C, cc->H, cc->W), 1.f),
                            nb_test_param(NB_SHAPE(cc->OC, cc->C, cc->KH, cc->KW), 0.5f)};
        int64_t OH = out_len(cc->H, cc->o.pad_top, cc->o.pad_bottom, cc->KH, opt1(cc->o.dil_h), opt1(cc->o.stride_h));
        int64_t OW = out_len(cc->W, cc->o.pad_left, cc->o.pad_right, cc->KW, opt1(cc->o.dil_w), opt1(cc->o.stride_w));
        gg_ctx c = {cc, nb_tensor_new(NB_SHAPE(cc->N, cc->OC, OH, OW)), 0};
        nb_init_uniform(c.R, -1.f, 1.f, nb_test_rng());
        for (c.which = 0; c.which < 2; c.which++) {
            char what[64];
            snprintf(what, sizeof what, "grad of conv2d case %d wrt %s", picks[p], c.which ? "w" : "x");
            nb_gradcheck(what, f_conv_grad, in, 2, &c, 1e-2f, 1e-2f);
            nb_hvpcheck(what, f_conv_grad, in, 2, &c, 1e-2f, 2e-2f);
        }
        nb_tensor_free(c.R);
        nb_tensor_free(in[0]);
        nb_tensor_free(in[1]);
    }
}

/* The batch split across threads (each thread its own images and its own
 * weight-gradient sum) gives what one thread gives, up to the order of the
 * sums, on both paths. */
TEST(test_conv2d_threads_agree_with_one_thread) {
    const conv_case big[] = {
        {8, 16, 10, 9, 16, 3, 3, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 0}}, /* direct */
        {20, 8, 12, 11, 6, 3, 3, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}}, /* GEMM */
    };
    int threads = nb_get_threads();
    for (int t = 0; t < 2; t++) {
        const conv_case *cc = &big[t];
        nb_tensor *x = nb_test_param(NB_SHAPE(cc->N, cc->C, cc->H, cc->W), 1.f);
        nb_tensor *w = nb_test_param(NB_SHAPE(cc->OC, cc->C, cc->KH, cc->KW), 0.5f);
        nb_tensor *out[2][3];
        for (int one = 0; one < 2; one++) {
            nb_set_threads(one ? 1 : (threads > 1 ? threads : 2));
            nb_tensor *y = nb_conv2d(x, w, NULL, &cc->o);
            nb_tensor *g[2];
            nb_grad(nb_sum_all(nb_square(y)), (nb_tensor *[]){x, w}, 2, g, false);
            out[one][0] = y, out[one][1] = g[0], out[one][2] = g[1];
        }
        nb_set_threads(threads);
        for (int k = 0; k < 3; k++)
            CHECK_MSG(nb_test_maxrel(out[0][k]->data, out[1][k]->data, out[1][k]->size) < 1e-4, /* sums in another order */
                      "case %d, result %d differs with threads", t, k);
        int64_t OH, OW;
        double *ref = naive_conv2d(cc, x->data, w->data, NULL, &OH, &OW);
        double worst = 0;
        for (int64_t i = 0; i < out[0][0]->size; i++) worst = fmax(worst, fabs(out[0][0]->data[i] - ref[i]));
        CHECK_MSG(worst < 1e-4, "case %d: max error %g", t, worst);
        free(ref);
        nb_arena_reset(); /* the tape refers to x and w */
        nb_tensor_free(x);
        nb_tensor_free(w);
    }
}

/* --- conv1d ------------------------------------------------------------------ */

typedef struct { int stride, pad, dil; bool causal; } c1_opts;

static nb_tensor *f_conv1d(nb_tensor **in, void *ctx) {
    const c1_opts *o = ctx;
    return nb_conv1d(in[0], in[1], in[2], o->stride, o->pad, o->dil, o->causal);
}
static nb_tensor *f_conv1d_prod(nb_tensor **in, void *ctx) {
    /* Two convolutions of the same input multiplied: a non-trivial Hessian
     * with cross terms between x, w and b. */
    nb_tensor *y = f_conv1d(in, ctx);
    return nb_mul(y, f_conv1d((nb_tensor *[]){in[0], in[1], NULL}, ctx));
}

TEST(test_conv1d_matches_direct_loop_and_gradchecks) {
    c1_opts os[] = {{1, 0, 1, false}, {2, 1, 1, false}, {1, 2, 3, false}, {1, 0, 1, true}, {2, 0, 2, true}};
    for (int t = 0; t < 5; t++) {
        const c1_opts *o = &os[t];
        int64_t N = 2, C = 3, L = 11, OC = 4, K = 3;
        nb_tensor *in[3] = {nb_test_param(NB_SHAPE(N, C, L), 1.f), nb_test_param(NB_SHAPE(OC, C, K), 0.5f),
                            nb_test_param(NB_SHAPE(OC), 0.5f)};
        nb_tensor *y = f_conv1d(in, (void *)o);
        int64_t left = o->causal ? (K - 1) * o->dil : o->pad, right = o->causal ? 0 : o->pad;
        int64_t OL = (L + left + right - o->dil * (K - 1) - 1) / o->stride + 1;
        CHECK(y->ndim == 3 && y->shape[0] == N && y->shape[1] == OC && y->shape[2] == OL);
        if (o->causal && o->stride == 1) CHECK(OL == L);
        for (int64_t n = 0; n < N; n++)
            for (int64_t oc = 0; oc < OC; oc++)
                for (int64_t t2 = 0; t2 < OL; t2++) {
                    double s = in[2]->data[oc];
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t k = 0; k < K; k++) {
                            int64_t i = t2 * o->stride - left + k * o->dil;
                            if (i >= 0 && i < L) s += (double)in[0]->data[(n * C + c) * L + i] * in[1]->data[(oc * C + c) * K + k];
                        }
                    CHECK_NEAR(y->data[(n * OC + oc) * OL + t2], s, 1e-5);
                }
        char what[64];
        snprintf(what, sizeof what, "conv1d opts %d", t);
        nb_gradcheck(what, f_conv1d, in, 3, (void *)o, 1e-2f, 3e-3f);
        nb_hvpcheck(what, f_conv1d_prod, in, 3, (void *)o, 1e-2f, 1e-2f);
        nb_arena_reset();
        for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
    }
}

TEST(test_conv1d_causal_output_ignores_the_future) {
    /* out[t] may depend on x[<= t] only: the gradient of out[:, :, t] w.r.t.
     * x is zero after t, and not zero at t (the last tap reads x[t]). */
    int64_t N = 2, C = 2, L = 9, OC = 3, K = 3;
    int dil = 2;
    nb_tensor *x = nb_test_param(NB_SHAPE(N, C, L), 1.f), *w = nb_test_param(NB_SHAPE(OC, C, K), 1.f);
    for (int64_t t = 0; t < L; t++) {
        nb_tensor *y = nb_conv1d(x, w, NULL, 1, 0, dil, true);
        nb_tensor *onehot = nb_zeros(NB_SHAPE(1, 1, L)); /* picks out[:, :, t] */
        onehot->data[t] = 1.f;
        nb_tensor *g;
        nb_grad(nb_sum_all(nb_mul(y, onehot)), &x, 1, &g, false);
        double future = 0, now = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                for (int64_t i = t + 1; i < L; i++) future += fabs(g->data[(n * C + c) * L + i]);
                now += fabs(g->data[(n * C + c) * L + t]);
            }
        CHECK_MSG(future == 0, "t = %lld depends on the future (%g)", (long long)t, future);
        CHECK_MSG(now > 0, "t = %lld does not see x[t]", (long long)t);
        /* And by perturbation: changing x[t+1..] leaves out[..t] unchanged. */
        if (t + 1 < L) {
            nb_tensor *x2 = nb_tensor_clone(x);
            for (int64_t n = 0; n < N; n++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t i = t + 1; i < L; i++) x2->data[(n * C + c) * L + i] += 3.f;
            nb_tensor *y2 = nb_conv1d(x2, w, NULL, 1, 0, dil, true);
            for (int64_t r = 0; r < N * OC; r++)
                for (int64_t i = 0; i <= t; i++) CHECK(y2->data[r * L + i] == y->data[r * L + i]);
            nb_tensor_free(x2);
        }
        nb_arena_reset();
    }
    nb_tensor_free(x);
    nb_tensor_free(w);
}

/* --- the notes' equations ------------------------------------------------------- */

static nb_tensor *image(int64_t H, int64_t W, const float *v) { return nb_from_data(NB_SHAPE(1, 1, H, W), v); }

TEST(test_eq_9_6_cross_correlation) {
    /* S(i, j) = sum_m sum_n I(i + m, j + n) K(m, n), by hand: with
     * K = [[1, 0], [0, -1]], S(i, j) = I(i, j) - I(i + 1, j + 1). */
    float I[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    nb_tensor *S = nb_conv2d(image(3, 3, I), image(2, 2, (float[]){1, 0, 0, -1}), NULL, NULL);
    CHECK(S->shape[2] == 2 && S->shape[3] == 2);
    for (int i = 0; i < 4; i++) CHECK_NEAR(S->data[i], -4.0, 1e-6);
    /* And on random data against the double sum of eq. 9.6 as written. */
    nb_rng *r = nb_test_rng();
    nb_tensor *In = nb_normal(NB_SHAPE(1, 1, 6, 7), 0, 1, r), *K = nb_normal(NB_SHAPE(1, 1, 3, 2), 0, 1, r);
    nb_tensor *S2 = nb_conv2d(In, K, NULL, NULL);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++) {
            double s = 0;
            for (int m = 0; m < 3; m++)
                for (int n = 0; n < 2; n++) s += (double)In->data[(i + m) * 7 + j + n] * K->data[m * 2 + n];
            CHECK_NEAR(S2->data[i * 6 + j], s, 1e-5);
        }
}

/* Full convolution (every (i, j) where the sum has a term), as the notes
 * write it:
 *   9.4: S(i, j) = sum_{m,n} I(m, n) K(i - m, j - n)
 *   9.5: S(i, j) = sum_{m,n} I(i - m, j - n) K(m, n)
 * in double, summing over the indices where both factors exist. */
enum { C9_IH = 4, C9_IW = 5, C9_KH = 3, C9_KW = 2, C9_SH = C9_IH + C9_KH - 1, C9_SW = C9_IW + C9_KW - 1 };

static void conv_eq_9_4(const float *I, const float *K, double S[C9_SH][C9_SW]) {
    for (int i = 0; i < C9_SH; i++)
        for (int j = 0; j < C9_SW; j++) {
            S[i][j] = 0;
            for (int m = 0; m < C9_IH; m++)
                for (int n = 0; n < C9_IW; n++)
                    if (i - m >= 0 && i - m < C9_KH && j - n >= 0 && j - n < C9_KW)
                        S[i][j] += (double)I[m * C9_IW + n] * K[(i - m) * C9_KW + j - n];
        }
}

static void conv_eq_9_5(const float *I, const float *K, double S[C9_SH][C9_SW]) {
    for (int i = 0; i < C9_SH; i++)
        for (int j = 0; j < C9_SW; j++) {
            S[i][j] = 0;
            for (int m = 0; m < C9_KH; m++)
                for (int n = 0; n < C9_KW; n++)
                    if (i - m >= 0 && i - m < C9_IH && j - n >= 0 && j - n < C9_IW)
                        S[i][j] += (double)I[(i - m) * C9_IW + j - n] * K[m * C9_KW + n];
        }
}

TEST(test_eq_9_4_convolution_is_flipped_correlation) {
    /* eq. 9.4 by hand against nabla's conv2d, which computes cross-correlation
     * (eq. 9.6): with the kernel flipped on both axes and the input padded by
     * the kernel size - 1, correlation is convolution. */
    nb_rng *r = nb_test_rng();
    nb_tensor *I = nb_normal(NB_SHAPE(1, 1, C9_IH, C9_IW), 0, 1, r), *K = nb_normal(NB_SHAPE(1, 1, C9_KH, C9_KW), 0, 1, r);
    double s94[C9_SH][C9_SW];
    conv_eq_9_4(I->data, K->data, s94);
    float kf[C9_KH * C9_KW];
    for (int m = 0; m < C9_KH * C9_KW; m++) kf[m] = K->data[C9_KH * C9_KW - 1 - m]; /* flip both axes */
    nb_conv2d_opts o = {.pad_top = C9_KH - 1, .pad_bottom = C9_KH - 1, .pad_left = C9_KW - 1, .pad_right = C9_KW - 1};
    nb_tensor *IK = nb_conv2d(I, image(C9_KH, C9_KW, kf), NULL, &o);
    CHECK(IK->shape[2] == C9_SH && IK->shape[3] == C9_SW);
    for (int i = 0; i < C9_SH; i++)
        for (int j = 0; j < C9_SW; j++) CHECK_NEAR(IK->data[i * C9_SW + j], s94[i][j], 1e-5);
    /* Without the flip it is a different function (the kernel is not symmetric). */
    nb_tensor *corr = nb_conv2d(I, K, NULL, &o);
    CHECK(nb_test_maxrel(corr->data, IK->data, C9_SH * C9_SW) > 1e-2);
}

TEST(test_eq_9_5_convolution_commutes) {
    /* eq. 9.5 by hand equals eq. 9.4 by hand (commutativity), and nabla gives
     * K * I by sliding the flipped image over the kernel. */
    nb_rng *r = nb_test_rng();
    nb_tensor *I = nb_normal(NB_SHAPE(1, 1, C9_IH, C9_IW), 0, 1, r), *K = nb_normal(NB_SHAPE(1, 1, C9_KH, C9_KW), 0, 1, r);
    double s94[C9_SH][C9_SW], s95[C9_SH][C9_SW];
    conv_eq_9_4(I->data, K->data, s94);
    conv_eq_9_5(I->data, K->data, s95);
    double big = 0;
    for (int i = 0; i < C9_SH; i++)
        for (int j = 0; j < C9_SW; j++) {
            CHECK_NEAR(s95[i][j], s94[i][j], 1e-6);
            big = fmax(big, fabs(s95[i][j]));
        }
    CHECK(big > 0.1);
    float If[C9_IH * C9_IW];
    for (int m = 0; m < C9_IH * C9_IW; m++) If[m] = I->data[C9_IH * C9_IW - 1 - m];
    nb_conv2d_opts o2 = {.pad_top = C9_IH - 1, .pad_bottom = C9_IH - 1, .pad_left = C9_IW - 1, .pad_right = C9_IW - 1};
    nb_tensor *KI = nb_conv2d(K, image(C9_IH, C9_IW, If), NULL, &o2);
    CHECK(KI->shape[2] == C9_SH && KI->shape[3] == C9_SW);
    for (int i = 0; i < C9_SH; i++)
        for (int j = 0; j < C9_SW; j++) CHECK_NEAR(KI->data[i * C9_SW + j], s95[i][j], 1e-5);
}

TEST(test_eq_equivariance_to_translation) {
    /* f(g(x)) = g(f(x)) with g a translation: an image whose content sits
     * away from the border, shifted by (2, 1), gives the output shifted by
     * (2, 1) ("same" padding keeps positions aligned). */
    enum { H = 10, W = 11 };
    nb_rng *r = nb_test_rng();
    float img[H * W] = {0}, shifted[H * W] = {0};
    for (int i = 3; i < 6; i++)
        for (int j = 2; j < 6; j++) img[i * W + j] = (float)nb_rng_normal(r);
    for (int i = 2; i < H; i++)
        for (int j = 1; j < W; j++) shifted[i * W + j] = img[(i - 2) * W + j - 1];
    nb_tensor *w = nb_normal(NB_SHAPE(2, 1, 3, 3), 0, 1, r);
    nb_conv2d_opts o = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    nb_tensor *y = nb_conv2d(image(H, W, img), w, NULL, &o), *ys = nb_conv2d(image(H, W, shifted), w, NULL, &o);
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                double want = (i >= 2 && j >= 1) ? y->data[(c * H + i - 2) * W + j - 1] : 0.0;
                CHECK_NEAR(ys->data[(c * H + i) * W + j], want, 1e-6);
            }
    /* In 1-D too: a sequence delayed by 3 steps gives the output delayed by 3. */
    float seq[16] = {0}, late[16] = {0};
    for (int t = 0; t < 8; t++) seq[t] = (float)nb_rng_normal(r);
    for (int t = 3; t < 16; t++) late[t] = seq[t - 3];
    nb_tensor *k1 = nb_normal(NB_SHAPE(1, 1, 4), 0, 1, r);
    nb_tensor *z = nb_conv1d(nb_from_data(NB_SHAPE(1, 1, 16), seq), k1, NULL, 1, 0, 1, true);
    nb_tensor *zl = nb_conv1d(nb_from_data(NB_SHAPE(1, 1, 16), late), k1, NULL, 1, 0, 1, true);
    for (int t = 0; t < 16; t++) CHECK_NEAR(zl->data[t], t >= 3 ? z->data[t - 3] : 0.0, 1e-6);
}

TEST(test_eq_25_27_sum_of_dice_is_a_convolution) {
    /* The pmf of a + b for independent a ~ f (a fair die) and b ~ g (a die
     * loaded towards 6), indexed by value 0..6:
     *   eq. 25: Pr(a + b = c) = sum over pairs with a + b = c of f(a) g(b)
     *   eq. 27: (f * g)(c) = sum_a f(a) g(c - a)
     * and as a causal conv1d of f (zero-extended) with the flipped g, since
     * nabla's convolution is a cross-correlation: out[c] = sum_k f[c - 6 + k] g[6 - k]. */
    enum { V = 7, S = 2 * V - 1 };
    double f[V] = {0, 1. / 6, 1. / 6, 1. / 6, 1. / 6, 1. / 6, 1. / 6}, g[V] = {0, .1, .1, .1, .1, .1, .5};
    double p25[S] = {0}, p27[S] = {0};
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++) p25[a + b] += f[a] * g[b];
    for (int c = 0; c < S; c++)
        for (int a = 0; a < V; a++)
            if (c - a >= 0 && c - a < V) p27[c] += f[a] * g[c - a];
    float fx[S] = {0}, gk[V];
    for (int a = 0; a < V; a++) fx[a] = (float)f[a];
    for (int k = 0; k < V; k++) gk[k] = (float)g[V - 1 - k];
    nb_tensor *p = nb_conv1d(nb_from_data(NB_SHAPE(1, 1, S), fx), nb_from_data(NB_SHAPE(1, 1, V), gk), NULL, 1, 0, 1, true);
    double total = 0, mean = 0;
    for (int c = 0; c < S; c++) {
        CHECK_NEAR(p25[c], p27[c], 1e-12);
        CHECK_NEAR(p->data[c], p25[c], 1e-6);
        total += p->data[c];
        mean += c * p->data[c];
    }
    CHECK_NEAR(p->data[2], 0.1 / 6, 1e-7);  /* only 1 + 1 */
    CHECK_NEAR(p->data[12], 0.5 / 6, 1e-7); /* only 6 + 6 */
    CHECK_NEAR(p->data[7], (0.1 * 5 + 0.5) / 6, 1e-7);
    CHECK_NEAR(total, 1.0, 1e-6);
    CHECK_NEAR(mean, 3.5 + 4.5, 1e-5); /* E[a + b] = E[a] + E[b] */
}

TEST(test_eq_blur_edge_kernels) {
    /* The notes' 5x5 kernels: blur = 1/9 on the centre 3x3, edge = -1, 1 on
     * the centre row at columns 1, 2. With padding 2 the cross-correlation
     * gives blur(i, j) = mean of the 3x3 neighbourhood and
     * edge(i, j) = I(i, j) - I(i, j - 1). The image is a vertical step: 0 in
     * columns 0-2, 9 in columns 3-5. */
    enum { H = 5, W = 6 };
    float img[H * W], blur[25] = {0}, edge[25] = {0};
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) img[i * W + j] = j >= 3 ? 9.f : 0.f;
    for (int m = 1; m < 4; m++)
        for (int n = 1; n < 4; n++) blur[m * 5 + n] = 1.f / 9;
    edge[2 * 5 + 1] = -1;
    edge[2 * 5 + 2] = 1;
    nb_conv2d_opts o = {.pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2};
    nb_tensor *B = nb_conv2d(image(H, W, img), image(5, 5, blur), NULL, &o);
    nb_tensor *E = nb_conv2d(image(H, W, img), image(5, 5, edge), NULL, &o);
    /* By hand: top and bottom rows see 2 image rows of the 3, the others 3. */
    const float border[W] = {0, 0, 2, 4, 6, 4}, inner[W] = {0, 0, 3, 6, 9, 6};
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            CHECK_NEAR(B->data[i * W + j], (i == 0 || i == H - 1) ? border[j] : inner[j], 1e-5);
            CHECK_NEAR(E->data[i * W + j], j == 3 ? 9.0 : 0.0, 1e-6); /* only at the edge */
        }
}

/* conv1d's bad arguments are named as conv1d's, not as those of the conv2d
 * it calls ("conv2d: negative stride (1, -1)" before). */
static void conv1d_negative_stride(void *c) {
    nb_conv1d(nb_zeros(NB_SHAPE(1, 2, 8)), nb_zeros(NB_SHAPE(3, 2, 3)), NULL, -1, 0, 1, false);
}
static void conv1d_negative_pad(void *c) {
    nb_conv1d(nb_zeros(NB_SHAPE(1, 2, 8)), nb_zeros(NB_SHAPE(3, 2, 3)), NULL, 1, -2, 1, false);
}
static void conv1d_kernel_too_long(void *c) {
    nb_conv1d(nb_zeros(NB_SHAPE(1, 2, 4)), nb_zeros(NB_SHAPE(3, 2, 3)), NULL, 1, 0, 2, false);
}
static void conv1d_channels(void *c) {
    nb_conv1d(nb_zeros(NB_SHAPE(1, 2, 8)), nb_zeros(NB_SHAPE(3, 4, 3)), NULL, 1, 0, 1, false);
}

TEST(test_conv1d_bad_arguments_are_fatal_naming_conv1d) {
    nb_test_expect_fatal("conv1d stride", conv1d_negative_stride, NULL, (const char *[]){"conv1d", "stride (-1)", NULL});
    nb_test_expect_fatal("conv1d padding", conv1d_negative_pad, NULL, (const char *[]){"conv1d", "padding (-2)", NULL});
    nb_test_expect_fatal("conv1d kernel", conv1d_kernel_too_long, NULL,
                         (const char *[]){"conv1d", "kernel of 3 (dilation 2)", "length 4", NULL});
    nb_test_expect_fatal("conv1d channels", conv1d_channels, NULL, (const char *[]){"conv1d", "channels", NULL});
}

/* A 1x1 image padded by INT_MAX on every side: the output's OH * OW was an
 * unchecked signed product (UBSan: overflow) before the result's size was. */
static void conv2d_huge_padding(void *c) {
    nb_conv2d_opts o = {.pad_top = 0x7fffffff, .pad_bottom = 0x7fffffff, .pad_left = 0x7fffffff, .pad_right = 0x7fffffff};
    nb_conv2d(nb_ones(NB_SHAPE(1, 1, 1, 1)), nb_ones(NB_SHAPE(1, 1, 1, 1)), NULL, &o);
}

static void conv2d_no_channels(void *c) { nb_conv2d(nb_ones(NB_SHAPE(1, 0, 3, 3)), nb_ones(NB_SHAPE(2, 0, 1, 1)), NULL, NULL); }

TEST(test_conv2d_output_too_large_is_fatal) {
    nb_test_expect_fatal("conv2d huge padding", conv2d_huge_padding, NULL,
                         (const char *[]){"conv2d", "output 4294967295 x 4294967295", "too large", NULL});
    nb_test_expect_fatal("conv2d 0 channels", conv2d_no_channels, NULL,
                         (const char *[]){"conv2d", "empty kernel: 0 channels", NULL});
}
