/*
 * qd_loss.h — losses with their gradients (loss.c) and optimal transport (transport.c).
 * No Lua in here; conventions as in qd.h.
 *
 * GRADIENT CONVENTION (shared with circuit vjp):
 *  - Pure states / ensemble members (complex amplitudes psi): a loss L returns
 *    G = dL/d(conj psi), the Wirtinger derivative with respect to the conjugate amplitudes,
 *    shaped like the input (2^n per member), so that
 *        dL = 2 Re sum_i conj(G_i) dpsi_i
 *    i.e. dL/d(Re psi_i) = 2 Re G_i and dL/d(Im psi_i) = 2 Im G_i. Losses are evaluated
 *    by their formula on the amplitudes as given (no hidden renormalisation).
 *  - Density matrices: G is the Hermitian d x d matrix G = dL/d(conj rho) of the symmetric
 *    extension L(rho) -> L((rho + rho^H)/2), so that for every Hermitian perturbation
 *        dL = 2 Re Tr(G^H drho) = 2 Tr(G drho),
 *    i.e. G = (1/2) grad_E L where grad_E L is the Hermitian "Euclidean" gradient
 *    (dL = Tr(grad_E L drho)). Consistency with states: for rho = |psi><psi|,
 *    G_psi = 2 G_rho psi.
 *  - Real vectors (probabilities, pixels): the ordinary partial derivatives dL/dp_i.
 *
 * Matrices are column-major; an N x M plan P has P[i + j*N] = mass moved from a_i to b_j.
 */
#ifndef QD_LOSS_H
#define QD_LOSS_H
#include "qd.h"

/* ---------------------------------------------------------------- transport (transport.c) */

/* Exact linear assignment (Jonker–Volgenant LAPJV: column reduction, reduction transfer,
 * augmenting row reduction, then shortest augmenting paths with potentials; O(n^3) worst
 * case): minimises sum_i C[i, perm[i]] over permutations of an n x n cost (column-major
 * C[i + j*n]). perm[i] = column (0-based) given to row i. Finite costs only (QD_EARG
 * otherwise). With ties the permutation may differ from another solver's; the cost is the
 * optimum. */
qd_status qd_ot_assign(const double *C, size_t n, size_t *perm, double *cost, qd_err *e);
/* Same, with the column potentials (dual prices, n entries) in and out: warm != 0 starts
 * from the given v (e.g. the previous call's, for a slowly changing cost); any finite v is
 * a valid start, so the result is the exact optimum either way. warm == 0 solves cold and
 * only writes v. On return v holds dual prices of the optimal assignment. */
qd_status qd_ot_assign_warm(const double *C, size_t n, size_t *perm, double *cost, double *v,
                            int warm, qd_err *e);
/* The same solver on a cost already in its internal layout: row-major, row stride
 * ld = qd_ot_assign_ld(n) (n rounded up to 8), c[i*ld + j] = cost of row i, column j;
 * c must be 64-byte aligned (qd_malloc); the padding columns j >= n must be finite (e.g. 0;
 * QD_EARG otherwise) and never take part in the result. v (n entries, may be NULL) as in
 * qd_ot_assign_warm. Saves the transposed copy (used by the Wasserstein loss). Gives the
 * same permutation, cost and prices as qd_ot_assign_warm on the same cost. */
size_t qd_ot_assign_ld(size_t n);
qd_status qd_ot_assign_rm(const double *c, size_t n, size_t *perm, double *cost, double *v,
                          int warm, qd_err *e);
/* The textbook Hungarian method (row-by-row shortest augmenting paths), slower; kept as an
 * independent reference for the tests. */
qd_status qd_ot_assign_ref(const double *C, size_t n, size_t *perm, double *cost, qd_err *e);

/* Exact optimal transport between weights a (N) and b (M) (NULL = uniform 1/N, 1/M;
 * given weights must be >= 0 with a positive total; each set is normalised to sum 1, so
 * weights are relative and the plan always has total mass 1), cost N x M.
 * Uniform equal sizes go to the assignment solver (plan 1/N on the permutation); otherwise
 * a transportation (network) simplex on the bipartite graph with Orden's perturbation
 * (supplies + delta, last demand + N delta, carried symbolically), so no degenerate pivot
 * can cycle. P (N x M) receives the optimal plan, *cost = sum P C. */
qd_status qd_ot_exact(const double *C, size_t N, size_t M, const double *a, const double *b,
                      double *P, double *cost, qd_err *e);
/* Same, with the assignment's column prices v (N entries, may be NULL) kept by the caller
 * between calls: only for the assignment case (N == M, a == b == NULL), where warm != 0
 * starts the solver from the given (finite) v and v receives the optimal prices on return
 * (warm == 0: cold solve, v only written). In every other case v is neither read nor
 * written. The optimum is exact from any start; with ties the permutation may differ. */
qd_status qd_ot_exact_warm(const double *C, size_t N, size_t M, const double *a,
                           const double *b, double *P, double *cost, double *v, int warm,
                           qd_err *e);
