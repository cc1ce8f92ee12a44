/* softmax.c — softmax regression on Fashion-MNIST with libnabla alone: the
 * smallest complete training program (data, parameters, optimizer, arena).
 * Build: make examples; run: build/examples/softmax [epochs] */
#include <nabla.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int epochs = argc > 1 ? atoi(argv[1]) : 1;
    nb_dataset train, test;
    if (nb_dataset_load("fashion-mnist", true, &train) || nb_dataset_load("fashion-mnist", false, &test)) {
        fprintf(stderr, "softmax: %s\n", nb_errmsg());
        return 1;
    }
    nb_set_threads(0);
    nb_rng rng;
    nb_rng_seed(&rng, 1, 0);
    nb_tensor *w = nb_tensor_new(NB_SHAPE(10, 784)), *b = nb_tensor_new(NB_SHAPE(10));
    nb_init_xavier_uniform(w, &rng);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_param params[] = {{w, true}, {b, false}}; /* decay weights, not biases (eq. 7.1) */
    nb_optim *opt = nb_optim_new(&(nb_optim_opts){.kind = NB_ADAM, .lr = 1e-3f}, params, 2);

    enum { B = 128 };
    int64_t *order = malloc(sizeof(int64_t) * (size_t)train.n), idx[1000];
    int32_t y[1000];
    for (int64_t i = 0; i < train.n; i++) order[i] = i;
    for (int e = 0; e < epochs; e++) {
        nb_rng_shuffle(&rng, order, train.n);
        for (int64_t s = 0; s + B <= train.n; s += B) {
            nb_tensor *x = nb_flatten(nb_dataset_batch(&train, order + s, B, y), 1); /* [B, 784] */
            nb_tensor *loss = nb_cross_entropy(nb_linear(x, w, b), y);
            nb_backward(loss);
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
            nb_arena_reset(); /* every tensor of the step, freed at once */
        }
        int64_t correct = 0;
        bool old = nb_set_grad_enabled(false);
        for (int64_t s = 0; s < test.n; s += 1000) {
            int64_t m = test.n - s < 1000 ? test.n - s : 1000;
            for (int64_t i = 0; i < m; i++) idx[i] = s + i;
            nb_tensor *logits = nb_linear(nb_flatten(nb_dataset_batch(&test, idx, m, y), 1), w, b);
            int32_t pred[1000];
            nb_argmax_rows(logits, pred);
            for (int64_t i = 0; i < m; i++) correct += pred[i] == y[i];
            nb_arena_reset();
        }
        nb_set_grad_enabled(old);
        printf("epoch %d: test accuracy %.4f\n", e + 1, (double)correct / (double)test.n);
    }
    free(order);
    nb_optim_free(opt);
    nb_tensor_free(w);
    nb_tensor_free(b);
    nb_dataset_free(&train);
    nb_dataset_free(&test);
    return 0;
}
