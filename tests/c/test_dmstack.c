/* test_dmstack.c — the density-matrix stack kernels of MSQuDDPM (dm_stack.c) against naive
 * dense references: the superfidelity MMD over all member pairs, the Wasserstein cost by
 * brute force over permutations, the measured Kraus step by the full (ancillas (x) data)
 * density matrix, and every gradient against central finite differences. */
#include "harness.h"
#include "qd_dmstack.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double ref_tr_prod(const qd_c *a, const qd_c *b, size_t d)   /* Re Tr(a b) */
{
    qd_c s = 0;
    for (size_t i = 0; i < d; i++)
        for (size_t k = 0; k < d; k++)
            s += a[i + k * d] * b[k + i * d];
    return creal(s);
}

static double ref_sf(const qd_c *a, const qd_c *b, size_t d)
{
    double pa = 1 - ref_tr_prod(a, a, d), pb = 1 - ref_tr_prod(b, b, d);
    return ref_tr_prod(a, b, d) + sqrt((pa > QD_SF_FLOOR ? pa : QD_SF_FLOOR) * (pb > QD_SF_FLOOR ? pb : QD_SF_FLOOR));
}

typedef double (*ref_kernel)(const qd_c *a, const qd_c *b, size_t d);

/* the root fidelity sqrt(F) of the core's Uhlmann fidelity (eigen-decompositions) */
static double ref_rootfid(const qd_c *a, const qd_c *b, size_t d)
{
    double f;
    qd_err e;
    int n = d == 2 ? 1 : 2;
    qd_fid_dm_dm(a, b, n, &f, &e);
    return sqrt(f);
}

static double ref_mmd(ref_kernel K, const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d)
{
    size_t d2 = d * d;
    double aa = 0, bb = 0, ab = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            aa += K(A + i * d2, A + j * d2, d);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < M; j++)
            bb += K(B + i * d2, B + j * d2, d);
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < M; j++)
            ab += K(A + i * d2, B + j * d2, d);
    return aa / (double)(N * N) + bb / (double)(M * M) - 2 * ab / (double)(N * M);
}

/* min over the permutations of n <= 5 of (1/n) sum_i (1 - G(a_i, b_p(i))) */
static double ref_wass(ref_kernel K, const qd_c *A, const qd_c *B, size_t n, size_t d)
{
    size_t p[5] = {0, 1, 2, 3, 4}, c[5] = {0};
    double best = INFINITY;
    for (size_t i = 0;;) {   /* Heap's algorithm */
        double s = 0;
        for (size_t k = 0; k < n; k++)
            s += 1 - K(A + k * d * d, B + p[k] * d * d, d);
        if (s / n < best)
            best = s / n;
        while (i < n && c[i] >= i) {
            c[i] = 0;
            i++;
        }
        if (i >= n)
            break;
        size_t j = i % 2 ? c[i] : 0, t = p[j];
        p[j] = p[i];
        p[i] = t;
        c[i]++;
        i = 0;
    }
    return best;
}

static void rand_stack(qd_c *A, size_t N, size_t d, qd_rng *r, int pure_first)
{
    for (size_t k = 0; k < N; k++)
        ref_random_dm(A + k * d * d, d, r);
    if (pure_first) {   /* a pure member: the floor of the superfidelity's root */
        qd_c v[16];
        ref_random_vec(v, d, r);
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++)
                A[i + j * d] = v[i] * conj(v[j]);
    }
}

/* a random Hermitian direction H for member k, d x d */
static void rand_herm(qd_c *H, size_t d, qd_rng *r)
{
    for (size_t j = 0; j < d; j++)
        for (size_t i = j; i < d; i++) {
            qd_c z = i == j ? qd_rng_normal(r) : qd_rng_cnormal(r);
            H[i + j * d] = z;
            H[j + i * d] = conj(z);
        }
}

/* loss kind: bit 0 Wasserstein (else MMD), bit 1 the Uhlmann kernel (else superfidelity) */
static double loss_of(int kind, const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, qd_c *G)
{
    double v = NAN;
    qd_err e;
    switch (kind) {
    case 0: qd_dms_mmd_sf(A, N, B, M, d, &v, G, &e); break;
    case 1: qd_dms_wass_sf(A, N, B, M, d, &v, G, NULL, &e); break;
    case 2: qd_dms_mmd_uhl(A, N, B, M, d, &v, G, &e); break;
    default: qd_dms_wass_uhl(A, N, B, M, d, &v, G, NULL, &e); break;
    }
    return v;
}

