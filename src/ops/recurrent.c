/* recurrent.c — the fused recurrent-layer op: a plain RNN (eq. 10.8), LSTM or
 * GRU cell run over a whole sequence, with back-propagation through time
 * (eq. 10.18-10.23) as one fused kernel, and exact second derivatives by
 * differentiating the same cell written with nb_* ops.
 *
 * Why fused: a cell built from nb_* ops costs about twenty small ops per
 * time step, each a pass over memory, and its weight gradient would be T
 * GEMMs with an inner dimension of only the batch size. Here the forward is
 * one GEMM per step (h W_hh^T; the input projection x W_ih^T of all steps is
 * a single GEMM made by the caller) followed by one pass that applies every
 * gate; the backward is one pass and one GEMM (dz W_hh) per step, and the
 * weight and bias gradients are each ONE product over all T*B rows.
 *
 * On the GPU the same loops run with cuBLAS for the GEMMs and the kernels of
 * src/cuda/recurrent.cu (the step kernels below, element for element) for
 * the passes; everything the backward keeps stays in the GPU arena. */
#include "../core/internal.h"
#include "../core/vmath.h"
#include <cblas.h>
#include <math.h>

/* --- cells ---------------------------------------------------------------- */

const char *nb_cell_name(nb_cell c) {
    switch (c) {
    case NB_CELL_RNN: return "rnn";
    case NB_CELL_LSTM: return "lstm";
    case NB_CELL_GRU: return "gru";
    }
    return "?";
}

int nb_cell_from_name(const char *s, nb_cell *c) {
    for (int k = NB_CELL_RNN; k <= NB_CELL_GRU; k++)
        if (s && !strcmp(s, nb_cell_name((nb_cell)k))) {
            *c = (nb_cell)k;
            return 0;
        }
    return nb_error("unknown cell type '%s' (expected rnn, lstm or gru)", s ? s : "(null)");
}

int nb_cell_gates(nb_cell c) { return c == NB_CELL_LSTM ? 4 : c == NB_CELL_GRU ? 3 : 1; }

/* What the forward keeps for the backward pass (all in the step arena, on
 * the layer's device). */
typedef struct {
    int cell;
    nb_device device;
    int64_t T, B, H, G;
    float *act;  /* LSTM [T, B, 4H]: i f g o after their nonlinearity; GRU [T, B, 3H]: r z n; RNN unused */
    float *aux;  /* LSTM [T, B, H]: tanh(c_t); GRU [T, B, H]: h_{t-1} W_hn^T + b_hn */
    float *h0, *c0; /* copies of the initial state [B, H] (zeros when not given), so that a
                       caller may overwrite its state tensors before calling backward */
} seq_saved;

/* out[c] = sum over rows of a[r, c] (a: rows x cols). Threads own bands of
 * columns and add rows in order, so the sums do not depend on the thread count. */
static void col_sums(const float *a, int64_t rows, int64_t cols, float *out) {
    int64_t band = 64, bands = (cols + band - 1) / band;
    NB_PARALLEL_FOR(rows * cols, for (int64_t k = 0; k < bands; k++) {
        int64_t c0 = k * band, c1 = c0 + band < cols ? c0 + band : cols;
        float acc[64];
        for (int64_t c = c0; c < c1; c++) acc[c - c0] = 0.f;
        for (int64_t r = 0; r < rows; r++) {
            const float *row = a + r * cols;
            for (int64_t c = c0; c < c1; c++) acc[c - c0] += row[c];
        }
        for (int64_t c = c0; c < c1; c++) out[c] = acc[c - c0];
    });
}

/* c = op(a) op(b) + beta c for row-major operands on either device: the
 * per-step GEMMs of both passes (m x k times k x n; lda, ldb, ldc row strides). */
