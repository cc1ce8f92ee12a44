/* test_recurrent.c — the RNN of notes §2.4 against its equations (forward
 * eq. 10.8-10.12, back-propagation through time eq. 10.18-10.23 and 23a-d
 * computed by hand), finite-difference and Hessian-vector checks of the
 * fused RNN/LSTM/GRU layers, truncated BPTT, and the character model. */
#include "test.h"
#include <stdlib.h>
#include <unistd.h>

/* --- the notes' RNN by hand ------------------------------------------------ */

enum { NI = 4, NH = 3, NK = 5, NT = 4 }; /* input, hidden, outputs, steps (one sequence) */

/* Parameters as plain arrays, read from the library's tensors:
 * U = weight_ih [NH, NI], W = weight_hh [NH, NH], b = bias_ih + bias_hh,
 * V [NK, NH], c [NK]. */
typedef struct {
    nb_rnn *rnn;
    nb_tensor *U, *W, *bih, *bhh, *V, *c, *x, *h0;
    int32_t y[NT];
} notes_rnn;

/* What the hand computation produces. */
typedef struct {
    double h[NT + 1][NH];  /* h[0] = h^(0), h[t] = h^(t) */
    double yhat[NT][NK];   /* eq. 10.11 */
    double L;              /* eq. 10.12 */
    double go[NT][NK];     /* eq. 10.18 */
    double gh[NT][NH];     /* eq. 10.19 (t = tau) and 10.21: total dL/dh^(t) */
    double gb[NH], gc[NK], gV[NK][NH], gW[NH][NH], gU[NH][NI], gh0[NH];
} notes_hand;

static void notes_make(notes_rnn *r, bool with_h0) {
    r->rnn = nb_rnn_new(NB_CELL_RNN, NI, NH, 1, nb_test_rng());
    nb_param *p;
    nb_rnn_params(r->rnn, &p);
    r->U = p[0].t;
    r->W = p[1].t;
    r->bih = p[2].t;
    r->bhh = p[3].t;
    /* Larger weights than the init so tanh is used well off its linear part. */
    for (int k = 0; k < 4; k++) nb_init_normal(p[k].t, 0.f, 0.8f, nb_test_rng());
    r->V = nb_test_param(NB_SHAPE(NK, NH), 0.8f);
    r->c = nb_test_param(NB_SHAPE(NK), 0.5f);
    r->x = nb_tensor_new(NB_SHAPE(NT, 1, NI));
    nb_init_normal(r->x, 0.f, 1.f, nb_test_rng());
    r->h0 = nb_tensor_new(NB_SHAPE(1, 1, NH));
    if (with_h0) nb_init_normal(r->h0, 0.f, 0.5f, nb_test_rng());
    for (int t = 0; t < NT; t++) r->y[t] = (int32_t)nb_rng_below(nb_test_rng(), NK);
}

static void notes_free(notes_rnn *r) {
    nb_rnn_free(r->rnn);
    nb_tensor_free(r->V);
    nb_tensor_free(r->c);
    nb_tensor_free(r->x);
    nb_tensor_free(r->h0);
}

#define U_(i, j) ((double)r->U->data[(i) * NI + (j)])
#define W_(i, j) ((double)r->W->data[(i) * NH + (j)])
#define V_(k, i) ((double)r->V->data[(k) * NH + (i)])
#define X_(t, j) ((double)r->x->data[(t) * NI + (j)])

/* Forward and BPTT with plain loops, exactly as the notes write them. */
static void notes_by_hand(const notes_rnn *r, notes_hand *o) {
    memset(o, 0, sizeof *o);
    for (int i = 0; i < NH; i++) o->h[0][i] = r->h0->data[i];
    for (int t = 1; t <= NT; t++) {
        double oo[NK], m = -1e300, s = 0;
        for (int i = 0; i < NH; i++) {
            /* eq. 10.8: a = b + W h^(t-1) + U x^(t);  eq. 10.9: h = tanh(a) */
            double a = (double)r->bih->data[i] + r->bhh->data[i];
            for (int j = 0; j < NH; j++) a += W_(i, j) * o->h[t - 1][j];
            for (int j = 0; j < NI; j++) a += U_(i, j) * X_(t - 1, j);
            o->h[t][i] = tanh(a);
        }
        for (int k = 0; k < NK; k++) {
            /* eq. 10.10: o = c + V h */
            oo[k] = r->c->data[k];
            for (int i = 0; i < NH; i++) oo[k] += V_(k, i) * o->h[t][i];
            if (oo[k] > m) m = oo[k];
        }
        for (int k = 0; k < NK; k++) s += exp(oo[k] - m);
        for (int k = 0; k < NK; k++) o->yhat[t - 1][k] = exp(oo[k] - m) / s; /* eq. 10.11 */
        o->L -= log(o->yhat[t - 1][r->y[t - 1]]);                             /* eq. 10.12-10.14 */
    }
    /* eq. 10.18: dL/do^(t) = yhat^(t) - 1_{i, y^(t)} */
    for (int t = 0; t < NT; t++)
        for (int k = 0; k < NK; k++) o->go[t][k] = o->yhat[t][k] - (k == r->y[t]);
    /* eq. 10.19 at t = tau, then eq. 10.21 backwards in time:
     * dL/dh^(t) = W^T (dL/dh^(t+1) (1 - h^(t+1)^2)) + V^T dL/do^(t) */
    for (int t = NT - 1; t >= 0; t--)
        for (int i = 0; i < NH; i++) {
            double v = 0;
            for (int k = 0; k < NK; k++) v += V_(k, i) * o->go[t][k];
            if (t < NT - 1)
                for (int j = 0; j < NH; j++) v += W_(j, i) * o->gh[t + 1][j] * (1 - o->h[t + 2][j] * o->h[t + 2][j]);
            o->gh[t][i] = v;
        }
    for (int t = 0; t < NT; t++) {
        for (int k = 0; k < NK; k++) {
            o->gc[k] += o->go[t][k]; /* eq. 10.22 */
            for (int i = 0; i < NH; i++) o->gV[k][i] += o->go[t][k] * o->h[t + 1][i]; /* eq. 23a-d */
        }
        for (int i = 0; i < NH; i++) {
            double da = (1 - o->h[t + 1][i] * o->h[t + 1][i]) * o->gh[t][i];
            o->gb[i] += da; /* eq. 10.23 */
            /* The same pattern for W and U (a -> h is the node, h^(t-1) and x^(t) its inputs). */
            for (int j = 0; j < NH; j++) o->gW[i][j] += da * o->h[t][j];
            for (int j = 0; j < NI; j++) o->gU[i][j] += da * X_(t, j);
        }
    }
    /* eq. 10.20 one step further: dL/dh^(0) = W^T (dL/dh^(1) (1 - h^(1)^2)) */
    for (int i = 0; i < NH; i++)
        for (int j = 0; j < NH; j++) o->gh0[i] += W_(j, i) * o->gh[0][j] * (1 - o->h[1][j] * o->h[1][j]);
}

/* The same network from the library: hidden states [T, 1, NH] and logits [T, NK]. */
static nb_tensor *notes_forward(notes_rnn *r, nb_tensor **hs_out) {
    nb_rnn_state init = {nb_detach(r->h0), NULL};
    nb_tensor *hs = nb_rnn_forward(r->rnn, r->x, &init, NULL);
    if (hs_out) *hs_out = hs;
    return nb_linear(nb_reshape(hs, 2, (int64_t[]){NT, NH}), r->V, r->c);
}
/* eq. 10.12: the sum over t of -log yhat[y]; nb_cross_entropy is the mean. */
static nb_tensor *notes_loss(notes_rnn *r, nb_tensor *logits) {
    return nb_mul_scalar(nb_cross_entropy(logits, r->y), (float)NT);
}

