/* qd_circuit.h — parameterised circuits (circuit.c) and their reverse-mode gradients
 * (adjoint.c). Core only: no Lua.
 *
 * A circuit is an op list on n qubits. Ops: a gate of the core's gate table (gates.c) whose
 * angles are each either fixed or taken from a parameter slot, an arbitrary k-qubit matrix,
 * a projective measurement of some qubits (optionally discarding them from the output), and
 * a reset of some qubits to |0>.
 *
 * Parameters: theta[0..nslots) (0-based here; 1-based in Lua). Angle i of a gate op is
 *     angle_i = offset[i] + scale[i] * theta[slot[i]]     (slot[i] >= 0)
 *     angle_i = offset[i]                                  (slot[i] == -1: fixed)
 * A slot may be referenced by any number of ops (shared parameters); slots may carry a name.
 *
 * Measurement semantics
 *  - pure states / ensembles: member j samples its outcome of each measurement op in order
 *    from its own generator qd_rng_sub(base, j) (one uniform per op, inverse CDF as
 *    qd_measure), or uses given outcomes; the state is projected and renormalised,
 *    psi' = P_m psi / sqrt(p), p = ||P_m psi||^2. A reset is a measurement followed by X on
 *    the qubits that came out 1. A discarded qubit is in a known basis state after its
 *    measurement, so dropping it from the output is exact.
 *  - density matrices: a measurement is non-selective, rho -> sum_m P_m rho P_m (the average
 *    over outcomes), a reset is the reset channel, and discarding is the partial trace.
 *    So a circuit ending in measure(aux, discard) computes Tr_aux[U rho U^dagger] (QGDM).
 *
 * Channels (noise): a CHANNEL op holds a Kraus list. On density matrices it is applied
 * exactly, rho -> sum_i K_i rho K_i^dagger, and gradients pass through it (the adjoint map
 * sum_i K_i^dagger X K_i); on pure states and ensembles it is a quantum trajectory: member j
 * takes operator i with probability ||K_i psi||^2 from its own substream (of a per-op
 * substream of the run's measurement generator) and is renormalised — no gradient there.
 *
 * Gradient convention (shared with the losses): a loss L of the output supplies
 * G = dL/d(conj psi) (Wirtinger), a buffer shaped like the output, so that
 *     dL = 2 Re sum_i conj(G_i) dpsi_i,      dL/dtheta = 2 Re <G| dpsi/dtheta>.
 * For a density matrix output, G is a 2^n x 2^n buffer with dL = 2 Re sum conj(G_ij) drho_ij
 * (for L = Tr(O rho), G = O/2; only the Hermitian part of G matters).
 */
#ifndef QD_CIRCUIT_H
#define QD_CIRCUIT_H
#include "qd.h"

#define QD_CIRC_MAXK 12      /* qubits of an arbitrary-matrix op */
#define QD_CIRC_MAXOPS ((size_t)1 << 24)
#define QD_CIRC_MAXSLOTS (1 << 24)

typedef enum { QD_OP_GATE, QD_OP_MATRIX, QD_OP_MEASURE, QD_OP_RESET, QD_OP_CHANNEL } qd_op_kind;

typedef struct {
    qd_op_kind kind;
    const qd_gate_info *g;   /* GATE */
    int k;                   /* number of qubits */
    int qs[QD_CIRC_MAXK];    /* qs[0] = most significant bit of the op's local index */
    int slot[3];             /* GATE: slot of angle i, -1 = fixed */
    double scale[3];
    double offset[3];
    qd_c *m;                 /* MATRIX: 2^k x 2^k column-major, owned (qd_malloc) */
    qd_c *mdag;              /* MATRIX: its conjugate transpose (for inverse/adjoint) */
    char *label;             /* MATRIX: optional name for draw/QASM (owned), may be NULL */
    int discard;             /* MEASURE: drop the measured qubits from the output */
    size_t nkraus;           /* CHANNEL: m holds its nkraus Kraus operators (2^k x 2^k each),
                                mdag their adjoints; label its description */
    int *cond;               /* NULL, or a condition (OpenQASM `if` on measured bits): ncond
                                pairs (mi, bit) then ncond values, see qd_circuit_set_cond */
    int ncond, cond_neg;
} qd_op;

