/* circuit_fuse.c — the forward gate fusion of circuit runs (qd_circuit.h, "fusion"):
 * runs of 1-qubit gates and cz runs as single passes (also used by the adjoint), and the
 * fuser that compiles a forward run between measurement barriers into fewer passes over
 * the buffer — applied pass by pass with the gate kernels on big registers, or (sweep
 * mode, small registers: the training shape) with members side by side in SIMD lanes.
 * circuit.c's run calls qd_fuser_*; the block comment at "gate fusion (forward)" below
 * states the rules and why results do not depend on the member count or threads. */
#include "qd_circuit.h"
#include "qd_simd.h"
#include "qd_isa.h"
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define QD_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------ fusing 1-qubit runs */
int qd_circ_run1q(const qd_circuit *c, size_t o)
{
    const qd_op *op = &c->ops[o];
    if (op->kind != QD_OP_GATE || op->k != 1 || op->cond)
        return 1;
    size_t r = 1;
    while (o + r < c->nops && r < 64) {
        const qd_op *nx = &c->ops[o + r];
        if (nx->kind != QD_OP_GATE || nx->k != 1 || nx->qs[0] != op->qs[0] || nx->cond)
            break;
        r++;
    }
    return (int)r;
}

void qd_circ_fused_matrix(const qd_circuit *c, size_t o, int len, const double *theta,
                          const qd_shift *sh, qd_c M[4])
{
    M[0] = 1;
    M[1] = 0;
    M[2] = 0;
    M[3] = 1;
    for (int t = 0; t < len; t++) {
        double ang[3];
        qd_c G[4], R[4];
        qd_op_angles(c, o + (size_t)t, theta, sh, ang);
        qd_gate_matrix(c->ops[o + (size_t)t].g, ang, G);
        /* R = G M (column-major 2x2) */
        R[0] = G[0] * M[0] + G[2] * M[1];
        R[1] = G[1] * M[0] + G[3] * M[1];
        R[2] = G[0] * M[2] + G[2] * M[3];
        R[3] = G[1] * M[2] + G[3] * M[3];
        memcpy(M, R, sizeof R);
    }
}

/* Runs of consecutive cz ops (any qubits) with registers of at most QD_CZRUN_MAXQ qubits
 * are applied as one +-1 diagonal: sign(i) = (-1)^(number of cz whose both bits are set
 * in i), from a table of 2^n signs. */
#define QD_CZRUN_MAXQ 10

static int is_cz(const qd_op *op)
{
    return op->kind == QD_OP_GATE && op->k == 2 && op->g->nparams == 0 && !op->cond &&
           op->g->id == QD_G_CZ;
}

int qd_circ_runcz(const qd_circuit *c, size_t o, int dir)
{
    if (c->n > QD_CZRUN_MAXQ || !is_cz(&c->ops[o]))
        return 1;
    int r = 1;
    while (r < 64) {
        if (dir > 0 ? o + (size_t)r >= c->nops : (size_t)r > o)
            break;
        if (!is_cz(&c->ops[dir > 0 ? o + (size_t)r : o - (size_t)r]))
            break;
        r++;
    }
    return r;
}

void qd_circ_apply_czrun(const qd_circuit *c, size_t o0, int len, qd_c *a, size_t count)
{
    const int n = c->n;
    const size_t d = (size_t)1 << n, amps = d * count;
    /* signs per double (re, im), repeated over a chunk of P >= d amplitudes (P a multiple
     * of d, so the flat array is a whole number of periods per chunk) */
    double sg[2 * ((size_t)1 << QD_CZRUN_MAXQ)];
    const size_t P = d > 64 ? d : 64;
    size_t mk[64];
    for (int t = 0; t < len; t++) {
        const qd_op *op = &c->ops[o0 + (size_t)t];
        mk[t] = ((size_t)1 << (n - 1 - op->qs[0])) | ((size_t)1 << (n - 1 - op->qs[1]));
    }
    for (size_t i = 0; i < P; i++) {
        size_t li = i & (d - 1);
        int par = 0;
        for (int t = 0; t < len; t++)
            par ^= (li & mk[t]) == mk[t];
        sg[2 * i] = sg[2 * i + 1] = par ? -1.0 : 1.0;
    }
    double *x = (double *)a;
    size_t nch = (amps + P - 1) / P;
    if (amps >= QD_PAR_MIN && count > 1) {
        #pragma omp parallel for schedule(static)
        for (size_t ch = 0; ch < nch; ch++) {
            size_t k0 = 2 * P * ch, k1 = k0 + 2 * P < 2 * amps ? k0 + 2 * P : 2 * amps;
            double *xc = x + k0;
            #pragma omp simd
            for (size_t k = 0; k < k1 - k0; k++)
                xc[k] *= sg[k];
        }
    } else {
        for (size_t ch = 0; ch < nch; ch++) {
            size_t k0 = 2 * P * ch, k1 = k0 + 2 * P < 2 * amps ? k0 + 2 * P : 2 * amps;
            double *xc = x + k0;
            #pragma omp simd
            for (size_t k = 0; k < k1 - k0; k++)
                xc[k] *= sg[k];
        }
    }
}

