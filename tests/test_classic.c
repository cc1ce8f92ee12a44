/* test_classic.c — the classical models of src/models against closed forms
 * and hand-computed values: estimators and capacity (notes §5.2, §5.4),
 * linear and logistic regression (eq. 5.65, 5.81), the kernel SVM (eq. 5.83),
 * factor models (eq. 24), the Gaussian mixture (appendix B), the LIBSVM text
 * format and the model files. */
#include "test.h"
#include <float.h>
#include <stdlib.h>
#include <unistd.h>

static nb_tensor *randn(int64_t n, int64_t d, nb_rng *r) {
    nb_tensor *t = nb_tensor_new(2, (int64_t[]){n, d});
    for (int64_t i = 0; i < t->size; i++) t->data[i] = (float)nb_rng_normal(r);
    return t;
}

/* --- estimators (§5.4) ---------------------------------------------------- */

/* eq. 5.20: the biased variance estimator (1/m) sum (x - xbar)^2 has
 * E = (m-1)/m sigma^2, bias -sigma^2/m; the 1/(m-1) one is unbiased.
 * Checked over many simulated samples. */
TEST(test_eq_5_20_variance_estimator_bias) {
    nb_rng r;
    nb_rng_seed(&r, 3, 0);
    const int m = 5, trials = 200000;
    const double sigma2 = 4.0;
    double sb = 0, su = 0;
    for (int t = 0; t < trials; t++) {
        double x[5], mean = 0, ss = 0;
        for (int i = 0; i < m; i++) mean += (x[i] = 1 + 2 * nb_rng_normal(&r));
        mean /= m;
        for (int i = 0; i < m; i++) ss += (x[i] - mean) * (x[i] - mean);
        sb += ss / m;
        su += ss / (m - 1);
    }
    CHECK_NEAR(sb / trials - sigma2, -sigma2 / m, 0.02);   /* bias = E[theta] - theta */
    CHECK_NEAR(su / trials - sigma2, 0.0, 0.02);
}

/* eq. 5.54: MSE = bias^2 + Var for the shrunk mean estimator
 * theta = sum x / (m + 1) of a N(mu, 1) sample, against its closed form:
 * bias = -mu / (m + 1), Var = m / (m + 1)^2. */
TEST(test_eq_5_54_mse_is_bias2_plus_variance) {
    nb_rng r;
    nb_rng_seed(&r, 4, 0);
    const int m = 8, trials = 200000;
    const double mu = 2.0;
    double s = 0, s2 = 0, se = 0;
    for (int t = 0; t < trials; t++) {
        double sum = 0;
        for (int i = 0; i < m; i++) sum += mu + nb_rng_normal(&r);
        double th = sum / (m + 1);
        s += th;
        s2 += th * th;
        se += (th - mu) * (th - mu);
    }
    double mean = s / trials, var = s2 / trials - mean * mean, mse = se / trials, bias = mean - mu;
    CHECK_NEAR(mse, bias * bias + var, 1e-9);                 /* the identity, exact on the sample */
    CHECK_NEAR(bias, -mu / (m + 1), 0.01);                    /* eq. 5.20 in closed form */
    CHECK_NEAR(var, (double)m / ((m + 1) * (m + 1)), 0.01);
    CHECK_NEAR(mse, mu * mu / ((m + 1) * (m + 1)) + (double)m / ((m + 1) * (m + 1)), 0.01);
}

/* eq. 5.55: the sample mean is consistent: P(|xbar_m - mu| > eps) falls
 * towards 0 as m grows (Chebyshev: at most 1 / (m eps^2)). */
TEST(test_eq_5_55_sample_mean_is_consistent) {
    nb_rng r;
    nb_rng_seed(&r, 5, 0);
    const double eps = 0.1;
    double prev = 1.0;
    int ms[] = {10, 100, 1000, 10000};
    for (int k = 0; k < 4; k++) {
        int far = 0, trials = 400;
        for (int t = 0; t < trials; t++) {
            double s = 0;
            for (int i = 0; i < ms[k]; i++) s += nb_rng_uniform(&r); /* mu = 1/2, var = 1/12 */
            far += fabs(s / ms[k] - 0.5) > eps;
        }
        double p = (double)far / trials;
        CHECK_MSG(p <= prev + 0.02, "P(|mean - mu| > eps) rose from %g to %g at m = %d", prev, p, ms[k]);
        CHECK(p <= 1.0 / (12.0 * ms[k] * eps * eps) + 0.05);
        prev = p;
    }
    CHECK(prev == 0);
}

/* eq. 5.59: the maximum-likelihood Gaussian has the sample mean and the
 * biased (1/m) variance; any other parameters have a lower likelihood. */
TEST(test_eq_5_59_gaussian_mle) {
    nb_rng r;
    nb_rng_seed(&r, 6, 0);
    const int m = 500;
    double x[500], mean = 0, v = 0;
    for (int i = 0; i < m; i++) mean += (x[i] = 3 + 0.5 * nb_rng_normal(&r));
    mean /= m;
    for (int i = 0; i < m; i++) v += (x[i] - mean) * (x[i] - mean);
    v /= m;
    double best = 0;
    for (int i = 0; i < m; i++) best += -0.5 * log(2 * M_PI * v) - (x[i] - mean) * (x[i] - mean) / (2 * v);
    for (int k = 0; k < 8; k++) {
        double mu2 = mean + (k & 1 ? 0.01 : -0.01) * (k + 1), v2 = v * (k & 2 ? 1.05 : 0.95), ll = 0;
        for (int i = 0; i < m; i++) ll += -0.5 * log(2 * M_PI * v2) - (x[i] - mu2) * (x[i] - mu2) / (2 * v2);
        CHECK(ll < best);
    }
}

/* --- linear regression (eq. 5.63, 5.65, §5.6) ----------------------------- */

static nb_tensor *linear_data(int64_t n, int64_t d, nb_rng *r, float **y, double noise) {
    nb_tensor *X = randn(n, d, r);
    *y = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        double s = 0.5;
        for (int64_t j = 0; j < d; j++) s += (j + 1) * 0.3 * X->data[i * d + j] * (j % 2 ? -1 : 1);
        (*y)[i] = (float)(s + noise * nb_rng_normal(r));
    }
    return X;
}

/* An exact fit (one example, two features) has sigma^2 = 0: eq. 5.65's limit
 * is +inf on its own examples and -inf on one off the fit, not 0/0 = NaN. */
TEST(test_linreg_loglik_of_an_exact_fit) {
    float x[2] = {1, 2}, y[1] = {3}, y2[1] = {4};
    nb_tensor *X = nb_tensor_from(NB_SHAPE(1, 2), x);
    nb_linreg *m = nb_linreg_fit(X, y, &(nb_linreg_opts){.method = NB_LINREG_LSTSQ});
    CHECK(m != NULL);
    if (m) {
        CHECK(m->sigma2 == 0);
        double in = nb_linreg_loglik(m, X, y), off = nb_linreg_loglik(m, X, y2);
        CHECK(isinf(in) && in > 0);
        CHECK(isinf(off) && off < 0);
    }
    nb_linreg_free(m);
    nb_tensor_free(X);
}

/* Ridge (l2 > 0) by least squares and by gradient descent minimize the same
 * J = mean (w^T x + b - y)^2 + l2 ||w||^2 / n: at the minimum, by hand,
 * X^T r + l2 w = 0 and sum r = 0 with r = Xw + b - y. Checked for each fit
 * from its own w and b, with a penalty large enough to move w well away
 * from plain least squares (a gradient with a wrong factor on the penalty
 * settles elsewhere). */
TEST(test_linreg_ridge_gd_and_lstsq_reach_the_stationary_point) {
    nb_rng r;
    nb_rng_seed(&r, 11, 0);
    int64_t n = 150, d = 3;
    float *y;
    nb_tensor *X = linear_data(n, d, &r, &y, 0.3);
    const double l2 = 40;
    nb_linreg *fits[2] = {nb_linreg_fit(X, y, &(nb_linreg_opts){.method = NB_LINREG_LSTSQ, .l2 = l2}),
                          nb_linreg_fit(X, y, &(nb_linreg_opts){.method = NB_LINREG_GD, .l2 = l2, .lr = 0.1, .epochs = 3000})};
    nb_linreg *plain = nb_linreg_fit(X, y, &(nb_linreg_opts){.method = NB_LINREG_LSTSQ});
    for (int f = 0; f < 2; f++) {
        nb_linreg *m = fits[f];
        CHECK(m != NULL);
        if (!m) continue;
        double gw[3] = {0}, gb = 0, shrink = 0;
        for (int64_t i = 0; i < n; i++) {
            double ri = m->b - y[i];
            for (int64_t j = 0; j < d; j++) ri += m->w[j] * X->data[i * d + j];
            for (int64_t j = 0; j < d; j++) gw[j] += X->data[i * d + j] * ri;
            gb += ri;
        }
        for (int64_t j = 0; j < d; j++) {
            CHECK_MSG(fabs(gw[j] + l2 * m->w[j]) < 1e-6 * n, "%s: X^T r + l2 w = %g in column %lld",
                      f ? "gd" : "lstsq", gw[j] + l2 * m->w[j], (long long)j);
            shrink += fabs(m->w[j] - plain->w[j]);
        }
        CHECK_MSG(fabs(gb) < 1e-6 * n, "%s: sum r = %g", f ? "gd" : "lstsq", gb);
        CHECK_MSG(shrink > 0.05, "%s: the penalty barely moved w (%g)", f ? "gd" : "lstsq", shrink);
        nb_linreg_free(m);
    }
    nb_linreg_free(plain);
    free(y);
    nb_tensor_free(X);
}

/* eq. 5.65: the conditional log-likelihood of the fitted model equals
 * -m log sigma - m/2 log 2 pi - sum (yhat - y)^2 / (2 sigma^2) with the MLE
 * sigma^2 = the training MSE; least squares (w from the normal equations,
 * by LAPACK) and gradient descent reach the same w. */
