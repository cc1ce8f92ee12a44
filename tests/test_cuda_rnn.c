/* test_cuda_rnn.c — the fused recurrent layer (nb_rnn_seq: plain RNN eq.
 * 10.8, LSTM, GRU) on the GPU against the CPU: the output and every input's
 * gradient (back-propagation through time, eq. 10.18-10.23) for each cell on
 * odd sizes, with and without biases and initial state; the
 * finite-difference check on GPU tensors; the Hessian-vector check through
 * the double-backward replay; and a stacked nb_rnn model moved to the GPU
 * giving the CPU's loss and parameter gradients. `make cuda-emu` runs them
 * against the emulator, where any host access to the GPU's memory faults. */
#include "test.h"
#include <stdlib.h>


/* One layer: which cell, whether it has biases and an initial state. The
 * inputs are packed: xw, w_hh, then b_ih, b_hh (bias), then h0 and for the
 * LSTM c0 (state). */
typedef struct {
    nb_cell cell;
    bool bias, state;
} seq_case;

static nb_tensor *f_seq(nb_tensor **in, void *ctx) {
    const seq_case *c = ctx;
    int k = 2;
    nb_tensor *bih = NULL, *bhh = NULL, *h0 = NULL, *c0 = NULL;
    if (c->bias) {
        bih = in[k++];
        bhh = in[k++];
    }
    if (c->state) {
        h0 = in[k++];
        if (c->cell == NB_CELL_LSTM) c0 = in[k++];
    }
    return nb_rnn_seq(c->cell, in[0], in[1], bih, bhh, h0, c0);
}

/* The inputs of a case for T steps, batch B, hidden H; returns their count. */
static int seq_inputs(const seq_case *c, int64_t T, int64_t B, int64_t H, nb_tensor **in) {
    int64_t GH = nb_cell_gates(c->cell) * H;
    int n = 0;
    in[n++] = nb_test_param(3, (int64_t[]){T, B, GH}, 1.f);
    /* Weights large enough that the gates leave their linear range. */
    in[n++] = nb_test_param(2, (int64_t[]){GH, H}, 0.5f);
    if (c->bias) {
        in[n++] = nb_test_param(1, (int64_t[]){GH}, 0.5f);
        in[n++] = nb_test_param(1, (int64_t[]){GH}, 0.5f);
    }
    if (c->state) {
        in[n++] = nb_test_param(2, (int64_t[]){B, H}, 0.5f);
        if (c->cell == NB_CELL_LSTM) in[n++] = nb_test_param(2, (int64_t[]){B, H}, 0.5f);
    }
    return n;
}

TEST(test_cuda_rnn_seq_parity) {
    if (!nb_test_gpu()) return;
    double worst = 0;
    for (int cell = NB_CELL_RNN; cell <= NB_CELL_GRU; cell++)
        for (int v = 0; v < 4; v++) {
            seq_case c = {(nb_cell)cell, v & 1, v >> 1 & 1};
            nb_tensor *in[6];
            int n = seq_inputs(&c, 5, 3, 7, in);
            char what[64];
            snprintf(what, sizeof what, "%s%s%s", nb_cell_name(c.cell), c.bias ? ", biases" : "",
                     c.state ? ", initial state" : "");
            double e = nb_test_gpu_parity(what, f_seq, in, n, &c, 1e-5);
            if (e > worst) worst = e;
            nb_test_free_all(in, n);
        }
    printf("     (rnn_seq parity: worst relative difference %.3g)\n", worst);
}

TEST(test_cuda_rnn_lstm_gradcheck_on_gpu) {
    if (!nb_test_gpu()) return;
    seq_case c = {NB_CELL_LSTM, true, true};
    nb_tensor *in[6];
    int n = seq_inputs(&c, 5, 3, 7, in);
    double e = nb_gradcheck("GPU lstm", f_seq, nb_test_moved(in, n, NB_CUDA), n, &c, 1e-2f, 5e-3f);
    printf("     (GPU lstm gradcheck: %.3g)\n", e);
    nb_test_free_all(in, n);
}

/* Double backward: with the gradient recorded, the layer's rule replays
 * the cells as nb_* ops on the GPU (from the saved initial state when h0 is
 * not given). */
TEST(test_cuda_rnn_gru_hvp_on_gpu) {
    if (!nb_test_gpu()) return;
    for (int state = 0; state < 2; state++) {
        seq_case c = {NB_CELL_GRU, true, state};
        nb_tensor *in[6];
        int n = seq_inputs(&c, 3, 2, 3, in);
        double e = nb_hvpcheck(state ? "GPU gru, h0 (Hv)" : "GPU gru (Hv)", f_seq, nb_test_moved(in, n, NB_CUDA), n, &c,
                               2e-3f, 1e-2f);
        printf("     (GPU gru hvpcheck%s: %.3g)\n", state ? " with h0" : "", e);
        nb_test_free_all(in, n);
    }
}

