/* test_channel.c — channel.c against naive dense references: the full 4^n x 4^n
 * superoperator sum_i conj(F_i) (x) F_i of the embedded Kraus operators F_i (built with
 * ref_full_operator) applied to vec(rho), for n <= 4 and every ordered target tuple, by
 * both application methods; superoperator / Choi / reshuffle / composition / tensor /
 * Choi -> Kraus; the structured depolarizing map; Pauli strings; trajectories (each
 * member's output against K_b psi / ||K_b psi|| for its reported branch, branch
 * frequencies against their probabilities, independence of the batch size); and bitwise
 * equality for 1 and 2 threads. */
#include "harness.h"
#include "qd_channel.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

/* next ordered k-tuple of distinct qubits of [0, n) */
static int ch_next_tuple(int n, int k, int *qs, int *started)
{
    for (;;) {
        if (!*started) {
            *started = 1;
            for (int j = 0; j < k; j++)
                qs[j] = 0;
        } else {
            int j = k - 1;
            while (j >= 0 && ++qs[j] == n)
                qs[j--] = 0;
            if (j < 0)
                return 0;
        }
        int ok = 1;
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++)
                ok &= qs[a] != qs[b];
        if (ok)
            return 1;
    }
}

/* m random Kraus operators on k qubits: the d x d blocks of a random (m d) x d isometry */
static qd_c *rand_kraus(int k, size_t m, qd_rng *r)
{
    size_t d = (size_t)1 << k, md = m * d;
    qd_c *G = malloc(sizeof(qd_c) * md * d), *rd = malloc(sizeof(qd_c) * d);
    for (size_t i = 0; i < md * d; i++)
        G[i] = qd_rng_cnormal(r);
    qd_err e;
    qd_status st = qd_la_qr(G, md, d, rd, &e);
    CHECK(st == QD_OK, "qr: %s", e.msg);
    qd_c *K = malloc(sizeof(qd_c) * m * d * d);
    for (size_t i = 0; i < m; i++)
        for (size_t c = 0; c < d; c++)
            for (size_t rr = 0; rr < d; rr++)
                K[i * d * d + rr + c * d] = G[(i * d + rr) + c * md];
    free(G);
    free(rd);
    return K;
}

/* naive: the full 4^n x 4^n superoperator (column stacking) of the embedded operators */
static qd_c *naive_full_super(int n, const int *qs, int k, const qd_c *K, size_t m)
{
    size_t D = (size_t)1 << n, DD = D * D, dk = (size_t)1 << (2 * k);
    qd_c *S = calloc(DD * DD, sizeof(qd_c)), *F = malloc(sizeof(qd_c) * DD);
    for (size_t i = 0; i < m; i++) {
        ref_full_operator(n, qs, k, K + i * dk, F);
        /* (conj F (x) F)[(r' + c' D), (r + c D)] = F[r', r] conj(F[c', c]) */
        for (size_t c = 0; c < D; c++)
            for (size_t r = 0; r < D; r++)
                for (size_t cp = 0; cp < D; cp++)
                    for (size_t rp = 0; rp < D; rp++)
                        S[(rp + cp * D) + (r + c * D) * DD] += F[rp + r * D] * conj(F[cp + c * D]);
    }
    free(F);
    return S;
}

static void naive_apply(int n, const int *qs, int k, const qd_c *K, size_t m, const qd_c *rho,
                        qd_c *out)
{
    size_t D = (size_t)1 << n, DD = D * D;
    qd_c *S = naive_full_super(n, qs, k, K, m);
    ref_matvec(S, DD, rho, out);   /* vec(rho) is the column-major buffer */
    free(S);
}

/* the k-qubit Pauli Kraus list of D_lambda (qd_pauli_kraus weights) */
static qd_c *depol_kraus(int k, double lambda, size_t *m)
{
    size_t np = (size_t)1 << (2 * k);
    qd_c *K = malloc(sizeof(qd_c) * np * np);
    double w1 = lambda / (double)np;
    qd_pauli_kraus(k, 1 - lambda + w1, w1, K);
    *m = np;
    return K;
}

/* ---------------------------------------------------------------- representations */

