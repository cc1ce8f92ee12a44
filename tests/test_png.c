/* test_png.c — PNG reading and writing (round trips, colour conversion,
 * broken files), figures (each kind in PNG, SVG and PDF) and the CSV log
 * reader. */
#include "test.h"
#include "../src/core/fault.h"
#include <png.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

/* A fresh directory for one test's files; removed by rm_dir. */
static void tmp_dir(char *dir, size_t n) {
    snprintf(dir, n, "/tmp/nabla-test-png-XXXXXX");
    if (!mkdtemp(dir)) nb_fatal("test", "mkdtemp failed");
}

static void rm_dir(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void write_bytes(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) nb_fatal("test", "cannot write %s", path);
    fclose(f);
}

static bool has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

/* Encodes pixels in the given libpng simplified-API format into memory. */
static uint8_t *encode(png_uint_32 fmt, int w, int h, const void *pixels, const void *colormap, int ncolors,
                       size_t *len) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = fmt;
    img.colormap_entries = (png_uint_32)ncolors;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&img, NULL, &size, 0, pixels, 0, colormap)) nb_fatal("test", "%s", img.message);
    uint8_t *buf = malloc(size);
    if (!png_image_write_to_memory(&img, buf, &size, 0, pixels, 0, colormap)) nb_fatal("test", "%s", img.message);
    *len = size;
    return buf;
}

TEST(test_png_gray_round_trip) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/g.png", dir);
    int w = 7, h = 5;
    float img[35];
    for (int i = 0; i < w * h; i++) img[i] = (float)((i * 37) % 256) / 255.f; /* exact 8-bit levels */
    CHECK(nb_png_write_gray(path, img, w, h) == 0);
    int64_t rh, rw;
    nb_tensor *t = nb_png_read_gray(path, &rh, &rw);
    CHECK_MSG(t, "read: %s", nb_errmsg());
    if (t) {
        CHECK(rh == h && rw == w && t->ndim == 2 && t->shape[0] == h && t->shape[1] == w && t->persistent);
        CHECK(nb_test_maxrel(t->data, img, w * h) < 1e-6);
        nb_tensor_free(t);
    }
    /* Out-of-range values are clamped, NaN is black. */
    float odd[4] = {-0.5f, 1.5f, NAN, 0.5f};
    CHECK(nb_png_write_gray(path, odd, 2, 2) == 0);
    t = nb_png_read_gray(path, NULL, NULL);
    CHECK(t != NULL);
    if (t) {
        CHECK(t->data[0] == 0.f && t->data[1] == 1.f && t->data[2] == 0.f);
        CHECK_NEAR(t->data[3], 128.0 / 255.0, 1e-6);
        nb_tensor_free(t);
    }
    /* Nothing of the temporary file is left behind. */
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    rm_dir(dir);
}

TEST(test_png_rgb_to_gray_uses_bt601_luma) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.png", dir);
    const uint8_t rgb[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 128, 128, 128, 10, 200, 30};
    CHECK(nb_png_write_rgb(path, rgb, 3, 2) == 0);
    int64_t h, w;
    nb_tensor *t = nb_png_read_gray(path, &h, &w);
    CHECK_MSG(t, "%s", nb_errmsg());
    if (t) {
        CHECK(h == 2 && w == 3);
        double want[6] = {0.299, 0.587, 0.114, 1.0, 128 / 255.0, (0.299 * 10 + 0.587 * 200 + 0.114 * 30) / 255};
        for (int i = 0; i < 6; i++) CHECK_NEAR(t->data[i], want[i], 1e-6);
        nb_tensor_free(t);
    }
    rm_dir(dir);
}

TEST(test_png_alpha_palette_and_16_bit) {
    size_t len;
    int64_t h, w;
    /* RGBA: alpha composites over black. */
    const uint8_t rgba[] = {255, 255, 255, 128, 255, 0, 0, 255, 0, 0, 0, 0, 0, 255, 0, 51};
    uint8_t *png = encode(PNG_FORMAT_RGBA, 2, 2, rgba, NULL, 0, &len);
    nb_tensor *t = nb_png_parse_gray(png, len, "rgba", &h, &w);
    CHECK_MSG(t, "%s", nb_errmsg());
    if (t) {
        CHECK(h == 2 && w == 2);
        CHECK_NEAR(t->data[0], 128 / 255.0, 1e-6);
        CHECK_NEAR(t->data[1], 0.299, 1e-6);
        CHECK_NEAR(t->data[2], 0.0, 1e-6);
        CHECK_NEAR(t->data[3], 0.587 * 51 / 255.0, 1e-6);
        nb_tensor_free(t);
    }
    free(png);
    /* Gray + alpha. */
    const uint8_t ga[] = {200, 51, 255, 255};
    png = encode(PNG_FORMAT_GA, 2, 1, ga, NULL, 0, &len);
    t = nb_png_parse_gray(png, len, "ga", &h, &w);
    CHECK(t != NULL);
    if (t) {
        CHECK_NEAR(t->data[0], 200 / 255.0 * 51 / 255.0, 1e-6);
        CHECK_NEAR(t->data[1], 1.0, 1e-6);
        nb_tensor_free(t);
    }
    free(png);
    /* 16-bit gray keeps its 16 bits. */
    const uint16_t g16[] = {0, 65535, 32768, 1};
    png = encode(PNG_FORMAT_LINEAR_Y, 4, 1, g16, NULL, 0, &len);
    t = nb_png_parse_gray(png, len, "g16", &h, &w);
    CHECK(t != NULL);
    if (t) {
        for (int i = 0; i < 4; i++) CHECK_NEAR(t->data[i], g16[i] / 65535.0, 1e-7);
        nb_tensor_free(t);
    }
    free(png);
    /* Palette. */
    const uint8_t cmap[] = {0, 0, 255, 255, 255, 0};
    const uint8_t idx[] = {0, 1, 1, 0};
    png = encode(PNG_FORMAT_RGB_COLORMAP, 2, 2, idx, cmap, 2, &len);
    t = nb_png_parse_gray(png, len, "palette", &h, &w);
    CHECK_MSG(t, "%s", nb_errmsg());
    if (t) {
        CHECK_NEAR(t->data[0], 0.114, 1e-6);
        CHECK_NEAR(t->data[1], 0.886, 1e-6);
        nb_tensor_free(t);
    }
    free(png);
}

