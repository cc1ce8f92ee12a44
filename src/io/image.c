/* image.c — colour images: PNG or JPEG in (told apart by content) as a
 * [3, h, w] tensor, out by the extension, and resampling with pixman. */
#include "io.h"
#include <math.h>
#include <pixman.h>
#include <stdlib.h>
#include <strings.h>

nb_tensor *nb_image_parse(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w) {
    if (h) *h = 0;
    if (w) *w = 0;
    if (!what) what = "image data";
    if (!buf) len = 0;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (len >= 8 && !memcmp(buf, png_sig, 8)) return nb__png_parse_rgb(buf, len, what, h, w);
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return nb__jpeg_parse(buf, len, what, h, w);
    nb_error("%s: not a PNG or JPEG image: it looks like %s", what,
             len ? nb_file_kind_name(nb_sniff(buf, len)) : "an empty file");
    return NULL;
}

nb_tensor *nb_image_read(const char *path, int64_t *h, int64_t *w) {
    if (h) *h = 0;
    if (w) *w = 0;
    if (!path || !*path) {
        nb_error("image: no path to read");
        return NULL;
    }
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return NULL;
    nb_tensor *t = nb_image_parse(buf, len, path, h, w);
    free(buf);
    return t;
}

/* One sample in [0, 1] to 8 bits; out-of-range values are clamped and NaN
 * fails both comparisons and becomes 0. */
static uint8_t to_byte(float v) { return v >= 1.f ? 255 : v > 0.f ? (uint8_t)(v * 255.f + 0.5f) : 0; }

int nb_image_write(const char *path, const nb_tensor *img) {
    if (!path || !*path) return nb_error("image: no path to write to");
    if (!img) return nb_error("%s: no image to write", path);
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && slash && dot < slash) dot = NULL;
    bool png = dot && !strcasecmp(dot, ".png");
    bool jpeg = dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
    if (!png && !jpeg)
        return nb_error("%s: unknown image extension '%s': use .png, .jpg or .jpeg", path, dot ? dot : "(none)");
    int64_t ch, ih, iw;
    if (img->ndim == 2) {
        ch = 1, ih = img->shape[0], iw = img->shape[1];
    } else if (img->ndim == 3 && (img->shape[0] == 1 || img->shape[0] == 3)) {
        ch = img->shape[0], ih = img->shape[1], iw = img->shape[2];
    } else {
        char shape[64];
        int at = 0;
        for (int k = 0; k < img->ndim && at < (int)sizeof shape - 24; k++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%lld", k ? ", " : "", (long long)img->shape[k]);
        shape[at] = 0;
        return nb_error("%s: cannot write a [%s] tensor as an image: it must be [3, h, w], [1, h, w] or [h, w]", path,
                        shape);
    }
    if (ih < 1 || iw < 1 || ih > NB_IMAGE_MAX_SIDE || iw > NB_IMAGE_MAX_SIDE)
        return nb_error("%s: cannot write a %lld x %lld image: each side must be 1..%d pixels", path, (long long)iw,
                        (long long)ih, NB_IMAGE_MAX_SIDE);
    float *copy;
    const float *v = nb__host_values(img, &copy); /* a GPU image is read back */
    if (!v) return nb_error("%s: out of memory for a %lld x %lld image", path, (long long)iw, (long long)ih);
    int rc;
    if (png && ch == 1) {
        rc = nb_png_write_gray(path, v, (int)iw, (int)ih);
    } else {
        size_t plane = (size_t)ih * (size_t)iw;
        uint8_t *px = nb__malloc(plane * (size_t)ch);
        if (!px) {
            free(copy);
            return nb_error("%s: out of memory for a %lld x %lld image", path, (long long)iw, (long long)ih);
        }
        for (size_t i = 0; i < plane; i++)
            for (int64_t k = 0; k < ch; k++) px[i * (size_t)ch + (size_t)k] = to_byte(v[(size_t)k * plane + i]);
        rc = png ? nb_png_write_rgb(path, px, (int)iw, (int)ih) : nb__jpeg_write(path, px, (int)iw, (int)ih, (int)ch, 92);
        free(px);
    }
    free(copy);
    return rc;
}

