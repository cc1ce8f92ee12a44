/* dense.h — double-precision working copies of float32 tensors, shared by the
 * LAPACK-backed files of src/linalg (input checks, conversion, results). */
#ifndef NB_LINALG_DENSE_H
#define NB_LINALG_DENSE_H

#include "../core/internal.h"
#include <lapacke.h>

/* Checks that t is non-NULL and holds only finite numbers; fn and what name
 * the caller and the argument in the message. Returns 0 or -1. */
int nb__la_finite(const char *fn, const char *what, const nb_tensor *t);
/* A malloc'd row-major double copy of a non-empty, finite 2-D tensor, or
 * NULL with nb_errmsg() set. *m, *n receive its shape. Sizes must fit
 * LAPACK's 32-bit integers. */
double *nb__la_matrix(const char *fn, const char *what, const nb_tensor *A, int *m, int *n);
/* Like nb__la_matrix, and also requires a square matrix. */
double *nb__la_square(const char *fn, const char *what, const nb_tensor *A, int *n);
/* Whether the square a [n, n] is symmetric to 1e-5 of its largest entry. */
bool nb__la_is_sym(const double *a, int n);
/* Requires a symmetric a [n, n] (error otherwise) and replaces it by
 * (a + a^T)/2, so LAPACK sees exactly symmetric data. */
int nb__la_symmetrize(const char *fn, const char *what, double *a, int n);
/* A persistent float32 tensor of the given shape from double data. */
nb_tensor *nb__la_tensor(int ndim, const int64_t *shape, const double *src);
/* Reports a LAPACK failure (info != 0) for fn and returns -1. */
int nb__la_info(const char *fn, const char *routine, lapack_int info);
/* log det of a symmetric positive definite a [n, n], which is overwritten by
 * its Cholesky factor (lower, row-major). -1 with a message if not PD. */
/* Definiteness from eigenvalues w [n]: |w_i| <= tol * max|w| counts as 0. */
nb_definiteness nb__la_classify(const double *w, int n, double tol);
int nb__la_chol_logdet(const char *fn, const char *what, double *a, int n, double *logdet);

#endif
