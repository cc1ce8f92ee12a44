/* charrnn_corpus.c — the text of `nabla charrnn`: UTF-8 files or folders
 * (by default the English fortune files of Debian's fortunes package) read as
 * code points, encoded in a model's vocabulary, and split into training text
 * and the held-out last 5% of every file. */
#include "charrnn.h"
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void nb_cr_corpus_free(nb_cr_corpus *c) {
    for (int i = 0; i < c->n; i++) free(c->paths[i]);
    free(c->paths);
    free(c->off);
    free(c->text);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static int add_path(nb_cr_corpus *c, const char *p) {
    char **g = realloc(c->paths, sizeof(char *) * (size_t)(c->n + 1));
    if (!g) return nb_error("out of memory");
    c->paths = g;
    if (!(c->paths[c->n] = nb__strndup(p, strlen(p)))) return nb_error("out of memory");
    c->n++;
    return 0;
}

static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* A folder contributes its regular files in name order, except hidden
 * files and fortune(6)'s index files (*.dat, *.u8). */
static int add_dir(nb_cr_corpus *c, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return nb_error("%s: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || has_suffix(e->d_name, ".dat") || has_suffix(e->d_name, ".u8")) continue;
        /* Out of memory ends the run: a break here read the folder's first
         * files alone, as if they were all of it. */
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *full = nb__xmalloc("a file name", len, 1);
        snprintf(full, len, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(full, &st) || !S_ISREG(st.st_mode)) {
            free(full);
            continue;
        }
        names = nb__xrealloc("the folder's file names", names, (size_t)n + 1, sizeof(char *));
        names[n++] = full;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof(char *), by_str); /* names is NULL when n is 0 */
    int rc = n ? 0 : nb_error("%s: no text files in this folder", dir);
    for (int i = 0; i < n; i++) {
        if (!rc) rc = add_path(c, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Reads TEXT... (files or folders), or the fortunes when none is given. */
int nb_cr_corpus_load(nb_cr_corpus *c, const char **args, int nargs) {
    memset(c, 0, sizeof *c);
    if (nargs == 0) {
        struct stat st;
        if (stat(NB_CR_FORTUNES, &st) || !S_ISDIR(st.st_mode))
            return nb_error("no TEXT given, and the default corpus %s is missing (install Debian's fortunes package: "
                            "apt-get install fortunes)", NB_CR_FORTUNES);
        if (add_dir(c, NB_CR_FORTUNES)) return -1;
    }
    for (int i = 0; i < nargs; i++) {
        struct stat st;
        if (stat(args[i], &st)) return nb_error("%s: %s", args[i], strerror(errno));
        if (S_ISDIR(st.st_mode) ? add_dir(c, args[i]) : add_path(c, args[i])) return -1;
    }
    c->off = calloc((size_t)c->n + 1, sizeof(int64_t));
    if (!c->off) return nb_error("out of memory");
    for (int i = 0; i < c->n; i++) {
        size_t blen;
        uint8_t *buf = nb_read_file(c->paths[i], &blen);
        if (!buf) return -1;
        int64_t m;
        int32_t *cps = nb_utf8_decode(buf, blen, c->paths[i], &m);
        free(buf);
        if (!cps) return -1;
        int32_t *g = realloc(c->text, sizeof(int32_t) * (size_t)(c->len + m));
        if (!g) {
            free(cps);
            return nb_error("%s: out of memory", c->paths[i]);
        }
        c->text = g;
        memcpy(c->text + c->len, cps, sizeof(int32_t) * (size_t)m);
        free(cps);
        c->off[i] = c->len;
        c->len += m;
    }
    c->off[c->n] = c->len;
    return 0;
}

/* Ids of the whole corpus in the model's vocabulary; an unknown character
 * is reported with its own file, line and column. */
int nb_cr_corpus_encode(nb_cr_corpus *c, const nb_charrnn *m) {
    c->ids = malloc(sizeof(int32_t) * (size_t)(c->len ? c->len : 1));
    if (!c->ids) return nb_error("out of memory");
    for (int i = 0; i < c->n; i++)
        if (nb_charrnn_encode(m, c->text + c->off[i], c->off[i + 1] - c->off[i], c->ids + c->off[i], c->paths[i]))
            return -1;
    return 0;
}

/* Training and validation ids: the last NB_CR_VAL_PERCENT% of every file is held
 * out, the rest is training text, both in file order. With one file this is
 * the last 5% of the text; with many it is a sample of every one of them. In
 * name order the fortunes' last 5% would be the Zippy the Pinhead quotes
 * and most of 'work', a validation set unlike the rest, measured at 0.3 bits
 * per character above the training loss. */
int nb_cr_corpus_split(const nb_cr_corpus *c, int32_t **train, int64_t *ntrain, int32_t **val, int64_t *nval) {
    *ntrain = *nval = 0;
    *train = malloc(sizeof(int32_t) * (size_t)(c->len ? c->len : 1));
    *val = malloc(sizeof(int32_t) * (size_t)(c->len ? c->len : 1));
    if (!*train || !*val) return nb_error("out of memory");
    for (int i = 0; i < c->n; i++) {
        int64_t len = c->off[i + 1] - c->off[i], hold = len * NB_CR_VAL_PERCENT / 100;
        memcpy(*train + *ntrain, c->ids + c->off[i], sizeof(int32_t) * (size_t)(len - hold));
        memcpy(*val + *nval, c->ids + c->off[i] + len - hold, sizeof(int32_t) * (size_t)hold);
        *ntrain += len - hold;
        *nval += hold;
    }
    return 0;
}

/* The fewest characters one file needs for --batch B --seq T: corpus_split
 * keeps its last NB_CR_VAL_PERCENT% (rounded down) for validation, which must be at
 * least 2 characters (an input and its target), and the rest must fill B
 * streams of T + 1 characters (nb_charrnn_windows >= 1). */
int64_t nb_cr_min_chars(int64_t B, int64_t T) {
    int64_t train = B * (T + 1), lo = (2 * 100 + NB_CR_VAL_PERCENT - 1) / NB_CR_VAL_PERCENT;
    /* L - floor(L p) <= L (1 - p) + 1, so no L below this one has enough training text. */
    int64_t L = (train - 1) * 100 / (100 - NB_CR_VAL_PERCENT);
    if (L < lo) L = lo;
    while (L - L * NB_CR_VAL_PERCENT / 100 < train) L++;
    return L;
}

const char *nb_cr_corpus_name(const nb_cr_corpus *c, char *buf, size_t n) {
    if (c->n == 1) snprintf(buf, n, "%s", c->paths[0]);
    else snprintf(buf, n, "%d files (%s ...)", c->n, c->paths[0]);
    return buf;
}
