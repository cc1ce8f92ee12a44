/* sniff.c — what a file is, told from its first bytes: the data loaders pick
 * their format by content (so `nabla convert`'s fm.csv.t reads as CSV), and
 * every reader that gets a file of the wrong kind says what it got ("not a
 * nabla model file: it looks like a PNG image") instead of reporting a
 * defect in a file that was never of its kind. */
#include "io.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

const char *nb_file_kind_name(nb_file_kind k) {
    switch (k) {
    case NB_FILE_MISSING: return "a file that cannot be read";
    case NB_FILE_FOLDER: return "a folder";
    case NB_FILE_EMPTY: return "an empty file";
    case NB_FILE_SAFETENSORS: return "a nabla model file (safetensors)";
    case NB_FILE_FIT_MODEL: return "a model from nabla fit";
    case NB_FILE_PNG: return "a PNG image";
    case NB_FILE_JPEG: return "a JPEG image";
    case NB_FILE_GZIP: return "gzip data";
    case NB_FILE_NPY: return "a .npy array";
    case NB_FILE_IDX: return "an IDX file";
    case NB_FILE_LOG: return "a CSV training log";
    case NB_FILE_CSV: return "CSV text";
    case NB_FILE_LIBSVM: return "LIBSVM text";
    case NB_FILE_TEXT: return "text";
    case NB_FILE_BINARY: return "binary data";
    case NB_FILE_UTF16: return "UTF-16 text (nabla reads UTF-8: convert it with iconv -f UTF-16 -t UTF-8)";
    }
    return "an unknown kind of file";
}

/* IDX (MNIST's format): two zero bytes, the element type (unsigned byte,
 * signed byte, short, int, float, double) and the number of dimensions. */
static bool idx_magic(const uint8_t *b, size_t len) {
    if (len < 4 || b[0] || b[1]) return false;
    bool type = b[2] == 0x08 || b[2] == 0x09 || (b[2] >= 0x0B && b[2] <= 0x0E);
    return type && b[3] >= 1 && b[3] <= 8;
}

/* The first bytes of a gzip stream's content (up to n), from as much of the
 * compressed stream as buf holds. Returns how many were recovered. */
static size_t gunzip_head(const uint8_t *buf, size_t len, uint8_t *out, size_t n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return 0;
    z.next_in = (Bytef *)buf;
    z.avail_in = (uInt)(len > 0x7fffffff ? 0x7fffffff : len);
    z.next_out = out;
    z.avail_out = (uInt)n;
    int rc;
    do rc = inflate(&z, Z_SYNC_FLUSH);
    while (rc == Z_OK && z.avail_out && z.avail_in);
    size_t got = n - z.avail_out;
    inflateEnd(&z);
    return got;
}

/* A safetensors file: a little-endian u64 header length, then the JSON
 * header's '{'. The length of any real header is far below 2^56, so its top
 * byte is zero, where text has a character; a length that is not text but
 * is too large is a defect of a safetensors file, which its parser reports. */
static bool safetensors_magic(const uint8_t *b, size_t len) {
    if (len < 9 || b[8] != '{') return false;
    for (int k = 0; k < 8; k++)
        if (b[k] < 0x20 || b[k] >= 0x7f) return true;
    return false;
}

/* Whether the header of a safetensors image names a model of `nabla fit`
 * ("nabla.model" in __metadata__ with one of fit's kinds; see
 * nb_classic_is_model: charrnn, chat and wavenet models have the key too).
 * A header longer than buf is searched as text. */
static bool fit_model_text(const char *p, const char *end) {
    static const char key[] = "\"nabla.model\"";
    size_t k = sizeof key - 1;
    for (; p + k <= end; p++) {
        if (memcmp(p, key, k)) continue;
        const char *q = p + k;
        while (q < end && (*q == ' ' || *q == ':')) q++;
        if (q >= end || *q != '"') return false;
        const char *v = ++q;
        while (q < end && *q != '"') q++;
        if (q >= end) return true; /* the value cut off: the key alone says nabla fit, as it mostly does */
        char kind[16];
        if (q - v >= (ptrdiff_t)sizeof kind) return false;
        memcpy(kind, v, (size_t)(q - v));
        kind[q - v] = 0;
        return nb__classic_kind(kind);
    }
    return false;
}

