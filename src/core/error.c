/* error.c — the recoverable-error message (SQLite's errmsg model) and fatal
 * errors for programmer mistakes. */
#include "internal.h"
#include <stdarg.h>
#include <stdlib.h>

static _Thread_local char errbuf[1024];

const char *nb_errmsg(void) { return errbuf; }
void nb_clear_error(void) { errbuf[0] = 0; }

int nb_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
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
