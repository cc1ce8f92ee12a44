/* test_chat.c — the retrieval chatbot (notes §4.4): the dialogue CSV reader,
 * tokens and vocabulary, the packed LSTM op, the dual encoder's score
 * sigma(c^T M r) and recall@k. */
#include "test.h"
#include <stdlib.h>
#include <unistd.h>

/* --- the dialogue CSV reader ------------------------------------------------ */

static nb_dialogue *parse(const char *s) { return nb_dialogue_parse(s, strlen(s), "t.csv"); }

TEST(test_chat_dialogue_train_layout_rfc4180) {
    const char *s = "\xEF\xBB\xBF" "Context,Utterance,Label\r\n"
                    "\"hi __eou__ there, you __eou__ __eot__\",\"say \"\"hello\"\"\",1\r\n"
                    "\r\n"
                    "\"two\nlines\",plain,0.0\n"
                    "ctx,resp,1.0";
    nb_dialogue *d = parse(s);
    CHECK_MSG(d, "%s", nb_errmsg());
    if (!d) return;
    CHECK(d->n == 3 && d->ncand == 1);
    CHECK(!strcmp(d->context[0], "hi __eou__ there, you __eou__ __eot__"));
    CHECK(!strcmp(d->cand[0], "say \"hello\""));
    CHECK(!strcmp(d->context[1], "two\nlines"));
    CHECK(d->label[0] == 1 && d->label[1] == 0 && d->label[2] == 1);
    CHECK(d->line[0] == 2 && d->line[1] == 4 && d->line[2] == 6);
    nb_dialogue_free(d);
}

TEST(test_chat_dialogue_test_layout) {
    nb_dialogue *d = parse("Context,Ground Truth Utterance,Distractor_0,Distractor_1\nc,t,x,y\nc2,t2,x2,y2\n");
    CHECK_MSG(d, "%s", nb_errmsg());
    if (!d) return;
    CHECK(d->n == 2 && d->ncand == 3 && !d->label);
    CHECK(!strcmp(d->cand[3], "t2") && !strcmp(d->cand[5], "y2"));
    nb_dialogue_free(d);
}

static void expect_error(const char *s, const char *want) {
    nb_dialogue *d = parse(s);
    CHECK_MSG(!d, "parsed a bad file, expected an error containing '%s'", want);
    nb_dialogue_free(d);
    CHECK_MSG(strstr(nb_errmsg(), want), "error '%s' lacks '%s'", nb_errmsg(), want);
}

TEST(test_chat_dialogue_errors_name_file_and_line) {
    expect_error("Context,Utterance,Label\na,b,1\na,b\n", "t.csv:3: expected 3 columns");
    expect_error("Context,Utterance,Label\na,b,1\n\"a,b,1\nc,d,0\n", "t.csv:3: unterminated quoted field");
    expect_error("Context,Utterance,Label\na,b,1\nx\xff,b,1\n", "t.csv:3:2: invalid UTF-8");
    expect_error("Context,Utterance,Label\n  ,b,1\n", "t.csv:2: empty context");
    expect_error("Context,Utterance,Label\na,b,2\n", "t.csv:2: column 3: label '2' is not 0 or 1");
    expect_error("Context,Utterance,Label\n\"a\"x,b,1\n", "t.csv:2: field 1: text after the closing quote");
    expect_error("Context,Reply,Label\na,b,1\n", "t.csv:1: not a dialogue header");
    expect_error("Context,Ground Truth Utterance,Distractor_1\na,b,c\n", "expected 'Distractor_0'");
    expect_error("", "empty file");
    expect_error("Context,Utterance,Label\n", "no rows");
}

/* --- tokens and vocabulary ----------------------------------------------------- */

