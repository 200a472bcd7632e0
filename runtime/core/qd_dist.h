/* qd_dist.h — qd across processes (Open MPI; the opt-in build `make MPI=1`, -DQD_MPI).
 * dist.c wraps the few MPI calls qd needs; without QD_MPI the same functions exist for
 * one process (rank 0 of 1, collectives are copies), so the bindings and the stdlib have
 * no #ifdef. dist_state.c holds state vectors split over ranks, QuEST's scheme.
 *
 * Reductions are in a fixed order: every rank's contribution goes to rank 0, which adds
 * them in rank order 0, 1, ..., P-1, and the result is broadcast — the bits do not depend
 * on the MPI library's reduction tree. Messages above 1 GiB are sent in pieces (MPI counts
 * are int). Failures return QD_EIO with the MPI error string. */
#ifndef QD_DIST_H
#define QD_DIST_H
#include "qd.h"
#include "qd_circuit.h"

int qd_dist_enabled(void);   /* 1 in the MPI build */
/* MPI_Init_thread (FUNNELED: only the main thread calls MPI; OpenMP regions do not).
 * The interpreter calls it once, before anything else; 0 on success. */
int qd_dist_init(int *argc, char ***argv);
void qd_dist_finalize(void);
/* ends every rank (MPI_Abort): a rank that failed must not leave the others waiting in a
 * collective forever. Without MPI: nothing (the caller exits). */
void qd_dist_abort(int code);
int qd_dist_rank(void);
int qd_dist_size(void);
int qd_dist_local_size(void);   /* ranks on this machine (MPI_COMM_TYPE_SHARED); 1 without MPI */
const char *qd_dist_library(void);   /* "Open MPI v4.1.4, ..." or "none" */

qd_status qd_dist_barrier(qd_err *e);
/* bytes from root to every rank (buf in/out) */
qd_status qd_dist_bcast(void *buf, size_t bytes, int root, qd_err *e);
/* variable-size gather: on root, *out = malloc'd concatenation (rank order) and lens[P]
 * the sizes; elsewhere *out = NULL. */
qd_status qd_dist_gather(const void *buf, size_t bytes, int root, void **out, size_t *lens,
                         qd_err *e);
/* variable-size allgather: on every rank *out = malloc'd concatenation (rank order), lens[P]
 * the sizes (MPI_Allgatherv; parts above 2 GiB in all: through gather + broadcast) */
qd_status qd_dist_allgather(const void *buf, size_t bytes, void **out, size_t *lens,
                            qd_err *e);
/* x[0..n) summed (op 's'), maximum ('M'), minimum ('m') or product ('p') over the ranks in
 * rank order, the result on every rank (in x) */
qd_status qd_dist_allreduce(double *x, size_t n, char op, qd_err *e);
/* point to point (the sweep's work queue): tag >= 0; recv src/tag < 0: any */
qd_status qd_dist_send(const void *buf, size_t bytes, int dest, int tag, qd_err *e);
/* blocks for a message; *out malloc'd (free it), *len, *src, *tag filled */
qd_status qd_dist_recv(int src, int tag, void **out, size_t *len, int *src_out, int *tag_out,
                       qd_err *e);
int qd_dist_iprobe(int src, int tag);   /* 1 if a message is waiting */
/* exchange: sbuf to partner, rbuf from partner (bytes each way) */
qd_status qd_dist_sendrecv(const void *sbuf, void *rbuf, size_t bytes, int partner, qd_err *e);

/* exchange with different partners and sizes: sbytes of sbuf to dest, rbytes into rbuf from
 * src (the partners' sizes must mirror: dest receives sbytes from us) */
qd_status qd_dist_sendrecv2(const void *sbuf, size_t sbytes, int dest, void *rbuf,
                            size_t rbytes, int src, qd_err *e);

/* ---------------------------------------------------------------- ensembles in blocks
 * An ensemble whose members are spread over the ranks in contiguous blocks, rank order =
 * member order (qd.mpi.share). Every function here is a collective and gives the bits of
 * the one-process call on the whole ensemble (dist.c says how). */
typedef struct {
    int nq;            /* qubits of the members (-1: no rank holds one) */
    size_t total;      /* members over all ranks */
    size_t first;      /* global index of this rank's first member (0-based) */
    size_t *counts;    /* members of each rank (P entries, malloc'd) */
} qd_dist_blocks;
/* every rank's block size and qubit count (an allgather); QD_EARG on every rank if the
 * ranks' qubit counts differ. Free with qd_dist_blocks_free. */
qd_status qd_dist_block_info(int nq, size_t count, qd_dist_blocks *b, qd_err *e);
void qd_dist_blocks_free(qd_dist_blocks *b);
/* out (N x total(B), column-major) = |<a_i|b_j>|^2 for this rank's N members a_i of A and
 * every member b_j of B (its blocks B described by bb), by the ring: the B blocks travel
 * rank -> rank + 1 in P - 1 MPI_Sendrecv steps. The one-process qd_overlaps bits when that
 * call takes its direct kernel (d <= 1024, N M <= 2^22), else equal to rounding. */
