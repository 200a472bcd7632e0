/* npy.c — reading and writing numpy .npy files (format versions 1.0, 2.0 and 3.0).
 *
 * Layout of a file (numpy/lib/format.py, "NEP 1"):
 *   "\x93NUMPY" major minor  header_len  header  data
 *   header_len is a little-endian uint16 in v1.0 and uint32 in v2.0/3.0; header is an
 *   ASCII (v3.0: UTF-8) Python dict literal {'descr': ..., 'fortran_order': ..., 'shape':
 *   (...)} padded with spaces and a final '\n' so the data starts on a 64-byte boundary.
 *
 * Reading converts every supported dtype to float64 (or complex128 for complex files) in
 * C order, so the rest of qd sees only two element types. Nothing in the header is
 * trusted: sizes are overflow-checked and compared with the file length before any
 * buffer of that size is allocated, so a corrupt or hostile header cannot make us
 * allocate terabytes. Writing goes to a temporary file in the target's directory that is
 * renamed over the target only once everything is on disk, so a failed save (ENOSPC,
 * I/O error) never destroys an existing file. */
#include "qd.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAX_NDIM 8
/* A supported header is a few hundred bytes (3 keys, <= 8 dims). numpy itself refuses
 * headers over 10000 bytes by default; we allow more but still bound the allocation. */
#define NPY_MAX_HEADER (1u << 20)
/* Non-native data is read and converted in chunks of this many bytes (a multiple of
 * every item size), so conversion needs no second full-size buffer. */
#define NPY_CHUNK (1u << 16)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define NPY_NATIVE '>'
#else
#define NPY_NATIVE '<'
#endif

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---------------------------------------------------------------- dtypes */

typedef struct {
    char kind;      /* 'b' bool, 'i' int, 'u' uint, 'f' float, 'c' complex */
    int size;       /* bytes per element (complex: both parts) */
    int swap;       /* stored in the other byte order than this machine's */
} npy_dtype;

/* Parses a descr string like "<f8", "|u1", "=c16", ">i4". Returns 0 if supported. */
static int parse_descr(const char *s, npy_dtype *dt)
{
    char order = NPY_NATIVE;
    if (*s == '<' || *s == '>' || *s == '=' || *s == '|') {
        /* '=' is native; '|' means "not applicable" (1-byte types) — numpy accepts it on
         * any type and treats it as native, so do we */
        if (*s == '<' || *s == '>')
            order = *s;
        s++;
    }
    dt->kind = *s++;
    if (!strchr("biufc", dt->kind) || dt->kind == '\0')
        return -1;
    if (*s < '1' || *s > '9')
        return -1;
    int size = 0;
    while (*s >= '0' && *s <= '9' && size < 1000)
        size = size * 10 + (*s++ - '0');
    if (*s != '\0')
        return -1;     /* e.g. "<M8[ns]" never gets here, but "<f8x" would */
    dt->size = size;
    switch (dt->kind) {
    case 'b': if (size != 1) return -1; break;
    case 'i': case 'u': if (size != 1 && size != 2 && size != 4 && size != 8) return -1; break;
    case 'f': if (size != 2 && size != 4 && size != 8) return -1; break;   /* no f16: x87 */
    case 'c': if (size != 8 && size != 16) return -1; break;
    }
    /* swapping a 1-byte element is a no-op, so its order mark does not matter */
    dt->swap = size > 1 && order != NPY_NATIVE;
    return 0;
}

