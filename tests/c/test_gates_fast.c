/* test_gates_fast.c — the performance paths of gates.c that the small-register tests in
 * test_gates.c do not reach:
 *  - the software-prefetched loops of the 1-qubit dense and diagonal kernels, taken only
 *    for registers of >= 2^17 amplitudes (every target bit of an 18-qubit register: blocks
 *    prefetched in block order, long runs per stream, bits 0-1 inside units), the
 *    controlled gates that share the dense body, and the dense 4x4 body;
 *  - the per-member 1-qubit path for small members (rx ry rz p u with one angle per
 *    member, qd_k_1q_batch), including its vectorised sin/cos with angles beyond the
 *    range it reduces itself (handed to libm) and member counts that are not a multiple
 *    of its chunk;
 *  - shared-angle gates on ensembles of small members, which are split over threads at
 *    member boundaries (odd member counts, 2..10 qubits, every kernel kind);
 * each against a per-amplitude reference, and bitwise identical for 1 and 2 threads. */
#include "harness.h"
#include <math.h>
#include <string.h>

#define TOL 1e-12

/* y = m (2x2, column-major) on qubit q of one vector, one amplitude at a time; with a
 * control qubit c >= 0 only where that bit is 1 */
static void ref_1q(int nq, int c, int q, const qd_c *m, const qd_c *x, qd_c *y)
{
    size_t d = (size_t)1 << nq, tb = (size_t)1 << (nq - 1 - q);
    for (size_t i = 0; i < d; i++) {
        if (c >= 0 && !((i >> (nq - 1 - c)) & 1)) {
            y[i] = x[i];
            continue;
        }
        int v = (i & tb) != 0;
        size_t i0 = i & ~tb, i1 = i | tb;
        y[i] = m[v] * x[i0] + m[v + 2] * x[i1];
    }
}

/* y = m (2^k x 2^k, qs[0] = MSB of its index) on qubits qs of one vector, per amplitude */
static void ref_kq(int nq, const int *qs, int k, const qd_c *m, const qd_c *x, qd_c *y)
{
    size_t d = (size_t)1 << nq, dk = (size_t)1 << k;
    for (size_t i = 0; i < d; i++) {
        size_t li = 0, rest = i;
        for (int j = 0; j < k; j++) {
            int bit = nq - 1 - qs[j];
            li = (li << 1) | ((i >> bit) & 1);
            rest &= ~((size_t)1 << bit);
        }
        qd_c s = 0;
        for (size_t l = 0; l < dk; l++) {
            size_t src = rest;
            for (int j = 0; j < k; j++)
                if ((l >> (k - 1 - j)) & 1)
                    src |= (size_t)1 << (nq - 1 - qs[j]);
            s += m[li + l * dk] * x[src];
        }
        y[i] = s;
    }
}

static void fill(qd_c *x, size_t d, qd_rng *r)
{
    for (size_t i = 0; i < d; i++)
        x[i] = qd_rng_cnormal(r);
}

