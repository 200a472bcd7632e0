/* dist_state.c — a state vector split over P = 2^k ranks, QuEST's scheme (qd_dist.h): the k
 * most significant qubits (qubits 0..k-1, qubit 0 the MSB) index the rank, each rank holds
 * the other n-k qubits' 2^(n-k) amplitudes. Gates on local qubits run the ordinary kernels
 * (qd_apply_gate) on the local part; diagonal gates need no message (a rank's rank-qubit
 * bits are fixed, so the diagonal restricted to its part is a table over the local
 * targets); any other gate touching a rank qubit is done as swap(rank qubit, free local
 * qubit) — each rank sends half its part to the partner differing in that bit and gets
 * half back (MPI_Sendrecv) — then the gate on local qubits, then the swap back. Per gate:
 * 2 messages of half a part each way, the volume of QuEST's one full-part exchange.
 * Reductions (norms, probabilities, expectations) add the local sums in rank order. */
#include "qd_dist.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int ilog2(int P)
{
    int k = 0;
    while ((1 << k) < P)
        k++;
    return (1 << k) == P ? k : -1;
}

qd_status qd_dstate_new(qd_dstate *s, int n, qd_err *e)
{
    memset(s, 0, sizeof *s);
    s->rank = qd_dist_rank();
    s->size = qd_dist_size();
    s->k = ilog2(s->size);
    if (s->k < 0)
        return qd_fail(e, QD_EARG, "a distributed state needs a power-of-two number of "
                       "ranks, got %d", s->size);
    if (n - s->k < 3 || n > QD_MAX_QUBITS + s->k || n > 62)
        return qd_fail(e, QD_EARG, "a distributed state of %d qubits on %d ranks: %d..%d "
                       "qubits expected", n, s->size, s->k + 3,
                       QD_MAX_QUBITS + s->k < 62 ? QD_MAX_QUBITS + s->k : 62);
    s->n = n;
    s->nloc = (size_t)1 << (n - s->k);
    size_t need = (s->k > 0 ? 2 : 1) * s->nloc * sizeof(qd_c), phys = qd_phys_mem();
    if (n - s->k > 58 || (phys && need > phys))   /* before trying: no swapping machine */
        return qd_fail(e, QD_ENOMEM, "not enough memory for a distributed state of %d qubits "
                       "(%.3g GiB per rank requested)", n, ldexp((double)s->nloc, 4 - 30) *
                       (s->k > 0 ? 2 : 1));
    s->a = qd_malloc(s->nloc * sizeof(qd_c));
    /* the exchange buffer (half sent, half received) only when there are rank qubits */
    s->buf = s->k > 0 ? qd_malloc(s->nloc * sizeof(qd_c)) : NULL;
    if (!s->a || (s->k > 0 && !s->buf)) {
        qd_dstate_free(s);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a distributed state of %d "
                       "qubits (%zu bytes per rank)", n,
                       (s->k > 0 ? 2 : 1) * s->nloc * sizeof(qd_c));
    }
    memset(s->a, 0, s->nloc * sizeof(qd_c));
    if (s->rank == 0)
        s->a[0] = 1;
    return QD_OK;
}

void qd_dstate_free(qd_dstate *s)
{
    qd_free(s->a);
    qd_free(s->buf);
    s->a = s->buf = NULL;
}

/* the bit of rank qubit q (< k) in this rank's index */
static int rank_bit(const qd_dstate *s, int q)
{
    return (s->rank >> (s->k - 1 - q)) & 1;
}

/* swap global rank qubit r with local qubit l (local numbering): the amplitudes whose l
 * bit differs from this rank's r bit go to the partner, the partner's come back into
 * their places (in the order of the other bits on both sides) */
static qd_status swap_out(qd_dstate *s, int r, int l, qd_err *e)
{
    double t0 = now();
    int b = rank_bit(s, r), nl = s->n - s->k;
    int partner = s->rank ^ (1 << (s->k - 1 - r));
    size_t stride = (size_t)1 << (nl - 1 - l), half = s->nloc / 2, pos = 0;
    size_t off = b ? 0 : stride;   /* the half whose l bit is 1 - b */
    qd_c *snd = s->buf, *rcv = s->buf + half;
    for (size_t hi = 0; hi < s->nloc; hi += 2 * stride, pos += stride)
        memcpy(snd + pos, s->a + hi + off, stride * sizeof(qd_c));
    qd_status st = qd_dist_sendrecv(snd, rcv, half * sizeof(qd_c), partner, e);
    if (st)
        return st;
    pos = 0;
    for (size_t hi = 0; hi < s->nloc; hi += 2 * stride, pos += stride)
        memcpy(s->a + hi + off, rcv + pos, stride * sizeof(qd_c));
    s->msgs += 1;
    s->bytes += (double)(half * sizeof(qd_c));
    s->t_exchange += now() - t0;
    return QD_OK;
}

