/* qd_dmstack.h — ensembles of density matrices held as one buffer (a "stack"): N matrices of
 * d x d, column-major, one after another (matrix k at A + k d^2). What MSQuDDPM (arXiv
 * 2411.17608, mixed-state QuDDPM) needs per epoch, each a whole-ensemble kernel: the
 * superfidelity-kernel MMD and Wasserstein losses with their gradients, and the backward step
 * "circuit on rho (x) ancillas, ancillas measured, outcome sampled and kept, state renormalised"
 * done through the Kraus blocks of the circuit's isometry, with its vector-Jacobian product.
 *
 * Gradient convention (as qd_loss.h): G = dL/d conj(X) for a real L, dL = 2 Re sum conj(G) dX;
 * for a Hermitian X, G is Hermitian. */
#ifndef QD_DMSTACK_H
#define QD_DMSTACK_H
#include "qd.h"

/* Below this 1 - Tr rho^2 is taken as this (the reference code's floor), and the square root
 * term of the superfidelity has no gradient (a pure state: not differentiable there). */
#define QD_SF_FLOOR 1e-16

/* out_k = keep A_k + (1 - keep) I/d for every member (global depolarizing; out may be A). */
void qd_dms_depolarize(const qd_c *A, size_t N, size_t d, double keep, qd_c *out);

/* val = D_MMD = mean_ij G(a_i, a_j) + mean_ij G(b_i, b_j) - 2 mean_ij G(a_i, b_j), with the
 * superfidelity G(r, s) = Re Tr(r s) + sqrt(max(f, 1 - Tr r^2) max(f, 1 - Tr s^2)), f =
 * QD_SF_FLOOR. It equals ||abar - bbar||_F^2 + (sbar - tbar)^2 (abar the mean matrix, sbar the
 * mean sqrt term), which is how it is computed: O(N d^2). GA (N matrices, may be NULL) = dL/d
 * conj(A). */
qd_status qd_dms_mmd_sf(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, double *val,
                        qd_c *GA, qd_err *e);

/* Exact optimal transport between the uniform ensembles A (N) and B (M) with the cost
 * C_ij = 1 - G(a_i, b_j) (qd_ot_exact: an assignment when N == M); val = sum P C. GA (may be
 * NULL) = dL/d conj(A) with the optimal plan held fixed; P (N x M, column-major, may be NULL)
 * receives the plan. */
qd_status qd_dms_wass_sf(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, double *val,
                         qd_c *GA, double *P, qd_err *e);

/* The same two losses with the root Uhlmann fidelity K(r, s) = Tr sqrt(sqrt(r) s sqrt(r))
 * as the kernel (the reference code's "normal" fidelity type, which it computes by a
 * Newton-Schulz square root; here exactly, by eigen-decompositions through
 * qd_loss_infid_dd): MMD = mean K(A,A) + mean K(B,B) - 2 mean K(A,B), Wasserstein with the
 * cost 1 - K. One d x d fidelity and its gradient per member pair. */
qd_status qd_dms_mmd_uhl(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, double *val,
                         qd_c *GA, qd_err *e);
qd_status qd_dms_wass_uhl(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, double *val,
                          qd_c *GA, double *P, qd_err *e);

/* The backward step of MSQuDDPM through Kraus blocks. W: the circuit on na + n qubits
 * (ancillas first, most significant) run on its basis inputs, column c = U|c>: the d = 2^n
 * inputs |0..0>_A|i> (haar == 0), or the 2d inputs |x 0..0>_A|i>, c = x d + i (haar != 0: the
 * first ancilla starts in anc_k = (anc[2k], anc[2k+1]), member k's own pure state, the others
 * in |0>); each column has D = 2^(na+n) amplitudes. Member k's Kraus blocks are
 * K_m = (<m|_A (x) I) V_k, V_k = W's first d columns (or anc[2k] W_0 + anc[2k+1] W_1), m the
 * 2^na outcomes of the ancillas. For each member: p_m = Tr K_m rho_k K_m^H, the outcome m with
 * u_k (uniform in [0, 1)) against the cumulative p, out_k = K_m rho_k K_m^H / p_m; outcome[k]
 * = m, prob[k] = p_m (either may be NULL). QD_EARG when a member's probabilities vanish. */
qd_status qd_dms_kraus_step(const qd_c *W, int n, int na, int haar, const qd_c *anc, size_t N,
                            const qd_c *rho, const double *u, qd_c *out, int *outcome, double *prob,
                            qd_err *e);

/* Its vector-Jacobian product with the outcomes held fixed: G (N matrices) = dL/d conj(out),
 * out and outcome those of qd_dms_kraus_step; gW (shaped like W: d or 2d columns of D) =
 * dL/d conj(W), through the normalisation by p_m (d out = (dS - out Tr dS)/p, S = K rho K^H). */
qd_status qd_dms_kraus_vjp(const qd_c *W, int n, int na, int haar, const qd_c *anc, size_t N,
                           const qd_c *rho, const qd_c *out, const int *outcome, const qd_c *G,
                           qd_c *gW, qd_err *e);

/* vals[k] = Re Tr(A_k O) for a d x d matrix O (column-major). */
void qd_dms_expect(const qd_c *A, size_t N, size_t d, const qd_c *O, double *vals);

#endif