TEST(test_eq_10_8_rnn_forward) {
    notes_rnn r;
    notes_make(&r, true);
    notes_hand o;
    notes_by_hand(&r, &o);
    nb_tensor *hs;
    notes_forward(&r, &hs);
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < NH; i++) CHECK_NEAR(hs->data[t * NH + i], o.h[t + 1][i], 1e-5);
    notes_free(&r);
}

TEST(test_eq_10_11_softmax_output) {
    notes_rnn r;
    notes_make(&r, false);
    notes_hand o;
    notes_by_hand(&r, &o);
    nb_tensor *p = nb_softmax(notes_forward(&r, NULL), 1);
    for (int t = 0; t < NT; t++)
        for (int k = 0; k < NK; k++) CHECK_NEAR(p->data[t * NK + k], o.yhat[t][k], 1e-5);
    notes_free(&r);
}

TEST(test_eq_10_12_loss_is_cross_entropy) {
    notes_rnn r;
    notes_make(&r, true);
    notes_hand o;
    notes_by_hand(&r, &o);
    nb_tensor *logits = notes_forward(&r, NULL);
    CHECK_NEAR(nb_item(notes_loss(&r, logits)), o.L, 1e-5);
    /* and the negative log-likelihood written out: -sum_t log softmax(o)[y] */
    nb_tensor *ls = nb_log_softmax(logits, 1);
    double nll = 0;
    for (int t = 0; t < NT; t++) nll -= ls->data[t * NK + r.y[t]];
    CHECK_NEAR(nll, o.L, 1e-5);
    notes_free(&r);
}

TEST(test_eq_10_18_output_gradient) {
    notes_rnn r;
    notes_make(&r, true);
    notes_hand o;
    notes_by_hand(&r, &o);
    nb_tensor *logits = notes_forward(&r, NULL), *g;
    nb_grad(notes_loss(&r, logits), &logits, 1, &g, false);
    for (int t = 0; t < NT; t++)
        for (int k = 0; k < NK; k++) CHECK_NEAR(g->data[t * NK + k], o.go[t][k], 1e-5);
    notes_free(&r);
}

TEST(test_eq_10_19_last_hidden_gradient) {
    notes_rnn r;
    notes_make(&r, true);
    notes_hand o;
    notes_by_hand(&r, &o);
    nb_tensor *hs, *logits = notes_forward(&r, &hs), *g;
    /* The gradient reaching the layer's output h^(tau) is V^T dL/do^(tau). */
    nb_grad(notes_loss(&r, logits), &hs, 1, &g, false);
    for (int i = 0; i < NH; i++) CHECK_NEAR(g->data[(NT - 1) * NH + i], o.gh[NT - 1][i], 1e-5);
    notes_free(&r);
}

/* eq. 10.21 needs dL/dh^(t) for every t, paths through later steps
 * included. Running the layer one step per call, each call's output being
 * the next call's initial state, makes every h^(t) a tensor of its own, and
 * autodiff gives its total gradient. */
TEST(test_eq_10_21_bptt_hidden_gradients) {
    notes_rnn r;
    notes_make(&r, true);
    notes_hand o;
    notes_by_hand(&r, &o);
    nb_tensor *hstep[NT], *h = nb_detach(r.h0), *loss = NULL;
    for (int t = 0; t < NT; t++) {
        nb_tensor *xt = nb_slice(nb_detach(r.x), 0, t, t + 1);
        nb_rnn_state init = {h, NULL};
        nb_tensor *ht = nb_rnn_forward(r.rnn, xt, &init, NULL); /* [1, 1, NH] */
        hstep[t] = ht;
        h = ht;
        nb_tensor *lt = nb_cross_entropy(nb_linear(nb_reshape(ht, 2, (int64_t[]){1, NH}), r.V, r.c), &r.y[t]);
        loss = loss ? nb_add(loss, lt) : lt;
    }
    nb_tensor *g[NT];
    nb_grad(loss, hstep, NT, g, false);
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < NH; i++) CHECK_NEAR(g[t]->data[i], o.gh[t][i], 1e-5);
    /* One call over the whole sequence: the gradient that reaches h^(0)
     * went through all T steps inside the fused op (eq. 10.20 at t = 0). */
    nb_arena_reset();
    nb_tensor *h0 = nb_tensor_clone(r.h0);
    nb_requires_grad(h0, true);
    nb_rnn_state init = {h0, NULL};
    nb_tensor *hs = nb_rnn_forward(r.rnn, r.x, &init, NULL);
    nb_tensor *logits = nb_linear(nb_reshape(hs, 2, (int64_t[]){NT, NH}), r.V, r.c), *gh0;
    nb_grad(notes_loss(&r, logits), &h0, 1, &gh0, false);
    for (int i = 0; i < NH; i++) CHECK_NEAR(gh0->data[i], o.gh0[i], 1e-5);
    nb_tensor_free(h0);
    notes_free(&r);
}

/* Parameter gradients after one nb_backward of the whole sequence. */
static void notes_backward(notes_rnn *r) {
    nb_zero_grad(r->U);
    nb_zero_grad(r->W);
    nb_zero_grad(r->bih);
    nb_zero_grad(r->bhh);
    nb_zero_grad(r->V);
    nb_zero_grad(r->c);
    nb_backward(notes_loss(r, notes_forward(r, NULL)));
}

TEST(test_eq_10_22_output_bias_gradient) {
    notes_rnn r;
    notes_make(&r, true);
    notes_hand o;
    notes_by_hand(&r, &o);
    notes_backward(&r);
    for (int k = 0; k < NK; k++) CHECK_NEAR(r.c->grad->data[k], o.gc[k], 1e-5);
    notes_free(&r);
}

TEST(test_eq_10_23_hidden_bias_gradient) {
    notes_rnn r;
    notes_make(&r, true);
    notes_hand o;
    notes_by_hand(&r, &o);
    notes_backward(&r);
    /* b = bias_ih + bias_hh: both receive dL/db. */
    for (int i = 0; i < NH; i++) {
        CHECK_NEAR(r.bih->grad->data[i], o.gb[i], 1e-5);
        CHECK_NEAR(r.bhh->grad->data[i], o.gb[i], 1e-5);
    }
    notes_free(&r);
}

TEST(test_eq_23d_output_weight_gradient) {
    notes_rnn r;
    notes_make(&r, true);
    notes_hand o;
    notes_by_hand(&r, &o);
    notes_backward(&r);
    for (int k = 0; k < NK; k++)
        for (int i = 0; i < NH; i++) CHECK_NEAR(r.V->grad->data[k * NH + i], o.gV[k][i], 1e-5);
    /* The recurrent and input weights by the same pattern (eq. 23d's sum of
     * outer products, with diag(1 - h^2) dL/dh^(t) in place of dL/do^(t)). */
    for (int i = 0; i < NH; i++) {
        for (int j = 0; j < NH; j++) CHECK_NEAR(r.W->grad->data[i * NH + j], o.gW[i][j], 1e-5);
        for (int j = 0; j < NI; j++) CHECK_NEAR(r.U->grad->data[i * NI + j], o.gU[i][j], 1e-5);
    }
    notes_free(&r);
}

/* --- the fused layers against cells written with nb_* ops ---------------- */

