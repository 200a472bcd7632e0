/* dist.c — the MPI calls qd makes (qd_dist.h), and their one-process forms when qd is built
 * without MPI. The only file that includes mpi.h (the interpreter calls qd_dist_init and
 * qd_dist_finalize). Collectives and the library's messages are on a duplicate of
 * MPI_COMM_WORLD (the script's own qd.mpi.send/recv use WORLD itself); errors return
 * (MPI_ERRORS_RETURN) as QD_EIO with MPI's text. */
#include "qd_dist.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef QD_MPI
#include <mpi.h>
#endif

/* messages above this go in pieces (MPI counts are int) */
#define CHUNK ((size_t)1 << 30)

/* a gather on one process: a malloc'd copy of the caller's bytes */
static qd_status gather_one(const void *buf, size_t bytes, void **out, size_t *lens, qd_err *e)
{
    char *d = malloc(bytes ? bytes : 1);
    if (!d)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a gather (%zu bytes)", bytes);
    memcpy(d, buf, bytes);
    *out = d;
    lens[0] = bytes;
    return QD_OK;
}

int qd_dist_enabled(void)
{
#ifdef QD_MPI
    return 1;
#else
    return 0;
#endif
}

#ifdef QD_MPI
static int g_rank = 0, g_size = 1, g_up = 0, g_local = 1;
static MPI_Comm g_lib = MPI_COMM_NULL;

static qd_status mpi_fail(qd_err *e, int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS)
        snprintf(s, sizeof s, "error %d", rc);
    return qd_fail(e, QD_EIO, "%s failed: %s", what, s);
}
#define CHECK(call, what)                                                                   \
    do {                                                                                    \
        int rc_ = (call);                                                                   \
        if (rc_ != MPI_SUCCESS)                                                             \
            return mpi_fail(e, rc_, what);                                                  \
    } while (0)

int qd_dist_init(int *argc, char ***argv)
{
    int prov = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &prov) != MPI_SUCCESS)
        return 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    /* the library's own traffic (collectives, the gather's and the state vector's messages)
     * on a duplicate: a script's qd.mpi.recv of any tag can never take one of them */
    if (MPI_Comm_dup(MPI_COMM_WORLD, &g_lib) != MPI_SUCCESS)
        return 1;
    MPI_Comm_set_errhandler(g_lib, MPI_ERRORS_RETURN);
    MPI_Comm node;   /* the ranks sharing this machine's cores (default thread counts) */
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL,
                            &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &g_local);
        MPI_Comm_free(&node);
    }
    g_up = 1;
    return 0;
}

void qd_dist_finalize(void)
{
    if (g_up) {
        MPI_Comm_free(&g_lib);
        MPI_Finalize();
    }
    g_up = 0;
}

void qd_dist_abort(int code)
{
    if (g_up && g_size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
}

int qd_dist_rank(void) { return g_rank; }
int qd_dist_size(void) { return g_size; }
int qd_dist_local_size(void) { return g_local; }

const char *qd_dist_library(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (!v[0] && MPI_Get_library_version(v, &len) == MPI_SUCCESS) {
        char *nl = strchr(v, '\n');   /* first line only */
        if (nl)
            *nl = '\0';
    }
    return v;
}

/* Before MPI_Init (test_core of the MPI build, which is not started by mpirun) there is one
 * process: the collectives below take their one-process form rather than call MPI. */
qd_status qd_dist_barrier(qd_err *e)
{
    if (!g_up)
        return QD_OK;
    CHECK(MPI_Barrier(g_lib), "MPI_Barrier");
    return QD_OK;
}

qd_status qd_dist_bcast(void *buf, size_t bytes, int root, qd_err *e)
{
    if (!g_up)
        return QD_OK;
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t m = bytes - off < CHUNK ? bytes - off : CHUNK;
        CHECK(MPI_Bcast((char *)buf + off, (int)m, MPI_BYTE, root, g_lib), "MPI_Bcast");
    }
    return QD_OK;
}

/* sizes first, then each rank's bytes to root in rank order (point to point: no int
 * displacement limit) */
