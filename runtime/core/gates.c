/* gates.c — the named-gate table and the kernels that apply gates to state vectors,
 * batches of state vectors (ensembles) and density matrices.
 *
 * How every kernel walks memory
 * -----------------------------
 * Qubit q of an nq-qubit vector is bit b = nq-1-q of the index (qd.h). A gate on m
 * qubits mixes "groups" of 2^m amplitudes: the m special bits take every value while the
 * other (free) bits stay fixed. A batch of `count` vectors is contiguous, so it is simply
 * one long vector whose extra high bits are free bits too: shared-parameter gates on an
 * ensemble are one sweep, with no per-member loop.
 *
 * Groups are numbered g = 0 .. count*2^nq / 2^m - 1 by their free bits; the index of
 * the group's first amplitude is g with a zero inserted at each special bit (deposit()).
 * Consecutive groups form "runs" whose first amplitudes are equally spaced:
 *   - if the lowest special bit is s > 0, the 2^s groups that differ only in bits below
 *     s are contiguous (stride 1). This is the common case and the inner loop is a plain
 *     contiguous loop the compiler vectorises (AVX-512 with -O3 -march=native).
 *   - if special bits occupy bits 0..j-1 (e.g. a gate on the last qubit), groups are
 *     2^j apart; the loop is specialised for strides 2 and 4 so it still vectorises.
 * The outer loop over runs costs a handful of shifts per run, never per amplitude, and
 * no kernel branches per amplitude.
 *
 * Runs are cut into chunks of at most CHUNK groups aligned to CHUNK (cache blocking, and
 * so that a multi-pass body such as the diagonal one never streams a big run twice).
 *
 * Threads and determinism
 * -----------------------
 * Large calls (>= QD_PAR_MIN amplitudes) split the group range over OpenMP threads in
 * pieces that are multiples of TILE groups, TILE a multiple of CHUNK, so the chunks a
 * thread sees are exactly the chunks one thread would see. Every amplitude is computed
 * by the same instructions whatever the thread count (there are no reductions), so
 * results are bitwise identical for any thread count. Small calls never enter an OpenMP
 * region: fork/join would cost more than the work.
 *
 * Per-member parameters (per_vector != 0): each member gets its own matrix. Small
 * members (dim < QD_PAR_MIN) are spread over threads member by member; big members are
 * done one after the other, each split over threads.
 *
 * Complex products are written out in real arithmetic: `qd_c * qd_c` in ISO C mode
 * carries NaN/Inf recovery (a call to __muldc3) that blocks vectorisation, and the
 * gate matrices here are finite by construction.
 */
#include "qd.h"
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define QD_INLINE static inline __attribute__((always_inline))

/* Below QD_PAR_MIN amplitudes per call (qd.h) a kernel runs on the calling thread. */
/* Cache block (groups) and thread split granularity (groups); TILE % CHUNK == 0. */
#define CHUNK ((size_t)1 << 10)
#define TILE ((size_t)1 << 12)

/* ================================================================ gate kernels by id
 * The gate registry is gate_table.c; here each gate id gets its kernel class and matrix. */

/* How the dispatcher applies each gate (index = gate id). */
enum { K_ID, K_X, K_M1, K_D1, K_CX, K_C1, K_D2, K_SWAP, K_M2, K_CCX, K_CSWAP };
static const unsigned char kind_of[QD_G_COUNT] = {
    [QD_G_ID] = K_ID, [QD_G_X] = K_X, [QD_G_Y] = K_M1, [QD_G_Z] = K_D1, [QD_G_H] = K_M1,
    [QD_G_S] = K_D1, [QD_G_SDG] = K_D1, [QD_G_T] = K_D1, [QD_G_TDG] = K_D1,
    [QD_G_SX] = K_M1, [QD_G_SXDG] = K_M1, [QD_G_RX] = K_M1, [QD_G_RY] = K_M1, [QD_G_RZ] = K_D1,
    [QD_G_P] = K_D1, [QD_G_U] = K_M1,
    [QD_G_CX] = K_CX, [QD_G_CY] = K_C1, [QD_G_CZ] = K_D2, [QD_G_CH] = K_C1, [QD_G_SWAP] = K_SWAP,
    [QD_G_CRX] = K_C1, [QD_G_CRY] = K_C1, [QD_G_CRZ] = K_D2, [QD_G_CP] = K_D2,
    [QD_G_RXX] = K_M2, [QD_G_RYY] = K_M2, [QD_G_RZZ] = K_D2,
    [QD_G_CCX] = K_CCX, [QD_G_CSWAP] = K_CSWAP,
    [QD_G_ECR] = K_M2,
};

/* Gate id of g: a registry entry, or a copy of one (found by name); -1 if unknown. */
static int gate_id(const qd_gate_info *g)
{
    if (!g)
        return -1;
    const qd_gate_info *t = qd_gate_get(g->id);
    if (t && (t == g || strcmp(t->name, g->name) == 0))
        return (int)g->id;
    t = qd_gate_lookup(g->name);
    return t ? (int)t->id : -1;
}

/* Full matrix of gate id (column-major, m[r + c*d]); p holds its parameters. */
static void gate_matrix(int id, const double *p, qd_c *m)
{
    const qd_gate_info *g = qd_gate_get((qd_gate_id)id);
    const int d = 1 << g->nqubits;
    memset(m, 0, sizeof(qd_c) * (size_t)(d * d));
#define M2(r, c) m[(r) + 2 * (c)]
#define M4(r, c) m[(r) + 4 * (c)]
    const double r2 = M_SQRT1_2;
    double c = 0, s = 0;
    if (g->nparams > 0) {
        c = cos(0.5 * p[0]);
        s = sin(0.5 * p[0]);
    }
    switch (id) {
    case QD_G_ID: M2(0, 0) = 1; M2(1, 1) = 1; break;
    case QD_G_X: M2(0, 1) = 1; M2(1, 0) = 1; break;
    case QD_G_Y: M2(0, 1) = -I; M2(1, 0) = I; break;
    case QD_G_Z: M2(0, 0) = 1; M2(1, 1) = -1; break;
    case QD_G_H: M2(0, 0) = r2; M2(0, 1) = r2; M2(1, 0) = r2; M2(1, 1) = -r2; break;
    case QD_G_S: M2(0, 0) = 1; M2(1, 1) = I; break;
    case QD_G_SDG: M2(0, 0) = 1; M2(1, 1) = -I; break;
    case QD_G_T: M2(0, 0) = 1; M2(1, 1) = CMPLX(r2, r2); break;
    case QD_G_TDG: M2(0, 0) = 1; M2(1, 1) = CMPLX(r2, -r2); break;
    case QD_G_SX:
        M2(0, 0) = CMPLX(0.5, 0.5); M2(0, 1) = CMPLX(0.5, -0.5);
        M2(1, 0) = CMPLX(0.5, -0.5); M2(1, 1) = CMPLX(0.5, 0.5);
        break;
    case QD_G_SXDG:
        M2(0, 0) = CMPLX(0.5, -0.5); M2(0, 1) = CMPLX(0.5, 0.5);
        M2(1, 0) = CMPLX(0.5, 0.5); M2(1, 1) = CMPLX(0.5, -0.5);
        break;
    case QD_G_RX: M2(0, 0) = c; M2(0, 1) = CMPLX(0, -s); M2(1, 0) = CMPLX(0, -s); M2(1, 1) = c; break;
    case QD_G_RY: M2(0, 0) = c; M2(0, 1) = -s; M2(1, 0) = s; M2(1, 1) = c; break;
    case QD_G_RZ: M2(0, 0) = CMPLX(c, -s); M2(1, 1) = CMPLX(c, s); break;
    case QD_G_P: M2(0, 0) = 1; M2(1, 1) = CMPLX(cos(p[0]), sin(p[0])); break;
    case QD_G_U: {
        double ph = p[1], la = p[2];
        M2(0, 0) = c;
        M2(0, 1) = CMPLX(-cos(la) * s, -sin(la) * s);
        M2(1, 0) = CMPLX(cos(ph) * s, sin(ph) * s);
        M2(1, 1) = CMPLX(cos(ph + la) * c, sin(ph + la) * c);
        break;
    }
    /* controlled gates: identity on |0x>, the target matrix on |1x> */
    case QD_G_CX: case QD_G_CY: case QD_G_CH: case QD_G_CRX: case QD_G_CRY: {
        static const int sub[] = {[QD_G_CX] = QD_G_X, [QD_G_CY] = QD_G_Y, [QD_G_CH] = QD_G_H,
                                  [QD_G_CRX] = QD_G_RX, [QD_G_CRY] = QD_G_RY};
        qd_c t[4];
        gate_matrix(sub[id], p, t);
        M4(0, 0) = 1; M4(1, 1) = 1;
        M4(2, 2) = t[0]; M4(3, 2) = t[1]; M4(2, 3) = t[2]; M4(3, 3) = t[3];
        break;
    }
    case QD_G_CZ: M4(0, 0) = 1; M4(1, 1) = 1; M4(2, 2) = 1; M4(3, 3) = -1; break;
    case QD_G_SWAP: M4(0, 0) = 1; M4(1, 2) = 1; M4(2, 1) = 1; M4(3, 3) = 1; break;
    case QD_G_CRZ: M4(0, 0) = 1; M4(1, 1) = 1; M4(2, 2) = CMPLX(c, -s); M4(3, 3) = CMPLX(c, s); break;
    case QD_G_CP: M4(0, 0) = 1; M4(1, 1) = 1; M4(2, 2) = 1; M4(3, 3) = CMPLX(cos(p[0]), sin(p[0])); break;
    /* exp(-i t P/2) = c I - i s P for a Pauli string P (P^2 = I) */
    case QD_G_RXX:   /* XX: |00><->|11>, |01><->|10> */
        for (int i = 0; i < 4; i++) {
            M4(i, i) = c;
            M4(i, 3 - i) = CMPLX(0, -s);
        }
        break;
    case QD_G_RYY:   /* YY|00> = -|11>, YY|11> = -|00>, YY|01> = |10>, YY|10> = |01> */
        for (int i = 0; i < 4; i++)
            M4(i, i) = c;
        M4(0, 3) = CMPLX(0, s); M4(3, 0) = CMPLX(0, s);
        M4(1, 2) = CMPLX(0, -s); M4(2, 1) = CMPLX(0, -s);
        break;
    case QD_G_RZZ:   /* ZZ = diag(1,-1,-1,1) */
        M4(0, 0) = CMPLX(c, -s); M4(1, 1) = CMPLX(c, s);
        M4(2, 2) = CMPLX(c, s); M4(3, 3) = CMPLX(c, -s);
        break;
    case QD_G_CCX:
        for (int i = 0; i < 6; i++)
            m[i + 8 * i] = 1;
        m[6 + 8 * 7] = 1;
        m[7 + 8 * 6] = 1;
        break;
    case QD_G_ECR:   /* (X(x)I - Y(x)X)/sqrt(2) */
        M4(0, 2) = r2; M4(0, 3) = CMPLX(0, r2);
        M4(1, 2) = CMPLX(0, r2); M4(1, 3) = r2;
        M4(2, 0) = r2; M4(2, 1) = CMPLX(0, -r2);
        M4(3, 0) = CMPLX(0, -r2); M4(3, 1) = r2;
        break;
    case QD_G_CSWAP:   /* |101> <-> |110> */
        for (int i = 0; i < 8; i++)
            if (i != 5 && i != 6)
                m[i + 8 * i] = 1;
        m[5 + 8 * 6] = 1;
        m[6 + 8 * 5] = 1;
        break;
    default: break;
    }
#undef M2
#undef M4
}

