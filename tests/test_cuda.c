/* test_cuda.c — the CUDA backend against the CPU: every op with a GPU path
 * runs on random odd shapes on both devices, and outputs and gradients must
 * agree; the finite-difference and Hessian-vector checks run on GPU tensors;
 * optimizers and a short training run match step for step. In a build
 * without CUDA the tests check the errors instead; with CUDA and no GPU
 * answering, the GPU tests say so and pass without running. `make cuda-emu`
 * runs them against the emulator (src/cuda/emu.cc), which executes the same
 * kernels on the CPU and faults on any host access to device memory. */
#include "test.h"
#include <stdlib.h>
#include <unistd.h>

static nb_tensor *param(int ndim, const int64_t *shape) { return nb_test_param(ndim, shape, 1.f); }

/* --- elementwise ------------------------------------------------------------ */

typedef struct { int op; float p; } op_ctx;

static nb_tensor *f_binary(nb_tensor **in, void *ctx) {
    switch (((op_ctx *)ctx)->op) {
    case 0: return nb_add(in[0], in[1]);
    case 1: return nb_sub(in[0], in[1]);
    case 2: return nb_mul(in[0], in[1]);
    default: return nb_div(in[0], nb_add_scalar(nb_abs(in[1]), 0.5f)); /* away from 0 */
    }
}

TEST(test_cuda_binary_broadcast) {
    if (!nb_test_gpu()) return;
    /* same shape, a scalar, a row, and both sides broadcast */
    static const int64_t shapes[][2][4] = {
        {{3, 7, 5, 0}, {3, 7, 5, 0}}, {{13, 3, 0, 0}, {0, 0, 0, 0}}, {{6, 11, 0, 0}, {11, 0, 0, 0}},
        {{3, 1, 5, 0}, {4, 1, 0, 0}}, {{2, 1, 3, 1}, {5, 1, 7, 0}},
    };
    static const int nds[][2] = {{3, 3}, {2, 0}, {2, 1}, {3, 2}, {4, 3}};
    for (int s = 0; s < 5; s++)
        for (int op = 0; op < 4; op++) {
            nb_tensor *in[2] = {param(nds[s][0], shapes[s][0]), param(nds[s][1], shapes[s][1])};
            char what[64];
            snprintf(what, sizeof what, "binary op %d, shapes %d", op, s);
            nb_test_gpu_parity(what, f_binary, in, 2, &(op_ctx){op, 0}, 1e-5);
            nb_test_free_all(in, 2);
        }
}

static nb_tensor *f_unary(nb_tensor **in, void *ctx) {
    op_ctx *c = ctx;
    nb_tensor *x = in[0];
    switch (c->op) {
    case 0: return nb_exp(x);
    case 1: return nb_log(nb_add_scalar(nb_abs(x), 0.25f));
    case 2: return nb_sqrt(nb_add_scalar(nb_abs(x), 0.25f));
    case 3: return nb_neg(x);
    case 4: return nb_mul_scalar(x, c->p);
    case 5: return nb_square(x);
    case 6: return nb_relu(x);
    case 7: return nb_leaky_relu(x, c->p);
    case 8: return nb_sigmoid(x);
    case 9: return nb_tanh(x);
    default: return nb_abs_rect(x);
    }
}

TEST(test_cuda_unary_and_activations) {
    if (!nb_test_gpu()) return;
    for (int op = 0; op <= 10; op++) {
        nb_tensor *x = param(3, (int64_t[]){5, 1, 37});
        char what[32];
        snprintf(what, sizeof what, "unary op %d", op);
        nb_test_gpu_parity(what, f_unary, &x, 1, &(op_ctx){op, 0.37f}, 2e-5);
        nb_tensor_free(x);
    }
}

/* --- layout and reductions --------------------------------------------------- */

