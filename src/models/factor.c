/* factor.c — linear factor models (notes §13, eq. 24): PCA, probabilistic
 * PCA (Tipping & Bishop's closed form) and factor analysis (scikit-learn's
 * SVD-based iterations), with the latent posterior and the marginal
 * log-likelihood p(x) = N(x; mu, W^T W + Psi). */
#include "classic.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

#define SMALL 1e-12 /* scikit-learn's floor on FA's noise variances */

const char *nb_factor_name(nb_factor_kind k) {
    return k == NB_FACTOR_PCA ? "pca" : k == NB_FACTOR_PPCA ? "ppca" : k == NB_FACTOR_FA ? "fa" : "?";
}

/* The k largest eigenpairs of the symmetric a [d, d] (destroyed): w[k]
 * descending, V [k, d] the eigenvectors as rows, each with its
 * largest-magnitude entry positive. 0 or -1. */
static int top_eigs(double *a, int64_t d, int k, double *w, double *V) {
    double *ww = nb__xmalloc("a factor model", (size_t)d, sizeof(double)), *z = nb__ml_alloc("the array of eigenvectors", d * k, sizeof(double), false);
    lapack_int *isuppz = nb__xmalloc("a factor model", (size_t)(2 * d), sizeof(lapack_int)), m;
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', (lapack_int)d, a, (lapack_int)d, 0, 0,
                                     (lapack_int)(d - k + 1), (lapack_int)d, 0.0, &m, ww, z, (lapack_int)k, isuppz);
    int rc = 0;
    if (info != 0 || m != k) {
        rc = nb_error("the eigendecomposition of the covariance failed (LAPACK dsyevr, info %d)", (int)info);
    } else {
        for (int r = 0; r < k; r++) { /* ascending from LAPACK: reverse */
            int c = k - 1 - r;
            w[r] = ww[c];
            double big = 0;
            for (int64_t j = 0; j < d; j++) {
                V[r * d + j] = z[j * k + c];
                if (fabs(V[r * d + j]) > fabs(big)) big = V[r * d + j];
            }
            if (big < 0)
                for (int64_t j = 0; j < d; j++) V[r * d + j] = -V[r * d + j];
        }
    }
    free(ww);
    free(z);
    free(isuppz);
    return rc;
}

/* Factor analysis as scikit-learn's FactorAnalysis(svd_method="lapack"):
 * with X~ = Xc Psi^-1/2 / sqrt(n), the top-k SVD of X~ gives
 * W = sqrt(max(s^2 - 1, 0)) V Psi^1/2 (Barber, BRML 21.2), the
 * log-likelihood -n/2 (d log 2 pi + k + sum log s^2 + unexplained + sum log
 * psi), and the update psi = max(var - diag(W^T W), SMALL). The SVD is taken
 * as the eigendecomposition of X~^T X~ = Psi^-1/2 S0 Psi^-1/2 (S0 the ddof-0
 * covariance), so each iteration costs O(d^3), not O(n d^2). */
static int fit_fa(nb_factor *m, const double *S0, int64_t n, int max_iter, double tol) {
    int64_t d = m->d;
    int k = m->k;
    double *a = nb__ml_alloc("the scaled covariance of factor analysis", d * d, sizeof(double), false);
    double *s = nb__xmalloc("a factor model", (size_t)k, sizeof(double)), *sp = nb__xmalloc("a factor model", (size_t)d, sizeof(double));
    double *V = nb__ml_alloc("the array of eigenvectors", k * d, sizeof(double), false);
    double old_ll = -INFINITY, llconst = (double)d * log(2 * M_PI) + k;
    int rc = 0, threads = nb__ml_serial_begin(d);
    for (int64_t j = 0; j < d; j++) m->psi[j] = 1;
    for (m->iters = 1; m->iters <= max_iter; m->iters++) {
        double tr = 0;
        for (int64_t j = 0; j < d; j++) sp[j] = sqrt(m->psi[j]) + SMALL;
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++) a[i * d + j] = S0[i * d + j] / (sp[i] * sp[j]);
        for (int64_t j = 0; j < d; j++) tr += a[j * d + j];
        if ((rc = top_eigs(a, d, k, s, V))) break;
        double ll = llconst, unexp = tr;
        for (int r = 0; r < k; r++) {
            double s2 = fmax(s[r], 1e-300);
            unexp -= s2;
            ll += log(s2);
            double sc = sqrt(fmax(s2 - 1.0, 0.0));
            for (int64_t j = 0; j < d; j++) m->W[r * d + j] = sc * V[r * d + j] * sp[j];
        }
        for (int64_t j = 0; j < d; j++) ll += log(m->psi[j]);
        ll = -(double)n / 2.0 * (ll + unexp);
        if (ll - old_ll < tol) break;
        old_ll = ll;
        for (int64_t j = 0; j < d; j++) {
            double w2 = 0;
            for (int r = 0; r < k; r++) w2 += m->W[r * d + j] * m->W[r * d + j];
            m->psi[j] = fmax(S0[j * d + j] - w2, SMALL);
        }
    }
    nb__ml_serial_end(threads);
    if (m->iters > max_iter) m->iters = max_iter;
    for (int r = 0; r < k; r++) {
        m->variance[r] = 0;
        for (int64_t j = 0; j < d; j++) m->variance[r] += m->W[r * d + j] * m->W[r * d + j];
    }
    free(a);
    free(s);
    free(V);
    free(sp);
    return rc;
}

