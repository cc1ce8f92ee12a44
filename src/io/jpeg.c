/* jpeg.c — JPEG images in (to a [3, h, w] colour tensor, for nb_image_parse)
 * and out (gray or RGB, written atomically), with libjpeg-turbo. libjpeg's
 * error manager would print to stderr and exit(); here an error, and a
 * warning that means the pixels are damaged (a truncated file, a bad Huffman
 * code), unwinds with longjmp to the caller, which reports it through
 * nb_error. */
#include "io.h"
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <jerror.h> /* the message codes of warnings (JWRN_*) */
#include <limits.h>
#include <setjmp.h>
#include <stdlib.h>

/* libjpeg-turbo decodes every scan of a progressive file into the whole
 * coefficient buffer, so a small file of thousands of (empty) scans costs
 * minutes; real encoders write about ten. Its own djpeg stops such files with
 * -maxscans; this is the same limit, checked in the progress monitor. */
#define NB_JPEG_MAX_SCANS 1000

/* libjpeg's error manager first (libjpeg calls through the pointer to it),
 * then where to jump and the first message. */
typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    bool too_many_scans;
    unsigned char *mem; /* the encoder's output, grown by jpeg_mem_dest with malloc */
    unsigned long mem_len;
    char msg[JMSG_LENGTH_MAX + 32];
} jpeg_err;

static void on_jpeg_error(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (!e->msg[0]) cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings go nowhere (a library does not print), except those that say the
 * image data is damaged: a truncated file (libjpeg would pad it with gray), a
 * bad entropy code or an impossible scan. They stop decoding as errors do.
 * Extraneous bytes before a marker, an unknown JFIF revision and the like
 * leave the pixels intact and are ignored, as djpeg does. */
static void on_jpeg_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return; /* trace messages */
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
        on_jpeg_error(cinfo);
        break;
    default:
        break;
    }
}

static void on_jpeg_progress(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > NB_JPEG_MAX_SCANS) {
        e->too_many_scans = true;
        longjmp(e->jump, 1);
    }
}

static void init_err(jpeg_err *e) {
    jpeg_std_error(&e->pub);
    e->pub.error_exit = on_jpeg_error;
    e->pub.emit_message = on_jpeg_message;
    e->progress.progress_monitor = on_jpeg_progress;
}

/* Adobe's CMYK JPEGs (Photoshop) store the inks inverted, 255 meaning none;
 * others store them plainly. Either way red is what cyan and black leave. */
static float cmyk_channel(int ink, int black, bool inverted) {
    int c = inverted ? ink : 255 - ink, k = inverted ? black : 255 - black;
    return (float)(c * k) / (255.f * 255.f);
}

/* The EXIF orientation (1..8; 1, upright, when absent or unreadable) of an
 * APP1 marker's data: "Exif\0\0", then a TIFF header (II or MM byte order,
 * 42, the offset of IFD0) and IFD0's 12-byte entries; tag 0x0112 holds it.
 * Cameras and phones store pixels as the sensor saw them and say here how to
 * turn them; every viewer does, so the image means the turned one.
 * The standard's type is SHORT, but some writers use another number type
 * (LONG, SSHORT, SLONG, SBYTE, RATIONAL, FLOAT, IFD, ...) or more values:
 * as PIL's ImageOps.exif_transpose, the entry's first value counts when it is
 * a whole number 1..8 (inline in the entry, or at its offset when the values
 * take more than 4 bytes). BYTE, ASCII and UNDEFINED values are bytes, which
 * PIL does not take for an orientation either. */
