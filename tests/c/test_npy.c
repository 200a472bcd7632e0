/* test_npy.c — .npy reading and writing: every supported dtype read from reference files
 * made by numpy (tests/data/make_npy_refs.py, found through $QD_TEST_DATA, default
 * "tests/data", so run from the repo root), round trips of what we write (complex/real,
 * C/Fortran order, 0..8 dimensions, zero-size), the atomic replace on write, and every
 * error path with its status and message. Scratch files go to a mkdtemp directory that
 * is removed at exit. */
#include "harness.h"
#include <errno.h>
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* The formulas make_npy_refs.py fills its files with (value at C-order flat index i). */
static double ref_real(size_t i) { return ((double)i - 4) * 0.25; }
static qd_c ref_cplx(size_t i) { return CMPLX(((double)i - 4) * 0.25, (double)i * 0.5 + 1); }
static double ref_int(size_t i) { return ((double)i * 7 - 20) * (i % 2 ? -1 : 1); }
static double ref_uint(size_t i) { return (double)(i * 17 % 256); }

static char *data_path(const char *name)
{
    static char buf[4096];
    const char *d = getenv("QD_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/npy/%s.npy", d && *d ? d : "tests/data", name);
    return buf;
}

static char tmpdir[256];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_tmpdir(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* path of a scratch file; the directory is made on first use and removed at exit */
static const char *tmp_path(const char *name)
{
    static char buf[512];
    if (!tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/qd-npy-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "test_npy: cannot make a scratch directory: %s\n", strerror(errno));
            exit(2);
        }
        atexit(rm_tmpdir);
    }
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static void write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(bytes, 1, n, f);
        fclose(f);
    }
}

/* A .npy image with a hand-written header dict, padded like numpy. Returns its length. */
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *data,
                       size_t ndata)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hlen - dl - 1);
    buf[total - 1] = '\n';
    if (ndata)
        memcpy(buf + total, data, ndata);
    return total + ndata;
}

/* Reads path expecting failure with status st and a message containing every one of
 * the (up to two) substrings; the result must be left empty. */
static void expect_fail(const char *path, qd_status st, const char *s1, const char *s2,
                        const char *what)
{
    qd_npy f;
    memset(&f, 0xAB, sizeof f);   /* the reader must reset it, not trust it */
    qd_err e;
    qd_err_clear(&e);
    qd_status got = qd_npy_read(path, &f, &e);
    CHECK(got == st, "%s: status %d, expected %d (%s)", what, (int)got, (int)st, e.msg);
    CHECK(e.status == st, "%s: e.status set", what);
    CHECK(!s1 || strstr(e.msg, s1), "%s: message '%s' should mention '%s'", what, e.msg, s1);
    CHECK(!s2 || strstr(e.msg, s2), "%s: message '%s' should mention '%s'", what, e.msg, s2);
    CHECK(f.data == NULL && f.count == 0, "%s: result left empty", what);
    qd_free(f.data);
}

static int read_ok(const char *path, qd_npy *f, const char *what)
{
    qd_err e;
    qd_err_clear(&e);
    qd_status st = qd_npy_read(path, f, &e);
    CHECK(st == QD_OK, "%s: read failed: %s", what, e.msg);
    return st == QD_OK;
}

static void check_shape(const qd_npy *f, int ndim, const size_t *shape, int cplx,
                        const char *what)
{
    size_t n = 1;
    int same = f->ndim == ndim;
    for (int k = 0; k < ndim && same; k++) {
        same &= f->shape[k] == shape[k];
        n *= shape[k];
    }
    CHECK(same, "%s: shape (ndim %d, first %zu)", what, f->ndim, f->ndim ? f->shape[0] : 0);
    CHECK(f->is_complex == cplx, "%s: is_complex %d", what, f->is_complex);
    CHECK(f->count == n, "%s: count %zu, expected %zu", what, f->count, n);
    CHECK(n == 0 || ((uintptr_t)f->data % QD_ALIGN) == 0, "%s: data 64-byte aligned", what);
}

/* ---------------------------------------------------------------- reference files */