/* a diagonal gate: its diagonal restricted to this rank's part */
static qd_status gate_diag(qd_dstate *s, const qd_gate_info *g, const int *qs, const double *p,
                           qd_err *e)
{
    int m = g->nqubits, lq[8], kl = 0, pos[8];
    qd_c M[64], tab[8];
    (void)e;
    qd_gate_matrix(g, p, M);
    for (int j = 0; j < m; j++)
        if (qs[j] >= s->k) {
            pos[kl] = j;
            lq[kl++] = qs[j] - s->k;
        }
    size_t D = (size_t)1 << m;
    for (size_t t = 0; t < ((size_t)1 << kl); t++) {
        size_t idx = 0;   /* gate index: qs[0] the MSB */
        for (int j = 0, u = 0; j < m; j++) {
            int bit = (u < kl && pos[u] == j) ? (int)((t >> (kl - 1 - u++)) & 1)
                                               : rank_bit(s, qs[j]);
            idx = (idx << 1) | (size_t)bit;
        }
        tab[t] = M[idx * D + idx];
    }
    double t0 = now();
    if (kl > 0) {
        qd_k_diagtab(s->a, s->n - s->k, 1, lq, kl, tab);
    } else if (tab[0] != 1) {
        for (size_t i = 0; i < s->nloc; i++)
            s->a[i] *= tab[0];
    }
    s->t_compute += now() - t0;
    return QD_OK;
}

qd_status qd_dstate_gate(qd_dstate *s, const qd_gate_info *g, const int *qs, const double *p,
                         qd_err *e)
{
    int m = g->nqubits, lq[8], swapped[8], with[8], ns = 0;
    if (m > 8)
        return qd_fail(e, QD_EARG, "gate on %d qubits: at most 8 on a distributed state", m);
    for (int j = 0; j < m; j++)
        if (qs[j] < 0 || qs[j] >= s->n)
            return qd_fail(e, QD_EARG, "qubit %d out of range 0..%d", qs[j], s->n - 1);
    if (g->flags & QD_GF_DIAG)
        return gate_diag(s, g, qs, p, e);
    /* rank qubits in the gate: each swapped with a local qubit the gate does not touch
     * (the least significant ones first: their swaps copy the longest runs) */
    int nl = s->n - s->k, cand = nl - 1;
    for (int j = 0; j < m; j++) {
        if (qs[j] >= s->k) {
            lq[j] = qs[j] - s->k;
            continue;
        }
        for (; cand >= 0; cand--) {
            int used = 0;
            for (int i = 0; i < m; i++)
                used |= qs[i] - s->k == cand;
            if (!used)
                break;
        }
        if (cand < 0)
            return qd_fail(e, QD_EARG, "gate on %d qubits: too few local qubits (%d)", m, nl);
        swapped[ns] = qs[j];
        with[ns++] = cand;
        lq[j] = cand--;
    }
    for (int i = 0; i < ns; i++) {
        qd_status st = swap_out(s, swapped[i], with[i], e);
        if (st)
            return st;
    }
    double t0 = now();
    qd_apply_gate(s->a, nl, 1, g, lq, p, 0);
    s->t_compute += now() - t0;
    for (int i = ns - 1; i >= 0; i--) {
        qd_status st = swap_out(s, swapped[i], with[i], e);
        if (st)
            return st;
    }
    return QD_OK;
}

/* ---- reductions that give the same bits on 1 or P ranks: a pairwise (binary tree) sum
 * over the global index with leaves of LEAF consecutive terms. A rank's part is a subtree
 * (parts are 2^(n-k) >= LEAF long and aligned), so each rank sums its subtree and the P
 * partial sums are combined by the same tree (tree_combine), giving the one-rank sum's
 * bits; a plain running sum would differ by rounding (1e-11 at 26 qubits). */
#define LEAF 256

