/* test_loss.c — every loss against a naive formula and every gradient against central
 * finite differences: complex (Wirtinger) inputs perturbed in the real and imaginary part
 * of each amplitude (dL/dRe = 2 Re G, dL/dIm = 2 Im G), density matrices along random
 * Hermitian directions H (dL = 2 Re Tr(G^H H)), real vectors entry by entry. */
#include "harness.h"
#include "qd_loss.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- FD helpers */

typedef double (*cfun)(void *ctx, const qd_c *x);

/* checks G against FD of f at x (len entries, all perturbed); returns max abs error */
static double fd_complex(cfun f, void *ctx, qd_c *x, size_t len, const qd_c *G)
{
    double h = 1e-6, worst = 0;
    for (size_t i = 0; i < len; i++) {
        qd_c keep = x[i];
        for (int part = 0; part < 2; part++) {
            qd_c dz = part ? h * I : h;
            x[i] = keep + dz;
            double fp = f(ctx, x);
            x[i] = keep - dz;
            double fm = f(ctx, x);
            x[i] = keep;
            double fd = (fp - fm) / (2 * h);
            double an = part ? 2 * cimag(G[i]) : 2 * creal(G[i]);
            worst = fmax(worst, fabs(fd - an));
        }
    }
    return worst;
}

/* along `ndir` random Hermitian directions of a d x d matrix */
static double fd_herm(cfun f, void *ctx, qd_c *x, size_t d, const qd_c *G, qd_rng *r, int ndir)
{
    double h = 1e-5, worst = 0;
    qd_c *H = malloc(sizeof(qd_c) * d * d), *keep = malloc(sizeof(qd_c) * d * d);
    memcpy(keep, x, sizeof(qd_c) * d * d);
    for (int t = 0; t < ndir; t++) {
        for (size_t j = 0; j < d; j++)
            for (size_t i = 0; i <= j; i++) {
                qd_c z = i == j ? qd_rng_normal(r) : qd_rng_cnormal(r);
                H[i + j * d] = z;
                H[j + i * d] = conj(z);
            }
        /* five-point stencil: random states have small eigenvalues, where the Uhlmann
         * fidelity and the trace norm curve strongly (O(h^2) error would show) */
        double fv[4], st[4] = {2, 1, -1, -2};
        for (int s = 0; s < 4; s++) {
            for (size_t k = 0; k < d * d; k++)
                x[k] = keep[k] + st[s] * h * H[k];
            fv[s] = f(ctx, x);
        }
        memcpy(x, keep, sizeof(qd_c) * d * d);
        double fd = (-fv[0] + 8 * fv[1] - 8 * fv[2] + fv[3]) / (12 * h);
        double an = 0;
        for (size_t k = 0; k < d * d; k++)
            an += 2 * creal(conj(G[k]) * H[k]);
        worst = fmax(worst, fabs(fd - an));
    }
    free(H);
    free(keep);
    return worst;
}

static void rand_states(qd_c *a, size_t d, size_t count, qd_rng *r)
{
    for (size_t k = 0; k < count; k++)
        ref_random_vec(a + k * d, d, r);
}

/* ---------------------------------------------------------------- ensemble MMD */

typedef struct {
    qd_c *A, *B;
    size_t N, M;
    int nq, method, side;   /* side 0: x is A, 1: x is B */
    const double *wa, *wb;
    double eps;
} ens_ctx;

static double f_mmd(void *c, const qd_c *x)
{
    ens_ctx *k = c;
    double v;
    qd_loss_mmd_fid(k->side ? k->A : x, k->N, k->side ? x : k->B, k->M, k->nq, k->method, &v,
                    NULL, NULL, NULL);
    return v;
}

static double naive_mmd(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d)
{
    double aa = 0, bb = 0, ab = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            aa += pow(cabs(qd_inner(A + i * d, A + j * d, d)), 2);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < M; j++)
            bb += pow(cabs(qd_inner(B + i * d, B + j * d, d)), 2);
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < M; j++)
            ab += pow(cabs(qd_inner(A + i * d, B + j * d, d)), 2);
    return aa / (double)(N * N) + bb / (double)(M * M) - 2 * ab / (double)(N * M);
}

