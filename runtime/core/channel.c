/* channel.c — quantum channels: Kraus lists, their superoperator / Choi forms, CPTP checks,
 * composition and tensor products, and application to density matrices (locally, never
 * through a 4^n x 4^n matrix) and to pure states (seeded quantum trajectories).
 * Conventions and the two application methods are described in qd_channel.h.
 *
 * Determinism: nothing here reduces across threads. The density-matrix paths are made of
 * gate kernels (bitwise identical for any thread count, see gates.c), elementwise sums in
 * a fixed order, and qd_ptrace_dm (each element summed in a fixed order). Trajectory
 * members are independent: member j uses only its own substream and its own amplitudes.
 * Complex products in loops go through qd_cmul (qd.h) and hand-written ones subtract a
 * product as `+ (-x)*y`: the same values, but GCC cannot fuse them into vfmaddsub
 * (scripts/check_contraction.sh). */
#include "qd_channel.h"
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif


/* ---------------------------------------------------------------- Kraus-list algebra */

double qd_kraus_tp_dev(const qd_c *K, size_t m, int k)
{
    const size_t d = (size_t)1 << k, dd = d * d;
    double s2 = 0;
    /* T = sum_i K_i^H K_i, entry (a, b) = sum_i sum_r conj(K_i[r, a]) K_i[r, b] */
    for (size_t b = 0; b < d; b++)
        for (size_t a = 0; a < d; a++) {
            double re = 0, im = 0;
            for (size_t i = 0; i < m; i++) {
                const qd_c *ka = K + i * dd + a * d, *kb = K + i * dd + b * d;
                for (size_t r = 0; r < d; r++) {
                    double xr = creal(ka[r]), xi = cimag(ka[r]), nxi = -xi;
                    double yr = creal(kb[r]), yi = cimag(kb[r]);
                    re += xr * yr + xi * yi;
                    im += xr * yi + nxi * yr;   /* not - xi*yr: see the top of the file */
                }
            }
            if (a == b)
                re -= 1;
            s2 += re * re + im * im;
        }
    return isnan(s2) ? INFINITY : sqrt(s2);
}

void qd_kraus_to_choi(const qd_c *K, size_t m, int k, qd_c *J)
{
    /* The buffer of K_i (column-major) is vec(K_i) (column stacking), so the m operators
     * side by side are the d^2 x m matrix V = [vec K_1 ... vec K_m] and J = V V^H. */
    const size_t dd = (size_t)1 << (2 * k);
    qd_la_zgemm('N', 'C', dd, dd, m, 1.0, K, dd, K, dd, 0.0, J, dd);
}

void qd_choi_reshuffle(const qd_c *in, int k, qd_c *out)
{
    /* out[(a + x d), (b + y d)] = in[(a + b d), (x + y d)]: swaps the 2nd and 3rd of the
     * four d-valued indices; applying it twice gives back the input. */
    const size_t d = (size_t)1 << k, D = d * d;
    for (size_t y = 0; y < d; y++)
        for (size_t b = 0; b < d; b++)
            for (size_t x = 0; x < d; x++)
                for (size_t a = 0; a < d; a++)
                    out[(a + x * d) + (b + y * d) * D] = in[(a + b * d) + (x + y * d) * D];
}

void qd_kraus_to_superop(const qd_c *K, size_t m, int k, qd_c *S)
{
    /* S[(r'+c'd),(r+cd)] = sum_i K_i[r',r] conj(K_i[c',c]) = J[(r'+rd),(c'+cd)]:
     * the Choi matrix by one zgemm, then reshuffled */
    const size_t d = (size_t)1 << k, dd = d * d;
    qd_c *J = qd_malloc(sizeof(qd_c) * dd * dd);
    if (J) {
        qd_kraus_to_choi(K, m, k, J);
        qd_choi_reshuffle(J, k, S);
        qd_free(J);
        return;
    }
    /* no scratch: the direct O(m d^4) sum (so this cannot fail) */
    for (size_t i = 0; i < dd * dd; i++)
        S[i] = 0;
    for (size_t i = 0; i < m; i++) {
        const qd_c *Ki = K + i * dd;
        for (size_t c = 0; c < d; c++)
            for (size_t r = 0; r < d; r++)
                for (size_t cp = 0; cp < d; cp++)
                    for (size_t rp = 0; rp < d; rp++)
                        S[(rp + cp * d) + (r + c * d) * dd] +=
                            qd_cmul(Ki[rp + r * d], conj(Ki[cp + c * d]));
    }
}

