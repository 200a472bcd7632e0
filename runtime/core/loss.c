/* loss.c — losses and their gradients with respect to their inputs: ensemble losses for
 * QuDDPM (fidelity-kernel MMD, Wasserstein and Sinkhorn with infidelity cost), Born-machine
 * distribution losses (Gaussian-kernel MMD on bitstrings three ways, KL, cross entropy,
 * local fidelity) and state losses for QGDM (infidelity pure/Uhlmann, trace distance,
 * Hilbert–Schmidt, superfidelity). The gradient convention (Wirtinger dL/d(conj x); for
 * density matrices the Hermitian G with dL = 2 Tr(G drho)) is spelled out in qd_loss.h.
 * Sums are serial loops in a fixed order (thread-count independent); the big products
 * are zgemm calls through linalg.c. Complex products in loops go through qd_cmul (qd.h):
 * the same values as `*`, but GCC cannot fuse them into vfmaddsub
 * (scripts/check_contraction.sh). */
#include "qd_loss.h"
#include "qd_simd.h"
#include "qd_isa.h"
#include <math.h>
#include <string.h>

static size_t dim_of(int nq)
{
    return (size_t)1 << nq;
}

static double sumsq(const qd_c *z, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += creal(z[i]) * creal(z[i]) + cimag(z[i]) * cimag(z[i]);
    return s;
}

static qd_status nomem(qd_err *e, const char *what)
{
    return qd_fail(e, QD_ENOMEM, "not enough memory for %s", what);
}

/* ---------------------------------------------------------------- fidelity-kernel MMD */

static qd_status mmd_gram(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d,
                          double *val, qd_c *GA, qd_c *GB, qd_err *e)
{
    qd_c *KAA = qd_malloc(sizeof(qd_c) * N * N), *KBB = qd_malloc(sizeof(qd_c) * M * M);
    qd_c *KAB = qd_malloc(sizeof(qd_c) * N * M);
    qd_status st = QD_OK;
    if (!KAA || !KBB || !KAB) {
        st = nomem(e, "the overlap matrices of an MMD");
        goto done;
    }
    qd_la_zgemm('C', 'N', N, N, d, 1.0, A, d, A, d, 0.0, KAA, N);
    qd_la_zgemm('C', 'N', M, M, d, 1.0, B, d, B, d, 0.0, KBB, M);
    qd_la_zgemm('C', 'N', N, M, d, 1.0, A, d, B, d, 0.0, KAB, N);
    double Nd = (double)N, Md = (double)M;
    *val = sumsq(KAA, N * N) / (Nd * Nd) + sumsq(KBB, M * M) / (Md * Md) -
           2.0 * sumsq(KAB, N * M) / (Nd * Md);
    /* G_A = (2/N^2) A K_AA - (2/(NM)) B K_AB^H ; G_B = (2/M^2) B K_BB - (2/(NM)) A K_AB */
    if (GA) {
        qd_la_zgemm('N', 'N', d, N, N, 2.0 / (Nd * Nd), A, d, KAA, N, 0.0, GA, d);
        qd_la_zgemm('N', 'C', d, N, M, -2.0 / (Nd * Md), B, d, KAB, N, 1.0, GA, d);
    }
    if (GB) {
        qd_la_zgemm('N', 'N', d, M, M, 2.0 / (Md * Md), B, d, KBB, M, 0.0, GB, d);
        qd_la_zgemm('N', 'N', d, M, N, -2.0 / (Nd * Md), A, d, KAB, N, 1.0, GB, d);
    }
done:
    qd_free(KAA);
    qd_free(KBB);
    qd_free(KAB);
    return st;
}

/* ---- small states (d <= MMD_DM_DIRECT_MAXD): the average states and the gradients with
 * members side by side in SIMD lanes (qd_simd.h); the BLAS calls' overhead dominated at
 * these sizes. Sums over members: lane-wise in block order, then the lanes in order (fixed
 * for a given N: no dependence on threads). */
#define MMD_DM_DIRECT_MAXD 32

/* (Sr, Si) += sum over the members of X of x x^dagger, d x d row-major (Hermitian: the
 * pairs c >= r computed, mirrored). T: the members transposed, nblk blocks of 2d x QD_VL. */
