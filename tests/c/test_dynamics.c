/* test_dynamics.c — dynamics.c: the Lindblad right-hand side against the dense formula,
 * the adaptive Dormand-Prince integration against QuTiP mesolve (2 and 3 qubits, dephasing
 * + amplitude damping; tests/data/dynamics) and 1/2-thread identity, and SSE trajectories: records and Wiener
 * increments from the documented substreams, batch and thread independence, feedback
 * Hamiltonians (shared and per member), reverse time, norm preservation, and the
 * trajectory average converging to the Lindblad solution (sampling error ~ 1/sqrt(N),
 * Euler-Maruyama bias ~ dt: weak order 1). */
#include "harness.h"
#include "qd_dynamics.h"
#include "qd_sse_lanes.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void test_h3(qd_pauli_sum *H);                 /* test_pauli.c */
int load_ref(const char *name, qd_npy *f);

static void addt(qd_pauli_sum *H, qd_c c, const char *ops, int q0, int q1)
{
    int qs[2] = {q0, q1};
    qd_err e;
    qd_status s = qd_ps_add_term(H, c, ops, qs, (int)strlen(ops), &e);
    CHECK(s == QD_OK, "add %s", ops);
}

/* sqrt(g) sigma_minus on qubit q: sqrt(g) (X + iY) / 2 */
static void sminus(qd_pauli_sum *L, int n, int q, double g)
{
    qd_ps_init(L, n);
    addt(L, 0.5 * sqrt(g), "X", q, -1);
    addt(L, 0.5 * I * sqrt(g), "Y", q, -1);
}

static void dephase(qd_pauli_sum *L, int n, int q, double g)
{
    qd_ps_init(L, n);
    addt(L, sqrt(g), "Z", q, -1);
}

/* the L3 list of make_dynamics_refs.py */
static void l3(qd_pauli_sum L[4])
{
    dephase(&L[0], 3, 0, 0.3);
    sminus(&L[1], 3, 1, 0.2);
    sminus(&L[2], 3, 2, 0.1);
    dephase(&L[3], 3, 2, 0.15);
}

static void dense_rhs(const qd_c *Hd, const qd_c *Ld, size_t nL, const qd_c *rho, size_t d, qd_c *out)
{
    size_t D = d * d;
    qd_c *A = malloc(sizeof(qd_c) * D), *B = malloc(sizeof(qd_c) * D), *Lh = malloc(sizeof(qd_c) * D),
         *LL = malloc(sizeof(qd_c) * D);
    ref_matmul(Hd, rho, d, A);
    ref_matmul(rho, Hd, d, B);
    for (size_t i = 0; i < D; i++)
        out[i] = -I * (A[i] - B[i]);
    for (size_t k = 0; k < nL; k++) {
        const qd_c *L = Ld + k * D;
        ref_dagger(L, d, Lh);
        ref_matmul(L, rho, d, A);
        ref_matmul(A, Lh, d, B);
        ref_matmul(Lh, L, d, LL);
        for (size_t i = 0; i < D; i++)
            out[i] += B[i];
        ref_matmul(LL, rho, d, A);
        ref_matmul(rho, LL, d, B);
        for (size_t i = 0; i < D; i++)
            out[i] -= 0.5 * (A[i] + B[i]);
    }
    free(A);
    free(B);
    free(Lh);
    free(LL);
}

QD_TEST(dyn_lindblad_rhs_dense)
{
    qd_pauli_sum H, L[4], K;
    test_h3(&H);
    l3(L);
    qd_err e;
    CHECK(qd_lindblad_k(&H, L, 4, 3, &K, &e) == QD_OK, "K built");
    qd_c Hd[64], Ld[4 * 64], rho[64], f[64], g[64], scr[128];
    qd_ps_dense(&H, Hd);
    for (int k = 0; k < 4; k++)
        qd_ps_dense(&L[k], Ld + 64 * k);
    qd_rng r;
    qd_rng_init(&r, 4);
    ref_random_dm(rho, 8, &r);
    qd_lindblad_rhs(&K, L, 4, rho, f, scr);
    dense_rhs(Hd, Ld, 4, rho, 8, g);
    CHECK(ref_maxdiff(f, g, 64) < 1e-13, "local rhs = dense formula: %g", ref_maxdiff(f, g, 64));
    qd_c tr = 0;
    for (int i = 0; i < 8; i++)
        tr += f[i + 8 * i];
    CHECK(cabs(tr) < 1e-14, "Tr f(rho) = 0");
    qd_ps_free(&H);
    qd_ps_free(&K);
    for (int k = 0; k < 4; k++)
        qd_ps_free(&L[k]);
}