typedef struct {
    const qd_c *a, *b;   /* b: the second state of an inner product */
    size_t mask;         /* terms where (i & mask) != 0 (mode 'p'), parity of i & mask ('z') */
    char mode;           /* 'p' probability, 'z' Z parity, 'r'/'i' Re/Im conj(a) b */
} sumctx;

static double term(const sumctx *c, size_t i)
{
    const qd_c x = c->a[i];
    switch (c->mode) {
    case 'p':
        return (i & c->mask) ? creal(x) * creal(x) + cimag(x) * cimag(x) : 0.0;
    case 'z': {
        double w = creal(x) * creal(x) + cimag(x) * cimag(x);
        return (__builtin_popcountll((unsigned long long)(i & c->mask)) & 1) ? -w : w;
    }
    case 'r':
        return creal(x) * creal(c->b[i]) + cimag(x) * cimag(c->b[i]);
    default:
        return creal(x) * cimag(c->b[i]) - cimag(x) * creal(c->b[i]);
    }
}

static double pairwise(const sumctx *c, size_t lo, size_t len)
{
    if (len <= LEAF) {
        double acc = 0;
        for (size_t i = lo; i < lo + len; i++)
            acc += term(c, i);
        return acc;
    }
    return pairwise(c, lo, len / 2) + pairwise(c, lo + len / 2, len / 2);
}

/* every rank's partial to every rank (the others add exact zeros), then the tree over ranks */
static qd_status tree_allsum(const qd_dstate *s, double mine, double *out, qd_err *e)
{
    double *x = calloc((size_t)s->size, sizeof(double));
    if (!x)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a reduction");
    x[s->rank] = mine;
    qd_status st = qd_dist_allreduce(x, (size_t)s->size, 's', e);
    for (int h = 1; h < s->size; h *= 2)
        for (int i = 0; i + h < s->size; i += 2 * h)
            x[i] += x[i + h];
    *out = x[0];
    free(x);
    return st;
}

qd_status qd_dstate_prob1(qd_dstate *s, int q, double *p1, qd_err *e)
{
    if (q < 0 || q >= s->n)
        return qd_fail(e, QD_EARG, "qubit %d out of range 0..%d", q, s->n - 1);
    sumctx c = {s->a, NULL, 0, 'p'};
    double acc = 0;
    if (q < s->k) {   /* the whole part or nothing: parity of nothing, every term + */
        c.mode = 'z';
        if (rank_bit(s, q))
            acc = pairwise(&c, 0, s->nloc);
    } else {
        c.mask = (size_t)1 << (s->n - 1 - q);
        acc = pairwise(&c, 0, s->nloc);
    }
    return tree_allsum(s, acc, p1, e);
}

qd_status qd_dstate_expect_z(qd_dstate *s, const int *qs, int k, double *val, qd_err *e)
{
    size_t lmask = 0;
    int rpar = 0;
    for (int j = 0; j < k; j++) {
        if (qs[j] < 0 || qs[j] >= s->n)
            return qd_fail(e, QD_EARG, "qubit %d out of range 0..%d", qs[j], s->n - 1);
        if (qs[j] < s->k)
            rpar ^= rank_bit(s, qs[j]);
        else
            lmask ^= (size_t)1 << (s->n - 1 - qs[j]);
    }
    sumctx c = {s->a, NULL, lmask, 'z'};
    double acc = pairwise(&c, 0, s->nloc);   /* negation is exact: the tree's bits */
    return tree_allsum(s, rpar ? -acc : acc, val, e);
}

static qd_status gather_parts(qd_dstate *s, const void *part, size_t bytes, int root,
                              void **out, qd_err *e)
{
    size_t *lens = malloc((size_t)s->size * sizeof *lens);
    if (!lens)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a gather");
    qd_status st = qd_dist_gather(part, bytes, root, out, lens, e);
    free(lens);
    return st;
}

qd_status qd_dstate_probs_gather(qd_dstate *s, int root, double **out, qd_err *e)
{
    double *p = malloc(s->nloc * sizeof(double));
    if (!p)
        return qd_fail(e, QD_ENOMEM, "not enough memory for probabilities");
    for (size_t i = 0; i < s->nloc; i++)
        p[i] = creal(s->a[i]) * creal(s->a[i]) + cimag(s->a[i]) * cimag(s->a[i]);
    qd_status st = gather_parts(s, p, s->nloc * sizeof(double), root, (void **)out, e);
    free(p);
    return st;
}

