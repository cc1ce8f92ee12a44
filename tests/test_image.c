/* test_image.c — colour images (nb_image_*): PNG and JPEG round trips, the
 * kinds of PNG and JPEG read into [3, h, w], resampling, and broken files. */
#include "test.h"
#include <pixman.h>
#include <png.h>
#include <stdio.h> /* before jpeglib.h */
#include <jpeglib.h>
#include <stdlib.h>
#include <unistd.h>

static void tmp_dir(char *dir, size_t n) {
    snprintf(dir, n, "/tmp/nabla-test-image-XXXXXX");
    if (!mkdtemp(dir)) nb_fatal("test", "mkdtemp failed");
}

static void rm_dir(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static bool has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

/* A [3, h, w] image of smooth colours (JPEG keeps those well), each value a
 * whole number of 255ths (PNG keeps those exactly). */
static nb_tensor *smooth_image(int64_t h, int64_t w) {
    nb_tensor *t = nb_tensor_new(3, (const int64_t[]){3, h, w});
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            t->data[(0 * h + y) * w + x] = (float)((40 + 150 * x / (w - 1)) / 255.0);
            t->data[(1 * h + y) * w + x] = (float)((200 - 120 * y / (h - 1)) / 255.0);
            t->data[(2 * h + y) * w + x] = (float)((60 + 50 * (x + y) / (w + h - 2)) / 255.0);
        }
    return t;
}

/* The PNG simplified API's encoder, to make inputs of every sample layout. */
static uint8_t *encode_png(png_uint_32 fmt, int w, int h, const void *pixels, size_t *len) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = fmt;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&img, NULL, &size, 0, pixels, 0, NULL)) nb_fatal("test", "%s", img.message);
    uint8_t *buf = malloc(size);
    if (!png_image_write_to_memory(&img, buf, &size, 0, pixels, 0, NULL)) nb_fatal("test", "%s", img.message);
    *len = size;
    return buf;
}

TEST(test_image_png_round_trip) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.png", dir);
    nb_tensor *img = smooth_image(9, 13);
    CHECK_MSG(nb_image_write(path, img) == 0, "%s", nb_errmsg());
    int64_t h = 0, w = 0;
    nb_tensor *back = nb_image_read(path, &h, &w);
    CHECK_MSG(back, "%s", nb_errmsg());
    if (back) {
        CHECK(h == 9 && w == 13 && back->ndim == 3 && back->shape[0] == 3 && back->shape[1] == 9 &&
              back->shape[2] == 13 && back->persistent);
        CHECK(nb_test_maxrel(back->data, img->data, img->size) < 1e-6);
        nb_tensor_free(back);
    }
    /* [h, w] and [1, h, w] are gray: three equal channels come back; values
     * are clamped and NaN is 0. The extension's case does not matter. */
    nb_tensor *g = nb_tensor_new(2, (const int64_t[]){2, 3});
    const float gv[6] = {0.f, 1.f, 0.5f, -3.f, 7.f, NAN};
    memcpy(g->data, gv, sizeof gv);
    snprintf(path, sizeof path, "%s/g.PNG", dir);
    CHECK_MSG(nb_image_write(path, g) == 0, "%s", nb_errmsg());
    back = nb_image_read(path, &h, &w);
    CHECK_MSG(back && h == 2 && w == 3, "%s", nb_errmsg());
    if (back) {
        const float want[6] = {0.f, 1.f, 128 / 255.f, 0.f, 1.f, 0.f};
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 6; i++) CHECK_NEAR(back->data[c * 6 + i], want[i], 1e-6);
        nb_tensor_free(back);
    }
    nb_tensor *g1 = nb_tensor_new(3, (const int64_t[]){1, 2, 3});
    memcpy(g1->data, gv, sizeof gv);
    snprintf(path, sizeof path, "%s/g1.png", dir);
    CHECK(nb_image_write(path, g1) == 0);
    back = nb_image_read(path, &h, &w);
    CHECK_MSG(back && h == 2 && w == 3 && fabsf(back->data[2] - 128 / 255.f) < 1e-6f, "%s", nb_errmsg());
    nb_tensor_free(back);
    nb_tensor_free(g1);
    nb_tensor_free(g);
    rm_dir(dir);
    nb_tensor_free(img);
}

TEST(test_image_jpeg_round_trip_within_tolerance) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    nb_tensor *img = smooth_image(40, 48);
    const char *names[] = {"c.jpg", "c.JPEG"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        CHECK_MSG(nb_image_write(path, img) == 0, "%s", nb_errmsg());
        size_t len;
        uint8_t *bytes = nb_read_file(path, &len);
        CHECK(bytes && len > 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && nb_sniff(bytes, len) == NB_FILE_JPEG);
        free(bytes);
        int64_t h = 0, w = 0;
        nb_tensor *back = nb_image_read(path, &h, &w);
        CHECK_MSG(back, "%s", nb_errmsg());
        if (!back) continue;
        CHECK(h == 40 && w == 48 && back->shape[0] == 3);
        /* Quality 92 with 4:2:0 chroma: on smooth gradients the error stays
         * within a few levels of 255 (measured 0.003 mean, 0.016 max). */
        double mean = 0, worst = 0;
        for (int64_t i = 0; i < img->size; i++) {
            double d = fabs((double)back->data[i] - img->data[i]);
            mean += d / (double)img->size;
            worst = fmax(worst, d);
        }
        CHECK_MSG(mean < 0.01 && worst < 0.06, "mean error %g, worst %g", mean, worst);
        nb_tensor_free(back);
    }
    /* A gray image becomes a one-component JPEG and reads back gray. */
    nb_tensor *g = nb_tensor_new(2, (const int64_t[]){16, 16});
    for (int i = 0; i < 256; i++) g->data[i] = (float)(i % 16) / 15.f * 0.5f + 0.25f;
    snprintf(path, sizeof path, "%s/g.jpg", dir);
    CHECK(nb_image_write(path, g) == 0);
    nb_tensor *back = nb_image_read(path, NULL, NULL);
    CHECK_MSG(back, "%s", nb_errmsg());
    if (back) {
        double worst = 0;
        for (int i = 0; i < 256; i++) {
            CHECK(back->data[i] == back->data[256 + i] && back->data[i] == back->data[512 + i]);
            worst = fmax(worst, fabs(back->data[i] - g->data[i]));
        }
        CHECK_MSG(worst < 0.05, "gray JPEG worst error %g", worst);
        nb_tensor_free(back);
    }
    nb_tensor_free(g);
    nb_tensor_free(img);
    rm_dir(dir);
}

