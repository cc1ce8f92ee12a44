/* csv.c — numeric CSV tables with a header row: the training logs that
 * `nabla plot` draws and the data files of `nabla train` and `nabla fit`.
 * Every defect is reported with the file, line and column. */
#include "io.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* One cell of a line (io.h). */
int nb__csv_cell(const char **p, const char *le, const char **b, const char **e) {
    const char *q = *p;
    while (q < le && (*q == ' ' || *q == '\t')) q++;
    if (q < le && *q == '"') {
        const char *open = q++;
        for (;; q += 2) {
            while (q < le && *q != '"') q++;
            if (q >= le) {
                *b = open;
                return -1;
            }
            if (q + 1 >= le || q[1] != '"') break; /* "" is a quote inside */
        }
        *b = open + 1, *e = q;
        q++;
        while (q < le && (*q == ' ' || *q == '\t')) q++;
        if (q < le && *q != ',') {
            *b = q;
            return -2;
        }
    } else {
        *b = q;
        while (q < le && *q != ',') q++;
        *e = q;
        trim(b, e);
    }
    *p = q < le ? q + 1 : le;
    return q >= le;
}

/* A quoted name's text with each doubled "" made one (in place of a copy). */
static size_t unquote(char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        s[k++] = s[i];
        if (s[i] == '"' && i + 1 < n && s[i + 1] == '"') i++;
    }
    s[k] = 0;
    return k;
}

/* Powers of ten that are exact doubles (10^22 < 2^53 * 2^22). */
static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The common cell, "0", "255", "-0.0509803966" or "1.5e-3", without strtod:
 * at most 15 significant digits and a power of ten within 10^+-22 make the
 * digits m and 10^|x| exact doubles, so one multiplication or division,
 * correctly rounded, gives the double nearest the decimal: strtod's value,
 * bit for bit (Clinger's fast path). Anything else (more digits, inf, nan,
 * a bad cell) returns false for strtod and its checks. */
static bool fast_decimal(const char *p, const char *e, double *v) {
    bool neg = p < e && *p == '-';
    if (p < e && (*p == '-' || *p == '+')) p++;
    uint64_t m = 0;
    int sig = 0, x = 0, digits = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++, digits++)
        if (m || *p != '0') {
            if (++sig > 15) return false;
            m = 10 * m + (uint64_t)(*p - '0');
        }
    if (p < e && *p == '.')
        for (p++; p < e && *p >= '0' && *p <= '9'; p++, digits++) {
            x--;
            if (m || *p != '0') {
                if (++sig > 15) return false;
                m = 10 * m + (uint64_t)(*p - '0');
            }
        }
    if (!digits) return false;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = p < e && *p == '-';
        if (p < e && (*p == '-' || *p == '+')) p++;
        if (p == e) return false;
        int ex = 0;
        for (; p < e && *p >= '0' && *p <= '9'; p++)
            if ((ex = 10 * ex + (*p - '0')) > 1000) return false;
        x += eneg ? -ex : ex;
    }
    if (p != e || x < -22 || x > 22) return false;
    double d = (double)m;
    d = x < 0 ? d / POW10[-x] : d * POW10[x];
    *v = neg ? -d : d;
    return true;
}

/* Parses [b, e) as a number; empty is NaN (a value not measured that row).
 * Returns 0, -1 for text that is not a number, or -2 for a hexadecimal one.
 * The forms are Python's float() and NumPy's loadtxt: decimal numbers and
 * inf, infinity, nan in any case, but not strtod's hexadecimal ("0x10" would
 * be 16 where a reader expects an error) or "nan(...)". */
/* "column 2 (b)" in a message, or "column 1" where the file has no header
 * and the name is that already ("column 1 (column 1)"). */
static const char *col_label(const nb_csv *c, int k, char *buf, size_t n) {
    char own[24];
    snprintf(own, sizeof own, "column %d", k + 1);
    if (!strcmp(c->names[k], own)) snprintf(buf, n, "%s", own);
    else snprintf(buf, n, "%s (%s)", own, c->names[k]);
    return buf;
}

static int parse_cell(const char *b, const char *e, double *v) {
    if (b == e) {
        *v = NAN;
        return 0;
    }
    if (fast_decimal(b, e, v)) return 0;
    char tmp[400]; /* a number written with all 17 significant digits and more fits */
    size_t n = (size_t)(e - b);
    if (n >= sizeof tmp || memchr(b, 0, n)) return -1;
    memcpy(tmp, b, n);
    tmp[n] = 0;
    /* strtod skips white space ('\v', '\f', ...) that trim() leaves: look
     * behind it too, or "\v0x10" was 16. */
    const char *d = tmp;
    while (isspace((unsigned char)*d)) d++;
    d += *d == '+' || *d == '-';
    if ((*d | 0x20) == 'n' && strchr(d, '(')) return -1;
    char *end;
    errno = 0;
    *v = strtod(tmp, &end);
    if (end != tmp + n) return -1;
    /* Overflow gives +-inf and underflow 0, both the nearest doubles: keep. */
    return d[0] == '0' && (d[1] | 0x20) == 'x' ? -2 : 0;
}

