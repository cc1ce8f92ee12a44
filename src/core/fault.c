/* fault.c — the fault-injection seam of fault.h: counted wrappers around the
 * file system calls and allocations that can fail at a chosen call. */
#include "fault.h"
#include "internal.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const op_names[NB_FAULT_NOPS] = {"open", "write", "fsync", "close", "rename", "read", "alloc"};

typedef struct {
    long k;     /* the call that fails, 1-based; 0: none */
    bool from;  /* "K+": every call from the K-th on */
    int err;    /* errno to fail with; 0 for a short write */
} fault;

/* Readers load `armed` first (acquire) and see the faults and counters that
 * nb__fault_set stored before it released it. */
static atomic_bool armed;
static fault faults[NB_FAULT_NOPS];
static atomic_long calls[NB_FAULT_NOPS];
static atomic_long injected;
static atomic_size_t largest_alloc;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static const struct { const char *name; int err; } errnos[] = {
    {"ENOSPC", ENOSPC}, {"EIO", EIO}, {"EDQUOT", EDQUOT}, {"EACCES", EACCES}, {"EROFS", EROFS},
    {"EINTR", EINTR},   {"EMFILE", EMFILE}, {"ENFILE", ENFILE}, {"ENOMEM", ENOMEM}, {"EFBIG", EFBIG},
    {"EPERM", EPERM},   {"ENOENT", ENOENT}, {"EAGAIN", EAGAIN}, {"EBADF", EBADF},  {"EXDEV", EXDEV},
};

static int parse_spec(const char *spec, fault *out) {
    memset(out, 0, sizeof(fault) * NB_FAULT_NOPS);
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item) return nb_error("NABLA_FAULT: bad item '%.*s'", (int)len, p);
        memcpy(item, p, len);
        item[len] = 0;
        char *name = item, *ks = strchr(item, ':'), *what = NULL;
        if (!ks) return nb_error("NABLA_FAULT: '%s': expected OP:K[:ERRNO|short]", item);
        *ks++ = 0;
        if ((what = strchr(ks, ':'))) *what++ = 0;
        int op = -1;
        for (int i = 0; i < NB_FAULT_NOPS; i++)
            if (!strcmp(name, op_names[i])) op = i;
        if (op < 0)
            return nb_error("NABLA_FAULT: unknown call '%s' (expected open, write, fsync, close, rename, read or alloc)",
                            name);
        char *e;
        errno = 0;
        long k = strtol(ks, &e, 10);
        fault f = {k, false, op == NB_FAULT_ALLOC ? ENOMEM : op == NB_FAULT_WRITE ? ENOSPC : EIO};
        if (*e == '+') f.from = true, e++;
        if (e == ks || *e || k < 1 || errno)
            return nb_error("NABLA_FAULT: '%s': the call number must be a positive integer, got '%s'", name, ks);
        if (what && !strcmp(what, "short")) {
            if (op != NB_FAULT_WRITE) return nb_error("NABLA_FAULT: only write can be short, not %s", name);
            f.err = 0;
        } else if (what) {
            f.err = -1;
            for (size_t i = 0; i < sizeof errnos / sizeof *errnos; i++)
                if (!strcmp(what, errnos[i].name)) f.err = errnos[i].err;
            if (f.err < 0) return nb_error("NABLA_FAULT: unknown errno name '%s'", what);
        }
        out[op] = f;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

/* cJSON allocates on its own (parsing a model file's metadata, building the
 * JSON a checkpoint stores): under injected faults its allocations count as
 * "alloc" calls too, so that the matrices reach its failures. The hooks are
 * process-wide, which is why they are installed only once faults are armed
 * (a test), never in a normal run. */
static _Thread_local bool cjson_failed;
static void *cjson_malloc(size_t n) {
    void *p = nb__malloc(n);
    if (!p) cjson_failed = true;
    return p;
}
static void hook_cjson(void) { cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = cjson_malloc, .free_fn = free}); }

bool nb__cjson_out_of_memory(void) {
    bool failed = cjson_failed;
    cjson_failed = false;
    return failed;
}

static void arm(const fault *f) {
    static pthread_once_t hooked = PTHREAD_ONCE_INIT;
    pthread_once(&hooked, hook_cjson);
    atomic_store(&armed, false);
    memcpy(faults, f, sizeof faults);
    for (int i = 0; i < NB_FAULT_NOPS; i++) atomic_store(&calls[i], 0);
    atomic_store(&injected, 0);
    atomic_store(&largest_alloc, 0);
}

/* At exit of a program run with NABLA_FAULT: what the seam saw, so that a
 * script learns how many calls of each kind a command makes (the K to loop
 * over) and whether its fault was reached at all. */
static void report(void) {
    fprintf(stderr, "nabla: NABLA_FAULT: %ld injected; calls:", atomic_load(&injected));
    for (int i = 0; i < NB_FAULT_NOPS; i++) fprintf(stderr, " %s %ld", op_names[i], atomic_load(&calls[i]));
    fputc('\n', stderr);
}

/* NABLA_FAULT applies from the first wrapped call; a malformed value is a
 * mistake in a test script, so it stops the program rather than run the test
 * without the fault it asked for. */
