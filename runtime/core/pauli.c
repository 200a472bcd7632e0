/* pauli.c — Pauli-sum operators (qd_dynamics.h): building and algebra (products with
 * phases, sums, adjoints), matrix-free application to batches of vectors, expectation
 * values on states and density matrices, dense matrices, spectra, exp(-iHt) (dense
 * eigen-decomposition or adaptive Lanczos-Krylov) and Gibbs states.
 * Complex products in loops go through qd_cmul (qd.h): the same values as `*`, but GCC
 * cannot fuse them into vfmaddsub (scripts/check_contraction.sh). */
#include "qd_dynamics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif


static int nthreads_max(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* i^k */
static qd_c ipow(int k)
{
    switch (k & 3) {
    case 0: return 1;
    case 1: return I;
    case 2: return -1;
    default: return -I;
    }
}

static int ny_of(uint64_t x, uint64_t z)
{
    return __builtin_popcountll(x & z) & 3;
}

/* ---------------------------------------------------------------- building */

void qd_ps_init(qd_pauli_sum *H, int n)
{
    memset(H, 0, sizeof *H);
    H->n = n;
}

static void drop_cache(qd_pauli_sum *H)
{
    qd_free(H->gx);
    qd_free(H->D);
    H->gx = NULL;
    H->D = NULL;
    H->ng = 0;
}

void qd_ps_free(qd_pauli_sum *H)
{
    drop_cache(H);
    qd_free(H->x);
    qd_free(H->z);
    qd_free(H->c);
    H->x = H->z = NULL;
    H->c = NULL;
    H->nterms = H->cap = 0;
}

void qd_ps_prepare(qd_pauli_sum *H)
{
    drop_cache(H);
    size_t nt = H->nterms;
    if (nt == 0 || H->n > 22)
        return;
    size_t d = (size_t)1 << H->n;
    uint64_t *gx = qd_malloc(sizeof(uint64_t) * nt);
    size_t *gof = qd_malloc(sizeof(size_t) * nt);
    if (!gx || !gof) {
        qd_free(gx);
        qd_free(gof);
        return;
    }
    /* distinct flip masks in order of first occurrence (quadratic: term lists are short) */
    size_t ng = 0;
    for (size_t t = 0; t < nt; t++) {
        size_t g = 0;
        while (g < ng && gx[g] != H->x[t])
            g++;
        if (g == ng)
            gx[ng++] = H->x[t];
        gof[t] = g;
    }
    /* only while the diagonals stay cache-resident (1 MiB): beyond that, streaming D costs
     * more than recomputing the signs (measured: 3x faster at 12 qubits, slower at 16) */
    qd_c *D = ng * d <= ((size_t)1 << 16) ? qd_calloc(ng * d, sizeof(qd_c)) : NULL;
    if (!D) {
        qd_free(gx);
        qd_free(gof);
        return;
    }
    for (size_t t = 0; t < nt; t++) {
        qd_c *Dg = D + gof[t] * d;
        qd_c cc = H->c[t] * ipow(ny_of(H->x[t], H->z[t]));
        uint64_t z = H->z[t];
        for (size_t s2 = 0; s2 < d; s2++)
            Dg[s2] += __builtin_parityll(s2 & z) ? -cc : cc;
    }
    qd_free(gof);
    H->gx = gx;
    H->D = D;
    H->ng = ng;
}

static qd_status reserve(qd_pauli_sum *H, size_t need, qd_err *e)
{
    if (need <= H->cap)
        return QD_OK;
    size_t cap = H->cap ? H->cap : 4;
    while (cap < need) {
        if (cap > ((size_t)1 << 40))
            return qd_fail(e, QD_ENOMEM, "not enough memory for a Pauli sum of %zu terms", need);
        cap *= 2;
    }
    uint64_t *x = qd_malloc(sizeof(uint64_t) * cap), *z = qd_malloc(sizeof(uint64_t) * cap);
    qd_c *c = qd_malloc(sizeof(qd_c) * cap);
    if (!x || !z || !c) {
        qd_free(x);
        qd_free(z);
        qd_free(c);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a Pauli sum of %zu terms", need);
    }
    if (H->nterms) {
        memcpy(x, H->x, sizeof(uint64_t) * H->nterms);
        memcpy(z, H->z, sizeof(uint64_t) * H->nterms);
        memcpy(c, H->c, sizeof(qd_c) * H->nterms);
    }
    qd_free(H->x);
    qd_free(H->z);
    qd_free(H->c);
    H->x = x;
    H->z = z;
    H->c = c;
    H->cap = cap;
    return QD_OK;
}

qd_status qd_ps_add_masks(qd_pauli_sum *H, qd_c c, uint64_t x, uint64_t z, qd_err *e)
{
    drop_cache(H);
    qd_status s = reserve(H, H->nterms + 1, e);
    if (s != QD_OK)
        return s;
    H->x[H->nterms] = x;
    H->z[H->nterms] = z;
    H->c[H->nterms] = c;
    H->nterms++;
    return QD_OK;
}

qd_status qd_ps_add_term(qd_pauli_sum *H, qd_c c, const char *ops, const int *qs, int k,
                         qd_err *e)
{
    uint64_t x = 0, z = 0, seen = 0;
    for (int i = 0; i < k; i++) {
        int q = qs[i];
        if (q < 0 || q >= H->n)
            return qd_fail(e, QD_EARG, "qubit %d out of range 0..%d", q, H->n - 1);
        uint64_t bit = (uint64_t)1 << (H->n - 1 - q);
        if (seen & bit)
            return qd_fail(e, QD_EARG, "qubit %d appears twice in a Pauli string", q);
        seen |= bit;
        switch (ops[i]) {
        case 'I': case 'i': break;
        case 'X': case 'x': x |= bit; break;
        case 'Y': case 'y': x |= bit; z |= bit; break;
        case 'Z': case 'z': z |= bit; break;
        default:
            return qd_fail(e, QD_EARG, "Pauli letter I, X, Y or Z expected, got '%c'", ops[i]);
        }
    }
    return qd_ps_add_masks(H, c, x, z, e);
}

qd_status qd_ps_copy(const qd_pauli_sum *A, qd_pauli_sum *out, qd_err *e)
{
    qd_ps_init(out, A->n);
    qd_status s = reserve(out, A->nterms, e);
    if (s != QD_OK)
        return s;
    if (A->nterms) {
        memcpy(out->x, A->x, sizeof(uint64_t) * A->nterms);
        memcpy(out->z, A->z, sizeof(uint64_t) * A->nterms);
        memcpy(out->c, A->c, sizeof(qd_c) * A->nterms);
    }
    out->nterms = A->nterms;
    return QD_OK;
}

/* stable merge sort of term indices by (x, z) (qsort has no context argument and is not
 * stable; ties keep their order so merged sums are added in term order). */
static void msort_idx(size_t *idx, size_t *tmp, size_t n, const qd_pauli_sum *H)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    msort_idx(idx, tmp, h, H);
    msort_idx(idx + h, tmp, n - h, H);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        size_t a = idx[i], b = idx[j];
        int le = H->x[a] != H->x[b] ? H->x[a] < H->x[b] : H->z[a] != H->z[b] ? H->z[a] < H->z[b] : a <= b;
        tmp[k++] = le ? idx[i++] : idx[j++];
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, sizeof(size_t) * n);
}