void qd_gate_matrix(const qd_gate_info *g, const double *p, qd_c *m)
{
    int id = gate_id(g);
    if (id >= 0) {
        gate_matrix(id, p, m);
        return;
    }
    /* not a gate of ours: identity of the advertised size, so the call cannot fail */
    if (g && g->nqubits >= 1 && g->nqubits <= 12) {
        size_t d = (size_t)1 << g->nqubits;
        memset(m, 0, sizeof(qd_c) * d * d);
        for (size_t i = 0; i < d; i++)
            m[i + d * i] = 1;
    }
}

/* ================================================================ SIMD units
 * A unit is 4 consecutive amplitudes = 8 doubles = 64 bytes: one cache line of an aligned
 * buffer; held in 8 / NW native vectors (below). GCC vector extensions keep this free of
 * intrinsics. Loads and stores go through memcpy, so no alignment or aliasing assumption
 * is made about the caller's pointer. */

/* ---------------------------------------------------------------- native-width streams
 * The pair-stream loops (dense 2x2 and 4x4 on bits >= 2: the same complex factor for
 * every amplitude of a stream) use the kernel set's own register width, NW doubles = NA
 * amplitudes: 8 with AVX-512, 4 with AVX, 2 otherwise. Written with 64-byte vectors, the AVX2 set
 * held each factor in 4 ymm registers and the four factors of a 2x2 alone filled all 16,
 * so the loop spilled on every iteration (0.2 of the memory roof). Every amplitude gets
 * the same operations in the same order at every width (z.r*v + z.i*swap(v), no FMA),
 * so the kernel sets agree bit for bit. */
#if defined(QD_GATES_NW)   /* tests: another set's width (e.g. 8 on a CPU without AVX-512) */
#define NW QD_GATES_NW
#elif defined(__AVX512F__)
#define NW 8
#elif defined(__AVX__)
#define NW 4
#else
#define NW 2
#endif
#define NA (NW / 2)
#define NP (8 / NW)   /* native vectors per unit (4 amplitudes) */
typedef double vnd __attribute__((vector_size(NW * 8)));
typedef long long vnl __attribute__((vector_size(NW * 8)));

QD_INLINE vnd nld(const qd_c *p)
{
    vnd v;
    memcpy(&v, p, sizeof v);
    return v;
}

QD_INLINE void nst(qd_c *p, vnd v)
{
    memcpy(p, &v, sizeof v);
}

QD_INLINE vnd nswap(vnd v)
{
#if NW == 8
    return __builtin_shuffle(v, (vnl){1, 0, 3, 2, 5, 4, 7, 6});
#elif NW == 4
    return __builtin_shuffle(v, (vnl){1, 0, 3, 2});
#else
    return __builtin_shuffle(v, (vnl){1, 0});
#endif
}

/* one complex factor for all lanes: z*v = r*v + i*nswap(v), r = (re, re), i = (-im, im) */
typedef struct {
    vnd r, i;
} ncx;

static ncx ncx_all(qd_c z, int conj)
{
    ncx c = {(vnd){0}, (vnd){0}};
    double re = creal(z), im = conj ? -cimag(z) : cimag(z);
    for (int k = 0; k < NA; k++) {
        c.r[2 * k] = re;
        c.r[2 * k + 1] = re;
        c.i[2 * k] = -im;
        c.i[2 * k + 1] = im;
    }
    return c;
}

QD_INLINE vnd ncmul(ncx z, vnd v)
{
    return z.r * v + z.i * nswap(v);
}

/* one complex factor per lane of a unit (z[k] for amplitude k, conjugated if conj), in the
 * unit's native pieces: z*v = r*v + i*nswap(v), r = (re, re), i = (-im, +im) */
static void ncx_lanes(const qd_c z[4], int conj, ncx out[NP])
{
    double r[8], i[8];
    for (int k = 0; k < 4; k++) {
        double re = creal(z[k]), im = conj ? -cimag(z[k]) : cimag(z[k]);
        r[2 * k] = re;
        r[2 * k + 1] = re;
        i[2 * k] = -im;
        i[2 * k + 1] = im;
    }
    for (int j = 0; j < NP; j++) {
        memcpy(&out[j].r, r + j * NW, sizeof out[j].r);
        memcpy(&out[j].i, i + j * NW, sizeof out[j].i);
    }
}

/* the unit at q times its lane factors P, piece by piece */
QD_INLINE void unit_mul(qd_c *q, const ncx *P)
{
    for (int j = 0; j < NP; j++)
        nst(q + j * NA, ncmul(P[j], nld(q + j * NA)));
}

/* ================================================================ the group walker */

typedef struct {
    int nsp;            /* number of special bits */
    int sp[64];         /* their positions, ascending */
    size_t set;         /* bits forced to 1 in every group (controls) */
    int lgst;           /* first free bit: log2 of the stride between groups of a run */
    int lglen;          /* log2 of the run length (groups): free bits lgst..sp[lgst]-1 */
    int e1;             /* first bit of the second free segment (runs are 2^e1 apart) */
    int lglen1;         /* log2 of the number of runs in that segment */
} walk;

static void walk_init(walk *w, const int *bits, int n, size_t set)
{
    w->nsp = n;
    for (int i = 0; i < n; i++) {   /* insertion sort: n is tiny */
        int b = bits[i], j = i;
        while (j > 0 && w->sp[j - 1] > b) {
            w->sp[j] = w->sp[j - 1];
            j--;
        }
        w->sp[j] = b;
    }
    int j = 0;
    while (j < n && w->sp[j] == j)
        j++;
    w->lgst = j;
    w->set = set;
    w->e1 = 0;
    w->lglen1 = 0;
    if (j == n) {   /* no special bit above: one unbounded run (62 keeps shifts defined) */
        w->lglen = 62;
        return;
    }
    w->lglen = w->sp[j] - j;
    int e = w->sp[j] + 1, k = j + 1;
    while (k < n && w->sp[k] == e) {
        e++;
        k++;
    }
    w->e1 = e;
    int l1 = k < n ? w->sp[k] - e : 62;
    if (l1 > 62 - w->lglen)
        l1 = 62 - w->lglen;
    w->lglen1 = l1;
}

/* Index of the first amplitude of group g: a zero inserted at each special bit
 * (ascending, so later positions are already final), then the control bits set. */
QD_INLINE size_t deposit(const walk *w, size_t g)
{
    for (int i = 0; i < w->nsp; i++) {
        size_t low = ((size_t)1 << w->sp[i]) - 1;
        g = ((g & ~low) << 1) | (g & low);
    }
    return g | w->set;
}

typedef void (*range_fn)(qd_c *a, const walk *w, size_t g0, size_t g1, const void *ctx);

/* Defines NAME(a, w, g0, g1, ctx): groups [g0, g1) in pieces that never cross a CHUNK
 * boundary. A piece is either part of one run or `nr` whole runs 2^e1 apart (short runs:
 * the outer loop over high bits), handed to BODY(p, nr, R, n, stride, ctx): group i of
 * run r starts at p + r*R + i*stride. BODY is always inlined, so each stride branch is
 * its own loop with a compile-time stride. LGU = 2 walks units (bits are unit bits). */
#define RANGE_FN(NAME, BODY, CTX, LGU)                                               \
    static void NAME(qd_c *a, const walk *w, size_t g0, size_t g1, const void *vctx)  \
    {                                                                                \
        const CTX *c = vctx;                                                         \
        const size_t len = (size_t)1 << w->lglen, nseg = (size_t)1 << w->lglen1;     \
        const size_t st = (size_t)1 << (w->lgst + (LGU)), R = (size_t)1 << (w->e1 + (LGU)); \
        while (g0 < g1) {                                                            \
            size_t avail = CHUNK - (g0 & (CHUNK - 1)), i0 = g0 & (len - 1), nr = 1, n; \
            if (avail > g1 - g0)                                                     \
                avail = g1 - g0;                                                     \
            if (i0 == 0 && avail >= len) {                                           \
                n = len;                                                             \
                nr = avail >> w->lglen;                                              \
                size_t left = nseg - ((g0 >> w->lglen) & (nseg - 1));                \
                if (nr > left)                                                       \
                    nr = left;                                                       \
            } else {                                                                 \
                n = len - i0 < avail ? len - i0 : avail;                             \
            }                                                                        \
            qd_c *p = a + (deposit(w, g0) << (LGU));                                 \
            if (st == 1)                                                             \
                BODY(p, nr, R, n, 1, c);                                             \
            else if (st == 2)                                                        \
                BODY(p, nr, R, n, 2, c);                                             \
            else if (st == 4)                                                        \
                BODY(p, nr, R, n, 4, c);                                             \
            else                                                                     \
                BODY(p, nr, R, n, st, c);                                            \
            g0 += nr * n;                                                            \
        }                                                                            \
    }

/* Threads to use for a call touching `amps` amplitudes (1 = stay on this thread). */
static int team(size_t amps, int par)
{
#ifdef _OPENMP
    if (!par || amps < QD_PAR_MIN || omp_in_parallel())
        return 1;
    return omp_get_max_threads();
#else
    (void)amps;
    (void)par;
    return 1;
#endif
}

/* Members [*j0, *j1) of `count` for thread t of T: contiguous, the first count % T
 * threads one more (the split of `omp for schedule(static)` in libgomp). Every loop over
 * small members uses it, so a thread keeps touching the same members from one gate to
 * the next and they stay in its core's cache. */
static void member_range(size_t count, size_t t, size_t T, size_t *j0, size_t *j1)
{
    size_t q = count / T, r = count % T;
    *j0 = t * q + (t < r ? t : r);
    *j1 = *j0 + q + (t < r);
}

