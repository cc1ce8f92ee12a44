/* test_curvature.c — notes §1.3 (eq. 4.6-4.10) and the chain rule of §2.1
 * (eq. 6.45-6.46): Jacobians and Hessians from reverse mode against closed
 * forms and finite differences of gradients, the second-order expansion and
 * step, the second-derivative test, and Lanczos / Hutchinson (H never formed)
 * against LAPACK on the explicit Hessian. */
#include "test.h"
#include <stdlib.h>

/* --- a small network with a choice of activation ----------------------------- */

enum { ACT_TANH, ACT_SIGMOID, ACT_RELU, ACT_LEAKY, ACT_ABS, ACT_PRELU, ACT_SOFTPLUS, ACT_EXP, NACT };
static const char *act_names[NACT] = {"tanh", "sigmoid", "relu", "leaky_relu", "abs", "prelu", "softplus", "exp"};

typedef struct {
    int act;
    nb_tensor *x;       /* [5, 3] inputs */
    int32_t labels[5];
} net_ctx;

static nb_tensor *activate(int act, nb_tensor *z, nb_tensor *slope) {
    switch (act) {
    case ACT_TANH: return nb_tanh(z);
    case ACT_SIGMOID: return nb_sigmoid(z);
    case ACT_RELU: return nb_relu(z);
    case ACT_LEAKY: return nb_leaky_relu(z, 0.1f);
    case ACT_ABS: return nb_abs_rect(z);
    case ACT_PRELU: return nb_prelu(z, slope);
    case ACT_SOFTPLUS: return nb_log(nb_add_scalar(nb_exp(z), 1.f));
    default: return nb_exp(nb_mul_scalar(z, 0.5f));
    }
}

/* params: W1 [H, 3], b1 [H], W2 [2, H], b2 [2] (and a PReLU slope [1]);
 * loss = mean cross-entropy of linear(act(linear(x))). */
static nb_tensor *net_loss(nb_tensor **p, int n, void *c) {
    net_ctx *k = c;
    nb_tensor *h = activate(k->act, nb_linear(k->x, p[0], p[1]), n > 4 ? p[4] : NULL);
    return nb_cross_entropy(nb_linear(h, p[2], p[3]), k->labels);
}

static int make_net(net_ctx *k, int act, int64_t hidden, nb_tensor **p) {
    k->act = act;
    k->x = nb_tensor_new(NB_SHAPE(5, 3));
    for (int i = 0; i < 5; i++) k->labels[i] = i % 2;
    int n = act == ACT_PRELU ? 5 : 4;
    /* Keep pre-activations away from the kinks of the piecewise-linear
     * activations, so finite differences do not straddle one. */
    for (int tries = 0;; tries++) {
        nb_init_normal(k->x, 0.f, 1.f, nb_test_rng());
        p[0] = nb_test_param(NB_SHAPE(hidden, 3), 0.8f);
        p[1] = nb_test_param(NB_SHAPE(hidden), 0.5f);
        p[2] = nb_test_param(NB_SHAPE(2, hidden), 0.8f);
        p[3] = nb_test_param(NB_SHAPE(2), 0.5f);
        if (n == 5) {
            p[4] = nb_test_param(NB_SHAPE(1), 0.1f);
            p[4]->data[0] = 0.25f;
        }
        double closest = INFINITY;
        for (int i = 0; i < 5; i++)
            for (int64_t j = 0; j < hidden; j++) {
                double z = p[1]->data[j];
                for (int l = 0; l < 3; l++) z += k->x->data[i * 3 + l] * p[0]->data[j * 3 + l];
                closest = fmin(closest, fabs(z));
            }
        if (closest > 0.02 || tries > 100) break;
        for (int i = 0; i < n; i++) nb_tensor_free(p[i]);
    }
    return n;
}

static void free_net(net_ctx *k, nb_tensor **p, int n) {
    nb_tensor_free(k->x);
    for (int i = 0; i < n; i++) nb_tensor_free(p[i]);
}

static int64_t total(nb_tensor **p, int n) {
    int64_t N = 0;
    for (int i = 0; i < n; i++) N += p[i]->size;
    return N;
}

static float *entry(nb_tensor **p, int n, int64_t j) {
    for (int i = 0; i < n; i++) {
        if (j < p[i]->size) return p[i]->data + j;
        j -= p[i]->size;
    }
    return NULL;
}

/* The gradient of f at the params as a flat double vector (and the loss). */
static double grad_flat(nb_loss_fn f, void *ctx, nb_tensor **p, int n, double *g) {
    nb_tensor *L = f(p, n, ctx), *gr[8];
    double loss = L->data[0];
    nb_grad(L, p, n, gr, false);
    int64_t off = 0;
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < gr[i]->size; j++) g[off++] = gr[i]->data[j];
    nb_arena_reset();
    return loss;
}

static double loss_at(nb_loss_fn f, void *ctx, nb_tensor **p, int n) {
    bool old = nb_set_grad_enabled(false);
    double l = nb_item(f(p, n, ctx));
    nb_set_grad_enabled(old);
    nb_arena_reset();
    return l;
}

/* --- the Jacobian ---------------------------------------------------------- */

typedef struct { nb_tensor *A, *B, *v; } jac_ctx;