void qd_ps_simplify(qd_pauli_sum *H, double tol)
{
    drop_cache(H);
    size_t nt = H->nterms;
    if (nt == 0)
        return;
    size_t *idx = qd_malloc(sizeof(size_t) * nt * 2);
    uint64_t *x = qd_malloc(sizeof(uint64_t) * nt), *z = qd_malloc(sizeof(uint64_t) * nt);
    qd_c *c = qd_malloc(sizeof(qd_c) * nt);
    if (!idx || !x || !z || !c) {
        /* cannot sort: merge nothing, only drop zeros in place (still correct) */
        size_t k = 0;
        for (size_t t = 0; t < nt; t++)
            if (cabs(H->c[t]) > tol) {
                H->x[k] = H->x[t];
                H->z[k] = H->z[t];
                H->c[k] = H->c[t];
                k++;
            }
        H->nterms = k;
        qd_free(idx);
        qd_free(x);
        qd_free(z);
        qd_free(c);
        return;
    }
    for (size_t t = 0; t < nt; t++)
        idx[t] = t;
    msort_idx(idx, idx + nt, nt, H);
    /* merge runs of equal strings; a run's first index (stable sort: its smallest) is
     * kept so the result can be put back in order of first occurrence */
    size_t k = 0;
    for (size_t i = 0; i < nt;) {
        size_t t = idx[i];
        qd_c s = 0;
        size_t j = i;
        while (j < nt && H->x[idx[j]] == H->x[t] && H->z[idx[j]] == H->z[t])
            s += H->c[idx[j++]];
        if (cabs(s) > tol) {
            x[k] = H->x[t];
            z[k] = H->z[t];
            c[k] = s;
            idx[k] = t;   /* k <= i: this slot of idx has been read already */
            k++;
        }
        i = j;
    }
    /* order of first occurrence: sort the k survivors by their first index */
    {
        size_t *ord = idx + nt;   /* k positions, sorted by idx[] (insertion into a merge sort) */
        for (size_t i = 0; i < k; i++)
            ord[i] = i;
        /* merge sort of positions by first index, reusing msort on a view would need a
         * different key: k is small in practice, so a simple binary-insertion sort */
        for (size_t i = 1; i < k; i++) {
            size_t v = ord[i], lo = 0, hi = i;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (idx[ord[mid]] < idx[v])
                    lo = mid + 1;
                else
                    hi = mid;
            }
            memmove(ord + lo + 1, ord + lo, sizeof(size_t) * (i - lo));
            ord[lo] = v;
        }
        for (size_t i = 0; i < k; i++) {
            H->x[i] = x[ord[i]];
            H->z[i] = z[ord[i]];
            H->c[i] = c[ord[i]];
        }
        H->nterms = k;
    }
    qd_free(idx);
    qd_free(x);
    qd_free(z);
    qd_free(c);
}

qd_status qd_ps_axpby(qd_c a, const qd_pauli_sum *A, qd_c b, const qd_pauli_sum *B,
                      qd_pauli_sum *out, qd_err *e)
{
    if (A->n != B->n)
        return qd_fail(e, QD_EARG, "Pauli sums on %d and %d qubits cannot be added", A->n, B->n);
    qd_ps_init(out, A->n);
    qd_status s = reserve(out, A->nterms + B->nterms, e);
    if (s != QD_OK)
        return s;
    for (size_t t = 0; t < A->nterms; t++) {
        out->x[out->nterms] = A->x[t];
        out->z[out->nterms] = A->z[t];
        out->c[out->nterms++] = qd_cmul(a, A->c[t]);
    }
    for (size_t t = 0; t < B->nterms; t++) {
        out->x[out->nterms] = B->x[t];
        out->z[out->nterms] = B->z[t];
        out->c[out->nterms++] = qd_cmul(b, B->c[t]);
    }
    qd_ps_simplify(out, 0);
    return QD_OK;
}

/* (i^na X^xa Z^za)(i^nb X^xb Z^zb) = i^(na+nb) (-1)^|za & xb| X^(xa^xb) Z^(za^zb), and
 * X^x Z^z = i^-ny(x, z) P(x, z). */
