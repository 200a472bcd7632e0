/* test_adjoint.c — every circuit gradient against finite differences and parameter-shift
 * rules: random circuits containing every parametric gate (rx ry rz p u crx cry crz cp rxx
 * ryy rzz), shared slots with scales and offsets, arbitrary unitaries; ensembles; the input
 * gradient G_in; measurement with the outcome held fixed and the measured ancillas
 * discarded (normalised post-measurement state), mid-circuit measurement and reset; the
 * exact expected-loss mode (against finite differences, and against the density-matrix
 * run for a linear loss); density-matrix gradients (linear and nonlinear losses, with
 * reset, dephasing and partial trace); bitwise thread invariance.
 * Losses written here (the loss library is tested elsewhere):
 *   overlap: L = sum_j |<phi_j|psi_j>|^2,  G_j = <phi_j|psi_j> phi_j
 *   zexp:    L = sum_j <psi_j|Z_q|psi_j>,  G_j = Z_q psi_j
 *   dm:      L = Tr(O rho) (G = O/2) + Tr(rho^2) (G = rho) */
#include "harness.h"
#include "qd_circuit.h"
#include <math.h>
#include <string.h>

void tc_random_circuit(qd_circuit *c, int n, int extra, int nslots, qd_rng *r, int with_matrix);
void tc_random_unitary(int k, qd_rng *r, qd_c *U);

typedef struct {
    int kind;          /* 0 overlap, 1 zexp */
    int nq;            /* qubits of the loss's input */
    size_t N;
    const qd_c *phi;   /* targets (kind 0) */
    int zq;
} vloss;

static double vloss_eval(const vloss *L, const qd_c *psi, qd_c *G)
{
    size_t d = (size_t)1 << L->nq;
    double tot = 0;
    for (size_t j = 0; j < L->N; j++) {
        const qd_c *p = psi + j * d;
        if (L->kind == 0) {
            qd_c ov = qd_inner(L->phi + j * d, p, d);
            tot += creal(ov) * creal(ov) + cimag(ov) * cimag(ov);
            if (G)
                for (size_t i = 0; i < d; i++)
                    G[j * d + i] = ov * L->phi[j * d + i];
        } else {
            size_t b = (size_t)1 << (L->nq - 1 - L->zq);
            for (size_t i = 0; i < d; i++) {
                double s = (i & b) ? -1 : 1;
                tot += s * (creal(p[i]) * creal(p[i]) + cimag(p[i]) * cimag(p[i]));
                if (G)
                    G[j * d + i] = s * p[i];
            }
        }
    }
    return tot;
}

/* loss of the circuit output for fixed outcomes (oc may be NULL) */
static double f_vec(const qd_circuit *c, const double *th, const qd_c *x, size_t N,
                    const size_t *oc, const vloss *L, const qd_shift *sh)
{
    size_t d = (size_t)1 << c->n, dout = (size_t)1 << qd_circuit_nout(c, NULL);
    qd_c *a = qd_malloc(sizeof(qd_c) * d * N), *o = qd_malloc(sizeof(qd_c) * dout * N);
    memcpy(a, x, sizeof(qd_c) * d * N);
    size_t *occ = NULL;
    if (c->nmeas && oc) {
        occ = qd_malloc(sizeof(size_t) * N * (size_t)c->nmeas);
        memcpy(occ, oc, sizeof(size_t) * N * (size_t)c->nmeas);
    }
    qd_meas_ctl mc = {NULL, occ, 1, 0, NULL};
    qd_err e;
    qd_status st = qd_circuit_run_vec(c, th, a, N, c->nmeas ? &mc : NULL, sh, &e);
    CHECK(st == QD_OK, "f_vec run: %s", st == QD_OK ? "" : e.msg);
    qd_circuit_extract_vec(c, a, N, o);
    double v = vloss_eval(L, o, NULL);
    qd_free(a);
    qd_free(o);
    qd_free(occ);
    return v;
}

static void fd_grad(const qd_circuit *c, double *th, const qd_c *x, size_t N, const size_t *oc,
                    const vloss *L, double *g)
{
    const double h = 1e-5;
    for (int s = 0; s < c->nslots; s++) {
        double t0 = th[s];
        th[s] = t0 + h;
        double fp = f_vec(c, th, x, N, oc, L, NULL);
        th[s] = t0 - h;
        double fm = f_vec(c, th, x, N, oc, L, NULL);
        th[s] = t0;
        g[s] = (fp - fm) / (2 * h);
    }
}

/* parameter-shift gradient (loss linear in each output density matrix, no measurement):
 * each occurrence of a slot is shifted on its own and the results summed with the scale */
static void ps_grad(const qd_circuit *c, const double *th, const qd_c *x, size_t N,
                    const vloss *L, double *g)
{
    for (int s = 0; s < c->nslots; s++)
        g[s] = 0;
    const double dp = (sqrt(2) + 1) / (4 * sqrt(2)), dm = (sqrt(2) - 1) / (4 * sqrt(2));
    for (size_t o = 0; o < c->nops; o++) {
        const qd_op *op = &c->ops[o];
        if (op->kind != QD_OP_GATE)
            continue;
        for (int i = 0; i < op->g->nparams; i++) {
            if (op->slot[i] < 0)
                continue;
            qd_shift a = {o, i, M_PI / 2}, b = {o, i, -M_PI / 2};
            double der;
            if (!qd_gate_ps_fourterm(op->g, i)) {
                der = 0.5 * (f_vec(c, th, x, N, NULL, L, &a) - f_vec(c, th, x, N, NULL, L, &b));
            } else {
                qd_shift a3 = {o, i, 3 * M_PI / 2}, b3 = {o, i, -3 * M_PI / 2};
                der = dp * (f_vec(c, th, x, N, NULL, L, &a) - f_vec(c, th, x, N, NULL, L, &b)) -
                      dm * (f_vec(c, th, x, N, NULL, L, &a3) - f_vec(c, th, x, N, NULL, L, &b3));
            }
            g[op->slot[i]] += op->scale[i] * der;
        }
    }
}

