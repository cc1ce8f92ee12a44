/* test.h — a small test framework: TEST(name) registers a test by itself
 * (no central list to edit), CHECK* record failures and go on, and the
 * runner prints one line per test and "N passed, N failed" at the end.
 * Gradient and Hessian checks against central finite differences live here
 * too, shared by every op test. */
#ifndef NB_TEST_H
#define NB_TEST_H

#include "nabla.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef void (*nb_test_fn)(void);
void nb_test_register(const char *name, nb_test_fn fn);
void nb_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
extern int nb_test_failures; /* failures in the running test */

#define TEST(name)                                                                   \
    static void name(void);                                                          \
    __attribute__((constructor)) static void reg_##name(void) { nb_test_register(#name, name); } \
    static void name(void)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) nb_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);           \
    } while (0)
#define CHECK_MSG(cond, ...)                                                         \
    do {                                                                             \
        if (!(cond)) nb_test_fail(__FILE__, __LINE__, __VA_ARGS__);                  \
    } while (0)
/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                        \
    do {                                                                             \
        double a_ = (a), b_ = (b), t_ = (tol);                                       \
        if (!(fabs(a_ - b_) <= t_ * fmax(1.0, fabs(b_))))                            \
            nb_test_fail(__FILE__, __LINE__, "%s = %.8g, expected %s = %.8g (tol %g)", #a, a_, #b, b_, t_); \
    } while (0)

/* Runs fn(ctx) in a child process and checks that it aborts (a programmer
 * error caught by nb_fatal) with a message on stderr containing every string
 * of the NULL-terminated list `needles`. */
void nb_test_expect_fatal(const char *what, void (*fn)(void *), void *ctx, const char *const *needles);
/* Like nb_test_expect_fatal, for code that must exit with status `code` instead. */
void nb_test_expect_exit(const char *what, void (*fn)(void *), void *ctx, int code, const char *const *needles);

/* Largest |a_i - b_i| / max(1, |b_i|). */
double nb_test_maxrel(const float *a, const float *b, int64_t n);

/* A function of some tensors, for the checks below. ctx is passed through. */
typedef nb_tensor *(*nb_test_f)(nb_tensor **in, void *ctx);

/* Gradient check: L = sum(f(in) * R) for a fixed random R. Compares the
 * autodiff gradient w.r.t. every input that requires a gradient with central
 * differences (at most 96 sampled coordinates per input). Inputs must be
 * persistent tensors. Returns the worst relative error (and records a failure
 * above tol). */
double nb_gradcheck(const char *what, nb_test_f f, nb_tensor **in, int n, void *ctx, float eps, float tol);
/* Hessian-vector check: nb_hvp on L against central differences of the
 * autodiff gradient along a random direction. */
double nb_hvpcheck(const char *what, nb_test_f f, nb_tensor **in, int n, void *ctx, float eps, float tol);

/* A persistent tensor of normal(0, std) values with the given shape,
 * requiring a gradient; seeded from the test rng. */
nb_tensor *nb_test_param(int ndim, const int64_t *shape, float std);
/* A small CNN as a NET.cfg: conv2d (ReLU), max pooling, flatten,
 * dense (tanh), dense; input 2x8x8, 3 outputs. */
extern const char *const nb_test_small_cnn;
nb_rng *nb_test_rng(void);

/* The GPU checks. nb_test_gpu: whether a GPU (or the emulator of make
 * cuda-emu) answers; if not, the running test is skipped (nb_test_skip)
 * saying why. nb_test_gpu_parity runs f on copies of in on the CPU and
 * on the GPU (the GPU's step arena poisoned with NaN first) and compares the
 * outputs and the gradients of sum(f * R) for every input that requires one
 * (relative error as nb_test_maxrel, at most tol); at most 8 inputs.
 * Returns the worst difference. nb_test_to_host: a persistent host copy. */
bool nb_test_gpu(void);
/* Marks the running test as skipped (reported as "skip", counted apart). */
void nb_test_skip(const char *why);
double nb_test_gpu_parity(const char *what, nb_test_f f, nb_tensor **in, int n, void *ctx, double tol);
nb_tensor *nb_test_to_host(const nb_tensor *t);
/* Frees n persistent tensors; moves n of them to device d (returns in). */
void nb_test_free_all(nb_tensor **t, int n);
nb_tensor **nb_test_moved(nb_tensor **in, int n, nb_device d);
/* Reproducibility: two runs' host results a[k] and b[k] (k < n) must hold
 * the same bits; frees all of them. */
void nb_test_same_runs(const char *what, nb_tensor **a, nb_tensor **b, int n);

/* Damaged model files: nb_test_st_rewrite reads the safetensors file src,
 * lets edit change what it holds (pointers into the file read, which stays
 * alive until the copy dst is written: replace them, shape a tensor anew
 * with the same size, write into its data, drop entries) and writes dst.
 * 0, or -1 with nb_errmsg(). */
#define NB_TEST_ST_MAX 64
typedef struct nb_test_st {
    const char *names[NB_TEST_ST_MAX];
    nb_tensor *t[NB_TEST_ST_MAX];
    int n;
    const char *keys[NB_TEST_ST_MAX], *vals[NB_TEST_ST_MAX];
    int nmeta;
} nb_test_st;
int nb_test_st_rewrite(const char *src, const char *dst, void (*edit)(nb_test_st *, void *), void *ctx);
int nb_test_st_find(const nb_test_st *f, const char *name); /* index, or -1 */
/* Sets metadata key to val (added if absent; val NULL removes it). */
void nb_test_st_set_meta(nb_test_st *f, const char *key, const char *val);

#endif
