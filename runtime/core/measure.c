/* measure.c — outcome probabilities, sampling, projective measurement and partial traces
 * of pure states and density matrices.
 *
 * Index bookkeeping. Measuring (or keeping) qubits qs[0..k) of an nq-qubit register splits
 * every basis index i into two parts:
 *   - the outcome m (k bits, qs[0] the most significant), whose bits sit at the index
 *     positions nq-1-qs[j] — `sel_pat(m)` deposits m there through small lookup tables;
 *   - the rest s (nq-k bits, the other qubits in their original order), whose bits fill
 *     the remaining positions from the bottom up. Consecutive s are walked with the
 *     subset-increment trick ((cur | mask) + 1) & ~mask, so a loop over s costs O(1) per
 *     step after an O(nq) start (`scatter_rest`).
 * i = sel_pat(m) | scatter_rest(s).
 *
 * Determinism. Sums over s are done in blocks of QD_BLOCK consecutive s, each block summed
 * in order and the block sums then added in order. Every code path (serial, parallel over
 * blocks, parallel over outcomes) uses exactly that association, so results do not depend
 * on the thread count or on which path was taken. */
#include "qd.h"
#include <math.h>
#include <string.h>

#define SMALL_K 64          /* up to this many outcomes, accumulate all of them per block */
#define PAR_MIN (2 * QD_PAR_MIN)   /* sampling and projection loops: cheaper per amplitude */

/* ---------------------------------------------------------------- index helpers */

typedef struct {
    int nq, k;
    size_t mask;            /* index bits of the selected qubits */
    int nchunks;
    size_t tab[8][256];     /* tab[c][v]: index bits of outcome bits 8c..8c+7 equal to v */
} sel_t;

static void sel_init(sel_t *s, int nq, const int *qs, int k)
{
    s->nq = nq;
    s->k = k;
    s->mask = 0;
    for (int j = 0; j < k; j++)
        s->mask |= (size_t)1 << (nq - 1 - qs[j]);
    s->nchunks = (k + 7) / 8;
    for (int c = 0; c < s->nchunks; c++) {
        int width = k - 8 * c < 8 ? k - 8 * c : 8;
        s->tab[c][0] = 0;
        /* entry v = entry (v without its lowest bit) | that bit's index position.
         * Outcome bit t (counted from the LSB) belongs to qubit qs[k-1-t]. */
        for (size_t v = 1; v < ((size_t)1 << width); v++) {
            int low = __builtin_ctzll(v);
            int t = 8 * c + low;
            s->tab[c][v] = s->tab[c][v & (v - 1)] | ((size_t)1 << (nq - 1 - qs[k - 1 - t]));
        }
    }
}

/* index bits of outcome m */
static inline size_t sel_pat(const sel_t *s, size_t m)
{
    size_t p = 0;
    for (int c = 0; m; c++, m >>= 8)
        p |= s->tab[c][m & 255];
    return p;
}

/* index with the bits of rest index r placed, in order, at the positions outside mask */
static inline size_t scatter_rest(size_t r, size_t mask, int nq)
{
    size_t out = 0;
    for (int p = 0; p < nq && r; p++) {
        if (mask >> p & 1)
            continue;
        out |= (r & 1) << p;
        r >>= 1;
    }
    return out;
}

/* the next rest position after cur (cur has zeros on mask) */
static inline size_t next_rest(size_t cur, size_t mask)
{
    return ((cur | mask) + 1) & ~mask;
}

static inline double weight(const qd_c *a, size_t i, size_t stride, int diag)
{
    if (diag)
        return creal(a[i * stride]);
    double re = creal(a[i]), im = cimag(a[i]);
    return re * re + im * im;
}

/* x * conj(y) in plain real arithmetic (skips the C99 Annex G NaN/inf recovery of __muldc3) */
static inline qd_c mulconj(qd_c x, qd_c y)
{
    /* + xr*nyi, not - xr*yi: the same value, but no vfmsubadd (scripts/check_contraction.sh) */
    double xr = creal(x), xi = cimag(x), yr = creal(y), yi = cimag(y), nyi = -yi;
    return CMPLX(xr * yr + xi * yi, xi * yr + xr * nyi);
}

