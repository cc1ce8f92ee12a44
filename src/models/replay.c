/* replay.c — the replay memory of deep Q-learning (notes §4.3): a ring of
 * the last transitions (s, a, r, s', terminal, the actions legal in s'),
 * observations stored as bytes when every value is 0 or 1, and minibatches
 * drawn uniformly from it. */
#include "../core/internal.h"
#include "dqn.h"
#include <stdlib.h>

void nb_replay_free(nb_replay *r) {
    if (!r) return;
    free(r->sf);
    free(r->s2f);
    free(r->sb);
    free(r->s2b);
    free(r->a);
    free(r->r);
    free(r->term);
    free(r->legal2);
    free(r);
}

nb_replay *nb_replay_new(int64_t capacity, int64_t obs_size, int nactions, bool bytes) {
    if (capacity < 1 || obs_size < 1 || nactions < 1 || nactions > 64) {
        nb_error("replay memory: need capacity >= 1, obs_size >= 1 and 1..64 actions (got %lld, %lld, %d)",
                 (long long)capacity, (long long)obs_size, nactions);
        return NULL;
    }
    int64_t n = nb_shape_numel(2, (int64_t[]){capacity, obs_size});
    size_t esz = bytes ? 1 : sizeof(float);
    if (n < 0 || (uint64_t)n > SIZE_MAX / 2 / esz) {
        nb_error("replay memory: %lld transitions of %lld values do not fit in memory", (long long)capacity,
                 (long long)obs_size);
        return NULL;
    }
    nb_replay *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->cap = capacity;
    r->obs = obs_size;
    r->na = nactions;
    r->bytes = bytes;
    if (bytes) {
        r->sb = malloc((size_t)n);
        r->s2b = malloc((size_t)n);
    } else {
        r->sf = malloc((size_t)n * sizeof(float));
        r->s2f = malloc((size_t)n * sizeof(float));
    }
    r->a = malloc(sizeof(int32_t) * (size_t)capacity);
    r->r = malloc(sizeof(float) * (size_t)capacity);
    r->term = malloc((size_t)capacity);
    r->legal2 = malloc((size_t)capacity * (size_t)nactions);
    if ((bytes ? !r->sb || !r->s2b : !r->sf || !r->s2f) || !r->a || !r->r || !r->term || !r->legal2) goto oom;
    return r;
oom:
    nb_replay_free(r);
    nb_error("replay memory: out of memory for %lld transitions of %lld values", (long long)capacity,
             (long long)obs_size);
    return NULL;
}

void nb_replay_push(nb_replay *r, const float *s, int32_t a, float reward, const float *s2, bool terminal,
                    const bool *legal2) {
    int64_t i = r->next, o = r->obs;
    if (r->bytes)
        for (int64_t k = 0; k < o; k++) {
            r->sb[i * o + k] = s[k] != 0;
            r->s2b[i * o + k] = s2[k] != 0;
        }
    else {
        memcpy(r->sf + i * o, s, sizeof(float) * (size_t)o);
        memcpy(r->s2f + i * o, s2, sizeof(float) * (size_t)o);
    }
    r->a[i] = a;
    r->r[i] = reward;
    r->term[i] = terminal;
    for (int k = 0; k < r->na; k++) r->legal2[i * r->na + k] = legal2 ? legal2[k] : 1;
    /* The ring: slots fill from 0; once full, the oldest is overwritten. */
    r->next = (i + 1) % r->cap;
    if (r->size < r->cap) r->size++;
    r->pushed++;
}

int64_t nb_replay_size(const nb_replay *r) { return r->size; }
int64_t nb_replay_pushed(const nb_replay *r) { return r->pushed; }

void nb_replay_sample(const nb_replay *r, nb_rng *rng, int64_t n, int64_t *idx) {
    if (r->size < 1) nb_fatal("replay_sample", "the replay memory is empty");
    /* Slots [0, size) are exactly the filled ones (the ring fills from 0). */
    for (int64_t i = 0; i < n; i++) idx[i] = (int64_t)nb_rng_below(rng, (uint32_t)r->size);
}

void nb_replay_gather(const nb_replay *r, const int64_t *idx, int64_t n, float *s, int32_t *a, float *reward, float *s2,
                      bool *terminal, bool *legal2) {
    int64_t o = r->obs;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = idx[i];
        if (j < 0 || j >= r->size) nb_fatal("replay_gather", "slot %lld is not filled (size %lld)", (long long)j, (long long)r->size);
        if (r->bytes) {
            for (int64_t k = 0; k < o; k++) {
                if (s) s[i * o + k] = r->sb[j * o + k];
                if (s2) s2[i * o + k] = r->s2b[j * o + k];
            }
        } else {
            if (s) memcpy(s + i * o, r->sf + j * o, sizeof(float) * (size_t)o);
            if (s2) memcpy(s2 + i * o, r->s2f + j * o, sizeof(float) * (size_t)o);
        }
        if (a) a[i] = r->a[j];
        if (reward) reward[i] = r->r[j];
        if (terminal) terminal[i] = r->term[j];
        if (legal2)
            for (int k = 0; k < r->na; k++) legal2[i * r->na + k] = r->legal2[j * r->na + k];
    }
}
