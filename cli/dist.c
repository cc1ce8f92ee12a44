/* dist.c — data parallelism across processes with MPI (see dist.h). The
 * only file of nabla that includes mpi.h; built with MPI when the Makefile
 * finds mpicc (-DNB_MPI), as the one-process case otherwise. */
#include "dist.h"
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef NB_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
static char g_where[320] = "";
static double g_seconds, g_wait; /* in MPI_Allreduce of gradients; waiting for the slowest rank before it */
static int64_t g_calls, g_bytes;

int nb_dist_rank(void) { return g_rank; }
int nb_dist_size(void) { return g_size; }
const char *nb_dist_where(void) { return g_where; }

void nb_dist_shard(int64_t m, int64_t *lo, int64_t *count) {
    *lo = m * g_rank / g_size;
    *count = m * (g_rank + 1) / g_size - *lo;
}

void nb_dist_stats(double *seconds, double *wait, int64_t *calls, int64_t *bytes_per_call) {
    *seconds = g_seconds;
    *wait = g_wait;
    *calls = g_calls;
    *bytes_per_call = g_bytes;
}

/* The processes of the job when started by mpirun (OpenMPI sets
 * OMPI_COMM_WORLD_SIZE, MPICH and Slurm's PMI set PMI_SIZE); 1 otherwise. */
static long launcher_size(void) {
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v) v = getenv("PMI_SIZE");
    return v ? strtol(v, NULL, 10) : 1;
}

#ifndef NB_MPI

int nb_dist_init(const char *cmd, long check_every) {
    long n = launcher_size();
    if (n > 1)
        return nb_cli_fail(cmd, "started by mpirun with %ld processes, but this nabla was built without MPI: install "
                                "libopenmpi-dev and openmpi-bin (scripts/install-deps.sh does) and rebuild with make, "
                                "which then finds mpicc", n);
    return 0;
}
int nb_dist_allreduce_grads(nb_param *params, int np, nb_tensor **const *extra, int nextra, int64_t local,
                            int64_t global, bool bad) {
    return bad ? -1 : nextra;
}
int nb_dist_bad_rank(void) { return 0; }
int nb_dist_interrupted(void) { return nb_cli_interrupted(); }
void nb_dist_sum(double *v, int n) {}
void nb_dist_sum_floats(float *v, int64_t n) {}
bool nb_dist_any(bool flag) { return flag; }

#else

static const char *g_cmd = "train";
static long g_check_every;
static int g_err_fd = -1;       /* the real stderr of ranks other than 0 */
static FILE *g_scratch;         /* their stderr meanwhile */
static float *g_buf;            /* the flat gradient buffer */
static int64_t g_cap;
static int g_bad_rank = -1, g_signal;
static bool g_agreed;           /* a failure every rank knows of: end with MPI_Finalize, not MPI_Abort */
static int64_t g_fault_rank = -1, g_fault_call = -1; /* NABLA_DIST_FAULT="diverge RANK CALL" (tests) */

/* Writes the whole of s to fd. */
static void put(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* A rank other than 0 that fails shows what it would have printed. */
static void show_scratch(void) {
    if (!g_scratch || g_err_fd < 0) return;
    fflush(stderr);
    rewind(g_scratch);
    char line[4096], head[400];
    snprintf(head, sizeof head, "%s: ", g_where);
    while (fgets(line, sizeof line, g_scratch)) {
        put(g_err_fd, head, strlen(head));
        put(g_err_fd, line, strlen(line));
    }
}

/* At exit: a normal end, or a failure all ranks agreed on, finalizes
 * together; any other failure of one rank ends the whole job now, where
 * the others would wait for it forever in the next allreduce. */
static void at_exit(int status, void *arg) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return;
    if (status != 0 && !g_agreed) {
        if (g_rank) show_scratch(); /* the others know nothing of it */
        fprintf(stderr, "nabla %s: %s failed (exit status %d): ending the job\n", g_cmd, g_where, status);
        if (g_err_fd >= 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "nabla %s: %s failed (exit status %d): ending the job\n", g_cmd, g_where, status);
            put(g_err_fd, msg, strlen(msg));
        }
        alarm(10); /* if the abort cannot reach the others */
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    free(g_buf);
    g_buf = NULL;
    MPI_Finalize();
}

/* A collective that does not finish within g_timeout seconds (a rank that
 * hangs, a network that broke without an error: TCP would wait for
 * minutes) ends the job. Nonblocking MPI calls are completed by polling:
 * MPI_Test, yielding the core, then short sleeps after the first 10 ms. */
