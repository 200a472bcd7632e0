/* test_circuit.c — qd_circuit (circuit.c) against naive references: running a random
 * circuit equals applying its gates one by one with qd_apply_gate and equals the dense
 * product of the gate operators; unitary() columns equal runs on basis states; the inverse
 * undoes the circuit; density-matrix runs equal U rho U^dagger and, with measurement and
 * discard, the outcome-weighted mixture of pure-state branches; resets; bitwise
 * thread-count invariance of sampled runs. Also exports tc_random_circuit for
 * test_adjoint.c. */
#include "harness.h"
#include "qd_circuit.h"
#include <math.h>
#include <string.h>

#define TOL 1e-11

/* random 2^k x 2^k unitary (QR of a complex Gaussian matrix) */
void tc_random_unitary(int k, qd_rng *r, qd_c *U)
{
    size_t d = (size_t)1 << k;
    qd_c rd[16];
    for (size_t i = 0; i < d * d; i++)
        U[i] = qd_rng_cnormal(r);
    qd_err e;
    qd_la_qr(U, d, d, rd, &e);
}

static void rand_qubits(int n, int k, qd_rng *r, int *qs)
{
    for (int i = 0; i < k; i++) {
        int ok;
        do {
            qs[i] = (int)(qd_rng_uniform(r) * n);
            ok = 1;
            for (int j = 0; j < i; j++)
                ok &= qs[j] != qs[i];
        } while (!ok);
    }
}

/* Random circuit on n qubits: every gate of the table whose size fits appears at least
 * once (parametric ones with slot-bound angles), then `extra` random ops; angles are bound
 * to one of nslots shared slots with random scale/offset, or fixed. with_matrix adds
 * arbitrary 2-qubit unitaries. */
void tc_random_circuit(qd_circuit *c, int n, int extra, int nslots, qd_rng *r, int with_matrix)
{
    qd_err e;
    qd_circuit_init(c, n);
    qd_circuit_ensure_slots(c, nslots, &e);
    size_t ng;
    const qd_gate_info *tab = qd_gate_list(&ng);
    for (size_t t = 0; t < ng + (size_t)extra; t++) {
        const qd_gate_info *g = &tab[t < ng ? t : (size_t)(qd_rng_uniform(r) * ng)];
        if (g->nqubits > n)
            continue;
        int qs[3];
        if (with_matrix && t >= ng && qd_rng_uniform(r) < 0.15 && n >= 2) {
            qd_c U[16];
            tc_random_unitary(2, r, U);
            rand_qubits(n, 2, r, qs);
            qd_circuit_add_matrix(c, qs, 2, U, "W", &e);
            continue;
        }
        rand_qubits(n, g->nqubits, r, qs);
        int slot[3];
        double sc[3], off[3];
        for (int i = 0; i < g->nparams; i++) {
            int fixed = t >= ng && qd_rng_uniform(r) < 0.25;
            slot[i] = fixed ? -1 : (int)(qd_rng_uniform(r) * nslots);
            double u = qd_rng_uniform(r);
            sc[i] = u < 0.5 ? 1.0 : u < 0.7 ? -0.5 : 2 * qd_rng_uniform(r) - 1;
            off[i] = qd_rng_uniform(r) < 0.5 ? 0 : 2 * qd_rng_uniform(r) - 1;
        }
        qd_circuit_add_gate(c, g, qs, slot, sc, off, &e);
    }
}

static void rand_theta(double *th, int m, qd_rng *r)
{
    for (int i = 0; i < m; i++)
        th[i] = (2 * qd_rng_uniform(r) - 1) * M_PI;
}

/* the op's full matrix (gate or arbitrary), for references */
static void op_matrix(const qd_circuit *c, size_t o, const double *th, qd_c *M)
{
    const qd_op *op = &c->ops[o];
    if (op->kind == QD_OP_MATRIX) {
        size_t dk = (size_t)1 << op->k;
        memcpy(M, op->m, sizeof(qd_c) * dk * dk);
        return;
    }
    double ang[3];
    qd_op_angles(c, o, th, NULL, ang);
    qd_gate_matrix(op->g, ang, M);
}

/* dense reference unitary: product of full operators */
static void ref_unitary(const qd_circuit *c, const double *th, qd_c *U)
{
    size_t d = (size_t)1 << c->n;
    qd_c *F = qd_malloc(sizeof(qd_c) * d * d), *T = qd_malloc(sizeof(qd_c) * d * d);
    memset(U, 0, sizeof(qd_c) * d * d);
    for (size_t i = 0; i < d; i++)
        U[i + i * d] = 1;
    for (size_t o = 0; o < c->nops; o++) {
        qd_c M[64];
        op_matrix(c, o, th, M);
        ref_full_operator(c->n, c->ops[o].qs, c->ops[o].k, M, F);
        ref_matmul(F, U, d, T);
        memcpy(U, T, sizeof(qd_c) * d * d);
    }
    qd_free(F);
    qd_free(T);
}

