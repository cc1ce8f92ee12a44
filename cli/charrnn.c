/* charrnn.c — `nabla charrnn train|sample|eval`: a character-level language
 * model (plain RNN, LSTM or GRU; notes §2.4) trained with truncated BPTT and
 * Adam on any UTF-8 text, by default the English fortune files of Debian's
 * `fortunes` package; validation in bits per character on the last 5% of
 * every file. This file holds sampling, evaluation and the verbs' table;
 * training is charrnn_train.c, the text charrnn_corpus.c. */
#include "charrnn.h"
#include <stdlib.h>
#include <string.h>

/* --- sample ---------------------------------------------------------------- */

static int cmd_sample(int argc, char **argv) {
    const char *cmd = "charrnn sample", *prime_s = NULL;
    long length = 500, seed = 1, threads = 0;
    double temperature = 0.8;
    nb_flag flags[] = {
        {"--length", NB_FLAG_INT, &length, "characters to generate", .range = "[0, 100000000]"},
        {"--temperature", NB_FLAG_FLOAT, &temperature, "softmax temperature; 0 picks the likeliest",
         .range = "[0, inf)"},
        {"--prime", NB_FLAG_STR, &prime_s, "text to start from", .meta = "TEXT",
         .def = "the model's first character, a newline for most texts"},
        NB_FLAG_SEED(&seed, "the draws"),
        NB_FLAG_THREADS(&threads, "1: one character at a time is too small to share"),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL ", .about = "Generates text from a model of `nabla charrnn train`, "
                "printing --prime and then --length characters.", .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    nb_cli_threads(cmd, threads, 1);
    nb_charrnn *m = nb_charrnn_load(pos[0], NULL);
    if (!m) return nb_cli_fail(cmd, "%s", nb_errmsg());
    int rc = 0;
    int32_t *cps = NULL, *ids = NULL, *out = NULL;
    int64_t n = 0;
    if (prime_s) {
        cps = nb_utf8_decode((const uint8_t *)prime_s, strlen(prime_s), "--prime", &n);
        if (!cps) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
    } else {
        cps = nb__xmalloc("the prompt", 1, sizeof(int32_t));
        cps[0] = m->vocab[0] == '\n' ? '\n' : m->vocab[0];
        n = 1;
    }
    ids = nb__malloc(sizeof(int32_t) * (size_t)n);
    out = nb__malloc(sizeof(int32_t) * (size_t)(length ? length : 1));
    if (!ids || !out) {
        rc = nb_cli_fail(cmd, "out of memory");
        goto done;
    }
    if (nb_charrnn_encode(m, cps, n, ids, "--prime")) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed, 0);
    if (nb_charrnn_sample(m, ids, n, length, (float)temperature, &r, out)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    char u[4];
    if (prime_s) fputs(prime_s, stdout);
    for (int64_t i = 0; i < length; i++) fwrite(u, 1, (size_t)nb_utf8_encode(m->vocab[out[i]], u), stdout);
    if (length && m->vocab[out[length - 1]] != '\n') putchar('\n');
done:
    free(cps);
    free(ids);
    free(out);
    nb_charrnn_free(m);
    return rc;
}

/* --- eval ------------------------------------------------------------------ */

static int cmd_eval(int argc, char **argv) {
    const char *cmd = "charrnn eval";
    long seq = 0, batch = 32, threads = 0;
    bool json = false;
    nb_flag flags[] = {
        {"--seq", NB_FLAG_INT, &seq, "steps per batch", .range = "[1, 100000]",
         .def = "the model's training --seq, else 64"},
        {"--batch", NB_FLAG_INT, &batch, "parallel streams", .range = "[1, 65536]"},
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL [TEXT...] ",
                .about = "Bits per character on TEXT (all of it), or without TEXT on the held-out last 5% of every "
                         "file of the\nfortunes corpus (" NB_CR_FORTUNES ") that `nabla charrnn train` validates on.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = argc};
    const char **pos = malloc(sizeof(char *) * (size_t)(argc > 1 ? argc : 1));
    if (!pos) return nb_cli_fail(cmd, "out of memory");
    nb_cr_corpus cp = {0};
    int32_t *train_ids = NULL, *val_ids = NULL;
    nb_charrnn *m = NULL;
    nb_safetensors *st = NULL;
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) goto done;
    rc = 1;
    nb_cli_threads(cmd, threads, 0);
    m = nb_charrnn_load(pos[0], &st);
    if (!m || nb_cr_corpus_load(&cp, pos + 1, npos - 1) || nb_cr_corpus_encode(&cp, m)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (!seq) {
        /* the training --seq (absent in older models: 64); a damaged value is
         * named, not replaced by the default */
        int64_t s = 64;
        if (nb_st_meta(st, "nabla.seq") && nb_cli_meta_count(st, pos[0], "nabla.seq", &s)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        if (s < 1 || s > 100000) {
            rc = nb_cli_fail(cmd, "%s: __metadata__ 'nabla.seq': expected an integer in [1, 100000], got %lld", pos[0],
                             (long long)s);
            goto done;
        }
        seq = (long)s;
    }
    /* Without TEXT: the held-out part of the fortunes, as training split it. */
    int32_t *ids = cp.ids;
    int64_t n = cp.len, ntrain, chars;
    if (npos == 1 && nb_cr_corpus_split(&cp, &train_ids, &ntrain, &val_ids, &n)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (npos == 1) ids = val_ids;
    char cname[512];
    nb_cr_corpus_name(&cp, cname, sizeof cname);
    double t0 = nb_cli_now();
    double bpc = nb_charrnn_bits_per_char(m, ids, n, seq, batch, &chars);
    if (bpc < 0) {
        rc = nb_cli_fail(cmd, "%s: %s", cname, nb_errmsg());
        goto done;
    }
    double secs = nb_cli_now() - t0;
    fprintf(json ? stderr : stdout, "%s on %s%s: %.4f bits/char over %lld characters (%.2f s)\n", pos[0],
            npos == 1 ? "the held-out 5% of each file of " : "", cname, bpc, (long long)chars, secs);
    if (json) printf("{\"bits_per_char\": %.6f, \"chars\": %lld, \"seconds\": %.3f}\n", bpc, (long long)chars, secs);
    rc = 0;
done:
    free(train_ids);
    free(val_ids);
    nb_cr_corpus_free(&cp);
    nb_charrnn_free(m);
    nb_st_free(st);
    free(pos);
    return rc;
}

/* --- dispatch --------------------------------------------------------------- */

static int cmd_charrnn(int argc, char **argv) {
    static const nb_verb verbs[] = {
        {"train", nb_cr_train, "train a language model on UTF-8 text (default: the fortunes in " NB_CR_FORTUNES ")"},
        {"sample", cmd_sample, "generate text from a model"},
        {"eval", cmd_eval, "bits per character of a model on text (default: the held-out fortunes)"},
    };
    return nb_cli_verbs("charrnn", verbs, (int)(sizeof verbs / sizeof verbs[0]), argc, argv);
}

NB_COMMAND("charrnn", cmd_charrnn, "character-level RNN/LSTM/GRU language model: train, sample, eval")
