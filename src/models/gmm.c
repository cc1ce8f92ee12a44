/* gmm.c — Gaussian mixture models (notes appendix B): p(x) = sum_c P(c)
 * N(x; mu_c, Sigma_c), fitted by EM from a k-means++ / Lloyd start, with full
 * or diagonal covariances, responsibilities, log-likelihood and BIC, as
 * scikit-learn's GaussianMixture defines them. */
#include "classic.h"
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

/* Per-component Cholesky factors of the covariances (full: lower L with
 * Sigma = L L^T; diagonal: the standard deviations) and log det Sigma. */
typedef struct {
    double *L;      /* k x d x d or k x d */
    double *logdet; /* k */
} chol;

static int factorize_all(const nb_gmm *m, chol *c);
static int factorize(const nb_gmm *m, chol *c) {
    int threads = nb__ml_serial_begin(m->d);
    int rc = factorize_all(m, c);
    nb__ml_serial_end(threads);
    return rc;
}

static int factorize_all(const nb_gmm *m, chol *c) {
    int64_t d = m->d, per = m->diagonal ? d : d * d;
    for (int q = 0; q < m->k; q++) {
        double *L = c->L + q * per, ld = 0;
        memcpy(L, m->covs + q * per, sizeof(double) * (size_t)per);
        if (m->diagonal) {
            for (int64_t j = 0; j < d; j++) {
                if (!(L[j] > 0)) return nb_error("gmm: component %d has a variance <= 0 (try a larger reg_covar)", q);
                ld += log(L[j]);
                L[j] = sqrt(L[j]);
            }
        } else {
            if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)d, L, (lapack_int)d) != 0)
                return nb_error("gmm: the covariance of component %d is not positive definite (try a larger reg_covar)", q);
            for (int64_t j = 0; j < d; j++) ld += 2 * log(L[j * d + j]);
        }
        c->logdet[q] = ld;
    }
    return 0;
}

/* E-step: log P(c) + log N(x_i; mu_c, Sigma_c) for every row and component,
 * normalized by log-sum-exp into responsibilities (resp may be NULL);
 * returns the mean log p(x). For full covariances the Mahalanobis term is
 * |P_c^T (x_i - mu_c)|^2 with P_c = L_c^-T (Sigma_c = L_c L_c^T): with the
 * P_c side by side in Pall [d, k d], a block of rows X_b needs one GEMM
 * X_b Pall for every component at once, minus the row mu_c^T P_c. */
