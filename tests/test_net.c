/* test_net.c — networks from NET.cfg text: data parallelism with replicas
 * (the same gradient as one pass over the whole batch), and the notes'
 * regularizers that act through a whole network: the activation penalty
 * (eq. 7.48) and the fast gradient sign method (eq. 21). */
#include "test.h"
#include <stdlib.h>
#include <unistd.h>

/* Mean cross-entropy of rows [lo, hi) of the batch, scaled by their share
 * of the batch, as the trainer's shards do. */
static nb_tensor *shard_loss(nb_net *net, const nb_tensor *x, const int32_t *y, int64_t lo, int64_t hi, int64_t n) {
    int64_t per = x->size / x->shape[0];
    nb_tensor *xs = nb_from_data(NB_SHAPE(hi - lo, 2, 8, 8), x->data + lo * per);
    nb_tensor *loss = nb_cross_entropy(nb_net_forward(net, xs, true, NULL), y + lo);
    return nb_mul_scalar(loss, (float)(hi - lo) / (float)n);
}

TEST(test_net_replicas_sum_to_the_full_batch_gradient) {
    nb_rng r;
    nb_rng_seed(&r, 7, 0);
    nb_net *net = nb_net_parse(nb_test_small_cnn, "small.cfg");
    CHECK(net && nb_net_build(net, 0, NULL, &r) == 0);
    int64_t n = 10;
    nb_tensor *x = nb_test_param(NB_SHAPE(n, 2, 8, 8), 1.f);
    int32_t y[10];
    for (int i = 0; i < n; i++) y[i] = (int32_t)nb_rng_below(&r, 3);
    nb_param *p;
    int np = nb_net_params(net, &p);

    /* One pass over the batch. */
    nb_backward(shard_loss(net, x, y, 0, n, n));
    float *want[8];
    for (int k = 0; k < np; k++) {
        want[k] = malloc(sizeof(float) * (size_t)p[k].t->size);
        memcpy(want[k], p[k].t->grad->data, sizeof(float) * (size_t)p[k].t->size);
        nb_zero_grad(p[k].t);
    }
    nb_arena_reset();

    /* Three uneven shards at once, in threads with arenas of their own. */
    enum { S = 3 };
    nb_net *reps[S] = {net, nb_net_replica(net), nb_net_replica(net)};
    nb_arena *arenas[S] = {NULL, nb_arena_new(), nb_arena_new()};
    int64_t cut[S + 1] = {0, 3, 7, 10};
#pragma omp parallel for num_threads(S)
    for (int k = 0; k < S; k++) {
        nb_arena *old = k ? nb_arena_use(arenas[k]) : NULL;
        nb_backward(shard_loss(reps[k], x, y, cut[k], cut[k + 1], n));
        if (k) {
            nb_arena_reset();
            nb_arena_use(old);
        }
    }
    nb_net_replica_reduce(net, reps + 1, S - 1);
    for (int k = 0; k < np; k++) {
        for (int64_t i = 0; i < p[k].t->size; i++)
            CHECK_MSG(fabsf(p[k].t->grad->data[i] - want[k][i]) <= 1e-5f * (1 + fabsf(want[k][i])),
                      "%s [%lld]: shards %g, whole batch %g", p[k].t->name, (long long)i, p[k].t->grad->data[i],
                      want[k][i]);
        free(want[k]);
    }
    /* The replicas' own gradients were handed over and cleared; their
     * weights are the network's memory. */
    nb_param *rp;
    nb_net_params(reps[1], &rp);
    for (int k = 0; k < np; k++) {
        CHECK(rp[k].t->data == p[k].t->data && rp[k].decay == p[k].decay);
        for (int64_t i = 0; i < rp[k].t->size; i++) CHECK(rp[k].t->grad->data[i] == 0.f);
    }
    for (int k = 1; k < S; k++) {
        nb_net_free(reps[k]);
        nb_arena_free(arenas[k]);
    }
    nb_net_free(net);
    nb_tensor_free(x);
}

/* --- eq. 7.48: the activation penalty ----------------------------------------- */

/* Two hidden activations h1 = tanh(fc1 x), h2 = relu(fc2 h1), then fc3. */
static const char *PEN_NET = "[net]\ninput = 5\n"
                             "[dense]\nout = 7\nactivation = tanh\n"
                             "[dense]\nout = 6\nactivation = relu\n"
                             "[dense]\nout = 3\n";

/* J~ = J + alpha Omega(h) with Omega = sum |h| over every hidden activation
 * (eq. 7.48), scaled by 1/n like the batch-mean J: what `nabla train
 * --l1-activation` minimizes. *data gets J. */
static nb_tensor *penalized_loss(nb_net *net, nb_tensor *x, const int32_t *y, float alpha, nb_tensor **data) {
    nb_tensor *loss = nb_cross_entropy(nb_net_forward(net, x, true, NULL), y);
    if (data) *data = loss;
    for (int l = 0; l < nb_net_layers(net); l++)
        if (nb_net_layer_is_activation(net, l))
            loss = nb_add(loss, nb_mul_scalar(nb_sum_all(nb_abs(nb_net_layer_output(net, l))),
                                              alpha / (float)x->shape[0]));
    return loss;
}

static nb_net *pen_net(uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed, 0);
    nb_net *net = nb_net_parse(PEN_NET, "pen.cfg");
    if (!net || nb_net_build(net, 0, NULL, &r) != 0) return NULL;
    return net;
}

