/* dialogue_src.c — the dialogue that Debian packages ship, read into
 * conversations, cut into (context, response) pairs, split by group and
 * written as the Ubuntu Dialogue Corpus's CSV files (see dialogue_src.h). */
#include "dialogue_src.h"
#include "io.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

static const char *const source_names[NB_DLG_NSOURCES] = {"wesnoth", "endless-sky", "fortunes", "freedroid",
                                                          "austen", "bible"};
const char *nb__dlg_source_name(int source) {
    return source >= 0 && source < NB_DLG_NSOURCES ? source_names[source] : "?";
}

/* ------------------------------------------------------------------------ */
/* Growing buffers and the conversation store                                */
/* ------------------------------------------------------------------------ */

void nb__sbuf_put(nb__sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        char *p = nb__realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sbuf_puts(nb__sbuf *b, const char *s) { nb__sbuf_put(b, s, strlen(s)); }

void nb__csv_field(nb__sbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        sbuf_puts(b, s);
        return;
    }
    nb__sbuf_put(b, "\"", 1);
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
        nb__sbuf_put(b, s, (size_t)(q - s) + 1);
        nb__sbuf_put(b, "\"", 1);
    }
    sbuf_puts(b, s);
    nb__sbuf_put(b, "\"", 1);
}

/* Grows *p (elements of size sz, capacity *cap) to hold n + 1. */
static bool grow(void *pp, int64_t n, int64_t *cap, size_t sz) {
    if (n < *cap) return true;
    int64_t c = *cap ? *cap * 2 : 64;
    void *q = nb__realloc(*(void **)pp, (size_t)c * sz);
    if (!q) return false;
    *(void **)pp = q;
    *cap = c;
    return true;
}

static char *dup_n(const char *s, size_t n) {
    char *p = nb__malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void nb__dlg_init(nb__dlg *d) { memset(d, 0, sizeof *d); }

void nb__dlg_free(nb__dlg *d) {
    for (int64_t i = 0; i < d->nturns; i++) free(d->turns[i]);
    for (int64_t i = 0; i < d->ngroups; i++) free(d->groups[i]);
    free(d->turns);
    free(d->convs);
    free(d->groups);
    free(d->group_source);
    free(d->last_speaker);
    memset(d, 0, sizeof *d);
}

void nb__dlg_end(nb__dlg *d) {
    if (!d->open) return;
    d->open = false;
    free(d->last_speaker);
    d->last_speaker = NULL;
    nb__dlg_conv *c = &d->convs[d->nconvs];
    if (c->n < 2) { /* nothing to pair: drop its turns */
        for (int32_t i = 0; i < c->n; i++) free(d->turns[--d->nturns]);
        return;
    }
    d->nconvs++;
}

void nb__dlg_begin(nb__dlg *d, int source, const char *group) {
    nb__dlg_end(d);
    if (d->oom) return;
    int64_t g = d->ngroups - 1;
    while (g >= 0 && (d->group_source[g] != source || strcmp(d->groups[g], group))) g--;
    if (g < 0) {
        if (!grow(&d->groups, d->ngroups, &d->capgroups, sizeof *d->groups) ||
            !(d->groups[d->ngroups] = dup_n(group, strlen(group)))) {
            d->oom = true;
            return;
        }
        int64_t cap = d->capgroups;
        int32_t *gs = nb__realloc(d->group_source, (size_t)cap * sizeof *gs);
        if (!gs) {
            free(d->groups[d->ngroups]);
            d->oom = true;
            return;
        }
        d->group_source = gs;
        d->group_source[d->ngroups] = source;
        g = d->ngroups++;
    }
    if (!grow(&d->convs, d->nconvs, &d->capconvs, sizeof *d->convs)) {
        d->oom = true;
        return;
    }
    d->convs[d->nconvs] = (nb__dlg_conv){.group = (int32_t)g, .source = source, .first = d->nturns, .n = 0};
    d->open = true;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static int utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || (size_t)k > n) return 0;
    for (int i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (k == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))) return 0; /* overlong, surrogate */
    if (k == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))) return 0; /* overlong, > U+10FFFF */
    return k;
}

/* text cleaned (see nb__dlg_say), malloc'd; NULL on out of memory. */
static char *clean_text(const char *text, size_t len) {
    char *out = nb__malloc(len + 1);
    if (!out) return NULL;
    size_t o = 0;
    bool space = false;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x20 || s[i] == ' ' || s[i] == 0x7F) {
            space = true;
            i++;
            continue;
        }
        if (len - i >= 7 && (!strncmp((const char *)s + i, "__eou__", 7) || !strncmp((const char *)s + i, "__eot__", 7))) {
            space = true;
            i += 7;
            continue;
        }
        if (space && o) out[o++] = ' ';
        space = false;
        int k = utf8_len(s + i, len - i);
        if (!k) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        }
    }
    out[o] = 0;
    return out;
}

void nb__dlg_say(nb__dlg *d, const char *speaker, const char *text, size_t len) {
    if (d->oom || !d->open) return;
    char *t = clean_text(text, len);
    if (!t) {
        d->oom = true;
        return;
    }
    size_t tl = strlen(t);
    if (!tl) {
        free(t);
        return;
    }
    nb__dlg_conv *c = &d->convs[d->nconvs];
    bool same = speaker && d->last_speaker && c->n > 0 && !strcmp(speaker, d->last_speaker);
    if (same) { /* "u1 __eou__" + " u2 __eou__" */
        char **turn = &d->turns[d->nturns - 1];
        size_t ol = strlen(*turn);
        char *p = nb__realloc(*turn, ol + tl + 10);
        if (!p) {
            free(t);
            d->oom = true;
            return;
        }
        p[ol] = ' ';
        memcpy(p + ol + 1, t, tl);
        memcpy(p + ol + 1 + tl, " __eou__", 9);
        *turn = p;
        free(t);
        return;
    }
    char *p = nb__realloc(t, tl + 9);
    if (!p || !grow(&d->turns, d->nturns, &d->capturns, sizeof *d->turns)) {
        free(p ? p : t);
        d->oom = true;
        return;
    }
    memcpy(p + tl, " __eou__", 9);
    d->turns[d->nturns++] = p;
    c->n++;
    free(d->last_speaker);
    d->last_speaker = speaker ? dup_n(speaker, strlen(speaker)) : NULL;
    if (speaker && !d->last_speaker) d->oom = true;
}