static qd_status check_qubits(int nq, const int *qs, int k, const char *what, qd_err *e)
{
    if (nq < 0 || nq > QD_MAX_QUBITS)
        return qd_fail(e, QD_EARG, "bad number of qubits %d", nq);
    if (k < 0 || k > nq)
        return qd_fail(e, QD_EARG, "%d %s qubits given for a %d-qubit register", k, what, nq);
    size_t seen = 0;
    for (int j = 0; j < k; j++) {
        if (qs[j] < 0 || qs[j] >= nq)
            return qd_fail(e, QD_EARG, "%s qubit %d out of range 0..%d", what, qs[j], nq - 1);
        if (seen >> qs[j] & 1)
            return qd_fail(e, QD_EARG, "%s qubit %d given twice", what, qs[j]);
        seen |= (size_t)1 << qs[j];
    }
    return QD_OK;
}

/* ---------------------------------------------------------------- marginals */

/* Sum of weights over block b of the rest index, for every outcome whose index pattern is
 * in pats[0..K) (K <= SMALL_K). acc[m] is overwritten. */
static void block_marginal(const qd_c *a, size_t stride, int diag, const sel_t *s,
                           const size_t *pats, size_t K, size_t R, size_t b, double *acc)
{
    size_t lo = b * QD_BLOCK, hi = lo + QD_BLOCK < R ? lo + QD_BLOCK : R;
    size_t cur = scatter_rest(lo, s->mask, s->nq);
    for (size_t m = 0; m < K; m++)
        acc[m] = 0;
    for (size_t r = lo; r < hi; r++, cur = next_rest(cur, s->mask))
        for (size_t m = 0; m < K; m++)
            acc[m] += weight(a, pats[m] | cur, stride, diag);
}

/* out[m] = sum over rest of weight(i(m, rest)); weight = |a_i|^2 (state) or
 * Re a[i*stride] (density-matrix diagonal). */
static void marginal(const qd_c *a, size_t stride, int diag, int nq, const int *qs, int k,
                     double *out)
{
    int all = k == nq;   /* every qubit in register order: out[i] is amplitude i's weight */
    for (int j = 0; j < k && all; j++)
        all = qs[j] == j;
    if (all) {
        /* the general path below sums one term per outcome: 0 + w, which is what this adds
         * (a -0 diagonal entry becomes +0 there too) */
        const size_t D = (size_t)1 << nq;
        if (D >= PAR_MIN && qd_get_threads() > 1) {
            #pragma omp parallel for schedule(static)
            for (size_t i = 0; i < D; i++)
                out[i] = 0.0 + weight(a, i, stride, diag);
        } else {
            for (size_t i = 0; i < D; i++)
                out[i] = 0.0 + weight(a, i, stride, diag);
        }
        return;
    }
    sel_t s;
    sel_init(&s, nq, qs, k);
    size_t K = (size_t)1 << k, R = (size_t)1 << (nq - k);
    size_t nb = (R + QD_BLOCK - 1) / QD_BLOCK;
    if (K <= SMALL_K) {
        /* few outcomes: one pass over the state, all outcomes accumulated per block */
        size_t pats[SMALL_K];
        for (size_t m = 0; m < K; m++)
            pats[m] = sel_pat(&s, m);
        double *part = NULL;
        if (nb > 1 && K * R >= PAR_MIN)
            part = qd_malloc(sizeof(double) * nb * K);   /* nb*K*8 B = 1/8192 of the state */
        if (part) {
            #pragma omp parallel for schedule(static)
            for (size_t b = 0; b < nb; b++)
                block_marginal(a, stride, diag, &s, pats, K, R, b, part + b * K);
            for (size_t m = 0; m < K; m++) {
                double t = 0;
                for (size_t b = 0; b < nb; b++)
                    t += part[b * K + m];
                out[m] = t;
            }
            qd_free(part);
        } else {
            /* serial: the same block sums added in the same order */
            double acc[SMALL_K];
            for (size_t m = 0; m < K; m++)
                out[m] = 0;
            for (size_t b = 0; b < nb; b++) {
                block_marginal(a, stride, diag, &s, pats, K, R, b, acc);
                for (size_t m = 0; m < K; m++)
                    out[m] += acc[m];
            }
        }
        return;
    }
    /* many outcomes: each outcome is an independent sum, threads split the outcomes */
    #pragma omp parallel for schedule(static) if (K * R >= PAR_MIN)
    for (size_t m = 0; m < K; m++) {
        size_t pat = sel_pat(&s, m);
        double t = 0;
        for (size_t b = 0; b < nb; b++) {
            size_t lo = b * QD_BLOCK, hi = lo + QD_BLOCK < R ? lo + QD_BLOCK : R;
            size_t cur = scatter_rest(lo, s.mask, nq);
            double acc = 0;
            for (size_t r = lo; r < hi; r++, cur = next_rest(cur, s.mask))
                acc += weight(a, pat | cur, stride, diag);
            t += acc;
        }
        out[m] = t;
    }
}

