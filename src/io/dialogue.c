/* dialogue.c — dialogue corpora in the Ubuntu Dialogue Corpus layout (CSV
 * after RFC 4180), the word tokenizer and the word vocabulary of the
 * retrieval chatbot (notes §4.4). Every defect of a file is reported with the
 * file and line. */
#include "io.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void nb_dialogue_free(nb_dialogue *d) {
    if (!d) return;
    for (int64_t i = 0; i < d->n; i++) free(d->context[i]);
    for (int64_t i = 0; i < d->n * d->ncand; i++) free(d->cand[i]);
    free(d->context);
    free(d->cand);
    free(d->label);
    free(d->line);
    free(d);
}

/* The first byte of an invalid UTF-8 sequence in [p, end), or NULL. */
static const unsigned char *bad_utf8(const unsigned char *p, const unsigned char *end) {
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            if (c == 0) return p;
            p++;
            continue;
        }
        int n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
        else return p;
        if (end - p <= n) return p;
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80) return p;
            cp = cp << 6 | (p[k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return p;
        p += n + 1;
    }
    return NULL;
}

/* One field being read: its unescaped bytes. */
typedef struct {
    char *s;
    size_t n, cap;
} buf_t;

static int buf_put(buf_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) return -1;
        b->s = t, b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

/* Reads one record starting at *pp (line *line): its fields as malloc'd
 * strings in *fields (*nf of them). Advances *pp past the record's end and
 * *line past its newlines. 0, or -1 with nb_errmsg(). */
static int read_record(const char **pp, const char *end, int64_t *line, const char *what, char ***fields, int *nf) {
    const char *p = *pp;
    int64_t start_line = *line;
    char **f = NULL;
    int n = 0, cap = 0;
    buf_t b = {0};
    for (;;) {
        b.n = 0;
        if (buf_put(&b, "", 0)) goto oom;
        if (p < end && *p == '"') {
            int64_t qline = *line;
            p++;
            for (;;) {
                const char *q = p;
                while (q < end && *q != '"') {
                    if (*q == '\n') (*line)++;
                    q++;
                }
                if (buf_put(&b, p, (size_t)(q - p))) goto oom;
                if (q >= end) {
                    nb_error("%s:%lld: unterminated quoted field (field %d of the record opens a quote that never "
                             "closes)", what, (long long)qline, n + 1);
                    goto fail;
                }
                if (q + 1 < end && q[1] == '"') { /* a doubled quote */
                    if (buf_put(&b, "\"", 1)) goto oom;
                    p = q + 2;
                    continue;
                }
                p = q + 1;
                break;
            }
            if (p < end && *p != ',' && *p != '\n' && !(*p == '\r' && (p + 1 == end || p[1] == '\n'))) {
                nb_error("%s:%lld: field %d: text after the closing quote (expected a comma or the end of the line)",
                         what, (long long)*line, n + 1);
                goto fail;
            }
        } else {
            const char *q = p;
            while (q < end && *q != ',' && *q != '\n') {
                if (*q == '"') {
                    nb_error("%s:%lld: field %d: a quote inside an unquoted field (quote the whole field and "
                             "double the quote)", what, (long long)*line, n + 1);
                    goto fail;
                }
                q++;
            }
            const char *e = q;
            if (e > p && e[-1] == '\r' && (q == end || *q == '\n')) e--; /* CRLF */
            if (buf_put(&b, p, (size_t)(e - p))) goto oom;
            p = q;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **t = realloc(f, sizeof(char *) * (size_t)cap);
            if (!t) goto oom;
            f = t;
        }
        f[n++] = b.s;
        b = (buf_t){0};
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '\r') p++;
        if (p < end && *p == '\n') p++, (*line)++;
        break;
    }
    (void)start_line;
    *pp = p;
    *fields = f;
    *nf = n;
    return 0;
oom:
    nb_error("%s:%lld: out of memory", what, (long long)*line);
fail:
    free(b.s);
    for (int k = 0; k < n; k++) free(f[k]);
    free(f);
    return -1;
}

static void free_fields(char **f, int n) {
    for (int k = 0; k < n; k++) free(f[k]);
    free(f);
}

