/* linreg.c — linear regression (notes §5.5, eq. 5.65): least squares, gradient
 * descent, the maximum-likelihood noise variance, and Bayesian linear
 * regression with a Gaussian prior (§5.6). */
#include "classic.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

/* Least squares on centered data, so the intercept stays unpenalized:
 * w = argmin ||Xc w - yc||^2 + l2 ||w||^2 (dgelsd on Xc stacked over
 * sqrt(l2) I), b = ybar - w^T xbar. */
static int fit_lstsq(const double *x, const double *y, int64_t n, int64_t d, double l2, double *w, double *b) {
    int64_t rows = n + (l2 > 0 ? d : 0);
    double *xm = nb__xmalloc("a linear regression", (size_t)d, sizeof(double)), ym = 0;
    nb__ml_colmean(x, n, d, xm);
    for (int64_t i = 0; i < n; i++) ym += y[i];
    ym /= (double)n;
    int64_t ldb = rows > d ? rows : d;
    double *A = nb__ml_alloc("the least-squares system", rows * d, sizeof(double), true), *B = nb__xcalloc("a linear regression", (size_t)ldb, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < d; j++) A[i * d + j] = x[i * d + j] - xm[j];
        B[i] = y[i] - ym;
    }
    if (l2 > 0)
        for (int64_t j = 0; j < d; j++) A[(n + j) * d + j] = sqrt(l2);
    double *s = nb__xmalloc("a linear regression", (size_t)(rows < d ? rows : d), sizeof(double));
    lapack_int rank;
    lapack_int info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, (lapack_int)rows, (lapack_int)d, 1, A, (lapack_int)d, B, 1, s,
                                     -1.0, &rank);
    int rc = 0;
    if (info != 0) {
        rc = nb_error("linreg_fit: LAPACK dgelsd failed (info %d)", (int)info);
    } else {
        *b = ym;
        for (int64_t j = 0; j < d; j++) {
            w[j] = B[j];
            *b -= w[j] * xm[j];
        }
    }
    free(A);
    free(B);
    free(s);
    free(xm);
    return rc;
}

/* Full-batch gradient descent on J = mean (w^T x + b - y)^2 + l2 ||w||^2 / n:
 * dJ/dw = 2/n X^T r + 2 l2 w / n, dJ/db = 2/n sum r. */
static void fit_gd(const double *x, const double *y, int64_t n, int64_t d, double l2, double lr, int epochs, double *w,
                   double *b) {
    double *r = nb__xmalloc("a linear regression", (size_t)n, sizeof(double)), *g = nb__xmalloc("a linear regression", (size_t)d, sizeof(double));
    for (int64_t j = 0; j < d; j++) w[j] = 0;
    *b = 0;
    for (int e = 0; e < epochs; e++) {
        for (int64_t i = 0; i < n; i++) r[i] = *b - y[i];
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0, x, (int)d, w, 1, 1.0, r, 1);
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 2.0 / (double)n, x, (int)d, r, 1, 0.0, g, 1);
        double gb = 0;
        for (int64_t i = 0; i < n; i++) gb += r[i];
        for (int64_t j = 0; j < d; j++) w[j] -= lr * (g[j] + 2 * l2 * w[j] / (double)n);
        *b -= lr * 2 * gb / (double)n;
    }
    free(r);
    free(g);
}

/* The residuals' mean square: eq. 5.65 maximized over sigma gives
 * sigma^2 = (1/m) sum (yhat - y)^2. */
static double mse(const double *x, const double *y, int64_t n, int64_t d, const double *w, double b) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = b - y[i];
        for (int64_t j = 0; j < d; j++) r += w[j] * x[i * d + j];
        s += r * r;
    }
    return s / (double)n;
}

/* §5.6: with prior N(0, I/alpha) on (w, b) and noise sigma^2, the posterior
 * is Gaussian with S = (alpha I + X1^T X1 / sigma^2)^-1 and
 * m = S X1^T y / sigma^2. */
