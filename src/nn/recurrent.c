/* recurrent.c — stacked recurrent layers (plain RNN, LSTM, GRU) that own
 * their parameters under PyTorch's nn.RNN/nn.LSTM/nn.GRU names and run a
 * whole sequence per layer through the fused op of src/ops/recurrent.c. */
#include "../core/internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct nb_rnn {
    nb_cell cell;
    int64_t input, hidden;
    int layers;
    /* per layer: weight_ih [G*H, in], weight_hh [G*H, H], bias_ih, bias_hh [G*H] */
    nb_tensor **w;      /* 4 * layers tensors in that order */
    nb_param *params;
    const char **names; /* heap strings */
};

nb_rnn *nb_rnn_new(nb_cell cell, int64_t input, int64_t hidden, int layers, nb_rng *r) {
    if (cell != NB_CELL_RNN && cell != NB_CELL_LSTM && cell != NB_CELL_GRU) {
        nb_error("rnn: unknown cell type %d", (int)cell);
        return NULL;
    }
    if (input < 1 || hidden < 1 || layers < 1 || input > (1 << 24) || hidden > (1 << 16) || layers > 64) {
        nb_error("rnn: sizes out of range (input %lld, hidden %lld, layers %d; need input 1..2^24, hidden 1..65536, "
                 "layers 1..64)", (long long)input, (long long)hidden, layers);
        return NULL;
    }
    nb_rnn *m = calloc(1, sizeof *m);
    int np = 4 * layers;
    if (!m || !(m->w = calloc((size_t)np, sizeof *m->w)) || !(m->params = calloc((size_t)np, sizeof *m->params)) ||
        !(m->names = calloc((size_t)np, sizeof *m->names)))
        nb_oom("a recurrent layer", 0);
    m->cell = cell;
    m->input = input;
    m->hidden = hidden;
    m->layers = layers;
    int64_t G = nb_cell_gates(cell), H = hidden;
    /* PyTorch's initialization: every weight and bias U(-1/sqrt(H), 1/sqrt(H)). */
    float k = 1.f / sqrtf((float)H);
    static const char *kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    for (int l = 0; l < layers; l++) {
        int64_t in = l == 0 ? input : H;
        for (int q = 0; q < 4; q++) {
            nb_tensor *t = q == 0 ? nb_tensor_new(2, (int64_t[]){G * H, in})
                         : q == 1 ? nb_tensor_new(2, (int64_t[]){G * H, H})
                                  : nb_tensor_new(1, (int64_t[]){G * H});
            nb_init_uniform(t, -k, k, r);
            nb_requires_grad(t, true);
            char name[32];
            snprintf(name, sizeof name, "%s_l%d", kinds[q], l);
            char *s = malloc(strlen(name) + 1);
            if (!s) nb_oom("a recurrent layer", 0);
            strcpy(s, name);
            t->name = s;
            m->w[4 * l + q] = t;
            m->names[4 * l + q] = s;
            m->params[4 * l + q] = (nb_param){t, q < 2}; /* weight decay on weights only (eq. 7.1) */
        }
        if (cell == NB_CELL_LSTM) {
            /* Forget-gate bias 1 (Gers et al. 2000; Jozefowicz et al. 2015):
             * f starts near sigmoid(1) = 0.73, so the cell state and its
             * gradient are carried across many steps from the first update. */
            for (int64_t j = H; j < 2 * H; j++) {
                m->w[4 * l + 2]->data[j] = 1.f;
                m->w[4 * l + 3]->data[j] = 0.f;
            }
        }
    }
    return m;
}

void nb_rnn_free(nb_rnn *m) {
    if (!m) return;
    for (int i = 0; i < 4 * m->layers; i++) {
        nb_tensor_free(m->w[i]);
        free((char *)m->names[i]);
    }
    free(m->w);
    free(m->params);
    free(m->names);
    free(m);
}

nb_cell nb_rnn_cell(const nb_rnn *m) { return m->cell; }
int64_t nb_rnn_input_size(const nb_rnn *m) { return m->input; }
int64_t nb_rnn_hidden_size(const nb_rnn *m) { return m->hidden; }
int nb_rnn_num_layers(const nb_rnn *m) { return m->layers; }

int nb_rnn_params(nb_rnn *m, nb_param **params) {
    if (params) *params = m->params;
    return 4 * m->layers;
}

int nb_rnn_param_names(const nb_rnn *m, const char ***names) {
    if (names) *names = m->names;
    return 4 * m->layers;
}

/* Layer l's part of a [L, B, H] state as a [B, H] view (NULL stays NULL). */
static nb_tensor *layer_state(const nb_tensor *s, int l, int L, int64_t B, int64_t H, const char *what) {
    if (!s) return NULL;
    if (s->ndim != 3 || s->shape[0] != L || s->shape[1] != B || s->shape[2] != H) {
        char a[96];
        nb_fatal("rnn_forward", "%s has shape %s, expected [%d, %lld, %lld] (layers, batch, hidden)", what,
                 nb_shape_str(s, a, sizeof a), L, (long long)B, (long long)H);
    }
    return nb_reshape(nb_slice((nb_tensor *)s, 0, l, l + 1), 2, (int64_t[]){B, H});
}

/* Runs the layers on the first layer's input projection xw0 [T, B, G*H]
 * (made by the caller from dense or one-hot input). */