static bool blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

/* Case-insensitive equality after trimming spaces. */
static bool name_is(const char *s, const char *want) {
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') n--;
    if (n != strlen(want)) return false;
    for (size_t k = 0; k < n; k++)
        if (tolower((unsigned char)s[k]) != tolower((unsigned char)want[k])) return false;
    return true;
}

nb_dialogue *nb_dialogue_parse(const char *text, size_t len, const char *what) {
    if (!what) what = "dialogue CSV";
    const char *p = text, *end = text + len;
    p += nb_utf8_bom(p, len);
    const unsigned char *bad = bad_utf8((const unsigned char *)p, (const unsigned char *)end);
    if (bad) {
        int64_t line = 1, col = 1;
        for (const char *q = p; q < (const char *)bad; q++) {
            if (*q == '\n') line++, col = 1;
            else if ((*q & 0xC0) != 0x80) col++;
        }
        /* line:character, as the text reader and compilers name a place; not
         * "column", which this file's other messages use for a CSV field. */
        if (*bad == 0) nb_error("%s:%lld:%lld: a NUL byte (binary data, not CSV text)", what, (long long)line,
                                (long long)col);
        else nb_error("%s:%lld:%lld: invalid UTF-8 (byte 0x%02X); the corpus must be UTF-8 text", what,
                      (long long)line, (long long)col, *bad);
        return NULL;
    }
    nb_dialogue *d = calloc(1, sizeof *d);
    if (!d) {
        nb_error("%s: out of memory", what);
        return NULL;
    }
    int64_t line = 1, cap = 0;
    char **f = NULL;
    int nf = 0, ncols = 0;
    /* Skip blank lines before the header. */
    while (p < end && (*p == '\n' || *p == '\r')) line += *p++ == '\n';
    if (p >= end) {
        nb_error("%s: empty file (expected a header row: Context,Utterance,Label or Context,Ground Truth "
                 "Utterance,Distractor_0,...)", what);
        goto fail;
    }
    int64_t hline = line;
    if (read_record(&p, end, &line, what, &f, &nf)) goto fail;
    if (nf == 3 && name_is(f[0], "Context") && name_is(f[1], "Utterance") && name_is(f[2], "Label")) {
        d->ncand = 1;
        ncols = 3;
    } else if (nf >= 3 && name_is(f[0], "Context") && name_is(f[1], "Ground Truth Utterance")) {
        for (int k = 2; k < nf; k++) {
            char want[32];
            snprintf(want, sizeof want, "Distractor_%d", k - 2);
            if (!name_is(f[k], want)) {
                nb_error("%s:%lld: column %d of the header is '%.40s', expected '%s' (test layout: Context,Ground "
                         "Truth Utterance,Distractor_0,...)", what, (long long)hline, k + 1, f[k], want);
                goto fail;
            }
        }
        d->ncand = nf - 1;
        ncols = nf;
    } else {
        nb_error("%s:%lld: not a dialogue header: expected 'Context,Utterance,Label' (train layout) or "
                 "'Context,Ground Truth Utterance,Distractor_0,...' (test layout), got %d column%s starting '%.40s'",
                 what, (long long)hline, nf, nf == 1 ? "" : "s", nf ? f[0] : "");
        goto fail;
    }
    free_fields(f, nf);
    f = NULL;
    while (p < end) {
        if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) { /* blank lines carry nothing */
            p += *p == '\r' ? 2 : 1;
            line++;
            continue;
        }
        int64_t rline = line;
        if (read_record(&p, end, &line, what, &f, &nf)) goto fail;
        if (nf != ncols) {
            nb_error("%s:%lld: expected %d columns as the header has, got %d", what, (long long)rline, ncols, nf);
            goto fail;
        }
        if (blank(f[0])) {
            nb_error("%s:%lld: empty context", what, (long long)rline);
            goto fail;
        }
        for (int k = 1; k < ncols - (d->ncand == 1); k++)
            if (blank(f[k])) {
                nb_error("%s:%lld: column %d: empty %s", what, (long long)rline, k + 1,
                         k == 1 ? "response" : "distractor");
                goto fail;
            }
        int8_t label = 0;
        if (d->ncand == 1) {
            const char *s = f[2];
            while (*s == ' ') s++;
            size_t n = strlen(s);
            while (n && s[n - 1] == ' ') n--;
            if ((n == 1 || (n == 3 && !memcmp(s + 1, ".0", 2))) && (s[0] == '0' || s[0] == '1')) {
                label = (int8_t)(s[0] - '0');
            } else {
                nb_error("%s:%lld: column 3: label '%.20s' is not 0 or 1", what, (long long)rline, f[2]);
                goto fail;
            }
        }
        if (d->n == cap) {
            int64_t nc = cap ? 2 * cap : 256;
            char **c = realloc(d->context, sizeof(char *) * (size_t)nc);
            if (c) d->context = c;
            char **r = realloc(d->cand, sizeof(char *) * (size_t)(nc * d->ncand));
            if (r) d->cand = r;
            int64_t *l = realloc(d->line, sizeof(int64_t) * (size_t)nc);
            if (l) d->line = l;
            int8_t *lb = d->ncand == 1 ? realloc(d->label, (size_t)nc) : NULL;
            if (lb) d->label = lb;
            if (!c || !r || !l || (d->ncand == 1 && !lb)) {
                nb_error("%s:%lld: out of memory", what, (long long)rline);
                goto fail;
            }
            cap = nc;
        }
        d->context[d->n] = f[0];
        for (int k = 0; k < d->ncand; k++) d->cand[d->n * d->ncand + k] = f[1 + k];
        if (d->ncand == 1) {
            free(f[2]);
            d->label[d->n] = label;
        }
        d->line[d->n] = rline;
        d->n++;
        free(f);
        f = NULL;
    }
    if (d->n == 0) {
        nb_error("%s: no rows after the header", what);
        goto fail;
    }
    return d;
