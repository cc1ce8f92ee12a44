/* stats.c — notes §1.2 and eq. 5.60 on nabla tensors: sample moments
 * (eq. 3.9-3.14, eq. 12), correlation, and entropy, cross-entropy and KL
 * divergence for discrete distributions and, in closed form, for Gaussians. */
#include "dense.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

/* --- moments of a data matrix ------------------------------------------- */

/* X [m, n] (or [m] as [m, 1]) as a centered double copy; mean gets the n
 * column means. ddof is checked against m. */
static double *centered(const char *fn, const nb_tensor *X, int ddof, int64_t *m, int64_t *n, double **mean) {
    char s[96];
    *mean = NULL;
    if (!X) return nb_error("%s: X is NULL", fn), NULL;
    if (nb__host_only(fn, "X", X)) return NULL;
    if (X->ndim != 1 && X->ndim != 2)
        return nb_error("%s: X must be [m] or [m, n] (samples in rows), got shape %s", fn,
                        nb_shape_str(X, s, sizeof s)), NULL;
    *m = X->shape[0];
    *n = X->ndim == 2 ? X->shape[1] : 1;
    if (*m == 0 || *n == 0) return nb_error("%s: X is empty (shape %s)", fn, nb_shape_str(X, s, sizeof s)), NULL;
    if (ddof < 0) return nb_error("%s: ddof must be >= 0, got %d", fn, ddof), NULL;
    if (*m <= ddof)
        return nb_error("%s: %lld samples are too few for ddof = %d (need m > ddof)", fn, (long long)*m, ddof), NULL;
    if (nb__la_finite(fn, "X", X)) return NULL;
    double *x = malloc(sizeof(double) * (size_t)(X->size + *n));
    if (!x) return nb_error("%s: out of memory", fn), NULL;
    double *mu = x + X->size;
    for (int64_t j = 0; j < *n; j++) mu[j] = 0;
    for (int64_t i = 0; i < *m; i++)
        for (int64_t j = 0; j < *n; j++) mu[j] += (x[i * *n + j] = X->data[i * *n + j]);
    for (int64_t j = 0; j < *n; j++) mu[j] /= (double)*m;
    /* Two passes: subtracting the mean first avoids the cancellation of
     * E[x^2] - E[x]^2. */
    for (int64_t i = 0; i < *m; i++)
        for (int64_t j = 0; j < *n; j++) x[i * *n + j] -= mu[j];
    *mean = mu;
    return x;
}

nb_tensor *nb_stats_mean(const nb_tensor *X) {
    int64_t m, n;
    double *mu, *x = centered("stats_mean", X, 0, &m, &n, &mu);
    if (!x) return NULL;
    nb_tensor *r = nb__la_tensor(NB_SHAPE(n), mu);
    free(x);
    return r;
}

nb_tensor *nb_stats_var(const nb_tensor *X, int ddof) {
    int64_t m, n;
    double *mu, *x = centered("stats_var", X, ddof, &m, &n, &mu);
    if (!x) return NULL;
    /* eq. 3.11 over the sample, reusing mu's storage for the result. */
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t i = 0; i < m; i++) s += x[i * n + j] * x[i * n + j];
        mu[j] = s / (double)(m - ddof);
    }
    nb_tensor *r = nb__la_tensor(NB_SHAPE(n), mu);
    free(x);
    return r;
}

/* The covariance in double: c [n, n] = Xc^T Xc / (m - ddof). */
static double *cov_d(const char *fn, const nb_tensor *X, int ddof, int64_t *n_out) {
    int64_t m, n;
    double *mu, *x = centered(fn, X, ddof, &m, &n, &mu);
    if (!x) return NULL;
    if (n > 46340 || m > INT32_MAX) { /* n*n and BLAS ints must stay in range */
        free(x);
        return nb_error("%s: X of %lld x %lld is too large for a covariance matrix", fn, (long long)m,
                        (long long)n), NULL;
    }
    double *c = malloc(sizeof(double) * (size_t)(n * n));
    if (!c) {
        free(x);
        return nb_error("%s: out of memory", fn), NULL;
    }
    /* eq. 12 / 3.14: sum over samples of the outer products (x_k - xbar)
     * (x_k - xbar)^T, as one rank-m update; then mirror the upper triangle. */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)m, 1.0 / (double)(m - ddof), x, (int)n, 0.0, c,
                (int)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) c[i * n + j] = c[j * n + i];
    free(x);
    *n_out = n;
    return c;
}

nb_tensor *nb_stats_cov(const nb_tensor *X, int ddof) {
    int64_t n;
    double *c = cov_d("stats_cov", X, ddof, &n);
    if (!c) return NULL;
    nb_tensor *r = nb__la_tensor(NB_SHAPE(n, n), c);
    free(c);
    return r;
}