/* ------------------------------------------------------------------ gate fusion (forward)
 * A forward run with bound parameters is compiled on the fly between measurement/reset
 * barriers into fewer passes over the buffer. Pending work, in circuit order
 *     (applied so far)  D  P[0] P[1] ... P[n-1]
 * D: one diagonal over at most QD_FUSE_MAXD qubits dq[] (a table of 2^nd phases, dq[0]
 * the MSB of its index); P[q]: the product of the 1-qubit gates on q since q was last
 * flushed. The P[q] act on distinct qubits and commute with each other. Rules:
 *  - 1-qubit gate G on q: P[q] = G P[q]; if nothing is pending on q and G is diagonal it
 *    joins D instead (D and the other P commute with it, P[q] = 1).
 *  - diagonal gate on qs (cz, cp, crz, rzz, ccz, ... judged from its matrix): for q in qs,
 *    a diagonal P[q] is merged into D (diagonals commute), else P[q] is applied (after D if
 *    q is a qubit of D, else directly: it commutes with D); then the gate joins D (D is
 *    applied first if the union of qubits would exceed QD_FUSE_MAXD).
 *    Before that, a non-diagonal P[q] that factors as diag(u0, u1) R with R real (rz ry,
 *    a lone ry or h, ...) is split: R is applied (a real 2x2, fewer flops) and the phases
 *    stay pending as a diagonal P[q], so they join D too.
 *  - any other op (general multi-qubit gate, matrix) on qs: P[q] applied for q in qs, D
 *    applied if it shares a qubit with qs, then the op; it commutes with what stays.
 *  - a measurement/reset and the end: D, then every P (the tape needs the true state; in
 *    sweep mode a P[q] is split as above first, so all the phases go as one diagonal).
 * Registers of more than QD_FUSE_SWEEPQ qubits apply each resulting pass at once with the
 * gate kernels (a pending piece holding exactly one gate with that gate's own kernel).
 * Registers of QD_FUSE_SWEEPMIN..QD_FUSE_SWEEPQ qubits (ensembles of small states: the
 * training shape) queue the passes and then apply all of them to QD_VL members at a time,
 * side by side in SIMD lanes, while they are in L1 (fz_drain). There the real factor R of
 * a split is queued as diag(r0, r1) T with T of unit diagonal (one FMA per output; the
 * diagonal joins D) and up to QD_FUSE_GMAX such passes go through registers together.
 * Either way every member is transformed alone by the same operations: results do not
 * depend on the member count or on threads. The tape forward (c:grad) is this same run. */
#define QD_FUSE_MAXD 10
#define QD_FUSE_SWEEPQ 10   /* registers up to this size use the sweep mode */
#define QD_FUSE_SWEEPMIN 2  /* smaller registers use whole-buffer fused passes */
#define QD_FUSE_QCAP 256    /* queued passes */
#define QD_FUSE_NTAB 32     /* queued diagonal tables */
/* kind-3 passes applied together (2^GMAX rows in registers): 16 rows + 8 factors fit
 * AVX-512's 32 registers; with 16 (AVX2, the portable vectors) 4 passes spilled, 3 fit.
 * Grouping only blocks the same sequence of passes: the arithmetic is the same. */
#if QD_VREGS32
#define QD_FUSE_GMAX 4
#else
#define QD_FUSE_GMAX 3
#endif

typedef struct qd_fuser {
    const qd_circuit *c;
    const double *theta;
    const qd_shift *sh;
    qd_c *a;
    size_t count;
    int nd, dops;            /* qubits of D, gates merged into D */
    size_t dop;              /* the op when dops == 1 */
    int dq[QD_FUSE_MAXD];
    qd_c tab[1 << QD_FUSE_MAXD];
    int pn[QD_MAX_QUBITS];   /* gates merged into P[q] (0 = nothing pending) */
    size_t pop[QD_MAX_QUBITS];
    qd_c P[QD_MAX_QUBITS][4];
    /* sweep mode: the passes are queued and then applied QD_VL members at a time, all of
     * them while the members are in L1, instead of one sweep of the buffer each */
    int sweep, nit, ntab;
    struct {
        int kind;            /* 0: complex 2x2, 1: real 2x2, 2: diagonal (expanded table),
                                3: real with unit diagonal, R[0..1] = (c0, c1), after X if sw,
                                4: cx with control q and target q2 (a permutation of rows) */
        int q, q2, tab, sw;
        qd_c M[4];
        double R[4];
    } it[QD_FUSE_QCAP];
    double *tabs;            /* QD_FUSE_NTAB tables of 2^n re then 2^n im */
    double *soa;             /* nbuf blocks of 2^(n+1) x QD_VL doubles (fz_drain) */
    int nbuf;
} fuser;   /* qd_fuser in qd_circuit.h */

/* ---- the sweep-mode drain: members side by side in SIMD lanes
 * QD_VL members at a time are transposed into a block S of 2d rows x QD_VL lanes (row i < d:
 * Re of amplitude i, row d + i: Im of amplitude i; lane l: member l of the block), every
 * queued pass is applied to the block, and the block is transposed back. A member's
 * arithmetic is the same in every lane and for any lane width (qd_simd.h), so the result
 * does not depend on the member count, on the block a member falls in or on the threads. */

/* kind-3 passes on bits b[0..G) (distinct) together, 2^G rows held in registers: the input
 * bits flipped where swm has a 1 (the passes' X factors, moved to the front: they commute
 * with the other passes' unit matrices), then pass s maps the row pair (x, y) of its bit to
 * (x + c0[s] y, y + c1[s] x). rows: the block's row count (the bits b[] are below it). */
QD_INLINE void drain_group(double *S, size_t rows, int G, const size_t *b, const double *c0,
                           const double *c1, unsigned swm)
{
    const size_t M = (size_t)1 << G;
    size_t off[1 << QD_FUSE_GMAX], gm = 0;   /* gm: the group's bits */
    for (size_t m = 0; m < M; m++) {
        off[m] = 0;
        for (int s = 0; s < G; s++)
            if ((m >> s) & 1)
                off[m] += b[s];
    }
    for (int s = 0; s < G; s++)
        gm |= b[s];
    qd_vd C0[QD_FUSE_GMAX], C1[QD_FUSE_GMAX];
    for (int s = 0; s < G; s++) {
        C0[s] = qd_vset1(c0[s]);
        C1[s] = qd_vset1(c1[s]);
    }
    /* p runs over the rows with every group bit 0, ascending: ((p | gm) + 1) & ~gm */
    size_t p = 0;
    for (size_t t = 0; t < rows >> G; t++, p = ((p | gm) + 1) & ~gm) {
        qd_vd v[1 << QD_FUSE_GMAX];
        #pragma GCC unroll 16
        for (size_t m = 0; m < M; m++)
            v[m] = qd_vload(S + (p + off[m ^ swm]) * QD_VL);
        #pragma GCC unroll 4
        for (int s = 0; s < G; s++)
            #pragma GCC unroll 16
            for (size_t m = 0; m < M; m++) {
                if ((m >> s) & 1)
                    continue;
                qd_vd x = v[m], y = v[m | ((size_t)1 << s)];
                v[m] = qd_vfma(C0[s], y, x);
                v[m | ((size_t)1 << s)] = qd_vfma(C1[s], x, y);
            }
        #pragma GCC unroll 16
        for (size_t m = 0; m < M; m++)
            qd_vstore(S + (p + off[m]) * QD_VL, v[m]);
    }
}

