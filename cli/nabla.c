/* nabla.c — the `nabla` command: dispatch to the registered subcommands. */
#include "cli.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 64
typedef struct { const char *name, *summary; nb_cmd_fn fn; } command;
static command cmds[MAX_CMDS];
static int ncmds;

void nb_cli_register(const char *name, nb_cmd_fn fn, const char *summary) {
    if (ncmds < MAX_CMDS) cmds[ncmds++] = (command){name, summary, fn};
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const command *)a)->name, ((const command *)b)->name);
}

static void usage(FILE *f) {
    fprintf(f, "usage: nabla COMMAND [ARGS...]   (nabla help COMMAND, or nabla COMMAND --help, for its options)\n\n"
               "commands:\n");
    for (int i = 0; i < ncmds; i++) fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\nshared flags: --out FILE, --log LOG.csv, --json, --threads N (or NABLA_THREADS), --seed N;\n"
               "switches are --x and --no-x; nabla --version prints the version\n");
}

/* OpenMP reads its wait settings once, when the runtime loads, before main.
 * How long an idle worker spins before it sleeps decides the speed: spinning
 * forever (OMP_WAIT_POLICY=ACTIVE, or libgomp's default of 300,000 spins)
 * makes every parallel region crawl as soon as another process wants the
 * cores (MLP training beside 3 busy processes: 17,800 images/s against
 * 41,100), while sleeping at once (PASSIVE) costs a wake-up per region: the
 * LSTM of `nabla charrnn`, with regions in every time step, runs 10% slower
 * that way on an idle machine (an MLP step, with two regions, does not care).
 * A short spin of 3,000 iterations keeps both. So unless the user chose a
 * policy or spin count, the command restarts itself once with
 * GOMP_SPINCOUNT=3000 (README, Threads, has the commands). */
static void prefer_short_spins(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("GOMP_SPINCOUNT", "3000", 1);
    execv("/proc/self/exe", argv);
    /* If exec is impossible (no /proc), run as we are. */
}

/* NABLA_THREADS must be a thread count: a typo would otherwise mean "all
 * cores" without a word. */
static int check_threads_env(void) {
    const char *env = getenv("NABLA_THREADS");
    if (!env) return 0;
    char *end;
    long n = strtol(env, &end, 10);
    if (!*env || *end || n < 1 || n > 1024) {
        fprintf(stderr, "nabla: NABLA_THREADS: expected an integer in [1, 1024], got '%s'\n", env);
        return -1;
    }
    return 0;
}

/* What a command's user can reduce when memory runs out (the library's
 * message names only what ran out): the batch and model of the verbs that
 * take a --batch, what sampling makes, style's image size, fit's data.
 * Other verbs give none rather than one naming a flag they lack. */
static const char *oom_hint(const char *cmd, const char *verb) {
    static const struct {
        const char *cmd, *verb, *hint; /* verb NULL: the command has none */
    } hints[] = {
        {"train", NULL, "try a smaller --batch or model"},   {"eval", NULL, "try a smaller --batch or model"},
        {"hessian", NULL, "try a smaller --batch or model"}, {"charrnn", "train", "try a smaller --batch or model"},
        {"charrnn", "eval", "try a smaller --batch or model"}, {"charrnn", "sample", "try a smaller --length"},
        {"chat", "train", "try a smaller --batch or model"},   {"chat", "eval", "try a smaller --batch or model"},
        {"wavenet", "train", "try a smaller --batch or model"},
        {"wavenet", "generate", "try fewer --streams or a smaller --seconds"},
        {"dqn", "train", "try a smaller --batch or --buffer"}, {"style", NULL, "try a smaller --size"},
        {"fit", NULL, "try fewer rows or columns of data"},
    };
    for (size_t i = 0; i < sizeof hints / sizeof *hints; i++)
        if (!strcmp(cmd, hints[i].cmd) && (!hints[i].verb || (verb && !strcmp(verb, hints[i].verb))))
            return hints[i].hint;
    return NULL;
}

int main(int argc, char **argv) {
    prefer_short_spins(argv);
    qsort(cmds, (size_t)ncmds, sizeof cmds[0], by_name);
    /* `nabla help CMD [VERB]` is `nabla CMD [VERB] --help`. */
    char *help_argv[5];
    if (argc >= 3 && !strcmp(argv[1], "help")) {
        int n = 0;
        help_argv[n++] = argv[0];
        help_argv[n++] = argv[2];
        if (argc >= 4) help_argv[n++] = argv[3];
        help_argv[n++] = "--help";
        help_argv[n] = NULL;
        argc = n;
        argv = help_argv;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("nabla %s\n", NB_VERSION);
        return 0;
    }
    for (int i = 0; i < ncmds; i++)
        if (!strcmp(argv[1], cmds[i].name)) {
            if (check_threads_env()) return 2;
            nb_cli_fit_memory_limit(cmds[i].name, nb_set_threads(0));
            nb_set_oom_hint(oom_hint(cmds[i].name, argc > 2 ? argv[2] : NULL));
            return cmds[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "nabla: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/* --- output helpers ------------------------------------------------------- */

bool nb_cli_tty(void) { return isatty(2); }

double nb_cli_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void nb_cli_progress(const char *label, int64_t done, int64_t total, double elapsed, const char *extra, bool final) {
    if (!nb_cli_tty()) {
        if (final) fprintf(stderr, "%s %lld/%lld %.1fs %s\n", label, (long long)done, (long long)total, elapsed, extra ? extra : "");
        return;
    }
    const int width = 30;
    double frac = total > 0 ? (double)done / (double)total : 1.0;
    if (frac > 1) frac = 1;
    int fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    fprintf(stderr, "\r%s [%s] %3.0f%% %s ETA %4.0fs\033[K", label, bar, frac * 100, extra ? extra : "", final ? 0.0 : eta);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}
