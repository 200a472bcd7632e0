/* qd_synth.h — circuits as genQC token tensors (arXiv 2311.02041) and their evaluation:
 * decoding with a reason for every malformed tensor, batched simulation of many small token
 * circuits (Schmidt-rank vectors of the output from |0...0>, unitaries, infidelities against
 * targets) and canonical keys for uniqueness and novelty (synth.c).
 *
 * Token tensor of n qubits and G time steps (column-major n x G doubles, row q = qubit q):
 * at (q, t) +v if q is a target of the gate with vocabulary index v (1-based), -v if a
 * control, 0 empty, V + 1 (the padding token) in whole columns after the circuit's end.
 * One gate per column. Parameters: a P x G tensor, angle = (x + 1) * 2 pi (genQC maps an
 * angle mod 4 pi linearly to [-1, 1)). Controls and targets follow Qiskit's convention for
 * each gate (cx: 1 control, 1 target; ccx: 2, 1; swap: 0, 2; cp: 1, 1); qd applies a gate
 * with its controls first, then its targets, each set in ascending qubit order. */
#ifndef QD_SYNTH_H
#define QD_SYNTH_H
#include "qd.h"

#define QD_TOK_MAXV 64      /* vocabulary size limit */
#define QD_TOK_MAXN 16      /* qubits of a token circuit (simulation: 2^n amplitudes) */
#define QD_TOK_MAXG 4096    /* time steps */
#define QD_TOK_MAXU 10      /* qubits for unitaries */

typedef struct {
    const qd_gate_info *g;
    int nctrl, ntgt;        /* controls (token -v) and targets (token +v) */
} qd_tok_gate;

typedef struct {
    int v;                  /* vocabulary index, 1-based */
    int t;                  /* column, 0-based */
    int nq;                 /* qubits: controls ascending, then targets ascending */
    int q[4];
} qd_tok_op;

/* The token roles of gate `name` (a gate of qd's registry that genQC's tokenizer knows). */
qd_status qd_tok_role(const char *name, qd_tok_gate *out, qd_err *e);

/* Decodes one n x G token tensor (column-major) into ops (capacity G). Returns the number
 * of ops (>= 0), or -1 with the reason in why ("column 3: control without target", ...). */
int qd_tok_decode(const double *tok, int n, int G, const qd_tok_gate *voc, int V,
                  qd_tok_op *ops, char *why, size_t wlen);

/* A batch of B token circuits: column b of tok (n*G rows) is circuit b's n x G tensor;
 * params (P*G rows, column b) or NULL when P == 0. */
typedef struct {
    int n, G, V, P;
    const qd_tok_gate *voc;
    const double *tok;
    const double *params;
    size_t B;
} qd_tok_batch;

/* What to compute per circuit (NULL outputs are skipped):
 *   valid[b]   1 if the tensor decodes, else 0 (the other outputs are 0 / NaN then)
 *   ngates[b]  gates
 *   srv[n*b+q] Schmidt rank (1 or 2) of qubit q against the rest in the output from |0...0>,
 *              rank 2 when the reduced state's smaller eigenvalue exceeds tol
 *   infid[b]   1 - |Tr(V^dagger U)/d|^2 against target V (targets: nV matrices d x d,
 *              column-major; circuit b uses target b when nV == B, else target 0)
 *   dist[b]    1/2 ||U - V||_F^2
 *   U          d*d x B column-major unitaries (column j of U_b = the circuit on |j>)
 * Threads over circuits; every result is independent of the thread count. */
typedef struct {
    unsigned char *valid;
    int *ngates;
    unsigned char *srv;
    double tol;
    const qd_c *targets;
    size_t ntargets;
    double *infid, *dist;
    qd_c *U;
} qd_tok_out;

qd_status qd_tok_eval(const qd_tok_batch *b, qd_tok_out *o, qd_err *e);

/* Canonical key of circuit idx (bytes written to key, at most cap, QD_TOK_KEYCAP(G) is
 * enough; returns the length, or 0 if the tensor does not decode): the decoded op list
 * (empty columns and padding dropped) as bytes, plus each parametrised gate's angles mod
 * 4 pi rounded to 1e-9 of the period. ops: scratch of G entries. */
#define QD_TOK_KEYCAP(G) (1 + (size_t)(G) * 29)
size_t qd_tok_key(const qd_tok_batch *b, size_t idx, qd_tok_op *ops, unsigned char *key,
                  size_t cap);

/* Key of a d x d unitary up to global phase: U scaled by the phase that makes its first
 * entry with |u| > 1e-6 (column-major order) real positive, entries rounded to 1e-7, as
 * 2*d*d int32 (key capacity 8*d*d bytes). Returns the length. */
size_t qd_unitary_key(const qd_c *U, size_t d, unsigned char *key);

/* Schmidt rank of each qubit of a pure state of n qubits against the rest (srv[q], 1 or 2;
 * 2 when the reduced state's smaller eigenvalue exceeds tol); min_eig[q] (may be NULL)
 * that eigenvalue. */
void qd_srv_state(const qd_c *a, int n, double tol, unsigned char *srv, double *min_eig);

/* 1 - |Tr(V^dagger U)/d|^2 and 1/2 ||U - V||_F^2 of two d x d matrices */
double qd_unitary_infidelity(const qd_c *U, const qd_c *V, size_t d);
double qd_unitary_distance(const qd_c *U, const qd_c *V, size_t d);

/* B random token circuits in tok (n*G x B) and params (P*G x B, P may be 0), genQC's random
 * circuits: circuit b from substream b of base (independent of B and threads); gate count
 * uniform in gmin ... gmax (<= G), each gate uniform over the vocabulary on distinct qubits
 * drawn uniformly (controls first), angles uniform in [0, 4 pi) (tokens uniform in [-1, 1));
 * pad != 0: columns after the last gate hold the padding token V + 1. Needs n >= the largest
 * gate of the vocabulary (the caller checks). */
void qd_tok_random(const qd_tok_gate *voc, int V, int n, int G, size_t B, const qd_rng *base,
                   int gmin, int gmax, int pad, double *tok, int P, double *params);

/* Embeddings of token tensors for a continuous diffusion model: cell i of column b (tok is
 * cells x B) becomes column (v - vmin) of emb (de x K) in out (cells*de x B); a token
 * outside vmin ... vmin + K - 1 is QD_EARG. qd_tok_nearest: the inverse, each de-block of x
 * decoded to the token of the nearest embedding (squared distance; ties to the lower). */
qd_status qd_tok_embed(const double *tok, size_t cells, size_t B, const double *emb, int de, int K,
                       int vmin, double *out, qd_err *e);
void qd_tok_nearest(const double *x, size_t cells, size_t B, const double *emb, int de, int K,
                    int vmin, double *tok);
/* DDPM forward noising of B columns of D entries: xt = a[b] x0 + s[b] eps, eps ~ N(0, 1) from
 * substream b of base (independent of B's split into calls and of threads) */
void qd_diffuse(const double *x0, size_t D, size_t B, const double *a, const double *s,
                const qd_rng *base, double *xt, double *eps);

#endif
