/* quantities.c — norms, inner products, Pauli expectations, fidelities, distances,
 * entropies, Schmidt ranks and ensemble overlaps.
 *
 * Reductions over amplitudes are summed in fixed blocks of QD_BLOCK elements; threads
 * compute block sums into an array and the block sums are added in order, so the result
 * is the same bits whatever the thread count (and the serial path, taken for small inputs
 * or when the partial-sum array cannot be allocated, uses the same association).
 * Inside a block four interleaved accumulators keep the adds pipelined; that split is
 * fixed too. Dense-matrix quantities (Uhlmann fidelity, trace distance, entropy, Schmidt
 * rank, overlaps) go through linalg.c. */
#include "qd.h"
#include "qd_simd.h"
#include "qd_isa.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <string.h>

#define PAR_MIN_BLOCKS 8    /* fewer blocks than this: not worth starting threads */

/* ---------------------------------------------------------------- blocked reductions */

typedef double (*block_re_fn)(const void *ctx, size_t lo, size_t hi);
typedef qd_c (*block_c_fn)(const void *ctx, size_t lo, size_t hi);

/* sum over blocks [b*bs, min((b+1)*bs, n)) of fn, block sums added in order */
static double reduce_re(size_t n, size_t bs, block_re_fn fn, const void *ctx)
{
    size_t nb = (n + bs - 1) / bs;
    double *part = nb >= PAR_MIN_BLOCKS ? qd_malloc(sizeof(double) * nb) : NULL;
    double s = 0;
    if (part) {
        #pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++)
            part[b] = fn(ctx, b * bs, (b + 1) * bs < n ? (b + 1) * bs : n);
        for (size_t b = 0; b < nb; b++)
            s += part[b];
        qd_free(part);
    } else {
        for (size_t b = 0; b < nb; b++)
            s += fn(ctx, b * bs, (b + 1) * bs < n ? (b + 1) * bs : n);
    }
    return s;
}

static qd_c reduce_c(size_t n, size_t bs, block_c_fn fn, const void *ctx)
{
    size_t nb = (n + bs - 1) / bs;
    qd_c *part = nb >= PAR_MIN_BLOCKS ? qd_malloc(sizeof(qd_c) * nb) : NULL;
    double sr = 0, si = 0;
    if (part) {
        #pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++)
            part[b] = fn(ctx, b * bs, (b + 1) * bs < n ? (b + 1) * bs : n);
        for (size_t b = 0; b < nb; b++) {
            sr += creal(part[b]);
            si += cimag(part[b]);
        }
        qd_free(part);
    } else {
        for (size_t b = 0; b < nb; b++) {
            qd_c t = fn(ctx, b * bs, (b + 1) * bs < n ? (b + 1) * bs : n);
            sr += creal(t);
            si += cimag(t);
        }
    }
    return CMPLX(sr, si);
}

/* ---------------------------------------------------------------- norms, inner products */