fail:
    if (f) free_fields(f, nf);
    nb_dialogue_free(d);
    return NULL;
}

nb_dialogue *nb_dialogue_load(const char *path) {
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return NULL;
    nb_dialogue *d = nb_dialogue_parse((const char *)buf, len, path);
    free(buf);
    return d;
}

/* --- tokens ----------------------------------------------------------------- */

static bool word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

/* The next token of [*pp, end): writes it lower-cased to tok (cut to cap - 1
 * bytes), returns its length, 0 at the end. */
static size_t next_token(const char **pp, const char *end, char *tok, size_t cap) {
    const char *p = *pp;
    while (p < end && (isspace((unsigned char)*p) || (unsigned char)*p < 32)) p++;
    if (p >= end) {
        *pp = p;
        return 0;
    }
    const char *s = p;
    if (end - p >= 7 && (!memcmp(p, "__eou__", 7) || !memcmp(p, "__eot__", 7))) {
        p += 7;
    } else if (word_byte((unsigned char)*p)) {
        while (p < end && (word_byte((unsigned char)*p) ||
                           (*p == '\'' && p + 1 < end && word_byte((unsigned char)p[1]) && p > s)))
            p++;
    } else {
        p++;
    }
    size_t n = 0;
    for (const char *q = s; q < p && n + 1 < cap; q++) tok[n++] = (char)tolower((unsigned char)*q);
    tok[n] = 0;
    *pp = p;
    return n;
}
#define TOKMAX 64

int64_t nb_chat_tokenize(const char *text, char ***tokens) {
    *tokens = NULL;
    const char *p = text, *end = text + strlen(text);
    char tok[TOKMAX];
    int64_t n = 0, cap = 0;
    char **out = NULL;
    size_t k;
    while ((k = next_token(&p, end, tok, sizeof tok))) {
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **t = realloc(out, sizeof(char *) * (size_t)cap);
            if (!t) nb_oom("tokens", 0);
            out = t;
        }
        out[n] = malloc(k + 1);
        if (!out[n]) nb_oom("tokens", 0);
        memcpy(out[n++], tok, k + 1);
    }
    *tokens = out;
    return n;
}

/* --- the vocabulary: words and an open-addressing hash of them ------------- */

