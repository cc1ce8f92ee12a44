/* svm.c — kernel support vector machines (notes §5.7, eq. 5.83): LIBSVM's
 * C-SVC solved by SMO with second-order working-set selection (Fan, Chen &
 * Lin, JMLR 2005), shrinking with gradient reconstruction, an LRU cache of
 * kernel rows, one-vs-one voting for several classes, and k-fold
 * cross-validation. */
#include "classic.h"
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define TAU 1e-12 /* the curvature floor of a non-PSD kernel (LIBSVM's) */

void nb_svm_default_opts(nb_svm_opts *o) {
    *o = (nb_svm_opts){.kernel = NB_KERNEL_RBF, .C = 1, .gamma = 0, .coef0 = 0, .degree = 3, .eps = 1e-3,
                       .cache_mb = 100, .shrinking = true};
}

static const char *KNAMES[] = {"linear", "polynomial", "rbf", "sigmoid"};
const char *nb_kernel_name(nb_kernel k) { return (unsigned)k < 4 ? KNAMES[k] : "?"; }

int nb_kernel_from_name(const char *s, nb_kernel *k) {
    /* As nb_cell_from_name and nb_env_new take it; strcmp crashed. */
    if (!s) return nb_error("unknown kernel '(null)' (expected linear, polynomial, rbf, sigmoid or LIBSVM's 0-3)");
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, KNAMES[i]) || (s[0] == '0' + i && !s[1])) {
            *k = (nb_kernel)i;
            return 0;
        }
    if (!strcmp(s, "poly")) {
        *k = NB_KERNEL_POLY;
        return 0;
    }
    return nb_error("unknown kernel '%s' (expected linear, polynomial, rbf, sigmoid or LIBSVM's 0-3)", s);
}

/* The kernel from a dot product and two squared norms. */
static inline double kfun(const nb_svm_opts *o, double dot, double sqa, double sqb) {
    switch (o->kernel) {
    case NB_KERNEL_LINEAR: return dot;
    case NB_KERNEL_POLY: return pow(o->gamma * dot + o->coef0, o->degree);
    case NB_KERNEL_RBF: return exp(-o->gamma * fmax(sqa + sqb - 2 * dot, 0.0));
    default: return tanh(o->gamma * dot + o->coef0);
    }
}

double nb_svm_kernel(const nb_svm_opts *o, const float *u, const float *v, int64_t d) {
    double dot = 0, su = 0, sv = 0, dist = 0;
    for (int64_t j = 0; j < d; j++) {
        dot += (double)u[j] * v[j];
        su += (double)u[j] * u[j];
        sv += (double)v[j] * v[j];
        dist += ((double)u[j] - v[j]) * ((double)u[j] - v[j]);
    }
    if (o->kernel == NB_KERNEL_RBF) return exp(-o->gamma * dist);
    return kfun(o, dot, su, sv);
}

/* --- the kernel matrix of one binary problem, with an LRU row cache -------- */

/* Q_ij = y_i y_j K(x_i, x_j). Rows are computed whole (all l columns) and
 * kept in an LRU list: a circular doubly-linked list through prev/next with
 * the sentinel l; the most recently used row follows the sentinel. */
typedef struct {
    int64_t l, d;
    const float *x;      /* l x d */
    float *sq;           /* squared norms */
    const signed char *y;
    const nb_svm_opts *o;
    float **row;         /* l entries, NULL when not cached */
    int32_t *prev, *next;
    int64_t cached, max_rows;
} kmat;

static void kmat_init(kmat *K, const float *x, const signed char *y, int64_t l, int64_t d, const nb_svm_opts *o) {
    K->l = l;
    K->d = d;
    K->x = x;
    K->y = y;
    K->o = o;
    K->sq = nb__ml_alloc("the kernel's squared norms", l, sizeof(float), false);
    for (int64_t i = 0; i < l; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        K->sq[i] = (float)s;
    }
    K->row = nb__ml_alloc("the kernel cache's index", l, sizeof(float *), true);
    K->prev = nb__ml_alloc("the kernel cache's index", l + 1, sizeof(int32_t), false);
    K->next = nb__ml_alloc("the kernel cache's index", l + 1, sizeof(int32_t), false);
    K->prev[l] = K->next[l] = (int32_t)l;
    K->cached = 0;
    int64_t rows = (int64_t)(o->cache_mb * 1048576.0 / (4.0 * (double)l));
    K->max_rows = rows < 2 ? 2 : rows > l ? l : rows; /* SMO needs two rows at once */
}

static void kmat_free(kmat *K) {
    for (int64_t i = 0; i < K->l; i++) free(K->row[i]);
    free(K->row);
    free(K->prev);
    free(K->next);
    free(K->sq);
}

static void lru_unlink(kmat *K, int32_t i) {
    K->next[K->prev[i]] = K->next[i];
    K->prev[K->next[i]] = K->prev[i];
}
static void lru_front(kmat *K, int32_t i) {
    int32_t s = (int32_t)K->l;
    K->next[i] = K->next[s];
    K->prev[i] = s;
    K->prev[K->next[s]] = i;
    K->next[s] = i;
}

