/* fuzz_model.c — libFuzzer target: the model-file loaders on arbitrary
 * bytes. Beyond the safetensors container (fuzz_safetensors) they read the
 * network description, charrnn settings and vocabulary, DQN environment and
 * classical-model settings from __metadata__ and check every tensor against
 * them. Each must return a model or an error that names the file; never
 * crash, leak or hit UB, and never allocate what the file does not hold. */
#include "model_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_as_file(data, size);
    nb_clear_error();
    nb_safetensors *st = NULL;
    nb_net *net = nb_net_load(path, &st);
    if (net) {
        if (!st || nb_net_layers(net) < 0) abort();
        nb_net_free(net);
        nb_st_free(st);
    } else {
        if (st) abort();
        fuzz_need_error(path);
    }

    nb_clear_error();
    nb_charrnn *rnn = nb_charrnn_load(path, &st);
    if (rnn) {
        nb_charrnn_free(rnn);
        nb_st_free(st);
    } else {
        fuzz_need_error(path);
    }

    nb_clear_error();
    char env[32];
    nb_net *q = nb_dqn_load(path, env, sizeof env);
    if (q) {
        if (!env[0]) abort();
        nb_net_free(q);
    } else {
        fuzz_need_error(path);
    }

    nb_clear_error();
    nb_classic m;
    if (nb_classic_load(path, &m) == 0) {
        if (!m.kind || nb_classic_features(&m) < 1) abort();
        nb_classic_free(&m);
    } else {
        fuzz_need_error(path);
    }
    return 0;
}