/* PyTorch's cells from nb_* ops (independent of the library's own replay). */
static nb_tensor *ref_cols(nb_tensor *z, int k, int64_t H) { return nb_slice(z, 1, k * H, (k + 1) * H); }
static nb_tensor *ref_layer(nb_cell cell, nb_tensor *x, nb_tensor **w, nb_tensor *h, nb_tensor *c, nb_tensor **hT,
                            nb_tensor **cT) {
    int64_t T = x->shape[0], B = x->shape[1], H = w[1]->shape[1];
    nb_tensor **outs = nb_arena_alloc(sizeof(nb_tensor *) * (size_t)T);
    for (int64_t t = 0; t < T; t++) {
        nb_tensor *xt = nb_reshape(nb_slice(x, 0, t, t + 1), 2, (int64_t[]){B, x->shape[2]});
        nb_tensor *gi = nb_linear(xt, w[0], w[2]), *gh = nb_linear(h, w[1], w[3]);
        if (cell == NB_CELL_RNN) {
            h = nb_tanh(nb_add(gi, gh));
        } else if (cell == NB_CELL_LSTM) {
            nb_tensor *z = nb_add(gi, gh);
            nb_tensor *i = nb_sigmoid(ref_cols(z, 0, H)), *f = nb_sigmoid(ref_cols(z, 1, H));
            nb_tensor *g = nb_tanh(ref_cols(z, 2, H)), *o = nb_sigmoid(ref_cols(z, 3, H));
            c = nb_add(nb_mul(f, c), nb_mul(i, g));
            h = nb_mul(o, nb_tanh(c));
        } else {
            nb_tensor *rg = nb_sigmoid(nb_add(ref_cols(gi, 0, H), ref_cols(gh, 0, H)));
            nb_tensor *z = nb_sigmoid(nb_add(ref_cols(gi, 1, H), ref_cols(gh, 1, H)));
            nb_tensor *n = nb_tanh(nb_add(ref_cols(gi, 2, H), nb_mul(rg, ref_cols(gh, 2, H))));
            h = nb_add(nb_mul(nb_add_scalar(nb_neg(z), 1.f), n), nb_mul(z, h));
        }
        outs[t] = nb_reshape(h, 3, (int64_t[]){1, B, H});
    }
    *hT = h;
    *cT = c;
    return nb_concat(outs, (int)T, 0);
}

typedef struct {
    nb_rnn *rnn;
    nb_cell cell;
    int layers;
    bool reference; /* run ref_layer instead of the library */
} seq_ctx;

/* in: x [T, B, I], h0 [L, B, H], c0 [L, B, H] (LSTM), then the rnn's
 * parameters. Output: the hidden states and the final state(s), flattened. */
static nb_tensor *f_seq(nb_tensor **in, void *vctx) {
    seq_ctx *c = vctx;
    bool lstm = c->cell == NB_CELL_LSTM;
    nb_tensor *hs, *hT, *cT = NULL;
    if (!c->reference) {
        nb_rnn_state init = {in[1], lstm ? in[2] : NULL}, fin;
        hs = nb_rnn_forward(c->rnn, in[0], &init, &fin);
        hT = fin.h;
        cT = fin.c;
    } else {
        nb_param *p;
        nb_rnn_params(c->rnn, &p);
        int64_t B = in[0]->shape[1], H = in[1]->shape[2];
        nb_tensor *hl[8], *cl[8];
        hs = in[0];
        for (int l = 0; l < c->layers; l++) {
            nb_tensor *w[4] = {p[4 * l].t, p[4 * l + 1].t, p[4 * l + 2].t, p[4 * l + 3].t};
            nb_tensor *h0 = nb_reshape(nb_slice(in[1], 0, l, l + 1), 2, (int64_t[]){B, H});
            nb_tensor *c0 = lstm ? nb_reshape(nb_slice(in[2], 0, l, l + 1), 2, (int64_t[]){B, H}) : NULL;
            hs = ref_layer(c->cell, hs, w, h0, c0, &hl[l], &cl[l]);
            hl[l] = nb_reshape(hl[l], 3, (int64_t[]){1, B, H});
            if (lstm) cl[l] = nb_reshape(cl[l], 3, (int64_t[]){1, B, H});
        }
        hT = nb_concat(hl, c->layers, 0);
        if (lstm) cT = nb_concat(cl, c->layers, 0);
    }
    nb_tensor *parts[3] = {nb_reshape(hs, 1, (int64_t[]){-1}), nb_reshape(hT, 1, (int64_t[]){-1}),
                           cT ? nb_reshape(cT, 1, (int64_t[]){-1}) : NULL};
    return nb_concat(parts, lstm ? 3 : 2, 0);
}

/* A 2-layer stack with x, h0, c0 and all parameters as checkable inputs. */
static int seq_setup(nb_cell cell, int layers, int64_t T, int64_t B, int64_t I, int64_t H, seq_ctx *c, nb_tensor **in) {
    c->cell = cell;
    c->layers = layers;
    c->reference = false;
    c->rnn = nb_rnn_new(cell, I, H, layers, nb_test_rng());
    in[0] = nb_test_param(NB_SHAPE(T, B, I), 1.f);
    in[1] = nb_test_param(NB_SHAPE(layers, B, H), 0.5f);
    in[2] = nb_test_param(NB_SHAPE(layers, B, H), 0.5f);
    if (cell != NB_CELL_LSTM) nb_requires_grad(in[2], false);
    nb_param *p;
    int np = nb_rnn_params(c->rnn, &p);
    for (int k = 0; k < np; k++) {
        /* Weights a little larger than the init so every gate is exercised. */
        nb_init_normal(p[k].t, 0.f, 0.6f, nb_test_rng());
        in[3 + k] = p[k].t;
    }
    return 3 + np;
}

static void seq_teardown(seq_ctx *c, nb_tensor **in) {
    for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
    nb_rnn_free(c->rnn);
}

static void gradcheck_cell(nb_cell cell, int layers) {
    seq_ctx c;
    nb_tensor *in[16];
    int n = seq_setup(cell, layers, 5, 3, 4, 3, &c, in);
    char what[64];
    snprintf(what, sizeof what, "%s, %d layers", nb_cell_name(cell), layers);
    nb_gradcheck(what, f_seq, in, n, &c, 1e-2f, 5e-3f);
    seq_teardown(&c, in);
}

TEST(test_recurrent_gradcheck_rnn) {
    gradcheck_cell(NB_CELL_RNN, 1);
    gradcheck_cell(NB_CELL_RNN, 2);
}
TEST(test_recurrent_gradcheck_lstm) {
    gradcheck_cell(NB_CELL_LSTM, 1);
    gradcheck_cell(NB_CELL_LSTM, 2);
}
TEST(test_recurrent_gradcheck_gru) {
    gradcheck_cell(NB_CELL_GRU, 1);
    gradcheck_cell(NB_CELL_GRU, 2);
}

/* Exact Hessian-vector products (double backward through the layer) against
 * central differences of the gradient. The plain RNN is the notes' model;
 * the LSTM and GRU take the same path. */
static void hvpcheck_cell(nb_cell cell) {
    seq_ctx c;
    nb_tensor *in[16];
    int n = seq_setup(cell, 2, 4, 2, 3, 3, &c, in);
    nb_hvpcheck(nb_cell_name(cell), f_seq, in, n, &c, 2e-3f, 1e-2f);
    seq_teardown(&c, in);
}
TEST(test_recurrent_hvp_rnn) { hvpcheck_cell(NB_CELL_RNN); }
TEST(test_recurrent_hvp_lstm_gru) {
    hvpcheck_cell(NB_CELL_LSTM);
    hvpcheck_cell(NB_CELL_GRU);
}

