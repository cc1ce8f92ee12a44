/* device.c — where tensors live: the device checks every op makes, GPU
 * allocation for the arena and for persistent tensors, the copies between
 * host and GPU, and nb_to, the op that moves a tensor across (and its
 * gradient back). The GPU side itself is src/cuda/ (backend.h); a build
 * without it links src/cuda/absent.c, and nb_device_ready(NB_CUDA) says so,
 * so no tensor ever reaches the GPU there. */
#include "internal.h"
#include "fault.h"
#include <stdlib.h>

int nb_device_parse(const char *s, nb_device *d) {
    if (s && !strcmp(s, "cpu")) *d = NB_CPU;
    else if (s && !strcmp(s, "cuda")) *d = NB_CUDA;
    else return nb_error("unknown device '%s' (expected cpu or cuda)", s ? s : "");
    return 0;
}

const char *nb_device_str(nb_device d) { return d == NB_CUDA ? "cuda" : "cpu"; }

#ifdef NB_HAVE_CUDA
static int gpu_state; /* 0 untried, 1 ready, -1 failed */
static char gpu_why[256];
int nb_device_ready(nb_device d) {
    if (d == NB_CPU) return 0;
    if (!gpu_state) gpu_state = nb__gpu_init(gpu_why, sizeof gpu_why) ? -1 : 1;
    return gpu_state > 0 ? 0 : nb_error("no usable CUDA device: %s", gpu_why);
}
const char *nb_device_name(nb_device d) { return d == NB_CUDA && gpu_state > 0 ? nb__gpu_name() : ""; }
void *nb__dev_alloc(size_t bytes) { return nb__gpu_alloc(bytes); }
void nb__dev_free(void *p) { nb__gpu_free(p); }
#else
int nb_device_ready(nb_device d) {
    if (d == NB_CPU) return 0;
    return nb_error("this nabla was built without CUDA (rebuild with make CUDA=1 where nvcc is installed)");
}
const char *nb_device_name(nb_device d) { return (void)d, ""; }
void *nb__dev_alloc(size_t bytes) { return (void)bytes, NULL; }
void nb__dev_free(void *p) { (void)p; }
#endif

nb_device nb__device_of(const char *op, int n, nb_tensor *const *ts) {
    const nb_tensor *first = NULL;
    for (int k = 0; k < n; k++) {
        if (!ts[k]) continue;
        if (!first) first = ts[k];
        else if (ts[k]->device != first->device)
            nb_fatal(op, "inputs on different devices (%s and %s); move one with nb_to", nb_device_str(first->device),
                     nb_device_str(ts[k]->device));
    }
    return first ? first->device : NB_CPU;
}

void nb__no_gpu(const char *op) {
    nb_fatal(op, "runs on the CPU only, and an input is on the GPU; move it there first (nb_to(x, NB_CPU) or "
                 "nb_tensor_move)");
}

int nb__host_only(const char *fn, const char *what, const nb_tensor *t) {
    if (!t || t->device == NB_CPU) return 0;
    return nb_error("%s: %s is on the GPU, and %s runs on the CPU only; move it with nb_tensor_move (or nb_to) first",
                    fn, what, fn);
}

const float *nb__host_values(const nb_tensor *t, float **copy) {
    *copy = NULL;
    if (t->device == NB_CPU) return t->data;
    *copy = nb__malloc(((size_t)t->size + 1) * sizeof(float));
    if (*copy) nb_tensor_read(t, *copy);
    return *copy;
}

/* Device memory that must exist: running out is fatal like host OOM. */
static void *dev_alloc_or_die(const char *what, size_t bytes) {
    void *p = nb__dev_alloc(bytes ? bytes : 64);
    if (!p) nb_oom(what, bytes);
    return p;
}

void *nb__to_gpu_arena(const void *host, size_t bytes) {
    void *p = nb__arena_alloc_gpu(bytes);
    if (bytes) nb__gpu_to_device(p, host, bytes);
    return p;
}

/* --- copies ---------------------------------------------------------------- */

void nb_tensor_read(const nb_tensor *t, float *dst) {
    size_t bytes = (size_t)t->size * sizeof(float);
    if (!bytes) return;
    if (nb__on_gpu(t)) nb__gpu_to_host(dst, t->data, bytes);
    else memcpy(dst, t->data, bytes);
}

void nb_tensor_write(nb_tensor *t, const float *src) {
    size_t bytes = (size_t)t->size * sizeof(float);
    if (!bytes) return;
    if (nb__on_gpu(t)) nb__gpu_to_device(t->data, src, bytes);
    else memcpy(t->data, src, bytes);
}

/* Moves the storage of one persistent tensor (not its .grad). */
static void move_data(nb_tensor *t, nb_device d) {
    if (!t->persistent || !t->owns_data) nb_fatal("tensor_move", "only tensors made by nb_tensor_new can move");
    size_t bytes = (size_t)t->size * sizeof(float);
    float *p;
    if (d == NB_CUDA) {
        p = dev_alloc_or_die("a tensor on the GPU", bytes);
        if (bytes) nb__gpu_to_device(p, t->data, bytes);
        free(t->data);
    } else {
        p = aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64);
        if (!p) nb_oom("a tensor", bytes);
        if (bytes) nb__gpu_to_host(p, t->data, bytes);
        nb__dev_free(t->data);
    }
    t->data = p;
    t->device = d;
}

void nb_tensor_move(nb_tensor *t, nb_device d) {
    if (t->device == d) return;
    if (nb_device_ready(d)) nb_fatal("tensor_move", "%s", nb_errmsg());
    move_data(t, d);
    if (t->grad) move_data(t->grad, d);
}

void nb_params_to(const nb_param *params, int n, nb_device d) {
    for (int i = 0; i < n; i++) nb_tensor_move(params[i].t, d);
}

/* Frees a persistent tensor's data wherever it lives (nb_tensor_free). */
void nb__free_data(nb_tensor *t) {
    if (t->device == NB_CUDA) nb__dev_free(t->data);
    else free(t->data);
}

/* --- nb_to: the op that crosses devices ------------------------------------ */

static void to_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], nb_to(g, n->in[0]->device)); }
static const nb_op op_to = {"to", to_bw};

nb_tensor *nb_to(nb_tensor *x, nb_device d) {
    if (x->device == d) return x;
    if (nb_device_ready(d)) nb_fatal("to", "%s", nb_errmsg());
    nb_tensor *out = nb__new_on(d, x->ndim, x->shape);
    nb_copy_into(out, x);
    nb__record(&op_to, out, &x, 1);
    return out;
}