static void gemm(nb_device d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (d == NB_CUDA) {
        nb__gpu_gemm(ta, tb, m, n, k, 1.f, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                1.f, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* n floats of scratch in the step arena on device d. */
static float *scratch(nb_device d, int64_t n) {
    size_t bytes = sizeof(float) * (size_t)n;
    return d == NB_CUDA ? nb__arena_alloc_gpu(bytes) : nb_arena_alloc(bytes);
}

/* --- forward kernels: one time step each, after g = h_{t-1} W_hh^T ------- */

/* eq. 10.8: a = b + W h_{t-1} + U x_t, h_t = tanh(a), with U x_t = xw (the
 * caller's input projection) and b = b_ih + b_hh. */
static void rnn_fwd_step(int64_t B, int64_t H, const float *restrict xw, const float *restrict bs,
                         const float *restrict g, float *restrict h) {
    NB_PARALLEL_FOR(B * H, for (int64_t b = 0; b < B; b++) {
        NB_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; j++) h[b * H + j] = nb__vtanhf(g[b * H + j] + xw[b * H + j] + bs[j]);
    });
}

/* LSTM, gates in PyTorch's order i, f, g, o:
 * i = s(z_i), f = s(z_f), g = tanh(z_g), o = s(z_o) with z = xw + b + h W^T;
 * c_t = f c_{t-1} + i g;  h_t = o tanh(c_t). The activations overwrite z. */
static void lstm_fwd_step(int64_t B, int64_t H, const float *restrict xw, const float *restrict bs, float *restrict z,
                          const float *restrict cprev, float *restrict h, float *restrict c, float *restrict tc) {
    int64_t G = 4 * H;
    NB_PARALLEL_FOR(B * G, for (int64_t b = 0; b < B; b++) {
        float *zb = z + b * G;
        const float *xb = xw + b * G;
        NB_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; j++) {
            float i = nb__vsigmoidf(zb[j] + xb[j] + bs[j]);
            float f = nb__vsigmoidf(zb[H + j] + xb[H + j] + bs[H + j]);
            float gg = nb__vtanhf(zb[2 * H + j] + xb[2 * H + j] + bs[2 * H + j]);
            float o = nb__vsigmoidf(zb[3 * H + j] + xb[3 * H + j] + bs[3 * H + j]);
            zb[j] = i;
            zb[H + j] = f;
            zb[2 * H + j] = gg;
            zb[3 * H + j] = o;
            float cv = f * cprev[b * H + j] + i * gg, t = nb__vtanhf(cv);
            c[b * H + j] = cv;
            tc[b * H + j] = t;
            h[b * H + j] = o * t;
        }
    });
}

/* GRU, gates r, z, n (PyTorch): with x_* = (xw + b_ih)_* and h_* = (h W^T + b_hh)_*,
 * r = s(x_r + h_r), z = s(x_z + h_z), n = tanh(x_n + r h_n), h_t = (1 - z) n + z h_{t-1}.
 * zg holds h W^T on entry and r z n on return; hn receives h_n. */
static void gru_fwd_step(int64_t B, int64_t H, const float *restrict xw, const float *restrict bx,
                         const float *restrict bh, float *restrict zg, const float *restrict hprev, float *restrict hn,
                         float *restrict h) {
    int64_t G = 3 * H;
    NB_PARALLEL_FOR(B * G, for (int64_t b = 0; b < B; b++) {
        const float *xb = xw + b * G;
        float *gb = zg + b * G;
        NB_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; j++) {
            float r = nb__vsigmoidf(xb[j] + bx[j] + gb[j] + bh[j]);
            float z = nb__vsigmoidf(xb[H + j] + bx[H + j] + gb[H + j] + bh[H + j]);
            float hnv = gb[2 * H + j] + bh[2 * H + j];
            float n = nb__vtanhf(xb[2 * H + j] + bx[2 * H + j] + r * hnv);
            gb[j] = r;
            gb[H + j] = z;
            gb[2 * H + j] = n;
            hn[b * H + j] = hnv;
            h[b * H + j] = n + z * (hprev[b * H + j] - n);
        }
    });
}

/* --- backward kernels: one time step each --------------------------------
 * dh enters as dL/dh_t from the output plus what flows back from step t+1
 * (eq. 10.20); each writes dL/d(pre-activations) of the step. */