QD_TEST(circuit_run_matches_gate_by_gate)
{
    qd_rng r;
    qd_rng_init(&r, 101);
    for (int n = 1; n <= 5; n++) {
        qd_circuit c;
        tc_random_circuit(&c, n, 30, 4, &r, 1);
        double th[4];
        rand_theta(th, 4, &r);
        size_t N = 5, d = (size_t)1 << n;
        qd_c *a = qd_malloc(sizeof(qd_c) * d * N), *b = qd_malloc(sizeof(qd_c) * d * N);
        for (size_t j = 0; j < N; j++)
            ref_random_vec(a + j * d, d, &r);
        memcpy(b, a, sizeof(qd_c) * d * N);
        qd_err e;
        CHECK(qd_circuit_run_vec(&c, th, a, N, NULL, NULL, &e) == QD_OK, "run n=%d", n);
        /* by hand: each op with qd_apply_gate / qd_apply_matrix, member by member */
        for (size_t j = 0; j < N; j++)
            for (size_t o = 0; o < c.nops; o++) {
                const qd_op *op = &c.ops[o];
                if (op->kind == QD_OP_GATE) {
                    double ang[3];
                    qd_op_angles(&c, o, th, NULL, ang);
                    for (int i = 0; i < op->g->nparams; i++) {
                        double want = op->offset[i] + (op->slot[i] >= 0 ? op->scale[i] * th[op->slot[i]] : 0);
                        CHECK(ang[i] == want, "angle of op %zu", o);
                    }
                    qd_apply_gate(b + j * d, n, 1, op->g, op->qs, ang, 0);
                } else {
                    qd_apply_matrix(b + j * d, n, 1, op->qs, op->k, op->m, &e);
                }
            }
        CHECK(ref_maxdiff(a, b, d * N) < TOL, "run vs gate-by-gate n=%d: %g", n, ref_maxdiff(a, b, d * N));
        /* vs the dense operator product */
        qd_c *U = qd_malloc(sizeof(qd_c) * d * d), *U2 = qd_malloc(sizeof(qd_c) * d * d);
        ref_unitary(&c, th, U);
        CHECK(qd_circuit_unitary(&c, th, U2, &e) == QD_OK, "unitary");
        CHECK(ref_maxdiff(U, U2, d * d) < TOL, "unitary vs dense product n=%d: %g", n, ref_maxdiff(U, U2, d * d));
        /* columns = runs on basis states */
        qd_c *col = qd_malloc(sizeof(qd_c) * d);
        double md = 0;
        for (size_t j = 0; j < d; j++) {
            qd_state_basis(col, n, j);
            qd_circuit_run_vec(&c, th, col, 1, NULL, NULL, &e);
            double x = ref_maxdiff(col, U2 + j * d, d);
            md = x > md ? x : md;
        }
        CHECK(md < TOL, "unitary columns vs basis runs n=%d: %g", n, md);
        /* inverse: U^-1 U = I, and running c then c^-1 gives the input back */
        qd_circuit ci;
        CHECK(qd_circuit_inverse(&ci, &c, &e) == QD_OK, "inverse");
        qd_c *Ui = qd_malloc(sizeof(qd_c) * d * d), *P = qd_malloc(sizeof(qd_c) * d * d);
        qd_circuit_unitary(&ci, th, Ui, &e);
        ref_matmul(Ui, U2, d, P);
        double dev = 0;
        for (size_t i = 0; i < d; i++)
            for (size_t k = 0; k < d; k++)
                dev = fmax(dev, cabs(P[i + k * d] - (i == k ? 1.0 : 0.0)));
        CHECK(dev < TOL, "inverse * circuit = I (n=%d): %g", n, dev);
        memcpy(a, b, sizeof(qd_c) * d * N);
        qd_circuit_run_vec(&ci, th, a, N, NULL, NULL, &e);
        for (size_t j = 0; j < N; j++)
            for (size_t o = c.nops; o-- > 0;) {
                /* b is c(x): undo with inverse ops by hand as well */
                double ang[3];
                qd_op_angles(&c, o, th, NULL, ang);
                qd_circ_apply_op(&c, o, ang, b + j * d, 1, 1, &e);
            }
        CHECK(ref_maxdiff(a, b, d * N) < TOL, "inverse run n=%d", n);
        CHECK(c.nslots == 4 && ci.nslots == 4, "slots kept by inverse");
        /* density matrix: run_dm == U rho U^dagger */
        qd_c *rho = qd_malloc(sizeof(qd_c) * d * d), *T = qd_malloc(sizeof(qd_c) * d * d),
             *Ud = qd_malloc(sizeof(qd_c) * d * d), *R = qd_malloc(sizeof(qd_c) * d * d);
        ref_random_dm(rho, d, &r);
        ref_dagger(U, d, Ud);
        ref_matmul(U, rho, d, T);
        ref_matmul(T, Ud, d, R);
        CHECK(qd_circuit_run_dm(&c, th, rho, NULL, &e) == QD_OK, "run_dm");
        CHECK(ref_maxdiff(rho, R, d * d) < 1e-10, "dm run vs U rho U^dagger n=%d: %g", n, ref_maxdiff(rho, R, d * d));
        qd_free(rho); qd_free(T); qd_free(Ud); qd_free(R);
        qd_free(Ui); qd_free(P); qd_free(col); qd_free(U); qd_free(U2);
        qd_free(a); qd_free(b);
        qd_circuit_free(&ci);
        qd_circuit_free(&c);
    }
}

