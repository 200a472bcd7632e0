/* test_linalg.c — the BLAS/LAPACK wrappers: zgemm against the naive product, eigh
 * reconstructs A, singular values of known matrices, QR gives a unitary Q and an upper
 * triangular R, sqrtm_psd squares back to A, and the size checks fail cleanly. */
#include "harness.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void random_hermitian(qd_c *A, size_t d, qd_rng *r)
{
    for (size_t c = 0; c < d; c++)
        for (size_t x = 0; x <= c; x++) {
            qd_c v = qd_rng_cnormal(r);
            if (x == c)
                v = creal(v);
            A[x + c * d] = v;
            A[c + x * d] = conj(v);
        }
}

QD_TEST(linalg_zgemm)
{
    qd_rng r;
    qd_rng_init(&r, 81);
    size_t d = 6;
    qd_c A[36], B[36], C[36], ref[36], Ad[36], Bd[36], tmp[36];
    for (int i = 0; i < 36; i++) {
        A[i] = qd_rng_cnormal(&r);
        B[i] = qd_rng_cnormal(&r);
    }
    qd_la_zgemm('N', 'N', d, d, d, 1.0, A, d, B, d, 0.0, C, d);
    ref_matmul(A, B, d, ref);
    CHECK(ref_maxdiff(C, ref, 36) < 1e-13, "A B");
    qd_la_zgemm('C', 'N', d, d, d, 1.0, A, d, B, d, 0.0, C, d);
    ref_dagger(A, d, Ad);
    ref_matmul(Ad, B, d, ref);
    CHECK(ref_maxdiff(C, ref, 36) < 1e-13, "A^H B");
    /* alpha, beta: C = 2i A B^H + 0.5 C0 */
    qd_c C0[36];
    for (int i = 0; i < 36; i++)
        C0[i] = C[i] = qd_rng_cnormal(&r);
    qd_la_zgemm('N', 'C', d, d, d, 2.0 * I, A, d, B, d, 0.5, C, d);
    ref_dagger(B, d, Bd);
    ref_matmul(A, Bd, d, tmp);
    for (int i = 0; i < 36; i++)
        ref[i] = 2.0 * I * tmp[i] + 0.5 * C0[i];
    CHECK(ref_maxdiff(C, ref, 36) < 1e-13, "2i A B^H + C/2");
    /* rectangular: (2 x 3) = (4 x 2)^T (4 x 3) */
    qd_c X[8], Y[12], Z[6];
    for (int i = 0; i < 8; i++)
        X[i] = qd_rng_cnormal(&r);
    for (int i = 0; i < 12; i++)
        Y[i] = qd_rng_cnormal(&r);
    qd_la_zgemm('T', 'N', 2, 3, 4, 1.0, X, 4, Y, 4, 0.0, Z, 2);
    int ok = 1;
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < 2; x++) {
            qd_c s = 0;
            for (int k = 0; k < 4; k++)
                s += X[k + x * 4] * Y[k + c * 4];
            ok &= cabs(Z[x + c * 2] - s) < 1e-13;
        }
    CHECK(ok, "rectangular X^T Y");
}

