/* fit.h — what `nabla fit` shares with the other commands: loading a data
 * set for the classical models, and `nabla predict` for their model files. */
#ifndef NB_CLI_FIT_H
#define NB_CLI_FIT_H

#include "nabla.h"

/* Loads DATA as X [n, d] (persistent) and y [n] (malloc'd, NULL when the data
 * has no labels): "fashion-mnist" or a folder of IDX files (the train or test
 * split, pixels / 255), a .npy array (2-D), a CSV file (numbers, an optional
 * header row) or a LIBSVM text file, the format told by content
 * (nb_data_kind, as nb_dataset_load does). For .npy and CSV the last column
 * is the label when `labeled`. LIBSVM data gets at least min_features
 * columns. 0, or -1 with nb_errmsg() naming the file, line and column, or
 * what the file is when it is not data. */
int nb_fit_load_data(const char *spec, bool train, bool labeled, int64_t min_features, nb_tensor **X, float **y);

/* `nabla predict MODEL DATA` for a model written by `nabla fit` (argv as
 * the predict command gets it). Returns -1 without printing anything when
 * MODEL is not such a model (a network: the caller goes on), else the
 * command's exit status. */
int nb_fit_predict(int argc, char **argv);

#endif
