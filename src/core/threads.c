/* threads.c — one knob for OpenMP kernels and OpenBLAS (the OpenMP flavour of
 * OpenBLAS shares the same thread pool, so the two do not oversubscribe). */
#include "internal.h"
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int);

static int nthreads = 0;

int nb_set_threads(int n) {
    if (n <= 0) {
        const char *env = getenv("NABLA_THREADS");
        n = env ? atoi(env) : 0;
    }
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    n = 1;
#endif
    openblas_set_num_threads(n);
    nthreads = n;
    return n;
}

int nb_get_threads(void) {
    if (!nthreads) nb_set_threads(0);
    return nthreads;
}