/* the directional derivative of a loss along a Hermitian H on member k: 2 Re sum conj(G) H
 * against a central difference */
static void check_loss_grad(int kind, const char *what, qd_c *A, size_t N, const qd_c *B, size_t M, size_t d,
                            qd_rng *r)
{
    size_t d2 = d * d;
    qd_c G[N * d2], H[d2];
    loss_of(kind, A, N, B, M, d, G);
    for (size_t k = 0; k < N; k++) {
        rand_herm(H, d, r);
        double an = 0, h = 1e-6;
        for (size_t i = 0; i < d2; i++)
            an += 2 * creal(conj(G[k * d2 + i]) * H[i]);
        for (size_t i = 0; i < d2; i++)
            A[k * d2 + i] += h * H[i];
        double lp = loss_of(kind, A, N, B, M, d, NULL);
        for (size_t i = 0; i < d2; i++)
            A[k * d2 + i] -= 2 * h * H[i];
        double lm = loss_of(kind, A, N, B, M, d, NULL);
        for (size_t i = 0; i < d2; i++)
            A[k * d2 + i] += h * H[i];
        CHECK_NEAR(an, (lp - lm) / (2 * h), 1e-6, what);
    }
}

QD_TEST(dmstack_losses_vs_pairs)
{
    qd_rng r;
    qd_rng_init(&r, 71);
    for (int n = 1; n <= 2; n++) {
        size_t d = (size_t)1 << n, N = 5, M = 5, d2 = d * d;
        qd_c A[N * d2], B[M * d2];
        rand_stack(A, N, d, &r, 0);
        rand_stack(B, M, d, &r, 1);
        double v;
        qd_err e;
        CHECK(qd_dms_mmd_sf(A, N, B, M, d, &v, NULL, &e) == QD_OK, "mmd ok");
        CHECK_NEAR(v, ref_mmd(ref_sf, A, N, B, M, d), 1e-13, "MMD = the mean over all pairs");
        CHECK(qd_dms_mmd_sf(A, N, B, 3, d, &v, NULL, &e) == QD_OK, "mmd N != M");
        CHECK_NEAR(v, ref_mmd(ref_sf, A, N, B, 3, d), 1e-13, "MMD, sizes 5 and 3");
        double P[N * M];
        CHECK(qd_dms_wass_sf(A, N, B, M, d, &v, NULL, P, &e) == QD_OK, "wass ok");
        CHECK_NEAR(v, ref_wass(ref_sf, A, B, N, d), 1e-13, "Wasserstein = the best permutation");
        double tot = 0;
        for (size_t i = 0; i < N * M; i++)
            tot += P[i];
        CHECK_NEAR(tot, 1.0, 1e-14, "the plan's mass");
        check_loss_grad(0, "MMD gradient vs finite differences", A, N, B, M, d, &r);
        check_loss_grad(1, "Wasserstein gradient vs finite differences", A, N, B, M, d, &r);
        /* the Uhlmann kernel against qd_fid_dm_dm pair by pair (n = 1: the closed form
         * Tr ab + 2 sqrt(det a det b); n = 2: qd_loss_infid_dd) */
        CHECK(qd_dms_mmd_uhl(A, N, B, 3, d, &v, NULL, &e) == QD_OK, "uhlmann mmd ok");
        CHECK_NEAR(v, ref_mmd(ref_rootfid, A, N, B, 3, d), 1e-9, "Uhlmann MMD = the mean over all pairs");
        CHECK(qd_dms_wass_uhl(A, N, B, M, d, &v, NULL, NULL, &e) == QD_OK, "uhlmann wass ok");
        CHECK_NEAR(v, ref_wass(ref_rootfid, A, B, N, d), 1e-9, "Uhlmann Wasserstein = the best permutation");
        check_loss_grad(2, "Uhlmann MMD gradient vs finite differences", A, N, B, M, d, &r);
        check_loss_grad(3, "Uhlmann Wasserstein gradient vs finite differences", A, N, B, M, d, &r);
        /* a pure generated member: the root term's gradient is dropped, the rest still exact */
        rand_stack(A, N, d, &r, 1);
        qd_c G[N * d2];
        CHECK(qd_dms_mmd_sf(A, N, B, M, d, &v, G, &e) == QD_OK, "mmd pure member");
        CHECK(isfinite(creal(G[0])), "finite gradient at a pure member");
    }
}

