/* nn.c — forward and backward passes of a multilayer perceptron over a batch (qd_nn.h).
 * The dense products are BLAS (qd_la_dgemm); the bias, activation and reduction loops are
 * plain loops in a fixed order, so a result depends on nothing but the inputs. */
#include "qd_nn.h"
#include <math.h>
#include <string.h>

size_t qd_mlp_nparams(const qd_mlp *m)
{
    size_t n = 0;
    for (int l = 1; l <= m->layers; l++) {
        size_t w;
        if (qd_mul_overflow((size_t)m->sizes[l], (size_t)m->sizes[l - 1] + 1, &w) || n + w < n)
            return 0;
        n += w;
    }
    return n;
}

size_t qd_mlp_tape_len(const qd_mlp *m, size_t B)
{
    size_t rows = 0, n;
    for (int l = 1; l <= m->layers; l++)
        rows += 2 * (size_t)m->sizes[l];
    return qd_mul_overflow(rows, B, &n) ? 0 : n;
}

size_t qd_mlp_work_len(const qd_mlp *m, size_t B)
{
    size_t w = 0, n;
    for (int l = 0; l <= m->layers; l++)
        if ((size_t)m->sizes[l] > w)
            w = (size_t)m->sizes[l];
    return qd_mul_overflow(2 * w, B, &n) ? 0 : n;
}

static double sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

static void activate(qd_act f, const double *Z, double *A, size_t n)
{
    switch (f) {
    case QD_ACT_LINEAR:
        if (A != Z)
            memcpy(A, Z, n * sizeof *A);
        break;
    case QD_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            A[i] = Z[i] > 0 ? Z[i] : 0.0;
        break;
    case QD_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            A[i] = tanh(Z[i]);
        break;
    case QD_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            A[i] = sigmoid(Z[i]);
        break;
    case QD_ACT_SILU:
        for (size_t i = 0; i < n; i++)
            A[i] = Z[i] * sigmoid(Z[i]);
        break;
    }
}

/* D *= act'(Z) (A = act(Z) given, for the derivatives written through the output) */
static void act_backward(qd_act f, const double *Z, const double *A, double *D, size_t n)
{
    switch (f) {
    case QD_ACT_LINEAR:
        break;
    case QD_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            if (!(Z[i] > 0))
                D[i] = 0.0;
        break;
    case QD_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            D[i] *= 1.0 - A[i] * A[i];
        break;
    case QD_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            D[i] *= A[i] * (1.0 - A[i]);
        break;
    case QD_ACT_SILU:
        for (size_t i = 0; i < n; i++) {
            double s = sigmoid(Z[i]);
            D[i] *= s * (1.0 + Z[i] * (1.0 - s));
        }
        break;
    }
}

/* offsets of W_l, b_l in theta and of Z_l, A_l in the tape (layer l = 1..L) */
static void offsets(const qd_mlp *m, int l, size_t B, size_t *w, size_t *b, size_t *z, size_t *a)
{
    size_t pw = 0, pt = 0;
    for (int k = 1; k < l; k++) {
        pw += (size_t)m->sizes[k] * ((size_t)m->sizes[k - 1] + 1);
        pt += 2 * (size_t)m->sizes[k] * B;
    }
    *w = pw;
    *b = pw + (size_t)m->sizes[l] * (size_t)m->sizes[l - 1];
    *z = pt;
    *a = pt + (size_t)m->sizes[l] * B;
}

/* Z = W A + b 1^T for one layer (Z is n_out x B) */
static void dense(const double *W, const double *bias, const double *A, size_t nout, size_t nin,
                  size_t B, double *Z)
{
    for (size_t j = 0; j < B; j++)
        memcpy(Z + j * nout, bias, nout * sizeof *Z);
    qd_la_dgemm('N', 'N', nout, B, nin, 1.0, W, nout, A, nin, 1.0, Z, nout);
}

void qd_mlp_forward(const qd_mlp *m, const double *theta, const double *X, size_t B, double *Y,
                    double *tape)
{
    const double *A = X;
    for (int l = 1; l <= m->layers; l++) {
        size_t ow, ob, oz, oa, nout = (size_t)m->sizes[l], nin = (size_t)m->sizes[l - 1];
        offsets(m, l, B, &ow, &ob, &oz, &oa);
        double *Z = tape + oz, *Al = tape + oa;
        dense(theta + ow, theta + ob, A, nout, nin, B, Z);
        activate(m->act[l - 1], Z, Al, nout * B);
        A = Al;
    }
    if (Y != A)
        memcpy(Y, A, (size_t)m->sizes[m->layers] * B * sizeof *Y);
}

void qd_mlp_backward(const qd_mlp *m, const double *theta, const double *X, size_t B,
                     const double *tape, const double *G, double *gtheta, double *gX, double *work)
{
    size_t wmax = qd_mlp_work_len(m, B) / 2;
    double *D = work, *Dn = work + wmax;
    memcpy(D, G, (size_t)m->sizes[m->layers] * B * sizeof *D);
    for (int l = m->layers; l >= 1; l--) {
        size_t ow, ob, oz, oa, nout = (size_t)m->sizes[l], nin = (size_t)m->sizes[l - 1];
        offsets(m, l, B, &ow, &ob, &oz, &oa);
        act_backward(m->act[l - 1], tape + oz, tape + oa, D, nout * B);
        const double *Ain = l > 1 ? tape + oz - nin * B : X;   /* A_{l-1} */
        /* gW = D Ain^T (nout x nin); gb = D 1 (rows summed in sample order) */
        qd_la_dgemm('N', 'T', nout, nin, B, 1.0, D, nout, Ain, nin, 0.0, gtheta + ow, nout);
        double *gb = gtheta + ob;
        for (size_t i = 0; i < nout; i++)
            gb[i] = 0.0;
        for (size_t j = 0; j < B; j++)
            for (size_t i = 0; i < nout; i++)
                gb[i] += D[j * nout + i];
        if (l > 1 || gX) {
            double *dst = l > 1 ? Dn : gX;
            qd_la_dgemm('T', 'N', nin, B, nout, 1.0, theta + ow, nout, D, nout, 0.0, dst, nin);
            if (l > 1) {
                double *t = D;
                D = Dn;
                Dn = t;
            }
        }
    }
}

double qd_mse(const double *y, const double *t, size_t n, double *G)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = y[i] - t[i];
        s += d * d;
        if (G)
            G[i] = 2.0 * d / (double)n;
    }
    return s / (double)n;
}
