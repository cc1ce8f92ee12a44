/* nabla.h — the one public header of libnabla: float32 tensors, reverse-mode
 * automatic differentiation (with exact second order), layers, losses,
 * optimizers, model files and numerical tools.
 *
 * Memory model (read this first)
 * ------------------------------
 * - Parameters and other long-lived tensors are made with nb_tensor_new*() and
 *   freed with nb_tensor_free(). They own their data and, when they require a
 *   gradient, a persistent .grad buffer that nb_backward() accumulates into.
 * - Every tensor produced by an op lives in the current *step arena*. One call
 *   to nb_arena_reset() frees all of them at once (a pointer reset, not a free
 *   per tensor); memory is reused on the next step, so a training loop does not
 *   grow. Never keep an op result across a reset: copy it with nb_tensor_clone().
 * - The tape (the record of ops for backward) lives in the same arena.
 *
 * Errors
 * ------
 * - Bad outside data (files, configs, arguments) is not a bug: such functions
 *   return NULL or a negative int and set a message retrievable with
 *   nb_errmsg(), naming the file, line or field and what was expected.
 * - Programmer errors inside a graph (shape mismatch between ops) abort with a
 *   message naming the op and the shapes (nb_fatal).
 *
 * Threads: the library uses OpenMP inside kernels; one user thread drives it.
 */
