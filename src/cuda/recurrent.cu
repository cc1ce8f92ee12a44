/* recurrent.cu — the gate kernels of the fused recurrent layer
 * (src/ops/recurrent.c): one launch per time step applies every gate of a
 * plain RNN (eq. 10.8), LSTM or GRU cell after the step's GEMM, and one per
 * step of back-propagation through time (eq. 10.18-10.23) turns dL/dh_t into
 * dL/d(pre-activations) before the GEMM with W_hh. They are the CPU's
 * rnn/lstm/gru _fwd_step and _bwd_step, element for element: a thread owns
 * one (b, j) of the [B, H] state and reads and writes that unit's G gates,
 * so no two threads touch the same element (no atomics, nothing to order),
 * and each expression is written in the CPU's order of operations, so the
 * two devices differ only by their exp and tanh. */
#include "common.h"

/* The logistic sigmoid from e^-|v| <= 1, so nothing overflows: for v < 0 it
 * is e^v / (1 + e^v), the CPU's nb__vsigmoidf with the exact expf. */
static __device__ inline float sigm(float v) {
    float e = expf(-fabsf(v));
    float r = 1.f / (1.f + e);
    return v < 0.f ? e * r : r;
}

/* --- biases --------------------------------------------------------------- */

static __global__ void rnn_bias_kernel(float *bx, float *bh, const float *b_ih, const float *b_hh, int64_t n,
                                       bool sum) {
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (int64_t)gridDim.x * blockDim.x) {
        float x = b_ih ? b_ih[j] : 0.f, h = b_hh ? b_hh[j] : 0.f;
        bx[j] = sum ? x + h : x;
        bh[j] = h;
    }
}

void nb__gpu_rnn_bias(float *bx, float *bh, const float *b_ih, const float *b_hh, int64_t n, bool sum) {
    if (n <= 0) return;
    NB_LAUNCH(rnn_bias_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, bx, bh, b_ih, b_hh, n, sum);
    NB_GPU_CHECK_LAUNCH("rnn_bias");
}

/* --- forward: one step, after g = h_{t-1} W_hh^T ------------------------- */

/* eq. 10.8: h_t = tanh(W h_{t-1} + U x_t + b), g = W h_{t-1}, xw = U x_t. */
static __global__ void rnn_fwd_kernel(int64_t B, int64_t H, const float *xw, const float *bs, const float *g,
                                      float *h) {
    int64_t n = B * H;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x)
        h[k] = tanhf(g[k] + xw[k] + bs[k % H]);
}

void nb__gpu_rnn_fwd(int64_t B, int64_t H, const float *xw, const float *bs, const float *g, float *h) {
    if (B * H <= 0) return;
    NB_LAUNCH(rnn_fwd_kernel, nb__gpu_blocks(B * H), NB_GPU_THREADS, 0, B, H, xw, bs, g, h);
    NB_GPU_CHECK_LAUNCH("rnn_fwd");
}

/* LSTM, gates i f g o: z holds h_{t-1} W_hh^T on entry and the activations
 * on return (the backward's `act`); tc receives tanh(c_t). */
static __global__ void lstm_fwd_kernel(int64_t B, int64_t H, const float *xw, const float *bs, float *z,
                                       const float *cprev, float *h, float *c, float *tc) {
    int64_t n = B * H, G = 4 * H;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = k / H, j = k % H;
        float *zb = z + b * G;
        const float *xb = xw + b * G;
        float i = sigm(zb[j] + xb[j] + bs[j]);
        float f = sigm(zb[H + j] + xb[H + j] + bs[H + j]);
        float gg = tanhf(zb[2 * H + j] + xb[2 * H + j] + bs[2 * H + j]);
        float o = sigm(zb[3 * H + j] + xb[3 * H + j] + bs[3 * H + j]);
        zb[j] = i;
        zb[H + j] = f;
        zb[2 * H + j] = gg;
        zb[3 * H + j] = o;
        float cv = f * cprev[k] + i * gg, t = tanhf(cv);
        c[k] = cv;
        tc[k] = t;
        h[k] = o * t;
    }
}

void nb__gpu_lstm_fwd(int64_t B, int64_t H, const float *xw, const float *bs, float *z, const float *cprev, float *h,
                      float *c, float *tc) {
    if (B * H <= 0) return;
    NB_LAUNCH(lstm_fwd_kernel, nb__gpu_blocks(B * H), NB_GPU_THREADS, 0, B, H, xw, bs, z, cprev, h, c, tc);
    NB_GPU_CHECK_LAUNCH("lstm_fwd");
}

/* GRU, gates r z n: zg holds h_{t-1} W_hh^T on entry and r z n on return;
 * hn receives h_n = (h_{t-1} W_hh^T)_n + b_hn, which dr needs. */