/* The fused op and PyTorch's equations written with nb_* ops agree on the
 * output and on every gradient, for sizes where threads split the gates. */
TEST(test_recurrent_fused_matches_reference_cells) {
    for (int k = 0; k < 3; k++) {
        nb_cell cell = (nb_cell)k;
        seq_ctx c;
        nb_tensor *in[16];
        int n = seq_setup(cell, 2, 7, 9, 13, 40, &c, in);
        for (int j = 3; j < n; j++) nb_init_uniform(in[j], -0.3f, 0.3f, nb_test_rng());
        nb_tensor *out[2], *g[2][16];
        for (int ref = 0; ref < 2; ref++) {
            c.reference = ref;
            out[ref] = f_seq(in, &c);
            nb_manual_seed(7); /* the same R for both */
            nb_tensor *R = nb_uniform(out[ref]->ndim, out[ref]->shape, -1.f, 1.f, NULL);
            nb_grad(nb_sum_all(nb_mul(out[ref], R)), in, n, g[ref], false);
        }
        CHECK_MSG(nb_test_maxrel(out[0]->data, out[1]->data, out[0]->size) < 1e-5, "%s: outputs differ",
                  nb_cell_name(cell));
        for (int j = 0; j < n; j++) {
            if (!in[j]->requires_grad) continue;
            double e = nb_test_maxrel(g[0][j]->data, g[1][j]->data, g[0][j]->size);
            CHECK_MSG(e < 1e-4, "%s: gradient of input %d differs by %g", nb_cell_name(cell), j, e);
        }
        /* Second order: the same Hessian-vector product both ways. */
        nb_tensor *v[16], *hv[2][16];
        for (int j = 0; j < n; j++) v[j] = nb_normal(in[j]->ndim, in[j]->shape, 0.f, 1.f, nb_test_rng());
        for (int ref = 0; ref < 2; ref++) {
            c.reference = ref;
            nb_manual_seed(7);
            nb_tensor *o = f_seq(in, &c), *R = nb_uniform(o->ndim, o->shape, -1.f, 1.f, NULL);
            nb_hvp(nb_sum_all(nb_mul(o, R)), in, v, n, hv[ref]);
        }
        for (int j = 0; j < n; j++) {
            if (!in[j]->requires_grad) continue;
            double e = nb_test_maxrel(hv[0][j]->data, hv[1][j]->data, hv[0][j]->size);
            CHECK_MSG(e < 1e-3, "%s: Hessian-vector product, input %d differs by %g", nb_cell_name(cell), j, e);
        }
        nb_arena_reset();
        seq_teardown(&c, in);
    }
}

/* One-hot input by gathering columns of weight_ih equals multiplying by
 * one-hot vectors, gradients included. */
TEST(test_recurrent_onehot_equals_dense) {
    int64_t T = 5, B = 3, V = 7, H = 4;
    nb_rnn *m = nb_rnn_new(NB_CELL_LSTM, V, H, 2, nb_test_rng());
    int32_t tok[15];
    for (int i = 0; i < T * B; i++) tok[i] = (int32_t)nb_rng_below(nb_test_rng(), (uint32_t)V);
    nb_param *p;
    int np = nb_rnn_params(m, &p);
    nb_tensor *w[8], *g1[8], *g2[8];
    for (int k = 0; k < np; k++) w[k] = p[k].t;
    nb_tensor *a = nb_rnn_forward_onehot(m, tok, T, B, NULL, NULL);
    nb_grad(nb_sum_all(nb_square(a)), w, np, g1, false);
    nb_tensor *x = nb_reshape(nb_one_hot(tok, T * B, V), 3, (int64_t[]){T, B, V});
    nb_tensor *b = nb_rnn_forward(m, x, NULL, NULL);
    nb_grad(nb_sum_all(nb_square(b)), w, np, g2, false);
    CHECK(nb_test_maxrel(a->data, b->data, a->size) < 1e-6);
    for (int k = 0; k < np; k++) CHECK(nb_test_maxrel(g1[k]->data, g2[k]->data, g1[k]->size) < 1e-5);
    /* An empty sequence runs no step and passes the state through. */
    nb_tensor *h0 = nb_ones(3, (int64_t[]){2, B, H});
    nb_rnn_state init = {h0, NULL}, fin;
    nb_tensor *e = nb_rnn_forward_onehot(m, tok, 0, B, &init, &fin);
    CHECK(e->ndim == 3 && e->shape[0] == 0 && e->shape[1] == B && fin.h == h0 && fin.c && fin.c->data[0] == 0.f);
    nb_rnn_free(m);
}

/* Embedding input: tokens -> rows of a learned table [V, D] -> a GRU; the
 * gradient reaches the table through the layer's input projection. */
typedef struct {
    nb_rnn *rnn;
    int32_t tok[12];
} embed_ctx;
static nb_tensor *f_embed(nb_tensor **in, void *vctx) {
    embed_ctx *c = vctx;
    nb_tensor *x = nb_reshape(nb_embedding(in[0], c->tok, 12), 3, (int64_t[]){4, 3, in[0]->shape[1]});
    return nb_rnn_forward(c->rnn, x, NULL, NULL);
}
TEST(test_recurrent_embedding_input_gradcheck) {
    embed_ctx c;
    c.rnn = nb_rnn_new(NB_CELL_GRU, 5, 4, 1, nb_test_rng());
    for (int i = 0; i < 12; i++) c.tok[i] = (int32_t)nb_rng_below(nb_test_rng(), 6);
    nb_param *p;
    nb_rnn_params(c.rnn, &p);
    nb_tensor *in[3] = {nb_test_param(NB_SHAPE(6, 5), 1.f), p[0].t, p[1].t};
    nb_gradcheck("embedding -> gru", f_embed, in, 3, &c, 1e-2f, 5e-3f);
    nb_tensor_free(in[0]);
    nb_rnn_free(c.rnn);
}

/* Truncated BPTT: a sequence cut in two with the final state carried over
 * gives the same states as one pass; kept on the graph, the same gradients
 * too (so dL/dh0 and dL/dc0 are right); cut with nb_detach, the gradient of
 * the second half no longer reaches the first. */
