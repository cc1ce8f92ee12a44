/* error.c — the recoverable-error message (SQLite's errmsg model) and fatal
 * errors for programmer mistakes. */
#include "internal.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char errbuf[1024];

const char *nb_errmsg(void) { return errbuf; }
void nb_clear_error(void) { errbuf[0] = 0; }

int nb_error(const char *fmt, ...) {
    /* Formatted aside first: callers prefix the message already there
     * (nb_error("%s: %s", path, nb_errmsg())), and vsnprintf from a buffer
     * into itself is undefined (it printed the prefix twice and lost the rest). */
    char msg[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(errbuf, msg, sizeof errbuf);
    return -1;
}

_Noreturn void nb_fatal(const char *op, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "nabla: %s: ", op);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* --- out of memory ------------------------------------------------------ */

static void default_oom(const char *op, size_t bytes) {
    double mib = (double)bytes / (1 << 20);
    fflush(stdout);
    if (bytes == 0) /* a small allocation whose size the caller did not give */
        fprintf(stderr, "nabla: out of memory for %s\n", op);
    else if (mib >= 1024)
        fprintf(stderr, "nabla: out of memory: %s needs %.1f GiB; try a smaller --batch or model\n", op, mib / 1024);
    else
        fprintf(stderr, "nabla: out of memory: %s needs %.1f MiB; try a smaller --batch or model\n", op, mib);
    exit(1);
}

static nb_oom_handler oom_handler = default_oom;

nb_oom_handler nb_set_oom_handler(nb_oom_handler handler) {
    nb_oom_handler old = oom_handler;
    oom_handler = handler ? handler : default_oom;
    return old;
}

_Noreturn void nb_oom(const char *op, size_t bytes) {
    oom_handler(op, bytes);
    fprintf(stderr, "nabla: %s: the out-of-memory handler returned\n", op);
    abort();
}