TEST(test_chat_tokenize_words_punctuation_markers) {
    char **t;
    int64_t n = nb_chat_tokenize("Hi, I don't KNOW! __eou__ __eot__ x_y é", &t);
    const char *want[] = {"hi", ",", "i", "don't", "know", "!", "__eou__", "__eot__", "x", "_", "y", "é"};
    CHECK(n == 12);
    for (int64_t k = 0; k < n && k < 12; k++) CHECK_MSG(!strcmp(t[k], want[k]), "token %lld: '%s'", (long long)k, t[k]);
    for (int64_t k = 0; k < n; k++) free(t[k]);
    free(t);
}

TEST(test_chat_vocab_min_count_and_cuts) {
    nb_dialogue *d = parse("Context,Utterance,Label\na b c a,a b,1\nb a d,e,0\n");
    if (!d) return;
    nb_chat_vocab *v = nb_chat_vocab_build(d, 2);
    /* a: 4, b: 3, c, d, e: 1 each -> <unk>, a, b */
    CHECK(nb_chat_vocab_size(v) == 3);
    CHECK(!strcmp(nb_chat_vocab_word(v, 1), "a") && !strcmp(nb_chat_vocab_word(v, 2), "b"));
    CHECK(nb_chat_vocab_id(v, "c") == 0 && nb_chat_vocab_id(v, "b") == 2);
    int32_t ids[8];
    /* The last 3 of "a b c a b": c a b -> 0 1 2; the first 2: a b. */
    CHECK(nb_chat_encode(v, "a b c a b", 3, true, ids) == 3 && ids[0] == 0 && ids[1] == 1 && ids[2] == 2);
    CHECK(nb_chat_encode(v, "a b c a b", 2, false, ids) == 2 && ids[0] == 1 && ids[1] == 2);
    CHECK(nb_chat_encode(v, "  ", 4, false, ids) == 1 && ids[0] == 0);
    nb_chat_vocab_free(v);
    nb_dialogue_free(d);
}

/* UTF-8 by the standard's table (RFC 3629): overlong forms (C0 AF, E0 80 AF),
 * leads beyond U+10FFFF (F5), surrogates (ED A0 80) and a sequence cut by
 * the end of the data (a continuation byte follows in memory, not in the
 * data) are refused; a header's names are matched case-insensitively with
 * spaces trimmed; a CR is the line's end only before LF or at the end. */
TEST(test_chat_dialogue_utf8_table_header_names_and_cr) {
    expect_error("Context,Utterance,Label\na,\xC0\xAF,1\n", "t.csv:2:3: invalid UTF-8");
    expect_error("Context,Utterance,Label\na,\xE0\x80\xAF,1\n", "t.csv:2:3: invalid UTF-8");
    expect_error("Context,Utterance,Label\na,\xF5\x80\x80\x80,1\n", "t.csv:2:3: invalid UTF-8");
    expect_error("Context,Utterance,Label\na,\xED\xA0\x80,1\n", "t.csv:2:3: invalid UTF-8");
    const char *cut = "Context,Utterance,Label\na,b,1\nc,d\xC3\xA9";
    nb_dialogue *d = nb_dialogue_parse(cut, strlen(cut) - 1, "t.csv");
    CHECK_MSG(!d && strstr(nb_errmsg(), "invalid UTF-8"), "%s", d ? "accepted" : nb_errmsg());
    nb_dialogue_free(d);
    d = parse("Context,Utterance,Label\na,\xF4\x8F\xBF\xBF \xE2\x82\xAC \xC3\xA9,1\n"); /* U+10FFFF, euro, e acute */
    CHECK_MSG(d, "%s", nb_errmsg());
    nb_dialogue_free(d);
    d = parse("  context,UTTERANCE  , Label\nc,r,1\n");
    CHECK_MSG(d && d->n == 1 && !strcmp(d->cand[0], "r"), "%s", nb_errmsg());
    nb_dialogue_free(d);
    expect_error("Context,Utterance,Label\n\"a\"\r,b,1\n", "t.csv:2: field 1: text after the closing quote");
    d = parse("Context,Utterance,Label\na\r,b,1\r\n");
    CHECK_MSG(d && d->n == 1 && !strcmp(d->context[0], "a\r") && d->label[0] == 1, "%s", nb_errmsg());
    nb_dialogue_free(d);
}