static double g_timeout = 30;
static bool g_started; /* the first collective waits 10 times longer: the ranks load their data at their own pace */
static void wait_for(MPI_Request *req, const char *what) {
    double t0 = nb_cli_now(), limit = g_started ? g_timeout : 10 * g_timeout;
    for (int done = 0;;) {
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done) {
            g_started = true;
            return;
        }
        double waited = nb_cli_now() - t0;
        if (waited > limit) {
            char msg[1024];
            snprintf(msg, sizeof msg, "nabla %s: %s: no answer from the other ranks for %.0f s in %s (a rank stopped, or the "
                                      "network between the hosts broke): ending the job (the last checkpoint is intact; "
                                      "NABLA_MPI_TIMEOUT sets the limit)\n", g_cmd, g_where, waited, what);
            put(g_err_fd >= 0 ? g_err_fd : 2, msg, strlen(msg));
            alarm(10); /* if the abort cannot reach the others either */
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (waited < 0.01) sched_yield();
        else nanosleep(&(struct timespec){0, 200000}, NULL);
    }
}

/* An MPI error (a peer that died, a network that broke) ends the job with
 * the rank, the host and MPI's own words. */
static void on_mpi_error(MPI_Comm *comm, int *code, ...) {
    char what[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(*code, what, &len);
    char msg[1024];
    snprintf(msg, sizeof msg, "nabla %s: %s: MPI error: %s; ending the job (the last checkpoint is intact)\n", g_cmd,
             g_where, what);
    put(g_err_fd >= 0 ? g_err_fd : 2, msg, strlen(msg));
    alarm(10);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int nb_dist_init(const char *cmd, long check_every) {
    g_cmd = cmd;
    g_check_every = check_every;
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited || launcher_size() <= 1) return 0; /* one process: no MPI at all */
    int provided;
    /* Only the main thread calls MPI; OpenMP threads work between calls. */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return nb_cli_fail(cmd, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    on_exit(at_exit, NULL);
    if (g_size == 1) return 0;
    char host[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(host, &len);
    snprintf(g_where, sizeof g_where, "rank %d of %d on %s", g_rank, g_size, host);
    MPI_Errhandler eh;
    MPI_Comm_create_errhandler(on_mpi_error, &eh);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, eh);
    const char *limit = getenv("NABLA_MPI_TIMEOUT");
    if (limit && strtod(limit, NULL) > 0) g_timeout = strtod(limit, NULL);
    const char *fault = getenv("NABLA_DIST_FAULT");
    if (fault && sscanf(fault, "diverge %" SCNd64 " %" SCNd64, &g_fault_rank, &g_fault_call) != 2)
        g_fault_rank = g_fault_call = -1;
    if (g_rank) {
        fflush(stdout);
        fflush(stderr);
        int null = open("/dev/null", O_WRONLY);
        g_err_fd = dup(2);
        g_scratch = tmpfile();
        if (null >= 0) {
            dup2(null, 1);
            close(null);
        }
        if (g_scratch) dup2(fileno(g_scratch), 2);
    }
    return 0;
}

int nb_dist_bad_rank(void) { return g_bad_rank; }

int nb_dist_interrupted(void) { return g_size > 1 ? g_signal : nb_cli_interrupted(); }

static void allreduce(void *v, int n, MPI_Datatype type, MPI_Op op, const char *what) {
    MPI_Request req;
    MPI_Iallreduce(MPI_IN_PLACE, v, n, type, op, MPI_COMM_WORLD, &req);
    wait_for(&req, what);
}

void nb_dist_sum(double *v, int n) {
    if (g_size > 1) allreduce(v, n, MPI_DOUBLE, MPI_SUM, "a sum of the ranks' totals");
}

void nb_dist_sum_floats(float *v, int64_t n) {
    if (g_size > 1) allreduce(v, (int)n, MPI_FLOAT, MPI_SUM, "a sum of the ranks' states");
}

bool nb_dist_any(bool flag) {
    if (g_size == 1) return flag;
    int any = flag;
    allreduce(&any, 1, MPI_INT, MPI_LOR, "a vote of the ranks");
    if (any) g_agreed = true;
    return any != 0;
}

/* FNV-1a over the bytes of every weight. */
static uint64_t checksum(const nb_param *params, int np) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < np; i++) {
        const unsigned char *p = (const unsigned char *)params[i].t->data;
        size_t n = (size_t)params[i].t->size * sizeof(float);
        for (size_t j = 0; j < n; j++) h = (h ^ p[j]) * 1099511628211ull;
    }
    return h;
}

