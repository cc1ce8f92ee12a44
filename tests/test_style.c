/* test_style.c — the style chapter's equations (notes §4.6, eq. 1-7)
 * computed the notes' way with loops in double against the ops, against
 * autodiff (the hand-derived gradients of eq. 2 and 6) and against finite
 * differences (gradients and Hessian-vector products); the feature
 * networks (random, a VGG-19-shaped safetensors file of random weights, a
 * nabla model file) and a short texture synthesis. */
#include "test.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A pre-activation Z [1, N, H, W] whose entries keep 0.2 away from 0, so
 * that finite differences never cross the ReLU's kink. */
static nb_tensor *preact(int64_t N, int64_t H, int64_t W) {
    nb_tensor *z = nb_test_param(NB_SHAPE(1, N, H, W), 1.f);
    for (int64_t i = 0; i < z->size; i++) z->data[i] = z->data[i] >= 0 ? z->data[i] + 0.2f : z->data[i] - 0.2f;
    return z;
}

/* Positive targets, as after a ReLU (persistent, no gradient). */
static nb_tensor *target(int64_t N, int64_t H, int64_t W) {
    nb_tensor *p = nb_tensor_new(4, (int64_t[]){1, N, H, W});
    nb_init_uniform(p, 0.f, 1.5f, nb_test_rng());
    return p;
}

/* eq. 3 by loops, in double: G[i][j] = sum_k F_ik F_jk. */
static void gram_loop(const float *F, int64_t N, int64_t M, double *G) {
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < M; k++) s += (double)F[i * M + k] * F[j * M + k];
            G[i * N + j] = s;
        }
}

/* eq. 4 by loops. */
static double layer_loss_loop(const float *F, const float *A, int64_t N, int64_t M) {
    double *G = malloc(sizeof(double) * (size_t)(N * N)), s = 0;
    gram_loop(F, N, M, G);
    for (int64_t i = 0; i < N * N; i++) s += (G[i] - A[i]) * (G[i] - A[i]);
    free(G);
    return s / (4.0 * (double)(N * N) * (double)(M * M));
}

/* A target Gram matrix from random positive maps (persistent). */
static nb_tensor *target_gram(int64_t N, int64_t H, int64_t W) {
    nb_tensor *a = target(N, H, W), *A = nb_tensor_clone(nb_gram(nb_detach(a)));
    nb_tensor_free(a);
    return A;
}

typedef struct {
    nb_tensor *P, *A[3];
    float w[3];
    float alpha, beta;
} fctx;

static nb_tensor *f_content(nb_tensor **in, void *c) { return nb_style_content_loss(nb_relu(in[0]), ((fctx *)c)->P); }
static nb_tensor *f_content_F(nb_tensor **in, void *c) { return nb_style_content_loss(in[0], ((fctx *)c)->P); }
static nb_tensor *f_gram(nb_tensor **in, void *c) { return nb_gram(in[0]); }
static nb_tensor *f_layer(nb_tensor **in, void *c) { return nb_style_layer_loss(nb_relu(in[0]), ((fctx *)c)->A[0]); }
static nb_tensor *f_style(nb_tensor **in, void *c) {
    fctx *x = c;
    nb_tensor *F[3] = {nb_relu(in[0]), nb_relu(in[1]), nb_relu(in[2])};
    return nb_style_loss(F, x->A, x->w, 3);
}
static nb_tensor *f_total(nb_tensor **in, void *c) {
    fctx *x = c;
    nb_tensor *F = nb_relu(in[0]);
    return nb_style_total_loss(nb_style_content_loss(F, x->P), nb_style_layer_loss(F, x->A[0]), x->alpha, x->beta);
}

