/* test_gates.c — the gate table and every gate kernel against naive dense references:
 * each gate on every ordered tuple of target qubits for 1..5 qubits, batches with shared
 * and per-member parameters, density matrices, arbitrary k-qubit matrices, known values
 * that pin the conventions (qubit 0 = MSB, control first, exp(-i theta P/2)), and
 * bitwise thread-count invariance. */
#include "harness.h"
#include "qd_circuit.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-12

static double rand_angle(qd_rng *r)
{
    return (qd_rng_uniform(r) * 2.0 - 1.0) * 2.0 * M_PI;
}

/* y = (full operator of m on qs) x, dense: the slow reference */
static void ref_apply(int nq, const int *qs, int k, const qd_c *m, const qd_c *x, qd_c *y)
{
    size_t d = (size_t)1 << nq;
    qd_c *U = qd_malloc(sizeof(qd_c) * d * d);
    ref_full_operator(nq, qs, k, m, U);
    ref_matvec(U, d, x, y);
    qd_free(U);
}

/* Per-amplitude reference for registers too large for a dense operator:
 * y[i] = sum_l m[li, l] x[i with its target bits replaced by l]. */
static void ref_apply_local(int nq, const int *qs, int k, const qd_c *m, const qd_c *x,
                            qd_c *y)
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

static void rand_params(const qd_gate_info *g, qd_rng *r, double *p)
{
    for (int i = 0; i < g->nparams; i++)
        p[i] = rand_angle(r);
}

/* Next ordered tuple of k distinct qubits < nq in lexicographic order; 0 when done. */
static int next_tuple(int *qs, int k, int nq)
{
    for (;;) {
        int j = k - 1;
        while (j >= 0 && qs[j] == nq - 1)
            j--;
        if (j < 0)
            return 0;
        qs[j]++;
        for (int i = j + 1; i < k; i++)
            qs[i] = 0;
        int ok = 1;
        for (int a = 0; a < k && ok; a++)
            for (int b = a + 1; b < k; b++)
                if (qs[a] == qs[b])
                    ok = 0;
        if (ok)
            return 1;
    }
}

static int first_tuple(int *qs, int k, int nq)
{
    if (k > nq)
        return 0;
    for (int i = 0; i < k; i++)
        qs[i] = 0;
    int ok = 1;
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            if (qs[a] == qs[b])
                ok = 0;
    return ok ? 1 : next_tuple(qs, k, nq);
}

/* ---------------------------------------------------------------- the table */

QD_TEST(gates_table)
{
    static const struct { const char *name; int nq, np; } want[] = {
        {"id", 1, 0}, {"x", 1, 0}, {"y", 1, 0}, {"z", 1, 0}, {"h", 1, 0}, {"s", 1, 0},
        {"sdg", 1, 0}, {"t", 1, 0}, {"tdg", 1, 0}, {"sx", 1, 0}, {"sxdg", 1, 0},
        {"rx", 1, 1}, {"ry", 1, 1}, {"rz", 1, 1}, {"p", 1, 1}, {"u", 1, 3},
        {"cx", 2, 0}, {"cy", 2, 0}, {"cz", 2, 0}, {"ch", 2, 0}, {"swap", 2, 0},
        {"crx", 2, 1}, {"cry", 2, 1}, {"crz", 2, 1}, {"cp", 2, 1}, {"rxx", 2, 1},
        {"ryy", 2, 1}, {"rzz", 2, 1}, {"ccx", 3, 0}, {"cswap", 3, 0}, {"ecr", 2, 0},
    };
    size_t n = 0;
    const qd_gate_info *list = qd_gate_list(&n);
    CHECK(n == sizeof want / sizeof want[0], "table has %zu gates", n);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const qd_gate_info *g = qd_gate_lookup(want[i].name);
        CHECK(g != NULL, "gate %s exists", want[i].name);
        if (!g)
            continue;
        CHECK(g->nqubits == want[i].nq && g->nparams == want[i].np, "%s arity", want[i].name);
        CHECK(g->doc && g->doc[0] && !strchr(g->doc, '\n'), "%s has a one-line doc",
              want[i].name);
        CHECK(g >= list && g < list + n, "%s lookup points into the list", want[i].name);
    }
    CHECK(qd_gate_lookup("cnot") == NULL, "unknown name gives NULL");
    CHECK(qd_gate_lookup("X") == NULL, "names are lowercase");
    CHECK(qd_gate_lookup(NULL) == NULL, "NULL name gives NULL");
}

static void kron2(const qd_c *A, const qd_c *B, qd_c *out);
static double mat_diff(const qd_c *a, const qd_c *b, size_t n);

/* The registry's facts against the matrices: ids in order, inverses, generators, the
 * diagonal/permutation flags and the shift-rule frequencies. */