/* eq. 10.21 for one step: da = dh (1 - h_t^2), the diag(1 - h^2) factor. */
static void rnn_bwd_step(int64_t B, int64_t H, const float *restrict go, const float *restrict dnext,
                         const float *restrict h, float *restrict da) {
    NB_PARALLEL_FOR(B * H, for (int64_t b = 0; b < B; b++) {
        NB_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; j++) {
            int64_t k = b * H + j;
            da[k] = (go[k] + dnext[k]) * (1.f - h[k] * h[k]);
        }
    });
}

/* LSTM: with dh = dL/dh_t and dc = dL/dc_t (incl. the paths through h_t):
 * dc += dh o (1 - tanh^2 c);  dz_i = dc g i(1-i);  dz_f = dc c_{t-1} f(1-f);
 * dz_g = dc i (1-g^2);  dz_o = dh tanh(c) o(1-o);  dL/dc_{t-1} = dc f. */
static void lstm_bwd_step(int64_t B, int64_t H, const float *restrict goh, const float *restrict goc,
                          const float *restrict dhn, float *restrict dcn, const float *restrict act,
                          const float *restrict tc, const float *restrict cprev, float *restrict dz) {
    int64_t G = 4 * H;
    NB_PARALLEL_FOR(B * G, for (int64_t b = 0; b < B; b++) {
        const float *ab = act + b * G;
        float *db = dz + b * G;
        NB_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; j++) {
            int64_t k = b * H + j;
            float i = ab[j], f = ab[H + j], g = ab[2 * H + j], o = ab[3 * H + j], t = tc[k];
            float dh = goh[k] + dhn[k];
            float dc = goc[k] + dcn[k] + dh * o * (1.f - t * t);
            db[j] = dc * g * i * (1.f - i);
            db[H + j] = dc * cprev[k] * f * (1.f - f);
            db[2 * H + j] = dc * i * (1.f - g * g);
            db[3 * H + j] = dh * t * o * (1.f - o);
            dcn[k] = dc * f;
        }
    });
}

/* GRU: dn = dh (1-z), dz = dh (h_{t-1} - n), da_n = dn (1-n^2), dr = da_n h_n,
 * dh_n = da_n r; the input side gets (dr r(1-r), dz z(1-z), da_n), the hidden
 * side (same, same, dh_n), and dL/dh_{t-1} = dh z + (hidden side) W_hh. The
 * direct part dh z is written into dnext here; the GEMM adds the rest. */
static void gru_bwd_step(int64_t B, int64_t H, const float *restrict go, float *restrict dnext,
                         const float *restrict act, const float *restrict hn, const float *restrict hprev,
                         float *restrict dzx, float *restrict dzh) {
    int64_t G = 3 * H;
    NB_PARALLEL_FOR(B * G, for (int64_t b = 0; b < B; b++) {
        const float *ab = act + b * G;
        float *dx = dzx + b * G, *dhh = dzh + b * G;
        NB_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; j++) {
            int64_t k = b * H + j;
            float r = ab[j], z = ab[H + j], n = ab[2 * H + j];
            float dh = go[k] + dnext[k];
            float dan = dh * (1.f - z) * (1.f - n * n);
            float dar = dan * hn[k] * r * (1.f - r);
            float daz = dh * (hprev[k] - n) * z * (1.f - z);
            dx[j] = dhh[j] = dar;
            dx[H + j] = dhh[H + j] = daz;
            dx[2 * H + j] = dan;
            dhh[2 * H + j] = dan * r;
            dnext[k] = dh * z;
        }
    });
}

/* --- the same cells from nb_* ops (for double backward) ------------------ */

/* Row t of a [T, B, K] tensor as a [B, K] view. */
static nb_tensor *step_of(nb_tensor *x, int64_t t) {
    return nb_reshape(nb_slice(x, 0, t, t + 1), 2, (int64_t[]){x->shape[1], x->shape[2]});
}
static nb_tensor *gate(nb_tensor *z, int k, int64_t H) { return nb_slice(z, 1, k * H, (k + 1) * H); }