/* the kind-3 passes from *t on that go through registers together: at most QD_FUSE_GMAX,
 * on distinct bits bb[] (1 << (n - 1 - q)), their factors c0/c1 and X flags (bit s of
 * *swm); *t moves past them; returns their number */
static int fz_group3(const fuser *f, int *t, size_t *bb, double *c0, double *c1, unsigned *swm)
{
    const int n = f->c->n;
    int G = 0;
    *swm = 0;
    while (*t < f->nit && G < QD_FUSE_GMAX && f->it[*t].kind == 3) {
        size_t bq = (size_t)1 << (n - 1 - f->it[*t].q);
        int dup = 0;
        for (int s = 0; s < G; s++)
            dup |= bb[s] == bq;
        if (dup)
            break;
        bb[G] = bq;
        c0[G] = f->it[*t].R[0];
        c1[G] = f->it[*t].R[1];
        *swm |= (unsigned)f->it[*t].sw << G;
        G++;
        (*t)++;
    }
    return G;
}

/* a real 2x2 (column-major R) on the row pairs (i, i + b) of `rows` rows of QD_VL lanes */
static void fz_rows_real2x2(double *S, size_t rows, size_t b, const double R[4])
{
    const qd_vd m00 = qd_vset1(R[0]), m10 = qd_vset1(R[1]), m01 = qd_vset1(R[2]), m11 = qd_vset1(R[3]);
    for (size_t i = 0; i < rows; i++) {
        if (i & b)
            continue;
        qd_vd x = qd_vload(S + i * QD_VL), y = qd_vload(S + (i + b) * QD_VL);
        qd_vstore(S + i * QD_VL, qd_vfma(m01, y, qd_vmul(m00, x)));
        qd_vstore(S + (i + b) * QD_VL, qd_vfma(m11, y, qd_vmul(m10, x)));
    }
}

/* The queued passes on lane block blk, transposed into S (2d rows x QD_VL lanes). */
static void fz_drain_block(const fuser *f, size_t blk, double *S)
{
    const int n = f->c->n;
    const size_t d = (size_t)1 << n, rows = 2 * d, count = f->count;
    const size_t j0 = blk * QD_VL, nl = count - j0 < QD_VL ? count - j0 : QD_VL;
    qd_soa_in(S, f->a + j0 * d, d, nl);
    for (int t = 0; t < f->nit;) {
        const int kind = f->it[t].kind;
        if (kind == 3) {
            size_t bb[QD_FUSE_GMAX];
            double c0[QD_FUSE_GMAX], c1[QD_FUSE_GMAX];
            unsigned swm;
            const int G = fz_group3(f, &t, bb, c0, c1, &swm);
            switch (G) {   /* constant G: the group's loops unroll */
            case 1: drain_group(S, rows, 1, bb, c0, c1, swm); break;
            case 2: drain_group(S, rows, 2, bb, c0, c1, swm); break;
            case 3: drain_group(S, rows, 3, bb, c0, c1, swm); break;
            default: drain_group(S, rows, QD_FUSE_GMAX, bb, c0, c1, swm); break;
            }
            continue;
        }
        if (kind == 2) {
            const double *tr = f->tabs + 2 * d * (size_t)f->it[t].tab, *ti = tr + d;
            for (size_t i = 0; i < d; i++) {
                qd_vd re = qd_vload(S + i * QD_VL), im = qd_vload(S + (d + i) * QD_VL);
                qd_vd r = qd_vset1(tr[i]), s = qd_vset1(ti[i]);
                qd_vstore(S + i * QD_VL, qd_vfms(re, r, qd_vmul(im, s)));
                qd_vstore(S + (d + i) * QD_VL, qd_vfma(re, s, qd_vmul(im, r)));
            }
            t++;
            continue;
        }
        if (kind == 4) {   /* cx: rows i and i + tb swapped where the control is 1 (both planes) */
            const size_t cb = (size_t)1 << (n - 1 - f->it[t].q), tb = (size_t)1 << (n - 1 - f->it[t].q2);
            for (size_t i = 0; i < rows; i++) {
                if (!(i & cb) || (i & tb))
                    continue;
                qd_vd x = qd_vload(S + i * QD_VL), y = qd_vload(S + (i + tb) * QD_VL);
                qd_vstore(S + i * QD_VL, y);
                qd_vstore(S + (i + tb) * QD_VL, x);
            }
            t++;
            continue;
        }
        const size_t b = (size_t)1 << (n - 1 - f->it[t].q);
        if (kind == 1) {   /* real 2x2 (column-major R) on both planes */
            fz_rows_real2x2(S, rows, b, f->it[t].R);
            t++;
            continue;
        }
        qd_soa_2x2(S, d, b, f->it[t].M);   /* kind 0: complex 2x2 */
        t++;
    }
    qd_soa_out(S, f->a + j0 * d, d, nl);
}

/* ---- the same passes on a single member, its amplitudes in the lanes
 * With fewer members than lanes a lane block is mostly empty: a lone state (a Born machine,
 * c:run of a State) paid for QD_VL members. Here member j is laid out as its real parts
 * then its imaginary parts (2d doubles): as a block of 2d / QD_VL rows of QD_VL lanes whose
 * lane l of row r is amplitude r QD_VL + l. A pass on a bit >= QD_VL pairs whole rows: the
 * lane-block code runs on it with the bit divided by QD_VL; a pass on a lower bit pairs
 * lanes of one row and runs element by element (scalar fma); a diagonal reads its table
 * as vectors. Every amplitude goes through the same operations in the same order as in a
 * lane block (one rounding per qd_vfma / fma), so the result is the same, bit for bit. */
static void fz_member_kind3(double *S, size_t d, size_t b, double c0, double c1, int sw)
{
    const size_t V = QD_VL;
    if (b >= V) {
        size_t bv = b / V;
        double a0 = c0, a1 = c1;
        drain_group(S, 2 * d / V, 1, &bv, &a0, &a1, (unsigned)sw);
        return;
    }
    /* pairs (i, i + b) of each run of 2b: constant b, so that the pairs vectorise */
#define QD_K3_LOW(B)                                                                   \
    for (size_t i0 = 0; i0 < 2 * d; i0 += 2 * (B))                                    \
        for (size_t i = i0; i < i0 + (B); i++) {                                       \
            double x = S[sw ? i + (B) : i], y = S[sw ? i : i + (B)];                   \
            S[i] = fma(c0, y, x);                                                      \
            S[i + (B)] = fma(c1, x, y);                                                \
        }
    switch (b) {
    case 1: QD_K3_LOW(1) break;
    case 2: QD_K3_LOW(2) break;
    case 4: QD_K3_LOW(4) break;
    default: QD_K3_LOW(b) break;
    }
#undef QD_K3_LOW
}