/* f(x) = exp(A x) * (B x), x [4, 1] -> [3, 1] */
static nb_tensor *f_expmul(nb_tensor **p, int n, void *c) {
    jac_ctx *k = c;
    return nb_mul(nb_exp(nb_matmul(k->A, p[0])), nb_matmul(k->B, p[0]));
}

/* f(W, b) = tanh(W v + b), W [3, 2], b [3] -> [3] */
static nb_tensor *f_layer(nb_tensor **p, int n, void *c) {
    jac_ctx *k = c;
    return nb_tanh(nb_add(nb_reshape(nb_matmul(p[0], k->v), NB_SHAPE(3)), p[1]));
}

TEST(test_eq_jacobian_rows_by_reverse_mode) {
    jac_ctx k = {nb_tensor_new(NB_SHAPE(3, 4)), nb_tensor_new(NB_SHAPE(3, 4)), nb_tensor_new(NB_SHAPE(2, 1))};
    nb_init_normal(k.A, 0, 0.5f, nb_test_rng());
    nb_init_normal(k.B, 0, 1, nb_test_rng());
    nb_init_normal(k.v, 0, 1, nb_test_rng());
    nb_tensor *x = nb_test_param(NB_SHAPE(4, 1), 1.f);
    nb_tensor *J = nb_jacobian(f_expmul, &k, &x, 1);
    CHECK(J && J->shape[0] == 3 && J->shape[1] == 4);
    /* J_ij = d f_i / d x_j = e^{(Ax)_i} (A_ij (Bx)_i + B_ij). */
    for (int i = 0; J && i < 3; i++) {
        double ax = 0, bx = 0;
        for (int j = 0; j < 4; j++) ax += k.A->data[i * 4 + j] * x->data[j], bx += k.B->data[i * 4 + j] * x->data[j];
        for (int j = 0; j < 4; j++)
            CHECK_NEAR(J->data[i * 4 + j], exp(ax) * (k.A->data[i * 4 + j] * bx + k.B->data[i * 4 + j]), 1e-5);
    }
    /* Two parameter tensors: columns are W's 6 entries, then b's 3. */
    nb_tensor *p[2] = {nb_test_param(NB_SHAPE(3, 2), 1.f), nb_test_param(NB_SHAPE(3), 1.f)};
    nb_tensor *J2 = nb_jacobian(f_layer, &k, p, 2);
    CHECK(J2 && J2->shape[0] == 3 && J2->shape[1] == 9);
    for (int i = 0; J2 && i < 3; i++) {
        double t = tanh(p[0]->data[2 * i] * k.v->data[0] + p[0]->data[2 * i + 1] * k.v->data[1] + p[1]->data[i]);
        double d = 1 - t * t;
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 2; c++) CHECK_NEAR(J2->data[i * 9 + r * 2 + c], r == i ? d * k.v->data[c] : 0, 1e-5);
        for (int r = 0; r < 3; r++) CHECK_NEAR(J2->data[i * 9 + 6 + r], r == i ? d : 0, 1e-5);
    }
    nb_tensor *all[] = {k.A, k.B, k.v, x, J, p[0], p[1], J2};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- eq. 6.45-6.46: the chain rule -------------------------------------------- */

/* z = f(y), y = g(x): g(x) = tanh(A x) * exp(0.3 B x), x [n, 1] -> y [m, 1];
 * f(y) = sum softplus(C y) * sigmoid(D y) -> scalar. Random smooth maps, so
 * every dy_j/dx_i and dz/dy_j is nonzero. */
typedef struct { nb_tensor *A, *B, *C, *D, *W; } chain_ctx;

static nb_tensor *chain_g(nb_tensor **p, int n, void *c) {
    chain_ctx *k = c;
    return nb_mul(nb_tanh(nb_matmul(k->A, p[0])), nb_exp(nb_mul_scalar(nb_matmul(k->B, p[0]), 0.3f)));
}

static nb_tensor *chain_f(nb_tensor **p, int n, void *c) {
    chain_ctx *k = c;
    nb_tensor *u = nb_matmul(k->C, p[0]);
    return nb_sum_all(nb_mul(nb_log(nb_add_scalar(nb_exp(u), 1.f)), nb_sigmoid(nb_matmul(k->D, p[0]))));
}

static double chain_at(nb_loss_fn fn, chain_ctx *k, nb_tensor *x, int64_t i) {
    bool old = nb_set_grad_enabled(false);
    double v = fn(&x, 1, k)->data[i];
    nb_set_grad_enabled(old);
    nb_arena_reset();
    return v;
}

