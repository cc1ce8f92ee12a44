/* charrnn.h — what the verbs of `nabla charrnn` share across files: the text
 * (charrnn_corpus.c) that training and eval read and split alike, and the
 * train verb (charrnn_train.c), which charrnn.c's table dispatches to. */
#ifndef NB_CLI_CHARRNN_H
#define NB_CLI_CHARRNN_H

#include "cli.h"

#define NB_CR_FORTUNES "/usr/share/games/fortunes" /* the default text */
#define NB_CR_VAL_PERCENT 5                        /* of every file, held out */

typedef struct {
    char **paths;   /* one per file, in order */
    int64_t *off;   /* where each file starts in text (n + 1 entries) */
    int n;
    int32_t *text;  /* code points of all files, concatenated */
    int32_t *ids;   /* the same as vocabulary ids, once a model is known */
    int64_t len;
} nb_cr_corpus;

int nb_cr_corpus_load(nb_cr_corpus *c, const char **args, int nargs);
int nb_cr_corpus_encode(nb_cr_corpus *c, const nb_charrnn *m);
int nb_cr_corpus_split(const nb_cr_corpus *c, int32_t **train, int64_t *ntrain, int32_t **val, int64_t *nval);
int64_t nb_cr_min_chars(int64_t B, int64_t T);
const char *nb_cr_corpus_name(const nb_cr_corpus *c, char *buf, size_t n);
void nb_cr_corpus_free(nb_cr_corpus *c);

int nb_cr_train(int argc, char **argv); /* argv[0] is "train"; returns the exit status */

#endif
