/* fuzz_safetensors.c — libFuzzer target: nb_st_parse on arbitrary bytes must
 * return a model or an error with a message; never crash, leak or hit UB. */
#include "nabla.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_clear_error();
    nb_safetensors *st = nb_st_parse(data, size, "fuzz.safetensors");
    if (!st) {
        if (!nb_errmsg()[0]) abort(); /* every failure must say why */
        return 0;
    }
    /* Touch everything the parser produced, so ASan sees any bad size. */
    volatile float sink = 0;
    for (int i = 0; i < st->n; i++) {
        nb_tensor *t = st->entries[i].t;
        if (nb_st_get(st, st->entries[i].name) != t) abort(); /* names are unique */
        if (t->size != nb_shape_numel(t->ndim, t->shape)) abort();
        for (int64_t j = 0; j < t->size; j++) sink += t->data[j];
    }
    for (int i = 0; i < st->n_meta; i++)
        if (nb_st_meta(st, st->meta_keys[i]) != st->meta_vals[i]) abort();
    (void)sink;
    nb_st_free(st);
    return 0;
}
