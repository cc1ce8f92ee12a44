/* threads.c — one knob for OpenMP kernels and OpenBLAS (the OpenMP flavour of
 * OpenBLAS shares the same thread pool, so the two do not oversubscribe).
 *
 * The count is process-wide, but OpenMP keeps it per thread: libgomp's
 * omp_set_num_threads changes only the calling thread's setting, and a
 * thread the program starts with pthread_create begins with the default
 * (OMP_NUM_THREADS or every core). So nb_set_threads records the count in
 * `want`, and each thread brings its own OpenMP setting up to date the first
 * time it runs an op after a change (nb__threads_check, from the arena's
 * tensor allocation and nb__fork): a relaxed load and a compare per op.
 * OpenBLAS's OpenMP build follows the calling thread's OpenMP setting too,
 * and resizes its global buffers whenever a call comes with another count
 * than the last, so threads that agree also keep it from doing so under
 * another thread's product. */
#include "internal.h"
#include <pthread.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int);

atomic_int nb__threads_want;            /* the process-wide count; 0 before the first use */
_Thread_local int nb__threads_have;     /* what this thread's OpenMP setting holds (0: not set by us) */
static _Thread_local int hold;          /* nb__threads_hold's count for this thread (0: none) */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

/* n <= 0: $NABLA_THREADS if set, else every core. */
static int resolve(int n) {
    if (n <= 0) {
        const char *env = getenv("NABLA_THREADS");
        n = env ? atoi(env) : 0;
    }
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
#else
    n = 1;
#endif
    return n;
}

static void apply(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    nb__threads_have = n;
}

int nb_set_threads(int n) {
    n = resolve(n);
    atomic_store(&nb__threads_want, n);
    openblas_set_num_threads(n);
    apply(hold ? hold : n);
    return n;
}

/* The first use without nb_set_threads: the default, once for the process. */
static void init_default(void) {
    int zero = 0;
    int n = resolve(0);
    if (atomic_compare_exchange_strong(&nb__threads_want, &zero, n)) openblas_set_num_threads(n);
}

int nb__threads_sync(void) {
    int n = atomic_load_explicit(&nb__threads_want, memory_order_relaxed);
    if (!n) {
        pthread_once(&env_once, init_default);
        n = atomic_load(&nb__threads_want);
    }
    int mine = hold ? hold : n;
    if (mine != nb__threads_have) apply(mine);
    return mine;
}

int nb_get_threads(void) { return nb__threads_sync(); }

int nb__threads_hold(int n) {
    int old = hold;
    hold = n;
    nb__threads_sync();
    return old;
}
