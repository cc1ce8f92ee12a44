/* test_cuda_lstm_packed.c — the packed LSTM (nb_lstm_packed: sequences of
 * different lengths, the running rows of each step a prefix of the batch) on
 * the GPU against the CPU: the output and every input's gradient on odd
 * sizes and unequal lengths, with and without biases; the finite-difference
 * check on GPU tensors; the Hessian-vector check through the double-backward
 * replay; and the dual-encoder chatbot built on it moved to the GPU, giving
 * the CPU's loss, gradients and ranking scores. `make cuda-emu` runs them
 * against the emulator, where any host access to the GPU's memory faults. */
#include "test.h"
#include <stdlib.h>


/* One packing: T steps of batch[t] running sequences; bias: whether the
 * inputs hold b_ih and b_hh after xw and w_hh. */
typedef struct {
    const int64_t *batch;
    int64_t T;
    bool bias;
} pk_case;

static nb_tensor *f_packed(nb_tensor **in, void *ctx) {
    const pk_case *c = ctx;
    return nb_lstm_packed(in[0], c->batch, c->T, in[1], c->bias ? in[2] : NULL, c->bias ? in[3] : NULL);
}

/* The inputs of a case with hidden size H; returns their count. */
static int pk_inputs(const pk_case *c, int64_t H, nb_tensor **in) {
    int64_t N = 0;
    for (int64_t t = 0; t < c->T; t++) N += c->batch[t];
    int n = 0;
    in[n++] = nb_test_param(2, (int64_t[]){N, 4 * H}, 1.f);
    /* Weights large enough that the gates leave their linear range. */
    in[n++] = nb_test_param(2, (int64_t[]){4 * H, H}, 0.5f);
    if (c->bias) {
        in[n++] = nb_test_param(1, (int64_t[]){4 * H}, 0.5f);
        in[n++] = nb_test_param(1, (int64_t[]){4 * H}, 0.5f);
    }
    return n;
}

/* Unequal lengths (sequences of 6, 5, 3, 2 and 2 steps: 5, 5, 3, 2, 2, 1
 * rows per step), a single step, and equal lengths. */
static const int64_t b_unequal[] = {5, 5, 3, 2, 2, 1}, b_one[] = {4}, b_equal[] = {3, 3, 3, 3};

TEST(test_cuda_lstm_packed_parity) {
    if (!nb_test_gpu()) return;
    struct {
        const int64_t *batch;
        int64_t T, H;
    } packs[] = {{b_unequal, 6, 7}, {b_unequal, 6, 1}, {b_one, 1, 5}, {b_equal, 4, 3}};
    double worst = 0;
    for (int p = 0; p < 4; p++)
        for (int bias = 0; bias < 2; bias++) {
            pk_case c = {packs[p].batch, packs[p].T, bias};
            nb_tensor *in[4];
            int n = pk_inputs(&c, packs[p].H, in);
            char what[96];
            snprintf(what, sizeof what, "lstm_packed T = %lld, H = %lld%s", (long long)c.T, (long long)packs[p].H,
                     bias ? ", biases" : "");
            double e = nb_test_gpu_parity(what, f_packed, in, n, &c, 1e-5);
            if (e > worst) worst = e;
            nb_test_free_all(in, n);
        }
    printf("     (lstm_packed parity: worst relative difference %.3g)\n", worst);
}

TEST(test_cuda_lstm_packed_gradcheck_on_gpu) {
    if (!nb_test_gpu()) return;
    pk_case c = {b_unequal, 6, true};
    nb_tensor *in[4];
    int n = pk_inputs(&c, 3, in);
    double e = nb_gradcheck("GPU lstm_packed", f_packed, nb_test_moved(in, n, NB_CUDA), n, &c, 1e-2f, 5e-3f);
    printf("     (GPU lstm_packed gradcheck: %.3g)\n", e);
    nb_test_free_all(in, n);
}

/* Double backward: with the gradient recorded, the op's rule replays the
 * cells as nb_* ops on the GPU. */
