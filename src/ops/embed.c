/* embed.c — embedding lookup: rows of a weight table picked by token index;
 * its gradient adds each output row's gradient back into the row it came
 * from (repeated tokens accumulate), through gather_rows' adjoint. */
#include "../core/internal.h"

/* out [n, D] = w[idx[i], :];  dw = scatter_rows(g, idx, V) (by gather_rows' backward) */
nb_tensor *nb_embedding(nb_tensor *w, const int32_t *idx, int64_t n) {
    if (w->ndim != 2) {
        char s[96];
        nb_fatal("embedding", "weight must be [V, D], got shape %s", nb_shape_str(w, s, sizeof s));
    }
    if (n < 0) nb_fatal("embedding", "negative number of indices %lld", (long long)n);
    /* Checked here too so that a bad token names the embedding, not the gather. */
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= w->shape[0])
            nb_fatal("embedding", "index %d (entry %lld) is out of range for a vocabulary of %lld rows", idx[i],
                     (long long)i, (long long)w->shape[0]);
    return nb_gather_rows(w, idx, n);
}
