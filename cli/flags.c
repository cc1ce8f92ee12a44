/* flags.c — the one flag machinery of every `nabla` command: parsing,
 * --help, range and choice checks, --no-X switches, output paths checked
 * before any work starts, and errors that name the option, the value given
 * and what is allowed. */
#include "cli.h"
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* "nabla CMD: [prefix]message\n" on stderr. */
static void say(const char *cmd, const char *prefix, const char *fmt, va_list ap) {
    fprintf(stderr, "nabla %s: %s", cmd, prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int nb_cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say(cmd, "", fmt, ap);
    va_end(ap);
    return 1;
}

void nb_cli_warn(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say(cmd, "warning: ", fmt, ap);
    va_end(ap);
}

/* --- ranges ----------------------------------------------------------------
 * A range is an interval as a mathematician writes it: "[1, 4096]",
 * "(0, inf)", "[0, 1)". One string serves both the check and the message. */
typedef struct {
    double lo, hi;
    bool lo_open, hi_open;
} interval;

static int parse_interval(const char *s, interval *iv) {
    char a[32], b[32], open, close;
    if (sscanf(s, " %c %31[^, ] , %31[^])] %c", &open, a, b, &close) != 4) return -1;
    iv->lo_open = open == '(';
    iv->hi_open = close == ')';
    iv->lo = strtod(a, NULL);
    iv->hi = strtod(b, NULL);
    return 0;
}

static bool in_interval(const interval *iv, double x) {
    if (iv->lo_open ? !(x > iv->lo) : !(x >= iv->lo)) return false;
    if (iv->hi_open ? !(x < iv->hi) : !(x <= iv->hi)) return false;
    return true;
}

/* "an integer >= 1", "a number in (0, 1]", ... */
static void describe(const nb_flag *f, char *buf, size_t n) {
    const char *what = f->kind == NB_FLAG_INT ? "an integer" : "a number";
    interval iv;
    if (!f->range || parse_interval(f->range, &iv)) {
        snprintf(buf, n, "%s", what);
        return;
    }
    bool no_lo = isinf(iv.lo), no_hi = isinf(iv.hi);
    if (no_lo && no_hi) snprintf(buf, n, "%s", what);
    else if (no_hi) snprintf(buf, n, "%s %s %g", what, iv.lo_open ? ">" : ">=", iv.lo);
    else if (no_lo) snprintf(buf, n, "%s %s %g", what, iv.hi_open ? "<" : "<=", iv.hi);
    else snprintf(buf, n, "%s in %s", what, f->range);
}

static bool is_choice(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

/* "a|b|c" -> "a, b or c" */
static void choices_text(const char *choices, char *buf, size_t n) {
    size_t k = 0;
    int count = 1;
    for (const char *p = choices; *p; p++) count += *p == '|';
    int seen = 0;
    for (const char *p = choices; *p && k + 6 < n; p++) {
        if (*p == '|') {
            seen++;
            const char *sep = seen == count - 1 ? " or " : ", ";
            k += (size_t)snprintf(buf + k, n - k, "%s", sep);
        } else buf[k++] = *p;
    }
    buf[k < n ? k : n - 1] = 0;
}

static int probe_folder(const char *cmd, const char *option, const char *path);

bool nb_cli_has_ext(const char *path, const char *exts) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash)) return false;
    return is_choice(exts, dot + 1);
}

int nb_cli_check_output(const char *cmd, const char *option, const char *path, const char *exts) {
    if (!*path) {
        nb_cli_fail(cmd, "%s: expected a file name, got ''", option);
        return -1;
    }
    if (exts && !nb_cli_has_ext(path, exts)) {
        char list[128];
        char dotted[128];
        size_t k = 0;
        for (const char *p = exts; *p && k + 2 < sizeof dotted; p++) {
            if (p == exts || p[-1] == '|') dotted[k++] = '.';
            dotted[k++] = *p;
        }
        dotted[k] = 0;
        choices_text(dotted, list, sizeof list);
        nb_cli_fail(cmd, "%s '%s': expected a file name ending in %s (the format follows the extension)", option, path,
                    list);
        return -1;
    }
    struct stat st;
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) {
        nb_cli_fail(cmd, "%s '%s': is a folder, expected a file name", option, path);
        return -1;
    }
    /* A device, FIFO or socket (/dev/stdout, /dev/null) is written in place
     * (nb_write_file_atomic): it must take writes, its folder nothing. */
    if (!stat(path, &st) && !S_ISREG(st.st_mode)) {
        if (!access(path, W_OK)) return 0;
        nb_cli_fail(cmd, "%s '%s': cannot be written: %s", option, path, strerror(errno));
        return -1;
    }
    /* The writer follows a symbolic link to its target: probe the target's folder. */
    char *real = NULL;
    if (!lstat(path, &st) && S_ISLNK(st.st_mode) && (real = realpath(path, NULL))) path = real;
    int rc = probe_folder(cmd, option, path);
    free(real);
    return rc;
}