TEST(test_eq_5_65_linreg_loglik_and_mse) {
    nb_rng r;
    nb_rng_seed(&r, 7, 0);
    int64_t n = 200, d = 3;
    float *y;
    nb_tensor *X = linear_data(n, d, &r, &y, 0.3);
    nb_linreg *m = nb_linreg_fit(X, y, &(nb_linreg_opts){.method = NB_LINREG_LSTSQ});
    CHECK(m != NULL);
    /* Normal equations via nb_linalg_lstsq on [X, 1]. */
    nb_tensor *A = nb_tensor_new(2, (int64_t[]){n, d + 1}), *B = nb_tensor_from(1, (int64_t[]){n}, y);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < d; j++) A->data[i * (d + 1) + j] = X->data[i * d + j];
        A->data[i * (d + 1) + d] = 1;
    }
    nb_tensor *wls = nb_linalg_lstsq(A, B, 0, NULL);
    for (int64_t j = 0; j < d; j++) CHECK_NEAR(m->w[j], wls->data[j], 1e-5);
    CHECK_NEAR(m->b, wls->data[d], 1e-5);
    double *mu = malloc(sizeof(double) * (size_t)n), mse = 0;
    nb_linreg_predict(m, X, mu, NULL);
    for (int64_t i = 0; i < n; i++) mse += (mu[i] - y[i]) * (mu[i] - y[i]) / (double)n;
    CHECK_NEAR(m->sigma2, mse, 1e-9);
    CHECK_NEAR(m->sigma2, 0.09, 0.03);
    double ll = 0;
    for (int64_t i = 0; i < n; i++)
        ll += -0.5 * log(2 * M_PI * m->sigma2) - (mu[i] - y[i]) * (mu[i] - y[i]) / (2 * m->sigma2);
    CHECK_NEAR(nb_linreg_loglik(m, X, y), ll, 1e-9);
    nb_linreg *g = nb_linreg_fit(X, y, &(nb_linreg_opts){.method = NB_LINREG_GD, .lr = 0.1, .epochs = 2000});
    for (int64_t j = 0; j < d; j++) CHECK_NEAR(g->w[j], m->w[j], 1e-6);
    CHECK_NEAR(g->b, m->b, 1e-6);
    nb_linreg_free(g);
    nb_linreg_free(m);
    free(mu);
    nb_tensor_free(A);
    nb_tensor_free(B);
    nb_tensor_free(wls);
    nb_tensor_free(X);
    free(y);
}

/* eq. 5.63: the conditional MLE is the least-squares w: moving w in any
 * direction lowers sum log p(y | x; w) (sigma fixed). */
TEST(test_eq_5_63_conditional_mle_is_least_squares) {
    nb_rng r;
    nb_rng_seed(&r, 8, 0);
    float *y;
    nb_tensor *X = linear_data(100, 2, &r, &y, 0.5);
    nb_linreg *m = nb_linreg_fit(X, y, NULL);
    double best = nb_linreg_loglik(m, X, y), s2 = m->sigma2;
    for (int k = 0; k < 6; k++) {
        m->w[k % 2] += k < 3 ? 0.02 : -0.02;
        m->sigma2 = s2;
        CHECK(nb_linreg_loglik(m, X, y) < best);
        m->w[k % 2] -= k < 3 ? 0.02 : -0.02;
    }
    nb_linreg_free(m);
    nb_tensor_free(X);
    free(y);
}

/* §5.6 in one dimension without intercept effects, by hand: with prior
 * precision alpha and noise sigma^2, S = (alpha I + X1^T X1 / s2)^-1 and
 * m = S X1^T y / s2; the predictive variance is s2 + x1^T S x1. */
TEST(test_classic_bayes_linreg_posterior) {
    float xs[4] = {-1, 0, 1, 2}, y[4] = {-1.2f, 0.1f, 0.9f, 2.2f};
    nb_tensor *X = nb_tensor_from(2, (int64_t[]){4, 1}, xs);
    double alpha = 0.5, s2 = 0.25;
    nb_linreg *m = nb_linreg_fit(X, y, &(nb_linreg_opts){.method = NB_LINREG_BAYES, .prior_precision = alpha, .noise_var = s2});
    CHECK(m && m->cov);
    /* X1^T X1 = [[6, 2], [2, 4]], X1^T y = [6.5, 2.0]. */
    double a = alpha + 6 / s2, b = 2 / s2, c = alpha + 4 / s2, det = a * c - b * b;
    double S[4] = {c / det, -b / det, -b / det, a / det};
    double r0 = 6.5 / s2, r1 = 2.0 / s2;
    CHECK_NEAR(m->w[0], S[0] * r0 + S[1] * r1, 1e-5);
    CHECK_NEAR(m->b, S[2] * r0 + S[3] * r1, 1e-5);
    for (int k = 0; k < 4; k++) CHECK_NEAR(m->cov[k], S[k], 1e-6);
    float xq = 3;
    nb_tensor *Q = nb_tensor_from(2, (int64_t[]){1, 1}, &xq);
    double mean, var;
    nb_linreg_predict(m, Q, &mean, &var);
    CHECK_NEAR(var, s2 + S[0] * 9 + 2 * S[1] * 3 + S[3], 1e-6);
    CHECK_NEAR(mean, m->w[0] * 3 + m->b, 1e-9);
    nb_linreg_free(m);
    nb_tensor_free(Q);
    nb_tensor_free(X);
}

/* §5.2: polynomial regression of growing degree on 15 noisy samples of a
 * cubic: the training error never rises with capacity, the test error falls
 * then rises again (under- then over-fitting), its minimum at a moderate
 * degree. */
TEST(test_classic_capacity_polynomial_degree) {
    nb_rng r;
    nb_rng_seed(&r, 9, 0);
    const int ntr = 15, nte = 400, maxdeg = 12;
    double xtr[15], ytr[15], xte[400], yte[400];
    for (int i = 0; i < ntr; i++) {
        xtr[i] = -1 + 2.0 * i / (ntr - 1) + 0.03 * nb_rng_normal(&r);
        ytr[i] = sin(3 * xtr[i]) + 0.25 * nb_rng_normal(&r);
    }
    for (int i = 0; i < nte; i++) {
        xte[i] = -1 + 2 * nb_rng_uniform(&r);
        yte[i] = sin(3 * xte[i]) + 0.25 * nb_rng_normal(&r);
    }
    double train[13], test[13];
    for (int deg = 0; deg <= maxdeg; deg++) {
        int64_t d = deg > 0 ? deg : 1;
        nb_tensor *A = nb_tensor_new(2, (int64_t[]){ntr, d}), *T = nb_tensor_new(2, (int64_t[]){nte, d});
        float yy[15];
        for (int i = 0; i < ntr; i++) {
            yy[i] = (float)ytr[i];
            for (int j = 0; j < d; j++) A->data[i * d + j] = deg ? (float)pow(xtr[i], j + 1) : 0.f;
        }
        for (int i = 0; i < nte; i++)
            for (int j = 0; j < d; j++) T->data[i * d + j] = deg ? (float)pow(xte[i], j + 1) : 0.f;
        nb_linreg *m = nb_linreg_fit(A, yy, NULL);
        double *p = malloc(sizeof(double) * nte), e = 0;
        nb_linreg_predict(m, T, p, NULL);
        for (int i = 0; i < nte; i++) e += (p[i] - yte[i]) * (p[i] - yte[i]) / nte;
        train[deg] = m->sigma2;
        test[deg] = e;
        free(p);
        nb_linreg_free(m);
        nb_tensor_free(A);
        nb_tensor_free(T);
    }
    int best = 0;
    for (int deg = 0; deg <= maxdeg; deg++) {
        if (deg) CHECK_MSG(train[deg] <= train[deg - 1] * (1 + 1e-3) + 1e-6, "train error rose at degree %d", deg);
        if (test[deg] < test[best]) best = deg;
    }
    CHECK_MSG(best >= 2 && best <= 8, "test error is smallest at degree %d", best);
    CHECK(test[0] > 2 * test[best]);        /* underfitting */
    CHECK(test[maxdeg] > 1.5 * test[best]); /* overfitting */
    CHECK(train[maxdeg] < train[best]);
}

/* --- logistic regression (eq. 5.81) --------------------------------------- */

/* At scikit-learn's optimum the gradient of C sum -log p + ||W||^2 / 2 is
 * zero: C sum_i (p_i - onehot_i) x_i + W = 0 and sum_i (p_i - onehot_i) = 0. */
static double logreg_stationarity(const nb_logreg *m, const nb_tensor *X, const float *y, double C) {
    int64_t n = X->shape[0], d = m->d;
    int K = m->nclass;
    double *p = malloc(sizeof(double) * (size_t)(n * K)), worst = 0;
    nb_logreg_predict(m, X, p, NULL);
    for (int rw = 0; rw < m->k; rw++) {
        int cls = m->k == 1 ? 1 : rw;
        for (int64_t j = 0; j <= d; j++) {
            double g = j < d ? m->W[rw * d + j] : 0;
            for (int64_t i = 0; i < n; i++) {
                double e = p[i * K + cls] - (y[i] == (float)m->classes[cls]);
                g += C * e * (j < d ? X->data[i * d + j] : 1.0);
            }
            worst = fmax(worst, fabs(g) / (C * (double)n));
        }
    }
    free(p);
    return worst;
}

