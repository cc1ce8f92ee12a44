/* classic.c — shared plumbing of the classical models (linreg, logreg, svm,
 * pca/ppca/fa, gmm): input checks, class lists, and their model files
 * (safetensors with "nabla.model" naming the kind). */
#include "classic.h"
#include "../core/fault.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int nb__ml_check_X(const char *fn, const nb_tensor *X, int64_t *n, int64_t *d) {
    if (!X) return nb_error("%s: X is NULL", fn);
    if (nb__host_only(fn, "X", X)) return -1;
    if (X->ndim != 2) return nb_error("%s: X must be 2-D [examples, features], got %d dimensions", fn, X->ndim);
    if (X->shape[0] < 1 || X->shape[1] < 1)
        return nb_error("%s: X is empty (%lld x %lld)", fn, (long long)X->shape[0], (long long)X->shape[1]);
    for (int64_t i = 0; i < X->size; i++)
        if (!isfinite(X->data[i]))
            return nb_error("%s: X[%lld, %lld] is not finite", fn, (long long)(i / X->shape[1]),
                            (long long)(i % X->shape[1]));
    *n = X->shape[0];
    *d = X->shape[1];
    return 0;
}

void nb__ml_predict_X(const char *fn, const nb_tensor *X, int64_t d) {
    NB_CPU_ONLY(fn, (nb_tensor *)X);
    if (X->ndim != 2 || X->shape[1] != d) nb_fatal(fn, "X must be [n, %lld]", (long long)d);
}

int nb__ml_check_y(const char *fn, const float *y, int64_t n) {
    if (!y) return nb_error("%s: y is NULL", fn);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return nb_error("%s: y[%lld] is not finite", fn, (long long)i);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int nb__ml_classes(const float *y, int64_t n, double **classes, int32_t *idx) {
    double *v = nb__xmalloc("the class labels", (size_t)(n > 0 ? n : 1), sizeof(double));
    for (int64_t i = 0; i < n; i++) v[i] = y[i];
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int k = 0;
    for (int64_t i = 0; i < n; i++)
        if (k == 0 || v[i] != v[k - 1]) v[k++] = v[i];
    if (idx)
        for (int64_t i = 0; i < n; i++) {
            int lo = 0, hi = k - 1; /* binary search: y[i] is among v */
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (v[mid] < (double)y[i]) lo = mid + 1;
                else hi = mid;
            }
            idx[i] = lo;
        }
    *classes = v;
    return k;
}

void *nb__ml_alloc(const char *what, int64_t count, size_t size, bool zero) {
    size_t n = count > 0 ? (size_t)count : 1;
    if (n > SIZE_MAX / size) nb_oom(what, SIZE_MAX);
    void *p = zero ? nb__calloc(n, size) : nb__malloc(n * size);
    if (!p) nb_oom(what, n * size);
    return p;
}

double *nb__ml_double(const nb_tensor *X) {
    double *x = nb__ml_alloc("a double copy of the data", X->size, sizeof(double), false);
    for (int64_t i = 0; i < X->size; i++) x[i] = X->data[i];
    return x;
}

/* The calling thread alone goes serial (nb__threads_hold): a fit in one
 * thread must not change the thread count of another thread's kernels. */
int nb__ml_serial_begin(int64_t d) { return d <= 256 ? nb__threads_hold(1) : -1; }

void nb__ml_serial_end(int old) {
    if (old >= 0) nb__threads_hold(old);
}

void nb__ml_colmean(const double *x, int64_t n, int64_t d, double *mu) {
    for (int64_t j = 0; j < d; j++) mu[j] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) mu[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++) mu[j] /= (double)n;
}

/* --- model files ---------------------------------------------------------- */

void nb__stb_doubles(nb__stb *b, const char *name, const double *src, int ndim, const int64_t *shape) {
    if (b->n >= NB__STB_MAX) nb_fatal("classic_save", "too many tensors");
    nb_tensor *t = nb_tensor_new(ndim, shape);
    for (int64_t i = 0; i < t->size; i++) t->data[i] = (float)src[i];
    b->names[b->n] = name;
    b->ts[b->n++] = t;
}