qd_status qd_dist_gather(const void *buf, size_t bytes, int root, void **out, size_t *lens,
                         qd_err *e)
{
    unsigned long long mine = bytes, *all = NULL;
    size_t total = 0;
    *out = NULL;
    if (!g_up)
        return gather_one(buf, bytes, out, lens, e);
    if (g_rank == root) {
        all = malloc((size_t)g_size * sizeof *all);
        if (!all)
            return qd_fail(e, QD_ENOMEM, "not enough memory for a gather");
    }
    int rc = MPI_Gather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, root,
                        g_lib);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(e, rc, "MPI_Gather");
    }
    if (g_rank != root) {
        for (size_t off = 0; off < bytes; off += CHUNK) {
            size_t m = bytes - off < CHUNK ? bytes - off : CHUNK;
            CHECK(MPI_Send((const char *)buf + off, (int)m, MPI_BYTE, root, 0x7171,
                           g_lib), "MPI_Send");
        }
        return QD_OK;
    }
    for (int r = 0; r < g_size; r++)
        total += (size_t)all[r];
    char *dst = malloc(total ? total : 1);
    if (!dst) {
        free(all);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a gather (%zu bytes)", total);
    }
    size_t pos = 0;
    for (int r = 0; r < g_size; r++) {
        lens[r] = (size_t)all[r];
        if (r == root) {
            memcpy(dst + pos, buf, bytes);
        } else {
            for (size_t off = 0; off < lens[r]; off += CHUNK) {
                size_t m = lens[r] - off < CHUNK ? lens[r] - off : CHUNK;
                rc = MPI_Recv(dst + pos + off, (int)m, MPI_BYTE, r, 0x7171, g_lib,
                              MPI_STATUS_IGNORE);
                if (rc != MPI_SUCCESS) {
                    free(dst);
                    free(all);
                    return mpi_fail(e, rc, "MPI_Recv");
                }
            }
        }
        pos += lens[r];
    }
    free(all);
    *out = dst;
    return QD_OK;
}

qd_status qd_dist_allgather(const void *buf, size_t bytes, void **out, size_t *lens,
                            qd_err *e)
{
    if (!g_up)
        return qd_dist_gather(buf, bytes, 0, out, lens, e);
    unsigned long long mine = bytes, *all = malloc((size_t)g_size * sizeof *all);
    int *cnt = malloc((size_t)g_size * sizeof *cnt), *dsp = malloc((size_t)g_size * sizeof *dsp);
    size_t total = 0;
    qd_status st = QD_OK;
    char *dst = NULL;
    *out = NULL;
    if (!all || !cnt || !dsp) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for an allgather");
        goto done;
    }
    int rc = MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG,
                           g_lib);
    if (rc != MPI_SUCCESS) {
        st = mpi_fail(e, rc, "MPI_Allgather");
        goto done;
    }
    for (int r = 0; r < g_size; r++) {
        lens[r] = (size_t)all[r];
        total += lens[r];
    }
    if (total > (size_t)0x7fffffff) {   /* int displacements: the long way round */
        free(all);
        free(cnt);
        free(dsp);
        st = qd_dist_gather(buf, bytes, 0, out, lens, e);
        if (st == QD_OK && g_rank != 0 && !(*out = malloc(total)))
            st = qd_fail(e, QD_ENOMEM, "not enough memory for an allgather (%zu bytes)", total);
        if (st == QD_OK)
            st = qd_dist_bcast(*out, total, 0, e);
        if (st == QD_OK)   /* the sizes, which only rank 0 learnt */
            st = qd_dist_bcast(lens, (size_t)g_size * sizeof *lens, 0, e);
        return st;
    }
    dst = malloc(total ? total : 1);
    if (!dst) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for an allgather (%zu bytes)", total);
        goto done;
    }
    for (int r = 0, pos = 0; r < g_size; r++) {
        cnt[r] = (int)lens[r];
        dsp[r] = pos;
        pos += cnt[r];
    }
    rc = MPI_Allgatherv(buf, (int)bytes, MPI_BYTE, dst, cnt, dsp, MPI_BYTE, g_lib);
    if (rc != MPI_SUCCESS) {
        st = mpi_fail(e, rc, "MPI_Allgatherv");
        free(dst);
        dst = NULL;
    }
    *out = dst;
done:
    free(all);
    free(cnt);
    free(dsp);
    return st;
}

qd_status qd_dist_send(const void *buf, size_t bytes, int dest, int tag, qd_err *e)
{
    unsigned long long len = bytes;
    if (!g_up)
        return qd_fail(e, QD_EARG, "MPI is not initialised");
    CHECK(MPI_Send(&len, 1, MPI_UNSIGNED_LONG_LONG, dest, tag, MPI_COMM_WORLD), "MPI_Send");
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t m = bytes - off < CHUNK ? bytes - off : CHUNK;
        CHECK(MPI_Send((const char *)buf + off, (int)m, MPI_BYTE, dest, tag, MPI_COMM_WORLD),
              "MPI_Send");
    }
    return QD_OK;
}

qd_status qd_dist_recv(int src, int tag, void **out, size_t *len, int *src_out, int *tag_out,
                       qd_err *e)
{
    unsigned long long n = 0;
    MPI_Status st;
    *out = NULL;
    if (!g_up)
        return qd_fail(e, QD_EARG, "MPI is not initialised");
    CHECK(MPI_Recv(&n, 1, MPI_UNSIGNED_LONG_LONG, src < 0 ? MPI_ANY_SOURCE : src,
                   tag < 0 ? MPI_ANY_TAG : tag, MPI_COMM_WORLD, &st), "MPI_Recv");
    char *b = malloc(n ? (size_t)n : 1);
    if (!b)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a message (%llu bytes)", n);
    /* the rest of the message from the same sender and tag (MPI keeps their order) */
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t m = n - off < CHUNK ? n - off : CHUNK;
        int rc = MPI_Recv(b + off, (int)m, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
                          MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            free(b);
            return mpi_fail(e, rc, "MPI_Recv");
        }
    }
    *out = b;
    *len = (size_t)n;
    *src_out = st.MPI_SOURCE;
    *tag_out = st.MPI_TAG;
    return QD_OK;
}