/* Appends a chunk with its CRC; returns the new length. */
static size_t add_chunk(uint8_t *buf, size_t at, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t *c = buf + at;
    for (int k = 0; k < 4; k++) c[k] = (uint8_t)(n >> (24 - 8 * k));
    memcpy(c + 4, type, 4);
    if (n) memcpy(c + 8, data, n);
    uint32_t crc = (uint32_t)crc32(0, c + 4, 4 + n);
    for (int k = 0; k < 4; k++) c[8 + n + k] = (uint8_t)(crc >> (24 - 8 * k));
    return at + 12 + n;
}

/* A well-formed PNG claiming w x h 8-bit gray pixels whose image data is
 * one small zlib stream (far too little for a large image). */
static size_t fake_png(uint8_t *buf, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {137, 'P', 'N', 'G', 13, 10, 26, 10};
    memcpy(buf, sig, 8);
    uint8_t ihdr[13] = {0};
    for (int k = 0; k < 4; k++) ihdr[k] = (uint8_t)(w >> (24 - 8 * k)), ihdr[4 + k] = (uint8_t)(h >> (24 - 8 * k));
    ihdr[8] = 8; /* bit depth; colour type 0 = gray */
    size_t n = add_chunk(buf, 8, "IHDR", ihdr, 13);
    uint8_t raw[64] = {0}, z[128];
    uLongf zlen = sizeof z;
    compress(z, &zlen, raw, sizeof raw);
    n = add_chunk(buf, n, "IDAT", z, (uint32_t)zlen);
    return add_chunk(buf, n, "IEND", NULL, 0);
}

TEST(test_png_rejects_truncated_corrupt_and_huge) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/noise.png", dir);
    float img[32 * 32];
    for (int i = 0; i < 32 * 32; i++) img[i] = (float)nb_rng_uniform(nb_test_rng());
    CHECK(nb_png_write_gray(path, img, 32, 32) == 0);
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    CHECK(buf && len > 100);
    if (!buf) return;
    /* Cut anywhere after the signature: truncated, never a crash or a tensor. */
    size_t cuts[] = {8, 20, 40, 60, len / 2, len - 13, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        nb_tensor *t = nb_png_parse_gray(buf, cuts[k], "cut.png", NULL, NULL);
        CHECK_MSG(!t, "a PNG cut at %zu bytes was accepted", cuts[k]);
        CHECK_MSG(has(nb_errmsg(), "cut.png") && (has(nb_errmsg(), "truncated") || has(nb_errmsg(), "holds only")),
                  "cut at %zu: %s", cuts[k], nb_errmsg());
        nb_tensor_free(t);
    }
    nb_tensor *t = nb_png_parse_gray(buf, 5, "short.png", NULL, NULL);
    CHECK(!t && has(nb_errmsg(), "short.png") && has(nb_errmsg(), "not a PNG"));
    /* A flipped bit in the image data fails its CRC. */
    buf[len / 2] ^= 0x10;
    t = nb_png_parse_gray(buf, len, "flip.png", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "flip.png") && has(nb_errmsg(), "corrupt"), "%s", nb_errmsg());
    nb_tensor_free(t);
    free(buf);

    /* Sides beyond the limit, and sizes the data cannot hold. */
    uint8_t hdr[256];
    size_t n = fake_png(hdr, 7, 8); /* 8 rows of 1 + 7 bytes: exactly the 64 zeros */
    t = nb_png_parse_gray(hdr, n, "ok.png", NULL, NULL);
    CHECK_MSG(t && t->shape[0] == 8 && t->shape[1] == 7 && t->data[55] == 0.f, "%s", nb_errmsg());
    nb_tensor_free(t);
    n = fake_png(hdr, 20000, 10);
    t = nb_png_parse_gray(hdr, n, "wide.png", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "wide.png") && has(nb_errmsg(), "16384"), "%s", nb_errmsg());
    n = fake_png(hdr, 16000, 16000);
    t = nb_png_parse_gray(hdr, n, "lie.png", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "lie.png") && has(nb_errmsg(), "16000 x 16000"), "%s", nb_errmsg());

    /* A text file and a missing file. */
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    write_bytes(path, "epoch,loss\n1,0.5\n", 17);
    t = nb_png_read_gray(path, NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), path) && has(nb_errmsg(), "not a PNG"), "%s", nb_errmsg());
    snprintf(path, sizeof path, "%s/missing.png", dir);
    int64_t h = 7, w = 7;
    t = nb_png_read_gray(path, &h, &w);
    CHECK_MSG(!t && has(nb_errmsg(), path) && h == 0 && w == 0, "%s", nb_errmsg());
    rm_dir(dir);
}