/* The folder of path must exist and take a new file: create and remove a
 * probe there, which is what the atomic writers will do at the end. */
static int probe_folder(const char *cmd, const char *option, const char *path) {
    struct stat st;
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (stat(dir, &st)) {
        /* ENOTDIR: a file stands where the path needs a folder. */
        nb_cli_fail(cmd, "%s '%s': the folder '%s' %s", option, path, dir,
                    errno == ENOTDIR ? "cannot exist: a file stands in its path" : "does not exist");
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        nb_cli_fail(cmd, "%s '%s': '%s' is a file, not a folder", option, path, dir);
        return -1;
    }
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.nabla-probe-XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0) {
        nb_cli_fail(cmd, "%s '%s': cannot create files in '%s': %s", option, path, dir, strerror(errno));
        return -1;
    }
    close(fd);
    unlink(probe);
    return 0;
}

int nb_cli_resume_seed(nb_cli *c, const char *resume, uint64_t stored, long *seed) {
    if (nb_cli_flag(c, "--seed")->given && (uint64_t)*seed != stored)
        return nb_error("%s was trained with --seed %llu; a resumed run cannot change it (drop --seed %ld)", resume,
                        (unsigned long long)stored, *seed);
    *seed = (long)stored;
    return 0;
}

int nb_cli_check_stored(nb_cli *c, const char *name, const char *resume) {
    const nb_flag *f = nb_cli_flag(c, name);
    if (f->given) return 0;
    char want[160];
    interval iv;
    bool ranged = f->range && !parse_interval(f->range, &iv);
    switch (f->kind) {
    case NB_FLAG_INT: {
        long x = *(const long *)f->dst;
        if (ranged && !in_interval(&iv, (double)x)) {
            describe(f, want, sizeof want);
            return nb_error("%s: the stored %s %ld is not %s (a damaged checkpoint?)", resume, name, x, want);
        }
        return 0;
    }
    case NB_FLAG_FLOAT: {
        double x = *(const double *)f->dst;
        if (!isfinite(x) || fabs(x) > FLT_MAX || (ranged && !in_interval(&iv, x))) {
            describe(f, want, sizeof want);
            char size[80] = ""; /* as set_value says it of a value given */
            if (isfinite(x) && fabs(x) > FLT_MAX)
                snprintf(size, sizeof size, ", at most %g in size (single precision)", (double)FLT_MAX);
            return nb_error("%s: the stored %s %g is not %s%s (a damaged checkpoint?)", resume, name, x, want, size);
        }
        return 0;
    }
    case NB_FLAG_CHOICE: {
        const char *v = *(const char *const *)f->dst;
        if (!v || !is_choice(f->range, v)) {
            choices_text(f->range, want, sizeof want);
            return nb_error("%s: the stored %s '%.40s' is not %s (a damaged checkpoint?)", resume, name, v ? v : "",
                            want);
        }
        return 0;
    }
    default: return 0;
    }
}

/* Whether the output path names the existing regular file input, by device
 * and inode, however the two are spelled (./d.csv, a symbolic or hard link):
 * the atomic writer would rename the output over it. An output that does
 * not exist yet is no input; a device (/dev/stdout) is written into. */
static bool is_input(const char *path, const char *input) {
    struct stat o, i;
    if (!path || !input || stat(path, &o) || stat(input, &i) || !S_ISREG(o.st_mode)) return false;
    return o.st_dev == i.st_dev && o.st_ino == i.st_ino;
}

#define IS_INPUT_FMT "%s '%s': is the input %s%s'%s', which writing it would destroy: expected another file name"

int nb_cli_check_not_input(const char *cmd, const char *option, const char *path, const char *input) {
    if (!is_input(path, input)) return 0;
    nb_cli_fail(cmd, IS_INPUT_FMT, option, path, "", "", input);
    return -1;
}