QD_TEST(linalg_eigh)
{
    qd_rng r;
    qd_rng_init(&r, 82);
    size_t ds[] = {1, 2, 5, 16};
    for (size_t t = 0; t < 4; t++) {
        size_t d = ds[t];
        qd_c *A = malloc(sizeof(qd_c) * d * d), *V = malloc(sizeof(qd_c) * d * d),
             *W = malloc(sizeof(qd_c) * d * d), *B = malloc(sizeof(qd_c) * d * d),
             *Vd = malloc(sizeof(qd_c) * d * d), *VdV = malloc(sizeof(qd_c) * d * d);
        double *w = malloc(sizeof(double) * d), *w2 = malloc(sizeof(double) * d);
        random_hermitian(A, d, &r);
        memcpy(V, A, sizeof(qd_c) * d * d);
        CHECK(qd_la_eigh(V, d, w, 1, NULL) == QD_OK, "eigh ok d=%zu", d);
        int asc = 1;
        for (size_t i = 1; i < d; i++)
            asc &= w[i - 1] <= w[i];
        CHECK(asc, "ascending eigenvalues");
        /* A = V diag(w) V^H and V^H V = I */
        for (size_t c = 0; c < d; c++)
            for (size_t x = 0; x < d; x++)
                W[x + c * d] = V[x + c * d] * w[c];
        ref_dagger(V, d, Vd);
        ref_matmul(W, Vd, d, B);
        CHECK(ref_maxdiff(A, B, d * d) < 1e-12, "V diag(w) V^H = A, d=%zu", d);
        ref_matmul(Vd, V, d, VdV);
        double err = 0;
        for (size_t c = 0; c < d; c++)
            for (size_t x = 0; x < d; x++)
                err = fmax(err, cabs(VdV[x + c * d] - (x == c ? 1.0 : 0.0)));
        CHECK(err < 1e-12, "V unitary");
        /* eigenvalues alone agree */
        memcpy(B, A, sizeof(qd_c) * d * d);
        CHECK(qd_la_eigh(B, d, w2, 0, NULL) == QD_OK, "eigh values only");
        double dw = 0;
        for (size_t i = 0; i < d; i++)
            dw = fmax(dw, fabs(w[i] - w2[i]));
        CHECK(dw < 1e-12, "same eigenvalues without vectors");
        free(A); free(V); free(W); free(B); free(Vd); free(VdV); free(w); free(w2);
    }
    /* known: Pauli Y has eigenvalues -1, 1 */
    qd_c Y[4] = {0, I, -I, 0};
    double w[2];
    CHECK(qd_la_eigh(Y, 2, w, 0, NULL) == QD_OK && fabs(w[0] + 1) < 1e-15 &&
          fabs(w[1] - 1) < 1e-15, "eig(Y) = -1, 1");
}

QD_TEST(linalg_svdvals)
{
    /* diag(2, -3i): singular values 3, 2 (descending) */
    qd_c D[4] = {2, 0, 0, -3 * I};
    double s[3];
    CHECK(qd_la_svdvals(D, 2, 2, s, NULL) == QD_OK, "svd ok");
    CHECK(fabs(s[0] - 3) < 1e-14 && fabs(s[1] - 2) < 1e-14, "diag: %g %g", s[0], s[1]);
    /* rank one u v^H, |u| = 2, |v| = 1.5: singular values 3, 0 (3 x 2) */
    qd_c u[3] = {2.0 / 3, 4.0 / 3 * I, -4.0 / 3}, v[2] = {0.9, 1.2 * I}, R1[6];
    for (int c = 0; c < 2; c++)
        for (int x = 0; x < 3; x++)
            R1[x + c * 3] = u[x] * conj(v[c]);
    CHECK(qd_la_svdvals(R1, 3, 2, s, NULL) == QD_OK, "svd ok");
    CHECK(fabs(s[0] - 3) < 1e-14 && fabs(s[1]) < 1e-14, "rank one: %g %g", s[0], s[1]);
    /* [[3, 0], [4, 5]]: singular values sqrt(45), sqrt(5) (A^T A = [[25, 20], [20, 25]]) */
    qd_c K[4] = {3, 4, 0, 5};
    CHECK(qd_la_svdvals(K, 2, 2, s, NULL) == QD_OK, "svd ok");
    CHECK(fabs(s[0] - sqrt(45.0)) < 1e-14 && fabs(s[1] - sqrt(5.0)) < 1e-14, "[[3,0],[4,5]]");
    /* random wide matrix: sum s^2 = Frobenius norm^2, s descending */
    qd_rng r;
    qd_rng_init(&r, 83);
    qd_c Wd[2 * 7];
    double fro = 0;
    for (int i = 0; i < 14; i++) {
        Wd[i] = qd_rng_cnormal(&r);
        fro += creal(Wd[i] * conj(Wd[i]));
    }
    CHECK(qd_la_svdvals(Wd, 2, 7, s, NULL) == QD_OK, "svd ok");
    CHECK(s[0] >= s[1] && fabs(s[0] * s[0] + s[1] * s[1] - fro) < 1e-12, "Frobenius");
}

