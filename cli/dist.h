/* dist.h — data parallelism across processes for the training commands
 * (cli/dist.c): `mpirun -np N nabla train ...` runs N ranks, each taking its
 * shard of every global batch; after backward the ranks average their
 * gradients with one MPI_Allreduce over a flat buffer, so every rank steps
 * the same optimizer on the same gradient and keeps the same weights. Rank 0
 * alone prints, logs and checkpoints. MPI stays out of libnabla: this layer
 * is the only file that includes mpi.h, and it is compiled with MPI only
 * when the Makefile finds mpicc (-DNB_MPI). Without MPI every function here
 * is the one-process case (rank 0 of 1), and a run started by mpirun says
 * how to get a build with MPI. */
#ifndef NB_DIST_H
#define NB_DIST_H

#include "cli.h"

/* The flag of the divergence guard, the same in every training command. */
#define NB_FLAG_DIST_CHECK(dst)                                                                            \
    {"--check-every", NB_FLAG_INT, dst, "under mpirun: compare a checksum of the weights across ranks every " \
                                        "N steps, stop if they differ; 0: never", .range = "[0, inf)"}
#define NB_DIST_CHECK_DEFAULT 100

/* Joins the job when started by mpirun (MPI_Init), once per process; ranks
 * other than 0 then write stdout to /dev/null and stderr to a scratch file
 * that is shown, under "rank R (HOST):", only if the rank exits with an
 * error. A rank that exits with a non-zero status ends the whole job
 * (MPI_Abort); MPI errors (a dead peer, a broken network) print the rank,
 * the host and the cause and end the job, and so does a collective that
 * waits longer than NABLA_MPI_TIMEOUT seconds (default 30; 10 times that
 * for the first, while ranks load their data). check_every: the divergence
 * guard's period in steps (0: off). Returns 0, or 1 after a message when
 * run under mpirun by a build without MPI. */
int nb_dist_init(const char *cmd, long check_every);
int nb_dist_rank(void);
int nb_dist_size(void);
/* "rank R of N on HOST" for messages; "" with one process. */
const char *nb_dist_where(void);

/* This rank's rows of a global batch of m rows: [*lo, *lo + *count). The
 * split is m*r/N .. m*(r+1)/N, as the thread shards split a batch. */
void nb_dist_shard(int64_t m, int64_t *lo, int64_t *count);

/* The hook between backward and the optimizer step. params (np tensors)
 * hold this rank's gradient, extra (nextra arrays of np gradient tensors,
 * the thread replicas') the rest of it, each already weighted for the mean
 * over this rank's `local` examples. Under MPI: folds the replicas into one
 * flat buffer (zeroing theirs), scales it by local/global and sums it over
 * the ranks, so params' .grad holds the mean gradient over the global batch
 * of `global` examples, the same on every rank; returns 0, the replicas
 * left for nb_optim_step_zero to sum. With one process returns nextra and
 * touches nothing. The same allreduce carries two flags: whether a rank's
 * loss was non-finite (`bad`: then returns -1 on every rank, and
 * nb_dist_bad_rank names the first such rank) and whether a rank caught
 * SIGINT/SIGTERM (nb_dist_interrupted). Every check_every calls it also
 * compares the weights' checksums and ends the job with a message if they
 * differ. Seconds and bytes spent go to nb_dist_stats. */
int nb_dist_allreduce_grads(nb_param *params, int np, nb_tensor **const *extra, int nextra, int64_t local,
                            int64_t global, bool bad);
int nb_dist_bad_rank(void);
/* The signal every rank agreed on at the last allreduce (nb_cli_interrupted
 * with one process): the training loop stops on the same step everywhere. */
int nb_dist_interrupted(void);
/* Sums n doubles (floats) over the ranks in place; nothing with one. */
void nb_dist_sum(double *v, int n);
void nb_dist_sum_floats(float *v, int64_t n);
/* Whether flag is true on any rank: a failure on one rank (rank 0's
 * checkpoint write) stops them all at the same point. */
bool nb_dist_any(bool flag);
/* Seconds spent in the gradients' MPI_Allreduce and, before it, waiting
 * for the slowest rank (a barrier), the calls and the bytes summed per call. */
void nb_dist_stats(double *seconds, double *wait, int64_t *calls, int64_t *bytes_per_call);

#endif
