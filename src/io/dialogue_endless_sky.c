/* dialogue_endless_sky.c — Endless Sky's data files (.txt): the
 * conversation blocks, read as indented lines of tokens, their paragraphs
 * and the player's choices taken as turns (see dialogue_src.h). */
#include "dialogue_build.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        if (!nb__dlg_grow(out, *n, &cap, sizeof **out)) {
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
    nb__dlg_mark m = nb__dlg_mark_of(d);
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
    return nb__dlg_finish(d, m, 0, name);
}
