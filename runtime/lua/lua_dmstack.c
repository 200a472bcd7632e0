/* lua_dmstack.c — stacks of density matrices for MSQuDDPM (qd_dmstack.h), as functions of
 * qd.core: a stack of N density matrices of n qubits is a complex qd.Matrix of d^2 x N
 * (d = 2^n), column k = member k's matrix, column-major (so whole stacks go to zgemm and
 * save as .npy with no copy). The protocol library (stdlib/qd/protocols/msquddpm.lua) is the
 * public face; these are its kernels:
 *   core.dms_from({rho1, ...}) -> stack      core.dms_get(S, k) -> DensityMatrix
 *   core.dms_depolarize(S, keep) -> stack    core.dms_gather(S, idx) -> stack
 *   core.dms_mmd_sf(A, B [, grad]) -> value [, G]
 *   core.dms_wass_sf(A, B [, grad]) -> value [, G]
 *   core.dms_kraus_step(W, na, rho, u [, anc]) -> out, outcomes, probs
 *   core.dms_kraus_vjp(W, na, rho, out, anc, outcomes, G) -> gW
 *   core.dms_expect(S, O) -> qd.Vector of Re Tr(rho_k O) */
#include "lua_util.h"
#include "qd_dmstack.h"
#include <string.h>

/* the stack at arg: a complex qd.Matrix of d^2 x N, d = 2^n, 1 <= n <= 7; *d, *N */
static qd_c *check_stack(lua_State *L, int arg, size_t *d, size_t *N)
{
    qdl_array *a = qdL_checkarray(L, arg);
    size_t r = 2;
    int n = 1;
    while (r * r < a->rows && n < 7) {
        r <<= 1;
        n++;
    }
    if (!a->cplx || r * r != a->rows || luaL_testudata(L, arg, QDL_VECTOR)) {
        char msg[120];
        snprintf(msg, sizeof msg, "a stack of density matrices (complex d^2 x N matrix, d = 2^n) expected, got %s %zux%zu",
                 a->cplx ? "complex" : "real", a->rows, a->cols);
        luaL_argerror(L, arg, lua_pushstring(L, msg));
    }
    *d = r;
    *N = a->cols;
    return (qd_c *)a->data;
}

static int nqubits(size_t d)
{
    int n = 0;
    while (((size_t)1 << n) < d)
        n++;
    return n;
}

/* core.dms_from({rho1, rho2, ...}) -> stack (every member a DensityMatrix of one size) */
static int l_from(lua_State *L)
{
    qdL_checknargs(L, 1);
    lua_Integer N = qdL_checklen(L, 1, 1, (lua_Integer)1 << 30, "table of density matrices");
    if (N < 1)
        return luaL_argerror(L, 1, "a non-empty table of density matrices expected");
    int n = -1;
    for (lua_Integer k = 1; k <= N; k++) {
        lua_geti(L, 1, k);
        qdl_reg *r = qdL_testkind(L, -1, QDL_K_DM);
        if (!r || !r->a || (n >= 0 && r->n != n) || r->n > 7)
            return luaL_argerror(L, 1, lua_pushfstring(L, "entry %d: a qd.DensityMatrix of %d qubits expected", (int)k,
                                                       n >= 0 ? n : (r ? r->n : 1)));
        n = r->n;
        lua_pop(L, 1);
    }
    size_t d = (size_t)1 << n;
    qdl_array *o = qdL_newarray(L, d * d, (size_t)N, 1, 0);
    for (lua_Integer k = 1; k <= N; k++) {
        lua_geti(L, 1, k);
        qdl_reg *r = qdL_checkkind(L, -1, QDL_K_DM);
        memcpy((qd_c *)o->data + (size_t)(k - 1) * d * d, r->a, sizeof(qd_c) * d * d);
        lua_pop(L, 1);
    }
    return 1;
}

/* core.dms_get(S, k) -> member k (1-based) as a DensityMatrix */
static int l_get(lua_State *L)
{
    qdL_checknargs(L, 2);
    size_t d, N;
    qd_c *a = check_stack(L, 1, &d, &N);
    int ok;
    lua_Integer k = lua_tointegerx(L, 2, &ok);
    if (!ok || k < 1 || (size_t)k > N)
        return luaL_argerror(L, 2, lua_pushfstring(L, "member 1 ... %d expected, got %s", (int)N, luaL_tolstring(L, 2, NULL)));
    memcpy(qdL_newreg(L, QDL_K_DM, nqubits(d), 1)->a, a + (size_t)(k - 1) * d * d, sizeof(qd_c) * d * d);
    return 1;
}

/* core.dms_depolarize(S, keep) -> keep S_k + (1 - keep) I/d for every member, keep in [0, 1] */
static int l_depolarize(lua_State *L)
{
    qdL_checknargs(L, 2);
    size_t d, N;
    qd_c *a = check_stack(L, 1, &d, &N);
    double keep = luaL_checknumber(L, 2);
    if (!(keep >= 0 && keep <= 1))
        return luaL_argerror(L, 2, "number in [0, 1] expected");
    qdl_array *o = qdL_newarray(L, d * d, N, 1, 0);
    qd_dms_depolarize(a, N, d, keep, (qd_c *)o->data);
    return 1;
}