QD_TEST(npy_ref_every_dtype)
{
    /* every dtype in shape (2, 3), C order; 'fn' is the value formula */
    static const struct { const char *name; char fn; int cplx; } t[] = {
        {"f2", 'r', 0}, {"f4", 'r', 0}, {"f8", 'r', 0}, {"c8", 'c', 1}, {"c16", 'c', 1},
        {"i1", 'i', 0}, {"i2", 'i', 0}, {"i4", 'i', 0}, {"i8", 'i', 0},
        {"u1", 'u', 0}, {"u2", 'u', 0}, {"u4", 'u', 0}, {"u8", 'u', 0},
    };
    const size_t shape[2] = {2, 3};
    for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
        qd_npy f;
        if (!read_ok(data_path(t[j].name), &f, t[j].name))
            continue;
        check_shape(&f, 2, shape, t[j].cplx, t[j].name);
        int good = f.count == 6;
        for (size_t i = 0; i < f.count && good; i++) {
            if (t[j].cplx)
                good = ((qd_c *)f.data)[i] == ref_cplx(i);
            else
                good = ((double *)f.data)[i] == (t[j].fn == 'r' ? ref_real(i)
                                                 : t[j].fn == 'i' ? ref_int(i) : ref_uint(i));
        }
        CHECK(good, "%s: values match numpy's", t[j].name);
        qd_free(f.data);
    }
}

QD_TEST(npy_ref_bool)
{
    qd_npy f;
    if (!read_ok(data_path("b1"), &f, "b1"))
        return;
    const size_t shape[2] = {2, 3};
    const double want[6] = {1, 0, 1, 0, 0, 1};
    check_shape(&f, 2, shape, 0, "b1");
    CHECK(f.count == 6 && memcmp(f.data, want, sizeof want) == 0, "b1 values");
    qd_free(f.data);
}

QD_TEST(npy_ref_extremes)
{
    qd_npy f;
    if (read_ok(data_path("i8_ext"), &f, "i8_ext")) {
        double *d = f.data;
        CHECK(f.count == 4 && d[0] == -9223372036854775808.0 && d[1] == 9223372036854775807.0 &&
              d[2] == -1 && d[3] == 0, "int64 range ends");
        qd_free(f.data);
    }
    if (read_ok(data_path("u8_ext"), &f, "u8_ext")) {
        double *d = f.data;
        /* uint64 beyond 2^53 rounds to the nearest double, as numpy's astype does */
        CHECK(f.count == 3 && d[0] == 18446744073709551615.0 && d[1] == 9007199254740992.0 &&
              d[2] == 0, "uint64 range ends");
        qd_free(f.data);
    }
    if (read_ok(data_path("i1_ext"), &f, "i1_ext")) {
        double *d = f.data;
        CHECK(f.count == 2 && d[0] == -128 && d[1] == 127, "int8 range ends");
        qd_free(f.data);
    }
    if (read_ok(data_path("u1_ext"), &f, "u1_ext")) {
        double *d = f.data;
        CHECK(f.count == 2 && d[0] == 255 && d[1] == 0, "uint8 range ends");
        qd_free(f.data);
    }
    if (read_ok(data_path("f2_ext"), &f, "f2_ext")) {
        double *d = f.data;
        CHECK(f.count == 6, "f2 specials count");
        if (f.count == 6) {
            CHECK(d[0] == 65504.0, "f2 max %g", d[0]);
            CHECK(d[1] == ldexp(1, -24), "f2 smallest subnormal %g", d[1]);
            CHECK(d[2] == 0 && signbit(d[2]), "f2 -0");
            CHECK(isinf(d[3]) && d[3] > 0 && isinf(d[4]) && d[4] < 0, "f2 +-inf");
            CHECK(isnan(d[5]), "f2 nan");
        }
        qd_free(f.data);
    }
}