static nb_tensor *f_layout(nb_tensor **in, void *ctx) {
    nb_tensor *x = in[0]; /* [3, 5, 4, 7] */
    switch (((op_ctx *)ctx)->op) {
    case 0: return nb_sum(x, (int[]){1}, 1, false);
    case 1: return nb_sum(x, (int[]){0, 2}, 2, true); /* not one block: gathered first */
    case 2: return nb_mean(x, (int[]){-1}, 1, false);
    case 3: return nb_sum_all(x);
    case 4: return nb_sum_to(x, 2, (int64_t[]){4, 1});
    case 5: return nb_broadcast_to(nb_sum(x, (int[]){1}, 1, true), 4, x->shape);
    case 6: return nb_permute(x, (int[]){2, 0, 3, 1});
    case 7: return nb_transpose(x, 1, 3);
    case 8: return nb_slice(x, 0, 1, 3); /* one block: a view */
    case 9: return nb_slice(x, 2, 1, -1);
    case 10: return nb_concat((nb_tensor *[]){x, nb_mul_scalar(x, 2.f)}, 2, 1);
    case 11: return nb_concat((nb_tensor *[]){nb_slice(x, 0, 0, 1), x}, 2, 0);
    case 12: return nb_gather_rows(x, (int32_t[]){2, 0, 2, 1}, 4);
    default: return nb_reshape(nb_flatten(x, 1), 2, (int64_t[]){-1, 4});
    }
}

TEST(test_cuda_layout_and_sums) {
    if (!nb_test_gpu()) return;
    for (int op = 0; op <= 13; op++) {
        nb_tensor *x = param(4, (int64_t[]){3, 5, 4, 7});
        char what[32];
        snprintf(what, sizeof what, "layout op %d", op);
        nb_test_gpu_parity(what, f_layout, &x, 1, &(op_ctx){op, 0}, 1e-5);
        nb_tensor_free(x);
    }
}

/* --- matrix products ----------------------------------------------------------- */

static nb_tensor *f_matmul(nb_tensor **in, void *ctx) {
    int op = ((op_ctx *)ctx)->op;
    if (op < 4) return nb_matmul_t(in[0], in[1], op & 1, op >> 1 & 1);
    if (op == 4) return nb_linear(in[0], in[1], in[2]);
    return nb_linear(in[0], in[1], NULL);
}

TEST(test_cuda_matmul_and_linear) {
    if (!nb_test_gpu()) return;
    for (int op = 0; op < 4; op++) {
        bool ta = op & 1, tb = op >> 1 & 1;
        int64_t m = 13, k = 9, n = 11;
        /* plain, batched, and a batch times one shared matrix */
        nb_tensor *cases[3][2] = {
            {param(2, ta ? (int64_t[]){k, m} : (int64_t[]){m, k}),
             param(2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n})},
            {param(3, ta ? (int64_t[]){3, k, m} : (int64_t[]){3, m, k}),
             param(3, tb ? (int64_t[]){3, n, k} : (int64_t[]){3, k, n})},
            {param(3, ta ? (int64_t[]){2, k, m} : (int64_t[]){2, m, k}),
             param(2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n})},
        };
        for (int c = 0; c < 3; c++) {
            char what[48];
            snprintf(what, sizeof what, "matmul ta %d tb %d case %d", ta, tb, c);
            nb_test_gpu_parity(what, f_matmul, cases[c], 2, &(op_ctx){op, 0}, 1e-4);
            nb_test_free_all(cases[c], 2);
        }
    }
    nb_tensor *in[3] = {param(2, (int64_t[]){17, 10}), param(2, (int64_t[]){6, 10}), param(1, (int64_t[]){6})};
    nb_test_gpu_parity("linear", f_matmul, in, 3, &(op_ctx){4, 0}, 1e-4);
    nb_test_gpu_parity("linear without bias", f_matmul, in, 2, &(op_ctx){5, 0}, 1e-4);
    nb_test_free_all(in, 3);
}

/* --- softmax, losses -------------------------------------------------------------- */

static const int32_t labels[] = {3, 0, 6, 6, 1, 2, 5, 4, 0, 3, 1};
/* DQN's targets r + gamma max Q', some within 1 of Q and some beyond (Huber's two pieces) */
static const float dqn_targets[] = {0.5f, -2.f, 3.f, 0.1f, -0.3f, 1.7f, -4.f, 0.f, 2.2f, -0.9f, 5.f};