/* What a parser added, to take back when the file turns out malformed. */
typedef struct {
    int64_t nturns, nconvs, ngroups;
} mark;
static mark mark_of(const nb__dlg *d) { return (mark){d->nturns, d->nconvs, d->ngroups}; }

/* Closes the file's last conversation; on failure (rc != 0 or out of
 * memory) removes everything added since m. Returns 0 or -1. */
static int finish(nb__dlg *d, mark m, int rc, const char *name) {
    nb__dlg_end(d);
    if (rc == 0 && !d->oom) return 0;
    if (d->oom) rc = nb_error("%s: out of memory", name);
    while (d->nturns > m.nturns) free(d->turns[--d->nturns]);
    while (d->ngroups > m.ngroups) free(d->groups[--d->ngroups]);
    d->nconvs = m.nconvs;
    d->oom = false;
    return rc;
}

/* Line number of position p in buf. */
static int line_at(const char *buf, const char *p) {
    int line = 1;
    for (const char *q = buf; q < p; q++) line += *q == '\n';
    return line;
}

/* ------------------------------------------------------------------------ */
/* Wesnoth WML: [message] blocks with speaker= and message= _ "..."         */
/* ------------------------------------------------------------------------ */

/* Removes Pango markup (<span ...>, <i>, </b>) in place. */
static void strip_markup(char *s) {
    char *o = s;
    for (char *p = s; *p;) {
        if (*p == '<' && (isalpha((unsigned char)p[1]) || p[1] == '/')) {
            char *e = strchr(p, '>');
            if (e) {
                p = e + 1;
                continue;
            }
        }
        *o++ = *p++;
    }
    *o = 0;
}

#define WML_MAXDEPTH 128
int nb__dlg_parse_wml(nb__dlg *d, const char *name, const char *buf, size_t len) {
    mark m = mark_of(d);
    char group[512];
    snprintf(group, sizeof group, "%s", name);
    char stack[WML_MAXDEPTH][32];
    int depth = 0, msg_depth = -1, rc = 0;
    nb__sbuf speaker = {0}, text = {0}, val = {0};
    const char *p = buf, *end = buf + len;
    bool line_start = true;
    while (p < end && rc == 0) {
        char c = *p;
        if (c == '\n') {
            line_start = true;
            p++;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r') {
            p++;
            continue;
        }
        bool at_start = line_start;
        line_start = false;
        if (c == '#') { /* comments and preprocessor lines */
            if (at_start && end - p >= 7 && (!memcmp(p, "#define", 7) || !memcmp(p, "#enddef", 7))) nb__dlg_end(d);
            while (p < end && *p != '\n') p++;
            continue;
        }
        if (c == '{') { /* a macro call: skipped, strings in it included */
            int nest = 0;
            for (; p < end; p++) {
                if (*p == '"') {
                    for (p++; p < end && !(*p == '"' && (p + 1 >= end || p[1] != '"')); p++)
                        if (*p == '"') p++;
                    if (p >= end) break;
                } else if (*p == '{') {
                    nest++;
                } else if (*p == '}' && --nest == 0) {
                    p++;
                    break;
                }
            }
            continue;
        }
        if (c == '[') {
            const char *q = p + 1;
            while (q < end && (isalnum((unsigned char)*q) || *q == '_' || *q == '/' || *q == '+')) q++;
            if (q >= end || *q != ']' || q == p + 1) { /* not a tag */
                p++;
                continue;
            }
            const char *nm = p + 1;
            size_t nl = (size_t)(q - nm);
            p = q + 1;
            if (*nm == '/') { /* closing: pops to the matching open tag */
                nm++, nl--;
                int i = depth - 1;
                while (i >= 0 && (strlen(stack[i]) != nl || strncmp(stack[i], nm, nl))) i--;
                if (i < 0) continue; /* a macro's half of a tag: ignored */
                for (int k = depth - 1; k >= i; k--) {
                    if (k + 1 == msg_depth) {
                        msg_depth = -1;
                        if (speaker.n && text.n && !speaker.oom && !text.oom &&
                            strcasecmp(speaker.p, "narrator") != 0) {
                            if (!d->open) nb__dlg_begin(d, NB_DLG_WESNOTH, group);
                            strip_markup(text.p);
                            nb__dlg_say(d, speaker.p, text.p, strlen(text.p));
                        }
                    }
                    if (!strcmp(stack[k], "event")) nb__dlg_end(d);
                }
                depth = i;
                continue;
            }
            if (*nm == '+') nm++, nl--;
            if (depth == WML_MAXDEPTH) {
                rc = nb_error("%s:%d: tags nested deeper than %d", name, line_at(buf, p), WML_MAXDEPTH);
                break;
            }
            snprintf(stack[depth], sizeof stack[depth], "%.*s", (int)(nl < 31 ? nl : 31), nm);
            depth++;
            if (!strcmp(stack[depth - 1], "event")) nb__dlg_begin(d, NB_DLG_WESNOTH, group);
            if (!strcmp(stack[depth - 1], "message") && msg_depth < 0) {
                msg_depth = depth;
                speaker.n = text.n = 0;
                if (speaker.p) speaker.p[0] = 0;
                if (text.p) text.p[0] = 0;
            }
            continue;
        }
        if (isalpha((unsigned char)c) || c == '_') { /* key=value */
            const char *k = p;
            while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == ',')) p++;
            size_t kl = (size_t)(p - k);
            const char *q = p;
            while (q < end && (*q == ' ' || *q == '\t')) q++;
            if (q >= end || *q != '=') continue;
            p = q + 1;
            val.n = 0;
            if (val.p) val.p[0] = 0;
            for (;;) { /* pieces joined by + */
                while (p < end && (*p == ' ' || *p == '\t')) p++;
                if (p < end && *p == '_') {
                    const char *r = p + 1;
                    while (r < end && (*r == ' ' || *r == '\t')) r++;
                    if (r < end && *r == '"') p = r;
                }
                if (p < end && *p == '"') {
                    const char *open = p++;
                    bool closed = false;
                    while (!closed) {
                        const char *s = p;
                        while (p < end && *p != '"') p++;
                        nb__sbuf_put(&val, s, (size_t)(p - s));
                        if (p >= end) break;
                        if (p + 1 < end && p[1] == '"') { /* "" is a quote */
                            nb__sbuf_put(&val, "\"", 1);
                            p += 2;
                            continue;
                        }
                        p++;
                        closed = true;
                    }
                    if (!closed) {
                        rc = nb_error("%s:%d: unterminated string", name, line_at(buf, open));
                        break;
                    }
                } else if (end - p >= 2 && p[0] == '<' && p[1] == '<') {
                    const char *open = p;
                    const char *r = NULL;
                    for (const char *s = p + 2; s + 1 < end; s++)
                        if (s[0] == '>' && s[1] == '>') {
                            r = s;
                            break;
                        }
                    if (!r) {
                        rc = nb_error("%s:%d: unterminated <<raw string>>", name, line_at(buf, open));
                        break;
                    }
                    p = r + 2;
                } else if (p < end && *p == '{') {
                    break; /* a macro as the value: the loop above skips it */
                } else {
                    const char *s = p;
                    while (p < end && *p != '\n' && *p != '#' && *p != '+') p++;
                    const char *e = p;
                    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
                    nb__sbuf_put(&val, s, (size_t)(e - s));
                }
                const char *r = p;
                while (r < end && (*r == ' ' || *r == '\t' || *r == '\r')) r++;
                if (r < end && *r == '+') {
                    for (p = r + 1; p < end && isspace((unsigned char)*p); p++) {}
                    continue;
                }
                break;
            }
            if (rc) break;
            if (msg_depth == depth && !val.oom) {
                if (kl == 7 && !strncmp(k, "speaker", 7)) {
                    speaker.n = 0;
                    nb__sbuf_put(&speaker, val.p ? val.p : "", val.n);
                } else if (kl == 7 && !strncmp(k, "message", 7)) {
                    text.n = 0;
                    nb__sbuf_put(&text, val.p ? val.p : "", val.n);
                }
            }
            if (val.oom || speaker.oom || text.oom) d->oom = true;
            continue;
        }
        p++; /* anything else (stray characters) */
    }
    free(speaker.p);
    free(text.p);
    free(val.p);
    return finish(d, m, rc, name);
}