static void fz_drain_member(const fuser *f, size_t j, double *S)
{
    const int n = f->c->n;
    const size_t d = (size_t)1 << n, V = QD_VL, rv = 2 * d / V;
    qd_c *a = f->a + j * d;
    double *re = S, *im = S + d;
    for (size_t i = 0; i < d; i++) {
        re[i] = creal(a[i]);
        im[i] = cimag(a[i]);
    }
    for (int t = 0; t < f->nit;) {
        const int kind = f->it[t].kind;
        if (kind == 3) {   /* the same groups as fz_drain_block (a group's passes commute) */
            size_t bb[QD_FUSE_GMAX];
            double c0[QD_FUSE_GMAX], c1[QD_FUSE_GMAX];
            unsigned swm;
            const int G = fz_group3(f, &t, bb, c0, c1, &swm);
            int high = 1;
            for (int s = 0; s < G; s++)
                high &= bb[s] >= V;
            if (high) {
                for (int s = 0; s < G; s++)
                    bb[s] /= V;
                switch (G) {
                case 1: drain_group(S, rv, 1, bb, c0, c1, swm); break;
                case 2: drain_group(S, rv, 2, bb, c0, c1, swm); break;
                case 3: drain_group(S, rv, 3, bb, c0, c1, swm); break;
                default: drain_group(S, rv, QD_FUSE_GMAX, bb, c0, c1, swm); break;
                }
            } else {
                /* pass by pass, each with its own X first: the X of one bit commutes with
                 * the unit matrices of the others, so this is the group's arithmetic */
                for (int s = 0; s < G; s++)
                    fz_member_kind3(S, d, bb[s], c0[s], c1[s], (int)((swm >> s) & 1));
            }
            continue;
        }
        if (kind == 2) {
            const double *tr = f->tabs + 2 * d * (size_t)f->it[t].tab, *ti = tr + d;
            for (size_t i = 0; i < d; i += V) {
                qd_vd x = qd_vload(re + i), y = qd_vload(im + i);
                qd_vd r = qd_vload(tr + i), s = qd_vload(ti + i);
                qd_vstore(re + i, qd_vfms(x, r, qd_vmul(y, s)));
                qd_vstore(im + i, qd_vfma(x, s, qd_vmul(y, r)));
            }
            t++;
            continue;
        }
        if (kind == 4) {   /* cx: a permutation of the amplitudes */
            const size_t cb = (size_t)1 << (n - 1 - f->it[t].q), tb = (size_t)1 << (n - 1 - f->it[t].q2);
            for (size_t i = 0; i < d; i++) {
                if (!(i & cb) || (i & tb))
                    continue;
                double xr = re[i], xi = im[i];
                re[i] = re[i + tb];
                im[i] = im[i + tb];
                re[i + tb] = xr;
                im[i + tb] = xi;
            }
            t++;
            continue;
        }
        const size_t b = (size_t)1 << (n - 1 - f->it[t].q);
        if (kind == 1) {   /* real 2x2 (column-major R) on both planes */
            const double *R = f->it[t].R;
            if (b >= V) {
                fz_rows_real2x2(S, rv, b / V, R);
            } else {
                for (size_t i0 = 0; i0 < 2 * d; i0 += 2 * b)
                    for (size_t i = i0; i < i0 + b; i++) {
                        double x = S[i], y = S[i + b];
                        S[i] = fma(R[2], y, R[0] * x);
                        S[i + b] = fma(R[3], y, R[1] * x);
                    }
            }
            t++;
            continue;
        }
        const qd_c *M = f->it[t].M;   /* kind 0: complex 2x2, qd_soa_2x2's arithmetic */
        if (b >= V) {
            qd_soa_2x2(S, d / V, b / V, M);
        } else {
            const double ar = creal(M[0]), ai = cimag(M[0]), br = creal(M[1]), bi = cimag(M[1]),
                         cr = creal(M[2]), ci = cimag(M[2]), dr = creal(M[3]), di = cimag(M[3]);
            for (size_t i0 = 0; i0 < d; i0 += 2 * b)
                for (size_t i = i0; i < i0 + b; i++) {
                    double ur = re[i], ui = im[i], vr = re[i + b], vi = im[i + b];
                    re[i] = fma(-ci, vi, fma(cr, vr, fma(-ai, ui, ar * ur)));
                    im[i] = fma(ci, vr, fma(cr, vi, fma(ai, ur, ar * ui)));
                    re[i + b] = fma(-di, vi, fma(dr, vr, fma(-bi, ui, br * ur)));
                    im[i + b] = fma(di, vr, fma(dr, vi, fma(bi, ur, br * ui)));
                }
        }
        t++;
    }
    for (size_t i = 0; i < d; i++)
        a[i] = CMPLX(re[i], im[i]);
}

/* Applies the queued passes (see above). One thread runs them outside any OpenMP region:
 * a region costs a futex wake even when its if clause is false (~0.5 us), and small
 * registers drain dozens of times per run. */
static void fz_drain(fuser *f)
{
    if (f->nit == 0)
        return;
    const size_t d = (size_t)1 << f->c->n, rows = 2 * d, count = f->count;
    if (count < QD_VL && d >= QD_VL) {   /* a lane block would be mostly empty */
        for (size_t j = 0; j < count; j++)
            fz_drain_member(f, j, f->soa);
        f->nit = 0;
        f->ntab = 0;
        return;
    }
    const size_t nblk = (count + QD_VL - 1) / QD_VL;
    int nt = 1;
#ifdef _OPENMP
    if (nblk > 1 && count * d >= QD_PAR_MIN)
        nt = qd_get_threads() < f->nbuf ? qd_get_threads() : f->nbuf;
#endif
    if (nt > 1) {
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (size_t blk = 0; blk < nblk; blk++)
            fz_drain_block(f, blk, f->soa + rows * QD_VL * (size_t)qd_thread_num());
    } else {
        for (size_t blk = 0; blk < nblk; blk++)
            fz_drain_block(f, blk, f->soa);
    }
    f->nit = 0;
    f->ntab = 0;
}

