/* png.c — PNG images in (any PNG to a [h, w] gray tensor, or to a [3, h, w]
 * colour one for nb_image_parse) and out (RGB and gray, written atomically),
 * with libpng. */
#include "io.h"
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>

/* Deflate emits at least 2 bits per 258-byte match, so no zlib stream holds
 * more than 1032 times its size. An image declaring more raw bytes than its
 * file could possibly inflate to is truncated or lying, and is refused before
 * its buffer is allocated (a 60-byte file may claim 16384 x 16384 x 16 bit). */
#define NB_DEFLATE_MAX_RATIO 1032u

/* What the libpng callbacks share with the caller: the input (reads), the
 * output (writes) and the first error message. */
typedef struct png_ctx {
    const uint8_t *in;
    size_t in_len, in_pos;
    bool truncated;
    uint8_t *out;
    size_t out_len, out_cap;
    bool oom; /* an allocation of libpng (or of zlib under it) failed */
    char msg[160];
} png_ctx;

/* libpng's and zlib's own allocations go through the allocation seam too, so
 * that a failure inside the decoder is tested and reported as one. */
static png_voidp png_alloc(png_structp png, png_alloc_size_t n) {
    void *p = nb__malloc(n);
    png_ctx *c = png_get_mem_ptr(png);
    if (!p && c) c->oom = true;
    return p;
}
static void png_dealloc(png_structp png, png_voidp p) { (void)png, free(p); }

/* libpng requires an error handler that does not return: keep the message,
 * then unwind to the setjmp of the function that started the work. */
static void on_png_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    if (c && !c->msg[0]) snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

/* Warnings (bad ancillary chunks, e.g. an invalid gAMA) do not stop decoding;
 * libpng's default would print them to stderr, which a library must not. */
static void on_png_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void mem_read(png_structp png, png_bytep dst, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->in_len - c->in_pos) {
        c->truncated = true;
        png_error(png, "unexpected end of data");
    }
    memcpy(dst, c->in + c->in_pos, n);
    c->in_pos += n;
}

static void mem_write(png_structp png, png_bytep src, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->out_cap - c->out_len) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap - c->out_len < n) {
            if (cap > SIZE_MAX / 2) png_error(png, "encoded image too large");
            cap *= 2;
        }
        uint8_t *grown = nb__realloc(c->out, cap);
        if (!grown) png_error(png, "out of memory for the encoded image");
        c->out = grown;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, src, n);
    c->out_len += n;
}

static void mem_flush(png_structp png) { (void)png; }

/* Gray level in [0, 1] of one pixel of `ch` channels (1 gray, 2 gray+alpha,
 * 3 RGB, 4 RGBA) at 8 or 16 bits (big-endian, as PNG stores them). */
static float pixel_gray(const uint8_t *p, int ch, int depth16) {
    double v[4];
    for (int k = 0; k < ch; k++)
        v[k] = depth16 ? (double)(p[2 * k] << 8 | p[2 * k + 1]) / 65535.0 : (double)p[k] / 255.0;
    double luma = ch >= 3 ? 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2] : v[0];
    /* Over black, the composite is the colour scaled by its opacity. */
    if (ch == 2) luma *= v[1];
    if (ch == 4) luma *= v[3];
    return (float)luma;
}

/* Colour of one pixel as above, alpha composited over white: [0, 1] each. */
static void pixel_rgb(const uint8_t *p, int ch, int depth16, float rgb[3]) {
    double v[4];
    for (int k = 0; k < ch; k++)
        v[k] = depth16 ? (double)(p[2 * k] << 8 | p[2 * k + 1]) / 65535.0 : (double)p[k] / 255.0;
    double alpha = ch == 2 ? v[1] : ch == 4 ? v[3] : 1.0;
    for (int k = 0; k < 3; k++) {
        double c = ch >= 3 ? v[k] : v[0];
        rgb[k] = (float)(c * alpha + (1.0 - alpha));
    }
}

/* The decoder of both readers: a [h, w] gray image (alpha over black) or,
 * with rgb, a [3, h, w] colour image (alpha over white, at most
 * NB_IMAGE_MAX_PIXELS pixels). `what` must not be NULL. */