/* Shows a cell in an error message: at most 32 bytes, printable only. */
static const char *show_cell(const char *b, const char *e, char *buf, size_t n) {
    size_t k = 0;
    for (const char *p = b; p < e && k + 4 < n && k < 32; p++) buf[k++] = *p >= 32 && *p < 127 ? *p : '?';
    if (e - b > 32) buf[k++] = '.', buf[k++] = '.';
    buf[k] = 0;
    return buf;
}

/* Case-insensitive "word occurs in name" (word in lower case). */
static bool name_has(const char *name, const char *word) {
    size_t n = strlen(word);
    for (; *name; name++) {
        size_t k = 0;
        while (k < n && name[k] && (name[k] | 0x20) == word[k]) k++;
        if (k == n) return true;
    }
    return false;
}

/* Whether a table has a column a training log has (NB_CSV_LOG). */
static bool log_columns(const nb_csv *c) {
    const char *x = c->names[0];
    /* Logs over epochs, steps, or time (bench/soak.sh's resident memory). */
    if ((name_has(x, "epoch") && strlen(x) == 5) || (name_has(x, "step") && strlen(x) == 4) ||
        (name_has(x, "seconds") && strlen(x) == 7))
        return true;
    for (int j = 0; j < c->ncols; j++)
        if (name_has(c->names[j], "loss") || name_has(c->names[j], "acc") || name_has(c->names[j], "return"))
            return true;
    return false;
}

/* Whether a line, spaces trimmed, is a comment: '#' first, as np.loadtxt's
 * default comments='#' (and the LIBSVM reader) skip. */
static bool comment_line(const char *lb, const char *le) { return lb < le && *lb == '#'; }

/* The header that np.savetxt(..., header='x,y') writes as a comment ("# x,y")
 * before the first row: the last comment line in [p, end) whose text after
 * the '#' is n non-empty cells that are not numbers. Returns its text after
 * the '#' in [*hb, *he) and its line number, or 0 when there is none (every
 * comment is then a comment). */
static int64_t comment_header(const char *p, const char *end, int n, const char **hb, const char **he) {
    int64_t line = 0, found = 0;
    while (p < end) {
        const char *next, *lb = p, *le = nb__line_end(p, end, &next);
        line++;
        p = next;
        trim(&lb, &le);
        if (!comment_line(lb, le)) continue;
        int k = 0, last = 0;
        for (const char *q = lb + 1, *cb, *ce; !last && k <= n; k++) {
            double v;
            last = nb__csv_cell(&q, le, &cb, &ce);
            if (last < 0 || cb == ce || parse_cell(cb, ce, &v) != -1) {
                last = -1; /* not a name: "# a,b,1" is no header of a,b */
                break;
            }
        }
        if (last == 1 && k == n) *hb = lb + 1, *he = le, found = line;
    }
    return found;
}


nb_csv *nb_csv_parse(const char *text, size_t len, const char *what) { return nb_csv_parse_ex(text, len, what, 0); }

