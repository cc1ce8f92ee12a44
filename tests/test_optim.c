/* test_optim.c — optimizers against their formulas evaluated in double, weight
 * decay as an L2 penalty (eq. 7.1) and its effect on a quadratic (eq. 7.13),
 * L-BFGS, clipping, schedules, and bit-exact resume from saved state. */
#include "test.h"
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- helpers ------------------------------------------------------------ */

static nb_tensor *param_from(int n, const double *v) {
    nb_tensor *t = nb_tensor_new(1, (int64_t[]){n});
    for (int i = 0; i < n; i++)
        t->data[i] = (float)v[i];
    nb_requires_grad(t, true);
    return t;
}

/* Sets .grad from n doubles (n must be the tensor's size). */
static void set_grad(nb_tensor *t, const double *g, int64_t n) {
    if (n != t->size) nb_fatal("set_grad", "%lld values for %lld entries", (long long)n, (long long)t->size);
    for (int64_t i = 0; i < n; i++)
        t->grad->data[i] = (float)g[i];
}

static void check_close(const nb_tensor *t, const double *want, double tol, const char *what, int step) {
    for (int64_t i = 0; i < t->size; i++)
        CHECK_MSG(fabs(t->data[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])),
                  "%s step %d [%lld]: %.9g, expected %.9g", what, step, (long long)i, (double)t->data[i], want[i]);
}

/* Gradient tables for 3 steps: a weight (decayed) with 3 entries and a bias
 * (not decayed) with 2. Signs change so momentum and Adam's m/v matter. */
static const double W0[3] = {0.5, -1.25, 2.0}, B0[2] = {0.3, -0.7};
static const double GW[3][3] = {{0.1, -0.4, 1.5}, {-0.3, 0.2, 0.9}, {0.05, 0.6, -2.0}};
static const double GB[3][2] = {{1.0, -0.5}, {0.25, 0.75}, {-1.5, 0.1}};

/* --- SGD ------------------------------------------------------------------ */

/* PyTorch SGD in double: d = g + wd w; v = d (first step) or mu v + d;
 * w -= lr (nesterov ? d + mu v : v) (or lr d without momentum). */
static void ref_sgd(double *w, double *v, const double *g, int n, int step, double lr, double wd, double mu,
                    bool nest) {
    for (int i = 0; i < n; i++) {
        double d = g[i] + wd * w[i];
        if (mu == 0) {
            w[i] -= lr * d;
            continue;
        }
        v[i] = step == 1 ? d : mu * v[i] + d;
        w[i] -= lr * (nest ? d + mu * v[i] : v[i]);
    }
}

static void run_sgd_case(float lr, float mu, bool nest, float wd) {
    nb_tensor *w = param_from(3, W0), *b = param_from(2, B0);
    nb_param ps[2] = {{w, true}, {b, false}};
    nb_optim *o = nb_optim_new(
        &(nb_optim_opts){.kind = NB_SGD, .lr = lr, .momentum = mu, .nesterov = nest, .weight_decay = wd}, ps, 2);
    CHECK(o != NULL);
    double rw[3], rb[2], vw[3] = {0}, vb[2] = {0};
    memcpy(rw, W0, sizeof rw);
    memcpy(rb, B0, sizeof rb);
    for (int s = 1; s <= 3; s++) {
        set_grad(w, GW[s - 1], 3);
        set_grad(b, GB[s - 1], 2);
        nb_optim_step(o);
        ref_sgd(rw, vw, GW[s - 1], 3, s, lr, wd, mu, nest);
        ref_sgd(rb, vb, GB[s - 1], 2, s, lr, 0.0, mu, nest); /* biases: no decay */
        check_close(w, rw, 2e-6, "sgd w", s);
        check_close(b, rb, 2e-6, "sgd b", s);
    }
    CHECK(nb_optim_steps(o) == 3);
    nb_optim_free(o);
    nb_tensor_free(w);
    nb_tensor_free(b);
}

TEST(test_optim_sgd_plain_3_steps) {
    run_sgd_case(0.1f, 0.f, false, 0.f);
    run_sgd_case(0.05f, 0.f, false, 0.2f);
}

TEST(test_optim_sgd_momentum_3_steps) {
    /* By hand: w0 = 1, g = 0.5, 0.25, -1, lr 0.1, mu 0.9.
     * v1 = 0.5 (first step v = g), w1 = 0.95; v2 = 0.45 + 0.25 = 0.7, w2 = 0.88;
     * v3 = 0.63 - 1 = -0.37, w3 = 0.917. */
    nb_tensor *w = param_from(1, (double[]){1.0});
    nb_optim *o = nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 0.1f, .momentum = 0.9f}, &(nb_param){w, true}, 1);
    const double g[3] = {0.5, 0.25, -1.0}, want[3] = {0.95, 0.88, 0.917};
    for (int s = 0; s < 3; s++) {
        w->grad->data[0] = (float)g[s];
        nb_optim_step(o);
        CHECK_NEAR(w->data[0], want[s], 1e-6);
    }
    nb_optim_free(o);
    nb_tensor_free(w);
    run_sgd_case(0.1f, 0.9f, false, 0.f);
    run_sgd_case(0.1f, 0.9f, false, 0.1f);
}

TEST(test_optim_sgd_nesterov_3_steps) {
    /* Same numbers: w1 = 1 - 0.1 (0.5 + 0.45) = 0.905; w2 = 0.905 - 0.1 (0.25 +
     * 0.63) = 0.817; w3 = 0.817 - 0.1 (-1 - 0.333) = 0.9503. */
    nb_tensor *w = param_from(1, (double[]){1.0});
    nb_optim *o = nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 0.1f, .momentum = 0.9f, .nesterov = true},
                               &(nb_param){w, true}, 1);
    const double g[3] = {0.5, 0.25, -1.0}, want[3] = {0.905, 0.817, 0.9503};
    for (int s = 0; s < 3; s++) {
        w->grad->data[0] = (float)g[s];
        nb_optim_step(o);
        CHECK_NEAR(w->data[0], want[s], 1e-6);
    }
    nb_optim_free(o);
    nb_tensor_free(w);
    run_sgd_case(0.1f, 0.9f, true, 0.f);
    run_sgd_case(0.1f, 0.5f, true, 0.3f);
}

/* --- Adam / AdamW ------------------------------------------------------------ */

/* Adam in double, the textbook way: m_hat = m/(1-b1^t), v_hat = v/(1-b2^t),
 * w -= lr m_hat / (sqrt(v_hat) + eps). l2 is added to the gradient (Adam's
 * weight decay); AdamW first shrinks w by (1 - lr wd). */
static void ref_adam(double *w, double *m, double *v, const double *g, int n, int t, double lr, double b1, double b2,
                     double eps, double l2, double decoupled) {
    for (int i = 0; i < n; i++) {
        double gi = g[i] + l2 * w[i];
        w[i] *= 1 - lr * decoupled;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
        w[i] -= lr * mh / (sqrt(vh) + eps);
    }
}

static void run_adam_case(nb_optim_kind kind, float lr, float b1, float b2, float eps, float wd) {
    nb_tensor *w = param_from(3, W0), *b = param_from(2, B0);
    nb_param ps[2] = {{w, true}, {b, false}};
    nb_optim *o = nb_optim_new(
        &(nb_optim_opts){.kind = kind, .lr = lr, .beta1 = b1, .beta2 = b2, .eps = eps, .weight_decay = wd}, ps, 2);
    CHECK(o != NULL);
    double B1 = b1 ? b1 : 0.9, B2 = b2 ? b2 : 0.999, E = eps ? eps : 1e-8;
    double rw[3], rb[2], mw[3] = {0}, vw[3] = {0}, mb[2] = {0}, vb[2] = {0};
    memcpy(rw, W0, sizeof rw);
    memcpy(rb, B0, sizeof rb);
    double l2 = kind == NB_ADAM ? wd : 0, dec = kind == NB_ADAMW ? wd : 0;
    for (int s = 1; s <= 3; s++) {
        set_grad(w, GW[s - 1], 3);
        set_grad(b, GB[s - 1], 2);
        nb_optim_step(o);
        ref_adam(rw, mw, vw, GW[s - 1], 3, s, lr, B1, B2, E, l2, dec);
        ref_adam(rb, mb, vb, GB[s - 1], 2, s, lr, B1, B2, E, 0, 0); /* biases: no decay */
        check_close(w, rw, 2e-6, kind == NB_ADAMW ? "adamw w" : "adam w", s);
        check_close(b, rb, 2e-6, kind == NB_ADAMW ? "adamw b" : "adam b", s);
    }
    nb_optim_free(o);
    nb_tensor_free(w);
    nb_tensor_free(b);
}