static int fit_bayes(const double *x, const double *y, int64_t n, int64_t d, double alpha, double s2, double *w,
                     double *b, double *S) {
    int64_t p = d + 1;
    double *x1 = nb__ml_alloc("the design matrix", n * p, sizeof(double), false), *rhs = nb__xcalloc("a linear regression", (size_t)p, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        memcpy(x1 + i * p, x + i * d, sizeof(double) * (size_t)d);
        x1[i * p + d] = 1;
    }
    memset(S, 0, sizeof(double) * (size_t)(p * p));
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, (int)n, 1.0 / s2, x1, (int)p, 0.0, S, (int)p);
    for (int64_t j = 0; j < p; j++) S[j * p + j] += alpha;
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)p, 1.0 / s2, x1, (int)p, y, 1, 0.0, rhs, 1);
    int rc = 0;
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)p, S, (lapack_int)p);
    if (info == 0) info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', (lapack_int)p, S, (lapack_int)p);
    if (info != 0) {
        rc = nb_error("linreg_fit: the posterior precision is not positive definite (LAPACK info %d)", (int)info);
    } else {
        for (int64_t i = 0; i < p; i++)
            for (int64_t j = 0; j < i; j++) S[i * p + j] = S[j * p + i];
        double *m = nb__xmalloc("a linear regression", (size_t)p, sizeof(double));
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)p, (int)p, 1.0, S, (int)p, rhs, 1, 0.0, m, 1);
        memcpy(w, m, sizeof(double) * (size_t)d);
        *b = m[d];
        free(m);
    }
    free(x1);
    free(rhs);
    return rc;
}

static bool nonneg_finite(double v) { return isfinite(v) && v >= 0; }

nb_linreg *nb_linreg_fit(const nb_tensor *X, const float *y, const nb_linreg_opts *o) {
    int64_t n, d;
    nb_linreg_opts opt = o ? *o : (nb_linreg_opts){0};
    if (nb__ml_check_X("linreg_fit", X, &n, &d) || nb__ml_check_y("linreg_fit", y, n)) return NULL;
    /* NaN passed "< 0" and fell back to a default; an infinite lr made every
     * weight NaN and an infinite l2 an illegal LAPACK argument. */
    if (!nonneg_finite(opt.l2) || !nonneg_finite(opt.lr) || opt.epochs < 0 || !nonneg_finite(opt.prior_precision) ||
        !nonneg_finite(opt.noise_var)) {
        nb_error("linreg_fit: l2, lr, epochs, prior_precision and noise_var must be finite and >= 0");
        return NULL;
    }
    if (opt.method > NB_LINREG_BAYES) {
        nb_error("linreg_fit: unknown method %d", (int)opt.method);
        return NULL;
    }
    double *x = nb__ml_double(X), *yy = nb__xmalloc("a linear regression", (size_t)n, sizeof(double));
    for (int64_t i = 0; i < n; i++) yy[i] = y[i];
    nb_linreg *m = nb__xcalloc("a linear regression", 1, sizeof *m);
    m->method = opt.method;
    m->d = d;
    m->w = nb__xcalloc("a linear regression", (size_t)d, sizeof(double));
    int rc = 0;
    if (opt.method == NB_LINREG_GD) {
        fit_gd(x, yy, n, d, opt.l2, opt.lr > 0 ? opt.lr : 0.1, opt.epochs > 0 ? opt.epochs : 1000, m->w, &m->b);
        m->sigma2 = mse(x, yy, n, d, m->w, m->b);
    } else {
        rc = fit_lstsq(x, yy, n, d, opt.method == NB_LINREG_LSTSQ ? opt.l2 : 0, m->w, &m->b);
        if (!rc) m->sigma2 = mse(x, yy, n, d, m->w, m->b);
        if (!rc && opt.method == NB_LINREG_BAYES) {
            double s2 = opt.noise_var > 0 ? opt.noise_var : m->sigma2;
            if (s2 <= 0) s2 = 1e-12; /* a perfect fit: keep the posterior proper */
            m->sigma2 = s2;
            m->cov = nb__ml_alloc("the posterior covariance", (d + 1) * (d + 1), sizeof(double), false);
            rc = fit_bayes(x, yy, n, d, opt.prior_precision > 0 ? opt.prior_precision : 1e-2, s2, m->w, &m->b, m->cov);
        }
    }
    free(x);
    free(yy);
    if (rc) {
        nb_linreg_free(m);
        return NULL;
    }
    return m;
}

