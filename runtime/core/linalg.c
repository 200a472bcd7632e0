/* linalg.c — the only file that talks to BLAS/LAPACK (OpenBLAS, which carries LAPACK).
 * Column-major throughout, as LAPACK expects. LAPACK is called through its Fortran
 * symbols (zheev_, zgesvd_, ...) declared below, so no LAPACKE dependency is needed. */
#include "qd.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

extern void zheev_(const char *jobz, const char *uplo, const int *n, qd_c *a, const int *lda,
                   double *w, qd_c *work, const int *lwork, double *rwork, int *info);
extern void zgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, qd_c *a,
                    const int *lda, double *s, qd_c *u, const int *ldu, qd_c *vt,
                    const int *ldvt, qd_c *work, const int *lwork, double *rwork, int *info);
extern void zgeqrf_(const int *m, const int *n, qd_c *a, const int *lda, qd_c *tau,
                    qd_c *work, const int *lwork, int *info);
extern void zungqr_(const int *m, const int *n, const int *k, qd_c *a, const int *lda,
                    const qd_c *tau, qd_c *work, const int *lwork, int *info);
extern void openblas_set_num_threads(int);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);

static CBLAS_TRANSPOSE op_of(char c)
{
    return c == 'T' ? CblasTrans : c == 'C' ? CblasConjTrans : CblasNoTrans;
}

/* OpenBLAS always runs single-threaded inside qd; qd parallelises a large product itself
 * over FIXED blocks of C (their size depends only on the shape, never on the thread
 * count), each block one single-threaded zgemm. OpenBLAS's own threading splits the
 * work by the thread count, and its edge kernels then round differently, so results
 * changed (at 1e-17) between --threads 1 and 2; this way every element of C is computed
 * by the same code path whatever the thread count. */
__attribute__((constructor)) static void la_single_threaded(void)
{
    openblas_set_num_threads(1);
}

/* OpenBLAS's OpenMP build takes its thread count from omp_get_max_threads() at every call
 * made outside a parallel region (it re-syncs to OpenMP's setting, which qd --threads N
 * sets for its own loops), and a product above its threading threshold then rounds
 * differently (seen: a 35 x 500 x 6 product, 1e-17 apart between --threads 1 and 2). Every
 * BLAS/LAPACK call outside a region is therefore bracketed: OpenMP's count is 1 while
 * OpenBLAS runs, and restored after. Inside a region OpenBLAS uses one thread anyway. */
static int la_serial_begin(void)
{
#ifdef _OPENMP
    if (!omp_in_parallel()) {
        int t = omp_get_max_threads();
        if (t != 1)
            omp_set_num_threads(1);
        return t;
    }
#endif
    return 1;
}

static void la_serial_end(int t)
{
#ifdef _OPENMP
    if (t != 1)
        omp_set_num_threads(t);
#else
    (void)t;
#endif
}

#define ZGEMM_NB 64      /* columns of C per block */
#define ZGEMM_MB 256     /* rows of C per block, when C has few columns */

static void zgemm1(char opa, char opb, size_t m, size_t n, size_t k, qd_c alpha,
                   const qd_c *A, size_t lda, const qd_c *B, size_t ldb, qd_c beta,
                   qd_c *C, size_t ldc)
{
    int t = la_serial_begin();
    cblas_zgemm(CblasColMajor, op_of(opa), op_of(opb), (blasint)m, (blasint)n, (blasint)k,
                &alpha, A, (blasint)lda, B, (blasint)ldb, &beta, C, (blasint)ldc);
    la_serial_end(t);
}