static double norm2_block(const void *ctx, size_t lo, size_t hi)
{
    const double *x = (const double *)ctx;   /* interleaved re, im */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 2 * lo, end = 2 * hi;
    for (; i + 4 <= end; i += 4) {
        s0 += x[i] * x[i];
        s1 += x[i + 1] * x[i + 1];
        s2 += x[i + 2] * x[i + 2];
        s3 += x[i + 3] * x[i + 3];
    }
    for (; i < end; i++)
        s0 += x[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}

double qd_norm2(const qd_c *a, size_t d)
{
    return reduce_re(d, QD_BLOCK, norm2_block, a);
}

typedef struct {
    const qd_c *a, *b;
} pair_ctx;

static qd_c inner_block(const void *ctx, size_t lo, size_t hi)
{
    const pair_ctx *p = ctx;
    const double *x = (const double *)p->a, *y = (const double *)p->b;
    /* conj(x) y = (xr yr + xi yi) + i (xr yi - xi yr); two interleaved chains each */
    double r0 = 0, r1 = 0, i0 = 0, i1 = 0;
    size_t i = lo;
    for (; i + 2 <= hi; i += 2) {
        double xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
        double xr1 = x[2 * i + 2], xi1 = x[2 * i + 3], yr1 = y[2 * i + 2], yi1 = y[2 * i + 3];
        r0 += xr * yr + xi * yi;
        i0 += xr * yi - xi * yr;
        r1 += xr1 * yr1 + xi1 * yi1;
        i1 += xr1 * yi1 - xi1 * yr1;
    }
    if (i < hi) {
        double xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
        r0 += xr * yr + xi * yi;
        i0 += xr * yi - xi * yr;
    }
    return CMPLX(r0 + r1, i0 + i1);
}

qd_c qd_inner(const qd_c *a, const qd_c *b, size_t d)
{
    pair_ctx p = {a, b};
    return reduce_c(d, QD_BLOCK, inner_block, &p);
}

/* ---------------------------------------------------------------- Pauli expectations */

/* A Pauli string as masks over index bits: P|i> = i^ny (-1)^popcount(i & z) |i ^ x>,
 * since X|b> = |1-b>, Z|b> = (-1)^b |b>, Y|b> = i (-1)^b |1-b>. */
typedef struct {
    size_t x, z;
    int ny;
} pauli_masks;

static pauli_masks pauli_of(int nq, const char *ops, const int *qs, int k)
{
    pauli_masks p = {0, 0, 0};
    for (int j = 0; j < k; j++) {
        size_t bit = (size_t)1 << (nq - 1 - qs[j]);
        switch (ops[j]) {
        case 'X': case 'x': p.x |= bit; break;
        case 'Y': case 'y': p.x |= bit; p.z |= bit; p.ny++; break;
        case 'Z': case 'z': p.z |= bit; break;
        default: break;   /* 'I' */
        }
    }
    return p;
}

/* Re(i^ny * s) for s = sr + i si */
static double rotate_re(int ny, double sr, double si)
{
    switch (ny & 3) {
    case 0: return sr;
    case 1: return -si;
    case 2: return -sr;
    default: return si;
    }
}

typedef struct {
    const qd_c *a;
    pauli_masks p;
} pauli_ctx;

/* sum over the block of (-1)^popcount(i & z) conj(a_{i^x}) a_i, only the component that
 * survives Re(i^ny * .) */
static inline __attribute__((always_inline)) double pauli_block(const void *ctx, size_t lo, size_t hi)
{
    const pauli_ctx *c = ctx;
    const double *v = (const double *)c->a;
    size_t x = c->p.x, z = c->p.z;
    int want_im = c->p.ny & 1;
    double s = 0;
    for (size_t i = lo; i < hi; i++) {
        size_t j = i ^ x;
        double ar = v[2 * i], ai = v[2 * i + 1], br = v[2 * j], bi = v[2 * j + 1];
        double t = want_im ? br * ai - bi * ar : br * ar + bi * ai;
        s += (__builtin_popcountll(i & z) & 1) ? -t : t;
    }
    return s;
}

double qd_expect_pauli(const qd_c *a, int nq, const char *ops, const int *qs, int k)
{
    pauli_ctx c = {a, pauli_of(nq, ops, qs, k)};
    double s = reduce_re((size_t)1 << nq, QD_BLOCK, pauli_block, &c);
    /* s is the real or imaginary part of the sum, as rotate_re needs */
    return c.p.ny & 1 ? rotate_re(c.p.ny, 0, s) : rotate_re(c.p.ny, s, 0);
}

void qd_expect_pauli_batch(const qd_c *a, int nq, size_t count, const char *ops, const int *qs,
                           int k, double *out)
{
    size_t d = (size_t)1 << nq;
    if (d > QD_BLOCK) {
        for (size_t j = 0; j < count; j++)
            out[j] = qd_expect_pauli(a + j * d, nq, ops, qs, k);
        return;
    }
    /* one block per member: reduce_re's sum is 0 + the block's, so the same bits */
    pauli_ctx c = {a, pauli_of(nq, ops, qs, k)};
    for (size_t j = 0; j < count; j++) {
        c.a = a + j * d;
        double s = 0;
        s += pauli_block(&c, 0, d);
        out[j] = c.p.ny & 1 ? rotate_re(c.p.ny, 0, s) : rotate_re(c.p.ny, s, 0);
    }
}

/* Tr(P rho) = sum_j <j|P rho|j> = sum_j phase(j) rho[j, j^x] (P[j^x, j] = phase(j)). */
double qd_dm_expect_pauli(const qd_c *rho, int n, const char *ops, const int *qs, int k)
{
    pauli_masks p = pauli_of(n, ops, qs, k);
    size_t d = (size_t)1 << n;
    double sr = 0, si = 0;
    for (size_t j = 0; j < d; j++) {
        qd_c v = rho[j + (j ^ p.x) * d];
        if (__builtin_popcountll(j & p.z) & 1) {
            sr -= creal(v);
            si -= cimag(v);
        } else {
            sr += creal(v);
            si += cimag(v);
        }
    }
    return rotate_re(p.ny, sr, si);
}

/* ---------------------------------------------------------------- density matrices */

double qd_dm_trace_re(const qd_c *rho, int n)
{
    size_t d = (size_t)1 << n;
    double t = 0;
    for (size_t i = 0; i < d; i++)
        t += creal(rho[i + i * d]);
    return t;
}

/* Tr rho^2 = sum_ij rho_ij rho_ji = sum_ij |rho_ij|^2 for Hermitian rho */
double qd_dm_purity(const qd_c *rho, int n)
{
    size_t d = (size_t)1 << n;
    return qd_norm2(rho, d * d);
}

double qd_fid_pure_pure(const qd_c *a, const qd_c *b, int n)
{
    qd_c g = qd_inner(a, b, (size_t)1 << n);
    return creal(g) * creal(g) + cimag(g) * cimag(g);
}

typedef struct {
    const qd_c *psi, *rho;
    size_t d;
} psi_rho_ctx;

/* columns [lo, hi): sum_c psi_c * (sum_r conj(psi_r) rho[r, c]) */
static qd_c psi_rho_block(const void *ctx, size_t lo, size_t hi)
{
    const psi_rho_ctx *p = ctx;
    size_t d = p->d;
    double tr = 0, ti = 0;
    for (size_t c = lo; c < hi; c++) {
        const qd_c *col = p->rho + c * d;
        double cr = 0, ci = 0;
        /* a difference of products written p + (-q) (the same value): GCC would fuse the
         * -/+ pairs into vfmaddsub (scripts/check_contraction.sh) */
        for (size_t r = 0; r < d; r++) {
            double xr = creal(p->psi[r]), xi = cimag(p->psi[r]), nxi = -xi;
            double yr = creal(col[r]), yi = cimag(col[r]);
            cr += xr * yr + xi * yi;
            ci += xr * yi + nxi * yr;
        }
        double pr = creal(p->psi[c]), pi = cimag(p->psi[c]), npi = -pi;
        tr += cr * pr + ci * npi;
        ti += cr * pi + ci * pr;
    }
    return CMPLX(tr, ti);
}

double qd_fid_pure_dm(const qd_c *psi, const qd_c *rho, int n)
{
    size_t d = (size_t)1 << n;
    psi_rho_ctx p = {psi, rho, d};
    /* blocks of columns holding about QD_BLOCK entries each */
    size_t bs = QD_BLOCK / d ? QD_BLOCK / d : 1;
    return creal(reduce_c(d, bs, psi_rho_block, &p));
}

/* d x d complex buffer, checked for overflow */
static qd_c *alloc_square(size_t d)
{
    size_t n, bytes;
    if (qd_mul_overflow(d, d, &n) || qd_mul_overflow(n, sizeof(qd_c), &bytes))
        return NULL;
    return qd_malloc(bytes);
}

/* Uhlmann fidelity F = (Tr sqrt(sqrt(rho) sigma sqrt(rho)))^2 = ||sqrt(rho) sqrt(sigma)||_1^2,
 * the squared sum of the singular values of sqrt(rho) sqrt(sigma). Taken from the singular
 * values rather than from the eigenvalues l_i of sqrt(rho) sigma sqrt(rho): for
 * rank-deficient inputs those l_i are zeros computed as ~1e-17, whose square roots put
 * ~1e-8 errors into F (F(rho, rho) came out 1 + 1.5e-8); singular values are accurate to
 * rounding. qd_la_sqrtm_psd zeroes eigenvalues at rounding level for the same reason. */
qd_status qd_fid_dm_dm(const qd_c *rho, const qd_c *sigma, int n, double *f, qd_err *e)
{
    size_t d = (size_t)1 << n;
    qd_c *S = alloc_square(d), *T = alloc_square(d), *M = alloc_square(d);
    double *w = qd_malloc(sizeof(double) * d);
    qd_status st = QD_OK;
    if (!S || !T || !M || !w) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for a fidelity of %d-qubit density "
                     "matrices", n);
        goto done;
    }
    st = qd_la_sqrtm_psd(rho, d, S, e);
    if (st == QD_OK)
        st = qd_la_sqrtm_psd(sigma, d, T, e);
    if (st != QD_OK)
        goto done;
    qd_la_zgemm('N', 'N', d, d, d, 1.0, S, d, T, d, 0.0, M, d);   /* M = sqrt(rho) sqrt(sigma) */
    st = qd_la_svdvals(M, d, d, w, e);
    if (st != QD_OK)
        goto done;
    double t = 0;
    for (size_t i = 0; i < d; i++)
        t += w[i];
    *f = t * t;
