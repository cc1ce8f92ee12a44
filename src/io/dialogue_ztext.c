/* dialogue_ztext.c — the World English Bible as a SWORD zText module: the
 * block and verse indexes, the zlib blocks of OSIS XML, chapters as groups
 * and runs of verses with quotation marks as conversations (see
 * dialogue_src.h). */
#include "dialogue_build.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The text of one OSIS verse entry into b: tags removed, with the contents
 * of <note> and <title> (footnotes, section headings); the five XML entities
 * decoded. Sets *chapter to the osisID of a <chapter> start in it ("" if none). */
static void osis_text(const char *s, size_t n, nb__sbuf *b, char *chapter, size_t chap_cap) {
    b->n = 0;
    nb__sbuf_put(b, "", 0);
    chapter[0] = 0;
    int skip = 0; /* inside <note> or <title> */
    for (size_t i = 0; i < n;) {
        if (s[i] == '<') {
            const char *e = memchr(s + i, '>', n - i);
            size_t tl = e ? (size_t)(e - (s + i)) + 1 : n - i;
            const char *t = s + i;
            bool closing = tl > 1 && t[1] == '/', selfclose = tl > 2 && t[tl - 2] == '/';
            const char *nm = t + 1 + closing;
            bool hidden = (tl > 5 && !strncmp(nm, "note", 4) && (nm[4] == ' ' || nm[4] == '>' || nm[4] == '/')) ||
                          (tl > 6 && !strncmp(nm, "title", 5) && (nm[5] == ' ' || nm[5] == '>' || nm[5] == '/'));
            if (hidden && !selfclose) skip += closing ? (skip > 0 ? -1 : 0) : 1;
            if (!closing && tl > 9 && !strncmp(nm, "chapter ", 8)) {
                const char *id = memmem(t, tl, "osisID=\"", 8);
                if (id) {
                    const char *q = memchr(id + 8, '"', tl - (size_t)(id + 8 - t));
                    if (q) snprintf(chapter, chap_cap, "%.*s", (int)(q - id - 8), id + 8);
                }
            }
            i += tl;
            continue;
        }
        if (skip) {
            i++;
            continue;
        }
        if (s[i] == '&') {
            static const char *const ent[][2] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""},
                                                 {"&apos;", "'"}};
            size_t k = 0;
            while (k < 5 && !(n - i >= strlen(ent[k][0]) && !strncmp(s + i, ent[k][0], strlen(ent[k][0])))) k++;
            if (k < 5) {
                nb__sbuf_puts(b, ent[k][1]);
                i += strlen(ent[k][0]);
                continue;
            }
        }
        nb__sbuf_put(b, s + i, 1);
        i++;
    }
}

static bool has_quote_mark(const char *s) { return strstr(s, "\xE2\x80\x9C") || strstr(s, "\xE2\x80\x9D"); }

#define ZTEXT_MAX_BLOCK (64u << 20)
int nb__dlg_parse_ztext(nb__dlg *d, const char *name, const uint8_t *bzs, size_t nbzs, const uint8_t *bzv,
                        size_t nbzv, const uint8_t *bzz, size_t nbzz) {
    nb__dlg_mark m = nb__dlg_mark_of(d);
    if (nbzs % 12 || nbzv % 10)
        return nb_error("%s: the index sizes (%zu bytes of .bzs, %zu of .bzv) are not whole 12- and 10-byte entries",
                        name, nbzs, nbzv);
    int64_t nblocks = (int64_t)(nbzs / 12), cur = -1;
    uint8_t *block = NULL;
    uLongf blen = 0;
    nb__sbuf t = {0};
    char chapter[128], group[700];
    snprintf(group, sizeof group, "%s:start", name);
    int rc = 0;
    for (size_t v = 0; v < nbzv / 10 && !rc; v++) {
        const uint8_t *e = bzv + v * 10;
        uint32_t b = nb__le32(e), off = nb__le32(e + 4), size = nb__le16(e + 8);
        if (size == 0) continue; /* an empty slot of the versification */
        if (b >= nblocks) {
            rc = nb_error("%s: verse entry %zu: block %u of %lld", name, v, b, (long long)nblocks);
            break;
        }
        if ((int64_t)b != cur) {
            const uint8_t *be = bzs + (size_t)b * 12;
            uint32_t zoff = nb__le32(be), zsize = nb__le32(be + 4), usize = nb__le32(be + 8);
            if ((uint64_t)zoff + zsize > nbzz || usize > ZTEXT_MAX_BLOCK) {
                rc = nb_error("%s: block %u: %u bytes at %u outside the %zu bytes of .bzz (or over %u MiB)", name, b,
                              zsize, zoff, nbzz, ZTEXT_MAX_BLOCK >> 20);
                break;
            }
            if ((uint64_t)usize > (uint64_t)zsize * 1032) { /* deflate's limit, as in the .rdb reader */
                rc = nb_error("%s: block %u: %u bytes uncompressed cannot come from its %u bytes", name, b, usize, zsize);
                break;
            }
            free(block);
            block = nb__malloc(usize ? usize : 1);
            if (!block) {
                rc = nb_error("%s: out of memory", name);
                break;
            }
            blen = usize;
            if (uncompress(block, &blen, bzz + zoff, zsize) != Z_OK || blen != usize) {
                rc = nb_error("%s: block %u: not a zlib stream of %u bytes", name, b, usize);
                break;
            }
            cur = b;
        }
        if ((uint64_t)off + size > blen) {
            rc = nb_error("%s: verse entry %zu: %u bytes at %u outside its block of %lu", name, v, size, off,
                          (unsigned long)blen);
            break;
        }
        osis_text((const char *)block + off, size, &t, chapter, sizeof chapter);
        if (t.oom) {
            d->oom = true;
            break;
        }
        if (chapter[0]) { /* a chapter is a group */
            nb__dlg_end(d);
            snprintf(group, sizeof group, "%s:%s", name, chapter);
        }
        if (!t.n || !t.p[strspn(t.p, " \t\r\n")]) continue; /* headings only */
        if (has_quote_mark(t.p)) {
            if (!d->open) nb__dlg_begin(d, NB_DLG_BIBLE, group);
            nb__dlg_say(d, NULL, t.p, t.n);
        } else {
            nb__dlg_end(d);
        }
    }
    free(block);
    free(t.p);
    return nb__dlg_finish(d, m, rc, name);
}
