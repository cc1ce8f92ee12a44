/* fuzz_dialogue_src.c — libFuzzer target: the parsers of the default dialogue
 * corpus (src/io/dialogue_src.h) on arbitrary bytes, the first byte picking
 * the parser (WML, Endless Sky, fortunes, Freedroid Lua, R .rdb, SWORD zText:
 * two bytes each give the sizes of the .bzs and .bzv parts, the rest is .bzz). Each must
 * add well-formed conversations or fail with a message and add nothing;
 * then the pairs and the CSV of every split must hold together. Never crash,
 * leak or hit UB. */
#include "../../src/io/dialogue_src.h"
#include "nabla.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    nb__dlg d;
    nb__dlg_init(&d);
    /* a conversation already there must survive a failed parse */
    nb__dlg_begin(&d, NB_DLG_FORTUNES, "before");
    nb__dlg_say(&d, "a", "hi", 2);
    nb__dlg_say(&d, "b", "hello", 5);
    nb__dlg_end(&d);
    char *text = malloc(size > 1 ? size - 1 : 1); /* exactly the bytes, no NUL after them */
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    nb_clear_error();
    int rc;
    switch (data[0] % 6) {
    case 0: rc = nb__dlg_parse_wml(&d, "f.cfg", text, size - 1); break;
    case 1: rc = nb__dlg_parse_endless_sky(&d, "f.txt", text, size - 1); break;
    case 2: rc = nb__dlg_parse_fortunes(&d, "f", text, size - 1); break;
    case 3: rc = nb__dlg_parse_freedroid(&d, "f.lua", text, size - 1); break;
    case 4: rc = nb__dlg_parse_rdb(&d, "f.rdb", (const uint8_t *)text, size - 1); break;
    default: {
        const uint8_t *t = (const uint8_t *)text;
        size_t n = size - 1, ns = n >= 2 ? (size_t)(t[0] | t[1] << 8) : 0, nv = n >= 4 ? (size_t)(t[2] | t[3] << 8) : 0;
        size_t rest = n >= 4 ? n - 4 : 0;
        if (ns > rest) ns = rest;
        if (nv > rest - ns) nv = rest - ns;
        rc = nb__dlg_parse_ztext(&d, "f", t + 4, ns, t + 4 + ns, nv, t + 4 + ns + nv, rest - ns - nv);
        break;
    }
    }
    if (rc != 0 && rc != -1) abort();
    if (rc && (!nb_errmsg()[0] || d.nconvs != 1 || d.nturns != 2 || d.ngroups != 1)) abort();
    if (d.open) abort();
    int64_t turns = 0;
    for (int64_t c = 0; c < d.nconvs; c++) {
        const nb__dlg_conv *cv = &d.convs[c];
        if (cv->n < 2 || cv->first != turns || cv->group < 0 || cv->group >= d.ngroups) abort();
        for (int32_t t = 0; t < cv->n; t++) {
            const char *s = d.turns[cv->first + t];
            size_t n = strlen(s);
            if (n < 9 || strcmp(s + n - 8, " __eou__") || strpbrk(s, "\r\n\t") || s[0] == ' ') abort();
        }
        turns += cv->n;
    }
    if (turns != d.nturns) abort();
    int64_t np;
    nb__dlg_pair *p = nb__dlg_pairs(&d, 1, &np);
    if (!p) abort();
    for (int s = 0; s < 3; s++) {
        size_t len;
        char *csv = nb__dlg_csv(&d, p, np, s, 1, &len);
        if (!csv) continue; /* too few responses to draw from */
        nb_dialogue *t = nb_dialogue_parse(csv, len, "fuzz.csv");
        int64_t ns = 0;
        for (int64_t i = 0; i < np; i++) ns += p[i].split == s;
        if (ns && (!t || t->n != (s ? ns : 2 * ns))) abort();
        nb_dialogue_free(t);
        free(csv);
    }
    free(p);
    free(text);
    nb__dlg_free(&d);
    return 0;
}
