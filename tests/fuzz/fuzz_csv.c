/* fuzz_csv.c — libFuzzer target: nb_csv_parse_ex on arbitrary bytes, with
 * the flags taken from the first byte, must return a table whose sizes hold
 * together or an error with a message; never crash, leak or hit UB. Every
 * value of the table must also be, bit for bit, strtod's double for its cell
 * found anew below (the reader parses most cells without strtod, so a wrong
 * value, not only a crash, is caught), and no accepted cell is hexadecimal
 * or nan(...), which the reader refuses. */
#include "nabla.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The start of line `want` (counted from 1 after a byte-order mark) of
 * [p, end) and its end: lines end at '\n', "\r\n" or a lone '\r'. */
static const char *find_line(const char *p, const char *end, int64_t want, const char **le) {
    for (int64_t line = 1; p < end; line++) {
        const char *q = p;
        while (q < end && *q != '\n' && *q != '\r') q++;
        if (line == want) {
            *le = q;
            return p;
        }
        p = q + (q < end) + (q < end && *q == '\r' && q + 1 < end && q[1] == '\n');
    }
    abort(); /* a row's line must be in the text */
}

/* The next cell of [*p, le): a "quoted" text (its "" left doubled) or the
 * text to the next comma, spaces and tabs around it trimmed. */
static void next_cell(const char **p, const char *le, const char **b, const char **e) {
    const char *q = *p;
    while (q < le && (*q == ' ' || *q == '\t')) q++;
    if (q < le && *q == '"') {
        *b = ++q;
        while (q < le && !(*q == '"' && (q + 1 == le || q[1] != '"'))) q += *q == '"' ? 2 : 1;
        if (q >= le) abort(); /* an accepted row has its quotes closed */
        *e = q++;
        while (q < le && *q != ',') q++;
    } else {
        *b = q;
        while (q < le && *q != ',') q++;
        *e = q;
        while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
    }
    *p = q < le ? q + 1 : le;
}

/* The value strtod gives the whole cell [b, e) (NaN when empty). */
static double oracle(const char *b, const char *e) {
    if (b == e) return NAN;
    size_t n = (size_t)(e - b);
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, b, n);
    s[n] = 0;
    const char *d = s;
    while (isspace((unsigned char)*d)) d++;
    d += *d == '+' || *d == '-';
    if ((d[0] == '0' && (d[1] | 0x20) == 'x') || ((d[0] | 0x20) == 'n' && strchr(d, '('))) abort();
    char *stop;
    double v = strtod(s, &stop);
    if (stop != s + n) abort(); /* the reader took a cell strtod does not read whole */
    free(s);
    return v;
}

static void check_values(const uint8_t *text, size_t len, const nb_csv *c) {
    const char *p = (const char *)text, *end = p + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    for (int64_t i = 0; i < c->nrows; i++) {
        const char *le, *q = find_line(p, end, c->lines[i], &le);
        for (int j = 0; j < c->ncols; j++) {
            const char *b, *e;
            next_cell(&q, le, &b, &e);
            double want = oracle(b, e), got = c->data[i * c->ncols + j];
            if (isnan(want) ? !isnan(got) : memcmp(&want, &got, sizeof got)) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0] & (NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE | NB_CSV_LOG); /* LOG: nabla plot's reader */
    nb_clear_error();
    nb_csv *c = nb_csv_parse_ex((const char *)data + 1, size - 1, "fuzz.csv", flags);
    if (!c) {
        if (!nb_errmsg()[0]) abort(); /* every failure must say why */
        return 0;
    }
    if (c->ncols < 1 || c->nrows < 0) abort();
    for (int j = 0; j < c->ncols; j++)
        if (!c->names[j]) abort();
    for (int64_t i = 0; i < c->nrows; i++) {
        if (c->lines[i] < 1) abort();
        for (int j = 0; j < c->ncols; j++)
            if ((flags & NB_CSV_FINITE) && !isfinite((float)c->data[i * c->ncols + j])) abort(); /* data are float32 */
    }
    check_values(data + 1, size - 1, c);
    nb_csv_free(c);
    return 0;
}