static __global__ void gru_fwd_kernel(int64_t B, int64_t H, const float *xw, const float *bx, const float *bh,
                                      float *zg, const float *hprev, float *hn, float *h) {
    int64_t n = B * H, G = 3 * H;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = k / H, j = k % H;
        const float *xb = xw + b * G;
        float *gb = zg + b * G;
        float r = sigm(xb[j] + bx[j] + gb[j] + bh[j]);
        float z = sigm(xb[H + j] + bx[H + j] + gb[H + j] + bh[H + j]);
        float hnv = gb[2 * H + j] + bh[2 * H + j];
        float nv = tanhf(xb[2 * H + j] + bx[2 * H + j] + r * hnv);
        gb[j] = r;
        gb[H + j] = z;
        gb[2 * H + j] = nv;
        hn[k] = hnv;
        h[k] = nv + z * (hprev[k] - nv);
    }
}

void nb__gpu_gru_fwd(int64_t B, int64_t H, const float *xw, const float *bx, const float *bh, float *zg,
                     const float *hprev, float *hn, float *h) {
    if (B * H <= 0) return;
    NB_LAUNCH(gru_fwd_kernel, nb__gpu_blocks(B * H), NB_GPU_THREADS, 0, B, H, xw, bx, bh, zg, hprev, hn, h);
    NB_GPU_CHECK_LAUNCH("gru_fwd");
}

/* --- backward: one step ---------------------------------------------------
 * dL/dh_t is go (from outside the layer) + dnext (from step t+1, eq. 10.20). */

/* eq. 10.21 for one step: da = dh (1 - h_t^2). */
static __global__ void rnn_bwd_kernel(int64_t B, int64_t H, const float *go, const float *dnext, const float *h,
                                      float *da) {
    int64_t n = B * H;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x)
        da[k] = (go[k] + dnext[k]) * (1.f - h[k] * h[k]);
}

void nb__gpu_rnn_bwd(int64_t B, int64_t H, const float *go, const float *dnext, const float *h, float *da) {
    if (B * H <= 0) return;
    NB_LAUNCH(rnn_bwd_kernel, nb__gpu_blocks(B * H), NB_GPU_THREADS, 0, B, H, go, dnext, h, da);
    NB_GPU_CHECK_LAUNCH("rnn_bwd");
}

/* LSTM: dc = goc + dcn + dh o (1 - tanh^2 c); the four gates' dz from the
 * saved activations; dcn becomes dL/dc_{t-1} = dc f (its own element only). */
static __global__ void lstm_bwd_kernel(int64_t B, int64_t H, const float *goh, const float *goc, const float *dhn,
                                       float *dcn, const float *act, const float *tc, const float *cprev, float *dz) {
    int64_t n = B * H, G = 4 * H;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = k / H, j = k % H;
        const float *ab = act + b * G;
        float *db = dz + b * G;
        float i = ab[j], f = ab[H + j], g = ab[2 * H + j], o = ab[3 * H + j], t = tc[k];
        float dh = goh[k] + dhn[k];
        float dc = goc[k] + dcn[k] + dh * o * (1.f - t * t);
        db[j] = dc * g * i * (1.f - i);
        db[H + j] = dc * cprev[k] * f * (1.f - f);
        db[2 * H + j] = dc * i * (1.f - g * g);
        db[3 * H + j] = dh * t * o * (1.f - o);
        dcn[k] = dc * f;
    }
}

void nb__gpu_lstm_bwd(int64_t B, int64_t H, const float *goh, const float *goc, const float *dhn, float *dcn,
                      const float *act, const float *tc, const float *cprev, float *dz) {
    if (B * H <= 0) return;
    NB_LAUNCH(lstm_bwd_kernel, nb__gpu_blocks(B * H), NB_GPU_THREADS, 0, B, H, goh, goc, dhn, dcn, act, tc, cprev,
              dz);
    NB_GPU_CHECK_LAUNCH("lstm_bwd");
}

/* GRU: the input side (dzx) and the hidden side (dzh) differ in the n gate
 * (r multiplies h_n only); dnext becomes the direct part dh z of
 * dL/dh_{t-1}, to which the GEMM with W_hh adds the rest. */
static __global__ void gru_bwd_kernel(int64_t B, int64_t H, const float *go, float *dnext, const float *act,
                                      const float *hn, const float *hprev, float *dzx, float *dzh) {
    int64_t n = B * H, G = 3 * H;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = k / H, j = k % H;
        const float *ab = act + b * G;
        float *dx = dzx + b * G, *dhh = dzh + b * G;
        float r = ab[j], z = ab[H + j], nv = ab[2 * H + j];
        float dh = go[k] + dnext[k];
        float dan = dh * (1.f - z) * (1.f - nv * nv);
        float dar = dan * hn[k] * r * (1.f - r);
        float daz = dh * (hprev[k] - nv) * z * (1.f - z);
        dx[j] = dhh[j] = dar;
        dx[H + j] = dhh[H + j] = daz;
        dx[2 * H + j] = dan;
        dhh[2 * H + j] = dan * r;
        dnext[k] = dh * z;
    }
}

void nb__gpu_gru_bwd(int64_t B, int64_t H, const float *go, float *dnext, const float *act, const float *hn,
                     const float *hprev, float *dzx, float *dzh) {
    if (B * H <= 0) return;
    NB_LAUNCH(gru_bwd_kernel, nb__gpu_blocks(B * H), NB_GPU_THREADS, 0, B, H, go, dnext, act, hn, hprev, dzx, dzh);
    NB_GPU_CHECK_LAUNCH("gru_bwd");
}