QD_TEST(gates_registry)
{
    qd_rng r;
    qd_rng_init(&r, 12);
    size_t n;
    const qd_gate_info *list = qd_gate_list(&n);
    CHECK(n == QD_G_COUNT, "registry has QD_G_COUNT gates (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        const qd_gate_info *g = &list[i];
        size_t d = (size_t)1 << g->nqubits;
        CHECK((size_t)g->id == i && qd_gate_get(g->id) == g, "%s: id %d in order", g->name, g->id);
        double p[3], pi[3] = {0, 0, 0};
        rand_params(g, &r, p);
        qd_c m[64], mi[64], prod[64];
        const qd_gate_info *gi;
        qd_gate_matrix(g, p, m);
        qd_gate_inverse(g, p, &gi, pi);
        qd_gate_matrix(gi, pi, mi);
        ref_matmul(m, mi, d, prod);
        double err = 0;
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++)
                err = fmax(err, cabs(prod[a + b * d] - (a == b ? 1.0 : 0.0)));
        CHECK(err < 1e-14, "%s times its registry inverse %s is I (err %g)", g->name, gi->name, err);
        int diag = 1, perm = 1;
        for (size_t a = 0; a < d; a++) {
            int nz = 0;
            for (size_t b = 0; b < d; b++) {
                if (cabs(m[a + b * d]) > 1e-15) {
                    nz++;
                    if (a != b)
                        diag = 0;
                }
            }
            if (nz != 1)
                perm = 0;
        }
        /* flags must be true when set (a rotation at a random angle is not a permutation) */
        if (g->flags & QD_GF_DIAG)
            CHECK(diag, "%s flagged diagonal is diagonal", g->name);
        if (g->flags & QD_GF_PERM)
            CHECK(perm, "%s flagged permutation has one entry per row", g->name);
        if (g->nparams == 0)
            CHECK(diag == !!(g->flags & QD_GF_DIAG), "%s: diagonal flag matches", g->name);
        if (g->pauli) {
            /* exp(-i a P..P/2) = cos(a/2) I - i sin(a/2) P..P */
            const qd_c X[4] = {0, 1, 1, 0}, Y[4] = {0, I, -I, 0}, Z[4] = {1, 0, 0, -1};
            const qd_c *P = g->pauli == 'X' ? X : g->pauli == 'Y' ? Y : Z;
            qd_c PP[64], want[64];
            if (g->nqubits == 1)
                memcpy(PP, P, sizeof(qd_c) * 4);
            else
                kron2(P, P, PP);
            for (size_t j = 0; j < d * d; j++)
                want[j] = -I * sin(p[0] / 2) * PP[j] + ((j % (d + 1)) == 0 ? cos(p[0] / 2) : 0);
            CHECK(mat_diff(m, want, d * d) < 1e-14, "%s is exp(-i a %c..%c/2)", g->name, g->pauli,
                  g->pauli);
        }
        /* the shift rule with the registry's frequency gives the derivative (central
         * difference of the matrix, step 1e-5) */
        for (int k = 0; k < g->nparams; k++) {
            qd_c D[64], mp[64], mm[64];
            double pp[3], pm[3], h = 1e-5;
            memcpy(pp, p, sizeof pp);
            memcpy(pm, p, sizeof pm);
            pp[k] += h;
            pm[k] -= h;
            qd_gate_dmatrix(g, p, k, D);
            qd_gate_matrix(g, pp, mp);
            qd_gate_matrix(g, pm, mm);
            double e2 = 0;
            for (size_t j = 0; j < d * d; j++)
                e2 = fmax(e2, cabs(D[j] - (mp[j] - mm[j]) / (2 * h)));
            CHECK(e2 < 1e-8, "%s: shift-rule derivative of angle %d (err %g)", g->name, k, e2);
        }
    }
    /* ecr, the gate added through the registry alone: (X(x)I - Y(x)X)/sqrt(2) */
    const qd_c I2[4] = {1, 0, 0, 1}, X[4] = {0, 1, 1, 0}, Y[4] = {0, I, -I, 0};
    qd_c XI[16], YX[16], want[16], m[16];
    kron2(X, I2, XI);
    kron2(Y, X, YX);
    for (int j = 0; j < 16; j++)
        want[j] = (XI[j] - YX[j]) * M_SQRT1_2;
    qd_gate_matrix(qd_gate_lookup("ecr"), NULL, m);
    CHECK(mat_diff(m, want, 16) < 1e-15, "ecr = (X(x)I - Y(x)X)/sqrt(2)");
}

QD_TEST(gates_unitary)
{
    qd_rng r;
    qd_rng_init(&r, 11);
    size_t n;
    const qd_gate_info *list = qd_gate_list(&n);
    for (size_t i = 0; i < n; i++) {
        const qd_gate_info *g = &list[i];
        size_t d = (size_t)1 << g->nqubits;
        for (int rep = 0; rep < 4; rep++) {
            double p[3];
            rand_params(g, &r, p);
            qd_c m[64], md[64], prod[64];
            qd_gate_matrix(g, p, m);
            ref_dagger(m, d, md);
            ref_matmul(m, md, d, prod);
            double err = 0;
            for (size_t a = 0; a < d; a++)
                for (size_t b = 0; b < d; b++)
                    err = fmax(err, cabs(prod[a + b * d] - (a == b ? 1.0 : 0.0)));
            CHECK(err < 1e-14, "%s is unitary (err %g)", g->name, err);
        }
    }
}

