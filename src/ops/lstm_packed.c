/* lstm_packed.c — one LSTM layer over sequences of different lengths, packed
 * step by step (PyTorch's PackedSequence layout), returning each sequence's
 * last hidden state: the encoder of the dual-encoder chatbot (notes §4.4).
 *
 * Sequences are sorted by falling length, so the ones still running at step
 * t are a prefix 0..batch[t]-1 of the batch: the step's GEMM and gate pass
 * cover exactly those rows, and padding costs nothing. The backward runs the
 * same prefixes in reverse (BPTT); a sequence's output gradient enters at its
 * own last step. Gates in PyTorch's order i, f, g, o (see nabla.h,
 * "Recurrent networks").
 *
 * On the GPU the same loops run with cuBLAS for the GEMMs and the LSTM step
 * kernels of src/cuda/recurrent.cu for the gate passes: a step's running
 * rows are a contiguous prefix of its packed rows, which is the [B, 4H] /
 * [B, H] layout those kernels take. What the backward keeps stays in the GPU
 * arena; only batch and off (sizes) live on the host. */
#include "../core/internal.h"
#include "../core/vmath.h"
#include <cblas.h>

typedef struct {
    nb_device device;
    int64_t T, n, H, N;
    int64_t *batch, *off; /* host: off[t] is the first packed row of step t; off[T] = N */
    float *act;           /* [N, 4H] i f g o after their nonlinearity */
    float *tc;            /* [N, H] tanh(c_t) */
    float *hs, *cs;       /* [N, H] h_t and c_t */
    /* GPU: [n, H] zeros, standing for c_{-1} and for the kernels' outer
     * gradients, which the CPU's steps do without (a NULL cprev, dh and dc
     * carrying everything). Adding these zeros changes no value. */
    float *zero;
} pk_saved;

/* c = op(a) op(b) + beta c, row-major, on either device (m x k times k x n;
 * lda, ldb, ldc row strides in floats). */
static void pk_gemm(nb_device d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (d == NB_CUDA)
        nb__gpu_gemm(ta, tb, m, n, k, 1.f, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
    else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                    (int)k, 1.f, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* n floats of step-arena scratch on device d. */
static float *pk_scratch(nb_device d, int64_t n) {
    size_t bytes = sizeof(float) * (size_t)n;
    return d == NB_CUDA ? nb__arena_alloc_gpu(bytes) : nb_arena_alloc(bytes);
}

/* n floats from src to dst, both on device d. */
static void pk_copy(nb_device d, float *dst, const float *src, int64_t n) {
    size_t bytes = sizeof(float) * (size_t)n;
    if (d == NB_CUDA) nb__gpu_copy(dst, src, bytes);
    else memcpy(dst, src, bytes);
}

/* The rows b < B of step t: z holds h_{t-1} W^T (zeros at t = 0) on entry. */
static void pk_fwd_step(int64_t B, int64_t H, const float *restrict xw, const float *restrict bs, float *restrict z,
                        const float *restrict cprev, float *restrict h, float *restrict c, float *restrict tc) {
    int64_t G = 4 * H;
    NB_PARALLEL_FOR(B * G, for (int64_t b = 0; b < B; b++) {
        float *zb = z + b * G;
        const float *xb = xw + b * G;
        NB_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; j++) {
            float i = nb__vsigmoidf(zb[j] + xb[j] + bs[j]);
            float f = nb__vsigmoidf(zb[H + j] + xb[H + j] + bs[H + j]);
            float g = nb__vtanhf(zb[2 * H + j] + xb[2 * H + j] + bs[2 * H + j]);
            float o = nb__vsigmoidf(zb[3 * H + j] + xb[3 * H + j] + bs[3 * H + j]);
            zb[j] = i, zb[H + j] = f, zb[2 * H + j] = g, zb[3 * H + j] = o;
            float cv = (cprev ? f * cprev[b * H + j] : 0.f) + i * g, t = nb__vtanhf(cv);
            c[b * H + j] = cv;
            tc[b * H + j] = t;
            h[b * H + j] = o * t;
        }
    });
}

/* dh, dc [B, H]: dL/dh_t, dL/dc_t of the running rows; writes dz [B, 4H]
 * and leaves dL/dc_{t-1} in dc (dh is overwritten by the caller's GEMM). */
static void pk_bwd_step(int64_t B, int64_t H, const float *restrict dh, float *restrict dc, const float *restrict act,
                        const float *restrict tc, const float *restrict cprev, float *restrict dz) {
    int64_t G = 4 * H;
    NB_PARALLEL_FOR(B * G, for (int64_t b = 0; b < B; b++) {
        const float *ab = act + b * G;
        float *db = dz + b * G;
        NB_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; j++) {
            int64_t k = b * H + j;
            float i = ab[j], f = ab[H + j], g = ab[2 * H + j], o = ab[3 * H + j], t = tc[k];
            float cp = cprev ? cprev[k] : 0.f;
            float d = dc[k] + dh[k] * o * (1.f - t * t);
            db[j] = d * g * i * (1.f - i);
            db[H + j] = d * cp * f * (1.f - f);
            db[2 * H + j] = d * i * (1.f - g * g);
            db[3 * H + j] = dh[k] * t * o * (1.f - o);
            dc[k] = d * f;
        }
    });
}