QD_TEST(linalg_qr)
{
    qd_rng r;
    qd_rng_init(&r, 84);
    size_t m = 6, n = 4;
    qd_c A[24], Q[24], rd[4];
    for (int i = 0; i < 24; i++)
        A[i] = qd_rng_cnormal(&r);
    memcpy(Q, A, sizeof A);
    CHECK(qd_la_qr(Q, m, n, rd, NULL) == QD_OK, "qr ok");
    /* Q^H Q = I (n x n) */
    double err = 0;
    for (size_t c = 0; c < n; c++)
        for (size_t x = 0; x < n; x++) {
            qd_c s = 0;
            for (size_t k = 0; k < m; k++)
                s += conj(Q[k + x * m]) * Q[k + c * m];
            err = fmax(err, cabs(s - (x == c ? 1.0 : 0.0)));
        }
    CHECK(err < 1e-13, "Q has orthonormal columns");
    /* R = Q^H A is upper triangular with diagonal rdiag, and Q R = A */
    qd_c R[16];
    for (size_t c = 0; c < n; c++)
        for (size_t x = 0; x < n; x++) {
            qd_c s = 0;
            for (size_t k = 0; k < m; k++)
                s += conj(Q[k + x * m]) * A[k + c * m];
            R[x + c * n] = s;
        }
    double low = 0, diag = 0;
    for (size_t c = 0; c < n; c++) {
        diag = fmax(diag, cabs(R[c + c * n] - rd[c]));
        for (size_t x = c + 1; x < n; x++)
            low = fmax(low, cabs(R[x + c * n]));
    }
    CHECK(low < 1e-13, "R upper triangular");
    CHECK(diag < 1e-13, "rdiag is R's diagonal");
    double rec = 0;
    for (size_t c = 0; c < n; c++)
        for (size_t x = 0; x < m; x++) {
            qd_c s = 0;
            for (size_t k = 0; k <= c; k++)
                s += Q[x + k * m] * R[k + c * n];
            rec = fmax(rec, cabs(s - A[x + c * m]));
        }
    CHECK(rec < 1e-13, "Q R = A");
    /* square: Q unitary */
    qd_c S[9], rd3[3];
    for (int i = 0; i < 9; i++)
        S[i] = qd_rng_cnormal(&r);
    CHECK(qd_la_qr(S, 3, 3, rd3, NULL) == QD_OK, "square qr");
    qd_c Sd[9], P[9];
    ref_dagger(S, 3, Sd);
    ref_matmul(S, Sd, 3, P);
    err = 0;
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < 3; x++)
            err = fmax(err, cabs(P[x + c * 3] - (x == c ? 1.0 : 0.0)));
    CHECK(err < 1e-13, "Q Q^H = I");
    /* m < n is refused */
    qd_err e;
    qd_err_clear(&e);
    CHECK(qd_la_qr(S, 2, 3, rd3, &e) == QD_EARG && e.status == QD_EARG, "m < n: %s", e.msg);
}

QD_TEST(linalg_sqrtm_psd)
{
    qd_rng r;
    qd_rng_init(&r, 85);
    for (size_t d = 1; d <= 16; d *= 2) {
        qd_c *A = malloc(sizeof(qd_c) * d * d), *S = malloc(sizeof(qd_c) * d * d),
             *S2 = malloc(sizeof(qd_c) * d * d), *Sd = malloc(sizeof(qd_c) * d * d);
        ref_random_dm(A, d, &r);
        CHECK(qd_la_sqrtm_psd(A, d, S, NULL) == QD_OK, "sqrtm ok");
        ref_matmul(S, S, d, S2);
        CHECK(ref_maxdiff(S2, A, d * d) < 1e-13, "sqrt(A)^2 = A, d=%zu", d);
        ref_dagger(S, d, Sd);
        CHECK(ref_maxdiff(S, Sd, d * d) < 1e-13, "sqrt(A) Hermitian");
        free(A); free(S); free(S2); free(Sd);
    }
    /* tiny negative eigenvalues are clipped: diag(4, -1e-14) -> diag(2, 0) */
    qd_c A[4] = {4, 0, 0, -1e-14}, S[4];
    CHECK(qd_la_sqrtm_psd(A, 2, S, NULL) == QD_OK, "sqrtm ok");
    CHECK(cabs(S[0] - 2) < 1e-15 && cabs(S[3]) == 0 && cabs(S[1]) + cabs(S[2]) < 1e-15,
          "negative eigenvalue clipped");
    /* a rank-one projector is its own square root */
    qd_c P[4] = {0.5, 0.5, 0.5, 0.5};
    CHECK(qd_la_sqrtm_psd(P, 2, S, NULL) == QD_OK && ref_maxdiff(S, P, 4) < 1e-15,
          "sqrt of a projector");
}