QD_TEST(channel_superop_choi_naive)
{
    qd_rng r;
    qd_rng_init(&r, 101);
    for (int k = 1; k <= 3; k++) {
        size_t d = (size_t)1 << k, dd = d * d, m = k == 3 ? 2 : 3;
        qd_c *K = rand_kraus(k, m, &r);
        CHECK(qd_kraus_tp_dev(K, m, k) < 1e-13, "isometry blocks are TP (k=%d)", k);
        qd_c *S = malloc(sizeof(qd_c) * dd * dd), *J = malloc(sizeof(qd_c) * dd * dd);
        qd_c *S2 = malloc(sizeof(qd_c) * dd * dd), *Jn = calloc(dd * dd, sizeof(qd_c));
        qd_kraus_to_superop(K, m, k, S);
        qd_kraus_to_choi(K, m, k, J);
        /* superoperator = the full one with n = k and targets 0..k-1 */
        int qs[3] = {0, 1, 2};
        qd_c *Sn = naive_full_super(k, qs, k, K, m);
        CHECK(ref_maxdiff(S, Sn, dd * dd) < 1e-13, "superop vs naive (k=%d): %g", k, ref_maxdiff(S, Sn, dd * dd));
        /* Choi = sum_ij |i><j| (x) E(|i><j|), input factor first */
        qd_c *Eij = malloc(sizeof(qd_c) * dd), *out = malloc(sizeof(qd_c) * dd);
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                memset(Eij, 0, sizeof(qd_c) * dd);
                Eij[i + j * d] = 1;
                ref_matvec(Sn, dd, Eij, out);
                for (size_t b = 0; b < d; b++)
                    for (size_t a = 0; a < d; a++)
                        Jn[(i * d + a) + (j * d + b) * dd] = out[a + b * d];
            }
        CHECK(ref_maxdiff(J, Jn, dd * dd) < 1e-13, "choi vs naive (k=%d)", k);
        qd_choi_reshuffle(J, k, S2);
        CHECK(ref_maxdiff(S2, S, dd * dd) < 1e-13, "reshuffle(J) = S (k=%d)", k);
        qd_choi_reshuffle(S, k, S2);
        CHECK(ref_maxdiff(S2, J, dd * dd) < 1e-13, "reshuffle(S) = J (k=%d)", k);
        double tr = 0;
        for (size_t i = 0; i < dd; i++)
            tr += creal(J[i + i * dd]);
        CHECK_NEAR(tr, (double)d, 1e-12, "Tr J = d");
        /* checks of a valid channel */
        double h, t, me;
        qd_err e;
        CHECK(qd_superop_check(S, k, &h, &t, &me, &e) == QD_OK, "superop_check");
        CHECK(h < 1e-13 && t < 1e-13 && me > -1e-13, "valid channel: herm %g tp %g min %g", h, t, me);
        /* Choi -> Kraus -> Choi */
        qd_c *K2 = malloc(sizeof(qd_c) * dd * dd);
        size_t m2 = 0;
        CHECK(qd_choi_to_kraus(J, k, 1e-12, K2, &m2, &e) == QD_OK, "choi_to_kraus");
        CHECK(m2 == m, "Kraus rank %zu (expected %zu)", m2, m);
        qd_kraus_to_choi(K2, m2, k, S2);
        CHECK(ref_maxdiff(S2, J, dd * dd) < 1e-12, "Choi -> Kraus -> Choi (k=%d)", k);
        CHECK(qd_kraus_tp_dev(K2, m2, k) < 1e-12, "Choi Kraus list is TP");
        free(K2);
        free(Eij);
        free(out);
        free(Sn);
        free(S);
        free(S2);
        free(J);
        free(Jn);
        free(K);
    }
}

