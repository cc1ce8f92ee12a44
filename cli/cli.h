/* cli.h — what the subcommands of `nabla` share: self-registration (each
 * cli/<command>.c registers itself; there is no central list to edit), one
 * flag vocabulary with its help and checks (flags.c), and output helpers. */
#ifndef NB_CLI_H
#define NB_CLI_H

#include "nabla.h"
/* the allocations of the command go through the library's fault seam:
 * nb__xmalloc and its kin end the program with "nabla: out of memory: ..."
 * and status 1 where memory runs out, and NABLA_FAULT=alloc:K tests it */
#include "../src/core/fault.h"
#include <stdbool.h>
#include <stdio.h>

typedef int (*nb_cmd_fn)(int argc, char **argv); /* argv[0] is the command name */
void nb_cli_register(const char *name, nb_cmd_fn fn, const char *summary);

#define NB_COMMAND(name, fn, summary)                                                   \
    __attribute__((constructor)) static void reg_cmd_##fn(void) { nb_cli_register(name, fn, summary); }

/* --- flags ----------------------------------------------------------------
 * A command describes its flags in a table and hands it to nb_cli_parse,
 * which does everything a user sees of them: -h/--help (before any other
 * check), values of the right kind and range, --no-X for every switch,
 * output paths checked before work starts (a folder that takes them, and
 * none the same file as an input: outputs_not_inputs in flags.c), and errors
 * that name the option, the value given and what is allowed.
 *
 *   NB_FLAG_BOOL    bool *      a switch: --x sets it, --no-x clears it
 *   NB_FLAG_INT     long *      .range: an interval, "[1, 4096]", "[0, inf)"
 *   NB_FLAG_FLOAT   double *    .range: "(0, inf)", "[0, 1)", ...
 *   NB_FLAG_STR     const char **
 *   NB_FLAG_CHOICE  const char **  .range: the allowed words, "sgd|adam|adamw"
 *   NB_FLAG_OUTPUT  const char **  a file to write: its folder must exist and
 *                                  be writable; .range: allowed extensions
 *                                  ("safetensors|st"), NULL for any
 *
 * The default shown by --help is the value *dst holds before parsing, unless
 * .def says otherwise ("" shows none). After parsing, .given tells whether
 * the flag was on the command line. */
typedef enum { NB_FLAG_BOOL, NB_FLAG_INT, NB_FLAG_FLOAT, NB_FLAG_STR, NB_FLAG_CHOICE, NB_FLAG_OUTPUT } nb_flag_kind;
typedef struct nb_flag {
    const char *name;   /* "--epochs" */
    nb_flag_kind kind;
    void *dst;
    const char *help;
    const char *range;  /* see above */
    const char *def;    /* the default as --help shows it, when *dst does not say it */
    const char *meta;   /* the value's name in --help ("MODEL"); N, X, S, FILE by default */
    const char *letter; /* a one-letter form, "-c" (LIBSVM's letters in `nabla fit`) */
    bool given;         /* set by nb_cli_parse */
} nb_flag;

/* The flags every command spells the same way (README, "Shared flags"). */
#define NB_FLAG_JSON(dst) {"--json", NB_FLAG_BOOL, dst, "print the results as one JSON object, the last line of stdout"}
#define NB_FLAG_THREADS(dst, deflt)                                                                        \
    {"--threads", NB_FLAG_INT, dst, "threads; 0: NABLA_THREADS if set, else " deflt, .range = "[0, 1024]", \
     .def = "0"}
#define NB_FLAG_SEED(dst, what) {"--seed", NB_FLAG_INT, dst, "seed of " what, .range = "[0, inf)"}
#define NB_FLAG_MODEL_OUT(dst, what) \
    {"--out", NB_FLAG_OUTPUT, dst, what, .range = "safetensors|st", .meta = "MODEL", .def = ""}
/* more: "" or what the command adds ("; the run keeps its settings") */
#define NB_FLAG_RESUME(dst, more)                                                                                     \
    {"--resume", NB_FLAG_STR, dst,                                                                                   \
     "continue a checkpoint written by --out where it stopped (written back unless --out names another file)" more, \
     .meta = "MODEL"}
#define NB_FLAG_LOG(dst, what) {"--log", NB_FLAG_OUTPUT, dst, what, .range = "csv", .meta = "LOG.csv", .def = ""}
/* what, then the choices, then more ("; the model file is ..." or "") */
#define NB_FLAG_DEVICE(dst, what, more)                                                                        \
    {"--device", NB_FLAG_CHOICE, dst, what ": cpu, or cuda (an NVIDIA GPU, in a build made with make CUDA=1)" more, \
     .range = "cpu|cuda"}

