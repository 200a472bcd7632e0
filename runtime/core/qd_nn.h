/* qd_nn.h — small dense neural networks (nn.c): the classical denoisers and baselines of the
 * image-diffusion and circuit-synthesis protocols (qd.nn in Lua). No Lua in here.
 *
 * A multilayer perceptron with L layers maps n_0 inputs to n_L outputs, a batch of B samples
 * at a time (one sample per column, column-major, as everywhere in qd):
 *     A_0 = X,  Z_l = W_l A_{l-1} + b_l,  A_l = act_l(Z_l),  Y = A_L.
 * Parameters are one real vector, layer by layer: W_l (n_l x n_{l-1}, column-major), then
 * b_l (n_l). The products run through qd_la_dgemm (OpenBLAS, fixed blocks), so results do
 * not depend on the thread count. */
#ifndef QD_NN_H
#define QD_NN_H
#include "qd.h"

#define QD_NN_MAX_LAYERS 64
#define QD_NN_MAX_WIDTH (1 << 20)

typedef enum { QD_ACT_LINEAR, QD_ACT_RELU, QD_ACT_TANH, QD_ACT_SIGMOID, QD_ACT_SILU } qd_act;

typedef struct {
    int layers;                          /* L >= 1 */
    int sizes[QD_NN_MAX_LAYERS + 1];     /* n_0 .. n_L, each 1..QD_NN_MAX_WIDTH */
    qd_act act[QD_NN_MAX_LAYERS];        /* act_1 .. act_L */
} qd_mlp;

/* parameters, and the doubles a forward pass keeps for the backward one (Z_l and A_l of
 * every layer for B samples); 0 on overflow */
size_t qd_mlp_nparams(const qd_mlp *m);
size_t qd_mlp_tape_len(const qd_mlp *m, size_t B);
/* scratch the backward pass needs (two n_max x B buffers) */
size_t qd_mlp_work_len(const qd_mlp *m, size_t B);

/* Y (n_L x B) = net(X) with parameters theta; tape (qd_mlp_tape_len doubles) receives every
 * layer's Z and A, what the backward pass needs. */
void qd_mlp_forward(const qd_mlp *m, const double *theta, const double *X, size_t B, double *Y,
                    double *tape);

/* Given the tape of a forward pass on X and G = dL/dY (n_L x B): gtheta (nparams) = dL/dtheta,
 * gX (n_0 x B, or NULL) = dL/dX. work: qd_mlp_work_len doubles. */
void qd_mlp_backward(const qd_mlp *m, const double *theta, const double *X, size_t B,
                     const double *tape, const double *G, double *gtheta, double *gX, double *work);

/* mean squared error over n entries, and its gradient 2 (y - t) / n when G != NULL */
double qd_mse(const double *y, const double *t, size_t n, double *G);

/* A residual 1-D convolution network over the time axis of a token tensor (qd.nn.conv): the
 * sequence-biased denoiser of the circuit-diffusion protocol. A sample is one column of
 * inputs*length + cond rows: `length` time steps of `inputs` features each (step t in rows
 * t*inputs ... t*inputs + inputs - 1), then `cond` conditioning features (class, time) shared
 * by all steps. Per sample, with H = channels, r = (kernel - 1) / 2 and a_t the H features of
 * step t (zero outside 0 ... length - 1, "same" padding):
 *     a_t  = W_in x_t + b_in + p_t                               (input projection, position p_t)
 *     z_t  = sum_{j=0}^{kernel-1} C_j a_{t+j-r} + b_c + U c      (block l: convolution + condition)
 *     a_t += W_o act(z_t) + b_o                                  (residual update), l = 1 ... layers
 *     y_t  = W_out a_t + b_out                                   (outputs per step, linear)
 * y is outputs*length rows, step t in rows t*outputs ...; a batch of B samples is B columns.
 * Parameters, one real vector in this order: W_in (H x inputs), b_in (H), P (H x length),
 * then per block C = [C_0 ... C_{kernel-1}] (H x kernel*H), b_c (H), U (H x cond), W_o (H x H),
 * b_o (H), then W_out (outputs x H), b_out (outputs); matrices column-major. Internally the
 * features are an H x (length*B) matrix, column b*length + t, and the convolution is one
 * product with its im2col copy (kernel*H x length*B), so every product is one qd_la_dgemm.
 *
 * With heads = n > 0 every block starts with a self-attention sub-block over the steps of a
 * sample (arXiv 1706.03762, no normalisation, no mask), and the convolution above reads its
 * output m_t instead of a_t (kernel = 1 makes the block a transformer layer without norms):
 *     [q; k; v]_t = W_qkv a_t + b_qkv                            (3H rows; head h: rows h*d ... of each)
 *     P^h_{ts}    = softmax_s(q^h_t . k^h_s / sqrt(d)),  d = H / n
 *     o^h_t       = sum_s P^h_{ts} v^h_s
 *     m_t         = a_t + W_a o_t + b_a
 * In the parameter vector these come first in their block: W_qkv (3H x H), b_qkv (3H), W_a
 * (H x H), b_a (H), then the block's convolution parameters as above. The projections are
 * qd_la_dgemm products; the G x G scores and sums per sample and head are plain loops. */
#define QD_CONV_MAX_LENGTH 4096
#define QD_CONV_MAX_LAYERS 64

typedef struct {
    int length;     /* time steps G, 1..QD_CONV_MAX_LENGTH */
    int inputs;     /* features per step in, 1..QD_NN_MAX_WIDTH */
    int channels;   /* H, 1..QD_NN_MAX_WIDTH */
    int outputs;    /* features per step out, 1..QD_NN_MAX_WIDTH */
    int kernel;     /* odd, 1..2*length - 1 */
    int layers;     /* residual blocks, 0..QD_CONV_MAX_LAYERS */
    int cond;       /* conditioning features, 0..QD_NN_MAX_WIDTH */
    qd_act act;     /* act of the blocks */
    int heads;      /* attention heads per block, 0 (none) or a divisor of channels */
} qd_conv;

/* 0 on overflow (or a spec out of range) */
size_t qd_conv_nparams(const qd_conv *m);
size_t qd_conv_tape_len(const qd_conv *m, size_t B);
size_t qd_conv_work_len(const qd_conv *m, size_t B);
/* rows of an input / output column */
size_t qd_conv_in_rows(const qd_conv *m);
size_t qd_conv_out_rows(const qd_conv *m);

/* Y (out_rows x B) = net(X), X in_rows x B; tape: qd_conv_tape_len doubles */
void qd_conv_forward(const qd_conv *m, const double *theta, const double *X, size_t B, double *Y,
                     double *tape);
/* after qd_conv_forward on X with this tape, G = dL/dY: gtheta = dL/dtheta, gX (or NULL) =
 * dL/dX; work: qd_conv_work_len doubles */
void qd_conv_backward(const qd_conv *m, const double *theta, const double *X, size_t B,
                      const double *tape, const double *G, double *gtheta, double *gX, double *work);

#endif
