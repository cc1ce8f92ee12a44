/* test_io.c — outside file formats: safetensors, npy and IDX round trips and,
 * for every defect, an error that names what is wrong; atomic writes. */
#include "test.h"
#include "../src/core/internal.h"
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* --- helpers ------------------------------------------------------------ */

/* A fresh temporary directory per test, removed with everything in it. */
static char tmpdir[256];

static const char *tmp_open(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/nabla-io-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        nb_test_fail(__FILE__, __LINE__, "mkdtemp failed");
        return NULL;
    }
    return tmpdir;
}

static char *tmp_file(const char *name) {
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void tmp_close(void) { rm_tree(tmpdir); }

static void write_bytes(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(buf, 1, len, f) == len);
    fclose(f);
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Checks that a call failed (ok is false) and that the message contains each
 * of the given fragments (NULL-terminated). */
#define CHECK_ERR(ok, ...) check_err(__FILE__, __LINE__, #ok, !(ok), (const char *[]){__VA_ARGS__, NULL})
static void check_err(const char *file, int line, const char *expr, bool failed, const char **frags) {
    if (!failed) {
        nb_test_fail(file, line, "%s: expected an error, got success", expr);
        return;
    }
    const char *m = nb_errmsg();
    if (!*m) nb_test_fail(file, line, "%s: failed without a message", expr);
    for (const char **f = frags; *f; f++)
        if (!strstr(m, *f)) nb_test_fail(file, line, "%s: message \"%s\" lacks \"%s\"", expr, m, *f);
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int k = 0; k < 8; k++) p[k] = (uint8_t)(v >> 8 * k);
}

/* A safetensors image: 8-byte length, the JSON text as given, the data. */
static uint8_t *st_image(const char *json, const void *data, size_t dlen, size_t *len) {
    size_t h = strlen(json);
    uint8_t *b = malloc(8 + h + dlen + 1);
    put_le64(b, h);
    memcpy(b + 8, json, h);
    if (dlen) memcpy(b + 8 + h, data, dlen);
    *len = 8 + h + dlen;
    return b;
}

/* Parses json + data; returns whether it parsed (frees the result). */
static bool st_ok(const char *json, const void *data, size_t dlen) {
    size_t len;
    uint8_t *b = st_image(json, data, dlen, &len);
    nb_safetensors *st = nb_st_parse(b, len, "t.safetensors");
    free(b);
    nb_st_free(st);
    return st != NULL;
}

/* --- atomic files ------------------------------------------------------- */

TEST(test_io_write_atomic_replaces_whole_file_and_keeps_mode) {
    if (!tmp_open()) return;
    const char *p = tmp_file("f.bin");
    char big[1000];
    memset(big, 'a', sizeof big);
    CHECK(nb_write_file_atomic(p, big, sizeof big) == 0);
    chmod(p, 0640);
    CHECK(nb_write_file_atomic(p, "bbbbbbbbbb", 10) == 0);
    size_t len = 0;
    uint8_t *b = nb_read_file(p, &len);
    CHECK(b && len == 10 && memcmp(b, "bbbbbbbbbb", 10) == 0 && b[10] == 0);
    free(b);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0640);
    /* No temporary file is left behind. */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    CHECK(!file_exists(tmp));
    /* An empty buffer makes an empty file. */
    CHECK(nb_write_file_atomic(p, "", 0) == 0);
    b = nb_read_file(p, &len);
    CHECK(b && len == 0);
    free(b);
    tmp_close();
}

TEST(test_io_write_atomic_fails_cleanly) {
    if (!tmp_open()) return;
    /* A directory that does not exist: fails, names the path, creates nothing. */
    const char *p = tmp_file("no/such/dir/f.bin");
    CHECK_ERR(nb_write_file_atomic(p, "x", 1) == 0, "no/such/dir/f.bin", "No such file");
    CHECK(!file_exists(tmp_file("no")));
    /* rename() fails when the target is a non-empty directory: the temporary
     * file must be removed and the directory left as it was. */
    const char *d = tmp_file("target");
    mkdir(d, 0755);
    write_bytes(tmp_file("target/inside"), "keep", 4);
    CHECK_ERR(nb_write_file_atomic(d, "x", 1) == 0, "target", "rename");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", d, (long)getpid());
    CHECK(!file_exists(tmp));
    CHECK(file_exists(tmp_file("target/inside")));
    /* A leftover temporary file of ours (a crash with the same pid) does not
     * block the next write. */
    const char *q = tmp_file("g.bin");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", q, (long)getpid());
    write_bytes(tmp, "stale", 5);
    CHECK(nb_write_file_atomic(q, "new", 3) == 0);
    CHECK(!file_exists(tmp));
    CHECK_ERR(nb_write_file_atomic("", "x", 1) == 0, "empty path");
    tmp_close();
}

/* "-" names no file: standard input is not read, and the message says so
 * (it was "-: cannot open: No such file or directory"). */
TEST(test_io_read_file_dash_is_not_standard_input) {
    size_t len;
    if (access("-", F_OK) == 0) return; /* a file of that name here: nothing to show */
    CHECK(nb_read_file("-", &len) == NULL && strstr(nb_errmsg(), "standard input is not read"));
}

TEST(test_io_read_file_errors_and_unsized_files) {
    if (!tmp_open()) return;
    size_t len = 7;
    CHECK_ERR(nb_read_file(tmp_file("missing"), &len) != NULL, "missing", "cannot open");
    CHECK(len == 0);
    CHECK_ERR(nb_read_file(tmpdir, &len) != NULL, "is a folder, expected a file");
    /* A 9 GiB sparse file (no disk space used) is refused before reading. */
    const char *big = tmp_file("big");
    FILE *f = fopen(big, "wb");
    if (f && ftruncate(fileno(f), (off_t)9 << 30) == 0) {
        fclose(f);
        CHECK_ERR(nb_read_file(big, &len) != NULL, "big", "9663676416 bytes", "limit");
    } else if (f)
        fclose(f);
    /* /proc files report size 0 but have content: the reader must not trust
     * the size. */
    uint8_t *b = nb_read_file("/proc/self/status", &len);
    if (b) {
        CHECK(len > 0 && strstr((char *)b, "Name:") != NULL);
        free(b);
    }
    tmp_close();
}

/* --- safetensors -------------------------------------------------------- */

TEST(test_safetensors_round_trip_with_metadata) {
    if (!tmp_open()) return;
    nb_tensor *a = nb_tensor_new(NB_SHAPE(2, 3)), *s = nb_tensor_new(0, NULL), *e = nb_tensor_new(NB_SHAPE(0, 4)),
              *c = nb_tensor_new(NB_SHAPE(5));
    nb_init_normal(a, 0, 1, nb_test_rng());
    a->data[0] = -0.f;
    a->data[1] = INFINITY;
    a->data[2] = 1e-40f; /* subnormal */
    s->data[0] = 3.5f;
    nb_init_normal(c, 0, 1, nb_test_rng());
    const char *names[] = {"fc1.weight", "scale", "empty", "fc1.bias"};
    nb_tensor *ts[] = {a, s, e, c};
    const char *keys[] = {"nabla.net", "quote\"and\\slash"}, *vals[] = {"[net]\ninput = 3\n", "\xc3\xa9t\xc3\xa9"};
    const char *p = tmp_file("m.safetensors");
    CHECK(nb_st_write(p, names, ts, 4, keys, vals, 2) == 0);

    /* The layout: header length a multiple of 8, padded with spaces. */
    size_t len;
    uint8_t *raw = nb_read_file(p, &len);
    CHECK(raw != NULL);
    if (raw) {
        uint64_t h = 0;
        for (int k = 0; k < 8; k++) h |= (uint64_t)raw[k] << 8 * k;
        CHECK(h % 8 == 0 && 8 + h + 4 * (6 + 1 + 0 + 5) == len);
        CHECK(raw[8] == '{' && strncmp((char *)raw + 8, "{\"__metadata__\"", 15) == 0);
        size_t end = 8 + h;
        while (end > 8 && raw[end - 1] == ' ') end--;
        CHECK(raw[end - 1] == '}' && 8 + h - end < 8);
        free(raw);
    }

    nb_safetensors *st = nb_st_read(p);
    CHECK_MSG(st != NULL, "read: %s", nb_errmsg());
    if (st) {
        CHECK(st->n == 4 && st->n_meta == 2);
        for (int i = 0; i < 4 && i < st->n; i++) {
            CHECK(strcmp(st->entries[i].name, names[i]) == 0); /* order kept */
            nb_tensor *t = nb_st_get(st, names[i]);
            CHECK(t && nb_same_shape(t, ts[i]) && t->size == ts[i]->size);
            if (t) CHECK(memcmp(t->data, ts[i]->data, (size_t)t->size * 4) == 0); /* bit-exact */
        }
        CHECK(nb_st_get(st, "nope") == NULL);
        CHECK(nb_st_meta(st, "nabla.net") && strcmp(nb_st_meta(st, "nabla.net"), vals[0]) == 0);
        CHECK(nb_st_meta(st, keys[1]) && strcmp(nb_st_meta(st, keys[1]), vals[1]) == 0);
        CHECK(nb_st_meta(st, "missing") == NULL);
        nb_st_free(st);
    }
    nb_tensor_free(a);
    nb_tensor_free(s);
    nb_tensor_free(e);
    nb_tensor_free(c);
    tmp_close();
}

TEST(test_safetensors_exact_bytes_of_a_small_file) {
    /* What any reader of the format (the reference, NumPy + json) expects. */
    if (!tmp_open()) return;
    nb_tensor *t = nb_tensor_from(NB_SHAPE(2), (float[]){1.f, -2.f});
    const char *name = "w";
    const char *p = tmp_file("w.safetensors");
    CHECK(nb_st_write(p, &name, &t, 1, NULL, NULL, 0) == 0);
    const char *json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"; /* 53 bytes */
    size_t len, jl = strlen(json), hl = (jl + 7) / 8 * 8;
    uint8_t *b = nb_read_file(p, &len);
    CHECK(b && len == 8 + hl + 8);
    if (b && len == 8 + hl + 8) {
        CHECK(b[0] == hl && b[1] == 0 && b[7] == 0);
        CHECK(memcmp(b + 8, json, jl) == 0);
        for (size_t i = jl; i < hl; i++) CHECK(b[8 + i] == ' ');
        const uint8_t data[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};
        CHECK(memcmp(b + 8 + hl, data, 8) == 0);
    }
    free(b);
    nb_tensor_free(t);
    tmp_close();
}

TEST(test_safetensors_reads_every_dtype) {
    /* One tensor of each dtype, laid out back to back. */
    uint8_t d[256];
    size_t o = 0;
#define PUT(...)                                                                                                       \
    do {                                                                                                               \
        const uint8_t v_[] = {__VA_ARGS__};                                                                            \
        memcpy(d + o, v_, sizeof v_);                                                                                  \
        o += sizeof v_;                                                                                                \
    } while (0)
    PUT(0, 0, 0xc0, 0x3f);                               /* F32 [1]: 1.5 */
    PUT(0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c); /* F16 [4]: 1, -2, 2^-24, inf */
    PUT(0x80, 0x3f, 0x40, 0xc0);                         /* BF16 [2]: 1, -3 */
    PUT(0, 0, 0, 0, 0, 0, 0x12, 0x40);                   /* F64 [1]: 4.5 */
    PUT(0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff); /* I64 [1]: -5 */
    PUT(0xf9, 0xff, 0xff, 0xff);                         /* I32 [1]: -7 */
    PUT(0x00, 0x80);                                     /* I16 [1]: -32768 */
    PUT(0x80, 0x7f);                                     /* I8 [2]: -128, 127 */
    PUT(0xff, 0x00);                                     /* U8 [2]: 255, 0 */
    PUT(0x01, 0x00, 0x01);                               /* BOOL [3] */
    char json[1024];
    snprintf(json, sizeof json,
             "{\"f32\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"f16\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[4,12]},"
             "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
             "\"f64\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[16,24]},"
             "\"i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[24,32]},"
             "\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[32,36]},"
             "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[36,38]},"
             "\"i8\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[38,40]},"
             "\"u8\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[40,42]},"
             "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[42,45], \"extra\": 1}}   ");
    CHECK(o == 45);
    size_t len;
    uint8_t *img = st_image(json, d, o, &len);
    nb_safetensors *st = nb_st_parse(img, len, "dtypes");
    CHECK_MSG(st != NULL, "%s", nb_errmsg());
    if (st) {
        nb_tensor *t;
        CHECK((t = nb_st_get(st, "f32")) && t->data[0] == 1.5f);
        CHECK((t = nb_st_get(st, "f16")) && t->ndim == 2 && t->data[0] == 1.f && t->data[1] == -2.f &&
              t->data[2] == 0x1p-24f && isinf(t->data[3]));
        CHECK((t = nb_st_get(st, "bf16")) && t->data[0] == 1.f && t->data[1] == -3.f);
        CHECK((t = nb_st_get(st, "f64")) && t->ndim == 0 && t->data[0] == 4.5f);
        CHECK((t = nb_st_get(st, "i64")) && t->data[0] == -5.f);
        CHECK((t = nb_st_get(st, "i32")) && t->data[0] == -7.f);
        CHECK((t = nb_st_get(st, "i16")) && t->data[0] == -32768.f);
        CHECK((t = nb_st_get(st, "i8")) && t->data[0] == -128.f && t->data[1] == 127.f);
        CHECK((t = nb_st_get(st, "u8")) && t->data[0] == 255.f && t->data[1] == 0.f);
        CHECK((t = nb_st_get(st, "b")) && t->data[0] == 1.f && t->data[1] == 0.f && t->data[2] == 1.f);
        nb_st_free(st);
    }
    free(img);
