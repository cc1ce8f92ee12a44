/* test_cuda_pool.c — pooling and the indexing ops on the GPU against the
 * CPU: max and average pooling with overlapping windows and padding, their
 * backward ops' own backward rules (a gradient's gradient), ties and NaN in
 * the max's windows, the max along one axis, scatter_rows with repeated
 * indices (gather_rows' and the embedding's gradient), step and prelu; the
 * finite-difference and Hessian-vector checks on GPU tensors; the same bits
 * from two runs. `make cuda-emu` runs them against the emulator, where any
 * host access to the GPU's memory faults. */
#include "test.h"
#include <stdlib.h>



/* A parameter whose values are all distinct and at least 8 / size apart,
 * shuffled: no window holds two values within a finite-difference step of
 * a tie, so the argmax stays put while the checks perturb x. */
static nb_tensor *spread_param(int ndim, const int64_t *shape) {
    nb_tensor *t = nb_test_param(ndim, shape, 1.f);
    int64_t n = t->size, *order = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    nb_rng_shuffle(nb_test_rng(), order, n);
    for (int64_t i = 0; i < n; i++) t->data[order[i]] = 8.f * (float)(i - n / 2) / (float)n;
    free(order);
    return t;
}

/* A parameter of few distinct values (multiples of 0.5 in [-2, 2]): most
 * windows and rows hold ties, which the first-maximum rule must break the
 * same way on both devices. */
static nb_tensor *tied_param(int ndim, const int64_t *shape) {
    nb_tensor *t = nb_test_param(ndim, shape, 1.f);
    for (int64_t i = 0; i < t->size; i++) t->data[i] = fminf(2.f, fmaxf(-2.f, roundf(2.f * t->data[i]) / 2.f));
    return t;
}

/* --- pooling ------------------------------------------------------------------ */

typedef struct { int k, s, p; bool max; } pool_ctx;

static nb_tensor *f_pool(nb_tensor **in, void *ctx) {
    const pool_ctx *c = ctx;
    return c->max ? nb_maxpool2d(in[0], c->k, c->s, c->p) : nb_avgpool2d(in[0], c->k, c->s, c->p);
}
/* Squared, for a Hessian that is not zero. */
static nb_tensor *f_pool_sq(nb_tensor **in, void *ctx) { return nb_square(f_pool(in, ctx)); }

/* Window, stride, padding: tiling windows (on an odd input: a last row and
 * column no window reaches), overlapping ones with and without padding,
 * windows farther apart than their size, and k = 1. */
static const int pcases[][3] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 0}, {4, 3, 2}, {1, 2, 0}, {3, 3, 0}};
#define NPCASES (int)(sizeof pcases / sizeof pcases[0])

