/* test_dist.c — the distributed state vector (dist_state.c) in one process (rank 0 of 1, no
 * rank qubit: the MPI build's test_core runs before MPI_Init, the default build has no MPI)
 * against the naive dense reference: every gate of the registry on random qubits, P(q = 1),
 * Z strings, the inner product, sampling and the Walsh–Hadamard transform. The exchanges
 * on rank qubits are tested under mpirun (tests/mpi). */
#include "harness.h"
#include "qd_dist.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

QD_TEST(dist_state_one_rank_gates)
{
    int n = 6;
    size_t D = (size_t)1 << n, ng;
    qd_dstate s;
    qd_err e;
    CHECK(qd_dstate_new(&s, n, &e) == QD_OK, "new: %s", e.msg);
    CHECK(s.k == 0 && s.nloc == D && s.buf == NULL, "one rank: no rank qubit, no buffer");
    qd_c *ref = calloc(D, sizeof *ref), *M = malloc(D * D * sizeof *M), *y = malloc(D * sizeof *y);
    ref[0] = 1;
    qd_rng r;
    qd_rng_init(&r, 5);
    const qd_gate_info *g = qd_gate_list(&ng);
    for (size_t i = 0; i < ng; i++) {
        int qs[3];
        double p[3];
        for (int j = 0; j < g[i].nqubits; j++) {
            int again;
            do {
                qs[j] = (int)(qd_rng_u64(&r) % (uint64_t)n);
                again = 0;
                for (int t = 0; t < j; t++)
                    again |= qs[t] == qs[j];
            } while (again);
        }
        for (int j = 0; j < g[i].nparams; j++)
            p[j] = 6 * qd_rng_uniform(&r) - 3;
        CHECK(qd_dstate_gate(&s, &g[i], qs, p, &e) == QD_OK, "%s: %s", g[i].name, e.msg);
        qd_c m[64];
        qd_gate_matrix(&g[i], p, m);
        ref_full_operator(n, qs, g[i].nqubits, m, M);
        ref_matvec(M, D, ref, y);
        memcpy(ref, y, D * sizeof *y);
        CHECK(ref_maxdiff(s.a, ref, D) < 1e-12, "%s against the dense reference", g[i].name);
    }
    for (int q = 0; q < n; q++) {
        double p1, want = 0;
        for (size_t i = 0; i < D; i++)
            if ((i >> (n - 1 - q)) & 1)
                want += creal(ref[i] * conj(ref[i]));
        CHECK(qd_dstate_prob1(&s, q, &p1, &e) == QD_OK, "prob1");
        CHECK_NEAR(p1, want, 1e-13, "prob1");
    }
    int zq[2] = {1, 4};
    double z, want = 0;
    for (size_t i = 0; i < D; i++)
        want += (((i >> (n - 2)) ^ (i >> (n - 5))) & 1 ? -1 : 1) * creal(ref[i] * conj(ref[i]));
    CHECK(qd_dstate_expect_z(&s, zq, 2, &z, &e) == QD_OK, "expect_z");
    CHECK_NEAR(z, want, 1e-13, "<Z1 Z4>");
    qd_c ip;
    CHECK(qd_dstate_inner(&s, &s, &ip, &e) == QD_OK, "inner");
    CHECK_NEAR(creal(ip), 1, 1e-13, "norm");
    size_t idx;
    double u = 0.37, c = 0;
    size_t wanti = D - 1;
    for (size_t i = 0; i < D; i++) {
        c += creal(ref[i] * conj(ref[i]));
        if (u < c) {
            wanti = i;
            break;
        }
    }
    CHECK(qd_dstate_sample(&s, u, &idx, &e) == QD_OK && idx == wanti, "sample %zu vs %zu",
          idx, wanti);
    qd_dstate_free(&s);
    free(ref);
    free(M);
    free(y);
}

QD_TEST(dist_fwht_one_rank)
{
    int n = 5;
    size_t D = (size_t)1 << n;
    double x[32], want[32];
    qd_err e;
    for (size_t i = 0; i < D; i++)
        x[i] = sin(1.0 + (double)i);
    for (size_t a = 0; a < D; a++) {
        want[a] = 0;
        for (size_t i = 0; i < D; i++)
            want[a] += (__builtin_popcountll(a & i) & 1 ? -1 : 1) * x[i];
    }
    CHECK(qd_dist_fwht(x, n, 0, NULL, &e) == QD_OK, "fwht");
    double worst = 0;
    for (size_t a = 0; a < D; a++)
        worst = fmax(worst, fabs(x[a] - want[a]));
    CHECK(worst < 1e-12, "Walsh-Hadamard against the naive sum: %g", worst);
}

QD_TEST(dist_errors_one_rank)
{
    qd_dstate s;
    qd_err e;
    CHECK(qd_dstate_new(&s, 2, &e) == QD_EARG, "too few qubits");
    CHECK(qd_dstate_new(&s, 59, &e) == QD_ENOMEM, "too big: %s", e.msg);
    CHECK(qd_dstate_new(&s, 63, &e) == QD_EARG, "beyond the qubit limit");
    double x = 1;
    CHECK(qd_dist_allreduce(&x, 1, '?', &e) == QD_EARG, "unknown reduction");
    CHECK(qd_dstate_new(&s, 4, &e) == QD_OK, "new");
    const qd_gate_info *h = qd_gate_lookup("h");
    int bad = 4;
    CHECK(qd_dstate_gate(&s, h, &bad, NULL, &e) == QD_EARG, "qubit out of range");
    CHECK(qd_dstate_prob1(&s, -1, &x, &e) == QD_EARG, "prob1 out of range");
    qd_dstate_free(&s);
    qd_dstate_free(&s);   /* idempotent */
}
