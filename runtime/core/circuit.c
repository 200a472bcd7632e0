/* circuit.c — parameterised circuits as op lists (see qd_circuit.h): building, inverse,
 * running on batches of state vectors (ensembles) and on density matrices, the unitary.
 * The forward gate fusion that runs use is circuit_fuse.c.
 *
 * Gates reuse the core's kernels (qd_apply_gate / qd_dm_apply_gate): a shared-parameter
 * gate on an ensemble is one sweep over the whole 2^n x N buffer. Measurements are done
 * member by member (OpenMP over members; each member's arithmetic is sequential, so the
 * result does not depend on the thread count). */
#include "qd_circuit.h"
#include "qd_channel.h"
#include "qd_simd.h"
#include "qd_isa.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define QD_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------ building */
void qd_circuit_init(qd_circuit *c, int n)
{
    memset(c, 0, sizeof *c);
    c->n = n;
}

static void op_free(qd_op *op)
{
    qd_free(op->m);
    qd_free(op->mdag);
    free(op->label);
    free(op->cond);
    op->m = op->mdag = NULL;
    op->label = NULL;
    op->cond = NULL;
}

void qd_circuit_free(qd_circuit *c)
{
    for (size_t i = 0; i < c->nops; i++)
        op_free(&c->ops[i]);
    free(c->ops);
    for (int i = 0; i < c->nslots; i++)
        free(c->names ? c->names[i] : NULL);
    free(c->names);
    int n = c->n;
    qd_circuit_init(c, n);
}

static qd_op *new_op(qd_circuit *c, qd_err *e)
{
    if (c->nops >= QD_CIRC_MAXOPS) {
        qd_fail(e, QD_EARG, "circuit has too many ops (limit %zu)", QD_CIRC_MAXOPS);
        return NULL;
    }
    if (c->nops == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        qd_op *p = realloc(c->ops, cap * sizeof *p);
        if (!p) {
            qd_fail(e, QD_ENOMEM, "not enough memory for a circuit of %zu ops", cap);
            return NULL;
        }
        c->ops = p;
        c->cap = cap;
    }
    qd_op *op = &c->ops[c->nops];
    memset(op, 0, sizeof *op);
    for (int i = 0; i < 3; i++) {
        op->slot[i] = -1;
        op->scale[i] = 1;
    }
    return op;
}

static char *dupstr(const char *s)
{
    if (!s)
        return NULL;
    size_t l = strlen(s) + 1;
    char *d = malloc(l);
    if (d)
        memcpy(d, s, l);
    return d;
}

qd_status qd_circuit_copy(qd_circuit *dst, const qd_circuit *src, qd_err *e)
{
    qd_circuit_init(dst, src->n);
    if (qd_circuit_ensure_slots(dst, src->nslots, e) != QD_OK)
        return e ? e->status : QD_ENOMEM;
    for (int i = 0; i < src->nslots; i++)
        if (src->names && src->names[i] && !(dst->names[i] = dupstr(src->names[i]))) {
            qd_circuit_free(dst);
            return qd_fail(e, QD_ENOMEM, "not enough memory for a circuit copy");
        }
    for (size_t o = 0; o < src->nops; o++) {
        qd_op *op = new_op(dst, e);
        if (!op) {
            qd_circuit_free(dst);
            return e ? e->status : QD_ENOMEM;
        }
        *op = src->ops[o];
        op->m = op->mdag = NULL;
        op->label = NULL;
        op->cond = NULL;
        dst->nops++;
        if (src->ops[o].cond) {
            size_t b = sizeof(int) * 3 * (size_t)op->ncond;
            if (!(op->cond = malloc(b))) {
                qd_circuit_free(dst);
                return qd_fail(e, QD_ENOMEM, "not enough memory for a circuit copy");
            }
            memcpy(op->cond, src->ops[o].cond, b);
        }
        if (src->ops[o].kind == QD_OP_MATRIX || src->ops[o].kind == QD_OP_CHANNEL) {
            size_t dk = (size_t)1 << op->k, b = sizeof(qd_c) * dk * dk;
            if (src->ops[o].kind == QD_OP_CHANNEL)
                b *= src->ops[o].nkraus;
            op->m = qd_malloc(b);
            op->mdag = qd_malloc(b);
            op->label = dupstr(src->ops[o].label);
            if (!op->m || !op->mdag || (src->ops[o].label && !op->label)) {
                qd_circuit_free(dst);
                return qd_fail(e, QD_ENOMEM, "not enough memory for a circuit copy");
            }
            memcpy(op->m, src->ops[o].m, b);
            memcpy(op->mdag, src->ops[o].mdag, b);
        }
    }
    dst->discarded = src->discarded;
    dst->nmeas = src->nmeas;
    dst->nchan = src->nchan;
    dst->ncondops = src->ncondops;
    return QD_OK;
}