/* --- a model on the GPU -------------------------------------------------------- */

enum { MT = 5, MB = 3, MI = 4, MH = 7, ML = 2, MV = 6 };

/* The loss of a 2-layer model on device d: sum(hs R) + sum(h_T Rh) (+
 * sum(c_T Rc)) from dense input x with initial states, plus sum(hs2^2) from
 * one-hot tokens of a vocabulary of MV (a second model, mv, of input MV).
 * Writes the loss and host copies of every parameter's gradient. */
static void model_run(nb_device d, nb_cell cell, float *loss, nb_tensor **grads, int *np_out) {
    nb_rng r;
    nb_rng_seed(&r, 1234, 7);
    nb_rnn *m = nb_rnn_new(cell, MI, MH, ML, &r), *mv = nb_rnn_new(cell, MV, MH, ML, &r);
    nb_tensor *x = nb_tensor_new(3, (int64_t[]){MT, MB, MI}), *h0 = nb_tensor_new(3, (int64_t[]){ML, MB, MH});
    nb_tensor *c0 = nb_tensor_new(3, (int64_t[]){ML, MB, MH}), *R = nb_tensor_new(3, (int64_t[]){MT, MB, MH});
    nb_tensor *Rs = nb_tensor_new(3, (int64_t[]){ML, MB, MH});
    nb_tensor *data[5] = {x, h0, c0, R, Rs};
    for (int k = 0; k < 5; k++) nb_init_normal(data[k], 0.f, 0.7f, &r);
    int32_t tok[MT * MB];
    for (int i = 0; i < MT * MB; i++) tok[i] = (int32_t)nb_rng_below(&r, MV);
    nb_param *p, *pv;
    int np = nb_rnn_params(m, &p), npv = nb_rnn_params(mv, &pv);
    for (int k = 0; k < np; k++) nb_tensor_move(p[k].t, d);
    for (int k = 0; k < npv; k++) nb_tensor_move(pv[k].t, d);
    nb_test_moved(data, 5, d);

    nb_rnn_state init = {h0, cell == NB_CELL_LSTM ? c0 : NULL}, fin;
    nb_tensor *hs = nb_rnn_forward(m, x, &init, &fin);
    CHECK(hs->device == d && fin.h->device == d);
    nb_tensor *L = nb_add(nb_sum_all(nb_mul(hs, R)), nb_sum_all(nb_mul(fin.h, Rs)));
    if (fin.c) L = nb_add(L, nb_sum_all(nb_mul(fin.c, Rs)));
    nb_tensor *hs2 = nb_rnn_forward_onehot(mv, tok, MT, MB, NULL, NULL);
    L = nb_add(L, nb_sum_all(nb_square(hs2)));
    nb_backward(L);
    *loss = nb_item(L);
    /* An empty sequence stays on the model's device. */
    nb_rnn_state fe;
    nb_tensor *e = nb_rnn_forward_onehot(mv, tok, 0, MB, NULL, &fe);
    CHECK(e->device == d && e->shape[0] == 0 && fe.h->device == d && (!fe.c || fe.c->device == d));
    for (int k = 0; k < np; k++) grads[k] = nb_test_to_host(p[k].t->grad);
    for (int k = 0; k < npv; k++) grads[np + k] = nb_test_to_host(pv[k].t->grad);
    *np_out = np + npv;
    nb_arena_reset();
    nb_test_free_all(data, 5);
    nb_rnn_free(m);
    nb_rnn_free(mv);
}

TEST(test_cuda_rnn_model_on_gpu) {
    if (!nb_test_gpu()) return;
    double worst = 0;
    for (int cell = NB_CELL_RNN; cell <= NB_CELL_GRU; cell++) {
        float lc, lg;
        nb_tensor *gc[16], *gg[16];
        int n;
        model_run(NB_CPU, (nb_cell)cell, &lc, gc, &n);
        model_run(NB_CUDA, (nb_cell)cell, &lg, gg, &n);
        CHECK_MSG(fabs(lg - lc) <= 1e-5 * fmax(1.0, fabs(lc)), "%s: GPU loss %.8g, CPU loss %.8g",
                  nb_cell_name((nb_cell)cell), (double)lg, (double)lc);
        for (int k = 0; k < n; k++) {
            double e = nb_test_maxrel(gg[k]->data, gc[k]->data, gc[k]->size);
            CHECK_MSG(e <= 1e-5, "%s: gradient of parameter %d differs from the CPU's by %.3g",
                      nb_cell_name((nb_cell)cell), k, e);
            if (e > worst) worst = e;
        }
        nb_test_free_all(gc, n);
        nb_test_free_all(gg, n);
    }
    printf("     (rnn model on the GPU: worst gradient difference %.3g)\n", worst);
}