TEST(test_image_png_gray_rgba_and_16_bit_inputs) {
    size_t len;
    int64_t h, w;
    /* Gray expands to three equal channels. */
    const uint8_t gray[] = {0, 51, 255};
    uint8_t *png = encode_png(PNG_FORMAT_GRAY, 3, 1, gray, &len);
    nb_tensor *t = nb_image_parse(png, len, "gray.png", &h, &w);
    CHECK_MSG(t && h == 1 && w == 3, "%s", nb_errmsg());
    if (t)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 3; i++) CHECK_NEAR(t->data[c * 3 + i], gray[i] / 255.0, 1e-6);
    nb_tensor_free(t);
    free(png);
    /* RGBA composites over white: c a + (1 - a). */
    const uint8_t rgba[] = {255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 51, 200, 100, 50, 128};
    png = encode_png(PNG_FORMAT_RGBA, 2, 2, rgba, &len);
    t = nb_image_parse(png, len, "rgba.png", &h, &w);
    CHECK_MSG(t && h == 2 && w == 2, "%s", nb_errmsg());
    if (t) {
        for (int i = 0; i < 4; i++) {
            double a = rgba[4 * i + 3] / 255.0;
            for (int c = 0; c < 3; c++)
                CHECK_NEAR(t->data[c * 4 + i], rgba[4 * i + c] / 255.0 * a + 1 - a, 1e-6);
        }
        CHECK_NEAR(t->data[1], 1.0, 1e-6); /* the transparent pixel is white */
        nb_tensor_free(t);
    }
    free(png);
    /* Gray + alpha, over white too. */
    const uint8_t ga[] = {0, 51};
    png = encode_png(PNG_FORMAT_GA, 1, 1, ga, &len);
    t = nb_image_parse(png, len, "ga.png", &h, &w);
    CHECK_MSG(t, "%s", nb_errmsg());
    if (t) CHECK_NEAR(t->data[2], 1 - 51 / 255.0, 1e-6);
    nb_tensor_free(t);
    free(png);
    /* 16-bit RGB keeps its 16 bits (scaled by 65535). */
    const uint16_t rgb16[] = {0, 65535, 32768, 1, 1000, 65534};
    png = encode_png(PNG_FORMAT_LINEAR_RGB, 2, 1, rgb16, &len);
    t = nb_image_parse(png, len, "rgb16.png", &h, &w);
    CHECK_MSG(t && h == 1 && w == 2, "%s", nb_errmsg());
    if (t) {
        for (int i = 0; i < 2; i++)
            for (int c = 0; c < 3; c++) CHECK_NEAR(t->data[c * 2 + i], rgb16[3 * i + c] / 65535.0, 1e-7);
        nb_tensor_free(t);
    }
    free(png);
    /* The gray reader still reads the same file as luma. */
    png = encode_png(PNG_FORMAT_RGB, 1, 1, (const uint8_t[]){255, 0, 0}, &len);
    t = nb_png_parse_gray(png, len, "red.png", NULL, NULL);
    CHECK(t && t->ndim == 2 && fabsf(t->data[0] - 0.299f) < 1e-6f);
    nb_tensor_free(t);
    free(png);
}

/* Starts a quality-95 JPEG of w x h pixels of `comps` samples in `space`
 * into memory (*mem, *len, filled by jpeg_finish_compress); the caller may
 * change sampling before jpeg_start_compress. */
static void jpeg_begin(struct jpeg_compress_struct *c, struct jpeg_error_mgr *e, unsigned char **mem,
                       unsigned long *len, int w, int h, int comps, J_COLOR_SPACE space) {
    c->err = jpeg_std_error(e);
    jpeg_create_compress(c);
    *mem = NULL;
    jpeg_mem_dest(c, mem, len);
    c->image_width = (JDIMENSION)w;
    c->image_height = (JDIMENSION)h;
    c->input_components = comps;
    c->in_color_space = space;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, 95, TRUE);
}

/* A flat w x h CMYK JPEG (each pixel the same four stored samples), with the
 * Adobe marker libjpeg writes for CMYK. */
static uint8_t *encode_cmyk(const uint8_t ink[4], int w, int h, unsigned long *len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem;
    jpeg_begin(&c, &e, &mem, len, w, h, 4, JCS_CMYK);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 4);
    for (int x = 0; x < w; x++) memcpy(row + 4 * x, ink, 4);
    while (c.next_scanline < c.image_height) jpeg_write_scanlines(&c, (JSAMPROW[]){row}, 1);
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return mem;
}