static void fz_emit_1q(fuser *f, int q, const qd_c M[4])
{
    if (!f->sweep) {
        qd_k_1q(f->a, f->c->n, f->count, q, M);
        return;
    }
    if (f->nit == QD_FUSE_QCAP)
        fz_drain(f);
    f->it[f->nit].kind = 0;
    f->it[f->nit].q = q;
    memcpy(f->it[f->nit].M, M, sizeof(qd_c) * 4);
    f->nit++;
}

static void fz_emit_1qr(fuser *f, int q, const double R[4])
{
    if (!f->sweep) {
        qd_k_1q_real(f->a, f->c->n, f->count, q, R);
        return;
    }
    if (f->nit == QD_FUSE_QCAP)
        fz_drain(f);
    f->it[f->nit].kind = 1;
    f->it[f->nit].q = q;
    memcpy(f->it[f->nit].R, R, sizeof(double) * 4);
    f->nit++;
}

/* diagonal tab (2^k entries) on qubits qs[0..k) (qs[0] the MSB of its index) */
static void fz_emit_diag(fuser *f, const int *qs, int k, const qd_c *tab)
{
    const int n = f->c->n;
    if (!f->sweep) {
        if (k == 1)
            qd_k_diag1(f->a, n, f->count, qs[0], tab[0], tab[1]);
        else
            qd_k_diagtab(f->a, n, f->count, qs, k, tab);
        return;
    }
    if (f->nit == QD_FUSE_QCAP || f->ntab == QD_FUSE_NTAB)
        fz_drain(f);
    const size_t d = (size_t)1 << n;
    double *tr = f->tabs + 2 * d * (size_t)f->ntab, *ti = tr + d;
    /* table index of amplitude i: the OR of the contributions of i's set bits, built up
     * from i without its lowest set bit */
    size_t contrib[QD_MAX_QUBITS], tix[1 << QD_FUSE_SWEEPQ];
    for (int b = 0; b < n; b++)
        contrib[b] = 0;
    for (int j = 0; j < k; j++)
        contrib[n - 1 - qs[j]] = (size_t)1 << (k - 1 - j);
    int ident = k == n;   /* D on qubits 0..n-1 in order: entry i is amplitude i's */
    for (int j = 0; j < k && ident; j++)
        ident = qs[j] == j;
    if (ident) {
        for (size_t i = 0; i < d; i++) {
            tr[i] = creal(tab[i]);
            ti[i] = cimag(tab[i]);
        }
    }
    tix[0] = 0;
    tr[0] = creal(tab[0]);
    ti[0] = cimag(tab[0]);
    for (size_t i = 1; i < d && !ident; i++) {
        size_t t = tix[i & (i - 1)] | contrib[__builtin_ctzll(i)];
        tix[i] = t;
        tr[i] = creal(tab[t]);
        ti[i] = cimag(tab[t]);
    }
    f->it[f->nit].kind = 2;
    f->it[f->nit].tab = f->ntab++;
    f->nit++;
}

/* op o (a gate: 1-qubit, or diagonal) alone: its own kernel, or queued in sweep mode */
static void fz_apply_single(fuser *f, size_t o)
{
    double ang[3];
    const qd_op *op = &f->c->ops[o];
    qd_op_angles(f->c, o, f->theta, f->sh, ang);
    if (!f->sweep) {
        qd_apply_gate(f->a, f->c->n, f->count, op->g, op->qs, ang, 0);
        return;
    }
    qd_c G[64], dg[8];
    const size_t K = (size_t)1 << op->k;
    qd_gate_matrix(op->g, ang, G);
    int diag = 1;
    for (size_t r = 0; r < K; r++)
        for (size_t cc = 0; cc < K; cc++)
            diag &= r == cc || G[r + cc * K] == 0;
    if (op->k == 1 && !diag) {
        fz_emit_1q(f, op->qs[0], G);
        return;
    }
    for (size_t r = 0; r < K; r++)
        dg[r] = G[r + r * K];
    fz_emit_diag(f, op->qs, op->k, dg);
}

static int fz_dpos(const fuser *f, int q)
{
    for (int j = 0; j < f->nd; j++)
        if (f->dq[j] == q)
            return j;
    return -1;
}

static void fz_flush_d(fuser *f)
{
    if (f->nd == 0)
        return;
    if (f->dops == 1) {
        fz_apply_single(f, f->dop);
    } else {
        size_t D = (size_t)1 << f->nd;
        int one = 1;
        for (size_t t = 0; t < D && one; t++)
            one = f->tab[t] == 1;
        if (!one)
            fz_emit_diag(f, f->dq, f->nd, f->tab);
    }
    f->nd = 0;
    f->dops = 0;
}

/* D = D * diag(dg) on qubits qs[0..k) (dg: 2^k entries, qs[0] the MSB); op = the gate, or
 * (size_t)-1 when dg is a fused product (then never applied as a single gate). */