done:
    qd_free(S);
    qd_free(T);
    qd_free(M);
    qd_free(w);
    return st;
}

/* 1/2 sum |eig(rho - sigma)| (rho - sigma is Hermitian) */
qd_status qd_trace_distance(const qd_c *rho, const qd_c *sigma, int n, double *t, qd_err *e)
{
    size_t d = (size_t)1 << n;
    qd_c *D = alloc_square(d);
    double *w = qd_malloc(sizeof(double) * d);
    qd_status st = QD_OK;
    if (!D || !w) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for a trace distance of %d-qubit "
                     "density matrices", n);
        goto done;
    }
    for (size_t i = 0; i < d * d; i++)
        D[i] = rho[i] - sigma[i];
    st = qd_la_eigh(D, d, w, 0, e);
    if (st != QD_OK)
        goto done;
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += fabs(w[i]);
    *t = 0.5 * s;
done:
    qd_free(D);
    qd_free(w);
    return st;
}

qd_status qd_entropy_vn(const qd_c *rho, int n, double *s, qd_err *e)
{
    size_t d = (size_t)1 << n;
    qd_c *A = alloc_square(d);
    double *w = qd_malloc(sizeof(double) * d);
    qd_status st = QD_OK;
    if (!A || !w) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the entropy of a %d-qubit density "
                     "matrix", n);
        goto done;
    }
    memcpy(A, rho, sizeof(qd_c) * d * d);
    st = qd_la_eigh(A, d, w, 0, e);
    if (st != QD_OK)
        goto done;
    /* eigenvalues below 1e-15 are rounding noise of zero eigenvalues (0 log 0 = 0) */
    double h = 0;
    for (size_t i = 0; i < d; i++)
        if (w[i] >= 1e-15)
            h -= w[i] * log(w[i]);
    *s = h;