#define OL_NV (8 / QD_VL)            /* accumulators per sum: 8 virtual lanes */
#define OL_TC (QD_VREGS32 ? 4 : 2)   /* columns per tile (accumulators stay in registers) */
static void outer_lanes(const qd_c *X, size_t n, size_t d, double *Sr, double *Si, double *T)
{
    const size_t nblk = (n + QD_VL - 1) / QD_VL, bs = 2 * d * QD_VL;
    for (size_t k = 0; k < nblk; k++) {
        size_t j0 = k * QD_VL, nl = n - j0 < QD_VL ? n - j0 : QD_VL;
        qd_soa_in(T + k * bs, X + j0 * d, d, nl);
    }
    /* Member j is summed into virtual lane j % 8 whatever the vector width (with 4-wide
     * vectors, block k feeds accumulator k % 2), and the 8 virtual lanes are added in
     * order: the sums are the same in every kernel set. */
    for (size_t r = 0; r < d; r++)
        for (size_t c0 = r; c0 < d; c0 += OL_TC) {
            const int nc = d - c0 < OL_TC ? (int)(d - c0) : OL_TC;
            qd_vd ar[OL_TC][OL_NV], ai[OL_TC][OL_NV];   /* x_r conj(x_c), c = c0 + t */
            for (int t = 0; t < OL_TC; t++)
                for (int v = 0; v < OL_NV; v++)
                    ar[t][v] = ai[t][v] = qd_vzero();
            for (size_t k = 0; k < nblk; k++) {
                const double *B = T + k * bs;
                const int v = (int)(k % OL_NV);
                qd_vd xr = qd_vload(B + r * QD_VL), xi = qd_vload(B + (d + r) * QD_VL);
                for (int t = 0; t < nc; t++) {
                    qd_vd yr = qd_vload(B + (c0 + (size_t)t) * QD_VL),
                          yi = qd_vload(B + (d + c0 + (size_t)t) * QD_VL);
                    ar[t][v] = qd_vfma(xi, yi, qd_vfma(xr, yr, ar[t][v]));
                    ai[t][v] = qd_vfnma(xr, yi, qd_vfma(xi, yr, ai[t][v]));
                }
            }
            for (int t = 0; t < nc; t++) {
                double u[2][8], sr = 0, si = 0;
                for (int v = 0; v < OL_NV; v++) {
                    qd_vstore(u[0] + v * QD_VL, ar[t][v]);
                    qd_vstore(u[1] + v * QD_VL, ai[t][v]);
                }
                for (int l = 0; l < 8; l++) {
                    sr += u[0][l];
                    si += u[1][l];
                }
                size_t c = c0 + (size_t)t;
                Sr[r * d + c] += sr;
                Si[r * d + c] += si;
                if (c != r) {
                    Sr[c * d + r] += sr;
                    Si[c * d + r] -= si;
                }
            }
        }
}

/* G_j = s D x_j, D = (Dr, Di) row-major */
static void apply_lanes(const double *Dr, const double *Di, double s, const qd_c *X, size_t n,
                        size_t d, qd_c *G, double *buf)
{
    double *out = buf + 2 * d * QD_VL;
    for (size_t j0 = 0; j0 < n; j0 += QD_VL) {
        size_t nl = n - j0 < QD_VL ? n - j0 : QD_VL;
        qd_soa_in(buf, X + j0 * d, d, nl);
        for (size_t r = 0; r < d; r++) {
            qd_vd gr = qd_vzero(), gi = qd_vzero();
            for (size_t c = 0; c < d; c++) {
                qd_vd a = qd_vset1(Dr[r * d + c]), b = qd_vset1(Di[r * d + c]);
                qd_vd xr = qd_vload(buf + c * QD_VL), xi = qd_vload(buf + (d + c) * QD_VL);
                gr = qd_vfnma(b, xi, qd_vfma(a, xr, gr));
                gi = qd_vfma(b, xr, qd_vfma(a, xi, gi));
            }
            qd_vstore(out + r * QD_VL, qd_vmul(qd_vset1(s), gr));
            qd_vstore(out + (d + r) * QD_VL, qd_vmul(qd_vset1(s), gi));
        }
        qd_soa_out(out, G + j0 * d, d, nl);
    }
}

static qd_status mmd_dm_direct(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d,
                               double *val, qd_c *GA, qd_c *GB, qd_err *e)
{
    const size_t dd = d * d, nb = ((N > M ? N : M) + QD_VL - 1) / QD_VL;
    double *w = qd_calloc(4 * dd + 4 * d * QD_VL, sizeof(double));
    double *T = qd_malloc(sizeof(double) * 2 * d * QD_VL * nb);
    if (!w || !T) {
        qd_free(w);
        qd_free(T);
        return nomem(e, "the average states of an MMD");
    }
    double *Ar = w, *Ai = w + dd, *Br = w + 2 * dd, *Bi = w + 3 * dd, *buf = w + 4 * dd;
    outer_lanes(A, N, d, Ar, Ai, T);
    outer_lanes(B, M, d, Br, Bi, T);
    const double iN = 1.0 / (double)N, iM = 1.0 / (double)M;
    double v = 0;
    for (size_t k = 0; k < dd; k++) {   /* D = rhoA - rhoB into (Ar, Ai) */
        Ar[k] = Ar[k] * iN - Br[k] * iM;
        Ai[k] = Ai[k] * iN - Bi[k] * iM;
        v += Ar[k] * Ar[k] + Ai[k] * Ai[k];
    }
    *val = v;   /* Tr D^2 = sum |D_rc|^2 for Hermitian D */
    if (GA)
        apply_lanes(Ar, Ai, 2.0 * iN, A, N, d, GA, buf);
    if (GB)
        apply_lanes(Ar, Ai, -2.0 * iM, B, M, d, GB, buf);
    qd_free(w);
    qd_free(T);
    return QD_OK;
}

static qd_status mmd_dm(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d,
                        double *val, qd_c *GA, qd_c *GB, qd_err *e)
{
    if (d <= MMD_DM_DIRECT_MAXD && qd_isa_fma_hw())
        return mmd_dm_direct(A, N, B, M, d, val, GA, GB, e);
    qd_c *D = qd_malloc(sizeof(qd_c) * d * d);
    if (!D)
        return nomem(e, "the average states of an MMD");
    double Nd = (double)N, Md = (double)M;
    /* D = rhoA - rhoB */
    qd_la_zgemm('N', 'C', d, d, N, 1.0 / Nd, A, d, A, d, 0.0, D, d);
    qd_la_zgemm('N', 'C', d, d, M, -1.0 / Md, B, d, B, d, 1.0, D, d);
    *val = sumsq(D, d * d);   /* Tr D^2 = sum |D_ij|^2 for Hermitian D */
    if (GA)
        qd_la_zgemm('N', 'N', d, N, d, 2.0 / Nd, D, d, A, d, 0.0, GA, d);
    if (GB)
        qd_la_zgemm('N', 'N', d, M, d, -2.0 / Md, D, d, B, d, 0.0, GB, d);
    qd_free(D);
    return QD_OK;
}