TEST(test_eq_style_1_content_loss) {
    nb_tensor *z = preact(3, 4, 5);
    fctx c = {.P = target(3, 4, 5)};
    nb_tensor *F = nb_relu(z);
    double s = 0;
    for (int64_t i = 0; i < F->size; i++) s += 0.5 * ((double)F->data[i] - c.P->data[i]) * ((double)F->data[i] - c.P->data[i]);
    CHECK_NEAR(nb_item(nb_style_content_loss(F, c.P)), s, 1e-5);
    /* the same loss of a matrix F [N, M] */
    CHECK_NEAR(nb_item(nb_style_content_loss(nb_reshape(F, 2, (int64_t[]){3, 20}), c.P)), s, 1e-5);
    nb_gradcheck("content loss (after relu)", f_content, &z, 1, &c, 1e-2f, 2e-2f);
    nb_hvpcheck("content loss (after relu)", f_content, &z, 1, &c, 1e-2f, 2e-2f);
    nb_tensor *f = nb_test_param(NB_SHAPE(1, 3, 4, 5), 1.f);
    nb_gradcheck("content loss", f_content_F, &f, 1, &c, 1e-2f, 2e-2f);
    nb_hvpcheck("content loss", f_content_F, &f, 1, &c, 1e-2f, 2e-2f);
    nb_tensor_free(f);
    nb_tensor_free(z);
    nb_tensor_free(c.P);
}

TEST(test_eq_style_2_content_grad_matches_autodiff) {
    nb_tensor *z = preact(4, 6, 3);
    nb_tensor *P = target(4, 6, 3);
    nb_tensor *F = nb_relu(z), *g;
    nb_tensor *L = nb_style_content_loss(F, P);
    nb_grad(L, &z, 1, &g, false);
    nb_tensor *hand = nb_style_content_grad(F, P); /* eq. 2 */
    int masked = 0;
    for (int64_t i = 0; i < z->size; i++) {
        CHECK_NEAR(hand->data[i], g->data[i], 1e-5);
        masked += F->data[i] <= 0;
    }
    CHECK(masked > 0 && masked < z->size); /* both cases of eq. 2 are exercised */
    /* Where F > 0 it is dL/dF itself: F - P. */
    nb_tensor *Fp = nb_tensor_clone(F);
    nb_requires_grad(Fp, true);
    nb_tensor *gF;
    nb_grad(nb_style_content_loss(Fp, P), &Fp, 1, &gF, false);
    for (int64_t i = 0; i < z->size; i++)
        if (F->data[i] > 0) CHECK_NEAR(hand->data[i], gF->data[i], 1e-5);
    nb_tensor_free(Fp);
    nb_tensor_free(z);
    nb_tensor_free(P);
}

TEST(test_eq_style_3_gram) {
    int64_t N = 5, H = 3, W = 4, M = H * W;
    nb_tensor *f = nb_test_param(NB_SHAPE(1, N, H, W), 1.f);
    nb_tensor *G = nb_gram(f);
    CHECK(G->ndim == 2 && G->shape[0] == N && G->shape[1] == N);
    double *g = malloc(sizeof(double) * (size_t)(N * N));
    gram_loop(f->data, N, M, g);
    for (int64_t i = 0; i < N * N; i++) CHECK_NEAR(G->data[i], g[i], 1e-5);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) CHECK(G->data[i * N + j] == G->data[j * N + i]); /* symmetric */
    /* [N, H, W] and [N, M] give the same matrix */
    nb_tensor *G3 = nb_gram(nb_reshape(f, 3, (int64_t[]){N, H, W})), *G2 = nb_gram(nb_reshape(f, 2, (int64_t[]){N, M}));
    CHECK(nb_test_maxrel(G3->data, G->data, G->size) == 0 && nb_test_maxrel(G2->data, G->data, G->size) == 0);
    nb_gradcheck("gram", f_gram, &f, 1, NULL, 1e-2f, 2e-2f);
    nb_hvpcheck("gram", f_gram, &f, 1, NULL, 1e-2f, 2e-2f);
    free(g);
    nb_tensor_free(f);
}