/* An Adam7-interlaced PNG (written here with libpng) reads as the image its
 * seven passes make up; an IHDR cut right after its height is still judged
 * by its declared sides; the writer takes no side beyond the limit. */
static void write_interlaced_gray(const char *path, const uint8_t *px, int w, int h) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!f || !png || !info || setjmp(png_jmpbuf(png))) nb_fatal("test", "cannot write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_bytep rows[16];
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(px + (size_t)y * (size_t)w);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

TEST(test_png_interlaced_ihdr_at_the_end_and_write_limits) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/adam7.png", dir);
    enum { W = 11, H = 9 };
    uint8_t px[W * H];
    for (int i = 0; i < W * H; i++) px[i] = (uint8_t)((i % W) * 23 + (i / W) * 7);
    write_interlaced_gray(path, px, W, H);
    int64_t h = 0, w = 0;
    nb_tensor *t = nb_png_read_gray(path, &h, &w);
    CHECK_MSG(t && h == H && w == W, "%s", nb_errmsg());
    for (int i = 0; t && i < W * H; i++) CHECK_NEAR(t->data[i], px[i] / 255.0, 1e-7);
    nb_tensor_free(t);
    uint8_t hdr[256];
    fake_png(hdr, 20000, 10);
    t = nb_png_parse_gray(hdr, 24, "ihdr.png", NULL, NULL);
    CHECK_MSG(!t && has(nb_errmsg(), "ihdr.png") && has(nb_errmsg(), "at most 16384 on a side"), "%s", nb_errmsg());
    float *row = calloc(NB_PNG_MAX_SIDE + 1, sizeof *row);
    snprintf(path, sizeof path, "%s/wide.png", dir);
    CHECK(nb_png_write_gray(path, row, NB_PNG_MAX_SIDE + 1, 1) == -1 && has(nb_errmsg(), "16385 x 1"));
    CHECK(nb_png_write_gray(path, row, 1, NB_PNG_MAX_SIDE + 1) == -1 && has(nb_errmsg(), "1 x 16385"));
    CHECK(access(path, F_OK) != 0);
    free(row);
    rm_dir(dir);
}

TEST(test_png_write_errors) {
    const uint8_t rgb[3] = {1, 2, 3};
    CHECK(nb_png_write_rgb("/nonexistent-dir-nabla/x.png", rgb, 1, 1) == -1);
    CHECK(has(nb_errmsg(), "/nonexistent-dir-nabla/x.png"));
    CHECK(nb_png_write_rgb("/tmp/x.png", rgb, 0, 1) == -1 && has(nb_errmsg(), "0 x 1"));
    CHECK(nb_png_write_gray("/tmp/x.png", NULL, 1, 1) == -1);
}

/* --- figures ---------------------------------------------------------------- */

/* A decoded PNG: w x h RGB triples. */
typedef struct {
    uint8_t *rgb;
    int w, h;
} picture;

/* Reads a PNG back with libpng itself; rgb is NULL if it is not one. */
static picture read_png(const char *path) {
    picture p = {0};
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return p;
    img.format = PNG_FORMAT_RGB;
    p.w = (int)img.width, p.h = (int)img.height;
    p.rgb = malloc((size_t)p.w * p.h * 3);
    if (!png_image_finish_read(&img, NULL, p.rgb, 0, NULL)) {
        free(p.rgb);
        p.rgb = NULL;
    }
    return p;
}

/* Pixels within tol of colour c in each channel, in [x0, x1) x [y0, y1). */
static int64_t count_near(const picture *p, uint32_t c, int tol, int x0, int y0, int x1, int y1) {
    int64_t n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *q = p->rgb + 3 * ((size_t)y * p->w + x);
            n += abs(q[0] - (int)(c >> 16 & 255)) <= tol && abs(q[1] - (int)(c >> 8 & 255)) <= tol &&
                 abs(q[2] - (int)(c & 255)) <= tol;
        }
    return n;
}

/* Non-white pixels in a rectangle. */
static int64_t count_ink(const picture *p, int x0, int y0, int x1, int y1) {
    return (int64_t)(x1 - x0) * (y1 - y0) - count_near(p, 0xFFFFFF, 0, x0, y0, x1, y1);
}

/* The first bytes of a file. */
static bool starts_with(const char *path, const char *magic) {
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    bool ok = buf && len >= strlen(magic) && !memcmp(buf, magic, strlen(magic));
    free(buf);
    return ok;
}

static bool file_has(const char *path, const char *part) {
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    bool ok = buf && memmem(buf, len, part, strlen(part)) != NULL;
    free(buf);
    return ok;
}

/* Training curves: two series with a gap on the left, one on the right. */
static double cx[10], c_train[10], c_test[10], c_acc[10];
static const nb_series c_loss[2] = {{"train_loss", cx, c_train, 10, 0}, {"test_loss", cx, c_test, 10, 0}};
static const nb_series c_accs[1] = {{"test_accuracy", cx, c_acc, 10, 0x2CA02C}};
static void curves_data(void) {
    for (int i = 0; i < 10; i++) {
        cx[i] = i + 1;
        c_train[i] = 2.0 * exp(-0.3 * i);
        c_test[i] = 2.1 * exp(-0.25 * i) + 0.05;
        c_acc[i] = 0.6 + 0.03 * i;
    }
    c_test[4] = NAN; /* a gap */
}