#ifndef NABLA_H
#define NABLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_VERSION "0.1.0"
#define NB_MAXDIM 6 /* tensors have 0..NB_MAXDIM dimensions */

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* The message of the last recoverable error on this thread ("" if none). */
const char *nb_errmsg(void);
/* Sets the message (printf-style) and returns -1, for `return nb_error(...)`. */
int nb_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nb_clear_error(void);
/* Prints "nabla: <op>: <message>" to stderr and aborts: for programmer errors. */
_Noreturn void nb_fatal(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------ */
/* Threads and random numbers                                                */
/* ------------------------------------------------------------------------ */

/* Sets the number of threads for OpenMP kernels and OpenBLAS. n <= 0 means:
 * $NABLA_THREADS if set, else all cores. Returns the number in effect. */
int nb_set_threads(int n);
int nb_get_threads(void);

/* PCG32 (O'Neill 2014): one seedable stream drives init, shuffling, dropout
 * and exploration, so the same seed and thread count give the same numbers. */
typedef struct nb_rng { uint64_t state, inc; } nb_rng;
void nb_rng_seed(nb_rng *r, uint64_t seed, uint64_t stream);
uint32_t nb_rng_u32(nb_rng *r);
double nb_rng_uniform(nb_rng *r);            /* [0, 1) with 53 random bits */
double nb_rng_normal(nb_rng *r);             /* N(0, 1), Box-Muller */
uint32_t nb_rng_below(nb_rng *r, uint32_t n); /* uniform in [0, n), unbiased */
void nb_rng_shuffle(nb_rng *r, int64_t *v, int64_t n);
/* The library's global generator, used when an op needs randomness (dropout). */
nb_rng *nb_global_rng(void);
void nb_manual_seed(uint64_t seed);

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct nb_node nb_node;

/* A dense, row-major, contiguous float32 tensor. Fields are public for
 * reading; change them only through the functions below. */
typedef struct nb_tensor {
    float *data;
    int64_t shape[NB_MAXDIM];
    int64_t size;         /* product of shape (1 for a scalar) */
    int ndim;
    bool requires_grad;   /* gradients flow to it */
    bool persistent;      /* heap-owned (nb_tensor_new), not in an arena */
    bool owns_data;       /* data is freed with the tensor */
    struct nb_tensor *grad; /* persistent leaves: accumulated by nb_backward */
    nb_node *node;        /* the op that produced it (NULL for leaves) */
    struct nb_tensor *tgrad; /* scratch: gradient during one backward pass */
    const char *name;     /* optional, for messages and model files */
} nb_tensor;

/* Persistent tensors (heap). shape has ndim entries; checked for overflow. */
nb_tensor *nb_tensor_new(int ndim, const int64_t *shape);           /* zeros */
nb_tensor *nb_tensor_from(int ndim, const int64_t *shape, const float *data); /* copies */
nb_tensor *nb_tensor_clone(const nb_tensor *t);  /* persistent copy of any tensor */
void nb_tensor_free(nb_tensor *t);               /* NULL is fine */
/* Marks a persistent tensor as a parameter/input that needs a gradient and
 * allocates its .grad buffer (zeros). */
void nb_requires_grad(nb_tensor *t, bool on);
void nb_zero_grad(nb_tensor *t);

/* Arena tensors (die at the next nb_arena_reset). */
nb_tensor *nb_empty(int ndim, const int64_t *shape);   /* uninitialized */
nb_tensor *nb_zeros(int ndim, const int64_t *shape);
nb_tensor *nb_ones(int ndim, const int64_t *shape);
nb_tensor *nb_full(int ndim, const int64_t *shape, float v);
nb_tensor *nb_scalar(float v);
nb_tensor *nb_from_data(int ndim, const int64_t *shape, const float *data);
nb_tensor *nb_uniform(int ndim, const int64_t *shape, float lo, float hi, nb_rng *r);
nb_tensor *nb_normal(int ndim, const int64_t *shape, float mean, float std, nb_rng *r);
nb_tensor *nb_empty_like(const nb_tensor *t);
nb_tensor *nb_zeros_like(const nb_tensor *t);
/* A view of a persistent tensor's data with no graph connection. */
nb_tensor *nb_detach(nb_tensor *t);

/* Shape helpers. */
#define NB_SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((const int64_t[]){__VA_ARGS__})
/* Product of dims with overflow check; returns -1 on overflow or a negative dim. */
int64_t nb_shape_numel(int ndim, const int64_t *shape);
bool nb_same_shape(const nb_tensor *a, const nb_tensor *b);
/* Writes "[2, 3, 4]" into buf; returns buf. */
char *nb_shape_str(const nb_tensor *t, char *buf, size_t n);
float nb_item(const nb_tensor *t);   /* value of a one-element tensor */
void nb_fill(nb_tensor *t, float v); /* in place, no graph */
void nb_copy_into(nb_tensor *dst, const nb_tensor *src); /* same size, no graph */
void nb_print(const nb_tensor *t, FILE *f);

/* ------------------------------------------------------------------------ */
/* Step arena and autodiff                                                   */
/* ------------------------------------------------------------------------ */

typedef struct nb_arena nb_arena;
nb_arena *nb_arena_new(void);
void nb_arena_free(nb_arena *a);
/* Makes `a` the arena that ops allocate from on this thread; returns the old
 * one. A default arena exists, so most programs never call this. */
nb_arena *nb_arena_use(nb_arena *a);
nb_arena *nb_arena_current(void);
/* Frees every tensor and tape node made since the last reset, at once. */
void nb_arena_reset(void);
size_t nb_arena_bytes_used(void);     /* bytes handed out since the last reset */
size_t nb_arena_bytes_reserved(void); /* bytes held from the system */
/* Raw scratch memory from the current arena (64-byte aligned). */
void *nb_arena_alloc(size_t bytes);

/* Gradient recording: on by default. Returns the previous setting. */
bool nb_set_grad_enabled(bool on);
bool nb_grad_enabled(void);

/* Reverse mode (eq. 6.45-6.46): from a one-element tensor, accumulates dL/dx
 * into .grad of every persistent leaf that requires a gradient. */
void nb_backward(nb_tensor *loss);
/* Like torch.autograd.grad: returns d(out)/d(wrt[i]) in grads[i] (arena
 * tensors; zeros when out does not depend on wrt[i]) without touching .grad.
 * With create_graph the gradients are themselves on the tape, so they can be
 * differentiated again (exact Hessian-vector products). */
void nb_grad(nb_tensor *out, nb_tensor **wrt, int n, nb_tensor **grads, bool create_graph);
/* Exact Hessian-vector product by double backward: hv[i] = sum_j H_ij v[j]
 * where H is the Hessian of the scalar `loss` w.r.t. params. `loss` must have
 * been computed with gradient recording on. */
void nb_hvp(nb_tensor *loss, nb_tensor **params, nb_tensor **v, int n, nb_tensor **hv);

/* ------------------------------------------------------------------------ */
/* Ops. Each returns a new arena tensor and records itself on the tape.      */
/* Shapes follow NumPy/PyTorch. Axis arguments may be negative.              */
/* ------------------------------------------------------------------------ */

/* Shape ops */
nb_tensor *nb_reshape(nb_tensor *x, int ndim, const int64_t *shape); /* one -1 allowed */
nb_tensor *nb_flatten(nb_tensor *x, int start_axis); /* [a,b,c,d] start 1 -> [a,b*c*d] */
nb_tensor *nb_permute(nb_tensor *x, const int *perm);
nb_tensor *nb_transpose(nb_tensor *x, int axis0, int axis1);
nb_tensor *nb_slice(nb_tensor *x, int axis, int64_t start, int64_t stop); /* [start, stop) */
nb_tensor *nb_concat(nb_tensor **xs, int n, int axis);
/* out[i, ...] = x[idx[i], ...] along axis 0; idx has n entries in [0, x->shape[0]). */
nb_tensor *nb_gather_rows(nb_tensor *x, const int32_t *idx, int64_t n);
/* out has `rows` rows; out[idx[i], ...] += x[i, ...] (adjoint of gather_rows). */
nb_tensor *nb_scatter_rows(nb_tensor *x, const int32_t *idx, int64_t rows);
/* Broadcasts x to shape (NumPy rules), and its adjoint: sums down to shape. */
nb_tensor *nb_broadcast_to(nb_tensor *x, int ndim, const int64_t *shape);
nb_tensor *nb_sum_to(nb_tensor *x, int ndim, const int64_t *shape);

/* Elementwise binary with NumPy broadcasting */
nb_tensor *nb_add(nb_tensor *a, nb_tensor *b);
nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b);
nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b);
nb_tensor *nb_div(nb_tensor *a, nb_tensor *b);
/* With a constant */
nb_tensor *nb_add_scalar(nb_tensor *x, float c);
nb_tensor *nb_mul_scalar(nb_tensor *x, float c);
nb_tensor *nb_neg(nb_tensor *x);
/* Elementwise unary */
nb_tensor *nb_exp(nb_tensor *x);
nb_tensor *nb_log(nb_tensor *x);
nb_tensor *nb_sqrt(nb_tensor *x);
nb_tensor *nb_pow(nb_tensor *x, float p);
nb_tensor *nb_abs(nb_tensor *x);
nb_tensor *nb_square(nb_tensor *x);
/* Not differentiable (gradient zero): used inside backward formulas. */
nb_tensor *nb_sign(nb_tensor *x);               /* -1, 0, 1 */
nb_tensor *nb_step(nb_tensor *x, float lo, float hi); /* x > 0 ? hi : lo */

