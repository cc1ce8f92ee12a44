/* plot.c — figures drawn with cairo (line charts, bar charts, heat maps and
 * image grids, in a grid of cells under a title), written as PNG, SVG or PDF
 * by the file's extension. This file holds the figure: its cells, the
 * copies of the charts it keeps, and saving; each chart kind is drawn in
 * its own plot_*.c (see plot.h). The logs the curves come from are read by
 * csv.c. */
#include "plot.h"
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- figures -------------------------------------------------------------- */

/* The height of the band the figure's title takes, 0 without one. */
static double title_band(cairo_t *cr, const char *title) {
    if (!title || !title[0]) return 0;
    nb__plot_set_font(cr, FS_FIGURE, true);
    return PAD + 4 + nb__plot_cap_h(cr) + 8;
}

box nb__plot_cell_box(cairo_t *cr, const nb_figure *f, int cell) {
    double top = title_band(cr, f->title), cw = (double)f->w / f->cols, ch = (f->h - top) / f->rows;
    return (box){(cell % f->cols) * cw, top + (cell / f->cols) * ch, cw, ch};
}

nb_figure *nb_figure_new(int width, int height, int rows, int cols, const char *title) {
    if (width < 16 || height < 16 || width > NB_PNG_MAX_SIDE || height > NB_PNG_MAX_SIDE) {
        nb_error("nb_figure_new: expected a size of 16..%d x 16..%d, got %d x %d", NB_PNG_MAX_SIDE, NB_PNG_MAX_SIDE,
                 width, height);
        return NULL;
    }
    if (rows < 1 || cols < 1 || rows > 64 || cols > 64) {
        nb_error("nb_figure_new: expected 1..64 rows and columns of cells, got %d x %d", rows, cols);
        return NULL;
    }
    nb_figure *f = nb__calloc(1, sizeof *f);
    fig_cell *cells = nb__calloc((size_t)rows * (size_t)cols, sizeof *cells);
    char *t = title ? nb__malloc(strlen(title) + 1) : NULL;
    if (!f || !cells || (title && !t)) {
        free(f);
        free(cells);
        free(t);
        nb_error("nb_figure_new: out of memory");
        return NULL;
    }
    if (t) memcpy(t, title, strlen(title) + 1);
    *f = (nb_figure){.w = width, .h = height, .rows = rows, .cols = cols, .title = t, .cells = cells};
    f->probe = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    f->measure = cairo_create(f->probe);
    if (nb__plot_cairo_check(f->measure, "nb_figure_new")) {
        nb_figure_free(f);
        return NULL;
    }
    return f;
}

void nb_figure_free(nb_figure *f) {
    if (!f) return;
    if (f->measure) cairo_destroy(f->measure);
    if (f->probe) cairo_surface_destroy(f->probe);
    for (int i = 0; i < f->nblocks; i++) free(f->blocks[i]);
    free(f->blocks);
    free(f->cells);
    free(f->title);
    free(f);
}

/* Checks the cell argument of a chart call. */
int nb__plot_check_cell(const nb_figure *f, int cell, const char *fn) {
    if (!f) return nb_error("%s: no figure", fn);
    if (cell < 0 || cell >= f->rows * f->cols)
        return nb_error("%s: cell %d is outside the %d x %d cells of the figure (0..%d)", fn, cell, f->rows, f->cols,
                        f->rows * f->cols - 1);
    if (f->cells[cell].kind != CELL_EMPTY) return nb_error("%s: cell %d already holds a chart", fn, cell);
    return 0;
}

/* A copy of n bytes at src owned by the figure (NULL stays NULL); clears
 * *ok when out of memory. */
void *nb__plot_keep(nb_figure *f, const void *src, size_t n, bool *ok) {
    if (!src || !*ok) return NULL;
    if (f->nblocks == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        void **grown = nb__realloc(f->blocks, sizeof(void *) * (size_t)cap);
        if (!grown) return *ok = false, NULL;
        f->blocks = grown;
        f->cap = cap;
    }
    void *p = nb__malloc(n ? n : 1);
    if (!p) return *ok = false, NULL;
    memcpy(p, src, n);
    return f->blocks[f->nblocks++] = p;
}

