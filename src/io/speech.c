/* speech.c — a speech data folder as a list of clips: either manifest.csv
 * (a header naming the columns file, speaker, text, split and optionally
 * phones; paths relative to the folder; fields may be "quoted" with "" for a
 * quote), or one sub-folder of audio files per speaker, where a hash of the
 * file name holds clips out (FNV-1a of the name mod 10: 8 valid, 9 test). */
#include "io.h"
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPEECH_MAX_FIELDS 16
#define SPEECH_MAX_CLIPS 10000000

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    if (!d) nb_oom("speech set", strlen(s) + 1);
    return d;
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) nb_oom("speech set", a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The index of speaker name, added if new. */
static int speaker_id(nb_speech_set *s, const char *name, int *cap) {
    for (int i = 0; i < s->nspeakers; i++)
        if (strcmp(s->speakers[i], name) == 0) return i;
    if (s->nspeakers == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        char **v = realloc(s->speakers, (size_t)*cap * sizeof *v);
        if (!v) nb_oom("speech set", (size_t)*cap * sizeof *v);
        s->speakers = v;
    }
    s->speakers[s->nspeakers] = xstrdup(name);
    return s->nspeakers++;
}

static nb_speech_clip *add_clip(nb_speech_set *s, int *cap) {
    if (s->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        nb_speech_clip *v = realloc(s->clips, (size_t)*cap * sizeof *v);
        if (!v) nb_oom("speech set", (size_t)*cap * sizeof *v);
        s->clips = v;
    }
    nb_speech_clip *c = &s->clips[s->n++];
    memset(c, 0, sizeof *c);
    return c;
}

static int hash_split(const char *name) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)base; *p; p++) h = (h ^ *p) * 16777619u;
    int r = (int)(h % 10);
    return r == 8 ? 1 : r == 9 ? 2 : 0;
}

/* Splits one CSV line in place into fields; returns the count, or -1 with an
 * error naming where and line. */
static int csv_fields(char *line, char **f, const char *where, int lineno) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == SPEECH_MAX_FIELDS) return nb_error("%s:%d: more than %d fields", where, lineno, SPEECH_MAX_FIELDS);
        if (*p == '"') {
            char *w = ++p, *start = w;
            for (;;) {
                if (*p == 0) return nb_error("%s:%d: unterminated quoted field", where, lineno);
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            if (*p != ',' && *p != 0)
                return nb_error("%s:%d: expected ',' after a quoted field, found '%c'", where, lineno, *p);
            f[n++] = start;
            char sep = *p;
            *w = 0;
            if (sep == 0) return n;
            p++;
        } else {
            f[n++] = p;
            char *c = strchr(p, ',');
            if (strchr(p, '"') && (!c || strchr(p, '"') < c))
                return nb_error("%s:%d: a quote inside an unquoted field (field %d)", where, lineno, n);
            if (!c) return n;
            *c = 0;
            p = c + 1;
        }
    }
}

static int open_manifest(const char *dir, const char *mpath, nb_speech_set *s) {
    size_t len;
    char *text = (char *)nb_read_file(mpath, &len);
    if (!text) return -1;
    if (memchr(text, 0, len)) {
        free(text);
        return nb_error("%s: a NUL byte: not a CSV text file", mpath);
    }
    int rc = -1, lineno = 0, col_file = -1, col_spk = -1, col_text = -1, col_split = -1, col_phones = -1, ncols = 0;
    int cap_clips = 0, cap_spk = 0;
    char *f[SPEECH_MAX_FIELDS];
    /* A UTF-8 byte-order mark (a manifest saved by Excel or PowerShell) is
     * not part of the first column's name. */
    char *first = text + nb_utf8_bom(text, len);
    for (char *line = first, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = 0;
        if (ll == 0) continue;
        int nf = csv_fields(line, f, mpath, lineno);
        if (nf < 0) goto done;
        if (col_file < 0) { /* the header */
            ncols = nf;
            for (int i = 0; i < nf; i++) {
                int *c = !strcmp(f[i], "file") ? &col_file : !strcmp(f[i], "speaker") ? &col_spk
                       : !strcmp(f[i], "text") ? &col_text : !strcmp(f[i], "split") ? &col_split
                       : !strcmp(f[i], "phones") ? &col_phones : NULL;
                if (!c) {
                    nb_error("%s:%d: unknown column '%s', expected file, speaker, text, split, phones", mpath, lineno,
                             f[i]);
                    goto done;
                }
                if (*c >= 0) {
                    nb_error("%s:%d: column '%s' twice", mpath, lineno, f[i]);
                    goto done;
                }
                *c = i;
            }
            if (col_file < 0 || col_spk < 0) {
                nb_error("%s:%d: the header needs the columns file and speaker (file,speaker,text,split)", mpath,
                         lineno);
                goto done;
            }
            continue;
        }
        if (nf != ncols) {
            nb_error("%s:%d: %d fields, expected %d as in the header", mpath, lineno, nf, ncols);
            goto done;
        }
        if (!*f[col_file] || !*f[col_spk]) {
            nb_error("%s:%d: empty %s", mpath, lineno, !*f[col_file] ? "file" : "speaker");
            goto done;
        }
        if (s->n == SPEECH_MAX_CLIPS) {
            nb_error("%s:%d: more than %d clips", mpath, lineno, SPEECH_MAX_CLIPS);
            goto done;
        }
        int split = hash_split(f[col_file]);
        if (col_split >= 0 && *f[col_split]) {
            const char *v = f[col_split];
            split = !strcmp(v, "train") ? 0 : !strcmp(v, "valid") ? 1 : !strcmp(v, "test") ? 2 : -1;
            if (split < 0) {
                nb_error("%s:%d: split '%s', expected train, valid or test", mpath, lineno, v);
                goto done;
            }
        }
        char *path = f[col_file][0] == '/' ? xstrdup(f[col_file]) : join(dir, f[col_file]);
        if (!is_file(path)) {
            nb_error("%s:%d: %s: no such audio file", mpath, lineno, path);
            free(path);
            goto done;
        }
        char *ph = NULL;
        if (col_phones >= 0 && *f[col_phones]) {
            ph = f[col_phones][0] == '/' ? xstrdup(f[col_phones]) : join(dir, f[col_phones]);
            if (!is_file(ph)) {
                nb_error("%s:%d: %s: no such phone feature file", mpath, lineno, ph);
                free(ph);
                free(path);
                goto done;
            }
        }
        nb_speech_clip *c = add_clip(s, &cap_clips);
        c->path = path;
        c->phones = ph;
        c->split = split;
        c->speaker = speaker_id(s, f[col_spk], &cap_spk);
        c->text = xstrdup(col_text >= 0 ? f[col_text] : "");
    }
    if (col_file < 0) {
        nb_error("%s: empty, expected a header line file,speaker,text,split", mpath);
        goto done;
    }
    if (s->n == 0) {
        nb_error("%s: no clips after the header", mpath);
        goto done;
    }
    rc = 0;
done:
    free(text);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool audio_ext(const char *name) {
    /* What libsndfile 1.2 decodes (MP3 through mpg123, Opus in Ogg): a folder
     * of .mp3 recordings was skipped file by file without a word. */
    static const char *ext[] = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", NULL};
    size_t n = strlen(name);
    for (int i = 0; ext[i]; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcasecmp(name + n - k, ext[i]) == 0) return true;
    }
    return false;
}

