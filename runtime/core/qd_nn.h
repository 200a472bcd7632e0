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

#endif