QD_TEST(linalg_size_errors)
{
    /* the size checks come before any access to the matrix */
    qd_c dummy[1] = {0};
    double w[1];
    qd_err e;
    qd_err_clear(&e);
    CHECK(qd_la_eigh(dummy, 50000, w, 0, &e) == QD_EARG && e.status == QD_EARG &&
          strstr(e.msg, "too large"), "eigh too large: %s", e.msg);
    qd_err_clear(&e);
    CHECK(qd_la_svdvals(dummy, 1, 50000, w, &e) == QD_EARG && strstr(e.msg, "too large"),
          "svd too large: %s", e.msg);
    qd_err_clear(&e);
    CHECK(qd_la_sqrtm_psd(dummy, (size_t)1 << 33, dummy, &e) == QD_EARG, "sqrtm overflow: %s",
          e.msg);
    const char *info = qd_la_info();
    CHECK(info && strlen(info) > 0, "la_info: %s", info ? info : "(null)");
}

/* The blocked paths of qd_la_zgemm (column blocks when C is wide, row blocks when it is
 * tall and narrow), for every op combination: against a naive product, with submatrix
 * leading dimensions, and bitwise identical for 1 and 2 threads. */
static void zgemm_blocked_case(char opa, char opb, size_t m, size_t n, size_t k, qd_rng *r)
{
    size_t lda = (opa == 'N' ? m : k) + 3, ldb = (opb == 'N' ? k : n) + 2, ldc = m + 1;
    size_t acols = opa == 'N' ? k : m, bcols = opb == 'N' ? n : k;
    qd_c *A = malloc(sizeof(qd_c) * lda * acols), *B = malloc(sizeof(qd_c) * ldb * bcols);
    qd_c *C1 = malloc(sizeof(qd_c) * ldc * n), *C2 = malloc(sizeof(qd_c) * ldc * n);
    for (size_t i = 0; i < lda * acols; i++)
        A[i] = qd_rng_cnormal(r);
    for (size_t i = 0; i < ldb * bcols; i++)
        B[i] = qd_rng_cnormal(r);
    for (size_t i = 0; i < ldc * n; i++)
        C1[i] = C2[i] = qd_rng_cnormal(r);
    qd_c alpha = 0.5 - 0.25 * I, beta = 2.0;
    int t0 = qd_get_threads();
    qd_set_threads(1);
    qd_la_zgemm(opa, opb, m, n, k, alpha, A, lda, B, ldb, beta, C1, ldc);
    qd_set_threads(2);
    qd_la_zgemm(opa, opb, m, n, k, alpha, A, lda, B, ldb, beta, C2, ldc);
    qd_set_threads(t0);
    CHECK(memcmp(C1, C2, sizeof(qd_c) * ldc * n) == 0, "zgemm %c%c %zux%zux%zu: 1 and 2 threads differ",
          opa, opb, m, n, k);
    /* one full product into a fresh C with beta = 0, sampled entries against naive sums */
    double worst = 0;
    memset(C1, 0, sizeof(qd_c) * ldc * n);
    qd_la_zgemm(opa, opb, m, n, k, 1.0, A, lda, B, ldb, 0.0, C1, ldc);
    for (size_t c = 0; c < n; c += 7)
        for (size_t x = 0; x < m; x += 5) {
            qd_c s = 0;
            for (size_t q = 0; q < k; q++) {
                qd_c a = opa == 'N' ? A[x + q * lda] : A[q + x * lda];
                qd_c b = opb == 'N' ? B[q + c * ldb] : B[c + q * ldb];
                if (opa == 'C')
                    a = conj(a);
                if (opb == 'C')
                    b = conj(b);
                s += a * b;
            }
            double dd = cabs(C1[x + c * ldc] - s);
            if (dd > worst)
                worst = dd;
        }
    CHECK(worst < 1e-11, "zgemm %c%c %zux%zux%zu: max error %g", opa, opb, m, n, k, worst);
    free(A);
    free(B);
    free(C1);
    free(C2);
}

QD_TEST(linalg_zgemm_blocked)
{
    qd_rng r;
    qd_rng_init(&r, 82);
    const char ops[] = {'N', 'T', 'C'};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            zgemm_blocked_case(ops[i], ops[j], 37, 300, 40, &r);   /* column blocks, ragged */
            zgemm_blocked_case(ops[i], ops[j], 700, 9, 50, &r);    /* row blocks, ragged */
        }
}

/* qd_set_threads leaves OpenMP's default thread count at n: OpenBLAS's OpenMP build sets
 * it too (to 1, from openblas_set_num_threads), so the order of the two calls matters */