/* `par` of the kernels: 0 = stay on this thread (the caller is parallel already);
 * 1 = split the groups over threads in TILE-aligned pieces; 1 + nq (> 1) = the buffer is
 * an ensemble of small members of nq qubits: split at member boundaries with
 * member_range, like the per-member paths. A member boundary is a run boundary, and a
 * run is processed the same way whatever piece it is in (a run longer than a CHUNK is
 * cut at CHUNK multiples, which member boundaries then are), so every amplitude is still
 * computed by the same instructions for any thread count. */
static int ens_par(int nq, size_t count);

/* Run fn over groups [0, G), split over threads if the call is big enough (see the note
 * at the top on determinism). */
static void drive(range_fn fn, qd_c *a, const walk *w, size_t G, size_t amps,
                  const void *ctx, int par)
{
    int nt = team(amps, par);
    if (nt <= 1) {
        fn(a, w, 0, G, ctx);
        return;
    }
#ifdef _OPENMP
    size_t tiles = (G + TILE - 1) / TILE, count = 0, Gm = 0;
    if (par > 1) {
        size_t dim = (size_t)1 << (par - 1);
        count = amps / dim;
        Gm = count ? G / count : 0;
        if (count * dim != amps || Gm * count != G || Gm == 0)
            count = 0;   /* not whole members: tiles */
    }
#pragma omp parallel num_threads(nt)
    {
        size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
        size_t g0, g1;
        if (count) {
            member_range(count, t, T, &g0, &g1);
            g0 *= Gm;
            g1 *= Gm;
        } else {
            g0 = tiles * t / T * TILE;
            g1 = tiles * (t + 1) / T * TILE;
        }
        if (g0 > G)
            g0 = G;
        if (g1 > G)
            g1 = G;
        fn(a, w, g0, g1, ctx);
    }
#endif
}

/* (re, im) pairs of n complex numbers, conjugated if conj. */
static void split_c(const qd_c *m, int n, int conj, double *out)
{
    for (int i = 0; i < n; i++) {
        out[2 * i] = creal(m[i]);
        out[2 * i + 1] = conj ? -cimag(m[i]) : cimag(m[i]);
    }
}

/* ---------------------------------------------------------------- bodies
 * Each has a vector path, taken when groups are contiguous and come in whole units
 * (every special bit >= 2), and a scalar path for the rest. Which path an amplitude
 * takes depends only on the gate and the piece it lies in, never on threads. */

/* Software prefetch for short blocks. A gate on a middle bit b (pairs 2^b apart, blocks of
 * 2^(b+1) amplitudes of a few KiB) walks two streams that restart every block, which the
 * hardware prefetchers follow badly: measured on AMD Zen 5, a 1-qubit gate on bits 5..10
 * of a 2^24 vector ran at ~0.6 of the in-place roof against ~1.0 elsewhere. Each block is
 * read exactly once front to back, so the body prefetches the lines PF_DIST bytes ahead of
 * its position in block-linear order (x + 2i: it consumes two lines per step, one of x
 * and one of y). Only for blocks of at most PF_MAXBLK amplitudes whose two halves are the
 * pair (R = 2 off1). Long runs (pieces of >= PF_MINRUN groups, so that little is fetched
 * past a run's end for nothing) are prefetched per stream, PF_AHEAD bytes ahead (bits
 * 11..12 gained ~15% from it). Distances tuned on that machine (n = 24, 1 thread); the
 * prefetches never fault and change no value. */
#define PF_DIST 16384
#define PF_AHEAD 4096
#define PF_MAXBLK ((size_t)2048)
#define PF_MINRUN ((size_t)1024)
#define PF_MINAMPS ((size_t)1 << 17)   /* 2 MiB: smaller registers sit in cache anyway */
#define PF_BLOCKS(R, off1) ((R) <= PF_MAXBLK && (R) == 2 * (off1))
#define PF_LINEAR(q)                                                     \
    do {                                                                 \
        const char *pf_l = (const char *)((uintptr_t)(q) + PF_DIST);     \
        __builtin_prefetch(pf_l, 1, 3);                                  \
        __builtin_prefetch(pf_l + 64, 1, 3);                             \
    } while (0)
#define PF_STREAM(q) __builtin_prefetch((const char *)((uintptr_t)(q) + PF_AHEAD), 1, 3)

/* dense 2x2 on the pair (p[0], p[off1]) of each group: 1-qubit and controlled gates */
typedef struct {
    size_t off1;
    int pf;             /* software prefetch (big registers only, see above) */
    double m[8];        /* m00, m10, m01, m11 as (re, im) */
    ncx A, B, C, D;     /* m00, m01, m10, m11 */
} ctx_m2;

QD_INLINE void m2_loop(double *restrict x, double *restrict y, size_t n, size_t st,
                       const double *m)
{
    /* a - b is written a + (-b) (the same value, bit for bit): an alternating -/+ pair
     * of lanes is what GCC's SLP "addsub" pattern turns into vfmaddsub, a contraction
     * that -ffp-contract=off does not stop (GCC 12), and the result would then depend on
     * whether the loop was vectorised (see QD_NOADDSUB in qd.h) */
    const double ar = m[0], ai = m[1], cr = m[2], ci = m[3];
    const double br = m[4], bi = m[5], dr = m[6], di = m[7];
    const double nai = -ai, nbi = -bi, nci = -ci, ndi = -di;
    for (size_t i = 0; i < n; i++) {
        size_t k = 2 * i * st;
        double xr = x[k], xi = x[k + 1], yr = y[k], yi = y[k + 1];
        x[k] = (ar * xr + nai * xi) + (br * yr + nbi * yi);
        x[k + 1] = (ar * xi + ai * xr) + (br * yi + bi * yr);
        y[k] = (cr * xr + nci * xi) + (dr * yr + ndi * yi);
        y[k + 1] = (cr * xi + ci * xr) + (dr * yi + di * yr);
    }
}

QD_INLINE void body_m2(qd_c *p, size_t nr, size_t R, size_t n, size_t st, const ctx_m2 *c)
{
    const size_t off1 = c->off1;
    if (st == 1 && (n & 3) == 0) {
        const ncx A = c->A, B = c->B, C = c->C, D = c->D;
        /* 4 amplitudes of each stream per step (one 64-byte line), NA at a time */
#define M2_STEP(x, y, i)                                        \
        for (size_t j = (i); j < (i) + 4; j += NA) {            \
            vnd X = nld((x) + j), Y = nld((y) + j);             \
            nst((x) + j, ncmul(A, X) + ncmul(B, Y));            \
            nst((y) + j, ncmul(C, X) + ncmul(D, Y));            \
        }
        if (c->pf && PF_BLOCKS(R, off1)) {
            for (size_t r = 0; r < nr; r++) {
                qd_c *x = p + r * R, *y = x + off1;
                for (size_t i = 0; i < n; i += 4) {
                    PF_LINEAR(x + 2 * i);
                    M2_STEP(x, y, i)
                }
            }
            return;
        }
        if (c->pf && n >= PF_MINRUN) {
            for (size_t r = 0; r < nr; r++) {
                qd_c *x = p + r * R, *y = x + off1;
                for (size_t i = 0; i < n; i += 4) {
                    PF_STREAM(x + i);
                    PF_STREAM(y + i);
                    M2_STEP(x, y, i)
                }
            }
            return;
        }
        for (size_t r = 0; r < nr; r++) {
            qd_c *x = p + r * R, *y = x + off1;
            for (size_t i = 0; i < n; i += 4) {
                M2_STEP(x, y, i)
            }
        }
#undef M2_STEP
        return;
    }
    double m[8];
    memcpy(m, c->m, sizeof m);
    for (size_t r = 0; r < nr; r++)
        m2_loop((double *)(p + r * R), (double *)(p + r * R + off1), n, st, m);
}
RANGE_FN(range_m2, body_m2, ctx_m2, 0)

/* exchange p[offa] and p[offb] of each group (x, cx, ccx, swap, cswap) */
typedef struct {
    size_t offa, offb;
} ctx_sw;

QD_INLINE void body_sw(qd_c *p, size_t nr, size_t R, size_t n, size_t st, const ctx_sw *c)
{
    for (size_t r = 0; r < nr; r++) {
        qd_c *x = p + r * R + c->offa, *y = p + r * R + c->offb;
        if (st == 1 && (n & 3) == 0) {
            for (size_t i = 0; i < n; i += NA) {
                vnd X = nld(x + i), Y = nld(y + i);
                nst(x + i, Y);
                nst(y + i, X);
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                qd_c t = x[i * st];
                x[i * st] = y[i * st];
                y[i * st] = t;
            }
        }
    }
}
RANGE_FN(range_sw, body_sw, ctx_sw, 0)

/* diagonal, scalar: p[off[e]] *= d[e] for the ne entries that are not exactly 1 (only
 * for registers of fewer than one unit; otherwise see the unit diagonal below) */
typedef struct {
    int ne;
    size_t off[4];
    double d[8];
} ctx_dg;

QD_INLINE void body_dg(qd_c *p, size_t nr, size_t R, size_t n, size_t st, const ctx_dg *c)
{
    for (int e = 0; e < c->ne; e++) {
        const double dr = c->d[2 * e], di = c->d[2 * e + 1], ndi = -di;   /* see m2_loop */
        for (size_t r = 0; r < nr; r++) {
            double *x = (double *)(p + r * R + c->off[e]);
            for (size_t i = 0; i < n; i++) {
                size_t k = 2 * i * st;
                double xr = x[k], xi = x[k + 1];
                x[k] = dr * xr + ndi * xi;
                x[k + 1] = dr * xi + di * xr;
            }
        }
    }
}
RANGE_FN(range_dg, body_dg, ctx_dg, 0)

/* diagonal over units: the gate bits >= 2 select the unit (walked as unit bits), the
 * bits < 2 select the lane, so entry e scales whole units by a lane pattern P[e]. Units
 * whose pattern is all ones are not touched: cz reads and writes a quarter of memory. */
typedef struct {
    int ne;
    int pf;             /* software prefetch (big registers only) */
    size_t off[4];      /* in amplitudes */
    ncx P[4][NP];       /* lane patterns, in native pieces */
} ctx_ud;

