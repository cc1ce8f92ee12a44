/* fuzz_jpeg.c — libFuzzer target: nb_image_parse (JPEG by libjpeg-turbo, and
 * PNG where the bytes start like one) on arbitrary bytes must return a
 * [3, h, w] image of values in [0, 1] within the size limits, or an error
 * with a message and h = w = 0; never crash, leak, print or exit (libjpeg's
 * default error manager would exit). Inputs that do not start with the JPEG
 * marker are tried again behind one, so that mutations of any seed reach the
 * decoder. Each input is also read as the EXIF data (APP1) of a small valid
 * JPEG, so that the orientation reader sees any bytes: the image must come
 * back whole, turned as a plain reading of the bytes (below) says. */
#include "nabla.h"
#include <stdint.h>
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

/* A 3 x 2 gray JPEG, values 0, 50, ..., 250 row by row (PIL, quality 95,
 * optimized Huffman tables). */
static const uint8_t small_jpeg[] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02,
    0x01, 0x01, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04,
    0x04, 0x03, 0x04, 0x06, 0x05, 0x06, 0x06, 0x06, 0x05, 0x06, 0x06, 0x06, 0x07, 0x09, 0x08, 0x06,
    0x07, 0x09, 0x07, 0x06, 0x06, 0x08, 0x0b, 0x08, 0x09, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x06, 0x08,
    0x0b, 0x0c, 0x0b, 0x0a, 0x0c, 0x09, 0x0a, 0x0a, 0x0a, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x02,
    0x00, 0x03, 0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0xff, 0xc4, 0x00, 0x1f,
    0x10, 0x00, 0x00, 0x03, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x08, 0x05, 0x06, 0x07, 0x18, 0x28, 0x35, 0x46, 0x52, 0x63, 0xff, 0xda, 0x00,
    0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x54, 0x91, 0xca, 0x2f, 0x47, 0x72, 0xc2, 0xe5, 0xd2,
    0x7c, 0x34, 0xb3, 0x17, 0x04, 0x67, 0xec, 0x6e, 0x23, 0xff, 0xd9
};

static uint64_t get(const uint8_t *t, uint64_t at, int len, int big) {
    uint64_t v = 0;
    for (int i = 0; i < len; i++) v |= (uint64_t)t[at + i] << 8 * (big ? len - 1 - i : i);
    return v;
}

/* Displayed pixel (y, x) of a turn or mirror of an h x w image (transposed
 * first, then flipped top to bottom and/or left to right); its stored index. */
static int64_t turned(int k, int64_t h, int64_t w, int64_t y, int64_t x) {
    int64_t a = k & 4 ? x : y, b = k & 4 ? y : x;
    if (k & 1) a = h - 1 - a;
    if (k & 2) b = w - 1 - b;
    return a * w + b;
}

/* The orientation in TIFF data t[0..n) (byte order, 42, IFD0's offset,
 * then its 12-byte entries), read anew from the TIFF standard and PIL's
 * reading of it: the first tag 0x0112 among IFD0's whole entries; the first
 * of its values (in the entry's last 4 bytes when they hold them all, else
 * at the offset there) when its type is a number (SHORT, LONG, RATIONAL,
 * SBYTE, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE; IFD read as LONG) and the
 * value a whole number in 1..8; 1 otherwise, or when it is not there. */