TEST(test_eq_7_48_activation_penalty_gradient_is_sign_h_pulled_back) {
    enum { N = 6, I = 5, H1 = 7, H2 = 6, C = 3 };
    nb_net *net = pen_net(11);
    CHECK(net != NULL);
    if (!net) return;
    nb_param *p;
    const char **names;
    int np = nb_net_params(net, &p);
    nb_net_param_names(net, &names);
    CHECK(np == 6 && !strcmp(names[0], "fc1.weight") && !strcmp(names[2], "fc2.weight") &&
          !strcmp(names[4], "fc3.weight"));
    const float *W1 = p[0].t->data, *b1 = p[1].t->data, *W2 = p[2].t->data, *b2 = p[3].t->data;
    nb_tensor *x = nb_test_param(NB_SHAPE(N, I), 1.f);
    int32_t y[N];
    for (int i = 0; i < N; i++) y[i] = (int32_t)nb_rng_below(nb_test_rng(), C);
    const float alpha = 0.3f;
    nb_tensor *w[6], *gt[6], *gd[6];
    for (int k = 0; k < 6; k++) w[k] = p[k].t;
    /* Autodiff of J~, and of J alone (a separate forward). */
    nb_tensor *total = penalized_loss(net, x, y, alpha, NULL);
    double tot = nb_item(total);
    nb_grad(total, w, 6, gt, false);
    int acts[2], na = 0;
    for (int l = 0; l < nb_net_layers(net); l++)
        if (nb_net_layer_is_activation(net, l) && na < 2) acts[na++] = l;
    CHECK(na == 2);
    nb_tensor *h1t = nb_net_layer_output(net, acts[0]), *h2t = nb_net_layer_output(net, acts[1]);
    CHECK(h1t->size == N * H1 && h2t->size == N * H2);
    nb_tensor *data_only = nb_cross_entropy(nb_net_forward(net, x, true, NULL), y);
    nb_grad(data_only, w, 6, gd, false);
    double J = nb_item(data_only);
    /* The forward pass by hand in double, and dOmega/dtheta pulled back by
     * hand: dOmega/dh = sign(h); through relu, 1[z2 > 0]; through fc2 into
     * h1, plus h1's own sign(h1); through tanh, times 1 - h1^2. */
    double h1[N][H1], h2[N][H2], dz2[N][H2], dz1[N][H1], omega = 0;
    int active = 0;
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < H1; j++) {
            double s = b1[j];
            for (int i = 0; i < I; i++) s += (double)W1[j * I + i] * x->data[n * I + i];
            h1[n][j] = tanh(s);
            CHECK_NEAR(h1t->data[n * H1 + j], h1[n][j], 1e-5);
            omega += fabs(h1[n][j]);
        }
        for (int j = 0; j < H2; j++) {
            double s = b2[j];
            for (int i = 0; i < H1; i++) s += (double)W2[j * H1 + i] * h1[n][i];
            h2[n][j] = s > 0 ? s : 0;
            CHECK_NEAR(h2t->data[n * H2 + j], h2[n][j], 1e-5);
            omega += h2[n][j];
            dz2[n][j] = s > 0;
            active += s > 0;
        }
        for (int i = 0; i < H1; i++) {
            double g = (h1[n][i] > 0) - (h1[n][i] < 0);
            for (int j = 0; j < H2; j++) g += dz2[n][j] * W2[j * H1 + i];
            dz1[n][i] = g * (1 - h1[n][i] * h1[n][i]);
        }
    }
    CHECK(active > 0 && active < N * H2); /* both sides of the ReLU are exercised */
    CHECK_NEAR(tot - J, alpha / N * omega, 1e-5);
    double *pen[6];
    for (int k = 0; k < 6; k++) pen[k] = calloc((size_t)w[k]->size, sizeof(double));
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < H1; j++) {
            for (int i = 0; i < I; i++) pen[0][j * I + i] += dz1[n][j] * x->data[n * I + i];
            pen[1][j] += dz1[n][j];
        }
        for (int j = 0; j < H2; j++) {
            for (int i = 0; i < H1; i++) pen[2][j * H1 + i] += dz2[n][j] * h1[n][i];
            pen[3][j] += dz2[n][j];
        }
    }
    /* grad J~ = grad J + alpha/N dOmega/dtheta; fc3 is untouched (pen = 0). */
    double moved = 0;
    for (int k = 0; k < 6; k++) {
        for (int64_t i = 0; i < w[k]->size; i++) {
            double want = gd[k]->data[i] + alpha / N * pen[k][i];
            CHECK_MSG(fabs(gt[k]->data[i] - want) <= 1e-5 * fmax(1, fabs(want)), "%s[%lld]: autodiff %g, by hand %g",
                      names[k], (long long)i, gt[k]->data[i], want);
            moved = fmax(moved, fabs(alpha / N * pen[k][i]));
        }
        free(pen[k]);
    }
    CHECK(moved > 1e-2); /* the penalty's share is well above the tolerance */
    nb_arena_reset();
    nb_tensor_free(x);
    nb_net_free(net);
}

/* Share of exact zeros over the hidden activations of the last forward. */
static double zero_share(const nb_net *net) {
    double z = 0, all = 0;
    for (int l = 0; l < nb_net_layers(net); l++) {
        if (!nb_net_layer_is_activation(net, l)) continue;
        const nb_tensor *h = nb_net_layer_output(net, l);
        for (int64_t i = 0; i < h->size; i++) z += h->data[i] == 0.f;
        all += (double)h->size;
    }
    return z / all;
}

