/* dialogue_build.c — the store of the default dialogue corpus (see
 * dialogue_src.h): conversations built utterance by utterance, text
 * cleaned, each in a group; and what its parsers (dialogue_*.c) share:
 * growing buffers, the mark that takes back a malformed file's
 * conversations, line numbers for messages. */
#include "dialogue_build.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
void nb__sbuf_puts(nb__sbuf *b, const char *s) { nb__sbuf_put(b, s, strlen(s)); }

/* Grows *p (elements of size sz, capacity *cap) to hold n + 1. */
bool nb__dlg_grow(void *pp, int64_t n, int64_t *cap, size_t sz) {
    if (n < *cap) return true;
    int64_t c = *cap ? *cap * 2 : 64;
    void *q = nb__realloc(*(void **)pp, (size_t)c * sz);
    if (!q) return false;
    *(void **)pp = q;
    *cap = c;
    return true;
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
        if (!nb__dlg_grow(&d->groups, d->ngroups, &d->capgroups, sizeof *d->groups) ||
            !(d->groups[d->ngroups] = nb__strndup(group, strlen(group)))) {
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
    if (!nb__dlg_grow(&d->convs, d->nconvs, &d->capconvs, sizeof *d->convs)) {
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
    if (!p || !nb__dlg_grow(&d->turns, d->nturns, &d->capturns, sizeof *d->turns)) {
        free(p ? p : t);
        d->oom = true;
        return;
    }
    memcpy(p + tl, " __eou__", 9);
    d->turns[d->nturns++] = p;
    c->n++;
    free(d->last_speaker);
    d->last_speaker = speaker ? nb__strndup(speaker, strlen(speaker)) : NULL;
    if (speaker && !d->last_speaker) d->oom = true;
}

/* ------------------------------------------------------------------------ */
/* What the parsers share                                                   */
/* ------------------------------------------------------------------------ */

/* What a parser added, to take back when the file turns out malformed. */
nb__dlg_mark nb__dlg_mark_of(const nb__dlg *d) { return (nb__dlg_mark){d->nturns, d->nconvs, d->ngroups}; }

/* Closes the file's last conversation; on failure (rc != 0 or out of
 * memory) removes everything added since m. Returns 0 or -1. */
int nb__dlg_finish(nb__dlg *d, nb__dlg_mark m, int rc, const char *name) {
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
int nb__dlg_line_at(const char *buf, const char *p) {
    int line = 1;
    for (const char *q = buf; q < p; q++) line += *q == '\n';
    return line;
}