/* core.dms_gather(S, idx) -> the members idx[1], idx[2], ... (a table of integers 1..N) */
static int l_gather(lua_State *L)
{
    qdL_checknargs(L, 2);
    size_t d, N;
    qd_c *a = check_stack(L, 1, &d, &N);
    lua_Integer K = qdL_checklen(L, 2, 2, (lua_Integer)1 << 30, "table of member indices");
    if (K < 1)
        return luaL_argerror(L, 2, "a non-empty table of member indices expected");
    for (lua_Integer i = 1; i <= K; i++) {
        lua_geti(L, 2, i);
        int ok;
        lua_Integer k = lua_tointegerx(L, -1, &ok);
        if (!ok || k < 1 || (size_t)k > N)
            return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d: a member index 1 ... %d expected", (int)i, (int)N));
        lua_pop(L, 1);
    }
    qdl_array *o = qdL_newarray(L, d * d, (size_t)K, 1, 0);
    for (lua_Integer i = 1; i <= K; i++) {
        lua_geti(L, 2, i);
        lua_Integer k = lua_tointeger(L, -1);
        lua_pop(L, 1);
        memcpy((qd_c *)o->data + (size_t)(i - 1) * d * d, a + (size_t)(k - 1) * d * d, sizeof(qd_c) * d * d);
    }
    return 1;
}

/* the two stacks of a loss: same d; grad flag at arg 3 (optional boolean) */
static int loss_args(lua_State *L, qd_c **A, qd_c **B, size_t *d, size_t *N, size_t *M)
{
    qdL_checknargs(L, 3);
    size_t d2;
    *A = check_stack(L, 1, d, N);
    *B = check_stack(L, 2, &d2, M);
    if (d2 != *d)
        luaL_argerror(L, 2, lua_pushfstring(L, "density matrices of %d qubits expected (as argument #1), got %d",
                                            nqubits(*d), nqubits(d2)));
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TBOOLEAN);
    return lua_toboolean(L, 3);
}

/* core.dms_mmd_sf / dms_wass_sf / dms_mmd_uhl / dms_wass_uhl (A, B [, grad]) -> value
 * [, dL/d conj(A) as a stack]; kind: bit 0 Wasserstein (else MMD), bit 1 the Uhlmann kernel
 * (else superfidelity) */
static int stack_loss(lua_State *L, int kind)
{
    qd_c *A, *B;
    size_t d, N, M;
    int grad = loss_args(L, &A, &B, &d, &N, &M);
    qd_c *G = grad ? (qd_c *)qdL_newarray(L, d * d, N, 1, 0)->data : NULL;
    double v;
    qd_err e;
    qd_status st;
    if (kind & 2)
        st = kind & 1 ? qd_dms_wass_uhl(A, N, B, M, d, &v, G, NULL, &e) : qd_dms_mmd_uhl(A, N, B, M, d, &v, G, &e);
    else
        st = kind & 1 ? qd_dms_wass_sf(A, N, B, M, d, &v, G, NULL, &e) : qd_dms_mmd_sf(A, N, B, M, d, &v, G, &e);
    if (st != QD_OK)
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    if (grad)
        lua_insert(L, -2);
    return grad ? 2 : 1;
}

static int l_mmd_sf(lua_State *L) { return stack_loss(L, 0); }
static int l_wass_sf(lua_State *L) { return stack_loss(L, 1); }
static int l_mmd_uhl(lua_State *L) { return stack_loss(L, 2); }
static int l_wass_uhl(lua_State *L) { return stack_loss(L, 3); }

/* the isometry W (ensemble of d or 2d members on na + n qubits), na, the input stack rho and
 * the optional first-ancilla states anc (an ensemble of N one-qubit states) at anc_arg */
typedef struct {
    qdl_reg *W;
    int n, na, haar;
    size_t d, N;
    qd_c *rho, *anc;
} step_in;

static void step_args(lua_State *L, int anc_arg, step_in *s)
{
    s->W = qdL_checkkind(L, 1, QDL_K_ENS);
    lua_Integer na = luaL_checkinteger(L, 2);
    if (na < 1 || na >= s->W->n)
        luaL_argerror(L, 2, "ancillas 1 ... the isometry's qubits - 1 expected");
    s->na = (int)na;
    s->n = s->W->n - s->na;
    s->rho = check_stack(L, 3, &s->d, &s->N);
    if (s->d != (size_t)1 << s->n)
        luaL_argerror(L, 3, lua_pushfstring(L, "density matrices of %d qubits expected, got %d", s->n, nqubits(s->d)));
    qdl_reg *anc = lua_isnoneornil(L, anc_arg) ? NULL : qdL_checkkind(L, anc_arg, QDL_K_ENS);
    if (anc && (anc->n != 1 || anc->count != s->N))
        luaL_argerror(L, anc_arg, lua_pushfstring(L, "an ensemble of %d one-qubit states expected", (int)s->N));
    s->haar = anc != NULL;
    s->anc = anc ? anc->a : NULL;
    size_t cols = s->haar ? 2 * s->d : s->d;
    if (s->W->count != cols)
        luaL_argerror(L, 1, lua_pushfstring(L, "an ensemble of %d members expected (the circuit on its basis inputs), got %d",
                                            (int)cols, (int)s->W->count));
}

