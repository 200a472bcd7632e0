/* dist.c — the MPI calls qd makes (qd_dist.h), and their one-process forms when qd is built
 * without MPI. The only file that includes mpi.h (the interpreter calls qd_dist_init and
 * qd_dist_finalize). Collectives and the library's messages are on a duplicate of
 * MPI_COMM_WORLD (the script's own qd.mpi.send/recv use WORLD itself); errors return
 * (MPI_ERRORS_RETURN) as QD_EIO with MPI's text. */
#include "qd_dist.h"
#include "qd_isa.h"
#include "qd_loss.h"
#include "qd_circuit.h"
#include <math.h>
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

/* the library's own point-to-point messages (the MMD pipeline) on the duplicate
 * communicator, in pieces of at most CHUNK bytes */
static qd_status lib_send(const void *buf, size_t bytes, int dest, int tag, qd_err *e)
{
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t m = bytes - off < CHUNK ? bytes - off : CHUNK;
        CHECK(MPI_Send((const char *)buf + off, (int)m, MPI_BYTE, dest, tag, g_lib), "MPI_Send");
    }
    return QD_OK;
}

static qd_status lib_recv(void *buf, size_t bytes, int src, int tag, qd_err *e)
{
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t m = bytes - off < CHUNK ? bytes - off : CHUNK;
        CHECK(MPI_Recv((char *)buf + off, (int)m, MPI_BYTE, src, tag, g_lib, MPI_STATUS_IGNORE),
              "MPI_Recv");
    }
    return QD_OK;
}

