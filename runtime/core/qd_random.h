/*
 * qd_random.h — random states and unitaries (random.c), the QuDDPM forward scrambling
 * (diffusion.c), noise schedules (schedule.c) and the data-set kernels of qd.data
 * (random.c). Core only: no Lua. Conventions as in qd.h (qubit 0 = most significant bit,
 * column-major matrices, member k of a batch at a + k*2^n).
 *
 * Reproducibility: every batched generator takes a `stream` generator that it does NOT
 * advance; member k draws only from qd_rng_sub(stream, k), in a fixed order, so member k
 * is the same whatever the batch size or the thread count (OpenMP runs over members, and
 * no reduction crosses members).
 */
#ifndef QD_RANDOM_H
#define QD_RANDOM_H
#include "qd.h"

/* ---------------------------------------------------------------- random.c */

/* G (m x n, column-major) = i.i.d. complex normals with E|g|^2 = 1 (qd_rng_cnormal),
 * drawn column by column. Cannot fail. */
void qd_ginibre(qd_c *G, size_t m, size_t n, qd_rng *r);

/* U (d x d) Haar-random unitary (Mezzadri, arXiv math-ph/0609050): U = Q diag(r_jj/|r_jj|)
 * where G = QR is the QR decomposition (qd_la_qr) of a d x d Ginibre matrix. The phase fix
 * makes the factorisation G = U R' with R' = diag(conj(r_jj)/|r_jj|) R having a positive
 * diagonal, which is unique, so U is exactly Haar. QD_ENOMEM / QD_ENUMERIC on failure. */
qd_status qd_haar_unitary(qd_c *U, size_t d, qd_rng *r, qd_err *e);

/* The same from a given d x d matrix G (overwritten with U): Gram-Schmidt (modified, with
 * one re-orthogonalisation pass), which directly yields the QR factor with positive R
 * diagonal. For small d (2-qubit gates of random circuits), no LAPACK and safe in
 * parallel regions. Equal to qd_haar_unitary on the same G up to rounding. */
void qd_unitary_from_ginibre_gs(qd_c *G, size_t d);

/* Random density matrices (d x d, column-major):
 *  - Hilbert-Schmidt / induced measure: rho = G G^H / Tr(G G^H), G d x k Ginibre.
 *    k = d gives the Hilbert-Schmidt measure; k < d a rank-k state (induced measure).
 *  - Bures: rho = (I + U) G G^H (I + U)^H / Tr(...), U Haar, G d x d Ginibre
 *    (Osipov, Sommers, Zyczkowski, J. Phys. A 43, 055302 (2010)). */
qd_status qd_random_dm_hs(qd_c *rho, size_t d, size_t k, qd_rng *r, qd_err *e);
qd_status qd_random_dm_bures(qd_c *rho, size_t d, qd_rng *r, qd_err *e);

/* Random rank-k mixture rho = sum_{i<k} w_i |v_i><v_i| with v_0..v_{k-1} the first k columns
 * of a Haar unitary (orthonormal, so the spectrum is exactly w) and w either given
 * (k weights >= 0 summing to 1, not checked here) or, if w == NULL, uniform on the
 * probability simplex (Dirichlet(1,...,1): normalised Exp(1) draws, drawn after U).
 * wout (k values, may be NULL) receives the weights used. */
qd_status qd_random_mixture(qd_c *rho, size_t d, size_t k, const double *w, double *wout,
                            qd_rng *r, qd_err *e);

/* Random brickwork circuit applied to each of `count` vectors of nq qubits (in place).
 * Layer l = 0..depth-1: nq == 1: a Haar 2x2 unitary on qubit 0; nq >= 2: Haar 4x4 unitaries
 * on pairs (i, i+1), i = l%2, l%2 + 2, ... (i the more significant qubit of the gate).
 * Member k draws from qd_rng_sub(stream, k): for each gate in order, a 4x4 (or 2x2)
 * Ginibre matrix column by column, then Gram-Schmidt (qd_unitary_from_ginibre_gs). */
void qd_random_circuit(qd_c *a, int nq, size_t count, int depth, const qd_rng *stream);

/* ---- data-set kernels (qd.data); member k from qd_rng_sub(stream, k) ---- */

/* Clustered states around |0..0> (QuDDPM cluster tasks): psi ∝ |0> + eps sum_{j != 0} c_j|j>,
 * c_j = x + i y with x, y ~ N(0, 1) independent (the reference code's randn + 1j randn),
 * drawn in order j = 1..2^n-1 (x then y); normalised. */
void qd_data_clustered(qd_c *a, int n, size_t N, double eps, const qd_rng *stream);

/* Circle states: each qubit cos(phi)|0> + sin(phi)|1> with phi ~ U[lo, hi) (one phi per
 * qubit, qubit 0 first; n = 1 is the QuDDPM circle task with [0, 2 pi)). Real amplitudes.
 * If phis != NULL it receives the n*N angles (member k at phis + k*n). */
