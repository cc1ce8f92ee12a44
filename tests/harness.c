/* harness.c — the test runner and the finite-difference checkers. */
#include "test.h"
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 2048
static struct { const char *name; nb_test_fn fn; } tests[MAX_TESTS];
static int ntests;
int nb_test_failures;
static const char *current_test;

void nb_test_register(const char *name, nb_test_fn fn) {
    if (ntests == MAX_TESTS) { fprintf(stderr, "too many tests\n"); exit(2); }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void nb_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    if (nb_test_failures < 10) {
        fprintf(stdout, "  FAIL %s (%s:%d): ", current_test, file, line);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
    }
    nb_test_failures++;
}

static nb_rng test_rng;
nb_rng *nb_test_rng(void) { return &test_rng; }

/* Why the running test did not run its checks (NULL: it did). */
static char skip_why[256];
void nb_test_skip(const char *why) { snprintf(skip_why, sizeof skip_why, "%s", why); }

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
    nb_set_threads(0);
    int passed = 0, failed = 0, skipped = 0;
    const char **names = malloc(sizeof(char *) * (size_t)ntests);
    for (int i = 0; i < ntests; i++) names[i] = tests[i].name;
    (void)cmp_name;
    for (int i = 0; i < ntests; i++) {
        bool run = argc < 2;
        for (int a = 1; a < argc; a++) run |= strstr(tests[i].name, argv[a]) != NULL;
        if (!run) continue;
        skip_why[0] = '\0';
        current_test = tests[i].name;
        nb_test_failures = 0;
        /* Seeded by name, so adding a test never changes another's numbers. */
        uint64_t h = 1469598103934665603ULL;
        for (const char *c = tests[i].name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        nb_rng_seed(&test_rng, 1234, h);
        nb_manual_seed(42);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        tests[i].fn();
        /* Each test starts with an empty arena: blocks a test grew (host or
         * GPU) go back rather than linger under the next. */
        nb_arena_free(nb_arena_current());
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (nb_test_failures) {
            printf("FAIL %s (%d checks failed)\n", tests[i].name, nb_test_failures);
            failed++;
        } else if (skip_why[0]) {
            printf("skip %s (%s)\n", tests[i].name, skip_why);
            skipped++;
        } else {
            printf("ok   %s (%.0f ms)\n", tests[i].name, ms);
            passed++;
        }
        fflush(stdout);
    }
    free(names);
    if (skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* --- helpers ------------------------------------------------------------ */

/* Runs fn(ctx) in a child process and checks that it aborts with a message on
 * stderr containing every string of `needles` (NULL-terminated). */
/* Runs fn(ctx) in a child with its stderr in a pipe; returns the child's
 * wait status and the message (buf of size cap). */
static int run_child(void (*fn)(void *), void *ctx, char *buf, size_t cap) {
    int fd[2];
    buf[0] = 0;
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        fn(ctx);
        _exit(0); /* not reached when fn aborts or exits */
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t r;
    while (len < cap - 1 && (r = read(fd[0], buf + len, cap - 1 - len)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void check_needles(const char *what, const char *buf, const char *const *needles) {
    for (const char *const *n = needles; *n; n++)
        CHECK_MSG(strstr(buf, *n) != NULL, "%s: message \"%s\" lacks \"%s\"", what, buf, *n);
}

void nb_test_expect_fatal(const char *what, void (*fn)(void *), void *ctx, const char *const *needles) {
    char buf[1024];
    int status = run_child(fn, ctx, buf, sizeof buf);
    CHECK_MSG(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: expected an abort, got status %d",
              what, status);
    check_needles(what, buf, needles);
}

void nb_test_expect_exit(const char *what, void (*fn)(void *), void *ctx, int code, const char *const *needles) {
    char buf[1024];
    int status = run_child(fn, ctx, buf, sizeof buf);
    CHECK_MSG(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code, "%s: expected exit status %d, got %s %d",
              what, code, WIFSIGNALED(status) ? "signal" : "status",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    check_needles(what, buf, needles);
}



double nb_test_maxrel(const float *a, const float *b, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(e <= worst)) worst = e; /* NaN propagates as worst */
    }
    return worst;
}

nb_tensor *nb_test_param(int ndim, const int64_t *shape, float std) {
    nb_tensor *t = nb_tensor_new(ndim, shape);
    nb_init_normal(t, 0.f, std, &test_rng);
    nb_requires_grad(t, true);
    return t;
}

/* The checks run on tensors of any device: values are read and written
 * through host copies (slow, and fine at the sizes of a test). */
static float *host_copy(const nb_tensor *t) {
    float *h = malloc(sizeof(float) * (size_t)(t->size ? t->size : 1));
    if (!h) abort();
    nb_tensor_read(t, h);
    return h;
}
static float get_at(const nb_tensor *t, int64_t j) {
    if (t->device == NB_CPU) return t->data[j];
    float *h = host_copy(t), v = h[j];
    free(h);
    return v;
}
static void set_at(nb_tensor *t, int64_t j, float v) {
    if (t->device == NB_CPU) {
        t->data[j] = v;
        return;
    }
    float *h = host_copy(t);
    h[j] = v;
    nb_tensor_write(t, h);
    free(h);
}
/* t += s * v for a host tensor v of t's size. */
static void add_scaled(nb_tensor *t, float s, const nb_tensor *v) {
    float *h = host_copy(t);
    for (int64_t j = 0; j < t->size; j++) h[j] += s * v->data[j];
    nb_tensor_write(t, h);
    free(h);
}

/* L = sum(f(in) * R), with R fixed per check (on the host, and a copy Rd on
 * the output's device); evaluated in double from the output data so that
 * finite differences lose as little as possible. */
typedef struct { nb_test_f f; void *ctx; nb_tensor *R, *Rd; } proj;

static nb_tensor *eval_out(proj *p, nb_tensor **in) {
    nb_tensor *out = p->f(in, p->ctx);
    if (!p->R) {
        p->R = nb_tensor_new(out->ndim, out->shape);
        nb_init_uniform(p->R, 0.5f, 1.5f, &test_rng);
        for (int64_t i = 0; i < p->R->size; i++)
            if (nb_rng_below(&test_rng, 2)) p->R->data[i] = -p->R->data[i];
        p->Rd = nb_tensor_clone(p->R);
        nb_tensor_move(p->Rd, out->device);
    }
    return out;
}

static double eval_L(proj *p, nb_tensor **in) {
    bool old = nb_set_grad_enabled(false);
    nb_tensor *out = eval_out(p, in);
    nb_set_grad_enabled(old);
    float *o = host_copy(out);
    double s = 0;
    for (int64_t i = 0; i < out->size; i++) s += (double)o[i] * p->R->data[i];
    free(o);
    return s;
}

static nb_tensor *loss_of(proj *p, nb_tensor **in) {
    nb_tensor *out = eval_out(p, in);
    return nb_sum_all(nb_mul(out, nb_detach(p->Rd)));
}

double nb_gradcheck(const char *what, nb_test_f f, nb_tensor **in, int n, void *ctx, float eps, float tol) {
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    proj p = {f, ctx, NULL};
    double worst = 0;
    for (int k = 0; k < n; k++) {
        if (!in[k]->requires_grad) continue;
        nb_arena_reset();
        nb_tensor *L = loss_of(&p, in);
        nb_tensor *g;
        nb_grad(L, &in[k], 1, &g, false);
        nb_tensor *ga = nb_tensor_clone(g);
        nb_tensor_move(ga, NB_CPU);
        int64_t m = in[k]->size, samples = m < 96 ? m : 96;
        for (int64_t s = 0; s < samples; s++) {
            int64_t j = m <= 96 ? s : (int64_t)nb_rng_below(&test_rng, (uint32_t)m);
            float x0 = get_at(in[k], j);
            set_at(in[k], j, x0 + eps);
            nb_arena_reset();
            double lp = eval_L(&p, in);
            set_at(in[k], j, x0 - eps);
            nb_arena_reset();
            double lm = eval_L(&p, in);
            set_at(in[k], j, x0);
            double num = (lp - lm) / (2.0 * eps), ana = ga->data[j];
            double e = fabs(num - ana) / fmax(1.0, fabs(num));
            if (!(e <= worst)) worst = e;
            if (!(e <= tol))
                nb_test_fail(__FILE__, __LINE__, "%s: d/d input %d [%lld]: autodiff %.6g, finite differences %.6g",
                             what, k, (long long)j, ana, num);
        }
        nb_tensor_free(ga);
    }
    nb_tensor_free(p.R);
    nb_tensor_free(p.Rd);
    nb_arena_use(old);
    nb_arena_free(arena);
    return worst;
}

double nb_hvpcheck(const char *what, nb_test_f f, nb_tensor **in, int n, void *ctx, float eps, float tol) {
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    proj p = {f, ctx, NULL};
    nb_tensor *v[16], *hv[16], *gp[16], *gm[16];
    if (n > 16) n = 16;
    for (int k = 0; k < n; k++) {
        v[k] = nb_tensor_new(in[k]->ndim, in[k]->shape);
        if (in[k]->requires_grad) nb_init_normal(v[k], 0.f, 1.f, &test_rng);
    }
    nb_tensor *L = loss_of(&p, in);
    nb_tensor *hva[16], *vd[16];
    for (int k = 0; k < n; k++) {
        vd[k] = nb_tensor_clone(v[k]);
        nb_tensor_move(vd[k], in[k]->device);
    }
    nb_hvp(L, in, vd, n, hva);
    for (int k = 0; k < n; k++) {
        hv[k] = nb_tensor_clone(hva[k]);
        nb_tensor_move(hv[k], NB_CPU);
        nb_tensor_free(vd[k]);
    }
    /* Central differences of the exact gradient along v. */
    for (int side = 0; side < 2; side++) {
        float sgn = side ? -1.f : 1.f;
        for (int k = 0; k < n; k++) add_scaled(in[k], sgn * eps, v[k]);
        nb_arena_reset();
        nb_tensor *g[16];
        nb_tensor *Ls = loss_of(&p, in);
        nb_grad(Ls, in, n, g, false);
        for (int k = 0; k < n; k++) {
            (side ? gm : gp)[k] = nb_tensor_clone(g[k]);
            nb_tensor_move((side ? gm : gp)[k], NB_CPU);
        }
        for (int k = 0; k < n; k++) add_scaled(in[k], -sgn * eps, v[k]);
    }
    double worst = 0;
    for (int k = 0; k < n; k++) {
        if (!in[k]->requires_grad) continue;
        for (int64_t j = 0; j < in[k]->size; j++) {
            double num = ((double)gp[k]->data[j] - gm[k]->data[j]) / (2.0 * eps), ana = hv[k]->data[j];
            double e = fabs(num - ana) / fmax(1.0, fabs(num));
            if (!(e <= worst)) worst = e;
            if (!(e <= tol)) {
                nb_test_fail(__FILE__, __LINE__, "%s: (Hv) input %d [%lld]: exact %.6g, finite differences %.6g",
                             what, k, (long long)j, ana, num);
                break;
            }
        }
    }
    for (int k = 0; k < n; k++) {
        nb_tensor_free(v[k]);
        nb_tensor_free(hv[k]);
        nb_tensor_free(gp[k]);
        nb_tensor_free(gm[k]);
    }
    nb_tensor_free(p.R);
    nb_tensor_free(p.Rd);
    nb_arena_use(old);
    nb_arena_free(arena);
    return worst;
}

/* --- the GPU against the CPU (test.h) ------------------------------------ */

/* Whether a GPU (or the emulator) is there; if not, the test is skipped,
 * saying why. */
bool nb_test_gpu(void) {
    static int state; /* 0 unknown, 1 yes, -1 no */
    static char why[200];
    if (!state) {
        state = nb_device_ready(NB_CUDA) ? -1 : 1;
        if (state < 0) snprintf(why, sizeof why, "no GPU: %s", nb_errmsg());
    }
    if (state < 0) nb_test_skip(why);
    return state > 0;
}

/* A persistent copy of t on the host (any device). */
nb_tensor *nb_test_to_host(const nb_tensor *t) {
    nb_tensor *h = nb_tensor_clone(t);
    nb_tensor_move(h, NB_CPU);
    return h;
}

void nb_test_free_all(nb_tensor **t, int n) {
    for (int k = 0; k < n; k++) nb_tensor_free(t[k]);
}

void nb_test_same_runs(const char *what, nb_tensor **a, nb_tensor **b, int n) {
    for (int k = 0; k < n; k++) {
        CHECK_MSG(a[k]->size == b[k]->size && !memcmp(a[k]->data, b[k]->data, sizeof(float) * (size_t)a[k]->size),
                  "%s: tensor %d differs between two runs", what, k);
        nb_tensor_free(a[k]);
        nb_tensor_free(b[k]);
    }
}

nb_tensor **nb_test_moved(nb_tensor **in, int n, nb_device d) {
    for (int k = 0; k < n; k++) nb_tensor_move(in[k], d);
    return in;
}

/* Fills the GPU arena's first block with NaN, so that an op that leaves part
 * of its output unwritten is caught. */
static void poison_gpu_arena(void) {
    nb_arena_reset();
    nb_to(nb_full(1, (int64_t[]){1 << 18}, NAN), NB_CUDA);
    nb_arena_reset();
}

typedef struct {
    nb_tensor *out;     /* host copy of f's output */
    nb_tensor *grad[8]; /* host copies of d(sum(out * R))/d in[k] */
} run_result;

/* Runs f on inputs moved to device d and takes the gradient of sum(out * R)
 * with respect to every input that requires one. */
static run_result run_on(nb_device d, nb_test_f f, nb_tensor **in, int n, void *ctx, const nb_tensor *R) {
    run_result r = {0};
    nb_tensor *x[8];
    for (int k = 0; k < n; k++) {
        x[k] = nb_tensor_clone(in[k]);
        if (in[k]->requires_grad) nb_requires_grad(x[k], true);
        nb_tensor_move(x[k], d);
    }
    if (d == NB_CUDA) poison_gpu_arena();
    nb_tensor *out = f(x, ctx);
    if (out->device != d)
        nb_test_fail(__FILE__, __LINE__, "output on %s, expected %s", nb_device_str(out->device), nb_device_str(d));
    r.out = nb_test_to_host(out);
    nb_tensor *Rd = nb_tensor_clone(R);
    nb_tensor_move(Rd, d);
    nb_tensor *L = nb_sum_all(nb_mul(out, nb_detach(Rd)));
    nb_tensor *wrt[8], *g[8];
    int m = 0;
    for (int k = 0; k < n; k++)
        if (in[k]->requires_grad) wrt[m++] = x[k];
    if (m) nb_grad(L, wrt, m, g, false);
    for (int k = 0, j = 0; k < n; k++)
        if (in[k]->requires_grad) {
            if (g[j]->device != d)
                nb_test_fail(__FILE__, __LINE__, "gradient %d on %s", k, nb_device_str(g[j]->device));
            r.grad[k] = nb_test_to_host(g[j++]);
        }
    nb_arena_reset();
    nb_tensor_free(Rd);
    for (int k = 0; k < n; k++) nb_tensor_free(x[k]);
    return r;
}

static void free_result(run_result *r, int n) {
    nb_tensor_free(r->out);
    for (int k = 0; k < n; k++) nb_tensor_free(r->grad[k]);
}

/* f on the CPU and on the GPU: outputs and input gradients within tol
 * (relative, as nb_test_maxrel). Returns the worst difference seen. */
double nb_test_gpu_parity(const char *what, nb_test_f f, nb_tensor **in, int n, void *ctx, double tol) {
    /* A private arena, freed at the end: its GPU blocks go back, and the
     * emulator's page protection, which spans the device memory in use,
     * stays small for the tests after. */
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    nb_tensor *probe = f(in, ctx); /* the output's shape, for R */
    nb_tensor *R = nb_tensor_new(probe->ndim, probe->shape);
    nb_init_uniform(R, -1.5f, 1.5f, &test_rng);
    nb_arena_reset();
    run_result c = run_on(NB_CPU, f, in, n, ctx, R), g = run_on(NB_CUDA, f, in, n, ctx, R);
    double worst = nb_test_maxrel(g.out->data, c.out->data, c.out->size);
    if (!(worst <= tol))
        nb_test_fail(__FILE__, __LINE__, "%s: output differs from the CPU's by %.3g (tol %.3g)", what, worst, tol);
    for (int k = 0; k < n; k++) {
        if (!c.grad[k]) continue;
        double e = nb_test_maxrel(g.grad[k]->data, c.grad[k]->data, c.grad[k]->size);
        if (!(e <= tol))
            nb_test_fail(__FILE__, __LINE__, "%s: gradient of input %d differs from the CPU's by %.3g (tol %.3g)", what,
                         k, e, tol);
        if (e > worst) worst = e;
    }
    free_result(&c, n);
    free_result(&g, n);
    nb_tensor_free(R);
    nb_arena_use(old);
    nb_arena_free(arena);
    return worst;
}

/* --- damaged model files ------------------------------------------------- */

int nb_test_st_rewrite(const char *src, const char *dst, void (*edit)(nb_test_st *, void *), void *ctx) {
    nb_safetensors *st = nb_st_read(src);
    if (!st) return -1;
    nb_test_st f = {.n = st->n, .nmeta = st->n_meta};
    if (st->n > NB_TEST_ST_MAX || st->n_meta > NB_TEST_ST_MAX) {
        nb_st_free(st);
        return nb_error("%s: more than %d tensors or metadata entries", src, NB_TEST_ST_MAX);
    }
    for (int i = 0; i < st->n; i++) f.names[i] = st->entries[i].name, f.t[i] = st->entries[i].t;
    for (int i = 0; i < st->n_meta; i++) f.keys[i] = st->meta_keys[i], f.vals[i] = st->meta_vals[i];
    edit(&f, ctx);
    int rc = nb_st_write(dst, f.names, f.t, f.n, f.keys, f.vals, f.nmeta);
    nb_st_free(st);
    return rc;
}

int nb_test_st_find(const nb_test_st *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) return i;
    return -1;
}

void nb_test_st_set_meta(nb_test_st *f, const char *key, const char *val) {
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->keys[i], key)) {
            if (val) {
                f->vals[i] = val;
            } else { /* removed: the last entry takes its place */
                f->keys[i] = f->keys[f->nmeta - 1], f->vals[i] = f->vals[f->nmeta - 1];
                f->nmeta--;
            }
            return;
        }
    if (val && f->nmeta < NB_TEST_ST_MAX) f->keys[f->nmeta] = key, f->vals[f->nmeta++] = val;
}

const char *const nb_test_small_cnn = "[net]\ninput = 2x8x8\n"
                                      "[conv2d]\nout = 4\nkernel = 3\npadding = 1\nactivation = relu\n"
                                      "[maxpool]\nsize = 2\n"
                                      "[flatten]\n"
                                      "[dense]\nout = 6\nactivation = tanh\n"
                                      "[dense]\nout = 3\n";