static void matmul(const qd_c *A, const qd_c *B, size_t d, qd_c *C)
{
    for (size_t c = 0; c < d; c++)
        for (size_t r = 0; r < d; r++) {
            qd_c s = 0;
            for (size_t l = 0; l < d; l++)
                s += qd_cmul(A[r + l * d], B[l + c * d]);
            C[r + c * d] = s;
        }
}

void qd_kraus_compose(const qd_c *A, size_t ma, const qd_c *B, size_t mb, int k, qd_c *out)
{
    const size_t d = (size_t)1 << k, dd = d * d;
    for (size_t i = 0; i < ma; i++)
        for (size_t j = 0; j < mb; j++)
            matmul(A + i * dd, B + j * dd, d, out + (i * mb + j) * dd);
}

void qd_kraus_tensor(const qd_c *A, size_t ma, int ka, const qd_c *B, size_t mb, int kb,
                     qd_c *out)
{
    const size_t da = (size_t)1 << ka, db = (size_t)1 << kb, D = da * db;
    for (size_t i = 0; i < ma; i++)
        for (size_t j = 0; j < mb; j++) {
            const qd_c *Ai = A + i * da * da, *Bj = B + j * db * db;
            qd_c *O = out + (i * mb + j) * D * D;
            /* (A (x) B)[(ra db + rb), (ca db + cb)] = A[ra, ca] B[rb, cb] */
            for (size_t ca = 0; ca < da; ca++)
                for (size_t cb = 0; cb < db; cb++)
                    for (size_t ra = 0; ra < da; ra++)
                        for (size_t rb = 0; rb < db; rb++)
                            O[(ra * db + rb) + (ca * db + cb) * D] =
                                qd_cmul(Ai[ra + ca * da], Bj[rb + cb * db]);
        }
}

void qd_pauli_kraus(int k, double w0, double w1, qd_c *K)
{
    /* single-qubit Paulis, column-major */
    static const qd_c P[4][4] = {{1, 0, 0, 1}, {0, 1, 1, 0}, {0, I, -I, 0}, {1, 0, 0, -1}};
    const size_t d = (size_t)1 << k, dd = d * d, np = dd;
    const double s0 = sqrt(w0 > 0 ? w0 : 0), s1 = sqrt(w1 > 0 ? w1 : 0);
    for (size_t j = 0; j < np; j++) {
        qd_c *O = K + j * dd;
        for (size_t c = 0; c < d; c++)
            for (size_t r = 0; r < d; r++) {
                /* product over qubits q (q = 0 most significant in r, c and in j's digits) */
                qd_c v = j == 0 ? s0 : s1;
                for (int q = 0; q < k && v != 0; q++) {
                    int dig = (int)((j >> (2 * (k - 1 - q))) & 3);
                    int rb = (int)((r >> (k - 1 - q)) & 1), cb = (int)((c >> (k - 1 - q)) & 1);
                    v *= P[dig][rb + 2 * cb];
                }
                O[r + c * d] = v;
            }
    }
}

