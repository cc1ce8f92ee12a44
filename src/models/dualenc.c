/* dualenc.c — the dual-encoder LSTM of the retrieval chatbot (notes §4.4):
 * context and response are embedded word by word and read by the same LSTM;
 * with c and r its last states, the prediction r' = c^T M and the score
 * sigma(c^T M r), trained with the binary cross-entropy of eq. 29. */
#include "../core/internal.h"
#include <math.h>
#include <stdlib.h>

nb_dualenc *nb_dualenc_new(nb_chat_vocab *vocab, int64_t embed, int64_t hidden, nb_rng *r) {
    if (!vocab) {
        nb_error("dual encoder: no vocabulary");
        return NULL;
    }
    if (embed < 1 || embed > 4096 || hidden < 1 || hidden > 4096) {
        nb_error("dual encoder: embedding size %lld and hidden size %lld must be in [1, 4096]", (long long)embed,
                 (long long)hidden);
        nb_chat_vocab_free(vocab);
        return NULL;
    }
    if (!r) r = nb_global_rng();
    nb_dualenc *m = calloc(1, sizeof *m);
    if (!m) nb_oom("the dual encoder", 0);
    m->vocab = vocab;
    m->embed = embed;
    m->hidden = hidden;
    m->emb = nb_tensor_new(2, (int64_t[]){nb_chat_vocab_size(vocab), embed});
    nb_init_uniform(m->emb, -0.25f, 0.25f, r);
    m->rnn = nb_rnn_new(NB_CELL_LSTM, embed, hidden, 1, r);
    if (!m->rnn) {
        nb_dualenc_free(m);
        return NULL;
    }
    m->M = nb_tensor_new(2, (int64_t[]){hidden, hidden});
    for (int64_t k = 0; k < m->M->size; k++) { /* truncated normal: redraw beyond 2 standard deviations */
        double v;
        do v = nb_rng_normal(r);
        while (fabs(v) > 2);
        m->M->data[k] = (float)v;
    }
    nb_param *rp;
    const char **rn;
    int nr = nb_rnn_params(m->rnn, &rp);
    nb_rnn_param_names(m->rnn, &rn);
    static const char *rnames[4] = {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"};
    (void)rn;
    m->params[0] = (nb_param){m->emb, false};
    m->names[0] = "embedding.weight";
    for (int i = 0; i < nr && i < 4; i++) m->params[1 + i] = rp[i], m->names[1 + i] = rnames[i];
    m->params[5] = (nb_param){m->M, true};
    m->names[5] = "M";
    m->np = 6;
    for (int i = 0; i < m->np; i++) nb_requires_grad(m->params[i].t, true);
    return m;
}

void nb_dualenc_to(nb_dualenc *m, nb_device d) {
    nb_params_to(m->params, m->np, d);
}

void nb_dualenc_free(nb_dualenc *m) {
    if (!m) return;
    nb_tensor_free(m->emb);
    nb_tensor_free(m->M);
    nb_rnn_free(m->rnn);
    nb_chat_vocab_free(m->vocab);
    free(m);
}

static const int64_t *sort_len;
static int by_len(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (sort_len[i] != sort_len[j]) return sort_len[i] > sort_len[j] ? -1 : 1;
    return i < j ? -1 : 1;
}

nb_tensor *nb_dualenc_encode(nb_dualenc *m, const int32_t *ids, const int64_t *off, int64_t n) {
    if (n < 1) nb_fatal("dualenc_encode", "need at least one sequence");
    int64_t *len = nb_arena_alloc(sizeof(int64_t) * (size_t)n), *order = nb_arena_alloc(sizeof(int64_t) * (size_t)n);
    int64_t T = 0;
    for (int64_t i = 0; i < n; i++) {
        len[i] = off[i + 1] - off[i];
        if (len[i] < 1) nb_fatal("dualenc_encode", "sequence %lld is empty", (long long)i);
        order[i] = i;
        if (len[i] > T) T = len[i];
    }
    sort_len = len;
    qsort(order, (size_t)n, sizeof(int64_t), by_len); /* falling length, stable by index */
    int64_t *batch = nb_arena_alloc(sizeof(int64_t) * (size_t)T), N = off[n] - off[0];
    int32_t *packed = nb_arena_alloc(sizeof(int32_t) * (size_t)N), *inv = nb_arena_alloc(sizeof(int32_t) * (size_t)n);
    int64_t j = n, k = 0;
    for (int64_t t = 0; t < T; t++) {
        while (j > 0 && len[order[j - 1]] <= t) j--;
        batch[t] = j;
        for (int64_t b = 0; b < j; b++) packed[k++] = ids[off[order[b]] + t];
    }
    for (int64_t b = 0; b < n; b++) inv[order[b]] = (int32_t)b;
    nb_param *rp;
    nb_rnn_params(m->rnn, &rp);
    nb_tensor *x = nb_embedding(m->emb, packed, N);
    nb_tensor *xw = nb_matmul_t(x, rp[0].t, false, true);
    nb_tensor *h = nb_lstm_packed(xw, batch, T, rp[1].t, rp[2].t, rp[3].t);
    return nb_gather_rows(h, inv, n);
}

nb_tensor *nb_dualenc_logits(nb_dualenc *m, const int32_t *ids, const int64_t *off, int64_t n) {
    nb_tensor *e = nb_dualenc_encode(m, ids, off, 2 * n);
    nb_tensor *c = nb_slice(e, 0, 0, n), *r = nb_slice(e, 0, n, 2 * n);
    /* dual_encoder: r' = c^T M, the logit c^T M r (the score is its sigmoid) */
    return nb_sum(nb_mul(nb_matmul(c, m->M), r), (const int[]){1}, 1, false);
}

int64_t nb_dualenc_step_pairs(const nb_dialogue *d, const int64_t *rows, int64_t b, int64_t K, nb_rng *r,
                              int64_t *pc, int64_t *pr, float *y) {
    if (!d->label) return nb_error("dual encoder: training pairs need a dialogue with labels (the train layout)");
    int64_t np = 0;
    for (int64_t i = 0; i < b; i++) {
        int64_t o = rows[i];
        pc[np] = o, pr[np] = o, y[np++] = d->label[o];
    }
    for (int64_t i = 0; i < b && K > 1; i++) {
        int64_t o = rows[i];
        if (!d->label[o]) continue; /* a label-0 row's response is already a negative */
        for (int64_t j = 1; j < K; j++)
            for (int tries = 0; tries < 100; tries++) {
                int64_t q = (int64_t)nb_rng_below(r, (uint32_t)d->n);
                if (!strcmp(d->cand[q], d->cand[o])) continue; /* its own response is no negative */
                pc[np] = o, pr[np] = q, y[np++] = 0;
                break;
            }
    }
    return np;
}

int nb_dualenc_rank(nb_dualenc *m, const nb_dialogue *d, int64_t max_context, int64_t max_response, int64_t batch,
                    float *scores) {
    if (batch < 1) batch = 64;
    int K = d->ncand;
    bool was = nb_set_grad_enabled(false);
    nb_arena *a = nb_arena_new(), *old = nb_arena_use(a);
    int64_t H = m->hidden;
    for (int64_t i0 = 0; i0 < d->n; i0 += batch) {
        int64_t b = d->n - i0 < batch ? d->n - i0 : batch, ns = b * (1 + K);
        int64_t *off = nb_arena_alloc(sizeof(int64_t) * (size_t)(ns + 1));
        int32_t *ids = nb_arena_alloc(sizeof(int32_t) * (size_t)(b * max_context + b * K * max_response));
        off[0] = 0;
        for (int64_t i = 0; i < b; i++)
            off[i + 1] = off[i] + nb_chat_encode(m->vocab, d->context[i0 + i], max_context, true, ids + off[i]);
        for (int64_t i = 0; i < b * K; i++)
            off[b + i + 1] = off[b + i] + nb_chat_encode(m->vocab, d->cand[i0 * K + i], max_response, false,
                                                         ids + off[b + i]);
        nb_tensor *e = nb_dualenc_encode(m, ids, off, ns);
        nb_tensor *cm = nb_matmul(nb_slice(e, 0, 0, b), m->M);
        /* Host copies: with the model on the GPU, e and cm are device memory. */
        float *ch = nb_arena_alloc(sizeof(float) * (size_t)cm->size);
        float *eh = nb_arena_alloc(sizeof(float) * (size_t)e->size);
        nb_tensor_read(cm, ch);
        nb_tensor_read(e, eh);
        for (int64_t i = 0; i < b; i++)
            for (int k = 0; k < K; k++) {
                const float *c = ch + i * H, *r = eh + (b + i * K + k) * H;
                double s = 0;
                for (int64_t j = 0; j < H; j++) s += (double)c[j] * r[j];
                scores[(i0 + i) * K + k] = (float)s;
            }
        nb_arena_reset();
    }
    nb_arena_use(old);
    nb_arena_free(a);
    nb_set_grad_enabled(was);
    return 0;
}

/* --- model files --------------------------------------------------------------- */

int nb_dualenc_save(const nb_dualenc *m, const char *path, const char *const *keys, const char *const *vals, int nmeta,
                    const char *const *extra_names, nb_tensor *const *extra, int nextra) {
    int nv = nb_chat_vocab_size(m->vocab);
    size_t total = 1;
    for (int i = 0; i < nv; i++) total += strlen(nb_chat_vocab_word(m->vocab, i)) + 1;
    char *vocab = malloc(total), *p = vocab;
    if (!vocab) return nb_error("%s: out of memory", path);
    for (int i = 0; i < nv; i++) p += sprintf(p, i ? "\n%s" : "%s", nb_chat_vocab_word(m->vocab, i));
    *p = 0;
    char embed[24], hidden[24];
    snprintf(embed, sizeof embed, "%lld", (long long)m->embed);
    snprintf(hidden, sizeof hidden, "%lld", (long long)m->hidden);
    const char *own_keys[] = {"nabla.model", "nabla.dualenc.embed", "nabla.dualenc.hidden", "nabla.dualenc.vocab"};
    const char *own_vals[] = {"dualenc", embed, hidden, vocab};
    int rc = nb__st_write_model(path, own_keys, own_vals, 4, keys, vals, nmeta, m->params,
                                (const char *const *)m->names, m->np, extra_names, extra, nextra);
    free(vocab);
    return rc;
}

static int meta_int(const nb_safetensors *st, const char *path, const char *key, long lo, long hi, long *out) {
    return nb__st_meta_long(st, path, "dual-encoder", key, lo, hi, out);
}

nb_dualenc *nb_dualenc_load(const char *path, nb_safetensors **out_st) {
    if (out_st) *out_st = NULL;
    nb_safetensors *st = nb_st_read(path);
    if (!st) return NULL;
    nb_dualenc *m = NULL;
    char **words = NULL, *copy = NULL;
    const char *model = nb_st_meta(st, "nabla.model"), *vs = nb_st_meta(st, "nabla.dualenc.vocab");
    if (!model || strcmp(model, "dualenc")) {
        nb__st_not_a(st, path, "a dual-encoder chat model");
        goto fail;
    }
    long embed, hidden;
    if (meta_int(st, path, "nabla.dualenc.embed", 1, 4096, &embed) ||
        meta_int(st, path, "nabla.dualenc.hidden", 1, 4096, &hidden))
        goto fail;
    if (!vs) {
        nb_error("%s: not a dual-encoder model ('nabla.dualenc.vocab' missing from __metadata__)", path);
        goto fail;
    }
    size_t L = strlen(vs);
    copy = malloc(L + 1);
    words = malloc(sizeof(char *) * (L + 2));
    if (!copy || !words) nb_oom("the dual encoder", 0);
    memcpy(copy, vs, L + 1);
    int nw = 0;
    for (char *p = copy;;) {
        words[nw++] = p;
        char *e = strchr(p, '\n');
        if (!e) break;
        *e = 0;
        p = e + 1;
    }
    nb_chat_vocab *v = nb_chat_vocab_from_words(words, nw);
    if (!v) {
        char why[256];
        snprintf(why, sizeof why, "%s", nb_errmsg());
        nb_error("%s: __metadata__ 'nabla.dualenc.vocab': %s", path, why);
        goto fail;
    }
    int64_t values = 0;
    for (int i = 0; i < st->n; i++) values += st->entries[i].t->size;
    if ((double)nw * embed + (double)hidden * hidden * 5 > (double)values) {
        nb_error("%s: %d words of %ld and an LSTM of %ld need more than the %lld values the file holds", path, nw, embed,
                 hidden, (long long)values);
        nb_chat_vocab_free(v);
        goto fail;
    }
    m = nb_dualenc_new(v, embed, hidden, NULL);
    if (!m) goto fail;
    char what[128];
    snprintf(what, sizeof what, "a model of %d words, embedding %ld and hidden size %ld", nw, embed, hidden);
    if (nb__st_copy_params(st, path, m->params, (const char *const *)m->names, m->np, what, NULL)) goto fail;
    free(words);
    free(copy);
    if (out_st) *out_st = st;
    else nb_st_free(st);
    return m;
fail:
    free(words);
    free(copy);
    nb_dualenc_free(m);
    nb_st_free(st);
    return NULL;
}