static nb_tensor *run_layers(nb_rnn *m, nb_tensor *xw0, const nb_rnn_state *init, nb_rnn_state *final) {
    int64_t T = xw0->shape[0], B = xw0->shape[1], H = m->hidden, G = nb_cell_gates(m->cell);
    int L = m->layers, S = m->cell == NB_CELL_LSTM ? 2 : 1;
    if (init && init->c && m->cell != NB_CELL_LSTM) nb_fatal("rnn_forward", "only an LSTM has a cell state (init->c)");
    nb_tensor **hT = nb_arena_alloc(sizeof(nb_tensor *) * (size_t)L);
    nb_tensor **cT = nb_arena_alloc(sizeof(nb_tensor *) * (size_t)L);
    nb_tensor *hs = NULL, *xw = xw0;
    for (int l = 0; l < L; l++) {
        nb_tensor **w = m->w + 4 * l;
        if (l > 0) {
            /* The input projection of all T steps as one GEMM. */
            nb_tensor *x2 = nb_reshape(hs, 2, (int64_t[]){T * B, H});
            xw = nb_reshape(nb_matmul_t(x2, w[0], false, true), 3, (int64_t[]){T, B, G * H});
        }
        nb_tensor *h0 = init ? layer_state(init->h, l, L, B, H, "init->h") : NULL;
        nb_tensor *c0 = init ? layer_state(init->c, l, L, B, H, "init->c") : NULL;
        nb_tensor *o = nb_rnn_seq(m->cell, xw, w[1], w[2], w[3], h0, c0);
        /* o is [S, T, B, H]: all h_t, then (LSTM) all c_t; views, no copies. */
        nb_tensor *rows = nb_reshape(o, 3, (int64_t[]){S * T, B, H});
        hs = S == 1 ? rows : nb_slice(rows, 0, 0, T);
        hT[l] = nb_slice(rows, 0, T - 1, T);
        if (S == 2) cT[l] = nb_slice(rows, 0, 2 * T - 1, 2 * T);
    }
    if (final) {
        final->h = L == 1 ? hT[0] : nb_concat(hT, L, 0);
        final->c = S == 2 ? (L == 1 ? cT[0] : nb_concat(cT, L, 0)) : NULL;
    }
    return hs;
}

/* Zeros of the given shape where the model's parameters live, as a step
 * would have made them. */
static nb_tensor *zeros_on_model(const nb_rnn *m, int ndim, const int64_t *shape) {
    nb_tensor *z = nb__new_on(m->w[0]->device, ndim, shape);
    nb_fill(z, 0.f);
    return z;
}

/* T = 0: no step runs; the output is empty and the state passes through. */
static nb_tensor *empty_run(nb_rnn *m, int64_t B, const nb_rnn_state *init, nb_rnn_state *final) {
    int64_t shape[3] = {m->layers, B, m->hidden};
    if (final) {
        final->h = init && init->h ? init->h : zeros_on_model(m, 3, shape);
        final->c = m->cell != NB_CELL_LSTM ? NULL : init && init->c ? init->c : zeros_on_model(m, 3, shape);
    }
    return zeros_on_model(m, 3, (int64_t[]){0, B, m->hidden});
}

nb_tensor *nb_rnn_forward(nb_rnn *m, nb_tensor *x, const nb_rnn_state *init, nb_rnn_state *final) {
    if (x->ndim != 3 || x->shape[2] != m->input || x->shape[1] < 1) {
        char a[96];
        nb_fatal("rnn_forward", "input has shape %s, expected [T, B, %lld] with B >= 1", nb_shape_str(x, a, sizeof a),
                 (long long)m->input);
    }
    int64_t T = x->shape[0], B = x->shape[1], GH = nb_cell_gates(m->cell) * m->hidden;
    if (T == 0) return empty_run(m, B, init, final);
    /* eq. 10.8's U x^(t) for every t at once: one [T*B, I] x [I, G*H] GEMM. */
    nb_tensor *x2 = nb_reshape(x, 2, (int64_t[]){T * B, m->input});
    nb_tensor *xw = nb_reshape(nb_matmul_t(x2, m->w[0], false, true), 3, (int64_t[]){T, B, GH});
    return run_layers(m, xw, init, final);
}

nb_tensor *nb_rnn_forward_onehot(nb_rnn *m, const int32_t *tokens, int64_t T, int64_t B, const nb_rnn_state *init,
                                 nb_rnn_state *final) {
    if (T < 0 || B < 1) nb_fatal("rnn_forward_onehot", "needs T >= 0 and B >= 1, got T = %lld, B = %lld", (long long)T,
                                 (long long)B);
    for (int64_t i = 0; i < T * B; i++)
        if (tokens[i] < 0 || tokens[i] >= m->input)
            nb_fatal("rnn_forward_onehot", "token %d (entry %lld) is outside the vocabulary [0, %lld)", tokens[i],
                     (long long)i, (long long)m->input);
    if (T == 0) return empty_run(m, B, init, final);
    int64_t GH = nb_cell_gates(m->cell) * m->hidden;
    /* onehot(x) W_ih^T picks column x of W_ih: a gather of rows of W_ih^T
     * (the transpose is [V, G*H], small), so no [T*B, V] product is formed.
     * Its adjoint, a scatter-add of rows, is the gradient of W_ih. */
    nb_tensor *wt = nb_transpose(m->w[0], 0, 1);
    nb_tensor *xw = nb_reshape(nb_gather_rows(wt, tokens, T * B), 3, (int64_t[]){T, B, GH});
    return run_layers(m, xw, init, final);
}

nb_tensor *nb_one_hot(const int32_t *idx, int64_t n, int64_t classes) {
    if (n < 0 || classes < 1) nb_fatal("one_hot", "needs n >= 0 and classes >= 1, got %lld and %lld", (long long)n,
                                       (long long)classes);
    nb_tensor *out = nb_zeros(2, (int64_t[]){n, classes});
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= classes)
            nb_fatal("one_hot", "index %d (entry %lld) is outside [0, %lld)", idx[i], (long long)i, (long long)classes);
        out->data[i * classes + idx[i]] = 1.f;
    }
    return out;
}