TEST(test_eq_style_4_layer_loss) {
    int64_t N = 4, H = 5, W = 3;
    nb_tensor *z = preact(N, H, W);
    fctx c = {.A = {target_gram(N, H, W)}};
    nb_tensor *F = nb_relu(z);
    CHECK_NEAR(nb_item(nb_style_layer_loss(F, c.A[0])), layer_loss_loop(F->data, c.A[0]->data, N, H * W), 1e-5);
    /* the 1/(4 N^2 M^2) scale: E(F) for F = 0 is sum A^2 / (4 N^2 M^2) */
    double a2 = 0;
    for (int64_t i = 0; i < N * N; i++) a2 += (double)c.A[0]->data[i] * c.A[0]->data[i];
    CHECK_NEAR(nb_item(nb_style_layer_loss(nb_zeros(4, F->shape), c.A[0])), a2 / (4.0 * N * N * (H * W) * (H * W)), 1e-5);
    nb_gradcheck("style layer loss", f_layer, &z, 1, &c, 1e-2f, 3e-2f);
    nb_hvpcheck("style layer loss", f_layer, &z, 1, &c, 1e-2f, 3e-2f);
    nb_tensor_free(z);
    nb_tensor_free(c.A[0]);
}

TEST(test_eq_style_5_weighted_style_loss) {
    int64_t sh[3][3] = {{3, 6, 6}, {5, 3, 3}, {7, 2, 1}}; /* layers of different sizes, as deeper in a net */
    fctx c = {.w = {0.2f, 0.5f, 0.3f}};
    nb_tensor *z[3];
    double want = 0, want_equal = 0;
    for (int l = 0; l < 3; l++) {
        z[l] = preact(sh[l][0], sh[l][1], sh[l][2]);
        c.A[l] = target_gram(sh[l][0], sh[l][1], sh[l][2]);
        nb_tensor *F = nb_relu(z[l]);
        double E = layer_loss_loop(F->data, c.A[l]->data, sh[l][0], sh[l][1] * sh[l][2]);
        want += c.w[l] * E;
        want_equal += E / 3;
    }
    nb_tensor *F[3] = {nb_relu(z[0]), nb_relu(z[1]), nb_relu(z[2])};
    CHECK_NEAR(nb_item(nb_style_loss(F, c.A, c.w, 3)), want, 1e-5);
    CHECK_NEAR(nb_item(nb_style_loss(F, c.A, NULL, 3)), want_equal, 1e-5); /* w_l = 1/L */
    nb_gradcheck("style loss", f_style, z, 3, &c, 1e-2f, 3e-2f);
    nb_hvpcheck("style loss", f_style, z, 3, &c, 1e-2f, 3e-2f);
    for (int l = 0; l < 3; l++) {
        nb_tensor_free(z[l]);
        nb_tensor_free(c.A[l]);
    }
}

TEST(test_eq_style_6_style_grad_matches_autodiff) {
    int64_t N = 6, H = 4, W = 5;
    nb_tensor *z = preact(N, H, W), *A = target_gram(N, H, W);
    nb_tensor *F = nb_relu(z), *g;
    nb_grad(nb_style_layer_loss(F, A), &z, 1, &g, false);
    nb_tensor *hand = nb_style_layer_grad(F, A); /* eq. 6 */
    double scale = 0;
    for (int64_t i = 0; i < g->size; i++) scale = fmax(scale, fabs(g->data[i]));
    CHECK(scale > 0);
    int masked = 0;
    for (int64_t i = 0; i < z->size; i++) {
        CHECK_NEAR(hand->data[i] / scale, g->data[i] / scale, 1e-4);
        if (F->data[i] <= 0) {
            masked++;
            CHECK(hand->data[i] == 0);
        }
    }
    CHECK(masked > 0 && masked < z->size);
    /* eq. 5's gradient is sum_l w_l times eq. 6 for each layer */
    nb_tensor *Fs[1] = {F}, *As[1] = {A}, *g5;
    float w = 0.25f;
    nb_grad(nb_style_loss(Fs, As, &w, 1), &z, 1, &g5, false);
    for (int64_t i = 0; i < z->size; i++) CHECK_NEAR(w * hand->data[i] / scale, g5->data[i] / scale, 1e-4);
    nb_tensor_free(z);
    nb_tensor_free(A);
}

