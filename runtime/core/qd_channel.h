/*
 * qd_channel.h — quantum channels (CPTP maps) in the numerical core (channel.c). No Lua.
 *
 * A channel on k qubits (d = 2^k) is held as a list of Kraus operators K_1..K_m, each a
 * d x d column-major matrix, stored one after the other (operator i at K + i*d*d).
 * The depolarizing family is also available in structured form (qd_depol_*), which
 * works for any number of target qubits without ever building a Kraus list:
 *     D_lambda(rho) = (1 - lambda) rho + lambda (I_T / 2^k) (x) Tr_T rho .
 * (The Pauli-probability form (1-p) rho + p/(4^k-1) sum_{P != I} P rho P is D_lambda with
 * lambda = p 4^k / (4^k - 1), since sum_{all P} P rho P = 4^k (I_T/2^k) (x) Tr_T rho.)
 *
 * Representations (all consistent with qd's column-major layout, and the same as QuTiP's):
 *  - vec(rho) stacks COLUMNS: vec(rho)[r + c*d] = rho[r, c], i.e. the column-major
 *    buffer itself;
 *  - superoperator S (d^2 x d^2): vec(E(rho)) = S vec(rho); S = sum_i conj(K_i) (x) K_i
 *    (kron with the first factor on the most significant index, so S[(r'+c'd),(r+cd)] =
 *    sum_i K_i[r',r] conj(K_i[c',c]));
 *  - Choi matrix J (d^2 x d^2): J = sum_{ij} |i><j| (x) E(|i><j|) = sum_i vec(K_i) vec(K_i)^H,
 *    input factor first; Tr J = d for a trace-preserving map. J and S are each other's
 *    reshuffle: S[(r'+c'd),(r+cd)] = J[(r'+r d),(c'+c d)].
 *  - composition a o b (apply b first, then a): Kraus {A_i B_j} (index i*m_b + j), S_a S_b;
 *  - tensor product a (x) b: a on the first (most significant) k_a qubits, Kraus
 *    {A_i (x) B_j} (index i*m_b + j).
 *
 * Application to an n-qubit density matrix on target qubits qs[0..k) (qs[0] = MSB of the
 * channel's local index) never builds a 4^n x 4^n matrix: the density matrix is a vector
 * of 2n qubits (qd.h: row-qubit q is vector-qubit n+q, column-qubit q is vector-qubit q),
 * and either
 *   - the local superoperator (4^k x 4^k) acts on the 2k vector-qubits {qs, n+qs}
 *     (local column-stacking index c_loc*2^k + r_loc, so the vector-qubit list is
 *     qs[0..k) then n+qs[0..k)): one in-place pass, 4^k multiply-adds per amplitude; or
 *   - each K_i acts as K_i rho K_i^dagger on a copy (qd_dm_apply_matrix: K_i on the row
 *     qubits, conj(K_i) on the column qubits) and the copies are summed: m copies and
 *     2m passes of 2^k multiply-adds per amplitude, two temporaries of 4^n.
 * qd_channel_apply_dm picks the cheaper (see channel.c, qd_channel_method).
 *
 * Trajectories: on pure states (count vectors, member j draws ONE uniform from
 * qd_rng_sub(base, j)) branch i is taken with probability ||K_i psi||^2 / ||psi||^2
 * (computed as Tr(K_i^H K_i rho_T) from the reduced state of the targets), then
 * psi <- K_i psi / ||K_i psi||. Averaging |psi><psi| over members reproduces E(rho).
 */
#ifndef QD_CHANNEL_H
#define QD_CHANNEL_H
#include "qd.h"

/* Largest channel with an explicit Kraus list / superoperator: d = 32, S is 1024 x 1024. */
#define QD_CH_MAX_QUBITS 5
/* Default tolerance of the CPTP check: Frobenius norm ||sum K^H K - I||_F (and, for a
 * superoperator, also the Choi matrix's Hermiticity and smallest eigenvalue). */
#define QD_CH_TOL 1e-10

/* ---------------------------------------------------------------- Kraus lists */
/* ||sum_i K_i^H K_i - I||_F (0 for a trace-preserving list). Cannot fail. */
double qd_kraus_tp_dev(const qd_c *K, size_t m, int k);
/* S = sum_i conj(K_i) (x) K_i, d^2 x d^2 column-major. Cannot fail. */
void qd_kraus_to_superop(const qd_c *K, size_t m, int k, qd_c *S);
/* J = sum_i vec(K_i) vec(K_i)^H. Cannot fail. */
void qd_kraus_to_choi(const qd_c *K, size_t m, int k, qd_c *J);
/* Reshuffle S <-> J (the map is its own inverse). in != out. Cannot fail. */
void qd_choi_reshuffle(const qd_c *in, int k, qd_c *out);
/* out (ma*mb operators) = {A_i B_j}, index i*mb + j. Cannot fail. */
void qd_kraus_compose(const qd_c *A, size_t ma, const qd_c *B, size_t mb, int k, qd_c *out);
/* out (ma*mb operators on ka+kb qubits) = {A_i (x) B_j}, index i*mb + j. Cannot fail. */
void qd_kraus_tensor(const qd_c *A, size_t ma, int ka, const qd_c *B, size_t mb, int kb,
                     qd_c *out);