/* ------------------------------------------------------------------------ */
/* Endless Sky: conversation blocks of the data files (.txt)              */
/* ------------------------------------------------------------------------ */

#define ES_MAXTOK 4
typedef struct {
    int indent, line, ntok;
    bool quoted0; /* the first token was quoted: a paragraph or an option */
    const char *tok[ES_MAXTOK];
    int toklen[ES_MAXTOK];
} es_line;

/* The file as lines of tokens (blank and comment lines left out). */
static int es_lines(const char *name, const char *buf, size_t len, es_line **out, int64_t *n) {
    int64_t cap = 0;
    *out = NULL;
    *n = 0;
    const char *p = buf, *end = buf + len;
    for (int line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        es_line l = {.line = line};
        const char *q = p;
        while (q < eol && (*q == '\t' || *q == ' ')) q++, l.indent++;
        while (q < eol && l.ntok < ES_MAXTOK) {
            while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
            if (q >= eol || *q == '#') break;
            const char *s, *e;
            bool quoted = *q == '"' || *q == '`';
            if (quoted) {
                char qc = *q;
                s = q + 1;
                e = memchr(s, qc, (size_t)(eol - s));
                if (!e) {
                    free(*out);
                    *out = NULL;
                    return nb_error("%s:%d: unterminated %c quote", name, line, qc);
                }
                q = e + 1;
            } else {
                s = q;
                while (q < eol && *q != ' ' && *q != '\t' && *q != '\r') q++;
                e = q;
            }
            if (l.ntok == 0) l.quoted0 = quoted;
            l.tok[l.ntok] = s;
            l.toklen[l.ntok++] = (int)(e - s);
        }
        p = eol < end ? eol + 1 : end;
        if (!l.ntok) continue;
        if (!grow(out, *n, &cap, sizeof **out)) {
            free(*out);
            *out = NULL;
            return nb_error("%s: out of memory", name);
        }
        (*out)[(*n)++] = l;
    }
    return 0;
}

static bool tok_is(const es_line *l, int k, const char *w) {
    return k < l->ntok && l->toklen[k] == (int)strlen(w) && !strncmp(l->tok[k], w, strlen(w));
}

/* The end of the block of line i: the first later line not indented deeper. */
static int64_t es_block_end(const es_line *L, int64_t n, int64_t i) {
    int64_t j = i + 1;
    while (j < n && L[j].indent > L[i].indent) j++;
    return j;
}

/* The first paragraph (quoted child line) at or after item k of the items. */
static const es_line *es_next_text(const es_line *L, const int64_t *items, int64_t nitems, int64_t k) {
    for (; k < nitems; k++)
        if (L[items[k]].quoted0) return &L[items[k]];
    return NULL;
}

static bool es_ends(const es_line *l) {
    static const char *const ends[] = {"accept", "decline", "defer", "launch", "flee", "depart", "die", "exit"};
    for (size_t k = 0; k < sizeof ends / sizeof *ends; k++)
        if (!l->quoted0 && tok_is(l, 0, ends[k])) return true;
    return false;
}

static void es_conversation(nb__dlg *d, const char *name, const es_line *L, int64_t n, int64_t ci, int64_t *items) {
    int64_t bend = es_block_end(L, n, ci), nitems = 0;
    if (bend == ci + 1) return;
    int child = L[ci + 1].indent;
    for (int64_t j = ci + 1; j < bend; j++)
        if (L[j].indent == child) items[nitems++] = j;
    char group[600];
    snprintf(group, sizeof group, "%s:%d", name, L[ci].line);
    const es_line *narr[3];
    int nnarr = 0;
    for (int64_t k = 0; k < nitems; k++) {
        const es_line *it = &L[items[k]];
        if (it->quoted0) {
            if (nnarr == 3) memmove(narr, narr + 1, 2 * sizeof *narr), nnarr--;
            narr[nnarr++] = it;
            continue;
        }
        if (!tok_is(it, 0, "choice")) continue;
        int64_t cend = es_block_end(L, n, items[k]);
        if (cend == items[k] + 1) continue;
        const es_line *after = es_next_text(L, items, nitems, k + 1);
        for (int64_t j = items[k] + 1; j < cend; j++) {
            if (!L[j].quoted0 || L[j].indent != L[items[k] + 1].indent) continue;
            /* the option's own lines: goto LABEL or an ending */
            const es_line *reply = after;
            for (int64_t s = j + 1; s < cend && L[s].indent > L[j].indent; s++) {
                if (es_ends(&L[s])) reply = NULL;
                if (!L[s].quoted0 && tok_is(&L[s], 0, "goto") && L[s].ntok > 1) {
                    reply = NULL;
                    for (int64_t t = 0; t < nitems; t++)
                        if (tok_is(&L[items[t]], 0, "label") && L[items[t]].ntok > 1 &&
                            L[items[t]].toklen[1] == L[s].toklen[1] &&
                            !strncmp(L[items[t]].tok[1], L[s].tok[1], (size_t)L[s].toklen[1])) {
                            reply = es_next_text(L, items, nitems, t + 1);
                            break;
                        }
                }
            }
            nb__dlg_begin(d, NB_DLG_ENDLESS_SKY, group);
            for (int a = 0; a < nnarr; a++) nb__dlg_say(d, "narrator", narr[a]->tok[0], (size_t)narr[a]->toklen[0]);
            nb__dlg_say(d, "player", L[j].tok[0], (size_t)L[j].toklen[0]);
            if (reply) nb__dlg_say(d, "narrator", reply->tok[0], (size_t)reply->toklen[0]);
            nb__dlg_end(d);
        }
        nnarr = 0;
    }
}

