/*
 * qd_dynamics.h — Hamiltonians and dynamics in the numerical core (pauli.c, dynamics.c).
 * No Lua.
 *
 * Pauli sums. An operator O = sum_t c_t P_t on n qubits, P_t a Pauli string. A string is
 * held as two masks over INDEX bits (qubit q is bit n-1-q, qd.h) and its number of Y's:
 *     P = i^ny X^x Z^z      (x: bits with X or Y; z: bits with Z or Y; ny = popcount(x & z))
 * which is exactly the tensor product of the letters (Y = i X Z). Acting on a basis state,
 *     P |b> = i^ny (-1)^popcount(b & z) |b ^ x>,
 * so O|psi> is computed term by term from the masks, never building a matrix: cost
 * O(terms * 2^n) per vector. Coefficients are complex (jump operators such as
 * sigma_minus = (X + iY)/2 need that); a Hamiltonian is a sum with real coefficients.
 *
 * Time evolution exp(-iHt) (qd_ps_evolve):
 *  - QD_EXPM_EIG: dense H, zheev, U = V exp(-i w t) V^H, applied to all members with one
 *    zgemm. Accurate to ~1e-13 * (1 + |t| ||H||) (eigenvector orthogonality).
 *  - QD_EXPM_KRYLOV: Lanczos (full re-orthogonalisation, dimension <= QD_KRYLOV_M) with
 *    adaptive sub-steps as in Expokit (Sidje 1998): on each sub-step tau the a-posteriori
 *    estimate err = beta h_{m+1,m} |e_m^T exp(-i tau T_m) e_1| (Saad 1992) must satisfy
 *    err <= tol * beta * tau / |t|, so the accumulated error is <= ~tol * ||psi|| (tol
 *    default 1e-12). Exact (happy breakdown) when the Krylov space closes. Norm preserved
 *    to rounding. Cost per sub-step m applications of H.
 *  - QD_EXPM_AUTO: eig for n <= QD_EXPM_EIG_MAX_QUBITS, else Krylov.
 *
 * Lindblad (dynamics.c): drho/dt = -i[H, rho] + sum_k (L_k rho L_k^H - 1/2 {L_k^H L_k, rho})
 * with H and L_k Pauli sums. The right-hand side is evaluated locally, column by column:
 *     K = -i H - 1/2 sum_k L_k^H L_k  (one Pauli sum, products done symbolically),
 *     f(rho)[:, c] = K rho[:, c] + (rho K^H)[:, c] + sum_k L_k (rho L_k^H)[:, c]
 * where (rho O^H)[:, c] = sum_t conj(o_t) phase_t(c) rho[:, c ^ x_t] is again a sum of
 * whole columns, so no superoperator and no transpose is ever formed (cost O(terms 4^n);
 * columns in parallel). Integrator: Dormand-Prince 5(4)
 * (Hairer, Norsett & Wanner, "Solving ODEs I", II.4/II.5) with FSAL and the standard
 * step controller: err = RMS over entries of (y5 - y4) / (atol + rtol max(|y|, |y_new|)),
 * accept if err <= 1, h <- h min(5, max(0.2, 0.9 err^(-1/5))). Steps are clipped to hit
 * the requested output times exactly. rho is made exactly Hermitian after every step.
 *
 * Stochastic Schroedinger equation (dynamics.c), diffusive unravelling (Ito) of measured
 * Hermitian observables A_k at rates gamma_k:
 *   d|psi> = [-i H dt - sum_k (gamma_k/2)(A_k - <A_k>)^2 dt + sum_k sqrt(gamma_k)(A_k - <A_k>) dW_k]|psi>
 *   record dy_k = 2 sqrt(gamma_k) <A_k> dt + dW_k,
 * whose average obeys the Lindblad equation with L_k = sqrt(gamma_k) A_k.
 * H = H0 + H_fb(t) where H_fb = sum_j c_j P_j has coefficients supplied per step by a
 * callback (shared by all members or one column per member): the state-dependent
 * feedback Hamiltonian of reverse-time quantum diffusion (arXiv 2606.03848).
 * Schemes:
 *  - QD_SSE_EULER: Euler-Maruyama on the equation above (strong order 1/2, weak order 1),
 *    followed by renormalisation unless normalize == 0.
 *  - QD_SSE_ROUCHON: the Kraus-operator scheme of Rouchon & Ralph (PRA 91, 012118, 2015):
 *      M = I - i H dt - 1/2 sum_k gamma_k A_k^2 dt + sum_k sqrt(gamma_k) A_k dy_k
 *          + 1/2 sum_{k,l} sqrt(gamma_k gamma_l) A_k A_l (dy_k dy_l - delta_kl dt),
 *      psi <- M psi / ||M psi||, with dy_k drawn as above from <A_k> before the step.
 *    Norm preserved exactly; the induced map on rho = |psi><psi| is M rho M^H / Tr, a
 *    completely positive map, so positivity can never be lost (weak order 1).
 * Wiener increments: dW_k = sqrt(dt) N(0,1); member j draws from qd_rng_sub(base, j) with
 * qd_rng_gauss, m normals per step in the order k = 0..m-1 — independent of N, the thread
 * count and the kernel set. Registers of up to QD_SSE_LANES_MAX_QUBITS qubits run QD_LV
 * members side by side (sse_lanes.c; the same step, another summation order).
 * Reverse time (reverse != 0): the time label runs t_s = t0 - s dt (s = 0..steps), the
 * callback sees these times, and the static Hamiltonian H0 acts with the reversed sign
 * (+i H0 dt, undoing the forward coherent motion); measurement terms and the feedback
 * Hamiltonian act as in forward time with the positive step dt (they are physical
 * processes of the reverse dynamics; the feedback term is whatever the callback returns).
 */