qd_status qd_ps_mul(const qd_pauli_sum *A, const qd_pauli_sum *B, qd_pauli_sum *out, qd_err *e)
{
    if (A->n != B->n)
        return qd_fail(e, QD_EARG, "Pauli sums on %d and %d qubits cannot be multiplied", A->n, B->n);
    qd_ps_init(out, A->n);
    size_t need;
    if (qd_mul_overflow(A->nterms, B->nterms, &need))
        return qd_fail(e, QD_ENOMEM, "not enough memory for a product of Pauli sums");
    qd_status s = reserve(out, need, e);
    if (s != QD_OK)
        return s;
    for (size_t i = 0; i < A->nterms; i++)
        for (size_t j = 0; j < B->nterms; j++) {
            uint64_t x = A->x[i] ^ B->x[j], z = A->z[i] ^ B->z[j];
            int k = ny_of(A->x[i], A->z[i]) + ny_of(B->x[j], B->z[j]) - ny_of(x, z) +
                    2 * (__builtin_popcountll(A->z[i] & B->x[j]) & 1);
            out->x[out->nterms] = x;
            out->z[out->nterms] = z;
            out->c[out->nterms++] = A->c[i] * B->c[j] * ipow(((k % 4) + 4) % 4);
        }
    qd_ps_simplify(out, 0);
    return QD_OK;
}

void qd_ps_dagger(qd_pauli_sum *H)
{
    drop_cache(H);
    for (size_t t = 0; t < H->nterms; t++)
        H->c[t] = conj(H->c[t]);
}

double qd_ps_max_imag(const qd_pauli_sum *H)
{
    qd_pauli_sum C;
    qd_err e;
    double m = 0;
    if (qd_ps_copy(H, &C, &e) == QD_OK) {
        qd_ps_simplify(&C, 0);
        for (size_t t = 0; t < C.nterms; t++)
            if (fabs(cimag(C.c[t])) > m)
                m = fabs(cimag(C.c[t]));
        qd_ps_free(&C);
        return m;
    }
    /* no memory to merge: the unmerged bound (>= the merged value) */
    for (size_t t = 0; t < H->nterms; t++)
        m += fabs(cimag(H->c[t]));
    return m;
}

double qd_ps_norm_bound(const qd_pauli_sum *H)
{
    double s = 0;
    for (size_t t = 0; t < H->nterms; t++)
        s += cabs(H->c[t]);
    return s;
}

void qd_ps_term_string(const qd_pauli_sum *H, size_t t, char *buf)
{
    for (int q = 0; q < H->n; q++) {
        uint64_t bit = (uint64_t)1 << (H->n - 1 - q);
        int xb = (H->x[t] & bit) != 0, zb = (H->z[t] & bit) != 0;
        buf[q] = xb ? (zb ? 'Y' : 'X') : (zb ? 'Z' : 'I');
    }
    buf[H->n] = '\0';
}

/* ---------------------------------------------------------------- application */

/* out[b'] (+)= sum_t alpha c_t i^ny (-1)^|(b'^x) & z| in[b' ^ x] for b' in [lo, hi).
 * Gather form: every output entry is written once, so blocks may run in parallel. */
static void apply_range(const qd_pauli_sum *H, const qd_c *coef, const qd_c *in, qd_c *out,
                        qd_c alpha, int accumulate, size_t lo, size_t hi)
{
    if (!accumulate)
        memset(out + lo, 0, sizeof(qd_c) * (hi - lo));
    const double *src = (const double *)in;
    double *dst = (double *)out;
    if (H->D && !coef) {
        /* grouped diagonals: out[b] += alpha D_g[b ^ x] in[b ^ x] */
        size_t d = (size_t)1 << H->n;
        const double ar0 = creal(alpha), ai0 = cimag(alpha);
        for (size_t g = 0; g < H->ng; g++) {
            uint64_t x = H->gx[g];
            const double *Dg = (const double *)(H->D + g * d);
            for (size_t b = lo; b < hi; b++) {
                size_t s2 = b ^ x;
                double dr = Dg[2 * s2], di = Dg[2 * s2 + 1], ar = src[2 * s2], ai = src[2 * s2 + 1];
                double tr = dr * ar - di * ai, ti = dr * ai + di * ar;
                dst[2 * b] += ar0 * tr - ai0 * ti;
                dst[2 * b + 1] += ar0 * ti + ai0 * tr;
            }
        }
        return;
    }
    const qd_c *cs = coef ? coef : H->c;
    for (size_t t = 0; t < H->nterms; t++) {
        qd_c cc = alpha * cs[t];
        if (cc == 0)
            continue;
        uint64_t x = H->x[t], z = H->z[t];
        cc *= ipow(ny_of(x, z));
        /* real arithmetic with a branch-free sign: the parity is data-dependent and would
         * defeat branch prediction; no complex multiply (no NaN-recovery path) */
        const double cr = creal(cc), ci = cimag(cc);
        for (size_t b = lo; b < hi; b++) {
            size_t sidx = b ^ x;
            double sg = 1.0 - 2.0 * (double)__builtin_parityll(sidx & z);
            double ar = src[2 * sidx], ai = src[2 * sidx + 1];
            dst[2 * b] += sg * (cr * ar - ci * ai);
            dst[2 * b + 1] += sg * (cr * ai + ci * ar);
        }
    }
}

void qd_ps_apply1(const qd_pauli_sum *H, const qd_c *coef, const qd_c *in, qd_c *out,
                  qd_c alpha, int accumulate)
{
    apply_range(H, coef, in, out, alpha, accumulate, 0, (size_t)1 << H->n);
}

void qd_ps_apply(const qd_pauli_sum *H, const qd_c *coef, size_t coef_stride, const qd_c *in,
                 size_t count, qd_c *out, int accumulate)
{
    size_t d = (size_t)1 << H->n;
    if (count == 1) {
        size_t nb = (d + QD_BLOCK - 1) / QD_BLOCK;
        #pragma omp parallel for schedule(static) if (d >= QD_PAR_MIN)
        for (size_t b = 0; b < nb; b++) {
            size_t lo = b * QD_BLOCK, hi = lo + QD_BLOCK < d ? lo + QD_BLOCK : d;
            apply_range(H, coef, in, out, 1.0, accumulate, lo, hi);
        }
        return;
    }
    #pragma omp parallel for schedule(static) if (count * d >= QD_PAR_MIN)
    for (size_t j = 0; j < count; j++)
        apply_range(H, coef ? coef + j * coef_stride : NULL, in + j * d, out + j * d, 1.0,
                    accumulate, 0, d);
}

