/* test_circuit_cond.c — conditional ops (qd_circuit_set_cond, an OpenQASM `if` on measured
 * bits) against naive references: on pure states, member by member with given outcomes, the
 * run equals applying the op exactly when the outcome bits say so; on density matrices the
 * run equals the mixture over outcomes sum_m p_m |psi_m><psi_m| of the pure-state branches
 * (each branch computed gate by gate with its outcomes fixed); negated and multi-bit
 * conditions; set_cond's argument checks; no gradient through a conditional op. */
#include "harness.h"
#include "qd_circuit.h"
#include <math.h>
#include <string.h>

#define TOL 1e-12

static const qd_gate_info *G(const char *name) { return qd_gate_lookup(name); }

static void add(qd_circuit *c, const char *name, int q0, int q1, double a)
{
    int qs[2] = {q0, q1}, slot[3] = {-1, -1, -1};
    double sc[3] = {0, 0, 0}, off[3] = {a, 0, 0};
    qd_err e;
    qd_circuit_add_gate(c, G(name), qs, slot, sc, off, &e);
}

/* a 3-qubit circuit: prepare, measure qubits {0, 1} jointly (op 0), then conditional ops */
static void build(qd_circuit *c)
{
    qd_circuit_init(c, 3);
    add(c, "ry", 0, 0, 1.1);
    add(c, "h", 1, 0, 0);
    add(c, "cx", 1, 2, 0);
    add(c, "ry", 2, 0, 0.4);
    int mq[2] = {0, 1};
    qd_err e;
    qd_circuit_add_measure(c, mq, 2, 0, &e);
    /* x on 2 if qubit 0 (bit 1 of the joint outcome) is 1 */
    add(c, "x", 2, 0, 0);
    int mi[2] = {0, 0}, bit[2] = {1, 0}, val[2] = {1, 0};
    CHECK(qd_circuit_set_cond(c, c->nops - 1, mi, bit, val, 1, 0, &e) == QD_OK, "set_cond: %s", e.msg);
    /* rx(0.7) on 2 unless (qubit 0, qubit 1) = (1, 0) */
    add(c, "rx", 2, 0, 0.7);
    CHECK(qd_circuit_set_cond(c, c->nops - 1, mi, bit, val, 2, 1, &e) == QD_OK, "set_cond neg: %s", e.msg);
    add(c, "h", 0, 0, 0);   /* unconditional, after */
}

/* the branch with joint outcome m (qubit 0 the high bit), by hand: returns its probability */
static double branch(size_t m, qd_c *psi)
{
    memset(psi, 0, sizeof(qd_c) * 8);
    psi[0] = 1;
    double p[3] = {1.1, 0, 0.4};
    qd_apply_gate(psi, 3, 1, G("ry"), (int[]){0}, p, 0);
    qd_apply_gate(psi, 3, 1, G("h"), (int[]){1}, NULL, 0);
    qd_apply_gate(psi, 3, 1, G("cx"), (int[]){1, 2}, NULL, 0);
    qd_apply_gate(psi, 3, 1, G("ry"), (int[]){2}, p + 2, 0);
    double pr = 0;
    for (size_t i = 0; i < 8; i++) {
        if ((i >> 1) != m)
            psi[i] = 0;
        pr += creal(psi[i] * conj(psi[i]));
    }
    if (pr == 0)
        return 0;
    for (size_t i = 0; i < 8; i++)
        psi[i] /= sqrt(pr);
    int b0 = (int)(m >> 1) & 1, b1 = (int)m & 1;
    if (b0 == 1)
        qd_apply_gate(psi, 3, 1, G("x"), (int[]){2}, NULL, 0);
    double a = 0.7;
    if (!(b0 == 1 && b1 == 0))
        qd_apply_gate(psi, 3, 1, G("rx"), (int[]){2}, &a, 0);
    qd_apply_gate(psi, 3, 1, G("h"), (int[]){0}, NULL, 0);
    return pr;
}

