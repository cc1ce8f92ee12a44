/* file.c — whole-file reads, atomic writes and element-type conversion shared
 * by every reader of outside formats. */
#include "io.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Larger files are refused rather than read: nothing nabla loads is that big,
 * and a wrong path (a disk image, /dev/zero) should fail fast, not swap. */
#define NB_READ_MAX ((uint64_t)8 << 30)

uint8_t *nb_read_file(const char *path, size_t *len) {
    *len = 0;
    /* NULL reached open() (and "%s") unchecked; every reader comes here. */
    if (!path) {
        nb_error("nb_read_file: the path is NULL");
        return NULL;
    }
    int fd = nb__open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        /* "-" is standard input to many tools; nabla's readers take files
         * (they sniff, then read: a pipe cannot be read twice). */
        if (errno == ENOENT && !strcmp(path, "-"))
            nb_error("-: cannot open: no file named '-' (standard input is not read: give a file path)");
        else
            nb_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        nb_error("%s: cannot stat: %s", path, strerror(errno));
        nb__close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        nb_error("%s: is a folder, expected a file", path);
        nb__close(fd);
        return NULL;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > NB_READ_MAX) {
        nb_error("%s: file is %lld bytes, more than the %llu-byte limit", path, (long long)st.st_size,
                 (unsigned long long)NB_READ_MAX);
        nb__close(fd);
        return NULL;
    }
    /* The size from fstat is only a hint: the file may change while we read,
     * and pipes have none. Read until end of file, growing as needed. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536, n = 0;
    uint8_t *buf = nb__malloc(cap + 1);
    if (!buf) {
        nb_error("%s: out of memory for %zu bytes", path, cap);
        nb__close(fd);
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= NB_READ_MAX) {
                nb_error("%s: more than the %llu-byte limit", path, (unsigned long long)NB_READ_MAX);
                goto fail;
            }
            size_t ncap = cap * 2 > NB_READ_MAX ? NB_READ_MAX : cap * 2;
            uint8_t *nb = nb__realloc(buf, ncap + 1);
            if (!nb) {
                nb_error("%s: out of memory for %zu bytes", path, ncap);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = nb__read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            nb_error("%s: read error after %zu bytes: %s", path, n, strerror(errno));
            goto fail;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    nb__close(fd);
    buf[n] = 0; /* text parsers may treat the buffer as a C string */
    *len = n;
    return buf;
fail:
    free(buf);
    nb__close(fd);
    return NULL;
}

