/* optim_state.c — the optimizer's state in a training command's checkpoint:
 * each tensor of nb_optim_state stored as "optim.<name>", and copied back on
 * --resume. One naming and one check for train, charrnn, chat and wavenet. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

int nb_cli_optim_names(nb_optim *opt, char ***names, nb_tensor ***ts) {
    const char **sn;
    int ns = nb_optim_state(opt, &sn, ts);
    *names = malloc(sizeof(char *) * (size_t)(ns ? ns : 1));
    if (!*names) nb_fatal("optim_state", "out of memory");
    for (int i = 0; i < ns; i++) {
        size_t len = strlen(sn[i]) + sizeof "optim.";
        if (!((*names)[i] = malloc(len))) nb_fatal("optim_state", "out of memory");
        snprintf((*names)[i], len, "optim.%s", sn[i]);
    }
    return ns;
}

void nb_cli_optim_names_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
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
