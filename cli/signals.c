/* signals.c — SIGINT and SIGTERM during training: the first one asks the
 * training loop to finish its step, write its checkpoint and exit; a second
 * one ends the process at once (the checkpoint writer is atomic, so even
 * that never destroys the previous file). */
#include "cli.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t caught;

static void on_signal(int sig) {
    if (caught) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    caught = sig;
}

void nb_cli_catch_interrupts(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a write in progress goes on; the loop checks the flag between steps */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int nb_cli_interrupted(void) { return caught; }

int nb_cli_interrupt_exit(const char *cmd, const char *saved, const char *resume_cmd) {
    int sig = caught;
    const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
    if (saved)
        fprintf(stderr, "nabla %s: stopped by %s; the checkpoint %s holds every finished step. Resume with:\n  %s\n", cmd,
                name, saved, resume_cmd);
    else
        fprintf(stderr, "nabla %s: stopped by %s; nothing was saved (no --out)\n", cmd, name);
    return 128 + sig;
}
