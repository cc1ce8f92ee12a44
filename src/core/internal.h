/* internal.h — what the library's own files share and users never see: the
 * tape node, the op descriptor, recording, and kernel helpers. */
#ifndef NB_INTERNAL_H
#define NB_INTERNAL_H

#include "nabla.h"
#include "../cuda/backend.h"
#include "fault.h" /* nb__malloc ... and nb__xmalloc ...: every allocation of the library */
#include <stdatomic.h>
#include <string.h>

/* An op: its name (for messages) and its backward rule. The forward is the
 * public nb_<op>() function, written next to its backward in src/ops/.
 * backward(n, g) receives dL/d(out) in g and calls nb__accum(n->in[i], gi)
 * for each input. It must compute gi with nb_* ops only (never raw loops over
 * g), so that with create_graph the gradient is itself differentiable: that
 * is how nabla gets exact Hessian-vector products (double backward). */
typedef struct nb_op {
    const char *name;
    void (*backward)(nb_node *n, nb_tensor *g);
    /* backward also takes a one-element g that stands for that value in
     * every element (a uniform gradient, see nb__accum_uniform), when
     * gradients are not being recorded; other ops get it broadcast whole. */
    bool uniform;
} nb_op;

#define NB_NATTR 12
struct nb_node {
    const nb_op *op;
    nb_tensor *out;
    nb_tensor **in;     /* nin inputs, arena-allocated */
    int nin;
    int64_t i[NB_NATTR]; /* integer attributes (axes, strides, ...) */
    float f[4];          /* float attributes (slopes, scales, ...) */
    void *aux;           /* op data in the arena (labels, argmax indices) */
    nb_node *prev;       /* the tape: a list in creation order, newest last */
};

/* The newest node of the current arena's tape. */
nb_node **nb__tape(void);
/* Records `op` producing `out` from inputs if recording is on and any input
 * needs a gradient; returns the node (to fill attributes) or NULL. */
nb_node *nb__record(const nb_op *op, nb_tensor *out, nb_tensor **in, int nin);
/* Adds gi to the gradient of x during a backward pass (no-op if x needs none). */
void nb__accum(nb_tensor *x, nb_tensor *gi);
/* Where a backward rule may add x's gradient in place, or NULL: x->grad's
 * data while nb_backward runs (not nb_grad, not with create_graph) and x is
 * a persistent leaf. A GEMM then accumulates with beta = 1 straight into the
 * parameter's .grad, saving the zeroing of a result and the pass that would
 * add it in; other contributions still arrive through nb__accum. */
float *nb__direct_grad(nb_tensor *x);
/* Adds to x's gradient the one value in g (a one-element tensor) in every
 * element: the backward of a full sum, or of a sum or mean of elementwise
 * ops. While nb__direct_grad allows it is added into x->grad in place;
 * otherwise g itself is kept as x's gradient, standing for the uniform
 * tensor, and x's producer gets it as is if its op is marked `uniform` (one
 * pass with a scalar where a filled tensor would be written and read back),
 * or broadcast whole (nb__whole) if not. PyTorch gets the same from its
 * stride-0 expanded views. */
void nb__accum_uniform(nb_tensor *x, nb_tensor *g);
/* Runs node n's backward with the gradient gathered for its output. */
void nb__node_backward(nb_node *n);
/* g as a gradient of x's shape: g itself, or a uniform stand-in broadcast. */
nb_tensor *nb__whole(const nb_tensor *x, nb_tensor *g);
/* Whether g, the gradient given to node n's backward, is a uniform stand-in. */
static inline bool nb__uniform(const nb_node *n, const nb_tensor *g) { return g->size != n->out->size; }

/* An arena tensor with the given shape, data uninitialized. */
nb_tensor *nb__new(int ndim, const int64_t *shape);
/* nb_tensor_new for data from outside (readers): NULL with "out of memory"
 * in nb_errmsg() where nb_tensor_new would stop the program. */
nb_tensor *nb__tensor_try_new(int ndim, const int64_t *shape);
/* nb__tensor_try_new with the data left unset, for a reader that writes every
 * element or frees the tensor: memory is touched only as data arrives, so a
 * small file whose header claims a large image costs little before it is
 * found truncated. */
nb_tensor *nb__tensor_try_empty(int ndim, const int64_t *shape);
/* nb_net_build for a description read from a model file that holds
 * max_values parameter values in all: a network that needs more is an error
 * (naming the layer) before anything is allocated. */