#ifdef _OPENMP
#include <omp.h>
#endif
QD_TEST(la_threads_openmp_default)
{
    int t0 = qd_get_threads();
    qd_set_threads(2);
#ifdef _OPENMP
    CHECK(omp_get_max_threads() == 2, "OpenMP default after qd_set_threads(2): %d",
          omp_get_max_threads());
#endif
    CHECK(qd_get_threads() == 2, "qd_get_threads: %d", qd_get_threads());
    qd_set_threads(t0);
}

/* The single-call paths (a product below qd_la_zgemm's blocking, a narrow zherk, the LAPACK
 * decompositions) are bitwise the same for 1 and 2 threads: OpenBLAS's OpenMP build would
 * otherwise take OpenMP's thread count (2) at a call outside a parallel region and round a
 * 35 x 500 x 6 product differently (seen, 1e-17); and OpenMP's count is restored after. */
QD_TEST(linalg_serial_paths_thread_independent)
{
    qd_rng r;
    qd_rng_init(&r, 4711);
    const size_t m = 35, n = 6, k = 500, he = 60, hk = 3000, d = 150;
    qd_c *A = malloc(sizeof(qd_c) * m * k), *B = malloc(sizeof(qd_c) * k * n);
    qd_c *H = malloc(sizeof(qd_c) * he * hk), *M = malloc(sizeof(qd_c) * d * d);
    qd_c *out[2][4];
    double *w[2];
    for (size_t i = 0; i < m * k; i++)
        A[i] = qd_rng_cnormal(&r);
    for (size_t i = 0; i < k * n; i++)
        B[i] = qd_rng_cnormal(&r);
    for (size_t i = 0; i < he * hk; i++)
        H[i] = qd_rng_cnormal(&r);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j <= i; j++) {
            qd_c z = qd_rng_cnormal(&r);
            M[i + j * d] = i == j ? creal(z) : z;
            M[j + i * d] = conj(M[i + j * d]);
        }
    int t0 = qd_get_threads();
    for (int t = 0; t < 2; t++) {
        qd_set_threads(t + 1);
        qd_err e;
        out[t][0] = calloc(m * n, sizeof(qd_c));
        qd_la_zgemm('C', 'N', m, n, k / 2, 1.0, A, k, B, k, 0.0, out[t][0], m);   /* 35 x 250 x 6 */
        qd_c *C2 = calloc(m * n, sizeof(qd_c));
        qd_c *At = malloc(sizeof(qd_c) * m * k);
        for (size_t i = 0; i < m; i++)
            for (size_t q = 0; q < k; q++)
                At[i + q * m] = A[q + i * k];
        qd_la_zgemm('N', 'N', m, n, k, 1.0, At, m, B, k, 0.0, C2, m);            /* 35 x 500 x 6 */
        out[t][1] = C2;
        free(At);
        out[t][2] = calloc(he * he, sizeof(qd_c));
        qd_la_zherk('N', he, hk, 1.0, H, he, 0.0, out[t][2], he);
        out[t][3] = malloc(sizeof(qd_c) * d * d);
        memcpy(out[t][3], M, sizeof(qd_c) * d * d);
        w[t] = malloc(sizeof(double) * d);
        CHECK(qd_la_eigh(out[t][3], d, w[t], 1, &e) == QD_OK, "eigh");
#ifdef _OPENMP
        CHECK(omp_get_max_threads() == t + 1, "OpenMP's count restored after the calls (%d threads): %d",
              t + 1, omp_get_max_threads());
#endif
    }
    qd_set_threads(t0);
    CHECK(memcmp(out[0][0], out[1][0], sizeof(qd_c) * m * n) == 0, "zgemm C^H N 35x6x250: 1 and 2 threads differ");
    CHECK(memcmp(out[0][1], out[1][1], sizeof(qd_c) * m * n) == 0, "zgemm 35x6x500: 1 and 2 threads differ");
    CHECK(memcmp(out[0][2], out[1][2], sizeof(qd_c) * he * he) == 0, "zherk 60x3000: 1 and 2 threads differ");
    CHECK(memcmp(out[0][3], out[1][3], sizeof(qd_c) * d * d) == 0 && memcmp(w[0], w[1], sizeof(double) * d) == 0,
          "eigh 150: 1 and 2 threads differ");
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < 4; i++)
            free(out[t][i]);
        free(w[t]);
    }
    free(A);
    free(B);
    free(H);
    free(M);
}
