/* synth.c — genQC token circuits (qd_synth.h): decoding with reasons, batched simulation for
 * evaluation (Schmidt-rank vectors, unitaries, infidelities) and canonical keys.
 *
 * The batch runs one circuit per loop iteration, on a small state or unitary buffer of its
 * own (per thread), so a circuit's result is the same bits whatever the thread count. */
#include "qd_synth.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>

/* genQC's tokenizer: which qubits of a gate are controls (Qiskit's num_ctrl_qubits) */
static const struct { const char *name; int nctrl, ntgt; } roles[] = {
    {"x", 0, 1}, {"y", 0, 1}, {"z", 0, 1}, {"h", 0, 1}, {"s", 0, 1}, {"sdg", 0, 1},
    {"t", 0, 1}, {"tdg", 0, 1}, {"sx", 0, 1}, {"rx", 0, 1}, {"ry", 0, 1}, {"rz", 0, 1},
    {"p", 0, 1}, {"u", 0, 1}, {"cx", 1, 1}, {"cy", 1, 1}, {"cz", 1, 1}, {"ch", 1, 1},
    {"crx", 1, 1}, {"cry", 1, 1}, {"crz", 1, 1}, {"cp", 1, 1}, {"swap", 0, 2},
    {"rxx", 0, 2}, {"ryy", 0, 2}, {"rzz", 0, 2}, {"ccx", 2, 1}, {"cswap", 1, 2},
};

qd_status qd_tok_role(const char *name, qd_tok_gate *out, qd_err *e)
{
    const qd_gate_info *g = qd_gate_lookup(name);
    for (size_t i = 0; g && i < sizeof roles / sizeof roles[0]; i++) {
        if (strcmp(roles[i].name, name) == 0 && roles[i].nctrl + roles[i].ntgt == g->nqubits) {
            out->g = g;
            out->nctrl = roles[i].nctrl;
            out->ntgt = roles[i].ntgt;
            return QD_OK;
        }
    }
    return qd_fail(e, QD_EARG, "gate '%s' has no genQC token roles (known: x y z h s sdg t tdg sx "
                   "rx ry rz p u cx cy cz ch crx cry crz cp swap rxx ryy rzz ccx cswap)", name);
}

/* one column: returns 1 gate (op filled), 0 empty, 2 padding, -1 malformed (why set) */
static int decode_column(const double *col, int n, int t, const qd_tok_gate *voc, int V,
                         qd_tok_op *op, char *why, size_t wlen)
{
    int g = 0, pad = 0, nc = 0, nt = 0, ctrl[QD_TOK_MAXN], tgt[QD_TOK_MAXN];
    for (int q = 0; q < n; q++) {
        double x = col[q];
        if (!isfinite(x) || x != floor(x) || fabs(x) > 1e6) {
            snprintf(why, wlen, "column %d, qubit %d: token %.17g is not an integer", t + 1, q, x);
            return -1;
        }
        long v = (long)x;
        if (v == 0)
            continue;
        if (v == V + 1) {
            pad++;
            continue;
        }
        if (v > V || v < -V) {
            snprintf(why, wlen, "column %d, qubit %d: unknown token %ld (vocabulary 1 ... %d, "
                     "padding %d)", t + 1, q, v, V, V + 1);
            return -1;
        }
        long a = v < 0 ? -v : v;
        if (g && a != g) {
            snprintf(why, wlen, "column %d: two gates in one column (tokens of %d and %ld)",
                     t + 1, g, a);
            return -1;
        }
        g = (int)a;
        if (v < 0)
            ctrl[nc++] = q;
        else
            tgt[nt++] = q;
    }
    if (pad) {
        if (pad != n) {
            snprintf(why, wlen, "column %d: padding token mixed with other tokens", t + 1);
            return -1;
        }
        return 2;
    }
    if (!g)
        return 0;
    const qd_tok_gate *r = &voc[g - 1];
    if (nt == 0) {
        snprintf(why, wlen, "column %d: control without target (gate %s)", t + 1, r->g->name);
        return -1;
    }
    if (nc != r->nctrl || nt != r->ntgt) {
        snprintf(why, wlen, "column %d: gate %s needs %d control%s and %d target%s, got %d and %d",
                 t + 1, r->g->name, r->nctrl, r->nctrl == 1 ? "" : "s", r->ntgt,
                 r->ntgt == 1 ? "" : "s", nc, nt);
        return -1;
    }
    op->v = g;
    op->t = t;
    op->nq = nc + nt;
    for (int i = 0; i < nc; i++)
        op->q[i] = ctrl[i];
    for (int i = 0; i < nt; i++)
        op->q[nc + i] = tgt[i];
    return 1;
}