QD_INLINE void body_ud(qd_c *p, size_t nr, size_t R, size_t n, size_t st, const ctx_ud *c)
{
    /* a 1-qubit diagonal with both entries != 1 (rz) on a big register: both halves of
     * each block in one pass, prefetched like body_m2 (same products, other order) */
    if (c->pf && c->ne == 2 && c->off[0] == 0 && st == 4 && R == 2 * c->off[1]) {
        ncx P0[NP], P1[NP];
        memcpy(P0, c->P[0], sizeof P0);
        memcpy(P1, c->P[1], sizeof P1);
        const size_t o1 = c->off[1];
        if (R <= PF_MAXBLK) {
            for (size_t r = 0; r < nr; r++) {
                qd_c *x = p + r * R, *y = x + o1;
                for (size_t i = 0; i < 4 * n; i += 4) {
                    PF_LINEAR(x + 2 * i);
                    unit_mul(x + i, P0);
                    unit_mul(y + i, P1);
                }
            }
            return;
        }
        if (4 * n >= PF_MINRUN) {
            for (size_t r = 0; r < nr; r++) {
                qd_c *x = p + r * R, *y = x + o1;
                for (size_t i = 0; i < 4 * n; i += 4) {
                    PF_STREAM(x + i);
                    PF_STREAM(y + i);
                    unit_mul(x + i, P0);
                    unit_mul(y + i, P1);
                }
            }
            return;
        }
    }
    for (int e = 0; e < c->ne; e++) {
        ncx P[NP];
        memcpy(P, c->P[e], sizeof P);
        qd_c *q0 = p + c->off[e];
        for (size_t r = 0; r < nr; r++)
            for (size_t i = 0; i < n; i++)
                unit_mul(q0 + r * R + i * st, P);
    }
}
RANGE_FN(range_ud, body_ud, ctx_ud, 2)

/* dense 4x4 on p[off[0..3]] of each group */
typedef struct {
    size_t off[4];
    int pf;             /* software prefetch (big registers only) */
    double m[32];
    ncx V[16];          /* column-major like m */
} ctx_m4;

QD_INLINE void body_m4(qd_c *p, size_t nr, size_t R, size_t n, size_t st, const ctx_m4 *c)
{
    if (st == 1 && (n & 3) == 0) {
        ncx V[16];   /* local copy: the stores below cannot alias it, so it is not reloaded */
        memcpy(V, c->V, sizeof V);
        for (size_t r = 0; r < nr; r++) {
            qd_c *q[4];
            for (int e = 0; e < 4; e++)
                q[e] = p + r * R + c->off[e];
            const int pf = c->pf && n >= PF_MINRUN;   /* long runs: per stream */
            for (size_t i = 0; i < n; i += 4) {
                if (pf)
                    for (int e = 0; e < 4; e++)
                        PF_STREAM(q[e] + i);
                for (size_t j = i; j < i + 4; j += NA) {
                    vnd X[4], Y[4];
                    for (int e = 0; e < 4; e++)
                        X[e] = nld(q[e] + j);
                    for (int rr = 0; rr < 4; rr++)
                        Y[rr] = ncmul(V[rr], X[0]) + ncmul(V[rr + 4], X[1]) +
                                ncmul(V[rr + 8], X[2]) + ncmul(V[rr + 12], X[3]);
                    for (int e = 0; e < 4; e++)
                        nst(q[e] + j, Y[e]);
                }
            }
        }
        return;
    }
    double m[32];   /* local copy: stores through p cannot alias it */
    memcpy(m, c->m, sizeof m);
    for (size_t r = 0; r < nr; r++) {
        double *q[4];
        for (int e = 0; e < 4; e++)
            q[e] = (double *)(p + r * R + c->off[e]);
        for (size_t i = 0; i < n; i++) {
            size_t k = 2 * i * st;
            double xr[4], xi[4];
            for (int e = 0; e < 4; e++) {
                xr[e] = q[e][k];
                xi[e] = q[e][k + 1];
            }
            for (int rr = 0; rr < 4; rr++) {
                double sr = 0, si = 0;
                for (int cc = 0; cc < 4; cc++) {
                    double mr = m[2 * (rr + 4 * cc)], mi = m[2 * (rr + 4 * cc) + 1];
                    sr += mr * xr[cc] + (-mi) * xi[cc];   /* see m2_loop */
                    si += mr * xi[cc] + mi * xr[cc];
                }
                q[rr][k] = sr;
                q[rr][k + 1] = si;
            }
        }
    }
}
RANGE_FN(range_m4, body_m4, ctx_m4, 0)

/* 4x4 with only a diagonal and an anti-diagonal (rxx, ryy): y_l = D_l x_l + E_l x_{3-l},
 * half the work of the dense 4x4 */
typedef struct {
    size_t off[4];
    double d[8], e[8];
    ncx D[4], E[4];
} ctx_xx;

QD_INLINE void body_xx(qd_c *p, size_t nr, size_t R, size_t n, size_t st, const ctx_xx *c)
{
    if (st == 1 && (n & 3) == 0) {
        const ncx D0 = c->D[0], D1 = c->D[1], D2 = c->D[2], D3 = c->D[3];
        const ncx E0 = c->E[0], E1 = c->E[1], E2 = c->E[2], E3 = c->E[3];
        for (size_t r = 0; r < nr; r++) {
            qd_c *q0 = p + r * R + c->off[0], *q1 = p + r * R + c->off[1];
            qd_c *q2 = p + r * R + c->off[2], *q3 = p + r * R + c->off[3];
            for (size_t i = 0; i < n; i += NA) {
                vnd X0 = nld(q0 + i), X1 = nld(q1 + i), X2 = nld(q2 + i), X3 = nld(q3 + i);
                nst(q0 + i, ncmul(D0, X0) + ncmul(E0, X3));
                nst(q1 + i, ncmul(D1, X1) + ncmul(E1, X2));
                nst(q2 + i, ncmul(D2, X2) + ncmul(E2, X1));
                nst(q3 + i, ncmul(D3, X3) + ncmul(E3, X0));
            }
        }
        return;
    }
    double d[8], e[8];
    memcpy(d, c->d, sizeof d);
    memcpy(e, c->e, sizeof e);
    for (size_t r = 0; r < nr; r++) {
        double *q[4];
        for (int l = 0; l < 4; l++)
            q[l] = (double *)(p + r * R + c->off[l]);
        for (size_t i = 0; i < n; i++) {
            size_t k = 2 * i * st;
            double xr[4], xi[4];
            for (int l = 0; l < 4; l++) {
                xr[l] = q[l][k];
                xi[l] = q[l][k + 1];
            }
            for (int l = 0; l < 4; l++) {
                double dr = d[2 * l], di = d[2 * l + 1], er = e[2 * l], ei = e[2 * l + 1];
                q[l][k] = (dr * xr[l] + (-di) * xi[l]) + (er * xr[3 - l] + (-ei) * xi[3 - l]);
                q[l][k + 1] = (dr * xi[l] + di * xr[l]) + (er * xi[3 - l] + ei * xr[3 - l]);
            }
        }
    }
}
RANGE_FN(range_xx, body_xx, ctx_xx, 0)

/* ---------------------------------------------------------------- gates inside a unit
 * A gate whose bits are all < 2 (the last two qubits) mixes amplitudes within each
 * unit only. Any such gate is a 4x4 operator on the lanes, written as
 *   new = sum_t P_t (.) v[lane ^ t],  t = 0..3,
 * with lane-wise factors P_t; t with P_t = 0 is skipped (a diagonal is t = 0 alone,
 * a 1-qubit gate on bit 0 is t = 0, 1). The whole buffer is then one flat loop over
 * units: contiguous, branch-free, whatever the qubit. */
typedef struct {
    int act;            /* bit t set: P_t is used; 16 + t: pure permutation v[lane ^ t] */
    int pf;             /* software prefetch (big registers only) */
    ncx P[4][NP];       /* P_t, in the unit's native pieces (piece j: lanes j*NA ..) */
} ctx_u;

/* lane k <- lane k ^ tl inside one native vector (tl < NA; a compile-time constant) */
QD_INLINE vnd nperm(vnd v, int tl)
{
#if NW == 8
    if (tl == 1)
        return __builtin_shuffle(v, (vnl){2, 3, 0, 1, 6, 7, 4, 5});
    if (tl == 2)
        return __builtin_shuffle(v, (vnl){4, 5, 6, 7, 0, 1, 2, 3});
    if (tl == 3)
        return __builtin_shuffle(v, (vnl){6, 7, 4, 5, 2, 3, 0, 1});
#elif NW == 4
    if (tl == 1)
        return __builtin_shuffle(v, (vnl){2, 3, 0, 1});
#endif
    (void)tl;
    return v;
}

/* Lane k of the unit is piece k / NA, position k % NA, so lane k ^ t is piece
 * (k / NA) ^ (t / NA), position (k % NA) ^ (t % NA): a whole-piece exchange and an
 * in-register permutation. Each lane gets P_0 v + P_1 v[.^1] + P_2 v[.^2] + P_3 v[.^3]
 * (the active terms, in that order) at every width. */
QD_INLINE void unit_loop(qd_c *a, size_t u0, size_t u1, const ctx_u *c, const int act)
{
    ncx P[4][NP];
    memcpy(P, c->P, sizeof P);
    const int pf = c->pf;
    for (size_t u = u0; u < u1; u++) {
        qd_c *q = a + 4 * u;
        if (pf)
            __builtin_prefetch((const char *)((uintptr_t)q + PF_DIST), 1, 3);
        vnd v[NP], acc[NP];
        for (int j = 0; j < NP; j++)
            v[j] = nld(q + j * NA);
        if (act >= 16) {
            const int t = act - 16;
            for (int j = 0; j < NP; j++)
                acc[j] = nperm(v[j ^ (t / NA)], t % NA);
        } else {
            int first = 1;   /* resolved at compile time: act is a constant */
            for (int t = 0; t < 4; t++) {
                if (!(act & (1 << t)))
                    continue;
                for (int j = 0; j < NP; j++) {
                    vnd term = ncmul(P[t][j], nperm(v[j ^ (t / NA)], t % NA));
                    acc[j] = first ? term : acc[j] + term;
                }
                first = 0;
            }
            if (first)
                for (int j = 0; j < NP; j++)
                    acc[j] = (vnd){0};
        }
        for (int j = 0; j < NP; j++)
            nst(q + j * NA, acc[j]);
    }
}

static void range_unit(qd_c *a, const walk *w, size_t u0, size_t u1, const void *vctx)
{
    (void)w;
    const ctx_u *c = vctx;
#define UCASE(k) case k: unit_loop(a, u0, u1, c, k); break;
    switch (c->act) {
    UCASE(0) UCASE(1) UCASE(2) UCASE(3) UCASE(4) UCASE(5) UCASE(6) UCASE(7)
    UCASE(8) UCASE(9) UCASE(10) UCASE(11) UCASE(12) UCASE(13) UCASE(14) UCASE(15)
    UCASE(17) UCASE(18) UCASE(19)
    default: break;
    }
#undef UCASE
}