qd_status qd_circuit_set_cond(qd_circuit *c, size_t o, const int *mi, const int *bit, const int *val,
                              int n, int neg, qd_err *e)
{
    if (o >= c->nops || (c->ops[o].kind != QD_OP_GATE && c->ops[o].kind != QD_OP_MATRIX))
        return qd_fail(e, QD_EARG, "condition: a gate op expected");
    if (n < 1 || n > QD_COND_MAX)
        return qd_fail(e, QD_EARG, "condition: 1..%d bits expected, got %d", QD_COND_MAX, n);
    int before = c->nmeas;   /* measurements and resets before op o (o is usually the last) */
    for (size_t t = o; t < c->nops; t++)
        before -= c->ops[t].kind == QD_OP_MEASURE || c->ops[t].kind == QD_OP_RESET;
    for (int i = 0; i < n; i++) {
        if (mi[i] < 0 || mi[i] >= before)
            return qd_fail(e, QD_EARG, "condition: measurement %d does not come before op %zu", mi[i] + 1, o + 1);
        if (bit[i] < 0 || bit[i] >= 30 || (val[i] != 0 && val[i] != 1))
            return qd_fail(e, QD_EARG, "condition: bad bit or value");
    }
    int *cd = malloc(sizeof(int) * 3 * (size_t)n);
    if (!cd)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a condition");
    for (int i = 0; i < n; i++) {
        cd[2 * i] = mi[i];
        cd[2 * i + 1] = bit[i];
        cd[2 * n + i] = val[i];
    }
    qd_op *op = &c->ops[o];
    if (!op->cond)
        c->ncondops++;
    free(op->cond);
    op->cond = cd;
    op->ncond = n;
    op->cond_neg = neg != 0;
    return QD_OK;
}

int qd_circ_cond_holds(const qd_op *op, const size_t *out)
{
    int all = 1;
    for (int i = 0; i < op->ncond && all; i++)
        all = (int)((out[op->cond[2 * i]] >> op->cond[2 * i + 1]) & 1) == op->cond[2 * op->ncond + i];
    return op->cond_neg ? !all : all;
}

qd_status qd_circuit_ensure_slots(qd_circuit *c, int count, qd_err *e)
{
    if (count > QD_CIRC_MAXSLOTS)
        return qd_fail(e, QD_EARG, "too many parameter slots (%d, limit %d)", count,
                       QD_CIRC_MAXSLOTS);
    if (count > c->names_cap) {
        int cap = c->names_cap ? c->names_cap : 16;
        while (cap < count)
            cap *= 2;
        char **p = realloc(c->names, sizeof(char *) * (size_t)cap);
        if (!p)
            return qd_fail(e, QD_ENOMEM, "not enough memory for %d parameter slots", count);
        for (int i = c->names_cap; i < cap; i++)
            p[i] = NULL;
        c->names = p;
        c->names_cap = cap;
    }
    if (count > c->nslots)
        c->nslots = count;
    return QD_OK;
}

int qd_circuit_slot(qd_circuit *c, const char *name, int create, qd_err *e)
{
    for (int i = 0; i < c->nslots; i++)
        if (c->names && c->names[i] && strcmp(c->names[i], name) == 0)
            return i;
    if (!create)
        return -1;
    int i = c->nslots;
    if (qd_circuit_ensure_slots(c, i + 1, e) != QD_OK)
        return -1;
    if (!(c->names[i] = dupstr(name))) {
        c->nslots = i;
        qd_fail(e, QD_ENOMEM, "not enough memory for a parameter name");
        return -1;
    }
    return i;
}

static qd_status check_qubits(const qd_circuit *c, const int *qs, int k, const char *what,
                              qd_err *e)
{
    if (k < 1 || k > c->n)
        return qd_fail(e, QD_EARG, "%s: 1..%d qubits expected, got %d", what, c->n, k);
    for (int i = 0; i < k; i++) {
        if (qs[i] < 0 || qs[i] >= c->n)
            return qd_fail(e, QD_EARG, "%s: qubit index 0..%d expected, got %d", what,
                           c->n - 1, qs[i]);
        for (int j = 0; j < i; j++)
            if (qs[j] == qs[i])
                return qd_fail(e, QD_EARG, "%s: distinct qubits expected, got qubit %d twice",
                               what, qs[i]);
        if ((c->discarded >> qs[i]) & 1)
            return qd_fail(e, QD_EARG, "%s: qubit %d was discarded by an earlier measurement",
                           what, qs[i]);
    }
    return QD_OK;
}

qd_status qd_circuit_add_gate(qd_circuit *c, const qd_gate_info *g, const int *qs,
                              const int *slot, const double *scale, const double *offset,
                              qd_err *e)
{
    /* a row of the registry (pointer identity: no name lookup per op, which the OpenQASM
     * reader's 10^6 gates/s would feel) */
    if (!g || qd_gate_get(g->id) != g)
        return qd_fail(e, QD_EARG, "unknown gate");
    qd_status st = check_qubits(c, qs, g->nqubits, g->name, e);
    if (st != QD_OK)
        return st;
    if (g->nqubits > c->n)
        return qd_fail(e, QD_EARG, "'%s' acts on %d qubits, the circuit has %d", g->name,
                       g->nqubits, c->n);
    for (int i = 0; i < g->nparams; i++) {
        if (slot[i] < -1 || slot[i] >= c->nslots)
            return qd_fail(e, QD_EARG, "%s: parameter slot %d out of range (%d slots)", g->name,
                           slot[i] + 1, c->nslots);
        if (!isfinite(scale[i]) || !isfinite(offset[i]))
            return qd_fail(e, QD_EARG, "%s: finite scale and offset expected", g->name);
    }
    qd_op *op = new_op(c, e);
    if (!op)
        return e ? e->status : QD_ENOMEM;
    op->kind = QD_OP_GATE;
    op->g = g;
    op->k = g->nqubits;
    memcpy(op->qs, qs, sizeof(int) * (size_t)op->k);
    for (int i = 0; i < g->nparams; i++) {
        op->slot[i] = slot[i];
        op->scale[i] = slot[i] >= 0 ? scale[i] : 0;
        op->offset[i] = offset[i];
    }
    c->nops++;
    return QD_OK;
}

