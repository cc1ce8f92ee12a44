/* plot_text.c — the text of the figures: colours and the DejaVu font,
 * labels made valid UTF-8 (cairo gives up for good at an invalid string),
 * measured, anchored, shortened with an ellipsis or turned upright; and the
 * colour cycle of series. */
#include "plot.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void nb__plot_set_color(cairo_t *cr, uint32_t c, double alpha) {
    cairo_set_source_rgba(cr, (c >> 16 & 255) / 255.0, (c >> 8 & 255) / 255.0, (c & 255) / 255.0, alpha);
}

void nb__plot_set_font(cairo_t *cr, double size, bool bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Copies s into buf as valid UTF-8: each byte that does not belong to a
 * well-formed sequence becomes '?'. Labels come from outside (a CSV header in
 * Latin-1, a name cut short), and cairo stops drawing for good, with an
 * error, at the first invalid string it is given. */
static const char *clean_utf8(const char *s, char *buf, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t k = 0;
    while (*p && k + 1 < n) {
        int len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        uint32_t cp = len == 1 ? *p : len == 2 ? *p & 0x1Fu : len == 3 ? *p & 0x0Fu : *p & 0x07u;
        for (int j = 1; j < len; j++) {
            if ((p[j] & 0xC0) != 0x80) {
                len = 0;
                break;
            }
            cp = cp << 6 | (p[j] & 0x3Fu);
        }
        /* No overlong forms, surrogates or code points past U+10FFFF. */
        static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (len == 0 || cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            buf[k++] = '?';
            p++;
            continue;
        }
        if (k + (size_t)len >= n) break; /* whole characters only */
        memcpy(buf + k, p, (size_t)len);
        k += (size_t)len;
        p += len;
    }
    buf[k] = 0;
    return buf;
}

/* The advance width of s in the current font. */
double nb__plot_text_w(cairo_t *cr, const char *s) {
    char clean[512];
    cairo_text_extents_t e;
    cairo_text_extents(cr, clean_utf8(s, clean, sizeof clean), &e);
    return e.x_advance;
}

/* The height of capitals and digits, which is what the eye centres on. */
double nb__plot_cap_h(cairo_t *cr) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, "0", &e);
    return -e.y_bearing;
}

/* Draws s with its baseline at y, anchored at x by align (0 left, 0.5
 * centre, 1 right). */
void nb__plot_text_at(cairo_t *cr, double x, double y, const char *s, double align, uint32_t color) {
    char clean[512];
    nb__plot_set_color(cr, color, 1);
    cairo_move_to(cr, x - align * nb__plot_text_w(cr, s), y);
    cairo_show_text(cr, clean_utf8(s, clean, sizeof clean));
}

/* Copies s into buf, shortened with an ellipsis so that it is at most maxw
 * wide in the current font; whole UTF-8 characters only. */
const char *nb__plot_fit_text(cairo_t *cr, const char *s, double maxw, char *buf, size_t n) {
    clean_utf8(s ? s : "", buf, n);
    if (nb__plot_text_w(cr, buf) <= maxw) return buf;
    size_t len = strlen(buf);
    while (len > 0) {
        len--;
        while (len > 0 && ((unsigned char)buf[len] & 0xC0) == 0x80) len--;
        if (len + 4 > n) continue;
        memcpy(buf + len, "\xE2\x80\xA6", 4); /* U+2026 */
        if (nb__plot_text_w(cr, buf) <= maxw) return buf;
    }
    buf[0] = 0;
    return buf;
}

/* Text turned a quarter left (a y axis label), centred on (x, y), its
 * baseline at x. */
void nb__plot_text_up(cairo_t *cr, double x, double y, const char *s, uint32_t color) {
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -M_PI / 2);
    nb__plot_text_at(cr, 0, 0, s, 0.5, color);
    cairo_restore(cr);
}

uint32_t nb_plot_color(int i) {
    /* Tableau 10 (matplotlib's default cycle): distinct hues that stay
     * distinguishable for the common forms of colour blindness. */
    static const uint32_t palette[10] = {0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD,
                                         0x8C564B, 0xE377C2, 0x7F7F7F, 0xBCBD22, 0x17BECF};
    return palette[(i % 10 + 10) % 10];
}