done:
    qd_free(A);
    qd_free(w);
    return st;
}

/* ---------------------------------------------------------------- entanglement */

/* Schmidt rank = rank of the reshaped state M[a, b] = psi[i(a, b)], a the index of the
 * qubits A[0..k) (A[0] most significant), b the index of the other qubits in their
 * original order. Singular values above tol are counted. */
qd_status qd_schmidt_rank(const qd_c *psi, int n, const int *A, int k, double tol,
                          size_t *rank, qd_err *e)
{
    if (n < 0 || n > QD_MAX_QUBITS || k < 0 || k > n)
        return qd_fail(e, QD_EARG, "%d subsystem qubits given for a %d-qubit state", k, n);
    size_t amask = 0;
    for (int j = 0; j < k; j++) {
        if (A[j] < 0 || A[j] >= n)
            return qd_fail(e, QD_EARG, "subsystem qubit %d out of range 0..%d", A[j], n - 1);
        size_t bit = (size_t)1 << (n - 1 - A[j]);
        if (amask & bit)
            return qd_fail(e, QD_EARG, "subsystem qubit %d given twice", A[j]);
        amask |= bit;
    }
    size_t d = (size_t)1 << n, KA = (size_t)1 << k, KB = d / KA;
    size_t mn = KA < KB ? KA : KB;
    qd_c *M = qd_malloc(sizeof(qd_c) * d);
    double *s = qd_malloc(sizeof(double) * mn);
    qd_status st = QD_OK;
    if (!M || !s) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for a Schmidt decomposition");
        goto done;
    }
    /* walk the basis once: a and b are the index bits inside / outside A, in order */
    for (size_t i = 0; i < d; i++) {
        size_t a = 0, b = 0;
        for (int j = 0; j < k; j++)
            a = (a << 1) | (i >> (n - 1 - A[j]) & 1);
        for (int q = 0; q < n; q++) {
            size_t bit = (size_t)1 << (n - 1 - q);
            if (!(amask & bit))
                b = (b << 1) | ((i & bit) != 0);
        }
        M[a + b * KA] = psi[i];
    }
    st = qd_la_svdvals(M, KA, KB, s, e);
    if (st != QD_OK)
        goto done;
    size_t r = 0;
    for (size_t i = 0; i < mn; i++)
        r += s[i] > tol;
    *rank = r;