QD_TEST(loss_mmd_fidelity_kernel)
{
    qd_rng r;
    qd_rng_init(&r, 401);
    /* d <= 32: the SIMD-lane path of the average-state form (whole and partial lane
     * blocks); d = 64: its BLAS path */
    int nqs[] = {1, 2, 3, 4, 5, 6};
    size_t Ns[] = {3, 5, 4, 100, 9, 5}, Ms[] = {4, 2, 7, 37, 17, 3};
    for (int t = 0; t < 6; t++) {
        int nq = nqs[t];
        size_t d = (size_t)1 << nq, N = Ns[t], M = Ms[t];
        qd_c *A = malloc(sizeof(qd_c) * d * N), *B = malloc(sizeof(qd_c) * d * M);
        qd_c *GA1 = malloc(sizeof(qd_c) * d * N), *GB1 = malloc(sizeof(qd_c) * d * M);
        qd_c *GA2 = malloc(sizeof(qd_c) * d * N), *GB2 = malloc(sizeof(qd_c) * d * M);
        rand_states(A, d, N, &r);
        rand_states(B, d, M, &r);
        A[0] *= 1.1;   /* unnormalised member: the formula is differentiated as given */
        double v1, v2, v3;
        qd_err e;
        CHECK(qd_loss_mmd_fid(A, N, B, M, nq, QD_MMD_GRAM, &v1, GA1, GB1, &e) == QD_OK, "gram");
        CHECK(qd_loss_mmd_fid(A, N, B, M, nq, QD_MMD_DM, &v2, GA2, GB2, &e) == QD_OK, "dm");
        CHECK(qd_loss_mmd_fid(A, N, B, M, nq, QD_MMD_AUTO, &v3, NULL, NULL, &e) == QD_OK, "auto");
        double nv = naive_mmd(A, N, B, M, d);
        CHECK_NEAR(v1, nv, 1e-13, "gram MMD = naive V-statistic");
        CHECK_NEAR(v2, nv, 1e-13, "Tr[(rhoA - rhoB)^2] = V-statistic");
        CHECK_NEAR(v3, nv, 1e-13, "auto");
        CHECK(ref_maxdiff(GA1, GA2, d * N) < 1e-13 && ref_maxdiff(GB1, GB2, d * M) < 1e-13,
              "gram and dm gradients agree");
        for (int method = 1; method <= 2; method++) {
            ens_ctx c = {A, B, N, M, nq, method, 0, NULL, NULL, 0};
            CHECK(fd_complex(f_mmd, &c, A, d * N, GA1) < 1e-8, "MMD dL/dA FD (method %d)", method);
            c.side = 1;
            CHECK(fd_complex(f_mmd, &c, B, d * M, GB1) < 1e-8, "MMD dL/dB FD (method %d)", method);
        }
        free(A), free(B), free(GA1), free(GB1), free(GA2), free(GB2);
    }
    /* identical ensembles: 0 */
    qd_c A[8];
    rand_states(A, 2, 4, &r);
    double v;
    qd_loss_mmd_fid(A, 4, A, 4, 1, QD_MMD_GRAM, &v, NULL, NULL, NULL);
    CHECK(fabs(v) < 1e-15, "MMD(A, A) = 0");
}

/* ---------------------------------------------------------------- Wasserstein, Sinkhorn */

static double f_w(void *c, const qd_c *x)
{
    ens_ctx *k = c;
    double v;
    qd_loss_wasserstein(k->side ? k->A : x, k->N, k->side ? x : k->B, k->M, k->nq, k->wa,
                        k->wb, &v, NULL, NULL, NULL, NULL);
    return v;
}

static double f_sk(void *c, const qd_c *x)
{
    ens_ctx *k = c;
    double v;
    qd_loss_sinkhorn(k->side ? k->A : x, k->N, k->side ? x : k->B, k->M, k->nq, k->wa, k->wb,
                     k->eps, 200000, 1e-14, &v, NULL, NULL, NULL, NULL, NULL);
    return v;
}

QD_TEST(loss_wasserstein_sinkhorn)
{
    qd_rng r;
    qd_rng_init(&r, 402);
    size_t shapes[][2] = {{5, 5}, {3, 5}, {6, 4}};
    for (int t = 0; t < 3; t++) {
        int nq = 2;
        size_t d = 4, N = shapes[t][0], M = shapes[t][1];
        qd_c *A = malloc(sizeof(qd_c) * d * N), *B = malloc(sizeof(qd_c) * d * M);
        qd_c *GA = malloc(sizeof(qd_c) * d * N), *GB = malloc(sizeof(qd_c) * d * M);
        double *P = malloc(sizeof(double) * N * M), *C = malloc(sizeof(double) * N * M);
        double *P2 = malloc(sizeof(double) * N * M);
        rand_states(A, d, N, &r);
        rand_states(B, d, M, &r);
        double v, ce;
        qd_err e;
        CHECK(qd_loss_wasserstein(A, N, B, M, nq, NULL, NULL, &v, P, GA, GB, &e) == QD_OK, "W");
        for (size_t j = 0; j < M; j++)
            for (size_t i = 0; i < N; i++)
                C[i + j * N] = 1 - pow(cabs(qd_inner(A + i * d, B + j * d, d)), 2);
        qd_ot_simplex(C, N, M, NULL, NULL, P2, &ce, &e);
        CHECK_NEAR(v, ce, 1e-12, "W = OT with infidelity cost");
        ens_ctx c = {A, B, N, M, nq, 0, 0, NULL, NULL, 0};
        CHECK(fd_complex(f_w, &c, A, d * N, GA) < 1e-7, "W dL/dA FD (%zux%zu)", N, M);
        c.side = 1;
        CHECK(fd_complex(f_w, &c, B, d * M, GB) < 1e-7, "W dL/dB FD (%zux%zu)", N, M);
        /* weighted */
        double wa[6], wb[6];
        for (size_t i = 0; i < N; i++)
            wa[i] = 1 + qd_rng_uniform(&r);
        for (size_t j = 0; j < M; j++)
            wb[j] = 1 + qd_rng_uniform(&r);
        double sa = 0, sb = 0;
        for (size_t i = 0; i < N; i++)
            sa += wa[i];
        for (size_t j = 0; j < M; j++)
            sb += wb[j];
        for (size_t j = 0; j < M; j++)
            wb[j] *= sa / sb;
        CHECK(qd_loss_wasserstein(A, N, B, M, nq, wa, wb, &v, P, GA, GB, &e) == QD_OK, "Ww");
        c.wa = wa;
        c.wb = wb;
        c.side = 0;
        CHECK(fd_complex(f_w, &c, A, d * N, GA) < 1e-7, "weighted W dL/dA FD");
        /* Sinkhorn */
        qd_sinkhorn_info info;
        c.eps = 0.1;
        c.wa = c.wb = NULL;
        CHECK(qd_loss_sinkhorn(A, N, B, M, nq, NULL, NULL, 0.1, 200000, 1e-14, &v, P, &info, GA,
                               GB, &e) == QD_OK && info.converged, "sinkhorn");
        CHECK(fd_complex(f_sk, &c, A, d * N, GA) < 1e-7, "Sinkhorn dL/dA FD (%zux%zu)", N, M);
        c.side = 1;
        CHECK(fd_complex(f_sk, &c, B, d * M, GB) < 1e-7, "Sinkhorn dL/dB FD (%zux%zu)", N, M);
        free(A), free(B), free(GA), free(GB), free(P), free(C), free(P2);
    }
}