qd_status qd_loss_mmd_fid(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq, int method,
                          double *val, qd_c *GA, qd_c *GB, qd_err *e)
{
    if (N == 0 || M == 0)
        return qd_fail(e, QD_EARG, "MMD of an empty ensemble");
    size_t d = dim_of(nq);
    if (method == QD_MMD_AUTO) {
        /* gram: ~ d (N+M)^2 multiply-adds; average states: ~ d^2 (N+M) */
        double NM = (double)N + (double)M;
        method = (double)d < NM ? QD_MMD_DM : QD_MMD_GRAM;
    }
    if (method == QD_MMD_DM)
        return mmd_dm(A, N, B, M, d, val, GA, GB, e);
    return mmd_gram(A, N, B, M, d, val, GA, GB, e);
}

/* ---------------------------------------------------------------- OT with infidelity cost */

/* K_AB (N x M) and C = 1 - |K_AB|^2 */
static qd_status ot_cost(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d,
                         qd_c **K, double **C, qd_err *e)
{
    size_t NM;
    if (qd_mul_overflow(N, M, &NM) || NM > ((size_t)1 << 40))
        return qd_fail(e, QD_ENOMEM, "transport problem too large (%zu x %zu)", N, M);
    *K = qd_malloc(sizeof(qd_c) * NM);
    *C = qd_malloc(sizeof(double) * NM);
    if (!*K || !*C) {
        qd_free(*K);
        qd_free(*C);
        *K = NULL;
        *C = NULL;
        return nomem(e, "a transport cost matrix");
    }
    qd_la_zgemm('C', 'N', N, M, d, 1.0, A, d, B, d, 0.0, *K, N);
    for (size_t i = 0; i < NM; i++) {
        qd_c z = (*K)[i];
        (*C)[i] = 1.0 - (creal(z) * creal(z) + cimag(z) * cimag(z));
    }
    return QD_OK;
}

/* gradient of sum P_ij (1 - |<a_i|b_j>|^2) with P fixed */
static qd_status ot_grad(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d,
                         const qd_c *K, const double *P, qd_c *GA, qd_c *GB, qd_err *e)
{
    if (!GA && !GB)
        return QD_OK;
    qd_c *W = qd_malloc(sizeof(qd_c) * N * M);
    if (!W)
        return nomem(e, "a transport gradient");
    if (GA) {   /* G_A[:,k] = -sum_j b_j P_kj conj(K_kj) = -(B W^T)[:,k] */
        for (size_t i = 0; i < N * M; i++)
            W[i] = P[i] * conj(K[i]);
        qd_la_zgemm('N', 'T', d, N, M, -1.0, B, d, W, N, 0.0, GA, d);
    }
    if (GB) {   /* G_B[:,l] = -sum_i a_i P_il K_il = -(A W)[:,l] */
        for (size_t i = 0; i < N * M; i++)
            W[i] = P[i] * K[i];
        qd_la_zgemm('N', 'N', d, M, N, -1.0, A, d, W, N, 0.0, GB, d);
    }
    qd_free(W);
    return QD_OK;
}

qd_status qd_loss_wasserstein(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq,
                              const double *wa, const double *wb, double *val, double *P,
                              qd_c *GA, qd_c *GB, qd_err *e)
{
    return qd_loss_wasserstein_warm(A, N, B, M, nq, wa, wb, val, P, GA, GB, NULL, 0, e);
}

/* The assignment case (N == M, uniform weights): the cost goes straight into the solver's
 * layout (row-major, rows padded to qd_ot_assign_ld(N)), the plan is the permutation and
 * the gradient has one term per member:
 *   G_A[:,i] = -(1/N) b_p(i) <b_p(i)|a_i>,  G_B[:,p(i)] = -(1/N) a_i <a_i|b_p(i)>.
 * For small states (d <= 16) the overlaps are a direct loop over the columns (the targets
 * split into real and imaginary parts per amplitude, so the loop over j vectorises);
 * larger ones use one zgemm B^H A, whose columns are the rows of the cost. */