int qd_tok_decode(const double *tok, int n, int G, const qd_tok_gate *voc, int V,
                  qd_tok_op *ops, char *why, size_t wlen)
{
    int k = 0, padded = 0;
    for (int t = 0; t < G; t++) {
        int r = decode_column(tok + (size_t)n * t, n, t, voc, V, &ops[k], why, wlen);
        if (r < 0)
            return -1;
        if (padded && r != 2) {
            snprintf(why, wlen, "column %d: %s after the padding", t + 1,
                     r == 1 ? "a gate" : "an empty column");
            return -1;
        }
        if (r == 2)
            padded = 1;
        else if (r == 1)
            k++;
    }
    return k;
}

/* the angles of op (p: its gate's parameters) from the params tensor column of circuit b */
static void op_angles(const qd_tok_batch *b, size_t idx, const qd_tok_op *op, double *p)
{
    const qd_gate_info *g = b->voc[op->v - 1].g;
    for (int k = 0; k < g->nparams; k++) {
        size_t at = idx * (size_t)b->P * b->G + (size_t)b->P * op->t + k;
        double x = k < b->P ? b->params[at] : -1.0;
        p[k] = (x + 1.0) * 2.0 * M_PI;
    }
}

/* runs the decoded ops on `count` vectors of n qubits */
static void run_ops(const qd_tok_batch *b, size_t idx, const qd_tok_op *ops, int nops, qd_c *a,
                    size_t count)
{
    for (int k = 0; k < nops; k++) {
        double p[3] = {0, 0, 0};
        op_angles(b, idx, &ops[k], p);
        qd_apply_gate(a, b->n, count, b->voc[ops[k].v - 1].g, ops[k].q, p, 0);
    }
}

void qd_srv_state(const qd_c *a, int n, double tol, unsigned char *srv, double *min_eig)
{
    size_t d = (size_t)1 << n;
    for (int q = 0; q < n; q++) {
        size_t bit = (size_t)1 << (n - 1 - q);   /* qubit 0 is the most significant bit */
        double p0 = 0, p1 = 0;
        qd_c c = 0;
        for (size_t i = 0; i < d; i++) {
            if (i & bit)
                continue;
            qd_c x = a[i], y = a[i | bit];
            p0 += creal(x) * creal(x) + cimag(x) * cimag(x);
            p1 += creal(y) * creal(y) + cimag(y) * cimag(y);
            c += x * conj(y);
        }
        /* eigenvalues of [[p0, c], [c*, p1]]: (tr -+ sqrt((p0 - p1)^2 + 4|c|^2)) / 2 */
        double tr = p0 + p1, disc = sqrt((p0 - p1) * (p0 - p1) + 4.0 * (creal(c) * creal(c) +
                                                                        cimag(c) * cimag(c)));
        double lmin = 0.5 * (tr - disc);
        if (lmin < 0)
            lmin = 0;
        srv[q] = lmin > tol ? 2 : 1;
        if (min_eig)
            min_eig[q] = lmin;
    }
}

double qd_unitary_infidelity(const qd_c *U, const qd_c *V, size_t d)
{
    qd_c tr = 0;
    for (size_t i = 0; i < d * d; i++)
        tr += conj(V[i]) * U[i];
    tr /= (double)d;
    double f = creal(tr) * creal(tr) + cimag(tr) * cimag(tr);
    return 1.0 - f;
}

double qd_unitary_distance(const qd_c *U, const qd_c *V, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d * d; i++) {
        qd_c z = U[i] - V[i];
        s += creal(z) * creal(z) + cimag(z) * cimag(z);
    }
    return 0.5 * s;
}

/* one circuit of the batch: decode, then the outputs asked for; buf holds d*d amplitudes
 * (d when only SRVs are wanted), ops G entries */