void nb__stb_floats(nb__stb *b, const char *name, const float *src, int ndim, const int64_t *shape) {
    if (b->n >= NB__STB_MAX) nb_fatal("classic_save", "too many tensors");
    b->names[b->n] = name;
    b->ts[b->n++] = nb_tensor_from(ndim, shape, src);
}

void nb__stb_meta(nb__stb *b, const char *key, const char *fmt, ...) {
    if (b->nm >= NB__STB_MAX * 2) nb_fatal("classic_save", "too many metadata entries");
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    if (vasprintf(&v, fmt, ap) < 0) nb_oom("a model file", 0);
    va_end(ap);
    /* outside the fault seam, as vasprintf is: the writer's own allocations
     * are the ones tests make fail, and they have a way back */
    if (!(b->keys[b->nm] = strdup(key))) nb_oom("a model file", strlen(key) + 1);
    b->vals[b->nm++] = v;
}

void nb__stb_free(nb__stb *b) {
    for (int i = 0; i < b->n; i++) nb_tensor_free(b->ts[i]);
    for (int i = 0; i < b->nm; i++) {
        free(b->keys[i]);
        free(b->vals[i]);
    }
    memset(b, 0, sizeof *b);
}

static const nb_tensor *st_tensor(const nb_safetensors *st, const char *path, const char *name, int ndim,
                                  const int64_t *shape) {
    nb_tensor *t = nb_st_get(st, name);
    if (!t) {
        nb_error("%s: the model lacks the tensor '%s'", path, name);
        return NULL;
    }
    bool ok = t->ndim == ndim;
    for (int k = 0; ok && k < ndim; k++) ok = t->shape[k] == shape[k];
    if (!ok) {
        char got[96];
        nb_error("%s: tensor '%s' has shape %s, expected %d dimensions [%lld%s]", path, name,
                 nb_shape_str(t, got, sizeof got), ndim, ndim ? (long long)shape[0] : 0LL, ndim > 1 ? ", ..." : "");
        return NULL;
    }
    for (int64_t i = 0; i < t->size; i++)
        if (!isfinite(t->data[i])) {
            nb_error("%s: tensor '%s' holds a non-finite value", path, name);
            return NULL;
        }
    return t;
}

double *nb__st_doubles(const nb_safetensors *st, const char *path, const char *name, int ndim, const int64_t *shape) {
    const nb_tensor *t = st_tensor(st, path, name, ndim, shape);
    if (!t) return NULL;
    double *v = malloc(sizeof(double) * (size_t)(t->size ? t->size : 1));
    if (!v) nb_oom(name, sizeof(double) * (size_t)t->size);
    for (int64_t i = 0; i < t->size; i++) v[i] = t->data[i];
    return v;
}

float *nb__st_floats(const nb_safetensors *st, const char *path, const char *name, int ndim, const int64_t *shape) {
    const nb_tensor *t = st_tensor(st, path, name, ndim, shape);
    if (!t) return NULL;
    float *v = malloc(sizeof(float) * (size_t)(t->size ? t->size : 1));
    if (!v) nb_oom(name, sizeof(float) * (size_t)t->size);
    memcpy(v, t->data, sizeof(float) * (size_t)t->size);
    return v;
}

int nb__st_num(const nb_safetensors *st, const char *path, const char *key, double lo, double hi, double *v) {
    const char *s = nb_st_meta(st, key);
    if (!s) return nb_error("%s: the model lacks the metadata '%s'", path, key);
    char *end;
    double x = strtod(s, &end);
    /* Finite whatever the bounds: a fit writes no inf (a kernel's gamma of
     * inf made every prediction NaN). */
    if (end == s || *end || !isfinite(x) || !(x >= lo && x <= hi))
        return nb_error("%s: metadata '%s' = '%s' is not a finite number in [%g, %g]", path, key, s, lo, hi);
    *v = x;
    return 0;
}