int nb__dlg_parse_endless_sky(nb__dlg *d, const char *name, const char *buf, size_t len) {
    mark m = mark_of(d);
    es_line *L;
    int64_t n;
    if (es_lines(name, buf, len, &L, &n)) return -1;
    int64_t *items = n ? nb__malloc((size_t)n * sizeof *items) : NULL;
    if (n && !items) {
        free(L);
        return nb_error("%s: out of memory", name);
    }
    for (int64_t i = 0; i < n; i++)
        if (!L[i].quoted0 && tok_is(&L[i], 0, "conversation")) es_conversation(d, name, L, n, i, items);
    free(items);
    free(L);
    return finish(d, m, 0, name);
}

/* ------------------------------------------------------------------------ */
/* fortunes: IRC logs (<nick> text) and Q:/A: riddles, entries split by %   */
/* ------------------------------------------------------------------------ */

/* Whether the line (n bytes) is an attribution, "-- Author" after blanks. */
static bool attribution(const char *s, size_t n) {
    size_t k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
    return n - k >= 2 && s[k] == '-' && s[k + 1] == '-';
}

int nb__dlg_parse_fortunes(nb__dlg *d, const char *name, const char *buf, size_t len) {
    mark m = mark_of(d);
    if (memchr(buf, 0, len)) return nb_error("%s: binary data (a NUL byte), not a fortune file", name);
    enum { NONE, IRC, QA } mode = NONE;
    const char *p = buf, *end = buf + len;
    int entry = 0;
    char group[600], who[40] = "";
    nb__sbuf u = {0}; /* the utterance being read */
    for (;;) {
        const char *eol = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!eol) eol = end;
        const char *s = p;
        size_t n = (size_t)(eol - s);
        if (n && s[n - 1] == '\r') n--;
        bool eof = p >= end;
        p = eol < end ? eol + 1 : end;
        bool sep = eof || (n == 1 && s[0] == '%');
        const char *gt = !eof && n > 2 && s[0] == '<' ? memchr(s, '>', n < 34 ? n : 34) : NULL;
        bool nick = gt && gt - s > 1 && gt + 1 < s + n && gt[1] == ' ' && !memchr(s, ' ', (size_t)(gt - s));
        bool act = mode == IRC && n > 2 && s[0] == '*' && s[1] == ' ';
        bool qa = n > 2 && (s[0] == 'Q' || s[0] == 'A') && s[1] == ':';
        if (!sep && !nick && !act && !qa) {
            bool cont = u.n && n && !attribution(s, n) &&
                        ((mode == IRC && (s[0] == ' ' || s[0] == '\t')) || mode == QA);
            if (cont) {
                nb__sbuf_put(&u, " ", 1);
                nb__sbuf_put(&u, s, n);
                continue;
            }
        }
        if (u.n && !u.oom) { /* any other line ends the utterance */
            if (!d->open) {
                snprintf(group, sizeof group, "%s:%d", name, entry);
                nb__dlg_begin(d, NB_DLG_FORTUNES, group);
            }
            nb__dlg_say(d, who, u.p, u.n);
        }
        if (u.oom) d->oom = true;
        u.n = 0;
        if (sep) {
            nb__dlg_end(d);
            entry++;
            mode = NONE;
            if (eof) break;
        } else if (nick) {
            const char *nk = s + 1;
            while (nk < gt && (*nk == '@' || *nk == '+')) nk++;
            snprintf(who, sizeof who, "%.*s", (int)(gt - nk), nk);
            nb__sbuf_put(&u, gt + 2, (size_t)(s + n - gt - 2));
            mode = IRC;
        } else if (act) { /* "* nick does something": nick's utterance */
            const char *nk = s + 2, *sp = memchr(nk, ' ', (size_t)(s + n - nk));
            size_t kl = sp ? (size_t)(sp - nk) : (size_t)(s + n - nk);
            snprintf(who, sizeof who, "%.*s", (int)(kl < 39 ? kl : 39), nk);
            nb__sbuf_put(&u, nk, (size_t)(s + n - nk));
        } else if (qa) {
            snprintf(who, sizeof who, "%c", s[0]);
            nb__sbuf_put(&u, s + 2, n - 2);
            mode = QA;
        } else if (n) {
            mode = NONE;
        }
    }
    free(u.p);
    return finish(d, m, 0, name);
}

/* ------------------------------------------------------------------------ */
/* Freedroid RPG: X:says(_"...") and the player's node texts in Lua        */
/* ------------------------------------------------------------------------ */

/* Reads the Lua string literal at *pp ("..." or '...', with escapes) into b;
 * returns 1, 0 if *pp is not at a string, -1 if it is unterminated. */
static int lua_string(const char **pp, const char *end, nb__sbuf *b) {
    const char *p = *pp;
    if (p >= end || (*p != '"' && *p != '\'')) return 0;
    char q = *p++;
    b->n = 0;
    nb__sbuf_put(b, "", 0);
    while (p < end && *p != q) {
        if (*p == '\n') return -1;
        if (*p == '\\' && p + 1 < end) {
            char e = p[1];
            char c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
            nb__sbuf_put(b, &c, 1);
            p += 2;
            continue;
        }
        nb__sbuf_put(b, p++, 1);
    }
    if (p >= end) return -1;
    *pp = p + 1;
    return 1;
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && isspace((unsigned char)*p)) p++;
    return p;
}

