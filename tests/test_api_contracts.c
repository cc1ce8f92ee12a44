/* test_api_contracts.c — one direct test for each public function of nabla.h
 * that no other test named: each checks what the header documents against an
 * expectation computed here on its own (a formula, a count by hand, another
 * path through the library), not only that the function runs.
 *
 * The functions that move things to the GPU (..._to, ..._device) are checked
 * for their CPU contract everywhere; where nb_device_ready(NB_CUDA) fails
 * (no CUDA in the build, or no GPU), moving is fatal with that reason, and
 * where it succeeds the values make the round trip unchanged. */
#include "test.h"
#include <stdlib.h>
#include <unistd.h>

/* --- helpers ----------------------------------------------------------------- */

/* Whether the GPU answers; why not goes to why (and nb_errmsg is cleared). */
static bool gpu_ready(char *why, size_t n) {
    bool ok = nb_device_ready(NB_CUDA) == 0;
    snprintf(why, n, "%s", ok ? "" : nb_errmsg());
    nb_clear_error();
    return ok;
}

/* What fn(ctx) prints to a memory stream. */
static char *print_to_string(void (*fn)(const void *, FILE *), const void *ctx) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fn(ctx, f);
    fclose(f);
    return buf;
}

static char *temp_path(const char *stem) {
    char *p = malloc(64);
    snprintf(p, 64, "/tmp/nabla_api_%s_XXXXXX", stem);
    int fd = mkstemp(p);
    if (fd < 0) {
        free(p);
        return NULL;
    }
    close(fd);
    return p;
}

/* Sample mean, variance (ddof 0) and kurtosis of the n values of x. */
static void moments(const float *x, int64_t n, double *mean, double *var, double *kurt) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    double m = s / (double)n, s2 = 0, s4 = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - m;
        s2 += d * d;
        s4 += d * d * d * d;
    }
    *mean = m;
    *var = s2 / (double)n;
    *kurt = (s4 / (double)n) / (*var * *var);
}

/* --- initialization: fans and the four named initializers --------------------- */

TEST(test_api_fans_of_dense_conv_and_vector_weights) {
    int64_t fi, fo;
    /* dense [out, in] */
    nb_fans(nb_empty(NB_SHAPE(7, 5)), &fi, &fo);
    CHECK(fi == 5 && fo == 7);
    /* conv2d [out, in, kh, kw]: both fans count the receptive field 3 x 5 */
    nb_fans(nb_empty(NB_SHAPE(8, 3, 3, 5)), &fi, &fo);
    CHECK(fi == 3 * 15 && fo == 8 * 15);
    /* conv1d [out, in, k] */
    nb_fans(nb_empty(NB_SHAPE(4, 2, 3)), &fi, &fo);
    CHECK(fi == 6 && fo == 12);
    /* a vector counts as [out]; a scalar as one value in and out */
    nb_fans(nb_empty(NB_SHAPE(9)), &fi, &fo);
    CHECK(fi == 1 && fo == 9);
    nb_fans(nb_scalar(0.f), &fi, &fo);
    CHECK(fi == 1 && fo == 1);
}

/* Each initializer on a conv weight [128, 64, 3, 3] (fan_in 576, fan_out
 * 1152, n = 73728 values): the mean is 0 within 5 standard errors, the
 * variance is the header's within 3% (its standard error is 0.5% for the
 * normal, 0.33% for the uniform: a wrong fan or constant is off by a factor
 * of 1.5 or more), the kurtosis tells the uniform (1.8) from the normal (3),
 * and a uniform's values reach its bound and never pass it. */
static void check_init(const char *what, void (*init)(nb_tensor *, nb_rng *), double want_var, bool uniform) {
    nb_tensor *w = nb_tensor_new(NB_SHAPE(128, 64, 3, 3));
    nb_rng r;
    nb_rng_seed(&r, 11, 3);
    init(w, &r);
    double mean, var, kurt;
    moments(w->data, w->size, &mean, &var, &kurt);
    double n = (double)w->size;
    CHECK_MSG(fabs(mean) < 5 * sqrt(want_var / n), "%s: mean %g", what, mean);
    CHECK_MSG(fabs(var / want_var - 1) < 0.03, "%s: variance %g, expected %g", what, var, want_var);
    CHECK_MSG(fabs(kurt - (uniform ? 1.8 : 3.0)) < 0.1, "%s: kurtosis %g", what, kurt);
    if (uniform) {
        double bound = sqrt(3 * want_var), mx = 0;
        for (int64_t i = 0; i < w->size; i++) mx = fmax(mx, fabs(w->data[i]));
        CHECK_MSG(mx <= bound * (1 + 1e-6) && mx > 0.999 * bound, "%s: max |w| %g, bound %g", what, mx, bound);
    }
    /* the same generator state gives the same values: init draws only from r */
    nb_tensor *v = nb_tensor_new(NB_SHAPE(128, 64, 3, 3));
    nb_rng_seed(&r, 11, 3);
    init(v, &r);
    CHECK_MSG(!memcmp(v->data, w->data, sizeof(float) * (size_t)w->size), "%s: not reproducible", what);
    nb_tensor_free(v);
    nb_tensor_free(w);
}

TEST(test_api_init_xavier_and_he_variances) {
    const double fan_in = 64 * 9, fan_out = 128 * 9;
    /* Glorot & Bengio: Var = 2 / (in + out); uniform bound sqrt(6 / (in + out)) */
    check_init("xavier_uniform", nb_init_xavier_uniform, 2 / (fan_in + fan_out), true);
    check_init("xavier_normal", nb_init_xavier_normal, 2 / (fan_in + fan_out), false);
    /* He et al.: Var = 2 / in; uniform bound sqrt(6 / in) */
    check_init("he_uniform", nb_init_he_uniform, 2 / fan_in, true);
    check_init("he_normal", nb_init_he_normal, 2 / fan_in, false);
}

/* --- tensors: the _like constructors, printing, shapes, grad mode ------------- */