/* ---------------------------------------------------------------- known values */

static void kron2(const qd_c *A, const qd_c *B, qd_c *out)   /* 2x2 (x) 2x2, A = MSB */
{
    for (int ra = 0; ra < 2; ra++)
        for (int ca = 0; ca < 2; ca++)
            for (int rb = 0; rb < 2; rb++)
                for (int cb = 0; cb < 2; cb++)
                    out[(2 * ra + rb) + 4 * (2 * ca + cb)] = A[ra + 2 * ca] * B[rb + 2 * cb];
}

static double mat_diff(const qd_c *a, const qd_c *b, size_t n)
{
    return ref_maxdiff(a, b, n);
}

QD_TEST(gates_known_matrices)
{
    const qd_c I2[4] = {1, 0, 0, 1}, X[4] = {0, 1, 1, 0}, Y[4] = {0, I, -I, 0},
               Z[4] = {1, 0, 0, -1};
    qd_c m[64], want[64], t[64];
    const double th = 0.7312;
    double c = cos(th / 2), s = sin(th / 2);

    /* rotations are exp(-i theta P/2) = cos I - i sin P, for 1- and 2-qubit Paulis */
    const qd_c *P1[3] = {X, Y, Z};
    const char *r1[3] = {"rx", "ry", "rz"}, *r2[3] = {"rxx", "ryy", "rzz"};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 4; i++)
            want[i] = c * I2[i] - I * s * P1[k][i];
        qd_gate_matrix(qd_gate_lookup(r1[k]), &th, m);
        CHECK(mat_diff(m, want, 4) < 1e-15, "%s = exp(-i theta P/2)", r1[k]);
        kron2(P1[k], P1[k], t);
        for (int i = 0; i < 16; i++)
            want[i] = c * (i % 5 == 0 ? 1 : 0) - I * s * t[i];
        qd_gate_matrix(qd_gate_lookup(r2[k]), &th, m);
        CHECK(mat_diff(m, want, 16) < 1e-15, "%s = exp(-i theta PP/2)", r2[k]);
    }

    /* controlled gates are diag(I, U) with the control the MSB */
    const char *cg[] = {"cx", "cy", "cz", "ch", "crx", "cry", "crz", "cp"};
    const char *tg[] = {"x", "y", "z", "h", "rx", "ry", "rz", "p"};
    for (int k = 0; k < 8; k++) {
        qd_c u[4];
        qd_gate_matrix(qd_gate_lookup(tg[k]), &th, u);
        qd_gate_matrix(qd_gate_lookup(cg[k]), &th, m);
        memset(want, 0, sizeof(qd_c) * 16);
        want[0] = want[5] = 1;
        want[10] = u[0]; want[11] = u[1]; want[14] = u[2]; want[15] = u[3];
        CHECK(mat_diff(m, want, 16) < 1e-15, "%s = diag(I, %s)", cg[k], tg[k]);
    }

    /* phases and square roots */
    qd_c a[4], b[4];
    qd_gate_matrix(qd_gate_lookup("s"), NULL, a);
    ref_matmul(a, a, 2, b);
    CHECK(mat_diff(b, Z, 4) < 1e-15, "s^2 = z");
    qd_gate_matrix(qd_gate_lookup("t"), NULL, a);
    ref_matmul(a, a, 2, b);
    qd_gate_matrix(qd_gate_lookup("s"), NULL, a);
    CHECK(mat_diff(b, a, 4) < 1e-15, "t^2 = s");
    qd_gate_matrix(qd_gate_lookup("sx"), NULL, a);
    ref_matmul(a, a, 2, b);
    CHECK(mat_diff(b, X, 4) < 1e-15, "sx^2 = x");
    qd_c sxd[4];
    qd_gate_matrix(qd_gate_lookup("sxdg"), NULL, sxd);
    ref_dagger(a, 2, b);
    CHECK(mat_diff(b, sxd, 4) < 1e-15, "sxdg = sx^dagger");
    qd_gate_matrix(qd_gate_lookup("sdg"), NULL, a);
    CHECK(cabs(a[3] + I) < 1e-15 && cabs(a[0] - 1) < 1e-15, "sdg = diag(1,-i)");
    qd_gate_matrix(qd_gate_lookup("tdg"), NULL, a);
    CHECK(cabs(a[3] - cexp(-I * M_PI / 4)) < 1e-15, "tdg = diag(1,e^{-i pi/4})");
    double pl = M_PI / 2;
    qd_gate_matrix(qd_gate_lookup("p"), &pl, a);
    qd_gate_matrix(qd_gate_lookup("s"), NULL, b);
    CHECK(mat_diff(a, b, 4) < 1e-15, "p(pi/2) = s");
    qd_gate_matrix(qd_gate_lookup("cp"), &pl, m);
    CHECK(cabs(m[15] - I) < 1e-15 && cabs(m[10] - 1) < 1e-15, "cp(pi/2) = diag(1,1,1,i)");

    /* u(theta, phi, lambda), OpenQASM 3 */
    double up[3] = {0.3, -1.1, 2.4};
    qd_gate_matrix(qd_gate_lookup("u"), up, a);
    double uc = cos(0.15), us = sin(0.15);
    qd_c uw[4] = {uc, cexp(I * -1.1) * us, -cexp(I * 2.4) * us, cexp(I * (1.3)) * uc};
    CHECK(mat_diff(a, uw, 4) < 1e-15, "u matrix");
    double uh[3] = {M_PI / 2, 0, M_PI};
    qd_gate_matrix(qd_gate_lookup("u"), uh, a);
    qd_gate_matrix(qd_gate_lookup("h"), NULL, b);
    CHECK(mat_diff(a, b, 4) < 1e-15, "u(pi/2, 0, pi) = h");
    double rzp = 0.9;
    qd_gate_matrix(qd_gate_lookup("rzz"), &rzp, m);
    CHECK(cabs(m[0] - cexp(-0.45 * I)) < 1e-15 && cabs(m[5] - cexp(0.45 * I)) < 1e-15 &&
              cabs(m[10] - cexp(0.45 * I)) < 1e-15 && cabs(m[15] - cexp(-0.45 * I)) < 1e-15,
          "rzz phases e^{-i t/2}, e^{i t/2}, e^{i t/2}, e^{-i t/2}");
}

