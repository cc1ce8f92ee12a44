/* wavenet_eval.c — `nabla wavenet eval`: bits per sample of a model on a
 * speech folder's clips, and the scoring that training's validation shares
 * (chunks of predictions, each behind a receptive field of context). */
#include "wavenet.h"
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bits per sample of the model on clips (at most max_samples predictions
 * in all): each clip in chunks of `chunk` predictions, each chunk preceded
 * by the receptive field's worth of context. Without `spread` the first
 * max_samples predictions are scored (clip after clip); with it, when the
 * clips hold more, every clip gives the same fraction of its samples, a
 * window at its middle, so that all clips (and speakers) are represented.
 * hist (may be NULL) gets the counts of the μ-law levels scored. */
double nb_wn_bits_per_sample(nb_wavenet *m, const nb_wn_clip *clips, int n, int64_t chunk, int64_t max_samples,
                             bool spread, int64_t *count, int64_t hist[NB_WAVENET_CLASSES]) {
    bool was = nb_set_grad_enabled(false);
    const nb_wavenet_config *cf = nb_wavenet_get_config(m);
    int64_t ctx = nb_wavenet_receptive_field(cf) - 1, done = 0, total = 0;
    double nats = 0;
    for (int i = 0; i < n; i++) total += clips[i].n > 1 ? clips[i].n - 1 : 0;
    double frac = spread && total > max_samples ? (double)max_samples / (double)total : 1;
    if (hist) memset(hist, 0, sizeof(int64_t) * NB_WAVENET_CLASSES);
    for (int i = 0; i < n && done < max_samples; i++) {
        const nb_wn_clip *k = &clips[i];
        int64_t from = 1, to = k->n; /* the predictions scored: samples from..to-1 */
        if (frac < 1) {
            int64_t want = (int64_t)floor(frac * (double)(k->n - 1));
            from = 1 + (k->n - 1 - want) / 2, to = from + want;
        }
        for (int64_t a = from; a < to && done < max_samples; a += chunk) {
            int64_t b = a + chunk < to ? a + chunk : to; /* predict samples a..b-1 */
            if (b - a > max_samples - done) b = a + (max_samples - done);
            int64_t a0 = a - 1 - ctx < 0 ? 0 : a - 1 - ctx, L = b - 1 - a0; /* inputs a0..b-2 */
            int32_t spk = k->speaker;
            nb_tensor *cond = cf->cond_dim ? nb_wavenet_cond(m, k->feats, a0 + 1, L) : NULL;
            nb_tensor *lg = nb_wavenet_forward(m, k->q + a0, 1, L, &spk, cond);
            const float *o = lg->data;
            if (lg->device != NB_CPU) { /* a model on the GPU: its logits come back to be scored */
                float *h = nb_arena_alloc(sizeof(float) * (size_t)lg->size);
                nb_tensor_read(lg, h);
                o = h;
            }
            for (int64_t t = a - 1 - a0; t < L; t++) {
                double mx = -INFINITY, tot = 0;
                for (int c = 0; c < NB_WAVENET_CLASSES; c++) mx = fmax(mx, o[c * L + t]);
                for (int c = 0; c < NB_WAVENET_CLASSES; c++) tot += exp(o[c * L + t] - mx);
                nats += log(tot) + mx - o[k->q[a0 + t + 1] * L + t];
                if (hist) hist[k->q[a0 + t + 1]]++;
            }
            done += b - a;
            nb_arena_reset();
        }
    }
    nb_set_grad_enabled(was);
    if (count) *count = done;
    return done ? nats / (double)done / log(2.0) : NAN;
}

/* --- eval ------------------------------------------------------------------------- */

/* The entropy in bits of a histogram of counts: what a model that ignores
 * the past (one fixed distribution over the levels) can at best reach on
 * the samples counted. */
static double histogram_entropy(const int64_t *hist, int n) {
    int64_t tot = 0;
    for (int i = 0; i < n; i++) tot += hist[i];
    double h = 0;
    for (int i = 0; i < n; i++)
        if (hist[i]) {
            double p = (double)hist[i] / (double)tot;
            h -= p * log2(p);
        }
    return tot ? h : NAN;
}

static const char *EVAL_ABOUT =
    "Bits per sample of MODEL on DATA's clips (--split; by default the held-out ones, valid and test, or\n"
    "every clip when none is held out). Next to it: the entropy of the histogram of the mu-law levels\n"
    "scored, the best a model that ignores the past can do (a uniform guess: 8 bits). When the clips hold\n"
    "more than --max-samples predictions, each clip gives the same fraction of its samples (a window at\n"
    "its middle), so that every clip and speaker is represented.";