TEST(test_eq_5_81_logreg_binary_and_multinomial) {
    nb_rng r;
    nb_rng_seed(&r, 10, 0);
    int64_t n = 300, d = 4;
    nb_tensor *X = randn(n, d, &r);
    float *y2 = malloc(sizeof(float) * n), *y3 = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) {
        const float *x = X->data + i * d;
        double z = 1.5 * x[0] - x[1] + 0.3;
        y2[i] = nb_rng_uniform(&r) < 1 / (1 + exp(-z)) ? 7.f : -2.f; /* any label values */
        y3[i] = x[0] > 0.5 ? 2.f : x[1] > 0 ? 1.f : 0.f;
    }
    nb_logreg *b = nb_logreg_fit(X, y2, &(nb_logreg_opts){.C = 0.5, .max_iter = 200, .tol = 1e-6});
    CHECK(b && b->k == 1 && b->nclass == 2 && b->classes[1] == 7);
    CHECK_MSG(logreg_stationarity(b, X, y2, 0.5) < 1e-4, "gradient %g", logreg_stationarity(b, X, y2, 0.5));
    /* eq. 5.81 itself: p(y = 1 | x) = sigma(w^T x + b). */
    double p[2];
    nb_tensor *x0 = nb_tensor_from(2, (int64_t[]){1, d}, X->data);
    nb_logreg_predict(b, x0, p, NULL);
    double z = b->b[0];
    for (int64_t j = 0; j < d; j++) z += b->W[j] * X->data[j];
    CHECK_NEAR(p[1], 1 / (1 + exp(-z)), 1e-12);
    nb_logreg *g = nb_logreg_fit(X, y2, &(nb_logreg_opts){.C = 0.5, .solver = NB_SOLVER_GD, .max_iter = 5000, .lr = 1, .tol = 1e-6});
    for (int64_t j = 0; j < d; j++) CHECK_NEAR(g->W[j], b->W[j], 2e-3);
    nb_logreg *mm = nb_logreg_fit(X, y3, &(nb_logreg_opts){.C = 10, .max_iter = 300, .tol = 1e-6});
    CHECK(mm && mm->k == 3);
    CHECK_MSG(logreg_stationarity(mm, X, y3, 10) < 2e-4, "gradient %g", logreg_stationarity(mm, X, y3, 10));
    float *pred = malloc(sizeof(float) * n);
    nb_logreg_predict(mm, X, NULL, pred);
    int ok = 0;
    for (int64_t i = 0; i < n; i++) ok += pred[i] == y3[i];
    CHECK(ok > 0.95 * n);
    nb_logreg_free(b);
    nb_logreg_free(g);
    nb_logreg_free(mm);
    nb_tensor_free(X);
    nb_tensor_free(x0);
    free(y2);
    free(y3);
    free(pred);
}

/* --- kernel SVM (eq. 5.83) -------------------------------------------------- */

/* Two points x = +1 (y = +1) and x = -1 (y = -1) with a linear kernel and a
 * large C: the maximal margin gives w = 1, b = 0, alpha = 1/2 each, so
 * f(x) = x. */
TEST(test_eq_5_83_svm_two_points_by_hand) {
    float xs[2] = {1, -1}, ys[2] = {1, -1};
    nb_tensor *X = nb_tensor_from(2, (int64_t[]){2, 1}, xs);
    nb_svm_opts o;
    nb_svm_default_opts(&o);
    o.kernel = NB_KERNEL_LINEAR;
    o.C = 100;
    nb_svm *m = nb_svm_fit(X, ys, &o);
    CHECK(m && m->nsv == 2 && m->labels[0] == 1);
    CHECK_NEAR(m->coef[0], 0.5, 1e-6);
    CHECK_NEAR(m->coef[1], -0.5, 1e-6);
    CHECK_NEAR(m->rho[0], 0.0, 1e-6);
    float q = 0.3f;
    double dec;
    nb_svm_decision(m, &q, &dec);
    CHECK_NEAR(dec, 0.3, 1e-6);
    nb_svm_free(m);
    nb_tensor_free(X);
}

/* On data that is not separable, every kernel: the decision function is
 * eq. 5.83, sum_i alpha_i y_i K(x_i, x) - rho, evaluated by hand; the dual
 * constraints hold (0 <= alpha <= C, sum alpha_i y_i = 0); the solution does
 * not depend on shrinking or on a cache too small to hold the matrix. */
TEST(test_eq_5_83_svm_decision_function_and_kkt) {
    nb_rng r;
    nb_rng_seed(&r, 11, 0);
    int64_t n = 160, d = 3;
    nb_tensor *X = randn(n, d, &r);
    float *y = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) {
        const float *x = X->data + i * d;
        y[i] = x[0] * x[0] + x[1] * x[1] + 0.3 * nb_rng_normal(&r) > 1.2 ? 1.f : -1.f;
    }
    for (int kern = 0; kern < 4; kern++) {
        nb_svm_opts o;
        nb_svm_default_opts(&o);
        o.kernel = (nb_kernel)kern;
        o.C = 2;
        o.gamma = kern == NB_KERNEL_SIGMOID ? 0.05 : 0.5;
        o.coef0 = kern == NB_KERNEL_POLY ? 1 : 0;
        o.degree = 2;
        o.eps = 1e-5;
        nb_svm *m = nb_svm_fit(X, y, &o);
        CHECK(m != NULL);
        if (!m) continue;
        double sum = 0;
        for (int64_t k = 0; k < m->nsv; k++) {
            double a = fabs(m->coef[k]);
            CHECK(a > 0 && a <= o.C + 1e-9);
            sum += m->coef[k];
        }
        CHECK_NEAR(sum, 0.0, 1e-9);
        CHECK(m->class_nsv[0] + m->class_nsv[1] == m->nsv);
        for (int64_t i = 0; i < 20; i++) {
            const float *x = X->data + i * d;
            double f = -m->rho[0], dec;
            for (int64_t k = 0; k < m->nsv; k++) f += m->coef[k] * nb_svm_kernel(&m->opts, m->sv + k * d, x, d);
            nb_svm_decision(m, x, &dec);
            CHECK_NEAR(dec, f, 1e-9);
        }
        float *pred = malloc(sizeof(float) * n);
        nb_svm_predict(m, X, pred);
        int agree = 0, correct = 0;
        for (int64_t i = 0; i < n; i++) {
            double dec;
            nb_svm_decision(m, X->data + i * d, &dec);
            agree += pred[i] == (float)(dec > 0 ? m->labels[0] : m->labels[1]);
            correct += pred[i] == y[i];
        }
        CHECK_MSG(agree >= n - 1, "kernel %d: predict disagrees with the decision sign %d times", kern, (int)(n - agree));
        if (kern == NB_KERNEL_RBF || kern == NB_KERNEL_POLY) CHECK_MSG(correct > 0.85 * n, "kernel %d: %d correct", kern, correct);
        /* Same optimum without shrinking, and with a 2-row cache (LRU evictions). */
        nb_svm_opts o2 = o;
        o2.shrinking = false;
        o2.cache_mb = 1e-6;
        nb_svm *m2 = nb_svm_fit(X, y, &o2);
        CHECK(m2 && fabs(m2->rho[0] - m->rho[0]) < 1e-3);
        double *d1 = malloc(sizeof(double)), *d2 = malloc(sizeof(double));
        for (int64_t i = 0; m2 && i < 10; i++) {
            nb_svm_decision(m, X->data + i * d, d1);
            nb_svm_decision(m2, X->data + i * d, d2);
            CHECK_NEAR(*d1, *d2, 2e-3);
        }
        free(d1);
        free(d2);
        free(pred);
        nb_svm_free(m);
        nb_svm_free(m2);
    }
    nb_tensor_free(X);
    free(y);
}

/* Three classes one-vs-one: three pair decisions, LIBSVM's coefficient
 * layout, and the vote; cross-validation on separable blobs. */
TEST(test_svm_one_vs_one_and_cross_validation) {
    nb_rng r;
    nb_rng_seed(&r, 12, 0);
    int64_t n = 150, d = 2;
    nb_tensor *X = nb_tensor_new(2, (int64_t[]){n, d});
    float *y = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        y[i] = (float)(5 + c);
        X->data[i * 2] = (float)(3 * cos(2 * M_PI * c / 3) + 0.5 * nb_rng_normal(&r));
        X->data[i * 2 + 1] = (float)(3 * sin(2 * M_PI * c / 3) + 0.5 * nb_rng_normal(&r));
    }
    nb_svm_opts o;
    nb_svm_default_opts(&o);
    nb_svm *m = nb_svm_fit(X, y, &o);
    CHECK(m && m->nclass == 3 && m->labels[0] == 5 && m->labels[2] == 7);
    double dec[3];
    nb_svm_decision(m, (float[]){3, 0}, dec);   /* the class-5 blob: wins both of its pairs */
    CHECK(dec[0] > 0 && dec[1] > 0);
    float *pred = malloc(sizeof(float) * n);
    nb_svm_predict(m, X, pred);
    int ok = 0;
    for (int64_t i = 0; i < n; i++) ok += pred[i] == y[i];
    CHECK(ok >= n - 2);
    double acc = nb_svm_cross_validate(X, y, &o, 5, 1, pred);
    CHECK_MSG(acc > 0.95, "5-fold accuracy %g", acc);
    CHECK(nb_svm_cross_validate(X, y, &o, 1, 1, NULL) < 0);
    /* Two examples of two classes in two folds: each fold trains on one
     * class; the refusal names the fold, not the data (which hold two). */
    {
        float x2[2] = {0, 1}, y2[2] = {0, 1};
        nb_tensor *X2 = nb_tensor_from(NB_SHAPE(2, 1), x2);
        CHECK(nb_svm_cross_validate(X2, y2, &o, 2, 1, NULL) < 0);
        CHECK_MSG(strstr(nb_errmsg(), "fold 1 of 2, trained on the other 1 examples") != NULL, "%s", nb_errmsg());
        nb_tensor_free(X2);
    }
    nb_svm_free(m);
    free(pred);
    free(y);
    nb_tensor_free(X);
}

TEST(test_svm_bad_options_and_one_class) {
    float xs[4] = {0, 1, 2, 3}, y1[4] = {1, 1, 1, 1}, y2[4] = {1, -1, 1, -1};
    nb_tensor *X = nb_tensor_from(2, (int64_t[]){4, 1}, xs);
    nb_svm_opts o;
    nb_svm_default_opts(&o);
    CHECK(nb_svm_fit(X, y1, &o) == NULL && strstr(nb_errmsg(), "one class"));
    /* logistic regression likewise, naming the one label (its branch never ran) */
    float y3[4] = {3, 3, 3, 3};
    CHECK(nb_logreg_fit(X, y3, &(nb_logreg_opts){0}) == NULL);
    CHECK_MSG(strstr(nb_errmsg(), "the labels hold one class only (3): a classifier needs at least 2"), "%s", nb_errmsg());
    o.C = -1;
    CHECK(nb_svm_fit(X, y2, &o) == NULL && strstr(nb_errmsg(), "C (-c)"));
    nb_kernel k;
    CHECK(nb_kernel_from_name("2", &k) == 0 && k == NB_KERNEL_RBF);
    CHECK(nb_kernel_from_name("poly", &k) == 0 && k == NB_KERNEL_POLY);
    CHECK(nb_kernel_from_name("4", &k) < 0);
    CHECK(nb_kernel_from_name(NULL, &k) < 0 && strstr(nb_errmsg(), "unknown kernel")); /* was a segfault */
    nb_tensor_free(X);
}

