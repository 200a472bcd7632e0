/* test_image.c — image.c against naive references: amplitude encoding (norms, padding, the
 * RX ancilla), the clamped Born read-out and its vector-Jacobian product (finite
 * differences of a linear functional), the noising chain, PSNR, and SSIM recomputed with
 * two-pass window statistics (the numpy/scipy values are tested in tests/lua/test_qddm.lua). */
#include "harness.h"
#include "qd_image.h"
#include <math.h>
#include <string.h>

/* a fixed pseudo-random number in [0, 1) */
static double frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (double)((*s >> 8) & 0xffffff) / 16777216.0;
}

QD_TEST(image_encode)
{
    double X[10];
    unsigned s = 7;
    for (int i = 0; i < 10; i++)
        X[i] = 0.1 + frand(&s);
    qd_c psi[16], psi2[32];
    double nr[2];
    qd_err e;
    CHECK(qd_image_encode(X, 5, 2, 3, 0, 0.5, NULL, psi, nr, &e) == QD_OK, "encode ok");
    double want = 0;
    for (int i = 0; i < 5; i++)
        want += X[5 + i] * X[5 + i];
    want = sqrt(want + 3 * 0.25);
    CHECK(fabs(nr[1] - want) < 1e-15, "norm with padding");
    CHECK(fabs(creal(psi[8 + 6]) - 0.5 / want) < 1e-15 && cimag(psi[8 + 6]) == 0, "padded entry");
    double ang[2] = {0.4, 2.0};
    CHECK(qd_image_encode(X, 5, 2, 4, 1, 0.0, ang, psi2, NULL, &e) == QD_OK, "ancilla ok");
    double n1 = 0;
    for (int i = 0; i < 5; i++)
        n1 += X[5 + i] * X[5 + i];
    n1 = sqrt(n1);
    /* member 1: amplitude (i, a) at 2i + a: x_i/|x| (cos(t/2), -i sin(t/2)) */
    CHECK(fabs(creal(psi2[16 + 2 * 3]) - X[8] / n1 * cos(1.0)) < 1e-15 &&
              fabs(cimag(psi2[16 + 2 * 3 + 1]) + X[8] / n1 * sin(1.0)) < 1e-15,
          "RX ancilla");
    memset(X, 0, sizeof X);
    CHECK(qd_image_encode(X, 5, 2, 3, 0, 0.0, NULL, psi, nr, &e) == QD_EARG &&
              strstr(e.msg, "image 1") != NULL,
          "zero image rejected: %s", e.msg);
}

QD_TEST(image_readout_vjp)
{
    unsigned s = 11;
    qd_c psi[2 * 16], G[2 * 16];
    for (int i = 0; i < 32; i++)
        psi[i] = (frand(&s) - 0.5) * 0.6 + I * (frand(&s) - 0.5) * 0.6;
    qd_readout r = {8, 1, 2, 9.0, 0.1, -0.05};
    double Y[16], C[16];
    qd_image_readout(psi, 16, 2, &r, Y);
    int clamped = 0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 8; i++) {
            qd_c z = psi[j * 16 + 1 + 2 * i];
            double v = 9 * (creal(z) * creal(z) + cimag(z) * cimag(z));
            clamped += v > 1;
            v = v > 1 ? 1 : v;
            CHECK(fabs(Y[j * 8 + i] - (0.1 * v - 0.05)) < 1e-16, "read-out entry");
        }
    CHECK(clamped > 0 && clamped < 16, "some entries clamped (%d)", clamped);
    for (int i = 0; i < 16; i++)
        C[i] = frand(&s) - 0.5;
    qd_image_readout_vjp(psi, 16, 2, &r, C, G);
    /* L = sum C Y: dL/d conj(psi) = (dL/dRe + i dL/dIm) / 2 by central differences */
    double worst = 0, h = 1e-7;
    for (int x = 0; x < 32; x++) {
        double d[2];
        for (int part = 0; part < 2; part++) {
            double Lp = 0, Lm = 0, Yp[16];
            qd_c keep = psi[x];
            psi[x] = keep + (part ? I * h : h);
            qd_image_readout(psi, 16, 2, &r, Yp);
            for (int i = 0; i < 16; i++)
                Lp += C[i] * Yp[i];
            psi[x] = keep - (part ? I * h : h);
            qd_image_readout(psi, 16, 2, &r, Yp);
            for (int i = 0; i < 16; i++)
                Lm += C[i] * Yp[i];
            psi[x] = keep;
            d[part] = (Lp - Lm) / (2 * h);
        }
        double er = fabs(creal(G[x]) - d[0] / 2), ei = fabs(cimag(G[x]) - d[1] / 2);
        worst = er > worst ? er : worst;
        worst = ei > worst ? ei : worst;
    }
    CHECK(worst < 1e-8, "vjp vs finite differences: %g", worst);
}