QD_TEST(circuit_cond_states_and_dm)
{
    qd_circuit c;
    build(&c);
    CHECK(c.ncondops == 2, "two conditional ops, got %d", c.ncondops);
    qd_err e;
    /* pure states: member j with fixed outcome j */
    qd_c a[4 * 8], want[8];
    size_t out[4] = {0, 1, 2, 3};
    for (int j = 0; j < 4; j++) {
        memset(a + 8 * j, 0, sizeof(qd_c) * 8);
        a[8 * j] = 1;
    }
    qd_meas_ctl mc = {NULL, out, 1, 1, NULL};
    CHECK(qd_circuit_run_vec(&c, NULL, a, 4, &mc, NULL, &e) == QD_OK, "run_vec: %s", e.msg);
    double worst = 0;
    for (int j = 0; j < 4; j++) {
        if (branch((size_t)j, want) == 0)
            continue;
        for (int i = 0; i < 8; i++)
            worst = fmax(worst, cabs(a[8 * j + i] - want[i]));
    }
    CHECK(worst < TOL, "pure-state branches: max diff %g", worst);
    /* the unfused run agrees */
    for (int j = 0; j < 4; j++) {
        memset(a + 8 * j, 0, sizeof(qd_c) * 8);
        a[8 * j] = 1;
    }
    qd_c b[4 * 8];
    memcpy(b, a, sizeof b);
    CHECK(qd_circuit_run_vec_unfused(&c, NULL, b, 4, &mc, NULL, &e) == QD_OK, "unfused");
    CHECK(qd_circuit_run_vec(&c, NULL, a, 4, &mc, NULL, &e) == QD_OK, "fused");
    worst = 0;
    for (int i = 0; i < 32; i++)
        worst = fmax(worst, cabs(a[i] - b[i]));
    CHECK(worst < TOL, "fused = unfused: %g", worst);
    /* density matrix: the mixture of the branches */
    qd_c rho[64], ref[64];
    memset(rho, 0, sizeof rho);
    rho[0] = 1;
    memset(ref, 0, sizeof ref);
    for (size_t m = 0; m < 4; m++) {
        double p = branch(m, want);
        for (int r = 0; r < 8; r++)
            for (int cc = 0; cc < 8; cc++)
                ref[r + 8 * cc] += p * want[r] * conj(want[cc]);
    }
    CHECK(qd_circuit_run_dm(&c, NULL, rho, NULL, &e) == QD_OK, "run_dm: %s", e.msg);
    worst = 0;
    for (int i = 0; i < 64; i++)
        worst = fmax(worst, cabs(rho[i] - ref[i]));
    CHECK(worst < TOL, "density matrix = mixture of branches: max diff %g", worst);
    /* a copy keeps the conditions */
    qd_circuit d;
    CHECK(qd_circuit_copy(&d, &c, &e) == QD_OK && d.ncondops == 2 && d.ops[5].cond &&
              d.ops[5].cond != c.ops[5].cond, "copy");
    /* no gradient */
    double grad[1];
    qd_c G_in[8], Gv[8] = {0};
    CHECK(qd_circuit_vjp_dm(&c, NULL, ref, ref, grad, NULL, &e) != QD_OK && strstr(e.msg, "conditional"),
          "vjp_dm refuses");
    CHECK(qd_circuit_vjp_vec(&c, NULL, a, 1, out, Gv, NULL, grad, G_in, NULL, &e) != QD_OK &&
              strstr(e.msg, "conditional"), "vjp_vec refuses");
    qd_circuit_free(&d);
    qd_circuit_free(&c);
}

QD_TEST(circuit_cond_errors)
{
    qd_circuit c;
    qd_circuit_init(&c, 2);
    add(&c, "h", 0, 0, 0);
    qd_err e;
    int mi = 0, bit = 0, val = 1;
    CHECK(qd_circuit_set_cond(&c, 0, &mi, &bit, &val, 1, 0, &e) != QD_OK, "no measurement before");
    int q = 0;
    qd_circuit_add_measure(&c, &q, 1, 0, &e);
    CHECK(qd_circuit_set_cond(&c, 1, &mi, &bit, &val, 1, 0, &e) != QD_OK, "a measurement is not a gate op");
    add(&c, "x", 1, 0, 0);
    CHECK(qd_circuit_set_cond(&c, 2, &mi, &bit, &val, 0, 0, &e) != QD_OK, "no bits");
    val = 2;
    CHECK(qd_circuit_set_cond(&c, 2, &mi, &bit, &val, 1, 0, &e) != QD_OK, "value 0/1");
    val = 1;
    mi = 1;
    CHECK(qd_circuit_set_cond(&c, 2, &mi, &bit, &val, 1, 0, &e) != QD_OK, "measurement 2 does not exist");
    mi = 0;
    CHECK(qd_circuit_set_cond(&c, 2, &mi, &bit, &val, 1, 0, &e) == QD_OK, "ok");
    CHECK(qd_circuit_set_cond(&c, 2, &mi, &bit, &val, 1, 1, &e) == QD_OK && c.ncondops == 1, "replaced, counted once");
    qd_circuit_free(&c);
}