qd_status qd_superop_check(const qd_c *S, int k, double *herm_dev, double *tp_dev,
                           double *min_eig, qd_err *e)
{
    const size_t d = (size_t)1 << k, D = d * d;
    qd_c *J = qd_malloc(sizeof(qd_c) * D * D);
    double *w = qd_malloc(sizeof(double) * D);
    if (!J || !w) {
        qd_free(J);
        qd_free(w);
        return qd_fail(e, QD_ENOMEM, "not enough memory to check a %d-qubit superoperator", k);
    }
    qd_choi_reshuffle(S, k, J);
    double h2 = 0, t2 = 0;
    for (size_t c = 0; c < D; c++)
        for (size_t r = 0; r < D; r++) {
            qd_c x = J[r + c * D] - conj(J[c + r * D]);
            h2 += creal(x) * creal(x) + cimag(x) * cimag(x);
        }
    /* Tr_out J: T[c, c'] = sum_r J[(r + c d), (r + c' d)] must be the identity */
    for (size_t c2 = 0; c2 < d; c2++)
        for (size_t c1 = 0; c1 < d; c1++) {
            qd_c t = 0;
            for (size_t r = 0; r < d; r++)
                t += J[(r + c1 * d) + (r + c2 * d) * D];
            if (c1 == c2)
                t -= 1;
            t2 += creal(t) * creal(t) + cimag(t) * cimag(t);
        }
    /* smallest eigenvalue of the Hermitian part */
    for (size_t c = 0; c < D; c++)
        for (size_t r = 0; r <= c; r++) {
            qd_c h = 0.5 * (J[r + c * D] + conj(J[c + r * D]));
            J[r + c * D] = h;
            J[c + r * D] = conj(h);
        }
    *herm_dev = isnan(h2) ? INFINITY : sqrt(h2);
    *tp_dev = isnan(t2) ? INFINITY : sqrt(t2);
    qd_status st = QD_OK;
    if (!isfinite(*herm_dev) || !isfinite(*tp_dev)) {
        *min_eig = -INFINITY;   /* LAPACK on NaN input is undefined: report and stop */
    } else {
        st = qd_la_eigh(J, D, w, 0, e);
        *min_eig = st == QD_OK ? w[0] : -INFINITY;
    }
    qd_free(J);
    qd_free(w);
    return st;
}

qd_status qd_choi_to_kraus(const qd_c *J, int k, double cut, qd_c *K, size_t *m, qd_err *e)
{
    const size_t D = (size_t)1 << (2 * k);
    qd_c *V = qd_malloc(sizeof(qd_c) * D * D);
    double *w = qd_malloc(sizeof(double) * D);
    if (!V || !w) {
        qd_free(V);
        qd_free(w);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %d-qubit Choi decomposition", k);
    }
    memcpy(V, J, sizeof(qd_c) * D * D);
    qd_status st = qd_la_eigh(V, D, w, 1, e);
    if (st == QD_OK) {
        /* eigenvalues ascending: take them from the top; vec(K) = sqrt(w) v, and the
         * column-major buffer of K is vec(K) */
        size_t cnt = 0;
        for (size_t t = D; t-- > 0;) {
            if (!(w[t] > cut) && cnt > 0)
                break;
            double s = sqrt(w[t] > 0 ? w[t] : 0);
            for (size_t i = 0; i < D; i++)
                K[cnt * D + i] = s * V[i + t * D];
            cnt++;
        }
        *m = cnt;
    }
    qd_free(V);
    qd_free(w);
    return st;
}

/* ---------------------------------------------------------------- density matrices */

