/* log.c — the CSV log of a training command (train, charrnn, chat, dqn, wavenet):
 * rows kept in memory, the file rewritten whole and atomically with each
 * checkpoint, and on --resume the rows of the progress the checkpoint holds,
 * so a resumed run's log equals an uninterrupted run's. */
#include "cli.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void nb_cli_log_add(nb_cli_log *l, const char *row) {
    if (!l->path) return;
    /* dqn logs a row per episode: grow by doubling, not a row at a time. */
    if (l->nrows == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **g = realloc(l->rows, sizeof(char *) * (size_t)cap);
        if (!g) nb_oom("the log", sizeof(char *) * (size_t)cap);
        l->rows = g, l->cap = cap;
    }
    char *copy = strdup(row);
    if (!copy) nb_oom("the log", strlen(row) + 1);
    l->rows[l->nrows++] = copy;
}

void nb_cli_log_put(nb_cli_log *l, const char *row) {
    if (!l->path) return;
    if (l->nrows > 1 && strtoll(l->rows[l->nrows - 1], NULL, 10) == strtoll(row, NULL, 10)) free(l->rows[--l->nrows]);
    nb_cli_log_add(l, row);
}

int nb_cli_log_open(nb_cli_log *l, const char *path, const char *header, bool resuming, int64_t lo, int64_t hi) {
    *l = (nb_cli_log){.path = path};
    if (!path) return 0;
    nb_cli_log_add(l, header);
    if (!resuming) return 0;
    /* No log yet (it was not asked for before): the resumed run starts one.
     * Any other failure to read it (a folder, no permission, out of
     * memory) is refused: starting afresh would overwrite the file. */
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;
    size_t len;
    char *buf = (char *)nb_read_file(path, &len);
    if (!buf) return -1;
    if (len == 0) { /* an empty file holds no rows of any run: started afresh */
        free(buf);
        return 0;
    }
    /* The rows kept are written back as this run's: another run's log (or
     * one of other columns) would be mixed into it, so it is refused, as a
     * checkpoint of other settings is. */
    const char *nul = memchr(buf, 0, len);
    if (nul) { /* strsep would end the text there: a damaged file */
        size_t at = (size_t)(nul - buf);
        free(buf);
        return nb_error("%s: a NUL byte at offset %zu: not a CSV log", path, at);
    }
    char *rest = buf, *line = strsep(&rest, "\n");
    if (strcmp(line, header)) {
        int rc = nb_error("%s: not this run's log: its first line is '%.60s%s', expected '%s' (give another --log, or "
                          "move the file away)",
                          path, line, strlen(line) > 60 ? "..." : "", header);
        free(buf);
        return rc;
    }
    for (int k = 2; (line = strsep(&rest, "\n")); k++) {
        if (!*line) continue;
        char *end;
        errno = 0;
        long long v = strtoll(line, &end, 10);
        if (end == line || *end != ',' || errno) {
            int rc = nb_error("%s: line %d: expected a row starting with the integer %.*s, found '%.40s'", path, k,
                              (int)strcspn(header, ","), header, line);
            free(buf);
            return rc;
        }
        if (v >= lo && v <= hi) nb_cli_log_add(l, line);
    }
    free(buf);
    return 0;
}

int nb_cli_log_write(const nb_cli_log *l) {
    if (!l->path) return 0;
    size_t len = 0;
    for (int i = 0; i < l->nrows; i++) len += strlen(l->rows[i]) + 1;
    char *buf = malloc(len + 1), *p = buf;
    if (!buf) return nb_error("%s: out of memory", l->path);
    for (int i = 0; i < l->nrows; i++) p += sprintf(p, "%s\n", l->rows[i]);
    int rc = nb_write_file_atomic(l->path, buf, len);
    free(buf);
    return rc;
}

void nb_cli_log_free(nb_cli_log *l) {
    for (int i = 0; i < l->nrows; i++) free(l->rows[i]);
    free(l->rows);
    *l = (nb_cli_log){0};
}