QD_TEST(gates_known_states)
{
    qd_c a[8];
    int q01[2] = {0, 1}, q10[2] = {1, 0};

    /* qubit 0 is the MSB: x on qubit 0 of |00> gives index 2 */
    qd_state_zero(a, 2);
    qd_apply_gate(a, 2, 1, qd_gate_lookup("x"), q01, NULL, 0);
    CHECK(a[2] == 1 && a[0] == 0, "x(0)|00> = |10> = index 2");
    qd_state_zero(a, 2);
    qd_apply_gate(a, 2, 1, qd_gate_lookup("x"), q10, NULL, 0);
    CHECK(a[1] == 1, "x(1)|00> = |01> = index 1");

    /* cx with qubit 0 the control: |10> -> |11>; with qubit 1 the control: unchanged */
    qd_state_basis(a, 2, 2);
    qd_apply_gate(a, 2, 1, qd_gate_lookup("cx"), q01, NULL, 0);
    CHECK(a[3] == 1 && a[2] == 0, "cx(0,1)|10> = |11>");
    qd_state_basis(a, 2, 2);
    qd_apply_gate(a, 2, 1, qd_gate_lookup("cx"), q10, NULL, 0);
    CHECK(a[2] == 1, "cx(1,0)|10> = |10>");
    qd_state_basis(a, 2, 1);
    qd_apply_gate(a, 2, 1, qd_gate_lookup("cx"), q10, NULL, 0);
    CHECK(a[3] == 1, "cx(1,0)|01> = |11>");

    /* h|0> = |+> */
    qd_state_zero(a, 1);
    int q0 = 0;
    qd_apply_gate(a, 1, 1, qd_gate_lookup("h"), &q0, NULL, 0);
    CHECK(cabs(a[0] - M_SQRT1_2) < 1e-15 && cabs(a[1] - M_SQRT1_2) < 1e-15, "h|0> = |+>");

    /* rzz: |01> picks up e^{+i t/2}, |11> picks up e^{-i t/2} */
    double th = 1.3;
    qd_state_basis(a, 2, 1);
    qd_apply_gate(a, 2, 1, qd_gate_lookup("rzz"), q01, &th, 0);
    CHECK(cabs(a[1] - cexp(0.65 * I)) < 1e-15, "rzz|01> = e^{i t/2}|01>");
    qd_state_basis(a, 2, 3);
    qd_apply_gate(a, 2, 1, qd_gate_lookup("rzz"), q01, &th, 0);
    CHECK(cabs(a[3] - cexp(-0.65 * I)) < 1e-15, "rzz|11> = e^{-i t/2}|11>");

    /* swap, ccx, cswap on basis states */
    qd_state_basis(a, 2, 1);
    qd_apply_gate(a, 2, 1, qd_gate_lookup("swap"), q01, NULL, 0);
    CHECK(a[2] == 1, "swap|01> = |10>");
    int q012[3] = {0, 1, 2}, q201[3] = {2, 0, 1};
    qd_state_basis(a, 3, 6);
    qd_apply_gate(a, 3, 1, qd_gate_lookup("ccx"), q012, NULL, 0);
    CHECK(a[7] == 1, "ccx|110> = |111>");
    qd_state_basis(a, 3, 5);
    qd_apply_gate(a, 3, 1, qd_gate_lookup("ccx"), q012, NULL, 0);
    CHECK(a[5] == 1, "ccx|101> = |101>");
    qd_state_basis(a, 3, 5);
    qd_apply_gate(a, 3, 1, qd_gate_lookup("cswap"), q012, NULL, 0);
    CHECK(a[6] == 1, "cswap|101> = |110>");
    /* cswap with control qubit 2 swapping qubits 0 and 1: |101> -> |011> */
    qd_state_basis(a, 3, 5);
    qd_apply_gate(a, 3, 1, qd_gate_lookup("cswap"), q201, NULL, 0);
    CHECK(a[3] == 1, "cswap(2;0,1)|101> = |011>");
    qd_state_basis(a, 3, 4);
    qd_apply_gate(a, 3, 1, qd_gate_lookup("cswap"), q201, NULL, 0);
    CHECK(a[4] == 1, "cswap(2;0,1)|100> = |100>");
}