qd_ch_method qd_channel_method(size_t m, int k)
{
    /* One Kraus operator: U rho U^dagger in place (two gate passes, no temporaries).
     * Otherwise the local superoperator costs 4^k multiply-adds per amplitude in ONE
     * in-place pass; the Kraus sum costs about 2m 2^k multiply-adds plus ~4m passes over
     * memory (copy, two kernel passes, accumulate) and two fresh 4^n temporaries (page
     * faults). Measured at n = 10 (16 MiB density matrix, 1 thread, memcpy 0.47 ms):
     *   k=1 m=2: superop 0.54 ms, Kraus 16 ms;   k=2 m=2: 8.4 vs 19 ms;
     *   k=3 m=2: 20 vs 49 ms;  k=4 m=4: 74 vs 95 ms;  k=4 m=16: 74 vs 337 ms;
     *   m=1 (unitary), k=1: in place 0.34 ms vs superop 0.53 ms.
     * So: the superoperator for k <= 3, and for k = 4 once 2^k <= 4m; the Kraus sum for
     * larger k (a 4^k x 4^k local matrix stops paying) and for few operators at k = 4. */
    if (m <= 1)
        return QD_CH_KRAUS;
    if (k <= 3)
        return QD_CH_SUPEROP;
    if (k == 4 && ((size_t)1 << k) <= 4 * m)
        return QD_CH_SUPEROP;
    return QD_CH_KRAUS;
}

qd_status qd_channel_apply_dm(qd_c *rho, int n, const int *qs, int k, const qd_c *K,
                              size_t m, const qd_c *S, qd_ch_method method, qd_err *e)
{
    if (k < 1 || k > QD_CH_MAX_QUBITS || k > n || m < 1)
        return qd_fail(e, QD_EARG, "channel on %d qubits with %zu Kraus operators cannot act on %d qubits",
                       k, m, n);
    if (method == QD_CH_AUTO)
        method = qd_channel_method(m, k);
    const size_t d = (size_t)1 << k, dd = d * d, D = (size_t)1 << n, amps = D * D;
    if (method == QD_CH_SUPEROP) {
        if (2 * k > 12)
            return qd_fail(e, QD_EARG, "local superoperator needs k <= 6 (got %d)", k);
        qd_c *own = NULL;
        if (!S) {
            own = qd_malloc(sizeof(qd_c) * dd * dd);
            if (!own)
                return qd_fail(e, QD_ENOMEM, "not enough memory for a %d-qubit superoperator", k);
            qd_kraus_to_superop(K, m, k, own);
            S = own;
        }
        /* local index c_loc * 2^k + r_loc: column qubits (vector-qubits qs) are the high
         * half, row qubits (vector-qubits n + qs) the low half */
        int vq[12];
        for (int j = 0; j < k; j++) {
            vq[j] = qs[j];
            vq[k + j] = n + qs[j];
        }
        qd_status st = qd_apply_matrix(rho, 2 * n, 1, vq, 2 * k, S, e);
        qd_free(own);
        return st;
    }
    if (m == 1)
        return qd_dm_apply_matrix(rho, n, qs, k, K, e);
    qd_c *src = qd_malloc(sizeof(qd_c) * amps), *tmp = qd_malloc(sizeof(qd_c) * amps);
    if (!src || !tmp) {
        qd_free(src);
        qd_free(tmp);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the Kraus sum on %d qubits (2 copies of the density matrix)", n);
    }
    memcpy(src, rho, sizeof(qd_c) * amps);
    qd_status st = QD_OK;
    for (size_t i = 0; i < m && st == QD_OK; i++) {
        /* the last operator works on src itself (no copy needed any more) */
        qd_c *t = i + 1 < m ? tmp : src;
        if (t == tmp)
            memcpy(tmp, src, sizeof(qd_c) * amps);
        st = qd_dm_apply_matrix(t, n, qs, k, K + i * dd, e);
        if (st != QD_OK)
            break;
        double *out = (double *)rho;
        const double *in = (const double *)t;
        if (i == 0) {
            memcpy(rho, t, sizeof(qd_c) * amps);
        } else {
            #pragma omp parallel for schedule(static) if (amps >= QD_PAR_MIN)
            for (size_t x = 0; x < 2 * amps; x++)
                out[x] += in[x];
        }
    }
    if (st != QD_OK)
        memcpy(rho, src, sizeof(qd_c) * amps);   /* leave rho unchanged on failure */
    qd_free(src);
    qd_free(tmp);
    return st;
}

