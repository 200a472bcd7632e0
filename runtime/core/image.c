/* image.c — small images for QDDM (arXiv 2401.07049, reference code
 * michaelkoelle/quantum-diffusion): amplitude encoding, the clamped Born read-out of
 * Q-Dense and its gradient, the reference's noising chain, PSNR and SSIM. Images are
 * columns of a real column-major matrix (one pixel per row); per-member work is
 * independent, so results do not depend on batching. */
#include "qd_image.h"
#include <math.h>

qd_status qd_image_encode(const double *X, size_t D, size_t N, int n, int anc, double pad,
                          const double *angles, qd_c *psi, double *norms, qd_err *e)
{
    size_t dd = (size_t)1 << (n - anc), dim = (size_t)1 << n;
    for (size_t j = 0; j < N; j++) {
        const double *x = X + j * D;
        double s = 0;
        for (size_t i = 0; i < dd; i++) {
            double v = i < D ? x[i] : pad;
            s += v * v;
        }
        if (!(s > 0) || !isfinite(s))
            return qd_fail(e, QD_EARG, "image %zu has norm %g: it cannot be amplitude-encoded",
                           j + 1, sqrt(s));
        double nrm = sqrt(s);
        if (norms)
            norms[j] = nrm;
        qd_c a0 = 1, a1 = 0;   /* RX(t)|0> = cos(t/2)|0> - i sin(t/2)|1> */
        if (anc && angles) {
            a0 = cos(0.5 * angles[j]);
            a1 = -I * sin(0.5 * angles[j]);
        }
        qd_c *p = psi + j * dim;
        for (size_t i = 0; i < dd; i++) {
            double v = (i < D ? x[i] : pad) / nrm;
            if (anc) {
                p[2 * i] = v * a0;
                p[2 * i + 1] = v * a1;
            } else {
                p[i] = v;
            }
        }
    }
    return QD_OK;
}

static inline double prob(qd_c z)
{
    return creal(z) * creal(z) + cimag(z) * cimag(z);
}

void qd_image_readout(const qd_c *psi, size_t dim, size_t N, const qd_readout *r, double *Y)
{
    for (size_t j = 0; j < N; j++)
        for (size_t i = 0; i < r->rows; i++) {
            double v = r->scale * prob(psi[j * dim + r->first + i * r->stride]);
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            Y[j * r->rows + i] = r->gain * v + r->offset;
        }
}

/* y = gain clamp(scale p) + offset, p = |psi|^2: dL/dp = gain scale GY inside the clamp's
 * range (inclusive ends, as torch.clamp), 0 outside; G = dL/dp psi (qd_born_vjp's rule) */
void qd_image_readout_vjp(const qd_c *psi, size_t dim, size_t N, const qd_readout *r,
                          const double *GY, qd_c *G)
{
    for (size_t j = 0; j < N; j++) {
        for (size_t x = 0; x < dim; x++)
            G[j * dim + x] = 0;
        for (size_t i = 0; i < r->rows; i++) {
            size_t x = j * dim + r->first + i * r->stride;
            double v = r->scale * prob(psi[x]);
            if (v >= 0 && v <= 1)
                G[x] = (r->gain * r->scale * GY[j * r->rows + i]) * psi[x];
        }
    }
}

void qd_image_diffuse(const double *X0, const double *eps, size_t D, size_t N,
                      const double *w, int T, double *Xin, double *Xprev)
{
    for (size_t j = 0; j < N; j++)
        for (int t = 1; t <= T; t++) {
            double *xi = Xin + (j * (size_t)T + (size_t)(t - 1)) * D;
            double *xp = Xprev + (j * (size_t)T + (size_t)(t - 1)) * D;
            for (size_t i = 0; i < D; i++) {
                double x0 = X0[j * D + i], ep = eps[j * D + i];
                double a = (1 - w[t]) * x0 + w[t] * ep;
                double b = (1 - w[t - 1]) * x0 + w[t - 1] * ep;
                xi[i] = a < 0 ? 0 : a > 1 ? 1 : a;
                xp[i] = b < 0 ? 0 : b > 1 ? 1 : b;
            }
        }
}

/* SSIM of Wang et al. (2004) as scikit-image computes it by default: local means,
 * variances and covariance over a win x win uniform window (sample covariance, NP/(NP-1)),
 * averaged over the windows that lie inside the image (its crop of (win-1)/2 pixels) */
double qd_image_ssim(const double *x, const double *y, int h, int w, int win, double R)
{
    const double K1 = 0.01, K2 = 0.03, C1 = (K1 * R) * (K1 * R), C2 = (K2 * R) * (K2 * R);
    const int pad = (win - 1) / 2;
    const double np = (double)win * win, cov = np / (np - 1);
    double sum = 0;
    int count = 0;
    for (int r = pad; r < h - pad; r++)
        for (int c = pad; c < w - pad; c++) {
            double mx = 0, my = 0, mxx = 0, myy = 0, mxy = 0;
            for (int a = r - pad; a <= r + pad; a++)
                for (int b = c - pad; b <= c + pad; b++) {
                    double u = x[a * w + b], v = y[a * w + b];
                    mx += u;
                    my += v;
                    mxx += u * u;
                    myy += v * v;
                    mxy += u * v;
                }
            mx /= np;
            my /= np;
            mxx /= np;
            myy /= np;
            mxy /= np;
            double vx = cov * (mxx - mx * mx), vy = cov * (myy - my * my);
            double vxy = cov * (mxy - mx * my);
            double s = ((2 * mx * my + C1) * (2 * vxy + C2)) /
                       ((mx * mx + my * my + C1) * (vx + vy + C2));
            sum += s;
            count++;
        }
    return sum / count;
}

double qd_image_psnr(const double *x, const double *y, size_t D, double R)
{
    double s = 0;
    for (size_t i = 0; i < D; i++)
        s += (x[i] - y[i]) * (x[i] - y[i]);
    double mse = s / (double)D;
    return mse > 0 ? 10 * log10(R * R / mse) : INFINITY;
}
