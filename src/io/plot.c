/* plot.c — line charts drawn into an RGB buffer (axes, ticks, titles,
 * legends, a built-in bitmap font) and the CSV reader for the training logs
 * they are drawn from. */
#include "io.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* --- font ----------------------------------------------------------------- */

/* A 5 x 9 bitmap font for ASCII 32..126: rows top to bottom, bit 4 is the
 * leftmost column. Rows 0-6 hold capitals and digits, rows 7-8 descenders
 * (g, j, p, q, y, comma), so lowercase keeps a full 5-row body. The shapes
 * follow the classic HD44780 character ROM. */
#define FONT_W 5
#define FONT_H 9
static const uint8_t font[95][FONT_H] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ' ' */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04, 0x00, 0x00}, /* ! */
    {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* " */
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A, 0x00, 0x00}, /* # */
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04, 0x00, 0x00}, /* $ */
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00, 0x00}, /* % */
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D, 0x00, 0x00}, /* & */
    {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ' */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00, 0x00}, /* ( */
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00, 0x00}, /* ) */
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00, 0x00, 0x00}, /* * */
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00, 0x00, 0x00}, /* + */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x04, 0x08}, /* , */
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00, 0x00}, /* - */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x00, 0x00}, /* . */
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00, 0x00, 0x00}, /* / */
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E, 0x00, 0x00}, /* 0 */
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}, /* 1 */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F, 0x00, 0x00}, /* 2 */
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E, 0x00, 0x00}, /* 3 */
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02, 0x00, 0x00}, /* 4 */
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E, 0x00, 0x00}, /* 5 */
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* 6 */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00, 0x00}, /* 7 */
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* 8 */
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C, 0x00, 0x00}, /* 9 */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00, 0x00, 0x00}, /* : */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x04, 0x08, 0x00}, /* ; */
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02, 0x00, 0x00}, /* < */
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00}, /* = */
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08, 0x00, 0x00}, /* > */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00, 0x00}, /* ? */
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E, 0x00, 0x00}, /* @ */
    {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x00, 0x00}, /* A */
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E, 0x00, 0x00}, /* B */
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E, 0x00, 0x00}, /* C */
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C, 0x00, 0x00}, /* D */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F, 0x00, 0x00}, /* E */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10, 0x00, 0x00}, /* F */
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F, 0x00, 0x00}, /* G */
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11, 0x00, 0x00}, /* H */
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}, /* I */
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C, 0x00, 0x00}, /* J */
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11, 0x00, 0x00}, /* K */
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F, 0x00, 0x00}, /* L */
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11, 0x00, 0x00}, /* M */
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x00, 0x00}, /* N */
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* O */
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10, 0x00, 0x00}, /* P */
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D, 0x00, 0x00}, /* Q */
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11, 0x00, 0x00}, /* R */
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E, 0x00, 0x00}, /* S */
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00}, /* T */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* U */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00, 0x00}, /* V */
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A, 0x00, 0x00}, /* W */
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11, 0x00, 0x00}, /* X */
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x00, 0x00}, /* Y */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F, 0x00, 0x00}, /* Z */
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E, 0x00, 0x00}, /* [ */
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00, 0x00, 0x00}, /* \ */
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E, 0x00, 0x00}, /* ] */
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ^ */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x00}, /* _ */
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ` */
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00, 0x00}, /* a */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E, 0x00, 0x00}, /* b */
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E, 0x00, 0x00}, /* c */
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F, 0x00, 0x00}, /* d */
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00, 0x00}, /* e */
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08, 0x00, 0x00}, /* f */
    {0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E}, /* g */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}, /* h */
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}, /* i */
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}, /* j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00, 0x00}, /* k */
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}, /* l */
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11, 0x00, 0x00}, /* m */
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}, /* n */
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* o */
    {0x00, 0x00, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10}, /* p */
    {0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x01}, /* q */
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00, 0x00}, /* r */
    {0x00, 0x00, 0x0F, 0x10, 0x0E, 0x01, 0x1E, 0x00, 0x00}, /* s */
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0x00, 0x00}, /* t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D, 0x00, 0x00}, /* u */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00, 0x00}, /* v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A, 0x00, 0x00}, /* w */
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x00, 0x00}, /* x */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E}, /* y */
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F, 0x00, 0x00}, /* z */
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02, 0x00, 0x00}, /* { */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00}, /* | */
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08, 0x00, 0x00}, /* } */
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00, 0x00, 0x00}, /* ~ */
};

/* --- canvas ----------------------------------------------------------------- */

typedef struct canvas {
    uint8_t *rgb;
    int w, h;
} canvas;

/* Colours of the furniture: dark text, mid-gray frame, faint grid. */
#define C_BG 0xFFFFFFu
#define C_TEXT 0x222222u
#define C_AXIS 0x555555u
#define C_GRID 0xE6E6E6u
#define C_LEGEND_EDGE 0xBBBBBBu

/* Blends colour c over pixel (x, y) with opacity a in [0, 1]; off-canvas
 * pixels are ignored so callers need not clip. */
static void blend(canvas *cv, int x, int y, uint32_t c, float a) {
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h || !(a > 0.f)) return;
    if (a > 1.f) a = 1.f;
    uint8_t *p = cv->rgb + ((size_t)y * (size_t)cv->w + (size_t)x) * 3;
    for (int k = 0; k < 3; k++) {
        float src = (float)((c >> (16 - 8 * k)) & 0xFF);
        p[k] = (uint8_t)(p[k] + (src - p[k]) * a + 0.5f);
    }
}

static void fill_rect(canvas *cv, int x0, int y0, int x1, int y1, uint32_t c, float a) {
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) blend(cv, x, y, c, a);
}

/* Text is drawn with each font pixel as a scale x scale block. */
static int text_width(const char *s, int scale) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x80 || *p >= 0xC0) n++; /* one glyph per UTF-8 character */
    return n ? (n * (FONT_W + 1) - 1) * scale : 0;
}

static int text_height(int scale) { return FONT_H * scale; }

static const uint8_t *glyph(unsigned char ch) {
    /* Anything outside printable ASCII (a UTF-8 lead byte, a tab) shows as '?'. */
    return font[ch >= 32 && ch <= 126 ? ch - 32 : '?' - 32];
}

/* Draws s with its top-left corner at (x, y). */
static void draw_text(canvas *cv, int x, int y, const char *s, int scale, uint32_t c) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80 && *p < 0xC0) continue; /* UTF-8 continuation byte */
        const uint8_t *g = glyph(*p);
        for (int r = 0; r < FONT_H; r++)
            for (int col = 0; col < FONT_W; col++)
                if (g[r] >> (FONT_W - 1 - col) & 1) fill_rect(cv, x + col * scale, y + r * scale, x + (col + 1) * scale, y + (r + 1) * scale, c, 1.f);
        x += (FONT_W + 1) * scale;
    }
}

/* Copies s into buf, shortened with ".." so that it is at most maxw pixels
 * wide at this scale. */
static const char *fit_text(const char *s, int scale, int maxw, char *buf, size_t n) {
    snprintf(buf, n, "%s", s ? s : "");
    if (text_width(buf, scale) <= maxw) return buf;
    size_t len = strlen(buf);
    while (len > 0) {
        len--;
        while (len > 0 && ((unsigned char)buf[len] & 0xC0) == 0x80) len--; /* whole characters only */
        if (len + 3 > n) continue;
        memcpy(buf + len, "..", 3);
        if (text_width(buf, scale) <= maxw) return buf;
    }
    buf[0] = 0;
    return buf;
}

/* --- axes ------------------------------------------------------------------- */

/* Labels, ticks and legends use 2 x 2 pixels per font pixel (10 x 14 px
 * capitals), readable on a chart of 1280 pixels; titles use 3. */
#define TEXT_SCALE 2
#define MAX_TICKS 32
typedef struct axis {
    double lo, hi;       /* the visible range */
    double tick[MAX_TICKS];
    char label[MAX_TICKS][24];
    int nticks;
} axis;

/* The "nice" step (1, 2, 2.5 or 5 times a power of ten) nearest to raw. */
static double nice_step(double raw, int *mant25, int *exp10) {
    int e = (int)floor(log10(raw));
    double f = raw / pow(10.0, e), m;
    if (f < 1.5) m = 1;
    else if (f < 2.25) m = 2;
    else if (f < 3.5) m = 2.5;
    else if (f < 7.5) m = 5;
    else {
        m = 1;
        e++;
    }
    *mant25 = m == 2.5;
    *exp10 = e;
    return m * pow(10.0, e);
}

/* Writes the tick labels with one shared format: plain decimals with as many
 * places as the step needs; k, M, G for large round values (300000 is
 * "300k"); %g's exponents for the very large and the very small. */
static void label_ticks(axis *a, double step, int mant25, int e) {
    double big = fmax(fabs(a->lo), fabs(a->hi)), d = 1;
    const char *suffix = "";
    bool sci = big >= 1e13 || (big < 1e-3 && big > 0);
    if (!sci) {
        static const struct { double at, div; const char *sfx; } units[] = {{1e10, 1e9, "G"}, {1e7, 1e6, "M"}, {1e4, 1e3, "k"}};
        for (int k = 0; k < 3; k++)
            if (big >= units[k].at && step >= units[k].div / 100) {
                d = units[k].div;
                suffix = units[k].sfx;
                break;
            }
    }
    int dec = (mant25 ? 1 : 0) - e + (int)lround(log10(d));
    if (dec < 0) dec = 0;
    if (dec > 12) dec = 12;
    for (int k = 0; k < a->nticks; k++) {
        if (sci) snprintf(a->label[k], sizeof a->label[k], "%.3g", a->tick[k]);
        else snprintf(a->label[k], sizeof a->label[k], "%.*f%s", dec, a->tick[k] / d, a->tick[k] == 0 ? "" : suffix);
    }
}

/* Chooses the visible range from the finite data range [dmin, dmax] (pad is
 * the fraction added on each side), then ticks about every `spacing` pixels
 * of the `pixels`-long axis, fewer when the labels would not fit between
 * them (`horizontal` labels need their width, vertical ones their height). */
static void make_axis(axis *a, double dmin, double dmax, bool have, double pad, int pixels, int spacing,
                      bool horizontal, bool integers) {
    if (!have) {
        dmin = 0;
        dmax = 1;
    }
    double span = dmax - dmin, mag = fmax(fabs(dmin), fabs(dmax));
    if (!(span > 1e-12 * mag) || span < 1e-280) {
        /* One value (a single point, a constant series): centre it in a
         * range of +-10% of its size, or +-1 around zero. Spans near the
         * smallest doubles count as one value too, so that pixels per unit
         * stay finite. */
        double d = mag > 1e-280 ? 0.1 * mag : 1.0;
        if (integers && d < 1) d = 1;
        dmin -= d;
        dmax += d;
        span = dmax - dmin;
        pad = 0;
    }
    a->lo = dmin - pad * span;
    a->hi = dmax + pad * span;
    int target = pixels / spacing;
    if (target > 20) target = 20;
    for (;; target--) {
        if (target < 1) target = 1;
        int mant25, e;
        double step = nice_step((a->hi - a->lo) / target, &mant25, &e);
        if (integers && (step < 1 || mant25)) {
            /* Whole-number data (epochs, steps) gets whole-number ticks. */
            step = step < 1 ? 1 : step * 0.8; /* 2.5 x 10^e -> 2 x 10^e */
            mant25 = 0;
            if (e < 0) e = 0;
        }
        double start = ceil(a->lo / step - 1e-9) * step;
        a->nticks = 0;
        for (int k = 0; k < MAX_TICKS; k++) {
            double t = start + k * step;
            if (t > a->hi + 1e-9 * step) break;
            if (fabs(t) < 1e-9 * step) t = 0; /* no "-0.0" */
            a->tick[a->nticks++] = t;
        }
        label_ticks(a, step, mant25, e);
        int need = 0;
        for (int k = 0; k < a->nticks; k++) {
            int n = horizontal ? text_width(a->label[k], TEXT_SCALE) + 3 * (FONT_W + 1) * TEXT_SCALE
                                : 2 * text_height(TEXT_SCALE);
            need = n > need ? n : need;
        }
        if (target == 1 || step * pixels / (a->hi - a->lo) >= need) break;
    }
}

/* --- drawing lines ------------------------------------------------------------ */

/* Coverage of a round-capped segment of half-width r, antialiased by
 * distance to the pixel centre; cov keeps the maximum so that joints and
 * overlaps of one series do not darken. */
static void cover_segment(float *cov, int pw, int ph, double ax, double ay, double bx, double by, double r) {
    int x0 = (int)floor(fmin(ax, bx) - r - 1), x1 = (int)ceil(fmax(ax, bx) + r + 1);
    int y0 = (int)floor(fmin(ay, by) - r - 1), y1 = (int)ceil(fmax(ay, by) + r + 1);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > pw) x1 = pw;
    if (y1 > ph) y1 = ph;
    double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            double px = x + 0.5 - ax, py = y + 0.5 - ay;
            double t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = px - t * dx, ey = py - t * dy;
            float c = (float)(r + 0.5 - sqrt(ex * ex + ey * ey));
            if (c > 1.f) c = 1.f;
            float *p = cov + (size_t)y * (size_t)pw + (size_t)x;
            if (c > *p) *p = c;
        }
}

static bool finite_pt(const nb_series *s, int64_t i) {
    double x = s->x ? s->x[i] : (double)i;
    return isfinite(x) && isfinite(s->y[i]);
}

uint32_t nb_plot_color(int i) {
    /* Tableau 10 (matplotlib's default cycle): distinct hues that stay
     * distinguishable for the common forms of colour blindness. */
    static const uint32_t palette[10] = {0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD,
                                         0x8C564B, 0xE377C2, 0x7F7F7F, 0xBCBD22, 0x17BECF};
    return palette[(i % 10 + 10) % 10];
}

static uint32_t series_color(const nb_series *s, int i) { return s->color ? s->color & 0xFFFFFFu : nb_plot_color(i); }

/* Draws one panel into the rectangle [cx0, cx0 + cw) x [cy0, cy0 + ch). */
static int draw_panel(canvas *cv, int cx0, int cy0, int cw, int ch, const nb_panel *pn) {
    const int s = TEXT_SCALE;
    const int th = text_height(s), tick = 5, gap = 6;
    /* Data ranges over every finite point of every series. */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    bool xint = true;
    int64_t total = 0;
    for (int k = 0; k < pn->nseries; k++) {
        const nb_series *sr = &pn->series[k];
        for (int64_t i = 0; i < sr->n; i++) {
            if (!finite_pt(sr, i)) continue;
            /* Beyond +-1e300 the span of the range would overflow. */
            double x = fmax(-1e300, fmin(1e300, sr->x ? sr->x[i] : (double)i));
            double y = fmax(-1e300, fmin(1e300, sr->y[i]));
            xmin = fmin(xmin, x);
            xmax = fmax(xmax, x);
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
            xint &= x == floor(x);
            total++;
        }
    }
    int top = cy0 + 10 + th + 10; /* under the panel title */
    int bottom = cy0 + ch - (tick + gap + th + 12 + (pn->xlabel ? th + 8 : 0));
    int ph = bottom - top;
    axis ax, ay;
    make_axis(&ay, ymin, ymax, total > 0, 0.06, ph > 0 ? ph : 1, 3 * th, false, false);
    int ylw = 0;
    for (int k = 0; k < ay.nticks; k++) ylw = ylw > text_width(ay.label[k], s) ? ylw : text_width(ay.label[k], s);
    int left = cx0 + 14 + ylw + gap + tick, right = cx0 + cw - 24;
    int pw = right - left;
    if (pw < 40 || ph < 40)
        return nb_error("a chart of %d x %d pixels is too small for its axes and labels; make the image larger", cw, ch);
    make_axis(&ax, xmin, xmax, total > 0, 0.03, pw, 11 * s * FONT_W, true, xint);

    /* Panel title, centred over the plot area. */
    char buf[256];
    if (pn->title) {
        const char *t = fit_text(pn->title, s, pw, buf, sizeof buf);
        draw_text(cv, left + (pw - text_width(t, s)) / 2, cy0 + 10, t, s, C_TEXT);
    }
    /* Grid and ticks at the tick positions; tick labels outside the frame. */
    double sx = pw / (ax.hi - ax.lo), sy = ph / (ay.hi - ay.lo);
    for (int k = 0; k < ax.nticks; k++) {
        int x = left + (int)floor((ax.tick[k] - ax.lo) * sx);
        if (x >= right) x = right - 1;
        fill_rect(cv, x, top, x + 1, bottom, C_GRID, 1.f);
        fill_rect(cv, x, bottom, x + 1, bottom + tick, C_AXIS, 1.f);
        int lw = text_width(ax.label[k], s), lx = x - lw / 2;
        if (lx + lw > cx0 + cw - 2) lx = cx0 + cw - 2 - lw; /* the last label stays in its cell */
        draw_text(cv, lx, bottom + tick + gap, ax.label[k], s, C_TEXT);
    }
    for (int k = 0; k < ay.nticks; k++) {
        int y = top + (int)floor((ay.hi - ay.tick[k]) * sy);
        if (y >= bottom) y = bottom - 1;
        fill_rect(cv, left, y, right, y + 1, C_GRID, 1.f);
        fill_rect(cv, left - tick, y, left, y + 1, C_AXIS, 1.f);
        /* The cap height (7 of 9 rows) is what the eye centres on. */
        draw_text(cv, left - tick - gap - text_width(ay.label[k], s), y - 7 * s / 2, ay.label[k], s, C_TEXT);
    }
    if (pn->xlabel) {
        const char *t = fit_text(pn->xlabel, s, pw, buf, sizeof buf);
        draw_text(cv, left + (pw - text_width(t, s)) / 2, bottom + tick + gap + th + 8, t, s, C_TEXT);
    }

    /* The series: each is rendered as coverage, then blended in its colour.
     * `ink` remembers where any series went, to place the legend. */
    float *cov = malloc(sizeof(float) * (size_t)pw * (size_t)ph);
    uint8_t *ink = calloc((size_t)pw * (size_t)ph, 1);
    if (!cov || !ink) {
        free(cov);
        free(ink);
        return nb_error("out of memory for a chart of %d x %d pixels", pw, ph);
    }
    const double r = 1.25;       /* line half-width: 2.5 px lines */
    const double mark_r = 3.25;  /* dots on sparse series */
    for (int k = 0; k < pn->nseries; k++) {
        const nb_series *sr = &pn->series[k];
        memset(cov, 0, sizeof(float) * (size_t)pw * (size_t)ph);
        int64_t nfin = 0;
        for (int64_t i = 0; i < sr->n; i++) nfin += finite_pt(sr, i);
        bool dots = nfin <= 40; /* few points (or one): show where the measurements are */
        bool have_prev = false;
        double px = 0, py = 0;
        for (int64_t i = 0; i < sr->n; i++) {
            /* Missing values are skipped and the line joins their finite
             * neighbours: logs leave cells empty between evaluations. */
            if (!finite_pt(sr, i)) continue;
            double x = fmax(-1e300, fmin(1e300, sr->x ? sr->x[i] : (double)i));
            double y = fmax(-1e300, fmin(1e300, sr->y[i]));
            double X = (x - ax.lo) * sx, Y = (ay.hi - y) * sy;
            if (!isfinite(X) || !isfinite(Y)) continue; /* cannot happen with the ranges above; cheap to be sure */
            if (have_prev) cover_segment(cov, pw, ph, px, py, X, Y, r);
            if (dots) cover_segment(cov, pw, ph, X, Y, X, Y, mark_r);
            px = X;
            py = Y;
            have_prev = true;
        }
        uint32_t c = series_color(sr, k);
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++) {
                float a = cov[(size_t)y * (size_t)pw + (size_t)x];
                if (a > 0.f) {
                    blend(cv, left + x, top + y, c, a);
                    ink[(size_t)y * (size_t)pw + (size_t)x] = 1;
                }
            }
    }
    /* The frame goes over the lines' ends so the plot edge stays crisp. */
    fill_rect(cv, left - 1, top - 1, right + 1, top, C_AXIS, 1.f);
    fill_rect(cv, left - 1, bottom, right + 1, bottom + 1, C_AXIS, 1.f);
    fill_rect(cv, left - 1, top, left, bottom, C_AXIS, 1.f);
    fill_rect(cv, right, top, right + 1, bottom, C_AXIS, 1.f);
    if (total == 0) {
        const char *t = "no data";
        draw_text(cv, left + (pw - text_width(t, s)) / 2, top + (ph - th) / 2, t, s, C_AXIS);
    }

    /* Legend: in the corner where it hides the fewest drawn pixels. */
    int nl = 0, lw = 0;
    char labels[16][64];
    const int sample = 26, pad = 8, row = th + 6;
    for (int k = 0; k < pn->nseries && nl < 16; k++) {
        if (!pn->series[k].label || !pn->series[k].label[0]) continue;
        fit_text(pn->series[k].label, s, pw / 2, labels[nl], sizeof labels[nl]);
        int w = text_width(labels[nl], s);
        lw = lw > w ? lw : w;
        nl++;
    }
    int bw = pad + sample + pad + lw + pad, bh = pad + nl * row - 6 + pad;
    if (nl > 0 && bw + 16 <= pw && bh + 16 <= ph) {
        int best = 0;
        long best_cost = -1;
        for (int corner = 0; corner < 4; corner++) {
            /* Top right first: ties go to where readers look for it. */
            int lx = corner & 1 ? 8 : pw - 8 - bw, ly = corner & 2 ? ph - 8 - bh : 8;
            long cost = 0;
            for (int y = ly; y < ly + bh; y++)
                for (int x = lx; x < lx + bw; x++) cost += ink[(size_t)y * (size_t)pw + (size_t)x];
            if (best_cost < 0 || cost < best_cost) {
                best_cost = cost;
                best = corner;
            }
        }
        int lx = left + (best & 1 ? 8 : pw - 8 - bw), ly = top + (best & 2 ? ph - 8 - bh : 8);
        fill_rect(cv, lx, ly, lx + bw, ly + bh, C_BG, 0.9f);
        fill_rect(cv, lx, ly, lx + bw, ly + 1, C_LEGEND_EDGE, 1.f);
        fill_rect(cv, lx, ly + bh - 1, lx + bw, ly + bh, C_LEGEND_EDGE, 1.f);
        fill_rect(cv, lx, ly, lx + 1, ly + bh, C_LEGEND_EDGE, 1.f);
        fill_rect(cv, lx + bw - 1, ly, lx + bw, ly + bh, C_LEGEND_EDGE, 1.f);
        int i = 0;
        for (int k = 0; k < pn->nseries && i < nl; k++) {
            if (!pn->series[k].label || !pn->series[k].label[0]) continue;
            int ty = ly + pad + i * row;
            fill_rect(cv, lx + pad, ty + 7 * s / 2 - 1, lx + pad + sample, ty + 7 * s / 2 + 2, series_color(&pn->series[k], k), 1.f);
            draw_text(cv, lx + pad + sample + pad, ty, labels[i], s, C_TEXT);
            i++;
        }
    }
    free(cov);
    free(ink);
    return 0;
}

int nb_plot_lines(uint8_t *rgb, int w, int h, const char *title, const nb_panel *panels, int npanels) {
    if (!rgb || w < 1 || h < 1 || w > NB_PNG_MAX_SIDE || h > NB_PNG_MAX_SIDE)
        return nb_error("nb_plot_lines: need an RGB buffer of 1..%d x 1..%d pixels, got %d x %d", NB_PNG_MAX_SIDE,
                        NB_PNG_MAX_SIDE, w, h);
    if (npanels < 1 || npanels > 16 || !panels) return nb_error("nb_plot_lines: expected 1..16 panels, got %d", npanels);
    for (int p = 0; p < npanels; p++) {
        if (panels[p].nseries < 0 || (panels[p].nseries > 0 && !panels[p].series))
            return nb_error("nb_plot_lines: panel %d: expected series, got %d", p + 1, panels[p].nseries);
        for (int k = 0; k < panels[p].nseries; k++) {
            const nb_series *sr = &panels[p].series[k];
            if (sr->n < 0 || (sr->n > 0 && !sr->y))
                return nb_error("nb_plot_lines: panel %d, series %d ('%s'): expected n >= 0 points with y values", p + 1,
                                k + 1, sr->label ? sr->label : "");
        }
    }
    canvas cv = {rgb, w, h};
    memset(rgb, 0xFF, (size_t)w * (size_t)h * 3); /* white background */
    int y0 = 0;
    if (title && title[0]) {
        /* Large letters, or smaller ones before a long title is shortened. */
        const int s = text_width(title, 3) <= w - 20 ? 3 : 2;
        char buf[256];
        const char *t = fit_text(title, s, w - 20, buf, sizeof buf);
        draw_text(&cv, (w - text_width(t, s)) / 2, 14, t, s, C_TEXT);
        y0 = 14 + text_height(s) + 4;
    }
    /* Panels side by side, two to a row (loss | accuracy), more wrap. */
    int cols = npanels == 1 ? 1 : 2, rows = (npanels + cols - 1) / cols;
    int cw = w / cols, chh = (h - y0) / rows;
    for (int p = 0; p < npanels; p++) {
        int c = p % cols, r = p / cols;
        if (draw_panel(&cv, c * cw, y0 + r * chh, cw, chh, &panels[p])) return -1;
    }
    return 0;
}

/* --- CSV ------------------------------------------------------------------------ */

void nb_csv_free(nb_csv *c) {
    if (!c) return;
    for (int k = 0; k < c->ncols; k++) free(c->names[k]);
    free(c->names);
    free(c->data);
    free(c->lines);
    free(c);
}

/* Cell boundaries after trimming spaces, tabs and a closing '\r'. */
static void trim(const char **b, const char **e) {
    while (*b < *e && (**b == ' ' || **b == '\t')) (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r')) (*e)--;
}

/* Parses [b, e) as a number; empty is NaN (a value not measured that row).
 * Returns 0 or -1. */
static int parse_cell(const char *b, const char *e, double *v) {
    if (b == e) {
        *v = NAN;
        return 0;
    }
    char tmp[64];
    size_t n = (size_t)(e - b);
    if (n >= sizeof tmp || memchr(b, 0, n)) return -1;
    memcpy(tmp, b, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    *v = strtod(tmp, &end);
    /* Overflow gives +-inf and underflow 0, both the nearest doubles: keep. */
    return end == tmp + n ? 0 : -1;
}

/* Shows a cell in an error message: at most 32 bytes, printable only. */
static const char *show_cell(const char *b, const char *e, char *buf, size_t n) {
    size_t k = 0;
    for (const char *p = b; p < e && k + 4 < n && k < 32; p++) buf[k++] = *p >= 32 && *p < 127 ? *p : '?';
    if (e - b > 32) buf[k++] = '.', buf[k++] = '.';
    buf[k] = 0;
    return buf;
}

nb_csv *nb_csv_parse(const char *text, size_t len, const char *what) { return nb_csv_parse_ex(text, len, what, 0); }

nb_csv *nb_csv_parse_ex(const char *text, size_t len, const char *what, unsigned flags) {
    if (!what) what = "CSV";
    nb_csv *c = calloc(1, sizeof *c);
    if (!c) {
        nb_error("%s: out of memory", what);
        return NULL;
    }
    const char *p = text, *end = text + len;
    int64_t line = 0, cap = 0;
    char shown[40];
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        line++;
        const char *lb = p, *le = eol;
        p = eol < end ? eol + 1 : end;
        trim(&lb, &le);
        if (lb == le) continue; /* blank lines carry nothing */
        bool data_first = false;
        if (c->ncols == 0 && (flags & NB_CSV_HEADER_OPTIONAL)) {
            /* No header when the first cell is a number: name columns 1..n. */
            const char *ce = memchr(lb, ',', (size_t)(le - lb)), *hb = lb, *he = ce ? ce : le;
            double v;
            trim(&hb, &he);
            data_first = hb != he && parse_cell(hb, he, &v) == 0;
        }
        if (c->ncols == 0 && data_first) {
            int n = 1;
            for (const char *q = lb; q < le; q++) n += *q == ',';
            if (!(c->names = calloc((size_t)n, sizeof(char *)))) {
                nb_error("%s: out of memory", what);
                goto fail;
            }
            for (int k = 0; k < n; k++) {
                char nm[24];
                snprintf(nm, sizeof nm, "column %d", k + 1);
                if (!(c->names[k] = strdup(nm))) {
                    nb_error("%s: out of memory", what);
                    goto fail;
                }
                c->ncols = k + 1;
            }
        } else if (c->ncols == 0) {
            /* The header: one name per column. */
            int n = 1;
            for (const char *q = lb; q < le; q++) n += *q == ',';
            c->names = calloc((size_t)n, sizeof(char *));
            if (!c->names) {
                nb_error("%s: out of memory", what);
                goto fail;
            }
            const char *cb = lb;
            for (int k = 0; k < n; k++) {
                const char *ce = memchr(cb, ',', (size_t)(le - cb));
                if (!ce) ce = le;
                const char *hb = cb, *he = ce;
                trim(&hb, &he);
                if (he - hb >= 2 && *hb == '"' && he[-1] == '"') hb++, he--; /* "quoted" names */
                double v;
                if (hb == he) {
                    nb_error("%s:%lld: column %d: empty column name in the header row", what, (long long)line, k + 1);
                    goto fail;
                }
                if (parse_cell(hb, he, &v) == 0) {
                    nb_error("%s:%lld: column %d: expected a header row of column names, got the number '%s' "
                             "(is the header missing?)", what, (long long)line, k + 1, show_cell(hb, he, shown, sizeof shown));
                    goto fail;
                }
                if (!(c->names[k] = strndup(hb, (size_t)(he - hb)))) {
                    nb_error("%s: out of memory", what);
                    goto fail;
                }
                c->ncols = k + 1;
                cb = ce + 1;
            }
            continue;
        }
        if (c->nrows == cap) {
            int64_t ncap = cap ? 2 * cap : 64;
            if ((uint64_t)ncap * (uint64_t)c->ncols > SIZE_MAX / sizeof(double)) {
                nb_error("%s:%lld: too many rows", what, (long long)line);
                goto fail;
            }
            double *d = realloc(c->data, sizeof(double) * (size_t)ncap * (size_t)c->ncols);
            if (!d) {
                nb_error("%s:%lld: out of memory", what, (long long)line);
                goto fail;
            }
            c->data = d;
            int64_t *ln = realloc(c->lines, sizeof(int64_t) * (size_t)ncap);
            if (!ln) {
                nb_error("%s:%lld: out of memory", what, (long long)line);
                goto fail;
            }
            c->lines = ln;
            cap = ncap;
        }
        double *row = c->data + (size_t)c->nrows * (size_t)c->ncols;
        const char *cb = lb;
        int k = 0;
        for (;; k++) {
            const char *ce = memchr(cb, ',', (size_t)(le - cb));
            if (!ce) ce = le;
            if (k >= c->ncols) {
                nb_error("%s:%lld: column %d: row has more than the %d columns of the header", what,
                         (long long)line, k + 1, c->ncols);
                goto fail;
            }
            const char *vb = cb, *ve = ce;
            trim(&vb, &ve);
            if (parse_cell(vb, ve, &row[k]) || ((flags & NB_CSV_FINITE) && !isfinite(row[k]))) {
                nb_error("%s:%lld: column %d (%s): expected a %snumber, got '%s'", what, (long long)line, k + 1,
                         c->names[k], flags & NB_CSV_FINITE ? "finite " : "", show_cell(vb, ve, shown, sizeof shown));
                goto fail;
            }
            if (ce == le) break;
            cb = ce + 1;
        }
        if (k + 1 < c->ncols) {
            nb_error("%s:%lld: column %d (%s): row has %d columns, the header has %d", what, (long long)line,
                     k + 2, c->names[k + 1], k + 1, c->ncols);
            goto fail;
        }
        c->lines[c->nrows++] = line;
    }
    if (c->ncols == 0) {
        nb_error("%s: %s: expected a header row of column names", what, len ? "only blank lines" : "empty file");
        goto fail;
    }
    return c;
fail:
    nb_csv_free(c);
    return NULL;
}

nb_csv *nb_csv_read(const char *path) { return nb_csv_read_ex(path, 0); }

nb_csv *nb_csv_read_ex(const char *path, unsigned flags) {
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return NULL;
    nb_csv *c = nb_csv_parse_ex((const char *)buf, len, path, flags);
    free(buf);
    return c;
}