qd_status qd_depol_apply_dm(qd_c *rho, int n, const int *qs, int k, double lambda, qd_err *e)
{
    if (k < 1 || k > n)
        return qd_fail(e, QD_EARG, "depolarizing on %d qubits cannot act on %d qubits", k, n);
    const size_t D = (size_t)1 << n;
    const double a = 1 - lambda, b = lambda / ldexp(1.0, k);
    if (k == n) {
        /* whole register: (1 - lambda) rho + lambda Tr(rho) I / 2^n */
        double tr = qd_dm_trace_re(rho, n);
        #pragma omp parallel for schedule(static) if (D * D >= QD_PAR_MIN)
        for (size_t c = 0; c < D; c++) {
            double *col = (double *)(rho + c * D);
            for (size_t x = 0; x < 2 * D; x++)
                col[x] *= a;
            col[2 * c] += b * tr;
        }
        return QD_OK;
    }
    if (k == 1) {
        /* one target: the 4x4 superoperator on the vector-qubits (q, n+q) is one SIMD gate
         * pass (about 3x faster than the partial trace route at n = 10). Column stacking:
         * (rho00, rho10, rho01, rho11) -> populations mix, coherences shrink by 1 - lambda. */
        const double h = lambda / 2;
        const qd_c S[16] = {1 - h, 0, 0, h, 0, a, 0, 0, 0, 0, a, 0, h, 0, 0, 1 - h};
        int vq[2] = {qs[0], n + qs[0]};
        return qd_apply_matrix(rho, 2 * n, 1, vq, 2, S, e);
    }
    /* keep = the other qubits in ascending order, so the reduced index of a basis index r
     * is its non-target bits read in order (pext) */
    int keep[QD_MAX_QUBITS], nk = 0;
    size_t tmask = 0;
    for (int j = 0; j < k; j++)
        tmask |= (size_t)1 << (n - 1 - qs[j]);
    for (int q = 0; q < n; q++)
        if (!((tmask >> (n - 1 - q)) & 1))
            keep[nk++] = q;
    const size_t R = (size_t)1 << nk;
    qd_c *sig = qd_malloc(sizeof(qd_c) * R * R);
    size_t *rest = qd_malloc(sizeof(size_t) * D);
    if (!sig || !rest) {
        qd_free(sig);
        qd_free(rest);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %d-qubit partial trace", nk);
    }
    qd_ptrace_dm(rho, n, keep, nk, sig);
    for (size_t r = 0; r < D; r++) {
        size_t v = 0;
        for (int b2 = n - 1; b2 >= 0; b2--)
            if (!((tmask >> b2) & 1))
                v = (v << 1) | ((r >> b2) & 1);
        rest[r] = v;
    }
    #pragma omp parallel for schedule(static) if (D * D >= QD_PAR_MIN)
    for (size_t c = 0; c < D; c++) {
        qd_c *col = rho + c * D;
        const qd_c *scol = sig + rest[c] * R;
        const size_t tc = c & tmask;
        double *cd = (double *)col;
        for (size_t x = 0; x < 2 * D; x++)
            cd[x] *= a;
        for (size_t r = 0; r < D; r++)
            if ((r & tmask) == tc) {
                cd[2 * r] += b * creal(scol[rest[r]]);
                cd[2 * r + 1] += b * cimag(scol[rest[r]]);
            }
    }
    qd_free(sig);
    qd_free(rest);
    return QD_OK;
}

/* ---------------------------------------------------------------- trajectories */

