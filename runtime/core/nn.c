/* nn.c — forward and backward passes of a multilayer perceptron and of the residual 1-D
 * convolution over time steps (with optional self-attention per block) over a batch (qd_nn.h).
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

/* ------------------------------------------------------------------ residual 1-D convolution
 * (qd_nn.h, qd_conv). Features are H x N matrices, N = length * B, column b*length + t. */

/* a*b + c with overflow detection (0 on success) */
static int muladd(size_t a, size_t b, size_t c, size_t *out)
{
    size_t p;
    if (qd_mul_overflow(a, b, &p) || p + c < p)
        return 1;
    *out = p + c;
    return 0;
}

static int conv_valid(const qd_conv *m)
{
    return m->length >= 1 && m->length <= QD_CONV_MAX_LENGTH && m->inputs >= 1 && m->inputs <= QD_NN_MAX_WIDTH &&
           m->channels >= 1 && m->channels <= QD_NN_MAX_WIDTH && m->outputs >= 1 &&
           m->outputs <= QD_NN_MAX_WIDTH && m->kernel >= 1 && m->kernel % 2 == 1 &&
           m->kernel <= 2 * m->length - 1 && m->layers >= 0 && m->layers <= QD_CONV_MAX_LAYERS &&
           m->cond >= 0 && m->cond <= QD_NN_MAX_WIDTH && m->heads >= 0 && m->heads <= m->channels &&
           (m->heads == 0 || m->channels % m->heads == 0);
}

/* parameter offsets: input projection, one block's parts, output projection */
typedef struct {
    size_t win, bin, pos, base, block;   /* block: the parameters of one residual block */
    size_t wq, bq, wa, ba;               /* attention, at the start of a block (heads > 0) */
    size_t wc, bc, u, wo, bo;            /* offsets inside a block */
    size_t wout, bout, total;
} conv_layout;

static int conv_layout_of(const qd_conv *m, conv_layout *o)
{
    size_t H = (size_t)m->channels, k = (size_t)m->kernel, kh, blk, t;
    if (!conv_valid(m) || qd_mul_overflow(k, H, &kh))
        return 1;
    o->win = 0;
    o->bin = H * (size_t)m->inputs;           /* all of these < 2^20 * 2^20 */
    o->pos = o->bin + H;
    o->base = o->pos + H * (size_t)m->length;
    o->wq = 0;
    o->bq = 3 * H * H;
    o->wa = o->bq + 3 * H;
    o->ba = o->wa + H * H;
    o->wc = m->heads > 0 ? o->ba + H : 0;     /* 4H(H + 1) < 2^43 */
    if (muladd(H, kh, o->wc, &o->bc))
        return 1;
    o->u = o->bc + H;
    o->wo = o->u + H * (size_t)m->cond;
    o->bo = o->wo + H * H;
    blk = o->bo + H;
    if (blk < o->bc)
        return 1;
    o->block = blk;
    if (muladd(blk, (size_t)m->layers, o->base, &o->wout))
        return 1;
    o->bout = o->wout + (size_t)m->outputs * H;
    t = o->bout + (size_t)m->outputs;
    if (o->bout < o->wout || t < o->bout)
        return 1;
    o->total = t;
    return 0;
}

size_t qd_conv_nparams(const qd_conv *m)
{
    conv_layout o;
    return conv_layout_of(m, &o) ? 0 : o.total;
}

size_t qd_conv_in_rows(const qd_conv *m)
{
    return (size_t)m->inputs * (size_t)m->length + (size_t)m->cond;
}

size_t qd_conv_out_rows(const qd_conv *m)
{
    return (size_t)m->outputs * (size_t)m->length;
}

/* The tape of one block: with attention, [q; k; v] (3H x N), o (H x N), m (H x N) and the
 * probabilities P (heads x G x G per sample: ((b*heads + h)*G + t)*G + s); then Z, act(Z),
 * A_l (H x N each). *stride: its length; 0 on overflow. */
static int conv_block_tape(const qd_conv *m, size_t B, size_t *stride)
{
    size_t N, HN, att = 0, GG;
    if (qd_mul_overflow((size_t)m->length, B, &N) || qd_mul_overflow((size_t)m->channels, N, &HN))
        return 1;
    if (m->heads > 0) {
        GG = (size_t)m->length * (size_t)m->length;   /* < 2^24 */
        if (qd_mul_overflow(GG * (size_t)m->heads, B, &att) || muladd(5, HN, att, &att))
            return 1;
    }
    return muladd(3, HN, att, stride);
}