#define W_DIRECT_MAX 16
static qd_status wasserstein_assign(const qd_c *A, size_t N, const qd_c *B, size_t d,
                                    double *val, double *P, qd_c *GA, qd_c *GB, double *v,
                                    int warm, qd_err *e)
{
    size_t ld = qd_ot_assign_ld(N), nc;
    if (qd_mul_overflow(N, ld, &nc) || nc > ((size_t)1 << 40))
        return qd_fail(e, QD_ENOMEM, "transport problem too large (%zu x %zu)", N, N);
    int direct = d <= W_DIRECT_MAX;
    /* the targets split into real and imaginary parts and one row of overlaps, or the
     * zgemm result */
    size_t extra = direct ? 2 * d * ld + 2 * ld : 2 * N * N;
    double *c = qd_malloc(sizeof(double) * (nc + extra) + sizeof(size_t) * N);
    if (!c)
        return nomem(e, "a transport cost matrix");
    double *w = c + nc;
    size_t *perm = (size_t *)(w + extra);
    if (direct) {
        double *br = w, *bi = w + d * ld;   /* br[k*ld + j] = Re B[k, j] */
        for (size_t j = 0; j < N; j++)
            for (size_t k = 0; k < d; k++) {
                br[k * ld + j] = creal(B[k + j * d]);
                bi[k * ld + j] = cimag(B[k + j * d]);
            }
        for (size_t k = 0; k < d; k++)
            for (size_t j = N; j < ld; j++)
                br[k * ld + j] = bi[k * ld + j] = 0;
        double *kr = bi + d * ld, *ki = kr + ld;
        for (size_t i = 0; i < N; i++) {
            const qd_c *a = A + i * d;
            double *ci = c + i * ld;
            /* <a_i|b_j> = sum_k conj(a_k) b_kj, accumulated over k in order (the padding
             * columns get 1 - 0 = 1); one qubit (the QuDDPM circle task) in registers */
            if (d == 2) {
                double ar0 = creal(a[0]), ai0 = cimag(a[0]), ar1 = creal(a[1]), ai1 = cimag(a[1]);
                const double *br0 = br, *bi0 = bi, *br1 = br + ld, *bi1 = bi + ld;
                #pragma omp simd
                for (size_t j = 0; j < ld; j++) {
                    double xr = 0, xi = 0;
                    xr += ar0 * br0[j] + ai0 * bi0[j];
                    xi += ar0 * bi0[j] - ai0 * br0[j];
                    xr += ar1 * br1[j] + ai1 * bi1[j];
                    xi += ar1 * bi1[j] - ai1 * br1[j];
                    ci[j] = 1.0 - (xr * xr + xi * xi);
                }
                continue;
            }
            for (size_t j = 0; j < ld; j++)
                kr[j] = ki[j] = 0;
            for (size_t k = 0; k < d; k++) {
                double ar = creal(a[k]), ai = cimag(a[k]);
                const double *brk = br + k * ld, *bik = bi + k * ld;
                #pragma omp simd
                for (size_t j = 0; j < ld; j++) {
                    kr[j] += ar * brk[j] + ai * bik[j];
                    ki[j] += ar * bik[j] - ai * brk[j];
                }
            }
            #pragma omp simd
            for (size_t j = 0; j < ld; j++)
                ci[j] = 1.0 - (kr[j] * kr[j] + ki[j] * ki[j]);
        }
    } else {
        qd_c *Kt = (qd_c *)w;   /* Kt[j + i*N] = <b_j|a_i> */
        qd_la_zgemm('C', 'N', N, N, d, 1.0, B, d, A, d, 0.0, Kt, N);
        for (size_t i = 0; i < N; i++) {
            double *ci = c + i * ld;
            const qd_c *ki = Kt + i * N;
            for (size_t j = 0; j < N; j++)
                ci[j] = 1.0 - (creal(ki[j]) * creal(ki[j]) + cimag(ki[j]) * cimag(ki[j]));
            for (size_t j = N; j < ld; j++)
                ci[j] = 0;
        }
    }
    double cost;
    qd_status st = qd_ot_assign_rm(c, N, perm, &cost, v, v ? warm : 0, e);
    if (st == QD_OK) {
        double inv = 1.0 / (double)N;
        *val = cost * inv;
        if (P) {
            memset(P, 0, sizeof(double) * N * N);
            for (size_t i = 0; i < N; i++)
                P[i + perm[i] * N] = inv;
        }
        for (size_t i = 0; (GA || GB) && i < N; i++) {
            const qd_c *a = A + i * d, *b = B + perm[i] * d;
            qd_c z = 0;   /* <a_i|b_p(i)> */
            for (size_t k = 0; k < d; k++)
                z += qd_cmul(conj(a[k]), b[k]);
            if (GA) {
                qd_c f = -inv * conj(z);
                qd_c *g = GA + i * d;
                for (size_t k = 0; k < d; k++)
                    g[k] = qd_cmul(b[k], f);
            }
            if (GB) {
                qd_c f = -inv * z;
                qd_c *g = GB + perm[i] * d;
                for (size_t k = 0; k < d; k++)
                    g[k] = qd_cmul(a[k], f);
            }
        }
    }
    qd_free(c);
    return st;
}

qd_status qd_loss_wasserstein_warm(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq,
                                   const double *wa, const double *wb, double *val, double *P,
                                   qd_c *GA, qd_c *GB, double *v, int warm, qd_err *e)
{
    size_t d = dim_of(nq);
    if (N == M && !wa && !wb && N > 0)
        return wasserstein_assign(A, N, B, d, val, P, GA, GB, v, warm, e);
    qd_c *K = NULL;
    double *C = NULL, *Pown = NULL;
    qd_status st = ot_cost(A, N, B, M, d, &K, &C, e);
    if (st)
        return st;
    if (!P) {
        P = Pown = qd_malloc(sizeof(double) * N * M);
        if (!P) {
            st = nomem(e, "a transport plan");
            goto done;
        }
    }
    st = qd_ot_exact_warm(C, N, M, wa, wb, P, val, v, warm, e);
    if (st == QD_OK)
        st = ot_grad(A, N, B, M, d, K, P, GA, GB, e);
done:
    qd_free(K);
    qd_free(C);
    qd_free(Pown);
    return st;
}

qd_status qd_loss_sinkhorn(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq,
                           const double *wa, const double *wb, double eps, size_t max_iter,
                           double tol, double *val, double *P, qd_sinkhorn_info *info,
                           qd_c *GA, qd_c *GB, qd_err *e)
{
    size_t d = dim_of(nq);
    qd_c *K = NULL;
    double *C = NULL, *Pown = NULL;
    qd_status st = ot_cost(A, N, B, M, d, &K, &C, e);
    if (st)
        return st;
    if (!P) {
        P = Pown = qd_malloc(sizeof(double) * N * M);
        if (!P) {
            st = nomem(e, "a transport plan");
            goto done;
        }
    }
    st = qd_ot_sinkhorn(C, N, M, wa, wb, eps, max_iter, tol, P, val, info, e);
    if (st == QD_OK)
        st = ot_grad(A, N, B, M, d, K, P, GA, GB, e);
done:
    qd_free(K);
    qd_free(C);
    qd_free(Pown);
    return st;
}