/* ---------------------------------------------------------------- expectations */

/* sum over b in [lo, hi) of conj(a[b ^ x]) i^ny (-1)^|b & z| a[b], summed over terms */
static qd_c expect_range(const qd_pauli_sum *H, const qd_c *a, size_t lo, size_t hi)
{
    qd_c tot = 0;
    const double *p = (const double *)a;
    if (H->D) {
        /* sum_g sum_b conj(a[b ^ x_g]) D_g[b] a[b] */
        size_t d = (size_t)1 << H->n;
        for (size_t g = 0; g < H->ng; g++) {
            uint64_t x = H->gx[g];
            const double *Dg = (const double *)(H->D + g * d);
            double sr = 0, si = 0;
            for (size_t b = lo; b < hi; b++) {
                size_t s2 = b ^ x;
                double ur = p[2 * s2], ui = p[2 * s2 + 1], vr = p[2 * b], vi = p[2 * b + 1];
                double wr = Dg[2 * b] * vr - Dg[2 * b + 1] * vi, wi = Dg[2 * b] * vi + Dg[2 * b + 1] * vr;
                sr += ur * wr + ui * wi;
                si += ur * wi - ui * wr;
            }
            tot += sr + I * si;
        }
        return tot;
    }
    for (size_t t = 0; t < H->nterms; t++) {
        uint64_t x = H->x[t], z = H->z[t];
        double sr = 0, si = 0;
        for (size_t b = lo; b < hi; b++) {
            /* conj(a[b ^ x]) a[b] with the sign (-1)^|b & z|, branch-free */
            size_t s = b ^ x;
            double sg = 1.0 - 2.0 * (double)__builtin_parityll(b & z);
            double ur = p[2 * s], ui = p[2 * s + 1], vr = p[2 * b], vi = p[2 * b + 1];
            sr += sg * (ur * vr + ui * vi);
            si += sg * (ur * vi - ui * vr);
        }
        tot += H->c[t] * ipow(ny_of(x, z)) * (sr + I * si);
    }
    return tot;
}

/* one vector, fixed blocks summed in order (same result whatever runs them) */
static qd_c expect1(const qd_pauli_sum *H, const qd_c *a, int par)
{
    size_t d = (size_t)1 << H->n, nb = (d + QD_BLOCK - 1) / QD_BLOCK;
    if (nb == 1)
        return expect_range(H, a, 0, d);
    qd_c *part = par ? qd_malloc(sizeof(qd_c) * nb) : NULL;
    qd_c s = 0;
    if (part) {
        #pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++)
            part[b] = expect_range(H, a, b * QD_BLOCK, (b + 1) * QD_BLOCK < d ? (b + 1) * QD_BLOCK : d);
        for (size_t b = 0; b < nb; b++)
            s += part[b];
        qd_free(part);
    } else {
        for (size_t b = 0; b < nb; b++)
            s += expect_range(H, a, b * QD_BLOCK, (b + 1) * QD_BLOCK < d ? (b + 1) * QD_BLOCK : d);
    }
    return s;
}

void qd_ps_expect(const qd_pauli_sum *H, const qd_c *a, size_t count, qd_c *out)
{
    size_t d = (size_t)1 << H->n;
    if (count == 1) {
        out[0] = expect1(H, a, d >= QD_PAR_MIN);
        return;
    }
    #pragma omp parallel for schedule(static) if (count * d >= QD_PAR_MIN)
    for (size_t j = 0; j < count; j++)
        out[j] = expect1(H, a + j * d, 0);
}

/* Tr(P rho) = sum_b <b|rho P|b> = sum_b i^ny (-1)^|b & z| rho[b, b ^ x] */
qd_c qd_ps_expect_dm(const qd_pauli_sum *H, const qd_c *rho)
{
    size_t d = (size_t)1 << H->n;
    qd_c tot = 0;
    for (size_t t = 0; t < H->nterms; t++) {
        uint64_t x = H->x[t], z = H->z[t];
        double sr = 0, si = 0;
        for (size_t b = 0; b < d; b++) {
            qd_c v = rho[b + (b ^ x) * d];
            if (__builtin_parityll(b & z)) {
                sr -= creal(v);
                si -= cimag(v);
            } else {
                sr += creal(v);
                si += cimag(v);
            }
        }
        tot += H->c[t] * ipow(ny_of(x, z)) * (sr + I * si);
    }
    return tot;
}

/* ---------------------------------------------------------------- dense forms */

void qd_ps_dense(const qd_pauli_sum *H, qd_c *M)
{
    size_t d = (size_t)1 << H->n;
    memset(M, 0, sizeof(qd_c) * d * d);
    for (size_t t = 0; t < H->nterms; t++) {
        uint64_t x = H->x[t], z = H->z[t];
        qd_c cc = H->c[t] * ipow(ny_of(x, z));
        /* P|b> = i^ny (-1)^|b & z| |b ^ x>: column b, row b ^ x */
        for (size_t b = 0; b < d; b++)
            M[(b ^ x) + b * d] += __builtin_parityll(b & z) ? -cc : cc;
    }
}

static qd_status check_dense(const qd_pauli_sum *H, const char *what, qd_err *e)
{
    if (H->n > QD_PS_DENSE_MAX)
        return qd_fail(e, QD_EARG, "%s needs a dense matrix: at most %d qubits, got %d", what,
                       QD_PS_DENSE_MAX, H->n);
    double im = qd_ps_max_imag(H);
    if (im > 1e-12)
        return qd_fail(e, QD_EARG, "%s needs a Hermitian operator (real coefficients), got an imaginary part %.3g",
                       what, im);
    return QD_OK;
}