static double estep(const nb_gmm *m, const chol *c, const double *x, int64_t n, double *resp) {
    int64_t d = m->d, k = m->k, per = m->diagonal ? d : d * d, kd = k * d;
    double total = 0, c0 = (double)d * log(2 * M_PI);
    double *lp = malloc(sizeof(double) * (size_t)(n * k)), *base = malloc(sizeof(double) * (size_t)k);
    for (int64_t q = 0; q < k; q++) base[q] = log(m->weights[q]) - 0.5 * (c0 + c->logdet[q]);
    if (m->diagonal) {
        NB_PARALLEL_FOR(n * kd, for (int64_t i = 0; i < n; i++) {
            for (int64_t q = 0; q < k; q++) {
                const double *L = c->L + q * per, *mu = m->means + q * d;
                double s = 0;
                for (int64_t j = 0; j < d; j++) {
                    double t = (x[i * d + j] - mu[j]) / L[j];
                    s += t * t;
                }
                lp[i * k + q] = base[q] - 0.5 * s;
            }
        });
    } else {
        double *Pall = calloc((size_t)(d * kd), sizeof(double)), *muP = calloc((size_t)kd, sizeof(double));
        double *Li = malloc(sizeof(double) * (size_t)(d * d));
        for (int64_t q = 0; q < k; q++) {
            memcpy(Li, c->L + q * per, sizeof(double) * (size_t)(d * d));
            LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'L', 'N', (lapack_int)d, Li, (lapack_int)d); /* L^-1, lower */
            for (int64_t a = 0; a < d; a++)
                for (int64_t b = 0; b <= a; b++) Pall[b * kd + q * d + a] = Li[a * d + b]; /* P = L^-T */
            const double *mu = m->means + q * d;
            for (int64_t a = 0; a < d; a++)
                for (int64_t b = 0; b < d; b++) muP[q * d + b] += mu[a] * Pall[a * kd + q * d + b];
        }
        int64_t B = (INT64_C(1) << 22) / kd;
        if (B < 1) B = 1;
        double *Z = malloc(sizeof(double) * (size_t)((n < B ? n : B) * kd));
        for (int64_t r0 = 0; r0 < n; r0 += B) {
            int64_t nb = n - r0 < B ? n - r0 : B;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)kd, (int)d, 1.0, x + r0 * d, (int)d,
                        Pall, (int)kd, 0.0, Z, (int)kd);
            NB_PARALLEL_FOR(nb * kd, for (int64_t i = 0; i < nb; i++) {
                for (int64_t q = 0; q < k; q++) {
                    const double *zz = Z + i * kd + q * d, *mp = muP + q * d;
                    double s = 0;
                    for (int64_t j = 0; j < d; j++) s += (zz[j] - mp[j]) * (zz[j] - mp[j]);
                    lp[(r0 + i) * k + q] = base[q] - 0.5 * s;
                }
            });
        }
        free(Z);
        free(Pall);
        free(muP);
        free(Li);
    }
    NB_PRAGMA(omp parallel for reduction(+ : total) schedule(static) if (n * k >= NB_PAR_MIN))
    for (int64_t i = 0; i < n; i++) {
        const double *l = lp + i * k;
        double mx = -INFINITY, se = 0;
        for (int64_t q = 0; q < k; q++) mx = fmax(mx, l[q]);
        for (int64_t q = 0; q < k; q++) se += exp(l[q] - mx);
        double lse = mx + log(se);
        total += lse;
        if (resp)
            for (int64_t q = 0; q < k; q++) resp[i * k + q] = exp(l[q] - lse);
    }
    free(lp);
    free(base);
    return total / (double)n;
}

/* M-step: N_c = sum_i r_ic (+ 10 eps, as scikit-learn, so an empty component
 * does not divide by zero), P(c) = N_c / n, mu_c = sum r_ic x_i / N_c,
 * Sigma_c = sum r_ic (x_i - mu_c)(x_i - mu_c)^T / N_c + reg I. */
static void mstep(nb_gmm *m, const double *x, int64_t n, const double *resp, double reg) {
    int64_t d = m->d, k = m->k;
    double *wx = malloc(sizeof(double) * (size_t)(n * d));
    for (int64_t q = 0; q < k; q++) {
        double N = 10 * DBL_EPSILON, *mu = m->means + q * d;
        for (int64_t i = 0; i < n; i++) N += resp[i * k + q];
        for (int64_t j = 0; j < d; j++) mu[j] = 0;
        for (int64_t i = 0; i < n; i++) {
            double r = resp[i * k + q];
            for (int64_t j = 0; j < d; j++) mu[j] += r * x[i * d + j];
        }
        for (int64_t j = 0; j < d; j++) mu[j] /= N;
        m->weights[q] = N / (double)n;
        if (m->diagonal) {
            double *v = m->covs + q * d;
            for (int64_t j = 0; j < d; j++) v[j] = 0;
            for (int64_t i = 0; i < n; i++) {
                double r = resp[i * k + q];
                for (int64_t j = 0; j < d; j++) v[j] += r * (x[i * d + j] - mu[j]) * (x[i * d + j] - mu[j]);
            }
            for (int64_t j = 0; j < d; j++) v[j] = v[j] / N + reg;
        } else {
            /* sqrt(r_i) (x_i - mu) rows, then one SYRK. */
            for (int64_t i = 0; i < n; i++) {
                double sr = sqrt(resp[i * k + q]);
                for (int64_t j = 0; j < d; j++) wx[i * d + j] = sr * (x[i * d + j] - mu[j]);
            }
            double *S = m->covs + q * d * d;
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)n, 1.0 / N, wx, (int)d, 0.0, S, (int)d);
            for (int64_t a = 0; a < d; a++) {
                for (int64_t b = a + 1; b < d; b++) S[a * d + b] = S[b * d + a];
                S[a * d + a] += reg;
            }
        }
    }
    free(wx);
    double s = 0;
    for (int64_t q = 0; q < k; q++) s += m->weights[q];
    for (int64_t q = 0; q < k; q++) m->weights[q] /= s;
}