TEST(test_image_jpeg_cmyk_is_converted) {
    /* Adobe's inverted inks: stored 255 is no ink. No cyan and no black with
     * full magenta... stored (255, 0, 255, 255): red 1, green 0, blue 1. */
    unsigned long len = 0;
    uint8_t *jpg = encode_cmyk((const uint8_t[]){255, 0, 255, 255}, 16, 16, &len);
    nb_tensor *t = nb_image_parse(jpg, len, "cmyk.jpg", NULL, NULL);
    CHECK_MSG(t, "%s", nb_errmsg());
    if (t) {
        CHECK_NEAR(t->data[0], 1.0, 0.02);
        CHECK_NEAR(t->data[256], 0.0, 0.02);
        CHECK_NEAR(t->data[512], 1.0, 0.02);
        nb_tensor_free(t);
    }
    free(jpg);
}

/* A 24 x 16 RGB JPEG (4:4:4) with an EXIF APP1 marker giving orientation o,
 * in the byte order of `motorola` (MM) or Intel (II). Stored: the top-left
 * 8 x 8 block red, the top-right one green, the rest black. */
/* The stored image: 24 x 16, a red square at the top left, a green one at
 * the top right, under an APP1 marker that holds EXIF orientation o as a
 * value of TIFF type `type` (3: SHORT, the only right one), with IFD0's
 * 4-byte link to the next IFD or without it (the entry then ends the
 * marker), and optionally a second APP1 marker (XMP) after it. */
static uint8_t *encode_exif_ex(int o, bool motorola, int type, bool next_link, bool xmp, unsigned long *len);

static uint8_t *encode_exif(int o, bool motorola, unsigned long *len) {
    return encode_exif_ex(o, motorola, 3, true, false, len);
}

