/* test_chat_tfidf.c — the combination of the dual encoder with TF-IDF over
 * the model's vocabulary (`nabla chat --tfidf-weight`): document
 * frequencies, idf, cosines and the combined score, each against a hand
 * computation. */
#include "test.h"
#include <math.h>
#include <stdlib.h>

static nb_dialogue *parse(const char *s) { return nb_dialogue_parse(s, strlen(s), "t.csv"); }

/* Training documents {a b}, {a c}, {b d}, {c}: df a = b = c = 2, d = 1 of 4
 * documents; the vocabulary is <unk>, a, b, c, d (falling count, then bytewise). */
static const char *TRAIN = "Context,Utterance,Label\na b,a c,1\nb d,c,0\n";

TEST(test_chat_tfidf_doc_freq_and_idf_by_hand) {
    nb_dialogue *d = parse(TRAIN);
    CHECK_MSG(d, "%s", nb_errmsg());
    if (!d) return;
    nb_chat_vocab *v = nb_chat_vocab_build(d, 1);
    CHECK(nb_chat_vocab_size(v) == 5 && !strcmp(nb_chat_vocab_word(v, 4), "d"));
    float df[5], idf[5];
    int64_t ndoc = 0;
    nb_chat_doc_freq(v, d, df, &ndoc);
    CHECK(ndoc == 4);
    CHECK(df[0] == 0 && df[1] == 2 && df[2] == 2 && df[3] == 2 && df[4] == 1);
    nb_chat_idf(df, 5, ndoc, idf);
    CHECK(idf[0] == 0);
    CHECK_NEAR(idf[1], log(2.0), 1e-6);
    CHECK_NEAR(idf[4], log(4.0), 1e-6);
    nb_chat_vocab_free(v);
    nb_dialogue_free(d);
}

TEST(test_chat_tfidf_cosines_by_hand) {
    nb_dialogue *d = parse(TRAIN);
    nb_dialogue *t = parse("Context,Ground Truth Utterance,Distractor_0,Distractor_1\n"
                           "a a d,a d d,b,x y\n");
    CHECK_MSG(d && t, "%s", nb_errmsg());
    if (!d || !t) return;
    nb_chat_vocab *v = nb_chat_vocab_build(d, 1);
    float df[5], idf[5], sc[4];
    int64_t ndoc;
    nb_chat_doc_freq(v, d, df, &ndoc);
    nb_chat_idf(df, 5, ndoc, idf);
    nb_chat_tfidf_vocab_scores(v, idf, t, sc);
    /* context: a 2 ln2, d ln4 = 2 ln2 -> (1, 1)/sqrt2; "a d d": a ln2, d 2 ln4
     * -> (1, 4)/sqrt17; "b" shares nothing; "x y" are unknown words (<unk> is
     * no word): an empty vector. */
    CHECK_NEAR(sc[0], 5 / sqrt(34.0), 1e-6);
    CHECK(sc[1] == 0 && sc[2] == 0);
    nb_chat_sparse a, b;
    nb_chat_tfidf_vec(v, idf, "d a a", &a);
    nb_chat_tfidf_vec(v, idf, "a a d", &b);
    CHECK_NEAR(nb_chat_sparse_dot(&a, &b), 1.0, 1e-6); /* order does not matter; unit length */
    CHECK(a.n == 2 && a.id[0] == 1 && a.id[1] == 4);
    nb_chat_sparse_free(&a), nb_chat_sparse_free(&b);
    nb_chat_vocab_free(v);
    nb_dialogue_free(t);
    nb_dialogue_free(d);
}

/* The combined score is logit + W * cosine for every candidate, W = 0 gives
 * the model's ranking, and a very large W TF-IDF's (where the cosines differ). */