int nb__net_build_within(nb_net *net, int64_t max_values);
/* Copies the array of a shape, resolving nothing. */
static inline void nb__shape_copy(int64_t *dst, const int64_t *src, int n) {
    for (int k = 0; k < n; k++) dst[k] = src[k];
}
/* Normalizes a possibly negative axis; fatal if out of range. */
int nb__axis(const char *op, const nb_tensor *x, int axis);
/* Fatal shape error naming the op and both shapes. */
_Noreturn void nb__shape_fatal(const char *op, const nb_tensor *a, const nb_tensor *b, const char *why);
/* An integer in [lo, hi] from a model file's __metadata__ (key), for the
 * model files of charrnn, chat and wavenet; a missing key means the file is
 * not a `kind` model. 0, or -1 with nb_errmsg() naming path and key. */
int nb__st_meta_long(const struct nb_safetensors *st, const char *path, const char *kind, const char *key, long lo,
                     long hi, long *out);
/* A model file of another kind than a loader expected: sets nb_errmsg() to
 * "PATH: not EXPECTED: it holds a KIND (the command that writes it)" and
 * returns -1, so that a user who gives `nabla predict` a char-RNN is told
 * what the file is, not only what it is not. */
int nb__st_not_a(const struct nb_safetensors *st, const char *path, const char *expected);
/* Whether kind, the value of "nabla.model" in a model file's __metadata__,
 * names a model of `nabla fit` ("svm"); charrnn, chat and wavenet models
 * carry the key too ("charrnn", "dualenc", "wavenet"). */
bool nb__classic_kind(const char *kind);
/* A model file: the model's own __metadata__ (own_keys/own_vals: its kind,
 * its sizes) then the caller's (keys/vals), its parameters under names, then
 * extra tensors (optimizer state, ...); written atomically by nb_st_write.
 * The model writers of the networks, charrnn, chat and wavenet share it. */
int nb__st_write_model(const char *path, const char *const *own_keys, const char *const *own_vals, int nown,
                       const char *const *keys, const char *const *vals, int nmeta, const nb_param *params,
                       const char *const *names, int np, const char *const *extra_names, nb_tensor *const *extra,
                       int nextra);
/* A model's parameters from its file: each under its name, of its shape,
 * every value finite; else -1 with an error naming path and tensor, `model`
 * describing what needs the shape ("the lstm with hidden size 64 and 80
 * characters") and hint (or NULL) appended to a shape mismatch. */
int nb__st_copy_params(const struct nb_safetensors *st, const char *path, const nb_param *params,
                       const char *const *names, int np, const char *model, const char *hint);
/* Computes the NumPy broadcast shape of a and b; fatal if incompatible. */
int nb__broadcast_shape(const char *op, const nb_tensor *a, const nb_tensor *b, int64_t *out);

/* Offset of the i-th element of a row-major walk over the sizes d[0..n) in a
 * layout with strides s (0 along broadcast dims): how reductions, broadcasts
 * and permutations find an element of a strided view. */
static inline int64_t nb__strided_offset(int64_t i, int n, const int64_t *d, const int64_t *s) {
    int64_t off = 0;
    for (int k = n - 1; k >= 0; k--) {
        off += (i % d[k]) * s[k];
        i /= d[k];
    }
    return off;
}

/* A sum of n terms in double whose result does not depend on the thread
 * count: [0, n) is cut into at most 256 chunks whose bounds depend only on n,
 * part(ctx, lo, hi) sums each, and the chunk sums are added in order (an
 * OpenMP reduction adds the threads' sums in whatever order they finish). */
double nb__ordered_sum(int64_t n, double (*part)(const void *ctx, int64_t lo, int64_t hi), const void *ctx);
/* Sum of n floats in double, the same for any thread count (src/ops/reduce.c). */
double nb__sum_floats(const float *x, int64_t n);
/* softmax's vector-Jacobian product y (g - sum(g y)) along axis, y = softmax x
 * (a fused op of activation.c; cross-entropy's backward uses it too). */
nb_tensor *nb__softmax_grad(nb_tensor *y, nb_tensor *g, int axis);
/* r + nb_conv1d_causal(x, w, b, dilation) in one pass (src/ops/conv_causal.c):
 * r [N, O, L] is read where the bias is added, so the sum costs no pass of
 * its own (WaveNet's residual and skip sums); r's gradient is g itself. */
nb_tensor *nb__conv1d_causal_add(nb_tensor *r, nb_tensor *x, nb_tensor *w, nb_tensor *b, int dilation);
/* Cross-entropy with the classes on axis 1 (src/ops/loss_channels.c):
 * logits [N, C, L], labels [N * L] (row n, position t at n * L + t); the
 * mean over the N * L positions of -log softmax(logits[n, :, t])[label], as
 * nb_cross_entropy of the logits permuted to [N * L, C], without the copy. */
nb_tensor *nb__cross_entropy_channels(nb_tensor *logits, const int32_t *labels);

/* --- devices (src/core/device.c) ----------------------------------------
 * An op looks at its inputs' device once: NB_DEVICE checks that they share
 * one (fatal, naming the op, if not) and returns it; a GPU tensor's data is
 * device memory that host code must never read, so a function without a GPU
 * path checks first: NB_CPU_ONLY where misuse is fatal (as its shape checks
 * are), nb__host_only (below) where it returns errors. */
