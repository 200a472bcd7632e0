/* lua_util.h — shared pieces of the Lua bindings (qdL_*): the userdata layouts, checked
 * accessors, argument validation with house-style messages, and GC-aware allocation. */
#ifndef LUA_UTIL_H
#define LUA_UTIL_H
#include <lua.h>
#include <lauxlib.h>
#include "qd.h"
#include "qd_dynamics.h"
#include "qd_circuit.h"

#define QDL_STATE "qd.State"
#define QDL_DM "qd.DensityMatrix"
#define QDL_ENS "qd.Ensemble"
#define QDL_VECTOR "qd.Vector"
#define QDL_MATRIX "qd.Matrix"
#define QDL_RNG "qd.Rng"

/* A register: State (count 1), DensityMatrix (count 1, buffer 4^n) or Ensemble (count N).
 * a == NULL means freed (or not yet allocated): every access checks. */
typedef enum { QDL_K_STATE, QDL_K_DM, QDL_K_ENS } qdl_kind;
typedef struct {
    qdl_kind kind;
    int n;          /* qubits */
    size_t count;   /* members (1 for State/DensityMatrix) */
    qd_c *a;
    size_t bytes;   /* bytes reported to the allocator accounting */
} qdl_reg;

/* Vector (cols == 1, own metatable) and Matrix: column-major, real or complex. */
typedef struct {
    size_t rows, cols;
    int cplx;
    void *data;
    size_t bytes;
    int freed;
} qdl_array;

/* ---- allocation (GC-aware, house rule 6) ----
 * qdL_alloc collects when live big-buffer bytes pass a soft cap, retries once after a
 * full collection on failure, and raises "not enough memory for <what> (<size> requested)"
 * — before trying at all if the request exceeds physical memory. Zeroed if zero != 0. */
void *qdL_alloc(lua_State *L, size_t bytes, int zero, const char *what);
void qdL_release(void *p, size_t bytes);
/* bytes for 2^nq * count amplitudes, raising on overflow with a clear message */
size_t qdL_amp_bytes(lua_State *L, int nq, size_t count, const char *what);

/* ---- registers ---- */
/* new userdata of the kind's metatable with an allocated (zeroed) buffer; pushed. */
qdl_reg *qdL_newreg(lua_State *L, qdl_kind kind, int n, size_t count);
qdl_reg *qdL_newreg_uninit(lua_State *L, qdl_kind kind, int n, size_t count);
qdl_reg *qdL_checkreg(lua_State *L, int idx);                 /* any of the three, not freed */
qdl_reg *qdL_checkkind(lua_State *L, int idx, qdl_kind kind); /* one kind, not freed */
qdl_reg *qdL_testkind(lua_State *L, int idx, qdl_kind kind);  /* NULL if not that kind */
const char *qdL_kindname(qdl_kind kind);
void qdL_reg_free(qdl_reg *r);
/* qd.State etc. metatable setup: methods table filled by the caller with luaL_setfuncs
 * after this pushes it; common metamethods (__gc, __close, __index, __len, __name). */
void qdL_reg_metatable(lua_State *L, qdl_kind kind, const luaL_Reg *methods);

/* ---- userdata classes ----
 * Registers metatable `name`: a methods table (also mt.methods, which help and Tab
 * completion read), __index = index_fn as a closure over the methods table (or the methods
 * table itself when index_fn is NULL), then the metamethods in meta (may be NULL). Leaves
 * the methods table on the stack, for methods added by loop (gates); the caller pops it. */
void qdL_newclass(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction index_fn,
                  const luaL_Reg *meta);
/* In an __index that found nil (on top) for method key in the methods table at index
 * methods: the method under a common other spelling (cnot -> cx, CX -> cx, toffoli -> ccx,
 * ...) replaces the nil when there is one. */
void qdL_method_alias(lua_State *L, int methods, const char *key);

/* ---- printing: a matrix as aligned rows, numpy style (more than 10 rows or columns: the
 * first and last 4 with "..." between; parts below 1e-12 of the largest entry shown as 0),
 * each row on a new line indented by two spaces. get(ctx, r, c, rows) reads an entry. */
void qdL_add_matrix_get(luaL_Buffer *b, size_t rows, size_t cols, int cplx,
                        qd_c (*get)(const void *, size_t, size_t, size_t), const void *ctx);
void qdL_add_matrix(luaL_Buffer *b, const qd_c *m, size_t rows, size_t cols, int cplx); /* col-major */

/* ---- arrays ---- */
qdl_array *qdL_newarray(lua_State *L, size_t rows, size_t cols, int cplx, int is_vector);
/* the same with its entries not zeroed: for results every entry of which is written next */
qdl_array *qdL_newarray_nz(lua_State *L, size_t rows, size_t cols, int cplx, int is_vector);
qdl_array *qdL_checkarray(lua_State *L, int idx);             /* Vector or Matrix */
qdl_array *qdL_testarray(lua_State *L, int idx);
/* Reads element i (0-based, column-major) as complex. */
qd_c qdL_array_get(const qdl_array *a, size_t i);