TEST(test_eq_7_48_activation_penalty_makes_exact_zeros) {
    /* The same start and batches, SGD with and without the penalty: with it
     * the ReLU layer ends up with many more exact zeros (a sparse
     * representation, the point of eq. 7.48) and the tanh layer's |h| shrinks.
     * nb_net_evaluate reports the same share the test counts. */
    enum { N = 64, I = 5, STEPS = 60 };
    nb_rng r;
    nb_rng_seed(&r, 5, 1);
    float xs[N * I];
    int32_t ys[N];
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < I; j++) s += (xs[i * I + j] = (float)nb_rng_normal(&r)) * (j % 2 ? -1 : 1);
        ys[i] = s > 0.5 ? 2 : s > -0.5 ? 1 : 0;
    }
    nb_dataset d = {.n = N, .nd = 1, .shape = {I}, .f32 = xs, .y = ys, .nclass = 3};
    double zeros[2], absh1[2], zero0 = 0;
    for (int run = 0; run < 2; run++) {
        float alpha = run ? 0.5f : 0.f;
        nb_net *net = pen_net(21);
        CHECK(net != NULL);
        if (!net) return;
        nb_param *p;
        int np = nb_net_params(net, &p);
        nb_optim *o = nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 0.1f}, p, np);
        nb_tensor *x = nb_from_data(NB_SHAPE(N, I), xs);
        nb_tensor *x0 = nb_tensor_clone(x);
        nb_arena_reset();
        for (int s = 0; s < STEPS; s++) {
            nb_backward(penalized_loss(net, x0, ys, alpha, NULL));
            nb_optim_step_zero(o, NULL, 0);
            nb_arena_reset();
        }
        bool old = nb_set_grad_enabled(false);
        nb_net_forward(net, x0, false, NULL);
        nb_set_grad_enabled(old);
        zeros[run] = zero_share(net);
        double a = 0;
        int tanh_layer = -1;
        for (int l = 0; l < nb_net_layers(net) && tanh_layer < 0; l++)
            if (nb_net_layer_is_activation(net, l)) tanh_layer = l;
        const nb_tensor *h1 = nb_net_layer_output(net, tanh_layer);
        for (int64_t i = 0; i < h1->size; i++) a += fabs(h1->data[i]) / (double)h1->size;
        absh1[run] = a;
        nb_arena_reset();
        nb_eval_result ev;
        nb_net_evaluate(net, &d, 16, 0.f, &ev);
        CHECK_NEAR(ev.zero_fraction, zeros[run], 1e-12);
        if (!run) { /* the start, for reference: a fresh copy of the same init */
            nb_net *fresh = pen_net(21);
            old = nb_set_grad_enabled(false);
            nb_net_forward(fresh, x0, false, NULL);
            nb_set_grad_enabled(old);
            zero0 = zero_share(fresh);
            nb_arena_reset();
            nb_net_free(fresh);
        }
        nb_optim_free(o);
        nb_tensor_free(x0);
        nb_net_free(net);
    }
    CHECK_MSG(zeros[1] > zeros[0] + 0.15 && zeros[1] > zero0 + 0.15,
              "exact zeros: %.3f at the start, %.3f without the penalty, %.3f with it", zero0, zeros[0], zeros[1]);
    CHECK_MSG(absh1[1] < 0.7 * absh1[0], "mean |h1| %.3f with the penalty, %.3f without", absh1[1], absh1[0]);
}

/* --- eq. 21: the fast gradient sign method ------------------------------------ */

static const char *FGSM_NET = "[net]\ninput = 8\n"
                              "[dense]\nout = 6\nactivation = tanh\n"
                              "[dense]\nout = 4\n";

/* The mean cross-entropy of FGSM_NET on x [n, 8], in double, from the
 * weights alone: an independent route to J(theta; x, y). */
static double fgsm_loss(nb_param *p, const double *x, const int32_t *y, int n) {
    const float *W1 = p[0].t->data, *b1 = p[1].t->data, *W2 = p[2].t->data, *b2 = p[3].t->data;
    double L = 0;
    for (int i = 0; i < n; i++) {
        double h[6], z[4], m = -INFINITY, s = 0;
        for (int j = 0; j < 6; j++) {
            double a = b1[j];
            for (int k = 0; k < 8; k++) a += (double)W1[j * 8 + k] * x[i * 8 + k];
            h[j] = tanh(a);
        }
        for (int c = 0; c < 4; c++) {
            z[c] = b2[c];
            for (int j = 0; j < 6; j++) z[c] += (double)W2[c * 6 + j] * h[j];
            m = fmax(m, z[c]);
        }
        for (int c = 0; c < 4; c++) s += exp(z[c] - m);
        L += log(s) + m - z[y[i]];
    }
    return L / n;
}