static void fz_add_diag(fuser *f, const int *qs, int k, const qd_c *dg, size_t op)
{
    int nnew = 0;
    for (int i = 0; i < k; i++)
        nnew += fz_dpos(f, qs[i]) < 0;
    if (f->nd + nnew > QD_FUSE_MAXD)
        fz_flush_d(f);
    if (f->nd == 0) {
        f->tab[0] = 1;
        f->dops = 0;
    }
    if (k == 1 && fz_dpos(f, qs[0]) < 0) {
        /* a 1-qubit diagonal on a new qubit (the new least significant bit of the table):
         * tab'[2t + b] = tab[t] dg[b] */
        size_t D = (size_t)1 << f->nd;
        const double a0 = creal(dg[0]), b0 = cimag(dg[0]), a1 = creal(dg[1]),
                     b1 = cimag(dg[1]);
        /* + y*nb, not - y*b: the same value, no vfmaddsub (scripts/check_contraction.sh) */
        const double nb0 = -b0, nb1 = -b1;
        for (size_t t = D; t-- > 0;) {
            double x = creal(f->tab[t]), y = cimag(f->tab[t]);
            f->tab[2 * t] = CMPLX(x * a0 + y * nb0, x * b0 + y * a0);
            f->tab[2 * t + 1] = CMPLX(x * a1 + y * nb1, x * b1 + y * a1);
        }
        f->dq[f->nd++] = qs[0];
        f->dops = op == (size_t)-1 ? 2 + f->dops : f->dops + 1;
        f->dop = op;
        return;
    }
    for (int i = 0; i < k; i++) {
        if (fz_dpos(f, qs[i]) >= 0)
            continue;
        /* new qubit as the new least significant bit: tab'[2t + b] = tab[t] */
        size_t D = (size_t)1 << f->nd;
        for (size_t t = D; t-- > 0;)
            f->tab[2 * t] = f->tab[2 * t + 1] = f->tab[t];
        f->dq[f->nd++] = qs[i];
    }
    int sign = 1;   /* entries +-1 only (cz, ccz, ...): sign flips instead of products */
    for (size_t l = 0; l < ((size_t)1 << k); l++)
        sign &= dg[l] == 1 || dg[l] == -1;
    int pos[QD_CIRC_MAXK];
    for (int i = 0; i < k; i++)
        pos[i] = f->nd - 1 - fz_dpos(f, qs[i]);   /* bit of qs[i] in the table index */
    size_t D = (size_t)1 << f->nd;
    if (sign) {   /* negate the entries whose bits pos[] read l, for each l with dg[l] = -1 */
        size_t fm = 0;
        for (int i = 0; i < k; i++)
            fm |= (size_t)1 << pos[i];
        for (size_t l = 0; l < ((size_t)1 << k); l++) {
            if (dg[l] != -1)
                continue;
            size_t pm = 0;
            for (int i = 0; i < k; i++)
                pm |= ((l >> (k - 1 - i)) & 1) << pos[i];
            const size_t fr = (D - 1) & ~fm;   /* the other bits: every subset of them */
            size_t u = 0;
            do {
                f->tab[u | pm] = -f->tab[u | pm];
                u = (u - fr) & fr;
            } while (u != 0);
        }
        f->dops = op == (size_t)-1 ? 2 + f->dops : f->dops + 1;
        f->dop = op;
        return;
    }
    if (k == 1 && pos[0] >= 1) {
        /* one qubit already in D (the phases of a split P[q], a diagonal on a qubit of D):
         * runs of 2^pos entries take dg[0], then dg[1] — the same products as the loop
         * below, in contiguous runs that vectorise */
        const size_t s = (size_t)1 << pos[0];
        double *tb = (double *)f->tab;
        for (size_t t0 = 0; t0 < D; t0 += 2 * s)
            for (int h = 0; h < 2; h++) {
                const double a = creal(dg[h]), b = cimag(dg[h]), nb = -b;
                double *r = tb + 2 * (t0 + (size_t)h * s);
                for (size_t t = 0; t < s; t++) {
                    double x = r[2 * t], y = r[2 * t + 1];
                    r[2 * t] = x * a + y * nb;
                    r[2 * t + 1] = x * b + y * a;
                }
            }
    } else {
        for (size_t t = 0; t < D; t++) {
            size_t l = 0;
            for (int i = 0; i < k; i++)
                l = (l << 1) | ((t >> pos[i]) & 1);
            double x = creal(f->tab[t]), y = cimag(f->tab[t]), a = creal(dg[l]),
                   b = cimag(dg[l]), nb = -b;
            f->tab[t] = CMPLX(x * a + y * nb, x * b + y * a);   /* + y*nb: as above */
        }
    }
    f->dops = op == (size_t)-1 ? 2 + f->dops : f->dops + 1;
    f->dop = op;
}

static int fz_pdiag(const fuser *f, int q)
{
    return f->P[q][1] == 0 && f->P[q][2] == 0;
}

static void fz_flush_p(fuser *f, int q)
{
    if (f->pn[q] == 0)
        return;
    if (fz_dpos(f, q) >= 0)
        fz_flush_d(f);
    if (f->pn[q] == 1)
        fz_apply_single(f, f->pop[q]);
    else if (fz_pdiag(f, q)) {
        qd_c dg[2] = {f->P[q][0], f->P[q][3]};
        fz_emit_diag(f, &q, 1, dg);
    } else {
        fz_emit_1q(f, q, f->P[q]);
    }
    f->pn[q] = 0;
}

/* |z| for the entries of 2x2 unitaries (no overflow to guard against: cheaper than cabs) */
static inline double fz_abs(qd_c z)
{
    return sqrt(creal(z) * creal(z) + cimag(z) * cimag(z));
}

/* Sweep mode: real R (column-major) as diag(r0, r1) T with T of unit diagonal, after an X
 * when the off-diagonal entries dominate (|c0|, |c1| <= 1 either way):
 *     R = diag(m00, m11) [[1, m01/m00], [m10/m11, 1]]       (|m00| >= |m01|, |m11| >= |m10|)
 *     R = diag(m01, m10) [[1, m00/m01], [m11/m10, 1]] X     (|m00| < |m01|, |m11| < |m10|)
 * T is queued (one FMA per output instead of a multiply and an FMA); the caller keeps
 * diag(r0, r1), which joins the pending diagonal. Returns 0 (nothing queued) when R has
 * neither shape (an orthogonal R always has one) or outside sweep mode. */
static int fz_emit_unit(fuser *f, int q, const double R[4], double *r0, double *r1)
{
    const double m00 = R[0], m10 = R[1], m01 = R[2], m11 = R[3];
    double c0, c1;
    int sw;
    if (!f->sweep)
        return 0;
    if (fabs(m00) >= fabs(m01) && fabs(m11) >= fabs(m10) && m00 != 0 && m11 != 0) {
        c0 = m01 / m00;
        c1 = m10 / m11;
        *r0 = m00;
        *r1 = m11;
        sw = 0;
    } else if (fabs(m00) < fabs(m01) && fabs(m11) < fabs(m10)) {
        c0 = m00 / m01;
        c1 = m11 / m10;
        *r0 = m01;
        *r1 = m10;
        sw = 1;
    } else {
        return 0;
    }
    if (f->nit == QD_FUSE_QCAP)
        fz_drain(f);
    f->it[f->nit].kind = 3;
    f->it[f->nit].q = q;
    f->it[f->nit].sw = sw;
    f->it[f->nit].R[0] = c0;
    f->it[f->nit].R[1] = c1;
    f->nit++;
    return 1;
}

