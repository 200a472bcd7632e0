/* sse_lanes.c — SSE trajectories of small registers with QD_LV members side by side.
 *
 * dynamics.c's member step applies each Pauli sum term by term to one member's 2^n
 * amplitudes; for a qubit or two that is a few multiplications per call, and the calls, the
 * per-member loops and the C library's log/sin/cos of the Gaussian increments are most of
 * the time. Here a block of QD_LV members (qd_lanemath.h: the vector width) is laid out as
 * structure-of-arrays (row b of the block: amplitude b of every member) and every operation of the step
 * is one lane-wise vector operation: operators are precomputed as grouped weights
 * ((O psi)[b] = sum_g w_g[b] psi[b ^ x_g]), feedback coefficients are per-lane vectors, and
 * the increments come from qd_lanemath.h's Box-Muller (the same numbers rng.c's
 * qd_rng_gauss gives each member one at a time, which the generic path draws).
 *
 * Every lane does a member's arithmetic alone (no sum crosses lanes), in the same order in
 * every kernel set and without fused multiply-adds, so a member's trajectory has the same
 * bits whatever the member count, the block it falls in, the thread count or the set. It
 * is not bitwise the generic path's (another summation order); tests/c/test_dynamics.c
 * checks the two against each other with the same increments.
 *
 * The step is dynamics.c's (qd_dynamics.h documents the schemes):
 *   a_k = <psi|A_k|psi>, nv = psi - i s dt H psi - i dt sum_f c_f F_f psi,
 *   Euler:   nv += -(g/2) dt A_k (A_k - a_k) psi + ((g/2) dt a_k + sqrt(g) dW_k)(A_k - a_k) psi
 *   Rouchon: dy_k = 2 sqrt(g) a_k dt + dW_k; nv += sqrt(g) dy_k A_k psi
 *            + sum_l c_kl A_k A_l psi, c_kk = g (dy_k^2 / 2 - dt),
 *              c_kl = sqrt(g_k g_l) dy_k dy_l / 2,
 * then psi = nv / |nv| (Rouchon, or Euler with normalize). */
#include "qd_dynamics.h"
#include "qd_lanemath.h"
#include "qd_sse_lanes.h"
#include "qd_sse_law.h"
#include <math.h>
#include <string.h>

/* a Pauli sum as grouped weights: (O psi)[b] = sum_g w[g][b] psi[b ^ x[g]] */
typedef struct {
    size_t ng;
    uint64_t *x;
    double *w;   /* ng x d complex (re, im) */
} lop;

struct qd_sse_lanes {
    int n;
    size_t d, m, nF, nobs;
    lop H;       /* -i s dt H (s = -1 in reverse time); ng = 0: none */
    lop *A;      /* A[0..m) */
    lop *F;      /* F[0..nF): term f alone, coefficient 1 */
    lop *obs;    /* obs[0..nobs) */
    size_t nexp; /* a feedback law's observables (o->law), evaluated in the block */
    lop *lexp;
    /* sqrt(gamma_k) and sqrt(gamma_k gamma_l), computed once (the step's loops would redo
     * them: the stores to lane vectors may alias o->gamma) */
    double sg[QD_SSE_LANES_MAX_M], sgg[QD_SSE_LANES_MAX_M][QD_SSE_LANES_MAX_M];
    /* every measured A_k diagonal (m >= 2): the Rouchon step's A terms are one diagonal,
     * (S_b + S_b^2 / 2 - dt sum_k g_k a_k(b)^2) psi_b with S_b = sum_k sqrt(g_k) dy_k a_k(b)
     * (a_k(b) the real diagonal of A_k), O(m) per amplitude instead of m^2 operator products;
     * qd2[b] = sum_k g_k a_k(b)^2 */
    int diag;
    double qd2[(size_t)1 << QD_SSE_LANES_MAX_QUBITS];
    const qd_sse_opts *o;
};

