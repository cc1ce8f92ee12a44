/* fuzz_png.c — libFuzzer target: nb_png_parse_gray on arbitrary bytes must
 * return a [h, w] image of values in [0, 1] or an error with a message; never
 * crash, leak or hit UB. Each input is tried as it is and again with every
 * chunk CRC recomputed, so that mutations reach the decoder instead of
 * stopping at the first checksum. */
#include "nabla.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size) {
    int64_t h = -1, w = -1;
    nb_clear_error();
    nb_tensor *t = nb_png_parse_gray(data, size, "fuzz.png", &h, &w);
    if (!t) {
        if (!nb_errmsg()[0] || h != 0 || w != 0) abort(); /* every failure must say why */
        return;
    }
    if (t->ndim != 2 || t->shape[0] != h || t->shape[1] != w || h > NB_PNG_MAX_SIDE || w > NB_PNG_MAX_SIDE)
        abort();
    for (int64_t i = 0; i < t->size; i++)
        if (!(t->data[i] >= 0.f && t->data[i] <= 1.f)) abort();
    nb_tensor_free(t);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size);
    if (size < 8) return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    /* Walk the chunks (length, type, data, CRC) after the signature. */
    for (size_t at = 8; at + 12 <= size;) {
        uint32_t len = be32(fixed + at);
        if (len > size - at - 12) break;
        uint32_t crc = (uint32_t)crc32(0, fixed + at + 4, 4 + len);
        for (int k = 0; k < 4; k++) fixed[at + 8 + len + k] = (uint8_t)(crc >> (24 - 8 * k));
        at += 12 + (size_t)len;
    }
    if (memcmp(fixed, data, size)) check(fixed, size);
    free(fixed);
    return 0;
}