QD_TEST(circuit_build_errors)
{
    qd_circuit c;
    qd_err e;
    qd_circuit_init(&c, 3);
    const qd_gate_info *rx = qd_gate_lookup("rx"), *cx = qd_gate_lookup("cx");
    int qs[3] = {0, 0, 5}, slot = 0;
    double sc = 1, off = 0;
    CHECK(qd_circuit_add_gate(&c, cx, qs, NULL, NULL, NULL, &e) == QD_EARG &&
          strstr(e.msg, "distinct"), "repeated qubit: %s", e.msg);
    CHECK(qd_circuit_add_gate(&c, rx, qs + 2, &slot, &sc, &off, &e) == QD_EARG &&
          strstr(e.msg, "qubit index"), "qubit range: %s", e.msg);
    CHECK(qd_circuit_add_gate(&c, rx, qs, &slot, &sc, &off, &e) == QD_EARG &&
          strstr(e.msg, "slot"), "slot range: %s", e.msg);
    CHECK(qd_circuit_slot(&c, "a", 1, &e) == 0 && qd_circuit_slot(&c, "b", 1, &e) == 1 &&
          qd_circuit_slot(&c, "a", 1, &e) == 0 && qd_circuit_slot(&c, "zz", 0, &e) == -1 &&
          c.nslots == 2, "named slots");
    CHECK(qd_circuit_add_gate(&c, rx, qs, &slot, &sc, &off, &e) == QD_OK, "rx ok");
    int m0 = 0;
    CHECK(qd_circuit_add_measure(&c, &m0, 1, 1, &e) == QD_OK, "measure discard");
    CHECK(qd_circuit_add_gate(&c, rx, qs, &slot, &sc, &off, &e) == QD_EARG &&
          strstr(e.msg, "discarded"), "use after discard: %s", e.msg);
    int rest[2] = {1, 2};
    CHECK(qd_circuit_add_measure(&c, rest, 2, 1, &e) == QD_EARG, "cannot discard all");
    CHECK(qd_circuit_nout(&c, NULL) == 2, "nout");
    qd_circuit ci;
    CHECK(qd_circuit_inverse(&ci, &c, &e) == QD_EARG, "no inverse with measurement");
    qd_c U[64];
    CHECK(qd_circuit_unitary(&c, NULL, U, &e) == QD_EARG, "no unitary with measurement");
    qd_circuit_free(&c);
    qd_circuit_free(&c);   /* idempotent */
}

/* Measurement with discard: sampled outcomes follow the Born rule; a fixed-outcome run
 * gives P_m psi / sqrt(p) on the kept qubits; the density-matrix run equals the
 * outcome-weighted mixture of the pure branches (= Tr_aux of U rho U^dagger). */
QD_TEST(circuit_measure_discard_and_dm)
{
    qd_rng r;
    qd_rng_init(&r, 202);
    const int n = 4, na = 2;
    qd_circuit c;
    tc_random_circuit(&c, n, 20, 3, &r, 1);
    qd_err e;
    int anc[2] = {0, 2};
    qd_circuit_add_measure(&c, anc, na, 1, &e);
    int kept[4];
    CHECK(qd_circuit_nout(&c, kept) == 2 && kept[0] == 1 && kept[1] == 3, "kept qubits");
    double th[3];
    rand_theta(th, 3, &r);
    size_t d = 16, dout = 4, K = 4;
    qd_c x[16];
    ref_random_vec(x, d, &r);
    /* reference: psi = U x; p_m and branches by hand */
    qd_c U[256], y[16];
    qd_circuit cu;   /* c without its final measurement */
    qd_circuit_copy(&cu, &c, &e);
    cu.nops--;
    cu.nmeas = 0;
    cu.discarded = 0;
    ref_unitary(&cu, th, U);
    ref_matvec(U, d, x, y);
    qd_c mix[16] = {0};
    for (size_t m = 0; m < K; m++) {
        double p = 0;
        for (size_t i = 0; i < d; i++) {
            size_t b0 = (i >> 3) & 1, b2 = (i >> 1) & 1;
            if ((b0 << 1 | b2) == m)
                p += pow(cabs(y[i]), 2);
        }
        qd_c a[16], out[4];
        memcpy(a, x, sizeof a);
        size_t oc = m;
        double prob;
        qd_meas_ctl mc = {NULL, &oc, 1, 1, &prob};
        CHECK(qd_circuit_run_vec(&c, th, a, 1, &mc, NULL, &e) == QD_OK, "fixed outcome run");
        CHECK_NEAR(prob, p, 1e-12, "outcome probability");
        qd_circuit_extract_vec(&c, a, 1, out);
        double md = 0;
        for (size_t rr = 0; rr < dout; rr++) {
            size_t i = (m >> 1) << 3 | (rr >> 1) << 2 | (m & 1) << 1 | (rr & 1);
            md = fmax(md, cabs(out[rr] - y[i] / sqrt(p)));
        }
        CHECK(md < 1e-12, "post-measurement state m=%zu: %g", m, md);
        for (size_t i = 0; i < dout; i++)
            for (size_t k = 0; k < dout; k++)
                mix[i + k * dout] += p * out[i] * conj(out[k]);
    }
    /* density-matrix run with discard = mixture */
    qd_c rho[256], rout[16];
    qd_dm_from_state(x, n, rho);
    CHECK(qd_circuit_run_dm(&c, th, rho, NULL, &e) == QD_OK, "dm run");
    qd_circuit_extract_dm(&c, rho, rout);
    CHECK(ref_maxdiff(rout, mix, 16) < 1e-12, "dm discard = outcome mixture: %g", ref_maxdiff(rout, mix, 16));
    /* sampling: frequencies (N = 4000 members) near p_m; member k's outcome does not depend
     * on N (substreams) */
    size_t N = 4000;
    qd_c *E = qd_malloc(sizeof(qd_c) * d * N);
    size_t *oc = qd_malloc(sizeof(size_t) * N);
    double *pr = qd_malloc(sizeof(double) * N);
    for (size_t j = 0; j < N; j++)
        memcpy(E + j * d, x, sizeof x);
    qd_rng base;
    qd_rng_init(&base, 7);
    qd_meas_ctl mc = {&base, oc, 0, 0, pr};
    CHECK(qd_circuit_run_vec(&c, th, E, N, &mc, NULL, &e) == QD_OK, "sampled run");
    double cnt[4] = {0};
    for (size_t j = 0; j < N; j++)
        cnt[oc[j]] += 1;
    double chi = 0;
    for (size_t m = 0; m < K; m++) {
        double p = 0;
        for (size_t i = 0; i < d; i++)
            if ((((i >> 3) & 1) << 1 | ((i >> 1) & 1)) == m)
                p += pow(cabs(y[i]), 2);
        if (p > 1e-3)
            chi += pow(cnt[m] - N * p, 2) / (N * p);
    }
    CHECK(chi < 25, "Born-rule frequencies (chi^2 = %g, 3 dof)", chi);
    size_t oc5[5];
    qd_c E5[80];
    for (size_t j = 0; j < 5; j++)
        memcpy(E5 + j * d, x, sizeof x);
    qd_meas_ctl mc5 = {&base, oc5, 0, 0, NULL};
    qd_circuit_run_vec(&c, th, E5, 5, &mc5, NULL, &e);
    CHECK(memcmp(oc5, oc, sizeof oc5) == 0, "outcomes independent of batch size");
    CHECK(memcmp(E5, E, sizeof E5) == 0, "states independent of batch size");
    qd_free(E); qd_free(oc); qd_free(pr);
    qd_circuit_free(&cu);
    qd_circuit_free(&c);
}