nb_factor *nb_factor_fit(const nb_tensor *X, const nb_factor_opts *o) {
    int64_t n, d;
    nb_factor_opts opt = o ? *o : (nb_factor_opts){0};
    if (nb__ml_check_X("factor_fit", X, &n, &d)) return NULL;
    if (n < 2) {
        nb_error("%lld example: pca, ppca and fa need at least 2", (long long)n);
        return NULL;
    }
    int k = opt.k > 0 ? opt.k : (d < 2 ? (int)d : 2);
    if (k > d || opt.k < 0 || opt.max_iter < 0 || opt.tol < 0 || (unsigned)opt.kind > NB_FACTOR_FA) {
        nb_error("factor_fit: k must be in [1, %lld] (got %d), max_iter and tol >= 0", (long long)d, opt.k);
        return NULL;
    }
    nb_factor *m = nb__xcalloc("a factor model", 1, sizeof *m);
    m->kind = opt.kind;
    m->d = d;
    m->k = k;
    m->mean = nb__xmalloc("a factor model", (size_t)d, sizeof(double));
    m->W = nb__ml_alloc("the loading matrix", k * d, sizeof(double), true);
    m->psi = nb__xmalloc("a factor model", (size_t)d, sizeof(double));
    m->variance = nb__xmalloc("a factor model", (size_t)k, sizeof(double));
    double *x = nb__ml_double(X);
    nb__ml_colmean(x, n, d, m->mean);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) x[i * d + j] -= m->mean[j];
    /* S = Xc^T Xc / (n - 1), the sample covariance (ddof 1, scikit-learn's PCA). */
    double *S = nb__ml_alloc("the covariance matrix (features x features)", d * d, sizeof(double), true);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)n, 1.0 / (double)(n - 1), x, (int)d, 0.0, S, (int)d);
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) S[i * d + j] = S[j * d + i];
    free(x);
    m->total_variance = 0;
    for (int64_t j = 0; j < d; j++) m->total_variance += S[j * d + j];
    int rc;
    /* Identical examples leave nothing to explain: the explained-variance
     * ratio would be 0/0 and every model's covariance singular. */
    if (!(m->total_variance > 0)) {
        nb_error("the %lld examples are all the same (every feature has zero variance): nothing to fit",
                 (long long)n);
        free(S);
        nb_factor_free(m);
        return NULL;
    }
    if (opt.kind == NB_FACTOR_FA) {
        for (int64_t i = 0; i < d * d; i++) S[i] *= (double)(n - 1) / (double)n; /* FA works with ddof 0 */
        rc = fit_fa(m, S, n, opt.max_iter > 0 ? opt.max_iter : 1000, opt.tol > 0 ? opt.tol : 1e-2);
    } else {
        double *a = nb__ml_alloc("a copy of the covariance matrix", d * d, sizeof(double), false);
        memcpy(a, S, sizeof(double) * (size_t)(d * d));
        int threads = nb__ml_serial_begin(d);
        rc = top_eigs(a, d, k, m->variance, m->W);
        nb__ml_serial_end(threads);
        free(a);
        if (!rc) {
            /* sigma^2: the mean variance left out, (tr S - sum of the top k) / (d - k)
             * (Tipping & Bishop's maximum-likelihood sigma^2: all d - k discarded
             * eigenvalues, the zeros of an n <= d sample included, where
             * scikit-learn averages only min(n, d) - k of them). */
            double rest = m->total_variance;
            for (int r = 0; r < k; r++) rest -= m->variance[r];
            double s2 = k < d ? fmax(rest / (double)(d - k), 0.0) : 0.0;
            for (int64_t j = 0; j < d; j++) m->psi[j] = s2;
            if (opt.kind == NB_FACTOR_PPCA) /* W = (L_k - sigma^2 I)^1/2 U_k^T */
                for (int r = 0; r < k; r++) {
                    double sc = sqrt(fmax(m->variance[r] - s2, 0.0));
                    for (int64_t j = 0; j < d; j++) m->W[r * d + j] *= sc;
                }
        }
    }
    free(S);
    if (rc) {
        nb_factor_free(m);
        return NULL;
    }
    return m;
}

