/* fuzz_utf8.c — libFuzzer target: nb_utf8_decode on arbitrary bytes must
 * reject them with a message or return code points that are Unicode scalar
 * values and encode back to exactly the input (valid UTF-8 has one form),
 * less a leading byte-order mark, which is the file's and not the text's. */
#include "nabla.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_clear_error();
    int64_t n = -1;
    int32_t *cp = nb_utf8_decode(data, size, "fuzz.txt", &n);
    if (!cp) {
        if (!strstr(nb_errmsg(), "fuzz.txt")) abort(); /* every failure names the source */
        return 0;
    }
    if (n < 1 || (size_t)n > size) abort();
    size_t at = nb_utf8_bom(data, size); /* skipped since nb_utf8_decode shares nb_utf8_bom */
    for (int64_t i = 0; i < n; i++) {
        if (cp[i] < 1 || cp[i] > 0x10FFFF || (cp[i] >= 0xD800 && cp[i] <= 0xDFFF)) abort();
        char buf[4];
        int len = nb_utf8_encode(cp[i], buf);
        if (len < 1 || len > 4 || at + (size_t)len > size || memcmp(buf, data + at, (size_t)len)) abort();
        at += (size_t)len;
    }
    if (at != size) abort();
    free(cp);
    return 0;
}
