/* signals.c — SIGINT and SIGTERM during training: the first one asks the
 * training loop to finish its step, write its checkpoint and exit; a second
 * one ends the process at once (the checkpoint writer is atomic, so even
 * that never destroys the previous file). */
#include "cli.h"
#include <math.h>
#include <signal.h>
#include <stdarg.h>
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

int nb_cli_interrupt_exit(const char *cmd, const char *saved, const char *resume_cmd, double deadline) {
    int sig = caught;
    const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
    /* Without --minutes the resumed run would fall back to the checkpoint's
     * steps or epochs (charrnn's default 15,000 steps, chat's --epochs). */
    char left[48] = "";
    if (deadline > 0) snprintf(left, sizeof left, " --minutes %.2f", fmax((deadline - nb_cli_now()) / 60, 0.01));
    if (saved)
        fprintf(stderr, "nabla %s: stopped by %s; the checkpoint %s holds every finished step. Resume with:\n  %s%s\n",
                cmd, name, saved, resume_cmd, left);
    else
        fprintf(stderr, "nabla %s: stopped by %s; nothing was saved (no --out)\n", cmd, name);
    return 128 + sig;
}

/* Appends to buf (k bytes used of n) as snprintf would, truncating at n;
 * returns the length the text would have had. */
static size_t append(char *buf, size_t n, size_t k, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + (k < n ? k : n), k < n ? n - k : 0, fmt, ap);
    va_end(ap);
    return k + (size_t)(w > 0 ? w : 0);
}

/* Appends " word", single-quoted unless every byte is one a shell leaves
 * alone; a quote inside becomes '\''. */
static size_t put_word(char *buf, size_t n, size_t k, const char *word) {
    bool plain = *word != 0;
    for (const char *p = word; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=+,@%", *p)) plain = false;
    if (plain) return append(buf, n, k, " %s", word);
    k = append(buf, n, k, " '");
    for (const char *p = word; *p; p++) k = append(buf, n, k, *p == '\'' ? "'\\''" : "%c", *p);
    return append(buf, n, k, "'");
}

void nb_cli_resume_command(char *buf, size_t n, const char *verb, const char *const *args, int nargs,
                           const char *model, ...) {
    size_t k = append(buf, n, 0, "nabla %s", verb);
    for (int i = 0; i < nargs; i++) k = put_word(buf, n, k, args[i]);
    k = put_word(buf, n, append(buf, n, k, " --resume"), model ? model : "");
    va_list ap;
    va_start(ap, model);
    for (const char *flag; (flag = va_arg(ap, const char *));) {
        const char *value = va_arg(ap, const char *);
        if (value) k = put_word(buf, n, append(buf, n, k, " %s", flag), value);
    }
    va_end(ap);
    /* The threads of this run: a run resumes to an uninterrupted one's
     * numbers with the same count, which NABLA_THREADS or the cores at
     * resume time may not give. */
    append(buf, n, k, " --threads %d", nb_get_threads());
}
