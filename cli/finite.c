/* finite.c — no NaN or infinite weight reaches a model file. A learning rate
 * too large for the model, or a gradient that overflowed, turns the weights
 * into NaN or inf in one update; the loss shows it only at the next step, so
 * a run whose last update did it would save a model no loader accepts and
 * exit 0. Every training command checks its weights before it writes them. */
#include "cli.h"
#include <math.h>
#include <stdlib.h>

int nb_cli_nonfinite_param(const nb_param *params, int np) {
    for (int i = 0; i < np; i++) {
        const nb_tensor *t = params[i].t;
        float *v = malloc(sizeof(float) * (size_t)(t->size ? t->size : 1)); /* a GPU parameter is read back */
        if (!v) nb_oom("the weights' check", sizeof(float) * (size_t)t->size);
        nb_tensor_read(t, v);
        int64_t k = 0;
        while (k < t->size && isfinite(v[k])) k++;
        free(v);
        if (k < t->size) return i;
    }
    return -1;
}

int nb_cli_check_weights(const nb_param *params, int np, const char *const *names, int64_t step) {
    int i = nb_cli_nonfinite_param(params, np);
    if (i < 0) return 0;
    return nb_error("the weights of '%s' became NaN or infinite by step %lld (an update too large for "
                            "the learning rate, or a gradient that was not finite); no checkpoint was written "
                            "(try a smaller --lr)", names[i], (long long)step);
}