/* tape: A_0, then one block tape per block, the im2col buffer (kernel*H x N), the packed
 * inputs (inputs x N) and the condition term U c (H x B) */
size_t qd_conv_tape_len(const qd_conv *m, size_t B)
{
    size_t N, HN, n, stride;
    if (!conv_valid(m) || qd_mul_overflow((size_t)m->length, B, &N) ||
        qd_mul_overflow((size_t)m->channels, N, &HN) || conv_block_tape(m, B, &stride))
        return 0;
    if (muladd((size_t)m->layers, stride, HN, &n) || muladd((size_t)m->kernel, HN, n, &n) ||
        muladd((size_t)m->inputs, N, n, &n) || muladd((size_t)m->channels, B, n, &n))
        return 0;
    return n;
}

/* work: im2col and its gradient (kernel*H x N each), dA and dZ (H x N), the per-sample sums
 * of dZ (H x B), the packed inputs (inputs x N); with attention also d[q; k; v] (3H x N),
 * do (H x N) and one row of G scores */
size_t qd_conv_work_len(const qd_conv *m, size_t B)
{
    size_t N, HN, n;
    if (!conv_valid(m) || qd_mul_overflow((size_t)m->length, B, &N) ||
        qd_mul_overflow((size_t)m->channels, N, &HN))
        return 0;
    if (qd_mul_overflow(2 * (size_t)m->kernel + 2, HN, &n) || muladd((size_t)m->channels, B, n, &n) ||
        muladd((size_t)m->inputs, N, n, &n))
        return 0;
    if (m->heads > 0 && (muladd(4, HN, n, &n) || muladd(1, (size_t)m->length, n, &n)))
        return 0;
    return n;
}

/* Xs (inputs x N) = the step features of X (in_rows x B), column b*G + t */
static void conv_pack(const qd_conv *m, const double *X, size_t B, double *Xs)
{
    size_t ci = (size_t)m->inputs, G = (size_t)m->length, ld = qd_conv_in_rows(m);
    for (size_t b = 0; b < B; b++)
        memcpy(Xs + b * G * ci, X + b * ld, G * ci * sizeof *Xs);
}

/* col (kernel*H x N): block j of column (b, t) = A[:, (b, t + j - r)], zero outside the sample */
static void im2col(const qd_conv *m, const double *A, size_t B, double *col)
{
    size_t H = (size_t)m->channels, G = (size_t)m->length, k = (size_t)m->kernel, r = k / 2;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < G; t++) {
            double *c = col + (b * G + t) * k * H;
            for (size_t j = 0; j < k; j++) {
                size_t s = t + j;   /* source step + r */
                if (s < r || s - r >= G)
                    memset(c + j * H, 0, H * sizeof *c);
                else
                    memcpy(c + j * H, A + (b * G + s - r) * H, H * sizeof *c);
            }
        }
}

/* dA += the im2col adjoint of dcol (same layout as im2col's output), in a fixed order */
static void col2im_add(const qd_conv *m, const double *dcol, size_t B, double *dA)
{
    size_t H = (size_t)m->channels, G = (size_t)m->length, k = (size_t)m->kernel, r = k / 2;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < G; t++) {
            const double *c = dcol + (b * G + t) * k * H;
            for (size_t j = 0; j < k; j++) {
                size_t s = t + j;
                if (s < r || s - r >= G)
                    continue;
                double *d = dA + (b * G + s - r) * H;
                for (size_t i = 0; i < H; i++)
                    d[i] += c[j * H + i];
            }
        }
}

/* g (rows) = sum of the N columns of D (rows x N), columns in order */
static void rowsum(const double *D, size_t rows, size_t N, double *g)
{
    for (size_t i = 0; i < rows; i++)
        g[i] = 0.0;
    for (size_t n = 0; n < N; n++)
        for (size_t i = 0; i < rows; i++)
            g[i] += D[n * rows + i];
}