TEST(test_eq_style_7_total_loss) {
    int64_t N = 3, H = 4, W = 4;
    nb_tensor *z = preact(N, H, W);
    fctx c = {.P = target(N, H, W), .A = {target_gram(N, H, W)}, .alpha = 1e-3f, .beta = 2.f};
    nb_tensor *F = nb_relu(z);
    double lc = 0;
    for (int64_t i = 0; i < F->size; i++) lc += 0.5 * ((double)F->data[i] - c.P->data[i]) * ((double)F->data[i] - c.P->data[i]);
    double ls = layer_loss_loop(F->data, c.A[0]->data, N, H * W);
    nb_tensor *tot = nb_style_total_loss(nb_style_content_loss(F, c.P), nb_style_layer_loss(F, c.A[0]), c.alpha, c.beta);
    CHECK_NEAR(nb_item(tot), c.alpha * lc + c.beta * ls, 1e-5);
    /* without content: beta times the style loss (texture synthesis) */
    CHECK_NEAR(nb_item(nb_style_total_loss(NULL, nb_style_layer_loss(F, c.A[0]), c.alpha, c.beta)), c.beta * ls, 1e-5);
    /* its gradient is alpha eq. 2 + beta eq. 6 */
    nb_tensor *g, *h2 = nb_style_content_grad(F, c.P), *h6 = nb_style_layer_grad(F, c.A[0]);
    nb_grad(tot, &z, 1, &g, false);
    for (int64_t i = 0; i < z->size; i++) CHECK_NEAR(g->data[i], c.alpha * h2->data[i] + c.beta * h6->data[i], 1e-4);
    nb_gradcheck("total loss", f_total, &z, 1, &c, 1e-2f, 3e-2f);
    nb_hvpcheck("total loss", f_total, &z, 1, &c, 1e-2f, 3e-2f);
    nb_tensor_free(z);
    nb_tensor_free(c.P);
    nb_tensor_free(c.A[0]);
}

static nb_tensor *f_tv(nb_tensor **in, void *c) { return nb_tv_loss(in[0]); }

TEST(test_style_tv_loss) {
    nb_tensor *x = nb_test_param(NB_SHAPE(1, 3, 4, 5), 1.f);
    double s = 0;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t i = 0; i < 4; i++)
            for (int64_t j = 0; j < 5; j++) {
                const float *p = x->data + (c * 4 + i) * 5 + j;
                if (i + 1 < 4) s += (double)(p[5] - p[0]) * (p[5] - p[0]);
                if (j + 1 < 5) s += (double)(p[1] - p[0]) * (p[1] - p[0]);
            }
    CHECK_NEAR(nb_item(nb_tv_loss(x)), s, 1e-5);
    nb_gradcheck("tv", f_tv, &x, 1, NULL, 1e-2f, 2e-2f);
    nb_tensor_free(x);
}

/* A 1-D x read shape[-1] (UBSan: index -1), an empty one was refused by a
 * slice in its name. */
static void tv_of_a_vector(void *c) { nb_tv_loss(nb_zeros(NB_SHAPE(4))); }
static void tv_of_an_empty_image(void *c) { nb_tv_loss(nb_zeros(NB_SHAPE(3, 0, 4))); }

TEST(test_style_tv_loss_needs_h_and_w) {
    nb_test_expect_fatal("tv 1-D", tv_of_a_vector, NULL, (const char *[]){"tv_loss", "[..., H, W]", "[4]", NULL});
    nb_test_expect_fatal("tv empty", tv_of_an_empty_image, NULL, (const char *[]){"tv_loss", "[3, 0, 4]", NULL});
    CHECK(nb_item(nb_tv_loss(nb_ones(NB_SHAPE(1, 1)))) == 0.f); /* one pixel: no neighbours */
    nb_arena_reset();
}

/* F and P of the same size but different shapes: refused naming the loss
 * (the subtraction inside refused it as "sub"). */
static void content_loss_of_transposed_maps(void *c) {
    nb_style_content_loss(nb_zeros(NB_SHAPE(3, 4)), nb_zeros(NB_SHAPE(4, 3)));
}

TEST(test_style_content_loss_mismatch_is_fatal_naming_it) {
    nb_test_expect_fatal("content loss", content_loss_of_transposed_maps, NULL,
                         (const char *[]){"style_content_loss", "[3, 4] and [4, 3]", NULL});
    /* [1, N, H, W] against [N, H, W]: the same map, accepted */
    CHECK(nb_item(nb_style_content_loss(nb_ones(NB_SHAPE(1, 2, 3, 3)), nb_ones(NB_SHAPE(2, 3, 3)))) == 0.f);
    nb_arena_reset();
}