/* Tokens: control characters separate like spaces, a marker ends the text,
 * an apostrophe joins only word characters on both sides; the vocabulary
 * orders equal counts alphabetically and takes tokens of at most 63 bytes. */
TEST(test_chat_tokens_controls_markers_apostrophes_and_vocab_ties) {
    char **t;
    int64_t n = nb_chat_tokenize("a\x01" "b dogs' toys __eou__", &t);
    const char *want[] = {"a", "b", "dogs", "'", "toys", "__eou__"};
    CHECK_MSG(n == 6, "%lld tokens", (long long)n);
    for (int64_t k = 0; k < n && n == 6; k++) CHECK_MSG(!strcmp(t[k], want[k]), "token %lld: '%s'", (long long)k, t[k]);
    for (int64_t k = 0; k < n; k++) free(t[k]);
    free(t);
    nb_dialogue *d = parse("Context,Utterance,Label\nq z m,b,1\n");
    nb_chat_vocab *v = d ? nb_chat_vocab_build(d, 1) : NULL;
    CHECK(v && nb_chat_vocab_size(v) == 5);
    const char *order[] = {"<unk>", "b", "m", "q", "z"};
    for (int k = 0; v && k < 5; k++) CHECK_MSG(!strcmp(nb_chat_vocab_word(v, k), order[k]), "word %d: %s", k,
                                                nb_chat_vocab_word(v, k));
    nb_chat_vocab_free(v);
    nb_dialogue_free(d);
    char w63[64], w64[65];
    memset(w63, 'x', 63), w63[63] = 0;
    memset(w64, 'y', 64), w64[64] = 0;
    char *ok[] = {"<unk>", w63}, *bad[] = {"<unk>", w64};
    v = nb_chat_vocab_from_words(ok, 2);
    CHECK_MSG(v && nb_chat_vocab_id(v, w63) == 1, "%s", nb_errmsg());
    nb_chat_vocab_free(v);
    v = nb_chat_vocab_from_words(bad, 2);
    CHECK_MSG(!v && strstr(nb_errmsg(), "entry 1") && strstr(nb_errmsg(), "not a token"), "%s", nb_errmsg());
    nb_chat_vocab_free(v);
}

/* --- the packed LSTM ------------------------------------------------------------ */

typedef struct {
    const int64_t *batch;
    int64_t T;
} pk_ctx;
static nb_tensor *f_packed(nb_tensor **in, void *ctx) {
    pk_ctx *c = ctx;
    return nb_lstm_packed(in[0], c->batch, c->T, in[1], in[2], in[3]);
}

static void packed_setup(nb_rng *r, int64_t H, int64_t N, nb_tensor **in) {
    in[0] = nb_tensor_new(2, (int64_t[]){N, 4 * H});
    in[1] = nb_tensor_new(2, (int64_t[]){4 * H, H});
    in[2] = nb_tensor_new(1, (int64_t[]){4 * H});
    in[3] = nb_tensor_new(1, (int64_t[]){4 * H});
    for (int k = 0; k < 4; k++) {
        nb_init_uniform(in[k], -0.8f, 0.8f, r);
        nb_requires_grad(in[k], true);
    }
}