/* Writes all of buf, retrying short writes and interrupted calls. */
static int write_all(int fd, const uint8_t *buf, size_t len) {
    while (len) {
        ssize_t w = nb__write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) { /* no progress and no error: stop rather than spin */
            errno = EIO;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static int write_atomic(const char *path, const void *buf, size_t len);

/* Writes buf into path as it stands: a device, FIFO or socket. */
static int write_in_place(const char *path, const void *buf, size_t len) {
    int fd = nb__open(path, O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0) return nb_error("%s: cannot open for writing: %s", path, strerror(errno));
    if (write_all(fd, buf, len) != 0) {
        nb_error("%s: write error: %s", path, strerror(errno));
        nb__close(fd);
        return -1;
    }
    if (nb__close(fd) != 0) return nb_error("%s: close failed: %s", path, strerror(errno));
    return 0;
}

int nb_write_file_atomic(const char *path, const void *buf, size_t len) {
    if (!path) return nb_error("nb_write_file_atomic: the path is NULL"); /* was dereferenced: every writer comes here */
    if (!*path) return nb_error("nb_write_file_atomic: empty path");
    /* A rename would replace the node at path, not write into what it
     * stands for: a device, FIFO or socket (--out /dev/stdout to a terminal
     * or pipe, /dev/null) is written in place (as root, renaming over
     * /dev/null made it a regular file); it has no earlier contents to keep.
     * A symbolic link (/dev/stdout redirected to a file, a user's link) is
     * followed, so the temporary file and the rename are at its target and
     * the link stays. */
    struct stat target;
    if (stat(path, &target) == 0 && !S_ISREG(target.st_mode) && !S_ISDIR(target.st_mode))
        return write_in_place(path, buf, len);
    char *real = NULL;
    struct stat link;
    if (lstat(path, &link) == 0 && S_ISLNK(link.st_mode)) real = realpath(path, NULL);
    int rc = write_atomic(real ? real : path, buf, len);
    free(real);
    return rc;
}

/* The temporary file, fsync, rename and fsync of the folder. */
static int write_atomic(const char *path, const void *buf, size_t len) {
    size_t plen = strlen(path);
    char *tmp = nb__malloc(plen + 32), *dir = nb__malloc(plen + 2);
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        return nb_error("%s: out of memory", path);
    }
    /* The temporary file sits next to the target so that rename() stays on
     * one file system and is atomic. */
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    const char *slash = strrchr(path, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = 0;
    }
    int rc = -1, fd = -1;
    bool created = false;
    fd = nb__open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST) {
        /* A leftover of an earlier process with our pid: the name is ours. */
        unlink(tmp);
        fd = nb__open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    }
    if (fd < 0) {
        nb_error("%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    created = true;
    /* Keep the permissions of the file we replace. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) (void)fchmod(fd, st.st_mode & 07777);
    if (write_all(fd, buf, len) != 0) {
        nb_error("%s: write error on %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    if (nb__fsync(fd) != 0) {
        nb_error("%s: fsync of %s failed: %s", path, tmp, strerror(errno));
        goto done;
    }
    int cfd = fd;
    fd = -1;
    if (nb__close(cfd) != 0) {
        nb_error("%s: close of %s failed: %s", path, tmp, strerror(errno));
        goto done;
    }
    if (nb__rename(tmp, path) != 0) {
        nb_error("%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        goto done;
    }
    created = false; /* the temporary file is now `path` */
    /* Make the rename itself durable. Some file systems cannot fsync a
     * folder (EINVAL); the data is in place then, so that is not an error. */
    int dfd = nb__open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dfd >= 0) {
        if (nb__fsync(dfd) != 0 && errno != EINVAL) {
            nb_error("%s: written, but fsync of its folder %s failed: %s", path, dir, strerror(errno));
            nb__close(dfd);
            goto done;
        }
        nb__close(dfd);
    }
    rc = 0;
done:
    if (fd >= 0) nb__close(fd);
    if (created) unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

/* --- element types ------------------------------------------------------ */

int nb__dtype_size(nb__dtype t) {
    switch (t) {
    case NB_DT_F64: case NB_DT_I64: case NB_DT_U64: return 8;
    case NB_DT_F32: case NB_DT_I32: case NB_DT_U32: return 4;
    case NB_DT_F16: case NB_DT_BF16: case NB_DT_I16: case NB_DT_U16: return 2;
    case NB_DT_I8: case NB_DT_U8: case NB_DT_BOOL: return 1;
    }
    return 0;
}

static float bits_to_float(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* IEEE binary16 -> binary32, exact for every input (subnormals, inf, NaN). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31u, m = h & 0x3ffu;
    if (e == 0) {
        float f = (float)m * 0x1p-24f; /* zero or subnormal: m * 2^-24 */
        return sign ? -f : f;
    }
    if (e == 31) return bits_to_float(sign | 0x7f800000u | m << 13);
    return bits_to_float(sign | (e + 112) << 23 | m << 13);
}

int nb__convert_to_f32(nb__dtype t, const uint8_t *src, int64_t n, float *dst, const char *what, uint64_t base_off) {
    /* Signed values are rebuilt from their two's-complement bits by
     * arithmetic, so no conversion is implementation-defined. */
    switch (t) {
    case NB_DT_F32:
        for (int64_t i = 0; i < n; i++) dst[i] = bits_to_float(nb__le32(src + 4 * i));
        break;
    case NB_DT_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = half_to_float(nb__le16(src + 2 * i));
        break;
    case NB_DT_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = bits_to_float((uint32_t)nb__le16(src + 2 * i) << 16);
        break;
    case NB_DT_F64:
        for (int64_t i = 0; i < n; i++) {
            uint64_t b = nb__le64(src + 8 * i);
            double d;
            memcpy(&d, &b, sizeof d);
            dst[i] = (float)d; /* out of float range gives +-inf (IEEE) */
        }
        break;
    case NB_DT_I64:
        for (int64_t i = 0; i < n; i++) {
            /* The magnitude (0 - u in unsigned arithmetic, 2^63 for the
             * most negative) converts with one rounding; ~u converted and
             * then less 1 rounded twice (-16777218 read as -16777216). */
            uint64_t u = nb__le64(src + 8 * i);
            dst[i] = u >> 63 ? -(float)(0 - u) : (float)u;
        }
        break;
    case NB_DT_I32:
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = nb__le32(src + 4 * i);
            dst[i] = (float)((int64_t)u - (u >> 31 ? INT64_C(1) << 32 : 0));
        }
        break;
    case NB_DT_I16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t u = nb__le16(src + 2 * i);
            dst[i] = (float)((int32_t)u - (u >> 15 ? 65536 : 0));
        }
        break;
    case NB_DT_I8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)((int)src[i] - (src[i] >> 7 ? 256 : 0));
        break;
    case NB_DT_U8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i];
        break;
    /* Unsigned (16-bit images, counts): one rounding each, as astype. */
    case NB_DT_U64:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)nb__le64(src + 8 * i);
        break;
    case NB_DT_U32:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)nb__le32(src + 4 * i);
        break;
    case NB_DT_U16:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)nb__le16(src + 2 * i);
        break;
    case NB_DT_BOOL:
        for (int64_t i = 0; i < n; i++) {
            if (src[i] > 1)
                return nb_error("%s: invalid bool byte 0x%02x at offset %llu, expected 0 or 1", what, src[i],
                                (unsigned long long)(base_off + (uint64_t)i));
            dst[i] = (float)src[i];
        }
        break;
    }
    return 0;
}