/* --- feature networks ---------------------------------------------------- */

TEST(test_style_random_net_scales_and_seed) {
    nb_style_net *a = nb_style_net_random(3, 4, 5, 7), *b = nb_style_net_random(3, 4, 5, 7),
                 *c = nb_style_net_random(3, 4, 5, 8);
    const char *const *names;
    CHECK(nb_style_net_layers(a, &names) == 3 && !strcmp(names[0], "scale1") && !strcmp(names[2], "scale3"));
    CHECK(nb_style_net_find(a, "scale2") == 1 && nb_style_net_find(a, "conv1_1") == -1);
    nb_tensor *x = nb_uniform(NB_SHAPE(1, 3, 16, 12), 0.f, 1.f, nb_test_rng());
    int want[3] = {0, 1, 2};
    nb_tensor *fa[3], *fb[3], *fc[3];
    nb_style_net_forward(a, x, want, 3, fa);
    nb_style_net_forward(b, x, want, 3, fb);
    nb_style_net_forward(c, x, want, 3, fc);
    for (int s = 0; s < 3; s++) {
        CHECK(fa[s]->shape[1] == 4 && fa[s]->shape[2] == 16 >> s && fa[s]->shape[3] == 12 >> s);
        CHECK(nb_test_maxrel(fa[s]->data, fb[s]->data, fa[s]->size) == 0); /* seeded */
        for (int64_t i = 0; i < fa[s]->size; i++) CHECK(fa[s]->data[i] >= 0); /* after the ReLU */
    }
    CHECK(nb_test_maxrel(fa[0]->data, fc[0]->data, fa[0]->size) > 0);
    nb_style_net_free(a);
    nb_style_net_free(b);
    nb_style_net_free(c);
    CHECK(!nb_style_net_random(0, 4, 5, 1) && strstr(nb_errmsg(), "scales"));
}

static char tdir[256];
static const char *tmpd(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%s/nabla-style-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tdir);
}

/* Writes the first nconv convolutions of VGG-19 with torchvision's names
 * and shapes (random weights); bad_shape breaks features.2.weight. */
static int write_vgg(const char *path, int nconv, bool bad_shape) {
    static const int idx[16] = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34};
    static const int width[16] = {64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512};
    char *names[32] = {0};
    nb_tensor *ts[32] = {0};
    int n = 0, in = 3;
    for (int i = 0; i < nconv; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "features.%d.weight", idx[i]);
        names[n] = strdup(buf);
        int kk = bad_shape && i == 1 ? 5 : 3;
        ts[n] = nb_tensor_new(4, (int64_t[]){width[i], in, kk, kk});
        nb_init_normal(ts[n++], 0.f, 0.05f, nb_test_rng());
        snprintf(buf, sizeof buf, "features.%d.bias", idx[i]);
        names[n] = strdup(buf);
        ts[n] = nb_tensor_new(1, (int64_t[]){width[i]});
        nb_init_normal(ts[n++], 0.f, 0.05f, nb_test_rng());
        in = width[i];
    }
    int rc = nb_st_write(path, (const char *const *)names, ts, n, NULL, NULL, 0);
    for (int i = 0; i < n; i++) {
        free(names[i]);
        nb_tensor_free(ts[i]);
    }
    return rc;
}

