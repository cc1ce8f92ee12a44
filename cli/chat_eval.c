/* chat_eval.c — `nabla chat eval MODEL TEST.csv`: recall@1/2/5 of the true
 * response among each row's candidates, for the model, a random and a
 * TF-IDF baseline, and with --tfidf-weight their combination. */
#include "chat.h"
#include "cli.h"
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The grid of --tfidf-weight auto: W = 0 (the model alone), then doubling
 * from 1/4 to 8192 (the cosine is in [0, 1]; the logits of a trained model
 * span tens, of an overfitted one hundreds). */
static const double W_GRID[] = {0, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};

int nb_chat_eval_main(int argc, char **argv) {
    const char *cmd = "chat eval", *weight_s = NULL, *valid_path = NULL, *idf_path = NULL;
    long threads = 0, seed = 1, batch = 128;
    bool json = false;
    nb_flag flags[] = {
        {"--batch", NB_FLAG_INT, &batch, "rows scored at once", .range = "[1, 65536]"},
        {"--tfidf-weight", NB_FLAG_STR, &weight_s, "also rank by the combined score c^T M r + W cos_tfidf (idf of the "
                                                   "training file, see --idf); 'auto': the W of the grid 0, 1/4, 1/2, "
                                                   "1, 2, ..., 8192 with the best recall@1 on --valid (the smallest "
                                                   "of equals)", .meta = "W|auto", .def = "none"},
        {"--valid", NB_FLAG_STR, &valid_path, "validation CSV (test layout) on which --tfidf-weight auto picks W",
         .meta = "VALID.csv", .def = "none"},
        {"--idf", NB_FLAG_STR, &idf_path, "count the document frequencies of the combined score on this training CSV "
                                          "instead of taking those stored in MODEL", .meta = "TRAIN.csv",
         .def = "the model's"},
        NB_FLAG_SEED(&seed, "the random baseline"),
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL TEST.csv",
                .about = "Recall@1, @2 and @5 of the true response among the candidates of each row (1 + 9 "
                         "distractors in the Ubuntu layout), for the model and, on the same file in the same run, "
                         "two baselines: random scores, and TF-IDF (cosine between the tf-idf vectors of the context "
                         "and each candidate, idf from every context and candidate of TEST.csv). Ties count as a "
                         "random order among the tied candidates would on average. With --tfidf-weight W also the "
                         "combined score s = logit(sigma(c^T M r)) + W cos_tfidf(context, candidate), where the "
                         "cosine is over the model's vocabulary with the idf of the TRAINING file (stored in MODEL "
                         "by `chat train`, as the interactive mode uses it): W = 0 is the model alone.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 2, .max_pos = 2};
    const char *pos[2];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    double W = 0, vbest = NAN, vgrid[sizeof W_GRID / sizeof W_GRID[0]];
    bool w_auto = false, combine = weight_s != NULL;
    if (combine && nb_chat_parse_weight(&c, weight_s, true, &W, &w_auto)) return 2;
    if (w_auto && !valid_path) return nb_cli_usage_error(&c, "--tfidf-weight auto needs --valid VALID.csv");
    if (!combine && (valid_path || idf_path))
        return nb_cli_usage_error(&c, "--valid and --idf go with --tfidf-weight");
    nb_cli_threads(cmd, threads, 0);
    nb_safetensors *st = NULL;
    nb_dualenc *m = nb_dualenc_load(pos[0], &st);
    if (!m) return nb_cli_fail(cmd, "%s", nb_errmsg());
    nb_dialogue *d = nb_dialogue_load(pos[1]), *vd = NULL;
    float *sm = NULL, *sr = NULL, *stf = NULL, *idf = NULL, *cosv = NULL, *scomb = NULL;
    rc = 1;
    if (!d) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (d->ncand < 2) {
        rc = nb_cli_fail(cmd, "%s is in the train layout; eval needs Context,Ground Truth Utterance,Distractor_0,...",
                         pos[1]);
        goto done;
    }
    int64_t mc, mr, N = d->n * d->ncand;
    if (nb_chat_model_cuts(st, pos[0], &mc, &mr)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    sm = malloc(sizeof(float) * (size_t)N), sr = malloc(sizeof(float) * (size_t)N), stf = malloc(sizeof(float) * (size_t)N);
    if (!sm || !sr || !stf) {
        rc = nb_cli_fail(cmd, "out of memory");
        goto done;
    }
    double t0 = nb_cli_now();
    nb_dualenc_rank(m, d, mc, mr, batch, sm);
    double secs = nb_cli_now() - t0;
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed, 7);
    for (int64_t i = 0; i < N; i++) sr[i] = (float)nb_rng_uniform(&r);
    nb_chat_tfidf_scores(d, stf);
    if (combine) {
        if (!(idf = nb_chat_combined_idf(st, m, pos[0], idf_path))) goto fail_msg;
        if (w_auto) { /* W from the validation file: its model logits and cosines, the grid's best recall@1 */
            if (!(vd = nb_dialogue_load(valid_path))) goto fail_msg;
            if (vd->ncand < 2) {
                rc = nb_cli_fail(cmd, "%s: --valid needs the test layout (Context,Ground Truth Utterance,Distractor_0,...)",
                                 valid_path);
                goto done;
            }
            int64_t NV = vd->n * vd->ncand;
            float *vl = malloc(sizeof(float) * (size_t)NV), *vc = malloc(sizeof(float) * (size_t)NV),
                  *vs = malloc(sizeof(float) * (size_t)NV);
            if (!vl || !vc || !vs) {
                free(vl), free(vc), free(vs);
                rc = nb_cli_fail(cmd, "out of memory");
                goto done;
            }
            nb_dualenc_rank(m, vd, mc, mr, batch, vl);
            nb_chat_tfidf_vocab_scores(m->vocab, idf, vd, vc);
            for (size_t g = 0; g < sizeof W_GRID / sizeof W_GRID[0]; g++) {
                nb_chat_combine(vl, vc, NV, W_GRID[g], vs);
                double r1 = vgrid[g] = nb_recall_at_k(vs, vd->n, vd->ncand, 1);
                if (g == 0 || r1 > vbest) vbest = r1, W = W_GRID[g];
            }
            free(vl), free(vc), free(vs);
        }
        cosv = malloc(sizeof(float) * (size_t)N), scomb = malloc(sizeof(float) * (size_t)N);
        if (!cosv || !scomb) {
            rc = nb_cli_fail(cmd, "out of memory");
            goto done;
        }
        nb_chat_tfidf_vocab_scores(m->vocab, idf, d, cosv);
        nb_chat_combine(sm, cosv, N, W, scomb);
    }
    const int ks[3] = {1, 2, 5};
    double res[4][3];
    float *all[4] = {sm, stf, sr, scomb};
    int na = combine ? 4 : 3;
    for (int a = 0; a < na; a++)
        for (int k = 0; k < 3; k++) res[a][k] = nb_recall_at_k(all[a], d->n, d->ncand, ks[k] < d->ncand ? ks[k] : d->ncand);
    FILE *o = json ? stderr : stdout;
    fprintf(o, "%s: %" PRId64 " contexts, %d candidates each (%.1f s, %.0f candidates/s)\n", pos[1], d->n, d->ncand, secs,
            (double)N / secs);
    fprintf(o, "%-14s %9s %9s %9s\n", "", "recall@1", "recall@2", "recall@5");
    const char *names[3] = {"dual encoder", "TF-IDF", "random"};
    for (int a = 0; a < 3; a++) fprintf(o, "%-14s %9.4f %9.4f %9.4f\n", names[a], res[a][0], res[a][1], res[a][2]);
    if (combine) {
        char lab[40];
        snprintf(lab, sizeof lab, "combined W=%g", W);
        fprintf(o, "%-14s %9.4f %9.4f %9.4f\n", lab, res[3][0], res[3][1], res[3][2]);
        if (w_auto) {
            fprintf(o, "W = %g chosen on %s (validation recall@1 %.4f); validation recall@1 by W:", W, valid_path, vbest);
            for (size_t g = 0; g < sizeof W_GRID / sizeof W_GRID[0]; g++) fprintf(o, " %g:%.4f", W_GRID[g], vgrid[g]);
            fprintf(o, "\n");
        }
    }
    if (json) {
        printf("{\"rows\": %" PRId64 ", \"candidates\": %d, \"model\": {\"recall_1\": %.6f, \"recall_2\": %.6f, "
               "\"recall_5\": %.6f}, \"tfidf\": {\"recall_1\": %.6f, \"recall_2\": %.6f, \"recall_5\": %.6f}, "
               "\"random\": {\"recall_1\": %.6f, \"recall_2\": %.6f, \"recall_5\": %.6f}, ",
               d->n, d->ncand, res[0][0], res[0][1], res[0][2], res[1][0], res[1][1], res[1][2], res[2][0], res[2][1],
               res[2][2]);
        if (combine) {
            printf("\"combined\": {\"recall_1\": %.6f, \"recall_2\": %.6f, \"recall_5\": %.6f}, \"tfidf_weight\": %.9g, "
                   "\"tfidf_weight_auto\": %s, ", res[3][0], res[3][1], res[3][2], W, w_auto ? "true" : "false");
            if (w_auto) printf("\"valid_combined_recall_1\": %.6f, ", vbest);
        }
        printf("\"seconds\": %.3f}\n", secs);
    }
    rc = 0;
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    free(sm), free(sr), free(stf), free(idf), free(cosv), free(scomb);
    nb_dialogue_free(vd);
    nb_dialogue_free(d);
    nb_dualenc_free(m);
    nb_st_free(st);
    return rc;
}

