/* fuzz_dialogue.c — libFuzzer target: nb_dialogue_parse on arbitrary bytes
 * must return a corpus whose rows hold together or an error with a message;
 * never crash, leak or hit UB. A parsed corpus is then tokenized, counted
 * into a vocabulary, encoded and scored by TF-IDF, all of which must hold. */
#include "nabla.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_clear_error();
    nb_dialogue *d = nb_dialogue_parse((const char *)data, size, "fuzz.csv");
    if (!d) {
        if (!nb_errmsg()[0]) abort(); /* every failure must say why */
        return 0;
    }
    if (d->n < 1 || d->ncand < 1 || (d->ncand == 1) != (d->label != NULL)) abort();
    for (int64_t i = 0; i < d->n; i++) {
        if (!d->context[i] || !d->context[i][0] || d->line[i] < 2) abort();
        if (d->label && d->label[i] != 0 && d->label[i] != 1) abort();
        for (int k = 0; k < d->ncand; k++)
            if (!d->cand[i * d->ncand + k]) abort();
    }
    nb_chat_vocab *v = nb_chat_vocab_build(d, 1);
    if (!v || nb_chat_vocab_size(v) < 1) abort();
    int32_t ids[16];
    for (int64_t i = 0; i < d->n && i < 64; i++) {
        int64_t n = nb_chat_encode(v, d->context[i], 16, true, ids);
        if (n < 1 || n > 16) abort();
        for (int64_t k = 0; k < n; k++)
            if (ids[k] < 0 || ids[k] >= nb_chat_vocab_size(v)) abort();
    }
    if (d->ncand > 1 && d->n * d->ncand < 100000) {
        float *s = malloc(sizeof(float) * (size_t)(d->n * d->ncand));
        if (!s) abort();
        nb_chat_tfidf_scores(d, s);
        double r = nb_recall_at_k(s, d->n, d->ncand, 1);
        if (!(r >= 0 && r <= 1)) abort();
        free(s);
    }
    nb_chat_vocab_free(v);
    nb_dialogue_free(d);
    return 0;
}
