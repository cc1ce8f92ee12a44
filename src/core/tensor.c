/* tensor.c — tensor storage: persistent tensors on the heap, step tensors in
 * the arena; creation, shape checks and small utilities. */
#include "internal.h"
#include "fault.h"
#include <math.h>
#include <stdlib.h>

int64_t nb_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    if (ndim < 0 || ndim > NB_MAXDIM) return -1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < 0) return -1;
        if (shape[k] && n > INT64_MAX / shape[k]) return -1;
        n *= shape[k];
    }
    /* Keep byte counts representable too. */
    if (n > INT64_MAX / (int64_t)sizeof(float)) return -1;
    return n;
}

/* "[2, 3]" into buf (n bytes), cut to fit. */
static char *dims_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < ndim && off < n; k++)
        off += (size_t)snprintf(buf + off, n - off, k ? ", %lld" : "%lld", (long long)shape[k]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}

static int64_t checked_numel(const char *op, int ndim, const int64_t *shape) {
    int64_t n = nb_shape_numel(ndim, shape);
    if (n < 0) {
        /* The shape itself, so that the op that asked for it can be told
         * (every op allocates its result through here, named "tensor"). */
        char s[160];
        if (ndim < 0 || ndim > NB_MAXDIM) snprintf(s, sizeof s, "%d dims", ndim);
        else dims_str(ndim, shape, s, sizeof s);
        nb_fatal(op, "invalid shape %s (negative dimension, more than %d dims, or size overflow)", s, NB_MAXDIM);
    }
    return n;
}

static void set_shape(nb_tensor *t, int ndim, const int64_t *shape, int64_t n) {
    t->ndim = ndim;
    for (int k = 0; k < NB_MAXDIM; k++) t->shape[k] = k < ndim ? shape[k] : 1;
    t->size = n;
}

/* --- persistent --------------------------------------------------------- */

/* A persistent tensor, zeroed if zero, or NULL with an error. Only the
 * readers' allocations (seam true) go through the fault seam: they have a way
 * back, while nb_tensor_new calls the out-of-memory handler (nb_oom), which
 * ends the program, and so is never made to fail. */
static nb_tensor *tensor_alloc(int ndim, const int64_t *shape, bool seam, bool zero) {
    int64_t n = checked_numel("tensor_new", ndim, shape);
    nb_tensor *t = seam ? nb__calloc(1, sizeof *t) : calloc(1, sizeof *t);
    size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64;
    if (t) t->data = seam ? nb__aligned_alloc(64, bytes ? bytes : 64) : aligned_alloc(64, bytes ? bytes : 64);
    if (!t || !t->data) {
        free(t);
        nb_error("out of memory for a tensor of %lld floats", (long long)n);
        return NULL;
    }
    if (zero) memset(t->data, 0, (size_t)n * sizeof(float));
    set_shape(t, ndim, shape, n);
    t->persistent = t->owns_data = true;
    return t;
}

nb_tensor *nb__tensor_try_new(int ndim, const int64_t *shape) { return tensor_alloc(ndim, shape, true, true); }
nb_tensor *nb__tensor_try_empty(int ndim, const int64_t *shape) { return tensor_alloc(ndim, shape, true, false); }

nb_tensor *nb_tensor_new(int ndim, const int64_t *shape) {
    nb_tensor *t = tensor_alloc(ndim, shape, false, true);
    if (!t) nb_oom("a tensor", (size_t)checked_numel("tensor_new", ndim, shape) * sizeof(float));
    return t;
}

nb_tensor *nb_tensor_from(int ndim, const int64_t *shape, const float *data) {
    nb_tensor *t = nb_tensor_new(ndim, shape);
    /* An empty tensor may come with data NULL, which memcpy must not see. */
    if (t->size) memcpy(t->data, data, (size_t)t->size * sizeof(float));
    return t;
}

nb_tensor *nb_tensor_clone(const nb_tensor *src) {
    nb_tensor *t = nb_tensor_new(src->ndim, src->shape);
    nb_tensor_read(src, t->data);
    if (src->device != NB_CPU) nb_tensor_move(t, src->device);
    return t;
}

void nb_tensor_free(nb_tensor *t) {
    if (!t) return;
    if (!t->persistent) nb_fatal("tensor_free", "tensor is in the step arena; nb_arena_reset frees it");
    if (t->grad) nb_tensor_free(t->grad);
    if (t->owns_data) nb__free_data(t);
    free(t);
}

void nb_requires_grad(nb_tensor *t, bool on) {
    t->requires_grad = on;
    if (on && t->persistent && !t->grad) {
        t->grad = nb_tensor_new(t->ndim, t->shape);
        if (t->device != NB_CPU) nb_tensor_move(t->grad, t->device);
    }
}

