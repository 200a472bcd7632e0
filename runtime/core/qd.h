/*
 * qd.h — the numerical core of qd (libqdcore.a). No Lua in here.
 *
 * Conventions (fixed, see docs/api.md and design.md):
 *  - qubit 0 is the MOST significant bit of a basis index: in an nq-qubit vector,
 *    qubit q is bit (nq-1-q) of the index. |q0 q1 ... q(n-1)>.
 *  - complex numbers are double _Complex (qd_c), interleaved; big buffers are 64-byte
 *    aligned (qd_malloc).
 *  - every matrix is COLUMN-MAJOR: element (r, c) of a d x d matrix m is m[r + c*d].
 *    This holds for small gate matrices too: a 2x2 gate {{a,b},{c,d}} is stored
 *    {a, c, b, d}.
 *  - for a k-qubit gate on qubits qs[0..k), qs[0] is the most significant bit of the
 *    gate's local 2^k index (so cx on {c, t} is the textbook CNOT matrix with c first).
 *  - a batch of `count` vectors of nq qubits is stored contiguously, vector j at
 *    a + j*2^nq. A pure state is count = 1; an ensemble of N states is a 2^n x N
 *    column-major matrix, i.e. count = N.
 *  - a density matrix on n qubits is 2^n x 2^n column-major; viewed as a vector of
 *    2n "qubits", element (r, c) sits at index c*2^n + r, so the column index holds the
 *    high bits: row-qubit q is vector-qubit n+q, column-qubit q is vector-qubit q.
 *    U rho U^dagger = apply U to vector-qubits n+q and conj(U) to vector-qubits q.
 *  - reductions that must not depend on the thread count are summed in fixed blocks
 *    (QD_BLOCK amplitudes) whose partial sums are then added in order.
 *
 * Errors: functions that can fail return qd_status and fill a qd_err; they never print,
 * exit, abort or longjmp. Functions documented as "cannot fail" trust their (already
 * validated) arguments; the Lua bindings validate everything first.
 */
#ifndef QD_H
#define QD_H

#include <stddef.h>
#include <stdint.h>
#include <complex.h>

#define QD_VERSION "0.1.0"

typedef double _Complex qd_c;

/* a * b written out as two plain sums of products: real part ar*br + (-ai)*bi, the same
 * value as the C99 product's ar*br - ai*bi. In a vectorised loop GCC 12 turns the C99 form
 * (an alternating -/+ pair) into vfmaddsub even under -ffp-contract=off, and the AVX2 and
 * AVX-512 builds would then round differently from the portable one; see
 * scripts/check_contraction.sh. Finite inputs only (no C99 NaN/Inf recovery, __muldc3). */
static inline qd_c qd_cmul(qd_c a, qd_c b)
{
    const double ar = creal(a), ai = cimag(a), br = creal(b), bi = cimag(b);
    return CMPLX(ar * br + (-ai) * bi, ar * bi + ai * br);
}

/* ---------------------------------------------------------------- errors (err.c) */
typedef enum {
    QD_OK = 0,
    QD_EARG,      /* bad argument (shape, range, value) */
    QD_ENOMEM,    /* allocation failed / would not fit */
    QD_EIO,       /* file could not be opened/read/written */
    QD_EFORMAT,   /* file content malformed */
    QD_ENUMERIC,  /* numerical failure (LAPACK info != 0, zero-probability outcome...) */
    QD_EINTR      /* stopped by qd_interrupt (Ctrl-C, a time limit); outputs unspecified */
} qd_status;

typedef struct {
    qd_status status;
    char msg[512];
} qd_err;

