/* log.c — the CSV log of a training command (charrnn, chat, wavenet train):
 * rows kept in memory, the file rewritten whole and atomically with each
 * checkpoint, and on --resume the rows of the progress the checkpoint holds,
 * so a resumed run's log equals an uninterrupted run's. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

void nb_cli_log_add(nb_cli_log *l, const char *row) {
    if (!l->path) return;
    char **g = realloc(l->rows, sizeof(char *) * (size_t)(l->nrows + 1));
    char *copy = strdup(row);
    if (!g || !copy) nb_oom("the log", 0);
    l->rows = g;
    l->rows[l->nrows++] = copy;
}

void nb_cli_log_put(nb_cli_log *l, const char *row) {
    if (!l->path) return;
    if (l->nrows > 1 && strtoll(l->rows[l->nrows - 1], NULL, 10) == strtoll(row, NULL, 10)) free(l->rows[--l->nrows]);
    nb_cli_log_add(l, row);
}

void nb_cli_log_open(nb_cli_log *l, const char *path, const char *header, bool resuming, int64_t lo, int64_t hi) {
    *l = (nb_cli_log){.path = path};
    if (!path) return;
    nb_cli_log_add(l, header);
    if (!resuming) return;
    size_t len;
    char *buf = (char *)nb_read_file(path, &len);
    if (!buf) { /* no log yet (it was not asked for before): the resumed run starts one */
        nb_clear_error();
        return;
    }
    char *rest = buf, *line;
    for (int k = 0; (line = strsep(&rest, "\n")); k++) {
        if (!*line || k == 0) continue;
        long long v = strtoll(line, NULL, 10);
        if (v >= lo && v <= hi) nb_cli_log_add(l, line);
    }
    free(buf);
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
