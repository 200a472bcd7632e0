/* qd_isa.h — the kernel sets and which one runs.
 *
 * The numerical core is compiled once per kernel set and linked into one binary; calls
 * into it go through a table of entry points that points at one set (scripts/gen_dispatch.sh
 * writes the table and the entry stubs). The sets on x86-64:
 *   portable  baseline x86-64 (SSE2): the plain C kernels, no intrinsics
 *   avx2      x86-64-v3: AVX2 + FMA (+ BMI2, ...)
 *   avx512    x86-64-v4: AVX-512 F/CD/BW/DQ/VL
 * (other architectures: portable only; a `make NATIVE=1` build: one set, "native").
 * The best set the CPU runs is chosen when the program starts; QD_SIMD=NAME in the
 * environment forces one. A set the CPU cannot run is never selected: forcing one is an
 * error the program reports (qd_isa_error), not an illegal instruction. */
#ifndef QD_ISA_H
#define QD_ISA_H

#include "qd.h"

/* name of the set in use ("avx2", ...) */
const char *qd_isa_name(void);
/* the sets built into this binary, best last, separated by spaces ("portable avx2 avx512") */
const char *qd_isa_built(void);
/* 1 if set `name` is built in and this CPU can run it */
int qd_isa_runnable(const char *name);
/* the sets this CPU can run, best last, separated by spaces */
const char *qd_isa_runnable_list(void);
/* the CPU's vector ISA as seen by the dispatcher, e.g. "x86-64-v3 (AVX2 FMA)" */
const char *qd_isa_cpu(void);
/* switch to set `name` (no computation may be running in another thread) */
qd_status qd_isa_select(const char *name, qd_err *e);
/* 1 if a single-rounding fused multiply-add is one instruction here: the kernel set has
 * FMA instructions, or the CPU has them (the portable set's fma() calls then reach the
 * instruction through libm). 0 on a CPU without FMA (older x86-64, e.g. Pentium/Celeron
 * Silver, pre-Haswell Xeons), where libm computes fma() in software (slower still than the
 * call to the instruction, which already made the lane kernels 30-60x slower on a Zen 3):
 * there the kernels built on exact FMAs (the lane paths: fused runs of 2-10 qubits, the
 * lane adjoint, small-state MMD, the direct overlap kernel) step aside for the generic
 * paths and BLAS. Results on such a CPU are as deterministic (threads, member counts) but
 * not bit-identical to an FMA machine's; no other set runs there to compare with. */
int qd_isa_fma_hw(void);
/* tests: nonzero makes qd_isa_fma_hw() answer 0 (the fallback paths on any machine);
 * set at start-up by QD_ASSUME_NO_FMA=1 in the environment */
extern int qd_isa_assume_no_fma;

/* NULL, or why QD_SIMD could not be honoured at start-up (the best set is used then) */
const char *qd_isa_error(void);

/* set up by the dispatch table's constructor; safe to call again */
void qd_isa_init(void);

/* for the dispatch table (generated): the sets built in and their entry tables */
typedef struct {
    const char *name;
    void *const *table;
} qd_isa_set;
extern const qd_isa_set qd_isa_sets[];
extern const int qd_isa_nsets;
extern void *qd_isa_active[];
extern const int qd_isa_nentries;

#endif