nb_tensor *nb_stats_corr(const nb_tensor *X) {
    int64_t n;
    /* ddof cancels in the ratio; 0 lets a single sample through (its
     * variances are zero, so everything is NaN, as documented). */
    double *c = cov_d("stats_corr", X, 0, &n);
    if (!c) return NULL;
    double *sd = malloc(sizeof(double) * (size_t)n);
    if (!sd) {
        free(c);
        return nb_error("stats_corr: out of memory"), NULL;
    }
    for (int64_t i = 0; i < n; i++) sd[i] = sqrt(c[i * n + i]);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double d = sd[i] * sd[j];
            c[i * n + j] = d > 0 ? (i == j ? 1.0 : fmax(-1.0, fmin(1.0, c[i * n + j] / d))) : NAN;
        }
    nb_tensor *r = nb__la_tensor(NB_SHAPE(n, n), c);
    free(c);
    free(sd);
    return r;
}

/* --- discrete distributions --------------------------------------------- */

static int check_dist(const char *fn, const char *what, const nb_tensor *p) {
    if (!p) return nb_error("%s: %s is NULL", fn, what);
    if (nb__host_only(fn, what, p)) return -1;
    if (p->size == 0) return nb_error("%s: %s is empty", fn, what);
    double s = 0;
    for (int64_t i = 0; i < p->size; i++) {
        float v = p->data[i];
        if (!isfinite(v)) return nb_error("%s: %s[%lld] = %g is not finite", fn, what, (long long)i, (double)v);
        if (v < 0) return nb_error("%s: %s[%lld] = %g is negative, not a probability", fn, what, (long long)i, (double)v);
        s += v;
    }
    if (fabs(s - 1.0) > 1e-4) return nb_error("%s: %s sums to %.7g, not 1: not a distribution", fn, what, s);
    return 0;
}

static int check_pair(const char *fn, const nb_tensor *p, const nb_tensor *q, const char *qname) {
    if (check_dist(fn, "p", p)) return -1;
    if (!q) return nb_error("%s: %s is NULL", fn, qname);
    if (nb__host_only(fn, qname, q)) return -1;
    if (q->size != p->size)
        return nb_error("%s: p has %lld entries but %s has %lld", fn, (long long)p->size, qname, (long long)q->size);
    return 0;
}

int nb_stats_expect(const nb_tensor *p, const nb_tensor *fx, double *out) {
    const char *fn = "stats_expect";
    if (!out) return nb_error("%s: the output is NULL", fn);
    if (check_pair(fn, p, fx, "f(x)") || nb__la_finite(fn, "f(x)", fx)) return -1;
    double s = 0; /* eq. 3.9 */
    for (int64_t i = 0; i < p->size; i++) s += (double)p->data[i] * fx->data[i];
    *out = s;
    return 0;
}

int nb_stats_entropy(const nb_tensor *p, double *out) {
    if (!out) return nb_error("stats_entropy: the output is NULL");
    if (check_dist("stats_entropy", "p", p)) return -1;
    double h = 0;
    for (int64_t i = 0; i < p->size; i++) {
        double v = p->data[i];
        if (v > 0) h -= v * log(v); /* 0 log 0 = 0, the limit */
    }
    *out = h;
    return 0;
}

int nb_stats_cross_entropy(const nb_tensor *p, const nb_tensor *q, double *out) {
    const char *fn = "stats_cross_entropy";
    if (!out) return nb_error("%s: the output is NULL", fn);
    if (check_pair(fn, p, q, "q") || check_dist(fn, "q", q)) return -1;
    double h = 0;
    for (int64_t i = 0; i < p->size; i++) {
        double a = p->data[i], b = q->data[i];
        if (a == 0) continue;
        if (b == 0) {
            h = INFINITY; /* an outcome P gives mass to that Q calls impossible */
            break;
        }
        h -= a * log(b);
    }
    *out = h;
    return 0;
}

int nb_stats_kl(const nb_tensor *p, const nb_tensor *q, double *out) {
    const char *fn = "stats_kl";
    if (!out) return nb_error("%s: the output is NULL", fn);
    if (check_pair(fn, p, q, "q") || check_dist(fn, "q", q)) return -1;
    /* eq. 5.60: E_{x~P}[log P(x) - log Q(x)], summed as p (log p - log q)
     * term by term (not H(P,Q) - H(P)) so that nearly equal P and Q do not
     * lose everything to cancellation. */
    double d = 0;
    for (int64_t i = 0; i < p->size; i++) {
        double a = p->data[i], b = q->data[i];
        if (a == 0) continue;
        if (b == 0) {
            d = INFINITY;
            break;
        }
        d += a * (log(a) - log(b));
    }
    *out = d > 0 ? d : 0; /* rounding can leave -1e-17 for P = Q */
    return 0;
}

/* --- Gaussians ------------------------------------------------------------ */

int nb_stats_normal_entropy(double sigma, double *out) {
    if (!out) return nb_error("stats_normal_entropy: the output is NULL");
    if (!(sigma > 0) || !isfinite(sigma))
        return nb_error("stats_normal_entropy: sigma must be finite and > 0, got %g", sigma);
    *out = 0.5 * log(2.0 * M_PI * M_E * sigma * sigma);
    return 0;
}

