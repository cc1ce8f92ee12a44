/* chat_corpus.c — `nabla chat corpus`: the default dialogue corpus, built
 * from the dialogue that Debian packages ship (installed under /, or
 * extracted under SRC_DIR by scripts/dialogue-corpus.sh) and written as the
 * Ubuntu Dialogue Corpus's train.csv, valid.csv and test.csv with the counts
 * in counts.json. The parsing, pairing, split and CSV are in
 * src/io/dialogue_*.c (dialogue_src.h). */
#include "../src/io/dialogue_src.h"
#include "chat.h"
#include "cli.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { PARSE_WML, PARSE_ES, PARSE_FORTUNE, PARSE_LUA, PARSE_RDB, PARSE_ZTEXT } parse_kind;

/* Where each source lies (relative to the root) and which files to read. */
static const struct source {
    int id;
    const char *path;   /* a folder (walked) or a file */
    const char *ext;    /* the files' extension; NULL: fortune files */
    const char *parent; /* the folder the files must be in ("dialogs"), or NULL */
    bool recurse;
    parse_kind kind;
    const char *package;
} sources[] = {
    {NB_DLG_WESNOTH, "usr/share/games/wesnoth/1.16/data/campaigns", ".cfg", NULL, true, PARSE_WML,
     "wesnoth-1.16-data and the campaigns wesnoth-1.16-{did,dm,dw,ei,httt,l,low,nr,sof,sota,sotbe,thot,trow,tsg,ttb,utbs}"},
    {NB_DLG_ENDLESS_SKY, "usr/share/games/endless-sky/data", ".txt", NULL, true, PARSE_ES, "endless-sky-data"},
    {NB_DLG_FORTUNES, "usr/share/games/fortunes", NULL, NULL, false, PARSE_FORTUNE, "fortunes"},
    {NB_DLG_FREEDROID, "usr/share/freedroidrpg/data", ".lua", "dialogs", true, PARSE_LUA, "freedroidrpg-data"},
    {NB_DLG_AUSTEN, "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb", NULL, NULL, false, PARSE_RDB,
     "r-cran-janeaustenr"},
    {NB_DLG_BIBLE, "usr/share/sword/modules/texts/ztext/engWEB2015eb", ".bzs", NULL, false, PARSE_ZTEXT,
     "sword-text-web"},
};
#define NSRC ((int)(sizeof sources / sizeof sources[0]))

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static int strlist_add(strlist *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The files of source src under folder dir (full path; rel: relative to the
 * root), added to out as relative paths. */
static int walk(const struct source *src, const char *root, const char *rel, strlist *out) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", root, rel);
    DIR *dir = opendir(full);
    if (!dir) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char r[4096], f[8192];
        snprintf(r, sizeof r, "%s/%s", rel, e->d_name);
        snprintf(f, sizeof f, "%s/%s", root, r);
        struct stat st;
        if (lstat(f, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            if (src->recurse) rc = walk(src, root, r, out);
            continue;
        }
        if (!S_ISREG(st.st_mode)) continue; /* fortunes' .u8 names are links to the same files */
        if (src->ext ? !ends_with(e->d_name, src->ext) : strchr(e->d_name, '.') != NULL) continue;
        if (src->parent) {
            const char *slash = strrchr(rel, '/'), *last = slash ? slash + 1 : rel;
            if (strcmp(last, src->parent)) continue;
        }
        if (strlist_add(out, r)) rc = -1;
    }
    closedir(dir);
    return rc;
}

typedef struct {
    int64_t files, skipped, convs, groups[3], pairs[3];
    bool found;
} src_count;

/* The counts as JSON, or NULL when memory runs out: cJSON takes a NULL
 * parent without complaint, so every addition is checked, lest a manifest
 * with missing entries be written. */