/* One figure of each kind, as nb_figure_* draw them into a fresh figure. */
enum { K_LINES, K_BARS, K_BARS_LYING, K_HEATMAP, K_IMAGES, NKINDS };
static const char *const kind_name[NKINDS] = {"lines", "bars", "lying bars", "heat map", "images"};
static float heat[24 * 40], imgs[3][3 * 28 * 28];
static nb_figure *figure_of(int kind, int w, int h) {
    nb_figure *f = nb_figure_new(w, h, 1, kind == K_LINES ? 2 : 1, "a figure");
    if (!f) return NULL;
    int rc = -1;
    static const char *const short_names[4] = {"a", "b", "c", "d"};
    static const char *const long_names[3] = {"T-shirt/top", "Ankle boot", "Pullover"};
    static const double vals[4] = {0.5, 0.25, 0.125, 0.125};
    switch (kind) {
    case K_LINES:
        curves_data();
        rc = nb_figure_lines(f, 0, &(nb_lines){"loss", "epoch", "cross-entropy", c_loss, 2});
        if (!rc) rc = nb_figure_lines(f, 1, &(nb_lines){"accuracy", "epoch", NULL, c_accs, 1});
        break;
    case K_BARS: rc = nb_figure_bars(f, 0, &(nb_bars){.title = "p", .names = short_names, .values = vals, .n = 4}); break;
    case K_BARS_LYING:
        rc = nb_figure_bars(f, 0, &(nb_bars){.title = "p", .names = long_names, .values = vals, .n = 3, .vlabel = "probability"});
        break;
    case K_HEATMAP:
        for (int r = 0; r < 24; r++)
            for (int c = 0; c < 40; c++) heat[r * 40 + c] = (float)r; /* row 0 lowest */
        rc = nb_figure_heatmap(f, 0, &(nb_heatmap){.title = "map", .xlabel = "s", .ylabel = "band", .clabel = "dB",
                                                   .z = heat, .rows = 24, .cols = 40, .x1 = 2.0});
        break;
    case K_IMAGES: {
        nb_image im[3];
        for (int i = 0; i < 3; i++) {
            for (int k = 0; k < 3 * 28 * 28; k++) imgs[i][k] = (k % 28 > 6 && k % 28 < 20) ? 1.f : 0.f;
            im[i] = (nb_image){imgs[i], i == 2 ? 3 : 1, 28, 28, i == 1 ? "Sneaker" : "Bag", i == 1 ? 0xD62728 : 0};
        }
        rc = nb_figure_images(f, 0, &(nb_images){"samples", im, 3, 3});
        break;
    }
    }
    if (rc) {
        nb_figure_free(f);
        return NULL;
    }
    return f;
}

TEST(test_figure_each_kind_writes_png_svg_and_pdf) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    for (int kind = 0; kind < NKINDS; kind++) {
        int w = 700, h = 420;
        nb_figure *f = figure_of(kind, w, h);
        CHECK_MSG(f, "%s: %s", kind_name[kind], nb_errmsg());
        if (!f) continue;
        snprintf(path, sizeof path, "%s/k%d.png", dir, kind);
        CHECK_MSG(nb_figure_save(f, path) == 0, "%s: %s", kind_name[kind], nb_errmsg());
        picture p = read_png(path);
        CHECK_MSG(p.rgb && p.w == w && p.h == h, "%s: not a %d x %d PNG", kind_name[kind], w, h);
        if (p.rgb) {
            /* The corner is background; the middle of the plot area is drawn on. */
            CHECK(count_ink(&p, 0, h - 4, 4, h) == 0);
            int64_t ink = count_ink(&p, w / 4, h / 4, 3 * w / 4, 3 * h / 4);
            CHECK_MSG(ink > (kind == K_LINES ? 500 : 5000), "%s: %lld drawn pixels in the middle", kind_name[kind],
                      (long long)ink);
            /* Text: dark pixels of the title band. */
            CHECK_MSG(count_near(&p, 0x222222, 60, 0, 0, w, 30) > 50, "%s: no title", kind_name[kind]);
            free(p.rgb);
        }
        snprintf(path, sizeof path, "%s/k%d.svg", dir, kind);
        CHECK_MSG(nb_figure_save(f, path) == 0, "%s: %s", kind_name[kind], nb_errmsg());
        CHECK_MSG(starts_with(path, "<?xml") && file_has(path, "<svg"), "%s: not an SVG", kind_name[kind]);
        CHECK_MSG(file_has(path, "width=\"700px\""), "%s: the SVG is not 700 px wide", kind_name[kind]);
        snprintf(path, sizeof path, "%s/k%d.pdf", dir, kind);
        CHECK_MSG(nb_figure_save(f, path) == 0, "%s: %s", kind_name[kind], nb_errmsg());
        CHECK_MSG(starts_with(path, "%PDF-") && file_has(path, "%%EOF"), "%s: not a PDF", kind_name[kind]);
        nb_figure_free(f);
    }
    rm_dir(dir);
}