static nb_tensor *f_loss(nb_tensor **in, void *ctx) {
    switch (((op_ctx *)ctx)->op) {
    case 0: return nb_softmax(in[0], -1);
    case 1: return nb_log_softmax(in[0], 1);
    case 2: return nb_cross_entropy(in[0], labels);
    case 3: return nb_mse(in[0], in[1]);
    case 5: return nb_bce_logits(nb_mul_scalar(in[0], 4.f), nb_sigmoid(in[1])); /* targets in (0, 1), eq. 29 */
    case 4: return nb_softmax(in[0], 0); /* the first axis: lines strided by 7, composite backward */
    case 6: return nb_softmax(in[0], 1);  /* the middle axis of [3, 5, 7] (channels of NCW) */
    case 8: return nb_dqn_loss(in[0], labels, dqn_targets, false); /* actions: the labels */
    case 9: return nb_dqn_loss(in[0], labels, dqn_targets, true);
    default: return nb_log_softmax(in[0], 1);
    }
}

TEST(test_cuda_softmax_cross_entropy_mse) {
    if (!nb_test_gpu()) return;
    for (int op = 0; op < 10; op++) {
        if (op == 6 || op == 7) continue; /* 3-D, below */
        nb_tensor *in[2] = {param(2, (int64_t[]){11, 7}), param(2, (int64_t[]){11, 7})};
        char what[32];
        snprintf(what, sizeof what, "loss op %d", op);
        nb_test_gpu_parity(what, f_loss, in, op == 3 || op == 5 ? 2 : 1, &(op_ctx){op, 0}, 2e-5);
        nb_test_free_all(in, 2);
    }
    /* long rows: a vocabulary-sized softmax goes through the block reduction */
    nb_tensor *x = param(2, (int64_t[]){3, 5003});
    nb_test_gpu_parity("softmax of 5003 columns", f_loss, &x, 1, &(op_ctx){0, 0}, 2e-5);
    nb_test_gpu_parity("cross-entropy of 5003 columns", f_loss, &x, 1, &(op_ctx){2, 0}, 2e-5);
    nb_tensor_free(x);
    /* a middle axis: one thread per strided line */
    x = param(3, (int64_t[]){3, 5, 7});
    nb_test_gpu_parity("softmax over the middle axis", f_loss, &x, 1, &(op_ctx){6, 0}, 2e-5);
    nb_test_gpu_parity("log-softmax over the middle axis", f_loss, &x, 1, &(op_ctx){7, 0}, 2e-5);
    nb_tensor_free(x);
}

/* --- the finite-difference harness on the GPU ------------------------------------ */

static nb_tensor *f_mlp(nb_tensor **in, void *ctx) {
    /* x [9, 6] -> tanh(linear 5) -> linear 4 -> cross-entropy */
    static const int32_t classes[9] = {3, 0, 2, 1, 1, 2, 0, 3, 0};
    (void)ctx;
    nb_tensor *h = nb_tanh(nb_linear(in[0], in[1], in[2]));
    return nb_cross_entropy(nb_linear(h, in[3], in[4]), classes);
}

static nb_tensor **mlp_inputs(nb_tensor **in) {
    in[0] = param(2, (int64_t[]){9, 6});
    in[1] = param(2, (int64_t[]){5, 6});
    in[2] = param(1, (int64_t[]){5});
    in[3] = param(2, (int64_t[]){4, 5});
    in[4] = param(1, (int64_t[]){4});
    return in;
}


TEST(test_cuda_gradcheck_and_hvp_on_gpu) {
    if (!nb_test_gpu()) return;
    nb_tensor *in[5];
    nb_test_moved(mlp_inputs(in), 5, NB_CUDA);
    nb_gradcheck("GPU mlp + cross-entropy", f_mlp, in, 5, NULL, 1e-2f, 2e-2f);
    /* double backward: every backward rule is made of ops with GPU paths */
    nb_hvpcheck("GPU mlp + cross-entropy (Hv)", f_mlp, in, 5, NULL, 1e-2f, 3e-2f);
    /* the same network's output on the CPU */
    nb_test_gpu_parity("mlp + cross-entropy", f_mlp, nb_test_moved(in, 5, NB_CPU), 5, NULL, 1e-5);
    nb_test_free_all(in, 5);
}