/* A command's whole interface: nb_cli_parse checks the flags and the count
 * of positional arguments, and prints --help from it. */
typedef struct nb_cli {
    const char *cmd;      /* "train", "charrnn train" */
    const char *args;     /* the positional arguments, "NET.cfg", "MODEL IMAGE.png..." */
    const char *about;    /* paragraphs printed after the synopsis (may be NULL) */
    nb_flag *flags;
    int nflags;
    int min_pos, max_pos; /* how many positional arguments */
} nb_cli;

/* nb_cli_parse's "carry on"; any other return is the exit status to return
 * now: 0 after --help, 2 after a usage error (already printed). */
#define NB_CLI_OK (-1)
int nb_cli_parse(nb_cli *c, int argc, char **argv, const char **pos, int *npos);
void nb_cli_usage(const nb_cli *c, FILE *f);
/* A usage error found after parsing (one option against another, a missing
 * required one): prints "nabla CMD: message" and the usage line; returns 2. */
int nb_cli_usage_error(const nb_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The usage line alone, on stderr: after a usage error that a helper has
 * already told (nb_cli_check_output), before returning 2. */
void nb_cli_usage_line(const nb_cli *c);
/* The flag of c named name (NULL if none): for .given after parsing. */
nb_flag *nb_cli_flag(nb_cli *c, const char *name);

/* Subcommands with verbs (`nabla charrnn train|sample|eval`): runs the
 * verb named by argv[1] with argv shifted by one, so the verb's argv[0] is
 * its name; -h, --help and help list the verbs. */
typedef struct nb_verb {
    const char *name;
    nb_cmd_fn fn;
    const char *summary;
} nb_verb;
int nb_cli_verbs(const char *cmd, const nb_verb *verbs, int nverbs, int argc, char **argv);

/* The device a --device value names, checked to be usable: NB_CLI_OK with
 * *d set; otherwise the exit status, after the message ("--device cuda: no
 * usable CUDA device: ...", or that the build has no CUDA). */
int nb_cli_device(const nb_cli *c, const char *name, nb_device *d);
/* Sets the thread count from a --threads value (0: NABLA_THREADS, else
 * fallback, 0 meaning all cores) and warns when it exceeds the cores. */
void nb_cli_threads(const char *cmd, long threads, int fallback);
/* Under an address-space limit (ulimit -v), the threads that fit in it
 * (with a warning if fewer than asked, set with nb_set_threads); exits with
 * status 1 and a message if not even one fits, where OpenBLAS would hang. */
int nb_cli_fit_memory_limit(const char *cmd, int threads);
/* Whether path can be written as an output: its folder exists and takes a
 * new file, it is not a folder, and its extension is one of exts ("png|svg",
 * NULL for any). Prints "nabla CMD: OPTION 'path': why" and returns -1 if not. */
int nb_cli_check_output(const char *cmd, const char *option, const char *path, const char *exts);
/* Whether path is not the file input (the same file under any name): a
 * --log given the training data's name would replace the data. Prints
 * "nabla CMD: OPTION 'path': is the input ..." and returns -1 if it is. */
int nb_cli_check_not_input(const char *cmd, const char *option, const char *path, const char *input);
/* The same check as a usage error (the message, then c's usage line): -1
 * if path is input. nb_cli_parse already checks every NB_FLAG_OUTPUT
 * against the positional arguments and the string flags' values; this is
 * for the outputs a command derives from a name (PREFIX.x.npy, OUT-1.wav). */
int nb_cli_not_input(const nb_cli *c, const char *option, const char *path, const char *input);
/* On --resume: the seed the checkpoint was trained with (it drew the initial
 * weights and seeded the random streams the checkpoint carries) becomes
 * *seed; a --seed given now that differs is refused. 0, or -1 with
 * nb_errmsg() naming resume and both seeds. */
int nb_cli_resume_seed(nb_cli *c, const char *resume, uint64_t stored, long *seed);
/* A setting a resumed run took from its checkpoint (flag `name` not given)
 * must be one the flag accepts: the file may be damaged, and a value no
 * command line can give (--batch 2^63 - 1) would otherwise overflow or be
 * used silently. 0, or -1 with nb_errmsg() naming resume, the flag, the value
 * and the range. */
int nb_cli_check_stored(nb_cli *c, const char *name, const char *resume);
/* A DQN's model file is a network's with the learner's keys added, and
 * loads as one; but its outputs are the values of actions, not class
 * scores. 0 if st holds no DQN model, else -1 with nb_errmsg() "PATH: not
 * EXPECTED: it holds a DQN model (nabla dqn train)MORE". */
int nb_cli_not_dqn(const nb_safetensors *st, const char *path, const char *expected, const char *more);
/* nb_net_load for a command that reads the outputs as classes (eval,
 * predict, hessian): a DQN's model is refused (nb_cli_not_dqn). *st as
 * nb_net_load's (st NULL: not wanted). NULL with nb_errmsg(). */
nb_net *nb_cli_load_classifier(const char *path, nb_safetensors **st);
/* Whether path ends in ".ext" for one ext of exts ("png|svg|pdf"). */
bool nb_cli_has_ext(const char *path, const char *exts);

/* SIGINT and SIGTERM in training commands (signals.c): after
 * nb_cli_catch_interrupts, the first signal only sets a flag that the loop
 * reads between steps (nb_cli_interrupted: the signal, or 0); a second one
 * ends the process. nb_cli_interrupt_exit says what was saved and how to
 * resume (resume_cmd, e.g. "nabla train --resume m.safetensors"), and
 * returns 128 + the signal (130, 143): the exit status. A run with a
 * --minutes budget passes its deadline (nb_cli_now() time; 0: none): the
 * budget is the run's, so the command asks for the minutes left. */
void nb_cli_catch_interrupts(void);
int nb_cli_interrupted(void);
int nb_cli_interrupt_exit(const char *cmd, const char *saved, const char *resume_cmd, double deadline);
/* Writes into buf (n bytes) the command that resumes a training run, as a
 * user can paste it: "nabla VERB ARG... --resume MODEL", then each given
 * FLAG VALUE pair of the NULL-terminated list (a NULL value leaves its flag
 * out): the options a checkpoint does not keep, such as --valid and --log,
 * and last --threads with the run's thread count. Words a shell would split
 * or expand are single-quoted. */
void nb_cli_resume_command(char *buf, size_t n, const char *verb, const char *const *args, int nargs,
                           const char *model, ...);

/* The CSV log of a training command: rows in memory, the file rewritten
 * whole and atomically (nb_cli_log_write, with each checkpoint). With a NULL
 * path every call does nothing. open starts it with its header; resuming, it
 * keeps the file's rows whose first field (a step or an epoch) is in
 * [lo, hi], what the checkpoint holds; a log whose first line is not this
 * header (another run's, other columns) or a damaged row is refused (-1,
 * the error set), as the file would be rewritten as this run's. put replaces a last row of the same
 * first field (a step logged again), add appends. */
typedef struct nb_cli_log {
    const char *path;
    char **rows;
    int nrows, cap; /* cap: rows allocated (doubled as they fill) */
} nb_cli_log;
int nb_cli_log_open(nb_cli_log *l, const char *path, const char *header, bool resuming, int64_t lo, int64_t hi);
void nb_cli_log_add(nb_cli_log *l, const char *row);
void nb_cli_log_put(nb_cli_log *l, const char *row);
int nb_cli_log_write(const nb_cli_log *l);
void nb_cli_log_free(nb_cli_log *l);

/* The one training driver (train_loop.c): the loop of every training
 * command, which embeds it in its trainer and gives it callbacks. It keeps
 * the budget (max_steps; minutes of this run; epochs), reports (the
 * validation, a line on stderr, a row of csv, then the log and the
 * checkpoint) every eval_every steps or at each epoch's end and at the end,
 * handles SIGINT/SIGTERM (the step finishes, the log and the checkpoint are
 * written, `again` printed) and draws the progress bar.
 *   step-driven (charrnn, wavenet): epoch_steps 0; take_step, validate and
 *     save; the driver's report is "step N: train X unit, validation Y unit"
 *     and the row "step,train,validation,seconds".
 *   epoch-driven (train, chat): epoch_steps > 0 and epochs; begin_epoch
 *     (the epoch's order), and report for the command's own line and row.
 *   dqn train: a step is an environment step; report prints the training
 *     episodes' figures every tenth of the run, whose final save is the
 *     model alone. */
typedef struct nb_cli_loop {
    const char *cmd, *label;  /* "wavenet train" (messages), "wavenet" (the progress bar) */
    const char *unit;         /* of the figures: "bits/sample" */
    double loss_scale;        /* a step's loss (nats) times this is in unit (1 / ln 2 for bits) */
    const char *out, *again;  /* the checkpoint, and the command that resumes it */
    int64_t step;             /* steps done: 0, or the checkpoint's */
    int64_t max_steps;        /* stop there (< 0: no limit; minutes or epochs decide) */
    int64_t eval_every;       /* >= 1 without epochs */
    double minutes;           /* > 0: stop after this long (this run) */
    double seconds;           /* training seconds of the runs before (resumed) */
    double loss_share;        /* this process's share of a step's loss: 1 (less under mpirun) */
    bool quiet;               /* no validation lines (--json, stderr not a terminal) */
    nb_cli_log *csv;          /* or NULL */
    /* Epochs: with epoch_steps > 0 the run is `epochs` passes of
     * epoch_steps steps, reported at each one's end (not on eval_every);
     * epoch (finished epochs) and epoch_pos (steps done in the one in
     * progress) are the checkpoint's when resumed, and kept by the driver.
     * epoch_t0: when the epoch in progress began (set by the driver). */
    int64_t epochs, epoch, epoch_pos, epoch_steps;
    double epoch_t0;
    /* The training loss (nats) summed since the last row on the --eval-every
     * cadence (or since the epoch began), and its steps: a checkpoint keeps
     * them (the sum over the ranks; nb_cli_loop_restore), so that a resumed
     * run's next row averages the steps an uninterrupted run's does. */
    double loss_sum;
    int64_t loss_n;
    void *ctx;                /* the command's trainer, passed to the callbacks */
    /* One optimizer step at step `step`: *loss its loss in nats. 0, or -1
     * with nb_errmsg() (a non-finite loss among the causes). */
    int (*take_step)(void *ctx, double *loss);
    double (*validate)(void *ctx);            /* the validation figure, in unit (without report) */
    /* The checkpoint (final: the budget is spent, the run's last save, of
     * the model as it is to be used): 0, or -1 with nb_errmsg(). */
    int (*save)(void *ctx, double seconds, bool final);
    /* Optional. Before an epoch's first step, and the first step of a run
     * resumed inside one (the epoch's order of the examples). */
    void (*begin_epoch)(void *ctx);
    /* Optional, instead of validate and the driver's line and row: the
     * command's evaluation, line and row, after the bar is cleared and
     * train_figure set. cadence: at an epoch's end (epoch counts it) or a
     * step on eval_every; else the stop of the run in between. 0, or -1
     * with nb_errmsg(). */
    int (*report)(void *ctx, bool cadence);
    /* Optional: the text after the progress bar, given the step's loss;
     * "loss X unit  R steps/s" without. */
    void (*progress)(void *ctx, double loss, char *extra, size_t n);
    /* Optional: the command's own running figures (or state) summed over
     * the ranks under mpirun, called on every rank at the same points:
     * before each report and each checkpoint. Its collectives must come
     * before the vote on the log and checkpoint writes, which rank 0 alone
     * makes and may fail (nb_dist_any). */
    void (*gather)(void *ctx);
    /* Optional: after an interrupt's checkpoint, before the lines that say
     * how to resume it (a line of the command's own). */
    void (*interrupted)(void *ctx);
    /* The weights, checked before each report and checkpoint
     * (nb_cli_check_weights): none NaN or infinite. NULL: the command's
     * save checks them. */
    const nb_param *params;
    const char *const *names;
    int nparams;
    /* set by nb_cli_loop_run */
    int64_t first;            /* the step the run started from */
    double t0;                /* when it started (nb_cli_now) */
    double train_secs, warm_secs; /* seconds in steps in all, and in the first two */
    double val, train_figure; /* the last validation, and the training loss since the one before (unit) */
} nb_cli_loop;
/* 0 when the budget is spent (the last validation done and saved); 128 +
 * the signal after an interrupt (checkpoint written); 1 after an error,
 * printed. */
int nb_cli_loop_run(nb_cli_loop *L);
/* Steps per second of the run, the first two left out when there are more. */
double nb_cli_loop_rate(const nb_cli_loop *L);
/* On --resume: loss_sum and loss_n from the checkpoint's "nabla.loss_sum"
 * and "nabla.loss_n", which a command's save writes (0 if absent: older
 * checkpoints); 0, or -1 with nb_errmsg(). */
int nb_cli_loop_restore(nb_cli_loop *L, const nb_safetensors *st, const char *path);
/* The last step whose log row a resumed run keeps: the checkpoint's, unless
 * it is off the --eval-every cadence (the row of a stop by --steps or
 * --minutes, which an uninterrupted run does not write). */
int64_t nb_cli_loop_logged(const nb_cli_loop *L);

/* The extra tensors of a training command's checkpoint: the optimizer's
 * state (nb_optim_state's tensors named "optim.<name>", owned by the
 * optimizer), then the command's own, added by name (owned by the caller).
 * names/ts/n go to the model writers' extra_names/extra/nextra.
 * nb_cli_optim_restore copies the optimizer's back from st: 0, or -1 with
 * nb_errmsg() naming path and the tensor (hint, may be NULL, follows "is
 * missing"). The step count is the caller's. */
typedef struct nb_cli_extras {
    const char **names;
    nb_tensor **ts;
    int n, cap, nopt;
} nb_cli_extras;
void nb_cli_extras_init(nb_cli_extras *x, nb_optim *opt, int room); /* room: how many add may add */
void nb_cli_extras_add(nb_cli_extras *x, const char *name, nb_tensor *t);
void nb_cli_extras_free(nb_cli_extras *x);
int nb_cli_optim_restore(nb_optim *opt, const nb_safetensors *st, const char *path, const char *hint);
/* A real number a checkpoint stores in __metadata__ (a learning rate, the
 * seconds so far): *out keeps its value when key is absent (older files);
 * one that is present but no finite number is refused. 0, or -1 with
 * nb_errmsg() naming path, key and the text. */
int nb_cli_meta_number(const nb_safetensors *st, const char *path, const char *key, double *out);
/* A count a checkpoint must store in __metadata__ (a step, a batch size):
 * an integer >= 0 that int64_t holds. 0, or -1 with nb_errmsg() naming path
 * and key (missing: "not a training checkpoint"). */
int nb_cli_meta_count(const nb_safetensors *st, const char *path, const char *key, int64_t *out);
/* Keys a checkpoint writes together (a running loss and its count): 1 when
 * __metadata__ holds all n of them, 0 when it holds none (a checkpoint from
 * before they were kept), -1 with nb_errmsg() naming path, a key it holds
 * and the first it lacks when only some are there: a damaged file, whose
 * present keys alone (or none of them) would give the resumed run figures
 * an uninterrupted one never has. */
int nb_cli_meta_together(const nb_safetensors *st, const char *path, const char *const *keys, int n);

/* A number of a small text table (kernel files, distributions): what strtod
 * reads, or a fraction "a/b" (the notes write 1/9), spaces around allowed,
 * in [s, end). false for anything else or a zero denominator. */
bool nb_cli_parse_number(const char *s, const char *end, double *v);

/* Writes s to f as a JSON string: quoted, with '"' and '\\' escaped and
 * control characters as \\u00XX (bytes >= 0x80 pass: UTF-8 stays UTF-8). */
void nb_cli_json_string(FILE *f, const char *s);
/* Writes x to f with fmt ("%.6f"), or null when it is not finite: JSON has
 * no NaN or inf, and a figure that was not measured (a validation loss
 * without --valid) is null, not a number such as -1 that a script would
 * average. */
void nb_cli_json_number(FILE *f, const char *fmt, double x);
/* x in buf as the shortest of %.15g, %.16g and %.17g that reads back as x:
 * a setting the user gave as 0.1 is stored as "0.1", not
 * "0.10000000000000001". Returns buf (n >= 32). */
const char *nb_cli_shortest(char *buf, size_t n, double x);

/* Prints "nabla CMD: message" to stderr; returns 1 (the exit status). */
int nb_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* finite.c: the first of params[0, np) holding a NaN or infinite value
 * (GPU parameters are read back), or -1. */
int nb_cli_nonfinite_param(const nb_param *params, int np);
/* Before a checkpoint: 0 when every weight is finite; else -1 with
 * nb_errmsg() "the weights of 'NAME' became NaN or infinite by step N ...
 * no checkpoint was written". */
int nb_cli_check_weights(const nb_param *params, int np, const char *const *names, int64_t step);
/* Prints "nabla CMD: warning: message" to stderr. */
void nb_cli_warn(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether stderr is a terminal (progress bars) and the monotonic clock. */
bool nb_cli_tty(void);
double nb_cli_now(void);
/* A progress line: on a terminal redrawn in place with a bar and ETA; in a
 * pipe, printed only when done is called with final = true. */
void nb_cli_progress(const char *label, int64_t done, int64_t total, double elapsed, const char *extra, bool final);

#endif