QD_TEST(circuit_reset)
{
    qd_rng r;
    qd_rng_init(&r, 303);
    qd_circuit c;
    tc_random_circuit(&c, 3, 10, 2, &r, 0);
    qd_err e;
    int q1 = 1;
    qd_circuit_add_reset(&c, &q1, 1, &e);
    const qd_gate_info *h = qd_gate_lookup("h");
    qd_circuit_add_gate(&c, h, &q1, NULL, NULL, NULL, &e);
    double th[2];
    rand_theta(th, 2, &r);
    qd_c x[8], rho[64], mix[64] = {0};
    ref_random_vec(x, 8, &r);
    for (size_t m = 0; m < 2; m++) {
        qd_c a[8];
        memcpy(a, x, sizeof a);
        size_t oc = m;
        double p;
        qd_meas_ctl mc = {NULL, &oc, 1, 1, &p};
        qd_circuit_run_vec(&c, th, a, 1, &mc, NULL, &e);
        /* after reset + h, qubit 1 is |+>: amplitudes of bit 1 = 0 and 1 agree */
        double md = 0;
        for (size_t i = 0; i < 8; i++)
            if (!(i & 2))
                md = fmax(md, cabs(a[i] - a[i | 2]));
        CHECK(md < 1e-12, "reset then h gives |+> on qubit 1");
        for (size_t i = 0; i < 8; i++)
            for (size_t k = 0; k < 8; k++)
                mix[i + k * 8] += p * a[i] * conj(a[k]);
    }
    qd_dm_from_state(x, 3, rho);
    qd_circuit_run_dm(&c, th, rho, NULL, &e);
    CHECK(ref_maxdiff(rho, mix, 64) < 1e-12, "dm reset channel = mixture of reset branches");
    qd_circuit_free(&c);
}

QD_TEST(circuit_threads_bitwise)
{
    qd_rng r;
    qd_rng_init(&r, 404);
    qd_circuit c;
    tc_random_circuit(&c, 6, 30, 5, &r, 1);
    qd_err e;
    int a0 = 0;
    qd_circuit_add_measure(&c, &a0, 1, 1, &e);
    double th[5];
    rand_theta(th, 5, &r);
    size_t N = 600, d = 64;
    qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *a1 = qd_malloc(sizeof(qd_c) * d * N),
         *a2 = qd_malloc(sizeof(qd_c) * d * N);
    for (size_t j = 0; j < N; j++)
        ref_random_vec(x + j * d, d, &r);
    size_t *o1 = qd_malloc(sizeof(size_t) * N), *o2 = qd_malloc(sizeof(size_t) * N);
    qd_rng base;
    qd_rng_init(&base, 9);
    int t0 = qd_get_threads();
    memcpy(a1, x, sizeof(qd_c) * d * N);
    memcpy(a2, x, sizeof(qd_c) * d * N);
    qd_set_threads(1);
    qd_meas_ctl m1 = {&base, o1, 0, 0, NULL}, m2 = {&base, o2, 0, 0, NULL};
    qd_circuit_run_vec(&c, th, a1, N, &m1, NULL, &e);
    qd_set_threads(2);
    qd_circuit_run_vec(&c, th, a2, N, &m2, NULL, &e);
    qd_set_threads(t0);
    CHECK(memcmp(a1, a2, sizeof(qd_c) * d * N) == 0 && memcmp(o1, o2, sizeof(size_t) * N) == 0,
          "sampled run identical for 1 and 2 threads");
    qd_free(x); qd_free(a1); qd_free(a2); qd_free(o1); qd_free(o2);
    qd_circuit_free(&c);
}