int nb__dlg_parse_freedroid(nb__dlg *d, const char *name, const char *buf, size_t len) {
    mark m = mark_of(d);
    const char *p = buf, *end = buf + len;
    nb__sbuf s = {0};
    int rc = 0;
    while (p < end && !rc) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') { /* comments, --[[ long ]] ones too */
            if (end - p >= 4 && p[2] == '[' && p[3] == '[') {
                const char *e = memmem(p + 4, (size_t)(end - p - 4), "]]", 2);
                if (!e) {
                    rc = nb_error("%s:%d: unterminated --[[ comment", name, line_at(buf, p));
                    break;
                }
                p = e + 2;
            } else {
                while (p < end && *p != '\n') p++;
            }
            continue;
        }
        if (*p == '"' || *p == '\'') { /* a string outside the forms below */
            const char *open = p;
            if (lua_string(&p, end, &s) < 0) {
                rc = nb_error("%s:%d: unterminated string", name, line_at(buf, open));
                break;
            }
            continue;
        }
        if (end - p >= 2 && p[0] == '[' && p[1] == '[') { /* a long string: skipped */
            const char *e = memmem(p + 2, (size_t)(end - p - 2), "]]", 2);
            p = e ? e + 2 : end;
            continue;
        }
        if (!(isalpha((unsigned char)*p) || *p == '_')) {
            p++;
            continue;
        }
        const char *id = p;
        while (p < end && (isalnum((unsigned char)*p) || *p == '_')) p++;
        size_t il = (size_t)(p - id);
        if (il > 0 && id > buf && (isalnum((unsigned char)id[-1]) || id[-1] == '_' || id[-1] == '.')) continue;
        const char *q = skip_ws(p, end);
        if (q < end && *q == '=' && (q + 1 >= end || q[1] != '=')) {
            const char *v = skip_ws(q + 1, end);
            bool tr = v < end && *v == '_';
            if (tr) v = skip_ws(v + 1, end);
            if ((il == 2 && !strncmp(id, "id", 2)) || (il == 4 && !strncmp(id, "text", 4) && tr)) {
                int r = lua_string(&v, end, &s);
                if (r < 0) {
                    rc = nb_error("%s:%d: unterminated string", name, line_at(buf, q));
                    break;
                }
                if (r == 0 || s.oom) continue;
                if (il == 2) { /* a node: its own exchange */
                    nb__dlg_begin(d, NB_DLG_FREEDROID, name);
                } else if (d->open) {
                    nb__dlg_say(d, "Tux", s.p, s.n); /* the node's text is the player's line */
                }
                p = v;
            } else if (end - v >= 8 && !strncmp(v, "function", 8) && !(il == 4 && !strncmp(id, "code", 4))) {
                /* FirstTime = function(): a scene of its own; a node's code = function() is part of the node */
                nb__dlg_begin(d, NB_DLG_FREEDROID, name);
            }
            continue;
        }
        if (q < end && *q == ':' && end - q >= 6 && !strncmp(q + 1, "says", 4)) {
            const char *v = skip_ws(q + 5, end);
            if (v >= end || *v != '(') continue;
            v = skip_ws(v + 1, end);
            if (v < end && *v == '_') v = skip_ws(v + 1, end);
            int r = lua_string(&v, end, &s);
            if (r < 0) {
                rc = nb_error("%s:%d: unterminated string", name, line_at(buf, q));
                break;
            }
            if (r == 1 && !s.oom) {
                char who[40];
                snprintf(who, sizeof who, "%.*s", (int)(il < 39 ? il : 39), id);
                if (!d->open) nb__dlg_begin(d, NB_DLG_FREEDROID, name);
                nb__dlg_say(d, who, s.p, s.n);
                p = v;
            }
        }
        if (s.oom) d->oom = true;
    }
    if (s.oom) d->oom = true;
    free(s.p);
    return finish(d, m, rc, name);
}

/* ------------------------------------------------------------------------ */
/* Jane Austen: R's lazy-load database of character vectors                 */
/* ------------------------------------------------------------------------ */

static bool quoted_paragraph(const char *s) {
    return s[0] == '"' || !strncmp(s, "\xE2\x80\x9C", 3);
}

int nb__dlg_add_novel(nb__dlg *d, const char *name, char *const *lines, int64_t nlines) {
    mark m = mark_of(d);
    const char *title = NULL;
    for (int64_t i = 0; i < nlines && !title; i++)
        if (lines[i] && lines[i][strspn(lines[i], " \t")]) title = lines[i] + strspn(lines[i], " \t");
    if (!title) return 0;
    char group[600];
    int chapter = 0;
    snprintf(group, sizeof group, "%s:%.80s:%d", name, title, chapter);
    nb__sbuf para = {0};
    for (int64_t i = 0; i <= nlines; i++) {
        const char *l = i < nlines && lines[i] ? lines[i] + strspn(lines[i], " \t") : "";
        if (*l) {
            if (para.n) nb__sbuf_put(&para, " ", 1);
            sbuf_puts(&para, l);
            continue;
        }
        if (!para.n || para.oom) continue;
        if (!strncasecmp(para.p, "chapter ", 8)) {
            nb__dlg_end(d);
            snprintf(group, sizeof group, "%s:%.80s:%d", name, title, ++chapter);
        } else if (quoted_paragraph(para.p)) {
            if (!d->open) nb__dlg_begin(d, NB_DLG_AUSTEN, group);
            nb__dlg_say(d, NULL, para.p, para.n);
        } else {
            nb__dlg_end(d);
        }
        para.n = 0;
    }
    if (para.oom) d->oom = true;
    free(para.p);
    return finish(d, m, 0, name);
}

/* XDR reads over an inflated object. */
typedef struct {
    const uint8_t *p, *end;
    bool bad;
} xdr;
static int32_t xdr_int(xdr *x) {
    if (x->end - x->p < 4) {
        x->bad = true;
        return 0;
    }
    int32_t v = (int32_t)nb__be32(x->p);
    x->p += 4;
    return v;
}

/* One inflated object: a character vector becomes a novel (others are
 * left alone). Returns 0 or -1 (malformed). */
