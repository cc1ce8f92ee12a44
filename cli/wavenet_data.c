/* wavenet_data.c — the data of `nabla wavenet`: a speech folder read as
 * 16 kHz clips of μ-law levels (eq. 31), split into training and held-out
 * clips, each with its conditioning features (log-mel, or the manifest's
 * phone features) when the model takes them. */
#include "wavenet.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void nb_wn_corpus_free(nb_wn_corpus *c) {
    for (int i = 0; i < c->ntrain; i++) free(c->train[i].q), nb_tensor_free(c->train[i].feats);
    for (int i = 0; i < c->nval && !c->val_is_train; i++) free(c->val[i].q), nb_tensor_free(c->val[i].feats);
    free(c->train);
    if (!c->val_is_train) free(c->val);
    for (int i = 0; i < c->nspeakers; i++) free(c->speakers[i]);
    free(c->speakers);
    memset(c, 0, sizeof *c);
}

/* 0, or -1 with an error naming the file and the [frame, feature] of the
 * first NaN or infinity of features read from a .npy: the network would
 * take it without complaint and train on, or generate, garbage. */
int nb_wn_features_finite(const char *path, const nb_tensor *t) {
    int64_t dim = t->ndim == 2 ? t->shape[1] : 1;
    for (int64_t i = 0; i < t->size; i++)
        if (!isfinite(t->data[i]))
            return nb_error("%s: feature [%lld, %lld] is %s; expected finite numbers", path, (long long)(i / dim),
                            (long long)(i % dim), isnan(t->data[i]) ? "NaN" : "infinite");
    return 0;
}

/* Features of a clip: "mel" (log-mel of the audio), "phones" (the clip's
 * .npy from the manifest) or none. */
static nb_tensor *clip_features(const char *kind, const nb_audio *a, const nb_speech_clip *sc) {
    if (!kind) return NULL;
    if (!strcmp(kind, "mel")) return nb_logmel(a->x, a->n, NB_WN_RATE, NB_WN_MELS);
    if (!sc->phones) {
        nb_error("%s: no phone features for this clip in the manifest (--cond phones)", sc->path);
        return NULL;
    }
    nb_tensor *t = nb_npy_read(sc->phones);
    if (!t) return NULL;
    int64_t frames = (a->n + NB_FEATURE_HOP - 1) / NB_FEATURE_HOP;
    if (t->ndim != 2 || t->shape[0] < 1 || labs((long)(t->shape[0] - frames)) > 2) {
        char s[96];
        nb_error("%s: phone features of shape %s, expected [%lld, n_phones] (one row per %d samples of %s)",
                 sc->phones, nb_shape_str(t, s, sizeof s), (long long)frames, NB_FEATURE_HOP, sc->path);
        nb_tensor_free(t);
        return NULL;
    }
    if (nb_wn_features_finite(sc->phones, t)) {
        nb_tensor_free(t);
        return NULL;
    }
    return t;
}


/* The clips a --split choice names (eval and features). */
unsigned nb_wn_split_mask(const char *split) {
    return !strcmp(split, "held-out") ? NB_WN_KEEP_VALID | NB_WN_KEEP_TEST
           : !strcmp(split, "valid")  ? NB_WN_KEEP_VALID
           : !strcmp(split, "test")   ? NB_WN_KEEP_TEST
           : !strcmp(split, "train")  ? NB_WN_KEEP_TRAIN
                                      : NB_WN_KEEP_ALL;
}

/* Reads the clips of DATA whose split is in `keep` at 16 kHz as μ-law levels
 * (training clips in c->train, held-out ones, split != 0, in c->val). With
 * NB_WN_KEEP_TRAIN, having no training clip is an error, and having no held-out
 * clip makes c->val the training clips. */
int nb_wn_corpus_load(nb_wn_corpus *c, const char *dir, const char *cond, unsigned keep) {
    memset(c, 0, sizeof *c);
    nb_speech_set s;
    if (nb_speech_open(dir, &s)) return -1;
    c->train = nb__xcalloc("the corpus's clips", (size_t)s.n, sizeof(nb_wn_clip));
    c->val = nb__xcalloc("the corpus's clips", (size_t)s.n, sizeof(nb_wn_clip));
    c->nspeakers = s.nspeakers;
    c->speakers = nb__xcalloc("the speaker names", (size_t)s.nspeakers + 1, sizeof(char *));
    for (int i = 0; i < s.nspeakers; i++) c->speakers[i] = nb__xstrdup("the speaker names", s.speakers[i]);
    int rc = 0;
    for (int i = 0; i < s.n && !rc; i++) {
        if (!(keep & (1u << s.clips[i].split))) continue;
        nb_audio a;
        if (nb_audio_read(s.clips[i].path, NB_WN_RATE, &a)) {
            rc = -1;
            break;
        }
        nb_wn_clip k = {nb__xmalloc("a clip's levels", (size_t)a.n, sizeof(int32_t)), a.n, s.clips[i].speaker, s.clips[i].split, NULL};
        nb_mulaw_encode_array(a.x, a.n, k.q);
        if (cond && !(k.feats = clip_features(cond, &a, &s.clips[i]))) rc = -1;
        nb_audio_free(&a);
        if (s.clips[i].split == 0) c->train[c->ntrain++] = k;
        else c->val[c->nval++] = k;
        if (rc) break;
    }
    nb_speech_free(&s);
    if (!rc && (keep & NB_WN_KEEP_TRAIN) && c->ntrain == 0)
        rc = nb_error("%s: every clip is held out; no training clip", dir);
    if (!rc && (keep & NB_WN_KEEP_TRAIN) && c->nval == 0) {
        free(c->val);
        c->val = c->train, c->nval = c->ntrain, c->val_is_train = true;
    }
    if (rc) nb_wn_corpus_free(c);
    return rc;
}