/* ---------------------------------------------------------------- every gate, every placement */

QD_TEST(gates_vs_dense_reference)
{
    qd_rng r;
    qd_rng_init(&r, 2024);
    size_t n;
    const qd_gate_info *list = qd_gate_list(&n);
    qd_c x[32], y[32], want[32];
    for (int nq = 1; nq <= 5; nq++) {
        size_t d = (size_t)1 << nq;
        for (size_t gi = 0; gi < n; gi++) {
            const qd_gate_info *g = &list[gi];
            int qs[3];
            int cases = 0;
            double worst = 0;
            for (int ok = first_tuple(qs, g->nqubits, nq); ok; ok = next_tuple(qs, g->nqubits, nq)) {
                double p[3];
                qd_c m[64];
                rand_params(g, &r, p);
                qd_gate_matrix(g, p, m);
                ref_random_vec(x, d, &r);
                memcpy(y, x, sizeof(qd_c) * d);
                qd_apply_gate(y, nq, 1, g, qs, p, 0);
                ref_apply(nq, qs, g->nqubits, m, x, want);
                worst = fmax(worst, ref_maxdiff(y, want, d));
                cases++;
            }
            if (g->nqubits <= nq)
                CHECK(cases > 0 && worst < TOL, "%s on %d qubits, %d placements: err %g",
                      g->name, nq, cases, worst);
        }
    }
}

/* count > 1: shared parameters and one parameter set per member */
QD_TEST(gates_batches)
{
    qd_rng r;
    qd_rng_init(&r, 99);
    size_t n;
    const qd_gate_info *list = qd_gate_list(&n);
    enum { NQ = 4, CNT = 5 };
    const size_t d = 1 << NQ;
    qd_c x[CNT * 16], y[CNT * 16], want[16];
    for (size_t gi = 0; gi < n; gi++) {
        const qd_gate_info *g = &list[gi];
        int qs[3] = {2, 0, 3};
        for (int per = 0; per <= 1; per++) {
            double p[CNT * 3];
            for (int j = 0; j < CNT * 3; j++)
                p[j] = rand_angle(&r);
            for (int j = 0; j < CNT; j++)
                ref_random_vec(x + j * d, d, &r);
            memcpy(y, x, sizeof x);
            qd_apply_gate(y, NQ, CNT, g, qs, p, per);
            double worst = 0;
            for (int j = 0; j < CNT; j++) {
                qd_c m[64];
                qd_gate_matrix(g, per ? p + j * g->nparams : p, m);
                ref_apply(NQ, qs, g->nqubits, m, x + j * d, want);
                worst = fmax(worst, ref_maxdiff(y + j * d, want, d));
            }
            CHECK(worst < TOL, "%s batch of %d (%s params): err %g", g->name, CNT,
                  per ? "per-member" : "shared", worst);
        }
    }
}

/* rho -> G rho G^dagger against dense U rho U^dagger */
QD_TEST(gates_density_matrix)
{
    qd_rng r;
    qd_rng_init(&r, 5);
    size_t n;
    const qd_gate_info *list = qd_gate_list(&n);
    for (int nq = 1; nq <= 3; nq++) {
        size_t d = (size_t)1 << nq, dd = d * d;
        qd_c *rho = qd_malloc(sizeof(qd_c) * dd), *out = qd_malloc(sizeof(qd_c) * dd);
        qd_c *U = qd_malloc(sizeof(qd_c) * dd), *Ud = qd_malloc(sizeof(qd_c) * dd);
        qd_c *t = qd_malloc(sizeof(qd_c) * dd), *want = qd_malloc(sizeof(qd_c) * dd);
        for (size_t gi = 0; gi < n; gi++) {
            const qd_gate_info *g = &list[gi];
            int qs[3];
            double worst = 0;
            int cases = 0;
            for (int ok = first_tuple(qs, g->nqubits, nq); ok; ok = next_tuple(qs, g->nqubits, nq)) {
                double p[3];
                qd_c m[64];
                rand_params(g, &r, p);
                qd_gate_matrix(g, p, m);
                ref_random_dm(rho, d, &r);
                memcpy(out, rho, sizeof(qd_c) * dd);
                qd_dm_apply_gate(out, nq, g, qs, p);
                ref_full_operator(nq, qs, g->nqubits, m, U);
                ref_dagger(U, d, Ud);
                ref_matmul(U, rho, d, t);
                ref_matmul(t, Ud, d, want);
                worst = fmax(worst, ref_maxdiff(out, want, dd));
                cases++;
            }
            if (g->nqubits <= nq)
                CHECK(worst < TOL, "dm %s on %d qubits, %d placements: err %g", g->name, nq,
                      cases, worst);
        }
        qd_free(rho); qd_free(out); qd_free(U); qd_free(Ud); qd_free(t); qd_free(want);
    }
}