/* ---------------------------------------------------------------- bitstring MMD */

void qd_bits_kernel_apply(const double *x, int n, const double *sig, int ns, double *y,
                          double *tmp)
{
    size_t D = dim_of(n);
    memset(y, 0, sizeof(double) * D);
    for (int s = 0; s < ns; s++) {
        double ek = exp(-1.0 / (2.0 * sig[s]));
        memcpy(tmp, x, sizeof(double) * D);
        /* apply [[1, e], [e, 1]] on every bit */
        for (size_t h = 1; h < D; h <<= 1)
            for (size_t i0 = 0; i0 < D; i0 += 2 * h)
                for (size_t i = i0; i < i0 + h; i++) {
                    double u = tmp[i], v = tmp[i + h];
                    tmp[i] = u + ek * v;
                    tmp[i + h] = ek * u + v;
                }
        for (size_t i = 0; i < D; i++)
            y[i] += tmp[i] / (double)ns;
    }
}

static qd_status check_sigmas(const double *sig, int ns, qd_err *e)
{
    if (ns < 1)
        return qd_fail(e, QD_EARG, "at least one bandwidth sigma expected");
    for (int s = 0; s < ns; s++)
        if (!(sig[s] > 0) || !isfinite(sig[s]))
            return qd_fail(e, QD_EARG, "bandwidth sigma > 0 expected, got %g", sig[s]);
    return QD_OK;
}

qd_status qd_loss_mmd_bits(const double *p, const double *q, int n, const double *sig, int ns,
                           double *val, double *gp, qd_err *e)
{
    qd_status st = check_sigmas(sig, ns, e);
    if (st)
        return st;
    size_t D = dim_of(n);
    double *delta = qd_malloc(sizeof(double) * D), *Kd = qd_malloc(sizeof(double) * D);
    double *tmp = qd_malloc(sizeof(double) * D);
    if (!delta || !Kd || !tmp) {
        st = nomem(e, "a bitstring MMD");
        goto done;
    }
    for (size_t i = 0; i < D; i++)
        delta[i] = p[i] - q[i];
    qd_bits_kernel_apply(delta, n, sig, ns, Kd, tmp);
    double v = 0;
    for (size_t i = 0; i < D; i++)
        v += delta[i] * Kd[i];
    *val = v;
    if (gp)
        for (size_t i = 0; i < D; i++)
            gp[i] = 2.0 * Kd[i];
done:
    qd_free(delta);
    qd_free(Kd);
    qd_free(tmp);
    return st;
}

/* levels h = h0, 2 h0, ... < h1 of the transform on a[lo, hi) */
static void wht_levels(double *a, size_t lo, size_t hi, size_t h0, size_t h1)
{
    for (size_t h = h0; h < h1; h <<= 1)
        for (size_t i0 = lo; i0 < hi; i0 += 2 * h)
            for (size_t i = i0; i < i0 + h; i++) {
                double u = a[i], v = a[i + h];
                a[i] = u + v;
                a[i + h] = u - v;
            }
}

/* The Walsh-Hadamard transform in place: the butterflies of level h = 1, 2, 4, ... in order.
 * The first three levels run on 8 entries in registers, the levels below QD_WHT_BLOCK on
 * blocks that stay in L1, the rest over the whole vector: every butterfly has the same
 * inputs as in the plain level-by-level loop, so the result is the same, bit for bit. */
#define QD_WHT_BLOCK ((size_t)2048)   /* doubles: 16 KiB */
static void wht(double *a, size_t D)
{
    if (D < 8) {
        wht_levels(a, 0, D, 1, D);
        return;
    }
    for (size_t i = 0; i < D; i += 8) {
        double *x = a + i;
        double b0 = x[0] + x[1], b1 = x[0] - x[1], b2 = x[2] + x[3], b3 = x[2] - x[3];
        double b4 = x[4] + x[5], b5 = x[4] - x[5], b6 = x[6] + x[7], b7 = x[6] - x[7];
        double c0 = b0 + b2, c2 = b0 - b2, c1 = b1 + b3, c3 = b1 - b3;
        double c4 = b4 + b6, c6 = b4 - b6, c5 = b5 + b7, c7 = b5 - b7;
        x[0] = c0 + c4;
        x[4] = c0 - c4;
        x[1] = c1 + c5;
        x[5] = c1 - c5;
        x[2] = c2 + c6;
        x[6] = c2 - c6;
        x[3] = c3 + c7;
        x[7] = c3 - c7;
    }
    const size_t B = D < QD_WHT_BLOCK ? D : QD_WHT_BLOCK;
    for (size_t b = 0; b < D; b += B)
        wht_levels(a, b, b + B, 8, B);
    wht_levels(a, 0, D, B, D);
}