int nb_wn_eval(int argc, char **argv) {
    const char *cmd = "wavenet eval", *split = "held-out";
    long max_samples = 1000000, threads = 0;
    bool json = false;
    nb_flag flags[] = {
        {"--split", NB_FLAG_CHOICE, &split, "the clips scored: held-out (valid and test), valid, test, train or all",
         .range = "held-out|valid|test|train|all"},
        {"--max-samples", NB_FLAG_INT, &max_samples, "score at most this many samples", .range = "[1, inf)"},
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL DATA ", .about = EVAL_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 2, .max_pos = 2};
    const char *pos[2];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    nb_cli_threads(cmd, threads, 0);
    unsigned keep = nb_wn_split_mask(split);
    nb_safetensors *st = NULL;
    nb_wavenet *m = nb_wavenet_load(pos[0], &st);
    if (!m) return nb_cli_fail(cmd, "%s", nb_errmsg());
    const nb_wavenet_config *cf = nb_wavenet_get_config(m);
    const char *cond = nb_st_meta(st, "nabla.wavenet.cond");
    if (cond && !strcmp(cond, "none")) cond = NULL;
    if (cf->cond_dim && !cond) cond = "mel";
    nb_wn_corpus data;
    nb_wn_clip *v = NULL;
    bool fallback = false; /* held-out asked, none held out: the training clips */
    if (nb_wn_corpus_load(&data, pos[1], cf->cond_dim ? cond : NULL, keep)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (data.ntrain + data.nval == 0 && keep == (NB_WN_KEEP_VALID | NB_WN_KEEP_TEST)) {
        nb_wn_corpus_free(&data);
        fallback = true;
        if (nb_wn_corpus_load(&data, pos[1], cf->cond_dim ? cond : NULL, NB_WN_KEEP_TRAIN)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
    }
    int n = data.ntrain + (data.val_is_train ? 0 : data.nval);
    if (n == 0) {
        rc = nb_cli_fail(cmd, "%s holds no clip of the %s split", pos[1], split);
        nb_wn_corpus_free(&data);
        goto done;
    }
    v = nb__xmalloc("the clips scored", (size_t)n, sizeof(nb_wn_clip)); /* the clips scored, in DATA's order within each part */
    memcpy(v, data.train, sizeof(nb_wn_clip) * (size_t)data.ntrain);
    if (!data.val_is_train) memcpy(v + data.ntrain, data.val, sizeof(nb_wn_clip) * (size_t)data.nval);
    if (cf->nspeakers && data.nspeakers != cf->nspeakers) {
        rc = nb_cli_fail(cmd, "%s was trained on %d speakers; %s has %d", pos[0], cf->nspeakers, pos[1], data.nspeakers);
        nb_wn_corpus_free(&data);
        goto done;
    }
    if (cf->cond_dim && v[0].feats->shape[1] != cf->cond_dim) {
        rc = nb_cli_fail(cmd, "%s takes %d features per frame; %s gives %lld", pos[0], cf->cond_dim, pos[1],
                         (long long)v[0].feats->shape[1]);
        nb_wn_corpus_free(&data);
        goto done;
    }
    int64_t count, hist[NB_WAVENET_CLASSES];
    double t0 = nb_cli_now();
    double bits = nb_wn_bits_per_sample(m, v, n, 16000, max_samples, true, &count, hist);
    double secs = nb_cli_now() - t0, ent = histogram_entropy(hist, NB_WAVENET_CLASSES);
    int64_t rf = nb_wavenet_receptive_field(cf);
    const char *which = fallback ? "train: none is held out" : split;
    printf("%.4f bits per sample over %" PRId64 " samples of %d clip(s) (split %s; receptive field %" PRId64 "); "
           "histogram entropy %.4f bits, uniform 8 bits\n", bits, count, n, which, rf, ent);
    if (json) {
        printf("{\"bits_per_sample\": %.6f, \"histogram_entropy_bits\": %.6f, \"samples\": %" PRId64
               ", \"clips\": %d, \"split\": ", bits, ent, count, n);
        nb_cli_json_string(stdout, fallback ? "train" : split);
        printf(", \"receptive_field\": %" PRId64 ", \"samples_per_second\": %.1f}\n", rf, (double)count / secs);
    }
    nb_wn_corpus_free(&data);
    rc = 0;
done:
    free(v);
    nb_wavenet_free(m);
    nb_st_free(st);
    return rc;
}