#undef PUT
}

TEST(test_safetensors_truncated_at_every_cut_point) {
    if (!tmp_open()) return;
    nb_tensor *a = nb_tensor_new(NB_SHAPE(3, 2)), *b = nb_tensor_new(NB_SHAPE(4));
    const char *names[] = {"a", "b"}, *k = "key", *v = "value";
    nb_tensor *ts[] = {a, b};
    const char *p = tmp_file("t.safetensors");
    CHECK(nb_st_write(p, names, ts, 2, &k, &v, 1) == 0);
    size_t len;
    uint8_t *full = nb_read_file(p, &len);
    CHECK(full != NULL);
    for (size_t cut = 0; full && cut < len; cut++) {
        /* A copy of exactly `cut` bytes, so ASan sees any read past it. */
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, full, cut);
        nb_safetensors *st = nb_st_parse(c, cut, "cut.safetensors");
        CHECK_MSG(st == NULL, "prefix of %zu/%zu bytes parsed", cut, len);
        CHECK(strstr(nb_errmsg(), "cut.safetensors") != NULL);
        nb_st_free(st);
        free(c);
    }
    /* Truncating the real file gives the same kind of error through nb_st_read. */
    if (full) write_bytes(p, full, len - 3);
    CHECK_ERR(nb_st_read(p) != NULL, "t.safetensors", "data_offsets", "extend past");
    CHECK_ERR(nb_st_read(tmp_file("missing.safetensors")) != NULL, "missing.safetensors", "cannot open");
    free(full);
    nb_tensor_free(a);
    nb_tensor_free(b);
    tmp_close();
}

TEST(test_safetensors_header_length_lies) {
    const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    size_t len;
    uint8_t *b = st_image(json, "abcd", 4, &len);
    put_le64(b, len); /* longer than the file */
    CHECK_ERR(nb_st_parse(b, len, "x.st") != NULL, "x.st", "header length", "offset 0");
    /* 7 bytes cannot hold the length itself */
    CHECK_ERR(nb_st_parse(b, 7, "x.st") != NULL, "x.st: 7 bytes, too short for the 8-byte header length");
    put_le64(b, UINT64_MAX);
    CHECK_ERR(nb_st_parse(b, len, "x.st") != NULL, "header length", "limit");
    put_le64(b, 200000000);
    CHECK_ERR(nb_st_parse(b, len, "x.st") != NULL, "limit");
    put_le64(b, strlen(json) - 5); /* shorter: the JSON is cut */
    CHECK_ERR(nb_st_parse(b, len, "x.st") != NULL, "not valid JSON");
    put_le64(b, 0);
    CHECK_ERR(nb_st_parse(b, len, "x.st") != NULL, "'{'");
    CHECK_ERR(nb_st_parse(b, 5, "x.st") != NULL, "too short");
    free(b);
}

TEST(test_safetensors_rejects_bad_offsets_and_sizes) {
    uint8_t d[64] = {0};
    /* in range */
    CHECK(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8));
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]}}", d, 16), "'a'",
              "data_offsets [0, 100]", "16-byte data buffer");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", d, 16), "begin after end");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d, 16), "span 8 bytes",
              "expected 12");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 16), "expected 8",
              "F64");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                    d, 16),
              "'a'", "'b'", "overlap");
    /* Overlap with a tensor that is not the latest start. */
    CHECK_ERR(st_ok("{\"big\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
                    "\"s1\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
                    "\"s2\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}",
                    d, 16),
              "overlap");
    /* Touching and empty tensors do not overlap. */
    CHECK(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                d, 16));
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", d, 16), "[begin, end]");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", d, 16), "[begin, end]");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", d, 16), "integers in [0, 2^53]");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", d, 16), "integers in");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1e300,4]}}", d, 16), "integers in");
}

TEST(test_safetensors_rejects_bad_shapes_and_dtypes) {
    uint8_t d[16] = {2};
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", d, 16), "'a'",
              "dtype 'F8_E4M3' is not supported", "BF16");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 16), "'f32'");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", d, 16), "'dtype'");
    CHECK_ERR(st_ok("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", d, 16), "'dtype'");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", d, 16), "'shape'");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", d, 16), "data_offsets");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", d, 16),
              "shape[0] must be an integer in [0, 2^53]");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1, 2.5],\"data_offsets\":[0,4]}}", d, 16), "shape[1]");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", d, 16), "shape[0]");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                    "\"data_offsets\":[0,4]}}",
                    d, 16),
              "too large");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,256],\"data_offsets\":[0,4]}}", d, 16),
              "too large");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", d, 16),
              "shape[0] must be an integer in [0, 2^53]");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", d, 16),
              "7 dimensions");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 16),
              "'dtype' twice");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]}}", d, 16), "invalid bool",
              "offset");
    CHECK_ERR(st_ok("{\"a\":[1,2]}", d, 16), "'a'", "JSON object");
}

TEST(test_safetensors_rejects_bad_json_names_and_metadata) {
    uint8_t d[16] = {0};
    CHECK_ERR(st_ok("{\"a\": {", d, 16), "not valid JSON");
    CHECK_ERR(st_ok("{\"a\": 1,}", d, 16), "not valid JSON");
    CHECK_ERR(st_ok("[1, 2]", d, 16), "'{'");
    CHECK_ERR(st_ok("{} x", d, 16), "unexpected data after", "offset 11");
    CHECK(st_ok("{}      ", d, 0));
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                    d, 16),
              "'a' appears twice");
    CHECK_ERR(st_ok("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 16),
              "\\u0000");
    CHECK(st_ok("{\"a\\\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 16));
    size_t len;
    uint8_t *b = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4, &len);
    b[12] = 0;
    CHECK_ERR(nb_st_parse(b, len, "nul") != NULL, "NUL byte at offset 12");
    free(b);
    CHECK_ERR(st_ok("{\"__metadata__\":{\"k\":1}}", d, 0), "__metadata__", "'k'", "string");
    CHECK_ERR(st_ok("{\"__metadata__\":[\"k\"]}", d, 0), "__metadata__", "object");
    CHECK_ERR(st_ok("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", d, 0), "key 'k' twice");
    CHECK_ERR(st_ok("{\"__metadata__\":{},\"__metadata__\":{}}", d, 0), "'__metadata__' twice");
    /* Nesting deep enough to overflow a naive recursive parser. */
    char deep[8192];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"a\":");
    while (n < 6000) deep[n++] = '[';
    deep[n] = 0;
    CHECK_ERR(st_ok(deep, d, 0), "JSON");
}

/* Edges of the header checks: a duplicate name that does not sort first, a
 * span longer than the shape needs, begin one past end, an overlap found
 * only by carrying the furthest end forward, an element count whose byte
 * size overflows, a header length one byte past the file, whitespace
 * padding, "__metadata__" spelled otherwise (a tensor, not metadata), U64
 * beyond 2^63, and the file offset a bad BOOL byte is reported at. */
TEST(test_safetensors_header_check_edges) {
    uint8_t d[32] = {0};
    CHECK_ERR(st_ok("{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
                    "\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}",
                    d, 3),
              "'y' appears twice");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", d, 8), "span 8 bytes",
              "expected 4");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[5,4]}}", d, 8), "begin after end");
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[8,16]},"
                    "\"c\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[12,20]}}",
                    d, 20),
              "'b' [8, 16)", "'c' [12, 20)", "overlap");
    /* 3 * 2^30 * 2^29 = 3 * 2^59 elements (a count nb_shape_numel takes) of 8
     * bytes: 3 * 2^62 bytes, beyond int64 */
    CHECK_ERR(st_ok("{\"a\":{\"dtype\":\"F64\",\"shape\":[3,1073741824,536870912],\"data_offsets\":[0,0]}}",
                    d, 0),
              "too large");
    const char *json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}";
    size_t len;
    uint8_t *b = st_image(json, d, 3, &len);
    put_le64(b, len - 8 + 1);
    CHECK_ERR(nb_st_parse(b, len, "x.st") != NULL, "x.st", "larger than the");
    free(b);
    CHECK(st_ok("{} \t\r\n ", d, 0));
    CHECK_ERR(st_ok("{\"__Metadata__\":{\"k\":\"v\"}}", d, 0), "tensor '__Metadata__'", "'dtype'");
    /* 2^63 + 2^40 as U64 (not a negative I64) */
    uint8_t u[8] = {0, 0, 0, 0, 0, 1, 0, 0x80};
    b = st_image("{\"u\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[0,8]}}", u, 8, &len);
    nb_safetensors *st = nb_st_parse(b, len, "u.st");
    nb_tensor *t = st ? nb_st_get(st, "u") : NULL;
    CHECK_MSG(t && t->data[0] == (float)(9223372036854775808.0 + 1099511627776.0), "%s",
              t ? "wrong value" : nb_errmsg());
    nb_st_free(st);
    free(b);
    /* the BOOL byte 2 at data offset 3: file offset 8 + header + 3 */
    json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
           "\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[3,4]}}";
    d[3] = 2;
    char at[64];
    snprintf(at, sizeof at, "at offset %zu,", 8 + strlen(json) + 3);
    CHECK_ERR(st_ok(json, d, 4), "invalid bool byte 0x02", at);
}

/* Integer metadata of the model loaders: in range it reads; empty, beyond
 * the range or missing, the error names the key and the range. */
TEST(test_safetensors_meta_long_range_and_empty) {
    uint8_t d[1] = {0};
    size_t len;
    uint8_t *b = st_image("{\"__metadata__\":{\"n\":\"5\",\"e\":\"\",\"big\":\"11\",\"low\":\"0\"}}", d, 0, &len);
    nb_safetensors *st = nb_st_parse(b, len, "m.st");
    CHECK_MSG(st, "%s", nb_errmsg());
    if (st) {
        long x = 0;
        CHECK(nb__st_meta_long(st, "m.st", "toy", "n", 1, 10, &x) == 0 && x == 5);
        CHECK_ERR(nb__st_meta_long(st, "m.st", "toy", "e", 0, 10, &x) == 0, "m.st", "'e'", "[0, 10], got ''"); /* not 0 */
        CHECK_ERR(nb__st_meta_long(st, "m.st", "toy", "big", 1, 10, &x) == 0, "'big'", "[1, 10], got '11'");
        CHECK_ERR(nb__st_meta_long(st, "m.st", "toy", "low", 1, 10, &x) == 0, "'low'", "[1, 10], got '0'");
        CHECK_ERR(nb__st_meta_long(st, "m.st", "toy", "gone", 1, 10, &x) == 0, "not a toy model", "'gone' missing");
        CHECK(x == 5);
        nb_st_free(st);
    }
    free(b);
}