/* Reductions. axes: a list of n axes (n = 0 means all). keepdim keeps them as 1. */
nb_tensor *nb_sum(nb_tensor *x, const int *axes, int n, bool keepdim);
nb_tensor *nb_mean(nb_tensor *x, const int *axes, int n, bool keepdim);
/* Max over one axis (the gradient goes to the first maximal element). */
nb_tensor *nb_max(nb_tensor *x, int axis, bool keepdim);
nb_tensor *nb_sum_all(nb_tensor *x); /* scalar */
/* Index of the largest entry along the last axis, for each row (no graph). */
void nb_argmax_rows(const nb_tensor *x, int32_t *out);

/* Matrix products. a: [..., m, k] (or [..., k, m] if ta), b: [..., k, n]
 * (or [..., n, k] if tb). Batch dims must match, or b may be 2-D (shared). */
nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b);
nb_tensor *nb_matmul_t(nb_tensor *a, nb_tensor *b, bool ta, bool tb);
/* y = x W^T + b, x: [..., in], w: [out, in] (PyTorch's layout), b: [out] or NULL. */
nb_tensor *nb_linear(nb_tensor *x, nb_tensor *w, nb_tensor *b);

/* Activations (eq. 20: h = max(0,z) + a*min(0,z)) */
nb_tensor *nb_relu(nb_tensor *x);
nb_tensor *nb_leaky_relu(nb_tensor *x, float slope);
/* slope has 1 entry, or one per channel (axis 1 of x). */
nb_tensor *nb_prelu(nb_tensor *x, nb_tensor *slope);
nb_tensor *nb_abs_rect(nb_tensor *x); /* a = -1: |z| */
nb_tensor *nb_sigmoid(nb_tensor *x);
nb_tensor *nb_tanh(nb_tensor *x);
nb_tensor *nb_softmax(nb_tensor *x, int axis);
nb_tensor *nb_log_softmax(nb_tensor *x, int axis);