/* pixman's separable convolution filter, as cairo builds it for a scaled
 * image: each output pixel is the input under a box as wide as the scale
 * (source pixels per output pixel, or less than one when enlarging) seen
 * through a tent (linear interpolation between pixel centres), sampled at
 * 2^NB_RESIZE_PHASE_BITS sub-pixel phases. Both kernels are nonnegative, so a
 * constant stays constant and a monotone row stays monotone (no ringing,
 * unlike Lanczos); the box averages every input pixel when shrinking (no
 * aliasing, unlike bilinear sampling). Edges are extended (pixman's
 * REPEAT_PAD), not faded to black.
 *
 * pixman designs the kernels (pixman_filter_create_separable_convolution);
 * they are applied here, one axis at a time, with pixman's geometry (output
 * pixel centres mapped to the input, rounded to the middle of their phase),
 * in float with the taps renormalized in double. pixman's own float path
 * would do the same arithmetic but sums each tap truncated to 16-bit fixed
 * point (1e-3 off for a constant when shrinking 30 times, and steps against
 * a gentle gradient) and clamps to [0, 1]; here values outside [0, 1] pass. */
#define NB_RESIZE_PHASE_BITS 4

/* The taps of one axis: for each of n output pixels, the first input index
 * (before clamping to the edge) and width weights. */
typedef struct axis_taps {
    int width;
    int64_t *first;   /* [n] */
    float *weight;    /* [n * width] */
} axis_taps;

/* Output pixel i of n covers input coordinate (i + 0.5) * in / n; the kernel
 * is pixman's for that position's phase (params: width, then `phases`
 * kernels of `width` taps, 16.16 fixed point). */
static int axis_plan(axis_taps *a, const pixman_fixed_t *params, int width, int phases, int64_t in, int64_t n) {
    a->width = width;
    a->first = nb__malloc((size_t)n * sizeof *a->first);
    a->weight = nb__malloc((size_t)n * (size_t)width * sizeof *a->weight);
    if (!a->first || !a->weight) return -1;
    double scale = (double)in / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double x = ((double)i + 0.5) * scale, ix = floor(x);
        int p = (int)((x - ix) * phases);
        if (p >= phases) p = phases - 1;
        /* pixman: the phase's centre, less (width - 1) / 2, less one 65536th, floored. */
        double centre = ix + ((double)p + 0.5) / phases;
        a->first[i] = (int64_t)floor(centre - 1.0 / 65536 - (width - 1) / 2.0);
        const pixman_fixed_t *k = params + (size_t)p * (size_t)width;
        double sum = 0;
        for (int t = 0; t < width; t++) sum += k[t];
        for (int t = 0; t < width; t++) a->weight[(size_t)i * (size_t)width + (size_t)t] = (float)(k[t] / sum);
    }
    return 0;
}

static void axis_free(axis_taps *a) {
    free(a->first);
    free(a->weight);
}

/* out[j] = sum of the taps of output j over in[k], k clamped to 0..len-1
 * (the edge extended). */
static void axis_apply(const axis_taps *a, int64_t nout, const float *in, int64_t len, float *out) {
    for (int64_t j = 0; j < nout; j++) {
        const float *wt = a->weight + (size_t)j * (size_t)a->width;
        double acc = 0;
        for (int t = 0; t < a->width; t++) {
            int64_t k = a->first[j] + t;
            k = k < 0 ? 0 : k >= len ? len - 1 : k;
            acc += (double)wt[t] * in[k];
        }
        out[j] = (float)acc;
    }
}