static int exif_orientation(const uint8_t *d, size_t n) {
    if (n < 14 || memcmp(d, "Exif\0\0", 6) != 0) return 1;
    const uint8_t *t = d + 6;
    size_t tn = n - 6;
    bool le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
#define U16(p) (le ? (unsigned)((p)[0] | (p)[1] << 8) : (unsigned)((p)[0] << 8 | (p)[1]))
#define U32(p) (le ? nb__le32(p) : nb__be32(p))
    if (U16(t + 2) != 42) return 1;
    uint32_t ifd = U32(t + 4);
    if (ifd > tn || tn - ifd < 2) return 1;
    unsigned count = U16(t + ifd);
    /* Bytes per value of TIFF types 1..13. */
    static const uint8_t size[14] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4};
    for (unsigned k = 0; k < count && (size_t)ifd + 2 + 12 * ((size_t)k + 1) <= tn; k++) {
        const uint8_t *e = t + ifd + 2 + 12 * k;
        if (U16(e) != 0x0112) continue;
        unsigned type = U16(e + 2);
        uint32_t nv = U32(e + 4);
        if (type < 1 || type > 13 || nv == 0) return 1;
        const uint8_t *v = e + 8;
        if ((uint64_t)size[type] * nv > 4) { /* the values are at an offset */
            uint32_t off = U32(e + 8);
            if (off > tn || tn - off < size[type]) return 1;
            v = t + off;
        }
        double x;
        switch (type) {
        case 3: x = U16(v); break;                                    /* SHORT */
        case 4:                                                       /* LONG */
        case 13: x = U32(v); break;                                   /* IFD, an offset PIL reads as a LONG */
        case 6: x = (int8_t)v[0]; break;                              /* SBYTE */
        case 8: x = (int16_t)U16(v); break;                           /* SSHORT */
        case 9: x = (int32_t)U32(v); break;                           /* SLONG */
        case 5: x = U32(v + 4) ? (double)U32(v) / U32(v + 4) : 0; break; /* RATIONAL */
        case 10: x = (int32_t)U32(v + 4) ? (double)(int32_t)U32(v) / (int32_t)U32(v + 4) : 0; break; /* SRATIONAL */
        case 11: { /* FLOAT */
            uint32_t bits = U32(v);
            float f;
            memcpy(&f, &bits, sizeof f);
            x = f;
            break;
        }
        case 12: { /* DOUBLE */
            uint64_t bits = le ? (uint64_t)U32(v) | (uint64_t)U32(v + 4) << 32 : (uint64_t)U32(v) << 32 | U32(v + 4);
            memcpy(&x, &bits, sizeof x);
            break;
        }
        default: return 1; /* BYTE, ASCII, UNDEFINED */
        }
        return x >= 1 && x <= 8 && x == (int)x ? (int)x : 1;
    }
    return 1;
#undef U16
#undef U32
}

/* img [3, h, w] as displayed under EXIF orientation o: a new tensor, [3, w,
 * h] for the orientations that turn by a quarter (5 to 8); NULL when out of
 * memory. Displayed pixel (y, x) is stored pixel src(y, x) below. */
static nb_tensor *apply_orientation(const nb_tensor *img, int o) {
    int64_t h = img->shape[1], w = img->shape[2], oh = o >= 5 ? w : h, ow = o >= 5 ? h : w;
    nb_tensor *r = nb__tensor_try_empty(3, (const int64_t[]){3, oh, ow});
    if (!r) return NULL;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t x = 0; x < ow; x++) {
                int64_t sy, sx;
                switch (o) {
                case 2: sy = y, sx = w - 1 - x; break;             /* mirrored left to right */
                case 3: sy = h - 1 - y, sx = w - 1 - x; break;     /* turned half way */
                case 4: sy = h - 1 - y, sx = x; break;             /* mirrored top to bottom */
                case 5: sy = x, sx = y; break;                     /* transposed */
                case 6: sy = h - 1 - x, sx = y; break;             /* turned a quarter clockwise */
                case 7: sy = h - 1 - x, sx = w - 1 - y; break;     /* transverse */
                case 8: sy = x, sx = w - 1 - y; break;             /* turned a quarter anticlockwise */
                default: sy = y, sx = x; break;
                }
                r->data[(c * oh + y) * ow + x] = img->data[(c * h + sy) * w + sx];
            }
    return r;
}