/* Row i of Q, from the cache or computed: the dot products by BLAS (sgemv),
 * then the kernel elementwise; large rows on several threads. */
static const float *kmat_row(kmat *K, int32_t i) {
    if (K->row[i]) {
        lru_unlink(K, i);
        lru_front(K, i);
        return K->row[i];
    }
    float *r = NULL;
    if (K->cached < K->max_rows) {
        /* The cache grows a row at a time up to -m; where memory runs out
         * first, it stops growing there (LIBSVM with a smaller -m) rather
         * than write through a NULL row. SMO needs two rows at once. */
        r = malloc(sizeof(float) * (size_t)K->l);
        if (r) K->cached++;
        else if (K->cached >= 2) K->max_rows = K->cached;
        else nb_oom("a row of the kernel cache", sizeof(float) * (size_t)K->l);
    }
    if (!r) { /* evict the least recently used row */
        int32_t old = K->prev[K->l];
        lru_unlink(K, old);
        r = K->row[old];
        K->row[old] = NULL;
    }
    int64_t l = K->l, d = K->d;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)l, (int)d, 1.f, K->x, (int)d, K->x + i * d, 1, 0.f, r, 1);
    const nb_svm_opts *o = K->o;
    const signed char *y = K->y;
    float yi = y[i], g = (float)o->gamma, sqi = K->sq[i];
    const float *sq = K->sq;
    switch (o->kernel) {
    case NB_KERNEL_LINEAR:
        for (int64_t j = 0; j < l; j++) r[j] *= yi * y[j];
        break;
    case NB_KERNEL_RBF:
        NB_PRAGMA(omp parallel for simd if (l * d >= 4 * NB_PAR_MIN && !omp_in_parallel()))
        for (int64_t j = 0; j < l; j++) r[j] = yi * y[j] * expf(-g * fmaxf(sqi + sq[j] - 2 * r[j], 0.f));
        break;
    default:
        for (int64_t j = 0; j < l; j++) r[j] = yi * y[j] * (float)kfun(o, r[j], sqi, sq[j]);
    }
    K->row[i] = r;
    lru_front(K, i);
    return r;
}

/* --- SMO for one binary C-SVC problem ------------------------------------- */

enum { LOWER, UPPER, FREE };

/* min_a 1/2 a^T Q a - e^T a  s.t.  y^T a = 0, 0 <= a_i <= C (the dual of the
 * C-SVC). G = Q a - e is the gradient; G_bar = C sum_{a_j = C} Q_:j keeps the
 * part of it due to variables at the upper bound, so gradients of shrunk
 * variables can be rebuilt. The active set is act[0..active). */
typedef struct {
    kmat *K;
    int64_t l, active;
    const signed char *y;
    double C, eps;
    double *alpha, *G, *G_bar, *QD;
    char *st;
    int32_t *act;
    bool unshrink;
} smo;

static inline void set_status(smo *s, int32_t i) {
    s->st[i] = s->alpha[i] >= s->C ? UPPER : s->alpha[i] <= 0 ? LOWER : FREE;
}

/* Rebuilds G of the inactive variables: G_i = G_bar_i - 1 + sum over free j
 * of alpha_j Q_ij, through whichever rows are fewer. */
static void reconstruct_gradient(smo *s) {
    int64_t l = s->l, a = s->active;
    if (a == l) return;
    for (int64_t k = a; k < l; k++) s->G[s->act[k]] = s->G_bar[s->act[k]] - 1;
    int64_t nfree = 0;
    for (int64_t k = 0; k < a; k++) nfree += s->st[s->act[k]] == FREE;
    if (nfree * l > 2 * a * (l - a)) {
        for (int64_t k = a; k < l; k++) {
            int32_t i = s->act[k];
            const float *Qi = kmat_row(s->K, i);
            double g = 0;
            for (int64_t t = 0; t < a; t++) {
                int32_t j = s->act[t];
                if (s->st[j] == FREE) g += s->alpha[j] * Qi[j];
            }
            s->G[i] += g;
        }
    } else {
        for (int64_t t = 0; t < a; t++) {
            int32_t i = s->act[t];
            if (s->st[i] != FREE) continue;
            const float *Qi = kmat_row(s->K, i);
            for (int64_t k = a; k < l; k++) s->G[s->act[k]] += s->alpha[i] * Qi[s->act[k]];
        }
    }
}

/* WSS2: i maximizes -y_i G_i over I_up; j minimizes the second-order
 * estimate of the objective decrease, -(b_ij^2) / a_ij, over I_low with
 * b_ij > 0. Returns 1 when the maximal violation m(a) - M(a) < eps. */