#ifndef QD_DYNAMICS_H
#define QD_DYNAMICS_H
#include "qd.h"

/* ---------------------------------------------------------------- Pauli sums (pauli.c) */
typedef struct {
    int n;              /* qubits (1..QD_MAX_QUBITS) */
    size_t nterms, cap;
    uint64_t *x, *z;    /* index-bit masks of each term */
    qd_c *c;            /* coefficient of each term */
    /* Optional cache (qd_ps_prepare): terms grouped by flip mask; group g (mask gx[g]) has
     * the diagonal D[g * 2^n + s] = sum_{t: x_t = gx[g]} c_t i^ny_t (-1)^|s & z_t|, so
     * (O psi)[b] = sum_g D_g[b ^ gx[g]] psi[b ^ gx[g]]: one pass per distinct flip mask
     * (an Ising Hamiltonian's ZZ and Z terms become one diagonal). Any change to the
     * terms drops it. Never shared: a struct copy must not be prepared or freed twice. */
    size_t ng;
    uint64_t *gx;
    qd_c *D;
} qd_pauli_sum;

/* Dense matrices (spectrum, ground state, Gibbs, eig-based exp) up to this many qubits. */
#define QD_PS_DENSE_MAX 12
#define QD_EXPM_EIG_MAX_QUBITS 7
#define QD_KRYLOV_M 30
/* qd_ps_evolve refuses the Krylov method when |t| ||H|| (the norm bound) exceeds this */
#define QD_KRYLOV_MAX_TNORM 1e7

void qd_ps_init(qd_pauli_sum *H, int n);          /* empty sum (the zero operator) */
void qd_ps_free(qd_pauli_sum *H);                  /* idempotent; leaves an empty sum */
/* Adds c * (letters ops[0..k) on qubits qs[0..k)); letters in "IXYZ" (also lowercase).
 * QD_EARG for a bad letter or qubit (message names them), QD_ENOMEM. */
qd_status qd_ps_add_term(qd_pauli_sum *H, qd_c c, const char *ops, const int *qs, int k,
                         qd_err *e);
qd_status qd_ps_add_masks(qd_pauli_sum *H, qd_c c, uint64_t x, uint64_t z, qd_err *e);
qd_status qd_ps_copy(const qd_pauli_sum *A, qd_pauli_sum *out, qd_err *e);
/* out = a A + b B (A, B same n; out must not alias A or B), simplified. */
qd_status qd_ps_axpby(qd_c a, const qd_pauli_sum *A, qd_c b, const qd_pauli_sum *B,
                      qd_pauli_sum *out, qd_err *e);
/* out = A B (products of strings with their phases), simplified. */
qd_status qd_ps_mul(const qd_pauli_sum *A, const qd_pauli_sum *B, qd_pauli_sum *out,
                    qd_err *e);