/* --- optimizers and a short training run ------------------------------------------ */

/* Copies of f_mlp's inputs init on device d: p[0] the data, p[1..4] the
 * parameters (the weights decayed when decay), also listed in params. */
static void mlp_on(nb_device d, nb_tensor **init, bool decay, nb_tensor **p, nb_param *params) {
    for (int k = 0; k < 5; k++) {
        p[k] = nb_tensor_clone(init[k]);
        nb_requires_grad(p[k], k > 0);
        nb_tensor_move(p[k], d);
        if (k) params[k - 1] = (nb_param){p[k], decay && k % 2 == 1};
    }
}

/* Trains the MLP of f_mlp for `steps` steps on device d from the given
 * initial values; writes the losses and returns the final parameters (host). */
static void train_on(nb_device d, nb_tensor **init, const nb_optim_opts *o, int steps, float *losses,
                     nb_tensor **final) {
    nb_tensor *p[5];
    nb_param params[4];
    mlp_on(d, init, true, p, params);
    nb_optim *opt = nb_optim_new(o, params, 4);
    for (int s = 0; s < steps; s++) {
        nb_arena_reset();
        nb_tensor *L = f_mlp(p, NULL);
        nb_backward(L);
        nb_clip_grad_norm(params, 4, 0.75f);
        nb_optim_step_zero(opt, NULL, 0);
        losses[s] = nb_item(L);
    }
    for (int k = 1; k < 5; k++) final[k - 1] = nb_test_to_host(p[k]);
    nb_arena_reset();
    nb_optim_free(opt);
    nb_test_free_all(p, 5);
}

TEST(test_cuda_optimizers_train_like_the_cpu) {
    if (!nb_test_gpu()) return;
    const nb_optim_opts opts[] = {
        {.kind = NB_SGD, .lr = 0.1f},
        {.kind = NB_SGD, .lr = 0.05f, .momentum = 0.9f, .nesterov = true, .weight_decay = 1e-3f},
        {.kind = NB_ADAM, .lr = 0.01f, .weight_decay = 1e-3f},
        {.kind = NB_ADAMW, .lr = 0.01f, .weight_decay = 0.1f},
    };
    nb_tensor *init[5];
    mlp_inputs(init);
    for (int o = 0; o < 4; o++) {
        float lc[12], lg[12];
        nb_tensor *fc[4], *fg[4];
        train_on(NB_CPU, init, &opts[o], 12, lc, fc);
        train_on(NB_CUDA, init, &opts[o], 12, lg, fg);
        CHECK_MSG(lc[11] < lc[0], "optimizer %d: the loss did not fall (%g -> %g)", o, (double)lc[0], (double)lc[11]);
        double e = nb_test_maxrel(lg, lc, 12);
        CHECK_MSG(e <= 1e-4, "optimizer %d: GPU losses differ from the CPU's by %.3g", o, e);
        for (int k = 0; k < 4; k++) {
            double ep = nb_test_maxrel(fg[k]->data, fc[k]->data, fc[k]->size);
            CHECK_MSG(ep <= 1e-4, "optimizer %d: parameter %d after 12 steps differs by %.3g", o, k, ep);
        }
        nb_test_free_all(fc, 4);
        nb_test_free_all(fg, 4);
    }
    nb_test_free_all(init, 5);
}

/* --- neural style's losses ------------------------------------------------------------ */

static nb_tensor *f_style(nb_tensor **in, void *ctx) {
    switch (((op_ctx *)ctx)->op) {
    case 0: return nb_tv_loss(in[0]);
    case 1: return nb_style_layer_loss(in[0], nb_gram(in[1])); /* eq. 3-4, a from another map */
    default: return nb_style_content_loss(in[0], in[1]);       /* eq. 1 */
    }
}