/* NaN options passed the "< 0" checks and silently meant the defaults; an
 * infinite gd step made every weight NaN, an infinite l2 an illegal LAPACK
 * argument (printed by LAPACK, no message of ours). */
TEST(test_linreg_and_logreg_refuse_non_finite_options) {
    float xs[4] = {0, 1, 2, 3}, y[4] = {0, 0, 1, 1};
    nb_tensor *X = nb_tensor_from(2, (int64_t[]){4, 1}, xs);
    nb_linreg_opts lo[] = {{.l2 = NAN}, {.method = NB_LINREG_GD, .lr = INFINITY}, {.l2 = INFINITY},
                           {.method = NB_LINREG_BAYES, .prior_precision = NAN}, {.method = NB_LINREG_BAYES, .noise_var = NAN}};
    for (int i = 0; i < 5; i++)
        CHECK_MSG(nb_linreg_fit(X, y, &lo[i]) == NULL && strstr(nb_errmsg(), "linreg_fit") && strstr(nb_errmsg(), "finite"),
                  "linreg options %d", i);
    nb_logreg_opts go[] = {{.C = NAN}, {.tol = NAN}, {.solver = NB_SOLVER_GD, .lr = INFINITY}};
    for (int i = 0; i < 3; i++)
        CHECK_MSG(nb_logreg_fit(X, y, &go[i]) == NULL && strstr(nb_errmsg(), "logreg_fit"), "logreg options %d", i);
    nb_logreg *m = nb_logreg_fit(X, y, &(nb_logreg_opts){.C = INFINITY}); /* no penalty: allowed */
    CHECK(m != NULL);
    nb_logreg_free(m);
    nb_tensor_free(X);
}

/* --- LIBSVM text format ------------------------------------------------------ */

TEST(test_classic_libsvm_roundtrip) {
    const char *text = "+1 1:0.5 3:-2\n-1 2:1e-3\n\n2.5 3:7 10:1\n";
    nb_tensor *X;
    float *y;
    CHECK(nb_libsvm_parse(text, strlen(text), "t", 0, &X, &y) == 0);
    CHECK(X->shape[0] == 3 && X->shape[1] == 10);
    CHECK(y[0] == 1 && y[1] == -1 && y[2] == 2.5f);
    CHECK(X->data[0] == 0.5f && X->data[2] == -2 && X->data[1] == 0 && X->data[10 + 1] == 1e-3f && X->data[29] == 1);
    char path[] = "/tmp/nb_libsvm_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(nb_libsvm_write(path, X, y) == 0);
    nb_tensor *X2;
    float *y2;
    CHECK(nb_libsvm_read(path, 12, &X2, &y2) == 0);
    CHECK(X2->shape[0] == 3 && X2->shape[1] == 12);
    for (int64_t i = 0; i < 3; i++) {
        CHECK(y2[i] == y[i]);
        for (int64_t j = 0; j < 10; j++) CHECK(X2->data[i * 12 + j] == X->data[i * 10 + j]);
    }
    unlink(path);
    nb_tensor_free(X);
    nb_tensor_free(X2);
    free(y);
    free(y2);
}

/* SVMlight files (a superset LIBSVM tools and scikit-learn read): "# ..."
 * comment lines and line tails, "qid:N" after the label, lone-CR line ends.
 * Each was refused ("bad label '#'", "bad index 'qid'", "expected
 * index:value, got '-1'" for a CR-only file). */
TEST(test_classic_libsvm_svmlight_comments_qid_and_cr_lines) {
    const char *texts[] = {
        "# made by hand\n1 qid:3 1:0.5 3:2 # first\n-1 qid:3 2:1\n#\n",
        "1 1:0.5 3:2\r-1 2:1\r",
    };
    for (int k = 0; k < 2; k++) {
        nb_tensor *X = NULL;
        float *y = NULL;
        CHECK_MSG(nb_libsvm_parse(texts[k], strlen(texts[k]), "s.svm", 0, &X, &y) == 0, "case %d: %s", k, nb_errmsg());
        if (!X) continue;
        CHECK(X->shape[0] == 2 && X->shape[1] == 3 && y[0] == 1 && y[1] == -1);
        const float want[6] = {0.5f, 0, 2, 0, 1, 0};
        for (int i = 0; i < 6 && X->size == 6; i++) CHECK(X->data[i] == want[i]);
        nb_tensor_free(X);
        free(y);
    }
    CHECK(nb_sniff((const uint8_t *)texts[0], strlen(texts[0])) == NB_FILE_LIBSVM);
    CHECK(nb_sniff((const uint8_t *)texts[1], strlen(texts[1])) == NB_FILE_LIBSVM);
    nb_tensor *X = NULL;
    float *y = NULL;
    CHECK(nb_libsvm_parse("1 qid:x 1:2\n", 12, "q.svm", 0, &X, &y) < 0 && strstr(nb_errmsg(), "q.svm:1:3: bad query id"));
}