QD_TEST(channel_checks_detect)
{
    /* K = {2 I} on one qubit: sum K^H K - I = 3 I, Frobenius 3 sqrt(2) */
    qd_c K[4] = {2, 0, 0, 2};
    CHECK_NEAR(qd_kraus_tp_dev(K, 1, 1), 3 * sqrt(2.0), 1e-14, "tp_dev of 2I");
    qd_c nan4[4] = {NAN, 0, 0, 1};
    CHECK(isinf(qd_kraus_tp_dev(nan4, 1, 1)), "NaN operator -> inf deviation");
    /* the transpose map: not CP (Choi = SWAP has eigenvalue -1), but TP and Hermitian */
    qd_c S[16] = {0};
    for (size_t r = 0; r < 2; r++)
        for (size_t c = 0; c < 2; c++)
            S[(c + r * 2) + (r + c * 2) * 4] = 1;   /* vec(rho^T) */
    double h, t, me;
    qd_err e;
    CHECK(qd_superop_check(S, 1, &h, &t, &me, &e) == QD_OK, "check transpose map");
    CHECK(h < 1e-15 && t < 1e-15, "transpose: Hermitian and TP");
    CHECK_NEAR(me, -1, 1e-13, "transpose: Choi eigenvalue -1");
    /* a map that doubles the trace */
    qd_c S2[16] = {0};
    for (int i = 0; i < 4; i++)
        S2[i + i * 4] = 2;
    CHECK(qd_superop_check(S2, 1, &h, &t, &me, &e) == QD_OK, "check 2*identity");
    CHECK_NEAR(t, sqrt(2.0), 1e-14, "2*identity: ||Tr_out J - I||_F = sqrt 2");
}

QD_TEST(channel_pauli_kraus_and_apply)
{
    /* qd_pauli_kraus against explicit krons; qd_pauli_apply against the full operator */
    static const qd_c P[4][4] = {{1, 0, 0, 1}, {0, 1, 1, 0}, {0, I, -I, 0}, {1, 0, 0, -1}};
    qd_c K[16 * 16];
    qd_pauli_kraus(2, 1, 1, K);
    for (int j = 0; j < 16; j++) {
        qd_c ref[16];
        const qd_c *A = P[j >> 2], *B = P[j & 3];
        for (int ca = 0; ca < 2; ca++)
            for (int cb = 0; cb < 2; cb++)
                for (int ra = 0; ra < 2; ra++)
                    for (int rb = 0; rb < 2; rb++)
                        ref[(ra * 2 + rb) + (ca * 2 + cb) * 4] = A[ra + 2 * ca] * B[rb + 2 * cb];
        CHECK(ref_maxdiff(K + 16 * j, ref, 16) == 0, "Pauli string %d", j);
    }
    qd_rng r;
    qd_rng_init(&r, 7);
    int n = 4, qs[4] = {3, 0, 2, 1};
    size_t D = 16;
    qd_c a[16], b[16], ref[16], F[256];
    qd_c *all = malloc(sizeof(qd_c) * 256 * 256);   /* the 256 strings on 4 qubits */
    qd_pauli_kraus(4, 1, 1, all);
    double worst = 0;
    for (int j = 0; j < 256; j++) {
        /* masks of string j on qubits qs (digit of qs[0] most significant) */
        uint64_t xm = 0, zm = 0;
        int ny = 0;
        for (int t = 0; t < 4; t++) {
            int dig = (j >> (2 * (3 - t))) & 3;
            uint64_t bit = (uint64_t)1 << (n - 1 - qs[t]);
            if (dig == 1 || dig == 2)
                xm |= bit;
            if (dig == 2 || dig == 3)
                zm |= bit;
            ny += dig == 2;
        }
        ref_full_operator(n, qs, 4, all + 256 * j, F);
        ref_random_vec(a, D, &r);
        memcpy(b, a, sizeof a);
        ref_matvec(F, D, a, ref);
        qd_pauli_apply(b, n, 1, xm, zm, ny);
        double dv = ref_maxdiff(b, ref, D);
        worst = dv > worst ? dv : worst;
    }
    CHECK(worst < 1e-15, "pauli_apply vs the embedded string, all 256: %g", worst);
    free(all);
}

/* ---------------------------------------------------------------- density matrices */