/* The lane operator of a gate is read off by applying the gate's own scalar kernel to
 * the 4 basis vectors of one unit (probe), so the vector path cannot disagree with the
 * scalar one about what the gate is. */
typedef void (*probe_fn)(qd_c *e4, const void *args);

static int all_low(const int *bits, int nb)
{
    for (int i = 0; i < nb; i++)
        if (bits[i] >= 2)
            return 0;
    return 1;
}

static void unit_gate(qd_c *a, size_t amps, probe_fn probe, const void *args, int par)
{
    qd_c op[16];   /* op[r + 4c] */
    for (int cc = 0; cc < 4; cc++) {
        qd_c e[4] = {0, 0, 0, 0};
        e[cc] = 1;
        probe(e, args);
        for (int r = 0; r < 4; r++)
            op[r + 4 * cc] = e[r];
    }
    ctx_u c;
    c.act = 0;
    c.pf = amps >= PF_MINAMPS;
    int nact = 0, last = 0, ones = 0;
    for (int t = 0; t < 4; t++) {
        qd_c z[4];
        int nz = 0, one = 1;
        for (int k = 0; k < 4; k++) {
            z[k] = op[k + 4 * (k ^ t)];
            nz |= z[k] != 0;
            one &= z[k] == 1;
        }
        ncx_lanes(z, 0, c.P[t]);
        if (nz) {
            c.act |= 1 << t;
            nact++;
            last = t;
            ones = one;
        }
    }
    if (nact == 1 && ones) {
        if (last == 0)
            return;   /* identity */
        c.act = 16 + last;
    }
    drive(range_unit, a, NULL, amps / 4, amps, &c, par);
}

/* ---------------------------------------------------------------- kernels
 * Internal kernels take bit positions (qubit q of an nq-qubit register is bit nq-1-q),
 * the total amplitude count amps = count * 2^nq, conj (use the complex conjugate of the
 * matrix: the column side of a density matrix) and par (0 = never open an OpenMP
 * region: the caller is already parallel over members). */

static void k1q_b(qd_c *a, size_t amps, int b, const qd_c m[4], int conj, int par);

struct args_1q {
    int b;
    const qd_c *m;
    int conj;
};

static void probe_1q(qd_c *e4, const void *v)
{
    const struct args_1q *s = v;
    k1q_b(e4, 4, s->b, s->m, s->conj, 0);
}

/* Whole units exist (amps > 4, a multiple of 4) and the gate lives inside them. */
static int use_units(size_t amps, const int *bits, int nb)
{
    return amps > 4 && amps % 4 == 0 && all_low(bits, nb);
}

static void k1q_b(qd_c *a, size_t amps, int b, const qd_c m[4], int conj, int par)
{
    if (use_units(amps, &b, 1)) {
        struct args_1q s = {b, m, conj};
        unit_gate(a, amps, probe_1q, &s, par);
        return;
    }
    walk w;
    walk_init(&w, &b, 1, 0);
    ctx_m2 c;
    c.off1 = (size_t)1 << b;
    c.pf = amps >= PF_MINAMPS;
    split_c(m, 4, conj, c.m);
    c.A = ncx_all(m[0], conj);
    c.C = ncx_all(m[1], conj);
    c.B = ncx_all(m[2], conj);
    c.D = ncx_all(m[3], conj);
    drive(range_m2, a, &w, amps >> 1, amps, &c, par);
}

static void kswap_b(qd_c *a, size_t amps, const int *bits, int nb, size_t set, size_t offa,
                    size_t offb, int par);

struct args_sw {
    const int *bits;
    int nb;
    size_t set, offa, offb;
};

static void probe_sw(qd_c *e4, const void *v)
{
    const struct args_sw *s = v;
    kswap_b(e4, 4, s->bits, s->nb, s->set, s->offa, s->offb, 0);
}

/* exchange amplitudes offa and offb of every group on `bits` whose `set` bits are 1 */
static void kswap_b(qd_c *a, size_t amps, const int *bits, int nb, size_t set, size_t offa,
                    size_t offb, int par)
{
    if (use_units(amps, bits, nb)) {
        struct args_sw s = {bits, nb, set, offa, offb};
        unit_gate(a, amps, probe_sw, &s, par);
        return;
    }
    walk w;
    walk_init(&w, bits, nb, set);
    ctx_sw c = {offa, offb};
    drive(range_sw, a, &w, amps >> nb, amps, &c, par);
}

/* diagonal d[0 .. 2^nb) on bits (bits[0] the MSB of the local index), nb <= 2 */
static void kdiag_b(qd_c *a, size_t amps, const int *bits, int nb, const qd_c *d, int conj,
                    int par)
{
    if (amps % 4 == 0) {
        int hb[2] = {0, 0}, hidx[2], nh = 0;
        for (int j = 0; j < nb; j++) {
            hidx[j] = bits[j] >= 2 ? nh : -1;
            if (bits[j] >= 2)
                hb[nh++] = bits[j] - 2;   /* unit bit */
        }
        ctx_ud c;
        c.ne = 0;
        c.pf = amps >= PF_MINAMPS;
        for (int h = 0; h < (1 << nh); h++) {
            qd_c z[4];
            int one = 1;
            for (int k = 0; k < 4; k++) {
                int l = 0;
                for (int j = 0; j < nb; j++) {
                    int v = hidx[j] >= 0 ? (h >> hidx[j]) & 1 : (k >> bits[j]) & 1;
                    l = (l << 1) | v;
                }
                z[k] = d[l];
                one &= z[k] == 1;
            }
            if (one)
                continue;
            size_t off = 0;
            for (int i = 0; i < nh; i++)
                if ((h >> i) & 1)
                    off |= (size_t)1 << hb[i];
            c.off[c.ne] = 4 * off;
            ncx_lanes(z, conj, c.P[c.ne]);
            c.ne++;
        }
        if (c.ne == 0)
            return;
        walk w;
        walk_init(&w, hb, nh, 0);
        drive(range_ud, a, &w, (amps / 4) >> nh, amps, &c, par);
        return;
    }
    /* fewer than 4 amplitudes in all (one qubit, one vector) */
    walk w;
    walk_init(&w, bits, nb, 0);
    ctx_dg c;
    c.ne = 0;
    for (int l = 0; l < (1 << nb); l++) {
        if (d[l] == 1.0)
            continue;
        size_t off = 0;
        for (int j = 0; j < nb; j++)
            if ((l >> (nb - 1 - j)) & 1)
                off |= (size_t)1 << bits[j];
        c.off[c.ne] = off;
        c.d[2 * c.ne] = creal(d[l]);
        c.d[2 * c.ne + 1] = conj ? -cimag(d[l]) : cimag(d[l]);
        c.ne++;
    }
    if (c.ne > 0)
        drive(range_dg, a, &w, amps >> nb, amps, &c, par);
}

static void k2q_b(qd_c *a, size_t amps, int b0, int b1, const qd_c m[16], int conj, int par);

struct args_2q {
    int b0, b1;
    const qd_c *m;
    int conj;
};

static void probe_2q(qd_c *e4, const void *v)
{
    const struct args_2q *s = v;
    k2q_b(e4, 4, s->b0, s->b1, s->m, s->conj, 0);
}

static void k2q_b(qd_c *a, size_t amps, int b0, int b1, const qd_c m[16], int conj, int par)
{
    int bits[2] = {b0, b1};
    if (use_units(amps, bits, 2)) {
        struct args_2q s = {b0, b1, m, conj};
        unit_gate(a, amps, probe_2q, &s, par);
        return;
    }
    walk w;
    walk_init(&w, bits, 2, 0);
    size_t s0 = (size_t)1 << b0, s1 = (size_t)1 << b1;
    size_t off[4] = {0, s1, s0, s0 | s1};
    int xx = 1;   /* only diagonal and anti-diagonal entries? */
    for (int r = 0; r < 4; r++)
        for (int cc = 0; cc < 4; cc++)
            if (cc != r && cc != 3 - r && m[r + 4 * cc] != 0)
                xx = 0;
    if (xx) {
        ctx_xx c;
        for (int l = 0; l < 4; l++) {
            c.off[l] = off[l];
            split_c(&m[l + 4 * l], 1, conj, c.d + 2 * l);
            split_c(&m[l + 4 * (3 - l)], 1, conj, c.e + 2 * l);
            c.D[l] = ncx_all(m[l + 4 * l], conj);
            c.E[l] = ncx_all(m[l + 4 * (3 - l)], conj);
        }
        drive(range_xx, a, &w, amps >> 2, amps, &c, par);
        return;
    }
    ctx_m4 c;
    memcpy(c.off, off, sizeof off);
    c.pf = amps >= PF_MINAMPS;
    split_c(m, 16, conj, c.m);
    for (int i = 0; i < 16; i++)
        c.V[i] = ncx_all(m[i], conj);
    drive(range_m4, a, &w, amps >> 2, amps, &c, par);
}

static void kctrl_b(qd_c *a, size_t amps, const int *cb, int nctrl, int tb, const qd_c m[4],
                    int conj, int par);

struct args_ctrl {
    const int *cb;
    int nctrl, tb;
    const qd_c *m;
    int conj;
};

static void probe_ctrl(qd_c *e4, const void *v)
{
    const struct args_ctrl *s = v;
    kctrl_b(e4, 4, s->cb, s->nctrl, s->tb, s->m, s->conj, 0);
}

/* m on bit tb of the amplitudes whose control bits cb are all 1; an exact X becomes a
 * pure exchange */
static void kctrl_b(qd_c *a, size_t amps, const int *cb, int nctrl, int tb, const qd_c m[4],
                    int conj, int par)
{
    int bits[64];
    size_t set = 0;
    for (int i = 0; i < nctrl; i++) {
        bits[i] = cb[i];
        set |= (size_t)1 << cb[i];
    }
    bits[nctrl] = tb;
    size_t st = (size_t)1 << tb;
    if (m[0] == 0 && m[3] == 0 && m[1] == 1 && m[2] == 1) {
        kswap_b(a, amps, bits, nctrl + 1, set, 0, st, par);
        return;
    }
    if (use_units(amps, bits, nctrl + 1)) {
        struct args_ctrl s = {cb, nctrl, tb, m, conj};
        unit_gate(a, amps, probe_ctrl, &s, par);
        return;
    }
    walk w;
    walk_init(&w, bits, nctrl + 1, set);
    ctx_m2 c;
    c.off1 = st;
    c.pf = amps >= PF_MINAMPS;
    split_c(m, 4, conj, c.m);
    c.A = ncx_all(m[0], conj);
    c.C = ncx_all(m[1], conj);
    c.B = ncx_all(m[2], conj);
    c.D = ncx_all(m[3], conj);
    drive(range_m2, a, &w, amps >> (nctrl + 1), amps, &c, par);
}