TEST(test_chat_tfidf_combined_score_formula) {
    nb_dialogue *d = parse(TRAIN);
    nb_dialogue *t = parse("Context,Ground Truth Utterance,Distractor_0,Distractor_1\n"
                           "a a d,a d d,b,c\nb c,c b,a,d\nd,a,d b,c\n");
    CHECK_MSG(d && t, "%s", nb_errmsg());
    if (!d || !t) return;
    nb_chat_vocab *v = nb_chat_vocab_build(d, 1);
    nb_rng r;
    nb_rng_seed(&r, 5, 0);
    nb_dualenc *m = nb_dualenc_new(v, 3, 4, &r);
    float df[5], idf[5], lg[9], cs[9], cb[9];
    int64_t ndoc;
    nb_chat_doc_freq(m->vocab, d, df, &ndoc);
    nb_chat_idf(df, 5, ndoc, idf);
    nb_dualenc_rank(m, t, 50, 50, 2, lg);
    nb_chat_tfidf_vocab_scores(m->vocab, idf, t, cs);
    const double W = 2.5;
    nb_chat_combine(lg, cs, 9, W, cb);
    for (int i = 0; i < 9; i++) {
        nb_chat_sparse a, b;
        nb_chat_tfidf_vec(m->vocab, idf, t->context[i / 3], &a);
        nb_chat_tfidf_vec(m->vocab, idf, t->cand[i], &b);
        CHECK_NEAR(cs[i], nb_chat_sparse_dot(&a, &b), 1e-6);
        CHECK_NEAR(cb[i], (double)lg[i] + W * nb_chat_sparse_dot(&a, &b), 1e-5);
        nb_chat_sparse_free(&a), nb_chat_sparse_free(&b);
    }
    nb_chat_combine(lg, cs, 9, 0, cb);
    for (int k = 1; k <= 3; k++) CHECK(nb_recall_at_k(cb, 3, 3, k) == nb_recall_at_k(lg, 3, 3, k));
    nb_chat_combine(lg, cs, 9, 1e6, cb);
    CHECK(cb[0] > cb[1] && cb[0] > cb[2]); /* 5/sqrt34 against 0 and 0 */
    nb_dualenc_free(m);
    nb_dialogue_free(t);
    nb_dialogue_free(d);
}

TEST(test_chat_tfidf_unknown_words_counts_and_sparse_merge) {
    nb_dialogue *d = parse(TRAIN);
    nb_dialogue *t = parse("Context,Utterance,Label\nx a y,z,1\n");
    CHECK_MSG(d && t, "%s", nb_errmsg());
    if (!d || !t) return;
    nb_chat_vocab *v = nb_chat_vocab_build(d, 1);
    /* Unknown words (<unk>, id 0) are no word: not counted in any document. */
    float df[5], idf[5];
    int64_t ndoc = 0;
    nb_chat_doc_freq(v, t, df, &ndoc);
    CHECK(ndoc == 2 && df[0] == 0 && df[1] == 1 && df[2] == 0);
    nb_chat_doc_freq(v, d, df, &ndoc);
    nb_chat_idf(df, 5, ndoc, idf);
    nb_chat_sparse a, b;
    nb_chat_tfidf_vec(v, idf, "x a q", &a);
    CHECK(a.n == 1 && a.id[0] == 1 && fabsf(a.w[0] - 1) < 1e-6f);
    nb_chat_sparse_free(&a);
    /* "c c a": c (id 3) is seen first with count 2, then a (id 1) is
     * inserted before it and c keeps its count: tf-idf (ln 2, 2 ln 2) -> (1, 2) / sqrt 5. */
    nb_chat_tfidf_vec(v, idf, "c c a", &a);
    CHECK(a.n == 2 && a.id[0] == 1 && a.id[1] == 3);
    CHECK_NEAR(a.w[0], 1 / sqrt(5.0), 1e-6);
    CHECK_NEAR(a.w[1], 2 / sqrt(5.0), 1e-6);
    nb_chat_sparse_free(&a);
    /* The dot product walks both sorted lists: ids {1, 3} and {2, 3} share 3. */
    a = (nb_chat_sparse){.n = 2, .id = (int32_t[]){1, 3}, .w = (float[]){0.6f, 0.8f}};
    b = (nb_chat_sparse){.n = 2, .id = (int32_t[]){2, 3}, .w = (float[]){1.0f, 0.5f}};
    CHECK_NEAR(nb_chat_sparse_dot(&a, &b), 0.4, 1e-6);
    CHECK_NEAR(nb_chat_sparse_dot(&b, &a), 0.4, 1e-6);
    nb_chat_vocab_free(v);
    nb_dialogue_free(t);
    nb_dialogue_free(d);
}