QD_TEST(channel_apply_dm_naive_all_targets)
{
    qd_rng r;
    qd_rng_init(&r, 202);
    long cases = 0;
    double worst = 0;
    for (int n = 1; n <= 4; n++) {
        size_t D = (size_t)1 << n, DD = D * D;
        qd_c *rho = malloc(sizeof(qd_c) * DD), *ref = malloc(sizeof(qd_c) * DD);
        qd_c *a = malloc(sizeof(qd_c) * DD);
        for (int k = 1; k <= n && k <= 3; k++) {
            size_t ms[3] = {1, 2, (size_t)1 << (2 * k)};   /* unitary, 2 ops, full rank */
            for (int mi = 0; mi < 3; mi++) {
                size_t m = ms[mi];
                qd_c *K = rand_kraus(k, m, &r);
                int qs[4], started = 0;
                while (ch_next_tuple(n, k, qs, &started)) {
                    ref_random_dm(rho, D, &r);
                    naive_apply(n, qs, k, K, m, rho, ref);
                    for (int meth = 0; meth <= 2; meth++) {
                        memcpy(a, rho, sizeof(qd_c) * DD);
                        qd_err e;
                        qd_status st = qd_channel_apply_dm(a, n, qs, k, K, m, NULL, (qd_ch_method)meth, &e);
                        CHECK(st == QD_OK, "apply_dm: %s", e.msg);
                        double dv = ref_maxdiff(a, ref, DD);
                        if (dv > worst)
                            worst = dv;
                        if (dv > 1e-12)
                            CHECK(0, "n=%d k=%d m=%zu method %d qs[0]=%d: maxdiff %g", n, k, m, meth, qs[0], dv);
                        cases++;
                    }
                }
                free(K);
            }
        }
        free(rho);
        free(ref);
        free(a);
    }
    CHECK(cases == 3 * 3 * (1 + (2 + 2) + (3 + 6 + 6) + (4 + 12 + 24)), "cases %ld", cases);
    CHECK(worst < 1e-12, "worst deviation %g", worst);
}

QD_TEST(channel_apply_dm_naive_k4_k5)
{
    /* the large-k paths (Kraus sum at k = 4 with few operators and at k = 5, local
     * superoperators of 256 x 256 and 1024 x 1024) on a 5-qubit density matrix */
    qd_rng r;
    qd_rng_init(&r, 212);
    int n = 5;
    size_t D = 32, DD = D * D;
    qd_c *rho = malloc(sizeof(qd_c) * DD), *ref = malloc(sizeof(qd_c) * DD), *a = malloc(sizeof(qd_c) * DD);
    struct { int k; size_t m; int qs[5]; } cases[] = {
        {4, 2, {4, 0, 2, 1}}, {4, 5, {1, 3, 0, 4}}, {5, 2, {3, 0, 4, 1, 2}}};
    for (int c = 0; c < 3; c++) {
        int k = cases[c].k;
        size_t m = cases[c].m;
        qd_c *K = rand_kraus(k, m, &r);
        ref_random_dm(rho, D, &r);
        naive_apply(n, cases[c].qs, k, K, m, rho, ref);
        for (int meth = 0; meth <= 2; meth++) {
            memcpy(a, rho, sizeof(qd_c) * DD);
            qd_err e;
            CHECK(qd_channel_apply_dm(a, n, cases[c].qs, k, K, m, NULL, (qd_ch_method)meth, &e) == QD_OK,
                  "apply: %s", e.msg);
            double dv = ref_maxdiff(a, ref, DD);
            CHECK(dv < 1e-12, "k=%d m=%zu method %d: %g", k, m, meth, dv);
        }
        free(K);
    }
    CHECK(qd_channel_method(2, 4) == QD_CH_KRAUS && qd_channel_method(5, 4) == QD_CH_SUPEROP &&
          qd_channel_method(64, 5) == QD_CH_KRAUS, "method choice at k = 4, 5");
    free(rho);
    free(ref);
    free(a);
}

QD_TEST(channel_apply_dm_superop_given)
{
    /* passing the cached superoperator gives the same result as building it */
    qd_rng r;
    qd_rng_init(&r, 9);
    int n = 3, qs[2] = {2, 0};
    size_t DD = 64;
    qd_c *K = rand_kraus(2, 3, &r), S[256], rho[64], a[64], b[64];
    qd_kraus_to_superop(K, 3, 2, S);
    ref_random_dm(rho, 8, &r);
    memcpy(a, rho, sizeof rho);
    memcpy(b, rho, sizeof rho);
    qd_err e;
    qd_channel_apply_dm(a, n, qs, 2, K, 3, S, QD_CH_SUPEROP, &e);
    qd_channel_apply_dm(b, n, qs, 2, K, 3, NULL, QD_CH_SUPEROP, &e);
    CHECK(ref_maxdiff(a, b, DD) == 0, "given S == built S");
    CHECK(qd_channel_apply_dm(a, 1, qs, 2, K, 3, S, QD_CH_AUTO, &e) == QD_EARG, "k > n rejected");
    CHECK(qd_channel_method(1, 1) == QD_CH_KRAUS && qd_channel_method(4, 1) == QD_CH_SUPEROP &&
          qd_channel_method(2, 5) == QD_CH_KRAUS && qd_channel_method(4, 3) == QD_CH_SUPEROP,
          "method choice");
    free(K);
}