qd_status qd_dist_overlaps(const qd_c *A, size_t N, const qd_c *B, const qd_dist_blocks *bb,
                           int nq, double *out, qd_err *e);
/* the fidelity-kernel MMD of qd_loss_mmd_fid (method QD_MMD_*) between ensembles whose
 * blocks are A (described by ba) and B (bb): the value on every rank and the gradient
 * columns of this rank's members (GA: ba's count for this rank x 2^nq, GB likewise; NULL
 * for none), all equal to the one-process call's bits. *sharded (may be NULL) = 1 when the
 * work was split (the average-state form with d <= 32 on an FMA CPU: the lane sums
 * pipelined in rank order), 0 when the blocks were gathered and the loss run whole. */
qd_status qd_dist_mmd_fid(const qd_c *A, const qd_dist_blocks *ba, const qd_c *B,
                          const qd_dist_blocks *bb, int nq, int method, double *val, qd_c *GA,
                          qd_c *GB, int *sharded, qd_err *e);

/* the parameter gradient (nslots entries, on every rank) of a circuit over an ensemble in
 * blocks of `total` members: t holds this rank's count members' lane-pass terms
 * (qd_circuit_vjp_vec_tape_terms); gathered in member order and added as adjoint.c adds
 * them for the whole ensemble, so grad has the one-process bits */
qd_status qd_dist_grad_terms(const qd_adjoint_terms *t, size_t count, size_t total, int nslots,
                             double *grad, qd_err *e);

/* ---------------------------------------------------------------- distributed state vectors
 * n qubits on P = 2^k ranks (k = log2 P, n - k >= 1 local qubits): qubits 0..k-1 (the most
 * significant: qubit 0 is the MSB) index the rank, rank r holds amplitudes r*2^(n-k) ..
 * (r+1)*2^(n-k)-1 as an (n-k)-qubit vector whose qubit j is global qubit j+k. A gate on
 * local qubits is the ordinary kernel on the local part; a diagonal gate needs no message;
 * any other gate touching a rank qubit swaps that qubit with a free local one (each rank
 * exchanges half its part with its partner, MPI_Sendrecv), applies the gate, swaps back. */
typedef struct {
    int n, k;          /* qubits in all, rank qubits */
    int rank, size;
    size_t nloc;       /* 2^(n-k) local amplitudes */
    qd_c *a;           /* local part (qd_malloc) */
    qd_c *buf;         /* exchange buffer, nloc amplitudes (send and receive halves; P > 1) */
    /* time split: seconds in local kernels, in packing + exchange, and messages/bytes */
    double t_compute, t_exchange;
    double msgs, bytes;
} qd_dstate;

/* |0..0> on n qubits over every rank (a collective: all ranks call it) */
qd_status qd_dstate_new(qd_dstate *s, int n, qd_err *e);
void qd_dstate_free(qd_dstate *s);
/* gate g on global qubits qs with params (as qd_apply_gate) */
qd_status qd_dstate_gate(qd_dstate *s, const qd_gate_info *g, const int *qs, const double *p,
                         qd_err *e);
/* probabilities that global qubit q reads 1, on every rank */
qd_status qd_dstate_prob1(qd_dstate *s, int q, double *p1, qd_err *e);
/* <psi| Z on the qubits in mask-list qs |psi> (Z-string) and the squared norm, on every rank */
qd_status qd_dstate_expect_z(qd_dstate *s, const int *qs, int k, double *val, qd_err *e);
/* the full probability vector (2^n doubles) on root (malloc'd *out), NULL elsewhere */
qd_status qd_dstate_probs_gather(qd_dstate *s, int root, double **out, qd_err *e);
/* the full amplitude vector on root, as above */
qd_status qd_dstate_amps_gather(qd_dstate *s, int root, qd_c **out, qd_err *e);
/* <a|b> of two distributed states of the same shape (rank-ordered sum), on every rank */
qd_status qd_dstate_inner(qd_dstate *a, qd_dstate *b, qd_c *out, qd_err *e);
/* a copy (collective) */
qd_status qd_dstate_copy(qd_dstate *dst, const qd_dstate *src, qd_err *e);
/* outcome of measuring every qubit, drawn with one uniform u in [0,1) that every rank
 * passes equal (the same rng): the cumulative distribution over rank parts in rank order */
qd_status qd_dstate_sample(qd_dstate *s, double u, size_t *idx, qd_err *e);
/* in place Walsh–Hadamard transform of a real distributed vector (x of nloc doubles per
 * rank, n bits, k rank bits), unnormalised: x_hat(s) = sum_x (-1)^{s.x} p(x) */
qd_status qd_dist_fwht(double *x, int n, int k, qd_dstate *stats, qd_err *e);

#endif
