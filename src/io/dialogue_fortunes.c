/* dialogue_fortunes.c — the fortune cookie files: entries split by '%',
 * the IRC logs among them (<nick> text) and Q:/A: riddles taken as
 * conversations, each entry a group (see dialogue_src.h). */
#include "dialogue_build.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the line (n bytes) is an attribution, "-- Author" after blanks. */
static bool attribution(const char *s, size_t n) {
    size_t k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
    return n - k >= 2 && s[k] == '-' && s[k + 1] == '-';
}

int nb__dlg_parse_fortunes(nb__dlg *d, const char *name, const char *buf, size_t len) {
    nb__dlg_mark m = nb__dlg_mark_of(d);
    if (memchr(buf, 0, len)) return nb_error("%s: binary data (a NUL byte), not a fortune file", name);
    enum { NONE, IRC, QA } mode = NONE;
    const char *p = buf, *end = buf + len;
    int entry = 0;
    char group[600], who[40] = "";
    nb__sbuf u = {0}; /* the utterance being read */
    for (;;) {
        const char *eol = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!eol) eol = end;
        const char *s = p;
        size_t n = (size_t)(eol - s);
        if (n && s[n - 1] == '\r') n--;
        bool eof = p >= end;
        p = eol < end ? eol + 1 : end;
        bool sep = eof || (n == 1 && s[0] == '%');
        const char *gt = !eof && n > 2 && s[0] == '<' ? memchr(s, '>', n < 34 ? n : 34) : NULL;
        bool nick = gt && gt - s > 1 && gt + 1 < s + n && gt[1] == ' ' && !memchr(s, ' ', (size_t)(gt - s));
        bool act = mode == IRC && n > 2 && s[0] == '*' && s[1] == ' ';
        bool qa = n > 2 && (s[0] == 'Q' || s[0] == 'A') && s[1] == ':';
        if (!sep && !nick && !act && !qa) {
            bool cont = u.n && n && !attribution(s, n) &&
                        ((mode == IRC && (s[0] == ' ' || s[0] == '\t')) || mode == QA);
            if (cont) {
                nb__sbuf_put(&u, " ", 1);
                nb__sbuf_put(&u, s, n);
                continue;
            }
        }
        if (u.n && !u.oom) { /* any other line ends the utterance */
            if (!d->open) {
                snprintf(group, sizeof group, "%s:%d", name, entry);
                nb__dlg_begin(d, NB_DLG_FORTUNES, group);
            }
            nb__dlg_say(d, who, u.p, u.n);
        }
        if (u.oom) d->oom = true;
        u.n = 0;
        if (sep) {
            nb__dlg_end(d);
            entry++;
            mode = NONE;
            if (eof) break;
        } else if (nick) {
            const char *nk = s + 1;
            while (nk < gt && (*nk == '@' || *nk == '+')) nk++;
            snprintf(who, sizeof who, "%.*s", (int)(gt - nk), nk);
            nb__sbuf_put(&u, gt + 2, (size_t)(s + n - gt - 2));
            mode = IRC;
        } else if (act) { /* "* nick does something": nick's utterance */
            const char *nk = s + 2, *sp = memchr(nk, ' ', (size_t)(s + n - nk));
            size_t kl = sp ? (size_t)(sp - nk) : (size_t)(s + n - nk);
            snprintf(who, sizeof who, "%.*s", (int)(kl < 39 ? kl : 39), nk);
            nb__sbuf_put(&u, nk, (size_t)(s + n - nk));
        } else if (qa) {
            snprintf(who, sizeof who, "%c", s[0]);
            nb__sbuf_put(&u, s + 2, n - 2);
            mode = QA;
        } else if (n) {
            mode = NONE;
        }
    }
    free(u.p);
    return nb__dlg_finish(d, m, 0, name);
}