TEST(test_safetensors_write_rejects_bad_arguments) {
    if (!tmp_open()) return;
    nb_tensor *t = nb_tensor_new(NB_SHAPE(1));
    nb_tensor *ts[] = {t, t};
    const char *dup[] = {"x", "x"}, *meta[] = {"__metadata__"}, *k[] = {"a", "a"}, *v[] = {"1", "2"};
    const char *p = tmp_file("bad.safetensors");
    CHECK_ERR(nb_st_write(p, dup, ts, 2, NULL, NULL, 0) == 0, "'x' given twice");
    CHECK_ERR(nb_st_write(p, meta, ts, 1, NULL, NULL, 0) == 0, "reserved");
    CHECK_ERR(nb_st_write(p, dup, ts, 1, k, v, 2) == 0, "metadata key 'a' given twice");
    CHECK(!file_exists(p));
    /* Into a directory that does not exist: the atomic writer's error. */
    CHECK_ERR(nb_st_write(tmp_file("none/x.safetensors"), dup, ts, 1, NULL, NULL, 0) == 0, "none/x.safetensors");
    nb_tensor_free(t);
    tmp_close();
}

/* --- npy ---------------------------------------------------------------- */

/* An .npy image with the given version and header dict, padded as NumPy pads
 * (to 64 bytes, newline last), followed by the data. */
static uint8_t *npy_image(int major, const char *dict, const void *data, size_t dlen, size_t *len) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict), h = (pre + dl + 1 + 63) / 64 * 64 - pre;
    uint8_t *b = malloc(pre + h + dlen + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t k = 0; k < pre - 8; k++) b[8 + k] = (uint8_t)(h >> 8 * k);
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', h - dl - 1);
    b[pre + h - 1] = '\n';
    if (dlen) memcpy(b + pre + h, data, dlen);
    *len = pre + h + dlen;
    return b;
}

/* Parses; returns the tensor (persistent) or NULL. */
static nb_tensor *npy_try(int major, const char *dict, const void *data, size_t dlen) {
    size_t len;
    uint8_t *b = npy_image(major, dict, data, dlen, &len);
    nb_tensor *t = nb_npy_parse(b, len, "a.npy");
    free(b);
    return t;
}

static bool npy_ok(const char *dict, const void *data, size_t dlen) {
    nb_tensor *t = npy_try(1, dict, data, dlen);
    nb_tensor_free(t);
    return t != NULL;
}

TEST(test_npy_round_trip_and_layout) {
    if (!tmp_open()) return;
    int64_t shapes[][3] = {{0}, {5}, {2, 3}, {2, 0, 3}};
    int nds[] = {0, 1, 2, 3};
    const char *texts[] = {"'shape': (), }", "'shape': (5,), }", "'shape': (2, 3), }", "'shape': (2, 0, 3), }"};
    for (int s = 0; s < 4; s++) {
        nb_tensor *t = nb_tensor_new(nds[s], shapes[s]);
        nb_init_normal(t, 0, 1, nb_test_rng());
        const char *p = tmp_file("r.npy");
        CHECK(nb_npy_write(p, t) == 0);
        size_t len;
        uint8_t *b = nb_read_file(p, &len);
        CHECK(b && len >= 64);
        if (b && len >= 64) {
            size_t h = (size_t)b[8] | (size_t)b[9] << 8;
            CHECK(memcmp(b, "\x93NUMPY\x01\x00", 8) == 0);
            CHECK((10 + h) % 64 == 0 && b[10 + h - 1] == '\n' && len == 10 + h + 4 * (size_t)t->size);
            CHECK(strncmp((char *)b + 10, "{'descr': '<f4', 'fortran_order': False, ", 41) == 0);
            CHECK(strstr((char *)b + 10, texts[s]) != NULL);
        }
        free(b);
        nb_tensor *r = nb_npy_read(p);
        CHECK_MSG(r != NULL, "%s", nb_errmsg());
        if (r) {
            CHECK(nb_same_shape(r, t));
            CHECK(memcmp(r->data, t->data, (size_t)t->size * 4) == 0);
            nb_tensor_free(r);
        }
        nb_tensor_free(t);
    }
    tmp_close();
}

TEST(test_npy_reads_dtypes_versions_and_header_variants) {
    struct {
        const char *dict;
        uint8_t data[16];
        size_t n;
        float want[2];
    } cases[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", {0, 0, 0, 0, 0, 0, 0x12, 0x40, 0, 0, 0, 0, 0, 0, 0xf0, 0xbf}, 16, {4.5f, -1.f}},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", {0xf9, 0xff, 0xff, 0xff, 3, 0, 0, 0}, 8, {-7.f, 3.f}},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", {0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 9}, 16, {-5.f, 9.f}},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", {255, 7}, 2, {255.f, 7.f}},
        {"{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", {0x80, 0x7f}, 2, {-128.f, 127.f}},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", {1, 0}, 2, {1.f, 0.f}},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", {0x00, 0x3c, 0x00, 0xc0}, 4, {1.f, -2.f}},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", {0x00, 0x80, 0xff, 0x7f}, 4, {-32768.f, 32767.f}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", {0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0}, 8, {1.5f, -2.f}},
        /* Header variants NumPy or Python 2 wrote: other key order, double
         * quotes, no trailing comma, long-integer suffix, '<' on a byte type. */
        {"{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \"<u1\"}", {3, 4}, 2, {3.f, 4.f}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int major = 1; major <= 3; major++) {
            nb_tensor *t = npy_try(major, cases[c].dict, cases[c].data, cases[c].n);
            CHECK_MSG(t != NULL, "case %zu v%d: %s", c, major, nb_errmsg());
            if (!t) continue;
            CHECK(t->size == 2 && t->data[0] == cases[c].want[0] && t->data[1] == cases[c].want[1]);
            nb_tensor_free(t);
        }
    nb_tensor *t = npy_try(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1), }",
                           (uint8_t[]){0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}, 8);
    CHECK(t && t->ndim == 3 && t->shape[0] == 1 && t->shape[1] == 2 && t->shape[2] == 1);
    nb_tensor_free(t);
}

/* int64 to float32 rounds once, as NumPy's astype does: -16777218 is a
 * float32, and rounding its magnitude minus one first (16777217 -> 16777216)
 * then subtracting 1 read it as -16777216. */
TEST(test_npy_int64_negative_values_round_once) {
    const int64_t v[4] = {-16777218, -33554438, -16777219, INT64_MIN};
    const float want[4] = {-16777218.f, -33554440.f, -16777220.f, -9223372036854775808.f};
    uint8_t data[32];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 8; k++) data[8 * i + k] = (uint8_t)((uint64_t)v[i] >> 8 * k);
    nb_tensor *t = npy_try(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", data, 32);
    CHECK_MSG(t != NULL, "%s", nb_errmsg());
    for (int i = 0; t && i < 4; i++) CHECK_MSG(t->data[i] == want[i], "i8 %lld read as %.9g", (long long)v[i], t->data[i]);
    nb_tensor_free(t);
}

/* np.save(path, a.T) writes fortran_order True (a transposed array is
 * Fortran-contiguous), and NumPy on a big-endian machine, or after
 * astype('>f4'), writes '>' dtypes. Both were refused; they read now as
 * np.load gives them. */
TEST(test_npy_big_endian_and_fortran_order_read_as_numpy_does) {
    /* a = [[1, 2, 3], [4, 5, 6]] (shape (2, 3)) in Fortran order: columns. */
    const float colmajor[6] = {1, 4, 2, 5, 3, 6};
    uint8_t le[24], be[24];
    for (int i = 0; i < 6; i++) {
        uint32_t u;
        memcpy(&u, &colmajor[i], 4);
        for (int k = 0; k < 4; k++) le[4 * i + k] = (uint8_t)(u >> 8 * k), be[4 * i + 3 - k] = (uint8_t)(u >> 8 * k);
    }
    const char *dicts[] = {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                           "{'descr': '>f4', 'fortran_order': True, 'shape': (2, 3), }"};
    for (int k = 0; k < 2; k++) {
        nb_tensor *t = npy_try(1, dicts[k], k ? be : le, 24);
        CHECK_MSG(t != NULL, "%s: %s", dicts[k], nb_errmsg());
        CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
        for (int i = 0; t && i < 6; i++) CHECK_MSG(t->data[i] == (float)(i + 1), "%s: [%d] = %g", dicts[k], i, t->data[i]);
        nb_tensor_free(t);
    }
    /* Three dimensions, shape (2, 3, 4), element (i, j, k) = 100i + 10j + k,
     * stored with i fastest. */
    float f[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) f[i + 2 * (j + 3 * k)] = (float)(100 * i + 10 * j + k);
    nb_tensor *t = npy_try(2, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", f, sizeof f);
    CHECK_MSG(t && t->size == 24, "%s", nb_errmsg());
    for (int i = 0; t && i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) CHECK(t->data[(i * 3 + j) * 4 + k] == (float)(100 * i + 10 * j + k));
    nb_tensor_free(t);
    /* Big-endian integers and doubles: -7 as '>i4', 4.5 as '>f8', -2 as '>i2'. */
    t = npy_try(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", (uint8_t[]){0xff, 0xff, 0xff, 0xf9}, 4);
    CHECK(t && t->data[0] == -7.f);
    nb_tensor_free(t);
    t = npy_try(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", (uint8_t[]){0x40, 0x12, 0, 0, 0, 0, 0, 0}, 8);
    CHECK(t && t->data[0] == 4.5f);
    nb_tensor_free(t);
    t = npy_try(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (1,), }", (uint8_t[]){0xff, 0xfe}, 2);
    CHECK(t && t->data[0] == -2.f);
    nb_tensor_free(t);
}

/* Unsigned 16, 32 and 64-bit arrays (16-bit images saved with np.save,
 * counts) were refused in .npy ("dtype '<u2' is not supported") and in
 * safetensors (U16, U32, U64 of the format's list). */
TEST(test_npy_and_safetensors_read_unsigned_dtypes) {
    nb_tensor *t = npy_try(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", (uint8_t[]){0xff, 0xff, 7, 0}, 4);
    CHECK_MSG(t && t->data[0] == 65535.f && t->data[1] == 7.f, "%s", t ? "wrong values" : nb_errmsg());
    nb_tensor_free(t);
    t = npy_try(2, "{'descr': '>u4', 'fortran_order': False, 'shape': (1,), }", (uint8_t[]){0xff, 0xff, 0xff, 0xff}, 4);
    CHECK_MSG(t && t->data[0] == 4294967296.f, "%s", t ? "wrong value" : nb_errmsg());
    nb_tensor_free(t);
    t = npy_try(3, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }",
                (uint8_t[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 8);
    CHECK_MSG(t && t->data[0] == 18446744073709551616.f, "%s", t ? "wrong value" : nb_errmsg());
    nb_tensor_free(t);
    size_t len;
    uint8_t *img = st_image("{\"u16\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]},"
                            "\"u32\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
                            (uint8_t[]){0x34, 0x12, 0xff, 0xff, 0xff, 0x7f}, 6, &len);
    nb_safetensors *st = nb_st_parse(img, len, "u.safetensors");
    CHECK_MSG(st != NULL, "%s", nb_errmsg());
    if (st) {
        CHECK((t = nb_st_get(st, "u16")) && t->data[0] == 4660.f);
        CHECK((t = nb_st_get(st, "u32")) && t->data[0] == 2147483648.f);
        nb_st_free(st);
    }
    free(img);
}

TEST(test_npy_rejects_defects) {
    const uint8_t d[16] = {0};
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    CHECK(npy_ok(good, d, 8));
    /* tabs and newlines are whitespace too; a 23-character key fits the
     * parser's 24-byte buffer, a 24-character one is refused as a string */
    CHECK(npy_ok("{'descr':\t'<f4',\n'fortran_order': False,\t'shape': (2,)}", d, 8));
    nb_tensor_free(npy_try(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", d, 8));
    CHECK_MSG(strstr(nb_errmsg(), "a.npy: header: expected a non-negative integer in 'shape'"), "%s", nb_errmsg());
    /* elements that fit int64 but whose bytes (8 each) would not */
    nb_tensor_free(npy_try(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693951,), }", d, 8));
    CHECK_MSG(strstr(nb_errmsg(), "a.npy: header: shape is too large"), "%s", nb_errmsg());
    {
        size_t gl;
        uint8_t *g = npy_image(1, good, d, 8, &gl);
        CHECK_ERR(nb_npy_parse(g, 9, "p.npy") != NULL, "p.npy: 9 bytes, too short for an npy preamble");
        /* a header length that runs past the file by fewer bytes than the preamble */
        g[8] = (uint8_t)(gl - 10 + 1), g[9] = (uint8_t)((gl - 10 + 1) >> 8);
        CHECK_ERR(nb_npy_parse(g, gl, "p.npy") != NULL, "p.npy: header length", "larger than the");
        free(g);
    }
    nb_tensor_free(npy_try(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'aaaaaaaaaaaaaaaaaaaaaaaa': 1}", d, 8));
    CHECK_MSG(strstr(nb_errmsg(), "a.npy: header: unexpected string for a header key"), "%s", nb_errmsg());
    nb_tensor_free(npy_try(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'aaaaaaaaaaaaaaaaaaaaaaa': 1}", d, 8));
    CHECK_MSG(strstr(nb_errmsg(), "a.npy: header: unexpected key 'aaaaaaaaaaaaaaaaaaaaaaa'"), "%s", nb_errmsg());
    size_t len;
    uint8_t *b = npy_image(1, good, d, 8, &len);
    /* bad magic, version, header length */
    b[1] = 'X';
    CHECK_ERR(nb_npy_parse(b, len, "m.npy") != NULL, "m.npy", "bad magic", "offset 0");
    b[1] = 'N';
    b[6] = 4;
    CHECK_ERR(nb_npy_parse(b, len, "m.npy") != NULL, "version 4.0", "offset 6");
    b[6] = 1;
    b[7] = 1;
    CHECK_ERR(nb_npy_parse(b, len, "m.npy") != NULL, "version 1.1");
    b[7] = 0;
    b[8] = 0xff;
    b[9] = 0xff;
    CHECK_ERR(nb_npy_parse(b, len, "m.npy") != NULL, "header length 65535", "offset 8");
    b[8] = 54;
    b[9] = 0;
    CHECK_ERR(nb_npy_parse(b, len, "m.npy") != NULL, "header"); /* dict cut short */
    free(b);
    /* every prefix of a valid file fails */
    b = npy_image(2, good, d, 8, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, b, cut);
        nb_tensor *t = nb_npy_parse(c, cut, "cut.npy");
        CHECK_MSG(t == NULL, "prefix of %zu/%zu bytes parsed", cut, len);
        CHECK(strstr(nb_errmsg(), "cut.npy") != NULL);
        nb_tensor_free(t);
        free(c);
    }
    free(b);
    CHECK_ERR(nb_npy_parse((const uint8_t *)"\x93NUMPY\x02\x00\x01", 9, "s.npy") != NULL, "too short");
    /* data length */
    CHECK_ERR(npy_ok(good, d, 4), "4 bytes of data", "expected 8", "truncated");
    CHECK_ERR(npy_ok(good, d, 12), "12 bytes", "expected 8", "trailing");
    /* byte order, dtypes (both byte orders and memory orders read: see
     * test_npy_big_endian_and_fortran_order_read_as_numpy_does) */
    CHECK(npy_ok("{'descr': '>u1', 'fortran_order': False, 'shape': (2,), }", d, 2));
    CHECK_ERR(npy_ok("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", d, 8), "'<f4'");
    CHECK_ERR(npy_ok("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", d, 16), "'<c8'",
              "not supported");
    CHECK_ERR(npy_ok("{'descr': '', 'fortran_order': False, 'shape': (2,), }", d, 8), "not supported");
    CHECK_ERR(npy_ok("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", d, 8), "structured");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", d, 8), "True or False");
    /* header dict structure */
    CHECK_ERR(npy_ok("{'descr': '<f4', 'shape': (2,), }", d, 8), "lacks 'fortran_order'");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, }", d, 8), "lacks 'shape'");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d, 8),
              "'descr' appears twice");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", d, 8), "unexpected key 'x'");
    CHECK_ERR(npy_ok("'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d, 8), "expected '{'", "offset 10");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", d, 8), "after the dict");
    CHECK_ERR(npy_ok("{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", d, 8), "expected ',' or '}'");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", d, 8), "(n,)");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", d, 8), "non-negative integer");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", d, 8), "',' or ')'");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", d, 8), "'('");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", d, 8),
              "too large");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", d,
                     8),
              "too large");
    CHECK_ERR(npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1), }", d, 4),
              "more than 6 dimensions");
    CHECK_ERR(npy_ok("{'descr': '<f\\4', 'fortran_order': False, 'shape': (1,), }", d, 4), "unexpected string");
    CHECK_ERR(npy_ok("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", (uint8_t[]){1, 5}, 2),
              "invalid bool byte 0x05");
}

