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

/* Per-component Cholesky factors of the covariances (full: the inverse
 * L^-1, lower, of L with Sigma = L L^T, which is all the E-step needs;
 * diagonal: the standard deviations) and log det Sigma. */
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
            LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'L', 'N', (lapack_int)d, L, (lapack_int)d); /* nonsingular: potrf passed */
        }
        c->logdet[q] = ld;
    }
    return 0;
}

/* Scratch of one fit, allocated once: the E-step used to take a fresh
 * n x k d product matrix every iteration (40 MB on the bench's data), which
 * glibc maps and unmaps each time, so every iteration paid a page fault per
 * 4 KiB and OpenBLAS's zeroing of it; these buffers are a few hundred KiB
 * per thread and stay in cache. */
typedef struct {
    int nthr, level;             /* threads of this file's regions; OpenMP nesting level of the caller */
    int64_t rows;                /* E-step rows per block */
    double *base;                /* [k]: log P(c) - log det(2 pi Sigma_c) / 2 */
    double *N;                   /* [k]: the M-step's N_c */
    double *Z, *lp, *wx;         /* per thread: [rows, k d], [rows, k], [MROWS, d] */
    double *bsum;                /* per E-step block: its sum of log p(x_i) */
} work;

/* M-step rows per SYRK call: a [512, d] slice of weighted rows stays in L2
 * for the d <= a few hundred of these models. */
#define MROWS 512

/* The calling thread's scratch slot and its team's size inside a region
 * this file forked; 0 and 1 in the serial path, even when that runs inside
 * a caller's own parallel region (whose thread numbers would index past
 * the scratch and split the components among threads that are not there). */
static int thread_id(const work *w) {
#ifdef _OPENMP
    return omp_get_level() > w->level ? omp_get_thread_num() : 0;
#else
    return (void)w, 0;
#endif
}

static int team_size(const work *w) {
#ifdef _OPENMP
    return omp_get_level() > w->level ? omp_get_num_threads() : 1;
#else
    return (void)w, 1;
#endif
}

static void work_free(work *w) {
    free(w->base);
    free(w->N);
    free(w->Z);
    free(w->lp);
    free(w->wx);
    free(w->bsum);
}

/* E-step blocks of about 256 KiB of Z (32768 doubles): the triangular
 * products write a block and the Mahalanobis loop reads it back from L2; at
 * least 8 rows so that they are not matrix-vector products, at most 256 so
 * that small k d still splits n into enough blocks for the threads. */
static void work_init(work *w, const nb_gmm *m, int64_t n) {
    int64_t d = m->d, k = m->k, kd = k * d, R = 32768 / kd;
    R = R < 8 ? 8 : R > 256 ? 256 : R;
    if (R > n) R = n > 0 ? n : 1;
#ifdef _OPENMP
    w->nthr = omp_get_max_threads();
    w->level = omp_get_level();
#else
    w->nthr = 1;
    w->level = 0;
#endif
    w->rows = R;
    w->base = nb__xmalloc("a Gaussian mixture", (size_t)k, sizeof(double));
    w->N = nb__xmalloc("a Gaussian mixture", (size_t)k, sizeof(double));
    w->Z = m->diagonal ? NULL : nb__ml_alloc("the E-step's work", w->nthr * R * kd, sizeof(double), false);
    w->lp = nb__ml_alloc("the E-step's work", w->nthr * R * k, sizeof(double), false);
    w->wx = m->diagonal ? NULL : nb__ml_alloc("the E-step's work", w->nthr * MROWS * d, sizeof(double), false);
    w->bsum = nb__xmalloc("a Gaussian mixture", (size_t)((n + R - 1) / R), sizeof(double));
}

/* One E-step block, rows r0 .. r0 + nr - 1: the log-densities of every
 * component, then log-sum-exp over them, in the thread's lp scratch. */
