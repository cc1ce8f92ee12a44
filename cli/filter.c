/* filter.c — `nabla filter`: an image through one small kernel, each colour
 * channel on its own, by the library's conv2d op: the notes' blur and edge
 * kernels (§4.2), a sharpen kernel, or any kernel from a CSV file
 * (nb_image_filter and nb_image_kernel do the work). */
#include "cli.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KERNEL_MAX_SIDE 99

/* A kernel file: rows of comma-separated numbers, all rows as long as the
 * first, odd sides (a centre pixel), blank lines and lines starting with '#'
 * skipped. Errors name the file, line and column. */
static float *read_kernel(const char *cmd, const char *path, int *kh, int *kw) {
    size_t len;
    char *text = (char *)nb_read_file(path, &len);
    if (!text) {
        nb_cli_fail(cmd, "--kernel: %s", nb_errmsg());
        return NULL;
    }
    float *k = malloc(sizeof(float) * KERNEL_MAX_SIDE * KERNEL_MAX_SIDE);
    int rows = 0, cols = 0, first_line = 0;
    const char *p = text, *stop = text + len;
    p += nb_utf8_bom(p, len);
    bool ok = k != NULL;
    if (!k) nb_cli_fail(cmd, "out of memory");
    for (int line = 1; ok && p < stop; line++) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        if (!eol) eol = stop;
        const char *e = eol;
        if (e > p && e[-1] == '\r') e--;
        const char *t = p;
        while (t < e && isspace((unsigned char)*t)) t++;
        if (t == e || *t == '#') {
            p = eol + 1;
            continue;
        }
        if (memchr(p, 0, (size_t)(e - p))) {
            ok = false;
            nb_cli_fail(cmd, "%s:%d: a NUL byte: not a kernel file (rows of comma-separated numbers)", path, line);
            break;
        }
        if (rows == KERNEL_MAX_SIDE) {
            ok = false;
            nb_cli_fail(cmd, "%s:%d: more than %d rows; a kernel is at most %d x %d", path, line, KERNEL_MAX_SIDE,
                        KERNEL_MAX_SIDE, KERNEL_MAX_SIDE);
            break;
        }
        int n = 0;
        for (const char *c = p; ok;) {
            const char *comma = memchr(c, ',', (size_t)(e - c));
            const char *ce = comma ? comma : e;
            double v;
            if (n == KERNEL_MAX_SIDE) {
                ok = false;
                nb_cli_fail(cmd, "%s:%d:%d: more than %d numbers in a row; a kernel is at most %d x %d", path, line,
                            (int)(c - p) + 1, KERNEL_MAX_SIDE, KERNEL_MAX_SIDE, KERNEL_MAX_SIDE);
                break;
            }
            /* Finite as the float32 the kernel holds: 1e39 would be inf. */
            if (!nb_cli_parse_number(c, ce, &v) || !isfinite((float)v)) {
                ok = false;
                int w = (int)(ce - c);
                nb_cli_fail(cmd, "%s:%d:%d: '%.*s' is not a finite number in float32 (or a fraction like 1/9)", path, line,
                            (int)(c - p) + 1, w > 40 ? 40 : w, c);
                break;
            }
            k[rows * KERNEL_MAX_SIDE + n++] = (float)v;
            if (!comma) break;
            c = comma + 1;
        }
        if (!ok) break;
        if (rows == 0) {
            cols = n;
            first_line = line;
        } else if (n != cols) {
            ok = false;
            nb_cli_fail(cmd, "%s:%d: %d number%s, but line %d has %d: a kernel is a rectangle", path, line, n,
                        n == 1 ? "" : "s", first_line, cols);
            break;
        }
        rows++;
        p = eol + 1;
    }
    free(text);
    if (ok && rows == 0) {
        ok = false;
        nb_cli_fail(cmd, "%s: no numbers: a kernel file holds rows of comma-separated numbers", path);
    }
    if (ok && (rows % 2 == 0 || cols % 2 == 0)) {
        ok = false;
        nb_cli_fail(cmd, "%s: the kernel is %d x %d (rows x columns); each side must be odd, so that it has a centre",
                    path, rows, cols);
    }
    if (!ok) {
        free(k);
        return NULL;
    }
    /* Packed to rows x cols. */
    for (int i = 0; i < rows; i++) memmove(k + i * cols, k + i * KERNEL_MAX_SIDE, sizeof(float) * (size_t)cols);
    *kh = rows;
    *kw = cols;
    return k;
}