TEST(test_eq_fgsm_perturbation_is_eps_sign_of_the_input_gradient) {
    enum { N = 5, D = N * 8 };
    nb_rng r;
    nb_rng_seed(&r, 9, 0);
    nb_net *net = nb_net_parse(FGSM_NET, "fgsm.cfg");
    CHECK(net && nb_net_build(net, 0, NULL, &r) == 0);
    if (!net) return;
    nb_param *p;
    CHECK(nb_net_params(net, &p) == 4);
    /* Pixels in [0, 1] as nb_fgsm expects, a few on the edges so the clip
     * to a valid image has work to do. */
    nb_tensor *x = nb_test_param(NB_SHAPE(N, 8), 1.f);
    for (int i = 0; i < D; i++) x->data[i] = (float)nb_rng_uniform(nb_test_rng());
    for (int i = 0; i < D; i += 5) x->data[i] = (float)(i / 5 % 2);
    int32_t y[N];
    for (int i = 0; i < N; i++) y[i] = (int32_t)nb_rng_below(nb_test_rng(), 4);
    /* grad_x J by central differences of the double-precision loss. */
    double xd[D], g[D], h = 1e-6;
    for (int i = 0; i < D; i++) xd[i] = x->data[i];
    for (int i = 0; i < D; i++) {
        xd[i] += h;
        double up = fgsm_loss(p, xd, y, N);
        xd[i] -= 2 * h;
        g[i] = (up - fgsm_loss(p, xd, y, N)) / (2 * h);
        xd[i] += h;
    }
    double J0 = fgsm_loss(p, xd, y, N);
    float eps[2] = {0.1f, 1e-3f};
    for (int e = 0; e < 2; e++) {
        nb_tensor *adv = nb_fgsm(net, x, y, eps[e]);
        CHECK(adv->node == NULL && !adv->requires_grad && adv->size == D);
        /* eq. 21, clipped to [0, 1]: x' = clip(x + eps sign(grad_x J)). */
        int clipped = 0;
        double ad[D], lin = 0;
        for (int i = 0; i < D; i++) {
            CHECK_MSG(fabs(g[i]) > 1e-7, "grad_x J [%d] = %g too small to have a sign", i, g[i]);
            float want = x->data[i] + eps[e] * (float)((g[i] > 0) - (g[i] < 0));
            clipped += want < 0.f || want > 1.f;
            want = want < 0.f ? 0.f : want > 1.f ? 1.f : want;
            CHECK_MSG(adv->data[i] == want, "eps %g, x'[%d] = %.9g, want %.9g (x %.9g, grad %g)", eps[e], i, adv->data[i],
                      want, x->data[i], g[i]);
            ad[i] = adv->data[i];
            lin += g[i] * (ad[i] - xd[i]);
        }
        CHECK(clipped > 0);
        /* The loss goes up, by about the linear term g . (x' - x) for a small
         * step, and more than any other sign pattern of the same size does. */
        double Ja = fgsm_loss(p, ad, y, N);
        CHECK_MSG(Ja > J0, "eps %g: J(x') = %g <= J(x) = %g", eps[e], Ja, J0);
        if (e == 1) CHECK_MSG(fabs(Ja - J0 - lin) <= 0.02 * lin, "increase %g, linear model %g", Ja - J0, lin);
        for (int t = 0; t < 20; t++) {
            double xr[D];
            for (int i = 0; i < D; i++) {
                double v = xd[i] + (nb_rng_uniform(nb_test_rng()) < 0.5 ? -eps[e] : eps[e]);
                xr[i] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
            CHECK(fgsm_loss(p, xr, y, N) < Ja);
        }
        nb_arena_reset();
    }
    for (int i = 0; i < D; i++) CHECK(x->data[i] == (float)xd[i]); /* x itself is left alone */
    nb_tensor_free(x);
    nb_net_free(net);
}

/* The per-layer accessors check the index: one past the layers read beyond
 * the array (ASan: heap-buffer-overflow). */
static void layer_output_out_of_range(void *c) {
    nb_net *net = nb_net_parse("[net]\ninput = 4\n[dense]\nout = 3\nactivation = relu\n", "t.cfg");
    nb_net_build(net, 0, NULL, nb_test_rng());
    nb_net_forward(net, nb_zeros(NB_SHAPE(2, 4)), false, NULL);
    nb_net_layer_output(net, nb_net_layers(net));
}
static void layer_name_negative(void *c) {
    nb_net *net = nb_net_parse("[net]\ninput = 4\n[dense]\nout = 3\n", "t.cfg");
    nb_net_layer_name(net, -1);
}

/* NET.cfg as Windows and old Mac editors save it: a UTF-8 byte-order mark
 * ("bom.cfg:1: expected 'key = value' or a [section], got '\xEF\xBB\xBF'"
 * before), CRLF, or lone CR line ends. Each builds the same network. */
TEST(test_net_cfg_with_bom_crlf_or_cr_line_ends) {
    size_t n = strlen(nb_test_small_cnn);
    char *variants[3];
    variants[0] = malloc(n + 4);
    memcpy(variants[0], "\xEF\xBB\xBF", 3);
    memcpy(variants[0] + 3, nb_test_small_cnn, n + 1);
    variants[1] = malloc(2 * n + 1);
    variants[2] = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i <= n; i++) {
        if (nb_test_small_cnn[i] == '\n') variants[1][k++] = '\r';
        variants[1][k++] = nb_test_small_cnn[i];
        variants[2][i] = nb_test_small_cnn[i] == '\n' ? '\r' : nb_test_small_cnn[i];
    }
    nb_rng r;
    nb_rng_seed(&r, 7, 0);
    nb_net *ref = nb_net_parse(nb_test_small_cnn, "small.cfg");
    CHECK(ref && nb_net_build(ref, 0, NULL, &r) == 0);
    nb_param *pr;
    int npr = ref ? nb_net_params(ref, &pr) : 0;
    for (int v = 0; v < 3; v++) {
        nb_net *net = nb_net_parse(variants[v], "v.cfg");
        CHECK_MSG(net && nb_net_build(net, 0, NULL, &r) == 0, "variant %d: %s", v, nb_errmsg());
        if (net) {
            nb_param *p;
            int np = nb_net_params(net, &p);
            CHECK_MSG(np == npr, "variant %d: %d parameters, expected %d", v, np, npr);
            for (int j = 0; j < np && np == npr; j++) CHECK(nb_same_shape(p[j].t, pr[j].t));
        }
        nb_net_free(net);
        free(variants[v]);
    }
    nb_net_free(ref);
}

TEST(test_net_layer_index_out_of_range_is_fatal) {
    nb_test_expect_fatal("layer output", layer_output_out_of_range, NULL,
                         (const char *[]){"net_layer_output", "layer 2", "[0, 2)", NULL});
    nb_test_expect_fatal("layer name", layer_name_negative, NULL,
                         (const char *[]){"net_layer_name", "layer -1", "[0, 1)", NULL});
}

/* nb_net_build's own input shape is checked as [net] input is: more than 3
 * dims overflowed a 4-entry array (UBSan), a negative one gave a nonsense
 * size. */