TEST(test_api_empty_like_and_zeros_like) {
    /* dirty arena memory first: zeros_like must clear what it is given */
    nb_tensor *p = nb_test_param(NB_SHAPE(2, 3, 4), 1.f);
    nb_fill(nb_empty(NB_SHAPE(4096)), 5.f);
    nb_arena_reset();
    nb_tensor *z = nb_zeros_like(p), *e = nb_empty_like(p);
    CHECK(nb_same_shape(e, p) && nb_same_shape(z, p) && e->size == 24 && z->size == 24);
    CHECK(e->device == p->device && z->device == p->device);
    /* arena tensors of their own: no gradient, no graph, not the input's data */
    CHECK(!e->persistent && !z->persistent && !e->requires_grad && !z->requires_grad && !z->node);
    CHECK(e->data != p->data && z->data != p->data && e->data != z->data);
    for (int64_t i = 0; i < z->size; i++) CHECK(z->data[i] == 0.f);
    /* a scalar and an empty tensor keep their shapes */
    CHECK(nb_zeros_like(nb_scalar(3.f))->ndim == 0 && nb_item(nb_zeros_like(nb_scalar(3.f))) == 0.f);
    nb_tensor *empty = nb_zeros_like(nb_zeros(NB_SHAPE(0, 5)));
    CHECK(empty->ndim == 2 && empty->shape[1] == 5 && empty->size == 0);
    nb_tensor_free(p);
}

TEST(test_api_shape_str_formats_and_truncates) {
    char buf[64];
    CHECK(!strcmp(nb_shape_str(nb_empty(NB_SHAPE(2, 3, 4)), buf, sizeof buf), "[2, 3, 4]"));
    CHECK(!strcmp(nb_shape_str(nb_empty(NB_SHAPE(5)), buf, sizeof buf), "[5]"));
    CHECK(!strcmp(nb_shape_str(nb_scalar(1.f), buf, sizeof buf), "[]"));
    CHECK(nb_shape_str(nb_scalar(1.f), buf, sizeof buf) == buf);
    /* a short buffer: a terminated prefix, never an overrun */
    char small[8];
    memset(small, 'x', sizeof small);
    nb_shape_str(nb_empty(NB_SHAPE(123, 456, 789)), small, 5);
    CHECK_MSG(!strcmp(small, "[123") && small[5] == 'x', "%.8s", small);
}

static void print_tensor(const void *t, FILE *f) { nb_print(t, f); }

TEST(test_api_print_shows_shape_and_first_values) {
    char *s = print_to_string(print_tensor, nb_from_data(NB_SHAPE(2, 3), (float[]){1, -2.5f, 3, 0, 1e-7f, 6}));
    CHECK_MSG(s && !strcmp(s, "tensor[2, 3] {1, -2.5, 3, 0, 1e-07, 6}\n"), "%s", s);
    free(s);
    /* 16 values at most, then an ellipsis */
    nb_tensor *big = nb_empty(NB_SHAPE(20));
    for (int i = 0; i < 20; i++) big->data[i] = (float)i;
    s = print_to_string(print_tensor, big);
    CHECK_MSG(s && !strcmp(s, "tensor[20] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, ...}\n"), "%s", s);
    free(s);
    s = print_to_string(print_tensor, nb_zeros(NB_SHAPE(0, 3)));
    CHECK_MSG(s && !strcmp(s, "tensor[0, 3] {}\n"), "%s", s);
    free(s);
    s = print_to_string(print_tensor, nb_scalar(NAN));
    CHECK_MSG(s && !strcmp(s, "tensor[] {nan}\n"), "%s", s);
    free(s);
}

TEST(test_api_grad_enabled_follows_set_grad_enabled) {
    CHECK(nb_grad_enabled()); /* on by default */
    nb_tensor *p = nb_test_param(NB_SHAPE(3), 1.f);
    CHECK(nb_mul_scalar(p, 2.f)->requires_grad);
    CHECK(nb_set_grad_enabled(false) == true);
    CHECK(!nb_grad_enabled());
    nb_tensor *y = nb_mul_scalar(p, 2.f);
    CHECK(!y->requires_grad && !y->node); /* nothing recorded */
    CHECK(nb_set_grad_enabled(false) == false); /* the previous setting, again off */
    CHECK(nb_set_grad_enabled(true) == false);
    CHECK(nb_grad_enabled());
    nb_tensor_free(p);
}

/* --- nb_sign ---------------------------------------------------------------- */

static nb_tensor *sign_f(nb_tensor **in, void *ctx) { return nb_sign(in[0]); }

TEST(test_api_sign_values_and_zero_gradient) {
    float x[] = {-3.f, -0.f, 0.f, 2.f, NAN, -INFINITY, INFINITY, 1e-30f, -1e-38f};
    /* -1, 0 or 1, and NaN for a NaN (torch.sign, np.sign), so that |x|'s
     * gradient at a NaN is NaN as PyTorch's is, not a 0 that hides it */
    float want[] = {-1, 0, 0, 1, NAN, -1, 1, 1, -1};
    nb_tensor *s = nb_sign(nb_from_data(NB_SHAPE(9), x));
    CHECK(s->ndim == 1 && s->size == 9);
    for (int i = 0; i < 9; i++)
        CHECK_MSG(s->data[i] == want[i] || (isnan(want[i]) && isnan(s->data[i])), "sign(%g) = %g, expected %g", x[i],
                  s->data[i], want[i]);
    /* |x|'s gradient at a NaN is NaN (it was 0) */
    nb_tensor *q = nb_test_param(NB_SHAPE(3), 1.f);
    q->data[1] = NAN;
    nb_backward(nb_sum_all(nb_abs(q)));
    CHECK(isnan(q->grad->data[1]) && !isnan(q->grad->data[0]) && !isnan(q->grad->data[2]));
    nb_arena_reset(); /* the tape that records q goes before q does */
    nb_tensor_free(q);
    /* not differentiable: nothing recorded, and a loss through it gets only
     * the other terms' gradient (here d/dx sum(x^2) = 2x) */
    nb_tensor *p = nb_test_param(NB_SHAPE(6), 1.f);
    nb_tensor *sp = nb_sign(p);
    CHECK(!sp->requires_grad && !sp->node);
    nb_backward(nb_add(nb_sum_all(nb_square(p)), nb_sum_all(nb_mul(sp, p))));
    /* sum(sign(p) * p) = sum |p| contributes sign(p) through the product's
     * other factor only: the gradient is 2p + sign(p) */
    for (int i = 0; i < 6; i++) {
        float sg = (float)((p->data[i] > 0) - (p->data[i] < 0));
        CHECK_NEAR(p->grad->data[i], 2 * p->data[i] + sg, 1e-6);
    }
    char why[256];
    if (gpu_ready(why, sizeof why)) { /* the GPU's kernel gives the same values */
        nb_tensor *in[] = {nb_tensor_from(NB_SHAPE(9), x)};
        nb_tensor *g = nb_test_to_host(sign_f(nb_test_moved(in, 1, NB_CUDA), NULL));
        for (int i = 0; i < 9; i++)
            CHECK_MSG(g->data[i] == want[i] || (isnan(want[i]) && isnan(g->data[i])), "GPU sign(%g) = %g", x[i],
                      g->data[i]);
        nb_tensor_free(g);
        nb_test_free_all(in, 1);
    }
    nb_tensor_free(p);
}