QD_TEST(dyn_lindblad_qutip)
{
    qd_npy f0, fr;
    qd_err e;
    /* 3 qubits */
    qd_pauli_sum H, L[4];
    test_h3(&H);
    l3(L);
    if (load_ref("rho3_0", &f0) && load_ref("lindblad3", &fr)) {
        double ts[4] = {0, 0.5, 1, 2};
        qd_c out[4 * 64];
        qd_lindblad_opts o = {.rtol = 1e-10, .atol = 1e-12};
        CHECK(qd_lindblad(f0.data, 3, &H, L, 4, ts, 4, out, &o, &e) == QD_OK, "lindblad 3 qubits: %s", e.msg);
        double worst = ref_maxdiff(out, fr.data, 4 * 64);
        CHECK(worst < 1e-10, "3 qubits = QuTiP mesolve at t = 0, 0.5, 1, 2: %g (%zu steps, %zu rejected)", worst,
              o.steps, o.rejected);
        CHECK(ref_maxdiff(f0.data, out + 3 * 64, 64) == 0, "rho holds the last state");
        /* default tolerances: error at the 1e-7 level */
        qd_npy g0;
        load_ref("rho3_0", &g0);
        qd_lindblad_opts od = {0};
        qd_lindblad(g0.data, 3, &H, L, 4, ts + 3, 1, NULL, &od, &e);
        double err = ref_maxdiff(g0.data, (qd_c *)fr.data + 3 * 64, 64);
        CHECK(err < 5e-9, "default rtol 1e-8, atol 1e-10: error %g (%zu steps)", err, od.steps);
        CHECK(od.steps < o.steps, "looser tolerance, fewer steps (%zu < %zu)", od.steps, o.steps);
        qd_free(g0.data);
        qd_free(f0.data);
        qd_free(fr.data);
    }
    /* 2 qubits */
    qd_pauli_sum H2, L2[3];
    qd_ps_init(&H2, 2);
    addt(&H2, 1.0, "X", 0, -1);
    addt(&H2, 0.6, "ZZ", 0, 1);
    addt(&H2, 0.3, "Y", 1, -1);
    sminus(&L2[0], 2, 0, 0.25);
    dephase(&L2[1], 2, 1, 0.4);
    sminus(&L2[2], 2, 1, 0.1);
    if (load_ref("rho2_0", &f0) && load_ref("lindblad2", &fr)) {
        double ts[4] = {0, 0.3, 1.5, 3};
        qd_c out[4 * 16];
        qd_lindblad_opts o = {.rtol = 1e-10, .atol = 1e-12};
        CHECK(qd_lindblad(f0.data, 2, &H2, L2, 3, ts, 4, out, &o, &e) == QD_OK, "lindblad 2 qubits");
        CHECK(ref_maxdiff(out, fr.data, 64) < 1e-8, "2 qubits = QuTiP mesolve: %g", ref_maxdiff(out, fr.data, 64));
        qd_free(f0.data);
        qd_free(fr.data);
    }
    /* no jumps: = U rho U^H */
    qd_c rho[64], r2[64];
    qd_rng r;
    qd_rng_init(&r, 8);
    ref_random_dm(rho, 8, &r);
    memcpy(r2, rho, sizeof rho);
    double T = 1.7;
    qd_lindblad_opts o = {.rtol = 1e-11, .atol = 1e-13};
    qd_lindblad(rho, 3, &H, NULL, 0, &T, 1, NULL, &o, &e);
    qd_ps_evolve_dm(&H, T, r2, NULL, NULL, &e);
    CHECK(ref_maxdiff(rho, r2, 64) < 1e-9, "no jumps: U rho U^H: %g", ref_maxdiff(rho, r2, 64));
    /* errors */
    double bad[2] = {1, 0.5};
    CHECK(qd_lindblad(rho, 3, &H, NULL, 0, bad, 2, NULL, &o, &e) == QD_EARG && strstr(e.msg, "increasing"),
          "times must increase: %s", e.msg);
    CHECK(qd_lindblad(rho, 3, &H2, NULL, 0, &T, 1, NULL, &o, &e) == QD_EARG && strstr(e.msg, "2 qubits"), "size mismatch: %s", e.msg);
    qd_lindblad_opts few = {.max_steps = 3};
    T = 50;
    CHECK(qd_lindblad(rho, 3, &H, L, 4, &T, 1, NULL, &few, &e) == QD_ENUMERIC &&
              strstr(e.msg, "more than 3 steps"),
          "max_steps: %s", e.msg);
    qd_ps_free(&H);
    qd_ps_free(&H2);
    for (int k = 0; k < 4; k++)
        qd_ps_free(&L[k]);
    for (int k = 0; k < 3; k++)
        qd_ps_free(&L2[k]);
}

/* ---------------------------------------------------------------- SSE */

typedef struct {
    size_t calls;
    double last_t;
    int per_member;
    double c;
} fbctx;

static qd_status fb_const(void *ctx, size_t step, double t, qd_c *a, size_t count, qd_c *coef,
                          int *per_member, qd_err *e)
{
    (void)a;
    (void)e;
    fbctx *c = ctx;
    c->calls++;
    c->last_t = t;
    (void)step;
    *per_member = c->per_member;
    if (c->per_member)
        for (size_t j = 0; j < count; j++)
            coef[j] = c->c * (double)(j + 1);
    else
        coef[0] = c->c;
    return QD_OK;
}