TEST(test_net_build_checks_the_given_input_shape) {
    nb_net *net = nb_net_parse("[dense]\nout = 3\n", "t.cfg");
    CHECK(nb_net_build(net, 6, (int64_t[]){1, 1, 1, 1, 2, 2}, nb_test_rng()) == -1 &&
          strstr(nb_errmsg(), "t.cfg: the input shape has 6 dimensions"));
    CHECK(nb_net_build(net, 1, (int64_t[]){-4}, nb_test_rng()) == -1 &&
          strstr(nb_errmsg(), "input dimension 0 is -4"));
    CHECK(nb_net_build(net, 2, (int64_t[]){2, 2}, nb_test_rng()) == 0 && nb_net_outputs(net) == 3);
    nb_net_free(net);
}

/* A label beyond the network's outputs was read as logits[row * C + label]
 * (another row, or past the logits) and gave a plausible loss. */
static void evaluate_with_a_label_out_of_range(void *c) {
    nb_net *net = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 2\n", "t.cfg");
    nb_net_build(net, 0, NULL, nb_test_rng());
    float f[12] = {0};
    int32_t y[4] = {0, 1, 0, 7};
    nb_dataset d = {.n = 4, .nd = 1, .shape = {3}, .f32 = f, .y = y, .nclass = 8};
    nb_eval_result r;
    nb_net_evaluate(net, &d, 2, 0.f, &r);
}

TEST(test_net_evaluate_label_out_of_range_is_fatal) {
    nb_test_expect_fatal("evaluate label", evaluate_with_a_label_out_of_range, NULL,
                         (const char *[]){"net_evaluate", "label 7 of example 3", "[0, 2)", NULL});
}

/* Gradients of another network were added by position, past the end of
 * the smaller one's buffers. */
static void reduce_a_foreign_replica(void *c) {
    nb_net *a = nb_net_parse("[net]\ninput = 5\n[dense]\nout = 4\n", "a.cfg");
    nb_net *b = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 2\n", "b.cfg");
    nb_net_build(a, 0, NULL, nb_test_rng());
    nb_net_build(b, 0, NULL, nb_test_rng());
    nb_net *rb = nb_net_replica(b);
    nb_net_replica_reduce(a, &rb, 1);
}

TEST(test_net_replica_reduce_refuses_another_networks_replica) {
    nb_test_expect_fatal("foreign replica", reduce_a_foreign_replica, NULL,
                         (const char *[]){"net_replica_reduce", "replicas[0] is not a replica", NULL});
}

/* --- layer options of NET.cfg: name, init, activation ------------------------ */

/* nb_net_parse's message for text, or "" when it parsed. */
static const char *parse_error(const char *text) {
    nb_net *net = nb_net_parse(text, "o.cfg");
    if (net) {
        nb_net_free(net);
        return "";
    }
    return nb_errmsg();
}

TEST(test_net_layer_name_option_names_the_parameters) {
    nb_net *net = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 4\nname = enc.hidden_1\n[dense]\nout = 2\n", "n.cfg");
    CHECK_MSG(net && nb_net_build(net, 0, NULL, nb_test_rng()) == 0, "%s", nb_errmsg());
    if (!net) return;
    const char **names;
    int n = nb_net_param_names(net, &names);
    CHECK(n == 4);
    /* the named layer's, then the second dense layer's default name */
    CHECK_MSG(n == 4 && !strcmp(names[0], "enc.hidden_1.weight") && !strcmp(names[1], "enc.hidden_1.bias") &&
                  !strcmp(names[2], "fc2.weight"),
              "%s %s %s", names[0], names[1], names[2]);
    nb_net_free(net);
    /* 47 characters fit the name; 48 do not */
    char text[256], longname[49];
    memset(longname, 'a', 48);
    longname[48] = 0;
    snprintf(text, sizeof text, "[net]\ninput = 3\n[dense]\nout = 4\nname = %s\n", longname);
    CHECK_MSG(strstr(parse_error(text), "o.cfg:5: name: expected 1 to 47 characters"), "%s", nb_errmsg());
    longname[47] = 0;
    snprintf(text, sizeof text, "[net]\ninput = 3\n[dense]\nout = 4\nname = %s\n", longname);
    CHECK_MSG(!*parse_error(text), "%s", nb_errmsg());
    CHECK_MSG(strstr(parse_error("[net]\ninput = 3\n[dense]\nout = 4\nname = a-b\n"),
                     "o.cfg:5: name: 'a-b' may only hold letters, digits, '_' and '.'"),
              "%s", nb_errmsg());
    /* a name given twice, or a given name that is another layer's default */
    CHECK_MSG(strstr(parse_error("[net]\ninput = 3\n[dense]\nout = 4\nname = x\n[dense]\nout = 2\nname = x\n"),
                     "o.cfg:6: layer name 'x' is already used on line 3"),
              "%s", nb_errmsg());
    CHECK_MSG(strstr(parse_error("[net]\ninput = 3\n[dense]\nout = 4\nname = fc2\n[dense]\nout = 2\n"),
                     "layer name 'fc2' is already used"),
              "%s", nb_errmsg());
    nb_clear_error();
}