TEST(test_lstm_packed_gradcheck_and_hvp) {
    nb_rng r;
    nb_rng_seed(&r, 7, 0);
    const int64_t batch[] = {4, 3, 3, 1, 1};
    int64_t N = 12;
    for (int64_t H = 2; H <= 3; H++) {
        nb_tensor *in[4];
        packed_setup(&r, H, N, in);
        pk_ctx c = {batch, 5};
        nb_gradcheck("lstm_packed", f_packed, in, 4, &c, 1e-2f, 5e-3f);
        nb_hvpcheck("lstm_packed", f_packed, in, 4, &c, 2e-3f, 1e-2f);
        for (int k = 0; k < 4; k++) nb_tensor_free(in[k]);
    }
    /* two steps: one recurrent product, whose weight gradient a bound of
     * T > 2 in place of T > 1 left out */
    const int64_t two[] = {3, 2};
    nb_tensor *in[4];
    packed_setup(&r, 3, 5, in);
    pk_ctx c = {two, 2};
    nb_gradcheck("lstm_packed T = 2", f_packed, in, 4, &c, 1e-2f, 5e-3f);
    for (int k = 0; k < 4; k++) nb_tensor_free(in[k]);
}

/* Each sequence alone through nb_rnn_seq (the full-length op) gives the same
 * last state as the packed run of all of them. */
/* Batch sizes must be >= 1 and non-increasing: a step of 0 rows is refused. */
static void packed_zero_batch(void *c) {
    nb_lstm_packed(nb_zeros(NB_SHAPE(2, 8)), (const int64_t[]){2, 0}, 2, nb_zeros(NB_SHAPE(8, 2)), NULL, NULL);
}

TEST(test_lstm_packed_refuses_an_empty_step) {
    nb_test_expect_fatal("lstm_packed batch 0", packed_zero_batch, NULL,
                         (const char *[]){"lstm_packed", "batch[1] = 0 after 2", NULL});
}

TEST(test_lstm_packed_matches_rnn_seq) {
    nb_rng r;
    nb_rng_seed(&r, 3, 0);
    int64_t H = 5;
    const int64_t batch[] = {3, 2, 2, 1};
    int64_t lens[] = {4, 3, 1}, N = 8;
    nb_tensor *in[4];
    packed_setup(&r, H, N, in);
    nb_tensor *out = nb_lstm_packed(in[0], batch, 4, in[1], in[2], in[3]);
    for (int64_t j = 0; j < 3; j++) {
        nb_tensor *xw = nb_empty(3, (int64_t[]){lens[j], 1, 4 * H});
        for (int64_t t = 0; t < lens[j]; t++) {
            int64_t o = 0;
            for (int64_t s = 0; s < t; s++) o += batch[s];
            memcpy(xw->data + t * 4 * H, in[0]->data + (o + j) * 4 * H, sizeof(float) * (size_t)(4 * H));
        }
        nb_tensor *seq = nb_rnn_seq(NB_CELL_LSTM, xw, in[1], in[2], in[3], NULL, NULL);
        CHECK(nb_test_maxrel(out->data + j * H, seq->data + (lens[j] - 1) * H, H) < 1e-6);
    }
    for (int k = 0; k < 4; k++) nb_tensor_free(in[k]);
    nb_arena_reset();
}

/* --- the dual encoder ------------------------------------------------------------ */

static nb_dualenc *tiny_model(uint64_t seed, int64_t E, int64_t H) {
    char *w[] = {"<unk>", "a", "b", "c", "d", "e"};
    nb_rng r;
    nb_rng_seed(&r, seed, 0);
    return nb_dualenc_new(nb_chat_vocab_from_words(w, 6), E, H, &r);
}

static double sigm(double z) { return 1 / (1 + exp(-z)); }

/* The last LSTM state of a token sequence, by hand in double. */
static void lstm_by_hand(nb_dualenc *m, const int32_t *ids, int64_t n, double *h) {
    nb_param *p;
    nb_rnn_params(m->rnn, &p);
    int64_t E = m->embed, H = m->hidden;
    const float *wi = p[0].t->data, *wh = p[1].t->data, *bi = p[2].t->data, *bh = p[3].t->data;
    double c[64] = {0}, hn[64], z[256];
    for (int64_t j = 0; j < H; j++) h[j] = 0;
    for (int64_t t = 0; t < n; t++) {
        const float *x = m->emb->data + ids[t] * E;
        for (int64_t g = 0; g < 4 * H; g++) {
            double s = bi[g] + bh[g];
            for (int64_t k = 0; k < E; k++) s += (double)wi[g * E + k] * x[k];
            for (int64_t k = 0; k < H; k++) s += (double)wh[g * H + k] * h[k];
            z[g] = s;
        }
        for (int64_t j = 0; j < H; j++) {
            double i = sigm(z[j]), f = sigm(z[H + j]), g = tanh(z[2 * H + j]), o = sigm(z[3 * H + j]);
            c[j] = f * c[j] + i * g;
            hn[j] = o * tanh(c[j]);
        }
        for (int64_t j = 0; j < H; j++) h[j] = hn[j];
    }
}