QD_TEST(dyn_sse_records_and_streams)
{
    int n = 2;
    size_t d = 4, N = 6, steps = 5;
    qd_pauli_sum H, A[2];
    qd_ps_init(&H, n);
    addt(&H, 0.8, "X", 0, -1);
    addt(&H, 0.3, "ZZ", 0, 1);
    qd_ps_init(&A[0], n);
    addt(&A[0], 1, "Z", 0, -1);
    qd_ps_init(&A[1], n);
    addt(&A[1], 1, "X", 1, -1);
    double gam[2] = {0.5, 0.3};
    qd_rng r;
    qd_rng_init(&r, 77);
    qd_c *a = malloc(sizeof(qd_c) * d * 10), *b = malloc(sizeof(qd_c) * d * 10);
    for (size_t j = 0; j < 10; j++)
        ref_random_vec(a + j * d, d, &r);
    memcpy(b, a, sizeof(qd_c) * d * 10);
    qd_rng base;
    qd_rng_init(&base, 5);
    double rec[2 * 5 * 10], rec2[2 * 5 * 10];
    for (int scheme = 0; scheme < 2; scheme++) {
        memcpy(a, b, sizeof(qd_c) * d * 10);
        qd_sse_opts o = {.H = &H, .m = 2, .A = A, .gamma = gam, .scheme = scheme, .normalize = 1, .dt = 0.01,
                         .steps = steps, .records = rec};
        qd_err e;
        CHECK(qd_sse_run(a, n, N, &o, &base, &e) == QD_OK, "sse run");
        /* record of member j, step 0: 2 sqrt(g) <A> dt + sqrt(dt) N(0,1) from substream j */
        double worst = 0;
        for (size_t j = 0; j < N; j++) {
            qd_rng s = qd_rng_sub(&base, j);
            for (int k = 0; k < 2; k++) {
                qd_c ex;
                qd_ps_expect(&A[k], b + j * d, 1, &ex);
                double dy = 2 * sqrt(gam[k]) * creal(ex) * 0.01 + 0.1 * qd_rng_normal(&s);
                worst = fmax(worst, fabs(dy - rec[k * steps * N + 0 + j * steps]));
            }
        }
        CHECK(worst < 1e-15, "records = 2 sqrt(g)<A>dt + dW from qd_rng_sub(base, j) (scheme %d): %g", scheme, worst);
        double nmax = 0;
        for (size_t j = 0; j < N; j++)
            nmax = fmax(nmax, fabs(qd_norm2(a + j * d, d) - 1));
        CHECK(nmax < 1e-14, "norm preserved (scheme %d): %g", scheme, nmax);
        /* batch independence and thread independence: N = 10 with 2 threads, first 6 equal */
        qd_c *c = malloc(sizeof(qd_c) * d * 10);
        memcpy(c, b, sizeof(qd_c) * d * 10);
        int th = qd_get_threads();
        qd_set_threads(2);
        o.records = rec2;
        qd_sse_run(c, n, 10, &o, &base, &e);
        qd_set_threads(th);
        CHECK(memcmp(a, c, sizeof(qd_c) * d * N) == 0, "members independent of N and threads (scheme %d)", scheme);
        CHECK(rec2[1 * steps * 10 + 3 + 4 * steps] == rec[1 * steps * N + 3 + 4 * steps], "records too");
        free(c);
    }
    qd_ps_free(&H);
    qd_ps_free(&A[0]);
    qd_ps_free(&A[1]);
    free(a);
    free(b);
}

QD_TEST(dyn_sse_feedback_reverse)
{
    int n = 1;
    size_t d = 2, N = 3, steps = 200;
    double dt = 0.005;
    qd_pauli_sum H, F;
    qd_ps_init(&H, n);
    addt(&H, 0.7, "X", 0, -1);
    qd_ps_init(&F, n);
    addt(&F, 123.0, "Z", 0, -1);   /* coefficient ignored: the callback supplies it */
    qd_c a[6], b[6], c0[6];
    qd_rng r;
    qd_rng_init(&r, 3);
    for (size_t j = 0; j < N; j++)
        ref_random_vec(a + j * d, d, &r);
    memcpy(b, a, sizeof a);
    memcpy(c0, a, sizeof a);
    qd_rng base;
    qd_rng_init(&base, 1);
    qd_err e;
    /* per-member feedback c_j = 0.4 (j+1) Z, no measurement, Rouchon: M = I - i H_j dt */
    fbctx ctx = {.per_member = 1, .c = 0.4};
    qd_sse_opts o = {.H = &H, .F = &F, .fb = fb_const, .ctx = &ctx, .scheme = QD_SSE_ROUCHON, .dt = dt, .steps = steps, .t0 = 1.0};
    CHECK(qd_sse_run(a, n, N, &o, &base, &e) == QD_OK, "feedback run");
    CHECK(ctx.calls == steps && fabs(ctx.last_t - (1.0 + (steps - 1) * dt)) < 1e-12, "callback every step with t = t0 + s dt");
    double worst = 0;
    for (size_t j = 0; j < N; j++) {
        qd_pauli_sum Hj;
        qd_ps_init(&Hj, 1);
        addt(&Hj, 0.7, "X", 0, -1);
        addt(&Hj, 0.4 * (double)(j + 1), "Z", 0, -1);
        qd_ps_evolve(&Hj, steps * dt, b + j * d, 1, QD_EXPM_EIG, 0, NULL, NULL, NULL, &e);
        worst = fmax(worst, 1 - cabs(qd_inner(a + j * d, b + j * d, d)));
        qd_ps_free(&Hj);
    }
    CHECK(worst < 5e-3, "per-member feedback Hamiltonian = exact evolution to O(dt): 1 - |<a|b>| = %g", worst);
    /* reverse: forward with H then reverse returns (Rouchon, no measurement: O(dt) error) */
    memcpy(a, c0, sizeof a);
    qd_sse_opts f = {.H = &H, .scheme = QD_SSE_ROUCHON, .dt = dt, .steps = steps};
    qd_sse_run(a, n, N, &f, &base, &e);
    double moved = 1 - cabs(qd_inner(a, c0, d));
    f.reverse = 1;
    f.t0 = steps * dt;
    fbctx c2 = {.per_member = 0, .c = 0};
    f.F = &F;
    f.fb = fb_const;
    f.ctx = &c2;
    qd_sse_run(a, n, N, &f, &base, &e);
    worst = 0;
    for (size_t j = 0; j < N; j++)
        worst = fmax(worst, 1 - cabs(qd_inner(a + j * d, c0 + j * d, d)));
    CHECK(moved > 0.05 && worst < 1e-4, "reverse time undoes the coherent motion: moved %g, back to %g", moved, worst);
    CHECK(fabs(c2.last_t - dt) < 1e-12, "reverse: callback times t0 - s dt, last %g", c2.last_t);
    /* the per-step (feedback) loop and the whole-trajectory loop give identical results:
     * a zero feedback coefficient vs no feedback, with measurement, 1 and 2 threads */
    {
        size_t NN = 40, ST = 30;
        qd_pauli_sum A;
        qd_ps_init(&A, 1);
        addt(&A, 1, "Z", 0, -1);
        double g = 0.7, rec1[30 * 40], rec2[30 * 40], ob1[4], ob2[4];
        qd_c *x = malloc(sizeof(qd_c) * 2 * NN), *y = malloc(sizeof(qd_c) * 2 * NN);
        for (size_t j = 0; j < NN; j++) {
            x[2 * j] = y[2 * j] = sqrt(0.5);
            x[2 * j + 1] = y[2 * j + 1] = sqrt(0.5) * I;
        }
        fbctx z0 = {.per_member = 1, .c = 0};
        qd_sse_opts o1 = {.H = &H, .m = 1, .A = &A, .gamma = &g, .scheme = QD_SSE_EULER, .normalize = 1, .dt = 0.01,
                          .steps = ST, .records = rec1, .nobs = 1, .obs = &H, .every = 10, .obs_out = ob1};
        qd_sse_opts o2 = o1;
        o2.records = rec2;
        o2.obs_out = ob2;
        o2.F = &F;
        o2.fb = fb_const;
        o2.ctx = &z0;
        int th = qd_get_threads();
        qd_set_threads(2);
        CHECK(qd_sse_run(x, 1, NN, &o1, &base, &e) == QD_OK, "run without feedback");
        qd_set_threads(1);
        CHECK(qd_sse_run(y, 1, NN, &o2, &base, &e) == QD_OK, "run with zero feedback");
        qd_set_threads(th);
        CHECK(memcmp(x, y, sizeof(qd_c) * 2 * NN) == 0 && memcmp(rec1, rec2, sizeof rec1) == 0 &&
                  memcmp(ob1, ob2, sizeof ob1) == 0,
              "per-step and whole-trajectory loops identical (states, records, observed means)");
        free(x);
        free(y);
        qd_ps_free(&A);
    }
    /* errors */
    qd_sse_opts bad = {.H = &H, .dt = -1, .steps = 1};
    CHECK(qd_sse_run(a, n, N, &bad, &base, &e) == QD_EARG && strstr(e.msg, "dt > 0"), "dt <= 0: %s", e.msg);
    qd_pauli_sum A2;
    qd_ps_init(&A2, 2);
    double g = 1;
    qd_sse_opts bad2 = {.m = 1, .A = &A2, .gamma = &g, .dt = 0.1, .steps = 1};
    CHECK(qd_sse_run(a, n, N, &bad2, &base, &e) == QD_EARG && strstr(e.msg, "2 qubits"), "observable size: %s", e.msg);
    qd_ps_free(&A2);
    qd_ps_free(&H);
    qd_ps_free(&F);
}