nb_tensor *nb_image_resize(const nb_tensor *img, int64_t nh, int64_t nw) {
    if (nb__host_only("image resize", "the image", img)) return NULL;
    if (!img || img->ndim != 3 || img->shape[0] < 1 || img->shape[1] < 1 || img->shape[2] < 1) {
        nb_error("image resize: expected a [C, h, w] image");
        return NULL;
    }
    int64_t C = img->shape[0], h = img->shape[1], w = img->shape[2];
    if (nh < 1 || nw < 1 || nh > NB_IMAGE_MAX_SIDE || nw > NB_IMAGE_MAX_SIDE || nh * nw > NB_IMAGE_MAX_PIXELS ||
        h > NB_IMAGE_MAX_SIDE || w > NB_IMAGE_MAX_SIDE) {
        nb_error("image resize: cannot resample %lld x %lld to %lld x %lld (width x height): each side must be "
                 "1..%d pixels and at most %lld in all", (long long)w, (long long)h, (long long)nw, (long long)nh,
                 NB_IMAGE_MAX_SIDE, (long long)NB_IMAGE_MAX_PIXELS);
        return NULL;
    }
    int nparams = 0;
    pixman_fixed_t *params = pixman_filter_create_separable_convolution(
        &nparams, pixman_double_to_fixed((double)w / (double)nw), pixman_double_to_fixed((double)h / (double)nh),
        PIXMAN_KERNEL_LINEAR, PIXMAN_KERNEL_LINEAR, PIXMAN_KERNEL_BOX, PIXMAN_KERNEL_BOX, NB_RESIZE_PHASE_BITS,
        NB_RESIZE_PHASE_BITS);
    axis_taps ax = {0}, ay = {0};
    nb_tensor *out = nb__tensor_try_new(3, (const int64_t[]){C, nh, nw}), *result = NULL;
    float *mid = nb__malloc((size_t)(h * nw) * sizeof(float)); /* one channel resampled along x */
    double *acc = nb__malloc((size_t)nw * sizeof(double));     /* one output row being summed */
    int phases = 1 << NB_RESIZE_PHASE_BITS, cw = params ? pixman_fixed_to_int(params[0]) : 0,
        ch = params ? pixman_fixed_to_int(params[1]) : 0;
    if (!params || !out || !mid || !acc || nparams != 4 + phases * (cw + ch) ||
        axis_plan(&ax, params + 4, cw, phases, w, nw) || axis_plan(&ay, params + 4 + phases * cw, ch, phases, h, nh)) {
        nb_error("image resize: out of memory for %lld x %lld to %lld x %lld", (long long)w, (long long)h,
                 (long long)nw, (long long)nh);
        goto done;
    }
    for (int64_t c = 0; c < C; c++) {
        const float *src = img->data + (size_t)(c * h * w);
        for (int64_t y = 0; y < h; y++) axis_apply(&ax, nw, src + y * w, w, mid + y * nw);
        /* Along y a whole row at a time (rows of `mid` are contiguous). */
        float *dst = out->data + (size_t)(c * nh * nw);
        for (int64_t y = 0; y < nh; y++) {
            for (int64_t x = 0; x < nw; x++) acc[x] = 0;
            const float *wt = ay.weight + (size_t)y * (size_t)ay.width;
            for (int t = 0; t < ay.width; t++) {
                int64_t k = ay.first[y] + t;
                k = k < 0 ? 0 : k >= h ? h - 1 : k;
                const float *row = mid + k * nw;
                for (int64_t x = 0; x < nw; x++) acc[x] += (double)wt[t] * row[x];
            }
            for (int64_t x = 0; x < nw; x++) dst[y * nw + x] = (float)acc[x];
        }
    }
    result = out;
    out = NULL;
done:
    axis_free(&ax);
    axis_free(&ay);
    free(params);
    free(mid);
    free(acc);
    nb_tensor_free(out);
    return result;
}

/* The notes' two 5 x 5 kernels (§4.2), exactly as printed: a mean over the
 * centre 3 x 3 ("blurring images, accomplished by taking simple averages")
 * and the difference of two neighbours on the centre row ("edge
 * detection"). */