/* `what` is a parameter never assigned, so that it keeps its value past setjmp. */
static nb_tensor *jpeg_parse(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w) {
    if (h) *h = 0;
    if (w) *w = 0;
    if (len < 3 || buf[0] != 0xFF || buf[1] != 0xD8 || buf[2] != 0xFF) {
        nb_error("%s: not a JPEG file (it does not start with the JPEG start-of-image marker FF D8 FF)", what);
        return NULL;
    }
#if SIZE_MAX > ULONG_MAX
    /* libjpeg-turbo 2.1 takes an unsigned long length. */
    if (len > ULONG_MAX) {
        nb_error("%s: %zu bytes is too large for the JPEG decoder", what, len);
        return NULL;
    }
#endif
    /* On the heap, so that nothing the error path reads lives in an automatic
     * object changed between setjmp and longjmp. */
    struct jpeg_decompress_struct *cinfo = nb__calloc(1, sizeof *cinfo);
    jpeg_err *err = nb__calloc(1, sizeof *err);
    if (!cinfo || !err) {
        free(cinfo);
        free(err);
        nb_error("%s: out of memory for the JPEG decoder", what);
        return NULL;
    }
    init_err(err);
    cinfo->err = &err->pub;
    uint8_t *volatile row = NULL;
    nb_tensor *volatile out = NULL;
    volatile int late_error = 0; /* 1: too large, 2: out of memory */
    volatile unsigned vw = 0, vh = 0;
    if (setjmp(err->jump)) {
        free(row);
        nb_tensor_free(out);
        jpeg_destroy_decompress(cinfo);
        if (late_error == 1)
            nb_error("%s: JPEG declares %u x %u pixels (width x height); at most %d on a side and %lld in all are "
                     "supported", what, vw, vh, NB_IMAGE_MAX_SIDE, (long long)NB_IMAGE_MAX_PIXELS);
        else if (late_error == 2)
            nb_error("%s: out of memory for a %u x %u image", what, vw, vh);
        else if (err->too_many_scans)
            nb_error("%s: corrupt JPEG: more than %d progressive scans", what, NB_JPEG_MAX_SCANS);
        else if (err->pub.msg_code == JERR_BAD_PRECISION || err->pub.msg_code == JERR_CONVERSION_NOTIMPL ||
                 err->pub.msg_code == JERR_NOT_COMPILED)
            nb_error("%s: unsupported JPEG: %s", what, err->msg[0] ? err->msg : "libjpeg error");
        else if (err->pub.msg_code == JWRN_JPEG_EOF)
            nb_error("%s: truncated JPEG: the data ends after %zu bytes, before the image is complete", what, len);
        else
            nb_error("%s: corrupt JPEG: %s", what, err->msg[0] ? err->msg : "libjpeg error");
        free(cinfo);
        free(err);
        return NULL;
    }
    jpeg_create_decompress(cinfo);
    cinfo->progress = &err->progress;
    jpeg_mem_src(cinfo, buf, (unsigned long)len);
    jpeg_save_markers(cinfo, JPEG_APP0 + 14, 0); /* only to learn of Adobe's marker (saw_Adobe_marker) */
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF); /* EXIF, for the orientation */
    jpeg_read_header(cinfo, TRUE);
    int orientation = 1; /* read on the success path only: never after the longjmp */
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && (orientation = exif_orientation(m->data, m->data_length)) != 1) break;
    vw = cinfo->image_width;
    vh = cinfo->image_height;
    if (vw < 1 || vh < 1 || vw > NB_IMAGE_MAX_SIDE || vh > NB_IMAGE_MAX_SIDE ||
        (uint64_t)vw * vh > (uint64_t)NB_IMAGE_MAX_PIXELS) {
        late_error = 1;
        longjmp(err->jump, 1);
    }
    bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    /* libjpeg turns gray, YCbCr and RGB into RGB itself; YCCK only into CMYK. */
    cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo->dct_method = JDCT_ISLOW; /* the accurate one; the default too, said here */
    jpeg_start_decompress(cinfo);
    unsigned iw = cinfo->output_width, ih = cinfo->output_height;
    int comps = cinfo->output_components;
    if ((comps != 3 && !cmyk) || (comps != 4 && cmyk) || iw != vw || ih != vh) {
        snprintf(err->msg, sizeof err->msg, "unexpected output layout (%d components)", comps);
        longjmp(err->jump, 1);
    }
    row = nb__malloc((size_t)iw * (size_t)comps);
    out = nb__tensor_try_empty(3, (const int64_t[]){3, (int64_t)ih, (int64_t)iw}); /* every row is written below */
    if (!row || !out) {
        late_error = 2;
        longjmp(err->jump, 1);
    }
    bool inverted = cinfo->saw_Adobe_marker;
    size_t plane = (size_t)ih * iw;
    while (cinfo->output_scanline < ih) {
        size_t y = cinfo->output_scanline;
        JSAMPROW rows[1] = {row};
        if (jpeg_read_scanlines(cinfo, rows, 1) != 1) {
            snprintf(err->msg, sizeof err->msg, "no scanline %zu from the decoder", y);
            longjmp(err->jump, 1);
        }
        float *o = out->data + y * iw;
        for (size_t x = 0; x < iw; x++) {
            const uint8_t *p = row + x * (size_t)comps;
            for (int k = 0; k < 3; k++)
                o[k * plane + x] = cmyk ? cmyk_channel(p[k], p[3], inverted) : (float)p[k] / 255.f;
        }
    }
    /* Reads to the end-of-image marker: a file cut after the last scan's data
     * is still reported as truncated. */
    jpeg_finish_decompress(cinfo);
    nb_tensor *result = out;
    free(row);
    jpeg_destroy_decompress(cinfo);
    free(cinfo);
    free(err);
    if (orientation != 1) {
        nb_tensor *turned = apply_orientation(result, orientation);
        nb_tensor_free(result);
        if (!turned) {
            nb_error("%s: out of memory for a %u x %u image", what, iw, ih);
            return NULL;
        }
        result = turned;
    }
    if (h) *h = result->shape[1];
    if (w) *w = result->shape[2];
    return result;
}