/* ---------------------------------------------------------------- public kernels */

void qd_k_1q(qd_c *a, int nq, size_t count, int q, const qd_c m[4])
{
    k1q_b(a, count << nq, nq - 1 - q, m, 0, ens_par(nq, count));
}

void qd_k_diag1(qd_c *a, int nq, size_t count, int q, qd_c d0, qd_c d1)
{
    int b = nq - 1 - q;
    qd_c d[2] = {d0, d1};
    kdiag_b(a, count << nq, &b, 1, d, 0, ens_par(nq, count));
}

void qd_k_2q(qd_c *a, int nq, size_t count, int q0, int q1, const qd_c m[16])
{
    k2q_b(a, count << nq, nq - 1 - q0, nq - 1 - q1, m, 0, ens_par(nq, count));
}

void qd_k_diag2(qd_c *a, int nq, size_t count, int q0, int q1, const qd_c d[4])
{
    int bits[2] = {nq - 1 - q0, nq - 1 - q1};
    kdiag_b(a, count << nq, bits, 2, d, 0, ens_par(nq, count));
}

void qd_k_ctrl1q(qd_c *a, int nq, size_t count, const int *ctrl, int nctrl, int t,
                 const qd_c m[4])
{
    int cb[64];
    for (int i = 0; i < nctrl; i++)
        cb[i] = nq - 1 - ctrl[i];
    kctrl_b(a, count << nq, cb, nctrl, nq - 1 - t, m, 0, ens_par(nq, count));
}

/* Threads for a loop over `count` members of dim amplitudes: only small members are
 * spread over threads (big ones are split inside, see per-member callers). */
static int member_team(size_t dim, size_t count)
{
    if (dim >= QD_PAR_MIN || count < 2)
        return 1;
    return team(count * dim, 1);
}

/* ---------------------------------------------------------------- per-member 1-qubit gates
 * on small members (QuDDPM's forward process, training steps: a different angle for each
 * of N members of a few qubits). The generic path would rebuild a walk (and, for the last
 * two qubits, probe the lane operator) for every member, which costs more than the
 * member's 2^n amplitudes. Here the layout is worked out once and each member is one
 * tight loop with its own coefficients. The amplitude arithmetic is the expression of the
 * single-register vector paths (body_m2 for bits >= 2, unit_loop below that; a real
 * matrix drops the products with its zero imaginary parts, which changes at most the sign
 * of a zero). rx, ry, rz and p take their sines and cosines from vsincos (below, within
 * 1 ulp of libm, which gate_matrix uses), so a member can differ in the last bit from the
 * same gate applied to it alone; a member's result never depends on the thread count or
 * on the other members. */
enum { B1_DENSE, B1_REAL, B1_DIAG };

/* bit b >= 2: pairs (x[i], y[i] = x[i + 2^b]) in blocks of 2^(b+1) */
QD_INLINE void b1_hi(qd_c *a, size_t dim, int b, const qd_c *m, int kind)
{
    const size_t L = (size_t)1 << b;   /* >= 4, a multiple of NA */
    if (kind == B1_REAL) {
        /* zero imaginary parts: ncmul(z, v) reduces to re * v */
        vnd A, B, C, D;
        for (int k = 0; k < NW; k++) {
            A[k] = creal(m[0]);
            C[k] = creal(m[1]);
            B[k] = creal(m[2]);
            D[k] = creal(m[3]);
        }
        for (size_t base = 0; base < dim; base += 2 * L) {
            qd_c *x = a + base, *y = x + L;
            for (size_t i = 0; i < L; i += NA) {
                vnd X = nld(x + i), Y = nld(y + i);
                nst(x + i, A * X + B * Y);
                nst(y + i, C * X + D * Y);
            }
        }
    } else if (kind == B1_DIAG) {
        const ncx A = ncx_all(m[0], 0), D = ncx_all(m[3], 0);
        for (size_t base = 0; base < dim; base += 2 * L) {
            qd_c *x = a + base, *y = x + L;
            for (size_t i = 0; i < L; i += NA) {
                nst(x + i, ncmul(A, nld(x + i)));
                nst(y + i, ncmul(D, nld(y + i)));
            }
        }
    } else {
        const ncx A = ncx_all(m[0], 0), C = ncx_all(m[1], 0);
        const ncx B = ncx_all(m[2], 0), D = ncx_all(m[3], 0);
        for (size_t base = 0; base < dim; base += 2 * L) {
            qd_c *x = a + base, *y = x + L;
            for (size_t i = 0; i < L; i += NA) {
                vnd X = nld(x + i), Y = nld(y + i);
                nst(x + i, ncmul(A, X) + ncmul(B, Y));
                nst(y + i, ncmul(C, X) + ncmul(D, Y));
            }
        }
    }
}

/* bit b < 2: inside each unit, new[k] = m[v,v] a[k] + m[v,1-v] a[k ^ 2^b], v = bit b of
 * lane k (P_0 then P_t, t = 2^b, as unit_loop adds them) */
QD_INLINE void b1_lo(qd_c *a, size_t dim, int b, const qd_c *m, int kind)
{
    qd_c z0[4], z1[4];
    for (int k = 0; k < 4; k++) {
        int v = (k >> b) & 1;
        z0[k] = m[v + 2 * v];
        z1[k] = m[v + 2 * (1 - v)];
    }
    /* in native pieces (see unit_loop): lane k ^ t, t = 2^b, is piece j ^ (t / NA) at
     * position (k % NA) ^ (t % NA). B1_LO(F): every unit, out_j = F(j, x_j, partner_j),
     * for the constant t of this b */
#define B1_LO_T(T, F)                                                             \
    for (size_t u = 0; u < dim; u += 4) {                                         \
        vnd v[NP];                                                                \
        for (int j = 0; j < NP; j++)                                              \
            v[j] = nld(a + u + j * NA);                                           \
        for (int j = 0; j < NP; j++)                                              \
            nst(a + u + j * NA, F(j, v[j], nperm(v[j ^ ((T) / NA)], (T) % NA)));  \
    }
#define B1_LO(F)          \
    if (b == 0) {         \
        B1_LO_T(1, F)     \
    } else {              \
        B1_LO_T(2, F)     \
    }
    if (kind == B1_REAL) {
        double r0[8], r1[8];
        for (int l = 0; l < 8; l++) {
            r0[l] = creal(z0[l >> 1]);
            r1[l] = creal(z1[l >> 1]);
        }
        vnd R0[NP], R1[NP];
        memcpy(R0, r0, sizeof R0);
        memcpy(R1, r1, sizeof R1);
#define B1_REAL_F(j, x, w) (R0[j] * (x) + R1[j] * (w))
        B1_LO(B1_REAL_F)
#undef B1_REAL_F
    } else {
        ncx P0[NP], P1[NP];
        ncx_lanes(z0, 0, P0);
        ncx_lanes(z1, 0, P1);
        if (kind == B1_DIAG) {
            for (size_t u = 0; u < dim; u += 4)
                unit_mul(a + u, P0);
        } else {
#define B1_DENSE_F(j, x, w) (ncmul(P0[j], (x)) + ncmul(P1[j], (w)))
            B1_LO(B1_DENSE_F)
#undef B1_DENSE_F
        }
    }
#undef B1_LO
#undef B1_LO_T
}

/* sin and cos of x[0..n) in one vectorisable loop: the argument is reduced by pi/2 in two
 * Cody-Waite rounds (fdlibm's medium-size __rem_pio2, its second round taken always, exact
 * products for |x| < 2^19) and evaluated with fdlibm's __kernel_sin/__kernel_cos
 * polynomials, so results are within 1 ulp (checked against libm over 10^7 arguments in
 * bench work: at most 1 ulp, ~3% of values differ from glibc in the last bit). Larger or
 * non-finite arguments go to libm. Each value depends only on its own argument. */
#define SC_LIM 524288.0
static void vsincos(const double *restrict x, size_t n, double *restrict sn,
                    double *restrict cs)
{
    const double invpio2 = 6.36619772367581382433e-01, toint = 6755399441055744.0,
                 pio2_1 = 1.57079632673412561417e+00, pio2_2 = 6.07710050630396597660e-11,
                 pio2_2t = 2.02226624879595063154e-21;
    const double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03,
                 S3 = -1.98412698298579493134e-04, S4 = 2.75573137070700676789e-06,
                 S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
    const double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03,
                 C3 = 2.48015872894767294178e-05, C4 = -2.75573143513906633035e-07,
                 C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
    int far = 0;
    for (size_t i = 0; i < n; i++) {
        double xi = x[i], ax = xi < 0 ? -xi : xi;
        far |= !(ax <= SC_LIM);
        xi = ax <= SC_LIM ? xi : 0.0;
        double fn = (xi * invpio2 + toint) - toint;
        long long q = (long long)fn;
        double t = xi - fn * pio2_1, w = fn * pio2_2;
        double r = t - w;
        w = fn * pio2_2t - ((t - r) - w);
        double y0 = r - w;
        double y1 = (r - y0) - w;
        double z = y0 * y0, zz = z * z;
        double rs = S2 + z * (S3 + z * S4) + z * zz * (S5 + z * S6);
        double v = z * y0;
        double s = y0 - ((z * (0.5 * y1 - v * rs) - y1) - v * S1);
        double rc = z * (C1 + z * (C2 + z * C3)) + zz * zz * (C4 + z * (C5 + z * C6));
        double hz = 0.5 * z, wc = 1.0 - hz;
        double c = wc + (((1.0 - wc) - hz) + (z * rc - y0 * y1));
        int qq = (int)(q & 3);
        double so = (qq & 1) ? c : s, co = (qq & 1) ? s : c;
        sn[i] = (qq & 2) ? -so : so;
        cs[i] = ((qq + 1) & 2) ? -co : co;
    }
    if (far)
        for (size_t i = 0; i < n; i++)
            if (!(fabs(x[i]) <= SC_LIM)) {
                sn[i] = sin(x[i]);
                cs[i] = cos(x[i]);
            }
}

/* Members get their matrices in chunks of B1_CH: ms given (4 per member, qd_k_1q_batch),
 * or gate id's matrix from params (np per member) — rx, ry, rz, p built here from one
 * vectorised sincos pass (entries placed exactly as gate_matrix places them), other gates
 * by gate_matrix. */