qd_status qd_loss_mmd_bits_pauli(const double *p, const double *q, int n, const double *sig,
                                 int ns, double *val, double *gp, double *by_order, qd_err *e)
{
    qd_status st = check_sigmas(sig, ns, e);
    if (st)
        return st;
    size_t D = dim_of(n);
    double *z = qd_malloc(sizeof(double) * D), *w = qd_malloc(sizeof(double) * (size_t)(n + 1));
    if (!z || !w) {
        st = nomem(e, "a bitstring MMD");
        goto done;
    }
    /* z_A = <Z_A>_p - <Z_A>_q = sum_x (p - q)_x (-1)^{|x & A|} */
    for (size_t i = 0; i < D; i++)
        z[i] = p[i] - q[i];
    wht(z, D);
    /* weight of a Pauli string of weight k: mean_s (1 - p_s)^(n-k) p_s^k */
    for (int k = 0; k <= n; k++) {
        w[k] = 0;
        for (int s = 0; s < ns; s++) {
            double ps = 0.5 * (1.0 - exp(-1.0 / (2.0 * sig[s])));
            w[k] += pow(1.0 - ps, n - k) * pow(ps, k) / (double)ns;
        }
    }
    if (by_order)
        for (int k = 0; k <= n; k++)
            by_order[k] = 0;
    double v = 0;
    for (size_t A = 0; A < D; A++) {
        int k = __builtin_popcountll((unsigned long long)A);
        double c = w[k] * z[A] * z[A];
        v += c;
        if (by_order)
            by_order[k] += c;
        z[A] *= 2.0 * w[k];
    }
    *val = v;
    if (gp) {   /* dL/dp_x = sum_A 2 w_A z_A (-1)^{|x & A|}: the same transform again */
        wht(z, D);
        memcpy(gp, z, sizeof(double) * D);
    }
done:
    qd_free(z);
    qd_free(w);
    return st;
}

double qd_loss_mmd_bits_samples(const uint64_t *x, const double *cx, size_t nx,
                                const uint64_t *y, const double *cy, size_t ny,
                                const double *sig, int ns)
{
    double kt[65];
    for (int h = 0; h <= 64; h++) {
        kt[h] = 0;
        for (int s = 0; s < ns; s++)
            kt[h] += exp(-(double)h / (2.0 * sig[s])) / (double)ns;
    }
    /* sum over ordered pairs of draws minus the self pairs (K(x, x) = 1) */
    double sxx = 0, syy = 0, sxy = 0, X = 0, Y = 0;
    for (size_t i = 0; i < nx; i++) {
        double wi = cx ? cx[i] : 1.0;
        X += wi;
        for (size_t j = 0; j < nx; j++)
            sxx += wi * (cx ? cx[j] : 1.0) * kt[__builtin_popcountll(x[i] ^ x[j])];
    }
    for (size_t i = 0; i < ny; i++) {
        double wi = cy ? cy[i] : 1.0;
        Y += wi;
        for (size_t j = 0; j < ny; j++)
            syy += wi * (cy ? cy[j] : 1.0) * kt[__builtin_popcountll(y[i] ^ y[j])];
    }
    for (size_t i = 0; i < nx; i++)
        for (size_t j = 0; j < ny; j++)
            sxy += (cx ? cx[i] : 1.0) * (cy ? cy[j] : 1.0) * kt[__builtin_popcountll(x[i] ^ y[j])];
    return (sxx - X) / (X * (X - 1)) + (syy - Y) / (Y * (Y - 1)) - 2.0 * sxy / (X * Y);
}

/* ---------------------------------------------------------------- KL, cross entropy */

double qd_loss_kl(const double *p, const double *q, size_t d, double eps, double *gp)
{
    double v = 0;
    for (size_t i = 0; i < d; i++) {
        double pc = p[i] > eps ? p[i] : eps;
        if (q[i] > 0)
            v += q[i] * (log(q[i]) - log(pc));
        if (gp)
            gp[i] = p[i] > eps ? -q[i] / p[i] : 0.0;
    }
    return v;
}

double qd_loss_xent(const double *p, const double *q, size_t d, double eps, double *gp)
{
    double v = 0;
    for (size_t i = 0; i < d; i++) {
        double pc = p[i] > eps ? p[i] : eps;
        if (q[i] != 0)
            v -= q[i] * log(pc);
        if (gp)
            gp[i] = p[i] > eps ? -q[i] / p[i] : 0.0;
    }
    return v;
}

double qd_loss_local_fid(const qd_c *phi, int n, qd_c *G)
{
    size_t D = dim_of(n);
    double s = 0;
    for (size_t x = 0; x < D; x++) {
        double zeros = (double)(n - __builtin_popcountll((unsigned long long)x)) / (double)n;
        s += zeros * (creal(phi[x]) * creal(phi[x]) + cimag(phi[x]) * cimag(phi[x]));
        if (G)
            G[x] = -zeros * phi[x];
    }
    return 1.0 - s;
}

/* ---------------------------------------------------------------- Born-rule chain rule
 * p_x = |psi_x|^2, so for a loss of the probabilities dL = sum_x g_x dp_x = 2 Re sum_x
 * conj(g_x psi_x) dpsi_x: G = dL/d conj(psi) = g psi (the convention of every state loss),
 * which the circuit adjoint carries back to the parameters. */
void qd_born_vjp(const qd_c *psi, const double *gp, size_t D, qd_c *G)
{
    for (size_t x = 0; x < D; x++)
        G[x] = gp[x] * psi[x];
}

/* A rotation exp(-i t P/2) makes every p_x(t) a + b cos t + c sin t, so the two-term shift
 * rule dp_x/dt = (p_x(t + pi/2) - p_x(t - pi/2)) / 2 is exact, and dL/dt = sum_x g_x dp_x/dt
 * for any differentiable loss of p (nonlinear ones included: the chain rule is applied to
 * the shifted probabilities, not to shifted losses). Fixed reduction order. */
double qd_born_shift(const double *gp, const double *pp, const double *pm, size_t D)
{
    double s = 0;
    for (size_t x = 0; x < D; x++)
        s += gp[x] * (pp[x] - pm[x]);
    return 0.5 * s;
}