static bool fit_model(const uint8_t *b, size_t len) {
    uint64_t hlen = nb__le64(b);
    const char *h = (const char *)b + 8;
    if (hlen > len - 8) return fit_model_text(h, (const char *)b + len);
    cJSON *root = cJSON_ParseWithLength(h, (size_t)hlen);
    /* cJSON fails alike when out of memory and on a malformed header: search
     * it as text then, so that a fit model is not taken for a network (and
     * reported as the wrong kind) for want of a few bytes; a malformed header
     * is reported by the parser either kind of file goes to. */
    if (!root) return fit_model_text(h, h + hlen);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(meta, "nabla.model");
    bool yes = cJSON_IsString(kind) && nb__classic_kind(kind->valuestring);
    cJSON_Delete(root);
    return yes;
}

/* --- text ------------------------------------------------------------------ */

static bool is_number(const char *b, const char *e) {
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    if (b == e || e - b > 63) return false;
    char tmp[64], *end;
    memcpy(tmp, b, (size_t)(e - b));
    tmp[e - b] = 0;
    strtod(tmp, &end);
    return *end == 0;
}

/* UTF-16 text (Windows' "Unicode" exports, PowerShell's redirections): a
 * byte-order mark, or 8 ASCII characters each followed or preceded by a
 * zero byte. Otherwise its zero bytes would call it binary data. */
static bool utf16_text(const uint8_t *b, size_t len) {
    if (len >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF))) return true;
    if (len < 16) return false;
    for (int hi = 0; hi < 2; hi++) {
        int k = 0;
        while (k < 8 && b[2 * k + hi] == 0 && b[2 * k + !hi] >= 0x09 && b[2 * k + !hi] < 0x7f &&
               (b[2 * k + !hi] >= 0x20 || b[2 * k + !hi] == '\t' || b[2 * k + !hi] == '\n' || b[2 * k + !hi] == '\r'))
            k++;
        if (k == 8) return true;
    }
    return false;
}

/* A LIBSVM line: a label, then at least one "index:value" (SVMlight's
 * "qid:N" after the label and a "# comment" at the end allowed). */
static bool libsvm_line(const char *b, const char *e) {
    const char *p = b, *hash = memchr(b, '#', (size_t)(e - b));
    if (hash) e = hash;
    int tokens = 0;
    while (p < e) {
        while (p < e && isspace((unsigned char)*p)) p++;
        if (p == e) break;
        const char *t = p;
        while (p < e && !isspace((unsigned char)*p)) p++;
        if (tokens == 0) {
            if (!is_number(t, p)) return false;
        } else if (tokens == 1 && p - t > 4 && !memcmp(t, "qid:", 4)) {
            continue; /* not counted: the features follow */
        } else {
            const char *q = t;
            while (q < p && isdigit((unsigned char)*q)) q++;
            if (q == t || q == p || *q != ':') return false;
        }
        tokens++;
    }
    return tokens >= 2;
}

static bool log_header(const char *b, const char *e) {
    while (b < e && isspace((unsigned char)*b)) b++;
    if (*b == '"') b++;
    return (e - b > 6 && !strncasecmp(b, "epoch", 5) && (b[5] == ',' || b[5] == '"')) ||
           (e - b > 5 && !strncasecmp(b, "step", 4) && (b[4] == ',' || b[4] == '"'));
}

/* Cells of a comma-separated line: how many, how many are numbers (empty
 * cells count: a log leaves what it did not measure empty), and whether a
 * cell holds a space inside (prose does, column names rarely). */