/* a state-dependent feedback: member j's coefficients from its amplitudes (as a score
 * would be), per member; or shared ones from member 0 */
typedef struct {
    int per_member, n;
} fbstate;

static qd_status fb_state(void *ctx, size_t step, double t, qd_c *a, size_t count, qd_c *coef,
                          int *per_member, qd_err *e)
{
    (void)step;
    (void)e;
    fbstate *c = ctx;
    size_t d = (size_t)1 << c->n;
    *per_member = c->per_member;
    for (size_t j = 0; j < (c->per_member ? count : 1); j++) {
        const qd_c *p = a + j * d;
        double z = creal(p[0] * conj(p[0])) - creal(p[d - 1] * conj(p[d - 1]));
        coef[j * 3] = 0.8 * z + 0.1 * t;
        coef[j * 3 + 1] = -0.5 * creal(p[1] * conj(p[0]));
        coef[j * 3 + 2] = 0.3 + 0.2 * I * z;   /* complex: a non-Hermitian kick, normalised away */
    }
    return QD_OK;
}

/* A feedback law (qd_sse_law) on the lane path against the member-by-member path with the
 * same increments, every operation once, n = 1 and 2, forward and reverse; a member's bits
 * independent of the member count; a law that takes log 0 fails with QD_EARG naming the
 * member and the step; qd_sse_run refuses malformed laws. */
