/* qd_sse_law.h — a feedback law (qd_dynamics.h) evaluated for QD_LV members at once; internal
 * to the core (sse_lanes.c inside its blocks, dynamics.c for the member-by-member path).
 *
 * Every lane is one member's arithmetic alone, in node order, with the functions the
 * qd.Vector methods use (qd_l_atanh as vmath.c; the C library's exp, log, tanh, sin, cos
 * lane by lane, sigmoid as lua_vmath.c; IEEE square root, add, multiply, divide), so the result does not depend on
 * the kernel set, the block a member falls in or the path. */
#ifndef QD_SSE_LAW_H
#define QD_SSE_LAW_H
#include "qd_dynamics.h"
#include "qd_lanemath.h"
#include <math.h>

static inline qd_lv qd_law_libm(qd_lv x, double (*f)(double))
{
    for (int l = 0; l < QD_LV; l++)
        x[l] = f(x[l]);
    return x;
}

/* as qd.Vector's sigmoid (runtime/lua/lua_vmath.c) */
static inline double qd_law_sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* The law's node values for W lane vectors of members at once: ex[i * W + w] the
 * expectation <O_i> of lane vector w, v[k * W + w] node k's values (scratch of nnodes * W);
 * ok[w]: the lanes of vector w in which every value is finite (all bits set). One pass over
 * the nodes serves the W vectors. consts = 0: the constant nodes keep their values in v
 * from an earlier call (they are finite: qd_law_check). A value that is not finite can
 * disappear only through a division by it, min, max, exp, tanh or sigmoid (every other
 * operation keeps it non-finite), so those operands and the nout outputs are checked. */
static inline qd_li qd_law_finite(qd_lv x)
{
    return (x - x) == 0;   /* false for +-inf and NaN */
}

static inline void qd_law_eval(const qd_sse_law *L, size_t nout, const qd_lv *ex, double t, qd_lv *v, size_t W,
                               qd_li *ok, int consts)
{
    for (size_t w = 0; w < W; w++)
        ok[w] = (qd_li){0} - 1;
    for (size_t i = 0; i < L->nnodes; i++) {
        const qd_law_node *nd = &L->nodes[i];
        if (nd->op == QD_LAW_CONST && !consts)
            continue;
        qd_lv *r = v + i * W;
        const qd_lv *a = v + (size_t)nd->a * W, *b = v + (size_t)nd->b * W;
        switch (nd->op) {
        case QD_LAW_CONST: for (size_t w = 0; w < W; w++) r[w] = qd_l_set1(nd->c); break;
        case QD_LAW_TIME: for (size_t w = 0; w < W; w++) r[w] = qd_l_set1(t); break;
        case QD_LAW_EXPECT: for (size_t w = 0; w < W; w++) r[w] = ex[(size_t)nd->c * W + w]; break;
        case QD_LAW_ADD: for (size_t w = 0; w < W; w++) r[w] = a[w] + b[w]; break;
        case QD_LAW_SUB: for (size_t w = 0; w < W; w++) r[w] = a[w] - b[w]; break;
        case QD_LAW_MUL: for (size_t w = 0; w < W; w++) r[w] = a[w] * b[w]; break;
        case QD_LAW_DIV:
            for (size_t w = 0; w < W; w++) {
                ok[w] &= qd_law_finite(b[w]);
                r[w] = a[w] / b[w];
            }
            break;
        case QD_LAW_MIN:
            for (size_t w = 0; w < W; w++) {
                ok[w] &= qd_law_finite(a[w]) & qd_law_finite(b[w]);
                r[w] = qd_l_select(b[w] < a[w], b[w], a[w]);
            }
            break;
        case QD_LAW_MAX:
            for (size_t w = 0; w < W; w++) {
                ok[w] &= qd_law_finite(a[w]) & qd_law_finite(b[w]);
                r[w] = qd_l_select(b[w] > a[w], b[w], a[w]);
            }
            break;
        case QD_LAW_NEG: for (size_t w = 0; w < W; w++) r[w] = -a[w]; break;
        case QD_LAW_ABS:
            for (size_t w = 0; w < W; w++)
                r[w] = (qd_lv)((qd_lu)a[w] & 0x7FFFFFFFFFFFFFFFULL);
            break;
        case QD_LAW_SQRT:
            for (size_t w = 0; w < W; w++)
                r[w] = qd_l_select(a[w] >= 0, qd_l_sqrt(a[w]), qd_l_set1(NAN));
            break;
        case QD_LAW_EXP:
            for (size_t w = 0; w < W; w++) {
                ok[w] &= qd_law_finite(a[w]);
                r[w] = qd_law_libm(a[w], exp);
            }
            break;
        case QD_LAW_LOG: for (size_t w = 0; w < W; w++) r[w] = qd_law_libm(a[w], log); break;
        case QD_LAW_TANH:
            for (size_t w = 0; w < W; w++) {
                ok[w] &= qd_law_finite(a[w]);
                r[w] = qd_law_libm(a[w], tanh);
            }
            break;
        case QD_LAW_ATANH:
            for (size_t w = 0; w < W; w++) {
                qd_lv x = a[w], ax = (qd_lv)((qd_lu)x & 0x7FFFFFFFFFFFFFFFULL);
                qd_li in = ax < 1;   /* outside (-1, 1): not finite, flagged below */
                r[w] = qd_l_select(in, qd_l_atanh(qd_l_select(in, x, qd_l_set1(0))), qd_l_set1(NAN));
            }
            break;
        case QD_LAW_SIN: for (size_t w = 0; w < W; w++) r[w] = qd_law_libm(a[w], sin); break;
        case QD_LAW_COS: for (size_t w = 0; w < W; w++) r[w] = qd_law_libm(a[w], cos); break;
        case QD_LAW_SIGMOID:
            for (size_t w = 0; w < W; w++) {
                ok[w] &= qd_law_finite(a[w]);
                r[w] = qd_law_libm(a[w], qd_law_sigmoid);
            }
            break;
        default: for (size_t w = 0; w < W; w++) r[w] = qd_l_set1(NAN); break;   /* qd_sse_run checks ops first */
        }
    }
    for (size_t f = 0; f < nout; f++)
        for (size_t w = 0; w < W; w++)
            ok[w] &= qd_law_finite(v[(size_t)L->out[f] * W + w]);
}

