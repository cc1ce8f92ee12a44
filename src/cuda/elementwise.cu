/* elementwise.cu — the one-pass kernels: fill, add/sub/mul/div with
 * broadcasting, the unary math functions, the gradients of the rectifiers
 * (eq. 20) and of sigmoid/tanh, and gradient accumulation. Each thread walks
 * the elements with a grid-stride loop, so one launch covers any n. */
#include "common.h"
#include "strided.h"

/* --- fill ------------------------------------------------------------------ */

static __global__ void fill_kernel(float *x, int64_t n, float v) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = v;
}

void nb__gpu_fill(float *x, int64_t n, float v) {
    if (n <= 0) return;
    NB_LAUNCH(fill_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, x, n, v);
    NB_GPU_CHECK_LAUNCH("fill");
}

/* --- binary ---------------------------------------------------------------- */

/* The op is a kernel argument, the same for every thread: the switch costs a
 * uniform branch, not divergence, and keeps one kernel per layout. */
static __device__ inline float binop(int op, float a, float b) {
    switch (op) {
    case NB_GPU_ADD: return a + b;
    case NB_GPU_SUB: return a - b;
    case NB_GPU_MUL: return a * b;
    default: return a / b;
    }
}

/* One dim left after merging: a and b each contiguous (stride 1) or one
 * value (stride 0), which covers same-shape operands and a scalar on either
 * side, the common cases; no index arithmetic beyond a multiply. */
static __global__ void binary_flat_kernel(int op, float *o, const float *a, int64_t sa, const float *b, int64_t sb,
                                          int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        o[i] = binop(op, a[i * sa], b[i * sb]);
}

/* Anything else: each element's offsets from its index. */
static __global__ void binary_walk_kernel(int op, float *o, const float *a, const float *b, int64_t n, nb_gpu_walk w) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ia, ib;
        nb__gpu_walk_at(&w, i, &ia, &ib);
        o[i] = binop(op, a[ia], b[ib]);
    }
}

void nb__gpu_binary(nb_gpu_binop op, float *o, const float *a, const float *b, int nd, const int64_t *d,
                    const int64_t *sa, const int64_t *sb) {
    if (nd < 0 || nd > NB_GPU_MAXD) nb_fatal("cuda", "binary: %d dims (at most %d)", nd, NB_GPU_MAXD);
    nb_gpu_walk w;
    const int64_t *s[2] = {sa, sb};
    int64_t n = nb__gpu_walk_make(&w, nd, d, 2, s);
    if (n <= 0) return;
    if (w.nd == 1) {
        NB_LAUNCH(binary_flat_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, (int)op, o, a, w.s[0][0], b, w.s[1][0], n);
        NB_GPU_CHECK_LAUNCH("binary");
    } else {
        NB_LAUNCH(binary_walk_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, (int)op, o, a, b, n, w);
        NB_GPU_CHECK_LAUNCH("binary (strided)");
    }
}

/* --- unary ----------------------------------------------------------------- */

static __device__ inline float unop(int op, float v, float p) {
    switch (op) {
    case NB_GPU_NEG: return -v;
    case NB_GPU_EXP: return expf(v);
    case NB_GPU_LOG: return logf(v);
    case NB_GPU_SQRT: return sqrtf(v);
    case NB_GPU_ABS: return fabsf(v);
    case NB_GPU_SIGMOID: {
        /* 1 / (1 + e^-v) from e^-|v| <= 1, so nothing overflows: for v < 0
         * it is e^v / (1 + e^v), the same formula as the CPU's. */
        float e = expf(-fabsf(v));
        float r = 1.f / (1.f + e);
        return v < 0.f ? e * r : r;
    }
    case NB_GPU_TANH: return tanhf(v);
    case NB_GPU_RECT: return v < 0.f ? p * v : v; /* eq. 20; a NaN fails v < 0 and passes through */
    case NB_GPU_SCALE: return p * v;
    case NB_GPU_SHIFT: return v + p;
    case NB_GPU_SIGN: return isnan(v) ? v : (float)((v > 0.f) - (v < 0.f));
    case NB_GPU_POW: return powf(v, p);
    case NB_GPU_LOG1P: return log1pf(p * v);
    default: return v * v; /* NB_GPU_SQUARE */
    }
}