void nb_zero_grad(nb_tensor *t) {
    if (!t->grad) return;
    if (nb__on_gpu(t->grad)) {
        nb__gpu_fill(t->grad->data, t->grad->size, 0.f);
        return;
    }
    float *g = t->grad->data;
    int64_t n = t->size;
    /* between two training steps this is serial time: share it */
    NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) { g[i] = 0.f; });
}

/* --- arena -------------------------------------------------------------- */

/* The tensor in the arena's host pool, its data in the pool of its device. */
nb_tensor *nb__new_on(nb_device d, int ndim, const int64_t *shape) {
    int64_t n = checked_numel("tensor", ndim, shape);
    nb__threads_check(); /* before the op's kernel forks or calls OpenBLAS */
    nb_tensor *t = nb_arena_alloc(sizeof *t);
    memset(t, 0, sizeof *t);
    size_t bytes = (size_t)n * sizeof(float);
    t->data = d == NB_CUDA ? nb__arena_alloc_gpu(bytes) : nb_arena_alloc(bytes);
    t->device = d;
    set_shape(t, ndim, shape, n);
    return t;
}

nb_tensor *nb__new(int ndim, const int64_t *shape) { return nb__new_on(NB_CPU, ndim, shape); }

nb_tensor *nb_empty(int ndim, const int64_t *shape) { return nb__new(ndim, shape); }

nb_tensor *nb_full(int ndim, const int64_t *shape, float v) {
    nb_tensor *t = nb__new(ndim, shape);
    nb_fill(t, v);
    return t;
}
nb_tensor *nb_zeros(int ndim, const int64_t *shape) { return nb_full(ndim, shape, 0.f); }
nb_tensor *nb_ones(int ndim, const int64_t *shape) { return nb_full(ndim, shape, 1.f); }
nb_tensor *nb_scalar(float v) { return nb_full(0, NULL, v); }
/* The _like forms make their tensor on t's device, as the ops' results are. */
nb_tensor *nb_empty_like(const nb_tensor *t) { return nb__new_on(t->device, t->ndim, t->shape); }
nb_tensor *nb_zeros_like(const nb_tensor *t) {
    nb_tensor *z = nb_empty_like(t);
    nb_fill(z, 0.f);
    return z;
}

nb_tensor *nb_from_data(int ndim, const int64_t *shape, const float *data) {
    nb_tensor *t = nb__new(ndim, shape);
    if (t->size) memcpy(t->data, data, (size_t)t->size * sizeof(float)); /* data may be NULL if empty */
    return t;
}

nb_tensor *nb_uniform(int ndim, const int64_t *shape, float lo, float hi, nb_rng *r) {
    nb_tensor *t = nb__new(ndim, shape);
    nb_init_uniform(t, lo, hi, r);
    return t;
}

nb_tensor *nb_normal(int ndim, const int64_t *shape, float mean, float std, nb_rng *r) {
    nb_tensor *t = nb__new(ndim, shape);
    nb_init_normal(t, mean, std, r);
    return t;
}

nb_tensor *nb_detach(nb_tensor *src) {
    nb_tensor *t = nb_arena_alloc(sizeof *t);
    memset(t, 0, sizeof *t);
    t->data = src->data;
    t->device = src->device;
    set_shape(t, src->ndim, src->shape, src->size);
    return t;
}

/* --- utilities ---------------------------------------------------------- */

bool nb_same_shape(const nb_tensor *a, const nb_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != b->shape[k]) return false;
    return true;
}

char *nb_shape_str(const nb_tensor *t, char *buf, size_t n) { return dims_str(t->ndim, t->shape, buf, n); }

float nb_item(const nb_tensor *t) {
    if (t->size != 1) {
        char s[96];
        nb_fatal("item", "tensor of shape %s has %lld elements, expected 1", nb_shape_str(t, s, sizeof s),
                 (long long)t->size);
    }
    if (nb__on_gpu(t)) {
        float v;
        nb__gpu_to_host(&v, t->data, sizeof v);
        return v;
    }
    return t->data[0];
}

void nb_fill(nb_tensor *t, float v) {
    if (nb__on_gpu(t)) {
        nb__gpu_fill(t->data, t->size, v);
        return;
    }
    float *d = t->data;
    int64_t n = t->size;
    NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) { d[i] = v; });
}

void nb_copy_into(nb_tensor *dst, const nb_tensor *src) {
    if (dst->size != src->size) nb__shape_fatal("copy_into", dst, src, "sizes differ");
    size_t bytes = (size_t)src->size * sizeof(float);
    if (!bytes) return;
    if (nb__on_gpu(dst) && nb__on_gpu(src)) nb__gpu_copy(dst->data, src->data, bytes);
    else if (nb__on_gpu(dst)) nb__gpu_to_device(dst->data, src->data, bytes);
    else if (nb__on_gpu(src)) nb__gpu_to_host(dst->data, src->data, bytes);
    else memmove(dst->data, src->data, bytes);
}