done:
    qd_free(M);
    qd_free(s);
    return st;
}

/* ---------------------------------------------------------------- ensembles */

/* ---- the direct overlap kernel (small states: the diffusion-training shape)
 * QD_VL members a_i side by side in SIMD lanes (qd_soa_in), against JB members b_j at a
 * time (their amplitudes broadcast): four accumulators per pair, each a plain sequence of
 * FMAs over the amplitudes in order,
 *     rr = sum Re a Re b,  ii = sum Im a Im b,  ri = sum Re a Im b,  ir = sum Im a Re b,
 * <a|b> = (rr + ii) + i (ri - ir). Every pair goes through the same operations in whatever
 * lane, block or thread it falls: results do not depend on N, M or the thread count. For
 * the self-overlap only pairs j >= i are computed and written to both triangles. */
/* columns of B per tile: 4 accumulators each, plus A's two rows and B's two broadcasts,
 * must stay in registers: 4 x 4 + 4 = 20 of AVX-512's 32; with AVX2's 16 registers a tile
 * of 4 spilled (0.6 of zgemm's rate), 2 leaves 8 independent FMA chains, enough to hide
 * the FMA latency. A pair's sums run over k in the same order whatever the tile. */
#if QD_VREGS32
#define OVL_JB 4
#else
#define OVL_JB 2
#endif

static inline __attribute__((always_inline)) void ovl_tile(const double *S, size_t d,
                                                          const qd_c *B, size_t j, int JB,
                                                          double *res)
{
    qd_vd rr[OVL_JB], ii[OVL_JB], ri[OVL_JB], ir[OVL_JB];
    const double *b[OVL_JB];
    for (int t = 0; t < JB; t++) {
        rr[t] = ii[t] = ri[t] = ir[t] = qd_vzero();
        b[t] = (const double *)(B + (j + (size_t)t) * d);
    }
    for (size_t k = 0; k < d; k++) {
        qd_vd ar = qd_vload(S + k * QD_VL), ai = qd_vload(S + (d + k) * QD_VL);
        for (int t = 0; t < JB; t++) {
            qd_vd br = qd_vset1(b[t][2 * k]), bi = qd_vset1(b[t][2 * k + 1]);
            rr[t] = qd_vfma(ar, br, rr[t]);
            ii[t] = qd_vfma(ai, bi, ii[t]);
            ri[t] = qd_vfma(ar, bi, ri[t]);
            ir[t] = qd_vfma(ai, br, ir[t]);
        }
    }
    for (int t = 0; t < JB; t++) {
        double x[4][QD_VL];
        qd_vstore(x[0], rr[t]);
        qd_vstore(x[1], ii[t]);
        qd_vstore(x[2], ri[t]);
        qd_vstore(x[3], ir[t]);
        for (int l = 0; l < QD_VL; l++) {
            double re = x[0][l] + x[1][l], im = x[2][l] - x[3][l];
            res[t * QD_VL + l] = re * re + im * im;
        }
    }
}

/* the direct kernel pays for states of up to this dimension (beyond it zgemm/zherk, which
 * block for the caches) */
