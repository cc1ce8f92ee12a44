/* gcov_flush.c — linked into the coverage build only (tests/coverage.sh):
 * writes the coverage counters when the process aborts. nb_fatal ends in
 * abort(), which skips the atexit handler that normally writes them, so
 * without this every line that leads to a fatal error (the children of
 * nb_test_expect_fatal) would count as never executed. */
#include <signal.h>

void __gcov_dump(void); /* libgcov, linked by --coverage */

static void dump_on_abort(int sig) {
    (void)sig;
    __gcov_dump(); /* then abort() restores the default action and raises again */
}

__attribute__((constructor)) static void install(void) { signal(SIGABRT, dump_on_abort); }