/* --- mu-law arrays ---------------------------------------------------------- */

/* eq. 31 and the quantization to 256 levels, in double, from the header's
 * words: y = sign(x) ln(1 + 255 |x|) / ln 256 (|x| clipped to 1), level =
 * round((y + 1) / 2 * 255); decode: the centre of level q, expanded. */
static int mulaw_level(double x) {
    if (isnan(x)) x = 0;
    double a = fmin(fabs(x), 1), y = copysign(log1p(255 * a) / log(256), x);
    return (int)fmin(255, fmax(0, floor((y + 1) / 2 * 255 + 0.5)));
}
static double mulaw_centre(int q) {
    q = q < 0 ? 0 : q > 255 ? 255 : q;
    double y = 2.0 * q / 255 - 1;
    return copysign((pow(256, fabs(y)) - 1) / 255, y);
}

TEST(test_api_mulaw_arrays_match_the_scalars_and_the_formula) {
    enum { N = 64 };
    float x[N];
    int32_t q[N];
    /* the documented points, beyond the range, a NaN, and a spread between */
    float fixed[] = {0.f, 1.f, -1.f, 2.f, -7.f, NAN, 1e-4f, -1e-4f, 0.5f, -0.25f};
    memcpy(x, fixed, sizeof fixed);
    for (int i = 10; i < N; i++) x[i] = (float)(2 * nb_rng_uniform(nb_test_rng()) - 1);
    nb_mulaw_encode_array(x, N, q);
    CHECK(q[0] == 128 && q[1] == 255 && q[2] == 0 && q[3] == 255 && q[4] == 0 && q[5] == 128);
    for (int i = 0; i < N; i++) {
        CHECK_MSG(q[i] == nb_mulaw_encode(x[i]), "x %g: array %d, scalar %d", x[i], q[i], nb_mulaw_encode(x[i]));
        CHECK_MSG(q[i] == mulaw_level(x[i]), "x %g: level %d, expected %d", x[i], q[i], mulaw_level(x[i]));
    }
    /* decode: every level (and levels out of range, clamped) */
    int32_t lv[260];
    float back[260];
    for (int i = 0; i < 258; i++) lv[i] = i - 1; /* -1 .. 256 */
    lv[258] = INT32_MIN;
    lv[259] = INT32_MAX;
    nb_mulaw_decode_array(lv, 260, back);
    for (int i = 0; i < 260; i++) {
        CHECK_MSG(back[i] == nb_mulaw_decode(lv[i]), "level %d", lv[i]);
        CHECK_NEAR(back[i], mulaw_centre(lv[i]), 1e-6);
    }
    CHECK(back[0] == -1.f && back[1] == -1.f && back[256] == 1.f && back[257] == 1.f);
    /* each level's centre encodes to that level again */
    int32_t again[260];
    nb_mulaw_encode_array(back, 260, again);
    for (int i = 1; i < 257; i++) CHECK_MSG(again[i] == lv[i], "level %d came back as %d", lv[i], again[i]);
    nb_mulaw_encode_array(x, 0, NULL); /* n = 0 touches nothing */
    nb_mulaw_decode_array(NULL, 0, NULL);
}

/* --- moving parameters: nb_params_to and the models' _to -------------------- */

static void params_to_cuda(void *ctx) {
    nb_param *p = ctx;
    nb_params_to(p, 2, NB_CUDA);
}

TEST(test_api_params_to_moves_values_and_gradients) {
    nb_tensor *a = nb_tensor_from(NB_SHAPE(2, 2), (float[]){1, 2, 3, 4}), *b = nb_tensor_from(NB_SHAPE(3), (float[]){5, 6, 7});
    nb_requires_grad(a, true);
    nb_fill(a->grad, 0.5f);
    nb_param p[2] = {{a, true}, {b, false}};
    float *da = a->data;
    nb_params_to(p, 2, NB_CPU); /* already there: nothing moves */
    CHECK(a->data == da && a->device == NB_CPU && b->device == NB_CPU);
    nb_params_to(p, 0, NB_CUDA); /* no parameters: nothing to do */
    CHECK(a->device == NB_CPU);
    char why[256];
    if (!gpu_ready(why, sizeof why)) {
        nb_test_expect_fatal("params_to without a GPU", params_to_cuda, p, (const char *[]){"tensor_move", why, NULL});
    } else {
        nb_params_to(p, 2, NB_CUDA);
        CHECK(a->device == NB_CUDA && b->device == NB_CUDA && a->grad->device == NB_CUDA);
        nb_params_to(p, 2, NB_CPU);
        CHECK(a->device == NB_CPU && a->grad->device == NB_CPU);
        CHECK(a->data[3] == 4 && b->data[2] == 7 && a->grad->data[0] == 0.5f);
    }
    nb_tensor_free(a);
    nb_tensor_free(b);
}

static nb_net *small_cnn(void) {
    nb_net *net = nb_net_parse(nb_test_small_cnn, "small.cfg");
    if (net && nb_net_build(net, 0, NULL, nb_test_rng())) {
        nb_net_free(net);
        return NULL;
    }
    return net;
}