qd_status qd_dist_sendrecv2(const void *sbuf, size_t sbytes, int dest, void *rbuf,
                            size_t rbytes, int src, qd_err *e)
{
    if (!g_up) {
        memcpy(rbuf, sbuf, sbytes < rbytes ? sbytes : rbytes);
        return QD_OK;
    }
    /* piece k goes out if k < ceil(sbytes / CHUNK) and comes in if k < ceil(rbytes / CHUNK);
     * the side with nothing to do is MPI_PROC_NULL (the partner's sizes mirror ours, so
     * every piece sent has exactly one receive posted for it) */
    size_t most = sbytes > rbytes ? sbytes : rbytes;
    for (size_t off = 0; off < most; off += CHUNK) {
        size_t ms = sbytes > off ? (sbytes - off < CHUNK ? sbytes - off : CHUNK) : 0;
        size_t mr = rbytes > off ? (rbytes - off < CHUNK ? rbytes - off : CHUNK) : 0;
        CHECK(MPI_Sendrecv((const char *)sbuf + (ms ? off : 0), (int)ms, MPI_BYTE,
                           ms ? dest : MPI_PROC_NULL, 0x5252, (char *)rbuf + (mr ? off : 0),
                           (int)mr, MPI_BYTE, mr ? src : MPI_PROC_NULL, 0x5252, g_lib,
                           MPI_STATUS_IGNORE), "MPI_Sendrecv");
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
qd_status qd_dist_sendrecv2(const void *sbuf, size_t sbytes, int dest, void *rbuf,
                            size_t rbytes, int src, qd_err *e)
{
    (void)dest;
    (void)src;
    (void)e;
    memcpy(rbuf, sbuf, sbytes < rbytes ? sbytes : rbytes);   /* this process both ways */
    return QD_OK;
}
/* one process: the pipeline has no neighbour (never called: P == 1) */
static qd_status lib_send(const void *buf, size_t bytes, int dest, int tag, qd_err *e)
{
    (void)buf;
    (void)bytes;
    (void)dest;
    (void)tag;
    return qd_fail(e, QD_EARG, "no other rank to send to (qd runs as one process)");
}
static qd_status lib_recv(void *buf, size_t bytes, int src, int tag, qd_err *e)
{
    (void)buf;
    (void)bytes;
    (void)src;
    (void)tag;
    return qd_fail(e, QD_EARG, "no other rank to receive from (qd runs as one process)");
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

/* ---------------------------------------------------------------- ensembles in blocks
 * Rank r holds a contiguous block of an ensemble's members (qd.mpi.share: rank order is
 * member order). The functions below give every rank the results the one-process call on
 * the whole ensemble gives, bit for bit: each number is computed by the same operations in
 * the same order as there, and nothing is summed across ranks in an order MPI chooses. */

qd_status qd_dist_block_info(int nq, size_t count, qd_dist_blocks *b, qd_err *e)
{
    int P = qd_dist_size(), me = qd_dist_rank();
    unsigned long long mine[2] = {(unsigned long long)(count ? nq : -1),
                                  (unsigned long long)count};
    size_t *lens = malloc((size_t)P * sizeof *lens);
    void *all = NULL;
    memset(b, 0, sizeof *b);
    if (!lens)
        return qd_fail(e, QD_ENOMEM, "not enough memory for the blocks' sizes");
    qd_status st = qd_dist_allgather(mine, sizeof mine, &all, lens, e);
    free(lens);
    if (st != QD_OK)
        return st;
    if (!(b->counts = malloc((size_t)P * sizeof *b->counts))) {
        free(all);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the blocks' sizes");
    }
    const unsigned long long *v = all;
    b->nq = -1;
    for (int r = 0; r < P; r++) {
        b->counts[r] = (size_t)v[2 * r + 1];
        if (r < me)
            b->first += b->counts[r];
        b->total += b->counts[r];
        if (b->counts[r] == 0)
            continue;
        if (b->nq >= 0 && b->nq != (int)v[2 * r])
            st = qd_fail(e, QD_EARG, "blocks of %d and %d qubits: one qubit count on every "
                         "rank expected", b->nq, (int)v[2 * r]);
        b->nq = (int)v[2 * r];
    }
    free(all);
    if (st != QD_OK)
        qd_dist_blocks_free(b);
    return st;
}

void qd_dist_blocks_free(qd_dist_blocks *b)
{
    free(b->counts);
    b->counts = NULL;
}

/* Block-cyclic overlaps. Each rank keeps its rows (its A members); the B blocks travel
 * round the ring rank -> rank + 1 (P - 1 exchanges of one block each, MPI_Sendrecv), and at
 * each step the rows are filled against the visiting block by qd_overlaps. Every entry is
 * one pair's inner product, computed the same way whatever the block (the direct kernel's
 * sums run over the amplitudes in order, whichever lane or tile the pair falls in, and
 * |<a|b>|^2 = |<b|a>|^2 bit for bit, so the mirrored self-overlap agrees): the entries are
 * the one-process qd_overlaps bits when that call takes the direct kernel (d <= 1024 and
 * N M <= 2^22), and equal to rounding when it takes zgemm/zherk (their edge kernels round
 * differently by position). */
qd_status qd_dist_overlaps(const qd_c *A, size_t N, const qd_c *B, const qd_dist_blocks *bb,
                           int nq, double *out, qd_err *e)
{
    int P = qd_dist_size(), me = qd_dist_rank();
    const size_t d = (size_t)1 << nq;
    size_t mmax = 0, bytes;
    for (int r = 0; r < P; r++)
        mmax = bb->counts[r] > mmax ? bb->counts[r] : mmax;
    if (qd_mul_overflow(mmax, d * sizeof(qd_c), &bytes))
        return qd_fail(e, QD_ENOMEM, "overlap blocks too large");
    qd_c *cur = qd_malloc(bytes ? bytes : 1), *nxt = P > 1 ? qd_malloc(bytes ? bytes : 1) : NULL;
    qd_status st = QD_OK;
    if (!cur || (P > 1 && !nxt)) {
        st = qd_fail(e, QD_ENOMEM,
                     "not enough memory for the overlap ring's blocks (2 x %zu bytes)", bytes);
        goto done;
    }
    if (bb->counts[me])
        memcpy(cur, B, bb->counts[me] * d * sizeof(qd_c));
    int owner = me;
    for (int s = 0; s < P && st == QD_OK; s++) {
        size_t Mr = bb->counts[owner], off = 0;
        for (int r = 0; r < owner; r++)
            off += bb->counts[r];
        if (N && Mr)
            st = qd_overlaps(A, N, cur, Mr, nq, out + off * N, e);
        if (s == P - 1)
            break;
        /* pass the block on to rank me + 1, take rank me - 1's (the block of owner - 1) */
        int from = (owner + P - 1) % P;
        qd_status sx = qd_dist_sendrecv2(cur, Mr * d * sizeof(qd_c), (me + 1) % P, nxt,
                                         bb->counts[from] * d * sizeof(qd_c), (me + P - 1) % P, e);
        if (st == QD_OK)
            st = sx;
        qd_c *t = cur;
        cur = nxt;
        nxt = t;
        owner = from;
    }
done:
    qd_free(cur);
    qd_free(nxt);
    return st;
}

/* ---- the fidelity-kernel MMD over blocks
 * The one-process loss (loss.c, qd_loss_mmd_fid) picks the average-state form when
 * d < N + M; for d <= 32 on a CPU with FMA it sums rho = sum_j x_j x_j^dagger with member j
 * in virtual lane j % 8: per lane and entry (r, c >= r) one chain of fused multiply-adds
 * over the lane's members in member order, then the 8 lanes added in order. A chain cannot
 * be cut into per-rank partial sums without changing its bits, so the lane accumulators
 * travel down the ranks in rank order (a pipeline: rank r continues the chains with its
 * members and passes them to r + 1), the last rank broadcasts them, and every rank finishes
 * the sums, D = rhoA/N - rhoB/M and the value exactly as loss.c does. Each member's
 * gradient column (2/N) D a_k depends on D and that member only: each rank computes its
 * own. The arithmetic below is loss.c's outer_lanes / mmd_dm_direct / apply_lanes written
 * per lane with fma() (correctly rounded, as the vector FMA is); tests/mpi/test_losses.lua
 * compares the bits with the one-process call. The other cases (the Gram form, d > 32, no
 * FMA) gather the blocks and run the one-process loss on every rank: the same bits, no
 * sharding. */
#define DIST_MMD_DIRECT_MAXD 32   /* loss.c's MMD_DM_DIRECT_MAXD */
#define DIST_MMD_LANES 8          /* loss.c's virtual lanes */

/* The two loops below run only when qd_isa_fma_hw() (the sharded path's condition): they
 * are compiled for FMA (and the AVX it implies) although dist.c is built for the baseline
 * CPU, so fma() is one instruction rather than a libm call (~10x here). Each fma() is
 * correctly rounded either way — the bits do not change, only the speed. */
#if defined(__x86_64__) && defined(__GNUC__)
#define QD_DIST_FMA __attribute__((target("fma")))
#else
#define QD_DIST_FMA
#endif

/* continue the 8 lane chains of sum_j x_j x_j^dagger with members X[0..n), the first of
 * global index g0. acc: per entry (r, c >= r) of the d x d row-major sum, Re then Im, each
 * as 8 lanes (lane l: the members j with j % 8 == l). Members go 8 at a time, one per lane,
 * in groups aligned to global indices 8q .. 8q + 7 (T: the groups transposed, 2d x 8 each);
 * a lane whose member another rank holds gets zeros, which leave its chain's bits alone
 * (fma(0, 0, a) = a, as loss.c's padding). Entry by entry over all groups, so the lane sums
 * stay in registers. Returns 0 if T cannot be allocated. */
QD_DIST_FMA static int mmd_chains(const qd_c *X, size_t n, size_t g0, size_t d, double *acc)
{
    enum { NL = DIST_MMD_LANES };
    if (n == 0)
        return 1;
    const size_t q0 = g0 / NL, nq = (g0 + n + NL - 1) / NL - q0, bs = 2 * d * NL;
    double *T = qd_malloc(sizeof(double) * bs * nq);
    if (!T)
        return 0;
    for (size_t q = 0; q < nq; q++)
        for (int l = 0; l < NL; l++) {
            size_t g = (q0 + q) * NL + (size_t)l;
            const double *x = g >= g0 && g < g0 + n ? (const double *)(X + (g - g0) * d) : NULL;
            for (size_t r = 0; r < 2 * d; r++)
                T[q * bs + r * NL + (size_t)l] = x ? x[r] : 0;
        }
    for (size_t r = 0; r < d; r++)
        for (size_t c = r; c < d; c++) {
            double *pr = acc + 2 * (r * d + c) * NL, *pi = pr + NL;
            double ar[NL], ai[NL];
            for (int l = 0; l < NL; l++) {
                ar[l] = pr[l];
                ai[l] = pi[l];
            }
            for (size_t q = 0; q < nq; q++) {
                const double *B = T + q * bs;
                const double *xr = B + 2 * r * NL, *xi = xr + NL, *yr = B + 2 * c * NL,
                             *yi = yr + NL;
                for (int l = 0; l < NL; l++) {
                    ar[l] = fma(xi[l], yi[l], fma(xr[l], yr[l], ar[l]));
                    ai[l] = fma(-xr[l], yi[l], fma(xi[l], yr[l], ai[l]));
                }
            }
            for (int l = 0; l < NL; l++) {
                pr[l] = ar[l];
                pi[l] = ai[l];
            }
        }
    qd_free(T);
    return 1;
}

/* the lanes added in order into the full Hermitian S (Sr, Si row-major, zeroed) */
static void mmd_finish(const double *acc, size_t d, double *Sr, double *Si)
{
    for (size_t r = 0; r < d; r++)
        for (size_t c = r; c < d; c++) {
            const double *pr = acc + 2 * (r * d + c) * DIST_MMD_LANES, *pi = pr + DIST_MMD_LANES;
            double sr = 0, si = 0;
            for (int l = 0; l < DIST_MMD_LANES; l++) {
                sr += pr[l];
                si += pi[l];
            }
            Sr[r * d + c] += sr;
            Si[r * d + c] += si;
            if (c != r) {
                Sr[c * d + r] += sr;
                Si[c * d + r] -= si;
            }
        }
}

/* G_j = s D x_j for the members X[0..n), 8 at a time side by side (each member's
 * arithmetic is its own: loss.c's apply_lanes per lane) */
QD_DIST_FMA static void mmd_apply(const double *Dr, const double *Di, double s, const qd_c *X,
                                  size_t n, size_t d, qd_c *G)
{
    double T[2 * DIST_MMD_DIRECT_MAXD * DIST_MMD_LANES];
    for (size_t j0 = 0; j0 < n; j0 += DIST_MMD_LANES) {
        const size_t nl = n - j0 < DIST_MMD_LANES ? n - j0 : DIST_MMD_LANES;
        for (size_t l = 0; l < DIST_MMD_LANES; l++) {
            const double *x = (const double *)(X + (j0 + (l < nl ? l : 0)) * d);
            for (size_t c = 0; c < d; c++) {
                T[2 * c * DIST_MMD_LANES + l] = x[2 * c];
                T[(2 * c + 1) * DIST_MMD_LANES + l] = x[2 * c + 1];
            }
        }
        for (size_t r = 0; r < d; r++) {
            double gr[DIST_MMD_LANES] = {0}, gi[DIST_MMD_LANES] = {0};
            for (size_t c = 0; c < d; c++) {
                const double a = Dr[r * d + c], b = Di[r * d + c];
                const double *xr = T + 2 * c * DIST_MMD_LANES, *xi = xr + DIST_MMD_LANES;
                for (int l = 0; l < DIST_MMD_LANES; l++) {
                    gr[l] = fma(-b, xi[l], fma(a, xr[l], gr[l]));
                    gi[l] = fma(b, xr[l], fma(a, xi[l], gi[l]));
                }
            }
            for (size_t l = 0; l < nl; l++) {
                double *g = (double *)(G + (j0 + l) * d);
                g[2 * r] = s * gr[l];
                g[2 * r + 1] = s * gi[l];
            }
        }
    }
}

static qd_status mmd_sharded(const qd_c *A, const qd_dist_blocks *ba, const qd_c *B,
                             const qd_dist_blocks *bb, size_t d, double *val, qd_c *GA, qd_c *GB,
                             qd_err *e)
{
    int P = qd_dist_size(), me = qd_dist_rank();
    const size_t dd = d * d, nacc = 2 * dd * DIST_MMD_LANES;
    /* acc: A's lanes then B's; w: Ar, Ai, Br, Bi */
    double *acc = qd_calloc(2 * nacc, sizeof(double)), *w = qd_calloc(4 * dd, sizeof(double));
    qd_status st = QD_OK;
    if (!acc || !w) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the MMD's lane sums");
        goto done;
    }
    /* the pipeline: the chains so far from rank me - 1, ours added, on to rank me + 1 */
    if (me > 0 && (st = lib_recv(acc, 2 * nacc * sizeof(double), me - 1, 0x6161, e)) != QD_OK)
        goto done;
    if (!mmd_chains(A, ba->counts[me], ba->first, d, acc) ||
        !mmd_chains(B, bb->counts[me], bb->first, d, acc + nacc)) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the MMD's member blocks");
        goto done;
    }
    if (me < P - 1 && (st = lib_send(acc, 2 * nacc * sizeof(double), me + 1, 0x6161, e)) != QD_OK)
        goto done;
    if ((st = qd_dist_bcast(acc, 2 * nacc * sizeof(double), P - 1, e)) != QD_OK)
        goto done;
    double *Ar = w, *Ai = w + dd, *Br = w + 2 * dd, *Bi = w + 3 * dd;
    mmd_finish(acc, d, Ar, Ai);
    mmd_finish(acc + nacc, d, Br, Bi);
    const double iN = 1.0 / (double)ba->total, iM = 1.0 / (double)bb->total;
    double v = 0;
    for (size_t k = 0; k < dd; k++) {   /* D = rhoA - rhoB into (Ar, Ai), as loss.c */
        Ar[k] = Ar[k] * iN - Br[k] * iM;
        Ai[k] = Ai[k] * iN - Bi[k] * iM;
        v += Ar[k] * Ar[k] + Ai[k] * Ai[k];
    }
    *val = v;
    if (GA)
        mmd_apply(Ar, Ai, 2.0 * iN, A, ba->counts[me], d, GA);
    if (GB)
        mmd_apply(Ar, Ai, -2.0 * iM, B, bb->counts[me], d, GB);
done:
    qd_free(acc);
    qd_free(w);
    return st;
}

/* every rank's block of X, in rank order, into *all (qd_malloc'd) */
static qd_status gather_members(const qd_c *X, const qd_dist_blocks *b, size_t d, qd_c **all,
                                qd_err *e)
{
    int P = qd_dist_size(), me = qd_dist_rank();
    size_t *lens = malloc((size_t)P * sizeof *lens);
    void *got = NULL;
    *all = NULL;
    if (!lens)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a gather");
    qd_status st = qd_dist_allgather(X, b->counts[me] * d * sizeof(qd_c), &got, lens, e);
    free(lens);
    if (st != QD_OK)
        return st;
    if (!(*all = qd_malloc(b->total * d * sizeof(qd_c)))) {
        free(got);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the gathered ensemble");
    }
    memcpy(*all, got, b->total * d * sizeof(qd_c));
    free(got);
    return QD_OK;
}

static qd_status mmd_gathered(const qd_c *A, const qd_dist_blocks *ba, const qd_c *B,
                              const qd_dist_blocks *bb, int nq, int method, double *val,
                              qd_c *GA, qd_c *GB, qd_err *e)
{
    const size_t d = (size_t)1 << nq;
    int me = qd_dist_rank();
    qd_c *Aw = NULL, *Bw = NULL, *GAw = NULL, *GBw = NULL;
    qd_status st = gather_members(A, ba, d, &Aw, e);
    if (st == QD_OK)
        st = gather_members(B, bb, d, &Bw, e);
    if (st == QD_OK && ((GA && !(GAw = qd_malloc(ba->total * d * sizeof(qd_c)))) ||
                        (GB && !(GBw = qd_malloc(bb->total * d * sizeof(qd_c))))))
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the MMD's gradients");
    if (st == QD_OK)
        st = qd_loss_mmd_fid(Aw, ba->total, Bw, bb->total, nq, method, val, GAw, GBw, e);
    if (st == QD_OK && GA)
        memcpy(GA, GAw + ba->first * d, ba->counts[me] * d * sizeof(qd_c));
    if (st == QD_OK && GB)
        memcpy(GB, GBw + bb->first * d, bb->counts[me] * d * sizeof(qd_c));
    qd_free(Aw);
    qd_free(Bw);
    qd_free(GAw);
    qd_free(GBw);
    return st;
}

qd_status qd_dist_mmd_fid(const qd_c *A, const qd_dist_blocks *ba, const qd_c *B,
                          const qd_dist_blocks *bb, int nq, int method, double *val, qd_c *GA,
                          qd_c *GB, int *sharded, qd_err *e)
{
    if (ba->total == 0 || bb->total == 0)
        return qd_fail(e, QD_EARG, "MMD of an empty ensemble");
    const size_t d = (size_t)1 << nq;
    if (method == QD_MMD_AUTO)   /* loss.c's choice, on the whole ensembles' sizes */
        method = (double)d < (double)ba->total + (double)bb->total ? QD_MMD_DM : QD_MMD_GRAM;
    int sh = method == QD_MMD_DM && d <= DIST_MMD_DIRECT_MAXD && qd_isa_fma_hw();
    if (sharded)
        *sharded = sh;
    if (sh)
        return mmd_sharded(A, ba, B, bb, d, val, GA, GB, e);
    return mmd_gathered(A, ba, B, bb, nq, method, val, GA, GB, e);
}

/* The parameter gradient over blocks: each rank has the lane pass's per-member terms of its
 * members (qd_circuit_vjp_vec_tape_terms); they are gathered in rank order (= member order)
 * and every rank adds them exactly as adjoint.c's sweep_back does for the whole ensemble:
 * per term one sum over the members in member order from 0, then grad[slot] += scale * sum
 * in term order, grad zeroed first. The gathered rows are nt doubles per member. */
qd_status qd_dist_grad_terms(const qd_adjoint_terms *t, size_t count, size_t total, int nslots,
                             double *grad, qd_err *e)
{
    int P = qd_dist_size();
    size_t *lens = malloc((size_t)P * sizeof *lens);
    void *all = NULL;
    if (!lens)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a gather");
    /* the term count is the circuit's: the same on every rank (checked) */
    double nt[2] = {(double)t->nt, -(double)t->nt};
    qd_status st = qd_dist_allreduce(nt, 2, 'M', e);
    if (st == QD_OK && (nt[0] != -nt[1]))
        st = qd_fail(e, QD_EARG, "gradient terms differ between ranks (not the same circuit?)");
    if (st == QD_OK)
        st = qd_dist_allgather(t->vals, count * (size_t)t->nt * sizeof(double), &all, lens, e);
    free(lens);
    if (st != QD_OK)
        return st;
    const double *v = all;
    double *acc = qd_calloc((size_t)t->nt + 1, sizeof(double));
    if (!acc) {
        free(all);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the gradient sums");
    }
    for (size_t j = 0; j < total; j++)
        for (int k = 0; k < t->nt; k++)
            acc[k] += v[j * (size_t)t->nt + (size_t)k];
    for (int s = 0; s < nslots; s++)
        grad[s] = 0;
    for (int k = 0; k < t->nt; k++)
        grad[t->slots[k]] += t->scales[k] * acc[k];
    qd_free(acc);
    free(all);
    return QD_OK;
}