TEST(test_cuda_lstm_packed_hvp_on_gpu) {
    if (!nb_test_gpu()) return;
    static const int64_t batch[] = {3, 2, 2, 1};
    for (int bias = 0; bias < 2; bias++) {
        pk_case c = {batch, 4, bias};
        nb_tensor *in[4];
        int n = pk_inputs(&c, 2, in);
        double e = nb_hvpcheck(bias ? "GPU lstm_packed, biases (Hv)" : "GPU lstm_packed (Hv)", f_packed,
                               nb_test_moved(in, n, NB_CUDA), n, &c, 2e-3f, 1e-2f);
        printf("     (GPU lstm_packed hvpcheck%s: %.3g)\n", bias ? " with biases" : "", e);
        nb_test_free_all(in, n);
    }
}

/* --- the dual encoder on the GPU ----------------------------------------------- */

/* Three pairs, contexts then responses, of lengths 4, 1, 6 and 2, 5, 1. */
static const int32_t de_ids[] = {1, 2, 3, 4, 5, 1, 2, 3, 5, 4, 4, 1, 2, 2, 3, 4, 5, 1, 3, 5, 4};
static const int64_t de_off[] = {0, 4, 5, 11, 13, 18, 19};

/* The chatbot's training loss (eq. 29 on the logits c^T M r) on device d:
 * writes the loss, host copies of every parameter's gradient, and the
 * ranking scores of a small test layout. */
static void dualenc_run(nb_device d, const nb_dialogue *test, float *loss, nb_tensor **grads, int *np,
                        float *scores) {
    char *w[] = {"<unk>", "a", "b", "c", "d", "e"};
    nb_rng r;
    nb_rng_seed(&r, 21, 0);
    nb_dualenc *m = nb_dualenc_new(nb_chat_vocab_from_words(w, 6), 5, 7, &r);
    for (int k = 0; k < m->np; k++) nb_tensor_move(m->params[k].t, d);
    nb_tensor *y = nb_to(nb_from_data(1, (int64_t[]){3}, (float[]){1.f, 0.f, 1.f}), d);
    nb_tensor *z = nb_dualenc_logits(m, de_ids, de_off, 3);
    CHECK(z->device == d);
    nb_tensor *L = nb_bce_logits(z, y);
    nb_backward(L);
    *loss = nb_item(L);
    for (int k = 0; k < m->np; k++) grads[k] = nb_test_to_host(m->params[k].t->grad);
    *np = m->np;
    nb_arena_reset();
    CHECK(nb_dualenc_rank(m, test, 8, 8, 2, scores) == 0);
    nb_dualenc_free(m);
}

TEST(test_cuda_lstm_packed_dualenc_on_gpu) {
    if (!nb_test_gpu()) return;
    const char *csv = "Context,Ground Truth Utterance,Distractor_0,Distractor_1\n"
                      "a a d e b,a d d,b,c e e a\nb c,c b,a,d\nd,a,d b,c\n";
    nb_dialogue *test = nb_dialogue_parse(csv, strlen(csv), "t.csv");
    CHECK_MSG(test, "%s", nb_errmsg());
    if (!test) return;
    float lc, lg, sc[9], sg[9];
    nb_tensor *gc[6], *gg[6];
    int n;
    dualenc_run(NB_CPU, test, &lc, gc, &n, sc);
    dualenc_run(NB_CUDA, test, &lg, gg, &n, sg);
    CHECK_MSG(fabs(lg - lc) <= 1e-5 * fmax(1.0, fabs(lc)), "GPU loss %.8g, CPU loss %.8g", (double)lg, (double)lc);
    double worst = 0;
    for (int k = 0; k < n; k++) {
        double e = nb_test_maxrel(gg[k]->data, gc[k]->data, gc[k]->size);
        CHECK_MSG(e <= 1e-5, "gradient of parameter %d differs from the CPU's by %.3g", k, e);
        if (e > worst) worst = e;
    }
    double es = nb_test_maxrel(sg, sc, 9);
    CHECK_MSG(es <= 1e-5, "ranking scores differ from the CPU's by %.3g", es);
    printf("     (dual encoder on the GPU: loss %.3g apart, worst gradient difference %.3g, scores %.3g)\n",
           fabs((double)lg - lc), worst, es);
    nb_test_free_all(gc, n);
    nb_test_free_all(gg, n);
    nb_dialogue_free(test);
}
