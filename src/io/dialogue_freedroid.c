/* dialogue_freedroid.c — Freedroid RPG's dialogs in Lua: the NPC's
 * X:says(_"...") and the player's node texts, each NPC a group (see
 * dialogue_src.h). */
#include "dialogue_build.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the Lua string literal at *pp ("..." or '...', with escapes) into b;
 * returns 1, 0 if *pp is not at a string, -1 if it is unterminated. */
static int lua_string(const char **pp, const char *end, nb__sbuf *b) {
    const char *p = *pp;
    if (p >= end || (*p != '"' && *p != '\'')) return 0;
    char q = *p++;
    b->n = 0;
    nb__sbuf_put(b, "", 0);
    while (p < end && *p != q) {
        if (*p == '\n') return -1;
        if (*p == '\\' && p + 1 < end) {
            char e = p[1];
            char c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
            nb__sbuf_put(b, &c, 1);
            p += 2;
            continue;
        }
        nb__sbuf_put(b, p++, 1);
    }
    if (p >= end) return -1;
    *pp = p + 1;
    return 1;
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && isspace((unsigned char)*p)) p++;
    return p;
}

int nb__dlg_parse_freedroid(nb__dlg *d, const char *name, const char *buf, size_t len) {
    nb__dlg_mark m = nb__dlg_mark_of(d);
    const char *p = buf, *end = buf + len;
    nb__sbuf s = {0};
    int rc = 0;
    while (p < end && !rc) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') { /* comments, --[[ long ]] ones too */
            if (end - p >= 4 && p[2] == '[' && p[3] == '[') {
                const char *e = memmem(p + 4, (size_t)(end - p - 4), "]]", 2);
                if (!e) {
                    rc = nb_error("%s:%d: unterminated --[[ comment", name, nb__dlg_line_at(buf, p));
                    break;
                }
                p = e + 2;
            } else {
                while (p < end && *p != '\n') p++;
            }
            continue;
        }
        if (*p == '"' || *p == '\'') { /* a string outside the forms below */
            const char *open = p;
            if (lua_string(&p, end, &s) < 0) {
                rc = nb_error("%s:%d: unterminated string", name, nb__dlg_line_at(buf, open));
                break;
            }
            continue;
        }
        if (end - p >= 2 && p[0] == '[' && p[1] == '[') { /* a long string: skipped */
            const char *e = memmem(p + 2, (size_t)(end - p - 2), "]]", 2);
            p = e ? e + 2 : end;
            continue;
        }
        if (!(isalpha((unsigned char)*p) || *p == '_')) {
            p++;
            continue;
        }
        const char *id = p;
        while (p < end && (isalnum((unsigned char)*p) || *p == '_')) p++;
        size_t il = (size_t)(p - id);
        if (il > 0 && id > buf && (isalnum((unsigned char)id[-1]) || id[-1] == '_' || id[-1] == '.')) continue;
        const char *q = skip_ws(p, end);
        if (q < end && *q == '=' && (q + 1 >= end || q[1] != '=')) {
            const char *v = skip_ws(q + 1, end);
            bool tr = v < end && *v == '_';
            if (tr) v = skip_ws(v + 1, end);
            if ((il == 2 && !strncmp(id, "id", 2)) || (il == 4 && !strncmp(id, "text", 4) && tr)) {
                int r = lua_string(&v, end, &s);
                if (r < 0) {
                    rc = nb_error("%s:%d: unterminated string", name, nb__dlg_line_at(buf, q));
                    break;
                }
                if (r == 0 || s.oom) continue;
                if (il == 2) { /* a node: its own exchange */
                    nb__dlg_begin(d, NB_DLG_FREEDROID, name);
                } else if (d->open) {
                    nb__dlg_say(d, "Tux", s.p, s.n); /* the node's text is the player's line */
                }
                p = v;
            } else if (end - v >= 8 && !strncmp(v, "function", 8) && !(il == 4 && !strncmp(id, "code", 4))) {
                /* FirstTime = function(): a scene of its own; a node's code = function() is part of the node */
                nb__dlg_begin(d, NB_DLG_FREEDROID, name);
            }
            continue;
        }
        if (q < end && *q == ':' && end - q >= 6 && !strncmp(q + 1, "says", 4)) {
            const char *v = skip_ws(q + 5, end);
            if (v >= end || *v != '(') continue;
            v = skip_ws(v + 1, end);
            if (v < end && *v == '_') v = skip_ws(v + 1, end);
            int r = lua_string(&v, end, &s);
            if (r < 0) {
                rc = nb_error("%s:%d: unterminated string", name, nb__dlg_line_at(buf, q));
                break;
            }
            if (r == 1 && !s.oom) {
                char who[40];
                snprintf(who, sizeof who, "%.*s", (int)(il < 39 ? il : 39), id);
                if (!d->open) nb__dlg_begin(d, NB_DLG_FREEDROID, name);
                nb__dlg_say(d, who, s.p, s.n);
                p = v;
            }
        }
        if (s.oom) d->oom = true;
    }
    if (s.oom) d->oom = true;
    free(s.p);
    return nb__dlg_finish(d, m, rc, name);
}