static void net_to_cuda(void *ctx) { nb_net_to(ctx, NB_CUDA); }

TEST(test_api_net_device_follows_net_to) {
    nb_net *net = small_cnn();
    CHECK_MSG(net, "%s", nb_errmsg());
    if (!net) return;
    CHECK(nb_net_device(net) == NB_CPU);
    nb_net_to(net, NB_CPU);
    CHECK(nb_net_device(net) == NB_CPU);
    char why[256];
    if (!gpu_ready(why, sizeof why)) {
        nb_test_expect_fatal("net_to without a GPU", net_to_cuda, net, (const char *[]){"tensor_move", why, NULL});
        CHECK(nb_net_device(net) == NB_CPU);
    } else {
        nb_net_to(net, NB_CUDA);
        CHECK(nb_net_device(net) == NB_CUDA);
        nb_net_to(net, NB_CPU);
        CHECK(nb_net_device(net) == NB_CPU);
    }
    nb_net_free(net);
    /* a network without parameters lives on the CPU */
    nb_net *flat = nb_net_parse("[net]\ninput = 4\n[relu]\n", "flat.cfg");
    CHECK_MSG(flat && nb_net_build(flat, 0, NULL, nb_test_rng()) == 0, "%s", nb_errmsg());
    if (flat) CHECK(nb_net_device(flat) == NB_CPU);
    nb_net_free(flat);
}

static void style_to_cuda(void *ctx) { nb_style_net_to(ctx, NB_CUDA); }

TEST(test_api_style_net_device_follows_style_net_to) {
    nb_style_net *s = nb_style_net_random(2, 3, 3, 5);
    CHECK_MSG(s, "%s", nb_errmsg());
    if (!s) return;
    CHECK(nb_style_net_device(s) == NB_CPU);
    nb_style_net_to(s, NB_CPU);
    CHECK(nb_style_net_device(s) == NB_CPU);
    char why[256];
    if (!gpu_ready(why, sizeof why)) {
        nb_test_expect_fatal("style_net_to without a GPU", style_to_cuda, s, (const char *[]){"tensor_move", why, NULL});
    } else {
        /* the features of an image are the same on either device */
        nb_tensor *x = nb_test_param(NB_SHAPE(1, 3, 16, 16), 0.3f);
        int want[] = {1};
        nb_tensor *fc, *fg;
        nb_style_net_forward(s, x, want, 1, &fc);
        nb_tensor *hc = nb_tensor_clone(fc);
        nb_style_net_to(s, NB_CUDA);
        CHECK(nb_style_net_device(s) == NB_CUDA);
        nb_style_net_forward(s, nb_to(x, NB_CUDA), want, 1, &fg);
        nb_tensor *hg = nb_test_to_host(fg);
        CHECK(nb_test_maxrel(hg->data, hc->data, hc->size) < 1e-4);
        nb_style_net_to(s, NB_CPU);
        CHECK(nb_style_net_device(s) == NB_CPU);
        nb_tensor_free(hc);
        nb_tensor_free(hg);
        nb_tensor_free(x);
    }
    nb_style_net_free(s);
}

/* Every parameter's values, in order (malloc'd). */
static float *params_host(const nb_param *p, int np) {
    int64_t n = 0;
    for (int i = 0; i < np; i++) n += p[i].t->size;
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1)), *w = v;
    for (int i = 0; i < np; i++) {
        nb_tensor_read(p[i].t, w);
        w += p[i].t->size;
    }
    return v;
}

static void charrnn_to_cuda(void *ctx) { nb_charrnn_to(ctx, NB_CUDA); }
static void dualenc_to_cuda(void *ctx) { nb_dualenc_to(ctx, NB_CUDA); }

/* The parameters of a model after model_to: all on d; back on the CPU, the
 * values they had. */
static void check_model_to(const char *what, void (*to)(void *, nb_device), void (*to_cuda)(void *), void *m,
                           const nb_param *p, int np) {
    float *before = params_host(p, np);
    int64_t n = 0;
    for (int i = 0; i < np; i++) n += p[i].t->size;
    to(m, NB_CPU);
    for (int i = 0; i < np; i++) CHECK_MSG(p[i].t->device == NB_CPU, "%s: parameter %d", what, i);
    char why[256];
    if (!gpu_ready(why, sizeof why)) {
        nb_test_expect_fatal(what, to_cuda, m, (const char *[]){"tensor_move", why, NULL});
    } else {
        to(m, NB_CUDA);
        for (int i = 0; i < np; i++) CHECK_MSG(p[i].t->device == NB_CUDA, "%s: parameter %d stayed", what, i);
        to(m, NB_CPU);
    }
    float *after = params_host(p, np);
    CHECK_MSG(!memcmp(before, after, sizeof(float) * (size_t)n), "%s: values changed", what);
    free(before);
    free(after);
}
static void charrnn_to(void *m, nb_device d) { nb_charrnn_to(m, d); }
static void dualenc_to(void *m, nb_device d) { nb_dualenc_to(m, d); }

TEST(test_api_charrnn_to_and_dualenc_to_move_every_parameter) {
    nb_charrnn *c = nb_charrnn_new(NB_CELL_GRU, (int32_t[]){'a', 'b', 'c', 'z'}, 4, 5, 2, nb_test_rng());
    CHECK_MSG(c, "%s", nb_errmsg());
    if (c) {
        CHECK(c->np == 4 * 2 + 2); /* two layers of four, and fc */
        check_model_to("charrnn_to", charrnn_to, charrnn_to_cuda, c, c->params, c->np);
    }
    nb_charrnn_free(c);
    nb_chat_vocab *v = nb_chat_vocab_from_words((char *[]){"<unk>", "hi", "there"}, 3);
    CHECK_MSG(v, "%s", nb_errmsg());
    nb_dualenc *m = v ? nb_dualenc_new(v, 4, 3, nb_test_rng()) : NULL;
    CHECK_MSG(m, "%s", nb_errmsg());
    if (m) check_model_to("dualenc_to", dualenc_to, dualenc_to_cuda, m, m->params, m->np);
    nb_dualenc_free(m);
}

/* --- the dual encoder's encoding ----------------------------------------------- */