/* the fused paths of a state-vector run: consecutive 1-qubit gates on one qubit as one 2x2
 * pass (qd_circ_run1q / qd_circ_fused_matrix), consecutive cz as one +-1 diagonal
 * (qd_circ_runcz / qd_circ_apply_czrun), against the dense product of the op matrices;
 * the run-length helpers themselves; and the unfused path above 10 qubits for cz */
QD_TEST(circuit_fused_runs_vs_dense)
{
    qd_rng r;
    qd_rng_init(&r, 777);
    static const char *g1[] = {"rx", "ry", "rz", "h", "s", "t", "sx", "x"};
    for (int n = 2; n <= 5; n++) {
        qd_circuit c;
        qd_circuit_init(&c, n);
        qd_err e;
        CHECK(qd_circuit_ensure_slots(&c, 3, &e) == QD_OK, "slots");
        for (int rep = 0; rep < 3; rep++) {
            int q = (int)(qd_rng_u64(&r) % (uint64_t)n), qs[1] = {q};
            for (int t = 0; t < 4; t++) {   /* a run of 4 one-qubit gates on qubit q */
                const qd_gate_info *g = qd_gate_lookup(g1[qd_rng_u64(&r) % 8]);
                int sl = (int)(qd_rng_u64(&r) % 3);
                double sc = 1.3, of = 0.2;
                qd_circuit_add_gate(&c, g, qs, g->nparams ? &sl : NULL, g->nparams ? &sc : NULL,
                                    g->nparams ? &of : NULL, &e);
            }
            for (int t = 0; t < 3 + rep; t++) {   /* a run of cz on random pairs */
                int pq[2];
                pq[0] = (int)(qd_rng_u64(&r) % (uint64_t)n);
                do
                    pq[1] = (int)(qd_rng_u64(&r) % (uint64_t)n);
                while (pq[1] == pq[0]);
                qd_circuit_add_gate(&c, qd_gate_lookup("cz"), pq, NULL, NULL, NULL, &e);
            }
        }
        CHECK(qd_circ_run1q(&c, 0) == 4 && qd_circ_run1q(&c, 3) == 1, "1q run lengths (n=%d)", n);
        CHECK(qd_circ_runcz(&c, 4, 1) == 3 && qd_circ_runcz(&c, 6, -1) == 3 &&
              qd_circ_runcz(&c, 3, 1) == 1, "cz run lengths (n=%d)", n);
        double th[3];
        rand_theta(th, 3, &r);
        size_t N = 3, d = (size_t)1 << n;
        qd_c *a = qd_malloc(sizeof(qd_c) * d * N), *U = qd_malloc(sizeof(qd_c) * d * d);
        qd_c *x = qd_malloc(sizeof(qd_c) * d * N);
        for (size_t j = 0; j < N; j++)
            ref_random_vec(x + j * d, d, &r);
        memcpy(a, x, sizeof(qd_c) * d * N);
        CHECK(qd_circuit_run_vec(&c, th, a, N, NULL, NULL, &e) == QD_OK, "run");
        ref_unitary(&c, th, U);
        double worst = 0;
        for (size_t j = 0; j < N; j++)
            for (size_t i = 0; i < d; i++) {
                qd_c s = 0;
                for (size_t k = 0; k < d; k++)
                    s += U[i + k * d] * x[j * d + k];
                worst = fmax(worst, cabs(s - a[j * d + i]));
            }
        CHECK(worst < 1e-13, "fused run = dense product (n=%d): %g", n, worst);
        qd_free(a);
        qd_free(U);
        qd_free(x);
        qd_circuit_free(&c);
    }
    qd_circuit big;
    qd_circuit_init(&big, 11);
    int p01[2] = {0, 1}, p12[2] = {1, 2};
    qd_err e;
    qd_circuit_add_gate(&big, qd_gate_lookup("cz"), p01, NULL, NULL, NULL, &e);
    qd_circuit_add_gate(&big, qd_gate_lookup("cz"), p12, NULL, NULL, NULL, &e);
    CHECK(qd_circ_runcz(&big, 0, 1) == 1, "no cz fusion above 10 qubits");
    qd_circuit_free(&big);
}

/* ------------------------------------------------------------------ gate fusion
 * The forward run fuses gates (1-qubit gates per qubit into one 2x2, commuted past gates on
 * other qubits; diagonal gates over <= 10 qubits into one table pass). Checked against the
 * gate-by-gate run: random circuits with every gate type, diagonal-heavy stretches,
 * matrices, measurement and reset barriers and parameter shifts, on states and ensembles
 * of every size 1..9 qubits; bitwise independent of the member count and of threads. */
static void add_g(qd_circuit *c, const char *name, const int *qs, int slot, double off)
{
    qd_err e;
    const qd_gate_info *g = qd_gate_lookup(name);
    int sl[3] = {slot, slot, slot};
    double sc[3] = {1, -0.5, 1}, of[3] = {off, 0.1, -0.3};
    qd_circuit_add_gate(c, g, qs, g->nparams ? sl : NULL, g->nparams ? sc : NULL,
                        g->nparams ? of : NULL, &e);
}