static int rdb_object(nb__dlg *d, const char *name, int k, const uint8_t *obj, size_t n) {
    xdr x = {obj, obj + n, false};
    if (n < 2 || obj[0] != 'X' || obj[1] != '\n') return nb_error("%s: object %d: not R's XDR serialization", name, k);
    x.p += 2;
    int version = xdr_int(&x);
    xdr_int(&x);
    xdr_int(&x);
    if (version == 3) {
        int32_t nl = xdr_int(&x);
        if (nl < 0 || nl > x.end - x.p) x.bad = true;
        else x.p += nl;
    } else if (version != 2) {
        x.bad = true;
    }
    int32_t flags = xdr_int(&x);
    if (x.bad) return nb_error("%s: object %d: truncated or unknown serialization header", name, k);
    if ((flags & 0xFF) != 16) return 0; /* not a character vector */
    int64_t len = xdr_int(&x);
    if (len == -1) len = (int64_t)xdr_int(&x) << 32 | (uint32_t)xdr_int(&x);
    if (x.bad || len < 0 || len > (x.end - x.p) / 8)
        return nb_error("%s: object %d: a character vector of %lld strings does not fit in its %zu bytes", name, k,
                        (long long)len, n);
    char **lines = nb__calloc((size_t)len + 1, sizeof *lines);
    if (!lines) return nb_error("%s: out of memory", name);
    int rc = 0;
    for (int64_t i = 0; i < len && !rc; i++) {
        int32_t cf = xdr_int(&x), cl = xdr_int(&x);
        if (x.bad || (cf & 0xFF) != 9 || cl < -1 || cl > x.end - x.p) {
            rc = nb_error("%s: object %d: string %lld is not a CHARSXP that fits", name, k, (long long)i);
            break;
        }
        if (cl == -1) continue; /* NA */
        bool latin1 = (cf >> 12) & 4;
        char *s = nb__malloc(latin1 ? (size_t)cl * 2 + 1 : (size_t)cl + 1);
        if (!s) {
            rc = nb_error("%s: out of memory", name);
            break;
        }
        if (latin1) {
            size_t o = 0;
            for (int32_t j = 0; j < cl; j++) {
                unsigned c = x.p[j];
                if (c < 0x80) s[o++] = (char)c;
                else s[o++] = (char)(0xC0 | c >> 6), s[o++] = (char)(0x80 | (c & 0x3F));
            }
            s[o] = 0;
        } else {
            memcpy(s, x.p, (size_t)cl);
            s[cl] = 0;
        }
        x.p += cl;
        lines[i] = s;
    }
    if (!rc) {
        char nm[600];
        snprintf(nm, sizeof nm, "%s#%d", name, k);
        rc = nb__dlg_add_novel(d, nm, lines, len);
    }
    for (int64_t i = 0; i < len; i++) free(lines[i]);
    free(lines);
    return rc;
}

#define RDB_MAX_OBJECT (256u << 20)
int nb__dlg_parse_rdb(nb__dlg *d, const char *name, const uint8_t *buf, size_t len) {
    mark m = mark_of(d);
    size_t pos = 0;
    int rc = 0;
    for (int k = 0; pos < len && !rc; k++) {
        if (len - pos < 5) {
            rc = nb_error("%s: object %d at byte %zu: truncated length", name, k, pos);
            break;
        }
        uint32_t ulen = nb__be32(buf + pos);
        if (ulen > RDB_MAX_OBJECT) {
            rc = nb_error("%s: object %d at byte %zu: %u bytes uncompressed, over the %u MiB limit", name, k, pos,
                          ulen, RDB_MAX_OBJECT >> 20);
            break;
        }
        /* Deflate turns at most 1032 bytes into every byte it writes: a size
         * beyond that is refused before it is allocated (7 bytes asked for
         * 224 MiB). */
        size_t rest = len - pos - 4;
        if ((uint64_t)ulen > (uint64_t)rest * 1032) {
            rc = nb_error("%s: object %d at byte %zu: %u bytes uncompressed cannot come from the %zu bytes left", name,
                          k, pos, ulen, rest);
            break;
        }
        uint8_t *obj = nb__malloc(ulen ? ulen : 1);
        if (!obj) {
            rc = nb_error("%s: out of memory", name);
            break;
        }
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit(&z) != Z_OK) {
            free(obj);
            rc = nb_error("%s: zlib: cannot start inflating", name);
            break;
        }
        z.next_in = (Bytef *)(buf + pos + 4);
        z.avail_in = (uInt)((len - pos - 4) > 0x7FFFFFFF ? 0x7FFFFFFF : len - pos - 4);
        z.next_out = obj;
        z.avail_out = ulen;
        int zr = inflate(&z, Z_FINISH);
        size_t used = (size_t)z.total_in, got = (size_t)z.total_out;
        inflateEnd(&z);
        if (zr != Z_STREAM_END || got != ulen) {
            free(obj);
            rc = nb_error("%s: object %d at byte %zu: not a whole zlib stream of %u bytes (%s)", name, k, pos, ulen,
                          zr == Z_BUF_ERROR ? "truncated or longer than said" : zr == Z_DATA_ERROR ? "corrupt data"
                                                                                              : "zlib error");
            break;
        }
        rc = rdb_object(d, name, k, obj, got);
        free(obj);
        pos += 4 + used;
    }
    return finish(d, m, rc, name);
}

/* ------------------------------------------------------------------------ */
/* The World English Bible: a SWORD zText module                             */
/* ------------------------------------------------------------------------ */

/* The text of one OSIS verse entry into b: tags removed, with the contents
 * of <note> and <title> (footnotes, section headings); the five XML entities
 * decoded. Sets *chapter to the osisID of a <chapter> start in it ("" if none). */