TEST(test_classic_libsvm_malformed_lines) {
    struct { const char *text, *want; } cases[] = {
        {"1 1:2 3:1\n1 3:1 2:5\n", "f:2:7: index 2 after 3"},
        {"1 1:2 2:1 2:3\n", "f:1:11: index 2 after 2"},
        {"1 1:2\n-1 4 5:1\n", "f:2:4: expected index:value, got '4' (missing ':')"},
        {"1 1:nan\n", "f:1:5: value 'nan' is NaN"},
        {"1 1:2\n0 2:NaN\n", "f:2:5: value 'NaN' is NaN"},
        {"1 1:inf\n", "not finite"},
        /* Found by fuzz_libsvm: finite as a double, infinite as the float32 label. */
        {"3\n 17e38\n", "f:2:2: label '17e38' is not a finite number in float32"},
        {"x 1:2\n", "f:1:1: bad label 'x'"},
        {"1:2 3:4\n", "f:1:1: expected a label"},
        {"1 0:2\n", "f:1:3: index 0: indices start at 1"},
        {"1 a:2\n", "f:1:3: bad index 'a'"},
        {"1 2:\n", "f:1:5: missing value"},
        {"1 2:3x\n", "f:1:5: bad value '3x'"},
        {"1 :3\n", "f:1:3: missing index"},
        {"\n\n", "no examples"},
        /* Longer than the reader's 63-character buffer: cut, these read as 1e-61 (not 10) and 0.1. */
        {"1 1:0.0000000000000000000000000000000000000000000000000000000000001e62\n",
         "f:1:5: value '0.000000000000000000...' is longer than 63 characters"},
        {"0.1000000000000000000000000000000000000000000000000000000000000000e1 1:1\n",
         "f:1:1: label '0.100000000000000000...' is longer than 63 characters"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nb_tensor *X = (nb_tensor *)1;
        float *y = (float *)1;
        int rc = nb_libsvm_parse(cases[k].text, strlen(cases[k].text), "f", 0, &X, &y);
        CHECK_MSG(rc < 0 && X == NULL && y == NULL, "case %zu parsed", k);
        CHECK_MSG(strstr(nb_errmsg(), cases[k].want), "case %zu: got '%s', want '%s'", k, nb_errmsg(), cases[k].want);
    }
}

/* Edges of the LIBSVM reader and writer: CRLF lines; examples without any
 * feature (one zero column); an index too large to hold refused by name; a
 * value that float32 cannot hold; the writer's labels and values read back
 * bit for bit (%.9g is exact for float32, fewer digits are not). */
TEST(test_classic_libsvm_crlf_empty_rows_bounds_and_exact_round_trip) {
    const char *crlf = "1 1:0.5 3:2\r\n-1 2:4\r\n";
    nb_tensor *X;
    float *y;
    CHECK_MSG(nb_libsvm_parse(crlf, strlen(crlf), "c", 0, &X, &y) == 0, "%s", nb_errmsg());
    CHECK(X && X->shape[0] == 2 && X->shape[1] == 3 && X->data[0] == 0.5f && X->data[2] == 2 && X->data[4] == 4);
    CHECK(y && y[0] == 1 && y[1] == -1);
    nb_tensor_free(X);
    free(y);
    CHECK_MSG(nb_libsvm_parse("1\n0\n", 4, "e", 0, &X, &y) == 0, "%s", nb_errmsg());
    CHECK(X && X->shape[0] == 2 && X->shape[1] == 1 && X->data[0] == 0 && X->data[1] == 0 && y[1] == 0);
    nb_tensor_free(X);
    free(y);
    const char *bad[][2] = {{"1 123456789012345678901234:1\n", "f:1:3: bad index '123456789012345678901234'"},
                            {"1 2:1e39\n", "f:1:5: value '1e39' is not finite in float32"},
                            {"1 2:-1e39\n", "not finite in float32"}};
    for (int k = 0; k < 3; k++) {
        int rc = nb_libsvm_parse(bad[k][0], strlen(bad[k][0]), "f", 0, &X, &y);
        CHECK_MSG(rc < 0 && strstr(nb_errmsg(), bad[k][1]), "case %d: got '%s'", k, rc < 0 ? nb_errmsg() : "parsed");
        if (rc == 0) nb_tensor_free(X), free(y);
    }
    /* a NUL byte: "2\0junk" read as 2 unsaid; a long token without ':' is
     * shown cut to the reader's buffer (it was copied whole into it) */
    int rc = nb_libsvm_parse("1 1:2\0junk\n", 11, "n", 0, &X, &y);
    CHECK_MSG(rc < 0 && strstr(nb_errmsg(), "n: not a text file (contains NUL bytes)"), "NUL: %s",
              rc < 0 ? nb_errmsg() : "parsed");
    if (rc == 0) nb_tensor_free(X), free(y);
    char line[400] = "1 ";
    memset(line + 2, 'x', 300);
    strcpy(line + 302, "\n");
    char want[160] = "f:1:3: expected index:value, got '";
    memset(want + strlen(want), 'x', 63);
    strcat(want, "' (missing ':')");
    rc = nb_libsvm_parse(line, strlen(line), "f", 0, &X, &y);
    CHECK_MSG(rc < 0 && strstr(nb_errmsg(), want), "long token: %s", rc < 0 ? nb_errmsg() : "parsed");
    if (rc == 0) nb_tensor_free(X), free(y);
    /* the writer refuses what the reader would refuse, and writes nothing */
    char bad_path[] = "/tmp/nb_libsvm_XXXXXX";
    close(mkstemp(bad_path));
    unlink(bad_path);
    nb_tensor *F = nb_tensor_from(2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
    CHECK(nb_libsvm_write(bad_path, F, (float[]){1, INFINITY}) == -1 && strstr(nb_errmsg(), "label 1 is not finite"));
    F->data[1] = NAN;
    CHECK(nb_libsvm_write(bad_path, F, (float[]){1, 0}) == -1 && strstr(nb_errmsg(), "X[0, 1] is not finite"));
    CHECK(access(bad_path, F_OK) != 0);
    nb_tensor_free(F);
    float v[6] = {1.f / 3, 3.14159274f, -2.7182817f, 1.00000012f, 123456.789f, 1e-30f};
    float lab[2] = {0.1f, -16777215.f};
    nb_tensor *W = nb_tensor_from(2, (int64_t[]){2, 3}, v);
    char path[] = "/tmp/nb_libsvm_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(nb_libsvm_write(path, W, lab) == 0);
    CHECK(nb_libsvm_read(path, 0, &X, &y) == 0);
    CHECK(X && X->shape[1] == 3 && memcmp(X->data, v, sizeof v) == 0);
    CHECK(y && y[0] == lab[0] && y[1] == lab[1]);
    unlink(path);
    nb_tensor_free(W);
    nb_tensor_free(X);
    free(y);
}

/* --- factor models (eq. 24) --------------------------------------------------- */

/* log N(x; mu, C) directly, via LAPACK's slogdet and inverse. */
static double gauss_logpdf(const float *x, const double *mu, const nb_tensor *C) {
    int64_t d = C->shape[0];
    double sgn, ld;
    nb_linalg_slogdet(C, &sgn, &ld);
    nb_tensor *P = nb_linalg_inv(C);
    double q = 0;
    for (int64_t a = 0; a < d; a++)
        for (int64_t b = 0; b < d; b++) q += (x[a] - mu[a]) * P->data[a * d + b] * (x[b] - mu[b]);
    nb_tensor_free(P);
    return -0.5 * (d * log(2 * M_PI) + ld + q);
}

/* Data from x = W^T h + mu + noise. eq. 24: p(x) = E_h[p(x | h)], the
 * latent variable integrated out, equals N(x; mu, W^T W + Psi): checked by
 * Monte Carlo over h for the fitted ppca and fa models, and the closed form
 * against the model's loglik. The latent posterior mean is the linear
 * Gaussian formula. */
TEST(test_eq_24_factor_models_marginal) {
    nb_rng r;
    nb_rng_seed(&r, 13, 0);
    int64_t n = 2000, d = 5;
    int k = 2;
    double Wt[2][5] = {{1, 0.5, -0.5, 0, 0.8}, {0, 1, 0.5, -1, 0.2}}, psi[5] = {0.1, 0.2, 0.1, 0.3, 0.15};
    nb_tensor *X = nb_tensor_new(2, (int64_t[]){n, d});
    for (int64_t i = 0; i < n; i++) {
        double h0 = nb_rng_normal(&r), h1 = nb_rng_normal(&r);
        for (int64_t j = 0; j < d; j++)
            X->data[i * d + j] = (float)(Wt[0][j] * h0 + Wt[1][j] * h1 + 1.0 + sqrt(psi[j]) * nb_rng_normal(&r));
    }
    nb_factor_kind kinds[3] = {NB_FACTOR_PCA, NB_FACTOR_PPCA, NB_FACTOR_FA};
    for (int t = 0; t < 3; t++) {
        nb_factor *m = nb_factor_fit(X, &(nb_factor_opts){.kind = kinds[t], .k = k});
        CHECK(m != NULL);
        if (!m) continue;
        /* The model covariance C = W^T W + Psi (pca: ppca's W). */
        nb_tensor *C = nb_tensor_new(2, (int64_t[]){d, d});
        double Wl[2][5];
        for (int q = 0; q < k; q++)
            for (int64_t j = 0; j < d; j++)
                Wl[q][j] = m->W[q * d + j] * (kinds[t] == NB_FACTOR_PCA ? sqrt(m->variance[q] - m->psi[0]) : 1.0);
        for (int64_t a = 0; a < d; a++)
            for (int64_t b = 0; b < d; b++)
                C->data[a * d + b] = (float)(Wl[0][a] * Wl[0][b] + Wl[1][a] * Wl[1][b] + (a == b ? m->psi[a] : 0));
        double *per = malloc(sizeof(double) * n), mean = nb_factor_loglik(m, X, per), s = 0;
        for (int64_t i = 0; i < n; i++) s += per[i];
        CHECK_NEAR(mean, s / n, 1e-12);
        for (int64_t i = 0; i < 3; i++) CHECK_NEAR(per[i], gauss_logpdf(X->data + i * d, m->mean, C), 1e-4);
        /* Monte Carlo over h of prod_j N(x_j; (W^T h)_j + mu_j, psi_j). */
        const float *x = X->data;
        double acc = 0;
        int S = 40000;
        for (int smp = 0; smp < S; smp++) {
            double h[2] = {nb_rng_normal(&r), nb_rng_normal(&r)}, lp = 0;
            for (int64_t j = 0; j < d; j++) {
                double mj = Wl[0][j] * h[0] + Wl[1][j] * h[1] + m->mean[j];
                lp += -0.5 * log(2 * M_PI * m->psi[j]) - (x[j] - mj) * (x[j] - mj) / (2 * m->psi[j]);
            }
            acc += exp(lp);
        }
        CHECK_NEAR(log(acc / S), per[0], 0.05);
        /* The fitted covariance approaches the true W^T W + Psi. */
        double C00 = Wt[0][0] * Wt[0][0] + Wt[1][0] * Wt[1][0] + psi[0];
        CHECK_NEAR(C->data[0], C00, 0.12);
        if (kinds[t] != NB_FACTOR_PCA) {
            /* E[h | x] = M^-1 W Psi^-1 (x - mu), M = I + W Psi^-1 W^T (2 x 2 by hand). */
            double M[4] = {1, 0, 0, 1}, u[2] = {0, 0};
            for (int64_t j = 0; j < d; j++) {
                M[0] += Wl[0][j] * Wl[0][j] / m->psi[j];
                M[1] += Wl[0][j] * Wl[1][j] / m->psi[j];
                M[3] += Wl[1][j] * Wl[1][j] / m->psi[j];
                u[0] += Wl[0][j] * (x[j] - m->mean[j]) / m->psi[j];
                u[1] += Wl[1][j] * (x[j] - m->mean[j]) / m->psi[j];
            }
            M[2] = M[1];
            double det = M[0] * M[3] - M[1] * M[1], H[2], cov[4];
            nb_tensor *x0 = nb_tensor_from(2, (int64_t[]){1, d}, x);
            nb_factor_transform(m, x0, H, cov);
            CHECK_NEAR(H[0], (M[3] * u[0] - M[1] * u[1]) / det, 1e-6);
            CHECK_NEAR(H[1], (M[0] * u[1] - M[1] * u[0]) / det, 1e-6);
            CHECK_NEAR(cov[0], M[3] / det, 1e-9);
            CHECK_NEAR(cov[1], -M[1] / det, 1e-9);
            nb_tensor_free(x0);
        } else {
            CHECK_NEAR(m->variance[0] + m->variance[1] <= m->total_variance, 1, 0);
        }
        free(per);
        nb_tensor_free(C);
        nb_factor_free(m);
    }
    nb_tensor_free(X);
}

/* pca and ppca with k = d keep every direction: no variance is left for the
 * noise (sigma^2 = 0), so the log-likelihood is that of N(mu, S) itself, S
 * the sample covariance (ddof 1), by its Cholesky factor rather than by
 * Woodbury (which divides by sigma^2). Data confined to a line has a
 * singular S: every row's log-likelihood is then -inf, not NaN. */
TEST(test_factor_loglik_with_every_direction_kept) {
    int64_t n = 40, d = 3;
    nb_tensor *X = nb_tensor_new(2, (int64_t[]){n, d});
    for (int64_t i = 0; i < n * d; i++) X->data[i] = (float)nb_rng_normal(nb_test_rng());
    for (int64_t i = 0; i < n; i++) X->data[i * d + 2] += 0.5f * X->data[i * d]; /* correlated */
    double mu[3] = {0}, S[9] = {0};
    for (int64_t i = 0; i < n; i++)
        for (int64_t a = 0; a < d; a++) mu[a] += X->data[i * d + a] / (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t a = 0; a < d; a++)
            for (int64_t b = 0; b < d; b++)
                S[a * d + b] += (X->data[i * d + a] - mu[a]) * (X->data[i * d + b] - mu[b]) / (double)(n - 1);
    nb_tensor *C = nb_tensor_new(2, (int64_t[]){d, d});
    for (int64_t i = 0; i < d * d; i++) C->data[i] = (float)S[i];
    nb_factor_kind kinds[2] = {NB_FACTOR_PCA, NB_FACTOR_PPCA};
    for (int t = 0; t < 2; t++) {
        nb_factor *m = nb_factor_fit(X, &(nb_factor_opts){.kind = kinds[t], .k = (int)d});
        CHECK_MSG(m, "%s", nb_errmsg());
        if (!m) continue;
        CHECK(m->psi[0] == 0);
        double per[40], mean = nb_factor_loglik(m, X, per), s = 0;
        for (int64_t i = 0; i < n; i++) {
            CHECK_NEAR(per[i], gauss_logpdf(X->data + i * d, mu, C), 1e-4);
            s += per[i];
        }
        CHECK_NEAR(mean, s / (double)n, 1e-12);
        nb_factor_free(m);
    }
    /* on a line: x = (u, 2u, -u) */
    for (int64_t i = 0; i < n; i++) {
        float u = (float)nb_rng_normal(nb_test_rng());
        X->data[i * d] = u, X->data[i * d + 1] = 2 * u, X->data[i * d + 2] = -u;
    }
    nb_factor *m = nb_factor_fit(X, &(nb_factor_opts){.kind = NB_FACTOR_PCA, .k = (int)d});
    CHECK_MSG(m, "%s", nb_errmsg());
    if (m) {
        double per[40], mean = nb_factor_loglik(m, X, per);
        CHECK_MSG(mean == -INFINITY, "mean log-likelihood %g", mean);
        for (int64_t i = 0; i < n; i++) CHECK(per[i] == -INFINITY);
        nb_factor_free(m);
    }
    nb_tensor_free(C);
    nb_tensor_free(X);
}

/* --- Gaussian mixture (appendix B) ---------------------------------------------- */

/* The mixture density log sum_c P(c) N(x; mu_c, S_c) by hand; one EM
 * iteration never lowers the likelihood; three separated blobs are found;
 * BIC = -2 log L + p log n. */
/* PPCA's sigma^2 with fewer samples than variables: the mean of all d - k
 * discarded eigenvalues of the sample covariance, zeros included (Tipping &
 * Bishop's MLE). Three centred rows whose columns are orthogonal:
 * a (1, -1, 0), b (1, 1, -2), 0, 0 give the eigenvalues a^2, 3 b^2, 0, 0
 * (ddof 1); with a = 2, b = 1 and k = 1: 4 kept, sigma^2 = (3 + 0 + 0) / 3
 * = 1 (scikit-learn, averaging min(n, d) - k = 2 of them, has 1.5). */
TEST(test_ppca_sigma2_counts_the_zero_eigenvalues_when_n_below_d) {
    float x[12] = {2, 1, 0, 0, -2, 1, 0, 0, 0, -2, 0, 0};
    nb_tensor *X = nb_tensor_from(NB_SHAPE(3, 4), x);
    for (int kind = NB_FACTOR_PCA; kind <= NB_FACTOR_PPCA; kind++) {
        nb_factor *m = nb_factor_fit(X, &(nb_factor_opts){.kind = (nb_factor_kind)kind, .k = 1});
        CHECK(m != NULL);
        if (!m) continue;
        CHECK_NEAR(m->variance[0], 4.0, 1e-9);
        CHECK_NEAR(m->total_variance, 7.0, 1e-9);
        for (int j = 0; j < 4; j++) CHECK_NEAR(m->psi[j], 1.0, 1e-9);
        if (kind == NB_FACTOR_PPCA) /* W = sqrt(4 - 1) u, u = +-e_1 */
            CHECK_NEAR(fabs(m->W[0]), sqrt(3.0), 1e-9);
        nb_factor_free(m);
    }
    nb_tensor_free(X);
}

/* Identical rows have no variance to explain: each factor model refuses
 * them (the explained-variance ratio was 0/0, printed as -nan). */
TEST(test_factor_models_refuse_identical_rows) {
    float x[8] = {1, 2, 1, 2, 1, 2, 1, 2};
    nb_tensor *X = nb_tensor_from(NB_SHAPE(4, 2), x);
    for (int kind = NB_FACTOR_PCA; kind <= NB_FACTOR_FA; kind++) {
        nb_factor *m = nb_factor_fit(X, &(nb_factor_opts){.kind = (nb_factor_kind)kind, .k = 1});
        CHECK(m == NULL);
        CHECK(strstr(nb_errmsg(), "all the same") != NULL);
        nb_factor_free(m);
        nb_clear_error();
    }
    nb_tensor_free(X);
}

TEST(test_eq_gmm_mixture_density_and_em) {
    nb_rng r;
    nb_rng_seed(&r, 14, 0);
    int64_t n = 900, d = 2;
    double cen[3][2] = {{0, 0}, {6, 0}, {0, 6}};
    nb_tensor *X = nb_tensor_new(2, (int64_t[]){n, d});
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        X->data[i * 2] = (float)(cen[c][0] + (c == 1 ? 1.5 : 1.0) * nb_rng_normal(&r));
        X->data[i * 2 + 1] = (float)(cen[c][1] + 0.7 * nb_rng_normal(&r) + (c == 2 ? 0.5 * X->data[i * 2] : 0));
    }
    for (int diag = 0; diag < 2; diag++) {
        double prev = -INFINITY;
        for (int it = 1; it <= 6; it++) {
            nb_gmm *m = nb_gmm_fit(X, &(nb_gmm_opts){.k = 3, .diagonal = diag, .max_iter = it, .tol = 1e-12, .seed = 2});
            CHECK(m != NULL);
            CHECK_MSG(m->loglik >= prev - 1e-9, "EM lowered the log-likelihood at iteration %d", it);
            prev = m->loglik;
            nb_gmm_free(m);
        }
        nb_gmm *m = nb_gmm_fit(X, &(nb_gmm_opts){.k = 3, .diagonal = diag, .seed = 2});
        CHECK(m && m->converged);
        double *resp = malloc(sizeof(double) * n * 3), s = nb_gmm_score(m, X, resp);
        CHECK_NEAR(s, m->loglik, 1e-9);
        /* By hand for row 0: log sum_c w_c N(x; mu_c, S_c). */
        const float *x = X->data;
        double p = 0, pc[3];
        for (int c = 0; c < 3; c++) {
            double S[4];
            if (diag) S[0] = m->covs[c * 2], S[1] = S[2] = 0, S[3] = m->covs[c * 2 + 1];
            else memcpy(S, m->covs + c * 4, sizeof S);
            double det = S[0] * S[3] - S[1] * S[2], dx = x[0] - m->means[c * 2], dy = x[1] - m->means[c * 2 + 1];
            double q = (S[3] * dx * dx - 2 * S[1] * dx * dy + S[0] * dy * dy) / det;
            pc[c] = m->weights[c] * exp(-0.5 * q) / (2 * M_PI * sqrt(det));
            p += pc[c];
        }
        double *per = malloc(sizeof(double) * n);
        nb_tensor *x0 = nb_tensor_from(2, (int64_t[]){1, 2}, x);
        CHECK_NEAR(nb_gmm_score(m, x0, NULL), log(p), 1e-9);
        for (int c = 0; c < 3; c++) CHECK_NEAR(resp[c], pc[c] / p, 1e-9);
        /* Each true center has a fitted mean near it, with weight ~1/3. */
        for (int t = 0; t < 3; t++) {
            double best = INFINITY;
            int bc = 0;
            for (int c = 0; c < 3; c++) {
                double dd = hypot(m->means[c * 2] - cen[t][0], m->means[c * 2 + 1] - cen[t][1]);
                if (dd < best) best = dd, bc = c;
            }
            CHECK(best < 0.3);
            CHECK_NEAR(m->weights[bc], 1.0 / 3, 0.03);
        }
        int64_t np = diag ? 2 + 6 + 6 : 2 + 6 + 9;
        CHECK(nb_gmm_nparams(m) == np);
        CHECK_NEAR(nb_gmm_bic(m, X), -2 * m->loglik * n + np * log((double)n), 1e-9);
        free(per);
        free(resp);
        nb_tensor_free(x0);
        nb_gmm_free(m);
    }
    nb_tensor_free(X);
}

/* Reference E-step for one row, written plainly: log P(c) N(x; mu_c, S_c)
 * through a Cholesky factor S = L L^T computed here (Mahalanobis term by
 * forward substitution, log det S = 2 sum log L_jj), then log-sum-exp.
 * Fills resp [k] and returns log p(x). */
static double gmm_ref_row(const nb_gmm *m, const float *x, double *resp) {
    int64_t d = m->d;
    int k = m->k;
    double lp[8], L[64], z[8], mx = -INFINITY, se = 0;
    for (int c = 0; c < k; c++) {
        for (int64_t a = 0; a < d; a++)
            for (int64_t b = 0; b < d; b++)
                L[a * d + b] = m->diagonal ? (a == b ? m->covs[c * d + a] : 0) : m->covs[c * d * d + a * d + b];
        for (int64_t j = 0; j < d; j++) { /* Cholesky-Banachiewicz */
            for (int64_t i = 0; i <= j; i++) {
                double s = L[j * d + i];
                for (int64_t t = 0; t < i; t++) s -= L[j * d + t] * L[i * d + t];
                L[j * d + i] = i == j ? sqrt(s) : s / L[i * d + i];
            }
        }
        double maha = 0, logdet = 0;
        for (int64_t j = 0; j < d; j++) {
            double s = x[j] - m->means[c * d + j];
            for (int64_t t = 0; t < j; t++) s -= L[j * d + t] * z[t];
            z[j] = s / L[j * d + j];
            maha += z[j] * z[j];
            logdet += 2 * log(L[j * d + j]);
        }
        lp[c] = log(m->weights[c]) - 0.5 * ((double)d * log(2 * M_PI) + logdet + maha);
        mx = fmax(mx, lp[c]);
    }
    for (int c = 0; c < k; c++) se += exp(lp[c] - mx);
    for (int c = 0; c < k; c++) resp[c] = exp(lp[c] - mx - log(se));
    return mx + log(se);
}

/* The blocked, threaded E-step and M-step (row blocks, a GEMM for all the
 * components' Mahalanobis terms, SYRKs per component) against the
 * definitions: one EM iteration of the library (the fit stopped after 2
 * iterations is the one stopped after 1, plus an E-step and an M-step) is
 * redone here in plain loops from the 1-iteration model. n spans several
 * E-step and M-step blocks with a ragged last one; 1 and 2 threads must
 * give the same bits (block sums are added in block order, each component's
 * covariance by one thread). */
TEST(test_eq_gmm_blocked_em_step_matches_reference) {
    nb_rng r;
    nb_rng_seed(&r, 16, 0);
    const int64_t n = 1300, d = 6;
    const int k = 4;
    nb_tensor *X = nb_tensor_new(2, (int64_t[]){n, d});
    for (int64_t i = 0; i < n; i++) /* four correlated blobs */
        for (int64_t j = 0; j < d; j++)
            X->data[i * d + j] = (float)(3.0 * (double)((i % 4) == j % 4) + nb_rng_normal(&r) +
                                         (j ? 0.6 * X->data[i * d + j - 1] : 0));
    int threads = nb_get_threads();
    for (int diag = 0; diag < 2; diag++) {
        nb_gmm *m1 = NULL, *m2 = NULL;
        for (int th = 1; th <= 2; th++) {
            nb_set_threads(th);
            nb_gmm_opts o = {.k = k, .diagonal = diag, .max_iter = 1, .tol = 1e-300, .seed = 3};
            nb_gmm *a = nb_gmm_fit(X, &o);
            o.max_iter = 2;
            nb_gmm *b = nb_gmm_fit(X, &o);
            CHECK(a && b && a->iters == 1 && b->iters == 2);
            if (th == 1) {
                m1 = a, m2 = b;
                continue;
            }
            int64_t per = diag ? d : d * d;
            CHECK_MSG(a->loglik == m1->loglik && b->loglik == m2->loglik, "thread count changed the log-likelihood");
            CHECK(!memcmp(b->means, m2->means, sizeof(double) * (size_t)(k * d)));
            CHECK(!memcmp(b->covs, m2->covs, sizeof(double) * (size_t)(k * per)));
            CHECK(!memcmp(b->weights, m2->weights, sizeof(double) * (size_t)k));
            nb_gmm_free(a);
            nb_gmm_free(b);
        }
        nb_set_threads(threads);
        /* E-step: responsibilities and mean log p(x) of m1. */
        double *resp = malloc(sizeof(double) * (size_t)(n * k)), *ref = malloc(sizeof(double) * (size_t)(n * k));
        double ll = 0, s = nb_gmm_score(m1, X, resp), err = 0;
        for (int64_t i = 0; i < n; i++) ll += gmm_ref_row(m1, X->data + i * d, ref + i * k);
        for (int64_t i = 0; i < n * k; i++) err = fmax(err, fabs(resp[i] - ref[i]));
        CHECK_NEAR(s, ll / (double)n, 1e-10);
        CHECK_MSG(err < 1e-10, "responsibilities differ by %g", err);
        /* M-step on the reference responsibilities: N_c, P(c), mu_c, Sigma_c. */
        for (int c = 0; c < k; c++) {
            double N = 10 * DBL_EPSILON, mu[6] = {0}, S[36] = {0};
            for (int64_t i = 0; i < n; i++) N += ref[i * k + c];
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < d; j++) mu[j] += ref[i * k + c] * X->data[i * d + j] / N;
            for (int64_t i = 0; i < n; i++)
                for (int64_t a = 0; a < d; a++)
                    for (int64_t b = 0; b < d; b++)
                        S[a * d + b] += ref[i * k + c] * (X->data[i * d + a] - mu[a]) * (X->data[i * d + b] - mu[b]) / N;
            CHECK_NEAR(m2->weights[c], N / (double)n, 1e-10);
            for (int64_t j = 0; j < d; j++) CHECK_NEAR(m2->means[c * d + j], mu[j], 1e-9);
            for (int64_t a = 0; a < d; a++)
                for (int64_t b = 0; b < d; b++) {
                    double want = S[a * d + b] + (a == b ? 1e-6 : 0);
                    if (diag && a == b) CHECK_NEAR(m2->covs[c * d + a], want, 1e-9);
                    if (!diag) CHECK_NEAR(m2->covs[c * d * d + a * d + b], want, 1e-9);
                }
        }
        free(resp);
        free(ref);
        nb_gmm_free(m1);
        nb_gmm_free(m2);
    }
    nb_tensor_free(X);
}

