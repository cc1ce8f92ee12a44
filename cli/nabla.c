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
    fprintf(f, "usage: nabla COMMAND [ARGS...]   (nabla COMMAND --help for its options)\n\ncommands:\n");
    for (int i = 0; i < ncmds; i++) fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
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

int main(int argc, char **argv) {
    prefer_short_spins(argv);
    qsort(cmds, (size_t)ncmds, sizeof cmds[0], by_name);
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
            nb_set_threads(0);
            return cmds[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "nabla: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/* --- shared helpers ------------------------------------------------------ */

int nb_cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "nabla %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static int parse_value(const char *cmd, const nb_flag *f, const char *v) {
    char *end;
    switch (f->kind) {
    case NB_FLAG_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end) { nb_cli_fail(cmd, "%s: expected an integer, got '%s'", f->name, v); return -1; }
        *(long *)f->dst = x;
        return 0;
    }
    case NB_FLAG_FLOAT: {
        double x = strtod(v, &end);
        if (!*v || *end || x != x) { nb_cli_fail(cmd, "%s: expected a number, got '%s'", f->name, v); return -1; }
        *(double *)f->dst = x;
        return 0;
    }
    case NB_FLAG_STR: *(const char **)f->dst = v; return 0;
    default: return -1;
    }
}

int nb_cli_parse(const char *cmd, int argc, char **argv, const nb_flag *flags, int nflags, const char **pos,
                 int max_pos, int *npos) {
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-' && a[2]) {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            const nb_flag *f = NULL;
            for (int k = 0; k < nflags; k++)
                if (strlen(flags[k].name) == len && !strncmp(flags[k].name, a, len)) f = &flags[k];
            if (!f) { nb_cli_fail(cmd, "unknown option '%.*s' (see nabla %s --help)", (int)len, a, cmd); return -1; }
            if (f->kind == NB_FLAG_BOOL) {
                if (eq) { nb_cli_fail(cmd, "%s takes no value", f->name); return -1; }
                *(bool *)f->dst = true;
                continue;
            }
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) { nb_cli_fail(cmd, "%s needs a value", f->name); return -1; }
            if (parse_value(cmd, f, v)) return -1;
        } else {
            if (*npos >= max_pos) { nb_cli_fail(cmd, "unexpected argument '%s'", a); return -1; }
            pos[(*npos)++] = a;
        }
    }
    return 0;
}

void nb_cli_usage(const char *cmd, const char *synopsis, const nb_flag *flags, int nflags) {
    printf("usage: nabla %s %s\n\noptions:\n", cmd, synopsis);
    for (int k = 0; k < nflags; k++) {
        const char *arg = flags[k].kind == NB_FLAG_INT ? " N" : flags[k].kind == NB_FLAG_FLOAT ? " X"
                        : flags[k].kind == NB_FLAG_STR ? " S" : "";
        char left[48];
        snprintf(left, sizeof left, "%s%s", flags[k].name, arg);
        printf("  %-22s %s\n", left, flags[k].help);
    }
}

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