static int64_t pool_len(int64_t n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

TEST(test_cuda_pool_parity) {
    if (!nb_test_gpu()) return;
    /* odd sizes; and even ones, where 2 x 2 windows take the CPU's tiled paths */
    static const int64_t shapes[][4] = {{3, 5, 11, 9}, {2, 3, 8, 6}};
    double worst = 0;
    for (int z = 0; z < 2; z++)
        for (int t = 0; t < NPCASES; t++)
            for (int max = 0; max < 2; max++) {
                if (z == 1 && t != 0) continue;
                pool_ctx c = {pcases[t][0], pcases[t][1], pcases[t][2], max};
                nb_tensor *x = nb_test_param(4, shapes[z], 1.f);
                char what[64];
                snprintf(what, sizeof what, "%s k %d s %d p %d, shape %d", max ? "maxpool" : "avgpool", c.k, c.s, c.p,
                         z);
                worst = fmax(worst, nb_test_gpu_parity(what, f_pool, &x, 1, &c, 1e-5));
                nb_tensor_free(x);
            }
    printf("     worst relative difference %.3g\n", worst);
}

/* Ties everywhere: the GPU must pick the CPU's argmax (the first maximum in
 * row-major order) or the gradients land on other elements. */
TEST(test_cuda_pool_ties_pick_the_first_maximum) {
    if (!nb_test_gpu()) return;
    double worst = 0;
    for (int t = 0; t < NPCASES; t++) {
        pool_ctx c = {pcases[t][0], pcases[t][1], pcases[t][2], true};
        nb_tensor *x = tied_param(4, (int64_t[]){2, 3, 9, 10});
        char what[48];
        snprintf(what, sizeof what, "maxpool with ties, k %d s %d p %d", c.k, c.s, c.p);
        worst = fmax(worst, nb_test_gpu_parity(what, f_pool, &x, 1, &c, 1e-6));
        nb_tensor_free(x);
    }
    printf("     worst relative difference %.3g\n", worst);
}

/* y and dx = d sum(y R) / dx of maxpool2d on device d, copied to the host. */
static void maxpool_on(nb_device d, const nb_tensor *x0, const nb_tensor *R, const pool_ctx *c, nb_tensor **y,
                       nb_tensor **dx) {
    nb_tensor *x = nb_tensor_clone(x0), *r = nb_tensor_clone(R);
    nb_requires_grad(x, true);
    nb_tensor_move(x, d);
    nb_tensor_move(r, d);
    nb_tensor *out = f_pool(&x, (void *)c), *g;
    nb_grad(nb_sum_all(nb_mul(out, r)), &x, 1, &g, false);
    *y = nb_test_to_host(out);
    *dx = nb_test_to_host(g);
    nb_arena_reset();
    nb_tensor_free(x);
    nb_tensor_free(r);
}

/* A NaN wins every window that holds it (the first NaN, if two), and gets
 * those windows' gradients; the other windows are untouched. */
TEST(test_cuda_pool_nan_wins_its_windows) {
    if (!nb_test_gpu()) return;
    for (int t = 0; t < 3; t++) {
        pool_ctx c = {pcases[t][0], pcases[t][1], pcases[t][2], true};
        int64_t N = 2, C = 2, H = 9, W = 8;
        nb_tensor *x = tied_param(4, (int64_t[]){N, C, H, W});
        for (int64_t i = 3; i < x->size; i += 23) x->data[i] = NAN;
        x->data[4] = NAN; /* two NaNs side by side */
        nb_tensor *R = nb_tensor_new(4, (int64_t[]){N, C, pool_len(H, c.k, c.s, c.p), pool_len(W, c.k, c.s, c.p)});
        nb_init_uniform(R, -1.f, 1.f, nb_test_rng());
        nb_tensor *yc, *dc, *yg, *dg;
        maxpool_on(NB_CPU, x, R, &c, &yc, &dc);
        maxpool_on(NB_CUDA, x, R, &c, &yg, &dg);
        int64_t nan_out = 0;
        for (int64_t i = 0; i < yc->size; i++) {
            nan_out += isnan(yc->data[i]);
            CHECK_MSG(isnan(yc->data[i]) ? isnan(yg->data[i]) : yg->data[i] == yc->data[i],
                      "case %d: output %lld is %g on the GPU, %g on the CPU", t, (long long)i, yg->data[i],
                      yc->data[i]);
        }
        CHECK_MSG(nan_out > 0, "case %d: no window holds a NaN", t);
        double e = nb_test_maxrel(dg->data, dc->data, dc->size);
        CHECK_MSG(e <= 1e-6, "case %d: gradients differ by %.3g", t, e);
        nb_tensor *all[] = {x, R, yc, dc, yg, dg};
        nb_test_free_all(all, 6);
    }
}

/* The gradient of sum R pool(x)^3 as a function of x, built with
 * create_graph: its gradient runs the backward of the pooling's backward op
 * (the argmax gather for the max's scatter, average pooling for the
 * average's adjoint), all on the inputs' device. Cubed so that the gradient
 * still depends on x; by products, not nb_pow. */
typedef struct { pool_ctx pc; nb_tensor *R; } grad_ctx;

static nb_tensor *f_pool_grad(nb_tensor **in, void *ctx) {
    grad_ctx *c = ctx;
    bool old = nb_set_grad_enabled(true);
    nb_tensor *y = f_pool(in, &c->pc);
    nb_tensor *L = nb_sum_all(nb_mul(nb_mul(nb_mul(y, y), y), nb_detach(nb_to(c->R, in[0]->device))));
    nb_tensor *g;
    nb_grad(L, in, 1, &g, true);
    nb_set_grad_enabled(old);
    return g;
}

TEST(test_cuda_pool_grad_of_grad_parity) {
    if (!nb_test_gpu()) return;
    double worst = 0;
    int64_t N = 2, C = 3, H = 9, W = 7;
    for (int t = 0; t < NPCASES; t++)
        for (int max = 0; max < 2; max++) {
            int k = pcases[t][0], s = pcases[t][1], p = pcases[t][2];
            int64_t OH = pool_len(H, k, s, p), OW = pool_len(W, k, s, p);
            grad_ctx c = {{k, s, p, max}, nb_tensor_new(4, (int64_t[]){N, C, OH, OW})};
            nb_init_uniform(c.R, -1.f, 1.f, nb_test_rng());
            nb_tensor *x = spread_param(4, (int64_t[]){N, C, H, W});
            char what[64];
            snprintf(what, sizeof what, "grad of %s k %d s %d p %d", max ? "maxpool" : "avgpool", k, s, p);
            worst = fmax(worst, nb_test_gpu_parity(what, f_pool_grad, &x, 1, &c, 1e-5));
            nb_tensor_free(c.R);
            nb_tensor_free(x);
        }
    printf("     worst relative difference %.3g\n", worst);
}

TEST(test_cuda_pool_gradcheck_and_hvp_on_gpu) {
    if (!nb_test_gpu()) return;
    for (int max = 0; max < 2; max++) {
        pool_ctx c = {3, 2, 1, max};
        nb_tensor *x = spread_param(4, (int64_t[]){2, 3, 9, 8});
        nb_gradcheck(max ? "GPU maxpool k 3 s 2 p 1" : "GPU avgpool k 3 s 2 p 1", f_pool, nb_test_moved(&x, 1, NB_CUDA), 1,
                     &c, 1e-3f, 3e-3f);
        nb_tensor_free(x);
        /* double backward with overlapping windows: the scatter's backward
         * is the gather, the adjoint's is average pooling */
        pool_ctx o = {3, 1, 1, max};
        x = spread_param(4, (int64_t[]){2, 2, 6, 5});
        nb_hvpcheck(max ? "GPU maxpool k 3 s 1 p 1 (Hv)" : "GPU avgpool k 3 s 1 p 1 (Hv)", f_pool_sq,
                    nb_test_moved(&x, 1, NB_CUDA), 1, &o, 1e-3f, 1e-2f);
        /* and one order up: the gather's backward is the scatter again */
        grad_ctx g = {o, nb_tensor_new(4, (int64_t[]){2, 2, 6, 5})};
        nb_init_uniform(g.R, -1.f, 1.f, nb_test_rng());
        nb_hvpcheck(max ? "GPU grad of maxpool (Hv)" : "GPU grad of avgpool (Hv)", f_pool_grad, &x, 1, &g, 1e-3f,
                    1e-2f);
        nb_tensor_free(g.R);
        nb_tensor_free(x);
    }
}

/* Overlapping windows, the same inputs twice on the GPU: the same bits, in
 * the outputs and in the gradients the scatters add up. */
TEST(test_cuda_pool_deterministic) {
    if (!nb_test_gpu()) return;
    nb_tensor *x = tied_param(4, (int64_t[]){3, 4, 13, 11});
    nb_test_moved(&x, 1, NB_CUDA);
    nb_tensor *out[2][4];
    for (int r = 0; r < 2; r++) {
        nb_arena_reset();
        nb_tensor *ym = nb_maxpool2d(x, 3, 1, 1), *ya = nb_avgpool2d(x, 3, 1, 1), *g[2];
        nb_grad(nb_sum_all(nb_square(ym)), &x, 1, &g[0], false);
        nb_grad(nb_sum_all(nb_square(ya)), &x, 1, &g[1], false);
        out[r][0] = nb_test_to_host(ym);
        out[r][1] = nb_test_to_host(ya);
        out[r][2] = nb_test_to_host(g[0]);
        out[r][3] = nb_test_to_host(g[1]);
    }
    nb_test_same_runs("pooling", out[0], out[1], 4);
    nb_arena_reset();
    nb_tensor_free(x);
}

/* --- max along one axis ------------------------------------------------------- */

typedef struct { int axis; bool keepdim; } max_ctx;

static nb_tensor *f_max(nb_tensor **in, void *ctx) {
    const max_ctx *c = ctx;
    return nb_max(in[0], c->axis, c->keepdim);
}

TEST(test_cuda_index_max_parity) {
    if (!nb_test_gpu()) return;
    double worst = 0;
    static const max_ctx axes[] = {{0, false}, {1, true}, {2, false}, {-1, true}};
    for (int tied = 0; tied < 2; tied++)
        for (int a = 0; a < 4; a++) {
            int64_t shape[3] = {5, 7, 9};
            nb_tensor *x = tied ? tied_param(3, shape) : nb_test_param(3, shape, 1.f);
            char what[48];
            snprintf(what, sizeof what, "max over axis %d%s", axes[a].axis, tied ? " with ties" : "");
            worst = fmax(worst, nb_test_gpu_parity(what, f_max, &x, 1, (void *)&axes[a], 1e-6));
            nb_tensor_free(x);
        }
    /* long rows: a block per row on the GPU; and a long axis with columns */
    static const int64_t longs[][2] = {{3, 1000}, {1000, 3}, {2, 65}};
    static const max_ctx along[] = {{1, false}, {0, false}, {1, false}};
    for (int l = 0; l < 3; l++)
        for (int tied = 0; tied < 2; tied++) {
            nb_tensor *x = tied ? tied_param(2, longs[l]) : nb_test_param(2, longs[l], 1.f);
            char what[48];
            snprintf(what, sizeof what, "max of [%lld, %lld]%s", (long long)longs[l][0], (long long)longs[l][1],
                     tied ? " with ties" : "");
            worst = fmax(worst, nb_test_gpu_parity(what, f_max, &x, 1, (void *)&along[l], 1e-6));
            nb_tensor_free(x);
        }
    printf("     worst relative difference %.3g\n", worst);
}

/* The first NaN of a row wins, on both kernels (a thread per output, a
 * block per row), and its gradient goes there. */
TEST(test_cuda_index_max_nan) {
    if (!nb_test_gpu()) return;
    static const int64_t shapes[][2] = {{4, 9}, {4, 700}};
    for (int z = 0; z < 2; z++) {
        nb_tensor *x = tied_param(2, shapes[z]);
        int64_t cols = shapes[z][1];
        x->data[5] = NAN; /* row 0: one NaN */
        x->data[cols + 2] = x->data[cols + cols - 1] = NAN; /* row 1: the first of two */
        nb_tensor *in[2], *y[2], *g[2];
        for (int d = 0; d < 2; d++) {
            in[d] = nb_tensor_clone(x);
            nb_requires_grad(in[d], true);
            nb_tensor_move(in[d], d ? NB_CUDA : NB_CPU);
            nb_tensor *m = nb_max(in[d], 1, false), *gd;
            nb_grad(nb_sum_all(nb_mul_scalar(m, 3.f)), &in[d], 1, &gd, false);
            y[d] = nb_test_to_host(m);
            g[d] = nb_test_to_host(gd);
            nb_arena_reset();
        }
        CHECK(isnan(y[1]->data[0]) && isnan(y[1]->data[1]));
        for (int64_t r = 2; r < 4; r++) CHECK(y[1]->data[r] == y[0]->data[r]);
        CHECK(g[1]->data[5] == 3.f && g[1]->data[cols + 2] == 3.f && g[1]->data[cols + cols - 1] == 0.f);
        CHECK(!memcmp(g[0]->data, g[1]->data, sizeof(float) * (size_t)x->size));
        nb_tensor *all[] = {x, in[0], in[1], y[0], y[1], g[0], g[1]};
        nb_test_free_all(all, 7);
    }
}

/* d/dx of sum R max(x)^3 with create_graph: its gradient runs put_at's
 * backward (pick_at), on the GPU as on the CPU. */
typedef struct { max_ctx mc; nb_tensor *R; } max_grad_ctx;

static nb_tensor *f_max_grad(nb_tensor **in, void *ctx) {
    max_grad_ctx *c = ctx;
    bool old = nb_set_grad_enabled(true);
    nb_tensor *y = f_max(in, &c->mc);
    nb_tensor *L = nb_sum_all(nb_mul(nb_mul(nb_mul(y, y), y), nb_detach(nb_to(c->R, in[0]->device))));
    nb_tensor *g;
    nb_grad(L, in, 1, &g, true);
    nb_set_grad_enabled(old);
    return g;
}

TEST(test_cuda_index_max_grad_of_grad_and_hvp) {
    if (!nb_test_gpu()) return;
    max_grad_ctx c = {{1, false}, nb_tensor_new(2, (int64_t[]){4, 5})};
    nb_init_uniform(c.R, -1.f, 1.f, nb_test_rng());
    nb_tensor *x = spread_param(3, (int64_t[]){4, 6, 5});
    double e = nb_test_gpu_parity("grad of max", f_max_grad, &x, 1, &c, 1e-5);
    printf("     worst relative difference %.3g\n", e);
    nb_test_moved(&x, 1, NB_CUDA);
    nb_gradcheck("GPU max over axis 1", f_max, &x, 1, &c.mc, 1e-3f, 3e-3f);
    nb_hvpcheck("GPU grad of max (Hv)", f_max_grad, &x, 1, &c, 1e-3f, 1e-2f);
    nb_tensor_free(c.R);
    nb_tensor_free(x);
}

/* --- scatter_rows, gather_rows' gradient, embedding -------------------------- */

/* Repeated indices (row 4 three times, 1 twice, 6 twice), rows no index
 * names (0, 3, 7), in no order. */
static const int32_t ridx[] = {4, 1, 6, 4, 2, 5, 1, 4, 6};
#define NRIDX 9
#define NROWS 8

typedef struct { int op; nb_tensor *R; } rows_ctx;

static nb_tensor *f_rows(nb_tensor **in, void *ctx) {
    const rows_ctx *c = ctx;
    switch (c->op) {
    case 0: return nb_scatter_rows(in[0], ridx, NROWS);   /* in[0]: [NRIDX, ...] */
    case 1: return nb_gather_rows(in[0], ridx, NRIDX);    /* in[0]: [NROWS, ...]; its gradient is a scatter */
    case 2: return nb_embedding(in[0], ridx, NRIDX);      /* in[0]: [NROWS, D] */
    default: {
        /* d/dx of sum R gather(x)^2 with create_graph: a scatter whose
         * gradient is a gather, and the other way round */
        bool old = nb_set_grad_enabled(true);
        nb_tensor *y = nb_gather_rows(in[0], ridx, NRIDX), *g;
        nb_grad(nb_sum_all(nb_mul(nb_mul(y, y), nb_detach(nb_to(c->R, in[0]->device)))), in, 1, &g, true);
        nb_set_grad_enabled(old);
        return g;
    }
    }
}

TEST(test_cuda_index_scatter_rows_and_embedding) {
    if (!nb_test_gpu()) return;
    double worst = 0;
    rows_ctx c = {0, nb_tensor_new(3, (int64_t[]){NRIDX, 5, 3})};
    nb_init_uniform(c.R, -1.f, 1.f, nb_test_rng());
    for (c.op = 0; c.op < 4; c.op++) {
        nb_tensor *x = c.op == 0   ? nb_test_param(3, (int64_t[]){NRIDX, 5, 3}, 1.f)
                       : c.op == 2 ? nb_test_param(2, (int64_t[]){NROWS, 13}, 1.f)
                                   : nb_test_param(3, (int64_t[]){NROWS, 5, 3}, 1.f);
        char what[32];
        snprintf(what, sizeof what, "rows op %d", c.op);
        worst = fmax(worst, nb_test_gpu_parity(what, f_rows, &x, 1, &c, 1e-6));
        nb_tensor_free(x);
    }
    /* rows no index names are zeros, a repeated index adds in order */
    nb_tensor *x = nb_test_param(2, (int64_t[]){NRIDX, 2}, 1.f), *h = nb_tensor_clone(x);
    nb_tensor_move(x, NB_CUDA);
    nb_tensor *s = nb_test_to_host(nb_scatter_rows(x, ridx, NROWS));
    CHECK(s->data[0] == 0.f && s->data[1] == 0.f && s->data[6] == 0.f && s->data[14] == 0.f);
    CHECK(s->data[8] == (h->data[0] + h->data[6]) + h->data[14]); /* row 4 from entries 0, 3, 7 */
    nb_arena_reset();
    nb_tensor *all[] = {x, h, s, c.R};
    nb_test_free_all(all, 4);
    printf("     worst relative difference %.3g\n", worst);
}

/* --- step and prelu ------------------------------------------------------------- */

static nb_tensor *f_step(nb_tensor **in, void *ctx) { return nb_step(in[0], -0.5f, 2.f); }

static nb_tensor *f_prelu(nb_tensor **in, void *ctx) { return nb_prelu(in[0], in[1]); }

TEST(test_cuda_index_step_and_prelu) {
    if (!nb_test_gpu()) return;
    nb_tensor *x = tied_param(3, (int64_t[]){3, 7, 5}); /* zeros included: step(0) is lo */
    x->data[4] = NAN;
    nb_requires_grad(x, false);
    nb_tensor *xg = nb_tensor_clone(x);
    nb_tensor_move(xg, NB_CUDA);
    nb_tensor *sc = nb_step(x, -0.5f, 2.f), *sg = nb_test_to_host(f_step(&xg, NULL));
    CHECK(!memcmp(sc->data, sg->data, sizeof(float) * (size_t)x->size));
    CHECK(sg->data[4] == -0.5f);
    nb_arena_reset();
    nb_tensor *tmp[] = {x, xg, sg};
    nb_test_free_all(tmp, 3);
    double worst = 0;
    /* one slope per channel of [N, C, H, W] and [N, C]; one shared slope */
    static const int64_t xs[][4] = {{3, 5, 4, 7}, {6, 5, 0, 0}, {3, 5, 4, 7}};
    static const int nd[] = {4, 2, 4};
    for (int t = 0; t < 3; t++) {
        nb_tensor *in[2] = {nb_test_param(nd[t], xs[t], 1.f), nb_test_param(1, (int64_t[]){t == 2 ? 1 : 5}, 0.3f)};
        char what[32];
        snprintf(what, sizeof what, "prelu case %d", t);
        worst = fmax(worst, nb_test_gpu_parity(what, f_prelu, in, 2, NULL, 1e-6));
        if (t == 0) /* d^2 / dx da is not zero: the Hessian sees prelu's backward */
            nb_hvpcheck("GPU prelu (Hv)", f_prelu, nb_test_moved(in, 2, NB_CUDA), 2, NULL, 1e-3f, 1e-2f);
        nb_test_free_all(in, 2);
    }
    printf("     worst relative difference %.3g\n", worst);
}