TEST(test_optim_adam_3_steps) {
    /* By hand, step 1: m_hat = g, v_hat = g^2, so w1 = w0 - lr g/(|g| + eps):
     * a step of lr against the gradient's sign, whatever its size. */
    nb_tensor *w = param_from(2, (double[]){1.0, -2.0});
    nb_optim *o = nb_optim_new(&(nb_optim_opts){.kind = NB_ADAM, .lr = 0.01f}, &(nb_param){w, true}, 1);
    w->grad->data[0] = 3.f;
    w->grad->data[1] = -0.002f;
    nb_optim_step(o);
    CHECK_NEAR(w->data[0], 1.0 - 0.01 * 3.0 / (3.0 + 1e-8), 1e-7);
    CHECK_NEAR(w->data[1], -2.0 + 0.01 * 0.002 / (0.002 + 1e-8), 1e-7);
    nb_optim_free(o);
    nb_tensor_free(w);
    run_adam_case(NB_ADAM, 0.01f, 0, 0, 0, 0);           /* defaults 0.9, 0.999, 1e-8 */
    run_adam_case(NB_ADAM, 0.1f, 0.8f, 0.99f, 0.05f, 0); /* a big eps shows where it is added */
}

TEST(test_optim_adam_weight_decay_3_steps) { run_adam_case(NB_ADAM, 0.05f, 0.85f, 0.995f, 1e-3f, 0.1f); }

TEST(test_optim_adamw_3_steps) {
    run_adam_case(NB_ADAMW, 0.05f, 0, 0, 0, 0.1f);
    run_adam_case(NB_ADAMW, 0.2f, 0.7f, 0.9f, 1e-2f, 0.5f);
}

TEST(test_optim_weight_decay_skips_no_decay_params) {
    /* Two identical tensors with identical gradients, one decayed and one
     * not: the undecayed one must follow the optimizer with wd = 0 exactly. */
    nb_optim_kind kinds[3] = {NB_SGD, NB_ADAM, NB_ADAMW};
    for (int k = 0; k < 3; k++) {
        nb_tensor *a = param_from(3, W0), *c = param_from(3, W0), *ref = param_from(3, W0);
        nb_param ps[2] = {{a, true}, {c, false}};
        nb_optim_opts oo = {
            .kind = kinds[k], .lr = 0.1f, .momentum = kinds[k] == NB_SGD ? 0.9f : 0.f, .weight_decay = 0.5f};
        nb_optim *o = nb_optim_new(&oo, ps, 2);
        oo.weight_decay = 0.f;
        nb_optim *o0 = nb_optim_new(&oo, &(nb_param){ref, true}, 1);
        for (int s = 0; s < 3; s++) {
            set_grad(a, GW[s], 3);
            set_grad(c, GW[s], 3);
            set_grad(ref, GW[s], 3);
            nb_optim_step(o);
            nb_optim_step(o0);
        }
        CHECK_MSG(memcmp(c->data, ref->data, sizeof(float) * 3) == 0, "kind %d: decay=false param was decayed", k);
        CHECK_MSG(memcmp(a->data, ref->data, sizeof(float) * 3) != 0, "kind %d: decay=true param was not decayed", k);
        nb_optim_free(o);
        nb_optim_free(o0);
        nb_tensor_free(a);
        nb_tensor_free(c);
        nb_tensor_free(ref);
    }
}

TEST(test_optim_adamw_differs_from_adam_l2) {
    /* A weight whose loss gradient is 0 (z) and one with a large gradient (q).
     * Adam + L2: the decay term goes through the normalization, so on z it
     * becomes a full step of lr against sign(w) (m_hat/sqrt(v_hat) = +-1) and on
     * q it is diluted by the large gradient. AdamW: every weight shrinks by
     * exactly lr*wd*w on top of the plain Adam step. */
    const float lr = 0.01f, wd = 0.1f;
    double z0 = 0.5, q0 = -2.0, gq = 100.0;
    nb_tensor *z[3], *q[3];
    nb_optim *o[3];
    nb_optim_kind kinds[3] = {NB_ADAM, NB_ADAMW, NB_ADAM};
    float wds[3] = {wd, wd, 0.f}; /* Adam+L2, AdamW, plain Adam */
    for (int k = 0; k < 3; k++) {
        z[k] = param_from(1, &z0);
        q[k] = param_from(1, &q0);
        o[k] = nb_optim_new(&(nb_optim_opts){.kind = kinds[k], .lr = lr, .weight_decay = wds[k]},
                            (nb_param[]){{z[k], true}, {q[k], true}}, 2);
        z[k]->grad->data[0] = 0.f;
        q[k]->grad->data[0] = (float)gq;
        nb_optim_step(o[k]);
    }
    /* Adam + L2 on z: g = wd z, step = lr g/(|g| + eps) ~ lr. */
    CHECK_NEAR(z[0]->data[0], z0 - lr * (wd * z0) / (wd * z0 + 1e-8), 1e-6);
    /* AdamW on z: only the decoupled shrink (plain Adam does not move z). */
    CHECK_NEAR(z[2]->data[0], z0, 0);
    CHECK_NEAR(z[1]->data[0], z0 * (1 - lr * wd), 1e-7);
    /* On q, AdamW = plain Adam step plus the shrink of the old weight. */
    CHECK_NEAR(q[1]->data[0], q[2]->data[0] - lr * wd * q0, 1e-6);
    /* Adam + L2 on q: g' = 100 - 0.2, still a step of ~lr: decay all but lost. */
    CHECK_NEAR(q[0]->data[0], q[2]->data[0], 1e-6);
    CHECK(fabs(q[1]->data[0] - q[0]->data[0]) > 1e-4);
    for (int k = 0; k < 3; k++) {
        nb_optim_free(o[k]);
        nb_tensor_free(z[k]);
        nb_tensor_free(q[k]);
    }
}

TEST(test_optim_large_tensor_parallel_path) {
    /* Above NB_PAR_MIN the loops run on OpenMP threads: same formulas. */
    int n = 50000;
    double *w0 = malloc(sizeof(double) * n), *g = malloc(sizeof(double) * n), *rw = malloc(sizeof(double) * n),
           *m = calloc(n, sizeof(double)), *v = calloc(n, sizeof(double));
    for (int i = 0; i < n; i++)
        w0[i] = nb_rng_normal(nb_test_rng()), g[i] = nb_rng_normal(nb_test_rng());
    nb_tensor *w = param_from(n, w0), *u = param_from(n, w0);
    nb_optim *oa =
        nb_optim_new(&(nb_optim_opts){.kind = NB_ADAMW, .lr = 0.01f, .weight_decay = 0.1f}, &(nb_param){w, true}, 1);
    nb_optim *os =
        nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 0.01f, .momentum = 0.9f}, &(nb_param){u, true}, 1);
    memcpy(rw, w0, sizeof(double) * n);
    for (int s = 1; s <= 3; s++) {
        set_grad(w, g, n);
        nb_optim_step(oa);
        ref_adam(rw, m, v, g, n, s, 0.01, 0.9, 0.999, 1e-8, 0, 0.1);
    }
    check_close(w, rw, 1e-5, "adamw large", 3);
    memcpy(rw, w0, sizeof(double) * n);
    memset(v, 0, sizeof(double) * n);
    for (int s = 1; s <= 3; s++) {
        set_grad(u, g, n);
        nb_optim_step(os);
        ref_sgd(rw, v, g, n, s, 0.01, 0, 0.9, false);
    }
    check_close(u, rw, 1e-5, "sgd large", 3);
    nb_optim_free(oa);
    nb_optim_free(os);
    nb_tensor_free(w);
    nb_tensor_free(u);
    free(w0), free(g), free(rw), free(m), free(v);
}