/* That image under the APP1 marker app1 (n bytes), and an XMP one if asked. */
static uint8_t *encode_app1(const uint8_t *app1, unsigned n, bool xmp, unsigned long *len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem;
    jpeg_begin(&c, &e, &mem, len, 24, 16, 3, JCS_RGB);
    for (int k = 0; k < 3; k++) c.comp_info[k].h_samp_factor = c.comp_info[k].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    jpeg_write_marker(&c, JPEG_APP0 + 1, app1, n);
    static const char xmp_data[] = "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/>";
    if (xmp) jpeg_write_marker(&c, JPEG_APP0 + 1, (const JOCTET *)xmp_data, sizeof xmp_data);
    uint8_t row[24 * 3];
    while (c.next_scanline < c.image_height) {
        memset(row, 0, sizeof row);
        if (c.next_scanline < 8)
            for (int x = 0; x < 8; x++) row[3 * x] = 255, row[3 * (16 + x) + 1] = 255;
        jpeg_write_scanlines(&c, (JSAMPROW[]){row}, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return mem;
}

static uint8_t *encode_exif_ex(int o, bool motorola, int type, bool next_link, bool xmp, unsigned long *len) {
    /* "Exif\0\0", TIFF header, IFD0 with one entry: 0x0112 SHORT 1 o. */
    uint8_t app1[6 + 8 + 2 + 12 + 4] = "Exif\0\0";
    uint8_t *t = app1 + 6;
    bool m = motorola;
#define P16(p, v) ((p)[m ? 0 : 1] = (uint8_t)((v) >> 8), (p)[m ? 1 : 0] = (uint8_t)(v))
    t[0] = t[1] = m ? 'M' : 'I';
    P16(t + 2, 42);
    P16(t + 6, 0), P16(t + 4, 8); /* IFD0 at offset 8 (32 bits: the low half in t[4..5] for II) */
    if (m) t[4] = t[5] = 0, t[6] = 0, t[7] = 8;
    P16(t + 8, 1);
    P16(t + 10, 0x0112), P16(t + 12, type);
    if (m) t[14] = t[15] = t[16] = 0, t[17] = 1; else t[14] = 1, t[15] = t[16] = t[17] = 0;
    P16(t + 18, o);
#undef P16
    return encode_app1(app1, sizeof app1 - (next_link ? 0 : 4), xmp, len);
}

/* Phones store photos as the sensor saw them and an EXIF orientation saying
 * how to turn them; viewers (and PIL's ImageOps.exif_transpose) turn them.
 * A portrait photo was read lying on its side, 24 wide instead of 16. */
TEST(test_image_jpeg_exif_orientation_is_applied) {
    struct { int o; bool mm; int64_t h, w; int red[2], green[2]; } cases[] = {
        {1, false, 16, 24, {4, 4}, {4, 20}},
        {3, true, 16, 24, {11, 19}, {11, 3}},   /* half a turn */
        {6, true, 24, 16, {4, 11}, {19, 11}},   /* a quarter clockwise: the stored top on the right */
        {8, false, 24, 16, {19, 4}, {4, 4}},    /* a quarter anticlockwise: the stored top on the left */
        {2, false, 16, 24, {4, 19}, {4, 3}},    /* mirrored */
        /* from the EXIF table (row 0 and column 0 of the stored image are
         * shown at): 4 bottom, left; 5 left, top; 7 right, bottom */
        {4, true, 16, 24, {11, 4}, {11, 20}},   /* mirrored top to bottom */
        {5, false, 24, 16, {4, 4}, {19, 4}},    /* transposed */
        {7, true, 24, 16, {19, 11}, {4, 11}},   /* transverse */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        unsigned long len = 0;
        uint8_t *jpg = encode_exif(cases[k].o, cases[k].mm, &len);
        int64_t h = 0, w = 0;
        nb_tensor *t = nb_image_parse(jpg, len, "exif.jpg", &h, &w);
        CHECK_MSG(t, "%s", nb_errmsg());
        if (t) {
            CHECK_MSG(h == cases[k].h && w == cases[k].w && t->shape[1] == h && t->shape[2] == w,
                      "orientation %d: %lld x %lld (h x w)", cases[k].o, (long long)h, (long long)w);
            if (h == cases[k].h && w == cases[k].w) {
                int64_t plane = h * w, r = cases[k].red[0] * w + cases[k].red[1], g = cases[k].green[0] * w + cases[k].green[1];
                CHECK_MSG(t->data[r] > 0.9f && t->data[plane + r] < 0.1f, "orientation %d: no red at (%d, %d)",
                          cases[k].o, cases[k].red[0], cases[k].red[1]);
                CHECK_MSG(t->data[g] < 0.1f && t->data[plane + g] > 0.9f, "orientation %d: no green at (%d, %d)",
                          cases[k].o, cases[k].green[0], cases[k].green[1]);
            }
            nb_tensor_free(t);
        }
        free(jpg);
    }
}

/* Where the orientation tag is read: an entry that ends the marker (no link
 * to a next IFD) counts; an XMP marker after the EXIF one does not undo it. */
TEST(test_image_jpeg_exif_entry_edges_and_a_second_app1) {
    struct { int type; bool link, xmp; int64_t h, w; } cases[] = {
        {3, false, false, 24, 16}, {3, true, false, 24, 16}, {3, true, true, 24, 16}, {3, false, true, 24, 16},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        unsigned long len = 0;
        uint8_t *jpg = encode_exif_ex(6, k % 2 == 0, cases[k].type, cases[k].link, cases[k].xmp, &len);
        int64_t h = 0, w = 0;
        nb_tensor *t = nb_image_parse(jpg, len, "exif.jpg", &h, &w);
        CHECK_MSG(t && h == cases[k].h && w == cases[k].w, "case %zu: %lld x %lld (h x w), %s", k, (long long)h,
                  (long long)w, t ? "" : nb_errmsg());
        nb_tensor_free(t);
        free(jpg);
    }
}

/* Orientation 6 (a quarter turn: 16 x 24 read) in the TIFF types writers
 * use besides SHORT, in both byte orders, inline or at an offset, as PIL's
 * ImageOps.exif_transpose takes them (PIL 9.4: the entry's first value when
 * it is a whole number 1..8). A LONG orientation was ignored, and a photo
 * from such a writer read lying on its side. BYTE, UNDEFINED and ASCII
 * values, a count of 0, 6.5, 0 and 9 are no orientation (PIL's neither);
 * type 13 (IFD, an offset) PIL reads as a LONG. The files were checked
 * once against PIL 9.4 (all 40 agree); no test needs PIL. */
TEST(test_image_jpeg_exif_orientation_of_any_number_type) {
    /* off: the values' offset when not the one after the IFD (0); types 0
     * and 14 are none of TIFF's; at 0xFFFFFFF0 the values are past the segment,
     * at 30 less than the 8 bytes of a DOUBLE is left in it */
    struct { int type, count; double v; bool turned; uint32_t off; } cases[] = {
        {3, 1, 6, true},  {4, 1, 6, true},  {8, 1, 6, true},  {9, 1, 6, true},   {6, 1, 6, true},
        {11, 1, 6, true}, {12, 1, 6, true}, {5, 1, 6, true},  {10, 1, 6, true},  {3, 2, 6, true},
        {3, 3, 6, true},  {4, 2, 6, true},  {1, 1, 6, false}, {7, 1, 6, false},  {2, 1, 6, false},
        {3, 0, 6, false}, {12, 1, 6.5, false}, {4, 1, 0, false}, {9, 1, 9, false}, {13, 1, 6, true},
        {4, 2, 6, false, 0xFFFFFFF0u}, {12, 1, 6, false, 30}, {14, 1, 6, false}, {0, 1, 6, false},
    };
    static const int size[14] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4};
    for (size_t k = 0; k < 2 * sizeof cases / sizeof cases[0]; k++) {
        bool mm = k & 1;
        int type = cases[k / 2].type, count = cases[k / 2].count;
        double v = cases[k / 2].v;
        uint8_t app1[6 + 8 + 2 + 12 + 4 + 64] = "Exif\0\0", *t = app1 + 6;
        /* Writes the nb low bytes of x at p in the file's byte order. */
#define PUT(p, x, nb) for (int b_ = 0; b_ < (nb); b_++) (p)[mm ? (nb) - 1 - b_ : b_] = (uint8_t)((uint64_t)(x) >> 8 * b_)
        t[0] = t[1] = mm ? 'M' : 'I';
        PUT(t + 2, 42, 2);
        PUT(t + 4, 8, 4);
        PUT(t + 8, 1, 2);
        PUT(t + 10, 0x0112, 2);
        PUT(t + 12, type, 2);
        PUT(t + 14, count, 4);
        PUT(t + 22, 0, 4); /* no next IFD */
        int n = count ? count : 1, per = type >= 1 && type <= 13 ? size[type] : 2;
        uint8_t *val = per * n <= 4 ? t + 18 : t + 26;
        if (val != t + 18) PUT(t + 18, cases[k / 2].off ? cases[k / 2].off : 26, 4);
        for (int i = 0; i < n; i++) {
            uint8_t *p = val + i * per;
            if (type == 11) {
                float f = (float)v;
                uint32_t bits;
                memcpy(&bits, &f, 4);
                PUT(p, bits, 4);
            } else if (type == 12) {
                uint64_t bits;
                memcpy(&bits, &v, 8);
                PUT(p, bits, 8);
            } else if (type == 5 || type == 10) {
                PUT(p, (uint32_t)(2 * v), 4); /* 12 / 2 */
                PUT(p + 4, 2, 4);
            } else {
                PUT(p, (uint64_t)v, per);
            }
        }
#undef PUT
        unsigned long len = 0;
        uint8_t *jpg = encode_app1(app1, (unsigned)(val == t + 18 ? 6 + 26 : 6 + 26 + per * n), false, &len);
        int64_t h = 0, w = 0;
        nb_tensor *img = nb_image_parse(jpg, len, "exif.jpg", &h, &w);
        bool turned = img && h == 24 && w == 16;
        CHECK_MSG(img && turned == cases[k / 2].turned, "type %d, count %d, value %g, %s: %lld x %lld (h x w), %s",
                  type, count, v, mm ? "MM" : "II", (long long)h, (long long)w, img ? "" : nb_errmsg());
        nb_tensor_free(img);
        free(jpg);
    }
}

/* Writing rounds to the nearest 8-bit level (0.5 is 127.5: 128); the
 * resampler refuses an output of more than NB_IMAGE_MAX_PIXELS in all even
 * when each side is allowed; a file that is a PNG signature and nothing
 * more is a truncated PNG, not an unknown kind. */
TEST(test_image_write_rounds_resize_pixel_limit_and_bare_signature) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/half.png", dir);
    nb_tensor *img = nb_tensor_new(3, (const int64_t[]){3, 1, 2});
    const float v[6] = {0.5f, 0.2f, 0.01f, 0.998f, 0.25f, 0.75f};
    memcpy(img->data, v, sizeof v);
    CHECK_MSG(nb_image_write(path, img) == 0, "%s", nb_errmsg());
    nb_tensor *back = nb_image_read(path, NULL, NULL);
    CHECK_MSG(back && back->size == 6, "%s", nb_errmsg());
    const int want[6] = {128, 51, 3, 254, 64, 191}; /* v * 255 rounded: 127.5, 51, 2.55, 254.49, 63.75, 191.25 */
    for (int i = 0; back && i < 6; i++)
        CHECK_MSG(back->data[i] == want[i] / 255.f, "%g written as %g / 255, expected %d", (double)v[i],
                  (double)back->data[i] * 255, want[i]);
    nb_tensor_free(back);
    nb_tensor *one = nb_tensor_new(3, (const int64_t[]){1, 1, 1});
    nb_tensor *big = nb_image_resize(one, 8193, 8193); /* 67125249 > 2^26 pixels, each side allowed */
    CHECK_MSG(!big && has(nb_errmsg(), "8193 x 8193"), "%s", big ? "accepted" : nb_errmsg());
    nb_tensor_free(big);
    nb_tensor_free(one);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    nb_tensor *t = nb_image_parse(sig, 8, "sig.png", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "sig.png") && !has(nb_errmsg(), "not a PNG or JPEG"), "%s", nb_errmsg());
    nb_tensor_free(img);
    rm_dir(dir);
}