/* The layer computed step by step with differentiable ops: exactly the math
 * of the kernels above, returning the same [S, T, B, H]. */
static nb_tensor *seq_from_ops(int cell, nb_tensor *xw, nb_tensor *w, nb_tensor *bih, nb_tensor *bhh, nb_tensor *h,
                               nb_tensor *c) {
    int64_t T = xw->shape[0], B = xw->shape[1], H = w->shape[1];
    int S = cell == NB_CELL_LSTM ? 2 : 1;
    nb_tensor **parts = nb_arena_alloc(sizeof(nb_tensor *) * (size_t)(S * T));
    for (int64_t t = 0; t < T; t++) {
        nb_tensor *x = step_of(xw, t), *hh = nb_matmul_t(h, w, false, true);
        if (bih) x = nb_add(x, bih);
        if (bhh) hh = nb_add(hh, bhh);
        if (cell == NB_CELL_RNN) {
            h = nb_tanh(nb_add(x, hh)); /* eq. 10.8 */
        } else if (cell == NB_CELL_LSTM) {
            nb_tensor *z = nb_add(x, hh);
            nb_tensor *i = nb_sigmoid(gate(z, 0, H)), *f = nb_sigmoid(gate(z, 1, H));
            nb_tensor *g = nb_tanh(gate(z, 2, H)), *o = nb_sigmoid(gate(z, 3, H));
            c = nb_add(nb_mul(f, c), nb_mul(i, g));
            h = nb_mul(o, nb_tanh(c));
            parts[T + t] = nb_reshape(c, 3, (int64_t[]){1, B, H});
        } else {
            nb_tensor *r = nb_sigmoid(nb_add(gate(x, 0, H), gate(hh, 0, H)));
            nb_tensor *z = nb_sigmoid(nb_add(gate(x, 1, H), gate(hh, 1, H)));
            nb_tensor *n = nb_tanh(nb_add(gate(x, 2, H), nb_mul(r, gate(hh, 2, H))));
            h = nb_add(n, nb_mul(z, nb_sub(h, n)));
        }
        parts[t] = nb_reshape(h, 3, (int64_t[]){1, B, H});
    }
    nb_tensor *all = nb_concat(parts, (int)(S * T), 0);
    return nb_reshape(all, 4, (int64_t[]){S, T, B, H});
}

/* A saved initial state as a [B, H] tensor (not on the graph) on the
 * layer's device. */
static nb_tensor *saved_state(const seq_saved *s, const float *p) {
    nb_tensor *t = nb__new_on(s->device, 2, (int64_t[]){s->B, s->H});
    size_t bytes = sizeof(float) * (size_t)t->size;
    if (s->device == NB_CUDA) nb__gpu_copy(t->data, p, bytes);
    else memcpy(t->data, p, bytes);
    return t;
}

/* Double backward: rebuild the layer from nb_* ops (recorded, since the
 * gradient is being recorded), give its output the incoming gradient and run
 * the backward rules of just those new nodes. They accumulate into this op's
 * inputs, and everything they compute is on the tape, so the gradient can be
 * differentiated again. The replay's own scratch gradients are cleared as
 * they are used, or a later pass over the tape would take them for its own. */
static void seq_bw_replay(nb_node *n, nb_tensor *g) {
    const seq_saved *s = n->aux;
    nb_tensor *h0 = n->in[4], *c0 = n->in[5];
    if (!h0 || !h0->requires_grad) h0 = saved_state(s, s->h0);
    if (s->cell == NB_CELL_LSTM && (!c0 || !c0->requires_grad)) c0 = saved_state(s, s->c0);
    nb_node *mark = *nb__tape();
    nb_tensor *out = seq_from_ops(s->cell, n->in[0], n->in[1], n->in[2], n->in[3], h0, c0);
    if (!out->node) return;
    out->tgrad = g;
    for (nb_node *m = out->node; m && m != mark; m = m->prev) {
        nb__node_backward(m);
        m->out->tgrad = NULL;
    }
}