qd_status qd_circuit_add_matrix(qd_circuit *c, const int *qs, int k, const qd_c *m,
                                const char *label, qd_err *e)
{
    if (k > QD_CIRC_MAXK)
        return qd_fail(e, QD_EARG, "unitary: at most %d qubits expected, got %d", QD_CIRC_MAXK, k);
    qd_status st = check_qubits(c, qs, k, "unitary", e);
    if (st != QD_OK)
        return st;
    size_t dk = (size_t)1 << k, b = sizeof(qd_c) * dk * dk;
    qd_c *mm = qd_malloc(b), *md = qd_malloc(b);
    char *lab = dupstr(label);
    if (!mm || !md || (label && !lab)) {
        qd_free(mm);
        qd_free(md);
        free(lab);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %d-qubit matrix", k);
    }
    memcpy(mm, m, b);
    for (size_t r = 0; r < dk; r++)
        for (size_t cc = 0; cc < dk; cc++)
            md[r + cc * dk] = conj(m[cc + r * dk]);
    qd_op *op = new_op(c, e);
    if (!op) {
        qd_free(mm);
        qd_free(md);
        free(lab);
        return e ? e->status : QD_ENOMEM;
    }
    op->kind = QD_OP_MATRIX;
    op->k = k;
    memcpy(op->qs, qs, sizeof(int) * (size_t)k);
    op->m = mm;
    op->mdag = md;
    op->label = lab;
    c->nops++;
    return QD_OK;
}

qd_status qd_circuit_add_channel(qd_circuit *c, const int *qs, int k, const qd_c *K,
                                 size_t nkraus, const char *label, qd_err *e)
{
    if (k < 1 || k > 6)
        return qd_fail(e, QD_EARG, "a channel in a circuit acts on 1..6 qubits, got %d", k);
    if (nkraus < 1 || nkraus > ((size_t)1 << (2 * k)))
        return qd_fail(e, QD_EARG, "1..%zu Kraus operators expected, got %zu", (size_t)1 << (2 * k), nkraus);
    qd_status st = check_qubits(c, qs, k, "channel", e);
    if (st != QD_OK)
        return st;
    size_t dk = (size_t)1 << k, b = sizeof(qd_c) * dk * dk * nkraus;
    qd_c *m = qd_malloc(b), *mdag = qd_malloc(b);
    char *lab = label ? dupstr(label) : NULL;
    if (!m || !mdag || (label && !lab)) {
        qd_free(m);
        qd_free(mdag);
        free(lab);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a channel op");
    }
    memcpy(m, K, b);
    for (size_t i = 0; i < nkraus; i++)
        for (size_t col = 0; col < dk; col++)
            for (size_t r = 0; r < dk; r++)
                mdag[i * dk * dk + r * dk + col] = conj(m[i * dk * dk + col * dk + r]);
    qd_op *op = new_op(c, e);
    if (!op) {
        qd_free(m);
        qd_free(mdag);
        free(lab);
        return e ? e->status : QD_ENOMEM;
    }
    op->kind = QD_OP_CHANNEL;
    op->k = k;
    memcpy(op->qs, qs, sizeof(int) * (size_t)k);
    op->m = m;
    op->mdag = mdag;
    op->label = lab;
    op->nkraus = nkraus;
    c->nops++;
    c->nchan++;
    return QD_OK;
}

static qd_status add_meas(qd_circuit *c, qd_op_kind kind, const int *qs, int k, int discard,
                          qd_err *e)
{
    qd_status st = check_qubits(c, qs, k, kind == QD_OP_RESET ? "reset" : "measure", e);
    if (st != QD_OK)
        return st;
    if (k > 30)
        return qd_fail(e, QD_EARG, "measure: at most 30 qubits at once, got %d", k);
    if (discard) {
        uint64_t d = c->discarded;
        for (int i = 0; i < k; i++)
            d |= (uint64_t)1 << qs[i];
        int left = 0;
        for (int q = 0; q < c->n; q++)
            left += !((d >> q) & 1);
        if (left == 0)
            return qd_fail(e, QD_EARG, "measure: cannot discard every qubit of the circuit");
    }
    qd_op *op = new_op(c, e);
    if (!op)
        return e ? e->status : QD_ENOMEM;
    op->kind = kind;
    op->k = k;
    memcpy(op->qs, qs, sizeof(int) * (size_t)k);
    op->discard = discard;
    if (discard)
        for (int i = 0; i < k; i++)
            c->discarded |= (uint64_t)1 << qs[i];
    c->nops++;
    c->nmeas++;
    return QD_OK;
}

qd_status qd_circuit_add_measure(qd_circuit *c, const int *qs, int k, int discard, qd_err *e)
{
    return add_meas(c, QD_OP_MEASURE, qs, k, discard != 0, e);
}

qd_status qd_circuit_add_reset(qd_circuit *c, const int *qs, int k, qd_err *e)
{
    return add_meas(c, QD_OP_RESET, qs, k, 0, e);
}