static int select_working_set(smo *s, int32_t *out_i, int32_t *out_j) {
    double Gmax = -INFINITY, Gmax2 = -INFINITY, obj_min = INFINITY;
    int32_t imax = -1, jmin = -1;
    const signed char *y = s->y;
    const double *G = s->G;
    for (int64_t k = 0; k < s->active; k++) {
        int32_t t = s->act[k];
        if (y[t] == 1) {
            if (s->st[t] != UPPER && -G[t] >= Gmax) Gmax = -G[t], imax = t;
        } else if (s->st[t] != LOWER && G[t] >= Gmax) Gmax = G[t], imax = t;
    }
    const float *Qi = imax >= 0 ? kmat_row(s->K, imax) : NULL;
    for (int64_t k = 0; k < s->active; k++) {
        int32_t j = s->act[k];
        double gd, quad;
        if (y[j] == 1) {
            if (s->st[j] == LOWER) continue;
            gd = Gmax + G[j];
            if (G[j] >= Gmax2) Gmax2 = G[j];
            if (gd <= 0) continue;
            quad = s->QD[imax] + s->QD[j] - 2.0 * y[imax] * Qi[j];
        } else {
            if (s->st[j] == UPPER) continue;
            gd = Gmax - G[j];
            if (-G[j] >= Gmax2) Gmax2 = -G[j];
            if (gd <= 0) continue;
            quad = s->QD[imax] + s->QD[j] + 2.0 * y[imax] * Qi[j];
        }
        double obj = -(gd * gd) / (quad > 0 ? quad : TAU);
        if (obj <= obj_min) obj_min = obj, jmin = j;
    }
    if (Gmax + Gmax2 < s->eps || jmin == -1) return 1;
    *out_i = imax;
    *out_j = jmin;
    return 0;
}

static bool be_shrunk(const smo *s, int32_t i, double Gmax1, double Gmax2) {
    if (s->st[i] == UPPER) return s->y[i] == 1 ? -s->G[i] > Gmax1 : -s->G[i] > Gmax2;
    if (s->st[i] == LOWER) return s->y[i] == 1 ? s->G[i] > Gmax2 : s->G[i] > Gmax1;
    return false;
}

/* Removes from the active set the bounded variables that the KKT conditions
 * say will stay bounded; once the violation is within 10 eps, unshrinks
 * everything once so the final iterations see the whole problem. */
static void do_shrinking(smo *s) {
    double Gmax1 = -INFINITY, Gmax2 = -INFINITY;
    for (int64_t k = 0; k < s->active; k++) {
        int32_t i = s->act[k];
        double g = s->G[i];
        if (s->y[i] == 1) {
            if (s->st[i] != UPPER && -g >= Gmax1) Gmax1 = -g;
            if (s->st[i] != LOWER && g >= Gmax2) Gmax2 = g;
        } else {
            if (s->st[i] != UPPER && -g >= Gmax2) Gmax2 = -g;
            if (s->st[i] != LOWER && g >= Gmax1) Gmax1 = g;
        }
    }
    if (!s->unshrink && Gmax1 + Gmax2 <= s->eps * 10) {
        s->unshrink = true;
        reconstruct_gradient(s);
        s->active = s->l;
    }
    for (int64_t k = 0; k < s->active; k++) {
        if (!be_shrunk(s, s->act[k], Gmax1, Gmax2)) continue;
        s->active--;
        while (s->active > k) {
            if (!be_shrunk(s, s->act[s->active], Gmax1, Gmax2)) {
                int32_t t = s->act[k];
                s->act[k] = s->act[s->active];
                s->act[s->active] = t;
                break;
            }
            s->active--;
        }
    }
}

/* rho: the mean of y_i G_i over free variables, else the middle of the
 * feasible interval (the KKT conditions bound it from both sides). */
static double calculate_rho(const smo *s) {
    double ub = INFINITY, lb = -INFINITY, sum = 0;
    int64_t nfree = 0;
    for (int64_t i = 0; i < s->l; i++) {
        double yG = s->y[i] * s->G[i];
        if (s->st[i] == UPPER) {
            if (s->y[i] == -1) ub = fmin(ub, yG);
            else lb = fmax(lb, yG);
        } else if (s->st[i] == LOWER) {
            if (s->y[i] == 1) ub = fmin(ub, yG);
            else lb = fmax(lb, yG);
        } else {
            nfree++;
            sum += yG;
        }
    }
    return nfree > 0 ? sum / (double)nfree : (ub + lb) / 2;
}

