/* optim_state.c — the extra tensors of a training command's checkpoint: the
 * optimizer's state, each tensor of nb_optim_state stored as "optim.<name>"
 * and copied back on --resume, then the command's own (charrnn's carried
 * state, chat's response bank). One naming and one check for train,
 * charrnn, chat and wavenet. */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void nb_cli_extras_init(nb_cli_extras *x, nb_optim *opt, int room) {
    const char **sn;
    nb_tensor **st;
    int ns = nb_optim_state(opt, &sn, &st);
    x->cap = ns + room;
    x->names = malloc(sizeof(char *) * (size_t)(x->cap ? x->cap : 1));
    x->ts = malloc(sizeof(nb_tensor *) * (size_t)(x->cap ? x->cap : 1));
    if (!x->names || !x->ts) nb_oom("a checkpoint", 0);
    for (int i = 0; i < ns; i++) {
        size_t len = strlen(sn[i]) + sizeof "optim.";
        char *name = malloc(len);
        if (!name) nb_oom("a checkpoint", 0);
        snprintf(name, len, "optim.%s", sn[i]);
        x->names[i] = name, x->ts[i] = st[i];
    }
    x->n = x->nopt = ns;
}

void nb_cli_extras_add(nb_cli_extras *x, const char *name, nb_tensor *t) {
    if (x->n >= x->cap) nb_fatal("checkpoint", "more extra tensors than the room asked for (%d)", x->cap - x->nopt);
    x->names[x->n] = name, x->ts[x->n++] = t;
}

void nb_cli_extras_free(nb_cli_extras *x) {
    for (int i = 0; i < x->nopt; i++) free((char *)x->names[i]);
    free(x->names);
    free(x->ts);
    memset(x, 0, sizeof *x);
}

int nb_cli_optim_restore(nb_optim *opt, const nb_safetensors *st, const char *path, const char *hint) {
    const char **sn;
    nb_tensor **ts;
    int ns = nb_optim_state(opt, &sn, &ts);
    for (int i = 0; i < ns; i++) {
        char name[256];
        snprintf(name, sizeof name, "optim.%s", sn[i]);
        nb_tensor *t = nb_st_get(st, name);
        if (!t) return nb_error("%s: optimizer state '%s' is missing%s", path, name, hint ? hint : "");
        if (t->size != ts[i]->size)
            return nb_error("%s: optimizer state '%s' has %lld values, expected %lld", path, name, (long long)t->size,
                            (long long)ts[i]->size);
        nb_copy_into(ts[i], t);
    }
    return 0;
}

int nb_cli_meta_number(const nb_safetensors *st, const char *path, const char *key, double *out) {
    const char *v = nb_st_meta(st, key);
    if (!v) return 0;
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite(x)) return nb_error("%s: __metadata__ '%s': expected a number, got '%.40s'", path, key, v);
    *out = x;
    return 0;
}

int nb_cli_meta_count(const nb_safetensors *st, const char *path, const char *key, int64_t *out) {
    const char *v = nb_st_meta(st, key);
    if (!v) return nb_error("%s: not a training checkpoint ('%s' missing from __metadata__)", path, key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < 0)
        return nb_error("%s: __metadata__ '%s': expected an integer >= 0, got '%.40s'", path, key, v);
    *out = x;
    return 0;
}

int nb_cli_meta_together(const nb_safetensors *st, const char *path, const char *const *keys, int n) {
    int held = -1, lacked = -1;
    for (int i = 0; i < n; i++) {
        if (nb_st_meta(st, keys[i])) {
            if (held < 0) held = i;
        } else if (lacked < 0) lacked = i;
    }
    if (lacked < 0) return 1;
    if (held < 0) return 0;
    return nb_error("%s: __metadata__ holds '%s' but not '%s', which are written together (a damaged checkpoint?)",
                    path, keys[held], keys[lacked]);
}