/* k-means++ seeding (Arthur & Vassilvitskii 2007: each next center drawn with
 * probability proportional to D(x)^2), then Lloyd iterations; the hard
 * assignment is EM's starting responsibilities (scikit-learn's default
 * init_params="kmeans"). */
static void kmeans_init(const double *x, int64_t n, int64_t d, int k, nb_rng *r, double *resp) {
    double *cent = malloc(sizeof(double) * (size_t)(k * d)), *dist = malloc(sizeof(double) * (size_t)n);
    int32_t *asg = malloc(sizeof(int32_t) * (size_t)n);
    int64_t first = (int64_t)nb_rng_below(r, (uint32_t)n);
    memcpy(cent, x + first * d, sizeof(double) * (size_t)d);
    for (int64_t i = 0; i < n; i++) dist[i] = INFINITY;
    for (int c = 1; c <= k; c++) {
        double tot = 0;
        const double *cc = cent + (c - 1) * d;
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t j = 0; j < d; j++) s += (x[i * d + j] - cc[j]) * (x[i * d + j] - cc[j]);
            dist[i] = fmin(dist[i], s);
            tot += dist[i];
        }
        if (c == k) break;
        double u = nb_rng_uniform(r) * tot, acc = 0;
        int64_t pick = n - 1;
        for (int64_t i = 0; i < n; i++) {
            acc += dist[i];
            if (acc > u) {
                pick = i;
                break;
            }
        }
        memcpy(cent + c * d, x + pick * d, sizeof(double) * (size_t)d);
    }
    /* Lloyd's iterations stop when the centers move less than 1e-4 of the
     * mean feature variance (scikit-learn's KMeans tolerance), or settle. */
    double *prevc = malloc(sizeof(double) * (size_t)(k * d)), tolc = 0;
    {
        double *mu = calloc((size_t)d, sizeof(double));
        nb__ml_colmean(x, n, d, mu);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++) tolc += (x[i * d + j] - mu[j]) * (x[i * d + j] - mu[j]);
        tolc = 1e-4 * tolc / (double)(n * d);
        free(mu);
    }
    for (int it = 0; it < 300; it++) {
        int64_t changed = 0;
        NB_PRAGMA(omp parallel for reduction(+ : changed) if (n * k * d >= NB_PAR_MIN))
        for (int64_t i = 0; i < n; i++) {
            int best = 0;
            double bd = INFINITY;
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int64_t j = 0; j < d; j++) s += (x[i * d + j] - cent[c * d + j]) * (x[i * d + j] - cent[c * d + j]);
                if (s < bd) bd = s, best = c;
            }
            changed += it == 0 || asg[i] != best;
            asg[i] = best;
        }
        if (!changed) break;
        memcpy(prevc, cent, sizeof(double) * (size_t)(k * d));
        int64_t *cnt = calloc((size_t)k, sizeof(int64_t));
        memset(cent, 0, sizeof(double) * (size_t)(k * d));
        for (int64_t i = 0; i < n; i++) {
            cnt[asg[i]]++;
            for (int64_t j = 0; j < d; j++) cent[asg[i] * d + j] += x[i * d + j];
        }
        for (int c = 0; c < k; c++) /* an emptied cluster keeps a random point */
            for (int64_t j = 0; j < d; j++)
                cent[c * d + j] = cnt[c] ? cent[c * d + j] / (double)cnt[c] : x[(int64_t)nb_rng_below(r, (uint32_t)n) * d + j];
        free(cnt);
        double shift = 0;
        for (int64_t j = 0; j < k * d; j++) shift += (cent[j] - prevc[j]) * (cent[j] - prevc[j]);
        if (shift <= tolc) { /* final assignment to the settled centers */
            for (int64_t i = 0; i < n; i++) {
                int best = 0;
                double bd = INFINITY;
                for (int cc = 0; cc < k; cc++) {
                    double s2 = 0;
                    for (int64_t j = 0; j < d; j++) s2 += (x[i * d + j] - cent[cc * d + j]) * (x[i * d + j] - cent[cc * d + j]);
                    if (s2 < bd) bd = s2, best = cc;
                }
                asg[i] = best;
            }
            break;
        }
    }
    free(prevc);
    memset(resp, 0, sizeof(double) * (size_t)(n * k));
    for (int64_t i = 0; i < n; i++) resp[i * k + asg[i]] = 1;
    free(cent);
    free(dist);
    free(asg);
}