TEST(test_eq_6_45_chain_rule_sums_over_the_intermediate_variables) {
    nb_rng *r = nb_test_rng();
    int64_t n = 2 + nb_rng_below(r, 5), m = 2 + nb_rng_below(r, 5), kk = 2 + nb_rng_below(r, 4);
    chain_ctx k = {nb_test_param(NB_SHAPE(m, n), 0.6f), nb_test_param(NB_SHAPE(m, n), 0.6f),
                   nb_test_param(NB_SHAPE(kk, m), 0.8f), nb_test_param(NB_SHAPE(kk, m), 0.8f), NULL};
    nb_tensor *x = nb_test_param(NB_SHAPE(n, 1), 1.f);
    /* Reverse mode through the composition z = f(g(x)). */
    nb_tensor *gx;
    nb_grad(chain_f((nb_tensor *[]){chain_g(&x, 1, &k)}, 1, &k), &x, 1, &gx, false);
    float *auto_gx = malloc(sizeof(float) * (size_t)n);
    memcpy(auto_gx, gx->data, sizeof(float) * (size_t)n);
    nb_arena_reset();
    /* The factors of eq. 6.45 by central differences alone, no autodiff:
     * dy_j/dx_i of g at x, and dz/dy_j of f at y = g(x). */
    double h = 1e-2, *J = malloc(sizeof(double) * (size_t)(m * n + m)), *gy = J + m * n;
    for (int64_t i = 0; i < n; i++) {
        float x0 = x->data[i];
        for (int64_t j = 0; j < m; j++) {
            x->data[i] = x0 + (float)h;
            double up = chain_at(chain_g, &k, x, j);
            x->data[i] = x0 - (float)h;
            J[j * n + i] = (up - chain_at(chain_g, &k, x, j)) / (2 * h);
        }
        x->data[i] = x0;
    }
    nb_tensor *y = nb_tensor_new(NB_SHAPE(m, 1));
    for (int64_t j = 0; j < m; j++) y->data[j] = (float)chain_at(chain_g, &k, x, j);
    for (int64_t j = 0; j < m; j++) {
        float y0 = y->data[j];
        y->data[j] = y0 + (float)h;
        double up = chain_at(chain_f, &k, y, 0);
        y->data[j] = y0 - (float)h;
        gy[j] = (up - chain_at(chain_f, &k, y, 0)) / (2 * h);
        y->data[j] = y0;
    }
    /* eq. 6.45: (grad_x z)_i = sum_j (grad_y z)_j dy_j/dx_i. */
    double big = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < m; j++) s += gy[j] * J[j * n + i];
        CHECK_MSG(fabs(auto_gx[i] - s) <= 2e-3 * fmax(1, fabs(s)), "n %lld m %lld: (grad_x z)_%lld = %g, eq. 6.45 sum %g",
                  (long long)n, (long long)m, (long long)i, auto_gx[i], s);
        big = fmax(big, fabs(s));
    }
    CHECK(big > 1e-2); /* a gradient that is not (nearly) zero */
    free(J);
    free(auto_gx);
    nb_tensor *all[] = {k.A, k.B, k.C, k.D, x, y};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* A three-stage chain on matrices: X [p, q] -> Y = tanh(X W) [p, r] ->
 * V = Y * sigmoid(Y) [p, r] -> z = f(V) with f = chain_f on V's flattening. */
static nb_tensor *chain_y(nb_tensor **p, int n, void *c) { return nb_tanh(nb_matmul(p[0], ((chain_ctx *)c)->W)); }
static nb_tensor *chain_v(nb_tensor **p, int n, void *c) { return nb_mul(p[0], nb_sigmoid(p[0])); }
static nb_tensor *chain_z(nb_tensor **p, int n, void *c) {
    nb_tensor *flat = nb_reshape(p[0], NB_SHAPE(-1, 1));
    return chain_f(&flat, 1, c);
}