nb_device nb__device_of(const char *op, int n, nb_tensor *const *ts);
#define NB_DEVICE(op, ...) \
    nb__device_of(op, (int)(sizeof((nb_tensor *[]){__VA_ARGS__}) / sizeof(nb_tensor *)), (nb_tensor *[]){__VA_ARGS__})
NB_NORETURN void nb__no_gpu(const char *op);
#define NB_CPU_ONLY(op, ...)                                   \
    do {                                                       \
        if (NB_DEVICE(op, __VA_ARGS__) != NB_CPU) nb__no_gpu(op); \
    } while (0)
static inline bool nb__on_gpu(const nb_tensor *t) { return t->device == NB_CUDA; }
/* Host-only functions that return errors (image tools, classical models,
 * statistics, linear algebra) check each tensor they read with this: 0
 * when t is NULL or in host memory; otherwise the error "fn: what is on the
 * GPU, and fn runs on the CPU only; ..." and -1. */
int nb__host_only(const char *fn, const char *what, const nb_tensor *t);
/* t's values where host code may read them, for writers of files: t->data
 * on the CPU; on the GPU, a copy read back into *copy (free it), or NULL
 * when memory runs out. */
const float *nb__host_values(const nb_tensor *t, float **copy);
/* An arena tensor on device d, data uninitialized. */
nb_tensor *nb__new_on(nb_device d, int ndim, const int64_t *shape);
/* Device memory for the arena's GPU pool and persistent GPU tensors: NULL
 * when the GPU is out of memory. */
void *nb__dev_alloc(size_t bytes);
void nb__dev_free(void *p);
void *nb__arena_alloc_gpu(size_t bytes);
/* The GPU's sum of x over the axes set in mask into out (src/ops/reduce.c). */
void nb__gpu_sum_mask(const nb_tensor *x, unsigned mask, float *out);
/* A copy of n host values (labels, indices) in the step arena on the GPU. */
void *nb__to_gpu_arena(const void *host, size_t bytes);
/* Frees a persistent tensor's data wherever it lives. */
void nb__free_data(nb_tensor *t);

/* The thread count (threads.c): nb_set_threads's process-wide value, and
 * what the calling thread's OpenMP setting holds. nb__threads_check brings
 * the latter up to date before a kernel can fork or call OpenBLAS; it runs
 * at every arena tensor (an op's output, made before its kernel) and in
 * nb__fork. nb__threads_sync does it unconditionally and returns the
 * calling thread's count (nb_get_threads). nb__threads_hold(n) makes the
 * calling thread alone run on n threads (0: the process-wide count again)
 * and returns the previous hold. */
extern atomic_int nb__threads_want;
extern _Thread_local int nb__threads_have;
int nb__threads_sync(void);
int nb__threads_hold(int n);
static inline void nb__threads_check(void) {
    if (nb__threads_have != atomic_load_explicit(&nb__threads_want, memory_order_relaxed)) nb__threads_sync();
}

/* Kernel helpers. Loops of at least this many elements run on OpenMP threads. */
#define NB_PAR_MIN 32768
#define NB_PRAGMA(x) _Pragma(#x)
/* NB_PARALLEL(go, clauses, statement) runs the statement under
 * `#pragma omp parallel clauses` when go holds and the caller may fork
 * (nb__fork), and as plain serial code otherwise. Plain code, not a region
 * whose `if` clause is false: libgomp ends even a team of one thread (an `if`
 * that fails, or a region nested in a busy thread) with a futex system call,
 * 1.4-2.4 us here, and a training step runs dozens of small loops. */
#ifdef _OPENMP
#include <omp.h>
static inline bool nb__fork(bool go) {
    if (!go) return false;
    nb__threads_check();
    return !omp_in_parallel() && omp_get_max_threads() > 1;
}
#define NB_PARALLEL(go, clauses, ...)                                  \
    do {                                                               \
        if (nb__fork(go)) {                                            \
            NB_PRAGMA(omp parallel clauses)                            \
            __VA_ARGS__                                                \
        } else {                                                       \
            __VA_ARGS__                                                \
        }                                                              \
    } while (0)
#else
static inline bool nb__fork(bool go) { return (void)go, false; }
#define NB_PARALLEL(go, clauses, ...) \
    do {                              \
        __VA_ARGS__                   \
    } while (0)
#endif
/* NB_PARALLEL_FOR(work, for (...) {...}): the loop split statically across
 * the threads when work (elements touched) is at least NB_PAR_MIN. */
#define NB_PARALLEL_FOR(work, ...) NB_PARALLEL((work) >= NB_PAR_MIN, for schedule(static), __VA_ARGS__)

#endif