qd_status qd_circuit_shrink(qd_circuit *c, int n, qd_err *e)
{
    if (n < 1 || n > c->n)
        return qd_fail(e, QD_EARG, "circuit size 1..%d expected, got %d", c->n, n);
    for (size_t o = 0; o < c->nops; o++)
        for (int i = 0; i < c->ops[o].k; i++)
            if (c->ops[o].qs[i] >= n)
                return qd_fail(e, QD_EARG, "op %zu acts on qubit %d of a %d-qubit circuit", o + 1,
                               c->ops[o].qs[i], n);
    uint64_t all = n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
    if ((c->discarded & all) == all)
        return qd_fail(e, QD_EARG, "measure: cannot discard every qubit of the circuit");
    c->n = n;
    return QD_OK;
}

int qd_circuit_nout(const qd_circuit *c, int *kept)
{
    int m = 0;
    for (int q = 0; q < c->n; q++)
        if (!((c->discarded >> q) & 1)) {
            if (kept)
                kept[m] = q;
            m++;
        }
    return m;
}

/* ------------------------------------------------------------------ gate algebra
 * (the registry's inverse and shift data: gate_table.c) */
void qd_gate_dmatrix(const qd_gate_info *g, const double *p, int i, qd_c *D)
{
    /* M(a) = A + B e^{iwa} + C e^{-iwa}  =>  dM/da = w/2 [M(a + s) - M(a - s)], s = pi/(2w),
     * exact (no truncation error) */
    double w = qd_gate_freq(g, i), s = M_PI / (2 * w);
    double pp[3], pm[3];
    for (int j = 0; j < g->nparams; j++)
        pp[j] = pm[j] = p[j];
    pp[i] += s;
    pm[i] -= s;
    size_t d = (size_t)1 << g->nqubits;
    qd_c Mp[64], Mm[64];
    qd_gate_matrix(g, pp, Mp);
    qd_gate_matrix(g, pm, Mm);
    for (size_t j = 0; j < d * d; j++)
        D[j] = 0.5 * w * (Mp[j] - Mm[j]);
}

qd_status qd_circuit_inverse(qd_circuit *dst, const qd_circuit *src, qd_err *e)
{
    if (src->nmeas || src->nchan)
        return qd_fail(e, QD_EARG, "a circuit with measurements, resets or channels has no inverse");
    qd_status st = qd_circuit_copy(dst, src, e);
    if (st != QD_OK)
        return st;
    for (size_t o = 0; o < dst->nops / 2; o++) {
        qd_op t = dst->ops[o];
        dst->ops[o] = dst->ops[dst->nops - 1 - o];
        dst->ops[dst->nops - 1 - o] = t;
    }
    for (size_t o = 0; o < dst->nops; o++) {
        qd_op *op = &dst->ops[o];
        if (op->kind == QD_OP_MATRIX) {
            qd_c *t = op->m;
            op->m = op->mdag;
            op->mdag = t;
            continue;
        }
        const qd_gate_info *gi;
        double pi[3];
        qd_gate_inverse(op->g, op->offset, &gi, pi);
        int slot[3] = {op->slot[0], op->slot[1], op->slot[2]};
        double sc[3] = {op->scale[0], op->scale[1], op->scale[2]};
        if (op->g->inv == QD_INV_U) {
            /* (t, f, l) -> (-t, -l, -f), applied to slot and scale as to the offset */
            op->slot[1] = slot[2];
            op->slot[2] = slot[1];
            op->scale[1] = -sc[2];
            op->scale[2] = -sc[1];
            op->scale[0] = -sc[0];
        } else {
            for (int i = 0; i < op->g->nparams; i++)
                op->scale[i] = -sc[i];
        }
        for (int i = 0; i < op->g->nparams; i++)
            op->offset[i] = pi[i];
        op->g = gi;
    }
    return QD_OK;
}

void qd_op_angles(const qd_circuit *c, size_t o, const double *theta, const qd_shift *sh,
                  double *ang)
{
    const qd_op *op = &c->ops[o];
    for (int i = 0; i < 3; i++) {
        ang[i] = op->offset[i];
        if (op->kind == QD_OP_GATE && i < op->g->nparams && op->slot[i] >= 0)
            ang[i] += op->scale[i] * theta[op->slot[i]];
        if (sh && sh->op == o && sh->par == i)
            ang[i] += sh->delta;
    }
}

/* ------------------------------------------------------------------ applying ops */
qd_status qd_circ_apply_op(const qd_circuit *c, size_t o, const double *ang, qd_c *a,
                           size_t count, int inverse, qd_err *e)
{
    const qd_op *op = &c->ops[o];
    if (op->kind == QD_OP_GATE) {
        if (!inverse) {
            qd_apply_gate(a, c->n, count, op->g, op->qs, ang, 0);
        } else {
            const qd_gate_info *gi;
            double pi[3] = {0, 0, 0};
            qd_gate_inverse(op->g, ang, &gi, pi);
            qd_apply_gate(a, c->n, count, gi, op->qs, pi, 0);
        }
        return QD_OK;
    }
    if (op->kind == QD_OP_MATRIX)
        return qd_apply_matrix(a, c->n, count, op->qs, op->k, inverse ? op->mdag : op->m, e);
    return qd_fail(e, QD_EARG, "internal: not a unitary op");
}