struct nb_chat_vocab {
    char **words;
    int n;
    int32_t *slots; /* id + 1, 0 empty */
    uint64_t mask;
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* A table of strings -> counts used while counting. */
typedef struct {
    char **keys;
    int64_t *counts;
    int64_t n;
    int64_t *slots; /* index + 1 */
    uint64_t mask;
} counter_t;

static void counter_grow(counter_t *c) {
    uint64_t size = c->mask ? 2 * (c->mask + 1) : 1024;
    int64_t *slots = calloc(size, sizeof(int64_t));
    char **keys = realloc(c->keys, sizeof(char *) * (size / 2));
    int64_t *counts = realloc(c->counts, sizeof(int64_t) * (size / 2));
    if (!slots || !keys || !counts) nb_oom("the vocabulary", 0);
    c->keys = keys, c->counts = counts;
    for (int64_t i = 0; i < c->n; i++) {
        uint64_t h = hash_str(keys[i]) & (size - 1);
        while (slots[h]) h = (h + 1) & (size - 1);
        slots[h] = i + 1;
    }
    free(c->slots);
    c->slots = slots;
    c->mask = size - 1;
}

static void counter_add(counter_t *c, const char *w) {
    if ((uint64_t)(c->n + 1) * 2 > c->mask + 1 || !c->mask) counter_grow(c);
    uint64_t h = hash_str(w) & c->mask;
    while (c->slots[h]) {
        int64_t i = c->slots[h] - 1;
        if (!strcmp(c->keys[i], w)) {
            c->counts[i]++;
            return;
        }
        h = (h + 1) & c->mask;
    }
    size_t k = strlen(w);
    char *s = malloc(k + 1);
    if (!s) nb_oom("the vocabulary", 0);
    memcpy(s, w, k + 1);
    c->keys[c->n] = s;
    c->counts[c->n] = 1;
    c->slots[h] = ++c->n;
}

static void counter_free(counter_t *c) {
    for (int64_t i = 0; i < c->n; i++) free(c->keys[i]);
    free(c->keys);
    free(c->counts);
    free(c->slots);
}

static void count_text(counter_t *c, const char *text) {
    const char *p = text, *end = text + strlen(text);
    char tok[TOKMAX];
    while (next_token(&p, end, tok, sizeof tok)) counter_add(c, tok);
}

static const counter_t *sort_ctx;
static int by_count(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (sort_ctx->counts[i] != sort_ctx->counts[j]) return sort_ctx->counts[i] > sort_ctx->counts[j] ? -1 : 1;
    return strcmp(sort_ctx->keys[i], sort_ctx->keys[j]);
}

nb_chat_vocab *nb_chat_vocab_from_words(char *const *words, int n) {
    if (n < 1 || strcmp(words[0], "<unk>")) {
        nb_error("a vocabulary starts with '<unk>'");
        return NULL;
    }
    nb_chat_vocab *v = calloc(1, sizeof *v);
    if (!v) nb_oom("the vocabulary", 0);
    uint64_t size = 16;
    while (size < 2 * (uint64_t)n) size *= 2;
    v->slots = calloc(size, sizeof(int32_t));
    v->words = calloc((size_t)n, sizeof(char *));
    if (!v->slots || !v->words) nb_oom("the vocabulary", 0);
    v->mask = size - 1;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(words[i]);
        if (!k || k >= TOKMAX || strpbrk(words[i], " \t\r\n")) {
            nb_error("vocabulary entry %d ('%.40s') is not a token", i, words[i]);
            nb_chat_vocab_free(v);
            return NULL;
        }
        uint64_t h = hash_str(words[i]) & v->mask;
        while (v->slots[h]) {
            if (!strcmp(v->words[v->slots[h] - 1], words[i])) {
                nb_error("vocabulary entry %d ('%.40s') occurs twice", i, words[i]);
                nb_chat_vocab_free(v);
                return NULL;
            }
            h = (h + 1) & v->mask;
        }
        v->words[i] = malloc(k + 1);
        if (!v->words[i]) nb_oom("the vocabulary", 0);
        memcpy(v->words[i], words[i], k + 1);
        v->slots[h] = i + 1;
        v->n = i + 1;
    }
    return v;
}