qd_status qd_ps_eigh(const qd_pauli_sum *H, double *w, qd_c *V, qd_err *e)
{
    qd_status s = check_dense(H, "an eigen-decomposition", e);
    if (s != QD_OK)
        return s;
    size_t d = (size_t)1 << H->n;
    qd_c *M = V ? V : qd_malloc(sizeof(qd_c) * d * d);
    if (!M)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu matrix", d, d);
    qd_ps_dense(H, M);
    s = qd_la_eigh(M, d, w, V != NULL, e);
    if (!V)
        qd_free(M);
    return s;
}

void qd_phase_fix(qd_c *v, size_t d)
{
    double mx = 0;
    for (size_t i = 0; i < d; i++)
        if (cabs(v[i]) > mx)
            mx = cabs(v[i]);
    if (mx == 0)
        return;
    for (size_t i = 0; i < d; i++)
        if (cabs(v[i]) >= mx * (1 - 1e-12)) {
            qd_c ph = conj(v[i]) / cabs(v[i]);
            for (size_t j = 0; j < d; j++)
                v[j] *= ph;
            v[i] = cabs(v[i]);
            return;
        }
}

/* eigen-decomposition owned by the caller or built here: *w_out, *V_out point to the
 * one to use; *own set when built (free both). */
static qd_status get_eig(const qd_pauli_sum *H, const double *w, const qd_c *V,
                         const double **w_out, const qd_c **V_out, double **wown, qd_c **Vown,
                         qd_err *e)
{
    *wown = NULL;
    *Vown = NULL;
    if (w && V) {
        *w_out = w;
        *V_out = V;
        return QD_OK;
    }
    qd_status s = check_dense(H, "exp(-iHt) / Gibbs by eigen-decomposition", e);
    if (s != QD_OK)
        return s;
    size_t d = (size_t)1 << H->n;
    double *ww = qd_malloc(sizeof(double) * d);
    qd_c *VV = qd_malloc(sizeof(qd_c) * d * d);
    if (!ww || !VV) {
        qd_free(ww);
        qd_free(VV);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu eigen-decomposition", d, d);
    }
    s = qd_ps_eigh(H, ww, VV, e);
    if (s != QD_OK) {
        qd_free(ww);
        qd_free(VV);
        return s;
    }
    *w_out = *wown = ww;
    *V_out = *Vown = VV;
    return QD_OK;
}

/* U = V f(w) V^H with f(w_k) = phase[k] */
static qd_status build_fn(const qd_c *V, const qd_c *f, size_t d, qd_c *U, qd_err *e)
{
    qd_c *W = qd_malloc(sizeof(qd_c) * d * d);
    if (!W)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu matrix", d, d);
    for (size_t k = 0; k < d; k++)
        for (size_t i = 0; i < d; i++)
            W[i + k * d] = qd_cmul(V[i + k * d], f[k]);
    qd_la_zgemm('N', 'C', d, d, d, 1.0, W, d, V, d, 0.0, U, d);
    qd_free(W);
    return QD_OK;
}

static qd_status expm_eig(const qd_pauli_sum *H, double t, qd_c *a, size_t count,
                          const double *w, const qd_c *V, qd_err *e)
{
    const double *ww;
    const qd_c *VV;
    double *wown;
    qd_c *Vown;
    qd_status s = get_eig(H, w, V, &ww, &VV, &wown, &Vown, e);
    if (s != QD_OK)
        return s;
    size_t d = (size_t)1 << H->n, cnt;
    qd_c *U = qd_malloc(sizeof(qd_c) * d * d), *f = qd_malloc(sizeof(qd_c) * d);
    qd_c *tmp = NULL;
    if (!qd_mul_overflow(d, count, &cnt))
        tmp = qd_malloc(sizeof(qd_c) * cnt);
    if (!U || !f || !tmp) {
        s = qd_fail(e, QD_ENOMEM, "not enough memory for exp(-iHt) (%zu x %zu)", d, d);
        goto done;
    }
    for (size_t k = 0; k < d; k++)
        f[k] = cexp(-I * ww[k] * t);
    s = build_fn(VV, f, d, U, e);
    if (s != QD_OK)
        goto done;
    qd_la_zgemm('N', 'N', d, count, d, 1.0, U, d, a, d, 0.0, tmp, d);
    memcpy(a, tmp, sizeof(qd_c) * cnt);
done:
    qd_free(U);
    qd_free(f);
    qd_free(tmp);
    qd_free(wown);
    qd_free(Vown);
    return s;
}

/* ---------------------------------------------------------------- Krylov (Lanczos) */

typedef struct {
    size_t substeps, matvecs;
    double err;
} kry_stats;

/* y = Q exp(-i s tau lambda) Q^H e_1 for the mm x mm eigen-decomposition (Q, lam) */
static void small_exp(const qd_c *Q, const double *lam, size_t mm, double s, qd_c *y)
{
    for (size_t i = 0; i < mm; i++) {
        qd_c acc = 0;
        for (size_t k = 0; k < mm; k++)
            acc += qd_cmul(qd_cmul(Q[i + k * mm], cexp(-I * lam[k] * s)), conj(Q[0 + k * mm]));
        y[i] = acc;
    }
}

/* v <- exp(-i H t) v for one vector. scratch: (M + 2) * d amplitudes.
 * par: threads allowed inside (apply/inner products). */