QD_TEST(image_diffuse_psnr)
{
    double X0[6] = {0, 0.2, 0.9, 1, 0.5, 0.3}, eps[6] = {0.5, -0.1, 1.4, 0.3, 0.5, 0.7};
    double w[4] = {0, 1.0 / 27, 8.0 / 27, 1}, Xin[18], Xp[18];
    qd_image_diffuse(X0, eps, 3, 2, w, 3, Xin, Xp);
    double worst = 0;
    for (int j = 0; j < 2; j++)
        for (int t = 1; t <= 3; t++)
            for (int i = 0; i < 3; i++) {
                double a = (1 - w[t]) * X0[j * 3 + i] + w[t] * eps[j * 3 + i];
                double b = (1 - w[t - 1]) * X0[j * 3 + i] + w[t - 1] * eps[j * 3 + i];
                a = a < 0 ? 0 : a > 1 ? 1 : a;
                b = b < 0 ? 0 : b > 1 ? 1 : b;
                double d1 = fabs(Xin[(j * 3 + t - 1) * 3 + i] - a);
                double d2 = fabs(Xp[(j * 3 + t - 1) * 3 + i] - b);
                worst = d1 > worst ? d1 : worst;
                worst = d2 > worst ? d2 : worst;
            }
    CHECK(worst == 0, "x_t and x_(t-1) entrywise");
    CHECK(Xin[(1 * 3 + 2) * 3 + 2] == 0.7, "w_T = 1: x_T = clamp(eps)");
    double y[3] = {0.1, 0.2, 0.4}, x[3] = {0.1, 0.3, 0.2};
    double mse = (0.01 + 0.04) / 3;
    CHECK(fabs(qd_image_psnr(x, y, 3, 1.0) - 10 * log10(1 / mse)) < 1e-12, "psnr");
    CHECK(fabs(qd_image_psnr(x, y, 3, 2.0) - 10 * log10(4 / mse)) < 1e-12, "psnr, range 2");
    CHECK(isinf(qd_image_psnr(x, x, 3, 1.0)), "equal: inf");
}

/* SSIM with two-pass window statistics (mean first, then centred sums) */
static double ssim_naive(const double *x, const double *y, int h, int w, int win)
{
    int p = (win - 1) / 2, cnt = 0;
    double C1 = 1e-4, C2 = 9e-4, tot = 0, np = win * win;
    for (int r = p; r < h - p; r++)
        for (int c = p; c < w - p; c++) {
            double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
            for (int a = -p; a <= p; a++)
                for (int b = -p; b <= p; b++) {
                    mx += x[(r + a) * w + c + b] / np;
                    my += y[(r + a) * w + c + b] / np;
                }
            for (int a = -p; a <= p; a++)
                for (int b = -p; b <= p; b++) {
                    double u = x[(r + a) * w + c + b] - mx, v = y[(r + a) * w + c + b] - my;
                    sxx += u * u;
                    syy += v * v;
                    sxy += u * v;
                }
            sxx /= np - 1;
            syy /= np - 1;
            sxy /= np - 1;
            tot += (2 * mx * my + C1) * (2 * sxy + C2) /
                   ((mx * mx + my * my + C1) * (sxx + syy + C2));
            cnt++;
        }
    return tot / cnt;
}

QD_TEST(image_ssim)
{
    unsigned s = 5;
    double x[80], y[80];
    for (int i = 0; i < 80; i++) {
        x[i] = frand(&s);
        y[i] = 0.7 * x[i] + 0.3 * frand(&s);
    }
    CHECK(fabs(qd_image_ssim(x, x, 8, 10, 7, 1.0) - 1) < 1e-14, "identical images: 1");
    for (int win = 3; win <= 7; win += 2) {
        double a = qd_image_ssim(x, y, 8, 10, win, 1.0), b = ssim_naive(x, y, 8, 10, win);
        CHECK(fabs(a - b) < 1e-12, "window %d: %.15g vs naive %.15g", win, a, b);
    }
}