TEST(test_image_resize_constant_and_monotone) {
    /* Sizes that shrink, enlarge, and both at once. */
    const int64_t sizes[][4] = {{17, 23, 5, 7}, {6, 5, 31, 29}, {40, 3, 9, 50}, {8, 8, 8, 8}, {33, 1, 1, 12}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t h = sizes[s][0], w = sizes[s][1], nh = sizes[s][2], nw = sizes[s][3];
        /* Five channels: two passes through pixman's three. */
        nb_tensor *c = nb_tensor_new(3, (const int64_t[]){5, h, w});
        for (int64_t k = 0; k < 5; k++)
            for (int64_t i = 0; i < h * w; i++) c->data[k * h * w + i] = 0.1f + 0.2f * (float)k;
        nb_tensor *r = nb_image_resize(c, nh, nw);
        CHECK_MSG(r, "%s", nb_errmsg());
        if (!r) continue;
        CHECK(r->ndim == 3 && r->shape[0] == 5 && r->shape[1] == nh && r->shape[2] == nw && r->persistent);
        /* pixman sums the taps in 16-bit fixed point: a constant comes back
         * within a few 65535ths. */
        double worst = 0;
        for (int64_t k = 0; k < 5; k++)
            for (int64_t i = 0; i < nh * nw; i++) worst = fmax(worst, fabs(r->data[k * nh * nw + i] - (0.1 + 0.2 * k)));
        CHECK_MSG(worst < 2e-4, "%lldx%lld -> %lldx%lld: constant off by %g", (long long)h, (long long)w,
                  (long long)nh, (long long)nw, worst);
        nb_tensor_free(r);
        /* A gradient rising along x (channel 0), falling along y (channel 1):
         * every output row and column keeps the direction. */
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                c->data[y * w + x] = (float)(x + 1) / (float)(w + 1);
                c->data[h * w + y * w + x] = 1.f - (float)(y * y + 1) / (float)(h * h + 1);
            }
        r = nb_image_resize(c, nh, nw);
        CHECK(r != NULL);
        if (!r) continue;
        int bad = 0;
        for (int64_t y = 0; y < nh; y++)
            for (int64_t x = 0; x < nw; x++) {
                if (x && r->data[y * nw + x] < r->data[y * nw + x - 1]) bad++;
                if (y && r->data[nh * nw + y * nw + x] > r->data[nh * nw + (y - 1) * nw + x]) bad++;
            }
        CHECK_MSG(!bad, "%lldx%lld -> %lldx%lld: %d steps against the gradient", (long long)h, (long long)w,
                  (long long)nh, (long long)nw, bad);
        /* Enlarging a ramp spreads it over the same range: the ends stay
         * near the input's ends and the middle near its middle. */
        if (w > 1 && nw > w) {
            float lo = r->data[0], hi = r->data[nw - 1];
            CHECK(lo >= c->data[0] - 1e-4f && hi <= c->data[w - 1] + 1e-4f && hi - lo > 0.5f * (c->data[w - 1] - c->data[0]));
        }
        nb_tensor_free(r);
        nb_tensor_free(c);
    }
    /* Bad sizes. */
    nb_tensor *c = nb_tensor_new(3, (const int64_t[]){3, 4, 4});
    CHECK(!nb_image_resize(c, 0, 4) && has(nb_errmsg(), "resize"));
    CHECK(!nb_image_resize(c, 4, NB_IMAGE_MAX_SIDE + 1));
    nb_tensor *flat = nb_tensor_new(2, (const int64_t[]){4, 4});
    CHECK(!nb_image_resize(flat, 2, 2) && has(nb_errmsg(), "[C, h, w]"));
    nb_tensor_free(flat);
    nb_tensor_free(c);
}