qd_status qd_circ_apply_op_dm(const qd_circuit *c, size_t o, const double *ang, qd_c *rho,
                              int inverse, qd_err *e)
{
    const qd_op *op = &c->ops[o];
    if (op->kind == QD_OP_GATE) {
        if (!inverse) {
            qd_dm_apply_gate(rho, c->n, op->g, op->qs, ang);
        } else {
            const qd_gate_info *gi;
            double pi[3] = {0, 0, 0};
            qd_gate_inverse(op->g, ang, &gi, pi);
            qd_dm_apply_gate(rho, c->n, gi, op->qs, pi);
        }
        return QD_OK;
    }
    if (op->kind == QD_OP_MATRIX)
        return qd_dm_apply_matrix(rho, c->n, op->qs, op->k, inverse ? op->mdag : op->m, e);
    if (op->kind == QD_OP_CHANNEL)   /* inverse: the adjoint map sum K^dagger X K (backward) */
        return qd_channel_apply_dm(rho, c->n, op->qs, op->k, inverse ? op->mdag : op->m, op->nkraus,
                                   NULL, QD_CH_AUTO, e);
    return qd_fail(e, QD_EARG, "internal: not a unitary op");
}

size_t qd_circ_pattern(int nq, const int *qs, int k, size_t m, size_t *mask)
{
    size_t pat = 0, msk = 0;
    for (int j = 0; j < k; j++) {
        size_t bit = (size_t)1 << (nq - 1 - qs[j]);
        msk |= bit;
        if ((m >> (k - 1 - j)) & 1)
            pat |= bit;
    }
    if (mask)
        *mask = msk;
    return pat;
}

double qd_circ_project(qd_c *a, int nq, const int *qs, int k, size_t m, int reset)
{
    size_t d = (size_t)1 << nq, mask;
    size_t pat = qd_circ_pattern(nq, qs, k, m, &mask);
    double p = 0;
    for (size_t i = 0; i < d; i++)
        if ((i & mask) == pat)
            p += creal(a[i]) * creal(a[i]) + cimag(a[i]) * cimag(a[i]);
    double sc = p > 0 && isfinite(p) ? 1.0 / sqrt(p) : 0.0;
    if (!(p > 0) || !isfinite(p))
        p = 0;
    for (size_t i = 0; i < d; i++)
        a[i] = (i & mask) == pat ? a[i] * sc : 0;
    if (reset && pat)
        for (size_t i = 0; i < d; i++)
            if ((i & mask) == pat) {
                a[i & ~mask] = a[i];
                a[i] = 0;
            }
    return p;
}

/* Measurement op o (the mi-th measurement) on every member. err[j] set on failure. */
static qd_status measure_all(const qd_circuit *c, size_t o, int mi, qd_c *a, size_t count,
                             qd_meas_ctl *mc, qd_rng *rngs, double *pout, qd_err *e)
{
    const qd_op *op = &c->ops[o];
    const int n = c->n, k = op->k;
    const size_t d = (size_t)1 << n, K = (size_t)1 << k;
    const int reset = op->kind == QD_OP_RESET;
    double *pk = NULL;
    int nt = 1;
#ifdef _OPENMP
    nt = (count > 1 && count * d >= QD_PAR_MIN) ? qd_get_threads() : 1;
#endif
    if (!mc->fixed && !(pk = qd_malloc(sizeof(double) * K * (size_t)nt)))
        return qd_fail(e, QD_ENOMEM, "not enough memory for outcome probabilities");
    size_t bad = (size_t)-1;   /* first failing member (min over members: deterministic) */
    int why = 0;
    #pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (size_t j = 0; j < count; j++) {
        qd_c *aj = a + j * d;
        size_t m;
        int err = 0;
        if (mc->fixed) {
            m = mc->outcomes[j * (size_t)c->nmeas + (size_t)mi];
            if (m >= K)
                err = 2;
        } else {
#ifdef _OPENMP
            double *p = pk + K * (size_t)omp_get_thread_num();
#else
            double *p = pk;
#endif
            qd_probs(aj, n, op->qs, k, p);
            double tot;
            m = qd_select_outcome(p, K, qd_rng_uniform(&rngs[j]), &tot);
            if (!(tot > 0) || !isfinite(tot))
                err = 3;
            mc->outcomes[j * (size_t)c->nmeas + (size_t)mi] = m;
        }
        double pr = 0;
        if (!err) {
            pr = qd_circ_project(aj, n, op->qs, k, m, reset);
            if (pr == 0 && !mc->allow_zero)
                err = 1;
        }
        if (mc->prob)
            mc->prob[j] = mi == 0 ? pr : mc->prob[j] * pr;
        if (pout)
            pout[j] = pr;
        if (err) {
            #pragma omp critical(qd_circ_meas)
            if (j < bad) {
                bad = j;
                why = err;
            }
        }
    }
    qd_free(pk);
    if (bad != (size_t)-1) {
        if (why == 2)
            return qd_fail(e, QD_EARG, "outcome of measurement %d out of range 0..%zu (member %zu)",
                           mi + 1, K - 1, bad + 1);
        if (why == 3)
            return qd_fail(e, QD_ENUMERIC, "cannot measure a state of zero norm (member %zu)",
                           bad + 1);
        return qd_fail(e, QD_ENUMERIC, "outcome %zu of measurement %d has probability 0 (member %zu)",
                       mc->outcomes[bad * (size_t)c->nmeas + (size_t)mi], mi + 1, bad + 1);
    }
    return QD_OK;
}

