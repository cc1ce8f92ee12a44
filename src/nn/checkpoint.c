/* checkpoint.c — networks to and from safetensors model files: parameters
 * under PyTorch's state_dict names, the description in __metadata__. */
#include "../core/internal.h"
#include <math.h>
#include <stdlib.h>

#define NET_KEY "nabla.net"

int nb_net_save(const nb_net *net, const char *path, const char *const *keys, const char *const *vals, int nmeta,
                const char *const *extra_names, nb_tensor *const *extra, int nextra) {
    const char **pnames;
    int np = nb_net_param_names(net, &pnames);
    nb_param *params;
    nb_net_params((nb_net *)net, &params);
    const char *own_key = NET_KEY, *own_val = nb_net_source(net);
    int rc = nb__st_write_model(path, &own_key, &own_val, 1, keys, vals, nmeta, params, pnames, np, extra_names, extra,
                                nextra);
    return rc;
}

nb_net *nb_net_load(const char *path, nb_safetensors **out_st) {
    if (out_st) *out_st = NULL;
    nb_safetensors *st = nb_st_read(path);
    if (!st) return NULL;
    const char *src = nb_st_meta(st, NET_KEY);
    if (!src) {
        nb__st_not_a(st, path, "a network model");
        nb_st_free(st);
        return NULL;
    }
    char where[512];
    snprintf(where, sizeof where, "%s (stored description)", path);
    nb_net *net = nb_net_parse(src, where);
    /* The description may ask for any size: build only what the file can fill. */
    int64_t values = 0;
    for (int i = 0; i < st->n; i++) values += st->entries[i].t->size;
    if (!net || nb__net_build_within(net, values) != 0) {
        nb_st_free(st);
        nb_net_free(net);
        return NULL;
    }
    nb_param *params;
    const char **names;
    int np = nb_net_params(net, &params);
    nb_net_param_names(net, &names);
    for (int i = 0; i < np; i++) {
        nb_tensor *t = nb_st_get(st, names[i]);
        char a[96], b[96];
        if (!t) {
            nb_error("%s: tensor '%s' is missing (the network needs it with shape %s)", path, names[i],
                     nb_shape_str(params[i].t, a, sizeof a));
            goto fail;
        }
        if (!nb_same_shape(t, params[i].t)) {
            nb_error("%s: tensor '%s' has shape %s, the network expects %s", path, names[i], nb_shape_str(t, a, sizeof a),
                     nb_shape_str(params[i].t, b, sizeof b));
            goto fail;
        }
        for (int64_t j = 0; j < t->size; j++)
            if (!isfinite(t->data[j])) {
                nb_error("%s: tensor '%s' holds a non-finite value at index %lld", path, names[i], (long long)j);
                goto fail;
            }
        nb_copy_into(params[i].t, t);
    }
    if (out_st) *out_st = st;
    else nb_st_free(st);
    return net;
fail:
    nb_st_free(st);
    nb_net_free(net);
    return NULL;
}