/* Solves one binary problem: alpha[l] (>= 0) and rho; returns iterations. */
static int64_t smo_solve(kmat *K, const signed char *y, const nb_svm_opts *o, double *alpha, double *rho) {
    int64_t l = K->l;
    smo s = {.K = K, .l = l, .active = l, .y = y, .C = o->C, .eps = o->eps, .alpha = alpha};
    s.G = nb__xmalloc("an SVM", (size_t)l, sizeof(double));
    s.G_bar = nb__xcalloc("an SVM", (size_t)l, sizeof(double));
    s.QD = nb__xmalloc("an SVM", (size_t)l, sizeof(double));
    s.st = nb__xmalloc("an SVM", (size_t)l, 1);
    s.act = nb__xmalloc("an SVM", (size_t)l, sizeof(int32_t));
    for (int64_t i = 0; i < l; i++) {
        alpha[i] = 0;
        s.G[i] = -1; /* alpha = 0: G = Q 0 + p with p = -e */
        s.st[i] = LOWER;
        s.act[i] = (int32_t)i;
        s.QD[i] = kfun(o, K->sq[i], K->sq[i], K->sq[i]);
        if (o->kernel == NB_KERNEL_RBF) s.QD[i] = 1;
    }
    int64_t iter = 0, max_iter = l > INT64_MAX / 100 ? INT64_MAX : (100 * l > 10000000 ? 100 * l : 10000000);
    int64_t counter = (l < 1000 ? l : 1000) + 1;
    while (iter < max_iter) {
        if (--counter == 0) {
            counter = l < 1000 ? l : 1000;
            if (o->shrinking) do_shrinking(&s);
        }
        int32_t i, j;
        if (select_working_set(&s, &i, &j)) {
            reconstruct_gradient(&s); /* optimal on the active set: check the whole problem */
            s.active = l;
            if (select_working_set(&s, &i, &j)) break;
            counter = 1; /* shrink again at once */
        }
        iter++;
        const float *Qi = kmat_row(K, i), *Qj = kmat_row(K, j);
        double C = s.C, ai = alpha[i], aj = alpha[j];
        /* The two-variable subproblem in closed form, clipped to the box
         * along the line y_i a_i + y_j a_j = const. */
        if (y[i] != y[j]) {
            double quad = s.QD[i] + s.QD[j] + 2 * Qi[j];
            if (quad <= 0) quad = TAU;
            double delta = (-s.G[i] - s.G[j]) / quad, diff = alpha[i] - alpha[j];
            alpha[i] += delta;
            alpha[j] += delta;
            if (diff > 0) {
                if (alpha[j] < 0) alpha[j] = 0, alpha[i] = diff;
            } else if (alpha[i] < 0) alpha[i] = 0, alpha[j] = -diff;
            if (diff > 0) {
                if (alpha[i] > C) alpha[i] = C, alpha[j] = C - diff;
            } else if (alpha[j] > C) alpha[j] = C, alpha[i] = C + diff;
        } else {
            double quad = s.QD[i] + s.QD[j] - 2 * Qi[j];
            if (quad <= 0) quad = TAU;
            double delta = (s.G[i] - s.G[j]) / quad, sum = alpha[i] + alpha[j];
            alpha[i] -= delta;
            alpha[j] += delta;
            if (sum > C) {
                if (alpha[i] > C) alpha[i] = C, alpha[j] = sum - C;
            } else if (alpha[j] < 0) alpha[j] = 0, alpha[i] = sum;
            if (sum > C) {
                if (alpha[j] > C) alpha[j] = C, alpha[i] = sum - C;
            } else if (alpha[i] < 0) alpha[i] = 0, alpha[j] = sum;
        }
        double dai = alpha[i] - ai, daj = alpha[j] - aj;
        for (int64_t k = 0; k < s.active; k++) {
            int32_t t = s.act[k];
            s.G[t] += Qi[t] * dai + Qj[t] * daj;
        }
        /* G_bar follows the variables that reach or leave the upper bound. */
        bool ui = s.st[i] == UPPER, uj = s.st[j] == UPPER;
        set_status(&s, i);
        set_status(&s, j);
        if (ui != (s.st[i] == UPPER)) {
            Qi = kmat_row(K, i);
            double c = ui ? -C : C;
            for (int64_t k = 0; k < l; k++) s.G_bar[k] += c * Qi[k];
        }
        if (uj != (s.st[j] == UPPER)) {
            Qj = kmat_row(K, j);
            double c = uj ? -C : C;
            for (int64_t k = 0; k < l; k++) s.G_bar[k] += c * Qj[k];
        }
    }
    if (s.active < l) {
        reconstruct_gradient(&s);
        s.active = l;
    }
    *rho = calculate_rho(&s);
    free(s.G);
    free(s.G_bar);
    free(s.QD);
    free(s.st);
    free(s.act);
    return iter;
}

/* --- one-vs-one ------------------------------------------------------------ */

static int check_opts(const nb_svm_opts *o) {
    if ((unsigned)o->kernel > NB_KERNEL_SIGMOID) return nb_error("svm_fit: unknown kernel %d", (int)o->kernel);
    if (!(o->C > 0)) return nb_error("svm_fit: C (-c) must be > 0, got %g", o->C);
    if (!(o->gamma >= 0)) return nb_error("svm_fit: gamma (-g) must be >= 0, got %g", o->gamma);
    if (o->kernel == NB_KERNEL_POLY && o->degree < 1) return nb_error("svm_fit: degree (-d) must be >= 1, got %d", o->degree);
    if (!(o->eps > 0)) return nb_error("svm_fit: eps (-e) must be > 0, got %g", o->eps);
    if (!(o->cache_mb > 0)) return nb_error("svm_fit: the cache size (-m) must be > 0 MB, got %g", o->cache_mb);
    if (!isfinite(o->coef0)) return nb_error("svm_fit: coef0 (-r) must be finite");
    return 0;
}