/* first: the global index of member 0 (a block of a larger ensemble; 0 for a whole one) */
static qd_status run_vec(const qd_circuit *c, const double *theta, qd_c *a, size_t count,
                         qd_meas_ctl *mc, const qd_shift *sh, qd_c *ck, double *pm, int fuse,
                         uint64_t first, qd_err *e)
{
    if (c->nmeas && (!mc || !mc->outcomes || (!mc->fixed && !mc->base)))
        return qd_fail(e, QD_EARG, "internal: measurement control missing");
    if (c->nchan && ck)
        return qd_fail(e, QD_EARG, "no gradient through a channel on pure states (its Kraus operator is "
                                   "sampled): use a DensityMatrix input for gradients of noisy circuits");
    qd_rng *rngs = NULL;
    if (c->nmeas && !mc->fixed) {
        if (!(rngs = qd_malloc(sizeof(qd_rng) * count)))
            return qd_fail(e, QD_ENOMEM, "not enough memory for %zu generators", count);
        for (size_t j = 0; j < count; j++)
            rngs[j] = qd_rng_sub(mc->base, first + j);   /* the global member index */
    }
    if (mc && mc->prob && c->nmeas == 0)
        for (size_t j = 0; j < count; j++)
            mc->prob[j] = 1;
    qd_status st = QD_OK;
    int mi = 0;
    qd_fuser *fz = NULL;
    if (fuse && !(fz = qd_fuser_new(c, theta, sh, a, count))) {
        qd_free(rngs);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the gate fusion state");
    }
    for (size_t o = 0; o < c->nops && st == QD_OK; o++) {
        const qd_op *op = &c->ops[o];
        if (op->cond) {   /* per member, from its own outcomes (mi of them so far) */
            if (fz)
                qd_fuser_flush(fz);
            double ang[3];
            qd_op_angles(c, o, theta, sh, ang);
            const size_t d = (size_t)1 << c->n;
            for (size_t j = 0; j < count && st == QD_OK; j++)
                if (qd_circ_cond_holds(op, mc->outcomes + j * (size_t)c->nmeas))
                    st = qd_circ_apply_op(c, o, ang, a + j * d, 1, 0, e);
            continue;
        }
        if (fz && op->kind != QD_OP_MEASURE && op->kind != QD_OP_RESET && op->kind != QD_OP_CHANNEL) {
            st = qd_fuser_op(fz, o, e);
            continue;
        }
        if (fz)
            qd_fuser_flush(fz);
        if (op->kind == QD_OP_CHANNEL) {
            /* a quantum trajectory: member j from substream first + j (its global index)
             * of the op's own substream of the run's measurement generator (independent of
             * the member count and of the block) */
            if (!mc || !mc->base || mc->fixed) {
                st = qd_fail(e, QD_EARG, "a channel on pure states needs a generator (and has no "
                                         "gradient: use a DensityMatrix input for that)");
                break;
            }
            qd_rng ob = qd_rng_sub(mc->base, ((uint64_t)1 << 40) + o);
            st = qd_channel_apply_traj_at(a, c->n, count, op->qs, op->k, op->m, op->nkraus, &ob,
                                          first, NULL, e);
            continue;
        }
        if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET) {
            if (ck)
                memcpy(ck + (size_t)mi * count * ((size_t)1 << c->n), a,
                       sizeof(qd_c) * count * ((size_t)1 << c->n));
            st = measure_all(c, o, mi, a, count, mc, rngs, pm ? pm + (size_t)mi * count : NULL, e);
            mi++;
        } else {   /* unfused: gate by gate */
            double ang[3];
            qd_op_angles(c, o, theta, sh, ang);
            st = qd_circ_apply_op(c, o, ang, a, count, 0, e);
        }
    }
    if (fz && st == QD_OK)
        qd_fuser_flush(fz);
    qd_fuser_free(fz);
    qd_free(rngs);
    return st;
}

qd_status qd_circuit_run_vec(const qd_circuit *c, const double *theta, qd_c *a, size_t count,
                             qd_meas_ctl *mc, const qd_shift *sh, qd_err *e)
{
    return run_vec(c, theta, a, count, mc, sh, NULL, NULL, 1, 0, e);
}

qd_status qd_circuit_run_vec_at(const qd_circuit *c, const double *theta, qd_c *a, size_t count,
                                qd_meas_ctl *mc, const qd_shift *sh, uint64_t first, qd_err *e)
{
    return run_vec(c, theta, a, count, mc, sh, NULL, NULL, 1, first, e);
}

qd_status qd_circuit_run_vec_unfused(const qd_circuit *c, const double *theta, qd_c *a,
                                     size_t count, qd_meas_ctl *mc, const qd_shift *sh,
                                     qd_err *e)
{
    return run_vec(c, theta, a, count, mc, sh, NULL, NULL, 0, 0, e);
}

qd_status qd_circuit_run_vec_tape(const qd_circuit *c, const double *theta, qd_c *a,
                                  size_t count, qd_meas_ctl *mc, qd_c *ck, double *pm, qd_err *e)
{
    return run_vec(c, theta, a, count, mc, NULL, ck, pm, 1, 0, e);
}

qd_status qd_circuit_run_vec_tape_at(const qd_circuit *c, const double *theta, qd_c *a,
                                     size_t count, qd_meas_ctl *mc, qd_c *ck, double *pm,
                                     uint64_t first, qd_err *e)
{
    return run_vec(c, theta, a, count, mc, NULL, ck, pm, 1, first, e);
}

