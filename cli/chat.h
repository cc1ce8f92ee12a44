/* chat.h — what the verbs of `nabla chat` share across files: chat.c
 * dispatches the verbs and holds the helpers below; chat_train.c,
 * chat_eval.c and chat_reply.c (the interactive ranking of `nabla chat
 * MODEL`) are the verbs. Each *_main takes the verb's argv (argv[0] its
 * name) and returns the exit status.
 *
 * `nabla chat corpus ...` builds the default dialogue corpus from text that
 * Debian packages ship (cli/chat_corpus.c) and writes it in the Ubuntu
 * Dialogue Corpus layout: train.csv (Context,Utterance,Label) and
 * valid.csv/test.csv (Context,Ground Truth Utterance,Distractor_0..8), with
 * `__eou__` ending an utterance and `__eot__` a turn. */
#ifndef NB_CLI_CHAT_H
#define NB_CLI_CHAT_H

#include "cli.h"
#include "nabla.h"
#include <stdbool.h>

int nb_chat_corpus_main(int argc, char **argv);
int nb_chat_train_main(int argc, char **argv);
int nb_chat_eval_main(int argc, char **argv);
int nb_chat_reply_main(int argc, char **argv);

/* Embeddings of n texts (responses: their first max_response tokens):
 * [n, H] row by row, malloc'd; NULL when out of memory. */
float *nb_chat_embed_texts(nb_dualenc *m, char **texts, int64_t n, int64_t max_response);
/* Splits s (modified) at newlines into its non-empty lines (a CR before the
 * newline dropped): *n pointers into s, malloc'd; NULL when out of memory. */
char **nb_chat_split_lines(char *s, int64_t *n);
/* The context and response lengths a model was trained with (160 and 80
 * for files without them): 0, or -1 with nb_errmsg() for a value outside
 * train's [1, 100000] (they size token buffers). */
int nb_chat_model_cuts(const nb_safetensors *st, const char *path, int64_t *mc, int64_t *mr);
/* The idf of the combined score c^T M r + W cos_tfidf, idf[V] (malloc'd):
 * from the document frequencies of the training file stored in the model
 * (tfidf.df), or, with idf_path, counted on that file. NULL with
 * nb_errmsg(). */
float *nb_chat_combined_idf(const nb_safetensors *st, const nb_dualenc *m, const char *model_path, const char *idf_path);
/* --tfidf-weight: a number >= 0, or "auto" where auto_ok. 0, or 2 (a usage
 * error, printed by "nabla CMD: ..."). */
int nb_chat_parse_weight(const nb_cli *c, const char *s, bool auto_ok, double *w, bool *is_auto);

#endif