/* probability (unnormalised) of the single outcome with index pattern pat, summed with the
 * same association as marginal() so that it equals marginal's out[m] bit for bit */
static double one_marginal(const qd_c *a, size_t stride, int diag, const sel_t *s, size_t pat,
                           size_t R)
{
    size_t nb = (R + QD_BLOCK - 1) / QD_BLOCK;
    double t = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * QD_BLOCK, hi = lo + QD_BLOCK < R ? lo + QD_BLOCK : R;
        size_t cur = scatter_rest(lo, s->mask, s->nq);
        double acc = 0;
        for (size_t r = lo; r < hi; r++, cur = next_rest(cur, s->mask))
            acc += weight(a, pat | cur, stride, diag);
        t += acc;
    }
    return t;
}

void qd_probs(const qd_c *a, int nq, const int *qs, int k, double *out)
{
    marginal(a, 1, 0, nq, qs, k, out);
}

void qd_dm_probs(const qd_c *rho, int n, const int *qs, int k, double *out)
{
    marginal(rho, ((size_t)1 << n) + 1, 1, n, qs, k, out);
}

/* ---------------------------------------------------------------- sampling */

/* Walks sorted uniforms against the running CDF, so the cost is O(d + shots) and no
 * scratch memory is needed (the function cannot fail). The sorted uniforms are
 * u_j = S_j / S_{shots+1}, S_j the running sum of j standard exponentials (the spacings of
 * sorted uniforms are exchangeable exponentials; Devroye, Non-Uniform Random Variate
 * Generation, ch. V.2). S_{shots+1} is needed first: the generator is counter-based, so a
 * copy of it replays the same exponentials in a second pass. The running sums are
 * compensated (Neumaier) so that u_j keeps ~1e-16 relative accuracy even for 1e9 shots.
 * Negative p (rounding in a density-matrix diagonal) count as 0; outcomes with p <= 0
 * are never drawn. If the p sum to zero, nothing is drawn. r advances by shots + 1
 * uniforms. */
static void sample_sorted(const double *p, size_t d, size_t shots, qd_rng *r, uint64_t *counts)
{
    double ptot = 0;
    size_t lastpos = 0;
    int any = 0;
    for (size_t i = 0; i < d; i++)
        if (p[i] > 0) {
            ptot += p[i];
            lastpos = i;
            any = 1;
        }
    if (!any || !isfinite(ptot))
        return;

    /* pass 1: total of shots + 1 exponentials */
    qd_rng replay = *r;
    double s = 0, comp = 0;
    for (size_t j = 0; j <= shots; j++) {
        double x = -log1p(-qd_rng_uniform(r));
        double t = s + x;
        comp += fabs(s) >= fabs(x) ? (s - t) + x : (x - t) + s;
        s = t;
    }
    double total = s + comp;

    /* pass 2: the same exponentials again, merged with the CDF */
    s = comp = 0;
    size_t i = 0;
    double cdf = p[0] > 0 ? p[0] : 0;   /* cdf = sum of p[0..i] */
    for (size_t j = 0; j < shots; j++) {
        double x = -log1p(-qd_rng_uniform(&replay));
        double t = s + x;
        comp += fabs(s) >= fabs(x) ? (s - t) + x : (x - t) + s;
        s = t;
        double target = (s + comp) / total * ptot;
        /* outcome i covers [cdf - p_i, cdf); skip outcomes the target has passed */
        while (i < lastpos && target >= cdf) {
            i++;
            cdf += p[i] > 0 ? p[i] : 0;
        }
        counts[i]++;
    }
}

/* Gamma(a, 1) for a >= 1: Marsaglia & Tsang, ACM TOMS 26 (2000) 363 (exact rejection). */
static double gamma_ge1(double a, qd_rng *r)
{
    double dd = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * dd);
    for (;;) {
        double x = qd_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = qd_rng_uniform(r);
        if (log1p(-u) < 0.5 * x * x + dd - dd * v + dd * log(v))
            return dd * v;
    }
}