void qd_circuit_extract_vec(const qd_circuit *c, const qd_c *a, size_t count, qd_c *out)
{
    int kept[QD_MAX_QUBITS];
    int m = qd_circuit_nout(c, kept), n = c->n;
    size_t d = (size_t)1 << n, dout = (size_t)1 << m;
    int low = 1;   /* kept = the last m qubits in order (ancillas first): contiguous blocks */
    for (int t = 0; t < m; t++)
        low &= kept[t] == n - m + t;
    if (low) {
        /* all blocks but one are exactly zero, so their sum is the nonzero block, bitwise */
        #pragma omp parallel for schedule(static) if (count > 1 && count * d >= QD_PAR_MIN)
        for (size_t j = 0; j < count; j++) {
            double *oj = (double *)(out + j * dout);
            const double *aj = (const double *)(a + j * d);
            memcpy(oj, aj, sizeof(qd_c) * dout);
            for (size_t b = 1; b < d / dout; b++) {
                const double *ab = aj + 2 * b * dout;
                #pragma omp simd
                for (size_t r = 0; r < 2 * dout; r++)
                    oj[r] += ab[r];
            }
        }
        return;
    }
    #pragma omp parallel for schedule(static) if (count > 1 && count * d >= QD_PAR_MIN)
    for (size_t j = 0; j < count; j++) {
        qd_c *oj = out + j * dout;
        const qd_c *aj = a + j * d;
        for (size_t r = 0; r < dout; r++)
            oj[r] = 0;
        /* the discarded qubits are in a basis state: exactly one term is nonzero */
        for (size_t i = 0; i < d; i++) {
            if (aj[i] == 0)
                continue;
            size_t r = 0;
            for (int t = 0; t < m; t++)
                r = (r << 1) | ((i >> (n - 1 - kept[t])) & 1);
            oj[r] += aj[i];
        }
    }
}

/* ------------------------------------------------------------------ density matrices */
void qd_circ_dm_dephase(qd_c *rho, int n, const int *qs, int k)
{
    size_t d = (size_t)1 << n, mask;
    qd_circ_pattern(n, qs, k, 0, &mask);
    #pragma omp parallel for schedule(static) if (d * d >= QD_PAR_MIN)
    for (size_t cc = 0; cc < d; cc++)
        for (size_t r = 0; r < d; r++)
            if ((r & mask) != (cc & mask))
                rho[r + cc * d] = 0;
}

/* Reset channel on each qubit in turn (they commute): rho -> sum_m |0><m| rho |m><0|;
 * adjoint != 0: its adjoint map G -> sum_m |m><0| G |0><m|. */
void qd_circ_dm_reset(qd_c *rho, int n, const int *qs, int k, int adjoint)
{
    size_t d = (size_t)1 << n;
    for (int t = 0; t < k; t++) {
        size_t b = (size_t)1 << (n - 1 - qs[t]);
        #pragma omp parallel for schedule(static) if (d * d >= QD_PAR_MIN)
        for (size_t cc = 0; cc < d; cc++) {
            if (cc & b)
                continue;
            for (size_t r = 0; r < d; r++) {
                if (r & b)
                    continue;
                qd_c *p00 = &rho[r + cc * d], *p11 = &rho[(r | b) + (cc | b) * d];
                if (!adjoint) {
                    *p00 += *p11;
                    *p11 = 0;
                } else {
                    *p11 = *p00;
                }
                rho[(r | b) + cc * d] = 0;
                rho[r + (cc | b) * d] = 0;
            }
        }
    }
}

/* ------------------------------------------------------------------ conditional ops on
 * density matrices: rho is kept as a sum of unnormalised branches, one per value of the
 * measured bits that conditions read (P_m rho P_m), so a conditional op acts on exactly the
 * part of rho where its condition holds: the channel sum_m U_m P_m rho P_m U_m^dagger.
 * Bits no condition reads are dephased as usual. */
#define QD_DM_MAXBRANCH 1024

typedef struct {
    qd_c *rho;
    size_t *out;   /* outcomes (only the bits conditions read) per measurement op */
} dm_branch;

static void branches_free(dm_branch *br, size_t nb)
{
    for (size_t b = 0; b < nb; b++) {
        qd_free(br[b].rho);
        free(br[b].out);
    }
    free(br);
}

/* the read bits of measurement op `op` (mask over outcome bits): split every branch */
static qd_status dm_split(const qd_circuit *c, const qd_op *op, int mi, uint64_t rmask, dm_branch **pbr,
                          size_t *pnb, qd_err *e)
{
    const int n = c->n, k = op->k, nm = c->nmeas;
    const size_t d = (size_t)1 << n, dd = d * d;
    int qr[30], qo[30], kr = 0, ko = 0, pos[30];
    for (int j = 0; j < k; j++) {
        if ((rmask >> (k - 1 - j)) & 1) {
            pos[kr] = k - 1 - j;
            qr[kr++] = op->qs[j];
        } else {
            qo[ko++] = op->qs[j];
        }
    }
    const size_t K = (size_t)1 << kr, nb = *pnb;
    if (nb * K > QD_DM_MAXBRANCH)
        return qd_fail(e, QD_EARG, "conditional ops on a density matrix: more than %d branches of measured bits",
                       QD_DM_MAXBRANCH);
    dm_branch *nbr = calloc(nb * K, sizeof *nbr);
    if (!nbr)
        return qd_fail(e, QD_ENOMEM, "not enough memory for the branches of a conditional run");
    size_t cnt = 0;
    for (size_t b = 0; b < nb; b++) {
        dm_branch *src = &(*pbr)[b];
        if (ko)
            qd_circ_dm_dephase(src->rho, n, qo, ko);
        for (size_t m = 0; m < K; m++) {
            size_t mask, pat = qd_circ_pattern(n, qr, kr, m, &mask);
            double tr = 0;
            for (size_t i = 0; i < d; i++)
                if ((i & mask) == pat)
                    tr += creal(src->rho[i + i * d]);
            if (tr == 0)
                continue;   /* an outcome that cannot happen: no branch */
            dm_branch *dst = &nbr[cnt];
            dst->rho = qd_malloc(sizeof(qd_c) * dd);
            dst->out = malloc(sizeof(size_t) * (size_t)(nm ? nm : 1));
            if (!dst->rho || !dst->out) {
                branches_free(nbr, cnt + 1);
                return qd_fail(e, QD_ENOMEM, "not enough memory for the branches of a conditional run");
            }
            cnt++;
            memcpy(dst->out, src->out, sizeof(size_t) * (size_t)nm);
            size_t v = 0;
            for (int t = 0; t < kr; t++)
                if ((m >> (kr - 1 - t)) & 1)
                    v |= (size_t)1 << pos[t];
            dst->out[mi] = v;
            for (size_t cc = 0; cc < d; cc++)
                for (size_t r = 0; r < d; r++)
                    dst->rho[r + cc * d] = ((r & mask) == pat && (cc & mask) == pat) ? src->rho[r + cc * d] : 0;
        }
    }
    branches_free(*pbr, nb);
    *pbr = nbr;
    *pnb = cnt;
    return QD_OK;
}