nb_svm *nb_svm_fit(const nb_tensor *X, const float *y, const nb_svm_opts *opts) {
    int64_t n, d;
    nb_svm_opts o;
    if (opts) o = *opts;
    else nb_svm_default_opts(&o);
    if (nb__ml_check_X("svm_fit", X, &n, &d) || nb__ml_check_y("svm_fit", y, n) || check_opts(&o)) return NULL;
    if (o.gamma == 0) o.gamma = 1.0 / (double)d;
    /* Classes in order of first appearance (LIBSVM's), +1 before -1. */
    double *labels = nb__xmalloc("an SVM", 16, sizeof(double));
    int nc = 0, cap = 16;
    int32_t *cls = nb__xmalloc("an SVM", (size_t)n, sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        int c = 0;
        while (c < nc && labels[c] != (double)y[i]) c++;
        if (c == nc) {
            if (nc == cap) labels = nb__xrealloc("an SVM", labels, (size_t)(cap *= 2), sizeof(double));
            labels[nc++] = y[i];
        }
        cls[i] = c;
    }
    if (nc == 2 && labels[0] == -1 && labels[1] == 1) {
        labels[0] = 1;
        labels[1] = -1;
        for (int64_t i = 0; i < n; i++) cls[i] = 1 - cls[i];
    }
    if (nc < 2) {
        nb_error("the labels hold one class only (%g): a classifier needs at least 2", labels[0]);
        free(labels);
        free(cls);
        return NULL;
    }
    /* Rows grouped by class, in their original order within a class. */
    int64_t *start = nb__xcalloc("an SVM", (size_t)nc + 1, sizeof(int64_t)), *count = nb__xcalloc("an SVM", (size_t)nc, sizeof(int64_t));
    int64_t *perm = nb__xmalloc("an SVM", (size_t)n, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) count[cls[i]]++;
    for (int c = 0; c < nc; c++) start[c + 1] = start[c] + count[c];
    int64_t *fill = nb__xmalloc("an SVM", (size_t)nc, sizeof(int64_t));
    memcpy(fill, start, sizeof(int64_t) * (size_t)nc);
    for (int64_t i = 0; i < n; i++) perm[fill[cls[i]]++] = i;
    float *xs = nb__xmalloc("an SVM", (size_t)(n * d), sizeof(float));
    for (int64_t i = 0; i < n; i++) memcpy(xs + i * d, X->data + perm[i] * d, sizeof(float) * (size_t)d);

    int npairs = nc * (nc - 1) / 2;
    int (*pairs)[2] = nb__xmalloc("an SVM", (size_t)npairs, sizeof(int[2]));
    for (int i = 0, p = 0; i < nc; i++)
        for (int j = i + 1; j < nc; j++, p++) pairs[p][0] = i, pairs[p][1] = j;
    double **coef = nb__xmalloc("an SVM", (size_t)npairs, sizeof(double *)), *rho = nb__xmalloc("an SVM", (size_t)npairs, sizeof(double));
    int64_t *iters = nb__xcalloc("an SVM", (size_t)npairs, sizeof(int64_t));
    /* The binary problems are independent: one per thread, biggest first
     * would be ideal; dynamic scheduling comes close. Inside a problem the
     * kernel rows use BLAS (single-threaded here). */
    NB_PRAGMA(omp parallel for schedule(dynamic, 1) if (npairs > 1))
    for (int p = 0; p < npairs; p++) {
        int ci = pairs[p][0], cj = pairs[p][1];
        int64_t li = count[ci], l = li + count[cj];
        float *xp = nb__xmalloc("an SVM", (size_t)(l * d), sizeof(float));
        memcpy(xp, xs + start[ci] * d, sizeof(float) * (size_t)(li * d));
        memcpy(xp + li * d, xs + start[cj] * d, sizeof(float) * (size_t)(count[cj] * d));
        signed char *yp = nb__xmalloc("an SVM", (size_t)l, 1);
        for (int64_t k = 0; k < l; k++) yp[k] = k < li ? 1 : -1;
        kmat K;
        kmat_init(&K, xp, yp, l, d, &o);
        coef[p] = nb__xmalloc("an SVM", (size_t)l, sizeof(double));
        iters[p] = smo_solve(&K, yp, &o, coef[p], &rho[p]);
        for (int64_t k = 0; k < l; k++) coef[p][k] *= yp[k]; /* alpha_i y_i */
        kmat_free(&K);
        free(xp);
        free(yp);
    }
    /* Support vectors: rows with a nonzero alpha in any of their pairs. */
    bool *nz = nb__xcalloc("an SVM", (size_t)n, sizeof(bool));
    for (int p = 0; p < npairs; p++) {
        int ci = pairs[p][0], cj = pairs[p][1];
        for (int64_t k = 0; k < count[ci]; k++) nz[start[ci] + k] |= coef[p][k] != 0;
        for (int64_t k = 0; k < count[cj]; k++) nz[start[cj] + k] |= coef[p][count[ci] + k] != 0;
    }
    nb_svm *m = nb__xcalloc("an SVM", 1, sizeof *m);
    m->opts = o;
    m->d = d;
    m->nclass = nc;
    m->labels = labels;
    m->class_nsv = nb__xcalloc("an SVM", (size_t)nc, sizeof(int64_t));
    int64_t *nzstart = nb__xcalloc("an SVM", (size_t)nc + 1, sizeof(int64_t));
    for (int c = 0; c < nc; c++) {
        for (int64_t k = 0; k < count[c]; k++) m->class_nsv[c] += nz[start[c] + k];
        nzstart[c + 1] = nzstart[c] + m->class_nsv[c];
    }
    m->nsv = nzstart[nc];
    m->sv = nb__xmalloc("an SVM", (size_t)((m->nsv ? m->nsv : 1) * d), sizeof(float));
    m->sv_index = nb__xmalloc("an SVM", (size_t)(m->nsv ? m->nsv : 1), sizeof(int64_t));
    for (int64_t i = 0, q = 0; i < n; i++)
        if (nz[i]) {
            memcpy(m->sv + q * d, xs + i * d, sizeof(float) * (size_t)d);
            m->sv_index[q++] = perm[i];
        }
    /* LIBSVM's layout: in pair (i, j) class i's SVs keep their coefficient in
     * row j - 1, class j's in row i. */
    m->coef = nb__xcalloc("an SVM", (size_t)((nc - 1) * (m->nsv ? m->nsv : 1)), sizeof(double));
    m->rho = rho;
    for (int p = 0; p < npairs; p++) {
        int ci = pairs[p][0], cj = pairs[p][1];
        int64_t q = nzstart[ci];
        for (int64_t k = 0; k < count[ci]; k++)
            if (nz[start[ci] + k]) m->coef[(cj - 1) * m->nsv + q++] = coef[p][k];
        q = nzstart[cj];
        for (int64_t k = 0; k < count[cj]; k++)
            if (nz[start[cj] + k]) m->coef[ci * m->nsv + q++] = coef[p][count[ci] + k];
        m->iters += iters[p];
        free(coef[p]);
    }
    free(coef);
    free(iters);
    free(nz);
    free(nzstart);
    free(pairs);
    free(xs);
    free(perm);
    free(fill);
    free(start);
    free(count);
    free(cls);
    return m;
}