QD_TEST(dyn_sse_law_lanes_vs_generic)
{
    for (int n = 1; n <= 2; n++) {
        size_t d = (size_t)1 << n, N = 70, steps = 30;
        qd_pauli_sum A, A2[2], F, X[3];
        qd_ps_init(&A, n);
        addt(&A, 1, "Z", 0, -1);
        qd_ps_init(&A2[0], n);   /* two diagonal observables: the lane path's diagonal Rouchon step */
        addt(&A2[0], 1, "Z", 0, -1);
        qd_ps_init(&A2[1], n);
        addt(&A2[1], 0.7, "Z", n - 1, -1);
        addt(&A2[1], -0.4, n > 1 ? "ZZ" : "Z", 0, n > 1 ? 1 : -1);
        qd_ps_init(&F, n);
        addt(&F, 1, "X", 0, -1);
        addt(&F, 1, "Y", n - 1, -1);
        const char *lx[3] = {"X", "Y", "Z"};
        for (int i = 0; i < 3; i++) {
            qd_ps_init(&X[i], n);
            addt(&X[i], 0.9, lx[i], n - 1 - (i == 2 ? n - 1 : 0), -1);
        }
        enum { CX, CY, CZ, T_, C1, C2, C3 };
        /* 0..2 <X>,<Y>,<Z>; 3 t; 4..6 constants; then every operation */
        qd_law_node nd[] = {
            {QD_LAW_EXPECT, 0, 0, 0}, {QD_LAW_EXPECT, 0, 0, 1}, {QD_LAW_EXPECT, 0, 0, 2}, {QD_LAW_TIME, 0, 0, 0},
            {QD_LAW_CONST, 0, 0, 0.7}, {QD_LAW_CONST, 0, 0, -0.4}, {QD_LAW_CONST, 0, 0, 0.05},
            {QD_LAW_ADD, CX, C1, 0},   /* 7 */ {QD_LAW_SUB, CY, C2, 0},  {QD_LAW_MUL, CZ, T_, 0},
            {QD_LAW_DIV, CX, C1, 0},   /* 10 */ {QD_LAW_MIN, CX, CY, 0}, {QD_LAW_MAX, CY, CZ, 0},
            {QD_LAW_NEG, CZ, 0, 0},    /* 13 */ {QD_LAW_ABS, CY, 0, 0},  {QD_LAW_SQRT, 14, 0, 0},
            {QD_LAW_EXP, CX, 0, 0},    /* 16 */ {QD_LAW_LOG, 16, 0, 0},  {QD_LAW_TANH, CY, 0, 0},
            {QD_LAW_ATANH, CY, 0, 0},  /* 19 */ {QD_LAW_SIN, CX, 0, 0},  {QD_LAW_COS, CZ, 0, 0},
            {QD_LAW_SIGMOID, CY, 0, 0}, /* 22 */
            {QD_LAW_ADD, 7, 8, 0},  {QD_LAW_ADD, 23, 9, 0},  {QD_LAW_ADD, 24, 10, 0}, {QD_LAW_ADD, 25, 11, 0},
            {QD_LAW_ADD, 26, 12, 0}, {QD_LAW_ADD, 13, 15, 0}, {QD_LAW_ADD, 28, 17, 0}, {QD_LAW_ADD, 29, 18, 0},
            {QD_LAW_ADD, 30, 19, 0}, {QD_LAW_ADD, 31, 20, 0}, {QD_LAW_ADD, 32, 21, 0}, {QD_LAW_ADD, 33, 22, 0},
            {QD_LAW_MUL, 27, C3, 0}, /* 35 */ {QD_LAW_MUL, 34, C3, 0}, /* 36 */
        };
        uint32_t out[2] = {35, 36};
        qd_sse_law law = {sizeof nd / sizeof nd[0], nd, 3, X, out};
        double gam = 1.2, gam2[2] = {1.2, 0.6};
        qd_c *a0 = malloc(sizeof(qd_c) * d * N), *x = malloc(sizeof(qd_c) * d * N), *y = malloc(sizeof(qd_c) * d * N);
        qd_rng r, base;
        qd_rng_init(&r, 300 + (uint64_t)n);
        qd_rng_init(&base, 31);
        for (size_t j = 0; j < N; j++)
            ref_random_vec(a0 + j * d, d, &r);
        for (int cfg = 0; cfg < 3; cfg++) {
            int rev = cfg == 1, two = cfg == 2;
            qd_sse_opts o = {.m = two ? 2 : 1, .A = two ? A2 : &A, .gamma = two ? gam2 : &gam, .scheme = QD_SSE_ROUCHON,
                             .dt = 0.01, .steps = steps, .F = &F, .law = &law, .reverse = rev, .t0 = rev ? 0.6 : 0.1};
            qd_err e;
            memcpy(x, a0, sizeof(qd_c) * d * N);
            memcpy(y, a0, sizeof(qd_c) * d * N);
            CHECK(qd_sse_run(x, n, N, &o, &base, &e) == QD_OK, "law, lanes (n=%d): %s", n, e.msg);
            qd_sse_generic_only = 1;
            CHECK(qd_sse_run(y, n, N, &o, &base, &e) == QD_OK, "law, generic (n=%d): %s", n, e.msg);
            qd_sse_generic_only = 0;
            double ds = 0, moved = 0;
            for (size_t i = 0; i < d * N; i++) {
                ds = fmax(ds, cabs(x[i] - y[i]));
                moved = fmax(moved, cabs(x[i] - a0[i]));
            }
            CHECK(ds < 1e-12 && moved > 1e-3, "law: lanes = generic (n=%d cfg %d): %g (moved %g)", n, cfg, ds, moved);
            memcpy(y, a0, sizeof(qd_c) * d * N);
            CHECK(qd_sse_run(y, n, 5, &o, &base, &e) == QD_OK, "law, 5 members");
            CHECK(memcmp(x, y, sizeof(qd_c) * d * 5) == 0, "law: members 0-4 the same alone and among 70 (n=%d)", n);
        }
        /* exp(log(0.9 - 0.9 <Z>)) = exp(log 0) for a member in |0...0> (the intermediate -inf
         * is caught, though exp makes it 0): QD_EARG, member 2, step 1, both paths */
        qd_law_node bad[] = {{QD_LAW_EXPECT, 0, 0, 2}, {QD_LAW_CONST, 0, 0, 0.9}, {QD_LAW_SUB, 1, 0, 0},
                             {QD_LAW_LOG, 2, 0, 0}, {QD_LAW_EXP, 3, 0, 0}};
        uint32_t bout[2] = {4, 1};
        qd_sse_law blaw = {5, bad, 3, X, bout};
        for (int gen = 0; gen < 2; gen++) {
            memcpy(x, a0, sizeof(qd_c) * d * N);
            for (size_t i = 0; i < d; i++)
                x[d + i] = i == 0;
            qd_sse_opts o = {.m = 1, .A = &A, .gamma = &gam, .dt = 0.01, .steps = steps, .F = &F, .law = &blaw};
            qd_err e;
            qd_sse_generic_only = gen;
            qd_status st = qd_sse_run(x, n, N, &o, &base, &e);
            qd_sse_generic_only = 0;
            CHECK(st == QD_EARG && strstr(e.msg, "feedback law: a value is not finite for member 2 at step 1"),
                  "law failure (n=%d, generic %d): %s", n, gen, e.msg);
        }
        /* malformed laws */
        qd_law_node fwd[] = {{QD_LAW_ADD, 0, 1, 0}, {QD_LAW_CONST, 0, 0, 1}};
        uint32_t o0[2] = {0, 1}, o9[2] = {0, 9};
        qd_law_node cnan[] = {{QD_LAW_CONST, 0, 0, NAN}}, ex9[] = {{QD_LAW_EXPECT, 0, 0, 9}};
        uint32_t z2[2] = {0, 0};
        qd_sse_law bads[5] = {{2, fwd, 0, X, o0}, {1, cnan, 0, X, z2}, {1, ex9, 3, X, z2}, {5, bad, 3, X, o9},
                              {((size_t)1 << 24) + 1, fwd, 0, X, o0}};
        const char *why[5] = {"reads a later one", "constants must be finite", "expectation index out of range",
                              "output node out of range", "at most 2^24 operations"};
        for (int k = 0; k < 5; k++) {
            qd_sse_opts o = {.dt = 0.01, .steps = 1, .F = &F, .law = &bads[k]};
            qd_err e;
            CHECK(qd_sse_run(a0, n, 1, &o, &base, &e) == QD_EARG && strstr(e.msg, why[k]), "bad law %d: %s", k, e.msg);
        }
        qd_sse_opts both = {.dt = 0.01, .steps = 1, .F = &F, .law = &law, .fb = fb_state};
        qd_err e;
        CHECK(qd_sse_run(a0, n, 1, &both, &base, &e) == QD_EARG, "callback and law together refused");
        free(a0);
        free(x);
        free(y);
        qd_ps_free(&A);
        qd_ps_free(&A2[0]);
        qd_ps_free(&A2[1]);
        qd_ps_free(&F);
        for (int i = 0; i < 3; i++)
            qd_ps_free(&X[i]);
    }
}