void qd_pauli_apply(qd_c *a, int nq, size_t count, uint64_t xm, uint64_t zm, int ny)
{
    const size_t d = (size_t)1 << nq, total = d * count;
    /* i^ny as (re, im) */
    static const double ire[4] = {1, 0, -1, 0}, iim[4] = {0, 1, 0, -1};
    const double pr = ire[ny & 3], pi = iim[ny & 3];
    #pragma omp parallel for schedule(static) if (total >= QD_PAR_MIN)
    for (size_t g = 0; g < total; g++) {
        size_t i = g & (d - 1), j = i ^ (size_t)xm;
        if (j < i)
            continue;
        qd_c *v = a + (g - i);
        /* P|i> = i^ny (-1)^popcount(i & zm) |i ^ xm> */
        double si = (__builtin_popcountll((unsigned long long)(i & zm)) & 1) ? -1.0 : 1.0;
        double sj = (__builtin_popcountll((unsigned long long)(j & zm)) & 1) ? -1.0 : 1.0;
        double ar = creal(v[i]), ai = cimag(v[i]), br = creal(v[j]), bi = cimag(v[j]);
        /* new[j] = ph(i) a[i], new[i] = ph(j) a[j], ph(x) = s(x) (pr + i pi) */
        v[j] = CMPLX(si * (pr * ar - pi * ai), si * (pr * ai + pi * ar));
        if (j != i)
            v[i] = CMPLX(sj * (pr * br - pi * bi), sj * (pr * bi + pi * br));
    }
}

qd_status qd_channel_apply_traj(qd_c *a, int n, size_t count, const int *qs, int k,
                                const qd_c *K, size_t m, const qd_rng *base, size_t *branch,
                                qd_err *e)
{
    return qd_channel_apply_traj_at(a, n, count, qs, k, K, m, base, 0, branch, e);
}

qd_status qd_channel_apply_traj_at(qd_c *a, int n, size_t count, const int *qs, int k,
                                   const qd_c *K, size_t m, const qd_rng *base, uint64_t first,
                                   size_t *branch, qd_err *e)
{
    if (k < 1 || k > QD_CH_MAX_QUBITS || k > n || m < 1)
        return qd_fail(e, QD_EARG, "channel on %d qubits with %zu Kraus operators cannot act on %d qubits",
                       k, m, n);
    const size_t d = (size_t)1 << k, dd = d * d, dim = (size_t)1 << n;
    /* E_i = K_i^H K_i: branch i has probability Tr(E_i rho_T), rho_T the targets' state */
    qd_c *E = qd_malloc(sizeof(qd_c) * m * dd);
    if (!E)
        return qd_fail(e, QD_ENOMEM, "not enough memory for %zu effects", m);
    for (size_t i = 0; i < m; i++) {
        const qd_c *Ki = K + i * dd;
        for (size_t b = 0; b < d; b++)
            for (size_t c = 0; c < d; c++) {
                qd_c s = 0;
                for (size_t r = 0; r < d; r++)   /* qd_cmul: never fused (qd.h) */
                    s += qd_cmul(conj(Ki[r + c * d]), Ki[r + b * d]);
                E[i * dd + c + b * d] = s;
            }
    }
    int bad_norm = 0, nomem = 0;
    size_t bad_member = 0;
    #pragma omp parallel for schedule(static) if (count > 1 && count * dim >= QD_PAR_MIN)
    for (size_t j = 0; j < count; j++) {
        qd_c *psi = a + j * dim;
        qd_c rt[QD_CH_MAX_QUBITS > 0 ? (1 << (2 * QD_CH_MAX_QUBITS)) : 1];
        qd_ptrace_state(psi, n, qs, k, rt);
        double tot = 0;
        for (size_t x = 0; x < d; x++)
            tot += creal(rt[x + x * d]);
        qd_rng sub = qd_rng_sub(base, first + j);   /* the member's global index */
        double u = qd_rng_uniform(&sub);
        if (!(tot > 0) || !isfinite(tot)) {
            #pragma omp critical(qd_channel_traj)
            if (!bad_norm || j < bad_member) {
                bad_norm = 1;
                bad_member = j;
            }
            continue;
        }
        /* inverse CDF over the branches (in index order); zero-probability branches are
         * never taken; rounding at the top end falls back to the last positive branch */
        double target = u * tot, cum = 0;
        size_t pick = m, last_pos = m;
        for (size_t i = 0; i < m; i++) {
            const qd_c *Ei = E + i * dd;
            double p = 0;
            for (size_t c = 0; c < d; c++)
                for (size_t r = 0; r < d; r++)
                    p += creal(Ei[r + c * d] * rt[c + r * d]);
            if (p <= 0)
                continue;
            last_pos = i;
            cum += p;
            if (target < cum) {
                pick = i;
                break;
            }
        }
        if (pick == m)
            pick = last_pos;
        if (pick == m) {   /* no positive branch at all: a non-TP list; cannot happen for CPTP */
            #pragma omp critical(qd_channel_traj)
            if (!bad_norm || j < bad_member) {
                bad_norm = 1;
                bad_member = j;
            }
            continue;
        }
        qd_err e2;
        if (qd_apply_matrix(psi, n, 1, qs, k, K + pick * dd, &e2) != QD_OK) {
            #pragma omp atomic write
            nomem = 1;
            continue;
        }
        /* ||K_pick psi||^2 is p up to rounding: normalise by the actual norm */
        double nrm2 = qd_norm2(psi, dim);
        double s = 1.0 / sqrt(nrm2);
        for (size_t x = 0; x < dim; x++)
            psi[x] = CMPLX(creal(psi[x]) * s, cimag(psi[x]) * s);
        if (branch)
            branch[j] = pick;
    }
    qd_free(E);
    if (nomem)
        return qd_fail(e, QD_ENOMEM, "not enough memory to apply a %d-qubit Kraus operator", k);
    if (bad_norm)
        return qd_fail(e, QD_ENUMERIC, "cannot apply a channel to a state of norm 0 (member %zu)",
                       bad_member + 1);
    return QD_OK;
}