/* ---------------------------------------------------------------- arbitrary matrices */

static void random_unitary(qd_c *m, size_t d, qd_rng *r)
{
    qd_c rd[64];
    for (size_t i = 0; i < d * d; i++)
        m[i] = qd_rng_cnormal(r);
    qd_err e;
    qd_status s = qd_la_qr(m, d, d, rd, &e);
    CHECK(s == QD_OK, "QR of a random matrix");
}

QD_TEST(gates_apply_matrix)
{
    qd_rng r;
    qd_rng_init(&r, 77);
    enum { NQ = 5, CNT = 3 };
    const size_t d = 1 << NQ;
    qd_c x[CNT * 32], y[CNT * 32], want[32], m[16 * 16];
    for (int k = 1; k <= 4; k++) {
        size_t dk = (size_t)1 << k;
        int qs[4];
        double worst = 0;
        int cases = 0;
        for (int ok = first_tuple(qs, k, NQ); ok; ok = next_tuple(qs, k, NQ)) {
            if (k == 4 && (cases % 7) != 0) {   /* 120 placements: keep a sample */
                cases++;
                continue;
            }
            random_unitary(m, dk, &r);
            for (int j = 0; j < CNT; j++)
                ref_random_vec(x + j * d, d, &r);
            memcpy(y, x, sizeof x);
            qd_err e;
            qd_err_clear(&e);
            qd_status s = qd_apply_matrix(y, NQ, CNT, qs, k, m, &e);
            CHECK(s == QD_OK, "apply_matrix k=%d: %s", k, e.msg);
            for (int j = 0; j < CNT; j++) {
                ref_apply(NQ, qs, k, m, x + j * d, want);
                worst = fmax(worst, ref_maxdiff(y + j * d, want, d));
            }
            cases++;
        }
        CHECK(worst < TOL, "apply_matrix k=%d on %d qubits x %d: err %g", k, NQ, CNT, worst);
    }
    /* bad sizes are refused, not crashed on */
    qd_err e;
    int qs[13] = {0};
    CHECK(qd_apply_matrix(y, NQ, 1, qs, 13, m, &e) == QD_EARG, "k = 13 refused");
    CHECK(qd_apply_matrix(y, NQ, 1, qs, 0, m, &e) == QD_EARG, "k = 0 refused");
    CHECK(qd_apply_matrix(y, 2, 1, qs, 3, m, &e) == QD_EARG, "k > nq refused");
}

QD_TEST(gates_dm_apply_matrix)
{
    qd_rng r;
    qd_rng_init(&r, 78);
    enum { N = 3 };
    const size_t d = 1 << N, dd = d * d;
    qd_c rho[64], out[64], U[64], Ud[64], t[64], want[64], m[64];
    for (int k = 1; k <= 3; k++) {
        int qs[3];
        double worst = 0;
        for (int ok = first_tuple(qs, k, N); ok; ok = next_tuple(qs, k, N)) {
            /* not unitary on purpose: M rho M^dagger holds for any M */
            for (size_t i = 0; i < ((size_t)1 << (2 * k)); i++)
                m[i] = qd_rng_cnormal(&r);
            ref_random_dm(rho, d, &r);
            memcpy(out, rho, sizeof rho);
            qd_err e;
            CHECK(qd_dm_apply_matrix(out, N, qs, k, m, &e) == QD_OK, "dm_apply_matrix");
            ref_full_operator(N, qs, k, m, U);
            ref_dagger(U, d, Ud);
            ref_matmul(U, rho, d, t);
            ref_matmul(t, Ud, d, want);
            worst = fmax(worst, ref_maxdiff(out, want, dd));
        }
        CHECK(worst < 1e-11, "dm_apply_matrix k=%d: err %g", k, worst);
    }
}

/* ---------------------------------------------------------------- low-level kernels */