/* Merges equal strings (coefficients added in term order), drops |c| <= tol; terms stay
 * in order of first occurrence. Cannot fail. */
void qd_ps_simplify(qd_pauli_sum *H, double tol);
void qd_ps_dagger(qd_pauli_sum *H);
/* Builds the grouped-diagonal cache (above) when it fits (groups x 2^n <= 2^16 entries: 1 MiB, cache-resident);
 * silently skipped otherwise or if memory is short (the cache is optional). Not thread
 * safe: call before parallel use. Applications with coefficient overrides (coef != NULL)
 * never use it. */
void qd_ps_prepare(qd_pauli_sum *H);                /* c -> conj(c) (strings are Hermitian) */
double qd_ps_max_imag(const qd_pauli_sum *H);      /* max |Im c| after merging (0: Hermitian) */
double qd_ps_norm_bound(const qd_pauli_sum *H);    /* sum |c_t| >= ||H||_2 */
/* letters of term t into buf (n + 1 chars, qubit 0 first). */
void qd_ps_term_string(const qd_pauli_sum *H, size_t t, char *buf);

/* out (+)= O in for `count` vectors of n qubits. coef: NULL to use H's coefficients, else
 * vector j uses coef + j * coef_stride (stride 0: one set shared by all). out must not
 * alias in. accumulate != 0 adds to out; else out is overwritten. Threads over vectors
 * (count > 1) or amplitudes; each output entry written by one thread. Cannot fail. */
void qd_ps_apply(const qd_pauli_sum *H, const qd_c *coef, size_t coef_stride, const qd_c *in,
                 size_t count, qd_c *out, int accumulate);
/* Same, single-threaded (for use inside parallel regions). */
void qd_ps_apply1(const qd_pauli_sum *H, const qd_c *coef, const qd_c *in, qd_c *out,
                  qd_c alpha, int accumulate);
/* <a_j|O|a_j> for each of count vectors (complex; real for Hermitian O), in fixed-order
 * block sums (thread-count independent). Not divided by the norm. Cannot fail. */
void qd_ps_expect(const qd_pauli_sum *H, const qd_c *a, size_t count, qd_c *out);
/* Tr(O rho) for an n-qubit density matrix. Cannot fail. */
qd_c qd_ps_expect_dm(const qd_pauli_sum *H, const qd_c *rho);
/* Dense 2^n x 2^n column-major matrix (M must hold 4^n entries). Cannot fail. */
void qd_ps_dense(const qd_pauli_sum *H, qd_c *M);
/* Eigen-decomposition of a Hermitian sum: w ascending (2^n), V eigenvectors (4^n) as
 * columns (V may be NULL for values only). n <= QD_PS_DENSE_MAX. QD_EARG if not
 * Hermitian (max |Im c| > 1e-12) or too many qubits, QD_ENOMEM, QD_ENUMERIC. */
qd_status qd_ps_eigh(const qd_pauli_sum *H, double *w, qd_c *V, qd_err *e);
/* Fixes the global phase of a vector: the first entry of largest modulus (within 1e-12
 * relative) becomes real positive. Cannot fail. */
void qd_phase_fix(qd_c *v, size_t d);

/* Lowest eigenpair of a Hermitian sum by restarted Lanczos (any n that fits in memory:
 * (m + 2) vectors, m = 40, or 20 above 16 qubits): psi (2^n, normalised, phase fixed) and
 * E0, converged when ||H psi - E0 psi|| <= tol max(1, |E0|) (tol <= 0: 1e-10). max_cycles
 * 0: 1000. matvecs (may be NULL): applications of H. Deterministic start vector. QD_EARG
 * (not Hermitian), QD_ENOMEM, QD_ENUMERIC (no convergence: e.g. a degenerate ground
 * space still converges, a tiny gap converges slowly). */
qd_status qd_ps_ground_lanczos(const qd_pauli_sum *H, qd_c *psi, double *E0, double tol,
                               size_t max_cycles, size_t *matvecs, qd_err *e);
/* Dense ground state by default up to this many qubits, Lanczos above. */
#define QD_GROUND_EIG_MAX_QUBITS 10