/* nb_optim_step_zero with two replicas' gradients equals summing them into
 * .grad, nb_optim_step and nb_optim_zero_grad, bit for bit (the same float
 * additions in the same order), for each optimizer, on a parameter cut into
 * several runs and two small ones; every gradient ends at zero. */
TEST(test_optim_step_zero_sums_replicas_steps_and_zeroes) {
    int64_t sizes[3] = {40000, 7, 1};
    nb_optim_opts kinds[3] = {{.kind = NB_SGD, .lr = 0.01f, .momentum = 0.9f, .nesterov = true, .weight_decay = 0.1f},
                              {.kind = NB_ADAM, .lr = 0.01f, .weight_decay = 0.1f},
                              {.kind = NB_ADAMW, .lr = 0.01f, .weight_decay = 0.1f}};
    for (int kd = 0; kd < 3; kd++) {
        nb_param a[3], b[3];
        nb_tensor *ex[2][3];
        for (int i = 0; i < 3; i++) {
            a[i] = (nb_param){nb_test_param(1, &sizes[i], 1.f), i != 1}; /* i = 1: a bias, not decayed */
            b[i] = (nb_param){nb_tensor_clone(a[i].t), i != 1};
            nb_requires_grad(b[i].t, true);
            for (int k = 0; k < 2; k++) ex[k][i] = nb_tensor_new(1, &sizes[i]);
        }
        nb_optim *fused = nb_optim_new(&kinds[kd], a, 3), *plain = nb_optim_new(&kinds[kd], b, 3);
        nb_tensor **rows[2] = {ex[0], ex[1]};
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < 3; i++)
                for (int64_t j = 0; j < sizes[i]; j++) {
                    float g = (float)nb_rng_normal(nb_test_rng()), e0 = (float)nb_rng_normal(nb_test_rng()),
                          e1 = (float)nb_rng_normal(nb_test_rng());
                    a[i].t->grad->data[j] = g, ex[0][i]->data[j] = e0, ex[1][i]->data[j] = e1;
                    b[i].t->grad->data[j] = (g + e0) + e1; /* the fused step's order */
                }
            nb_optim_step_zero(fused, rows, 2);
            nb_optim_step(plain);
            nb_optim_zero_grad(plain);
            for (int i = 0; i < 3; i++) {
                CHECK_MSG(memcmp(a[i].t->data, b[i].t->data, sizeof(float) * (size_t)sizes[i]) == 0,
                          "kind %d step %d parameter %d differs", kd, step, i);
                for (int64_t j = 0; j < sizes[i]; j++)
                    CHECK(a[i].t->grad->data[j] == 0.f && ex[0][i]->data[j] == 0.f && ex[1][i]->data[j] == 0.f);
            }
        }
        CHECK(nb_optim_steps(fused) == 3);
        nb_optim_free(fused);
        nb_optim_free(plain);
        for (int i = 0; i < 3; i++) {
            nb_tensor_free(a[i].t), nb_tensor_free(b[i].t);
            for (int k = 0; k < 2; k++) nb_tensor_free(ex[k][i]);
        }
    }
}

/* The step's threads split the elements of all parameters, cutting runs and
 * parameters anywhere: every element must be updated once, whatever the
 * thread count, and a parameter without a .grad left alone. Checked against
 * SGD with momentum and weight decay evaluated per element in double. */
TEST(test_optim_step_updates_every_element_for_any_thread_count) {
    enum { NP = 5 };
    const int64_t sizes[NP] = {40000, 7, 30001, 5, 16385};
    const double lr = 0.1, mu = 0.9, wd = 0.01;
    int threads = nb_get_threads();
    for (int nt = 1; nt <= 3; nt++) {
        nb_set_threads(nt);
        nb_param p[NP];
        double *w[NP], *v[NP];
        for (int i = 0; i < NP; i++) {
            p[i] = (nb_param){nb_test_param(1, &sizes[i], 1.f), i != 1};
            w[i] = malloc(sizeof(double) * (size_t)sizes[i]);
            v[i] = calloc((size_t)sizes[i], sizeof(double));
            for (int64_t j = 0; j < sizes[i]; j++) w[i][j] = p[i].t->data[j];
        }
        nb_tensor_free(p[3].t->grad); /* never received a gradient */
        p[3].t->grad = NULL;
        nb_optim *op = nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = (float)lr, .momentum = (float)mu,
                                                     .weight_decay = (float)wd}, p, NP);
        for (int step = 0; step < 2; step++) {
            for (int i = 0; i < NP; i++) {
                if (!p[i].t->grad) continue;
                double d = p[i].decay ? wd : 0.0;
                for (int64_t j = 0; j < sizes[i]; j++) {
                    float g = (float)nb_rng_normal(nb_test_rng());
                    p[i].t->grad->data[j] = g;
                    v[i][j] = mu * v[i][j] + g + d * w[i][j];
                    w[i][j] -= lr * v[i][j];
                }
            }
            nb_optim_step(op);
            for (int i = 0; i < NP; i++)
                for (int64_t j = 0; j < sizes[i]; j++)
                    if (fabs(p[i].t->data[j] - w[i][j]) > 1e-5 * fmax(1.0, fabs(w[i][j]))) {
                        CHECK_MSG(0, "%d threads, step %d, parameter %d [%lld]: %.9g, expected %.9g", nt, step, i,
                                  (long long)j, (double)p[i].t->data[j], w[i][j]);
                        break;
                    }
        }
        nb_optim_free(op);
        for (int i = 0; i < NP; i++) {
            nb_tensor_free(p[i].t);
            free(w[i]);
            free(v[i]);
        }
    }
    nb_set_threads(threads);
}

static void set_steps_negative(void *c) {
    nb_tensor *w = nb_tensor_new(1, (int64_t[]){2});
    nb_optim *o = nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 1.f}, &(nb_param){w, true}, 1);
    nb_optim_set_steps(o, -1);
}
static void set_lr_nan(void *c) {
    nb_tensor *w = nb_tensor_new(1, (int64_t[]){2});
    nb_optim *o = nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 1.f}, &(nb_param){w, true}, 1);
    nb_optim_set_lr(o, NAN);
}

/* .grad is a public field: one swapped for a smaller tensor must not be read
 * past its end. */
static void step_with_a_short_grad(void *c) {
    nb_tensor *w = nb_tensor_new(1, (int64_t[]){4});
    nb_requires_grad(w, true);
    nb_optim *o = nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 1.f}, &(nb_param){w, true}, 1);
    nb_tensor_free(w->grad);
    w->grad = nb_tensor_new(1, (int64_t[]){3});
    nb_optim_step(o);
}

TEST(test_optim_refuses_bad_steps_lr_and_gradient_sizes) {
    nb_test_expect_fatal("short grad", step_with_a_short_grad, NULL,
                         (const char *[]){"optim_step", "gradient size differs from parameter", "[4]", "[3]", NULL});
    /* A negative step count would make Adam's bias corrections 1 - beta^t
     * negative: a resumed run stepping the wrong way. */
    nb_test_expect_fatal("steps -1", set_steps_negative, NULL, (const char *[]){"optim_set_steps", "got -1", NULL});
    nb_test_expect_fatal("lr nan", set_lr_nan, NULL, (const char *[]){"optim_set_lr", "finite", NULL});
}

TEST(test_optim_zero_grad_set_lr_and_steps) {
    nb_tensor *w = param_from(2, (double[]){1.0, 2.0});
    nb_optim *o = nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 1.f}, &(nb_param){w, true}, 1);
    CHECK(nb_optim_steps(o) == 0);
    CHECK(nb_optim_state(o, NULL, NULL) == 0); /* no momentum, no state */
    set_grad(w, (double[]){0.5, -0.5}, 2);
    nb_optim_set_lr(o, 0.5f);
    nb_optim_step(o);
    CHECK_NEAR(w->data[0], 0.75, 1e-7);
    CHECK_NEAR(w->data[1], 2.25, 1e-7);
    nb_optim_zero_grad(o);
    CHECK(w->grad->data[0] == 0.f && w->grad->data[1] == 0.f);
    nb_optim_step(o); /* zero gradient: nothing moves */
    CHECK_NEAR(w->data[0], 0.75, 0);
    CHECK(nb_optim_steps(o) == 2);
    nb_optim_free(o);
    /* A parameter with no .grad buffer is left alone. */
    nb_tensor *frozen = nb_tensor_new(1, (int64_t[]){2});
    frozen->data[0] = 3.f;
    o = nb_optim_new(&(nb_optim_opts){.kind = NB_ADAM, .lr = 1.f}, &(nb_param){frozen, true}, 1);
    nb_optim_step(o);
    CHECK(frozen->data[0] == 3.f);
    nb_optim_free(o);
    nb_tensor_free(frozen);
    nb_tensor_free(w);
}