QD_TEST(gates_kernels_direct)
{
    qd_rng r;
    qd_rng_init(&r, 31);
    enum { NQ = 5, CNT = 2 };
    const size_t d = 1 << NQ;
    qd_c x[CNT * 32], y[CNT * 32], want[32], m[4], big[64];

    /* doubly controlled random 1-qubit matrix, controls in every position */
    int ctrl[2] = {4, 1}, t = 2;
    for (int i = 0; i < 4; i++)
        m[i] = qd_rng_cnormal(&r);
    memset(big, 0, sizeof big);
    for (int i = 0; i < 6; i++)
        big[i + 8 * i] = 1;
    big[6 + 8 * 6] = m[0]; big[7 + 8 * 6] = m[1]; big[6 + 8 * 7] = m[2]; big[7 + 8 * 7] = m[3];
    for (int j = 0; j < CNT; j++)
        ref_random_vec(x + j * d, d, &r);
    memcpy(y, x, sizeof x);
    qd_k_ctrl1q(y, NQ, CNT, ctrl, 2, t, m);
    int qs3[3] = {4, 1, 2};
    double worst = 0;
    for (int j = 0; j < CNT; j++) {
        ref_apply(NQ, qs3, 3, big, x + j * d, want);
        worst = fmax(worst, ref_maxdiff(y + j * d, want, d));
    }
    CHECK(worst < TOL, "ctrl1q with 2 controls: err %g", worst);

    /* exact X as controlled matrix takes the exchange path */
    qd_c X[4] = {0, 1, 1, 0};
    big[6 + 8 * 6] = 0; big[7 + 8 * 6] = 1; big[6 + 8 * 7] = 1; big[7 + 8 * 7] = 0;
    memcpy(y, x, sizeof x);
    qd_k_ctrl1q(y, NQ, CNT, ctrl, 2, t, X);
    worst = 0;
    for (int j = 0; j < CNT; j++) {
        ref_apply(NQ, qs3, 3, big, x + j * d, want);
        worst = fmax(worst, ref_maxdiff(y + j * d, want, d));
    }
    CHECK(worst < TOL, "ctrl1q with X: err %g", worst);

    /* diagonal kernels with general (non-unit) entries */
    for (int q = 0; q < NQ; q++) {
        qd_c d0 = qd_rng_cnormal(&r), d1 = qd_rng_cnormal(&r), dm[4] = {d0, 0, 0, d1};
        memcpy(y, x, sizeof x);
        qd_k_diag1(y, NQ, CNT, q, d0, d1);
        worst = 0;
        for (int j = 0; j < CNT; j++) {
            ref_apply(NQ, &q, 1, dm, x + j * d, want);
            worst = fmax(worst, ref_maxdiff(y + j * d, want, d));
        }
        CHECK(worst < TOL, "diag1 on qubit %d: err %g", q, worst);
    }
    int qs2[2];
    for (int ok = first_tuple(qs2, 2, NQ); ok; ok = next_tuple(qs2, 2, NQ)) {
        qd_c dg[4], dm[16] = {0};
        for (int i = 0; i < 4; i++)
            dm[i * 5] = dg[i] = i == 1 ? 1.0 : qd_rng_cnormal(&r);   /* one entry exactly 1 */
        memcpy(y, x, sizeof x);
        qd_k_diag2(y, NQ, CNT, qs2[0], qs2[1], dg);
        worst = 0;
        for (int j = 0; j < CNT; j++) {
            ref_apply(NQ, qs2, 2, dm, x + j * d, want);
            worst = fmax(worst, ref_maxdiff(y + j * d, want, d));
        }
        CHECK(worst < TOL, "diag2 on (%d,%d): err %g", qs2[0], qs2[1], worst);
    }

    /* 1q batch: a different matrix per member */
    qd_c ms[4 * CNT];
    for (int i = 0; i < 4 * CNT; i++)
        ms[i] = qd_rng_cnormal(&r);
    for (int q = 0; q < NQ; q++) {
        memcpy(y, x, sizeof x);
        qd_k_1q_batch(y, NQ, CNT, q, ms);
        worst = 0;
        for (int j = 0; j < CNT; j++) {
            ref_apply(NQ, &q, 1, ms + 4 * j, x + j * d, want);
            worst = fmax(worst, ref_maxdiff(y + j * d, want, d));
        }
        CHECK(worst < TOL, "1q_batch on qubit %d: err %g", q, worst);
    }
}

/* ---------------------------------------------------------------- threads */

/* Big enough to take the OpenMP paths; results must match the per-amplitude reference
 * and be bitwise identical with 1 and 2 threads. */