/* ---------------------------------------------------------------- state losses */

double qd_loss_infid_pp(const qd_c *a, const qd_c *b, int n, qd_c *Ga, qd_c *Gb)
{
    size_t D = dim_of(n);
    qd_c ov = qd_inner(a, b, D);   /* <a|b> */
    if (Ga)
        for (size_t i = 0; i < D; i++)
            Ga[i] = qd_cmul(-b[i], conj(ov));
    if (Gb)
        for (size_t i = 0; i < D; i++)
            Gb[i] = qd_cmul(-a[i], ov);
    return 1.0 - (creal(ov) * creal(ov) + cimag(ov) * cimag(ov));
}

double qd_loss_infid_pd(const qd_c *psi, const qd_c *rho, int n, qd_c *Gpsi, qd_c *Grho)
{
    size_t D = dim_of(n);
    double f = 0;
    for (size_t i = 0; i < D; i++) {
        qd_c r = 0;   /* (rho psi)_i */
        for (size_t j = 0; j < D; j++)
            r += qd_cmul(rho[i + j * D], psi[j]);
        f += creal(qd_cmul(conj(psi[i]), r));
        if (Gpsi)
            Gpsi[i] = -r;
    }
    if (Grho)
        for (size_t j = 0; j < D; j++)
            for (size_t i = 0; i < D; i++)
                Grho[i + j * D] = qd_cmul(-0.5 * psi[i], conj(psi[j]));
    return 1.0 - f;
}

/* the lower triangle of C (n x n) from its upper one (a zherk's output), real diagonal */
static void herm_mirror(qd_c *C, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        C[j + j * n] = creal(C[j + j * n]);
        for (size_t i = j + 1; i < n; i++)
            C[i + j * n] = conj(C[j + i * n]);
    }
}

/* S = sqrt(sigma) for a PSD sigma, as qd_la_sqrtm_psd (eigenvalues below D eps max|w| are
 * rounding of zero ones: 0) but by divide and conquer, and as (V w^{1/4})(V w^{1/4})^H (one
 * zherk: half a product, and S exactly Hermitian). V, T: D x D scratch; w: D */
static qd_status sqrt_psd(const qd_c *sigma, size_t D, qd_c *S, qd_c *V, qd_c *T, double *w, qd_err *e)
{
    memcpy(V, sigma, sizeof(qd_c) * D * D);
    qd_status st = qd_la_eigh_dc(V, D, w, 1, e);
    if (st)
        return st;
    double wmax = 0;
    for (size_t k = 0; k < D; k++)
        wmax = fabs(w[k]) > wmax ? fabs(w[k]) : wmax;
    double floor_ = (double)D * 2.220446049250313e-16 * wmax;
    for (size_t k = 0; k < D; k++) {
        double r = w[k] > floor_ ? sqrt(sqrt(w[k])) : 0.0;
        for (size_t i = 0; i < D; i++)
            T[i + k * D] = V[i + k * D] * r;
    }
    qd_la_zherk('N', D, D, 1.0, T, D, 0.0, S, D);
    herm_mirror(S, D);
    return QD_OK;
}

/* grad_rho F (Euclidean, Hermitian) = sqrt(F) S X^{-1/2} S, S = sqrt(sigma),
 * X = S rho S; writes it scaled by `scale` into out, and F = (sum of sqrt of X's eigenvalues
 * on its support)^2 into *f: the value that gradient belongs to (exact for a pure sigma,
 * where summing every eigenvalue would add the rounding noise of the zero ones, ~1e-8).
 * With T T^H = X^{-1/2} (T = V w^{-1/4} on the support), S X^{-1/2} S = (S T)(S T)^H: one
 * product and a zherk, and the gradient comes out exactly Hermitian (which the QGDM
 * channels' vjp uses: qd_isometry_channel_vjp_h). Eigen-decompositions by zheevd. */
static qd_status uhlmann_grad(const qd_c *rho, const qd_c *sigma, size_t D, double scale,
                              qd_c *out, double *f, qd_err *e)
{
    qd_c *S = qd_malloc(sizeof(qd_c) * D * D), *T = qd_malloc(sizeof(qd_c) * D * D);
    qd_c *X = qd_malloc(sizeof(qd_c) * D * D);
    double *w = qd_malloc(sizeof(double) * D);
    qd_status st = QD_OK;
    if (!S || !T || !X || !w) {
        st = nomem(e, "a fidelity gradient");
        goto done;
    }
    st = sqrt_psd(sigma, D, S, X, T, w, e);
    if (st)
        goto done;
    qd_la_zgemm('N', 'N', D, D, D, 1.0, rho, D, S, D, 0.0, T, D);   /* T = rho S */
    qd_la_zgemm('N', 'N', D, D, D, 1.0, S, D, T, D, 0.0, X, D);     /* X = S rho S */
    st = qd_la_eigh_dc(X, D, w, 1, e);                               /* X -> V */
    if (st)
        goto done;
    double wmax = 0, sf = 0;
    for (size_t k = 0; k < D; k++)
        wmax = w[k] > wmax ? w[k] : wmax;
    /* sqrt F = sum sqrt(w) over the support only: the "zero" eigenvalues of a rank-deficient
     * X come out ~1e-17 and would add ~3e-9 each */
    for (size_t k = 0; k < D; k++)
        sf += w[k] > 1e-12 * wmax && w[k] > 0 ? sqrt(w[k]) : 0.0;
    *f = sf * sf;
    /* T = V diag(w^{-1/4}) on the support, so T T^H = X^{-1/2} */
    for (size_t k = 0; k < D; k++) {
        double r = w[k] > 1e-12 * wmax && w[k] > 0 ? pow(w[k], -0.25) : 0.0;
        for (size_t i = 0; i < D; i++)
            T[i + k * D] = X[i + k * D] * r;
    }
    qd_la_zgemm('N', 'N', D, D, D, 1.0, S, D, T, D, 0.0, X, D);     /* X = S T */
    qd_la_zherk('N', D, D, scale * sf, X, D, 0.0, out, D);           /* out = scale sf X X^H */
    herm_mirror(out, D);
done:
    qd_free(S);
    qd_free(T);
    qd_free(X);
    qd_free(w);
    return st;
}

