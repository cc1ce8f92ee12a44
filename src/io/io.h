/* io.h — what the file readers in src/io share and users never see: the
 * element types found in outside files and their conversion to float32. */
#ifndef NB_IO_H
#define NB_IO_H

#include "../core/internal.h"
#include "../core/fault.h" /* readers allocate and the writer does I/O through the seam */

/* Element types that outside formats store and nabla reads. */
typedef enum {
    NB_DT_F32, NB_DT_F16, NB_DT_BF16, NB_DT_F64,
    NB_DT_I64, NB_DT_I32, NB_DT_I16, NB_DT_I8, NB_DT_U8, NB_DT_BOOL,
    NB_DT_U64, NB_DT_U32, NB_DT_U16,
} nb__dtype;

/* Bytes per element of each type. */
int nb__dtype_size(nb__dtype t);

/* Converts n little-endian elements of type t at src to float32 in dst. BOOL
 * bytes must be 0 or 1: anything else is a defect, reported as an error naming
 * `what` and the file offset (base_off + byte index); returns 0 or -1. Every
 * other bit pattern has a float value (NaN and infinities included). */
int nb__convert_to_f32(nb__dtype t, const uint8_t *src, int64_t n, float *dst, const char *what, uint64_t base_off);

/* Sets nb_errmsg() to "PATH: not EXPECTED: it looks like KIND" (expected:
 * "a nabla model file", "a data file", ...) or, for NB_FILE_MISSING, to why
 * path cannot be opened; returns -1. */
int nb__wrong_kind(const char *path, const char *expected, nb_file_kind k);

/* The end of the text line at p: a '\n', a "\r\n" or a lone '\r' (classic
 * Mac OS files, where a whole table would be one line). *next is where the
 * next line starts. Shared by the readers of text tables (CSV, LIBSVM) and
 * the sniffer, so that they agree on what a line is. */
static inline const char *nb__line_end(const char *p, const char *end, const char **next) {
    for (; p < end; p++)
        if (*p == '\n' || *p == '\r') {
            *next = p + 1 + (*p == '\r' && p + 1 < end && p[1] == '\n');
            return p;
        }
    *next = end;
    return end;
}

/* One cell of a comma-separated line [*p, le), RFC 4180 style: its text
 * [*b, *e), trimmed of spaces and tabs, without the quotes of a "quoted" cell
 * (a doubled "" inside stays doubled). *p moves past the separating comma.
 * Returns 1 for the line's last cell, 0 when a comma follows, -1 for a quote
 * that does not close on the line (*b at the quote), -2 for text after a
 * closing quote (*b there: it may be a quote too, as in "a" "b"). The CSV
 * reader and the sniffer split cells with it, so they agree on what one is. */
int nb__csv_cell(const char **p, const char *le, const char **b, const char **e);

/* Little-endian loads and stores, independent of the host's byte order and of
 * alignment. */
static inline uint16_t nb__le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t nb__le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t nb__le64(const uint8_t *p) { return (uint64_t)nb__le32(p) | (uint64_t)nb__le32(p + 4) << 32; }
static inline uint32_t nb__be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline void nb__put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void nb__put_le32(uint8_t *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> 8 * k);
}
static inline void nb__put_le64(uint8_t *p, uint64_t v) {
    for (int k = 0; k < 8; k++) p[k] = (uint8_t)(v >> 8 * k);
}

/* The colour decoders behind nb_image_parse (png.c, jpeg.c): a persistent
 * [3, h, w] tensor in [0, 1] or NULL with an error naming `what`. */
nb_tensor *nb__png_parse_rgb(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w);
nb_tensor *nb__jpeg_parse(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w);
/* Encodes h rows of w pixels of `ch` 8-bit channels (1 gray, 3 RGB) as a
 * JPEG of the given quality (1..100) and writes it to path atomically. */
int nb__jpeg_write(const char *path, const uint8_t *pixels, int w, int h, int ch, int quality);

#endif
