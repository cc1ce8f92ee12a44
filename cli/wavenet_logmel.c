/* wavenet_logmel.c — the log-mel verbs of `nabla wavenet`: a recording's
 * spectrogram (a picture, or the features that --cond mel takes), the log-mel
 * distance between two recordings, and per-clip speaker features (band
 * statistics) as CSV for a classifier: the measures of what a model makes. */
#include "wavenet.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- spectrogram ---------------------------------------------------------------------- */

int nb_wn_spectrogram(int argc, char **argv) {
    const char *cmd = "wavenet spectrogram", *out = NULL;
    long mels = NB_WN_MELS;
    nb_flag flags[] = {
        {"--mels", NB_FLAG_INT, &mels, "mel bands", .range = "[1, 512]"},
        {"--out", NB_FLAG_OUTPUT, &out, "the picture, or the features as an array [frames, mels]",
         .range = "png|svg|pdf|npy", .meta = "FILE", .def = "required"},
    };
    nb_cli c = {.cmd = cmd, .args = "WAV ",
                .about = "A log-mel spectrogram of a recording (read at 16 kHz): a picture (.png, .svg, .pdf), or the\n"
                         "features that `--cond mel` conditions on (.npy, [frames, mels], one frame per 256 samples),\n"
                         "for `nabla wavenet generate MODEL --cond FILE.npy`.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    if (!out) return nb_cli_usage_error(&c, "--out FILE is required");
    nb_audio a;
    if (nb_audio_read(pos[0], NB_WN_RATE, &a)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    nb_tensor *lm = nb_logmel(a.x, a.n, NB_WN_RATE, (int)mels);
    double dur = (double)a.n / NB_WN_RATE;
    nb_audio_free(&a);
    if (!lm) return nb_cli_fail(cmd, "%s", nb_errmsg());
    int frames = (int)lm->shape[0], nm = (int)lm->shape[1];
    if (nb_cli_has_ext(out, "npy")) {
        rc = nb_npy_write(out, lm) ? nb_cli_fail(cmd, "%s", nb_errmsg()) : 0;
        if (!rc) fprintf(stderr, "%d frames x %d mel bands (%.2f s); wrote %s\n", frames, nm, dur, out);
        nb_tensor_free(lm);
        return rc;
    }
    /* A frame is a column of the picture (the library's heatmap would refuse
     * it naming itself): say it in the recording's terms. */
    if (frames > NB_PNG_MAX_SIDE) {
        nb_tensor_free(lm);
        return nb_cli_fail(cmd, "%s: %d frames (%.2f s) are more than a picture's %d columns: write them as an array "
                                "(--out FILE.npy), or cut the recording", pos[0], frames, dur, NB_PNG_MAX_SIDE);
    }
    float *z = malloc(sizeof(float) * (size_t)frames * (size_t)nm); /* [mels, frames]: band 0 at the bottom */
    if (!z) {
        nb_tensor_free(lm);
        return nb_cli_fail(cmd, "out of memory for the %d x %d picture", nm, frames);
    }
    for (int f = 0; f < frames; f++)
        for (int b = 0; b < nm; b++) z[(size_t)b * (size_t)frames + (size_t)f] = lm->data[(size_t)f * (size_t)nm + (size_t)b];
    const char *base = strrchr(pos[0], '/');
    nb_figure *fig = nb_figure_new(900, 420, 1, 1, base ? base + 1 : pos[0]);
    nb_heatmap h = {.title = "log-mel spectrogram", .xlabel = "seconds", .ylabel = "mel band", .clabel = "ln magnitude",
                    .z = z, .rows = nm, .cols = frames, .x0 = 0, .x1 = dur, .cmap = NB_CMAP_MAGMA};
    rc = !fig || nb_figure_heatmap(fig, 0, &h) || nb_figure_save(fig, out) ? nb_cli_fail(cmd, "%s", nb_errmsg()) : 0;
    if (!rc) fprintf(stderr, "%d frames x %d mel bands (%.2f s); wrote %s\n", frames, nm, dur, out);
    nb_figure_free(fig);
    free(z);
    nb_tensor_free(lm);
    return rc;
}

/* --- distance: the log-mel distance between two recordings ------------------------------ */

/* The log-mel (80 bands, natural log) of a recording read at 16 kHz. */
static nb_tensor *file_logmel(const char *path) {
    nb_audio a;
    if (nb_audio_read(path, NB_WN_RATE, &a)) return NULL;
    nb_tensor *lm = nb_logmel(a.x, a.n, NB_WN_RATE, NB_WN_MELS);
    nb_audio_free(&a);
    return lm;
}

#define DB_PER_NEPER 8.685889638065036 /* 20 / ln 10: a ratio of magnitudes e^d is 20 log10(e^d) dB */

int nb_wn_distance(int argc, char **argv) {
    const char *cmd = "wavenet distance";
    bool json = false;
    nb_flag flags[] = {NB_FLAG_JSON(&json)};
    nb_cli c = {.cmd = cmd, .args = "REF.wav OTHER.wav ",
                .about = "The log-mel distance between two recordings (read at 16 kHz, mixed to mono): the mean\n"
                         "absolute difference of their 80-band log-mel spectrograms (nb_logmel: window 1024, hop 256,\n"
                         "ln of the band magnitudes floored at 1e-5) over the frames both have (the longer is cut),\n"
                         "in natural-log units and in dB (x 20/ln 10). 0 for identical audio; a resynthesis is close\n"
                         "when its spectral envelope, pitch and timing follow the reference frame by frame.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 2, .max_pos = 2};
    const char *pos[2];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    nb_tensor *a = file_logmel(pos[0]), *b = a ? file_logmel(pos[1]) : NULL;
    if (!a || !b) {
        nb_tensor_free(a);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    int64_t fa = a->shape[0], fb = b->shape[0], f = fa < fb ? fa : fb;
    double sum = 0;
    for (int64_t i = 0; i < f * NB_WN_MELS; i++) sum += fabs((double)a->data[i] - (double)b->data[i]);
    double d = sum / (double)(f * NB_WN_MELS);
    printf("log-mel distance %.4f (natural log; %.2f dB) over %" PRId64 " frames of %d bands (%s: %" PRId64
           " frames, %s: %" PRId64 ")\n", d, d * DB_PER_NEPER, f, NB_WN_MELS, pos[0], fa, pos[1], fb);
    if (json)
        printf("{\"logmel_distance\": %.6f, \"logmel_distance_db\": %.6f, \"frames\": %" PRId64 ", \"ref_frames\": %" PRId64
               ", \"other_frames\": %" PRId64 "}\n", d, d * DB_PER_NEPER, f, fa, fb);
    nb_tensor_free(a);
    nb_tensor_free(b);
    return 0;
}

/* --- features: per-clip speaker features for nabla train / nabla eval ------------------------ */

static const char *FEATURES_ABOUT =
    "Writes one CSV row per clip of DATA (a speech folder: manifest.csv or one sub-folder of audio files per\n"
    "speaker): the mean and the standard deviation over the clip's frames of each of the 80 bands of its\n"
    "log-mel (160 columns mean0..mean79, sd0..sd79), then the label: the speaker's index. This is the layout\n"
    "`nabla train --data` and `nabla eval --data` read (label last, a header row). The rows are in a random\n"
    "order (--seed), so that the last 10% that nabla train holds out have every speaker.\n"
    "--speakers-of TRAINDATA numbers the speakers as that folder does (the classifier's labels), matching\n"
    "DATA's speaker names (the sub-folder names, e.g. of generated clips) to it; a name it lacks is an error.\n"
    "--noise 30,20,10 adds, for every clip, one more row per signal-to-noise ratio (dB): the clip with white\n"
    "Gaussian noise of its own power / 10^(dB/10) added (--seed draws it). A classifier trained on such rows\n"
    "(noise augmentation, as speaker recognizers are trained) judges generated audio by its voice rather than\n"
    "by its noise floor, which a classifier trained on clean rows only takes for a voice.";

#define NOISE_MAX 16 /* --noise levels */

/* "30,20,10" -> db[]; the number of levels, or -1 with the error set. */
static int parse_noise(const char *s, double *db) {
    int n = 0;
    for (const char *p = s;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || v < -30 || v > 120 || (*end && *end != ',')) {
            nb_error("--noise %s: expected signal-to-noise ratios in dB, from -30 to 120, separated by commas", s);
            return -1;
        }
        if (n == NOISE_MAX) {
            nb_error("--noise %s: at most %d levels", s, NOISE_MAX);
            return -1;
        }
        db[n++] = v;
        if (!*end) return n;
        p = end + 1;
    }
}

/* The 160 speaker features of samples x[0..n): each band's mean and standard
 * deviation over the frames of the log-mel (the frames are the samples of
 * nb_stats_mean / nb_stats_var). */
static int speaker_features(const float *x, int64_t n, float *r) {
    nb_tensor *lm = nb_logmel(x, n, NB_WN_RATE, NB_WN_MELS);
    nb_tensor *mean = lm ? nb_stats_mean(lm) : NULL, *var = mean ? nb_stats_var(lm, 0) : NULL;
    if (var)
        for (int b = 0; b < NB_WN_MELS; b++) r[b] = mean->data[b], r[NB_WN_MELS + b] = sqrtf(var->data[b]);
    nb_tensor_free(lm);
    nb_tensor_free(mean);
    nb_tensor_free(var);
    return var ? 0 : -1;
}

int nb_wn_features(int argc, char **argv) {
    const char *cmd = "wavenet features", *out = NULL, *split = "all", *of = NULL, *noise = NULL;
    long seed = 1;
    bool json = false;
    nb_flag flags[] = {
        {"--split", NB_FLAG_CHOICE, &split, "the clips: all, train, valid, test or held-out (valid and test)",
         .range = "all|train|valid|test|held-out"},
        {"--speakers-of", NB_FLAG_STR, &of, "number the speakers as this speech folder does", .meta = "TRAINDATA",
         .def = "DATA's own order"},
        {"--noise", NB_FLAG_STR, &noise, "also a row per clip with white noise at each of these signal-to-noise ratios",
         .meta = "DB[,DB...]", .def = "clean rows only"},
        NB_FLAG_SEED(&seed, "the order of the rows and the noise"),
        {"--out", NB_FLAG_OUTPUT, &out, "the CSV file", .range = "csv", .meta = "X.csv", .def = "required"},
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "DATA ", .about = FEATURES_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    if (!out) return nb_cli_usage_error(&c, "--out X.csv is required");
    double db[NOISE_MAX];
    int nnoise = noise ? parse_noise(noise, db) : 0;
    if (nnoise < 0) return nb_cli_usage_error(&c, "%s", nb_errmsg());
    int per_clip = 1 + nnoise;
    unsigned keep = nb_wn_split_mask(split);
    nb_speech_set s, ref;
    memset(&ref, 0, sizeof ref);
    if (nb_speech_open(pos[0], &s)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    int *label = nb__xmalloc("the labels", (size_t)s.nspeakers + 1, sizeof(int));
    for (int k = 0; k < s.nspeakers; k++) label[k] = k;
    int nlabels = s.nspeakers, n = 0;
    float *rows = NULL;
    int64_t *order = NULL;
    int *rowlab = NULL;
    char *text = NULL;
    rc = 1;
    if (of) {
        if (nb_speech_open(of, &ref)) goto fail_msg;
        for (int k = 0; k < s.nspeakers; k++) {
            label[k] = -1;
            for (int j = 0; j < ref.nspeakers; j++)
                if (!strcmp(s.speakers[k], ref.speakers[j])) label[k] = j;
            if (label[k] < 0) {
                nb_error("%s: speaker '%s' is not one of the %d speakers of %s", pos[0], s.speakers[k], ref.nspeakers, of);
                goto fail_msg;
            }
        }
        nlabels = ref.nspeakers;
    }
    size_t nrows = (size_t)(s.n + 1) * (size_t)per_clip;
    rows = nb__calloc(nrows, sizeof(float) * 2 * NB_WN_MELS);
    rowlab = nb__calloc(nrows, sizeof(int));
    if (!rows || !rowlab) {
        nb_error("out of memory for %zu rows of features", nrows);
        goto fail_msg;
    }
    for (int i = 0; i < s.n; i++) {
        if (!(keep & (1u << s.clips[i].split))) continue;
        nb_audio a;
        if (nb_audio_read(s.clips[i].path, NB_WN_RATE, &a)) goto fail_msg;
        int bad = speaker_features(a.x, a.n, rows + (size_t)n * 2 * NB_WN_MELS);
        rowlab[n++] = label[s.clips[i].speaker];
        if (!bad && nnoise) {
            double power = 0;
            for (int64_t t = 0; t < a.n; t++) power += (double)a.x[t] * a.x[t];
            power /= (double)a.n;
            float *y = malloc(sizeof(float) * (size_t)a.n);
            if (!y) bad = -1, nb_error("%s: out of memory for %lld noisy samples", s.clips[i].path, (long long)a.n);
            nb_rng r;
            nb_rng_seed(&r, (uint64_t)seed, 6 + (uint64_t)i); /* each clip its own noise, whatever the split */
            for (int k = 0; k < nnoise && !bad; k++) {
                double sd = sqrt(power / pow(10, db[k] / 10));
                for (int64_t t = 0; t < a.n; t++) y[t] = a.x[t] + (float)(sd * nb_rng_normal(&r));
                bad = speaker_features(y, a.n, rows + (size_t)n * 2 * NB_WN_MELS);
                rowlab[n++] = label[s.clips[i].speaker];
            }
            free(y);
        }
        nb_audio_free(&a);
        if (bad) goto fail_msg;
    }
    if (n == 0) {
        nb_error("%s holds no clip of the %s split", pos[0], split);
        goto fail_msg;
    }
    /* a random order, so that the last rows nabla train holds out hold every speaker */
    order = nb__xmalloc("the order of the rows", (size_t)n, sizeof(int64_t));
    for (int i = 0; i < n; i++) order[i] = i;
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed, 5);
    nb_rng_shuffle(&r, order, n);
    size_t cap = (size_t)(n + 1) * (2 * NB_WN_MELS * 16 + 16) + 4096, len = 0;
    text = nb__xmalloc("the CSV text", cap, 1);
    for (int b = 0; b < 2 * NB_WN_MELS; b++)
        len += (size_t)snprintf(text + len, cap - len, "%s%d,", b < NB_WN_MELS ? "mean" : "sd", b % NB_WN_MELS);
    len += (size_t)snprintf(text + len, cap - len, "speaker\n");
    for (int i = 0; i < n; i++) {
        const float *row = rows + (size_t)order[i] * 2 * NB_WN_MELS;
        for (int b = 0; b < 2 * NB_WN_MELS; b++) len += (size_t)snprintf(text + len, cap - len, "%.6g,", row[b]);
        len += (size_t)snprintf(text + len, cap - len, "%d\n", rowlab[order[i]]);
    }
    if (nb_write_file_atomic(out, text, len)) goto fail_msg;
    int *per = nb__xcalloc("the clips per label", (size_t)nlabels, sizeof(int));
    for (int i = 0; i < n; i++) per[rowlab[i]]++;
    fprintf(stderr, "%d clips (%s split) of %d speaker(s) -> %d rows of %d features + label; wrote %s\n", n / per_clip,
            split, s.nspeakers, n, 2 * NB_WN_MELS, out);
    if (json) {
        printf("{\"clips\": %d, \"rows\": %d, \"features\": %d, \"labels\": %d, \"clips_per_label\": [",
               n / per_clip, n, 2 * NB_WN_MELS, nlabels);
        for (int k = 0; k < nlabels; k++) printf(k ? ", %d" : "%d", per[k] / per_clip);
        printf("]}\n");
    }
    free(per);
    rc = 0;
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    free(text);
    free(order);
    free(rows);
    free(rowlab);
    free(label);
    nb_speech_free(&s);
    nb_speech_free(&ref);
    return rc;
}