TEST(test_cuda_style_losses) {
    if (!nb_test_gpu()) return;
    static const int64_t shapes[][4] = {{1, 3, 26, 40}, {1, 3, 21, 32}, {1, 5, 7, 9}};
    for (int k = 0; k < 3; k++)
        for (int op = 0; op < 3; op++) {
            nb_tensor *in[2] = {param(4, shapes[k]), param(4, shapes[k])};
            char what[48];
            snprintf(what, sizeof what, "style loss %d on [%lld, %lld]", op, (long long)shapes[k][2],
                     (long long)shapes[k][3]);
            nb_test_gpu_parity(what, f_style, in, 2, &(op_ctx){op, 0}, 2e-5);
            nb_test_free_all(in, 2);
        }
}

/* L-BFGS keeps its vectors on the host and evaluates on the parameters' device:
 * the MLP of f_mlp minimized from the same start takes the same steps. */
typedef struct { nb_tensor **p; } lbfgs_ctx;
static float mlp_closure(void *ctx) {
    nb_tensor *L = f_mlp(((lbfgs_ctx *)ctx)->p, NULL);
    nb_backward(L);
    return nb_item(L);
}

static float lbfgs_on(nb_device d, nb_tensor **init, int *iters, nb_tensor **final) {
    nb_tensor *p[5];
    nb_param params[4];
    mlp_on(d, init, false, p, params);
    float loss = nb_lbfgs(params, 4, mlp_closure, &(lbfgs_ctx){p}, &(nb_lbfgs_opts){.max_iter = 15}, iters);
    for (int k = 1; k < 5; k++) final[k - 1] = nb_test_to_host(p[k]);
    final[4] = nb_test_to_host(p[1]->grad); /* left at the returned point */
    nb_test_free_all(p, 5);
    return loss;
}

TEST(test_cuda_lbfgs_on_gpu_parameters) {
    if (!nb_test_gpu()) return;
    nb_tensor *init[5], *fc[5], *fg[5];
    mlp_inputs(init);
    int ic = 0, ig = 0;
    float lc = lbfgs_on(NB_CPU, init, &ic, fc), lg = lbfgs_on(NB_CUDA, init, &ig, fg);
    nb_arena_reset();
    CHECK_MSG(ic == 15 && ig == ic, "iterations: %d on the CPU, %d on the GPU", ic, ig);
    CHECK_MSG(fabs((double)lg - lc) <= 1e-4 * fabs((double)lc) && lc < 0.5f, "loss %g on the GPU, %g on the CPU",
              (double)lg, (double)lc);
    for (int k = 0; k < 5; k++) {
        double e = nb_test_maxrel(fg[k]->data, fc[k]->data, fc[k]->size);
        CHECK_MSG(e <= 1e-3, "L-BFGS: %s %d differs by %.3g", k < 4 ? "parameter" : "gradient", k, e);
    }
    nb_test_free_all(fc, 5);
    nb_test_free_all(fg, 5);
    nb_test_free_all(init, 5);
}

/* --- WaveNet's pieces and the model ---------------------------------------------------- */

static nb_tensor *f_wavenet_ops(nb_tensor **in, void *ctx) {
    switch (((op_ctx *)ctx)->op) {
    case 0: return nb_gated(in[0]);                       /* eq. 32, [N, 2C, L] */
    case 1: return nb_mulaw(in[0]);                       /* eq. 31 */
    case 2: return nb_pow(nb_add_scalar(nb_abs(in[0]), 0.5f), -1.5f);
    case 3: return nb_conv1d_causal(in[0], in[1], in[2], 3); /* dilation 3 */
    case 4: return nb_conv_transpose1d(in[0], in[1], in[2], 2, 0); /* K = stride: the product path */
    default: return nb_conv_transpose1d(in[0], in[1], in[2], 3, 1); /* zeros inserted, then conv1d */
    }
}