QD_TEST(npy_ref_layouts)
{
    qd_npy f;
    /* Fortran-order files come back in C order: element (r, c) at r*cols + c */
    if (read_ok(data_path("c16_fortran_3x4"), &f, "c16 fortran")) {
        const size_t s[2] = {3, 4};
        check_shape(&f, 2, s, 1, "c16 fortran");
        int good = f.count == 12;
        for (size_t i = 0; i < f.count && good; i++)
            good = ((qd_c *)f.data)[i] == ref_cplx(i);
        CHECK(good, "fortran 3x4 complex transposed to C order");
        qd_free(f.data);
    }
    if (read_ok(data_path("i4_fortran_2x3x4"), &f, "i4 fortran 3-d")) {
        const size_t s[3] = {2, 3, 4};
        check_shape(&f, 3, s, 0, "i4 fortran 3-d");
        int good = f.count == 24;
        for (size_t i = 0; i < f.count && good; i++)
            good = ((double *)f.data)[i] == ref_int(i);
        CHECK(good, "fortran 2x3x4 int32 in C order");
        qd_free(f.data);
    }
    if (read_ok(data_path("f8_3d"), &f, "f8 3-d")) {
        const size_t s[3] = {2, 3, 4};
        check_shape(&f, 3, s, 0, "f8 3-d");
        int good = f.count == 24;
        for (size_t i = 0; i < f.count && good; i++)
            good = ((double *)f.data)[i] == ref_real(i);
        CHECK(good, "3-d float64 values");
        qd_free(f.data);
    }
    if (read_ok(data_path("f8_0d"), &f, "0-d")) {
        check_shape(&f, 0, NULL, 0, "0-d");
        CHECK(f.count == 1 && ((double *)f.data)[0] == 2.5, "0-d value");
        qd_free(f.data);
    }
    if (read_ok(data_path("c16_0x3"), &f, "zero-size")) {
        const size_t s[2] = {0, 3};
        check_shape(&f, 2, s, 1, "zero-size");
        CHECK(f.data == NULL, "zero-size has no buffer");
        qd_free(f.data);
    }
    if (read_ok(data_path("f4_1d"), &f, "f4 1-d")) {
        const size_t s[1] = {5};
        check_shape(&f, 1, s, 0, "f4 1-d");
        int good = f.count == 5;
        for (size_t i = 0; i < f.count && good; i++)
            good = ((double *)f.data)[i] == ref_real(i);
        CHECK(good, "1-d float32 values");
        qd_free(f.data);
    }
}

QD_TEST(npy_ref_versions_and_headers)
{
    static const struct { const char *name; int cplx, ndim; size_t s0, s1; } t[] = {
        {"f8_v2", 0, 2, 2, 3},          /* format 2.0: 4-byte header length */
        {"c8_v3", 1, 1, 4, 0},          /* format 3.0 */
        {"f8_oddheader", 0, 2, 2, 2},   /* keys reordered, " quotes, '=f8', no trailing ',' */
        {"f8_py2long", 0, 1, 3, 0},     /* (3L,) */
    };
    for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
        qd_npy f;
        if (!read_ok(data_path(t[j].name), &f, t[j].name))
            continue;
        const size_t s[2] = {t[j].s0, t[j].s1};
        check_shape(&f, t[j].ndim, s, t[j].cplx, t[j].name);
        int good = 1;
        for (size_t i = 0; i < f.count && good; i++)
            good = t[j].cplx ? ((qd_c *)f.data)[i] == ref_cplx(i)
                             : ((double *)f.data)[i] == ref_real(i);
        CHECK(good, "%s values", t[j].name);
        qd_free(f.data);
    }
}

QD_TEST(npy_ref_big_endian)
{
    static const struct { const char *name; char fn; int cplx; } t[] = {
        {"f8_be", 'r', 0}, {"c16_be", 'c', 1}, {"i4_be", 'i', 0}, {"c8_be_fortran", 'c', 1},
    };
    const size_t shape[2] = {2, 3};
    for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
        qd_npy f;
        if (!read_ok(data_path(t[j].name), &f, t[j].name))
            continue;
        check_shape(&f, 2, shape, t[j].cplx, t[j].name);
        int good = f.count == 6;
        for (size_t i = 0; i < f.count && good; i++)
            good = t[j].cplx ? ((qd_c *)f.data)[i] == ref_cplx(i)
                             : ((double *)f.data)[i] == (t[j].fn == 'r' ? ref_real(i) : ref_int(i));
        CHECK(good, "%s byte-swapped values", t[j].name);
        qd_free(f.data);
    }
}