nb_tensor *nb__jpeg_parse(const uint8_t *buf, size_t len, const char *what, int64_t *h, int64_t *w) {
    return jpeg_parse(buf, len, what ? what : "JPEG data", h, w);
}

int nb__jpeg_write(const char *path, const uint8_t *pixels, int w, int h, int ch, int quality) {
    struct jpeg_compress_struct *cinfo = nb__calloc(1, sizeof *cinfo);
    jpeg_err *err = nb__calloc(1, sizeof *err);
    if (!cinfo || !err) {
        free(cinfo);
        free(err);
        return nb_error("%s: out of memory for the JPEG encoder", path);
    }
    init_err(err);
    cinfo->err = &err->pub;
    if (setjmp(err->jump)) {
        jpeg_destroy_compress(cinfo);
        free(err->mem);
        nb_error("%s: cannot encode JPEG: %s", path, err->msg[0] ? err->msg : "libjpeg error");
        free(cinfo);
        free(err);
        return -1;
    }
    jpeg_create_compress(cinfo);
    jpeg_mem_dest(cinfo, &err->mem, &err->mem_len);
    cinfo->image_width = (JDIMENSION)w;
    cinfo->image_height = (JDIMENSION)h;
    cinfo->input_components = ch;
    cinfo->in_color_space = ch == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    jpeg_start_compress(cinfo, TRUE);
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW rows[1] = {(JSAMPROW)(pixels + (size_t)cinfo->next_scanline * (size_t)w * (size_t)ch)};
        jpeg_write_scanlines(cinfo, rows, 1);
    }
    jpeg_finish_compress(cinfo);
    jpeg_destroy_compress(cinfo);
    int rc = nb_write_file_atomic(path, err->mem, err->mem_len);
    free(err->mem);
    free(cinfo);
    free(err);
    return rc;
}