TEST(test_eq_dual_encoder_score_by_hand) {
    nb_dualenc *m = tiny_model(11, 3, 4);
    /* Two pairs of different lengths: contexts then responses. */
    int32_t ids[] = {1, 2, 3, 4, 5, 1, 2, 3, 5, 4, 4, 1};
    int64_t off[] = {0, 4, 5, 7, 12};
    nb_tensor *z = nb_dualenc_logits(m, ids, off, 2);
    for (int p = 0; p < 2; p++) {
        double c[4], r[4], s = 0;
        lstm_by_hand(m, ids + off[p], off[p + 1] - off[p], c);
        lstm_by_hand(m, ids + off[2 + p], off[3 + p] - off[2 + p], r);
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) s += c[a] * m->M->data[a * 4 + b] * r[b]; /* c^T M r */
        CHECK_NEAR(z->data[p], s, 1e-5);
        CHECK_NEAR(sigm(z->data[p]), sigm(s), 1e-6);
    }
    nb_arena_reset();
    nb_dualenc_free(m);
}

/* Padding does not change the result: a pair scored alone, or in a batch
 * with longer and shorter sequences around it, gets the same score. */
TEST(test_eq_dual_encoder_padding_invariant) {
    nb_dualenc *m = tiny_model(5, 4, 6);
    int32_t one[] = {2, 3, 1, 4};
    int64_t off1[] = {0, 3, 4};
    float alone = nb_item(nb_dualenc_logits(m, one, off1, 1));
    int32_t many[] = {1, 1, 1, 1, 1, 1, 1, 2, 3, 1, 5, 5, 5, 5, 5, 5, 5, 5, 4, 3};
    int64_t offm[] = {0, 7, 10, 11, 18, 19, 20};
    nb_tensor *z = nb_dualenc_logits(m, many, offm, 3); /* pair 1 is context {2,3,1}, response {4} */
    CHECK_NEAR(z->data[1], alone, 1e-6);
    nb_arena_reset();
    nb_dualenc_free(m);
}

typedef struct {
    nb_dualenc *m;
    const int32_t *ids;
    const int64_t *off;
    int64_t n;
} de_ctx;
static nb_tensor *f_score(nb_tensor **in, void *ctx) {
    de_ctx *c = ctx;
    return nb_sigmoid(nb_dualenc_logits(c->m, c->ids, c->off, c->n)); /* sigma(c^T M r) */
}

TEST(test_eq_dual_encoder_gradcheck_whole_score) {
    nb_dualenc *m = tiny_model(9, 3, 3);
    int32_t ids[] = {1, 2, 3, 4, 5, 1, 2, 3, 5, 4, 4, 1};
    int64_t off[] = {0, 4, 5, 7, 12};
    de_ctx c = {m, ids, off, 2};
    nb_tensor *in[6];
    for (int k = 0; k < m->np; k++) in[k] = m->params[k].t;
    nb_gradcheck("dual encoder score", f_score, in, m->np, &c, 1e-2f, 5e-3f);
    nb_dualenc_free(m);
}

