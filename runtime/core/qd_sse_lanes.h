/* qd_sse_lanes.h — the SSE's lane path (sse_lanes.c), used by dynamics.c's qd_sse_run for
 * registers of up to QD_SSE_LANES_MAX_QUBITS qubits; internal to the core. */
#ifndef QD_SSE_LANES_H
#define QD_SSE_LANES_H
#include "qd_dynamics.h"

#define QD_SSE_LANES_MAX_QUBITS 6
#define QD_SSE_LANES_MAX_M 8      /* measured observables */
#define QD_SSE_LANES_MAX_F 64     /* feedback terms */
/* one qubit: QD_SSE_LANES_R groups of QD_LV members step side by side. A group's step is
 * one short dependency chain ending in the norm's square root and division; the groups
 * are independent, so the core overlaps them (1 qubit, 4000 members: about -25 % time on
 * AVX-512; from two qubits on, a group's own operations keep the core busy) */
#define QD_SSE_LANES_R 8

/* a member's failure step marked with this bit: the feedback law gave a non-finite value
 * (otherwise its norm failed) */
#define QD_SSE_LAW_FAILED ((size_t)1 << (sizeof(size_t) * 8 - 2))

/* tests: nonzero sends every SSE run down the generic member-by-member path (parallel.c) */
extern int qd_sse_generic_only;

typedef struct qd_sse_lanes qd_sse_lanes;
/* The plan for options o on n qubits (o must outlive it), or NULL when the lane path does
 * not apply (too many qubits / observables / feedback terms) or memory is short: the
 * caller then takes the generic path. */
qd_sse_lanes *qd_sse_lanes_new(const qd_sse_opts *o, int n);
void qd_sse_lanes_free(qd_sse_lanes *P);
/* members in one block: QD_LV, or QD_LV * QD_SSE_LANES_R for one qubit */
size_t qd_sse_lanes_unit(const qd_sse_lanes *P);
/* doubles of scratch one block needs (one per thread; 64-byte aligned) */
size_t qd_sse_lanes_scratch(const qd_sse_lanes *P);
/* the tracked observables at step 0 for all count members */
void qd_sse_lanes_observe0(const qd_sse_lanes *P, const qd_c *a, size_t count, double *vals,
                           size_t nsave, double *scr);
/* steps [s0, s1) of the block of nl <= qd_sse_lanes_unit(P) members j0 .. (a = member j0's amplitudes);
 * fc: feedback coefficients (fc_stride 0: shared, else member j0 + l's at fc + l *
 * fc_stride); rngs, bad: the block's entries (bad[l]: the 1-based step at which member l's
 * norm failed, set once). Returns 1 when qd_interrupt stopped it. */
int qd_sse_lanes_block(const qd_sse_lanes *P, qd_c *a, size_t j0, size_t nl, size_t count,
                       size_t s0, size_t s1, const qd_c *fc, size_t fc_stride, qd_rng *rngs,
                       size_t *bad, double *vals, size_t nsave, double *scr);
#endif