/* Binomial(n, p), exactly, in O(log n) gamma draws: the a-th smallest of n uniforms is
 * Beta(a, n + 1 - a); comparing it with p halves n (Knuth, TAOCP vol. 2, 3.4.1 F). */
static uint64_t binomial(uint64_t n, double p, qd_rng *r)
{
    uint64_t k = 0;
    if (p <= 0)
        return 0;
    while (n > 64) {
        if (p >= 1)
            return k + n;
        uint64_t a = 1 + n / 2, b = n + 1 - a;
        double ga = gamma_ge1((double)a, r), gb = gamma_ge1((double)b, r);
        double x = ga / (ga + gb);
        if (x >= p) {
            n = a - 1;
            p /= x;
        } else {
            k += a;
            n = b - 1;
            p = (p - x) / (1 - x);
        }
    }
    for (uint64_t i = 0; i < n; i++)
        k += qd_rng_uniform(r) < p;
    return k;
}

/* Multinomial counts as a chain of conditional binomials: O(d log shots), for shot
 * counts where walking every shot would take minutes (1e12 shots: hours). */
static void sample_binomial(const double *p, size_t d, size_t shots, qd_rng *r, uint64_t *counts)
{
    double rest = 0;
    size_t lastpos = 0;
    int any = 0;
    for (size_t i = 0; i < d; i++)
        if (p[i] > 0) {
            rest += p[i];
            lastpos = i;
            any = 1;
        }
    if (!any || !isfinite(rest))
        return;
    uint64_t left = shots;
    for (size_t i = 0; i < lastpos && left > 0; i++) {
        if (!(p[i] > 0))
            continue;
        double q = p[i] / rest;
        uint64_t c = binomial(left, q < 1 ? q : 1, r);
        counts[i] += c;
        left -= c;
        rest -= p[i];
        if (!(rest > 0))
            break;
    }
    counts[lastpos] += left;
}

/* Up to 2^24 shots: sorted uniforms (one uniform pair per shot, exact CDF walk); beyond:
 * conditional binomials. Both draw exactly from the multinomial distribution. */
void qd_sample_counts(const double *p, size_t d, size_t shots, qd_rng *r, uint64_t *counts)
{
    if (d == 0 || shots == 0)
        return;
    if (shots <= ((size_t)1 << 24))
        sample_sorted(p, d, shots, r, counts);
    else
        sample_binomial(p, d, shots, r, counts);
}

/* ---------------------------------------------------------------- measurement */

/* Inverse CDF over the outcome index: the first m whose cumulative probability exceeds
 * u * total. An outcome of probability 0 is never chosen (the cumulative sum only crosses
 * the target on a positive step). */
size_t qd_select_outcome(const double *p, size_t K, double u, double *total)
{
    double tot = 0;
    size_t lastpos = 0;
    for (size_t m = 0; m < K; m++)
        if (p[m] > 0) {
            tot += p[m];
            lastpos = m;
        }
    *total = tot;
    double target = u * tot, c = 0;
    for (size_t m = 0; m < K; m++) {
        if (p[m] > 0)
            c += p[m];
        if (c > target)
            return m;
    }
    return lastpos;   /* u * tot rounded up to tot */
}

/* out = P_m a / sqrt(pm): keep -> nq qubits, zeros off the outcome; else the nq-k
 * remaining qubits. Elementwise when keep, so out may equal a. */
static void collapse_state(const qd_c *a, const sel_t *s, size_t pat, double pm, int keep,
                           qd_c *out)
{
    double scale = 1.0 / sqrt(pm);
    size_t d = (size_t)1 << s->nq, R = (size_t)1 << (s->nq - s->k), mask = s->mask;
    if (keep) {
        #pragma omp parallel for schedule(static) if (d >= PAR_MIN)
        for (size_t i = 0; i < d; i++)
            out[i] = (i & mask) == pat ? a[i] * scale : 0;
        return;
    }
    size_t nb = (R + QD_BLOCK - 1) / QD_BLOCK;
    #pragma omp parallel for schedule(static) if (R >= PAR_MIN)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * QD_BLOCK, hi = lo + QD_BLOCK < R ? lo + QD_BLOCK : R;
        size_t cur = scatter_rest(lo, mask, s->nq);
        for (size_t r = lo; r < hi; r++, cur = next_rest(cur, mask))
            out[r] = a[pat | cur] * scale;
    }
}