/* Edges of the npy reader and writer:
 * - a shape entry past INT64_MAX is refused, not wrapped (2^64 + 2 read as 2);
 * - byte types may carry any byte-order mark ('=', '|', '<', '>'), wider ones
 *   need '<';
 * - half-precision NaN stays NaN (not inf), inf stays inf;
 * - the writer pads the header so the data starts at a multiple of 64 bytes
 *   for every header length, the lengths that end a block included. */
TEST(test_npy_shape_overflow_byte_marks_half_nan_and_header_padding) {
    const uint8_t d[8] = {1, 2};
    CHECK_ERR(npy_ok("{'descr': '|u1', 'fortran_order': False, 'shape': (18446744073709551618,), }", d, 2),
              "'shape' entry too large");
    const char *marks = "=|<>";
    for (int k = 0; k < 4; k++) {
        char dict[96];
        snprintf(dict, sizeof dict, "{'descr': '%cb1', 'fortran_order': False, 'shape': (2,), }", marks[k]);
        nb_tensor *t = npy_try(1, dict, (uint8_t[]){1, 0}, 2);
        CHECK_MSG(t && t->data[0] == 1 && t->data[1] == 0, "'%cb1': %s", marks[k], t ? "wrong values" : nb_errmsg());
        nb_tensor_free(t);
    }
    CHECK_ERR(npy_ok("{'descr': '=f4', 'fortran_order': False, 'shape': (2,), }", d, 8), "'=f4'", "'<f4'");
    nb_tensor *h = npy_try(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }",
                           (uint8_t[]){0x00, 0x7e, 0x00, 0x7c, 0x01, 0xfc}, 6);
    CHECK(h && isnan(h->data[0]) && isinf(h->data[1]) && h->data[1] > 0 && isnan(h->data[2]));
    nb_tensor_free(h);
    if (!tmp_open()) return;
    for (int e = 0; e <= 18; e++) {
        int64_t big = 1;
        for (int k = 0; k < e; k++) big *= 10;
        int64_t shape[4] = {0, 1000000000000000000, 1000000000000000000, big};
        nb_tensor *t = nb_tensor_new(4, shape);
        const char *p = tmp_file("pad.npy");
        CHECK(nb_npy_write(p, t) == 0);
        size_t len;
        uint8_t *b = nb_read_file(p, &len);
        size_t hl = b && len >= 10 ? (size_t)b[8] | (size_t)b[9] << 8 : 0;
        CHECK_MSG(b && (10 + hl) % 64 == 0 && len == 10 + hl && b[10 + hl - 1] == '\n', "10^%d: header of %zu bytes", e,
                  hl);
        free(b);
        nb_tensor *r = nb_npy_read(p);
        CHECK_MSG(r && nb_same_shape(r, t), "10^%d: %s", e, r ? "another shape" : nb_errmsg());
        nb_tensor_free(r);
        nb_tensor_free(t);
    }
    tmp_close();
}

/* --- IDX ---------------------------------------------------------------- */

static size_t idx_image(uint8_t *b, uint32_t magic, int ndim, const uint32_t *dims, const uint8_t *data, size_t n) {
    size_t o = 0;
    for (int k = 3; k >= 0; k--) b[o++] = (uint8_t)(magic >> 8 * k);
    for (int d = 0; d < ndim; d++)
        for (int k = 3; k >= 0; k--) b[o++] = (uint8_t)(dims[d] >> 8 * k);
    memcpy(b + o, data, n);
    return o + n;
}

static void write_gz(const char *path, const void *buf, size_t len) {
    gzFile f = gzopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(gzwrite(f, buf, (unsigned)len) == (int)len);
    gzclose(f);
}

TEST(test_idx_reads_images_and_labels_plain_and_gzip) {
    if (!tmp_open()) return;
    uint8_t px[12], b[64];
    for (int i = 0; i < 12; i++) px[i] = (uint8_t)(i * 23);
    size_t n = idx_image(b, 0x803, 3, (uint32_t[]){2, 3, 2}, px, 12);
    for (int gz = 0; gz < 2; gz++) {
        const char *p = tmp_file(gz ? "img.gz" : "img");
        if (gz) write_gz(p, b, n);
        else write_bytes(p, b, n);
        int64_t cnt = 0, h = 0, w = 0;
        nb_tensor *t = nb_idx_read_images(p, &cnt, &h, &w);
        CHECK_MSG(t != NULL, "%s", nb_errmsg());
        if (!t) continue;
        CHECK(cnt == 2 && h == 3 && w == 2 && t->ndim == 3 && t->shape[0] == 2 && t->shape[1] == 3);
        for (int i = 0; i < 12; i++) CHECK(t->data[i] == (float)px[i] / 255.f);
        nb_tensor_free(t);
    }
    uint8_t lb[5] = {3, 1, 4, 1, 5};
    n = idx_image(b, 0x801, 1, (uint32_t[]){5}, lb, 5);
    write_gz(tmp_file("lab.gz"), b, n);
    int64_t cnt = 0;
    int32_t *y = nb_idx_read_labels(tmp_file("lab.gz"), &cnt);
    CHECK(y && cnt == 5);
    for (int i = 0; y && i < 5; i++) CHECK(y[i] == lb[i]);
    free(y);
    /* Images read as labels: the magic tells. */
    CHECK_ERR(nb_idx_read_labels(tmp_file("img.gz"), &cnt) != NULL, "img.gz", "3 dimensions", "expected 1");
    CHECK_ERR(nb_idx_read_images(tmp_file("nothing.gz"), NULL, NULL, NULL) != NULL, "nothing.gz", "cannot open");
    tmp_close();
}

TEST(test_idx_rejects_bad_magic_sizes_and_truncation) {
    uint8_t px[16] = {0}, b[64];
    int64_t dims[3];
    size_t n = idx_image(b, 0x803, 3, (uint32_t[]){2, 3, 2}, px, 12);
    CHECK(nb_idx_parse(b, n, "i", 3, dims) == b + 16 && dims[0] == 2 && dims[1] == 3 && dims[2] == 2);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, b, cut);
        const uint8_t *r = nb_idx_parse(c, cut, "cut-idx", 3, dims);
        CHECK_MSG(r == NULL, "prefix of %zu bytes parsed", cut);
        CHECK(strstr(nb_errmsg(), "cut-idx") != NULL);
        free(c);
    }
    CHECK_ERR(nb_idx_parse(b, n - 1, "i", 3, dims) != NULL, "11 bytes of data", "expected 12", "truncated");
    n = idx_image(b, 0x803, 3, (uint32_t[]){2, 3, 2}, px, 13);
    CHECK_ERR(nb_idx_parse(b, n, "i", 3, dims) != NULL, "trailing");
    n = idx_image(b, 0x12345678, 0, NULL, px, 4);
    CHECK_ERR(nb_idx_parse(b, n, "i", 3, dims) != NULL, "bad magic 0x12345678", "expected 0x00000803");
    n = idx_image(b, 0xd03, 3, (uint32_t[]){1, 1, 1}, px, 4);
    CHECK_ERR(nb_idx_parse(b, n, "i", 3, dims) != NULL, "element type 0x0d", "offset 2");
    n = idx_image(b, 0x802, 2, (uint32_t[]){1, 1}, px, 1);
    CHECK_ERR(nb_idx_parse(b, n, "i", 3, dims) != NULL, "2 dimensions", "expected 3");
    n = idx_image(b, 0x803, 3, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu}, px, 4);
    CHECK_ERR(nb_idx_parse(b, n, "i", 3, dims) != NULL, "more than");
    n = idx_image(b, 0x803, 3, (uint32_t[]){0, 0xffffffffu, 0xffffffffu}, px, 0);
    CHECK(nb_idx_parse(b, n, "i", 3, dims) != NULL && dims[0] == 0); /* empty is well-formed */
    /* a header one byte short; high magic bytes set (still "bad magic") */
    n = idx_image(b, 0x803, 3, (uint32_t[]){2, 3, 2}, px, 12);
    CHECK_ERR(nb_idx_parse(b, 15, "i", 3, dims) != NULL, "truncated: 15 bytes, the IDX header needs 16");
    n = idx_image(b, 0xff000803u, 3, (uint32_t[]){2, 3, 2}, px, 12);
    CHECK_ERR(nb_idx_parse(b, n, "i", 3, dims) != NULL, "bad magic 0xff000803", "not an IDX file");
}

