/* dialogue_build.h — what the files of the default dialogue corpus share
 * besides dialogue_src.h (the builder in dialogue_build.c, the parsers in
 * dialogue_*.c, the pairs and CSV files in dialogue_pairs.c); internal to
 * them, tests and the command never see it. */
#ifndef NB_DIALOGUE_BUILD_H
#define NB_DIALOGUE_BUILD_H

#include "io.h" /* the library's internals and the allocation seam */
#include "dialogue_src.h"

/* Appends the NUL-terminated s. */
void nb__sbuf_puts(nb__sbuf *b, const char *s);
/* Grows *pp (elements of size sz, capacity *cap) to hold n + 1; false when
 * out of memory (*pp then unchanged). */
bool nb__dlg_grow(void *pp, int64_t n, int64_t *cap, size_t sz);

/* What a parser added, to take back when the file turns out malformed:
 * each parser takes a mark first and returns through nb__dlg_finish. */
typedef struct {
    int64_t nturns, nconvs, ngroups;
} nb__dlg_mark;
nb__dlg_mark nb__dlg_mark_of(const nb__dlg *d);
/* Closes the file's last conversation; on failure (rc != 0 or out of
 * memory) removes everything added since m. Returns 0 or -1. */
int nb__dlg_finish(nb__dlg *d, nb__dlg_mark m, int rc, const char *name);
/* Line number of position p in buf, for messages. */
int nb__dlg_line_at(const char *buf, const char *p);

#endif