QD_TEST(channel_depol_dm_naive_all_subsets)
{
    qd_rng r;
    qd_rng_init(&r, 303);
    long cases = 0;
    for (int n = 1; n <= 4; n++) {
        size_t D = (size_t)1 << n, DD = D * D;
        qd_c *rho = malloc(sizeof(qd_c) * DD), *ref = malloc(sizeof(qd_c) * DD);
        qd_c *a = malloc(sizeof(qd_c) * DD);
        for (int k = 1; k <= n; k++) {
            size_t m;
            double lambda = 0.37 + 0.1 * k;
            if (lambda > 1)
                lambda = 1;
            qd_c *K = depol_kraus(k, lambda, &m);
            CHECK(qd_kraus_tp_dev(K, m, k) < 1e-13, "Pauli list is TP (k=%d)", k);
            int qs[4], started = 0, done = 0;
            /* 4-qubit strings: 256 operators per naive superoperator; 4 orders suffice */
            while (ch_next_tuple(n, k, qs, &started) && !(k == 4 && done == 4)) {
                done++;
                ref_random_dm(rho, D, &r);
                naive_apply(n, qs, k, K, m, rho, ref);
                memcpy(a, rho, sizeof(qd_c) * DD);
                qd_err e;
                CHECK(qd_depol_apply_dm(a, n, qs, k, lambda, &e) == QD_OK, "depol_apply_dm");
                double dv = ref_maxdiff(a, ref, DD);
                if (dv > 1e-13)
                    CHECK(0, "depol n=%d k=%d qs[0]=%d: %g", n, k, qs[0], dv);
                cases++;
            }
            free(K);
        }
        /* the whole register: (1 - l) rho + l Tr(rho) I/D exactly */
        ref_random_dm(rho, D, &r);
        memcpy(a, rho, sizeof(qd_c) * DD);
        int all[4] = {0, 1, 2, 3};
        qd_err e;
        qd_depol_apply_dm(a, n, all, n, 0.25, &e);
        double dv = 0;
        for (size_t c = 0; c < D; c++)
            for (size_t rr = 0; rr < D; rr++) {
                qd_c want = 0.75 * rho[rr + c * D] + (rr == c ? 0.25 / (double)D : 0);
                double x = cabs(a[rr + c * D] - want);
                dv = x > dv ? x : dv;
            }
        CHECK(dv < 1e-15, "whole register depolarizing: %g", dv);
        free(rho);
        free(ref);
        free(a);
    }
    CHECK(cases == 1 + (2 + 2) + (3 + 6 + 6) + (4 + 12 + 24 + 4), "cases %ld", cases);
}