/* The same layer from nb_* ops, for the double backward. */
static nb_tensor *pk_from_ops(const pk_saved *s, nb_tensor *xw, nb_tensor *w, nb_tensor *bih, nb_tensor *bhh) {
    int64_t H = s->H;
    nb_tensor *h = NULL, *c = NULL;
    nb_tensor **fin = nb_arena_alloc(sizeof(nb_tensor *) * (size_t)s->T);
    int nfin = 0;
    for (int64_t t = 0; t < s->T; t++) {
        int64_t B = s->batch[t], next = t + 1 < s->T ? s->batch[t + 1] : 0;
        nb_tensor *z = nb_slice(xw, 0, s->off[t], s->off[t] + B);
        if (bih) z = nb_add(z, bih);
        if (bhh) z = nb_add(z, bhh);
        if (t) z = nb_add(z, nb_matmul_t(nb_slice(h, 0, 0, B), w, false, true));
        nb_tensor *i = nb_sigmoid(nb_slice(z, 1, 0, H)), *f = nb_sigmoid(nb_slice(z, 1, H, 2 * H));
        nb_tensor *g = nb_tanh(nb_slice(z, 1, 2 * H, 3 * H)), *o = nb_sigmoid(nb_slice(z, 1, 3 * H, 4 * H));
        c = t ? nb_add(nb_mul(f, nb_slice(c, 0, 0, B)), nb_mul(i, g)) : nb_mul(i, g);
        h = nb_mul(o, nb_tanh(c));
        if (next < B) fin[nfin++] = nb_slice(h, 0, next, B);
    }
    /* Sequences ending last come first (they are the longest). */
    for (int a = 0, b = nfin - 1; a < b; a++, b--) {
        nb_tensor *x = fin[a];
        fin[a] = fin[b], fin[b] = x;
    }
    return nfin == 1 ? fin[0] : nb_concat(fin, nfin, 0);
}