/* The 4^k Pauli strings on k qubits as Kraus operators, P_j (j in base 4, digit of qubit 0
 * most significant; digit 0 I, 1 X, 2 Y, 3 Z) scaled by sqrt(w0) for j = 0 and sqrt(w1)
 * otherwise. k <= QD_CH_MAX_QUBITS. Cannot fail. */
void qd_pauli_kraus(int k, double w0, double w1, qd_c *K);

/* Check a superoperator (d^2 x d^2, column stacking): Choi Hermiticity
 * ||J - J^H||_F, trace preservation ||Tr_out J - I||_F and the smallest Choi eigenvalue.
 * Returns QD_ENUMERIC only if LAPACK fails, QD_ENOMEM if scratch cannot be allocated. */
qd_status qd_superop_check(const qd_c *S, int k, double *herm_dev, double *tp_dev,
                           double *min_eig, qd_err *e);
/* Kraus list of a CP map from its Choi matrix J (assumed Hermitian): eigenvectors with
 * eigenvalue > cut, K = sqrt(lambda) unvec(v), ordered by decreasing eigenvalue. K must
 * hold d^2 operators (d^4 entries); *m receives the count (>= 1: if no eigenvalue passes
 * the cut, the largest is kept). QD_ENOMEM / QD_ENUMERIC on failure. */
qd_status qd_choi_to_kraus(const qd_c *J, int k, double cut, qd_c *K, size_t *m, qd_err *e);

/* ---------------------------------------------------------------- density matrices */
typedef enum {
    QD_CH_AUTO = 0,      /* pick the cheaper of the two below (qd_channel_method) */
    QD_CH_SUPEROP = 1,   /* local superoperator on the 2k vector-qubits, in place */
    QD_CH_KRAUS = 2      /* sum of K_i rho K_i^dagger over copies */
} qd_ch_method;

/* The method QD_CH_AUTO chooses for m Kraus operators on k qubits. */
qd_ch_method qd_channel_method(size_t m, int k);

/* rho (n qubits) <- E(rho) with E given by m Kraus operators on k qubits, acting on qs.
 * S: the channel's superoperator if the caller has it (may be NULL; built when needed).
 * Qubits must be distinct and < n, 1 <= k <= min(n, QD_CH_MAX_QUBITS). QD_EARG for bad
 * sizes, QD_ENOMEM when temporaries cannot be allocated (rho is then unchanged). */
qd_status qd_channel_apply_dm(qd_c *rho, int n, const int *qs, int k, const qd_c *K,
                              size_t m, const qd_c *S, qd_ch_method method, qd_err *e);

/* rho <- (1 - lambda) rho + lambda (I_T/2^k) (x) Tr_T rho on targets qs[0..k) (any k <= n;
 * k = n is the whole register: (1 - lambda) rho + lambda Tr(rho) I/2^n, one pass; k = 1:
 * its 4x4 superoperator, one gate pass; otherwise one pass over rho after the partial
 * trace Tr_T rho). Threads over columns (no reductions across threads).
 * QD_ENOMEM if the reduced matrix (4^(n-k)) or index tables cannot be allocated. */
qd_status qd_depol_apply_dm(qd_c *rho, int n, const int *qs, int k, double lambda, qd_err *e);

/* ---------------------------------------------------------------- pure-state trajectories */
/* `count` vectors of n qubits at a; member j uses qd_rng_sub(base, j). branch (may be NULL)
 * receives the 0-based Kraus index taken by each member. QD_ENUMERIC if a member has norm
 * 0; QD_ENOMEM on scratch failure. */
qd_status qd_channel_apply_traj(qd_c *a, int n, size_t count, const int *qs, int k,
                                const qd_c *K, size_t m, const qd_rng *base, size_t *branch,
                                qd_err *e);
/* The same on a block of a larger ensemble whose member 0 is member `first` of the whole:
 * member j uses qd_rng_sub(base, first + j) (a rank's block, qd.mpi; first = 0 is the
 * function above). */
qd_status qd_channel_apply_traj_at(qd_c *a, int n, size_t count, const int *qs, int k,
                                   const qd_c *K, size_t m, const qd_rng *base, uint64_t first,
                                   size_t *branch, qd_err *e);
/* Structured depolarizing trajectories for the Kraus list sqrt(1-lambda+lambda/4^k) I,
 * sqrt(lambda/4^k) P_j (j = 1..4^k-1): keep the member (branch 0) with probability
 * 1 - lambda + lambda/4^k, else apply a uniformly random non-identity Pauli string on the
 * targets (branch = its base-4 index as in qd_pauli_kraus). lambda in [0, 4^k/(4^k-1)].
 * Works for any k <= n; branch must be NULL when k > 31. */
qd_status qd_depol_apply_traj(qd_c *a, int n, size_t count, const int *qs, int k,
                              double lambda, const qd_rng *base, size_t *branch, qd_err *e);

/* psi <- P psi for the Pauli string with x-mask xm, z-mask zm over INDEX bits (bit b set in
 * xm: X or Y on the qubit at index bit b; in zm: Z or Y) and ny = number of Y's:
 * P = i^ny X^xm Z^zm. count vectors of nq qubits. Cannot fail. */
void qd_pauli_apply(qd_c *a, int nq, size_t count, uint64_t xm, uint64_t zm, int ny);

#endif