QD_TEST(channel_compose_tensor)
{
    qd_rng r;
    qd_rng_init(&r, 404);
    /* composition: superop(A o B) = S_A S_B */
    int k = 2;
    size_t dd = 16, D2 = dd * dd;
    qd_c *A = rand_kraus(k, 2, &r), *B = rand_kraus(k, 3, &r);
    qd_c *C = malloc(sizeof(qd_c) * 6 * dd);
    qd_kraus_compose(A, 2, B, 3, k, C);
    qd_c *SA = malloc(sizeof(qd_c) * D2), *SB = malloc(sizeof(qd_c) * D2),
         *SC = malloc(sizeof(qd_c) * D2), *SAB = malloc(sizeof(qd_c) * D2);
    qd_kraus_to_superop(A, 2, k, SA);
    qd_kraus_to_superop(B, 3, k, SB);
    qd_kraus_to_superop(C, 6, k, SC);
    ref_matmul(SA, SB, dd, SAB);
    CHECK(ref_maxdiff(SC, SAB, D2) < 1e-13, "S(A o B) = S_A S_B");
    CHECK(qd_kraus_tp_dev(C, 6, k) < 1e-13, "composition is TP");
    /* tensor: (A (x) B) on {q, q'} = A on q then B on q' */
    qd_c *A1 = rand_kraus(1, 2, &r), *B1 = rand_kraus(2, 3, &r);
    qd_c *T = malloc(sizeof(qd_c) * 6 * 64);
    qd_kraus_tensor(A1, 2, 1, B1, 3, 2, T);
    CHECK(qd_kraus_tp_dev(T, 6, 3) < 1e-13, "tensor is TP");
    int n = 4, qt[3] = {3, 0, 2}, qa[1] = {3}, qb[2] = {0, 2};
    size_t DDn = 256;
    qd_c *rho = malloc(sizeof(qd_c) * DDn), *x = malloc(sizeof(qd_c) * DDn), *y = malloc(sizeof(qd_c) * DDn);
    ref_random_dm(rho, 16, &r);
    memcpy(x, rho, sizeof(qd_c) * DDn);
    memcpy(y, rho, sizeof(qd_c) * DDn);
    qd_err e;
    qd_channel_apply_dm(x, n, qt, 3, T, 6, NULL, QD_CH_AUTO, &e);
    qd_channel_apply_dm(y, n, qa, 1, A1, 2, NULL, QD_CH_AUTO, &e);
    qd_channel_apply_dm(y, n, qb, 2, B1, 3, NULL, QD_CH_AUTO, &e);
    CHECK(ref_maxdiff(x, y, DDn) < 1e-13, "tensor = sequential on disjoint targets: %g", ref_maxdiff(x, y, DDn));
    free(A);
    free(B);
    free(C);
    free(SA);
    free(SB);
    free(SC);
    free(SAB);
    free(A1);
    free(B1);
    free(T);
    free(rho);
    free(x);
    free(y);
}

/* ---------------------------------------------------------------- trajectories */

QD_TEST(channel_traj_members_exact)
{
    /* every member's output is K_b psi / ||K_b psi|| for its reported branch b */
    qd_rng r;
    qd_rng_init(&r, 505);
    int n = 3, qs[2] = {2, 0}, k = 2;
    size_t m = 4, dim = 8, N = 50, dk = 16;
    qd_c *K = rand_kraus(k, m, &r);
    qd_c *a = malloc(sizeof(qd_c) * dim * N), *orig = malloc(sizeof(qd_c) * dim * N);
    for (size_t j = 0; j < N; j++)
        ref_random_vec(orig + j * dim, dim, &r);
    memcpy(a, orig, sizeof(qd_c) * dim * N);
    size_t *br = malloc(sizeof(size_t) * N);
    qd_rng base;
    qd_rng_init(&base, 77);
    qd_err e;
    CHECK(qd_channel_apply_traj(a, n, N, qs, k, K, m, &base, br, &e) == QD_OK, "traj: %s", e.msg);
    qd_c F[64], ref[8];
    double worst = 0;
    for (size_t j = 0; j < N; j++) {
        CHECK(br[j] < m, "branch in range");
        ref_full_operator(n, qs, k, K + br[j] * dk, F);
        ref_matvec(F, dim, orig + j * dim, ref);
        double s = sqrt(qd_norm2(ref, dim));
        for (size_t i = 0; i < dim; i++)
            ref[i] /= s;
        double dv = ref_maxdiff(ref, a + j * dim, dim);
        worst = dv > worst ? dv : worst;
    }
    CHECK(worst < 1e-13, "members = normalised K_b psi: %g", worst);
    /* member j does not depend on the batch size: the first 7 of a batch of 7 */
    qd_c *b = malloc(sizeof(qd_c) * dim * 7);
    memcpy(b, orig, sizeof(qd_c) * dim * 7);
    size_t br7[7];
    qd_channel_apply_traj(b, n, 7, qs, k, K, m, &base, br7, &e);
    CHECK(ref_maxdiff(b, a, dim * 7) == 0 && memcmp(br7, br, sizeof br7) == 0, "batch-size independent");
    /* a zero member is an error naming it */
    memset(b + 3 * dim, 0, sizeof(qd_c) * dim);
    CHECK(qd_channel_apply_traj(b, n, 7, qs, k, K, m, &base, NULL, &e) == QD_ENUMERIC &&
          strstr(e.msg, "member 4") != NULL, "norm-0 member: %s", e.msg);
    free(K);
    free(a);
    free(b);
    free(orig);
    free(br);
}