QD_TEST(npy_ref_unsupported_dtypes)
{
    expect_fail(data_path("obj"), QD_EFORMAT, "'|O'", "object arrays", "object array");
    expect_fail(data_path("str"), QD_EFORMAT, "unsupported dtype '<U2'", NULL, "unicode");
    expect_fail(data_path("datetime"), QD_EFORMAT, "unsupported dtype '<M8[D]'", NULL,
                "datetime");
    expect_fail(data_path("struct"), QD_EFORMAT, "structured", NULL, "record dtype");
    /* the message names the file */
    expect_fail(data_path("obj"), QD_EFORMAT, data_path("obj"), NULL, "path in message");
}

/* ---------------------------------------------------------------- round trips */

/* writes, reads back, compares; data is laid out as fortran says */
static void roundtrip(const char *what, const void *data, int cplx, int ndim,
                      const size_t *shape, int fortran)
{
    const char *p = tmp_path("rt.npy");
    qd_err e;
    qd_err_clear(&e);
    qd_status st = qd_npy_write(p, data, cplx, ndim, shape, fortran, &e);
    CHECK(st == QD_OK, "%s: write: %s", what, e.msg);
    qd_npy f;
    if (st || !read_ok(p, &f, what))
        return;
    check_shape(&f, ndim, shape, cplx, what);
    /* compare element at C multi-index with the input at the same multi-index */
    size_t n = f.count, es = cplx ? sizeof(qd_c) : sizeof(double);
    int good = 1;
    for (size_t i = 0; i < n && good; i++) {
        size_t src = i;
        if (fortran && ndim > 1) {
            size_t rem = i, fstride = 1, off = 0, cstride = n;
            for (int k = 0; k < ndim; k++) {
                cstride /= shape[k];
                size_t ik = rem / cstride;
                rem %= cstride;
                off += ik * fstride;
                fstride *= shape[k];
            }
            src = off;
        }
        good = memcmp((const char *)f.data + i * es, (const char *)data + src * es, es) == 0;
    }
    CHECK(good, "%s: data identical after the round trip", what);
    qd_free(f.data);
    remove(p);
}

QD_TEST(npy_roundtrip)
{
    qd_rng r;
    qd_rng_init(&r, 11);
    qd_c c[120];
    double d[120];
    for (int i = 0; i < 120; i++) {
        c[i] = qd_rng_cnormal(&r);
        d[i] = qd_rng_normal(&r);
    }
    d[3] = -0.0;
    d[4] = INFINITY;
    d[5] = NAN;   /* compared bitwise, so NaN round-trips too */
    const size_t s1[1] = {120}, s2[2] = {8, 15}, s3[3] = {2, 3, 5}, s0[2] = {0, 4};
    const size_t s8[8] = {2, 1, 3, 1, 2, 1, 5, 2};
    roundtrip("complex 1-d", c, 1, 1, s1, 0);
    roundtrip("real 1-d", d, 0, 1, s1, 0);
    roundtrip("complex 2-d C", c, 1, 2, s2, 0);
    roundtrip("complex 2-d Fortran", c, 1, 2, s2, 1);
    roundtrip("real 2-d Fortran", d, 0, 2, s2, 1);
    roundtrip("real 3-d C", d, 0, 3, s3, 0);
    roundtrip("complex 3-d Fortran", c, 1, 3, s3, 1);
    roundtrip("complex 0-d", c, 1, 0, NULL, 0);
    roundtrip("real 0-d", d, 0, 0, NULL, 1);
    roundtrip("zero-size real", NULL, 0, 2, s0, 0);
    roundtrip("zero-size complex Fortran", NULL, 1, 2, s0, 1);
    roundtrip("8-d real Fortran", d, 0, 8, s8, 1);
    roundtrip("8-d complex C", c, 1, 8, s8, 0);
}

