/* dialogue_wml.c — Wesnoth's campaigns (WML): the [message] blocks of a
 * scenario file, speaker= and the translatable message= _ "...", Pango
 * markup removed; a scenario file is a group (see dialogue_src.h). */
#include "dialogue_build.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Removes Pango markup (<span ...>, <i>, </b>) in place. */
static void strip_markup(char *s) {
    char *o = s;
    for (char *p = s; *p;) {
        if (*p == '<' && (isalpha((unsigned char)p[1]) || p[1] == '/')) {
            char *e = strchr(p, '>');
            if (e) {
                p = e + 1;
                continue;
            }
        }
        *o++ = *p++;
    }
    *o = 0;
}

#define WML_MAXDEPTH 128
int nb__dlg_parse_wml(nb__dlg *d, const char *name, const char *buf, size_t len) {
    nb__dlg_mark m = nb__dlg_mark_of(d);
    char group[512];
    snprintf(group, sizeof group, "%s", name);
    char stack[WML_MAXDEPTH][32];
    int depth = 0, msg_depth = -1, rc = 0;
    nb__sbuf speaker = {0}, text = {0}, val = {0};
    const char *p = buf, *end = buf + len;
    bool line_start = true;
    while (p < end && rc == 0) {
        char c = *p;
        if (c == '\n') {
            line_start = true;
            p++;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r') {
            p++;
            continue;
        }
        bool at_start = line_start;
        line_start = false;
        if (c == '#') { /* comments and preprocessor lines */
            if (at_start && end - p >= 7 && (!memcmp(p, "#define", 7) || !memcmp(p, "#enddef", 7))) nb__dlg_end(d);
            while (p < end && *p != '\n') p++;
            continue;
        }
        if (c == '{') { /* a macro call: skipped, strings in it included */
            int nest = 0;
            for (; p < end; p++) {
                if (*p == '"') {
                    for (p++; p < end && !(*p == '"' && (p + 1 >= end || p[1] != '"')); p++)
                        if (*p == '"') p++;
                    if (p >= end) break;
                } else if (*p == '{') {
                    nest++;
                } else if (*p == '}' && --nest == 0) {
                    p++;
                    break;
                }
            }
            continue;
        }
        if (c == '[') {
            const char *q = p + 1;
            while (q < end && (isalnum((unsigned char)*q) || *q == '_' || *q == '/' || *q == '+')) q++;
            if (q >= end || *q != ']' || q == p + 1) { /* not a tag */
                p++;
                continue;
            }
            const char *nm = p + 1;
            size_t nl = (size_t)(q - nm);
            p = q + 1;
            if (*nm == '/') { /* closing: pops to the matching open tag */
                nm++, nl--;
                int i = depth - 1;
                while (i >= 0 && (strlen(stack[i]) != nl || strncmp(stack[i], nm, nl))) i--;
                if (i < 0) continue; /* a macro's half of a tag: ignored */
                for (int k = depth - 1; k >= i; k--) {
                    if (k + 1 == msg_depth) {
                        msg_depth = -1;
                        if (speaker.n && text.n && !speaker.oom && !text.oom &&
                            strcasecmp(speaker.p, "narrator") != 0) {
                            if (!d->open) nb__dlg_begin(d, NB_DLG_WESNOTH, group);
                            strip_markup(text.p);
                            nb__dlg_say(d, speaker.p, text.p, strlen(text.p));
                        }
                    }
                    if (!strcmp(stack[k], "event")) nb__dlg_end(d);
                }
                depth = i;
                continue;
            }
            if (*nm == '+') nm++, nl--;
            if (depth == WML_MAXDEPTH) {
                rc = nb_error("%s:%d: tags nested deeper than %d", name, nb__dlg_line_at(buf, p), WML_MAXDEPTH);
                break;
            }
            snprintf(stack[depth], sizeof stack[depth], "%.*s", (int)(nl < 31 ? nl : 31), nm);
            depth++;
            if (!strcmp(stack[depth - 1], "event")) nb__dlg_begin(d, NB_DLG_WESNOTH, group);
            if (!strcmp(stack[depth - 1], "message") && msg_depth < 0) {
                msg_depth = depth;
                speaker.n = text.n = 0;
                if (speaker.p) speaker.p[0] = 0;
                if (text.p) text.p[0] = 0;
            }
            continue;
        }
        if (isalpha((unsigned char)c) || c == '_') { /* key=value */
            const char *k = p;
            while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == ',')) p++;
            size_t kl = (size_t)(p - k);
            const char *q = p;
            while (q < end && (*q == ' ' || *q == '\t')) q++;
            if (q >= end || *q != '=') continue;
            p = q + 1;
            val.n = 0;
            if (val.p) val.p[0] = 0;
            for (;;) { /* pieces joined by + */
                while (p < end && (*p == ' ' || *p == '\t')) p++;
                if (p < end && *p == '_') {
                    const char *r = p + 1;
                    while (r < end && (*r == ' ' || *r == '\t')) r++;
                    if (r < end && *r == '"') p = r;
                }
                if (p < end && *p == '"') {
                    const char *open = p++;
                    bool closed = false;
                    while (!closed) {
                        const char *s = p;
                        while (p < end && *p != '"') p++;
                        nb__sbuf_put(&val, s, (size_t)(p - s));
                        if (p >= end) break;
                        if (p + 1 < end && p[1] == '"') { /* "" is a quote */
                            nb__sbuf_put(&val, "\"", 1);
                            p += 2;
                            continue;
                        }
                        p++;
                        closed = true;
                    }
                    if (!closed) {
                        rc = nb_error("%s:%d: unterminated string", name, nb__dlg_line_at(buf, open));
                        break;
                    }
                } else if (end - p >= 2 && p[0] == '<' && p[1] == '<') {
                    const char *open = p;
                    const char *r = NULL;
                    for (const char *s = p + 2; s + 1 < end; s++)
                        if (s[0] == '>' && s[1] == '>') {
                            r = s;
                            break;
                        }
                    if (!r) {
                        rc = nb_error("%s:%d: unterminated <<raw string>>", name, nb__dlg_line_at(buf, open));
                        break;
                    }
                    p = r + 2;
                } else if (p < end && *p == '{') {
                    break; /* a macro as the value: the loop above skips it */
                } else {
                    const char *s = p;
                    while (p < end && *p != '\n' && *p != '#' && *p != '+') p++;
                    const char *e = p;
                    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
                    nb__sbuf_put(&val, s, (size_t)(e - s));
                }
                const char *r = p;
                while (r < end && (*r == ' ' || *r == '\t' || *r == '\r')) r++;
                if (r < end && *r == '+') {
                    for (p = r + 1; p < end && isspace((unsigned char)*p); p++) {}
                    continue;
                }
                break;
            }
            if (rc) break;
            if (msg_depth == depth && !val.oom) {
                if (kl == 7 && !strncmp(k, "speaker", 7)) {
                    speaker.n = 0;
                    nb__sbuf_put(&speaker, val.p ? val.p : "", val.n);
                } else if (kl == 7 && !strncmp(k, "message", 7)) {
                    text.n = 0;
                    nb__sbuf_put(&text, val.p ? val.p : "", val.n);
                }
            }
            if (val.oom || speaker.oom || text.oom) d->oom = true;
            continue;
        }
        p++; /* anything else (stray characters) */
    }
    free(speaker.p);
    free(text.p);
    free(val.p);
    return nb__dlg_finish(d, m, rc, name);
}