static void eblock(const nb_gmm *m, const chol *c, const work *w, const double *x, int64_t r0, int64_t nr,
                   double *resp, double *bsum) {
    int64_t d = m->d, k = m->k, kd = k * d, t = thread_id(w);
    double *lp = w->lp + t * w->rows * k;
    const double *xb = x + r0 * d;
    if (m->diagonal) {
        for (int64_t i = 0; i < nr; i++)
            for (int64_t q = 0; q < k; q++) {
                const double *L = c->L + q * d, *mu = m->means + q * d;
                double s = 0;
                NB_PRAGMA(omp simd reduction(+ : s))
                for (int64_t j = 0; j < d; j++) {
                    double u = (xb[i * d + j] - mu[j]) / L[j];
                    s += u * u;
                }
                lp[i * k + q] = w->base[q] - 0.5 * s;
            }
    } else {
        /* Z_c = (X_b - mu_c) L_c^-T side by side in Z [nr, k d]: a triangular
         * product (TRMM) skips the zero half that one GEMM by all k factors
         * side by side multiplies (15% faster at the bench's k 10, d 50,
         * OpenBLAS 0.3.21), and centering first is the definition's order. */
        double *Z = w->Z + t * w->rows * kd;
        for (int64_t q = 0; q < k; q++) {
            const double *mu = m->means + q * d;
            for (int64_t i = 0; i < nr; i++)
                for (int64_t j = 0; j < d; j++) Z[i * kd + q * d + j] = xb[i * d + j] - mu[j];
            cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)nr, (int)d, 1.0,
                        c->L + q * d * d, (int)d, Z + q * d, (int)kd);
        }
        for (int64_t i = 0; i < nr; i++)
            for (int64_t q = 0; q < k; q++) {
                const double *zz = Z + i * kd + q * d;
                double s = 0;
                NB_PRAGMA(omp simd reduction(+ : s))
                for (int64_t j = 0; j < d; j++) s += zz[j] * zz[j];
                lp[i * k + q] = w->base[q] - 0.5 * s;
            }
    }
    /* log-sum-exp with one exp per entry: e_q = exp(l_q - max) serves both
     * the sum and the responsibility e_q / sum e. Below -746 exp is exactly
     * 0, and glibc reaches it through its slow underflow path, which most
     * entries of well-separated components would take. */
    double total = 0;
    for (int64_t i = 0; i < nr; i++) {
        double *l = lp + i * k, mx = -INFINITY, se = 0;
        for (int64_t q = 0; q < k; q++) mx = fmax(mx, l[q]);
        for (int64_t q = 0; q < k; q++) se += (l[q] = l[q] - mx < -746 ? 0 : exp(l[q] - mx));
        total += mx + log(se);
        if (resp) {
            double inv = 1 / se, *ri = resp + (r0 + i) * k;
            for (int64_t q = 0; q < k; q++) ri[q] = l[q] * inv;
        }
    }
    *bsum = total;
}

/* E-step: log P(c) + log N(x_i; mu_c, Sigma_c) for every row and component,
 * normalized by log-sum-exp into responsibilities (resp may be NULL);
 * returns the mean log p(x). For full covariances the Mahalanobis term is
 * |L_c^-1 (x_i - mu_c)|^2 (Sigma_c = L_c L_c^T), a block of rows at a time.
 * The blocks are shared dynamically by the threads (each BLAS call runs on
 * one: the OpenMP build of OpenBLAS does so inside a parallel region), so a
 * thread that the busy machine deschedules does not hold the others at a
 * barrier; the block sums are added in block order, the same for any
 * thread count. */
static double estep(const nb_gmm *m, const chol *c, work *w, const double *x, int64_t n, double *resp) {
    int64_t d = m->d, k = m->k, kd = k * d, R = w->rows, nblk = (n + R - 1) / R;
    double c0 = (double)d * log(2 * M_PI);
    for (int64_t q = 0; q < k; q++) w->base[q] = log(m->weights[q]) - 0.5 * (c0 + c->logdet[q]);
    NB_PARALLEL(nblk > 1 && n * kd * (m->diagonal ? 1 : d) >= NB_PAR_MIN, for schedule(dynamic, 1) num_threads(w->nthr),
                for (int64_t b = 0; b < nblk; b++) {
                    int64_t r0 = b * R;
                    eblock(m, c, w, x, r0, n - r0 < R ? n - r0 : R, resp, w->bsum + b);
                });
    double total = 0;
    for (int64_t b = 0; b < nblk; b++) total += w->bsum[b];
    return total / (double)n;
}