/* IEEE binary16 -> double (numpy 'f2'). */
static double half_to_double(uint16_t h)
{
    int sign = h >> 15, ex = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v;
    if (ex == 0)
        v = ldexp(man, -24);                              /* zero / subnormal */
    else if (ex == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexp(man + 1024, ex - 25);                   /* (1 + man/2^10) 2^(ex-15) */
    return sign ? -v : v;
}

/* Reverses each n-byte part of buf (complex numbers are swapped part by part). */
static void swap_parts(unsigned char *buf, int size, int parts)
{
    int n = size / parts;
    for (int p = 0; p < parts; p++) {
        unsigned char *b = buf + p * n;
        for (int i = 0, j = n - 1; i < j; i++, j--) {
            unsigned char t = b[i];
            b[i] = b[j];
            b[j] = t;
        }
    }
}

/* One real scalar of the given kind/size at s (native byte order, maybe unaligned). */
static double load_real(const unsigned char *s, char kind, int size)
{
    /* memcpy: elements in a chunk are not aligned for their type in general */
    switch (kind) {
    case 'b': return s[0] != 0;     /* numpy: any nonzero byte is True */
    case 'i':
        switch (size) {
        case 1: { int8_t v; memcpy(&v, s, 1); return v; }
        case 2: { int16_t v; memcpy(&v, s, 2); return v; }
        case 4: { int32_t v; memcpy(&v, s, 4); return v; }
        default: { int64_t v; memcpy(&v, s, 8); return (double)v; }  /* rounds > 2^53 */
        }
    case 'u':
        switch (size) {
        case 1: return s[0];
        case 2: { uint16_t v; memcpy(&v, s, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, s, 4); return v; }
        default: { uint64_t v; memcpy(&v, s, 8); return (double)v; }
        }
    default:    /* 'f' (and each half of 'c') */
        switch (size) {
        case 2: { uint16_t v; memcpy(&v, s, 2); return half_to_double(v); }
        case 4: { float v; memcpy(&v, s, 4); return v; }
        default: { double v; memcpy(&v, s, 8); return v; }
        }
    }
}

/* ---------------------------------------------------------------- header dict parser
 * A tiny recursive-descent parser for the subset of Python literals numpy writes (and
 * older numpys / other writers produce): strings in ' or ", True/False, tuples of
 * non-negative ints (optionally with a Python 2 'L' suffix), arbitrary whitespace,
 * keys in any order, optional trailing commas. Anything else is a clear error. */

typedef struct {
    const char *p, *end, *start;
    const char *path;
    qd_err *e;
} hdr_cur;

static void hdr_ws(hdr_cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Error with the offending header text shown (printable, shortened). */
static qd_status hdr_fail(hdr_cur *c, const char *what)
{
    char shown[100];
    size_t n = (size_t)(c->end - c->start), k = 0;
    /* numpy pads with spaces and a '\n': do not show them */
    while (n > 0 && (c->start[n - 1] == ' ' || c->start[n - 1] == '\n'))
        n--;
    for (size_t i = 0; i < n && k < sizeof shown - 4; i++) {
        unsigned char ch = (unsigned char)c->start[i];
        shown[k++] = ch >= 32 && ch < 127 ? (char)ch : '?';
    }
    if (k < n) {
        memcpy(shown + k, "...", 3);
        k += 3;
    }
    shown[k] = '\0';
    return qd_fail(c->e, QD_EFORMAT, "%s: bad .npy header: %s at offset %zu in \"%s\"",
                   c->path, what, (size_t)(c->p - c->start), shown);
}

static int hdr_peek(hdr_cur *c, char ch)
{
    hdr_ws(c);
    return c->p < c->end && *c->p == ch;
}

/* A quoted string into buf (no escapes: numpy's keys and dtype strings have none). */
static qd_status hdr_string(hdr_cur *c, char *buf, size_t cap, const char *what)
{
    hdr_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return hdr_fail(c, what);
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n' || n + 1 >= cap)
            return hdr_fail(c, *c->p == '\\' ? "escapes in strings are not supported"
                                             : "string too long or unterminated");
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return hdr_fail(c, "unterminated string");
    c->p++;
    buf[n] = '\0';
    return QD_OK;
}

static qd_status hdr_bool(hdr_cur *c, int *v)
{
    hdr_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        *v = 1;
        c->p += 4;
    } else if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        *v = 0;
        c->p += 5;
    } else {
        return hdr_fail(c, "'fortran_order' must be True or False");
    }
    /* "Truex" is not a bool */
    if (c->p < c->end && (*c->p == '_' || (*c->p >= 'a' && *c->p <= 'z') ||
                          (*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= '0' && *c->p <= '9')))
        return hdr_fail(c, "'fortran_order' must be True or False");
    return QD_OK;
}

static qd_status hdr_uint(hdr_cur *c, size_t *v)
{
    hdr_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return hdr_fail(c, "shape entries must be non-negative integers");
    size_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (qd_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (size_t)(*c->p - '0'), &x))
            return hdr_fail(c, "shape entry too large");
        c->p++;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l'))
        c->p++;    /* Python 2 long literal, written by numpy under Python 2 */
    *v = x;
    return QD_OK;
}