typedef struct {
    int n;                   /* qubits the circuit acts on */
    size_t nops, cap;
    qd_op *ops;
    int nslots;
    char **names;            /* names[i]: slot i's name or NULL; array of names_cap */
    int names_cap;
    uint64_t discarded;      /* bit q: qubit q is discarded by a measure op */
    int nmeas;               /* number of MEASURE + RESET ops */
    int nchan;               /* number of CHANNEL ops */
    int ncondops;            /* number of conditional ops */
} qd_circuit;

/* Perturb one angle of one op (parameter-shift rules): angle `par` of op `op` += delta. */
typedef struct {
    size_t op;
    int par;
    double delta;
} qd_shift;

/* ---------------------------------------------------------------- building (circuit.c) */
void qd_circuit_init(qd_circuit *c, int n);
void qd_circuit_free(qd_circuit *c);   /* idempotent; leaves an empty circuit */
qd_status qd_circuit_copy(qd_circuit *dst, const qd_circuit *src, qd_err *e);
/* Slot index for name (created at the end if absent and create != 0; -1 if absent). */
int qd_circuit_slot(qd_circuit *c, const char *name, int create, qd_err *e);
/* Make sure slots 0..count-1 exist (new ones unnamed). */
qd_status qd_circuit_ensure_slots(qd_circuit *c, int count, qd_err *e);
/* Gate g on qs; slot/scale/offset: g->nparams entries each (may be NULL when nparams = 0). */
qd_status qd_circuit_add_gate(qd_circuit *c, const qd_gate_info *g, const int *qs,
                              const int *slot, const double *scale, const double *offset,
                              qd_err *e);
/* k-qubit matrix (copied), not checked for unitarity here. label may be NULL. */
qd_status qd_circuit_add_matrix(qd_circuit *c, const int *qs, int k, const qd_c *m,
                                const char *label, qd_err *e);
qd_status qd_circuit_add_measure(qd_circuit *c, const int *qs, int k, int discard, qd_err *e);
qd_status qd_circuit_add_reset(qd_circuit *c, const int *qs, int k, qd_err *e);
/* dst = src^-1 (dst initialised here). Fails if src has measurements/resets. */
qd_status qd_circuit_inverse(qd_circuit *dst, const qd_circuit *src, qd_err *e);
/* Makes op o (a gate or matrix op) conditional, as an OpenQASM `if` on measured bits: it
 * acts only when, for every i < n, bit bit[i] (0 = least significant) of the outcome of the
 * measurement/reset op number mi[i] (0-based among them; before o) equals val[i] (0/1) —
 * or, when neg != 0, unless all of them do. Pure states and ensembles: per member, from its
 * own outcomes. Density matrices: exactly, as the channel sum_m U_m P_m rho P_m U_m^dagger
 * (qd_circuit_run_dm keeps one branch per value of the bits conditions read). No gradient
 * passes a conditional op (the vjp functions refuse such circuits). */
#define QD_COND_MAX 64
qd_status qd_circuit_set_cond(qd_circuit *c, size_t o, const int *mi, const int *bit, const int *val,
                              int n, int neg, qd_err *e);
/* 1 if conditional op op acts for the outcomes out (nmeas entries of one member) */
int qd_circ_cond_holds(const qd_op *op, const size_t *out);
/* The circuit now acts on n qubits (fewer than it was made with): every op's qubits must be
 * below n and a qubit must be left undiscarded. For a builder (the OpenQASM reader) that
 * learns the register size at the end. */
qd_status qd_circuit_shrink(qd_circuit *c, int n, qd_err *e);
/* Qubits of the output (n minus discarded) and their list in order. */
int qd_circuit_nout(const qd_circuit *c, int *kept);

/* The angles of gate op o for parameters theta (shift may be NULL). */
void qd_op_angles(const qd_circuit *c, size_t o, const double *theta, const qd_shift *sh,
                  double *ang);
/* Inverse of gate g with angles p: *gi and pi (cannot fail). */
void qd_gate_inverse(const qd_gate_info *g, const double *p, const qd_gate_info **gi,
                     double *pi);
/* Derivative of gate g's matrix with respect to angle i, exactly (matrix-level shift rule:
 * every entry is a trigonometric polynomial with frequencies {0, +-w}, w = qd_gate_freq). */