/* the attention of every sample and head: P and o from [q; k; v] (QKV, 3H x N) */
static void attn_forward(const qd_conv *m, const double *QKV, size_t B, double *P, double *O)
{
    size_t H = (size_t)m->channels, G = (size_t)m->length, nh = (size_t)m->heads, d = H / nh, H3 = 3 * H;
    double sc = 1.0 / sqrt((double)d);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < nh; h++)
            for (size_t t = 0; t < G; t++) {
                double *p = P + ((b * nh + h) * G + t) * G, mx = -HUGE_VAL, sum = 0.0;
                const double *q = QKV + (b * G + t) * H3 + h * d;
                for (size_t s = 0; s < G; s++) {
                    const double *k = QKV + (b * G + s) * H3 + H + h * d;
                    double v = 0.0;
                    for (size_t i = 0; i < d; i++)
                        v += q[i] * k[i];
                    p[s] = v * sc;
                    if (p[s] > mx)
                        mx = p[s];
                }
                for (size_t s = 0; s < G; s++) {
                    p[s] = exp(p[s] - mx);
                    sum += p[s];
                }
                double *o = O + (b * G + t) * H + h * d;
                for (size_t i = 0; i < d; i++)
                    o[i] = 0.0;
                for (size_t s = 0; s < G; s++) {
                    p[s] /= sum;
                    const double *v = QKV + (b * G + s) * H3 + 2 * H + h * d;
                    for (size_t i = 0; i < d; i++)
                        o[i] += p[s] * v[i];
                }
            }
}

/* dQKV (3H x N, overwritten) from dO (H x N), the tape's QKV and P; row: G doubles */
static void attn_backward(const qd_conv *m, const double *QKV, const double *P, const double *dO, size_t B,
                          double *dQKV, double *row)
{
    size_t H = (size_t)m->channels, G = (size_t)m->length, nh = (size_t)m->heads, d = H / nh, H3 = 3 * H;
    double sc = 1.0 / sqrt((double)d);
    memset(dQKV, 0, H3 * G * B * sizeof *dQKV);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < nh; h++)
            for (size_t t = 0; t < G; t++) {
                const double *p = P + ((b * nh + h) * G + t) * G, *g = dO + (b * G + t) * H + h * d;
                const double *q = QKV + (b * G + t) * H3 + h * d;
                double *dq = dQKV + (b * G + t) * H3 + h * d, dot = 0.0;
                /* row[s] = dL/dP_ts = g . v_s; dv_s += P_ts g */
                for (size_t s = 0; s < G; s++) {
                    const double *v = QKV + (b * G + s) * H3 + 2 * H + h * d;
                    double *dv = dQKV + (b * G + s) * H3 + 2 * H + h * d, r = 0.0;
                    for (size_t i = 0; i < d; i++) {
                        r += g[i] * v[i];
                        dv[i] += p[s] * g[i];
                    }
                    row[s] = r;
                    dot += p[s] * r;
                }
                /* softmax: dS_ts = P_ts (row[s] - sum_s' P_ts' row[s']); S = sc q_t . k_s */
                for (size_t s = 0; s < G; s++) {
                    double ds = sc * p[s] * (row[s] - dot);
                    const double *k = QKV + (b * G + s) * H3 + H + h * d;
                    double *dk = dQKV + (b * G + s) * H3 + H + h * d;
                    for (size_t i = 0; i < d; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
}

/* a block tape's length (*stride) and the part of it the attention takes (0 without heads) */
static size_t conv_att_len(const qd_conv *m, size_t B, size_t HN, size_t *stride)
{
    conv_block_tape(m, B, stride);
    return m->heads > 0 ? *stride - 3 * HN : 0;
}

void qd_conv_forward(const qd_conv *m, const double *theta, const double *X, size_t B, double *Y,
                     double *tape)
{
    conv_layout o;
    conv_layout_of(m, &o);
    size_t H = (size_t)m->channels, G = (size_t)m->length, N = G * B, HN = H * N, k = (size_t)m->kernel;
    size_t ci = (size_t)m->inputs, co = (size_t)m->outputs, nc = (size_t)m->cond, ld = qd_conv_in_rows(m);
    size_t L = (size_t)m->layers, stride, att = conv_att_len(m, B, HN, &stride);
    double *col = tape + HN + L * stride, *Xs = col + k * HN, *E = Xs + ci * N;
    conv_pack(m, X, B, Xs);
    /* A_0 = W_in Xs + b_in + p_t */
    double *A = tape;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < G; t++) {
            double *a = A + (b * G + t) * H;
            const double *p = theta + o.pos + t * H, *bi = theta + o.bin;
            for (size_t i = 0; i < H; i++)
                a[i] = bi[i] + p[i];
        }
    qd_la_dgemm('N', 'N', H, N, ci, 1.0, theta + o.win, H, Xs, ci, 1.0, A, H);
    for (size_t l = 0; l < L; l++) {
        const double *th = theta + o.base + l * o.block;
        double *blk = tape + HN + l * stride;
        double *Z = blk + att, *Hh = Z + HN, *An = Hh + HN;
        if (m->heads > 0) {
            /* m = A + b_a + W_a attention(W_qkv A + b_qkv): the convolution's input */
            double *QKV = blk, *Ob = QKV + 3 * HN, *Mid = Ob + HN, *P = Mid + HN;
            for (size_t n = 0; n < N; n++)
                memcpy(QKV + n * 3 * H, th + o.bq, 3 * H * sizeof *QKV);
            qd_la_dgemm('N', 'N', 3 * H, N, H, 1.0, th + o.wq, 3 * H, A, H, 1.0, QKV, 3 * H);
            attn_forward(m, QKV, B, P, Ob);
            for (size_t n = 0; n < N; n++)
                for (size_t i = 0; i < H; i++)
                    Mid[n * H + i] = A[n * H + i] + th[o.ba + i];
            qd_la_dgemm('N', 'N', H, N, H, 1.0, th + o.wa, H, Ob, H, 1.0, Mid, H);
            A = Mid;
        }
        /* Z = b_c + U c (per sample) + C im2col(A) */
        if (nc > 0)
            qd_la_dgemm('N', 'N', H, B, nc, 1.0, th + o.u, H, X + ci * G, ld, 0.0, E, H);
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t < G; t++) {
                double *z = Z + (b * G + t) * H;
                for (size_t i = 0; i < H; i++)
                    z[i] = th[o.bc + i] + (nc > 0 ? E[b * H + i] : 0.0);
            }
        im2col(m, A, B, col);
        qd_la_dgemm('N', 'N', H, N, k * H, 1.0, th + o.wc, H, col, k * H, 1.0, Z, H);
        activate(m->act, Z, Hh, HN);
        /* A_l = A_{l-1} + b_o + W_o act(Z) */
        for (size_t n = 0; n < N; n++)
            for (size_t i = 0; i < H; i++)
                An[n * H + i] = A[n * H + i] + th[o.bo + i];
        qd_la_dgemm('N', 'N', H, N, H, 1.0, th + o.wo, H, Hh, H, 1.0, An, H);
        A = An;
    }
    /* Y = W_out A_L + b_out: Y (outputs*G x B) is the outputs x N matrix of columns (b, t) */
    for (size_t n = 0; n < N; n++)
        memcpy(Y + n * co, theta + o.bout, co * sizeof *Y);
    qd_la_dgemm('N', 'N', co, N, H, 1.0, theta + o.wout, co, A, H, 1.0, Y, co);
}