static nb_gmm *gmm_alloc(int k, int64_t d, bool diagonal) {
    nb_gmm *m = calloc(1, sizeof *m);
    m->k = k;
    m->d = d;
    m->diagonal = diagonal;
    m->weights = malloc(sizeof(double) * (size_t)k);
    m->means = malloc(sizeof(double) * (size_t)(k * d));
    m->covs = malloc(sizeof(double) * (size_t)(k * (diagonal ? d : d * d)));
    return m;
}

nb_gmm *nb_gmm_fit(const nb_tensor *X, const nb_gmm_opts *o) {
    int64_t n, d;
    nb_gmm_opts opt = o ? *o : (nb_gmm_opts){0};
    if (nb__ml_check_X("gmm_fit", X, &n, &d)) return NULL;
    int k = opt.k > 0 ? opt.k : 1, max_iter = opt.max_iter > 0 ? opt.max_iter : 100, n_init = opt.n_init > 0 ? opt.n_init : 1;
    double tol = opt.tol > 0 ? opt.tol : 1e-3, reg = opt.reg_covar > 0 ? opt.reg_covar : 1e-6;
    if (opt.k < 0 || opt.max_iter < 0 || opt.tol < 0 || opt.reg_covar < 0 || opt.n_init < 0) {
        nb_error("gmm_fit: k, max_iter, tol, reg_covar and n_init must be >= 0");
        return NULL;
    }
    if (k > n) {
        nb_error("gmm_fit: %d components need at least as many examples, got %lld", k, (long long)n);
        return NULL;
    }
    double *x = nb__ml_double(X), *resp = malloc(sizeof(double) * (size_t)(n * k));
    int64_t per = opt.diagonal ? d : d * d;
    chol c = {malloc(sizeof(double) * (size_t)(k * per)), malloc(sizeof(double) * (size_t)k)};
    nb_rng r;
    nb_rng_seed(&r, opt.seed, 5);
    nb_gmm *best = NULL;
    int rc = 0;
    for (int init = 0; init < n_init && !rc; init++) {
        nb_gmm *m = gmm_alloc(k, d, opt.diagonal);
        kmeans_init(x, n, d, k, &r, resp);
        mstep(m, x, n, resp, reg);
        double lb = -INFINITY;
        for (m->iters = 1; m->iters <= max_iter; m->iters++) {
            if ((rc = factorize(m, &c))) break;
            double prev = lb;
            lb = estep(m, &c, x, n, resp);
            mstep(m, x, n, resp, reg);
            if (fabs(lb - prev) < tol) {
                m->converged = true;
                break;
            }
        }
        if (m->iters > max_iter) m->iters = max_iter;
        if (!rc && !(rc = factorize(m, &c))) m->loglik = estep(m, &c, x, n, NULL);
        if (!rc && (!best || m->loglik > best->loglik)) {
            nb_gmm_free(best);
            best = m;
        } else {
            nb_gmm_free(m);
        }
    }
    free(x);
    free(resp);
    free(c.L);
    free(c.logdet);
    if (rc) {
        nb_gmm_free(best);
        return NULL;
    }
    return best;
}