/* pixman's own float compositing of the same filter, for scales exact in its
 * 16.16 fixed point (elsewhere its rounded scale picks a neighbouring phase
 * now and then): nb_image_resize must agree within pixman's 16-bit sums. */
TEST(test_image_resize_matches_pixman_compositing) {
    const int sizes[][4] = {{13, 17, 13, 34}, {5, 5, 16, 16}, {32, 24, 8, 6}, {20, 20, 20, 20}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int h = sizes[s][0], w = sizes[s][1], nh = sizes[s][2], nw = sizes[s][3];
        nb_tensor *img = nb_tensor_new(3, (const int64_t[]){3, h, w});
        for (int64_t i = 0; i < img->size; i++) img->data[i] = (float)nb_rng_uniform(nb_test_rng());
        nb_tensor *r = nb_image_resize(img, nh, nw);
        float *src = malloc(sizeof(float) * 3 * (size_t)(h * w)), *dst = calloc(3 * (size_t)(nh * nw), sizeof(float));
        for (int i = 0; i < h * w; i++)
            for (int c = 0; c < 3; c++) src[3 * i + c] = img->data[c * h * w + i];
        pixman_image_t *ps = pixman_image_create_bits(PIXMAN_rgb_float, w, h, (uint32_t *)src, w * 12);
        pixman_image_t *pd = pixman_image_create_bits(PIXMAN_rgb_float, nw, nh, (uint32_t *)dst, nw * 12);
        double sx = (double)w / nw, sy = (double)h / nh;
        pixman_transform_t t;
        pixman_transform_init_scale(&t, pixman_double_to_fixed(sx), pixman_double_to_fixed(sy));
        pixman_image_set_transform(ps, &t);
        pixman_image_set_repeat(ps, PIXMAN_REPEAT_PAD);
        int n;
        pixman_fixed_t *params = pixman_filter_create_separable_convolution(
            &n, pixman_double_to_fixed(sx), pixman_double_to_fixed(sy), PIXMAN_KERNEL_LINEAR, PIXMAN_KERNEL_LINEAR,
            PIXMAN_KERNEL_BOX, PIXMAN_KERNEL_BOX, 4, 4);
        pixman_image_set_filter(ps, PIXMAN_FILTER_SEPARABLE_CONVOLUTION, params, n);
        pixman_image_composite32(PIXMAN_OP_SRC, ps, NULL, pd, 0, 0, 0, 0, 0, 0, nw, nh);
        double worst = 0;
        for (int i = 0; r && i < nh * nw; i++)
            for (int c = 0; c < 3; c++) worst = fmax(worst, fabs(dst[3 * i + c] - r->data[c * nh * nw + i]));
        CHECK_MSG(r && worst < 5e-4, "%dx%d -> %dx%d: %g from pixman", w, h, nw, nh, worst);
        pixman_image_unref(ps);
        pixman_image_unref(pd);
        free(params), free(src), free(dst);
        nb_tensor_free(r), nb_tensor_free(img);
    }
}