typedef enum { QD_EXPM_AUTO = 0, QD_EXPM_EIG = 1, QD_EXPM_KRYLOV = 2 } qd_expm_method;
typedef struct {
    size_t substeps;   /* Krylov sub-steps over all members */
    size_t matvecs;    /* applications of H */
    double err_est;    /* largest accumulated error estimate of a member (Krylov) */
} qd_expm_stats;
/* a (count vectors) <- exp(-i H t) a. H Hermitian. eig (V, w given: reused; else built)
 * or Krylov with tolerance tol (<= 0: 1e-12). stats may be NULL. QD_EARG, QD_ENOMEM,
 * QD_ENUMERIC. */
qd_status qd_ps_evolve(const qd_pauli_sum *H, double t, qd_c *a, size_t count,
                       qd_expm_method method, double tol, const double *w, const qd_c *V,
                       qd_expm_stats *stats, qd_err *e);
/* rho <- U rho U^H with U = exp(-iHt) from an eigen-decomposition (w, V; NULL to build). */
qd_status qd_ps_evolve_dm(const qd_pauli_sum *H, double t, qd_c *rho, const double *w,
                          const qd_c *V, qd_err *e);
/* rho = exp(-beta H) / Z (w, V may be given). logZ (may be NULL) = ln Tr exp(-beta H).
 * beta >= 0 finite. */
qd_status qd_ps_gibbs(const qd_pauli_sum *H, double beta, qd_c *rho, double *logZ,
                      const double *w, const qd_c *V, qd_err *e);

/* ---------------------------------------------------------------- Lindblad (dynamics.c) */
typedef struct {
    double rtol, atol;    /* defaults (if <= 0): 1e-8, 1e-10 */
    double h0;            /* initial step (<= 0: automatic) */
    size_t max_steps;     /* 0: 10^7 */
    /* outputs */
    size_t steps, rejected, fevals;
} qd_lindblad_opts;
/* Integrates rho (n qubits, Hermitian, modified in place) from t = 0 through the
 * increasing times ts[0..nt) (ts[0] >= 0); after reaching ts[i] the state is copied to
 * out + i * 4^n (out may be NULL). H may be NULL; L[0..nL) jump operators (any Pauli
 * sums). QD_EARG, QD_ENOMEM, QD_ENUMERIC (step size underflow / too many steps /
 * non-finite state). */
qd_status qd_lindblad(qd_c *rho, int n, const qd_pauli_sum *H, const qd_pauli_sum *L,
                      size_t nL, const double *ts, size_t nt, qd_c *out,
                      qd_lindblad_opts *o, qd_err *e);
/* The right-hand side f(rho) (for tests): out = -i[H, rho] + sum D[L_k] rho. K is the
 * effective operator -iH - 1/2 sum L^H L (qd_lindblad_k builds it). */
qd_status qd_lindblad_k(const qd_pauli_sum *H, const qd_pauli_sum *L, size_t nL, int n,
                        qd_pauli_sum *K, qd_err *e);
qd_status qd_lindblad_rhs(const qd_pauli_sum *K, const qd_pauli_sum *L, size_t nL,
                          const qd_c *rho, qd_c *out, qd_c *scratch);

/* ---------------------------------------------------------------- SSE (dynamics.c) */
typedef enum { QD_SSE_EULER = 0, QD_SSE_ROUCHON = 1 } qd_sse_scheme;

/* Feedback callback: called before every step s with time t; must fill coef with the
 * nF coefficients of the feedback terms (per_member = 0) or nF x count (column j =
 * member j, per_member = 1; both buffers provided by the caller). a is the current
 * (count vectors) state; it may be modified but not freed. Non-QD_OK stops the run. */
typedef qd_status (*qd_sse_fb_fn)(void *ctx, size_t step, double t, qd_c *a, size_t count,
                                  qd_c *coef, int *per_member, qd_err *e);

/* A feedback law: the real coefficients of the feedback terms as a formula of the time t and
 * of each member's own expectation values <O_i>, evaluated by the SSE at the start of every
 * step, member by member (no callback, no synchronisation between members). Nodes come in
 * evaluation order; a and b index earlier nodes. The elementary functions are those of the
 * qd.Vector methods (runtime/core/vmath.c: atanh there; the C library's exp, log, tanh,
 * sin, cos; sigmoid from exp as runtime/lua/lua_vmath.c), so a law gives the bits of the
 * same formula written with those methods. A
 * value that is not finite (log of 0, atanh of 1, 0/0, overflow) stops the run with an
 * error naming the member and the step. */
