/* fuzz_libsvm.c — libFuzzer target: nb_libsvm_parse on arbitrary text, with
 * min_features taken from the first byte, must return a dense matrix whose
 * sizes hold together and whose values are finite, or an error that names
 * the source; never crash, leak or hit UB. */
#include "nabla.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int64_t min_features = data[0] & 15;
    /* A valid file may ask for any size of dense matrix ("1 4000000000:1"
     * is within the reader's 2^34-element limit): skip inputs whose lines
     * times largest index pass 2^24 floats, to stay in the fuzzer's memory. */
    uint64_t lines = 1, maxidx = 0, v = 0;
    for (size_t i = 1; i < size; i++) {
        if (data[i] >= '0' && data[i] <= '9') {
            v = v > (1u << 24) ? v : v * 10 + (data[i] - '0'); /* saturates */
        } else {
            if (data[i] == ':' && v > maxidx) maxidx = v;
            if (maxidx > (1u << 24)) return 0;
            lines += data[i] == '\n' || data[i] == '\r'; /* a lone CR ends a line too */
            v = 0;
        }
    }
    if (lines * (maxidx + 16) > (1u << 24)) return 0;
    nb_tensor *X = NULL;
    float *y = NULL;
    nb_clear_error();
    if (nb_libsvm_parse((const char *)data + 1, size - 1, "fuzz.libsvm", min_features, &X, &y) != 0) {
        if (X || y) abort();
        if (!strstr(nb_errmsg(), "fuzz.libsvm")) abort(); /* every failure names the source */
        return 0;
    }
    if (!X || !y || X->ndim != 2) abort();
    int64_t n = X->shape[0], d = X->shape[1];
    /* One example per non-blank line at most, one feature per byte at most. */
    if (n < 1 || d < 1 || d < min_features || (size_t)n > size || X->size != n * d) abort();
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) abort();
    for (int64_t j = 0; j < X->size; j++)
        if (!isfinite(X->data[j])) abort();
    nb_tensor_free(X);
    free(y);
    return 0;
}