/* --- model files ------------------------------------------------------------------ */

/* One model of every kind nabla fit saves, fitted on X (and y, labels 0, 1,
 * 2): Bayesian linreg, logreg, SVM, PCA, PPCA, FA, full and diagonal GMM.
 * Fills ms[0..8) and returns 8; each is freed with nb_classic_free. */
enum { N_KINDS = 8 };
static int fit_every_kind(const nb_tensor *X, const float *y, nb_classic ms[N_KINDS]) {
    nb_svm_opts so;
    nb_svm_default_opts(&so);
    nb_classic all[N_KINDS] = {
        {.kind = "linreg", .linreg = nb_linreg_fit(X, y, &(nb_linreg_opts){.method = NB_LINREG_BAYES})},
        {.kind = "logreg", .logreg = nb_logreg_fit(X, y, NULL)},
        {.kind = "svm", .svm = nb_svm_fit(X, y, &so)},
        {.kind = "pca", .factor = nb_factor_fit(X, &(nb_factor_opts){.kind = NB_FACTOR_PCA, .k = 2})},
        {.kind = "ppca", .factor = nb_factor_fit(X, &(nb_factor_opts){.kind = NB_FACTOR_PPCA, .k = 2})},
        {.kind = "fa", .factor = nb_factor_fit(X, &(nb_factor_opts){.kind = NB_FACTOR_FA, .k = 1})},
        {.kind = "gmm", .gmm = nb_gmm_fit(X, &(nb_gmm_opts){.k = 2})},
        {.kind = "gmm", .gmm = nb_gmm_fit(X, &(nb_gmm_opts){.k = 2, .diagonal = true})},
    };
    memcpy(ms, all, sizeof all);
    return N_KINDS;
}