TEST(test_idx_truncated_and_corrupt_gzip) {
    if (!tmp_open()) return;
    uint8_t px[4000], b[4100];
    nb_rng r;
    nb_rng_seed(&r, 5, 0);
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)nb_rng_u32(&r); /* incompressible */
    size_t n = idx_image(b, 0x803, 3, (uint32_t[]){5, 20, 40}, px, sizeof px);
    const char *p = tmp_file("t.gz");
    write_gz(p, b, n);
    size_t glen;
    uint8_t *g = nb_read_file(p, &glen);
    CHECK(g != NULL);
    if (g) {
        /* Cut the compressed stream at several points. */
        size_t cuts[] = {5, 12, 30, glen / 2, glen - 9, glen - 1};
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            write_bytes(p, g, cuts[k]);
            nb_tensor *t = nb_idx_read_images(p, NULL, NULL, NULL);
            CHECK_MSG(t == NULL, "gzip cut at %zu of %zu parsed", cuts[k], glen);
            CHECK(strstr(nb_errmsg(), "t.gz") != NULL);
            nb_tensor_free(t);
        }
        /* A flipped byte in the compressed data: a CRC or format error. */
        g[glen / 2] ^= 0x55;
        write_bytes(p, g, glen);
        CHECK_ERR(nb_idx_read_images(p, NULL, NULL, NULL) != NULL, "t.gz");
        free(g);
    }
    /* A plain file cut inside the data. */
    write_bytes(tmp_file("plain"), b, n - 100);
    CHECK_ERR(nb_idx_read_images(tmp_file("plain"), NULL, NULL, NULL) != NULL, "3900 bytes", "expected 4000",
              "truncated");
    /* A header that claims far more than is there: an error, not a huge
     * allocation. */
    n = idx_image(b, 0x803, 3, (uint32_t[]){100000, 1000, 1000}, px, 10);
    write_bytes(tmp_file("liar"), b, n);
    CHECK_ERR(nb_idx_read_images(tmp_file("liar"), NULL, NULL, NULL) != NULL, "more than");
    n = idx_image(b, 0x803, 3, (uint32_t[]){1000, 1000, 1000}, px, 10);
    write_bytes(tmp_file("liar"), b, n);
    CHECK_ERR(nb_idx_read_images(tmp_file("liar"), NULL, NULL, NULL) != NULL, "10 bytes", "truncated");
    tmp_close();
}

static void free_dataset(nb_dataset *d) {
    free(d->u8);
    free(d->f32);
    free(d->y);
    memset(d, 0, sizeof *d);
}

TEST(test_mnist_load_small_synthetic_set) {
    if (!tmp_open()) return;
    enum { N = 3 };
    static uint8_t px[N * 784], b[N * 784 + 64];
    for (int i = 0; i < N * 784; i++) px[i] = (uint8_t)(i % 251);
    size_t n = idx_image(b, 0x803, 3, (uint32_t[]){N, 28, 28}, px, sizeof px);
    write_gz(tmp_file("t10k-images-idx3-ubyte.gz"), b, n);
    n = idx_image(b, 0x801, 1, (uint32_t[]){N}, (uint8_t[]){7, 0, 9}, N);
    write_bytes(tmp_file("t10k-labels-idx1-ubyte"), b, n); /* plain and gzip mixed */
    nb_dataset d;
    CHECK_MSG(nb_mnist_load(tmpdir, false, &d) == 0, "%s", nb_errmsg());
    CHECK(d.n == N && d.nd == 3 && d.shape[0] == 1 && d.shape[1] == 28 && d.shape[2] == 28 && d.nclass == 10);
    CHECK(d.u8 && memcmp(d.u8, px, sizeof px) == 0 && !d.f32);
    CHECK(d.y && d.y[0] == 7 && d.y[1] == 0 && d.y[2] == 9);
    free_dataset(&d);
    /* The training split is missing. */
    CHECK_ERR(nb_mnist_load(tmpdir, true, &d) == 0, "train-images-idx3-ubyte.gz");
    CHECK(d.u8 == NULL && d.y == NULL && d.n == 0);
    /* Counts that do not match. */
    n = idx_image(b, 0x801, 1, (uint32_t[]){2}, (uint8_t[]){1, 2}, 2);
    write_bytes(tmp_file("t10k-labels-idx1-ubyte"), b, n);
    CHECK_ERR(nb_mnist_load(tmpdir, false, &d) == 0, "3 images", "2 labels");
    /* Other MNIST-format sets: more classes (EMNIST balanced has 47) and
     * other image sizes. */
    n = idx_image(b, 0x801, 1, (uint32_t[]){N}, (uint8_t[]){1, 46, 2}, N);
    write_bytes(tmp_file("t10k-labels-idx1-ubyte"), b, n);
    n = idx_image(b, 0x803, 3, (uint32_t[]){N, 28, 27}, px, N * 28 * 27);
    write_gz(tmp_file("t10k-images-idx3-ubyte.gz"), b, n);
    CHECK_MSG(nb_mnist_load(tmpdir, false, &d) == 0, "%s", nb_errmsg());
    CHECK(d.n == N && d.shape[0] == 1 && d.shape[1] == 28 && d.shape[2] == 27 && d.nclass == 47 && d.y[1] == 46);
    CHECK(d.u8 && memcmp(d.u8, px, N * 28 * 27) == 0);
    free_dataset(&d);
    /* Images of no pixels. */
    n = idx_image(b, 0x803, 3, (uint32_t[]){N, 28, 0}, px, 0);
    write_gz(tmp_file("t10k-images-idx3-ubyte.gz"), b, n);
    CHECK_ERR(nb_mnist_load(tmpdir, false, &d) == 0, "28x0", "at least 1x1");
    tmp_close();
}

/* MNIST as Kaggle and some archives hold it: "train-images.idx3-ubyte",
 * a dot for the last dash. It was "neither ... nor ....gz found". */
TEST(test_mnist_load_dotted_file_names) {
    if (!tmp_open()) return;
    static uint8_t px[2 * 4], b[64];
    for (int i = 0; i < 8; i++) px[i] = (uint8_t)(30 * i);
    size_t n = idx_image(b, 0x803, 3, (uint32_t[]){2, 2, 2}, px, sizeof px);
    write_bytes(tmp_file("train-images.idx3-ubyte"), b, n);
    n = idx_image(b, 0x801, 1, (uint32_t[]){2}, (uint8_t[]){4, 1}, 2);
    write_gz(tmp_file("train-labels.idx1-ubyte.gz"), b, n);
    nb_dataset d;
    CHECK_MSG(nb_mnist_load(tmpdir, true, &d) == 0, "%s", nb_errmsg());
    CHECK(d.n == 2 && d.shape[1] == 2 && d.shape[2] == 2 && d.u8 && !memcmp(d.u8, px, 8) && d.y && d.y[0] == 4);
    free_dataset(&d);
    CHECK_ERR(nb_mnist_load(tmpdir, false, &d) == 0, "t10k-images-idx3-ubyte.gz", "t10k-images.idx3-ubyte");
    tmp_close();
}

TEST(test_mnist_fashion_real_data_when_installed) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, R_OK) != 0) {
        printf("  note: %s not installed, skipping the real-data check\n", dir);
        return;
    }
    /* Reference values computed independently (NumPy on the same files). */
    struct { bool train; int64_t n; uint64_t pixel_sum; int first_label; double mean; } sets[] = {
        {true, 60000, 3431114169ull, 9, 0.2860405969887955},
        {false, 10000, 573469082ull, 9, 0.28684928071228494},
    };
    for (int s = 0; s < 2; s++) {
        nb_dataset d;
        int rc = nb_mnist_load(dir, sets[s].train, &d);
        CHECK_MSG(rc == 0, "%s", nb_errmsg());
        if (rc) continue;
        CHECK(d.n == sets[s].n && d.nclass == 10 && d.shape[1] == 28 && d.shape[2] == 28);
        CHECK(d.y[0] == sets[s].first_label);
        int64_t counts[10] = {0};
        for (int64_t i = 0; i < d.n; i++) {
            CHECK(d.y[i] >= 0 && d.y[i] < 10);
            if (d.y[i] >= 0 && d.y[i] < 10) counts[d.y[i]]++;
        }
        for (int c = 0; c < 10; c++) CHECK(counts[c] == d.n / 10); /* Fashion-MNIST is balanced */
        uint64_t sum = 0;
        for (int64_t i = 0; i < d.n * 784; i++) sum += d.u8[i];
        CHECK_MSG(sum == sets[s].pixel_sum, "pixel sum %llu, expected %llu", (unsigned long long)sum,
                  (unsigned long long)sets[s].pixel_sum);
        CHECK_NEAR((double)sum / (double)(d.n * 784) / 255.0, sets[s].mean, 1e-9);
        free_dataset(&d);
    }
    /* The float reader on the same test file. */
    int64_t n, h, w;
    nb_tensor *x = nb_idx_read_images("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &n, &h, &w);
    CHECK_MSG(x != NULL, "%s", nb_errmsg());
    if (x) {
        double m = 0;
        for (int64_t i = 0; i < x->size; i++) m += x->data[i];
        CHECK(n == 10000 && h == 28 && w == 28);
        CHECK_NEAR(m / (double)x->size, 0.28684928071228494, 1e-6);
        nb_tensor_free(x);
    }
}

/* --- what a file is (nb_sniff) --------------------------------------------- */

/* A gzip stream of len bytes, written to path. */
static void write_gzip(const char *path, const void *buf, size_t len) {
    gzFile g = gzopen(path, "wb");
    CHECK(g != NULL);
    if (!g) return;
    CHECK(gzwrite(g, buf, (unsigned)len) == (int)len);
    gzclose(g);
}