static nb_tensor *f_gated_loss(nb_tensor **in, void *ctx) {
    (void)ctx;
    return nb_sum_all(nb_square(nb_gated(in[0])));
}

TEST(test_cuda_wavenet_ops) {
    if (!nb_test_gpu()) return;
    for (int op = 0; op < 6; op++) {
        /* conv1d_causal: w [O, C, K]; conv_transpose1d: w [C, O, K] */
        nb_tensor *in[3] = {param(3, (int64_t[]){2, 6, 13}),
                            param(3, op < 4 ? (int64_t[]){5, 6, 2} : (int64_t[]){6, 5, op == 4 ? 2 : 4}),
                            param(1, (int64_t[]){5})};
        char what[32];
        snprintf(what, sizeof what, "wavenet op %d", op);
        nb_test_gpu_parity(what, f_wavenet_ops, in, op >= 3 ? 3 : 1, &(op_ctx){op, 0}, 2e-5);
        nb_test_free_all(in, 3);
    }
    /* the fused gate's kernels: finite differences and Hessian-vector products on the GPU */
    nb_tensor *x = param(3, (int64_t[]){2, 6, 7});
    nb_tensor_move(x, NB_CUDA);
    nb_gradcheck("GPU gated unit", f_gated_loss, &x, 1, NULL, 1e-2f, 2e-2f);
    nb_hvpcheck("GPU gated unit (Hv)", f_gated_loss, &x, 1, NULL, 1e-2f, 3e-2f);
    nb_tensor_free(x);
}

/* A small WaveNet with speakers: its loss (eq. 30) and every parameter's
 * gradient on the GPU against the CPU, from the same weights and batch. */
TEST(test_cuda_wavenet_model_loss_and_gradients) {
    if (!nb_test_gpu()) return;
    nb_wavenet_config c = {.layers = 3, .stacks = 2, .residual = 4, .skip = 5, .nspeakers = 3};
    nb_wavenet *m[2];
    float loss[2];
    nb_tensor *grads[2][64];
    int np = 0;
    int32_t q[2 * 18], spk[2] = {2, 0};
    for (int i = 0; i < 2 * 18; i++) q[i] = (int32_t)nb_rng_below(nb_test_rng(), 256);
    for (int d = 0; d < 2; d++) {
        nb_rng r;
        nb_rng_seed(&r, 7, 0);
        m[d] = nb_wavenet_new(&c, &r);
        nb_param *p;
        np = nb_wavenet_params(m[d], &p, NULL);
        if (d) for (int i = 0; i < np; i++) nb_tensor_move(p[i].t, NB_CUDA);
        nb_tensor *L = nb_wavenet_loss(m[d], q, 2, 17, spk, NULL);
        CHECK(L->device == (d ? NB_CUDA : NB_CPU));
        nb_backward(L);
        loss[d] = nb_item(L);
        for (int i = 0; i < np && i < 64; i++) grads[d][i] = nb_test_to_host(p[i].t->grad);
        nb_arena_reset();
    }
    CHECK_NEAR(loss[1], loss[0], 1e-5);
    for (int i = 0; i < np && i < 64; i++) {
        double e = nb_test_maxrel(grads[1][i]->data, grads[0][i]->data, grads[0][i]->size);
        CHECK_MSG(e <= 1e-4, "parameter %d's gradient differs from the CPU's by %.3g", i, e);
        nb_tensor_free(grads[0][i]);
        nb_tensor_free(grads[1][i]);
    }
    nb_wavenet_free(m[0]);
    nb_wavenet_free(m[1]);
}

/* --- moving tensors ------------------------------------------------------------------- */