/* ---------------------------------------------------------------- bitstring MMD */

static double kern(size_t x, size_t y, const double *sig, int ns)
{
    double s = 0;
    int h = __builtin_popcountll(x ^ y);
    for (int k = 0; k < ns; k++)
        s += exp(-h / (2 * sig[k])) / ns;
    return s;
}

static void rand_probs(double *p, size_t D, qd_rng *r)
{
    double s = 0;
    for (size_t i = 0; i < D; i++)
        s += (p[i] = qd_rng_uniform(r) + 0.01);
    for (size_t i = 0; i < D; i++)
        p[i] /= s;
}

static size_t draw(const double *p, size_t D, qd_rng *r)
{
    double u = qd_rng_uniform(r), c = 0;
    for (size_t i = 0; i < D; i++) {
        c += p[i];
        if (u < c)
            return i;
    }
    return D - 1;
}

QD_TEST(loss_mmd_bits_three_ways)
{
    qd_rng r;
    qd_rng_init(&r, 403);
    double sig1[] = {0.1}, sig3[] = {0.25, 1, 4};
    for (int n = 1; n <= 5; n++) {
        size_t D = (size_t)1 << n;
        double *p = malloc(sizeof(double) * D), *q = malloc(sizeof(double) * D);
        double *g1 = malloc(sizeof(double) * D), *g2 = malloc(sizeof(double) * D);
        rand_probs(p, D, &r);
        rand_probs(q, D, &r);
        for (int which = 0; which < 2; which++) {
            const double *sig = which ? sig3 : sig1;
            int ns = which ? 3 : 1;
            double nv = 0;
            for (size_t x = 0; x < D; x++)
                for (size_t y = 0; y < D; y++)
                    nv += (p[x] - q[x]) * (p[y] - q[y]) * kern(x, y, sig, ns);
            double v1, v2, orders[8];
            qd_err e;
            CHECK(qd_loss_mmd_bits(p, q, n, sig, ns, &v1, g1, &e) == QD_OK, "exact");
            CHECK(qd_loss_mmd_bits_pauli(p, q, n, sig, ns, &v2, g2, orders, &e) == QD_OK, "pauli");
            CHECK_NEAR(v1, nv, 1e-15, "kernel transform = naive double sum");
            CHECK_NEAR(v2, nv, 1e-15, "Pauli-Z expansion = naive");
            double so = 0;
            for (int k = 0; k <= n; k++)
                so += orders[k];
            CHECK_NEAR(so, v2, 1e-15, "contributions by Pauli weight sum to MMD");
            CHECK(fabs(orders[0]) < 1e-17, "weight-0 term vanishes (both normalised)");
            double worst = 0;
            for (size_t x = 0; x < D; x++) {
                worst = fmax(worst, fabs(g1[x] - g2[x]));
                double h = 1e-6, keep = p[x], vp, vm;
                p[x] = keep + h;
                qd_loss_mmd_bits(p, q, n, sig, ns, &vp, NULL, &e);
                p[x] = keep - h;
                qd_loss_mmd_bits(p, q, n, sig, ns, &vm, NULL, &e);
                p[x] = keep;
                worst = fmax(worst, fabs((vp - vm) / (2 * h) - g1[x]));
            }
            CHECK(worst < 1e-9, "MMD bits gradient FD / exact = pauli (%g)", worst);
        }
        free(p), free(q), free(g1), free(g2);
    }
    /* samples: the U-statistic is unbiased; mean over repetitions vs exact */
    int n = 3;
    size_t D = 8;
    double p[8], q[8], v;
    rand_probs(p, D, &r);
    rand_probs(q, D, &r);
    for (size_t i = 0; i < D; i++)   /* make them differ more */
        q[i] = 0.5 * q[i] + 0.5 * (i == 0);
    qd_loss_mmd_bits(p, q, n, sig3, 3, &v, NULL, NULL);
    int reps = 2000;
    size_t S = 20;
    uint64_t x[20], y[20];
    double m = 0, m2 = 0;
    for (int t = 0; t < reps; t++) {
        for (size_t i = 0; i < S; i++) {
            x[i] = draw(p, D, &r);
            y[i] = draw(q, D, &r);
        }
        double u = qd_loss_mmd_bits_samples(x, NULL, S, y, NULL, S, sig3, 3);
        m += u / reps;
        m2 += u * u / reps;
    }
    double se = sqrt((m2 - m * m) / reps);
    CHECK(fabs(m - v) < 4 * se, "sample MMD unbiased: mean %g vs exact %g (se %g)", m, v, se);
    /* samples equal to themselves: exact small case by hand */
    uint64_t a2[2] = {0, 3}, b2[2] = {0, 3};
    double s1[] = {1};
    CHECK_NEAR(qd_loss_mmd_bits_samples(a2, NULL, 2, b2, NULL, 2, s1, 1),
               exp(-1.0) + exp(-1.0) - 2 * (1 + 1 + 2 * exp(-1.0)) / 4, 1e-15, "by hand");
    /* counts form = expanded list */
    uint64_t xl[6] = {1, 1, 1, 5, 5, 2}, xu[3] = {1, 5, 2}, yl[3] = {7, 0, 7}, yu[2] = {7, 0};
    double cxu[3] = {3, 2, 1}, cyu[2] = {2, 1};
    CHECK_NEAR(qd_loss_mmd_bits_samples(xl, NULL, 6, yl, NULL, 3, sig3, 3),
               qd_loss_mmd_bits_samples(xu, cxu, 3, yu, cyu, 2, sig3, 3), 1e-15,
               "counts = list of draws");
    qd_err e;
    double bad[] = {0};
    CHECK(qd_loss_mmd_bits(p, q, n, bad, 1, &v, NULL, &e) == QD_EARG, "sigma 0 rejected");
}