/* core.dms_kraus_step(W, na, rho, u [, anc]) -> out (stack), outcomes (qd.Vector, 0-based),
 * probs (qd.Vector); u: a qd.Vector of N uniforms in [0, 1) */
static int l_kraus_step(lua_State *L)
{
    qdL_checknargs(L, 5);
    step_in s;
    step_args(L, 5, &s);
    qdl_array *u = qdL_checkarray(L, 4);
    if (u->cplx || u->rows * u->cols != s.N)
        return luaL_argerror(L, 4, lua_pushfstring(L, "a real qd.Vector of %d uniforms expected", (int)s.N));
    qdl_array *o = qdL_newarray(L, s.d * s.d, s.N, 1, 0);
    qdl_array *oc = qdL_newarray(L, s.N, 1, 0, 1);
    qdl_array *pr = qdL_newarray(L, s.N, 1, 0, 1);
    int *m = qdL_scratch(L, s.N, sizeof(int), "the outcomes");
    qd_err e;
    if (qd_dms_kraus_step(s.W->a, s.n, s.na, s.haar, s.anc, s.N, s.rho, (const double *)u->data, (qd_c *)o->data, m,
                          (double *)pr->data, &e) != QD_OK)
        return qdL_raise(L, &e);
    for (size_t k = 0; k < s.N; k++)
        ((double *)oc->data)[k] = m[k];
    lua_pop(L, 1);   /* the scratch */
    return 3;
}

/* core.dms_kraus_vjp(W, na, rho, out, anc, outcomes, G) -> dL/d conj(W) (an ensemble like W) */
static int l_kraus_vjp(lua_State *L)
{
    qdL_checknargs(L, 7);
    step_in s;
    step_args(L, 5, &s);
    size_t d, N;
    qd_c *out = check_stack(L, 4, &d, &N);
    if (d != s.d || N != s.N)
        return luaL_argerror(L, 4, "the step's output (as many members as rho) expected");
    qdl_array *oc = qdL_checkarray(L, 6);
    if (oc->cplx || oc->rows * oc->cols != s.N)
        return luaL_argerror(L, 6, lua_pushfstring(L, "a real qd.Vector of %d outcomes expected", (int)s.N));
    qd_c *G = check_stack(L, 7, &d, &N);
    if (d != s.d || N != s.N)
        return luaL_argerror(L, 7, "a gradient shaped like the step's output expected");
    int *m = qdL_scratch(L, s.N, sizeof(int), "the outcomes");
    for (size_t k = 0; k < s.N; k++) {
        double x = ((double *)oc->data)[k];
        if (!(x >= 0 && x < (double)((size_t)1 << s.na)) || x != (double)(int)x)
            return luaL_argerror(L, 6, lua_pushfstring(L, "entry %d: an outcome 0 ... %d expected", (int)k + 1,
                                                       (1 << s.na) - 1));
        m[k] = (int)x;
    }
    qdl_reg *gW = qdL_newreg(L, QDL_K_ENS, s.W->n, s.W->count);
    qd_err e;
    if (qd_dms_kraus_vjp(s.W->a, s.n, s.na, s.haar, s.anc, s.N, s.rho, out, m, G, gW->a, &e) != QD_OK)
        return qdL_raise(L, &e);
    return 1;
}

/* core.dms_expect(S, O) -> qd.Vector of Re Tr(S_k O), O a d x d matrix (qd.Matrix or rows) */
static int l_expect(lua_State *L)
{
    qdL_checknargs(L, 2);
    size_t d, N;
    qd_c *a = check_stack(L, 1, &d, &N);
    qd_c *O;
    size_t dO = qdL_checkcmatrix(L, 2, &O);
    if (dO != d)
        return luaL_argerror(L, 2, lua_pushfstring(L, "a %dx%d matrix expected, got %dx%d", (int)d, (int)d, (int)dO,
                                                   (int)dO));
    qdl_array *v = qdL_newarray(L, N, 1, 0, 1);
    qd_dms_expect(a, N, d, O, (double *)v->data);
    return 1;
}

void qdL_open_dmstack(lua_State *L)
{
    static const luaL_Reg fns[] = {{"dms_from", l_from},         {"dms_get", l_get},
                                   {"dms_depolarize", l_depolarize}, {"dms_gather", l_gather},
                                   {"dms_mmd_sf", l_mmd_sf},     {"dms_wass_sf", l_wass_sf},
                                   {"dms_mmd_uhl", l_mmd_uhl},   {"dms_wass_uhl", l_wass_uhl},
                                   {"dms_kraus_step", l_kraus_step}, {"dms_kraus_vjp", l_kraus_vjp},
                                   {"dms_expect", l_expect},     {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