TEST(test_optim_new_rejects_bad_options) {
    nb_tensor *w = param_from(1, (double[]){1.0});
    nb_param p = {w, true};
    struct {
        nb_optim_opts o;
        const char *word;
    } bad[] = {
        {{.kind = NB_SGD, .lr = -1.f}, "lr"},
        {{.kind = NB_SGD, .lr = NAN}, "lr"},
        {{.kind = NB_SGD, .lr = 0.1f, .nesterov = true}, "nesterov"},
        {{.kind = NB_SGD, .lr = 0.1f, .momentum = -0.5f}, "momentum"},
        {{.kind = NB_ADAM, .lr = 0.1f, .beta1 = 1.f}, "beta1"},
        {{.kind = NB_ADAMW, .lr = 0.1f, .beta2 = 1.5f}, "beta2"},
        {{.kind = NB_ADAM, .lr = 0.1f, .eps = -1.f}, "eps"},
        {{.kind = NB_ADAM, .lr = 0.1f, .weight_decay = -0.1f}, "weight_decay"},
        {{.kind = (nb_optim_kind)7, .lr = 0.1f}, "kind"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        nb_clear_error();
        nb_optim *o = nb_optim_new(&bad[i].o, &p, 1);
        CHECK_MSG(o == NULL && strstr(nb_errmsg(), bad[i].word), "case %zu: %s", i, nb_errmsg());
        nb_optim_free(o);
    }
    nb_tensor *arena = nb_zeros(1, (int64_t[]){2});
    CHECK(nb_optim_new(&(nb_optim_opts){.kind = NB_SGD, .lr = 0.1f}, &(nb_param){arena, true}, 1) == NULL);
    CHECK(strstr(nb_errmsg(), "arena") != NULL);
    nb_tensor_free(w);
}

/* --- state round trip -------------------------------------------------------- */

/* A small least-squares problem whose gradient depends on the weights, so a
 * wrong restore shows in every later step. */
typedef struct lsq {
    nb_tensor *x, *y; /* persistent data */
} lsq;

static void lsq_backward(const lsq *d, nb_tensor *w, nb_tensor *b) {
    nb_tensor *r = nb_sub(nb_add(nb_matmul(nb_detach(d->x), w), b), nb_detach(d->y));
    nb_backward(nb_mul_scalar(nb_sum_all(nb_square(r)), 0.1f));
    nb_arena_reset();
}

static lsq lsq_make(void) {
    lsq d = {nb_tensor_new(2, (int64_t[]){5, 4}), nb_tensor_new(2, (int64_t[]){5, 3})};
    nb_init_normal(d.x, 0, 1, nb_test_rng());
    nb_init_normal(d.y, 0, 1, nb_test_rng());
    return d;
}

static void lsq_free(lsq *d) {
    nb_tensor_free(d->x);
    nb_tensor_free(d->y);
}

/* Runs `steps` steps starting from the given weights and (if state != NULL)
 * optimizer state and step count; returns the final optimizer. */
static nb_optim *train(const nb_optim_opts *oo, const lsq *d, nb_tensor *w, nb_tensor *b, int steps, nb_tensor **state,
                       int nstate, int64_t start) {
    nb_param ps[2] = {{w, true}, {b, false}};
    nb_optim *o = nb_optim_new(oo, ps, 2);
    if (state) {
        const char **names;
        nb_tensor **ts;
        int ns = nb_optim_state(o, &names, &ts);
        CHECK(ns == nstate);
        for (int k = 0; k < ns && k < nstate; k++) {
            CHECK(strcmp(names[k], state[k]->name) == 0);
            nb_copy_into(ts[k], state[k]);
        }
        nb_optim_set_steps(o, start);
    }
    for (int s = 0; s < steps; s++) {
        nb_optim_zero_grad(o);
        lsq_backward(d, w, b);
        nb_optim_step(o);
    }
    return o;
}

TEST(test_optim_state_round_trip_is_bit_exact) {
    nb_optim_opts kinds[3] = {
        {.kind = NB_SGD, .lr = 0.05f, .momentum = 0.9f, .nesterov = true, .weight_decay = 0.01f},
        {.kind = NB_ADAM, .lr = 0.05f, .weight_decay = 0.01f},
        {.kind = NB_ADAMW, .lr = 0.05f, .weight_decay = 0.1f},
    };
    const char *first_names[3][2] = {{"sgd.v.0", "sgd.v.1"}, {"adam.m.0", "adam.v.0"}, {"adam.m.0", "adam.v.0"}};
    lsq d = lsq_make();
    nb_tensor *w0 = nb_tensor_new(2, (int64_t[]){4, 3}), *b0 = nb_tensor_new(1, (int64_t[]){3});
    nb_init_normal(w0, 0, 0.5f, nb_test_rng());
    nb_init_normal(b0, 0, 0.5f, nb_test_rng());
    for (int k = 0; k < 3; k++) {
        /* Uninterrupted: 6 steps. */
        nb_tensor *wa = nb_tensor_clone(w0), *ba = nb_tensor_clone(b0);
        nb_requires_grad(wa, true);
        nb_requires_grad(ba, true);
        nb_optim *oa = train(&kinds[k], &d, wa, ba, 6, NULL, 0, 0);

        /* Interrupted: 3 steps, save weights + state (as a checkpoint would),
         * throw everything away, rebuild and run 3 more. */
        nb_tensor *wb = nb_tensor_clone(w0), *bb = nb_tensor_clone(b0);
        nb_requires_grad(wb, true);
        nb_requires_grad(bb, true);
        nb_optim *ob = train(&kinds[k], &d, wb, bb, 3, NULL, 0, 0);
        const char **names;
        nb_tensor **ts;
        int ns = nb_optim_state(ob, &names, &ts);
        CHECK(ns == (k == 0 ? 2 : 4));
        CHECK(strcmp(names[0], first_names[k][0]) == 0 && strcmp(names[1], first_names[k][1]) == 0);
        /* The names are ob's: copy them, as a checkpoint file would. */
        nb_tensor *saved[4];
        char namebuf[4][32];
        for (int i = 0; i < ns; i++) {
            saved[i] = nb_tensor_clone(ts[i]);
            snprintf(namebuf[i], sizeof namebuf[i], "%s", names[i]);
            saved[i]->name = namebuf[i];
        }
        int64_t steps = nb_optim_steps(ob);
        nb_tensor *ws = nb_tensor_clone(wb), *bs = nb_tensor_clone(bb);
        nb_requires_grad(ws, true);
        nb_requires_grad(bs, true);
        nb_optim_free(ob);
        nb_optim *oc = train(&kinds[k], &d, ws, bs, 3, saved, ns, steps);
        CHECK(nb_optim_steps(oc) == 6);
        CHECK_MSG(memcmp(wa->data, ws->data, sizeof(float) * (size_t)wa->size) == 0 &&
                      memcmp(ba->data, bs->data, sizeof(float) * (size_t)ba->size) == 0,
                  "kind %d: resumed run differs from the uninterrupted one", k);
        nb_tensor **ta, **tc;
        nb_optim_state(oa, NULL, &ta);
        nb_optim_state(oc, NULL, &tc);
        for (int i = 0; i < ns; i++)
            CHECK(memcmp(ta[i]->data, tc[i]->data, sizeof(float) * (size_t)ta[i]->size) == 0);

        /* Adam's bias correction depends on t: forgetting set_steps shows. */
        if (k > 0) {
            nb_tensor *wx = nb_tensor_clone(wb), *bx = nb_tensor_clone(bb);
            nb_requires_grad(wx, true);
            nb_requires_grad(bx, true);
            nb_optim *ox = train(&kinds[k], &d, wx, bx, 3, saved, ns, 0);
            CHECK(memcmp(wa->data, wx->data, sizeof(float) * (size_t)wa->size) != 0);
            nb_optim_free(ox);
            nb_tensor_free(wx);
            nb_tensor_free(bx);
        }
        for (int i = 0; i < ns; i++) {
            saved[i]->name = NULL;
            nb_tensor_free(saved[i]);
        }
        nb_optim_free(oa);
        nb_optim_free(oc);
        nb_tensor_free(wa), nb_tensor_free(ba), nb_tensor_free(wb), nb_tensor_free(bb);
        nb_tensor_free(ws), nb_tensor_free(bs);
    }
    nb_tensor_free(w0);
    nb_tensor_free(b0);
    lsq_free(&d);
}

/* --- eq. 7.1: weight decay is the gradient of the L2 penalty ------------------ */

TEST(test_eq_7_1_l2_penalty_equals_weight_decay) {
    /* J~(w, b) = J(w, b) + alpha/2 ||w||^2 (eq. 7.1, Omega = 1/2 ||w||^2 on the
     * weights only) minimized with plain SGD/Adam must take the same steps as
     * J with weight_decay = alpha on w (decay = true) and none on b. */
    const float alpha = 0.3f;
    nb_optim_opts kinds[2] = {{.kind = NB_SGD, .lr = 0.05f, .momentum = 0.9f}, {.kind = NB_ADAM, .lr = 0.02f}};
    lsq d = lsq_make();
    nb_tensor *w0 = nb_tensor_new(2, (int64_t[]){4, 3}), *b0 = nb_tensor_new(1, (int64_t[]){3});
    nb_init_normal(w0, 0, 1.f, nb_test_rng());
    nb_init_normal(b0, 0, 1.f, nb_test_rng());
    for (int k = 0; k < 2; k++) {
        nb_tensor *wp = nb_tensor_clone(w0), *bp = nb_tensor_clone(b0), *wd = nb_tensor_clone(w0),
                  *bd = nb_tensor_clone(b0);
        nb_tensor *ts[4] = {wp, bp, wd, bd};
        for (int i = 0; i < 4; i++)
            nb_requires_grad(ts[i], true);
        nb_optim_opts with_penalty = kinds[k], with_decay = kinds[k];
        with_decay.weight_decay = alpha;
        nb_optim *op = nb_optim_new(&with_penalty, (nb_param[]){{wp, true}, {bp, false}}, 2);
        nb_optim *od = nb_optim_new(&with_decay, (nb_param[]){{wd, true}, {bd, false}}, 2);
        for (int s = 0; s < 5; s++) {
            nb_optim_zero_grad(op);
            nb_tensor *r = nb_sub(nb_add(nb_matmul(nb_detach(d.x), wp), bp), nb_detach(d.y));
            nb_tensor *J = nb_mul_scalar(nb_sum_all(nb_square(r)), 0.1f);
            nb_backward(nb_add(J, nb_mul_scalar(nb_sum_all(nb_square(wp)), alpha / 2)));
            nb_optim_step(op);
            nb_arena_reset();
            nb_optim_zero_grad(od);
            lsq_backward(&d, wd, bd);
            nb_optim_step(od);
        }
        CHECK_MSG(nb_test_maxrel(wp->data, wd->data, wp->size) < 1e-5, "kind %d: weights differ by %g", k,
                  nb_test_maxrel(wp->data, wd->data, wp->size));
        CHECK_MSG(nb_test_maxrel(bp->data, bd->data, bp->size) < 1e-5, "kind %d: biases differ", k);
        nb_optim_free(op);
        nb_optim_free(od);
        for (int i = 0; i < 4; i++)
            nb_tensor_free(ts[i]);
    }
    nb_tensor_free(w0);
    nb_tensor_free(b0);
    lsq_free(&d);
}

/* --- eq. 7.13: L2 rescales along the Hessian's eigenvectors --------------------- */

typedef struct quad {
    nb_tensor *w, *H, *wstar; /* w [3,1] parameter; H [3,3]; w* [3,1] */
    float alpha;
} quad;

/* J(w) + alpha/2 ||w||^2 with J(w) = 1/2 (w - w*)^T H (w - w*) (eq. 7.6 with
 * J(w*) = 0). */
static float quad_loss(void *ctx) {
    quad *q = ctx;
    nb_tensor *diff = nb_sub(q->w, nb_detach(q->wstar));
    nb_tensor *J = nb_mul_scalar(nb_sum_all(nb_mul(diff, nb_matmul(nb_detach(q->H), diff))), 0.5f);
    nb_tensor *L = nb_add(J, nb_mul_scalar(nb_sum_all(nb_square(q->w)), q->alpha / 2));
    nb_backward(L);
    return nb_item(L);
}

TEST(test_eq_7_13_l2_rescales_hessian_eigencomponents) {
    /* H = Q diag(lambda) Q^T with Q = [[1,2,2],[2,1,-2],[2,-2,1]]/3, which is
     * orthogonal and symmetric, so the eigen-decomposition is known exactly. */
    const double Q[3][3] = {{1 / 3., 2 / 3., 2 / 3.}, {2 / 3., 1 / 3., -2 / 3.}, {2 / 3., -2 / 3., 1 / 3.}};
    const double lam[3] = {10.0, 1.0, 0.01}, alpha = 1.0, ws[3] = {1.0, -2.0, 3.0};
    double H[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            H[i * 3 + j] = 0;
            for (int k = 0; k < 3; k++)
                H[i * 3 + j] += Q[i][k] * lam[k] * Q[j][k];
        }
    /* eq. 7.13: w~ = Q (Lambda + alpha I)^-1 Lambda Q^T w*. */
    double qtw[3], want[3];
    for (int k = 0; k < 3; k++) {
        qtw[k] = 0;
        for (int i = 0; i < 3; i++)
            qtw[k] += Q[i][k] * ws[i];
    }
    for (int i = 0; i < 3; i++) {
        want[i] = 0;
        for (int k = 0; k < 3; k++)
            want[i] += Q[i][k] * lam[k] / (lam[k] + alpha) * qtw[k];
    }
    quad q = {nb_tensor_new(2, (int64_t[]){3, 1}), nb_tensor_new(2, (int64_t[]){3, 3}),
              nb_tensor_new(2, (int64_t[]){3, 1}), (float)alpha};
    for (int i = 0; i < 9; i++)
        q.H->data[i] = (float)H[i];
    for (int i = 0; i < 3; i++)
        q.wstar->data[i] = (float)ws[i];
    nb_requires_grad(q.w, true);
    int iters = 0;
    float loss = nb_lbfgs(&(nb_param){q.w, true}, 1, quad_loss, &q, &(nb_lbfgs_opts){.tol_grad = 1e-6f}, &iters);
    CHECK_MSG(isfinite(loss) && iters > 0 && iters <= 20, "loss %g, %d iterations", (double)loss, iters);
    check_close(q.w, want, 1e-4, "eq 7.13 w~", iters);
    /* Component by component in the eigenbasis: scaled by lambda/(lambda+alpha):
     * ~0.909 (kept), 0.5, ~0.0099 (shrunk to nearly zero). */
    for (int k = 0; k < 3; k++) {
        double c = 0;
        for (int i = 0; i < 3; i++)
            c += Q[i][k] * q.w->data[i];
        CHECK_NEAR(c, lam[k] / (lam[k] + alpha) * qtw[k], 1e-4);
    }
    /* The same point is eq. 7.10, (H + alpha I)^-1 H w*: check (H + alpha I) w~ = H w*. */
    for (int i = 0; i < 3; i++) {
        double lhs = alpha * q.w->data[i], rhs = 0;
        for (int j = 0; j < 3; j++)
            lhs += H[i * 3 + j] * q.w->data[j], rhs += H[i * 3 + j] * ws[j];
        CHECK_NEAR(lhs, rhs, 1e-4);
    }
    nb_tensor_free(q.w), nb_tensor_free(q.H), nb_tensor_free(q.wstar);
}

/* --- L-BFGS -------------------------------------------------------------------- */

typedef struct rosen {
    nb_tensor **x;
    int n;
    int evals;
} rosen;

/* sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, each x_i a one-element param. */
static float rosen_loss(void *ctx) {
    rosen *r = ctx;
    r->evals++;
    nb_tensor *L = NULL;
    for (int i = 0; i + 1 < r->n; i++) {
        nb_tensor *a = nb_mul_scalar(nb_square(nb_sub(r->x[i + 1], nb_square(r->x[i]))), 100.f);
        nb_tensor *b = nb_square(nb_add_scalar(nb_neg(r->x[i]), 1.f));
        nb_tensor *t = nb_add(a, b);
        L = L ? nb_add(L, t) : t;
    }
    L = nb_sum_all(L);
    nb_backward(L);
    return nb_item(L);
}

static void run_rosenbrock(int n, const double *x0, int history, int max_iters) {
    rosen r = {malloc(sizeof(nb_tensor *) * n), n, 0};
    nb_param *ps = malloc(sizeof(nb_param) * n);
    for (int i = 0; i < n; i++) {
        r.x[i] = param_from(1, &x0[i]);
        ps[i] = (nb_param){r.x[i], true};
    }
    size_t used = nb_arena_bytes_used();
    int iters = 0;
    float loss = nb_lbfgs(ps, n, rosen_loss, &r, &(nb_lbfgs_opts){.max_iter = 500, .history = history}, &iters);
    CHECK_MSG(loss < 1e-8f, "n=%d history=%d: loss %g after %d iterations", n, history, (double)loss, iters);
    for (int i = 0; i < n; i++)
        CHECK_MSG(fabs(r.x[i]->data[0] - 1.0) < 1e-4, "n=%d history=%d: x[%d] = %.7f after %d iterations", n, history,
                  i, (double)r.x[i]->data[0], iters);
    /* A quasi-Newton method needs a few dozen iterations here (PyTorch and
     * SciPy take about 35 on the 2-D problem); gradient descent needs
     * thousands. */
    CHECK_MSG(iters > 5 && iters <= max_iters, "n=%d history=%d: %d iterations", n, history, iters);
    CHECK(r.evals >= iters);
    /* Every evaluation ran in nb_lbfgs's scratch arena: ours did not grow. */
    CHECK(nb_arena_bytes_used() == used);
    for (int i = 0; i < n; i++)
        nb_tensor_free(r.x[i]);
    free(r.x);
    free(ps);
}

/* f(x) = 1/2 sum a_i x_i^2, every point it is evaluated at recorded. */
typedef struct {
    nb_tensor *x, *a;
    int evals;
    double pts[64][3];
} quad3;

static float quad3_loss(void *ctx) {
    quad3 *q = ctx;
    if (q->evals < 64)
        for (int i = 0; i < 3; i++) q->pts[q->evals][i] = q->x->data[i];
    q->evals++;
    nb_tensor *L = nb_mul_scalar(nb_sum_all(nb_mul(nb_square(q->x), q->a)), 0.5f);
    nb_backward(L);
    return nb_item(L);
}

/* The second iteration's direction by hand (N&W eq. 7.19-7.20 in matrix
 * form, not the two-loop recursion): with the one pair s = x1 - x0,
 * y = g1 - g0, rho = 1 / y's and H0 = gamma I, gamma = s'y / y'y,
 *   H1 = (I - rho s y') H0 (I - rho y s') + rho s s',
 * and its first trial point x1 - H1 g1 (unit step). On an ill-scaled
 * quadratic gamma is far from 1, so an unscaled H0 misses the point. */
TEST(test_lbfgs_second_direction_matches_the_bfgs_formula) {
    const double a[3] = {1, 10, 100}, x0[3] = {1, -0.5, 0.25};
    quad3 q = {param_from(3, x0), param_from(3, a), 0, {{0}}};
    nb_requires_grad(q.a, false);
    nb_param p = {q.x, true};
    nb_lbfgs(&p, 1, quad3_loss, &q, &(nb_lbfgs_opts){.max_iter = 1}, NULL);
    int k = q.evals; /* the first line search's evaluations */
    double x1[3], g0[3], g1[3], s[3], y[3];
    for (int i = 0; i < 3; i++) {
        x1[i] = q.x->data[i];
        g0[i] = a[i] * (double)(float)x0[i], g1[i] = a[i] * x1[i];
        s[i] = x1[i] - (double)(float)x0[i], y[i] = g1[i] - g0[i];
    }
    double sy = 0, yy = 0, sg = 0;
    for (int i = 0; i < 3; i++) sy += s[i] * y[i], yy += y[i] * y[i], sg += s[i] * g1[i];
    double rho = 1 / sy, gamma = sy / yy;
    /* u = (I - rho y s') g1;  H1 g1 = gamma (u - rho s (y'u)) + rho s (s'g1) */
    double u[3], yu = 0;
    for (int i = 0; i < 3; i++) u[i] = g1[i] - rho * y[i] * sg;
    for (int i = 0; i < 3; i++) yu += y[i] * u[i];
    for (int i = 0; i < 3; i++) q.x->data[i] = (float)x0[i];
    q.evals = 0;
    nb_lbfgs(&p, 1, quad3_loss, &q, &(nb_lbfgs_opts){.max_iter = 2}, NULL);
    CHECK_MSG(q.evals > k && k < 64, "%d evaluations after the first line search's %d", q.evals, k);
    for (int i = 0; i < 3 && q.evals > k && k < 64; i++) {
        double want = x1[i] - (gamma * (u[i] - rho * s[i] * yu) + rho * s[i] * sg);
        CHECK_MSG(fabs(q.pts[k][i] - want) <= 1e-4 * (1 + fabs(want)), "x[%d] of the second trial: %.7g, want %.7g", i,
                  q.pts[k][i], want);
    }
    nb_tensor_free(q.x), nb_tensor_free(q.a);
}

TEST(test_lbfgs_rosenbrock) {
    run_rosenbrock(2, (double[]){-1.2, 1.0}, 0, 50); /* the classic start, default history 10 */
    run_rosenbrock(2, (double[]){-1.2, 1.0}, 2, 50);
    run_rosenbrock(6, (double[]){-1.2, 1.0, -1.2, 1.0, 0.5, 0.0}, 5, 100);
}

/* nb_lbfgs_opts.stop: asked before each iteration; a yes ends the run there,
 * with the best point so far (a signal handler's flag in `nabla style`). */
static int stop_after_4(void *ctx) { return ((rosen *)ctx)->evals >= 4; }

TEST(test_lbfgs_stop_callback_ends_the_run) {
    const double x0[2] = {-1.2, 1.0};
    rosen r = {(nb_tensor *[2]){param_from(1, &x0[0]), param_from(1, &x0[1])}, 2, 0};
    nb_param ps[2] = {{r.x[0], true}, {r.x[1], true}};
    int iters = 0;
    float loss = nb_lbfgs(ps, 2, rosen_loss, &r, &(nb_lbfgs_opts){.max_iter = 500, .stop = stop_after_4}, &iters);
    /* Rosenbrock at the start is 24.2; the run stops after a few line searches, far from the optimum */
    CHECK_MSG(iters >= 1 && iters < 10 && r.evals >= 4 && r.evals < 40, "%d iterations, %d evaluations", iters, r.evals);
    CHECK_MSG(loss < 24.2f && loss > 1e-3f, "loss %g", (double)loss);
    for (int i = 0; i < 2; i++) nb_tensor_free(r.x[i]);
}

typedef struct logreg {
    nb_tensor *X, *y, *w, *b; /* X [N, D], y [N, 1] in {0,1}, w [D, 1], b [1] */
    float lam;
} logreg;

/* mean_i [log(1 + e^{z_i}) - y_i z_i] + lam/2 ||w||^2, z = X w + b (eq. 5.81's
 * negative log-likelihood, with an L2 term so the minimizer is unique). */
static float logreg_loss(void *ctx) {
    logreg *p = ctx;
    nb_tensor *z = nb_add(nb_matmul(nb_detach(p->X), p->w), p->b);
    nb_tensor *nll = nb_sub(nb_log(nb_add_scalar(nb_exp(z), 1.f)), nb_mul(nb_detach(p->y), z));
    nb_tensor *L = nb_add(nb_mul_scalar(nb_sum_all(nll), 1.f / (float)p->X->shape[0]),
                          nb_mul_scalar(nb_sum_all(nb_square(p->w)), p->lam / 2));
    nb_backward(L);
    return nb_item(L);
}

/* Solves A x = r (n x n, row-major, A and r destroyed) by Gaussian elimination
 * with partial pivoting. */
static void solve(double *A, double *r, double *x, int n) {
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int i = c + 1; i < n; i++)
            if (fabs(A[i * n + c]) > fabs(A[piv * n + c])) piv = i;
        for (int j = 0; j < n; j++) {
            double t = A[c * n + j];
            A[c * n + j] = A[piv * n + j];
            A[piv * n + j] = t;
        }
        double t = r[c];
        r[c] = r[piv];
        r[piv] = t;
        for (int i = c + 1; i < n; i++) {
            double f = A[i * n + c] / A[c * n + c];
            for (int j = c; j < n; j++)
                A[i * n + j] -= f * A[c * n + j];
            r[i] -= f * r[c];
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = r[i];
        for (int j = i + 1; j < n; j++)
            s -= A[i * n + j] * x[j];
        x[i] = s / A[i * n + i];
    }
}