int nb__st_count(const nb_safetensors *st, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *v) {
    double x;
    if (nb__st_num(st, path, key, (double)lo, (double)hi, &x)) return -1;
    if (x != floor(x))
        return nb_error("%s: metadata '%s' = '%s' is not a whole number", path, key, nb_st_meta(st, key));
    *v = (int64_t)x;
    return 0;
}

static const char *KINDS[] = {"linreg", "logreg", "svm", "pca", "ppca", "fa", "gmm"};

bool nb__classic_kind(const char *kind) {
    if (!kind) return false;
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (!strcmp(kind, KINDS[i])) return true;
    return false;
}

bool nb_classic_is_model(const nb_safetensors *st) { return st && nb__classic_kind(nb_st_meta(st, "nabla.model")); }

int nb_classic_save(const nb_classic *m, const char *path, const char *const *keys, const char *const *vals, int n) {
    nb__stb b = {0};
    int rc;
    if (!m || !m->kind) return nb_error("classic_save: no model");
    if (!strcmp(m->kind, "linreg") && m->linreg) rc = nb__linreg_save(m->linreg, &b);
    else if (!strcmp(m->kind, "logreg") && m->logreg) rc = nb__logreg_save(m->logreg, &b);
    else if (!strcmp(m->kind, "svm") && m->svm) rc = nb__svm_save(m->svm, &b);
    else if ((!strcmp(m->kind, "pca") || !strcmp(m->kind, "ppca") || !strcmp(m->kind, "fa")) && m->factor)
        rc = nb__factor_save(m->factor, &b);
    else if (!strcmp(m->kind, "gmm") && m->gmm) rc = nb__gmm_save(m->gmm, &b);
    else return nb_error("classic_save: unknown model kind '%s'", m->kind);
    if (rc == 0) {
        nb__stb_meta(&b, "nabla.model", "%s", m->kind);
        for (int i = 0; i < n; i++) nb__stb_meta(&b, keys[i], "%s", vals[i]);
        rc = nb_st_write(path, b.names, b.ts, b.n, (const char *const *)b.keys, (const char *const *)b.vals, b.nm);
    }
    nb__stb_free(&b);
    return rc;
}

int nb_classic_load(const char *path, nb_classic *m) {
    memset(m, 0, sizeof *m);
    nb_safetensors *st = nb_st_read(path);
    if (!st) return -1;
    const char *k = nb_st_meta(st, "nabla.model");
    int rc = 0;
    if (!nb_classic_is_model(st)) {
        rc = nb__st_not_a(st, path, "a model of `nabla fit`");
    } else {
        for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
            if (!strcmp(k, KINDS[i])) m->kind = KINDS[i];
        if (!strcmp(k, "linreg")) rc = (m->linreg = nb__linreg_load(st, path)) ? 0 : -1;
        else if (!strcmp(k, "logreg")) rc = (m->logreg = nb__logreg_load(st, path)) ? 0 : -1;
        else if (!strcmp(k, "svm")) rc = (m->svm = nb__svm_load(st, path)) ? 0 : -1;
        else if (!strcmp(k, "gmm")) rc = (m->gmm = nb__gmm_load(st, path)) ? 0 : -1;
        else {
            nb_factor_kind fk = !strcmp(k, "pca") ? NB_FACTOR_PCA : !strcmp(k, "ppca") ? NB_FACTOR_PPCA : NB_FACTOR_FA;
            rc = (m->factor = nb__factor_load(st, path, fk)) ? 0 : -1;
        }
        if (rc) m->kind = NULL;
    }
    nb_st_free(st);
    return rc;
}

void nb_classic_free(nb_classic *m) {
    if (!m) return;
    nb_linreg_free(m->linreg);
    nb_logreg_free(m->logreg);
    nb_svm_free(m->svm);
    nb_factor_free(m->factor);
    nb_gmm_free(m->gmm);
    memset(m, 0, sizeof *m);
}

int64_t nb_classic_features(const nb_classic *m) {
    if (m->linreg) return m->linreg->d;
    if (m->logreg) return m->logreg->d;
    if (m->svm) return m->svm->d;
    if (m->factor) return m->factor->d;
    if (m->gmm) return m->gmm->d;
    return 0;
}
