/* conv.cu — the two data movements that turn a 2-D convolution (eq. 9.6)
 * into matrix products: im2col, which lays each output position's receptive
 * field out as a column so that the convolution is one GEMM per image, and
 * its adjoint col2im, which carries the columns' gradients back onto the
 * image. The GEMMs themselves are cuBLAS's (nb__gpu_gemm); src/ops/conv.c
 * drives both.
 *
 * col2im is written as a gather, one thread per image element summing the
 * column entries that came from it, rather than as a scatter with atomicAdd
 * from each column entry: no two threads write one place, and every sum is
 * added in an order fixed by the geometry, so the result has the same bits on
 * every run. */
#include "common.h"

/* --- im2col ------------------------------------------------------------------ */

/* One thread per column entry (i, k, p), k = (c KH + kh) KW + kw and
 * p = oh OW + ow, p fastest: consecutive threads write consecutive floats
 * and read one image row at stride sw. */
static __global__ void im2col_kernel(float *col, const float *x, int64_t n, nb_gpu_conv g) {
    int64_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, total = n * K * P;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = e % P, r = e / P;
        int64_t k = r % K, i = r / K;
        int64_t ow = p % g.OW, oh = p / g.OW;
        int64_t kw = k % g.KW, kh = k / g.KW % g.KH, c = k / (g.KW * g.KH);
        int64_t ih = oh * g.sh - g.pt + kh * g.dh, iw = ow * g.sw - g.pl + kw * g.dw;
        bool inside = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
        col[e] = inside ? x[((i * g.C + c) * g.H + ih) * g.W + iw] : 0.f;
    }
}

void nb__gpu_im2col(float *col, const float *x, int64_t n, const nb_gpu_conv *g) {
    int64_t total = n * g->C * g->KH * g->KW * g->OH * g->OW;
    if (total <= 0) return;
    NB_LAUNCH(im2col_kernel, nb__gpu_blocks(total), NB_GPU_THREADS, 0, col, x, n, *g);
    NB_GPU_CHECK_LAUNCH("im2col");
}

/* --- col2im (a gather) --------------------------------------------------------- */

/* One thread per image element (i, c, h, w). Tap (kh, kw) read it for the
 * output position (oh, ow) with oh sh = h + pt - kh dh and ow sw = w + pl -
 * kw dw, when both divide exactly and land inside the output: at most one
 * position per tap. The taps are visited kh-major, the order in which the
 * CPU's col2im (src/ops/conv.c) adds them into an element, so from the same
 * columns both give the same float sum. h + pt - kh dh falls as kh grows, so
 * the first negative one ends the loop (likewise for kw). */
static __global__ void col2im_kernel(float *x, const float *col, int64_t n, nb_gpu_conv g) {
    int64_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, total = n * g.C * g.H * g.W;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t w = e % g.W, r = e / g.W;
        int64_t h = r % g.H;
        r /= g.H;
        int64_t c = r % g.C, i = r / g.C;
        const float *ci = col + (i * K + c * g.KH * g.KW) * P; /* the rows of channel c's taps */
        float s = 0.f;
        for (int64_t kh = 0; kh < g.KH; kh++) {
            int64_t th = h + g.pt - kh * g.dh;
            if (th < 0) break;
            if (th % g.sh) continue;
            int64_t oh = th / g.sh;
            if (oh >= g.OH) continue;
            for (int64_t kw = 0; kw < g.KW; kw++) {
                int64_t tw = w + g.pl - kw * g.dw;
                if (tw < 0) break;
                if (tw % g.sw) continue;
                int64_t ow = tw / g.sw;
                if (ow >= g.OW) continue;
                s += ci[(kh * g.KW + kw) * P + oh * g.OW + ow];
            }
        }
        x[e] = s;
    }
}

void nb__gpu_col2im(float *x, const float *col, int64_t n, const nb_gpu_conv *g) {
    int64_t total = n * g->C * g->H * g->W;
    if (total <= 0) return;
    NB_LAUNCH(col2im_kernel, nb__gpu_blocks(total), NB_GPU_THREADS, 0, x, col, n, *g);
    NB_GPU_CHECK_LAUNCH("col2im");
}