/* ---------------------------------------------------------------- KL, CE, local fidelity */

QD_TEST(loss_kl_xent_local)
{
    qd_rng r;
    qd_rng_init(&r, 404);
    size_t D = 8;
    double p[8], q[8], g[8], gx[8];
    rand_probs(p, D, &r);
    rand_probs(q, D, &r);
    q[3] = 0;   /* zero target entries contribute 0 */
    double kl = qd_loss_kl(p, q, D, 1e-12, g), xe = qd_loss_xent(p, q, D, 1e-12, gx);
    double nkl = 0, nxe = 0, hq = 0;
    for (size_t i = 0; i < D; i++)
        if (q[i] > 0) {
            nkl += q[i] * log(q[i] / p[i]);
            nxe -= q[i] * log(p[i]);
            hq -= q[i] * log(q[i]);
        }
    CHECK_NEAR(kl, nkl, 1e-14, "KL naive");
    CHECK_NEAR(xe, nxe, 1e-14, "CE naive");
    CHECK_NEAR(xe - hq, kl, 1e-14, "CE = KL + H(q)");
    for (size_t x = 0; x < D; x++) {
        double h = 1e-7, keep = p[x];
        p[x] = keep + h;
        double kp = qd_loss_kl(p, q, D, 1e-12, NULL), xp = qd_loss_xent(p, q, D, 1e-12, NULL);
        p[x] = keep - h;
        double km = qd_loss_kl(p, q, D, 1e-12, NULL), xm = qd_loss_xent(p, q, D, 1e-12, NULL);
        p[x] = keep;
        CHECK(fabs((kp - km) / (2 * h) - g[x]) < 1e-6, "KL gradient FD");
        CHECK(fabs((xp - xm) / (2 * h) - gx[x]) < 1e-6, "CE gradient FD");
    }
    p[2] = 0;   /* clipped: finite value, zero gradient */
    kl = qd_loss_kl(p, q, D, 1e-10, g);
    CHECK(isfinite(kl) && g[2] == 0, "clipping at eps");
    /* local fidelity vs per-qubit marginals */
    for (int n = 1; n <= 4; n++) {
        size_t d = (size_t)1 << n;
        qd_c phi[16], G[16];
        ref_random_vec(phi, d, &r);
        double v = qd_loss_local_fid(phi, n, G), s = 0;
        for (int j = 0; j < n; j++) {
            double pr[2];
            int qs[1] = {j};
            qd_probs(phi, n, qs, 1, pr);
            s += pr[0] / n;
        }
        CHECK_NEAR(v, 1 - s, 1e-14, "local fidelity = 1 - mean P(q_j = 0)");
        double worst = 0, hh = 1e-6;
        for (size_t i = 0; i < d; i++)
            for (int part = 0; part < 2; part++) {
                qd_c keep = phi[i], dz = part ? hh * I : hh;
                phi[i] = keep + dz;
                double fp = qd_loss_local_fid(phi, n, NULL);
                phi[i] = keep - dz;
                double fm = qd_loss_local_fid(phi, n, NULL);
                phi[i] = keep;
                worst = fmax(worst, fabs((fp - fm) / (2 * hh) -
                                         2 * (part ? cimag(G[i]) : creal(G[i]))));
            }
        CHECK(worst < 1e-8, "local fidelity gradient FD (%g)", worst);
    }
}

/* ---------------------------------------------------------------- Born-rule chain rule */

/* KL(q || |psi|^2) of a state: the loss the Born-rule tests differentiate */
static double kl_of_state(const qd_c *psi, const double *q, size_t D, double *gp)
{
    double p[16];
    for (size_t x = 0; x < D; x++)
        p[x] = creal(psi[x]) * creal(psi[x]) + cimag(psi[x]) * cimag(psi[x]);
    return qd_loss_kl(p, q, D, 1e-300, gp);
}