/* Sequences of lengths 2, 4, 1 (the packed op sorts them by falling length
 * and must put each state back in its row) against each sequence alone
 * through nb_rnn_forward: the embedding rows of its ids, time-major. */
TEST(test_api_dualenc_encode_is_each_sequences_last_lstm_state) {
    nb_chat_vocab *v = nb_chat_vocab_from_words((char *[]){"<unk>", "a", "b", "c", "d"}, 5);
    nb_dualenc *m = v ? nb_dualenc_new(v, 3, 4, nb_test_rng()) : NULL;
    CHECK_MSG(m, "%s", nb_errmsg());
    if (!m) return;
    int32_t ids[] = {1, 2, 4, 3, 0, 2, 1};
    int64_t off[] = {0, 2, 6, 7};
    nb_tensor *h = nb_dualenc_encode(m, ids, off, 3);
    CHECK(h->ndim == 2 && h->shape[0] == 3 && h->shape[1] == 4);
    for (int i = 0; i < 3; i++) {
        int64_t T = off[i + 1] - off[i];
        nb_tensor *x = nb_empty(NB_SHAPE(T, 1, 3));
        for (int64_t t = 0; t < T; t++) memcpy(x->data + t * 3, m->emb->data + ids[off[i] + t] * 3, 3 * sizeof(float));
        nb_rnn_state fin;
        nb_rnn_forward(m->rnn, x, NULL, &fin);
        CHECK(nb_test_maxrel(h->data + i * 4, fin.h->data, 4) < 1e-5);
    }
    /* on the graph: the gradient reaches the embedding rows used, no other */
    nb_backward(nb_sum_all(h));
    bool used[5] = {false};
    for (int k = 0; k < 7; k++) used[ids[k]] = true;
    for (int w = 0; w < 5; w++) {
        double g = 0;
        for (int e = 0; e < 3; e++) g += fabs(m->emb->grad->data[w * 3 + e]);
        CHECK_MSG(used[w] ? g > 0 : g == 0, "word %d: |grad| %g", w, g);
    }
    nb_dualenc_free(m);
}

/* --- networks and data sets ----------------------------------------------------- */

TEST(test_api_net_input_shape_before_and_after_build) {
    int64_t shape[4] = {0};
    nb_net *net = nb_net_parse(nb_test_small_cnn, "small.cfg");
    CHECK_MSG(net, "%s", nb_errmsg());
    if (!net) return;
    /* from the [net] section before building */
    CHECK(nb_net_input_shape(net, shape) == 3 && shape[0] == 2 && shape[1] == 8 && shape[2] == 8);
    CHECK(nb_net_build(net, 0, NULL, nb_test_rng()) == 0);
    memset(shape, 0, sizeof shape);
    CHECK(nb_net_input_shape(net, shape) == 3 && shape[0] == 2 && shape[1] == 8 && shape[2] == 8);
    nb_net_free(net);
    /* without an input line: the shape given to nb_net_build */
    net = nb_net_parse("[net]\n[dense]\nout = 2\n", "d.cfg");
    CHECK_MSG(net, "%s", nb_errmsg());
    if (!net) return;
    CHECK(nb_net_build(net, 1, (int64_t[]){7}, nb_test_rng()) == 0);
    CHECK(nb_net_input_shape(net, shape) == 1 && shape[0] == 7);
    CHECK(nb_net_outputs(net) == 2);
    nb_net_free(net);
}

static void net_summary(const void *net, FILE *f) { nb_net_summary(net, f); }

TEST(test_api_net_summary_lists_layers_shapes_and_counts) {
    nb_net *net = small_cnn();
    CHECK_MSG(net, "%s", nb_errmsg());
    if (!net) return;
    char *s = print_to_string(net_summary, net);
    CHECK(s != NULL);
    if (!s) return;
    /* counted by hand: conv 4 x 2 x 3 x 3 + 4 = 76 (padding keeps 8 x 8);
     * the 2 x 2 pool leaves 4 x 4 x 4 = 64 values, pool and flatten have
     * none; dense 6 x 64 + 6 = 390; dense 3 x 6 + 3 = 21 */
    int64_t conv = 4 * 2 * 9 + 4, d1 = 6 * (4 * 4 * 4) + 6, d2 = 3 * 6 + 3;
    char want[64];
    snprintf(want, sizeof want, "total parameters: %lld\n", (long long)(conv + d1 + d2));
    CHECK_MSG(strstr(s, want) != NULL, "%s", s);
    /* one line per layer, in order, with its output shape and its count; an
     * `activation =` is a layer of its own */
    const char *lines[][3] = {{"conv2d", "4x8x8", "76"}, {"relu", "4x8x8", "0"}, {"maxpool", "4x4x4", "0"},
                              {"flatten", "64", "0"},    {"dense", "6", "390"},  {"tanh", "6", "0"},
                              {"dense", "3", "21"}};
    CHECK(d1 == 390);
    const char *p = strchr(s, '\n'); /* after the header */
    CHECK(!strncmp(s, "layer", 5));
    for (int i = 0; i < 7 && p; i++) {
        p++;
        const char *end = strchr(p, '\n');
        char line[128] = "";
        if (end) snprintf(line, sizeof line, "%.*s", (int)(end - p), p);
        char name[32], kind[32], out[32];
        long long np = -1;
        CHECK_MSG(sscanf(line, "%31s %31s %31s %lld", name, kind, out, &np) == 4, "line %d: '%s'", i, line);
        CHECK_MSG(!strcmp(kind, lines[i][0]) && !strcmp(out, lines[i][1]) && np == atoll(lines[i][2]),
                  "line %d: '%s', expected %s %s %s", i, line, lines[i][0], lines[i][1], lines[i][2]);
        p = end;
    }
    CHECK(p && !strncmp(p, "\ntotal parameters:", 18)); /* and nothing between */
    free(s);
    nb_net_free(net);
}