/* a random unitary of dimension D (QR of a Ginibre matrix) */
static void rand_unitary(qd_c *U, size_t D, qd_rng *r)
{
    qd_c rd[D];
    for (size_t i = 0; i < D * D; i++)
        U[i] = qd_rng_cnormal(r);
    qd_err e;
    qd_la_qr(U, D, D, rd, &e);
}

/* the naive step: the full (ancilla (x) data) density matrix through U, the ancillas' block m
 * (rows and columns m d ... m d + d - 1), its trace p_m; returns out of outcome m */
static void ref_step(const qd_c *U, size_t D, size_t d, const qd_c *phi, const qd_c *rho, size_t m, qd_c *out,
                     double *pm)
{
    qd_c *in = calloc(D * D, sizeof(qd_c)), *t = calloc(D * D, sizeof(qd_c)), *o = calloc(D * D, sizeof(qd_c));
    qd_c *Ud = calloc(D * D, sizeof(qd_c));
    size_t half = D / 2;   /* the first ancilla in phi, the others in |0>: index x half + i */
    for (int x = 0; x < 2; x++)
        for (int y = 0; y < 2; y++)
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j < d; j++)
                    in[(x * half + i) + (y * half + j) * D] = phi[x] * conj(phi[y]) * rho[i + j * d];
    ref_matmul(U, in, D, t);
    ref_dagger(U, D, Ud);
    ref_matmul(t, Ud, D, o);
    double p = 0;
    for (size_t i = 0; i < d; i++)
        p += creal(o[(m * d + i) * (D + 1)]);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            out[i + j * d] = o[(m * d + i) + (m * d + j) * D] / p;
    *pm = p;
    free(in);
    free(t);
    free(o);
    free(Ud);
}

/* W's columns: U on the basis inputs (the first d, or 2d with the first ancilla free) */
static void iso_of(const qd_c *U, size_t D, size_t d, int haar, qd_c *W)
{
    for (size_t c = 0; c < (haar ? 2 * d : d); c++) {
        size_t in = c < d ? c : D / 2 + (c - d);
        memcpy(W + c * D, U + in * D, sizeof(qd_c) * D);
    }
}

/* one random step case: U (D x D), W its isometry columns, N input states, first-ancilla
 * states and uniforms; buffers malloc'd (step_case_free) */
typedef struct {
    int n, na, haar;
    size_t d, D, N, d2, cols;
    qd_c *U, *W, *rho, *anc;
    double *u;
} step_case;

static void step_case_new(step_case *c, int n, int na, int haar, size_t N, qd_rng *r)
{
    c->n = n;
    c->na = na;
    c->haar = haar;
    c->d = (size_t)1 << n;
    c->D = c->d << na;
    c->N = N;
    c->d2 = c->d * c->d;
    c->cols = haar ? 2 * c->d : c->d;
    c->U = malloc(sizeof(qd_c) * c->D * c->D);
    c->W = malloc(sizeof(qd_c) * c->D * c->cols);
    c->rho = malloc(sizeof(qd_c) * N * c->d2);
    c->anc = malloc(sizeof(qd_c) * 2 * N);
    c->u = malloc(sizeof(double) * N);
    rand_unitary(c->U, c->D, r);
    iso_of(c->U, c->D, c->d, haar, c->W);
    rand_stack(c->rho, N, c->d, r, 0);
    for (size_t k = 0; k < N; k++) {
        ref_random_vec(c->anc + 2 * k, 2, r);
        c->u[k] = qd_rng_uniform(r);
    }
}

static void step_case_free(step_case *c)
{
    free(c->U);
    free(c->W);
    free(c->rho);
    free(c->anc);
    free(c->u);
}

