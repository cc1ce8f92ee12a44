/* dqn_bench.c — nabla's side of bench/dqn_bench.sh: the learner of
 * `nabla dqn train` (nb_dqn with the game's defaults) timed alone, and the
 * state before and after an update for the parity check against PyTorch.
 *
 *   dqn_bench ENV [--updates N] [--warmup N] [--threads T] [--fill N]
 *     fills the replay memory D with --fill transitions (default: its whole
 *     capacity) of the uniformly random policy, without updates, then times
 *     --updates calls of nb_dqn_update (default 2000) after --warmup
 *     (default 50): each draws a minibatch from D, computes the targets with
 *     the target network, and takes the forward, backward and Adam step.
 *     Prints one JSON line: updates, seconds, updates_per_second.
 *   dqn_bench ENV --parity DIR [--pre N] [--updates K] [--fill N] [--seed S]
 *     fills D with --fill transitions (default 2000), takes --pre updates
 *     (default 20, so that Adam's moments are not those of a first step),
 *     writes the learner as DIR/before.safetensors (nb_dqn_checkpoint: Q,
 *     the target network, Adam's state, D, the sampler's random stream),
 *     takes --updates updates (default 1) and writes DIR/after.safetensors.
 *     bench/dqn_torch.py parity repeats those updates in PyTorch.
 *
 * The options are the game's defaults (nb_dqn_defaults) except those that
 * only steer the filling: epsilon 1, no updates and no model selection
 * while D fills. */
#include "nabla.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(void) {
    fprintf(stderr, "usage: dqn_bench cartpole|catch|2048 [--updates N] [--warmup N] [--threads T] [--fill N]\n"
                    "       dqn_bench cartpole|catch|2048 --parity DIR [--pre N] [--updates K] [--fill N] [--seed S]\n");
    exit(2);
}

static long number(const char *flag, const char *v, long lo) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo) {
        fprintf(stderr, "dqn_bench: %s expects an integer >= %ld, got '%s'\n", flag, lo, v ? v : "");
        exit(2);
    }
    return x;
}

static void check(int rc, const char *what) {
    if (rc) {
        fprintf(stderr, "dqn_bench: %s: %s\n", what, nb_errmsg());
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') usage();
    const char *env = argv[1], *parity = NULL;
    long updates = -1, warmup = 50, threads = 1, fill = -1, pre = 20, seed = 1;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--updates")) updates = number(f, v, 1);
        else if (!strcmp(f, "--warmup")) warmup = number(f, v, 0);
        else if (!strcmp(f, "--threads")) threads = number(f, v, 1);
        else if (!strcmp(f, "--fill")) fill = number(f, v, 1);
        else if (!strcmp(f, "--pre")) pre = number(f, v, 0);
        else if (!strcmp(f, "--seed")) seed = number(f, v, 0);
        else if (!strcmp(f, "--parity") && v) parity = v;
        else usage();
        i++;
    }
    nb_dqn_opts o;
    if (nb_dqn_defaults(env, &o)) { /* a game it does not know: a usage error */
        fprintf(stderr, "dqn_bench: %s\n", nb_errmsg());
        exit(2);
    }
    if (updates < 0) updates = parity ? 1 : 2000;
    if (fill < 0) fill = parity ? 2000 : o.buffer;
    /* Filling only: a random policy, no update, no model selection. */
    o.eps_start = o.eps_end = 1;
    o.learn_start = INT64_MAX;
    o.select_every = 0;
    o.seed = (uint64_t)seed;
    nb_set_threads((int)threads);
    nb_dqn *d = nb_dqn_new(env, &o, NULL);
    if (!d) check(-1, "learner");
    for (long t = 0; t < fill; t++) nb_dqn_step(d, NULL);

    if (parity) {
        char path[4096];
        for (long k = 0; k < pre; k++) check(nb_dqn_update(d), "update");
        snprintf(path, sizeof path, "%s/before.safetensors", parity);
        check(nb_dqn_checkpoint(d, path, NULL, NULL, 0), "checkpoint");
        for (long k = 0; k < updates; k++) check(nb_dqn_update(d), "update");
        snprintf(path, sizeof path, "%s/after.safetensors", parity);
        check(nb_dqn_checkpoint(d, path, NULL, NULL, 0), "checkpoint");
        printf("{\"env\": \"%s\", \"filled\": %ld, \"pre_updates\": %ld, \"updates\": %ld, \"td_error\": %.9g}\n", env,
               fill, pre, updates, nb_dqn_td_error(d));
    } else {
        for (long k = 0; k < warmup; k++) check(nb_dqn_update(d), "update");
        double t0 = now();
        for (long k = 0; k < updates; k++) check(nb_dqn_update(d), "update");
        double s = now() - t0;
        printf("{\"framework\": \"nabla\", \"env\": \"%s\", \"threads\": %ld, \"batch\": %lld, \"filled\": %ld, "
               "\"updates\": %ld, \"seconds\": %.6f, \"updates_per_second\": %.2f}\n",
               env, threads, (long long)o.batch, fill, updates, s, (double)updates / s);
    }
    nb_dqn_free(d);
    return 0;
}