TEST(test_lbfgs_logistic_regression) {
    enum { N = 200, D = 3 };
    const double wt[D] = {1.5, -2.0, 0.5}, bt = 0.3;
    logreg p = {nb_tensor_new(2, (int64_t[]){N, D}), nb_tensor_new(2, (int64_t[]){N, 1}),
                nb_tensor_new(2, (int64_t[]){D, 1}), nb_tensor_new(1, (int64_t[]){1}), 0.01f};
    nb_init_normal(p.X, 0, 1, nb_test_rng());
    for (int i = 0; i < N; i++) {
        double z = bt;
        for (int j = 0; j < D; j++)
            z += wt[j] * p.X->data[i * D + j];
        p.y->data[i] = nb_rng_uniform(nb_test_rng()) < 1 / (1 + exp(-z)) ? 1.f : 0.f;
    }
    nb_requires_grad(p.w, true);
    nb_requires_grad(p.b, true);
    int iters = 0;
    float loss = nb_lbfgs((nb_param[]){{p.w, true}, {p.b, false}}, 2, logreg_loss, &p,
                          &(nb_lbfgs_opts){.tol_grad = 1e-6f}, &iters);

    /* Reference: Newton's method in double on theta = (w, b). */
    double th[D + 1] = {0};
    for (int it = 0; it < 30; it++) {
        double g[D + 1] = {0}, Hs[(D + 1) * (D + 1)] = {0}, step[D + 1];
        for (int i = 0; i < N; i++) {
            double xi[D + 1], z = 0;
            for (int j = 0; j < D; j++)
                xi[j] = p.X->data[i * D + j];
            xi[D] = 1;
            for (int j = 0; j <= D; j++)
                z += th[j] * xi[j];
            double s = 1 / (1 + exp(-z));
            for (int j = 0; j <= D; j++) {
                g[j] += (s - p.y->data[i]) * xi[j] / N;
                for (int k = 0; k <= D; k++)
                    Hs[j * (D + 1) + k] += s * (1 - s) * xi[j] * xi[k] / N;
            }
        }
        for (int j = 0; j < D; j++)
            g[j] += p.lam * th[j], Hs[j * (D + 1) + j] += p.lam;
        solve(Hs, g, step, D + 1);
        for (int j = 0; j <= D; j++)
            th[j] -= step[j];
    }
    for (int j = 0; j < D; j++)
        CHECK_NEAR(p.w->data[j], th[j], 1e-3);
    CHECK_NEAR(p.b->data[0], th[D], 1e-3);
    CHECK_MSG(iters > 0 && iters <= 20, "%d iterations", iters);
    /* The returned loss and .grad describe the returned point. */
    float again = logreg_loss(&p);
    nb_arena_reset();
    CHECK_NEAR(loss, again, 1e-6);
    nb_tensor_free(p.X), nb_tensor_free(p.y), nb_tensor_free(p.w), nb_tensor_free(p.b);
}