static int lop_build(lop *L, const qd_pauli_sum *P, size_t t0, size_t t1, int unit, qd_c alpha,
                     size_t d)
{
    L->ng = 0;
    L->x = qd_malloc(sizeof(uint64_t) * (t1 - t0 + 1));
    L->w = qd_calloc((t1 - t0 + 1) * d * 2, sizeof(double));
    if (!L->x || !L->w)
        return 0;
    for (size_t t = t0; t < t1; t++) {
        uint64_t x = P->x[t], z = P->z[t];
        size_t g = 0;
        while (g < L->ng && L->x[g] != x)
            g++;
        if (g == L->ng)
            L->x[L->ng++] = x;
        static const qd_c ip[4] = {1, I, -1, -I};
        qd_c cc = alpha * (unit ? 1 : P->c[t]) * ip[__builtin_popcountll(x & z) & 3];
        double *w = L->w + g * d * 2;
        for (size_t b = 0; b < d; b++) {   /* (P psi)[b] = i^ny (-1)^|src & z| psi[src] */
            qd_c v = __builtin_parityll((b ^ x) & z) ? -cc : cc;
            w[2 * b] += creal(v);
            w[2 * b + 1] += cimag(v);
        }
    }
    return 1;
}

static void lop_free(lop *L)
{
    qd_free(L->x);
    qd_free(L->w);
}

void qd_sse_lanes_free(qd_sse_lanes *P)
{
    if (!P)
        return;
    lop_free(&P->H);
    for (size_t k = 0; k < P->m; k++)
        lop_free(&P->A[k]);
    for (size_t f = 0; f < P->nF; f++)
        lop_free(&P->F[f]);
    for (size_t i = 0; i < P->nobs; i++)
        lop_free(&P->obs[i]);
    for (size_t i = 0; i < P->nexp; i++)
        lop_free(&P->lexp[i]);
    qd_free(P->lexp);
    qd_free(P->A);
    qd_free(P->F);
    qd_free(P->obs);
    qd_free(P);
}

qd_sse_lanes *qd_sse_lanes_new(const qd_sse_opts *o, int n)
{
    if (n > QD_SSE_LANES_MAX_QUBITS || o->m > QD_SSE_LANES_MAX_M ||
        (o->F && o->F->nterms > QD_SSE_LANES_MAX_F))
        return NULL;
    qd_sse_lanes *P = qd_calloc(1, sizeof *P);
    if (!P)
        return NULL;
    size_t d = (size_t)1 << n, nF = o->F ? o->F->nterms : 0;
    P->n = n;
    P->d = d;
    P->o = o;
    for (size_t k = 0; k < o->m; k++) {
        P->sg[k] = sqrt(o->gamma[k]);
        for (size_t l = 0; l < o->m; l++)
            P->sgg[k][l] = sqrt(o->gamma[k] * o->gamma[l]);
    }
    P->A = qd_calloc(o->m ? o->m : 1, sizeof(lop));
    P->F = qd_calloc(nF ? nF : 1, sizeof(lop));
    P->obs = qd_calloc(o->nobs ? o->nobs : 1, sizeof(lop));
    size_t nexp = o->law ? o->law->nexp : 0;
    P->lexp = qd_calloc(nexp ? nexp : 1, sizeof(lop));
    int ok = P->A && P->F && P->obs && P->lexp;
    if (ok && o->H)
        ok = lop_build(&P->H, o->H, 0, o->H->nterms, 0, -I * (o->reverse ? -o->dt : o->dt), d);
    for (size_t k = 0; ok && k < o->m; k++, P->m++)
        ok = lop_build(&P->A[k], &o->A[k], 0, o->A[k].nterms, 0, 1, d);
    for (size_t f = 0; ok && f < nF; f++, P->nF++)
        ok = lop_build(&P->F[f], o->F, f, f + 1, 1, 1, d);
    for (size_t i = 0; ok && i < o->nobs; i++, P->nobs++)
        ok = lop_build(&P->obs[i], &o->obs[i], 0, o->obs[i].nterms, 0, 1, d);
    for (size_t i = 0; ok && i < nexp; i++, P->nexp++)
        ok = lop_build(&P->lexp[i], &o->law->exps[i], 0, o->law->exps[i].nterms, 0, 1, d);
    if (!ok) {
        qd_sse_lanes_free(P);
        return NULL;
    }
    P->diag = o->scheme == QD_SSE_ROUCHON && P->m >= 2;
    for (size_t k = 0; k < P->m; k++) {
        const lop *A = &P->A[k];
        if (A->ng > 1 || (A->ng == 1 && A->x[0] != 0))
            P->diag = 0;
        for (size_t b = 0; A->ng == 1 && b < d; b++)
            if (A->w[2 * b + 1] != 0)
                P->diag = 0;
    }
    for (size_t b = 0; P->diag && b < d; b++) {
        double q = 0;
        for (size_t k = 0; k < P->m; k++) {
            double a = P->A[k].ng ? P->A[k].w[2 * b] : 0;
            q += o->gamma[k] * (a * a);
        }
        P->qd2[b] = q;
    }
    return P;
}