QD_TEST(gates_threads_bitwise)
{
    int saved = qd_get_threads();
    qd_rng r;
    qd_rng_init(&r, 4242);
    enum { NQ = 16 };
    const size_t d = (size_t)1 << NQ;
    qd_c *x = qd_malloc(sizeof(qd_c) * d), *y1 = qd_malloc(sizeof(qd_c) * d);
    qd_c *y2 = qd_malloc(sizeof(qd_c) * d), *want = qd_malloc(sizeof(qd_c) * d);
    ref_random_vec(x, d, &r);
    static const struct { const char *g; int qs[3]; } cases[] = {
        {"h", {0}}, {"h", {7}}, {"u", {15}}, {"ry", {14}}, {"x", {0}}, {"x", {15}},
        {"rz", {15}}, {"t", {3}}, {"cz", {15, 14}}, {"crz", {0, 15}}, {"cp", {9, 2}},
        {"rzz", {1, 12}}, {"cx", {15, 0}}, {"cx", {2, 15}}, {"cry", {14, 15}},
        {"ch", {0, 1}}, {"swap", {15, 3}}, {"rxx", {0, 15}}, {"ryy", {15, 14}},
        {"ccx", {15, 0, 7}}, {"cswap", {14, 15, 13}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const qd_gate_info *g = qd_gate_lookup(cases[c].g);
        double p[3] = {0.37, -1.2, 2.9};
        qd_c m[64];
        qd_gate_matrix(g, p, m);
        memcpy(y1, x, sizeof(qd_c) * d);
        memcpy(y2, x, sizeof(qd_c) * d);
        qd_set_threads(1);
        qd_apply_gate(y1, NQ, 1, g, cases[c].qs, p, 0);
        qd_set_threads(2);
        qd_apply_gate(y2, NQ, 1, g, cases[c].qs, p, 0);
        CHECK(memcmp(y1, y2, sizeof(qd_c) * d) == 0, "%s on 16 qubits: 1 and 2 threads agree "
              "bitwise", cases[c].g);
        ref_apply_local(NQ, cases[c].qs, g->nqubits, m, x, want);
        double err = ref_maxdiff(y2, want, d);
        CHECK(err < TOL, "%s on 16 qubits vs reference: err %g", cases[c].g, err);
    }
    /* 4-qubit matrix (the gather/scatter kernel) */
    {
        qd_c m[256];
        random_unitary(m, 16, &r);
        int qs[4] = {15, 0, 8, 3};
        memcpy(y1, x, sizeof(qd_c) * d);
        memcpy(y2, x, sizeof(qd_c) * d);
        qd_set_threads(1);
        CHECK(qd_apply_matrix(y1, NQ, 1, qs, 4, m, NULL) == QD_OK, "apply_matrix 1 thread");
        qd_set_threads(2);
        CHECK(qd_apply_matrix(y2, NQ, 1, qs, 4, m, NULL) == QD_OK, "apply_matrix 2 threads");
        CHECK(memcmp(y1, y2, sizeof(qd_c) * d) == 0, "apply_matrix: threads agree bitwise");
        ref_apply_local(NQ, qs, 4, m, x, want);
        CHECK(ref_maxdiff(y2, want, d) < TOL, "apply_matrix k=4 on 16 qubits vs reference");
    }
    /* density matrix of 8 qubits = vector of 16 */
    {
        const qd_gate_info *g = qd_gate_lookup("cry");
        int qs[2] = {7, 2};
        double p = 0.8;
        memcpy(y1, x, sizeof(qd_c) * d);
        memcpy(y2, x, sizeof(qd_c) * d);
        qd_set_threads(1);
        qd_dm_apply_gate(y1, 8, g, qs, &p);
        qd_set_threads(2);
        qd_dm_apply_gate(y2, 8, g, qs, &p);
        CHECK(memcmp(y1, y2, sizeof(qd_c) * d) == 0, "dm cry on 8 qubits: threads agree");
    }
    qd_set_threads(saved);
    qd_free(x); qd_free(y1); qd_free(y2); qd_free(want);
}

/* ensemble of 100 members x 8 qubits with a different angle per member (QuDDPM's
 * forward process): parallel over members, bitwise equal across thread counts and equal
 * to gate-by-gate on each member */
QD_TEST(gates_threads_ensemble)
{
    int saved = qd_get_threads();
    qd_rng r;
    qd_rng_init(&r, 8);
    enum { NQ = 8, CNT = 100 };
    const size_t d = 1 << NQ, tot = d * CNT;
    qd_c *x = qd_malloc(sizeof(qd_c) * tot), *y1 = qd_malloc(sizeof(qd_c) * tot);
    qd_c *y2 = qd_malloc(sizeof(qd_c) * tot), *want = qd_malloc(sizeof(qd_c) * d);
    double p[3 * CNT];
    for (int j = 0; j < 3 * CNT; j++)
        p[j] = rand_angle(&r);
    for (int j = 0; j < CNT; j++)
        ref_random_vec(x + j * d, d, &r);
    const char *names[] = {"ry", "rz", "u", "crx", "rzz", "ryy", "cz", "h"};
    for (size_t c = 0; c < sizeof names / sizeof names[0]; c++) {
        const qd_gate_info *g = qd_gate_lookup(names[c]);
        int qs[2] = {6, 1};
        for (int per = 0; per <= 1; per++) {
            memcpy(y1, x, sizeof(qd_c) * tot);
            memcpy(y2, x, sizeof(qd_c) * tot);
            qd_set_threads(1);
            qd_apply_gate(y1, NQ, CNT, g, qs, p, per);
            qd_set_threads(2);
            qd_apply_gate(y2, NQ, CNT, g, qs, p, per);
            CHECK(memcmp(y1, y2, sizeof(qd_c) * tot) == 0,
                  "%s on 100 x 8 qubits (%s): threads agree bitwise", names[c],
                  per ? "per-member" : "shared");
            double worst = 0;
            for (int j = 0; j < CNT; j++) {
                qd_c m[64];
                qd_gate_matrix(g, per ? p + j * g->nparams : p, m);
                ref_apply_local(NQ, qs, g->nqubits, m, x + j * d, want);
                worst = fmax(worst, ref_maxdiff(y2 + j * d, want, d));
            }
            CHECK(worst < TOL, "%s on 100 x 8 qubits (%s) vs reference: err %g", names[c],
                  per ? "per-member" : "shared", worst);
        }
    }
    qd_set_threads(saved);
    qd_free(x); qd_free(y1); qd_free(y2); qd_free(want);
}