TEST(test_recurrent_truncated_bptt_state_carry) {
    for (int k = 0; k < 3; k++) {
        nb_cell cell = (nb_cell)k;
        int64_t T = 8, B = 2, I = 3, H = 5;
        nb_rnn *m = nb_rnn_new(cell, I, H, 2, nb_test_rng());
        nb_tensor *x = nb_tensor_new(NB_SHAPE(T, B, I));
        nb_init_normal(x, 0.f, 1.f, nb_test_rng());
        nb_param *p;
        int np = nb_rnn_params(m, &p);
        nb_tensor *w[8], *gfull[8], *gcut[8];
        for (int j = 0; j < np; j++) w[j] = p[j].t;
        nb_rnn_state full;
        nb_tensor *hs = nb_rnn_forward(m, nb_detach(x), NULL, &full);
        nb_grad(nb_sum_all(nb_square(hs)), w, np, gfull, false);
        nb_rnn_state mid, end;
        nb_tensor *a = nb_rnn_forward(m, nb_slice(nb_detach(x), 0, 0, 4), NULL, &mid);
        nb_tensor *b = nb_rnn_forward(m, nb_slice(nb_detach(x), 0, 4, 8), &mid, &end);
        nb_tensor *both = nb_concat((nb_tensor *[]){a, b}, 2, 0);
        CHECK(nb_test_maxrel(both->data, hs->data, hs->size) < 1e-6);
        CHECK(nb_test_maxrel(end.h->data, full.h->data, full.h->size) < 1e-6);
        if (cell == NB_CELL_LSTM) CHECK(nb_test_maxrel(end.c->data, full.c->data, full.c->size) < 1e-6);
        else CHECK(end.c == NULL);
        nb_grad(nb_sum_all(nb_square(both)), w, np, gcut, false);
        for (int j = 0; j < np; j++)
            CHECK_MSG(nb_test_maxrel(gcut[j]->data, gfull[j]->data, gfull[j]->size) < 1e-5, "%s: gradient %d",
                      nb_cell_name(cell), j);
        /* Detached: persistent copies of the state, as a training loop keeps them. */
        nb_tensor *hk = nb_tensor_clone(mid.h), *ck = mid.c ? nb_tensor_clone(mid.c) : NULL;
        nb_rnn_state kept = {nb_detach(hk), ck ? nb_detach(ck) : NULL};
        nb_tensor *b2 = nb_rnn_forward(m, nb_slice(nb_detach(x), 0, 4, 8), &kept, NULL);
        CHECK(nb_test_maxrel(b2->data, b->data, b->size) < 1e-6);
        nb_tensor *g2[8], *g1[8];
        nb_grad(nb_sum_all(nb_square(b2)), w, np, g2, false);
        nb_grad(nb_sum_all(nb_square(b)), w, np, g1, false);
        double diff = 0;
        for (int j = 0; j < np; j++) diff += nb_test_maxrel(g1[j]->data, g2[j]->data, g1[j]->size);
        CHECK_MSG(diff > 1e-4, "%s: the detached state should cut the gradient", nb_cell_name(cell));
        nb_tensor_free(hk);
        nb_tensor_free(ck);
        nb_tensor_free(x);
        nb_rnn_free(m);
        nb_arena_reset();
    }
}

TEST(test_recurrent_param_names_follow_pytorch) {
    nb_rnn *m = nb_rnn_new(NB_CELL_LSTM, 10, 6, 2, nb_test_rng());
    const char **names;
    nb_param *p;
    int n = nb_rnn_param_names(m, &names);
    nb_rnn_params(m, &p);
    const char *want[8] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                           "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"};
    int64_t shapes[8][2] = {{24, 10}, {24, 6}, {24, 0}, {24, 0}, {24, 6}, {24, 6}, {24, 0}, {24, 0}};
    CHECK(n == 8);
    for (int k = 0; k < 8 && k < n; k++) {
        CHECK_MSG(!strcmp(names[k], want[k]), "name %d is %s", k, names[k]);
        CHECK(p[k].t->shape[0] == shapes[k][0]);
        CHECK(shapes[k][1] == 0 ? p[k].t->ndim == 1 : p[k].t->shape[1] == shapes[k][1]);
        CHECK(p[k].decay == (k % 4 < 2));
    }
    /* Forget gate (entries H..2H): bias_ih 1, bias_hh 0; the rest in +-1/sqrt(H). */
    for (int l = 0; l < 2; l++)
        for (int j = 0; j < 24; j++) {
            float bi = p[4 * l + 2].t->data[j], bh = p[4 * l + 3].t->data[j];
            if (j >= 6 && j < 12) CHECK(bi == 1.f && bh == 0.f);
            else CHECK(fabsf(bi) <= 1.f / sqrtf(6.f) && fabsf(bh) <= 1.f / sqrtf(6.f));
        }
    nb_rnn_free(m);
    CHECK(nb_rnn_new(NB_CELL_GRU, 0, 4, 1, NULL) == NULL && strstr(nb_errmsg(), "out of range"));
    nb_cell c;
    CHECK(nb_cell_from_name("gru", &c) == 0 && c == NB_CELL_GRU);
    CHECK(nb_cell_from_name("lsmt", &c) == -1 && strstr(nb_errmsg(), "lsmt"));
}

/* The backward (first and second order) uses the initial state the forward
 * saw: a training loop may overwrite its state tensors with the new final
 * state before it calls backward. Gradients with h0 and c0 overwritten after
 * the forward equal those with them left alone, bit for bit. */
static void overwrite_state(nb_tensor *h0, nb_tensor *c0, float v) {
    nb_fill(h0, v);
    if (c0) nb_fill(c0, v);
}

TEST(test_recurrent_backward_uses_the_state_of_the_forward) {
    for (int k = 0; k < 3; k++) {
        nb_cell cell = (nb_cell)k;
        int64_t T = 3, B = 2, H = 3, GH = nb_cell_gates(cell) * H;
        nb_tensor *in[2] = {nb_test_param(NB_SHAPE(T, B, GH), 1.f), nb_test_param(NB_SHAPE(GH, H), 0.6f)};
        nb_tensor *h0 = nb_test_param(NB_SHAPE(B, H), 0.7f);
        nb_tensor *c0 = cell == NB_CELL_LSTM ? nb_test_param(NB_SHAPE(B, H), 0.7f) : NULL;
        nb_requires_grad(h0, false);
        if (c0) nb_requires_grad(c0, false);
        nb_tensor *h0_keep = nb_tensor_clone(h0), *c0_keep = c0 ? nb_tensor_clone(c0) : NULL;
        nb_tensor *v[2] = {nb_test_param(NB_SHAPE(T, B, GH), 1.f), nb_test_param(NB_SHAPE(GH, H), 1.f)};
        nb_tensor *g[2][2], *hv[2][2];
        for (int over = 0; over < 2; over++) {
            nb_copy_into(h0, h0_keep);
            if (c0) nb_copy_into(c0, c0_keep);
            nb_tensor *y = nb_rnn_seq(cell, in[0], in[1], NULL, NULL, h0, c0);
            if (over) overwrite_state(h0, c0, 3.f);
            nb_grad(nb_sum_all(nb_square(y)), in, 2, g[over], false);
            nb_copy_into(h0, h0_keep);
            if (c0) nb_copy_into(c0, c0_keep);
            y = nb_rnn_seq(cell, in[0], in[1], NULL, NULL, h0, c0);
            if (over) overwrite_state(h0, c0, 3.f);
            nb_hvp(nb_sum_all(nb_square(y)), in, v, 2, hv[over]);
        }
        for (int j = 0; j < 2; j++) {
            CHECK_MSG(memcmp(g[0][j]->data, g[1][j]->data, sizeof(float) * (size_t)g[0][j]->size) == 0,
                      "%s: gradient %d changed with the state overwritten", nb_cell_name(cell), j);
            CHECK_MSG(memcmp(hv[0][j]->data, hv[1][j]->data, sizeof(float) * (size_t)hv[0][j]->size) == 0,
                      "%s: Hessian-vector product %d changed with the state overwritten", nb_cell_name(cell), j);
        }
        nb_arena_reset();
        nb_tensor *all[] = {in[0], in[1], h0, c0, h0_keep, c0_keep, v[0], v[1]};
        for (int j = 0; j < 8; j++) nb_tensor_free(all[j]);
    }
}

/* PyTorch's initialization: every weight and bias U(-1/sqrt(H), 1/sqrt(H))
 * (not scaled by the gate count), the LSTM's forget-gate bias_ih at 1. */