/* qd_sse_run's check of a law for nF feedback terms on n qubits (NULL: fine, else why not) */
static inline const char *qd_law_check(const qd_sse_law *L, size_t nF, int n)
{
    if (!L->nnodes || !L->nodes || !L->out)
        return "a feedback law needs nodes and one output per feedback term";
    if (L->nnodes > ((size_t)1 << 24) || L->nexp > 4096)
        return "feedback law: at most 2^24 operations and 4096 expectation values";
    for (size_t i = 0; i < L->nnodes; i++) {
        const qd_law_node *nd = &L->nodes[i];
        if (nd->op < 0 || nd->op >= QD_LAW_NOPS)
            return "feedback law: unknown operation";
        int binary = nd->op >= QD_LAW_ADD && nd->op <= QD_LAW_MAX, unary = nd->op >= QD_LAW_NEG;
        if ((binary || unary) && nd->a >= i)
            return "feedback law: a node reads a later one";
        if (binary && nd->b >= i)
            return "feedback law: a node reads a later one";
        if (nd->op == QD_LAW_EXPECT && !(nd->c >= 0 && nd->c < (double)L->nexp && nd->c == floor(nd->c)))
            return "feedback law: expectation index out of range";
        if (nd->op == QD_LAW_CONST && !isfinite(nd->c))
            return "feedback law: constants must be finite";
    }
    for (size_t f = 0; f < nF; f++)
        if (L->out[f] >= L->nnodes)
            return "feedback law: output node out of range";
    for (size_t i = 0; i < L->nexp; i++)
        if (L->exps[i].n != n || qd_ps_max_imag(&L->exps[i]) > 1e-12)
            return "feedback law: its observables must be Hermitian Pauli sums on the state's qubits";
    return NULL;
}
#endif
