/* plot_heatmap.c — heat maps: a matrix of values as the colours of a
 * colour map (viridis, magma, gray), with axes and a colour bar. */
#include "plot.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Colour maps as 9 evenly spaced samples of matplotlib's, interpolated
 * linearly in RGB: viridis and magma are perceptually uniform and read in
 * gray print; magma suits spectrograms. */
static uint32_t colormap(nb_colormap m, double t) {
    static const uint32_t viridis[9] = {0x440154, 0x472C7A, 0x3B518B, 0x2C718E, 0x21908D,
                                        0x27AD81, 0x5CC863, 0xAADC32, 0xFDE725};
    static const uint32_t magma[9] = {0x000004, 0x1C1044, 0x4F127B, 0x812581, 0xB5367A,
                                      0xE55964, 0xFB8761, 0xFEC287, 0xFCFDBF};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    if (m == NB_CMAP_GRAY) {
        uint32_t g = (uint32_t)lround(t * 255);
        return g << 16 | g << 8 | g;
    }
    const uint32_t *p = m == NB_CMAP_MAGMA ? magma : viridis;
    double u = t * 8;
    int i = u >= 8 ? 7 : (int)u;
    double w = u - i;
    uint32_t out = 0;
    for (int sh = 16; sh >= 0; sh -= 8) {
        double a = p[i] >> sh & 255, z = p[i + 1] >> sh & 255;
        out |= (uint32_t)lround(a + (z - a) * w) << sh;
    }
    return out;
}

typedef struct heat_ctx {
    const nb_heatmap *c;
    double lo, hi;
} heat_ctx;

static uint32_t heat_pix(const void *p, int x, int y) {
    const heat_ctx *h = p;
    int r = h->c->top_down ? y : h->c->rows - 1 - y;
    float v = h->c->z[(size_t)r * (size_t)h->c->cols + (size_t)x];
    if (!isfinite(v)) return C_MISSING;
    return colormap(h->c->cmap, h->hi > h->lo ? (v - h->lo) / (h->hi - h->lo) : 0.5);
}

static uint32_t bar_pix(const void *p, int x, int y) {
    const heat_ctx *h = p;
    return colormap(h->c->cmap, 1 - (y + 0.5) / 256.0);
}