TEST(test_figure_lines_colours_in_their_charts) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/curves.png", dir);
    int w = 1000, h = 420;
    nb_figure *f = figure_of(K_LINES, w, h);
    CHECK_MSG(f && nb_figure_save(f, path) == 0, "%s", nb_errmsg());
    nb_figure_free(f);
    picture p = read_png(path);
    CHECK(p.rgb);
    if (!p.rgb) return;
    /* Lines are antialiased, but their cores are the series colours; the loss
     * colours stay in the left chart, accuracy's green in the right one. */
    CHECK(count_near(&p, nb_plot_color(0), 24, 0, 0, w / 2, h) > 300);
    CHECK(count_near(&p, nb_plot_color(1), 24, 0, 0, w / 2, h) > 300);
    CHECK(count_near(&p, 0x2CA02C, 24, w / 2, 0, w, h) > 300);
    CHECK(count_near(&p, 0x2CA02C, 24, 0, 0, w / 2, h) == 0);
    CHECK(count_near(&p, nb_plot_color(0), 24, w / 2, 0, w, h) == 0);
    CHECK(count_near(&p, 0xD62728, 40, 0, 0, w, h) == 0);
    free(p.rgb);
    rm_dir(dir);
}

TEST(test_figure_heatmap_row_order_and_colour_map) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/map.png", dir);
    float z[2 * 3] = {0, 0, 0, 1, 1, 1}; /* row 0 low, row 1 high */
    for (int top_down = 0; top_down < 2; top_down++) {
        nb_figure *f = nb_figure_new(400, 400, 1, 1, NULL);
        CHECK(f && nb_figure_heatmap(f, 0, &(nb_heatmap){.z = z, .rows = 2, .cols = 3, .top_down = top_down}) == 0);
        CHECK_MSG(nb_figure_save(f, path) == 0, "%s", nb_errmsg());
        nb_figure_free(f);
        picture p = read_png(path);
        CHECK(p.rgb);
        if (!p.rgb) continue;
        /* viridis: 0 is dark purple 0x440154, 1 is yellow 0xFDE725. */
        int64_t top_low = count_near(&p, 0x440154, 4, 100, 100, 250, 160), top_high = count_near(&p, 0xFDE725, 4, 100, 100, 250, 160);
        int64_t bot_low = count_near(&p, 0x440154, 4, 100, 250, 250, 300), bot_high = count_near(&p, 0xFDE725, 4, 100, 250, 250, 300);
        if (top_down) CHECK_MSG(top_low > 8000 && bot_high > 7000 && top_high == 0, "top_down %lld %lld", (long long)top_low, (long long)bot_high);
        else CHECK_MSG(top_high > 8000 && bot_low > 7000 && top_low == 0, "bottom-up %lld %lld", (long long)top_high, (long long)bot_low);
        free(p.rgb);
    }
    rm_dir(dir);
}

TEST(test_figure_lines_nan_single_point_constant_and_empty) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t.png", dir);
    int w = 640, h = 400;
    double one_x = 3, one_y = 0.25;
    double x[5] = {0, 1, 2, 3, 4}, cy[5] = {0.5, 0.5, 0.5, 0.5, 0.5};
    double bad[4] = {NAN, INFINITY, -INFINITY, NAN};
    double big[3] = {-1e308, 0, 1e308}, tiny[3] = {1e-310, 2e-310, 4e-310}, mixed[3] = {-1e-300, 5e-324, 1e300};
    const nb_series cases[][1] = {
        {{"single", &one_x, &one_y, 1, 0xD62728}},
        {{"constant", x, cy, 5, 0xD62728}},
        {{"constant", NULL, cy, 5, 0xD62728}}, /* x = 0..n-1 */
        {{"huge", x, big, 3, 0xD62728}},
        {{"tiny", x, tiny, 3, 0xD62728}},
        {{"mixed", big, mixed, 3, 0xD62728}},
        {{NULL, x, bad, 4, 0xD62728}}, /* nothing finite, unlabelled: axes and no line, no legend */
    };
    int ncases = (int)(sizeof cases / sizeof cases[0]);
    for (int k = 0; k < ncases; k++) {
        nb_figure *f = nb_figure_new(w, h, 1, 1, NULL);
        CHECK_MSG(f && nb_figure_lines(f, 0, &(nb_lines){"t", "x", NULL, cases[k], 1}) == 0, "case %d: %s", k, nb_errmsg());
        CHECK_MSG(nb_figure_save(f, path) == 0, "case %d: %s", k, nb_errmsg());
        nb_figure_free(f);
        picture p = read_png(path);
        CHECK(p.rgb && p.w == w);
        if (!p.rgb) continue;
        int64_t red = count_near(&p, 0xD62728, 24, 0, 0, w, h);
        if (k < ncases - 1) CHECK_MSG(red > 20, "case %d drew nothing", k);
        else CHECK_MSG(red == 0, "nothing finite, yet %lld red pixels", (long long)red);
        free(p.rgb);
    }
    nb_figure *f = nb_figure_new(w, h, 1, 2, NULL);
    CHECK(nb_figure_lines(f, 0, &(nb_lines){"no series"}) == 0);
    /* Bars of extreme, negative and missing values. */
    double v[5] = {1e308, -1e308, NAN, 0.5, -INFINITY};
    CHECK(nb_figure_bars(f, 1, &(nb_bars){.values = v, .n = 5, .color = 0xD62728}) == 0);
    CHECK_MSG(nb_figure_save(f, path) == 0, "%s", nb_errmsg());
    nb_figure_free(f);
    picture p = read_png(path);
    CHECK(p.rgb && count_near(&p, 0xD62728, 24, w / 2, 0, w, h) > 1000);
    free(p.rgb);
    rm_dir(dir);
}