QD_TEST(dmstack_kraus_step_vs_full)
{
    qd_rng r;
    qd_rng_init(&r, 72);
    int shapes[3][2] = {{1, 1}, {1, 2}, {2, 2}};
    for (int s = 0; s < 3; s++)
        for (int haar = 0; haar <= 1; haar++) {
            step_case c;
            step_case_new(&c, shapes[s][0], shapes[s][1], haar, 4, &r);
            size_t d = c.d, d2 = c.d2, N = c.N;
            qd_c out[N * d2], ref[d2], zero[2] = {1, 0};
            double prob[N], pm;
            int oc[N];
            qd_err e;
            CHECK(qd_dms_kraus_step(c.W, c.n, c.na, haar, c.anc, N, c.rho, c.u, out, oc, prob, &e) == QD_OK, "step ok");
            for (size_t k = 0; k < N; k++) {
                const qd_c *phi = haar ? c.anc + 2 * k : zero;
                ref_step(c.U, c.D, d, phi, c.rho + k * d2, (size_t)oc[k], ref, &pm);
                CHECK(ref_maxdiff(out + k * d2, ref, d2) < 1e-13, "step n=%d na=%d haar=%d member %zu", c.n, c.na, haar, k);
                CHECK_NEAR(prob[k], pm, 1e-13, "outcome probability");
                /* the outcome: the first whose cumulative probability (naive) passes u */
                double cum = 0;
                size_t m = 0;
                for (; m < ((size_t)1 << c.na); m++) {
                    ref_step(c.U, c.D, d, phi, c.rho + k * d2, m, ref, &pm);
                    cum += pm;
                    if (c.u[k] < cum)
                        break;
                }
                CHECK(oc[k] == (int)m, "outcome of member %zu: %d vs %zu", k, oc[k], m);
            }
            step_case_free(&c);
        }
}

/* L(W) = 2 Re sum conj(Gf) out(W) for a fixed Hermitian Gf: the vjp against a central
 * difference along a random complex direction of W, outcomes held fixed */
QD_TEST(dmstack_kraus_vjp_fd)
{
    qd_rng r;
    qd_rng_init(&r, 73);
    for (int haar = 0; haar <= 1; haar++)
        for (int n = 1; n <= 2; n++) {
            step_case c;
            step_case_new(&c, n, 2, haar, 3, &r);
            size_t N = c.N, d2 = c.d2, nW = c.D * c.cols;
            qd_c *gW = malloc(sizeof(qd_c) * nW), *dir = malloc(sizeof(qd_c) * nW);
            qd_c out[N * d2], Gf[N * d2];
            int oc[N], oc2[N];
            for (size_t k = 0; k < N; k++)
                rand_herm(Gf + k * d2, c.d, &r);
            qd_err e;
            qd_dms_kraus_step(c.W, n, c.na, haar, c.anc, N, c.rho, c.u, out, oc, NULL, &e);
            CHECK(qd_dms_kraus_vjp(c.W, n, c.na, haar, c.anc, N, c.rho, out, oc, Gf, gW, &e) == QD_OK, "vjp ok");
            double an = 0, h = 1e-6, l[2];
            for (size_t i = 0; i < nW; i++) {
                dir[i] = qd_rng_cnormal(&r);
                an += 2 * creal(conj(gW[i]) * dir[i]);
            }
            for (int sgn = 0; sgn < 2; sgn++) {
                for (size_t i = 0; i < nW; i++)
                    c.W[i] += (sgn ? -2 : 1) * h * dir[i];
                qd_dms_kraus_step(c.W, n, c.na, haar, c.anc, N, c.rho, c.u, out, oc2, NULL, &e);
                l[sgn] = 0;
                for (size_t i = 0; i < N * d2; i++)
                    l[sgn] += 2 * creal(conj(Gf[i]) * out[i]);
                CHECK(memcmp(oc, oc2, sizeof oc) == 0, "outcomes unchanged by the small step");
            }
            CHECK_NEAR(an, (l[0] - l[1]) / (2 * h), 1e-6 * (1 + fabs(an)), "Kraus step vjp vs finite differences");
            step_case_free(&c);
            free(gW);
            free(dir);
        }
}

QD_TEST(dmstack_depolarize_expect)
{
    qd_rng r;
    qd_rng_init(&r, 74);
    size_t d = 4, N = 3, d2 = 16;
    qd_c A[N * d2], B[N * d2], O[d2];
    double v[N];
    rand_stack(A, N, d, &r, 0);
    rand_herm(O, d, &r);
    qd_dms_depolarize(A, N, d, 0.25, B);
    qd_dms_expect(B, N, d, O, v);
    double trO = 0;
    for (size_t i = 0; i < d; i++)
        trO += creal(O[i * (d + 1)]);
    for (size_t k = 0; k < N; k++)
        CHECK_NEAR(v[k], 0.25 * ref_tr_prod(A + k * d2, O, d) + 0.75 * trO / d, 1e-13, "depolarized expectation");
    qd_err e;
    CHECK(qd_dms_kraus_step(NULL, 0, 1, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, &e) == QD_EARG, "n = 0 refused");
}