static void pk_bw(nb_node *n, nb_tensor *g) {
    const pk_saved *s = n->aux;
    nb_tensor *xw = n->in[0], *w = n->in[1], *bih = n->in[2], *bhh = n->in[3];
    if (nb_grad_enabled()) { /* the gradient is recorded: replay the cells as ops */
        nb_node *mark = *nb__tape();
        nb_tensor *out = pk_from_ops(s, xw, w, bih, bhh);
        if (!out->node) return;
        out->tgrad = nb__whole(n->out, g);
        for (nb_node *m = out->node; m && m != mark; m = m->prev) {
            nb__node_backward(m);
            m->out->tgrad = NULL;
        }
        return;
    }
    g = nb__whole(n->out, g);
    nb_device dev = s->device;
    bool gpu = dev == NB_CUDA;
    int64_t T = s->T, H = s->H, G = 4 * H, N = s->N;
    nb_tensor *dz = nb__new_on(dev, 2, (int64_t[]){N, G});
    float *dh = pk_scratch(dev, s->n * H), *dc = pk_scratch(dev, s->n * H);
    if (gpu) {
        nb__gpu_fill(dh, s->n * H, 0.f);
        nb__gpu_fill(dc, s->n * H, 0.f);
    } else {
        memset(dh, 0, sizeof(float) * (size_t)(s->n * H));
        memset(dc, 0, sizeof(float) * (size_t)(s->n * H));
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        int64_t B = s->batch[t], next = t + 1 < T ? s->batch[t + 1] : 0, o = s->off[t];
        const float *cprev = t ? s->cs + s->off[t - 1] * H : NULL;
        /* The sequences whose last step is t receive their output gradient. */
        if (gpu) {
            if (next < B) nb__gpu_accum(dh + next * H, g->data + next * H, (B - next) * H);
            /* dh and dc enter as dhn and dcn; the outer gradients are zeros. */
            nb__gpu_lstm_bwd(B, H, s->zero, s->zero, dh, dc, s->act + o * G, s->tc + o * H, cprev ? cprev : s->zero,
                             dz->data + o * G);
        } else {
            for (int64_t k = next * H; k < B * H; k++) dh[k] += g->data[k];
            pk_bwd_step(B, H, dh, dc, s->act + o * G, s->tc + o * H, cprev, dz->data + o * G);
        }
        /* dL/dh_{t-1} = dz_t W_hh for the running rows. */
        if (t) pk_gemm(dev, false, false, B, H, G, dz->data + o * G, G, w->data, H, 0.f, dh, H);
    }
    if (xw->requires_grad) nb__accum(xw, dz);
    if (w->requires_grad && T > 1) {
        /* dW = sum_t dz_t^T h_{t-1}: the previous states of the rows of steps
         * 1..T-1 gathered into one matrix, then one GEMM. */
        int64_t R = N - s->batch[0];
        float *hp = pk_scratch(dev, R * H);
        for (int64_t t = 1; t < T; t++)
            pk_copy(dev, hp + (s->off[t] - s->batch[0]) * H, s->hs + s->off[t - 1] * H, s->batch[t] * H);
        nb_tensor *dw = nb__new_on(dev, 2, w->shape);
        pk_gemm(dev, true, false, G, H, R, dz->data + s->batch[0] * G, G, hp, H, 0.f, dw->data, H);
        nb__accum(w, dw);
    }
    if ((bih && bih->requires_grad) || (bhh && bhh->requires_grad)) {
        /* Both biases enter every pre-activation alike: one sum serves both. */
        nb_tensor *db = nb__new_on(dev, 1, (int64_t[]){G});
        if (gpu) {
            nb__gpu_sum_mid(db->data, dz->data, 1, N, G); /* in double, as below */
        } else {
            double *acc = nb_arena_alloc(sizeof(double) * (size_t)G);
            for (int64_t j = 0; j < G; j++) acc[j] = 0;
            for (int64_t r = 0; r < N; r++)
                for (int64_t j = 0; j < G; j++) acc[j] += dz->data[r * G + j];
            for (int64_t j = 0; j < G; j++) db->data[j] = (float)acc[j];
        }
        if (bih && bih->requires_grad) nb__accum(bih, db);
        if (bhh && bhh->requires_grad) nb__accum(bhh, db);
    }
}
static const nb_op op_lstm_packed = {"lstm_packed", pk_bw};