void nb_svm_free(nb_svm *m) {
    if (!m) return;
    free(m->labels);
    free(m->class_nsv);
    free(m->sv);
    free(m->sv_index);
    free(m->coef);
    free(m->rho);
    free(m);
}

/* Pair decisions from the kernel values kv[nsv] of one example:
 * eq. 5.83, f(x) = sum_i alpha_i y_i K(x_i, x) - rho. */
static void decide(const nb_svm *m, const double *kv, double *dec) {
    int nc = m->nclass;
    int64_t *st = nb__xmalloc("an SVM", (size_t)(nc + 1), sizeof(int64_t));
    st[0] = 0;
    for (int c = 0; c < nc; c++) st[c + 1] = st[c] + m->class_nsv[c];
    for (int i = 0, p = 0; i < nc; i++)
        for (int j = i + 1; j < nc; j++, p++) {
            double s = 0;
            const double *ci = m->coef + (int64_t)(j - 1) * m->nsv, *cj = m->coef + (int64_t)i * m->nsv;
            for (int64_t k = st[i]; k < st[i + 1]; k++) s += ci[k] * kv[k];
            for (int64_t k = st[j]; k < st[j + 1]; k++) s += cj[k] * kv[k];
            dec[p] = s - m->rho[p];
        }
    free(st);
}

/* The winner of the one-vs-one vote (ties: the class first in label order). */
static int vote(const nb_svm *m, const double *dec) {
    int nc = m->nclass, best = 0;
    int *v = nb__xcalloc("an SVM", (size_t)nc, sizeof(int));
    for (int i = 0, p = 0; i < nc; i++)
        for (int j = i + 1; j < nc; j++, p++) v[dec[p] > 0 ? i : j]++;
    for (int c = 1; c < nc; c++)
        if (v[c] > v[best]) best = c;
    free(v);
    return best;
}

void nb_svm_decision(const nb_svm *m, const float *x, double *dec) {
    double *kv = nb__xmalloc("an SVM", (size_t)(m->nsv ? m->nsv : 1), sizeof(double));
    for (int64_t k = 0; k < m->nsv; k++) kv[k] = nb_svm_kernel(&m->opts, m->sv + k * m->d, x, m->d);
    decide(m, kv, dec);
    free(kv);
}

