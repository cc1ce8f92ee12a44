/* chat.h — what the verbs of `nabla chat` share across files.
 *
 * `nabla chat corpus ...` builds the default dialogue corpus from text that
 * Debian packages ship (cli/chat_corpus.c) and writes it in the Ubuntu
 * Dialogue Corpus layout: train.csv (Context,Utterance,Label) and
 * valid.csv/test.csv (Context,Ground Truth Utterance,Distractor_0..8), with
 * `__eou__` ending an utterance and `__eot__` a turn. cli/chat.c dispatches
 * the verb `corpus` to it; argv[0] is "corpus". Returns the exit status. */
#ifndef NB_CLI_CHAT_H
#define NB_CLI_CHAT_H

int nb_chat_corpus_main(int argc, char **argv);

#endif