int nb_cli_not_input(const nb_cli *c, const char *option, const char *path, const char *input) {
    if (!is_input(path, input)) return 0;
    nb_cli_usage_error(c, IS_INPUT_FMT, option, path, "", "", input);
    return -1;
}

/* After parsing, every output flag against every input the command line
 * names: the positional arguments and the values of the string flags (a
 * string that is no path names no file and matches nothing). The one
 * exception is --resume MODEL with --out MODEL: a training run updates its
 * checkpoint, which it has read whole before the first write. Outputs a
 * command derives from a name (PREFIX.NAME.npy, OUT-1.wav) it checks itself
 * with nb_cli_not_input. */
static int outputs_not_inputs(const nb_cli *c, const char **pos, int npos) {
    for (int k = 0; k < c->nflags; k++) {
        const nb_flag *f = &c->flags[k];
        const char *out = f->kind == NB_FLAG_OUTPUT && f->given ? *(const char **)f->dst : NULL;
        if (!out) continue;
        for (int i = 0; i < npos; i++)
            if (is_input(out, pos[i])) return nb_cli_usage_error(c, IS_INPUT_FMT, f->name, out, "", "", pos[i]);
        for (int j = 0; j < c->nflags; j++) {
            const nb_flag *g = &c->flags[j];
            const char *in = g->kind == NB_FLAG_STR && g->given ? *(const char **)g->dst : NULL;
            if (!in || (!strcmp(g->name, "--resume") && !strcmp(f->name, "--out"))) continue;
            if (is_input(out, in)) return nb_cli_usage_error(c, IS_INPUT_FMT, f->name, out, g->name, " ", in);
        }
    }
    return NB_CLI_OK;
}

/* --- parsing --------------------------------------------------------------- */

/* c->args without the space that ends it by convention ("MODEL "). */
static int args_len(const nb_cli *c) {
    size_t n = c->args ? strlen(c->args) : 0;
    while (n && c->args[n - 1] == ' ') n--;
    return (int)n;
}

void nb_cli_usage_line(const nb_cli *c) {
    fprintf(stderr, "usage: nabla %s %.*s%s[options]   (nabla %s --help for more)\n", c->cmd, args_len(c),
            c->args ? c->args : "", args_len(c) ? " " : "", c->cmd);
}

int nb_cli_usage_error(const nb_cli *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say(c->cmd, "", fmt, ap);
    va_end(ap);
    nb_cli_usage_line(c);
    return 2;
}
#define usage_error nb_cli_usage_error

static int value_error(const nb_cli *c, const nb_flag *f, const char *v) {
    char want[160];
    if (f->kind == NB_FLAG_CHOICE) {
        choices_text(f->range, want, sizeof want);
        return usage_error(c, "%s: expected %s, got '%s'", f->name, want, v);
    }
    describe(f, want, sizeof want);
    return usage_error(c, "%s: expected %s, got '%s'", f->name, want, v);
}

static int set_value(const nb_cli *c, nb_flag *f, const char *v) {
    char *end;
    interval iv = {0};
    bool ranged = f->range && !parse_interval(f->range, &iv);
    switch (f->kind) {
    case NB_FLAG_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || (ranged && !in_interval(&iv, (double)x))) return value_error(c, f, v);
        *(long *)f->dst = x;
        return NB_CLI_OK;
    }
    case NB_FLAG_FLOAT: {
        double x = strtod(v, &end);
        if (!*v || *end || !isfinite(x) || (ranged && !in_interval(&iv, x))) return value_error(c, f, v);
        /* The library computes in float: a larger value (1e300) would reach
         * it as inf, where an optimizer refuses it or a step overflows. */
        if (fabs(x) > FLT_MAX) {
            char want[160];
            describe(f, want, sizeof want);
            return usage_error(c, "%s: expected %s, at most %g in size (single precision), got '%s'", f->name, want,
                               (double)FLT_MAX, v);
        }
        *(double *)f->dst = x;
        return NB_CLI_OK;
    }
    case NB_FLAG_CHOICE:
        if (!is_choice(f->range, v)) return value_error(c, f, v);
        *(const char **)f->dst = v;
        return NB_CLI_OK;
    case NB_FLAG_OUTPUT:
        if (nb_cli_check_output(c->cmd, f->name, v, f->range)) {
            nb_cli_usage_line(c);
            return 2;
        }
        *(const char **)f->dst = v;
        return NB_CLI_OK;
    case NB_FLAG_STR: *(const char **)f->dst = v; return NB_CLI_OK;
    default: return 2;
    }
}