/* Text from outside (a Latin-1 CSV header, a name cut inside a character)
 * is drawn with '?' for the bad bytes: cairo would stop drawing at it. */
TEST(test_figure_text_that_is_not_utf8) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t.png", dir);
    double y[3] = {1, 3, 2};
    nb_series s = {"caf\xe9 \xe2\x88", NULL, y, 3, 0xD62728};
    const char *names[2] = {"\xff\xfe", "ok \xc3\xa9"};
    double v[2] = {1, 2};
    nb_figure *f = nb_figure_new(900, 400, 1, 2, "r\xe9sum\xe9");
    CHECK(f && nb_figure_lines(f, 0, &(nb_lines){"\xc0\xaf", "\xed\xa0\x80", NULL, &s, 1}) == 0);
    CHECK_MSG(nb_figure_bars(f, 1, &(nb_bars){.names = names, .values = v, .n = 2, .color = 0x2CA02C}) == 0, "%s",
              nb_errmsg());
    CHECK_MSG(nb_figure_save(f, path) == 0, "%s", nb_errmsg());
    nb_figure_free(f);
    picture p = read_png(path);
    CHECK(p.rgb);
    if (p.rgb) {
        CHECK(count_near(&p, 0xD62728, 24, 0, 0, 450, 400) > 100);
        CHECK(count_near(&p, 0x2CA02C, 24, 450, 0, 900, 400) > 1000);
        free(p.rgb);
    }
    rm_dir(dir);
}

/* A chart call copies its data: the caller's arrays may change or go
 * before the figure is saved. */
TEST(test_figure_keeps_a_copy_of_the_data) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t.png", dir);
    double *y = malloc(sizeof(double) * 4);
    char *label = malloc(16);
    for (int i = 0; i < 4; i++) y[i] = i * i;
    snprintf(label, 16, "squares");
    nb_series s = {label, NULL, y, 4, 0xD62728};
    nb_figure *f = nb_figure_new(500, 400, 1, 1, NULL);
    CHECK(f && nb_figure_lines(f, 0, &(nb_lines){"t", NULL, NULL, &s, 1}) == 0);
    for (int i = 0; i < 4; i++) y[i] = NAN;
    free(y);
    free(label);
    CHECK_MSG(nb_figure_save(f, path) == 0, "%s", nb_errmsg());
    nb_figure_free(f);
    picture p = read_png(path);
    CHECK(p.rgb && count_near(&p, 0xD62728, 24, 0, 0, 500, 400) > 200);
    free(p.rgb);
    rm_dir(dir);
}

TEST(test_figure_errors_name_the_problem) {
    nb_figure *f = nb_figure_new(10, 400, 1, 1, NULL);
    CHECK(!f && has(nb_errmsg(), "10 x 400"));
    CHECK(!nb_figure_new(400, 400, 0, 1, NULL) && has(nb_errmsg(), "0 x 1"));
    f = nb_figure_new(200, 150, 2, 2, NULL);
    CHECK(f);
    double y[2] = {1, 2}, v[2] = {1, 2};
    nb_series s = {"s", NULL, y, 2, 0};
    /* Cells: out of range, too small for their labels, used twice. */
    CHECK(nb_figure_lines(f, 4, &(nb_lines){"t", NULL, NULL, &s, 1}) == -1 && has(nb_errmsg(), "cell 4"));
    CHECK(nb_figure_lines(f, -1, &(nb_lines){"t", NULL, NULL, &s, 1}) == -1 && has(nb_errmsg(), "cell -1"));
    CHECK(nb_figure_lines(f, 0, &(nb_lines){"t", "x", "y", &s, 1}) == -1 && has(nb_errmsg(), "too small"));
    nb_figure_free(f);
    f = nb_figure_new(600, 400, 1, 2, NULL);
    CHECK(nb_figure_bars(f, 0, &(nb_bars){.values = v, .n = 2}) == 0);
    CHECK(nb_figure_bars(f, 0, &(nb_bars){.values = v, .n = 2}) == -1 && has(nb_errmsg(), "already"));
    /* Bad arguments of each kind. */
    s.n = -1;
    CHECK(nb_figure_lines(f, 1, &(nb_lines){"t", NULL, NULL, &s, 1}) == -1 && has(nb_errmsg(), "n = -1"));
    CHECK(nb_figure_bars(f, 1, &(nb_bars){.values = v, .n = 0}) == -1 && has(nb_errmsg(), "got 0"));
    float z[4] = {0};
    CHECK(nb_figure_heatmap(f, 1, &(nb_heatmap){.z = z, .rows = 0, .cols = 4}) == -1 && has(nb_errmsg(), "0 x 4"));
    CHECK(nb_figure_heatmap(f, 1, &(nb_heatmap){.z = z, .rows = 2, .cols = 2, .zmin = 1, .zmax = 0}) == -1 &&
          has(nb_errmsg(), "zmin"));
    nb_image im = {z, 2, 2, 2, NULL, 0};
    CHECK(nb_figure_images(f, 1, &(nb_images){NULL, &im, 1, 0}) == -1 && has(nb_errmsg(), "2 channels"));
    /* The format follows the extension; anything else is refused by name. */
    CHECK(nb_figure_save(f, "/tmp/nabla-figure.gif") == -1 && has(nb_errmsg(), "'.gif'") &&
          has(nb_errmsg(), ".png, .svg or .pdf"));
    CHECK(nb_figure_save(f, "/tmp/nabla-figure.PNG") == -1 && has(nb_errmsg(), "'.PNG'"));
    CHECK(nb_figure_save(f, "/tmp/nabla.d/figure") == -1 && has(nb_errmsg(), "no extension"));
    CHECK(access("/tmp/nabla-figure.gif", F_OK) != 0);
    CHECK(nb_figure_save(f, "/nonexistent-dir-nabla/f.png") == -1 && has(nb_errmsg(), "/nonexistent-dir-nabla/f.png"));
    nb_figure_free(f);
}