/* ---- rng ---- */
qd_rng *qdL_checkrng(lua_State *L, int idx);
/* rng argument at idx if it is a qd.Rng, else (nil/none) the run's rng. */
qd_rng *qdL_optrng(lua_State *L, int idx);
qd_rng *qdL_runrng(lua_State *L);   /* the run's generator (qd.run_rng()) */
/* "[rng] [options]" from idx: the qd.Rng at idx, or the run's generator when idx is nil or
 * none or an options table (an explicit nil may precede the options); *optidx = where the
 * options are (nothing may follow them) */
qd_rng *qdL_rng_opts(lua_State *L, int idx, int *optidx);

/* ---- argument checking ---- */
int qdL_checkqubit(lua_State *L, int arg, int n);   /* integer 0..n-1 */
/* qubit list: a table of integers or a single integer at arg; distinct, in range.
 * Returns count k, fills qs (capacity QD_MAX_QUBITS). If opt and none/nil: all qubits. */
int qdL_checkqubits(lua_State *L, int arg, int n, int *qs, int opt);
int qdL_checknqubits(lua_State *L, int arg, int maxq);   /* 0/1..maxq */
size_t qdL_checkcount(lua_State *L, int arg, const char *what);  /* integer >= 1 */
/* Options table at arg (nil/none allowed): raises on keys not in `allowed` (NULL-ended). */
void qdL_checkoptions(lua_State *L, int arg, const char *const *allowed);
int qdL_optbool(lua_State *L, int arg, const char *key, int def);
/* Number option key of the options table at arg: def when absent (or when arg is no table),
 * else a finite number within lo..hi (-INFINITY/INFINITY for no bound; QDL_OPEN_LO,
 * QDL_OPEN_HI exclude an end; QDL_REQUIRED: absent is an error). Raises
 * "bad argument #arg to 'f' (option 'key': number in (0, 1] expected, got 2)". */
#define QDL_REQUIRED 1u
#define QDL_OPEN_LO 2u
#define QDL_OPEN_HI 4u
double qdL_optnum(lua_State *L, int arg, const char *key, double def, double lo, double hi,
                  unsigned flags);
/* complex number from a Lua value: number, or {re, im} table. */
int qdL_tocomplex(lua_State *L, int idx, qd_c *z);
void qdL_pushcomplex(lua_State *L, qd_c z);   /* pushes re, im (two values) */
/* square complex matrix from a qd.Matrix or a nested table of rows; returns dim, writes
 * a column-major buffer to *out. The buffer is a userdata PUSHED on the stack (so it is
 * collected whatever error follows; nothing to free). */
size_t qdL_checkcmatrix(lua_State *L, int arg, qd_c **out);
/* the k-qubit unitary at arg (qd.Matrix or table of rows, 2^k x 2^k, |U^dagger U - I| <=
 * 1e-8 entrywise), column-major in a GC-managed buffer */
qd_c *qdL_checkunitary(lua_State *L, int arg, int k);
/* raise the message of a core error (after the caller freed its temporaries) */
int qdL_raise(lua_State *L, const qd_err *e);
/* reject extra arguments past `last` */
void qdL_checknargs(lua_State *L, int last);
/* Adds fn as method `name` of State, DensityMatrix and Ensemble (their metatables' methods
 * table), for modules that extend the register types (obj:apply, obj:evolve). */
void qdL_add_reg_method(lua_State *L, const char *name, lua_CFunction fn);
/* bitstring for outcome idx of k bits */
void qdL_bits(size_t idx, int k, char *buf);

/* ---- module pieces (each lua_*.c) ---- */
void qdL_open_util(lua_State *L);       /* fills qd.core functions shared by all */
void qdL_open_rng(lua_State *L);
void qdL_open_array(lua_State *L);
void qdL_open_vmath(lua_State *L);     /* lua_vmath.c: v:exp(), v:mul(w), ... */
void qdL_open_law(lua_State *L);       /* lua_law.c: the symbolic values of qd.sse's feedback laws */
/* traces the Lua function at fidx as qd.sse's feedback law for nF terms on n qubits into
 * *out; pushes the storage *out points into (keep it on the stack while *out is used) */