static void read_env(void) {
    const char *spec = getenv("NABLA_FAULT");
    if (!spec) return;
    fault f[NB_FAULT_NOPS];
    if (parse_spec(spec, f) != 0) nb_fatal("fault", "%s", nb_errmsg());
    arm(f);
    atomic_store_explicit(&armed, true, memory_order_release);
    atexit(report);
}

int nb__fault_set(const char *spec) {
    pthread_once(&env_once, read_env); /* so that NABLA_FAULT cannot override it later */
    fault f[NB_FAULT_NOPS];
    if (spec && parse_spec(spec, f) != 0) return -1;
    arm(spec ? f : (fault[NB_FAULT_NOPS]){{0}});
    if (spec) atomic_store_explicit(&armed, true, memory_order_release);
    return 0;
}

long nb__fault_count(nb__fault_op op) { return atomic_load(&calls[op]); }
long nb__fault_injected(void) { return atomic_load(&injected); }
size_t nb__fault_largest_alloc(void) { return atomic_load(&largest_alloc); }


/* Counts a call of op; returns the errno it must fail with, 0 to go ahead,
 * or -1 for a short write. */
static int hit(nb__fault_op op) {
    pthread_once(&env_once, read_env);
    if (!atomic_load_explicit(&armed, memory_order_acquire)) return 0;
    long n = atomic_fetch_add(&calls[op], 1) + 1;
    const fault *f = &faults[op];
    if (f->k == 0 || n < f->k || (n > f->k && !f->from)) return 0;
    atomic_fetch_add(&injected, 1);
    return f->err ? f->err : -1;
}

int nb__open(const char *path, int flags, mode_t mode) {
    int e = hit(NB_FAULT_OPEN);
    if (e > 0) return errno = e, -1;
    return open(path, flags, mode);
}

ssize_t nb__read(int fd, void *buf, size_t n) {
    int e = hit(NB_FAULT_READ);
    if (e > 0) return errno = e, -1;
    return read(fd, buf, n);
}

ssize_t nb__write(int fd, const void *buf, size_t n) {
    int e = hit(NB_FAULT_WRITE);
    if (e > 0) return errno = e, -1;
    if (e < 0 && n > 1) n /= 2;
    return write(fd, buf, n);
}

int nb__fsync(int fd) {
    int e = hit(NB_FAULT_FSYNC);
    if (e > 0) return errno = e, -1;
    return fsync(fd);
}

/* A failed close still releases the descriptor (as Linux's close does after
 * EIO), so that an injected fault leaks nothing. */
int nb__close(int fd) {
    int e = hit(NB_FAULT_CLOSE);
    if (e > 0) {
        close(fd);
        return errno = e, -1;
    }
    return close(fd);
}

int nb__rename(const char *from, const char *to) {
    int e = hit(NB_FAULT_RENAME);
    if (e > 0) return errno = e, -1;
    return rename(from, to);
}

/* Counts an allocation of n bytes (keeping the largest request while armed);
 * returns what hit() returns. */
static int hit_alloc(size_t n) {
    int e = hit(NB_FAULT_ALLOC);
    if (atomic_load_explicit(&armed, memory_order_acquire)) {
        size_t was = atomic_load(&largest_alloc);
        while (n > was && !atomic_compare_exchange_weak(&largest_alloc, &was, n)) {}
    }
    return e;
}

void *nb__malloc(size_t n) {
    int e = hit_alloc(n);
    if (e > 0) return errno = e, NULL;
    return malloc(n);
}

void *nb__calloc(size_t n, size_t size) {
    int e = hit_alloc(size && n > SIZE_MAX / size ? SIZE_MAX : n * size);
    if (e > 0) return errno = e, NULL;
    return calloc(n, size);
}

void *nb__realloc(void *p, size_t n) {
    int e = hit_alloc(n);
    if (e > 0) return errno = e, NULL;
    return realloc(p, n);
}

void *nb__aligned_alloc(size_t align, size_t n) {
    int e = hit_alloc(n);
    if (e > 0) return errno = e, NULL;
    return aligned_alloc(align, n);
}

char *nb__strndup(const char *s, size_t n) {
    char *d = nb__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* count * size, or SIZE_MAX (which no allocator grants) where it overflows;
 * 0 elements ask for one. */
static size_t xbytes(size_t count, size_t size) {
    if (count == 0) count = 1;
    return size && count > SIZE_MAX / size ? SIZE_MAX : count * size;
}

void *nb__xmalloc(const char *what, size_t count, size_t size) {
    size_t n = xbytes(count, size);
    void *p = n == SIZE_MAX ? NULL : nb__malloc(n);
    if (!p) nb_oom(what, n);
    return p;
}

void *nb__xcalloc(const char *what, size_t count, size_t size) {
    void *p = nb__calloc(count ? count : 1, size ? size : 1);
    if (!p) nb_oom(what, xbytes(count, size));
    return p;
}

void *nb__xrealloc(const char *what, void *p, size_t count, size_t size) {
    size_t n = xbytes(count, size);
    void *q = n == SIZE_MAX ? NULL : nb__realloc(p, n);
    if (!q) nb_oom(what, n);
    return q;
}

char *nb__xstrdup(const char *what, const char *s) {
    char *d = nb__strndup(s, strlen(s));
    if (!d) nb_oom(what, strlen(s) + 1);
    return d;
}