/* The fused BPTT. g: [S, T, B, H] = dL/d(h_t) (and dL/d(c_t) for LSTM) from
 * outside the layer. Produces dL/dxw [T, B, G*H], dL/dW_hh (eq. 23d's
 * pattern: sum over t of dz_t h_{t-1}^T, as one GEMM), dL/db (eq. 10.23:
 * sum over t of dz_t, the same for b_ih and b_hh except GRU's n gate) and
 * dL/dh0, dL/dc0. */
static void seq_bw(nb_node *n, nb_tensor *g) {
    if (nb_grad_enabled()) {
        seq_bw_replay(n, g);
        return;
    }
    const seq_saved *s = n->aux;
    nb_tensor *xw = n->in[0], *w = n->in[1], *bih = n->in[2], *bhh = n->in[3], *h0 = n->in[4], *c0 = n->in[5];
    nb_device dev = s->device;
    bool gpu = dev == NB_CUDA;
    int64_t T = s->T, B = s->B, H = s->H, G = s->G, GH = G * H, BH = B * H;
    const float *W = w->data, *hs = n->out->data, *cs = hs + T * BH, *go = g->data;
    nb_tensor *dzx = nb__new_on(dev, 3, xw->shape);
    /* GRU's hidden side differs from its input side in the n gate. */
    nb_tensor *dzh = s->cell == NB_CELL_GRU ? nb__new_on(dev, 3, xw->shape) : dzx;
    nb_tensor *dh = nb__new_on(dev, 2, (int64_t[]){B, H}), *dc = nb__new_on(dev, 2, (int64_t[]){B, H});
    nb_fill(dh, 0.f);
    nb_fill(dc, 0.f);
    float *pdh = dh->data, *pdc = dc->data;
    for (int64_t t = T - 1; t >= 0; t--) {
        const float *hprev = t ? hs + (t - 1) * BH : s->h0;
        float *zx = dzx->data + t * B * GH, *zh = dzh->data + t * B * GH;
        if (s->cell == NB_CELL_RNN) {
            if (gpu) nb__gpu_rnn_bwd(B, H, go + t * BH, pdh, hs + t * BH, zx);
            else rnn_bwd_step(B, H, go + t * BH, pdh, hs + t * BH, zx);
        } else if (s->cell == NB_CELL_LSTM) {
            const float *cprev = t ? cs + (t - 1) * BH : s->c0;
            if (gpu)
                nb__gpu_lstm_bwd(B, H, go + t * BH, go + (T + t) * BH, pdh, pdc, s->act + t * B * GH, s->aux + t * BH,
                                 cprev, zx);
            else
                lstm_bwd_step(B, H, go + t * BH, go + (T + t) * BH, pdh, pdc, s->act + t * B * GH, s->aux + t * BH,
                              cprev, zx);
        } else {
            if (gpu) nb__gpu_gru_bwd(B, H, go + t * BH, pdh, s->act + t * B * GH, s->aux + t * BH, hprev, zx, zh);
            else gru_bwd_step(B, H, go + t * BH, pdh, s->act + t * B * GH, s->aux + t * BH, hprev, zx, zh);
        }
        /* eq. 10.21: dL/dh_{t-1} = W^T (diag(...) dL/dh_t), i.e. dz_t W as rows. */
        gemm(dev, false, false, B, H, GH, zh, GH, W, H, s->cell == NB_CELL_GRU ? 1.f : 0.f, pdh, H);
    }
    if (xw->requires_grad) nb__accum(xw, dzx);
    if (w->requires_grad) {
        /* dW = sum_t dz_t^T h_{t-1}: h_{t-1} is h0 for t = 0 and the layer's
         * own output rows 0..T-2 after. On the CPU two GEMMs cover all T*B
         * rows; cuBLAS gets them as one product over a [T*B, H] copy of
         * h_0..h_{T-1} (T*B*H floats moved, against G*H*H*T*B multiply-adds:
         * one large GEMM keeps the GPU busy where two would not). */
        nb_tensor *dw = nb__new_on(dev, 2, w->shape);
        if (gpu) {
            float *hp = scratch(dev, T * BH);
            nb__gpu_copy(hp, s->h0, sizeof(float) * (size_t)BH);
            if (T > 1) nb__gpu_copy(hp + BH, hs, sizeof(float) * (size_t)((T - 1) * BH));
            gemm(dev, true, false, GH, H, T * B, dzh->data, GH, hp, H, 0.f, dw->data, H);
        } else {
            gemm(dev, true, false, GH, H, B, dzh->data, GH, s->h0, H, 0.f, dw->data, H);
            if (T > 1) gemm(dev, true, false, GH, H, (T - 1) * B, dzh->data + B * GH, GH, hs, H, 1.f, dw->data, H);
        }
        nb__accum(w, dw);
    }
    /* eq. 10.23: db = sum over t (and the batch) of dz_t. Both biases enter
     * the same pre-activation except in GRU's n gate, so one sum often serves both. */
    nb_tensor *dbx = NULL;
    if (bih && bih->requires_grad) {
        dbx = nb__new_on(dev, 1, (int64_t[]){GH});
        if (gpu) nb__gpu_sum_mid(dbx->data, dzx->data, 1, T * B, GH);
        else col_sums(dzx->data, T * B, GH, dbx->data);
        nb__accum(bih, dbx);
    }
    if (bhh && bhh->requires_grad) {
        nb_tensor *db = dbx && dzh == dzx ? dbx : nb__new_on(dev, 1, (int64_t[]){GH});
        if (db != dbx) {
            if (gpu) nb__gpu_sum_mid(db->data, dzh->data, 1, T * B, GH);
            else col_sums(dzh->data, T * B, GH, db->data);
        }
        nb__accum(bhh, db);
    }
    if (h0 && h0->requires_grad) nb__accum(h0, dh);
    if (c0 && c0->requires_grad && s->cell == NB_CELL_LSTM) nb__accum(c0, dc);
}
static const nb_op op_rnn_seq = {"rnn_seq", seq_bw};