QD_TEST(npy_write_header_bytes)
{
    const char *p = tmp_path("hdr.npy");
    const size_t s[2] = {3, 4};
    qd_c z[12] = {0};
    qd_err e;
    CHECK(qd_npy_write(p, z, 1, 2, s, 1, &e) == QD_OK, "write: %s", e.msg);
    unsigned char buf[512];
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    CHECK(n == 128 + 12 * 16, "file size %zu", n);
    if (n < 128)
        return;
    size_t hlen = buf[8] | (size_t)buf[9] << 8;
    CHECK(memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0, "magic and version 1.0");
    CHECK((10 + hlen) % 64 == 0, "data starts on a 64-byte boundary (%zu)", 10 + hlen);
    CHECK(buf[10 + hlen - 1] == '\n', "header ends with a newline");
    const char *want = "{'descr': '<c16', 'fortran_order': True, 'shape': (3, 4), }";
    CHECK(memcmp(buf + 10, want, strlen(want)) == 0, "header dict as numpy writes it");
    remove(p);

    const size_t s1[1] = {7};
    double d[7] = {0};
    CHECK(qd_npy_write(p, d, 0, 1, s1, 0, &e) == QD_OK, "write: %s", e.msg);
    f = fopen(p, "rb");
    n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    want = "{'descr': '<f8', 'fortran_order': False, 'shape': (7,), }";
    CHECK(n > 10 + strlen(want) && memcmp(buf + 10, want, strlen(want)) == 0,
          "1-d header has the (7,) tuple");
    remove(p);
}

QD_TEST(npy_write_replace)
{
    const char *p0 = tmp_path("rep.npy");
    char p[512];
    snprintf(p, sizeof p, "%s", p0);
    const size_t s4[1] = {4}, s2[1] = {2};
    double a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    qd_err e;
    int before = count_entries(tmpdir);
    CHECK(qd_npy_write(p, a, 0, 1, s4, 0, &e) == QD_OK, "first write: %s", e.msg);
    CHECK(qd_npy_write(p, b, 0, 1, s2, 0, &e) == QD_OK, "overwrite: %s", e.msg);
    qd_npy f;
    if (read_ok(p, &f, "overwritten")) {
        CHECK(f.count == 2 && ((double *)f.data)[1] == 6, "the new contents are there");
        qd_free(f.data);
    }
    CHECK(count_entries(tmpdir) == before + 1, "no temporary file left behind");
    remove(p);

    /* target is a directory: the rename fails; the directory and its contents survive
     * and the temporary is removed */
    const char *dp = tmp_path("adir");
    char dir[512];
    snprintf(dir, sizeof dir, "%s", dp);
    mkdir(dir, 0777);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep.npy", dir);
    CHECK(qd_npy_write(inner, a, 0, 1, s4, 0, &e) == QD_OK, "inner write");
    before = count_entries(tmpdir);
    qd_err_clear(&e);
    CHECK(qd_npy_write(dir, b, 0, 1, s2, 0, &e) == QD_EIO, "writing over a directory fails");
    CHECK(strstr(e.msg, dir) && strstr(e.msg, "directory"), "message: %s", e.msg);
    CHECK(count_entries(tmpdir) == before, "temporary removed after a failed write");
    CHECK(count_entries(dir) == 1, "the existing directory is untouched");

    /* missing directory: the temporary cannot even be created */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope/x.npy", tmpdir);
    qd_err_clear(&e);
    CHECK(qd_npy_write(missing, a, 0, 1, s4, 0, &e) == QD_EIO, "missing directory -> QD_EIO");
    CHECK(strstr(e.msg, missing) && strstr(e.msg, strerror(ENOENT)), "message: %s", e.msg);
}

/* A write that fails midway (here: the file-size limit RLIMIT_FSIZE makes write(2) fail
 * with EFBIG after 4 KiB of an 80 KiB array, as a full disk would with ENOSPC) must leave
 * the existing file exactly as it was and no temporary behind. Done in a child process so
 * the limit and the ignored SIGXFSZ do not leak into the other tests. */