/* Split a non-diagonal P[q] = diag(u0, u1) R with R real (possible when the phases of the
 * entries in each row agree up to sign, e.g. rz ry, or a single ry / h); then R is applied
 * now by the real kernel (12 flops per amplitude pair instead of 28) and the phases stay
 * pending as a diagonal P[q], for the caller to merge into D. Only when the recomposed
 * matrix matches to 1e-15; returns 0 (nothing done) otherwise. */
static int fz_split_p(fuser *f, int q)
{
    const qd_c *M = f->P[q];
    double c = fz_abs(M[0]), s = fz_abs(M[1]);
    if (!(c > 1e-3 && s > 1e-3))
        return 0;
    qd_c u0 = M[0] / c, u1 = M[1] / s;
    /* R = [[c, M01/u0], [s, M11/u1]] (column-major) must be real: check the recomposition
     * (|u0| = |u1| = 1 to rounding: M/u = M conj(u) / |u|^2) */
    double R[4] = {c, s, creal(M[2] * conj(u0)) / (creal(u0) * creal(u0) + cimag(u0) * cimag(u0)),
                   creal(M[3] * conj(u1)) / (creal(u1) * creal(u1) + cimag(u1) * cimag(u1))};
    if (fz_abs(u0 * R[0] - M[0]) > 1e-15 || fz_abs(u0 * R[2] - M[2]) > 1e-15 ||
        fz_abs(u1 * R[1] - M[1]) > 1e-15 || fz_abs(u1 * R[3] - M[3]) > 1e-15)
        return 0;
    if (fz_dpos(f, q) >= 0)
        fz_flush_d(f);
    double r0 = 1, r1 = 1;
    if (!fz_emit_unit(f, q, R, &r0, &r1))
        fz_emit_1qr(f, q, R);
    f->P[q][0] = u0 * r0;
    f->P[q][1] = 0;
    f->P[q][2] = 0;
    f->P[q][3] = u1 * r1;
    f->pn[q] = 2;   /* a product: never applied as a single gate */
    return 1;
}

/* Sweep mode, at a diagonal gate or a barrier: every pending non-diagonal P[q] split at
 * once. First as fz_split_p would (diag(u0, u1) R, R real); failing that (a general 2x2
 * unitary, e.g. ry rx) as diag(u0, u1) R diag(1, w) with R = [[c, -s], [s, c]]
 * (Z-Y-Z): the right factor diag(1, w) joins the pending diagonal D, which comes before
 * every P, and the left one stays pending as a diagonal P[q]. D is applied (once, for all
 * the qubits) before the real passes when it involves one of their qubits. So a complex
 * 2x2 pass (16 FMA-sized operations per amplitude pair) becomes a unit-diagonal real one
 * (4) plus phases that ride on diagonal passes made anyway. Products too close to
 * diagonal or anti-diagonal (|c| or |s| <= 1e-3) or that do not recompose to 1e-15 are left
 * as they are. After the call the caller merges the diagonal P[q] into D. */
static void fz_split_all(fuser *f)
{
    const int n = f->c->n;
    int qs[QD_MAX_QUBITS], m = 0, need = 0;
    double R[QD_MAX_QUBITS][4];
    qd_c u0[QD_MAX_QUBITS], u1[QD_MAX_QUBITS];
    for (int q = 0; q < n; q++) {
        if (!f->pn[q] || fz_pdiag(f, q))
            continue;
        const qd_c *M = f->P[q];
        double c = fz_abs(M[0]), sn = fz_abs(M[1]);
        if (!(c > 1e-3 && sn > 1e-3))
            continue;
        qd_c a = M[0] / c, b = M[1] / sn;
        double na = creal(a) * creal(a) + cimag(a) * cimag(a),
               nb = creal(b) * creal(b) + cimag(b) * cimag(b);
        double *Rq = R[m];
        Rq[0] = c;
        Rq[1] = sn;
        /* complex products by qd_cmul: no vfmaddsub (scripts/check_contraction.sh) */
        Rq[2] = creal(qd_cmul(M[2], conj(a))) / na;
        Rq[3] = creal(qd_cmul(M[3], conj(b))) / nb;
        if (fz_abs(a * Rq[2] - M[2]) > 1e-15 || fz_abs(b * Rq[3] - M[3]) > 1e-15) {
            /* Z-Y-Z: w from M11 = b c w; then M01 = -a s w must hold */
            qd_c w = qd_cmul(M[3], conj(b)) / (nb * c);
            if (fz_abs(qd_cmul(b * c, w) - M[3]) > 1e-15 ||
                fz_abs(qd_cmul(-a * sn, w) - M[2]) > 1e-15)
                continue;
            Rq[2] = -sn;
            Rq[3] = c;
            qd_c dw[2] = {1, w};
            fz_add_diag(f, &q, 1, dw, (size_t)-1);
        }
        u0[m] = a;
        u1[m] = b;
        qs[m++] = q;
    }
    for (int i = 0; i < m; i++)
        need |= fz_dpos(f, qs[i]) >= 0;
    if (need)
        fz_flush_d(f);
    for (int i = 0; i < m; i++) {
        int q = qs[i];
        double r0 = 1, r1 = 1;
        if (!fz_emit_unit(f, q, R[i], &r0, &r1))
            fz_emit_1qr(f, q, R[i]);
        f->P[q][0] = u0[i] * r0;
        f->P[q][1] = 0;
        f->P[q][2] = 0;
        f->P[q][3] = u1[i] * r1;
        f->pn[q] = 2;   /* a product: never applied as a single gate */
    }
}

/* everything pending applied (a barrier for all qubits) */
static void fz_flush_all(fuser *f)
{
    fz_flush_d(f);
    /* sweep mode: split products into a real pass and phases, the phases of all qubits
     * then go as one diagonal pass */
    if (f->sweep)
        fz_split_all(f);
    for (int q = 0; f->sweep && q < f->c->n; q++)
        if (f->pn[q] && fz_pdiag(f, q)) {
            qd_c dg[2] = {f->P[q][0], f->P[q][3]};
            fz_add_diag(f, &q, 1, dg, f->pn[q] == 1 ? f->pop[q] : (size_t)-1);
            f->pn[q] = 0;
        }
    for (int q = 0; q < f->c->n; q++)
        fz_flush_p(f, q);
    fz_flush_d(f);
    fz_drain(f);
}