TEST(test_recurrent_init_is_uniform_over_one_over_sqrt_hidden) {
    for (int k = 0; k < 3; k++) {
        int64_t H = 16;
        nb_rnn *m = nb_rnn_new((nb_cell)k, 5, H, 2, nb_test_rng());
        nb_param *p;
        int np = nb_rnn_params(m, &p);
        double a = 1 / sqrt((double)H), lo = 0, hi = 0;
        for (int j = 0; j < np; j++)
            for (int64_t i = 0; i < p[j].t->size; i++) {
                bool forget = k == NB_CELL_LSTM && p[j].t->ndim == 1 && i >= H && i < 2 * H;
                if (forget) continue;
                lo = fmin(lo, p[j].t->data[i]), hi = fmax(hi, p[j].t->data[i]);
            }
        CHECK_MSG(lo >= -a && hi <= a && lo < -0.95 * a && hi > 0.95 * a, "%s: values in [%g, %g], expected +-%g",
                  nb_cell_name((nb_cell)k), lo, hi, a);
        nb_rnn_free(m);
    }
}

/* A token equal to the vocabulary size is outside it (one past the end). */
static void onehot_token_past_end(void *c) {
    nb_rnn *m = c;
    nb_rnn_forward_onehot(m, (int32_t[]){0, 6}, 2, 1, NULL, NULL);
}

TEST(test_recurrent_onehot_token_past_the_vocabulary_is_fatal) {
    nb_rnn *m = nb_rnn_new(NB_CELL_GRU, 6, 3, 1, nb_test_rng());
    nb_test_expect_fatal("token 6 of 6", onehot_token_past_end, m,
                         (const char *[]){"rnn_forward_onehot", "token 6 (entry 1) is outside the vocabulary [0, 6)", NULL});
    nb_rnn_free(m);
}

/* An empty sequence passes a given cell state through, as it does h. */
TEST(test_recurrent_empty_sequence_passes_both_states_through) {
    nb_rnn *m = nb_rnn_new(NB_CELL_LSTM, 4, 3, 2, nb_test_rng());
    nb_tensor *h0 = nb_test_param(NB_SHAPE(2, 2, 3), 1.f), *c0 = nb_test_param(NB_SHAPE(2, 2, 3), 1.f);
    nb_rnn_state init = {h0, c0}, fin;
    nb_tensor *x = nb_tensor_new(NB_SHAPE(0, 2, 4));
    nb_tensor *y = nb_rnn_forward(m, x, &init, &fin);
    CHECK(y->shape[0] == 0 && fin.h == h0 && fin.c == c0);
    nb_tensor_free(h0);
    nb_tensor_free(c0);
    nb_tensor_free(x);
    nb_rnn_free(m);
    nb_arena_reset();
}

/* Only an LSTM has a cell state: one given to another cell is a mistake,
 * named at both levels, not ignored. */
static void seq_gru_with_c0(void *c) {
    nb_rnn_seq(NB_CELL_GRU, nb_zeros(NB_SHAPE(2, 1, 6)), nb_zeros(NB_SHAPE(6, 2)), NULL, NULL, NULL,
               nb_zeros(NB_SHAPE(1, 2)));
}
static void forward_rnn_with_c(void *c) {
    nb_rnn *m = nb_rnn_new(NB_CELL_RNN, 3, 2, 1, nb_test_rng());
    nb_rnn_state init = {nb_zeros(NB_SHAPE(1, 1, 2)), nb_zeros(NB_SHAPE(1, 1, 2))};
    nb_rnn_forward(m, nb_zeros(NB_SHAPE(2, 1, 3)), &init, NULL);
}

TEST(test_recurrent_cell_state_for_another_cell_is_fatal) {
    nb_test_expect_fatal("rnn_seq gru c0", seq_gru_with_c0, NULL,
                         (const char *[]){"rnn_seq", "only an LSTM takes an initial cell state", NULL});
    nb_test_expect_fatal("rnn_forward rnn c", forward_rnn_with_c, NULL,
                         (const char *[]){"rnn_forward", "only an LSTM has a cell state", NULL});
}

/* A training loop (forward, backward, clip, Adam, state carried) settles on
 * one arena block after the first step. */
TEST(test_recurrent_training_loop_arena_is_flat) {
    int32_t vocab[4] = {'\n', 'a', 'b', 'c'};
    nb_charrnn *m = nb_charrnn_new(NB_CELL_LSTM, vocab, 4, 16, 2, nb_test_rng());
    CHECK(m != NULL);
    if (!m) return;
    nb_optim *opt = nb_optim_new(&(nb_optim_opts){.kind = NB_ADAM, .lr = 1e-2f}, m->params, m->np);
    int32_t ids[400], x[64], y[64];
    for (int i = 0; i < 400; i++) ids[i] = i % 4;
    nb_tensor *h = nb_tensor_new(NB_SHAPE(2, 4, 16)), *c = nb_tensor_new(NB_SHAPE(2, 4, 16));
    size_t reserved = 0;
    for (int step = 0; step < 50; step++) {
        nb_charrnn_batch(ids, 400, 16, 4, step, x, y);
        nb_rnn_state init = {nb_detach(h), nb_detach(c)}, fin;
        nb_backward(nb_cross_entropy(nb_charrnn_forward(m, x, 16, 4, &init, &fin), y));
        nb_clip_grad_norm(m->params, m->np, 5.f);
        nb_optim_step(opt);
        nb_optim_zero_grad(opt);
        nb_copy_into(h, fin.h);
        nb_copy_into(c, fin.c);
        nb_arena_reset();
        if (step == 0) reserved = nb_arena_bytes_reserved();
    }
    CHECK(nb_arena_bytes_reserved() == reserved);
    /* "abc\n" repeated is fully predictable: far below log2(4) = 2 bits. */
    double bpc = nb_charrnn_bits_per_char(m, ids, 400, 16, 4, NULL);
    CHECK_MSG(bpc < 0.2, "bits per char after 50 steps: %g", bpc);
    nb_tensor_free(h);
    nb_tensor_free(c);
    nb_optim_free(opt);
    nb_charrnn_free(m);
}

/* --- the character model's text handling and files ------------------------- */

