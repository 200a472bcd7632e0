/* qd_image.h — small images as columns of a real matrix (QDDM, arXiv 2401.07049): amplitude
 * encoding into a register, the clamped Born read-out and its vector-Jacobian product, the
 * classical noising chain, and the image metrics (PSNR, SSIM). image.c. */
#ifndef QD_IMAGE_H
#define QD_IMAGE_H
#include "qd.h"

/* Amplitude encoding: member j of psi (2^n x N, column-major) is column j of X (D x N,
 * D <= 2^(n - anc)) padded with pad to 2^(n - anc) entries and normalised, times the
 * ancilla state RX(angle_j)|0> on the anc (0 or 1) trailing qubits (angles NULL: |0>).
 * norms[j] (may be NULL) receives the norm of the padded column. A zero column is an
 * error (QD_EARG) naming it. */
qd_status qd_image_encode(const double *X, size_t D, size_t N, int n, int anc, double pad,
                          const double *angles, qd_c *psi, double *norms, qd_err *e);

/* The read-out of QDDM's Q-Dense: y_i = gain * clamp(scale * p_{first + i*stride}, 0, 1)
 * + offset for i = 0..rows-1, p = |psi|^2 of each member (dim amplitudes). */
typedef struct {
    size_t rows, first, stride;
    double scale, gain, offset;
} qd_readout;

/* Y (rows x N): the read-out of every member; psi is dim x N */
void qd_image_readout(const qd_c *psi, size_t dim, size_t N, const qd_readout *r, double *Y);
/* G (dim x N) = dL/d conj(psi) from GY = dL/dY: the Born chain rule through the clamp
 * (zero gradient where scale * p lies outside [0, 1], as torch.clamp) */
void qd_image_readout_vjp(const qd_c *psi, size_t dim, size_t N, const qd_readout *r,
                          const double *GY, qd_c *G);

/* The noising chain of the QDDM reference: x_t = clamp((1 - w_t) x0 + w_t eps, 0, 1) for
 * t = 1..T (w has T + 1 entries, w[0] for t = 0). X0 and eps are D x N; Xin and Xprev are
 * D x (N T) with column j*T + t - 1 holding x_t and x_{t-1} of image j. */
void qd_image_diffuse(const double *X0, const double *eps, size_t D, size_t N,
                      const double *w, int T, double *Xin, double *Xprev);

/* Mean of the structural similarity index over the valid windows of two h x w images
 * (column-major, as image columns of a matrix are stored row by row: entry r*w + c is row
 * r, column c — the layout does not change the result). Window: win x win uniform, sample
 * covariance (N/(N-1)), K1 = 0.01, K2 = 0.03, data range R: scikit-image's
 * structural_similarity defaults. Needs h, w >= win and win odd. */
double qd_image_ssim(const double *x, const double *y, int h, int w, int win, double R);

/* Peak signal-to-noise ratio 10 log10(R^2 / mse) of two images of D pixels (inf if equal) */
double qd_image_psnr(const double *x, const double *y, size_t D, double R);
#endif