TEST(test_figure_failed_save_keeps_the_earlier_file) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    const char *exts[3] = {"png", "svg", "pdf"};
    for (int e = 0; e < 3; e++) {
        snprintf(path, sizeof path, "%s/fig.%s", dir, exts[e]);
        nb_figure *a = figure_of(K_BARS, 400, 300), *b = figure_of(K_HEATMAP, 400, 300);
        CHECK(a && b && nb_figure_save(a, path) == 0);
        size_t n0, n1;
        uint8_t *before = nb_read_file(path, &n0);
        /* The rename of the finished file fails, then the buffer it is encoded into. */
        const char *faults[2] = {"rename:1:EIO", "alloc:1+"};
        for (int k = 0; k < 2; k++) {
            CHECK(nb__fault_set(faults[k]) == 0);
            int rc = nb_figure_save(b, path);
            long injected = nb__fault_injected();
            nb__fault_set(NULL);
            CHECK_MSG(rc == -1 && injected >= 1 && has(nb_errmsg(), path), "%s %s: rc %d, %s", exts[e], faults[k], rc,
                      nb_errmsg());
            CHECK(k == 0 || has(nb_errmsg(), "out of memory"));
            uint8_t *after = nb_read_file(path, &n1);
            CHECK_MSG(before && after && n0 == n1 && !memcmp(before, after, n0), "%s %s: the earlier file changed",
                      exts[e], faults[k]);
            free(after);
        }
        free(before);
        /* Nothing else is left in the folder: the temporary file was removed. */
        char cmd[256];
        snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq %d", dir, e + 1);
        CHECK_MSG(system(cmd) == 0, "a temporary file was left in %s", dir);
        nb_figure_free(a);
        nb_figure_free(b);
    }
    rm_dir(dir);
}

/* --- CSV ------------------------------------------------------------------- */

TEST(test_plot_csv_reads_logs) {
    const char *text = "epoch, train_loss,test_accuracy\r\n1,0.5,0.8\r\n\n2,0.25,\r\n3,nan,1e-2\n";
    nb_csv *c = nb_csv_parse(text, strlen(text), "log.csv");
    CHECK_MSG(c, "%s", nb_errmsg());
    if (!c) return;
    CHECK(c->ncols == 3 && c->nrows == 3);
    CHECK(!strcmp(c->names[0], "epoch") && !strcmp(c->names[1], "train_loss") && !strcmp(c->names[2], "test_accuracy"));
    CHECK(c->data[0] == 1 && c->data[1] == 0.5 && c->data[2] == 0.8);
    CHECK(c->data[3] == 2 && c->data[4] == 0.25 && isnan(c->data[5]));
    CHECK(isnan(c->data[7]) && c->data[8] == 1e-2);
    nb_csv_free(c);
    /* A header with no rows is a table of zero rows; a file without a final newline is fine. */
    c = nb_csv_parse("step,return", 11, "h.csv");
    CHECK(c && c->ncols == 2 && c->nrows == 0);
    nb_csv_free(c);
}