void nb_svm_predict(const nb_svm *m, const nb_tensor *X, float *labels) {
    int64_t n = X->shape[0], d = m->d, ns = m->nsv, B = 256;
    nb__ml_predict_X("svm_predict", X, d);
    int npairs = m->nclass * (m->nclass - 1) / 2;
    float *dots = nb__xmalloc("an SVM", (size_t)(B * (ns ? ns : 1)), sizeof(float));
    double *svsq = nb__xmalloc("an SVM", (size_t)(ns ? ns : 1), sizeof(double));
    for (int64_t k = 0; k < ns; k++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)m->sv[k * d + j] * m->sv[k * d + j];
        svsq[k] = s;
    }
    for (int64_t b0 = 0; b0 < n; b0 += B) {
        int64_t nb = n - b0 < B ? n - b0 : B;
        /* Every dot product of the block with every SV in one GEMM. */
        if (ns > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)ns, (int)d, 1.f, X->data + b0 * d,
                        (int)d, m->sv, (int)d, 0.f, dots, (int)ns);
        NB_PRAGMA(omp parallel for schedule(static))
        for (int64_t r = 0; r < nb; r++) {
            const float *x = X->data + (b0 + r) * d;
            double xsq = 0, *kv = nb__xmalloc("an SVM", (size_t)(ns ? ns : 1), sizeof(double)), *dec = nb__xmalloc("an SVM", (size_t)npairs, sizeof(double));
            for (int64_t j = 0; j < d; j++) xsq += (double)x[j] * x[j];
            for (int64_t k = 0; k < ns; k++) kv[k] = kfun(&m->opts, dots[r * ns + k], svsq[k], xsq);
            decide(m, kv, dec);
            labels[b0 + r] = (float)m->labels[vote(m, dec)];
            free(kv);
            free(dec);
        }
    }
    free(dots);
    free(svsq);
}

