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

/* What the default message ends with: none in the library (it has no flags
 * to name); the command sets the one that fits it (nb_set_oom_hint). */
static const char *oom_hint;

const char *nb_set_oom_hint(const char *hint) {
    const char *old = oom_hint;
    oom_hint = hint;
    return old;
}

static void default_oom(const char *op, size_t bytes) {
    double mib = (double)bytes / (1 << 20);
    const char *sep = oom_hint ? "; " : "", *hint = oom_hint ? oom_hint : "";
    fflush(stdout);
    if (bytes == 0) /* a small allocation whose size the caller did not give */
        fprintf(stderr, "nabla: out of memory for %s%s%s\n", op, sep, hint);
    else if (mib >= 1024)
        fprintf(stderr, "nabla: out of memory: %s needs %.1f GiB%s%s\n", op, mib / 1024, sep, hint);
    else if (mib >= 1)
        fprintf(stderr, "nabla: out of memory: %s needs %.1f MiB%s%s\n", op, mib, sep, hint);
    else /* "0.0 MiB" would read as nothing at all */
        fprintf(stderr, "nabla: out of memory: %s needs %zu bytes%s%s\n", op, bytes, sep, hint);
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