static void fusion_circuit(qd_circuit *c, int n, qd_rng *r, int meas)
{
    static const char *dg1[] = {"rz", "p", "s", "sdg", "t", "tdg", "z", "id"};
    static const char *dg2[] = {"cz", "cp", "crz", "rzz"};
    static const char *nd1[] = {"rx", "ry", "h", "sx", "x", "y", "u"};
    qd_err e;
    tc_random_circuit(c, n, 25, 4, r, 1);
    for (int blk = 0; blk < 6; blk++) {
        for (int t = 0; t < 3 * n + 4; t++) {   /* layers of rotations and diagonal runs */
            double u = qd_rng_uniform(r);
            int qs[3];
            int sl = (int)(qd_rng_u64(r) % 5) - 1;   /* -1: fixed angle */
            double off = 2 * qd_rng_uniform(r) - 1;
            if (u < 0.3) {
                rand_qubits(n, 1, r, qs);
                add_g(c, dg1[qd_rng_u64(r) % 8], qs, sl, off);
            } else if (u < 0.6) {
                rand_qubits(n, 1, r, qs);
                add_g(c, nd1[qd_rng_u64(r) % 7], qs, sl, off);
            } else if (n >= 2 && u < 0.9) {
                rand_qubits(n, 2, r, qs);
                add_g(c, dg2[qd_rng_u64(r) % 4], qs, sl, off);
            } else if (n >= 3 && u < 0.93) {
                rand_qubits(n, 3, r, qs);
                add_g(c, "ccx", qs, -1, 0);
            } else if (n >= 2) {
                rand_qubits(n, 2, r, qs);
                add_g(c, u < 0.96 ? "cx" : "rxx", qs, sl, off);
            }
        }
        if (meas && blk % 2 == 1) {
            int qs[2], k = n >= 2 && qd_rng_uniform(r) < 0.5 ? 2 : 1;
            rand_qubits(n, k, r, qs);
            if (blk == 3)
                qd_circuit_add_reset(c, qs, k, &e);
            else
                qd_circuit_add_measure(c, qs, k, 0, &e);
        }
    }
}

QD_TEST(circuit_fusion_vs_unfused)
{
    qd_rng r;
    qd_rng_init(&r, 2026);
    for (int n = 1; n <= 11; n++) {   /* 11: above the sweep mode (kernel per pass) */
        if (n == 10)
            continue;
        for (int rep = 0; rep < (n == 11 ? 2 : 3); rep++) {
            int meas = rep > 0;
            qd_circuit c;
            fusion_circuit(&c, n, &r, meas);
            qd_err e;
            double th[4];
            rand_theta(th, 4, &r);
            size_t d = (size_t)1 << n, N = rep == 2 ? (n >= 6 ? 13 : 5) : 1, nm = (size_t)c.nmeas;
            qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *a = qd_malloc(sizeof(qd_c) * d * N),
                 *b = qd_malloc(sizeof(qd_c) * d * N), *s = qd_malloc(sizeof(qd_c) * d);
            size_t *oc = qd_malloc(sizeof(size_t) * (N * nm + 1));
            double *pa = qd_malloc(sizeof(double) * N), *pb = qd_malloc(sizeof(double) * N);
            for (size_t j = 0; j < N; j++)
                ref_random_vec(x + j * d, d, &r);
            qd_rng base;
            qd_rng_init(&base, 5 + (uint64_t)n);
            /* fused, outcomes sampled; then the unfused run with those outcomes fixed */
            memcpy(a, x, sizeof(qd_c) * d * N);
            qd_meas_ctl ma = {&base, oc, 0, 0, pa}, mb = {NULL, oc, 1, 1, pb};
            CHECK(qd_circuit_run_vec(&c, th, a, N, &ma, NULL, &e) == QD_OK, "fused run (n=%d)", n);
            memcpy(b, x, sizeof(qd_c) * d * N);
            CHECK(qd_circuit_run_vec_unfused(&c, th, b, N, &mb, NULL, &e) == QD_OK,
                  "unfused run (n=%d)", n);
            double worst = 0, wp = 0;
            for (size_t i = 0; i < d * N; i++)
                worst = fmax(worst, cabs(a[i] - b[i]));
            for (size_t j = 0; j < N; j++)
                wp = fmax(wp, fabs(pa[j] - pb[j]));
            CHECK(worst <= 1e-13 && wp <= 1e-13, "fused = gate by gate (n=%d, N=%zu, %zu meas): %g, p %g",
                  n, N, nm, worst, wp);
            /* member j alone (fixed outcomes) gives bitwise the same as inside the ensemble.
             * Not for n = 2: there the existing gate kernels already differ between 4 and
             * 20 amplitudes (the gate-by-gate run shows the same ~1e-16 differences). */
            int same = 1;
            for (size_t j = 0; j < N && n != 2; j++) {
                memcpy(s, x + j * d, sizeof(qd_c) * d);
                qd_meas_ctl m1 = {NULL, oc + j * nm, 1, 1, NULL};
                qd_circuit_run_vec(&c, th, s, 1, &m1, NULL, &e);
                same &= memcmp(s, a + j * d, sizeof(qd_c) * d) == 0;
            }
            CHECK(same, "fused run independent of the member count (n=%d)", n);
            /* a parameter shift goes through the fusion too */
            if (c.nops > 3) {
                qd_shift sh = {c.nops / 2, 0, 0.37};
                memcpy(a, x, sizeof(qd_c) * d * N);
                memcpy(b, x, sizeof(qd_c) * d * N);
                qd_meas_ctl m1 = {NULL, oc, 1, 1, NULL}, m2 = {NULL, oc, 1, 1, NULL};
                qd_circuit_run_vec(&c, th, a, N, &m1, &sh, &e);
                qd_circuit_run_vec_unfused(&c, th, b, N, &m2, &sh, &e);
                worst = 0;
                for (size_t i = 0; i < d * N; i++)
                    worst = fmax(worst, cabs(a[i] - b[i]));
                CHECK(worst <= 1e-13, "fused = gate by gate with a shift (n=%d): %g", n, worst);
            }
            qd_free(x); qd_free(a); qd_free(b); qd_free(s); qd_free(oc); qd_free(pa); qd_free(pb);
            qd_circuit_free(&c);
        }
    }
}