/* The lane path (sse_lanes.c, registers of up to 6 qubits) against the generic member-by-
 * member step (qd_sse_generic_only) with the same increments: states, records and tracked
 * means to 1e-12 over 40 steps, for both schemes, with H, one or two measured observables,
 * shared and per-member state-dependent feedback, reverse time. And the lane path alone:
 * a member's bits independent of the member count (blocks of QD_VL and a tail; one qubit:
 * 75 members = a block of QD_SSE_LANES_R groups and a tail with idle groups) and of the
 * thread count. */
QD_TEST(dyn_sse_lanes_vs_generic)
{
    for (int n = 1; n <= 3; n++) {
        size_t d = (size_t)1 << n, N = n == 1 ? 75 : 11, steps = 40;
        qd_pauli_sum H, A[2], F, O[2];
        qd_ps_init(&H, n);
        addt(&H, 0.7, "X", 0, -1);
        addt(&H, -0.4, n > 1 ? "YZ" : "Y", 0, n > 1 ? 1 : -1);
        qd_ps_init(&A[0], n);
        addt(&A[0], 1, "Z", 0, -1);
        qd_ps_init(&A[1], n);
        addt(&A[1], 0.6, "X", n - 1, -1);
        addt(&A[1], 0.3, "Z", n - 1, -1);
        qd_ps_init(&F, n);
        addt(&F, 1, "X", 0, -1);
        addt(&F, 1, "Y", n - 1, -1);
        addt(&F, 1, n > 1 ? "ZZ" : "Z", 0, n > 1 ? 1 : -1);
        qd_ps_init(&O[0], n);
        addt(&O[0], 1, "Y", 0, -1);
        qd_ps_init(&O[1], n);
        addt(&O[1], 1, n > 1 ? "XX" : "X", 0, n > 1 ? 1 : -1);
        double gam[2] = {0.9, 0.4};
        qd_c *a0 = malloc(sizeof(qd_c) * d * N), *x = malloc(sizeof(qd_c) * d * N),
             *y = malloc(sizeof(qd_c) * d * N);
        qd_rng r;
        qd_rng_init(&r, 100 + (uint64_t)n);
        for (size_t j = 0; j < N; j++)
            ref_random_vec(a0 + j * d, d, &r);
        qd_rng base;
        qd_rng_init(&base, 8);
        double *recx = malloc(sizeof(double) * 2 * steps * N), *recy = malloc(sizeof(double) * 2 * steps * N);
        double obx[2 * 9], oby[2 * 9];
        for (int cfg = 0; cfg < 6; cfg++) {
            int scheme = cfg & 1, fbk = cfg / 2;   /* feedback: none, shared, per member */
            fbstate fs = {.per_member = fbk == 2, .n = n};
            qd_sse_opts o = {.H = &H, .m = 1 + (size_t)(cfg % 3 == 0), .A = A, .gamma = gam,
                             .scheme = scheme, .normalize = cfg != 2, .dt = 0.01, .steps = steps,
                             .records = recx, .nobs = 2, .obs = O, .every = 5, .obs_out = obx,
                             .F = fbk ? &F : NULL, .fb = fbk ? fb_state : NULL, .ctx = &fs,
                             .reverse = cfg == 5, .t0 = cfg == 5 ? 0.5 : 0};
            qd_sse_opts og = o;
            og.records = recy;
            og.obs_out = oby;
            qd_err e;
            memcpy(x, a0, sizeof(qd_c) * d * N);
            memcpy(y, a0, sizeof(qd_c) * d * N);
            CHECK(qd_sse_run(x, n, N, &o, &base, &e) == QD_OK, "lane run n=%d cfg %d: %s", n, cfg, e.msg);
            qd_sse_generic_only = 1;
            CHECK(qd_sse_run(y, n, N, &og, &base, &e) == QD_OK, "generic run n=%d cfg %d", n, cfg);
            qd_sse_generic_only = 0;
            double ds = 0, dr = 0, dob = 0;
            for (size_t i = 0; i < d * N; i++)
                ds = fmax(ds, cabs(x[i] - y[i]));
            for (size_t i = 0; i < o.m * steps * N; i++)
                dr = fmax(dr, fabs(recx[i] - recy[i]));
            for (size_t i = 0; i < 2 * 9; i++)
                dob = fmax(dob, fabs(obx[i] - oby[i]));
            CHECK(ds < 1e-12 && dr < 1e-12 && dob < 1e-12,
                  "lanes = generic (n=%d cfg %d): states %g, records %g, means %g", n, cfg, ds, dr, dob);
            /* lane path: 3 members alone, 1 thread, = the first 3 of the 11 with 2 threads */
            int th = qd_get_threads();
            memcpy(y, a0, sizeof(qd_c) * d * N);
            qd_set_threads(1);
            og.obs_out = oby;
            CHECK(qd_sse_run(y, n, 3, &og, &base, &e) == QD_OK, "3 members");
            qd_set_threads(2);
            qd_c *w = malloc(sizeof(qd_c) * d * N);
            memcpy(w, a0, sizeof(qd_c) * d * N);
            og.records = NULL;
            CHECK(qd_sse_run(w, n, N, &og, &base, &e) == QD_OK, "%zu members, 2 threads", N);
            qd_set_threads(th);
            CHECK(memcmp(x, w, sizeof(qd_c) * d * N) == 0,
                  "lane path: threads do not change a bit (n=%d cfg %d)", n, cfg);
            /* (a shared feedback reads member 0, which both runs have) */
            int same3 = memcmp(x, y, sizeof(qd_c) * d * 3) == 0;
            for (size_t k = 0; k < o.m; k++)
                for (size_t j = 0; j < 3; j++)
                    same3 &= memcmp(recx + k * steps * N + j * steps, recy + k * steps * 3 + j * steps,
                                    sizeof(double) * steps) == 0;
            CHECK(same3, "lane path: members 0-2 the same alone and among %zu (n=%d cfg %d)", N, n, cfg);
            free(w);
        }
        free(recx);
        free(recy);
        free(a0);
        free(x);
        free(y);
        qd_ps_free(&H);
        qd_ps_free(&A[0]);
        qd_ps_free(&A[1]);
        qd_ps_free(&F);
        qd_ps_free(&O[0]);
        qd_ps_free(&O[1]);
    }
    /* beyond the lane path's limits (7 qubits, 9 observables, 65 feedback terms): no plan, the
     * generic step takes the run */
    qd_pauli_sum A1[9], Fm;
    qd_ps_init(&Fm, 1);
    for (int k = 0; k < 65; k++)
        addt(&Fm, 1, "X", 0, -1);
    double g9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int k = 0; k < 9; k++) {
        qd_ps_init(&A1[k], 1);
        addt(&A1[k], 1, "Z", 0, -1);
    }
    qd_sse_opts big = {.dt = 0.01, .steps = 1};
    CHECK(qd_sse_lanes_new(&big, 7) == NULL, "no lane plan at 7 qubits");
    big.m = 9;
    big.A = A1;
    big.gamma = g9;
    CHECK(qd_sse_lanes_new(&big, 1) == NULL, "no lane plan for 9 measured observables");
    qd_sse_opts many = {.dt = 0.01, .steps = 1, .F = &Fm};
    CHECK(qd_sse_lanes_new(&many, 1) == NULL, "no lane plan for 65 feedback terms");
    many.F = NULL;
    qd_sse_lanes *ok = qd_sse_lanes_new(&many, 1);
    CHECK(ok != NULL, "a lane plan within the limits");
    qd_sse_lanes_free(ok);
    qd_ps_free(&Fm);
    for (int k = 0; k < 9; k++)
        qd_ps_free(&A1[k]);
}

