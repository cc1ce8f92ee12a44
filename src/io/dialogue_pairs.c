/* dialogue_pairs.c — the default dialogue corpus written out: the
 * conversations cut into (context, response) pairs, the pairs split by
 * group into train, valid and test, and the three CSV files of each split
 * in the Ubuntu Dialogue Corpus layout (see dialogue_src.h). */
#include "dialogue_build.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nb__csv_field(nb__sbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        nb__sbuf_puts(b, s);
        return;
    }
    nb__sbuf_put(b, "\"", 1);
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
        nb__sbuf_put(b, s, (size_t)(q - s) + 1);
        nb__sbuf_put(b, "\"", 1);
    }
    nb__sbuf_puts(b, s);
    nb__sbuf_put(b, "\"", 1);
}


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
        nb__sbuf_puts(&b, d->turns[c->first + t]);
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
        nb__sbuf_puts(&b, "Context,Utterance,Label\r\n");
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
            nb__sbuf_puts(&b, rows[k] % 2 ? ",0\r\n" : ",1\r\n");
            free(ctx);
        }
    } else {
        nb__sbuf_puts(&b, "Context,Ground Truth Utterance");
        for (int k = 0; k < 9; k++) {
            char h[32];
            snprintf(h, sizeof h, ",Distractor_%d", k);
            nb__sbuf_puts(&b, h);
        }
        nb__sbuf_puts(&b, "\r\n");
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
            nb__sbuf_puts(&b, "\r\n");
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