size_t qd_sse_lanes_unit(const qd_sse_lanes *P)
{
    return P->d <= 2 ? (size_t)QD_LV * QD_SSE_LANES_R : QD_LV;
}

/* lane vectors of one group: psi, nv, t, u[0..m), its feedback coefficients (re, im), a law's
 * expectations and node values */
static size_t group_vectors(const qd_sse_lanes *P)
{
    return (P->m + 3) * 2 * P->d + 2 * P->nF + (P->o->law ? P->nexp + P->o->law->nnodes : 0);
}

size_t qd_sse_lanes_scratch(const qd_sse_lanes *P)
{
    return group_vectors(P) * qd_sse_lanes_unit(P);   /* doubles */
}

/* members a[0..nl) into the block S (rows 0..d: real parts, d..2d: imaginary parts; lanes
 * >= nl zero), and back */
static void lanes_in(qd_lv *S, const qd_c *a, size_t d, size_t nl)
{
    for (size_t i = 0; i < 2 * d; i++)
        S[i] = qd_l_set1(0);
    for (size_t l = 0; l < nl; l++)
        for (size_t i = 0; i < d; i++) {
            S[i][l] = creal(a[l * d + i]);
            S[d + i][l] = cimag(a[l * d + i]);
        }
}

static void lanes_out(const qd_lv *S, qd_c *a, size_t d, size_t nl)
{
    for (size_t l = 0; l < nl; l++)
        for (size_t i = 0; i < d; i++)
            a[l * d + i] = CMPLX(S[i][l], S[d + i][l]);
}

/* out (+)= O p, lane-uniform weights (inlined with a constant d: the loops unroll) */
static inline __attribute__((always_inline)) void lop_apply(const lop *O, size_t d, const qd_lv *p,
                                                            qd_lv *out, int acc)
{
    const qd_lv *pr = p, *pi = p + d;
    qd_lv *outr = out, *outi = out + d;
    if (!acc)
        for (size_t b = 0; b < 2 * d; b++)
            out[b] = qd_l_set1(0);
    for (size_t g = 0; g < O->ng; g++) {
        uint64_t x = O->x[g];
        const double *w = O->w + g * d * 2;
        for (size_t b = 0; b < d; b++) {
            size_t s = b ^ x;
            double wr = w[2 * b], wi = w[2 * b + 1];
            if (wi == 0) {
                if (wr == 0)
                    continue;
                outr[b] += wr * pr[s];
                outi[b] += wr * pi[s];
            } else if (wr == 0) {
                outr[b] -= wi * pi[s];
                outi[b] += wi * pr[s];
            } else {
                outr[b] += wr * pr[s] - wi * pi[s];
                outi[b] += wr * pi[s] + wi * pr[s];
            }
        }
    }
}

/* (O p)[b] alone, with lop_apply's arithmetic in its order (from 0, the groups in turn), so
 * the same bits without storing O p */
static inline __attribute__((always_inline)) void lop_entry(const lop *O, size_t d, const qd_lv *p, size_t b,
                                                            qd_lv *qr, qd_lv *qi)
{
    const qd_lv *pr = p, *pi = p + d;
    qd_lv r = qd_l_set1(0), i = qd_l_set1(0);
    for (size_t g = 0; g < O->ng; g++) {
        size_t s = b ^ O->x[g];
        double wr = O->w[(g * d + b) * 2], wi = O->w[(g * d + b) * 2 + 1];
        if (wi == 0) {
            if (wr == 0)
                continue;
            r += wr * pr[s];
            i += wr * pi[s];
        } else if (wr == 0) {
            r -= wi * pi[s];
            i += wi * pr[s];
        } else {
            r += wr * pr[s] - wi * pi[s];
            i += wr * pi[s] + wi * pr[s];
        }
    }
    *qr = r;
    *qi = i;
}

