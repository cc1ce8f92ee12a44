/* fuzz_jpeg.c — libFuzzer target: nb_image_parse (JPEG by libjpeg-turbo, and
 * PNG where the bytes start like one) on arbitrary bytes must return a
 * [3, h, w] image of values in [0, 1] within the size limits, or an error
 * with a message and h = w = 0; never crash, leak, print or exit (libjpeg's
 * default error manager would exit). Inputs that do not start with the JPEG
 * marker are tried again behind one, so that mutations of any seed reach the
 * decoder. */
#include "nabla.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size) {
    int64_t h = -1, w = -1;
    nb_clear_error();
    nb_tensor *t = nb_image_parse(data, size, "fuzz.jpg", &h, &w);
    if (!t) {
        if (!nb_errmsg()[0] || h != 0 || w != 0) abort(); /* every failure must say why */
        return;
    }
    if (t->ndim != 3 || t->shape[0] != 3 || t->shape[1] != h || t->shape[2] != w || h < 1 || w < 1 ||
        h > NB_IMAGE_MAX_SIDE || w > NB_IMAGE_MAX_SIDE || h * w > NB_IMAGE_MAX_PIXELS)
        abort();
    for (int64_t i = 0; i < t->size; i++)
        if (!(t->data[i] >= 0.f && t->data[i] <= 1.f)) abort();
    nb_tensor_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size);
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return 0;
    uint8_t *fixed = malloc(size + 3);
    if (!fixed) return 0;
    fixed[0] = 0xFF, fixed[1] = 0xD8, fixed[2] = 0xFF;
    if (size) memcpy(fixed + 3, data, size);
    check(fixed, size + 3);
    free(fixed);
    return 0;
}