void qd_gate_dmatrix(const qd_gate_info *g, const double *p, int i, qd_c *D);
double qd_gate_freq(const qd_gate_info *g, int i);
/* 1 if the parameter-shift rule for angle i of g needs four terms (controlled rotations) */
int qd_gate_ps_fourterm(const qd_gate_info *g, int i);

/* A channel on qubits qs[0..k) given by nkraus Kraus operators (2^k x 2^k column-major,
 * copied; k <= 6, CPTP-ness is the caller's: qd.Channel checks it). label may be NULL. */
qd_status qd_circuit_add_channel(qd_circuit *c, const int *qs, int k, const qd_c *K,
                                 size_t nkraus, const char *label, qd_err *e);

/* ---------------------------------------------------------------- running (circuit.c) */
/* Measurement control for pure-state runs. outcomes: count * nmeas entries, member j's
 * outcome of the i-th measurement/reset op at outcomes[j*nmeas + i] (index of the measured
 * bits, qs[0] the MSB); written when sampling (fixed == 0, base used), read when fixed != 0.
 * prob (optional, count): joint probability of member j's outcomes (product over ops).
 * allow_zero: with fixed outcomes, a member whose outcome has probability 0 becomes the zero
 * vector with prob 0 instead of failing (used by the expected-loss mode). */
typedef struct {
    const qd_rng *base;
    size_t *outcomes;
    int fixed;
    int allow_zero;
    double *prob;
} qd_meas_ctl;

/* Runs c on `count` vectors of n qubits in a (in place; a keeps all n qubits: discarded
 * qubits stay in their measured basis state). mc may be NULL if c has no measurements. */
qd_status qd_circuit_run_vec(const qd_circuit *c, const double *theta, qd_c *a, size_t count,
                             qd_meas_ctl *mc, const qd_shift *sh, qd_err *e);
/* The forward runs (qd_circuit_run_vec, _run_vec_tape, qd_circuit_unitary) fuse gates
 * between measurement/reset barriers (circuit.c, "gate fusion"): the 1-qubit gates on a
 * qubit become one 2x2 pass, commuted past gates on other qubits, and runs of diagonal gates
 * (rz, p, s, t, z, cz, cp, crz, rzz, ... and any 1-qubit gate whose matrix is diagonal)
 * over up to 10 qubits one diagonal-table pass (qd_k_diagtab); a 2x2 that is phases times
 * a real rotation (rz ry) is applied as the real rotation (qd_k_1q_real), its phases joining
 * the diagonal pass; on registers of <= 10 qubits the passes between barriers are applied
 * member by member (in cache). The result equals the gate-by-gate run up to rounding
 * (~1e-15 per gate) and, like it, does not depend on the member count or on threads.
 * qd_circuit_run_vec_unfused is that gate-by-gate run (the reference of the tests). */
qd_status qd_circuit_run_vec_unfused(const qd_circuit *c, const double *theta, qd_c *a,
                                     size_t count, qd_meas_ctl *mc, const qd_shift *sh,
                                     qd_err *e);
/* qd_circuit_run_vec (no shift) that also records the tape the adjoint pass needs:
 * ck (count * 2^n * nmeas amplitudes; may be NULL when nmeas == 0) receives the state
 * before each measurement/reset op, pm (count * nmeas) the probability p of member j's
 * outcome of measurement i at pm[i * count + j]. Same results as qd_circuit_run_vec. */
qd_status qd_circuit_run_vec_tape(const qd_circuit *c, const double *theta, qd_c *a,
                                  size_t count, qd_meas_ctl *mc, qd_c *ck, double *pm, qd_err *e);
/* The two runs above on a block of a larger ensemble whose member 0 is member `first` of
 * the whole (a rank's block, qd.mpi): member j draws its measurement outcomes and channel
 * trajectories from substream first + j, as it does in the run of the whole ensemble, so
 * the blocks' runs gathered equal that run bit for bit. first = 0: the functions above. */
qd_status qd_circuit_run_vec_at(const qd_circuit *c, const double *theta, qd_c *a, size_t count,
                                qd_meas_ctl *mc, const qd_shift *sh, uint64_t first, qd_err *e);
qd_status qd_circuit_run_vec_tape_at(const qd_circuit *c, const double *theta, qd_c *a,
                                     size_t count, qd_meas_ctl *mc, qd_c *ck, double *pm,
                                     uint64_t first, qd_err *e);