static nb_tensor *png_parse(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w, bool rgb) {
    if (h) *h = 0;
    if (w) *w = 0;
    if (len < 8 || png_sig_cmp(buf, 0, 8) != 0) {
        nb_error("%s: not a PNG file (%s)", what, len < 8 ? "shorter than the 8-byte PNG signature"
                                                          : "the first 8 bytes are not the PNG signature");
        return NULL;
    }
    /* Check the size in IHDR (always the first chunk) before libpng does,
     * to report it in plain words rather than as a libpng limit. */
    if (len >= 24 && !memcmp(buf + 12, "IHDR", 4)) {
        uint32_t iw = nb__be32(buf + 16), ih = nb__be32(buf + 20);
        if (iw > NB_PNG_MAX_SIDE || ih > NB_PNG_MAX_SIDE) {
            nb_error("%s: PNG declares %u x %u pixels (width x height); at most %d on a side is supported", what,
                     iw, ih, NB_PNG_MAX_SIDE);
            return NULL;
        }
    }
    /* The callbacks' state is on the heap: an automatic object changed
     * between setjmp and longjmp would be indeterminate after the jump. */
    png_ctx *ctx = nb__calloc(1, sizeof *ctx);
    png_structp png = ctx ? png_create_read_struct_2(PNG_LIBPNG_VER_STRING, ctx, on_png_error, on_png_warning, ctx,
                                                   png_alloc, png_dealloc) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        free(ctx);
        nb_error("%s: out of memory for the PNG decoder", what);
        return NULL;
    }
    ctx->in = buf;
    ctx->in_len = len;
    /* For the same reason, what is allocated after setjmp and freed on the
     * error path is held in volatile locals. */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    nb_tensor *volatile out = NULL;
    volatile int late_error = 0; /* 1: dimensions vs data, 2: out of memory, 3: too many pixels */
    volatile png_uint_32 vw = 0, vh = 0;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        nb_tensor_free(out);
        png_destroy_read_struct(&png, &info, NULL);
        if (late_error == 1)
            nb_error("%s: PNG declares %u x %u pixels but holds only %zu bytes: truncated or corrupt", what,
                     (unsigned)vw, (unsigned)vh, len);
        else if (late_error == 3)
            nb_error("%s: PNG declares %u x %u pixels (width x height): more than the %lld pixels supported", what,
                     (unsigned)vw, (unsigned)vh, (long long)NB_IMAGE_MAX_PIXELS);
        else if (late_error == 2 || ctx->oom)
            nb_error("%s: out of memory for a %u x %u image", what, (unsigned)vw, (unsigned)vh);
        else if (ctx->truncated)
            nb_error("%s: truncated PNG: the data ends after %zu bytes (%s)", what, len,
                     pixels ? "in the image data" : "before the image data");
        else
            nb_error("%s: corrupt PNG: %s", what, ctx->msg[0] ? ctx->msg : "libpng error");
        free(ctx);
        return NULL;
    }
    png_set_read_fn(png, ctx, mem_read);
    png_set_user_limits(png, NB_PNG_MAX_SIDE, NB_PNG_MAX_SIDE);
    png_read_info(png, info);

    png_uint_32 iw, ih;
    int depth, color, interlace;
    png_get_IHDR(png, info, &iw, &ih, &depth, &color, &interlace, NULL, NULL);
    vw = iw;
    vh = ih;
    int in_ch = png_get_channels(png, info);
    /* Lower bound on the inflated image data: every pixel bit (filter bytes
     * and interlace padding only add to it). */
    uint64_t raw_bytes = ((uint64_t)iw * ih * (uint64_t)in_ch * (uint64_t)depth + 7) / 8;
    if (raw_bytes > (uint64_t)len * NB_DEFLATE_MAX_RATIO) {
        late_error = 1;
        png_longjmp(png, 1);
    }
    if (rgb && (uint64_t)iw * ih > (uint64_t)NB_IMAGE_MAX_PIXELS) {
        late_error = 3;
        png_longjmp(png, 1);
    }
    /* Normalize to 8 or 16-bit gray, gray+alpha, RGB or RGBA: palettes become
     * RGB, 1/2/4-bit gray becomes 8-bit, a tRNS chunk becomes alpha. */
    png_set_expand(png);
    png_set_interlace_handling(png); /* Adam7 passes are merged by png_read_image */
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info), depth16 = png_get_bit_depth(png, info) == 16;
    size_t rowbytes = png_get_rowbytes(png, info);
    if (ch < 1 || ch > 4 || rowbytes < (size_t)iw * (size_t)ch * (depth16 ? 2u : 1u))
        png_error(png, "unexpected pixel layout after expansion");

    pixels = nb__malloc(ih > 0 ? rowbytes * ih : 1);
    rows = nb__malloc(sizeof(png_bytep) * (ih ? ih : 1));
    if (!pixels || !rows) {
        late_error = 2;
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < ih; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    /* Reading to IEND also checks the CRCs of the chunks after the image. */
    png_read_end(png, NULL);

    out = rgb ? nb__tensor_try_new(3, (const int64_t[]){3, (int64_t)ih, (int64_t)iw})
              : nb__tensor_try_new(2, (const int64_t[]){(int64_t)ih, (int64_t)iw});
    if (!out) {
        late_error = 2;
        png_longjmp(png, 1);
    }
    int stride = ch * (depth16 ? 2 : 1);
    size_t plane = (size_t)ih * iw;
    for (png_uint_32 y = 0; y < ih; y++) {
        const uint8_t *r = rows[y];
        float *o = out->data + (size_t)y * iw;
        if (!rgb) {
            for (png_uint_32 x = 0; x < iw; x++) o[x] = pixel_gray(r + (size_t)x * (size_t)stride, ch, depth16);
            continue;
        }
        for (png_uint_32 x = 0; x < iw; x++) {
            float c[3];
            pixel_rgb(r + (size_t)x * (size_t)stride, ch, depth16, c);
            o[x] = c[0], o[plane + x] = c[1], o[2 * plane + x] = c[2];
        }
    }
    nb_tensor *result = out;
    free(pixels);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    free(ctx);
    if (h) *h = (int64_t)ih;
    if (w) *w = (int64_t)iw;
    return result;
}

