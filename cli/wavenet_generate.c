/* wavenet_generate.c — `nabla wavenet generate`: audio from a model, cached
 * (or the naive loop, for checking), for a speaker, from features (.npy) or
 * from the log-mel of a recording, several streams at once, to WAV files. */
#include "wavenet.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* OUT.wav for stream 0, OUT-<k>.wav for stream k. */
static void stream_path(const char *out, int k, char *buf, size_t n) {
    if (k == 0) {
        snprintf(buf, n, "%s", out);
        return;
    }
    const char *dot = strrchr(out, '.');
    int stem = dot ? (int)(dot - out) : (int)strlen(out);
    snprintf(buf, n, "%.*s-%d%s", stem, out, k, dot ? dot : "");
}

static const char *GENERATE_ABOUT =
    "Generates audio from a model of `nabla wavenet train`, one sample at a time drawn from the 256-way\n"
    "softmax over mu-law levels (eq. 30) at --temperature, each cached layer keeping a queue of its past\n"
    "activations so that a sample costs O(layers); --naive recomputes the receptive field for every sample\n"
    "and gives the same samples. A model trained with --speakers takes --speaker; one trained with --cond\n"
    "takes features: --cond FILE.npy ([frames, D]: what `nabla wavenet spectrogram WAV --out FILE.npy`\n"
    "writes for --cond mel, or a clip's phones) or --like WAV (the log-mel of a recording, for --cond mel),\n"
    "and generates the 256 samples per frame they cover, or --seconds if shorter. Writes 16 kHz WAV:\n"
    "OUT.wav, and OUT-1.wav, ... for --streams.";