TEST(test_image_rejects_truncated_corrupt_and_other_files) {
    char dir[64], path[160];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/noise.jpg", dir);
    nb_tensor *img = nb_tensor_new(3, (const int64_t[]){3, 32, 32});
    for (int64_t i = 0; i < img->size; i++) img->data[i] = (float)nb_rng_uniform(nb_test_rng());
    CHECK(nb_image_write(path, img) == 0);
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    CHECK(buf && len > 600);
    if (!buf) return;
    /* Cut anywhere: never a crash or a tensor; an error naming the file. */
    size_t cuts[] = {2, 3, 20, 200, len / 2, len - 40, len - 2, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        int64_t h = 5, w = 5;
        nb_tensor *t = nb_image_parse(buf, cuts[k], "cut.jpg", &h, &w);
        CHECK_MSG(!t && h == 0 && w == 0, "a JPEG cut at %zu bytes was accepted", cuts[k]);
        CHECK_MSG(has(nb_errmsg(), "cut.jpg") && (has(nb_errmsg(), "truncated") || has(nb_errmsg(), "corrupt") ||
                                                  has(nb_errmsg(), "not a PNG or JPEG")),
                  "cut at %zu: %s", cuts[k], nb_errmsg());
        nb_tensor_free(t);
    }
    /* The same through a file: its path is named. */
    snprintf(path, sizeof path, "%s/half.jpg", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, len / 2, f) == len / 2);
    if (f) fclose(f);
    nb_tensor *t = nb_image_read(path, NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), path) && has(nb_errmsg(), "truncated"), "%s", nb_errmsg());
    /* Garbage in the middle of the entropy-coded data (0xFF 0xD9 there is
     * an end-of-image marker before the image is complete). */
    uint8_t *bad = malloc(len);
    memcpy(bad, buf, len);
    for (size_t i = len / 2; i < len / 2 + 64; i += 2) bad[i] = 0xFF, bad[i + 1] = (uint8_t)(0xD0 + i % 8);
    t = nb_image_parse(bad, len, "garbled.jpg", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "garbled.jpg") && has(nb_errmsg(), "corrupt"), "%s", nb_errmsg());
    nb_tensor_free(t);
    /* A frame header of 0 x 0 pixels. */
    memcpy(bad, buf, len);
    for (size_t i = 2; i + 8 < len; i++)
        if (bad[i] == 0xFF && bad[i + 1] == 0xC0) { /* SOF0: length, precision, height, width */
            bad[i + 5] = bad[i + 6] = bad[i + 7] = bad[i + 8] = 0;
            break;
        }
    t = nb_image_parse(bad, len, "empty.jpg", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "empty.jpg"), "%s", nb_errmsg());
    /* Frames declaring 16000 x 16000 (too many pixels in all) and 20000 x 8
     * (a side too long) are refused before anything of that size is made. */
    const unsigned dims[2][2] = {{16000, 16000}, {8, 20000}};
    for (int d = 0; d < 2; d++) {
        memcpy(bad, buf, len);
        for (size_t i = 2; i + 8 < len; i++)
            if (bad[i] == 0xFF && bad[i + 1] == 0xC0) {
                bad[i + 5] = (uint8_t)(dims[d][0] >> 8), bad[i + 6] = (uint8_t)dims[d][0];
                bad[i + 7] = (uint8_t)(dims[d][1] >> 8), bad[i + 8] = (uint8_t)dims[d][1];
                break;
            }
        t = nb_image_parse(bad, len, "huge.jpg", NULL, NULL);
        char want[64];
        snprintf(want, sizeof want, "%u x %u pixels", dims[d][1], dims[d][0]);
        CHECK_MSG(!t && has(nb_errmsg(), "huge.jpg") && has(nb_errmsg(), want), "%s", nb_errmsg());
    }
    free(bad);
    free(buf);

    /* A PNG cut short, text, an empty file, a missing file. */
    snprintf(path, sizeof path, "%s/c.png", dir);
    CHECK(nb_image_write(path, img) == 0);
    buf = nb_read_file(path, &len);
    t = nb_image_parse(buf, len - 20, "cut.png", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "cut.png") && has(nb_errmsg(), "truncated"), "%s", nb_errmsg());
    free(buf);
    t = nb_image_parse((const uint8_t *)"epoch,loss\n1,2\n", 15, "log.csv", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "log.csv: not a PNG or JPEG image"), "%s", nb_errmsg());
    t = nb_image_parse((const uint8_t *)"", 0, "empty.png", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "empty.png") && has(nb_errmsg(), "empty"), "%s", nb_errmsg());
    snprintf(path, sizeof path, "%s/missing.png", dir);
    t = nb_image_read(path, NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), path), "%s", nb_errmsg());
    nb_tensor_free(img);
    rm_dir(dir);
}

TEST(test_image_write_errors) {
    nb_tensor *img = nb_tensor_new(3, (const int64_t[]){3, 2, 2});
    CHECK(nb_image_write("/tmp/x.gif", img) == -1 && has(nb_errmsg(), "/tmp/x.gif") && has(nb_errmsg(), ".gif"));
    CHECK(nb_image_write("/tmp/x.d/noext", img) == -1 && has(nb_errmsg(), "(none)"));
    CHECK(nb_image_write("/nonexistent-dir-nabla/x.jpg", img) == -1 &&
          has(nb_errmsg(), "/nonexistent-dir-nabla/x.jpg"));
    nb_tensor *four = nb_tensor_new(3, (const int64_t[]){4, 2, 2});
    CHECK(nb_image_write("/tmp/x.png", four) == -1 && has(nb_errmsg(), "[4, 2, 2]"));
    /* an empty image is refused by nabla with its sides, for JPEG too (not
     * left to libjpeg's "Empty JPEG image") */
    nb_tensor *empty = nb_tensor_new(3, (const int64_t[]){3, 0, 4});
    CHECK(nb_image_write("/tmp/x.jpg", empty) == -1 && has(nb_errmsg(), "4 x 0") &&
          has(nb_errmsg(), "each side must be 1..16384"));
    nb_tensor_free(empty);
    nb_tensor *wide = nb_tensor_new(2, (const int64_t[]){1, NB_IMAGE_MAX_SIDE + 1});
    CHECK(nb_image_write("/tmp/x.jpg", wide) == -1 && has(nb_errmsg(), "16385"));
    nb_tensor_free(wide);
    nb_tensor_free(four);
    nb_tensor_free(img);
}