TEST(test_api_net_check_data_names_model_data_and_the_fit) {
    nb_net *net = small_cnn(); /* takes 2 x 8 x 8 = 128 values, 3 outputs */
    CHECK_MSG(net, "%s", nb_errmsg());
    if (!net) return;
    nb_dataset d = {.n = 1, .nd = 3, .shape = {2, 8, 8}, .nclass = 3};
    CHECK_MSG(nb_net_check_data(net, &d, "m.st", "d.csv") == 0, "%s", nb_errmsg());
    /* the same count in another shape fits too: values per example */
    d = (nb_dataset){.n = 1, .nd = 1, .shape = {128}, .nclass = 2};
    CHECK_MSG(nb_net_check_data(net, &d, "m.st", "d.csv") == 0, "%s", nb_errmsg());
    d.shape[0] = 100;
    CHECK(nb_net_check_data(net, &d, "m.st", "d.csv") == -1);
    CHECK_MSG(strstr(nb_errmsg(), "m.st") && strstr(nb_errmsg(), "takes 128 values per example, d.csv has 100"), "%s",
              nb_errmsg());
    d.shape[0] = 128;
    d.nclass = 4; /* labels 0..3 need 4 outputs */
    CHECK(nb_net_check_data(net, &d, "m.st", "d.csv") == -1);
    CHECK_MSG(strstr(nb_errmsg(), "has 3 outputs") && strstr(nb_errmsg(), "labels up to 3") &&
              strstr(nb_errmsg(), "needs 4 outputs"), "%s", nb_errmsg());
    nb_clear_error();
    nb_net_free(net);
}

static void batch_out_of_range(void *ctx) { nb_dataset_batch(ctx, (int64_t[]){0, 5}, 2, NULL); }

TEST(test_api_dataset_batch_gathers_rows_and_labels) {
    /* bytes: 5 examples [1, 2, 2], value v -> v / 255 */
    uint8_t u8[20];
    for (int i = 0; i < 20; i++) u8[i] = (uint8_t)(i * 13);
    int32_t y[5] = {4, 3, 2, 1, 0};
    nb_dataset d = {.n = 5, .nd = 3, .shape = {1, 2, 2}, .u8 = u8, .y = y, .nclass = 5};
    int32_t yb[3] = {-1, -1, -1};
    nb_tensor *x = nb_dataset_batch(&d, (int64_t[]){3, 0, 3}, 3, yb);
    CHECK(x->ndim == 4 && x->shape[0] == 3 && x->shape[1] == 1 && x->shape[2] == 2 && x->shape[3] == 2);
    int64_t rows[3] = {3, 0, 3};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) CHECK_NEAR(x->data[i * 4 + j], u8[rows[i] * 4 + j] / 255.0, 1e-7);
    CHECK(yb[0] == 1 && yb[1] == 4 && yb[2] == 1);
    /* floats: copied as they are; labels may be left out */
    float f32[15];
    for (int i = 0; i < 15; i++) f32[i] = (float)i - 7.5f;
    nb_dataset e = {.n = 5, .nd = 1, .shape = {3}, .f32 = f32, .y = y, .nclass = 5};
    x = nb_dataset_batch(&e, (int64_t[]){4, 1}, 2, NULL);
    CHECK(x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 3);
    CHECK(!memcmp(x->data, f32 + 12, 3 * sizeof(float)) && !memcmp(x->data + 3, f32 + 3, 3 * sizeof(float)));
    /* an empty batch */
    x = nb_dataset_batch(&e, NULL, 0, NULL);
    CHECK(x->shape[0] == 0 && x->size == 0);
    nb_test_expect_fatal("dataset_batch index", batch_out_of_range, &d,
                         (const char *[]){"dataset_batch", "index 5 out of range [0, 5)", NULL});
}

/* --- dialogue files -------------------------------------------------------------- */

TEST(test_api_dialogue_load_reads_the_file_and_names_it) {
    char *path = temp_path("dialogue");
    CHECK(path != NULL);
    if (!path) return;
    const char *text = "Context,Utterance,Label\n\"hi, you\",hello,1\nctx,resp,0\n";
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    nb_dialogue *d = nb_dialogue_load(path), *want = nb_dialogue_parse(text, strlen(text), "x");
    CHECK_MSG(d && want, "%s", nb_errmsg());
    if (d && want) {
        CHECK(d->n == 2 && d->ncand == 1 && d->n == want->n);
        for (int i = 0; i < 2; i++)
            CHECK(!strcmp(d->context[i], want->context[i]) && !strcmp(d->cand[i], want->cand[i]) &&
                  d->label[i] == want->label[i] && d->line[i] == want->line[i]);
        CHECK(!strcmp(d->context[0], "hi, you") && d->label[1] == 0);
    }
    nb_dialogue_free(d);
    nb_dialogue_free(want);
    /* errors name the file, and the line */
    f = fopen(path, "wb");
    fputs("Context,Utterance,Label\nc,r,2\n", f);
    fclose(f);
    CHECK(nb_dialogue_load(path) == NULL);
    char want_msg[96];
    snprintf(want_msg, sizeof want_msg, "%s:2:", path);
    CHECK_MSG(strstr(nb_errmsg(), want_msg), "%s", nb_errmsg());
    unlink(path);
    CHECK(nb_dialogue_load(path) == NULL);
    CHECK_MSG(strstr(nb_errmsg(), path), "%s", nb_errmsg());
    nb_clear_error();
    free(path);
}

/* --- names of environments, kernels and factor models ------------------------------ */

TEST(test_api_env_names_actions_and_observation_shapes) {
    struct {
        const char *name;
        int nactions;
        const char *actions[4];
        int nd;
        int64_t shape[3];
    } envs[] = {{"cartpole", 2, {"left", "right"}, 1, {4}},
                {"2048", 4, {"up", "right", "down", "left"}, 3, {16, 4, 4}},
                {"catch", 3, {"left", "stay", "right"}, 3, {1, 10, 5}}};
    for (int k = 0; k < 3; k++) {
        nb_env *e = nb_env_new(envs[k].name);
        CHECK_MSG(e, "%s", nb_errmsg());
        if (!e) continue;
        CHECK(!strcmp(nb_env_name(e), envs[k].name));
        CHECK(nb_env_actions(e) == envs[k].nactions);
        for (int a = 0; a < envs[k].nactions; a++)
            CHECK_MSG(!strcmp(nb_env_action_name(e, a), envs[k].actions[a]), "%s action %d: %s", envs[k].name, a,
                      nb_env_action_name(e, a));
        CHECK(!strcmp(nb_env_action_name(e, -1), "?") && !strcmp(nb_env_action_name(e, envs[k].nactions), "?"));
        int64_t shape[3] = {0};
        int nd = nb_env_obs_shape(e, shape);
        CHECK_MSG(nd == envs[k].nd, "%s: %d dims", envs[k].name, nd);
        for (int i = 0; i < envs[k].nd; i++) CHECK(shape[i] == envs[k].shape[i]);
        CHECK(nb_env_obs_size(e) == nb_shape_numel(nd, shape));
        nb_env_free(e);
    }
}