void nb_factor_free(nb_factor *m) {
    if (!m) return;
    free(m->mean);
    free(m->W);
    free(m->psi);
    free(m->variance);
    free(m);
}

/* The loading matrix of the generative model: PCA stores unit axes, scaled
 * here as PPCA's W so that its likelihood is scikit-learn's PCA.score. */
static double *loadings(const nb_factor *m) {
    int64_t d = m->d;
    double *W = nb__ml_alloc("the loading matrix", m->k * d, sizeof(double), false);
    memcpy(W, m->W, sizeof(double) * (size_t)(m->k * d));
    if (m->kind == NB_FACTOR_PCA)
        for (int r = 0; r < m->k; r++) {
            double sc = sqrt(fmax(m->variance[r] - m->psi[0], 0.0));
            for (int64_t j = 0; j < d; j++) W[r * d + j] *= sc;
        }
    return W;
}

/* M = I + W Psi^-1 W^T [k, k] (Psi > 0), Cholesky-factored in place (lower);
 * returns log det M, or NaN if not positive definite. */
static double m_factor(const double *W, const double *psi, int64_t d, int k, double *M) {
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double s = a == b;
            for (int64_t j = 0; j < d; j++) s += W[a * d + j] * W[b * d + j] / psi[j];
            M[a * k + b] = s;
        }
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', k, M, k) != 0) return NAN;
    double ld = 0;
    for (int a = 0; a < k; a++) ld += 2 * log(M[a * k + a]);
    return ld;
}

void nb_factor_transform(const nb_factor *m, const nb_tensor *X, double *H, double *cov) {
    int64_t n = X->shape[0], d = m->d;
    int k = m->k;
    nb__ml_predict_X("factor_transform", X, d);
    bool proj = m->kind == NB_FACTOR_PCA || m->psi[0] <= 0;
    double *M = nb__xmalloc("a factor model", (size_t)(k * k), sizeof(double));
    if (!proj && isnan(m_factor(m->W, m->psi, d, k, M))) proj = true;
    if (cov) { /* M^-1, the posterior covariance, the same for every x */
        memset(cov, 0, sizeof(double) * (size_t)(k * k));
        if (!proj) {
            memcpy(cov, M, sizeof(double) * (size_t)(k * k));
            LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', k, cov, k);
            for (int a = 0; a < k; a++)
                for (int b = a + 1; b < k; b++) cov[a * k + b] = cov[b * k + a];
        }
    }
    NB_PARALLEL_FOR(n * d * k, for (int64_t i = 0; i < n; i++) {
        double *h = H + i * k;
        const float *x = X->data + i * d;
        for (int r = 0; r < k; r++) { /* W Psi^-1 (x - mu), or the projection W (x - mu) */
            double s = 0;
            for (int64_t j = 0; j < d; j++) s += m->W[r * d + j] * (x[j] - m->mean[j]) / (proj ? 1.0 : m->psi[j]);
            h[r] = s;
        }
        if (!proj) /* E[h | x] = M^-1 W Psi^-1 (x - mu), by the Cholesky factor */
            LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', k, 1, M, k, h, 1);
    });
    free(M);
}