typedef struct dwell {
    nb_tensor *x;
    int evals;
} dwell;

/* The double well (x^2 - 1)^2. */
static float dwell_loss(void *ctx) {
    dwell *p = ctx;
    p->evals++;
    nb_tensor *L = nb_sum_all(nb_square(nb_add_scalar(nb_square(p->x), -1.f)));
    nb_backward(L);
    return nb_item(L);
}

TEST(test_lbfgs_line_search_satisfies_strong_wolfe) {
    /* One iteration from x0 = 3 along d = -g0, first trial t = lr/|g0|: lr 10
     * overshoots far into the other wall (zoom), lr 0.01 barely moves
     * (extrapolation), lr 1 is accepted at once. Wherever it ends, the step
     * must satisfy both strong-Wolfe conditions (c1 = 1e-4, c2 = 0.9, N&W
     * eq. 3.7) and cost only a few evaluations. */
    const float lrs[3] = {10.f, 0.01f, 1.f};
    const int max_evals[3] = {8, 8, 2};
    for (int k = 0; k < 3; k++) {
        double x0 = 3.0;
        dwell p = {param_from(1, &x0), 0};
        double f0 = pow(x0 * x0 - 1, 2), g0 = 4 * x0 * (x0 * x0 - 1);
        int iters = 0;
        float loss =
            nb_lbfgs(&(nb_param){p.x, true}, 1, dwell_loss, &p, &(nb_lbfgs_opts){.max_iter = 1, .lr = lrs[k]}, &iters);
        double x = p.x->data[0], f = pow(x * x - 1, 2), g = 4 * x * (x * x - 1), t = (x0 - x) / g0;
        CHECK(iters == 1);
        CHECK_NEAR(loss, f, 1e-5);
        CHECK_MSG(f <= f0 - 1e-4 * t * g0 * g0, "lr %g: no sufficient decrease: f %g at x %g", (double)lrs[k], f, x);
        CHECK_MSG(fabs(g * g0) <= 0.9 * g0 * g0, "lr %g: curvature condition fails at x %g", (double)lrs[k], x);
        CHECK_MSG(p.evals <= max_evals[k], "lr %g: %d evaluations", (double)lrs[k], p.evals);
        nb_tensor_free(p.x);
    }
}