/* Bloch-type error of the trajectory average against rho_L: max over the observables obs
 * of |mean <O> - Tr(O rho_L)|, and the largest standard error */
static void sse_vs_lindblad(int scheme, double dt, size_t N, double T, double *err, double *se)
{
    int n = 2;
    size_t d = 4, steps = (size_t)llround(T / dt);
    qd_pauli_sum H, A[2], L[2], O[4];
    qd_ps_init(&H, n);
    addt(&H, 0.9, "X", 0, -1);
    addt(&H, 0.5, "ZZ", 0, 1);
    addt(&H, 0.4, "Y", 1, -1);
    double gam[2] = {0.6, 0.4};
    const char *ml[2] = {"Z", "X"};
    int mq[2] = {0, 1};
    for (int k = 0; k < 2; k++) {
        qd_ps_init(&A[k], n);
        addt(&A[k], 1, ml[k], mq[k], -1);
        qd_ps_init(&L[k], n);
        addt(&L[k], sqrt(gam[k]), ml[k], mq[k], -1);
    }
    const char *ol[4] = {"Y", "X", "Z", "ZY"};
    int oq[4][2] = {{0, -1}, {0, -1}, {1, -1}, {0, 1}};
    for (int i = 0; i < 4; i++) {
        qd_ps_init(&O[i], n);
        addt(&O[i], 1, ol[i], oq[i][0], oq[i][1]);
    }
    qd_c psi0[4] = {0.6, 0.48 * I, 0, 0.64};   /* normalised: 0.36 + 0.2304 + 0.4096 = 1 */
    qd_c *a = malloc(sizeof(qd_c) * d * N);
    for (size_t j = 0; j < N; j++)
        memcpy(a + j * d, psi0, sizeof psi0);
    qd_rng base;
    qd_rng_init(&base, 2026);
    qd_err e;
    qd_sse_opts o = {.H = &H, .m = 2, .A = A, .gamma = gam, .scheme = scheme, .normalize = 1, .dt = dt, .steps = steps};
    qd_status s = qd_sse_run(a, n, N, &o, &base, &e);
    CHECK(s == QD_OK, "sse run (%s)", s == QD_OK ? "" : e.msg);
    qd_c rho[16];
    qd_dm_from_state(psi0, n, rho);
    qd_lindblad_opts lo = {.rtol = 1e-10, .atol = 1e-12};
    qd_lindblad(rho, n, &H, L, 2, &T, 1, NULL, &lo, &e);
    *err = 0;
    *se = 0;
    for (int i = 0; i < 4; i++) {
        double m1 = 0, m2 = 0;
        for (size_t j = 0; j < N; j++) {
            qd_c v;
            qd_ps_expect(&O[i], a + j * d, 1, &v);
            m1 += creal(v);
            m2 += creal(v) * creal(v);
        }
        m1 /= (double)N;
        m2 /= (double)N;
        double ex = creal(qd_ps_expect_dm(&O[i], rho));
        *err = fmax(*err, fabs(m1 - ex));
        *se = fmax(*se, sqrt(fmax(m2 - m1 * m1, 0) / (double)N));
        qd_ps_free(&O[i]);
    }
    free(a);
    qd_ps_free(&H);
    for (int k = 0; k < 2; k++) {
        qd_ps_free(&A[k]);
        qd_ps_free(&L[k]);
    }
}