TEST(test_eq_6_46_gradient_is_jacobian_transpose_times_gradient) {
    nb_rng *r = nb_test_rng();
    int64_t P = 2 + nb_rng_below(r, 3), Q = 2 + nb_rng_below(r, 4), R = 2 + nb_rng_below(r, 3), M = P * R;
    int64_t K = 3;
    chain_ctx k = {NULL, NULL, nb_test_param(NB_SHAPE(K, M), 0.6f), nb_test_param(NB_SHAPE(K, M), 0.6f),
                   nb_test_param(NB_SHAPE(Q, R), 0.7f)};
    nb_tensor *X = nb_test_param(NB_SHAPE(P, Q), 1.f);
    /* The Jacobians of the two inner stages (nb_jacobian, row by row), each
     * checked against its closed form: dY_ab/dX_cd = [a = c] (1 - Y_ab^2) W_db,
     * and V = Y sigmoid(Y) acts elementwise, so J_V is diagonal with
     * s + y s (1 - s), s = sigmoid(y). */
    nb_tensor *Jy = nb_jacobian(chain_y, &k, &X, 1);
    CHECK(Jy && Jy->shape[0] == M && Jy->shape[1] == P * Q);
    nb_tensor *Y = nb_tensor_clone(chain_y(&X, 1, &k));
    nb_arena_reset();
    for (int64_t a = 0; Jy && a < P; a++)
        for (int64_t b = 0; b < R; b++)
            for (int64_t c = 0; c < P; c++)
                for (int64_t d = 0; d < Q; d++) {
                    double y = Y->data[a * R + b], want = a == c ? (1 - y * y) * k.W->data[d * R + b] : 0;
                    CHECK_NEAR(Jy->data[(a * R + b) * (P * Q) + c * Q + d], want, 1e-5);
                }
    nb_tensor *Jv = nb_jacobian(chain_v, &k, &Y, 1);
    CHECK(Jv && Jv->shape[0] == M && Jv->shape[1] == M);
    for (int64_t i = 0; Jv && i < M; i++)
        for (int64_t j = 0; j < M; j++) {
            double y = Y->data[i], s = 1 / (1 + exp(-y));
            CHECK_NEAR(Jv->data[i * M + j], i == j ? s + y * s * (1 - s) : 0, 1e-5);
        }
    /* grad_V z at V = v(Y), by reverse mode on f alone. */
    nb_tensor *V = nb_tensor_clone(chain_v(&Y, 1, &k));
    nb_arena_reset();
    nb_requires_grad(V, true);
    nb_tensor *gv;
    nb_grad(chain_z(&V, 1, &k), &V, 1, &gv, false);
    double *gvd = malloc(sizeof(double) * (size_t)(2 * M + P * Q)), *gyd = gvd + M, *gxd = gyd + M;
    for (int64_t i = 0; i < M; i++) gvd[i] = gv->data[i];
    nb_arena_reset();
    /* eq. 6.46 twice, in double: grad_Y z = J_V^T grad_V z, then
     * grad_X z = J_Y^T grad_Y z. */
    for (int64_t j = 0; Jv && j < M; j++) {
        gyd[j] = 0;
        for (int64_t i = 0; i < M; i++) gyd[j] += Jv->data[i * M + j] * gvd[i];
    }
    for (int64_t j = 0; Jy && j < P * Q; j++) {
        gxd[j] = 0;
        for (int64_t i = 0; i < M; i++) gxd[j] += Jy->data[i * (P * Q) + j] * gyd[i];
    }
    /* Against one reverse pass through the whole composition. */
    nb_tensor *y = chain_y(&X, 1, &k), *v = chain_v(&y, 1, &k), *gx;
    nb_grad(chain_z(&v, 1, &k), &X, 1, &gx, false);
    double big = 0;
    for (int64_t j = 0; Jy && Jv && j < P * Q; j++) {
        CHECK_NEAR(gx->data[j], gxd[j], 1e-5);
        big = fmax(big, fabs(gxd[j]));
    }
    CHECK(big > 1e-3);
    free(gvd);
    nb_tensor *all[] = {k.C, k.D, k.W, X, Y, V, Jy, Jv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- eq. 4.6: the Hessian ---------------------------------------------------- */

TEST(test_eq_4_6_hessian_vs_finite_differences_every_activation) {
    for (int act = 0; act < NACT; act++) {
        net_ctx k;
        nb_tensor *p[5];
        int n = make_net(&k, act, 3, p);
        int64_t N = total(p, n);
        nb_tensor *H = nb_hessian(net_loss, &k, p, n);
        CHECK_MSG(H && H->shape[0] == N && H->shape[1] == N, "%s: %s", act_names[act], nb_errmsg());
        if (!H) continue;
        /* Column j: central differences of the exact gradient along e_j. */
        double *gp = malloc(sizeof(double) * (size_t)N * 2), *gm = gp + N, eps = 1e-3, worst = 0, big = 0;
        for (int64_t j = 0; j < N; j++) {
            float *e = entry(p, n, j), x0 = *e;
            *e = x0 + (float)eps;
            grad_flat(net_loss, &k, p, n, gp);
            *e = x0 - (float)eps;
            grad_flat(net_loss, &k, p, n, gm);
            *e = x0;
            for (int64_t i = 0; i < N; i++) {
                double fd = (gp[i] - gm[i]) / (2 * eps);
                worst = fmax(worst, fabs(fd - H->data[i * N + j]));
                big = fmax(big, fabs(fd));
            }
        }
        CHECK_MSG(worst <= 2e-3 * fmax(1, big), "%s: max |H - finite differences| = %g (max |H| %g)",
                  act_names[act], worst, big);
        for (int64_t i = 0; i < N; i++) /* eq. 4.6 is symmetric (mixed partials commute) */
            for (int64_t j = 0; j < i; j++) CHECK(H->data[i * N + j] == H->data[j * N + i]);
        free(gp);
        nb_tensor_free(H);
        free_net(&k, p, n);
    }
}

/* --- eq. 4.8-4.9: the second-order expansion -------------------------------- */

TEST(test_eq_4_8_second_order_expansion) {
    net_ctx k;
    nb_tensor *p[5];
    int n = make_net(&k, ACT_TANH, 4, p);
    int64_t N = total(p, n);
    nb_tensor *H = nb_hessian(net_loss, &k, p, n);
    double *g = malloc(sizeof(double) * (size_t)N * 3), *d = g + N, *x0 = d + N;
    double f0 = grad_flat(net_loss, &k, p, n, g);
    /* The direction: the top eigenvector of H (from LAPACK), so the quadratic
     * term is well above float32 rounding and the cubic remainder. */
    nb_tensor *w, *Q;
    CHECK(nb_linalg_eigh(H, &w, &Q) == 0);
    for (int64_t j = 0; j < N; j++) d[j] = Q->data[j * N], x0[j] = *entry(p, n, j);
    double dg = 0, dHd = 0;
    for (int64_t i = 0; i < N; i++) {
        dg += d[i] * g[i];
        for (int64_t j = 0; j < N; j++) dHd += d[i] * H->data[i * N + j] * d[j];
    }
    /* eq. 4.8 along x = x0 + t d. Its quadratic term is the curvature: the
     * central second difference (f(x0 + td) + f(x0 - td) - 2 f0) / t^2 tends
     * to d^T H d (odd orders cancel). And it is what the first-order model
     * misses: the first-order error shrinks like t^2 and the second-order
     * expansion removes most of it. */
    double fs[2][3], ts[3] = {0.1, 0.05, 0.025};
    for (int s = 0; s < 3; s++)
        for (int sg = 0; sg < 2; sg++) {
            for (int64_t j = 0; j < N; j++) *entry(p, n, j) = (float)(x0[j] + (sg ? -ts[s] : ts[s]) * d[j]);
            fs[sg][s] = loss_at(net_loss, &k, p, n);
        }
    for (int64_t j = 0; j < N; j++) *entry(p, n, j) = (float)x0[j];
    double cd = (fs[0][2] + fs[1][2] - 2 * f0) / (ts[2] * ts[2]);
    CHECK_MSG(fabs(cd - dHd) <= 2e-3 + 2e-2 * fabs(dHd), "central difference %g vs d^T H d %g", cd, dHd);
    double e1[3], e2[3];
    for (int s = 0; s < 3; s++) {
        e1[s] = fabs(fs[0][s] - (f0 + ts[s] * dg));
        e2[s] = fabs(fs[0][s] - (f0 + ts[s] * dg + 0.5 * ts[s] * ts[s] * dHd));
        if (s) CHECK_MSG(e2[s] < 0.5 * e1[s], "t = %g: second-order error %g, first-order %g", ts[s], e2[s], e1[s]);
    }
    CHECK_MSG(e1[1] / e1[2] > 3 && e1[1] / e1[2] < 5, "first-order error ratio %g", e1[1] / e1[2]);
    /* nb_directional_curvature gives d^T H d without forming H. */
    nb_tensor *dt = nb_tensor_new(NB_SHAPE(N));
    for (int64_t j = 0; j < N; j++) dt->data[j] = (float)d[j];
    double c;
    CHECK(nb_directional_curvature(net_loss, &k, p, n, dt, &c) == 0);
    CHECK_NEAR(c, dHd, 1e-4);
    CHECK_NEAR(c, w->data[0], 1e-4); /* along an eigenvector: its eigenvalue */
    for (int64_t j = 0; j < N; j++) dt->data[j] = (float)nb_rng_normal(nb_test_rng());
    double rHr = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) rHr += dt->data[i] * H->data[i * N + j] * dt->data[j];
    CHECK(nb_directional_curvature(net_loss, &k, p, n, dt, &c) == 0);
    CHECK_NEAR(c, rHr, 1e-4);
    free(g);
    nb_tensor_free(H);
    nb_tensor_free(w);
    nb_tensor_free(Q);
    nb_tensor_free(dt);
    free_net(&k, p, n);
}

TEST(test_eq_4_9_gradient_step_expansion) {
    /* eq. 4.9 is eq. 4.8 along x = x0 - eps g: f0 - eps g^T g + eps^2/2 g^T H g. */
    net_ctx k;
    nb_tensor *p[5];
    int n = make_net(&k, ACT_TANH, 4, p);
    int64_t N = total(p, n);
    nb_tensor *H = nb_hessian(net_loss, &k, p, n);
    double *g = malloc(sizeof(double) * (size_t)N * 2), *x0 = g + N;
    double f0 = grad_flat(net_loss, &k, p, n, g);
    for (int64_t j = 0; j < N; j++) x0[j] = *entry(p, n, j);
    double gg = 0, gHg = 0;
    for (int64_t i = 0; i < N; i++) {
        gg += g[i] * g[i];
        for (int64_t j = 0; j < N; j++) gHg += g[i] * H->data[i * N + j] * g[j];
    }
    CHECK(gg > 1e-6); /* a point that is not critical, or eq. 4.9 says nothing */
    /* Its two coefficients from the loss alone: along x0 -+ eps g the central
     * first difference is -g^T g (even orders cancel) and the second
     * difference g^T H g (odd orders cancel). Steps are sized by |g|, so the
     * move is t = eps |g| in parameter space. */
    double ts[3] = {0.1, 0.05, 0.025}, fm[3], fp[3], eps[3];
    for (int s = 0; s < 3; s++) {
        eps[s] = ts[s] / sqrt(gg);
        for (int64_t j = 0; j < N; j++) *entry(p, n, j) = (float)(x0[j] - eps[s] * g[j]);
        fm[s] = loss_at(net_loss, &k, p, n);
        for (int64_t j = 0; j < N; j++) *entry(p, n, j) = (float)(x0[j] + eps[s] * g[j]);
        fp[s] = loss_at(net_loss, &k, p, n);
    }
    for (int64_t j = 0; j < N; j++) *entry(p, n, j) = (float)x0[j];
    double lin = (fm[2] - fp[2]) / (2 * eps[2]), quad = (fm[2] + fp[2] - 2 * f0) / (eps[2] * eps[2]);
    CHECK_MSG(fabs(lin + gg) <= 2e-3 * gg + 1e-4, "central first difference %g vs -g^T g %g", lin, -gg);
    CHECK_MSG(fabs(quad - gHg) <= 2e-3 * gg + 3e-2 * fabs(gHg), "second difference %g vs g^T H g %g", quad, gHg);
    /* The quadratic model's error is third order (shrinks about 8x when eps
     * halves) where the linear model's is second order (about 4x). */
    double e1[3], e2[3];
    for (int s = 0; s < 3; s++) {
        e1[s] = fabs(fm[s] - (f0 - eps[s] * gg));
        e2[s] = fabs(fm[s] - (f0 - eps[s] * gg + 0.5 * eps[s] * eps[s] * gHg));
        CHECK_MSG(e2[s] < 0.5 * e1[s], "eps = %g: eq. 4.9's error %g, first-order %g", eps[s], e2[s], e1[s]);
    }
    CHECK_MSG(e1[0] / e1[1] > 3 && e1[0] / e1[1] < 5, "first-order error ratio %g", e1[0] / e1[1]);
    CHECK_MSG(e2[0] / e2[1] > 5, "eq. 4.9 error ratio %g (third order: about 8)", e2[0] / e2[1]);
    /* nb_optimal_step's report: its pieces agree with the explicit H, and its
     * prediction is eq. 4.9 at eps*. */
    nb_step_report r;
    CHECK(nb_optimal_step(net_loss, &k, p, n, &r) == 0);
    CHECK_NEAR(r.loss, f0, 1e-6);
    CHECK_NEAR(r.grad_norm, sqrt(gg), 1e-5);
    CHECK_NEAR(r.gHg, gHg, 1e-4);
    if (gHg > 0) {
        CHECK_NEAR(r.epsilon, gg / gHg, 1e-4 * r.epsilon);
        CHECK_NEAR(r.predicted, f0 - r.epsilon * gg + 0.5 * r.epsilon * r.epsilon * gHg, 1e-5);
        for (int64_t j = 0; j < N; j++) *entry(p, n, j) = (float)(x0[j] - r.epsilon * g[j]);
        CHECK_NEAR(r.actual, loss_at(net_loss, &k, p, n), 1e-6);
        for (int64_t j = 0; j < N; j++) *entry(p, n, j) = (float)x0[j];
    }
    free(g);
    nb_tensor_free(H);
    free_net(&k, p, n);
}

/* --- eq. 4.10: the optimal step on a quadratic ------------------------------- */

typedef struct { nb_tensor *A, *b; float sign; } quad_ctx;

/* f(x) = sign (1/2 x^T A x - b^T x), x [3, 1]: g = sign (A x - b), H = sign A. */
static nb_tensor *f_quad(nb_tensor **p, int n, void *c) {
    quad_ctx *k = c;
    nb_tensor *x = p[0];
    nb_tensor *f = nb_sub(nb_mul_scalar(nb_sum_all(nb_mul(x, nb_matmul(k->A, x))), 0.5f), nb_sum_all(nb_mul(k->b, x)));
    return nb_mul_scalar(f, k->sign);
}

TEST(test_eq_4_10_optimal_step_is_the_line_minimum_of_a_quadratic) {
    quad_ctx k = {nb_tensor_from(NB_SHAPE(3, 3), (float[]){4, 1, 0, 1, 3, 0.5f, 0, 0.5f, 2}),
                  nb_tensor_from(NB_SHAPE(3, 1), (float[]){1, -2, 0.5f}), 1.f};
    nb_tensor *x = nb_test_param(NB_SHAPE(3, 1), 1.f), *x_before = nb_tensor_clone(x);
    double g[3], Ag[3], gg = 0, gAg = 0;
    for (int i = 0; i < 3; i++) {
        g[i] = -k.b->data[i];
        for (int j = 0; j < 3; j++) g[i] += k.A->data[i * 3 + j] * x->data[j];
    }
    for (int i = 0; i < 3; i++) {
        Ag[i] = 0;
        for (int j = 0; j < 3; j++) Ag[i] += k.A->data[i * 3 + j] * g[j];
        gg += g[i] * g[i];
        gAg += g[i] * Ag[i];
    }
    nb_step_report r;
    CHECK(nb_optimal_step(f_quad, &k, &x, 1, &r) == 0);
    CHECK_NEAR(r.epsilon, gg / gAg, 1e-5); /* eq. 4.10 */
    /* A quadratic is its own second-order expansion: prediction = actual. */
    CHECK_NEAR(r.predicted, r.actual, 1e-5);
    /* phi(eps) = f(x - eps g) is smallest at eps*: the new gradient
     * g - eps* A g is orthogonal to g, and nearby steps are worse. */
    double dot = 0;
    for (int i = 0; i < 3; i++) dot += (g[i] - r.epsilon * Ag[i]) * g[i];
    CHECK_NEAR(dot, 0, 1e-5 * gg);
    for (double s = 0.9; s < 1.2; s += 0.2) {
        double eps = s * r.epsilon, phi = r.loss - eps * gg + 0.5 * eps * eps * gAg;
        CHECK(phi > r.actual);
    }
    for (int i = 0; i < 3; i++) CHECK(x->data[i] == x_before->data[i]); /* params restored */
    /* Negative curvature along g: no finite optimal step. */
    k.sign = -1;
    CHECK(nb_optimal_step(f_quad, &k, &x, 1, &r) == 0);
    CHECK(isinf(r.epsilon) && isinf(r.predicted) && r.predicted < 0 && isnan(r.actual));
    /* At the minimizer x* = A^-1 b, g = 0: no step. */
    k.sign = 1;
    nb_tensor *xs = nb_linalg_solve(k.A, k.b);
    nb_copy_into(x, xs);
    CHECK(nb_optimal_step(f_quad, &k, &x, 1, &r) == 0);
    CHECK(r.grad_norm < 1e-5 && r.epsilon < 1);
    nb_tensor *all[] = {k.A, k.b, x, x_before, xs};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- the second-derivative test --------------------------------------------- */

typedef struct { float c[2], q[2]; } poly_ctx;

/* f(x, y) = c0 x^2 + c1 y^2 + q0 x^4 + q1 y^4 */
static nb_tensor *f_poly(nb_tensor **p, int n, void *c) {
    poly_ctx *k = c;
    nb_tensor *x2 = nb_square(p[0]);
    nb_tensor *cc = nb_from_data(NB_SHAPE(2), k->c), *qq = nb_from_data(NB_SHAPE(2), k->q);
    return nb_add(nb_sum_all(nb_mul(cc, x2)), nb_sum_all(nb_mul(qq, nb_square(x2))));
}

TEST(test_eq_second_derivative_test) {
    const poly_ctx cases[] = {{{1, -1}, {0, 0}}, {{1, 1}, {0, 0}}, {{-1, -1}, {0, 0}}, {{1, 0}, {0, 1}}};
    const nb_critical want[] = {NB_CRIT_SADDLE, NB_CRIT_MINIMUM, NB_CRIT_MAXIMUM, NB_CRIT_INCONCLUSIVE};
    nb_tensor *xy = nb_tensor_new(NB_SHAPE(2)); /* the origin, a critical point of all four */
    for (int c = 0; c < 4; c++) {
        poly_ctx k = cases[c];
        nb_critical kind;
        nb_tensor *w;
        double gn = -1;
        CHECK(nb_second_derivative_test(f_poly, &k, &xy, 1, 0, &kind, &w, &gn) == 0);
        CHECK_MSG(kind == want[c], "case %d: %s, want %s", c, nb_critical_name(kind), nb_critical_name(want[c]));
        CHECK(gn == 0);
        /* The eigenvalues are 2 c_i, descending. */
        double e0 = 2 * fmax(k.c[0], k.c[1]), e1 = 2 * fmin(k.c[0], k.c[1]);
        CHECK_NEAR(w->data[0], e0, 1e-6);
        CHECK_NEAR(w->data[1], e1, 1e-6);
        nb_tensor_free(w);
    }
    CHECK(strcmp(nb_critical_name(NB_CRIT_SADDLE), "saddle point") == 0);
    /* Away from a critical point the gradient norm says so. */
    xy->data[0] = 1;
    poly_ctx k = cases[0];
    nb_critical kind;
    double gn;
    CHECK(nb_second_derivative_test(f_poly, &k, &xy, 1, 0, &kind, NULL, &gn) == 0);
    CHECK_NEAR(gn, 2, 1e-6);
    nb_tensor_free(xy);
}

/* --- Lanczos and Hutchinson against the explicit Hessian -------------------- */

TEST(test_curvature_lanczos_top_k_vs_lapack) {
    net_ctx k;
    nb_tensor *p[5];
    int n = make_net(&k, ACT_TANH, 16, p); /* N = 98 > the default Krylov size */
    int64_t N = total(p, n);
    nb_tensor *H = nb_hessian(net_loss, &k, p, n), *w, *Q;
    CHECK(nb_linalg_eigh(H, &w, &Q) == 0);
    double scale = fmax(fabs(w->data[0]), fabs(w->data[N - 1]));
    nb_rng rng;
    nb_rng_seed(&rng, 7, 3);
    nb_eigs_opts o = {.rng = &rng};
    nb_tensor *top, *vecs;
    int hvps = nb_hessian_eigs(net_loss, &k, p, n, 3, &o, &top, &vecs);
    CHECK(hvps > 0 && hvps <= 66);
    for (int t = 0; hvps > 0 && t < 3; t++) {
        CHECK_NEAR(top->data[t], w->data[t], 1e-4 * scale);
        /* The Ritz vector is an eigenvector: H y = theta y. */
        double res = 0;
        for (int64_t i = 0; i < N; i++) {
            double s = 0;
            for (int64_t j = 0; j < N; j++) s += H->data[i * N + j] * vecs->data[t * N + j];
            res = fmax(res, fabs(s - top->data[t] * vecs->data[t * N + i]));
        }
        CHECK_MSG(res < 1e-3 * scale, "Ritz pair %d residual %g", t, res);
    }
    o.smallest = true;
    nb_tensor *bottom;
    CHECK(nb_hessian_eigs(net_loss, &k, p, n, 2, &o, &bottom, NULL) > 0);
    CHECK_NEAR(bottom->data[0], w->data[N - 1], 1e-4 * scale);
    CHECK_NEAR(bottom->data[1], w->data[N - 2], 1e-4 * scale);
    nb_tensor *all[] = {H, w, Q, top, vecs, bottom};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
    free_net(&k, p, n);
}

/* f = sum_i c_i x_i^2: H = diag(2 c), with repeated eigenvalues. */
static nb_tensor *f_diag(nb_tensor **p, int n, void *c) {
    return nb_sum_all(nb_mul(nb_from_data(NB_SHAPE(6), c), nb_square(p[0])));
}

TEST(test_curvature_lanczos_repeated_eigenvalues) {
    float c[6] = {5, 5, 1, 1, 1, 0.5f};
    nb_tensor *x = nb_test_param(NB_SHAPE(6), 1.f), *top;
    CHECK(nb_hessian_eigs(f_diag, c, &x, 1, 4, NULL, &top, NULL) > 0);
    const double want[4] = {10, 10, 2, 2};
    for (int t = 0; t < 4; t++) CHECK_NEAR(top->data[t], want[t], 1e-5);
    nb_tensor_free(top);
    nb_tensor_free(x);
}

TEST(test_curvature_hutchinson_trace) {
    net_ctx k;
    nb_tensor *p[5];
    int n = make_net(&k, ACT_SIGMOID, 16, p);
    int64_t N = total(p, n);
    nb_tensor *H = nb_hessian(net_loss, &k, p, n);
    double tr = 0, est, se;
    for (int64_t i = 0; i < N; i++) tr += H->data[i * N + i];
    nb_rng rng;
    nb_rng_seed(&rng, 11, 5);
    CHECK(nb_hessian_trace(net_loss, &k, p, n, 300, &rng, &est, &se) == 0);
    CHECK(se > 0 && isfinite(se));
    CHECK_MSG(fabs(est - tr) <= 4 * se, "Hutchinson %g +- %g, exact trace %g", est, se, tr);
    /* Diagonal H: every sample is exact (z_i^2 = 1), so no spread. */
    float c[6] = {5, 5, 1, 1, 1, 0.5f};
    nb_tensor *x = nb_test_param(NB_SHAPE(6), 1.f);
    CHECK(nb_hessian_trace(f_diag, c, &x, 1, 5, &rng, &est, &se) == 0);
    CHECK_NEAR(est, 27, 1e-6);
    CHECK(se < 1e-6);
    nb_tensor_free(H);
    nb_tensor_free(x);
    free_net(&k, p, n);
}

/* --- errors and the caller's state ------------------------------------------- */

static nb_tensor *f_vector(nb_tensor **p, int n, void *c) { return nb_square(p[0]); }
static nb_tensor *f_null(nb_tensor **p, int n, void *c) { return NULL; }

TEST(test_curvature_errors_and_caller_state) {
    nb_tensor *x = nb_tensor_from(NB_SHAPE(6), (float[]){1, 2, 3, 4, 5, 6});
    nb_tensor *kept = nb_full(NB_SHAPE(4), 3.f); /* an arena tensor of the caller */
    float c[6] = {1, 1, 1, 1, 1, 1};
    CHECK(!x->requires_grad);
    nb_tensor *H = nb_hessian(f_diag, c, &x, 1);
    CHECK(H != NULL);
    CHECK(!x->requires_grad && x->grad == NULL); /* flag restored, no .grad made */
    CHECK(kept->data[3] == 3.f);                /* the caller's arena is untouched */
    nb_tensor *w = nb_test_param(NB_SHAPE(6), 1.f);
    w->grad->data[0] = 42;
    double tr;
    CHECK(nb_hessian_trace(f_diag, c, &w, 1, 3, NULL, &tr, NULL) == 0);
    CHECK(w->requires_grad && w->grad->data[0] == 42); /* .grad left alone */
    /* Errors: messages, NULL / -1, nothing aborts. */
    CHECK(nb_hessian(f_vector, NULL, &x, 1) == NULL && strstr(nb_errmsg(), "one element"));
    CHECK(nb_hessian(f_null, NULL, &x, 1) == NULL && strstr(nb_errmsg(), "NULL"));
    CHECK(nb_hessian(f_diag, c, &x, 0) == NULL && strstr(nb_errmsg(), "at least one"));
    nb_tensor *top;
    CHECK(nb_hessian_eigs(f_diag, c, &x, 1, 7, NULL, &top, NULL) == -1 && strstr(nb_errmsg(), "k = 7"));
    nb_tensor *d = nb_tensor_new(NB_SHAPE(5));
    double v;
    CHECK(nb_directional_curvature(f_diag, c, &x, 1, d, &v) == -1 && strstr(nb_errmsg(), "entries"));
    CHECK(nb_hessian_trace(f_diag, c, &x, 1, 0, NULL, &tr, NULL) == -1);
    x->data[2] = NAN;
    nb_step_report r;
    CHECK(nb_optimal_step(f_diag, c, &x, 1, &r) == -1 && strstr(nb_errmsg(), "non-finite"));
    CHECK(kept->data[0] == 3.f);
    /* The Jacobian of a vector output is fine where the Hessian is not. */
    x->data[2] = 3;
    nb_tensor *J = nb_jacobian(f_vector, NULL, &x, 1);
    for (int i = 0; J && i < 6; i++) CHECK_NEAR(J->data[i * 6 + i], 2 * (i + 1), 1e-6);
    nb_tensor *all[] = {x, H, w, d, J};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}
