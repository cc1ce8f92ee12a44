/* cli.h — what the subcommands of `nabla` share: self-registration (each
 * cli/<command>.c registers itself; there is no central list to edit), flag
 * parsing with clear errors, and output helpers. */
#ifndef NB_CLI_H
#define NB_CLI_H

#include "nabla.h"
#include <stdbool.h>

typedef int (*nb_cmd_fn)(int argc, char **argv); /* argv[0] is the command name */
void nb_cli_register(const char *name, nb_cmd_fn fn, const char *summary);

#define NB_COMMAND(name, fn, summary)                                                   \
    __attribute__((constructor)) static void reg_cmd_##fn(void) { nb_cli_register(name, fn, summary); }

/* Flag parsing. Each flag is looked up by its long name ("--epochs"); values
 * are checked and a bad one is reported as "nabla CMD: --epochs: expected a
 * positive integer, got 'x'". Functions return 0 or -1 (message printed). */
typedef enum { NB_FLAG_BOOL, NB_FLAG_INT, NB_FLAG_FLOAT, NB_FLAG_STR } nb_flag_kind;
typedef struct nb_flag {
    const char *name;   /* "--epochs" */
    nb_flag_kind kind;
    void *dst;          /* bool*, long*, double*, const char** */
    const char *help;
} nb_flag;
/* Parses argv (after the command name): flags anywhere, the rest are
 * positional and returned in pos (up to max_pos; more is an error). */
int nb_cli_parse(const char *cmd, int argc, char **argv, const nb_flag *flags, int nflags, const char **pos,
                 int max_pos, int *npos);
void nb_cli_usage(const char *cmd, const char *synopsis, const nb_flag *flags, int nflags);
/* Prints "nabla CMD: message" to stderr; returns 1 (the exit status). */
int nb_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether stderr is a terminal (progress bars) and the monotonic clock. */
bool nb_cli_tty(void);
double nb_cli_now(void);
/* A progress line: on a terminal redrawn in place with a bar and ETA; in a
 * pipe, printed only when done is called with final = true. */
void nb_cli_progress(const char *label, int64_t done, int64_t total, double elapsed, const char *extra, bool final);

#endif