#define B1_CH 64
typedef struct {
    const qd_c *ms;
    int id, np;
    const double *params;
} b1_src;

static void b1_mats(const b1_src *s, size_t j0, size_t n, qd_c *M)
{
    const int id = s->id;
    const size_t np = (size_t)s->np;
    if (id != QD_G_RX && id != QD_G_RY && id != QD_G_RZ && id != QD_G_P) {
        for (size_t i = 0; i < n; i++)
            gate_matrix(id, s->params + (j0 + i) * np, M + 4 * i);
        return;
    }
    double x[B1_CH], sn[B1_CH], cs[B1_CH];
    const double h = id == QD_G_P ? 1.0 : 0.5;
    for (size_t i = 0; i < n; i++)
        x[i] = h * s->params[(j0 + i) * np];
    vsincos(x, n, sn, cs);
    for (size_t i = 0; i < n; i++) {
        qd_c *m = M + 4 * i;
        const double c = cs[i], sv = sn[i];
        switch (id) {
        case QD_G_RX: m[0] = c; m[1] = CMPLX(0, -sv); m[2] = CMPLX(0, -sv); m[3] = c; break;
        case QD_G_RY: m[0] = c; m[1] = sv; m[2] = -sv; m[3] = c; break;
        case QD_G_RZ: m[0] = CMPLX(c, -sv); m[1] = 0; m[2] = 0; m[3] = CMPLX(c, sv); break;
        default: m[0] = 1; m[1] = 0; m[2] = 0; m[3] = CMPLX(c, sv); break;   /* p */
        }
    }
}

/* members [j0, j1) */
static void b1_range(qd_c *a, size_t dim, int b, const b1_src *s, size_t j0, size_t j1,
                     int kind)
{
    qd_c M[4 * B1_CH];
    for (size_t c0 = j0; c0 < j1; c0 += B1_CH) {
        size_t n = j1 - c0 < B1_CH ? j1 - c0 : B1_CH;
        const qd_c *ms = s->ms ? s->ms + 4 * c0 : M;
        if (!s->ms)
            b1_mats(s, c0, n, M);
#define B1_MEMBERS(K)                                                           \
        for (size_t i = 0; i < n; i++) {                                        \
            if (b >= 2)                                                         \
                b1_hi(a + (c0 + i) * dim, dim, b, ms + 4 * i, K);               \
            else                                                                \
                b1_lo(a + (c0 + i) * dim, dim, b, ms + 4 * i, K);               \
        }
        if (kind == B1_REAL) {
            B1_MEMBERS(B1_REAL)
        } else if (kind == B1_DIAG) {
            B1_MEMBERS(B1_DIAG)
        } else {
            B1_MEMBERS(B1_DENSE)
        }
#undef B1_MEMBERS
    }
}

/* members split over threads by member_range; a member's result does not depend on which
 * range or chunk it falls in */
static void b1_run(qd_c *a, int nq, size_t count, int b, const b1_src *s, int kind)
{
    const size_t dim = (size_t)1 << nq;
    const int nt = member_team(dim, count);
    if (nt <= 1) {
        b1_range(a, dim, b, s, 0, count, kind);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        size_t j0, j1;
        member_range(count, (size_t)omp_get_thread_num(), (size_t)omp_get_num_threads(), &j0,
                     &j1);
        b1_range(a, dim, b, s, j0, j1, kind);
    }
#endif
}

/* members small enough for b1_run (big ones are split over threads one by one) */
static int b1_fits(int nq)
{
    return nq >= 2 && ((size_t)1 << nq) < QD_PAR_MIN;
}

static int ens_par(int nq, size_t count)
{
    return count > 1 && b1_fits(nq) ? 1 + nq : 1;
}

void qd_k_1q_batch(qd_c *a, int nq, size_t count, int q, const qd_c *ms)
{
    size_t dim = (size_t)1 << nq;
    int nt = member_team(dim, count), b = nq - 1 - q;
    if (b1_fits(nq)) {
        b1_src s = {ms, 0, 0, NULL};
        b1_run(a, nq, count, b, &s, B1_DENSE);
        return;
    }
    if (nt <= 1) {
        for (size_t j = 0; j < count; j++)
            k1q_b(a + j * dim, dim, b, ms + 4 * j, 0, 1);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t j = 0; j < count; j++)
        k1q_b(a + j * dim, dim, b, ms + 4 * j, 0, 0);
}

/* ---------------------------------------------------------------- dispatch */

/* Apply gate id with full matrix M (conjugated if conj) on qubits qs. */
static void apply_id(qd_c *a, int nq, size_t count, int id, const int *qs, const qd_c *M,
                     int conj, int par)
{
    const size_t amps = count << nq;
    int b[3];
    for (int i = 0; i < qd_gate_get((qd_gate_id)id)->nqubits; i++)
        b[i] = nq - 1 - qs[i];
    switch (kind_of[id]) {
    case K_ID:
        break;
    case K_X:
        kswap_b(a, amps, b, 1, 0, 0, (size_t)1 << b[0], par);
        break;
    case K_M1:
        k1q_b(a, amps, b[0], M, conj, par);
        break;
    case K_D1: {
        qd_c d[2] = {M[0], M[3]};
        kdiag_b(a, amps, b, 1, d, conj, par);
        break;
    }
    case K_CX:
        kswap_b(a, amps, b, 2, (size_t)1 << b[0], 0, (size_t)1 << b[1], par);
        break;
    case K_C1: {
        /* the lower-right block of the 4x4 matrix acts on the target */
        qd_c t[4] = {M[2 + 4 * 2], M[3 + 4 * 2], M[2 + 4 * 3], M[3 + 4 * 3]};
        kctrl_b(a, amps, b, 1, b[1], t, conj, par);
        break;
    }
    case K_D2: {
        qd_c d[4] = {M[0], M[5], M[10], M[15]};
        kdiag_b(a, amps, b, 2, d, conj, par);
        break;
    }
    case K_SWAP:   /* |01> <-> |10> */
        kswap_b(a, amps, b, 2, 0, (size_t)1 << b[1], (size_t)1 << b[0], par);
        break;
    case K_M2:
        k2q_b(a, amps, b[0], b[1], M, conj, par);
        break;
    case K_CCX:
        kswap_b(a, amps, b, 3, ((size_t)1 << b[0]) | ((size_t)1 << b[1]), 0,
                (size_t)1 << b[2], par);
        break;
    case K_CSWAP:   /* |101> <-> |110> */
        kswap_b(a, amps, b, 3, (size_t)1 << b[0], (size_t)1 << b[2], (size_t)1 << b[1], par);
        break;
    }
}

void qd_apply_gate(qd_c *a, int nq, size_t count, const qd_gate_info *g, const int *qs,
                   const double *params, int per_vector)
{
    int id = gate_id(g);
    if (id < 0 || count == 0 || kind_of[id] == K_ID)
        return;
    const int np = qd_gate_get((qd_gate_id)id)->nparams;
    if (!per_vector || np == 0 || count == 1) {
        qd_c M[64];
        gate_matrix(id, params, M);
        apply_id(a, nq, count, id, qs, M, 0, ens_par(nq, count));
        return;
    }
    /* one matrix per member (e.g. QuDDPM's forward process: a random angle each) */
    if (qd_gate_get((qd_gate_id)id)->nqubits == 1 && b1_fits(nq) &&
        (kind_of[id] == K_M1 || kind_of[id] == K_D1)) {
        b1_src s = {NULL, id, np, params};
        b1_run(a, nq, count, nq - 1 - qs[0], &s,
               kind_of[id] == K_D1 ? B1_DIAG : id == QD_G_RY ? B1_REAL : B1_DENSE);
        return;
    }
    size_t dim = (size_t)1 << nq;
    int nt = member_team(dim, count);
    if (nt <= 1) {
        for (size_t j = 0; j < count; j++) {
            qd_c M[64];
            gate_matrix(id, params + j * (size_t)np, M);
            apply_id(a + j * dim, nq, 1, id, qs, M, 0, 1);
        }
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t j = 0; j < count; j++) {
        qd_c M[64];
        gate_matrix(id, params + j * (size_t)np, M);
        apply_id(a + j * dim, nq, 1, id, qs, M, 0, 0);
    }
}

void qd_dm_apply_gate(qd_c *rho, int n, const qd_gate_info *g, const int *qs,
                      const double *params)
{
    int id = gate_id(g);
    if (id < 0 || kind_of[id] == K_ID)
        return;
    qd_c M[64];
    gate_matrix(id, params, M);
    /* rho as a vector of 2n qubits: rows are vector-qubits n+q (G), columns are
     * vector-qubits q (conj G), see qd.h */
    int qr[3], qc[3];
    for (int i = 0; i < qd_gate_get((qd_gate_id)id)->nqubits; i++) {
        qr[i] = n + qs[i];
        qc[i] = qs[i];
    }
    apply_id(rho, 2 * n, 1, id, qr, M, 0, 1);
    apply_id(rho, 2 * n, 1, id, qc, M, 1, 1);
}

/* ---------------------------------------------------------------- arbitrary k-qubit matrix */

/* Groups [g0, g1): gather the 2^k amplitudes of the group into x, y = M x (column by
 * column, a fixed order, so the result does not depend on threads), scatter y. */
static void matk_range(qd_c *a, const walk *w, size_t g0, size_t g1, const size_t *off,
                       size_t dk, const qd_c *m, int conj, qd_c *scr)
{
    double *x = (double *)scr, *y = (double *)(scr + dk);
    for (size_t g = g0; g < g1; g++) {
        qd_c *p = a + deposit(w, g);
        for (size_t l = 0; l < dk; l++) {
            x[2 * l] = creal(p[off[l]]);
            x[2 * l + 1] = cimag(p[off[l]]);
            y[2 * l] = 0;
            y[2 * l + 1] = 0;
        }
        for (size_t cc = 0; cc < dk; cc++) {
            const double xr = x[2 * cc], xi = x[2 * cc + 1];
            const double *mc = (const double *)(m + cc * dk);
            if (!conj) {
                for (size_t r = 0; r < dk; r++) {
                    y[2 * r] += mc[2 * r] * xr + (-mc[2 * r + 1]) * xi;   /* see m2_loop */
                    y[2 * r + 1] += mc[2 * r] * xi + mc[2 * r + 1] * xr;
                }
            } else {
                for (size_t r = 0; r < dk; r++) {
                    y[2 * r] += mc[2 * r] * xr + mc[2 * r + 1] * xi;
                    y[2 * r + 1] += mc[2 * r] * xi + (-mc[2 * r + 1]) * xr;
                }
            }
        }
        for (size_t l = 0; l < dk; l++)
            p[off[l]] = CMPLX(y[2 * l], y[2 * l + 1]);
    }
}