static int cmd_filter(int argc, char **argv) {
    const char *cmd = "filter", *kernel = NULL, *out = NULL, *pad = "edge";
    bool flip = false, absval = false, json = false;
    long threads = 0;
    nb_flag flags[] = {
        {"--kernel", NB_FLAG_STR, &kernel, "blur, edge, sharpen (the notes' two kernels and a 3 x 3 sharpen), or a CSV "
                                           "file of rows of numbers with odd sides",
         .meta = "K", .def = "required"},
        {"--out", NB_FLAG_OUTPUT, &out, "the filtered image; .png or .jpg/.jpeg picks the format",
         .range = "png|jpg|jpeg", .meta = "OUT", .def = "required"},
        {"--flip", NB_FLAG_BOOL, &flip, "turn the kernel by 180 degrees first: a true convolution (eq. 9.4) instead "
                                        "of the cross-correlation (eq. 9.6) that conv layers compute"},
        {"--pad", NB_FLAG_CHOICE, &pad, "outside the image: edge repeats the border pixels (a flat image stays "
                                        "flat), zero is what a conv layer's padding does",
         .range = "edge|zero"},
        {"--abs", NB_FLAG_BOOL, &absval, "write the absolute value of the response (an edge kernel's negative "
                                         "responses would otherwise be clamped to black)"},
        NB_FLAG_JSON(&json),
        NB_FLAG_THREADS(&threads, "all cores"),
    };
    nb_cli cli = {
        .cmd = cmd,
        .args = "IMAGE ",
        .about =
            "Filters a PNG or JPEG image (read by its content) with one kernel, each colour channel on its own,\n"
            "through the library's conv2d op, and writes the result with the input's size (\"same\" padding).\n"
            "Values are in [0, 1]; the response is clamped to [0, 1] when written.\n"
            "\n"
            "What deep learning calls convolution is cross-correlation (eq. 9.6 in docs/equations.md):\n"
            "  S(i, j) = sum_m sum_n I(i + m, j + n) K(m, n),\n"
            "the kernel laid on the image as written. A true convolution (eq. 9.4) flips the kernel in both\n"
            "directions first, S(i, j) = sum I(i - m, j - n) K(m, n); --flip does that. Symmetric kernels (blur,\n"
            "sharpen) give the same either way; the edge kernel changes sign.\n"
            "\n"
            "Kernels (notes §4.2):\n"
            "  blur     5 x 5, 1/9 on the centre 3 x 3: the mean of each pixel's neighbourhood\n"
            "  edge     5 x 5, -1 and 1 side by side on the centre row: I(i, j) - I(i, j - 1), large at\n"
            "           vertical edges and 0 on flat areas (use --abs to see both directions)\n"
            "  sharpen  3 x 3, 5 in the centre and -1 on the four neighbours\n"
            "  FILE.csv rows of comma-separated numbers (fractions like 1/9 allowed), odd sides up to 99",
        .flags = flags,
        .nflags = (int)(sizeof flags / sizeof flags[0]),
        .min_pos = 1,
        .max_pos = 1,
    };
    const char *pos[1];
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    if (!kernel) return nb_cli_usage_error(&cli, "--kernel is required (blur, edge, sharpen or FILE.csv)");
    if (!out) return nb_cli_usage_error(&cli, "--out is required (OUT.png or OUT.jpg)");
    nb_cli_threads(cmd, threads, 0);

    int kh, kw;
    float *k = NULL;
    const float *named = nb_image_kernel(kernel, &kh, &kw);
    if (named) {
        k = malloc(sizeof(float) * (size_t)(kh * kw));
        if (!k) return nb_cli_fail(cmd, "out of memory");
        memcpy(k, named, sizeof(float) * (size_t)(kh * kw));
    } else if (nb_cli_has_ext(kernel, "csv")) {
        if (!(k = read_kernel(cmd, kernel, &kh, &kw))) return 1;
    } else {
        return nb_cli_usage_error(&cli, "--kernel '%s': expected blur, edge, sharpen or a FILE.csv", kernel);
    }
    int64_t h, w;
    nb_tensor *img = nb_image_read(pos[0], &h, &w);
    if (!img) {
        free(k);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    double t0 = nb_cli_now();
    nb_tensor *y = nb_image_filter(img, k, kh, kw, flip, !strcmp(pad, "edge"));
    if (!y) {
        nb_tensor_free(img);
        free(k);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int64_t clamped = 0;
    for (int64_t i = 0; i < y->size; i++) {
        float v = y->data[i];
        lo = fmin(lo, v), hi = fmax(hi, v), sum += v;
        if (absval) v = fabsf(v);
        clamped += v < 0.f || v > 1.f;
        y->data[i] = v;
    }
    double seconds = nb_cli_now() - t0;
    int rc = 0;
    if (nb_image_write(out, y)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
    } else if (json) {
        printf("{\"image\": ");
        nb_cli_json_string(stdout, pos[0]);
        printf(", \"out\": ");
        nb_cli_json_string(stdout, out);
        printf(", \"kernel\": ");
        nb_cli_json_string(stdout, kernel);
        printf(", \"kernel_rows\": %d, \"kernel_cols\": %d, \"flip\": %s, \"pad\": \"%s\", \"abs\": %s, "
               "\"height\": %lld, \"width\": %lld, \"min\": %.9g, \"max\": %.9g, \"mean\": %.9g, "
               "\"clamped_fraction\": %.9g, \"seconds\": %.6f}\n",
               kh, kw, flip ? "true" : "false", pad, absval ? "true" : "false", (long long)h, (long long)w, lo, hi,
               sum / (double)y->size, (double)clamped / (double)y->size, seconds);
    } else {
        printf("%s: %lld x %lld, kernel %s (%d x %d%s), response in [%.4g, %.4g]%s\n", out, (long long)w, (long long)h,
               kernel, kh, kw, flip ? ", flipped" : "", lo, hi,
               clamped ? " (clamped to [0, 1] in the image)" : "");
    }
    nb_tensor_free(y);
    nb_tensor_free(img);
    free(k);
    return rc;
}

NB_COMMAND("filter", cmd_filter, "filter a PNG or JPEG image with the notes' blur or edge kernel, or any kernel")
