/* plot_images.c — image grids: gray or RGB images, each as large as its
 * tile allows with its proportions, pixels kept sharp, captions under them. */
#include "plot.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t image_pix(const void *p, int x, int y) {
    const nb_image *im = p;
    size_t plane = (size_t)im->h * (size_t)im->w, at = (size_t)y * (size_t)im->w + (size_t)x;
    uint32_t out = 0;
    for (int ch = 0; ch < 3; ch++) {
        float v = im->data[(im->channels == 3 ? (size_t)ch * plane : 0) + at];
        v = v > 0.f ? (v < 1.f ? v : 1.f) : 0.f; /* NaN is black, as in nb_png_write_gray */
        out = out << 8 | (uint32_t)lroundf(v * 255.f);
    }
    return out;
}

int nb__plot_draw_images(cairo_t *cr, box b, const nb_images *c, bool dry) {
    int cols = c->cols > 0 ? c->cols : (int)ceil(sqrt((double)c->n));
    if (cols > c->n) cols = c->n;
    int rows = (c->n + cols - 1) / cols;
    bool captions = false;
    for (int i = 0; i < c->n; i++) captions |= c->images[i].caption && c->images[i].caption[0];
    cairo_save(cr);
    char buf[256];
    double y0 = b.y + PAD;
    if (c->title) {
        nb__plot_set_font(cr, FS_TITLE, true);
        double ch = nb__plot_cap_h(cr);
        nb__plot_text_at(cr, b.x + b.w / 2, y0 + ch, nb__plot_fit_text(cr, c->title, b.w - 2 * PAD, buf, sizeof buf), 0.5, C_TEXT);
        y0 += ch + 12;
    }
    nb__plot_set_font(cr, FS_TICK, false);
    double ch = nb__plot_cap_h(cr), cap = captions ? ch + 10 : 0, gap = 8;
    double tw = (b.w - 2 * PAD - (cols - 1) * gap) / cols, th = (b.y + b.h - PAD - y0 - (rows - 1) * gap) / rows;
    if (tw < 8 || th - cap < 8) {
        cairo_restore(cr);
        return nb_error("nb_figure_images: a cell of %.0f x %.0f is too small for %d x %d images; make the figure larger",
                        b.w, b.h, rows, cols);
    }
    if (dry) {
        cairo_restore(cr);
        return 0;
    }
    for (int i = 0; i < c->n; i++) {
        const nb_image *im = &c->images[i];
        double tx = b.x + PAD + (i % cols) * (tw + gap), ty = y0 + (i / cols) * (th + gap);
        /* The largest size with the image's proportions, centred in its tile. */
        double s = fmin(tw / im->w, (th - cap) / im->h), dw = s * im->w, dh = s * im->h;
        double x = tx + (tw - dw) / 2, y = ty + (th - cap - dh) / 2;
        if (s >= 1) { /* whole pixels keep the picture crisp in a PNG */
            dw = floor(dw), dh = floor(dh), x = floor(x), y = floor(y);
        }
        scale2 k = nb__plot_upscale(im->w, im->h, dw, dh);
        cairo_surface_t *img = nb__plot_pixel_surface(im->w, im->h, k, image_pix, im);
        if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
            cairo_surface_destroy(img);
            cairo_restore(cr);
            return nb_error("nb_figure_images: image %d: cairo: out of memory", i);
        }
        nb__plot_paint_pixels(cr, img, im->w, im->h, k, x, y, dw, dh);
        cairo_surface_destroy(img);
        nb__plot_set_color(cr, C_EDGE, 1);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, x - 0.5, y - 0.5, dw + 1, dh + 1);
        cairo_stroke(cr);
        if (im->caption && im->caption[0]) {
            const char *t = nb__plot_fit_text(cr, im->caption, tw, buf, sizeof buf);
            nb__plot_text_at(cr, tx + tw / 2, y + dh + 6 + ch, t, 0.5, im->caption_color ? im->caption_color & 0xFFFFFFu : C_TEXT);
        }
    }
    cairo_restore(cr);
    return nb__plot_cairo_check(cr, "image grid");
}

int nb_figure_images(nb_figure *f, int cell, const nb_images *c) {
    if (nb__plot_check_cell(f, cell, "nb_figure_images")) return -1;
    if (!c || c->n < 1 || c->n > 10000 || !c->images)
        return nb_error("nb_figure_images: expected 1..10000 images, got %d", c ? c->n : 0);
    for (int i = 0; i < c->n; i++) {
        const nb_image *im = &c->images[i];
        if (!im->data || (im->channels != 1 && im->channels != 3) || im->h < 1 || im->w < 1 ||
            im->h > NB_PNG_MAX_SIDE || im->w > NB_PNG_MAX_SIDE)
            return nb_error("nb_figure_images: image %d: expected 1 or 3 channels of 1..%d x 1..%d values, got %d "
                            "channels of %d x %d%s",
                            i, NB_PNG_MAX_SIDE, NB_PNG_MAX_SIDE, im->channels, im->h, im->w, im->data ? "" : " (no data)");
    }
    if (nb__plot_draw_images(f->measure, nb__plot_cell_box(f->measure, f, cell), c, true)) return -1;
    bool ok = true;
    nb_images copy = *c;
    copy.title = nb__plot_keep_str(f, c->title, &ok);
    nb_image *im = nb__plot_keep(f, c->images, sizeof(nb_image) * (size_t)c->n, &ok);
    for (int i = 0; ok && i < c->n; i++) {
        im[i].data = nb__plot_keep(f, im[i].data, sizeof(float) * (size_t)im[i].channels * (size_t)im[i].h * (size_t)im[i].w, &ok);
        im[i].caption = nb__plot_keep_str(f, im[i].caption, &ok);
    }
    copy.images = im;
    if (!ok) return nb_error("nb_figure_images: out of memory for a copy of the %d images", c->n);
    f->cells[cell].images = copy;
    f->cells[cell].kind = CELL_IMAGES;
    return 0;
}