/* Drops the discarded qubits: out has count vectors of nout qubits (out != a). */
void qd_circuit_extract_vec(const qd_circuit *c, const qd_c *a, size_t count, qd_c *out);
/* Runs c on a density matrix of n qubits in place (non-selective measurement, reset
 * channel). Then qd_circuit_extract_dm traces out the discarded qubits. */
qd_status qd_circuit_run_dm(const qd_circuit *c, const double *theta, qd_c *rho,
                            const qd_shift *sh, qd_err *e);
void qd_circuit_extract_dm(const qd_circuit *c, const qd_c *rho, qd_c *out);
/* U(theta): 2^n x 2^n column-major (column j = circuit applied to |j>). Needs no
 * measurements. */
qd_status qd_circuit_unitary(const qd_circuit *c, const double *theta, qd_c *U, qd_err *e);

/* Tests only: nonzero makes the vector backward pass skip its SIMD-lane path for small
 * registers (adjoint.c, sweep_back) and take the generic one for every circuit. */
extern int qd_adjoint_generic_only;

/* Internal helpers shared with adjoint.c */
/* Length of the run of consecutive 1-qubit gate ops on the same qubit starting at op o (1 if
 * op o is not a 1-qubit gate; at most 64). State-vector runs apply such a run as one 2x2
 * matrix, M = G_last ... G_first (qd_circ_fused_matrix). */
int qd_circ_run1q(const qd_circuit *c, size_t o);
/* The forward fuser (circuit_fuse.c): ops o in order through qd_fuser_op, a flush before a
 * measurement/reset and at the end; a, count: the members it transforms in place. NULL
 * from qd_fuser_new when out of memory. */
typedef struct qd_fuser qd_fuser;
qd_fuser *qd_fuser_new(const qd_circuit *c, const double *theta, const qd_shift *sh, qd_c *a,
                       size_t count);
qd_status qd_fuser_op(qd_fuser *f, size_t o, qd_err *e);
void qd_fuser_flush(qd_fuser *f);
void qd_fuser_free(qd_fuser *f);
void qd_circ_fused_matrix(const qd_circuit *c, size_t o, int len, const double *theta,
                          const qd_shift *sh, qd_c M[4]);
/* Length of the run of consecutive cz ops from op o forward (dir > 0) or backward (dir < 0;
 * ops o, o-1, ...); 1 if op o is not a cz or the register has more than 10 qubits. Such a
 * run is applied as one +-1 diagonal (its own inverse) by qd_circ_apply_czrun (ops
 * o0 .. o0+len-1). */
int qd_circ_runcz(const qd_circuit *c, size_t o, int dir);
void qd_circ_apply_czrun(const qd_circuit *c, size_t o0, int len, qd_c *a, size_t count);
qd_status qd_circ_apply_op(const qd_circuit *c, size_t o, const double *ang, qd_c *a,
                           size_t count, int inverse, qd_err *e);
qd_status qd_circ_apply_op_dm(const qd_circuit *c, size_t o, const double *ang, qd_c *rho,
                              int inverse, qd_err *e);
/* Projects one vector on outcome m of qs and renormalises; returns p = ||P_m a||^2 (the
 * vector is zeroed when p == 0). reset != 0 then moves the outcome to |0...0>. */
double qd_circ_project(qd_c *a, int nq, const int *qs, int k, size_t m, int reset);
/* bit pattern of outcome m of qs inside an nq-qubit index, and the mask of qs */
size_t qd_circ_pattern(int nq, const int *qs, int k, size_t m, size_t *mask);
void qd_circ_dm_dephase(qd_c *rho, int n, const int *qs, int k);
void qd_circ_dm_reset(qd_c *rho, int n, const int *qs, int k, int adjoint);

/* ---------------------------------------------------------------- gradients (adjoint.c)
 * Reverse-mode (adjoint) differentiation, no tape of states: the forward state is
 * uncomputed gate by gate with inverse gates; only the pre-measurement state of each
 * measurement/reset op is kept (it cannot be uncomputed). Memory: 2 (+1 per measurement
 * op) copies of the input; time ~ 3 forward passes + one local contraction per angle.
 *
 * qd_circuit_vjp_vec: x (count vectors of n qubits, the circuit input), G (count vectors of
 * nout qubits, dL/d conj(output)). Outcomes are held fixed (outcomes as in qd_meas_ctl,
 * required when c has measurements). dLdP (optional, count): dL/dP_j for the joint
 * outcome probability P_j of member j (the expected-loss mode: L = sum_m P_m l(psi'_m)
 * gives dL/dP = l). grad (nslots) is OVERWRITTEN with dL/dtheta; G_in (optional, count
 * vectors of n qubits) receives dL/d conj(x). prob (optional, count) receives P_j.
 * Members whose outcome has probability 0 contribute nothing (allow_zero semantics). */
