/* test_png.c — PNG reading and writing (round trips, colour conversion,
 * broken files), chart rendering and the CSV log reader. */
#include "test.h"
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

TEST(test_png_write_errors) {
    const uint8_t rgb[3] = {1, 2, 3};
    CHECK(nb_png_write_rgb("/nonexistent-dir-nabla/x.png", rgb, 1, 1) == -1);
    CHECK(has(nb_errmsg(), "/nonexistent-dir-nabla/x.png"));
    CHECK(nb_png_write_rgb("/tmp/x.png", rgb, 0, 1) == -1 && has(nb_errmsg(), "0 x 1"));
    CHECK(nb_png_write_gray("/tmp/x.png", NULL, 1, 1) == -1);
}

/* --- charts --------------------------------------------------------------- */

static int64_t count_color(const uint8_t *rgb, int w, int h, uint32_t c) {
    int64_t n = 0;
    for (int64_t i = 0; i < (int64_t)w * h; i++)
        n += rgb[3 * i] == (c >> 16 & 255) && rgb[3 * i + 1] == (c >> 8 & 255) && rgb[3 * i + 2] == (c & 255);
    return n;
}

TEST(test_plot_draws_series_colours_and_round_trips_as_png) {
    char dir[64], path[128];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/curves.png", dir);
    double x[10], train[10], test[10], acc[10];
    for (int i = 0; i < 10; i++) {
        x[i] = i + 1;
        train[i] = 2.0 * exp(-0.3 * i);
        test[i] = 2.1 * exp(-0.25 * i) + 0.05;
        acc[i] = 0.6 + 0.03 * i;
    }
    test[4] = NAN; /* a gap */
    nb_series loss[2] = {{"train_loss", x, train, 10, 0}, {"test_loss", x, test, 10, 0}};
    nb_series accs[1] = {{"test_accuracy", x, acc, 10, 0x2CA02C}};
    nb_panel panels[2] = {{"loss", "epoch", loss, 2}, {"accuracy", "epoch", accs, 1}};
    int w = 1000, h = 420;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    CHECK_MSG(nb_plot_lines(rgb, w, h, "mnist", panels, 2) == 0, "%s", nb_errmsg());
    /* Lines are antialiased, but their cores are the exact series colours. */
    CHECK(count_color(rgb, w, h, nb_plot_color(0)) > 300);
    CHECK(count_color(rgb, w, h, nb_plot_color(1)) > 300);
    CHECK(count_color(rgb, w, h, 0x2CA02C) > 300);
    CHECK(count_color(rgb, w, h, 0xD62728) == 0);
    /* The loss colours stay in the left half, accuracy in the right. */
    int64_t left = 0, right = 0;
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            const uint8_t *p = rgb + 3 * ((size_t)y * w + xx);
            if (p[0] == 0x2C && p[1] == 0xA0 && p[2] == 0x2C) *(xx < w / 2 ? &left : &right) += 1;
        }
    CHECK(left == 0 && right > 300);
    CHECK(nb_png_write_rgb(path, rgb, w, h) == 0);
    /* Read back with libpng itself: the file holds exactly those pixels. */
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_file(&img, path));
    img.format = PNG_FORMAT_RGB;
    uint8_t *back = malloc((size_t)w * h * 3);
    CHECK(img.width == (png_uint_32)w && img.height == (png_uint_32)h);
    CHECK(png_image_finish_read(&img, NULL, back, 0, NULL));
    CHECK(memcmp(back, rgb, (size_t)w * h * 3) == 0);
    free(back);
    free(rgb);
    rm_dir(dir);
}

TEST(test_plot_handles_nan_single_point_constant_and_empty) {
    int w = 640, h = 400;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    double one_x = 3, one_y = 0.25;
    double cx[5] = {0, 1, 2, 3, 4}, cy[5] = {0.5, 0.5, 0.5, 0.5, 0.5};
    double bad[4] = {NAN, INFINITY, -INFINITY, NAN};
    double big[3] = {-1e308, 0, 1e308}, tiny[3] = {1e-310, 2e-310, 4e-310}, mixed[3] = {-1e-300, 5e-324, 1e300};
    const nb_series cases[][1] = {
        {{"single", &one_x, &one_y, 1, 0xD62728}},
        {{"constant", cx, cy, 5, 0xD62728}},
        {{"constant", NULL, cy, 5, 0xD62728}},  /* x = 0..n-1 */
        {{"huge", cx, big, 3, 0xD62728}},
        {{"tiny", cx, tiny, 3, 0xD62728}},
        {{"mixed", big, mixed, 3, 0xD62728}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nb_panel p = {"t", "x", cases[k], 1};
        CHECK_MSG(nb_plot_lines(rgb, w, h, NULL, &p, 1) == 0, "case %zu: %s", k, nb_errmsg());
        CHECK_MSG(count_color(rgb, w, h, 0xD62728) > 20, "case %zu drew nothing", k);
    }
    /* Only non-finite values, no series at all: axes and no line. */
    nb_series none = {NULL, cx, bad, 4, 0xD62728}; /* unlabelled: no legend sample either */
    nb_panel p = {"empty", "x", &none, 1};
    CHECK(nb_plot_lines(rgb, w, h, "empty", &p, 1) == 0);
    CHECK(count_color(rgb, w, h, 0xD62728) == 0);
    p.nseries = 0;
    CHECK(nb_plot_lines(rgb, w, h, NULL, &p, 1) == 0);
    /* Bad arguments and a canvas too small for the labels. */
    CHECK(nb_plot_lines(rgb, 60, 40, "x", &p, 1) == -1 && has(nb_errmsg(), "too small"));
    CHECK(nb_plot_lines(rgb, w, h, NULL, &p, 0) == -1);
    nb_series neg = {"neg", cx, cy, -1, 0};
    p = (nb_panel){"neg", NULL, &neg, 1};
    CHECK(nb_plot_lines(rgb, w, h, NULL, &p, 1) == -1);
    free(rgb);
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