/* The network simplex alone (also for equal sizes; used by the tests). */
qd_status qd_ot_simplex(const double *C, size_t N, size_t M, const double *a, const double *b,
                        double *P, double *cost, qd_err *e);

/* Entropic OT in the log domain: minimises <P, C> + eps KL(P || a b^T) by Sinkhorn
 * iterations on the dual potentials f, g (log-sum-exp updates, stable for small eps).
 * Stops when the row-marginal L1 error (columns are exact after each g update) is <= tol,
 * or after max_iter iterations. P = a_i b_j exp((f_i + g_j - C_ij)/eps).
 * *value = sum a f + sum b g (the dual value = the regularised optimum at convergence);
 * by the envelope theorem d value / d C = P, which is how the loss gradients use it.
 * Never fails on non-convergence: *converged is 0 then (the caller decides). */
typedef struct {
    size_t iters;
    double err;        /* final row-marginal L1 error */
    int converged;
    double cost;       /* <P, C> (the unregularised transport cost of the plan) */
} qd_sinkhorn_info;
qd_status qd_ot_sinkhorn(const double *C, size_t N, size_t M, const double *a, const double *b,
                         double eps, size_t max_iter, double tol, double *P, double *value,
                         qd_sinkhorn_info *info, qd_err *e);

/* ---------------------------------------------------------------- ensemble losses (loss.c)
 * A: N members, B: M members of nq qubits (2^nq x count, column-major). GA / GB may be
 * NULL (no gradient wanted); otherwise they receive dL/d(conj A), dL/d(conj B). */
enum { QD_MMD_AUTO = 0, QD_MMD_GRAM = 1, QD_MMD_DM = 2 };
/* Fidelity-kernel MMD (V-statistic, diagonal included):
 *   L = mean_{ij} |<a_i|a_j>|^2 + mean |<b_i|b_j>|^2 - 2 mean |<a_i|b_j>|^2
 *     = Tr[(rhoA - rhoB)^2],  rhoA = (1/N) sum |a_i><a_i|.
 * GRAM works with the N x N, M x M, N x M overlap matrices (cost ~ 2^n (N+M)^2);
 * DM with the average states (cost ~ 4^n (N+M)); AUTO picks the cheaper.
 * Gradient: G_A[:,k] = (2/N)(rhoA - rhoB) a_k, G_B[:,l] = -(2/M)(rhoA - rhoB) b_l. */
qd_status qd_loss_mmd_fid(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq, int method,
                          double *val, qd_c *GA, qd_c *GB, qd_err *e);
/* Wasserstein with infidelity cost C_ij = 1 - |<a_i|b_j>|^2, weights wa (N), wb (M) or
 * NULL for uniform; exact plan P (N x M, may be NULL if not wanted). The gradient holds
 * the optimal plan fixed (envelope theorem; exact where the optimal plan is unique):
 *   G_A[:,k] = -sum_j P_kj b_j <b_j|a_k>,  G_B[:,l] = -sum_i P_il a_i <a_i|b_l>. */
qd_status qd_loss_wasserstein(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq,
                              const double *wa, const double *wb, double *val, double *P,
                              qd_c *GA, qd_c *GB, qd_err *e);
/* Same, with warm-started assignment prices (see qd_ot_exact_warm; v N entries or NULL). */
qd_status qd_loss_wasserstein_warm(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq,
                                   const double *wa, const double *wb, double *val, double *P,
                                   qd_c *GA, qd_c *GB, double *v, int warm, qd_err *e);
/* Entropic (Sinkhorn) version: value = regularised optimum (dual value), gradient through
 * the converged plan (envelope theorem, exact at convergence). */
qd_status qd_loss_sinkhorn(const qd_c *A, size_t N, const qd_c *B, size_t M, int nq,
                           const double *wa, const double *wb, double eps, size_t max_iter,
                           double tol, double *val, double *P, qd_sinkhorn_info *info,
                           qd_c *GA, qd_c *GB, qd_err *e);

/* ---------------------------------------------------------------- Born-machine losses
 * Distributions over the 2^n bitstrings of n qubits (index bit order as everywhere; the
 * kernel only depends on Hamming distances, so the order does not matter).
 * Kernel (arXiv 2305.02881): K_s(x, y) = exp(-|x - y|_H / (2 s)) with |x - y|_H the Hamming
 * distance (= squared Euclidean distance of the bit vectors); with several bandwidths
 * s_1..s_k the kernel is their mean. MMD^2 = (p - q)^T K (p - q). */
/* y = K x via the tensor structure K_s = (x)_n [[1, e_s], [e_s, 1]], e_s = exp(-1/(2 s)):
 * O(k n 2^n). tmp: 2^n scratch. */
void qd_bits_kernel_apply(const double *x, int n, const double *sig, int ns, double *y,
                          double *tmp);
/* exact from probabilities; gp (may be NULL) = dL/dp = 2 K (p - q) (and dL/dq = -gp) */
qd_status qd_loss_mmd_bits(const double *p, const double *q, int n, const double *sig, int ns,
                           double *val, double *gp, qd_err *e);