TEST(test_api_kernel_and_factor_names) {
    const char *k[] = {"linear", "polynomial", "rbf", "sigmoid"};
    for (int i = 0; i < 4; i++) {
        CHECK(!strcmp(nb_kernel_name((nb_kernel)i), k[i]));
        nb_kernel back;
        CHECK(nb_kernel_from_name(nb_kernel_name((nb_kernel)i), &back) == 0 && back == (nb_kernel)i);
    }
    CHECK(nb_kernel_name(NB_KERNEL_LINEAR)[0] == 'l' && nb_kernel_name(NB_KERNEL_RBF)[0] == 'r');
    CHECK(!strcmp(nb_kernel_name((nb_kernel)4), "?") && !strcmp(nb_kernel_name((nb_kernel)-1), "?"));
    CHECK(!strcmp(nb_factor_name(NB_FACTOR_PCA), "pca") && !strcmp(nb_factor_name(NB_FACTOR_PPCA), "ppca") &&
          !strcmp(nb_factor_name(NB_FACTOR_FA), "fa"));
    CHECK(!strcmp(nb_factor_name((nb_factor_kind)3), "?"));
}

/* A safetensors file with one tensor and the metadata nabla.model = kind
 * (none for NULL), read back. */
static nb_safetensors *model_file(const char *path, const char *kind) {
    nb_tensor *t = nb_tensor_new(NB_SHAPE(2));
    int rc = nb_st_write(path, (const char *[]){"w"}, &t, 1, (const char *[]){"nabla.model"}, &kind, kind ? 1 : 0);
    nb_tensor_free(t);
    return rc ? NULL : nb_st_read(path);
}

TEST(test_api_classic_is_model_knows_the_classical_kinds) {
    char *path = temp_path("classic");
    CHECK(path != NULL);
    if (!path) return;
    const char *yes[] = {"linreg", "logreg", "svm", "pca", "ppca", "fa", "gmm"};
    const char *no[] = {"wavenet", "net", "charrnn", "", "LINREG", "linreg "};
    for (int i = 0; i < 7; i++) {
        nb_safetensors *st = model_file(path, yes[i]);
        CHECK_MSG(st && nb_classic_is_model(st), "%s", yes[i]);
        nb_st_free(st);
    }
    for (int i = 0; i < 6; i++) {
        nb_safetensors *st = model_file(path, no[i]);
        CHECK_MSG(st && !nb_classic_is_model(st), "'%s'", no[i]);
        nb_st_free(st);
    }
    nb_safetensors *st = model_file(path, NULL);
    CHECK(st && !nb_classic_is_model(st));
    nb_st_free(st);
    CHECK(!nb_classic_is_model(NULL));
    unlink(path);
    free(path);
}

/* --- recurrent layers ------------------------------------------------------------- */

TEST(test_api_rnn_input_and_hidden_sizes_match_the_weights) {
    nb_cell cells[] = {NB_CELL_RNN, NB_CELL_LSTM, NB_CELL_GRU};
    int gates[] = {1, 4, 3};
    for (int c = 0; c < 3; c++) {
        nb_rnn *m = nb_rnn_new(cells[c], 5, 7, 2, nb_test_rng());
        CHECK_MSG(m, "%s", nb_errmsg());
        if (!m) continue;
        CHECK(nb_rnn_input_size(m) == 5 && nb_rnn_hidden_size(m) == 7 && nb_rnn_num_layers(m) == 2);
        nb_param *p;
        CHECK(nb_rnn_params(m, &p) == 8);
        /* weight_ih_l0 [G H, input], weight_ih_l1 [G H, H] */
        CHECK(p[0].t->shape[0] == gates[c] * 7 && p[0].t->shape[1] == 5);
        CHECK(p[4].t->shape[0] == gates[c] * 7 && p[4].t->shape[1] == 7);
        /* and the forward pass takes that many inputs, gives that many outputs */
        nb_tensor *h = nb_rnn_forward(m, nb_zeros(NB_SHAPE(3, 2, nb_rnn_input_size(m))), NULL, NULL);
        CHECK(h->ndim == 3 && h->shape[2] == nb_rnn_hidden_size(m));
        nb_rnn_free(m);
    }
}

/* --- wavenet settings and parameters ------------------------------------------------ */