/* The covariances, after mstep has set N_c and mu_c: Sigma_c = sum r_ic
 * (x_i - mu_c)(x_i - mu_c)^T / N_c + reg I. Full ones are SYRKs of the rows
 * sqrt(r_ic) (x_i - mu_c), MROWS at a time, accumulated in Sigma_c. The row
 * blocks are the outer loop so that each block of x is read from memory
 * once for all the thread's components (component-outer, every component
 * streamed all of x again, and building the rows cost as much as a SYRK).
 * Thread t of T owns the components c = t mod T and adds its blocks in row
 * order: no reduction across threads, the same sums for any thread count. */
static void mcov(nb_gmm *m, const work *w, const double *x, int64_t n, const double *resp, double reg) {
    int64_t d = m->d, k = m->k, t = thread_id(w), T = team_size(w);
    if (m->diagonal) {
        for (int64_t q = t; q < k; q += T) {
            double *v = m->covs + q * d, N = w->N[q];
            const double *mu = m->means + q * d;
            for (int64_t j = 0; j < d; j++) v[j] = 0;
            for (int64_t i = 0; i < n; i++) {
                double r = resp[i * k + q];
                for (int64_t j = 0; j < d; j++) v[j] += r * (x[i * d + j] - mu[j]) * (x[i * d + j] - mu[j]);
            }
            for (int64_t j = 0; j < d; j++) v[j] = v[j] / N + reg;
        }
        return;
    }
    double *wx = w->wx + t * MROWS * d;
    for (int64_t r0 = 0; r0 < n; r0 += MROWS) {
        int64_t nr = n - r0 < MROWS ? n - r0 : MROWS;
        for (int64_t q = t; q < k; q += T) {
            const double *mu = m->means + q * d;
            for (int64_t i = 0; i < nr; i++) {
                double sr = sqrt(resp[(r0 + i) * k + q]);
                for (int64_t j = 0; j < d; j++) wx[i * d + j] = sr * (x[(r0 + i) * d + j] - mu[j]);
            }
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)nr, 1.0 / w->N[q], wx, (int)d,
                        r0 ? 1.0 : 0.0, m->covs + q * d * d, (int)d);
        }
    }
    for (int64_t q = t; q < k; q += T) {
        double *S = m->covs + q * d * d;
        for (int64_t a = 0; a < d; a++) {
            for (int64_t b = a + 1; b < d; b++) S[a * d + b] = S[b * d + a];
            S[a * d + a] += reg;
        }
    }
}

/* M-step: N_c = sum_i r_ic (+ 10 eps, as scikit-learn, so an empty
 * component does not divide by zero), P(c) = N_c / n, mu_c = sum r_ic x_i /
 * N_c (all k at once as the GEMM resp^T X), then the covariances. */
static void mstep(nb_gmm *m, const work *w, const double *x, int64_t n, const double *resp, double reg) {
    int64_t d = m->d, k = m->k;
    double *N = w->N;
    for (int64_t q = 0; q < k; q++) N[q] = 10 * DBL_EPSILON;
    for (int64_t i = 0; i < n; i++)
        for (int64_t q = 0; q < k; q++) N[q] += resp[i * k + q];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)d, (int)n, 1.0, resp, (int)k, x, (int)d, 0.0,
                m->means, (int)d);
    for (int64_t q = 0; q < k; q++) {
        for (int64_t j = 0; j < d; j++) m->means[q * d + j] /= N[q];
        m->weights[q] = N[q] / (double)n;
    }
    NB_PARALLEL(k > 1 && n * k * (m->diagonal ? d : d * d) >= NB_PAR_MIN, num_threads(w->nthr < k ? w->nthr : (int)k),
                mcov(m, w, x, n, resp, reg););
    double s = 0;
    for (int64_t q = 0; q < k; q++) s += m->weights[q];
    for (int64_t q = 0; q < k; q++) m->weights[q] /= s;
}