TEST(test_eq_dual_encoder_save_load_roundtrip) {
    nb_dualenc *m = tiny_model(2, 3, 4);
    const char *path = "build-test-dualenc.safetensors";
    CHECK_MSG(!nb_dualenc_save(m, path, NULL, NULL, 0, NULL, NULL, 0), "%s", nb_errmsg());
    nb_dualenc *b = nb_dualenc_load(path, NULL);
    CHECK_MSG(b, "%s", nb_errmsg());
    if (b) {
        CHECK(nb_chat_vocab_size(b->vocab) == 6 && !strcmp(nb_chat_vocab_word(b->vocab, 3), "c"));
        for (int k = 0; k < m->np; k++)
            CHECK(nb_test_maxrel(b->params[k].t->data, m->params[k].t->data, m->params[k].t->size) == 0);
    }
    remove(path);
    nb_dualenc_free(b);
    nb_dualenc_free(m);
}

static void set_meta_edit(nb_test_st *f, void *c) {
    const char *const *kv = c;
    nb_test_st_set_meta(f, kv[0], kv[1]);
}
static void reshape_m(nb_test_st *f, void *c) {
    nb_tensor *M = f->t[nb_test_st_find(f, "M")];
    M->shape[1] *= M->shape[0], M->shape[0] = 1; /* [H, H] as [1, H^2] */
}

/* nb_dualenc_load's refusals, none of which ran in the suite: another kind
 * of model, the vocabulary missing or invalid, sizes out of range or more
 * than the file holds, a parameter of another shape; each names the file. */
TEST(test_dual_encoder_load_refuses_damaged_files) {
    nb_dualenc *m = tiny_model(2, 3, 4);
    char path[] = "/tmp/nabla_dualenc_XXXXXX", bad[] = "/tmp/nabla_dualenc_bad_XXXXXX";
    close(mkstemp(path));
    close(mkstemp(bad));
    CHECK_MSG(!nb_dualenc_save(m, path, NULL, NULL, 0, NULL, NULL, 0), "%s", nb_errmsg());
    nb_dualenc_free(m);
    struct {
        const char *kv[2];
        const char *says;
    } cases[] = {{{"nabla.model", "charrnn"}, "not a dual-encoder chat model: it holds a character-level language model"},
                 {{"nabla.dualenc.vocab", NULL}, "'nabla.dualenc.vocab' missing from __metadata__"},
                 {{"nabla.dualenc.vocab", "a\nb"}, "__metadata__ 'nabla.dualenc.vocab': "},
                 {{"nabla.dualenc.embed", "0"}, "'nabla.dualenc.embed'"},
                 {{"nabla.dualenc.hidden", "4096"}, "need more than the"}};
    for (int k = 0; k < 5; k++) {
        CHECK_MSG(nb_test_st_rewrite(path, bad, set_meta_edit, (void *)cases[k].kv) == 0, "%s", nb_errmsg());
        nb_safetensors *st = (nb_safetensors *)1;
        nb_dualenc *d = nb_dualenc_load(bad, &st);
        CHECK_MSG(!d && !st, "case %d loaded", k);
        nb_dualenc_free(d);
        CHECK_MSG(strstr(nb_errmsg(), bad) && strstr(nb_errmsg(), cases[k].says), "case %d: %s", k, nb_errmsg());
    }
    CHECK_MSG(nb_test_st_rewrite(path, bad, reshape_m, NULL) == 0, "%s", nb_errmsg());
    CHECK(nb_dualenc_load(bad, NULL) == NULL);
    CHECK_MSG(strstr(nb_errmsg(), bad) && strstr(nb_errmsg(), "'M'"), "%s", nb_errmsg());
    nb_clear_error();
    unlink(path);
    unlink(bad);
}

/* nb_dualenc_rank (what `chat eval` ranks by) scores every candidate of every
 * row as c^T M r, with c and r the LSTM run by hand over the truncated token
 * sequences: rows in batches of 2, the last one partial, 3 candidates each. */