/* psi -> RX(t) on qubit j of psi0 (naive 2x2 on pairs of amplitudes) */
static void rx_naive(const qd_c *psi0, int n, int j, double t, qd_c *out)
{
    size_t D = (size_t)1 << n, b = (size_t)1 << (n - 1 - j);
    double c = cos(t / 2), s = sin(t / 2);
    for (size_t x = 0; x < D; x++)
        if (!(x & b)) {
            qd_c u = psi0[x], v = psi0[x | b];
            out[x] = c * u - I * s * v;
            out[x | b] = -I * s * u + c * v;
        }
}

QD_TEST(loss_born_vjp_shift)
{
    qd_rng r;
    qd_rng_init(&r, 405);
    int n = 3;
    size_t D = 8;
    qd_c psi[8], G[8], a[8], b[8];
    double q[8], gp[8], pp[8], pm[8];
    ref_random_vec(psi, D, &r);
    rand_probs(q, D, &r);
    kl_of_state(psi, q, D, gp);
    qd_born_vjp(psi, gp, D, G);
    double worst = 0, h = 1e-6;
    for (size_t i = 0; i < D; i++)   /* dL = 2 Re sum conj(G) dpsi: FD in Re and Im parts */
        for (int part = 0; part < 2; part++) {
            qd_c keep = psi[i], dz = part ? h * I : h;
            psi[i] = keep + dz;
            double fp = kl_of_state(psi, q, D, NULL);
            psi[i] = keep - dz;
            double fm = kl_of_state(psi, q, D, NULL);
            psi[i] = keep;
            worst = fmax(worst, fabs((fp - fm) / (2 * h) - 2 * (part ? cimag(G[i]) : creal(G[i]))));
        }
    CHECK(worst < 1e-7, "Born vjp = FD of KL(q || |psi|^2) (%g)", worst);
    /* shift rule of a nonlinear loss of p along RX(t) on each qubit: = FD in t */
    for (int j = 0; j < n; j++) {
        double t = 0.37 + j;
        rx_naive(psi, n, j, t, a);
        kl_of_state(a, q, D, gp);
        rx_naive(psi, n, j, t + M_PI / 2, b);
        kl_of_state(b, q, D, NULL);
        for (size_t x = 0; x < D; x++)
            pp[x] = creal(b[x]) * creal(b[x]) + cimag(b[x]) * cimag(b[x]);
        rx_naive(psi, n, j, t - M_PI / 2, b);
        for (size_t x = 0; x < D; x++)
            pm[x] = creal(b[x]) * creal(b[x]) + cimag(b[x]) * cimag(b[x]);
        double ps = qd_born_shift(gp, pp, pm, D);
        rx_naive(psi, n, j, t + h, a);
        double fp = kl_of_state(a, q, D, NULL);
        rx_naive(psi, n, j, t - h, a);
        double fm = kl_of_state(a, q, D, NULL);
        CHECK(fabs(ps - (fp - fm) / (2 * h)) < 1e-7, "Born shift rule = FD along RX on qubit %d (%g vs %g)", j,
              ps, (fp - fm) / (2 * h));
    }
}

/* ---------------------------------------------------------------- state losses */

typedef struct {
    qd_c *a, *b;
    int n, kind, side;
} st_ctx;

static double f_state(void *c, const qd_c *x)
{
    st_ctx *k = c;
    const qd_c *a = k->side ? k->a : x, *b = k->side ? x : k->b;
    double v = 0;
    switch (k->kind) {
    case 0: return qd_loss_infid_pp(a, b, k->n, NULL, NULL);
    case 1: return qd_loss_infid_pd(a, b, k->n, NULL, NULL);
    case 2: qd_loss_infid_dd(a, b, k->n, &v, NULL, NULL, NULL); return v;
    case 3: qd_loss_trace_dist(a, b, k->n, &v, NULL, NULL, NULL); return v;
    case 4: return qd_loss_hs(a, b, k->n, NULL, NULL);
    default: return qd_loss_superfid(a, b, k->n, NULL, NULL);
    }
}