nb_chat_vocab *nb_chat_vocab_build(const nb_dialogue *d, int64_t min_count) {
    counter_t c = {0};
    for (int64_t i = 0; i < d->n; i++) {
        count_text(&c, d->context[i]);
        for (int k = 0; k < d->ncand; k++) count_text(&c, d->cand[i * d->ncand + k]);
    }
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(c.n + 1));
    char **words = malloc(sizeof(char *) * (size_t)(c.n + 1));
    if (!order || !words) nb_oom("the vocabulary", 0);
    int64_t m = 0;
    for (int64_t i = 0; i < c.n; i++)
        if (c.counts[i] >= min_count && strcmp(c.keys[i], "<unk>")) order[m++] = i;
    sort_ctx = &c;
    qsort(order, (size_t)m, sizeof(int64_t), by_count);
    words[0] = "<unk>";
    for (int64_t i = 0; i < m; i++) words[i + 1] = c.keys[order[i]];
    nb_chat_vocab *v = m + 1 > INT32_MAX ? NULL : nb_chat_vocab_from_words(words, (int)(m + 1));
    free(order);
    free(words);
    counter_free(&c);
    return v;
}

void nb_chat_vocab_free(nb_chat_vocab *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) free(v->words[i]);
    free(v->words);
    free(v->slots);
    free(v);
}

int nb_chat_vocab_size(const nb_chat_vocab *v) { return v->n; }
const char *nb_chat_vocab_word(const nb_chat_vocab *v, int id) { return id >= 0 && id < v->n ? v->words[id] : NULL; }

int32_t nb_chat_vocab_id(const nb_chat_vocab *v, const char *word) {
    uint64_t h = hash_str(word) & v->mask;
    while (v->slots[h]) {
        if (!strcmp(v->words[v->slots[h] - 1], word)) return v->slots[h] - 1;
        h = (h + 1) & v->mask;
    }
    return 0;
}

int64_t nb_chat_encode(const nb_chat_vocab *v, const char *text, int64_t max, bool last, int32_t *out) {
    if (max < 1) nb_fatal("chat_encode", "max must be at least 1, got %lld", (long long)max);
    const char *p = text, *end = text + strlen(text);
    char tok[TOKMAX];
    int64_t n = 0;
    while (next_token(&p, end, tok, sizeof tok)) {
        int32_t id = nb_chat_vocab_id(v, tok);
        if (!last) {
            out[n++] = id;
            if (n == max) break;
        } else {
            out[n % max] = id; /* a ring of the last max */
            n++;
        }
    }
    if (n == 0) {
        out[0] = 0;
        return 1;
    }
    if (last && n > max) {
        /* Rotate the ring so that the oldest kept token comes first. */
        int64_t s = n % max;
        int32_t *tmp = malloc(sizeof(int32_t) * (size_t)max);
        if (!tmp) nb_oom("encoded tokens", 0);
        for (int64_t k = 0; k < max; k++) tmp[k] = out[(s + k) % max];
        memcpy(out, tmp, sizeof(int32_t) * (size_t)max);
        free(tmp);
        n = max;
    }
    return n;
}

/* --- the TF-IDF baseline ----------------------------------------------------- */