/* Losses (mean over the batch, as PyTorch's default reduction). */
/* logits [N, C], labels N ints in [0, C): mean of -log softmax(logits)[y]. */
nb_tensor *nb_cross_entropy(nb_tensor *logits, const int32_t *labels);
nb_tensor *nb_mse(nb_tensor *pred, nb_tensor *target);
/* eq. 29, from logits, stable: mean(max(z,0) - z*y + log(1 + exp(-|z|))). */
nb_tensor *nb_bce_logits(nb_tensor *logits, nb_tensor *target);

/* Convolution (cross-correlation, eq. 9.6), NCHW. x: [N, C, H, W],
 * w: [OC, C, KH, KW], b: [OC] or NULL. Padding may differ per side. */
typedef struct nb_conv2d_opts {
    int stride_h, stride_w;       /* 0 means 1 */
    int pad_top, pad_bottom, pad_left, pad_right;
    int dil_h, dil_w;             /* 0 means 1 */
} nb_conv2d_opts;
nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *b, const nb_conv2d_opts *o);
/* 1-D convolution, x: [N, C, L], w: [OC, C, K]. causal pads (K-1)*dilation on
 * the left only, so out[t] sees x[<= t] (WaveNet); otherwise `pad` both sides. */
nb_tensor *nb_conv1d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad, int dilation, bool causal);
/* Pooling, x: [N, C, H, W]; k x k window, stride s (0 means k), padding p. */
nb_tensor *nb_maxpool2d(nb_tensor *x, int k, int s, int p);
nb_tensor *nb_avgpool2d(nb_tensor *x, int k, int s, int p);

/* Embedding: w [V, D], idx n ints in [0, V) -> [n, D]. */
nb_tensor *nb_embedding(nb_tensor *w, const int32_t *idx, int64_t n);
/* Inverted dropout: zeroes with probability p and scales by 1/(1-p) when
 * training; identity otherwise. */
nb_tensor *nb_dropout(nb_tensor *x, float p, bool training, nb_rng *r);

/* ------------------------------------------------------------------------ */
/* Initialization                                                            */
/* ------------------------------------------------------------------------ */

/* fan_in/fan_out of a weight in PyTorch's layout ([out, in, k...]). */
void nb_fans(const nb_tensor *w, int64_t *fan_in, int64_t *fan_out);
void nb_init_uniform(nb_tensor *t, float lo, float hi, nb_rng *r);
void nb_init_normal(nb_tensor *t, float mean, float std, nb_rng *r);
void nb_init_xavier_uniform(nb_tensor *w, nb_rng *r); /* U(+-sqrt(6/(in+out))) */
void nb_init_xavier_normal(nb_tensor *w, nb_rng *r);  /* N(0, 2/(in+out)) */
void nb_init_he_uniform(nb_tensor *w, nb_rng *r);     /* U(+-sqrt(6/in)) */
void nb_init_he_normal(nb_tensor *w, nb_rng *r);      /* N(0, 2/in) */

/* ------------------------------------------------------------------------ */
/* Optimizers                                                                */
/* ------------------------------------------------------------------------ */

/* A parameter as an optimizer sees it. decay: whether weight decay applies
 * (eq. 7.1: weights yes, biases no). */
typedef struct nb_param {
    nb_tensor *t;
    bool decay;
} nb_param;

typedef enum { NB_SGD, NB_ADAM, NB_ADAMW } nb_optim_kind;
typedef struct nb_optim_opts {
    nb_optim_kind kind;
    float lr;
    float momentum;      /* SGD: v <- mu v + g; w <- w - lr v (PyTorch) */
    bool nesterov;       /* SGD: w <- w - lr (g + mu v) */
    float beta1, beta2, eps; /* Adam; 0 means 0.9, 0.999, 1e-8 */
    float weight_decay;  /* SGD/Adam: adds wd*w to the gradient (L2, eq. 7.1);
                            AdamW: decoupled, w <- w - lr*wd*w */
} nb_optim_opts;
typedef struct nb_optim nb_optim;
nb_optim *nb_optim_new(const nb_optim_opts *o, nb_param *params, int n);
void nb_optim_free(nb_optim *o);
void nb_optim_step(nb_optim *o);      /* uses each parameter's .grad */
void nb_optim_zero_grad(nb_optim *o);
void nb_optim_set_lr(nb_optim *o, float lr);
int64_t nb_optim_steps(const nb_optim *o);
/* Optimizer state as named tensors for checkpoints ("adam.m.<i>", ...):
 * nb_optim_state returns the count and fills names/tensors (owned by o). */
