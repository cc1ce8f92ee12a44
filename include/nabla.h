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
 *   What the data holds (a singular A, one class only, a non-finite entry,
 *   too few examples) is said in the data's terms, without a function name,
 *   as a command passes it on after the file's name; a call that only a C
 *   program can make wrong (a NULL argument, an option out of range, a
 *   tensor on the GPU where the host is needed) names the function.
 * - Programmer errors inside a graph (shape mismatch between ops) abort with a
 *   message naming the op and the shapes (nb_fatal).
 *
 * Threads
 * -------
 * Kernels run on OpenMP threads inside each op, products on OpenBLAS's
 * (its OpenMP build). A program may also call the library from threads of
 * its own (pthreads, a server's workers; tests/test_threads.c, `make tsan`):
 * - Per thread, nothing to set up: the step arena (each thread has a default
 *   arena of its own, freed when the thread ends; nb_arena_use switches the
 *   calling thread's only), the tape, nb_set_grad_enabled, nb_errmsg, and
 *   nb_global_rng (every thread's starts in the same state; nb_manual_seed
 *   seeds the calling thread's). Hand an op result to another thread as a
 *   copy (nb_tensor_clone): it lives in the making thread's arena, until
 *   that thread resets it or ends.
 * - Shared, read at once by any number of threads: persistent tensors that
 *   no thread writes, and an nb_net (e.g. from nb_net_load) whose threads
 *   only run nb_net_forward: each gets the outputs a serial run would (turn
 *   recording off with nb_set_grad_enabled(false) to skip the tape);
 *   nb_net_layer_output then holds whichever thread's pass came last, so a
 *   thread that reads layer outputs needs a network of its own (a replica).
 * - One thread at a time: whatever is written. Training one network from
 *   several threads goes through nb_net_replica (one each, and an arena
 *   each) and nb_net_replica_reduce or nb_optim_step_zero; an nb_optim, an
 *   nb_rng, a network being trained, and the other models (char-RNN,
 *   WaveNet, chat, DQN, classical fits) belong to one thread at a time: give
 *   each thread its own, which may be loaded from one file.
 * - Process-wide, set while no other thread is inside the library:
 *   nb_set_threads (every thread's kernels follow it from their next op, so
 *   K user threads that each run ops on N threads ask for K*N: with several
 *   busy user threads, set it to the cores divided among them, or 1),
 *   nb_set_oom_handler. nb_fatal ends the whole process.
 * - Numbers: a thread gets the numbers a single-threaded run with the same
 *   seeds and thread count gets, whatever other threads do meanwhile.
 * - The GPU (NB_CUDA): one user thread at a time (one stream, one cuBLAS
 *   handle).
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
/* C11's _Noreturn, spelled so that C++ code (the CUDA sources, users'
 * programs) can include this header too. */
#ifdef __cplusplus
#define NB_NORETURN [[noreturn]]
#else
#define NB_NORETURN _Noreturn
#endif
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
NB_NORETURN void nb_fatal(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Running out of memory where there is no way back (a parameter made by
 * nb_tensor_new, a block of the step arena) is not a bug, so it does not abort:
 * it calls the out-of-memory handler with the operation and the bytes asked
 * for. The default prints "nabla: out of memory: <op> needs <size>", then the
 * hint of nb_set_oom_hint if one is set, and exits with status 1. A program that embeds
 * the library may install its own (to save work, or to longjmp back to a
 * point where it can give up cleanly); a handler must not return: if it does,
 * the program aborts. nb_set_oom_handler(NULL) restores the default; returns
 * the previous handler. */
typedef void (*nb_oom_handler)(const char *op, size_t bytes);
nb_oom_handler nb_set_oom_handler(nb_oom_handler handler);
/* The hint the default handler ends its message with ("try a smaller --batch
 * or model"), for a program to say what its user can reduce; NULL (the
 * default) gives none. The string is kept, not copied. Returns the previous. */
const char *nb_set_oom_hint(const char *hint);
/* Reports running out of memory for `what` (bytes: the size asked for, 0 if
 * unknown) through the handler above; never returns. The library's own
 * allocations end here, and code built on it may do the same. */
NB_NORETURN void nb_oom(const char *what, size_t bytes);

/* ------------------------------------------------------------------------ */
/* Threads and random numbers                                                */
/* ------------------------------------------------------------------------ */

/* Sets the number of threads for OpenMP kernels and OpenBLAS, for every
 * thread of the process (each takes it up at its next op). n <= 0 means:
 * $NABLA_THREADS if set, else all cores. Returns the number in effect.
 * Call it while no other thread is inside the library. */
int nb_set_threads(int n);
/* The number the calling thread's kernels use (the process-wide one, except
 * inside the classical fits' serial sections, where it is 1). */
int nb_get_threads(void);

/* PCG32 (O'Neill 2014): one seedable stream drives init, shuffling, dropout
 * and exploration, so the same seed and thread count give the same numbers. */
typedef struct nb_rng { uint64_t state, inc; } nb_rng;
void nb_rng_seed(nb_rng *r, uint64_t seed, uint64_t stream);
uint32_t nb_rng_u32(nb_rng *r);
double nb_rng_uniform(nb_rng *r);            /* [0, 1) with 53 random bits */
double nb_rng_normal(nb_rng *r);             /* N(0, 1), Box-Muller */
uint32_t nb_rng_below(nb_rng *r, uint32_t n); /* uniform in [0, n), unbiased; n >= 1 */
void nb_rng_shuffle(nb_rng *r, int64_t *v, int64_t n);
/* A generator's state as text, "hex:hex" (16 digits each), so that a
 * checkpoint's __metadata__ can hold it, and back: 0, or -1 when s is not
 * exactly such a text with an odd second number (no message: the caller
 * names the file and key). */
#define NB_RNG_TEXT 34
void nb_rng_to_text(const nb_rng *r, char buf[NB_RNG_TEXT]);
int nb_rng_from_text(const char *s, nb_rng *r);
/* The library's global generator, used when an op needs randomness (dropout)
 * and is given no generator: one per thread, each starting in the same state;
 * nb_manual_seed seeds the calling thread's. */
nb_rng *nb_global_rng(void);
void nb_manual_seed(uint64_t seed);

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct nb_node nb_node;

/* Where a tensor's data lives. NB_CUDA exists in every build; a build
 * without the CUDA backend (make CUDA=1) reports it unavailable. */
typedef enum nb_device { NB_CPU = 0, NB_CUDA = 1 } nb_device;

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
    nb_device device;     /* where data lives: NB_CUDA data is not host memory */
} nb_tensor;

/* Persistent tensors (heap). shape has ndim entries; checked for overflow. */
nb_tensor *nb_tensor_new(int ndim, const int64_t *shape);           /* zeros */
nb_tensor *nb_tensor_from(int ndim, const int64_t *shape, const float *data); /* copies */
nb_tensor *nb_tensor_clone(const nb_tensor *t);  /* persistent copy of any tensor */
/* NULL is fine; an arena tensor is fatal. As with free(), a tensor freed
 * twice, or used after it is freed (by an optimizer or a network that holds
 * it), is undefined: nothing can check that. */
void nb_tensor_free(nb_tensor *t);
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

/* Devices. Ops run where their inputs are and put their result there; an op
 * given tensors of two devices is an error naming the op, and an op that has
 * no GPU implementation yet says so rather than reading device memory. */
/* "cpu" or "cuda" (the names --device takes): 0, or -1 with nb_errmsg(). */
int nb_device_parse(const char *s, nb_device *d);
const char *nb_device_str(nb_device d);
/* 0 when d can be used (the CPU always; NB_CUDA when the library was built
 * with CUDA and a GPU answers), else -1 with nb_errmsg() saying why. The
 * first NB_CUDA call initializes the GPU. */
int nb_device_ready(nb_device d);
/* The GPU's name after nb_device_ready(NB_CUDA) succeeded, else "". */
const char *nb_device_name(nb_device d);
/* Moves a persistent tensor's data (and its .grad) to device d in place, so
 * that whatever holds the tensor (a network, an optimizer) keeps it. */
void nb_tensor_move(nb_tensor *t, nb_device d);
/* Copies between a tensor on any device and host memory of t->size floats. */
void nb_tensor_read(const nb_tensor *t, float *dst);
void nb_tensor_write(nb_tensor *t, const float *src);
/* x on device d as an arena tensor (x itself when it is there already); the
 * gradient flows back to x's device. How a batch goes to the GPU and a
 * result comes back. */
nb_tensor *nb_to(nb_tensor *x, nb_device d);

/* ------------------------------------------------------------------------ */
/* Step arena and autodiff                                                   */
/* ------------------------------------------------------------------------ */

typedef struct nb_arena nb_arena;
nb_arena *nb_arena_new(void);
/* Frees an arena, its tensors and its memory; the calling thread's default
 * arena is emptied instead (its memory returned), and stays usable. Free an
 * arena only while no thread uses it; another thread's default arena is not
 * freed by hand: it goes when its thread ends. */
void nb_arena_free(nb_arena *a);
/* Makes `a` the arena that ops allocate from on this thread (NULL: the
 * thread's default); returns the old one. Every thread has a default arena
 * of its own, so most programs never call this. */
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
 * into .grad of every persistent leaf that requires a gradient. The tape
 * stays until nb_arena_reset, so a second call on the same loss adds the
 * gradient again (as PyTorch's retain_graph=True would). A loss that depends
 * on no tensor requiring a gradient (made with recording off, or from
 * constants only) is a programmer error: nb_fatal, as PyTorch raises. */
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
nb_tensor *nb_permute(nb_tensor *x, const int *perm); /* out.shape[k] = x.shape[perm[k]] */
nb_tensor *nb_transpose(nb_tensor *x, int axis0, int axis1);
/* [start, stop) along axis; negative bounds count from the end (Python's x[-3:-1]). */
nb_tensor *nb_slice(nb_tensor *x, int axis, int64_t start, int64_t stop);
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
 * w: [OC, C, KH, KW], b: [OC] or NULL -> [N, OC, OH, OW] with
 * OH = (H + pad_top + pad_bottom - dil_h*(KH-1) - 1) / stride_h + 1 (OW alike).
 * Padding may differ per side; o may be NULL (stride 1, no padding). Its
 * backward is made of convolutions, so it differentiates to any order. */
typedef struct nb_conv2d_opts {
    int stride_h, stride_w;       /* 0 means 1 */
    int pad_top, pad_bottom, pad_left, pad_right;
    int dil_h, dil_w;             /* 0 means 1 */
} nb_conv2d_opts;
nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *b, const nb_conv2d_opts *o);
/* 1-D convolution, x: [N, C, L], w: [OC, C, K]. causal pads (K-1)*dilation on
 * the left only, so out[t] sees x[<= t] (WaveNet); otherwise `pad` both sides. */
nb_tensor *nb_conv1d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad, int dilation, bool causal);
/* Pooling, x: [N, C, H, W]; k x k window, stride s (0 means k), padding
 * p <= k/2 -> [N, C, (H + 2p - k)/s + 1, (W + 2p - k)/s + 1]. Max: padding
 * never wins, a NaN does, the gradient goes to the first maximum. Average:
 * padding counts as zeros in a k*k divisor (PyTorch's count_include_pad). */
nb_tensor *nb_maxpool2d(nb_tensor *x, int k, int s, int p);
nb_tensor *nb_avgpool2d(nb_tensor *x, int k, int s, int p);

/* Embedding: w [V, D], idx n ints in [0, V) -> [n, D]. */
nb_tensor *nb_embedding(nb_tensor *w, const int32_t *idx, int64_t n);
/* Inverted dropout: zeroes with probability p and scales by 1/(1-p) when
 * training; identity otherwise (returns x itself). p outside [0, 1) is
 * fatal. r NULL means nb_global_rng(). */
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
/* Moves n parameters (and their .grad) to device d: nb_tensor_move on each,
 * as nb_net_to, nb_charrnn_to and nb_dualenc_to do for their models. */
void nb_params_to(const nb_param *params, int n, nb_device d);

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
/* Copies the params array (the tensors stay the caller's; they must be
 * persistent). Fields that do not apply to the kind are ignored. Returns NULL
 * with nb_errmsg() for a bad option (negative lr, beta outside (0, 1),
 * Nesterov without momentum, ...). */
nb_optim *nb_optim_new(const nb_optim_opts *o, nb_param *params, int n);
void nb_optim_free(nb_optim *o);
/* One update from each parameter's .grad (parameters with no .grad buffer
 * are skipped). Adam's bias correction uses t = nb_optim_steps() after the
 * step is counted. */
void nb_optim_step(nb_optim *o);
void nb_optim_zero_grad(nb_optim *o);
/* nb_optim_step then nb_optim_zero_grad, in one pass over the gradients. For
 * data-parallel training the gradient of parameter i is its .grad plus
 * extra[k][i] for each k < nextra (tensors of the parameter's size, e.g. a
 * replica's .grad), and those are zeroed too. extra may be NULL if nextra
 * is 0. */
void nb_optim_step_zero(nb_optim *o, nb_tensor **const *extra, int nextra);
void nb_optim_set_lr(nb_optim *o, float lr);
int64_t nb_optim_steps(const nb_optim *o);
/* Optimizer state as named persistent tensors for checkpoints, allocated
 * (zeros) by nb_optim_new so they can be restored before the first step:
 * SGD with momentum "sgd.v.<i>"; Adam/AdamW "adam.m.<i>", "adam.v.<i>"
 * (i: the parameter's index). nb_optim_state returns the count and fills
 * names/tensors (arrays and tensors owned by o; either pointer may be NULL).
 * Resuming = copying saved values into these tensors and nb_optim_set_steps;
 * the run then continues bit for bit as if never interrupted. */
int nb_optim_state(nb_optim *o, const char ***names, nb_tensor ***tensors);
void nb_optim_set_steps(nb_optim *o, int64_t steps);

/* The global L2 norm of the gradients: over every parameter's .grad (those
 * without one skipped), squares summed in double, the same for every thread
 * count. NaN or inf when a gradient holds a NaN or an inf: the check before
 * an optimizer step that would write them into the weights. */
double nb_grad_norm(const nb_param *params, int n);
/* Scales all gradients so their global L2 norm (nb_grad_norm) is at most
 * max_norm: by max_norm / (norm + 1e-6) when that is below 1, as PyTorch's
 * clip_grad_norm_. Returns the norm before clipping. A NaN or infinite norm
 * leaves the gradients unchanged (PyTorch would make every finite one 0 and
 * each inf a NaN) and is returned: the caller must not step (as PyTorch's
 * error_if_nonfinite=True, which raises). */
float nb_clip_grad_norm(nb_param *params, int n, float max_norm);

/* Learning-rate schedules: the rate for step `step` (0-based).
 * step: base * gamma^floor(step / every) (every > 0).
 * cosine: min + (base - min) (1 + cos(pi step / total)) / 2, min from step
 * total on. */
float nb_lr_step(float base, int64_t step, int64_t every, float gamma);
float nb_lr_cosine(float base, int64_t step, int64_t total, float min_lr);

/* L-BFGS for full-batch problems. f computes the loss at the current values of
 * params and must call nb_backward on it (grads are zeroed before each call);
 * it returns the loss. Each call of f runs in a scratch arena of its own that
 * is reset right after, so a long run does not grow memory: tensors made
 * before nb_lbfgs (data, targets) stay valid, f's own tensors do not outlive
 * the call. Line search: strong Wolfe; direction math in double. Stops after
 * max_iter iterations, when max |g| <= tol_grad, or when the loss or the step
 * changes less than tol_change. Leaves params at the best point found with
 * their .grad holding the gradient there; returns the loss there and, if
 * iters is not NULL, the number of iterations (line searches) done. */
typedef float (*nb_closure)(void *ctx);
typedef struct nb_lbfgs_opts {
    int max_iter;        /* 0 means 100 */
    int history;         /* 0 means 10 */
    float tol_grad;      /* stop when max |g| <= tol_grad; 0 means 1e-5 */
    float tol_change;    /* stop when the loss changes less; 0 means 1e-9 */
    float lr;            /* initial step scale; 0 means 1 */
    int (*stop)(void *ctx); /* NULL, or asked before each iteration (with f's ctx): nonzero ends the run
                               there, as max_iter would (a signal handler's flag, a time budget) */
} nb_lbfgs_opts;
float nb_lbfgs(nb_param *params, int n, nb_closure f, void *ctx, const nb_lbfgs_opts *o, int *iters);

/* ------------------------------------------------------------------------ */
/* Networks from a plain-text description (NET.cfg)                         */
/* ------------------------------------------------------------------------ */

/* A feed-forward or convolutional network described in the spirit of
 * Darknet's .cfg: a [net] section, then layers in order, each a [section] of
 * key = value lines ('#' starts a comment):
 *
 *   [net]      input = 1x28x28   (C x H x W, or a feature count)
 *   [conv2d]   out, kernel, stride = 1, padding = 0, dilation = 1, name, activation, init
 *   [dense]    out, name, activation, init
 *   [maxpool]  size, stride = size, padding = 0        [avgpool] (same keys)
 *   [flatten]  [dropout] p
 *   [relu] [leaky] slope = 0.01  [prelu] name, init = 0.25  [abs] [sigmoid] [tanh]
 *
 * `activation = relu|leaky|prelu|abs|sigmoid|tanh|linear` on a dense or conv
 * layer appends that activation layer. Parameters are named as PyTorch's
 * state_dict would name them: conv layers conv1, conv2, ...; dense layers
 * fc1, fc2, ...; PReLU layers prelu1, ... (or `name = ...`), with
 * `.weight` [out, in(, kh, kw)] and `.bias` [out]. */
typedef struct nb_net nb_net;
struct nb_safetensors;

/* Parses a description; `file` names it in errors ("net.cfg:7: ..."). */
nb_net *nb_net_parse(const char *text, const char *file);
nb_net *nb_net_load_cfg(const char *path);
void nb_net_free(nb_net *net);
/* The text it was parsed from (stored in model files). */
const char *nb_net_source(const nb_net *net);
/* Infers every layer's shape from the [net] input (or the given one when
 * ndim > 0) and creates the parameters, initialized from rng (He for the
 * ReLU family, Xavier otherwise, biases zero; `init = ` overrides). A given
 * shape has 1 to 3 dims (a feature count .. C x H x W), each >= 1.
 * Returns 0, or -1 with nb_errmsg() naming the layer's line. */
int nb_net_build(nb_net *net, int ndim, const int64_t *input_shape, nb_rng *rng);
/* The input shape without the batch dim, and the number of outputs. */
int nb_net_input_shape(const nb_net *net, int64_t *shape);
int64_t nb_net_outputs(const nb_net *net);
/* Forward pass on a batch x [N, ...input shape]. training enables dropout.
 * Returns [N, outputs]. */
nb_tensor *nb_net_forward(nb_net *net, nb_tensor *x, bool training, nb_rng *rng);
/* After a forward: the number of layers, each layer's output of the last
 * forward, its name ("fc1", "relu2") and whether it is a hidden activation
 * (the h of eq. 7.48). */
int nb_net_layers(const nb_net *net);
nb_tensor *nb_net_layer_output(const nb_net *net, int i);
const char *nb_net_layer_name(const nb_net *net, int i);
bool nb_net_layer_is_activation(const nb_net *net, int i);
/* The parameters in a stable order, with decay set for weights only (eq. 7.1). */
int nb_net_params(nb_net *net, nb_param **params);
int nb_net_param_names(const nb_net *net, const char ***names);
/* Moves the parameters (and their gradients) to device d; inputs given to
 * nb_net_forward must then be there too (nb_to). nb_net_device says where
 * they are (NB_CPU for a network without parameters). */
void nb_net_to(nb_net *net, nb_device d);
nb_device nb_net_device(const nb_net *net);
/* A readable summary: layers, shapes, parameter counts. */
void nb_net_summary(const nb_net *net, FILE *f);
/* Data parallelism. A replica shares the network's weights (the same
 * memory, never copied) but has gradient buffers and layer outputs of its
 * own, so that threads can each run the forward and backward pass of one
 * shard of a batch at the same time, each in an arena of its own
 * (nb_arena_use). nb_net_replica_reduce adds the replicas' gradients into
 * the network's .grad and zeroes theirs; nb_optim_step_zero does the same as
 * part of the optimizer's pass. Free a replica before its network. CPU
 * networks only: a network on the GPU is fatal (it trains as one). */
nb_net *nb_net_replica(nb_net *net);
void nb_net_replica_reduce(nb_net *net, nb_net *const *replicas, int n);

/* Labelled examples for classification, kept compactly: images as bytes
 * (value / 255 on the way into the network), other features as floats. */
typedef struct nb_dataset {
    int64_t n;                 /* number of examples */
    int nd;                    /* one example's shape: [1, 28, 28] or [F] */
    int64_t shape[3];
    uint8_t *u8;               /* n * numel bytes (images), or NULL */
    float *f32;                /* n * numel floats (features), or NULL */
    int32_t *y;                /* n labels in [0, nclass) */
    int nclass;
} nb_dataset;
/* spec: "fashion-mnist" (Debian's dataset-fashion-mnist package), a folder
 * of MNIST-format IDX files, or a data file of any name, its format told by
 * content (nb_data_kind): CSV (numeric features, the label in the last
 * column, an optional header row), LIBSVM text, or a 2-D .npy array with the
 * label last, as `nabla convert` writes them; labels must be integer classes
 * in [0, 100000], and the last 10% of a file's rows are its test split.
 * train picks the split. 0, or -1 with nb_errmsg(), which names a file of
 * another kind ("not a data file: it looks like a PNG image"). */
int nb_dataset_load(const char *spec, bool train, nb_dataset *d);
void nb_dataset_free(nb_dataset *d);
/* Examples idx[0..n) as an arena tensor [n, shape...]; labels copied to y. */
nb_tensor *nb_dataset_batch(const nb_dataset *d, const int64_t *idx, int64_t n, int32_t *y);

/* Whether d fits net: as many values per example as the network takes, and a
 * class for every label among its outputs. 0, or -1 with nb_errmsg() naming
 * model and data (the names for the message) and what would fit. */
int nb_net_check_data(const nb_net *net, const nb_dataset *d, const char *model, const char *data);
/* Classification metrics of a network on a data set (no gradient, except
 * for the FGSM examples when adv_eps > 0). */
typedef struct nb_eval_result {
    double loss, accuracy;     /* mean cross-entropy, fraction correct */
    double zero_fraction;      /* exact zeros among hidden activations (eq. 7.48's h) */
    double adv_accuracy;       /* on FGSM examples (eq. 21), when adv_eps > 0 */
    int64_t n;
} nb_eval_result;
void nb_net_evaluate(nb_net *net, const nb_dataset *d, int64_t batch, float adv_eps, nb_eval_result *r);
/* eq. 21 (FGSM): x' = clip(x + eps * sign(grad_x J(theta; x, y)), 0, 1), an
 * arena tensor without graph. */
nb_tensor *nb_fgsm(nb_net *net, nb_tensor *x, const int32_t *y, float eps);

/* Model files: the parameters as tensors, the description and any extra
 * key/value metadata in __metadata__ ("nabla.net" holds the description).
 * Extra tensors (optimizer state) are stored after the parameters. */
int nb_net_save(const nb_net *net, const char *path, const char *const *keys, const char *const *vals, int nmeta,
                const char *const *extra_names, nb_tensor *const *extra, int nextra);
/* Loads a model written by nb_net_save: rebuilds the network from the stored
 * description and checks every parameter's presence and shape. The
 * safetensors object stays available in *st (may be NULL) for metadata and
 * extra tensors; free it with nb_st_free. */
nb_net *nb_net_load(const char *path, struct nb_safetensors **st);

/* ------------------------------------------------------------------------ */
/* Files                                                                     */
/* ------------------------------------------------------------------------ */

/* safetensors (https://huggingface.co/docs/safetensors): a little-endian u64
 * header length, a JSON header, then raw little-endian data. nabla writes F32
 * and reads F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL (converted to
 * float32). Entries and metadata keep the order of the file's header. */
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
/* Writes F32 tensors in the given order (names unique, not "__metadata__"),
 * the header padded with spaces to a multiple of 8 bytes; atomically (temp
 * file, fsync, rename). Returns 0 or -1 with nb_errmsg(). */
int nb_st_write(const char *path, const char *const *names, nb_tensor *const *tensors, int n,
                const char *const *meta_keys, const char *const *meta_vals, int n_meta);

/* .npy (NumPy format 1.0/2.0/3.0). Reads <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1
 * (converted to float32; C order, little-endian only: other files get a clear
 * error). Writes <f4, version 1.0, atomically. */
nb_tensor *nb_npy_read(const char *path);
int nb_npy_write(const char *path, const nb_tensor *t);

/* Parses a safetensors/npy image already in memory (used by fuzzers and by
 * the readers above); `what` names the source in error messages. */
nb_safetensors *nb_st_parse(const uint8_t *buf, size_t len, const char *what);
nb_tensor *nb_npy_parse(const uint8_t *buf, size_t len, const char *what);

/* Writes len bytes to path atomically: path.tmp.PID in the same folder,
 * fsync, rename over path, fsync the folder. On failure the temporary file
 * is removed, any old file at path is untouched, and it returns -1. A
 * symbolic link is followed (the link stays, its target is replaced); a
 * device, FIFO or socket (/dev/stdout, /dev/null) is written in place. */
int nb_write_file_atomic(const char *path, const void *buf, size_t len);
/* Reads a whole file (malloc'd, caller frees; followed by a NUL byte not
 * counted in *len, so text can be used as a C string). Files over 8 GiB are
 * refused. NULL with nb_errmsg(). */
uint8_t *nb_read_file(const char *path, size_t *len);

/* What a file is, told from its first bytes: for the data loaders, which
 * pick their format by content (the name only breaks ties), and for the
 * readers, which name a file of the wrong kind ("m.st: not a nabla model
 * file: it looks like text") rather than report defects it never had. */
typedef enum nb_file_kind {
    NB_FILE_MISSING,     /* cannot be opened (nb_sniff_file only) */
    NB_FILE_FOLDER,      /* (nb_sniff_file only) */
    NB_FILE_EMPTY,
    NB_FILE_SAFETENSORS, /* u64 header length, then '{': a model of train, charrnn, dqn, chat, wavenet */
    NB_FILE_FIT_MODEL,   /* safetensors whose __metadata__ "nabla.model" is a kind of nabla fit ("svm") */
    NB_FILE_PNG,
    NB_FILE_JPEG,
    NB_FILE_GZIP,        /* gzip of anything but IDX */
    NB_FILE_NPY,
    NB_FILE_IDX,         /* 0, 0, type, ndim; plain or gzip'd */
    NB_FILE_LOG,         /* CSV whose header starts "epoch," or "step," (nabla train, charrnn, dqn --log) */
    NB_FILE_CSV,         /* lines with commas, or one number a line */
    NB_FILE_LIBSVM,      /* "label index:value ..." lines */
    NB_FILE_TEXT,        /* other text: no NUL byte, few control characters */
    NB_FILE_BINARY,      /* anything else */
    NB_FILE_UTF16,       /* text in UTF-16 (a byte-order mark, or ASCII with zero bytes between): nabla reads UTF-8 */
} nb_file_kind;
/* The kind of the file that starts with buf[0..len) (its first
 * NB_SNIFF_BYTES or more suffice; a safetensors header is searched as text
 * for "nabla.model" where it is cut). Never fails. */
#define NB_SNIFF_BYTES 65536
nb_file_kind nb_sniff(const uint8_t *buf, size_t len);
/* The same for the file at path: its first NB_SNIFF_BYTES (and the whole
 * header of a safetensors file, up to 16 MiB). Sets no error. */
nb_file_kind nb_sniff_file(const char *path);
/* nb_sniff_file for a data file, the extension breaking ties: TEXT or EMPTY
 * becomes CSV for FILE.csv and LIBSVM for FILE.libsvm or FILE.svm, so that
 * the parser the name asks for reports the line that is wrong. The loaders
 * of data (nb_dataset_load, nabla fit's) read FOLDER (IDX files), CSV, LOG,
 * LIBSVM and NPY; for any other kind nb_errmsg() is set to what the file is
 * instead ("d.png: not a data file: it looks like a PNG image"). */
nb_file_kind nb_data_kind(const char *path);
/* "a PNG image", "CSV text", "an empty file", ...: the kind as a noun, for
 * "it looks like %s". */
const char *nb_file_kind_name(nb_file_kind k);

/* ------------------------------------------------------------------------ */
/* Data sets                                                                 */
/* ------------------------------------------------------------------------ */

/* IDX files (MNIST's format), gzip-compressed or plain. Images: magic
 * 0x00000803, a persistent [n, h, w] tensor of byte / 255. Labels: magic
 * 0x00000801, n int32 values (malloc'd). NULL with nb_errmsg() on a wrong
 * magic, bad sizes, a truncated or corrupt file. */
nb_tensor *nb_idx_read_images(const char *path, int64_t *n, int64_t *h, int64_t *w);
int32_t *nb_idx_read_labels(const char *path, int64_t *n);
/* In-memory IDX parser (used by the readers above and by the fuzzer): checks
 * that buf is an unsigned-byte IDX file with ndim (1..3) dimensions and
 * exactly the bytes its sizes describe; fills dims and returns a pointer to
 * the data inside buf, or NULL with nb_errmsg(). */
const uint8_t *nb_idx_parse(const uint8_t *buf, size_t len, const char *what, int ndim, int64_t *dims);
/* MNIST, Fashion-MNIST or another MNIST-format set from dir:
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte, each with or without .gz.
 * Checks matching counts and images of at least 1x1. Fills out (nb_dataset,
 * above) with nd = 3, shape {1, H, W}, the pixels as bytes in u8, f32 NULL,
 * nclass one more than the split's largest label (10 for MNIST); u8 and y are malloc'd
 * (nb_dataset_free releases them). Returns 0, or -1 with nb_errmsg() and out
 * zeroed. */
int nb_mnist_load(const char *dir, bool train, nb_dataset *out);

/* ------------------------------------------------------------------------ */
/* Linear algebra, probability, curvature                                    */
/* ------------------------------------------------------------------------ */

/* Conventions of this section. Inputs are float32 tensors of any kind
 * (persistent or arena); they are read, never modified, and no graph is
 * recorded. The work is done in double precision through LAPACK, and every
 * tensor result is a new *persistent* tensor that the caller frees with
 * nb_tensor_free(). Functions return 0 (or a tensor) on success and -1 (or
 * NULL) with nb_errmsg() set on bad input: NULL, the wrong rank, an empty
 * matrix, a non-square or non-symmetric matrix where one is required, a NaN
 * or infinite entry, a singular matrix where an inverse is needed, or a
 * LAPACK failure. Matrices are 2-D [rows, cols], row-major. "Symmetric" means
 * |A_ij - A_ji| <= 1e-5 max|A| (float32 rounding); (A + A^T)/2 is then used. */

/* eq. 2.40 for a real symmetric A [n, n]: A = Q diag(w) Q^T with w [n] the
 * eigenvalues sorted descending (the notes' convention) and Q [n, n] holding
 * the orthonormal eigenvectors as columns (column i belongs to w[i]; its
 * largest-magnitude entry is made positive, so results are reproducible).
 * Q may be NULL when only the eigenvalues are wanted. LAPACK dsyevd. */
int nb_linalg_eigh(const nb_tensor *A, nb_tensor **w, nb_tensor **Q);
/* Eigenvalues of a general square A [n, n] (LAPACK dgeev): w [n, 2] holds
 * (real, imaginary) pairs, sorted by descending real part, then descending
 * imaginary part, so a complex-conjugate pair is adjacent (+ first). */
int nb_linalg_eig(const nb_tensor *A, nb_tensor **w);
/* Singular value decomposition, eq. 10: A = U D V^T for A [m, n], with
 * k = min(m, n) and s [k] the diagonal of D, descending. full: U [m, m] and
 * Vt [n, n]; otherwise the thin form U [m, k], Vt [k, n]. Pairs of singular
 * vectors are sign-normalized like nb_linalg_eigh's. U and Vt may both be
 * NULL to compute s only. LAPACK dgesdd. */
int nb_linalg_svd(const nb_tensor *A, bool full, nb_tensor **U, nb_tensor **s, nb_tensor **Vt);
/* Moore-Penrose pseudoinverse by eq. 11, A+ = V D+ U^T, for any A [m, n];
 * returns [n, m]. Singular values <= rcond * s_max are treated as zero (their
 * reciprocal is not taken); rcond <= 0 means max(m, n) * FLT_EPSILON, the
 * usual cutoff for float32 data. */
nb_tensor *nb_linalg_pinv(const nb_tensor *A, double rcond);
/* Inverse of a square non-singular A [n, n] (LU, dgetrf/dgetrs). A singular
 * or numerically singular A (reciprocal condition number below DBL_EPSILON,
 * estimated by dgecon) is an error. */
nb_tensor *nb_linalg_inv(const nb_tensor *A);
/* Determinant of a square A [n, n] by LU with partial pivoting (dgetrf): the
 * product of U's diagonal times the permutation's sign (= prod of the
 * eigenvalues). A singular A gives 0, or a value at rounding level when it
 * is singular only up to rounding (not an error); a determinant beyond
 * double range gives +-inf. */
int nb_linalg_det(const nb_tensor *A, double *det);
/* The same as sign and log|det|, which never overflow: sign is -1, 0 or 1
 * (0 with logabsdet = -inf for a singular A). */
int nb_linalg_slogdet(const nb_tensor *A, double *sign, double *logabsdet);
/* Condition number of A [m, n]. For a symmetric A, eq. 4.2:
 * max_ij |lambda_i / lambda_j| from its eigenvalues; otherwise
 * s_max / s_min over the k = min(m, n) singular values (the two agree for a
 * symmetric A). A singular A (smallest value <= max(m, n) * DBL_EPSILON
 * times the largest; also the zero matrix) gives +inf. */
int nb_linalg_cond(const nb_tensor *A, double *cond);

typedef enum { NB_NORM_L1, NB_NORM_L2, NB_NORM_INF, NB_NORM_FRO } nb_norm_kind;
/* Norms as numpy.linalg.norm computes them. For a vector (ndim 0 or 1):
 * L1 = sum |x_i|, L2 = sqrt(sum x_i^2), INF = max |x_i| (the notes'
 * ||x||_inf), FRO = L2. For a matrix (ndim 2), the induced norms: L1 = the
 * largest column sum of |a_ij|, L2 = s_max (spectral), INF = the largest row
 * sum, and FRO = sqrt(sum a_ij^2). An empty tensor has norm 0. Other ranks are
 * an error (reshape first). */
int nb_linalg_norm(const nb_tensor *A, nb_norm_kind kind, double *out);

typedef enum {
    NB_INDEFINITE,               /* eigenvalues of both signs */
    NB_POSITIVE_DEFINITE,        /* all > 0: x^T A x > 0 for every x != 0 */
    NB_POSITIVE_SEMIDEFINITE,    /* all >= 0, some zero */
    NB_NEGATIVE_DEFINITE,
    NB_NEGATIVE_SEMIDEFINITE,
    NB_ZERO_MATRIX               /* all zero (both PSD and NSD) */
} nb_definiteness;
/* Classifies a symmetric A [n, n] by the signs of its eigenvalues (notes
 * §1.1: PD iff all lambda > 0, PSD iff all lambda >= 0). An eigenvalue with
 * |lambda| <= tol * max|lambda| counts as zero; tol <= 0 means
 * n * FLT_EPSILON. */
int nb_linalg_definiteness(const nb_tensor *A, double tol, nb_definiteness *out);
const char *nb_definiteness_name(nb_definiteness d); /* "positive definite", ... */
/* eq. 2.37: 1 if the square A [n, n] satisfies A^T A = A A^T = I to within
 * tol in every entry (tol <= 0 means 1e-5), 0 if not, -1 on error (a
 * non-square A is an error: orthogonality is defined for square matrices).
 * err (may be NULL) gets the largest entry of |A^T A - I| and |A A^T - I|. */
int nb_linalg_is_orthogonal(const nb_tensor *A, double tol, double *err);
/* Solves A X = B for a square non-singular A [n, n] (LU, dgetrf/dgetrs): B
 * [n] gives x [n], B [n, k] gives X [n, k]. Singular or numerically singular
 * A (reciprocal condition number below DBL_EPSILON, estimated by dgecon) is
 * an error; use nb_linalg_lstsq for those. */
nb_tensor *nb_linalg_solve(const nb_tensor *A, const nb_tensor *B);
/* Least squares for any A [m, n]: the X minimizing ||A X - B||_2 and, among
 * minimizers, the one of least norm (X = A+ B; LAPACK dgelsd). B [m] gives
 * x [n], B [m, k] gives X [n, k]. Singular values <= rcond * s_max count as
 * zero (rcond <= 0: max(m, n) * FLT_EPSILON). rank (may be NULL) receives
 * the effective rank of A. */
nb_tensor *nb_linalg_lstsq(const nb_tensor *A, const nb_tensor *B, double rcond, int *rank);

/* Moments of a data matrix X [m, n]: m samples (rows) of n variables
 * (columns); a 1-D X [m] is m samples of one variable. Two-pass, in double.
 * Errors: other ranks, m = 0, m <= ddof, ddof < 0, NaN/inf entries. */
nb_tensor *nb_stats_mean(const nb_tensor *X);          /* [n], eq. 3.9 over the sample */
/* [n]: eq. 3.11, sum_k (x_k - mean)^2 / (m - ddof); ddof 0 is the variance
 * of the sample itself, ddof 1 the unbiased estimate. */
nb_tensor *nb_stats_var(const nb_tensor *X, int ddof);
/* [n, n] covariance matrix, eq. 3.13-3.14: sum_k (x_k - xbar)(x_k - xbar)^T
 * / (m - ddof). ddof 0 is eq. 12 exactly as the notes write it (1/m); ddof 1
 * is the unbiased sample covariance 1/(m - 1) (numpy.cov's default). */
nb_tensor *nb_stats_cov(const nb_tensor *X, int ddof);
/* [n, n] Pearson correlation, cov_ij / sqrt(cov_ii cov_jj): 1 on the
 * diagonal. Rows and columns of a variable with zero variance are NaN (the
 * correlation is undefined there, as in numpy.corrcoef), not an error. */
nb_tensor *nb_stats_corr(const nb_tensor *X);

/* Discrete distributions: p and q hold probabilities (any shape, flattened;
 * the same size when both are given). Each must be finite, >= 0 and sum to 1
 * within 1e-4, else it is an error naming the defect. Results in nats, with
 * 0 log 0 = 0. */
/* eq. 3.9: E_{x~P}[f(x)] = sum_x P(x) f(x); fx holds f at each outcome. */
int nb_stats_expect(const nb_tensor *p, const nb_tensor *fx, double *out);
int nb_stats_entropy(const nb_tensor *p, double *out);   /* H(P) = -sum p log p */
/* H(P, Q) = -sum p log q = H(P) + D_KL(P||Q); +inf if some q_i = 0 < p_i. */
int nb_stats_cross_entropy(const nb_tensor *p, const nb_tensor *q, double *out);
/* eq. 5.60: D_KL(P||Q) = E_{x~P}[log P(x) - log Q(x)] >= 0, = 0 iff P = Q;
 * +inf if some q_i = 0 < p_i. */
int nb_stats_kl(const nb_tensor *p, const nb_tensor *q, double *out);
/* Gaussians in closed form (sigma: standard deviation > 0).
 * H(N(mu, sigma^2)) = 1/2 log(2 pi e sigma^2);
 * D_KL(N1||N2) = log(sigma2/sigma1) + (sigma1^2 + (mu1-mu2)^2) / (2 sigma2^2) - 1/2. */
int nb_stats_normal_entropy(double sigma, double *out);
int nb_stats_normal_kl(double mu1, double sigma1, double mu2, double sigma2, double *out);
/* Multivariate normals, mean mu [k] and covariance S [k, k] symmetric
 * positive definite (checked by Cholesky; not PD is an error).
 * H = 1/2 log det(2 pi e S);
 * D_KL(N1||N2) = 1/2 [tr(S2^-1 S1) + (mu2-mu1)^T S2^-1 (mu2-mu1) - k
 *                     + log det S2 - log det S1]. */
int nb_stats_mvn_entropy(const nb_tensor *S, double *out);
int nb_stats_mvn_kl(const nb_tensor *mu1, const nb_tensor *S1, const nb_tensor *mu2, const nb_tensor *S2,
                    double *out);

/* The distribution of X + Y for independent discrete X and Y (notes §4.2,
 * eq. 25-27: Pr(X + Y = c) = sum over a + b = c of f(a) g(b)). X takes
 * value xv[i] with probability xp[i] (nx >= 1 of them), Y likewise. Values
 * must be finite and distinct (max |x| + max |y| finite), probabilities in [0, 1] summing to 1 within
 * 1e-6; an error names X or Y, the index and the defect. The result: *n sums
 * in ascending order with their probabilities (*sv, *sp: malloc'd, the
 * caller frees both), sums of probability 0 left out, sums a + b closer
 * than 1e-9 (|a| + |b|) (the larger of the two pairs') merged into the
 * smallest (0.1 + 0.2 and 0.3 are one value). Integer values go by eq. 27 on the grid of integers,
 * (f * g)(c) = sum_a f(a) g(c - a), when the grid is small enough (Y's span
 * at most 2^22, (span of sums) * nx at most 2^26); others by eq. 25 over the
 * nx * ny pairs (at most 2^24). 0, or -1 with nb_errmsg(). */
int nb_convolve_pmf(const double *xv, const double *xp, int64_t nx, const double *yv, const double *yp, int64_t ny,
                    double **sv, double **sp, int64_t *n);

/* Curvature tools (notes §1.3, eq. 4.6-4.10), built on nb_grad and exact
 * Hessian-vector products by double backward.
 *
 * The function: f(params, n, ctx) computes its output from params[0..n-1]
 * with nb_* ops and returns it (an arena tensor): one element for the
 * scalar tools, any shape for nb_jacobian. It is called several times and
 * must give the same output for the same parameter values (no fresh dropout
 * masks). A model plugs in by capturing itself and its batch in ctx.
 *
 * The point x is the current content of params: n tensors (persistent, or
 * arena tensors of the caller's arena), N elements in all. Flat vectors of N
 * entries (Jacobian columns, Hessian rows, directions, eigenvectors)
 * concatenate the params in order, each row-major. During a call the params
 * are marked as requiring a gradient (the flag is restored after) and f runs
 * in a private arena that is reset as needed, so the caller's arena tensors
 * stay valid; params' values and .grad are left as they were. Errors (-1 or
 * NULL with nb_errmsg()): n < 1, an empty or NULL param, f returning NULL,
 * the wrong number of elements, or a non-finite value. */
typedef nb_tensor *(*nb_loss_fn)(nb_tensor **params, int n, void *ctx);

/* Jacobian of a vector function, J [M, N] with J_ij = d f_i / d x_j (M = the
 * number of elements of f's output, flattened): row by row, one reverse pass
 * per output. */
nb_tensor *nb_jacobian(nb_loss_fn f, void *ctx, nb_tensor **params, int n);
/* eq. 4.6: the Hessian H [N, N], H_ij = d^2 f / dx_i dx_j, of a scalar f,
 * column by column as exact products H e_j, then symmetrized (H + H^T)/2
 * against float32 rounding. Forms the N x N matrix: N is limited to 16384;
 * use nb_hessian_eigs and nb_hessian_trace for larger models. */
nb_tensor *nb_hessian(nb_loss_fn f, void *ctx, nb_tensor **params, int n);
/* The directional second derivative d^T H d (notes §1.3; pass a unit d for
 * the curvature along it) by one Hessian-vector product. d has N elements
 * (any shape). */
int nb_directional_curvature(nb_loss_fn f, void *ctx, nb_tensor **params, int n, const nb_tensor *d, double *out);

/* The gradient step of eq. 4.9-4.10 at the current point x0. */
typedef struct nb_step_report {
    double loss;      /* f(x0) */
    double grad_norm; /* ||g||, g the gradient at x0 */
    double gHg;       /* g^T H g (one Hessian-vector product) */
    /* eq. 4.10: eps* = g^T g / g^T H g, the minimizer of eq. 4.9's quadratic
     * along -g. +inf when g^T H g <= 0 (the model has no minimum along -g);
     * 0 when g = 0. */
    double epsilon;
    /* eq. 4.9 at eps*: f(x0) - eps* g^T g + 1/2 eps*^2 g^T H g
     * (-inf when eps* is +inf). */
    double predicted;
    double actual;    /* f(x0 - eps* g), evaluated (NaN when eps* is +inf) */
} nb_step_report;
/* Fills r for the scalar f at the current params (restored afterwards).
 * For any other step size eps, eq. 4.9 predicts
 * loss - eps grad_norm^2 + eps^2 gHg / 2. */
int nb_optimal_step(nb_loss_fn f, void *ctx, nb_tensor **params, int n, nb_step_report *r);

typedef enum { NB_CRIT_MINIMUM, NB_CRIT_MAXIMUM, NB_CRIT_SADDLE, NB_CRIT_INCONCLUSIVE } nb_critical;
/* The second-derivative test (notes §1.3) at the current params, assumed a
 * critical point: the Hessian's eigenvalues all positive -> local minimum,
 * all negative -> local maximum, both signs -> saddle point, otherwise (some
 * zero, the rest of one sign) inconclusive. |lambda| <= tol * max|lambda|
 * counts as zero; tol <= 0 means 1e-4 (float32 Hessians carry rounding
 * noise). Forms H (nb_hessian's limit applies). eigenvalues (may be NULL)
 * receives them [N], descending. grad_norm (may be NULL) receives ||g|| so
 * the caller can check that the point is critical. */
int nb_second_derivative_test(nb_loss_fn f, void *ctx, nb_tensor **params, int n, double tol, nb_critical *out,
                              nb_tensor **eigenvalues, double *grad_norm);
const char *nb_critical_name(nb_critical c); /* "minimum", "maximum", "saddle point", "inconclusive" */

typedef struct nb_eigs_opts {
    int max_steps;  /* Krylov dimension limit; 0 means min(N, 2k + 60) */
    double tol;     /* stop when each wanted Ritz pair (theta, y) has residual
                       ||H y - theta y|| <= tol * max|theta|; 0 means 1e-5 */
    bool smallest;  /* the k smallest eigenvalues (ascending) instead */
    nb_rng *rng;    /* start vector; NULL means nb_global_rng() */
} nb_eigs_opts;
/* The k largest (algebraic) eigenvalues of the Hessian of the scalar f,
 * descending, by Lanczos with full reorthogonalization on exact
 * Hessian-vector products: H is never formed, memory is max_steps * N
 * doubles. On an invariant subspace (e.g. repeated eigenvalues) Lanczos
 * restarts with a fresh vector orthogonal to the basis, so multiplicities are
 * found. If the tolerance is not met within max_steps, the Ritz values
 * reached are returned (the extreme ones converge first). eigvals [k];
 * eigvecs (may be NULL) [k, N], unit Ritz vectors as rows, each with its
 * largest-magnitude entry positive. o may be NULL. 1 <= k <= N, else an
 * error. Returns the number of Hessian-vector products used (>= 1), or -1. */
int nb_hessian_eigs(nb_loss_fn f, void *ctx, nb_tensor **params, int n, int k, const nb_eigs_opts *o,
                    nb_tensor **eigvals, nb_tensor **eigvecs);
/* Hutchinson's estimator of tr(H): the mean of z^T H z over `samples`
 * Rademacher vectors z (entries +-1 drawn from rng, or the global generator
 * when NULL; E[z z^T] = I makes it unbiased). One Hessian-vector product per
 * sample, H never formed. std_err (may be NULL) gets the standard error of
 * the mean, sample std / sqrt(samples) (NaN for one sample). samples >= 1. */
int nb_hessian_trace(nb_loss_fn f, void *ctx, nb_tensor **params, int n, int samples, nb_rng *rng, double *trace,
                     double *std_err);

/* ------------------------------------------------------------------------ */
/* Images and charts                                                         */
/* ------------------------------------------------------------------------ */

/* PNG in: any PNG (1-16 bit gray, gray+alpha, RGB, RGBA, palette,
 * interlaced) as a persistent [h, w] tensor of gray levels in [0, 1]: ITU-R
 * BT.601 luma 0.299 R + 0.587 G + 0.114 B of the stored samples (no gamma
 * correction), alpha composited over black. h and w may be NULL. NULL with
 * nb_errmsg() naming the file on a bad signature, a truncated or corrupt
 * file, or a side longer than NB_PNG_MAX_SIDE. */
#define NB_PNG_MAX_SIDE 16384
nb_tensor *nb_png_read_gray(const char *path, int64_t *h, int64_t *w);
/* The same from memory (fuzzers, embedded images); `what` names it in errors. */
nb_tensor *nb_png_parse_gray(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w);
/* PNG out, 8 bits per sample, written atomically (encoded in memory, then
 * nb_write_file_atomic). rgb: h rows of w RGB triples. img: h * w gray levels,
 * clamped to [0, 1] (NaN is black). Sides 1..NB_PNG_MAX_SIDE. 0 or -1. */
int nb_png_write_rgb(const char *path, const uint8_t *rgb, int w, int h);
int nb_png_write_gray(const char *path, const float *img, int w, int h);

/* Colour images, PNG or JPEG recognized by content (not by name). A persistent
 * [3, h, w] tensor (channels first, as conv2d takes them), values in [0, 1]
 * (8-bit and 16-bit samples scaled; gray expanded to three channels; alpha
 * composited over white). Sides 1..NB_IMAGE_MAX_SIDE, w*h bounded too
 * (NB_IMAGE_MAX_PIXELS). NULL with nb_errmsg() naming the file and the defect
 * (not an image, truncated, corrupt, too large). h, w may be NULL. JPEG is
 * decoded by libjpeg-turbo (gray, YCbCr, RGB, CMYK/YCCK; 8-bit precision). */
#define NB_IMAGE_MAX_SIDE 16384
#define NB_IMAGE_MAX_PIXELS ((int64_t)1 << 26)
nb_tensor *nb_image_read(const char *path, int64_t *h, int64_t *w);
nb_tensor *nb_image_parse(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w);
/* Writes a [3, h, w] or [1, h, w] or [h, w] tensor (values clamped to [0, 1],
 * NaN as 0) as .png or .jpg/.jpeg (quality 92) by the extension, atomically; any
 * other extension is an error. 0 or -1 with nb_errmsg(). */
int nb_image_write(const char *path, const nb_tensor *img);
/* Resamples a [C, h, w] image to [C, nh, nw] with a good filter (pixman's
 * separable convolution: a tent reconstruction and a box as wide as the
 * scale, edges extended; in single-precision float, not 8 bits), persistent.
 * Constants stay constant, monotone rows stay monotone. NULL on bad sizes. */
nb_tensor *nb_image_resize(const nb_tensor *img, int64_t nh, int64_t nw);
/* Filters each channel of a [C, h, w] image with one kh x kw kernel (odd
 * sides up to 99, row-major) through nb_conv2d, which computes the
 * cross-correlation of eq. 9.6, S(i, j) = sum I(i + m, j + n) K(m, n) about
 * the kernel's centre; flip turns the kernel by 180 degrees first, giving a
 * true convolution (eq. 9.4). Outside the image the border pixels repeat
 * (edge_pad: a flat image stays flat) or are zero (as a conv layer pads).
 * A persistent [C, h, w] tensor, not clamped; NULL on bad arguments. */
nb_tensor *nb_image_filter(const nb_tensor *img, const float *kernel, int kh, int kw, bool flip, bool edge_pad);
/* Named kernels, row-major in static storage: "blur" and "edge", the notes'
 * two 5 x 5 kernels of §4.2 exactly (1/9 on the centre 3 x 3; -1, 1 at
 * columns 1, 2 of the centre row, so that with eq. 9.6 the response is
 * I(i, j) - I(i, j - 1)), and "sharpen" (3 x 3: 5 at the centre, -1 on the
 * four neighbours). NULL for any other name. */
const float *nb_image_kernel(const char *name, int *kh, int *kw);

/* Figures: charts and pictures drawn with cairo, written as PNG, SVG or PDF.
 * A figure is a grid of rows x cols cells under an optional title; each cell
 * takes one chart: lines (training curves), bars (class probabilities), a
 * heat map (a spectrogram, a confusion matrix) or a grid of images with
 * captions (samples, a style transfer's outputs). Text is DejaVu Sans through
 * fontconfig. Sizes are pixels in a PNG and the same numbers of px in an SVG
 * or points in a PDF, so one figure looks alike in each; about 560 x 420 per
 * chart reads well. Colours are 0xRRGGBB. A chart call copies what it is
 * given, data included, so the caller's arrays may go at once; the figure
 * is drawn when saved. Every call returns 0, or -1 (NULL) with nb_errmsg():
 * bad arguments, a cell out of range or already used, a cell too small for
 * its axes and labels (reported by the chart call, not the save). */
typedef struct nb_figure nb_figure;
/* width x height in 16..NB_PNG_MAX_SIDE; cells are numbered 0..rows*cols-1
 * row by row, rows and cols in 1..64. title may be NULL. */
nb_figure *nb_figure_new(int width, int height, int rows, int cols, const char *title);
/* Writes the figure to path, the format by its extension: .png (8-bit RGB),
 * .svg or .pdf (vector; images embedded as pixels); any other extension is an
 * error naming it. The file is replaced atomically (nb_write_file_atomic): a
 * failed save leaves an earlier file whole. May be called more than once. */
int nb_figure_save(nb_figure *f, const char *path);
void nb_figure_free(nb_figure *f);
/* The i-th colour of the palette (Tableau 10, matplotlib's default). */
uint32_t nb_plot_color(int i);

/* A line chart. A series is n points (x[i], y[i]); x may be NULL for
 * 0, 1, ..., n-1. Points with a NaN or infinite coordinate are skipped (the
 * line joins their finite neighbours, as for a metric logged every k rows);
 * series of at most 40 points also get a dot per point. color 0 is
 * nb_plot_color(index in the chart). The axes get nice ticks (whole numbers
 * when every x is one), a single value or a constant series a padded range,
 * and the legend (series with a label) the corner that hides the fewest
 * points. */
typedef struct nb_series {
    const char *label;   /* legend entry; NULL or "" for none */
    const double *x, *y;
    int64_t n;
    uint32_t color;
} nb_series;
typedef struct nb_lines {
    const char *title, *xlabel, *ylabel; /* each may be NULL */
    const nb_series *series;
    int nseries;
} nb_lines;
int nb_figure_lines(nb_figure *f, int cell, const nb_lines *c);

/* A bar chart of n values from zero, each value written at its bar's end.
 * Bars stand up with the names under them, or lie down with the names on the
 * left (first at the top) when a name is too long for its bar. Non-finite
 * values get no bar. */
typedef struct nb_bars {
    const char *title;
    const char *clabel, *vlabel;  /* the categories' and the values' axis labels; may be NULL */
    const char *const *names;     /* n names, or NULL to number the bars 0..n-1 */
    const double *values;         /* n, 1..100000 */
    int n;
    uint32_t color;               /* every bar's colour; 0: nb_plot_color(0) */
    const uint32_t *colors;       /* or one per bar (0: color), e.g. the true class in green; may be NULL */
} nb_bars;
int nb_figure_bars(nb_figure *f, int cell, const nb_bars *c);

/* A heat map: rows x cols values as colours, with axes and a colour bar.
 * Row 0 is drawn at the bottom, as a spectrogram's lowest band, or at the top
 * with top_down, as a matrix is printed. x0..x1 is what the left and right
 * edges stand for (seconds, say) and y0..y1 the bottom and top edges; x0 == x1
 * (y0 == y1) numbers the columns (rows) instead, each number at its cell's
 * centre. zmin..zmax maps to the colour map's ends, values beyond it to the
 * ends; zmin == zmax: the finite data's range. NaN cells are light gray. */
typedef enum { NB_CMAP_VIRIDIS, NB_CMAP_MAGMA, NB_CMAP_GRAY } nb_colormap;
typedef struct nb_heatmap {
    const char *title, *xlabel, *ylabel;
    const char *clabel;           /* beside the colour bar ("dB"); may be NULL */
    const float *z;               /* rows x cols, row-major (a [rows, cols] tensor's data) */
    int rows, cols;               /* 1..NB_PNG_MAX_SIDE each */
    bool top_down;
    double x0, x1, y0, y1;
    double zmin, zmax;
    nb_colormap cmap;             /* viridis (0), magma (spectrograms) or gray */
} nb_heatmap;
int nb_figure_heatmap(nb_figure *f, int cell, const nb_heatmap *c);

/* A grid of images, each as large as its tile allows with its proportions,
 * pixels kept sharp, and an optional caption under it. data holds channels
 * planes of h x w values in [0, 1] (a [C, H, W] tensor's data; values are
 * clamped, NaN is black). cols 0: about a square grid. */
typedef struct nb_image {
    const float *data;
    int channels, h, w;           /* channels 1 (gray) or 3 (RGB) */
    const char *caption;          /* may be NULL */
    uint32_t caption_color;       /* 0: the text colour; e.g. red for a wrong prediction */
} nb_image;
typedef struct nb_images {
    const char *title;
    const nb_image *images;
    int n, cols;                  /* n in 1..10000 */
} nb_images;
int nb_figure_images(nb_figure *f, int cell, const nb_images *c);

/* A table of numbers from CSV with a header row, as training logs are
 * written ("epoch,train_loss,test_loss,..."). Cells are decimal numbers as
 * Python's float() and np.loadtxt read them (nan and inf included; strtod's
 * hexadecimal is refused); an empty cell is NaN (not measured). Blank lines
 * and lines starting with '#' (np.loadtxt's comments) are skipped; the last
 * '#' line above a first row of numbers is the header when it holds as many
 * names as the row has cells (np.savetxt's header="x,y"). Errors name the file, line and column: a missing
 * header (numbers in the first row), a non-numeric cell, a row with more or
 * fewer cells than the header, an empty file; a file of another kind (a
 * model, an image, LIBSVM text, binary data: nb_sniff) is named as such. */
typedef struct nb_csv {
    int ncols;
    int64_t nrows;
    char **names;   /* ncols column names */
    double *data;   /* nrows x ncols, row-major */
    int64_t *lines; /* nrows: the file line of each row, for messages */
} nb_csv;
nb_csv *nb_csv_read(const char *path);
nb_csv *nb_csv_parse(const char *text, size_t len, const char *what);
/* Flags for data files rather than logs: the header may be missing (a
 * numeric first row is data; columns are named "column 1", ...), and every
 * cell must be a number finite in float32 (no empty cells, NaN, inf or 1e39:
 * data are float32). */
#define NB_CSV_HEADER_OPTIONAL 1u
#define NB_CSV_FINITE 2u
/* A training log (nabla plot): the header is required, and some column must
 * be one a log has: a first column epoch or step (what nabla train, charrnn
 * and dqn write), or a name containing loss, acc or return. Anything else,
 * a data file's CSV included, is "not a training log" with what it looks
 * like or which columns it has. */
#define NB_CSV_LOG 4u
nb_csv *nb_csv_read_ex(const char *path, unsigned flags);
nb_csv *nb_csv_parse_ex(const char *text, size_t len, const char *what, unsigned flags);
void nb_csv_free(nb_csv *c);

/* ------------------------------------------------------------------------ */
/* Reinforcement learning (notes §4.3): environments and deep Q-learning     */
/* ------------------------------------------------------------------------ */

/* eq. 28: the discounted return of the rewards r[0..n), R_0 with
 * R_t = r_t + gamma R_{t+1} and R_n = 0 (= sum_k gamma^k r_k), computed
 * backwards in double. */
double nb_rl_discounted_return(const float *r, int64_t n, double gamma);
/* The Bellman equation for one transition: the target
 * r + gamma max_{a'} Q(s', a') over the legal actions a' (legal NULL: all
 * nactions), or r alone when s' is terminal (the game is over: nothing
 * follows). A state with no legal action counts as terminal. */
float nb_rl_bellman_target(float r, float gamma, const float *q_next, const bool *legal, int nactions, bool terminal);
/* The Q-learning update with learning rate alpha:
 * Q(s, a) <- (1 - alpha) Q(s, a) + alpha target. */
float nb_rl_q_update(float q, float alpha, float target);
/* Linear epsilon-greedy schedule: start at step 0, end from step `steps` on
 * (steps <= 0: end at once). */
double nb_rl_epsilon(double start, double end, int64_t steps, int64_t t);
/* The DQN loss of a batch (notes §4.3): q [B, A] is the network's output on
 * the states, actions[B] the actions taken, targets[B] the Bellman targets
 * (constants, no gradient). Returns the scalar
 * mean_i 1/2 (targets[i] - q[i, actions[i]])^2; the other outputs of each
 * row get zero error, as in the notes' step 3. With huber, each squared
 * error becomes the Huber loss with threshold 1 (1/2 d^2 for |d| <= 1,
 * |d| - 1/2 beyond), whose gradient is d clipped to [-1, 1]. */
nb_tensor *nb_dqn_loss(nb_tensor *q, const int32_t *actions, const float *targets, bool huber);

/* Environments, written in C and deterministic: nb_env_reset(seed) and the
 * actions fix an episode entirely.
 *   "cartpole": the classic-control constants (gravity 9.8, cart 1.0, pole
 *     0.1, half-length 0.5, force 10, tau 0.02, explicit Euler); actions
 *     left/right; observation [4] = x, x', theta, theta'; reward 1 per step;
 *     terminal beyond +-12 degrees or +-2.4, truncated (not terminal) after
 *     500 steps. State: x, x', theta, theta', steps.
 *   "2048": 4x4 board; actions up/right/down/left; a new 2 (probability 0.9)
 *     or 4 after each move; reward = the values of the tiles merged;
 *     moves that change nothing are illegal (masked; stepping one does
 *     nothing); terminal when no move is legal. Observation [16, 4, 4]: plane
 *     k one-hot marks the tiles 2^k (plane 0 the empty cells). State: the 16
 *     tile values (row-major, 0 = empty), score, moves.
 *   "catch": a 10 x 5 binary screen; the ball falls one row per step from a
 *     random top column, the paddle (bottom row, starting in column 2) moves
 *     left/stay/right; after 9 steps reward +1 if caught, else -1 (terminal).
 *     Observation [1, 10, 5] pixels. State: ball row, ball column, paddle
 *     column. */
typedef struct nb_env nb_env;
nb_env *nb_env_new(const char *name); /* NULL with nb_errmsg() for an unknown name */
void nb_env_free(nb_env *e);
const char *nb_env_name(const nb_env *e);
int nb_env_actions(const nb_env *e);
const char *nb_env_action_name(const nb_env *e, int a);
int nb_env_obs_shape(const nb_env *e, int64_t *shape); /* returns ndim (<= 3) */
int64_t nb_env_obs_size(const nb_env *e);
/* Starts an episode; every random draw of the episode comes from `seed`. */
void nb_env_reset(nb_env *e, uint64_t seed);
/* One step with action in [0, actions): returns the reward; terminal and
 * truncated (either may be NULL) tell how the episode ended, if it did. */
float nb_env_step(nb_env *e, int action, bool *terminal, bool *truncated);
bool nb_env_done(const nb_env *e);
void nb_env_observe(const nb_env *e, float *obs); /* obs_size floats */
/* mask[actions]; returns the number of legal actions (0 once done). */
int nb_env_legal(const nb_env *e, bool *mask);
/* The state as text, rows ending in '\n'; returns what snprintf would. */
int nb_env_render(const nb_env *e, char *buf, size_t n);
/* The state as numbers (layouts above), for tests and tools. set checks the
 * values and returns 0, or -1 with nb_errmsg(). */
int nb_env_state_size(const nb_env *e);
void nb_env_get_state(const nb_env *e, double *v);
int nb_env_set_state(nb_env *e, const double *v);
/* Symmetries under which the game's dynamics do not change (0 is the
 * identity): 8 for 2048 (rotations and mirrors of the board), 2 for
 * CartPole and Catch (the mirror). nb_env_symmetry applies the k-th to an
 * observation in place, and to an action and a legal mask when not NULL. */
int nb_env_symmetries(const nb_env *e);
void nb_env_symmetry(const nb_env *e, int k, float *obs, int *action, bool *legal);

/* Experience replay memory D: a ring buffer of capacity transitions
 * <s, a, r, s', terminal, legal actions in s'>; when full, a push overwrites
 * the oldest. bytes stores observations as bytes (for 0/1 observations:
 * pixels, one-hot boards), a quarter of the memory. */
typedef struct nb_replay nb_replay;
nb_replay *nb_replay_new(int64_t capacity, int64_t obs_size, int nactions, bool bytes);
void nb_replay_free(nb_replay *r);
/* legal2 may be NULL (all legal). */
void nb_replay_push(nb_replay *r, const float *s, int32_t a, float reward, const float *s2, bool terminal,
                    const bool *legal2);
int64_t nb_replay_size(const nb_replay *r);   /* filled slots, <= capacity */
int64_t nb_replay_pushed(const nb_replay *r); /* transitions ever pushed */
/* n slot numbers drawn uniformly, with replacement, among the filled slots
 * (the size must be > 0). */
void nb_replay_sample(const nb_replay *r, nb_rng *rng, int64_t n, int64_t *idx);
/* Copies the transitions in slots idx[0..n) into row i of each array
 * (s, s2: n * obs_size; legal2: n * nactions); any pointer may be NULL. */
void nb_replay_gather(const nb_replay *r, const int64_t *idx, int64_t n, float *s, int32_t *a, float *reward, float *s2,
                      bool *terminal, bool *legal2);

/* Deep Q-learning with experience replay (the notes' algorithm): act
 * epsilon-greedily, store each transition in D, and every train_every steps
 * (1: each step, as the notes) train Q on a random minibatch from D with the
 * loss above, the target computed by a target network (a copy of Q refreshed
 * every target_every steps; 0: Q itself, exactly as the notes). Optimizer:
 * Adam. Only a terminal s' stops the bootstrap: CartPole's time limit does
 * not. */
typedef struct nb_dqn_opts {
    int64_t steps;          /* environment steps to train for */
    double lr;              /* Adam's learning rate ... */
    double lr_end;          /* ... follows a cosine down to this at the last step
                               (0 or = lr: constant), to settle the final policy */
    double gamma;           /* discount (eq. 28) */
    int64_t buffer;         /* capacity of D */
    int64_t batch;          /* minibatch size */
    double eps_start, eps_end;
    int64_t eps_steps;      /* steps of the linear decay */
    int64_t target_every;   /* steps between copies to the target network; 0: none */
    bool huber;             /* Huber loss instead of the squared error */
    int64_t learn_start;    /* transitions in D before the first update */
    int64_t train_every;    /* environment steps per update */
    double reward_scale;    /* rewards are multiplied by this for learning */
    bool reward_log;        /* ... after r -> sign(r) log2(1 + |r|), which keeps
                               2048's late merges from drowning the early ones */
    double grad_clip;       /* maximal global gradient norm; 0: none */
    bool double_q;          /* Double DQN (van Hasselt 2016): Q picks argmax a',
                               the target network values it */
    bool augment;           /* train on a random symmetry of each sampled
                               transition (2048: the 8 of the square; CartPole
                               and Catch: the mirror) */
    int64_t select_every;   /* every this many steps (and at the last), play
                               select_episodes greedy episodes on the held-out
                               validation seeds; the step that reaches `steps`
                               leaves Q with the weights that scored best (the
                               latest on ties). 0: Q keeps its final weights */
    int64_t select_episodes;
    uint64_t seed;          /* initialization, exploration, sampling, episodes */
} nb_dqn_opts;
/* Episode seeds never meet: training episodes use seeds with bit 63 set,
 * validation episodes NB_DQN_VALIDATION_SEED + i (i < select_episodes), so
 * any evaluation seed below 2^62 (nabla dqn eval's 1000000 + i) is held out
 * from both. */
#define NB_DQN_VALIDATION_SEED (UINT64_C(1) << 62)
/* The defaults tuned for an environment; -1 with nb_errmsg() for an unknown
 * name. */
int nb_dqn_defaults(const char *env, nb_dqn_opts *o);
/* The built-in Q-network description of an environment (NULL if unknown):
 * an MLP for cartpole and 2048, a small CNN for catch's pixels. */
const char *nb_dqn_net_cfg(const char *env);

typedef struct nb_dqn nb_dqn;
/* A learner for `env` with options o (checked: NULL with nb_errmsg() for a
 * bad one) and Q built from net_cfg (NULL: the built-in description). */
nb_dqn *nb_dqn_new(const char *env, const nb_dqn_opts *o, const char *net_cfg);
void nb_dqn_free(nb_dqn *d);
/* The end of one episode during training. */
typedef struct nb_rl_episode {
    double ret;             /* undiscounted sum of the rewards */
    int64_t length;         /* steps */
    bool truncated;         /* ended by the time limit */
    double highest;         /* 2048: the highest tile at the end; else 0 */
} nb_rl_episode;
/* One environment step and (when due) one update of Q. Returns 1 and fills
 * ep (may be NULL) when the step ended an episode, else 0; -1 with
 * nb_errmsg() when the update's TD loss is not finite (a learning rate too
 * large: Q's weights overflowed), and no step was taken. Runs in a private
 * arena: the caller's arena tensors stay valid. */
int nb_dqn_step(nb_dqn *d, nb_rl_episode *ep);
/* One update of Q alone, the one nb_dqn_step takes every train_every steps:
 * a minibatch drawn from D, its targets, forward, backward, Adam. No
 * environment step; the target network is not refreshed. For benchmarks
 * (bench/dqn_bench.c times it) and schedules of the caller's own. 0, or -1
 * with nb_errmsg() when D is empty or the TD loss is not finite (then no
 * step was taken). Runs in the learner's private arena, as nb_dqn_step. */
int nb_dqn_update(nb_dqn *d);
int64_t nb_dqn_steps(const nb_dqn *d);       /* environment steps so far */
int64_t nb_dqn_updates(const nb_dqn *d);     /* gradient steps so far */
double nb_dqn_epsilon(const nb_dqn *d);      /* for the next step */
/* The mean |target - Q(s, a)| of the last update (0 before the first). */
double nb_dqn_td_error(const nb_dqn *d);
nb_net *nb_dqn_net(nb_dqn *d);
const nb_dqn_opts *nb_dqn_options(const nb_dqn *d);
/* With select_every: the best mean validation return so far and the step it
 * was measured at (-1 before the first validation). */
double nb_dqn_selected_return(const nb_dqn *d);
int64_t nb_dqn_selected_step(const nb_dqn *d);
/* Writes Q as a nabla model file (nb_net_save) with the environment and the
 * options in __metadata__ ("nabla.dqn.env", ...); extra key/value pairs are
 * added. Atomic. */
int nb_dqn_save(const nb_dqn *d, const char *path, const char *const *keys, const char *const *vals, int n);
/* Loads a model written by nb_dqn_save: Q and its environment's name (in
 * env, n bytes). NULL with nb_errmsg() for a file that is no DQN model or
 * whose network does not fit the environment. */
nb_net *nb_dqn_load(const char *path, char *env, size_t n);
/* A checkpoint of the whole learner, written atomically: the model file of
 * nb_dqn_save (nb_dqn_load and `nabla dqn eval` read it) plus everything the
 * next step reads: the target network, Adam's moments and step count, the
 * replay memory, the random streams, the episode in progress and the
 * counters. nb_dqn_resume rebuilds that learner, which then takes exactly the
 * steps the uninterrupted one would have taken; NULL with nb_errmsg() for a
 * file without that state (a finished run's model) or with a damaged one.
 * *st (may be NULL) receives the file for the caller's own metadata; free it
 * with nb_st_free. */
int nb_dqn_checkpoint(const nb_dqn *d, const char *path, const char *const *keys, const char *const *vals, int n);
nb_dqn *nb_dqn_resume(const char *path, struct nb_safetensors **st);

/* The greedy action argmax_a Q(s, a) among the legal actions (mask NULL:
 * all), for one observation. Needs no gradient. */
int nb_dqn_act(nb_net *q, const float *obs, const bool *legal, int nactions);
/* Plays `episodes` episodes of env (the i-th reset with seed + i), all at
 * once so Q sees them as one batch: greedy with probability 1 - eps, else a
 * uniformly random legal action (q NULL: the uniformly random legal policy).
 * Fills out[episodes]. 0, or -1 with nb_errmsg(). */
int nb_dqn_evaluate(nb_net *q, const char *env, int episodes, uint64_t seed, double eps, nb_rl_episode *out);

/* ------------------------------------------------------------------------ */
/* Recurrent networks                                                        */
/* ------------------------------------------------------------------------ */

/* Recurrent cells with PyTorch's equations, parameter layouts and gate order.
 * With x_t the input, h the previous hidden state, xw = x W_ih^T + b_ih and
 * hw = h W_hh^T + b_hh (G*H columns, split into G gates of H):
 *   rnn:  h' = tanh(xw + hw)                     eq. 10.8: the notes' U = W_ih,
 *         W = W_hh, b = b_ih + b_hh (nn.RNN, tanh)
 *   lstm: i, f, g, o = s(xw_i + hw_i), s(.._f), tanh(.._g), s(.._o);
 *         c' = f c + i g;  h' = o tanh(c')        (nn.LSTM, gates i f g o)
 *   gru:  r = s(xw_r + hw_r), z = s(xw_z + hw_z), n = tanh(xw_n + r hw_n);
 *         h' = (1 - z) n + z h                    (nn.GRU, gates r z n)
 * (s: the logistic sigmoid). */
typedef enum { NB_CELL_RNN, NB_CELL_LSTM, NB_CELL_GRU } nb_cell;
const char *nb_cell_name(nb_cell c);             /* "rnn", "lstm", "gru" */
int nb_cell_from_name(const char *s, nb_cell *c); /* 0, or -1 with nb_errmsg() */
int nb_cell_gates(nb_cell c);                    /* G: 1, 4, 3 */

/* One recurrent layer over a whole sequence, as one op. xw: [T, B, G*H], the
 * input projection x_t W_ih^T of every step without bias (T, B >= 1; one GEMM
 * by the caller); w_hh [G*H, H]; b_ih, b_hh [G*H] or NULL; h0 [B, H] or NULL
 * (zeros); c0 [B, H] or NULL, LSTM only. Returns [S, T, B, H]: h_1..h_T, and
 * for the LSTM (S = 2) then c_1..c_T. The state passed in is copied, so the
 * caller may overwrite its tensors before calling backward. Forward: one GEMM
 * per step and one fused pass over the gates. Backward: back-propagation
 * through time (eq. 10.18-10.23) fused likewise, the weight and bias
 * gradients each one product over all steps. When the gradient is itself
 * recorded (nb_grad with create_graph, nb_hvp), the rule differentiates the
 * same cells written with nb_* ops instead, so Hessian-vector products
 * through every cell are exact. */
nb_tensor *nb_rnn_seq(nb_cell cell, nb_tensor *xw, nb_tensor *w_hh, nb_tensor *b_ih, nb_tensor *b_hh, nb_tensor *h0,
                      nb_tensor *c0);

/* A stack of recurrent layers owning its parameters, named as PyTorch's
 * nn.RNN/LSTM/GRU state_dict names them: weight_ih_l<k> [G*H, in] (in = input
 * size for k = 0, H above), weight_hh_l<k> [G*H, H], bias_ih_l<k>,
 * bias_hh_l<k> [G*H]. Initialized as PyTorch does, U(-1/sqrt(H), 1/sqrt(H)),
 * except the LSTM's forget gate: bias_ih 1, bias_hh 0. */
typedef struct nb_rnn nb_rnn;
/* NULL with nb_errmsg() for sizes out of range. r NULL: the global rng. */
nb_rnn *nb_rnn_new(nb_cell cell, int64_t input, int64_t hidden, int layers, nb_rng *r);
void nb_rnn_free(nb_rnn *m);
nb_cell nb_rnn_cell(const nb_rnn *m);
int64_t nb_rnn_input_size(const nb_rnn *m);
int64_t nb_rnn_hidden_size(const nb_rnn *m);
int nb_rnn_num_layers(const nb_rnn *m);
/* Parameters layer by layer in the order above (decay on weights only), and
 * their names; arrays owned by m. Returns the count, 4 * layers. */
int nb_rnn_params(nb_rnn *m, nb_param **params);
int nb_rnn_param_names(const nb_rnn *m, const char ***names);

/* The state between sequences: h, and c for the LSTM, each [layers, B, H]. */
typedef struct nb_rnn_state {
    nb_tensor *h, *c;
} nb_rnn_state;
/* x: [T, B, input], time-major (PyTorch's default). init: NULL, or initial
 * states (either member NULL: zeros). Returns the last layer's hidden states
 * [T, B, H]; final (may be NULL) receives h_T and c_T, [layers, B, H] arena
 * tensors on the graph. Truncated back-propagation through time: copy final
 * into persistent tensors (nb_copy_into) and pass them (nb_detach) as the
 * next init; the gradient then stops at the batch boundary. T = 0 returns an
 * empty [0, B, H] and passes the state through. */
nb_tensor *nb_rnn_forward(nb_rnn *m, nb_tensor *x, const nb_rnn_state *init, nb_rnn_state *final);
/* The same for one-hot input: tokens [T, B] (T * B ids in [0, input)). The
 * first projection gathers columns of weight_ih instead of multiplying by
 * one-hot vectors; the result equals nb_rnn_forward(nb_one_hot(...)). */
nb_tensor *nb_rnn_forward_onehot(nb_rnn *m, const int32_t *tokens, int64_t T, int64_t B, const nb_rnn_state *init,
                                 nb_rnn_state *final);
/* [n, classes] rows of zeros with a 1 at idx[i] (no graph). */
nb_tensor *nb_one_hot(const int32_t *idx, int64_t n, int64_t classes);

/* Text as Unicode code points. nb_utf8_decode returns the code points of buf
 * (malloc'd, *n of them), less a leading byte-order mark (nb_utf8_bom); `what`
 * names the source in errors: empty text,
 * binary data (a NUL byte, or mostly non-text bytes), and invalid UTF-8
 * (bad or truncated sequences, overlong forms, surrogates, values above
 * U+10FFFF) with "what:line:column" and the byte. */
int32_t *nb_utf8_decode(const uint8_t *buf, size_t len, const char *what, int64_t *n);
/* The length of a UTF-8 byte-order mark at the start of text: 3, or 0 if there
 * is none. Excel's "CSV UTF-8" and PowerShell start files with one; every text
 * reader of nabla skips it, as it is not part of the first cell or line. */
size_t nb_utf8_bom(const void *text, size_t len);
/* Writes the UTF-8 form of cp (1-4 bytes, no NUL) to out; returns its length.
 * A value that is not a Unicode scalar value (negative, a surrogate, past
 * U+10FFFF) is written as U+FFFD, the replacement character. */
int nb_utf8_encode(int32_t cp, char out[4]);
/* Reads and decodes the files in order, concatenated (malloc'd); -1 with an
 * error naming the file. */
int nb_text_load(const char *const *paths, int n, int32_t **text, int64_t *len);
/* The distinct code points of text, ascending (malloc'd); NULL for n = 0. */
int32_t *nb_vocab_build(const int32_t *text, int64_t n, int *nvocab);

/* A character-level language model (notes §2.4): one-hot characters, the
 * recurrent layers, o = c + V h and softmax (eq. 10.8-10.11), trained on the
 * per-step cross-entropy of eq. 10.12. Parameters are named as a PyTorch
 * module with members `rnn` (nn.RNN/LSTM/GRU) and `fc` (nn.Linear) would
 * name them: rnn.weight_ih_l0, ..., fc.weight (V [nvocab, H]), fc.bias (c). */
typedef struct nb_charrnn {
    nb_rnn *rnn;
    nb_tensor *fc_w, *fc_b;
    int32_t *vocab;          /* nvocab code points, ascending */
    int nvocab;
    nb_param *params;        /* the rnn's, then fc.weight, fc.bias */
    const char **names;
    int np;
} nb_charrnn;
/* NULL with nb_errmsg() for bad sizes or an empty or unsorted vocabulary. */
nb_charrnn *nb_charrnn_new(nb_cell cell, const int32_t *vocab, int nvocab, int64_t hidden, int layers, nb_rng *r);
void nb_charrnn_free(nb_charrnn *m);
/* Moves the parameters to device d (nb_tensor_move); the functions below then
 * run there, with state tensors made on that device. */
void nb_charrnn_to(nb_charrnn *m, nb_device d);
/* Code points to token ids; a character outside the vocabulary is an error
 * naming `what`, the line and the column. */
int nb_charrnn_encode(const nb_charrnn *m, const int32_t *text, int64_t n, int32_t *ids, const char *what);
/* Logits o [T*B, nvocab] (row t*B + b) for tokens x [T, B]. */
nb_tensor *nb_charrnn_forward(nb_charrnn *m, const int32_t *x, int64_t T, int64_t B, const nb_rnn_state *init,
                              nb_rnn_state *final);
/* Truncated-BPTT batches over ids[0..n): the text is cut into B streams of
 * len = n / B ids (stream b starts at b * len), each into windows of T steps
 * (windows = (len - 1) / T of them). Batch k takes window w = k mod windows:
 * x[t, b] = ids[b * len + w T + t] and y[t, b] the id after it. Returns 1
 * when w = 0 (a pass starts: reset the state), 0 otherwise, -1 with
 * nb_errmsg() if the text is shorter than B * (T + 1). */
int64_t nb_charrnn_windows(int64_t n, int64_t T, int64_t B);
int nb_charrnn_batch(const int32_t *ids, int64_t n, int64_t T, int64_t B, int64_t k, int32_t *x, int32_t *y);
/* Mean cross-entropy per character of ids in bits (eq. 10.12 / (T B ln 2)):
 * the batches above, once through, with the state carried and no gradient.
 * B and then T shrink to fit a short text (n >= 2 needed). Returns -1 with
 * nb_errmsg() for n < 2. chars (may be NULL) receives the count predicted. */
double nb_charrnn_bits_per_char(nb_charrnn *m, const int32_t *ids, int64_t n, int64_t T, int64_t B, int64_t *chars);
/* Feeds prime (nprime >= 1 ids), then draws `length` ids from softmax(o /
 * temperature) (temperature 0: the most likely id) into out. */
int nb_charrnn_sample(nb_charrnn *m, const int32_t *prime, int64_t nprime, int64_t length, float temperature,
                      nb_rng *r, int32_t *out);
/* Model files: parameters, "nabla.model" = "charrnn", the cell, hidden size,
 * layers and vocabulary in __metadata__, plus the caller's metadata and extra
 * tensors (optimizer state); atomic. Load checks all of them and every
 * tensor's shape, naming the file. */
int nb_charrnn_save(const nb_charrnn *m, const char *path, const char *const *keys, const char *const *vals, int nmeta,
                    const char *const *extra_names, nb_tensor *const *extra, int nextra);
nb_charrnn *nb_charrnn_load(const char *path, struct nb_safetensors **st);

/* ------------------------------------------------------------------------ */
/* Retrieval chatbot: the dual-encoder LSTM (notes §4.4)                     */
/* ------------------------------------------------------------------------ */

/* Dialogue corpora in the Ubuntu Dialogue Corpus layout, CSV (RFC 4180:
 * quoted fields, doubled quotes, newlines inside quotes, CRLF), UTF-8, a
 * header row naming the layout:
 *   train: Context,Utterance,Label               (label 0/1, also 0.0/1.0)
 *   test:  Context,Ground Truth Utterance,Distractor_0,...,Distractor_<k>
 * `__eou__` ends an utterance and `__eot__` a turn inside a context. */
typedef struct nb_dialogue {
    int64_t n;       /* rows */
    int ncand;       /* candidates per row: 1 (train layout) or 1 + distractors (test layout) */
    char **context;  /* n strings */
    char **cand;     /* n * ncand strings; in the test layout cand[i * ncand] is the true response */
    int8_t *label;   /* train layout: n labels 0/1; NULL in the test layout */
    int64_t *line;   /* the line each row starts on */
} nb_dialogue;
/* NULL with nb_errmsg() "what:line: ..." for a wrong header, a wrong column
 * count, an unterminated quote, text after a closing quote, invalid UTF-8 (with
 * the column), a NUL byte, an empty context or response, a label not 0/1. */
nb_dialogue *nb_dialogue_parse(const char *text, size_t len, const char *what);
nb_dialogue *nb_dialogue_load(const char *path);
void nb_dialogue_free(nb_dialogue *d);

/* Tokens: runs of letters and digits (bytes >= 0x80 count as letters; an
 * apostrophe between two of them stays inside: "don't"), lower-cased (ASCII);
 * every other visible character is a token of its own; `__eou__` and
 * `__eot__` are kept whole. Returns the count and a malloc'd array of
 * malloc'd tokens (free each, then the array). */
int64_t nb_chat_tokenize(const char *text, char ***tokens);

/* A word vocabulary: id 0 is "<unk>", the others the words seen at least
 * min_count times, by falling count, then bytewise. */
typedef struct nb_chat_vocab nb_chat_vocab;
/* Counts the words of every context and candidate of d. */
nb_chat_vocab *nb_chat_vocab_build(const nb_dialogue *d, int64_t min_count);
/* From words in id order (words[0] must be "<unk>"); NULL with nb_errmsg(). */
nb_chat_vocab *nb_chat_vocab_from_words(char *const *words, int n);
void nb_chat_vocab_free(nb_chat_vocab *v);
int nb_chat_vocab_size(const nb_chat_vocab *v);
const char *nb_chat_vocab_word(const nb_chat_vocab *v, int id);
int32_t nb_chat_vocab_id(const nb_chat_vocab *v, const char *word); /* 0 if unknown */
/* Token ids of text into out (room for max >= 1): the first max tokens, or
 * the last max when `last` (contexts keep their end). A text with no token
 * gives the one id 0. Returns the count. */
int64_t nb_chat_encode(const nb_chat_vocab *v, const char *text, int64_t max, bool last, int32_t *out);

/* One LSTM layer over n sequences of different lengths packed step by step,
 * returning each sequence's last hidden state: no step is computed for
 * padding. batch[t] (t < T) is the number of sequences longer than t,
 * non-increasing, batch[0] = n: sequences are sorted by falling length.
 * xw [sum(batch), 4H]: x W_ih^T of step t of sequence j at row
 * off_t + j (off_t = batch[0] + ... + batch[t-1]); w_hh [4H, H]; biases [4H]
 * or NULL; the initial state is zero. Returns [n, H], row j = h of sequence j
 * after its last step. Backward fused (BPTT over the active rows only);
 * differentiable twice (the double backward replays the cells as nb_* ops). */
nb_tensor *nb_lstm_packed(nb_tensor *xw, const int64_t *batch, int64_t T, nb_tensor *w_hh, nb_tensor *b_ih,
                          nb_tensor *b_hh);

/* The dual encoder: word embeddings (E), one LSTM (H) shared by context and
 * response, c and r its last states, the prediction r' = c^T M and the score
 * sigma(c^T M r) (the `dual_encoder` of the notes), trained with eq. 29.
 * Parameters: embedding.weight [V, E] (U(-0.25, 0.25)), rnn.weight_ih_l0,
 * rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0 (nb_rnn's init), M [H, H]
 * (normal, std 1, truncated at 2: the reference implementation's). */
typedef struct nb_dualenc {
    nb_chat_vocab *vocab; /* owned */
    int64_t embed, hidden;
    nb_tensor *emb, *M;
    nb_rnn *rnn;
    nb_param params[6];
    const char *names[6];
    int np;
} nb_dualenc;
/* Takes ownership of vocab (also on failure). NULL with nb_errmsg(). */
nb_dualenc *nb_dualenc_new(nb_chat_vocab *vocab, int64_t embed, int64_t hidden, nb_rng *r);
void nb_dualenc_free(nb_dualenc *m);
/* Moves the parameters to device d (nb_tensor_move). */
void nb_dualenc_to(nb_dualenc *m, nb_device d);
/* Final LSTM states [n, H] of n token sequences: sequence i is
 * ids[off[i] .. off[i+1]) (lengths >= 1). On the graph. */
nb_tensor *nb_dualenc_encode(nb_dualenc *m, const int32_t *ids, const int64_t *off, int64_t n);
/* Logits c_i^T M r_i [n] of n pairs: sequences 0..n-1 of (ids, off) are
 * contexts, n..2n-1 their responses (one LSTM pass over all 2n). */
nb_tensor *nb_dualenc_logits(nb_dualenc *m, const int32_t *ids, const int64_t *off, int64_t n);
/* The training pairs of one step (`nabla chat train`): the rows rows[0..b) of
 * a train-layout d as they are, then with K > 1 negatives, K - 1 more label-0
 * pairs for each label-1 row: its context and a training response drawn from
 * r that differs from its own (up to 100 draws each, so a corpus of one
 * response gives none). Pair i is context pc[i], response pr[i], label y[i];
 * at most b K pairs. Returns their number, or -1 with nb_errmsg() for a
 * dialogue without labels. */
int64_t nb_dualenc_step_pairs(const nb_dialogue *d, const int64_t *rows, int64_t b, int64_t K, nb_rng *r,
                              int64_t *pc, int64_t *pr, float *y);
/* Scores of the test layout: scores[i * d->ncand + k] = c_i^T M r_ik (a
 * logit; sigma is monotone) for every row, in batches, no gradient. */
int nb_dualenc_rank(nb_dualenc *m, const nb_dialogue *d, int64_t max_context, int64_t max_response, int64_t batch,
                    float *scores);

/* Recall@k of ranking (`recall_at_k`): scores [n, ncand], the true candidate
 * at column 0; the fraction of rows where it is among the k best. Ties are
 * broken at random, on average: with g candidates scoring above the true one
 * and e others equal to it, a row counts min(1, max(0, (k - g) / (e + 1))). */
double nb_recall_at_k(const float *scores, int64_t n, int ncand, int k);
/* TF-IDF baseline: scores [n, ncand] = cosine between the tf-idf vectors of
 * each context and each candidate, raw tokens (nb_chat_tokenize), idf =
 * ln(N / df) over the N documents of d (every context and candidate). */
void nb_chat_tfidf_scores(const nb_dialogue *d, float *scores);

/* Model files: the parameters, "nabla.model" = "dualenc", sizes and the
 * vocabulary (words joined by newlines) in __metadata__, then the caller's
 * metadata and extra tensors; atomic. Load checks them all, naming the file. */
int nb_dualenc_save(const nb_dualenc *m, const char *path, const char *const *keys, const char *const *vals, int nmeta,
                    const char *const *extra_names, nb_tensor *const *extra, int nextra);
nb_dualenc *nb_dualenc_load(const char *path, struct nb_safetensors **st);

/* TF-IDF over a model's vocabulary, to combine with the model's score
 * (`nabla chat --tfidf-weight`). Words are the vocabulary's ids of the
 * tokens (nb_chat_tokenize); <unk> (id 0) is left out. */
/* Document frequencies df[nb_chat_vocab_size(v)]: the number of documents
 * (every context and every candidate of d) holding each word; *ndoc their count. */
void nb_chat_doc_freq(const nb_chat_vocab *v, const nb_dialogue *d, float *df, int64_t *ndoc);
/* idf[i] = ln(ndoc / max(df[i], 1)); idf[0] (<unk>) = 0. */
void nb_chat_idf(const float *df, int nv, int64_t ndoc, float *idf);
/* A unit-length tf-idf vector: sorted distinct ids, weights. */
typedef struct {
    int32_t *id;
    float *w;
    int64_t n;
} nb_chat_sparse;
void nb_chat_tfidf_vec(const nb_chat_vocab *v, const float *idf, const char *text, nb_chat_sparse *out);
double nb_chat_sparse_dot(const nb_chat_sparse *a, const nb_chat_sparse *b);
void nb_chat_sparse_free(nb_chat_sparse *s);
/* scores [n, ncand] = cosine between the tf-idf vectors of each context and
 * each candidate of d, with the given idf. */
void nb_chat_tfidf_vocab_scores(const nb_chat_vocab *v, const float *idf, const nb_dialogue *d, float *scores);
/* The combined score out[i] = logits[i] + w * cos[i] (logit(sigma(c^T M r))
 * plus W times the tf-idf cosine). */
void nb_chat_combine(const float *logits, const float *cos, int64_t n, double w, float *out);

/* ------------------------------------------------------------------------ */
/* Classical machine learning (notes §5.2-5.7, §13, appendix B)              */
/* ------------------------------------------------------------------------ */

/* Conventions of this section. A data set is X [n, d], a 2-D float32 tensor
 * of any kind (read, never modified), one example per row, and for the
 * supervised models n targets y: real values for regression, class labels
 * (any numbers, e.g. LIBSVM's -1/+1 or 0..9) for classifiers. Models keep
 * their parameters in double, own their memory and are freed with their
 * nb_<model>_free. Fits return NULL with nb_errmsg() on bad input (wrong
 * rank, n or d zero, NaN/inf, bad options, one class only). Fits are
 * deterministic for a given seed and thread count. */

/* LIBSVM text data: one example a line, "label index:value index:value ...",
 * indices 1-based and strictly ascending, absent features 0; blank lines are
 * skipped. Read into a dense X [n, d] (d: the largest index, or min_features
 * if larger) and y [n] (malloc'd). Errors name the file, line and column:
 * a bad label, a missing colon, a bad or non-positive index, indices not
 * ascending, a bad, NaN or infinite value. Write: the nonzero features of each
 * row, values printed exactly ("%.9g"), atomically; the first row also names
 * feature d when it is 0, so that reading the file back gives d features. */
int nb_libsvm_read(const char *path, int64_t min_features, nb_tensor **X, float **y);
int nb_libsvm_parse(const char *text, size_t len, const char *what, int64_t min_features, nb_tensor **X, float **y);
int nb_libsvm_write(const char *path, const nb_tensor *X, const float *y);

/* Linear regression y ~ w^T x + b. lstsq: the least-squares solution (LAPACK
 * dgelsd, least norm; with l2 > 0 ridge: min ||Xw + b - y||^2 + l2 ||w||^2, b
 * unpenalized). gd: full-batch gradient descent on the mean squared error
 * (+ l2 ||w||^2 / n). Either way the maximum-likelihood noise variance of
 * eq. 5.65, sigma^2 = mean squared training residual, is stored. bayes
 * (§5.6): Gaussian prior w, b ~ N(0, I / prior_precision) and noise variance
 * noise_var (0: the least-squares sigma^2), giving the Gaussian posterior
 * with covariance S = (alpha I + X1^T X1 / sigma^2)^-1 and mean
 * m = S X1^T y / sigma^2 (X1 = [X, 1]); predictions use m and have variance
 * sigma^2 + x1^T S x1. */
typedef enum { NB_LINREG_LSTSQ, NB_LINREG_GD, NB_LINREG_BAYES } nb_linreg_method;
typedef struct nb_linreg_opts {
    nb_linreg_method method;
    double l2;              /* ridge penalty (lstsq, gd) */
    double lr;              /* gd: step size; 0 means 0.1 (features of unit scale) */
    int epochs;             /* gd: steps; 0 means 1000 */
    double prior_precision; /* bayes: alpha; 0 means 1e-2 */
    double noise_var;       /* bayes: sigma^2; 0: the least-squares estimate */
} nb_linreg_opts;
typedef struct nb_linreg {
    nb_linreg_method method;
    int64_t d;
    double *w, b;           /* d weights and the intercept (bayes: posterior mean) */
    double sigma2;          /* noise variance: MLE (eq. 5.65) or bayes' noise_var */
    double *cov;            /* bayes: posterior covariance of (w, b), (d+1)^2; else NULL */
} nb_linreg;
nb_linreg *nb_linreg_fit(const nb_tensor *X, const float *y, const nb_linreg_opts *o);
void nb_linreg_free(nb_linreg *m);
/* mean[n] = w^T x + b; var (may be NULL): the predictive variance (bayes) or
 * sigma^2. */
void nb_linreg_predict(const nb_linreg *m, const nb_tensor *X, double *mean, double *var);
/* eq. 5.65: sum_i log N(y_i; w^T x_i + b, sigma^2); with sigma^2 = 0 (an
 * exact fit) its limit, +inf if every y_i lies on the fit, else -inf. */
double nb_linreg_loglik(const nb_linreg *m, const nb_tensor *X, const float *y);

/* Logistic regression, eq. 5.81: p(y = 1 | x) = sigma(w^T x + b) for two
 * classes, softmax(W x + b) over K weight rows for more (multinomial). The
 * objective is scikit-learn's: C sum_i -log p(y_i | x_i) + ||W||^2 / 2 (the
 * intercepts unpenalized), minimized by L-BFGS (nb_lbfgs) or by gradient
 * descent, so the same C gives the same model. Classes are the distinct
 * labels, ascending. */
typedef enum { NB_SOLVER_LBFGS, NB_SOLVER_GD } nb_solver;
typedef struct nb_logreg_opts {
    double C;               /* inverse penalty; 0 means 1 */
    nb_solver solver;
    int max_iter;           /* iterations; 0 means 100 (L-BFGS) or 1000 (gd) */
    double tol;             /* stop when max |gradient| of the mean objective <= tol; 0 means 1e-4 */
    double lr;              /* gd: step size on the mean objective; 0 means 0.5 */
} nb_logreg_opts;
typedef struct nb_logreg {
    int64_t d;
    int nclass, k;          /* classes; weight rows: 1 for two classes, else nclass */
    double *classes;        /* nclass label values, ascending */
    double *W, *b;          /* k x d, k */
    double loss;            /* final mean cross-entropy on the training data */
    int iters;
} nb_logreg;
nb_logreg *nb_logreg_fit(const nb_tensor *X, const float *y, const nb_logreg_opts *o);
void nb_logreg_free(nb_logreg *m);
/* p [n, nclass]: class probabilities; labels [n] (may be NULL): the most
 * probable class's label. p may be NULL too. */
void nb_logreg_predict(const nb_logreg *m, const nb_tensor *X, double *p, float *labels);

/* Kernel support vector machine, eq. 5.83: f(x) = sum_i alpha_i y_i
 * K(x_i, x) - rho, trained as LIBSVM's C-SVC: SMO with second-order working
 * set selection (Fan, Chen & Lin 2005), shrinking, an LRU cache of kernel
 * rows; several classes one-vs-one (a binary SVM per pair, majority vote),
 * the pairs trained in parallel. Kernels with LIBSVM's conventions (-t):
 * 0 linear u^T v, 1 polynomial (gamma u^T v + coef0)^degree, 2 RBF
 * exp(-gamma ||u - v||^2), 3 sigmoid tanh(gamma u^T v + coef0). */
typedef enum { NB_KERNEL_LINEAR, NB_KERNEL_POLY, NB_KERNEL_RBF, NB_KERNEL_SIGMOID } nb_kernel;
typedef struct nb_svm_opts {
    nb_kernel kernel;
    double C;               /* -c */
    double gamma;           /* -g; 0 means 1 / d */
    double coef0;           /* -r */
    int degree;             /* -d */
    double eps;             /* -e: stopping tolerance on the KKT violation */
    double cache_mb;        /* -m: kernel cache per binary problem */
    bool shrinking;         /* -h */
} nb_svm_opts;
/* LIBSVM's defaults: RBF, C 1, gamma 1/d, coef0 0, degree 3, eps 1e-3,
 * cache 100 MB, shrinking on. */
void nb_svm_default_opts(nb_svm_opts *o);
const char *nb_kernel_name(nb_kernel k);             /* "linear", "polynomial", "rbf", "sigmoid" */
int nb_kernel_from_name(const char *s, nb_kernel *k); /* a name or LIBSVM's 0..3 */
/* One kernel value between two d-vectors, with o's kernel and parameters. */
double nb_svm_kernel(const nb_svm_opts *o, const float *u, const float *v, int64_t d);
/* The model in LIBSVM's layout: support vectors grouped by class (in label
 * order: order of first appearance, except that {-1, +1} puts +1 first as
 * LIBSVM does), coef [(nclass-1) x nsv] the alpha_i y_i of each SV in each
 * pair it takes part in, rho one per pair (i, j), i < j, in order. */
typedef struct nb_svm {
    nb_svm_opts opts;       /* with gamma resolved */
    int64_t d;
    int nclass;
    double *labels;         /* nclass */
    int64_t nsv;
    int64_t *class_nsv;     /* nclass */
    float *sv;              /* nsv x d */
    int64_t *sv_index;      /* training row of each SV (-1 after loading) */
    double *coef;           /* (nclass - 1) x nsv */
    double *rho;            /* nclass (nclass - 1) / 2 */
    int64_t iters;          /* SMO iterations over all pairs */
} nb_svm;
nb_svm *nb_svm_fit(const nb_tensor *X, const float *y, const nb_svm_opts *o);
void nb_svm_free(nb_svm *m);
/* The decision value of each pair for one example x [d] (eq. 5.83), in
 * rho's order; dec has nclass (nclass - 1) / 2 entries. */
void nb_svm_decision(const nb_svm *m, const float *x, double *dec);
/* labels [n]: the one-vs-one vote for each row of X (the kernel products by
 * BLAS, rows in parallel). */
void nb_svm_predict(const nb_svm *m, const nb_tensor *X, float *labels);
/* k-fold cross-validation as LIBSVM's -v: stratified folds from seed, each
 * fold predicted by a model fitted on the others. Returns the accuracy, or
 * -1 with nb_errmsg(); pred [n] (may be NULL) gets the predictions. */
double nb_svm_cross_validate(const nb_tensor *X, const float *y, const nb_svm_opts *o, int folds, uint64_t seed,
                             float *pred);

/* Linear factor models (§13): x = W^T h + mu + noise with h ~ N(0, I_k), so
 * that by eq. 24 p(x) = E_h[p(x | h)] = N(x; mu, W^T W + Psi).
 *   pca:  the k leading eigenvectors of the sample covariance (ddof 1) as
 *         rows of W (unit norm); transform = W (x - mu). Its likelihood is the
 *         one scikit-learn's PCA.score uses: the ppca model below.
 *   ppca: Tipping & Bishop's closed form: sigma^2 = the mean of the d - k
 *         discarded eigenvalues, W = (L_k - sigma^2 I)^(1/2) U_k^T, Psi =
 *         sigma^2 I. With fewer samples than variables (n <= d) the sample
 *         covariance has d - n + 1 zero eigenvalues, and they count among
 *         the d - k (the maximum-likelihood sigma^2); scikit-learn averages
 *         only min(n, d) - k of them there, so its sigma^2 and PCA.score
 *         then differ from these (they agree for n > d).
 *   fa:   diagonal Psi, fitted as scikit-learn's FactorAnalysis (SVD-based
 *         iterations, tol 1e-2 on the log-likelihood, at most max_iter).
 * The latent posterior (ppca, fa) is h | x ~ N(M^-1 W Psi^-1 (x - mu), M^-1)
 * with M = I + W Psi^-1 W^T. */
typedef enum { NB_FACTOR_PCA, NB_FACTOR_PPCA, NB_FACTOR_FA } nb_factor_kind;
typedef struct nb_factor_opts {
    nb_factor_kind kind;
    int k;                  /* latent dimensions, 1..d; 0 means min(d, 2) */
    int max_iter;           /* fa: 0 means 1000 */
    double tol;             /* fa: 0 means 1e-2 */
} nb_factor_opts;
typedef struct nb_factor {
    nb_factor_kind kind;
    int64_t d;
    int k;
    double *mean;           /* d */
    double *W;              /* k x d (pca: the principal axes) */
    double *psi;            /* d noise variances (pca, ppca: all sigma^2) */
    double *variance;       /* k: eigenvalues (pca, ppca) or squared norms of W's rows (fa) */
    double total_variance;  /* trace of the sample covariance (ddof 1) */
    int iters;              /* fa iterations */
} nb_factor;
nb_factor *nb_factor_fit(const nb_tensor *X, const nb_factor_opts *o);
void nb_factor_free(nb_factor *m);
const char *nb_factor_name(nb_factor_kind k); /* "pca", "ppca", "fa" */
/* H [n, k]: the projection (pca) or the posterior mean E[h | x] (ppca, fa);
 * cov [k, k] (may be NULL): the posterior covariance M^-1 (pca: zeros). */
void nb_factor_transform(const nb_factor *m, const nb_tensor *X, double *H, double *cov);
/* The mean over the rows of log N(x; mu, W^T W + Psi) (eq. 24 in closed
 * form); per [n] (may be NULL) gets each row's. */
double nb_factor_loglik(const nb_factor *m, const nb_tensor *X, double *per);

/* Gaussian mixture model (appendix B): p(x) = sum_c P(c) N(x; mu_c, S_c),
 * fitted by EM started from k-means (k-means++ seeding, then Lloyd's
 * iterations; n_init starts, the best kept), as scikit-learn's
 * GaussianMixture: reg_covar added to each covariance's diagonal, stop when
 * the mean log-likelihood changes less than tol. */
typedef struct nb_gmm_opts {
    int k;                  /* components; 0 means 1 */
    bool diagonal;          /* diagonal instead of full covariances */
    int max_iter;           /* 0 means 100 */
    double tol;             /* 0 means 1e-3 */
    double reg_covar;       /* 0 means 1e-6; negative is an error */
    int n_init;             /* 0 means 1 */
    uint64_t seed;
} nb_gmm_opts;
typedef struct nb_gmm {
    int k;
    int64_t d;
    bool diagonal;
    double *weights;        /* k: P(c) */
    double *means;          /* k x d */
    double *covs;           /* k x d x d, or k x d (diagonal) */
    double loglik;          /* mean log p(x) on the training data at the end */
    int iters;
    bool converged;
} nb_gmm;
nb_gmm *nb_gmm_fit(const nb_tensor *X, const nb_gmm_opts *o);
void nb_gmm_free(nb_gmm *m);
/* The mean log p(x) over the rows of X; resp [n, k] (may be NULL) gets the
 * responsibilities P(c | x). NaN with nb_errmsg() if a covariance is not
 * positive definite. */
double nb_gmm_score(const nb_gmm *m, const nb_tensor *X, double *resp);
/* -2 log L + p log n, with p the number of free parameters. */
double nb_gmm_bic(const nb_gmm *m, const nb_tensor *X);
int64_t nb_gmm_nparams(const nb_gmm *m);

/* Model files for the models above: safetensors with the parameters as F32
 * tensors and "nabla.model" = linreg|logreg|svm|pca|ppca|fa|gmm plus the
 * settings in __metadata__, written atomically; extra key/value pairs are
 * added. Loading checks every tensor's presence and shape. */
typedef struct nb_classic {
    const char *kind;       /* "linreg", ..., the same string as "nabla.model" */
    nb_linreg *linreg;      /* the one member that kind names is set */
    nb_logreg *logreg;
    nb_svm *svm;
    nb_factor *factor;
    nb_gmm *gmm;
} nb_classic;
int nb_classic_save(const nb_classic *m, const char *path, const char *const *keys, const char *const *vals, int n);
/* 0, or -1 with nb_errmsg() (not a file of these models, or a defect). */
int nb_classic_load(const char *path, nb_classic *m);
/* Whether the safetensors metadata names one of these models. */
bool nb_classic_is_model(const struct nb_safetensors *st);
void nb_classic_free(nb_classic *m);
/* The number of features the model takes. */
int64_t nb_classic_features(const nb_classic *m);

/* ------------------------------------------------------------------------ */
/* Neural style transfer and texture synthesis (notes §4.6)                  */
/* ------------------------------------------------------------------------ */

/* The losses, as ops on the tape (so they differentiate to any order). A
 * feature map F is [1, N, H, W] (or [N, H, W], or already [N, M]): the
 * notes' F^l [N_l, M_l], N filters at M = H W positions, after a ReLU. */
nb_tensor *nb_style_content_loss(nb_tensor *F, nb_tensor *P); /* eq. 1: 1/2 sum (F - P)^2 */
nb_tensor *nb_gram(nb_tensor *F);                             /* eq. 3: G = F F^T [N, N] */
/* eq. 4: E = sum (G - A)^2 / (4 N^2 M^2), A the target Gram [N, N]. */
nb_tensor *nb_style_layer_loss(nb_tensor *F, nb_tensor *A);
/* eq. 5: sum_l w_l E_l over L layers; w NULL means w_l = 1/L. */
nb_tensor *nb_style_loss(nb_tensor *const *F, nb_tensor *const *A, const float *w, int L);
/* eq. 7: alpha content + beta style (content NULL: beta style only). */
nb_tensor *nb_style_total_loss(nb_tensor *content, nb_tensor *style, float alpha, float beta);
/* Total variation of x [..., H, W] (H, W >= 1): the sum of squared
 * differences of vertical and horizontal neighbours (a smoothness prior). */
nb_tensor *nb_tv_loss(nb_tensor *x);
/* The notes' hand-derived gradients w.r.t. F (arena tensors of F's shape,
 * no graph), zero where F <= 0 as behind a ReLU: eq. 2, (F - P) masked;
 * eq. 6, ((G - A) F) / (N^2 M^2) masked. */
nb_tensor *nb_style_content_grad(const nb_tensor *F, const nb_tensor *P);
nb_tensor *nb_style_layer_grad(const nb_tensor *F, const nb_tensor *A);

/* Feature networks, fixed (their weights get no gradient). Layers have
 * names; a layer's map is the one after its ReLU.
 *   random: `scales` layers "scale1".., random filters (seeded) on an image
 *           pyramid, after Ustyuzhaninov et al. 2017 (see style.c);
 *   vgg19:  torchvision's vgg19 `features` from a safetensors file
 *           (features.0.weight, ...): "conv1_1" .. "conv5_4", the first
 *           nlayers convolutions (1..16; others: all), each tensor checked;
 *           input normalized by ImageNet's mean and std, 2x2 max pooling or
 *           average pooling (avg_pool);
 *   model:  a nabla CNN model file (nabla train): its conv layers by name
 *           ("conv1", ...), at the model's own input size (gray models see
 *           the mean of R, G, B).
 * NULL with nb_errmsg() naming the file and tensor on bad input. */
typedef struct nb_style_net nb_style_net;
nb_style_net *nb_style_net_random(int scales, int channels, int kernel, uint64_t seed);
nb_style_net *nb_style_net_vgg19(const char *path, int nlayers, bool avg_pool);
nb_style_net *nb_style_net_model(const char *path);
void nb_style_net_free(nb_style_net *s);
/* Moves the network's weights to device d (NB_CUDA: a build with CUDA and a
 * GPU), before nb_style_new, which keeps its targets where the network is
 * (its images may be on either device); x given to nb_style_objective must
 * be there too. */
void nb_style_net_to(nb_style_net *s, nb_device d);
nb_device nb_style_net_device(const nb_style_net *s);
int nb_style_net_layers(const nb_style_net *s, const char *const **names);
int nb_style_net_find(const nb_style_net *s, const char *name); /* index or -1 */
/* true (and the size) when the network takes images of one size only. */
bool nb_style_net_input_size(const nb_style_net *s, int64_t *h, int64_t *w);
/* x [1, 3, H, W] in [0, 1] -> out[i] the map of layer want[i] (arena, on
 * the tape); computes only as deep as needed. */
int nb_style_net_forward(nb_style_net *s, nb_tensor *x, const int *want, int nwant, nb_tensor **out);

/* A style-transfer problem: the content image's features at one layer
 * (P, eq. 1) and the style image's Gram matrices (A, eq. 4), both [3, h, w]
 * in [0, 1] and of x's size; content NULL synthesizes a texture. */
typedef struct nb_style_spec {
    int content_layer;
    const int *style_layers;
    const float *style_weights; /* NULL: 1 / nstyle each */
    int nstyle;
    float alpha, beta, tv;      /* eq. 7's weights; tv: total variation's */
} nb_style_spec;
typedef struct nb_style_losses {
    double content, style;      /* eq. 1 and eq. 5, unweighted */
    double total;               /* eq. 7 */
    double objective;           /* eq. 7 + tv * total variation: what is minimized */
} nb_style_losses;
typedef struct nb_style nb_style;
nb_style *nb_style_new(nb_style_net *net, const nb_tensor *content, const nb_tensor *style, const nb_style_spec *sp);
void nb_style_free(nb_style *s);
/* The objective at x [1, 3, H, W] (on the tape); out (may be NULL) gets the
 * losses. */
nb_tensor *nb_style_objective(nb_style *s, nb_tensor *x, nb_style_losses *out);

/* ------------------------------------------------------------------------ */
/* Audio and speech data                                                     */
/* ------------------------------------------------------------------------ */

typedef struct nb_audio { float *x; int64_t n; int rate; } nb_audio;   /* mono samples in [-1, 1] */
/* WAV, FLAC, OGG, Opus, MP3 (anything libsndfile reads), mixed to mono, resampled with libsamplerate to rate
 * (0 keeps the file's rate). 0, or -1 with nb_errmsg() naming the file: empty, truncated, corrupt,
 * unsupported, too long. */
int  nb_audio_read(const char *path, int rate, nb_audio *out);
int  nb_audio_parse(const uint8_t *buf, size_t len, const char *what, int rate, nb_audio *out); /* fuzzers */
int  nb_audio_write(const char *path, const float *x, int64_t n, int rate); /* 16-bit PCM .wav, atomic; other ext: error */
void nb_audio_free(nb_audio *a);
#define NB_FEATURE_HOP 256   /* samples per feature frame at 16 kHz (16 ms) */
/* Log-mel spectrogram through FFTW (window 1024, Hann, hop NB_FEATURE_HOP, n_mels bands (80 default),
 * HTK mel scale), persistent [frames, n_mels], frames = ceil(n / hop).
 * The HTK scale: mel(f) = 2595 log10(1 + f / 700), triangles of peak 1 from 0 Hz to
 * rate / 2; frame t is centred on sample t * hop (zeros outside the signal); the value is
 * ln(max(1e-5, sum of the band's |STFT| magnitudes)). n_mels <= 0 means 80. NULL with nb_errmsg()
 * for n < 1, rate < 1000 or n_mels > 512. */
nb_tensor *nb_logmel(const float *x, int64_t n, int rate, int n_mels);
/* A speech data folder: manifest.csv (file,speaker,text,split) as the corpus builder writes, or one
 * sub-folder of audio files per speaker (split: held-out clips chosen by a hash of the file name).
 * The manifest's header names its columns: file and speaker are needed, text, split (train, valid,
 * test; empty: the hash) and phones (a .npy path) are optional; paths are relative to dir; fields may
 * be "quoted" ("" for a quote). phones.txt in dir (one phone a line) gives n_phones when clips have
 * phones. Speakers are numbered in order of first appearance (folders: sorted names); text is ""
 * when absent. 0, or -1 with nb_errmsg() naming the manifest and line (unknown column or split, a
 * wrong field count, a missing audio or phone file) or the folder. */
typedef struct nb_speech_clip { char *path; int speaker; int split; /* 0 train, 1 valid, 2 test */ char *text; char *phones; /* .npy of [frames, n_phones] or NULL */ } nb_speech_clip;
typedef struct nb_speech_set { nb_speech_clip *clips; int n; char **speakers; int nspeakers; int n_phones; } nb_speech_set;
int  nb_speech_open(const char *dir, nb_speech_set *out);
void nb_speech_free(nb_speech_set *s);

/* ------------------------------------------------------------------------ */
/* WaveNet (notes §4.5)                                                      */
/* ------------------------------------------------------------------------ */

/* eq. 32 as one op: x [N, 2C, ...] -> tanh(x[:, :C]) * sigmoid(x[:, C:]),
 * [N, C, ...] (PyTorch's a, b = x.chunk(2, 1)). */
nb_tensor *nb_gated(nb_tensor *x);
/* nb_conv1d(x, w, b, 1, 0, dilation, true) computed for long signals: x
 * [N, C, L], w [O, C, K], b [O] or NULL -> [N, O, L], out[t] = b + sum_k
 * w[:, :, k] x[t - (K-1-k) dilation] (zeros before the start); one GEMM per
 * tap on the unpadded rows, differentiable to any order. */
nb_tensor *nb_conv1d_causal(nb_tensor *x, nb_tensor *w, nb_tensor *b, int dilation);
/* PyTorch's ConvTranspose1d: x [N, C, T], w [C, O, K], b [O] or NULL ->
 * [N, O, (T - 1) stride + K - 2 pad], y[n, o, t s + k - pad] += x[n, c, t]
 * w[c, o, k]; stride >= 1 (0 means 1), 0 <= pad <= K - 1. */
nb_tensor *nb_conv_transpose1d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad);
/* eq. 31 with mu = 255: f(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu), as an
 * op (differentiable; at x = 0 its gradient is the true slope
 * mu / ln(1 + mu), where PyTorch's autograd of the formula gives 0) and on
 * numbers (x clipped to [-1, 1]); expand is its
 * inverse. encode quantizes f(x) to 256 levels, round((f + 1) / 2 * 255)
 * (0 -> 128, 1 -> 255, -1 -> 0); decode expands level q's centre. */
nb_tensor *nb_mulaw(nb_tensor *x);
float nb_mulaw_compress(float x);
float nb_mulaw_expand(float y);
int nb_mulaw_encode(float x);
float nb_mulaw_decode(int q);
void nb_mulaw_encode_array(const float *x, int64_t n, int32_t *q);
void nb_mulaw_decode_array(const int32_t *q, int64_t n, float *x);

/* The model: an embedding of the previous μ-law sample (R channels), then
 * layers * stacks residual blocks (dilations 1, 2, ..., 2^(layers-1) in each
 * stack): a = causal conv, kernel 2, of h [+ speaker term, eq. 34] [+ V * y,
 * eq. 33]; z = gated(a) (eq. 32); skip += 1x1(z); h += 1x1(z) (no residual
 * conv in the last block). Head: ReLU, 1x1 (S -> S), ReLU, 1x1 (S -> 256
 * logits). Local conditioning: features [frames, D], frame f covering
 * samples f hop .. f hop + hop - 1, upsampled by a ConvTranspose1d(D, C,
 * hop, stride hop) to C channels per sample that enter every gate. Parameter
 * names and layouts are those of the PyTorch module in
 * bench/wavenet_torch.py (embed.weight, layers.<k>.dilated.weight [2R, R, 2],
 * layers.<k>.speaker.weight [2R, nspeakers], layers.<k>.cond.weight
 * [2R, C, 1], layers.<k>.res.*, layers.<k>.skip.*, out1.*, out2.*,
 * upsample.*), so safetensors files move both ways. */
#define NB_WAVENET_CLASSES 256
typedef struct nb_wavenet_config {
    int layers, stacks;     /* blocks per stack, stacks */
    int residual, skip;     /* channels R, S */
    int nspeakers;          /* 0: no speaker conditioning */
    int cond_dim, cond_hop; /* feature size D (0: none) and samples per frame */
    int cond_channels;      /* C, the upsampled width entering every gate (0: D).
                               Each gate's V * y costs 2R C per sample, so a C
                               below D cuts the cost of conditioning */
} nb_wavenet_config;
typedef struct nb_wavenet nb_wavenet;
/* 0, or -1 with nb_errmsg() naming the setting out of range. */
int nb_wavenet_check_config(const nb_wavenet_config *c);
/* stacks (2^layers - 1) + 1 samples: how far back the output at t sees. */
int64_t nb_wavenet_receptive_field(const nb_wavenet_config *c);
/* Initialized as PyTorch initializes its layers (r NULL: the global rng). */
nb_wavenet *nb_wavenet_new(const nb_wavenet_config *c, nb_rng *r);
void nb_wavenet_free(nb_wavenet *m);
const nb_wavenet_config *nb_wavenet_get_config(const nb_wavenet *m);
/* The parameters (decay on weights) and their names; arrays owned by m. */
int nb_wavenet_params(nb_wavenet *m, nb_param **params, const char *const **names);
/* feats [N, frames, D] -> the upsampled y [N, C, frames * hop] (eq. 33). */
nb_tensor *nb_wavenet_upsample(nb_wavenet *m, nb_tensor *feats);
/* Standardizes the features: each of the D takes the mean and 1 / standard
 * deviation over all frames of feats[0..n) ([frames, D] each, the training
 * clips'), kept in the model file; nb_wavenet_cond applies them. Until then
 * features enter as they are. 0, or -1 with nb_errmsg(). */
int nb_wavenet_fit_features(nb_wavenet *m, const nb_tensor *const *feats, int n);
/* The upsampled conditioning [1, C, n] of samples first .. first + n - 1 of
 * a clip with features feats [frames, D] (frames past the end repeat the
 * last one): upsamples only the frames that cover the span. */
nb_tensor *nb_wavenet_cond(nb_wavenet *m, const nb_tensor *feats, int64_t first, int64_t n);
/* Logits [N, 256, L] for input samples x [N, L] (levels 0..255); speaker:
 * N ids (models with speakers); cond [N, C, L] (models with features): the
 * conditioning of the sample each position predicts. */
nb_tensor *nb_wavenet_forward(nb_wavenet *m, const int32_t *x, int64_t N, int64_t L, const int32_t *speaker,
                              nb_tensor *cond);
/* eq. 30 teacher-forced: q [N, L + 1] levels; the mean over N L positions of
 * -ln p(q[t + 1] | q[<= t]) in nats (divide by ln 2 for bits per sample).
 * cond [N, C, L] belongs to samples 1..L of each row. */
nb_tensor *nb_wavenet_loss(nb_wavenet *m, const int32_t *q, int64_t N, int64_t L, const int32_t *speaker,
                           nb_tensor *cond);

/* Generation, one sample at a time from mu-law silence (level 128). Cached:
 * per layer a queue of the last d inputs, so a sample costs O(layers).
 * naive: every sample recomputes all layers over the receptive field with
 * the same arithmetic (the same samples, bit for bit; for checking and
 * timing). Streams are independent; stream s draws from nb_rng stream
 * (seed, s). */
typedef struct nb_wavenet_gen_opts {
    int streams;            /* 0 means 1 */
    int64_t samples;        /* per stream */
    const int32_t *speakers;/* one per stream (models with speakers) */
    const nb_tensor *cond;  /* [C, >= samples]: upsampled features, shared by the streams */
    float temperature;      /* softmax(logits / T); 0: the most likely level */
    uint64_t seed;
    bool naive;
    int64_t naive_from;     /* naive: samples before this one come from the cached path (the
                               same samples), so naive steps can be timed at full windows */
    double *naive_seconds;  /* may be NULL: receives the wall time of the naive steps */
    const int32_t *force;   /* streams x samples levels to feed instead of drawing, or NULL */
} nb_wavenet_gen_opts;
/* out: streams x samples levels; logprob (may be NULL): per stream, the sum
 * of ln p(level) of the levels emitted (forced or drawn) under the model.
 * 0, or -1 with nb_errmsg(). */
int nb_wavenet_generate(const nb_wavenet *m, const nb_wavenet_gen_opts *o, int32_t *out, double *logprob);
/* Model files: "nabla.model" = "wavenet" and the settings in __metadata__,
 * the caller's metadata and extra tensors (optimizer state); atomic. Load
 * checks every parameter's presence, shape and finiteness, naming the file. */
int nb_wavenet_save(const nb_wavenet *m, const char *path, const char *const *keys, const char *const *vals, int nmeta,
                    const char *const *extra_names, nb_tensor *const *extra, int nextra);
nb_wavenet *nb_wavenet_load(const char *path, struct nb_safetensors **st);
/* Copies every parameter of m from st (names and shapes must match). */
int nb_wavenet_copy_params(nb_wavenet *m, const struct nb_safetensors *st, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_H */