double nb_svm_cross_validate(const nb_tensor *X, const float *y, const nb_svm_opts *o, int folds, uint64_t seed,
                             float *pred) {
    int64_t n, d;
    if (nb__ml_check_X("svm_cross_validate", X, &n, &d) || nb__ml_check_y("svm_cross_validate", y, n)) return -1;
    if (folds < 2 || folds > n) {
        nb_error("svm_cross_validate: folds (-v) must be in [2, %lld], got %d", (long long)n, folds);
        return -1;
    }
    /* Stratified folds: rows shuffled, grouped by class, dealt round-robin. */
    nb_rng r;
    nb_rng_seed(&r, seed, 11);
    int64_t *idx = nb__xmalloc("an SVM", (size_t)n, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    nb_rng_shuffle(&r, idx, n);
    double *classes;
    int32_t *ci = nb__xmalloc("an SVM", (size_t)n, sizeof(int32_t));
    int nc = nb__ml_classes(y, n, &classes, ci);
    int *fold = nb__xmalloc("an SVM", (size_t)n, sizeof(int));
    int64_t deal = 0;
    for (int c = 0; c < nc; c++)
        for (int64_t k = 0; k < n; k++)
            if (ci[idx[k]] == c) fold[idx[k]] = (int)(deal++ % folds);
    float *out = pred ? pred : nb__xmalloc("an SVM", (size_t)n, sizeof(float));
    int64_t correct = 0;
    int rc = 0;
    for (int f = 0; f < folds && !rc; f++) {
        int64_t ntr = 0, nte = 0;
        for (int64_t i = 0; i < n; i++) {
            if (fold[i] == f) nte++;
            else ntr++;
        }
        nb_tensor *Xtr = nb_tensor_new(2, (int64_t[]){ntr, d}), *Xte = nb_tensor_new(2, (int64_t[]){nte, d});
        float *ytr = nb__xmalloc("an SVM", (size_t)ntr, sizeof(float)), *pte = nb__xmalloc("an SVM", (size_t)nte, sizeof(float));
        int64_t *rows = nb__xmalloc("an SVM", (size_t)nte, sizeof(int64_t));
        for (int64_t i = 0, a = 0, b = 0; i < n; i++) {
            if (fold[i] == f) {
                memcpy(Xte->data + b * d, X->data + i * d, sizeof(float) * (size_t)d);
                rows[b++] = i;
            } else {
                memcpy(Xtr->data + a * d, X->data + i * d, sizeof(float) * (size_t)d);
                ytr[a++] = y[i];
            }
        }
        nb_svm *m = nb_svm_fit(Xtr, ytr, o);
        if (!m) { /* name the fold: its training part, not the data, may hold one class only */
            char why[768];
            snprintf(why, sizeof why, "%s", nb_errmsg());
            rc = nb_error("cross-validation fold %d of %d, trained on the other %lld examples: %s", f + 1, folds,
                          (long long)ntr, why);
        } else {
            nb_svm_predict(m, Xte, pte);
            for (int64_t b = 0; b < nte; b++) {
                out[rows[b]] = pte[b];
                correct += pte[b] == y[rows[b]];
            }
            nb_svm_free(m);
        }
        nb_tensor_free(Xtr);
        nb_tensor_free(Xte);
        free(ytr);
        free(pte);
        free(rows);
    }
    if (out != pred) free(out);
    free(idx);
    free(classes);
    free(ci);
    free(fold);
    return rc ? -1 : (double)correct / (double)n;
}

/* --- model files ---------------------------------------------------------- */

int nb__svm_save(const nb_svm *m, nb__stb *b) {
    int64_t ns = m->nsv, nc = m->nclass;
    if (ns > 0) {
        nb__stb_floats(b, "support_vectors", m->sv, 2, (int64_t[]){ns, m->d});
        nb__stb_doubles(b, "sv_coef", m->coef, 2, (int64_t[]){nc - 1, ns});
    }
    nb__stb_doubles(b, "rho", m->rho, 1, (int64_t[]){nc * (nc - 1) / 2});
    nb__stb_doubles(b, "labels", m->labels, 1, (int64_t[]){nc});
    double *cn = nb__xmalloc("an SVM", (size_t)nc, sizeof(double));
    for (int c = 0; c < nc; c++) cn[c] = (double)m->class_nsv[c];
    nb__stb_doubles(b, "class_nsv", cn, 1, (int64_t[]){nc});
    free(cn);
    nb__stb_meta(b, "nabla.svm.kernel", "%s", nb_kernel_name(m->opts.kernel));
    nb__stb_meta(b, "nabla.svm.gamma", "%.17g", m->opts.gamma);
    nb__stb_meta(b, "nabla.svm.coef0", "%.17g", m->opts.coef0);
    nb__stb_meta(b, "nabla.svm.degree", "%d", m->opts.degree);
    nb__stb_meta(b, "nabla.svm.C", "%.17g", m->opts.C);
    nb__stb_meta(b, "nabla.svm.features", "%lld", (long long)m->d);
    return 0;
}

nb_svm *nb__svm_load(const nb_safetensors *st, const char *path) {
    nb_svm *m = nb__xcalloc("an SVM", 1, sizeof *m);
    nb_svm_default_opts(&m->opts);
    const char *k = nb_st_meta(st, "nabla.svm.kernel");
    int64_t deg;
    nb_tensor *lab = nb_st_get(st, "labels");
    if (!k || nb_kernel_from_name(k, &m->opts.kernel)) {
        nb_error("%s: bad or missing metadata nabla.svm.kernel", path);
        goto fail;
    }
    if (nb__st_num(st, path, "nabla.svm.gamma", 0, INFINITY, &m->opts.gamma) ||
        nb__st_num(st, path, "nabla.svm.coef0", -INFINITY, INFINITY, &m->opts.coef0) ||
        nb__st_count(st, path, "nabla.svm.degree", 0, 1000, &deg) ||
        nb__st_num(st, path, "nabla.svm.C", 0, INFINITY, &m->opts.C) ||
        nb__st_count(st, path, "nabla.svm.features", 1, 1000000000000LL, &m->d))
        goto fail;
    m->opts.degree = (int)deg;
    if (!lab || lab->ndim != 1 || lab->shape[0] < 2 || lab->shape[0] > 100000) {
        nb_error("%s: the SVM needs 'labels' [nclass >= 2]", path);
        goto fail;
    }
    m->nclass = (int)lab->shape[0];
    int64_t nc = m->nclass;
    double *cn = nb__st_doubles(st, path, "class_nsv", 1, (int64_t[]){nc});
    if (!cn) goto fail;
    m->class_nsv = nb__xmalloc("an SVM", (size_t)nc, sizeof(int64_t));
    for (int c = 0; c < nc; c++) {
        if (!(cn[c] >= 0 && cn[c] <= 1e12)) {
            free(cn);
            nb_error("%s: bad class_nsv", path);
            goto fail;
        }
        m->class_nsv[c] = (int64_t)cn[c];
        m->nsv += m->class_nsv[c];
    }
    free(cn);
    if (!(m->labels = nb__st_doubles(st, path, "labels", 1, (int64_t[]){nc})) ||
        !(m->rho = nb__st_doubles(st, path, "rho", 1, (int64_t[]){nc * (nc - 1) / 2})))
        goto fail;
    if (m->nsv > 0) {
        if (!(m->sv = nb__st_floats(st, path, "support_vectors", 2, (int64_t[]){m->nsv, m->d})) ||
            !(m->coef = nb__st_doubles(st, path, "sv_coef", 2, (int64_t[]){nc - 1, m->nsv})))
            goto fail;
    } else {
        m->sv = nb__xmalloc("an SVM", sizeof(float), 1);
        m->coef = nb__xcalloc("an SVM", 1, sizeof(double));
    }
    m->sv_index = nb__xmalloc("an SVM", (size_t)(m->nsv ? m->nsv : 1), sizeof(int64_t));
    for (int64_t i = 0; i < m->nsv; i++) m->sv_index[i] = -1;
    return m;
fail:
    nb_svm_free(m);
    return NULL;
}