static qd_status krylov1(const qd_pauli_sum *H, double t, qd_c *v, double tol, qd_c *Vb,
                         kry_stats *st, int par, qd_err *e)
{
    size_t d = (size_t)1 << H->n;
    size_t M = QD_KRYLOV_M < d ? QD_KRYLOV_M : d;
    double T = fabs(t), sgn = t >= 0 ? 1 : -1;
    double nb = qd_ps_norm_bound(H);
    if (T == 0 || nb == 0)
        return QD_OK;
    qd_c *w = Vb + (M + 1) * d;
    double alpha[QD_KRYLOV_M], beta[QD_KRYLOV_M], lam[QD_KRYLOV_M];
    qd_c Q[QD_KRYLOV_M * QD_KRYLOV_M], y[QD_KRYLOV_M];
    double tdone = 0, tau = fmin(T, (double)M / (4 * nb));
    double errsum = 0;
    size_t guard = 0;
    while (tdone < T) {
        if (++guard > 10000000)
            return qd_fail(e, QD_ENUMERIC, "Krylov exp(-iHt) did not converge (too many sub-steps)");
        double b0 = sqrt(qd_norm2(v, d));
        if (b0 == 0)
            return QD_OK;
        for (size_t i = 0; i < d; i++)
            Vb[i] = v[i] / b0;
        size_t mm = M;
        int happy = 0;
        for (size_t j = 0; j < M; j++) {
            qd_c *vj = Vb + j * d;
            if (par)
                qd_ps_apply(H, NULL, 0, vj, 1, w, 0);
            else
                qd_ps_apply1(H, NULL, vj, w, 1.0, 0);
            st->matvecs++;
            /* full re-orthogonalisation (modified Gram-Schmidt, one pass) */
            for (size_t i = 0; i <= j; i++) {
                qd_c h = qd_inner(Vb + i * d, w, d);
                if (i == j)
                    alpha[j] = creal(h);
                qd_c *vi = Vb + i * d;
                for (size_t k = 0; k < d; k++)
                    w[k] -= qd_cmul(h, vi[k]);
            }
            double bj = sqrt(qd_norm2(w, d));
            beta[j] = bj;
            if (j + 1 == d || bj <= 1e-12 * nb) {
                mm = j + 1;
                happy = 1;
                break;
            }
            if (j + 1 < M) {
                qd_c *vn = Vb + (j + 1) * d;
                for (size_t k = 0; k < d; k++)
                    vn[k] = w[k] / bj;
            }
        }
        /* eigen-decomposition of the tridiagonal projection */
        for (size_t i = 0; i < mm * mm; i++)
            Q[i] = 0;
        for (size_t i = 0; i < mm; i++) {
            Q[i + i * mm] = alpha[i];
            if (i + 1 < mm) {
                Q[(i + 1) + i * mm] = beta[i];
                Q[i + (i + 1) * mm] = beta[i];
            }
        }
        qd_status s = qd_la_eigh(Q, mm, lam, 1, e);
        if (s != QD_OK)
            return s;
        if (happy)
            tau = T - tdone;
        double err;
        for (;;) {
            if (tau > T - tdone)
                tau = T - tdone;
            small_exp(Q, lam, mm, sgn * tau, y);
            err = happy ? 0 : b0 * beta[mm - 1] * cabs(y[mm - 1]);
            double allowed = tol * b0 * tau / T;
            if (err <= allowed || tau <= 1e-14 * T) {
                st->substeps++;
                break;
            }
            double f = 0.9 * pow(allowed / err, 1.0 / (double)mm);
            tau *= f < 0.2 ? 0.2 : (f > 0.9 ? 0.9 : f);
        }
        /* v = b0 V y */
        memset(v, 0, sizeof(qd_c) * d);
        for (size_t i = 0; i < mm; i++) {
            qd_c c = b0 * y[i];
            const qd_c *vi = Vb + i * d;
            for (size_t k = 0; k < d; k++)
                v[k] += qd_cmul(c, vi[k]);
        }
        tdone += tau;
        errsum += err;
        if (!happy) {
            double allowed = tol * b0 * tau / T;
            double f = err > 0 ? 0.9 * pow(allowed / err, 1.0 / (double)mm) : 5;
            tau *= f < 0.2 ? 0.2 : (f > 5 ? 5 : f);
        }
    }
    if (errsum > st->err)
        st->err = errsum;
    return QD_OK;
}

static qd_status expm_krylov_run(const qd_pauli_sum *H, double t, qd_c *a, size_t count, double tol,
                                 qd_expm_stats *stats, qd_err *e);

/* Krylov on a prepared copy of H (grouped diagonals: fewer passes per application) */
static qd_status expm_krylov(const qd_pauli_sum *H, double t, qd_c *a, size_t count, double tol,
                             qd_expm_stats *stats, qd_err *e)
{
    qd_pauli_sum Hc;
    qd_status s = qd_ps_copy(H, &Hc, e);
    if (s != QD_OK)
        return s;
    qd_ps_prepare(&Hc);
    s = expm_krylov_run(&Hc, t, a, count, tol, stats, e);
    qd_ps_free(&Hc);
    return s;
}

static qd_status expm_krylov_run(const qd_pauli_sum *H, double t, qd_c *a, size_t count, double tol,
                                 qd_expm_stats *stats, qd_err *e)
{
    size_t d = (size_t)1 << H->n;
    size_t M = QD_KRYLOV_M < d ? QD_KRYLOV_M : d;
    size_t per = (M + 2) * d;
    int nt = count > 1 ? nthreads_max() : 1;
    if (nt < 1)
        nt = 1;
    if ((size_t)nt > count)
        nt = (int)count;
    size_t bytes;
    if (qd_mul_overflow(per, (size_t)nt * sizeof(qd_c), &bytes))
        return qd_fail(e, QD_ENOMEM, "not enough memory for a Krylov basis");
    qd_c *scr = qd_malloc(bytes);
    if (!scr)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a Krylov basis (%zu x %zu)", M + 2, d);
    kry_stats *ks = qd_calloc(count, sizeof(kry_stats));
    qd_status *sts = qd_calloc(count, sizeof(qd_status));
    qd_err *errs = count > 1 ? qd_calloc((size_t)nt, sizeof(qd_err)) : NULL;
    if (!ks || !sts || (count > 1 && !errs)) {
        qd_free(scr);
        qd_free(ks);
        qd_free(sts);
        qd_free(errs);
        return qd_fail(e, QD_ENOMEM, "not enough memory for Krylov bookkeeping");
    }
    qd_status s = QD_OK;
    if (count == 1) {
        s = krylov1(H, t, a, tol, scr, &ks[0], 1, e);
    } else {
        #pragma omp parallel for schedule(dynamic) num_threads(nt)
        for (size_t j = 0; j < count; j++) {
            int id = thread_id();
            qd_err le;
            sts[j] = krylov1(H, t, a + j * d, tol, scr + (size_t)id * per, &ks[j], 0, &le);
            if (sts[j] != QD_OK)
                errs[id] = le;
        }
        for (size_t j = 0; j < count && s == QD_OK; j++)
            if (sts[j] != QD_OK)
                s = qd_fail(e, sts[j], "member %zu: Krylov exp(-iHt) failed", j + 1);
    }
    if (stats) {
        for (size_t j = 0; j < count; j++) {
            stats->substeps += ks[j].substeps;
            stats->matvecs += ks[j].matvecs;
            if (ks[j].err > stats->err_est)
                stats->err_est = ks[j].err;
        }
    }
    qd_free(scr);
    qd_free(ks);
    qd_free(sts);
    qd_free(errs);
    return s;
}