TEST(test_recurrent_charrnn_utf8_and_vocab) {
    const char *s = "h\xC3\xA9llo \xE2\x82\xAC\n\xF0\x9F\x98\x80!";
    int64_t n;
    int32_t *cp = nb_utf8_decode((const uint8_t *)s, strlen(s), "t", &n);
    CHECK(cp && n == 10);
    if (cp) {
        CHECK(cp[1] == 0xE9 && cp[6] == 0x20AC && cp[7] == '\n' && cp[8] == 0x1F600);
        char buf[64];
        int len = 0;
        for (int64_t i = 0; i < n; i++) len += nb_utf8_encode(cp[i], buf + len);
        CHECK(len == (int)strlen(s) && !memcmp(buf, s, (size_t)len));
        int nv;
        int32_t *v = nb_vocab_build(cp, n, &nv);
        CHECK(nv == 9 && v[0] == '\n' && v[1] == ' ' && v[nv - 1] == 0x1F600);
        free(v);
    }
    free(cp);
    /* What is not a code point comes out as U+FFFD (EF BF BD). */
    char rep[4];
    CHECK(nb_utf8_encode(-5, rep) == 3 && !memcmp(rep, "\xEF\xBF\xBD", 3));
    CHECK(nb_utf8_encode(0xD800, rep) == 3 && !memcmp(rep, "\xEF\xBF\xBD", 3));
    CHECK(nb_utf8_encode(0x110000, rep) == 3 && !memcmp(rep, "\xEF\xBF\xBD", 3));
    CHECK(nb_utf8_encode(0x10FFFF, rep) == 4 && !memcmp(rep, "\xF4\x8F\xBF\xBF", 4));
    /* A byte-order mark is skipped, not a character; only in front. */
    CHECK(nb_utf8_bom("\xEF\xBB\xBFx", 4) == 3 && nb_utf8_bom("\xEF\xBB", 2) == 0 && nb_utf8_bom("x", 1) == 0);
    cp = nb_utf8_decode((const uint8_t *)"\xEF\xBB\xBF" "a\xEF\xBB\xBF", 7, "t", &n);
    CHECK(cp && n == 2 && cp[0] == 'a' && cp[1] == 0xFEFF);
    free(cp);
    /* Files are read, checked and concatenated in order; errors name the file. */
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "/tmp/nabla-test-text1-%d.txt", (int)getpid());
    snprintf(p2, sizeof p2, "/tmp/nabla-test-text2-%d.txt", (int)getpid());
    nb_write_file_atomic(p1, "ab\n", 3);
    nb_write_file_atomic(p2, "\xE2\x82\xAC", 3);
    int32_t *all;
    CHECK(nb_text_load((const char *[]){p1, p2}, 2, &all, &n) == 0 && n == 4 && all[2] == '\n' && all[3] == 0x20AC);
    free(all);
    nb_write_file_atomic(p2, "\xE2\x82", 2);
    CHECK(nb_text_load((const char *[]){p1, p2}, 2, &all, &n) == -1 && strstr(nb_errmsg(), p2) && !all);
    unlink(p1);
    unlink(p2);
    struct { const char *bytes; size_t len; const char *err; } bad[] = {
        {"", 0, "t: empty text"},
        {"\xEF\xBB\xBF", 3, "t: empty text"},
        {"ab\0cd", 5, "t: binary data"},
        {"\x01\x02\x03\x04\x05\x06\x07\x0e\x0f\x10", 10, "t: binary data"},
        {"ok\nb\xC0\x80", 6, "t:2:2: invalid UTF-8 (byte 0xC0)"},       /* overlong NUL */
        {"x\xED\xA0\x80", 4, "t:1:2: invalid UTF-8 (byte 0xED)"},        /* surrogate */
        {"abc\xE2\x82", 5, "t:1:4: invalid UTF-8 (byte 0xE2)"},          /* truncated */
        {"\xF5\x80\x80\x80", 4, "t:1:1: invalid UTF-8"},                 /* past U+10FFFF */
        {"caf\xE9 au lait", 12, "t:1:4: invalid UTF-8 (byte 0xE9)"},    /* Latin-1 */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int32_t *r = nb_utf8_decode((const uint8_t *)bad[k].bytes, bad[k].len, "t", &n);
        CHECK_MSG(!r && strstr(nb_errmsg(), bad[k].err), "case %zu: %s", k, nb_errmsg());
        free(r);
    }
}

TEST(test_recurrent_charrnn_batches_cover_streams) {
    int32_t ids[100], x[6], y[6];
    for (int i = 0; i < 100; i++) ids[i] = i;
    /* B = 2 streams of 50, T = 3: windows (50 - 1) / 3 = 16. */
    CHECK(nb_charrnn_windows(100, 3, 2) == 16);
    CHECK(nb_charrnn_batch(ids, 100, 3, 2, 0, x, y) == 1);
    CHECK(x[0] == 0 && x[1] == 50 && x[2] == 1 && x[5] == 52 && y[0] == 1 && y[5] == 53);
    CHECK(nb_charrnn_batch(ids, 100, 3, 2, 17, x, y) == 0);
    CHECK(x[0] == 3 && x[1] == 53);
    CHECK(nb_charrnn_batch(ids, 100, 3, 2, 16, x, y) == 1);
    CHECK(nb_charrnn_batch(ids, 7, 3, 2, 0, x, y) == -1 && strstr(nb_errmsg(), "too short"));
    /* A negative batch number made a negative window and read before ids. */
    CHECK(nb_charrnn_batch(ids, 100, 3, 2, -1, x, y) == -1 && strstr(nb_errmsg(), "negative"));
}

static void bits_per_char_of_a_foreign_id(void *c) {
    nb_charrnn *m = nb_charrnn_new(NB_CELL_GRU, (const int32_t[]){'a', 'b'}, 2, 4, 1, nb_test_rng());
    nb_charrnn_bits_per_char(m, (const int32_t[]){0, 1, 5, 0}, 4, 2, 1, NULL);
}

TEST(test_recurrent_charrnn_bits_per_char_checks_ids) {
    /* The id was refused as "cross_entropy: label 5", not in this name. */
    nb_test_expect_fatal("bpc id", bits_per_char_of_a_foreign_id, NULL,
                         (const char *[]){"charrnn_bits_per_char", "id 5 at position 2", "[0, 2)", NULL});
}

TEST(test_recurrent_charrnn_save_load_sample) {
    int32_t vocab[5] = {'\n', ' ', 'a', 'b', 0x20AC};
    nb_charrnn *m = nb_charrnn_new(NB_CELL_GRU, vocab, 5, 8, 2, nb_test_rng());
    char path[64];
    snprintf(path, sizeof path, "/tmp/nabla-test-charrnn-%d.safetensors", (int)getpid());
    CHECK(nb_charrnn_save(m, path, (const char *[]){"nabla.step"}, (const char *[]){"12"}, 1, NULL, NULL, 0) == 0);
    nb_safetensors *st;
    nb_charrnn *l = nb_charrnn_load(path, &st);
    CHECK(l != NULL);
    if (l) {
        CHECK(nb_rnn_cell(l->rnn) == NB_CELL_GRU && nb_rnn_num_layers(l->rnn) == 2 && l->nvocab == 5 &&
              l->vocab[4] == 0x20AC && !strcmp(nb_st_meta(st, "nabla.step"), "12"));
        for (int k = 0; k < m->np; k++)
            CHECK(nb_test_maxrel(l->params[k].t->data, m->params[k].t->data, m->params[k].t->size) == 0);
        /* The same seed draws the same text from both. */
        int32_t prime[2] = {2, 3}, a[20], b[20];
        nb_rng r1, r2;
        nb_rng_seed(&r1, 5, 0);
        nb_rng_seed(&r2, 5, 0);
        CHECK(nb_charrnn_sample(m, prime, 2, 20, 1.f, &r1, a) == 0);
        CHECK(nb_charrnn_sample(l, prime, 2, 20, 1.f, &r2, b) == 0);
        CHECK(!memcmp(a, b, sizeof a));
        for (int i = 0; i < 20; i++) CHECK(a[i] >= 0 && a[i] < 5);
        nb_charrnn_free(l);
        nb_st_free(st);
    }
    /* An unknown character names the source, line and column. */
    int32_t text[4] = {'a', '\n', 'b', 'z'}, ids[4];
    CHECK(nb_charrnn_encode(m, text, 4, ids, "in.txt") == -1);
    CHECK(strstr(nb_errmsg(), "in.txt:2:2: character U+007A ('z')"));
    /* A model file of another kind. */
    nb_tensor *t = nb_tensor_new(NB_SHAPE(2));
    const char *key = "nabla.net", *val = "[net]", *tname = "fc1.weight";
    nb_st_write(path, &tname, &t, 1, &key, &val, 1);
    CHECK(nb_charrnn_load(path, NULL) == NULL && strstr(nb_errmsg(), "not a charrnn model"));
    nb_tensor_free(t);
    unlink(path);
    nb_charrnn_free(m);
}