TEST(test_eq_blur_edge_filter_on_constant_and_step_images) {
    /* The notes' kernels as nb_image_kernel gives them. */
    int kh = 0, kw = 0;
    const float *blur = nb_image_kernel("blur", &kh, &kw);
    CHECK(blur && kh == 5 && kw == 5);
    const float *edge = nb_image_kernel("edge", &kh, &kw);
    CHECK(edge && kh == 5 && kw == 5);
    if (!blur || !edge) return;
    for (int i = 0; i < 25; i++) {
        int r = i / 5, c = i % 5;
        CHECK(blur[i] == ((r >= 1 && r <= 3 && c >= 1 && c <= 3) ? 1.f / 9 : 0.f));
        CHECK(edge[i] == (i == 11 ? -1.f : i == 12 ? 1.f : 0.f));
    }
    CHECK(!nb_image_kernel("emboss", NULL, NULL));
    /* A constant image, a different constant per channel: the blur keeps it
     * (everywhere, the border repeated), the edge kernel gives 0, and so
     * does it after a flip. */
    enum { H = 7, W = 9 };
    nb_tensor *c = nb_tensor_new(3, (const int64_t[]){3, H, W});
    for (int64_t i = 0; i < c->size; i++) c->data[i] = 0.2f + 0.3f * (float)(i / (H * W));
    nb_tensor *b = nb_image_filter(c, blur, 5, 5, false, true);
    nb_tensor *e = nb_image_filter(c, edge, 5, 5, false, true);
    nb_tensor *ef = nb_image_filter(c, edge, 5, 5, true, true);
    CHECK_MSG(b && e && ef, "%s", nb_errmsg());
    if (b && e && ef) {
        CHECK(b->ndim == 3 && b->shape[0] == 3 && b->shape[1] == H && b->shape[2] == W && b->persistent);
        for (int64_t i = 0; i < c->size; i++) {
            CHECK_NEAR(b->data[i], c->data[i], 1e-6);
            CHECK(e->data[i] == 0.f && ef->data[i] == 0.f);
        }
    }
    nb_tensor_free(b), nb_tensor_free(e), nb_tensor_free(ef);
    /* A vertical step, 0 left of column 4 and 1 from it: the edge kernel,
     * I(i, j) - I(i, j - 1), answers 1 in column 4 only; flipped (a true
     * convolution, I(i, j) - I(i, j + 1)) it answers -1 in column 3 only.
     * The blur spreads the step over columns 3 and 4 (1/3 and 2/3). */
    for (int64_t ch = 0; ch < 3; ch++)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++) c->data[(ch * H + i) * W + j] = j >= 4 ? 1.f : 0.f;
    e = nb_image_filter(c, edge, 5, 5, false, true);
    ef = nb_image_filter(c, edge, 5, 5, true, true);
    b = nb_image_filter(c, blur, 5, 5, false, true);
    CHECK(e && ef && b);
    if (e && ef && b)
        for (int64_t ch = 0; ch < 3; ch++)
            for (int64_t i = 0; i < H; i++)
                for (int64_t j = 0; j < W; j++) {
                    int64_t at = (ch * H + i) * W + j;
                    CHECK_NEAR(e->data[at], j == 4 ? 1.0 : 0.0, 1e-7);
                    CHECK_NEAR(ef->data[at], j == 3 ? -1.0 : 0.0, 1e-7);
                    CHECK_NEAR(b->data[at], j < 3 ? 0.0 : j == 3 ? 1 / 3.0 : j == 4 ? 2 / 3.0 : 1.0, 1e-6);
                }
    nb_tensor_free(b), nb_tensor_free(e), nb_tensor_free(ef);
    nb_tensor_free(c);
}

TEST(test_eq_blur_edge_filter_hand_computed_3x3) {
    /* I = [1 2 3; 4 5 6; 7 8 9] and the 3 x 3 kernel with 1 at the top left
     * and -1 at the bottom right: eq. 9.6 about the centre gives
     * S(i, j) = I(i - 1, j - 1) - I(i + 1, j + 1), worked by hand below. */
    nb_tensor *img = nb_tensor_new(3, (const int64_t[]){1, 3, 3});
    for (int i = 0; i < 9; i++) img->data[i] = (float)(i + 1);
    const float k[9] = {1, 0, 0, 0, 0, 0, 0, 0, -1};
    const float zero[9] = {-5, -6, 0, -8, -8, 2, 0, 4, 5};      /* zeros outside */
    const float edge[9] = {-4, -5, -4, -7, -8, -7, -4, -5, -4}; /* border repeated */
    nb_tensor *z = nb_image_filter(img, k, 3, 3, false, false);
    nb_tensor *e = nb_image_filter(img, k, 3, 3, false, true);
    nb_tensor *zf = nb_image_filter(img, k, 3, 3, true, false); /* true convolution: the negation here */
    CHECK_MSG(z && e && zf, "%s", nb_errmsg());
    if (z && e && zf)
        for (int i = 0; i < 9; i++) {
            CHECK_NEAR(z->data[i], zero[i], 1e-6);
            CHECK_NEAR(e->data[i], edge[i], 1e-6);
            CHECK_NEAR(zf->data[i], -zero[i], 1e-6);
        }
    nb_tensor_free(z), nb_tensor_free(e), nb_tensor_free(zf);
    /* The notes' blur on the same image: the centre is the mean of all nine
     * (5); the top-left corner with the border repeated averages
     * 1, 1, 2, 1, 1, 2, 4, 4, 5 (21/9), with zeros 1, 2, 4, 5 (12/9). */
    const float *blur = nb_image_kernel("blur", NULL, NULL);
    nb_tensor *be = nb_image_filter(img, blur, 5, 5, false, true), *bz = nb_image_filter(img, blur, 5, 5, false, false);
    CHECK(be && bz);
    if (be && bz) {
        CHECK_NEAR(be->data[4], 5.0, 1e-6);
        CHECK_NEAR(bz->data[4], 5.0, 1e-6);
        CHECK_NEAR(be->data[0], 21 / 9.0, 1e-6);
        CHECK_NEAR(bz->data[0], 12 / 9.0, 1e-6);
    }
    nb_tensor_free(be), nb_tensor_free(bz);
    /* Bad kernels. */
    CHECK(!nb_image_filter(img, k, 2, 3, false, true) && strstr(nb_errmsg(), "odd"));
    CHECK(!nb_image_filter(img, NULL, 3, 3, false, true));
    nb_tensor_free(img);
}