qd_status qd_depol_apply_traj(qd_c *a, int n, size_t count, const int *qs, int k,
                              double lambda, const qd_rng *base, size_t *branch, qd_err *e)
{
    if (k < 1 || k > n)
        return qd_fail(e, QD_EARG, "depolarizing on %d qubits cannot act on %d qubits", k, n);
    if (branch && k > 31)
        return qd_fail(e, QD_EARG, "branch indices of a %d-qubit Pauli string do not fit in an integer", k);
    const size_t dim = (size_t)1 << n;
    /* Kraus list: sqrt(p0) I with p0 = 1 - lambda + lambda/4^k, and sqrt(lambda/4^k) P_j for
     * the 4^k - 1 other strings (lambda may exceed 1 up to 4^k/(4^k-1): the Pauli form
     * with p = 1). Member j: one uniform picks identity vs "some other string", then the
     * string is drawn uniformly among the non-identity ones (redrawn while all digits are
     * 0), all from the member's own substream. */
    const double p0 = 1 - lambda + ldexp(lambda, -2 * k);
    int par = count > 1 && count * dim >= QD_PAR_MIN;
    #pragma omp parallel for schedule(static) if (par)
    for (size_t j = 0; j < count; j++) {
        qd_rng sub = qd_rng_sub(base, j);
        double u = qd_rng_uniform(&sub);
        uint64_t xm = 0, zm = 0, idx = 0;
        int ny = 0;
        if (u >= p0) {
            do {
                xm = zm = idx = 0;
                ny = 0;
                uint64_t bits = 0;
                for (int t = 0; t < k; t++) {
                    if (t % 32 == 0)
                        bits = qd_rng_u64(&sub);
                    int dig = (int)(bits & 3);
                    bits >>= 2;
                    uint64_t bit = (uint64_t)1 << (n - 1 - qs[t]);
                    if (dig == 1 || dig == 2)
                        xm |= bit;
                    if (dig == 2 || dig == 3)
                        zm |= bit;
                    ny += dig == 2;
                    if (k <= 31)
                        idx = (idx << 2) | (uint64_t)dig;
                }
            } while ((xm | zm) == 0);
        }
        if (branch)
            branch[j] = (size_t)idx;
        if (xm | zm)
            qd_pauli_apply(a + j * dim, n, 1, xm, zm, ny);
    }
    return QD_OK;
}