QD_TEST(channel_traj_branch_frequencies)
{
    /* amplitude damping gamma on qubit 1 of a fixed state: branch 1 (decay) has
     * probability gamma |<1|_1 psi|^2. Frequencies over N members within 5 sigma. */
    double g = 0.3;
    qd_c K[8] = {1, 0, 0, sqrt(1 - g), 0, 0, sqrt(g), 0};
    int n = 2, qs[1] = {1};
    size_t N = 20000, dim = 4;
    qd_c psi[4] = {0.5, 0.5 * I, -0.5, 0.5};   /* P(qubit 1 = 1) = 1/2 */
    qd_c *a = malloc(sizeof(qd_c) * dim * N);
    for (size_t j = 0; j < N; j++)
        memcpy(a + j * dim, psi, sizeof psi);
    size_t *br = malloc(sizeof(size_t) * N);
    qd_rng base;
    qd_rng_init(&base, 2026);
    qd_err e;
    qd_channel_apply_traj(a, n, N, qs, 1, K, 2, &base, br, &e);
    size_t hits = 0;
    for (size_t j = 0; j < N; j++)
        hits += br[j] == 1;
    double p = g * 0.5, sd = sqrt(p * (1 - p) / (double)N);
    CHECK(fabs((double)hits / (double)N - p) < 5 * sd, "decay frequency %g vs %g (5 sd = %g)",
          (double)hits / (double)N, p, 5 * sd);
    /* trajectory average vs the density matrix: <Z_1> and <X_0 X_1>; each sample is in
     * [-1, 1], so 5/sqrt(N) bounds 5 standard deviations */
    qd_c rho[16], Kc[8];
    memcpy(Kc, K, sizeof K);
    qd_dm_from_state(psi, n, rho);
    qd_channel_apply_dm(rho, n, qs, 1, Kc, 2, NULL, QD_CH_AUTO, &e);
    const char *ops[2] = {"Z", "XX"};
    int q1[1] = {1}, q01[2] = {0, 1};
    for (int o = 0; o < 2; o++) {
        const int *qq = o == 0 ? q1 : q01;
        int kk = o == 0 ? 1 : 2;
        double mean = 0;
        for (size_t j = 0; j < N; j++)
            mean += qd_expect_pauli(a + j * dim, n, ops[o], qq, kk);
        mean /= (double)N;
        double exact = qd_dm_expect_pauli(rho, n, ops[o], qq, kk);
        CHECK(fabs(mean - exact) < 5 / sqrt((double)N), "<%s> trajectories %g vs exact %g", ops[o], mean, exact);
    }
    /* structured depolarizing: identity branch with probability 1 - l + l/4^k, and each
     * member is exactly P_b psi */
    double lam = 0.6;
    int q2[2] = {1, 0};
    for (size_t j = 0; j < N; j++)
        memcpy(a + j * dim, psi, sizeof psi);
    qd_depol_apply_traj(a, n, N, q2, 2, lam, &base, br, &e);
    size_t id = 0, counts[16] = {0};
    qd_c P[16 * 16], F[16], ref[4];
    qd_pauli_kraus(2, 1, 1, P);
    double worst = 0;
    for (size_t j = 0; j < N; j++) {
        id += br[j] == 0;
        counts[br[j] & 15]++;
        ref_full_operator(n, q2, 2, P + 16 * br[j], F);
        ref_matvec(F, dim, psi, ref);
        double dv = ref_maxdiff(ref, a + j * dim, dim);
        worst = dv > worst ? dv : worst;
    }
    CHECK(worst < 1e-15, "depolarizing members = P_b psi: %g", worst);
    double p0 = 1 - lam + lam / 16;
    sd = sqrt(p0 * (1 - p0) / (double)N);
    CHECK(fabs((double)id / (double)N - p0) < 5 * sd, "identity frequency %g vs %g", (double)id / (double)N, p0);
    double p1 = lam / 16, sd1 = sqrt(p1 * (1 - p1) / (double)N);
    for (int b = 1; b < 16; b++)
        CHECK(fabs((double)counts[b] / (double)N - p1) < 5 * sd1, "Pauli %d frequency %g vs %g", b,
              (double)counts[b] / (double)N, p1);
    /* lambda = 16/15 is the Pauli form with p = 1: the identity branch never occurs and
     * the 15 other strings are equally likely */
    qd_depol_apply_traj(a, n, N, q2, 2, 16.0 / 15.0, &base, br, &e);
    memset(counts, 0, sizeof counts);
    for (size_t j = 0; j < N; j++)
        counts[br[j] & 15]++;
    CHECK(counts[0] == 0, "p = 1: identity taken %zu times", counts[0]);
    p1 = 1.0 / 15;
    sd1 = sqrt(p1 * (1 - p1) / (double)N);
    for (int b = 1; b < 16; b++)
        CHECK(fabs((double)counts[b] / (double)N - p1) < 5 * sd1, "p = 1: Pauli %d frequency %g", b,
              (double)counts[b] / (double)N);
    free(a);
    free(br);
}