/* Re <p|O|p> lane-wise: lop_apply then lane_re_inner, the same bits, nothing stored */
static inline __attribute__((always_inline)) qd_lv lop_expect(const lop *O, size_t d, const qd_lv *p)
{
    qd_lv s = qd_l_set1(0);
    for (size_t b = 0; b < d; b++) {
        qd_lv qr, qi;
        lop_entry(O, d, p, b, &qr, &qi);
        s += p[b] * qr + p[d + b] * qi;
    }
    return s;
}

/* Re <p|q> lane-wise, amplitudes in order */
static inline __attribute__((always_inline)) qd_lv lane_re_inner(const qd_lv *p, const qd_lv *q, size_t d)
{
    qd_lv s = qd_l_set1(0);
    for (size_t b = 0; b < d; b++)
        s += p[b] * q[b] + p[d + b] * q[d + b];
    return s;
}

/* <O_i> of the block's lanes into vals (sse_observe_member's layout) */
static void lanes_observe(const qd_sse_lanes *P, const qd_lv *psi, size_t j0, size_t nl, size_t count,
                          double *vals, size_t nsave, size_t idx)
{
    for (size_t i = 0; i < P->nobs; i++) {
        qd_lv v = lop_expect(&P->obs[i], P->d, psi);
        for (size_t l = 0; l < nl; l++)
            vals[(i * nsave + idx) * count + j0 + l] = v[l];
    }
}

void qd_sse_lanes_observe0(const qd_sse_lanes *P, const qd_c *a, size_t count, double *vals,
                           size_t nsave, double *scr)
{
    size_t d = P->d;
    qd_lv *psi = (qd_lv *)scr;
    for (size_t j0 = 0; j0 < count; j0 += QD_LV) {
        size_t nl = count - j0 < QD_LV ? count - j0 : QD_LV;
        lanes_in(psi, a + j0 * d, d, nl);
        lanes_observe(P, psi, j0, nl, count, vals, nsave, 0);
    }
}

/* Steps [s0, s1) of members j0 .. j0 + nl - 1 (a points at member j0). fc: the feedback
 * coefficients (fc_stride 0: shared; nF: member j's at fc + (j - j0) * nF). rngs, bad: the
 * block's entries. Returns 1 if qd_interrupt stopped it. */
/* the lanes whose norm failed at step st (0-based), once each (idle lanes never fail) */
static void mark_bad(qd_li okm, size_t nl, size_t *bad, size_t st)
{
    for (size_t l = 0; l < nl; l++)
        if (!okm[l] && !bad[l])
            bad[l] = st + 1;
}

/* a feedback law's coefficients for the R groups at step st (0-based): their expectations
 * (ex[i * R + r]), node values (val) and the outputs into cre / cim (group r's term f at
 * r * nF + f; real coefficients; the constants evaluated at the block's first step only). A
 * lane where a value is not finite gets 0 and, if it is a member, is marked failed by the
 * law (bad, once). */
static inline __attribute__((always_inline)) void
law_coefficients(const qd_sse_lanes *P, qd_lv *const *psi, qd_lv *ex, qd_lv *val, qd_lv *cre,
                 qd_lv *cim, const size_t *nlr, size_t *bad, size_t st, int first, size_t d, int R)
{
    const qd_sse_opts *o = P->o;
    const qd_sse_law *law = o->law;
    size_t nF = P->nF;
    for (int r = 0; r < R; r++)
        for (size_t i = 0; i < P->nexp; i++)
            ex[i * (size_t)R + (size_t)r] = lop_expect(&P->lexp[i], d, psi[r]);
    double tm = o->reverse ? o->t0 - (double)st * o->dt : o->t0 + (double)st * o->dt;
    qd_li ok[QD_SSE_LANES_R];
    qd_law_eval(law, nF, ex, tm, val, (size_t)R, ok, first);
    for (int r = 0; r < R; r++) {
        for (size_t f = 0; f < nF; f++) {
            cre[(size_t)r * nF + f] = qd_l_select(ok[r], val[(size_t)law->out[f] * (size_t)R + (size_t)r], qd_l_set1(0));
            cim[(size_t)r * nF + f] = qd_l_set1(0);
        }
        if (qd_l_any(~ok[r]))
            for (size_t l = 0; l < nlr[r]; l++)
                if (!ok[r][l] && !bad[(size_t)r * QD_LV + l])
                    bad[(size_t)r * QD_LV + l] = (st + 1) | QD_SSE_LAW_FAILED;
    }
}