QD_TEST(loss_state_losses)
{
    qd_rng r;
    qd_rng_init(&r, 405);
    for (int n = 1; n <= 3; n++) {
        size_t d = (size_t)1 << n;
        qd_c *a = malloc(sizeof(qd_c) * d), *b = malloc(sizeof(qd_c) * d);
        qd_c *Ga = malloc(sizeof(qd_c) * d * d), *Gb = malloc(sizeof(qd_c) * d * d);
        qd_c *rho = malloc(sizeof(qd_c) * d * d), *sig = malloc(sizeof(qd_c) * d * d);
        ref_random_vec(a, d, &r);
        ref_random_vec(b, d, &r);
        ref_random_dm(rho, d, &r);
        ref_random_dm(sig, d, &r);
        qd_err e;
        /* pure-pure */
        double v = qd_loss_infid_pp(a, b, n, Ga, Gb);
        CHECK_NEAR(v, 1 - qd_fid_pure_pure(a, b, n), 1e-15, "infidelity pp");
        st_ctx c = {a, b, n, 0, 0};
        CHECK(fd_complex(f_state, &c, a, d, Ga) < 1e-8, "infid pp dL/da");
        c.side = 1;
        CHECK(fd_complex(f_state, &c, b, d, Gb) < 1e-8, "infid pp dL/db");
        /* pure-dm */
        v = qd_loss_infid_pd(a, sig, n, Ga, Gb);
        CHECK_NEAR(v, 1 - qd_fid_pure_dm(a, sig, n), 1e-14, "infidelity pd");
        c = (st_ctx){a, sig, n, 1, 0};
        CHECK(fd_complex(f_state, &c, a, d, Ga) < 1e-8, "infid pd dL/dpsi");
        c.side = 1;
        CHECK(fd_herm(f_state, &c, sig, d, Gb, &r, 4) < 1e-8, "infid pd dL/drho");
        /* Uhlmann (well-conditioned states: the fidelity's derivatives grow like
         * lambda_min^(-k), which FD cannot follow for nearly singular random states) */
        for (size_t i = 0; i < d; i++) {
            for (size_t j = 0; j < d * d; j++) {
                if (i == 0) {
                    rho[j] *= 0.7;
                    sig[j] *= 0.7;
                }
            }
            rho[i + i * d] += 0.3 / (double)d;
            sig[i + i * d] += 0.3 / (double)d;
        }
        CHECK(qd_loss_infid_dd(rho, sig, n, &v, Ga, Gb, &e) == QD_OK, "infid dd");
        double f;
        qd_fid_dm_dm(rho, sig, n, &f, &e);
        CHECK_NEAR(v, 1 - f, 1e-14, "Uhlmann infidelity");
        c = (st_ctx){rho, sig, n, 2, 0};
        { double w_ = fd_herm(f_state, &c, rho, d, Ga, &r, 4); CHECK(w_ < 1e-7, "Uhlmann dL/drho n=%d: %g", n, w_); }
        c.side = 1;
        CHECK(fd_herm(f_state, &c, sig, d, Gb, &r, 4) < 1e-7, "Uhlmann dL/dsigma");
        /* chain rule consistency: pure rho = |a><a| with full-rank sigma: G_psi = 2 G_rho psi */
        /* trace distance */
        double t;
        CHECK(qd_loss_trace_dist(rho, sig, n, &v, Ga, Gb, &e) == QD_OK, "trace distance");
        qd_trace_distance(rho, sig, n, &t, &e);
        CHECK_NEAR(v, t, 1e-15, "trace distance value");
        c = (st_ctx){rho, sig, n, 3, 0};
        CHECK(fd_herm(f_state, &c, rho, d, Ga, &r, 4) < 1e-7, "trace distance dL/drho");
        c.side = 1;
        CHECK(fd_herm(f_state, &c, sig, d, Gb, &r, 4) < 1e-7, "trace distance dL/dsigma");
        /* Hilbert–Schmidt */
        v = qd_loss_hs(rho, sig, n, Ga, Gb);
        double trs = 0;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++)
                trs += creal(rho[i + j * d] * sig[j + i * d]);
        CHECK_NEAR(v, qd_dm_purity(rho, n) + qd_dm_purity(sig, n) - 2 * trs, 1e-13,
                   "HS = Tr rho^2 + Tr sigma^2 - 2 Tr rho sigma");
        c = (st_ctx){rho, sig, n, 4, 0};
        CHECK(fd_herm(f_state, &c, rho, d, Ga, &r, 4) < 1e-8, "HS dL/drho");
        c.side = 1;
        CHECK(fd_herm(f_state, &c, sig, d, Gb, &r, 4) < 1e-8, "HS dL/dsigma");
        /* superfidelity >= Uhlmann fidelity */
        v = qd_loss_superfid(rho, sig, n, Ga, Gb);
        CHECK(1 - v >= f - 1e-14 && 1 - v <= 1 + 1e-14, "superfidelity %g >= fidelity %g", 1 - v, f);
        CHECK_NEAR(qd_superfidelity(rho, sig, n), 1 - v, 1e-15, "superfidelity value");
        c = (st_ctx){rho, sig, n, 5, 0};
        { double w_ = fd_herm(f_state, &c, rho, d, Ga, &r, 4); CHECK(w_ < 1e-8, "superfid dL/drho n=%d: %g", n, w_); }
        c.side = 1;
        CHECK(fd_herm(f_state, &c, sig, d, Gb, &r, 4) < 1e-8, "superfid dL/dsigma");
        /* pure-state identity: superfidelity of pure states = |<a|b>|^2 */
        qd_c *pa = malloc(sizeof(qd_c) * d * d), *pb = malloc(sizeof(qd_c) * d * d);
        qd_dm_from_state(a, n, pa);
        qd_dm_from_state(b, n, pb);
        CHECK_NEAR(qd_superfidelity(pa, pb, n), qd_fid_pure_pure(a, b, n), 1e-14, "superfid pure");
        CHECK_NEAR(qd_loss_hs(pa, pb, n, NULL, NULL), 2 - 2 * qd_fid_pure_pure(a, b, n), 1e-14, "HS pure");
        /* density-matrix convention vs state convention: L(|a><a|) with G_rho -> G_psi = 2 G_rho a */
        qd_loss_hs(pa, sig, n, Ga, NULL);
        qd_c *Gp = malloc(sizeof(qd_c) * d);
        ref_matvec(Ga, d, a, Gp);
        for (size_t i = 0; i < d; i++)
            Gp[i] *= 2;
        double worst = 0, hh = 1e-6;
        for (size_t i = 0; i < d; i++)
            for (int part = 0; part < 2; part++) {
                qd_c keep = a[i], dz = part ? hh * I : hh;
                a[i] = keep + dz;
                qd_dm_from_state(a, n, pa);
                double fp = qd_loss_hs(pa, sig, n, NULL, NULL);
                a[i] = keep - dz;
                qd_dm_from_state(a, n, pa);
                double fm = qd_loss_hs(pa, sig, n, NULL, NULL);
                a[i] = keep;
                worst = fmax(worst, fabs((fp - fm) / (2 * hh) - 2 * (part ? cimag(Gp[i]) : creal(Gp[i]))));
            }
        CHECK(worst < 1e-8, "G_psi = 2 G_rho psi (chain through |psi><psi|): %g", worst);
        free(pa), free(pb), free(Gp);
        free(a), free(b), free(Ga), free(Gb), free(rho), free(sig);
    }
}