int nb_optim_state(nb_optim *o, const char ***names, nb_tensor ***tensors);
void nb_optim_set_steps(nb_optim *o, int64_t steps);

/* Scales all gradients so their global L2 norm is at most max_norm; returns
 * the norm before clipping. */
float nb_clip_grad_norm(nb_param *params, int n, float max_norm);

/* Learning-rate schedules: the rate for step `step` (0-based). */
float nb_lr_step(float base, int64_t step, int64_t every, float gamma);
float nb_lr_cosine(float base, int64_t step, int64_t total, float min_lr);

/* L-BFGS for full-batch problems. f computes the loss at the current values of
 * params and must call nb_backward on it (grads are zeroed before each call);
 * it returns the loss. Line search: strong Wolfe. Returns the final loss. */
typedef float (*nb_closure)(void *ctx);
typedef struct nb_lbfgs_opts {
    int max_iter;        /* 0 means 100 */
    int history;         /* 0 means 10 */
    float tol_grad;      /* stop when max |g| <= tol_grad; 0 means 1e-5 */
    float tol_change;    /* stop when the loss changes less; 0 means 1e-9 */
    float lr;            /* initial step scale; 0 means 1 */
} nb_lbfgs_opts;
float nb_lbfgs(nb_param *params, int n, nb_closure f, void *ctx, const nb_lbfgs_opts *o, int *iters);

/* ------------------------------------------------------------------------ */
/* Files                                                                     */
/* ------------------------------------------------------------------------ */

/* safetensors (https://huggingface.co/docs/safetensors): a little-endian u64
 * header length, a JSON header, then raw little-endian data. nabla writes F32
 * and reads F32, F16, BF16, F64, I64, I32, U8. */
typedef struct nb_st_entry {
    char *name;
    nb_tensor *t;     /* persistent, converted to float32 */
} nb_st_entry;
typedef struct nb_safetensors {
    nb_st_entry *entries;
    int n;
    char **meta_keys, **meta_vals; /* __metadata__: string -> string */
    int n_meta;
} nb_safetensors;
/* Reads the whole file; NULL with nb_errmsg() on any defect (truncated,
 * overlapping or out-of-range offsets, unknown dtype, bad JSON, ...). */
nb_safetensors *nb_st_read(const char *path);
void nb_st_free(nb_safetensors *st);
nb_tensor *nb_st_get(const nb_safetensors *st, const char *name);
const char *nb_st_meta(const nb_safetensors *st, const char *key);
/* Writes atomically (temp file, fsync, rename). Returns 0 or -1. */
int nb_st_write(const char *path, const char *const *names, nb_tensor *const *tensors, int n,
                const char *const *meta_keys, const char *const *meta_vals, int n_meta);

/* .npy (NumPy format 1.0/2.0/3.0). Reads <f4, <f8, <i4, <i8, |u1, |b1
 * (converted to float32, C order only). Writes <f4 atomically. */
nb_tensor *nb_npy_read(const char *path);
int nb_npy_write(const char *path, const nb_tensor *t);

/* Parses a safetensors/npy image already in memory (used by fuzzers and by
 * the readers above); `what` names the source in error messages. */
nb_safetensors *nb_st_parse(const uint8_t *buf, size_t len, const char *what);
nb_tensor *nb_npy_parse(const uint8_t *buf, size_t len, const char *what);

/* Writes len bytes to path atomically: path.tmp.PID, fsync, rename. */
int nb_write_file_atomic(const char *path, const void *buf, size_t len);
/* Reads a whole file (malloc'd, caller frees). NULL with nb_errmsg(). */
uint8_t *nb_read_file(const char *path, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_H */