TEST(test_lbfgs_stops_at_once_at_an_optimum) {
    /* Already at the minimizer of the quadratic: zero iterations, one call. */
    quad q = {nb_tensor_new(2, (int64_t[]){3, 1}), nb_tensor_new(2, (int64_t[]){3, 3}),
              nb_tensor_new(2, (int64_t[]){3, 1}), 0.f};
    for (int i = 0; i < 3; i++)
        q.H->data[i * 4] = 1.f, q.wstar->data[i] = q.w->data[i] = (float)i;
    nb_requires_grad(q.w, true);
    int iters = -1;
    float loss = nb_lbfgs(&(nb_param){q.w, false}, 1, quad_loss, &q, NULL, &iters);
    CHECK(iters == 0 && loss == 0.f);
    CHECK(q.w->data[2] == 2.f);
    nb_tensor_free(q.w), nb_tensor_free(q.H), nb_tensor_free(q.wstar);
}

/* --- clipping and schedules ------------------------------------------------------ */

static void clip_to(void *c) {
    nb_tensor *w = nb_tensor_new(1, (int64_t[]){2});
    nb_requires_grad(w, true);
    nb_clip_grad_norm(&(nb_param){w, true}, 1, *(const float *)c);
}

TEST(test_clip_grad_norm_refuses_a_negative_or_nan_max_norm) {
    /* A NaN bound made the scale NaN, which compares false: no clipping at
     * all, silently. */
    static const float neg = -1.f, nan = NAN;
    nb_test_expect_fatal("max_norm -1", clip_to, (void *)&neg, (const char *[]){"clip_grad_norm", "got -1", NULL});
    nb_test_expect_fatal("max_norm nan", clip_to, (void *)&nan, (const char *[]){"clip_grad_norm", "got nan", NULL});
}