static void eval_one(const qd_tok_batch *b, size_t idx, qd_tok_out *o, qd_c *buf, qd_tok_op *ops,
                     int want_u)
{
    char why[160];
    int n = b->n;
    size_t d = (size_t)1 << n;
    int nops = qd_tok_decode(b->tok + idx * (size_t)n * b->G, n, b->G, b->voc, b->V, ops, why,
                             sizeof why);
    if (o->valid)
        o->valid[idx] = nops >= 0;
    if (o->ngates)
        o->ngates[idx] = nops >= 0 ? nops : 0;
    if (nops < 0) {
        if (o->srv)
            memset(o->srv + idx * (size_t)n, 0, (size_t)n);
        if (o->infid)
            o->infid[idx] = NAN;
        if (o->dist)
            o->dist[idx] = NAN;
        if (o->U)
            for (size_t i = 0; i < d * d; i++)
                o->U[idx * d * d + i] = NAN;
        return;
    }
    if (o->srv) {
        memset(buf, 0, sizeof(qd_c) * d);
        buf[0] = 1;
        run_ops(b, idx, ops, nops, buf, 1);
        qd_srv_state(buf, n, o->tol, o->srv + idx * (size_t)n, NULL);
    }
    if (want_u) {
        memset(buf, 0, sizeof(qd_c) * d * d);
        for (size_t j = 0; j < d; j++)
            buf[j * d + j] = 1;
        run_ops(b, idx, ops, nops, buf, d);
        const qd_c *V = o->targets ? o->targets + (o->ntargets == b->B ? idx : 0) * d * d : NULL;
        if (o->infid)
            o->infid[idx] = qd_unitary_infidelity(buf, V, d);
        if (o->dist)
            o->dist[idx] = qd_unitary_distance(buf, V, d);
        if (o->U)
            memcpy(o->U + idx * d * d, buf, sizeof(qd_c) * d * d);
    }
}

qd_status qd_tok_eval(const qd_tok_batch *b, qd_tok_out *o, qd_err *e)
{
    if (b->n < 1 || b->n > QD_TOK_MAXN || b->G < 1 || b->G > QD_TOK_MAXG || b->V < 1 ||
        b->V > QD_TOK_MAXV || b->P < 0 || (b->P > 0 && !b->params))
        return qd_fail(e, QD_EARG, "qd_tok_eval: bad batch shape");
    int want_u = o->infid || o->dist || o->U;
    if (want_u && b->n > QD_TOK_MAXU)
        return qd_fail(e, QD_EARG, "unitaries need at most %d qubits, got %d", QD_TOK_MAXU, b->n);
    if ((o->infid || o->dist) && !o->targets)
        return qd_fail(e, QD_EARG, "qd_tok_eval: infidelity without a target");
    size_t d = (size_t)1 << b->n, per = want_u ? d * d : d;
    int nt = qd_get_threads();
    if ((size_t)nt > b->B)
        nt = b->B > 0 ? (int)b->B : 1;
    size_t ops_bytes = sizeof(qd_tok_op) * (size_t)b->G;
    size_t buf_bytes = sizeof(qd_c) * per;
    char *scratch = qd_malloc((ops_bytes + buf_bytes + 64) * (size_t)nt);
    if (!scratch)
        return qd_fail(e, QD_ENOMEM, "not enough memory for the evaluation scratch");
    size_t stride = (buf_bytes + ops_bytes + 63) / 64 * 64;
    volatile int stop = 0;
    if (nt > 1) {
        #pragma omp parallel for schedule(dynamic, 64) num_threads(nt)
        for (size_t i = 0; i < b->B; i++) {
            if (stop || qd_interrupt) {
                stop = 1;
                continue;
            }
            char *s = scratch + stride * (size_t)qd_thread_num();
            eval_one(b, i, o, (qd_c *)s, (qd_tok_op *)(s + buf_bytes), want_u);
        }
    } else {
        for (size_t i = 0; i < b->B && !stop; i++) {
            if ((i & 1023) == 0 && qd_interrupt)
                stop = 1;
            else
                eval_one(b, i, o, (qd_c *)scratch, (qd_tok_op *)(scratch + buf_bytes), want_u);
        }
    }
    qd_free(scratch);
    if (stop)
        return qd_fail(e, QD_EINTR, "interrupted");
    return QD_OK;
}

size_t qd_tok_key(const qd_tok_batch *b, size_t idx, qd_tok_op *ops, unsigned char *key,
                  size_t cap)
{
    char why[160];
    int nops = qd_tok_decode(b->tok + idx * (size_t)b->n * b->G, b->n, b->G, b->voc, b->V, ops,
                             why, sizeof why);
    if (nops < 0)
        return 0;
    size_t len = 0;
    key[len++] = 'k';   /* a valid empty circuit has a non-empty key */
    for (int k = 0; k < nops; k++) {
        if (len + 5 + 3 * 8 > cap)
            return len;
        key[len++] = (unsigned char)ops[k].v;
        for (int i = 0; i < ops[k].nq; i++)
            key[len++] = (unsigned char)ops[k].q[i];
        const qd_gate_info *g = b->voc[ops[k].v - 1].g;
        double p[3];
        op_angles(b, idx, &ops[k], p);
        for (int j = 0; j < g->nparams; j++) {
            double turns = fmod(p[j] / (4.0 * M_PI), 1.0);
            if (turns < 0)
                turns += 1.0;
            int64_t r = (int64_t)llround(turns * 1e9) % 1000000000;
            memcpy(key + len, &r, 8);
            len += 8;
        }
    }
    return len;
}

