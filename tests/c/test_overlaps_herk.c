/* test_overlaps_herk.c — qd_la_zherk (the upper triangle of a Hermitian rank-k product, in
 * fixed blocks) against naive loops, its blocked path bitwise identical for 1 and 2 threads,
 * and qd_overlaps' self-overlap path (E:overlaps() with itself: one zherk) against naive
 * loops and against the general zgemm path. */
#include "harness.h"
#include <math.h>
#include <string.h>

/* <x|y> over n entries with stride sx, sy */
static qd_c dot_c(const qd_c *x, size_t sx, const qd_c *y, size_t sy, size_t n)
{
    qd_c s = 0;
    for (size_t t = 0; t < n; t++)
        s += conj(x[t * sx]) * y[t * sy];
    return s;
}

/* one zherk case: n x n C from A (trans 'C': k x n, lda >= k; 'N': n x k, lda >= n),
 * alpha, beta; checks the upper triangle against naive loops, the strictly lower triangle
 * untouched, and (blocked or not) 1 vs 2 threads bitwise */
static void herk_case(char trans, size_t n, size_t k, size_t lda, double alpha, double beta,
                      qd_rng *r)
{
    size_t acols = trans == 'C' ? n : k;
    qd_c *A = qd_malloc(sizeof(qd_c) * lda * acols);
    qd_c *C0 = qd_malloc(sizeof(qd_c) * n * n), *C1 = qd_malloc(sizeof(qd_c) * n * n);
    qd_c *C2 = qd_malloc(sizeof(qd_c) * n * n);
    for (size_t j = 0; j < acols; j++)
        ref_random_vec(A + j * lda, lda, r);
    ref_random_vec(C0, n * n, r);
    for (size_t j = 0; j < n; j++)            /* beta C needs a Hermitian-looking diagonal */
        C0[j + j * n] = creal(C0[j + j * n]);
    memcpy(C1, C0, sizeof(qd_c) * n * n);
    memcpy(C2, C0, sizeof(qd_c) * n * n);
    int t0 = qd_get_threads();
    qd_set_threads(1);
    qd_la_zherk(trans, n, k, alpha, A, lda, beta, C1, n);
    qd_set_threads(2);
    qd_la_zherk(trans, n, k, alpha, A, lda, beta, C2, n);
    qd_set_threads(t0);
    double err = 0;
    int lower_same = 1;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < n; i++) {
            if (i > j) {
                lower_same &= memcmp(&C1[i + j * n], &C0[i + j * n], sizeof(qd_c)) == 0;
                continue;
            }
            /* op(A) column i: A column i ('C') or conj of row i ('N') */
            qd_c g = trans == 'C' ? dot_c(A + i * lda, 1, A + j * lda, 1, k)
                                  : conj(dot_c(A + i, lda, A + j, lda, k));
            qd_c want = alpha * g + beta * C0[i + j * n];
            err = fmax(err, cabs(C1[i + j * n] - want));
        }
    CHECK(err < 1e-13, "zherk %c n=%zu k=%zu: max error %.3g", trans, n, k, err);
    CHECK(lower_same, "zherk %c n=%zu: strictly lower triangle untouched", trans, n);
    CHECK(memcmp(C1, C2, sizeof(qd_c) * n * n) == 0, "zherk %c n=%zu: 1 and 2 threads bitwise",
          trans, n);
    qd_free(A);
    qd_free(C0);
    qd_free(C1);
    qd_free(C2);
}

QD_TEST(la_zherk)
{
    qd_rng r;
    qd_rng_init(&r, 2011);
    herk_case('C', 5, 8, 8, 1.0, 0.0, &r);        /* one zherk */
    herk_case('N', 6, 3, 7, 0.5, 2.0, &r);        /* lda > n, beta */
    herk_case('C', 200, 16, 19, 1.0, 0.0, &r);    /* fixed blocks of 64 columns (4, last 8) */
    herk_case('N', 150, 32, 160, -1.5, 0.5, &r);  /* blocked, trans 'N', alpha < 0, beta */
    herk_case('C', 1, 4, 4, 2.0, 0.0, &r);
}

QD_TEST(quant_overlaps_self)
{
    qd_rng r;
    qd_rng_init(&r, 2012);
    size_t sizes[2] = {7, 150};   /* one zherk; blocked (150 >= 2 x 64, 150^2 x 32 / 2 big) */
    int nq = 5;
    size_t dim = 32;
    for (int c = 0; c < 2; c++) {
        size_t N = sizes[c];
        qd_c *A = qd_malloc(sizeof(qd_c) * N * dim), *A2 = qd_malloc(sizeof(qd_c) * N * dim);
        double *F1 = qd_malloc(sizeof(double) * N * N), *F2 = qd_malloc(sizeof(double) * N * N);
        double *Fg = qd_malloc(sizeof(double) * N * N);
        for (size_t j = 0; j < N; j++)
            ref_random_vec(A + j * dim, dim, &r);
        memcpy(A2, A, sizeof(qd_c) * N * dim);
        int t0 = qd_get_threads();
        qd_set_threads(1);
        CHECK(qd_overlaps(A, N, A, N, nq, F1, NULL) == QD_OK, "self overlaps N=%zu", N);
        qd_set_threads(2);
        CHECK(qd_overlaps(A, N, A, N, nq, F2, NULL) == QD_OK, "self overlaps, 2 threads");
        qd_set_threads(t0);
        /* a copy of A is a different ensemble: the general zgemm path */
        CHECK(qd_overlaps(A, N, A2, N, nq, Fg, NULL) == QD_OK, "overlaps with a copy");
        double err = 0, errg = 0;
        int sym = 1;
        for (size_t j = 0; j < N; j++)
            for (size_t i = 0; i < N; i++) {
                double o = cabs(dot_c(A + i * dim, 1, A + j * dim, 1, dim));
                err = fmax(err, fabs(F1[i + j * N] - o * o));
                errg = fmax(errg, fabs(F1[i + j * N] - Fg[i + j * N]));
                sym &= F1[i + j * N] == F1[j + i * N];
            }
        CHECK(err < 1e-14, "self overlaps N=%zu vs naive: %.3g", N, err);
        CHECK(errg < 1e-14, "self overlaps N=%zu vs the zgemm path: %.3g", N, errg);
        CHECK(sym, "self overlaps N=%zu exactly symmetric", N);
        CHECK(memcmp(F1, F2, sizeof(double) * N * N) == 0,
              "self overlaps N=%zu: 1 and 2 threads bitwise", N);
        qd_free(A);
        qd_free(A2);
        qd_free(F1);
        qd_free(F2);
        qd_free(Fg);
    }
}