TEST(test_clip_grad_norm) {
    nb_tensor *a = param_from(2, (double[]){0, 0}), *c = param_from(1, (double[]){0}),
              *frozen = nb_tensor_new(1, (int64_t[]){1});
    nb_param ps[3] = {{a, true}, {c, false}, {frozen, false}};
    /* Global norm of (3, 4, 12) is 13. */
    const double ga[2] = {3, 4}, gc[1] = {12};
    set_grad(a, ga, 2);
    set_grad(c, gc, 1);
    float norm = nb_clip_grad_norm(ps, 3, 20.f);
    CHECK_NEAR(norm, 13.0, 1e-7);
    CHECK(a->grad->data[0] == 3.f && c->grad->data[0] == 12.f); /* under the limit: untouched */
    CHECK_NEAR(nb_clip_grad_norm(ps, 3, 10.f), 13.0, 1e-7);
    CHECK_NEAR(c->grad->data[0], 12 * 10 / (13 + 1e-6), 1e-7);
    set_grad(a, ga, 2);
    set_grad(c, gc, 1);
    norm = nb_clip_grad_norm(ps, 3, 1.f);
    CHECK_NEAR(norm, 13.0, 1e-7);
    double s = 1.0 / (13.0 + 1e-6);
    CHECK_NEAR(a->grad->data[0], 3 * s, 1e-7);
    CHECK_NEAR(a->grad->data[1], 4 * s, 1e-7);
    CHECK_NEAR(c->grad->data[0], 12 * s, 1e-7);
    set_grad(a, ga, 2);
    set_grad(c, gc, 1);
    CHECK_NEAR(nb_clip_grad_norm(ps, 3, 13.f), 13.0, 1e-7); /* at the limit: PyTorch's coef < 1 by 1e-6 */
    CHECK_NEAR(a->grad->data[0], 3 * 13 / (13 + 1e-6), 1e-7);
    /* A large gradient (parallel path) against a double sum. */
    int n = 100003;
    nb_tensor *big = nb_tensor_new(1, (int64_t[]){n});
    nb_requires_grad(big, true);
    nb_init_normal(big->grad, 0, 1, nb_test_rng());
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)big->grad->data[i] * big->grad->data[i];
    float g0 = big->grad->data[7];
    norm = nb_clip_grad_norm(&(nb_param){big, true}, 1, 5.f);
    CHECK_NEAR(norm, sqrt(ss), 1e-6);
    CHECK_NEAR(big->grad->data[7], g0 * 5.0 / (sqrt(ss) + 1e-6), 1e-6);
    nb_tensor_free(a), nb_tensor_free(c), nb_tensor_free(frozen), nb_tensor_free(big);
}

/* A NaN or inf gradient: the norm says so (nb_grad_norm and the value
 * nb_clip_grad_norm returns) and clipping leaves every gradient as it was.
 * An inf made the norm inf and the scale 0: the finite gradients became 0 and
 * the inf a NaN (PyTorch's clip_grad_norm_ with error_if_nonfinite=False
 * does the same), so a caller that stepped anyway wrote NaN into the weights
 * and the gradient that overflowed could no longer be found. A norm beyond
 * float32 from finite gradients is finite in double and is clipped. */
TEST(test_clip_grad_norm_nonfinite_leaves_gradients) {
    nb_tensor *a = param_from(2, (double[]){0, 0}), *c = param_from(1, (double[]){0});
    nb_param ps[2] = {{a, true}, {c, false}};
    const double bad[2] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        set_grad(a, (double[]){3, bad[k]}, 2);
        set_grad(c, (double[]){12}, 1);
        double norm = nb_grad_norm(ps, 2);
        CHECK_MSG(k ? isinf(norm) : isnan(norm), "case %d: norm %g", k, norm);
        float clipped = nb_clip_grad_norm(ps, 2, 1.f);
        CHECK_MSG(k ? isinf(clipped) : isnan(clipped), "case %d: returned %g", k, (double)clipped);
        CHECK_MSG(a->grad->data[0] == 3.f && c->grad->data[0] == 12.f &&
                      (k ? isinf(a->grad->data[1]) : isnan(a->grad->data[1])),
                  "case %d: gradients changed to %g %g %g", k, (double)a->grad->data[0], (double)a->grad->data[1],
                  (double)c->grad->data[0]);
    }
    set_grad(a, (double[]){3e38, 3e38}, 2);
    set_grad(c, (double[]){0}, 1);
    double norm = nb_grad_norm(ps, 2);
    CHECK_NEAR(norm / 3e38, sqrt(2.0), 1e-6);
    nb_clip_grad_norm(ps, 2, 1.f);
    CHECK_NEAR(a->grad->data[1], 1 / sqrt(2.0), 1e-6);
    nb_tensor_free(a), nb_tensor_free(c);
    /* A parameter without a gradient (frozen, or not reached by the loss)
     * is skipped, not the end of the list. */
    nb_tensor *none = nb_tensor_new(1, (int64_t[]){1}), *g = param_from(2, (double[]){0, 0});
    set_grad(g, (double[]){3, 4}, 2);
    nb_param pair[2] = {{none, true}, {g, true}};
    CHECK(none->grad == NULL);
    CHECK_NEAR(nb_grad_norm(pair, 2), 5.0, 1e-12);
    nb_tensor_free(none), nb_tensor_free(g);
}

static void lr_step_every_0(void *c) { nb_lr_step(0.1f, 5, 0, 0.5f); }

TEST(test_lr_step_schedule) {
    CHECK_NEAR(nb_lr_step(0.1f, 0, 10, 0.5f), 0.1, 1e-7);
    CHECK_NEAR(nb_lr_step(0.1f, 9, 10, 0.5f), 0.1, 1e-7);
    CHECK_NEAR(nb_lr_step(0.1f, 10, 10, 0.5f), 0.05, 1e-7);
    CHECK_NEAR(nb_lr_step(0.1f, 25, 10, 0.5f), 0.025, 1e-7);
    CHECK_NEAR(nb_lr_step(1.f, 3000, 1000, 0.1f), 1e-3, 1e-9);
    /* a step before the start is the start (C's -15 / 10 is -1: gamma^-1) */
    CHECK_NEAR(nb_lr_step(0.1f, -15, 10, 0.5f), 0.1, 1e-7);
    nb_test_expect_fatal("every 0", lr_step_every_0, NULL, (const char *[]){"lr_step", "every must be > 0, got 0", NULL});
}

TEST(test_lr_cosine_schedule) {
    const double pi = 3.14159265358979323846;
    CHECK_NEAR(nb_lr_cosine(0.1f, 0, 100, 0.001f), 0.1, 1e-7);
    CHECK_NEAR(nb_lr_cosine(0.1f, 50, 100, 0.001f), (0.1 + 0.001) / 2, 1e-7);
    CHECK_NEAR(nb_lr_cosine(0.1f, 25, 100, 0.001f), 0.001 + 0.099 * (1 + cos(pi / 4)) / 2, 1e-7);
    CHECK_NEAR(nb_lr_cosine(0.1f, 100, 100, 0.001f), 0.001, 1e-9);
    CHECK_NEAR(nb_lr_cosine(0.1f, 1000, 100, 0.001f), 0.001, 1e-9); /* clamped after the end */
    CHECK_NEAR(nb_lr_cosine(0.1f, -50, 100, 0.001f), 0.1, 1e-7);    /* and before the start */
    /* Monotone non-increasing over the schedule. */
    float prev = 1.f;
    for (int s = 0; s <= 100; s++) {
        float lr = nb_lr_cosine(0.1f, s, 100, 0.f);
        CHECK(lr <= prev);
        prev = lr;
    }
}

/* L-BFGS's history (2 x history vectors of the parameters) larger than
 * memory ends through the out-of-memory handler, like a tensor, not an abort
 * (nb_fatal, meant for misuse): `nabla style` died of SIGABRT under ulimit -v.
 * In a child, whose handler exits with status 3 once it is called. */
static float zero_loss(void *ctx) {
    (void)ctx;
    return 0;
}
static void exit_3(const char *op, size_t bytes) {
    (void)op, (void)bytes;
    _exit(3);
}
TEST(test_lbfgs_history_out_of_memory_calls_the_handler) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        nb_set_oom_handler(exit_3);
        nb_tensor *w = nb_tensor_new(1, (int64_t[]){1 << 16});
        nb_requires_grad(w, true);
        /* 2 x 2^30 vectors of 2^16 doubles: 2^50 bytes */
        nb_lbfgs(&(nb_param){w, true}, 1, zero_loss, NULL, &(nb_lbfgs_opts){.history = 1 << 30}, NULL);
        _exit(0);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 3, "the child %s %d", WIFSIGNALED(st) ? "died of signal" : "exited",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}