void nb_print(const nb_tensor *t, FILE *f) {
    char s[96];
    fprintf(f, "tensor%s", nb_shape_str(t, s, sizeof s));
    int64_t show = t->size < 16 ? t->size : 16;
    float head[16];
    if (nb__on_gpu(t)) {
        if (show) nb__gpu_to_host(head, t->data, sizeof(float) * (size_t)show);
        fputs(" (cuda)", f);
    } else if (show) {
        memcpy(head, t->data, sizeof(float) * (size_t)show);
    }
    fputs(" {", f);
    for (int64_t i = 0; i < show; i++) fprintf(f, i ? ", %g" : "%g", (double)head[i]);
    fputs(t->size > show ? ", ...}\n" : "}\n", f);
}

int nb__axis(const char *op, const nb_tensor *x, int axis) {
    int a = axis < 0 ? axis + x->ndim : axis;
    if (a < 0 || a >= x->ndim) {
        char s[96];
        nb_fatal(op, "axis %d out of range for a tensor of shape %s", axis, nb_shape_str(x, s, sizeof s));
    }
    return a;
}

_Noreturn void nb__shape_fatal(const char *op, const nb_tensor *a, const nb_tensor *b, const char *why) {
    char sa[96], sb[96];
    nb_fatal(op, "%s: shapes %s and %s", why, nb_shape_str(a, sa, sizeof sa), b ? nb_shape_str(b, sb, sizeof sb) : "-");
}

int nb__broadcast_shape(const char *op, const nb_tensor *a, const nb_tensor *b, int64_t *out) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < nd; k++) {
        int ka = k - (nd - a->ndim), kb = k - (nd - b->ndim);
        int64_t da = ka >= 0 ? a->shape[ka] : 1, db = kb >= 0 ? b->shape[kb] : 1;
        if (da != db && da != 1 && db != 1) nb__shape_fatal(op, a, b, "cannot broadcast");
        out[k] = da == 1 ? db : da;
    }
    return nd;
}

/* --- initialization ----------------------------------------------------- */

/* The initializers draw on the host, from the one generator, so a GPU tensor
 * gets the same values as a CPU one (drawn into a host copy, then written). */
static float *init_target(nb_tensor *t) {
    if (!nb__on_gpu(t)) return t->data;
    float *h = malloc(sizeof(float) * (size_t)(t->size ? t->size : 1));
    if (!h) nb_oom("init", sizeof(float) * (size_t)t->size);
    return h;
}
static void init_done(nb_tensor *t, float *h) {
    if (h == t->data) return;
    nb_tensor_write(t, h);
    free(h);
}

void nb_init_uniform(nb_tensor *t, float lo, float hi, nb_rng *r) {
    if (!r) r = nb_global_rng();
    float *d = init_target(t);
    for (int64_t i = 0; i < t->size; i++) d[i] = lo + (hi - lo) * (float)nb_rng_uniform(r);
    init_done(t, d);
}

void nb_init_normal(nb_tensor *t, float mean, float std, nb_rng *r) {
    if (!r) r = nb_global_rng();
    float *d = init_target(t);
    for (int64_t i = 0; i < t->size; i++) d[i] = mean + std * (float)nb_rng_normal(r);
    init_done(t, d);
}

void nb_fans(const nb_tensor *w, int64_t *fan_in, int64_t *fan_out) {
    /* PyTorch's convention: [out, in, k...]; a 1-D tensor counts as [out]. */
    int64_t rf = 1;
    for (int k = 2; k < w->ndim; k++) rf *= w->shape[k];
    *fan_out = w->ndim >= 1 ? w->shape[0] * rf : 1;
    *fan_in = w->ndim >= 2 ? w->shape[1] * rf : 1;
}

void nb_init_xavier_uniform(nb_tensor *w, nb_rng *r) {
    int64_t fi, fo;
    nb_fans(w, &fi, &fo);
    float a = sqrtf(6.f / (float)(fi + fo));
    nb_init_uniform(w, -a, a, r);
}

void nb_init_xavier_normal(nb_tensor *w, nb_rng *r) {
    int64_t fi, fo;
    nb_fans(w, &fi, &fo);
    nb_init_normal(w, 0.f, sqrtf(2.f / (float)(fi + fo)), r);
}

void nb_init_he_uniform(nb_tensor *w, nb_rng *r) {
    int64_t fi, fo;
    nb_fans(w, &fi, &fo);
    float a = sqrtf(6.f / (float)fi);
    nb_init_uniform(w, -a, a, r);
}

void nb_init_he_normal(nb_tensor *w, nb_rng *r) {
    int64_t fi, fo;
    nb_fans(w, &fi, &fo);
    nb_init_normal(w, 0.f, sqrtf(2.f / (float)fi), r);
}
