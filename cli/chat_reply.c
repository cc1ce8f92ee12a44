/* chat_reply.c — `nabla chat MODEL`: the responses of a bank ranked for
 * each message of stdin (a terminal or a pipe), by the model's score or its
 * combination with TF-IDF. */
#include "chat.h"
#include "cli.h"
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    float s;
    int64_t i;
} scored;
static int by_score(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int nb_chat_reply_main(int argc, char **argv) {
    const char *cmd = "chat", *resp_path = NULL, *weight_s = NULL, *idf_path = NULL;
    long top = 3, threads = 0;
    bool json = false;
    nb_flag flags[] = {
        {"--responses", NB_FLAG_STR, &resp_path, "the bank: one response a line", .meta = "FILE",
         .def = "the training responses stored in MODEL"},
        {"--top", NB_FLAG_INT, &top, "responses shown per message", .range = "[1, 1000]"},
        {"--tfidf-weight", NB_FLAG_STR, &weight_s, "rank by c^T M r + W cos_tfidf(message, response), idf of the "
                                                   "training file stored in MODEL (W from `chat eval --tfidf-weight "
                                                   "auto`); 0: the model alone", .meta = "W", .def = "0"},
        {"--idf", NB_FLAG_STR, &idf_path, "document frequencies from this training CSV instead of MODEL's",
         .meta = "TRAIN.csv", .def = "the model's"},
        NB_FLAG_THREADS(&threads, "all cores"),
        {"--json", NB_FLAG_BOOL, &json, "print one JSON object a line, one per message: {message, responses: [{score, text}]}"},
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL",
                .about = "Reads messages from stdin, one a line (a terminal or a pipe; a message without "
                         "__eou__ gets ' __eou__ __eot__' appended, as contexts of the corpus end), and prints the --top "
                         "responses of the bank with their scores sigma(c^T M r) (with --tfidf-weight W: sigma(c^T M r "
                         "+ W cos_tfidf)). The bank's embeddings are computed "
                         "once (stored in MODEL by `nabla chat train`). Reports the responses ranked per second.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    double W = 0;
    bool w_auto;
    if (weight_s && nb_chat_parse_weight(&c, weight_s, false, &W, &w_auto)) return 2;
    if (idf_path && W == 0) return nb_cli_usage_error(&c, "--idf goes with --tfidf-weight W > 0");
    nb_cli_threads(cmd, threads, 0);
    nb_safetensors *st = NULL;
    nb_dualenc *m = nb_dualenc_load(pos[0], &st);
    if (!m) return nb_cli_fail(cmd, "%s", nb_errmsg());
    int64_t mc, mr, H = m->hidden, nb = 0;
    float *idf = NULL;
    nb_chat_sparse *bvec = NULL;
    char *text = NULL, **bank = NULL, *line = NULL;
    float *r = NULL, *cm = NULL;
    scored *sc = NULL;
    rc = 1;
    double t0 = nb_cli_now(), embed_secs = 0;
    bool cached = false;
    if (nb_chat_model_cuts(st, pos[0], &mc, &mr)) goto fail_msg;
    if (resp_path) {
        size_t len;
        text = (char *)nb_read_file(resp_path, &len);
        if (!text) goto fail_msg;
        /* The lines are cut as C strings: after a NUL byte the rest of the
         * file would be dropped without a word. */
        const char *nul = memchr(text, 0, len);
        if (nul) {
            nb_cli_fail(cmd, "%s: a NUL byte at offset %zu: not a text file of responses, one a line", resp_path,
                        (size_t)(nul - text));
            goto done;
        }
        size_t bom = nb_utf8_bom(text, len);
        if (bom) memmove(text, text + bom, len + 1 - bom); /* and its NUL */
    } else {
        const char *b = nb_st_meta(st, "nabla.chat.bank");
        if (!b || !*b) {
            nb_cli_fail(cmd, "%s holds no response bank (written by `nabla chat train`); give --responses FILE", pos[0]);
            goto done;
        }
        text = strdup(b);
    }
    bank = text ? nb_chat_split_lines(text, &nb) : NULL;
    if (!bank) {
        nb_cli_fail(cmd, "out of memory");
        goto done;
    }
    if (nb == 0) {
        nb_cli_fail(cmd, "%s: no responses in the bank", resp_path ? resp_path : pos[0]);
        goto done;
    }
    nb_tensor *br = resp_path ? NULL : nb_st_get(st, "bank.r");
    if (br && br->ndim == 2 && br->shape[0] == nb && br->shape[1] == H) {
        r = malloc(sizeof(float) * (size_t)(nb * H));
        if (r) memcpy(r, br->data, sizeof(float) * (size_t)(nb * H));
        cached = true;
    } else {
        r = nb_chat_embed_texts(m, bank, nb, mr);
    }
    if (W > 0) { /* the bank's tf-idf vectors, once */
        if (!(idf = nb_chat_combined_idf(st, m, pos[0], idf_path))) goto fail_msg;
        bvec = calloc((size_t)nb, sizeof *bvec);
        if (!bvec) {
            nb_cli_fail(cmd, "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < nb; i++) nb_chat_tfidf_vec(m->vocab, idf, bank[i], &bvec[i]);
    }
    embed_secs = nb_cli_now() - t0;
    cm = malloc(sizeof(float) * (size_t)H);
    sc = malloc(sizeof(scored) * (size_t)nb);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)mc);
    if (!r || !cm || !sc || !ids) {
        free(ids);
        nb_cli_fail(cmd, "out of memory");
        goto done;
    }
    if (!json || nb_cli_tty())
        fprintf(stderr, "%" PRId64 " responses in the bank (%s, %.2f s%s); type a message%s\n", nb,
                cached ? "embeddings stored in the model" : "embedded now", embed_secs,
                cached ? "" : "", isatty(0) ? ", Ctrl-D to quit" : "");
    size_t cap = 0;
    ssize_t got;
    int64_t messages = 0;
    double rank_secs = 0;
    bool was = nb_set_grad_enabled(false);
    if (isatty(0)) fprintf(stderr, "> ");
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (!got) {
            if (isatty(0)) fprintf(stderr, "> ");
            continue;
        }
        double ts = nb_cli_now();
        /* A plain message ends its turn, as the contexts of the corpus do. */
        char *msg = line, *own = NULL;
        if (!strstr(line, "__eou__")) {
            own = nb__xmalloc("a message", (size_t)got + 20, 1);
            snprintf(own, (size_t)got + 20, "%s __eou__ __eot__", line);
            msg = own;
        }
        int64_t off[2] = {0, nb_chat_encode(m->vocab, msg, mc, true, ids)};
        nb_chat_sparse mv = {0};
        if (W > 0) nb_chat_tfidf_vec(m->vocab, idf, msg, &mv);
        free(own);
        nb_tensor *cvec = nb_matmul(nb_dualenc_encode(m, ids, off, 1), m->M); /* r' = c^T M */
        nb_tensor_read(cvec, cm);
        nb_arena_reset();
        for (int64_t i = 0; i < nb; i++) {
            const float *ri = r + i * H;
            float s = 0;
            for (int64_t j = 0; j < H; j++) s += cm[j] * ri[j];
            if (W > 0) s = (float)((double)s + W * nb_chat_sparse_dot(&mv, &bvec[i])); /* the combined score */
            sc[i].s = s, sc[i].i = i;
        }
        nb_chat_sparse_free(&mv);
        int64_t k = top < nb ? top : nb;
        /* partial selection of the best k */
        for (int64_t a = 0; a < k; a++) {
            int64_t best = a;
            for (int64_t b2 = a + 1; b2 < nb; b2++)
                if (by_score(&sc[b2], &sc[best]) < 0) best = b2;
            scored tmp = sc[a];
            sc[a] = sc[best], sc[best] = tmp;
        }
        rank_secs += nb_cli_now() - ts;
        messages++;
        if (json) {
            printf("{\"message\": %" PRId64 ", \"responses\": [", messages);
            for (int64_t a = 0; a < k; a++) {
                printf("%s{\"score\": %.6f, \"text\": ", a ? ", " : "", 1 / (1 + exp(-(double)sc[a].s)));
                nb_cli_json_string(stdout, bank[sc[a].i]);
                printf("}");
            }
            printf("]}\n");
        } else {
            for (int64_t a = 0; a < k; a++) printf("%.4f\t%s\n", 1 / (1 + exp(-(double)sc[a].s)), bank[sc[a].i]);
            printf("\n");
        }
        fflush(stdout);
        if (isatty(0)) fprintf(stderr, "> ");
    }
    nb_set_grad_enabled(was);
    free(ids);
    if (messages)
        fprintf(stderr, "%" PRId64 " message%s, %.0f responses ranked per second (%.2f ms a message over %" PRId64
                        " responses)\n", messages, messages == 1 ? "" : "s", (double)(messages * nb) / rank_secs,
                1e3 * rank_secs / (double)messages, nb);
    rc = 0;
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    if (bvec)
        for (int64_t i = 0; i < nb; i++) nb_chat_sparse_free(&bvec[i]);
    free(bvec), free(idf);
    free(line), free(text), free(bank), free(r), free(cm), free(sc);
    nb_dualenc_free(m);
    nb_st_free(st);
    return rc;
}