TEST(test_api_wavenet_check_config_names_each_setting) {
    nb_wavenet_config ok = {.layers = 3, .stacks = 2, .residual = 4, .skip = 5};
    CHECK(nb_wavenet_check_config(&ok) == 0);
    nb_wavenet_config edge = {.layers = 16, .stacks = 16, .residual = 1024, .skip = 1024, .nspeakers = 4096,
                              .cond_dim = 4096, .cond_hop = 65536, .cond_channels = 4096};
    CHECK_MSG(nb_wavenet_check_config(&edge) == 0, "%s", nb_errmsg());
    /* no features: the hop is not looked at */
    nb_wavenet_config nohop = ok;
    nohop.cond_hop = -5;
    CHECK(nb_wavenet_check_config(&nohop) == 0);
    struct {
        int *field;
        int bad;
        const char *says;
    } cases[] = {{&ok.layers, 0, "layers per stack must be in [1, 16], got 0"},
                 {&ok.layers, 17, "layers per stack must be in [1, 16], got 17"},
                 {&ok.stacks, 0, "stacks must be in [1, 16], got 0"},
                 {&ok.stacks, 17, "stacks must be in [1, 16], got 17"},
                 {&ok.residual, 0, "residual channels must be in [1, 1024], got 0"},
                 {&ok.residual, 1025, "residual channels must be in [1, 1024], got 1025"},
                 {&ok.skip, 0, "skip channels must be in [1, 1024], got 0"},
                 {&ok.nspeakers, -1, "speakers must be in [0, 4096], got -1"},
                 {&ok.nspeakers, 4097, "speakers must be in [0, 4096], got 4097"},
                 {&ok.cond_dim, 4097, "feature size must be in [0, 4096], got 4097"},
                 {&ok.cond_channels, -1, "conditioning channels must be in [0, 4096], got -1"},
                 {&ok.cond_channels, 4097, "conditioning channels must be in [0, 4096], got 4097"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int keep = *cases[i].field;
        *cases[i].field = cases[i].bad;
        CHECK_MSG(nb_wavenet_check_config(&ok) == -1 && strstr(nb_errmsg(), cases[i].says), "case %zu: %s", i,
                  nb_errmsg());
        *cases[i].field = keep;
    }
    /* with features, the hop must be in range */
    ok.cond_dim = 3;
    ok.cond_hop = 0;
    CHECK_MSG(nb_wavenet_check_config(&ok) == -1 && strstr(nb_errmsg(), "samples per feature frame must be in [1, 65536], got 0"),
              "%s", nb_errmsg());
    ok.cond_hop = 4;
    CHECK(nb_wavenet_check_config(&ok) == 0);
    nb_clear_error();
}

TEST(test_api_wavenet_copy_params_takes_every_parameter_of_a_file) {
    nb_wavenet_config c = {.layers = 2, .stacks = 1, .residual = 4, .skip = 3, .nspeakers = 2};
    nb_rng r1, r2;
    nb_rng_seed(&r1, 1, 0);
    nb_rng_seed(&r2, 2, 0);
    nb_wavenet *a = nb_wavenet_new(&c, &r1), *b = nb_wavenet_new(&c, &r2);
    char *path = temp_path("wavenet");
    CHECK(a && b && path);
    if (!a || !b || !path) goto done;
    CHECK(nb_wavenet_save(a, path, NULL, NULL, 0, NULL, NULL, 0) == 0);
    nb_safetensors *st = nb_st_read(path);
    CHECK_MSG(st, "%s", nb_errmsg());
    nb_param *pa, *pb;
    const char *const *na;
    int np = nb_wavenet_params(a, &pa, &na);
    CHECK(nb_wavenet_params(b, &pb, NULL) == np && np > 0);
    /* different seeds: b differs from a before the copy, equals it after */
    bool differ = false;
    for (int i = 0; i < np; i++) differ |= memcmp(pa[i].t->data, pb[i].t->data, sizeof(float) * (size_t)pa[i].t->size) != 0;
    CHECK(differ);
    CHECK_MSG(st && nb_wavenet_copy_params(b, st, path) == 0, "%s", nb_errmsg());
    for (int i = 0; i < np; i++)
        CHECK_MSG(!memcmp(pa[i].t->data, pb[i].t->data, sizeof(float) * (size_t)pa[i].t->size), "%s differs", na[i]);
    nb_st_free(st);
    /* a model of another size: refused, naming the file */
    nb_wavenet_config wide = c;
    wide.residual = 5;
    nb_wavenet *w = nb_wavenet_new(&wide, &r1);
    st = nb_st_read(path);
    CHECK(w && st && nb_wavenet_copy_params(w, st, path) == -1);
    CHECK_MSG(strstr(nb_errmsg(), path), "%s", nb_errmsg());
    nb_st_free(st);
    nb_wavenet_free(w);
    unlink(path);
done:
    nb_clear_error();
    free(path);
    nb_wavenet_free(a);
    nb_wavenet_free(b);
}

/* --- DQN: the options kept and the TD error ------------------------------------------ */

TEST(test_api_dqn_options_and_td_error) {
    nb_dqn_opts o;
    CHECK(nb_dqn_defaults("cartpole", &o) == 0);
    o.steps = 10;
    o.buffer = 16;
    o.batch = 4;
    o.learn_start = 2;
    o.train_every = 1;
    o.target_every = 0; /* Q itself makes the targets */
    o.double_q = false;
    o.augment = false;
    o.select_every = 0;
    o.reward_log = false;
    o.reward_scale = 0.5;
    o.gamma = 0.9;
    o.lr_end = 0;
    o.seed = 3;
    nb_dqn *d = nb_dqn_new("cartpole", &o, NULL);
    CHECK_MSG(d, "%s", nb_errmsg());
    if (!d) return;
    o.batch = 99; /* the learner kept a copy */
    const nb_dqn_opts *kept = nb_dqn_options(d);
    CHECK(kept->batch == 4 && kept->buffer == 16 && kept->learn_start == 2 && kept->reward_scale == 0.5 &&
          kept->gamma == 0.9 && kept->seed == 3 && kept->steps == 10 && !kept->double_q);
    /* Q = 0 everywhere (every weight and bias zero): each target is
     * r + gamma max Q(s') = the scaled reward 0.5 (CartPole pays 1 a step),
     * and Q(s, a) = 0, so the mean |target - Q(s, a)| is exactly 0.5. */
    nb_param *p;
    int np = nb_net_params(nb_dqn_net(d), &p);
    for (int i = 0; i < np; i++) nb_fill(p[i].t, 0.f);
    CHECK(nb_dqn_td_error(d) == 0); /* before the first update */
    nb_dqn_step(d, NULL);
    CHECK(nb_dqn_updates(d) == 0 && nb_dqn_td_error(d) == 0); /* one transition < learn_start */
    nb_dqn_step(d, NULL);
    CHECK(nb_dqn_updates(d) == 1);
    CHECK_MSG(nb_dqn_td_error(d) == 0.5, "td error %g, expected 0.5", nb_dqn_td_error(d));
    /* the update moved Q off zero: the next error is another finite value */
    nb_dqn_step(d, NULL);
    CHECK(nb_dqn_updates(d) == 2 && isfinite(nb_dqn_td_error(d)) && nb_dqn_td_error(d) != 0.5);
    nb_dqn_free(d);
}