QD_TEST(gates_fast_big_register)
{
    enum { NQ = 18 };
    const size_t d = (size_t)1 << NQ;
    int saved = qd_get_threads();
    qd_rng r;
    qd_rng_init(&r, 3131);
    qd_c *x = qd_malloc(sizeof(qd_c) * d), *y1 = qd_malloc(sizeof(qd_c) * d);
    qd_c *y2 = qd_malloc(sizeof(qd_c) * d), *want = qd_malloc(sizeof(qd_c) * d);
    fill(x, d, &r);
    const char *names[] = {"h", "ry", "rz", "u"};
    double p[3] = {0.7, -1.3, 2.1};
    int bad_ref = 0, bad_thr = 0;
    double worst = 0;
    for (size_t gi = 0; gi < sizeof names / sizeof names[0]; gi++) {
        const qd_gate_info *g = qd_gate_lookup(names[gi]);
        qd_c m[4];
        qd_gate_matrix(g, p, m);
        for (int q = 0; q < NQ; q++) {
            memcpy(y1, x, sizeof(qd_c) * d);
            memcpy(y2, x, sizeof(qd_c) * d);
            qd_set_threads(1);
            qd_apply_gate(y1, NQ, 1, g, &q, p, 0);
            qd_set_threads(2);
            qd_apply_gate(y2, NQ, 1, g, &q, p, 0);
            ref_1q(NQ, -1, q, m, x, want);
            double err = ref_maxdiff(y1, want, d);
            worst = fmax(worst, err);
            if (!(err < TOL)) {
                bad_ref++;
                CHECK(0, "%s on qubit %d of 18: err %g", names[gi], q, err);
            }
            if (memcmp(y1, y2, sizeof(qd_c) * d) != 0) {
                bad_thr++;
                CHECK(0, "%s on qubit %d of 18: 1 and 2 threads differ", names[gi], q);
            }
        }
    }
    CHECK(bad_ref == 0, "h, ry, rz, u on every qubit of 18 vs reference (worst err %g)", worst);
    CHECK(bad_thr == 0, "h, ry, rz, u on every qubit of 18: 1 and 2 threads agree bitwise");
    /* controlled gates share the dense body (prefetch only where the layout allows) */
    static const int pairs[][2] = {{0, 17}, {17, 0}, {9, 8}, {8, 9}, {3, 12}, {16, 5}};
    const qd_gate_info *cry = qd_gate_lookup("cry");
    qd_c m4[16], m[4];
    qd_gate_matrix(cry, p, m4);
    m[0] = m4[2 + 4 * 2]; m[1] = m4[3 + 4 * 2]; m[2] = m4[2 + 4 * 3]; m[3] = m4[3 + 4 * 3];
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        memcpy(y1, x, sizeof(qd_c) * d);
        memcpy(y2, x, sizeof(qd_c) * d);
        qd_set_threads(1);
        qd_apply_gate(y1, NQ, 1, cry, pairs[k], p, 0);
        qd_set_threads(2);
        qd_apply_gate(y2, NQ, 1, cry, pairs[k], p, 0);
        ref_1q(NQ, pairs[k][0], pairs[k][1], m, x, want);
        double err = ref_maxdiff(y1, want, d);
        CHECK(err < TOL, "cry(%d,%d) on 18 qubits vs reference: err %g", pairs[k][0],
              pairs[k][1], err);
        CHECK(memcmp(y1, y2, sizeof(qd_c) * d) == 0, "cry(%d,%d) on 18 qubits: threads agree",
              pairs[k][0], pairs[k][1]);
    }
    /* dense 4x4 (prefetched per stream on long runs) */
    static const int pairs2[][2] = {{0, 1}, {8, 9}, {9, 8}, {17, 16}, {3, 12}, {16, 2}};
    qd_c u[16];
    for (int i = 0; i < 16; i++)
        u[i] = qd_rng_cnormal(&r);
    for (size_t k = 0; k < sizeof pairs2 / sizeof pairs2[0]; k++) {
        memcpy(y1, x, sizeof(qd_c) * d);
        memcpy(y2, x, sizeof(qd_c) * d);
        qd_set_threads(1);
        qd_status s1 = qd_apply_matrix(y1, NQ, 1, pairs2[k], 2, u, NULL);
        qd_set_threads(2);
        qd_status s2 = qd_apply_matrix(y2, NQ, 1, pairs2[k], 2, u, NULL);
        ref_kq(NQ, pairs2[k], 2, u, x, want);
        double err = ref_maxdiff(y1, want, d);
        CHECK(s1 == QD_OK && s2 == QD_OK && err < TOL,
              "4x4 matrix on (%d,%d) of 18 qubits vs reference: err %g", pairs2[k][0],
              pairs2[k][1], err);
        CHECK(memcmp(y1, y2, sizeof(qd_c) * d) == 0, "4x4 matrix on (%d,%d) of 18 qubits: "
              "threads agree", pairs2[k][0], pairs2[k][1]);
    }
    qd_set_threads(saved);
    qd_free(x); qd_free(y1); qd_free(y2); qd_free(want);
}

QD_TEST(gates_fast_per_member)
{
    int saved = qd_get_threads();
    qd_rng r;
    qd_rng_init(&r, 77);
    /* (qubits, members): chunks of 64 members, a partial last chunk, 2..10 qubits */
    static const int shapes[][2] = {{2, 5}, {3, 64}, {5, 130}, {8, 100}, {10, 67}};
    const char *names[] = {"rx", "ry", "rz", "p", "u"};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int nq = shapes[si][0], cnt = shapes[si][1];
        const size_t d = (size_t)1 << nq, tot = d * (size_t)cnt;
        qd_c *x = qd_malloc(sizeof(qd_c) * tot), *y1 = qd_malloc(sizeof(qd_c) * tot);
        qd_c *y2 = qd_malloc(sizeof(qd_c) * tot), *want = qd_malloc(sizeof(qd_c) * d);
        double *p = qd_malloc(sizeof(double) * 3 * (size_t)cnt);
        qd_c *ms = qd_malloc(sizeof(qd_c) * 4 * (size_t)cnt);
        fill(x, tot, &r);
        for (int j = 0; j < 3 * cnt; j++) {
            /* mostly ordinary angles; some beyond 2^19 (libm) and some exact multiples
             * of pi/2, the hard cases of an argument reduction */
            double u = qd_rng_uniform(&r);
            p[j] = u < 0.1 ? (qd_rng_uniform(&r) - 0.5) * 4e7
                 : u < 0.2 ? (double)(j % 9 - 4) * M_PI
                 : (qd_rng_uniform(&r) - 0.5) * 40.0;
        }
        for (int j = 0; j < 4 * cnt; j++)
            ms[j] = qd_rng_cnormal(&r);
        int bad_ref = 0, bad_thr = 0;
        double worst = 0;
        for (size_t gi = 0; gi <= sizeof names / sizeof names[0]; gi++) {
            const qd_gate_info *g = gi < 5 ? qd_gate_lookup(names[gi]) : NULL;
            for (int q = 0; q < nq; q++) {
                memcpy(y1, x, sizeof(qd_c) * tot);
                memcpy(y2, x, sizeof(qd_c) * tot);
                qd_set_threads(1);
                if (g)
                    qd_apply_gate(y1, nq, (size_t)cnt, g, &q, p, 1);
                else
                    qd_k_1q_batch(y1, nq, (size_t)cnt, q, ms);
                qd_set_threads(2);
                if (g)
                    qd_apply_gate(y2, nq, (size_t)cnt, g, &q, p, 1);
                else
                    qd_k_1q_batch(y2, nq, (size_t)cnt, q, ms);
                if (memcmp(y1, y2, sizeof(qd_c) * tot) != 0)
                    bad_thr++;
                for (int j = 0; j < cnt; j++) {
                    qd_c m[4];
                    if (g)
                        qd_gate_matrix(g, p + (size_t)j * (size_t)g->nparams, m);
                    else
                        memcpy(m, ms + 4 * j, sizeof m);
                    ref_1q(nq, -1, q, m, x + (size_t)j * d, want);
                    double err = ref_maxdiff(y1 + (size_t)j * d, want, d);
                    worst = fmax(worst, err);
                    if (!(err < TOL))
                        bad_ref++;
                }
            }
        }
        CHECK(bad_ref == 0, "per-member rx ry rz p u and 1q_batch, %d members x %d qubits, "
              "every qubit vs reference: %d bad (worst err %g)", cnt, nq, bad_ref, worst);
        CHECK(bad_thr == 0, "per-member gates, %d members x %d qubits: 1 and 2 threads agree "
              "bitwise (%d differ)", cnt, nq, bad_thr);
        qd_free(x); qd_free(y1); qd_free(y2); qd_free(want); qd_free(p); qd_free(ms);
    }
    qd_set_threads(saved);
}