int nb_stats_normal_kl(double mu1, double sigma1, double mu2, double sigma2, double *out) {
    const char *fn = "stats_normal_kl";
    if (!out) return nb_error("%s: the output is NULL", fn);
    if (!isfinite(mu1) || !isfinite(mu2)) return nb_error("%s: the means must be finite (%g, %g)", fn, mu1, mu2);
    if (!(sigma1 > 0) || !(sigma2 > 0) || !isfinite(sigma1) || !isfinite(sigma2))
        return nb_error("%s: sigmas must be finite and > 0, got %g and %g", fn, sigma1, sigma2);
    double dm = mu1 - mu2;
    *out = log(sigma2 / sigma1) + (sigma1 * sigma1 + dm * dm) / (2.0 * sigma2 * sigma2) - 0.5;
    if (*out < 0) *out = 0;
    return 0;
}

int nb_stats_mvn_entropy(const nb_tensor *S, double *out) {
    const char *fn = "stats_mvn_entropy";
    if (!out) return nb_error("%s: the output is NULL", fn);
    int k;
    double *a = nb__la_square(fn, "S", S, &k), logdet;
    if (!a) return -1;
    int rc = nb__la_symmetrize(fn, "S", a, k);
    if (!rc) rc = nb__la_chol_logdet(fn, "S", a, k, &logdet);
    /* 1/2 log det(2 pi e S) = k/2 log(2 pi e) + 1/2 log det S */
    if (!rc) *out = 0.5 * k * log(2.0 * M_PI * M_E) + 0.5 * logdet;
    free(a);
    return rc;
}

int nb_stats_mvn_kl(const nb_tensor *mu1, const nb_tensor *S1, const nb_tensor *mu2, const nb_tensor *S2,
                    double *out) {
    const char *fn = "stats_mvn_kl";
    if (!out) return nb_error("%s: the output is NULL", fn);
    int k, k2;
    double *s1 = nb__la_square(fn, "S1", S1, &k), *s2 = s1 ? nb__la_square(fn, "S2", S2, &k2) : NULL;
    double *b = NULL;
    int rc = -1;
    if (!s1 || !s2) goto done;
    if (k2 != k) {
        rc = nb_error("%s: S1 is %d x %d but S2 is %d x %d", fn, k, k, k2, k2);
        goto done;
    }
    const nb_tensor *mus[2] = {mu1, mu2};
    for (int t = 0; t < 2; t++) {
        if (nb__la_finite(fn, t ? "mu2" : "mu1", mus[t])) goto done;
        if (mus[t]->size != k) {
            rc = nb_error("%s: mu%d has %lld entries, expected %d", fn, t + 1, (long long)mus[t]->size, k);
            goto done;
        }
    }
    double ld1, ld2;
    if (nb__la_symmetrize(fn, "S1", s1, k) || nb__la_symmetrize(fn, "S2", s2, k) ||
        nb__la_chol_logdet(fn, "S1", s1, k, &ld1))
        goto done;
    /* Rebuild S1 from its factor (the Cholesky overwrote its lower part) as
     * the right-hand side of S2 X = S1, followed by one column mu2 - mu1. */
    b = malloc(sizeof(double) * (size_t)k * (size_t)(k + 1));
    if (!b) {
        rc = nb_error("%s: out of memory", fn);
        goto done;
    }
    for (int i = 0; i < k; i++) {
        for (int j = 0; j < k; j++) {
            double v = 0;
            for (int l = 0; l <= (i < j ? i : j); l++) v += s1[(int64_t)i * k + l] * s1[(int64_t)j * k + l];
            b[(int64_t)i * (k + 1) + j] = v;
        }
        b[(int64_t)i * (k + 1) + k] = (double)mu2->data[i] - mu1->data[i];
    }
    double *dm = malloc(sizeof(double) * (size_t)k);
    if (!dm) {
        rc = nb_error("%s: out of memory", fn);
        goto done;
    }
    for (int i = 0; i < k; i++) dm[i] = b[(int64_t)i * (k + 1) + k];
    if (nb__la_chol_logdet(fn, "S2", s2, k, &ld2)) {
        free(dm);
        goto done;
    }
    lapack_int info = LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', k, k + 1, s2, k, b, k + 1);
    if (info) {
        free(dm);
        rc = nb__la_info(fn, "dpotrs", info);
        goto done;
    }
    double tr = 0, quad = 0;
    for (int i = 0; i < k; i++) {
        tr += b[(int64_t)i * (k + 1) + i];           /* tr(S2^-1 S1) */
        quad += dm[i] * b[(int64_t)i * (k + 1) + k]; /* dm^T S2^-1 dm */
    }
    free(dm);
    double d = 0.5 * (tr + quad - k + ld2 - ld1);
    *out = d > 0 ? d : 0;
    rc = 0;
done:
    free(s1);
    free(s2);
    free(b);
    return rc;
}