TEST(test_plot_csv_errors_name_line_and_column) {
    struct { const char *text, *want[3]; } cases[] = {
        {"1,0.5\n2,0.4\n", {"bad.csv:1:", "column 1", "header"}},
        {"epoch,loss\n1,0.5\n2,abc\n", {"bad.csv:3:", "column 2 (loss)", "'abc'"}},
        {"epoch,loss\n1,0.5,7\n", {"bad.csv:2:", "column 3", "more than"}},
        /* a row after the first (the one-pass way) too: its extra cells were dropped */
        {"epoch,loss\n1,0.5\n2,0.4,7\n", {"bad.csv:3:", "column 3", "more than"}},
        {"epoch,loss,acc\n\n1,0.5\n", {"bad.csv:3:", "column 3 (acc)", "2 columns"}},
        {"epoch,,acc\n", {"bad.csv:1:", "column 2", "empty column name"}},
        {"", {"bad.csv", "empty file", ""}},
        {"\n  \n", {"bad.csv", "blank", ""}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nb_csv *c = nb_csv_parse(cases[k].text, strlen(cases[k].text), "bad.csv");
        CHECK_MSG(!c, "case %zu accepted", k);
        for (int j = 0; j < 3; j++)
            CHECK_MSG(has(nb_errmsg(), cases[k].want[j]), "case %zu: '%s' lacks '%s'", k, nb_errmsg(), cases[k].want[j]);
        nb_csv_free(c);
    }
    CHECK(!nb_csv_read("/nonexistent-dir-nabla/log.csv") && has(nb_errmsg(), "/nonexistent-dir-nabla/log.csv"));
}

/* Cells and names: tabs are trimmed like spaces, "quoted" names lose their
 * quotes, a number is read whole (a cell "0.5x" is not 0.5), and a cell of
 * 400 characters or more is refused rather than cut. */
TEST(test_csv_cells_trimmed_quoted_whole_and_bounded) {
    const char *text = "\t\"epoch\",\t\"loss\" \n\t1,\t0.5\t\n";
    nb_csv *c = nb_csv_parse(text, strlen(text), "t.csv");
    CHECK_MSG(c, "%s", nb_errmsg());
    if (c) {
        CHECK(c->ncols == 2 && c->nrows == 1 && !strcmp(c->names[0], "epoch") && !strcmp(c->names[1], "loss"));
        CHECK(c->data[0] == 1 && c->data[1] == 0.5);
    }
    nb_csv_free(c);
    c = nb_csv_parse("epoch,loss\n1,0.5x\n", 18, "t.csv");
    CHECK_MSG(!c && has(nb_errmsg(), "t.csv:2:") && has(nb_errmsg(), "column 2 (loss)") && has(nb_errmsg(), "'0.5x'"),
              "%s", c ? "accepted" : nb_errmsg());
    nb_csv_free(c);
    char row[512];
    for (int len = 399; len <= 400; len++) {
        /* "1.000...0" of len characters: a number, whole (a float32 value
         * written out in full takes over a hundred digits) */
        int n = snprintf(row, sizeof row, "epoch,loss\n1,1.");
        for (int k = 0; k < len - 2; k++) row[n++] = '0';
        row[n++] = '\n', row[n] = 0;
        c = nb_csv_parse(row, strlen(row), "t.csv");
        if (len == 399) CHECK_MSG(c && c->data[1] == 1, "%s", c ? "wrong value" : nb_errmsg());
        else CHECK_MSG(!c && has(nb_errmsg(), "t.csv:2:") && has(nb_errmsg(), "column 2"), "400 characters accepted");
        nb_csv_free(c);
    }
}

/* Data files (NB_CSV_FINITE): inf, NaN and empty cells are refused with the
 * place; an empty first header cell is a header, not a header-less row. */
TEST(test_csv_data_flags_finite_and_header_optional) {
    const unsigned F = NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE;
    const char *bad[][2] = {{"a,b\n1,inf\n", "column 2 (b)"}, {"1,2\nnan,3\n", "d.csv:2: column 1: 'nan'"},
                            {"a,b\n1,\n", "column 2 (b)"}};
    for (int k = 0; k < 3; k++) {
        nb_csv *c = nb_csv_parse_ex(bad[k][0], strlen(bad[k][0]), "d.csv", F);
        CHECK_MSG(!c && has(nb_errmsg(), "d.csv:2:") && has(nb_errmsg(), bad[k][1]) && has(nb_errmsg(), "finite"),
                  "case %d: %s", k, c ? "accepted" : nb_errmsg());
        nb_csv_free(c);
    }
    nb_csv *c = nb_csv_parse_ex("1,2\n3,4\n", 8, "d.csv", F);
    CHECK(c && c->nrows == 2 && !strcmp(c->names[1], "column 2") && c->data[3] == 4);
    nb_csv_free(c);
    c = nb_csv_parse_ex(",1,2\n3,4,5\n", 11, "d.csv", NB_CSV_HEADER_OPTIONAL);
    CHECK_MSG(!c && has(nb_errmsg(), "d.csv:1:") && has(nb_errmsg(), "empty column name"), "%s",
              c ? "read as data" : nb_errmsg());
    nb_csv_free(c);
}

/* A log's first column is epoch, step or seconds by name, in any case, and
 * not a longer name that contains one ("epochs" is not "epoch"); or some
 * column's name holds loss, acc or return. */
TEST(test_csv_log_first_column_names) {
    const char *logs[] = {"EPOCH,lr\n1,0.1\n",       "Step,lr\n1,0.1\n",         "seconds,rss_mb\n1,20\n",
                          "iter,Train_LOSS\n1,2\n", "iter,mean_Return\n1,-1\n", "iter,test_ACCuracy\n1,0.5\n"};
    for (int k = 0; k < 6; k++) {
        nb_csv *c = nb_csv_parse_ex(logs[k], strlen(logs[k]), "log.csv", NB_CSV_LOG);
        CHECK_MSG(c, "log %d: %s", k, nb_errmsg());
        nb_csv_free(c);
    }
    /* numbers where the header is, hexadecimal ones too: not a log */
    const char *not_logs[] = {"epochs,lr\n1,0.1\n", "steps,lr\n1,0.1\n", "seconds_total,lr\n1,0.1\n", "0x1,2\n3,4\n"};
    for (int k = 0; k < 4; k++) {
        nb_csv *c = nb_csv_parse_ex(not_logs[k], strlen(not_logs[k]), "x.csv", NB_CSV_LOG);
        CHECK_MSG(!c && has(nb_errmsg(), "not a training log"), "case %d: %s", k, c ? "read as a log" : nb_errmsg());
        nb_csv_free(c);
    }
}