size_t qd_unitary_key(const qd_c *U, size_t d, unsigned char *key)
{
    qd_c ph = 1;
    for (size_t i = 0; i < d * d; i++) {
        double m = cabs(U[i]);
        if (m > 1e-6) {
            ph = conj(U[i]) / m;
            break;
        }
    }
    for (size_t i = 0; i < d * d; i++) {
        qd_c z = U[i] * ph;
        int32_t re = (int32_t)llround(creal(z) * 1e7), im = (int32_t)llround(cimag(z) * 1e7);
        memcpy(key + 8 * i, &re, 4);
        memcpy(key + 8 * i + 4, &im, 4);
    }
    return 8 * d * d;
}

static int uniform_int(qd_rng *r, int m)
{
    int k = (int)(qd_rng_uniform(r) * m);
    return k < m ? k : m - 1;
}

void qd_tok_random(const qd_tok_gate *voc, int V, int n, int G, size_t B, const qd_rng *base,
                   int gmin, int gmax, int pad, double *tok, int P, double *params)
{
    for (size_t b = 0; b < B; b++) {
        qd_rng r = qd_rng_sub(base, b);
        double *T = tok + b * (size_t)n * G;
        memset(T, 0, sizeof(double) * (size_t)n * G);
        if (P > 0)
            memset(params + b * (size_t)P * G, 0, sizeof(double) * (size_t)P * G);
        int ng = gmin + uniform_int(&r, gmax - gmin + 1);
        for (int t = 0; t < ng; t++) {
            int v = 1 + uniform_int(&r, V);
            const qd_tok_gate *g = &voc[v - 1];
            int pool[QD_TOK_MAXN];
            for (int q = 0; q < n; q++)
                pool[q] = q;
            /* distinct qubits drawn without replacement: controls first, then targets */
            for (int i = 0; i < g->nctrl + g->ntgt; i++) {
                int j = i + uniform_int(&r, n - i), q = pool[j];
                pool[j] = pool[i];
                pool[i] = q;
                T[(size_t)n * t + q] = i < g->nctrl ? -v : v;
            }
            for (int k = 0; k < g->g->nparams && k < P; k++)
                params[b * (size_t)P * G + (size_t)P * t + k] = qd_rng_uniform(&r) * 2.0 - 1.0;
        }
        for (int t = ng; pad && t < G; t++)
            for (int q = 0; q < n; q++)
                T[(size_t)n * t + q] = V + 1;
    }
}

/* ---------------------------------------------------------------- token embeddings, noising */

qd_status qd_tok_embed(const double *tok, size_t cells, size_t B, const double *emb, int de, int K,
                       int vmin, double *out, qd_err *e)
{
    for (size_t i = 0; i < cells * B; i++) {
        double x = tok[i];
        if (!(x == floor(x)) || x < vmin || x > vmin + K - 1)
            return qd_fail(e, QD_EARG, "token %g at entry %zu of column %zu is outside %d ... %d",
                           x,
                           i % cells + 1, i / cells + 1, vmin, vmin + K - 1);
        memcpy(out + i * (size_t)de, emb + (size_t)((int)x - vmin) * (size_t)de,
               sizeof(double) * (size_t)de);
    }
    return QD_OK;
}

void qd_tok_nearest(const double *x, size_t cells, size_t B, const double *emb, int de, int K,
                    int vmin, double *tok)
{
    for (size_t i = 0; i < cells * B; i++) {
        const double *v = x + i * (size_t)de;
        double best = INFINITY;
        int arg = 0;
        for (int k = 0; k < K; k++) {
            double s = 0;
            for (int j = 0; j < de; j++) {
                double z = v[j] - emb[(size_t)k * de + j];
                s += z * z;
            }
            if (s < best) {
                best = s;
                arg = k;
            }
        }
        tok[i] = vmin + arg;
    }
}

void qd_diffuse(const double *x0, size_t D, size_t B, const double *a, const double *s,
                const qd_rng *base, double *xt, double *eps)
{
    for (size_t b = 0; b < B; b++) {
        qd_rng r = qd_rng_sub(base, b);
        for (size_t i = 0; i < D; i++) {
            double z = qd_rng_normal(&r);
            eps[b * D + i] = z;
            xt[b * D + i] = a[b] * x0[b * D + i] + s[b] * z;
        }
    }
}