/* ---------------------------------------------------------------- warm-started Wasserstein */

/* along a drifting problem (a training run), the warm-started loss equals the cold one
 * exactly: same value to 1e-12, same plan and gradients bitwise (tie-free random costs,
 * so the optimal assignment is unique); sizes / weights where v is ignored */
QD_TEST(loss_wasserstein_warm)
{
    qd_rng r;
    qd_rng_init(&r, 4711);
    int nq = 2;
    size_t d = 4, N = 60;
    qd_c *A0 = malloc(sizeof(qd_c) * d * N), *D = malloc(sizeof(qd_c) * d * N);
    qd_c *A = malloc(sizeof(qd_c) * d * N), *B = malloc(sizeof(qd_c) * d * N);
    qd_c *GA0 = malloc(sizeof(qd_c) * d * N), *GB0 = malloc(sizeof(qd_c) * d * N);
    qd_c *GA1 = malloc(sizeof(qd_c) * d * N), *GB1 = malloc(sizeof(qd_c) * d * N);
    double *P0 = malloc(sizeof(double) * N * N), *P1 = malloc(sizeof(double) * N * N);
    double v[60];
    rand_states(A0, d, N, &r);
    rand_states(D, d, N, &r);
    rand_states(B, d, N, &r);
    qd_err e;
    for (int step = 0; step < 12; step++) {
        double t = 0.02 * step;
        for (size_t i = 0; i < d * N; i++)
            A[i] = A0[i] + t * D[i];
        double c0, c1;
        CHECK(qd_loss_wasserstein(A, N, B, N, nq, NULL, NULL, &c0, P0, GA0, GB0, &e) == QD_OK,
              "cold");
        CHECK(qd_loss_wasserstein_warm(A, N, B, N, nq, NULL, NULL, &c1, P1, GA1, GB1, v,
                                       step > 0, &e) == QD_OK, "warm");
        CHECK_NEAR(c1, c0, 1e-12, "warm value = cold value");
        CHECK(memcmp(P0, P1, sizeof(double) * N * N) == 0, "warm plan = cold plan (step %d)", step);
        CHECK(memcmp(GA0, GA1, sizeof(qd_c) * d * N) == 0 &&
              memcmp(GB0, GB1, sizeof(qd_c) * d * N) == 0, "warm gradients = cold (step %d)", step);
    }
    /* v NULL with warm set: a cold solve; unequal sizes / weights: v untouched */
    double c0, c1;
    CHECK(qd_loss_wasserstein_warm(A, N, B, N, nq, NULL, NULL, &c1, P1, NULL, NULL, NULL, 1,
                                   &e) == QD_OK, "v NULL");
    qd_loss_wasserstein(A, N, B, N, nq, NULL, NULL, &c0, P0, NULL, NULL, &e);
    CHECK(c1 == c0, "v NULL = cold");
    double keep[60];
    for (size_t j = 0; j < N; j++)
        keep[j] = v[j] = NAN;
    CHECK(qd_loss_wasserstein_warm(A, N, B, N - 1, nq, NULL, NULL, &c1, P1, NULL, NULL, v, 1,
                                   &e) == QD_OK, "unequal sizes ignore v");
    qd_loss_wasserstein(A, N, B, N - 1, nq, NULL, NULL, &c0, P0, NULL, NULL, &e);
    CHECK(c1 == c0 && memcmp(keep, v, sizeof keep) == 0, "unequal sizes: same, v untouched");
    double w[60];
    for (size_t i = 0; i < N; i++)
        w[i] = 1;
    CHECK(qd_loss_wasserstein_warm(A, N, B, N, nq, w, NULL, &c1, P1, NULL, NULL, v, 1, &e) ==
          QD_OK, "weights ignore v");
    qd_loss_wasserstein(A, N, B, N, nq, NULL, NULL, &c0, P0, NULL, NULL, &e);
    CHECK(fabs(c1 - c0) < 1e-12 && memcmp(keep, v, sizeof keep) == 0, "weights: v untouched");
    /* non-finite start on the assignment path is an error */
    CHECK(qd_loss_wasserstein_warm(A, N, B, N, nq, NULL, NULL, &c1, P1, NULL, NULL, v, 1, &e) ==
          QD_EARG && strstr(e.msg, "potential"), "NaN start rejected");
    free(A0), free(D), free(A), free(B), free(GA0), free(GB0), free(GA1), free(GB1);
    free(P0), free(P1);
}