int nb_wn_generate(int argc, char **argv) {
    const char *cmd = "wavenet generate", *out = NULL, *condf = NULL, *like = NULL, *spk_s = NULL;
    double seconds = 1, temperature = 1;
    long streams = 1, seed = 1, threads = 0;
    bool naive = false, json = false;
    nb_flag flags[] = {
        {"--seconds", NB_FLAG_FLOAT, &seconds, "length at 16 kHz (with --cond/--like: at most this, default theirs)",
         .range = "(0, 3600]"},
        {"--speaker", NB_FLAG_STR, &spk_s, "speaker: its number or name (models trained with --speakers)", .meta = "K",
         .def = "0"},
        {"--cond", NB_FLAG_STR, &condf, "features [frames, D] (.npy) to condition on", .meta = "FILE.npy", .def = ""},
        {"--like", NB_FLAG_STR, &like, "condition on the log-mel of this recording (resynthesis)", .meta = "WAV",
         .def = ""},
        {"--temperature", NB_FLAG_FLOAT, &temperature, "sample softmax(logits / T); 0: the most likely level",
         .range = "[0, 100]"},
        {"--streams", NB_FLAG_INT, &streams, "clips generated at once (OUT-1.wav, ... for the others)",
         .range = "[1, 256]"},
        {"--naive", NB_FLAG_BOOL, &naive, "recompute the receptive field for every sample (slow; for checking): "
                                          "after the first receptive field, which the cached path gives (the same "
                                          "samples), so that the rate is that of full windows"},
        NB_FLAG_SEED(&seed, "the sampling"),
        NB_FLAG_THREADS(&threads, "1"),
        {"--out", NB_FLAG_OUTPUT, &out, "the generated audio", .range = "wav", .meta = "OUT.wav", .def = "required"},
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL ", .about = GENERATE_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    if (!out) return nb_cli_usage_error(&c, "--out OUT.wav is required");
    if (condf && like) return nb_cli_usage_error(&c, "--cond and --like exclude each other");
    /* OUT.wav itself was checked against the inputs by nb_cli_parse; the
     * other streams' OUT-k.wav are checked here. */
    for (long k = 1; k < streams; k++) {
        char sp[4096], opt[48];
        stream_path(out, (int)k, sp, sizeof sp);
        snprintf(opt, sizeof opt, "--out (stream %ld)", k);
        if (nb_cli_not_input(&c, opt, sp, pos[0]) || nb_cli_not_input(&c, opt, sp, like) ||
            nb_cli_not_input(&c, opt, sp, condf))
            return 2;
    }
    int64_t n;
    if ((rc = nb_wn_seconds_to_samples(&c, seconds, &n)) != NB_CLI_OK) return rc;
    nb_cli_threads(cmd, threads, 1);
    nb_safetensors *st = NULL;
    nb_wavenet *m = nb_wavenet_load(pos[0], &st);
    if (!m) return nb_cli_fail(cmd, "%s", nb_errmsg());
    const nb_wavenet_config *cf = nb_wavenet_get_config(m);
    int32_t *spk = nb__xcalloc("the streams' speakers", (size_t)streams, sizeof(int32_t)), *lv = NULL;
    nb_tensor *feats = NULL, *u = NULL;
    float *x = NULL;
    rc = 1;
    if (spk_s) {
        if (!cf->nspeakers) {
            nb_error("%s was trained without speakers: --speaker does not apply", pos[0]);
            goto fail_msg;
        }
        char *end;
        long k = strtol(spk_s, &end, 10);
        if (*end || !*spk_s) { /* a name */
            k = -1;
            const char *names = nb_st_meta(st, "nabla.wavenet.speaker_names");
            int i = 0;
            for (const char *p = names; p && *p; i++) {
                const char *e = strchr(p, ',');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                if (l == strlen(spk_s) && !strncmp(p, spk_s, l)) k = i;
                p = e ? e + 1 : p + l;
            }
            if (k < 0) {
                nb_error("%s: no speaker named '%s' (known: %s)", pos[0], spk_s, names ? names : "none");
                goto fail_msg;
            }
        }
        if (k < 0 || k >= cf->nspeakers) {
            nb_error("--speaker %s: %s knows %d speakers (0..%d)", spk_s, pos[0], cf->nspeakers, cf->nspeakers - 1);
            goto fail_msg;
        }
        for (long s = 0; s < streams; s++) spk[s] = (int32_t)k;
    }
    if (cf->cond_dim) {
        if (condf) feats = nb_npy_read(condf);
        else if (like) {
            nb_audio a;
            if (nb_audio_read(like, NB_WN_RATE, &a)) goto fail_msg;
            feats = nb_logmel(a.x, a.n, NB_WN_RATE, NB_WN_MELS);
            nb_audio_free(&a);
        } else {
            nb_error("%s is conditioned on features: give --cond FILE.npy or --like WAV", pos[0]);
            goto fail_msg;
        }
        if (!feats) goto fail_msg;
        if (feats->ndim != 2 || feats->shape[1] != cf->cond_dim || feats->shape[0] < 1) {
            char s[96];
            nb_error("%s: features of shape %s, expected [frames, %d]", condf ? condf : like,
                     nb_shape_str(feats, s, sizeof s), cf->cond_dim);
            goto fail_msg;
        }
        if (condf && nb_wn_features_finite(condf, feats)) goto fail_msg;
        int64_t avail = feats->shape[0] * cf->cond_hop;
        if (!nb_cli_flag(&c, "--seconds")->given || n > avail) n = avail;
        bool was = nb_set_grad_enabled(false);
        nb_tensor *y = nb_wavenet_cond(m, feats, 0, n);
        u = nb_tensor_clone(nb_reshape(y, 2, (int64_t[]){cf->cond_channels, n}));
        nb_set_grad_enabled(was);
        nb_arena_reset();
    } else if (condf || like) {
        nb_error("%s has no local conditioning: --cond/--like do not apply", pos[0]);
        goto fail_msg;
    }
    /* every stream's levels are kept to the end (--seconds 3600 --streams 256:
     * 55 GiB, which a null pointer met as a segmentation fault) */
    lv = nb__calloc((size_t)n * (size_t)streams, sizeof(int32_t));
    x = nb__malloc(sizeof(float) * (size_t)n);
    if (!lv || !x) {
        nb_error("out of memory for the generated audio: %lld samples (--seconds %g) x %ld stream(s) (--streams) "
                 "need %.1f MiB", (long long)n, (double)n / NB_WN_RATE, streams,
                 (double)n * (double)(streams * sizeof(int32_t) + sizeof(float)) / 1048576.0);
        goto fail_msg;
    }
    nb_wavenet_gen_opts o = {.streams = (int)streams, .samples = n, .speakers = cf->nspeakers ? spk : NULL, .cond = u,
                             .temperature = (float)temperature, .seed = (uint64_t)seed, .naive = naive};
    /* --naive: the first receptive field comes from the cached path (the
     * same samples); the rate counts the naive samples after it, each a
     * pass over a full window */
    int64_t rf0 = nb_wavenet_receptive_field(cf), timed = n;
    double naive_secs = 0;
    if (naive && n > rf0) o.naive_from = rf0 - 1, timed = n - (rf0 - 1);
    o.naive_seconds = &naive_secs;
    double t0 = nb_cli_now();
    if (nb_wavenet_generate(m, &o, lv, NULL)) goto fail_msg;
    double secs = naive ? naive_secs : nb_cli_now() - t0, sps = (double)(timed * streams) / secs;
    for (long s = 0; s < streams; s++) {
        char path[4096];
        stream_path(out, (int)s, path, sizeof path);
        nb_mulaw_decode_array(lv + s * n, n, x);
        if (nb_audio_write(path, x, n, NB_WN_RATE)) goto fail_msg;
    }
    int64_t rf = nb_wavenet_receptive_field(cf);
    fprintf(stderr, "%" PRId64 " samples x %ld stream(s) in %.2f s: %.0f samples/s (%.2fx real time, %s, %d thread%s); "
                    "receptive field %" PRId64 "; wrote %s\n", timed, streams, secs, sps, sps / NB_WN_RATE,
            naive ? "naive" : "cached", nb_get_threads(), nb_get_threads() == 1 ? "" : "s", rf, out);
    if (json)
        printf("{\"samples_per_second\": %.1f, \"samples\": %" PRId64 ", \"streams\": %ld, \"seconds\": %.4f, "
               "\"naive\": %s, \"receptive_field\": %" PRId64 "}\n", sps, timed, streams, secs, naive ? "true" : "false", rf);
    rc = 0;
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    free(spk);
    free(lv);
    free(x);
    nb_tensor_free(feats);
    nb_tensor_free(u);
    nb_wavenet_free(m);
    nb_st_free(st);
    return rc;
}