static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(b), prev[64], cur[64];
    if (n >= 64 || strlen(a) >= 64) return 99;
    for (size_t j = 0; j <= n; j++) prev[j] = j;
    for (size_t i = 1; a[i - 1]; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= n; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(size_t) * (n + 1));
    }
    return prev[n];
}

/* The flag a mistyped or renamed option most likely meant: within two edits,
 * or one name inside the other ("--clip" for "--grad-clip"). */
static const nb_flag *closest(const nb_cli *c, const char *name) {
    const nb_flag *best = NULL;
    size_t best_d = 3;
    for (int k = 0; k < c->nflags; k++) {
        const char *fn = c->flags[k].name;
        size_t d = edit_distance(name, fn);
        if (d < best_d || (!best && strlen(name) > 4 && (strstr(fn, name + 2) || strstr(name, fn + 2)))) {
            best = &c->flags[k];
            if (d < best_d) best_d = d;
        }
    }
    return best;
}

nb_flag *nb_cli_flag(nb_cli *c, const char *name) {
    for (int k = 0; k < c->nflags; k++)
        if (!strcmp(c->flags[k].name, name)) return &c->flags[k];
    return NULL;
}

static bool is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

/* A flag given again: the last counts, as scripts that keep common flags in
 * an array and append an override expect, but it is said (`--out a.st ...
 * --out b.st` wrote b.st alone). last: the switch as typed ("--no-x"), or
 * NULL with value the value given last. */
static void warn_again(const nb_cli *c, const nb_flag *f, const char *last, const char *value) {
    if (last) nb_cli_warn(c->cmd, "%s given more than once: the last, %s, counts", f->name, last);
    else nb_cli_warn(c->cmd, "%s given more than once: the last, '%s', counts", f->name, value);
}

int nb_cli_parse(nb_cli *c, int argc, char **argv, const char **pos, int *npos) {
    *npos = 0;
    /* Help comes before every other check, wherever it stands. */
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (is_help(argv[i])) {
            nb_cli_usage(c, stdout);
            return 0;
        }
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        bool is_long = !only_pos && a[0] == '-' && a[1] == '-' && a[2];
        /* One-letter forms: "-c" (not a negative number, which is a value). */
        bool is_letter = !only_pos && a[0] == '-' && a[1] && !a[2] && !(a[1] >= '0' && a[1] <= '9');
        if (is_letter) {
            nb_flag *f = NULL;
            for (int k = 0; k < c->nflags; k++)
                if (c->flags[k].letter && !strcmp(c->flags[k].letter, a)) f = &c->flags[k];
            if (!f) return usage_error(c, "unknown option '%s'", a);
            bool again = f->given;
            f->given = true;
            if (f->kind == NB_FLAG_BOOL) {
                if (again) warn_again(c, f, a, NULL);
                *(bool *)f->dst = true;
                continue;
            }
            if (i + 1 >= argc) return usage_error(c, "%s (%s) needs a value", a, f->name);
            int rc = set_value(c, f, argv[++i]);
            if (rc != NB_CLI_OK) return rc;
            if (again) warn_again(c, f, NULL, argv[i]);
            continue;
        }
        if (!is_long) {
            if (*npos >= c->max_pos) return usage_error(c, "unexpected argument '%s'", a);
            pos[(*npos)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), a);
        nb_flag *f = nb_cli_flag(c, name);
        bool negated = false;
        if (!f && !strncmp(name, "--no-", 5)) {
            char plain[64];
            snprintf(plain, sizeof plain, "--%s", name + 5);
            f = nb_cli_flag(c, plain);
            if (f && f->kind != NB_FLAG_BOOL) f = NULL;
            negated = f != NULL;
        }
        if (!f) {
            const nb_flag *g = closest(c, name);
            if (g) return usage_error(c, "unknown option '%s' (did you mean %s?)", name, g->name);
            return usage_error(c, "unknown option '%s'", name);
        }
        bool again = f->given;
        f->given = true;
        if (f->kind == NB_FLAG_BOOL) {
            if (eq) return usage_error(c, "%s is a switch and takes no value (use %s or --no-%s)", f->name, f->name, f->name + 2);
            if (again) warn_again(c, f, a, NULL);
            *(bool *)f->dst = !negated;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) return usage_error(c, "%s needs a value", f->name);
        int rc = set_value(c, f, v);
        if (rc != NB_CLI_OK) return rc;
        if (again) warn_again(c, f, NULL, v);
    }
    if (*npos < c->min_pos) {
        if (!*npos) return usage_error(c, "expected %.*s", args_len(c), c->args ? c->args : "");
        return usage_error(c, "expected %.*s, got %d argument%s", args_len(c), c->args ? c->args : "", *npos,
                           *npos == 1 ? "" : "s");
    }
    return outputs_not_inputs(c, pos, *npos);
}