/* The divergence guard: every rank's checksum to every rank; on a
 * difference rank 0 names the ranks and all stop. */
static void check_weights(const nb_param *params, int np) {
    uint64_t mine = checksum(params, np);
    uint64_t *all = malloc(sizeof(uint64_t) * (size_t)g_size);
    if (!all) nb_oom("the gradient exchange", 0);
    MPI_Request req;
    MPI_Iallgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD, &req);
    wait_for(&req, "the comparison of the weights");
    int other = -1;
    for (int r = 1; r < g_size && other < 0; r++)
        if (all[r] != all[0]) other = r;
    if (other >= 0) {
        nb_cli_fail(g_cmd, "the ranks' weights differ after %lld steps (weight checksum of rank 0: %016llx, of rank %d: "
                           "%016llx); stopping (the last checkpoint is intact). The ranks must run the same nabla on "
                           "the same data with the same flags", (long long)g_calls, (unsigned long long)all[0], other,
                    (unsigned long long)all[other]);
        free(all);
        g_agreed = true;
        exit(1);
    }
    free(all);
}

int nb_dist_allreduce_grads(nb_param *params, int np, nb_tensor **const *extra, int nextra, int64_t local,
                            int64_t global, bool bad) {
    if (g_size == 1) return bad ? -1 : nextra;
    int64_t total = 0;
    for (int i = 0; i < np; i++) total += params[i].t->size;
    int64_t len = total + 2; /* + the non-finite and the signal flags */
    if (len > INT32_MAX) nb_fatal("dist", "%lld gradients are more than one MPI_Allreduce can sum", (long long)len);
    if (len > g_cap) {
        free(g_buf);
        if (!(g_buf = malloc(sizeof(float) * (size_t)len))) nb_oom("the gradient exchange", 0);
        g_cap = len;
    }
    /* The rank's share of the global mean: its mean times local/global. */
    float w = (float)((double)local / (double)global);
    int64_t off = 0;
    for (int i = 0; i < np; i++) {
        nb_tensor *g = params[i].t->grad;
        if (!g) nb_fatal("dist", "parameter %d has no gradient", i);
        int64_t n = g->size;
        float *b = g_buf + off;
        for (int64_t j = 0; j < n; j++) b[j] = g->data[j];
        for (int k = 0; k < nextra; k++) {
            float *e = extra[k][i]->data;
            for (int64_t j = 0; j < n; j++) b[j] += e[j];
            memset(e, 0, sizeof(float) * (size_t)n);
        }
        for (int64_t j = 0; j < n; j++) b[j] *= w;
        off += n;
    }
    g_buf[total] = bad ? 1.0f : 0.0f;
    g_buf[total + 1] = nb_cli_interrupted() ? (float)nb_cli_interrupted() : 0;
    if (g_fault_call >= 0 && g_rank == g_fault_rank && g_calls == g_fault_call) params[0].t->data[0] += 1e-3f;
    /* The barrier splits the time of the sum from the wait for the slowest
     * rank (other work on its cores, a larger shard): one message latency. */
    double t0 = nb_cli_now();
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    wait_for(&req, "the wait for the gradients");
    double t1 = nb_cli_now();
    allreduce(g_buf, (int)len, MPI_FLOAT, MPI_SUM, "the sum of the gradients");
    g_wait += t1 - t0;
    g_seconds += nb_cli_now() - t1;
    g_calls++;
    g_bytes = len * (int64_t)sizeof(float);
    if (g_buf[total + 1] > 0) g_signal = nb_cli_interrupted() ? nb_cli_interrupted() : SIGTERM;
    if (g_buf[total] > 0) {
        /* Which rank: the lowest whose loss was not finite. */
        g_bad_rank = bad ? g_rank : g_size;
        allreduce(&g_bad_rank, 1, MPI_INT, MPI_MIN, "the search for the rank whose loss overflowed");
        g_agreed = true;
        return -1;
    }
    off = 0;
    for (int i = 0; i < np; i++) {
        nb_tensor *g = params[i].t->grad;
        memcpy(g->data, g_buf + off, sizeof(float) * (size_t)g->size);
        off += g->size;
    }
    if (g_signal) g_agreed = true;
    if (g_check_every > 0 && g_calls % g_check_every == 0) check_weights(params, np);
    return 0;
}

#endif