/* k-means++ seeding (Arthur & Vassilvitskii 2007: each next center drawn with
 * probability proportional to D(x)^2), then Lloyd iterations; the hard
 * assignment is EM's starting responsibilities (scikit-learn's default
 * init_params="kmeans"). */
static void kmeans_init(const double *x, int64_t n, int64_t d, int k, nb_rng *r, double *resp) {
    double *cent = nb__xmalloc("a Gaussian mixture", (size_t)(k * d), sizeof(double)), *dist = nb__xmalloc("a Gaussian mixture", (size_t)n, sizeof(double));
    int32_t *asg = nb__xmalloc("a Gaussian mixture", (size_t)n, sizeof(int32_t));
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
    double *prevc = nb__xmalloc("a Gaussian mixture", (size_t)(k * d), sizeof(double)), tolc = 0;
    {
        double *mu = nb__xcalloc("a Gaussian mixture", (size_t)d, sizeof(double));
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
        int64_t *cnt = nb__xcalloc("a Gaussian mixture", (size_t)k, sizeof(int64_t));
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
    nb_gmm *m = nb__xcalloc("a Gaussian mixture", 1, sizeof *m);
    m->k = k;
    m->d = d;
    m->diagonal = diagonal;
    m->weights = nb__xmalloc("a Gaussian mixture", (size_t)k, sizeof(double));
    m->means = nb__ml_alloc("the array of component means", k * d, sizeof(double), false);
    m->covs = nb__ml_alloc("the array of component covariances", k * (diagonal ? d : d * d), sizeof(double), false);
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
    double *x = nb__ml_double(X), *resp = nb__ml_alloc("the array of responsibilities (examples x components)", n * k, sizeof(double), false);
    int64_t per = opt.diagonal ? d : d * d;
    chol c = {nb__ml_alloc("the array of Cholesky factors", k * per, sizeof(double), false), nb__xmalloc("a Gaussian mixture", (size_t)k, sizeof(double))};
    nb_rng r;
    nb_rng_seed(&r, opt.seed, 5);
    work w;
    work_init(&w, &(nb_gmm){.k = k, .d = d, .diagonal = opt.diagonal}, n);
    nb_gmm *best = NULL;
    int rc = 0;
    for (int init = 0; init < n_init && !rc; init++) {
        nb_gmm *m = gmm_alloc(k, d, opt.diagonal);
        kmeans_init(x, n, d, k, &r, resp);
        mstep(m, &w, x, n, resp, reg);
        double lb = -INFINITY;
        for (m->iters = 1; m->iters <= max_iter; m->iters++) {
            if ((rc = factorize(m, &c))) break;
            double prev = lb;
            lb = estep(m, &c, &w, x, n, resp);
            mstep(m, &w, x, n, resp, reg);
            if (fabs(lb - prev) < tol) {
                m->converged = true;
                break;
            }
        }
        if (m->iters > max_iter) m->iters = max_iter;
        if (!rc && !(rc = factorize(m, &c))) m->loglik = estep(m, &c, &w, x, n, NULL);
        if (!rc && (!best || m->loglik > best->loglik)) {
            nb_gmm_free(best);
            best = m;
        } else {
            nb_gmm_free(m);
        }
    }
    free(x);
    free(resp);
    work_free(&w);
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
    nb__ml_predict_X("gmm_score", X, m->d);
    chol c = {nb__ml_alloc("the array of Cholesky factors", m->k * per, sizeof(double), false), nb__xmalloc("a Gaussian mixture", (size_t)m->k, sizeof(double))};
    double *x = nb__ml_double(X), s = NAN;
    work w;
    work_init(&w, m, n);
    if (factorize(m, &c) == 0) s = estep(m, &c, &w, x, n, resp);
    work_free(&w);
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
    nb_gmm *m = nb__xcalloc("a Gaussian mixture", 1, sizeof *m);
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
