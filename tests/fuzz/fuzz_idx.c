/* fuzz_idx.c — libFuzzer target: nb_idx_parse on arbitrary bytes, as images
 * (3 dims), labels (1 dim) and 2-D data, must return the data or an error with
 * a message; never crash or hit UB. */
#include "nabla.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int ndim = 1; ndim <= 3; ndim++) {
        int64_t dims[3];
        nb_clear_error();
        const uint8_t *p = nb_idx_parse(data, size, "fuzz.idx", ndim, dims);
        if (!p) {
            if (!nb_errmsg()[0]) abort(); /* every failure must say why */
            continue;
        }
        /* The data the sizes describe must lie inside the input, exactly. */
        uint64_t n = 1;
        for (int d = 0; d < ndim; d++) n *= (uint64_t)dims[d];
        if (p < data || (uint64_t)(data + size - p) != n) abort();
        volatile unsigned sink = 0;
        for (uint64_t i = 0; i < n; i++) sink += p[i];
        (void)sink;
    }
    return 0;
}
