/* chat.c — `nabla chat`: the dual-encoder retrieval chatbot of notes §4.4.
 *   nabla chat train TRAIN.csv [--valid VALID.csv] ... --out MODEL
 *   nabla chat eval MODEL TEST.csv [--json]    recall@1/2/5 with random and TF-IDF baselines
 *   nabla chat MODEL [--responses FILE]        rank a bank of responses for each message of stdin
 *   nabla chat corpus ...                      build the default corpus (chat_corpus.c)
 * This file dispatches the verbs (chat_train.c, chat_eval.c, chat_reply.c)
 * and holds what they share: embedding texts, the lengths a model was
 * trained with, and the idf of the combination with TF-IDF. */
#include "chat.h"
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- shared by the verbs (chat.h) ------------------------------------------ */

/* Embeddings of texts split by newlines: [n, H] into r (malloc'd). */
float *nb_chat_embed_texts(nb_dualenc *m, char **texts, int64_t n, int64_t max_response) {
    int64_t H = m->hidden, B = 256;
    float *r = malloc(sizeof(float) * (size_t)(n * H));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(B * max_response));
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(B + 1));
    if (!r || !ids || !off) {
        free(r), free(ids), free(off);
        return NULL;
    }
    bool was = nb_set_grad_enabled(false);
    for (int64_t i0 = 0; i0 < n; i0 += B) {
        int64_t b = n - i0 < B ? n - i0 : B;
        off[0] = 0;
        for (int64_t i = 0; i < b; i++)
            off[i + 1] = off[i] + nb_chat_encode(m->vocab, texts[i0 + i], max_response, false, ids + off[i]);
        nb_tensor *e = nb_dualenc_encode(m, ids, off, b);
        nb_tensor_read(e, r + i0 * H); /* from the model's device */
        nb_arena_reset();
    }
    nb_set_grad_enabled(was);
    free(ids), free(off);
    return r;
}

/* Splits s (modified) at newlines. */
char **nb_chat_split_lines(char *s, int64_t *n) {
    int64_t k = 1;
    for (char *p = s; *p; p++) k += *p == '\n';
    char **v = malloc(sizeof(char *) * (size_t)k);
    if (!v) return NULL;
    *n = 0;
    for (char *p = s;;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        if (e && e > p && e[-1] == '\r') e[-1] = 0;
        if (*p) v[(*n)++] = p;
        if (!e) break;
        p = e + 1;
    }
    return v;
}

/* The lengths a model was trained with (defaults for files without them).
 * They size the token buffers (times the batch), so a damaged value is
 * refused within train's --max-context / --max-response range rather than
 * wrapping that product into a buffer too small. 0, or -1 with nb_errmsg(). */
static int model_cut(const nb_safetensors *st, const char *path, const char *key, int64_t def, int64_t *out) {
    const char *v = nb_st_meta(st, key);
    *out = def;
    if (!v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < 1 || x > 100000)
        return nb_error("%s: __metadata__ '%s': expected an integer in [1, 100000], got '%.40s'", path, key, v);
    *out = x;
    return 0;
}

int nb_chat_model_cuts(const nb_safetensors *st, const char *path, int64_t *mc, int64_t *mr) {
    return model_cut(st, path, "nabla.chat.max_context", 160, mc) ||
           model_cut(st, path, "nabla.chat.max_response", 80, mr) ? -1 : 0;
}

/* --- the combination with TF-IDF -------------------------------------------- */

/* The idf of the combined score, idf[V] (malloc'd): from the document
 * frequencies of the training file stored in the model (tfidf.df), or,
 * with idf_path, counted on that file (the training CSV, for models written
 * before they were stored). NULL with nb_errmsg(). */