/* A model whose output ignores the text: V = 0, so every step's logits are
 * the bias c (eq. 10.10 with V h = 0). */
static nb_charrnn *bias_only_model(const float *bias) {
    nb_charrnn *m = nb_charrnn_new(NB_CELL_GRU, (const int32_t[]){'a', 'b', 'c'}, 3, 4, 1, nb_test_rng());
    memset(m->fc_w->data, 0, sizeof(float) * (size_t)m->fc_w->size);
    memcpy(m->fc_b->data, bias, sizeof(float) * 3);
    return m;
}

TEST(test_recurrent_charrnn_bits_per_char_by_hand) {
    /* Bias (0, ln 2, ln 4): p = (1, 2, 4) / 7 at every step, so predicting
     * id y costs log2 7 - y bits, and the mean is log2 7 - mean(y) over the
     * characters the windows predict. */
    nb_charrnn *m = bias_only_model((const float[]){0, (float)log(2.0), (float)log(4.0)});
    int64_t chars = -1;
    /* 10 ids, T = 3, B = 2: streams of 5, one window each, predicting ids
     * 1..3 and 6..8: (1, 2, 2) and (1, 0, 0), mean 1. */
    const int32_t a[10] = {0, 1, 2, 2, 0, 2, 1, 0, 0, 2};
    CHECK_NEAR(nb_charrnn_bits_per_char(m, a, 10, 3, 2, &chars), log2(7.0) - 1.0, 1e-5);
    CHECK(chars == 6);
    /* 5 ids cannot make 2 streams of 3 steps: one stream, ids 1..3 = (2, 2, 1). */
    const int32_t b[5] = {0, 2, 2, 1, 0};
    CHECK_NEAR(nb_charrnn_bits_per_char(m, b, 5, 3, 2, &chars), log2(7.0) - 5.0 / 3, 1e-5);
    CHECK(chars == 3);
    /* Nor one window of 10 steps: the window shrinks to all n - 1 predictions. */
    CHECK_NEAR(nb_charrnn_bits_per_char(m, b, 5, 10, 1, &chars), log2(7.0) - 5.0 / 4, 1e-5);
    CHECK(chars == 4);
    /* One character predicts nothing. */
    CHECK(nb_charrnn_bits_per_char(m, b, 1, 3, 1, &chars) == -1 && strstr(nb_errmsg(), "nothing to predict") && chars == 0);
    nb_clear_error();
    /* Windows: streams of n / B characters, (len - 1) / T windows each. */
    CHECK(nb_charrnn_windows(7, 3, 1) == 2 && nb_charrnn_windows(8, 3, 2) == 1 && nb_charrnn_windows(6, 3, 2) == 0);
    nb_charrnn_free(m);
}

static void bits_per_char_of_id_nvocab(void *c) {
    nb_charrnn *m = bias_only_model((const float[]){0, 0, 0});
    nb_charrnn_bits_per_char(m, (const int32_t[]){0, 1, 3, 0}, 4, 2, 1, NULL);
}

TEST(test_recurrent_charrnn_sampling_temperature) {
    nb_test_expect_fatal("bpc id nvocab", bits_per_char_of_id_nvocab, NULL,
                         (const char *[]){"charrnn_bits_per_char", "id 3 at position 2", NULL});
    enum { N = 6000 };
    int32_t *out = malloc(sizeof(int32_t) * N);
    nb_rng r;
    nb_rng_seed(&r, 7, 0);
    /* Temperature 0: the argmax, the first of equals. */
    nb_charrnn *m = bias_only_model((const float[]){0, 1, 1});
    CHECK(nb_charrnn_sample(m, (const int32_t[]){0}, 1, 50, 0.f, &r, out) == 0);
    bool all1 = true;
    for (int i = 0; i < 50; i++) all1 &= out[i] == 1;
    CHECK(all1);
    nb_charrnn_free(m);
    /* Temperature 0.5 on bias (0, ln 2, ln 4): softmax(c / 0.5) = (1, 4, 16) / 21;
     * temperature 2: (1, sqrt 2, 2) / (3 + sqrt 2). */
    m = bias_only_model((const float[]){0, (float)log(2.0), (float)log(4.0)});
    const double temps[2] = {0.5, 2.0}, p[2][3] = {{1 / 21.0, 4 / 21.0, 16 / 21.0},
                                                   {1 / (3 + M_SQRT2), M_SQRT2 / (3 + M_SQRT2), 2 / (3 + M_SQRT2)}};
    for (int k = 0; k < 2; k++) {
        CHECK(nb_charrnn_sample(m, (const int32_t[]){1, 2}, 2, N, (float)temps[k], &r, out) == 0);
        int count[3] = {0};
        for (int i = 0; i < N; i++)
            if (out[i] >= 0 && out[i] < 3) count[out[i]]++;
        for (int j = 0; j < 3; j++) CHECK_NEAR(count[j] / (double)N, p[k][j], 0.02);
    }
    nb_charrnn_free(m);
    /* With weights, the greedy text continues from the prime's last state:
     * each drawn id is the argmax of the last row of one forward pass over
     * the prime and all drawn so far. The prime is picked so that its first
     * and last rows disagree. */
    m = nb_charrnn_new(NB_CELL_GRU, (const int32_t[]){'a', 'b', 'c', 'd', 'e'}, 5, 8, 1, nb_test_rng());
    for (int64_t i = 0; i < m->fc_w->size; i++) m->fc_w->data[i] *= 8;
    int32_t seq[12];
    bool found = false;
    bool g = nb_set_grad_enabled(false);
    for (int c0 = 0; c0 < 5 && !found; c0++)
        for (int c2 = 0; c2 < 5 && !found; c2++) {
            seq[0] = c0, seq[1] = (c0 + 1) % 5, seq[2] = c2;
            nb_tensor *o = nb_charrnn_forward(m, seq, 3, 1, NULL, NULL);
            int a0 = 0, a2 = 0;
            for (int j = 1; j < 5; j++) {
                if (o->data[j] > o->data[a0]) a0 = j;
                if (o->data[2 * 5 + j] > o->data[2 * 5 + a2]) a2 = j;
            }
            found = a0 != a2;
        }
    CHECK(found);
    CHECK(nb_charrnn_sample(m, seq, 3, 8, 0.f, &r, out) == 0);
    for (int k = 0; k < 8; k++) {
        nb_tensor *o = nb_charrnn_forward(m, seq, 3 + k, 1, NULL, NULL);
        const float *last = o->data + (2 + k) * 5;
        int best = 0;
        for (int j = 1; j < 5; j++)
            if (last[j] > last[best]) best = j;
        CHECK_MSG(out[k] == best, "step %d: drew %d, the argmax is %d", k, out[k], best);
        seq[3 + k] = best;
    }
    nb_set_grad_enabled(g);
    nb_charrnn_free(m);
    free(out);
}

TEST(test_recurrent_charrnn_vocab_edges) {
    /* The last code point U+10FFFF is a character like any other. */
    int nv = 0;
    int32_t *v = nb_vocab_build((const int32_t[]){0x10FFFF, 'a', 0x10FFFF, 0}, 4, &nv);
    CHECK(v && nv == 3 && v[0] == 0 && v[1] == 'a' && v[2] == 0x10FFFF);
    free(v);
    /* A vocabulary lists each code point once. */
    CHECK(nb_charrnn_new(NB_CELL_RNN, (const int32_t[]){'a', 'b', 'b'}, 3, 4, 1, nb_test_rng()) == NULL &&
          strstr(nb_errmsg(), "distinct"));
    nb_clear_error();
}