TEST(test_eq_dual_encoder_rank_scores_every_candidate_by_hand) {
    nb_dualenc *m = tiny_model(4, 3, 4);
    nb_dialogue *d = parse("Context,Ground Truth Utterance,Distractor_0,Distractor_1\n"
                           "a b c d e,b c,d,e e a\n"
                           "c,a a a a,b d,c\n"
                           "e d,d e,a,b b\n"
                           "b b c a,e,c d e,a d\n"
                           "d,c b a,b,e a\n");
    CHECK_MSG(d, "%s", nb_errmsg());
    if (!d) {
        nb_dualenc_free(m);
        return;
    }
    const int64_t maxc = 4, maxr = 3, H = 4;
    float sc[15];
    CHECK(nb_dualenc_rank(m, d, maxc, maxr, 2, sc) == 0);
    for (int64_t i = 0; i < d->n; i++)
        for (int k = 0; k < d->ncand; k++) {
            int32_t ci[16], ri[16];
            double c[4], r[4], s = 0;
            int64_t nc = nb_chat_encode(m->vocab, d->context[i], maxc, true, ci);
            int64_t nr = nb_chat_encode(m->vocab, d->cand[i * d->ncand + k], maxr, false, ri);
            lstm_by_hand(m, ci, nc, c);
            lstm_by_hand(m, ri, nr, r);
            for (int a = 0; a < H; a++)
                for (int b = 0; b < H; b++) s += c[a] * m->M->data[a * H + b] * r[b];
            CHECK_MSG(fabs(sc[i * d->ncand + k] - s) < 1e-5, "row %lld candidate %d: %g, by hand %g", (long long)i, k,
                      sc[i * d->ncand + k], s);
        }
    nb_dialogue_free(d);
    nb_arena_reset();
    nb_dualenc_free(m);
}

/* A step's training pairs (`chat train --negatives K`): the rows as they are,
 * then K - 1 label-0 pairs per label-1 row only, each its own context with a
 * response other than its own; the same stream draws the same pairs. */
TEST(test_dual_encoder_step_pairs_draw_negatives_of_label_1_rows) {
    nb_dialogue *d = parse("Context,Utterance,Label\n"
                           "c0,r same,1\nc1,r one,0\nc2,r two,1\nc3,r same,1\nc4,r four,0\nc5,r five,1\n");
    CHECK_MSG(d, "%s", nb_errmsg());
    if (!d) return;
    const int64_t rows[] = {3, 1, 5, 0}, b = 4, K = 4;
    int64_t pc[16], pr[16], pc2[16], pr2[16];
    float y[16], y2[16];
    nb_rng r, r2;
    nb_rng_seed(&r, 7, 1);
    int64_t np = nb_dualenc_step_pairs(d, rows, b, K, &r, pc, pr, y);
    CHECK_MSG(np == b + 3 * (K - 1), "%lld pairs, expected 4 rows + 3 label-1 rows x 3 negatives", (long long)np);
    for (int64_t i = 0; i < b && i < np; i++)
        CHECK(pc[i] == rows[i] && pr[i] == rows[i] && y[i] == d->label[rows[i]]);
    int per[6] = {0};
    for (int64_t i = b; i < np; i++) {
        CHECK_MSG(d->label[pc[i]] == 1 && y[i] == 0, "pair %lld: context %lld, label %g", (long long)i,
                  (long long)pc[i], y[i]);
        CHECK_MSG(strcmp(d->cand[pr[i]], d->cand[pc[i]]) != 0, "pair %lld: response '%s' is its context's own",
                  (long long)i, d->cand[pr[i]]);
        per[pc[i]]++;
    }
    CHECK(per[3] == K - 1 && per[5] == K - 1 && per[0] == K - 1);
    nb_rng_seed(&r2, 7, 1);
    CHECK(nb_dualenc_step_pairs(d, rows, b, K, &r2, pc2, pr2, y2) == np);
    CHECK(!memcmp(pc, pc2, sizeof(int64_t) * (size_t)np) && !memcmp(pr, pr2, sizeof(int64_t) * (size_t)np));
    /* K = 1: the rows alone, nothing drawn */
    CHECK(nb_dualenc_step_pairs(d, rows, b, 1, &r, pc, pr, y) == b);
    nb_dialogue_free(d);
    /* the test layout has no labels to train on */
    d = parse("Context,Ground Truth Utterance,Distractor_0\nc,t,x\n");
    CHECK(d && nb_dualenc_step_pairs(d, (int64_t[]){0}, 1, 2, &r, pc, pr, y) == -1 && strstr(nb_errmsg(), "labels"));
    nb_dialogue_free(d);
}