/* ---------------------------------------------------------------- Wasserstein, assignment path
 * Equal sizes with uniform weights go through the assignment with the cost built in the
 * solver's layout (a direct loop for d <= 16, one zgemm above) and a one-term-per-member
 * gradient. Against a naive reference: the cost 1 - |<a_i|b_j>|^2 from qd_inner, the
 * network simplex for the optimum, and the gradient formula on the simplex plan; plan NULL
 * and one-sided gradients; N = 1, 2, 9, 100 and d = 2 ... 32 (both cost paths). */
QD_TEST(loss_wasserstein_assignment_path)
{
    qd_rng r;
    qd_rng_init(&r, 1126);
    static const int nqs[] = {1, 2, 4, 5};
    static const size_t Ns[] = {1, 2, 9, 100};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            int nq = nqs[a];
            size_t d = (size_t)1 << nq, N = Ns[b];
            qd_c *A = malloc(sizeof(qd_c) * d * N), *B = malloc(sizeof(qd_c) * d * N);
            qd_c *GA = malloc(sizeof(qd_c) * d * N), *GB = malloc(sizeof(qd_c) * d * N);
            qd_c *HA = malloc(sizeof(qd_c) * d * N), *HB = malloc(sizeof(qd_c) * d * N);
            double *P = malloc(sizeof(double) * N * N), *Q = malloc(sizeof(double) * N * N);
            double *C = malloc(sizeof(double) * N * N);
            rand_states(A, d, N, &r);
            rand_states(B, d, N, &r);
            for (size_t j = 0; j < N; j++)
                for (size_t i = 0; i < N; i++) {
                    qd_c z = qd_inner(A + i * d, B + j * d, d);
                    C[i + j * N] = 1 - (creal(z) * creal(z) + cimag(z) * cimag(z));
                }
            double v, w, v2;
            qd_err e;
            CHECK(qd_loss_wasserstein(A, N, B, N, nq, NULL, NULL, &v, P, GA, GB, &e) == QD_OK, "W");
            CHECK(qd_ot_simplex(C, N, N, NULL, NULL, Q, &w, &e) == QD_OK, "simplex");
            CHECK(fabs(v - w) <= 1e-12, "W = exact OT of the naive cost (nq=%d N=%zu)", nq, N);
            /* the plan is a permutation / N with the optimal cost */
            double pc = 0, worst = 0;
            for (size_t i = 0; i < N; i++) {
                double rs = 0;
                for (size_t j = 0; j < N; j++) {
                    rs += P[i + j * N];
                    pc += P[i + j * N] * C[i + j * N];
                    worst = fmax(worst, fmin(fabs(P[i + j * N]), fabs(P[i + j * N] - 1.0 / (double)N)));
                }
                worst = fmax(worst, fabs(rs - 1.0 / (double)N));
            }
            CHECK(worst < 1e-15 && fabs(pc - v) < 1e-12, "plan = permutation / N (nq=%d N=%zu)", nq, N);
            /* gradient from the plan: G_A[:,k] = -sum_j P_kj b_j <b_j|a_k> */
            double gerr = 0;
            for (size_t k = 0; k < N; k++)
                for (size_t t = 0; t < d; t++) {
                    qd_c ga = 0, gb = 0;
                    for (size_t j = 0; j < N; j++) {
                        ga -= P[k + j * N] * B[t + j * d] * qd_inner(B + j * d, A + k * d, d);
                        gb -= P[j + k * N] * A[t + j * d] * qd_inner(A + j * d, B + k * d, d);
                    }
                    gerr = fmax(gerr, fmax(cabs(ga - GA[t + k * d]), cabs(gb - GB[t + k * d])));
                }
            CHECK(gerr < 1e-14, "gradients = the plan formula (nq=%d N=%zu): %g", nq, N, gerr);
            /* no plan, one-sided gradients: the same numbers */
            CHECK(qd_loss_wasserstein(A, N, B, N, nq, NULL, NULL, &v2, NULL, HA, NULL, &e) == QD_OK &&
                      v2 == v && memcmp(HA, GA, sizeof(qd_c) * d * N) == 0,
                  "plan NULL, G_A only");
            CHECK(qd_loss_wasserstein(A, N, B, N, nq, NULL, NULL, &v2, NULL, NULL, HB, &e) == QD_OK &&
                      v2 == v && memcmp(HB, GB, sizeof(qd_c) * d * N) == 0,
                  "plan NULL, G_B only");
            /* finite differences on small problems (the optimum is unique for random states) */
            if (N <= 9 && nq <= 2) {
                ens_ctx c = {A, B, N, N, nq, 0, 0, NULL, NULL, 0};
                CHECK(fd_complex(f_w, &c, A, d * N, GA) < 1e-7, "W dL/dA FD (nq=%d N=%zu)", nq, N);
                c.side = 1;
                CHECK(fd_complex(f_w, &c, B, d * N, GB) < 1e-7, "W dL/dB FD (nq=%d N=%zu)", nq, N);
            }
            free(A), free(B), free(GA), free(GB), free(HA), free(HB), free(P), free(Q), free(C);
        }
    /* a non-finite amplitude: an error naming the cost entry, no crash */
    qd_c A[4] = {1, 0, NAN, 0}, B[4] = {1, 0, 0, 1};
    double v;
    qd_err e;
    CHECK(qd_loss_wasserstein(A, 2, B, 2, 1, NULL, NULL, &v, NULL, NULL, NULL, &e) == QD_EARG &&
              strstr(e.msg, "non-finite"),
          "NaN state rejected");
}