static void osis_text(const char *s, size_t n, nb__sbuf *b, char *chapter, size_t chap_cap) {
    b->n = 0;
    nb__sbuf_put(b, "", 0);
    chapter[0] = 0;
    int skip = 0; /* inside <note> or <title> */
    for (size_t i = 0; i < n;) {
        if (s[i] == '<') {
            const char *e = memchr(s + i, '>', n - i);
            size_t tl = e ? (size_t)(e - (s + i)) + 1 : n - i;
            const char *t = s + i;
            bool closing = tl > 1 && t[1] == '/', selfclose = tl > 2 && t[tl - 2] == '/';
            const char *nm = t + 1 + closing;
            bool hidden = (tl > 5 && !strncmp(nm, "note", 4) && (nm[4] == ' ' || nm[4] == '>' || nm[4] == '/')) ||
                          (tl > 6 && !strncmp(nm, "title", 5) && (nm[5] == ' ' || nm[5] == '>' || nm[5] == '/'));
            if (hidden && !selfclose) skip += closing ? (skip > 0 ? -1 : 0) : 1;
            if (!closing && tl > 9 && !strncmp(nm, "chapter ", 8)) {
                const char *id = memmem(t, tl, "osisID=\"", 8);
                if (id) {
                    const char *q = memchr(id + 8, '"', tl - (size_t)(id + 8 - t));
                    if (q) snprintf(chapter, chap_cap, "%.*s", (int)(q - id - 8), id + 8);
                }
            }
            i += tl;
            continue;
        }
        if (skip) {
            i++;
            continue;
        }
        if (s[i] == '&') {
            static const char *const ent[][2] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""},
                                                 {"&apos;", "'"}};
            size_t k = 0;
            while (k < 5 && !(n - i >= strlen(ent[k][0]) && !strncmp(s + i, ent[k][0], strlen(ent[k][0])))) k++;
            if (k < 5) {
                sbuf_puts(b, ent[k][1]);
                i += strlen(ent[k][0]);
                continue;
            }
        }
        nb__sbuf_put(b, s + i, 1);
        i++;
    }
}

static bool has_quote_mark(const char *s) { return strstr(s, "\xE2\x80\x9C") || strstr(s, "\xE2\x80\x9D"); }

#define ZTEXT_MAX_BLOCK (64u << 20)
int nb__dlg_parse_ztext(nb__dlg *d, const char *name, const uint8_t *bzs, size_t nbzs, const uint8_t *bzv,
                        size_t nbzv, const uint8_t *bzz, size_t nbzz) {
    mark m = mark_of(d);
    if (nbzs % 12 || nbzv % 10)
        return nb_error("%s: the index sizes (%zu bytes of .bzs, %zu of .bzv) are not whole 12- and 10-byte entries",
                        name, nbzs, nbzv);
    int64_t nblocks = (int64_t)(nbzs / 12), cur = -1;
    uint8_t *block = NULL;
    uLongf blen = 0;
    nb__sbuf t = {0};
    char chapter[128], group[700];
    snprintf(group, sizeof group, "%s:start", name);
    int rc = 0;
    for (size_t v = 0; v < nbzv / 10 && !rc; v++) {
        const uint8_t *e = bzv + v * 10;
        uint32_t b = nb__le32(e), off = nb__le32(e + 4), size = nb__le16(e + 8);
        if (size == 0) continue; /* an empty slot of the versification */
        if (b >= nblocks) {
            rc = nb_error("%s: verse entry %zu: block %u of %lld", name, v, b, (long long)nblocks);
            break;
        }
        if ((int64_t)b != cur) {
            const uint8_t *be = bzs + (size_t)b * 12;
            uint32_t zoff = nb__le32(be), zsize = nb__le32(be + 4), usize = nb__le32(be + 8);
            if ((uint64_t)zoff + zsize > nbzz || usize > ZTEXT_MAX_BLOCK) {
                rc = nb_error("%s: block %u: %u bytes at %u outside the %zu bytes of .bzz (or over %u MiB)", name, b,
                              zsize, zoff, nbzz, ZTEXT_MAX_BLOCK >> 20);
                break;
            }
            if ((uint64_t)usize > (uint64_t)zsize * 1032) { /* deflate's limit, as in the .rdb reader */
                rc = nb_error("%s: block %u: %u bytes uncompressed cannot come from its %u bytes", name, b, usize, zsize);
                break;
            }
            free(block);
            block = nb__malloc(usize ? usize : 1);
            if (!block) {
                rc = nb_error("%s: out of memory", name);
                break;
            }
            blen = usize;
            if (uncompress(block, &blen, bzz + zoff, zsize) != Z_OK || blen != usize) {
                rc = nb_error("%s: block %u: not a zlib stream of %u bytes", name, b, usize);
                break;
            }
            cur = b;
        }
        if ((uint64_t)off + size > blen) {
            rc = nb_error("%s: verse entry %zu: %u bytes at %u outside its block of %lu", name, v, size, off,
                          (unsigned long)blen);
            break;
        }
        osis_text((const char *)block + off, size, &t, chapter, sizeof chapter);
        if (t.oom) {
            d->oom = true;
            break;
        }
        if (chapter[0]) { /* a chapter is a group */
            nb__dlg_end(d);
            snprintf(group, sizeof group, "%s:%s", name, chapter);
        }
        if (!t.n || !t.p[strspn(t.p, " \t\r\n")]) continue; /* headings only */
        if (has_quote_mark(t.p)) {
            if (!d->open) nb__dlg_begin(d, NB_DLG_BIBLE, group);
            nb__dlg_say(d, NULL, t.p, t.n);
        } else {
            nb__dlg_end(d);
        }
    }
    free(block);
    free(t.p);
    return finish(d, m, rc, name);
}

/* ------------------------------------------------------------------------ */
/* Pairs, the split by group, and the CSV files                              */
/* ------------------------------------------------------------------------ */

nb__dlg_pair *nb__dlg_pairs(const nb__dlg *d, uint64_t seed, int64_t *n) {
    *n = 0;
    int64_t total = 0;
    for (int64_t c = 0; c < d->nconvs; c++) total += d->convs[c].n - 1;
    if (total == 0) return NULL;
    int64_t *gp = nb__calloc((size_t)d->ngroups + 1, sizeof *gp), *order = nb__malloc(((size_t)d->ngroups + 1) * sizeof *order);
    int8_t *gsplit = nb__calloc((size_t)d->ngroups + 1, 1);
    nb__dlg_pair *pairs = nb__malloc((size_t)total * sizeof *pairs);
    if (!gp || !order || !gsplit || !pairs) {
        free(gp), free(order), free(gsplit), free(pairs);
        nb_error("out of memory for %lld pairs", (long long)total);
        return NULL;
    }
    for (int64_t c = 0; c < d->nconvs; c++) gp[d->convs[c].group] += d->convs[c].n - 1;
    for (int s = 0; s < NB_DLG_NSOURCES; s++) {
        int64_t ng = 0, sum = 0;
        for (int64_t g = 0; g < d->ngroups; g++)
            if (d->group_source[g] == s && gp[g] > 0) order[ng++] = g, sum += gp[g];
        nb_rng r;
        nb_rng_seed(&r, seed, (uint64_t)s + 1);
        nb_rng_shuffle(&r, order, ng);
        int64_t cum = 0;
        for (int64_t i = 0; i < ng; i++) {
            /* train while under 80% of the source's pairs, then valid to 90% */
            gsplit[order[i]] = (int8_t)(cum * 10 < sum * 8 ? 0 : cum * 10 < sum * 9 ? 1 : 2);
            cum += gp[order[i]];
        }
    }
    for (int64_t c = 0; c < d->nconvs; c++)
        for (int32_t t = 1; t < d->convs[c].n; t++)
            pairs[(*n)++] = (nb__dlg_pair){.conv = c, .resp = t, .split = gsplit[d->convs[c].group]};
    free(gp), free(order), free(gsplit);
    return pairs;
}