/* ---------------------------------------------------------------- threads */

QD_TEST(channel_threads_bitwise)
{
    int t0 = qd_get_threads();
    qd_rng r;
    qd_rng_init(&r, 606);
    int n = 7, qs1[1] = {3}, qs2[2] = {6, 1}, qs3[3] = {0, 5, 2};
    size_t D = 128, DD = D * D;
    qd_c *rho = malloc(sizeof(qd_c) * DD), *x[2], *K1 = rand_kraus(1, 3, &r), *K2 = rand_kraus(2, 5, &r),
         *K3 = rand_kraus(3, 2, &r);
    /* a random (non-physical, it does not matter here) Hermitian-free matrix */
    for (size_t i = 0; i < DD; i++)
        rho[i] = qd_rng_cnormal(&r);
    size_t N = 600, dim = 128;
    qd_c *E0 = malloc(sizeof(qd_c) * dim * N), *E[2];
    for (size_t j = 0; j < N; j++)
        ref_random_vec(E0 + j * dim, dim, &r);
    size_t *br[2];
    for (int t = 0; t < 2; t++) {
        qd_set_threads(t + 1);
        x[t] = malloc(sizeof(qd_c) * DD);
        memcpy(x[t], rho, sizeof(qd_c) * DD);
        qd_err e;
        qd_channel_apply_dm(x[t], n, qs1, 1, K1, 3, NULL, QD_CH_SUPEROP, &e);
        qd_channel_apply_dm(x[t], n, qs2, 2, K2, 5, NULL, QD_CH_KRAUS, &e);
        qd_channel_apply_dm(x[t], n, qs2, 2, K2, 5, NULL, QD_CH_SUPEROP, &e);
        qd_channel_apply_dm(x[t], n, qs3, 3, K3, 2, NULL, QD_CH_AUTO, &e);
        qd_depol_apply_dm(x[t], n, qs3, 3, 0.3, &e);
        qd_depol_apply_dm(x[t], n, qs1, 1, 0.2, &e);
        E[t] = malloc(sizeof(qd_c) * dim * N);
        br[t] = malloc(sizeof(size_t) * N);
        memcpy(E[t], E0, sizeof(qd_c) * dim * N);
        qd_rng base;
        qd_rng_init(&base, 31);
        qd_channel_apply_traj(E[t], n, N, qs3, 3, K3, 2, &base, br[t], &e);
        qd_depol_apply_traj(E[t], n, N, qs2, 2, 0.5, &base, NULL, &e);
    }
    qd_set_threads(t0);
    CHECK(memcmp(x[0], x[1], sizeof(qd_c) * DD) == 0, "density matrix: 1 and 2 threads bitwise equal");
    CHECK(memcmp(E[0], E[1], sizeof(qd_c) * dim * N) == 0 && memcmp(br[0], br[1], sizeof(size_t) * N) == 0,
          "trajectories: 1 and 2 threads bitwise equal");
    for (int t = 0; t < 2; t++) {
        free(x[t]);
        free(E[t]);
        free(br[t]);
    }
    free(rho);
    free(K1);
    free(K2);
    free(K3);
    free(E0);
}
