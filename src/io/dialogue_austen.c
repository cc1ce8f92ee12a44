/* dialogue_austen.c — Jane Austen's novels as R's lazy-load database
 * (.rdb) ships them: XDR-serialized character vectors, inflated with zlib,
 * one per novel; chapters are groups and runs of quoted paragraphs are
 * conversations (see dialogue_src.h). */
#include "dialogue_build.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

static bool quoted_paragraph(const char *s) {
    return s[0] == '"' || !strncmp(s, "\xE2\x80\x9C", 3);
}

int nb__dlg_add_novel(nb__dlg *d, const char *name, char *const *lines, int64_t nlines) {
    nb__dlg_mark m = nb__dlg_mark_of(d);
    const char *title = NULL;
    for (int64_t i = 0; i < nlines && !title; i++)
        if (lines[i] && lines[i][strspn(lines[i], " \t")]) title = lines[i] + strspn(lines[i], " \t");
    if (!title) return 0;
    char group[600];
    int chapter = 0;
    snprintf(group, sizeof group, "%s:%.80s:%d", name, title, chapter);
    nb__sbuf para = {0};
    for (int64_t i = 0; i <= nlines; i++) {
        const char *l = i < nlines && lines[i] ? lines[i] + strspn(lines[i], " \t") : "";
        if (*l) {
            if (para.n) nb__sbuf_put(&para, " ", 1);
            nb__sbuf_puts(&para, l);
            continue;
        }
        if (!para.n || para.oom) continue;
        if (!strncasecmp(para.p, "chapter ", 8)) {
            nb__dlg_end(d);
            snprintf(group, sizeof group, "%s:%.80s:%d", name, title, ++chapter);
        } else if (quoted_paragraph(para.p)) {
            if (!d->open) nb__dlg_begin(d, NB_DLG_AUSTEN, group);
            nb__dlg_say(d, NULL, para.p, para.n);
        } else {
            nb__dlg_end(d);
        }
        para.n = 0;
    }
    if (para.oom) d->oom = true;
    free(para.p);
    return nb__dlg_finish(d, m, 0, name);
}

/* XDR reads over an inflated object. */
typedef struct {
    const uint8_t *p, *end;
    bool bad;
} xdr;
static int32_t xdr_int(xdr *x) {
    if (x->end - x->p < 4) {
        x->bad = true;
        return 0;
    }
    int32_t v = (int32_t)nb__be32(x->p);
    x->p += 4;
    return v;
}

/* One inflated object: a character vector becomes a novel (others are
 * left alone). Returns 0 or -1 (malformed). */
static int rdb_object(nb__dlg *d, const char *name, int k, const uint8_t *obj, size_t n) {
    xdr x = {obj, obj + n, false};
    if (n < 2 || obj[0] != 'X' || obj[1] != '\n') return nb_error("%s: object %d: not R's XDR serialization", name, k);
    x.p += 2;
    int version = xdr_int(&x);
    xdr_int(&x);
    xdr_int(&x);
    if (version == 3) {
        int32_t nl = xdr_int(&x);
        if (nl < 0 || nl > x.end - x.p) x.bad = true;
        else x.p += nl;
    } else if (version != 2) {
        x.bad = true;
    }
    int32_t flags = xdr_int(&x);
    if (x.bad) return nb_error("%s: object %d: truncated or unknown serialization header", name, k);
    if ((flags & 0xFF) != 16) return 0; /* not a character vector */
    int64_t len = xdr_int(&x);
    if (len == -1) len = (int64_t)xdr_int(&x) << 32 | (uint32_t)xdr_int(&x);
    if (x.bad || len < 0 || len > (x.end - x.p) / 8)
        return nb_error("%s: object %d: a character vector of %lld strings does not fit in its %zu bytes", name, k,
                        (long long)len, n);
    char **lines = nb__calloc((size_t)len + 1, sizeof *lines);
    if (!lines) return nb_error("%s: out of memory", name);
    int rc = 0;
    for (int64_t i = 0; i < len && !rc; i++) {
        int32_t cf = xdr_int(&x), cl = xdr_int(&x);
        if (x.bad || (cf & 0xFF) != 9 || cl < -1 || cl > x.end - x.p) {
            rc = nb_error("%s: object %d: string %lld is not a CHARSXP that fits", name, k, (long long)i);
            break;
        }
        if (cl == -1) continue; /* NA */
        bool latin1 = (cf >> 12) & 4;
        char *s = nb__malloc(latin1 ? (size_t)cl * 2 + 1 : (size_t)cl + 1);
        if (!s) {
            rc = nb_error("%s: out of memory", name);
            break;
        }
        if (latin1) {
            size_t o = 0;
            for (int32_t j = 0; j < cl; j++) {
                unsigned c = x.p[j];
                if (c < 0x80) s[o++] = (char)c;
                else s[o++] = (char)(0xC0 | c >> 6), s[o++] = (char)(0x80 | (c & 0x3F));
            }
            s[o] = 0;
        } else {
            memcpy(s, x.p, (size_t)cl);
            s[cl] = 0;
        }
        x.p += cl;
        lines[i] = s;
    }
    if (!rc) {
        char nm[600];
        snprintf(nm, sizeof nm, "%s#%d", name, k);
        rc = nb__dlg_add_novel(d, nm, lines, len);
    }
    for (int64_t i = 0; i < len; i++) free(lines[i]);
    free(lines);
    return rc;
}