qd_status qd_measure(const qd_c *a, int nq, const int *qs, int k, double u, int keep,
                     qd_c *out, size_t *outcome, double *prob, qd_err *e)
{
    qd_status st = check_qubits(nq, qs, k, "measured", e);
    if (st != QD_OK)
        return st;
    size_t K = (size_t)1 << k;
    double pstack[SMALL_K], *p = pstack;
    if (K > SMALL_K && !(p = qd_malloc(sizeof(double) * K)))
        return qd_fail(e, QD_ENOMEM, "not enough memory for %zu outcome probabilities", K);
    qd_probs(a, nq, qs, k, p);
    double tot;
    size_t m = qd_select_outcome(p, K, u, &tot);
    double pm = p[m];
    if (p != pstack)
        qd_free(p);
    if (!(tot > 0) || !isfinite(tot))
        return qd_fail(e, QD_ENUMERIC, "cannot measure a state of zero norm");
    sel_t s;
    sel_init(&s, nq, qs, k);
    collapse_state(a, &s, sel_pat(&s, m), pm, keep, out);
    *outcome = m;
    *prob = pm / tot;
    return QD_OK;
}

qd_status qd_project(const qd_c *a, int nq, const int *qs, int k, size_t outcome, int keep,
                     qd_c *out, double *prob, qd_err *e)
{
    qd_status st = check_qubits(nq, qs, k, "measured", e);
    if (st != QD_OK)
        return st;
    size_t K = (size_t)1 << k, d = (size_t)1 << nq;
    if (outcome >= K)
        return qd_fail(e, QD_EARG, "outcome %zu out of range 0..%zu", outcome, K - 1);
    sel_t s;
    sel_init(&s, nq, qs, k);
    size_t pat = sel_pat(&s, outcome);
    double pm = one_marginal(a, 1, 0, &s, pat, d / K);
    if (!(pm > 0) || !isfinite(pm))
        return qd_fail(e, QD_ENUMERIC, "outcome %zu has probability 0", outcome);
    /* reported as a fraction of the state's norm, like qd_measure (before out is written:
     * out may be a) */
    double tot = qd_norm2(a, d);
    collapse_state(a, &s, pat, pm, keep, out);
    *prob = pm / tot;
    return QD_OK;
}

qd_status qd_dm_measure(const qd_c *rho, int n, const int *qs, int k, double u, int keep,
                        qd_c *out, size_t *outcome, double *prob, qd_err *e)
{
    qd_status st = check_qubits(n, qs, k, "measured", e);
    if (st != QD_OK)
        return st;
    size_t K = (size_t)1 << k, d = (size_t)1 << n, R = d / K;
    double pstack[SMALL_K], *p = pstack;
    if (K > SMALL_K && !(p = qd_malloc(sizeof(double) * K)))
        return qd_fail(e, QD_ENOMEM, "not enough memory for %zu outcome probabilities", K);
    qd_dm_probs(rho, n, qs, k, p);
    double tot;
    size_t m = qd_select_outcome(p, K, u, &tot);
    double pm = p[m];
    if (p != pstack)
        qd_free(p);
    if (!(tot > 0) || !isfinite(tot))
        return qd_fail(e, QD_ENUMERIC, "cannot measure a density matrix of zero trace");
    sel_t s;
    sel_init(&s, n, qs, k);
    size_t pat = sel_pat(&s, m), mask = s.mask;
    double scale = 1.0 / pm;
    if (keep) {
        /* P rho P / pm: entries whose row and column both carry the outcome; elementwise,
         * so out may equal rho */
        #pragma omp parallel for schedule(static) if (d * d >= PAR_MIN)
        for (size_t c = 0; c < d; c++) {
            int cm = (c & mask) == pat;
            for (size_t r = 0; r < d; r++)
                out[r + c * d] = cm && (r & mask) == pat ? rho[r + c * d] * scale : 0;
        }
    } else {
        /* the outcome's R x R block; out must not alias rho */
        #pragma omp parallel for schedule(static) if (d * R >= PAR_MIN)
        for (size_t c = 0; c < R; c++) {
            size_t ci = pat | scatter_rest(c, mask, n), ri = pat;
            for (size_t r = 0; r < R; r++, ri = pat | next_rest(ri & ~mask, mask))
                out[r + c * R] = rho[ri + ci * d] * scale;
        }
    }
    *outcome = m;
    *prob = pm / tot;
    return QD_OK;
}