/* Fewer members than lanes run with each member's amplitudes in the lanes (circuit_fuse.c,
 * fz_drain_member); more run in lane blocks. The two layouts must give the same bits: every
 * register size of the sweep mode, passes on bits below and above the lane width, cx,
 * diagonals, grouped real passes; runs of 1, 2, 3 and 9 members against each other. */
QD_TEST(circuit_fusion_member_lanes)
{
    qd_rng r;
    qd_rng_init(&r, 4242);
    for (int n = 3; n <= 10; n++) {   /* not 2: see circuit_fusion_vs_unfused */
        for (int rep = 0; rep < 2; rep++) {
            qd_circuit c;
            fusion_circuit(&c, n, &r, 0);
            double th[4];
            rand_theta(th, 4, &r);
            size_t d = (size_t)1 << n, N = 9;
            qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *a = qd_malloc(sizeof(qd_c) * d * N),
                 *s = qd_malloc(sizeof(qd_c) * d * 3);
            for (size_t j = 0; j < N; j++)
                ref_random_vec(x + j * d, d, &r);
            qd_err e;
            memcpy(a, x, sizeof(qd_c) * d * N);
            CHECK(qd_circuit_run_vec(&c, th, a, N, NULL, NULL, &e) == QD_OK, "9 members (n=%d)", n);
            int same = 1;
            for (size_t k = 1; k <= 3; k++)   /* members 0..k-1 in a run of k */
                for (size_t j0 = 0; j0 + k <= N; j0 += 4) {
                    memcpy(s, x + j0 * d, sizeof(qd_c) * d * k);
                    qd_circuit_run_vec(&c, th, s, k, NULL, NULL, &e);
                    same &= memcmp(s, a + j0 * d, sizeof(qd_c) * d * k) == 0;
                }
            CHECK(same, "members alone, in threes and in nines: the same bits (n=%d)", n);
            qd_free(x); qd_free(a); qd_free(s);
            qd_circuit_free(&c);
        }
    }
}

/* unitary() of a fused run = the dense product of the op matrices; 1 vs 2 threads bitwise on
 * an ensemble big enough to be threaded */
QD_TEST(circuit_fusion_unitary_threads)
{
    qd_rng r;
    qd_rng_init(&r, 99);
    for (int n = 1; n <= 6; n++) {
        qd_circuit c;
        fusion_circuit(&c, n, &r, 0);
        double th[4];
        rand_theta(th, 4, &r);
        size_t d = (size_t)1 << n;
        qd_c *U = qd_malloc(sizeof(qd_c) * d * d), *R = qd_malloc(sizeof(qd_c) * d * d);
        qd_err e;
        CHECK(qd_circuit_unitary(&c, th, U, &e) == QD_OK, "unitary");
        ref_unitary(&c, th, R);
        double worst = 0;
        for (size_t i = 0; i < d * d; i++)
            worst = fmax(worst, cabs(U[i] - R[i]));
        CHECK(worst < 1e-12, "fused unitary = dense product (n=%d): %g", n, worst);
        qd_free(U);
        qd_free(R);
        qd_circuit_free(&c);
    }
    qd_circuit c;
    fusion_circuit(&c, 8, &r, 1);
    double th[4];
    rand_theta(th, 4, &r);
    size_t N = 300, d = 256;
    qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *a1 = qd_malloc(sizeof(qd_c) * d * N),
         *a2 = qd_malloc(sizeof(qd_c) * d * N);
    size_t *o1 = qd_malloc(sizeof(size_t) * N * (size_t)c.nmeas),
           *o2 = qd_malloc(sizeof(size_t) * N * (size_t)c.nmeas);
    for (size_t j = 0; j < N; j++)
        ref_random_vec(x + j * d, d, &r);
    qd_rng base;
    qd_rng_init(&base, 31);
    qd_err e;
    int t0 = qd_get_threads();
    memcpy(a1, x, sizeof(qd_c) * d * N);
    memcpy(a2, x, sizeof(qd_c) * d * N);
    qd_meas_ctl m1 = {&base, o1, 0, 0, NULL}, m2 = {&base, o2, 0, 0, NULL};
    qd_set_threads(1);
    qd_circuit_run_vec(&c, th, a1, N, &m1, NULL, &e);
    qd_set_threads(2);
    qd_circuit_run_vec(&c, th, a2, N, &m2, NULL, &e);
    qd_set_threads(t0);
    CHECK(memcmp(a1, a2, sizeof(qd_c) * d * N) == 0 &&
          memcmp(o1, o2, sizeof(size_t) * N * (size_t)c.nmeas) == 0,
          "fused run identical for 1 and 2 threads");
    qd_free(x); qd_free(a1); qd_free(a2); qd_free(o1); qd_free(o2);
    qd_circuit_free(&c);
}

/* qd_k_diagtab against the naive loop: every register size 1..12 (12: table qubits among
 * the high bits too), tables over 1..10 qubits in random order, states and ensembles */