TEST(test_cuda_move_read_write_item) {
    if (!nb_test_gpu()) return;
    nb_tensor *t = param(2, (int64_t[]){3, 5});
    float before[15], after[15];
    memcpy(before, t->data, sizeof before);
    nb_tensor_move(t, NB_CUDA);
    CHECK(t->device == NB_CUDA && t->grad && t->grad->device == NB_CUDA);
    nb_tensor_read(t, after);
    CHECK(!memcmp(before, after, sizeof before));
    after[7] = 42.f;
    nb_tensor_write(t, after);
    CHECK_NEAR(nb_item(nb_slice(nb_reshape(t, 1, (int64_t[]){15}), 0, 7, 8)), 42.0, 0);
    nb_fill(t, 2.5f);
    CHECK_NEAR(nb_item(nb_sum_all(t)), 37.5, 1e-6);
    nb_tensor *c = nb_tensor_clone(t); /* stays on the GPU */
    CHECK(c->device == NB_CUDA);
    nb_tensor_move(c, NB_CPU);
    CHECK(c->data[0] == 2.5f && c->data[14] == 2.5f);
    nb_tensor *back = nb_to(nb_to(nb_from_data(1, (int64_t[]){2}, (float[]){1.5f, -3.f}), NB_CUDA), NB_CPU);
    CHECK(back->device == NB_CPU && back->data[0] == 1.5f && back->data[1] == -3.f);
    /* A one-element parameter as its own loss: dw/dw = 1 into its GPU .grad. */
    nb_tensor *w = param(1, (int64_t[]){1});
    nb_tensor_move(w, NB_CUDA);
    nb_backward(w);
    nb_backward(w);
    float gw;
    nb_tensor_read(w->grad, &gw);
    CHECK(gw == 2.f);
    nb_arena_reset();
    nb_tensor_free(t);
    nb_tensor_free(c);
    nb_tensor_free(w);
}

/* Writers of files read a GPU tensor back: the same bytes as from the CPU. */
static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    uint8_t *pa = nb_read_file(a, &na), *pb = nb_read_file(b, &nb);
    bool same = pa && pb && na == nb && !memcmp(pa, pb, na);
    free(pa);
    free(pb);
    return same;
}

TEST(test_cuda_writers_read_gpu_tensors_back) {
    if (!nb_test_gpu()) return;
    char dir[] = "/tmp/nabla-cuda-XXXXXX", a[64], b[64];
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    static const char *const ext[] = {"npy", "png", "jpg", "svm"};
    for (int k = 0; k < 4; k++) {
        /* an RGB image for the image writers (values in [0, 1]); X [3, 7] for the others */
        nb_tensor *cpu = k == 1 || k == 2 ? nb_tensor_new(3, (int64_t[]){3, 4, 5}) : param(2, (int64_t[]){3, 7});
        for (int64_t i = 0; k == 1 || k == 2 ? i < cpu->size : 0; i++) cpu->data[i] = (float)((i * 37) % 101) / 100.f;
        nb_tensor *gpu = nb_tensor_clone(cpu);
        nb_tensor_move(gpu, NB_CUDA);
        snprintf(a, sizeof a, "%s/cpu.%s", dir, ext[k]);
        snprintf(b, sizeof b, "%s/gpu.%s", dir, ext[k]);
        int rc;
        if (k == 0) rc = nb_npy_write(a, cpu) | nb_npy_write(b, gpu);
        else if (k == 3) rc = nb_libsvm_write(a, cpu, (float[]){1, -1, 1}) | nb_libsvm_write(b, gpu, (float[]){1, -1, 1});
        else rc = nb_image_write(a, cpu) | nb_image_write(b, gpu);
        CHECK_MSG(rc == 0 && same_file(a, b), "%s from the GPU differs from the CPU's (%s)", ext[k], nb_errmsg());
        remove(a);
        remove(b);
        nb_tensor_free(cpu);
        nb_tensor_free(gpu);
    }
    rmdir(dir);
}

/* --- errors ------------------------------------------------------------------------- */

/* These run in a forked child (nb_test_expect_fatal), where CUDA, already
 * initialized by the parent, cannot be used: ctx is a GPU tensor the parent
 * made, and each must fail before touching the GPU. */
static void mixed_add(void *ctx) {
    nb_tensor *g = ctx;
    nb_add(nb_zeros(g->ndim, g->shape), g);
}
static void reference_grad_on_gpu(void *ctx) { nb_style_content_grad(ctx, ctx); }
static void replica_on_gpu(void *ctx) { nb_net_replica(ctx); }
static void to_cuda(void *ctx) {
    (void)ctx;
    nb_to(nb_zeros(1, (int64_t[]){3}), NB_CUDA);
}