qd_status qd_ps_evolve(const qd_pauli_sum *H, double t, qd_c *a, size_t count,
                       qd_expm_method method, double tol, const double *w, const qd_c *V,
                       qd_expm_stats *stats, qd_err *e)
{
    if (!isfinite(t))
        return qd_fail(e, QD_EARG, "finite time expected");
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (method == QD_EXPM_AUTO)
        method = (H->n <= QD_EXPM_EIG_MAX_QUBITS || (w && V)) ? QD_EXPM_EIG : QD_EXPM_KRYLOV;
    if (method == QD_EXPM_EIG)
        return expm_eig(H, t, a, count, w, V, e);
    double im = qd_ps_max_imag(H);
    if (im > 1e-12)
        return qd_fail(e, QD_EARG, "exp(-iHt) needs a Hermitian operator (real coefficients), got an imaginary part %.3g", im);
    if (!(tol > 0))
        tol = 1e-12;
    /* a sub-step covers at most ~M / ||H|| of time (krylov1): beyond this many the time
     * stepping would run for hours, so it is refused up front (the exact method has no
     * such limit) */
    double tn = fabs(t) * qd_ps_norm_bound(H);
    if (tn > QD_KRYLOV_MAX_TNORM)
        return qd_fail(e, QD_EARG,
                       "Krylov exp(-iHt): |t| times the norm bound of H is %.3g, more than time stepping can "
                       "cover (%.0e); use method = \"eig\" (exact) or a shorter time", tn, QD_KRYLOV_MAX_TNORM);
    return expm_krylov(H, t, a, count, tol, stats, e);
}

qd_status qd_ps_evolve_dm(const qd_pauli_sum *H, double t, qd_c *rho, const double *w,
                          const qd_c *V, qd_err *e)
{
    if (!isfinite(t))
        return qd_fail(e, QD_EARG, "finite time expected");
    const double *ww;
    const qd_c *VV;
    double *wown;
    qd_c *Vown;
    qd_status s = get_eig(H, w, V, &ww, &VV, &wown, &Vown, e);
    if (s != QD_OK)
        return s;
    size_t d = (size_t)1 << H->n;
    qd_c *U = qd_malloc(sizeof(qd_c) * d * d), *T = qd_malloc(sizeof(qd_c) * d * d);
    qd_c *f = qd_malloc(sizeof(qd_c) * d);
    if (!U || !T || !f) {
        s = qd_fail(e, QD_ENOMEM, "not enough memory for U rho U^H (%zu x %zu)", d, d);
        goto done;
    }
    for (size_t k = 0; k < d; k++)
        f[k] = cexp(-I * ww[k] * t);
    s = build_fn(VV, f, d, U, e);
    if (s != QD_OK)
        goto done;
    qd_la_zgemm('N', 'N', d, d, d, 1.0, U, d, rho, d, 0.0, T, d);
    qd_la_zgemm('N', 'C', d, d, d, 1.0, T, d, U, d, 0.0, rho, d);
done:
    qd_free(U);
    qd_free(T);
    qd_free(f);
    qd_free(wown);
    qd_free(Vown);
    return s;
}

qd_status qd_ps_gibbs(const qd_pauli_sum *H, double beta, qd_c *rho, double *logZ,
                      const double *w, const qd_c *V, qd_err *e)
{
    if (!(beta >= 0) || !isfinite(beta))
        return qd_fail(e, QD_EARG, "inverse temperature beta >= 0 (finite) expected");
    const double *ww;
    const qd_c *VV;
    double *wown;
    qd_c *Vown;
    qd_status s = get_eig(H, w, V, &ww, &VV, &wown, &Vown, e);
    if (s != QD_OK)
        return s;
    size_t d = (size_t)1 << H->n;
    qd_c *f = qd_malloc(sizeof(qd_c) * d);
    if (!f) {
        s = qd_fail(e, QD_ENOMEM, "not enough memory for a Gibbs state");
        goto done;
    }
    /* shift by the ground energy so exp never overflows; Z' = sum exp(-beta (w - w0)) */
    double z = 0;
    for (size_t k = 0; k < d; k++) {
        double p = exp(-beta * (ww[k] - ww[0]));
        f[k] = p;
        z += p;
    }
    for (size_t k = 0; k < d; k++)
        f[k] /= z;
    s = build_fn(VV, f, d, rho, e);
    if (s == QD_OK) {
        /* exact Hermiticity */
        for (size_t c = 0; c < d; c++)
            for (size_t r = c; r < d; r++) {
                qd_c m = 0.5 * (rho[r + c * d] + conj(rho[c + r * d]));
                rho[r + c * d] = m;
                rho[c + r * d] = conj(m);
            }
        if (logZ)
            *logZ = -beta * ww[0] + log(z);
    }
done:
    qd_free(f);
    qd_free(wown);
    qd_free(Vown);
    return s;
}

/* ---------------------------------------------------------------- Lanczos ground state */

