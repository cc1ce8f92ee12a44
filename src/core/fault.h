/* fault.h — the fault-injection seam: the library's file and memory calls go
 * through these wrappers so that tests can make the K-th one fail (SQLite's
 * and Lua's way of testing every error path as an ordinary test).
 *
 * Unarmed (the normal state) each wrapper is the plain call after one relaxed
 * atomic load. The seam is armed by nb__fault_set() from a unit test, or from
 * the environment variable NABLA_FAULT, read once at the first wrapped call,
 * so that tests can inject faults into the real `nabla` command. It is always
 * compiled in; NABLA_FAULT is a test seam, not a user setting.
 *
 * A spec is a comma-separated list of OP:K[:WHAT]:
 *   OP   open write fsync close rename (the atomic writer's system calls, and
 *        open/read of nb_read_file) or alloc (nb__malloc/calloc/realloc/
 *        aligned_alloc: the allocations of the readers in src/io, of
 *        tensor storage, and through nb__xmalloc and kin below those of the
 *        library and the command that end in nb_oom);
 *   K    the K-th call of OP (1-based) counted from when the spec was set
 *        fails; "K+" fails the K-th and every later call (a full disk);
 *   WHAT an errno name (ENOSPC EIO EDQUOT EACCES EROFS EINTR EMFILE ENOMEM ...)
 *        or "short" (write only: the call writes about half of what it was
 *        asked for and succeeds, as a signal or a full pipe can make it do).
 *        Default: ENOSPC for write, EIO for the other calls, ENOMEM for alloc.
 * e.g. NABLA_FAULT=write:3:ENOSPC   NABLA_FAULT=alloc:10+   NABLA_FAULT=rename:1:EIO
 * "" arms the seam with no fault: calls are only counted (nb__fault_count).
 * A program run with NABLA_FAULT set prints at exit, on stderr, a line
 * "nabla: NABLA_FAULT: N injected; calls: open A write B ..." (tests/faults.sh
 * reads the counts from it). */
#ifndef NB_FAULT_H
#define NB_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum {
    NB_FAULT_OPEN, NB_FAULT_WRITE, NB_FAULT_FSYNC, NB_FAULT_CLOSE, NB_FAULT_RENAME, NB_FAULT_READ,
    NB_FAULT_ALLOC, NB_FAULT_NOPS
} nb__fault_op;

/* Arms the seam with spec (above) and restarts every call counter; NULL
 * disarms it (calls are neither counted nor failed). Returns 0, or -1 with an
 * error naming the bad part of spec. Not thread-safe against calls running
 * at the same time: set it between operations. */
int nb__fault_set(const char *spec);
/* Calls of op since the last nb__fault_set (0 while disarmed). */
long nb__fault_count(nb__fault_op op);
/* Faults injected since the last nb__fault_set. */
long nb__fault_injected(void);
/* The largest single allocation requested through the wrappers below since
 * the last nb__fault_set (0 while disarmed): lets a test check that a reader
 * sizes its buffers by what a file holds, not by what its header claims. */
size_t nb__fault_largest_alloc(void);

int nb__open(const char *path, int flags, mode_t mode);
ssize_t nb__read(int fd, void *buf, size_t n);
ssize_t nb__write(int fd, const void *buf, size_t n);
int nb__fsync(int fd);
int nb__close(int fd);
int nb__rename(const char *from, const char *to);

/* malloc, calloc, realloc and aligned_alloc with an injectable failure: NULL
 * with errno ENOMEM. Callers must handle NULL as they would from libc. */
void *nb__malloc(size_t n);
void *nb__calloc(size_t n, size_t size);
void *nb__realloc(void *p, size_t n);
void *nb__aligned_alloc(size_t align, size_t n);
/* strndup through nb__malloc: the first n bytes of s (no NUL needed among
 * them) and a NUL; NULL when the allocation fails. */
char *nb__strndup(const char *s, size_t n);
/* The same for an allocation with no way back: count elements of size bytes
 * (count * size refused, not wrapped, where it overflows size_t; 0 asks for
 * one element so that NULL always means failure), and on failure nb_oom
 * naming `what` and the size, which ends the program with "nabla: out of
 * memory: ..." and status 1. Through the seam, so that tests reach that exit.
 * nb__xrealloc keeps p on failure only in that the program ends. */
void *nb__xmalloc(const char *what, size_t count, size_t size);
void *nb__xcalloc(const char *what, size_t count, size_t size);
void *nb__xrealloc(const char *what, void *p, size_t count, size_t size);
char *nb__xstrdup(const char *what, const char *s);
/* Whether one of cJSON's allocations failed (under injected faults) since the
 * last call; clears the flag. cJSON reports such a failure as a parse error,
 * which a reader must not pass on as "not valid JSON". */
bool nb__cjson_out_of_memory(void);

#endif