/* "(a, b, ...)" with an optional trailing comma; "()" is 0-d; "(3)" is taken as (3,). */
static qd_status hdr_shape(hdr_cur *c, int *ndim, size_t *shape)
{
    qd_status st;
    if (!hdr_peek(c, '('))
        return hdr_fail(c, "'shape' must be a tuple");
    c->p++;
    int n = 0;
    for (;;) {
        if (hdr_peek(c, ')'))
            break;
        size_t v = 0;
        if ((st = hdr_uint(c, &v)))
            return st;
        if (n == NPY_MAX_NDIM) {
            return qd_fail(c->e, QD_EFORMAT,
                           "%s: .npy arrays with more than %d dimensions are not supported",
                           c->path, NPY_MAX_NDIM);
        }
        shape[n++] = v;
        if (hdr_peek(c, ','))
            c->p++;
        else if (!hdr_peek(c, ')'))
            return hdr_fail(c, "expected ',' or ')' in 'shape'");
    }
    c->p++;
    *ndim = n;
    return QD_OK;
}

typedef struct {
    char descr[32];
    int fortran;
    int ndim;
    size_t shape[NPY_MAX_NDIM];
} npy_header;

static qd_status parse_header(const char *text, size_t len, const char *path, npy_header *h,
                              qd_err *e)
{
    hdr_cur c = {text, text + len, text, path, e};
    qd_status st;
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    if (!hdr_peek(&c, '{'))
        return hdr_fail(&c, "expected a dict '{...}'");
    c.p++;
    for (;;) {
        if (hdr_peek(&c, '}'))
            break;
        char key[32];
        if ((st = hdr_string(&c, key, sizeof key, "expected a quoted key or '}'")))
            return st;
        if (!hdr_peek(&c, ':'))
            return hdr_fail(&c, "expected ':' after a key");
        c.p++;
        int *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &have_descr;
            if (hdr_peek(&c, '['))
                return qd_fail(e, QD_EFORMAT,
                               "%s: unsupported dtype: structured arrays (record dtypes) "
                               "are not supported", path);
            if ((st = hdr_string(&c, h->descr, sizeof h->descr,
                                 "'descr' must be a dtype string like '<f8'")))
                return st;
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &have_fortran;
            if ((st = hdr_bool(&c, &h->fortran)))
                return st;
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            if ((st = hdr_shape(&c, &h->ndim, h->shape)))
                return st;
        } else {
            /* numpy rejects unknown keys too; we could not know what they mean */
            char what[80];
            snprintf(what, sizeof what, "unknown key '%s'", key);
            return hdr_fail(&c, what);
        }
        if (*seen)
            return hdr_fail(&c, "duplicate key");
        *seen = 1;
        if (hdr_peek(&c, ','))
            c.p++;
        else if (!hdr_peek(&c, '}'))
            return hdr_fail(&c, "expected ',' or '}'");
    }
    c.p++;
    hdr_ws(&c);
    if (c.p != c.end)
        return hdr_fail(&c, "unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape) {
        return qd_fail(e, QD_EFORMAT, "%s: bad .npy header: missing key '%s'", path,
                       !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    }
    return QD_OK;
}

/* ---------------------------------------------------------------- reading */

/* *count = prod(shape) (1 for 0-d); returns 1 on overflow. Any zero extent makes the
 * array empty even if the other extents' product would overflow. */
static int shape_count(int ndim, const size_t *shape, size_t *count)
{
    int ovf = 0;
    *count = 1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] == 0) {
            *count = 0;
            return 0;
        }
        ovf |= qd_mul_overflow(*count, shape[k], count);
    }
    return ovf;
}

/* fread that tells a read error (QD_EIO) from a short file (returns the count). */
static qd_status read_bytes(FILE *f, void *buf, size_t n, size_t *got, const char *path,
                            qd_err *e)
{
    *got = fread(buf, 1, n, f);
    if (*got < n && ferror(f))
        return qd_fail(e, QD_EIO, "cannot read '%s': %s", path, strerror(errno));
    return QD_OK;
}

static qd_status truncated(qd_err *e, const char *path, size_t want, size_t got)
{
    return qd_fail(e, QD_EFORMAT,
                   "%s: truncated .npy file: expected %zu bytes of data, got %zu", path, want,
                   got);
}

/* Reads `count` elements of dt from f into out (C order), converting as it goes.
 * Fortran-order files are scattered: the file's i-th element is at multi-index idx with
 * the FIRST axis fastest, which sits at sum idx[k] * cstride[k] in C order. */