qd_status qd_circuit_vjp_vec(const qd_circuit *c, const double *theta, const qd_c *x,
                             size_t count, const size_t *outcomes, const qd_c *G,
                             const double *dLdP, double *grad, qd_c *G_in, double *prob,
                             qd_err *e);
/* The same backward pass from a forward run already done by qd_circuit_run_vec_tape (c:grad
 * runs the forward once): psi = the run's final state (all n qubits; overwritten), ck and
 * pm its tape, pm with room for count * (nmeas + 2) doubles (the tail is scratch), lam
 * scratch of count * 2^n amplitudes. outcomes = the run's outcomes. Other arguments and
 * results as qd_circuit_vjp_vec; results are bitwise the same. */
qd_status qd_circuit_vjp_vec_tape(const qd_circuit *c, const double *theta, size_t count,
                                  const size_t *outcomes, const qd_c *G, const double *dLdP,
                                  double *grad, qd_c *G_in, double *prob, qd_c *psi,
                                  qd_c *lam, const qd_c *ck, double *pm, qd_err *e);
/* The parameter gradient's per-member terms, for a caller that adds them over members
 * itself (an ensemble in blocks over ranks, qd.mpi.grad): the lane pass (adjoint.c,
 * sweep_back) computes one value per member and gradient term, sums each term over the
 * members in member order from 0 and adds scale * sum into grad[slot] in term order.
 * vals: count x nt (member-major), slots/scales: nt entries; nt <= 2 * (ops of c). */
typedef struct {
    double *vals;
    int *slots;
    double *scales;
    int nt;
} qd_adjoint_terms;
/* qd_circuit_vjp_vec_tape's backward pass (dLdP, G_in and prob not wanted) that fills out
 * instead of summing: the terms of a block of count members of a whole ensemble of
 * count_whole (which decides the pass, as it does for the whole). QD_EARG when the circuit
 * does not take the lane pass (more than 10 qubits, a gate after a measurement, a
 * parameterised gate that is not a Pauli rotation, no FMA): those sum inside the pass. */
qd_status qd_circuit_vjp_vec_tape_terms(const qd_circuit *c, const double *theta, size_t count,
                                        size_t count_whole, const size_t *outcomes,
                                        const qd_c *G, qd_adjoint_terms *out, qd_c *psi,
                                        qd_c *lam, const qd_c *ck, double *pm, qd_err *e);
/* Density matrices (n qubits in, nout out): the adjoint method on rho viewed as a vector of
 * 2n qubits, where rho -> U rho U^dagger is the unitary U (x) conj(U). G: 2^nout x 2^nout.
 * grad (nslots) overwritten; G_in (optional, 2^n x 2^n) receives dL/d conj(rho_in)
 * (Hermitian part). */
qd_status qd_circuit_vjp_dm(const qd_circuit *c, const double *theta, const qd_c *rho,
                            const qd_c *G, double *grad, qd_c *G_in, qd_err *e);
/* Im <lam|P|psi> for one vector of nq qubits, P = i^ny X^x Z^z (bit masks in index order):
 * the generic Pauli bracket of the adjoint pass; qd_pauli1_braket_im is the specialised
 * single-qubit pair-loop kernel (p = 'X', 'Y' or 'Z' on qubit q) used for rx/ry/rz on
 * ensembles. Exposed for the tests (the two must agree). */
double qd_pauli_braket_im(const qd_c *lam, const qd_c *psi, int nq, size_t x, size_t z, int ny);
double qd_pauli1_braket_im(const qd_c *lam, const qd_c *psi, int nq, int q, char p);
/* the X, Y and Z brackets on qubit q in one pass (out[0..2]; fused rotation pairs) */
void qd_pauli3_braket_im(const qd_c *lam, const qd_c *psi, int nq, int q, double out[3]);
#endif