void nb_gmm_free(nb_gmm *m) {
    if (!m) return;
    free(m->weights);
    free(m->means);
    free(m->covs);
    free(m);
}

double nb_gmm_score(const nb_gmm *m, const nb_tensor *X, double *resp) {
    int64_t n = X->shape[0], per = m->diagonal ? m->d : m->d * m->d;
    if (X->ndim != 2 || X->shape[1] != m->d) nb_fatal("gmm_score", "X must be [n, %lld]", (long long)m->d);
    chol c = {malloc(sizeof(double) * (size_t)(m->k * per)), malloc(sizeof(double) * (size_t)m->k)};
    double *x = nb__ml_double(X), s = NAN;
    if (factorize(m, &c) == 0) s = estep(m, &c, x, n, resp);
    free(x);
    free(c.L);
    free(c.logdet);
    return s;
}

int64_t nb_gmm_nparams(const nb_gmm *m) {
    int64_t d = m->d, cov = m->diagonal ? d : d * (d + 1) / 2;
    return (m->k - 1) + m->k * d + m->k * cov;
}

double nb_gmm_bic(const nb_gmm *m, const nb_tensor *X) {
    int64_t n = X->shape[0];
    return -2 * nb_gmm_score(m, X, NULL) * (double)n + (double)nb_gmm_nparams(m) * log((double)n);
}

int nb__gmm_save(const nb_gmm *m, nb__stb *b) {
    nb__stb_doubles(b, "weights", m->weights, 1, (int64_t[]){m->k});
    nb__stb_doubles(b, "means", m->means, 2, (int64_t[]){m->k, m->d});
    if (m->diagonal) nb__stb_doubles(b, "covariances", m->covs, 2, (int64_t[]){m->k, m->d});
    else nb__stb_doubles(b, "covariances", m->covs, 3, (int64_t[]){m->k, m->d, m->d});
    nb__stb_meta(b, "nabla.gmm.covariance", "%s", m->diagonal ? "diag" : "full");
    nb__stb_meta(b, "nabla.gmm.loglik", "%.17g", m->loglik);
    return 0;
}

nb_gmm *nb__gmm_load(const nb_safetensors *st, const char *path) {
    nb_tensor *mu = nb_st_get(st, "means");
    const char *cv = nb_st_meta(st, "nabla.gmm.covariance");
    if (!mu || mu->ndim != 2 || mu->shape[0] < 1 || mu->shape[1] < 1 || !cv || (strcmp(cv, "diag") && strcmp(cv, "full"))) {
        nb_error("%s: the mixture needs 'means' [k, d] and nabla.gmm.covariance = full|diag", path);
        return NULL;
    }
    int k = (int)mu->shape[0];
    int64_t d = mu->shape[1];
    bool diag = !strcmp(cv, "diag");
    nb_gmm *m = calloc(1, sizeof *m);
    m->k = k;
    m->d = d;
    m->diagonal = diag;
    double ll = 0;
    if (!(m->weights = nb__st_doubles(st, path, "weights", 1, (int64_t[]){k})) ||
        !(m->means = nb__st_doubles(st, path, "means", 2, (int64_t[]){k, d})) ||
        !(m->covs = diag ? nb__st_doubles(st, path, "covariances", 2, (int64_t[]){k, d})
                         : nb__st_doubles(st, path, "covariances", 3, (int64_t[]){k, d, d}))) {
        nb_gmm_free(m);
        return NULL;
    }
    nb__st_num(st, path, "nabla.gmm.loglik", -INFINITY, INFINITY, &ll);
    nb_clear_error();
    m->loglik = ll;
    for (int q = 0; q < k; q++)
        if (!(m->weights[q] > 0)) {
            nb_error("%s: mixture weight %d is not positive", path, q);
            nb_gmm_free(m);
            return NULL;
        }
    return m;
}