/* The direct kernel (states of up to 1024 amplitudes; QD_VL members side by side in SIMD
 * lanes) against naive loops: self and general, member counts that fill whole lane blocks
 * and leave partial ones; exactly symmetric; 1 vs 2 threads bitwise; a pair's value does
 * not depend on the ensembles around it. And the zherk/zgemm path above 1024 amplitudes
 * (quant_overlaps_self above now runs the direct kernel: 32 amplitudes). */
QD_TEST(quant_overlaps_direct)
{
    qd_rng r;
    qd_rng_init(&r, 4242);
    const struct { int nq; size_t N, M; } cs[] = {
        {1, 1, 1}, {2, 3, 3}, {3, 13, 5}, {5, 8, 8}, {8, 100, 100}, {8, 9, 17}, {10, 10, 3},
        {11, 5, 5}, {11, 4, 3}};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        const int nq = cs[c].nq;
        const size_t dim = (size_t)1 << nq, N = cs[c].N, M = cs[c].M;
        qd_c *A = qd_malloc(sizeof(qd_c) * N * dim), *B = qd_malloc(sizeof(qd_c) * M * dim);
        double *F1 = qd_malloc(sizeof(double) * N * M), *F2 = qd_malloc(sizeof(double) * N * M);
        double *S1 = qd_malloc(sizeof(double) * N * N), *S2 = qd_malloc(sizeof(double) * N * N);
        double sub[4];
        for (size_t j = 0; j < N; j++)
            ref_random_vec(A + j * dim, dim, &r);
        for (size_t j = 0; j < M; j++)
            ref_random_vec(B + j * dim, dim, &r);
        int t0 = qd_get_threads();
        qd_set_threads(1);
        CHECK(qd_overlaps(A, N, B, M, nq, F1, NULL) == QD_OK, "overlaps (n=%d)", nq);
        CHECK(qd_overlaps(A, N, A, N, nq, S1, NULL) == QD_OK, "self overlaps (n=%d)", nq);
        qd_set_threads(2);
        CHECK(qd_overlaps(A, N, B, M, nq, F2, NULL) == QD_OK, "overlaps, 2 threads");
        CHECK(qd_overlaps(A, N, A, N, nq, S2, NULL) == QD_OK, "self overlaps, 2 threads");
        qd_set_threads(t0);
        double err = 0, errs = 0;
        int sym = 1;
        for (size_t j = 0; j < M; j++)
            for (size_t i = 0; i < N; i++) {
                double o = cabs(dot_c(A + i * dim, 1, B + j * dim, 1, dim));
                err = fmax(err, fabs(F1[i + j * N] - o * o));
            }
        for (size_t j = 0; j < N; j++)
            for (size_t i = 0; i < N; i++) {
                double o = cabs(dot_c(A + i * dim, 1, A + j * dim, 1, dim));
                errs = fmax(errs, fabs(S1[i + j * N] - o * o));
                sym &= S1[i + j * N] == S1[j + i * N];
            }
        CHECK(err < 1e-13 && errs < 1e-13, "overlaps vs naive (n=%d, N=%zu, M=%zu): %.3g, self %.3g",
              nq, N, M, err, errs);
        CHECK(sym, "self overlaps exactly symmetric (n=%d, N=%zu)", nq, N);
        CHECK(memcmp(F1, F2, sizeof(double) * N * M) == 0 &&
              memcmp(S1, S2, sizeof(double) * N * N) == 0,
              "overlaps 1 and 2 threads bitwise (n=%d, N=%zu, M=%zu)", nq, N, M);
        /* the last member of A against the last of B, alone: the same bits (direct kernel) */
        CHECK(nq > 10 ||
              (qd_overlaps(A + (N - 1) * dim, 1, B + (M - 1) * dim, 1, nq, sub, NULL) == QD_OK &&
               sub[0] == F1[(N - 1) + (M - 1) * N]),
              "a pair's overlap independent of the ensembles around it (n=%d)", nq);
        qd_free(A);
        qd_free(B);
        qd_free(F1);
        qd_free(F2);
        qd_free(S1);
        qd_free(S2);
    }
}