static qd_status fz_op(fuser *f, size_t o, qd_err *e)
{
    const qd_op *op = &f->c->ops[o];
    const int k = op->k;
    if (op->kind == QD_OP_GATE && k <= 3) {
        double ang[3];
        qd_c G[64];
        const size_t K = (size_t)1 << k;
        qd_op_angles(f->c, o, f->theta, f->sh, ang);
        qd_gate_matrix(op->g, ang, G);
        int diag = 1;
        for (size_t r = 0; r < K && diag; r++)
            for (size_t cc = 0; cc < K; cc++)
                if (r != cc && G[r + cc * K] != 0) {
                    diag = 0;
                    break;
                }
        if (k == 1) {
            int q = op->qs[0];
            if (f->pn[q] == 0 && diag) {
                qd_c dg[2] = {G[0], G[3]};
                fz_add_diag(f, op->qs, 1, dg, o);
            } else if (f->pn[q] == 0) {
                memcpy(f->P[q], G, sizeof(qd_c) * 4);
                f->pn[q] = 1;
                f->pop[q] = o;
            } else {
                /* R = G M (column-major 2x2); qd_cmul: no vfmaddsub
                 * (scripts/check_contraction.sh) */
                qd_c *M = f->P[q], R[4];
                R[0] = qd_cmul(G[0], M[0]) + qd_cmul(G[2], M[1]);
                R[1] = qd_cmul(G[1], M[0]) + qd_cmul(G[3], M[1]);
                R[2] = qd_cmul(G[0], M[2]) + qd_cmul(G[2], M[3]);
                R[3] = qd_cmul(G[1], M[2]) + qd_cmul(G[3], M[3]);
                memcpy(M, R, sizeof R);
                f->pn[q]++;
            }
            return QD_OK;
        }
        if (diag) {
            int split = 0;   /* sweep mode: all pending products split together */
            for (int i = 0; i < k && f->sweep; i++)
                split |= f->pn[op->qs[i]] && !fz_pdiag(f, op->qs[i]);
            if (split)
                fz_split_all(f);
            for (int i = 0; i < k; i++) {
                int q = op->qs[i];
                if (f->pn[q] == 0)
                    continue;
                if (fz_pdiag(f, q) || fz_split_p(f, q)) {
                    qd_c dg[2] = {f->P[q][0], f->P[q][3]};
                    fz_add_diag(f, &q, 1, dg, f->pn[q] == 1 ? f->pop[q] : (size_t)-1);
                    f->pn[q] = 0;
                } else {
                    fz_flush_p(f, q);
                }
            }
            qd_c dg[8];
            for (size_t r = 0; r < K; r++)
                dg[r] = G[r + r * K];
            fz_add_diag(f, op->qs, k, dg, o);
            return QD_OK;
        }
    }
    /* a barrier for its qubits */
    int shared = 0;
    for (int i = 0; i < k; i++) {
        fz_flush_p(f, op->qs[i]);
        shared |= fz_dpos(f, op->qs[i]) >= 0;
    }
    if (shared)
        fz_flush_d(f);
    if (f->sweep && op->kind == QD_OP_GATE && op->g->id == QD_G_CX) {
        /* queued: a permutation, exact, so the same result as the gate kernel's without
         * a drain (two transposes) for every cx of an entangling ladder */
        if (f->nit == QD_FUSE_QCAP)
            fz_drain(f);
        f->it[f->nit].kind = 4;
        f->it[f->nit].q = op->qs[0];
        f->it[f->nit].q2 = op->qs[1];
        f->nit++;
        return QD_OK;
    }
    fz_drain(f);
    double ang[3];
    qd_op_angles(f->c, o, f->theta, f->sh, ang);
    return qd_circ_apply_op(f->c, o, ang, f->a, f->count, 0, e);
}

/* ------------------------------------------------------------------ the fuser's interface */

qd_fuser *qd_fuser_new(const qd_circuit *c, const double *theta, const qd_shift *sh, qd_c *a,
                       size_t count)
{
    fuser *fz = qd_malloc(sizeof *fz);
    if (!fz)
        return NULL;
    /* zero everything but the big arrays written before they are read (tab: when D starts,
     * P[q]: when pn[q] leaves 0, it[]: when queued) — ~50 KB, a memset per run otherwise */
    memset(fz, 0, offsetof(fuser, tab));
    memset(&fz->pn, 0, sizeof fz->pn);
    memset(&fz->sweep, 0, offsetof(fuser, it) - offsetof(fuser, sweep));
    memset(&fz->tabs, 0, sizeof *fz - offsetof(fuser, tabs));
    /* sweep mode from QD_FUSE_SWEEPMIN qubits: with members in SIMD lanes it pays on
     * small registers too (QuDDPM's 3-qubit c:run, N = 100: 19.8 -> 15.8 us; the old
     * member-by-member sweep had taken it from 16 to 29 us) */
    fz->sweep = c->n >= QD_FUSE_SWEEPMIN && c->n <= QD_FUSE_SWEEPQ && qd_isa_fma_hw();
    fz->nbuf = qd_get_threads() > 0 ? qd_get_threads() : 1;
    if (fz->sweep &&
        (!(fz->tabs = qd_malloc(sizeof(double) * 2 * QD_FUSE_NTAB * ((size_t)1 << c->n))) ||
         !(fz->soa = qd_malloc(sizeof(double) * 2 * QD_VL * (size_t)fz->nbuf *
                               ((size_t)1 << c->n))))) {
        qd_free(fz->tabs);
        qd_free(fz);
        return NULL;
    }
    fz->c = c;
    fz->theta = theta;
    fz->sh = sh;
    fz->a = a;
    fz->count = count;
    return fz;
}

qd_status qd_fuser_op(qd_fuser *f, size_t o, qd_err *e)
{
    return fz_op(f, o, e);
}

void qd_fuser_flush(qd_fuser *f)
{
    fz_flush_all(f);
}

void qd_fuser_free(qd_fuser *f)
{
    if (f) {
        qd_free(f->tabs);
        qd_free(f->soa);
        qd_free(f);
    }
}