QD_TEST(gates_fast_ensemble_split)
{
    int saved = qd_get_threads();
    qd_rng r;
    qd_rng_init(&r, 505);
    /* (qubits, members), each >= 2^14 amplitudes in all so that threads are used */
    static const int shapes[][2] = {{2, 4099}, {3, 2049}, {5, 601}, {8, 101}, {10, 17}};
    const char *names[] = {"h", "x", "ry", "rz", "t", "cx", "cz", "cry", "rzz", "rxx", "swap",
                           "ccx", "cswap"};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int nq = shapes[si][0], cnt = shapes[si][1];
        const size_t d = (size_t)1 << nq, tot = d * (size_t)cnt;
        qd_c *x = qd_malloc(sizeof(qd_c) * tot), *y1 = qd_malloc(sizeof(qd_c) * tot);
        qd_c *y2 = qd_malloc(sizeof(qd_c) * tot), *want = qd_malloc(sizeof(qd_c) * d);
        fill(x, tot, &r);
        int bad_ref = 0, bad_thr = 0, runs = 0;
        double worst = 0;
        for (size_t gi = 0; gi < sizeof names / sizeof names[0]; gi++) {
            const qd_gate_info *g = qd_gate_lookup(names[gi]);
            if (g->nqubits > nq)
                continue;
            double p[3] = {0.9, -0.4, 1.6};
            qd_c m[64];
            qd_gate_matrix(g, p, m);
            /* a few qubit tuples: low, high, mixed, reversed */
            int tuples[4][3] = {{nq - 1, nq - 2, nq - 3}, {0, 1, 2}, {1, nq - 1, 0},
                                {nq - 1, 0, nq / 2}};
            for (int ti = 0; ti < 4; ti++) {
                int *qs = tuples[ti], ok = 1;
                for (int i = 0; i < g->nqubits; i++)
                    for (int j = 0; j < i; j++)
                        ok &= qs[i] != qs[j] && qs[i] >= 0;
                if (!ok)
                    continue;
                memcpy(y1, x, sizeof(qd_c) * tot);
                memcpy(y2, x, sizeof(qd_c) * tot);
                qd_set_threads(1);
                qd_apply_gate(y1, nq, (size_t)cnt, g, qs, p, 0);
                qd_set_threads(2);
                qd_apply_gate(y2, nq, (size_t)cnt, g, qs, p, 0);
                runs++;
                if (memcmp(y1, y2, sizeof(qd_c) * tot) != 0)
                    bad_thr++;
                for (int j = 0; j < cnt; j += 1 + cnt / 23) {
                    ref_kq(nq, qs, g->nqubits, m, x + (size_t)j * d, want);
                    double err = ref_maxdiff(y2 + (size_t)j * d, want, d);
                    worst = fmax(worst, err);
                    if (!(err < TOL))
                        bad_ref++;
                }
            }
        }
        CHECK(bad_ref == 0, "shared gates on %d members x %d qubits (%d cases) vs reference: "
              "%d bad (worst err %g)", cnt, nq, runs, bad_ref, worst);
        CHECK(bad_thr == 0, "shared gates on %d members x %d qubits: 1 and 2 threads agree "
              "bitwise (%d of %d differ)", cnt, nq, bad_thr, runs);
        qd_free(x); qd_free(y1); qd_free(y2); qd_free(want);
    }
    qd_set_threads(saved);
}