#if QD_LV == 2
/* GCC 12 dies (internal compiler error in gimple-isel) when this is inlined into the two-group
 * block with 2-wide vectors (the portable set): a call per group and step there */
#define QD_NORM_INLINE __attribute__((noinline))
#else
#define QD_NORM_INLINE inline __attribute__((always_inline))
#endif
/* psi = nv / |nv| (normalize) or nv, lane-wise; lanes whose norm is not positive and finite
 * are marked in bad at step st */
static QD_NORM_INLINE void lanes_normalize(qd_lv *psi, const qd_lv *nv, size_t d, int normalize, size_t nl,
                                           size_t *bad, size_t st)
{
    qd_lv nn = lane_re_inner(nv, nv, d);
    qd_li okm = (nn < INFINITY) & ((nn > 0) | ((qd_li){0} - (normalize ? 0 : 1)));
    if (qd_l_any(~okm))
        mark_bad(okm, nl, bad, st);
    if (normalize) {
        qd_lv f = 1.0 / qd_l_sqrt(qd_l_select(okm, nn, qd_l_set1(1)));
        for (size_t b = 0; b < 2 * d; b++)
            psi[b] = nv[b] * f;
    } else
        for (size_t b = 0; b < 2 * d; b++)
            psi[b] = nv[b];
}

/* the measurement terms of a group's step into nv (qd_dynamics.h's schemes; u[k] = A_k psi,
 * a = <A_k>, dW the increments) and its records dy */
static inline __attribute__((always_inline)) void
lanes_measure(const qd_sse_lanes *P, const qd_lv *psi, qd_lv *nv, qd_lv *t, qd_lv *u, const qd_lv *a, const qd_lv *dW,
              qd_lv *dy, size_t d)
{
    const qd_sse_opts *o = P->o;
    size_t m = P->m;
    double dt = o->dt;
    if (o->scheme == QD_SSE_EULER) {
        for (size_t k = 0; k < m; k++) {
            double g = o->gamma[k], sg = P->sg[k];
            qd_lv *v = u + k * 2 * d;
            for (size_t b = 0; b < 2 * d; b++)
                v[b] -= a[k] * psi[b];                 /* (A - a) psi */
            lop_apply(&P->A[k], d, v, t, 0);           /* A (A - a) psi */
            qd_lv cv = (0.5 * g * dt) * a[k] + sg * dW[k];
            for (size_t b = 0; b < 2 * d; b++)
                nv[b] += (-0.5 * g * dt) * t[b] + cv * v[b];
            dy[k] = (2 * sg * dt) * a[k] + dW[k];
        }
        return;
    }
    for (size_t k = 0; k < m; k++)
        dy[k] = (2 * P->sg[k] * dt) * a[k] + dW[k];
    if (P->diag) {
        qd_lv c[QD_SSE_LANES_MAX_M];
        for (size_t k = 0; k < m; k++)
            c[k] = P->sg[k] * dy[k];
        for (size_t b = 0; b < d; b++) {
            qd_lv S = qd_l_set1(0);
            for (size_t k = 0; k < m; k++)
                if (P->A[k].ng)
                    S += c[k] * P->A[k].w[2 * b];
            qd_lv f = S + 0.5 * (S * S) - dt * P->qd2[b];
            nv[b] += f * psi[b];
            nv[d + b] += f * psi[d + b];
        }
        return;
    }
    for (size_t k = 0; k < m; k++) {
        double g = o->gamma[k];
        qd_lv cu = P->sg[k] * dy[k];
        const qd_lv *uk = u + k * 2 * d;
        for (size_t b = 0; b < 2 * d; b++)
            nv[b] += cu * uk[b];
        for (size_t l = 0; l < m; l++) {
            qd_lv c = l == k ? g * (0.5 * (dy[k] * dy[k]) - dt) : (0.5 * P->sgg[k][l]) * (dy[k] * dy[l]);
            lop_apply(&P->A[k], d, u + l * 2 * d, t, 0);   /* A_k A_l psi */
            for (size_t b = 0; b < 2 * d; b++)
                nv[b] += c * t[b];
        }
    }
}