void qd_conv_backward(const qd_conv *m, const double *theta, const double *X, size_t B,
                      const double *tape, const double *Gy, double *gtheta, double *gX, double *work)
{
    conv_layout o;
    conv_layout_of(m, &o);
    size_t H = (size_t)m->channels, G = (size_t)m->length, N = G * B, HN = H * N, k = (size_t)m->kernel;
    size_t ci = (size_t)m->inputs, co = (size_t)m->outputs, nc = (size_t)m->cond, ld = qd_conv_in_rows(m);
    size_t L = (size_t)m->layers, stride, att = conv_att_len(m, B, HN, &stride);
    double *col = work, *dcol = col + k * HN, *dA = dcol + k * HN, *dZ = dA + HN, *S = dZ + HN, *Xs = S + H * B;
    double *dQKV = Xs + ci * N, *dO = dQKV + 3 * HN, *row = dO + HN;   /* heads > 0 only */
    const double *AL = tape + HN + L * stride - HN;   /* A_L (A_0 when L = 0) */
    /* output projection */
    qd_la_dgemm('N', 'T', co, H, N, 1.0, Gy, co, AL, H, 0.0, gtheta + o.wout, co);
    rowsum(Gy, co, N, gtheta + o.bout);
    qd_la_dgemm('T', 'N', H, N, co, 1.0, theta + o.wout, co, Gy, co, 0.0, dA, H);
    if (gX && nc > 0)
        for (size_t b = 0; b < B; b++)
            memset(gX + b * ld + ci * G, 0, nc * sizeof *gX);
    for (size_t l = L; l-- > 0;) {
        const double *th = theta + o.base + l * o.block;
        double *gth = gtheta + o.base + l * o.block;
        const double *blk = tape + HN + l * stride, *Aprev = blk - HN;
        const double *Z = blk + att, *Hh = Z + HN;
        const double *Ap = m->heads > 0 ? blk + 4 * HN : Aprev;   /* the convolution's input */
        /* residual branch: A_l = Ap + b_o + W_o act(Z) */
        qd_la_dgemm('N', 'T', H, H, N, 1.0, dA, H, Hh, H, 0.0, gth + o.wo, H);
        rowsum(dA, H, N, gth + o.bo);
        qd_la_dgemm('T', 'N', H, N, H, 1.0, th + o.wo, H, dA, H, 0.0, dZ, H);
        act_backward(m->act, Z, Hh, dZ, HN);
        /* Z = b_c + U c + C im2col(Ap) */
        rowsum(dZ, H, N, gth + o.bc);
        if (nc > 0) {
            for (size_t b = 0; b < B; b++) {
                double *s = S + b * H;
                for (size_t i = 0; i < H; i++)
                    s[i] = 0.0;
                for (size_t t = 0; t < G; t++)
                    for (size_t i = 0; i < H; i++)
                        s[i] += dZ[(b * G + t) * H + i];
            }
            qd_la_dgemm('N', 'T', H, nc, B, 1.0, S, H, X + ci * G, ld, 0.0, gth + o.u, H);
            if (gX)
                qd_la_dgemm('T', 'N', nc, B, H, 1.0, th + o.u, H, S, H, 1.0, gX + ci * G, ld);
        }
        im2col(m, Ap, B, col);
        qd_la_dgemm('N', 'T', H, k * H, N, 1.0, dZ, H, col, k * H, 0.0, gth + o.wc, H);
        qd_la_dgemm('T', 'N', k * H, N, H, 1.0, th + o.wc, H, dZ, H, 0.0, dcol, k * H);
        col2im_add(m, dcol, B, dA);   /* dA is now dL/dAp */
        if (m->heads > 0) {
            /* Ap = A_{l-1} + b_a + W_a o,  [q; k; v] = W_qkv A_{l-1} + b_qkv */
            const double *QKV = blk, *Ob = QKV + 3 * HN, *P = Ob + 2 * HN;
            qd_la_dgemm('N', 'T', H, H, N, 1.0, dA, H, Ob, H, 0.0, gth + o.wa, H);
            rowsum(dA, H, N, gth + o.ba);
            qd_la_dgemm('T', 'N', H, N, H, 1.0, th + o.wa, H, dA, H, 0.0, dO, H);
            attn_backward(m, QKV, P, dO, B, dQKV, row);
            qd_la_dgemm('N', 'T', 3 * H, H, N, 1.0, dQKV, 3 * H, Aprev, H, 0.0, gth + o.wq, 3 * H);
            rowsum(dQKV, 3 * H, N, gth + o.bq);
            qd_la_dgemm('T', 'N', H, N, 3 * H, 1.0, th + o.wq, 3 * H, dQKV, 3 * H, 1.0, dA, H);
        }
        /* dA is now dL/dA_{l-1} */
    }
    /* input projection: A_0 = W_in Xs + b_in + p_t */
    rowsum(dA, H, N, gtheta + o.bin);
    double *gp = gtheta + o.pos;
    for (size_t i = 0; i < H * G; i++)
        gp[i] = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < G; t++)
            for (size_t i = 0; i < H; i++)
                gp[t * H + i] += dA[(b * G + t) * H + i];
    conv_pack(m, X, B, Xs);
    qd_la_dgemm('N', 'T', H, ci, N, 1.0, dA, H, Xs, ci, 0.0, gtheta + o.win, H);
    if (gX) {
        /* dXs = W_in^T dA (into the packed buffer), then into the step rows of gX */
        qd_la_dgemm('T', 'N', ci, N, H, 1.0, theta + o.win, H, dA, H, 0.0, Xs, ci);
        for (size_t b = 0; b < B; b++)
            memcpy(gX + b * ld, Xs + b * G * ci, G * ci * sizeof *gX);
    }
}