typedef enum {
    QD_LAW_CONST,   /* c */
    QD_LAW_TIME,    /* t */
    QD_LAW_EXPECT,  /* <O_i>, i = (size_t)c */
    QD_LAW_ADD, QD_LAW_SUB, QD_LAW_MUL, QD_LAW_DIV, QD_LAW_MIN, QD_LAW_MAX,   /* a op b */
    QD_LAW_NEG, QD_LAW_ABS, QD_LAW_SQRT, QD_LAW_EXP, QD_LAW_LOG, QD_LAW_TANH, QD_LAW_ATANH,
    QD_LAW_SIN, QD_LAW_COS, QD_LAW_SIGMOID,   /* op a */
    QD_LAW_NOPS
} qd_law_op;

typedef struct {
    int op;
    uint32_t a, b;
    double c;
} qd_law_node;

typedef struct {
    size_t nnodes;
    const qd_law_node *nodes;
    size_t nexp;
    const qd_pauli_sum *exps;   /* O_0 .. O_{nexp-1}: Hermitian (real coefficients) */
    const uint32_t *out;        /* the node of each feedback term's coefficient (F->nterms) */
} qd_sse_law;

typedef struct {
    const qd_pauli_sum *H;      /* static Hamiltonian or NULL */
    size_t m;                   /* measured observables (may be 0) */
    const qd_pauli_sum *A;      /* A[0..m), Hermitian */
    const double *gamma;        /* rates gamma[0..m), >= 0 */
    const qd_pauli_sum *F;      /* feedback terms (coefficients ignored) or NULL */
    qd_sse_fb_fn fb;            /* if F != NULL: fb or law, not both */
    void *ctx;
    const qd_sse_law *law;
    qd_sse_scheme scheme;
    int normalize;              /* Euler: renormalise after each step */
    int reverse;
    double t0, dt;              /* dt > 0 */
    size_t steps;
    /* outputs (may be NULL): */
    double *records;            /* m blocks of steps x count (column-major): dy */
    size_t nobs;                /* observables to track: ensemble means every `every` steps */
    const qd_pauli_sum *obs;
    size_t every;               /* >= 1 */
    double *obs_out;            /* nsave x nobs column-major, nsave = steps / every + 1 */
} qd_sse_opts;

/* Evolves count vectors of n qubits in place (each must be normalised). base: the
 * stream; member j uses qd_rng_sub(base, j). QD_EARG, QD_ENOMEM, QD_ENUMERIC (a member's
 * norm vanished / became non-finite), or the callback's status. */
qd_status qd_sse_run(qd_c *a, int n, size_t count, const qd_sse_opts *o, const qd_rng *base,
                     qd_err *e);
/* ---------------------------------------------------------------- learnt feedback (feedback.c)
 * The per-member solve of reverse-time diffusion's learnt feedback: for member j of N,
 * c_j = argmin |J_j c - h_j|^2 + eps |c|^2 with (J_j)[q, p] = f * V[j, v] over the entries
 * {q, p, v, f} (0-based; grouped by q in increasing order, in the order they are summed):
 * V is N x nv column-major (the member's expectations), H N x m (the learnt drift), damp m
 * (h_j[q] = H[j, q] - damp[q] V[j, q]); C receives m x N (column j = c_j). */
typedef struct {
    int q, p, v;
    double f;
} qd_fb_entry;
qd_status qd_feedback_solve(int m, size_t N, const qd_fb_entry *e, size_t ne, const double *V,
                            const double *H, const double *damp, double eps, double *C, qd_err *err);
/* The learnt drift's features of N members: Phi (N x ntf*nmono, column-major) with
 * Phi[j, a * nmono + b] = tf[a] * prod_{k in [off[b], off[b+1])} V[j, idx[k]] (the product
 * formed from 1.0 in the listed order; V's columns ld apart, so N rows of a taller matrix
 * can be taken; idx 0-based). */
void qd_poly_features(size_t N, size_t ld, const double *V, const int *idx, const size_t *off,
                      size_t nmono, const double *tf, size_t ntf, double *Phi);
#endif
