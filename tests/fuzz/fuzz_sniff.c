/* fuzz_sniff.c — libFuzzer target: nb_sniff, which tells a file's kind from
 * its first bytes (gunzipping a gzip head, parsing a safetensors header),
 * must return one of the kinds for any bytes and a name for it; never crash,
 * leak or hit UB. */
#include "nabla.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_file_kind k = nb_sniff(data, size);
    const char *name = nb_file_kind_name(k);
    if (!name || !name[0]) abort();
    /* Only a file on disk can be missing or a folder. */
    if (k == NB_FILE_MISSING || k == NB_FILE_FOLDER) abort();
    if (size == 0 && k != NB_FILE_EMPTY) abort();
    return 0;
}
