/* test_stats.c — notes §1.2 and eq. 5.60: expectations, (co)variances, the
 * sample covariance, change of variables and KL divergence, each checked
 * against hand cases, sampling or an independent formula. */
#include "test.h"
#include <stdlib.h>

static nb_tensor *vec(int64_t n, const float *v) { return nb_tensor_from(NB_SHAPE(n), v); }

static double gauss_pdf(double x, double mu, double s) {
    return exp(-0.5 * (x - mu) * (x - mu) / (s * s)) / (s * sqrt(2 * M_PI));
}

/* --- eq. 3.9 and 3.10: expectation ---------------------------------------- */

TEST(test_eq_3_9_expectation_discrete) {
    float p[6], f[6], f2[6];
    for (int i = 0; i < 6; i++) p[i] = 1.f / 6, f[i] = (float)(i + 1), f2[i] = (float)((i + 1) * (i + 1));
    nb_tensor *P = vec(6, p), *F = vec(6, f), *F2 = vec(6, f2);
    double e;
    CHECK(nb_stats_expect(P, F, &e) == 0);
    CHECK_NEAR(e, 3.5, 1e-6); /* a fair die */
    CHECK(nb_stats_expect(P, F2, &e) == 0);
    CHECK_NEAR(e, 91.0 / 6, 1e-6);
    /* Sampling agrees with the sum: the mean of many rolls. */
    int64_t n = 60000;
    nb_tensor *rolls = nb_tensor_new(NB_SHAPE(n));
    for (int64_t i = 0; i < n; i++) rolls->data[i] = (float)(1 + nb_rng_below(nb_test_rng(), 6));
    nb_tensor *m = nb_stats_mean(rolls);
    CHECK_NEAR(m->data[0], 3.5, 4 * sqrt(35.0 / 12 / n)); /* 4 standard errors */
    P->data[0] = 0.5f; /* no longer sums to 1 */
    CHECK(nb_stats_expect(P, F, &e) == -1 && strstr(nb_errmsg(), "not a distribution"));
    nb_tensor *all[] = {P, F, F2, rolls, m};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

TEST(test_eq_3_10_expectation_continuous) {
    /* E[x^2] and E[cos x] for x ~ N(0, 1): the integral of eq. 3.10 by the
     * trapezoid rule, the closed forms 1 and e^-1/2, and sampling. */
    double i2 = 0, ic = 0, h = 1e-3;
    for (double x = -10; x <= 10; x += h) {
        double w = (x == -10 || x + h > 10) ? 0.5 : 1.0;
        i2 += w * h * gauss_pdf(x, 0, 1) * x * x;
        ic += w * h * gauss_pdf(x, 0, 1) * cos(x);
    }
    CHECK_NEAR(i2, 1.0, 1e-6);
    CHECK_NEAR(ic, exp(-0.5), 1e-6);
    int64_t n = 100000;
    nb_tensor *fx = nb_tensor_new(NB_SHAPE(n, 2));
    for (int64_t i = 0; i < n; i++) {
        double x = nb_rng_normal(nb_test_rng());
        fx->data[2 * i] = (float)(x * x);
        fx->data[2 * i + 1] = (float)cos(x);
    }
    nb_tensor *m = nb_stats_mean(fx), *v = nb_stats_var(fx, 1);
    CHECK_NEAR(m->data[0], i2, 4 * sqrt(v->data[0] / n));
    CHECK_NEAR(m->data[1], ic, 4 * sqrt(v->data[1] / n));
    nb_tensor_free(fx);
    nb_tensor_free(m);
    nb_tensor_free(v);
}

/* --- eq. 3.11, 3.13, 3.14: variance and covariance ------------------------ */

TEST(test_eq_3_11_variance) {
    nb_tensor *x = vec(4, (float[]){1, 2, 3, 4});
    nb_tensor *v0 = nb_stats_var(x, 0), *v1 = nb_stats_var(x, 1), *m = nb_stats_mean(x);
    CHECK(v0 && v0->size == 1 && m->size == 1);
    CHECK_NEAR(m->data[0], 2.5, 1e-7);
    CHECK_NEAR(v0->data[0], 1.25, 1e-7); /* E[(x - E x)^2] over the sample */
    CHECK_NEAR(v1->data[0], 5.0 / 3, 1e-7);
    /* Two passes keep precision where E[x^2] - E[x]^2 would not: a large
     * offset with a small spread. */
    nb_tensor *y = vec(4, (float[]){1e6f + 1, 1e6f + 2, 1e6f + 3, 1e6f + 4}), *vy = nb_stats_var(y, 0);
    CHECK_NEAR(vy->data[0], 1.25, 1e-6);
    nb_tensor *all[] = {x, v0, v1, m, y, vy};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

TEST(test_eq_3_13_covariance_of_functions) {
    /* Cov[f(x), g(x)] for f = x, g = 2x + 1 is 2 Var[x]; for g = x^2 with x
     * symmetric about 0 it is E[x^3] = 0 (uncorrelated, yet dependent). */
    int64_t n = 50000;
    nb_tensor *X = nb_tensor_new(NB_SHAPE(n, 3));
    for (int64_t i = 0; i < n; i++) {
        double x = nb_rng_normal(nb_test_rng());
        X->data[3 * i] = (float)x;
        X->data[3 * i + 1] = (float)(2 * x + 1);
        X->data[3 * i + 2] = (float)(x * x);
    }
    nb_tensor *C = nb_stats_cov(X, 1), *v = nb_stats_var(X, 1);
    CHECK_NEAR(C->data[1], 2 * v->data[0], 1e-5);
    CHECK_NEAR(C->data[2], 0, 4 * sqrt(15.0 / n)); /* Var[x^3] = 15 */
    /* eq. 3.13 literally: the mean of the product of the deviations. */
    double mf = 0, mg = 0, s = 0;
    for (int64_t i = 0; i < n; i++) mf += X->data[3 * i], mg += X->data[3 * i + 2];
    mf /= n, mg /= n;
    for (int64_t i = 0; i < n; i++) s += (X->data[3 * i] - mf) * (X->data[3 * i + 2] - mg);
    nb_tensor *C0 = nb_stats_cov(X, 0);
    CHECK_NEAR(C0->data[2], s / n, 1e-6);
    nb_tensor *R = nb_stats_corr(X);
    CHECK_NEAR(R->data[1], 1, 1e-6); /* exactly linear */
    CHECK_NEAR(R->data[0], 1, 0);
    nb_tensor *all[] = {X, C, v, C0, R};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

TEST(test_eq_3_14_covariance_matrix) {
    int64_t m = 200, n = 4;
    nb_tensor *X = nb_tensor_new(NB_SHAPE(m, n));
    nb_init_normal(X, 1.f, 2.f, nb_test_rng());
    for (int64_t i = 0; i < m; i++) X->data[i * n + 3] = X->data[i * n] - X->data[i * n + 1]; /* dependent */
    nb_tensor *C = nb_stats_cov(X, 1), *v = nb_stats_var(X, 1);
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b < n; b++) {
            /* eq. 3.14: entry (a, b) is eq. 3.13 for x_a and x_b. */
            double ma = 0, mb = 0, s = 0;
            for (int64_t i = 0; i < m; i++) ma += X->data[i * n + a], mb += X->data[i * n + b];
            ma /= m, mb /= m;
            for (int64_t i = 0; i < m; i++) s += (X->data[i * n + a] - ma) * (X->data[i * n + b] - mb);
            CHECK_NEAR(C->data[a * n + b], s / (m - 1), 1e-5);
            CHECK(C->data[a * n + b] == C->data[b * n + a]);
        }
    for (int64_t a = 0; a < n; a++) CHECK_NEAR(C->data[a * n + a], v->data[a], 1e-6);
    /* A covariance matrix is PSD; here singular (x3 = x0 - x1). */
    nb_definiteness d;
    CHECK(nb_linalg_definiteness(C, 1e-5, &d) == 0 && d == NB_POSITIVE_SEMIDEFINITE);
    /* Correlation: unit diagonal, entries in [-1, 1], NaN for a constant. */
    for (int64_t i = 0; i < m; i++) X->data[i * n + 2] = 7;
    nb_tensor *R = nb_stats_corr(X);
    CHECK(R->data[0] == 1 && isnan(R->data[2 * n + 2]) && isnan(R->data[2]));
    for (int64_t i = 0; i < n * n; i++) CHECK(isnan(R->data[i]) || fabs(R->data[i]) <= 1);
    nb_tensor *all[] = {X, C, v, R};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- eq. 12: the sample covariance ----------------------------------------- */

TEST(test_eq_sample_cov_and_its_bias) {
    /* x = L z with z ~ N(0, I) has covariance Sigma = L L^T. */
    const double L[2][2] = {{1.0, 0.0}, {0.8, 0.6}}, Sigma[4] = {1.0, 0.8, 0.8, 1.0};
    int64_t m = 5, reps = 4000;
    nb_tensor *X = nb_tensor_new(NB_SHAPE(m, 2));
    double avg0[4] = {0}, avg1[4] = {0};
    for (int64_t r = 0; r < reps; r++) {
        for (int64_t i = 0; i < m; i++) {
            double z0 = nb_rng_normal(nb_test_rng()), z1 = nb_rng_normal(nb_test_rng());
            X->data[2 * i] = (float)(L[0][0] * z0);
            X->data[2 * i + 1] = (float)(L[1][0] * z0 + L[1][1] * z1);
        }
        nb_tensor *C0 = nb_stats_cov(X, 0), *C1 = nb_stats_cov(X, 1);
        if (r == 0) {
            /* eq. 12 as written: (1/m) sum_k (x_k - xbar)(x_k - xbar)^T. */
            double xb[2] = {0, 0}, S[4] = {0};
            for (int64_t i = 0; i < m; i++) xb[0] += X->data[2 * i] / m, xb[1] += X->data[2 * i + 1] / m;
            for (int64_t i = 0; i < m; i++)
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) S[a * 2 + b] += (X->data[2 * i + a] - xb[a]) * (X->data[2 * i + b] - xb[b]) / m;
            for (int k = 0; k < 4; k++) {
                CHECK_NEAR(C0->data[k], S[k], 1e-6);
                CHECK_NEAR(C1->data[k], S[k] * m / (m - 1), 1e-6);
            }
        }
        for (int k = 0; k < 4; k++) avg0[k] += C0->data[k] / reps, avg1[k] += C1->data[k] / reps;
        nb_tensor_free(C0);
        nb_tensor_free(C1);
    }
    /* 1/(m-1) is unbiased: its average is Sigma; 1/m falls short by (m-1)/m
     * (here 0.8), visible well beyond the sampling error (~0.01). */
    for (int k = 0; k < 4; k++) {
        CHECK_NEAR(avg1[k], Sigma[k], 0.04);
        CHECK_NEAR(avg0[k], Sigma[k] * (m - 1) / m, 0.04);
    }
    CHECK(fabs(avg0[0] - 1.0) > 0.12);
    nb_tensor_free(X);
}

/* --- eq. 3.47: change of variables ----------------------------------------- */

/* Compares a histogram of samples y with density p_y over [lo, hi). */
static void check_density(const float *y, int64_t n, double lo, double hi, int bins, double (*p)(double),
                          double (*wrong)(double), const char *what) {
    int *count = calloc((size_t)bins, sizeof(int));
    for (int64_t i = 0; i < n; i++)
        if (y[i] >= lo && y[i] < hi) count[(int)((y[i] - lo) / (hi - lo) * bins)]++;
    double w = (hi - lo) / bins, worst = 0, worst_wrong = 0;
    for (int b = 0; b < bins; b++) {
        /* The bin's probability by Simpson's rule on the density. */
        double a = lo + b * w, c = a + w;
        double pb = w / 6 * (p(a) + 4 * p(a + w / 2) + p(c));
        double pw = w / 6 * (wrong(a) + 4 * wrong(a + w / 2) + wrong(c));
        double freq = (double)count[b] / n, se = sqrt(pb * (1 - pb) / n);
        worst = fmax(worst, fabs(freq - pb) / se);
        worst_wrong = fmax(worst_wrong, fabs(freq - pw) / se);
    }
    CHECK_MSG(worst < 5, "%s: a bin is %.1f standard errors from eq. 3.47's density", what, worst);
    CHECK_MSG(worst_wrong > 20, "%s: p_x(g^-1(y)) fits too well (%.1f)", what, worst_wrong);
    free(count);
}

static double py_affine(double y) { return gauss_pdf((y - 1) / 2, 0, 1) * 0.5; } /* |dx/dy| = 1/2 */
static double py_affine_wrong(double y) { return gauss_pdf((y - 1) / 2, 0, 1); }
static double py_exp(double y) { return gauss_pdf(log(y), 0, 1) / y; }           /* |dx/dy| = 1/y */
static double py_exp_wrong(double y) { return gauss_pdf(log(y), 0, 1); }

TEST(test_eq_3_47_change_of_variables_by_sampling) {
    /* eq. 3.47: p_x(x) = p_y(g(x)) |dg/dx|, i.e. p_y(y) = p_x(g^-1(y)) |dg^-1/dy|.
     * Sample x ~ N(0, 1), push it through g, and compare the histogram of y
     * with that density, and with the "common mistake" p_x(g^-1(y)). */
    int64_t n = 200000;
    float *ya = malloc(sizeof(float) * (size_t)n), *ye = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        double x = nb_rng_normal(nb_test_rng());
        ya[i] = (float)(2 * x + 1);
        ye[i] = (float)exp(x);
    }
    check_density(ya, n, -5, 7, 24, py_affine, py_affine_wrong, "y = 2x + 1");
    check_density(ye, n, 0.05, 4, 24, py_exp, py_exp_wrong, "y = exp(x)");
    /* The moments move accordingly: E[2x+1] = 1, Var = 4. */
    nb_tensor *Y = nb_tensor_from(NB_SHAPE(n), ya), *m = nb_stats_mean(Y), *v = nb_stats_var(Y, 1);
    CHECK_NEAR(m->data[0], 1, 4 * 2 / sqrt((double)n));
    CHECK_NEAR(v->data[0], 4, 0.05);
    free(ya);
    free(ye);
    nb_tensor_free(Y);
    nb_tensor_free(m);
    nb_tensor_free(v);
}

/* --- eq. 5.60: KL divergence, entropy, cross-entropy ------------------------ */

static nb_tensor *rand_dist(int n) {
    nb_tensor *p = nb_tensor_new(NB_SHAPE(n));
    double s = 0;
    for (int i = 0; i < n; i++) s += p->data[i] = (float)(nb_rng_uniform(nb_test_rng()) + 0.01);
    for (int i = 0; i < n; i++) p->data[i] = (float)(p->data[i] / s);
    return p;
}

TEST(test_eq_5_60_kl_divergence_discrete) {
    for (int t = 0; t < 50; t++) {
        nb_tensor *p = rand_dist(8), *q = rand_dist(8);
        double kl = 0, klr = 0, h = 0, ce = 0, kpp = -1;
        CHECK(nb_stats_kl(p, q, &kl) == 0 && nb_stats_kl(q, p, &klr) == 0);
        CHECK(kl > 0 && klr > 0);                   /* Gibbs' inequality */
        CHECK(nb_stats_kl(p, p, &kpp) == 0 && kpp == 0); /* = 0 iff equal */
        /* eq. 5.60 literally: E_{x~P}[log P(x) - log Q(x)]. */
        double e = 0;
        for (int i = 0; i < 8; i++) e += p->data[i] * (log(p->data[i]) - log(q->data[i]));
        CHECK_NEAR(kl, e, 1e-9);
        /* Cross-entropy = entropy + KL (the notes: NLL is a cross-entropy). */
        CHECK(nb_stats_entropy(p, &h) == 0 && nb_stats_cross_entropy(p, q, &ce) == 0);
        CHECK_NEAR(ce, h + kl, 1e-9);
        nb_tensor_free(p);
        nb_tensor_free(q);
    }
    /* KL is not symmetric; the uniform distribution has the most entropy. */
    nb_tensor *a = vec(2, (float[]){0.9f, 0.1f}), *b = vec(2, (float[]){0.5f, 0.5f}), *z = vec(2, (float[]){1, 0});
    double ab, ba, h;
    nb_stats_kl(a, b, &ab);
    nb_stats_kl(b, a, &ba);
    CHECK(fabs(ab - ba) > 0.1);
    CHECK(nb_stats_entropy(b, &h) == 0);
    CHECK_NEAR(h, log(2.0), 1e-12);
    CHECK(nb_stats_entropy(z, &h) == 0 && h == 0); /* 0 log 0 = 0 */
    CHECK(nb_stats_kl(b, z, &ab) == 0 && isinf(ab)); /* P has mass where Q has none */
    CHECK(nb_stats_kl(z, b, &ab) == 0);
    CHECK_NEAR(ab, log(2.0), 1e-12);
    /* Not distributions: errors naming the defect. */
    nb_tensor *neg = vec(2, (float[]){1.5f, -0.5f}), *nan = vec(2, (float[]){NAN, 1}), *three = rand_dist(3);
    CHECK(nb_stats_entropy(neg, &h) == -1 && strstr(nb_errmsg(), "negative"));
    CHECK(nb_stats_kl(nan, b, &h) == -1 && strstr(nb_errmsg(), "not finite"));
    CHECK(nb_stats_kl(a, three, &h) == -1 && strstr(nb_errmsg(), "entries"));
    nb_tensor *all[] = {a, b, z, neg, nan, three};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

TEST(test_eq_5_60_kl_gaussians_closed_form_vs_sampling) {
    double mu1 = 0.3, s1 = 0.8, mu2 = -0.5, s2 = 1.7, kl, h;
    CHECK(nb_stats_normal_kl(mu1, s1, mu2, s2, &kl) == 0 && kl > 0);
    CHECK(nb_stats_normal_entropy(s1, &h) == 0);
    /* Monte Carlo of eq. 5.60 and of H = -E[log p]. */
    int64_t n = 200000;
    double mk = 0, mk2 = 0, mh = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = mu1 + s1 * nb_rng_normal(nb_test_rng());
        double d = log(gauss_pdf(x, mu1, s1)) - log(gauss_pdf(x, mu2, s2));
        mk += d / n, mk2 += d * d / n, mh -= log(gauss_pdf(x, mu1, s1)) / n;
    }
    CHECK_NEAR(mk, kl, 4 * sqrt((mk2 - mk * mk) / n));
    CHECK_NEAR(mh, h, 0.01);
    CHECK(nb_stats_normal_kl(1, 2, 1, 2, &kl) == 0 && kl == 0);
    CHECK(nb_stats_normal_kl(0, -1, 0, 1, &kl) == -1 && strstr(nb_errmsg(), "sigma"));
    /* Multivariate: diagonal covariances factor into univariate terms. */
    nb_tensor *m1 = vec(2, (float[]){0.3f, 1}), *m2 = vec(2, (float[]){-0.5f, 0});
    nb_tensor *S1 = nb_tensor_from(NB_SHAPE(2, 2), (float[]){0.64f, 0, 0, 4});
    nb_tensor *S2 = nb_tensor_from(NB_SHAPE(2, 2), (float[]){2.89f, 0, 0, 1});
    double kd, k1, k2, hm, h1, h2;
    CHECK(nb_stats_mvn_kl(m1, S1, m2, S2, &kd) == 0);
    nb_stats_normal_kl(0.3, 0.8, -0.5, 1.7, &k1);
    nb_stats_normal_kl(1, 2, 0, 1, &k2);
    CHECK_NEAR(kd, k1 + k2, 1e-6);
    CHECK(nb_stats_mvn_entropy(S1, &hm) == 0);
    nb_stats_normal_entropy(0.8, &h1);
    nb_stats_normal_entropy(2, &h2);
    CHECK_NEAR(hm, h1 + h2, 1e-6);
    /* Correlated: against sampling through the Cholesky factor. */
    nb_tensor *S3 = nb_tensor_from(NB_SHAPE(2, 2), (float[]){1, 0.8f, 0.8f, 1});
    CHECK(nb_stats_mvn_kl(m1, S3, m2, S2, &kd) == 0);
    double mc = 0, mc2 = 0;
    n = 100000;
    for (int64_t i = 0; i < n; i++) {
        double z0 = nb_rng_normal(nb_test_rng()), z1 = nb_rng_normal(nb_test_rng());
        double x0 = 0.3 + z0, x1 = 1 + 0.8 * z0 + 0.6 * z1;
        /* log N(x; m1, S3): det S3 = 0.36, S3^-1 = [[1, -0.8], [-0.8, 1]] / 0.36 */
        double d0 = x0 - 0.3, d1 = x1 - 1;
        double lp = -log(2 * M_PI) - 0.5 * log(0.36) - 0.5 * (d0 * d0 - 1.6 * d0 * d1 + d1 * d1) / 0.36;
        double lq = log(gauss_pdf(x0, -0.5, 1.7)) + log(gauss_pdf(x1, 0, 1));
        mc += (lp - lq) / n, mc2 += (lp - lq) * (lp - lq) / n;
    }
    CHECK_NEAR(mc, kd, 4 * sqrt((mc2 - mc * mc) / n));
    CHECK(nb_stats_mvn_kl(m1, S1, m1, S1, &kd) == 0 && fabs(kd) < 1e-12);
    nb_tensor *bad = nb_tensor_from(NB_SHAPE(2, 2), (float[]){1, 2, 2, 1}); /* symmetric, not PD */
    CHECK(nb_stats_mvn_entropy(bad, &hm) == -1 && strstr(nb_errmsg(), "positive definite"));
    nb_tensor *all[] = {m1, m2, S1, S2, S3, bad};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

TEST(test_stats_errors_are_reported) {
    nb_tensor *e = nb_tensor_new(NB_SHAPE(0, 3)), *one = nb_tensor_new(NB_SHAPE(1, 3));
    nb_tensor *cube = nb_tensor_new(NB_SHAPE(2, 2, 2)), *nan = nb_tensor_from(NB_SHAPE(2), (float[]){1, NAN});
    CHECK(nb_stats_mean(e) == NULL && strstr(nb_errmsg(), "empty"));
    CHECK(nb_stats_cov(one, 1) == NULL && strstr(nb_errmsg(), "ddof"));
    CHECK(nb_stats_var(cube, 0) == NULL && strstr(nb_errmsg(), "[m, n]"));
    CHECK(nb_stats_mean(nan) == NULL && strstr(nb_errmsg(), "non-finite"));
    CHECK(nb_stats_var(one, -1) == NULL);
    nb_tensor *c = nb_stats_cov(one, 0); /* one sample, ddof 0: zeros, fine */
    CHECK(c && c->data[0] == 0);
    nb_tensor *all[] = {e, one, cube, nan, c};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

TEST(test_eq_5_60_zero_mass_and_distribution_checks) {
    double h;
    /* H(P, Q) skips the outcomes P calls impossible, even where Q does too,
     * and is infinite where P gives mass that Q does not. */
    nb_tensor *p = vec(3, (float[]){0.5f, 0.5f, 0}), *q = vec(3, (float[]){0.5f, 0.5f, 0});
    CHECK(nb_stats_cross_entropy(p, q, &h) == 0);
    CHECK_NEAR(h, log(2.0), 1e-12);
    nb_tensor *q2 = vec(3, (float[]){1, 0, 0});
    CHECK(nb_stats_cross_entropy(p, q2, &h) == 0 && isinf(h) && h > 0);
    /* Q must be a distribution too. */
    nb_tensor *q3 = vec(3, (float[]){0.5f, 0.6f, 0});
    CHECK(nb_stats_cross_entropy(p, q3, &h) == -1 && strstr(nb_errmsg(), "q sums to"));
    nb_clear_error();
    /* Small probabilities count in H(P): -(a ln a + b ln b) with b = 1e-7. */
    float a = 1 - 1e-7f, b = 1e-7f;
    nb_tensor *s = vec(2, (float[]){a, b});
    CHECK(nb_stats_entropy(s, &h) == 0);
    CHECK_NEAR(h, -((double)a * log((double)a) + (double)b * log((double)b)), 1e-12);
    /* Any negative entry, any sum more than 1e-4 from 1, is refused. */
    nb_tensor *neg = vec(2, (float[]){1.0001f, -0.0001f}), *off = vec(2, (float[]){0.5f, 0.5005f});
    CHECK(nb_stats_entropy(neg, &h) == -1 && strstr(nb_errmsg(), "negative"));
    CHECK(nb_stats_entropy(off, &h) == -1 && strstr(nb_errmsg(), "not a distribution"));
    nb_clear_error();
    nb_tensor *ts[] = {p, q, q2, q3, s, neg, off};
    for (int i = 0; i < 7; i++) nb_tensor_free(ts[i]);
}