/* ---------------------------------------------------------------- partial traces */

#define PT_BLOCKED_K 8      /* up to 8x8 reduced matrices: one pass, all pairs per block */
#define PT_GATHER (1 << 14) /* amplitudes gathered per zgemm chunk (256 KiB), at least K*256 */

/* out(K x K) = sum over rest of v v^H, v_r = psi[pats[r] | rest]. Lower triangle per
 * block b of the rest index (acc is K*K, overwritten). */
static void block_ptrace(const qd_c *psi, const sel_t *s, const size_t *pats, size_t K,
                         size_t R, size_t b, qd_c *acc)
{
    size_t lo = b * QD_BLOCK, hi = lo + QD_BLOCK < R ? lo + QD_BLOCK : R;
    size_t cur = scatter_rest(lo, s->mask, s->nq);
    qd_c v[PT_BLOCKED_K];
    for (size_t i = 0; i < K * K; i++)
        acc[i] = 0;
    for (size_t r = lo; r < hi; r++, cur = next_rest(cur, s->mask)) {
        for (size_t x = 0; x < K; x++)
            v[x] = psi[pats[x] | cur];
        for (size_t c = 0; c < K; c++)
            for (size_t x = c; x < K; x++)
                acc[x + c * K] += mulconj(v[x], v[c]);
    }
}

/* mirror the lower triangle into the upper one; real diagonal */
static void hermitise_lower(qd_c *out, size_t K)
{
    for (size_t c = 0; c < K; c++) {
        out[c + c * K] = creal(out[c + c * K]);
        for (size_t r = c + 1; r < K; r++)
            out[c + r * K] = conj(out[r + c * K]);
    }
}

/* every pair (r >= c) summed directly; used when the rest is tiny (zgemm would not pay)
 * and as the fallback when the gather buffer cannot be allocated */
static void pairs_ptrace(const qd_c *psi, const sel_t *s, size_t K, size_t R, qd_c *out)
{
    #pragma omp parallel for schedule(dynamic, 16) if (K * K * R >= PAR_MIN)
    for (size_t c = 0; c < K; c++) {
        size_t pc = sel_pat(s, c);
        for (size_t x = c; x < K; x++) {
            size_t px = sel_pat(s, x), cur = 0;
            qd_c t = 0;
            for (size_t r = 0; r < R; r++, cur = next_rest(cur, s->mask))
                t += mulconj(psi[px | cur], psi[pc | cur]);
            out[x + c * K] = t;
        }
    }
    hermitise_lower(out, K);
}