/* --- help ------------------------------------------------------------------ */

static void default_text(const nb_flag *f, char *buf, size_t n) {
    buf[0] = 0;
    if (f->def) {
        if (!strcmp(f->def, "required")) snprintf(buf, n, " (required)");
        else if (*f->def) snprintf(buf, n, " (default %s)", f->def);
        return;
    }
    switch (f->kind) {
    case NB_FLAG_BOOL:
        if (*(bool *)f->dst) snprintf(buf, n, " (default on)");
        break;
    case NB_FLAG_INT: snprintf(buf, n, " (default %ld)", *(long *)f->dst); break;
    case NB_FLAG_FLOAT: snprintf(buf, n, " (default %g)", *(double *)f->dst); break;
    default:
        if (*(const char **)f->dst) snprintf(buf, n, " (default %s)", *(const char **)f->dst);
        break;
    }
}

/* Prints text from column col, breaking lines at spaces before column width. */
static void print_wrapped(FILE *out, const char *text, int col, int width) {
    int x = col;
    for (const char *p = text; *p;) {
        while (*p == ' ') p++;
        size_t w = strcspn(p, " ");
        if (x > col && x + 1 + (int)w > width) {
            fprintf(out, "\n%*s", col, "");
            x = col;
        }
        if (x > col) {
            fputc(' ', out);
            x++;
        }
        fprintf(out, "%.*s", (int)w, p);
        x += (int)w;
        p += w;
    }
    fputc('\n', out);
}

void nb_cli_usage(const nb_cli *c, FILE *out) {
    /* args with or without a trailing space read the same */
    fprintf(out, "usage: nabla %s %.*s%s[options]\n", c->cmd, args_len(c), c->args ? c->args : "",
            args_len(c) ? " " : "");
    if (c->about) fprintf(out, "\n%s\n", c->about);
    fprintf(out, "\noptions:\n");
    for (int k = 0; k < c->nflags; k++) {
        const nb_flag *f = &c->flags[k];
        char left[96], dflt[128];
        const char *meta = f->meta ? f->meta
                         : f->kind == NB_FLAG_INT ? "N"
                         : f->kind == NB_FLAG_FLOAT ? "X"
                         : f->kind == NB_FLAG_CHOICE ? f->range
                         : f->kind == NB_FLAG_OUTPUT ? "FILE" : "S";
        if (f->kind == NB_FLAG_BOOL)
            snprintf(left, sizeof left, "%s%s%s%s", f->letter ? f->letter : "", f->letter ? ", " : "",
                     *(bool *)f->dst ? "--[no-]" : "--", f->name + 2);
        else
            snprintf(left, sizeof left, "%s%s%s %s", f->letter ? f->letter : "", f->letter ? ", " : "", f->name, meta);
        default_text(f, dflt, sizeof dflt);
        char range[160] = "";
        if ((f->kind == NB_FLAG_INT || f->kind == NB_FLAG_FLOAT) && f->range) {
            char d[128];
            describe(f, d, sizeof d);
            /* "an integer >= 1" -> "; >= 1" */
            const char *r = strchr(d, ' ');
            r = r ? strchr(r + 1, ' ') : NULL;
            if (r) snprintf(range, sizeof range, "; %s", r + 1);
        }
        char text[1024];
        snprintf(text, sizeof text, "%s%s%s", f->help, range, dflt);
        if (strlen(left) > 24) fprintf(out, "  %s\n%27s", left, "");
        else fprintf(out, "  %-24s ", left);
        print_wrapped(out, text, 27, 100);
    }
    fprintf(out, "  %-24s %s\n", "-h, --help", "this help");
}