static qd_status read_convert(FILE *f, const npy_dtype *dt, const npy_header *h, size_t count,
                              void *out, const char *path, qd_err *e)
{
    int cplx = dt->kind == 'c';
    size_t item = (size_t)dt->size, total = count * item;   /* checked by the caller */
    unsigned char *chunk = malloc(NPY_CHUNK);
    if (!chunk)
        return qd_fail(e, QD_ENOMEM, "%s: not enough memory for a read buffer", path);
    int scatter = h->fortran && h->ndim > 1;
    size_t cstride[NPY_MAX_NDIM], idx[NPY_MAX_NDIM] = {0}, off = 0;
    if (scatter) {
        cstride[h->ndim - 1] = 1;
        for (int k = h->ndim - 1; k > 0; k--)
            cstride[k - 1] = cstride[k] * h->shape[k];
    }
    size_t done = 0, i = 0;    /* bytes read, elements stored */
    qd_status st = QD_OK;
    while (done < total) {
        size_t want = total - done < NPY_CHUNK ? total - done : NPY_CHUNK, got;
        if ((st = read_bytes(f, chunk, want, &got, path, e)))
            break;
        if (got < want) {
            st = truncated(e, path, total, done + got);
            break;
        }
        done += want;
        for (size_t b = 0; b < want; b += item, i++) {
            unsigned char *s = chunk + b;
            if (dt->swap)
                swap_parts(s, dt->size, cplx ? 2 : 1);
            size_t dst = scatter ? off : i;
            if (cplx) {
                int half = dt->size / 2;
                ((qd_c *)out)[dst] = CMPLX(load_real(s, 'f', half), load_real(s + half, 'f', half));
            } else {
                ((double *)out)[dst] = load_real(s, dt->kind, dt->size);
            }
            if (scatter) {
                /* odometer step over the Fortran multi-index */
                for (int k = 0; k < h->ndim; k++) {
                    off += cstride[k];
                    if (++idx[k] < h->shape[k])
                        break;
                    off -= idx[k] * cstride[k];
                    idx[k] = 0;
                }
            }
        }
    }
    free(chunk);
    return st;
}

/* the preamble: magic string, format version, header length; *hstart = where the header
 * starts. known_size: fsize is the file's size. */