#define OVL_DIRECT_MAXD 1024
#define OVL_DIRECT_MAXNM ((size_t)1 << 22)

/* The same overlaps for CPUs without FMA instructions (qd_isa_fma_hw() == 0: libm's fma()
 * is a software routine there; even with the FMA instruction behind the call the lane
 * kernel ran ~50x slower than the avx2 set on a Zen 3): pairs in 2 x 2 tiles, each inner
 * product in 2-wide vectors of (Re, Im) with separate multiplies and adds (SSE2),
 * p = sum_k a_k b_k lane-wise and q = sum_k a_k swap(b_k), <a|b> = (p0 + p1, q0 - q1).
 * Each pair's sums run over k in order: no dependence on threads or tiling. */
typedef double ovl_v2 __attribute__((vector_size(16)));

static inline ovl_v2 ovl_ld2(const qd_c *p)
{
    ovl_v2 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline double ovl_abs2(ovl_v2 p, ovl_v2 q)
{
    double re = p[0] + p[1], im = q[0] - q[1];
    return re * re + im * im;
}

static void overlaps_nofma(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d,
                           double *out)
{
    const int self = A == B && N == M;
    const size_t ni = (N + 1) / 2;
    int nt = 1;
#ifdef _OPENMP
    if (ni > 1 && (double)N * (double)M * (double)d >= 65536.0)
        nt = qd_get_threads();
#endif
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (size_t ib = 0; ib < ni; ib++) {
        const size_t i0 = 2 * ib, i1 = i0 + 1 < N ? i0 + 1 : i0;   /* i1 == i0: a dummy */
        const qd_c *a0 = A + i0 * d, *a1 = A + i1 * d;
        for (size_t j0 = self ? i0 : 0; j0 < M; j0 += 2) {
            const size_t j1 = j0 + 1 < M ? j0 + 1 : j0;
            const qd_c *b0 = B + j0 * d, *b1 = B + j1 * d;
            ovl_v2 p00 = {0, 0}, q00 = p00, p01 = p00, q01 = p00, p10 = p00, q10 = p00,
                   p11 = p00, q11 = p00;
            for (size_t k = 0; k < d; k++) {
                ovl_v2 x0 = ovl_ld2(a0 + k), x1 = ovl_ld2(a1 + k);
                ovl_v2 y0 = ovl_ld2(b0 + k), y1 = ovl_ld2(b1 + k);
                ovl_v2 s0 = __builtin_shuffle(y0, (long long __attribute__((vector_size(16)))){1, 0});
                ovl_v2 s1 = __builtin_shuffle(y1, (long long __attribute__((vector_size(16)))){1, 0});
                p00 = p00 + x0 * y0;
                q00 = q00 + x0 * s0;
                p01 = p01 + x0 * y1;
                q01 = q01 + x0 * s1;
                p10 = p10 + x1 * y0;
                q10 = q10 + x1 * s0;
                p11 = p11 + x1 * y1;
                q11 = q11 + x1 * s1;
            }
            const double v[2][2] = {{ovl_abs2(p00, q00), ovl_abs2(p01, q01)},
                                    {ovl_abs2(p10, q10), ovl_abs2(p11, q11)}};
            for (int s = 0; s < 2; s++)
                for (int t = 0; t < 2; t++) {
                    size_t i = s ? i1 : i0, j = t ? j1 : j0;
                    if ((s && i1 == i0) || (t && j1 == j0) || (self && j < i))
                        continue;
                    out[i + j * N] = v[s][t];
                    if (self)
                        out[j + i * N] = v[s][t];
                }
        }
    }
}

static qd_status overlaps_direct(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d,
                                 double *out, qd_err *e)
{
    if (!qd_isa_fma_hw()) {
        overlaps_nofma(A, N, B, M, d, out);
        return QD_OK;
    }
    const int self = A == B && N == M;
    const size_t nblk = (N + QD_VL - 1) / QD_VL;
    int nt = 1;
#ifdef _OPENMP
    if (nblk > 1 && (double)N * (double)M * (double)d >= 65536.0)
        nt = qd_get_threads();
#endif
    double *buf = qd_malloc(sizeof(double) * 2 * d * QD_VL * (size_t)nt);
    if (!buf)
        return qd_fail(e, QD_ENOMEM, "not enough memory for the overlap kernel's buffers");
    /* blocks widest first (self: block b has M - b*QD_VL columns); dynamic: any thread may
     * take any block, and a block's results do not depend on which */
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (size_t blk = 0; blk < nblk; blk++) {
#ifdef _OPENMP
        double *S = buf + 2 * d * QD_VL * (size_t)(nt > 1 ? omp_get_thread_num() : 0);
#else
        double *S = buf;
#endif
        const size_t i0 = blk * QD_VL, nl = N - i0 < QD_VL ? N - i0 : QD_VL;
        qd_soa_in(S, A + i0 * d, d, nl);
        double res[OVL_JB * QD_VL];
        for (size_t j = self ? i0 : 0; j < M; j += OVL_JB) {
            int JB = M - j < OVL_JB ? (int)(M - j) : OVL_JB;
            switch (JB) {   /* constant JB: the tile's loops unroll */
            case 1: ovl_tile(S, d, B, j, 1, res); break;
#if OVL_JB > 2
            case 2: ovl_tile(S, d, B, j, 2, res); break;
            case 3: ovl_tile(S, d, B, j, 3, res); break;
#endif
            default: ovl_tile(S, d, B, j, OVL_JB, res); break;
            }
            for (int t = 0; t < JB; t++)
                for (size_t l = 0; l < nl; l++) {
                    size_t i = i0 + l, jj = j + (size_t)t;
                    if (self && jj < i)
                        continue;
                    out[i + jj * N] = res[(size_t)t * QD_VL + l];
                    if (self)
                        out[jj + i * N] = res[(size_t)t * QD_VL + l];
                }
        }
    }
    qd_free(buf);
    return QD_OK;
}

/* out[i + j*N] = |<a_i|b_j>|^2: G = A^H B (N x M) by one zgemm, then |.|^2. The
 * self-overlap (B == A, M == N) is Hermitian: its upper triangle by one zherk (half the
 * work), then |.|^2 written to both triangles, so out is exactly symmetric. */
qd_status qd_overlaps(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq, double *out,
                      qd_err *e)
{
    if (nq < 0 || nq > QD_MAX_QUBITS)
        return qd_fail(e, QD_EARG, "bad number of qubits %d", nq);
    if (N == 0 || M == 0)
        return QD_OK;
    size_t dim = (size_t)1 << nq;
    /* BLAS takes int dimensions */
    if (dim > 2147483647 || N > 2147483647 || M > 2147483647)
        return qd_fail(e, QD_EARG, "ensembles too large for BLAS (%zu x %zu of dimension %zu)",
                       N, M, dim);
    size_t nm, bytes;
    if (qd_mul_overflow(N, M, &nm) || qd_mul_overflow(nm, sizeof(qd_c), &bytes))
        return qd_fail(e, QD_ENOMEM, "overlap matrix %zu x %zu too large", N, M);
    if (dim <= OVL_DIRECT_MAXD && nm <= OVL_DIRECT_MAXNM)
        return overlaps_direct(A, N, B, M, dim, out, e);
    qd_c *G = qd_malloc(bytes);
    if (!G) {
        char buf[32];
        qd_format_bytes((double)bytes, buf, sizeof buf);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu overlap matrix (%s)",
                       N, M, buf);
    }
    if (A == B && N == M) {
        qd_la_zherk('C', N, dim, 1.0, A, dim, 0.0, G, N);
        for (size_t j = 0; j < N; j++)
            for (size_t i = 0; i <= j; i++) {
                qd_c g = G[i + j * N];
                out[i + j * N] = out[j + i * N] = creal(g) * creal(g) + cimag(g) * cimag(g);
            }
    } else {
        qd_la_zgemm('C', 'N', N, M, dim, 1.0, A, dim, B, dim, 0.0, G, N);
        for (size_t i = 0; i < nm; i++)
            out[i] = creal(G[i]) * creal(G[i]) + cimag(G[i]) * cimag(G[i]);
    }
    qd_free(G);
    return QD_OK;
}