static qd_status run_dm_branches(const qd_circuit *c, const double *theta, qd_c *rho, const qd_shift *sh,
                                 qd_err *e)
{
    const size_t d = (size_t)1 << c->n, dd = d * d;
    const int nm = c->nmeas;
    uint64_t *rmask = calloc((size_t)nm, sizeof *rmask);
    dm_branch *br = calloc(1, sizeof *br);
    size_t nb = 1;
    if (!rmask || !br || !(br[0].rho = qd_malloc(sizeof(qd_c) * dd)) ||
        !(br[0].out = calloc((size_t)nm, sizeof(size_t)))) {
        free(rmask);
        if (br)
            branches_free(br, 1);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a conditional run");
    }
    memcpy(br[0].rho, rho, sizeof(qd_c) * dd);
    for (size_t o = 0; o < c->nops; o++)
        for (int i = 0; i < c->ops[o].ncond; i++)
            rmask[c->ops[o].cond[2 * i]] |= (uint64_t)1 << c->ops[o].cond[2 * i + 1];
    qd_status st = QD_OK;
    int mi = 0;
    for (size_t o = 0; o < c->nops && st == QD_OK; o++) {
        const qd_op *op = &c->ops[o];
        if (op->kind == QD_OP_MEASURE && rmask[mi]) {
            st = dm_split(c, op, mi, rmask[mi], &br, &nb, e);
        } else if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET) {
            for (size_t b = 0; b < nb; b++)
                if (op->kind == QD_OP_MEASURE)
                    qd_circ_dm_dephase(br[b].rho, c->n, op->qs, op->k);
                else
                    qd_circ_dm_reset(br[b].rho, c->n, op->qs, op->k, 0);
        } else {
            double ang[3];
            qd_op_angles(c, o, theta, sh, ang);
            for (size_t b = 0; b < nb && st == QD_OK; b++)
                if (!op->cond || qd_circ_cond_holds(op, br[b].out))
                    st = qd_circ_apply_op_dm(c, o, ang, br[b].rho, 0, e);
        }
        mi += op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET;
    }
    if (st == QD_OK) {
        memset(rho, 0, sizeof(qd_c) * dd);
        for (size_t b = 0; b < nb; b++)
            for (size_t i = 0; i < dd; i++)
                rho[i] += br[b].rho[i];
    }
    branches_free(br, nb);
    free(rmask);
    return st;
}

qd_status qd_circuit_run_dm(const qd_circuit *c, const double *theta, qd_c *rho,
                            const qd_shift *sh, qd_err *e)
{
    if (c->ncondops)
        return run_dm_branches(c, theta, rho, sh, e);
    for (size_t o = 0; o < c->nops; o++) {
        const qd_op *op = &c->ops[o];
        if (op->kind == QD_OP_MEASURE) {
            qd_circ_dm_dephase(rho, c->n, op->qs, op->k);
        } else if (op->kind == QD_OP_RESET) {
            qd_circ_dm_reset(rho, c->n, op->qs, op->k, 0);
        } else {
            double ang[3];
            qd_op_angles(c, o, theta, sh, ang);
            qd_status st = qd_circ_apply_op_dm(c, o, ang, rho, 0, e);
            if (st != QD_OK)
                return st;
        }
    }
    return QD_OK;
}

void qd_circuit_extract_dm(const qd_circuit *c, const qd_c *rho, qd_c *out)
{
    int kept[QD_MAX_QUBITS];
    int m = qd_circuit_nout(c, kept);
    if (m == c->n) {
        size_t d = (size_t)1 << c->n;
        memcpy(out, rho, sizeof(qd_c) * d * d);
        return;
    }
    qd_ptrace_dm(rho, c->n, kept, m, out);
}

qd_status qd_circuit_unitary(const qd_circuit *c, const double *theta, qd_c *U, qd_err *e)
{
    if (c->nmeas || c->nchan)
        return qd_fail(e, QD_EARG, "a circuit with measurements, resets or channels has no unitary");
    size_t d = (size_t)1 << c->n;
    memset(U, 0, sizeof(qd_c) * d * d);
    for (size_t j = 0; j < d; j++)
        U[j + j * d] = 1;
    return qd_circuit_run_vec(c, theta, U, d, NULL, NULL, e);
}