TEST(test_style_vgg19_loader) {
    const char *d = tmpd();
    CHECK(d);
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/vgg.safetensors", d);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", d);
    CHECK(write_vgg(path, 5, false) == 0); /* conv1_1 .. conv3_1 */
    CHECK(write_vgg(bad, 3, true) == 0);
    nb_style_net *s = nb_style_net_vgg19(path, 5, false);
    CHECK(s != NULL);
    if (s) {
        const char *const *names;
        CHECK(nb_style_net_layers(s, &names) == 5 && !strcmp(names[2], "conv2_1") && !strcmp(names[4], "conv3_1"));
        nb_tensor *x = nb_uniform(NB_SHAPE(1, 3, 12, 8), 0.f, 1.f, nb_test_rng());
        int want[3] = {0, 2, 4};
        nb_tensor *f[3];
        nb_style_net_forward(s, x, want, 3, f);
        CHECK(f[0]->shape[1] == 64 && f[0]->shape[2] == 12 && f[0]->shape[3] == 8);
        CHECK(f[1]->shape[1] == 128 && f[1]->shape[2] == 6 && f[1]->shape[3] == 4);
        CHECK(f[2]->shape[1] == 256 && f[2]->shape[2] == 3 && f[2]->shape[3] == 2);
        /* conv1_1 is relu(conv(normalized x)) with the file's weights */
        nb_safetensors *st = nb_st_read(path);
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
        nb_tensor *xn = nb_empty(4, x->shape);
        for (int64_t c = 0; c < 3; c++)
            for (int64_t i = 0; i < 96; i++) xn->data[c * 96 + i] = (x->data[c * 96 + i] - mean[c]) / sd[c];
        nb_conv2d_opts o = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
        nb_tensor *ref = nb_relu(nb_conv2d(xn, nb_st_get(st, "features.0.weight"), nb_st_get(st, "features.0.bias"), &o));
        CHECK(nb_test_maxrel(f[0]->data, ref->data, ref->size) < 1e-4);
        nb_st_free(st);
        nb_style_net_free(s);
    }
    /* average pooling on request gives other deeper maps */
    nb_style_net *sa = nb_style_net_vgg19(path, 3, true);
    CHECK(sa != NULL);
    nb_style_net_free(sa);
    /* a layer the file does not hold, and a wrong shape: named */
    CHECK(!nb_style_net_vgg19(path, 6, false) && strstr(nb_errmsg(), "features.12.weight") &&
          strstr(nb_errmsg(), "conv3_2"));
    CHECK(!nb_style_net_vgg19(bad, 2, false) && strstr(nb_errmsg(), "features.2.weight") &&
          strstr(nb_errmsg(), "[64, 64, 3, 3]"));
    unlink(path);
    unlink(bad);
    rmdir(d);
}

TEST(test_style_model_net) {
    const char *d = tmpd();
    char path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", d);
    nb_net *net = nb_net_parse("[net]\ninput = 3x16x16\n[conv2d]\nout = 4\nkernel = 3\npadding = 1\nactivation = relu\n"
                               "[maxpool]\nsize = 2\n[conv2d]\nout = 5\nkernel = 3\nactivation = relu\n[flatten]\n"
                               "[dense]\nout = 2\n",
                               "test.cfg");
    CHECK(net && nb_net_build(net, 0, NULL, nb_test_rng()) == 0);
    CHECK(nb_net_save(net, path, NULL, NULL, 0, NULL, NULL, 0) == 0);
    nb_net_free(net);
    nb_style_net *s = nb_style_net_model(path);
    CHECK(s != NULL);
    if (s) {
        const char *const *names;
        int64_t h, w;
        CHECK(nb_style_net_layers(s, &names) == 2 && !strcmp(names[0], "conv1") && !strcmp(names[1], "conv2"));
        CHECK(nb_style_net_input_size(s, &h, &w) && h == 16 && w == 16);
        nb_tensor *x = nb_uniform(NB_SHAPE(1, 3, 16, 16), 0.f, 1.f, nb_test_rng());
        int want[2] = {0, 1};
        nb_tensor *f[2];
        nb_style_net_forward(s, x, want, 2, f);
        CHECK(f[0]->shape[1] == 4 && f[0]->shape[2] == 16 && f[1]->shape[1] == 5 && f[1]->shape[2] == 6);
        for (int64_t i = 0; i < f[0]->size; i++) CHECK(f[0]->data[i] >= 0); /* after its ReLU */
        nb_style_net_free(s);
    }
    unlink(path);
    rmdir(d);
}

/* A texture from noise: the style loss of a random net falls by 100x or
 * more in 40 L-BFGS iterations, and stays the same with the same seed. */
typedef struct {
    nb_style *p;
    nb_tensor *x;
} tctx;
static float tclosure(void *c) {
    tctx *t = c;
    nb_tensor *l = nb_style_objective(t->p, t->x, NULL);
    nb_backward(l);
    return nb_item(l);
}