void qdL_law_trace(lua_State *L, int fidx, int n, size_t nF, qd_sse_law *out);
void qdL_open_registers(lua_State *L);  /* State, DensityMatrix, Ensemble */
void qdL_open_npy(lua_State *L);
void qdL_open_state(lua_State *L);
void qdL_open_dm(lua_State *L);
void qdL_open_ensemble(lua_State *L);
void qdL_open_gates(lua_State *L);
void qdL_open_mpi(lua_State *L);       /* qd.core.mpi, qd.DistState (lua_mpi.c) */
/* the gate methods for a register metatable's method table (on top of the stack) */
void qdL_add_gate_methods(lua_State *L);
/* pushes a register's __tostring summary */
void qdL_reg_tostring(lua_State *L, qdl_reg *r);
/* ---- lengths and scratch ---- */
/* #t of the table at idx (its __len run once), validated 0..max; raises naming arg/what */
lua_Integer qdL_checklen(lua_State *L, int arg, int idx, lua_Integer max, const char *what);
/* count * size bytes of scratch as a PUSHED userdata (collected whatever error follows);
 * overflow and sizes beyond physical memory raise "not enough memory for <what>" */
void *qdL_scratch(lua_State *L, size_t count, size_t size, const char *what);

/* ---- value checks (docs/api.md "Value checks") ---- */
#define QDL_NORM_TOL 1e-8       /* | |psi|^2 - 1 |, Hermiticity, trace, -smallest eigenvalue */
#define QDL_NORM_TOL_F32 1e-5   /* the same for single-precision .npy data */
/* 0 if the count vectors of 2^n amplitudes are finite and normalised within tol, else 1
 * with the problem described in msg */
int qdL_amps_problem(const qd_c *a, int n, size_t count, double tol, char *msg, size_t len);
/* raises on argument arg unless valid; normalize < 0 (the default): checks the norm;
 * > 0: scales each vector to norm 1 (finite, non-zero required); 0: finite only, the norm
 * taken as given (an explicit {normalize = false}, for gradient vectors) */
void qdL_check_amps(lua_State *L, int arg, qd_c *a, int n, size_t count, int normalize);
/* 0 if rho (2^n x 2^n) is a density matrix within tol, else 1 with msg */
int qdL_dm_problem(const qd_c *rho, int n, double tol, char *msg, size_t len);
void qdL_check_dm(lua_State *L, int arg, const qd_c *rho, int n);

/* ---- shared between binding files (defined in the file named) */
void *qdL_alloc_try(lua_State *L, size_t bytes, int zero);   /* lua_util.c */
void qdL_nomem(lua_State *L, size_t bytes, const char *what);   /* lua_util.c */
const double *qdL_schedule_values(lua_State *L, int idx, size_t *T);   /* lua_schedule.c */
int qdL_m_probs(lua_State *L);   /* lua_state.c */
int qdL_m_sample(lua_State *L);   /* lua_state.c */
int qdL_m_measure(lua_State *L);   /* lua_state.c */
int qdL_m_expect(lua_State *L);   /* lua_state.c */
int qdL_m_kron(lua_State *L);   /* lua_state.c */
int qdL_m_ptrace(lua_State *L);   /* lua_state.c */
int qdL_fidelity(lua_State *L);   /* lua_state.c */
int qdL_trace_distance(lua_State *L);   /* lua_state.c */
int qdL_purity(lua_State *L);   /* lua_state.c */
int qdL_entropy(lua_State *L);   /* lua_state.c */
qd_pauli_sum *qdL_topauli(lua_State *L, int idx, int n, const char *label);   /* lua_pauli.c */
int qdL_lindblad_evolve(lua_State *L);   /* lua_dynamics.c */
int qdL_m_embed(lua_State *L);   /* lua_state.c */
qd_pauli_sum *qdL_checkpauli(lua_State *L, int idx);   /* lua_pauli.c */
void qdL_open_state(lua_State *L);   /* lua_state.c */
void qdL_open_dm(lua_State *L);   /* lua_dm.c */
void qdL_open_ensemble(lua_State *L);   /* lua_ensemble.c */
void qdL_open_random(lua_State *L);   /* lua_random.c */
void qdL_open_schedule(lua_State *L);   /* lua_schedule.c */
void qdL_open_diffusion(lua_State *L);   /* lua_diffusion.c */
void qdL_open_channel(lua_State *L);   /* lua_channel.c */
void qdL_open_circuit(lua_State *L);   /* lua_circuit.c */
qd_circuit *qdL_checkcircuit(lua_State *L, int idx);   /* lua_circuit.c */
void qdL_open_qasm(lua_State *L);   /* lua_qasm.c (from qdL_open_circuit) */
void qdL_open_loss(lua_State *L);   /* lua_loss.c */
void qdL_open_dmstack(lua_State *L);   /* lua_dmstack.c */
void qdL_open_pauli(lua_State *L);   /* lua_pauli.c */
void qdL_open_dynamics(lua_State *L);   /* lua_dynamics.c */
void qdL_open_optim(lua_State *L);   /* lua_optim.c */
void qdL_open_nn(lua_State *L);   /* lua_nn.c */
void qdL_open_synth(lua_State *L);   /* lua_synth.c */
void qdL_open_image(lua_State *L);   /* lua_image.c */
void qdL_open_sys(lua_State *L);   /* lua_sys.c */
void qdL_open_arith(lua_State *L);   /* lua_arith.c */

#endif