TEST(test_classic_model_files_roundtrip) {
    nb_rng r;
    nb_rng_seed(&r, 15, 0);
    int64_t n = 120, d = 3;
    nb_tensor *X = randn(n, d, &r);
    float *y = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) y[i] = X->data[i * d] + X->data[i * d + 1] > 0 ? 1.f : (i % 5 == 0 ? 2.f : 0.f);
    nb_classic ms[N_KINDS];
    int nkinds = fit_every_kind(X, y, ms);
    char path[] = "/tmp/nb_classic_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    for (int t = 0; t < nkinds; t++) {
        CHECK_MSG(nb_classic_save(&ms[t], path, (const char *[]){"k"}, (const char *[]){"v"}, 1) == 0, "%s: %s", ms[t].kind, nb_errmsg());
        nb_classic l;
        CHECK_MSG(nb_classic_load(path, &l) == 0, "%s: %s", ms[t].kind, nb_errmsg());
        CHECK(l.kind && !strcmp(l.kind, ms[t].kind) && nb_classic_features(&l) == d);
        double a = 0, b = 0;
        if (l.linreg) {
            double p1, p2;
            nb_tensor *x0 = nb_tensor_from(2, (int64_t[]){1, d}, X->data);
            nb_linreg_predict(ms[t].linreg, x0, &p1, &a);
            nb_linreg_predict(l.linreg, x0, &p2, &b);
            CHECK_NEAR(p1, p2, 1e-5);
            nb_tensor_free(x0);
        } else if (l.logreg || l.svm) {
            float *p1 = malloc(sizeof(float) * n), *p2 = malloc(sizeof(float) * n);
            if (l.logreg) nb_logreg_predict(ms[t].logreg, X, NULL, p1), nb_logreg_predict(l.logreg, X, NULL, p2);
            else nb_svm_predict(ms[t].svm, X, p1), nb_svm_predict(l.svm, X, p2);
            int same = 0;
            for (int64_t i = 0; i < n; i++) same += p1[i] == p2[i];
            CHECK(same >= n - 1);
            free(p1);
            free(p2);
        } else if (l.factor) {
            a = nb_factor_loglik(ms[t].factor, X, NULL);
            b = nb_factor_loglik(l.factor, X, NULL);
        } else {
            a = nb_gmm_score(ms[t].gmm, X, NULL);
            b = nb_gmm_score(l.gmm, X, NULL);
        }
        CHECK_NEAR(a, b, 1e-4);
        nb_classic_free(&l);
        nb_classic_free(&ms[t]);
    }
    nb_clear_error();
    nb_tensor *w = nb_tensor_new(1, (int64_t[]){3});
    CHECK(nb_st_write(path, (const char *[]){"w"}, &w, 1, NULL, NULL, 0) == 0);
    nb_classic l;
    CHECK(nb_classic_load(path, &l) < 0 && strstr(nb_errmsg(), "not a model of `nabla fit`"));
    CHECK(nb_st_write(path, (const char *[]){"x"}, &w, 1, (const char *[]){"nabla.model"}, (const char *[]){"svm"}, 1) == 0);
    CHECK(nb_classic_load(path, &l) < 0 && strstr(nb_errmsg(), path));
    nb_tensor_free(w);
    unlink(path);
    nb_tensor_free(X);
    free(y);
}

TEST(test_logreg_defaults_ties_and_input_checks) {
    nb_rng r;
    nb_rng_seed(&r, 12, 0);
    int64_t n = 60, d = 2;
    nb_tensor *X = randn(n, d, &r);
    float *y = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) y[i] = X->data[i * d] + 0.5f * (float)nb_rng_normal(&r) > 0 ? 1.f : 0.f;
    /* The documented defaults: C 1, tol 1e-4, 100 L-BFGS iterations; gd at
     * rate 0.5 for 1000. Zeros must fit exactly what the values do. */
    const nb_logreg_opts dflt[2] = {{0}, {.solver = NB_SOLVER_GD}};
    const nb_logreg_opts expl[2] = {{.C = 1, .tol = 1e-4, .max_iter = 100},
                                    {.solver = NB_SOLVER_GD, .C = 1, .tol = 1e-4, .max_iter = 1000, .lr = 0.5}};
    for (int k = 0; k < 2; k++) {
        nb_logreg *a = nb_logreg_fit(X, y, &dflt[k]), *b = nb_logreg_fit(X, y, &expl[k]);
        CHECK(a && b && a->iters == b->iters && a->W[0] == b->W[0] && a->W[1] == b->W[1] && a->b[0] == b->b[0]);
        nb_logreg_free(a);
        nb_logreg_free(b);
    }
    /* gd stops once max |gradient| <= tol, and not before. */
    nb_logreg *g = nb_logreg_fit(X, y, &(nb_logreg_opts){.solver = NB_SOLVER_GD, .lr = 1, .max_iter = 5000, .tol = 1e-3});
    CHECK(g && g->iters < 5000);
    CHECK_MSG(g && logreg_stationarity(g, X, y, 1) < 1.05e-3, "gradient %g", logreg_stationarity(g, X, y, 1));
    nb_logreg_free(g);
    /* Equal probabilities: the first class. */
    nb_logreg t = {.d = 1, .nclass = 2, .k = 1, .classes = (double[]){3, 5}, .W = (double[]){0}, .b = (double[]){0}};
    float lab;
    double p[3];
    nb_tensor *x1 = nb_tensor_from(2, (int64_t[]){1, 1}, (float[]){0.7f});
    nb_logreg_predict(&t, x1, p, &lab);
    CHECK(lab == 3 && p[0] == 0.5 && p[1] == 0.5);
    t = (nb_logreg){.d = 1, .nclass = 3, .k = 3, .classes = (double[]){-1, 0, 4}, .W = (double[]){0, 0, 0},
                    .b = (double[]){0.1, 0.3, 0.3}};
    nb_logreg_predict(&t, x1, p, &lab);
    CHECK(lab == 0 && p[1] == p[2]);
    nb_tensor_free(x1);
    /* Every value is checked, the last included; no examples is an error. */
    X->data[n * d - 1] = NAN;
    CHECK(nb_logreg_fit(X, y, NULL) == NULL && strstr(nb_errmsg(), "not finite"));
    X->data[n * d - 1] = 0;
    y[n - 1] = INFINITY;
    CHECK(nb_logreg_fit(X, y, NULL) == NULL && strstr(nb_errmsg(), "y[59]"));
    nb_clear_error();
    nb_tensor *empty = nb_tensor_new(2, (int64_t[]){0, 2});
    CHECK(nb_logreg_fit(empty, y, NULL) == NULL && strstr(nb_errmsg(), "empty"));
    nb_clear_error();
    nb_tensor_free(empty);
    nb_tensor_free(X);
    free(y);
}