QD_TEST(npy_write_fails_midway)
{
    const char *p0 = tmp_path("midway.npy");
    char p[512];
    snprintf(p, sizeof p, "%s", p0);
    const size_t s4[1] = {4};
    double old[4] = {1, 2, 3, 4};
    qd_err e;
    CHECK(qd_npy_write(p, old, 0, 1, s4, 0, &e) == QD_OK, "first write: %s", e.msg);
    int before = count_entries(tmpdir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* child: exit status 0 = the write failed with EFBIG as intended, 1 = it did not
         * fail, 2 = wrong status or message, 3 = setrlimit unavailable */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &rl))
            _exit(3);
        enum { BIG = 10000 };
        static double big[BIG];
        for (int i = 0; i < BIG; i++)
            big[i] = i;
        const size_t sb[1] = {BIG};
        qd_err ce;
        qd_err_clear(&ce);
        qd_status st = qd_npy_write(p, big, 0, 1, sb, 0, &ce);
        if (st == QD_OK)
            _exit(1);
        _exit(st == QD_EIO && strstr(ce.msg, p) && strstr(ce.msg, strerror(EFBIG)) ? 0 : 2);
    }
    if (pid < 0) {
        CHECK(0, "fork: %s", strerror(errno));
        return;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 1, "the oversized write failed (status %d)", status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 2, "QD_EIO naming the file and EFBIG");
    CHECK(count_entries(tmpdir) == before, "no temporary file left behind after the failure");
    qd_npy f;
    if (read_ok(p, &f, "old file after a failed overwrite")) {
        CHECK(f.count == 4 && memcmp(f.data, old, sizeof old) == 0, "the old contents are intact");
        qd_free(f.data);
    }
    remove(p);
}

QD_TEST(npy_write_bad_args)
{
    const char *p = tmp_path("bad.npy");
    double d[2] = {0};
    const size_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const size_t big[2] = {(size_t)1 << 40, (size_t)1 << 40};
    const size_t s2[1] = {2};
    qd_err e;
    qd_err_clear(&e);
    CHECK(qd_npy_write(p, d, 0, 9, s9, 0, &e) == QD_EARG && strstr(e.msg, "9-d"),
          "9-d rejected: %s", e.msg);
    CHECK(qd_npy_write(p, d, 0, -1, s9, 0, &e) == QD_EARG, "negative ndim rejected");
    CHECK(qd_npy_write(p, d, 1, 2, big, 0, &e) == QD_EARG && strstr(e.msg, "too large"),
          "overflowing shape rejected: %s", e.msg);
    CHECK(qd_npy_write(p, NULL, 0, 1, s2, 0, &e) == QD_EARG && strstr(e.msg, "NULL"),
          "NULL data rejected: %s", e.msg);
    CHECK(qd_npy_write(p, d, 0, 1, NULL, 0, &e) == QD_EARG, "NULL shape rejected");
    CHECK(qd_npy_write("", d, 0, 1, s2, 0, &e) == QD_EARG, "empty path rejected");
    CHECK(access(p, F_OK) != 0, "nothing written on bad arguments");
}

/* ---------------------------------------------------------------- read errors */

QD_TEST(npy_err_open)
{
    char p[600];
    snprintf(p, sizeof p, "%s", tmp_path("does-not-exist.npy"));
    expect_fail(p, QD_EIO, p, strerror(ENOENT), "missing file");
    expect_fail(tmpdir, QD_EIO, tmpdir, strerror(EISDIR), "directory");
}

