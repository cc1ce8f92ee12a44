/* classic.h — what the classical models of src/models share and users never
 * see: input checks, double copies of data, class lists, and the builders
 * that turn a model into safetensors entries and back. */
#ifndef NB_MODELS_CLASSIC_H
#define NB_MODELS_CLASSIC_H

#include "../core/internal.h"

/* Checks that X is a finite, non-empty 2-D tensor; fills n and d. fn names
 * the caller in the message. 0 or -1. */
int nb__ml_check_X(const char *fn, const nb_tensor *X, int64_t *n, int64_t *d);
/* Checks that y has n finite entries. 0 or -1. */
int nb__ml_check_y(const char *fn, const float *y, int64_t n);
/* A fitted model's input: X [n, d] in host memory, else a fatal error
 * naming fn (a programmer's error, as a wrong shape is). */
void nb__ml_predict_X(const char *fn, const nb_tensor *X, int64_t d);
/* The distinct values of y, ascending (malloc'd), and each row's index into
 * them (idx may be NULL). Returns the count. */
int nb__ml_classes(const float *y, int64_t n, double **classes, int32_t *idx);
/* A malloc'd double copy of X's data. */
double *nb__ml_double(const nb_tensor *X);
/* count x size bytes (zeroed with zero) that the fit cannot go on without:
 * the matrices sized by the data (d x d covariances, n x k responsibilities),
 * which a wide data set can make larger than memory. Running out ends the
 * program through nb_oom, naming `what` and the size, not a NULL dereference. */
void *nb__ml_alloc(const char *what, int64_t count, size_t size, bool zero);
/* Small dense LAPACK work (matrices of a few hundred rows) runs on one
 * thread: there OpenMP's fork/join costs more than the work, and on a busy
 * machine each of LAPACK's many small BLAS calls can wait a whole time slice
 * at a barrier for a descheduled thread. Only the calling thread goes
 * serial; begin returns what end restores. */
int nb__ml_serial_begin(int64_t d);
void nb__ml_serial_end(int old);
/* Mean of each column of x [n, d] (double) into mu [d]. */
void nb__ml_colmean(const double *x, int64_t n, int64_t d, double *mu);

/* Safetensors entries under construction: tensors are converted from double
 * and owned by the builder, metadata strings are copied. */
#define NB__STB_MAX 24
typedef struct nb__stb {
    const char *names[NB__STB_MAX];
    nb_tensor *ts[NB__STB_MAX];
    int n;
    char *keys[NB__STB_MAX * 2], *vals[NB__STB_MAX * 2];
    int nm;
} nb__stb;
void nb__stb_doubles(nb__stb *b, const char *name, const double *src, int ndim, const int64_t *shape);
void nb__stb_floats(nb__stb *b, const char *name, const float *src, int ndim, const int64_t *shape);
void nb__stb_meta(nb__stb *b, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void nb__stb_free(nb__stb *b);

/* Reading back: the tensor `name` of exactly the given shape as malloc'd
 * doubles (or floats), or NULL with an error naming path and the tensor. */
double *nb__st_doubles(const nb_safetensors *st, const char *path, const char *name, int ndim, const int64_t *shape);
float *nb__st_floats(const nb_safetensors *st, const char *path, const char *name, int ndim, const int64_t *shape);
/* A numeric metadata value, finite and in [lo, hi]; 0 or -1 with an error
 * naming path and key. */
int nb__st_num(const nb_safetensors *st, const char *path, const char *key, double lo, double hi, double *v);
/* The same for a count: a whole number in [lo, hi] (|hi| < 2^53). */
int nb__st_count(const nb_safetensors *st, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *v);

/* Each model's half of the model file. */
int nb__linreg_save(const nb_linreg *m, nb__stb *b);
nb_linreg *nb__linreg_load(const nb_safetensors *st, const char *path);
int nb__logreg_save(const nb_logreg *m, nb__stb *b);
nb_logreg *nb__logreg_load(const nb_safetensors *st, const char *path);
int nb__svm_save(const nb_svm *m, nb__stb *b);
nb_svm *nb__svm_load(const nb_safetensors *st, const char *path);
int nb__factor_save(const nb_factor *m, nb__stb *b);
nb_factor *nb__factor_load(const nb_safetensors *st, const char *path, nb_factor_kind kind);
int nb__gmm_save(const nb_gmm *m, nb__stb *b);
nb_gmm *nb__gmm_load(const nb_safetensors *st, const char *path);

#endif