static double maxabs_diff(const double *a, const double *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* adjoint gradient via qd_circuit_vjp_vec */
static double adj_grad(const qd_circuit *c, const double *th, const qd_c *x, size_t N,
                       const size_t *oc, const vloss *L, double *g, qd_c *G_in)
{
    size_t d = (size_t)1 << c->n, dout = (size_t)1 << qd_circuit_nout(c, NULL);
    qd_c *a = qd_malloc(sizeof(qd_c) * d * N), *o = qd_malloc(sizeof(qd_c) * dout * N),
         *G = qd_malloc(sizeof(qd_c) * dout * N);
    memcpy(a, x, sizeof(qd_c) * d * N);
    size_t *occ = c->nmeas ? qd_malloc(sizeof(size_t) * N * (size_t)c->nmeas) : NULL;
    if (occ)
        memcpy(occ, oc, sizeof(size_t) * N * (size_t)c->nmeas);
    qd_meas_ctl mc = {NULL, occ, 1, 0, NULL};
    qd_err e;
    qd_circuit_run_vec(c, th, a, N, c->nmeas ? &mc : NULL, NULL, &e);
    qd_circuit_extract_vec(c, a, N, o);
    double v = vloss_eval(L, o, G);
    qd_status st = qd_circuit_vjp_vec(c, th, x, N, occ, G, NULL, g, G_in, NULL, &e);
    CHECK(st == QD_OK, "vjp: %s", st == QD_OK ? "" : e.msg);
    qd_free(a); qd_free(o); qd_free(G); qd_free(occ);
    return v;
}

QD_TEST(adjoint_vs_fd_vs_shift)
{
    qd_rng r;
    qd_rng_init(&r, 11);
    for (int n = 1; n <= 4; n++)
        for (int kind = 0; kind < 2; kind++) {
            qd_circuit c;
            tc_random_circuit(&c, n, 12, 5, &r, 1);
            double th[5], ga[5], gf[5], gp[5];
            for (int i = 0; i < 5; i++)
                th[i] = (2 * qd_rng_uniform(&r) - 1) * M_PI;
            size_t N = 3, d = (size_t)1 << n;
            qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *phi = qd_malloc(sizeof(qd_c) * d * N);
            for (size_t j = 0; j < N; j++) {
                ref_random_vec(x + j * d, d, &r);
                ref_random_vec(phi + j * d, d, &r);
            }
            vloss L = {kind, n, N, phi, n - 1};
            qd_c *Gin = qd_malloc(sizeof(qd_c) * d * N);
            adj_grad(&c, th, x, N, NULL, &L, ga, Gin);
            fd_grad(&c, th, x, N, NULL, &L, gf);
            ps_grad(&c, th, x, N, &L, gp);
            CHECK(maxabs_diff(ga, gf, 5) < 1e-7, "adjoint vs FD n=%d loss %d: %g", n, kind, maxabs_diff(ga, gf, 5));
            CHECK(maxabs_diff(ga, gp, 5) < 1e-11, "adjoint vs parameter shift n=%d loss %d: %g", n, kind, maxabs_diff(ga, gp, 5));
            /* input gradient: directional derivative along a random complex v */
            qd_c *v = qd_malloc(sizeof(qd_c) * d * N), *xp = qd_malloc(sizeof(qd_c) * d * N),
                 *xm = qd_malloc(sizeof(qd_c) * d * N);
            double h = 1e-6, dir = 0;
            for (size_t i = 0; i < d * N; i++) {
                v[i] = qd_rng_cnormal(&r);
                xp[i] = x[i] + h * v[i];
                xm[i] = x[i] - h * v[i];
                dir += 2 * creal(conj(Gin[i]) * v[i]);
            }
            double fdd = (f_vec(&c, th, xp, N, NULL, &L, NULL) - f_vec(&c, th, xm, N, NULL, &L, NULL)) / (2 * h);
            CHECK_NEAR(dir, fdd, 1e-7, "G_in directional derivative");
            qd_free(v); qd_free(xp); qd_free(xm);
            qd_free(x); qd_free(phi); qd_free(Gin);
            qd_circuit_free(&c);
        }
}

/* QuDDPM-style step: ancillas embedded as the most significant qubits, circuit on all,
 * ancillas measured (outcome held fixed) and discarded, loss on the normalised data
 * register; plus a mid-circuit measurement and a reset. */
QD_TEST(adjoint_measurement_fixed_outcome)
{
    qd_rng r;
    qd_rng_init(&r, 12);
    for (int variant = 0; variant < 3; variant++) {
        const int n = 4;
        qd_circuit c;
        tc_random_circuit(&c, n, 16, 6, &r, 1);
        qd_err e;
        int anc[2] = {0, 1}, q2 = 2, q3 = 3;
        if (variant >= 1) {   /* mid-circuit measurement, more gates after */
            qd_circuit_add_measure(&c, &q3, 1, 0, &e);
            int slot[1] = {2};
            double sc = 0.7, off = 0.1;
            int qq[2] = {3, 2};
            qd_circuit_add_gate(&c, qd_gate_lookup("cry"), qq, slot, &sc, &off, &e);
            qd_circuit_add_gate(&c, qd_gate_lookup("rxx"), anc, slot, &sc, &off, &e);
        }
        if (variant == 2) {   /* reset, then reuse */
            qd_circuit_add_reset(&c, &q2, 1, &e);
            int slot[1] = {4};
            double sc = 1, off = 0;
            int qq[2] = {2, 1};
            qd_circuit_add_gate(&c, qd_gate_lookup("ry"), &q2, slot, &sc, &off, &e);
            qd_circuit_add_gate(&c, qd_gate_lookup("crx"), qq, slot, &sc, &off, &e);
        }
        qd_circuit_add_measure(&c, anc, 2, 1, &e);
        size_t N = 4, d = 16, dout = 4;
        int nm = c.nmeas;
        qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *phi = qd_malloc(sizeof(qd_c) * dout * N);
        for (size_t j = 0; j < N; j++) {
            ref_random_vec(x + j * d, d, &r);
            ref_random_vec(phi + j * dout, dout, &r);
        }
        double th[6], ga[6], gf[6];
        for (int i = 0; i < 6; i++)
            th[i] = (2 * qd_rng_uniform(&r) - 1) * M_PI;
        /* sample outcomes once, then hold them fixed */
        size_t *oc = qd_malloc(sizeof(size_t) * N * (size_t)nm);
        qd_c *a = qd_malloc(sizeof(qd_c) * d * N);
        memcpy(a, x, sizeof(qd_c) * d * N);
        qd_rng base;
        qd_rng_init(&base, 100 + (uint64_t)variant);
        qd_meas_ctl mc = {&base, oc, 0, 0, NULL};
        CHECK(qd_circuit_run_vec(&c, th, a, N, &mc, NULL, &e) == QD_OK, "sampled run");
        for (int kind = 0; kind < 2; kind++) {
            vloss L = {kind, 2, N, phi, 1};
            qd_c *Gin = qd_malloc(sizeof(qd_c) * d * N);
            adj_grad(&c, th, x, N, oc, &L, ga, Gin);
            fd_grad(&c, th, x, N, oc, &L, gf);
            CHECK(maxabs_diff(ga, gf, 6) < 1e-7, "measurement adjoint vs FD variant %d loss %d: %g",
                  variant, kind, maxabs_diff(ga, gf, 6));
            /* G_in through projection and normalisation */
            qd_c *v = qd_malloc(sizeof(qd_c) * d * N), *xp = qd_malloc(sizeof(qd_c) * d * N),
                 *xm = qd_malloc(sizeof(qd_c) * d * N);
            double h = 1e-6, dir = 0;
            for (size_t i = 0; i < d * N; i++) {
                v[i] = qd_rng_cnormal(&r);
                xp[i] = x[i] + h * v[i];
                xm[i] = x[i] - h * v[i];
                dir += 2 * creal(conj(Gin[i]) * v[i]);
            }
            double fdd = (f_vec(&c, th, xp, N, oc, &L, NULL) - f_vec(&c, th, xm, N, oc, &L, NULL)) / (2 * h);
            CHECK_NEAR(dir, fdd, 1e-6, "G_in through measurement");
            qd_free(v); qd_free(xp); qd_free(xm); qd_free(Gin);
        }
        qd_free(a); qd_free(oc); qd_free(x); qd_free(phi);
        qd_circuit_free(&c);
    }
}

/* Expected-loss mode: E = sum_m sum_j P_jm l(psi'_jm) over every outcome m of the final
 * ancilla measurement; gradient = sum_m vjp(G = P_m dl, dL/dP = l_m). Checked against
 * finite differences of E, and, for l = <Z>, against the density-matrix run (value) and the
 * density-matrix adjoint (gradient). */
static double expected_loss(const qd_circuit *c, const double *th, const qd_c *x, size_t N,
                            const vloss *L, double *grad)
{
    size_t d = (size_t)1 << c->n, dout = (size_t)1 << qd_circuit_nout(c, NULL);
    size_t K = (size_t)1 << c->ops[c->nops - 1].k;
    qd_c *a = qd_malloc(sizeof(qd_c) * d * N), *o = qd_malloc(sizeof(qd_c) * dout * N),
         *G = qd_malloc(sizeof(qd_c) * dout * N);
    size_t *oc = qd_malloc(sizeof(size_t) * N);
    double *P = qd_malloc(sizeof(double) * N), *ell = qd_malloc(sizeof(double) * N), g1[8];
    double tot = 0;
    if (grad)
        for (int s = 0; s < c->nslots; s++)
            grad[s] = 0;
    qd_err e;
    for (size_t m = 0; m < K; m++) {
        memcpy(a, x, sizeof(qd_c) * d * N);
        for (size_t j = 0; j < N; j++)
            oc[j] = m;
        qd_meas_ctl mc = {NULL, oc, 1, 1, P};
        qd_circuit_run_vec(c, th, a, N, &mc, NULL, &e);
        qd_circuit_extract_vec(c, a, N, o);
        for (size_t j = 0; j < N; j++) {
            vloss Lj = *L;
            Lj.N = 1;
            if (Lj.phi)
                Lj.phi = L->phi + j * dout;
            ell[j] = vloss_eval(&Lj, o + j * dout, G + j * dout);
            tot += P[j] * ell[j];
            for (size_t i = 0; i < dout; i++)
                G[j * dout + i] *= P[j];
        }
        if (grad) {
            CHECK(qd_circuit_vjp_vec(c, th, x, N, oc, G, ell, g1, NULL, NULL, &e) == QD_OK, "vjp expected");
            for (int s = 0; s < c->nslots; s++)
                grad[s] += g1[s];
        }
    }
    qd_free(a); qd_free(o); qd_free(G); qd_free(oc); qd_free(P); qd_free(ell);
    return tot;
}

QD_TEST(adjoint_expected_mode)
{
    qd_rng r;
    qd_rng_init(&r, 13);
    const int n = 3;
    qd_circuit c;
    tc_random_circuit(&c, n, 10, 4, &r, 0);
    qd_err e;
    int anc = 0;
    qd_circuit_add_measure(&c, &anc, 1, 1, &e);
    size_t N = 3, d = 8, dout = 4;
    qd_c x[24], phi[12];
    for (size_t j = 0; j < N; j++) {
        ref_random_vec(x + j * d, d, &r);
        ref_random_vec(phi + j * dout, dout, &r);
    }
    double th[4], ga[4], gf[4];
    for (int i = 0; i < 4; i++)
        th[i] = (2 * qd_rng_uniform(&r) - 1) * M_PI;
    for (int kind = 0; kind < 2; kind++) {
        vloss L = {kind, 2, N, phi, 1};
        expected_loss(&c, th, x, N, &L, ga);
        for (int s = 0; s < 4; s++) {
            double h = 1e-5, t0 = th[s];
            th[s] = t0 + h;
            double fp = expected_loss(&c, th, x, N, &L, NULL);
            th[s] = t0 - h;
            double fm = expected_loss(&c, th, x, N, &L, NULL);
            th[s] = t0;
            gf[s] = (fp - fm) / (2 * h);
        }
        CHECK(maxabs_diff(ga, gf, 4) < 1e-7, "expected-mode adjoint vs FD loss %d: %g", kind, maxabs_diff(ga, gf, 4));
    }
    /* l = <Z_1> of the data register (qubit 2 of the circuit): E = Tr(Z rho_out) summed
     * over members, the density-matrix run of rho = sum_j |x_j><x_j| */
    vloss L = {1, 2, N, NULL, 1};
    double E = expected_loss(&c, th, x, N, &L, ga);
    qd_c rho[64] = {0}, one[64], rout[16], Gd[16] = {0};
    for (size_t j = 0; j < N; j++) {
        qd_dm_from_state(x + j * d, n, one);
        for (int i = 0; i < 64; i++)
            rho[i] += one[i];
    }
    qd_c rin[64];
    memcpy(rin, rho, sizeof rho);
    qd_circuit_run_dm(&c, th, rho, NULL, &e);
    qd_circuit_extract_dm(&c, rho, rout);
    double trz = 0;
    for (int i = 0; i < 4; i++) {
        trz += ((i & 1) ? -1 : 1) * creal(rout[i + 4 * i]);
        Gd[i + 4 * i] = ((i & 1) ? -1 : 1) * 0.5;   /* G = Z/2 for L = Tr(Z rho) */
    }
    CHECK_NEAR(E, trz, 1e-12, "expected loss = density-matrix value");
    double gd[4];
    CHECK(qd_circuit_vjp_dm(&c, th, rin, Gd, gd, NULL, &e) == QD_OK, "vjp_dm");
    CHECK(maxabs_diff(ga, gd, 4) < 1e-11, "expected-mode gradient = density-matrix adjoint: %g", maxabs_diff(ga, gd, 4));
    qd_circuit_free(&c);
}

/* density matrices: L = Tr(O rho_out) + Tr(rho_out^2) through gates, dephasing, reset and a
 * partial trace; adjoint vs finite differences and (linear part) parameter shift */
static double dm_loss(const qd_circuit *c, const double *th, const qd_c *rho, const qd_c *O,
                      int quad, const qd_shift *sh, qd_c *G)
{
    size_t d = (size_t)1 << c->n, dout = (size_t)1 << qd_circuit_nout(c, NULL);
    qd_c *A = qd_malloc(sizeof(qd_c) * d * d), *R = qd_malloc(sizeof(qd_c) * dout * dout);
    memcpy(A, rho, sizeof(qd_c) * d * d);
    qd_err e;
    qd_circuit_run_dm(c, th, A, sh, &e);
    qd_circuit_extract_dm(c, A, R);
    double v = 0;
    for (size_t i = 0; i < dout; i++)
        for (size_t k = 0; k < dout; k++) {
            v += creal(O[i + k * dout] * R[k + i * dout]);
            if (quad)
                v += creal(R[i + k * dout] * R[k + i * dout]);
            if (G)
                G[i + k * dout] = 0.5 * O[i + k * dout] + (quad ? R[i + k * dout] : 0);
        }
    qd_free(A);
    qd_free(R);
    return v;
}

QD_TEST(adjoint_density_matrix)
{
    qd_rng r;
    qd_rng_init(&r, 14);
    for (int variant = 0; variant < 2; variant++) {
        const int n = 3;
        qd_circuit c;
        tc_random_circuit(&c, n, 10, 5, &r, 1);
        qd_err e;
        int q0 = 0, q1 = 1;
        if (variant) {
            qd_circuit_add_reset(&c, &q1, 1, &e);
            int slot[1] = {3};
            double sc = -1.3, off = 0.2;
            int qq[2] = {1, 2};
            qd_circuit_add_gate(&c, qd_gate_lookup("crz"), qq, slot, &sc, &off, &e);
            qd_circuit_add_measure(&c, &q1, 1, 0, &e);
            qd_circuit_add_gate(&c, qd_gate_lookup("rzz"), qq, slot, &sc, &off, &e);
        }
        qd_circuit_add_measure(&c, &q0, 1, 1, &e);
        size_t d = 8, dout = 4;
        qd_c rho[64], O[16], G[16];
        ref_random_dm(rho, d, &r);
        for (size_t i = 0; i < dout; i++)
            for (size_t k = 0; k <= i; k++) {
                qd_c z = qd_rng_cnormal(&r);
                O[i + k * dout] = i == k ? creal(z) : z;
                O[k + i * dout] = i == k ? creal(z) : conj(z);
            }
        double th[5], ga[5], gf[5], gp[5];
        for (int i = 0; i < 5; i++)
            th[i] = (2 * qd_rng_uniform(&r) - 1) * M_PI;
        for (int quad = 0; quad < 2; quad++) {
            dm_loss(&c, th, rho, O, quad, NULL, G);
            qd_c Gin[64];
            CHECK(qd_circuit_vjp_dm(&c, th, rho, G, ga, Gin, &e) == QD_OK, "vjp_dm");
            for (int s = 0; s < 5; s++) {
                double h = 1e-5, t0 = th[s];
                th[s] = t0 + h;
                double fp = dm_loss(&c, th, rho, O, quad, NULL, NULL);
                th[s] = t0 - h;
                double fm = dm_loss(&c, th, rho, O, quad, NULL, NULL);
                th[s] = t0;
                gf[s] = (fp - fm) / (2 * h);
            }
            CHECK(maxabs_diff(ga, gf, 5) < 1e-7, "dm adjoint vs FD variant %d quad %d: %g", variant, quad,
                  maxabs_diff(ga, gf, 5));
            /* input gradient along a Hermitian direction */
            qd_c V[64], Rp[64], Rm[64];
            for (size_t i = 0; i < d; i++)
                for (size_t k = 0; k <= i; k++) {
                    qd_c z = qd_rng_cnormal(&r);
                    V[i + k * d] = i == k ? creal(z) : z;
                    V[k + i * d] = i == k ? creal(z) : conj(z);
                }
            double h = 1e-6, dir = 0;
            for (int i = 0; i < 64; i++) {
                Rp[i] = rho[i] + h * V[i];
                Rm[i] = rho[i] - h * V[i];
                dir += 2 * creal(conj(Gin[i]) * V[i]);
            }
            double fdd = (dm_loss(&c, th, Rp, O, quad, NULL, NULL) - dm_loss(&c, th, Rm, O, quad, NULL, NULL)) / (2 * h);
            CHECK_NEAR(dir, fdd, 1e-6, "dm G_in directional derivative");
            if (quad)
                continue;
            /* linear loss: parameter shift is exact */
            for (int s = 0; s < 5; s++)
                gp[s] = 0;
            const double dp = (sqrt(2) + 1) / (4 * sqrt(2)), dm = (sqrt(2) - 1) / (4 * sqrt(2));
            for (size_t o = 0; o < c.nops; o++) {
                const qd_op *op = &c.ops[o];
                if (op->kind != QD_OP_GATE)
                    continue;
                for (int i = 0; i < op->g->nparams; i++) {
                    if (op->slot[i] < 0)
                        continue;
                    qd_shift a = {o, i, M_PI / 2}, b = {o, i, -M_PI / 2}, a3 = {o, i, 1.5 * M_PI},
                             b3 = {o, i, -1.5 * M_PI};
                    double der = qd_gate_ps_fourterm(op->g, i)
                                     ? dp * (dm_loss(&c, th, rho, O, 0, &a, NULL) - dm_loss(&c, th, rho, O, 0, &b, NULL)) -
                                           dm * (dm_loss(&c, th, rho, O, 0, &a3, NULL) - dm_loss(&c, th, rho, O, 0, &b3, NULL))
                                     : 0.5 * (dm_loss(&c, th, rho, O, 0, &a, NULL) - dm_loss(&c, th, rho, O, 0, &b, NULL));
                    gp[op->slot[i]] += op->scale[i] * der;
                }
            }
            CHECK(maxabs_diff(ga, gp, 5) < 1e-11, "dm adjoint vs parameter shift: %g", maxabs_diff(ga, gp, 5));
        }
        qd_circuit_free(&c);
    }
}

QD_TEST(adjoint_threads_bitwise)
{
    qd_rng r;
    qd_rng_init(&r, 15);
    qd_circuit c;
    tc_random_circuit(&c, 6, 20, 4, &r, 1);
    qd_err e;
    int a0 = 0;
    qd_circuit_add_measure(&c, &a0, 1, 1, &e);
    size_t N = 400, d = 64, dout = 32;
    qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *G = qd_malloc(sizeof(qd_c) * dout * N),
         *g1 = qd_malloc(sizeof(qd_c) * d * N), *g2 = qd_malloc(sizeof(qd_c) * d * N);
    size_t *oc = qd_malloc(sizeof(size_t) * N);
    for (size_t j = 0; j < N; j++) {
        ref_random_vec(x + j * d, d, &r);
        ref_random_vec(G + j * dout, dout, &r);
        oc[j] = j & 1;
    }
    double th[4] = {0.3, -1.2, 2.0, 0.7}, ga[4], gb[4];
    int t0 = qd_get_threads();
    qd_set_threads(1);
    qd_status s1 = qd_circuit_vjp_vec(&c, th, x, N, oc, G, NULL, ga, g1, NULL, &e);
    qd_set_threads(2);
    qd_status s2 = qd_circuit_vjp_vec(&c, th, x, N, oc, G, NULL, gb, g2, NULL, &e);
    qd_set_threads(t0);
    CHECK(s1 == QD_OK && s2 == QD_OK, "vjp ok");
    CHECK(memcmp(ga, gb, sizeof ga) == 0 && memcmp(g1, g2, sizeof(qd_c) * d * N) == 0,
          "vjp identical for 1 and 2 threads");
    qd_free(x); qd_free(G); qd_free(g1); qd_free(g2); qd_free(oc);
    qd_circuit_free(&c);
}

/* Big single states (>= 2^15 amplitudes) take the blocked, threaded contraction paths:
 * check them against finite differences and for bitwise 1- vs 2-thread equality, for a
 * pure state (n = 16) and a density matrix (n = 8, a 16-qubit vector). */
QD_TEST(adjoint_large_blocked)
{
    qd_rng r;
    qd_rng_init(&r, 16);
    const int n = 16;
    qd_circuit c;
    qd_err e;
    qd_circuit_init(&c, n);
    qd_circuit_ensure_slots(&c, 3, &e);
    struct { const char *g; int q[2]; int slot[3]; } ops[] = {
        {"rx", {15, 0}, {0}}, {"crx", {3, 15}, {1}}, {"rzz", {0, 15}, {2}}, {"u", {14, 0}, {0, 1, 2}},
        {"ryy", {15, 7}, {1}}, {"cp", {2, 15}, {0}}, {"h", {15, 0}, {-1}},
    };
    double one[3] = {1, -0.7, 1.3}, zero[3] = {0.2, 0, -0.1};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        qd_circuit_add_gate(&c, qd_gate_lookup(ops[i].g), ops[i].q, ops[i].slot, one, zero, &e);
    size_t d = (size_t)1 << n;
    qd_c *x = qd_malloc(sizeof(qd_c) * d), *phi = qd_malloc(sizeof(qd_c) * d);
    ref_random_vec(x, d, &r);
    ref_random_vec(phi, d, &r);
    double th[3] = {0.4, -1.1, 2.2}, ga[3], gb[3], gf[3];
    for (int kind = 0; kind < 2; kind++) {
        vloss L = {kind, n, 1, phi, 15};
        int t0 = qd_get_threads();
        qd_set_threads(1);
        adj_grad(&c, th, x, 1, NULL, &L, ga, NULL);
        qd_set_threads(2);
        adj_grad(&c, th, x, 1, NULL, &L, gb, NULL);
        qd_set_threads(t0);
        fd_grad(&c, th, x, 1, NULL, &L, gf);
        CHECK(memcmp(ga, gb, sizeof ga) == 0, "large state: identical for 1 and 2 threads");
        CHECK(maxabs_diff(ga, gf, 3) < 1e-7, "large state adjoint vs FD loss %d: %g", kind, maxabs_diff(ga, gf, 3));
    }
    qd_free(x);
    qd_free(phi);
    qd_circuit_free(&c);
    /* density matrix of 8 qubits with a discarded qubit */
    const int m = 8;
    qd_circuit_init(&c, m);
    qd_circuit_ensure_slots(&c, 2, &e);
    int q01[2] = {0, 7}, q2[2] = {3, 5};
    int s0[1] = {0}, s1[1] = {1}, s01[3] = {0, 1, 0};
    qd_circuit_add_gate(&c, qd_gate_lookup("ry"), q01, s0, one, zero, &e);
    qd_circuit_add_gate(&c, qd_gate_lookup("cry"), q01, s1, one, zero, &e);
    qd_circuit_add_gate(&c, qd_gate_lookup("u"), q2, s01, one, zero, &e);
    qd_circuit_add_gate(&c, qd_gate_lookup("rxx"), q2, s1, one, zero, &e);
    int a0 = 0;
    qd_circuit_add_measure(&c, &a0, 1, 1, &e);
    size_t D = (size_t)1 << m, Do = D / 2;
    qd_c *rho = qd_malloc(sizeof(qd_c) * D * D), *O = qd_calloc(Do * Do, sizeof(qd_c)),
         *G = qd_malloc(sizeof(qd_c) * Do * Do);
    ref_random_dm(rho, D, &r);
    for (size_t i = 0; i < Do; i++)
        O[i + i * Do] = (i & 1) ? -1 : 1;
    dm_loss(&c, th, rho, O, 1, NULL, G);
    double da[2], db[2], df[2];
    int t0 = qd_get_threads();
    qd_set_threads(1);
    qd_circuit_vjp_dm(&c, th, rho, G, da, NULL, &e);
    qd_set_threads(2);
    qd_circuit_vjp_dm(&c, th, rho, G, db, NULL, &e);
    qd_set_threads(t0);
    for (int s = 0; s < 2; s++) {
        double h = 1e-5, tt = th[s];
        th[s] = tt + h;
        double fp = dm_loss(&c, th, rho, O, 1, NULL, NULL);
        th[s] = tt - h;
        double fm = dm_loss(&c, th, rho, O, 1, NULL, NULL);
        th[s] = tt;
        df[s] = (fp - fm) / (2 * h);
    }
    CHECK(memcmp(da, db, sizeof da) == 0, "large dm: identical for 1 and 2 threads");
    CHECK(maxabs_diff(da, df, 2) < 1e-7, "large dm adjoint vs FD: %g", maxabs_diff(da, df, 2));
    qd_free(rho);
    qd_free(O);
    qd_free(G);
    qd_circuit_free(&c);
}

/* the specialised single-qubit Pauli bracket (pair loop, used for rx/ry/rz on ensembles)
 * against the generic popcount bracket and against a dense <lam|P|psi> */
QD_TEST(adjoint_pauli1_bracket_vs_generic)
{
    qd_rng r;
    qd_rng_init(&r, 9001);
    qd_c lam[64], psi[64], Pp[64];
    for (int nq = 1; nq <= 6; nq++) {
        size_t d = (size_t)1 << nq;
        for (size_t i = 0; i < d; i++) {
            lam[i] = CMPLX(qd_rng_normal(&r), qd_rng_normal(&r));
            psi[i] = CMPLX(qd_rng_normal(&r), qd_rng_normal(&r));
        }
        for (int q = 0; q < nq; q++) {
            size_t b = (size_t)1 << (nq - 1 - q);
            for (int t = 0; t < 3; t++) {
                char p = "XYZ"[t];
                size_t x = p == 'Z' ? 0 : b, z = p == 'X' ? 0 : b;
                int ny = p == 'Y';
                double gen = qd_pauli_braket_im(lam, psi, nq, x, z, ny);
                double spec = qd_pauli1_braket_im(lam, psi, nq, q, p);
                /* dense: (P psi)_i with X = [[0,1],[1,0]], Y = [[0,-i],[i,0]], Z = diag(1,-1) */
                for (size_t i = 0; i < d; i++) {
                    int bit = (i & b) != 0;
                    Pp[i] = p == 'X' ? psi[i ^ b] : p == 'Z' ? (bit ? -psi[i] : psi[i])
                                                             : (bit ? I * psi[i ^ b] : -I * psi[i ^ b]);
                }
                qd_c s = 0;
                for (size_t i = 0; i < d; i++)
                    s += conj(lam[i]) * Pp[i];
                CHECK(fabs(spec - gen) <= 1e-12, "pauli1 %c on qubit %d of %d = generic", p, q, nq);
                CHECK(fabs(spec - cimag(s)) <= 1e-12, "pauli1 %c on qubit %d of %d = dense", p, q, nq);
                double three[3];
                qd_pauli3_braket_im(lam, psi, nq, q, three);
                CHECK(three[t] == spec, "pauli3 %c on qubit %d of %d = pauli1 (bitwise)", p, q, nq);
            }
        }
    }
}

/* consecutive Pauli rotations on one qubit: the forward fuses them into one 2x2 pass and the
 * adjoint takes both brackets from the state after the pair (the first through the rotated
 * Pauli U2 P1 U2^dagger). All 9 ordered pairs (and a run of three), shared slots, scales,
 * offsets, fixed angles, against finite differences and parameter shift. */
QD_TEST(adjoint_fused_rotation_pairs)
{
    static const char *rot[3] = {"rx", "ry", "rz"};
    qd_rng r;
    qd_rng_init(&r, 2027);
    for (int p1 = 0; p1 < 3; p1++)
        for (int p2 = 0; p2 < 3; p2++) {
            int n = 3;
            qd_circuit c;
            qd_circuit_init(&c, n);
            qd_err e;
            CHECK(qd_circuit_ensure_slots(&c, 4, &e) == QD_OK, "slots");
            for (int q = 0; q < n; q++) {
                int qs[1] = {q}, s1 = q % 4, s2 = (q + 1) % 4, sf = -1;
                double sc1 = 1.5, sc2 = -0.7, of1 = 0.3, of2 = -1.1, one = 1, zero = 0.4;
                qd_circuit_add_gate(&c, qd_gate_lookup("h"), qs, NULL, NULL, NULL, &e);
                qd_circuit_add_gate(&c, qd_gate_lookup(rot[p1]), qs, &s1, &sc1, &of1, &e);
                qd_circuit_add_gate(&c, qd_gate_lookup(rot[p2]), qs, q == 1 ? &sf : &s2,
                                    q == 1 ? &one : &sc2, q == 1 ? &zero : &of2, &e);
                if (q == 2)   /* a run of three: (p2, p1) pair after p1 */
                    qd_circuit_add_gate(&c, qd_gate_lookup(rot[p1]), qs, &s2, &sc2, &of1, &e);
            }
            int cz[2] = {0, 1}, cz2[2] = {1, 2};
            qd_circuit_add_gate(&c, qd_gate_lookup("cz"), cz, NULL, NULL, NULL, &e);
            qd_circuit_add_gate(&c, qd_gate_lookup("cz"), cz2, NULL, NULL, NULL, &e);
            for (int q = 0; q < n; q++) {   /* a fixed rotation first, then a slot */
                int qs[1] = {q}, sf = -1, s = (q + 2) % 4;
                double one = 1, fx = 0.9, sc = 1, of = 0;
                qd_circuit_add_gate(&c, qd_gate_lookup(rot[p2]), qs, &sf, &one, &fx, &e);
                qd_circuit_add_gate(&c, qd_gate_lookup(rot[p1]), qs, &s, &sc, &of, &e);
            }
            CHECK(c.nops == 3 * 3 + 1 + 2 + 6, "circuit built (%zu ops)", c.nops);
            double th[4], ga[4], gf[4], gp[4];
            for (int i = 0; i < 4; i++)
                th[i] = (2 * qd_rng_uniform(&r) - 1) * M_PI;
            size_t N = 4, d = (size_t)1 << n;
            qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *phi = qd_malloc(sizeof(qd_c) * d * N);
            for (size_t j = 0; j < N; j++) {
                ref_random_vec(x + j * d, d, &r);
                ref_random_vec(phi + j * d, d, &r);
            }
            for (int kind = 0; kind < 2; kind++) {
                vloss L = {kind, n, N, phi, 1};
                adj_grad(&c, th, x, N, NULL, &L, ga, NULL);
                fd_grad(&c, th, x, N, NULL, &L, gf);
                ps_grad(&c, th, x, N, &L, gp);
                CHECK(maxabs_diff(ga, gf, 4) < 1e-7, "pair %s %s: adjoint vs FD %g", rot[p1], rot[p2],
                      maxabs_diff(ga, gf, 4));
                CHECK(maxabs_diff(ga, gp, 4) < 1e-11, "pair %s %s: adjoint vs shift %g", rot[p1],
                      rot[p2], maxabs_diff(ga, gp, 4));
            }
            qd_free(x);
            qd_free(phi);
            qd_circuit_free(&c);
        }
}

/* The backward pass with members in SIMD lanes (registers of up to 10 qubits whose gates
 * are 1-qubit gates, parameterised as rx/ry/rz, cz and cx, before any measurement) against the
 * generic pass: random such circuits (pairs and runs of rotations on one qubit, shared
 * slots with scales and offsets, fixed angles, h/s/x/sx, cz runs, cx), with and without
 * measured-and-discarded ancillas at the end, member counts filling whole lane blocks and
 * leaving partial ones; gradients and G_in; 1 vs 2 threads bitwise; and the generic pass's
 * circuits that do not qualify (a mid-circuit measurement, an rzz) still right. */
QD_TEST(adjoint_sweep_vs_generic)
{
    static const char *g1[] = {"rx", "ry", "rz", "h", "s", "x", "sx"};
    qd_rng r;
    qd_rng_init(&r, 3131);
    for (int n = 1; n <= 7; n++)
        for (int meas = 0; meas < 2; meas++) {
            if (meas && n < 2)
                continue;
            qd_circuit c;
            qd_circuit_init(&c, n);
            qd_err e;
            CHECK(qd_circuit_ensure_slots(&c, 5, &e) == QD_OK, "slots");
            for (int t = 0; t < 12 * n; t++) {
                double u = qd_rng_uniform(&r);
                int q = (int)(qd_rng_u64(&r) % (uint64_t)n);
                if (n >= 2 && u < 0.25) {
                    int qs[2] = {q, (q + 1 + (int)(qd_rng_u64(&r) % (uint64_t)(n - 1))) % n};
                    qd_circuit_add_gate(&c, qd_gate_lookup(u < 0.12 ? "cz" : "cx"), qs, NULL, NULL,
                                        NULL, &e);
                    continue;
                }
                const qd_gate_info *g = qd_gate_lookup(g1[qd_rng_u64(&r) % 7]);
                int sl = (int)(qd_rng_u64(&r) % 6) - 1;   /* -1: fixed angle */
                double sc = 2 * qd_rng_uniform(&r) - 1, of = 2 * qd_rng_uniform(&r) - 1;
                if (g->nparams)
                    qd_circuit_add_gate(&c, g, &q, &sl, &sc, &of, &e);
                else
                    qd_circuit_add_gate(&c, g, &q, NULL, NULL, NULL, &e);
            }
            if (meas) {
                int qs[1] = {0};
                qd_circuit_add_measure(&c, qs, 1, 1, &e);
            }
            double th[5];
            for (int i = 0; i < 5; i++)
                th[i] = (2 * qd_rng_uniform(&r) - 1) * M_PI;
            /* n = 4 and 7: enough work for the threads to split the lane blocks */
            size_t N = n == 3 ? 13 : n == 7 ? 40 : n == 4 ? 301 : 9, d = (size_t)1 << n;
            size_t dout = (size_t)1 << qd_circuit_nout(&c, NULL);
            qd_c *x = qd_malloc(sizeof(qd_c) * d * N), *phi = qd_malloc(sizeof(qd_c) * dout * N);
            size_t *oc = qd_malloc(sizeof(size_t) * N);
            for (size_t j = 0; j < N; j++) {
                ref_random_vec(x + j * d, d, &r);
                ref_random_vec(phi + j * dout, dout, &r);
                oc[j] = qd_rng_u64(&r) % 2;
            }
            vloss L = {0, qd_circuit_nout(&c, NULL), N, phi, 0};
            double gs[5], gg[5], g2[5];
            qd_c *Gs = qd_malloc(sizeof(qd_c) * d * N), *Gg = qd_malloc(sizeof(qd_c) * d * N),
                 *G2 = qd_malloc(sizeof(qd_c) * d * N);
            int t0 = qd_get_threads();
            qd_set_threads(1);
            adj_grad(&c, th, x, N, meas ? oc : NULL, &L, gs, Gs);
            qd_set_threads(2);
            adj_grad(&c, th, x, N, meas ? oc : NULL, &L, g2, G2);
            qd_set_threads(t0);
            qd_adjoint_generic_only = 1;
            adj_grad(&c, th, x, N, meas ? oc : NULL, &L, gg, Gg);
            qd_adjoint_generic_only = 0;
            double dG = 0;
            for (size_t i = 0; i < d * N; i++)
                dG = fmax(dG, cabs(Gs[i] - Gg[i]));
            CHECK(maxabs_diff(gs, gg, 5) < 1e-12 && dG < 1e-13,
                  "lanes = generic backward (n=%d, meas %d): grad %g, G_in %g", n, meas,
                  maxabs_diff(gs, gg, 5), dG);
            CHECK(memcmp(gs, g2, sizeof gs) == 0 && memcmp(Gs, G2, sizeof(qd_c) * d * N) == 0,
                  "lanes backward 1 vs 2 threads bitwise (n=%d)", n);
            /* the first 5 members alone (other lane blocks, another split between threads):
             * each member's G_in the same bits */
            vloss L5 = L;
            L5.N = 5;
            qd_set_threads(1);
            adj_grad(&c, th, x, 5, meas ? oc : NULL, &L5, g2, G2);
            qd_set_threads(t0);
            CHECK(memcmp(Gs, G2, sizeof(qd_c) * d * 5) == 0,
                  "lanes backward: a member's G_in independent of the member count (n=%d)", n);
            qd_free(x); qd_free(phi); qd_free(oc); qd_free(Gs); qd_free(Gg); qd_free(G2);
            qd_circuit_free(&c);
        }
}