static cJSON *counts_json(const src_count *cnt, const char *root, const char *out, long seed) {
    static const char *const split[3] = {"train", "valid", "test"};
    bool ok = true;
#define ADD(call) (ok = ok && (call) != NULL)
    cJSON *j = cJSON_CreateObject(), *srcs = cJSON_AddObjectToObject(j, "sources");
    ok = j && srcs;
    ADD(cJSON_AddStringToObject(j, "source_root", root));
    ADD(cJSON_AddStringToObject(j, "out", out));
    ADD(cJSON_AddNumberToObject(j, "seed", (double)seed));
    int64_t tot[3] = {0};
    for (int s = 0; s < NB_DLG_NSOURCES && ok; s++) {
        cJSON *o = cJSON_AddObjectToObject(srcs, nb__dlg_source_name(s));
        ok = o != NULL;
        ADD(cJSON_AddBoolToObject(o, "found", cnt[s].found));
        ADD(cJSON_AddNumberToObject(o, "files", (double)cnt[s].files));
        ADD(cJSON_AddNumberToObject(o, "skipped", (double)cnt[s].skipped));
        ADD(cJSON_AddNumberToObject(o, "conversations", (double)cnt[s].convs));
        cJSON *g = cJSON_AddObjectToObject(o, "groups"), *p = cJSON_AddObjectToObject(o, "pairs");
        ok = ok && g && p;
        for (int k = 0; k < 3 && ok; k++) {
            ADD(cJSON_AddNumberToObject(g, split[k], (double)cnt[s].groups[k]));
            ADD(cJSON_AddNumberToObject(p, split[k], (double)cnt[s].pairs[k]));
            tot[k] += cnt[s].pairs[k];
        }
    }
    cJSON *t = ok ? cJSON_AddObjectToObject(j, "pairs") : NULL;
    ok = ok && t;
    for (int k = 0; k < 3 && ok; k++) ADD(cJSON_AddNumberToObject(t, split[k], (double)tot[k]));
    ADD(cJSON_AddNumberToObject(j, "total_pairs", (double)(tot[0] + tot[1] + tot[2])));
#undef ADD
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Makes the output folder (its parent must exist); 0, or -1 after a message. */
static int make_out_dir(const char *cmd, const char *out) {
    struct stat st;
    if (!stat(out, &st)) {
        if (!S_ISDIR(st.st_mode)) {
            nb_cli_fail(cmd, "--out '%s': not a folder", out);
            return -1;
        }
    } else if (mkdir(out, 0777) && errno != EEXIST) {
        if (errno == ENOENT) nb_cli_fail(cmd, "--out '%s': its parent folder does not exist", out);
        else nb_cli_fail(cmd, "--out '%s': cannot create the folder: %s", out, strerror(errno));
        return -1;
    }
    if (access(out, W_OK | X_OK)) {
        nb_cli_fail(cmd, "--out '%s': folder not writable: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

int nb_chat_corpus_main(int argc, char **argv) {
    const char *cmd = "chat corpus", *out = NULL;
    long seed = 1;
    bool json = false;
    nb_flag flags[] = {
        {"--out", NB_FLAG_STR, &out, "the folder to write train.csv, valid.csv, test.csv and counts.json in "
                                      "(made if missing; its parent must exist)",
         .meta = "DIR", .def = "required"},
        NB_FLAG_SEED(&seed, "the split by group and of the drawn responses"),
        NB_FLAG_JSON(&json),
    };
    nb_cli cli = {
        .cmd = cmd, .args = "[SRC_DIR] ",
        .about = "Builds the default dialogue corpus of `nabla chat train` from the dialogue that Debian packages\n"
                 "ship, read from / (installed packages) or from SRC_DIR, a folder holding the same paths (usr/...)\n"
                 "as scripts/dialogue-corpus.sh extracts them from the .deb files:\n"
                 "  wesnoth      usr/share/games/wesnoth/1.16/data/campaigns/**.cfg  [message] speaker= message=\n"
                 "  endless-sky  usr/share/games/endless-sky/data/**.txt   conversation: narration, choice, reply\n"
                 "  fortunes     usr/share/games/fortunes/*                <nick> IRC lines, Q:/A: riddles\n"
                 "  freedroid    usr/share/freedroidrpg/data/**/dialogs/*.lua   Npc:says(_\"...\"), node text\n"
                 "  austen       usr/lib/R/site-library/janeaustenr/data/Rdata.rdb  consecutive quoted paragraphs\n"
                 "  bible        usr/share/sword/modules/texts/ztext/engWEB2015eb/{ot,nt}.bz{s,v,z}  (World English\n"
                 "               Bible, SWORD zText) consecutive verses of a chapter with quotation marks\n"
                 "A turn is the utterances of one speaker in a row; each turn after the first of a conversation\n"
                 "is a response, its context the (up to 8) turns before it. Groups (a scenario file, a\n"
                 "conversation block, a fortune, an NPC's file, a chapter of a novel or of the Bible) go whole\n"
                 "into train, valid or test, 80/10/10 of each source's pairs, shuffled by --seed. Output in\n"
                 "the Ubuntu Dialogue Corpus layout: train.csv Context,Utterance,Label (each context with its\n"
                 "response, 1, and with a random other response of train, 0); valid.csv and test.csv\n"
                 "Context,Ground Truth Utterance,Distractor_0..8 (drawn from the same split, all different from\n"
                 "the truth); __eou__ ends an utterance, __eot__ a turn. A malformed source file is skipped with\n"
                 "a warning naming it.",
        .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 0, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    if (!out) return nb_cli_usage_error(&cli, "--out DIR is required");
    const char *root = npos ? pos[0] : "/";
    struct stat st;
    if (stat(root, &st) || !S_ISDIR(st.st_mode)) return nb_cli_fail(cmd, "SRC_DIR '%s': not a folder", root);
    /* An --out that cannot be written is a command line that cannot run:
     * status 2, as every other command's output check gives. */
    if (make_out_dir(cmd, out)) {
        nb_cli_usage_line(&cli);
        return 2;
    }

    nb__dlg d;
    nb__dlg_init(&d);
    src_count cnt[NB_DLG_NSOURCES];
    memset(cnt, 0, sizeof cnt);
    int rc = 1;
    nb__dlg_pair *pairs = NULL;
    cJSON *j = NULL;
    char *text = NULL;
    double t0 = nb_cli_now();
    for (int s = 0; s < NSRC; s++) {
        const struct source *src = &sources[s];
        src_count *c = &cnt[src->id];
        strlist files = {0};
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", root, src->path);
        if (src->kind == PARSE_RDB) {
            if (!access(full, R_OK) && strlist_add(&files, src->path)) {
                free(files.v);
                goto oom;
            }
        } else if (walk(src, root, src->path, &files)) {
            nb_cli_warn(cmd, "%s: cannot list the folder: %s", full, strerror(errno));
        }
        if (files.n) qsort(files.v, files.n, sizeof *files.v, cmp_str);
        c->found = files.n > 0;
        if (!files.n) nb_cli_warn(cmd, "%s: no %s files under %s (package %s)", nb__dlg_source_name(src->id),
                                  nb__dlg_source_name(src->id), full, src->package);
        int64_t convs0 = d.nconvs;
        for (size_t f = 0; f < files.n; f++) {
            snprintf(full, sizeof full, "%s/%s", root, files.v[f]);
            size_t len;
            uint8_t *buf = nb_read_file(full, &len);
            int r = -1;
            if (buf && src->kind == PARSE_ZTEXT) { /* X.bzs with X.bzv and X.bzz */
                size_t lv = 0, lz = 0, n = strlen(full);
                memcpy(full + n - 4, ".bzv", 4);
                uint8_t *bzv = nb_read_file(full, &lv), *bzz = NULL;
                memcpy(full + n - 4, ".bzz", 4);
                if (bzv) bzz = nb_read_file(full, &lz);
                full[n - 4] = 0;
                if (bzz) r = nb__dlg_parse_ztext(&d, full, buf, len, bzv, lv, bzz, lz);
                free(bzv);
                free(bzz);
                free(buf);
                buf = NULL;
            }
            if (buf) {
                const char *b = (const char *)buf;
                switch (src->kind) {
                case PARSE_WML: r = nb__dlg_parse_wml(&d, full, b, len); break;
                case PARSE_ES: r = nb__dlg_parse_endless_sky(&d, full, b, len); break;
                case PARSE_FORTUNE: r = nb__dlg_parse_fortunes(&d, full, b, len); break;
                case PARSE_LUA: r = nb__dlg_parse_freedroid(&d, full, b, len); break;
                case PARSE_RDB: r = nb__dlg_parse_rdb(&d, full, buf, len); break;
                case PARSE_ZTEXT: break;
                }
                free(buf);
            }
            c->files++;
            if (r) {
                c->skipped++;
                nb_cli_warn(cmd, "skipped a malformed file: %s", nb_errmsg()); /* the message names it */
            }
        }
        c->convs = d.nconvs - convs0;
        for (size_t f = 0; f < files.n; f++) free(files.v[f]);
        free(files.v);
    }
    int64_t npairs;
    pairs = nb__dlg_pairs(&d, (uint64_t)seed, &npairs);
    if (!pairs) {
        if (npairs == 0 && d.nconvs == 0)
            nb_cli_fail(cmd, "no dialogue found under %s: install the packages (see --help) or run "
                             "scripts/dialogue-corpus.sh, which extracts them into a folder",
                        root);
        else
            nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    {
        /* counts: pairs and groups per source and split */
        int8_t *seen = calloc((size_t)d.ngroups * 3 + 1, 1);
        if (!seen) goto oom;
        for (int64_t i = 0; i < npairs; i++) {
            int src = d.convs[pairs[i].conv].source, g = d.convs[pairs[i].conv].group, sp = pairs[i].split;
            cnt[src].pairs[sp]++;
            if (!seen[g * 3 + sp]) seen[g * 3 + sp] = 1, cnt[src].groups[sp]++;
        }
        free(seen);
    }
    static const char *const split_file[3] = {"train.csv", "valid.csv", "test.csv"};
    FILE *o = json ? stderr : stdout;
    for (int sp = 0; sp < 3; sp++) {
        size_t len;
        text = nb__dlg_csv(&d, pairs, npairs, sp, (uint64_t)seed, &len);
        if (!text) {
            nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", out, split_file[sp]);
        if (nb_write_file_atomic(path, text, len)) {
            nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        free(text);
        text = NULL;
    }
    j = counts_json(cnt, root, out, seed);
    char *js = j ? cJSON_Print(j) : NULL;
    if (!js) goto oom;
    char path[4096];
    snprintf(path, sizeof path, "%s/counts.json", out);
    size_t jl = strlen(js);
    js[jl] = '\n'; /* cJSON leaves room for the NUL; the file ends with a newline */
    int w = nb_write_file_atomic(path, js, jl + 1);
    free(js);
    if (w) {
        nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    fprintf(o, "%-12s %6s %7s %7s %7s %7s %7s %7s\n", "source", "files", "skipped", "convs", "train", "valid", "test",
            "groups");
    int64_t tot[3] = {0}, totg = 0;
    for (int s = 0; s < NB_DLG_NSOURCES; s++) {
        int64_t g = cnt[s].groups[0] + cnt[s].groups[1] + cnt[s].groups[2];
        fprintf(o, "%-12s %6lld %7lld %7lld %7lld %7lld %7lld %7lld\n", nb__dlg_source_name(s),
                (long long)cnt[s].files, (long long)cnt[s].skipped, (long long)cnt[s].convs,
                (long long)cnt[s].pairs[0], (long long)cnt[s].pairs[1], (long long)cnt[s].pairs[2], (long long)g);
        for (int k = 0; k < 3; k++) tot[k] += cnt[s].pairs[k];
        totg += g;
    }
    fprintf(o, "%-12s %6s %7s %7lld %7lld %7lld %7lld %7lld\n", "total", "", "", (long long)d.nconvs,
            (long long)tot[0], (long long)tot[1], (long long)tot[2], (long long)totg);
    fprintf(o, "%s/{train,valid,test}.csv, counts.json: %lld pairs (train.csv has two rows per pair) in %.1f s\n",
            out, (long long)npairs, nb_cli_now() - t0);
    if (json) {
        char *line = cJSON_PrintUnformatted(j);
        if (!line) goto oom;
        printf("%s\n", line);
        free(line);
    }
    rc = 0;
    goto done;
oom:
    nb_cli_fail(cmd, "out of memory");
done:
    cJSON_Delete(j);
    free(text);
    free(pairs);
    nb__dlg_free(&d);
    return rc;
}