/* The sorted names of the sub-folders (dirs) or audio files in dir (malloc'd). */
static char **list_dir(const char *dir, bool dirs, int *count) {
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int n = 0, cap = 16;
    char **v = malloc((size_t)cap * sizeof *v);
    if (!v) nb_oom("speech set", (size_t)cap * sizeof *v);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = join(dir, e->d_name);
        struct stat st;
        bool ok = stat(p, &st) == 0 && (dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) && audio_ext(e->d_name));
        free(p);
        if (!ok) continue;
        if (n == cap) {
            cap *= 2;
            char **w = realloc(v, (size_t)cap * sizeof *w);
            if (!w) nb_oom("speech set", (size_t)cap * sizeof *w);
            v = w;
        }
        v[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *count = n;
    return v;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int open_folders(const char *dir, nb_speech_set *s) {
    int nd, cap_clips = 0, cap_spk = 0;
    char **subs = list_dir(dir, true, &nd);
    if (!subs) return nb_error("%s: cannot open the folder: %s", dir, strerror(errno));
    for (int i = 0; i < nd; i++) {
        char *sd = join(dir, subs[i]);
        int nf;
        char **files = list_dir(sd, false, &nf);
        if (files && nf > 0) {
            int spk = speaker_id(s, subs[i], &cap_spk);
            for (int k = 0; k < nf; k++) {
                nb_speech_clip *c = add_clip(s, &cap_clips);
                c->path = join(sd, files[k]);
                c->speaker = spk;
                c->split = hash_split(files[k]);
                c->text = xstrdup("");
            }
        }
        if (files) free_list(files, nf);
        free(sd);
    }
    free_list(subs, nd);
    if (s->n == 0)
        return nb_error("%s: no manifest.csv and no speaker sub-folders holding audio files (.wav, .flac, .ogg, .opus, .mp3)", dir);
    return 0;
}

/* The number of non-empty lines of phones.txt, the phone inventory. */
static int count_phones(const char *path) {
    size_t len;
    char *t = (char *)nb_read_file(path, &len);
    if (!t) return -1;
    int n = 0;
    for (char *line = t, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (*line && strcmp(line, "\r") != 0) n++;
    }
    free(t);
    if (n == 0) return nb_error("%s: empty phone inventory", path);
    return n;
}

int nb_speech_open(const char *dir, nb_speech_set *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(dir, &st) != 0) return nb_error("%s: cannot open: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return nb_error("%s: not a folder, expected a speech data folder", dir);
    char *m = join(dir, "manifest.csv");
    int rc = is_file(m) ? open_manifest(dir, m, out) : open_folders(dir, out);
    free(m);
    if (rc == 0) {
        bool any = false;
        for (int i = 0; i < out->n; i++) any |= out->clips[i].phones != NULL;
        if (any) {
            char *inv = join(dir, "phones.txt");
            out->n_phones = count_phones(inv);
            free(inv);
            if (out->n_phones < 0) {
                char why[512];
                snprintf(why, sizeof why, "%s", nb_errmsg());
                rc = nb_error("%s/manifest.csv: clips have phone features, but the inventory: %s", dir, why);
            }
        }
    }
    if (rc != 0) nb_speech_free(out);
    return rc;
}

void nb_speech_free(nb_speech_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->clips[i].path);
        free(s->clips[i].text);
        free(s->clips[i].phones);
    }
    for (int i = 0; i < s->nspeakers; i++) free(s->speakers[i]);
    free(s->clips);
    free(s->speakers);
    memset(s, 0, sizeof *s);
}