static const float KERNEL_BLUR[25] = {
    0, 0,       0,       0,       0, /**/
    0, 1.f / 9, 1.f / 9, 1.f / 9, 0, /**/
    0, 1.f / 9, 1.f / 9, 1.f / 9, 0, /**/
    0, 1.f / 9, 1.f / 9, 1.f / 9, 0, /**/
    0, 0,       0,       0,       0,
};
static const float KERNEL_EDGE[25] = {
    0, 0,  0, 0, 0, /**/
    0, 0,  0, 0, 0, /**/
    0, -1, 1, 0, 0, /**/
    0, 0,  0, 0, 0, /**/
    0, 0,  0, 0, 0,
};
/* The identity plus the negated 4-neighbour Laplacian: detail doubled, flat
 * areas unchanged (the weights sum to 1). */
static const float KERNEL_SHARPEN[9] = {0, -1, 0, -1, 5, -1, 0, -1, 0};

const float *nb_image_kernel(const char *name, int *kh, int *kw) {
    if (!name) return NULL;
    int side = !strcmp(name, "blur") || !strcmp(name, "edge") ? 5 : !strcmp(name, "sharpen") ? 3 : 0;
    if (!side) return NULL;
    if (kh) *kh = side;
    if (kw) *kw = side;
    return name[0] == 'b' ? KERNEL_BLUR : name[0] == 'e' ? KERNEL_EDGE : KERNEL_SHARPEN;
}

nb_tensor *nb_image_filter(const nb_tensor *img, const float *kernel, int kh, int kw, bool flip, bool edge_pad) {
    if (nb__host_only("image filter", "the image", img)) return NULL;
    if (!img || img->ndim != 3 || img->shape[0] < 1 || img->shape[1] < 1 || img->shape[2] < 1) {
        nb_error("image filter: expected a [C, h, w] image");
        return NULL;
    }
    if (!kernel || kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0 || kh > 99 || kw > 99) {
        nb_error("image filter: the kernel is %d x %d; each side must be odd, 1..99", kh, kw);
        return NULL;
    }
    int64_t C = img->shape[0], h = img->shape[1], w = img->shape[2];
    int ph = kh / 2, pw = kw / 2;
    /* In a private arena, so that the caller's arena tensors stay valid and
     * nothing is left behind; no tape. */
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    bool grad = nb_set_grad_enabled(false);
    nb_tensor *kt = nb__new(4, (const int64_t[]){1, 1, kh, kw});
    for (int i = 0; i < kh * kw; i++) kt->data[i] = flip ? kernel[kh * kw - 1 - i] : kernel[i];
    /* The channels as a batch of one-channel images, so one [1, 1, kh, kw]
     * kernel filters each. Edge padding is a copy with the border repeated
     * and the op pads nothing; zero padding is the op's own. */
    int64_t H = edge_pad ? h + 2 * ph : h, W = edge_pad ? w + 2 * pw : w;
    nb_tensor *x = nb__new(4, (const int64_t[]){C, 1, H, W});
    float *xd = x->data;
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < H; i++) {
            int64_t si = edge_pad ? i - ph : i;
            si = si < 0 ? 0 : si >= h ? h - 1 : si;
            for (int64_t j = 0; j < W; j++) {
                int64_t sj = edge_pad ? j - pw : j;
                sj = sj < 0 ? 0 : sj >= w ? w - 1 : sj;
                xd[(c * H + i) * W + j] = img->data[(c * h + si) * w + sj];
            }
        }
    nb_conv2d_opts o = {0};
    if (!edge_pad) o = (nb_conv2d_opts){.pad_top = ph, .pad_bottom = ph, .pad_left = pw, .pad_right = pw};
    nb_tensor *y = nb_conv2d(x, kt, NULL, &o); /* [C, 1, h, w]: the layout of [C, h, w] */
    nb_tensor *out = nb__tensor_try_new(3, (const int64_t[]){C, h, w});
    if (out) memcpy(out->data, y->data, sizeof(float) * (size_t)(C * h * w));
    else nb_error("image filter: out of memory for a %lld x %lld x %lld image", (long long)C, (long long)h, (long long)w);
    nb_set_grad_enabled(grad);
    nb_arena_use(old);
    nb_arena_free(arena);
    return out;
}