void qd_la_zgemm(char opa, char opb, size_t m, size_t n, size_t k, qd_c alpha,
                 const qd_c *A, size_t lda, const qd_c *B, size_t ldb, qd_c beta,
                 qd_c *C, size_t ldc)
{
    double work = (double)m * (double)n * (double)k;
    if (work < 262144.0 || (n < 2 * ZGEMM_NB && m < 2 * ZGEMM_MB)) {
        zgemm1(opa, opb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (n >= 2 * ZGEMM_NB) {
        /* column block j of C needs column block j of op(B): columns of B for 'N',
         * rows of B (a pointer offset of j rows) for 'T'/'C' */
        long nb = (long)((n + ZGEMM_NB - 1) / ZGEMM_NB);
#pragma omp parallel for schedule(dynamic, 1)
        for (long j = 0; j < nb; j++) {
            size_t c0 = (size_t)j * ZGEMM_NB, w = n - c0 < ZGEMM_NB ? n - c0 : ZGEMM_NB;
            const qd_c *Bj = opb == 'N' ? B + c0 * ldb : B + c0;
            zgemm1(opa, opb, m, w, k, alpha, A, lda, Bj, ldb, beta, C + c0 * ldc, ldc);
        }
    } else {
        /* row block i of C needs row block i of op(A): rows of A for 'N', columns of A
         * for 'T'/'C' */
        long mb = (long)((m + ZGEMM_MB - 1) / ZGEMM_MB);
#pragma omp parallel for schedule(dynamic, 1)
        for (long i = 0; i < mb; i++) {
            size_t r0 = (size_t)i * ZGEMM_MB, h = m - r0 < ZGEMM_MB ? m - r0 : ZGEMM_MB;
            const qd_c *Ai = opa == 'N' ? A + r0 : A + r0 * lda;
            zgemm1(opa, opb, h, n, k, alpha, Ai, lda, B, ldb, beta, C + r0, ldc);
        }
    }
}

/* The real product, for qd.nn's dense layers: the same fixed blocks as qd_la_zgemm (columns
 * of C, or rows when C has few columns), so every element comes out of the same
 * single-threaded dgemm whatever the thread count. */
static void dgemm1(char opa, char opb, size_t m, size_t n, size_t k, double alpha, const double *A,
                   size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc)
{
    int t = la_serial_begin();
    cblas_dgemm(CblasColMajor, op_of(opa), op_of(opb), (blasint)m, (blasint)n, (blasint)k,
                alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
    la_serial_end(t);
}

#define DGEMM_NB 128
#define DGEMM_MB 512

void qd_la_dgemm(char opa, char opb, size_t m, size_t n, size_t k, double alpha,
                 const double *A, size_t lda, const double *B, size_t ldb, double beta,
                 double *C, size_t ldc)
{
    double work = (double)m * (double)n * (double)k;
    if (work < 4194304.0 || (n < 2 * DGEMM_NB && m < 2 * DGEMM_MB)) {
        dgemm1(opa, opb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (n >= 2 * DGEMM_NB) {
        long nb = (long)((n + DGEMM_NB - 1) / DGEMM_NB);
#pragma omp parallel for schedule(dynamic, 1)
        for (long j = 0; j < nb; j++) {
            size_t c0 = (size_t)j * DGEMM_NB, w = n - c0 < DGEMM_NB ? n - c0 : DGEMM_NB;
            const double *Bj = opb == 'N' ? B + c0 * ldb : B + c0;
            dgemm1(opa, opb, m, w, k, alpha, A, lda, Bj, ldb, beta, C + c0 * ldc, ldc);
        }
    } else {
        long mb = (long)((m + DGEMM_MB - 1) / DGEMM_MB);
#pragma omp parallel for schedule(dynamic, 1)
        for (long i = 0; i < mb; i++) {
            size_t r0 = (size_t)i * DGEMM_MB, h = m - r0 < DGEMM_MB ? m - r0 : DGEMM_MB;
            const double *Ai = opa == 'N' ? A + r0 : A + r0 * lda;
            dgemm1(opa, opb, h, n, k, alpha, Ai, lda, B, ldb, beta, C + r0, ldc);
        }
    }
}

/* LAPACK takes int sizes: refuse anything that does not fit. */
static int fits_int(size_t d)
{
    return d <= 46340;   /* d*d must fit in int for lwork and lda*d arithmetic */
}

qd_status qd_la_eigh(qd_c *A, size_t d, double *w, int vecs, qd_err *e)
{
    if (!fits_int(d))
        return qd_fail(e, QD_EARG, "matrix too large for LAPACK (%zu x %zu)", d, d);
    int n = (int)d, info = 0, lwork = -1;
    qd_c wq;
    double *rwork = qd_malloc(sizeof(double) * (3 * d > 1 ? 3 * d : 1));
    if (!rwork)
        return qd_fail(e, QD_ENOMEM, "not enough memory for an eigen-decomposition");
    const char *jobz = vecs ? "V" : "N";
    zheev_(jobz, "L", &n, A, &n, w, &wq, &lwork, rwork, &info);
    lwork = (int)creal(wq);
    if (lwork < 1)
        lwork = 1;
    qd_c *work = qd_malloc(sizeof(qd_c) * (size_t)lwork);
    if (!work) {
        qd_free(rwork);
        return qd_fail(e, QD_ENOMEM, "not enough memory for an eigen-decomposition");
    }
    int t = la_serial_begin();
    zheev_(jobz, "L", &n, A, &n, w, work, &lwork, rwork, &info);
    la_serial_end(t);
    qd_free(work);
    qd_free(rwork);
    if (info != 0)
        return qd_fail(e, QD_ENUMERIC, "eigen-decomposition failed (zheev info %d)", info);
    return QD_OK;
}

qd_status qd_la_svdvals(qd_c *A, size_t m, size_t n, double *s, qd_err *e)
{
    if (!fits_int(m) || !fits_int(n))
        return qd_fail(e, QD_EARG, "matrix too large for LAPACK (%zu x %zu)", m, n);
    int im = (int)m, in = (int)n, info = 0, lwork = -1, one = 1;
    size_t mn = m < n ? m : n;
    qd_c wq, dummy;
    double *rwork = qd_malloc(sizeof(double) * (5 * mn > 1 ? 5 * mn : 1));
    if (!rwork)
        return qd_fail(e, QD_ENOMEM, "not enough memory for an SVD");
    zgesvd_("N", "N", &im, &in, A, &im, s, &dummy, &one, &dummy, &one, &wq, &lwork, rwork, &info);
    lwork = (int)creal(wq);
    if (lwork < 1)
        lwork = 1;
    qd_c *work = qd_malloc(sizeof(qd_c) * (size_t)lwork);
    if (!work) {
        qd_free(rwork);
        return qd_fail(e, QD_ENOMEM, "not enough memory for an SVD");
    }
    int t = la_serial_begin();
    zgesvd_("N", "N", &im, &in, A, &im, s, &dummy, &one, &dummy, &one, work, &lwork, rwork, &info);
    la_serial_end(t);
    qd_free(work);
    qd_free(rwork);
    if (info != 0)
        return qd_fail(e, QD_ENUMERIC, "SVD failed (zgesvd info %d)", info);
    return QD_OK;
}

qd_status qd_la_qr(qd_c *A, size_t m, size_t n, qd_c *rdiag, qd_err *e)
{
    if (!fits_int(m) || !fits_int(n) || m < n)
        return qd_fail(e, QD_EARG, "bad shape for QR (%zu x %zu)", m, n);
    int im = (int)m, in = (int)n, info = 0, lwork = -1;
    qd_c wq;
    qd_c *tau = qd_malloc(sizeof(qd_c) * (n ? n : 1));
    if (!tau)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a QR decomposition");
    zgeqrf_(&im, &in, A, &im, tau, &wq, &lwork, &info);
    lwork = (int)creal(wq);
    if (lwork < (int)n)
        lwork = (int)n > 0 ? (int)n : 1;
    qd_c *work = qd_malloc(sizeof(qd_c) * (size_t)lwork);
    if (!work) {
        qd_free(tau);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a QR decomposition");
    }
    int t = la_serial_begin();
    zgeqrf_(&im, &in, A, &im, tau, work, &lwork, &info);
    if (info == 0) {
        for (size_t j = 0; j < n; j++)
            rdiag[j] = A[j + j * m];
        zungqr_(&im, &in, &in, A, &im, tau, work, &lwork, &info);
    }
    la_serial_end(t);
    qd_free(work);
    qd_free(tau);
    if (info != 0)
        return qd_fail(e, QD_ENUMERIC, "QR decomposition failed (info %d)", info);
    return QD_OK;
}

qd_status qd_la_sqrtm_psd(const qd_c *A, size_t d, qd_c *out, qd_err *e)
{
    size_t dd;
    if (qd_mul_overflow(d, d, &dd))
        return qd_fail(e, QD_EARG, "matrix too large");
    qd_c *V = qd_malloc(sizeof(qd_c) * dd), *W = qd_malloc(sizeof(qd_c) * dd);
    double *w = qd_malloc(sizeof(double) * d);
    qd_status s = QD_OK;
    if (!V || !W || !w) {
        s = qd_fail(e, QD_ENOMEM, "not enough memory for a matrix square root");
        goto done;
    }
    memcpy(V, A, sizeof(qd_c) * dd);
    s = qd_la_eigh(V, d, w, 1, e);
    if (s != QD_OK)
        goto done;
    /* out = V diag(sqrt(w')) V^H, w' = w with eigenvalues below d*eps*max|w| set to 0:
     * those are rounding of a zero eigenvalue (A is PSD by contract), and their square
     * roots (~1e-8) would otherwise pollute everything computed from the result */
    double wmax = 0;
    for (size_t j = 0; j < d; j++)
        wmax = fabs(w[j]) > wmax ? fabs(w[j]) : wmax;
    double floor_ = (double)d * 2.220446049250313e-16 * wmax;
    for (size_t j = 0; j < d; j++) {
        double r = w[j] > floor_ ? sqrt(w[j]) : 0.0;
        for (size_t i = 0; i < d; i++)
            W[i + j * d] = V[i + j * d] * r;
    }
    qd_la_zgemm('N', 'C', d, d, d, 1.0, W, d, V, d, 0.0, out, d);
done:
    qd_free(V);
    qd_free(W);
    qd_free(w);
    return s;
}

void qd_la_set_threads(int n)
{
    (void)n;   /* see la_single_threaded: OpenBLAS stays at one thread */
    openblas_set_num_threads(1);
}

const char *qd_la_info(void)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s (core: %s)", openblas_get_config(), openblas_get_corename());
    return buf;
}

/* ------------------------------------------------------------------ zherk (Hermitian rank-k)
 * The upper triangle of C = alpha op(A) op(A)^H + beta C, C n x n, with op(A) = A^H (trans 'C',
 * A is k x n: C = alpha A^H A, the Gram matrix of A's columns) or A (trans 'N', A is n x k).
 * The strictly lower triangle of C is not touched. About half the work of the zgemm
 * op(A) op(A)^H. Same deterministic scheme as qd_la_zgemm: OpenBLAS runs single-threaded
 * and a large C is split into FIXED column blocks of ZHERK_NB (their size depends only on
 * n, never on the thread count); block j is the rectangle above its diagonal block (one
 * zgemm) plus the diagonal block (one zherk), and blocks are spread over the threads.
 * Every element of C is computed by the same code path whatever the thread count.
 * (n = 100, k = 256: two blocks, 2% slower than one zherk on 1 thread, 1.7x faster on 2.) */
#define ZHERK_NB 64

void qd_la_zherk(char trans, size_t n, size_t k, double alpha, const qd_c *A, size_t lda,
                 double beta, qd_c *C, size_t ldc)
{
    const int tc = trans == 'C';
    double work = 0.5 * (double)n * (double)n * (double)k;
    if (work < 262144.0 || n <= ZHERK_NB) {
        int t = la_serial_begin();
        cblas_zherk(CblasColMajor, CblasUpper, tc ? CblasConjTrans : CblasNoTrans, (blasint)n,
                    (blasint)k, alpha, A, (blasint)lda, beta, C, (blasint)ldc);
        la_serial_end(t);
        return;
    }
    long nb = (long)((n + ZHERK_NB - 1) / ZHERK_NB);
    const qd_c za = alpha, zb = beta;
#pragma omp parallel for schedule(dynamic, 1)
    for (long jb = nb - 1; jb >= 0; jb--) {   /* the widest rectangles first */
        size_t c0 = (size_t)jb * ZHERK_NB, w = n - c0 < ZHERK_NB ? n - c0 : ZHERK_NB;
        /* op(A) column c0.. is column c0 of A ('C') or row c0 of A ('N') */
        const qd_c *Aj = tc ? A + c0 * lda : A + c0;
        if (c0 > 0)
            zgemm1(tc ? 'C' : 'N', tc ? 'N' : 'C', c0, w, k, za, A, lda, Aj, lda, zb,
                   C + c0 * ldc, ldc);
        cblas_zherk(CblasColMajor, CblasUpper, tc ? CblasConjTrans : CblasNoTrans, (blasint)w,
                    (blasint)k, alpha, Aj, (blasint)lda, beta, C + c0 + c0 * ldc, (blasint)ldc);
    }
}

/* ---------------------------------------------------------------- isometry channels */

/* K_j[a, i] = W_i[a 2^m + j]: the Kraus block j (do x di) of the isometry W (di columns of
 * do 2^m amplitudes) */
static void kraus_block(const qd_c *W, size_t di, size_t dout, size_t M, size_t j, qd_c *K)
{
    for (size_t i = 0; i < di; i++)
        for (size_t a = 0; a < dout; a++)
            K[a + i * dout] = W[i * dout * M + a * M + j];
}

/* C = alpha op(A) op(B) + beta C for the channels' products. Small ones (at most ISO_SMALL
 * multiply-adds) in plain loops: OpenBLAS spends ~1 us per call in set-up, more than a 4 x 4
 * product takes, and QGDM's small steps make dozens of them. Each entry is one sum over l in
 * order (deterministic; this file is compiled once, without FMA). From 16 x 16 x 16 on
 * OpenBLAS is faster (QGDM at n = 4: the loops took 19% of the step). */
#define ISO_SMALL 512
static void iso_zgemm(char opa, char opb, size_t m, size_t n, size_t k, double alpha,
                      const qd_c *A, size_t lda, const qd_c *B, size_t ldb, double beta,
                      qd_c *C, size_t ldc)
{
    if (m * n * k > ISO_SMALL) {
        qd_la_zgemm(opa, opb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const double *a = (const double *)A, *b = (const double *)B;
    const double sa = opa == 'C' ? -1.0 : 1.0, sb = opb == 'C' ? -1.0 : 1.0;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < m; i++) {
            double re = 0, im = 0;
            for (size_t l = 0; l < k; l++) {
                size_t ia = opa == 'N' ? i + l * lda : l + i * lda;   /* op(A)[i, l] */
                size_t ib = opb == 'N' ? l + j * ldb : j + l * ldb;   /* op(B)[l, j] */
                double ar = a[2 * ia], ai = sa * a[2 * ia + 1], br = b[2 * ib], bi = sb * b[2 * ib + 1];
                double nai = -ai;
                re += ar * br + nai * bi;
                im += ar * bi + ai * br;
            }
            double *c = (double *)(C + i + j * ldc);
            double cr = beta == 0 ? 0 : beta * c[0], ci = beta == 0 ? 0 : beta * c[1];
            c[0] = cr + alpha * re;
            c[1] = ci + alpha * im;
        }
}

qd_status qd_isometry_channel(const qd_c *W, int nin, int nout, int m, const qd_c *rho, qd_c *out, qd_err *e)
{
    size_t di = (size_t)1 << nin, dout = (size_t)1 << nout, M = (size_t)1 << m;
    qd_c *K = qd_malloc(sizeof(qd_c) * dout * di), *T = qd_malloc(sizeof(qd_c) * dout * di);
    if (!K || !T) {
        qd_free(K);
        qd_free(T);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the Kraus blocks (%d -> %d qubits)", nin, nout);
    }
    for (size_t i = 0; i < dout * dout; i++)
        out[i] = 0;
    for (size_t j = 0; j < M; j++) {
        kraus_block(W, di, dout, M, j, K);
        iso_zgemm('N', 'N', dout, di, di, 1.0, K, dout, rho, di, 0.0, T, dout);     /* T = K rho */
        iso_zgemm('N', 'C', dout, dout, di, 1.0, T, dout, K, dout, 1.0, out, dout); /* out += T K^H */
    }
    qd_free(K);
    qd_free(T);
    return QD_OK;
}

qd_status qd_isometry_channel_vjp(const qd_c *W, int nin, int nout, int m, const qd_c *rho, const qd_c *G,
                                  qd_c *gW, qd_c *grho, qd_err *e)
{
    size_t di = (size_t)1 << nin, dout = (size_t)1 << nout, M = (size_t)1 << m;
    qd_c *K = qd_malloc(sizeof(qd_c) * dout * di), *T = qd_malloc(sizeof(qd_c) * dout * di);
    qd_c *U = qd_malloc(sizeof(qd_c) * dout * di);
    if (!K || !T || !U) {
        qd_free(K);
        qd_free(T);
        qd_free(U);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the Kraus blocks (%d -> %d qubits)", nin, nout);
    }
    if (grho)
        for (size_t i = 0; i < di * di; i++)
            grho[i] = 0;
    for (size_t j = 0; j < M; j++) {
        kraus_block(W, di, dout, M, j, K);
        iso_zgemm('N', 'N', dout, di, dout, 1.0, G, dout, K, dout, 0.0, T, dout);   /* T = G K */
        if (gW) {
            iso_zgemm('N', 'N', dout, di, di, 2.0, T, dout, rho, di, 0.0, U, dout);   /* U = 2 G K rho */
            for (size_t i = 0; i < di; i++)
                for (size_t a = 0; a < dout; a++)
                    gW[i * dout * M + a * M + j] = U[a + i * dout];
        }
        if (grho)   /* grho += K^H G K */
            iso_zgemm('C', 'N', di, di, dout, 1.0, K, dout, T, dout, 1.0, grho, di);
    }
    qd_free(K);
    qd_free(T);
    qd_free(U);
    return QD_OK;
}

/* ------------------------------------------ isometry channels on Hermitian inputs (QGDM)
 * The same maps as qd_isometry_channel(_vjp), with the structure a density matrix and the
 * gradient of a real loss have: rho positive definite, G Hermitian, and every output
 * Hermitian. RE-QGDM at n = 8 spends most of its step in these products (256 / 512-wide
 * Kraus blocks); the structure halves the forward pass and a third of the vjp:
 *   forward  out = sum_j (K_j L)(K_j L)^H with rho = L L^H (Cholesky): the products K_j L
 *            with a triangular L (half a product each) and zherks (the upper triangle of
 *            the Gram product: half) instead of K_j rho and (K_j rho) K_j^H;
 *   vjp      grho = sum_j K_j^H (G K_j) is Hermitian: its upper triangle only.
 * The lower triangle of a Hermitian output is the mirror of the upper, its diagonal real,
 * so the outputs are exactly Hermitian (and the next step's input takes this path again).
 * An input that is not exactly Hermitian (rho, or G for the vjp), a rho that is not
 * positive definite (zpotrf fails: rank-deficient, a pure state), or a small channel
 * (below ISO_HERM_MIN, where the plain loops win) takes the general code above, which
 * stays the reference (tests/lua/test_qgdm.lua checks both paths against naive ones).
 * Blocks of C are fixed (ISO_HERM_NB columns) and each is one single-threaded BLAS call,
 * so results do not depend on the thread count (as qd_la_zgemm). */
extern void zpotrf_(const char *uplo, const int *n, qd_c *a, const int *lda, int *info);

#define ISO_HERM_NB 64
#define ISO_HERM_MIN 32   /* di and dout at least this: smaller channels take the general code */

/* Both passes below pair A[i, j] with A[j, i]; they walk 32 x 32 tiles (a tile and its
 * mirror: 32 cache lines each), not whole columns against whole rows (at d = 512 a row is
 * 512 strides of 8 KiB: the naive loops cost ~10 ms a call in TLB and cache misses). */
#define HERM_TILE 32

/* A (d x d) exactly Hermitian: A[i, j] == conj(A[j, i]) bit for bit, a real diagonal */
static int exactly_hermitian(const qd_c *A, size_t d)
{
    for (size_t j0 = 0; j0 < d; j0 += HERM_TILE)
        for (size_t i0 = j0; i0 < d; i0 += HERM_TILE) {   /* tile rows i0.., columns j0.. (lower) */
            size_t i1 = i0 + HERM_TILE < d ? i0 + HERM_TILE : d, j1 = j0 + HERM_TILE < d ? j0 + HERM_TILE : d;
            for (size_t j = j0; j < j1; j++)
                for (size_t i = i0 > j ? i0 : j; i < i1; i++) {
                    qd_c l = A[i + j * d], u = A[j + i * d];
                    if (creal(u) != creal(l) || cimag(u) != -cimag(l))
                        return 0;   /* on the diagonal: cimag != -cimag unless 0 */
                }
        }
    return 1;
}

/* the lower triangle of C (n x n) from its upper one: C[i, j] = conj(C[j, i]); real diagonal */
static void herm_mirror(qd_c *C, size_t n)
{
    for (size_t j0 = 0; j0 < n; j0 += HERM_TILE)
        for (size_t i0 = j0; i0 < n; i0 += HERM_TILE) {
            size_t i1 = i0 + HERM_TILE < n ? i0 + HERM_TILE : n, j1 = j0 + HERM_TILE < n ? j0 + HERM_TILE : n;
            for (size_t j = j0; j < j1; j++)
                for (size_t i = i0 > j ? i0 : j; i < i1; i++)
                    C[i + j * n] = i == j ? creal(C[j + j * n]) : conj(C[j + i * n]);
        }
}

/* A (m x n) <- A L in place, L (n x n) lower triangular: ztrmm (half a product's work) on
 * fixed blocks of ISO_HERM_MB rows. (zgemm calls on column blocks of L's lower part do the
 * same work but were 2x slower per flop at 512 x 64: each repacks all of A.) */
#define ISO_HERM_MB 256
static void trmm_right_lower(size_t m, size_t n, qd_c *A, const qd_c *Lt)
{
    long nb = (long)((m + ISO_HERM_MB - 1) / ISO_HERM_MB);
    const qd_c one = 1.0;
#pragma omp parallel for schedule(dynamic, 1)
    for (long ib = 0; ib < nb; ib++) {
        size_t r0 = (size_t)ib * ISO_HERM_MB, h = m - r0 < ISO_HERM_MB ? m - r0 : ISO_HERM_MB;
        int t = la_serial_begin();
        cblas_ztrmm(CblasColMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (blasint)h, (blasint)n,
                    &one, Lt, (blasint)n, A + r0, (blasint)m);
        la_serial_end(t);
    }
}

/* the upper triangle of C (n x n) = A^H B + beta C, A and B k x n (leading dimension k):
 * column block c of C is rows 0 .. c + w of A^H B's columns c .. c + w (~60% of the full
 * product's time at n = k = 512) */
static void zgemm_upper_ch(size_t n, size_t k, const qd_c *A, const qd_c *B, double beta, qd_c *C)
{
    long nb = (long)((n + ISO_HERM_NB - 1) / ISO_HERM_NB);
#pragma omp parallel for schedule(dynamic, 1)
    for (long jb = nb - 1; jb >= 0; jb--) {   /* the tallest blocks first */
        size_t c0 = (size_t)jb * ISO_HERM_NB, w = n - c0 < ISO_HERM_NB ? n - c0 : ISO_HERM_NB;
        zgemm1('C', 'N', c0 + w, w, k, 1.0, A, k, B + c0 * k, k, beta, C + c0 * n, n);
    }
}

/* rho = L L^H into Lt (lower; strict upper triangle zeroed): 1, or 0 if rho is not
 * positive definite to zpotrf */
static int cholesky_lower(const qd_c *rho, size_t d, qd_c *Lt)
{
    memcpy(Lt, rho, sizeof(qd_c) * d * d);
    int n = (int)d, info = 0;
    int t = la_serial_begin();
    zpotrf_("L", &n, Lt, &n, &info);
    la_serial_end(t);
    if (info != 0)
        return 0;
    for (size_t j = 1; j < d; j++)
        for (size_t i = 0; i < j; i++)
            Lt[i + j * d] = 0;
    return 1;
}

qd_status qd_isometry_channel_h(const qd_c *W, int nin, int nout, int m, const qd_c *rho, qd_c *out, qd_err *e)
{
    size_t di = (size_t)1 << nin, dout = (size_t)1 << nout, M = (size_t)1 << m;
    if (di < ISO_HERM_MIN || dout < ISO_HERM_MIN || !fits_int(di) || !exactly_hermitian(rho, di))
        return qd_isometry_channel(W, nin, nout, m, rho, out, e);
    qd_c *Lt = qd_malloc(sizeof(qd_c) * di * di), *C = qd_malloc(sizeof(qd_c) * dout * di);
    qd_status st = QD_OK;
    if (!Lt || !C) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the Kraus blocks (%d -> %d qubits)", nin, nout);
    } else if (!cholesky_lower(rho, di, Lt)) {
        st = qd_isometry_channel(W, nin, nout, m, rho, out, e);   /* not positive definite */
    } else {
        for (size_t j = 0; j < M; j++) {   /* out += C C^H, C = K_j L (upper triangle) */
            kraus_block(W, di, dout, M, j, C);
            trmm_right_lower(dout, di, C, Lt);
            qd_la_zherk('N', dout, di, 1.0, C, dout, j ? 1.0 : 0.0, out, dout);
        }
        herm_mirror(out, dout);
    }
    qd_free(Lt);
    qd_free(C);
    return st;
}

qd_status qd_isometry_channel_vjp_h(const qd_c *W, int nin, int nout, int m, const qd_c *rho, const qd_c *G,
                                    qd_c *gW, qd_c *grho, qd_err *e)
{
    size_t di = (size_t)1 << nin, dout = (size_t)1 << nout, M = (size_t)1 << m;
    if (!grho || di < ISO_HERM_MIN || dout < ISO_HERM_MIN || !exactly_hermitian(G, dout))
        return qd_isometry_channel_vjp(W, nin, nout, m, rho, G, gW, grho, e);
    qd_c *K = qd_malloc(sizeof(qd_c) * dout * di), *T = qd_malloc(sizeof(qd_c) * dout * di);
    qd_c *U = gW ? qd_malloc(sizeof(qd_c) * dout * di) : NULL;
    if (!K || !T || (gW && !U)) {
        qd_free(K);
        qd_free(T);
        qd_free(U);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the Kraus blocks (%d -> %d qubits)", nin, nout);
    }
    for (size_t j = 0; j < M; j++) {
        kraus_block(W, di, dout, M, j, K);
        qd_la_zgemm('N', 'N', dout, di, dout, 1.0, G, dout, K, dout, 0.0, T, dout);   /* T = G K_j */
        if (gW) {
            qd_la_zgemm('N', 'N', dout, di, di, 2.0, T, dout, rho, di, 0.0, U, dout);   /* U = 2 G K_j rho */
            for (size_t i = 0; i < di; i++)
                for (size_t a = 0; a < dout; a++)
                    gW[i * dout * M + a * M + j] = U[a + i * dout];
        }
        zgemm_upper_ch(di, dout, K, T, j ? 1.0 : 0.0, grho);   /* grho += K_j^H T_j (upper) */
    }
    herm_mirror(grho, di);
    qd_free(K);
    qd_free(T);
    qd_free(U);
    return QD_OK;
}

/* ------------------------------------------------ Hermitian eigensolver, divide and conquer
 * qd_la_eigh's contract with LAPACK's zheevd instead of zheev: the same decomposition to
 * rounding, 3-5x faster with eigenvectors at d = 256 ... 512 (the QGDM losses' sizes),
 * for more workspace. */
extern void zheevd_(const char *jobz, const char *uplo, const int *n, qd_c *a, const int *lda, double *w,
                    qd_c *work, const int *lwork, double *rwork, const int *lrwork, int *iwork,
                    const int *liwork, int *info);

qd_status qd_la_eigh_dc(qd_c *A, size_t d, double *w, int vecs, qd_err *e)
{
    if (!fits_int(d))
        return qd_fail(e, QD_EARG, "matrix too large for LAPACK (%zu x %zu)", d, d);
    int n = (int)d, info = 0, lwork = -1, lrwork = -1, liwork = -1, iq = 0;
    qd_c wq;
    double rq;
    const char *jobz = vecs ? "V" : "N";
    zheevd_(jobz, "L", &n, A, &n, w, &wq, &lwork, &rq, &lrwork, &iq, &liwork, &info);
    lwork = (int)creal(wq) > 1 ? (int)creal(wq) : 1;
    lrwork = (int)rq > 1 ? (int)rq : 1;
    liwork = iq > 1 ? iq : 1;
    qd_c *work = qd_malloc(sizeof(qd_c) * (size_t)lwork);
    double *rwork = qd_malloc(sizeof(double) * (size_t)lrwork);
    int *iwork = qd_malloc(sizeof(int) * (size_t)liwork);
    if (!work || !rwork || !iwork) {
        qd_free(work);
        qd_free(rwork);
        qd_free(iwork);
        return qd_fail(e, QD_ENOMEM, "not enough memory for an eigen-decomposition");
    }
    int t = la_serial_begin();
    zheevd_(jobz, "L", &n, A, &n, w, work, &lwork, rwork, &lrwork, iwork, &liwork, &info);
    la_serial_end(t);
    qd_free(work);
    qd_free(rwork);
    qd_free(iwork);
    if (info != 0)
        return qd_fail(e, QD_ENUMERIC, "eigen-decomposition failed (zheevd info %d)", info);
    return QD_OK;
}