TEST(test_sniff_tells_every_kind) {
    if (!tmp_open()) return;
    struct {
        const char *name;
        const void *bytes;
        size_t len; /* 0: strlen */
        nb_file_kind want;
    } cases[] = {
        {"empty", "", 0, NB_FILE_EMPTY},
        {"a.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, NB_FILE_PNG},
        {"a.jpg", "\xff\xd8\xff\xe0\0\x10JFIF", 10, NB_FILE_JPEG},
        {"a.npy", "\x93NUMPY\x01\0v\0{'descr': '<f4'", 25, NB_FILE_NPY},
        {"idx3", "\0\0\x08\x03\0\0\0\x01\0\0\0\x1c\0\0\0\x1c", 16, NB_FILE_IDX},
        {"idx1", "\0\0\x08\x01\0\0\0\x02\x07\x03", 10, NB_FILE_IDX},
        {"train.csv", "epoch,train_loss,test_accuracy\n1,0.5,0.8\n", 0, NB_FILE_LOG},
        {"dqn.csv", "step,episode,return\n10,1,-1\n", 0, NB_FILE_LOG},
        {"data.csv", "f1,f2,label\n0.5,1,3\n0,0.25,1\n", 0, NB_FILE_CSV},
        {"nohead", "0.5,1,3\n0,0.25,1\n", 0, NB_FILE_CSV},
        {"onecol", "1.5\n-2\n", 0, NB_FILE_CSV},
        {"header-only", "x1,x2,y\n", 0, NB_FILE_CSV},
        {"svm", "+1 1:0.5 3:1\n-1 2:0.25\n", 0, NB_FILE_LIBSVM},
        {"svm-bad-line", "+1 1:0.5 3:1\n-1 2\n", 0, NB_FILE_LIBSVM},
        {"prose", "hello world, this is text\nand more of it\n", 0, NB_FILE_TEXT},
        {"words", "hello\n", 0, NB_FILE_TEXT},
        {"names-then-prose", "a,b,c\nno commas here\n", 0, NB_FILE_TEXT},
        {"binary", "\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11", 12, NB_FILE_BINARY},
        {"nul", "abc\0def", 7, NB_FILE_BINARY},
        /* UTF-16 (Windows "Unicode" saves) was "binary data" for its zero
         * bytes: named now, with how to convert it. */
        {"utf16le.csv", "\xFF\xFE" "a\0,\0b\0\n\0" "1\0,\0" "2\0\n\0", 18, NB_FILE_UTF16},
        {"utf16be.txt", "\xFE\xFF\0h\0i", 6, NB_FILE_UTF16},
        {"utf16-nobom", "e\0p\0o\0c\0h\0,\0l\0o\0s\0s\0", 20, NB_FILE_UTF16},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t len = cases[k].len ? cases[k].len : strlen(cases[k].bytes);
        nb_file_kind got = nb_sniff(cases[k].bytes, len);
        CHECK_MSG(got == cases[k].want, "%s: %s, expected %s", cases[k].name, nb_file_kind_name(got),
                  nb_file_kind_name(cases[k].want));
        /* The file gives what its bytes give. */
        write_bytes(tmp_file(cases[k].name), cases[k].bytes, len);
        CHECK_MSG(nb_sniff_file(tmp_file(cases[k].name)) == cases[k].want, "%s as a file", cases[k].name);
    }
    /* Models: any safetensors, and one whose metadata names a model of nabla fit. */
    size_t len;
    uint8_t *b = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd", 4, &len);
    CHECK(nb_sniff(b, len) == NB_FILE_SAFETENSORS);
    CHECK(nb_sniff(b, 20) == NB_FILE_SAFETENSORS); /* a truncated one is still one, to be reported as such */
    free(b);
    b = st_image("{\"__metadata__\":{\"nabla.model\":\"svm\"}}", NULL, 0, &len);
    CHECK(nb_sniff(b, len) == NB_FILE_FIT_MODEL);
    CHECK(nb_sniff(b, len - 3) == NB_FILE_FIT_MODEL); /* cut inside the header: found as text */
    free(b);
    /* charrnn, chat and wavenet models carry "nabla.model" too: not fit's, whole or cut. */
    const char *others[] = {"charrnn", "dualenc", "wavenet"};
    for (int k = 0; k < 3; k++) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"nabla.model\":\"%s\"}}", others[k]);
        b = st_image(hdr, NULL, 0, &len);
        CHECK_MSG(nb_sniff(b, len) == NB_FILE_SAFETENSORS, "%s", others[k]);
        CHECK_MSG(nb_sniff(b, len - 2) == NB_FILE_SAFETENSORS, "%s cut after the value", others[k]);
        free(b);
    }
    /* A real model file of each kind. */
    nb_tensor *t = nb_tensor_new(1, (int64_t[]){2});
    const char *names[] = {"w"};
    CHECK(nb_st_write(tmp_file("net.st"), names, &t, 1, NULL, NULL, 0) == 0);
    CHECK(nb_sniff_file(tmp_file("net.st")) == NB_FILE_SAFETENSORS);
    CHECK(nb_st_write(tmp_file("fit.st"), names, &t, 1, (const char *[]){"nabla.model"}, (const char *[]){"gmm"}, 1) == 0);
    CHECK(nb_sniff_file(tmp_file("fit.st")) == NB_FILE_FIT_MODEL);
    CHECK(nb_npy_write(tmp_file("x.npy"), t) == 0);
    CHECK(nb_sniff_file(tmp_file("x.npy")) == NB_FILE_NPY);
    nb_tensor_free(t);
    /* gzip: IDX inside is IDX (MNIST's .gz files), anything else is gzip data. */
    write_gzip(tmp_file("img.gz"), "\0\0\x08\x03\0\0\0\x01\0\0\0\x01\0\0\0\x01\x07", 17);
    CHECK(nb_sniff_file(tmp_file("img.gz")) == NB_FILE_IDX);
    write_gzip(tmp_file("notes.gz"), "some text\n", 10);
    CHECK(nb_sniff_file(tmp_file("notes.gz")) == NB_FILE_GZIP);
    CHECK(nb_sniff_file(tmpdir) == NB_FILE_FOLDER);
    CHECK(nb_sniff_file(tmp_file("missing")) == NB_FILE_MISSING);
    /* Every kind has a name to print. */
    for (int k = NB_FILE_MISSING; k <= NB_FILE_UTF16; k++)
        CHECK(strcmp(nb_file_kind_name((nb_file_kind)k), "an unknown kind of file") != 0);
    CHECK(!strcmp(nb_file_kind_name(NB_FILE_PNG), "a PNG image"));
    tmp_close();
}

/* A model file whose header is longer than the NB_SNIFF_BYTES sniffed first
 * (long metadata before "nabla.model"): nb_sniff_file reads the whole header
 * to tell a model of nabla fit from another (that branch never ran). */
TEST(test_sniff_file_reads_a_long_safetensors_header_whole) {
    if (!tmp_open()) return;
    size_t n = NB_SNIFF_BYTES + 1000;
    char *longval = malloc(n + 1);
    memset(longval, 'x', n);
    longval[n] = 0;
    nb_tensor *t = nb_tensor_new(1, (int64_t[]){2});
    const char *names[] = {"w"}, *keys[] = {"a.note", "nabla.model"};
    const char *kinds[] = {"gmm", "wavenet"};
    nb_file_kind want[] = {NB_FILE_FIT_MODEL, NB_FILE_SAFETENSORS};
    for (int k = 0; k < 2; k++) {
        const char *vals[] = {longval, kinds[k]};
        CHECK(nb_st_write(tmp_file("long.st"), names, &t, 1, keys, vals, 2) == 0);
        /* the key lies past the first NB_SNIFF_BYTES, inside the header */
        size_t len;
        uint8_t *b = nb_read_file(tmp_file("long.st"), &len);
        CHECK(b && len > NB_SNIFF_BYTES);
        const char *at = b ? memmem(b, len, "\"nabla.model\"", 13) : NULL;
        CHECK(at && (size_t)(at - (const char *)b) > NB_SNIFF_BYTES);
        free(b);
        CHECK_MSG(nb_sniff_file(tmp_file("long.st")) == want[k], "%s", kinds[k]);
    }
    nb_tensor_free(t);
    free(longval);
    tmp_close();
}

TEST(test_sniff_data_kind_uses_the_extension_only_to_break_ties) {
    if (!tmp_open()) return;
    /* Content wins: CSV named .t (nabla convert's test split), LIBSVM named .csv. */
    write_bytes(tmp_file("fm.csv.t"), "f1,f2,label\n0.5,1,3\n", 20);
    CHECK(nb_data_kind(tmp_file("fm.csv.t")) == NB_FILE_CSV);
    write_bytes(tmp_file("svm.csv"), "1 1:0.5\n", 8);
    CHECK(nb_data_kind(tmp_file("svm.csv")) == NB_FILE_LIBSVM);
    /* Text that is neither goes to the parser its name asks for. */
    write_bytes(tmp_file("odd.csv"), "hello\n", 6);
    CHECK(nb_data_kind(tmp_file("odd.csv")) == NB_FILE_CSV);
    write_bytes(tmp_file("odd.libsvm"), "hello\n", 6);
    CHECK(nb_data_kind(tmp_file("odd.libsvm")) == NB_FILE_LIBSVM);
    /* Anything else is named. */
    write_bytes(tmp_file("odd.txt"), "hello\n", 6);
    CHECK_ERR(nb_data_kind(tmp_file("odd.txt")) == NB_FILE_CSV, "odd.txt", "not a data file", "it looks like text");
    write_bytes(tmp_file("pic.csv"), "\x89PNG\r\n\x1a\n\0\0", 10);
    CHECK_ERR(nb_data_kind(tmp_file("pic.csv")) == NB_FILE_CSV, "pic.csv: not a data file: it looks like a PNG image");
    write_bytes(tmp_file("labels"), "\0\0\x08\x01\0\0\0\x01\x05", 9);
    nb_clear_error();
    CHECK(nb_data_kind(tmp_file("labels")) == NB_FILE_IDX); /* IDX, and an error: not data alone */
    CHECK_ERR(false, "labels", "IDX", "folder");
    CHECK_ERR(nb_data_kind(tmp_file("none")) == NB_FILE_CSV, "none", "no such file");
    tmp_close();
}

/* What convert writes reads back with every feature, even a last one that is
 * always zero (a corner pixel), so a network or model sees d inputs. */
TEST(test_libsvm_write_keeps_the_feature_count) {
    if (!tmp_open()) return;
    nb_tensor *X = nb_tensor_from(2, (int64_t[]){2, 4}, (float[]){0.5f, 0, 1, 0, 0, 2, 0, 0});
    float y[2] = {3, 1}, *y2;
    nb_tensor *X2;
    CHECK(nb_libsvm_write(tmp_file("d.libsvm"), X, y) == 0);
    CHECK(nb_libsvm_read(tmp_file("d.libsvm"), 0, &X2, &y2) == 0);
    CHECK(X2 && X2->shape[1] == 4);
    for (int64_t i = 0; X2 && i < 8; i++) CHECK(X2->data[i] == X->data[i]);
    CHECK(y2 && y2[0] == 3 && y2[1] == 1);
    nb_tensor_free(X);
    nb_tensor_free(X2);
    free(y2);
    tmp_close();
}

/* CSV as spreadsheets and pandas write it (RFC 4180): "quoted" cells, names
 * holding commas or doubled quotes, and classic Mac OS line ends (a lone
 * CR). A quoted number was refused ("expected a number, got '"1"'"), a
 * quoted name with a comma split into two columns ("row has 2 columns, the
 * header has 3"), "a ""q""" kept its doubled quotes and a CR-only file was
 * one line whose numbers were taken for a header. */
TEST(test_csv_quoted_cells_and_lone_cr_line_ends) {
    const char *texts[] = {
        "\"x,y\",\"say \"\"hi\"\"\"\n\"1\",\"-2.5e1\"\n 3 , \"4\" \n",
        "x;y,say \"hi\"\r1,-25\r3,4\r",
    };
    for (int k = 0; k < 2; k++) {
        nb_csv *c = nb_csv_parse(texts[k], strlen(texts[k]), "q.csv");
        CHECK_MSG(c != NULL, "case %d: %s", k, nb_errmsg());
        if (!c) continue;
        CHECK(c->ncols == 2 && c->nrows == 2);
        if (c->ncols == 2) {
            CHECK_MSG(!strcmp(c->names[0], k ? "x;y" : "x,y") && !strcmp(c->names[1], "say \"hi\""), "names [%s] [%s]",
                      c->names[0], c->names[1]);
            CHECK(c->nrows == 2 && c->data[0] == 1 && c->data[1] == -25 && c->data[2] == 3 && c->data[3] == 4);
            CHECK(c->nrows == 2 && c->lines[0] == 2 && c->lines[1] == 3);
        }
        nb_csv_free(c);
    }
    /* As a data set, found by content (no .csv to break a tie). */
    if (tmp_open()) {
        const char *data = "\"0.5\",\"1\",\"0\"\n\"2\",\"3\",\"1\"\n\"4\",\"5\",\"1\"\n";
        write_bytes(tmp_file("quoted"), data, strlen(data));
        CHECK(nb_data_kind(tmp_file("quoted")) == NB_FILE_CSV);
        nb_dataset d;
        CHECK_MSG(nb_dataset_load(tmp_file("quoted"), true, &d) == 0, "%s", nb_errmsg());
        CHECK(d.n == 2 && d.shape[0] == 2 && d.f32 && d.f32[0] == 0.5f && d.y && d.y[1] == 1);
        nb_dataset_free(&d);
        tmp_close();
    }
    /* A number as long as a spreadsheet may write it (80 digits) is read,
     * not refused as "not a number". */
    char longnum[128] = "a\n1.";
    memset(longnum + 4, '0', 80);
    strcpy(longnum + 84, "1\n");
    nb_csv *c = nb_csv_parse(longnum, strlen(longnum), "long.csv");
    CHECK_MSG(c && c->nrows == 1 && c->data[0] == 1.0, "%s", c ? "wrong value" : nb_errmsg());
    nb_csv_free(c);
}

/* Numbers are the forms Python's float() and np.loadtxt read. strtod's
 * hexadecimal ("0x10" was read as 16, "0x1p3" as 8) and "nan(...)" are
 * refused; inf and nan are read in a log and refused, with the place, in
 * data, as is a value beyond float32 (1e39 became inf in training data and
 * was met only as "logreg_fit: X[1, 0] is not finite"). */