QD_TEST(gates_diagtab_vs_naive)
{
    qd_rng r;
    qd_rng_init(&r, 4242);
    for (int nq = 1; nq <= 12; nq++)
        for (int rep = 0; rep < 4; rep++) {
            int kmax = nq < 10 ? nq : 10;
            int k = 1 + (int)(qd_rng_u64(&r) % (uint64_t)kmax), qs[10];
            if (nq == 12 && rep == 0) {   /* only low bits */
                k = 3;
                qs[0] = 11; qs[1] = 5; qs[2] = 8;
            } else {
                rand_qubits(nq, k, &r, qs);
            }
            size_t T = (size_t)1 << k, d = (size_t)1 << nq, N = rep % 2 ? 3 : 1;
            qd_c *tab = qd_malloc(sizeof(qd_c) * T), *a = qd_malloc(sizeof(qd_c) * d * N),
                 *b = qd_malloc(sizeof(qd_c) * d * N);
            for (size_t t = 0; t < T; t++)
                tab[t] = qd_rng_cnormal(&r);
            for (size_t j = 0; j < N; j++)
                ref_random_vec(a + j * d, d, &r);
            memcpy(b, a, sizeof(qd_c) * d * N);
            qd_k_diagtab(a, nq, N, qs, k, tab);
            double worst = 0;
            for (size_t i = 0; i < d * N; i++) {
                size_t li = i % d, t = 0;
                for (int j = 0; j < k; j++)
                    t = (t << 1) | ((li >> (nq - 1 - qs[j])) & 1);
                worst = fmax(worst, cabs(a[i] - b[i] * tab[t]));
            }
            CHECK(worst < 1e-15, "diagtab = naive (nq=%d, k=%d, N=%zu): %g", nq, k, N, worst);
            qd_free(tab);
            qd_free(a);
            qd_free(b);
        }
}

/* the layered ansatz shape (ry, rz on every qubit + cz ladder) deep enough to overflow the
 * queue of the sweep mode (256 passes, 32 diagonal tables), and above it (11 qubits);
 * 11 members: a full block of SIMD lanes and a partial one */
QD_TEST(circuit_fusion_layers)
{
    qd_rng r;
    qd_rng_init(&r, 8080);
    const int ns[3] = {5, 8, 11};
    for (int t = 0; t < 3; t++) {
        int n = ns[t], L = n == 11 ? 3 : 40;
        qd_circuit c;
        qd_circuit_init(&c, n);
        for (int l = 0; l < L; l++) {
            for (int q = 0; q < n; q++)
                add_g(&c, "ry", &q, -1, 0.3 + 0.1 * q + l);
            for (int q = 0; q < n; q++)
                add_g(&c, "rz", &q, -1, 0.7 * q - 0.2 * l);
            for (int q = 0; q + 1 < n; q++) {
                int qs[2] = {q, q + 1};
                add_g(&c, "cz", qs, -1, 0);
            }
        }
        size_t d = (size_t)1 << n, N = n == 11 ? 4 : 11;
        qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *a = qd_malloc(sizeof(qd_c) * d * N),
             *b = qd_malloc(sizeof(qd_c) * d * N);
        for (size_t j = 0; j < N; j++)
            ref_random_vec(x + j * d, d, &r);
        qd_err e;
        memcpy(a, x, sizeof(qd_c) * d * N);
        memcpy(b, x, sizeof(qd_c) * d * N);
        CHECK(qd_circuit_run_vec(&c, NULL, a, N, NULL, NULL, &e) == QD_OK, "fused");
        CHECK(qd_circuit_run_vec_unfused(&c, NULL, b, N, NULL, NULL, &e) == QD_OK, "unfused");
        double worst = 0;
        for (size_t i = 0; i < d * N; i++)
            worst = fmax(worst, cabs(a[i] - b[i]));
        CHECK(worst <= 1e-13, "layered fused = gate by gate (n=%d, %d layers): %g", n, L, worst);
        qd_free(x); qd_free(a); qd_free(b);
        qd_circuit_free(&c);
    }
}

/* qd_k_1q_real against qd_k_1q with the same (real) matrix, every qubit, 1..12 qubits */
QD_TEST(gates_1q_real_vs_complex)
{
    qd_rng r;
    qd_rng_init(&r, 515);
    for (int nq = 1; nq <= 12; nq++)
        for (int q = 0; q < nq; q++) {
            size_t d = (size_t)1 << nq, N = nq < 6 ? 3 : 1;
            double m[4];
            qd_c M[4];
            for (int i = 0; i < 4; i++) {
                m[i] = 2 * qd_rng_uniform(&r) - 1;
                M[i] = m[i];
            }
            qd_c *a = qd_malloc(sizeof(qd_c) * d * N), *b = qd_malloc(sizeof(qd_c) * d * N);
            for (size_t j = 0; j < N; j++)
                ref_random_vec(a + j * d, d, &r);
            memcpy(b, a, sizeof(qd_c) * d * N);
            qd_k_1q_real(a, nq, N, q, m);
            qd_k_1q(b, nq, N, q, M);
            double worst = 0;
            for (size_t i = 0; i < d * N; i++)
                worst = fmax(worst, cabs(a[i] - b[i]));
            CHECK(worst < 1e-15, "1q real = 1q complex (nq=%d, q=%d): %g", nq, q, worst);
            qd_free(a);
            qd_free(b);
        }
}
