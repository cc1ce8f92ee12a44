/* fuzz_csv.c — libFuzzer target: nb_csv_parse_ex on arbitrary bytes, with
 * the flags taken from the first byte, must return a table whose sizes hold
 * together or an error with a message; never crash, leak or hit UB. */
#include "nabla.h"
#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0] & (NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE | NB_CSV_LOG); /* LOG: nabla plot's reader */
    nb_clear_error();
    nb_csv *c = nb_csv_parse_ex((const char *)data + 1, size - 1, "fuzz.csv", flags);
    if (!c) {
        if (!nb_errmsg()[0]) abort(); /* every failure must say why */
        return 0;
    }
    if (c->ncols < 1 || c->nrows < 0) abort();
    for (int j = 0; j < c->ncols; j++)
        if (!c->names[j]) abort();
    for (int64_t i = 0; i < c->nrows; i++) {
        if (c->lines[i] < 1) abort();
        for (int j = 0; j < c->ncols; j++)
            if ((flags & NB_CSV_FINITE) && !isfinite((float)c->data[i * c->ncols + j])) abort(); /* data are float32 */
    }
    nb_csv_free(c);
    return 0;
}