nb_tensor *nb_lstm_packed(nb_tensor *xw, const int64_t *batch, int64_t T, nb_tensor *w_hh, nb_tensor *b_ih,
                          nb_tensor *b_hh) {
    nb_device dev = NB_DEVICE("lstm_packed", xw, w_hh, b_ih, b_hh);
    bool gpu = dev == NB_CUDA;
    if (T < 1) nb_fatal("lstm_packed", "need at least one step, got T = %lld", (long long)T);
    if (w_hh->ndim != 2 || w_hh->shape[1] < 1 || w_hh->shape[0] != 4 * w_hh->shape[1])
        nb__shape_fatal("lstm_packed", w_hh, NULL, "weight_hh must be [4H, H]");
    int64_t H = w_hh->shape[1], G = 4 * H, n = batch[0], N = 0;
    for (int64_t t = 0; t < T; t++) {
        if (batch[t] < 1 || (t && batch[t] > batch[t - 1]))
            nb_fatal("lstm_packed", "batch sizes must be >= 1 and non-increasing: batch[%lld] = %lld after %lld",
                     (long long)t, (long long)batch[t], (long long)(t ? batch[t - 1] : 0));
        N += batch[t];
    }
    if (xw->ndim != 2 || xw->shape[0] != N || xw->shape[1] != G)
        nb__shape_fatal("lstm_packed", xw, w_hh, "the input projection must be [sum of batch sizes, 4H]");
    if (b_ih && b_ih->size != G) nb__shape_fatal("lstm_packed", b_ih, w_hh, "bias_ih must be [4H]");
    if (b_hh && b_hh->size != G) nb__shape_fatal("lstm_packed", b_hh, w_hh, "bias_hh must be [4H]");
    pk_saved *s = nb_arena_alloc(sizeof *s);
    *s = (pk_saved){.device = dev, .T = T, .n = n, .H = H, .N = N};
    s->batch = nb_arena_alloc(sizeof(int64_t) * (size_t)T);
    s->off = nb_arena_alloc(sizeof(int64_t) * (size_t)(T + 1));
    memcpy(s->batch, batch, sizeof(int64_t) * (size_t)T);
    s->off[0] = 0;
    for (int64_t t = 0; t < T; t++) s->off[t + 1] = s->off[t] + batch[t];
    s->act = pk_scratch(dev, N * G);
    s->tc = pk_scratch(dev, N * H);
    s->hs = pk_scratch(dev, N * H);
    s->cs = pk_scratch(dev, N * H);
    float *bs = pk_scratch(dev, G);
    if (gpu) {
        /* bs = b_ih + b_hh (a NULL bias as zeros); the kernel's second output
         * (b_hh alone) is not needed by an LSTM. */
        nb__gpu_rnn_bias(bs, pk_scratch(dev, G), b_ih ? b_ih->data : NULL, b_hh ? b_hh->data : NULL, G, true);
        s->zero = pk_scratch(dev, n * H);
        nb__gpu_fill(s->zero, n * H, 0.f);
    } else {
        for (int64_t j = 0; j < G; j++) bs[j] = (b_ih ? b_ih->data[j] : 0.f) + (b_hh ? b_hh->data[j] : 0.f);
    }
    nb_tensor *out = nb__new_on(dev, 2, (int64_t[]){n, H});
    for (int64_t t = 0; t < T; t++) {
        int64_t B = batch[t], o = s->off[t], next = t + 1 < T ? batch[t + 1] : 0;
        float *z = s->act + o * G;
        const float *cprev = t ? s->cs + s->off[t - 1] * H : NULL;
        if (t) pk_gemm(dev, false, true, B, G, H, s->hs + s->off[t - 1] * H, H, w_hh->data, H, 0.f, z, G);
        else if (gpu) nb__gpu_fill(z, B * G, 0.f);
        else memset(z, 0, sizeof(float) * (size_t)(B * G));
        if (gpu)
            nb__gpu_lstm_fwd(B, H, xw->data + o * G, bs, z, cprev ? cprev : s->zero, s->hs + o * H, s->cs + o * H,
                             s->tc + o * H);
        else
            pk_fwd_step(B, H, xw->data + o * G, bs, z, cprev, s->hs + o * H, s->cs + o * H, s->tc + o * H);
        /* The sequences ending at step t: their rows of the output. */
        if (next < B) pk_copy(dev, out->data + next * H, s->hs + (o + next) * H, (B - next) * H);
    }
    nb_node *nd = nb__record(&op_lstm_packed, out, (nb_tensor *[]){xw, w_hh, b_ih, b_hh}, 4);
    if (nd) nd->aux = s;
    return out;
}