QD_TEST(dyn_sse_converges_to_lindblad)
{
    /* 2 qubits, Z0 and X1 measured at rates 0.6 and 0.4, T = 1, N = 20000 trajectories
     * (standard error ~0.004 per observable). The bias of both schemes is ~0.4 dt (weak
     * order 1): halving dt halves the error until it reaches the sampling noise. */
    double err, se;
    const char *names[2] = {"Euler-Maruyama", "Rouchon-Ralph"};
    for (int scheme = 0; scheme < 2; scheme++) {
        double errs[3], ses[3];
        double dts[3] = {0.2, 0.05, 0.01};
        for (int i = 0; i < 3; i++) {
            sse_vs_lindblad(scheme, dts[i], 20000, 1.0, &err, &se);
            errs[i] = err;
            ses[i] = se;
        }
        double ratio = errs[0] / errs[1];
        CHECK(ratio > 2.5 && ratio < 6.5, "%s: error(dt=0.2)/error(dt=0.05) = %.2f (weak order 1: 4; errors %.4f, %.4f)",
              names[scheme], ratio, errs[0], errs[1]);
        double C = errs[1] / 0.05;
        CHECK(errs[2] <= 1.5 * C * 0.01 + 5 * ses[2], "%s dt=0.01: error %.4f <= 1.5 C dt + 5 SE = %.4f",
              names[scheme], errs[2], 1.5 * C * 0.01 + 5 * ses[2]);
        CHECK(errs[0] > 10 * ses[0], "%s: the dt=0.2 bias is resolved (%.4f vs SE %.4f)", names[scheme], errs[0], ses[0]);
    }
}

QD_TEST(dyn_lindblad_threads)
{
    /* 7 qubits (4^7 entries: the column-parallel path): bitwise identical for 1 and 2
     * threads, trace preserved, Hermitian */
    int n = 7;
    size_t d = 128, D = d * d;
    qd_pauli_sum H, L[3];
    qd_ps_init(&H, n);
    for (int i = 0; i + 1 < n; i++)
        addt(&H, -1, "ZZ", i, i + 1);
    for (int i = 0; i < n; i++)
        addt(&H, -0.6, "X", i, -1);
    sminus(&L[0], n, 2, 0.3);
    dephase(&L[1], n, 5, 0.2);
    sminus(&L[2], n, 6, 0.1);
    qd_c *r1 = malloc(sizeof(qd_c) * D), *r2 = malloc(sizeof(qd_c) * D);
    qd_rng r;
    qd_rng_init(&r, 31);
    ref_random_dm(r1, d, &r);
    memcpy(r2, r1, sizeof(qd_c) * D);
    double T = 0.3;
    qd_err e;
    qd_lindblad_opts o1 = {0}, o2 = {0};
    int th = qd_get_threads();
    qd_set_threads(1);
    CHECK(qd_lindblad(r1, n, &H, L, 3, &T, 1, NULL, &o1, &e) == QD_OK, "1 thread");
    qd_set_threads(2);
    CHECK(qd_lindblad(r2, n, &H, L, 3, &T, 1, NULL, &o2, &e) == QD_OK, "2 threads");
    qd_set_threads(th);
    CHECK(memcmp(r1, r2, sizeof(qd_c) * D) == 0 && o1.steps == o2.steps, "bitwise identical (%zu steps)", o1.steps);
    qd_c tr = 0;
    double herm = 0;
    for (size_t i = 0; i < d; i++) {
        tr += r1[i + i * d];
        for (size_t j = 0; j < d; j++)
            herm = fmax(herm, cabs(r1[i + j * d] - conj(r1[j + i * d])));
    }
    CHECK(cabs(tr - 1) < 1e-12 && herm == 0, "trace %.15f, exactly Hermitian (%g)", creal(tr), herm);
    free(r1);
    free(r2);
    qd_ps_free(&H);
    for (int k = 0; k < 3; k++)
        qd_ps_free(&L[k]);
}
