/* pool.cu — max and average pooling over k x k windows of NCHW images, and
 * the two adjoints their backward rules need: the max's gradient routed to
 * each window's argmax, and the average's spread back over each window.
 *
 * Every kernel has one thread per element it writes. The adjoints are
 * written as gathers, not scatters: with overlapping windows (s < k) an
 * input element belongs to several windows, and adding their gradients with
 * atomics would make the sum's order, so its bits, depend on timing. Here
 * each input element walks the windows that cover it in row-major order,
 * the order in which the CPU adds them, and writes its sum once. */
#include "common.h"
#include <math.h>

/* The windows along one axis that cover input position h: [*lo, *hi]
 * (empty when *lo > *hi: a last row or column no window reaches). Window o
 * covers o s - p .. o s - p + k - 1, so o s <= h + p and o s >= h + p - k + 1. */
static __device__ inline void covering(int64_t h, int64_t k, int64_t s, int64_t p, int64_t on, int64_t *lo,
                                       int64_t *hi) {
    int64_t a = h + p - k + 1; /* the first window must start at or after a */
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t b = (h + p) / s;
    *hi = b < on - 1 ? b : on - 1;
}

/* The part of window o inside the input along one axis: [*lo, *hi). */
static __device__ inline void clipped(int64_t o, int64_t k, int64_t s, int64_t p, int64_t n, int64_t *lo,
                                      int64_t *hi) {
    int64_t a = o * s - p, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > n ? n : b;
}

/* --- max pooling ------------------------------------------------------------ */

/* y[o] = the max of window o, scanned row-major: the first maximum wins, and
 * the first NaN, if any, wins over everything (as the CPU and PyTorch).
 * Padding is never read, which is padding as -inf: every window holds an
 * element of x (p <= k / 2). idx[o] (unless NULL): the flat index in x of
 * the winner. */
static __global__ void maxpool_kernel(float *y, int64_t *idx, const float *x, nb_gpu_pool g) {
    int64_t n = g.planes * g.OH * g.OW;
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        int64_t ow = o % g.OW, oh = o / g.OW % g.OH, pl = o / (g.OW * g.OH);
        int64_t h0, h1, w0, w1;
        clipped(oh, g.k, g.s, g.p, g.H, &h0, &h1);
        clipped(ow, g.k, g.s, g.p, g.W, &w0, &w1);
        const float *xp = x + pl * g.H * g.W;
        float best = -INFINITY;
        int64_t bi = h0 * g.W + w0; /* a window of -inf picks its first element */
        bool nan = false;
        for (int64_t h = h0; h < h1 && !nan; h++)
            for (int64_t w = w0; w < w1; w++) {
                float v = xp[h * g.W + w];
                if (v != v) {
                    best = v, bi = h * g.W + w, nan = true;
                    break;
                }
                if (v > best) best = v, bi = h * g.W + w;
            }
        y[o] = best;
        if (idx) idx[o] = pl * g.H * g.W + bi;
    }
}

void nb__gpu_maxpool(float *y, int64_t *idx, const float *x, const nb_gpu_pool *g) {
    int64_t n = g->planes * g->OH * g->OW;
    if (n <= 0) return;
    NB_LAUNCH(maxpool_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, y, idx, x, *g);
    NB_GPU_CHECK_LAUNCH("maxpool");
}

/* dx[i] = the sum of g[o] over the windows o that cover i and chose it
 * (idx[o] == i), in row-major order of o; 0 for an element no window chose.
 * A window can only choose an element it covers, so looking at those
 * windows alone (at most ceil(k/s)^2) finds every contribution. */
static __global__ void maxpool_scatter_kernel(float *dx, const float *g, const int64_t *idx, nb_gpu_pool q) {
    int64_t n = q.planes * q.H * q.W;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t w = i % q.W, h = i / q.W % q.H, pl = i / (q.W * q.H);
        int64_t oh0, oh1, ow0, ow1;
        covering(h, q.k, q.s, q.p, q.OH, &oh0, &oh1);
        covering(w, q.k, q.s, q.p, q.OW, &ow0, &ow1);
        float acc = 0.f;
        for (int64_t oh = oh0; oh <= oh1; oh++)
            for (int64_t ow = ow0; ow <= ow1; ow++) {
                int64_t o = (pl * q.OH + oh) * q.OW + ow;
                if (idx[o] == i) acc += g[o];
            }
        dx[i] = acc;
    }
}

void nb__gpu_maxpool_scatter(float *dx, const float *g, const int64_t *idx, const nb_gpu_pool *q) {
    int64_t n = q->planes * q->H * q->W;
    if (n <= 0) return;
    NB_LAUNCH(maxpool_scatter_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, dx, g, idx, *q);
    NB_GPU_CHECK_LAUNCH("maxpool_scatter");
}

/* --- average pooling -------------------------------------------------------- */

/* y[o] = (sum of window o inside x) / k^2: padding counts as zeros in the sum
 * and in the divisor (count_include_pad). The sum runs row-major from 0, as
 * the CPU's, then is scaled once. */
static __global__ void avgpool_kernel(float *y, const float *x, nb_gpu_pool g, float scale) {
    int64_t n = g.planes * g.OH * g.OW;
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        int64_t ow = o % g.OW, oh = o / g.OW % g.OH, pl = o / (g.OW * g.OH);
        int64_t h0, h1, w0, w1;
        clipped(oh, g.k, g.s, g.p, g.H, &h0, &h1);
        clipped(ow, g.k, g.s, g.p, g.W, &w0, &w1);
        const float *xp = x + pl * g.H * g.W;
        float sum = 0.f;
        for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) sum += xp[h * g.W + w];
        y[o] = sum * scale;
    }
}

void nb__gpu_avgpool(float *y, const float *x, const nb_gpu_pool *g) {
    int64_t n = g->planes * g->OH * g->OW;
    if (n <= 0) return;
    NB_LAUNCH(avgpool_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, y, x, *g, 1.f / (float)(g->k * g->k));
    NB_GPU_CHECK_LAUNCH("avgpool");
}

/* dx[i] = the sum of g[o] / k^2 over the windows o that cover i, in
 * row-major order of o, each term scaled before it is added, as on the CPU
 * (nvcc may fuse the scaling into the add: then within an ulp of it). */
static __global__ void avgpool_adjoint_kernel(float *dx, const float *g, nb_gpu_pool q, float scale) {
    int64_t n = q.planes * q.H * q.W;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t w = i % q.W, h = i / q.W % q.H, pl = i / (q.W * q.H);
        int64_t oh0, oh1, ow0, ow1;
        covering(h, q.k, q.s, q.p, q.OH, &oh0, &oh1);
        covering(w, q.k, q.s, q.p, q.OW, &ow0, &ow1);
        const float *gp = g + pl * q.OH * q.OW;
        float acc = 0.f;
        for (int64_t oh = oh0; oh <= oh1; oh++)
            for (int64_t ow = ow0; ow <= ow1; ow++) acc += gp[oh * q.OW + ow] * scale;
        dx[i] = acc;
    }
}

void nb__gpu_avgpool_adjoint(float *dx, const float *g, const nb_gpu_pool *q) {
    int64_t n = q->planes * q->H * q->W;
    if (n <= 0) return;
    NB_LAUNCH(avgpool_adjoint_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, dx, g, *q, 1.f / (float)(q->k * q->k));
    NB_GPU_CHECK_LAUNCH("avgpool_adjoint");
}