static inline __attribute__((always_inline)) int
block_impl(const qd_sse_lanes *P, qd_c *a, size_t j0, size_t nl, size_t count, size_t s0,
           size_t s1, const qd_c *fc, size_t fc_stride, qd_rng *rngs, size_t *bad, double *vals,
           size_t nsave, double *scr, const size_t d, const int R)
{
    const qd_sse_opts *o = P->o;
    size_t m = P->m, nF = P->nF, per = (m + 3) * 2 * d;   /* a group's state vectors */
    const qd_sse_law *law = o->law;
    qd_lv *psi[QD_SSE_LANES_R], *nv[QD_SSE_LANES_R], *t[QD_SSE_LANES_R], *u[QD_SSE_LANES_R];
    size_t nlr[QD_SSE_LANES_R];   /* members in group r */
    qd_lu key[QD_SSE_LANES_R], ctr[QD_SSE_LANES_R];
    qd_lv spare[QD_SSE_LANES_R];
    int has_spare = rngs[0].has_spare;   /* the same in every member: they draw alike */
    for (int r = 0; r < R; r++) {
        size_t lo = (size_t)r * QD_LV;
        nlr[r] = nl > lo ? (nl - lo < QD_LV ? nl - lo : QD_LV) : 0;
        psi[r] = (qd_lv *)scr + (size_t)r * per;
        nv[r] = psi[r] + 2 * d;
        t[r] = nv[r] + 2 * d;
        u[r] = t[r] + 2 * d;
        lanes_in(psi[r], a + lo * d, d, nlr[r]);
        for (size_t l = nlr[r]; l < QD_LV; l++)   /* idle lanes: a valid state (no 0/0) */
            psi[r][0][l] = 1;
        spare[r] = qd_l_set1(0);
        key[r] = ctr[r] = (qd_lu)qd_l_set1(0);
        for (size_t l = 0; l < nlr[r]; l++) {
            key[r][l] = rngs[lo + l].key;
            ctr[r][l] = rngs[lo + l].ctr;
            spare[r][l] = rngs[lo + l].spare;
        }
    }
    double dt = o->dt, sq = sqrt(dt);
    /* after the groups' states: the feedback coefficients, lane-wise (group r's term f at
     * cre[r * nF + f]), then a law's expectations and node values for all groups */
    qd_lv *cre = (qd_lv *)scr + (size_t)R * ((m + 3) * 2 * d), *cim = cre + (size_t)R * nF;
    qd_lv *lex = cim + (size_t)R * nF, *lval = lex + (size_t)R * P->nexp;
    for (int r = 0; r < R && !law; r++)
        for (size_t f = 0; f < nF; f++)
            for (int l = 0; l < QD_LV; l++) {
                /* idle lanes take member j0's coefficients (finite) */
                size_t j = (size_t)l < nlr[r] ? (size_t)r * QD_LV + (size_t)l : 0;
                qd_c c = fc_stride ? fc[j * fc_stride + f] : fc[f];
                cre[(size_t)r * nF + f][l] = creal(c);
                cim[(size_t)r * nF + f][l] = cimag(c);
            }
    int stopped = 0;
    for (size_t st = s0; st < s1; st++) {
        if (qd_interrupt) {
            stopped = 1;
            break;
        }
        if (law)
            law_coefficients(P, psi, lex, lval, cre, cim, nlr, bad, st, st == s0, d, R);
        qd_lv dW[QD_SSE_LANES_R][QD_SSE_LANES_MAX_M], a_[QD_SSE_LANES_R][QD_SSE_LANES_MAX_M];
        qd_lv dy[QD_SSE_LANES_R][QD_SSE_LANES_MAX_M];
        for (size_t k = 0; k < m; k++) {
            if (has_spare)
                for (int r = 0; r < R; r++)
                    dW[r][k] = spare[r] * sq;
            else
                for (int r = 0; r < R; r++) {
                    qd_lv g;
                    qd_l_gauss_pair(key[r], &ctr[r], &g, &spare[r]);
                    dW[r][k] = g * sq;
                }
            has_spare = !has_spare;
        }
        for (int r = 0; r < R; r++)
            for (size_t k = 0; k < m; k++) {
                if (P->diag) {   /* the diagonal step needs <A_k> only, not A_k psi (same bits) */
                    a_[r][k] = lop_expect(&P->A[k], d, psi[r]);
                    continue;
                }
                lop_apply(&P->A[k], d, psi[r], u[r] + k * 2 * d, 0);
                a_[r][k] = lane_re_inner(psi[r], u[r] + k * 2 * d, d);
            }
        for (int r = 0; r < R; r++) {
            for (size_t b = 0; b < 2 * d; b++)
                nv[r][b] = psi[r][b];
            if (P->H.ng)
                lop_apply(&P->H, d, psi[r], nv[r], 1);
            for (size_t f = 0; f < nF; f++) {
                /* nv += (-i dt c_f) (F_f psi), (F_f psi)[b] computed in place */
                qd_lv ar = cim[(size_t)r * nF + f] * dt, ai = -(cre[(size_t)r * nF + f] * dt);
                for (size_t b = 0; b < d; b++) {
                    qd_lv tr, ti;
                    lop_entry(&P->F[f], d, psi[r], b, &tr, &ti);
                    nv[r][b] += ar * tr - ai * ti;
                    nv[r][d + b] += ar * ti + ai * tr;
                }
            }
        }
        for (int r = 0; r < R; r++)
            lanes_measure(P, psi[r], nv[r], t[r], u[r], a_[r], dW[r], dy[r], d);
        for (int r = 0; r < R; r++)
            lanes_normalize(psi[r], nv[r], d, o->scheme == QD_SSE_ROUCHON || o->normalize, nlr[r],
                            bad + (size_t)r * QD_LV, st);
        if (o->records)
            for (int r = 0; r < R; r++)
                for (size_t k = 0; k < m; k++)
                    for (size_t l = 0; l < nlr[r]; l++)
                        o->records[k * o->steps * count + st + (j0 + (size_t)r * QD_LV + l) * o->steps] = dy[r][k][l];
        if (P->nobs && (st + 1) % o->every == 0)
            for (int r = 0; r < R; r++)
                if (nlr[r])
                    lanes_observe(P, psi[r], j0 + (size_t)r * QD_LV, nlr[r], count, vals, nsave,
                                  (st + 1) / o->every);
    }
    for (int r = 0; r < R; r++) {
        size_t lo = (size_t)r * QD_LV;
        lanes_out(psi[r], a + lo * d, d, nlr[r]);
        for (size_t l = 0; l < nlr[r]; l++) {
            rngs[lo + l].ctr = ctr[r][l];
            rngs[lo + l].has_spare = has_spare;
            rngs[lo + l].spare = spare[r][l];
        }
    }
    return stopped;
}

/* one instance per register size, d a constant in each */
int qd_sse_lanes_block(const qd_sse_lanes *P, qd_c *a, size_t j0, size_t nl, size_t count,
                       size_t s0, size_t s1, const qd_c *fc, size_t fc_stride, qd_rng *rngs,
                       size_t *bad, double *vals, size_t nsave, double *scr)
{
#define QD_SSE_BLOCK(D) block_impl(P, a, j0, nl, count, s0, s1, fc, fc_stride, rngs, bad, vals, nsave, scr, D, \
                                   (D) <= 2 ? QD_SSE_LANES_R : 1)
    switch (P->n) {
    case 1: return QD_SSE_BLOCK(2);
    case 2: return QD_SSE_BLOCK(4);
    case 3: return QD_SSE_BLOCK(8);
    case 4: return QD_SSE_BLOCK(16);
    case 5: return QD_SSE_BLOCK(32);
    default: return QD_SSE_BLOCK(P->d);
    }
#undef QD_SSE_BLOCK
}