int qd_dist_iprobe(int src, int tag)
{
    int flag = 0;
    if (!g_up)
        return 0;
    MPI_Iprobe(src < 0 ? MPI_ANY_SOURCE : src, tag < 0 ? MPI_ANY_TAG : tag, MPI_COMM_WORLD,
               &flag, MPI_STATUS_IGNORE);
    return flag;
}

qd_status qd_dist_sendrecv(const void *sbuf, void *rbuf, size_t bytes, int partner, qd_err *e)
{
    if (!g_up) {
        memcpy(rbuf, sbuf, bytes);
        return QD_OK;
    }
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t m = bytes - off < CHUNK ? bytes - off : CHUNK;
        CHECK(MPI_Sendrecv((const char *)sbuf + off, (int)m, MPI_BYTE, partner, 0x5151,
                           (char *)rbuf + off, (int)m, MPI_BYTE, partner, 0x5151,
                           g_lib, MPI_STATUS_IGNORE), "MPI_Sendrecv");
    }
    return QD_OK;
}

#else /* one process */

int qd_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
void qd_dist_finalize(void) {}
void qd_dist_abort(int code) { (void)code; }
int qd_dist_rank(void) { return 0; }
int qd_dist_size(void) { return 1; }
int qd_dist_local_size(void) { return 1; }
const char *qd_dist_library(void) { return "none"; }
qd_status qd_dist_barrier(qd_err *e)
{
    (void)e;
    return QD_OK;
}
qd_status qd_dist_bcast(void *buf, size_t bytes, int root, qd_err *e)
{
    (void)buf;
    (void)bytes;
    (void)root;
    (void)e;
    return QD_OK;
}
qd_status qd_dist_gather(const void *buf, size_t bytes, int root, void **out, size_t *lens,
                         qd_err *e)
{
    (void)root;
    return gather_one(buf, bytes, out, lens, e);
}
qd_status qd_dist_allgather(const void *buf, size_t bytes, void **out, size_t *lens,
                            qd_err *e)
{
    return qd_dist_gather(buf, bytes, 0, out, lens, e);
}
qd_status qd_dist_send(const void *buf, size_t bytes, int dest, int tag, qd_err *e)
{
    (void)buf;
    (void)bytes;
    (void)dest;
    (void)tag;
    return qd_fail(e, QD_EARG, "no other rank to send to (qd runs as one process)");
}
qd_status qd_dist_recv(int src, int tag, void **out, size_t *len, int *src_out, int *tag_out,
                       qd_err *e)
{
    (void)src;
    (void)tag;
    (void)len;
    (void)src_out;
    (void)tag_out;
    *out = NULL;
    return qd_fail(e, QD_EARG, "no other rank to receive from (qd runs as one process)");
}
int qd_dist_iprobe(int src, int tag)
{
    (void)src;
    (void)tag;
    return 0;
}
qd_status qd_dist_sendrecv(const void *sbuf, void *rbuf, size_t bytes, int partner, qd_err *e)
{
    (void)partner;
    (void)e;
    memcpy(rbuf, sbuf, bytes);   /* partner is this process */
    return QD_OK;
}
#endif

/* through rank 0 in rank order, then broadcast: the same bits whatever MPI's reduction tree */
qd_status qd_dist_allreduce(double *x, size_t n, char op, qd_err *e)
{
    int P = qd_dist_size(), me = qd_dist_rank();
    if (op != 's' && op != 'M' && op != 'm' && op != 'p')
        return qd_fail(e, QD_EARG, "unknown reduction '%c'", op);
    if (P == 1 || n == 0)
        return QD_OK;
    if (n > ((size_t)-1) / sizeof(double) / (size_t)P)
        return qd_fail(e, QD_ENOMEM, "reduction of %zu numbers too large", n);
    void *all = NULL;
    size_t *lens = malloc((size_t)P * sizeof *lens);
    if (!lens)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a reduction");
    qd_status st = qd_dist_gather(x, n * sizeof(double), 0, &all, lens, e);
    if (st == QD_OK && me == 0) {
        const double *v = all;
        for (size_t i = 0; i < n; i++) {
            double acc = v[i];
            for (int r = 1; r < P; r++) {
                double y = v[(size_t)r * n + i];
                acc = op == 's' ? acc + y : op == 'p' ? acc * y
                    : op == 'M' ? (y > acc || y != y ? y : acc) : (y < acc || y != y ? y : acc);
            }
            x[i] = acc;
        }
    }
    free(all);
    free(lens);
    if (st == QD_OK)
        st = qd_dist_bcast(x, n * sizeof(double), 0, e);
    return st;
}