qd_status qd_loss_infid_dd(const qd_c *rho, const qd_c *sigma, int n, double *val,
                           qd_c *Grho, qd_c *Gsigma, qd_err *e)
{
    size_t D = dim_of(n);
    double f;
    qd_status st = QD_OK;
    /* loss = 1 - F: G = -(1/2) grad F; a gradient's decomposition gives F too */
    if (Grho)
        st = uhlmann_grad(rho, sigma, D, -0.5, Grho, &f, e);
    if (!st && Gsigma)
        st = uhlmann_grad(sigma, rho, D, -0.5, Gsigma, &f, e);
    if (!st && !Grho && !Gsigma)
        st = qd_fid_dm_dm(rho, sigma, n, &f, e);
    if (st)
        return st;
    *val = 1.0 - f;
    return QD_OK;
}

qd_status qd_loss_trace_dist(const qd_c *rho, const qd_c *sigma, int n, double *val,
                             qd_c *Grho, qd_c *Gsigma, qd_err *e)
{
    size_t D = dim_of(n);
    qd_c *V = qd_malloc(sizeof(qd_c) * D * D), *T = qd_malloc(sizeof(qd_c) * D * D);
    double *w = qd_malloc(sizeof(double) * D);
    qd_status st = QD_OK;
    if (!V || !T || !w) {
        st = nomem(e, "a trace distance");
        goto done;
    }
    for (size_t i = 0; i < D * D; i++)
        V[i] = rho[i] - sigma[i];
    st = qd_la_eigh(V, D, w, Grho || Gsigma, e);
    if (st)
        goto done;
    double s = 0;
    for (size_t k = 0; k < D; k++)
        s += fabs(w[k]);
    *val = 0.5 * s;
    if (Grho || Gsigma) {
        /* (1/4) V sign(w) V^H */
        for (size_t k = 0; k < D; k++) {
            double sg = w[k] > 0 ? 0.25 : w[k] < 0 ? -0.25 : 0.0;
            for (size_t i = 0; i < D; i++)
                T[i + k * D] = V[i + k * D] * sg;
        }
        qd_c *out = Grho ? Grho : Gsigma;
        qd_la_zgemm('N', 'C', D, D, D, 1.0, T, D, V, D, 0.0, out, D);
        if (Gsigma && Grho)
            for (size_t i = 0; i < D * D; i++)
                Gsigma[i] = -Grho[i];
        else if (Gsigma)
            for (size_t i = 0; i < D * D; i++)
                Gsigma[i] = -Gsigma[i];
    }
done:
    qd_free(V);
    qd_free(T);
    qd_free(w);
    return st;
}

double qd_loss_hs(const qd_c *rho, const qd_c *sigma, int n, qd_c *Grho, qd_c *Gsigma)
{
    size_t D = dim_of(n);
    double s = 0;
    for (size_t i = 0; i < D * D; i++) {
        qd_c z = rho[i] - sigma[i];
        s += creal(z) * creal(z) + cimag(z) * cimag(z);
        if (Grho)
            Grho[i] = z;
        if (Gsigma)
            Gsigma[i] = -z;
    }
    return s;
}

/* Re Tr(rho sigma) = sum_ij rho_ij sigma_ji = sum conj(sigma_ij) rho_ij for Hermitian sigma */
static double tr_prod(const qd_c *rho, const qd_c *sigma, size_t D)
{
    double s = 0;
    for (size_t i = 0; i < D * D; i++)
        s += creal(conj(sigma[i]) * rho[i]);
    return s;
}

double qd_superfidelity(const qd_c *rho, const qd_c *sigma, int n)
{
    size_t D = dim_of(n);
    double a = 1.0 - sumsq(rho, D * D), b = 1.0 - sumsq(sigma, D * D);
    return tr_prod(rho, sigma, D) + sqrt((a > 0 ? a : 0) * (b > 0 ? b : 0));
}

double qd_loss_superfid(const qd_c *rho, const qd_c *sigma, int n, qd_c *Grho, qd_c *Gsigma)
{
    size_t D = dim_of(n);
    double a = 1.0 - sumsq(rho, D * D), b = 1.0 - sumsq(sigma, D * D);
    a = a > 0 ? a : 0;
    b = b > 0 ? b : 0;
    double ab = a * b;
    double ra = ab > 0 ? sqrt(b / a) : 0.0, rb = ab > 0 ? sqrt(a / b) : 0.0;
    /* G_rho = -(1/2)(sigma - sqrt(b/a) rho), G_sigma = -(1/2)(rho - sqrt(a/b) sigma) */
    if (Grho)
        for (size_t i = 0; i < D * D; i++)
            Grho[i] = -0.5 * (sigma[i] - ra * rho[i]);
    if (Gsigma)
        for (size_t i = 0; i < D * D; i++)
            Gsigma[i] = -0.5 * (rho[i] - rb * sigma[i]);
    return 1.0 - (tr_prod(rho, sigma, D) + sqrt(ab));
}