static __global__ void unary_kernel(int op, float *o, const float *x, int64_t n, float p) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        o[i] = unop(op, x[i], p);
}

void nb__gpu_unary(nb_gpu_unop op, float *o, const float *x, int64_t n, float p) {
    if (n <= 0) return;
    NB_LAUNCH(unary_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, (int)op, o, x, n, p);
    NB_GPU_CHECK_LAUNCH("unary");
}

/* --- gradients --------------------------------------------------------------- */

/* o = g (x > 0 ? 1 : a), as the CPU's rect_grad_kernel. */
static __global__ void rect_grad_kernel(float *o, const float *g, const float *x, int64_t n, float a) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        o[i] = g[i] * (x[i] > 0.f ? 1.f : a);
}

void nb__gpu_rect_grad(float *o, const float *g, const float *x, int64_t n, float a) {
    if (n <= 0) return;
    NB_LAUNCH(rect_grad_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, o, g, x, n, a);
    NB_GPU_CHECK_LAUNCH("rect_grad");
}

/* o = g y (1 - y), or g (1 - y y) for tanh, in the CPU's order of operations. */
static __global__ void sq_grad_kernel(float *o, const float *g, const float *y, int64_t n, bool is_tanh) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float yi = y[i];
        o[i] = g[i] * (is_tanh ? 1.f - yi * yi : yi * (1.f - yi));
    }
}

void nb__gpu_sq_grad(float *o, const float *g, const float *y, int64_t n, bool tanh) {
    if (n <= 0) return;
    NB_LAUNCH(sq_grad_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, o, g, y, n, tanh);
    NB_GPU_CHECK_LAUNCH("sq_grad");
}

/* --- WaveNet's gated unit (eq. 32), fused --------------------------------------
 * One pass instead of two slices, tanh, sigmoid and a product (and their
 * five backward passes): each thread reads a and b of one position. */

static __global__ void gated_kernel(float *o, const float *x, int64_t N, int64_t M) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < N * M; i += (int64_t)gridDim.x * blockDim.x) {
        const float *xa = x + i / M * 2 * M + i % M;
        o[i] = tanhf(xa[0]) * unop(NB_GPU_SIGMOID, xa[M], 0.f);
    }
}

void nb__gpu_gated(float *o, const float *x, int64_t N, int64_t M) {
    if (N * M <= 0) return;
    NB_LAUNCH(gated_kernel, nb__gpu_blocks(N * M), NB_GPU_THREADS, 0, o, x, N, M);
    NB_GPU_CHECK_LAUNCH("gated");
}

/* da = g (1 - t^2) s, db = g t s (1 - s), in the CPU's order of operations. */
static __global__ void gated_grad_kernel(float *o, const float *x, const float *g, int64_t N, int64_t M) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < N * M; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t at = i / M * 2 * M + i % M;
        float t = tanhf(x[at]), s = unop(NB_GPU_SIGMOID, x[at + M], 0.f), gi = g[i];
        o[at] = gi * (1.f - t * t) * s;
        o[at + M] = gi * t * s * (1.f - s);
    }
}

void nb__gpu_gated_grad(float *o, const float *x, const float *g, int64_t N, int64_t M) {
    if (N * M <= 0) return;
    NB_LAUNCH(gated_grad_kernel, nb__gpu_blocks(N * M), NB_GPU_THREADS, 0, o, x, g, N, M);
    NB_GPU_CHECK_LAUNCH("gated_grad");
}

/* y += x. */
static __global__ void accum_kernel(float *y, const float *x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

void nb__gpu_accum(float *y, const float *x, int64_t n) {
    if (n <= 0) return;
    NB_LAUNCH(accum_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, y, x, n);
    NB_GPU_CHECK_LAUNCH("accum");
}
