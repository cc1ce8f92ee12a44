/* test_net.c — networks from NET.cfg text: data parallelism with replicas
 * (the same gradient as one pass over the whole batch). */
#include "test.h"
#include <stdlib.h>

static const char *SMALL_CNN = "[net]\ninput = 2x8x8\n"
                               "[conv2d]\nout = 4\nkernel = 3\npadding = 1\nactivation = relu\n"
                               "[maxpool]\nsize = 2\n"
                               "[flatten]\n"
                               "[dense]\nout = 6\nactivation = tanh\n"
                               "[dense]\nout = 3\n";

/* Mean cross-entropy of rows [lo, hi) of the batch, scaled by their share
 * of the batch, as the trainer's shards do. */
static nb_tensor *shard_loss(nb_net *net, const nb_tensor *x, const int32_t *y, int64_t lo, int64_t hi, int64_t n) {
    int64_t per = x->size / x->shape[0];
    nb_tensor *xs = nb_from_data(NB_SHAPE(hi - lo, 2, 8, 8), x->data + lo * per);
    nb_tensor *loss = nb_cross_entropy(nb_net_forward(net, xs, true, NULL), y + lo);
    return nb_mul_scalar(loss, (float)(hi - lo) / (float)n);
}

TEST(test_net_replicas_sum_to_the_full_batch_gradient) {
    nb_rng r;
    nb_rng_seed(&r, 7, 0);
    nb_net *net = nb_net_parse(SMALL_CNN, "small.cfg");
    CHECK(net && nb_net_build(net, 0, NULL, &r) == 0);
    int64_t n = 10;
    nb_tensor *x = nb_test_param(NB_SHAPE(n, 2, 8, 8), 1.f);
    int32_t y[10];
    for (int i = 0; i < n; i++) y[i] = (int32_t)nb_rng_below(&r, 3);
    nb_param *p;
    int np = nb_net_params(net, &p);

    /* One pass over the batch. */
    nb_backward(shard_loss(net, x, y, 0, n, n));
    float *want[8];
    for (int k = 0; k < np; k++) {
        want[k] = malloc(sizeof(float) * (size_t)p[k].t->size);
        memcpy(want[k], p[k].t->grad->data, sizeof(float) * (size_t)p[k].t->size);
        nb_zero_grad(p[k].t);
    }
    nb_arena_reset();

    /* Three uneven shards at once, in threads with arenas of their own. */
    enum { S = 3 };
    nb_net *reps[S] = {net, nb_net_replica(net), nb_net_replica(net)};
    nb_arena *arenas[S] = {NULL, nb_arena_new(), nb_arena_new()};
    int64_t cut[S + 1] = {0, 3, 7, 10};
#pragma omp parallel for num_threads(S)
    for (int k = 0; k < S; k++) {
        nb_arena *old = k ? nb_arena_use(arenas[k]) : NULL;
        nb_backward(shard_loss(reps[k], x, y, cut[k], cut[k + 1], n));
        if (k) {
            nb_arena_reset();
            nb_arena_use(old);
        }
    }
    nb_net_replica_reduce(net, reps + 1, S - 1);
    for (int k = 0; k < np; k++) {
        for (int64_t i = 0; i < p[k].t->size; i++)
            CHECK_MSG(fabsf(p[k].t->grad->data[i] - want[k][i]) <= 1e-5f * (1 + fabsf(want[k][i])),
                      "%s [%lld]: shards %g, whole batch %g", p[k].t->name, (long long)i, p[k].t->grad->data[i],
                      want[k][i]);
        free(want[k]);
    }
    /* The replicas' own gradients were handed over and cleared; their
     * weights are the network's memory. */
    nb_param *rp;
    nb_net_params(reps[1], &rp);
    for (int k = 0; k < np; k++) {
        CHECK(rp[k].t->data == p[k].t->data && rp[k].decay == p[k].decay);
        for (int64_t i = 0; i < rp[k].t->size; i++) CHECK(rp[k].t->grad->data[i] == 0.f);
    }
    for (int k = 1; k < S; k++) {
        nb_net_free(reps[k]);
        nb_arena_free(arenas[k]);
    }
    nb_net_free(net);
    nb_tensor_free(x);
}