/* Restarted Lanczos (full re-orthogonalisation, subspace m) for the lowest eigenpair of a
 * Hermitian sum: each cycle builds the Krylov space of the current vector, takes the
 * lowest Ritz pair (theta, x) of the tridiagonal projection and restarts from x, until the
 * residual ||H x - theta x|| <= tol max(1, |theta|). Start vector: complex Gaussian from a
 * fixed seed (deterministic; almost surely not orthogonal to the ground state). */
static qd_status lanczos_run(const qd_pauli_sum *H, qd_c *psi, double *E0, double tol,
                             size_t max_cycles, size_t *matvecs, qd_err *e);

qd_status qd_ps_ground_lanczos(const qd_pauli_sum *H, qd_c *psi, double *E0, double tol,
                               size_t max_cycles, size_t *matvecs, qd_err *e)
{
    if (qd_ps_max_imag(H) > 1e-12)
        return qd_fail(e, QD_EARG, "Lanczos needs a Hermitian operator (real coefficients)");
    qd_pauli_sum Hc;
    qd_status s = qd_ps_copy(H, &Hc, e);
    if (s != QD_OK)
        return s;
    qd_ps_prepare(&Hc);
    s = lanczos_run(&Hc, psi, E0, tol, max_cycles, matvecs, e);
    qd_ps_free(&Hc);
    return s;
}

static qd_status lanczos_run(const qd_pauli_sum *H, qd_c *psi, double *E0, double tol,
                             size_t max_cycles, size_t *matvecs, qd_err *e)
{
    size_t d = (size_t)1 << H->n;
    size_t m = d <= ((size_t)1 << 16) ? 40 : 20;
    if (m > d)
        m = d;
    if (!(tol > 0))
        tol = 1e-10;
    if (max_cycles == 0)
        max_cycles = 1000;
    size_t bytes;
    if (qd_mul_overflow(m + 2, d * sizeof(qd_c), &bytes))
        return qd_fail(e, QD_ENOMEM, "not enough memory for a Lanczos basis");
    qd_c *Vb = qd_malloc(bytes);
    double *alpha = qd_malloc(sizeof(double) * m * 3);
    qd_c *Q = qd_malloc(sizeof(qd_c) * m * m);
    if (!Vb || !alpha || !Q) {
        qd_free(Vb);
        qd_free(alpha);
        qd_free(Q);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a Lanczos basis (%zu x %zu)", m + 2, d);
    }
    double *beta = alpha + m, *lam = beta + m;
    qd_c *x = psi, *w = Vb + (m + 1) * d;
    qd_rng r;
    qd_rng_init(&r, 0x6c616e637a6f73ULL);
    for (size_t i = 0; i < d; i++)
        x[i] = qd_rng_cnormal(&r);
    size_t mv = 0;
    qd_status s = QD_OK;
    double theta = 0;
    int conv = 0;
    double nb = qd_ps_norm_bound(H);
    for (size_t cyc = 0; cyc < max_cycles && !conv; cyc++) {
        if (qd_interrupt) {   /* Ctrl-C or a time limit (qd.h) */
            s = qd_fail(e, QD_EINTR, "interrupted");
            break;
        }
        double b0 = sqrt(qd_norm2(x, d));
        for (size_t i = 0; i < d; i++)
            Vb[i] = x[i] / b0;
        size_t mm = m;
        for (size_t j = 0; j < m; j++) {
            qd_c *vj = Vb + j * d;
            qd_ps_apply(H, NULL, 0, vj, 1, w, 0);
            mv++;
            for (int pass = 0; pass < 2; pass++)   /* re-orthogonalise twice ("twice is enough") */
                for (size_t i = 0; i <= j; i++) {
                    qd_c h = qd_inner(Vb + i * d, w, d);
                    if (pass == 0 && i == j)
                        alpha[j] = creal(h);
                    const qd_c *vi = Vb + i * d;
                    for (size_t k = 0; k < d; k++)
                        w[k] -= qd_cmul(h, vi[k]);
                }
            double bj = sqrt(qd_norm2(w, d));
            beta[j] = bj;
            if (j + 1 == d || bj <= 1e-13 * (nb > 0 ? nb : 1)) {
                mm = j + 1;
                break;
            }
            if (j + 1 < m) {
                qd_c *vn = Vb + (j + 1) * d;
                for (size_t k = 0; k < d; k++)
                    vn[k] = w[k] / bj;
            }
        }
        for (size_t i = 0; i < mm * mm; i++)
            Q[i] = 0;
        for (size_t i = 0; i < mm; i++) {
            Q[i + i * mm] = alpha[i];
            if (i + 1 < mm)
                Q[(i + 1) + i * mm] = Q[i + (i + 1) * mm] = beta[i];
        }
        s = qd_la_eigh(Q, mm, lam, 1, e);
        if (s != QD_OK)
            break;
        theta = lam[0];
        memset(x, 0, sizeof(qd_c) * d);
        for (size_t i = 0; i < mm; i++) {
            qd_c c = Q[i];
            const qd_c *vi = Vb + i * d;
            for (size_t k = 0; k < d; k++)
                x[k] += qd_cmul(c, vi[k]);
        }
        double nx = sqrt(qd_norm2(x, d));
        for (size_t k = 0; k < d; k++)
            x[k] /= nx;
        /* residual */
        qd_ps_apply(H, NULL, 0, x, 1, w, 0);
        mv++;
        for (size_t k = 0; k < d; k++)
            w[k] -= theta * x[k];
        double res = sqrt(qd_norm2(w, d));
        if (res <= tol * fmax(1.0, fabs(theta)))
            conv = 1;
    }
    if (s == QD_OK && !conv)
        s = qd_fail(e, QD_ENUMERIC, "Lanczos did not converge in %zu cycles (tol %g)", max_cycles, tol);
    if (s == QD_OK) {
        qd_phase_fix(x, d);
        *E0 = theta;
    }
    if (matvecs)
        *matvecs = mv;
    qd_free(Vb);
    qd_free(alpha);
    qd_free(Q);
    return s;
}
