/* fuzz_npy.c — libFuzzer target: nb_npy_parse on arbitrary bytes must return
 * a tensor or an error with a message; never crash, leak or hit UB. */
#include "nabla.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_clear_error();
    nb_tensor *t = nb_npy_parse(data, size, "fuzz.npy");
    if (!t) {
        if (!nb_errmsg()[0]) abort(); /* every failure must say why */
        return 0;
    }
    if (t->size != nb_shape_numel(t->ndim, t->shape)) abort();
    volatile float sink = 0;
    for (int64_t j = 0; j < t->size; j++) sink += t->data[j];
    (void)sink;
    nb_tensor_free(t);
    return 0;
}