static int orientation(const uint8_t *t, size_t n) {
    if (n < 8 || !((t[0] == 'I' && t[1] == 'I') || (t[0] == 'M' && t[1] == 'M'))) return 1;
    int big = t[0] == 'M';
#define GET(at, len) get(t, at, len, big)
    uint64_t ifd = GET(4, 4);
    if (GET(2, 2) != 42 || ifd + 2 > n) return 1;
    for (uint64_t k = 0, count = GET(ifd, 2); k < count && ifd + 2 + 12 * (k + 1) <= n; k++) {
        uint64_t e = ifd + 2 + 12 * k;
        if (GET(e, 2) != 0x0112) continue;
        uint64_t type = GET(e + 2, 2), values = GET(e + 4, 4), bytes;
        switch (type) {
        case 6: bytes = 1; break;
        case 3: case 8: bytes = 2; break;
        case 4: case 9: case 11: case 13: bytes = 4; break;
        case 5: case 10: case 12: bytes = 8; break;
        default: return 1; /* BYTE, ASCII, UNDEFINED, unknown */
        }
        if (values == 0) return 1;
        uint64_t at = bytes * values <= 4 ? e + 8 : GET(e + 8, 4);
        if (at + bytes > n) return 1;
        double v;
        if (type == 6) v = (double)(int8_t)GET(at, 1);
        else if (type == 3) v = (double)GET(at, 2);
        else if (type == 8) v = (double)(int16_t)GET(at, 2);
        else if (type == 4 || type == 13) v = (double)GET(at, 4);
        else if (type == 9) v = (double)(int32_t)GET(at, 4);
        else if (type == 5) v = GET(at + 4, 4) ? (double)GET(at, 4) / (double)GET(at + 4, 4) : 0;
        else if (type == 10) {
            int32_t num = (int32_t)GET(at, 4), den = (int32_t)GET(at + 4, 4);
            v = den ? (double)num / (double)den : 0;
        } else if (type == 11) {
            uint32_t bits = (uint32_t)GET(at, 4);
            float f;
            memcpy(&f, &bits, 4);
            v = f;
        } else {
            uint64_t bits = GET(at, 8);
            memcpy(&v, &bits, 8);
        }
        for (int o = 1; o <= 8; o++)
            if (v == o) return o;
        return 1;
    }
    return 1;
#undef GET
}

static void check_exif(const uint8_t *data, size_t size) {
    static nb_tensor *upright;
    int64_t h, w;
    if (!upright && !(upright = nb_image_parse(small_jpeg, sizeof small_jpeg, "small.jpg", &h, &w))) abort();
    if (size > 0xFFFF - 8) size = 0xFFFF - 8; /* one marker segment's most */
    size_t n = sizeof small_jpeg + 10 + size;
    uint8_t *j = malloc(n);
    if (!j) return;
    memcpy(j, "\xFF\xD8\xFF\xE1", 4);
    j[4] = (uint8_t)((size + 8) >> 8), j[5] = (uint8_t)(size + 8);
    memcpy(j + 6, "Exif\0\0", 6);
    if (size) memcpy(j + 12, data, size);
    memcpy(j + 12 + size, small_jpeg + 2, sizeof small_jpeg - 2);
    nb_clear_error();
    nb_tensor *t = nb_image_parse(j, n, "fuzz.jpg", &h, &w);
    free(j);
    if (!t) abort(); /* EXIF bytes cannot make a valid image unreadable */
    int64_t uh = upright->shape[1], uw = upright->shape[2], plane = uh * uw;
    if (t->size != upright->size || !((h == uh && w == uw) || (h == uw && w == uh))) abort();
    /* EXIF's orientations 1..8 as turned()'s k: 6 turns a quarter clockwise
     * (displayed (y, x) is stored (h-1-x, y)), 8 anticlockwise. */
    static const int k_of[9] = {0, 0, 2, 3, 1, 4, 5, 7, 6};
    int k = k_of[orientation(data, size)];
    if ((k & 4 ? uw : uh) != h) abort();
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                if (t->data[c * plane + y * w + x] != upright->data[c * plane + turned(k, uh, uw, y, x)]) abort();
    nb_tensor_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size);
    check_exif(data, size);
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return 0;
    uint8_t *fixed = malloc(size + 3);
    if (!fixed) return 0;
    fixed[0] = 0xFF, fixed[1] = 0xD8, fixed[2] = 0xFF;
    if (size) memcpy(fixed + 3, data, size);
    check(fixed, size + 3);
    free(fixed);
    return 0;
}