static void cells(const char *b, const char *e, int *n, int *numeric, bool *spaced) {
    *n = *numeric = 0;
    *spaced = false;
    for (const char *c = b;;) {
        /* The CSV reader's cells: a "quoted" one may hold commas, and its
         * quotes are not part of a number. A broken quote (which the reader
         * refuses) makes a cell of text up to the next comma. */
        const char *x, *y;
        int last = nb__csv_cell(&c, e, &x, &y);
        bool broken = last < 0;
        if (broken) {
            const char *comma = memchr(x, ',', (size_t)(e - x));
            y = comma ? comma : e;
            c = comma ? comma + 1 : e;
            last = !comma;
        }
        (*n)++;
        if (!broken && (x == y || is_number(x, y))) (*numeric)++;
        for (const char *q = x; q < y; q++) *spaced |= *q == ' ';
        if (last) break;
    }
}

/* Text: no NUL byte, and control characters (other than the whitespace ones
 * and ESC) rare. Bytes >= 0x80 count as text: UTF-8 or another 8-bit
 * encoding. Then the first lines tell CSV, LIBSVM and training logs apart:
 * CSV is a line of numbers between commas, or a header of names followed by
 * a line with as many commas and some numbers; LIBSVM is "label
 * index:value ..." lines; a log is CSV whose header starts epoch or step. */
static nb_file_kind sniff_text(const uint8_t *buf, size_t len) {
    size_t control = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (c == 0) return NB_FILE_BINARY;
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1b) || c == 0x7f)
            control++;
    }
    if (control * 32 > len) return NB_FILE_BINARY;
    const char *p = (const char *)buf, *end = p + len;
    p += nb_utf8_bom(p, len); /* the readers skip it */
    int seen = 0, libsvm = 0, single = 0, header_cells = 0;
    bool header_spaced = false;
    while (p < end && seen < 8) {
        const char *next, *lb = p, *le = nb__line_end(p, end, &next), *nl = le < end ? le : NULL;
        p = next;
        const char *q = lb;
        while (q < le && isspace((unsigned char)*q)) q++;
        if (q == le || *q == '#') continue; /* blank, or a comment line (SVMlight's) */
        if (!nl && seen > 0) break; /* a line cut by the end of the sniffed bytes */
        seen++;
        bool comma = memchr(lb, ',', (size_t)(le - lb)) != NULL;
        if (comma && seen > 1 && !header_cells) break; /* after LIBSVM or one-number lines: theirs to report */
        if (comma) {
            int n, numeric;
            bool spaced;
            cells(lb, le, &n, &numeric, &spaced);
            if (seen == 1 && log_header(lb, le)) return NB_FILE_LOG;
            if (seen == 1 && numeric == n) return NB_FILE_CSV; /* numbers from the first line */
            if (seen == 1) { /* a header, if the next line says so */
                header_cells = n;
                header_spaced = spaced;
                continue;
            }
            return seen == 2 && header_cells == n && numeric > 0 ? NB_FILE_CSV : NB_FILE_TEXT;
        }
        if (header_cells) return NB_FILE_TEXT; /* names with commas, then a line without */
        if (libsvm_line(lb, le)) libsvm++;
        else if (is_number(lb, le)) single++; /* one column of CSV, or a LIBSVM label with no features */
        else if (seen == 1) return NB_FILE_TEXT;
        else break;
    }
    /* A header alone (a log of no rows yet) when its names read as names. */
    if (header_cells) return seen == 1 && !header_spaced ? NB_FILE_CSV : NB_FILE_TEXT;
    if (libsvm) return NB_FILE_LIBSVM;
    if (single) return NB_FILE_CSV;
    return NB_FILE_TEXT;
}