#define RDB_MAX_OBJECT (256u << 20)
int nb__dlg_parse_rdb(nb__dlg *d, const char *name, const uint8_t *buf, size_t len) {
    nb__dlg_mark m = nb__dlg_mark_of(d);
    size_t pos = 0;
    int rc = 0;
    for (int k = 0; pos < len && !rc; k++) {
        if (len - pos < 5) {
            rc = nb_error("%s: object %d at byte %zu: truncated length", name, k, pos);
            break;
        }
        uint32_t ulen = nb__be32(buf + pos);
        if (ulen > RDB_MAX_OBJECT) {
            rc = nb_error("%s: object %d at byte %zu: %u bytes uncompressed, over the %u MiB limit", name, k, pos,
                          ulen, RDB_MAX_OBJECT >> 20);
            break;
        }
        /* Deflate turns at most 1032 bytes into every byte it writes: a size
         * beyond that is refused before it is allocated (7 bytes asked for
         * 224 MiB). */
        size_t rest = len - pos - 4;
        if ((uint64_t)ulen > (uint64_t)rest * 1032) {
            rc = nb_error("%s: object %d at byte %zu: %u bytes uncompressed cannot come from the %zu bytes left", name,
                          k, pos, ulen, rest);
            break;
        }
        uint8_t *obj = nb__malloc(ulen ? ulen : 1);
        if (!obj) {
            rc = nb_error("%s: out of memory", name);
            break;
        }
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit(&z) != Z_OK) {
            free(obj);
            rc = nb_error("%s: zlib: cannot start inflating", name);
            break;
        }
        z.next_in = (Bytef *)(buf + pos + 4);
        z.avail_in = (uInt)((len - pos - 4) > 0x7FFFFFFF ? 0x7FFFFFFF : len - pos - 4);
        z.next_out = obj;
        z.avail_out = ulen;
        int zr = inflate(&z, Z_FINISH);
        size_t used = (size_t)z.total_in, got = (size_t)z.total_out;
        inflateEnd(&z);
        if (zr != Z_STREAM_END || got != ulen) {
            free(obj);
            rc = nb_error("%s: object %d at byte %zu: not a whole zlib stream of %u bytes (%s)", name, k, pos, ulen,
                          zr == Z_BUF_ERROR ? "truncated or longer than said" : zr == Z_DATA_ERROR ? "corrupt data"
                                                                                              : "zlib error");
            break;
        }
        rc = rdb_object(d, name, k, obj, got);
        free(obj);
        pos += 4 + used;
    }
    return nb__dlg_finish(d, m, rc, name);
}