QD_TEST(npy_err_magic_and_version)
{
    const char *p = tmp_path("m.npy");
    write_file(p, "", 0);
    expect_fail(p, QD_EFORMAT, "not a .npy file", "too short", "empty file");
    write_file(p, "PK\x03\x04 a zip file, not npy", 24);
    expect_fail(p, QD_EFORMAT, "not a .npy file", "bad magic", "bad magic");
    write_file(p, "\x93NUMPY", 6);
    expect_fail(p, QD_EFORMAT, "truncated", "version", "no version");
    write_file(p, "\x93NUMPY\x01\x00\x10", 9);
    expect_fail(p, QD_EFORMAT, "truncated", "header length", "half a header length");
    write_file(p, "\x93NUMPY\x02\x00\x10\x00\x00", 11);
    expect_fail(p, QD_EFORMAT, "truncated", "header length", "v2 short header length");

    unsigned char buf[256];
    size_t n = make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
                        "\0\0\0\0\0\0\0\0", 8);
    buf[6] = 4;
    write_file(p, buf, n);
    expect_fail(p, QD_EFORMAT, "unsupported .npy format version 4.0", NULL, "version 4");
    buf[6] = 1;
    buf[7] = 1;
    write_file(p, buf, n);
    expect_fail(p, QD_EFORMAT, "version 1.1", NULL, "version 1.1");
    /* a header length pointing past the end of the file */
    buf[7] = 0;
    buf[8] = 0xff;
    buf[9] = 0xff;
    write_file(p, buf, n);
    expect_fail(p, QD_EFORMAT, "truncated", "header of 65535 bytes", "header past EOF");
    /* a v2 header length beyond any sane size is refused before allocating */
    n = make_npy(buf, 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
                 "\0\0\0\0\0\0\0\0", 8);
    buf[11] = 0x7f;
    write_file(p, buf, n);
    expect_fail(p, QD_EFORMAT, "header too large", NULL, "huge v2 header length");
    remove(p);
}

QD_TEST(npy_err_truncated_data)
{
    const char *p = tmp_path("t.npy");
    const size_t s[2] = {2, 3};
    qd_c c[6] = {0};
    qd_err e;
    CHECK(qd_npy_write(p, c, 1, 2, s, 0, &e) == QD_OK, "write");
    CHECK(truncate(p, 128 + 80) == 0, "truncate");
    expect_fail(p, QD_EFORMAT, "truncated .npy file: expected 96 bytes of data, got 80", NULL,
                "truncated complex data");
    CHECK(truncate(p, 128) == 0, "truncate");
    expect_fail(p, QD_EFORMAT, "expected 96 bytes of data, got 0", NULL, "header only");

    /* converted dtypes are checked the same way */
    unsigned char buf[256];
    size_t n = make_npy(buf, 1, "{'descr': '<i4', 'fortran_order': True, 'shape': (3, 3), }",
                        "\1\0\0\0\2\0\0\0\3\0\0\0", 12);
    write_file(p, buf, n);
    expect_fail(p, QD_EFORMAT, "expected 36 bytes of data, got 12", NULL, "truncated int32");

    /* a header claiming 8 TiB of data in a tiny file: refused without allocating it */
    n = make_npy(buf, 1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1099511627776, 8), }",
                 NULL, 0);
    write_file(p, buf, n);
    expect_fail(p, QD_EFORMAT, "expected 140737488355328 bytes of data, got 0", NULL,
                "lying shape");
    remove(p);
}

/* Streams (pipes) have no size to check up front: truncation is found while reading. */
QD_TEST(npy_err_truncated_stream)
{
    const char *p0 = tmp_path("fifo");
    char p[512];
    snprintf(p, sizeof p, "%s", p0);
    if (mkfifo(p, 0600) != 0) {
        CHECK(0, "mkfifo: %s", strerror(errno));
        return;
    }
    static const struct { const char *dict; size_t ndata; const char *want; } t[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", 32, NULL},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", 32,
         "expected 40 bytes of data, got 32"},
        {"{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }", 10,
         "expected 12 bytes of data, got 10"},
    };
    for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
        unsigned char buf[256], data[64];
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = (unsigned char)i;
        size_t n = make_npy(buf, 1, t[j].dict, data, t[j].ndata);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            /* child: feed the file through the fifo and leave without running atexit */
            FILE *w = fopen(p, "wb");
            if (w) {
                fwrite(buf, 1, n, w);
                fclose(w);
            }
            _exit(0);
        }
        if (pid < 0) {
            CHECK(0, "fork: %s", strerror(errno));
            break;
        }
        if (t[j].want) {
            expect_fail(p, QD_EFORMAT, t[j].want, NULL, "truncated stream");
        } else {
            qd_npy f;
            if (read_ok(p, &f, "whole stream")) {
                CHECK(f.count == 4 && memcmp(f.data, data, 32) == 0, "stream data");
                qd_free(f.data);
            }
        }
        waitpid(pid, NULL, 0);
    }
    remove(p);
}