static void check_vec(const char *what, nb_tensor *v, int64_t n, nb_tensor *xw) {
    if (v && v->size != n) {
        char a[96], b[96];
        nb_fatal("rnn_seq", "%s has shape %s, expected [%lld] for an input projection of shape %s", what,
                 nb_shape_str(v, a, sizeof a), (long long)n, nb_shape_str(xw, b, sizeof b));
    }
}

nb_tensor *nb_rnn_seq(nb_cell cell, nb_tensor *xw, nb_tensor *w_hh, nb_tensor *b_ih, nb_tensor *b_hh, nb_tensor *h0,
                      nb_tensor *c0) {
    nb_device dev = NB_DEVICE("rnn_seq", xw, w_hh, b_ih, b_hh, h0, c0);
    bool gpu = dev == NB_CUDA;
    if (cell != NB_CELL_RNN && cell != NB_CELL_LSTM && cell != NB_CELL_GRU)
        nb_fatal("rnn_seq", "unknown cell type %d", (int)cell);
    int64_t G = nb_cell_gates(cell);
    if (w_hh->ndim != 2 || w_hh->shape[0] != G * w_hh->shape[1] || w_hh->shape[1] < 1)
        nb__shape_fatal("rnn_seq", w_hh, NULL, "weight_hh must be [G*H, H] (G = 1 for rnn, 4 for lstm, 3 for gru)");
    int64_t H = w_hh->shape[1], GH = G * H;
    if (xw->ndim != 3 || xw->shape[2] != GH || xw->shape[0] < 1 || xw->shape[1] < 1)
        nb__shape_fatal("rnn_seq", xw, w_hh,
                        "the input projection must be [T, B, G*H] with T, B >= 1 (G*H = weight_hh rows)");
    int64_t T = xw->shape[0], B = xw->shape[1], BH = B * H;
    check_vec("bias_ih", b_ih, GH, xw);
    check_vec("bias_hh", b_hh, GH, xw);
    if (h0 && h0->size != BH) nb__shape_fatal("rnn_seq", h0, xw, "the initial hidden state must be [B, H]");
    if (c0 && cell != NB_CELL_LSTM) nb__shape_fatal("rnn_seq", c0, xw, "only an LSTM takes an initial cell state");
    if (c0 && c0->size != BH) nb__shape_fatal("rnn_seq", c0, xw, "the initial cell state must be [B, H]");

    int S = cell == NB_CELL_LSTM ? 2 : 1;
    nb_tensor *out = nb__new_on(dev, 4, (int64_t[]){S, T, B, H});
    seq_saved *s = nb_arena_alloc(sizeof *s);
    *s = (seq_saved){.cell = cell, .device = dev, .T = T, .B = B, .H = H, .G = G};
    s->h0 = scratch(dev, BH);
    s->c0 = scratch(dev, BH);
    size_t sb = sizeof(float) * (size_t)BH;
    if (gpu) {
        if (h0) nb__gpu_copy(s->h0, h0->data, sb);
        else nb__gpu_fill(s->h0, BH, 0.f);
        if (c0) nb__gpu_copy(s->c0, c0->data, sb);
        else nb__gpu_fill(s->c0, BH, 0.f);
    } else {
        if (h0) memcpy(s->h0, h0->data, sb);
        else memset(s->h0, 0, sb);
        if (c0) memcpy(s->c0, c0->data, sb);
        else memset(s->c0, 0, sb);
    }
    /* Biases: the RNN and LSTM only ever use b_ih + b_hh. */
    float *bx = scratch(dev, GH), *bh = scratch(dev, GH);
    if (gpu) {
        nb__gpu_rnn_bias(bx, bh, b_ih ? b_ih->data : NULL, b_hh ? b_hh->data : NULL, GH, cell != NB_CELL_GRU);
    } else {
        for (int64_t j = 0; j < GH; j++) {
            bx[j] = b_ih ? b_ih->data[j] : 0.f;
            bh[j] = b_hh ? b_hh->data[j] : 0.f;
            if (cell != NB_CELL_GRU) bx[j] += bh[j];
        }
    }
    float *hs = out->data, *cs = hs + T * BH;
    float *z = scratch(dev, cell == NB_CELL_RNN ? B * GH : T * B * GH);
    if (cell != NB_CELL_RNN) {
        s->act = z;
        s->aux = scratch(dev, T * BH);
    }
    for (int64_t t = 0; t < T; t++) {
        const float *hprev = t ? hs + (t - 1) * BH : s->h0;
        const float *x = xw->data + t * B * GH;
        float *zt = cell == NB_CELL_RNN ? z : z + t * B * GH;
        /* The recurrent GEMM: h_{t-1} W_hh^T for all gates at once. */
        gemm(dev, false, true, B, GH, H, hprev, H, w_hh->data, H, 0.f, zt, GH);
        if (cell == NB_CELL_RNN) {
            if (gpu) nb__gpu_rnn_fwd(B, H, x, bx, zt, hs + t * BH);
            else rnn_fwd_step(B, H, x, bx, zt, hs + t * BH);
        } else if (cell == NB_CELL_LSTM) {
            const float *cprev = t ? cs + (t - 1) * BH : s->c0;
            if (gpu) nb__gpu_lstm_fwd(B, H, x, bx, zt, cprev, hs + t * BH, cs + t * BH, s->aux + t * BH);
            else lstm_fwd_step(B, H, x, bx, zt, cprev, hs + t * BH, cs + t * BH, s->aux + t * BH);
        } else {
            if (gpu) nb__gpu_gru_fwd(B, H, x, bx, bh, zt, hprev, s->aux + t * BH, hs + t * BH);
            else gru_fwd_step(B, H, x, bx, bh, zt, hprev, s->aux + t * BH, hs + t * BH);
        }
    }
    nb_node *n = nb__record(&op_rnn_seq, out, (nb_tensor *[]){xw, w_hh, b_ih, b_hh, h0, c0}, 6);
    if (n) n->aux = s;
    return out;
}