double nb_factor_loglik(const nb_factor *m, const nb_tensor *X, double *per) {
    int64_t n = X->shape[0], d = m->d;
    int k = m->k;
    nb__ml_predict_X("factor_loglik", X, d);
    double *W = loadings(m), total = 0, c0 = (double)d * log(2 * M_PI);
    double minpsi = INFINITY;
    for (int64_t j = 0; j < d; j++) minpsi = fmin(minpsi, m->psi[j]);
    if (minpsi > 0) {
        /* Woodbury: C = W^T W + Psi has C^-1 = Psi^-1 - Psi^-1 W^T M^-1 W Psi^-1
         * and log det C = log det M + sum log psi, so each row costs O(d k). */
        double *M = nb__xmalloc("a factor model", (size_t)(k * k), sizeof(double));
        double ld = m_factor(W, m->psi, d, k, M);
        for (int64_t j = 0; j < d; j++) ld += log(m->psi[j]);
        NB_PRAGMA(omp parallel for reduction(+ : total) if (n * d * k >= NB_PAR_MIN))
        for (int64_t i = 0; i < n; i++) {
            const float *x = X->data + i * d;
            double q = 0, u[k > 0 ? k : 1];
            for (int64_t j = 0; j < d; j++) q += (x[j] - m->mean[j]) * (x[j] - m->mean[j]) / m->psi[j];
            for (int r = 0; r < k; r++) {
                double s = 0;
                for (int64_t j = 0; j < d; j++) s += W[r * d + j] * (x[j] - m->mean[j]) / m->psi[j];
                u[r] = s;
            }
            /* u^T M^-1 u = |L^-1 u|^2 */
            cblas_dtrsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, k, M, k, u, 1);
            for (int r = 0; r < k; r++) q -= u[r] * u[r];
            double lp = -0.5 * (c0 + ld + q);
            if (per) per[i] = lp;
            total += lp;
        }
        free(M);
    } else {
        /* No noise (pca with k = d): C = W^T W, by its Cholesky factor. */
        double *C = nb__ml_alloc("the model covariance (features x features)", d * d, sizeof(double), true), ld = 0;
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, k, 1.0, W, (int)d, W, (int)d, 0.0, C, (int)d);
        for (int64_t j = 0; j < d; j++) C[j * d + j] += m->psi[j];
        bool pd = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)d, C, (lapack_int)d) == 0;
        for (int64_t j = 0; pd && j < d; j++) ld += 2 * log(C[j * d + j]);
        double *r = nb__xmalloc("a factor model", (size_t)d, sizeof(double));
        for (int64_t i = 0; i < n; i++) {
            double lp = -INFINITY;
            if (pd) {
                for (int64_t j = 0; j < d; j++) r[j] = X->data[i * d + j] - m->mean[j];
                cblas_dtrsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, (int)d, C, (int)d, r, 1);
                double q = 0;
                for (int64_t j = 0; j < d; j++) q += r[j] * r[j];
                lp = -0.5 * (c0 + ld + q);
            }
            if (per) per[i] = lp;
            total += lp;
        }
        free(r);
        free(C);
    }
    free(W);
    return total / (double)n;
}

int nb__factor_save(const nb_factor *m, nb__stb *b) {
    nb__stb_doubles(b, "mean", m->mean, 1, (int64_t[]){m->d});
    nb__stb_doubles(b, "components", m->W, 2, (int64_t[]){m->k, m->d});
    nb__stb_doubles(b, "noise_variance", m->psi, 1, (int64_t[]){m->d});
    nb__stb_doubles(b, "variance", m->variance, 1, (int64_t[]){m->k});
    nb__stb_meta(b, "nabla.factor.total_variance", "%.17g", m->total_variance);
    return 0;
}

nb_factor *nb__factor_load(const nb_safetensors *st, const char *path, nb_factor_kind kind) {
    nb_tensor *c = nb_st_get(st, "components");
    if (!c || c->ndim != 2 || c->shape[0] < 1 || c->shape[1] < c->shape[0]) {
        nb_error("%s: the factor model needs 'components' [k, d] with 1 <= k <= d", path);
        return NULL;
    }
    nb_factor *m = nb__xcalloc("a factor model", 1, sizeof *m);
    m->kind = kind;
    m->k = (int)c->shape[0];
    m->d = c->shape[1];
    if (!(m->mean = nb__st_doubles(st, path, "mean", 1, (int64_t[]){m->d})) ||
        !(m->W = nb__st_doubles(st, path, "components", 2, (int64_t[]){m->k, m->d})) ||
        !(m->psi = nb__st_doubles(st, path, "noise_variance", 1, (int64_t[]){m->d})) ||
        !(m->variance = nb__st_doubles(st, path, "variance", 1, (int64_t[]){m->k})) ||
        nb__st_num(st, path, "nabla.factor.total_variance", 0, INFINITY, &m->total_variance)) {
        nb_factor_free(m);
        return NULL;
    }
    for (int64_t j = 0; j < m->d; j++)
        if (m->psi[j] < 0) {
            nb_error("%s: negative noise variance", path);
            nb_factor_free(m);
            return NULL;
        }
    return m;
}