int nb_cli_verbs(const char *cmd, const nb_verb *verbs, int nverbs, int argc, char **argv) {
    const char *v = argc > 1 ? argv[1] : NULL;
    if (!v || is_help(v) || !strcmp(v, "help")) {
        FILE *out = v ? stdout : stderr;
        fprintf(out, "usage: nabla %s VERB [ARGS...]   (nabla %s VERB --help for its options)\n\nverbs:\n", cmd, cmd);
        int width = 8; /* the summaries in one column, two spaces after the longest verb */
        for (int i = 0; i < nverbs; i++)
            if ((int)strlen(verbs[i].name) + 1 > width) width = (int)strlen(verbs[i].name) + 1;
        for (int i = 0; i < nverbs; i++) fprintf(out, "  %-*s %s\n", width, verbs[i].name, verbs[i].summary);
        return v ? 0 : 2;
    }
    for (int i = 0; i < nverbs; i++)
        if (!strcmp(v, verbs[i].name)) return verbs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "nabla %s: unknown verb '%s' (expected", cmd, v);
    for (int i = 0; i < nverbs; i++) fprintf(stderr, "%s%s", i ? (i + 1 == nverbs ? " or " : ", ") : " ", verbs[i].name);
    fprintf(stderr, ")\n");
    return 2;
}

/* Under an address-space limit (ulimit -v), Debian's OpenBLAS (0.3.21)
 * retries a failed mmap of its per-thread 128 MiB GEMM buffer forever, and
 * each thread also reserves glibc arenas and stacks: measured, `nabla train`
 * needs 350-450 MiB with one thread and 700-900 with two. Below what the
 * threads need, run fewer; below what one needs, stop with a message
 * instead of hanging. */
#define MEM_BASE_MIB 100
#define MEM_PER_THREAD_MIB 400

int nb_cli_fit_memory_limit(const char *cmd, int threads) {
    struct rlimit r;
    if (getrlimit(RLIMIT_AS, &r) || r.rlim_cur == RLIM_INFINITY) return threads;
    double mib = (double)r.rlim_cur / (1024.0 * 1024.0);
    int fit = (int)((mib - MEM_BASE_MIB) / MEM_PER_THREAD_MIB);
    if (fit >= threads) return threads;
    if (fit < 1) {
        nb_cli_fail(cmd, "the address-space limit (ulimit -v) is %.0f MiB; nabla needs about %d MiB for one thread "
                         "(OpenBLAS alone reserves a 128 MiB buffer per thread): raise the limit", mib,
                    MEM_BASE_MIB + MEM_PER_THREAD_MIB);
        exit(1);
    }
    static bool warned; /* main checks the default count, the command then its own: say it once */
    if (!warned)
        nb_cli_warn(cmd, "the address-space limit (ulimit -v) of %.0f MiB leaves room for %d thread%s, not %d: running %d",
                    mib, fit, fit == 1 ? "" : "s", threads, fit);
    warned = true;
    return nb_set_threads(fit);
}

int nb_cli_device(const nb_cli *c, const char *name, nb_device *d) {
    if (nb_device_parse(name, d)) return nb_cli_usage_error(c, "--device: %s", nb_errmsg());
    if (*d == NB_CUDA && nb_device_ready(NB_CUDA)) return nb_cli_fail(c->cmd, "--device cuda: %s", nb_errmsg());
    return NB_CLI_OK;
}

void nb_cli_threads(const char *cmd, long threads, int fallback) {
    int n = (int)threads;
    if (n <= 0) n = getenv("NABLA_THREADS") ? 0 : fallback;
    n = nb_set_threads(n);
    n = nb_cli_fit_memory_limit(cmd, n);
#ifdef _OPENMP
    int cores = omp_get_num_procs();
    if (n > cores)
        nb_cli_warn(cmd, "%d threads on %d cores: threads will wait for each other's cores, which is slower than %d",
                    n, cores, cores);
#endif
}

void nb_cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

const char *nb_cli_shortest(char *buf, size_t n, double x) {
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, n, "%.*g", digits, x);
        if (digits == 17 || strtod(buf, NULL) == x) break;
    }
    return buf;
}

void nb_cli_json_number(FILE *f, const char *fmt, double x) {
    if (isfinite(x)) fprintf(f, fmt, x);
    else fputs("null", f);
}

bool nb_cli_parse_number(const char *s, const char *end, double *v) {
    while (s < end && isspace((unsigned char)*s)) s++;
    while (end > s && isspace((unsigned char)end[-1])) end--;
    char buf[64];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *q;
    double a = strtod(buf, &q);
    if (q == buf) return false;
    if (*q == '/') {
        char *r;
        double b = strtod(q + 1, &r);
        if (r == q + 1 || *r || b == 0) return false;
        a /= b;
    } else if (*q) {
        return false;
    }
    *v = a;
    return true;
}