QD_TEST(npy_err_bad_header)
{
    static const struct { const char *dict, *want; } t[] = {
        {"('descr', '<f8')", "expected a dict"},
        {"{'descr': '<f8', 'fortran_order': False}", "missing key 'shape'"},
        {"{'fortran_order': False, 'shape': (2,)}", "missing key 'descr'"},
        {"{'descr': '<f8', 'shape': (2,)}", "missing key 'fortran_order'"},
        {"{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", "True or False"},
        {"{'descr': '<f8', 'fortran_order': Falsey, 'shape': (2,)}", "True or False"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}", "non-negative integers"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,)}", "expected ',' or ')'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': [2]}", "must be a tuple"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,,)}", "non-negative integers"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
         "too large"},
        {"{'descr': '<f8, 'fortran_order': False, 'shape': (2,)}", "expected ',' or '}'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)", "expected ',' or '}'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} x", "after the dict"},
        {"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}",
         "duplicate key"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
         "unknown key 'extra'"},
        {"{descr: '<f8'}", "expected a quoted key"},
        {"{'descr': <f8, 'fortran_order': False, 'shape': (2,)}", "dtype string"},
        {"{'descr': '<f\\x38', 'fortran_order': False, 'shape': (2,)}", "escapes"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}",
         "more than 8 dimensions"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2)}",
         "too large"},
        {"", "expected a dict"},
    };
    const char *p = tmp_path("h.npy");
    for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
        unsigned char buf[512];
        size_t n = make_npy(buf, 1, t[j].dict, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
        write_file(p, buf, n);
        char what[160];
        snprintf(what, sizeof what, "header %s", t[j].dict);
        expect_fail(p, QD_EFORMAT, t[j].want, NULL, what);
    }
    /* the message shows the header text, without its padding */
    unsigned char buf[512];
    size_t n = make_npy(buf, 1, "{'descr': '<f8', 'bogus': 1}", NULL, 0);
    write_file(p, buf, n);
    expect_fail(p, QD_EFORMAT, "in \"{'descr': '<f8', 'bogus': 1}\"", "bad .npy header",
                "header shown");
    remove(p);
}

QD_TEST(npy_err_bad_dtype)
{
    static const char *bad[] = {"<f16", "<c32", "<f3", "<i3", "|b2", "<x8", "<f", "f08",
                                "<f8 ", "|O", "<V16", "|S4", ""};
    const char *p = tmp_path("d.npy");
    for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
        char dict[128], want[64];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (1,)}",
                 bad[j]);
        snprintf(want, sizeof want, "unsupported dtype '%s'", bad[j]);
        unsigned char buf[256];
        size_t n = make_npy(buf, 1, dict, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
        write_file(p, buf, n);
        expect_fail(p, QD_EFORMAT, want, NULL, want);
    }
    /* accepted spellings: no byte-order mark, '|' on a multi-byte type, '=' */
    static const char *good[] = {"f8", "|f8", "=f8", "<u2", "b1", "<b1"};
    for (size_t j = 0; j < sizeof good / sizeof good[0]; j++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (1,)}",
                 good[j]);
        unsigned char buf[256];
        size_t n = make_npy(buf, 1, dict, "\0\0\0\0\0\0\0\0", 8);
        write_file(p, buf, n);
        qd_npy f;
        if (read_ok(p, &f, good[j])) {
            CHECK(f.count == 1 && ((double *)f.data)[0] == 0, "dtype %s reads", good[j]);
            qd_free(f.data);
        }
    }
    remove(p);
}