void qd_ptrace_state(const qd_c *psi, int n, const int *keep, int k, qd_c *out)
{
    size_t K = (size_t)1 << k, R = (size_t)1 << (n - k);
    sel_t sel, *s = &sel;
    sel_init(s, n, keep, k);

    if (K <= PT_BLOCKED_K) {
        /* small reduced matrix: one pass over psi, blocks summed in order (deterministic) */
        size_t pats[PT_BLOCKED_K], nb = (R + QD_BLOCK - 1) / QD_BLOCK, KK = K * K;
        for (size_t x = 0; x < K; x++)
            pats[x] = sel_pat(s, x);
        qd_c *part = NULL;
        if (nb > 1 && K * R >= PAR_MIN)
            part = qd_malloc(sizeof(qd_c) * nb * KK);
        if (part) {
            #pragma omp parallel for schedule(static)
            for (size_t b = 0; b < nb; b++)
                block_ptrace(psi, s, pats, K, R, b, part + b * KK);
            for (size_t i = 0; i < KK; i++) {
                qd_c t = 0;
                for (size_t b = 0; b < nb; b++)
                    t += part[b * KK + i];
                out[i] = t;
            }
            qd_free(part);
        } else {
            qd_c acc[PT_BLOCKED_K * PT_BLOCKED_K];
            for (size_t i = 0; i < KK; i++)
                out[i] = 0;
            for (size_t b = 0; b < nb; b++) {
                block_ptrace(psi, s, pats, K, R, b, acc);
                for (size_t i = 0; i < KK; i++)
                    out[i] += acc[i];
            }
        }
        hermitise_lower(out, K);
        return;
    }
    if (R <= 8 || K > 2147483647) {
        pairs_ptrace(psi, s, K, R, out);
        return;
    }

    /* Large reduced matrix: out = Psi Psi^H with Psi[x, r] = psi[pat(x) | rest(r)], by zgemm.
     * Kept qubits that are the top k in order: psi is Psi^T stored as an R x K column-major
     * matrix X, and out = conj(X^H X). Bottom k in order: psi is Psi (K x R), out = Psi Psi^H.
     * Otherwise Psi is gathered in column chunks. */
    int top = 1, bottom = 1;
    for (int j = 0; j < k; j++) {
        top &= keep[j] == j;
        bottom &= keep[j] == n - k + j;
    }
    if (top && R <= 2147483647) {
        qd_la_zgemm('C', 'N', K, K, R, 1.0, psi, R, psi, R, 0.0, out, K);
        for (size_t i = 0; i < K * K; i++)
            out[i] = conj(out[i]);
        hermitise_lower(out, K);
        return;
    }
    if (bottom && R <= 2147483647) {
        qd_la_zgemm('N', 'C', K, K, R, 1.0, psi, K, psi, K, 0.0, out, K);
        hermitise_lower(out, K);
        return;
    }
    size_t C = PT_GATHER / K;
    if (C < 256)
        C = 256;
    if (C > R)
        C = R;
    size_t cells;
    qd_c *G = qd_mul_overflow(K, C, &cells) ? NULL : qd_malloc(sizeof(qd_c) * cells);
    if (!G) {
        pairs_ptrace(psi, s, K, R, out);
        return;
    }
    for (size_t r0 = 0; r0 < R; r0 += C) {
        size_t nc = R - r0 < C ? R - r0 : C;
        #pragma omp parallel for schedule(static) if (K * nc >= PAR_MIN)
        for (size_t j = 0; j < nc; j++) {
            size_t rest = scatter_rest(r0 + j, s->mask, n);
            for (size_t x = 0; x < K; x++)
                G[x + j * K] = psi[sel_pat(s, x) | rest];
        }
        qd_la_zgemm('N', 'C', K, K, nc, 1.0, G, K, G, K, r0 ? 1.0 : 0.0, out, K);
    }
    qd_free(G);
    hermitise_lower(out, K);
}

/* out[x, y] = rho[pat(x)|b, pat(y)|b] with b the index bits of the other qubits at value
 * rest (the other qubits in their order, the last one least significant): the block
 * <b|rho|b> of the kept qubits, unnormalised. It is also the vector-Jacobian product of
 * rho -> rho (x) |b><b| (G_rho = Tr_B[G (I (x) |b><b|)]). */
void qd_dm_block(const qd_c *rho, int n, const int *keep, int k, size_t rest, qd_c *out)
{
    size_t K = (size_t)1 << k, d = (size_t)1 << n;
    sel_t sel, *s = &sel;
    sel_init(s, n, keep, k);
    size_t b = scatter_rest(rest, s->mask, n);
    for (size_t y = 0; y < K; y++) {
        size_t py = sel_pat(s, y) | b;
        for (size_t x = 0; x < K; x++)
            out[x + y * K] = rho[(sel_pat(s, x) | b) + py * d];
    }
}

/* out[x, y] = sum over rest of rho[pat(x)|rest, pat(y)|rest]: every entry a short sum in a
 * fixed order, so no reduction across threads is needed */
void qd_ptrace_dm(const qd_c *rho, int n, const int *keep, int k, qd_c *out)
{
    size_t K = (size_t)1 << k, R = (size_t)1 << (n - k), d = (size_t)1 << n;
    sel_t sel, *s = &sel;
    sel_init(s, n, keep, k);
    #pragma omp parallel for schedule(static) if (K * K * R >= PAR_MIN)
    for (size_t y = 0; y < K; y++) {
        size_t py = sel_pat(s, y);
        for (size_t x = 0; x < K; x++) {
            size_t px = sel_pat(s, x), cur = 0;
            qd_c t = 0;
            for (size_t r = 0; r < R; r++, cur = next_rest(cur, s->mask))
                t += rho[(px | cur) + (py | cur) * d];
            out[x + y * K] = t;
        }
    }
}