/* Token ids of a text in a growing counter (ids are the counter's indices). */
static int64_t doc_ids(counter_t *c, const char *text, int64_t **ids, int64_t *cap) {
    const char *p = text, *end = text + strlen(text);
    char tok[TOKMAX];
    int64_t n = 0;
    while (next_token(&p, end, tok, sizeof tok)) {
        int64_t before = c->n;
        counter_add(c, tok);
        /* The index of tok: new ones are last; else look it up. */
        int64_t id = before < c->n ? c->n - 1 : -1;
        if (id < 0) {
            uint64_t h = hash_str(tok) & c->mask;
            while (strcmp(c->keys[c->slots[h] - 1], tok)) h = (h + 1) & c->mask;
            id = c->slots[h] - 1;
        }
        if (n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            int64_t *t = realloc(*ids, sizeof(int64_t) * (size_t)*cap);
            if (!t) nb_oom("TF-IDF vectors", 0);
            *ids = t;
        }
        (*ids)[n++] = id;
    }
    return n;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* A document as sorted distinct ids with counts. */
typedef struct {
    int64_t *id;
    double *w;
    int64_t n;
} sparse_t;

static void make_sparse(int64_t *ids, int64_t n, sparse_t *s) {
    if (n > 1) qsort(ids, (size_t)n, sizeof(int64_t), cmp_i64); /* ids is NULL for an empty document */
    s->id = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    s->w = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!s->id || !s->w) nb_oom("TF-IDF vectors", 0);
    s->n = 0;
    for (int64_t k = 0; k < n; k++) {
        if (s->n && s->id[s->n - 1] == ids[k]) s->w[s->n - 1] += 1;
        else s->id[s->n] = ids[k], s->w[s->n++] = 1;
    }
}

void nb_chat_tfidf_scores(const nb_dialogue *d, float *scores) {
    int64_t ndoc = d->n * (1 + d->ncand), cap = 0;
    sparse_t *docs = calloc((size_t)ndoc, sizeof(sparse_t));
    if (!docs) nb_oom("TF-IDF vectors", 0);
    counter_t c = {0};
    int64_t *ids = NULL;
    for (int64_t i = 0; i < d->n; i++)
        for (int k = 0; k <= d->ncand; k++) {
            const char *t = k ? d->cand[i * d->ncand + k - 1] : d->context[i];
            int64_t n = doc_ids(&c, t, &ids, &cap);
            make_sparse(ids, n, &docs[i * (1 + d->ncand) + k]);
        }
    double *df = calloc((size_t)(c.n ? c.n : 1), sizeof(double));
    if (!df) nb_oom("TF-IDF vectors", 0);
    for (int64_t j = 0; j < ndoc; j++)
        for (int64_t k = 0; k < docs[j].n; k++) df[docs[j].id[k]] += 1;
    for (int64_t j = 0; j < ndoc; j++) { /* tf * idf, then unit length */
        double ss = 0;
        for (int64_t k = 0; k < docs[j].n; k++) {
            docs[j].w[k] *= log((double)ndoc / df[docs[j].id[k]]);
            ss += docs[j].w[k] * docs[j].w[k];
        }
        double inv = ss > 0 ? 1 / sqrt(ss) : 0;
        for (int64_t k = 0; k < docs[j].n; k++) docs[j].w[k] *= inv;
    }
    for (int64_t i = 0; i < d->n; i++) {
        const sparse_t *q = &docs[i * (1 + d->ncand)];
        for (int k = 0; k < d->ncand; k++) {
            const sparse_t *r = &docs[i * (1 + d->ncand) + 1 + k];
            double dot = 0;
            for (int64_t a = 0, b = 0; a < q->n && b < r->n;) {
                if (q->id[a] == r->id[b]) dot += q->w[a++] * r->w[b++];
                else if (q->id[a] < r->id[b]) a++;
                else b++;
            }
            scores[i * d->ncand + k] = (float)dot;
        }
    }
    for (int64_t j = 0; j < ndoc; j++) free(docs[j].id), free(docs[j].w);
    free(docs);
    free(df);
    free(ids);
    counter_free(&c);
}

double nb_recall_at_k(const float *scores, int64_t n, int ncand, int k) {
    if (n <= 0) return 0;
    /* Row i starts at i * ncand: a negative count walked before scores, and
     * 0 candidates have no true one at column 0. */
    if (ncand < 1) nb_fatal("recall_at_k", "ncand must be >= 1 (the true candidate and its distractors), got %d", ncand);
    double hits = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *s = scores + i * ncand;
        int g = 0, e = 0;
        for (int j = 1; j < ncand; j++) {
            if (s[j] > s[0]) g++;
            else if (s[j] == s[0]) e++;
        }
        double h = (double)(k - g) / (e + 1); /* recall_at_k: ties broken at random, on average */
        hits += h < 0 ? 0 : h > 1 ? 1 : h;
    }
    return hits / (double)n;
}