TEST(test_csv_number_forms_as_numpy_loadtxt) {
    struct { const char *cell; double want; } ok[] = {
        {" 1.5 ", 1.5}, {"+3", 3}, {".5", 0.5}, {"-1e-3", -1e-3}, {"1e-400", 0}, {"\"2\"", 2},
        {"inf", INFINITY}, {"-Infinity", -INFINITY}, {"1e999", INFINITY}, {"NaN", NAN}, {"", NAN},
        /* exponents beyond int: strtod's inf and 0, not a wrapped exponent */
        {"1e4294967296", INFINITY}, {"1e-4294967297", 0},
    };
    char text[64];
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        snprintf(text, sizeof text, "a,b\n%s,1\n", ok[k].cell);
        nb_csv *c = nb_csv_parse(text, strlen(text), "n.csv");
        CHECK_MSG(c && c->nrows == 1 &&
                      (isnan(ok[k].want) ? isnan(c->data[0]) : c->data[0] == ok[k].want),
                  "'%s': %s", ok[k].cell, c ? "wrong value" : nb_errmsg());
        nb_csv_free(c);
    }
    struct { const char *cell; unsigned flags; const char *want; } bad[] = {
        {"0x10", 0, "n.csv:2: column 1 (a): expected a decimal number, got the hexadecimal '0x10'"},
        {"-0X1p3", NB_CSV_FINITE, "n.csv:2: column 1 (a): expected a decimal number, got the hexadecimal '-0X1p3'"},
        {"nan(12)", 0, "n.csv:2: column 1 (a): expected a number, got 'nan(12)'"},
        {"nan", NB_CSV_FINITE, "n.csv:2: column 1 (a): 'nan' is not a finite number"},
        {"-infinity", NB_CSV_FINITE, "n.csv:2: column 1 (a): '-infinity' is not a finite number"},
        {"1e999", NB_CSV_FINITE, "n.csv:2: column 1 (a): '1e999' is not a finite number"},
        {"1e39", NB_CSV_FINITE, "n.csv:2: column 1 (a): '1e39' is not a finite number in float32"},
        {"", NB_CSV_FINITE, "n.csv:2: column 1 (a): empty cell; expected a finite number"},
        /* no digits, or an exponent without its digits: not numbers for
         * float() either (the fast path read "." and "-" as 0, "1e" as 1) */
        {".", 0, "n.csv:2: column 1 (a): expected a number, got '.'"},
        {"-", 0, "n.csv:2: column 1 (a): expected a number, got '-'"},
        {"e5", 0, "n.csv:2: column 1 (a): expected a number, got 'e5'"},
        {"1e", 0, "n.csv:2: column 1 (a): expected a number, got '1e'"},
        {"1e+", 0, "n.csv:2: column 1 (a): expected a number, got '1e+'"},
        /* a sign before the hexadecimal or nan(...) changes nothing */
        {"+0x10", 0, "n.csv:2: column 1 (a): expected a decimal number, got the hexadecimal '+0x10'"},
        {"+nan(1)", 0, "n.csv:2: column 1 (a): expected a number, got '+nan(1)'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        snprintf(text, sizeof text, "a,b\n%s,1\n", bad[k].cell);
        nb_csv *c = nb_csv_parse_ex(text, strlen(text), "n.csv", bad[k].flags);
        CHECK_MSG(!c && strstr(nb_errmsg(), bad[k].want), "'%s': %s", bad[k].cell, c ? "accepted" : nb_errmsg());
        nb_csv_free(c);
    }
    /* 3.4e38 is float32's largest: still finite there. */
    nb_csv *c = nb_csv_parse_ex("a\n3.4e38\n", 9, "n.csv", NB_CSV_FINITE);
    CHECK_MSG(c && c->data[0] == 3.4e38, "%s", c ? "wrong value" : nb_errmsg());
    nb_csv_free(c);
    /* A header-less data file whose first cell is hexadecimal: named, not
     * "expected a header row of column names, got the number '1'". */
    c = nb_csv_parse_ex("0x10,1\n2,3\n", 11, "n.csv", NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE);
    CHECK_MSG(!c && strstr(nb_errmsg(), "n.csv:1: column 1: expected a column name or a decimal number, got the "
                                        "hexadecimal '0x10'"), "%s", c ? "accepted" : nb_errmsg());
    nb_csv_free(c);
}

/* strtod skips any leading white space, '\v' and '\f' included, which the
 * cell's trimming (spaces and tabs) leaves: "\v0x10" was read as 16 and
 * "\fnan(1)" as NaN, where the same cells without it are refused (found by
 * fuzz_csv's strtod oracle). */
TEST(test_csv_hex_and_nan_paren_behind_white_space_refused) {
    struct { const char *cell; const char *want; } bad[] = {
        {"\v0x10", "n.csv:2: column 1 (a): expected a decimal number, got the hexadecimal '?0x10'"},
        {"\f-0X1p3", "n.csv:2: column 1 (a): expected a decimal number, got the hexadecimal '?-0X1p3'"},
        {"\v\f+0x.8", "n.csv:2: column 1 (a): expected a decimal number, got the hexadecimal '??+0x.8'"},
        {"\fnan(1)", "n.csv:2: column 1 (a): expected a number, got '?nan(1)'"},
    };
    char text[64];
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        snprintf(text, sizeof text, "a,b\n%s,1\n", bad[k].cell);
        nb_csv *c = nb_csv_parse(text, strlen(text), "n.csv");
        CHECK_MSG(!c && strstr(nb_errmsg(), bad[k].want), "'%s': %s", bad[k].cell, c ? "accepted" : nb_errmsg());
        nb_csv_free(c);
    }
    /* A number behind such white space is still the number, as float() reads it. */
    nb_csv *c = nb_csv_parse("a,b\n\v2.5,1\n", 11, "n.csv");
    CHECK_MSG(c && c->nrows == 1 && c->data[0] == 2.5, "%s", c ? "wrong value" : nb_errmsg());
    nb_csv_free(c);
}

/* Cells are parsed where they are split, most without strtod (a decimal of
 * at most 15 significant digits and a power of ten within 10^+-22): every
 * value read is strtod's, bit for bit, over random cells of every shape
 * (signs, leading zeros, exponents, 1 to 19 digits, the fast path's limits
 * and just past them), and the line of each row is kept. */
TEST(test_csv_values_are_strtod_bit_for_bit) {
    enum { ROWS = 4000, COLS = 5 };
    size_t cap = (size_t)ROWS * COLS * 40 + 64, len = 0;
    char *text = malloc(cap), (*cells)[40] = malloc(sizeof(char[40]) * ROWS * COLS);
    len += (size_t)snprintf(text, cap, "a,b,c,d,e\n");
    uint64_t r = 88172645463325252ull;
    for (int i = 0; i < ROWS * COLS; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        char *c = cells[i];
        int k = 0, digits = 1 + (int)(r % 19), point = (int)((r >> 8) % (unsigned)(digits + 2)) - 1;
        if ((r >> 16) & 1) c[k++] = (r >> 17) & 1 ? '-' : '+';
        for (int d = 0; d < digits; d++) {
            if (d == point) c[k++] = '.';
            c[k++] = (char)('0' + ((r >> (20 + 2 * (d % 20))) + (uint64_t)d * 7) % 10);
        }
        if ((r >> 60) & 1) k += snprintf(c + k, (size_t)(40 - k), "e%d", (int)((r >> 48) % 61) - 30);
        c[k] = 0;
        len += (size_t)snprintf(text + len, cap - len, "%s%s", c, i % COLS == COLS - 1 ? "\n" : ",");
    }
    nb_csv *csv = nb_csv_parse(text, len, "r.csv");
    CHECK_MSG(csv && csv->nrows == ROWS, "%s", csv ? "wrong row count" : nb_errmsg());
    int wrong = 0;
    for (int i = 0; csv && csv->nrows == ROWS && i < ROWS * COLS; i++) {
        double want = strtod(cells[i], NULL);
        if (memcmp(&want, &csv->data[i], sizeof want) && wrong++ < 5)
            CHECK_MSG(false, "'%s': %.17g, strtod %.17g", cells[i], csv->data[i], want);
    }
    CHECK(csv && csv->nrows == ROWS && csv->lines[ROWS - 1] == ROWS + 1);
    nb_csv_free(csv);
    /* The limits: 15 digits and 10^22 are exact, one more goes to strtod.
     * The last two have 16 digits, which are not exact as a double: one
     * more rounding than strtod's (m / 10^16 and m * 100 are off by one ulp). */
    const char *edge = "x\n999999999999999\n9999999999999999\n1e22\n1e23\n123456789012345e-22\n0.1\n-0\n4.9e-324\n"
                       "9768070884241057e-16\n9554309668325211e2\n";
    csv = nb_csv_parse(edge, strlen(edge), "e.csv");
    CHECK_MSG(csv && csv->nrows == 10, "%s", csv ? "wrong row count" : nb_errmsg());
    const char *want[10] = {"999999999999999", "9999999999999999", "1e22", "1e23", "123456789012345e-22", "0.1", "-0",
                            "4.9e-324", "9768070884241057e-16", "9554309668325211e2"};
    for (int i = 0; csv && csv->nrows == 10 && i < 10; i++) {
        double w = strtod(want[i], NULL);
        CHECK_MSG(!memcmp(&w, &csv->data[i], sizeof w), "'%s': %.17g", want[i], csv->data[i]);
    }
    nb_csv_free(csv);
    free(text);
    free(cells);
}

/* Lines that start with '#' are comments, as np.loadtxt skips them; the
 * header np.savetxt(path, a, delimiter=',', header='x,y,label') writes
 * ("# x,y,label" above the rows, which the README recommends) names the
 * columns. The first column was named "# x", and a comment line was "expected
 * a number, got '# a comment'". */
TEST(test_csv_comment_lines_and_savetxt_header) {
    const char *savetxt = "# x,y,label\n1.000000000000000000e+00,2.5e+00,0.0e+00\n3,4,1\n# a footer\n";
    const unsigned flags[] = {0, NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE};
    for (int k = 0; k < 2; k++) {
        nb_csv *c = nb_csv_parse_ex(savetxt, strlen(savetxt), "h.csv", flags[k]);
        CHECK_MSG(c && c->ncols == 3 && c->nrows == 2, "flags %u: %s", flags[k], c ? "wrong shape" : nb_errmsg());
        if (c && c->ncols == 3 && c->nrows == 2) {
            CHECK_MSG(!strcmp(c->names[0], "x") && !strcmp(c->names[2], "label"), "names [%s] [%s]", c->names[0],
                      c->names[2]);
            CHECK(c->data[1] == 2.5 && c->data[5] == 1 && c->lines[0] == 2 && c->lines[1] == 3);
        }
        nb_csv_free(c);
    }
    /* The same behind a UTF-8 byte-order mark. */
    const char *bom = "\xEF\xBB\xBF# x,y\n1,2\n";
    nb_csv *b = nb_csv_parse_ex(bom, strlen(bom), "b.csv", NB_CSV_HEADER_OPTIONAL);
    CHECK_MSG(b && b->nrows == 1 && !strcmp(b->names[1], "y"), "%s", b ? b->names[1] : nb_errmsg());
    nb_csv_free(b);
    /* Comments anywhere, a real header after them, and a comment that is
     * not a header (a number, or another count of cells) is only a comment. */
    const char *commented = "# written by a script, 2024\nepoch,loss\n# restart\n1,0.5\n  # indented\n2,0.25\n";
    nb_csv *c = nb_csv_parse_ex(commented, strlen(commented), "log.csv", NB_CSV_LOG);
    CHECK_MSG(c && c->nrows == 2 && !strcmp(c->names[0], "epoch") && c->data[3] == 0.25 && c->lines[1] == 6, "%s",
              c ? "wrong table" : nb_errmsg());
    nb_csv_free(c);
    const char *mismatch = "# x,y\n1,2,0\n3,4,1\n";
    c = nb_csv_parse_ex(mismatch, strlen(mismatch), "m.csv", NB_CSV_HEADER_OPTIONAL);
    CHECK_MSG(c && c->nrows == 2 && !strcmp(c->names[0], "column 1"), "%s", c ? c->names[0] : nb_errmsg());
    nb_csv_free(c);
    /* A comment of more cells than the row, or with a hexadecimal cell, is
     * no header either. */
    const char *others[] = {"# a,b,1\n1,2\n", "# a,b,c\n1,2\n", "# 0x1,b\n1,2\n"};
    for (int k = 0; k < 3; k++) {
        c = nb_csv_parse_ex(others[k], strlen(others[k]), "o.csv", NB_CSV_HEADER_OPTIONAL);
        CHECK_MSG(c && c->nrows == 1 && !strcmp(c->names[0], "column 1"), "%s: %s", others[k],
                  c ? c->names[0] : nb_errmsg());
        nb_csv_free(c);
    }
    c = nb_csv_parse_ex(mismatch, strlen(mismatch), "m.csv", 0);
    CHECK_MSG(!c && strstr(nb_errmsg(), "m.csv:2: column 1: expected a header row of column names"), "%s",
              c ? "accepted" : nb_errmsg());
    nb_csv_free(c);
    /* As a training data set, by content. */
    if (tmp_open()) {
        write_bytes(tmp_file("savetxt"), savetxt, strlen(savetxt));
        nb_dataset d;
        CHECK_MSG(nb_dataset_load(tmp_file("savetxt"), true, &d) == 0, "%s", nb_errmsg());
        nb_dataset_free(&d);
        tmp_close();
    }
}