TEST(test_net_cfg_errors_name_the_line_and_what_was_expected) {
    /* Each bound of each option, the [net] input's forms, the file's
     * structure: refused with the line and what was expected. */
    static const struct { const char *cfg, *want; } bad[] = {
        {"[net]\ninput = 4\n[dense]\nout = 16777217\n", "o.cfg:4: out: expected an integer in [1, 16777216], got '16777217'"},
        {"[net]\ninput = 4\n[dense]\nout = 0\n", "o.cfg:4: out: expected an integer in [1, 16777216]"},
        {"[net]\ninput = 4\n[dense]\nout = 3x\n", "o.cfg:4: out: expected an integer"},
        {"[net]\ninput = 1x8x8\n[maxpool]\nsize = 1025\n", "o.cfg:4: size: expected an integer in [1, 1024]"},
        {"[net]\ninput = 1x8x8\n[conv2d]\nout = 2\nkernel = 3\npadding = -1\n", "o.cfg:6: padding: expected an integer in [0, 1024]"},
        {"[net]\ninput = 1x8x8\n[conv2d]\nout = 2\nkernel = 3\nstride = 0\n", "o.cfg:6: stride: expected an integer in [1, 1024]"},
        {"[net]\ninput = 1x8x8\n[conv2d]\nout = 2\nkernel = 3\ndilation = 0\n", "o.cfg:6: dilation: expected an integer in [1, 1024]"},
        {"[net]\ninput = 4\n[dropout]\np = 1\n", "o.cfg:4: p: expected a number in [0, 0.99], got '1'"},
        {"[net]\ninput = 4\n[dropout]\np = 0.5x\n", "o.cfg:4: p: expected a number"},
        {"[net]\ninput = 4\n[leaky]\nslope = 11\n", "o.cfg:4: slope: expected a number in [-10, 10]"},
        {"[net]\ninput = 0x28x28\n[flatten]\n", "o.cfg:2: input: expected C x H x W"},
        {"[net]\ninput = 3x4\n[flatten]\n", "o.cfg:2: input: expected C x H x W"},
        {"[net]\ninput = 1x2x3x4\n[flatten]\n", "o.cfg:2: input: expected C x H x W"},
        {"[net]\ninput = 1x2y3\n[flatten]\n", "o.cfg:2: input: expected C x H x W"},
        {"[net]\nsize = 3\n", "o.cfg:2: unknown key 'size' in [net]"},
        {"out = 3\n[dense]\nout = 2\n", "o.cfg:1: 'out' comes before any [section]"},
        {"[dense]\nout = 2\n[net]\ninput = 4\n", "o.cfg:3: [net] must come first"},
        {"[net]\ninput = 4\n[dense] out = 2\n", "o.cfg:3: expected a section header like [dense], got '[dense] out = 2'"},
        {"[net]\ninput = 4\n[dense]\nout =\n", "o.cfg:4: out has no value"},
        {"[net]\ninput = 4\n[dense]\nunits = 2\n", "o.cfg:4: [dense] has no option 'units' (expected one of: out name activation init)"},
        {"[net]\ninput = 4\n[flatten]\nout = 2\n", "o.cfg:4: [flatten] has no option 'out' (it takes no options)"},
        {"[net]\ninput = 4\n[dense]\n", "o.cfg:3: [dense] needs 'out' (the number of units)"},
        {"[net]\ninput = 1x8x8\n[avgpool]\n", "o.cfg:3: [avgpool] needs 'size'"},
        {"[net]\ninput = 4\n", "o.cfg: no layers"},
        /* CRLF line ends count one line each */
        {"[net]\r\ninput = 4\r\n[dense]\r\nout = 0\r\n", "o.cfg:4: out: expected an integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(strstr(parse_error(bad[i].cfg), bad[i].want), "case %zu: got '%s', expected '%s'", i, nb_errmsg(),
                  bad[i].want);
    /* Comments after '#' or ';', and a key named like another's prefix. */
    CHECK_MSG(!*parse_error("[net] # the input\ninput = 4 ; four features\n[dense]\nout = 2\n"), "%s", nb_errmsg());
    CHECK(strstr(parse_error("[net]\ninput = 4\n[dense]\nou = 2\n"), "o.cfg:4: [dense] has no option 'ou'"));
    nb_clear_error();
}

/* A network's outputs on x (an arena tensor), NULL with a failed check on any error. */
static nb_tensor *net_outputs(const char *cfg, int nd, const int64_t *shape, const float *x) {
    nb_net *net = nb_net_parse(cfg, "d.cfg");
    if (!net || nb_net_build(net, 0, NULL, nb_test_rng())) {
        CHECK_MSG(0, "%s: %s", cfg, nb_errmsg());
        nb_net_free(net);
        return NULL;
    }
    nb_tensor *y = nb_net_forward(net, nb_from_data(nd, shape, x), false, NULL);
    nb_net_free(net);
    return y;
}

TEST(test_net_cfg_defaults) {
    /* leaky: slope 0.01; pooling: stride = size; a conv: stride 1, no padding. */
    nb_tensor *y = net_outputs("[net]\ninput = 2\n[leaky]\n", NB_SHAPE(1, 2), (float[]){-1.f, 2.f});
    CHECK(y && y->data[0] == -0.01f && y->data[1] == 2.f);
    float img[36];
    for (int i = 0; i < 36; i++) img[i] = (float)i;
    y = net_outputs("[net]\ninput = 1x6x6\n[maxpool]\nsize = 3\n", NB_SHAPE(1, 1, 6, 6), img);
    /* 2 x 2 windows' maxima (the network's outputs come as [N, C*H*W]) */
    CHECK(y && y->size == 4 && y->data[0] == 14.f && y->data[1] == 17.f && y->data[2] == 32.f && y->data[3] == 35.f);
    nb_net *net = nb_net_parse("[net]\ninput = 1x6x6\n[conv2d]\nout = 2\nkernel = 3\n[flatten]\n", "c.cfg");
    CHECK(net && nb_net_build(net, 0, NULL, nb_test_rng()) == 0 && nb_net_outputs(net) == 2 * 4 * 4);
    nb_net_free(net);
    /* a PReLU's slopes start at 0.25 (PyTorch's) and, not being weights
     * (eq. 7.1), are not decayed; a dense layer's weight is, its bias not */
    net = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 2\n[prelu]\n", "p.cfg");
    CHECK(net && nb_net_build(net, 0, NULL, nb_test_rng()) == 0);
    nb_param *p;
    CHECK(net && nb_net_params(net, &p) == 3 && p[0].decay && !p[1].decay && !p[2].decay && p[2].t->data[0] == 0.25f);
    nb_net_free(net);
    /* a later key overrides an earlier one, activation = linear included */
    net = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 2\nactivation = relu\nactivation = linear\n", "l.cfg");
    CHECK(net && nb_net_layers(net) == 1);
    nb_net_free(net);
    nb_arena_reset();
}

/* The build's checks of the shapes the description and the data give. */
static const char *build_error(const char *cfg, int nd, const int64_t *shape) {
    nb_net *net = nb_net_parse(cfg, "b.cfg");
    if (!net) return nb_errmsg();
    int rc = nb_net_build(net, nd, shape, nb_test_rng());
    nb_net_free(net);
    return rc ? nb_errmsg() : "";
}

TEST(test_net_build_refuses_shapes_that_do_not_fit) {
    CHECK(strstr(build_error("[dense]\nout = 3\n", 4, (int64_t[]){1, 1, 2, 2}), "b.cfg: the input shape has 4 dimensions"));
    CHECK(strstr(build_error("[dense]\nout = 3\n", 2, (int64_t[]){3, 0}), "b.cfg: input dimension 1 is 0"));
    CHECK(strstr(build_error("[net]\ninput = 1x2x2\n[flatten]\n", 1, (int64_t[]){5}),
                 "b.cfg: [net] input does not match the data (5 values per example in the data, 4 in the description)"));
    CHECK(!*build_error("[net]\ninput = 1x2x2\n[flatten]\n", 1, (int64_t[]){4}));
    CHECK(strstr(build_error("[net]\ninput = 1x8x2\n[conv2d]\nout = 2\nkernel = 3\n", 0, NULL),
                 "b.cfg:3: [conv2d] output would be empty"));
    CHECK(strstr(build_error("[net]\ninput = 1x2x8\n[conv2d]\nout = 2\nkernel = 3\n", 0, NULL),
                 "b.cfg:3: [conv2d] output would be empty"));
    CHECK(strstr(build_error("[net]\ninput = 1x8x8\n[maxpool]\nsize = 3\npadding = 2\n", 0, NULL),
                 "b.cfg:3: padding must be at most half the size"));
    CHECK(!*build_error("[net]\ninput = 1x8x8\n[maxpool]\nsize = 3\npadding = 1\n", 0, NULL));
    nb_clear_error();
}

/* The variance of a dense weight [200, 400] drawn by `init =`: He 2 / in,
 * Xavier 2 / (in + out) (the default follows the activation: He for the ReLU
 * family, Xavier otherwise). Its standard error is under 1%, the two differ
 * by a factor of 1.5. */
static double weight_variance(const char *cfg) {
    nb_net *net = nb_net_parse(cfg, "i.cfg");
    if (!net || nb_net_build(net, 0, NULL, nb_test_rng())) {
        nb_net_free(net);
        return NAN;
    }
    nb_param *p;
    nb_net_params(net, &p);
    double s2 = 0;
    for (int64_t i = 0; i < p[0].t->size; i++) s2 += (double)p[0].t->data[i] * p[0].t->data[i];
    double v = s2 / (double)p[0].t->size;
    nb_net_free(net);
    return v;
}

TEST(test_net_init_and_activation_options) {
    double he = 2.0 / 400, xavier = 2.0 / 600;
    double v = weight_variance("[net]\ninput = 400\n[dense]\nout = 200\nactivation = relu\n");
    CHECK_MSG(fabs(v / he - 1) < 0.05, "relu default: variance %g, He %g", v, he);
    v = weight_variance("[net]\ninput = 400\n[dense]\nout = 200\nactivation = relu\ninit = xavier\n");
    CHECK_MSG(fabs(v / xavier - 1) < 0.05, "init = xavier: variance %g, expected %g", v, xavier);
    v = weight_variance("[net]\ninput = 400\n[dense]\nout = 200\nactivation = tanh\n");
    CHECK_MSG(fabs(v / xavier - 1) < 0.05, "tanh default: variance %g, Xavier %g", v, xavier);
    v = weight_variance("[net]\ninput = 400\n[dense]\nout = 200\nactivation = tanh\ninit = he\n");
    CHECK_MSG(fabs(v / he - 1) < 0.05, "init = he: variance %g, expected %g", v, he);
    v = weight_variance("[net]\ninput = 400\n[dense]\nout = 200\nactivation = abs\n");
    CHECK_MSG(fabs(v / he - 1) < 0.05, "abs default: variance %g, He %g", v, he);
    CHECK_MSG(strstr(parse_error("[net]\ninput = 3\n[dense]\nout = 4\ninit = kaiming\n"),
                     "o.cfg:5: init: expected he or xavier, got 'kaiming'"),
              "%s", nb_errmsg());
    /* a PReLU's init is its starting slope */
    nb_net *net = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 4\n[prelu]\ninit = 0.5\n", "p.cfg");
    CHECK_MSG(net && nb_net_build(net, 0, NULL, nb_test_rng()) == 0, "%s", nb_errmsg());
    if (net) {
        nb_param *p;
        int np = nb_net_params(net, &p);
        CHECK(np == 3 && p[2].t->size >= 1);
        for (int64_t i = 0; np == 3 && i < p[2].t->size; i++) CHECK(p[2].t->data[i] == 0.5f);
        nb_net_free(net);
    }
    CHECK_MSG(strstr(parse_error("[net]\ninput = 3\n[prelu]\ninit = 11\n"), "o.cfg:4: init"), "%s", nb_errmsg());
    /* activation: a layer after the dense one, none for linear, an error for others */
    net = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 4\nactivation = linear\n[dense]\nout = 2\nactivation = abs\n", "a.cfg");
    CHECK_MSG(net && nb_net_build(net, 0, NULL, nb_test_rng()) == 0, "%s", nb_errmsg());
    if (net) {
        CHECK(nb_net_layers(net) == 3);
        CHECK(nb_net_layers(net) == 3 && !strcmp(nb_net_layer_name(net, 0), "fc1") &&
              !strcmp(nb_net_layer_name(net, 1), "fc2") && !strncmp(nb_net_layer_name(net, 2), "abs", 3));
        nb_net_free(net);
    }
    CHECK_MSG(strstr(parse_error("[net]\ninput = 3\n[dense]\nout = 4\nactivation = softplus\n"),
                     "o.cfg:5: activation: expected relu, leaky, prelu, abs, sigmoid, tanh or linear, got 'softplus'"),
              "%s", nb_errmsg());
    nb_clear_error();
}

/* nb_net_evaluate's adversarial accuracy (adv_eps > 0, `nabla eval
 * --adversarial`) is the accuracy on nb_fgsm's examples (eq. 21): computed
 * here on the whole set at once, there in uneven batches of 7 (the sign of
 * the gradient does not depend on the batch's 1/B). */
TEST(test_net_evaluate_adversarial_accuracy_is_on_fgsm_examples) {
    enum { N = 30, P = 16 };
    uint8_t px[N * P];
    int32_t y[N];
    for (int i = 0; i < N * P; i++) px[i] = (uint8_t)nb_rng_below(nb_test_rng(), 256);
    for (int i = 0; i < N; i++) y[i] = (int32_t)nb_rng_below(nb_test_rng(), 3);
    nb_dataset d = {.n = N, .nd = 3, .shape = {1, 4, 4}, .u8 = px, .y = y, .nclass = 3};
    nb_net *net = nb_net_parse("[net]\ninput = 1x4x4\n[flatten]\n[dense]\nout = 8\nactivation = tanh\n[dense]\nout = 3\n",
                               "adv.cfg");
    CHECK_MSG(net && nb_net_build(net, 0, NULL, nb_test_rng()) == 0, "%s", nb_errmsg());
    if (!net) return;
    int64_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    nb_tensor *x = nb_dataset_batch(&d, idx, N, NULL);
    int32_t pred[N], apred[N];
    nb_argmax_rows(nb_net_forward(net, x, false, NULL), pred);
    nb_argmax_rows(nb_net_forward(net, nb_fgsm(net, x, y, 0.2f), false, NULL), apred);
    int clean = 0, adv = 0;
    for (int i = 0; i < N; i++) clean += pred[i] == y[i], adv += apred[i] == y[i];
    nb_arena_reset();
    nb_eval_result r;
    nb_net_evaluate(net, &d, 7, 0.2f, &r);
    CHECK(r.n == N);
    CHECK_NEAR(r.accuracy, clean / (double)N, 1e-12);
    CHECK_MSG(fabs(r.adv_accuracy - adv / (double)N) < 1e-12, "adversarial accuracy %g, expected %d/%d", r.adv_accuracy,
              adv, N);
    /* the attack raises the loss: here it costs accuracy */
    CHECK(adv <= clean);
    nb_net_evaluate(net, &d, 7, 0.f, &r);
    CHECK(r.adv_accuracy == 0 && fabs(r.accuracy - clean / (double)N) < 1e-12);
    nb_net_free(net);
}

/* --- damaged model files ------------------------------------------------------- */

static void rename_fc2_bias(nb_test_st *f, void *c) { f->names[nb_test_st_find(f, "fc2.bias")] = "fc2.b"; }
static void transpose_fc1_weight(nb_test_st *f, void *c) {
    nb_tensor *w = f->t[nb_test_st_find(f, "fc1.weight")];
    w->shape[0] = 3, w->shape[1] = 2; /* the same 6 values, another shape */
}
static void poison_fc1_weight(nb_test_st *f, void *c) { f->t[nb_test_st_find(f, "fc1.weight")]->data[4] = *(float *)c; }

/* nb_net_load names the file, the tensor and what is wrong with it when a
 * parameter is missing, has another shape or holds a non-finite value (none
 * of these refusals ran in the suite). */
TEST(test_net_load_refuses_missing_reshaped_and_nonfinite_tensors) {
    char path[] = "/tmp/nabla_net_XXXXXX", bad[] = "/tmp/nabla_net_bad_XXXXXX";
    close(mkstemp(path));
    close(mkstemp(bad));
    nb_net *net = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 2\n[dense]\nout = 2\n", "l.cfg");
    CHECK_MSG(net && nb_net_build(net, 0, NULL, nb_test_rng()) == 0, "%s", nb_errmsg());
    CHECK(net && nb_net_save(net, path, NULL, NULL, 0, NULL, NULL, 0) == 0);
    nb_net_free(net);
    nb_safetensors *st = NULL;
    net = nb_net_load(path, &st); /* the file as written loads */
    CHECK_MSG(net && st, "%s", nb_errmsg());
    nb_net_free(net);
    nb_st_free(st);
    struct {
        void (*edit)(nb_test_st *, void *);
        float v;
        const char *says;
    } cases[] = {{rename_fc2_bias, 0, "tensor 'fc2.bias' is missing (the network needs it with shape [2])"},
                 {transpose_fc1_weight, 0, "tensor 'fc1.weight' has shape [3, 2], the network expects [2, 3]"},
                 {poison_fc1_weight, NAN, "tensor 'fc1.weight' holds a non-finite value at index 4"},
                 {poison_fc1_weight, -INFINITY, "tensor 'fc1.weight' holds a non-finite value at index 4"}};
    for (int k = 0; k < 4; k++) {
        CHECK_MSG(nb_test_st_rewrite(path, bad, cases[k].edit, &cases[k].v) == 0, "%s", nb_errmsg());
        st = (nb_safetensors *)1;
        net = nb_net_load(bad, &st);
        CHECK_MSG(!net && !st, "case %d loaded", k);
        nb_net_free(net);
        CHECK_MSG(strstr(nb_errmsg(), bad) && strstr(nb_errmsg(), cases[k].says), "case %d: %s", k, nb_errmsg());
    }
    nb_clear_error();
    unlink(path);
    unlink(bad);
}