nb_file_kind nb_sniff(const uint8_t *buf, size_t len) {
    if (len == 0) return NB_FILE_EMPTY;
    if (len >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8)) return NB_FILE_PNG;
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return NB_FILE_JPEG;
    if (len >= 6 && !memcmp(buf, "\x93NUMPY", 6)) return NB_FILE_NPY;
    if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        uint8_t head[4];
        return gunzip_head(buf, len, head, 4) == 4 && idx_magic(head, 4) ? NB_FILE_IDX : NB_FILE_GZIP;
    }
    if (safetensors_magic(buf, len)) return fit_model(buf, len) ? NB_FILE_FIT_MODEL : NB_FILE_SAFETENSORS;
    if (idx_magic(buf, len)) return NB_FILE_IDX;
    if (utf16_text(buf, len)) return NB_FILE_UTF16;
    return sniff_text(buf, len < NB_SNIFF_BYTES ? len : NB_SNIFF_BYTES);
}

/* Reads at most n bytes from the start of fd. */
static size_t read_head(int fd, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* Plain open and read, not the fault seam's: sniffing only chooses which
 * reader to run, and that reader's own calls are the ones tests count. */
nb_file_kind nb_sniff_file(const char *path) {
    struct stat st;
    if (!path || stat(path, &st) != 0) return NB_FILE_MISSING;
    if (S_ISDIR(st.st_mode)) return NB_FILE_FOLDER;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NB_FILE_MISSING;
    size_t cap = NB_SNIFF_BYTES;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return NB_FILE_MISSING;
    }
    size_t len = read_head(fd, buf, cap);
    /* A safetensors header longer than what was read: read all of it (up to
     * 16 MiB), so that nabla fit's models are told from the others. */
    if (len == cap && safetensors_magic(buf, len)) {
        uint64_t want = nb__le64(buf) + 8;
        if (want > cap && want <= (16u << 20)) {
            uint8_t *more = realloc(buf, (size_t)want);
            if (more) {
                buf = more;
                len += read_head(fd, buf + len, (size_t)want - len);
            }
        }
    }
    close(fd);
    nb_file_kind k = nb_sniff(buf, len);
    free(buf);
    return k;
}

static bool has_ext(const char *path, const char *ext) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    return dot && (!slash || dot > slash) && !strcasecmp(dot + 1, ext);
}

#define DATA_KINDS "fashion-mnist, a folder of IDX files, or a CSV, LIBSVM or .npy file"

nb_file_kind nb_data_kind(const char *path) {
    if (!path) {
        nb_error("data file: the path is NULL");
        return NB_FILE_MISSING;
    }
    nb_file_kind k = nb_sniff_file(path);
    /* The extension breaks ties only: text that is neither CSV nor LIBSVM
     * by its first lines goes to the parser its name asks for, which then
     * reports the line and column that is wrong. */
    bool csv = has_ext(path, "csv"), svm = has_ext(path, "libsvm") || has_ext(path, "svm");
    if ((k == NB_FILE_TEXT || k == NB_FILE_EMPTY) && csv) return NB_FILE_CSV;
    if ((k == NB_FILE_TEXT || k == NB_FILE_EMPTY) && svm) return NB_FILE_LIBSVM;
    struct stat st;
    switch (k) {
    case NB_FILE_FOLDER:
    case NB_FILE_CSV:
    case NB_FILE_LOG:
    case NB_FILE_LIBSVM:
    case NB_FILE_NPY: break;
    case NB_FILE_MISSING:
        if (stat(path, &st) != 0 && errno == ENOENT)
            nb_error("%s: no such file or folder (expected " DATA_KINDS ")", path);
        else nb__wrong_kind(path, "", k);
        break;
    case NB_FILE_IDX:
        nb_error("%s: an IDX file holds images or labels, not both: give the folder that holds "
                 "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]", path);
        break;
    default:
        nb_error("%s: not a data file: it looks like %s (expected " DATA_KINDS ")", path, nb_file_kind_name(k));
        break;
    }
    return k;
}

int nb__wrong_kind(const char *path, const char *expected, nb_file_kind k) {
    struct stat st;
    if (k == NB_FILE_MISSING && stat(path, &st) != 0) return nb_error("%s: cannot open: %s", path, strerror(errno));
    if (k == NB_FILE_MISSING) return nb_error("%s: cannot read it", path);
    return nb_error("%s: not %s: it looks like %s", path, expected, nb_file_kind_name(k));
}