nb_tensor *nb_png_parse_gray(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w) {
    return png_parse(buf, len, what ? what : "PNG data", h, w, false);
}

nb_tensor *nb__png_parse_rgb(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w) {
    return png_parse(buf, len, what ? what : "PNG data", h, w, true);
}

nb_tensor *nb_png_read_gray(const char *path, int64_t *h, int64_t *w) {
    if (h) *h = 0;
    if (w) *w = 0;
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return NULL;
    nb_tensor *t = nb_png_parse_gray(buf, len, path, h, w);
    free(buf);
    return t;
}

static int check_write_args(const char *path, const void *pixels, int w, int h) {
    if (!path || !*path) return nb_error("PNG: no path to write to");
    if (!pixels) return nb_error("%s: no pixels to write", path);
    if (w < 1 || h < 1 || w > NB_PNG_MAX_SIDE || h > NB_PNG_MAX_SIDE)
        return nb_error("%s: cannot write a %d x %d image: each side must be 1..%d pixels", path, w, h,
                        NB_PNG_MAX_SIDE);
    return 0;
}

/* Encodes h rows of w pixels (`ch` channels of 8 bits) into memory, then
 * replaces `path` atomically, so a reader never sees half an image. */
static int write_png(const char *path, const uint8_t *pixels, int w, int h, int ch) {
    png_ctx *ctx = nb__calloc(1, sizeof *ctx); /* on the heap: see nb_png_parse_gray */
    png_structp png = ctx ? png_create_write_struct_2(PNG_LIBPNG_VER_STRING, ctx, on_png_error, on_png_warning, ctx,
                                                    png_alloc, png_dealloc) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(ctx);
        return nb_error("%s: out of memory for the PNG encoder", path);
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(ctx->out);
        png_destroy_write_struct(&png, &info);
        nb_error("%s: cannot encode PNG: %s", path,
                 ctx->oom ? "out of memory" : ctx->msg[0] ? ctx->msg : "libpng error");
        free(ctx);
        return -1;
    }
    rows = nb__malloc(sizeof(png_bytep) * (size_t)h);
    if (!rows) {
        ctx->oom = true;
        png_error(png, "out of memory for row pointers");
    }
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(pixels + (size_t)y * (size_t)w * (size_t)ch);
    png_set_write_fn(png, ctx, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, ch == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    int rc = nb_write_file_atomic(path, ctx->out, ctx->out_len);
    free(ctx->out);
    free(ctx);
    return rc;
}

int nb_png_write_rgb(const char *path, const uint8_t *rgb, int w, int h) {
    if (check_write_args(path, rgb, w, h)) return -1;
    return write_png(path, rgb, w, h, 3);
}

int nb_png_write_gray(const char *path, const float *img, int w, int h) {
    if (check_write_args(path, img, w, h)) return -1;
    uint8_t *g = nb__malloc((size_t)w * (size_t)h);
    if (!g) return nb_error("%s: out of memory for a %d x %d image", path, w, h);
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
        float v = img[i];
        /* NaN fails both comparisons and becomes black. */
        g[i] = v >= 1.f ? 255 : v > 0.f ? (uint8_t)(v * 255.f + 0.5f) : 0;
    }
    int rc = write_png(path, g, w, h, 1);
    free(g);
    return rc;
}