nb_csv *nb_csv_parse_ex(const char *text, size_t len, const char *what, unsigned flags) {
    if (!what) what = "CSV";
    /* Bytes of another kind are named, not parsed into odd cells; text that
     * is not CSV goes on to the parser, which says which line is wrong. */
    nb_file_kind kind = nb_sniff((const uint8_t *)text, len);
    bool textual = kind == NB_FILE_CSV || kind == NB_FILE_LOG || kind == NB_FILE_TEXT || kind == NB_FILE_EMPTY;
    if ((flags & NB_CSV_LOG) ? kind != NB_FILE_CSV && kind != NB_FILE_LOG : !textual) {
        nb__wrong_kind(what, flags & NB_CSV_LOG ? "a training log" : "a CSV file", kind);
        return NULL;
    }
    nb_csv *c = nb__calloc(1, sizeof *c);
    if (!c) {
        nb_error("%s: out of memory", what);
        return NULL;
    }
    const char *p = text, *end = text + len;
    /* A UTF-8 byte-order mark (Excel's "CSV UTF-8", PowerShell) is not part
     * of the first cell: left in, it made "5.1" of a header-less file a
     * column name and the first column name "\xEF\xBB\xBFepoch". */
    p += nb_utf8_bom(p, len);
    int64_t line = 0, cap = 0;
    char shown[40], label[160]; /* label: col_label's */
    while (p < end) {
        const char *next, *lb = p, *le = nb__line_end(p, end, &next);
        line++;
        p = next;
        trim(&lb, &le);
        if (lb == le || comment_line(lb, le)) continue; /* blank lines and comments carry nothing */
        /* A row of the table in one pass: its cells parsed into the row as
         * they are split. Any defect, or a row that needs the table grown,
         * takes the way below, which finds it again and names it (the
         * messages, their order and the allocations are the same). */
        if (c->ncols > 0 && c->nrows < cap) {
            double *row = c->data + (size_t)c->nrows * (size_t)c->ncols;
            int k = 0, last = 0;
            for (const char *q = lb, *cb, *ce; !last && k < c->ncols; k++) {
                last = nb__csv_cell(&q, le, &cb, &ce);
                if (last < 0 || parse_cell(cb, ce, &row[k]) ||
                    ((flags & NB_CSV_FINITE) && !isfinite((float)row[k])))
                    break;
            }
            if (last == 1 && k == c->ncols) {
                c->lines[c->nrows++] = line;
                continue;
            }
        }
        /* The cells of the line, counted, with each one's defect named. */
        int n = 0;
        for (const char *q = lb, *cb, *ce;; n++) {
            int last = nb__csv_cell(&q, le, &cb, &ce);
            if (last < 0) {
                if (last == -1)
                    nb_error("%s:%lld: column %d: a quoted cell is not closed on its line (expected a closing '\"'; "
                             "cells that span lines are not supported)", what, (long long)line, n + 1);
                else
                    nb_error("%s:%lld: column %d: expected ',' after the closing quote, got '%c'", what,
                             (long long)line, n + 1, *cb);
                goto fail;
            }
            if (last) break;
        }
        n++;
        if (c->ncols == 0 && n == 1) {
            /* A file of other separators is one column of cells like "1;2":
             * say what was found rather than that "1;2" is not a number. */
            const char *sep = memchr(lb, ';', (size_t)(le - lb));
            if (!sep) sep = memchr(lb, '\t', (size_t)(le - lb));
            if (sep) {
                nb_error("%s:%lld: no comma but %s on the first line: nabla reads comma-separated values "
                         "(numbers with a decimal point) only", what, (long long)line,
                         *sep == ';' ? "semicolons (';')" : "tabs");
                goto fail;
            }
            /* np.savetxt's default: numbers between spaces. */
            const char *sp = memchr(lb, ' ', (size_t)(le - lb));
            double v;
            if (sp && parse_cell(lb, sp, &v) == 0) {
                nb_error("%s:%lld: no comma but numbers separated by spaces: nabla reads comma-separated values "
                         "only (np.savetxt writes them with delimiter=',')", what, (long long)line);
                goto fail;
            }
        }
        bool data_first = false;
        /* Where the header's names are: this line, or np.savetxt's "# x,y"
         * above a first row of numbers. */
        const char *nb = lb, *ne = le;
        int64_t name_line = line;
        if (c->ncols == 0) {
            const char *q = lb, *hb, *he;
            double v;
            nb__csv_cell(&q, le, &hb, &he);
            bool number = hb != he && parse_cell(hb, he, &v) == 0;
            int64_t at = number ? comment_header(text + nb_utf8_bom(text, len), lb, n, &nb, &ne) : 0;
            if (at) name_line = at;
            /* No header when the first cell is a number: name columns 1..n. */
            else data_first = number && (flags & NB_CSV_HEADER_OPTIONAL);
        }
        if (c->ncols == 0 && data_first) {
            if (!(c->names = nb__calloc((size_t)n, sizeof(char *)))) {
                nb_error("%s: out of memory", what);
                goto fail;
            }
            for (int k = 0; k < n; k++) {
                char nm[24];
                snprintf(nm, sizeof nm, "column %d", k + 1);
                if (!(c->names[k] = nb__strndup(nm, strlen(nm)))) {
                    nb_error("%s: out of memory", what);
                    goto fail;
                }
                c->ncols = k + 1;
            }
        } else if (c->ncols == 0) {
            /* The header: one name per column. */
            c->names = nb__calloc((size_t)n, sizeof(char *));
            if (!c->names) {
                nb_error("%s: out of memory", what);
                goto fail;
            }
            const char *q = nb;
            for (int k = 0; k < n; k++) {
                const char *hb, *he;
                nb__csv_cell(&q, ne, &hb, &he);
                double v;
                if (hb == he) {
                    nb_error("%s:%lld: column %d: empty column name in the header row", what, (long long)line, k + 1);
                    goto fail;
                }
                int num = parse_cell(hb, he, &v);
                if (num != -1 && (flags & NB_CSV_LOG)) {
                    nb_error("%s: not a training log: line %lld holds numbers where a log has its header "
                             "(epoch,... or step,...)", what, (long long)line);
                    goto fail;
                }
                if (num == -2) {
                    nb_error("%s:%lld: column %d: expected a column name or a decimal number, got the hexadecimal "
                             "'%s' (nabla reads numbers as NumPy's loadtxt and Python's float() do)", what,
                             (long long)line, k + 1, show_cell(hb, he, shown, sizeof shown));
                    goto fail;
                }
                if (num == 0) {
                    nb_error("%s:%lld: column %d: expected a header row of column names, got the number '%s' "
                             "(is the header missing?)", what, (long long)line, k + 1, show_cell(hb, he, shown, sizeof shown));
                    goto fail;
                }
                if (!(c->names[k] = nb__strndup(hb, (size_t)(he - hb)))) {
                    nb_error("%s: out of memory", what);
                    goto fail;
                }
                unquote(c->names[k], (size_t)(he - hb));
                c->ncols = k + 1;
            }
            if (name_line == line) continue; /* else this line is the first row */
        }
        if (n > c->ncols) {
            nb_error("%s:%lld: column %d: row has more than the %d columns of the header", what, (long long)line,
                     c->ncols + 1, c->ncols);
            goto fail;
        }
        if (c->nrows == cap) {
            int64_t ncap = cap ? 2 * cap : 64;
            if ((uint64_t)ncap * (uint64_t)c->ncols > SIZE_MAX / sizeof(double)) {
                nb_error("%s:%lld: too many rows", what, (long long)line);
                goto fail;
            }
            double *d = nb__realloc(c->data, sizeof(double) * (size_t)ncap * (size_t)c->ncols);
            if (!d) {
                nb_error("%s:%lld: out of memory", what, (long long)line);
                goto fail;
            }
            c->data = d;
            int64_t *ln = nb__realloc(c->lines, sizeof(int64_t) * (size_t)ncap);
            if (!ln) {
                nb_error("%s:%lld: out of memory", what, (long long)line);
                goto fail;
            }
            c->lines = ln;
            cap = ncap;
        }
        double *row = c->data + (size_t)c->nrows * (size_t)c->ncols;
        const char *q = lb;
        for (int k = 0; k < n; k++) {
            const char *vb, *ve;
            nb__csv_cell(&q, le, &vb, &ve); /* a "quoted" number is the number */
            int bad = parse_cell(vb, ve, &row[k]);
            if (bad == -1) {
                nb_error("%s:%lld: %s: expected a %snumber, got '%s'", what, (long long)line,
                         col_label(c, k, label, sizeof label), flags & NB_CSV_FINITE ? "finite " : "",
                         show_cell(vb, ve, shown, sizeof shown));
                goto fail;
            }
            if (bad == -2) {
                nb_error("%s:%lld: %s: expected a decimal number, got the hexadecimal '%s' (nabla reads "
                         "numbers as NumPy's loadtxt and Python's float() do)", what, (long long)line,
                         col_label(c, k, label, sizeof label), show_cell(vb, ve, shown, sizeof shown));
                goto fail;
            }
            /* Data are float32: 1e39 is finite as a double but inf there. */
            if ((flags & NB_CSV_FINITE) && !isfinite((float)row[k])) {
                if (vb == ve)
                    nb_error("%s:%lld: %s: empty cell; expected a finite number", what, (long long)line,
                             col_label(c, k, label, sizeof label));
                else
                    nb_error("%s:%lld: %s: '%s' is not a finite number%s", what, (long long)line,
                             col_label(c, k, label, sizeof label), show_cell(vb, ve, shown, sizeof shown),
                             isfinite(row[k]) ? " in float32" : "");
                goto fail;
            }
        }
        if (n < c->ncols) {
            nb_error("%s:%lld: %s: row has %d columns, the header has %d", what, (long long)line,
                     col_label(c, n, label, sizeof label), n, c->ncols);
            goto fail;
        }
        c->lines[c->nrows++] = line;
    }
    if (c->ncols == 0) {
        nb_error("%s: %s: expected a header row of column names", what, len ? "only blank lines" : "empty file");
        goto fail;
    }
    if ((flags & NB_CSV_LOG) && !log_columns(c)) {
        char cols[160];
        size_t k = 0;
        for (int j = 0; j < c->ncols && k + 8 < sizeof cols; j++)
            k += (size_t)snprintf(cols + k, sizeof cols - k, "%s%s", j ? ", " : "", c->names[j]);
        if (k + 8 >= sizeof cols) snprintf(cols + sizeof cols - 8, 8, ", ...");
        nb_error("%s: not a training log: its columns (%s) include no epoch, step or seconds first, and no "
                 "loss, accuracy or return", what, cols);
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
