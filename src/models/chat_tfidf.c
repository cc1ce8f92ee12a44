/* chat_tfidf.c — TF-IDF over a dual-encoder model's vocabulary, for the
 * score that combines the model with TF-IDF (`nabla chat --tfidf-weight`):
 * document frequencies counted on the training file and stored in the model,
 * so that the interactive mode has the same idf as the evaluation. */
#include "../core/internal.h"
#include <math.h>
#include <stdlib.h>

/* Distinct known ids of a text (id 0, "<unk>", is no word: left out), sorted,
 * with their counts. */
static int64_t text_ids(const nb_chat_vocab *v, const char *text, int32_t **id, float **w) {
    char **tok;
    int64_t n = nb_chat_tokenize(text, &tok), k = 0;
    *id = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    *w = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!*id || !*w) nb_oom("TF-IDF vectors", 0);
    for (int64_t i = 0; i < n; i++) {
        int32_t x = nb_chat_vocab_id(v, tok[i]);
        free(tok[i]);
        if (!x) continue;
        int64_t j = k; /* insertion into the sorted distinct ids */
        int64_t lo = 0, hi = k;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if ((*id)[mid] < x) lo = mid + 1;
            else hi = mid;
        }
        if (lo < k && (*id)[lo] == x) {
            (*w)[lo] += 1;
            continue;
        }
        for (j = k; j > lo; j--) (*id)[j] = (*id)[j - 1], (*w)[j] = (*w)[j - 1];
        (*id)[lo] = x, (*w)[lo] = 1;
        k++;
    }
    free(tok);
    return k;
}

void nb_chat_doc_freq(const nb_chat_vocab *v, const nb_dialogue *d, float *df, int64_t *ndoc) {
    int nv = nb_chat_vocab_size(v);
    for (int i = 0; i < nv; i++) df[i] = 0;
    *ndoc = 0;
    for (int64_t i = 0; i < d->n; i++)
        for (int k = 0; k <= d->ncand; k++) {
            int32_t *id;
            float *w;
            int64_t n = text_ids(v, k ? d->cand[i * d->ncand + k - 1] : d->context[i], &id, &w);
            for (int64_t j = 0; j < n; j++) df[id[j]] += 1;
            free(id), free(w);
            (*ndoc)++;
        }
}

void nb_chat_idf(const float *df, int nv, int64_t ndoc, float *idf) {
    for (int i = 0; i < nv; i++) /* a word never seen counts as seen once: the largest idf */
        idf[i] = ndoc > 0 ? (float)log((double)ndoc / (df[i] >= 1 ? (double)df[i] : 1.0)) : 0;
    if (nv > 0) idf[0] = 0; /* <unk> */
}

void nb_chat_tfidf_vec(const nb_chat_vocab *v, const float *idf, const char *text, nb_chat_sparse *out) {
    out->n = text_ids(v, text, &out->id, &out->w);
    double ss = 0;
    for (int64_t k = 0; k < out->n; k++) {
        out->w[k] *= idf[out->id[k]];
        ss += (double)out->w[k] * out->w[k];
    }
    double inv = ss > 0 ? 1 / sqrt(ss) : 0;
    for (int64_t k = 0; k < out->n; k++) out->w[k] = (float)(out->w[k] * inv);
}

double nb_chat_sparse_dot(const nb_chat_sparse *a, const nb_chat_sparse *b) {
    double dot = 0;
    for (int64_t i = 0, j = 0; i < a->n && j < b->n;) {
        if (a->id[i] == b->id[j]) dot += (double)a->w[i++] * b->w[j++];
        else if (a->id[i] < b->id[j]) i++;
        else j++;
    }
    return dot;
}

void nb_chat_sparse_free(nb_chat_sparse *s) {
    if (!s) return;
    free(s->id), free(s->w);
    s->id = NULL, s->w = NULL, s->n = 0;
}

void nb_chat_tfidf_vocab_scores(const nb_chat_vocab *v, const float *idf, const nb_dialogue *d, float *scores) {
    for (int64_t i = 0; i < d->n; i++) {
        nb_chat_sparse c;
        nb_chat_tfidf_vec(v, idf, d->context[i], &c);
        for (int k = 0; k < d->ncand; k++) {
            nb_chat_sparse r;
            nb_chat_tfidf_vec(v, idf, d->cand[i * d->ncand + k], &r);
            scores[i * d->ncand + k] = (float)nb_chat_sparse_dot(&c, &r);
            nb_chat_sparse_free(&r);
        }
        nb_chat_sparse_free(&c);
    }
}

void nb_chat_combine(const float *logits, const float *cos, int64_t n, double w, float *out) {
    /* Why the logit plus the cosine: the logit c^T M r is the model's log-odds,
     * unbounded, and the cosine in [0, 1] a second feature; their weighted sum
     * is the log-odds of a logistic model with both features (sigma(s) =
     * sigma(c^T M r + W cos)), so W is a feature weight on the scale of the
     * log-odds. Adding the cosine to sigma(c^T M r) instead would do nothing
     * where the sigmoid saturates at 0 or 1, which it often does. */
    for (int64_t i = 0; i < n; i++) out[i] = (float)((double)logits[i] + w * (double)cos[i]);
}