/* Every tensor of every kind's model file, grown by one in its last
 * dimension (the rows keep their values, one more column): read as the
 * loader expects, a [k, d+1] matrix would be taken row-major as [k, d] with
 * every row after the first shifted, and a [d+1] vector read one short. Each
 * is refused naming the file, or is the one tensor that sets d. */
TEST(test_classic_model_files_refuse_a_wrong_last_dimension) {
    nb_rng r;
    nb_rng_seed(&r, 16, 0);
    int64_t n = 90, d = 3;
    nb_tensor *X = randn(n, d, &r);
    float *y = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) y[i] = X->data[i * d] - X->data[i * d + 2] > 0 ? 1.f : (i % 4 == 0 ? 2.f : 0.f);
    nb_classic ms[N_KINDS];
    int nkinds = fit_every_kind(X, y, ms);
    char path[64], bad[80];
    snprintf(path, sizeof path, "/tmp/nabla-test-shape-%d.safetensors", (int)getpid());
    snprintf(bad, sizeof bad, "%s.bad", path);
    for (int t = 0; t < nkinds; t++) {
        CHECK_MSG(nb_classic_save(&ms[t], path, NULL, NULL, 0) == 0, "%s: %s", ms[t].kind, nb_errmsg());
        nb_safetensors *st = nb_st_read(path);
        CHECK_MSG(st, "%s", nb_errmsg());
        for (int e = 0; st && e < st->n; e++) {
            nb_tensor *ts[16], *a = st->entries[e].t;
            const char *names[16];
            CHECK(st->n <= 16);
            int64_t shape[8];
            memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
            int64_t last = shape[a->ndim - 1], rows = a->size / (last ? last : 1);
            shape[a->ndim - 1] = last + 1;
            nb_tensor *g = nb_tensor_new(a->ndim, shape);
            for (int64_t i = 0; i < rows; i++) {
                memcpy(g->data + i * (last + 1), a->data + i * last, sizeof(float) * (size_t)last);
                g->data[i * (last + 1) + last] = 0.5f;
            }
            for (int j = 0; j < st->n && j < 16; j++) ts[j] = j == e ? g : st->entries[j].t, names[j] = st->entries[j].name;
            CHECK(nb_st_write(bad, names, ts, st->n, (const char *const *)st->meta_keys,
                              (const char *const *)st->meta_vals, st->n_meta) == 0);
            /* Refused (naming the file and a tensor that disagrees), unless
             * the grown tensor alone sets the feature count: then the file
             * is a consistent model of d + 1 features. */
            nb_classic l;
            int rc = nb_classic_load(bad, &l);
            if (rc == 0) {
                CHECK_MSG(nb_classic_features(&l) == d + 1, "%s: '%s' one wider in its last dimension: accepted as "
                          "%lld features", ms[t].kind, st->entries[e].name, (long long)nb_classic_features(&l));
                nb_classic_free(&l);
            } else {
                CHECK_MSG(strstr(nb_errmsg(), bad) && strstr(nb_errmsg(), "tensor"), "%s: '%s': %s", ms[t].kind,
                          st->entries[e].name, nb_errmsg());
            }
            nb_clear_error();
            nb_tensor_free(g);
        }
        nb_st_free(st);
        nb_classic_free(&ms[t]);
    }
    unlink(path);
    unlink(bad);
    nb_tensor_free(X);
    free(y);
}

/* The numbers in a model file's metadata are what the fit can have written:
 * finite (gamma, C and coef0 of inf, or a noise variance of inf, were read
 * and made every prediction NaN or every score -inf), and the counts whole
 * numbers in range (a polynomial degree of 2.5 was read as 2). Each is
 * refused naming the file and the key. */
TEST(test_classic_model_files_refuse_metadata_out_of_range) {
    nb_rng r;
    nb_rng_seed(&r, 17, 0);
    int64_t n = 60, d = 3;
    nb_tensor *X = randn(n, d, &r);
    float *y = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) y[i] = X->data[i * d] > 0 ? 1.f : 0.f;
    nb_classic ms[N_KINDS];
    int nkinds = fit_every_kind(X, y, ms);
    /* ok: the range's ends are in it (a perfect fit's sigma2 of 0) */
    struct { int kind; const char *key, *value; bool ok; } cases[] = {
        {0, "nabla.linreg.sigma2", "0", true}, {2, "nabla.svm.degree", "1000", true}, {2, "nabla.svm.degree", "0", true},
        {2, "nabla.svm.gamma", "inf"},      {2, "nabla.svm.gamma", "1e999"},   {2, "nabla.svm.gamma", "nan"},
        {2, "nabla.svm.C", "inf"},          {2, "nabla.svm.coef0", "-inf"},    {2, "nabla.svm.coef0", "1e999"},
        {2, "nabla.svm.degree", "2.5"},    {2, "nabla.svm.degree", "1e18"},
        {2, "nabla.svm.features", "1e18"},  {2, "nabla.svm.features", "3.5"}, {2, "nabla.svm.features", "inf"},
        {2, "nabla.svm.degree", "1001"},    {2, "nabla.svm.degree", "-1"},     {2, "nabla.svm.features", "0"},
        {2, "nabla.svm.gamma", "-1"},
        {0, "nabla.linreg.sigma2", "inf"},  {0, "nabla.linreg.sigma2", "-1"},
        {3, "nabla.factor.total_variance", "inf"}, {5, "nabla.factor.total_variance", "1e999"},
    };
    char path[64], bad[80];
    snprintf(path, sizeof path, "/tmp/nabla-test-meta-%d.safetensors", (int)getpid());
    snprintf(bad, sizeof bad, "%s.bad", path);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        nb_classic *m = &ms[cases[c].kind];
        CHECK_MSG(nb_classic_save(m, path, NULL, NULL, 0) == 0, "%s: %s", m->kind, nb_errmsg());
        nb_safetensors *st = nb_st_read(path);
        if (!st) continue;
        const char *names[16], *vals[48];
        nb_tensor *ts[16];
        int found = 0;
        for (int e = 0; e < st->n && e < 16; e++) names[e] = st->entries[e].name, ts[e] = st->entries[e].t;
        for (int k = 0; k < st->n_meta && k < 48; k++) {
            bool hit = !strcmp(st->meta_keys[k], cases[c].key);
            vals[k] = hit ? cases[c].value : st->meta_vals[k];
            found += hit;
        }
        CHECK_MSG(found == 1, "%s has no '%s'", m->kind, cases[c].key);
        CHECK(nb_st_write(bad, names, ts, st->n, (const char *const *)st->meta_keys, vals, st->n_meta) == 0);
        nb_classic l;
        int rc = nb_classic_load(bad, &l);
        if (cases[c].ok)
            CHECK_MSG(rc == 0, "%s = %s: %s", cases[c].key, cases[c].value, nb_errmsg());
        else
            CHECK_MSG(rc < 0 && strstr(nb_errmsg(), bad) && strstr(nb_errmsg(), cases[c].key), "%s = %s: %s",
                      cases[c].key, cases[c].value, rc < 0 ? nb_errmsg() : "accepted");
        if (rc == 0) nb_classic_free(&l);
        nb_clear_error();
        nb_st_free(st);
    }
    for (int t = 0; t < nkinds; t++) nb_classic_free(&ms[t]);
    unlink(path);
    unlink(bad);
    nb_tensor_free(X);
    free(y);
}

TEST(test_logreg_model_file_shapes_are_checked) {
    /* k = 1 weight row for 2 classes, K rows for K > 2; at least 2 classes. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/nabla-test-logreg-%d.safetensors", (int)getpid());
    struct {
        int64_t k, nclass;
        bool ok;
    } cases[] = {{1, 2, true}, {2, 2, false}, {1, 1, false}, {3, 3, true}, {2, 3, false}};
    for (int i = 0; i < 5; i++) {
        nb_tensor *w = nb_tensor_new(2, (int64_t[]){cases[i].k, 2}), *b = nb_tensor_new(1, (int64_t[]){cases[i].k}),
                  *c = nb_tensor_new(1, (int64_t[]){cases[i].nclass});
        for (int j = 0; j < cases[i].nclass; j++) c->data[j] = (float)j;
        const char *names[3] = {"weight", "bias", "classes"}, *key = "nabla.model", *val = "logreg";
        CHECK(nb_st_write(path, names, (nb_tensor *[]){w, b, c}, 3, &key, &val, 1) == 0);
        nb_classic m;
        int rc = nb_classic_load(path, &m);
        CHECK_MSG((rc == 0) == cases[i].ok, "k %lld, %lld classes: rc %d", (long long)cases[i].k,
                  (long long)cases[i].nclass, rc);
        if (rc == 0) nb_classic_free(&m);
        nb_clear_error();
        nb_tensor_free(w), nb_tensor_free(b), nb_tensor_free(c);
    }
    unlink(path);
}