static qd_status read_preamble(FILE *f, const char *path, int known_size, size_t fsize,
                               size_t *hstart, size_t *hlen, qd_err *e)
{
    unsigned char pre[12];
    size_t got;
    qd_status st;
    if ((st = read_bytes(f, pre, 10, &got, path, e)))
        return st;
    if (got < 6 || memcmp(pre, npy_magic, 6) != 0)
        return qd_fail(e, QD_EFORMAT, "%s: not a .npy file (%s)", path,
                       got < 6 ? "too short for the magic string" : "bad magic string");
    if (got < 8)
        return qd_fail(e, QD_EFORMAT, "%s: truncated .npy file: no format version", path);
    int major = pre[6], minor = pre[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return qd_fail(e, QD_EFORMAT, "%s: unsupported .npy format version %d.%d "
                       "(supported: 1.0, 2.0, 3.0)", path, major, minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    if (got == 10 && lenbytes == 4) {
        if ((st = read_bytes(f, pre + 10, 2, &got, path, e)))
            return st;
        got += 10;
    }
    if (got < 8 + lenbytes)
        return qd_fail(e, QD_EFORMAT, "%s: truncated .npy file: no header length", path);
    *hlen = lenbytes == 2 ? (size_t)pre[8] | (size_t)pre[9] << 8
                          : (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
                                (size_t)pre[11] << 24;
    *hstart = 8 + lenbytes;
    if (*hlen > NPY_MAX_HEADER)
        return qd_fail(e, QD_EFORMAT, "%s: .npy header too large (%zu bytes)", path, *hlen);
    if (known_size && fsize < *hstart + *hlen)   /* hlen is bounded: no overflow */
        return qd_fail(e, QD_EFORMAT, "%s: truncated .npy file: header of %zu bytes, "
                       "got %zu", path, *hlen, fsize > *hstart ? fsize - *hstart : 0);
    return QD_OK;
}

/* the header dictionary (hlen bytes) parsed into h and its dtype into dt */
static qd_status read_header(FILE *f, const char *path, size_t hlen, npy_header *h,
                             npy_dtype *dt, qd_err *e)
{
    size_t got;
    char *text = malloc(hlen + 1);
    if (!text)
        return qd_fail(e, QD_ENOMEM, "%s: not enough memory for the .npy header", path);
    qd_status st = read_bytes(f, text, hlen, &got, path, e);
    if (st == QD_OK && got < hlen)
        st = qd_fail(e, QD_EFORMAT, "%s: truncated .npy file: header of %zu bytes, got %zu",
                     path, hlen, got);
    if (st == QD_OK) {
        text[hlen] = '\0';
        memset(h, 0, sizeof *h);
        st = parse_header(text, hlen, path, h, e);
    }
    free(text);
    if (st == QD_OK && parse_descr(h->descr, dt) != 0) {
        if (h->descr[0] && h->descr[1] == 'O' && !h->descr[2])
            st = qd_fail(e, QD_EFORMAT, "%s: unsupported dtype '%s': object arrays "
                         "(pickled Python objects) are not supported", path, h->descr);
        else
            st = qd_fail(e, QD_EFORMAT, "%s: unsupported dtype '%s' (supported: complex "
                         "c8 c16, float f2 f4 f8, int i1..i8, uint u1..u8, bool b1)",
                         path, h->descr);
    }
    return st;
}

/* the count elements into a new buffer *data (doubles or complex doubles): read straight
 * when the file has our layout, else converted */
static qd_status read_data(FILE *f, const char *path, const npy_header *h, const npy_dtype *dt,
                           size_t count, size_t raw_bytes, size_t out_bytes, void **data,
                           qd_err *e)
{
    size_t got;
    *data = qd_malloc(out_bytes);
    if (!*data) {
        char sz[32];
        qd_format_bytes((double)out_bytes, sz, sizeof sz);
        return qd_fail(e, QD_ENOMEM, "%s: not enough memory for the array (%s)", path, sz);
    }
    int direct = !dt->swap && (!h->fortran || h->ndim < 2) &&
                 ((dt->kind == 'f' && dt->size == 8) || (dt->kind == 'c' && dt->size == 16));
    if (!direct)
        return read_convert(f, dt, h, count, *data, path, e);
    qd_status st = read_bytes(f, *data, raw_bytes, &got, path, e);
    if (st == QD_OK && got < raw_bytes)
        st = truncated(e, path, raw_bytes, got);
    return st;
}

qd_status qd_npy_read(const char *path, qd_npy *out, qd_err *e)
{
    /* out is valid (empty) whatever happens, so a caller may always qd_free(out->data) */
    memset(out, 0, sizeof *out);
    if (!path)
        return qd_fail(e, QD_EARG, "qd_npy_read: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return qd_fail(e, QD_EIO, "cannot open '%s': %s", path, strerror(errno));
    void *data = NULL;
    /* the file size, when it is a regular file, lets us reject lying headers before
     * allocating anything (pipes and devices are read and checked as we go) */
    struct stat sb;
    int known_size = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode);
    size_t fsize = known_size ? (size_t)sb.st_size : 0, hstart = 0, hlen = 0;
    npy_header h;
    npy_dtype dt;
    memset(&h, 0, sizeof h);
    memset(&dt, 0, sizeof dt);
    qd_status st = read_preamble(f, path, known_size, fsize, &hstart, &hlen, e);
    if (st == QD_OK)
        st = read_header(f, path, hlen, &h, &dt, e);
    if (st)
        goto done;
    /* element count and byte sizes, overflow-checked: a product of 0 is legitimate */
    size_t count, raw_bytes, out_bytes;
    size_t osize = dt.kind == 'c' ? sizeof(qd_c) : sizeof(double);
    if (shape_count(h.ndim, h.shape, &count) ||
        qd_mul_overflow(count, (size_t)dt.size, &raw_bytes) ||
        qd_mul_overflow(count, osize, &out_bytes)) {
        st = qd_fail(e, QD_EFORMAT, "%s: .npy shape is too large (size overflows)", path);
        goto done;
    }
    /* bytes after the data are ignored, as numpy does */
    size_t dstart = hstart + hlen;
    if (known_size && (fsize < dstart || fsize - dstart < raw_bytes)) {
        st = truncated(e, path, raw_bytes, fsize > dstart ? fsize - dstart : 0);
        goto done;
    }
    if (count && (st = read_data(f, path, &h, &dt, count, raw_bytes, out_bytes, &data, e)))
        goto done;
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->is_complex = dt.kind == 'c';
    out->data = data;
    out->count = count;
    data = NULL;
done:
    qd_free(data);
    fclose(f);
    return st;
}

/* ---------------------------------------------------------------- writing */

/* write(2) until done; EINTR-safe. Returns 0 or -1 with errno set. */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        /* cap each call: Linux writes at most ~2 GiB per call anyway */
        size_t part = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
        ssize_t w = write(fd, p, part);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;   /* a regular file only writes 0 bytes when it is full */
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Builds the full preamble + padded header. Returns its length, or 0 if it does not fit
 * in cap (cannot happen for ndim <= 8 with the buffer below). */
static size_t build_header(char *buf, size_t cap, int is_complex, int ndim, const size_t *shape,
                           int fortran)
{
    char dict[400];
    int n = snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': %s, 'shape': (",
                     NPY_NATIVE, is_complex ? "c16" : "f8", fortran ? "True" : "False");
    for (int k = 0; k < ndim; k++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, k ? " %zu," : "%zu,", shape[k]);
    /* numpy writes (3,) for 1-d and (2, 3) for n-d: drop the comma unless 1-d */
    if (ndim > 1)
        n--;
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t dlen = (size_t)n;
    /* v1.0 has a 2-byte length; switch to v2.0 (4-byte) only when it would not fit, as
     * numpy does, so older readers can open everything we normally write */
    size_t pre = 10, total = (pre + dlen + 1 + 63) / 64 * 64;
    int major = 1;
    if (total - pre > 65535) {
        major = 2;
        pre = 12;
        total = (pre + dlen + 1 + 63) / 64 * 64;
    }
    if (total > cap)
        return 0;
    size_t hlen = total - pre;
    memcpy(buf, npy_magic, 6);
    buf[6] = (char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (char)((hlen >> (8 * i)) & 0xff);
    memcpy(buf + pre, dict, dlen);
    memset(buf + pre + dlen, ' ', total - 1 - pre - dlen);
    buf[total - 1] = '\n';
    return total;
}

qd_status qd_npy_write(const char *path, const void *data, int is_complex, int ndim,
                       const size_t *shape, int fortran_order, qd_err *e)
{
    if (!path || !*path)
        return qd_fail(e, QD_EARG, "qd_npy_write: empty path");
    if (ndim < 0 || ndim > NPY_MAX_NDIM)
        return qd_fail(e, QD_EARG, "%s: cannot write a %d-d array (.npy: 0..%d dimensions)",
                       path, ndim, NPY_MAX_NDIM);
    if (ndim > 0 && !shape)
        return qd_fail(e, QD_EARG, "%s: shape is NULL", path);
    size_t count, bytes;
    if (shape_count(ndim, shape, &count) ||
        qd_mul_overflow(count, is_complex ? sizeof(qd_c) : sizeof(double), &bytes))
        return qd_fail(e, QD_EARG, "%s: array shape is too large", path);
    if (bytes && !data)
        return qd_fail(e, QD_EARG, "%s: data is NULL", path);

    char hdr[512];
    size_t hbytes = build_header(hdr, sizeof hdr, is_complex, ndim, shape, fortran_order);
    if (!hbytes)
        return qd_fail(e, QD_EARG, "%s: .npy header does not fit", path);

    /* a unique name in the same directory (rename is only atomic within a filesystem);
     * O_EXCL so two writers never share a temporary, mode 0666 so umask applies as for
     * a plain fopen */
    static atomic_uint serial;
    size_t tlen = strlen(path) + 64;
    char *tmp = malloc(tlen);
    if (!tmp)
        return qd_fail(e, QD_ENOMEM, "%s: not enough memory", path);
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp, tlen, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&serial, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        qd_status st = qd_fail(e, QD_EIO, "cannot write '%s': %s", path, strerror(errno));
        free(tmp);
        return st;
    }
    /* fsync before rename: otherwise a crash can leave the new name pointing at an
     * empty file on some filesystems, which is exactly what the rename is to avoid */
    const char *step = "cannot write";
    int err = 0;
    if (write_all(fd, hdr, hbytes) || write_all(fd, data, bytes) || fsync(fd))
        err = errno;
    if (close(fd) && !err)
        err = errno;
    if (!err && rename(tmp, path)) {
        err = errno;
        step = "cannot replace";
    }
    if (err) {
        unlink(tmp);
        free(tmp);
        return qd_fail(e, QD_EIO, "%s '%s': %s", step, path, strerror(err));
    }
    free(tmp);
    return QD_OK;
}