int nb__plot_draw_heatmap(cairo_t *cr, box b, const nb_heatmap *c, bool dry) {
    heat_ctx h = {c, c->zmin, c->zmax};
    if (c->zmin == c->zmax) { /* the colours span the data */
        h.lo = INFINITY, h.hi = -INFINITY;
        for (size_t i = 0; i < (size_t)c->rows * (size_t)c->cols; i++)
            if (isfinite(c->z[i])) h.lo = fmin(h.lo, c->z[i]), h.hi = fmax(h.hi, c->z[i]);
        if (!(h.lo <= h.hi)) h.lo = 0, h.hi = 1; /* nothing finite */
    }
    /* The colour bar's ticks, measured before the plot is placed beside it. */
    axis az;
    nb__plot_set_font(cr, FS_TICK, false);
    double cbar_h = b.h - 2 * PAD - 60;
    nb__plot_make_axis(cr, &az, h.lo, h.hi, true, 0, cbar_h > 40 ? cbar_h : 40, 3.5 * FS_TICK, false, false);
    double zlw = 0;
    for (int k = 0; k < az.nticks; k++) zlw = fmax(zlw, nb__plot_text_w(cr, az.label[k]));
    const double cb_gap = 14, cb_w = 14;
    nb__plot_set_font(cr, FS_LABEL, false);
    double label_h = nb__plot_cap_h(cr) * 1.35;
    bool same_x = c->x0 == c->x1, same_y = c->y0 == c->y1;
    /* Without extents the axes count cells, each index at its cell's centre,
     * row 0 where it is drawn. */
    double X0 = same_x ? -0.5 : c->x0, X1 = same_x ? c->cols - 0.5 : c->x1;
    double Y0 = same_y ? (c->top_down ? c->rows - 0.5 : -0.5) : c->y0;
    double Y1 = same_y ? (c->top_down ? -0.5 : c->rows - 0.5) : c->y1;
    axes_spec s = {.title = c->title, .xlabel = c->xlabel, .ylabel = c->ylabel, .have = true,
                   .xmin = fmin(X0, X1), .xmax = fmax(X0, X1), .ymin = fmin(Y0, Y1), .ymax = fmax(Y0, Y1),
                   .nogrid = true, .right_extra = cb_gap + cb_w + TICK + GAP + zlw + (c->clabel ? label_h + 6 : 0)};
    frame fr;
    cairo_save(cr);
    int rc = nb__plot_frame_layout(cr, b, &s, &fr);
    if (rc || dry) {
        cairo_restore(cr);
        return rc;
    }
    /* The axes span the extents exactly; x0 > x1 (or y0 > y1) runs the axis the other way. */
    nb__plot_make_axis(cr, &fr.ax, fmin(X0, X1), fmax(X0, X1), true, 0, fr.right - fr.left, 8 * FS_TICK, true, same_x);
    nb__plot_make_axis(cr, &fr.ay, fmin(Y0, Y1), fmax(Y0, Y1), true, 0, fr.bottom - fr.top, 3.5 * FS_TICK, false, same_y);
    if (X0 > X1) fr.ax.lo = X0, fr.ax.hi = X1;
    if (Y0 > Y1) fr.ay.lo = Y0, fr.ay.hi = Y1;
    double pw = fr.right - fr.left, ph = fr.bottom - fr.top;
    scale2 k = nb__plot_upscale(c->cols, c->rows, pw, ph);
    cairo_surface_t *img = nb__plot_pixel_surface(c->cols, c->rows, k, heat_pix, &h);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(img);
        cairo_restore(cr);
        return nb_error("nb_figure_heatmap: cairo: out of memory for a %d x %d map", c->cols, c->rows);
    }
    nb__plot_frame_draw(cr, b, &s, &fr);
    nb__plot_paint_pixels(cr, img, c->cols, c->rows, k, fr.left, fr.top, pw, ph);
    cairo_surface_destroy(img);
    nb__plot_frame_border(cr, &fr);

    /* The colour bar: the map's 256 steps, top = hi, with its own ticks. */
    double bx = fr.right + cb_gap, btop = fr.top, bbot = fr.bottom;
    img = nb__plot_pixel_surface(1, 256, (scale2){1, 1}, bar_pix, &h);
    if (cairo_surface_status(img) == CAIRO_STATUS_SUCCESS)
        nb__plot_paint_pixels(cr, img, 1, 256, (scale2){1, 1}, bx, btop, cb_w, bbot - btop);
    cairo_surface_destroy(img);
    nb__plot_set_color(cr, C_AXIS, 1);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, floor(bx) + 0.5, floor(btop) + 0.5, floor(cb_w), floor(bbot) - floor(btop));
    cairo_stroke(cr);
    nb__plot_set_font(cr, FS_TICK, false);
    double ch = nb__plot_cap_h(cr), span = h.hi > h.lo ? h.hi - h.lo : 1;
    for (int i = 0; i < az.nticks; i++) {
        if (az.tick[i] < h.lo - 1e-9 * span || az.tick[i] > h.hi + 1e-9 * span) continue;
        double y = floor(bbot - (az.tick[i] - h.lo) / span * (bbot - btop)) + 0.5;
        nb__plot_set_color(cr, C_AXIS, 1);
        cairo_move_to(cr, bx + cb_w, y);
        cairo_line_to(cr, bx + cb_w + TICK, y);
        cairo_stroke(cr);
        nb__plot_text_at(cr, bx + cb_w + TICK + GAP, y + ch / 2, az.label[i], 0, C_TEXT);
    }
    if (c->clabel) {
        char buf[256];
        nb__plot_set_font(cr, FS_LABEL, false);
        const char *t = nb__plot_fit_text(cr, c->clabel, bbot - btop, buf, sizeof buf);
        nb__plot_text_up(cr, bx + cb_w + TICK + GAP + zlw + 6 + nb__plot_cap_h(cr), (btop + bbot) / 2, t, C_TEXT);
    }
    cairo_restore(cr);
    return nb__plot_cairo_check(cr, "heat map");
}

int nb_figure_heatmap(nb_figure *f, int cell, const nb_heatmap *c) {
    if (nb__plot_check_cell(f, cell, "nb_figure_heatmap")) return -1;
    if (!c || !c->z || c->rows < 1 || c->cols < 1 || c->rows > NB_PNG_MAX_SIDE || c->cols > NB_PNG_MAX_SIDE)
        return nb_error("nb_figure_heatmap: expected 1..%d rows and columns of values, got %d x %d", NB_PNG_MAX_SIDE,
                        c ? c->rows : 0, c ? c->cols : 0);
    if (c->cmap < NB_CMAP_VIRIDIS || c->cmap > NB_CMAP_GRAY)
        return nb_error("nb_figure_heatmap: unknown colour map %d", (int)c->cmap);
    if (!isfinite(c->x0) || !isfinite(c->x1) || !isfinite(c->y0) || !isfinite(c->y1) || !isfinite(c->zmin) ||
        !isfinite(c->zmax) || c->zmin > c->zmax)
        return nb_error("nb_figure_heatmap: expected finite extents and zmin <= zmax, got x %g..%g, y %g..%g, z %g..%g",
                        c->x0, c->x1, c->y0, c->y1, c->zmin, c->zmax);
    if (nb__plot_draw_heatmap(f->measure, nb__plot_cell_box(f->measure, f, cell), c, true)) return -1;
    bool ok = true;
    nb_heatmap copy = *c;
    copy.title = nb__plot_keep_str(f, c->title, &ok);
    copy.xlabel = nb__plot_keep_str(f, c->xlabel, &ok);
    copy.ylabel = nb__plot_keep_str(f, c->ylabel, &ok);
    copy.clabel = nb__plot_keep_str(f, c->clabel, &ok);
    copy.z = nb__plot_keep(f, c->z, sizeof(float) * (size_t)c->rows * (size_t)c->cols, &ok);
    if (!ok) return nb_error("nb_figure_heatmap: out of memory for a copy of the %d x %d map", c->rows, c->cols);
    f->cells[cell].heatmap = copy;
    f->cells[cell].kind = CELL_HEATMAP;
    return 0;
}
