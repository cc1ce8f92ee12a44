/* plot_pixels.c — pixel pictures (heat maps, image grids) embedded at about
 * the size they are shown and painted with sharp pixels in every format. */
#include "plot.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The repetitions of each pixel of a w x h picture shown dw x dh (see
 * scale2 in plot.h). */
scale2 nb__plot_upscale(int w, int h, double dw, double dh) {
    scale2 k = {(int)fmax(1, fmin(ceil(dw / w), 8192.0 / w)), (int)fmax(1, fmin(ceil(dh / h), 8192.0 / h))};
    while ((k.x > 1 || k.y > 1) && (double)w * k.x * h * k.y > 4e6) {
        if (k.x > 1) k.x = (k.x + 1) / 2;
        if (k.y > 1) k.y = (k.y + 1) / 2;
    }
    return k;
}

/* An RGB24 image of w x h pixels, each repeated k.x x k.y times; pix(ctx,
 * x, y) gives the colour of source pixel (x, y), y = 0 the top row. */
cairo_surface_t *nb__plot_pixel_surface(int w, int h, scale2 k, uint32_t (*pix)(const void *, int, int), const void *ctx) {
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w * k.x, h * k.y);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) return img;
    unsigned char *d = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(d + (size_t)y * (size_t)k.y * (size_t)stride);
        for (int x = 0; x < w; x++) {
            uint32_t c = pix(ctx, x, y);
            for (int j = 0; j < k.x; j++) row[x * k.x + j] = c;
        }
        for (int j = 1; j < k.y; j++) memcpy(d + ((size_t)y * k.y + j) * (size_t)stride, row, (size_t)w * k.x * 4);
    }
    cairo_surface_mark_dirty(img);
    return img;
}

/* Paints img (w x h source pixels, repeated k times) over the rectangle. */
void nb__plot_paint_pixels(cairo_t *cr, cairo_surface_t *img, int w, int h, scale2 k, double x, double y, double dw, double dh) {
    cairo_save(cr);
    cairo_rectangle(cr, x, y, dw, dh);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, dw / (w * k.x), dh / (h * k.y));
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD); /* no faint seam at the edges */
    cairo_paint(cr);
    cairo_restore(cr);
}