float *nb_chat_combined_idf(const nb_safetensors *st, const nb_dualenc *m, const char *model_path, const char *idf_path) {
    int nv = nb_chat_vocab_size(m->vocab);
    float *df = malloc(sizeof(float) * (size_t)nv), *idf = malloc(sizeof(float) * (size_t)nv);
    int64_t ndoc = 0;
    if (!df || !idf) {
        free(df), free(idf);
        nb_error("out of memory");
        return NULL;
    }
    if (idf_path) {
        nb_dialogue *d = nb_dialogue_load(idf_path);
        if (!d) goto fail;
        nb_chat_doc_freq(m->vocab, d, df, &ndoc);
        nb_dialogue_free(d);
    } else {
        nb_tensor *t = nb_st_get(st, "tfidf.df");
        const char *nd = nb_st_meta(st, "nabla.chat.tfidf_docs");
        if (!t || !nd) {
            nb_error("%s stores no document frequencies (a model written before they were stored, or the checkpoint "
                     "of an interrupted run); give --idf TRAIN.csv", model_path);
            goto fail;
        }
        char *end;
        long long x = strtoll(nd, &end, 10);
        if (t->ndim != 1 || t->shape[0] != nv || !*nd || *end || x < 1) {
            nb_error("%s: tensor 'tfidf.df' or __metadata__ 'nabla.chat.tfidf_docs' does not fit a vocabulary of %d "
                     "words", model_path, nv);
            goto fail;
        }
        ndoc = x;
        for (int i = 0; i < nv; i++) {
            if (!(t->data[i] >= 0 && t->data[i] <= (float)ndoc)) {
                nb_error("%s: tensor 'tfidf.df' holds %g at index %d (expected a count in [0, %lld])", model_path,
                         (double)t->data[i], i, x);
                goto fail;
            }
            df[i] = t->data[i];
        }
    }
    nb_chat_idf(df, nv, ndoc, idf);
    free(df);
    return idf;
fail:
    free(df), free(idf);
    return NULL;
}

/* --tfidf-weight: a number >= 0, or "auto" where allowed. */
int nb_chat_parse_weight(const nb_cli *c, const char *s, bool auto_ok, double *w, bool *is_auto) {
    *is_auto = false;
    if (auto_ok && !strcmp(s, "auto")) return *is_auto = true, 0;
    char *end;
    *w = strtod(s, &end);
    if (!*s || *end || !isfinite(*w) || *w < 0)
        return nb_cli_usage_error(c, "--tfidf-weight: expected a number >= 0%s, got '%s'", auto_ok ? " or 'auto'" : "", s);
    return 0;
}

/* --- dispatch --------------------------------------------------------------- */

static int cmd_corpus(int argc, char **argv) { return nb_chat_corpus_main(argc, argv); }

static int cmd_chat(int argc, char **argv) {
    static const nb_verb verbs[] = {
        {"train", nb_chat_train_main, "train the dual-encoder LSTM on a dialogue CSV (Ubuntu Dialogue Corpus layout)"},
        {"eval", nb_chat_eval_main, "recall@1/2/5 of a model on a test CSV, with random and TF-IDF baselines"},
        {"corpus", cmd_corpus, "build the default dialogue corpus from Debian packages"},
    };
    int nv = (int)(sizeof verbs / sizeof verbs[0]);
    bool verb = argc < 2 || argv[1][0] == '-' || !strcmp(argv[1], "help");
    for (int i = 0; !verb && i < nv; i++) verb = !strcmp(argv[1], verbs[i].name);
    if (verb) {
        int rc = nb_cli_verbs("chat", verbs, nv, argc, argv);
        if (argc < 2 || argv[1][0] == '-' || !strcmp(argv[1], "help"))
            fprintf(argc < 2 ? stderr : stdout,
                    "  MODEL    nabla chat MODEL [--responses FILE] [--top K] [--tfidf-weight W]: chat (messages from stdin)\n");
        return rc;
    }
    return nb_chat_reply_main(argc, argv);
}

NB_COMMAND("chat", cmd_chat, "retrieval chatbot (dual-encoder LSTM): train, eval, corpus, or chat with MODEL")