void qd_data_circle(qd_c *a, int n, size_t N, double lo, double hi, const qd_rng *stream,
                    double *phis);

/* The correlated-noise ensemble (QuDDPM "noise" task, 2 qubits):
 * psi0 = (sqrt(0.1) e^{0.8i}, sqrt(0.55) e^{1.7i}, 0, sqrt(0.35) e^{2.4i}) over |00>..|11>;
 * member k draws u ~ U[0,1) then eps ~ U[-emax, emax); u < p applies exp(-i eps X⊗X),
 * otherwise exp(-i eps Z⊗Z). is_xx (may be NULL) gets 1/0, eps_out (may be NULL) eps. */
void qd_data_xxzz(qd_c *a, size_t N, double p, double emax, const qd_rng *stream,
                  double *is_xx, double *eps_out);

/* ---------------------------------------------------------------- diffusion.c
 * QuDDPM forward scrambling (arXiv 2310.05866). One step s with strength
 * h on an n-qubit member:
 *   W = [prod_{i<j} RZZ_ij(g / (2 sqrt n))] . (x)_i RZ(phi_{i,3}) RY(phi_{i,2}) RZ(phi_{i,1})
 * i.e. on every qubit RZ(phi1) first, then RY(phi2), then RZ(phi3); then RZZ on every pair
 * with the same angle. phi ~ U[-pi/8, pi/8) * h (three per qubit), g ~ U[0.4, 0.6) * h
 * (one per member per step, drawn only if n >= 2). Step s of member k draws from
 * qd_rng_sub(qd_rng_sub(stream, k), s), in the order phi_{0,1}, phi_{0,2}, phi_{0,3},
 * phi_{1,1}, ..., then g. */

/* The angles of step s of member k: phi[3*i + j-1] = phi_{i,j}; *g (0 if n < 2). */
void qd_diffusion_angles(const qd_rng *stream, size_t k, uint64_t s, int n, double h,
                         double *phi, double *g);

/* Apply steps s = s_first..s_last (s_first >= 1) to each of `count` members in place;
 * step s uses strength hs[s - 1]. OpenMP over members; cannot fail (n >= 1). */
void qd_diffusion_steps(qd_c *a, int n, size_t count, const double *hs, uint64_t s_first,
                        uint64_t s_last, const qd_rng *stream);

/* The forward family S_0..S_T from S_0 = a0 (N members), written to out[0..T] (T+1
 * buffers of N*2^n amplitudes, out[t] = S_t; out[0] may equal a0). marginal != 0 (the reference code's sets): S_t is a0
 * with t fresh steps, drawn from stream qd_rng_sub(base, t), independent across t.
 * marginal == 0: one trajectory per member, S_t = step t applied to S_{t-1} (stream base),
 * which has the same marginal law per t. Cost: T(T+1)/2 steps vs T. */
void qd_diffusion_forward(const qd_c *a0, int n, size_t N, const double *hs, size_t T,
                          const qd_rng *base, int marginal, qd_c *const *out);

/* ---------------------------------------------------------------- schedule.c
 * Noise schedules: T values v_1..v_T (stored v[0..T)). Each constructor fills v and
 * returns QD_EARG with a message for bad parameters (T >= 1 always required).
 *   linear     v_t = from + (t-1) (to - from)/(T-1)   (numpy.linspace; v_T = to exactly)
 *   quadratic  v_t = (sqrt(from) + (t-1)(sqrt(to) - sqrt(from))/(T-1))^2, from, to >= 0
 *              (linspace of square roots, squared: from = c, to = c T^2 gives c t^2)
 *   geometric  v_t = from (to/from)^((t-1)/(T-1)), from, to > 0
 *   sq_cosine  v_t = from + (to - from) sin^2(pi t / (2T))    (a cosine-squared ramp,
 *              t = 1..T; v_T = to)
 *   cosine     Nichol & Dhariwal (arXiv 2102.09672): abar(t) = f(t)/f(0),
 *              f(t) = cos^2(pi/2 (t/T + s)/(1 + s)), v_t = beta_t = min(1 - abar(t)/abar(t-1),
 *              max_beta) (s = 0.008, max_beta = 0.999 in the paper)
 * With T == 1, linear/quadratic/geometric give v_1 = from. */
qd_status qd_schedule_linear(double *v, size_t T, double from, double to, qd_err *e);
qd_status qd_schedule_quadratic(double *v, size_t T, double from, double to, qd_err *e);
qd_status qd_schedule_geometric(double *v, size_t T, double from, double to, qd_err *e);
qd_status qd_schedule_sq_cosine(double *v, size_t T, double from, double to, qd_err *e);
qd_status qd_schedule_cosine(double *v, size_t T, double s, double max_beta, qd_err *e);
/* clamp every value into [lo, hi] */
void qd_schedule_clip(double *v, size_t T, double lo, double hi);
/* prod_{s=1..t} (1 - v_s), t = 0..T (t = 0 gives 1) */
double qd_schedule_alpha_bar(const double *v, size_t t);

#endif