/* A UTF-16 table or text is named as such by the readers, with the cure. */
TEST(test_utf16_files_are_named_not_binary) {
    const char csv16[] = "\xFF\xFE" "a\0,\0b\0\n\0" "1\0,\0" "2\0\n\0";
    nb_csv *c = nb_csv_parse(csv16, sizeof csv16 - 1, "u.csv");
    CHECK(!c && strstr(nb_errmsg(), "u.csv") && strstr(nb_errmsg(), "UTF-16") && strstr(nb_errmsg(), "iconv"));
    nb_csv_free(c);
    int64_t n;
    int32_t *cp = nb_utf8_decode((const uint8_t *)csv16, sizeof csv16 - 1, "u.txt", &n);
    CHECK(!cp && strstr(nb_errmsg(), "u.txt") && strstr(nb_errmsg(), "UTF-16"));
    free(cp);
}

/* Other separators and broken quotes are named, not reported as a cell that
 * is not a number ("expected a number, got '1;2'"). */
TEST(test_csv_other_separators_and_open_quotes_are_named) {
    struct { const char *text, *want[3]; } cases[] = {
        {"a;b\n1;2\n", {"s.csv:1:", "semicolons", "comma-separated"}},
        {"a;b\n1,5;2,5\n", {"s.csv:1:", "semicolons", "decimal point"}},
        {"a\tb\n1\t2\n", {"s.csv:1:", "tabs", "comma-separated"}},
        {"1.000000000000000000e+00 2.5e+00\n3 4\n", {"s.csv:1:", "separated by spaces", "delimiter=','"}},
        {"a,b\n\"1,2\n", {"s.csv:2:", "column 1", "not closed"}},
        {"a,b\n\"1\"x,2\n", {"s.csv:2:", "column 1", "after the closing quote"}},
        /* A second quoted text after a closed one: not an unclosed quote. */
        {"a,b\n\"1\" \"2\",3\n", {"s.csv:2:", "column 1", "expected ',' after the closing quote, got '\"'"}},
        {"\"a\"\"\"b\",c\n1,2\n", {"s.csv:1:", "column 1", "after the closing quote, got 'b'"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nb_csv *c = nb_csv_parse(cases[k].text, strlen(cases[k].text), "s.csv");
        CHECK_MSG(!c, "case %zu accepted", k);
        for (int j = 0; j < 3; j++)
            CHECK_MSG(strstr(nb_errmsg(), cases[k].want[j]), "case %zu: '%s' lacks '%s'", k, nb_errmsg(),
                      cases[k].want[j]);
        nb_csv_free(c);
    }
}

/* A UTF-8 byte-order mark (Excel's "CSV UTF-8") starts the first line of a
 * data file: it is skipped, so a header-less table stays header-less, the
 * first column keeps its plain name and a log stays a log. */
TEST(test_data_files_with_a_byte_order_mark) {
    if (!tmp_open()) return;
    const char *bare = "\xEF\xBB\xBF" "0.5,1,0\n2,3,1\n4,5,1\n";
    write_bytes(tmp_file("bom.csv"), bare, strlen(bare));
    CHECK(nb_data_kind(tmp_file("bom.csv")) == NB_FILE_CSV);
    nb_dataset d;
    CHECK_MSG(nb_dataset_load(tmp_file("bom.csv"), true, &d) == 0, "%s", nb_errmsg());
    CHECK(d.n == 2 && d.shape[0] == 2 && d.f32 && d.f32[0] == 0.5f && d.y && d.y[0] == 0 && d.nclass == 2);
    nb_dataset_free(&d);
    const char *named = "\xEF\xBB\xBF" "epoch,train_loss\n1,0.5\n";
    CHECK(nb_sniff((const uint8_t *)named, strlen(named)) == NB_FILE_LOG);
    nb_csv *c = nb_csv_parse_ex(named, strlen(named), "log.csv", NB_CSV_LOG);
    CHECK_MSG(c && !strcmp(c->names[0], "epoch") && c->nrows == 1, "%s", c ? c->names[0] : nb_errmsg());
    nb_csv_free(c);
    const char *svm = "\xEF\xBB\xBF" "1 1:0.5\n0 2:2\n";
    write_bytes(tmp_file("bom.svm"), svm, strlen(svm));
    CHECK(nb_data_kind(tmp_file("bom.svm")) == NB_FILE_LIBSVM);
    nb_tensor *X;
    float *y;
    CHECK_MSG(nb_libsvm_read(tmp_file("bom.svm"), 0, &X, &y) == 0, "%s", nb_errmsg());
    CHECK(X && X->shape[0] == 2 && X->shape[1] == 2 && X->data[0] == 0.5f && y && y[0] == 1);
    nb_tensor_free(X);
    free(y);
    tmp_close();
}

TEST(test_readers_name_a_file_of_the_wrong_kind) {
    if (!tmp_open()) return;
    const char *text = "some notes, not a model\nsecond line\n";
    write_bytes(tmp_file("notes.st"), text, strlen(text));
    CHECK_ERR(nb_st_read(tmp_file("notes.st")) != NULL, "notes.st: not a nabla model file: it looks like text");
    CHECK_ERR(nb_net_load(tmp_file("notes.st"), NULL) != NULL, "not a nabla model file");
    write_bytes(tmp_file("pic.st"), "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    CHECK_ERR(nb_st_read(tmp_file("pic.st")) != NULL, "pic.st: not a nabla model file: it looks like a PNG image");
    write_bytes(tmp_file("empty.st"), "", 0);
    CHECK_ERR(nb_st_read(tmp_file("empty.st")) != NULL, "empty.st: not a nabla model file: it looks like an empty file");
    /* A model of nabla fit is not a network. */
    nb_tensor *t = nb_tensor_new(1, (int64_t[]){2});
    CHECK(nb_st_write(tmp_file("fit.st"), (const char *[]){"w"}, &t, 1, (const char *[]){"nabla.model"},
                      (const char *[]){"svm"}, 1) == 0);
    CHECK_ERR(nb_net_load(tmp_file("fit.st"), NULL) != NULL, "fit.st: not a network model: it holds a svm model (nabla fit)");
    /* Every loader names what a file of another kind holds. */
    struct { const char *key, *val, *holds; } kinds[] = {
        {"nabla.model", "charrnn", "it holds a character-level language model (nabla charrnn train)"},
        {"nabla.model", "wavenet", "it holds a WaveNet model (nabla wavenet train)"},
        {"nabla.model", "dualenc", "it holds a dual-encoder chat model (nabla chat train)"},
        {"nabla.dqn.env", "catch", "it holds a DQN model (nabla dqn train)"},
        {"nabla.model", "gpt", "it holds a model of unknown kind (nabla.model = 'gpt')"},
        {"other", "x", "it holds no model nabla knows"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        CHECK(nb_st_write(tmp_file("k.st"), (const char *[]){"w"}, &t, 1, &kinds[k].key, &kinds[k].val, 1) == 0);
        CHECK_ERR(nb_net_load(tmp_file("k.st"), NULL) != NULL, "k.st: not a network model", kinds[k].holds);
    }
    CHECK_ERR(nb_charrnn_load(tmp_file("fit.st"), NULL) != NULL, "fit.st: not a charrnn model: it holds a svm model");
    nb_tensor_free(t);
    /* Data: a model or a picture is not data. */
    nb_dataset d;
    CHECK_ERR(nb_dataset_load(tmp_file("fit.st"), true, &d) == 0, "fit.st: not a data file: it looks like a model from nabla fit");
    CHECK_ERR(nb_dataset_load(tmp_file("pic.st"), true, &d) == 0, "not a data file: it looks like a PNG image");
    /* Logs: a model, a data file's CSV, a table of numbers are not training logs. */
    size_t len;
    uint8_t *b = nb_read_file(tmp_file("fit.st"), &len);
    CHECK_ERR(b && nb_csv_parse_ex((const char *)b, len, "m.st", NB_CSV_LOG) != NULL,
              "m.st: not a training log: it looks like a model from nabla fit");
    CHECK_ERR(b && nb_csv_parse_ex((const char *)b, len, "m.st", 0) != NULL, "m.st: not a CSV file");
    free(b);
    const char *data = "f1,f2,label\n0.5,1,3\n";
    CHECK_ERR(nb_csv_parse_ex(data, strlen(data), "fm.csv", NB_CSV_LOG) != NULL, "fm.csv: not a training log",
              "f1, f2, label");
    CHECK_ERR(nb_csv_parse_ex("0.5,1\n2,3\n", 10, "n.csv", NB_CSV_LOG) != NULL, "n.csv: not a training log", "numbers");
    CHECK_ERR(nb_csv_parse_ex("1 1:0.5\n", 8, "s", NB_CSV_LOG) != NULL, "s: not a training log: it looks like LIBSVM text");
    /* Real logs read, whatever their first column, if a column is one a log has. */
    const char *logs[] = {"epoch,train_loss\n1,0.5\n", "step,train_loss_bpc,val_loss_bpc,seconds\n10,3,3.1,1\n",
                          "iter,loss\n1,2\n", "step,episode,return,mean100\n9,1,-1,-1\n"};
    for (int k = 0; k < 4; k++) {
        nb_csv *c = nb_csv_parse_ex(logs[k], strlen(logs[k]), "log.csv", NB_CSV_LOG);
        CHECK_MSG(c != NULL, "log %d: %s", k, nb_errmsg());
        nb_csv_free(c);
    }
    tmp_close();
}

/* A NULL path is an error with a message, from every reader and writer:
 * nb_write_file_atomic dereferenced it (a crash in every writer), and
 * nb_dataset_load, nb_mnist_load and nb_net_parse passed it to strcmp,
 * strlen and strdup. */
TEST(test_io_null_paths_are_errors) {
    size_t len;
    nb_tensor *t = nb_ones(NB_SHAPE(2));
    nb_dataset d;
    CHECK(nb_npy_write(NULL, t) == -1 && strstr(nb_errmsg(), "NULL"));
    CHECK(nb_st_write(NULL, (const char *[]){"a"}, &t, 1, NULL, NULL, 0) == -1 && strstr(nb_errmsg(), "NULL"));
    CHECK(nb_write_file_atomic(NULL, "x", 1) == -1 && strstr(nb_errmsg(), "NULL"));
    CHECK(!nb_read_file(NULL, &len) && strstr(nb_errmsg(), "NULL"));
    CHECK(!nb_npy_read(NULL) && strstr(nb_errmsg(), "NULL"));
    CHECK(!nb_st_read(NULL) && strstr(nb_errmsg(), "NULL"));
    CHECK(!nb_csv_read(NULL) && strstr(nb_errmsg(), "NULL"));
    CHECK(!nb_net_load_cfg(NULL) && strstr(nb_errmsg(), "NULL"));
    CHECK(!nb_net_parse(NULL, "n.cfg") && strstr(nb_errmsg(), "n.cfg: the description is NULL"));
    CHECK(!nb_idx_read_labels(NULL, NULL) && strstr(nb_errmsg(), "NULL"));
    CHECK(nb_dataset_load(NULL, true, &d) == -1 && strstr(nb_errmsg(), "NULL"));
    CHECK(nb_mnist_load(NULL, true, &d) == -1 && strstr(nb_errmsg(), "NULL"));
    CHECK(nb_sniff_file(NULL) == NB_FILE_MISSING);
    CHECK(nb_data_kind(NULL) == NB_FILE_MISSING && strstr(nb_errmsg(), "NULL"));
    nb_arena_reset();
}
