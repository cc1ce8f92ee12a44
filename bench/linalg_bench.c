/* linalg_bench.c — times nabla's LAPACK-backed factorizations on the .npy
 * inputs that bench/linalg_numpy.py writes, and saves every result as .npy
 * for it to compare with NumPy's.
 *
 * Usage: linalg_bench DIR [REPS]
 * Reads DIR/sym.npy [n, n] (symmetric), DIR/gen.npy [n, n], DIR/rect.npy
 * [m, p], DIR/rhs.npy [n, k] and DIR/rhs_rect.npy [m, k]. Writes
 * DIR/nabla.<result>.npy and prints one line per operation:
 * "<op> <best seconds over REPS runs>". */
#include "nabla.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *dir;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static nb_tensor *load(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    nb_tensor *t = nb_npy_read(path);
    if (!t) {
        fprintf(stderr, "linalg_bench: %s\n", nb_errmsg());
        exit(1);
    }
    return t;
}

/* Saves t as DIR/nabla.<name>.npy and frees it. */
static void save(const char *name, nb_tensor *t) {
    char path[4096];
    snprintf(path, sizeof path, "%s/nabla.%s.npy", dir, name);
    if (!t || nb_npy_write(path, t)) {
        fprintf(stderr, "linalg_bench: %s: %s\n", name, nb_errmsg());
        exit(1);
    }
    nb_tensor_free(t);
}

static nb_tensor *scalars(int n, const double *v) {
    nb_tensor *t = nb_tensor_new(1, (int64_t[]){n});
    for (int i = 0; i < n; i++) t->data[i] = (float)v[i];
    return t;
}

static void fail(const char *op) {
    fprintf(stderr, "linalg_bench: %s: %s\n", op, nb_errmsg());
    exit(1);
}

/* Runs body REPS times; keeps the best time; the last run's results stay. */
#define TIME(op, reps, ...)                                                  \
    do {                                                                      \
        double best_ = 1e30;                                                  \
        for (int r_ = 0; r_ < (reps); r_++) {                                 \
            double t0_ = now();                                               \
            __VA_ARGS__;                                                      \
            double dt_ = now() - t0_;                                         \
            if (dt_ < best_) best_ = dt_;                                     \
        }                                                                     \
        printf("%s %.6f\n", op, best_);                                       \
        fflush(stdout);                                                       \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: linalg_bench DIR [REPS]\n");
        return 2;
    }
    dir = argv[1];
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1) reps = 1;
    nb_set_threads(0);
    nb_tensor *sym = load("sym"), *gen = load("gen"), *rect = load("rect"), *rhs = load("rhs");
    nb_tensor *rhs_rect = load("rhs_rect");
    nb_tensor *w = NULL, *Q = NULL, *U = NULL, *s = NULL, *Vt = NULL, *x = NULL;

    TIME("eigh", reps, {
        nb_tensor_free(w);
        nb_tensor_free(Q);
        if (nb_linalg_eigh(sym, &w, &Q)) fail("eigh");
    });
    save("eigh.w", w);
    save("eigh.Q", Q);
    w = Q = NULL;

    TIME("eigvals", reps, {
        nb_tensor_free(w);
        if (nb_linalg_eig(gen, &w)) fail("eig");
    });
    save("eig.w", w);
    w = NULL;

    TIME("svd", reps, {
        nb_tensor_free(U);
        nb_tensor_free(s);
        nb_tensor_free(Vt);
        if (nb_linalg_svd(rect, false, &U, &s, &Vt)) fail("svd");
    });
    save("svd.U", U);
    save("svd.s", s);
    save("svd.Vt", Vt);
    U = s = Vt = NULL;

    TIME("pinv", reps, {
        nb_tensor_free(x);
        if (!(x = nb_linalg_pinv(rect, 0))) fail("pinv");
    });
    save("pinv", x);
    x = NULL;

    double sd[2];
    TIME("slogdet", reps, {
        if (nb_linalg_slogdet(gen, &sd[0], &sd[1])) fail("slogdet");
    });
    save("slogdet", scalars(2, sd));

    double c[2];
    TIME("cond", reps, {
        if (nb_linalg_cond(gen, &c[0])) fail("cond");
    });
    if (nb_linalg_cond(sym, &c[1])) fail("cond");
    save("cond", scalars(2, c));

    double nrm[4];
    TIME("norm2", reps, {
        if (nb_linalg_norm(gen, NB_NORM_L2, &nrm[1])) fail("norm");
    });
    if (nb_linalg_norm(gen, NB_NORM_L1, &nrm[0]) || nb_linalg_norm(gen, NB_NORM_INF, &nrm[2]) ||
        nb_linalg_norm(gen, NB_NORM_FRO, &nrm[3]))
        fail("norm");
    save("norms", scalars(4, nrm));

    TIME("solve", reps, {
        nb_tensor_free(x);
        if (!(x = nb_linalg_solve(gen, rhs))) fail("solve");
    });
    save("solve", x);
    x = NULL;

    TIME("lstsq", reps, {
        nb_tensor_free(x);
        if (!(x = nb_linalg_lstsq(rect, rhs_rect, 0, NULL))) fail("lstsq");
    });
    save("lstsq", x);
    x = NULL;

    TIME("inv", reps, {
        nb_tensor_free(x);
        if (!(x = nb_linalg_inv(gen))) fail("inv");
    });
    save("inv", x);
    x = NULL;

    TIME("cov", reps, {
        nb_tensor_free(x);
        if (!(x = nb_stats_cov(rect, 1))) fail("cov");
    });
    save("cov", x);
    x = NULL;

    nb_tensor_free(sym);
    nb_tensor_free(gen);
    nb_tensor_free(rect);
    nb_tensor_free(rhs);
    nb_tensor_free(rhs_rect);
    return 0;
}