const char *nb__plot_keep_str(nb_figure *f, const char *s, bool *ok) { return s ? nb__plot_keep(f, s, strlen(s) + 1, ok) : NULL; }


/* --- output ------------------------------------------------------------------------ */

/* The encoded file grows in memory, then replaces the old one atomically. */
typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *src, unsigned int n) {
    membuf *m = closure;
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + n) {
            if (cap > SIZE_MAX / 2) return m->oom = true, CAIRO_STATUS_WRITE_ERROR;
            cap *= 2;
        }
        uint8_t *grown = nb__realloc(m->data, cap);
        if (!grown) return m->oom = true, CAIRO_STATUS_WRITE_ERROR;
        m->data = grown;
        m->cap = cap;
    }
    memcpy(m->data + m->len, src, n);
    m->len += n;
    return CAIRO_STATUS_SUCCESS;
}

/* Draws the whole figure onto cr. */
static int draw_figure(cairo_t *cr, const nb_figure *f) {
    nb__plot_set_color(cr, 0xFFFFFF, 1);
    cairo_paint(cr);
    if (f->title && f->title[0]) {
        char buf[512];
        nb__plot_set_font(cr, FS_FIGURE, true);
        const char *t = nb__plot_fit_text(cr, f->title, f->w - 2 * PAD, buf, sizeof buf);
        nb__plot_text_at(cr, f->w / 2.0, PAD + 4 + nb__plot_cap_h(cr), t, 0.5, C_TEXT);
    }
    for (int i = 0; i < f->rows * f->cols; i++) {
        const fig_cell *c = &f->cells[i];
        box b = nb__plot_cell_box(cr, f, i);
        int rc = c->kind == CELL_LINES     ? nb__plot_draw_lines(cr, b, &c->lines, false)
                 : c->kind == CELL_BARS    ? nb__plot_draw_bars(cr, b, &c->bars, false)
                 : c->kind == CELL_HEATMAP ? nb__plot_draw_heatmap(cr, b, &c->heatmap, false)
                 : c->kind == CELL_IMAGES  ? nb__plot_draw_images(cr, b, &c->images, false)
                                           : 0;
        if (rc) return -1;
    }
    return nb__plot_cairo_check(cr, "figure");
}

int nb_figure_save(nb_figure *f, const char *path) {
    if (!f || !path || !*path) return nb_error("nb_figure_save: expected a figure and a file name");
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    const char *ext = dot && (!slash || dot > slash) ? dot + 1 : NULL;
    enum { PNG, SVG, PDF } fmt;
    if (ext && !strcmp(ext, "png")) fmt = PNG;
    else if (ext && !strcmp(ext, "svg")) fmt = SVG;
    else if (ext && !strcmp(ext, "pdf")) fmt = PDF;
    else if (ext)
        return nb_error("%s: unknown picture format '.%s': expected a file name ending in .png, .svg or .pdf", path, ext);
    else return nb_error("%s: no extension to choose the format by: expected .png, .svg or .pdf", path);
    membuf m = {0};
    cairo_surface_t *s = NULL;
    switch (fmt) {
    case PNG: s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, f->w, f->h); break;
    case SVG:
        s = cairo_svg_surface_create_for_stream(mem_write, &m, f->w, f->h);
        cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX); /* the sizes are pixels, as in the PNG */
        break;
    case PDF:
        s = cairo_pdf_surface_create_for_stream(mem_write, &m, f->w, f->h);
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "nabla");
        if (f->title) cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, f->title);
        break;
    }
    cairo_t *cr = cairo_create(s);
    int rc = draw_figure(cr, f);
    cairo_destroy(cr);
    cairo_status_t st = CAIRO_STATUS_SUCCESS;
    if (!rc && fmt == PNG) st = cairo_surface_write_to_png_stream(s, mem_write, &m);
    cairo_surface_finish(s); /* SVG and PDF write their last bytes here */
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (rc) rc = nb_error("%s: %s", path, nb_errmsg());
    else if (m.oom) rc = nb_error("%s: out of memory for the encoded picture", path);
    else if (st != CAIRO_STATUS_SUCCESS) rc = nb_error("%s: cairo: %s", path, cairo_status_to_string(st));
    else rc = nb_write_file_atomic(path, m.data, m.len);
    free(m.data);
    return rc;
}