static qd_status apply_matrix(qd_c *a, int nq, size_t count, const int *qs, int k,
                              const qd_c *m, int conj, qd_err *e)
{
    if (k < 1 || k > 12 || k > nq)
        return qd_fail(e, QD_EARG, "matrix on %d qubits expected 1..%d qubits", k,
                       nq < 12 ? nq : 12);
    if (k == 1) {
        k1q_b(a, count << nq, nq - 1 - qs[0], m, conj, ens_par(nq, count));
        return QD_OK;
    }
    if (k == 2) {
        k2q_b(a, count << nq, nq - 1 - qs[0], nq - 1 - qs[1], m, conj,
              ens_par(nq, count));
        return QD_OK;
    }
    const size_t dk = (size_t)1 << k, amps = count << nq, G = amps >> k;
    int nt = team(amps, 1);
    size_t *off = qd_malloc(sizeof(size_t) * dk);
    qd_c *scr = qd_malloc(sizeof(qd_c) * 2 * dk * (size_t)nt);
    if (!off || !scr) {
        qd_free(off);
        qd_free(scr);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %d-qubit matrix (scratch)", k);
    }
    int bits[12];
    for (int j = 0; j < k; j++)
        bits[j] = nq - 1 - qs[j];
    for (size_t l = 0; l < dk; l++) {   /* qs[0] is the MSB of the local index */
        size_t o = 0;
        for (int j = 0; j < k; j++)
            if ((l >> (k - 1 - j)) & 1)
                o |= (size_t)1 << bits[j];
        off[l] = o;
    }
    walk w;
    walk_init(&w, bits, k, 0);
    if (nt <= 1) {
        matk_range(a, &w, 0, G, off, dk, m, conj, scr);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
        {
            size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
            matk_range(a, &w, G * t / T, G * (t + 1) / T, off, dk, m, conj, scr + 2 * dk * t);
        }
#endif
    }
    qd_free(off);
    qd_free(scr);
    return QD_OK;
}

qd_status qd_apply_matrix(qd_c *a, int nq, size_t count, const int *qs, int k,
                          const qd_c *m, qd_err *e)
{
    return apply_matrix(a, nq, count, qs, k, m, 0, e);
}

qd_status qd_dm_apply_matrix(qd_c *rho, int n, const int *qs, int k, const qd_c *m,
                             qd_err *e)
{
    if (k < 1 || k > 12 || k > n)
        return qd_fail(e, QD_EARG, "matrix on %d qubits expected 1..%d qubits", k,
                       n < 12 ? n : 12);
    int qr[12];
    for (int i = 0; i < k; i++)
        qr[i] = n + qs[i];
    qd_status s = apply_matrix(rho, 2 * n, 1, qr, k, m, 0, e);
    if (s != QD_OK)
        return s;
    return apply_matrix(rho, 2 * n, 1, qs, k, m, 1, e);
}

/* ------------------------------------------------------------------ diagonal table
 * a[i] *= tab[t(i)], t(i) = the bits of local index i on qubits qs[0..k) (qs[0] the MSB
 * of t), for `count` vectors of nq qubits: any product of diagonal gates on those qubits
 * in one pass. Blocks of B = 2^min(nq,10) amplitudes: when no table qubit is among the
 * high bits (always for nq <= 10) the table is expanded once to B entries (repeated to
 * >= 64 so tiny members still run long loops) and applied by a flat multiply; otherwise
 * t = (high part, once per block) | (low part, from a B-entry index table). Every
 * amplitude is computed alone by the same expression: results do not depend on threads
 * or on how members are split. */
#define QD_DIAGTAB_LB 10
/* threads in the current OpenMP team (1 without OpenMP) */
static int team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* qd_k_diagtab's chunks [c0, c1) of P amplitudes, the table (expanded to P) on the low bits */
static void diagtab_low(double *x, size_t amps, size_t P, const double *tr, const double *ti,
                        const double *nti, size_t c0, size_t c1)
{
    for (size_t ch = c0; ch < c1; ch++) {
        size_t i0 = P * ch, i1 = i0 + P < amps ? i0 + P : amps;
        double *xc = x + 2 * i0;
        #pragma omp simd
        for (size_t i = 0; i < i1 - i0; i++) {
            double re = xc[2 * i], im = xc[2 * i + 1];
            xc[2 * i] = re * tr[i] + im * nti[i];
            xc[2 * i + 1] = re * ti[i] + im * tr[i];
        }
    }
}

/* qd_k_diagtab's blocks [h0, h1) of 2^L amplitudes, the table also on high bits */
static void diagtab_high(double *x, int nq, int L, int k, const qd_c *tab, const unsigned *lo,
                         const size_t *himask, size_t h0, size_t h1)
{
    const size_t B = (size_t)1 << L, hm = ((size_t)1 << (nq - L)) - 1;
    for (size_t h = h0; h < h1; h++) {
        size_t hh = h & hm;
        unsigned th = 0;
        for (int j = 0; j < k; j++)
            if (hh & himask[j])
                th |= 1u << (k - 1 - j);
        double *xc = x + 2 * (h << L);
        for (size_t l = 0; l < B; l++) {
            qd_c z = tab[th | lo[l]];
            double zr = creal(z), zi = cimag(z), re = xc[2 * l], im = xc[2 * l + 1];
            xc[2 * l] = re * zr + im * (-zi);   /* see m2_loop */
            xc[2 * l + 1] = re * zi + im * zr;
        }
    }
}

void qd_k_diagtab(qd_c *a, int nq, size_t count, const int *qs, int k, const qd_c *tab)
{
    const size_t amps = count << nq;
    const int L = nq < QD_DIAGTAB_LB ? nq : QD_DIAGTAB_LB;
    const size_t B = (size_t)1 << L;
    unsigned lo[1 << QD_DIAGTAB_LB];
    size_t himask[QD_MAX_QUBITS];   /* bit of the high part (index >> L) for table bit j */
    int high = 0;
    for (size_t l = 0; l < B; l++) {
        unsigned t = 0;
        for (int j = 0; j < k; j++) {
            int b = nq - 1 - qs[j];
            if (b < L && ((l >> b) & 1))
                t |= 1u << (k - 1 - j);
        }
        lo[l] = t;
    }
    for (int j = 0; j < k; j++) {
        int b = nq - 1 - qs[j];
        himask[j] = b >= L ? (size_t)1 << (b - L) : 0;
        high |= b >= L;
    }
    double *x = (double *)a;
    /* threads only for big buffers, and no OpenMP region otherwise (see qd_k_1q_real) */
    const int par = amps >= QD_PAR_MIN && qd_get_threads() > 1;
    if (!high) {
        /* expanded table, interleaved re/im, repeated to P = max(B, 64) entries */
        const size_t P = B > 64 ? B : 64;
        double tr[1 << QD_DIAGTAB_LB], ti[1 << QD_DIAGTAB_LB], nti[1 << QD_DIAGTAB_LB];
        for (size_t i = 0; i < P; i++) {
            qd_c z = tab[lo[i & (B - 1)]];
            tr[i] = creal(z);
            ti[i] = cimag(z);
            nti[i] = -cimag(z);   /* see m2_loop */
        }
        size_t nch = (amps + P - 1) / P;
        if (par) {
            #pragma omp parallel
            {
                size_t t = (size_t)qd_thread_num(), T = (size_t)team_size();
                diagtab_low(x, amps, P, tr, ti, nti, nch * t / T, nch * (t + 1) / T);
            }
        } else {
            diagtab_low(x, amps, P, tr, ti, nti, 0, nch);
        }
        return;
    }
    const size_t nb = amps >> L;
    if (par) {
        #pragma omp parallel
        {
            size_t t = (size_t)qd_thread_num(), T = (size_t)team_size();
            diagtab_high(x, nq, L, k, tab, lo, himask, nb * t / T, nb * (t + 1) / T);
        }
    } else {
        diagtab_high(x, nq, L, k, tab, lo, himask, 0, nb);
    }
}

/* Real 2x2 matrix m (column-major) on qubit q of `count` vectors of nq qubits: the real and
 * imaginary parts transform alike, so a pair of blocks of b = 2^(nq-1-q) amplitudes is two
 * contiguous runs of 2b doubles (12 flops per amplitude pair instead of 28 for a complex
 * matrix). Used by the circuit gate fusion for the rotation part of a split 2x2. Each
 * amplitude is computed alone: results do not depend on threads or on the member count. */
/* blocks [lo, hi) of qd_k_1q_real (pairs of runs of b amplitudes) */
static void k1q_real_range(double *x, size_t b, const double m[4], size_t lo, size_t hi)
{
    const double m00 = m[0], m10 = m[1], m01 = m[2], m11 = m[3];
    if (b == 1) {
        for (size_t i = lo; i < hi; i++) {
            double *p = x + 4 * i;
            double r0 = p[0], i0 = p[1], r1 = p[2], i1 = p[3];
            p[0] = m00 * r0 + m01 * r1;
            p[1] = m00 * i0 + m01 * i1;
            p[2] = m10 * r0 + m11 * r1;
            p[3] = m10 * i0 + m11 * i1;
        }
        return;
    }
    for (size_t blk = lo; blk < hi; blk++) {
        double *p0 = x + 4 * b * blk, *p1 = p0 + 2 * b;
        #pragma omp simd
        for (size_t k = 0; k < 2 * b; k++) {
            double u = p0[k], v = p1[k];
            p0[k] = m00 * u + m01 * v;
            p1[k] = m10 * u + m11 * v;
        }
    }
}

void qd_k_1q_real(qd_c *a, int nq, size_t count, int q, const double m[4])
{
    const size_t amps = count << nq, b = (size_t)1 << (nq - 1 - q);
    double *x = (double *)a;
    const size_t nblk = amps / (2 * b);
    /* threads only for big buffers, and no OpenMP region otherwise (qd.h: a region costs a
     * futex wake even when its if clause is false; the fusion's deferred mode calls this
     * once per member and pass) */
    if (amps >= QD_PAR_MIN && qd_get_threads() > 1) {
        #pragma omp parallel
        {
            size_t t = (size_t)qd_thread_num(), T = (size_t)team_size();
            k1q_real_range(x, b, m, nblk * t / T, nblk * (t + 1) / T);
        }
        return;
    }
    k1q_real_range(x, b, m, 0, nblk);
}