qd_status qd_dstate_amps_gather(qd_dstate *s, int root, qd_c **out, qd_err *e)
{
    return gather_parts(s, s->a, s->nloc * sizeof(qd_c), root, (void **)out, e);
}

qd_status qd_dstate_inner(qd_dstate *a, qd_dstate *b, qd_c *out, qd_err *e)
{
    if (a->n != b->n)
        return qd_fail(e, QD_EARG, "states of %d and %d qubits", a->n, b->n);
    sumctx cr = {a->a, b->a, 0, 'r'}, ci = {a->a, b->a, 0, 'i'};
    double re, im;
    qd_status st = tree_allsum(a, pairwise(&cr, 0, a->nloc), &re, e);
    if (st == QD_OK)
        st = tree_allsum(a, pairwise(&ci, 0, a->nloc), &im, e);
    *out = st == QD_OK ? re + I * im : 0;
    return st;
}

qd_status qd_dstate_copy(qd_dstate *dst, const qd_dstate *src, qd_err *e)
{
    qd_status st = qd_dstate_new(dst, src->n, e);
    if (st == QD_OK)
        memcpy(dst->a, src->a, src->nloc * sizeof(qd_c));
    return st;
}

qd_status qd_dstate_sample(qd_dstate *s, double u, size_t *idx, qd_err *e)
{
    double *tot = calloc((size_t)s->size, sizeof(double)), mine = 0;
    if (!tot)
        return qd_fail(e, QD_ENOMEM, "not enough memory for sampling");
    for (size_t i = 0; i < s->nloc; i++)
        mine += creal(s->a[i]) * creal(s->a[i]) + cimag(s->a[i]) * cimag(s->a[i]);
    tot[s->rank] = mine;   /* the others add exact zeros: every rank gets every total */
    qd_status st = qd_dist_allreduce(tot, (size_t)s->size, 's', e);
    if (st) {
        free(tot);
        return st;
    }
    double all = 0, cum = 0;
    for (int r = 0; r < s->size; r++)
        all += tot[r];
    double target = u * all;
    int owner = s->size - 1;
    for (int r = 0; r < s->size; r++) {
        if (target < cum + tot[r] && tot[r] > 0) {
            owner = r;
            break;
        }
        cum += tot[r];
    }
    while (owner > 0 && tot[owner] <= 0)   /* u * all rounded past the end */
        owner--;
    free(tot);
    unsigned long long out = 0;
    if (s->rank == owner) {
        size_t j = s->nloc - 1;
        double c = cum;
        for (size_t i = 0; i < s->nloc; i++) {
            c += creal(s->a[i]) * creal(s->a[i]) + cimag(s->a[i]) * cimag(s->a[i]);
            if (target < c) {
                j = i;
                break;
            }
        }
        out = ((unsigned long long)owner << (s->n - s->k)) | j;
    }
    st = qd_dist_bcast(&out, sizeof out, owner, e);
    *idx = (size_t)out;
    return st;
}

qd_status qd_dist_fwht(double *x, int n, int k, qd_dstate *stats, qd_err *e)
{
    int rank = qd_dist_rank();
    size_t nloc = (size_t)1 << (n - k);
    double t0 = now();
    for (size_t h = 1; h < nloc; h <<= 1)
        for (size_t i0 = 0; i0 < nloc; i0 += 2 * h)
            for (size_t i = i0; i < i0 + h; i++) {
                double u = x[i], v = x[i + h];
                x[i] = u + v;
                x[i + h] = u - v;
            }
    double t1 = now();
    if (stats)
        stats->t_compute += t1 - t0;
    if (k == 0)
        return QD_OK;
    double *y = malloc(nloc * sizeof(double));
    if (!y)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a Walsh-Hadamard transform");
    for (int j = 0; j < k; j++) {   /* the rank bits: whole parts exchanged */
        int bit = 1 << j, partner = rank ^ bit;
        qd_status st = qd_dist_sendrecv(x, y, nloc * sizeof(double), partner, e);
        if (st) {
            free(y);
            return st;
        }
        if (rank & bit)
            for (size_t i = 0; i < nloc; i++)
                x[i] = y[i] - x[i];
        else
            for (size_t i = 0; i < nloc; i++)
                x[i] = x[i] + y[i];
        if (stats) {
            stats->msgs += 1;
            stats->bytes += (double)(nloc * sizeof(double));
        }
    }
    free(y);
    if (stats)
        stats->t_exchange += now() - t1;
    return QD_OK;
}
