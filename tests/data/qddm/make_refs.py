# make_refs.py — reference values for tests/lua/test_qddm.lua: SSIM as scikit-image's
# structural_similarity computes it by default (7x7 uniform window, sample covariance,
# K1 = 0.01, K2 = 0.03, data_range = 1, the mean over the crop of (7-1)/2 pixels), written
# out with scipy's uniform_filter as skimage does (skimage is not installed here), and PSNR.
# Run with /usr/bin/python3 (numpy, scipy): python3 make_refs.py
import numpy as np
from scipy.ndimage import uniform_filter

rng = np.random.default_rng(2401)
N = 5
X = rng.random((N, 8, 8))
Y = np.clip(X + 0.2 * rng.standard_normal((N, 8, 8)), 0, 1)
Y[0] = X[0]                      # identical pair: SSIM 1
Y[1] = 1 - X[1]                  # negated


def ssim(x, y, win=7, R=1.0):
    K1, K2 = 0.01, 0.03
    NP = win * win
    cov = NP / (NP - 1)
    ux, uy = uniform_filter(x, size=win), uniform_filter(y, size=win)
    uxx, uyy, uxy = uniform_filter(x * x, size=win), uniform_filter(y * y, size=win), uniform_filter(x * y, size=win)
    vx, vy, vxy = cov * (uxx - ux * ux), cov * (uyy - uy * uy), cov * (uxy - ux * uy)
    C1, C2 = (K1 * R) ** 2, (K2 * R) ** 2
    S = ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux ** 2 + uy ** 2 + C1) * (vx + vy + C2))
    p = (win - 1) // 2
    return S[p:-p, p:-p].mean()


def psnr(x, y, R=1.0):
    mse = np.mean((x - y) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(R * R / mse)


s7 = np.array([ssim(X[i], Y[i]) for i in range(N)])
s5 = np.array([ssim(X[i], Y[i], win=5) for i in range(N)])
ps = np.array([psnr(X[i], Y[i]) for i in range(1, N)])
# images as columns of a 64 x N matrix, row-major pixels (entry r*8 + c)
np.save("x.npy", X.reshape(N, 64).T.copy())
np.save("y.npy", Y.reshape(N, 64).T.copy())
np.save("ssim7.npy", s7)
np.save("ssim5.npy", s5)
np.save("psnr.npy", ps)
print(s7, s5, ps)