char *nb__dlg_context(const nb__dlg *d, const nb__dlg_pair *p) {
    const nb__dlg_conv *c = &d->convs[p->conv];
    int32_t from = p->resp > NB_DLG_MAX_CONTEXT_TURNS ? p->resp - NB_DLG_MAX_CONTEXT_TURNS : 0;
    nb__sbuf b = {0};
    for (int32_t t = from; t < p->resp; t++) {
        if (t > from) nb__sbuf_put(&b, " ", 1);
        sbuf_puts(&b, d->turns[c->first + t]);
        nb__sbuf_put(&b, " __eot__", 8);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static bool avoided(const char *s, const char *const *avoid, int navoid) {
    for (int k = 0; k < navoid; k++)
        if (!strcmp(s, avoid[k])) return true;
    return false;
}

/* A random response of the split (idx: its pairs) different from each of
 * avoid[0..navoid), uniform over the pairs that qualify; NULL if none does.
 * Drawing until one qualifies is fast while most do (a real corpus); after 64
 * misses the qualifying pairs are counted and one of them is drawn, so a split
 * with few distinct responses fails (or succeeds) in one pass, not after
 * thousands of draws. */
static const char *draw_other(const nb__dlg *d, const nb__dlg_pair *pairs, const int64_t *idx, int64_t n, nb_rng *r,
                              const char *const *avoid, int navoid) {
    for (int tries = 0; tries < 64; tries++) {
        const char *s = nb__dlg_response(d, &pairs[idx[nb_rng_below(r, (uint32_t)n)]]);
        if (!avoided(s, avoid, navoid)) return s;
    }
    int64_t ok = 0;
    for (int64_t i = 0; i < n; i++) ok += !avoided(nb__dlg_response(d, &pairs[idx[i]]), avoid, navoid);
    if (ok == 0) return NULL;
    int64_t pick = nb_rng_below(r, (uint32_t)ok);
    for (int64_t i = 0;; i++) {
        const char *s = nb__dlg_response(d, &pairs[idx[i]]);
        if (!avoided(s, avoid, navoid) && pick-- == 0) return s;
    }
}

char *nb__dlg_csv(const nb__dlg *d, const nb__dlg_pair *pairs, int64_t npairs, int split, uint64_t seed,
                  size_t *len) {
    static const char *const names[3] = {"train", "valid", "test"};
    int64_t n = 0;
    for (int64_t i = 0; i < npairs; i++) n += pairs[i].split == split;
    int64_t *idx = nb__malloc(((size_t)n + 1) * sizeof *idx), *rows = NULL;
    if (!idx) {
        nb_error("out of memory");
        return NULL;
    }
    n = 0;
    for (int64_t i = 0; i < npairs; i++)
        if (pairs[i].split == split) idx[n++] = i;
    nb__sbuf b = {0};
    nb_rng r;
    nb_rng_seed(&r, seed, 100 + (uint64_t)split);
    bool fail = false;
    if (split == 0) {
        sbuf_puts(&b, "Context,Utterance,Label\r\n");
        /* row 2i: pair i with its response; 2i + 1: with another one */
        rows = nb__malloc(((size_t)n * 2 + 1) * sizeof *rows);
        if (!rows) b.oom = true;
        for (int64_t i = 0; rows && i < 2 * n; i++) rows[i] = i;
        if (rows) nb_rng_shuffle(&r, rows, 2 * n);
        for (int64_t k = 0; rows && k < 2 * n && !b.oom && !fail; k++) {
            const nb__dlg_pair *p = &pairs[idx[rows[k] / 2]];
            const char *truth = nb__dlg_response(d, p), *resp = truth;
            if (rows[k] % 2 && !(resp = draw_other(d, pairs, idx, n, &r, &truth, 1))) {
                fail = true;
                break;
            }
            char *ctx = nb__dlg_context(d, p);
            if (!ctx) {
                b.oom = true;
                break;
            }
            nb__csv_field(&b, ctx);
            nb__sbuf_put(&b, ",", 1);
            nb__csv_field(&b, resp);
            sbuf_puts(&b, rows[k] % 2 ? ",0\r\n" : ",1\r\n");
            free(ctx);
        }
    } else {
        sbuf_puts(&b, "Context,Ground Truth Utterance");
        for (int k = 0; k < 9; k++) {
            char h[32];
            snprintf(h, sizeof h, ",Distractor_%d", k);
            sbuf_puts(&b, h);
        }
        sbuf_puts(&b, "\r\n");
        for (int64_t i = 0; i < n && !b.oom && !fail; i++) {
            const nb__dlg_pair *p = &pairs[idx[i]];
            const char *chosen[10] = {nb__dlg_response(d, p)};
            for (int k = 1; k < 10 && !fail; k++)
                if (!(chosen[k] = draw_other(d, pairs, idx, n, &r, chosen, k))) fail = true;
            char *ctx = fail ? NULL : nb__dlg_context(d, p);
            if (!fail && !ctx) b.oom = true;
            if (fail || !ctx) break;
            nb__csv_field(&b, ctx);
            for (int k = 0; k < 10; k++) {
                nb__sbuf_put(&b, ",", 1);
                nb__csv_field(&b, chosen[k]);
            }
            sbuf_puts(&b, "\r\n");
            free(ctx);
        }
    }
    free(idx);
    free(rows);
    if (fail || b.oom) {
        free(b.p);
        if (fail)
            nb_error("the %s split (%lld pairs) has too few different responses to draw %s from", names[split],
                     (long long)n, split ? "9 distractors" : "a wrong response");
        else
            nb_error("out of memory for the %s split", names[split]);
        return NULL;
    }
    *len = b.n;
    return b.p;
}