/* Sets e (if not NULL) and returns s. printf-style message. */
qd_status qd_fail(qd_err *e, qd_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void qd_err_clear(qd_err *e);

/* ---------------------------------------------------------------- memory (mem.c) */
#define QD_ALIGN 64
#define QD_MAX_QUBITS 60      /* hard limit on any register (index fits in size_t) */
#define QD_BLOCK 4096         /* block size for deterministic reductions */

/* 64-byte aligned allocation; NULL on failure or when bytes == 0. */
void *qd_malloc(size_t bytes);
void *qd_calloc(size_t count, size_t size);   /* zeroed, overflow-checked */
void qd_free(void *p);
/* *out = a*b; returns 1 on overflow, 0 otherwise. */
int qd_mul_overflow(size_t a, size_t b, size_t *out);
/* bytes of a complex buffer of 2^nq * count amplitudes; returns 1 on overflow. */
int qd_amp_bytes(int nq, size_t count, size_t *bytes);
/* "256 GiB", "1.5 MiB", "48 B" */
void qd_format_bytes(double bytes, char *buf, size_t len);
/* physical memory of the machine in bytes (0 if unknown). */
size_t qd_phys_mem(void);
/* memory available to a new allocation without swapping: MemAvailable of /proc/meminfo,
 * else the physical memory (0 if unknown). */
size_t qd_avail_mem(void);

/* Memory limit (qd --max-memory): 0 = none. Set once, before anything is allocated;
 * qd_malloc then refuses (NULL) what would take the bytes charged past the limit. The
 * interpreter charges Lua's own allocations to the same account (qd_mem_charge). */
void qd_mem_set_limit(size_t bytes);
size_t qd_mem_get_limit(void);
int qd_mem_charge(size_t bytes);        /* 1 charged (or no limit), 0 refused */
void qd_mem_uncharge(size_t bytes);
int qd_mem_limit_hit(void);             /* 1 once something was refused for the limit */

/* ---------------------------------------------------------------- threads (parallel.c) */
/* Below this many amplitudes a core loop runs on the calling thread: at 2^14 amplitudes
 * (256 KiB) a pass of a few flops per amplitude takes ~10 us, several times an OpenMP
 * fork/join. Files whose loops do much less or much more per amplitude scale it (measure.c,
 * state.c) or count other units (diffusion.c, random.c: per-member work). */
#define QD_PAR_MIN ((size_t)1 << 14)
void qd_set_threads(int n);          /* OpenMP threads for core loops (>= 1) */
int qd_get_threads(void);
/* Loops that may run on one thread take a branch without any OpenMP region rather than
 * `#pragma omp parallel ... if (cond)`: libgomp enters a region (a team, a futex wake at its
 * end, ~0.5 us) even when the condition is false, and small registers run such loops
 * hundreds of times per training step. qd_thread_num(): the caller's number in a region. */
int qd_thread_num(void);

/* Interruption: set (from a signal handler) by the interpreter on Ctrl-C or a time limit,
 * cleared once the interruption is delivered to Lua. Long kernels (ODE and SSE
 * integration, Lanczos, circuit runs on big registers) poll it between steps and return
 * QD_EINTR with their objects valid but the result unspecified. */
extern volatile int qd_interrupt;

/* Progress of long single calls (qd.lindblad, qd.sse): kernels report
 * qd_progress(what, 0) when they start, the fraction done now and then, and (what, 1) when
 * they end (also on failure). The interpreter's hook draws a progress line for calls that
 * last more than a second; NULL (the default): nothing. Thread: the kernel's own thread only. */
typedef void (*qd_progress_cb)(const char *what, double frac, double seconds);
extern qd_progress_cb qd_progress_hook;
void qd_progress(const char *what, double frac);
#define QD_CHECK_INTERRUPT(e)                                                               \
    do {                                                                                    \
        if (qd_interrupt)                                                                   \
            return qd_fail((e), QD_EINTR, "interrupted");                                   \
    } while (0)

/* ---------------------------------------------------------------- rng (rng.c)
 * Counter-based generator: output i of a stream is mix(key, i). Deterministic,
 * splittable: qd_rng_sub(r, k) is the k-th substream of r's current key (does not
 * advance r), qd_rng_split(r) draws a fresh key from r (advances r). Ensemble member k
 * draws from qd_rng_sub(base, k) where base = qd_rng_split(run rng), so results do not
 * depend on batch size or thread count. */
typedef struct {
    uint64_t key;
    uint64_t ctr;
    uint64_t seed;      /* the seed the root generator was made from (for records) */
    int has_spare;      /* Box-Muller spare */
    double spare;
} qd_rng;

void qd_rng_init(qd_rng *r, uint64_t seed);
uint64_t qd_rng_u64(qd_rng *r);
double qd_rng_uniform(qd_rng *r);          /* [0, 1), 53 bits */
double qd_rng_normal(qd_rng *r);           /* N(0, 1) */
/* N(0, 1) by qd_lanemath.h's Box-Muller (52-bit uniforms, qd's own log/sin/cos): the same
 * bits on every CPU, kernel set and C library, and the numbers the SSE's lane path draws
 * for a member QD_LV at a time. The SSE's increments; not the same numbers as
 * qd_rng_normal. */
double qd_rng_gauss(qd_rng *r);
qd_c qd_rng_cnormal(qd_rng *r);            /* re, im ~ N(0, 1/2) independently: E|z|^2 = 1 */
qd_rng qd_rng_split(qd_rng *r);
qd_rng qd_rng_sub(const qd_rng *r, uint64_t k);

/* ---------------------------------------------------------------- gates
 * The gate registry (gate_table.c) is the one place that knows a gate: its id, arity,
 * parameters, generator, inverse, shift rule and kind of matrix. Kernels dispatch on the
 * id (gates.c), the circuit, adjoint and bindings ask the registry's fields; nothing
 * compares gate names. Adding a gate: a row in gate_table.c, its matrix in gates.c's
 * gate_matrix and its kernel class in gates.c's kind_of (docs/architecture.md).
 * Named gates (lowercase OpenQASM names), rotations exp(-i theta P / 2):
 *  1 qubit, 0 params: id x y z h s sdg t tdg sx sxdg
 *  1 qubit, 1 param : rx ry rz p (phase diag(1, e^{i l}))
 *  1 qubit, 3 params: u (OpenQASM 3 U(theta, phi, lambda))
 *  2 qubits, 0 params: cx cy cz ch swap ecr
 *  2 qubits, 1 param : crx cry crz cp rxx ryy rzz
 *  3 qubits, 0 params: ccx cswap
 */
typedef enum {
    QD_G_ID, QD_G_X, QD_G_Y, QD_G_Z, QD_G_H, QD_G_S, QD_G_SDG, QD_G_T, QD_G_TDG, QD_G_SX,
    QD_G_SXDG, QD_G_RX, QD_G_RY, QD_G_RZ, QD_G_P, QD_G_U,
    QD_G_CX, QD_G_CY, QD_G_CZ, QD_G_CH, QD_G_SWAP,
    QD_G_CRX, QD_G_CRY, QD_G_CRZ, QD_G_CP, QD_G_RXX, QD_G_RYY, QD_G_RZZ,
    QD_G_CCX, QD_G_CSWAP,
    QD_G_ECR,
    QD_G_COUNT
} qd_gate_id;

/* how a gate's inverse is formed */
typedef enum {
    QD_INV_NEGATE,   /* the same gate with every angle negated (self-inverse: no angles) */
    QD_INV_OTHER,    /* another gate (inverse), angles unchanged: s <-> sdg, t <-> tdg, ... */
    QD_INV_U         /* u(t, f, l)^-1 = u(-t, -l, -f) */
} qd_gate_inv;

#define QD_GF_DIAG 1u   /* diagonal matrix */
#define QD_GF_PERM 2u   /* a permutation of basis states (phases allowed) */

typedef struct {
    const char *name;
    int nqubits;
    int nparams;
    const char *doc;     /* one line: matrix / definition */
    qd_gate_id id;
    unsigned flags;      /* QD_GF_* */
    char pauli;          /* 'X', 'Y', 'Z': exp(-i theta P(x)..(x)P / 2) on all its qubits; 0 */
    qd_gate_inv inv;
    qd_gate_id inverse;  /* QD_INV_OTHER: the inverse gate */
    /* parameter-shift data per angle: the frequency w of the matrix entries' dependence
     * e^{+-i w a} (1/2 for rotations, 1 for phases), and 1 where the shift rule needs four
     * terms (a controlled rotation: generator eigenvalues {0, +-1/2}) */
    double freq[3];
    unsigned char fourterm;
} qd_gate_info;

const qd_gate_info *qd_gate_lookup(const char *name);   /* NULL if unknown */
const qd_gate_info *qd_gate_list(size_t *count);         /* the whole table */
const qd_gate_info *qd_gate_get(qd_gate_id id);          /* NULL if out of range */
/* Full 2^k x 2^k column-major matrix of gate g with params p (cannot fail). */
void qd_gate_matrix(const qd_gate_info *g, const double *p, qd_c *m);

/* Apply gate g on qubits qs[0..g->nqubits) to `count` vectors of nq qubits.
 * params: g->nparams values shared by all vectors, or, if per_vector != 0,
 * count * g->nparams values (vector j uses params + j*nparams).
 * Dispatches to specialised kernels (diagonal, controlled, permutation, dense).
 * Qubits must be distinct and < nq (validated by the caller). Cannot fail. */
void qd_apply_gate(qd_c *a, int nq, size_t count, const qd_gate_info *g, const int *qs,
                   const double *params, int per_vector);

/* Same on a density matrix of n qubits: rho -> G rho G^dagger (per_vector must be 0
 * semantics: one set of params). */
void qd_dm_apply_gate(qd_c *rho, int n, const qd_gate_info *g, const int *qs,
                      const double *params);

/* Arbitrary k-qubit matrix m (2^k x 2^k column-major, not checked for unitarity) on
 * qubits qs[0..k) of `count` vectors. Needs O(2^k) scratch per thread; returns
 * QD_ENOMEM if that cannot be allocated. k <= 12. */
qd_status qd_apply_matrix(qd_c *a, int nq, size_t count, const int *qs, int k,
                          const qd_c *m, qd_err *e);
/* rho -> M rho M^dagger for an n-qubit density matrix. */
qd_status qd_dm_apply_matrix(qd_c *rho, int n, const int *qs, int k, const qd_c *m,
                             qd_err *e);

/* Low-level kernels (used by the dispatcher, exported for benchmarks and circuits). */
void qd_k_1q(qd_c *a, int nq, size_t count, int q, const qd_c m[4]);
void qd_k_1q_batch(qd_c *a, int nq, size_t count, int q, const qd_c *ms); /* ms: 4*count */
void qd_k_diag1(qd_c *a, int nq, size_t count, int q, qd_c d0, qd_c d1);
void qd_k_2q(qd_c *a, int nq, size_t count, int q0, int q1, const qd_c m[16]);
void qd_k_diag2(qd_c *a, int nq, size_t count, int q0, int q1, const qd_c d[4]);
/* controlled 1-qubit gate: m on t where all ctrl[0..nctrl) bits are 1 */
void qd_k_ctrl1q(qd_c *a, int nq, size_t count, const int *ctrl, int nctrl, int t,
                 const qd_c m[4]);
/* diagonal table: a[i] *= tab[bits of local index i on qs[0..k), qs[0] the MSB], k <= 10
 * (gates.c; used by the circuit gate fusion) */
void qd_k_diagtab(qd_c *a, int nq, size_t count, const int *qs, int k, const qd_c *tab);
/* real 2x2 matrix m (column-major) on qubit q (gates.c; circuit gate fusion) */
void qd_k_1q_real(qd_c *a, int nq, size_t count, int q, const double m[4]);

/* ---------------------------------------------------------------- linear algebra (linalg.c)
 * The only file that includes cblas/lapack. Column-major throughout. */
/* C = alpha * op(A) * op(B) + beta * C; op: 'N', 'T', 'C' */
void qd_la_zgemm(char opa, char opb, size_t m, size_t n, size_t k, qd_c alpha,
                 const qd_c *A, size_t lda, const qd_c *B, size_t ldb, qd_c beta,
                 qd_c *C, size_t ldc);
/* the same for real matrices ('N', 'T'); thread-count independent like qd_la_zgemm */
void qd_la_dgemm(char opa, char opb, size_t m, size_t n, size_t k, double alpha,
                 const double *A, size_t lda, const double *B, size_t ldb, double beta,
                 double *C, size_t ldc);
/* Upper triangle of C = alpha A^H A + beta C (trans 'C', A k x n) or alpha A A^H + beta C
 * (trans 'N', A n x k); C is n x n, its strictly lower triangle untouched (zherk). */
void qd_la_zherk(char trans, size_t n, size_t k, double alpha, const qd_c *A, size_t lda,
                 double beta, qd_c *C, size_t ldc);
/* Eigen-decomposition of a Hermitian d x d matrix (A is overwritten with the
 * eigenvectors as columns if vecs != 0). w: d ascending eigenvalues. */
qd_status qd_la_eigh(qd_c *A, size_t d, double *w, int vecs, qd_err *e);
/* The same by divide and conquer (zheevd): faster with eigenvectors, same values to rounding. */
qd_status qd_la_eigh_dc(qd_c *A, size_t d, double *w, int vecs, qd_err *e);
/* Singular values (descending) of an m x n matrix (A is destroyed). s: min(m,n). */
qd_status qd_la_svdvals(qd_c *A, size_t m, size_t n, double *s, qd_err *e);
/* QR of an m x n matrix (m >= n): A is overwritten with Q (m x n), R's diagonal in rdiag. */
qd_status qd_la_qr(qd_c *A, size_t m, size_t n, qd_c *rdiag, qd_err *e);
/* Principal square root of a Hermitian PSD matrix (negative eigenvalues clipped to 0). */
qd_status qd_la_sqrtm_psd(const qd_c *A, size_t d, qd_c *out, qd_err *e);
void qd_la_set_threads(int n);   /* keeps OpenBLAS at 1 thread: qd_la_zgemm parallelises itself */
const char *qd_la_info(void);    /* "OpenBLAS 0.3.21 (core: Haswell)" */
/* The channel of an isometry's Kraus blocks: W holds di = 2^nin columns of 2^(nout+m)
 * amplitudes (column i = U|i>|0..0>), K_j[a, i] = W_i[a 2^m + j] (2^nout x di: the last m
 * qubits traced out); out = sum_j K_j rho K_j^H = Tr_m[W rho W^H] (2^nout x 2^nout). QGDM's
 * step (nout = nin) or one block of RE-QGDM's when its extra qubits start pure. */
qd_status qd_isometry_channel(const qd_c *W, int nin, int nout, int m, const qd_c *rho, qd_c *out, qd_err *e);
/* Its vector-jacobian product for G = dL/d conj(out) (Hermitian; dL = 2 Re sum conj(G) dout):
 * gW = dL/d conj(W) (block j: 2 G K_j rho), grho = sum_j K_j^H G K_j; either may be NULL. */
qd_status qd_isometry_channel_vjp(const qd_c *W, int nin, int nout, int m, const qd_c *rho, const qd_c *G,
                                  qd_c *gW, qd_c *grho, qd_err *e);
/* The same two for density-matrix inputs (linalg.c, "isometry channels on Hermitian inputs"):
 * with rho exactly Hermitian and positive definite (G exactly Hermitian for the vjp) the
 * outputs are exactly Hermitian and cost about half; any other input takes the functions
 * above. Same values to rounding. */
qd_status qd_isometry_channel_h(const qd_c *W, int nin, int nout, int m, const qd_c *rho, qd_c *out, qd_err *e);
qd_status qd_isometry_channel_vjp_h(const qd_c *W, int nin, int nout, int m, const qd_c *rho, const qd_c *G,
                                    qd_c *gW, qd_c *grho, qd_err *e);

/* ---------------------------------------------------------------- states (state.c)
 * Constructors and conversions on raw buffers. */
void qd_state_zero(qd_c *a, int nq);                /* |0...0> */
void qd_state_basis(qd_c *a, int nq, size_t idx);   /* |idx> */
/* Haar-random state from rng (2^nq complex normals, normalised). */
void qd_state_haar(qd_c *a, int nq, qd_rng *r);
/* out (nq + na qubits) = |0..0>_A (x) psi, ancillas most significant. */
void qd_state_embed(const qd_c *psi, int nq, int na, qd_c *out);
/* out = a (x) b (a's qubits first = most significant). */
void qd_kron_vec(const qd_c *a, int na, const qd_c *b, int nb, qd_c *out);
void qd_kron_dm(const qd_c *a, int na, const qd_c *b, int nb, qd_c *out);
/* rho = |psi><psi| */
void qd_dm_from_state(const qd_c *psi, int n, qd_c *rho);
/* rho = mean_j |psi_j><psi_j| over count vectors (one zgemm / zherk). */
void qd_dm_from_ensemble(const qd_c *a, int n, size_t count, qd_c *rho);

/* ---------------------------------------------------------------- measurement (measure.c) */
/* Probabilities of the 2^k outcomes of qubits qs[0..k) (qs[0] = MSB of the outcome
 * index), for one vector of nq qubits. k = nq with qs = 0..nq-1 gives all |a_i|^2. */
void qd_probs(const qd_c *a, int nq, const int *qs, int k, double *out);
void qd_dm_probs(const qd_c *rho, int n, const int *qs, int k, double *out);
/* Draw `shots` outcomes from a distribution p[0..d) (sums to ~1), counts[0..d) += hits.
 * Deterministic for a given rng state. */
void qd_sample_counts(const double *p, size_t d, size_t shots, qd_rng *r, uint64_t *counts);
/* Inverse CDF: the first outcome m whose cumulative probability exceeds u * total
 * (u in [0, 1)); outcomes with p <= 0 are never chosen. *total = sum of the positive p. */
size_t qd_select_outcome(const double *p, size_t K, double u, double *total);
/* Projective measurement of qubits qs[0..k) of ONE vector of nq qubits.
 * u in [0,1) selects the outcome by inverse CDF over outcome index. If keep != 0, out has
 * nq qubits (collapsed, renormalised); else out has nq-k qubits (measured qubits removed,
 * remaining in their original order). out may equal a when keep != 0 and must NOT alias a
 * when keep == 0. prob is relative to the input's norm (unnormalised input is fine).
 * Returns QD_EARG for bad qubits, QD_ENUMERIC if the state has zero norm. */
qd_status qd_measure(const qd_c *a, int nq, const int *qs, int k, double u, int keep,
                     qd_c *out, size_t *outcome, double *prob, qd_err *e);
/* Same with a FIXED outcome (prob may be 0 -> QD_ENUMERIC "outcome has probability 0"). */
qd_status qd_project(const qd_c *a, int nq, const int *qs, int k, size_t outcome, int keep,
                     qd_c *out, double *prob, qd_err *e);
/* Density-matrix measurement: outcome by u, rho -> P rho P / p, kept on all qubits
 * (keep != 0; out may equal rho) or traced down to the unmeasured qubits (out must not
 * alias rho). p is relative to the trace. */
qd_status qd_dm_measure(const qd_c *rho, int n, const int *qs, int k, double u, int keep,
                        qd_c *out, size_t *outcome, double *prob, qd_err *e);
/* Partial trace: keep qubits keep[0..k) (in the given order, keep[0] most significant of
 * the result). From a pure state or a density matrix. out: 2^k x 2^k. */
void qd_ptrace_state(const qd_c *psi, int n, const int *keep, int k, qd_c *out);
void qd_ptrace_dm(const qd_c *rho, int n, const int *keep, int k, qd_c *out);
/* The block <b|rho|b> of the kept qubits (unnormalised), b = rest: the other qubits' basis
 * state (in their order, the last least significant). out: 2^k x 2^k. */
void qd_dm_block(const qd_c *rho, int n, const int *keep, int k, size_t rest, qd_c *out);

/* ---------------------------------------------------------------- quantities (quantities.c) */
double qd_norm2(const qd_c *a, size_t d);                    /* sum |a_i|^2, deterministic */
qd_c qd_inner(const qd_c *a, const qd_c *b, size_t d);       /* <a|b> = sum conj(a_i) b_i */
/* <psi|P|psi> for a Pauli string: ops[i] in "IXYZ" acting on qubit qs[i], i < k. Real. */
double qd_expect_pauli(const qd_c *a, int nq, const char *ops, const int *qs, int k);
/* y[i] = atanh(x[i]), |x[i]| < 1 (vmath.c: qd's own log, the same bits on every CPU; within a
 * few ulp of libm's) */
void qd_vm_atanh(const double *x, double *y, size_t n);
/* the same for count vectors side by side (an ensemble), out[j] for vector j: the same bits */
void qd_expect_pauli_batch(const qd_c *a, int nq, size_t count, const char *ops, const int *qs,
                           int k, double *out);
double qd_dm_expect_pauli(const qd_c *rho, int n, const char *ops, const int *qs, int k);
double qd_dm_trace_re(const qd_c *rho, int n);
double qd_dm_purity(const qd_c *rho, int n);                 /* Tr rho^2 */
/* |<a|b>|^2 / (|a|^2 |b|^2 ) is NOT done: states are assumed normalised. */
double qd_fid_pure_pure(const qd_c *a, const qd_c *b, int n);
double qd_fid_pure_dm(const qd_c *psi, const qd_c *rho, int n);          /* <psi|rho|psi> */
/* Uhlmann fidelity (Tr sqrt(sqrt(rho) sigma sqrt(rho)))^2. */
qd_status qd_fid_dm_dm(const qd_c *rho, const qd_c *sigma, int n, double *f, qd_err *e);
/* 1/2 ||rho - sigma||_1 */
qd_status qd_trace_distance(const qd_c *rho, const qd_c *sigma, int n, double *t, qd_err *e);
/* -sum lambda log(lambda), natural log, eigenvalues < 1e-15 ignored */
qd_status qd_entropy_vn(const qd_c *rho, int n, double *s, qd_err *e);
/* Schmidt rank of psi across (qubits in A) | (rest): number of singular values > tol. */
qd_status qd_schmidt_rank(const qd_c *psi, int n, const int *A, int k, double tol,
                          size_t *rank, qd_err *e);
/* out (N x M, column-major) = |<a_i|b_j>|^2 for ensembles A (N vectors) and B (M vectors)
 * of nq qubits: one zgemm A^H B then |.|^2. Needs N*M complex scratch (QD_ENOMEM). */
qd_status qd_overlaps(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq, double *out,
                      qd_err *e);

/* ---------------------------------------------------------------- .npy files (npy.c)
 * numpy format v1.0/2.0/3.0. Read: dtypes c8 c16 f2 f4 f8, ints i1..i8 u1..u8, b1, in
 * either byte order (big-endian is swapped), C or Fortran order, any ndim <= 8; data
 * returned in C order as complex128 (if the file is complex) or float64. On error *out is
 * left zeroed. Write: complex128 or float64, atomically (temporary file + rename). */
typedef struct {
    int ndim;
    size_t shape[8];
    int is_complex;     /* data is qd_c* if 1, double* if 0 */
    void *data;         /* qd_malloc'd, C order; caller frees with qd_free */
    size_t count;       /* number of elements */
} qd_npy;

qd_status qd_npy_read(const char *path, qd_npy *out, qd_err *e);
/* data: count = prod(shape) elements, complex (qd_c) or real (double);
 * fortran_order != 0 writes a Fortran-order header (data laid out column-major). */
qd_status qd_npy_write(const char *path, const void *data, int is_complex, int ndim,
                       const size_t *shape, int fortran_order, qd_err *e);

#endif