void nb_linreg_free(nb_linreg *m) {
    if (!m) return;
    free(m->w);
    free(m->cov);
    free(m);
}

void nb_linreg_predict(const nb_linreg *m, const nb_tensor *X, double *mean, double *var) {
    int64_t n = X->shape[0], d = m->d, p = d + 1;
    nb__ml_predict_X("linreg_predict", X, d);
    NB_PARALLEL_FOR(n * d, for (int64_t i = 0; i < n; i++) {
        const float *xi = X->data + i * d;
        double s = m->b;
        for (int64_t j = 0; j < d; j++) s += m->w[j] * xi[j];
        mean[i] = s;
        if (!var) continue;
        if (!m->cov) {
            var[i] = m->sigma2;
            continue;
        }
        double q = 0; /* x1^T S x1 with x1 = [x, 1] */
        for (int64_t a = 0; a < p; a++) {
            double xa = a < d ? xi[a] : 1.0, t = 0;
            for (int64_t c = 0; c < p; c++) t += m->cov[a * p + c] * (c < d ? xi[c] : 1.0);
            q += xa * t;
        }
        var[i] = m->sigma2 + q;
    });
}

double nb_linreg_loglik(const nb_linreg *m, const nb_tensor *X, const float *y) {
    int64_t n = X->shape[0];
    double *mu = nb__xmalloc("a linear regression", (size_t)n, sizeof(double)), ss = 0;
    nb_linreg_predict(m, X, mu, NULL);
    for (int64_t i = 0; i < n; i++) ss += (mu[i] - y[i]) * (mu[i] - y[i]);
    free(mu);
    /* A fit with no residual (fewer examples than parameters, a constant
     * target) has sigma^2 = 0: the Gaussians are point masses, the limit of
     * eq. 5.65 is +inf where every y lies on the fit and -inf where one does
     * not (the formula itself gave -inf + 0/0, a NaN). */
    if (!(m->sigma2 > 0)) return ss > 0 ? -INFINITY : INFINITY;
    /* eq. 5.65 */
    return -(double)n * 0.5 * log(m->sigma2) - 0.5 * (double)n * log(2 * M_PI) - ss / (2 * m->sigma2);
}

int nb__linreg_save(const nb_linreg *m, nb__stb *b) {
    nb__stb_doubles(b, "w", m->w, 1, (int64_t[]){m->d});
    nb__stb_doubles(b, "b", &m->b, 1, (int64_t[]){1});
    if (m->cov) nb__stb_doubles(b, "posterior_cov", m->cov, 2, (int64_t[]){m->d + 1, m->d + 1});
    nb__stb_meta(b, "nabla.linreg.method", "%s", m->method == NB_LINREG_GD ? "gd" : m->method == NB_LINREG_BAYES ? "bayes" : "lstsq");
    nb__stb_meta(b, "nabla.linreg.sigma2", "%.17g", m->sigma2);
    return 0;
}

nb_linreg *nb__linreg_load(const nb_safetensors *st, const char *path) {
    nb_tensor *w = nb_st_get(st, "w");
    if (!w || w->ndim != 1 || w->shape[0] < 1) {
        nb_error("%s: the model lacks a 1-D tensor 'w'", path);
        return NULL;
    }
    nb_linreg *m = nb__xcalloc("a linear regression", 1, sizeof *m);
    m->d = w->shape[0];
    const char *meth = nb_st_meta(st, "nabla.linreg.method");
    m->method = meth && !strcmp(meth, "bayes") ? NB_LINREG_BAYES : meth && !strcmp(meth, "gd") ? NB_LINREG_GD : NB_LINREG_LSTSQ;
    double *bb = NULL;
    m->w = nb__st_doubles(st, path, "w", 1, (int64_t[]){m->d});
    if (!m->w || !(bb = nb__st_doubles(st, path, "b", 1, (int64_t[]){1})) ||
        nb__st_num(st, path, "nabla.linreg.sigma2", 0, INFINITY, &m->sigma2) ||
        (m->method == NB_LINREG_BAYES &&
         !(m->cov = nb__st_doubles(st, path, "posterior_cov", 2, (int64_t[]){m->d + 1, m->d + 1})))) {
        free(bb);
        nb_linreg_free(m);
        return NULL;
    }
    m->b = bb[0];
    free(bb);
    return m;
}