TEST(test_style_texture_loss_falls) {
    nb_style_net *net = nb_style_net_random(3, 8, 3, 1);
    nb_tensor *style = nb_tensor_new(3, (int64_t[]){3, 24, 24});
    for (int64_t c = 0; c < 3; c++) /* stripes: a texture with structure */
        for (int64_t i = 0; i < 24; i++)
            for (int64_t j = 0; j < 24; j++) style->data[(c * 24 + i) * 24 + j] = ((i + j) / 3) % 2 ? 0.9f : 0.1f * (float)c;
    int layers[3] = {0, 1, 2};
    nb_style_spec sp = {.style_layers = layers, .nstyle = 3, .alpha = 1, .beta = 1e4f};
    nb_style *p = nb_style_new(net, NULL, style, &sp);
    nb_tensor *x = nb_tensor_new(4, (int64_t[]){1, 3, 24, 24});
    nb_init_uniform(x, 0.f, 1.f, nb_test_rng());
    nb_requires_grad(x, true);
    nb_style_losses l0, l1;
    nb_style_objective(p, x, &l0);
    CHECK(l0.content == 0 && l0.objective == l0.total);
    CHECK_NEAR(l0.total, 1e4 * l0.style, 1e-6);
    tctx t = {p, x};
    nb_param ps[1] = {{x, false}};
    nb_lbfgs_opts lo = {.max_iter = 40, .tol_grad = 1e-30f, .tol_change = 1e-30f};
    nb_lbfgs(ps, 1, tclosure, &t, &lo, NULL);
    nb_style_objective(p, x, &l1);
    CHECK_MSG(l1.style * 100 <= l0.style, "style loss %g -> %g", l0.style, l1.style);
    nb_style_free(p);
    nb_tensor_free(x);
    nb_tensor_free(style);
    nb_style_net_free(net);
}

/* With a content image, the objective is alpha eq. 1 + beta eq. 5 (+ tv). */
TEST(test_style_objective_with_content) {
    nb_style_net *net = nb_style_net_random(2, 4, 3, 3);
    nb_tensor *content = nb_tensor_new(3, (int64_t[]){3, 8, 8}), *style = nb_tensor_new(3, (int64_t[]){3, 8, 8});
    nb_init_uniform(content, 0.f, 1.f, nb_test_rng());
    nb_init_uniform(style, 0.f, 1.f, nb_test_rng());
    int layers[2] = {0, 1};
    float w[2] = {0.7f, 0.3f};
    nb_style_spec sp = {.content_layer = 1, .style_layers = layers, .style_weights = w, .nstyle = 2, .alpha = 2,
                        .beta = 5, .tv = 0.5f};
    nb_tensor *keep = nb_full(NB_SHAPE(64), 3.f); /* the caller's arena survives nb_style_new */
    nb_style *p = nb_style_new(net, content, style, &sp);
    for (int i = 0; i < 64; i++) CHECK(keep->data[i] == 3.f);
    CHECK(nb_arena_bytes_used() > 0);
    /* x = the content image: content loss 0 */
    nb_tensor *x = nb_reshape(nb_detach(content), 4, (int64_t[]){1, 3, 8, 8});
    nb_style_losses l;
    nb_style_objective(p, x, &l);
    CHECK(l.content == 0);
    double tv = nb_item(nb_tv_loss(x));
    CHECK_NEAR(l.total, 5 * l.style, 1e-6);
    CHECK_NEAR(l.objective, 5 * l.style + 0.5 * tv, 1e-5);
    /* x = the style image: style loss 0, content loss by eq. 1 */
    nb_tensor *xs = nb_reshape(nb_detach(style), 4, (int64_t[]){1, 3, 8, 8});
    nb_style_objective(p, xs, &l);
    CHECK_NEAR(l.style, 0, 1e-9);
    int cl = 1;
    nb_tensor *Fc, *Fs;
    nb_style_net_forward(net, x, &cl, 1, &Fc);
    nb_style_net_forward(net, xs, &cl, 1, &Fs);
    CHECK_NEAR(l.content, nb_item(nb_style_content_loss(Fs, Fc)), 1e-5);
    CHECK_NEAR(l.total, 2 * l.content, 1e-5);
    nb_style_free(p);
    nb_tensor_free(content);
    nb_tensor_free(style);
    nb_style_net_free(net);
}