TEST(test_cuda_device_names_and_errors) {
    nb_device d = NB_CPU;
    CHECK(nb_device_parse("cuda", &d) == 0 && d == NB_CUDA);
    CHECK(nb_device_parse("cpu", &d) == 0 && d == NB_CPU);
    CHECK(nb_device_parse("gpu", &d) == -1 && strstr(nb_errmsg(), "unknown device 'gpu'") &&
          strstr(nb_errmsg(), "cpu or cuda"));
    CHECK(!strcmp(nb_device_str(NB_CUDA), "cuda") && !strcmp(nb_device_str(NB_CPU), "cpu"));
    CHECK(nb_device_ready(NB_CPU) == 0);
#ifndef NB_HAVE_CUDA
    /* a build without the backend says so, and nothing reaches the GPU */
    CHECK(nb_device_ready(NB_CUDA) == -1 && strstr(nb_errmsg(), "built without CUDA"));
    nb_test_expect_fatal("nb_to without CUDA", to_cuda, NULL, (const char *[]){"to", "built without CUDA", NULL});
    (void)replica_on_gpu;
#else
    if (nb_device_ready(NB_CUDA)) { /* built with CUDA, but no GPU answers */
        CHECK(strstr(nb_errmsg(), "no usable CUDA device"));
        return;
    }
    CHECK(nb_device_name(NB_CUDA)[0] != '\0');
    nb_tensor *A = nb_tensor_new(2, (int64_t[]){2, 2}), *p = nb_tensor_new(1, (int64_t[]){2});
    nb_tensor_move(A, NB_CUDA);
    nb_tensor_move(p, NB_CUDA);
    nb_test_expect_fatal("ops on two devices", mixed_add, A,
                         (const char *[]){"add", "different devices (cpu and cuda)", NULL});
    nb_test_expect_fatal("a function without a GPU path", reference_grad_on_gpu, A,
                         (const char *[]){"style_content_grad", "runs on the CPU only", NULL});
    /* data parallelism by replicas is the CPU's */
    nb_net *net = nb_net_parse("[net]\ninput = 3\n[dense]\nout = 2\n", "replica test");
    nb_rng r;
    nb_rng_seed(&r, 1, 0);
    CHECK(net && nb_net_build(net, 0, NULL, &r) == 0);
    nb_net_to(net, NB_CUDA);
    nb_test_expect_fatal("a replica of a GPU network", replica_on_gpu, net,
                         (const char *[]){"net_replica", "runs on the CPU only", NULL});
    nb_net_free(net);
    /* the CPU-only readers of tensors answer with an error, not a fault */
    double v;
    CHECK(nb_linalg_det(A, &v) == -1 && strstr(nb_errmsg(), "linalg_det: A is on the GPU"));
    CHECK(nb_stats_mean(A) == NULL && strstr(nb_errmsg(), "X is on the GPU"));
    CHECK(nb_stats_entropy(p, &v) == -1 && strstr(nb_errmsg(), "p is on the GPU"));
    /* so do the image tools and the classical models */
    nb_tensor *img = nb_tensor_new(3, (int64_t[]){1, 4, 5});
    nb_tensor_move(img, NB_CUDA);
    CHECK(!nb_image_resize(img, 2, 3) && strstr(nb_errmsg(), "image resize: the image is on the GPU"));
    CHECK(!nb_image_filter(img, (float[]){1}, 1, 1, false, true) &&
          strstr(nb_errmsg(), "image filter: the image is on the GPU"));
    CHECK(!nb_linreg_fit(A, (float[]){1, 2}, &(nb_linreg_opts){0}) && strstr(nb_errmsg(), "X is on the GPU"));
    nb_tensor_free(img);
    nb_tensor_free(A);
    nb_tensor_free(p);
    (void)to_cuda;
#endif
    (void)mixed_add;
    (void)reference_grad_on_gpu;
}