/* via the Pauli-Z expansion: sum_A (1 - p_s)^(n-|A|) p_s^|A| (<Z_A>_p - <Z_A>_q)^2,
 * p_s = (1 - e^{-1/(2s)})/2, <Z_A> from a Walsh–Hadamard transform. If by_order != NULL
 * (n + 1 entries) it receives the contribution of each Pauli weight |A|. */
qd_status qd_loss_mmd_bits_pauli(const double *p, const double *q, int n, const double *sig,
                                 int ns, double *val, double *gp, double *by_order, qd_err *e);
/* from samples: the unbiased U-statistic (pairs of distinct draws within a sample set),
 * so its expectation is the exact MMD^2. x: nx basis indices with multiplicities cx (NULL:
 * each 1), likewise y; each set must hold >= 2 draws in total. Cost O((nx + ny)^2) in the
 * number of DISTINCT entries when given as counts. */
double qd_loss_mmd_bits_samples(const uint64_t *x, const double *cx, size_t nx,
                                const uint64_t *y, const double *cy, size_t ny,
                                const double *sig, int ns);

/* KL(q || p) = sum_x q_x log(q_x / max(p_x, eps)) (terms with q_x = 0 are 0): p the model,
 * q the target; gp = dL/dp = -q_x / p_x where p_x > eps, 0 where clipped. */
double qd_loss_kl(const double *p, const double *q, size_t d, double eps, double *gp);
/* cross entropy -sum q_x log max(p_x, eps); same gradient as KL. */
double qd_loss_xent(const double *p, const double *q, size_t d, double eps, double *gp);
/* local fidelity loss (Cerezo et al.; arXiv 2305.02881 eq. for the QCBM):
 * L = 1 - (1/n) sum_j <phi| (|0><0|_j (x) I) |phi>, phi = U^H |q>; G = -(1/n) sum_j P0_j phi. */
double qd_loss_local_fid(const qd_c *phi, int n, qd_c *G);
/* Born-rule chain rule for p = |psi|^2: G = dL/d conj(psi) = gp .* psi from gp = dL/dp (D
 * entries); and the parameter-shift derivative of a loss of p along one rotation angle,
 * sum_x gp_x (pp_x - pm_x) / 2 with pp, pm the probabilities at the angle +- pi/2 (exact for
 * exp(-i t P/2) gates, any differentiable loss). */
void qd_born_vjp(const qd_c *psi, const double *gp, size_t D, qd_c *G);
double qd_born_shift(const double *gp, const double *pp, const double *pm, size_t D);

/* ---------------------------------------------------------------- state losses
 * rho, sigma: n-qubit density matrices; psi, phi: pure states. Gradients per convention. */
/* 1 - |<a|b>|^2; Ga = -b <b|a>, Gb = -a <a|b> */
double qd_loss_infid_pp(const qd_c *a, const qd_c *b, int n, qd_c *Ga, qd_c *Gb);
/* 1 - <psi|rho|psi>; Gpsi = -rho psi, Grho = -(1/2)|psi><psi| */
double qd_loss_infid_pd(const qd_c *psi, const qd_c *rho, int n, qd_c *Gpsi, qd_c *Grho);
/* 1 - F_Uhlmann(rho, sigma), F = (Tr sqrt(sqrt(rho) sigma sqrt(rho)))^2. Gradient
 * grad_rho F = sqrt(F) sqrt(sigma) X^{-1/2} sqrt(sigma), X = sqrt(sigma) rho sqrt(sigma)
 * (pseudo-inverse on X's support, eigenvalues below 1e-12 max dropped): exact where X has
 * constant rank (e.g. full-rank states). */
qd_status qd_loss_infid_dd(const qd_c *rho, const qd_c *sigma, int n, double *val,
                           qd_c *Grho, qd_c *Gsigma, qd_err *e);
/* 1/2 ||rho - sigma||_1; Grho = (1/4) sign(rho - sigma) = -Gsigma (exact away from zero
 * eigenvalues of rho - sigma) */
qd_status qd_loss_trace_dist(const qd_c *rho, const qd_c *sigma, int n, double *val,
                             qd_c *Grho, qd_c *Gsigma, qd_err *e);
/* Tr[(rho - sigma)^2] (squared Hilbert–Schmidt distance); Grho = rho - sigma = -Gsigma */
double qd_loss_hs(const qd_c *rho, const qd_c *sigma, int n, qd_c *Grho, qd_c *Gsigma);
/* superfidelity G = Tr(rho sigma) + sqrt((1 - Tr rho^2)(1 - Tr sigma^2)) (Miszczak et al.
 * 2009, an upper bound of the Uhlmann fidelity); the loss is 1 - G.
 * Grho = -(1/2)[sigma - sqrt(b/a) rho], a = 1 - Tr rho^2, b = 1 - Tr sigma^2; the sqrt
 * term's gradient is omitted where a*b == 0 (a pure input: not differentiable there). */
double qd_superfidelity(const qd_c *rho, const qd_c *sigma, int n);
double qd_loss_superfid(const qd_c *rho, const qd_c *sigma, int n, qd_c *Grho, qd_c *Gsigma);

#endif