/* M starts as a standard normal truncated at 2 (the reference's init): all
 * within +-2, and the tails reach close to it. */
TEST(test_dual_encoder_M_is_a_normal_truncated_at_2) {
    nb_dualenc *m = tiny_model(6, 2, 64);
    double hi = 0, sq = 0;
    for (int64_t i = 0; i < m->M->size; i++) {
        double v = fabs(m->M->data[i]);
        hi = fmax(hi, v), sq += v * v;
    }
    /* the truncated normal's variance is 1 - 4 phi(2) / (2 Phi(2) - 1) = 0.774 */
    CHECK_MSG(hi <= 2 && hi > 1.9, "largest |M| %g", hi);
    CHECK_NEAR(sq / (double)m->M->size, 0.774, 0.05);
    nb_dualenc_free(m);
}

/* --- recall@k ------------------------------------------------------------------- */

TEST(test_eq_recall_at_k_hand_table) {
    /* 4 rows of 5 candidates, the true one first. Row 0: best (rank 1).
     * Row 1: two above it (rank 3). Row 2: one above and two tied with it
     * (ranks 2..4 equally likely). Row 3: all tied (ranks 1..5). */
    const float s[] = {0.9f, 0.1f, 0.2f, 0.3f, 0.4f,
                       0.5f, 0.7f, 0.6f, 0.1f, 0.2f,
                       0.5f, 0.6f, 0.5f, 0.5f, 0.1f,
                       1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    /* @1: 1 + 0 + 0 + 1/5;  @2: 1 + 0 + 1/3 + 2/5;  @5 (all): 4. */
    CHECK_NEAR(nb_recall_at_k(s, 4, 5, 1), (1 + 0.2) / 4, 1e-12);
    CHECK_NEAR(nb_recall_at_k(s, 4, 5, 2), (1 + 1.0 / 3 + 0.4) / 4, 1e-12);
    CHECK_NEAR(nb_recall_at_k(s, 4, 5, 3), (1 + 1 + 2.0 / 3 + 0.6) / 4, 1e-12);
    CHECK_NEAR(nb_recall_at_k(s, 4, 5, 5), 1.0, 1e-12);
}

/* A negative candidate count stepped rows backwards, before scores. */
static void recall_negative_ncand(void *c) { nb_recall_at_k((const float[]){1, 2, 3, 4}, 2, -1, 1); }

TEST(test_eq_recall_at_k_needs_a_candidate) {
    nb_test_expect_fatal("recall ncand", recall_negative_ncand, NULL, (const char *[]){"recall_at_k", "got -1", NULL});
}

TEST(test_eq_recall_at_k_tfidf_prefers_shared_words) {
    nb_dialogue *d = parse("Context,Ground Truth Utterance,Distractor_0,Distractor_1\n"
                           "how do i mount a disk,mount the disk with mount,reboot now,install vim\n"
                           "my wifi is down,restart the wifi driver,eat cake,mount the disk\n");
    if (!d) return;
    float sc[6];
    nb_chat_tfidf_scores(d, sc);
    CHECK(sc[0] > sc[1] && sc[0] > sc[2] && sc[3] > sc[4] && sc[3] > sc[5]);
    CHECK(sc[1] == 0 && sc[4] == 0);
    CHECK_NEAR(nb_recall_at_k(sc, 2, 3, 1), 1.0, 1e-12);
    nb_dialogue_free(d);
}
